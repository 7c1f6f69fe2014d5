-- Whether the authorization request's prompt asked for the user (consent,
-- login or select_account): remembered consent does not apply to it
-- (record.AuthorizationRequest.PromptConsent).
ALTER TABLE mcpoauth_authorization_requests ADD COLUMN prompt_consent boolean NOT NULL DEFAULT false;
