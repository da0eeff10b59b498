//! Failed authentications per source address: after [`MAX_FAILURES`] within
//! [`WINDOW`] from one IP, that IP is refused for [`BLOCK`] without a store
//! lookup. In process, bounded: at most [`CAPACITY`] addresses are tracked.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within [`WINDOW`] that block an address.
pub(crate) const MAX_FAILURES: u32 = 10;
/// The window failures are counted in.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);
/// How long a blocked address stays blocked.
pub(crate) const BLOCK: Duration = Duration::from_secs(60);
/// Addresses tracked at most.
pub(crate) const CAPACITY: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Entry {
    /// Still worth keeping at `now`.
    fn live(&self, now: Instant) -> bool {
        self.blocked_until.is_some_and(|b| b > now) || now < self.window_start + WINDOW
    }
}

/// The per-address failure table shared by the Stream and Enrol RPCs.
#[derive(Debug, Default)]
pub(crate) struct FailureLimiter {
    by_ip: Mutex<HashMap<IpAddr, Entry>>,
}

impl FailureLimiter {
    /// `Err(retry_after)` while `ip` is blocked.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(ip, Instant::now())
    }

    /// Count a failed authentication from `ip`.
    pub(crate) fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let table = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        match table.get(&ip).and_then(|e| e.blocked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        let mut table = self.by_ip.lock().unwrap_or_else(|p| p.into_inner());
        if !table.contains_key(&ip) && table.len() >= CAPACITY {
            table.retain(|_, e| e.live(now));
            if table.len() >= CAPACITY {
                // Still full of live entries: forget the oldest window.
                if let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, e)| e.window_start)
                    .map(|(k, _)| *k)
                {
                    table.remove(&oldest);
                }
            }
        }
        let e = table.entry(ip).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now >= e.window_start + WINDOW {
            *e = Entry {
                window_start: now,
                failures: 0,
                blocked_until: e.blocked_until.filter(|b| *b > now),
            };
        }
        e.failures += 1;
        if e.failures >= MAX_FAILURES {
            e.blocked_until = Some(now + BLOCK);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_ip.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_failures_in_a_minute_block_that_address_only_for_a_minute() {
        let l = FailureLimiter::default();
        let t = Instant::now();
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let good: IpAddr = "192.0.2.2".parse().unwrap();
        for i in 0..MAX_FAILURES - 1 {
            l.record_failure_at(bad, t + Duration::from_secs(u64::from(i)));
            assert!(l.check_at(bad, t + Duration::from_secs(9)).is_ok());
        }
        l.record_failure_at(bad, t + Duration::from_secs(10));
        assert!(l.check_at(bad, t + Duration::from_secs(11)).is_err());
        assert!(l.check_at(good, t + Duration::from_secs(11)).is_ok());
        assert!(l.check_at(bad, t + Duration::from_secs(71)).is_ok());
    }

    #[test]
    fn slow_failures_never_block() {
        let l = FailureLimiter::default();
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..30u64 {
            l.record_failure_at(ip, t + Duration::from_secs(i * 10));
        }
        assert!(l.check_at(ip, t + Duration::from_secs(300)).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = FailureLimiter::default();
        let t = Instant::now();
        for i in 0..(CAPACITY as u32 + 100) {
            l.record_failure_at(IpAddr::from(i.to_be_bytes()), t);
        }
        assert_eq!(l.len(), CAPACITY);
    }
}
