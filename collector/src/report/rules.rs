//! Availability rules: pure functions from probe results to per-minute
//! states, composite group states and availability figures. Nothing here
//! touches the store; docs/METHODOLOGY.md describes the same rules in words.

use serde::Serialize;

/// Version printed on every report; bump it whenever a rule or default changes.
pub const RULE_VERSION: &str = "pantau-rules/2";

/// Default SLA availability targets per group (percent), in [`GROUPS`] order.
pub const DEFAULT_SLA_PCT: [f64; 5] = [99.5, 99.5, 99.0, 99.0, 99.0];

/// Groups a target can belong to, in report order.
pub const GROUPS: [&str; 5] = ["intranet", "datacenter", "internet", "jip", "app"];

/// The state of one target, or one group, during one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MinuteState {
    /// Probes answered within thresholds.
    Up,
    /// Probes answered but loss or latency exceeded the thresholds.
    Degraded,
    /// Probes ran and failed.
    Down,
    /// No data: the agent was off or not reporting. Never up, never down.
    Unknown,
    /// A recorded maintenance window; excluded from availability.
    Maintenance,
    /// Before the target was first monitored (agent not yet installed or the
    /// target not yet configured): not counted at all, not even as coverage.
    Unmonitored,
    /// After the data cut-off (the time the rollup was made): the minute has
    /// not happened yet. Not counted at all; rebuilt once it has passed.
    NotYet,
}

impl MinuteState {
    /// One-letter code stored in rollups.
    pub fn code(self) -> char {
        match self {
            MinuteState::Up => 'U',
            MinuteState::Degraded => 'G',
            MinuteState::Down => 'D',
            MinuteState::Unknown => '-',
            MinuteState::Maintenance => 'M',
            MinuteState::Unmonitored => '.',
            MinuteState::NotYet => '>',
        }
    }

    /// Inverse of [`MinuteState::code`]; anything else is unknown.
    pub fn from_code(c: char) -> Self {
        match c {
            'U' => MinuteState::Up,
            'G' => MinuteState::Degraded,
            'D' => MinuteState::Down,
            'M' => MinuteState::Maintenance,
            '.' => MinuteState::Unmonitored,
            '>' => MinuteState::NotYet,
            _ => MinuteState::Unknown,
        }
    }
}

/// How a group's targets combine into the group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Composite {
    /// Up when any target answers (one remote host failing is not an outage).
    Any,
    /// Up when every target answers (each application matters).
    All,
    /// Up when at least this many targets answer (capped at the group size).
    Quorum(u32),
}

/// A versioned rule set: thresholds and composites.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSet {
    /// [`RULE_VERSION`].
    pub version: String,
    /// Packet loss above this fraction makes an answering minute degraded.
    pub degraded_loss: f64,
    /// Latency above this (ms) makes an answering minute degraded.
    pub degraded_rtt_ms: f64,
    /// Composite per group, in [`GROUPS`] order.
    pub composite: [Composite; 5],
    /// Consecutive down minutes that open an incident.
    pub incident_minutes: u32,
    /// Business hours, local time: first hour included.
    pub business_start_hour: u32,
    /// Business hours, local time: first hour excluded.
    pub business_end_hour: u32,
}

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet {
            version: RULE_VERSION.into(),
            degraded_loss: 0.2,
            degraded_rtt_ms: 500.0,
            composite: [
                Composite::Any,
                Composite::Any,
                Composite::Any,
                Composite::Any,
                Composite::All,
            ],
            incident_minutes: 5,
            business_start_hour: 8,
            business_end_hour: 16,
        }
    }
}

impl RuleSet {
    /// The composite rule of a group (unknown groups use `Any`).
    pub fn composite_of(&self, group: &str) -> Composite {
        GROUPS
            .iter()
            .position(|g| *g == group)
            .map(|i| self.composite[i])
            .unwrap_or(Composite::Any)
    }

