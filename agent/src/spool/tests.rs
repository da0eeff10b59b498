use super::*;
use crate::model::{Measurement, Outcome};
use proptest::prelude::*;

fn obs(i: u64) -> Observation {
    Observation {
        target_id: format!("t{i}"),
        observed_at: SystemTime::now(),
        outcome: Outcome::Ok,
        detail: String::new(),
        measurement: Measurement::Tcp {
            connect: Duration::from_micros(100 + i),
        },
    }
}

fn cfg(dir: &Path, max_bytes: u64, fsync: Fsync) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        max_age: Duration::from_secs(7 * 86400),
        fsync,
    }
}

fn seqs(s: &DiskSpool, after: u64) -> Vec<u64> {
    s.after(after, usize::MAX).iter().map(|r| r.seq).collect()
}

fn last_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

#[test]
fn append_survives_restart_with_same_epoch_and_acks() {
    let dir = tempfile::tempdir().unwrap();
    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    assert!(rec.new_epoch);
    let epoch = s.state().epoch;
    for i in 0..10 {
        assert_eq!(s.append(Some(ProbeKind::Tcp), obs(i)), i + 1);
    }
    s.ack(epoch, 4);
    drop(s);
    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    assert!(!rec.new_epoch);
    assert_eq!(s.state().epoch, epoch);
    assert_eq!(seqs(&s, 4), (5..=10).collect::<Vec<_>>());
    assert_eq!(s.state().records, 6);
    assert_eq!(
        s.append(None, obs(99)),
        11,
        "numbering continues without a gap"
    );
    let r = &s.after(10, 1)[0];
    assert_eq!((r.epoch, r.seq), (epoch, 11));
}

#[test]
fn interval_policy_hands_out_only_synced_records() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = DiskSpool::open(cfg(
        dir.path(),
        1 << 20,
        Fsync::Interval(Duration::from_secs(1)),
    ))
    .unwrap();
    s.append(Some(ProbeKind::Tcp), obs(1));
    s.append(Some(ProbeKind::Tcp), obs(2));
    assert!(
        s.after(0, 10).is_empty(),
        "nothing is sent before it is durable"
    );
    s.flush();
    assert_eq!(seqs(&s, 0), [1, 2]);
}

#[test]
fn torn_and_garbled_tail_is_cut_counted_and_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    for i in 0..20 {
        s.append(Some(ProbeKind::Tcp), obs(i));
    }
    drop(s);
    // Power cut: the last record is half written and the one before garbled.
    let seg = last_segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 0x5a;
    std::fs::write(&seg, &bytes).unwrap();

    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    assert!(rec.corrupt_bytes > 0);
    let kept = seqs(&s, 0);
    assert!(kept.len() >= 17 && kept.len() < 20, "kept {kept:?}");
    assert_eq!(kept, (1..=kept.len() as u64).collect::<Vec<_>>());
    let st = s.state();
    assert_eq!(st.corrupt_bytes, rec.corrupt_bytes);
    assert!(st.seq_skipped > 0);
    let next = s.append(None, obs(1));
    assert!(
        next > 20,
        "seq {next} could collide with a result the collector already has"
    );
    drop(s);
    // And the agent starts cleanly again afterwards.
    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    assert_eq!(rec.corrupt_bytes, 0);
    assert_eq!(*seqs(&s, 0).last().unwrap(), next);
}

#[test]
fn garbage_files_and_missing_meta_do_not_stop_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(seg_name(1)), b"\xff\xff\xff\xffnot a spool").unwrap();
    std::fs::write(dir.path().join(meta::FILE), b"epoch=banana").unwrap();
    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    assert!(rec.new_epoch);
    assert_eq!(s.append(None, obs(1)), 1);
}

#[test]
fn full_spool_drops_oldest_segments_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    // 16 KiB cap -> 4 KiB segments.
    let (s, _) = DiskSpool::open(cfg(dir.path(), 16 * 1024, Fsync::Never)).unwrap();
    for i in 0..2000 {
        s.append(Some(ProbeKind::Tcp), obs(i));
    }
    let st = s.state();
    assert!(st.bytes <= 16 * 1024 + 4096, "bytes {}", st.bytes);
    assert!(st.dropped > 1000);
    assert_eq!(
        st.dropped + st.records,
        2000,
        "every result is either held or counted as dropped"
    );
    let held = seqs(&s, 0);
    assert_eq!(*held.last().unwrap(), 2000, "the newest are kept");
    assert_eq!(held.len() as u64, st.records);
}

