//! Conformance checks of [`Leases`](crate::store::Leases): one holder at a
//! time, renewal keeps the fencing token, an expired lease is taken over
//! with a new token, the old holder is fenced off, and the pieces of a job
//! are recorded once.

use crate::store::Store;

/// Two holders, `a` and `b`, on one lease.
pub fn leases_one_holder_takeover_and_fencing(s: &dyn Store) {
    let t1 = s.lease_acquire("rollup", "a", 60_000).unwrap();
    assert_eq!(t1, Some(1), "a free lease is taken with token 1");
    assert_eq!(s.lease_acquire("rollup", "b", 60_000).unwrap(), None);
    assert_eq!(
        s.lease_acquire("rollup", "a", 60_000).unwrap(),
        Some(1),
        "a renewal keeps the token"
    );
    // Another job is its own lease.
    assert_eq!(s.lease_acquire("retention", "b", 60_000).unwrap(), Some(1));
    assert!(s.work_last("rollup").unwrap().is_none());
    assert!(s.work_done("rollup", 0, 100, "a", 1).unwrap());
    assert_eq!(s.work_last("rollup").unwrap(), Some(100));
    // The same piece twice is refused, even by its holder.
    assert!(!s.work_done("rollup", 0, 100, "a", 1).unwrap());
    // b is not the holder: nothing recorded.
    assert!(!s.work_done("rollup", 100, 200, "b", 1).unwrap());

    // a's lease runs out (a negative ttl: already expired); b takes over
    // with a new token and a, come back, is fenced off.
    assert_eq!(s.lease_acquire("rollup", "a", -1).unwrap(), Some(1));
    assert_eq!(s.lease_acquire("rollup", "b", 60_000).unwrap(), Some(2));
    assert_eq!(s.lease_acquire("rollup", "a", 60_000).unwrap(), None);
    assert!(!s.work_done("rollup", 100, 200, "a", 1).unwrap());
    assert!(s.work_done("rollup", 100, 200, "b", 2).unwrap());
    let log = s.work_log("rollup").unwrap();
    let pieces: Vec<_> = log
        .iter()
        .map(|w| (w.from_ms, w.to_ms, w.holder.as_str(), w.token))
        .collect();
    assert_eq!(pieces, vec![(0, 100, "a", 1), (100, 200, "b", 2)]);

    // Released on shutdown: free for the next at once.
    s.lease_release("rollup", "b").unwrap();
    assert_eq!(s.lease_acquire("rollup", "a", 60_000).unwrap(), Some(3));
    let leases = s.leases().unwrap();
    let names: Vec<_> = leases
        .iter()
        .map(|l| (l.name.as_str(), l.holder.as_str(), l.token))
        .collect();
    assert_eq!(names, vec![("retention", "b", 1), ("rollup", "a", 3)]);
    assert!(leases.iter().all(|l| l.until_ms > crate::store::now_ms()));
}
