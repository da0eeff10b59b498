//! Capacity and interconnection evidence: throughput measured against the
//! contracted bandwidth, link utilisation (pemanfaatan), and reachability of
//! the Pusat Data and JIP/PDN per OPD.
//!
//! Rollups: [`build_hour`] rolls the raw `bandwidth` and `link` results of
//! one OPD hour into throughput and utilisation rows, [`build_day`] merges
//! the hours of a local day; the store runs both (through the rollup
//! builder) for every dirty hour, so late results correct them like the
//! availability rollups. Reports read day rows only ([`load`]).
//!
//! - Throughput: every measured rate is kept (a test runs at most every
//!   15 minutes), so median, 5th percentile, minimum and maximum over any
//!   period are exact.
//! - Utilisation: a link interval (previous poll to this one) belongs to the
//!   hour in which it ends; its rate is recorded in a time-weighted
//!   logarithmic histogram ([`RateHist`], 16 buckets per doubling) that keeps
//!   the highest rate of each bucket, so the p95 of any period is the highest
//!   rate in the bucket holding the 95th percentile of the covered time
//!   (exact when the bucket holds one rate, never more than 4,4 % above).
//!   Average = bits moved / covered seconds; peak = highest interval rate.
//!   Intervals without a rate (first poll, counter reset, gap, failed poll)
//!   are counted and disclosed, never interpolated.

use std::collections::BTreeMap;

use serde::Serialize;

use super::text::num;
use super::time::HOUR_MS;
use super::{GroupFigure, Lang, OpdFigure};
use crate::model::{Outcome, ProbeKind, RowKind};
use crate::store::StoreError;
use crate::store::report::{BwRow, CapacityResult, LinkRow, ReportAdmin, ReportRead};

/// A link whose p95 utilisation (in or out) is above this percentage of its
/// capacity is reported as saturated.
pub const SATURATION_P95_PCT: f64 = 80.0;
/// A median throughput below this percentage of the contracted bandwidth is
/// reported as under contract.
pub const THROUGHPUT_MIN_PCT: f64 = 80.0;
/// Groups of the interconnection section.
pub const REACH_GROUPS: [&str; 2] = ["datacenter", "jip"];

const BASE_BPS: f64 = 1000.0;
const PER_OCTAVE: f64 = 16.0;
const MAX_BUCKET: u16 = 16 * 34 + 1;

/// A contract outside 0 (clear) to 1 000 000 Mbit/s, or an unknown OPD.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// Out of range.
    #[error("--mbps must be 0 (clear) to 1000000 Mbit/s, not {0}")]
    Range(f64),
    /// No such OPD.
    #[error("no OPD `{0}`; list them with `pantau-collector opd list`")]
    UnknownOpd(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// `pantau-collector opd contract ID --mbps N`: record (or with 0 clear) the
/// contracted bandwidth of an OPD.
pub fn set_contract(
    store: &(impl ReportAdmin + ?Sized),
    opd: &str,
    mbps: f64,
) -> Result<String, ContractError> {
    if !(mbps.is_finite() && (0.0..=1_000_000.0).contains(&mbps)) {
        return Err(ContractError::Range(mbps));
    }
    if !store.set_contract(opd, (mbps > 0.0).then_some(mbps))? {
        return Err(ContractError::UnknownOpd(opd.to_string()));
    }
    Ok(if mbps > 0.0 {
        format!("bandwidth kontrak / contracted bandwidth of `{opd}`: {mbps} Mbit/s")
    } else {
        format!("bandwidth kontrak `{opd}` dihapus / cleared")
    })
}

/// Parameters printed with the rule version.
pub fn parameters() -> Vec<(String, String)> {
    vec![
        ("saturation_p95_pct".into(), format!("{SATURATION_P95_PCT}")),
        (
            "throughput_min_pct_of_contract".into(),
            format!("{THROUGHPUT_MIN_PCT}"),
        ),
        ("utilisation_hist_buckets_per_doubling".into(), "16".into()),
    ]
}

/// Time-weighted, mergeable rate histogram: per bucket, milliseconds of
/// covered time and the highest rate seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateHist {
    b: BTreeMap<u16, (u64, f64)>,
}

