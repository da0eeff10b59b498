//! The probe scheduler: each target runs on its own task, spread across its
//! interval with a stable offset plus a little jitter, bounded by a shared
//! semaphore, so one slow probe never delays another target's schedule.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::model::{Observation, ProbeKind};
use crate::probe::Probe;
use pantau_core::probe::Target;

/// A stable offset in `[0, interval)` for a target, so restarts keep the same
/// spread and targets with one interval do not all fire at once.
pub fn initial_offset(target_id: &str, seed: u64, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (seed, target_id).hash(&mut h);
    let nanos = interval.as_nanos().max(1) as u64;
    Duration::from_nanos(h.finish() % nanos)
}

/// Jitter bound for an interval: 2 % of it, at most one second.
pub fn max_jitter(interval: Duration) -> Duration {
    (interval / 50).min(Duration::from_secs(1))
}

/// The `k`-th tick after `base`, skipping ticks already in the past so an
/// overrunning probe does not cause a burst of catch-up probes.
pub fn next_tick(base: Instant, interval: Duration, k: &mut u64, now: Instant) -> Instant {
    *k += 1;
    let mut t = base + interval * (*k as u32);
    if t < now {
        let behind = now.duration_since(t);
        let skip = behind.as_nanos() / interval.as_nanos().max(1) + 1;
        *k += skip as u64;
        t = base + interval * (*k as u32);
    }
    t
}

/// Something the scheduler hands observations to.
pub type Sink = mpsc::Sender<(ProbeKind, Observation)>;

/// Run every target until `shutdown`. Each observation goes to `sink`;
/// `permits` bounds how many probes run at once.
pub async fn run<P: Probe>(
    targets: Vec<Target>,
    prober: Arc<P>,
    permits: Arc<Semaphore>,
    seed: u64,
    sink: Sink,
    shutdown: CancellationToken,
) {
    let (_keep, rx) = watch::channel(targets);
    run_watched(rx, prober, permits, seed, sink, shutdown).await
}

