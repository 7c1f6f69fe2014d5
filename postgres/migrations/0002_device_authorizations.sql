-- RFC 8628 device authorizations (the optional DeviceStore capability).
-- Both codes are stored as SHA-256 digests; each names one authorization.

CREATE TABLE mcpoauth_device_authorizations (
	device_code_digest bytea PRIMARY KEY CHECK (octet_length(device_code_digest) = 32),
	user_code_digest   bytea NOT NULL UNIQUE CHECK (octet_length(user_code_digest) = 32),
	client_id          text NOT NULL,
	scopes             text[] NOT NULL,
	resource           text NOT NULL,
	grant_id           text NOT NULL,
	-- 1 pending, 2 approved, 3 denied.
	status             smallint NOT NULL CHECK (status IN (1, 2, 3)),
	-- Empty while pending.
	user_id            text NOT NULL,
	-- NULL before the first poll.
	last_polled_at     timestamptz,
	-- The least time between polls, in nanoseconds, so that it compares
	-- exactly.
	poll_interval_ns   bigint NOT NULL,
	expires_at         timestamptz NOT NULL,
	-- NULL until approved.
	grant_expires_at   timestamptz
);
CREATE INDEX mcpoauth_device_authorizations_expires_at ON mcpoauth_device_authorizations (expires_at);
