//! The agent token of a collector bandwidth test never crosses the network
//! in cleartext: the test runs over HTTPS on the collector's HTTP port
//! (`[tls] https`), trusting `collector.ca`, and a recording TCP proxy
//! between agent and collector sees the test's bytes but not the token.
//! Plaintext remains possible only when both sides say so (a lab), and then
//! the proxy does read the token: the capture is a real witness.
//! Runs on loopback; no network namespaces needed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Collector, bin, contains, enrol, recording_proxy};

/// A collector on loopback whose HTTP port serves `https` (`[tls] https`).
fn collector(dir: &Path, https: bool) -> Collector {
    let cfg = dir.join("collector.toml");
    std::fs::write(&cfg, format!("[tls]\nhttps = {https}\n")).unwrap();
    Collector::start_with(&dir.join("data"), "127.0.0.1:0", "127.0.0.1:0", Some(&cfg))
}

/// An agent configuration with one collector bandwidth test to `address`;
/// `collector_extra`: more `[collector]` lines.
fn agent_config(dir: &Path, c: &Collector, token: &str, address: &str, extra: &str) -> PathBuf {
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"bw-agent\"\n\
             [collector]\nurl = \"{}\"\nca = \"{}\"\ntoken = \"{token}\"\n{extra}\n\
             [spool]\ndir = \"{}\"\n\
             [bandwidth]\nmin_gap = \"0s\"\n\
             [[targets]]\nid = \"pusat-data-throughput\"\ngroup = \"datacenter\"\n\
             kind = \"bandwidth\"\naddress = \"{address}\"\n\
             [targets.bandwidth]\nserver = \"collector\"\ndirection = \"both\"\nstreams = 1\n\
             max_bytes = \"4MB\"\nmax_duration = \"5s\"\nwarmup = \"0s\"\n",
            c.agent_url(),
            c.ca().display(),
            dir.join("spool").display()
        ),
    )
    .unwrap();
    cfg
}

fn check(cfg: &Path) -> Output {
    std::process::Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(cfg)
        .output()
        .expect("pantau-agent check")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn collector_bandwidth_test_over_https_keeps_the_token_off_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let token = enrol(&tmp.path().join("data"), "dinkes", "bw-agent");
    let mut c = collector(tmp.path(), true);
    let (proxy, seen) = recording_proxy(c.http);
    let cfg = agent_config(tmp.path(), &c, &token, &format!("https://{proxy}"), "");
    let out = check(&cfg);
    assert!(out.status.success(), "check failed:\n{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("down ") && table.contains("up "), "{table}");
    let seen = seen.lock().unwrap().clone();
    // 4 MB each way went through the proxy: it did see the test.
    assert!(
        seen.len() > 2 * 4_000_000,
        "the proxy saw only {} bytes",
        seen.len()
    );
    assert!(!contains(&seen, &token), "the token crossed in cleartext");
    assert!(
        !contains(&seen, "/api/v1/bandwidth"),
        "the request line crossed in cleartext"
    );
    assert!(c.proc.terminate().success());
}

#[test]
fn plaintext_collector_bandwidth_test_is_refused_without_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    let token = enrol(&tmp.path().join("data"), "dinkes", "bw-agent");
    let mut c = collector(tmp.path(), false);
    let (proxy, seen) = recording_proxy(c.http);
    let address = format!("http://{proxy}");
    let cfg = agent_config(tmp.path(), &c, &token, &address, "");
    let out = check(&cfg);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out));
    let err = text(&out);
    assert!(err.contains("targets[0].address"), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");
    assert!(seen.lock().unwrap().is_empty(), "nothing may be sent");

    // A lab says insecure on both sides: it works, and the proxy reads the
    // token, which is why it is refused by default.
    let lab = agent_config(tmp.path(), &c, &token, &address, "insecure = true");
    let out = check(&lab);
    assert!(out.status.success(), "check failed:\n{}", text(&out));
    assert!(
        text(&out).contains("INSECURE"),
        "no warning:\n{}",
        text(&out)
    );
    assert!(contains(&seen.lock().unwrap(), &token));
    assert!(c.proc.terminate().success());
}
