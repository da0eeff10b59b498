//! Conformance checks of the report side: rollups with late data rebuilding
//! an hour, incidents across hours, capacity hours and days, paths, the rule
//! history, and the admin writes. Each check takes a fresh backend and a
//! [`Fixture`] that registers agents and stores results the way ingest does.
//!
//! A check panics with a message on the first difference (they are run by
//! `#[test]`s of each backend).

use chrono::DateTime;
use serde_json::json;

use crate::model::{Outcome, ProbeKind, ResultRow, TargetDecl};
use crate::report::rollup::{self, HOUR_MS};
use crate::report::rules::RuleSet;
use crate::report::{Lang, Request, Settings, assemble, history};
use crate::store::report::{
    IncidentNote, NewMaintenance, PathFilter, ReportBackend, ReportRead, snapshot,
};

/// 2026-11-16 00:00 WITA (UTC+8), an hour start.
pub const H0: i64 = 1_794_844_800_000;
const MIN: i64 = 60_000;

/// Writes a check needs that belong to other traits (registry, ingest).
pub trait Fixture {
    /// Register OPD `opd` with agent `agent`, declaring `targets` first seen
    /// at `declared_ms`.
    fn declare(&self, opd: &str, agent: &str, targets: &[TargetDecl], declared_ms: i64);
    /// Store results of `agent` as the ingest writer does, marking their
    /// hours dirty.
    fn store(&self, opd: &str, agent: &str, rows: &[ResultRow]);
}

pub(crate) fn target(id: &str, group: pantau_core::Group, kind: ProbeKind) -> TargetDecl {
    TargetDecl {
        id: id.into(),
        group,
        kind,
        address: format!("{id}.example.invalid:443"),
        label: id.into(),
        interval_ms: 60_000,
        timeout_ms: 5_000,
    }
}

fn row(seq: u64, t: &TargetDecl, at: i64, ok: bool, data: serde_json::Value) -> ResultRow {
    ResultRow {
        epoch: 1,
        seq,
        target_id: t.id.clone(),
        group: t.group.to_string(),
        kind: t.kind.into(),
        observed_at_ms: at,
        outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
        detail: String::new(),
        value_ms: ok.then_some(10.0),
        sent: None,
        received: None,
        data,
        late: false,
        clock_flag: None,
        agent_time_ms: at,
        clock_correction_ms: None,
    }
}

/// One TCP result a minute (5 s into it) for `minutes` from `H0`.
pub(crate) fn minutes(
    t: &TargetDecl,
    seq0: u64,
    minutes: std::ops::Range<i64>,
    down: &[i64],
) -> Vec<ResultRow> {
    minutes
        .enumerate()
        .map(|(i, m)| {
            let ok = !down.contains(&m);
            row(seq0 + i as u64, t, H0 + m * MIN + 5_000, ok, json!({}))
        })
        .collect()
}

pub(crate) fn group_minutes(b: &dyn ReportBackend, hour: i64) -> Vec<(String, String)> {
    snapshot(b, |r| r.group_minutes("o", hour, hour + HOUR_MS))
        .expect("group minutes")
        .into_iter()
        .map(|m| (m.key, m.minutes))
        .collect()
}

/// Late results correct an hour already rolled up, and its day.
pub fn late_data_rebuilds_the_hour(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let rules = RuleSet::default();
    let web = target("web", pantau_core::Group::Internet, ProbeKind::Tcp);
    fx.declare("o", "o-1", std::slice::from_ref(&web), H0);
    fx.store("o", "o-1", &minutes(&web, 1, 0..30, &[]));
    rollup::refresh_at(b, &rules, 480, H0 + HOUR_MS + MIN).expect("refresh");
    let want = "U".repeat(30) + &"-".repeat(30);
    assert_eq!(group_minutes(b, H0), vec![("internet".into(), want)]);
    let up = |b: &dyn ReportBackend| -> i64 {
        snapshot(b, |r| r.group_days(Some("o"), H0, H0 + 24 * HOUR_MS, false))
            .expect("days")
            .iter()
            .map(|d| d.counts[0])
            .sum()
    };
    assert_eq!(up(b), 30);
    fx.store("o", "o-1", &minutes(&web, 100, 30..60, &[]));
    assert_eq!(
        snapshot(b, |r| r.pending_hours(Some("o"))).expect("pending"),
        1,
        "the late results mark their hour dirty"
    );
    rollup::refresh_at(b, &rules, 480, H0 + HOUR_MS + MIN).expect("refresh");
    assert_eq!(
        group_minutes(b, H0),
        vec![("internet".into(), "U".repeat(60))]
    );
    assert_eq!(up(b), 60, "the day is rebuilt from the corrected hour");
    assert_eq!(snapshot(b, |r| r.pending_hours(None)).expect("pending"), 0);
    assert_eq!(
        snapshot(b, |r| r.watermark("o")).expect("watermark"),
        Some(H0 + HOUR_MS + MIN)
    );
    // The status page reads the days of every OPD at once.
    let lan = target("lan", pantau_core::Group::Intranet, ProbeKind::Tcp);
    fx.declare("p", "p-1", std::slice::from_ref(&lan), H0);
    fx.store("p", "p-1", &minutes(&lan, 1, 0..10, &[3]));
    rollup::refresh_at(b, &rules, 480, H0 + HOUR_MS + MIN).expect("refresh");
    let mut days: Vec<(String, String, i64, i64)> =
        snapshot(b, |r| r.group_days(None, H0, H0 + 24 * HOUR_MS, false))
            .expect("days of every OPD")
            .into_iter()
            .map(|d| (d.opd, d.grp, d.counts[0], d.counts[2]))
            .collect();
    days.sort();
    assert_eq!(
        days,
        [
            ("o".into(), "internet".into(), 60, 0),
            ("p".into(), "intranet".into(), 9, 1)
        ]
    );
}

