-- The tables of the mcpoauth SQLite Model.
--
-- Credentials are keyed by their SHA-256 digest, a 32-byte blob (a CHECK
-- refuses any other length): no table holds a raw code, token, secret or
-- request id. Times are INTEGER nanoseconds since the Unix epoch, UTC, so
-- they keep every nanosecond and compare as numbers; NULL is the zero
-- time. Scopes are JSON arrays of strings. Tables keyed by a digest are
-- WITHOUT ROWID: a lookup by digest is one B-tree search, not two.

CREATE TABLE mcpoauth_clients (
	id                    TEXT PRIMARY KEY NOT NULL,
	-- NULL for a public client.
	secret_digest         BLOB CHECK (secret_digest IS NULL OR length(secret_digest) = 32),
	secret_expires_at     INTEGER,
	issued_at             INTEGER,
	-- NULL: unknown, and then the client is never deleted for idleness.
	last_used_at          INTEGER,
	-- RFC 7591 client metadata, as JSON.
	metadata              TEXT NOT NULL,
	pre_registered        INTEGER NOT NULL CHECK (pre_registered IN (0, 1)),
	auth_method_defaulted INTEGER NOT NULL CHECK (auth_method_defaulted IN (0, 1))
);
-- The sweep of idle clients looks at dynamic clients only.
CREATE INDEX mcpoauth_clients_last_used_at ON mcpoauth_clients (last_used_at) WHERE pre_registered = 0;

-- Pending authorization requests, consumed once by the user's decision.
CREATE TABLE mcpoauth_authorization_requests (
	id                    BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),
	browser_digest        BLOB NOT NULL CHECK (length(browser_digest) = 32),
	client_id             TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL,
	redirect_uri_provided INTEGER NOT NULL,
	scopes                TEXT NOT NULL,
	resource              TEXT NOT NULL,
	-- The client's state, byte for byte.
	state                 BLOB NOT NULL,
	code_challenge        TEXT NOT NULL,
	expires_at            INTEGER,
	-- 1 when the request's prompt asked for the user (consent, login or
	-- select_account): remembered consent does not apply to it.
	prompt_consent        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX mcpoauth_authorization_requests_expires_at ON mcpoauth_authorization_requests (expires_at);

