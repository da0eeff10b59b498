//! Conformance checks of the core traits: [`Registry`], [`IngestStore`],
//! [`ExportQueue`], [`ApiRead`]. Each takes an empty store (except
//! [`previous_schema_data_survives`]) and panics on a deviation.

use crate::model::{AgentIdentity, Group, HelloInfo, Outcome, ProbeKind, ResultRow, TargetDecl};
use crate::store::export::Queued;
use crate::store::{IncomingBatch, Store, StoreError};

fn who(agent: &str, opd: &str) -> AgentIdentity {
    AgentIdentity {
        agent_id: agent.into(),
        opd_id: opd.into(),
    }
}

fn target(id: &str, label: &str) -> TargetDecl {
    TargetDecl {
        id: id.into(),
        group: Group::Intranet,
        kind: ProbeKind::Icmp,
        address: "10.0.0.1".into(),
        label: label.into(),
        interval_ms: 30_000,
        timeout_ms: 5_000,
    }
}

fn hello(epoch: u64, targets: Vec<TargetDecl>) -> HelloInfo {
    HelloInfo {
        version: "0.1.0".into(),
        config_hash: "h".into(),
        hostname: "box".into(),
        epoch,
        agent_time_ms: None,
        targets,
    }
}

/// A result of target `core` as the agent sent it.
pub fn row(epoch: u64, seq: u64) -> ResultRow {
    let at = 60_000 * seq as i64;
    ResultRow {
        epoch,
        seq,
        target_id: "core".into(),
        group: "intranet".into(),
        kind: ProbeKind::Icmp.into(),
        observed_at_ms: at,
        outcome: Outcome::Ok,
        detail: String::new(),
        value_ms: Some(1.5),
        sent: Some(5),
        received: Some(5),
        data: serde_json::json!({"samples_us": [1500]}),
        late: false,
        clock_flag: None,
        agent_time_ms: at,
        clock_correction_ms: None,
    }
}

/// One OPD with one agent that said Hello declaring target `core`.
fn enrolled(s: &dyn Store) -> AgentIdentity {
    s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
    s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
    let w = who("a1", "dinkes");
    s.hello(
        &w,
        &hello(5, vec![target("core", "Core")]),
        Some(3),
        Some("192.0.2.7:41000"),
        1_000,
    )
    .unwrap();
    w
}

fn store(s: &dyn Store, w: &AgentIdentity, rows: &[ResultRow], at: i64) -> crate::store::Stored {
    let b = IncomingBatch {
        who: w,
        rows,
        peer: Some("192.0.2.1:4000"),
    };
    let mut out = s.store_batches(&[b], at).unwrap();
    assert_eq!(out.len(), 1, "one answer per batch");
    out.remove(0)
}

/// OPDs, agents and tokens: ids are unique, an agent needs its OPD, a token
/// finds its agent, listings count and sort.
pub fn registry_opds_agents_and_tokens(s: &dyn Store) {
    s.ping().unwrap();
    s.add_opd("dishub", "Dinas Perhubungan").unwrap();
    s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
    assert!(matches!(
        s.add_opd("dinkes", "x"),
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        s.add_agent("a1", "nope", &[1; 32]),
        Err(StoreError::UnknownOpd(o)) if o == "nope"
    ));
    s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
    assert!(matches!(
        s.add_agent("a1", "dishub", &[2; 32]),
        Err(StoreError::Exists(_))
    ));
    let (w, digest) = s.agent_by_token(&[1; 32]).unwrap().unwrap();
    assert_eq!(w, who("a1", "dinkes"));
    assert_eq!(digest, [1; 32]);
    assert!(s.agent_by_token(&[9; 32]).unwrap().is_none());
    assert_eq!(
        s.opd_name("dinkes").unwrap().as_deref(),
        Some("Dinas Kesehatan")
    );
    assert_eq!(s.opd_name("nope").unwrap(), None);
    assert_eq!(s.opd_ids().unwrap(), ["dinkes", "dishub"]);
    let opds = s.opds().unwrap();
    let counts: Vec<(&str, u32)> = opds.iter().map(|o| (o.id.as_str(), o.agents)).collect();
    assert_eq!(counts, [("dinkes", 1), ("dishub", 0)]);
    assert_eq!(opds[0].last_seen_ms, None);
    let agents = s.agents().unwrap();
    assert_eq!(agents.len(), 1);
    assert_eq!(
        (agents[0].id.as_str(), agents[0].opd.as_str()),
        ("a1", "dinkes")
    );
    assert_eq!(
        (agents[0].version.as_deref(), agents[0].conflicts),
        (None, 0)
    );
    assert!(s.agent_exists("a1").unwrap());
    assert!(!s.agent_exists("a2").unwrap());
}

