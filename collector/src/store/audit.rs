//! The audit log's storage: an append-only, hash-chained table of admin
//! actions. Every backend appends under its write lock (one writer, so the
//! chain has no forks) and computes the entry's hash with [`entry_hash`],
//! the one canonical encoding shared with `verify-audit` and the bundle's
//! recomputation script. The domain side (actors, actions, verification)
//! lives in [`crate::audit`].

use serde::{Deserialize, Serialize};

use super::StoreError;

/// `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An entry about to be appended; the store gives it its seq, prev_hash
/// and hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    /// When, UTC ms.
    pub time_ms: i64,
    /// `cli-user`, `web-user`, `token`, `agent` or `system`.
    pub actor_kind: String,
    /// Who: the unix user, web account, token name, agent id.
    pub actor_name: String,
    /// From where: a peer address or `cli:<unix user>@<host>`.
    pub source: String,
    /// Stable dotted name (`opd.add`, `agent.revoke`, ...).
    pub action: String,
    /// What was acted on (an OPD id, agent id, window id, key).
    pub object: String,
    /// The state before, as JSON (`null` when there was none).
    pub before: serde_json::Value,
    /// The state after, as JSON (`null` when there is none).
    pub after: serde_json::Value,
}

/// A stored entry, as listed and exported (one JSON line each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1 without gaps.
    pub seq: i64,
    /// When, UTC ms.
    pub time_ms: i64,
    /// Actor kind.
    pub actor_kind: String,
    /// Actor name.
    pub actor_name: String,
    /// From where.
    pub source: String,
    /// Dotted action name.
    pub action: String,
    /// Object acted on.
    pub object: String,
    /// State before (JSON).
    pub before: serde_json::Value,
    /// State after (JSON).
    pub after: serde_json::Value,
    /// Hash of the previous entry ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of [`canonical_bytes`] of this entry.
    pub hash: String,
}

/// `value` as compact JSON with object keys sorted (recursively): the form
/// hashed, the same as Python's `json.dumps(v, sort_keys=True,
/// separators=(",", ":"), ensure_ascii=False)`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The bytes hashed for an entry: the canonical JSON array
/// `[seq, time_ms, actor_kind, actor_name, source, action, object, before,
/// after, prev_hash]`.
pub fn canonical_bytes(seq: i64, e: &NewAuditEntry, prev_hash: &str) -> Vec<u8> {
    let v = serde_json::json!([
        seq,
        e.time_ms,
        e.actor_kind,
        e.actor_name,
        e.source,
        e.action,
        e.object,
        e.before,
        e.after,
        prev_hash
    ]);
    canonical_json(&v).into_bytes()
}

/// SHA-256 (lowercase hex) of [`canonical_bytes`].
pub fn entry_hash(seq: i64, e: &NewAuditEntry, prev_hash: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(canonical_bytes(seq, e, prev_hash)))
}

impl AuditEntry {
    /// The entry's content without its chain fields.
    pub fn content(&self) -> NewAuditEntry {
        NewAuditEntry {
            time_ms: self.time_ms,
            actor_kind: self.actor_kind.clone(),
            actor_name: self.actor_name.clone(),
            source: self.source.clone(),
            action: self.action.clone(),
            object: self.object.clone(),
            before: self.before.clone(),
            after: self.after.clone(),
        }
    }

    /// The hash this entry's content and prev_hash give.
    pub fn computed_hash(&self) -> String {
        entry_hash(self.seq, &self.content(), &self.prev_hash)
    }
}

/// Which entries to read, ordered by seq.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditQuery {
    /// Only entries with a larger seq.
    pub after_seq: Option<i64>,
    /// Only entries recorded at or after this time (UTC ms).
    pub since_ms: Option<i64>,
}

/// Reads of the audit log (also inside a report snapshot, for the bundle).
pub trait AuditRead {
    /// Entries matching `q`, by seq.
    fn audit_entries(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
}

/// The audit log of a store: append (serialised, chained) and read.
pub trait AuditLog: Send + Sync {
    /// Append `e` after the current head, in one write transaction; returns
    /// the stored entry with its seq and hashes.
    fn append_audit(&self, e: &NewAuditEntry) -> Result<AuditEntry, StoreError>;
    /// Entries matching `q`, by seq.
    fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;
    /// The last entry's seq (0 when the log is empty).
    fn audit_head(&self) -> Result<i64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"z": [ {"y": 2, "x": "é\n"} ], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"z":[{"x":"é\n","y":2}]},"b":1}"#
        );
    }
}
