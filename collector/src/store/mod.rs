//! The storage boundary: the only module that knows SQL. Its users see
//! traits shaped by what they do, with plain row structs and [`StoreError`]:
//!
//! - [`registry::Registry`]: OPDs, agents, tokens (admin commands, token
//!   checks, metrics seeding).
//! - [`ingest::IngestStore`]: Hello, sessions, batches with dedupe and
//!   conflicting duplicates kept aside, the committed sequence.
//! - [`export::ExportQueue`]: the remote-write queue.
//! - [`api::ApiRead`]: the reads behind `/api/v1/*`, the pages and listings.
//! - [`conflict`]: what counts as the same result (pure, for every backend).
//!
//! [`Store`] combines them; [`SharedStore`] is the handle the servers share.
//! The SQLite backend lives in [`sqlite`] (see there how synchronous calls
//! meet the async servers). The free functions re-exported below take a raw
//! SQLite connection: they are for tests and benches that prepare a
//! database directly, never for library code outside this module.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::Connection;

pub mod accounts;
pub mod api;
pub mod audit;
pub mod certs;
pub mod conflict;
pub mod credentials;
pub mod export;
pub mod fleet;
pub mod ingest;
pub mod lease;
pub mod postgres;
pub mod registry;
pub mod report;
pub mod sqlite;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use accounts::Accounts;
pub use api::ApiRead;
pub use audit::{AuditLog, AuditRead};
pub use certs::ClientCerts;
pub use credentials::{EnrolCodes, Redeemed};
pub use export::ExportQueue;
pub use fleet::Fleet;
pub use ingest::{IncomingBatch, IncomingHello, IngestStore, Opened, Stored};
pub use lease::Leases;
pub use registry::Registry;
pub use sqlite::{DB_FILE, SqliteStore, text_enum, write_tx};

// Raw-connection helpers for tests and benches (see the module doc).
pub use sqlite::ingest::{
    close_dangling_sessions, committed_seq, end_session, insert_results, record_hello,
    start_session, store_results,
};
pub use sqlite::registry::{add_agent, add_opd, agent_by_token};

/// The API's rows and, for tests and benches, their queries on a raw connection.
pub mod read {
    pub use super::api::{Agent, Opd, Session, StoredResult, Target};
    pub use super::sqlite::api::{agent_exists, agents, opds, results, sessions, targets};
}

/// Everything the collector asks of its storage. The report side's traits
/// join here as they land.
pub trait Store:
    Registry
    + EnrolCodes
    + ClientCerts
    + IngestStore
    + ExportQueue
    + ApiRead
    + report::ReportBackend
    + audit::AuditLog
    + Accounts
    + Fleet
    + Leases
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: Registry
        + EnrolCodes
        + ClientCerts
        + IngestStore
        + ExportQueue
        + ApiRead
        + report::ReportBackend
        + audit::AuditLog
        + Accounts
        + Fleet
        + Leases
        + Send
        + Sync
{
}

/// A storage failure, with the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("{op}: {source}")]
    Sqlite {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: rusqlite::Error,
    },
    /// PostgreSQL failed (the server's own message when it sent one:
    /// the client's display of a server error is only "db error").
    #[error("{op}: {}", postgres_message(source))]
    Postgres {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: ::postgres::Error,
    },
    /// The PostgreSQL store could not be opened (`[store] url`, password redacted).
    #[error("[store] url {url}: {what}")]
    Connect {
        /// The configured URL with its password replaced by `***`.
        url: String,
        /// What went wrong.
        what: String,
    },
    /// The data directory could not be prepared.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A referenced OPD does not exist.
    #[error(
        "OPD `{0}` tidak terdaftar / does not exist; add it first with `pantau-collector opd add {0} --name NAME`"
    )]
    UnknownOpd(String),
    /// A write failed; the operation was not stored.
    #[error("not stored: {0}")]
    NotStored(String),
    /// An id is already in use.
    #[error("{0} already exists")]
    Exists(String),
    /// No agent has this id.
    #[error("agen `{0}` tidak ada / agent `{0}` does not exist; see `pantau-collector agent list`")]
    UnknownAgent(String),
    /// The agent's credential was revoked for good.
    #[error(
        "agen `{0}` sudah dicabut / agent `{0}` is revoked for good; register the machine as a new agent"
    )]
    Revoked(String),
    /// The OPD is disabled or removed: it takes no new agents.
    #[error(
        "OPD `{0}` nonaktif atau dihapus, tidak menerima agen baru / OPD `{0}` is disabled or removed and takes no new agents"
    )]
    OpdInactive(String),
    /// No maintenance window has this id.
    #[error(
        "jendela pemeliharaan {0} tidak ada / maintenance window {0} does not exist; see `pantau-collector maintenance-list`"
    )]
    UnknownMaintenance(i64),
    /// The maintenance window already ended.
    #[error("jendela pemeliharaan {0} sudah berakhir / maintenance window {0} has already ended")]
    MaintenanceOver(i64),
}