/// A Hello records the agent's facts and upserts its targets; each Hello
/// opens a session; the metric seeding sees all of it.
pub fn hello_declares_targets_and_opens_a_session(s: &dyn Store) {
    let w = enrolled(s);
    let a = &s.agents().unwrap()[0];
    assert_eq!(a.version.as_deref(), Some("0.1.0"));
    assert_eq!(a.hostname.as_deref(), Some("box"));
    assert_eq!(a.clock_offset_ms, Some(3));
    // A second Hello relabels `core` and adds `dc`.
    let again = s
        .hello(
            &w,
            &hello(5, vec![target("core", "Core router"), target("dc", "DC")]),
            None,
            None,
            2_000,
        )
        .unwrap();
    assert_eq!(again.committed_seq, 0);
    let ts = s.targets(None).unwrap();
    let ids: Vec<(&str, &str)> = ts
        .iter()
        .map(|t| (t.id.as_str(), t.label.as_str()))
        .collect();
    assert_eq!(ids, [("core", "Core router"), ("dc", "DC")]);
    assert_eq!(
        (ts[0].group.as_str(), ts[0].kind.as_str()),
        ("intranet", "icmp")
    );
    assert_eq!(ts[0].observed_at_ms, None, "no result yet");
    assert!(s.targets(Some("other")).unwrap().is_empty());
    let sessions = s.sessions("a1", 0, 10_000).unwrap();
    let open: Vec<(i64, Option<i64>)> = sessions
        .iter()
        .map(|x| (x.connected_at_ms, x.disconnected_at_ms))
        .collect();
    assert_eq!(open, [(1_000, None), (2_000, None)]);
    assert_eq!(sessions[0].epoch, 5);
    // Each session keeps the address its stream came from.
    assert_eq!(sessions[0].peer.as_deref(), Some("192.0.2.7:41000"));
    assert_eq!(sessions[1].peer, None);
    let seeded = s.agent_series(86_400_000).unwrap();
    assert_eq!(seeded.len(), 1);
    assert_eq!(seeded[0].who, w);
    assert_eq!(seeded[0].targets, ["core", "dc"]);
    assert_eq!(seeded[0].last_seen_ms, None);
    assert_eq!(
        seeded[0].clock_offset_ms, None,
        "the latest Hello's estimate"
    );
}

