//! The signed report's own availability as metrics, so dashboards and SLA
//! alerts show the same number as the evidence.
//!
//! `pantau_availability_ratio{opd,group,window}` is computed from the group
//! rollups exactly as the report does: (up + degraded) / (up + degraded +
//! down) over composite group minutes ([`StateMinutes::availability`]);
//! unknown and maintenance minutes count on neither side, and a group
//! without a measured minute in the window has no series. Window `1d` is the
//! current hour and the 23 before it, `30d` the current hour and the 719
//! before it (hour rollups, UTC hours).
//!
//! `pantau_availability_measured_minutes{opd,group,window}` gives the
//! measured minutes behind each ratio, so a sum over OPDs weighted by them is
//! the report's province figure. `pantau_availability_target_ratio{group}` is
//! the SLA target (`[report.sla]`).
//!
//! `pantau_incidents_open{opd,group}` counts the incidents still open in the
//! report of yesterday and today (local days), as [`report::assemble`]
//! detects them; group `agent` is an agent that stopped reporting.
//!
//! The raw ok/all rate of `pantau_probe_results_total` is the *probe success
//! rate*, a different figure (per result, not per composite minute).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use prometheus::{GaugeVec, IntGaugeVec, Opts, Registry};

use crate::report::rules::{GROUPS, StateMinutes};
use crate::report::time::{DAY_MS, HOUR_MS, hour_of};
use crate::report::{self, Lang, Request, Settings};
use crate::store::StoreError;
use crate::store::report::ReportRead;

/// Windows: label and number of hour rollups (the current hour included).
pub const WINDOWS: [(&str, i64); 2] = [("1d", 24), ("30d", 30 * 24)];

/// Group label of an incident where the agent stopped reporting.
pub const AGENT_GROUP: &str = "agent";

/// Composite group minutes per (opd, group) over the hour rollups starting in
/// `[from_hour_ms, to_hour_ms]`, for every registered OPD and group (one
/// primary-key range per pair, so the cost does not grow with history).
pub fn minutes(
    r: &dyn ReportRead,
    from_hour_ms: i64,
    to_hour_ms: i64,
) -> Result<BTreeMap<(String, String), StateMinutes>, StoreError> {
    let mut out = BTreeMap::new();
    for opd in r.opds(None)? {
        for grp in GROUPS {
            if let Some(c) = r.group_hour_sums(&opd.id, grp, from_hour_ms, to_hour_ms)? {
                let n = |i: usize| c[i].max(0) as u64;
                let m = StateMinutes {
                    up: n(0),
                    degraded: n(1),
                    down: n(2),
                    unknown: n(3),
                    maintenance: n(4),
                };
                out.insert((opd.id.clone(), grp.to_string()), m);
            }
        }
    }
    Ok(out)
}

/// (opd, group, window) -> (availability 0..1, measured minutes).
pub type Ratios = BTreeMap<(String, String, &'static str), (f64, u64)>;

/// Availability (0..1) and measured minutes per (opd, group, window) at
/// `now_ms`; only groups with measured minutes in the window.
pub fn ratios(conn: &dyn ReportRead, now_ms: i64) -> Result<Ratios, StoreError> {
    let current = hour_of(now_ms);
    let mut out = BTreeMap::new();
    for (window, hours) in WINDOWS {
        let from = current - (hours - 1) * HOUR_MS;
        for ((opd, grp), m) in minutes(conn, from, current)? {
            if let Some(a) = m.availability() {
                out.insert((opd, grp, window), (a, m.up + m.degraded + m.down));
            }
        }
    }
    Ok(out)
}

/// Open incidents per (opd, group) in the report of yesterday and today
/// (local days) issued at `now_ms`; every OPD and group at 0 first.
pub fn open_incidents(
    conn: &dyn ReportRead,
    s: &Settings,
    now_ms: i64,
) -> Result<BTreeMap<(String, String), i64>, StoreError> {
    let local = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms + s.utc_offset_minutes * 60_000)
            .map(|t| t.date_naive())
            .unwrap_or_default()
    };
    let req = Request {
        opd: None,
        from: local(now_ms - DAY_MS),
        to: local(now_ms),
        number: String::new(),
        issued_ms: now_ms,
        lang: Lang::Id,
        business_hours: false,
        compare: None,
    };
    let r = report::assemble(conn, s, &req)?;
    let mut out = BTreeMap::new();
    for o in &r.opds {
        for g in GROUPS.iter().chain([&AGENT_GROUP]) {
            out.insert((o.id.clone(), g.to_string()), 0);
        }
    }
    for i in r.incidents.iter().filter(|i| i.open) {
        *out.entry((i.opd.clone(), i.group.clone())).or_default() += 1;
    }
    Ok(out)
}

