//! The PostgreSQL backend (`[store] url = "postgres://..."`): the same
//! traits and the same conformance suite as SQLite, for stores that outgrow
//! one file.
//!
//! Client: the synchronous `postgres` crate. The store traits are
//! synchronous and every call already runs off the async workers (the ingest
//! writer thread, the rollup thread, `spawn_blocking`), which is exactly
//! where a blocking client belongs: each `postgres::Client` drives its
//! connection on a small runtime of its own inside the calling thread, so
//! it never blocks an async worker and never nests in the server's runtime.
//! Like SQLite, writes go through one connection behind a mutex (one
//! collector's writes stay ordered; conflicts between collectors are decided
//! by PostgreSQL's constraints, not by the mutex) and reads through a small
//! pool. Statements are prepared once per connection (`prepare_cached`).
//!
//! Results are partitioned by UTC day (`schema_1.sql`); [`PgStore`] creates
//! a day's partition before the first batch that needs it, and retention
//! drops whole days (`rollup.rs`).

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, MutexGuard};

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Row, Statement, Transaction};

use super::{Op, StoreError};

pub mod accounts;
pub mod api;
pub mod audit;
pub mod certs;
pub mod credentials;
pub mod export;
pub mod fleet;
pub mod ingest;
pub mod lease;
pub mod migrate;
pub mod registry;
pub mod report;
pub mod rollup;

#[cfg(test)]
mod conformance;
#[cfg(any(test, feature = "conformance"))]
pub mod testserver;

/// Read connections kept open at most; a reader beyond them waits.
pub const MAX_READERS: usize = 8;

/// Migrations, in order; `pantau_schema.version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("schema_1.sql"),
    include_str!("schema_2.sql"),
    include_str!("schema_3.sql"),
    include_str!("schema_4.sql"),
    include_str!("schema_5.sql"),
    include_str!("schema_6.sql"),
    include_str!("schema_7.sql"),
    include_str!("schema_8.sql"),
    include_str!("schema_9.sql"),
    include_str!("schema_10.sql"),
];

/// Number of schema versions this build knows.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

const DAY_MS: i64 = 86_400_000;

/// Day partitions are made for results observed from this many days before
/// now to [`PARTITION_AHEAD_DAYS`] after; other times (a clock far off) go
/// to the default partition, so a forged timestamp cannot make thousands
/// of tables.
pub const PARTITION_BACK_DAYS: i64 = 400;
/// See [`PARTITION_BACK_DAYS`]; today and tomorrow are made at open.
pub const PARTITION_AHEAD_DAYS: i64 = 2;

/// `url` with its password replaced by `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    // postgres://user:password@host/db (key=value strings: password=...).
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let redacted_auth = match auth.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***@{host}"),
                None => auth.to_string(),
            },
            None => auth.to_string(),
        };
        let tail = redact_params(tail);
        return format!("{scheme}://{redacted_auth}{tail}");
    }
    redact_params(url)
}

/// Replace the value of every `password=` parameter.
fn redact_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("password=") {
        let (head, after) = rest.split_at(i + "password=".len());
        out.push_str(head);
        out.push_str("***");
        let end = after.find(['&', ' ']).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Whether a configured store URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A connection and the statements prepared on it.
pub struct Conn {
    /// Always `Some` until dropped (see [`Drop`] below).
    client: Option<Client>,
    prepared: HashMap<&'static str, Statement>,
}

impl Drop for Conn {
    /// Closing a client blocks on its own runtime, which must not happen
    /// on an async worker (the last holder of a store may be one, e.g.
    /// `serve` returning): there the client is closed on a thread of its own.
    fn drop(&mut self) {
        if let Some(c) = self.client.take()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::spawn(move || drop(c));
        }
    }
}

