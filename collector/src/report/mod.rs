//! SPBE evidence: availability rules, rollups, incidents, report assembly,
//! rendering and signing.
//!
//! - [`rules`]: pure per-minute and composite rules, availability.
//! - [`histogram`]: mergeable latency distribution.
//! - [`rollup`]: minute -> hour -> day rollups, corrected on late data.
//! - [`incident`]: gangguan detection with a probable-cause hint.
//! - [`sections`]: each report section as the neutral [`model`], in the
//!   report's language ([`text`]: numbers, dates, labels).
//! - [`render`]: HTML, PDF, XLSX and CSV of the model; JSON of the data.
//! - [`bundle`]: the signed evidence bundle; [`sign`]: Ed25519 key, signed
//!   manifest, `verify`.
//! - [`recompute`]: the bundle's data for an independent recomputation, and the script.
//! - [`time`]: hour and day arithmetic shared by the sections.
//!
//! Reads and writes go through the store traits of [`crate::store::report`];
//! the report pages live in [`crate::web::report`], the commands in
//! [`crate::cli::report`].

pub mod bundle;
pub mod capacity;
pub mod clock;
pub mod histogram;
pub mod history;
pub mod incident;
pub mod maintenance;
pub mod model;
pub mod progress;
pub mod recompute;
pub mod render;
pub mod rollup;
pub mod rules;
pub mod sections;
pub mod sign;
pub mod text;
pub mod time;
pub mod topology;

pub use bundle::{bundle_files, produce_bundle};

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use self::histogram::Histogram;
use self::incident::{Incident, Timelines};
use self::rules::{GROUPS, MinuteState, RuleSet, StateMinutes};
use self::time::DAY_MS;
use crate::store::StoreError;
use crate::store::report::{ReportBackend, ReportRead};

/// Report language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Bahasa Indonesia (default).
    Id,
    /// English.
    En,
}

/// Settings that shape every report: rules, targets, labels.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Rule set.
    pub rules: RuleSet,
    /// SLA availability target per group (percent), in [`GROUPS`] order.
    pub sla_pct: [f64; 5],
    /// Coverage target: OPD connected / total OPD (percent).
    pub coverage_target_pct: f64,
    /// Agency name.
    pub agency: String,
    /// Zone name (WITA).
    pub zone_name: String,
    /// Offset from UTC, minutes.
    pub utc_offset_minutes: i64,
    /// Where the official public key is published (printed in the validity box).
    pub public_key_url: String,
    /// Who signs the document off (printed in the validity box).
    pub signoff: Option<crate::config::Signoff>,
    /// The PDF letterhead's unit line and logo (`[report] unit`,
    /// `letterhead_logo`).
    #[serde(skip)]
    pub letterhead: model::Letterhead,
}

impl Settings {
    /// Settings from the collector configuration.
    pub fn from_config(cfg: &crate::config::CollectorConfig) -> Self {
        let mut s = Settings::new(&cfg.display);
        s.rules = cfg.report.rules.clone();
        s.sla_pct = cfg.report.sla_pct;
        s.coverage_target_pct = cfg.report.coverage_target_pct;
        s.public_key_url.clone_from(&cfg.report.public_key_url);
        s.signoff.clone_from(&cfg.report.signoff);
        s.letterhead.unit.clone_from(&cfg.report.unit);
        s.letterhead.logo.clone_from(&cfg.report.letterhead_logo);
        s
    }

    /// Defaults with the display settings of the collector.
    pub fn new(d: &crate::config::Display) -> Self {
        Settings {
            rules: RuleSet::default(),
            sla_pct: rules::DEFAULT_SLA_PCT,
            coverage_target_pct: 100.0,
            agency: d.agency.clone(),
            zone_name: d.zone_name.clone(),
            utc_offset_minutes: d.utc_offset_minutes,
            public_key_url: crate::config::DEFAULT_PUBLIC_KEY_URL.into(),
            signoff: None,
            letterhead: model::Letterhead::default(),
        }
    }