fn bucket(bps: f64) -> u16 {
    if bps.is_nan() || bps < BASE_BPS {
        return 0;
    }
    let i = ((bps / BASE_BPS).log2() * PER_OCTAVE).floor() as u64 + 1;
    i.min(MAX_BUCKET as u64) as u16
}

impl RateHist {
    /// Record `ms` of time at `bps`.
    pub fn record(&mut self, bps: f64, ms: u64) {
        if !bps.is_finite() || ms == 0 {
            return;
        }
        let e = self.b.entry(bucket(bps)).or_insert((0, 0.0));
        e.0 += ms;
        e.1 = e.1.max(bps);
    }

    /// Add another histogram.
    pub fn merge(&mut self, o: &RateHist) {
        for (k, (ms, mx)) in &o.b {
            let e = self.b.entry(*k).or_insert((0, 0.0));
            e.0 += ms;
            e.1 = e.1.max(*mx);
        }
    }

    /// Covered milliseconds.
    pub fn total_ms(&self) -> u64 {
        self.b.values().map(|v| v.0).sum()
    }

    /// The `q` quantile of time: the highest rate of the first bucket at
    /// which at least `q` of the covered time lies at or below.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total_ms();
        if total == 0 {
            return None;
        }
        let need = (q * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (ms, mx) in self.b.values() {
            seen += ms;
            if seen >= need {
                return Some(*mx);
            }
        }
        self.b.values().last().map(|v| v.1)
    }

    /// Bytes for storage: per bucket u16 index, u32 ms, f64 max (LE).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.b.len() * 14);
        for (k, (ms, mx)) in &self.b {
            out.extend(k.to_le_bytes());
            out.extend((u32::try_from(*ms).unwrap_or(u32::MAX)).to_le_bytes());
            out.extend(mx.to_le_bytes());
        }
        out
    }

    /// Add stored bytes.
    pub fn merge_bytes(&mut self, b: &[u8]) {
        for c in b.chunks_exact(14) {
            let k = u16::from_le_bytes([c[0], c[1]]);
            let ms = u32::from_le_bytes([c[2], c[3], c[4], c[5]]) as u64;
            let mx = f64::from_le_bytes(c[6..14].try_into().unwrap_or([0; 8]));
            let e = self.b.entry(k).or_insert((0, 0.0));
            e.0 += ms;
            e.1 = e.1.max(mx);
        }
    }
}

#[derive(Default)]
struct BwAcc {
    ok: i64,
    skipped: i64,
    fail: i64,
    dl: Vec<f64>,
    ul: Vec<f64>,
}

#[derive(Default)]
struct LinkAcc {
    if_name: String,
    polls: i64,
    no_rate: i64,
    covered_ms: i64,
    in_bits: f64,
    out_bits: f64,
    in_peak: f64,
    out_peak: f64,
    in_h: RateHist,
    out_h: RateHist,
    cap: f64,
    contracted: bool,
    cap_at: i64,
}

impl LinkAcc {
    fn merge_row(&mut self, r: &LinkRow) {
        let cap_at = r.capacity_at_ms;
        if (cap_at >= self.cap_at || self.if_name.is_empty()) && !r.if_name.is_empty() {
            self.if_name.clone_from(&r.if_name);
        }
        self.polls += r.polls;
        self.no_rate += r.no_rate;
        self.covered_ms += r.covered_ms;
        self.in_bits += r.in_bits;
        self.out_bits += r.out_bits;
        self.in_peak = self.in_peak.max(r.in_peak);
        self.out_peak = self.out_peak.max(r.out_peak);
        self.in_h.merge_bytes(&r.in_hist);
        self.out_h.merge_bytes(&r.out_hist);
        if r.capacity_bps > 0.0 && cap_at >= self.cap_at {
            self.cap = r.capacity_bps;
            self.contracted = r.contracted;
            self.cap_at = cap_at;
        }
    }

