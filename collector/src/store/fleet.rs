//! Central target definitions (issue 13, item 5): targets defined at the
//! collector per scope (`province`, `opd:<id>`, `agent:<id>`), a global
//! revision counter with its history, and what each agent reports about
//! the configuration it applied. The rules (scopes, merging, rendering,
//! validation) live in [`crate::fleet`]; this is only storage.

use super::StoreError;

/// One stored definition in a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopedTarget {
    /// `province`, `opd:<id>` or `agent:<id>`.
    pub scope: String,
    /// Target id.
    pub target_id: String,
    /// The target's TOML table (agent configuration syntax, one target),
    /// or `None`: this scope removes the id an earlier scope defined.
    pub definition: Option<String>,
}

/// A scope's setting for the agents' own `[[targets]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePolicy {
    /// The scope.
    pub scope: String,
    /// Whether agents in it keep their local targets beside the central ones.
    pub local_targets: bool,
}

/// One change to the definitions; the store applies it and increments the
/// revision in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetChange {
    /// Insert or replace one definition (or removal marker) in a scope.
    Put(ScopedTarget),
    /// Forget one entry of a scope (definition or removal marker).
    Delete {
        /// The scope.
        scope: String,
        /// Target id.
        target_id: String,
    },
    /// Replace every entry of a scope (`target import`).
    ReplaceScope {
        /// The scope.
        scope: String,
        /// The new entries (all with this scope).
        entries: Vec<ScopedTarget>,
    },
    /// Set (`Some`) or clear (`None`) a scope's local-targets policy.
    Policy {
        /// The scope.
        scope: String,
        /// The setting.
        local_targets: Option<bool>,
    },
}

/// One row of the revision history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// 1, 2, ... without gaps.
    pub revision: i64,
    /// When, UTC ms.
    pub time_ms: i64,
    /// Who (as in the audit log: `kind:name`).
    pub actor: String,
    /// What changed, one line.
    pub summary: String,
}

/// What an agent last reported about its central configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct ConfigStatus {
    /// The revision it applied (0: none).
    pub version: i64,
    /// SHA-256 (hex) of the targets it applied.
    pub sha256: String,
    /// The last update's validation error; empty when it applied.
    pub error: String,
    /// When reported, UTC ms.
    pub reported_at_ms: i64,
}

/// Central targets and the agents' reports about them.
pub trait Fleet: Send + Sync {
    /// Every stored entry, ordered by scope and target id.
    fn fleet_targets(&self) -> Result<Vec<ScopedTarget>, StoreError>;

    /// Every scope's local-targets policy.
    fn fleet_policies(&self) -> Result<Vec<ScopePolicy>, StoreError>;

    /// Apply `change` and record a new revision (`actor`, `summary`) in one
    /// transaction; returns the new revision.
    fn fleet_change(
        &self,
        change: &FleetChange,
        time_ms: i64,
        actor: &str,
        summary: &str,
    ) -> Result<i64, StoreError>;

    /// The current revision (0 before the first change).
    fn fleet_revision(&self) -> Result<i64, StoreError>;

    /// The revision history, oldest first.
    fn fleet_history(&self) -> Result<Vec<Revision>, StoreError>;

    /// Remember what `agent_id` reported.
    fn record_config_status(&self, agent_id: &str, s: &ConfigStatus) -> Result<(), StoreError>;

    /// Every agent's last report, by agent id.
    fn config_statuses(&self) -> Result<Vec<(String, ConfigStatus)>, StoreError>;
}
