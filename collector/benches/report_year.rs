//! Benchmark (not a test): a one-year province report for 60 OPD x 20 targets
//! probed every 30 s, generated from rollups; plus the cost of rolling up one
//! OPD-day from raw results. Run: cargo bench -p pantau-collector --bench report_year

use std::time::Instant;

use pantau_collector::config::Display;
use pantau_collector::model::{
    AgentIdentity, Group, HelloInfo, Outcome, ProbeKind, ResultRow, TargetDecl,
};
use pantau_collector::report::capacity::RateHist;
use pantau_collector::report::histogram::Histogram;
use pantau_collector::report::rollup::{self, DAY_MS, HOUR_MS};
use pantau_collector::report::rules::GROUPS;
use pantau_collector::report::{Format, Lang, Request, Settings, assemble, render_as};
use pantau_collector::store;
use rusqlite::params;

const OPDS: usize = 60;
const TARGETS_PER_GROUP: [i64; 5] = [4, 4, 4, 4, 4]; // 20 targets per OPD
const DAYS: i64 = 365;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut conn = store::open(&data).expect("store");
    let s = Settings::new(&Display::default());
    let from = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date");
    let day0 = s.day_start(from);

    // Synthesise a year of day rollups (what the incremental rollups would
    // hold): results every 30 s per target, a few down hours per month.
    let t = Instant::now();
    let tx = conn.transaction().expect("tx");
    for o in 0..OPDS {
        let id = format!("opd-{o:02}");
        tx.execute(
            "INSERT INTO opd (id, name, created_at_ms) VALUES (?1, ?2, 0)",
            params![id, format!("Perangkat Daerah {o}")],
        )
        .expect("opd");
        for d in 0..DAYS {
            let day = day0 + d * DAY_MS;
            let outage = (d + o as i64) % 30 == 0;
            for (gi, g) in GROUPS.iter().enumerate() {
                let n = TARGETS_PER_GROUP[gi] * 2880;
                let mut h = Histogram::default();
                for k in 0..200 {
                    h.record(5.0 + ((k * 37 + o * 11 + gi * 7) % 300) as f64);
                }
                let down = if outage && gi == 2 { 60 } else { 0 };
                tx.execute(
                    "INSERT INTO rollup_group_day (opd_id, grp, day_ms, up, degraded, down, unknown, maint, bh_up, bh_degraded,
                       bh_down, bh_unknown, n_ok, n_fail, sent, received, jit_sum, jit_n, hist)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5, 0, 0, 480, 0, 0, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                    params![id, g, day, 1440 - down, down, n - down * 2, down * 2, n * 5, n * 5 - down * 10,
                        n as f64 * 1.5, n, h.to_bytes()],
                )
                .expect("day row");
                if down > 0 {
                    // The hour rows of a down day (incident detection reads them).
                    for hr in 0..24 {
                        let mins: String = (0..60)
                            .map(|_| if hr == 10 && gi == 2 { 'D' } else { 'U' })
                            .collect();
                        for g2 in GROUPS {
                            let m = if g2 == *g {
                                mins.clone()
                            } else {
                                "U".repeat(60)
                            };
                            tx.execute(
                                "INSERT OR REPLACE INTO rollup_group_hour (opd_id, grp, hour_ms, minutes, up, degraded, down, unknown, maint,
                                   n_ok, n_fail, sent, received, jit_sum, jit_n, hist) VALUES (?1, ?2, ?3, ?4, 0,0,0,0,0,0,0,0,0,0,0, x'')",
                                params![id, g2, day + hr * HOUR_MS, m],
                            )
                            .expect("hour row");
                        }
                    }
                }
            }
        }
    }
    // One link (utilisation) and one bandwidth target per OPD: a day row each
    // (60 rate buckets in each direction, 4 tests a day).
    for o in 0..OPDS {
        let id = format!("opd-{o:02}");
        for d in 0..DAYS {
            let day = day0 + d * DAY_MS;
            let (mut hin, mut hout) = (RateHist::default(), RateHist::default());
            for k in 0..60u64 {
                hin.record(1e6 * (1.0 + k as f64 * 0.3), 24_000);
                hout.record(0.5e6 * (1.0 + k as f64 * 0.2), 24_000);
            }
            tx.execute(
                "INSERT INTO rollup_link_day (opd_id, day_ms, agent_id, target_id, if_name, polls, no_rate, covered_ms,
                   in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms)
                 VALUES (?1, ?2, 'a', 'wan', 'ether1', 1440, 2, 86280000, 5e11, 2e11, 18.7e6, 12.3e6, ?3, ?4, 20e6, 1, ?2)",
                params![id, day, hin.to_bytes(), hout.to_bytes()],
            )
            .expect("link day row");
            let dl: Vec<u8> = [15e6f64, 18e6, 12e6, 16e6]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            let ul: Vec<u8> = [8e6f64, 9e6, 10e6, 7e6]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            tx.execute(
                "INSERT INTO rollup_bw_day (opd_id, day_ms, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul)
                 VALUES (?1, ?2, 'a', 'bw', 4, 1, 0, ?3, ?4)",
                params![id, day, dl, ul],
            )
            .expect("bandwidth day row");
        }
    }
    tx.commit().expect("commit");
    println!(
        "setup: {} OPD x {} groups x {DAYS} days of rollups in {:.1} s",
        OPDS,
        GROUPS.len(),
        t.elapsed().as_secs_f64()
    );

    let req = Request {
        opd: None,
        from,
        to: from + chrono::Days::new(DAYS as u64 - 1),
        number: "BENCH/2025".into(),
        issued_ms: store::now_ms(),
        lang: Lang::Id,
        business_hours: false,
        compare: None,
    };
    let st = store::SqliteStore::open(&data).expect("store");
    for round in 0..3 {
        let t = Instant::now();
        let r = store::report::snapshot(&st, |c| assemble(c, &s, &req)).expect("assemble");
        let assembled = t.elapsed();
        let pdf = render_as(&r, Format::Pdf);
        let total = t.elapsed();
        println!(
            "round {round}: one-year province report, {} OPD, {} incidents: assemble {:.3} s, + PDF ({} pages' worth, {} KiB) {:.3} s total",
            r.opds.len(),
            r.incidents.len(),
            assembled.as_secs_f64(),
            pdf.windows(9).filter(|w| w == b"/Type /Pa").count(),
            pdf.len() / 1024,
            total.as_secs_f64()
        );
    }

    // Rolling up one OPD-day from raw: 20 targets x 2880 results.
    let who = AgentIdentity {
        agent_id: "a-1".into(),
        opd_id: "opd-00".into(),
    };
    conn.execute(
        "INSERT INTO agent (id, opd_id, token_sha256, created_at_ms) VALUES ('a-1', 'opd-00', x'00', 0)",
        [],
    )
    .expect("agent");
    let targets: Vec<TargetDecl> = (0..20)
        .map(|i| TargetDecl {
            id: format!("t{i}"),
            group: Group::parse(GROUPS[i % 5]).expect("a group name"),
            kind: ProbeKind::Tcp,
            address: "x".into(),
            label: "x".into(),
            interval_ms: 30_000,
            timeout_ms: 5_000,
        })
        .collect();
    store::record_hello(
        &mut conn,
        &who,
        &HelloInfo {
            version: "b".into(),
            config_hash: "b".into(),
            hostname: "b".into(),
            epoch: 1,
            agent_time_ms: None,
            targets: targets.clone(),
        },
        None,
    )
    .expect("hello");
    let day = day0 + 400 * DAY_MS;
    let mut rows = Vec::new();
    for k in 0..2880 {
        for (i, t) in targets.iter().enumerate() {
            rows.push(ResultRow {
                epoch: 1,
                seq: (k * 20 + i) as u64 + 1,
                target_id: t.id.clone(),
                group: t.group.to_string(),
                kind: ProbeKind::Tcp.into(),
                observed_at_ms: day + k as i64 * 30_000,
                outcome: Outcome::Ok,
                detail: String::new(),
                value_ms: Some(10.0 + (k % 50) as f64),
                sent: None,
                received: None,
                data: serde_json::json!({}),
                late: false,
                clock_flag: None,
                agent_time_ms: day + k as i64 * 30_000,
                clock_correction_ms: None,
            });
        }
    }
    let tx = conn.transaction().expect("tx");
    store::insert_results(&tx, &who, &rows, day + DAY_MS).expect("insert");
    store::sqlite::rollup::mark_dirty(&tx, "opd-00", &rows).expect("dirty");
    tx.commit().expect("commit");
    let t = Instant::now();
    let n = rollup::refresh(&st, &s.rules, s.utc_offset_minutes).expect("refresh");
    let el = t.elapsed().as_secs_f64();
    println!(
        "rollup: {n} OPD-hours ({} raw results) rebuilt in {:.3} s; a province day (60 OPD) ~ {:.1} s of background work",
        rows.len(),
        el,
        el * 60.0
    );
}
