//! Leases and the work record in SQLite (`lease`, `work_log`,
//! schema_leases.sql). One process owns a SQLite store, so its collector
//! always gets its leases; the semantics match PostgreSQL's.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::lease::{Lease, Leases, WorkRecord};
use crate::store::{Op, StoreError, now_ms};

impl Leases for SqliteStore {
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = now_ms();
        self.write(|c| {
            c.query_row(
                "INSERT INTO lease (name, holder, until_ms, token) VALUES (?1, ?2, ?3 + ?4, 1)
                 ON CONFLICT (name) DO UPDATE SET
                     holder = excluded.holder,
                     until_ms = excluded.until_ms,
                     token = CASE WHEN lease.holder = excluded.holder
                                  THEN lease.token ELSE lease.token + 1 END
                 WHERE lease.holder = excluded.holder OR lease.until_ms <= ?3
                 RETURNING token",
                params![name, holder, now, ttl_ms],
                |r| r.get(0),
            )
            .optional()
            .op("acquire lease")
        })
    }

    fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.execute(
                "UPDATE lease SET until_ms = 0 WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
            .op("release lease")?;
            Ok(())
        })
    }

    fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare("SELECT name, holder, until_ms, token FROM lease ORDER BY name")
                .op("list leases")?;
            st.query_map([], |r| {
                Ok(Lease {
                    name: r.get(0)?,
                    holder: r.get(1)?,
                    until_ms: r.get(2)?,
                    token: r.get(3)?,
                })
            })
            .op("list leases")?
            .collect::<Result<Vec<_>, _>>()
            .op("list leases")
        })
    }

    fn work_done(
        &self,
        job: &str,
        from_ms: i64,
        to_ms: i64,
        holder: &str,
        token: i64,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        self.write(|c| {
            let n = c
                .execute(
                    "INSERT INTO work_log (job, from_ms, to_ms, holder, token, done_at_ms)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6 FROM lease
                     WHERE name = ?1 AND holder = ?4 AND token = ?5
                     ON CONFLICT (job, from_ms) DO NOTHING",
                    params![job, from_ms, to_ms, holder, token, now],
                )
                .op("record finished work")?;
            Ok(n == 1)
        })
    }

    fn work_last(&self, job: &str) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT MAX(to_ms) FROM work_log WHERE job = ?1",
                params![job],
                |r| r.get(0),
            )
            .op("last finished work")
        })
    }

    fn work_log(&self, job: &str) -> Result<Vec<WorkRecord>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT job, from_ms, to_ms, holder, token, done_at_ms FROM work_log
                     WHERE job = ?1 ORDER BY from_ms",
                )
                .op("read work log")?;
            st.query_map(params![job], |r| {
                Ok(WorkRecord {
                    job: r.get(0)?,
                    from_ms: r.get(1)?,
                    to_ms: r.get(2)?,
                    holder: r.get(3)?,
                    token: r.get(4)?,
                    done_at_ms: r.get(5)?,
                })
            })
            .op("read work log")?
            .collect::<Result<Vec<_>, _>>()
            .op("read work log")
        })
    }
}
