//! The storage conformance suite: checks written against the store traits,
//! never against a backend, run for every backend by [`store_conformance!`].
//!
//! A backend adds one line in its tests:
//!
//! ```ignore
//! crate::store_conformance!(fresh: my_fixture::fresh(), previous_schema: my_fixture::previous());
//! ```
//!
//! `fresh` is an expression giving a [`Fixture`] on an empty store;
//! `previous_schema` one on a store created at the previous schema version
//! holding the data [`core::previous_schema_data_survives`] describes, then opened (migrated) by
//! this build. Each check is one `#[test]`, so a failure names the check.
//!
//! - [`core`]: registry, Hello and sessions, ingest with dedupe and
//!   conflicting duplicates, committed seq, the remote-write queue,
//!   migration from the previous schema.
//! - [`accounts`]: web users, sessions, API tokens, the signed-report register.
//! - [`certs`]: client certificates (supersede, revoke, blocked agents).
//! - [`fleet`]: central targets, revisions, agents' reported status.
//! - [`lease`]: leases on shared background work and the work record.
//! - [`report`]: rollups with late data, incidents, capacity, paths, rule
//!   history and the report admin writes.

pub mod accounts;
pub mod certs;
pub mod console;
pub mod fleet;
pub mod lease;
pub mod report;
#[cfg(test)]
mod sqlite;

pub mod core;

use std::sync::Arc;

use super::Store;

/// A store under test and whatever keeps it alive (a temporary directory,
/// a scratch database).
pub struct Fixture {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Dropped after the store.
    pub keep: Box<dyn std::any::Any + Send>,
}

/// Expand one `#[test]` per conformance check against a backend's fixtures.
#[macro_export]
macro_rules! store_conformance {
    (fresh: $fresh:expr, previous_schema: $previous:expr $(,)?) => {
        $crate::store_conformance!(@checks $fresh;
            registry_opds_agents_and_tokens,
            credential_life_cycle,
            hello_declares_targets_and_opens_a_session,
            hellos_in_one_go_fail_alone,
            replayed_batch_is_stored_once,
            committed_seq_is_contiguous,
            conflicting_duplicate_is_kept_aside_once,
            batches_of_one_transaction_dedupe_among_themselves,
            sessions_end_and_dangling_ones_close,
            export_queue_fills_only_while_enabled,
            audit_log_chains_in_order,
        );
        #[test]
        fn accounts_sessions_tokens_and_register() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::accounts::accounts_sessions_tokens_and_register(&*f.store);
        }
        #[test]
        fn oidc_sign_in_links_and_maps() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::accounts::oidc_sign_in_links_and_maps(&*f.store);
        }
        #[test]
        fn opd_life_cycle_and_role_change() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::console::opd_life_cycle_and_role_change(&*f.store);
        }
        #[test]
        fn client_certs_supersede_revoke_and_block() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::certs::client_certs_supersede_revoke_and_block(&*f.store);
        }
        #[test]
        fn fleet_definitions_revisions_and_status() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::fleet::fleet_definitions_revisions_and_status(&*f.store);
        }
        #[test]
        fn leases_one_holder_takeover_and_fencing() {
            let f: $crate::store::conformance::Fixture = $fresh;
            $crate::store::conformance::lease::leases_one_holder_takeover_and_fencing(&*f.store);
        }
        #[test]
        fn previous_schema_data_survives_migration() {
            let f: $crate::store::conformance::Fixture = $previous;
            $crate::store::conformance::core::previous_schema_data_survives(&*f.store);
        }
    };
    (@checks $fresh:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                let f: $crate::store::conformance::Fixture = $fresh;
                $crate::store::conformance::core::$check(&*f.store);
            }
        )*
    };
}
