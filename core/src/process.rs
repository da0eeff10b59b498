//! Process plumbing shared by the `pantau-agent` and `pantau-collector`
//! binaries: logging set-up. The shutdown signal needs tokio, so each
//! binary's library keeps its own (`pantau_agent::process`,
//! `pantau_collector::process`).

/// Log to stderr, as text or JSON lines (for journald or Loki); the level
/// comes from `RUST_LOG` (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json { b.json().init() } else { b.init() }
}
