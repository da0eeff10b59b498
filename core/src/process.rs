//! Process plumbing shared by the `pantau-agent` and `pantau-collector`
//! binaries: logging set-up. The shutdown signal needs tokio, so each
//! binary's library keeps its own (`pantau_agent::process`,
//! `pantau_collector::process`).

/// Log to stderr, as text or JSON lines (for journald or Loki); the level
/// comes from `RUST_LOG` (default `info`). Colour only on a terminal and
/// without `NO_COLOR`: journald, files and pipes get plain text.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if json { b.json().init() } else { b.init() }
}
