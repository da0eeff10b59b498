//! After an outage the agent says in its log how the replay of its backlog
//! goes, in Bahasa Indonesia and English, and when it is through.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn the_agent_logs_backlog_replay_progress_after_reconnecting() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "dinsos", "dinsos-1");
    let (grpc, http) = (free_addr(), free_addr());
    let port = open_port();
    let mut targets = String::new();
    for i in 0..20 {
        targets.push_str(&format!(
            "[[targets]]\nid = \"svc-{i}\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ));
    }
    let collector = format!(
        "{}{}",
        common::collector_toml_in(&grpc, &data),
        common::client_cert_toml(dir.path(), &grpc, "dinsos-1")
    );
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"dinsos-1\"\nheartbeat_interval = \"1s\"\n\
             [collector]\n{collector}\ntoken = \"{token}\"\n\
             [spool]\ndir = \"{}\"\nfsync_interval = \"200ms\"\n\
             [defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{targets}",
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    // The collector is down: results wait in the spool.
    let mut agent = Proc {
        child: Command::new(bin("pantau-agent"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
        name: "pantau-agent",
    };
    let spool = dir.path().join("spool");
    wait_for(
        "a backlog of 100 results in the spool",
        Duration::from_secs(60),
        || {
            let bytes: u64 = std::fs::read_dir(&spool)
                .ok()?
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum();
            // A TCP result record is well under 100 bytes; 20 results a second.
            (bytes > 10_000).then_some(())
        },
    );
    let collector = Collector::start_at(&data, &grpc, &http);
    let text = wait_for(
        "the replay's closing line in the agent log",
        Duration::from_secs(120),
        || {
            let t = std::fs::read_to_string(&log).ok()?;
            t.contains("backlog replayed").then_some(t)
        },
    );
    assert!(agent.terminate().success());
    drop(collector);

    let start = text
        .lines()
        .find(|l| l.contains("mengirim ulang antrean: 0 dari "))
        .unwrap_or_else(|| panic!("no start line in\n{text}"));
    assert!(start.contains("replaying backlog: 0 of "), "{start}");
    let total: u64 = start
        .split("mengirim ulang antrean: 0 dari ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {start}"));
    assert!(total >= 50, "backlog {total}");
    let done = text
        .lines()
        .find(|l| l.contains("backlog replayed"))
        .unwrap();
    assert!(
        done.contains(&format!("antrean terkirim: {total} hasil dalam")),
        "{done}"
    );
    assert!(
        done.contains(&format!("backlog replayed: {total} results in")),
        "{done}"
    );
    // The start line comes before the closing line.
    assert!(text.find(start).unwrap() < text.find(done).unwrap());
}
