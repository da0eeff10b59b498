//! The storage side of rollups and reports, shaped by its users: the rollup
//! task ([`RollupStore`]), report assembly and the report pages
//! ([`ReportStore`] / [`ReportRead`]) and the admin commands that record
//! maintenance, incident notes and contracts ([`ReportAdmin`]).
//!
//! Backend-neutral: plain row structs, no SQL types. Every method is
//! synchronous and runs off the async runtime (see [`super::sqlite`]).
//! The arithmetic (minute states, composites, days, capacity figures) is not
//! here: the store fetches rows, hands them to a [`RollupBuilder`] and
//! writes back what it returns.

use std::collections::BTreeMap;

use serde::Serialize;

use super::StoreError;
use crate::model::{Outcome, RowKind};

/// An OPD: id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpdName {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
}

/// Counters a rollup row carries besides its minutes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Successful results.
    pub n_ok: i64,
    /// Failed results.
    pub n_fail: i64,
    /// ICMP packets sent.
    pub sent: i64,
    /// ICMP packets received.
    pub received: i64,
    /// Sum of jitter pairs, ms.
    pub jit_sum: f64,
    /// Jitter pairs.
    pub jit_n: i64,
    /// Latency histogram, serialised.
    pub hist: Vec<u8>,
}

/// Minutes per state: up, degraded, down, unknown, maintenance.
pub type Counts = [i64; 5];

/// A group's rollup of one local day.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDayRow {
    /// OPD.
    pub opd: String,
    /// Group.
    pub grp: String,
    /// Local day start, UTC ms.
    pub day_ms: i64,
    /// Minutes per state (business hours only when read so; maintenance 0).
    pub counts: Counts,
    /// Minutes per state within business hours (up, degraded, down,
    /// unknown); written by the rollup, not filled when read.
    pub business: [i64; 4],
    /// Counters.
    pub tally: Tally,
}

/// A group's rollup of one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupHourRow {
    /// Group.
    pub grp: String,
    /// Hour start, UTC ms.
    pub hour_ms: i64,
    /// One state code per minute.
    pub minutes: String,
    /// Minutes per state.
    pub counts: Counts,
    /// Counters.
    pub tally: Tally,
}

/// A target's rollup of one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetHourRow {
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Group.
    pub grp: String,
    /// One state code per minute.
    pub minutes: String,
    /// Minutes per state.
    pub counts: Counts,
    /// Counters.
    pub tally: Tally,
}

/// The minute codes of one hour of a group or target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRow {
    /// Group or target id.
    pub key: String,
    /// Hour start, UTC ms.
    pub hour_ms: i64,
    /// One state code per minute.
    pub minutes: String,
}

/// A target expected during an hour being rolled up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupTarget {
    /// Agent.
    pub agent: String,
    /// Target id.
    pub id: String,
    /// Group.
    pub grp: String,
    /// Probe interval, ms.
    pub interval_ms: i64,
    /// When the collector first saw the target declared, UTC ms.
    pub first_seen_ms: i64,
}

/// One raw availability result (not heartbeat, bandwidth or link).
#[derive(Debug, Clone, PartialEq)]
pub struct RawResult {
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Observed, UTC ms.
    pub at_ms: i64,
    /// Outcome name as stored.
    pub outcome: String,
    /// Latency, ms.
    pub value_ms: Option<f64>,
    /// Packets sent.
    pub sent: Option<i64>,
    /// Packets received.
    pub received: Option<i64>,
}

/// One raw bandwidth or link result.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityResult {
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Bandwidth or link.
    pub kind: RowKind,
    /// Observed, UTC ms.
    pub at_ms: i64,
    /// Outcome.
    pub outcome: Outcome,
    /// The measurement, JSON text.
    pub data: String,
}

/// A maintenance window as the rollup sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// Group, or every group.
    pub grp: Option<String>,
    /// Start, UTC ms.
    pub from_ms: i64,
    /// End (exclusive), UTC ms.
    pub to_ms: i64,
}

/// Throughput rollup of one bandwidth target over an hour or a day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BwRow {
    /// OPD.
    pub opd: String,
    /// Hour or day start, UTC ms.
    pub at_ms: i64,
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Tests that ran.
    pub n_ok: i64,
    /// Tests skipped.
    pub n_skipped: i64,
    /// Tests failed.
    pub n_fail: i64,
    /// Download rates, bit/s.
    pub dl: Vec<f64>,
    /// Upload rates, bit/s.
    pub ul: Vec<f64>,
}

