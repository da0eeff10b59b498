//! `pantau-collector ca`: the built-in CA of the agents' gRPC port, for
//! provinces without their own PKI.

use std::io::Write;
use std::path::Path;

use crate::config::CollectorConfig;
use crate::tls::{self, TlsError};

/// `ca` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CaCmd {
    /// Create the CA and the collector's server certificate in `<data_dir>/tls`.
    ///
    /// Example: pantau-collector ca init --name pantau.sulbarprov.go.id --name 10.10.0.5
    Init {
        /// DNS name or IP address agents use to reach the collector (repeatable;
        /// localhost, 127.0.0.1 and ::1 are always included, plus tls.names).
        #[arg(long = "name")]
        names: Vec<String>,
        /// Keep an existing CA and only issue a new server certificate
        /// (e.g. after adding a name).
        #[arg(long)]
        reissue: bool,
    },
    /// Print the CA certificate's path and SHA-256 fingerprint.
    Show,
}

/// Why a `ca` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CaCliError {
    /// TLS material.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The audit log could not be written.
    #[error(transparent)]
    Audit(#[from] crate::store::StoreError),
    /// Output could not be written.
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
}

/// Run a `ca` command.
pub fn ca(cfg: &CollectorConfig, cmd: CaCmd, out: &mut dyn Write) -> Result<(), CaCliError> {
    match cmd {
        CaCmd::Init { names, reissue } => {
            let mut all = cfg.tls.names.clone();
            all.extend(names);
            let info = tls::ca_init(&cfg.data_dir, &all, reissue)?;
            let store = crate::cli::open_store(cfg)?;
            let after = serde_json::json!({
                "fingerprint": info.fingerprint, "names": info.names, "reissue": reissue,
            });
            let (actor, action) = (crate::audit::Actor::cli(), crate::audit::Action::CaInit);
            crate::audit::record(
                &*store,
                &actor,
                action,
                "ca",
                serde_json::Value::Null,
                after,
            )?;
            writeln!(
                out,
                "CA        : {}\nKunci CA / CA key (0600, jangan disalin / never copy): {}\n\
                 Sertifikat server / server certificate: {} (names: {})\n\
                 Sidik jari CA / CA fingerprint (SHA-256): {}\n\
                 Salin ca.crt ke agen (`pantau-agent enroll --ca`), dan cocokkan sidik jarinya.\n\
                 Copy ca.crt to the agents (`pantau-agent enroll --ca`) and compare the fingerprint.",
                info.files.ca_cert().display(),
                info.files.ca_key().display(),
                info.files.server_cert().display(),
                info.names.join(", "),
                info.fingerprint
            )?;
        }
        CaCmd::Show => show(&cfg.data_dir, out)?,
    }
    Ok(())
}

fn show(data_dir: &Path, out: &mut dyn Write) -> Result<(), CaCliError> {
    let files = tls::CaFiles::in_data_dir(data_dir);
    let fp = tls::fingerprint_file(&files.ca_cert())?;
    writeln!(out, "{}\n{fp}", files.ca_cert().display())?;
    for (what, path) in [("CA", files.ca_cert()), ("server", files.server_cert())] {
        let Some(v) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|pem| tls::cert_validity(&pem))
        else {
            continue;
        };
        let day = |s: i64| {
            time::OffsetDateTime::from_unix_timestamp(s)
                .map(|t| t.date().to_string())
                .unwrap_or_else(|_| s.to_string())
        };
        writeln!(
            out,
            "{what}: berlaku / valid {} .. {} (UTC){}",
            day(v.not_before),
            day(v.not_after),
            if v.names.is_empty() {
                String::new()
            } else {
                format!(", names: {}", v.names.join(", "))
            }
        )?;
    }
    Ok(())
}