#[test]
fn evicted_results_are_counted_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = DiskSpool::open(cfg(dir.path(), 16 * 1024, Fsync::Never)).unwrap();
    for i in 0..2000 {
        s.append(Some(ProbeKind::Tcp), obs(i));
    }
    let before = s.state();
    assert!(before.dropped > 1000);
    drop(s);
    let (s, rec) = DiskSpool::open(cfg(dir.path(), 16 * 1024, Fsync::Never)).unwrap();
    assert_eq!(rec.lost, 0, "evicted segments are not a gap");
    assert_eq!(s.state().dropped, before.dropped);
    assert_eq!(s.state().dropped + s.state().records, 2000);
}

#[test]
fn a_missing_first_segment_is_declared_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    for i in 0..400 {
        s.append(Some(ProbeKind::Tcp), obs(i));
    }
    s.ack(s.state().epoch, 5);
    let held = s.state().records;
    drop(s);
    let mut segs: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let first = parse_seg_name(e.file_name().to_str()?)?;
            Some((first, e.path()))
        })
        .collect();
    segs.sort();
    assert!(segs.len() >= 2, "need two segments, have {}", segs.len());
    let second_first = segs[1].0;
    std::fs::remove_file(&segs[0].1).unwrap();

    let (s, rec) = DiskSpool::open(cfg(dir.path(), 64 * 1024, Fsync::Always)).unwrap();
    // Results 6 .. second_first-1 were neither acked nor evicted: lost.
    assert_eq!(rec.lost, second_first - 6);
    assert_eq!(s.state().dropped, second_first - 6);
    assert_eq!(s.state().records + rec.lost, held);
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Ack(u8),
    Restart,
    Truncate(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..20).prop_map(Op::Append),
        2 => any::<u8>().prop_map(Op::Ack),
        1 => Just(Op::Restart),
        1 => (1u8..60).prop_map(Op::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The spool against a simple model: the unacknowledged results, in order.
    #[test]
    fn spool_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 64 * 1024, Fsync::Always);
        let (mut s, _) = DiskSpool::open(c.clone()).unwrap();
        let epoch = s.state().epoch;
        let mut model: Vec<u64> = Vec::new();
        let mut acked = 0u64;
        let mut max_assigned = 0u64;
        for op in ops {
            match op {
                Op::Append(n) => for _ in 0..n {
                    let seq = s.append(Some(ProbeKind::Tcp), obs(1));
                    prop_assert!(seq > max_assigned, "seq {} reused (max {})", seq, max_assigned);
                    max_assigned = seq;
                    model.push(seq);
                },
                Op::Ack(k) => {
                    if let Some(&up_to) = model.get(k as usize % (model.len() + 1)).or(model.last()) {
                        s.ack(epoch, up_to);
                        acked = acked.max(up_to);
                        model.retain(|q| *q > up_to);
                    }
                }
                Op::Restart => {
                    drop(s);
                    s = DiskSpool::open(c.clone()).unwrap().0;
                    prop_assert_eq!(s.state().epoch, epoch);
                }
                Op::Truncate(b) => {
                    drop(s);
                    if let Some(seg) = std::fs::read_dir(dir.path()).unwrap()
                        .map(|e| e.unwrap().path())
                        .filter(|p| p.extension().is_some_and(|e| e == "log"))
                        .max()
                    {
                        let len = std::fs::metadata(&seg).unwrap().len();
                        OpenOptions::new().write(true).open(&seg).unwrap().set_len(len.saturating_sub(u64::from(b))).unwrap();
                    }
                    s = DiskSpool::open(c.clone()).unwrap().0;
                    // What survives is a prefix of the model; the rest is gone.
                    let kept = seqs(&s, acked);
                    prop_assert!(model.starts_with(&kept), "kept {:?} not a prefix of {:?}", kept, model);
                    model.truncate(kept.len());
                }
            }
            let held = seqs(&s, acked);
            prop_assert_eq!(&held, &model);
            prop_assert_eq!(s.state().records, model.len() as u64);
        }
    }
}

#[test]
fn a_second_open_of_one_directory_is_refused_while_the_first_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 64 * 1024, Fsync::Always);
    let (s, _) = DiskSpool::open(c.clone()).unwrap();
    assert_eq!(s.append(Some(ProbeKind::Tcp), obs(1)), 1);
    let e = DiskSpool::open(c.clone()).unwrap_err();
    assert!(e.in_use(), "{e}");
    let text = e.to_string();
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    assert!(
        text.contains("sedang dipakai") && text.contains("is in use"),
        "{text}"
    );
    assert!(text.contains("systemctl stop pantau-agent"), "{text}");
    // The refused open touched nothing: the first writer's numbering goes on.
    assert_eq!(s.append(Some(ProbeKind::Tcp), obs(2)), 2);
    drop(s);
    let (s, _) = DiskSpool::open(c).unwrap();
    assert_eq!(s.append(Some(ProbeKind::Tcp), obs(3)), 3);
}
