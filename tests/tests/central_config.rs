//! Central targets (issue 13, item 5) end to end: a real collector and three
//! real agents over mutual TLS. A province template reaches every agent; an
//! agent-scope override only that agent can reject (an http target whose
//! `ca_file` is missing on its host) is refused there while it keeps probing
//! with the previous version; an agent restarted while the collector is
//! down probes its persisted central targets; a tampered `central.toml` is
//! refused at start.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const AGENTS: [&str; 3] = ["kantor-1", "kantor-2", "kantor-3"];
const WAIT: Duration = Duration::from_secs(60);

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("pantau.db")).unwrap()
}

/// Results stored for `agent`'s `target` observed after `since_ms`.
fn results(data: &Path, agent: &str, target: &str, since_ms: i64) -> i64 {
    db(data)
        .query_row(
            "SELECT COUNT(*) FROM result WHERE agent_id = ?1 AND target_id = ?2 AND observed_at_ms > ?3",
            rusqlite::params![agent, target, since_ms],
            |r| r.get(0),
        )
        .unwrap()
}

/// What `agent list` shows in the config column for `agent`.
fn config_column(data: &Path, agent: &str) -> String {
    let list = collector_cmd(data, &["agent", "list"]);
    list.lines()
        .find(|l| l.starts_with(&format!("{agent}\t")))
        .and_then(|l| l.split("konfigurasi/config=").nth(1))
        .unwrap_or_default()
        .to_string()
}

/// Every stored seq of `agent` is contiguous within each epoch.
fn assert_no_gap(data: &Path, agent: &str) {
    let conn = db(data);
    let mut q = conn
        .prepare("SELECT epoch, MIN(seq), MAX(seq), COUNT(*) FROM result WHERE agent_id = ?1 GROUP BY epoch")
        .unwrap();
    let rows: Vec<(i64, i64, i64, i64)> = q
        .query_map([agent], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1, "{agent} kept one epoch: {rows:?}");
    let (_, min, max, n) = rows[0];
    assert_eq!(
        max - min + 1,
        n,
        "{agent}: seqs {min}..={max} with a gap ({n} stored)"
    );
}

fn target(data: &Path, args: &[&str]) -> String {
    let mut all = vec!["target"];
    all.extend_from_slice(args);
    collector_cmd(data, &all)
}