/// Several Hellos at once: answered in order, each as a single Hello would
/// be; one for an agent that is not registered fails alone and leaves no
/// row behind; several sessions close at once.
pub fn hellos_in_one_go_fail_alone(s: &dyn Store) {
    let w = enrolled(s);
    s.add_agent("a2", "dinkes", &[2; 32]).unwrap();
    store(s, &w, &[row(5, 1), row(5, 2)], 5_000);
    let (w2, gone) = (who("a2", "dinkes"), who("gone", "dinkes"));
    let info = hello(5, vec![target("core", "Core"), target("dc", "DC")]);
    let group = [
        crate::store::IncomingHello {
            who: &w,
            info: &info,
            clock_offset_ms: Some(7),
            peer: Some("192.0.2.7:41001"),
        },
        crate::store::IncomingHello {
            who: &gone,
            info: &info,
            clock_offset_ms: None,
            peer: None,
        },
        crate::store::IncomingHello {
            who: &w2,
            info: &info,
            clock_offset_ms: None,
            peer: Some("192.0.2.8:41000"),
        },
    ];
    let answers = s.hellos(&group, 9_000).unwrap();
    assert_eq!(answers.len(), 3, "one answer per Hello");
    let a1 = answers[0].as_ref().expect("a1");
    assert!(answers[1].is_err(), "unknown agent: {:?}", answers[1]);
    let a2 = answers[2].as_ref().expect("a2");
    assert_eq!((a1.committed_seq, a2.committed_seq), (2, 0));
    assert_ne!(a1.session, a2.session);
    assert!(s.sessions("gone", 0, 100_000).unwrap().is_empty());
    assert!(!s.agent_exists("gone").unwrap());
    let mut ids: Vec<(String, String)> = s
        .targets(None)
        .unwrap()
        .into_iter()
        .map(|t| (t.agent, t.id))
        .collect();
    ids.sort();
    let want: Vec<(String, String)> = [("a1", "core"), ("a1", "dc"), ("a2", "core"), ("a2", "dc")]
        .iter()
        .map(|(a, t)| (a.to_string(), t.to_string()))
        .collect();
    assert_eq!(ids, want, "targets of the good Hellos only");
    let agents = s.agents().unwrap();
    let facts: Vec<(&str, Option<i64>)> = agents
        .iter()
        .map(|a| (a.id.as_str(), a.clock_offset_ms))
        .collect();
    assert_eq!(facts, [("a1", Some(7)), ("a2", None)]);
    let a1s = s.sessions("a1", 0, 100_000).unwrap();
    assert_eq!(a1s.len(), 2, "the enrolled one and the new one");
    assert_eq!(a1s[1].peer.as_deref(), Some("192.0.2.7:41001"));
    s.end_sessions(
        &[
            (a1.session, "agent closed the stream"),
            (a2.session, "replaced"),
        ],
        12_000,
    )
    .unwrap();
    let a1s = s.sessions("a1", 0, 100_000).unwrap();
    assert_eq!(
        (a1s[1].disconnected_at_ms, a1s[1].end_reason.as_deref()),
        (Some(12_000), Some("agent closed the stream"))
    );
    assert_eq!(a1s[0].disconnected_at_ms, None, "other sessions stay open");
    let a2s = s.sessions("a2", 0, 100_000).unwrap();
    assert_eq!(a2s[0].end_reason.as_deref(), Some("replaced"));
    // Nothing at all is a no-op.
    assert!(s.hellos(&[], 13_000).unwrap().is_empty());
    s.end_sessions(&[], 13_000).unwrap();
}

/// The committed seq (Welcome's resume point) is the highest contiguous
/// one: a forged result far ahead does not move it, a gap stops it until
/// filled, and a Hello answers with the same value it remembers.
pub fn committed_seq_is_contiguous(s: &dyn Store) {
    let w = enrolled(s);
    store(s, &w, &[row(5, 1), row(5, 2), row(5, 3)], 200_000);
    let forged = store(s, &w, &[row(5, 1_000_000_000_000)], 210_000);
    assert_eq!(forged.new, 1, "stored, but it is not contiguous");
    assert_eq!(s.committed_seq("a1", 5).unwrap(), 3);
    let hello5 = |at| {
        s.hello(&w, &hello(5, vec![target("core", "Core")]), None, None, at)
            .unwrap()
            .committed_seq
    };
    assert_eq!(hello5(220_000), 3, "Welcome is not MAX(seq)");
    store(s, &w, &[row(5, 4), row(5, 5), row(5, 7)], 230_000);
    assert_eq!(s.committed_seq("a1", 5).unwrap(), 5, "seq 6 is missing");
    assert_eq!(hello5(240_000), 5);
    store(s, &w, &[row(5, 6)], 250_000);
    assert_eq!(s.committed_seq("a1", 5).unwrap(), 7, "the gap is filled");
    assert_eq!(hello5(260_000), 7);
    // Another epoch starts at its own first stored seq.
    store(s, &w, &[row(6, 40), row(6, 41)], 270_000);
    assert_eq!(s.committed_seq("a1", 6).unwrap(), 41);
    assert_eq!(s.committed_seq("a1", 7).unwrap(), 0);
    assert_eq!(s.committed_seq("nobody", 5).unwrap(), 0);
}