/// Utilisation rollup of one link over an hour or a day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkRow {
    /// OPD.
    pub opd: String,
    /// Hour or day start, UTC ms.
    pub at_ms: i64,
    /// Agent.
    pub agent: String,
    /// Target id.
    pub target: String,
    /// Interface name.
    pub if_name: String,
    /// Polls stored.
    pub polls: i64,
    /// Polls without a rate.
    pub no_rate: i64,
    /// Milliseconds covered by rates.
    pub covered_ms: i64,
    /// Bits in.
    pub in_bits: f64,
    /// Bits out.
    pub out_bits: f64,
    /// Highest inbound rate.
    pub in_peak: f64,
    /// Highest outbound rate.
    pub out_peak: f64,
    /// Inbound rate histogram, serialised.
    pub in_hist: Vec<u8>,
    /// Outbound rate histogram, serialised.
    pub out_hist: Vec<u8>,
    /// Capacity, bit/s (0: unknown).
    pub capacity_bps: f64,
    /// The capacity is the contracted bandwidth.
    pub contracted: bool,
    /// When the capacity was reported, UTC ms.
    pub capacity_at_ms: i64,
}

/// Everything one OPD hour is rolled up from.
#[derive(Debug, Clone, Default)]
pub struct HourInput {
    /// OPD.
    pub opd: String,
    /// Hour start, UTC ms.
    pub hour_ms: i64,
    /// The OPD's watermark: minutes from it on have not happened yet.
    pub until_ms: i64,
    /// Targets expected this hour, by agent and id.
    pub targets: Vec<RollupTarget>,
    /// Availability results from one interval (and a minute) before the
    /// hour to its end, by time.
    pub results: Vec<RawResult>,
    /// Maintenance windows overlapping the hour.
    pub windows: Vec<WindowRow>,
    /// Earliest trusted result per agent of `targets`.
    pub first_result: BTreeMap<String, Option<i64>>,
    /// Bandwidth and link results of the hour, by time.
    pub capacity: Vec<CapacityResult>,
}

/// What one OPD hour rolls up to.
#[derive(Debug, Clone, Default)]
pub struct HourRollup {
    /// Per target.
    pub targets: Vec<TargetHourRow>,
    /// Per group.
    pub groups: Vec<GroupHourRow>,
    /// Throughput.
    pub bw: Vec<BwRow>,
    /// Utilisation.
    pub links: Vec<LinkRow>,
}

/// The hour rows of one OPD's local day.
#[derive(Debug, Clone, Default)]
pub struct DayInput {
    /// Group hours.
    pub groups: Vec<GroupHourRow>,
    /// Throughput hours.
    pub bw: Vec<BwRow>,
    /// Utilisation hours, by time.
    pub links: Vec<LinkRow>,
}

/// What one OPD day rolls up to.
#[derive(Debug, Clone, Default)]
pub struct DayRollup {
    /// Per group.
    pub groups: Vec<GroupDayRow>,
    /// Throughput.
    pub bw: Vec<BwRow>,
    /// Utilisation.
    pub links: Vec<LinkRow>,
}

/// The pure arithmetic of rollups, handed to the store.
pub trait RollupBuilder: Sync {
    /// Roll up one OPD hour.
    fn hour(&self, input: &HourInput) -> HourRollup;
    /// Start of the local day containing `hour_ms`.
    fn day_of(&self, hour_ms: i64) -> i64;
    /// Roll up one OPD day.
    fn day(&self, opd: &str, day_ms: i64, input: &DayInput) -> DayRollup;
}

/// A rule set as recorded in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRecord {
    /// Version.
    pub version: String,
    /// Fingerprint of the rollup-shaping parameters.
    pub fingerprint: String,
    /// Parameters, `key=value` lines.
    pub parameters: String,
}

/// One entry of the rule history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHistoryRow {
    /// Version.
    pub version: String,
    /// Fingerprint.
    pub fingerprint: String,
    /// Raw results from this instant on were rebuilt under it.
    pub rebuilt_from_ms: Option<i64>,
}

/// A recorded maintenance window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceRecord {
    /// Row id.
    pub id: i64,
    /// OPD, or every OPD.
    pub opd: Option<String>,
    /// Group, or every group.
    pub group: Option<String>,
    /// Start, UTC ms.
    pub from_ms: i64,
    /// End (exclusive), UTC ms.
    pub to_ms: i64,
    /// Why.
    pub reason: String,
    /// Who recorded it.
    pub recorded_by: String,
    /// When, UTC ms.
    pub recorded_at_ms: i64,
}