    fn to_row(&self, opd: &str, at_ms: i64, (agent, target): (String, String)) -> LinkRow {
        LinkRow {
            opd: opd.to_string(),
            at_ms,
            agent,
            target,
            if_name: self.if_name.clone(),
            polls: self.polls,
            no_rate: self.no_rate,
            covered_ms: self.covered_ms,
            in_bits: self.in_bits,
            out_bits: self.out_bits,
            in_peak: self.in_peak,
            out_peak: self.out_peak,
            in_hist: self.in_h.to_bytes(),
            out_hist: self.out_h.to_bytes(),
            capacity_bps: self.cap,
            contracted: self.contracted,
            capacity_at_ms: self.cap_at,
        }
    }
}

impl BwAcc {
    fn merge_row(&mut self, r: &BwRow) {
        self.ok += r.n_ok;
        self.skipped += r.n_skipped;
        self.fail += r.n_fail;
        self.dl.extend_from_slice(&r.dl);
        self.ul.extend_from_slice(&r.ul);
    }

    fn into_row(self, opd: &str, at_ms: i64, (agent, target): (String, String)) -> BwRow {
        BwRow {
            opd: opd.to_string(),
            at_ms,
            agent,
            target,
            n_ok: self.ok,
            n_skipped: self.skipped,
            n_fail: self.fail,
            dl: self.dl,
            ul: self.ul,
        }
    }
}

/// Roll up the throughput and utilisation of one OPD hour from its raw
/// `bandwidth` and `link` results (by time).
pub fn build_hour(opd: &str, hour: i64, results: &[CapacityResult]) -> (Vec<BwRow>, Vec<LinkRow>) {
    let mut bw: BTreeMap<(String, String), BwAcc> = BTreeMap::new();
    let mut link: BTreeMap<(String, String), LinkAcc> = BTreeMap::new();
    for r in results {
        let key = (r.agent.clone(), r.target.clone());
        let at = r.at_ms;
        let ok = r.outcome == Outcome::Ok;
        let data: serde_json::Value = serde_json::from_str(&r.data).unwrap_or_default();
        let f = |k: &str| data[k].as_f64().unwrap_or(0.0);
        if r.kind == RowKind::Probe(ProbeKind::Bandwidth) {
            let a = bw.entry(key).or_default();
            let skipped = data["skipped"].as_str().unwrap_or("");
            if !ok {
                a.fail += 1;
            } else if !skipped.is_empty() {
                a.skipped += 1;
            } else {
                a.ok += 1;
                if f("download_bps") > 0.0 {
                    a.dl.push(f("download_bps"));
                }
                if f("upload_bps") > 0.0 {
                    a.ul.push(f("upload_bps"));
                }
            }
        } else {
            let a = link.entry(key).or_default();
            a.polls += 1;
            if let Some(n) = data["if_name"].as_str().filter(|n| !n.is_empty()) {
                a.if_name = n.to_string();
            }
            let secs = f("interval_seconds");
            let (i, o) = (f("in_bps"), f("out_bps"));
            if ok && secs > 0.0 && i.is_finite() && o.is_finite() {
                let ms = (secs * 1000.0).round() as i64;
                a.covered_ms += ms;
                a.in_bits += i * secs;
                a.out_bits += o * secs;
                a.in_peak = a.in_peak.max(i);
                a.out_peak = a.out_peak.max(o);
                a.in_h.record(i, ms as u64);
                a.out_h.record(o, ms as u64);
            } else {
                a.no_rate += 1;
            }
            let cap = f("capacity_bps");
            if cap > 0.0 && at >= a.cap_at {
                a.cap = cap;
                a.contracted = data["contracted"].as_bool().unwrap_or(false);
                a.cap_at = at;
            }
        }
    }
    (
        bw.into_iter()
            .map(|(k, a)| a.into_row(opd, hour, k))
            .collect(),
        link.into_iter()
            .map(|(k, a)| a.to_row(opd, hour, k))
            .collect(),
    )
}