/// A replayed batch (a lost ack) stores nothing twice; the committed seq is
/// per epoch; the API reads what was stored.
pub fn replayed_batch_is_stored_once(s: &dyn Store) {
    let w = enrolled(s);
    let first = store(s, &w, &[row(5, 1), row(5, 2), row(5, 3)], 200_000);
    assert_eq!((first.new, first.conflicts.len()), (3, 0));
    let again = store(s, &w, &[row(5, 2), row(5, 3), row(5, 4)], 300_000);
    assert_eq!(again.new, 1, "only seq 4 is new");
    assert!(again.conflicts.is_empty() && again.conflicts_resent.is_empty());
    assert_eq!(s.committed_seq("a1", 5).unwrap(), 4);
    assert_eq!(s.committed_seq("a1", 6).unwrap(), 0);
    assert_eq!(
        s.hello(&w, &hello(5, vec![]), None, None, 400_000)
            .unwrap()
            .committed_seq,
        4
    );
    let rs = s.results("a1", 0, 1_000_000, 100).unwrap();
    assert_eq!(rs.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(rs[1].received_at_ms, 200_000, "the first delivery stays");
    assert_eq!(
        (
            rs[0].opd.as_str(),
            rs[0].kind.as_str(),
            rs[0].outcome.as_str()
        ),
        ("dinkes", "icmp", "ok")
    );
    assert_eq!(rs[0].data, serde_json::json!({"samples_us": [1500]}));
    // The window is [from, to) and the limit holds.
    let window = s.results("a1", 120_000, 240_000, 100).unwrap();
    assert_eq!(window.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(s.results("a1", 0, 1_000_000, 2).unwrap().len(), 2);
    let t = &s.targets(None).unwrap()[0];
    assert_eq!((t.observed_at_ms, t.loss), (Some(240_000), Some(0.0)));
    assert_eq!(s.opds().unwrap()[0].last_seen_ms, Some(300_000));
    assert_eq!(
        s.agent_series(86_400_000).unwrap()[0].last_seen_ms,
        Some(300_000)
    );
}

/// A different result under a stored identity is kept aside once, counted
/// once, and never replaces the stored one.
pub fn conflicting_duplicate_is_kept_aside_once(s: &dyn Store) {
    let w = enrolled(s);
    store(s, &w, &[row(5, 1)], 100_000);
    let mut other = row(5, 1);
    other.outcome = Outcome::Timeout;
    other.value_ms = None;
    let mut replay = row(5, 1);
    replay.late = true;
    let got = store(s, &w, &[replay, other.clone(), row(5, 2)], 200_000);
    assert_eq!((got.new, got.conflicts.clone()), (1, vec![1]));
    assert!(got.is_conflict(1) && !got.is_conflict(0) && !got.is_conflict(2));
    let resent = store(s, &w, &[other], 300_000);
    assert_eq!(
        (
            resent.new,
            resent.conflicts.len(),
            resent.conflicts_resent.clone()
        ),
        (0, 0, vec![0])
    );
    assert_eq!(s.agents().unwrap()[0].conflicts, 1);
    let rs = s.results("a1", 0, 1_000_000, 100).unwrap();
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].outcome, "ok", "the first stored result stays");
}

/// Several batches in one transaction (the writer folds queued batches):
/// an identity is stored once even when two batches of the transaction
/// carry it, another agent's equal seq is its own, a conflicting copy is
/// kept aside once, and the export queue follows batch order.
pub fn batches_of_one_transaction_dedupe_among_themselves(s: &dyn Store) {
    let a1 = enrolled(s);
    s.add_opd("bappeda", "Bappeda").unwrap();
    s.add_agent("a2", "bappeda", &[2; 32]).unwrap();
    let a2 = who("a2", "bappeda");
    s.hello(
        &a2,
        &hello(5, vec![target("core", "Core")]),
        None,
        None,
        1_000,
    )
    .unwrap();
    assert_eq!(s.export_prepare(true).unwrap(), 0);
    let mut other = row(5, 2);
    other.outcome = Outcome::Timeout;
    let (first, second, third) = (
        [row(5, 1), row(5, 2)],
        [row(5, 1), row(5, 2)],
        [row(5, 2), other.clone(), row(5, 3)],
    );
    let batch = |w, rows| IncomingBatch {
        who: w,
        rows,
        peer: Some("192.0.2.1:4000"),
    };
    let out = s
        .store_batches(
            &[batch(&a1, &first), batch(&a2, &second), batch(&a1, &third)],
            200_000,
        )
        .unwrap();
    let got: Vec<(usize, Vec<usize>, Vec<usize>)> = out
        .iter()
        .map(|o| (o.new, o.conflicts.clone(), o.conflicts_resent.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (2, vec![], vec![]),
            (2, vec![], vec![]),
            (1, vec![1], vec![])
        ]
    );
    let seqs = |agent| -> Vec<(u64, String)> {
        s.results(agent, 0, 1_000_000, 100)
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r.outcome))
            .collect()
    };
    assert_eq!(
        seqs("a1"),
        [(1, "ok".into()), (2, "ok".into()), (3, "ok".into())]
    );
    assert_eq!(seqs("a2"), [(1, "ok".into()), (2, "ok".into())]);
    // The same conflict twice in one transaction: kept once, then resent.
    let out = s
        .store_batches(
            &[
                batch(&a1, std::slice::from_ref(&other)),
                batch(&a1, std::slice::from_ref(&other)),
            ],
            300_000,
        )
        .unwrap();
    assert_eq!(
        (
            out[0].new,
            out[0].conflicts_resent.clone(),
            out[1].conflicts_resent.clone()
        ),
        (0, vec![0], vec![0]),
        "kept in the first call already"
    );
    assert_eq!(s.agents().unwrap()[0].conflicts, 1);
    let queued: Vec<(String, i64)> = s
        .export_take(10)
        .unwrap()
        .into_iter()
        .map(|q| match q.item {
            Queued::Result(r) => (r.agent, r.observed_at_ms),
            other => panic!("a result: {other:?}"),
        })
        .collect();
    assert_eq!(
        queued,
        [
            ("a1".into(), 60_000),
            ("a1".into(), 120_000),
            ("a2".into(), 60_000),
            ("a2".into(), 120_000),
            ("a1".into(), 180_000),
        ],
        "queued once each, in batch order"
    );
}

