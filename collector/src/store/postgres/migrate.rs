//! `pantau-collector store migrate --to postgres://...`: a one-way copy of
//! a SQLite store (the data directory's `pantau.db`) into an empty
//! PostgreSQL store.
//!
//! Every table is copied in dependency order ([`TABLES`]), column by column
//! where both schemas have the column, in multi-row INSERTs of
//! [`BATCH_ROWS`] rows, all inside one PostgreSQL transaction: a failure
//! leaves the target as it was. Results get their day partitions first and
//! their identities (`result_identity`, PostgreSQL's dedupe table) from the
//! copied rows; identity sequences continue after the copied ids. The
//! copy refuses a target that already holds rows (so running it twice
//! cannot double anything) and checks the row count of every table before
//! it commits.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use postgres::Transaction;
use postgres::types::{ToSql, Type};
use rusqlite::types::Value;

use super::{DAY_MS, PgStore, lock};
use crate::store::sqlite::{DB_FILE, open_connection};
use crate::store::{Op, StoreError};

/// The tables copied, parents before children.
pub const TABLES: &[&str] = &[
    "opd",
    "agent",
    "retired_token",
    "enrol_code",
    "target",
    "result",
    "agent_session",
    "result_conflict",
    "seq_progress",
    "remote_write_state",
    "remote_write_queue",
    "rollup_dirty",
    "rollup_watermark",
    "rollup_target_hour",
    "rollup_group_hour",
    "rollup_group_day",
    "rollup_bw_hour",
    "rollup_bw_day",
    "rollup_link_hour",
    "rollup_link_day",
    "maintenance",
    "incident_note",
    "rule_history",
    "path",
    "audit_log",
    "account",
    "web_session",
    "api_token",
    "signed_report",
    "client_cert",
    "fleet_target",
    "fleet_policy",
    "fleet_revision",
    "agent_config_status",
    "lease",
    "work_log",
    "account_oidc",
];

/// Rows per INSERT statement.
pub const BATCH_ROWS: usize = 500;

/// One table's rows in the source and, after the copy, in the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: &'static str,
    /// Rows in the SQLite source.
    pub source: i64,
    /// Rows in the PostgreSQL target after the copy.
    pub target: i64,
}