    /// Everything that shaped the figures, as printed in reports: the rule
    /// parameters, SLA and coverage targets, and any earlier rule set that
    /// still shapes rollups of the period (`older`: version, until UTC ms).
    pub fn parameters(&self, older: Vec<(String, i64)>) -> Vec<(String, String)> {
        let mut v = self.rules.parameters();
        for (g, t) in GROUPS.iter().zip(self.sla_pct) {
            v.push((format!("sla.{g}"), format!("{t}")));
        }
        v.push((
            "coverage_target".into(),
            format!("{}", self.coverage_target_pct),
        ));
        for (version, until) in older {
            let local =
                chrono::DateTime::from_timestamp_millis(until + self.utc_offset_minutes * 60_000)
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
            v.push((format!("rules_before {local} {}", self.zone_name), version));
        }
        v
    }

    /// SLA target of a group, percent.
    pub fn sla_of(&self, grp: &str) -> f64 {
        GROUPS
            .iter()
            .position(|g| *g == grp)
            .map_or(99.0, |i| self.sla_pct[i])
    }

    /// UTC ms of local midnight starting `d`.
    pub fn day_start(&self, d: NaiveDate) -> i64 {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0)
            - self.utc_offset_minutes * 60_000
    }
}

/// What to report on.
#[derive(Debug, Clone)]
pub struct Request {
    /// One OPD, or every OPD.
    pub opd: Option<String>,
    /// First local day.
    pub from: NaiveDate,
    /// Last local day (inclusive).
    pub to: NaiveDate,
    /// Report number printed in the header.
    pub number: String,
    /// Date of issue, UTC ms.
    pub issued_ms: i64,
    /// Language.
    pub lang: Lang,
    /// Business hours only.
    pub business_hours: bool,
    /// An earlier period to compare against (before/after).
    pub compare: Option<(NaiveDate, NaiveDate)>,
}

/// Figures of one group over the period.
#[derive(Debug, Clone, Serialize)]
pub struct GroupFigure {
    /// Group.
    pub group: String,
    /// Minutes per state.
    pub minutes: StateMinutes,
    /// Availability, percent.
    pub availability_pct: Option<f64>,
    /// Data completeness, percent: measured minutes / minutes outside
    /// maintenance ("kelengkapan data"; not OPD coverage).
    pub completeness_pct: Option<f64>,
    /// SLA target, percent.
    pub sla_pct: f64,
    /// SLA met (None without measured minutes).
    pub sla_met: Option<bool>,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency, ms.
    pub p95_ms: Option<f64>,
    /// Mean jitter, ms.
    pub jitter_ms: Option<f64>,
    /// Packet loss, percent (ICMP).
    pub loss_pct: Option<f64>,
    /// Probe results counted.
    pub results: i64,
}

/// One OPD's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OpdFigure {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Data completeness, percent (best group).
    pub completeness_pct: Option<f64>,
    /// Connected: any measured minute in the period.
    pub connected: bool,
    /// Per group.
    pub groups: Vec<GroupFigure>,
}

/// OPD coverage.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// OPDs in scope.
    pub total: usize,
    /// OPDs with data in the period.
    pub connected: usize,
    /// Percent.
    pub connected_pct: f64,
    /// Target percent.
    pub target_pct: f64,
    /// Target met.
    pub met: bool,
    /// OPDs without data.
    pub not_connected: Vec<String>,
}

/// Before/after per group.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Earlier period, local dates.
    pub before_from: String,
    /// Earlier period end.
    pub before_to: String,
    /// (group, availability before, availability now), percent.
    pub groups: Vec<(String, Option<f64>, Option<f64>)>,
    /// Incidents before and now.
    pub incidents: (usize, usize),
}

