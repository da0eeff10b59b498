//! Judging agent timestamps: which results arrived late (after an outage),
//! and which carry a time that cannot be trusted. Pure functions.

use crate::ingest::validate::Catalogue;
use crate::model::ResultRow;

/// A result counts as late when it arrives more than this after it was
/// observed, or more than three of its target's intervals, whichever is
/// larger. Normal delivery takes about a second (one fsync interval).
pub const LATE_AFTER_MS: i64 = 10_000;
/// Timestamps further ahead of the collector's clock than this are flagged `future`.
pub const MAX_FUTURE_MS: i64 = 5 * 60_000;

/// An agent clock further off than this (either way) is not used to place
/// its results: they are placed by the collector's offset estimate instead,
/// keeping the agent's own time beside it. Ten seconds is far above the
/// estimate's own error (half a round trip: 0.3 s over VSAT) and far below a
/// minute, the resolution of every availability figure.
pub const CLOCK_SKEW_MAX_MS: i64 = 10_000;

/// Set `late`, `clock_flag` and the placement of rows received at `now_ms`.
/// `offset_ms` is the collector clock minus the agent clock (estimated at
/// Hello); `max_age_ms` is the oldest a result may be (the agents' spool age
/// bound). Beyond [`CLOCK_SKEW_MAX_MS`], `observed_at_ms` becomes the agent's
/// time plus the offset and `clock_correction_ms` records the offset; the
/// agent's time stays in `agent_time_ms`. The `future`/`past` checks then
/// apply to the placed time.
pub fn stamp(
    rows: &mut [ResultRow],
    now_ms: i64,
    offset_ms: i64,
    max_age_ms: i64,
    cat: &Catalogue,
) {
    for r in rows {
        r.agent_time_ms = r.observed_at_ms;
        if offset_ms.abs() > CLOCK_SKEW_MAX_MS {
            r.observed_at_ms = r.observed_at_ms.saturating_add(offset_ms);
            r.clock_correction_ms = Some(offset_ms);
        }
        let corrected = r.agent_time_ms.saturating_add(offset_ms);
        let interval = cat.get(&r.target_id).map_or(0, |(_, _, iv)| *iv as i64);
        r.late = now_ms - corrected > LATE_AFTER_MS.max(3 * interval);
        r.clock_flag = if r.observed_at_ms > now_ms + MAX_FUTURE_MS {
            Some("future")
        } else if r.observed_at_ms < now_ms - max_age_ms {
            Some("past")
        } else {
            None
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Outcome, ProbeKind};

    fn row(target: &str, observed: i64) -> ResultRow {
        ResultRow {
            epoch: 1,
            seq: 1,
            target_id: target.into(),
            group: "intranet".into(),
            kind: ProbeKind::Tcp.into(),
            observed_at_ms: observed,
            outcome: Outcome::Ok,
            detail: String::new(),
            value_ms: None,
            sent: None,
            received: None,
            data: serde_json::json!({}),
            late: false,
            clock_flag: None,
            agent_time_ms: observed,
            clock_correction_ms: None,
        }
    }

    #[test]
    fn late_and_untrusted_times_are_flagged() {
        let cat: Catalogue = [("slow".to_string(), (Group::App, ProbeKind::Tcp, 300_000))]
            .into_iter()
            .collect();
        let now = 1_000_000_000;
        let day = 86_400_000;
        let mut rows = vec![
            row("fast", now - 5_000),      // on time
            row("fast", now - 11_000),     // late: over ten seconds
            row("slow", now - 600_000),    // 10 min, but 3 intervals are 15 min: not late
            row("slow", now - 901_000),    // late
            row("fast", now + 6 * 60_000), // agent clock far ahead
            row("fast", now - 9 * day),    // older than the spool can hold
        ];
        stamp(&mut rows, now, 0, 8 * day, &cat);
        let late: Vec<bool> = rows.iter().map(|r| r.late).collect();
        assert_eq!(late, [false, true, false, true, false, true]);
        let flags: Vec<Option<&str>> = rows.iter().map(|r| r.clock_flag).collect();
        assert_eq!(
            flags,
            [None, None, None, None, Some("future"), Some("past")]
        );
        assert!(rows.iter().all(|r| r.clock_correction_ms.is_none()));
        // An agent clock 2 minutes behind: judged late by the corrected time,
        // placed by the offset, its own time kept.
        let mut r = vec![row("fast", now - 120_000 - 5_000)];
        stamp(&mut r, now, 120_000, 8 * day, &cat);
        assert!(!r[0].late);
        assert_eq!(r[0].observed_at_ms, now - 5_000);
        assert_eq!(r[0].agent_time_ms, now - 125_000);
        assert_eq!(r[0].clock_correction_ms, Some(120_000));
        // Three hours ahead: placed where it happened, not flagged `future`.
        let mut r = vec![row("fast", now + 3 * 3_600_000)];
        stamp(&mut r, now, -3 * 3_600_000, 8 * day, &cat);
        assert_eq!((r[0].observed_at_ms, r[0].clock_flag), (now, None));
        // Within the threshold the agent's own time is used.
        let mut r = vec![row("fast", now - 3_000)];
        stamp(&mut r, now, CLOCK_SKEW_MAX_MS, 8 * day, &cat);
        assert_eq!(
            (r[0].observed_at_ms, r[0].clock_correction_ms),
            (now - 3_000, None)
        );
    }
}
