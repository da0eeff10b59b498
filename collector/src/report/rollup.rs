//! Rollups: raw results -> target hour -> group hour -> group day.
//!
//! The writer marks (OPD, hour) dirty in the same transaction that stores the
//! results; [`refresh`] rebuilds dirty hours from raw rows and the local days
//! containing them. A late result after an outage marks its old hour dirty
//! again, so rollups are corrected, never appended to.
//!
//! The store ([`RollupStore`]) fetches the rows and writes the rollups; the
//! arithmetic is here, pure: [`build_hour`] and [`build_day`], handed to the
//! store through [`Builder`].

use std::collections::{BTreeMap, HashMap};

use super::histogram::Histogram;
use super::rules::{self, MinuteState, Observation, RuleSet, StateMinutes};
use crate::store::StoreError;
use crate::store::report::{
    Counts, DayInput, DayRollup, GroupDayRow, GroupHourRow, HourInput, HourRollup, RawResult,
    ReportRead, ReportStore, RollupBuilder, RollupStore, RollupTarget, Tally, TargetHourRow,
    WindowRow,
};

pub use super::time::{DAY_MS, HOUR_MS, day_of, hour_of};

/// Dirty hours listed per round; each is rebuilt in a transaction of its own.
const REFRESH_CHUNK: usize = 200;

/// Rebuild every dirty hour and the days containing them, as of now;
/// returns the hours rebuilt.
pub fn refresh(
    store: &(impl RollupStore + ?Sized),
    rules: &RuleSet,
    offset_min: i64,
) -> Result<usize, StoreError> {
    refresh_at(store, rules, offset_min, crate::store::now_ms())
}

/// [`refresh`] with the data cut-off at `now_ms`: minutes from the start of
/// the minute containing `now_ms` on are "not yet" ([`MinuteState::NotYet`]).
pub fn refresh_at(
    store: &(impl RollupStore + ?Sized),
    rules: &RuleSet,
    offset_min: i64,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(refresh_while(store, rules, offset_min, now_ms, || true)?.unwrap_or(0))
}

/// [`refresh_at`] asking `go_on` before every chunk of dirty hours after
/// the first: the rollup task renews its lease there, so a long catch-up
/// stops when another collector has taken the job. `None`: stopped early.
pub fn refresh_while(
    store: &(impl RollupStore + ?Sized),
    rules: &RuleSet,
    offset_min: i64,
    now_ms: i64,
    mut go_on: impl FnMut() -> bool,
) -> Result<Option<usize>, StoreError> {
    super::history::ensure(store, rules)?;
    store.advance_watermarks(now_ms.div_euclid(60_000) * 60_000)?;
    let b = Builder { rules, offset_min };
    let mut total = 0;
    loop {
        let n = store.rebuild_dirty(REFRESH_CHUNK, &b)?;
        total += n;
        // A short chunk read every dirty hour there was: stop, even if
        // results arriving meanwhile kept some dirty (the next run has them).
        if n < REFRESH_CHUNK {
            return Ok(Some(total));
        }
        if !go_on() {
            return Ok(None);
        }
    }
}

/// Refresh (through the writer), then run `f` on one read snapshot in which
/// no hour of `opd` (or of any OPD) is waiting to be rolled up, so the
/// rollups `f` reads and the raw results it exports agree: a result stored
/// between the refresh and the snapshot marks its hour dirty, and the
/// refresh is repeated.
pub fn consistent<T, E: From<StoreError>>(
    store: &(impl RollupStore + ReportStore + ?Sized),
    rules: &RuleSet,
    offset_min: i64,
    opd: Option<&str>,
    mut f: impl FnMut(&dyn ReportRead) -> Result<T, E>,
) -> Result<T, E> {
    const TRIES: usize = 5;
    for attempt in 1..=TRIES {
        refresh(store, rules, offset_min)?;
        let out = crate::store::report::snapshot(store, |r| {
            let pending = r.pending_hours(opd)?;
            if pending == 0 || attempt == TRIES {
                if pending > 0 {
                    tracing::warn!(
                        pending,
                        "results keep arriving: report made with rollups a few seconds behind"
                    );
                }
                return f(r).map(Some);
            }
            Ok(None)
        })?;
        if let Some(v) = out {
            return Ok(v);
        }
    }
    unreachable!("the last attempt returns")
}