/// Header data.
#[derive(Debug, Clone, Serialize)]
pub struct Meta {
    /// Agency.
    pub agency: String,
    /// Report number.
    pub number: String,
    /// Scope: OPD id or `all`.
    pub scope: String,
    /// Language.
    pub lang: Lang,
    /// Period start (ISO date).
    pub from: String,
    /// Period end (ISO date, inclusive).
    pub to: String,
    /// Period start, UTC ms.
    pub from_ms: i64,
    /// Period end (exclusive), UTC ms.
    pub to_ms: i64,
    /// Issued, UTC ms.
    pub issued_ms: i64,
    /// Data cut-off, UTC ms (a minute start): minutes at or after it have not
    /// happened yet when the report was made and are not part of any figure.
    /// `min(to_ms, time of generation)`, floored to the minute.
    pub data_until_ms: i64,
    /// Zone name.
    pub zone: String,
    /// Offset minutes.
    pub utc_offset_minutes: i64,
    /// Business hours only.
    pub business_hours: bool,
    /// Rule version.
    pub rule_version: String,
    /// Rule parameters.
    pub parameters: Vec<(String, String)>,
    /// Collector public key (hex), set when signed.
    pub public_key: Option<String>,
    /// Where the official public key is published.
    pub public_key_url: String,
    /// The raw export in the same signed bundle (set for bundles).
    pub raw_export: Option<RawExport>,
    /// Sign-off block (nama, NIP, jabatan, tempat), from the configuration.
    pub signoff: Option<crate::config::Signoff>,
    /// The PDF letterhead's unit line and logo; the agency is [`Meta::agency`].
    #[serde(skip)]
    pub letterhead: model::Letterhead,
}

/// The raw-results file of a signed bundle, named in the report itself.
#[derive(Debug, Clone, Serialize)]
pub struct RawExport {
    /// File name inside the bundle.
    pub file: String,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// A whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Header.
    pub meta: Meta,
    /// OPD coverage.
    pub coverage: Coverage,
    /// Province (or OPD) totals per group.
    pub groups: Vec<GroupFigure>,
    /// Per OPD.
    pub opds: Vec<OpdFigure>,
    /// Gangguan.
    pub incidents: Vec<Incident>,
    /// Maintenance windows overlapping the period, see [`maintenance`].
    pub maintenance: Vec<maintenance::MaintenanceWindow>,
    /// Before/after.
    pub comparison: Option<Comparison>,
    /// Pusat Data/JIP reachability, throughput vs contract, link utilisation.
    pub capacity: capacity::Evidence,
    /// Draft findings (permasalahan).
    pub findings: Vec<String>,
    /// Draft recommendations (rekomendasi).
    pub recommendations: Vec<String>,
    /// Intranet topology and path changes (traceroute), see [`topology`].
    pub topology: topology::Topology,
    /// Agents whose clock was corrected or whose results were left out for
    /// an impossible time, see [`clock`].
    pub clock: Vec<clock::ClockNote>,
}

#[derive(Default, Clone)]
struct Agg {
    m: StateMinutes,
    n_ok: i64,
    n_fail: i64,
    sent: i64,
    received: i64,
    jit_sum: f64,
    jit_n: i64,
    hist: Histogram,
}

impl Agg {
    fn merge(&mut self, o: &Agg) {
        self.m.merge(&o.m);
        self.n_ok += o.n_ok;
        self.n_fail += o.n_fail;
        self.sent += o.sent;
        self.received += o.received;
        self.jit_sum += o.jit_sum;
        self.jit_n += o.jit_n;
        self.hist.merge(&o.hist);
    }

    fn figure(&self, grp: &str, s: &Settings) -> GroupFigure {
        let a = self.m.availability().map(|x| x * 100.0);
        let sla = s.sla_of(grp);
        GroupFigure {
            group: grp.to_string(),
            minutes: self.m,
            availability_pct: a,
            completeness_pct: self.m.coverage().map(|x| x * 100.0),
            sla_pct: sla,
            sla_met: a.map(|a| a >= sla),
            p50_ms: self.hist.quantile(0.5),
            p95_ms: self.hist.quantile(0.95),
            jitter_ms: (self.jit_n > 0).then(|| self.jit_sum / self.jit_n as f64),
            loss_pct: (self.sent > 0)
                .then(|| 100.0 * (1.0 - self.received as f64 / self.sent as f64)),
            results: self.n_ok + self.n_fail,
        }
    }
}

type DayAggs = BTreeMap<(String, String), Agg>;

