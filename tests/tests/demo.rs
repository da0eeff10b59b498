//! The quickstart: `pantau-collector demo` shows probe results on /metrics
//! within 30 seconds. Run with --offline so no test ever probes the internet.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn demo_serves_results_within_30_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let mut child = Command::new(bin("pantau-collector"))
        .args([
            "demo",
            "--offline",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let mut demo = Proc {
        child,
        name: "pantau-collector demo",
    };
    let http: std::net::SocketAddr = first
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("ready line")
        .parse()
        .unwrap();
    let printed: Vec<String> = lines.by_ref().take(6).map(Result::unwrap).collect();
    assert!(
        printed
            .iter()
            .any(|l| l.contains(&format!("http://{http}/metrics"))),
        "{printed:?}"
    );

    assert!(
        printed
            .iter()
            .any(|l| l.contains("Masuk / log in") && l.contains("admin / ")),
        "the demo prints how to log in: {printed:?}"
    );
    // /metrics needs a credential: a scrape token made in the demo's directory.
    remember_token(&http.to_string(), &make_token(&data, "scrape", &[]));
    let m = wait_for("demo results on /metrics", Duration::from_secs(30), || {
        let (_, m) = http_get(http, "/metrics");
        ["loopback", "collector-grpc", "collector-web"]
            .iter()
            .all(|t| {
                metric(
                    &m,
                    "pantau_probe_success",
                    &[("opd", "demo"), ("target", t)],
                ) == Some(1.0)
            })
            .then_some(m)
    });
    assert!(metric(&m, "pantau_ingest_results_total", &[("opd", "demo")]).unwrap() >= 3.0);
    assert!(
        !m.contains("cloudflare"),
        "--offline must not add internet targets"
    );
    assert!(demo.terminate().success());
    assert!(data.join("pantau.db").exists());
}