/// The data cut-off of a report of `opd` (or of every OPD): the oldest
/// watermark in scope, or the start of the current minute when nothing is
/// rolled up yet.
pub fn cut_off(r: &dyn ReportRead, opd: Option<&str>) -> Result<i64, StoreError> {
    Ok(r.min_watermark(opd)?
        .unwrap_or_else(|| crate::store::now_ms().div_euclid(60_000) * 60_000))
}

/// Delete raw results older than `keep_ms` whose hours are rolled up.
pub fn prune_raw(
    store: &(impl RollupStore + ?Sized),
    now_ms: i64,
    keep_ms: i64,
) -> Result<usize, StoreError> {
    store.prune_raw(now_ms - keep_ms)
}

/// The rollup arithmetic under one rule set and zone, for the store.
#[derive(Debug, Clone, Copy)]
pub struct Builder<'a> {
    /// Rules.
    pub rules: &'a RuleSet,
    /// Zone offset, minutes.
    pub offset_min: i64,
}

impl RollupBuilder for Builder<'_> {
    fn hour(&self, input: &HourInput) -> HourRollup {
        let mut out = build_hour(self.rules, input);
        // Throughput and utilisation (never part of availability).
        let (bw, links) = super::capacity::build_hour(&input.opd, input.hour_ms, &input.capacity);
        out.bw = bw;
        out.links = links;
        out
    }

    fn day_of(&self, hour_ms: i64) -> i64 {
        day_of(hour_ms, self.offset_min)
    }

    fn day(&self, opd: &str, day_ms: i64, input: &DayInput) -> DayRollup {
        let (bw, links) = super::capacity::build_day(opd, day_ms, &input.bw, &input.links);
        DayRollup {
            groups: build_day(self.rules, self.offset_min, opd, &input.groups, day_ms),
            bw,
            links,
        }
    }
}

#[derive(Default)]
struct Acc {
    n_ok: i64,
    n_fail: i64,
    sent: i64,
    received: i64,
    jit_sum: f64,
    jit_n: i64,
    hist: Histogram,
}

impl Acc {
    fn merge(&mut self, o: &Acc) {
        self.n_ok += o.n_ok;
        self.n_fail += o.n_fail;
        self.sent += o.sent;
        self.received += o.received;
        self.jit_sum += o.jit_sum;
        self.jit_n += o.jit_n;
        self.hist.merge(&o.hist);
    }

    /// Count one result starting in the hour; `last_ok` is the previous
    /// answer's round trip, for jitter.
    fn record(&mut self, r: &RawResult, ok: bool, last_ok: &mut Option<f64>) {
        if ok {
            self.n_ok += 1;
            if let Some(v) = r.value_ms {
                self.hist.record(v);
                if let Some(p) = *last_ok {
                    self.jit_sum += (v - p).abs();
                    self.jit_n += 1;
                }
                *last_ok = Some(v);
            }
        } else {
            self.n_fail += 1;
        }
        self.sent += r.sent.unwrap_or(0);
        self.received += r.received.unwrap_or(0);
    }

    fn tally(&self) -> Tally {
        Tally {
            n_ok: self.n_ok,
            n_fail: self.n_fail,
            sent: self.sent,
            received: self.received,
            jit_sum: self.jit_sum,
            jit_n: self.jit_n,
            hist: self.hist.to_bytes(),
        }
    }
}

fn row_counts(m: &StateMinutes) -> Counts {
    [
        m.up as i64,
        m.degraded as i64,
        m.down as i64,
        m.unknown as i64,
        m.maintenance as i64,
    ]
}