-- Authorization codes; a redeemed code is kept (used) until it expires, so
-- that a replay is recognised.
CREATE TABLE mcpoauth_authorization_codes (
	digest                BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
	client_id             TEXT NOT NULL,
	user_id               TEXT NOT NULL,
	grant_id              TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL,
	redirect_uri_provided INTEGER NOT NULL,
	scopes                TEXT NOT NULL,
	resource              TEXT NOT NULL,
	code_challenge        TEXT NOT NULL,
	expires_at            INTEGER,
	grant_expires_at      INTEGER,
	used                  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX mcpoauth_authorization_codes_grant_id ON mcpoauth_authorization_codes (grant_id);
CREATE INDEX mcpoauth_authorization_codes_expires_at ON mcpoauth_authorization_codes (expires_at);

-- Access (kind 1) and refresh (kind 2) tokens; a rotated refresh token is
-- kept (rotated_at set) until it expires, so that a replay is recognised.
CREATE TABLE mcpoauth_tokens (
	digest           BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
	kind             INTEGER NOT NULL CHECK (kind IN (1, 2)),
	client_id        TEXT NOT NULL,
	user_id          TEXT NOT NULL,
	grant_id         TEXT NOT NULL,
	scopes           TEXT NOT NULL,
	resource         TEXT NOT NULL,
	issued_at        INTEGER,
	expires_at       INTEGER,
	grant_expires_at INTEGER,
	rotated_at       INTEGER,
	-- The thumbprint of the DPoP key the token is bound to (RFC 9449 §6,
	-- record.Token.JKT); '' for a token that is not bound.
	jkt              TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX mcpoauth_tokens_grant_id ON mcpoauth_tokens (grant_id);
CREATE INDEX mcpoauth_tokens_expires_at ON mcpoauth_tokens (expires_at);

-- Revoked grants, remembered until forget_after so that no later save (one
-- that raced the revocation included) brings a token or code of theirs back.
CREATE TABLE mcpoauth_revoked_grants (
	grant_id     TEXT PRIMARY KEY NOT NULL,
	revoked_at   INTEGER NOT NULL,
	forget_after INTEGER NOT NULL
);
CREATE INDEX mcpoauth_revoked_grants_forget_after ON mcpoauth_revoked_grants (forget_after);

-- RFC 8628 device authorizations; both codes are stored as digests, and
-- each names one authorization.
CREATE TABLE mcpoauth_device_authorizations (
	device_code_digest BLOB PRIMARY KEY NOT NULL CHECK (length(device_code_digest) = 32),
	user_code_digest   BLOB NOT NULL UNIQUE CHECK (length(user_code_digest) = 32),
	client_id          TEXT NOT NULL,
	scopes             TEXT NOT NULL,
	resource           TEXT NOT NULL,
	grant_id           TEXT NOT NULL,
	-- 1 pending, 2 approved, 3 denied.
	status             INTEGER NOT NULL CHECK (status IN (1, 2, 3)),
	-- Empty while pending.
	user_id            TEXT NOT NULL,
	-- NULL before the first poll.
	last_polled_at     INTEGER,
	poll_interval_ns   INTEGER NOT NULL,
	expires_at         INTEGER,
	-- NULL until approved.
	grant_expires_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX mcpoauth_device_authorizations_expires_at ON mcpoauth_device_authorizations (expires_at);

-- The jti of every private_key_jwt client assertion the server accepted
-- (RFC 7523 §3), as mcpoauth.AssertionIDDigest, until the assertion expires.
CREATE TABLE mcpoauth_assertion_ids (
	digest     BLOB PRIMARY KEY NOT NULL CHECK (length(digest) = 32),
	expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX mcpoauth_assertion_ids_expires_at ON mcpoauth_assertion_ids (expires_at);

-- Grants as records (mcpoauth.GrantStore): who approved which client, for
-- what, and as whom upstream. identity is the upstream identity as JSON,
-- NULL when the application signs users in itself.
CREATE TABLE mcpoauth_grants (
	id         TEXT PRIMARY KEY NOT NULL,
	client_id  TEXT NOT NULL,
	user_id    TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	resource   TEXT NOT NULL,
	created_at INTEGER,
	expires_at INTEGER,
	identity   TEXT,
	-- When tokens of the grant were last issued (RecordGrantUse); NULL
	-- before the first.
	last_used_at INTEGER
);
CREATE INDEX mcpoauth_grants_user_id ON mcpoauth_grants (user_id);
CREATE INDEX mcpoauth_grants_client_id ON mcpoauth_grants (client_id);
CREATE INDEX mcpoauth_grants_expires_at ON mcpoauth_grants (expires_at);

-- The upstream token vault (mcpoauth.UpstreamTokenStore): sealed entries,
-- stored as the vault hands them over. grant_id and client_id are empty
-- until the entry belongs to a grant.
CREATE TABLE mcpoauth_upstream_tokens (
	id          TEXT PRIMARY KEY NOT NULL,
	grant_id    TEXT NOT NULL,
	client_id   TEXT NOT NULL,
	-- NULL for a nil Sealed, so that nil and empty stay apart.
	sealed      BLOB,
	version     INTEGER NOT NULL,
	lease_until INTEGER,
	expires_at  INTEGER
);
CREATE INDEX mcpoauth_upstream_tokens_grant_id ON mcpoauth_upstream_tokens (grant_id);
CREATE INDEX mcpoauth_upstream_tokens_client_id ON mcpoauth_upstream_tokens (client_id);
CREATE INDEX mcpoauth_upstream_tokens_expires_at ON mcpoauth_upstream_tokens (expires_at);