fn load_days(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
    business: bool,
) -> Result<(DayAggs, BTreeSet<(String, i64)>), StoreError> {
    let mut out: DayAggs = BTreeMap::new();
    let mut down_days = BTreeSet::new();
    r.each_group_day(opd, from_ms, to_ms, business, &mut |row| {
        let a = out.entry((row.opd.clone(), row.grp.clone())).or_default();
        let [up, deg, down, unk, mt] = row.counts;
        a.m.up += up as u64;
        a.m.degraded += deg as u64;
        a.m.down += down as u64;
        a.m.unknown += unk as u64;
        a.m.maintenance += mt as u64;
        // Days with down minutes, or with minutes without data (an agent
        // offline, possibly for whole days), are examined for incidents.
        if down > 0 || unk > 0 {
            down_days.insert((row.opd.clone(), row.day_ms));
        }
        let t = &row.tally;
        a.n_ok += t.n_ok;
        a.n_fail += t.n_fail;
        a.sent += t.sent;
        a.received += t.received;
        a.jit_sum += t.jit_sum;
        a.jit_n += t.jit_n;
        a.hist.merge_bytes(&t.hist);
    })?;
    Ok((out, down_days))
}

fn load_incidents(
    r: &dyn ReportRead,
    s: &Settings,
    down_days: &BTreeSet<(String, i64)>,
    data_until: i64,
) -> Result<Vec<Incident>, StoreError> {
    let mut per_opd: BTreeMap<String, Timelines> = BTreeMap::new();
    for (opd, day) in down_days {
        let tl = per_opd.entry(opd.clone()).or_default();
        let rows: Vec<(String, i64, String)> = r
            .group_minutes(opd, *day, day + DAY_MS)?
            .into_iter()
            .map(|m| (m.key, m.hour_ms, m.minutes))
            .collect();
        // Only hours with a down minute in some group matter: a run lives in
        // them, and the cause compares groups during the same minutes.
        let mut down_hours: BTreeSet<i64> = rows
            .iter()
            .filter(|r| r.2.contains('D'))
            .map(|r| r.1)
            .collect();
        // ... and hours where, at some minute, every group had no data.
        let mut unknown_at: BTreeMap<i64, [bool; 60]> = BTreeMap::new();
        for (_, h, m) in &rows {
            let e = unknown_at.entry(*h).or_insert([true; 60]);
            for (i, c) in m.chars().take(60).enumerate() {
                e[i] &= c == '-';
            }
        }
        down_hours.extend(
            unknown_at
                .into_iter()
                .filter(|(_, u)| u.iter().any(|x| *x))
                .map(|(h, _)| h),
        );
        for (g, h, m) in rows {
            if !down_hours.contains(&h) {
                continue;
            }
            let t = tl.entry(g).or_default();
            for (i, c) in m.chars().enumerate() {
                let at = h + i as i64 * 60_000;
                // Minutes that had not happened when the rollup or the report
                // was made are no part of any run.
                if c == MinuteState::NotYet.code() || at >= data_until {
                    break;
                }
                t.insert(at, MinuteState::from_code(c));
            }
        }
    }
    let mut out = Vec::new();
    for (opd, tl) in per_opd {
        out.extend(incident::detect(
            &opd,
            &tl,
            s.rules.incident_minutes,
            data_until,
        ));
    }
    // Affected targets and admin notes.
    for inc in &mut out {
        let rows = r.down_target_minutes(
            &inc.opd,
            &inc.group,
            time::hour_of(inc.start_ms),
            inc.end_ms,
        )?;
        let mut set = BTreeSet::new();
        for row in rows {
            let (t, h, m) = (row.key, row.hour_ms, row.minutes);
            let hit = m.chars().enumerate().any(|(i, c)| {
                let at = h + i as i64 * 60_000;
                c == 'D' && at >= inc.start_ms && at < inc.end_ms
            });
            if hit {
                set.insert(t);
            }
        }
        inc.affected = set.into_iter().collect();
        // A note that cannot be read is left out, as before notes existed.
        if let Ok(Some((n, t))) = r.incident_note(&inc.opd, &inc.group, inc.start_ms) {
            inc.note = Some(n);
            inc.ticket = (!t.is_empty()).then_some(t);
        }
    }
    Ok(out)
}

fn group_order(g: &str) -> usize {
    GROUPS.iter().position(|x| *x == g).unwrap_or(GROUPS.len())
}

