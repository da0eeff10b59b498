//! Conflicting duplicates: a result whose delivery identity (agent, epoch,
//! seq) is already stored with different content. An agent resending a
//! result after a lost ack sends the same content again (an ordinary
//! replay); different content means two writers numbered results from one
//! spool (a cloned SD card, a copied spool directory). The stored result
//! stays; the other one is kept aside, never counted. What counts as the
//! same result is decided here, for every backend.

use crate::model::ResultRow;

/// What a result says, exactly as the agent sent it. Two results with one
/// delivery identity are the same result exactly when these are equal.
/// Collector-side fields (received time, `late`, clock flag, clock
/// correction) are not content: they can differ between two deliveries of
/// one result.
#[derive(Debug, Clone)]
pub struct ResultContent {
    /// Target id ("" for heartbeats).
    pub target: String,
    /// Probe kind.
    pub kind: String,
    /// The agent's own timestamp, ms.
    pub observed_at_ms: i64,
    /// Outcome name.
    pub outcome: String,
    /// Failure detail.
    pub detail: String,
    /// Headline duration, ms.
    pub value_ms: Option<f64>,
    /// ICMP echoes sent.
    pub sent: Option<i64>,
    /// ICMP echoes received.
    pub received: Option<i64>,
    /// Kind-specific measurements, as the JSON text the store writes.
    pub data: String,
}

impl PartialEq for ResultContent {
    fn eq(&self, o: &Self) -> bool {
        // `==` on f64 but NaN equal to NaN: one value read twice is one value.
        let same_value = match (self.value_ms, o.value_ms) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
            _ => false,
        };
        same_value
            && self.target == o.target
            && self.kind == o.kind
            && self.observed_at_ms == o.observed_at_ms
            && self.outcome == o.outcome
            && self.detail == o.detail
            && self.sent == o.sent
            && self.received == o.received
            && self.data == o.data
    }
}

impl ResultContent {
    /// The content of a received row.
    pub fn of(r: &ResultRow) -> Self {
        ResultContent {
            target: r.target_id.clone(),
            kind: r.kind.to_string(),
            // The agent's own time: the placement may differ between two
            // deliveries of the same result (a new offset estimate).
            observed_at_ms: r.agent_time_ms,
            outcome: r.outcome.to_string(),
            detail: r.detail.clone(),
            value_ms: r.value_ms,
            sent: r.sent.map(i64::from),
            received: r.received.map(i64::from),
            data: r.data.to_string(),
        }
    }

    /// As kept in `result_conflict.content`: one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "target": self.target,
            "kind": self.kind,
            "observed_at_ms": self.observed_at_ms,
            "outcome": self.outcome,
            "detail": self.detail,
            "value_ms": self.value_ms,
            "sent": self.sent,
            "received": self.received,
            "data": serde_json::from_str::<serde_json::Value>(&self.data)
                .unwrap_or(serde_json::Value::String(self.data.clone())),
        })
        .to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Outcome, ProbeKind};

    /// A stored ICMP result, shared with the SQLite conflict tests.
    pub(crate) fn row() -> ResultRow {
        ResultRow {
            epoch: 5,
            seq: 1,
            target_id: "core".into(),
            group: "intranet".into(),
            kind: ProbeKind::Icmp.into(),
            observed_at_ms: 1_000,
            outcome: Outcome::Ok,
            detail: String::new(),
            value_ms: Some(1.5),
            sent: Some(5),
            received: Some(5),
            data: serde_json::json!({"samples_us": [1500]}),
            late: false,
            clock_flag: None,
            agent_time_ms: 1_000,
            clock_correction_ms: None,
        }
    }

    #[test]
    fn collector_side_fields_are_not_content() {
        let a = row();
        let mut b = row();
        b.late = true;
        b.clock_flag = Some("past");
        b.group = "other".into();
        // Placed elsewhere by a clock correction: the same result.
        b.observed_at_ms += 3_600_000;
        b.clock_correction_ms = Some(3_600_000);
        assert_eq!(ResultContent::of(&a), ResultContent::of(&b));
        let mut nan = row();
        nan.value_ms = Some(f64::NAN);
        assert_eq!(ResultContent::of(&nan), ResultContent::of(&nan.clone()));
    }

    type Change = (&'static str, fn(&mut ResultRow));

    #[test]
    fn every_agent_field_is_content() {
        let base = ResultContent::of(&row());
        let changes: Vec<Change> = vec![
            ("target", |r| r.target_id = "dc".into()),
            ("kind", |r| r.kind = ProbeKind::Tcp.into()),
            ("agent time", |r| r.agent_time_ms += 1),
            ("outcome", |r| r.outcome = Outcome::Timeout),
            ("detail", |r| r.detail = "no reply".into()),
            ("value_ms", |r| r.value_ms = Some(1.6)),
            ("value_ms none", |r| r.value_ms = None),
            ("sent", |r| r.sent = Some(4)),
            ("received", |r| r.received = None),
            ("data", |r| {
                r.data = serde_json::json!({"samples_us": [1501]})
            }),
        ];
        for (name, change) in changes {
            let mut r = row();
            change(&mut r);
            assert_ne!(ResultContent::of(&r), base, "{name} must count as content");
        }
    }

    #[test]
    fn content_json_carries_every_field() {
        let v: serde_json::Value =
            serde_json::from_str(&ResultContent::of(&row()).to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"target": "core", "kind": "icmp", "observed_at_ms": 1000,
                "outcome": "ok", "detail": "", "value_ms": 1.5, "sent": 5, "received": 5,
                "data": {"samples_us": [1500]}})
        );
    }
}
