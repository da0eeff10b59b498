//! One-time enrolment codes from the command line: what `agent add` prints
//! for the new agent, and `agent enrol-code`, which issues a fresh code for
//! an existing agent (its earlier unused codes become void).

use std::io::Write;
use std::time::Duration;

use crate::config::CollectorConfig;
use crate::store::Store;

/// What the printed `pantau-agent enroll` command needs to know of this
/// collector: the address agents use and the CA fingerprint.
#[derive(Debug, Clone, Default)]
pub struct EnrolHint {
    /// The collector's gRPC URL as agents reach it.
    pub url: String,
    /// SHA-256 of the CA agents pin (built-in CA, or the last certificate of
    /// an own `tls.cert` chain); `None` when unknown or with `tls.insecure`.
    pub fingerprint: Option<String>,
}

impl EnrolHint {
    /// From the configuration: the first `tls.names` entry or the listen
    /// address (a placeholder for an unspecified one), and the CA.
    pub fn from_config(cfg: &CollectorConfig) -> Self {
        let port = cfg.grpc_listen.port();
        let host = match cfg.tls.names.first() {
            Some(n) if n.contains(':') => format!("[{n}]"),
            Some(n) => n.clone(),
            None if !cfg.grpc_listen.ip().is_unspecified() => match cfg.grpc_listen.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            },
            None => "ALAMAT-COLLECTOR".to_string(),
        };
        let scheme = if cfg.tls.insecure { "http" } else { "https" };
        EnrolHint {
            url: format!("{scheme}://{host}:{port}"),
            fingerprint: crate::tls::enrol_ca_pem(cfg)
                .as_deref()
                .and_then(crate::tls::fingerprint_pem),
        }
    }
}

/// Why a code could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum EnrolCodeError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// No such agent.
    #[error(
        "agen `{0}` tidak terdaftar; tambahkan dengan `pantau-collector agent add` / \
         agent `{0}` is not registered; add it with `pantau-collector agent add`"
    )]
    UnknownAgent(String),
    /// The lifetime is not usable.
    #[error("--expires {0}: must be between 1s and 30days / harus antara 1s dan 30days")]
    Lifetime(String),
    /// Output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Issue a code for `agent_id` valid for `lifetime`, print it alone on
/// `out` (so it can be piped into a file) and the enroll steps on `err`.
pub fn issue(
    store: &dyn Store,
    agent_id: &str,
    lifetime: Duration,
    hint: &EnrolHint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), EnrolCodeError> {
    use crate::admin::{ActionError, agent};
    let issued = agent::enrol_code(store, &crate::audit::Actor::cli(), agent_id, lifetime)
        .map_err(|e| match e {
            ActionError::Invalid { .. } => {
                EnrolCodeError::Lifetime(humantime::format_duration(lifetime).to_string())
            }
            ActionError::Store(crate::store::StoreError::UnknownAgent(a)) => {
                EnrolCodeError::UnknownAgent(a)
            }
            ActionError::Store(e) => EnrolCodeError::Store(e),
            ActionError::Hash(e) => {
                EnrolCodeError::Store(crate::store::StoreError::NotStored(e.to_string()))
            }
        })?;
    let (code, expires) = (issued.code, issued.expires_at_ms);
    let until = chrono::DateTime::from_timestamp_millis(expires)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    writeln!(
        err,
        "Kode pendaftaran sekali pakai untuk `{agent_id}`, berlaku sampai {until} (dicetak \
         sekali; kode lama yang belum dipakai kini batal).\nOne-time enrolment code for \
         `{agent_id}`, valid until {until} (shown once; earlier unused codes are now void):"
    )?;
    writeln!(out, "{code}")?;
    let pin = match &hint.fingerprint {
        Some(fp) => {
            writeln!(err, "Sidik jari CA / CA fingerprint (SHA-256): {fp}")?;
            format!(" --ca-fingerprint {fp}")
        }
        None => {
            writeln!(
                err,
                "Sidik jari CA belum diketahui (CA bawaan dibuat oleh `pantau-collector ca init` \
                 atau saat collector pertama kali berjalan; lihat `ca show`), jadi agen memakai \
                 berkas CA. / The CA fingerprint is not known yet (the built-in CA is made by \
                 `pantau-collector ca init` or at the collector's first start; see `ca show`), \
                 so the agent uses the CA file."
            )?;
            " --ca /etc/pantau/collector-ca.crt".to_string()
        }
    };
    writeln!(
        err,
        "Di mesin agen, simpan kode di berkas lalu jalankan / On the agent machine, save the \
         code in a file and run:\n  sudo pantau-agent enroll --collector {}{pin} --code-file \
         /root/pantau.code\n(atau / or `--code -` dan tempel kode / and paste the code)",
        hint.url
    )?;
    Ok(())
}

/// `agent enrol-code ID`: open the configured store and issue a fresh code.
pub fn enrol_code(
    cfg: &crate::config::CollectorConfig,
    agent_id: &str,
    lifetime: Duration,
    hint: &EnrolHint,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), EnrolCodeError> {
    let store = crate::cli::open_store(cfg)?;
    issue(&*store, agent_id, lifetime, hint, out, err)
}

/// Parse `--expires` (`24h`, `30min`, `1s`, ...).
pub fn parse_lifetime(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Redeemed, Registry, now_ms};

    #[test]
    fn a_fresh_code_voids_the_old_one_and_only_the_code_is_on_stdout() {
        let dir = tempfile::tempdir().unwrap();
        use crate::store::EnrolCodes;
        let store = crate::store::SqliteStore::open(dir.path()).unwrap();
        store.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        store.add_agent("a1", "dinkes", &[1; 32]).unwrap();
        let hint = EnrolHint {
            url: "https://10.10.0.5:7470".into(),
            fingerprint: Some("AB:CD".into()),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let day = Duration::from_secs(86400);
        issue(&store, "a1", day, &hint, &mut out, &mut err).unwrap();
        let first = String::from_utf8(std::mem::take(&mut out)).unwrap();
        let note = String::from_utf8(std::mem::take(&mut err)).unwrap();
        assert!(
            first.starts_with("PE-") && first.lines().count() == 1,
            "{first}"
        );
        assert!(
            note.contains(
                "pantau-agent enroll --collector https://10.10.0.5:7470 --ca-fingerprint AB:CD"
            ),
            "{note}"
        );
        assert!(!note.contains(first.trim()), "the code only on stdout");
        issue(&store, "a1", day, &hint, &mut out, &mut err).unwrap();
        let second = String::from_utf8(out).unwrap();
        let redeem = |code: &str| {
            store
                .redeem_enrol_code(&crate::enrol::code_digest(code), &[2; 32], now_ms())
                .unwrap()
        };
        assert_eq!(redeem(first.trim()), Redeemed::Unknown);
        assert!(matches!(redeem(second.trim()), Redeemed::Enrolled(_)));
        let e = issue(&store, "nope", day, &hint, &mut Vec::new(), &mut Vec::new()).unwrap_err();
        assert!(matches!(e, EnrolCodeError::UnknownAgent(_)), "{e}");
        let e = issue(
            &store,
            "a1",
            Duration::ZERO,
            &hint,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(e, EnrolCodeError::Lifetime(_)), "{e}");
    }
}
