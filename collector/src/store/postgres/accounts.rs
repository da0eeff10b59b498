//! Accounts, sessions, API tokens and the signed-report register in
//! PostgreSQL (schema_4.sql); the same semantics as SQLite
//! (store/sqlite/accounts.rs), checked by the same conformance suite.

use postgres::Row;

use super::PgStore;
use crate::store::accounts::{
    Account, Accounts, ApiToken, OIDC_NO_PASSWORD, OidcIdentity, OidcLinked, Role, Session,
    SignedReport, oidc_account_names,
};
use crate::store::{Op, StoreError};

fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::NotStored(format!("unknown stored role `{s}`")))
}

fn opds(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

/// An account from `name, role, opds, password_hash, disabled,
/// created_at_ms` starting at column `i`.
fn account_at(r: &Row, i: usize) -> Result<Account, StoreError> {
    Ok(Account {
        name: r.get(i),
        role: role(r.get(i + 1))?,
        opds: opds(r.get(i + 2)),
        password_hash: r.get(i + 3),
        disabled: r.get(i + 4),
        created_at_ms: r.get(i + 5),
    })
}

fn token_row(r: &Row) -> Result<ApiToken, StoreError> {
    Ok(ApiToken {
        name: r.get(0),
        role: role(r.get(1))?,
        opds: opds(r.get(2)),
        created_at_ms: r.get(3),
        revoked_at_ms: r.get(4),
    })
}

fn report_row(r: &Row) -> SignedReport {
    SignedReport {
        number: r.get(0),
        number_given: r.get(1),
        issued: r.get(2),
        issued_given: r.get(3),
        from: r.get(4),
        to: r.get(5),
        scope: r.get(6),
        format: r.get(7),
        sha256: r.get(8),
        requester: r.get(9),
        role: r.get(10),
        source: r.get(11),
        at_ms: r.get(12),
    }
}

impl Accounts for PgStore {
    fn record_signed_report(&self, r: &SignedReport) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO signed_report (number, number_given, issued, issued_given,
                     period_from, period_to, scope, format, sha256, requester, role, source, at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    &[
                        &r.number,
                        &r.number_given,
                        &r.issued,
                        &r.issued_given,
                        &r.from,
                        &r.to,
                        &r.scope,
                        &r.format,
                        &r.sha256,
                        &r.requester,
                        &r.role,
                        &r.source,
                        &r.at_ms,
                    ],
                )
                .op("record signed report")?;
            Ok(())
        })
    }

    fn signed_reports(&self) -> Result<Vec<SignedReport>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query(
                    "SELECT number, number_given, issued, issued_given, period_from, period_to,
                     scope, format, sha256, requester, role, source, at_ms
                     FROM signed_report ORDER BY at_ms DESC, id DESC",
                    &[],
                )
                .op("list signed reports")?
                .iter()
                .map(report_row)
                .collect())
        })
    }

    fn add_account(&self, a: &Account) -> Result<(), StoreError> {
        let n = self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO account (name, role, opds, password_hash, disabled, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[
                        &a.name,
                        &a.role.as_str(),
                        &a.opds.join(","),
                        &a.password_hash,
                        &a.disabled,
                        &a.created_at_ms,
                    ],
                )
                .op("insert account")
        })?;
        if n == 0 {
            return Err(StoreError::Exists(format!("user `{}`", a.name)));
        }
        Ok(())
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.read(|c| {
            c.db()
                .query_opt(
                    "SELECT name, role, opds, password_hash, disabled, created_at_ms
                     FROM account WHERE name = $1",
                    &[&name],
                )
                .op("look up account")?
                .map(|r| account_at(&r, 0))
                .transpose()
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|c| {
            c.db()
                .query(
                    "SELECT name, role, opds, password_hash, disabled, created_at_ms
                     FROM account ORDER BY name",
                    &[],
                )
                .op("list accounts")?
                .iter()
                .map(|r| account_at(r, 0))
                .collect()
        })
    }

    fn set_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let n = db
                    .execute(
                        "UPDATE account SET password_hash = $2 WHERE name = $1",
                        &[&name, &hash],
                    )
                    .op("set password")?;
                db.execute("DELETE FROM web_session WHERE account = $1", &[&name])
                    .op("end sessions")?;
                Ok(n == 1)
            })
        })
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let n = db
                    .execute(
                        "UPDATE account SET disabled = $2 WHERE name = $1",
                        &[&name, &disabled],
                    )
                    .op("disable account")?;
                db.execute("DELETE FROM web_session WHERE account = $1", &[&name])
                    .op("end sessions")?;
                Ok(n == 1)
            })
        })
    }

    fn set_role(&self, name: &str, role: Role, opds: &[String]) -> Result<bool, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                let n = db
                    .execute(
                        "UPDATE account SET role = $2, opds = $3 WHERE name = $1",
                        &[&name, &role.as_str(), &opds.join(",")],
                    )
                    .op("set role")?;
                db.execute("DELETE FROM web_session WHERE account = $1", &[&name])
                    .op("end sessions")?;
                Ok(n == 1)
            })
        })
    }

    fn remove_account(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            c.tx(|db| {
                db.execute("DELETE FROM web_session WHERE account = $1", &[&name])
                    .op("end sessions")?;
                let n = db
                    .execute("DELETE FROM account WHERE name = $1", &[&name])
                    .op("remove account")?;
                Ok(n == 1)
            })
        })
    }

    fn add_session(
        &self,
        id_sha256: &[u8],
        account: &str,
        csrf: &str,
        now_ms: i64,
        purge_created_before_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(|c| {
            c.tx(|db| {
                db.execute(
                    "DELETE FROM web_session WHERE created_at_ms < $1",
                    &[&purge_created_before_ms],
                )
                .op("purge old sessions")?;
                db.execute(
                    "INSERT INTO web_session (id_sha256, account, csrf, created_at_ms, last_seen_ms)
                     VALUES ($1, $2, $3, $4, $4)",
                    &[&id_sha256, &account, &csrf, &now_ms],
                )
                .op("insert session")?;
                Ok(())
            })
        })
    }

    fn session(
        &self,
        id_sha256: &[u8],
        idle_after_ms: i64,
        created_after_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let row = self.read(|c| {
            c.db()
                .query_opt(
                    "SELECT s.csrf, s.created_at_ms, s.last_seen_ms, a.name, a.role, a.opds,
                            a.password_hash, a.disabled, a.created_at_ms
                     FROM web_session s JOIN account a ON a.name = s.account
                     WHERE s.id_sha256 = $1",
                    &[&id_sha256],
                )
                .op("look up session")?
                .map(|r| {
                    Ok::<_, StoreError>(Session {
                        csrf: r.get(0),
                        created_at_ms: r.get(1),
                        last_seen_ms: r.get(2),
                        account: account_at(&r, 3)?,
                    })
                })
                .transpose()
        })?;
        let found = row.filter(|s| {
            !s.account.disabled
                && s.last_seen_ms > idle_after_ms
                && s.created_at_ms > created_after_ms
        });
        if found.is_none() {
            // Gone, expired or disabled: make sure nothing of it stays.
            self.remove_session(id_sha256)?;
        }
        Ok(found)
    }

    fn touch_session(&self, id_sha256: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "UPDATE web_session SET last_seen_ms = $2 WHERE id_sha256 = $1",
                    &[&id_sha256, &now_ms],
                )
                .op("touch session")?;
            Ok(())
        })
    }

    fn remove_session(&self, id_sha256: &[u8]) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "DELETE FROM web_session WHERE id_sha256 = $1",
                    &[&id_sha256],
                )
                .op("remove session")?;
            Ok(())
        })
    }

    fn add_api_token(&self, t: &ApiToken, sha256: &[u8]) -> Result<(), StoreError> {
        let n = self.write(|c| {
            c.db()
                .execute(
                    "INSERT INTO api_token (name, token_sha256, role, opds, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[
                        &t.name,
                        &sha256,
                        &t.role.as_str(),
                        &t.opds.join(","),
                        &t.created_at_ms,
                    ],
                )
                .op("insert api token")
        })?;
        if n == 0 {
            return Err(StoreError::Exists(format!("token `{}`", t.name)));
        }
        Ok(())
    }

    fn api_token(&self, sha256: &[u8]) -> Result<Option<ApiToken>, StoreError> {
        self.read(|c| {
            c.db()
                .query_opt(
                    "SELECT name, role, opds, created_at_ms, revoked_at_ms FROM api_token
                     WHERE token_sha256 = $1 AND revoked_at_ms IS NULL",
                    &[&sha256],
                )
                .op("look up api token")?
                .as_ref()
                .map(token_row)
                .transpose()
        })
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|c| {
            c.db()
                .query(
                    "SELECT name, role, opds, created_at_ms, revoked_at_ms
                     FROM api_token ORDER BY name",
                    &[],
                )
                .op("list api tokens")?
                .iter()
                .map(token_row)
                .collect()
        })
    }

    fn revoke_api_token(&self, name: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|c| {
            let n = c
                .db()
                .execute(
                    "UPDATE api_token SET revoked_at_ms = $2
                     WHERE name = $1 AND revoked_at_ms IS NULL",
                    &[&name, &now_ms],
                )
                .op("revoke api token")?;
            Ok(n == 1)
        })
    }
    fn oidc_sign_in(&self, id: &OidcIdentity, now_ms: i64) -> Result<OidcLinked, StoreError> {
        let opds = id.opds.join(",");
        self.write(|c| {
            c.tx(|db| {
                let before = db
                    .query_opt(
                        "SELECT a.name, a.role, a.opds, a.password_hash, a.disabled, a.created_at_ms
                         FROM account_oidc l JOIN account a ON a.name = l.account
                         WHERE l.issuer = $1 AND l.subject = $2 FOR UPDATE",
                        &[&id.issuer, &id.subject],
                    )
                    .op("look up oidc link")?
                    .map(|r| account_at(&r, 0))
                    .transpose()?;
                if let Some(before) = before {
                    if before.role != id.role || before.opds != id.opds {
                        db.execute(
                            "UPDATE account SET role = $2, opds = $3 WHERE name = $1",
                            &[&before.name, &id.role.as_str(), &opds],
                        )
                        .op("update oidc account")?;
                        db.execute("DELETE FROM web_session WHERE account = $1", &[&before.name])
                            .op("end sessions")?;
                    }
                    db.execute(
                        "UPDATE account_oidc SET last_login_ms = $3 WHERE issuer = $1 AND subject = $2",
                        &[&id.issuer, &id.subject, &now_ms],
                    )
                    .op("touch oidc link")?;
                    let account = Account {
                        role: id.role,
                        opds: id.opds.clone(),
                        ..before.clone()
                    };
                    return Ok(OidcLinked {
                        account,
                        before: Some(before),
                    });
                }
                // A link whose account was removed is stale.
                db.execute(
                    "DELETE FROM account_oidc WHERE issuer = $1 AND subject = $2",
                    &[&id.issuer, &id.subject],
                )
                .op("drop stale oidc link")?;
                let mut name = None;
                for n in oidc_account_names(&id.preferred_name) {
                    let inserted = db
                        .execute(
                            "INSERT INTO account (name, role, opds, password_hash, disabled, created_at_ms)
                             VALUES ($1, $2, $3, $4, FALSE, $5) ON CONFLICT DO NOTHING",
                            &[&n, &id.role.as_str(), &opds, &OIDC_NO_PASSWORD, &now_ms],
                        )
                        .op("insert oidc account")?;
                    if inserted == 1 {
                        name = Some(n);
                        break;
                    }
                }
                let name = name.ok_or_else(|| {
                    StoreError::Exists(format!("user `{}` (and -2 to -999)", id.preferred_name))
                })?;
                db.execute(
                    "INSERT INTO account_oidc (issuer, subject, account, linked_at_ms, last_login_ms)
                     VALUES ($1, $2, $3, $4, $4)",
                    &[&id.issuer, &id.subject, &name, &now_ms],
                )
                .op("insert oidc link")?;
                Ok(OidcLinked {
                    account: Account {
                        name,
                        role: id.role,
                        opds: id.opds.clone(),
                        password_hash: OIDC_NO_PASSWORD.into(),
                        disabled: false,
                        created_at_ms: now_ms,
                    },
                    before: None,
                })
            })
        })
    }

    fn oidc_account(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            Ok(c.db()
                .query_opt(
                    "SELECT l.account FROM account_oidc l JOIN account a ON a.name = l.account
                     WHERE l.issuer = $1 AND l.subject = $2",
                    &[&issuer, &subject],
                )
                .op("look up oidc link")?
                .map(|r| r.get(0)))
        })
    }
}

// Tested by the conformance suite (store/conformance/accounts.rs), run on
// PostgreSQL in postgres/conformance.rs.
