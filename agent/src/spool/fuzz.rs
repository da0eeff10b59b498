//! Byte-level fuzzing of spool recovery: one segment of a spool written by
//! the real [`DiskSpool`] is damaged (bit flips, overwrites, inserts, cuts,
//! copied chunks; see `probe/fuzz.rs` for the mutator, budget and seed),
//! then the spool is opened again. The documented rule: opening never fails
//! on bad data; in the damaged segment every record before the first damaged
//! frame is kept and the rest of that segment is cut off and counted as
//! corrupt bytes; every other segment is recovered whole; no sequence number
//! is ever handed out twice; a second open finds nothing more to cut.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;
use crate::model::{Measurement, Outcome};
use crate::probe::fuzz::{Mutation, apply, config};

/// Records in the seed spool.
const RECORDS: u64 = 30;

/// The seed spool: its files (name, bytes), and for every segment the
/// byte length of each of its frames.
struct Seed {
    files: Vec<(String, Vec<u8>)>,
    /// (file index, first seq, frame lengths) per segment, in seq order.
    segments: Vec<(usize, u64, Vec<usize>)>,
    epoch: u64,
}

fn cfg(dir: &Path) -> SpoolConfig {
    SpoolConfig {
        dir: dir.to_path_buf(),
        // Segments of 4 KiB (the smallest): the seed spool spans several.
        max_bytes: 32 * 1024,
        max_age: Duration::from_secs(7 * 86400),
        fsync: Fsync::Always,
    }
}

static SEED: LazyLock<Seed> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = DiskSpool::open(cfg(dir.path())).expect("open");
    for i in 0..RECORDS {
        s.append(
            Some(ProbeKind::Tcp),
            Observation {
                target_id: format!("t{i}"),
                observed_at: SystemTime::now(),
                outcome: if i % 3 == 0 {
                    Outcome::Timeout
                } else {
                    Outcome::Ok
                },
                // Long details: about ten records per segment.
                detail: "x".repeat(300 + i as usize),
                measurement: Measurement::Tcp {
                    connect: Duration::from_micros(100 + i),
                },
            },
        );
    }
    let epoch = s.state().epoch;
    drop(s);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| {
            let e = e.expect("entry");
            let name = e.file_name().into_string().expect("utf-8 name");
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    let mut segments = Vec::new();
    for (i, (name, bytes)) in files.iter().enumerate() {
        let Some(first) = parse_seg_name(name) else {
            continue;
        };
        let mut lens = Vec::new();
        let mut pos = 0;
        while let frame::Read::Frame(_, n) = frame::decode(&bytes[pos..]) {
            lens.push(n);
            pos += n;
        }
        assert_eq!(pos, bytes.len(), "seed segment {name} reads whole");
        segments.push((i, first, lens));
    }
    assert!(segments.len() >= 3, "seed spool spans several segments");
    Seed {
        files,
        segments,
        epoch,
    }
});

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation_any(), 1..6)
}

/// The mutator's edits, with longer copies and cuts: frames are hundreds of
/// bytes here.
fn mutation_any() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        2 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..400)
            .prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

/// How many whole frames of `lens` lie before byte `d`, and their length.
fn frames_before(lens: &[usize], d: usize) -> (u64, usize) {
    let (mut n, mut end) = (0, 0);
    for l in lens {
        if end + l > d {
            break;
        }
        end += l;
        n += 1;
    }
    (n, end)
}

fn seqs(s: &DiskSpool) -> Vec<u64> {
    s.after(0, usize::MAX).iter().map(|r| r.seq).collect()
}

proptest! {
    #![proptest_config(config("spool_segment", 10))]

    #[test]
    fn fuzz_spool_segment(which in any::<Index>(), muts in mutations()) {
        let seed = &*SEED;
        let (file, first, lens) = &seed.segments[which.index(seed.segments.len())];
        let original = &seed.files[*file].1;
        let damaged = apply(original.clone(), &muts);
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, (name, bytes)) in seed.files.iter().enumerate() {
            let bytes = if i == *file { &damaged } else { bytes };
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }

        // First differing byte: frames wholly before it are intact.
        let d = original
            .iter()
            .zip(&damaged)
            .position(|(a, b)| a != b)
            .unwrap_or(original.len().min(damaged.len()));
        let (kept, good_len) = frames_before(lens, d);
        let expected: Vec<u64> = seed
            .segments
            .iter()
            .flat_map(|(f, s, l)| {
                let n = if f == file { kept } else { l.len() as u64 };
                *s..*s + n
            })
            .collect();
        let cut = (damaged.len() - good_len) as u64;

        let (s, rec) = DiskSpool::open(cfg(dir.path())).expect("bad data never fails open");
        prop_assert!(!rec.new_epoch);
        prop_assert_eq!(s.state().epoch, seed.epoch);
        prop_assert_eq!(seqs(&s), expected.clone(), "kept {} of segment {}", kept, first);
        prop_assert_eq!(rec.records, expected.len() as u64);
        prop_assert_eq!(rec.corrupt_bytes, cut);
        prop_assert_eq!(s.state().corrupt_bytes, cut);
        // Later segments' records are recovered; the ones cut are declared lost
        // when a later segment follows, never silently renumbered.
        let last_seg = seed.segments.last().map(|(f, _, _)| f) == Some(file);
        let missing = lens.len() as u64 - kept;
        // (A first segment cut whole is measured from the meta file's ack
        // watermark, so it is declared lost too.)
        let gap_seen = !last_seg;
        prop_assert_eq!(rec.lost, if gap_seen { missing } else { 0 });
        // No seq is handed out twice.
        let next = s.append(None, Observation {
            target_id: String::new(),
            observed_at: SystemTime::now(),
            outcome: Outcome::Ok,
            detail: String::new(),
            measurement: Measurement::Tcp { connect: Duration::from_micros(1) },
        });
        prop_assert!(next > RECORDS, "seq {} reused", next);
        drop(s);

        // What recovery cut stays cut: a second open finds it all clean.
        let (s, rec) = DiskSpool::open(cfg(dir.path())).expect("reopen");
        prop_assert_eq!(rec.corrupt_bytes, 0);
        let mut with_next = expected;
        with_next.push(next);
        prop_assert_eq!(seqs(&s), with_next);
    }
}