    /// Set [`RuleSet::version`] from the parameters: [`RULE_VERSION`] for the
    /// defaults, otherwise `RULE_VERSION+` the first 8 hex digits of the
    /// SHA-256 of the parameters, so one version always means one rule set.
    pub fn stamp_version(&mut self) {
        let defaults = RuleSet::default();
        let params = |r: &RuleSet| {
            r.parameters()
                .into_iter()
                .skip(1)
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect::<String>()
        };
        let mine = params(self);
        self.version = if mine == params(&defaults) {
            RULE_VERSION.into()
        } else {
            use sha2::{Digest, Sha256};
            let d = Sha256::digest(mine.as_bytes());
            format!(
                "{RULE_VERSION}+{}",
                d[..4]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        };
    }

    /// The parameters that shape stored minute states (rollups): when they
    /// change, rollups still backed by raw results are rebuilt.
    pub fn rollup_fingerprint(&self) -> String {
        self.parameters()
            .into_iter()
            .filter(|(k, _)| {
                // Business hours shape the day rollups' business-hours columns.
                k.starts_with("degraded_") || k.starts_with("composite.") || k == "business_hours"
            })
            .map(|(k, v)| format!("{k}={v};"))
            .collect()
    }

    /// Parameters as printed in reports.
    pub fn parameters(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("rule_version".into(), self.version.clone()),
            ("degraded_loss".into(), format!("{}", self.degraded_loss)),
            (
                "degraded_rtt_ms".into(),
                format!("{}", self.degraded_rtt_ms),
            ),
            (
                "incident_minutes".into(),
                format!("{}", self.incident_minutes),
            ),
            (
                "business_hours".into(),
                format!(
                    "{:02}:00-{:02}:00 Mon-Fri",
                    self.business_start_hour, self.business_end_hour
                ),
            ),
        ];
        for (g, c) in GROUPS.iter().zip(self.composite) {
            let c = match c {
                Composite::Any => "any".to_string(),
                Composite::All => "all".to_string(),
                Composite::Quorum(n) => format!("quorum({n})"),
            };
            v.push((format!("composite.{g}"), c));
        }
        v
    }
}

/// What the rules need from one stored result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// The probe succeeded.
    pub ok: bool,
    /// Headline latency, ms.
    pub rtt_ms: Option<f64>,
    /// Loss fraction (ICMP), 0..=1.
    pub loss: Option<f64>,
}

/// The state of one target during one minute from the results observed in it.
/// No results: unknown. Any success: up, or degraded when the worst answering
/// result exceeds a threshold. Only failures: down.
pub fn target_minute(rules: &RuleSet, obs: &[Observation]) -> MinuteState {
    if obs.is_empty() {
        return MinuteState::Unknown;
    }
    let ok: Vec<&Observation> = obs.iter().filter(|o| o.ok).collect();
    if ok.is_empty() {
        return MinuteState::Down;
    }
    let degraded = ok.iter().any(|o| {
        o.loss.is_some_and(|l| l > rules.degraded_loss)
            || o.rtt_ms.is_some_and(|r| r > rules.degraded_rtt_ms)
    });
    if degraded {
        MinuteState::Degraded
    } else {
        MinuteState::Up
    }
}

/// The state of a group during one minute from its targets' states.
/// Targets not yet monitored are left out; a group none of whose targets was
/// monitored yet is itself unmonitored.
pub fn group_minute(composite: Composite, states: &[MinuteState]) -> MinuteState {
    // Every target of an hour shares the cut-off.
    if states.contains(&MinuteState::NotYet) {
        return MinuteState::NotYet;
    }
    if states.contains(&MinuteState::Maintenance) {
        return MinuteState::Maintenance;
    }
    let monitored: Vec<MinuteState> = states
        .iter()
        .copied()
        .filter(|s| *s != MinuteState::Unmonitored)
        .collect();
    if monitored.is_empty() && !states.is_empty() {
        return MinuteState::Unmonitored;
    }
    let states = &monitored[..];
    let n = states.len() as u32;
    let up = states.iter().filter(|s| **s == MinuteState::Up).count() as u32;
    let deg = states
        .iter()
        .filter(|s| **s == MinuteState::Degraded)
        .count() as u32;
    let unknown = states
        .iter()
        .filter(|s| **s == MinuteState::Unknown)
        .count() as u32;
    if n == 0 || unknown == n {
        return MinuteState::Unknown;
    }
    let need = match composite {
        Composite::Any => 1,
        Composite::All => n,
        Composite::Quorum(q) => q.clamp(1, n),
    };
    if up >= need {
        MinuteState::Up
    } else if up + deg >= need {
        MinuteState::Degraded
    } else if up + deg + unknown >= need {
        // The missing targets could have tipped it either way.
        MinuteState::Unknown
    } else {
        MinuteState::Down
    }
}

