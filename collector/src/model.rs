//! Domain types of the collector. Wire types are converted in `ingest::validate`.
//! Probe kinds, groups and outcomes are the `pantau_core` enums; their
//! `as_str` names are the text stored in SQL and shown in labels.

use std::fmt;

pub use pantau_core::{Group, Outcome, ProbeKind};

/// What a stored result is: the result of a probe, or an agent heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowKind {
    /// A probe's result.
    Probe(ProbeKind),
    /// Agent health, carried by no target.
    Heartbeat,
}

impl RowKind {
    /// Stored and label name: the probe kind's, or `heartbeat`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Probe(k) => k.as_str(),
            Self::Heartbeat => "heartbeat",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "heartbeat" => Some(Self::Heartbeat),
            _ => ProbeKind::parse(s).map(Self::Probe),
        }
    }

    /// The probe kind, unless this is a heartbeat.
    pub fn probe(self) -> Option<ProbeKind> {
        match self {
            Self::Probe(k) => Some(k),
            Self::Heartbeat => None,
        }
    }
}

impl From<ProbeKind> for RowKind {
    fn from(k: ProbeKind) -> Self {
        Self::Probe(k)
    }
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agent and OPD a stream belongs to, derived from its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// Agent id.
    pub agent_id: String,
    /// OPD id.
    pub opd_id: String,
}

/// A target as declared by an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetDecl {
    /// Target id.
    pub id: String,
    /// Group.
    pub group: Group,
    /// Probe kind.
    pub kind: ProbeKind,
    /// Probed address.
    pub address: String,
    /// Label.
    pub label: String,
    /// Interval, ms.
    pub interval_ms: u64,
    /// Timeout, ms.
    pub timeout_ms: u64,
}

/// What an agent said in Hello, validated.
#[derive(Debug, Clone)]
pub struct HelloInfo {
    /// Agent software version.
    pub version: String,
    /// Config hash.
    pub config_hash: String,
    /// Host name.
    pub hostname: String,
    /// The spool epoch this stream delivers.
    pub epoch: u64,
    /// Agent's clock when it said Hello.
    pub agent_time_ms: Option<i64>,
    /// Declared targets.
    pub targets: Vec<TargetDecl>,
}

/// One validated result ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// Epoch.
    pub epoch: u64,
    /// Sequence.
    pub seq: u64,
    /// Target id ("" for heartbeats).
    pub target_id: String,
    /// Group of the target ("" for heartbeats).
    pub group: String,
    /// A probe kind, or heartbeat.
    pub kind: RowKind,
    /// When it was observed, ms (UTC): the agent's clock, or the placed
    /// time when that clock was off (see `clock_correction_ms`).
    pub observed_at_ms: i64,
    /// Outcome.
    pub outcome: Outcome,
    /// Failure detail.
    pub detail: String,
    /// Headline duration, ms.
    pub value_ms: Option<f64>,
    /// ICMP sent.
    pub sent: Option<u32>,
    /// ICMP received.
    pub received: Option<u32>,
    /// Kind-specific measurements.
    pub data: serde_json::Value,
    /// Arrived well after it was observed (after an outage).
    pub late: bool,
    /// `future` or `past` when the agent's timestamp is not to be trusted.
    pub clock_flag: Option<&'static str>,
    /// The agent's own timestamp, ms, as sent. `observed_at_ms` is where the
    /// result is placed: the same, unless the agent's clock was off by more
    /// than the skew threshold (see `ingest::clock`).
    pub agent_time_ms: i64,
    /// The offset (collector minus agent clock, ms) added to place the
    /// result, when the agent's clock was not used.
    pub clock_correction_ms: Option<i64>,
}

impl ResultRow {
    /// Loss ratio for ICMP rows.
    pub fn loss(&self) -> Option<f64> {
        match (self.sent, self.received) {
            (Some(s), Some(r)) if s > 0 => Some(f64::from(s.saturating_sub(r)) / f64::from(s)),
            _ => None,
        }
    }
}
