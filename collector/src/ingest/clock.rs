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

/// Set `late` and `clock_flag` on rows received at `now_ms`. `offset_ms` is
/// the collector clock minus the agent clock (estimated at Hello); `max_age_ms`
/// is the oldest a result may be (the agents' spool age bound).
pub fn stamp(
    rows: &mut [ResultRow],
    now_ms: i64,
    offset_ms: i64,
    max_age_ms: i64,
    cat: &Catalogue,
) {
    for r in rows {
        let corrected = r.observed_at_ms.saturating_add(offset_ms);
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

    fn row(target: &str, observed: i64) -> ResultRow {
        ResultRow {
            epoch: 1,
            seq: 1,
            target_id: target.into(),
            group: "intranet".into(),
            kind: "tcp",
            observed_at_ms: observed,
            outcome: "ok",
            detail: String::new(),
            value_ms: None,
            sent: None,
            received: None,
            data: serde_json::json!({}),
            late: false,
            clock_flag: None,
        }
    }

    #[test]
    fn late_and_untrusted_times_are_flagged() {
        let cat: Catalogue = [("slow".to_string(), ("app".to_string(), "tcp", 300_000))]
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
        // An agent clock 2 minutes behind is corrected by the offset before judging lateness.
        let mut r = vec![row("fast", now - 120_000 - 5_000)];
        stamp(&mut r, now, 120_000, 8 * day, &cat);
        assert!(!r[0].late);
    }
}
