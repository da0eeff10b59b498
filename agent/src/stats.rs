//! Statistics over RTT samples. Pure functions.

use std::time::Duration;

use crate::model::PingStats;

/// Build round statistics from the replies that arrived (in send order).
pub fn ping_stats(sent: u32, samples: Vec<Duration>) -> PingStats {
    let received = samples.len() as u32;
    if samples.is_empty() {
        return PingStats {
            sent,
            received,
            ..PingStats::default()
        };
    }
    let micros: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    let n = micros.len() as f64;
    let mean = micros.iter().sum::<f64>() / n;
    let var = micros.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let us = |x: f64| Duration::from_nanos((x * 1000.0).round() as u64);
    PingStats {
        sent,
        received,
        min: *samples.iter().min().unwrap_or(&Duration::ZERO),
        max: *samples.iter().max().unwrap_or(&Duration::ZERO),
        avg: us(mean),
        stddev: us(var.sqrt()),
        samples,
    }
}

/// Loss as a fraction 0..=1; 0 when nothing was sent.
pub fn loss_ratio(sent: u32, received: u32) -> f64 {
    if sent == 0 {
        0.0
    } else {
        f64::from(sent.saturating_sub(received)) / f64::from(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn stats_of_known_samples() {
        // 10, 20, 30, 40: mean 25, population variance 125 -> stddev 11.180 ms.
        let s = ping_stats(5, vec![ms(10), ms(20), ms(30), ms(40)]);
        assert_eq!((s.sent, s.received), (5, 4));
        assert_eq!(s.min, ms(10));
        assert_eq!(s.max, ms(40));
        assert_eq!(s.avg, ms(25));
        assert_eq!(s.stddev.as_micros(), 11_180);
        assert!((loss_ratio(s.sent, s.received) - 0.2).abs() < 1e-12);
    }

    #[test]
    fn no_replies_is_total_loss_with_zero_rtts() {
        let s = ping_stats(5, vec![]);
        assert_eq!(s.received, 0);
        assert_eq!(s.avg, Duration::ZERO);
        assert_eq!(loss_ratio(5, 0), 1.0);
        assert_eq!(loss_ratio(0, 0), 0.0);
    }
}