/// Roll up one OPD hour: the target and group rows. Minutes starting at or
/// after the input's watermark have not happened yet and are
/// [`MinuteState::NotYet`].
pub fn build_hour(rules: &RuleSet, input: &HourInput) -> HourRollup {
    // One pass per target over its minutes, then the composites.
    let mut out = HourRollup::default();
    let mut by_target: HashMap<(&str, &str), Vec<&RawResult>> = HashMap::new();
    for r in &input.results {
        by_target.entry((&r.agent, &r.target)).or_default().push(r);
    }
    let mut groups: BTreeMap<&str, (Vec<[MinuteState; 60]>, Acc)> = BTreeMap::new();
    for t in &input.targets {
        let results = by_target
            .get(&(t.agent.as_str(), t.id.as_str()))
            .into_iter()
            .flatten()
            .copied();
        let minutes = observe(t, results, input.hour_ms, input.until_ms);
        let states = target_states(rules, input, t, &minutes);
        let (text, counts) = encode(&states);
        out.targets.push(TargetHourRow {
            agent: t.agent.clone(),
            target: t.id.clone(),
            grp: t.grp.clone(),
            minutes: text,
            counts,
            tally: minutes.acc.tally(),
        });
        let g = groups.entry(t.grp.as_str()).or_default();
        g.0.push(states);
        g.1.merge(&minutes.acc);
    }
    for (grp, (per_target, acc)) in groups {
        let composite = rules.composite_of(grp);
        let states: Vec<MinuteState> = (0..60)
            .map(|i| {
                let states: Vec<MinuteState> = per_target.iter().map(|s| s[i]).collect();
                rules::group_minute(composite, &states)
            })
            .collect();
        let (text, counts) = encode(&states);
        out.groups.push(GroupHourRow {
            grp: grp.to_string(),
            hour_ms: input.hour_ms,
            minutes: text,
            counts,
            tally: acc.tally(),
        });
    }
    out
}

/// One target's results over one hour, per minute.
struct TargetMinutes {
    /// Observations starting in each minute.
    obs: Vec<Vec<Observation>>,
    /// The latest earlier result still within its interval, per minute.
    held: Vec<Option<Observation>>,
    /// Tallies of the hour's results.
    acc: Acc,
}

/// Sort a target's results (by time) into the minutes of the hour starting
/// at `hour`; results at or after `until` are ignored.
fn observe<'a>(
    t: &RollupTarget,
    results: impl Iterator<Item = &'a RawResult>,
    hour: i64,
    until: i64,
) -> TargetMinutes {
    let mut obs: Vec<Vec<Observation>> = vec![Vec::new(); 60];
    let mut held: Vec<Option<Observation>> = vec![None; 60];
    let mut acc = Acc::default();
    let mut last_ok: Option<f64> = None;
    // Minutes a result holds for, the interval rounded up (bounded by the
    // longest interval an agent may declare).
    let max_interval = pantau_core::probe::MAX_INTERVAL.as_millis() as i64;
    let hold = (t.interval_ms.clamp(60_000, max_interval) + 59_999) / 60_000;
    for r in results {
        // Results after the cut-off have not happened as far as this
        // rollup knows (a report made "as of" an earlier time).
        if r.at_ms >= until {
            continue;
        }
        let ok = r.outcome == "ok";
        let loss = match (r.sent, r.received) {
            (Some(s), Some(rc)) if s > 0 => Some(1.0 - rc as f64 / s as f64),
            _ => None,
        };
        let o = Observation {
            ok,
            rtt_ms: if ok { r.value_ms } else { None },
            loss,
        };
        let m = (r.at_ms - hour).div_euclid(60_000);
        if (0..60).contains(&m) {
            obs[m as usize].push(o);
            acc.record(r, ok, &mut last_ok);
        } else if ok && r.value_ms.is_some() {
            // The last answer before the hour: its pair with the hour's
            // first answer belongs to this hour's jitter.
            last_ok = r.value_ms;
        }
        // A result holds for its interval into following minutes: the
        // minutes m+1 .. m+hold-1 that fall in this hour, at most 59 of
        // them whatever the interval.
        let from = (m + 1).clamp(0, 60) as usize;
        let to = (m + hold).clamp(0, 60) as usize;
        for h in &mut held[from..to.max(from)] {
            *h = Some(o);
        }
    }
    TargetMinutes { obs, held, acc }
}

