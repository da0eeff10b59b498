//! Evidence that holds up: a scripted day with known truth, reported through
//! the real `pantau-collector` binary at a chosen minute of issue (the
//! collector's clock set with `faketime`, from Debian), checked figure by
//! figure against the truth:
//! - minutes after the time of issue are no part of any figure, and an
//!   outage still going on at issue is an open incident with its duration so far;
//! - an agent silent across whole hours gives every silent minute as unknown
//!   and one "agent offline" incident, not one per hour;
//! - a maintenance window recorded after the outage is disclosed;
//! - the same day reported after its end counts the silent evening;
//! - every report's bundle carries `pantau-recompute.py`, which recomputes
//!   the same figures from the bundled raw results alone.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use pantau_collector::model::ResultRow;
use pantau_collector::model::{Outcome, ProbeKind};
use serde_json::Value;

/// 2026-11-17 00:00 WITA (UTC+8), UTC ms.
const DAY0: i64 = 1_794_844_800_000;
const DAY: &str = "2026-11-17";
/// Monitoring starts 08:00 local (minute of the day).
const START: i64 = 480;
/// The internet target fails 09:10-09:20.
const INET_DOWN: std::ops::Range<i64> = 550..560;
/// A retroactive maintenance window on the internet group, 09:15-09:17.
const MAINT: std::ops::Range<i64> = 555..557;
/// The agent is silent 10:12-13:11: 179 minutes, across four hours.
const SILENT: std::ops::Range<i64> = 612..791;
/// Intranet and data centre fail from 17:58 until the data ends.
const LINK_DOWN_FROM: i64 = 1078;
/// The last result is at 18:05:05; the first report is issued at 18:05:30.
const LAST: i64 = 1085;

fn at(minute: i64, offset_ms: i64) -> i64 {
    DAY0 + minute * 60_000 + offset_ms
}

fn seed(data: &Path) {
    enrol(data, "dinkes", "dinkes-1");
    let targets = vec![
        decl("gw", "intranet", "icmp", 30_000),
        decl("pd", "datacenter", "tcp", 30_000),
        decl("web", "internet", "tcp", 30_000),
    ];
    declare(data, "dinkes", "dinkes-1", targets.clone());
    let mut rows = Vec::new();
    let mut seq = 0;
    for m in START..=LAST {
        if SILENT.contains(&m) {
            continue;
        }
        for t in &targets {
            let down = match t.group.as_str() {
                "internet" => INET_DOWN.contains(&m),
                _ => m >= LINK_DOWN_FROM,
            };
            for half in [5_000, 35_000] {
                if m == LAST && half > 5_000 {
                    continue;
                }
                seq += 1;
                let icmp = t.kind == ProbeKind::Icmp;
                rows.push(ResultRow {
                    epoch: 1,
                    seq,
                    target_id: t.id.clone(),
                    group: t.group.to_string(),
                    kind: t.kind.into(),
                    observed_at_ms: at(m, half),
                    outcome: if down { Outcome::Timeout } else { Outcome::Ok },
                    detail: String::new(),
                    value_ms: (!down).then_some(if icmp { 12.0 } else { 40.0 }),
                    sent: icmp.then_some(5),
                    received: icmp.then_some(if down { 0 } else { 5 }),
                    data: serde_json::json!({}),
                    late: false,
                    clock_flag: None,
                    agent_time_ms: at(m, half),
                    clock_correction_ms: None,
                });
            }
        }
    }
    store_rows(data, "dinkes", "dinkes-1", &rows, at(LAST, 6_000));
    // Recorded now, weeks after the window began: retroactive.
    let (ok, _, err) = collector_run(
        data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--from",
            &rfc3339(at(MAINT.start, 0)),
            "--to",
            &rfc3339(at(MAINT.end, 0)),
            "--reason",
            "ganti modem",
            "--by",
            "budi",
        ],
    );
    assert!(ok, "maintenance: {err}");
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339()
}