type Key = (String, String, String);

fn merge_bw(rows: &[BwRow], keep: &dyn Fn(i64) -> bool) -> BTreeMap<Key, BwAcc> {
    let mut out: BTreeMap<Key, BwAcc> = BTreeMap::new();
    for r in rows.iter().filter(|r| keep(r.at_ms)) {
        out.entry((r.opd.clone(), r.agent.clone(), r.target.clone()))
            .or_default()
            .merge_row(r);
    }
    out
}

/// Merge one link row into its link's accumulator (a link's rows come by time).
fn merge_link_row(out: &mut BTreeMap<Key, LinkAcc>, r: &LinkRow) {
    out.entry((r.opd.clone(), r.agent.clone(), r.target.clone()))
        .or_default()
        .merge_row(r);
}

/// Merge link rows read by time.
fn merge_link(rows: &[LinkRow]) -> BTreeMap<Key, LinkAcc> {
    let mut out: BTreeMap<Key, LinkAcc> = BTreeMap::new();
    for r in rows {
        merge_link_row(&mut out, r);
    }
    out
}

/// Roll up one OPD's local day of throughput and utilisation from its hours
/// (link hours by time).
pub fn build_day(
    opd: &str,
    day: i64,
    bw: &[BwRow],
    links: &[LinkRow],
) -> (Vec<BwRow>, Vec<LinkRow>) {
    let bw = merge_bw(bw, &|_| true)
        .into_iter()
        .map(|((_, agent, target), mut a)| {
            a.dl.sort_by(f64::total_cmp);
            a.ul.sort_by(f64::total_cmp);
            a.into_row(opd, day, (agent, target))
        })
        .collect();
    let links = merge_link(links)
        .into_iter()
        .map(|((_, agent, target), a)| a.to_row(opd, day, (agent, target)))
        .collect();
    (bw, links)
}

/// Distribution of measured throughput over the period, bit/s (exact).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Dist {
    /// Tests with a rate in this direction.
    pub n: usize,
    /// Median (nearest rank: the ceil(n/2)-th smallest).
    pub median_bps: f64,
    /// 5th percentile (nearest rank: the ceil(0,05 n)-th smallest).
    pub p5_bps: f64,
    /// Minimum.
    pub min_bps: f64,
    /// Maximum.
    pub max_bps: f64,
}

fn dist(v: &mut [f64]) -> Option<Dist> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let rank = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    Some(Dist {
        n,
        median_bps: v[rank(0.5)],
        p5_bps: v[rank(0.05)],
        min_bps: v[0],
        max_bps: v[n - 1],
    })
}

/// Throughput of one bandwidth target over the period.
#[derive(Debug, Clone, Serialize)]
pub struct BandwidthFigure {
    /// OPD id.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Target group (`datacenter`: to the Pusat Data; `internet`: an HTTP URL).
    pub group: String,
    /// Target label.
    pub label: String,
    /// Tests that ran.
    pub tests_run: i64,
    /// Tests skipped (gap, budget, busy link).
    pub tests_skipped: i64,
    /// Tests that failed.
    pub tests_failed: i64,
    /// Download.
    pub download: Option<Dist>,
    /// Upload.
    pub upload: Option<Dist>,
    /// Contracted bandwidth, bit/s.
    pub contracted_bps: Option<f64>,
    /// Where it comes from: `opd` (collector's OPD registry) or `link`
    /// (`contracted_mbps` of the OPD's link target, reported by the agent).
    pub contracted_source: Option<String>,
    /// Download median / contracted, percent.
    pub download_pct_of_contracted: Option<f64>,
    /// Upload median / contracted, percent.
    pub upload_pct_of_contracted: Option<f64>,
}

