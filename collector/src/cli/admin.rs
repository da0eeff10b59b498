//! The registry commands: `opd add|list|contract|rename|disable|enable|remove`
//! and `agent add|enrol-code|list|disable|enable|revoke|rotate`. Every change
//! goes through [`crate::admin`], the code path the web console uses too.
//! Messages and exit codes are the binary's; the commands write to the
//! given outputs so they can be tested without a process.

use std::io::Write;

use clap::Subcommand;
use pantau_core::InvalidId;

use crate::admin::{self, ActionError, agent::Switch};
use crate::audit::Actor;
use crate::config::CollectorConfig;
use crate::store::registry::OpdState;
use crate::store::{Store, StoreError};

/// `pantau-collector opd ...`.
#[derive(Debug, Subcommand)]
pub enum OpdCmd {
    /// Register an OPD. Example: pantau-collector opd add dinkes --name "Dinas Kesehatan"
    Add {
        /// OPD id (letters, digits, '-', '_', '.').
        id: String,
        /// Full name.
        #[arg(long)]
        name: String,
    },
    /// List OPDs (removed ones are listed by the console and `opd list --all`).
    List {
        /// Also list disabled and removed OPDs, with their state.
        #[arg(long)]
        all: bool,
    },
    /// Rename an OPD. Example: pantau-collector opd rename dinkes --name "Dinas Kesehatan Provinsi"
    Rename {
        /// OPD id.
        id: String,
        /// New full name.
        #[arg(long)]
        name: String,
    },
    /// Disable an OPD: its agents are refused (open streams close) and it takes
    /// no new agents, until `opd enable`. Example: pantau-collector opd disable dinkes
    Disable {
        /// OPD id.
        id: String,
    },
    /// Enable a disabled (or removed) OPD again. Example: pantau-collector opd enable dinkes
    Enable {
        /// OPD id.
        id: String,
    },
    /// Remove an OPD: it leaves the status pages and refuses agents; its
    /// results, reports and audit entries are kept. Example: pantau-collector opd remove dinkes
    Remove {
        /// OPD id.
        id: String,
    },
    /// Set the contracted bandwidth of an OPD's link (Mbit/s), shown against the
    /// measured throughput in reports; 0 clears it. Example: pantau-collector opd contract dinkes --mbps 20
    Contract {
        /// OPD id.
        id: String,
        /// Contracted bandwidth in Mbit/s (0 clears it).
        #[arg(long)]
        mbps: f64,
    },
}

