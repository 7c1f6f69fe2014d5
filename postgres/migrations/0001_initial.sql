-- The tables of the mcpoauth PostgreSQL Model, created in the current schema
-- (the first schema of search_path).
--
-- Credentials are keyed by their SHA-256 digest (32 bytes): no table holds a
-- raw code, token, secret or request id. Every timestamp is timestamptz.

CREATE TABLE mcpoauth_clients (
	id                text PRIMARY KEY,
	-- NULL for a public client.
	secret_digest     bytea CHECK (octet_length(secret_digest) = 32),
	-- NULL: never expires.
	secret_expires_at timestamptz,
	issued_at         timestamptz,
	-- RFC 7591 client metadata, as JSON.
	metadata          jsonb NOT NULL
);

-- Pending authorization requests, consumed once by the user's decision.
CREATE TABLE mcpoauth_authorization_requests (
	id                    bytea PRIMARY KEY CHECK (octet_length(id) = 32),
	browser_digest        bytea NOT NULL CHECK (octet_length(browser_digest) = 32),
	client_id             text NOT NULL,
	redirect_uri          text NOT NULL,
	redirect_uri_provided boolean NOT NULL,
	scopes                text[] NOT NULL,
	resource              text NOT NULL,
	-- The client's state, byte for byte (text cannot hold every byte).
	state                 bytea NOT NULL,
	code_challenge        text NOT NULL,
	expires_at            timestamptz NOT NULL
);
CREATE INDEX mcpoauth_authorization_requests_expires_at ON mcpoauth_authorization_requests (expires_at);

-- Authorization codes; a redeemed code is kept (used) until it expires, so
-- that a replay is recognised.
CREATE TABLE mcpoauth_authorization_codes (
	digest                bytea PRIMARY KEY CHECK (octet_length(digest) = 32),
	client_id             text NOT NULL,
	user_id               text NOT NULL,
	grant_id              text NOT NULL,
	redirect_uri          text NOT NULL,
	redirect_uri_provided boolean NOT NULL,
	scopes                text[] NOT NULL,
	resource              text NOT NULL,
	code_challenge        text NOT NULL,
	expires_at            timestamptz NOT NULL,
	grant_expires_at      timestamptz NOT NULL,
	used                  boolean NOT NULL DEFAULT false
);
CREATE INDEX mcpoauth_authorization_codes_grant_id ON mcpoauth_authorization_codes (grant_id);
CREATE INDEX mcpoauth_authorization_codes_expires_at ON mcpoauth_authorization_codes (expires_at);

-- Access (kind 1) and refresh (kind 2) tokens; a rotated refresh token is
-- kept (used) until it expires, so that a replay is recognised.
CREATE TABLE mcpoauth_tokens (
	digest           bytea PRIMARY KEY CHECK (octet_length(digest) = 32),
	kind             smallint NOT NULL CHECK (kind IN (1, 2)),
	client_id        text NOT NULL,
	user_id          text NOT NULL,
	grant_id         text NOT NULL,
	scopes           text[] NOT NULL,
	resource         text NOT NULL,
	issued_at        timestamptz NOT NULL,
	expires_at       timestamptz NOT NULL,
	grant_expires_at timestamptz NOT NULL,
	used             boolean NOT NULL DEFAULT false
);
CREATE INDEX mcpoauth_tokens_grant_id ON mcpoauth_tokens (grant_id);
CREATE INDEX mcpoauth_tokens_expires_at ON mcpoauth_tokens (expires_at);

-- Revoked grants, remembered until forget_after so that no later save (one
-- that raced the revocation included) brings a token or code of theirs back.
CREATE TABLE mcpoauth_revoked_grants (
	grant_id     text PRIMARY KEY,
	revoked_at   timestamptz NOT NULL,
	forget_after timestamptz NOT NULL
);
CREATE INDEX mcpoauth_revoked_grants_forget_after ON mcpoauth_revoked_grants (forget_after);