/// Sessions end with a reason; those left open by a stopped collector end
/// at the last result received in them.
pub fn sessions_end_and_dangling_ones_close(s: &dyn Store) {
    let w = enrolled(s);
    let first = s.sessions("a1", 0, 10_000).unwrap();
    assert_eq!(first.len(), 1);
    let id = s
        .hello(&w, &hello(5, vec![]), None, None, 50_000)
        .unwrap()
        .session;
    // The first (id unknown to the caller here) is closed as dangling below.
    s.end_session(id, 70_000, "agent closed the stream")
        .unwrap();
    s.end_session(id, 90_000, "twice").unwrap();
    store(s, &w, &[row(5, 1)], 40_000);
    assert_eq!(s.close_dangling_sessions().unwrap(), 1);
    assert_eq!(s.close_dangling_sessions().unwrap(), 0);
    let all = s.sessions("a1", 0, 1_000_000).unwrap();
    let got: Vec<(i64, Option<i64>, Option<&str>)> = all
        .iter()
        .map(|x| {
            (
                x.connected_at_ms,
                x.disconnected_at_ms,
                x.end_reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1_000, Some(40_000), Some("collector stopped")),
            (50_000, Some(70_000), Some("agent closed the stream")),
        ]
    );
    // Overlap: a session ending at `from` still counts, one starting at `to` not.
    assert_eq!(s.sessions("a1", 70_000, 80_000).unwrap().len(), 1);
    assert_eq!(s.sessions("a1", 71_000, 1_000_000).unwrap().len(), 0);
    assert!(s.sessions("a1", 0, 1_000).unwrap().is_empty());
}

/// Results queue for export only while export is enabled, oldest first;
/// acknowledged entries go; switching export off empties the queue.
pub fn export_queue_fills_only_while_enabled(s: &dyn Store) {
    let w = enrolled(s);
    assert_eq!(s.export_prepare(false).unwrap(), 0);
    store(s, &w, &[row(5, 1)], 100_000);
    assert_eq!(s.export_pending().unwrap(), 0, "disabled: nothing queued");
    assert!(s.export_take(10).unwrap().is_empty());
    assert_eq!(s.export_prepare(true).unwrap(), 0);
    let mut flagged = row(5, 3);
    flagged.clock_flag = Some("future");
    store(s, &w, &[row(5, 1), row(5, 2), flagged, row(5, 4)], 200_000);
    assert_eq!(
        s.export_pending().unwrap(),
        3,
        "a replay is not queued again"
    );
    let q = s.export_take(10).unwrap();
    assert_eq!(q.len(), 3);
    assert!(q.windows(2).all(|p| p[0].id < p[1].id), "oldest first");
    let Queued::Result(r) = &q[0].item else {
        panic!("a result: {:?}", q[0].item)
    };
    assert_eq!(
        (
            r.opd.as_str(),
            r.agent.as_str(),
            r.target.as_str(),
            r.group.as_str()
        ),
        ("dinkes", "a1", "core", "intranet")
    );
    assert_eq!(
        (r.observed_at_ms, r.outcome, r.value_ms, r.sent, r.received),
        (120_000, Outcome::Ok, Some(1.5), Some(5), Some(5))
    );
    assert_eq!(q[1].item, Queued::Untrusted);
    assert!(matches!(&q[2].item, Queued::Result(r) if r.observed_at_ms == 240_000));
    assert_eq!(s.export_take(1).unwrap().len(), 1);
    s.export_ack(q[0].id).unwrap();
    assert_eq!(s.export_pending().unwrap(), 2);
    assert_eq!(s.export_take(10).unwrap()[0].id, q[1].id);
    // Enabling twice keeps the queue.
    assert_eq!(s.export_prepare(true).unwrap(), 0);
    assert_eq!(s.export_prepare(false).unwrap(), 2);
    assert_eq!(s.export_pending().unwrap(), 0);
    store(s, &w, &[row(5, 5)], 300_000);
    assert_eq!(s.export_pending().unwrap(), 0, "disabled again");
}

