//! Configuration: the example files load, bad files list every problem with
//! key and file and exit 64, environment overrides apply.

mod common;

use std::process::Command;

use common::*;
use pantau_agent::config::{AgentConfig, ProbeSpec};
use pantau_collector::config::CollectorConfig;

#[test]
fn example_configs_load() {
    let a = AgentConfig::load(&repo("deploy/config/agent.example.toml"))
        .expect("agent example is valid");
    assert_eq!(a.agent_id, "dinkes-kantor-1");
    // TLS by default: the example uses https and the collector's CA.
    assert!(a.collector_url.starts_with("https://"));
    assert!(!a.collector_tls.insecure && a.collector_tls.ca.is_some());
    assert_eq!(a.targets.len(), 9);
    let path = a
        .targets
        .iter()
        .find(|t| t.id == "pusat-data-path")
        .expect("traceroute target");
    assert_eq!(path.kind(), pantau_agent::model::ProbeKind::Traceroute);
    let bw = a
        .targets
        .iter()
        .find(|t| t.id == "pusat-data-throughput")
        .and_then(|t| match &t.spec {
            ProbeSpec::Bandwidth(b) => Some(b),
            _ => None,
        })
        .expect("bandwidth target");
    assert_eq!((bw.streams, bw.max_bytes), (4, 100_000_000));
    assert_eq!(bw.busy, Some(("eth0".to_string(), 5_000_000)));
    assert_eq!(a.bandwidth.monthly_budget, 20_000_000_000);
    let wan = a
        .targets
        .iter()
        .find(|t| t.id == "wan-utilisation")
        .and_then(|t| match &t.spec {
            ProbeSpec::Link(l) => Some(l),
            _ => None,
        })
        .expect("link target");
    assert_eq!(wan.contracted_bps, Some(20_000_000));
    let groups: std::collections::BTreeSet<&str> =
        a.targets.iter().map(|t| t.group.as_str()).collect();
    for g in ["internet", "intranet", "app", "datacenter", "jip"] {
        assert!(groups.contains(g), "example has no {g} target");
    }
    let gw = a
        .targets
        .iter()
        .find(|t| t.id == "intranet-gateway")
        .unwrap();
    let ProbeSpec::Icmp(icmp) = &gw.spec else {
        panic!("{gw:?}")
    };
    assert_eq!(
        (icmp.count, gw.interval.as_secs(), gw.timeout.as_secs()),
        (10, 15, 3)
    );

    let c = CollectorConfig::load(&repo("deploy/config/collector.example.toml"))
        .expect("collector example is valid");
    assert_eq!(c.grpc_listen.port(), 7470);
    assert_eq!(c.display.zone_name, "WITA");
    assert_eq!(
        c.report.unit.as_deref(),
        Some("Dinas Komunikasi, Informatika dan Persandian")
    );
    assert!(!c.tls.insecure);
    assert_eq!(c.tls.names, ["10.10.0.5"]);
    assert_eq!(
        c.data_dir,
        std::path::PathBuf::from("/var/lib/pantau-collector")
    );
    // The [enrol] example hands new agents a target in four of the groups.
    let enrol = pantau_agent::config::targets_from_toml(c.enrol_targets.as_deref().unwrap())
        .expect("the example's enrol targets are valid agent targets");
    let groups: Vec<&str> = enrol.iter().map(|t| t.group.as_str()).collect();
    assert_eq!(groups, ["datacenter", "jip", "internet", "app"]);
}

#[test]
fn environment_overrides_the_file() {
    // Run in a child process so the variable does not leak into other tests.
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(repo("deploy/config/agent.example.toml"))
        .env("PANTAU_AGENT__DEFAULTS__ICMP_COUNT", "500")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("defaults.icmp_count: 500 is out of range"),
        "{err}"
    );
}

#[test]
fn bad_agent_config_lists_every_problem_with_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        r#"
[agent]
id = "ok-id"
colour = "blue"

[collector]
url = "ftp://collector"

[[targets]]
id = "a"
group = "internet"
kind = "icmp"
address = "10.0.0.1"
intervall = "30s"

[[targets]]
id = "b"
group = "moon"
kind = "teleport"
address = "x"
timeout = "2h"
"#,
    )
    .unwrap();
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64), "exit code for a bad config");
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    for key in ["agent.colour", "targets[0].intervall"] {
        assert!(
            err.contains(&format!("{file}: {key}: unknown key")),
            "missing {key} in:\n{err}"
        );
    }
    // Unknown keys are reported before the values are checked; once they are
    // fixed, every value problem is listed at once.
    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("colour = \"blue\"\n", "")
        .replace("intervall", "interval");
    std::fs::write(&path, fixed).unwrap();
    let out = Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "collector.url",
        "targets[1].group",
        "targets[1].kind",
        "targets[1].timeout",
    ] {
        assert!(
            err.contains(&format!("{file}: {key}:")),
            "missing {key} in:\n{err}"
        );
    }
    assert!(
        err.contains("allowed: internet, intranet, datacenter, jip, app"),
        "{err}"
    );

    let missing = Command::new(bin("pantau-agent"))
        .args(["run", "--config", "/nonexistent/agent.toml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("file not found"));
}

#[test]
fn bad_collector_config_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(
        &path,
        "[server]\ngrpc_listen = \"everywhere\"\n[display]\ntime_zone = \"CET\"\n\
         [report.signoff]\nname = \"Andi\"\nnip = \"1980\"\nposition = \"Kepala\"\nplace = \"Mamuju\"\n",
    )
    .unwrap();
    let out = Command::new(bin("pantau-collector"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!("{file}: server.grpc_listen:")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: display.time_zone:")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: report.signoff.nip: `1980` is not a NIP")),
        "{err}"
    );
}

#[test]
fn agent_without_token_says_where_to_put_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "[agent]\nid = \"a1\"\n[collector]\ntoken_file = \"/nonexistent/token\"\n",
    )
    .unwrap();
    let out = Command::new(bin("pantau-agent"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("collector.token_file: cannot read /nonexistent/token"),
        "{err}"
    );
}

#[test]
fn admin_commands_without_a_data_directory_refuse_and_create_nothing() {
    // Before: `pantau-collector opd list` in any directory created
    // ./pantau-data/pantau.db and exited 0.
    let cwd = tempfile::tempdir().unwrap();
    let no_dir = cwd.path().join("collector.toml");
    std::fs::write(&no_dir, "[server]\ngrpc_listen = \"127.0.0.1:7470\"\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(bin("pantau-collector"))
            .current_dir(cwd.path())
            .args(args)
            .output()
            .expect("run pantau-collector")
    };
    let out = run(&["--config", no_dir.to_str().unwrap(), "opd", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("no data directory given: set server.data_dir in")
            && stderr.contains(no_dir.to_str().unwrap()),
        "{stderr}"
    );
    assert!(
        stderr.contains("direktori data tidak diberikan"),
        "{stderr}"
    );
    // Without any file: the default /etc/pantau/collector.toml is read when
    // it exists (the Debian package installs it); on a machine without it
    // the command refuses the same way.
    if !std::path::Path::new(pantau_collector::cli::DEFAULT_CONFIG).exists() {
        let out = run(&["opd", "add", "dinkes", "--name", "Dinas Kesehatan"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{stderr}");
        assert!(stderr.contains("/etc/pantau/collector.toml"), "{stderr}");
    }
    let left: Vec<_> = std::fs::read_dir(cwd.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("collector.toml")]);
    // With --data-dir the same command works.
    let data = cwd.path().join("data");
    let out = run(&["--data-dir", data.to_str().unwrap(), "opd", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
