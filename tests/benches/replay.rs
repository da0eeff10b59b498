//! Time to replay a 24-hour backlog of a typical agent (50 targets every
//! 30 s = 144 000 results) from its disk spool into a collector over
//! loopback, committed and acknowledged. Prints the figure.
//! Run: cargo bench -p pantau-tests --bench replay

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use pantau_agent::config::{RawAgent, RawCollector, RawConfig, RawSpool, RawTarget};
use pantau_agent::export::{self, LinkState};
use pantau_agent::model::{Measurement, Observation, Outcome, PingStats, ProbeKind};
use pantau_agent::spool::DiskSpool;
use tokio_util::sync::CancellationToken;

const TARGETS: u64 = 50;
const RESULTS: u64 = TARGETS * 2 * 60 * 24;

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let token = pantau_collector::auth::new_token();
    {
        let c = pantau_collector::store::open(&data).expect("store");
        pantau_collector::store::add_opd(&c, "bench", "Bench OPD").expect("opd");
        pantau_collector::store::add_agent(
            &c,
            "bench-1",
            "bench",
            &pantau_collector::auth::digest(&token),
        )
        .expect("agent");
    }
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = grpc.local_addr().expect("addr");
    let mut ccfg = pantau_collector::config::CollectorConfig::defaults();
    ccfg.data_dir = data.clone();
    ccfg.tls.insecure = true;
    let stop = CancellationToken::new();
    let server = tokio::spawn(pantau_collector::serve(ccfg, grpc, http, stop.clone()));

    let targets = (0..TARGETS)
        .map(|i| RawTarget {
            id: Some(format!("t{i:02}")),
            group: Some("intranet".into()),
            kind: Some("icmp".into()),
            address: Some(format!("10.0.{i}.1")),
            ..RawTarget::default()
        })
        .collect();
    let cfg = RawConfig {
        agent: RawAgent {
            id: Some("bench-1".into()),
            ..RawAgent::default()
        },
        collector: RawCollector {
            url: Some(format!("http://{addr}")),
            token: Some(token.clone()),
            // Measures replay, not TLS: both sides plaintext, explicitly.
            insecure: Some(true),
            ..RawCollector::default()
        },
        spool: RawSpool {
            dir: Some(dir.path().join("spool")),
            ..RawSpool::default()
        },
        targets,
        ..RawConfig::default()
    }
    .validate("bench".into())
    .expect("config");

    // Fill the spool with a day of results, stamped over the last 24 hours.
    let (spool, _) = DiskSpool::open(cfg.spool.clone()).expect("spool");
    let day_ago = SystemTime::now() - Duration::from_secs(86_400);
    let fill = Instant::now();
    for i in 0..RESULTS {
        let rtt = Duration::from_micros(2000 + i % 900);
        spool.append(
            Some(ProbeKind::Icmp),
            Observation {
                target_id: format!("t{:02}", i % TARGETS),
                observed_at: day_ago + Duration::from_millis(i * 600),
                outcome: Outcome::Ok,
                detail: String::new(),
                measurement: Measurement::Ping(PingStats {
                    sent: 5,
                    received: 5,
                    samples: vec![rtt; 5],
                    min: rtt,
                    avg: rtt,
                    max: rtt,
                    stddev: Duration::ZERO,
                }),
            },
        );
    }
    spool.flush();
    println!(
        "backlog: {RESULTS} results spooled in {:.2} s ({} bytes)",
        fill.elapsed().as_secs_f64(),
        spool.state().bytes
    );

    let spool = Arc::new(spool);
    let start = Instant::now();
    let exporter = tokio::spawn(export::run(
        Arc::new(cfg),
        token,
        Arc::clone(&spool),
        Arc::new(LinkState::default()),
        stop.clone(),
    ));
    while spool.state().records > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "replay did not finish in 10 minutes"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "replay of a 24 h backlog (50 targets x 30 s): {RESULTS} results committed and acknowledged in {secs:.2} s ({:.0} results/s)",
        RESULTS as f64 / secs
    );
    stop.cancel();
    let _ = exporter.await;
    let _ = server.await;
    let c = pantau_collector::store::open(&data).expect("store");
    let stored: i64 = c
        .query_row("SELECT COUNT(*) FROM result", [], |r| r.get(0))
        .expect("count");
    assert_eq!(stored as u64, RESULTS, "every result stored once");
    println!("stored rows: {stored}");
}
