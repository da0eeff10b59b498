//! Web accounts and API tokens: `user add|list|passwd|disable|enable|remove`
//! and `token add|list|revoke`. The commands write to the given output so
//! they can be tested without a process.

use std::io::{BufRead, Write};

use clap::Subcommand;
use pantau_core::OpdId;

use serde_json::{Value, json};

use crate::admin;
use crate::audit::{Action, Actor};
use crate::config::CollectorConfig;
use crate::store::accounts::{ApiToken, Role};
use crate::store::{Store, StoreError, now_ms};
use crate::web::auth::{HashError, hash_password, new_password};

/// Why an account or token command failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Reading the password from stdin failed.
    #[error("cannot read the password from stdin: {0}")]
    Stdin(std::io::Error),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// A name or OPD id breaks the id rule.
    #[error("{0}")]
    Id(#[from] pantau_core::InvalidId),
    /// A role name is unknown.
    #[error(
        "peran tidak dikenal / unknown role `{0}`; use admin, opd, evaluator, viewer or scrape"
    )]
    Role(String),
    /// `--opd` given for a role that sees everything, or missing for `opd`.
    #[error("{0}")]
    Opds(&'static str),
    /// An OPD does not exist.
    #[error("OPD `{0}` tidak ada / does not exist; see `pantau-collector opd list`")]
    UnknownOpd(String),
    /// No such account or token.
    #[error("{0} tidak ada / does not exist")]
    Missing(String),
    /// A password typed in is too short.
    #[error("kata sandi minimal 12 karakter / the password must be at least 12 characters")]
    Short,
    /// The admin action refused its input (names the field).
    #[error("{0}")]
    Invalid(crate::admin::ActionError),
}

impl From<crate::admin::ActionError> for UserError {
    fn from(e: crate::admin::ActionError) -> Self {
        use crate::admin::ActionError as A;
        match e {
            A::Store(e) => UserError::Store(e),
            A::Hash(e) => UserError::Hash(e),
            other => UserError::Invalid(other),
        }
    }
}

/// `pantau-collector user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a web user and print a one-time generated password (or read one
    /// from stdin with --password-stdin).
    /// Example: pantau-collector user add ani --role opd --opd dinkes
    Add {
        /// Login name (letters, digits, '-', '_', '.').
        name: String,
        /// admin, opd, evaluator or viewer.
        #[arg(long)]
        role: String,
        /// An OPD of an `opd` user (repeat for several).
        #[arg(long = "opd")]
        opds: Vec<String>,
        /// Read the password from the first line of stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Set a new password (generated, or from stdin); ends the user's sessions.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Change a user's role (and OPDs); the user's sessions end.
    /// Example: pantau-collector user role ani --role opd --opd dinkes --opd dishub
    Role {
        /// Login name.
        name: String,
        /// admin, opd, evaluator or viewer.
        #[arg(long)]
        role: String,
        /// An OPD of an `opd` user (repeat for several).
        #[arg(long = "opd")]
        opds: Vec<String>,
    },
    /// Disable a user (cannot log in; sessions end).
    Disable {
        /// Login name.
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// Login name.
        name: String,
    },
    /// Remove a user and its sessions.
    Remove {
        /// Login name.
        name: String,
    },
}

/// `pantau-collector token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create an API token (sent as `Authorization: Bearer TOKEN`) and print it
    /// once. Example: pantau-collector token add prometheus --role scrape
    Add {
        /// Name (who uses it).
        name: String,
        /// admin, opd, evaluator, viewer or scrape (/metrics only).
        #[arg(long)]
        role: String,
        /// An OPD of an `opd` token (repeat for several).
        #[arg(long = "opd")]
        opds: Vec<String>,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token.
    Revoke {
        /// Name.
        name: String,
    },
}

/// Check the role and its OPDs against the store.
fn role_and_opds(
    s: &dyn Store,
    role: &str,
    opds: Vec<String>,
) -> Result<(Role, Vec<String>), UserError> {
    let role = Role::parse(role).ok_or_else(|| UserError::Role(role.into()))?;
    match (role, opds.is_empty()) {
        (Role::Opd, true) => {
            return Err(UserError::Opds(
                "peran `opd` perlu --opd / the `opd` role needs at least one --opd",
            ));
        }
        (Role::Opd, false) => {}
        (_, false) => {
            return Err(UserError::Opds(
                "--opd hanya untuk peran `opd` / --opd is only for the `opd` role",
            ));
        }
        (_, true) => {}
    }
    let known: Vec<String> = s.opds()?.into_iter().map(|o| o.id).collect();
    for o in &opds {
        OpdId::new(o.as_str())?;
        if !known.contains(o) {
            return Err(UserError::UnknownOpd(o.clone()));
        }
    }
    Ok((role, opds))
}

/// The password: the first stdin line (at least 12 characters) or a new one
/// (then `true`: print it).
fn password(from_stdin: bool, stdin: &mut dyn BufRead) -> Result<(String, bool), UserError> {
    if !from_stdin {
        return Ok((new_password(), true));
    }
    let mut line = String::new();
    stdin.read_line(&mut line).map_err(UserError::Stdin)?;
    let p = line.trim_end_matches(['\r', '\n']).to_string();
    if p.chars().count() < 12 {
        return Err(UserError::Short);
    }
    Ok((p, false))
}

/// Record a user or token change in the audit log, as the CLI's unix user.
fn audit(
    s: &dyn Store,
    action: Action,
    object: &str,
    before: Value,
    after: Value,
) -> Result<(), UserError> {
    crate::audit::record(s, &Actor::cli(), action, object, before, after)?;
    Ok(())
}