/// Assemble a report from the rollups of one snapshot (see
/// [`rollup::consistent`]).
pub fn assemble(conn: &dyn ReportRead, s: &Settings, req: &Request) -> Result<Report, StoreError> {
    // Sections load in the order they appear in the report.
    let from_ms = s.day_start(req.from);
    let to_ms = s.day_start(req.to) + DAY_MS;
    let opds: Vec<(String, String)> = conn
        .opds(req.opd.as_deref())?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect();
    let (aggs, down_days) =
        load_days(conn, req.opd.as_deref(), from_ms, to_ms, req.business_hours)?;
    let (figures, province) = opd_figures(&opds, &aggs, s);
    let mut groups: Vec<GroupFigure> = province.iter().map(|(g, a)| a.figure(g, s)).collect();
    groups.sort_by_key(|g| group_order(&g.group));
    let coverage = coverage_of(&figures, s.coverage_target_pct);
    let data_until = to_ms.min(rollup::cut_off(conn, req.opd.as_deref())?);
    let incidents = load_incidents(conn, s, &down_days, data_until)?;
    let comparison = match req.compare {
        Some(before) => Some(compare(
            conn,
            s,
            req,
            before,
            &province,
            data_until,
            incidents.len(),
        )?),
        None => None,
    };
    let (mut findings, mut recommendations) = review(&figures, &coverage, &incidents, req.lang);
    let business = |h: i64| rules::business_hour_at(&s.rules, h, s.utc_offset_minutes);
    let capacity = capacity::load(
        conn,
        req.opd.as_deref(),
        &figures,
        (from_ms, to_ms),
        crate::store::now_ms(),
        req.business_hours
            .then_some(&business as &dyn Fn(i64) -> bool),
    )?;
    capacity::review(&capacity, req.lang, &mut findings, &mut recommendations);
    if findings.is_empty() {
        findings.push(no_problems(req.lang));
    }
    let mut report = Report {
        meta: meta(conn, s, req, (from_ms, to_ms), data_until)?,
        coverage,
        groups,
        opds: figures,
        incidents,
        maintenance: maintenance::load(conn, req.opd.as_deref(), from_ms, to_ms)?,
        comparison,
        capacity,
        findings,
        recommendations,
        topology: topology::for_report(conn, req.opd.as_deref(), from_ms, to_ms)?,
        clock: clock::notes(conn, req.opd.as_deref(), from_ms, data_until)?,
    };
    report.meta.parameters.extend(capacity::parameters());
    Ok(report)
}

/// Per-OPD figures, and the same aggregates merged per group over the
/// whole province.
fn opd_figures(
    opds: &[(String, String)],
    aggs: &DayAggs,
    s: &Settings,
) -> (Vec<OpdFigure>, BTreeMap<String, Agg>) {
    let mut province: BTreeMap<String, Agg> = BTreeMap::new();
    let mut figures = Vec::with_capacity(opds.len());
    for (i, (id, name)) in opds.iter().enumerate() {
        progress::opd(i + 1, opds.len(), id);
        let mut groups: Vec<GroupFigure> = aggs
            .range((id.clone(), String::new())..)
            .take_while(|((o, _), _)| o == id)
            .map(|((_, g), a)| {
                province.entry(g.clone()).or_default().merge(a);
                a.figure(g, s)
            })
            .collect();
        groups.sort_by_key(|g| group_order(&g.group));
        let completeness = groups
            .iter()
            .filter_map(|g| g.completeness_pct)
            .fold(None, |m: Option<f64>, c| Some(m.map_or(c, |m| m.max(c))));
        let connected = groups
            .iter()
            .any(|g| g.minutes.up + g.minutes.degraded + g.minutes.down > 0);
        figures.push(OpdFigure {
            id: id.clone(),
            name: name.clone(),
            completeness_pct: completeness,
            connected,
            groups,
        });
    }
    (figures, province)
}

fn coverage_of(figures: &[OpdFigure], target_pct: f64) -> Coverage {
    let connected = figures.iter().filter(|o| o.connected).count();
    let total = figures.len();
    let connected_pct = if total == 0 {
        0.0
    } else {
        100.0 * connected as f64 / total as f64
    };
    Coverage {
        total,
        connected,
        connected_pct,
        target_pct,
        met: connected_pct >= target_pct,
        not_connected: figures
            .iter()
            .filter(|o| !o.connected)
            .map(|o| o.id.clone())
            .collect(),
    }
}

