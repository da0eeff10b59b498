//! Process plumbing of the `pantau-agent` binary: logging (from
//! `pantau_core`) and the shutdown signal, which needs tokio and so cannot
//! live in the core crate.

pub use pantau_core::process::init_logging;

/// Resolve on Ctrl-C or SIGTERM (what systemd sends on stop).
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
