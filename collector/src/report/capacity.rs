//! Capacity and interconnection evidence: throughput measured against the
//! contracted bandwidth, link utilisation (pemanfaatan), and reachability of
//! the Pusat Data and JIP/PDN per OPD.
//!
//! Rollups: [`rebuild_hour`] rolls the raw `bandwidth` and `link` results of
//! one OPD hour into `rollup_bw_hour` / `rollup_link_hour`, [`rebuild_day`]
//! merges the hours of a local day; both run from [`super::rollup`] for every
//! dirty hour, so late results correct them like the availability rollups.
//! Reports read day rows only ([`load`]).
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

use rusqlite::{Connection, params};
use serde::Serialize;

use super::rollup::{DAY_MS, HOUR_MS};
use super::text::num;
use super::{GroupFigure, Lang, OpdFigure};
use crate::model::{Outcome, ProbeKind, RowKind};
use crate::store::{self, StoreError};

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

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

/// `pantau-collector opd contract ID --mbps N`: record (or with 0 clear) the
/// contracted bandwidth of an OPD.
pub fn set_contract(conn: &Connection, opd: &str, mbps: f64) -> Result<String, String> {
    if !(mbps.is_finite() && (0.0..=1_000_000.0).contains(&mbps)) {
        return Err(format!(
            "--mbps must be 0 (clear) to 1000000 Mbit/s, not {mbps}"
        ));
    }
    let n = conn
        .execute(
            "UPDATE opd SET contracted_mbps = ?2 WHERE id = ?1",
            params![opd, (mbps > 0.0).then_some(mbps)],
        )
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err(format!(
            "no OPD `{opd}`; list them with `pantau-collector opd list`"
        ));
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

fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn bytes_to_f64s(b: &[u8], out: &mut Vec<f64>) {
    out.extend(
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
    );
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
    fn merge_row(&mut self, r: &rusqlite::Row<'_>) -> rusqlite::Result<()> {
        // Columns: agent, target, if_name, polls, no_rate, covered_ms, in_bits,
        // out_bits, in_peak, out_peak, in_hist, out_hist, capacity, contracted, cap_at.
        let cap_at: i64 = r.get(14)?;
        if cap_at >= self.cap_at || self.if_name.is_empty() {
            let n: String = r.get(2)?;
            if !n.is_empty() {
                self.if_name = n;
            }
        }
        self.polls += r.get::<_, i64>(3)?;
        self.no_rate += r.get::<_, i64>(4)?;
        self.covered_ms += r.get::<_, i64>(5)?;
        self.in_bits += r.get::<_, f64>(6)?;
        self.out_bits += r.get::<_, f64>(7)?;
        self.in_peak = self.in_peak.max(r.get(8)?);
        self.out_peak = self.out_peak.max(r.get(9)?);
        self.in_h.merge_bytes(&r.get::<_, Vec<u8>>(10)?);
        self.out_h.merge_bytes(&r.get::<_, Vec<u8>>(11)?);
        let cap: f64 = r.get(12)?;
        if cap > 0.0 && cap_at >= self.cap_at {
            self.cap = cap;
            self.contracted = r.get::<_, i64>(13)? != 0;
            self.cap_at = cap_at;
        }
        Ok(())
    }
}

const LINK_COLS: &str = "agent_id, target_id, if_name, polls, no_rate, covered_ms, in_bits, out_bits, in_peak, out_peak, in_hist, out_hist, capacity_bps, contracted, capacity_at_ms";

fn insert_link(
    conn: &Connection,
    table: &str,
    time_col: &str,
    opd: &str,
    at: i64,
    key: &(String, String),
    a: &LinkAcc,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (opd_id, {time_col}, {LINK_COLS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            opd,
            at,
            key.0,
            key.1,
            a.if_name,
            a.polls,
            a.no_rate,
            a.covered_ms,
            a.in_bits,
            a.out_bits,
            a.in_peak,
            a.out_peak,
            a.in_h.to_bytes(),
            a.out_h.to_bytes(),
            a.cap,
            a.contracted as i64,
            a.cap_at
        ])
    })
    .map_err(sql("insert link rollup"))?;
    Ok(())
}

fn insert_bw(
    conn: &Connection,
    table: &str,
    time_col: &str,
    opd: &str,
    at: i64,
    key: &(String, String),
    a: &BwAcc,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT INTO {table} (opd_id, {time_col}, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            opd,
            at,
            key.0,
            key.1,
            a.ok,
            a.skipped,
            a.fail,
            f64s_to_bytes(&a.dl),
            f64s_to_bytes(&a.ul)
        ])
    })
    .map_err(sql("insert bandwidth rollup"))?;
    Ok(())
}