/// One direction of a link over the period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DirFigure {
    /// Bits moved / covered seconds.
    pub avg_bps: f64,
    /// 95th percentile of time (see the module text).
    pub p95_bps: f64,
    /// Highest interval rate.
    pub peak_bps: f64,
    /// avg / capacity, percent.
    pub avg_pct: Option<f64>,
    /// p95 / capacity, percent.
    pub p95_pct: Option<f64>,
    /// peak / capacity, percent.
    pub peak_pct: Option<f64>,
}

/// Utilisation of one link over the period.
#[derive(Debug, Clone, Serialize)]
pub struct LinkFigure {
    /// OPD id.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Target label.
    pub label: String,
    /// Interface name.
    pub if_name: String,
    /// Capacity, bit/s: the latest in the period.
    pub capacity_bps: Option<f64>,
    /// Capacity is the contracted bandwidth (else the interface speed).
    pub capacity_contracted: bool,
    /// Polls stored.
    pub polls: i64,
    /// Polls without a rate (first poll, reset, gap, failed): not interpolated.
    pub polls_without_rate: i64,
    /// Seconds covered by rates.
    pub covered_seconds: f64,
    /// Seconds of the period (up to the time of issue).
    pub period_seconds: f64,
    /// covered / period, percent.
    pub coverage_pct: f64,
    /// Inbound.
    pub inbound: Option<DirFigure>,
    /// Outbound.
    pub outbound: Option<DirFigure>,
}

/// Reachability of one interconnection group of one OPD.
#[derive(Debug, Clone, Serialize)]
pub struct ReachFigure {
    /// OPD id.
    pub opd: String,
    /// OPD name.
    pub opd_name: String,
    /// `datacenter` or `jip`.
    pub group: String,
    /// Figures; None when the OPD has no target in that group.
    pub figure: Option<GroupFigure>,
}

/// The capacity and interconnection evidence of a report.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Evidence {
    /// Pusat Data and JIP reachability per OPD.
    pub reachability: Vec<ReachFigure>,
    /// Throughput vs contracted, per OPD and bandwidth target.
    pub bandwidth: Vec<BandwidthFigure>,
    /// Link utilisation per OPD and link.
    pub utilisation: Vec<LinkFigure>,
}

/// Load the evidence of `[from_ms, to_ms)` from day rollups; `opds` are the
/// OPD figures already assembled (for reachability). Figures are computed
/// up to `data_end` (the time of issue when the period is not over). With
/// `business` (whether the hour starting at a UTC ms is a business hour),
/// only business hours count, read from the hour rollups.
pub fn load(
    r: &dyn ReportRead,
    opd: Option<&str>,
    opds: &[OpdFigure],
    (from_ms, to_ms): (i64, i64),
    data_end: i64,
    business: Option<&dyn Fn(i64) -> bool>,
) -> Result<Evidence, StoreError> {
    let all = |_: i64| true;
    let (keep, hourly): (&dyn Fn(i64) -> bool, _) = match business {
        Some(f) => (f, true),
        None => (&all, false),
    };
    let mut ev = Evidence {
        reachability: reachability(opds),
        ..Evidence::default()
    };
    // Merged as they stream by: a province year is 20 000 rows of histograms.
    let mut links: BTreeMap<Key, LinkAcc> = BTreeMap::new();
    r.each_link_row(opd, from_ms, to_ms, hourly, &mut |row| {
        if keep(row.at_ms) {
            merge_link_row(&mut links, row);
        }
    })?;
    let period_seconds = period_seconds(from_ms, to_ms.min(data_end), business);
    let link_contract = link_contracts(&links);
    for (key, a) in &links {
        let label = target_label(r, &key.1, &key.2).1;
        ev.utilisation
            .push(link_figure(key, a, label, period_seconds));
    }
    for (key, a) in merge_bw(&r.bw_rows(opd, from_ms, to_ms, hourly)?, keep) {
        let reg: Option<f64> = r.opd_contract(&key.0).unwrap_or(None);
        let contract = match (reg, link_contract.get(key.0.as_str())) {
            (Some(m), _) if m > 0.0 => Some((m * 1e6, "opd")),
            (_, Some((_, c))) => Some((*c, "link")),
            _ => None,
        };
        let (group, label) = target_label(r, &key.1, &key.2);
        ev.bandwidth
            .push(bandwidth_figure(key, a, (group, label), contract));
    }
    Ok(ev)
}

