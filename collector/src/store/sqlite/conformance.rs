//! The storage conformance suite run against SQLite.

use std::sync::Arc;

use rusqlite::Connection;

use super::{DB_FILE, SCHEMA_VERSION, SqliteStore, connect, migrate_to};
use crate::store::conformance::Fixture;

/// An empty store in a new temporary directory.
fn fresh() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path()).expect("open store");
    Fixture {
        store: Arc::new(store),
        keep: Box::new(dir),
    }
}

/// A database built with every migration but the last, holding the data
/// `previous_schema_data_survives` expects, then opened by this build.
fn previous() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    {
        let conn: Connection = connect(dir.path()).expect("connect");
        migrate_to(&conn, SCHEMA_VERSION - 1).expect("previous schema");
        conn.execute_batch(
            "INSERT INTO opd (id, name, created_at_ms) VALUES ('old', 'Old OPD', 1000);
             INSERT INTO agent (id, opd_id, token_sha256, created_at_ms, version, last_hello_ms)
               VALUES ('old-1', 'old', X'0707070707070707070707070707070707070707070707070707070707070707', 1000, '0.0.9', 2000);
             INSERT INTO target (agent_id, id, grp, kind, address, label, interval_ms, timeout_ms, first_seen_ms, last_declared_ms)
               VALUES ('old-1', 'core', 'intranet', 'icmp', '10.0.0.1', 'Core', 30000, 5000, 2000, 2000);
             INSERT INTO result (agent_id, epoch, seq, opd_id, target_id, kind, observed_at_ms, received_at_ms,
                                 outcome, detail, value_ms, sent, received, data, late, clock_flag)
               VALUES ('old-1', 1, 1, 'old', 'core', 'icmp', 60000, 61000, 'ok', '', 1.5, 5, 5,
                       '{\"samples_us\":[1500]}', 0, NULL);",
        )
        .expect("previous-schema data");
        let v: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION - 1);
    }
    let store = SqliteStore::open(dir.path()).expect("migrate and open");
    assert!(dir.path().join(DB_FILE).exists());
    Fixture {
        store: Arc::new(store),
        keep: Box::new(dir),
    }
}

crate::store_conformance!(fresh: fresh(), previous_schema: previous());
