-- Grants as records (mcpoauth.GrantStore): who approved which client, for
-- what, and as whom at the upstream identity provider. A row is written
-- once and never updated; RevokeGrant and DeleteClient delete it, the
-- sweeper once it expired.
CREATE TABLE mcpoauth_grants (
	id         text PRIMARY KEY,
	client_id  text NOT NULL,
	user_id    text NOT NULL,
	scopes     text[] NOT NULL,
	resource   text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	-- The user at the upstream provider (record.Identity as JSON); NULL
	-- when the application signs users in itself.
	identity   jsonb
);
CREATE INDEX mcpoauth_grants_user_id ON mcpoauth_grants (user_id);
CREATE INDEX mcpoauth_grants_client_id ON mcpoauth_grants (client_id);
CREATE INDEX mcpoauth_grants_expires_at ON mcpoauth_grants (expires_at);

-- The upstream token vault (mcpoauth.UpstreamTokenStore): the upstream
-- provider's tokens, sealed by the vault before they reach the database.
-- grant_id and client_id are NULL while the entry belongs to a sign-in
-- session; RevokeGrant deletes by grant_id, DeleteClient by client_id.
CREATE TABLE mcpoauth_upstream_tokens (
	id          text PRIMARY KEY,
	grant_id    text,
	client_id   text,
	sealed      bytea NOT NULL,
	-- Compared and set by ReplaceUpstreamToken.
	version     bigint NOT NULL,
	lease_until timestamptz,
	expires_at  timestamptz NOT NULL
);
CREATE INDEX mcpoauth_upstream_tokens_grant_id ON mcpoauth_upstream_tokens (grant_id);
CREATE INDEX mcpoauth_upstream_tokens_client_id ON mcpoauth_upstream_tokens (client_id);
CREATE INDEX mcpoauth_upstream_tokens_expires_at ON mcpoauth_upstream_tokens (expires_at);
