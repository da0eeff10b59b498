//! Spool append throughput with the default fsync policy (sync once a
//! second), records shaped like real ICMP results. Prints the figures.
//! Run: cargo bench -p pantau-agent --bench spool

use std::time::{Duration, Instant, SystemTime};

use pantau_agent::model::{Measurement, Observation, Outcome, PingStats, ProbeKind};
use pantau_agent::spool::{DiskSpool, Fsync, SpoolConfig};

fn ping(i: u64) -> Observation {
    let rtt = Duration::from_micros(1500 + i % 700);
    Observation {
        target_id: format!("target-{:02}", i % 50),
        observed_at: SystemTime::now(),
        outcome: Outcome::Ok,
        detail: String::new(),
        measurement: Measurement::Ping(PingStats {
            sent: 5,
            received: 5,
            samples: vec![rtt; 5],
            min: rtt,
            avg: rtt,
            max: rtt,
            stddev: Duration::from_micros(40),
        }),
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = SpoolConfig {
        dir: dir.path().to_path_buf(),
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(7 * 86400),
        fsync: Fsync::Interval(Duration::from_secs(1)),
    };
    let (spool, _) = DiskSpool::open(cfg).expect("open spool");
    let n = 300_000u64;
    let start = Instant::now();
    let mut last_sync = Instant::now();
    for i in 0..n {
        spool.append(Some(ProbeKind::Icmp), ping(i));
        if last_sync.elapsed() >= Duration::from_secs(1) {
            spool.flush();
            last_sync = Instant::now();
        }
    }
    spool.flush();
    let secs = start.elapsed().as_secs_f64();
    let st = spool.state();
    println!(
        "spool append (fsync every 1 s): {n} records in {secs:.2} s = {:.0} records/s",
        n as f64 / secs
    );
    println!(
        "on disk: {} bytes, {:.1} bytes/record",
        st.bytes,
        st.bytes as f64 / n as f64
    );

    let always_dir = tempfile::tempdir().expect("tempdir");
    let (always, _) = DiskSpool::open(SpoolConfig {
        dir: always_dir.path().to_path_buf(),
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(7 * 86400),
        fsync: Fsync::Always,
    })
    .expect("open spool");
    let m = 2_000u64;
    let start = Instant::now();
    for i in 0..m {
        always.append(Some(ProbeKind::Icmp), ping(i));
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "spool append (fsync always): {m} records in {secs:.2} s = {:.0} records/s",
        m as f64 / secs
    );
}
