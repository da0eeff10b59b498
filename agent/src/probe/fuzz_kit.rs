//! The fuzzing kit shared by the agent's fuzz targets and
//! tests/tests/fuzz.rs (included there by path): a fixed seed per target, a
//! case budget from `PANTAU_FUZZ_CASES` / `PANTAU_FUZZ_SEED`, and a byte
//! mutator (bit flips, boundary bytes, inserts, cuts, chunk copies).

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};

/// Cases of a cheap target when `PANTAU_FUZZ_CASES` is not set: sized so
/// every fuzz target of the workspace together (this crate's and
/// tests/tests/fuzz.rs) runs in about 60-90 s of a debug `cargo test` on
/// two cores. Keep it equal to the default in tests/run.sh.
pub const DEFAULT_CASES: u32 = 50_000;
const DEFAULT_SEED: u64 = 0x5041_4e54_4155_0012;

/// The proptest configuration of one target: `PANTAU_FUZZ_CASES / divisor`
/// cases (at least 1) and a seed fixed per target. Shrinking only runs
/// after a failure.
pub fn config(target: &str, divisor: u32) -> Config {
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let base =
        env("PANTAU_FUZZ_CASES").map_or(DEFAULT_CASES, |v| v.min(u64::from(u32::MAX)) as u32);
    let seed = env("PANTAU_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    // FNV-1a of the target name: each target gets its own stream.
    let name = target.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    Config {
        cases: (base / divisor.max(1)).max(1),
        rng_seed: RngSeed::Fixed(seed ^ name),
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

/// One edit of a seed input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit.
    Flip(Index, u8),
    /// Overwrite a byte (random or a BER/length-boundary value).
    Set(Index, u8),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to this many bytes.
    Remove(Index, usize),
    /// Cut the input here.
    Truncate(Index),
    /// Copy a chunk of the input over another place.
    Copy(Index, Index, usize),
}

/// One random edit; overwritten bytes are random or taken from
/// `interesting` (the boundary values of the decoder under test).
pub fn mutation(interesting: &'static [u8]) -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![any::<u8>(), proptest::sample::select(interesting)];
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), byte).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..32)
            .prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
    ]
}

/// Apply `muts` to `b` in order.
pub fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len();
        match m {
            Mutation::Insert(i, bytes) => {
                let at = i.index(len + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            _ if len == 0 => {}
            Mutation::Flip(i, bit) => b[i.index(len)] ^= 1 << bit,
            Mutation::Set(i, v) => b[i.index(len)] = *v,
            Mutation::Remove(i, n) => {
                let at = i.index(len);
                b.drain(at..(at + n).min(len));
            }
            Mutation::Truncate(i) => b.truncate(i.index(len)),
            Mutation::Copy(from, to, n) => {
                let (f, t) = (from.index(len), to.index(len));
                let n = (*n).min(len - f).min(len - t);
                b.copy_within(f..f + n, t);
            }
        }
    }
    b
}
