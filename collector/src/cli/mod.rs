//! The commands behind the `pantau-collector` binary, so `main.rs` only
//! parses arguments and dispatches:
//!
//! - [`admin`]: the registry commands (`opd`, `agent`).
//! - [`audit`]: `audit list|export` and `verify-audit`.
//! - [`enrol`]: one-time enrolment codes (`agent add`, `agent enrol-code`).
//! - here: configuration loading, the `serve` command, and the exit-code
//!   and message conventions every command shares.
//!
//! - [`store`]: `store migrate` (SQLite into PostgreSQL).
//! - [`target`]: central targets (`target add|set|remove|import|policy|list|show-effective`).
//! - [`user`]: web users and API tokens (`user`, `token`).
//! - [`report`]: the report commands and listings (`report`, `verify`,
//!   `maintenance`, `incidents`, ...).

pub mod admin;
pub mod audit;
pub mod ca;
pub mod enrol;
pub mod report;
pub mod store;
pub mod target;
pub mod user;

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ServeError;
use crate::config::CollectorConfig;

/// Exit code for a configuration or usage the collector cannot use.
pub const EXIT_CONFIG: u8 = 64;

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeCommandError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The configuration key it came from.
        key: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// A bound socket has no local address.
    #[error("{0}")]
    LocalAddr(std::io::Error),
    /// The collector failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Where the collector reads its configuration when `--config` is not given
/// (the Debian package installs it).
pub const DEFAULT_CONFIG: &str = "/etc/pantau/collector.toml";

/// The configuration file to read: `--config`, else [`DEFAULT_CONFIG`] when
/// it exists.
pub fn config_file(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_path_buf).or_else(|| {
        let default = Path::new(DEFAULT_CONFIG);
        default.is_file().then(|| default.to_path_buf())
    })
}

/// The configuration: the file if given (else the defaults), with the data
/// directory overridden. A bad file is printed and ends in [`EXIT_CONFIG`];
/// so does a command that `needs_data_dir` when neither the file's
/// `server.data_dir` nor `--data-dir` names one (never a silent new
/// database in the working directory).
pub fn config(
    path: Option<&Path>,
    data_dir: Option<&Path>,
    needs_data_dir: bool,
) -> Result<CollectorConfig, ExitCode> {
    let mut cfg = match path {
        Some(p) => CollectorConfig::load(p).map_err(|e| {
            eprint!("{e}");
            ExitCode::from(EXIT_CONFIG)
        })?,
        // No file: the defaults with the environment's overrides, which
        // can be wrong too (`PANTAU_STORE_URL`).
        None => crate::config::RawConfig::default()
            .validate()
            .map_err(|problems| {
                for p in problems {
                    eprintln!(
                        "pantau-collector: invalid configuration (no file, from the environment): {}: {}",
                        p.key, p.message
                    );
                }
                ExitCode::from(EXIT_CONFIG)
            })?,
    };
    if let Some(d) = data_dir {
        cfg.data_dir = d.to_path_buf();
    }
    if needs_data_dir && cfg.data_dir.as_os_str().is_empty() {
        let (file, id, en) = match path {
            Some(p) => (p.display().to_string(), "", ""),
            None => (
                DEFAULT_CONFIG.to_string(),
                " (berkas itu tidak ada)",
                " (that file does not exist)",
            ),
        };
        eprintln!(
            "pantau-collector: direktori data tidak diberikan: isi server.data_dir di {file}{id} \
             atau beri --data-dir; tidak ada basis data baru yang dibuat.\n\
             pantau-collector: no data directory given: set server.data_dir in {file}{en} or \
             pass --data-dir; no new database was created."
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    }
    Ok(cfg)
}

/// The configured store for the admin and report commands: PostgreSQL at
/// `[store] url` when given (as `serve` uses), else SQLite in the data
/// directory.
pub fn open_store(
    cfg: &CollectorConfig,
) -> Result<std::sync::Arc<dyn crate::store::Store>, crate::store::StoreError> {
    crate::store::open_store(cfg.store_url.as_deref(), &cfg.data_dir)
}

/// Print `pantau-collector: {msg}` on stderr; exit code 1.
pub fn fail(msg: impl Display) -> ExitCode {
    eprintln!("pantau-collector: {msg}");
    ExitCode::FAILURE
}

/// Print the message of a command that succeeded, or fail with its error.
pub fn done<E: Display>(r: Result<String, E>) -> ExitCode {
    match r {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// Success, or fail with the error.
pub fn exit<E: Display>(r: Result<(), E>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Run `body` on a new async runtime; Ctrl-C or SIGTERM cancels its token.
pub fn runtime<F, Fut, E>(body: F) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: Display,
{
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the async runtime: {e}")),
    };
    let shutdown = CancellationToken::new();
    rt.block_on(async {
        let s = shutdown.clone();
        tokio::spawn(async move {
            crate::process::shutdown_signal().await;
            s.cancel();
        });
        exit(body(shutdown).await)
    })
}

/// `serve`: bind both listeners, print where, serve until `shutdown`.
pub async fn serve(
    cfg: CollectorConfig,
    shutdown: CancellationToken,
) -> Result<(), ServeCommandError> {
    let bind = |addr: SocketAddr, key: &'static str| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ServeCommandError::Listen { addr, key, source })
    };
    let grpc = bind(cfg.grpc_listen, "server.grpc_listen").await?;
    let http = bind(cfg.http_listen, "server.http_listen").await?;
    let (g, h) = (
        grpc.local_addr().map_err(ServeCommandError::LocalAddr)?,
        http.local_addr().map_err(ServeCommandError::LocalAddr)?,
    );
    // Certificates exist (built-in CA made on first start) before the ready line.
    crate::grpc_tls(&cfg)?;
    println!("pantau-collector listening grpc={g} http={h}");
    crate::serve(cfg, grpc, http, shutdown).await?;
    Ok(())
}
