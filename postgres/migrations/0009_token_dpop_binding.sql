-- The thumbprint of the DPoP key a token is bound to (RFC 9449 §6,
-- record.Token.JKT); '' for a token that is not bound.
ALTER TABLE mcpoauth_tokens ADD COLUMN jkt text NOT NULL DEFAULT '';