/// `pantau-collector agent ...`.
#[derive(Debug, Subcommand)]
pub enum AgentCmd {
    /// Register an agent and print a one-time enrolment code for
    /// `pantau-agent enroll` (with the CA fingerprint and the command to run).
    /// Example: pantau-collector agent add dinkes-1 --opd dinkes
    Add {
        /// Agent id.
        agent_id: String,
        /// The OPD it belongs to.
        #[arg(long)]
        opd: String,
        /// How long the enrolment code is valid (e.g. 24h, 2days, 30min).
        #[arg(long, default_value = "24h", value_parser = crate::cli::enrol::parse_lifetime)]
        expires: std::time::Duration,
        /// Print the agent's permanent token instead of an enrolment code, for
        /// a configuration written by hand (no `pantau-agent enroll`).
        #[arg(long, conflicts_with = "expires")]
        print_token: bool,
    },
    /// Issue a fresh one-time enrolment code for an existing agent; its
    /// earlier unused codes become void. Example: pantau-collector agent enrol-code dinkes-1
    EnrolCode {
        /// Agent id.
        agent_id: String,
        /// How long the code is valid (e.g. 24h, 2days, 30min).
        #[arg(long, default_value = "24h", value_parser = crate::cli::enrol::parse_lifetime)]
        expires: std::time::Duration,
    },
    /// List agents: id, OPD, version, the conflicting duplicates kept
    /// aside (non-zero: two machines share this agent's identity), the
    /// credential state, its expiry and where the agent last authenticated from.
    List,
    /// Refuse an agent until `agent enable`; its open stream closes within
    /// seconds, it keeps its results queued. Example: pantau-collector agent disable dinkes-1
    Disable {
        /// Agent id.
        agent_id: String,
    },
    /// Let a disabled agent in again. Example: pantau-collector agent enable dinkes-1
    Enable {
        /// Agent id.
        agent_id: String,
    },
    /// Refuse an agent for good and drop its token (a stolen machine); the
    /// machine must be registered as a new agent. Example: pantau-collector agent revoke dinkes-1
    Revoke {
        /// Agent id.
        agent_id: String,
    },
    /// Give an agent a new token, printed once; the old one stops working at
    /// once. Example: pantau-collector agent rotate dinkes-1 --expires 90d
    Rotate {
        /// Agent id.
        agent_id: String,
        /// The new token stops working after this long (e.g. 90d, 12h, 30m, 45s); default: never.
        #[arg(long, value_parser = parse_expiry)]
        expires: Option<std::time::Duration>,
    },
    /// Issue a client certificate (mutual TLS) for an agent enrolled out of
    /// band, from a CSR made on the agent (`pantau-agent csr`); the key never
    /// leaves the agent. Example: pantau-collector agent issue-cert dinkes-1 --csr dinkes-1.csr --out dinkes-1.crt
    IssueCert {
        /// Agent id.
        agent_id: String,
        /// The certificate signing request (PEM).
        #[arg(long)]
        csr: std::path::PathBuf,
        /// Where to write the certificate (PEM).
        #[arg(long)]
        out: std::path::PathBuf,
        /// Validity (e.g. 30d, 12h); default 30d.
        #[arg(long, value_parser = parse_expiry)]
        validity: Option<std::time::Duration>,
    },
}

/// A `--expires` value: a positive number followed by `d`, `h`, `m` or `s`.
fn parse_expiry(v: &str) -> Result<std::time::Duration, ExpiryError> {
    let bad = || ExpiryError(v.to_string());
    let unit = v.chars().last().ok_or_else(bad)?;
    let secs = match unit {
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => return Err(bad()),
    };
    let n: u64 = v[..v.len() - 1].parse().map_err(|_| bad())?;
    if n == 0 || n > 3_650 * 86_400 / secs {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs(n * secs))
}

/// A `--expires` value that is not a duration.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` bukan durasi / is not a duration: a positive number (at most 10 years) and d, h, m or s, e.g. 90d"
)]
pub struct ExpiryError(String);