/// A maintenance window to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMaintenance {
    /// OPD, or every OPD.
    pub opd: Option<String>,
    /// Group, or every group.
    pub group: Option<String>,
    /// Start, UTC ms.
    pub from_ms: i64,
    /// End (exclusive), UTC ms.
    pub to_ms: i64,
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When, UTC ms.
    pub at_ms: i64,
}

/// An admin note on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentNote {
    /// OPD.
    pub opd: String,
    /// Group.
    pub group: String,
    /// Incident start, UTC ms.
    pub start_ms: i64,
    /// Note.
    pub note: String,
    /// Ticket reference ("" for none).
    pub ticket: String,
    /// Author.
    pub by: String,
    /// When, UTC ms.
    pub at_ms: i64,
}

/// Clock corrections and exclusions of one agent in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockRow {
    /// OPD.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Results placed by the offset estimate.
    pub corrected_results: i64,
    /// Distinct minutes holding them.
    pub corrected_minutes: i64,
    /// Smallest offset applied, ms.
    pub min_correction_ms: Option<i64>,
    /// Largest offset applied, ms.
    pub max_correction_ms: Option<i64>,
    /// Results not counted for an impossible time.
    pub excluded_results: i64,
}

/// One stored path: a distinct route an agent saw to a target.
#[derive(Debug, Clone, Serialize)]
pub struct PathObs {
    /// Row id.
    pub id: i64,
    /// Agent.
    pub agent: String,
    /// The agent's OPD.
    pub opd: String,
    /// Target id.
    pub target: String,
    /// Target group (datacenter, internet, ...), "" when not declared.
    pub group: String,
    /// Target address as configured.
    pub address: String,
    /// Target label.
    pub label: String,
    /// Hop addresses in TTL order; "" where no hop answered.
    pub hops: Vec<String>,
    /// Latest RTT per hop, microseconds (0: no answer).
    pub rtt_us: Vec<u64>,
    /// The target answered at the last hop.
    pub reached: bool,
    /// First seen, UTC ms.
    pub first_seen_ms: i64,
    /// Last seen, UTC ms.
    pub last_seen_ms: i64,
    /// Traceroutes that saw this path.
    pub times_seen: i64,
    /// The path this one replaced.
    pub previous_id: Option<i64>,
    /// Hops of the replaced path.
    pub previous_hops: Option<Vec<String>>,
    /// When the replaced path was last seen, UTC ms.
    pub previous_last_seen_ms: Option<i64>,
}

/// Which paths to load. `None` means no restriction.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    /// OPD.
    pub opd: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// Target id.
    pub target: Option<String>,
    /// Paths last seen at or after this time, UTC ms.
    pub from_ms: Option<i64>,
    /// Paths first seen before this time, UTC ms.
    pub to_ms: Option<i64>,
}

/// A stored value of an export row.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportValue {
    /// No value.
    Null,
    /// Integer.
    Int(i64),
    /// Real.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// The tables of a signed bundle's recomputation data. Scope `None`: every OPD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export<'a> {
    /// Raw results observed in `[from, until)`, with the target's group and
    /// both clocks, by OPD, agent, epoch, seq.
    RawResults {
        /// Scope.
        opd: Option<&'a str>,
        /// From, UTC ms.
        from_ms: i64,
        /// Until (exclusive), UTC ms.
        until_ms: i64,
    },
    /// The target catalogue with each agent's earliest trusted result.
    Targets {
        /// Scope.
        opd: Option<&'a str>,
    },
    /// Agents with the clock offset estimate.
    Agents {
        /// Scope.
        opd: Option<&'a str>,
    },
    /// Agent sessions overlapping `[from, until)`.
    Sessions {
        /// Scope.
        opd: Option<&'a str>,
        /// From, UTC ms.
        from_ms: i64,
        /// Until (exclusive), UTC ms.
        until_ms: i64,
    },
    /// Maintenance windows overlapping `[from, to)`.
    Maintenance {
        /// Scope.
        opd: Option<&'a str>,
        /// From, UTC ms.
        from_ms: i64,
        /// To (exclusive), UTC ms.
        to_ms: i64,
    },
}