impl Conn {
    fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a connection holds its client until dropped")
    }

    /// Statements on the connection itself (each its own transaction).
    pub fn db(&mut self) -> Db<'_, Client> {
        Db {
            c: self
                .client
                .as_mut()
                .expect("a connection holds its client until dropped"),
            prepared: &mut self.prepared,
        }
    }

    /// Run `f` in one transaction, committed when it returns `Ok`.
    pub fn tx<T>(
        &mut self,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self
            .client
            .as_mut()
            .expect("a connection holds its client until dropped")
            .transaction()
            .op("begin")?;
        let out = f(&mut Db {
            c: &mut tx,
            prepared: &mut self.prepared,
        })?;
        tx.commit().op("commit")?;
        Ok(out)
    }

    /// Run `f` in one read-only repeatable-read transaction: every read it
    /// makes sees the same snapshot.
    pub fn snapshot<T>(
        &mut self,
        f: impl FnOnce(&mut Db<'_, Transaction<'_>>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut tx = self
            .client
            .as_mut()
            .expect("a connection holds its client until dropped")
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .op("begin snapshot")?;
        let out = f(&mut Db {
            c: &mut tx,
            prepared: &mut self.prepared,
        })?;
        tx.commit().op("end snapshot")?;
        Ok(out)
    }
}

/// A client or transaction with the connection's prepared statements:
/// `sql` is prepared on first use and reused after.
pub struct Db<'a, C: GenericClient> {
    c: &'a mut C,
    prepared: &'a mut HashMap<&'static str, Statement>,
}

impl<C: GenericClient> Db<'_, C> {
    fn st(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.prepared.get(sql) {
            return Ok(st.clone());
        }
        let st = self.c.prepare(sql)?;
        self.prepared.insert(sql, st.clone());
        Ok(st)
    }

    /// Execute a prepared statement; rows affected.
    pub fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        let st = self.st(sql)?;
        self.c.execute(&st, params)
    }

    /// Rows of a prepared query.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let st = self.st(sql)?;
        self.c.query(&st, params)
    }

    /// Exactly one row.
    pub fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        let st = self.st(sql)?;
        self.c.query_one(&st, params)
    }

    /// At most one row.
    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        let st = self.st(sql)?;
        self.c.query_opt(&st, params)
    }

    /// Statements built at run time (a table name from a fixed list), not
    /// cached.
    pub fn execute_dynamic(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        self.c.execute(sql, params)
    }

    /// See [`Self::execute_dynamic`].
    pub fn query_dynamic(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.c.query(sql, params)
    }

    /// Several statements without parameters.
    pub fn batch(&mut self, sql: &str) -> Result<(), postgres::Error> {
        self.c.batch_execute(sql)
    }
}

/// The PostgreSQL store: one writer, pooled readers.
pub struct PgStore {
    config: postgres::Config,
    url: String,
    writer: Mutex<Conn>,
    idle: Mutex<Vec<Conn>>,
    open_readers: Mutex<usize>,
    returned: Condvar,
    /// Day partitions known to exist (UTC day starts, ms).
    days: Mutex<HashSet<i64>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn connect_err(url: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Connect {
        url: redact(url),
        what: what.to_string(),
    }
}

impl PgStore {
    /// Connect to `url`, migrate the schema and make today's and
    /// tomorrow's partitions.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: postgres::Config = url.parse().map_err(|e| connect_err(url, e))?;
        let mut writer = Self::connect_with(&config, url)?;
        migrate_to(writer.client(), SCHEMA_VERSION).map_err(|e| connect_err(url, e))?;
        let s = PgStore {
            config,
            url: redact(url),
            writer: Mutex::new(writer),
            idle: Mutex::new(Vec::new()),
            open_readers: Mutex::new(0),
            returned: Condvar::new(),
            days: Mutex::new(HashSet::new()),
        };
        let today = super::now_ms().div_euclid(DAY_MS) * DAY_MS;
        s.ensure_days([today, today + DAY_MS])?;
        Ok(s)
    }

