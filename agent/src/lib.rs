//! Pantau agent: probes connectivity from an OPD office and streams numbered
//! results to the collector.
//!
//! - [`config`]: TOML file + `PANTAU_AGENT__*` overrides -> validated config.
//! - [`model`]: domain types (targets, observations, records).
//! - [`probe`]: icmp, tcp, http, dns, traceroute, bandwidth (throughput tests) and link
//!   (SNMP v2c or v3 authPriv, or /proc/net/dev utilisation) probes behind one trait.
//! - [`stats`]: RTT and loss statistics.
//! - [`schedule`]: spreads targets over their interval, bounded concurrency.
//! - [`spool`]: numbered results waiting for the collector's ack.
//! - [`export`]: the gRPC stream to the collector.
//! - [`central`]: targets pushed by the collector (signed, validated,
//!   persisted in the spool directory, swapped into the schedule).
//! - [`wire`]: conversion to `pantau.v1` types.
//! - [`check`]: one-shot run of every probe for `pantau-agent check`.
//! - [`enroll`]: `pantau-agent enroll`, one-step installation against the collector.
//! - [`process`]: logging and the shutdown signal for the binary.
//!
//! Shared vocabulary (probe kinds, groups, outcomes, the id rule, config
//! loading, CLI docs) lives in `pantau_core`; [`model`] re-exports the enums.

pub mod central;
pub mod check;
pub mod config;
pub mod enroll;
pub mod export;
pub mod identity;
pub mod model;
pub mod pin;
pub mod probe;
pub mod process;
pub mod schedule;
pub mod spool;
pub mod stats;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::AgentConfig;
use crate::export::LinkState;
use crate::model::{Health, Measurement, Observation, Outcome};
use crate::probe::Prober;
use crate::spool::DiskSpool;

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The probes cannot be set up (the HTTP client's TLS setup failed).
    #[error(transparent)]
    Probes(#[from] probe::ProbeSetupError),
    /// No usable collector token.
    #[error(transparent)]
    Token(#[from] config::TokenError),
    /// The spool directory cannot be used.
    #[error(transparent)]
    Spool(#[from] spool::SpoolError),
}

impl RunError {
    /// Whether another pantau-agent holds the spool: not a configuration
    /// fault, and it may clear once the other process stops.
    pub fn spool_in_use(&self) -> bool {
        matches!(self, RunError::Spool(e) if e.in_use())
    }
}

/// Run the agent until `shutdown` is cancelled.
pub async fn run(cfg: AgentConfig, shutdown: CancellationToken) -> Result<(), RunError> {
    let token = cfg.require_token()?;
    let cfg = Arc::new(cfg);
    let mut prober = Prober::new()?;
    prober.configure_bandwidth(
        Some(token.clone()),
        &cfg.collector_tls,
        cfg.bandwidth.clone(),
    )?;
    let prober = Arc::new(prober);
    let central = Arc::new(central::Central::load(&cfg));
    if central
        .targets()
        .iter()
        .any(|t| t.kind() == model::ProbeKind::Icmp)
        && let Err(e) = prober.icmp_preflight()
    {
        tracing::error!(error = %e, "ICMP probes will fail until this is fixed");
    }
    let (spool, recovered) = DiskSpool::open(cfg.spool.clone())?;
    if recovered.corrupt_bytes > 0 || recovered.lost > 0 {
        tracing::warn!(
            corrupt_bytes = recovered.corrupt_bytes,
            seq_skipped = recovered.seq_skipped,
            lost = recovered.lost,
            "spool recovered after damage; the skipped data is reported to the collector"
        );
    }
    let spool = Arc::new(spool);
    let link = Arc::new(LinkState::default());
    let _ = link.central.set(Arc::clone(&central));
    info!(agent = %cfg.agent_id, targets = central.targets().len(), collectors = ?cfg.collector_urls,
        epoch = spool.state().epoch, "pantau-agent starting");

    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let seed = spool.state().epoch;
    let permits = Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent_probes));
    let scheduler = tokio::spawn(schedule::run_watched(
        central.subscribe(),
        prober,
        Arc::clone(&permits),
        seed,
        tx,
        shutdown.clone(),
    ));
    let intake = {
        let spool = Arc::clone(&spool);
        tokio::spawn(async move {
            while let Some((kind, obs)) = rx.recv().await {
                spool.append(Some(kind), obs);
            }
        })
    };
    let heartbeat = tokio::spawn(heartbeats(
        Arc::clone(&cfg),
        Arc::clone(&spool),
        Arc::clone(&link),
        permits,
        shutdown.clone(),
    ));
    let exporter = tokio::spawn(export::run(
        Arc::clone(&cfg),
        token,
        Arc::clone(&spool),
        link,
        shutdown.clone(),
    ));
    let syncer = tokio::spawn(sync_spool(Arc::clone(&spool), shutdown.clone()));
    let _ = tokio::join!(scheduler, intake, heartbeat, exporter, syncer);
    // Whatever was probed last is made durable before exit.
    spool.flush();
    info!("pantau-agent stopped");
    Ok(())
}

/// With the interval fsync policy, make appended results durable (and so
/// sendable) once per interval.
async fn sync_spool(spool: Arc<DiskSpool>, shutdown: CancellationToken) {
    let spool::Fsync::Interval(every) = spool.fsync_policy() else {
        return;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => spool.flush(),
        }
    }
}

async fn heartbeats(
    cfg: Arc<AgentConfig>,
    spool: Arc<DiskSpool>,
    link: Arc<LinkState>,
    permits: Arc<tokio::sync::Semaphore>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut tick = tokio::time::interval(cfg.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let st = spool.state();
        let health = Health {
            uptime: started.elapsed(),
            spool_records: st.records,
            spool_bytes: st.bytes,
            dropped: st.dropped,
            clock_offset_ms: link.clock_offset_ms.load(Ordering::Relaxed),
            probes_in_flight: (cfg.max_concurrent_probes - permits.available_permits()) as u32,
            corrupt_bytes: st.corrupt_bytes,
            seq_skipped: st.seq_skipped,
        };
        spool.append(
            None,
            Observation {
                target_id: String::new(),
                observed_at: SystemTime::now(),
                outcome: Outcome::Ok,
                detail: String::new(),
                measurement: Measurement::Heartbeat(health),
            },
        );
    }
}
