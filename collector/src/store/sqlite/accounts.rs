//! Accounts, sessions and API tokens in SQLite (schema_accounts.sql).

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, write_tx};
use crate::store::accounts::{
    Account, Accounts, ApiToken, OIDC_NO_PASSWORD, OidcIdentity, OidcLinked, Role, Session,
    SignedReport, oidc_account_names,
};
use crate::store::{Op, StoreError};

fn role(row: &Row<'_>, i: usize) -> rusqlite::Result<Role> {
    super::text_enum(row, i, Role::parse)
}

fn opds(s: String) -> Vec<String> {
    s.split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect()
}

const ACCOUNT_COLS: &str = "name, role, opds, password_hash, disabled, created_at_ms";

fn account_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: r.get(0)?,
        role: role(r, 1)?,
        opds: opds(r.get(2)?),
        password_hash: r.get(3)?,
        disabled: r.get(4)?,
        created_at_ms: r.get(5)?,
    })
}

fn token_row(r: &Row<'_>) -> rusqlite::Result<ApiToken> {
    Ok(ApiToken {
        name: r.get(0)?,
        role: role(r, 1)?,
        opds: opds(r.get(2)?),
        created_at_ms: r.get(3)?,
        revoked_at_ms: r.get(4)?,
    })
}

fn exists(e: rusqlite::Error, what: String, op: &'static str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Exists(what)
        }
        e => StoreError::Sqlite { op, source: e },
    }
}

