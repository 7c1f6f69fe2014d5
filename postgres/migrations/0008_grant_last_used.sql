-- When tokens of a grant were last issued (GrantStore.RecordGrantUse), for
-- a "connected apps" page; NULL before the first.
ALTER TABLE mcpoauth_grants ADD COLUMN last_used_at timestamptz;