/// The interconnection groups of every OPD, measured or not.
fn reachability(opds: &[OpdFigure]) -> Vec<ReachFigure> {
    let mut out = Vec::with_capacity(opds.len() * REACH_GROUPS.len());
    for o in opds {
        for g in REACH_GROUPS {
            out.push(ReachFigure {
                opd: o.id.clone(),
                opd_name: o.name.clone(),
                group: g.to_string(),
                figure: o.groups.iter().find(|x| x.group == g).cloned(),
            });
        }
    }
    out
}

/// (group, label) of a target; a target no longer declared has no label:
/// shown without one.
fn target_label(r: &dyn ReportRead, agent: &str, target: &str) -> (String, String) {
    r.target_label(agent, target).unwrap_or_default()
}

/// Seconds of `[from_ms, end)`, or with `business` only its business hours
/// (hours are whole: periods start at local midnight and zones are whole
/// hours).
fn period_seconds(from_ms: i64, end: i64, business: Option<&dyn Fn(i64) -> bool>) -> f64 {
    match business {
        None => ((end - from_ms).max(0)) as f64 / 1000.0,
        Some(f) => {
            let mut secs = 0.0;
            let mut h = from_ms;
            while h < end {
                if f(h) {
                    secs += ((end - h).min(HOUR_MS)) as f64 / 1000.0;
                }
                h += HOUR_MS;
            }
            secs
        }
    }
}

/// Contracted capacity per OPD reported by its links: (when, bit/s) of the
/// latest.
fn link_contracts(links: &BTreeMap<Key, LinkAcc>) -> BTreeMap<&str, (i64, f64)> {
    let mut out: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for ((o, _, _), a) in links {
        if a.contracted && a.cap > 0.0 {
            let e = out.entry(o.as_str()).or_insert((i64::MIN, 0.0));
            if a.cap_at >= e.0 {
                *e = (a.cap_at, a.cap);
            }
        }
    }
    out
}

fn link_figure(
    (o, agent, target): &Key,
    a: &LinkAcc,
    label: String,
    period_seconds: f64,
) -> LinkFigure {
    let secs = a.covered_ms as f64 / 1000.0;
    let cap = (a.cap > 0.0).then_some(a.cap);
    let dir = |bits: f64, peak: f64, h: &RateHist| -> Option<DirFigure> {
        if a.covered_ms <= 0 {
            return None;
        }
        let avg = bits / secs;
        let p95 = h.quantile(0.95).unwrap_or(peak);
        let pct = |v: f64| cap.map(|c| 100.0 * v / c);
        Some(DirFigure {
            avg_bps: avg,
            p95_bps: p95,
            peak_bps: peak,
            avg_pct: pct(avg),
            p95_pct: pct(p95),
            peak_pct: pct(peak),
        })
    };
    LinkFigure {
        opd: o.clone(),
        agent: agent.clone(),
        target: target.clone(),
        label,
        if_name: a.if_name.clone(),
        capacity_bps: cap,
        capacity_contracted: a.contracted,
        polls: a.polls,
        polls_without_rate: a.no_rate,
        covered_seconds: secs,
        period_seconds,
        coverage_pct: if period_seconds > 0.0 {
            (100.0 * secs / period_seconds).min(100.0)
        } else {
            0.0
        },
        inbound: dir(a.in_bits, a.in_peak, &a.in_h),
        outbound: dir(a.out_bits, a.out_peak, &a.out_h),
    }
}

