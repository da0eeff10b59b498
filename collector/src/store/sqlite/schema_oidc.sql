-- OpenID Connect sign-in (issue 13): which local account a provider's user
-- (issuer, subject) is. The account keeps the role and OPDs mapped at the
-- last sign-in; removing the account removes the link.
CREATE TABLE account_oidc (
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    account       TEXT NOT NULL UNIQUE REFERENCES account(name) ON DELETE CASCADE,
    linked_at_ms  INTEGER NOT NULL,
    last_login_ms INTEGER NOT NULL,
    PRIMARY KEY (issuer, subject)
);
