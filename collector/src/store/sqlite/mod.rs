//! The SQLite backend: one file in the data directory, its migrations beside
//! this module, one writer connection and a pool of read connections.
//!
//! How synchronous storage meets the async servers (decided once, for every
//! backend): the store traits are synchronous and every call runs off the
//! async runtime — on the ingest writer thread, the rollup thread or
//! `tokio::task::spawn_blocking`. SQLite serves writes on one connection
//! behind a mutex (SQLite has one writer at a time anyway; the mutex makes
//! the wait explicit instead of "database is locked") and reads from a pool
//! of `query_only` connections in WAL mode, so HTTP reads never queue
//! behind a write or behind each other. An async backend implements the
//! same traits by blocking on its own runtime handle from those threads, so
//! no caller changes.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use rusqlite::Connection;

pub mod report;
pub mod rollup;

use super::{Op, StoreError};

pub mod accounts;
pub mod api;
pub mod audit;
pub mod certs;
pub mod conflict;
#[cfg(test)]
mod conformance;
pub mod credentials;
pub mod export;
pub mod fleet;
pub mod ingest;
pub mod lease;
pub mod registry;

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "pantau.db";

/// Read connections kept open at most; a reader beyond them waits.
pub const MAX_READERS: usize = 8;

const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_reports.sql"),
    include_str!("schema_paths.sql"),
    include_str!("schema_rules.sql"),
    include_str!("schema_capacity.sql"),
    include_str!("schema_remote_write.sql"),
    include_str!("schema_evidence.sql"),
    include_str!("schema_fair.sql"),
    include_str!("schema_credentials.sql"),
    include_str!("schema_enrol.sql"),
    include_str!("schema_sessions.sql"),
    include_str!("schema_audit.sql"),
    include_str!("schema_accounts.sql"),
    include_str!("schema_certs.sql"),
    include_str!("schema_fleet.sql"),
    include_str!("schema_leases.sql"),
    include_str!("schema_console.sql"),
    include_str!("schema_oidc.sql"),
    include_str!("schema_rollup_gen.sql"),
];

/// Number of schema versions this build knows (the `user_version` after
/// migrating).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
/// Every transaction that reads before it writes must use this: a deferred
/// one that read while another connection committed cannot upgrade (WAL
/// snapshot) and fails with "database is locked" instead of waiting.
pub fn write_tx(conn: &Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)
}

/// Read a stored kind or outcome name back into its enum. Other text means
/// the row was not written by this collector's ingest, and is an error.
pub fn text_enum<T>(
    row: &rusqlite::Row<'_>,
    i: usize,
    parse: fn(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let s: String = row.get(i)?;
    parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown name `{s}`").into(),
        )
    })
}

/// Mode of the data directory: only the collector's user may list it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the database, its WAL and shared-memory files (and keys).
pub const FILE_MODE: u32 = 0o600;

fn create_dir(data_dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::DirBuilderExt;
    let err = |source| StoreError::DataDir {
        path: data_dir.to_path_buf(),
        source,
    };
    // The mode holds for every directory created here, whatever the umask
    // (an umask only removes bits, and 0700 has none it could add).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(data_dir)
        .map_err(err)?;
    tighten(data_dir, DIR_MODE).map_err(err)
}

/// Remove group and other bits from an existing `path` (created before this
/// rule, or by hand); never adds a bit.
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let now = std::fs::metadata(path)?.permissions().mode() & 0o7777;
    if now & !mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), from = format!("{now:o}"), to = format!("{:o}", now & mode),
            "permissions too open; tightened");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(now & mode))?;
    }
    Ok(())
}

/// Create the database file 0600 before SQLite opens it: SQLite creates a
/// new file 0644 minus the umask and gives its `-wal` and `-shm` files the
/// database file's mode, so this one mode covers all three. Existing files
/// are tightened.
fn secure_db_files(data_dir: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let db = data_dir.join(DB_FILE);
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::DataDir { path, source }
    };
    // Only a missing file is created here. An existing one is never opened
    // outside SQLite: closing any descriptor of the database file drops
    // every POSIX lock this process holds on it, and a SQLite connection
    // that lost its lock lets another process delete the WAL it writes to.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&db)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(&db)(e)),
    }
    for p in [
        db.clone(),
        data_dir.join(format!("{DB_FILE}-wal")),
        data_dir.join(format!("{DB_FILE}-shm")),
    ] {
        match tighten(&p, FILE_MODE) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            r => r.map_err(err(&p))?,
        }
    }
    Ok(())
}

