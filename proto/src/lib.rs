//! The Pantau wire protocol, package `pantau.v1`.
//!
//! - `proto/pantau/v1/result.proto`: probe results and their measurements.
//! - `proto/pantau/v1/agent.proto`: Hello, spool state, target catalogue.
//! - `proto/pantau/v1/ingest.proto`: the `Ingest` service and stream envelopes.
//!
//! This crate holds generated types only. Conversions to domain types live in
//! the agent and collector crates, at their one wire boundary.

/// Generated types for `pantau.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("pantau.v1");
}

/// The metadata key carrying the agent's bearer token.
pub const AUTHORIZATION: &str = "authorization";

/// Largest encoded message either side accepts, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Largest number of results in one batch.
pub const MAX_BATCH_RESULTS: usize = 1000;

/// Convert a `SystemTime`-like millisecond count to a protobuf timestamp.
pub fn timestamp_from_millis(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Convert a protobuf timestamp to milliseconds since the Unix epoch.
/// Returns `None` for timestamps whose nanos are out of range.
pub fn millis_from_timestamp(ts: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1000)?
        .checked_add(i64::from(ts.nanos) / 1_000_000)
}

/// The bytes a central `ConfigUpdate`'s Ed25519 signature covers: the agent
/// it is for, its version, the local-targets policy and the SHA-256 (hex)
/// of its targets (checked against `targets_toml` by the agent). One
/// definition for the collector that signs and the agent that verifies.
pub fn config_signed_bytes(
    agent_id: &str,
    version: u64,
    local_targets: bool,
    sha256: &str,
) -> Vec<u8> {
    format!(
        "pantau-config 1\nagent {agent_id}\nversion {version}\nlocal_targets {local_targets}\nsha256 {sha256}\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_including_before_epoch() {
        for ms in [0, 1, 999, 1000, 1_764_320_000_123, -1, -1001] {
            assert_eq!(millis_from_timestamp(&timestamp_from_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn bad_nanos_are_rejected() {
        let ts = prost_types::Timestamp {
            seconds: 1,
            nanos: 1_000_000_000,
        };
        assert_eq!(millis_from_timestamp(&ts), None);
        let ts = prost_types::Timestamp {
            seconds: 1,
            nanos: -1,
        };
        assert_eq!(millis_from_timestamp(&ts), None);
    }
}