/// Results stored for an hour between a rollup's read of it and its write
/// leave the hour dirty (the rollup written is the one of the snapshot),
/// and the next run's rollup has them.
pub fn results_during_a_rebuild_keep_the_hour_dirty(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let rules = RuleSet::default();
    let web = target("web", pantau_core::Group::Internet, ProbeKind::Tcp);
    fx.declare("o", "o-1", std::slice::from_ref(&web), H0);
    fx.store("o", "o-1", &minutes(&web, 1, 0..30, &[]));
    rollup::refresh_at(b, &rules, 480, H0 + HOUR_MS + MIN).expect("refresh");
    fx.store("o", "o-1", &minutes(&web, 100, 30..45, &[]));
    let mut seen = Vec::new();
    let builder = rollup::Builder {
        rules: &rules,
        offset_min: 480,
    };
    let n = b
        .rebuild_dirty_between(200, &builder, &mut |opd, hour| {
            seen.push((opd.to_string(), hour));
            fx.store("o", "o-1", &minutes(&web, 200, 45..60, &[]));
        })
        .expect("rebuild");
    assert_eq!((n, seen), (1, vec![("o".to_string(), H0)]));
    assert_eq!(
        group_minutes(b, H0),
        vec![("internet".into(), "U".repeat(45) + &"-".repeat(15))],
        "the rollup of the snapshot read before the last results"
    );
    assert_eq!(
        snapshot(b, |r| r.pending_hours(Some("o"))).expect("pending"),
        1,
        "results stored between the read and the write keep the hour dirty"
    );
    rollup::refresh_at(b, &rules, 480, H0 + HOUR_MS + MIN).expect("refresh");
    assert_eq!(
        group_minutes(b, H0),
        vec![("internet".into(), "U".repeat(60))]
    );
    assert_eq!(snapshot(b, |r| r.pending_hours(None)).expect("pending"), 0);
}

/// A run of down minutes across an hour boundary is one incident, with its
/// affected target and the note an admin wrote.
pub fn incidents_span_hours(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let s = Settings::new(&crate::config::Display::default());
    let web = target("web", pantau_core::Group::Internet, ProbeKind::Tcp);
    fx.declare("o", "o-1", std::slice::from_ref(&web), H0);
    let down: Vec<i64> = (50..70).collect();
    fx.store("o", "o-1", &minutes(&web, 1, 0..120, &down));
    b.set_incident_note(&IncidentNote {
        opd: "o".into(),
        group: "internet".into(),
        start_ms: H0 + 50 * MIN,
        note: "kabel putus".into(),
        ticket: "T-1".into(),
        by: "budi".into(),
        at_ms: H0,
    })
    .expect("note");
    rollup::refresh_at(b, &s.rules, s.utc_offset_minutes, H0 + 2 * HOUR_MS).expect("refresh");
    let day = DateTime::from_timestamp_millis(H0 + s.utc_offset_minutes * MIN)
        .expect("a date")
        .date_naive();
    let req = Request {
        opd: Some("o".into()),
        from: day,
        to: day,
        number: String::new(),
        issued_ms: H0,
        lang: Lang::Id,
        business_hours: false,
        compare: None,
    };
    let r = snapshot(b, |c| assemble(c, &s, &req)).expect("assemble");
    let inc: Vec<_> = r
        .incidents
        .iter()
        .filter(|i| i.group == "internet")
        .collect();
    assert_eq!(inc.len(), 1, "{:?}", r.incidents);
    let i = inc[0];
    assert_eq!(
        (i.start_ms, i.end_ms, i.minutes),
        (H0 + 50 * MIN, H0 + 70 * MIN, 20)
    );
    assert_eq!(i.affected, vec!["web".to_string()]);
    assert_eq!(
        (i.note.as_deref(), i.ticket.as_deref()),
        (Some("kabel putus"), Some("T-1"))
    );
}

