-- The jti of every private_key_jwt client assertion the server accepted
-- (RFC 7523 §3: a jti is used once), kept until the assertion expires so
-- that every replica refuses a replay. digest is mcpoauth.AssertionIDDigest
-- (SHA-256 of the client_id's length, client_id and jti): the raw jti is
-- never stored.
CREATE TABLE mcpoauth_assertion_ids (
	digest     bytea PRIMARY KEY,
	expires_at timestamptz NOT NULL
);
CREATE INDEX mcpoauth_assertion_ids_expires_at ON mcpoauth_assertion_ids (expires_at);