/// Run a `user` command.
// Long: one short arm per subcommand (check, store, audit, print), read top to bottom.
pub fn user(
    cfg: &CollectorConfig,
    cmd: UserCmd,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), UserError> {
    let s = crate::cli::open_store(cfg)?;
    let s = &*s;
    match cmd {
        UserCmd::Add {
            name,
            role,
            opds,
            password_stdin,
        } => {
            let typed = if password_stdin {
                Some(password(true, stdin)?.0)
            } else {
                None
            };
            let made = admin::user::add(s, &Actor::cli(), &name, &role, &opds, typed.as_deref())?;
            let role = made.role;
            writeln!(out, "pengguna / user `{name}` ({role}) dibuat / created")?;
            if let Some(pw) = made.generated_password {
                writeln!(
                    out,
                    "kata sandi sekali tampil / password (shown once): {pw}"
                )?;
            }
        }
        UserCmd::Role { name, role, opds } => {
            let msg = admin::user::set_role(s, &Actor::cli(), &name, &role, &opds)?;
            writeln!(out, "{msg}")?;
        }
        UserCmd::List => {
            writeln!(out, "NAME\tROLE\tOPDS\tSTATUS")?;
            for a in s.accounts()? {
                let status = if a.disabled { "disabled" } else { "active" };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{status}",
                    a.name,
                    a.role,
                    a.opds.join(",")
                )?;
            }
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let (pw, show) = password(password_stdin, stdin)?;
            if !s.set_password(&name, &hash_password(&pw)?)? {
                return Err(UserError::Missing(format!("pengguna / user `{name}`")));
            }
            audit(
                s,
                Action::UserChange,
                &name,
                Value::Null,
                json!({"password": "changed"}),
            )?;
            writeln!(out, "kata sandi `{name}` diganti / password changed")?;
            if show {
                writeln!(out, "kata sandi baru / new password (shown once): {pw}")?;
            }
        }
        UserCmd::Disable { name } => {
            let msg = admin::user::set_disabled(s, &Actor::cli(), &name, true)?;
            writeln!(out, "{msg}")?;
        }
        UserCmd::Enable { name } => {
            let msg = admin::user::set_disabled(s, &Actor::cli(), &name, false)?;
            writeln!(out, "{msg}")?;
        }
        UserCmd::Remove { name } => {
            let before = s
                .account(&name)?
                .map(|a| json!({"role": a.role.to_string(), "opds": a.opds}));
            if !s.remove_account(&name)? {
                return Err(UserError::Missing(format!("pengguna / user `{name}`")));
            }
            audit(
                s,
                Action::UserChange,
                &name,
                before.unwrap_or(Value::Null),
                json!({"removed": true}),
            )?;
            writeln!(out, "pengguna `{name}` dihapus / removed")?;
        }
    }
    Ok(())
}

/// Run a `token` command. `add` prints only the token on stdout (for
/// scripts: `pantau-collector token add prom --role scrape > prom.token`).
pub fn token(cfg: &CollectorConfig, cmd: TokenCmd, out: &mut dyn Write) -> Result<(), UserError> {
    let s = crate::cli::open_store(cfg)?;
    let s = &*s;
    match cmd {
        TokenCmd::Add { name, role, opds } => {
            pantau_core::id::check_id("name", &name)?;
            let (role, opds) = role_and_opds(s, &role, opds)?;
            let token = crate::auth::new_token();
            let after = json!({"role": role.to_string(), "opds": opds});
            s.add_api_token(
                &ApiToken {
                    name: name.clone(),
                    role,
                    opds,
                    created_at_ms: now_ms(),
                    revoked_at_ms: None,
                },
                &crate::auth::digest(&token),
            )?;
            // The token itself never enters the log.
            audit(s, Action::TokenCreate, &name, Value::Null, after)?;
            writeln!(out, "{token}")?;
        }
        TokenCmd::List => {
            writeln!(out, "NAME\tROLE\tOPDS\tSTATUS")?;
            for t in s.api_tokens()? {
                let status = if t.revoked_at_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{status}",
                    t.name,
                    t.role,
                    t.opds.join(",")
                )?;
            }
        }
        TokenCmd::Revoke { name } => {
            if !s.revoke_api_token(&name, now_ms())? {
                return Err(UserError::Missing(format!("token `{name}`")));
            }
            audit(
                s,
                Action::TokenRevoke,
                &name,
                Value::Null,
                json!({"revoked": true}),
            )?;
            writeln!(out, "token `{name}` dicabut / revoked")?;
        }
    }
    Ok(())
}

/// `pantau-collector register [--json]`: the signed reports handed out by
/// the web, newest first (the same register as `/laporan/register`).
pub fn register(cfg: &CollectorConfig, json: bool, out: &mut dyn Write) -> Result<(), UserError> {
    let s = crate::cli::open_store(cfg)?;
    let s = &*s;
    let rows = s.signed_reports()?;
    if json {
        for r in &rows {
            writeln!(
                out,
                "{}",
                serde_json::to_string(r).map_err(|e| UserError::Output(e.into()))?
            )?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "AT\tNUMBER\tISSUED\tPERIOD\tSCOPE\tREQUESTER\tROLE\tSOURCE\tSHA256"
    )?;
    for r in rows {
        let at = chrono::DateTime::from_timestamp_millis(r.at_ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        let mark = |given: bool| if given { " (given)" } else { "" };
        writeln!(
            out,
            "{at}\t{}{}\t{}{}\t{}..{}\t{}\t{}\t{}\t{}\t{}",
            r.number,
            mark(r.number_given),
            r.issued,
            mark(r.issued_given),
            r.from,
            r.to,
            r.scope,
            r.requester,
            r.role,
            r.source,
            r.sha256
        )?;
    }
    Ok(())
}