/// The state of each minute of one target, in the order of the minute rules
/// of METHODOLOGY.md.
fn target_states(
    rules: &RuleSet,
    input: &HourInput,
    t: &RollupTarget,
    m: &TargetMinutes,
) -> [MinuteState; 60] {
    // Monitoring began when the target was first declared, or earlier
    // when results spooled before the agent's first connection arrived.
    let since = input
        .first_result
        .get(&t.agent)
        .copied()
        .flatten()
        .map_or(t.first_seen_ms, |v| v.min(t.first_seen_ms));
    let mut states = [MinuteState::Unknown; 60];
    for (i, (o, h)) in m.obs.iter().zip(&m.held).enumerate() {
        let at = input.hour_ms + i as i64 * 60_000;
        states[i] = if at >= input.until_ms {
            MinuteState::NotYet
        } else if in_maintenance(&input.windows, &t.grp, at) {
            MinuteState::Maintenance
        } else if !o.is_empty() {
            rules::target_minute(rules, o)
        } else if let Some(h) = h {
            rules::target_minute(rules, &[*h])
        } else if at + 60_000 <= since {
            MinuteState::Unmonitored
        } else {
            MinuteState::Unknown
        };
    }
    states
}

/// The minute codes and the counts per state.
fn encode(states: &[MinuteState]) -> (String, Counts) {
    let mut counts = StateMinutes::default();
    let mut text = String::with_capacity(60);
    for &s in states {
        counts.add(s);
        text.push(s.code());
    }
    (text, row_counts(&counts))
}

/// A minute is under maintenance when a window covers its start.
fn in_maintenance(w: &[WindowRow], grp: &str, minute_ms: i64) -> bool {
    w.iter().any(|w| {
        w.grp.as_deref().is_none_or(|g| g == grp) && w.from_ms <= minute_ms && minute_ms < w.to_ms
    })
}

/// Roll up one OPD's local day from its group hours: per group, the minutes,
/// the business-hour minutes and the counters.
pub fn build_day(
    rules: &RuleSet,
    offset_min: i64,
    opd: &str,
    hours: &[GroupHourRow],
    day: i64,
) -> Vec<GroupDayRow> {
    #[derive(Default)]
    struct D {
        m: [i64; 5],
        bh: [i64; 4],
        acc: Acc,
    }
    let mut per: BTreeMap<&str, D> = BTreeMap::new();
    for r in hours {
        let d = per.entry(&r.grp).or_default();
        for (x, v) in d.m.iter_mut().zip(r.counts) {
            *x += v;
        }
        if rules::business_hour_at(rules, r.hour_ms, offset_min) {
            for (b, x) in d.bh.iter_mut().zip(r.counts) {
                *b += x;
            }
        }
        d.acc.n_ok += r.tally.n_ok;
        d.acc.n_fail += r.tally.n_fail;
        d.acc.sent += r.tally.sent;
        d.acc.received += r.tally.received;
        d.acc.jit_sum += r.tally.jit_sum;
        d.acc.jit_n += r.tally.jit_n;
        d.acc.hist.merge_bytes(&r.tally.hist);
    }
    per.into_iter()
        .map(|(grp, d)| GroupDayRow {
            opd: opd.to_string(),
            grp: grp.to_string(),
            day_ms: day,
            counts: d.m,
            business: d.bh,
            tally: d.acc.tally(),
        })
        .collect()
}
