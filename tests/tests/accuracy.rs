//! Measurement accuracy against emulated links whose true loss and delay are
//! known (issue 4, sections 1-2). The real `pantau-agent run` and
//! `pantau-collector serve` run inside the OPD site namespace; results are
//! read back from the collector's SQLite store, so the whole path
//! agent -> wire -> store is what gets measured.
//!
//! Loss: nftables drops echo requests at the data-centre router at random.
//! Delay: the user-space `echo_responder` answers after a configured delay
//! (kernel echo replies are off in the internet namespace).

mod common;
mod netns;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Proc, enrol, wait_for};
use netns::{Chain, Netns};

/// z for a two-sided 99 % interval.
const Z99: f64 = 2.575_829_303_549;

/// Wilson score interval for `k` successes in `n` trials.
fn wilson(k: u64, n: u64, z: f64) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    (c - h, c + h)
}

fn median(v: &mut [f64]) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A collector and an agent running inside the site namespace.
struct Site {
    // Dropped in this order: the agent stops before its collector.
    agent: Option<Proc>,
    _collector: Proc,
    db: rusqlite::Connection,
    _dir: tempfile::TempDir,
}

/// One stored ICMP result.
#[derive(Debug)]
struct Row {
    observed_at_ms: i64,
    outcome: String,
    sent: u64,
    received: u64,
    samples_ms: Vec<f64>,
}

impl Site {
    /// Start the collector, enrol, and run the agent with `targets` (TOML
    /// `[[targets]]` entries) and `defaults` (TOML lines).
    fn start(ns: &Netns, defaults: &str, targets: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let token = enrol(&data, "opd-uji", "uji-1");
        let collector = ns.start_collector(&data, "127.0.0.1:0", "127.0.0.1:0");
        let cfg = common::agent_config(
            dir.path(),
            "uji-1",
            &collector.grpc,
            &token,
            "heartbeat_interval = \"30s\"",
            &format!("[defaults]\n{defaults}\n\n{targets}"),
        );
        let agent = ns.start_agent(&cfg);
        let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
        Site {
            _dir: dir,
            db,
            _collector: collector.proc,
            agent: Some(agent),
        }
    }

