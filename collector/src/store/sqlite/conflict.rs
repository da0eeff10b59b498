//! Conflicting duplicates in SQLite: read the stored content of an identity,
//! keep a conflicting result in `result_conflict`.

use rusqlite::{OptionalExtension, Transaction, params};

use crate::model::ResultRow;
use crate::store::conflict::ResultContent;
use crate::store::{Op, StoreError};

/// Content of the stored result with this identity, if any. The agent's
/// own time is compared (`agent_time_ms` when the store placed the result
/// elsewhere), so a changed clock correction never looks like a conflict.
pub fn stored(
    tx: &Transaction<'_>,
    agent: &str,
    epoch: u64,
    seq: u64,
) -> Result<Option<ResultContent>, StoreError> {
    tx.prepare_cached(
        "SELECT target_id, kind, COALESCE(agent_time_ms, observed_at_ms), outcome, detail,
                value_ms, sent, received, data
         FROM result WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3",
    )
    .op("prepare stored result")?
    .query_row(params![agent, epoch as i64, seq as i64], |r| {
        Ok(ResultContent {
            target: r.get(0)?,
            kind: r.get(1)?,
            observed_at_ms: r.get(2)?,
            outcome: r.get(3)?,
            detail: r.get(4)?,
            value_ms: r.get(5)?,
            sent: r.get(6)?,
            received: r.get(7)?,
            data: r.get(8)?,
        })
    })
    .optional()
    .op("read stored result")
}

/// Keep a conflicting result aside. Returns `false` when this very content
/// was already kept for this identity (the conflicting writer resent it
/// after a lost ack): it is counted once.
pub fn keep(
    tx: &Transaction<'_>,
    agent: &str,
    opd: &str,
    r: &ResultRow,
    content: &ResultContent,
    received_at_ms: i64,
    peer: Option<&str>,
) -> Result<bool, StoreError> {
    let json = content.to_json();
    let seen: bool = tx
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM result_conflict
                           WHERE agent_id = ?1 AND epoch = ?2 AND seq = ?3 AND content = ?4)",
        )
        .op("prepare conflict lookup")?
        .query_row(params![agent, r.epoch as i64, r.seq as i64, json], |row| {
            row.get(0)
        })
        .op("look up conflict")?;
    if seen {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO result_conflict (agent_id, opd_id, epoch, seq, received_at_ms, peer, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .op("prepare conflict insert")?
    .execute(params![
        agent,
        opd,
        r.epoch as i64,
        r.seq as i64,
        received_at_ms,
        peer,
        json
    ])
    .op("insert conflict")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::model::Outcome;

    use crate::store::conflict::tests::row;

    #[test]
    fn replay_is_ignored_conflict_is_kept_once_and_the_first_result_stays() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::store::open(dir.path()).unwrap();
        let who = crate::model::AgentIdentity {
            agent_id: "a1".into(),
            opd_id: "dinkes".into(),
        };
        let mut other = row();
        other.outcome = Outcome::Timeout;
        other.value_ms = None;
        let mut replay = row();
        replay.late = true;
        let tx = crate::store::write_tx(&c).unwrap();
        let s = crate::store::store_results(&tx, &who, &[row()], 10, Some("127.0.0.1:1")).unwrap();
        assert_eq!(
            (s.new, s.conflicts.len(), s.conflicts_resent.len()),
            (1, 0, 0)
        );
        let s = crate::store::store_results(
            &tx,
            &who,
            &[replay, other.clone()],
            20,
            Some("127.0.0.1:2"),
        )
        .unwrap();
        assert_eq!(
            (s.new, s.conflicts.clone(), s.conflicts_resent.len()),
            (0, vec![1], 0)
        );
        assert!(s.is_conflict(1) && !s.is_conflict(0));
        // The conflicting writer resends after a lost ack: kept once.
        let s = crate::store::store_results(&tx, &who, &[other], 30, None).unwrap();
        assert_eq!(
            (s.new, s.conflicts.len(), s.conflicts_resent),
            (0, 0, vec![0])
        );
        tx.commit().unwrap();
        let kept: Vec<(i64, Option<String>, String)> = c
            .prepare("SELECT received_at_ms, peer, content FROM result_conflict")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0, 20);
        assert_eq!(kept[0].1.as_deref(), Some("127.0.0.1:2"));
        assert!(
            kept[0].2.contains(r#""outcome":"timeout""#),
            "{}",
            kept[0].2
        );
        let outcome: String = c
            .query_row("SELECT outcome FROM result WHERE seq = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(outcome, "ok", "the first stored result stays");
    }
}