/// Minutes per state over a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateMinutes {
    /// Up.
    pub up: u64,
    /// Degraded (counted as available).
    pub degraded: u64,
    /// Down.
    pub down: u64,
    /// No data.
    pub unknown: u64,
    /// Maintenance.
    pub maintenance: u64,
}

impl StateMinutes {
    /// Count one minute.
    pub fn add(&mut self, s: MinuteState) {
        match s {
            MinuteState::Up => self.up += 1,
            MinuteState::Degraded => self.degraded += 1,
            MinuteState::Down => self.down += 1,
            MinuteState::Unknown => self.unknown += 1,
            MinuteState::Maintenance => self.maintenance += 1,
            MinuteState::Unmonitored | MinuteState::NotYet => {}
        }
    }

    /// Add another span.
    pub fn merge(&mut self, o: &StateMinutes) {
        self.up += o.up;
        self.degraded += o.degraded;
        self.down += o.down;
        self.unknown += o.unknown;
        self.maintenance += o.maintenance;
    }

    /// Availability = (up + degraded) / (up + degraded + down); `None`
    /// without any measured minute. Unknown and maintenance are excluded.
    pub fn availability(&self) -> Option<f64> {
        let avail = self.up + self.degraded;
        let measured = avail + self.down;
        (measured > 0).then(|| avail as f64 / measured as f64)
    }

    /// Data coverage = measured minutes / minutes outside maintenance.
    pub fn coverage(&self) -> Option<f64> {
        let measured = self.up + self.degraded + self.down;
        let total = measured + self.unknown;
        (total > 0).then(|| measured as f64 / total as f64)
    }
}

/// Whether the hour starting at `ms` (UTC) is a business hour at a local
/// offset of `offset_min` minutes.
pub fn business_hour_at(rules: &RuleSet, ms: i64, offset_min: i64) -> bool {
    use chrono::{Datelike, Timelike};
    let local =
        chrono::DateTime::from_timestamp_millis(ms + offset_min * 60_000).unwrap_or_default();
    business_hour(rules, local.hour(), local.weekday().num_days_from_monday())
}

/// Whether a local time (hour, weekday 0 = Monday) is within business hours.
pub fn business_hour(rules: &RuleSet, local_hour: u32, weekday_from_monday: u32) -> bool {
    weekday_from_monday < 5
        && local_hour >= rules.business_start_hour
        && local_hour < rules.business_end_hour
}

#[cfg(test)]
mod tests {
    use super::*;
    use MinuteState::*;

    fn ok(rtt: f64) -> Observation {
        Observation {
            ok: true,
            rtt_ms: Some(rtt),
            loss: Some(0.0),
        }
    }
    fn fail() -> Observation {
        Observation {
            ok: false,
            rtt_ms: None,
            loss: Some(1.0),
        }
    }

    #[test]
    fn target_minute_states() {
        let r = RuleSet::default();
        assert_eq!(target_minute(&r, &[]), Unknown);
        assert_eq!(target_minute(&r, &[ok(12.0), ok(15.0)]), Up);
        assert_eq!(target_minute(&r, &[fail(), fail()]), Down);
        // One success in the minute: the target answered.
        assert_eq!(target_minute(&r, &[fail(), ok(10.0)]), Up);
        // 600 ms > 500 ms threshold.
        assert_eq!(target_minute(&r, &[ok(600.0)]), Degraded);
        // 2 of 5 echoes lost = 0.4 > 0.2.
        let lossy = Observation {
            ok: true,
            rtt_ms: Some(20.0),
            loss: Some(0.4),
        };
        assert_eq!(target_minute(&r, &[lossy]), Degraded);
        // Exactly at the threshold is not over it.
        assert_eq!(target_minute(&r, &[ok(500.0)]), Up);
    }