fn connect(data_dir: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(data_dir.join(DB_FILE)).op("open database")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .op("set busy timeout")?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )
    .op("set pragmas")?;
    Ok(conn)
}

/// Open (creating and migrating) the database in `data_dir` as one plain
/// connection: for the one-shot commands, tests and benches.
pub fn open_connection(data_dir: &Path) -> Result<Connection, StoreError> {
    create_dir(data_dir)?;
    secure_db_files(data_dir)?;
    let conn = connect(data_dir)?;
    migrate(&conn)?;
    Ok(conn)
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Apply the migrations up to schema version `target` (tests build older
/// databases with it).
fn migrate_to(conn: &Connection, target: usize) -> Result<(), StoreError> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .op("read schema version")?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version) {
        let tx = write_tx(conn).op("begin migration")?;
        tx.execute_batch(sql).op("apply migration")?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .op("bump schema version")?;
        tx.commit().op("commit migration")?;
    }
    Ok(())
}

/// The SQLite store: one writer, pooled readers.
pub struct SqliteStore {
    dir: PathBuf,
    writer: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
    open_readers: Mutex<usize>,
    returned: Condvar,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating and migrating) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let writer = open_connection(data_dir)?;
        ingest::tune_writer(&writer)?;
        Ok(SqliteStore {
            dir: data_dir.to_path_buf(),
            writer: Mutex::new(writer),
            idle: Mutex::new(Vec::new()),
            open_readers: Mutex::new(0),
            returned: Condvar::new(),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Run `f` on the writer connection. Callers open their own
    /// transaction with [`write_tx`] when they read before writing.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = lock(&self.writer);
        f(&mut c)
    }

    /// Run `f` on a pooled read-only connection.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.take_reader()?;
        let out = f(&conn);
        // A reader left inside a transaction (an error mid-snapshot) is
        // closed rather than handed to the next caller.
        if conn.is_autocommit() {
            lock(&self.idle).push(conn);
        } else {
            drop(conn);
            *lock(&self.open_readers) -= 1;
        }
        self.returned.notify_one();
        out
    }

    fn take_reader(&self) -> Result<Connection, StoreError> {
        loop {
            if let Some(c) = lock(&self.idle).pop() {
                return Ok(c);
            }
            let mut open = lock(&self.open_readers);
            if *open < MAX_READERS {
                *open += 1;
                drop(open);
                // Readers map the file: a year's report reads 20 000 link
                // rollup rows whose histograms overflow their page, and a
                // read() per page was half the time of that read.
                return match connect(&self.dir).and_then(|c| {
                    c.execute_batch("PRAGMA query_only = ON; PRAGMA mmap_size = 268435456;")
                        .op("make reader read-only")?;
                    Ok(c)
                }) {
                    Ok(c) => Ok(c),
                    Err(e) => {
                        *lock(&self.open_readers) -= 1;
                        Err(e)
                    }
                };
            }
            // Every reader is busy: wait for one to come back.
            let _open = self
                .returned
                .wait_timeout(open, std::time::Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn loose_data_dir_and_database_are_tightened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        drop(SqliteStore::open(&data).unwrap());
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join(DB_FILE)), 0o600);
        // Opened before this rule, or loosened by hand.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in [DB_FILE.to_string(), format!("{DB_FILE}-wal")] {
            let p = data.join(f);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let s = SqliteStore::open(&data).unwrap();
        s.write(|c| c.execute_batch("CREATE TABLE t (x)").op("write"))
            .unwrap();
        assert_eq!(mode(&data), 0o700);
        for f in [
            DB_FILE.to_string(),
            format!("{DB_FILE}-wal"),
            format!("{DB_FILE}-shm"),
        ] {
            assert_eq!(mode(&data.join(&f)), 0o600, "{f}");
        }
    }

    #[test]
    fn readers_are_pooled_read_only_and_see_committed_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.write(|c| {
            c.execute(
                "INSERT INTO opd (id, name, created_at_ms) VALUES ('a', 'A', 0)",
                [],
            )
            .op("insert")?;
            Ok(())
        })
        .unwrap();
        let n: i64 = s
            .read(|c| {
                c.query_row("SELECT COUNT(*) FROM opd", [], |r| r.get(0))
                    .op("count")
            })
            .unwrap();
        assert_eq!(n, 1);
        let refused = s.read(|c| {
            c.execute("DELETE FROM opd", []).op("delete")?;
            Ok(())
        });
        assert!(refused.is_err(), "a reader must not write");
        assert_eq!(*lock(&s.open_readers), 1, "the reader was reused");
    }
}
