//! A mergeable latency distribution: fixed logarithmic buckets, so hours merge
//! into days and days into years by adding counts, and a percentile over any
//! period is read from the merged counts (within one bucket, about 9 %),
//! never averaged from per-hour percentiles.

/// Number of buckets.
pub const BUCKETS: usize = 80;
/// Lower bound of bucket 1, ms; bucket 0 holds everything below it.
const BASE_MS: f64 = 0.1;
/// Four buckets per doubling.
const PER_OCTAVE: f64 = 4.0;

/// Counts per bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: [u32; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: [0; BUCKETS],
        }
    }
}

fn bucket(ms: f64) -> usize {
    if ms.is_nan() || ms < BASE_MS {
        return 0;
    }
    let i = ((ms / BASE_MS).log2() * PER_OCTAVE).floor() as usize + 1;
    i.min(BUCKETS - 1)
}

/// Lower bound of bucket `i`, ms.
fn lower(i: usize) -> f64 {
    if i == 0 {
        0.0
    } else {
        BASE_MS * 2f64.powf((i - 1) as f64 / PER_OCTAVE)
    }
}

impl Histogram {
    /// Record one latency.
    pub fn record(&mut self, ms: f64) {
        let b = bucket(ms);
        self.counts[b] = self.counts[b].saturating_add(1);
    }

    /// Add another histogram.
    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| *c as u64).sum()
    }

    /// The `q` quantile (0..=1), as the geometric middle of its bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                let lo = lower(i);
                let hi = lower(i + 1);
                return Some(if i == 0 { hi / 2.0 } else { (lo * hi).sqrt() });
            }
        }
        None
    }

    /// Little-endian bytes for storage; trailing empty buckets are dropped.
    pub fn to_bytes(&self) -> Vec<u8> {
        let last = self
            .counts
            .iter()
            .rposition(|c| *c != 0)
            .map_or(0, |i| i + 1);
        self.counts[..last]
            .iter()
            .flat_map(|c| c.to_le_bytes())
            .collect()
    }

    /// Read stored bytes (extra or partial bytes are ignored).
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut h = Histogram::default();
        for (i, chunk) in b.chunks_exact(4).take(BUCKETS).enumerate() {
            h.counts[i] = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        h
    }

    /// Add stored bytes without building another histogram.
    pub fn merge_bytes(&mut self, b: &[u8]) {
        for (i, chunk) in b.chunks_exact(4).take(BUCKETS).enumerate() {
            let c = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            self.counts[i] = self.counts[i].saturating_add(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_a_bucket() {
        let mut h = Histogram::default();
        for ms in 1..=100 {
            h.record(ms as f64);
        }
        let p50 = h.quantile(0.5).unwrap();
        let p95 = h.quantile(0.95).unwrap();
        assert!((p50 / 50.0 - 1.0).abs() < 0.1, "p50 {p50}");
        assert!((p95 / 95.0 - 1.0).abs() < 0.1, "p95 {p95}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn merged_percentile_is_not_an_average_of_percentiles() {
        // Hour A: 99 fast samples; hour B: 1 sample, 600 ms (VSAT).
        let mut a = Histogram::default();
        for _ in 0..99 {
            a.record(10.0);
        }
        let mut b = Histogram::default();
        b.record(600.0);
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.count(), 100);
        // p99 of the merged period is the fast sample (rank 99 of 100) ...
        assert!((m.quantile(0.99).unwrap() / 10.0 - 1.0).abs() < 0.1);
        // ... and the maximum is the slow one.
        assert!((m.quantile(1.0).unwrap() / 600.0 - 1.0).abs() < 0.1);
        // Bytes round trip and merge_bytes equals merge.
        let mut x = a.clone();
        x.merge_bytes(&b.to_bytes());
        assert_eq!(x, m);
        assert_eq!(Histogram::from_bytes(&m.to_bytes()), m);
    }
}