/// Before/after comparison against the earlier period `(bf, bt)`; the
/// earlier period's data is cut off at the same point as the current one.
fn compare(
    conn: &dyn ReportRead,
    s: &Settings,
    req: &Request,
    (bf, bt): (NaiveDate, NaiveDate),
    province: &BTreeMap<String, Agg>,
    data_until: i64,
    incidents_now: usize,
) -> Result<Comparison, StoreError> {
    let b_from = s.day_start(bf);
    let b_to = s.day_start(bt) + DAY_MS;
    let (b, b_down) = load_days(conn, req.opd.as_deref(), b_from, b_to, req.business_hours)?;
    let mut before: BTreeMap<String, Agg> = BTreeMap::new();
    for ((_, g), a) in &b {
        before.entry(g.clone()).or_default().merge(a);
    }
    let b_inc = load_incidents(conn, s, &b_down, b_to.min(data_until))?;
    let pct = |m: &BTreeMap<String, Agg>, g: &str| {
        m.get(g).and_then(|a| a.m.availability()).map(|x| x * 100.0)
    };
    let mut gs: Vec<(String, Option<f64>, Option<f64>)> = GROUPS
        .iter()
        .filter(|g| before.contains_key(**g) || province.contains_key(**g))
        .map(|g| (g.to_string(), pct(&before, g), pct(province, g)))
        .collect();
    gs.sort_by_key(|g| group_order(&g.0));
    Ok(Comparison {
        before_from: bf.to_string(),
        before_to: bt.to_string(),
        groups: gs,
        incidents: (b_inc.len(), incidents_now),
    })
}

fn no_problems(lang: Lang) -> String {
    if lang == Lang::En {
        "No problems found in the period.".to_string()
    } else {
        "Tidak ditemukan permasalahan dalam periode ini.".to_string()
    }
}

fn meta(
    conn: &dyn ReportRead,
    s: &Settings,
    req: &Request,
    (from_ms, to_ms): (i64, i64),
    data_until: i64,
) -> Result<Meta, StoreError> {
    Ok(Meta {
        agency: s.agency.clone(),
        number: req.number.clone(),
        scope: req.opd.clone().unwrap_or_else(|| "all".into()),
        lang: req.lang,
        from: req.from.to_string(),
        to: req.to.to_string(),
        from_ms,
        to_ms,
        issued_ms: req.issued_ms,
        data_until_ms: data_until,
        zone: s.zone_name.clone(),
        utc_offset_minutes: s.utc_offset_minutes,
        business_hours: req.business_hours,
        rule_version: s.rules.version.clone(),
        parameters: s.parameters(history::older_in(conn, from_ms, to_ms)?),
        public_key: None,
        public_key_url: s.public_key_url.clone(),
        raw_export: None,
        signoff: s.signoff.clone(),
        letterhead: s.letterhead.clone(),
    })
}