/// The data written at the previous schema version is all there after
/// migrating, and the new schema's features work on it. The fixture holds,
/// written with that schema's own means: OPD `old` ("Old OPD"), agent
/// `old-1` with token digest `[7; 32]`, its ICMP target `core` (group
/// intranet, address 10.0.0.1, label "Core", interval 30 s, timeout 5 s)
/// and one result of it: epoch 1, seq 1, observed at 60 000 ms, received at
/// 61 000 ms, outcome ok, 1.5 ms, 5 of 5 echoes, data `{"samples_us":[1500]}`.
pub fn previous_schema_data_survives(s: &dyn Store) {
    assert_eq!(s.opd_name("old").unwrap().as_deref(), Some("Old OPD"));
    let (w, _) = s.agent_by_token(&[7; 32]).unwrap().expect("the old agent");
    assert_eq!(w, who("old-1", "old"));
    let t = s.targets(None).unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].id.as_str(), t[0].label.as_str(), t[0].address.as_str()),
        ("core", "Core", "10.0.0.1")
    );
    assert_eq!(t[0].observed_at_ms, Some(60_000));
    let rs = s.results("old-1", 0, 1_000_000, 10).unwrap();
    assert_eq!(rs.len(), 1);
    assert_eq!(
        (rs[0].epoch, rs[0].seq, rs[0].received_at_ms, rs[0].value_ms),
        (1, 1, 61_000, Some(1.5))
    );
    assert_eq!(rs[0].data, serde_json::json!({"samples_us": [1500]}));
    assert_eq!(s.committed_seq("old-1", 1).unwrap(), 1);
    // A replay of the old result is recognised as one; a different result
    // under its identity is kept aside; new results store.
    let mut other = row(1, 1);
    other.outcome = Outcome::Timeout;
    let got = store(s, &w, &[row(1, 1), other, row(1, 2)], 200_000);
    assert_eq!((got.new, got.conflicts.clone()), (1, vec![1]));
    assert_eq!(s.committed_seq("old-1", 1).unwrap(), 2);
    assert_eq!(s.agents().unwrap()[0].conflicts, 1);
}