    fn connect_with(config: &postgres::Config, url: &str) -> Result<Conn, StoreError> {
        let client = config.connect(NoTls).map_err(|e| connect_err(url, e))?;
        Ok(Conn {
            client: Some(client),
            prepared: HashMap::new(),
        })
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Run `f` on the writer connection.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = lock(&self.writer);
        f(&mut c)
    }

    /// Run `f` on a pooled connection (its transactions are its own).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take_reader()?;
        let out = f(&mut conn);
        // A connection that failed is closed rather than handed on.
        if out.is_ok() && !conn.client().is_closed() {
            lock(&self.idle).push(conn);
        } else {
            drop(conn);
            *lock(&self.open_readers) -= 1;
        }
        self.returned.notify_one();
        out
    }

    fn take_reader(&self) -> Result<Conn, StoreError> {
        loop {
            if let Some(c) = lock(&self.idle).pop() {
                return Ok(c);
            }
            let mut open = lock(&self.open_readers);
            if *open < MAX_READERS {
                *open += 1;
                drop(open);
                return Self::connect_with(&self.config, &self.url).inspect_err(|_| {
                    *lock(&self.open_readers) -= 1;
                });
            }
            let _open = self
                .returned
                .wait_timeout(open, std::time::Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Make sure the day partitions of `days` (UTC day starts) exist, for
    /// those inside the partition window. Each runs in its own short
    /// transaction before the batch that needs it.
    pub fn ensure_days(&self, days: impl IntoIterator<Item = i64>) -> Result<(), StoreError> {
        let today = super::now_ms().div_euclid(DAY_MS) * DAY_MS;
        let lo = today - PARTITION_BACK_DAYS * DAY_MS;
        let hi = today + PARTITION_AHEAD_DAYS * DAY_MS;
        let missing: Vec<i64> = {
            let known = lock(&self.days);
            days.into_iter()
                .filter(|d| (lo..=hi).contains(d) && !known.contains(d))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        self.read(|c| {
            for d in &missing {
                c.db()
                    .execute("SELECT pantau_result_day($1)", &[d])
                    .op("create day partition")?;
            }
            Ok(())
        })?;
        lock(&self.days).extend(missing);
        Ok(())
    }

    /// Forget the partitions known to exist (after retention dropped some).
    fn forget_days(&self) {
        lock(&self.days).clear();
    }
}

/// The schema version of the database (0: empty).
fn schema_version(c: &mut impl GenericClient) -> Result<usize, postgres::Error> {
    c.batch_execute("CREATE TABLE IF NOT EXISTS pantau_schema (version INTEGER NOT NULL)")?;
    let v: Option<i32> = c
        .query_opt("SELECT version FROM pantau_schema", &[])?
        .map(|r| r.get(0));
    Ok(v.unwrap_or(0) as usize)
}

/// Apply the migrations up to `target`, each in a transaction, under an
/// advisory lock so collectors starting together migrate once.
pub(crate) fn migrate_to(c: &mut Client, target: usize) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock(7061746174)", &[])?;
    let version = schema_version(&mut tx)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(version) {
        tx.batch_execute(sql)?;
        tx.execute("DELETE FROM pantau_schema", &[])?;
        tx.execute(
            "INSERT INTO pantau_schema (version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )?;
    }
    tx.commit()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// UTC day start of `ms`.
pub fn day_of(ms: i64) -> i64 {
    ms.div_euclid(DAY_MS) * DAY_MS
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://pantau:s3cret@db.local:5432/pantau"),
            "postgres://pantau:***@db.local:5432/pantau"
        );
        assert_eq!(
            redact("postgresql://pantau@db/pantau?password=s3cret&sslmode=disable"),
            "postgresql://pantau@db/pantau?password=***&sslmode=disable"
        );
        assert_eq!(
            redact("host=/run/pg user=p password=s3cret dbname=x"),
            "host=/run/pg user=p password=*** dbname=x"
        );
        assert_eq!(redact("postgres:///pantau"), "postgres:///pantau");
    }
}