/// [`run`] on a target set that may change (central configuration): a
/// target whose definition is unchanged keeps its schedule; a removed or
/// changed one stops after the probe it is running, whose result is still
/// delivered; a new or changed one starts on its own offset.
pub async fn run_watched<P: Probe>(
    mut targets: watch::Receiver<Vec<Target>>,
    prober: Arc<P>,
    permits: Arc<Semaphore>,
    seed: u64,
    sink: Sink,
    shutdown: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut running: HashMap<String, (Target, CancellationToken)> = HashMap::new();
    loop {
        let next = targets.borrow_and_update().clone();
        running.retain(|id, (t, stop)| {
            let keep = next.iter().any(|n| n.id == *id && n == t);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for t in next {
            if running.contains_key(&t.id) {
                continue;
            }
            let stop = shutdown.child_token();
            running.insert(t.id.clone(), (t.clone(), stop.clone()));
            tasks.spawn(target_loop(
                t,
                Arc::clone(&prober),
                Arc::clone(&permits),
                seed,
                sink.clone(),
                stop,
                shutdown.clone(),
            ));
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            changed = targets.changed() => if changed.is_err() {
                // The sender is gone: the set never changes again.
                break;
            },
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// One target's schedule until `stop` (between probes) or `shutdown`.
async fn target_loop<P: Probe>(
    t: Target,
    prober: Arc<P>,
    permits: Arc<Semaphore>,
    seed: u64,
    sink: Sink,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    let base = Instant::now() + initial_offset(&t.id, seed, t.interval);
    let jitter = max_jitter(t.interval);
    let mut k = 0u64;
    let mut at = base;
    loop {
        let j = if jitter.is_zero() {
            Duration::ZERO
        } else {
            rand::random_range(Duration::ZERO..jitter)
        };
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(at + j) => {}
        }
        let probe = async {
            let _permit = permits.acquire().await.ok()?;
            Some(prober.probe(&t).await)
        };
        let obs = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            obs = probe => match obs {
                Some(obs) => obs,
                None => return,
            },
        };
        if sink.send((t.kind(), obs)).await.is_err() {
            return;
        }
        at = next_tick(base, t.interval, &mut k, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Group, Measurement, Outcome};
    use std::sync::Mutex;

    fn target(id: &str, interval: u64, timeout: u64) -> Target {
        Target {
            id: id.into(),
            group: Group::Internet,
            address: "127.0.0.1:1".into(),
            label: String::new(),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            spec: pantau_core::ProbeSpec::Tcp(pantau_core::probe::TcpSpec),
        }
    }

    /// Records when each target was probed; target "slow" takes its whole timeout.
    struct FakeProbe {
        start: Instant,
        calls: Mutex<Vec<(String, Duration)>>,
    }

    impl Probe for FakeProbe {
        async fn probe(&self, t: &Target) -> Observation {
            self.calls
                .lock()
                .unwrap()
                .push((t.id.clone(), self.start.elapsed()));
            if t.id == "slow" {
                tokio::time::sleep(t.timeout).await;
            }
            Observation {
                target_id: t.id.clone(),
                observed_at: std::time::SystemTime::now(),
                outcome: Outcome::Ok,
                detail: String::new(),
                measurement: Measurement::None,
            }
        }
    }

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let iv = Duration::from_secs(30);
        let a = initial_offset("core", 7, iv);
        assert_eq!(a, initial_offset("core", 7, iv));
        assert!(a < iv);
        let distinct: std::collections::HashSet<_> = (0..50)
            .map(|i| initial_offset(&format!("t{i}"), 7, iv).as_millis())
            .collect();
        assert!(
            distinct.len() > 45,
            "offsets should spread, got {}",
            distinct.len()
        );
    }

    #[test]
    fn next_tick_skips_missed_ticks() {
        let base = Instant::now();
        let iv = Duration::from_secs(10);
        let mut k = 0;
        assert_eq!(
            next_tick(base, iv, &mut k, base + Duration::from_secs(1)),
            base + iv
        );
        // The probe overran to t=35 s: next is t=40 s, not 20 s or 30 s.
        let t = next_tick(base, iv, &mut k, base + Duration::from_secs(35));
        assert_eq!(t, base + Duration::from_secs(40));
        assert_eq!(k, 4);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_probe_does_not_delay_others() {
        let prober = Arc::new(FakeProbe {
            start: Instant::now(),
            calls: Mutex::new(vec![]),
        });
        let (tx, mut rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let targets = vec![target("slow", 10, 10), target("fast", 1, 1)];
        let run = tokio::spawn(run(
            targets,
            Arc::clone(&prober),
            Arc::new(Semaphore::new(4)),
            1,
            tx,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(30)).await;
        stop.cancel();
        run.await.unwrap();
        while rx.try_recv().is_ok() {}
        let calls = prober.calls.lock().unwrap();
        let fast: Vec<Duration> = calls
            .iter()
            .filter(|(id, _)| id == "fast")
            .map(|(_, t)| *t)
            .collect();
        let slow = calls.iter().filter(|(id, _)| id == "slow").count();
        // 30 s at 1 s intervals: about 30 probes, whatever "slow" is doing.
        assert!(
            (28..=31).contains(&fast.len()),
            "fast ran {} times",
            fast.len()
        );
        for w in fast.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= Duration::from_millis(980) && gap <= Duration::from_millis(1020),
                "gap {gap:?}"
            );
        }
        assert!((2..=3).contains(&slow), "slow ran {slow} times");
    }

    /// A swap keeps an unchanged target's schedule, stops a removed one
    /// after the probe it is running (whose result still arrives) and
    /// starts a new one.
    #[tokio::test(start_paused = true)]
    async fn a_swapped_target_set_keeps_stops_and_starts() {
        let prober = Arc::new(FakeProbe {
            start: Instant::now(),
            calls: Mutex::new(vec![]),
        });
        let (tx, mut rx) = mpsc::channel(1024);
        let stop = CancellationToken::new();
        let (set, watched) = watch::channel(vec![target("keep", 1, 1), target("slow", 5, 5)]);
        let run = tokio::spawn(run_watched(
            watched,
            Arc::clone(&prober),
            Arc::new(Semaphore::new(4)),
            1,
            tx,
            stop.clone(),
        ));
        // Until "slow" is inside a probe (it takes its whole 5 s timeout).
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if prober
                .calls
                .lock()
                .unwrap()
                .iter()
                .any(|(id, _)| id == "slow")
            {
                break;
            }
        }
        let swapped_at = prober.start.elapsed();
        set.send_replace(vec![target("keep", 1, 1), target("new", 1, 1)]);
        tokio::time::sleep(Duration::from_secs(20)).await;
        stop.cancel();
        run.await.unwrap();
        let mut got: Vec<String> = Vec::new();
        while let Ok((_, obs)) = rx.try_recv() {
            got.push(obs.target_id);
        }
        let calls = prober.calls.lock().unwrap();
        let slow_calls = calls.iter().filter(|(id, _)| id == "slow").count();
        assert_eq!(slow_calls, 1, "no probe of a removed target starts");
        assert_eq!(
            got.iter().filter(|id| *id == "slow").count(),
            1,
            "its running probe finished"
        );
        let keep: Vec<Duration> = calls
            .iter()
            .filter(|(id, _)| id == "keep")
            .map(|(_, t)| *t)
            .collect();
        for w in keep.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= Duration::from_millis(980) && gap <= Duration::from_millis(1020),
                "unchanged target kept its schedule: gap {gap:?}"
            );
        }
        let new = calls.iter().filter(|(id, _)| id == "new").count();
        assert!((19..=21).contains(&new), "new target ran {new} times");
        assert!(
            calls
                .iter()
                .filter(|(id, _)| id == "new")
                .all(|(_, t)| *t >= swapped_at)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded() {
        struct Counting {
            now: std::sync::atomic::AtomicUsize,
            peak: std::sync::atomic::AtomicUsize,
        }
        impl Probe for Counting {
            async fn probe(&self, t: &Target) -> Observation {
                use std::sync::atomic::Ordering::SeqCst;
                let n = self.now.fetch_add(1, SeqCst) + 1;
                self.peak.fetch_max(n, SeqCst);
                tokio::time::sleep(Duration::from_millis(900)).await;
                self.now.fetch_sub(1, SeqCst);
                Observation {
                    target_id: t.id.clone(),
                    observed_at: std::time::SystemTime::now(),
                    outcome: Outcome::Ok,
                    detail: String::new(),
                    measurement: Measurement::None,
                }
            }
        }
        let p = Arc::new(Counting {
            now: 0.into(),
            peak: 0.into(),
        });
        let (tx, mut rx) = mpsc::channel(4096);
        let stop = CancellationToken::new();
        let targets = (0..20).map(|i| target(&format!("t{i}"), 1, 1)).collect();
        let run = tokio::spawn(run(
            targets,
            Arc::clone(&p),
            Arc::new(Semaphore::new(3)),
            1,
            tx,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.cancel();
        run.await.unwrap();
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(p.peak.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert!(n >= 25, "only {n} probes completed");
    }
}