/// The JSON report of the day for every OPD, made by the collector whose
/// clock reads `now_ms` (faketime).
fn report_at(data: &Path, now_ms: i64, out: &Path) -> Value {
    let stamp = chrono::DateTime::from_timestamp_millis(now_ms)
        .expect("time")
        .format("@%Y-%m-%d %H:%M:%S")
        .to_string();
    let o = Command::new("faketime")
        .env("TZ", "UTC")
        .args(["-f", &stamp])
        .arg(bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data)
        .args(["report", "--opd", "all", "--from", DAY, "--to", DAY])
        .args(["--format", "json", "--out"])
        .arg(out)
        .output()
        .expect("faketime (Debian package faketime) is installed by tests/run.sh");
    assert!(
        o.status.success(),
        "report at {stamp}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let path = String::from_utf8_lossy(&o.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    // The bundle's own script, in another language than the collector,
    // recomputes every figure from the bundled raw results and agrees.
    let script = out.join("pantau-recompute.py");
    let r = Command::new("python3")
        .arg(&script)
        .arg(out)
        .output()
        .expect("python3 is installed by tests/run.sh");
    let text = String::from_utf8_lossy(&r.stdout).to_string() + &String::from_utf8_lossy(&r.stderr);
    assert_eq!(
        r.status.code(),
        Some(0),
        "recomputation at {stamp}:\n{text}"
    );
    assert!(text.contains("SAMA / EQUAL"), "{text}");
    serde_json::from_slice(&std::fs::read(&path).expect("report file")).expect("report JSON")
}

fn group<'a>(r: &'a Value, g: &str) -> &'a Value {
    r["opds"][0]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|x| x["group"] == g)
        .unwrap_or_else(|| panic!("group {g} missing: {}", r["opds"][0]))
}

/// (up, degraded, down, unknown, maintenance) minutes of a group.
fn minutes(r: &Value, g: &str) -> [u64; 5] {
    let m = &group(r, g)["minutes"];
    ["up", "degraded", "down", "unknown", "maintenance"].map(|k| m[k].as_u64().expect(k))
}

fn pct(r: &Value, g: &str) -> f64 {
    group(r, g)["availability_pct"]
        .as_f64()
        .expect("availability")
}

/// (group, start minute, minutes, open, cause) of every incident.
fn incidents(r: &Value) -> Vec<(String, i64, i64, bool, String)> {
    r["incidents"]
        .as_array()
        .expect("incidents")
        .iter()
        .map(|i| {
            let start = i["start_ms"].as_i64().expect("start");
            assert_eq!((start - DAY0) % 60_000, 0, "{i}");
            assert_eq!(
                i["end_ms"].as_i64().expect("end") - start,
                i["minutes"].as_i64().expect("minutes") * 60_000,
                "an incident's end is its start plus its minutes: {i}"
            );
            (
                i["group"].as_str().expect("group").to_string(),
                (start - DAY0) / 60_000,
                i["minutes"].as_i64().expect("minutes"),
                i["open"].as_bool().expect("open"),
                i["cause"].as_str().expect("cause").to_string(),
            )
        })
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn a_scripted_day_reported_mid_hour_and_after_its_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    seed(&data);
    let silent = (SILENT.end - SILENT.start) as u64;
    assert_eq!(silent, 179);

    // Issued at 18:05:30: the data ends at 18:05 (the minute in progress has
    // not happened yet); 08:00-18:05 is 605 minutes.
    let r = report_at(&data, at(LAST, 30_000), &tmp.path().join("mid"));
    assert_eq!(r["meta"]["data_until_ms"].as_i64(), Some(at(LAST, 0)));
    let counted = (LAST - START) as u64;
    let link_down = (LAST - LINK_DOWN_FROM) as u64; // 7: 17:58-18:04
    for g in ["intranet", "datacenter"] {
        let up = counted - silent - link_down;
        assert_eq!(minutes(&r, g), [up, 0, link_down, silent, 0], "{g}");
        assert!(close(
            pct(&r, g),
            100.0 * up as f64 / (up + link_down) as f64
        ));
    }
    let maint = (MAINT.end - MAINT.start) as u64;
    let inet_down = (INET_DOWN.end - INET_DOWN.start) as u64 - maint;
    let inet_up = counted - silent - inet_down - maint;
    assert_eq!(
        minutes(&r, "internet"),
        [inet_up, 0, inet_down, silent, maint]
    );
    assert!(close(
        pct(&r, "internet"),
        100.0 * inet_up as f64 / (inet_up + inet_down) as f64
    ));
    // Completeness: measured / (measured + unknown), best group.
    let best = 100.0 * (counted - silent) as f64 / counted as f64;
    let c = r["opds"][0]["completeness_pct"]
        .as_f64()
        .expect("completeness");
    assert!(close(c, best), "{c} vs {best}");
    assert_eq!(
        incidents(&r),
        vec![
            // 09:10-09:15: the window splits the outage into 5 and 3 minutes.
            (
                "internet".into(),
                INET_DOWN.start,
                5,
                false,
                "internet_provider".into()
            ),
            // One offline incident across four hours.
            (
                "agent".into(),
                SILENT.start,
                179,
                false,
                "agent_offline".into()
            ),
            // Still going on at issue: open, 7 minutes so far.
            (
                "datacenter".into(),
                LINK_DOWN_FROM,
                7,
                true,
                "intranet_link".into()
            ),
            (
                "intranet".into(),
                LINK_DOWN_FROM,
                7,
                true,
                "intranet_link".into()
            ),
        ]
    );

    // Issued the next morning: the whole day counts; the agent has been
    // silent since 18:06, still at the end of the day.
    let r = report_at(
        &data,
        DAY0 + 86_400_000 + 2 * 3_600_000,
        &tmp.path().join("next"),
    );
    assert_eq!(r["meta"]["data_until_ms"].as_i64(), Some(DAY0 + 86_400_000));
    let counted = (1440 - START) as u64;
    let evening = (1440 - LAST - 1) as u64; // 18:06-24:00
    let link_down = link_down + 1; // 18:05 has its failed result now
    for g in ["intranet", "datacenter"] {
        let up = counted - silent - evening - link_down;
        assert_eq!(
            minutes(&r, g),
            [up, 0, link_down, silent + evening, 0],
            "{g}"
        );
    }
    assert_eq!(
        incidents(&r),
        vec![
            (
                "internet".into(),
                INET_DOWN.start,
                5,
                false,
                "internet_provider".into()
            ),
            (
                "agent".into(),
                SILENT.start,
                179,
                false,
                "agent_offline".into()
            ),
            (
                "datacenter".into(),
                LINK_DOWN_FROM,
                8,
                false,
                "intranet_link".into()
            ),
            (
                "intranet".into(),
                LINK_DOWN_FROM,
                8,
                false,
                "intranet_link".into()
            ),
            (
                "agent".into(),
                LAST + 1,
                evening as i64,
                true,
                "agent_offline".into()
            ),
        ]
    );
}