/// Why a migration did not happen (the target is left as it was).
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// No SQLite store in the data directory.
    #[error(
        "tidak ada basis data SQLite / no SQLite store at {0}; give the data directory with --data-dir"
    )]
    NoSource(PathBuf),
    /// The target already holds data.
    #[error(
        "PostgreSQL {url} tidak kosong / is not empty: table {table} holds {rows} row(s); \
         migrate only into a new, empty database"
    )]
    NotEmpty {
        /// Target, password redacted.
        url: String,
        /// First table found with rows.
        table: &'static str,
        /// Its rows.
        rows: i64,
    },
    /// A SQLite table this build does not know how to copy.
    #[error("SQLite table `{0}` has no PostgreSQL counterpart; nothing was copied")]
    UnknownTable(String),
    /// A value that does not fit the PostgreSQL column.
    #[error("table {table}, column {column}: {what}; nothing was copied")]
    Value {
        /// Table.
        table: &'static str,
        /// Column.
        column: String,
        /// The value and the column type.
        what: String,
    },
    /// A PostgreSQL column the SQLite table lacks and that needs a value.
    #[error(
        "table {table}: PostgreSQL column {column} has no SQLite counterpart; nothing was copied"
    )]
    MissingColumn {
        /// Table.
        table: &'static str,
        /// Column.
        column: String,
    },
    /// The copy did not end with the source's rows.
    #[error(
        "table {table}: {sqlite} row(s) in SQLite but {postgres} in PostgreSQL; nothing was copied"
    )]
    Count {
        /// Table.
        table: &'static str,
        /// Source rows.
        sqlite: i64,
        /// Target rows.
        postgres: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Copy the SQLite store in `data_dir` into the empty PostgreSQL store
/// `target`; returns the rows of every table.
pub fn copy_into_postgres(
    data_dir: &Path,
    target: &PgStore,
) -> Result<Vec<TableCount>, MigrateError> {
    let db = data_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(MigrateError::NoSource(db));
    }
    let src = open_connection(data_dir)?;
    check_known_tables(&src)?;
    let mut counts = Vec::new();
    for &table in TABLES {
        let n: i64 = src
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .op("count SQLite rows")?;
        counts.push(TableCount {
            table,
            source: n,
            target: 0,
        });
    }
    // The writer connection throughout: this copy is the target's only writer.
    let mut writer = lock(&target.writer);
    {
        let mut db = writer.db();
        for &table in TABLES {
            let rows: i64 = db
                .query_dynamic(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .op("count PostgreSQL rows")?[0]
                .get(0);
            if rows > 0 {
                return Err(MigrateError::NotEmpty {
                    url: target.url().to_string(),
                    table,
                    rows,
                });
            }
        }
    }
    // Day partitions first, each in its own short transaction.
    let days: Vec<i64> = {
        let mut st = src
            .prepare("SELECT DISTINCT observed_at_ms / 86400000 FROM result")
            .op("result days")?;
        let days = st
            .query_map([], |r| r.get::<_, i64>(0))
            .op("result days")?
            .collect::<Result<Vec<_>, _>>()
            .op("result days")?;
        days.into_iter().map(|d| d * DAY_MS).collect()
    };
    target.ensure_days(days)?;
    {
        let mut tx = writer.client().transaction().op("begin migration")?;
        for count in &mut counts {
            copy_table(&src, &mut tx, count.table)?;
            if count.table == "result" {
                tx.execute(
                    "INSERT INTO result_identity (agent_id, epoch, seq, observed_at_ms)
                     SELECT agent_id, epoch, seq, observed_at_ms FROM result",
                    &[],
                )
                .op("result identities")?;
            }
            count.target = tx
                .query_one(&format!("SELECT COUNT(*) FROM {}", count.table), &[])
                .op("count copied rows")?
                .get(0);
            if count.target != count.source {
                return Err(MigrateError::Count {
                    table: count.table,
                    sqlite: count.source,
                    postgres: count.target,
                });
            }
            continue_identity(&mut tx, count.table)?;
        }
        tx.commit().op("commit migration")?;
    }
    Ok(counts)
}

/// Every user table of the SQLite store must be one this copy knows.
fn check_known_tables(src: &rusqlite::Connection) -> Result<(), MigrateError> {
    let known: HashSet<&str> = TABLES.iter().copied().collect();
    let mut st = src
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .op("list SQLite tables")?;
    let names = st
        .query_map([], |r| r.get::<_, String>(0))
        .op("list SQLite tables")?
        .collect::<Result<Vec<_>, _>>()
        .op("list SQLite tables")?;
    match names.into_iter().find(|n| !known.contains(n.as_str())) {
        Some(n) => Err(MigrateError::UnknownTable(n)),
        None => Ok(()),
    }
}

/// Copy one table in batches of [`BATCH_ROWS`].
fn copy_table(
    src: &rusqlite::Connection,
    tx: &mut Transaction<'_>,
    table: &'static str,
) -> Result<(), MigrateError> {
    let sqlite_cols: HashSet<String> = {
        let mut st = src
            .prepare(&format!("PRAGMA table_info({table})"))
            .op("SQLite columns")?;
        st.query_map([], |r| r.get::<_, String>(1))
            .op("SQLite columns")?
            .collect::<Result<_, _>>()
            .op("SQLite columns")?
    };
    let pg_cols = tx
        .query(
            "SELECT column_name::text, is_nullable = 'YES' OR column_default IS NOT NULL
                    OR is_identity = 'YES'
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .op("PostgreSQL columns")?;
    let mut cols = Vec::new();
    for r in &pg_cols {
        let (name, optional): (String, bool) = (r.get(0), r.get(1));
        if sqlite_cols.contains(&name) {
            cols.push(name);
        } else if !optional {
            return Err(MigrateError::MissingColumn {
                table,
                column: name,
            });
        }
    }
    let list = cols.join(", ");
    let types: Vec<Type> = tx
        .prepare(&format!("SELECT {list} FROM {table} LIMIT 0"))
        .op("PostgreSQL column types")?
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    let mut st = src
        .prepare(&format!("SELECT {list} FROM {table}"))
        .op("read SQLite table")?;
    let mut rows = st.query([]).op("read SQLite table")?;
    let mut batch: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(BATCH_ROWS * cols.len());
    let mut n = 0;
    while let Some(row) = rows.next().op("read SQLite row")? {
        for (i, ty) in types.iter().enumerate() {
            let v: Value = row.get(i).op("read SQLite value")?;
            batch.push(convert(v, ty).map_err(|what| MigrateError::Value {
                table,
                column: cols[i].clone(),
                what,
            })?);
        }
        n += 1;
        if n == BATCH_ROWS {
            insert(tx, table, &list, cols.len(), n, &batch)?;
            batch.clear();
            n = 0;
        }
    }
    if n > 0 {
        insert(tx, table, &list, cols.len(), n, &batch)?;
    }
    Ok(())
}

/// One multi-row INSERT of `rows` rows of `width` values.
fn insert(
    tx: &mut Transaction<'_>,
    table: &str,
    list: &str,
    width: usize,
    rows: usize,
    values: &[Box<dyn ToSql + Sync>],
) -> Result<(), MigrateError> {
    let mut sql = format!("INSERT INTO {table} ({list}) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|b| b.as_ref()).collect();
    tx.execute(&sql, &params).op("copy rows")?;
    Ok(())
}

/// A SQLite value as a parameter of PostgreSQL type `ty`.
fn convert(v: Value, ty: &Type) -> Result<Box<dyn ToSql + Sync>, String> {
    let bad = |v: &Value| format!("{v:?} does not fit {ty}");
    Ok(match (ty, v) {
        (t, Value::Null) if *t == Type::INT8 => Box::new(None::<i64>),
        (t, Value::Null) if *t == Type::INT4 => Box::new(None::<i32>),
        (t, Value::Null) if *t == Type::FLOAT8 => Box::new(None::<f64>),
        (t, Value::Null) if *t == Type::BOOL => Box::new(None::<bool>),
        (t, Value::Null) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
        (t, Value::Null) if *t == Type::TEXT => Box::new(None::<String>),
        (t, Value::Integer(i)) if *t == Type::INT8 => Box::new(i),
        (t, Value::Integer(i)) if *t == Type::INT4 => {
            Box::new(i32::try_from(i).map_err(|_| bad(&Value::Integer(i)))?)
        }
        (t, Value::Integer(i)) if *t == Type::FLOAT8 => Box::new(i as f64),
        (t, Value::Real(f)) if *t == Type::FLOAT8 => Box::new(f),
        (t, Value::Integer(i)) if *t == Type::BOOL => Box::new(i != 0),
        (t, Value::Blob(b)) if *t == Type::BYTEA => Box::new(b),
        (t, Value::Text(s)) if *t == Type::BYTEA => Box::new(s.into_bytes()),
        (t, Value::Text(s)) if *t == Type::TEXT => Box::new(s),
        (t, Value::Integer(i)) if *t == Type::TEXT => Box::new(i.to_string()),
        (t, Value::Real(f)) if *t == Type::TEXT => Box::new(f.to_string()),
        (_, v) => return Err(bad(&v)),
    })
}

/// Let an identity column continue after the copied ids.
fn continue_identity(tx: &mut Transaction<'_>, table: &str) -> Result<(), MigrateError> {
    let seq: Option<String> = tx
        .query_one(
            "SELECT CASE WHEN EXISTS (SELECT 1 FROM information_schema.columns
                     WHERE table_schema = current_schema() AND table_name = $1
                       AND column_name = 'id' AND is_identity = 'YES')
                   THEN pg_get_serial_sequence($1, 'id') END",
            &[&table],
        )
        .op("identity sequence")?
        .get(0);
    if let Some(seq) = seq {
        tx.execute(
            &format!(
                "SELECT setval($1::text::regclass, COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ),
            &[&seq],
        )
        .op("continue identity")?;
    }
    Ok(())
}