/// `-` or a UTC time for `agent list`.
pub(crate) fn when(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(
            || "-".into(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}

/// Why a registry command failed; shown as `pantau-collector: {error}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An enrolment code could not be issued.
    #[error(transparent)]
    Code(#[from] crate::cli::enrol::EnrolCodeError),
    /// An id breaks the id rule.
    #[error(transparent)]
    Id(#[from] InvalidId),
    /// The contracted bandwidth could not be set.
    #[error(transparent)]
    Contract(#[from] crate::report::capacity::ContractError),
    /// Standard output or error could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A client certificate could not be issued.
    #[error(transparent)]
    Cert(#[from] crate::tls::TlsError),
    /// An input was refused by the admin action (names the field).
    #[error("{0}")]
    Invalid(crate::admin::ActionError),
}

impl From<ActionError> for AdminError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Store(e) => AdminError::Store(e),
            other => AdminError::Invalid(other),
        }
    }
}

/// Open the configured store and run an `opd` command.
pub fn opd(cfg: &CollectorConfig, cmd: OpdCmd, out: &mut dyn Write) -> Result<(), AdminError> {
    let store = crate::cli::open_store(cfg)?;
    let s = &*store;
    let who = Actor::cli();
    let msg = match cmd {
        OpdCmd::Add { id, name } => admin::opd::add(s, &who, &id, &name)?,
        OpdCmd::Contract { id, mbps } => admin::opd::contract(s, &who, &id, mbps)?,
        OpdCmd::Rename { id, name } => admin::opd::rename(s, &who, &id, &name)?,
        OpdCmd::Disable { id } => admin::opd::set_state(s, &who, &id, OpdState::Disabled)?,
        OpdCmd::Enable { id } => admin::opd::set_state(s, &who, &id, OpdState::Active)?,
        OpdCmd::Remove { id } => admin::opd::set_state(s, &who, &id, OpdState::Removed)?,
        OpdCmd::List { all: false } => {
            for o in s.opds()? {
                writeln!(out, "{}\t{}\t{} agent(s)", o.id, o.name, o.agents)?;
            }
            return Ok(());
        }
        OpdCmd::List { all: true } => {
            for o in s.opd_infos()? {
                writeln!(
                    out,
                    "{}\t{}\t{} agent(s)\t{}",
                    o.id,
                    o.name,
                    o.agents,
                    o.state.as_str()
                )?;
            }
            return Ok(());
        }
    };
    writeln!(out, "{msg}")?;
    Ok(())
}

/// Open the configured store and run an `agent` command. The new
/// enrolment code (or with `--print-token` the token) goes alone to `out`
/// (so it can be piped into a file); the notes to `err`.
// Long: one short arm per subcommand (check, store, audit, print), read top to bottom.
pub fn agent(
    cfg: &CollectorConfig,
    cmd: AgentCmd,
    hint: &crate::cli::enrol::EnrolHint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), AdminError> {
    let store = crate::cli::open_store(cfg)?;
    let store = &*store;
    match cmd {
        AgentCmd::Add {
            agent_id,
            opd,
            expires,
            print_token,
        } => {
            // Until enrolment the agent's token is one nobody ever sees.
            let token = admin::agent::add(store, &Actor::cli(), &agent_id, &opd, print_token)?;
            if print_token {
                writeln!(
                    err,
                    "Agent `{agent_id}` added to OPD `{opd}`. Its token is shown only once; put it in the agent's token file:"
                )?;
                writeln!(out, "{token}")?;
            } else {
                writeln!(
                    err,
                    "Agen `{agent_id}` ditambahkan ke OPD `{opd}` / agent `{agent_id}` added to OPD `{opd}`."
                )?;
                crate::cli::enrol::issue(store, &agent_id, expires, hint, out, err)?;
            }
        }
        AgentCmd::EnrolCode { agent_id, expires } => {
            crate::cli::enrol::issue(store, &agent_id, expires, hint, out, err)?;
        }
        AgentCmd::List => {
            let creds: std::collections::HashMap<_, _> = store
                .credentials()?
                .into_iter()
                .map(|c| (c.agent_id.clone(), c))
                .collect();
            let configs: std::collections::HashMap<_, _> =
                store.config_statuses()?.into_iter().collect();
            for a in store.agents()? {
                let c = creds.get(&a.id);
                let config = match configs.get(&a.id) {
                    None => "-".to_string(),
                    Some(s) if s.error.is_empty() => format!("v{}", s.version),
                    Some(s) => format!("v{} (ditolak/refused: {})", s.version, s.error),
                };
                let state = match c {
                    Some(c) if c.revoked => "dicabut/revoked",
                    Some(c) if c.disabled => "nonaktif/disabled",
                    _ => "aktif/active",
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\tkonflik/conflicts={}\tstatus={state}\tkedaluwarsa/expires={}\tpeer={} {}\tkonfigurasi/config={config}",
                    a.id,
                    a.opd,
                    a.version.unwrap_or_else(|| "-".into()),
                    a.conflicts,
                    when(c.and_then(|c| c.expires_at_ms)),
                    c.and_then(|c| c.last_peer.as_deref()).unwrap_or("-"),
                    when(c.and_then(|c| c.last_auth_at_ms)),
                )?;
            }
        }
        AgentCmd::Disable { agent_id } => {
            let msg = admin::agent::credential(store, &Actor::cli(), &agent_id, Switch::Disable)?;
            writeln!(out, "{msg}")?;
        }
        AgentCmd::Enable { agent_id } => {
            let msg = admin::agent::credential(store, &Actor::cli(), &agent_id, Switch::Enable)?;
            writeln!(out, "{msg}")?;
        }
        AgentCmd::Revoke { agent_id } => {
            let msg = admin::agent::credential(store, &Actor::cli(), &agent_id, Switch::Revoke)?;
            writeln!(out, "{msg}")?;
        }
        AgentCmd::Rotate { agent_id, expires } => {
            let (token, expires_at_ms) =
                admin::agent::rotate(store, &Actor::cli(), &agent_id, expires)?;
            writeln!(
                err,
                "Token baru agen `{agent_id}` (hanya ditampilkan sekali) / new token of agent `{agent_id}`, shown only once; \
                 the old one no longer works (expires: {}). Put it in the agent's token file:",
                when(expires_at_ms)
            )?;
            writeln!(out, "{token}")?;
        }
        AgentCmd::IssueCert {
            agent_id,
            csr,
            out: path,
            validity,
        } => issue_cert(store, &cfg.data_dir, &agent_id, &csr, &path, validity, out)?,
    }
    Ok(())
}

/// `agent issue-cert`: refuse unknown, revoked and disabled agents; sign
/// the CSR with the built-in CA; record the serial.
fn issue_cert(
    store: &dyn Store,
    data_dir: &std::path::Path,
    agent_id: &str,
    csr: &std::path::Path,
    path: &std::path::Path,
    validity: Option<std::time::Duration>,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let io = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |source| crate::tls::TlsError::Io { path: p, source }
    };
    match store.credentials()?.iter().find(|c| c.agent_id == agent_id) {
        None => return Err(StoreError::UnknownAgent(agent_id.to_string()).into()),
        Some(c) if c.revoked => return Err(StoreError::Revoked(agent_id.to_string()).into()),
        Some(c) if c.disabled => {
            return Err(StoreError::NotStored(format!(
                "agen `{agent_id}` dinonaktifkan / agent `{agent_id}` is disabled; \
                 `pantau-collector agent enable {agent_id}` first"
            ))
            .into());
        }
        Some(_) => {}
    }
    let csr_pem = std::fs::read_to_string(csr).map_err(io(csr))?;
    let files = crate::tls::CaFiles::in_data_dir(data_dir);
    if !files.ca_key().exists() {
        crate::tls::ca_init(data_dir, &[], true)?;
    }
    let issued = crate::mtls::issue_client_cert(
        &crate::tls::CaFiles::in_data_dir(data_dir),
        &csr_pem,
        agent_id,
        validity.unwrap_or(crate::mtls::DEFAULT_CLIENT_VALIDITY),
    )?;
    store.record_client_cert(
        agent_id,
        &issued.serial,
        crate::store::now_ms(),
        issued.not_after_ms,
    )?;
    std::fs::write(path, &issued.pem).map_err(io(path))?;
    writeln!(
        out,
        "Sertifikat klien agen `{agent_id}` / client certificate of agent `{agent_id}`: {} \
         (serial {}, berlaku sampai / valid until {})",
        path.display(),
        issued.serial,
        when(Some(issued.not_after_ms))
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults with SQLite in `dir`.
    fn cfg_in(dir: &std::path::Path) -> CollectorConfig {
        let mut c = CollectorConfig::defaults();
        c.data_dir = dir.to_path_buf();
        c.store_url = None;
        c
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn opd_and_agent_commands_print_what_the_binary_printed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg_in(dir.path());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let add = |id: &str| OpdCmd::Add {
            id: id.into(),
            name: "Dinas Kesehatan".into(),
        };
        opd(&cfg, add("dinkes"), &mut out).unwrap();
        assert_eq!(
            text(std::mem::take(&mut out)),
            "OPD `dinkes` ditambahkan / added: Dinas Kesehatan\n"
        );
        let e = opd(&cfg, add("dinkes"), &mut out).unwrap_err();
        assert_eq!(e.to_string(), "OPD `dinkes` already exists");
        assert!(matches!(
            opd(&cfg, add("bad id"), &mut out),
            Err(AdminError::Invalid(e)) if e.field() == Some("id")
        ));
        let add_agent = |id: &str, opd: &str| AgentCmd::Add {
            agent_id: id.into(),
            opd: opd.into(),
            expires: std::time::Duration::from_secs(3600),
            print_token: true,
        };
        let hint = crate::cli::enrol::EnrolHint::default();
        let e = agent(&cfg, add_agent("a1", "nope"), &hint, &mut out, &mut err).unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::UnknownOpd(_))),
            "{e}"
        );
        agent(&cfg, add_agent("a1", "dinkes"), &hint, &mut out, &mut err).unwrap();
        let token = text(std::mem::take(&mut out));
        assert_eq!(
            token.trim().len(),
            token.len() - 1,
            "the token alone on stdout"
        );
        assert!(text(std::mem::take(&mut err)).starts_with("Agent `a1` added to OPD `dinkes`."));
        opd(&cfg, OpdCmd::List { all: false }, &mut out).unwrap();
        assert_eq!(
            text(std::mem::take(&mut out)),
            "dinkes\tDinas Kesehatan\t1 agent(s)\n"
        );
        agent(&cfg, AgentCmd::List, &hint, &mut out, &mut err).unwrap();
        assert_eq!(
            text(out),
            "a1\tdinkes\t-\tkonflik/conflicts=0\tstatus=aktif/active\tkedaluwarsa/expires=-\tpeer=- -\tkonfigurasi/config=-\n"
        );
    }

    #[test]
    fn credential_commands_change_the_state_and_name_unknown_agents() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cfg_in(dir.path());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let hint = crate::cli::enrol::EnrolHint::default();
        let add = OpdCmd::Add {
            id: "dinkes".into(),
            name: "Dinas Kesehatan".into(),
        };
        opd(&cfg, add, &mut out).unwrap();
        let add = AgentCmd::Add {
            agent_id: "a1".into(),
            opd: "dinkes".into(),
            expires: std::time::Duration::from_secs(86_400),
            print_token: true,
        };
        agent(&cfg, add, &hint, &mut out, &mut err).unwrap();
        let first = text(std::mem::take(&mut out));
        let list = |out: &mut Vec<u8>, err: &mut Vec<u8>| {
            agent(&cfg, AgentCmd::List, &hint, out, err).unwrap();
            text(std::mem::take(out))
        };
        let id = || "a1".to_string();
        agent(
            &cfg,
            AgentCmd::Disable { agent_id: id() },
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap();
        assert!(list(&mut out, &mut err).contains("status=nonaktif/disabled"));
        agent(
            &cfg,
            AgentCmd::Enable { agent_id: id() },
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap();
        assert!(list(&mut out, &mut err).contains("status=aktif/active"));
        let rotate = AgentCmd::Rotate {
            agent_id: id(),
            expires: Some(parse_expiry("90d").unwrap()),
        };
        out.clear();
        agent(&cfg, rotate, &hint, &mut out, &mut err).unwrap();
        let second = text(std::mem::take(&mut out));
        assert_ne!(first, second);
        assert_eq!(
            second.trim().len(),
            second.len() - 1,
            "the token alone on stdout"
        );
        assert!(!list(&mut out, &mut err).contains("kedaluwarsa/expires=-"));
        agent(
            &cfg,
            AgentCmd::Revoke { agent_id: id() },
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap();
        assert!(list(&mut out, &mut err).contains("status=dicabut/revoked"));
        let e = agent(
            &cfg,
            AgentCmd::Enable { agent_id: id() },
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::Revoked(_))),
            "{e}"
        );
        let e = agent(
            &cfg,
            AgentCmd::Disable {
                agent_id: "nope".into(),
            },
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap_err();
        assert!(e.to_string().contains("agent `nope` does not exist"), "{e}");
        for bad in ["", "90", "0d", "x d", "-1d", "90w", "99999d"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_expiry("12h").unwrap().as_secs(), 43_200);
    }
}