/// Draft "Laporan Reviu dan Evaluasi": findings and recommendations for a
/// human to edit.
fn review(
    opds: &[OpdFigure],
    cov: &Coverage,
    incidents: &[Incident],
    lang: Lang,
) -> (Vec<String>, Vec<String>) {
    let en = lang == Lang::En;
    let mut f = Vec::new();
    let mut r = Vec::new();
    if !cov.met {
        f.push(if en {
            format!(
                "Coverage {} of {} OPD ({}%) is below the target of {}%; not connected: {}.",
                cov.connected,
                cov.total,
                render::num(cov.connected_pct, 1, lang),
                render::num(cov.target_pct, 1, lang),
                cov.not_connected.join(", ")
            )
        } else {
            format!(
                "Cakupan {} dari {} OPD ({} %) di bawah target {} %; belum terhubung: {}.",
                cov.connected,
                cov.total,
                render::num(cov.connected_pct, 1, lang),
                render::num(cov.target_pct, 1, lang),
                cov.not_connected.join(", ")
            )
        });
        r.push(if en {
            "Install and enrol an agent at every OPD not yet connected.".to_string()
        } else {
            "Pasang dan daftarkan agen di setiap OPD yang belum terhubung.".to_string()
        });
    }
    for o in opds {
        for g in &o.groups {
            if g.sla_met == Some(false) {
                let a = render::num(g.availability_pct.unwrap_or(0.0), 2, lang);
                let t = render::num(g.sla_pct, 1, lang);
                let name = render::group_label(&g.group, lang);
                f.push(if en {
                    format!(
                        "{}: {name} availability {a}% is under the SLA target {t}%.",
                        o.id
                    )
                } else {
                    format!(
                        "{}: ketersediaan {name} {a} % di bawah target SLA {t} %.",
                        o.id
                    )
                });
            }
        }
    }
    let mut recurring: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for i in incidents {
        *recurring.entry((&i.opd, &i.group)).or_default() += 1;
    }
    for ((o, g), n) in recurring.into_iter().filter(|(_, n)| *n >= 3) {
        let g = render::group_label(g, lang);
        f.push(if en {
            format!("{o}: {n} recurring {g} incidents in the period.")
        } else {
            format!("{o}: {n} gangguan {g} berulang dalam periode ini.")
        });
        r.push(if en {
            format!(
                "{o}: review the {g} link and its provider; record the follow-up (tindak lanjut)."
            )
        } else {
            format!("{o}: tinjau tautan {g} dan penyedianya; catat tindak lanjutnya.")
        });
    }
    if f.iter().any(|x| x.contains("SLA")) {
        r.push(if en {
            "For OPD under the SLA target, check the link capacity and redundancy, and compare with the next period.".to_string()
        } else {
            "Untuk OPD di bawah target SLA, periksa kapasitas dan redundansi tautan, lalu bandingkan dengan periode berikutnya.".to_string()
        });
    }
    (f, r)
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A4 PDF.
    Pdf,
    /// CSV.
    Csv,
    /// Printable HTML.
    Html,
    /// JSON.
    Json,
    /// XLSX spreadsheet.
    Xlsx,
}

/// A report format name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}`; use pdf, xlsx, csv, html or json")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        match s {
            "pdf" => Ok(Format::Pdf),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "xlsx" => Ok(Format::Xlsx),
            other => Err(UnknownFormat(other.to_string())),
        }
    }
}

impl Format {
    /// File extension.
    pub fn ext(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Csv => "csv",
            Format::Html => "html",
            Format::Json => "json",
            Format::Xlsx => "xlsx",
        }
    }

    /// MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// Render a report in a format: JSON serialises the data, the others
/// render the sections' model.
pub fn render_as(r: &Report, f: Format) -> Vec<u8> {
    if f == Format::Json {
        return render::json::json(r);
    }
    let d = sections::document(r);
    match f {
        Format::Pdf => render::pdf::pdf(&d),
        Format::Csv => render::csv::csv(&d),
        Format::Html => render::html::html(&d),
        Format::Xlsx => render::xlsx::xlsx(&d),
        Format::Json => unreachable!("handled above"),
    }
}

/// Text that is not an evaluation period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a period: use YYYY (year), YYYY-S1/S2 (semester), YYYY-Q1..Q4 (quarter) or YYYY-MM (month)"
)]
pub struct PeriodError(pub String);

/// The days of an evaluation period written as `2026` (year), `2026-S1` /
/// `2026-S2` (semester), `2026-Q1`..`2026-Q4` (quarter) or `2026-11` (month):
/// first and last local day, inclusive.
pub fn parse_period(s: &str) -> Result<(NaiveDate, NaiveDate), PeriodError> {
    let bad = || PeriodError(s.to_string());
    let (year, rest) = match s.split_once('-') {
        Some((y, r)) => (y, Some(r)),
        None => (s, None),
    };
    let year: i32 = year
        .parse()
        .ok()
        .filter(|y| (2000..=2999).contains(y))
        .ok_or_else(bad)?;
    let (first_month, months) = match rest.map(|r| r.to_ascii_uppercase()) {
        None => (1, 12),
        Some(r) if r.starts_with('S') => match &r[1..] {
            "1" => (1, 6),
            "2" => (7, 6),
            _ => return Err(bad()),
        },
        Some(r) if r.starts_with('Q') => match r[1..].parse::<u32>() {
            Ok(q @ 1..=4) => (3 * q - 2, 3),
            _ => return Err(bad()),
        },
        Some(r) => match r.parse::<u32>() {
            Ok(m @ 1..=12) if r.len() == 2 => (m, 1),
            _ => return Err(bad()),
        },
    };
    let from = NaiveDate::from_ymd_opt(year, first_month, 1).ok_or_else(bad)?;
    let after = from
        .checked_add_months(chrono::Months::new(months))
        .ok_or_else(bad)?;
    Ok((from, after.pred_opt().ok_or_else(bad)?))
}

