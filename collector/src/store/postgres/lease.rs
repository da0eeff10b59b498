//! Leases and the work record in PostgreSQL (`lease`, `work_log`,
//! schema_6.sql): one upsert decides who holds a lease, by the database's
//! clock, so collectors with skewed clocks agree; the fencing token is
//! checked in the statement that records finished work.

use super::PgStore;
use crate::store::lease::{Lease, Leases, WorkRecord};
use crate::store::{Op, StoreError};

/// The database's clock in ms (not the transaction start: a lease is
/// judged at the moment of the statement).
macro_rules! now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
    };
}

impl Leases for PgStore {
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        // The row lock of ON CONFLICT serialises two collectors racing for
        // an expired lease; the loser re-checks the WHERE on the winner's
        // row and gets nothing back.
        const SQL: &str = concat!(
            "INSERT INTO lease (name, holder, until_ms, token) SELECT $1, $2, ",
            now_ms!(),
            " + $3, 1
             ON CONFLICT (name) DO UPDATE SET
                 holder = EXCLUDED.holder,
                 until_ms = EXCLUDED.until_ms,
                 token = CASE WHEN lease.holder = EXCLUDED.holder
                              THEN lease.token ELSE lease.token + 1 END
             WHERE lease.holder = EXCLUDED.holder OR lease.until_ms <= ",
            now_ms!(),
            " RETURNING token"
        );
        self.write(|c| {
            let row = c
                .db()
                .query_opt(SQL, &[&name, &holder, &ttl_ms])
                .op("acquire lease")?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn lease_release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write(|c| {
            c.db()
                .execute(
                    "UPDATE lease SET until_ms = 0 WHERE name = $1 AND holder = $2",
                    &[&name, &holder],
                )
                .op("release lease")?;
            Ok(())
        })
    }

    fn leases(&self) -> Result<Vec<Lease>, StoreError> {
        self.read(|c| {
            let rows = c
                .db()
                .query(
                    "SELECT name, holder, until_ms, token FROM lease ORDER BY name",
                    &[],
                )
                .op("list leases")?;
            Ok(rows
                .iter()
                .map(|r| Lease {
                    name: r.get(0),
                    holder: r.get(1),
                    until_ms: r.get(2),
                    token: r.get(3),
                })
                .collect())
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
        // FOR SHARE: a takeover (which updates the lease row) waits until
        // this record is in, or this record sees the new token.
        const SQL: &str = concat!(
            "INSERT INTO work_log (job, from_ms, to_ms, holder, token, done_at_ms)
             SELECT $1, $2, $3, $4, $5, ",
            now_ms!(),
            " FROM lease WHERE name = $1 AND holder = $4 AND token = $5
             FOR SHARE
             ON CONFLICT (job, from_ms) DO NOTHING"
        );
        self.write(|c| {
            let n = c
                .db()
                .execute(SQL, &[&job, &from_ms, &to_ms, &holder, &token])
                .op("record finished work")?;
            Ok(n == 1)
        })
    }

    fn work_last(&self, job: &str) -> Result<Option<i64>, StoreError> {
        self.read(|c| {
            let row = c
                .db()
                .query_one("SELECT MAX(to_ms) FROM work_log WHERE job = $1", &[&job])
                .op("last finished work")?;
            Ok(row.get(0))
        })
    }

    fn work_log(&self, job: &str) -> Result<Vec<WorkRecord>, StoreError> {
        self.read(|c| {
            let rows = c
                .db()
                .query(
                    "SELECT job, from_ms, to_ms, holder, token, done_at_ms FROM work_log
                     WHERE job = $1 ORDER BY from_ms",
                    &[&job],
                )
                .op("read work log")?;
            Ok(rows
                .iter()
                .map(|r| WorkRecord {
                    job: r.get(0),
                    from_ms: r.get(1),
                    to_ms: r.get(2),
                    holder: r.get(3),
                    token: r.get(4),
                    done_at_ms: r.get(5),
                })
                .collect())
        })
    }
}