/// Rebuild the throughput and utilisation rows of one OPD hour from raw results.
pub fn rebuild_hour(conn: &Connection, opd: &str, hour: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM rollup_bw_hour WHERE opd_id = ?1 AND hour_ms = ?2",
        params![opd, hour],
    )
    .map_err(sql("clear bandwidth hour"))?;
    conn.execute(
        "DELETE FROM rollup_link_hour WHERE opd_id = ?1 AND hour_ms = ?2",
        params![opd, hour],
    )
    .map_err(sql("clear link hour"))?;
    let mut st = conn
        .prepare_cached(
            "SELECT agent_id, target_id, kind, observed_at_ms, outcome, data FROM result
             WHERE opd_id = ?1 AND observed_at_ms >= ?2 AND observed_at_ms < ?3
               AND kind IN ('bandwidth', 'link') AND clock_flag IS NULL
             ORDER BY observed_at_ms",
        )
        .map_err(sql("prepare capacity results"))?;
    let mut rows = st
        .query(params![opd, hour, hour + HOUR_MS])
        .map_err(sql("capacity results"))?;
    let mut bw: BTreeMap<(String, String), BwAcc> = BTreeMap::new();
    let mut link: BTreeMap<(String, String), LinkAcc> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(sql("capacity results"))? {
        let key: (String, String) = (
            r.get(0).map_err(sql("capacity row"))?,
            r.get(1).map_err(sql("capacity row"))?,
        );
        let kind = store::text_enum(r, 2, RowKind::parse).map_err(sql("capacity row"))?;
        let at: i64 = r.get(3).map_err(sql("capacity row"))?;
        let ok =
            store::text_enum(r, 4, Outcome::parse).map_err(sql("capacity row"))? == Outcome::Ok;
        let data: serde_json::Value =
            serde_json::from_str(&r.get::<_, String>(5).map_err(sql("capacity row"))?)
                .unwrap_or_default();
        let f = |k: &str| data[k].as_f64().unwrap_or(0.0);
        if kind == RowKind::Probe(ProbeKind::Bandwidth) {
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
    drop(rows);
    for (k, a) in &bw {
        insert_bw(conn, "rollup_bw_hour", "hour_ms", opd, hour, k, a)?;
    }
    for (k, a) in &link {
        insert_link(conn, "rollup_link_hour", "hour_ms", opd, hour, k, a)?;
    }
    Ok(())
}

fn read_bw(
    conn: &Connection,
    table: &str,
    time_col: &str,
    opd: Option<&str>,
    from: i64,
    to: i64,
    keep: &dyn Fn(i64) -> bool,
) -> Result<BTreeMap<(String, String, String), BwAcc>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT opd_id, agent_id, target_id, n_ok, n_skipped, n_fail, dl, ul, {time_col} FROM {table}
             WHERE {time_col} >= ?1 AND {time_col} < ?2 AND (?3 IS NULL OR opd_id = ?3)"
        ))
        .map_err(sql("prepare bandwidth rollup"))?;
    let mut rows = st
        .query(params![from, to, opd])
        .map_err(sql("bandwidth rollup"))?;
    let mut out: BTreeMap<(String, String, String), BwAcc> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(sql("bandwidth rollup"))? {
        if !keep(r.get(8).map_err(sql("bandwidth rollup row"))?) {
            continue;
        }
        let e = sql("bandwidth rollup row");
        let key = (
            r.get(0).map_err(sql("bandwidth rollup row"))?,
            r.get(1).map_err(sql("bandwidth rollup row"))?,
            r.get(2).map_err(sql("bandwidth rollup row"))?,
        );
        let a = out.entry(key).or_default();
        a.ok += r.get::<_, i64>(3).map_err(sql("bandwidth rollup row"))?;
        a.skipped += r.get::<_, i64>(4).map_err(sql("bandwidth rollup row"))?;
        a.fail += r.get::<_, i64>(5).map_err(sql("bandwidth rollup row"))?;
        let dl: Vec<u8> = r.get(6).map_err(sql("bandwidth rollup row"))?;
        let ul: Vec<u8> = r.get(7).map_err(e)?;
        bytes_to_f64s(&dl, &mut a.dl);
        bytes_to_f64s(&ul, &mut a.ul);
    }
    Ok(out)
}

fn read_link(
    conn: &Connection,
    table: &str,
    time_col: &str,
    opd: Option<&str>,
    from: i64,
    to: i64,
    keep: &dyn Fn(i64) -> bool,
) -> Result<BTreeMap<(String, String, String), LinkAcc>, StoreError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT {LINK_COLS}, opd_id, {time_col} FROM {table}
             WHERE {time_col} >= ?1 AND {time_col} < ?2 AND (?3 IS NULL OR opd_id = ?3)
             ORDER BY {time_col}"
        ))
        .map_err(sql("prepare link rollup"))?;
    let mut rows = st
        .query(params![from, to, opd])
        .map_err(sql("link rollup"))?;
    let mut out: BTreeMap<(String, String, String), LinkAcc> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(sql("link rollup"))? {
        if !keep(r.get(16).map_err(sql("link rollup row"))?) {
            continue;
        }
        let key = (
            r.get(15).map_err(sql("link rollup row"))?,
            r.get(0).map_err(sql("link rollup row"))?,
            r.get(1).map_err(sql("link rollup row"))?,
        );
        out.entry(key)
            .or_default()
            .merge_row(r)
            .map_err(sql("link rollup row"))?;
    }
    Ok(out)
}