/// Throughput of one bandwidth target; `contract` is (bit/s, source).
fn bandwidth_figure(
    (opd, agent, target): Key,
    mut a: BwAcc,
    (group, label): (String, String),
    contract: Option<(f64, &str)>,
) -> BandwidthFigure {
    let contracted_bps = contract.map(|c| c.0);
    let download = dist(&mut a.dl);
    let upload = dist(&mut a.ul);
    let pct = |d: &Option<Dist>| {
        d.as_ref()
            .zip(contracted_bps)
            .map(|(d, c)| 100.0 * d.median_bps / c)
    };
    BandwidthFigure {
        download_pct_of_contracted: pct(&download),
        upload_pct_of_contracted: pct(&upload),
        opd,
        agent,
        target,
        group,
        label,
        tests_run: a.ok,
        tests_skipped: a.skipped,
        tests_failed: a.fail,
        download,
        upload,
        contracted_bps,
        contracted_source: contract.map(|c| c.1.to_string()),
    }
}

fn mbps(v: f64, l: Lang) -> String {
    num(v / 1e6, 2, l)
}

/// Findings and recommendations from the evidence, appended to the draft review.
pub fn review(ev: &Evidence, lang: Lang, f: &mut Vec<String>, r: &mut Vec<String>) {
    let en = lang == Lang::En;
    let l = lang;
    for k in &ev.utilisation {
        let p = |d: &Option<DirFigure>| d.as_ref().and_then(|d| d.p95_pct);
        let (i, o) = (p(&k.inbound), p(&k.outbound));
        let worst = i.unwrap_or(0.0).max(o.unwrap_or(0.0));
        if worst > SATURATION_P95_PCT {
            let cap = k.capacity_bps.map_or("-".into(), |c| mbps(c, l));
            let show = |v: Option<f64>| v.map_or("-".into(), |v| num(v, 1, l));
            f.push(if en {
                format!(
                    "{}: link {} is saturated: p95 utilisation in {} %, out {} % of {} Mbit/s (threshold {} %; data completeness {} %).",
                    k.opd, k.label, show(i), show(o), cap, num(SATURATION_P95_PCT, 0, l), num(k.coverage_pct, 1, l)
                )
            } else {
                format!(
                    "{}: tautan {} jenuh: pemanfaatan p95 masuk {} %, keluar {} % dari {} Mbit/s (ambang {} %; kelengkapan data {} %).",
                    k.opd, k.label, show(i), show(o), cap, num(SATURATION_P95_PCT, 0, l), num(k.coverage_pct, 1, l)
                )
            });
            r.push(if en {
                format!("{}: increase the capacity of link {} or prioritise traffic (QoS), then compare utilisation in the next period.", k.opd, k.label)
            } else {
                format!("{}: tambah kapasitas tautan {} atau atur prioritas lalu lintas (QoS), lalu bandingkan pemanfaatannya pada periode berikutnya.", k.opd, k.label)
            });
        }
    }
    for b in &ev.bandwidth {
        let (Some(c), src) = (b.contracted_bps, &b.contracted_source) else {
            continue;
        };
        let _ = src;
        for (dir_id, dir_en, d, pct) in [
            (
                "unduh",
                "download",
                &b.download,
                b.download_pct_of_contracted,
            ),
            ("unggah", "upload", &b.upload, b.upload_pct_of_contracted),
        ] {
            let (Some(d), Some(p)) = (d, pct) else {
                continue;
            };
            if p < THROUGHPUT_MIN_PCT {
                f.push(if en {
                    format!(
                        "{}: median {dir_en} throughput ({}) {} Mbit/s is {} % of the contracted {} Mbit/s (below {} %; {} tests).",
                        b.opd, b.label, mbps(d.median_bps, l), num(p, 1, l), mbps(c, l), num(THROUGHPUT_MIN_PCT, 0, l), d.n
                    )
                } else {
                    format!(
                        "{}: kecepatan aktual {dir_id} median ({}) {} Mbit/s = {} % dari bandwidth kontrak {} Mbit/s (di bawah {} %; {} uji).",
                        b.opd, b.label, mbps(d.median_bps, l), num(p, 1, l), mbps(c, l), num(THROUGHPUT_MIN_PCT, 0, l), d.n
                    )
                });
                r.push(if en {
                    format!("{}: ask the provider to restore the contracted bandwidth, with these test results as evidence; check the OPD's local network and busy hours.", b.opd)
                } else {
                    format!("{}: minta penyedia memulihkan bandwidth sesuai kontrak dengan hasil uji ini sebagai bukti; periksa juga jaringan lokal OPD dan jam sibuk.", b.opd)
                });
            }
        }
    }
    for x in ev.reachability.iter().filter(|x| x.group == "jip") {
        let Some(g) = &x.figure else { continue };
        let measured = g.minutes.up + g.minutes.degraded + g.minutes.down;
        if g.minutes.down == 0 || g.sla_met != Some(false) {
            continue;
        }
        let never = g.minutes.up + g.minutes.degraded == 0 && measured > 0;
        f.push(match (en, never) {
            (true, true) => format!(
                "{}: JIP/PDN was unreachable throughout the period ({} minutes measured, all down).",
                x.opd, g.minutes.down
            ),
            (false, true) => format!(
                "{}: JIP/PDN tidak terjangkau sepanjang periode ({} menit terukur, semuanya henti).",
                x.opd, g.minutes.down
            ),
            (true, false) => format!(
                "{}: JIP/PDN unreachable for {} minutes (availability {} %, target {} %).",
                x.opd,
                g.minutes.down,
                num(g.availability_pct.unwrap_or(0.0), 2, l),
                num(g.sla_pct, 1, l)
            ),
            (false, false) => format!(
                "{}: JIP/PDN tidak terjangkau selama {} menit (ketersediaan {} %, target {} %).",
                x.opd,
                g.minutes.down,
                num(g.availability_pct.unwrap_or(0.0), 2, l),
                num(g.sla_pct, 1, l)
            ),
        });
        r.push(if en {
            format!("{}: check the interconnection to JIP/PDN (routing, firewall, the link to the Pusat Data) with the JIP operator and record the follow-up.", x.opd)
        } else {
            format!("{}: periksa interkoneksi ke JIP/PDN (routing, firewall, tautan ke Pusat Data) bersama pengelola JIP dan catat tindak lanjutnya.", x.opd)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_hist_p95_is_time_weighted_and_mergeable() {
        // 95 minutes at 10 Mbit/s, 5 minutes at 19 Mbit/s: p95 is 10.
        let mut a = RateHist::default();
        a.record(10e6, 95 * 60_000);
        let mut b = RateHist::default();
        b.record(19e6, 5 * 60_000);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.quantile(0.95), Some(10e6));
        assert_eq!(m.quantile(1.0), Some(19e6));
        // One more minute at 19: 94 % of the time is at 10 -> p95 is 19.
        m.record(19e6, 60_000);
        assert_eq!(m.quantile(0.95), Some(19e6));
        // Bytes round trip; merging bytes equals merging histograms.
        let mut x = a.clone();
        x.merge_bytes(&b.to_bytes());
        let mut y = a.clone();
        y.merge(&b);
        assert_eq!(x, y);
        assert_eq!(RateHist::default().quantile(0.95), None);
        // Nearby rates share a bucket and the bucket reports its highest rate,
        // never more than one bucket (2^(1/16)) above the exact value.
        let mut c = RateHist::default();
        c.record(10.0e6, 60_000);
        c.record(10.1e6, 60_000);
        let q = c.quantile(0.5).unwrap();
        assert!(
            (10.0e6..=10.0e6 * 2f64.powf(1.0 / 16.0)).contains(&q),
            "{q}"
        );
    }

    #[test]
    fn nearest_rank_distribution() {
        let mut v: Vec<f64> = (1..=20).rev().map(|x| x as f64).collect();
        let d = dist(&mut v).unwrap();
        assert_eq!(
            (d.n, d.median_bps, d.p5_bps, d.min_bps, d.max_bps),
            (20, 10.0, 1.0, 1.0, 20.0)
        );
        assert_eq!(dist(&mut []), None);
    }
}
