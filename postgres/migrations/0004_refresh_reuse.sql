-- When a refresh token was first rotated, for the reuse interval: the same
-- client presenting it again within the interval gets a new pair and
-- nothing is revoked. A token rotated before this migration counts as
-- rotated when it was issued: long past any interval, so a replay of it
-- still revokes its grant.
ALTER TABLE mcpoauth_tokens ADD COLUMN rotated_at timestamptz;
UPDATE mcpoauth_tokens SET rotated_at = issued_at WHERE used;
