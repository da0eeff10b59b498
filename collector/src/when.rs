//! The one way people give a date or a time, on the command line and in
//! the console's forms: a day `YYYY-MM-DD` (a whole day in the configured
//! zone), or an instant — RFC 3339 (`2026-12-04T22:00:00+08:00`) or a wall
//! time `YYYY-MM-DD HH:MM[:SS]` (also with `T`) in the configured zone.
//! What a day means depends on where it is used: the start of a period is
//! its first minute, the end of a period its last (inclusive days), and a
//! report period is made of days (an instant names the day it falls in).

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// A day or an instant, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// A whole day in the configured zone.
    Day(NaiveDate),
    /// An instant with its own offset, UTC ms.
    At(i64),
    /// A wall time in the configured zone.
    Local(NaiveDateTime),
}

/// A value that is neither a day nor a time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` bukan tanggal atau waktu: tulis hari 2026-12-04, waktu 2026-12-04 22:00 (zona \
     kolektor) atau RFC 3339 / is not a date or time: write a day 2026-12-04, a time \
     2026-12-04 22:00 (the collector's zone) or RFC 3339"
)]
pub struct BadWhen(pub String);

const WALL: [&str; 4] = [
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
];

impl std::str::FromStr for When {
    type Err = BadWhen;

    fn from_str(s: &str) -> Result<Self, BadWhen> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Ok(When::At(t.timestamp_millis()));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(When::Day(d));
        }
        WALL.iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(When::Local)
            .ok_or_else(|| BadWhen(s.to_string()))
    }
}

impl When {
    /// The first moment, UTC ms: a day's local midnight.
    pub fn start_ms(self, offset_min: i64) -> i64 {
        match self {
            When::Day(d) => local_ms(d.and_time(NaiveTime::MIN), offset_min),
            When::At(ms) => ms,
            When::Local(t) => local_ms(t, offset_min),
        }
    }

    /// The end, UTC ms (exclusive): a day's next local midnight, so that
    /// `--to 2026-12-04` includes the whole of that day.
    pub fn end_ms(self, offset_min: i64) -> i64 {
        match self {
            When::Day(d) => local_ms((d + Duration::days(1)).and_time(NaiveTime::MIN), offset_min),
            other => other.start_ms(offset_min),
        }
    }

    /// The local day it names or falls in.
    pub fn day(self, offset_min: i64) -> NaiveDate {
        match self {
            When::Day(d) => d,
            When::Local(t) => t.date(),
            When::At(ms) => DateTime::from_timestamp_millis(ms + offset_min * 60_000)
                .map_or(NaiveDate::MIN, |t| t.date_naive()),
        }
    }

    /// The instant, when one was given (not a whole day).
    pub fn instant_ms(self, offset_min: i64) -> Option<i64> {
        match self {
            When::Day(_) => None,
            other => Some(other.start_ms(offset_min)),
        }
    }
}

fn local_ms(t: NaiveDateTime, offset_min: i64) -> i64 {
    t.and_utc().timestamp_millis() - offset_min * 60_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITA: i64 = 480;

    fn w(s: &str) -> When {
        s.parse().unwrap()
    }

    #[test]
    fn days_instants_and_wall_times_mean_the_same_everywhere() {
        let day = w("2026-12-04");
        // 2026-12-04 00:00 WITA = 2026-12-03T16:00Z.
        let midnight = w("2026-12-03T16:00:00Z").start_ms(WITA);
        assert_eq!(day.start_ms(WITA), midnight);
        assert_eq!(day.end_ms(WITA), midnight + 86_400_000);
        assert_eq!(w("2026-12-04 00:00").start_ms(WITA), midnight);
        assert_eq!(w("2026-12-04T00:00:00").start_ms(WITA), midnight);
        assert_eq!(w("2026-12-04T00:00:00+08:00").start_ms(WITA), midnight);
        assert_eq!(
            w("2026-12-04 22:00").end_ms(WITA),
            w("2026-12-04T14:00:00Z").start_ms(0)
        );
        // The day an instant falls in is the local one.
        assert_eq!(w("2026-12-03T17:00:00Z").day(WITA), day.day(WITA));
        assert_eq!(
            w("2026-12-03T15:59:59Z").day(WITA).to_string(),
            "2026-12-03"
        );
        assert_eq!(day.instant_ms(WITA), None);
        assert_eq!(
            w("2026-12-04 08:00").instant_ms(WITA),
            Some(midnight + 8 * 3_600_000)
        );
    }

    #[test]
    fn anything_else_is_refused_in_both_languages() {
        for bad in [
            "kemarin",
            "04-12-2026",
            "2026-13-01",
            "2026-12-04 25:00",
            "",
        ] {
            let e = bad.parse::<When>().unwrap_err().to_string();
            assert!(
                e.contains("bukan tanggal atau waktu") && e.contains("is not a date"),
                "{e}"
            );
        }
    }
}
