//! The bounds an agent's own configuration keeps to, shared with the
//! collector, which applies them to everything an agent declares or sends
//! (`collector/src/ingest/validate.rs`): a result or declaration outside
//! them cannot come from a working agent and is refused, not stored.

use std::time::Duration;

pub use super::{MAX_INTERVAL, MAX_TIMEOUT, MIN_INTERVAL, MIN_TIMEOUT};

/// Most targets one agent may declare (one Hello). Targets an agent stops
/// declaring are retired: they keep their history but no longer count.
pub const MAX_TARGETS_PER_AGENT: usize = 512;

/// Most echoes per ICMP round (`count`).
pub const MAX_ICMP_COUNT: u32 = 100;

/// Longest duration a probe can measure, µs: nothing outlives its timeout.
pub const MAX_RTT_US: u64 = MAX_TIMEOUT.as_micros() as u64;

/// Highest plausible rate, bits per second (1 Tbit/s: above any OPD link).
pub const MAX_BPS: u64 = 1_000_000_000_000;

/// Most bytes one bandwidth test or counter interval can move at
/// [`MAX_BPS`] for a day.
pub const MAX_BYTES: u64 = MAX_BPS / 8 * 86_400;

/// Longest measuring window of one bandwidth test, µs.
pub const MAX_WINDOW_US: u64 = MAX_TIMEOUT.as_micros() as u64;

/// Longest agent-supplied name (interface, skipped phase...), bytes.
pub const MAX_NAME: usize = 64;

/// Whether `d` is an allowed probe interval.
pub fn interval_ok(d: Duration) -> bool {
    (MIN_INTERVAL..=MAX_INTERVAL).contains(&d)
}

/// Whether `d` is an allowed probe timeout.
pub fn timeout_ok(d: Duration) -> bool {
    (MIN_TIMEOUT..=MAX_TIMEOUT).contains(&d)
}

/// An agent-supplied name with no control character (no CR/LF, no tab,
/// no escape: it ends up in logs, pages and CSV).
pub fn clean_name(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(interval_ok(Duration::from_secs(30)));
        assert!(!interval_ok(Duration::from_millis(1 << 52)));
        assert!(!interval_ok(Duration::from_millis(999)));
        assert!(timeout_ok(Duration::from_secs(5)));
        assert!(!timeout_ok(Duration::ZERO));
        assert_eq!(MAX_RTT_US, 120_000_000);
        assert!(clean_name("eth0 uplink"));
        assert!(!clean_name("a\r\n=cmd"));
        assert!(!clean_name("tab\there"));
    }
}