/// Bandwidth and link results roll up per hour and merge per day.
pub fn capacity_hours_and_days(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let rules = RuleSet::default();
    let bw = target("bw", pantau_core::Group::Datacenter, ProbeKind::Bandwidth);
    let wan = target("wan", pantau_core::Group::Intranet, ProbeKind::Link);
    fx.declare("o", "o-1", &[bw.clone(), wan.clone()], H0);
    let rate = |d: f64, u: f64| json!({"download_bps": d, "upload_bps": u, "skipped": ""});
    let poll = json!({"if_name": "ether1", "interval_seconds": 60.0, "in_bps": 1e6,
        "out_bps": 2e6, "capacity_bps": 1e7, "contracted": true});
    fx.store(
        "o",
        "o-1",
        &[
            row(1, &bw, H0 + 10 * MIN, true, rate(2e6, 1e6)),
            row(2, &wan, H0 + 11 * MIN, true, poll.clone()),
            row(3, &bw, H0 + HOUR_MS + 10 * MIN, true, rate(1e6, 3e6)),
            row(4, &wan, H0 + HOUR_MS + 11 * MIN, true, poll),
            row(5, &bw, H0 + HOUR_MS + 20 * MIN, false, json!({})),
        ],
    );
    rollup::refresh_at(b, &rules, 480, H0 + 2 * HOUR_MS).expect("refresh");
    let (hours, days, links) = snapshot(b, |r| {
        Ok::<_, crate::store::StoreError>((
            r.bw_rows(Some("o"), H0, H0 + 2 * HOUR_MS, true)?,
            r.bw_rows(Some("o"), H0, H0 + 24 * HOUR_MS, false)?,
            r.link_rows(Some("o"), H0, H0 + 24 * HOUR_MS, false)?,
        ))
    })
    .expect("capacity rows");
    assert_eq!(hours.len(), 2, "{hours:?}");
    assert_eq!(days.len(), 1, "{days:?}");
    let d = &days[0];
    assert_eq!((d.n_ok, d.n_skipped, d.n_fail), (2, 0, 1));
    assert_eq!(d.dl, vec![1e6, 2e6], "day rates are sorted");
    assert_eq!(d.ul, vec![1e6, 3e6]);
    assert_eq!(links.len(), 1, "{links:?}");
    let l = &links[0];
    assert_eq!(
        (l.polls, l.covered_ms, l.if_name.as_str()),
        (2, 120_000, "ether1")
    );
    assert_eq!((l.capacity_bps, l.contracted), (1e7, true));
    assert_eq!((l.in_bits, l.out_bits), (1.2e8, 2.4e8));
}

/// Traceroutes become paths; a changed route is a new path naming the old one.
pub fn paths_follow_route_changes(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let tr = target("dc", pantau_core::Group::Datacenter, ProbeKind::Traceroute);
    fx.declare("o", "o-1", std::slice::from_ref(&tr), H0);
    let hops = |h: &[&str]| {
        let hops: Vec<_> = h
            .iter()
            .map(|a| json!({"address": a, "rtt_us": 100}))
            .collect();
        json!({"hops": hops, "reached": true})
    };
    fx.store(
        "o",
        "o-1",
        &[
            row(1, &tr, H0, true, hops(&["10.0.0.1", "10.0.1.1"])),
            row(2, &tr, H0 + 10 * MIN, true, hops(&["10.0.0.1", "10.0.1.1"])),
            row(3, &tr, H0 + 20 * MIN, true, hops(&["10.0.0.1", "10.0.2.1"])),
        ],
    );
    let all = |f: PathFilter| snapshot(b, |r| r.paths(&f)).expect("paths");
    let p = all(PathFilter {
        opd: Some("o".into()),
        ..PathFilter::default()
    });
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!((p[0].times_seen, p[0].last_seen_ms), (2, H0 + 10 * MIN));
    assert_eq!(p[1].hops, vec!["10.0.0.1", "10.0.2.1"]);
    assert_eq!(p[1].previous_id, Some(p[0].id));
    assert_eq!(p[1].previous_hops.as_deref(), Some(&p[0].hops[..]));
    assert_eq!(p[1].group, "datacenter");
    // Paths last seen before the window are left out.
    let later = all(PathFilter {
        from_ms: Some(H0 + 15 * MIN),
        ..PathFilter::default()
    });
    assert_eq!(later.len(), 1);
    assert!(
        all(PathFilter {
            opd: Some("other".into()),
            ..PathFilter::default()
        })
        .is_empty()
    );
}

