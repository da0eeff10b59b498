//! Link utilisation per period (pemanfaatan bandwidth): average, 95th
//! percentile and peak of the per-interval rates an agent reported, in and
//! out, with the coverage disclosed. Intervals without a rate (first poll,
//! counter reset, gap) are not interpolated: they count as uncovered time.

/// One stored link poll with a rate: the interval `[end - seconds, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// End of the interval (agent clock), ms since the Unix epoch.
    pub end_ms: i64,
    /// Length in seconds.
    pub seconds: f64,
    /// In, bit/s.
    pub in_bps: f64,
    /// Out, bit/s.
    pub out_bps: f64,
    /// Capacity, bit/s (0 unknown).
    pub capacity_bps: f64,
}

/// Statistics of one direction, bit/s and, when the capacity is known, as a ratio.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DirStats {
    /// Time-weighted mean rate.
    pub avg_bps: f64,
    /// 95th percentile of the interval rates (time-weighted, nearest rank).
    pub p95_bps: f64,
    /// Highest interval rate.
    pub peak_bps: f64,
    /// avg / capacity.
    pub avg_ratio: Option<f64>,
    /// p95 / capacity.
    pub p95_ratio: Option<f64>,
    /// peak / capacity.
    pub peak_ratio: Option<f64>,
}

/// A period's summary.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Inbound.
    pub inbound: Option<DirStats>,
    /// Outbound.
    pub outbound: Option<DirStats>,
    /// Seconds of the period covered by rates.
    pub covered_seconds: f64,
    /// Length of the period in seconds.
    pub period_seconds: f64,
    /// covered / period.
    pub coverage: f64,
    /// Capacity used for the ratios: the latest known in the period.
    pub capacity_bps: Option<f64>,
}

/// Clip each interval to `[from_ms, to_ms)` and summarise. Intervals outside
/// the period are ignored; overlapping parts count with their clipped length.
pub fn summarise(intervals: &[Interval], from_ms: i64, to_ms: i64) -> Summary {
    let period_seconds = ((to_ms - from_ms).max(0)) as f64 / 1000.0;
    let mut clipped: Vec<(f64, f64, f64)> = Vec::new();
    let mut capacity = None;
    let mut latest_end = i64::MIN;
    for iv in intervals {
        if !(iv.seconds > 0.0 && iv.in_bps.is_finite() && iv.out_bps.is_finite()) {
            continue;
        }
        let start = iv.end_ms - (iv.seconds * 1000.0).round() as i64;
        let (a, b) = (start.max(from_ms), iv.end_ms.min(to_ms));
        if b <= a {
            continue;
        }
        clipped.push(((b - a) as f64 / 1000.0, iv.in_bps, iv.out_bps));
        if iv.capacity_bps > 0.0 && iv.end_ms >= latest_end {
            latest_end = iv.end_ms;
            capacity = Some(iv.capacity_bps);
        }
    }
    let covered: f64 = clipped.iter().map(|c| c.0).sum();
    let stats = |pick: fn(&(f64, f64, f64)) -> f64| -> Option<DirStats> {
        if clipped.is_empty() || covered <= 0.0 {
            return None;
        }
        let avg = clipped.iter().map(|c| c.0 * pick(c)).sum::<f64>() / covered;
        let mut by_rate: Vec<(f64, f64)> = clipped.iter().map(|c| (pick(c), c.0)).collect();
        by_rate.sort_by(|x, y| x.0.total_cmp(&y.0));
        let peak = by_rate.last().map_or(0.0, |x| x.0);
        // Smallest rate at or below which at least 95 % of the covered time lies.
        let mut acc = 0.0;
        let mut p95 = peak;
        for (rate, secs) in &by_rate {
            acc += secs;
            if acc >= 0.95 * covered - 1e-9 {
                p95 = *rate;
                break;
            }
        }
        let ratio = |v: f64| capacity.map(|c| v / c);
        Some(DirStats {
            avg_bps: avg,
            p95_bps: p95,
            peak_bps: peak,
            avg_ratio: ratio(avg),
            p95_ratio: ratio(p95),
            peak_ratio: ratio(peak),
        })
    };
    Summary {
        inbound: stats(|c| c.1),
        outbound: stats(|c| c.2),
        covered_seconds: covered,
        period_seconds,
        coverage: if period_seconds > 0.0 {
            (covered / period_seconds).min(1.0)
        } else {
            0.0
        },
        capacity_bps: capacity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(end_s: i64, seconds: f64, in_mbps: f64) -> Interval {
        Interval {
            end_ms: end_s * 1000,
            seconds,
            in_bps: in_mbps * 1e6,
            out_bps: 1e6,
            capacity_bps: 20e6,
        }
    }

    #[test]
    fn average_p95_peak_and_coverage() {
        // 100 one-minute intervals: 1..=100 Mbit/s... scaled down to 0.1..10.
        let ivs: Vec<Interval> = (1..=100)
            .map(|i| iv(i * 60, 60.0, i as f64 / 10.0))
            .collect();
        let s = summarise(&ivs, 0, 100 * 60_000);
        let inb = s.inbound.unwrap();
        assert!((inb.avg_bps - 5.05e6).abs() < 1.0);
        assert_eq!(inb.p95_bps, 9.5e6);
        assert_eq!(inb.peak_bps, 10e6);
        assert_eq!(inb.peak_ratio, Some(0.5));
        assert_eq!(s.coverage, 1.0);
        assert_eq!(s.outbound.unwrap().avg_bps, 1e6);
    }

    #[test]
    fn gaps_reduce_coverage_and_are_not_interpolated() {
        // Two covered minutes in a ten-minute period; the rest had no rate.
        let s = summarise(&[iv(60, 60.0, 4.0), iv(600, 60.0, 8.0)], 0, 600_000);
        assert_eq!(s.covered_seconds, 120.0);
        assert!((s.coverage - 0.2).abs() < 1e-12);
        let inb = s.inbound.unwrap();
        assert_eq!(inb.avg_bps, 6e6);
        assert_eq!(inb.peak_bps, 8e6);
        // Nothing at all: no statistics, zero coverage (unknown, not idle).
        let none = summarise(&[], 0, 600_000);
        assert!(none.inbound.is_none());
        assert_eq!(none.coverage, 0.0);
    }

    #[test]
    fn intervals_are_clipped_to_the_period_and_time_weighted() {
        // 30 s of the first interval fall before the period.
        let s = summarise(&[iv(60, 60.0, 10.0), iv(90, 30.0, 1.0)], 30_000, 90_000);
        assert_eq!(s.covered_seconds, 60.0);
        let inb = s.inbound.unwrap();
        assert!((inb.avg_bps - 5.5e6).abs() < 1e-6);
        // Time-weighted p95: 50 % of the time at 1, 50 % at 10 -> 10.
        assert_eq!(inb.p95_bps, 10e6);
        assert_eq!(s.capacity_bps, Some(20e6));
    }
}