    /// Stored ICMP results, in observation order.
    fn rows(&self) -> Vec<Row> {
        let mut st = self
            .db
            .prepare(
                "SELECT observed_at_ms, outcome, sent, received, data FROM result
                 WHERE kind = 'icmp' ORDER BY observed_at_ms, target_id",
            )
            .unwrap();
        st.query_map([], |r| {
            let data: String = r.get(4)?;
            let v: serde_json::Value = serde_json::from_str(&data).unwrap();
            let samples_ms = v["samples_us"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_u64)
                        .map(|us| us as f64 / 1000.0)
                        .collect()
                })
                .unwrap_or_default();
            Ok(Row {
                observed_at_ms: r.get(0)?,
                outcome: r.get(1)?,
                sent: r.get::<_, Option<i64>>(2)?.unwrap_or(0) as u64,
                received: r.get::<_, Option<i64>>(3)?.unwrap_or(0) as u64,
                samples_ms,
            })
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    /// Poll until at least `n` ICMP results are stored; return them.
    fn wait_rows(&self, n: usize, limit: Duration) -> Vec<Row> {
        wait_for(&format!("{n} ICMP results"), limit, || {
            let rows = self.rows();
            (rows.len() >= n).then_some(rows)
        })
    }

    fn stop_agent(&mut self) {
        if let Some(mut a) = self.agent.take() {
            let status = a.terminate();
            assert!(status.success(), "agent exit status {status:?}");
        }
    }
}

/// `echo_responder` in `ns` with kernel echo replies off, at real-time
/// priority so that the reference delay holds even under CPU load.
fn start_responder(ns: &Netns, delay_ms: u32) -> Proc {
    ns.sysctl("net.ipv4.icmp_echo_ignore_all", "1");
    let mut child = ns
        .cmd("chrt")
        .args(["-f", "50"])
        .arg(env!("CARGO_BIN_EXE_echo_responder"))
        .arg(delay_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start echo_responder");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "echo_responder did not start");
    Proc {
        child,
        name: "echo_responder",
    }
}

/// iputils `ping` from `ns`: the RTTs of the replies, in ms.
fn iputils_ping(ns: &Netns, dst: &str, count: u32) -> Vec<f64> {
    let out = ns
        .cmd("ping")
        .args(["-n", "-c", &count.to_string(), "-i", "0.05", "-W", "2", dst])
        .output()
        .expect("run ping (iputils-ping)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split("time=").nth(1))
        .filter_map(|t| t.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Spin on every core until dropped.
struct Burner {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Burner {
    fn start() -> Burner {
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let threads = (0..cores)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Burner { stop, threads }
    }
}

impl Drop for Burner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn icmp_targets(n: usize, count: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[targets]]\nid = \"inet-{i}\"\ngroup = \"internet\"\nkind = \"icmp\"\n\
                 address = \"{}\"\ncount = {count}\n\n",
                Chain::INET
            )
        })
        .collect()
}

/// Echo requests dropped at random at `percent` %: the measured loss over a
/// fixed number of echoes must be consistent with the true rate at 99 %.
fn loss_case(percent: u32) {
    if !netns::available() {
        return;
    }
    let chain = Chain::new();
    // Connectivity first, before any drop rule.
    chain
        .site
        .run(&["ping", "-n", "-c", "1", "-W", "2", Chain::INET]);
    chain
        .dc
        .drop_random("forward", "icmp type echo-request", percent);
    // 10 targets x 100 echoes per 2 s interval; the first 20 results (2 000
    // echoes) are judged.
    let site = Site::start(
        &chain.site,
        "interval = \"2s\"\ntimeout = \"1s\"",
        &icmp_targets(10, 100),
    );
    let rows = site.wait_rows(20, Duration::from_secs(60));
    let rows = &rows[..20];
    let sent: u64 = rows.iter().map(|r| r.sent).sum();
    let lost: u64 = rows.iter().map(|r| r.sent - r.received).sum();
    assert_eq!(sent, 2000, "every round sends its 100 echoes");
    let (lo, hi) = wilson(lost, sent, Z99);
    let truth = f64::from(percent) / 100.0;
    eprintln!(
        "loss {percent} %: measured {:.2} % ({lost}/{sent}), 99 % interval [{:.2} %, {:.2} %]",
        lost as f64 / sent as f64 * 100.0,
        lo * 100.0,
        hi * 100.0
    );
    assert!(
        lo <= truth && truth <= hi,
        "true loss {truth} outside the 99 % interval [{lo:.4}, {hi:.4}] of {lost}/{sent}"
    );
}

#[test]
fn loss_5_percent_within_99_percent_interval() {
    loss_case(5);
}

#[test]
fn loss_30_percent_within_99_percent_interval() {
    loss_case(30);
}

/// RTT median within 1 ms of the responder's delay, with iputils `ping`
/// measured side by side against the same target.
fn delay_case(delay_ms: u32, load: bool) {
    if !netns::available() {
        return;
    }
    // Build the binaries before any CPU burner starts.
    common::bin_dir();
    let chain = Chain::new();
    let _responder = start_responder(&chain.inet, delay_ms);
    let _burner = load.then(Burner::start);
    let site = Site::start(
        &chain.site,
        "interval = \"2s\"\ntimeout = \"1s\"",
        &icmp_targets(2, 50),
    );
    let mut ping = iputils_ping(&chain.site, Chain::INET, 100);
    let rows = site.wait_rows(6, Duration::from_secs(60));
    let mut agent: Vec<f64> = rows.iter().flat_map(|r| r.samples_ms.clone()).collect();
    assert!(
        agent.len() >= 250,
        "only {} replies of {} echoes",
        agent.len(),
        rows.iter().map(|r| r.sent).sum::<u64>()
    );
    assert!(ping.len() >= 90, "ping got only {} replies", ping.len());
    let n = agent.len();
    let (a, p) = (median(&mut agent), median(&mut ping));
    let truth = f64::from(delay_ms);
    eprintln!(
        "delay {delay_ms} ms{}: pantau median {a:.3} ms (n={n}, error {:+.3} ms), \
         ping median {p:.3} ms (error {:+.3} ms)",
        if load { " under CPU load" } else { "" },
        a - truth,
        p - truth
    );
    assert!(
        (a - truth).abs() <= 1.0,
        "pantau median {a:.3} ms not within 1 ms of {truth} ms"
    );
}

#[test]
fn rtt_median_within_1ms_at_20ms() {
    delay_case(20, false);
}

#[test]
fn rtt_median_within_1ms_at_300ms() {
    delay_case(300, false);
}

#[test]
fn rtt_median_within_1ms_at_20ms_under_cpu_load() {
    delay_case(20, true);
}

#[test]
fn rtt_median_within_1ms_at_300ms_under_cpu_load() {
    delay_case(300, true);
}

/// The data centre's link to the internet host goes down mid-run: failures
/// cover exactly the down span, give or take one interval.
#[test]
fn link_down_shows_failures_for_that_span() {
    if !netns::available() {
        return;
    }
    const INTERVAL: i64 = 1000;
    let chain = Chain::new();
    let mut site = Site::start(
        &chain.site,
        "interval = \"1s\"\ntimeout = \"900ms\"",
        &icmp_targets(1, 3),
    );
    let ok_before = |rows: &[Row]| rows.iter().filter(|r| r.outcome == "ok").count();
    wait_for("three ok results", Duration::from_secs(30), || {
        (ok_before(&site.rows()) >= 3).then_some(())
    });
    let down_at = now_ms();
    chain.dc.link("to-inet", false);
    wait_for("5 s of results while down", Duration::from_secs(30), || {
        site.rows()
            .iter()
            .any(|r| r.observed_at_ms >= down_at + 5 * INTERVAL)
            .then_some(())
    });
    let up_at = now_ms();
    chain.dc.link("to-inet", true);
    wait_for(
        "three results after the link is back",
        Duration::from_secs(30),
        || {
            (site
                .rows()
                .iter()
                .filter(|r| r.observed_at_ms > up_at + INTERVAL)
                .count()
                >= 3)
                .then_some(())
        },
    );
    site.stop_agent();
    let rows = site.rows();
    let failed: Vec<&Row> = rows.iter().filter(|r| r.outcome != "ok").collect();
    assert!(
        !failed.is_empty(),
        "no failure recorded while the link was down"
    );
    // Failed rounds cover [first start, last start + interval).
    let from = failed.first().unwrap().observed_at_ms;
    let to = failed.last().unwrap().observed_at_ms + INTERVAL;
    eprintln!(
        "link down for {} ms: failures span {} ms, starting {:+} ms after the link went down \
         and ending {:+} ms after it came back",
        up_at - down_at,
        to - from,
        from - down_at,
        to - up_at
    );
    for r in &rows {
        let inside = r.observed_at_ms >= down_at && r.observed_at_ms + INTERVAL <= up_at;
        let outside = r.observed_at_ms + INTERVAL < down_at || r.observed_at_ms > up_at;
        if inside {
            assert_ne!(
                r.outcome, "ok",
                "a round while the link was down succeeded: {r:?}"
            );
        }
        if outside {
            assert_eq!(
                r.outcome, "ok",
                "a round outside the down span failed: {r:?}"
            );
        }
    }
    assert!(
        (from - down_at).abs() <= INTERVAL,
        "failures start {} ms from the link going down",
        from - down_at
    );
    assert!(
        (to - up_at).abs() <= INTERVAL,
        "failures end {} ms from the link coming back",
        to - up_at
    );
}