/// A changed rule set is recorded once and queues every raw hour for a rebuild.
pub fn rule_history_queues_rebuilds(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let rules = RuleSet::default();
    assert!(!history::ensure(b, &rules).expect("first record"));
    assert!(!history::ensure(b, &rules).expect("again"));
    let web = target("web", pantau_core::Group::Internet, ProbeKind::Tcp);
    fx.declare("o", "o-1", std::slice::from_ref(&web), H0);
    fx.store("o", "o-1", &minutes(&web, 1, 0..90, &[]));
    rollup::refresh_at(b, &rules, 480, H0 + 2 * HOUR_MS).expect("refresh");
    let changed = RuleSet {
        version: "conformance/2".into(),
        degraded_rtt_ms: 1.0,
        ..RuleSet::default()
    };
    assert!(history::ensure(b, &changed).expect("change"));
    assert!(!history::ensure(b, &changed).expect("recorded once"));
    assert_eq!(
        snapshot(b, |r| r.pending_hours(Some("o"))).expect("pending"),
        2,
        "both hours with raw results are queued"
    );
    let h = snapshot(b, |r| r.rule_history()).expect("history");
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[1].version, "conformance/2");
    assert_eq!(h[1].rebuilt_from_ms, Some(H0 + 5_000));
    rollup::refresh_at(b, &changed, 480, H0 + 2 * HOUR_MS).expect("rebuild");
    // 10 ms answers are degraded under a 1 ms threshold.
    assert_eq!(
        group_minutes(b, H0),
        vec![("internet".into(), "G".repeat(60))]
    );
    let older = snapshot(b, |r: &dyn ReportRead| {
        history::older_in(r, H0, H0 + 2 * HOUR_MS)
    })
    .expect("older");
    assert!(older.is_empty(), "every hour was rebuilt: {older:?}");
}

/// Maintenance windows are listed by scope and period and mark their hours
/// dirty; contracts are recorded on known OPDs only.
pub fn admin_writes(b: &dyn ReportBackend, fx: &dyn Fixture) {
    let web = target("web", pantau_core::Group::Internet, ProbeKind::Tcp);
    fx.declare("o", "o-1", std::slice::from_ref(&web), H0);
    for (opd, from) in [(Some("o"), H0), (None, H0 + HOUR_MS)] {
        b.add_maintenance(&NewMaintenance {
            opd: opd.map(str::to_string),
            group: None,
            from_ms: from,
            to_ms: from + 30 * MIN,
            reason: "r".into(),
            by: "budi".into(),
            at_ms: H0,
        })
        .expect("maintenance");
    }
    let (all, first, pending) = snapshot(b, |r| {
        Ok::<_, crate::store::StoreError>((
            r.maintenance(Some("o"), None)?,
            r.maintenance(Some("o"), Some((H0, H0 + HOUR_MS)))?,
            r.pending_hours(Some("o"))?,
        ))
    })
    .expect("maintenance");
    assert_eq!(all.len(), 2);
    assert_eq!((first.len(), first[0].opd.as_deref()), (1, Some("o")));
    assert_eq!(pending, 2);
    assert!(b.set_contract("o", Some(20.0)).expect("contract"));
    assert!(!b.set_contract("nope", Some(20.0)).expect("contract"));
    assert_eq!(
        snapshot(b, |r| r.opd_contract("o")).expect("read"),
        Some(20.0)
    );
    // End early and delete: the console's and `maintenance-end|-delete`.
    let (own, global) = (all[0].id, all[1].id);
    let was = b.end_maintenance(own, H0 + 10 * MIN).expect("end early");
    assert_eq!((was.from_ms, was.to_ms), (H0, H0 + 30 * MIN));
    assert!(matches!(
        b.end_maintenance(own, H0 + 20 * MIN),
        Err(crate::store::StoreError::MaintenanceOver(i)) if i == own
    ));
    let gone = b.delete_maintenance(global).expect("delete");
    assert_eq!((gone.opd, gone.from_ms), (None, H0 + HOUR_MS));
    assert!(matches!(
        b.delete_maintenance(global),
        Err(crate::store::StoreError::UnknownMaintenance(i)) if i == global
    ));
    assert!(matches!(
        b.end_maintenance(global, H0),
        Err(crate::store::StoreError::UnknownMaintenance(_))
    ));
    let left = snapshot(b, |r| r.maintenance(None, None)).expect("maintenance");
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].to_ms), (own, H0 + 10 * MIN));
}
