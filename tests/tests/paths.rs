//! Paths (issue 4, section 5): the agent's traceroute through a chain of
//! namespace routers with known hops, stored by the collector as path
//! observations; re-routing a router shows as a path change.
//!
//! ```text
//! site 10.99.1.2 -- 10.99.1.1 r1 10.99.2.1 -- 10.99.2.2 r2 10.99.3.1 -- 10.99.3.2 dst
//!                             r1 10.99.4.1 -- 10.99.4.2 r3 10.99.5.1 -- 10.99.5.2 dst
//! ```
//! First r1 routes 10.99.3.0/24 via r2, then via r3.

mod common;
mod netns;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Proc, bin, enrol, wait_for};
use netns::{Netns, veth};

/// One stored path.
#[derive(Debug)]
struct PathRow {
    id: i64,
    hops: Vec<String>,
    reached: bool,
    rtt_us: Vec<u64>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    times_seen: i64,
    previous_id: Option<i64>,
}

fn paths(db: &rusqlite::Connection) -> Vec<PathRow> {
    let mut st = db
        .prepare(
            "SELECT id, hops, reached, rtt_us, first_seen_ms, last_seen_ms, times_seen, previous_id
             FROM path WHERE agent_id = 'uji-1' AND target_id = 'dst' ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| {
        let hops: String = r.get(1)?;
        let rtt: String = r.get(3)?;
        Ok(PathRow {
            id: r.get(0)?,
            hops: serde_json::from_str(&hops).unwrap(),
            reached: r.get(2)?,
            rtt_us: serde_json::from_str(&rtt).unwrap(),
            first_seen_ms: r.get(4)?,
            last_seen_ms: r.get(5)?,
            times_seen: r.get(6)?,
            previous_id: r.get(7)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn traceroute_finds_known_hops_and_path_changes() {
    if !netns::available() {
        return;
    }
    let (site, r1, r2, r3, dst) = (
        Netns::new("site"),
        Netns::new("r1"),
        Netns::new("r2"),
        Netns::new("r3"),
        Netns::new("dst"),
    );
    veth(&site, "r1", "10.99.1.2/24", &r1, "site", "10.99.1.1/24");
    veth(&r1, "r2", "10.99.2.1/24", &r2, "r1", "10.99.2.2/24");
    veth(&r2, "dst", "10.99.3.1/24", &dst, "r2", "10.99.3.2/24");
    veth(&r1, "r3", "10.99.4.1/24", &r3, "r1", "10.99.4.2/24");
    veth(&r3, "dst", "10.99.5.1/24", &dst, "r3", "10.99.5.2/24");
    for r in [&r1, &r2, &r3] {
        r.sysctl("net.ipv4.ip_forward", "1");
    }
    site.route("default", "10.99.1.1");
    r1.route("10.99.3.0/24", "10.99.2.2");
    r2.route("10.99.1.0/24", "10.99.2.1");
    r3.route("10.99.1.0/24", "10.99.4.1");
    r3.route("10.99.3.0/24", "10.99.5.2");
    dst.route("default", "10.99.3.1");

    // Collector and agent in the site namespace.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "opd-uji", "uji-1");
    let mut child = site
        .cmd(bin("pantau-collector"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pantau-collector");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _collector = Proc {
        child,
        name: "pantau-collector",
    };
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("no grpc= in {line:?}"))
        .to_string();
    std::fs::write(dir.path().join("token"), format!("{token}\n")).unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "[agent]\nid = \"uji-1\"\n\n[collector]\nurl = \"http://{grpc}\"\ntoken_file = \"{}\"\n\n\
             [spool]\ndir = \"{}\"\n\n[[targets]]\nid = \"dst\"\ngroup = \"datacenter\"\n\
             kind = \"traceroute\"\naddress = \"10.99.3.2\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n",
            dir.path().join("token").display(),
            dir.path().join("spool").display(),
        ),
    )
    .unwrap();
    let agent = site
        .cmd(bin("pantau-agent"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start pantau-agent");
    let _agent = Proc {
        child: agent,
        name: "pantau-agent",
    };
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();

    let via_r2 = ["10.99.1.1", "10.99.2.2", "10.99.3.2"];
    let via_r3 = ["10.99.1.1", "10.99.4.2", "10.99.3.2"];
    wait_for(
        "the path via r2 seen three times",
        Duration::from_secs(30),
        || {
            paths(&db)
                .last()
                .is_some_and(|p| p.times_seen >= 3)
                .then_some(())
        },
    );
    let before = paths(&db);
    assert_eq!(
        before.len(),
        1,
        "one path while nothing changed: {before:?}"
    );
    let first = &before[0];
    assert_eq!(first.hops, via_r2, "hops via r2");
    assert!(first.reached, "target reached");
    assert!(
        first.rtt_us.iter().all(|&us| us > 0 && us < 100_000),
        "every hop has an RTT: {:?}",
        first.rtt_us
    );
    assert_eq!(first.previous_id, None);

    let changed_at = now_ms();
    r1.run(&["ip", "route", "replace", "10.99.3.0/24", "via", "10.99.4.2"]);
    let after = wait_for("a path via r3", Duration::from_secs(30), || {
        let ps = paths(&db);
        ps.iter()
            .any(|p| p.hops == via_r3 && p.times_seen >= 2)
            .then_some(ps)
    });
    eprintln!("paths: {after:#?}");
    let old = &after[0];
    let new = after.iter().find(|p| p.hops == via_r3).unwrap();
    assert_eq!(after.len(), 2, "exactly one change: {after:?}");
    assert_eq!(
        new.previous_id,
        Some(old.id),
        "the change points at the old path"
    );
    assert!(new.reached);
    assert!(
        old.last_seen_ms < changed_at + 1000 && new.first_seen_ms > changed_at - 1000,
        "the change is dated within one interval: old last seen {}, new first seen {}, change at {changed_at}",
        old.last_seen_ms,
        new.first_seen_ms
    );
}
