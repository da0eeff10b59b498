//! JSON: the assembled [`Report`] serialised as is, machine figures with
//! unformatted numbers and machine keys. It is the data the sections read,
//! not a rendering of the model: the bundle's recomputation script and
//! evaluators' tools compare its figures.

use crate::report::Report;

/// JSON bytes of a report.
pub fn json(r: &Report) -> Vec<u8> {
    serde_json::to_vec_pretty(r).unwrap_or_default()
}