    #[test]
    fn composite_any_all_quorum() {
        assert_eq!(group_minute(Composite::Any, &[Down, Up, Down]), Up);
        assert_eq!(group_minute(Composite::Any, &[Down, Down]), Down);
        assert_eq!(group_minute(Composite::Any, &[Down, Unknown]), Unknown);
        assert_eq!(group_minute(Composite::Any, &[Unknown, Unknown]), Unknown);
        assert_eq!(group_minute(Composite::Any, &[Degraded, Down]), Degraded);
        assert_eq!(group_minute(Composite::Any, &[]), Unknown);
        assert_eq!(group_minute(Composite::All, &[Up, Up, Down]), Down);
        assert_eq!(group_minute(Composite::All, &[Up, Degraded]), Degraded);
        assert_eq!(group_minute(Composite::All, &[Up, Unknown]), Unknown);
        assert_eq!(group_minute(Composite::Quorum(2), &[Up, Down, Up]), Up);
        assert_eq!(group_minute(Composite::Quorum(2), &[Up, Down, Down]), Down);
        assert_eq!(
            group_minute(Composite::Quorum(2), &[Up, Down, Unknown]),
            Unknown
        );
        // Quorum above the group size is capped at the group size.
        assert_eq!(group_minute(Composite::Quorum(5), &[Up, Up]), Up);
        assert_eq!(
            group_minute(Composite::Any, &[Up, Maintenance]),
            Maintenance
        );
        // Targets not yet monitored are left out of the composite.
        assert_eq!(group_minute(Composite::All, &[Up, Unmonitored]), Up);
        assert_eq!(group_minute(Composite::All, &[Down, Unmonitored]), Down);
        assert_eq!(
            group_minute(Composite::Any, &[Unmonitored, Unmonitored]),
            Unmonitored
        );
        let mut m = StateMinutes::default();
        m.add(Unmonitored);
        assert_eq!(m, StateMinutes::default());
        assert_eq!(MinuteState::from_code(Unmonitored.code()), Unmonitored);
    }

    #[test]
    fn availability_excludes_unknown_and_maintenance() {
        // A day: 1380 up, 30 degraded, 20 down, 6 unknown, 4 maintenance.
        let mut m = StateMinutes::default();
        for _ in 0..1380 {
            m.add(Up);
        }
        for _ in 0..30 {
            m.add(Degraded);
        }
        for _ in 0..20 {
            m.add(Down);
        }
        for _ in 0..6 {
            m.add(Unknown);
        }
        for _ in 0..4 {
            m.add(Maintenance);
        }
        // (1380 + 30) / (1380 + 30 + 20) = 1410 / 1430
        let a = m.availability().unwrap();
        assert!((a - 1410.0 / 1430.0).abs() < 1e-12, "{a}");
        // coverage 1430 / 1436
        let c = m.coverage().unwrap();
        assert!((c - 1430.0 / 1436.0).abs() < 1e-12, "{c}");
        // Only unknown: no availability at all, and zero coverage.
        let mut u = StateMinutes::default();
        u.add(Unknown);
        assert_eq!(u.availability(), None);
        assert_eq!(u.coverage(), Some(0.0));
        // An unknown span never changes availability.
        let mut m2 = m;
        for _ in 0..10_000 {
            m2.add(Unknown);
        }
        assert_eq!(m2.availability(), m.availability());
    }

    #[test]
    fn version_names_the_parameters() {
        let mut r = RuleSet::default();
        r.stamp_version();
        assert_eq!(r.version, RULE_VERSION);
        let mut q = RuleSet {
            degraded_rtt_ms: 250.0,
            ..RuleSet::default()
        };
        q.stamp_version();
        assert!(q.version.starts_with("pantau-rules/2+"), "{}", q.version);
        assert_eq!(q.version.len(), RULE_VERSION.len() + 9);
        assert_ne!(q.rollup_fingerprint(), r.rollup_fingerprint());
        // Incident minutes change the version but not the stored states.
        let mut i = RuleSet {
            incident_minutes: 10,
            ..RuleSet::default()
        };
        i.stamp_version();
        assert_ne!(i.version, r.version);
        assert_ne!(i.version, q.version);
        assert_eq!(i.rollup_fingerprint(), r.rollup_fingerprint());
    }

    #[test]
    fn business_hours_and_parameters() {
        let r = RuleSet::default();
        assert!(business_hour(&r, 8, 0));
        assert!(!business_hour(&r, 16, 0));
        assert!(!business_hour(&r, 10, 5));
        let p = r.parameters();
        assert!(p.contains(&("rule_version".into(), RULE_VERSION.into())));
        assert!(p.contains(&("composite.app".into(), "all".into())));
    }
}
