-- When a token was last issued to a client, to the day: the server deletes
-- a dynamically registered client (not pre_registered) unused for its
-- ClientIdleLifetime. NULL means unknown, and such a client is never
-- deleted for idleness. Existing clients count as used now, not when they
-- were issued: a client registered long ago may hold a live refresh token,
-- and must not be deleted by the first sweep after the upgrade.
ALTER TABLE mcpoauth_clients ADD COLUMN last_used_at timestamptz;
UPDATE mcpoauth_clients SET last_used_at = now();
-- The sweep looks for idle dynamic clients only.
CREATE INDEX mcpoauth_clients_last_used_at ON mcpoauth_clients (last_used_at) WHERE NOT pre_registered;