/// Default report number, e.g. `PANTAU/dinkes/20251101-20251130`.
pub fn default_number(scope: &str, from: NaiveDate, to: NaiveDate) -> String {
    format!(
        "PANTAU/{scope}/{}-{}",
        from.format("%Y%m%d"),
        to.format("%Y%m%d")
    )
}

/// Keep rollups fresh and prune old raw results until `shutdown`: the
/// refresh runs through the store's writer on a blocking thread, the
/// availability metrics read one snapshot after it. With several
/// collectors on one store, the refresh and the retention are done by the
/// holder of their lease only ([`crate::lease`]); every collector publishes
/// the availability metrics.
pub async fn rollup_task(
    store: std::sync::Arc<dyn ReportBackend>,
    leaser: std::sync::Arc<crate::lease::Leaser>,
    settings: std::sync::Arc<Settings>,
    raw_retention_ms: i64,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
    availability: Option<std::sync::Arc<crate::metrics::availability::Availability>>,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (store, leaser, st, av) = (
            std::sync::Arc::clone(&store),
            std::sync::Arc::clone(&leaser),
            std::sync::Arc::clone(&settings),
            availability.clone(),
        );
        let r = tokio::task::spawn_blocking(move || {
            shared_rollup_work(&*store, &leaser, &st, raw_retention_ms)?;
            if let Some(a) = &av {
                crate::store::report::snapshot(&*store, |r| {
                    a.publish(r, &st);
                    Ok::<_, StoreError>(())
                })?;
            }
            Ok::<_, StoreError>(())
        })
        .await;
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "rollup refresh failed; retrying"),
            Err(e) => tracing::warn!(error = %e, "rollup task panicked; retrying"),
        }
    }
}

/// One run of the leased jobs: the rollup refresh, recorded as the piece
/// (previous watermark minute, this one]; the retention, at most hourly
/// across all collectors, recorded as (previous cut, this cut].
fn shared_rollup_work(
    store: &dyn ReportBackend,
    leaser: &crate::lease::Leaser,
    st: &Settings,
    raw_retention_ms: i64,
) -> Result<(), StoreError> {
    use crate::lease::Job;
    let now = crate::store::now_ms();
    if let Some(token) = leaser.hold(Job::Rollup) {
        let from = leaser.last(Job::Rollup).unwrap_or(0);
        // A long catch-up renews the lease between chunks and stops once
        // another collector holds it.
        let still_ours = || leaser.hold(Job::Rollup) == Some(token);
        if rollup::refresh_while(store, &st.rules, st.utc_offset_minutes, now, still_ours)?
            .is_some()
        {
            leaser.done(Job::Rollup, from, now.div_euclid(60_000) * 60_000, token);
        }
    }
    if let Some(token) = leaser.hold(Job::Retention) {
        let cut = now - raw_retention_ms;
        let last = leaser.last(Job::Retention);
        if last.is_none_or(|l| cut - l >= time::HOUR_MS) {
            rollup::prune_raw(store, now, raw_retention_ms)?;
            leaser.done(Job::Retention, last.unwrap_or(0), cut, token);
        }
    }
    Ok(())
}

/// The report header the section and text unit tests share: 17 November
/// 2026 in WITA, data up to 18.05.
#[cfg(test)]
pub(crate) fn test_meta(lang: Lang, parameters: Vec<(String, String)>) -> Meta {
    Meta {
        agency: "Diskominfo".into(),
        number: "1".into(),
        scope: "all".into(),
        lang,
        from: "2026-11-17".into(),
        to: "2026-11-17".into(),
        from_ms: 0,
        to_ms: 0,
        issued_ms: 0,
        // 2026-11-17T10:05:00Z = 18.05 WITA.
        data_until_ms: 1_794_909_900_000,
        zone: "WITA".into(),
        utc_offset_minutes: 480,
        business_hours: false,
        rule_version: "pantau-rules/2".into(),
        parameters,
        public_key: None,
        public_key_url: String::new(),
        raw_export: None,
        signoff: None,
        letterhead: Default::default(),
    }
}