/// libfaketime from Debian's faketime package (multiarch path).
fn libfaketime() -> std::path::PathBuf {
    std::fs::read_dir("/usr/lib")
        .expect("/usr/lib")
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime.so.1 (Debian package faketime, installed by tests/run.sh)")
}

fn db(data: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(data.join("pantau.db")).expect("open database")
}

/// An agent whose clock is three hours behind (faketime), against a real
/// collector that is killed with SIGKILL and restarted under load: every
/// result is placed where it happened (the collector's offset estimate),
/// with the agent's own time kept beside it; the report lists the agent and
/// its corrected minutes; the minutes of the collector's downtime are
/// measured (the spool replayed them), not unknown.
#[test]
fn a_skewed_agent_clock_is_placed_and_disclosed_across_a_collector_kill() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let token = enrol(&data, "dishub", "dishub-1");
    let (grpc, http) = (free_addr(), free_addr());
    let mut collector = Collector::start_at(&data, &grpc, &http);
    let port = open_port();
    let cfg = agent_config(
        tmp.path(),
        "dishub-1",
        &grpc,
        &token,
        "heartbeat_interval = \"1s\"",
        &format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[targets]]\nid = \"pusdat\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\n"
        ),
    );
    let mut agent = Proc {
        // libfaketime preloaded into the agent itself (the `faketime`
        // wrapper would be the process the test stops, not the agent).
        child: Command::new(bin("pantau-agent"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", "-3h")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("start the agent under faketime"),
        name: "pantau-agent",
    };
    let count = |data: &Path| -> i64 {
        db(data)
            .query_row("SELECT COUNT(*) FROM result WHERE kind = 'tcp'", [], |r| {
                r.get(0)
            })
            .expect("count")
    };
    wait_for(
        "results from the skewed agent",
        std::time::Duration::from_secs(30),
        || (count(&data) >= 5).then_some(()),
    );
    kill9(&mut collector.proc);
    std::thread::sleep(std::time::Duration::from_secs(4));
    let before = count(&data);
    collector = Collector::start_at(&data, &grpc, &http);
    wait_for(
        "the backlog replayed",
        std::time::Duration::from_secs(30),
        || (count(&data) >= before + 8).then_some(()),
    );
    agent.terminate();
    collector.proc.terminate();

    // Placed within seconds of when the collector received them; the agent's
    // own time is three hours earlier.
    let c = db(&data);
    let (n, worst_place, min_corr, max_corr, flagged): (i64, i64, i64, i64, i64) = c
        .query_row(
            "SELECT COUNT(*), MAX(ABS(received_at_ms - observed_at_ms)),
                    MIN(clock_correction_ms), MAX(clock_correction_ms),
                    SUM(clock_flag IS NOT NULL)
             FROM result WHERE kind = 'tcp'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("placement");
    assert!(n >= before + 8);
    assert_eq!(flagged, 0, "corrected results are counted, not flagged");
    // Replayed results were received up to ~4 s after they happened.
    assert!(worst_place < 15_000, "placed {worst_place} ms from receipt");
    let three_h = 3 * 3_600_000;
    assert!(
        (min_corr - three_h).abs() < 5_000 && (max_corr - three_h).abs() < 5_000,
        "corrections {min_corr}..{max_corr} ms"
    );
    let kept: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM result WHERE kind = 'tcp' AND observed_at_ms - agent_time_ms = clock_correction_ms",
            [],
            |r| r.get(0),
        )
        .expect("agent time");
    assert_eq!(kept, n, "every result keeps the agent's own time");

    // The report of today lists the agent, its corrected results and minutes.
    // Issued two minutes from now (libfaketime), so the minutes of every
    // result have passed: a report counts no minute still in progress.
    let today = local_date(now_ms(), 8);
    let out = tmp.path().join("report");
    let report = |format: &str, out: &Path| -> std::path::PathBuf {
        let o = Command::new(bin("pantau-collector"))
            .arg("--data-dir")
            .arg(&data)
            .args(["report", "--opd", "all", "--from", &today, "--to", &today])
            .args(["--format", format, "--out"])
            .arg(out)
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", "+2m")
            .output()
            .expect("report");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let first = String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        std::path::PathBuf::from(first)
    };
    let p = report("json", &out);
    let r: Value = serde_json::from_slice(&std::fs::read(p).expect("report")).expect("JSON");
    assert!(r["meta"]["data_until_ms"].as_i64().expect("cut-off") > now_ms());
    let notes = r["clock"].as_array().expect("clock notes");
    assert_eq!(notes.len(), 1, "{notes:?} {}", r["meta"]);
    assert_eq!(notes[0]["agent"], "dishub-1");
    let corrected = notes[0]["corrected_results"].as_i64().expect("results");
    let heartbeats: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM result WHERE kind = 'heartbeat'",
            [],
            |r| r.get(0),
        )
        .expect("heartbeats");
    assert_eq!(corrected, n + heartbeats);
    let distinct_minutes: i64 = c
        .query_row(
            "SELECT COUNT(DISTINCT observed_at_ms / 60000) FROM result WHERE clock_correction_ms IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("minutes");
    assert_eq!(
        notes[0]["corrected_minutes"].as_i64(),
        Some(distinct_minutes)
    );
    // ... and the bundle's own script agrees with the report's figures.
    let rc = Command::new("python3")
        .arg(out.join("pantau-recompute.py"))
        .arg(&out)
        .output()
        .expect("python3");
    let text =
        String::from_utf8_lossy(&rc.stdout).to_string() + &String::from_utf8_lossy(&rc.stderr);
    assert_eq!(rc.status.code(), Some(0), "{text}");
    // The PDF discloses the agent in its clock section.
    let pdf = report("pdf", &tmp.path().join("pdf"));
    let text = pdftotext(&pdf);
    let row = text
        .lines()
        .find(|l| l.contains("dishub-1"))
        .unwrap_or_else(|| panic!("no clock row in the PDF:\n{text}"));
    assert!(row.contains("+3 j 0 mnt"), "{row}");
    assert!(text.contains("4b. Jam agen"), "{text}");

    // No unknown minute between the first and the last measured minute of
    // the target: the collector's downtime was filled by the replay.
    let mut st = c
        .prepare(
            "SELECT minutes FROM rollup_target_hour WHERE target_id = 'pusdat' ORDER BY hour_ms",
        )
        .expect("rollups");
    let line: String = st
        .query_map([], |r| r.get::<_, String>(0))
        .expect("rollups")
        .map(|m| m.expect("row"))
        .collect();
    let measured = line.trim_matches(|c| c == '.' || c == '>' || c == '-');
    assert!(!measured.is_empty(), "{line}");
    assert!(
        measured.chars().all(|c| c == 'U'),
        "a gap inside the measured minutes: {measured}"
    );
}