// Long: one scenario in order (template, refused override, restart with the
// collector down, tampered copy), each step building on the state before.
#[test]
fn central_targets_reach_every_agent_and_a_refused_override_keeps_the_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    collector_cmd(
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    let tokens: Vec<String> = AGENTS
        .iter()
        .map(|a| {
            collector_cmd(
                &data,
                &["agent", "add", a, "--opd", "dinkes", "--print-token"],
            )
            .trim()
            .to_string()
        })
        .collect();
    let mut collector = Collector::start(&data);
    let (grpc, http) = (collector.grpc.to_string(), collector.http.to_string());
    let open = open_port();
    let local = format!(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"900ms\"\n\n[[targets]]\nid = \"lokal\"\n\
         group = \"app\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{open}\"\n"
    );
    let dirs: Vec<PathBuf> = AGENTS
        .iter()
        .map(|a| {
            let d = dir.path().join(a);
            std::fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    let configs: Vec<PathBuf> = AGENTS
        .iter()
        .zip(&tokens)
        .zip(&dirs)
        .map(|((a, t), d)| agent_config(d, a, &grpc, t, "heartbeat_interval = \"1s\"", &local))
        .collect();
    let mut agents: Vec<Proc> = configs
        .iter()
        .zip(&dirs)
        .map(|(c, d)| start_agent_logged(c, &d.join("agent.log")))
        .collect();
    for a in AGENTS {
        wait_for(&format!("{a} local results"), WAIT, || {
            (results(&data, a, "lokal", 0) > 0).then_some(())
        });
    }

    // 1. A province template: every agent applies version 1 and probes it.
    let out = target(
        &data,
        &[
            "add",
            "--scope",
            "province",
            "--id",
            "pusat-data",
            "--group",
            "datacenter",
            "--kind",
            "tcp",
            "--address",
            &format!("127.0.0.1:{open}"),
            "--interval",
            "1s",
            "--timeout",
            "900ms",
        ],
    );
    assert!(out.contains("revisi 1"), "{out}");
    for a in AGENTS {
        wait_for(&format!("{a} applies version 1"), WAIT, || {
            (config_column(&data, a) == "v1").then_some(())
        });
        wait_for(&format!("{a} results of the template"), WAIT, || {
            (results(&data, a, "pusat-data", 0) > 0).then_some(())
        });
        // Its own target stays (the default policy allows it).
        let t0 = now_ms();
        wait_for(&format!("{a} local results after the update"), WAIT, || {
            (results(&data, a, "lokal", t0) > 0).then_some(())
        });
    }
    let metrics = collector.metrics();
    for a in AGENTS {
        assert_eq!(
            metric(
                &metrics,
                "pantau_agent_info",
                &[("agent", a), ("config_version", "1")]
            ),
            Some(1.0),
            "{metrics}"
        );
    }
    let effective = target(&data, &["show-effective", "--agent", "kantor-2"]);
    assert!(effective.contains("# version = 1"), "{effective}");
    assert!(
        effective.contains("# pusat-data <- province"),
        "{effective}"
    );
    assert!(effective.contains("[[targets]]"), "{effective}");

    // 2. An override for kantor-2 that only its host can judge: the CA file
    // does not exist there. It refuses, reports why, keeps version 1.
    let missing = dir.path().join("tidak-ada.pem");
    target(
        &data,
        &[
            "set",
            "--scope",
            "agent:kantor-2",
            "--id",
            "aplikasi-web",
            "--group",
            "app",
            "--kind",
            "http",
            "--address",
            &format!("https://{http}/healthz"),
            "--interval",
            "1s",
            "--timeout",
            "900ms",
            "--set",
            &format!("ca_file={}", missing.display()),
        ],
    );
    for a in ["kantor-1", "kantor-3"] {
        wait_for(&format!("{a} applies version 2"), WAIT, || {
            (config_column(&data, a) == "v2").then_some(())
        });
    }
    let refused = wait_for("kantor-2 reports the refusal", WAIT, || {
        let c = config_column(&data, "kantor-2");
        c.starts_with("v1 (ditolak/refused:").then_some(c)
    });
    assert!(refused.contains("ca_file"), "{refused}");
    assert!(
        refused.contains(&missing.display().to_string()),
        "{refused}"
    );
    assert!(
        refused.contains("target pusat tidak sah / invalid central targets"),
        "{refused}"
    );
    let (code, body) = collector.get("/api/v1/agents");
    assert_eq!(code, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let find = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap()
            .clone()
    };
    let k2 = find("kantor-2");
    assert_eq!(k2["config_version"], 1, "{k2}");
    assert!(
        k2["config_error"].as_str().unwrap().contains("ca_file"),
        "{k2}"
    );
    let k1 = find("kantor-1");
    assert_eq!(
        (k1["config_version"].as_i64(), k1["config_error"].as_str()),
        (Some(2), Some("")),
        "{k1}"
    );
    let t1 = now_ms();
    for t in ["pusat-data", "lokal"] {
        wait_for(&format!("kantor-2 keeps probing {t}"), WAIT, || {
            (results(&data, "kantor-2", t, t1) >= 3).then_some(())
        });
    }
    assert_eq!(results(&data, "kantor-2", "aplikasi-web", 0), 0);
    assert_no_gap(&data, "kantor-2");

    // 3. kantor-3 restarts while the collector is down: it probes its
    // persisted central targets, delivered once the collector is back.
    collector.proc.terminate();
    let down_at = now_ms();
    agents[2].terminate();
    agents[2] = start_agent_logged(&configs[2], &dirs[2].join("agent-restart.log"));
    let log = dirs[2].join("agent-restart.log");
    wait_for("kantor-3 loads its central copy", WAIT, || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("central configuration loaded"))
    });
    std::thread::sleep(Duration::from_secs(3));
    collector = Collector::start_at(&data, &grpc, &http);
    let back_at = now_ms();
    wait_for(
        "kantor-3 results probed while the collector was down",
        WAIT,
        || {
            let n: i64 = db(&data)
            .query_row(
                "SELECT COUNT(*) FROM result WHERE agent_id = 'kantor-3' AND target_id = 'pusat-data'
                 AND observed_at_ms > ?1 AND observed_at_ms < ?2",
                [down_at, back_at],
                |r| r.get(0),
            )
            .unwrap();
            (n > 0).then_some(())
        },
    );
    assert_eq!(config_column(&data, "kantor-3"), "v2");
    // `check` probes what `run` probes, central targets included.
    let check = std::process::Command::new(bin("pantau-agent"))
        .args(["check", "--config"])
        .arg(&configs[2])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{table}");
    assert!(
        table.contains("pusat-data") && table.contains("lokal"),
        "{table}"
    );

    // 4. A tampered copy is refused at start; the collector sends a good one.
    agents[0].terminate();
    let central = dirs[0].join("spool").join("central.toml");
    let text = std::fs::read_to_string(&central).unwrap();
    assert!(text.contains(&format!("127.0.0.1:{open}")), "{text}");
    std::fs::write(
        &central,
        text.replace(&format!("127.0.0.1:{open}"), "10.9.9.9:22"),
    )
    .unwrap();
    let log = dirs[0].join("agent-tampered.log");
    agents[0] = start_agent_logged(&configs[0], &log);
    let line = wait_for("kantor-1 refuses the tampered copy", WAIT, || {
        std::fs::read_to_string(&log).ok().and_then(|l| {
            l.lines()
                .find(|l| l.contains("central configuration on disk refused"))
                .map(str::to_string)
        })
    });
    assert!(line.contains("central.toml"), "{line}");
    assert!(line.contains("SHA-256"), "{line}");
    wait_for("kantor-1 gets version 2 again", WAIT, || {
        std::fs::read_to_string(&central)
            .ok()
            .filter(|t| !t.contains("10.9.9.9"))
    });
    wait_for("kantor-1 reports version 2", WAIT, || {
        (config_column(&data, "kantor-1") == "v2").then_some(())
    });
    for a in AGENTS {
        assert_no_gap(&data, a);
    }
    // Results of the refused copy's targets still in kantor-1's spool were
    // declared in its Hello, so no batch was refused on the way.
    let metrics = collector.metrics();
    assert_eq!(
        metric(
            &metrics,
            "pantau_ingest_rejected_total",
            &[("reason", "invalid")]
        )
        .unwrap_or(0.0),
        0.0,
        "{metrics}"
    );
    let audit = collector_cmd(&data, &["audit", "list"]);
    assert_eq!(audit.matches("target.change").count(), 2, "{audit}");
    drop(agents);
}