/// Disable, enable, rotate (with expiry) and revoke an agent's credential;
/// the token check sees each state, unknown and revoked agents are refused.
pub fn credential_life_cycle(s: &dyn Store) {
    use crate::store::registry::{CredentialChange as C, Refusal};
    s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
    s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
    s.add_agent("a2", "dinkes", &[2; 32]).unwrap();
    let now = crate::store::now_ms();
    let cred = |id: &str| s.credential_of(id).unwrap().unwrap();
    assert_eq!(cred("a1").refusal(&[1; 32], now), None);
    assert!(matches!(
        s.change_credential("nope", &C::Disable),
        Err(StoreError::UnknownAgent(a)) if a == "nope"
    ));
    s.change_credential("a1", &C::Disable).unwrap();
    assert_eq!(cred("a1").refusal(&[1; 32], now), Some(Refusal::Disabled));
    assert!(
        s.agent_by_token(&[1; 32]).unwrap().is_none(),
        "disabled: no token check passes"
    );
    assert_eq!(
        s.credential_by_token(&[1; 32])
            .unwrap()
            .unwrap()
            .who
            .agent_id,
        "a1"
    );
    s.change_credential("a1", &C::Enable).unwrap();
    assert_eq!(cred("a1").refusal(&[1; 32], now), None);
    assert!(s.agent_by_token(&[1; 32]).unwrap().is_some());

    let rotate = C::Rotate {
        token_sha256: vec![3; 32],
        expires_at_ms: Some(now + 60_000),
    };
    s.change_credential("a1", &rotate).unwrap();
    assert!(s.credential_by_token(&[1; 32]).unwrap().is_none());
    assert_eq!(
        s.retired_token(&[1; 32]).unwrap(),
        Some(("a1".to_string(), Refusal::Rotated))
    );
    assert_eq!(cred("a1").refusal(&[1; 32], now), Some(Refusal::Rotated));
    assert_eq!(cred("a1").refusal(&[3; 32], now), None);
    assert_eq!(
        cred("a1").refusal(&[3; 32], now + 60_000),
        Some(Refusal::Expired)
    );
    assert!(s.agent_by_token(&[3; 32]).unwrap().is_some());

    s.change_credential("a2", &C::Revoke).unwrap();
    assert!(
        s.credential_by_token(&[2; 32]).unwrap().is_none(),
        "digest dropped"
    );
    assert_eq!(cred("a2").refusal(&[2; 32], now), Some(Refusal::Revoked));
    assert_eq!(
        s.retired_token(&[2; 32]).unwrap(),
        Some(("a2".to_string(), Refusal::Revoked))
    );
    assert!(matches!(
        s.change_credential("a2", &C::Enable),
        Err(StoreError::Revoked(_))
    ));
    assert!(matches!(
        s.change_credential("a2", &rotate),
        Err(StoreError::Revoked(_))
    ));

    s.record_auth("a1", "192.0.2.7:5000", now).unwrap();
    let list = s.credentials().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].agent_id, "a1");
    assert_eq!(list[0].last_peer.as_deref(), Some("192.0.2.7:5000"));
    assert_eq!(list[0].last_auth_at_ms, Some(now));
    assert_eq!(list[0].expires_at_ms, Some(now + 60_000));
    assert!(!list[0].disabled && !list[0].revoked);
    assert!(list[1].revoked);
}

/// The audit log chains entries from the genesis hash, one seq after the
/// other, and reads them back filtered by seq and time.
pub fn audit_log_chains_in_order(s: &dyn Store) {
    use crate::store::audit::{AuditQuery, GENESIS, NewAuditEntry};
    let entry = |action: &str, time_ms: i64| NewAuditEntry {
        time_ms,
        actor_kind: "cli-user".into(),
        actor_name: "root".into(),
        source: "cli:root@box".into(),
        action: action.into(),
        object: "dinkes".into(),
        before: serde_json::Value::Null,
        after: serde_json::json!({"name": "Dinas Kesehatan", "z": [1, {"b": 2, "a": "é"}]}),
    };
    assert_eq!(s.audit_head().unwrap(), 0);
    let a = s.append_audit(&entry("opd.add", 1_000)).unwrap();
    let b = s.append_audit(&entry("opd.contract", 2_000)).unwrap();
    let c = s.append_audit(&entry("agent.add", 3_000)).unwrap();
    assert_eq!((a.seq, b.seq, c.seq), (1, 2, 3));
    assert_eq!(a.prev_hash, GENESIS);
    assert_eq!(b.prev_hash, a.hash);
    assert_eq!(c.prev_hash, b.hash);
    for e in [&a, &b, &c] {
        assert_eq!(e.hash, e.computed_hash(), "entry {}", e.seq);
    }
    assert_eq!(s.audit_head().unwrap(), 3);
    let all = s.audit_list(&AuditQuery::default()).unwrap();
    assert_eq!(all, vec![a, b.clone(), c.clone()]);
    let after = s
        .audit_list(&AuditQuery {
            after_seq: Some(1),
            since_ms: None,
        })
        .unwrap();
    assert_eq!(after, vec![b, c.clone()]);
    let since = s
        .audit_list(&AuditQuery {
            after_seq: None,
            since_ms: Some(2_500),
        })
        .unwrap();
    assert_eq!(since, vec![c.clone()]);
    // The report snapshot reads the same log.
    let mut seen = Vec::new();
    crate::store::report::snapshot(s, |r| -> Result<(), crate::store::StoreError> {
        seen = r.audit_entries(&AuditQuery::default())?;
        Ok(())
    })
    .unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], c);
}
