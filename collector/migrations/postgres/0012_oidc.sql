-- OIDC sign-in (issue 13): a person signed in through the municipality's OpenID provider has a
-- web_users row of their own, found by the provider's subject (issuer + "#" + sub), never by
-- e-mail alone; such a row has no password or TOTP key and cannot sign in locally.
ALTER TABLE web_users ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX web_users_oidc_subject ON web_users(oidc_subject) WHERE oidc_subject IS NOT NULL;
