//! `pantau-collector store migrate --to postgres://...`: move a province's
//! SQLite store into PostgreSQL (see [`crate::store::postgres::migrate`]).

use std::io::Write;

use clap::Subcommand;

use crate::config::CollectorConfig;
use crate::store::postgres::migrate::{MigrateError, copy_into_postgres};
use crate::store::postgres::{PgStore, is_postgres_url, redact};

/// `pantau-collector store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Copy the SQLite store of the data directory into an empty PostgreSQL
    /// database (one way; the SQLite file is left untouched). Stop the
    /// collector first. Example:
    /// pantau-collector store migrate --to postgres://pantau@db/pantau
    Migrate {
        /// The PostgreSQL URL (then set `[store] url` to it).
        #[arg(long)]
        to: String,
    },
}

/// Why `store` failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreCliError {
    /// `--to` is not a PostgreSQL URL.
    #[error("--to {0}: not a PostgreSQL URL (postgres://user@host/database)")]
    NotPostgres(String),
    /// The copy failed; the target is as it was.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// The target could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Standard output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Run a `store` command.
pub fn store(
    cfg: &CollectorConfig,
    cmd: StoreCmd,
    out: &mut dyn Write,
) -> Result<(), StoreCliError> {
    match cmd {
        StoreCmd::Migrate { to } => {
            if !is_postgres_url(&to) {
                return Err(StoreCliError::NotPostgres(redact(&to)));
            }
            let target = PgStore::open(&to)?;
            let counts = copy_into_postgres(&cfg.data_dir, &target)?;
            for c in &counts {
                writeln!(out, "{}\t{}\t{}", c.table, c.source, c.target)?;
            }
            let rows: i64 = counts.iter().map(|c| c.target).sum();
            writeln!(
                out,
                "Selesai / done: {rows} baris dari / rows from {} disalin ke / copied to {}. \
                 Set `[store] url` to it and start the collector.",
                cfg.data_dir.display(),
                target.url()
            )?;
        }
    }
    Ok(())
}
