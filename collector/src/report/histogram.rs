//! A mergeable latency distribution: fixed logarithmic buckets, so hours merge
//! into days and days into years by adding counts, and a percentile over any
//! period is read from the merged counts (within one bucket, about 9 %),
//! never averaged from per-hour percentiles.
//!
//! Range: bucket 1 starts at 0.1 ms / 2^7 (about 0.78 µs), so LAN answers
//! well under 0.1 ms keep their value; the last bucket holds everything from
//! about 74 s. Stored bytes (version 2): `[2, first]` then little-endian u32
//! counts from bucket `first` to the last non-empty one. Histograms stored
//! before (version 1: u32 counts from bucket 0, whose bucket 1 started at
//! 0.1 ms) still decode and merge: their buckets map exactly onto the
//! current ones, and their "below 0.1 ms" count is placed at 0.05 ms, the
//! value it was reported as.

/// Number of buckets.
pub const BUCKETS: usize = 108;
/// Buckets below 0.1 ms added in version 2 (seven doublings).
const EXTRA: usize = 28;
/// Lower bound of bucket 1, ms; bucket 0 holds everything below it.
const BASE_MS: f64 = 0.1 / 128.0;
/// Four buckets per doubling.
const PER_OCTAVE: f64 = 4.0;
/// Tag of the current stored format.
const VERSION: u8 = 2;
/// Where a version-1 "below 0.1 ms" count goes: the bucket starting at 0.05 ms.
const V1_BELOW: usize = EXTRA - 3;

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

/// Stored counts as (bucket, count), in either format.
fn decode(b: &[u8]) -> impl Iterator<Item = (usize, u32)> + '_ {
    let (start, body, v1) = if b.len() % 4 == 2 && b[0] == VERSION {
        (b[1] as usize, &b[2..], false)
    } else {
        (0, b, true)
    };
    body.chunks_exact(4).enumerate().filter_map(move |(i, c)| {
        let n = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let at = match (v1, i) {
            (true, 0) => V1_BELOW,
            (true, i) => i + EXTRA,
            (false, i) => start + i,
        };
        (at < BUCKETS && n > 0).then_some((at, n))
    })
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

    /// Bytes for storage (format version 2, see the module text); empty
    /// for an empty histogram.
    pub fn to_bytes(&self) -> Vec<u8> {
        let Some(first) = self.counts.iter().position(|c| *c != 0) else {
            return Vec::new();
        };
        let last = self.counts.iter().rposition(|c| *c != 0).unwrap_or(first);
        let mut out = vec![VERSION, first as u8];
        out.extend(
            self.counts[first..=last]
                .iter()
                .flat_map(|c| c.to_le_bytes()),
        );
        out
    }

    /// Read stored bytes of either format (extra or partial bytes are ignored).
    pub fn from_bytes(b: &[u8]) -> Self {
        let mut h = Histogram::default();
        h.merge_bytes(b);
        h
    }

    /// Add stored bytes of either format without building another histogram.
    pub fn merge_bytes(&mut self, b: &[u8]) {
        for (i, c) in decode(b) {
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

    /// Version-1 bytes as the collector wrote them before the range grew:
    /// u32 counts from bucket 0 (< 0.1 ms), bucket 1 starting at 0.1 ms.
    fn v1_bytes(values_ms: &[f64]) -> Vec<u8> {
        let mut counts = [0u32; 80];
        for v in values_ms {
            let i = if *v < 0.1 {
                0
            } else {
                (((v / 0.1).log2() * 4.0).floor() as usize + 1).min(79)
            };
            counts[i] += 1;
        }
        let last = counts.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
        counts[..last]
            .iter()
            .flat_map(|c| c.to_le_bytes())
            .collect()
    }

    #[test]
    fn sub_tenth_millisecond_values_keep_their_size() {
        let mut h = Histogram::default();
        for _ in 0..10 {
            h.record(0.02);
        }
        h.record(0.001);
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 / 0.02 - 1.0).abs() < 0.1, "p50 {p50}");
        let p0 = h.quantile(0.0).unwrap();
        assert!((p0 / 0.001 - 1.0).abs() < 0.1, "min {p0}");
        // The top of the range is where it was: about 74 s and beyond.
        let mut slow = Histogram::default();
        slow.record(30_000.0);
        assert!((slow.quantile(0.5).unwrap() / 30_000.0 - 1.0).abs() < 0.1);
        assert_eq!(bucket(1e9), BUCKETS - 1);
        assert_eq!(Histogram::from_bytes(&h.to_bytes()), h);
        assert!(Histogram::default().to_bytes().is_empty());
    }

    #[test]
    fn version_one_bytes_decode_and_merge() {
        let old = v1_bytes(&[0.05, 0.5, 12.0, 12.0, 600.0]);
        assert_eq!(old.len() % 4, 0);
        let h = Histogram::from_bytes(&old);
        assert_eq!(h.count(), 5);
        // Old buckets map exactly onto new ones: same values come back.
        let mut fresh = Histogram::default();
        for v in [0.5, 12.0, 12.0, 600.0] {
            fresh.record(v);
        }
        let mut old_above = h.clone();
        old_above.counts[V1_BELOW] = 0;
        assert_eq!(old_above, fresh);
        // The old "below 0.1 ms" count reads as about 0.05 ms.
        let p0 = h.quantile(0.0).unwrap();
        assert!((0.05..0.06).contains(&p0), "{p0}");
        // Old and new bytes merge into one distribution.
        let mut m = Histogram::default();
        m.merge_bytes(&old);
        m.merge_bytes(&fresh.to_bytes());
        assert_eq!(m.count(), 9);
        assert!((m.quantile(0.5).unwrap() / 12.0 - 1.0).abs() < 0.1);
        assert_eq!(Histogram::from_bytes(&m.to_bytes()), m);
    }
}