type Published = (BTreeSet<[String; 3]>, BTreeSet<[String; 2]>);

/// The two families; series that disappear (no measured minute any more, an
/// OPD removed) are removed, not left at their last value.
#[derive(Debug)]
pub struct Availability {
    ratio: GaugeVec,
    measured: IntGaugeVec,
    target: GaugeVec,
    open: IntGaugeVec,
    published: Mutex<Published>,
    events: super::events::Events,
}

impl Availability {
    /// Create and register the families.
    pub fn register(r: &Registry) -> Arc<Self> {
        let ratio = GaugeVec::new(
            Opts::new(
                "pantau_availability_ratio",
                "Availability as in the signed report, 0 to 1: (up + degraded) / (up + degraded + down) composite group minutes from the rollups. window = 1d (current hour and the 23 before) or 30d (current hour and the 719 before). Absent without measured minutes.",
            ),
            &["opd", "group", "window"],
        )
        .expect("valid metric");
        let measured = IntGaugeVec::new(
            Opts::new(
                "pantau_availability_measured_minutes",
                "Measured composite minutes (up + degraded + down) behind pantau_availability_ratio; weights for sums over OPDs (the report's province figure).",
            ),
            &["opd", "group", "window"],
        )
        .expect("valid metric");
        let target = GaugeVec::new(
            Opts::new(
                "pantau_availability_target_ratio",
                "SLA availability target of the group as the report uses it ([report.sla]), 0 to 1.",
            ),
            &["group"],
        )
        .expect("valid metric");
        let open = IntGaugeVec::new(
            Opts::new(
                "pantau_incidents_open",
                "Incidents (gangguan) still open in the report of yesterday and today; group agent = the agent stopped reporting.",
            ),
            &["opd", "group"],
        )
        .expect("valid metric");
        r.register(Box::new(ratio.clone()))
            .expect("metric names are unique");
        r.register(Box::new(open.clone()))
            .expect("metric names are unique");
        r.register(Box::new(target.clone()))
            .expect("metric names are unique");
        r.register(Box::new(measured.clone()))
            .expect("metric names are unique");
        Arc::new(Availability {
            ratio,
            measured,
            target,
            open,
            published: Mutex::default(),
            events: super::events::Events::register(r),
        })
    }

    /// Recompute from fresh rollups (after [`report::rollup::refresh`]), on
    /// one snapshot. A failure is logged and leaves the previous values.
    pub fn publish(&self, conn: &dyn ReportRead, s: &Settings) {
        for (g, pct) in GROUPS.iter().zip(s.sla_pct) {
            self.target.with_label_values(&[g]).set(pct / 100.0);
        }
        let now = crate::store::now_ms();
        let figures = ratios(conn, now).and_then(|r| Ok((r, open_incidents(conn, s, now)?)));
        let (ratios, open) = match figures {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "availability metrics not updated");
                return;
            }
        };
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        let mut now_ratio = BTreeSet::new();
        for ((opd, grp, window), (a, n)) in ratios {
            let labels = [opd.as_str(), grp.as_str(), window];
            self.ratio.with_label_values(&labels).set(a);
            self.measured.with_label_values(&labels).set(n as i64);
            now_ratio.insert([opd, grp, window.to_string()]);
        }
        for gone in published.0.difference(&now_ratio) {
            let labels = [gone[0].as_str(), gone[1].as_str(), gone[2].as_str()];
            let _ = self.ratio.remove_label_values(&labels);
            let _ = self.measured.remove_label_values(&labels);
        }
        let mut now_open = BTreeSet::new();
        for ((opd, grp), n) in open {
            self.open.with_label_values(&[&opd, &grp]).set(n);
            now_open.insert([opd, grp]);
        }
        for gone in published.1.difference(&now_open) {
            let _ = self.open.remove_label_values(&[&gone[0], &gone[1]]);
        }
        *published = (now_ratio, now_open);
        if let Err(e) = self.events.publish(conn, now) {
            tracing::warn!(error = %e, "maintenance and path-change metrics not updated");
        }
    }
}