fn session(
    c: &Connection,
    id: &[u8],
    idle_after: i64,
    created_after: i64,
) -> Result<Option<Session>, StoreError> {
    let row = c
        .query_row(
            &format!(
                "SELECT s.csrf, s.created_at_ms, s.last_seen_ms, {}
                 FROM web_session s JOIN account a ON a.name = s.account
                 WHERE s.id_sha256 = ?1",
                ACCOUNT_COLS
                    .split(", ")
                    .map(|c| format!("a.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            [id],
            |r| {
                let csrf: String = r.get(0)?;
                let created: i64 = r.get(1)?;
                let seen: i64 = r.get(2)?;
                let account = Account {
                    name: r.get(3)?,
                    role: role(r, 4)?,
                    opds: opds(r.get(5)?),
                    password_hash: r.get(6)?,
                    disabled: r.get(7)?,
                    created_at_ms: r.get(8)?,
                };
                Ok(Session {
                    account,
                    csrf,
                    created_at_ms: created,
                    last_seen_ms: seen,
                })
            },
        )
        .optional()
        .op("look up session")?;
    Ok(row.filter(|s| {
        !s.account.disabled && s.last_seen_ms > idle_after && s.created_at_ms > created_after
    }))
}

impl Accounts for SqliteStore {
    fn record_signed_report(&self, r: &SignedReport) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO signed_report (number, number_given, issued, issued_given, period_from,
                 period_to, scope, format, sha256, requester, role, source, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    r.number,
                    r.number_given,
                    r.issued,
                    r.issued_given,
                    r.from,
                    r.to,
                    r.scope,
                    r.format,
                    r.sha256,
                    r.requester,
                    r.role,
                    r.source,
                    r.at_ms
                ],
            )
            .op("record signed report")?;
            Ok(())
        })
    }

    fn signed_reports(&self) -> Result<Vec<SignedReport>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT number, number_given, issued, issued_given, period_from, period_to,
                     scope, format, sha256, requester, role, source, at_ms
                     FROM signed_report ORDER BY at_ms DESC, id DESC",
                )
                .op("list signed reports")?;
            st.query_map([], |r| {
                Ok(SignedReport {
                    number: r.get(0)?,
                    number_given: r.get(1)?,
                    issued: r.get(2)?,
                    issued_given: r.get(3)?,
                    from: r.get(4)?,
                    to: r.get(5)?,
                    scope: r.get(6)?,
                    format: r.get(7)?,
                    sha256: r.get(8)?,
                    requester: r.get(9)?,
                    role: r.get(10)?,
                    source: r.get(11)?,
                    at_ms: r.get(12)?,
                })
            })
            .op("list signed reports")?
            .collect::<Result<_, _>>()
            .op("read signed reports")
        })
    }

    fn add_account(&self, a: &Account) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO account (name, role, opds, password_hash, disabled, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    a.name,
                    a.role.as_str(),
                    a.opds.join(","),
                    a.password_hash,
                    a.disabled,
                    a.created_at_ms
                ],
            )
            .map_err(|e| exists(e, format!("user `{}`", a.name), "insert account"))?;
            Ok(())
        })
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        self.read(|c| {
            c.query_row(
                &format!("SELECT {ACCOUNT_COLS} FROM account WHERE name = ?1"),
                [name],
                account_row,
            )
            .optional()
            .op("look up account")
        })
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(&format!("SELECT {ACCOUNT_COLS} FROM account ORDER BY name"))
                .op("list accounts")?;
            st.query_map([], account_row)
                .op("list accounts")?
                .collect::<Result<_, _>>()
                .op("read accounts")
        })
    }

    fn set_password(&self, name: &str, hash: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin set password")?;
            let n = tx
                .execute(
                    "UPDATE account SET password_hash = ?2 WHERE name = ?1",
                    params![name, hash],
                )
                .op("set password")?;
            tx.execute("DELETE FROM web_session WHERE account = ?1", [name])
                .op("end sessions")?;
            tx.commit().op("commit set password")?;
            Ok(n == 1)
        })
    }

    fn set_disabled(&self, name: &str, disabled: bool) -> Result<bool, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin disable")?;
            let n = tx
                .execute(
                    "UPDATE account SET disabled = ?2 WHERE name = ?1",
                    params![name, disabled],
                )
                .op("disable account")?;
            tx.execute("DELETE FROM web_session WHERE account = ?1", [name])
                .op("end sessions")?;
            tx.commit().op("commit disable")?;
            Ok(n == 1)
        })
    }

    fn set_role(&self, name: &str, role: Role, opds: &[String]) -> Result<bool, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin set role")?;
            let n = tx
                .execute(
                    "UPDATE account SET role = ?2, opds = ?3 WHERE name = ?1",
                    params![name, role.as_str(), opds.join(",")],
                )
                .op("set role")?;
            tx.execute("DELETE FROM web_session WHERE account = ?1", [name])
                .op("end sessions")?;
            tx.commit().op("commit set role")?;
            Ok(n == 1)
        })
    }

    fn remove_account(&self, name: &str) -> Result<bool, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin remove account")?;
            tx.execute("DELETE FROM web_session WHERE account = ?1", [name])
                .op("end sessions")?;
            let n = tx
                .execute("DELETE FROM account WHERE name = ?1", [name])
                .op("remove account")?;
            tx.commit().op("commit remove account")?;
            Ok(n == 1)
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
            let tx = write_tx(c).op("begin add session")?;
            tx.execute(
                "DELETE FROM web_session WHERE created_at_ms < ?1",
                [purge_created_before_ms],
            )
            .op("purge old sessions")?;
            tx.execute(
                "INSERT INTO web_session (id_sha256, account, csrf, created_at_ms, last_seen_ms)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
                params![id_sha256, account, csrf, now_ms],
            )
            .op("insert session")?;
            tx.commit().op("commit add session")?;
            Ok(())
        })
    }

    fn session(
        &self,
        id_sha256: &[u8],
        idle_after_ms: i64,
        created_after_ms: i64,
    ) -> Result<Option<Session>, StoreError> {
        let found = self.read(|c| session(c, id_sha256, idle_after_ms, created_after_ms))?;
        if found.is_none() {
            // Gone, expired or disabled: make sure nothing of it stays.
            self.remove_session(id_sha256)?;
        }
        Ok(found)
    }

    fn touch_session(&self, id_sha256: &[u8], now_ms: i64) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "UPDATE web_session SET last_seen_ms = ?2 WHERE id_sha256 = ?1",
                params![id_sha256, now_ms],
            )
            .op("touch session")?;
            Ok(())
        })
    }

    fn remove_session(&self, id_sha256: &[u8]) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute("DELETE FROM web_session WHERE id_sha256 = ?1", [id_sha256])
                .op("remove session")?;
            Ok(())
        })
    }

    fn add_api_token(&self, t: &ApiToken, sha256: &[u8]) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "INSERT INTO api_token (name, token_sha256, role, opds, created_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    t.name,
                    sha256,
                    t.role.as_str(),
                    t.opds.join(","),
                    t.created_at_ms
                ],
            )
            .map_err(|e| exists(e, format!("token `{}`", t.name), "insert api token"))?;
            Ok(())
        })
    }

    fn api_token(&self, sha256: &[u8]) -> Result<Option<ApiToken>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT name, role, opds, created_at_ms, revoked_at_ms FROM api_token
                 WHERE token_sha256 = ?1 AND revoked_at_ms IS NULL",
                [sha256],
                token_row,
            )
            .optional()
            .op("look up api token")
        })
    }

    fn api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT name, role, opds, created_at_ms, revoked_at_ms FROM api_token ORDER BY name",
                )
                .op("list api tokens")?;
            st.query_map([], token_row)
                .op("list api tokens")?
                .collect::<Result<_, _>>()
                .op("read api tokens")
        })
    }

    fn revoke_api_token(&self, name: &str, now_ms: i64) -> Result<bool, StoreError> {
        self.write(|c| {
            let n = c
                .execute(
                    "UPDATE api_token SET revoked_at_ms = ?2 WHERE name = ?1 AND revoked_at_ms IS NULL",
                    params![name, now_ms],
                )
                .op("revoke api token")?;
            Ok(n == 1)
        })
    }
    fn oidc_sign_in(&self, id: &OidcIdentity, now_ms: i64) -> Result<OidcLinked, StoreError> {
        self.write(|c| {
            let tx = write_tx(c).op("begin oidc sign-in")?;
            let before: Option<Account> = tx
                .query_row(
                    &format!(
                        "SELECT {} FROM account_oidc l JOIN account a ON a.name = l.account
                         WHERE l.issuer = ?1 AND l.subject = ?2",
                        account_cols("a")
                    ),
                    params![id.issuer, id.subject],
                    account_row,
                )
                .optional()
                .op("look up oidc link")?;
            let opds = id.opds.join(",");
            let linked = match before {
                Some(before) => {
                    if before.role != id.role || before.opds != id.opds {
                        tx.execute(
                            "UPDATE account SET role = ?2, opds = ?3 WHERE name = ?1",
                            params![before.name, id.role.as_str(), opds],
                        )
                        .op("update oidc account")?;
                        tx.execute("DELETE FROM web_session WHERE account = ?1", [&before.name])
                            .op("end sessions")?;
                    }
                    tx.execute(
                        "UPDATE account_oidc SET last_login_ms = ?3 WHERE issuer = ?1 AND subject = ?2",
                        params![id.issuer, id.subject, now_ms],
                    )
                    .op("touch oidc link")?;
                    let account = Account {
                        role: id.role,
                        opds: id.opds.clone(),
                        ..before.clone()
                    };
                    OidcLinked {
                        account,
                        before: Some(before),
                    }
                }
                None => {
                    // A link whose account was removed is stale.
                    tx.execute(
                        "DELETE FROM account_oidc WHERE issuer = ?1 AND subject = ?2",
                        params![id.issuer, id.subject],
                    )
                    .op("drop stale oidc link")?;
                    let mut name = None;
                    for n in oidc_account_names(&id.preferred_name) {
                        let taken: bool = tx
                            .query_row(
                                "SELECT EXISTS(SELECT 1 FROM account WHERE name = ?1)",
                                [&n],
                                |r| r.get(0),
                            )
                            .op("check account name")?;
                        if !taken {
                            name = Some(n);
                            break;
                        }
                    }
                    let name = name.ok_or_else(|| {
                        StoreError::Exists(format!("user `{}` (and -2 to -999)", id.preferred_name))
                    })?;
                    tx.execute(
                        "INSERT INTO account (name, role, opds, password_hash, disabled, created_at_ms)
                         VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                        params![name, id.role.as_str(), opds, OIDC_NO_PASSWORD, now_ms],
                    )
                    .op("insert oidc account")?;
                    tx.execute(
                        "INSERT INTO account_oidc (issuer, subject, account, linked_at_ms, last_login_ms)
                         VALUES (?1, ?2, ?3, ?4, ?4)",
                        params![id.issuer, id.subject, name, now_ms],
                    )
                    .op("insert oidc link")?;
                    OidcLinked {
                        account: Account {
                            name,
                            role: id.role,
                            opds: id.opds.clone(),
                            password_hash: OIDC_NO_PASSWORD.into(),
                            disabled: false,
                            created_at_ms: now_ms,
                        },
                        before: None,
                    }
                }
            };
            tx.commit().op("commit oidc sign-in")?;
            Ok(linked)
        })
    }

    fn oidc_account(&self, issuer: &str, subject: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT l.account FROM account_oidc l JOIN account a ON a.name = l.account
                 WHERE l.issuer = ?1 AND l.subject = ?2",
                params![issuer, subject],
                |r| r.get(0),
            )
            .optional()
            .op("look up oidc link")
        })
    }
}

/// [`ACCOUNT_COLS`] qualified by a table alias.
fn account_cols(alias: &str) -> String {
    ACCOUNT_COLS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// Tested by the conformance suite (store/conformance/accounts.rs).