/// Rebuild one OPD's local day of throughput and utilisation from its hours.
pub fn rebuild_day(conn: &Connection, opd: &str, day: i64) -> Result<(), StoreError> {
    conn.execute(
        "DELETE FROM rollup_bw_day WHERE opd_id = ?1 AND day_ms = ?2",
        params![opd, day],
    )
    .map_err(sql("clear bandwidth day"))?;
    conn.execute(
        "DELETE FROM rollup_link_day WHERE opd_id = ?1 AND day_ms = ?2",
        params![opd, day],
    )
    .map_err(sql("clear link day"))?;
    for ((_, agent, target), mut a) in read_bw(
        conn,
        "rollup_bw_hour",
        "hour_ms",
        Some(opd),
        day,
        day + DAY_MS,
        &|_| true,
    )? {
        a.dl.sort_by(f64::total_cmp);
        a.ul.sort_by(f64::total_cmp);
        insert_bw(
            conn,
            "rollup_bw_day",
            "day_ms",
            opd,
            day,
            &(agent, target),
            &a,
        )?;
    }
    for ((_, agent, target), a) in read_link(
        conn,
        "rollup_link_hour",
        "hour_ms",
        Some(opd),
        day,
        day + DAY_MS,
        &|_| true,
    )? {
        insert_link(
            conn,
            "rollup_link_day",
            "day_ms",
            opd,
            day,
            &(agent, target),
            &a,
        )?;
    }
    Ok(())
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
    conn: &Connection,
    opd: Option<&str>,
    opds: &[OpdFigure],
    (from_ms, to_ms): (i64, i64),
    data_end: i64,
    business: Option<&dyn Fn(i64) -> bool>,
) -> Result<Evidence, StoreError> {
    let all = |_: i64| true;
    let (keep, bw_table, link_table, time_col): (&dyn Fn(i64) -> bool, _, _, _) = match business {
        Some(f) => (f, "rollup_bw_hour", "rollup_link_hour", "hour_ms"),
        None => (&all, "rollup_bw_day", "rollup_link_day", "day_ms"),
    };
    let mut ev = Evidence::default();
    for o in opds {
        for g in REACH_GROUPS {
            ev.reachability.push(ReachFigure {
                opd: o.id.clone(),
                opd_name: o.name.clone(),
                group: g.to_string(),
                figure: o.groups.iter().find(|x| x.group == g).cloned(),
            });
        }
    }
    let mut labels = conn
        .prepare_cached("SELECT grp, label FROM target WHERE agent_id = ?1 AND id = ?2")
        .map_err(sql("prepare target label"))?;
    let mut label = |agent: &str, target: &str| -> (String, String) {
        labels
            .query_row(params![agent, target], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap_or_default()
    };
    let links = read_link(conn, link_table, time_col, opd, from_ms, to_ms, keep)?;
    let period_seconds = match business {
        None => ((to_ms.min(data_end) - from_ms).max(0)) as f64 / 1000.0,
        // Business hours of the period so far (hours are whole: periods
        // start at local midnight and zones are whole hours).
        Some(f) => {
            let end = to_ms.min(data_end);
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
    };
    // Contracted capacity per OPD reported by its links (latest).
    let mut link_contract: BTreeMap<&str, (i64, f64)> = BTreeMap::new();
    for ((o, agent, target), a) in &links {
        if a.contracted && a.cap > 0.0 {
            let e = link_contract.entry(o.as_str()).or_insert((i64::MIN, 0.0));
            if a.cap_at >= e.0 {
                *e = (a.cap_at, a.cap);
            }
        }
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
        ev.utilisation.push(LinkFigure {
            opd: o.clone(),
            agent: agent.clone(),
            target: target.clone(),
            label: label(agent, target).1,
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
        });
    }
    let mut registry = conn
        .prepare_cached("SELECT contracted_mbps FROM opd WHERE id = ?1")
        .map_err(sql("prepare opd contract"))?;
    for ((o, agent, target), mut a) in read_bw(conn, bw_table, time_col, opd, from_ms, to_ms, keep)?
    {
        let reg: Option<f64> = registry
            .query_row([o.as_str()], |r| r.get(0))
            .unwrap_or(None);
        let (contracted_bps, source) = match (reg, link_contract.get(o.as_str())) {
            (Some(m), _) if m > 0.0 => (Some(m * 1e6), Some("opd".to_string())),
            (_, Some((_, c))) => (Some(*c), Some("link".to_string())),
            _ => (None, None),
        };
        let download = dist(&mut a.dl);
        let upload = dist(&mut a.ul);
        let pct = |d: &Option<Dist>| {
            d.as_ref()
                .zip(contracted_bps)
                .map(|(d, c)| 100.0 * d.median_bps / c)
        };
        let (group, lbl) = label(&agent, &target);
        ev.bandwidth.push(BandwidthFigure {
            download_pct_of_contracted: pct(&download),
            upload_pct_of_contracted: pct(&upload),
            opd: o,
            agent,
            target,
            group,
            label: lbl,
            tests_run: a.ok,
            tests_skipped: a.skipped,
            tests_failed: a.fail,
            download,
            upload,
            contracted_bps,
            contracted_source: source,
        });
    }
    Ok(ev)
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