/// The store handle the servers share. Store calls are blocking: [`with`]
/// runs them on tokio's blocking pool, never on the async workers.
///
/// [`with`]: SharedStore::with
#[derive(Clone)]
pub struct SharedStore(Arc<dyn Store>);

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedStore")
    }
}

impl SharedStore {
    /// Share `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        SharedStore(store)
    }

    /// The store itself, for code that already runs off the async runtime
    /// (the writer thread, blocking tasks).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0
    }

    /// Run `f` on the store on a blocking thread.
    pub async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let store = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| StoreError::NotStored(format!("store task failed: {e}")))?
    }
}

pub(crate) trait Op<T> {
    fn op(self, op: &'static str) -> Result<T, StoreError>;
}

impl<T> Op<T> for Result<T, rusqlite::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Sqlite { op, source })
    }
}

/// The server's message and code of a PostgreSQL error, else the client's
/// own text.
fn postgres_message(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl<T> Op<T> for Result<T, ::postgres::Error> {
    fn op(self, op: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Postgres { op, source })
    }
}

/// Open (creating and migrating) the SQLite database in `data_dir` as one
/// plain connection, for tests and benches.
pub fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    sqlite::open_connection(data_dir)
}

/// Open the configured store: PostgreSQL at `url` when given (`[store]
/// url`), else SQLite in `data_dir`. Errors name the key; a password never
/// shows.
pub fn open_store(url: Option<&str>, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match url {
        Some(u) => {
            let s = postgres::PgStore::open(u)?;
            tracing::info!(store = %s.url(), "storing in PostgreSQL");
            Ok(Arc::new(s))
        }
        None => Ok(Arc::new(SqliteStore::open(data_dir)?)),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AgentIdentity, HelloInfo, ProbeKind, ResultRow, TargetDecl};
    use crate::model::{Group, Outcome};

    fn row(seq: u64) -> ResultRow {
        ResultRow {
            epoch: 5,
            seq,
            target_id: "core".into(),
            group: "intranet".into(),
            kind: ProbeKind::Icmp.into(),
            observed_at_ms: 1_000 * seq as i64,
            outcome: Outcome::Ok,
            detail: String::new(),
            value_ms: Some(1.5),
            sent: Some(5),
            received: Some(5),
            data: serde_json::json!({"samples_us": [1500]}),
            late: false,
            clock_flag: None,
            agent_time_ms: 1_000 * seq as i64,
            clock_correction_ms: None,
        }
    }

    #[test]
    fn registry_results_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path()).unwrap();
        add_opd(&c, "dinkes", "Dinas Kesehatan").unwrap();
        assert!(matches!(
            add_opd(&c, "dinkes", "x"),
            Err(StoreError::Exists(_))
        ));
        assert!(matches!(
            add_agent(&c, "a1", "nope", b"h"),
            Err(StoreError::UnknownOpd(_))
        ));
        add_agent(&c, "a1", "dinkes", b"digest").unwrap();
        let (who, stored) = agent_by_token(&c, b"digest").unwrap().unwrap();
        assert_eq!(
            who,
            AgentIdentity {
                agent_id: "a1".into(),
                opd_id: "dinkes".into()
            }
        );
        assert_eq!(stored, b"digest");
        assert!(agent_by_token(&c, b"other").unwrap().is_none());

        let hello = HelloInfo {
            version: "0.1.0".into(),
            config_hash: "h".into(),
            hostname: "box".into(),
            epoch: 5,
            agent_time_ms: None,
            targets: vec![TargetDecl {
                id: "core".into(),
                group: Group::Intranet,
                kind: ProbeKind::Icmp,
                address: "10.0.0.1".into(),
                label: String::new(),
                interval_ms: 30_000,
                timeout_ms: 5_000,
            }],
        };
        record_hello(&mut c, &who, &hello, Some(3)).unwrap();
        let tx = c.transaction().unwrap();
        assert_eq!(
            insert_results(&tx, &who, &[row(1), row(2), row(3)], 99).unwrap(),
            3
        );
        // A replay of 2 and 3 plus one new row: only the new one counts.
        assert_eq!(
            insert_results(&tx, &who, &[row(2), row(3), row(4)], 99).unwrap(),
            1
        );
        tx.commit().unwrap();
        assert_eq!(committed_seq(&c, "a1", 5).unwrap(), 4);
        assert_eq!(committed_seq(&c, "a1", 6).unwrap(), 0);
        let rs = read::results(&c, "a1", 0, 3_500, 100).unwrap();
        assert_eq!(rs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(rs[0].opd, "dinkes");
        let ts = read::targets(&c, None).unwrap();
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].observed_at_ms, Some(4000));
        assert_eq!(ts[0].loss, Some(0.0));
        // Reopening migrates nothing twice.
        drop(c);
        let c = open(dir.path()).unwrap();
        assert_eq!(read::opds(&c).unwrap()[0].agents, 1);
    }
}
