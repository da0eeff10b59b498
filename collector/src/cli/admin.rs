//! The registry commands: `opd add|list|contract` and `agent add|enrol-code|list`.
//! Messages and exit codes are the binary's; the commands write to the
//! given outputs so they can be tested without a process.

use std::io::Write;
use std::path::Path;

use clap::Subcommand;
use pantau_core::{AgentId, InvalidId, OpdId};

use crate::auth;
use crate::store::{ApiRead, Registry, SqliteStore, StoreError};

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
    /// List OPDs.
    List,
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
    /// List agents: id, OPD, version, and the conflicting duplicates kept
    /// aside (non-zero: two machines share this agent's identity).
    List,
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
}

/// Open the store in `data_dir` and run an `opd` command.
pub fn opd(data_dir: &Path, cmd: OpdCmd, out: &mut dyn Write) -> Result<(), AdminError> {
    let store = SqliteStore::open(data_dir)?;
    match cmd {
        OpdCmd::Add { id, name } => {
            OpdId::new(id.as_str())?;
            store.add_opd(&id, &name)?;
            writeln!(out, "OPD `{id}` ditambahkan / added: {name}")?;
        }
        OpdCmd::Contract { id, mbps } => {
            let msg = crate::report::capacity::set_contract(&store, &id, mbps)?;
            writeln!(out, "{msg}")?;
        }
        OpdCmd::List => {
            for o in store.opds()? {
                writeln!(out, "{}\t{}\t{} agent(s)", o.id, o.name, o.agents)?;
            }
        }
    }
    Ok(())
}

/// Open the store in `data_dir` and run an `agent` command. The new
/// enrolment code (or with `--print-token` the token) goes alone to `out`
/// (so it can be piped into a file); the notes to `err`.
pub fn agent(
    data_dir: &Path,
    cmd: AgentCmd,
    hint: &crate::cli::enrol::EnrolHint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), AdminError> {
    let store = SqliteStore::open(data_dir)?;
    match cmd {
        AgentCmd::Add {
            agent_id,
            opd,
            expires,
            print_token,
        } => {
            AgentId::new(agent_id.as_str())?;
            // Until enrolment the agent's token is one nobody ever sees.
            let token = auth::new_token();
            store.add_agent(&agent_id, &opd, &auth::digest(&token))?;
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
                crate::cli::enrol::issue(&store, &agent_id, expires, hint, out, err)?;
            }
        }
        AgentCmd::EnrolCode { agent_id, expires } => {
            crate::cli::enrol::issue(&store, &agent_id, expires, hint, out, err)?;
        }
        AgentCmd::List => {
            for a in store.agents()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\tkonflik/conflicts={}",
                    a.id,
                    a.opd,
                    a.version.unwrap_or_else(|| "-".into()),
                    a.conflicts
                )?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn opd_and_agent_commands_print_what_the_binary_printed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let add = |id: &str| OpdCmd::Add {
            id: id.into(),
            name: "Dinas Kesehatan".into(),
        };
        opd(dir.path(), add("dinkes"), &mut out).unwrap();
        assert_eq!(
            text(std::mem::take(&mut out)),
            "OPD `dinkes` ditambahkan / added: Dinas Kesehatan\n"
        );
        let e = opd(dir.path(), add("dinkes"), &mut out).unwrap_err();
        assert_eq!(e.to_string(), "OPD `dinkes` already exists");
        assert!(matches!(
            opd(dir.path(), add("bad id"), &mut out),
            Err(AdminError::Id(_))
        ));
        let add_agent = |id: &str, opd: &str| AgentCmd::Add {
            agent_id: id.into(),
            opd: opd.into(),
            expires: std::time::Duration::from_secs(3600),
            print_token: true,
        };
        let hint = crate::cli::enrol::EnrolHint::default();
        let e = agent(
            dir.path(),
            add_agent("a1", "nope"),
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap_err();
        assert!(
            matches!(e, AdminError::Store(StoreError::UnknownOpd(_))),
            "{e}"
        );
        agent(
            dir.path(),
            add_agent("a1", "dinkes"),
            &hint,
            &mut out,
            &mut err,
        )
        .unwrap();
        let token = text(std::mem::take(&mut out));
        assert_eq!(
            token.trim().len(),
            token.len() - 1,
            "the token alone on stdout"
        );
        assert!(text(std::mem::take(&mut err)).starts_with("Agent `a1` added to OPD `dinkes`."));
        opd(dir.path(), OpdCmd::List, &mut out).unwrap();
        assert_eq!(
            text(std::mem::take(&mut out)),
            "dinkes\tDinas Kesehatan\t1 agent(s)\n"
        );
        agent(dir.path(), AgentCmd::List, &hint, &mut out, &mut err).unwrap();
        assert_eq!(text(out), "a1\tdinkes\t-\tkonflik/conflicts=0\n");
    }
}
