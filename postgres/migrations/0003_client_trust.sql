-- Who vetted a client, and whether it named its authentication method.
--
-- pre_registered: the operator registered the client (RegisterClient); only
-- such a client's redirect URI receives errors found before the user acted
-- (RFC 9700 §4.11.2). Existing rows default to false, the safe side: a
-- static client becomes pre-registered again at the next RegisterClient.
--
-- auth_method_defaulted: the registration named no token_endpoint_auth_method,
-- so either secret method is accepted. Existing rows default to true, which
-- keeps every existing client working as it did before the method was
-- enforced.
ALTER TABLE mcpoauth_clients
	ADD COLUMN pre_registered        boolean NOT NULL DEFAULT false,
	ADD COLUMN auth_method_defaulted boolean NOT NULL DEFAULT true;
