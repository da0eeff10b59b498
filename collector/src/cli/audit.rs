//! `pantau-collector audit list|export` and `verify-audit`: read, forward
//! and check the hash-chained audit log (see [`crate::audit`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::audit::{self, AuditEntry, AuditQuery};
use crate::config::CollectorConfig;
use crate::store::StoreError;

/// `pantau-collector audit ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Show the audit log: seq, time, actor, source, action, object, before ->
    /// after. Example: pantau-collector audit list --since 2026-01-01 --json
    List {
        /// Only entries recorded from this day or time on (2026-12-04 is the
        /// collector's local day; or 2026-12-04 08:00, or RFC 3339).
        #[arg(long)]
        since: Option<crate::when::When>,
        /// One JSON object per line (for a SIEM, or `verify-audit --file`).
        #[arg(long)]
        json: bool,
    },
    /// Send entries to syslog (RFC 5424 over UDP) given here or as `[audit]
    /// syslog`; without either, print them as JSON lines.
    /// Example: pantau-collector audit export --syslog udp://10.0.0.9:514
    Export {
        /// `udp://host:port`.
        #[arg(long)]
        syslog: Option<String>,
        /// Only entries recorded from this day or time on (2026-12-04 is the
        /// collector's local day; or 2026-12-04 08:00, or RFC 3339).
        #[arg(long)]
        since: Option<crate::when::When>,
    },
}

/// Why an audit command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Syslog forwarding failed.
    #[error(transparent)]
    Syslog(#[from] audit::SyslogError),
    /// The file to check cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file to check is not JSON lines of audit entries.
    #[error("{path}: {source}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Cause.
        source: audit::JsonlError,
    },
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] audit::Break),
    /// Output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Run an `audit` command on the configured store.
pub fn audit(
    cfg: &CollectorConfig,
    cmd: AuditCmd,
    out: &mut dyn Write,
) -> Result<(), AuditCliError> {
    let store = crate::cli::open_store(cfg)?;
    match cmd {
        AuditCmd::List { since, json } => {
            let entries = store.audit_list(&AuditQuery {
                after_seq: None,
                since_ms: since.map(|w| w.start_ms(cfg.display.utc_offset_minutes)),
            })?;
            if json {
                out.write_all(audit::to_jsonl(&entries).as_bytes())?;
            } else {
                for e in &entries {
                    writeln!(
                        out,
                        "{}\t{}\t{}:{}\t{}\t{}\t{}\t{} -> {}",
                        e.seq,
                        time(e.time_ms),
                        e.actor_kind,
                        e.actor_name,
                        e.source,
                        e.action,
                        e.object,
                        crate::store::audit::canonical_json(&e.before),
                        crate::store::audit::canonical_json(&e.after),
                    )?;
                }
                writeln!(out, "{} entri / entries", entries.len())?;
            }
        }
        AuditCmd::Export { syslog, since } => {
            let entries = store.audit_list(&AuditQuery {
                after_seq: None,
                since_ms: since.map(|w| w.start_ms(cfg.display.utc_offset_minutes)),
            })?;
            match syslog.or_else(|| cfg.audit_syslog.clone()) {
                Some(addr) => {
                    let n = audit::send_syslog(&addr, &entries)?;
                    writeln!(out, "{n} entri dikirim ke / entries sent to syslog {addr}")?;
                }
                None => out.write_all(audit::to_jsonl(&entries).as_bytes())?,
            }
        }
    }
    Ok(())
}

/// `pantau-collector verify-audit [--file F]`: check the store's whole log,
/// or an exported JSON-lines file, from seq 1. The message names the head.
pub fn verify_audit(cfg: &CollectorConfig, file: Option<&Path>) -> Result<String, AuditCliError> {
    let (entries, what): (Vec<AuditEntry>, String) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| AuditCliError::Read {
                path: path.to_path_buf(),
                source,
            })?;
            let entries = audit::from_jsonl(&text).map_err(|source| AuditCliError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
            (entries, path.display().to_string())
        }
        None => {
            let store = crate::cli::open_store(cfg)?;
            let what = match &cfg.store_url {
                Some(url) => crate::store::postgres::redact(url),
                None => cfg.data_dir.display().to_string(),
            };
            (store.audit_list(&AuditQuery::default())?, what)
        }
    };
    audit::verify(&entries)?;
    Ok(match entries.last() {
        Some(h) => format!(
            "OK: {} entri audit utuh / audit entries intact in {what}; kepala / head seq {} hash {}",
            entries.len(),
            h.seq,
            h.hash
        ),
        None => format!("OK: log audit kosong / the audit log is empty in {what}"),
    })
}

/// After a command: forward the entries it added (seq above `head`) to
/// `[audit] syslog`, if set. A failure is reported, never fatal: the
/// entries are stored and `audit export` sends them again.
pub fn forward_new(cfg: &CollectorConfig, head: i64) {
    let Some(addr) = &cfg.audit_syslog else {
        return;
    };
    let sent = crate::cli::open_store(cfg)
        .map_err(AuditCliError::from)
        .and_then(|s| {
            let q = AuditQuery {
                after_seq: Some(head),
                since_ms: None,
            };
            Ok(s.audit_list(&q)?)
        })
        .and_then(|entries| Ok(audit::send_syslog(addr, &entries)?));
    if let Err(e) = sent {
        eprintln!(
            "pantau-collector: peringatan / warning: audit entries not forwarded to syslog ({e}); \
             send them with `pantau-collector audit export`"
        );
    }
}

/// The audit head before a command, for [`forward_new`] (0 when no syslog
/// is configured or the store cannot be opened).
pub fn head(cfg: &CollectorConfig) -> i64 {
    if cfg.audit_syslog.is_none() {
        return 0;
    }
    crate::cli::open_store(cfg)
        .and_then(|s| s.audit_head())
        .unwrap_or(0)
}