/// Reads of one consistent snapshot: everything report assembly, the
/// report pages, the bundle exports and the availability metrics read.
pub trait ReportRead: super::audit::AuditRead {
    /// OPDs (one, or all) by id.
    fn opds(&self, opd: Option<&str>) -> Result<Vec<OpdName>, StoreError>;
    /// Whether an OPD exists.
    fn opd_exists(&self, opd: &str) -> Result<bool, StoreError>;
    /// Hours still waiting to be rolled up, of one OPD or all.
    fn pending_hours(&self, opd: Option<&str>) -> Result<i64, StoreError>;
    /// The oldest watermark in scope, if any OPD is rolled up.
    fn min_watermark(&self, opd: Option<&str>) -> Result<Option<i64>, StoreError>;
    /// The watermark of one OPD.
    fn watermark(&self, opd: &str) -> Result<Option<i64>, StoreError>;
    /// Hand each group day rollup of days in `[from, to)` to `each`, in one
    /// pass without collecting them (a province year is 100 000 rows); with
    /// `business`, the business-hour minutes as `counts` (maintenance 0).
    /// The row lent to `each` is only valid during the call.
    fn each_group_day(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        business: bool,
        each: &mut dyn FnMut(&GroupDayRow),
    ) -> Result<(), StoreError>;
    /// [`Self::each_group_day`], collected.
    fn group_days(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        business: bool,
    ) -> Result<Vec<GroupDayRow>, StoreError> {
        let mut out = Vec::new();
        self.each_group_day(opd, from_ms, to_ms, business, &mut |r| out.push(r.clone()))?;
        Ok(out)
    }
    /// Minute codes of the group hours of one OPD in `[from, to)`.
    fn group_minutes(
        &self,
        opd: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError>;
    /// Minute codes of the target hours of one OPD and group in `[from, to)`
    /// that hold a down minute.
    fn down_target_minutes(
        &self,
        opd: &str,
        grp: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<MinuteRow>, StoreError>;
    /// Note and ticket of an incident, if an admin wrote one.
    fn incident_note(
        &self,
        opd: &str,
        grp: &str,
        start_ms: i64,
    ) -> Result<Option<(String, String)>, StoreError>;
    /// Sums of the group hours of one OPD and group starting in
    /// `[from, to]`: `None` without any hour row.
    fn group_hour_sums(
        &self,
        opd: &str,
        grp: &str,
        from_hour_ms: i64,
        to_hour_ms: i64,
    ) -> Result<Option<Counts>, StoreError>;
    /// Throughput rollups (hourly or daily) of `[from, to)`.
    fn bw_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
    ) -> Result<Vec<BwRow>, StoreError>;
    /// Hand each utilisation rollup (hourly or daily) of `[from, to)` to
    /// `each` without collecting them, by OPD and time (the rows of one link
    /// come by time). The row lent to `each` is only valid during the call.
    fn each_link_row(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
        each: &mut dyn FnMut(&LinkRow),
    ) -> Result<(), StoreError>;
    /// [`Self::each_link_row`], collected.
    fn link_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        hourly: bool,
    ) -> Result<Vec<LinkRow>, StoreError> {
        let mut out = Vec::new();
        self.each_link_row(opd, from_ms, to_ms, hourly, &mut |r| out.push(r.clone()))?;
        Ok(out)
    }
    /// Group and label of a target.
    fn target_label(&self, agent: &str, target: &str) -> Result<(String, String), StoreError>;
    /// The contracted bandwidth of an OPD in its registry, Mbit/s.
    fn opd_contract(&self, opd: &str) -> Result<Option<f64>, StoreError>;
    /// The rule history, oldest first.
    fn rule_history(&self) -> Result<Vec<RuleHistoryRow>, StoreError>;
    /// Whether any group hour in `[from, until)` holds counted minutes.
    fn counted_hours(&self, from_ms: i64, until_ms: i64) -> Result<bool, StoreError>;
    /// Maintenance windows touching `opd` (or every one of them when
    /// `None`), overlapping `period` when given, by start.
    fn maintenance(
        &self,
        opd: Option<&str>,
        period: Option<(i64, i64)>,
    ) -> Result<Vec<MaintenanceRecord>, StoreError>;
    /// Clock corrections and exclusions per agent of results in `[from, until)`.
    fn clock_rows(
        &self,
        opd: Option<&str>,
        from_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<ClockRow>, StoreError>;
    /// Paths in use during the filter's window, by OPD, agent, target, first seen.
    fn paths(&self, f: &PathFilter) -> Result<Vec<PathObs>, StoreError>;
    /// The longest probe interval of the agents in scope.
    fn max_interval(&self, opd: Option<&str>) -> Result<i64, StoreError>;
    /// Stream the rows of an export table to `row`.
    fn export(
        &self,
        what: Export<'_>,
        row: &mut dyn FnMut(&[ExportValue]),
    ) -> Result<(), StoreError>;
}

/// Read snapshots for reports.
pub trait ReportStore: Send + Sync {
    /// Run `f` on one read snapshot (a pooled reader inside a read
    /// transaction for SQLite): every read `f` makes sees the same data.
    fn read_snapshot(
        &self,
        f: &mut dyn FnMut(&dyn ReportRead) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
}

/// The rollup task's writes.
pub trait RollupStore: Send + Sync {
    /// The version of the rule set recorded last.
    fn current_rules(&self) -> Result<Option<String>, StoreError>;
    /// Record `current` unless it is the last recorded version. When the
    /// history is empty but rollups exist, `pre_history` is recorded first
    /// (its fingerprint is its version). When the fingerprint differs from
    /// the last recorded one, every hour with raw results is marked dirty and
    /// the record carries the oldest raw result (or now) as rebuilt-from.
    /// Returns whether a rebuild was queued. Atomic.
    fn ensure_rules(
        &self,
        current: &RuleRecord,
        pre_history: &RuleRecord,
    ) -> Result<bool, StoreError>;
    /// Move every OPD's watermark to `until` (a minute start) and mark dirty
    /// the hours whose rollup was made with another cut-off (between the old
    /// and new watermark, both ends' hours included). An OPD without a
    /// watermark starts at its start of monitoring: its first target
    /// declaration or trusted result, or, once it has rollups, its oldest
    /// trusted raw result; without targets or results it is skipped.
    fn advance_watermarks(&self, until_ms: i64) -> Result<(), StoreError>;
    /// Rebuild up to `limit` dirty hours and the days holding them with `b`,
    /// a day with the last of its dirty hours; returns the dirty hours read
    /// (0: none was dirty). Each OPD-hour's input is read in a read
    /// snapshot outside the write lock; a short write transaction then
    /// stores its rollup and clears the mark only if no result marked the
    /// hour since the snapshot (else the hour stays dirty for the next run).
    fn rebuild_dirty(&self, limit: usize, b: &dyn RollupBuilder) -> Result<usize, StoreError> {
        self.rebuild_dirty_between(limit, b, &mut |_, _| {})
    }
    /// [`rebuild_dirty`](Self::rebuild_dirty), calling `between(opd, hour)`
    /// after each hour's read snapshot and before its write (tests store
    /// results there).
    fn rebuild_dirty_between(
        &self,
        limit: usize,
        b: &dyn RollupBuilder,
        between: &mut dyn FnMut(&str, i64),
    ) -> Result<usize, StoreError>;
    /// Delete raw results observed before `before_ms` whose hours are rolled up.
    fn prune_raw(&self, before_ms: i64) -> Result<usize, StoreError>;
}

/// The admin commands' writes.
pub trait ReportAdmin: Send + Sync {
    /// Record a maintenance window and mark its hours dirty, atomically.
    fn add_maintenance(&self, w: &NewMaintenance) -> Result<(), StoreError>;
    /// Write (or replace) the note of an incident.
    fn set_incident_note(&self, n: &IncidentNote) -> Result<(), StoreError>;
    /// Set (or with `None` clear) an OPD's contracted bandwidth; false when
    /// there is no such OPD.
    fn set_contract(&self, opd: &str, mbps: Option<f64>) -> Result<bool, StoreError>;
    /// End window `id` early at `at_ms` (its end becomes `max(at_ms, from)`)
    /// and mark the hours it no longer covers dirty, atomically; returns the
    /// window as it was. [`StoreError::UnknownMaintenance`], or
    /// [`StoreError::MaintenanceOver`] when it ended at or before `at_ms`.
    fn end_maintenance(&self, id: i64, at_ms: i64) -> Result<MaintenanceRecord, StoreError>;
    /// Delete window `id` and mark its hours dirty, atomically; returns the
    /// deleted window. [`StoreError::UnknownMaintenance`] if there is none.
    fn delete_maintenance(&self, id: i64) -> Result<MaintenanceRecord, StoreError>;
}

/// Everything the report side needs of a backend.
pub trait ReportBackend: ReportStore + RollupStore + ReportAdmin {}

impl<T: ReportStore + RollupStore + ReportAdmin> ReportBackend for T {}

/// Run `f` on one snapshot of `store` and return its value.
pub fn snapshot<T, E: From<StoreError>>(
    store: &(impl ReportStore + ?Sized),
    f: impl FnOnce(&dyn ReportRead) -> Result<T, E>,
) -> Result<T, E> {
    let mut f = Some(f);
    let mut out: Option<Result<T, E>> = None;
    store.read_snapshot(&mut |r| {
        if let Some(f) = f.take() {
            out = Some(f(r));
        }
        Ok(())
    })?;
    out.unwrap_or_else(|| Err(StoreError::NotStored("snapshot not taken".into()).into()))
}
