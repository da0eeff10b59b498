//! Bad, hostile and duplicate traffic against a real collector: each gets
//! the matching gRPC status, and the collector keeps serving with its data
//! intact.

mod common;

use std::time::Duration;

use common::*;
use pantau_proto::v1 as pb;
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

fn hello(agent: &str, epoch: u64) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Hello(pb::Hello {
            config_version: 0,
            config_sha256: String::new(),
            agent_id: agent.into(),
            agent_version: "test".into(),
            spool: Some(pb::SpoolState {
                epoch,
                next_seq: 1,
                ..Default::default()
            }),
            agent_time: Some(pantau_proto::timestamp_from_millis(1_795_000_000_000)),
            targets: vec![pb::TargetInfo {
                id: "core".into(),
                group: "intranet".into(),
                kind: pb::ProbeKind::Tcp as i32,
                address: "127.0.0.1:1".into(),
                interval_ms: 1000,
                timeout_ms: 500,
                label: String::new(),
            }],
            ..Default::default()
        })),
    }
}

fn result(epoch: u64, seq: u64, target: &str) -> pb::Result {
    pb::Result {
        epoch,
        seq,
        target_id: target.into(),
        kind: pb::ProbeKind::Tcp as i32,
        observed_at: Some(pantau_proto::timestamp_from_millis(
            1_795_000_000_000 + seq as i64 * 1000,
        )),
        outcome: pb::Outcome::Ok as i32,
        detail: String::new(),
        measurement: Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
            connect_us: 250,
        })),
    }
}

fn batch(results: Vec<pb::Result>) -> pb::AgentMessage {
    pb::AgentMessage {
        msg: Some(pb::agent_message::Msg::Batch(pb::ResultBatch { results })),
    }
}

use common::grpc::Conn;

/// Open a stream as agent `dinkes-1` (its client certificate) with
/// `token`, send `first`; returns the stream or the status.
async fn open(
    grpc: std::net::SocketAddr,
    token: Option<&str>,
    first: pb::AgentMessage,
) -> Result<Conn, tonic::Status> {
    common::grpc::open_as(grpc, "dinkes-1", token, first).await
}

async fn next(c: &mut Conn) -> Result<pb::collector_message::Msg, tonic::Status> {
    c.next_within(Duration::from_secs(10)).await
}

/// The status that ends a stream after `msgs` are sent.
async fn status_after(c: &mut Conn, msgs: Vec<pb::AgentMessage>) -> tonic::Status {
    for m in msgs {
        if c.tx.send(m).await.is_err() {
            break;
        }
    }
    loop {
        match next(c).await {
            Ok(pb::collector_message::Msg::Ack(_)) => continue,
            Ok(other) => panic!("expected an error status, got {other:?}"),
            Err(s) => return s,
        }
    }
}

/// Sends raw bytes as gRPC messages, to deliver undecodable protobuf.
#[derive(Default)]
struct RawCodec;

struct RawEnc;
struct RawDec;

impl Encoder for RawEnc {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes_put::Put;
        dst.put(&item);
        Ok(())
    }
}

impl Decoder for RawDec {
    type Item = pb::CollectorMessage;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut DecodeBuf<'_>,
    ) -> Result<Option<pb::CollectorMessage>, tonic::Status> {
        pb::CollectorMessage::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = pb::CollectorMessage;
    type Encoder = RawEnc;
    type Decoder = RawDec;
    fn encoder(&mut self) -> RawEnc {
        RawEnc
    }
    fn decoder(&mut self) -> RawDec {
        RawDec
    }
}

mod bytes_put {
    /// Write a slice into tonic's EncodeBuf (it implements `BufMut`).
    pub trait Put {
        fn put(&mut self, b: &[u8]);
    }
    impl Put for tonic::codec::EncodeBuf<'_> {
        fn put(&mut self, b: &[u8]) {
            prost::bytes::BufMut::put_slice(self, b);
        }
    }
}

async fn raw_stream(grpc: std::net::SocketAddr, token: &str, msgs: Vec<Vec<u8>>) -> tonic::Status {
    let channel = common::grpc::channel_as(&grpc.to_string(), "dinkes-1").await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(tokio_stream::iter(msgs));
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/pantau.v1.Ingest/Stream");
    match grpc.streaming(req, path, RawCodec).await {
        Err(s) => s,
        Ok(resp) => {
            let mut s = resp.into_inner();
            loop {
                match s.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("stream ended without an error status"),
                    Err(st) => return st,
                }
            }
        }
    }
}

fn stored(data: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    db.query_row("SELECT COUNT(*) FROM result", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_traffic_gets_statuses_and_data_survives() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    let other = tokio::task::block_in_place(|| {
        collector_cmd(
            &data,
            &[
                "agent",
                "add",
                "dinkes-2",
                "--opd",
                "dinkes",
                "--print-token",
            ],
        )
        .trim()
        .to_string()
    });
    let collector = tokio::task::block_in_place(|| Collector::start(&data));
    let g = collector.grpc;

    // A good agent stores three results and gets them acknowledged.
    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    match next(&mut c).await.unwrap() {
        pb::collector_message::Msg::Welcome(w) => {
            assert_eq!(
                (w.epoch, w.committed_seq, w.opd_id.as_str()),
                (77, 0, "dinkes")
            );
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    c.tx.send(batch((1..=3).map(|s| result(77, s, "core")).collect()))
        .await
        .unwrap();
    match next(&mut c).await.unwrap() {
        pb::collector_message::Msg::Ack(a) => assert_eq!((a.epoch, a.up_to_seq), (77, 3)),
        other => panic!("expected Ack, got {other:?}"),
    }
    drop(c);
    assert_eq!(stored(&data), 3);

    // No token, a wrong token, another agent's token.
    assert_eq!(
        open(g, None, hello("dinkes-1", 77))
            .await
            .err()
            .unwrap()
            .code(),
        Code::Unauthenticated
    );
    let wrong = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        open(g, Some(&wrong), hello("dinkes-1", 77))
            .await
            .err()
            .unwrap()
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        // (dinkes-2's own certificate: its token, another agent's Hello)
        common::grpc::open_as(g, "dinkes-2", Some(&other), hello("dinkes-1", 77))
            .await
            .err()
            .unwrap()
            .code(),
        Code::PermissionDenied
    );

    // Protocol violations.
    let first_not_hello = open(g, Some(&token), batch(vec![result(77, 4, "core")])).await;
    assert_eq!(first_not_hello.err().unwrap().code(), Code::InvalidArgument);
    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    next(&mut c).await.unwrap();
    let s = status_after(&mut c, vec![batch(vec![result(77, 4, "not-declared")])]).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("not declared"), "{s:?}");

    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    next(&mut c).await.unwrap();
    let mut bad = result(77, 4, "core");
    bad.outcome = 42;
    let s = status_after(&mut c, vec![batch(vec![bad])]).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    // Too many results in one batch, and one message over the size limit.
    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    next(&mut c).await.unwrap();
    let s = status_after(
        &mut c,
        vec![batch((4..1010).map(|s| result(77, s, "core")).collect())],
    )
    .await;
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");

    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    next(&mut c).await.unwrap();
    let mut huge = result(77, 4, "core");
    huge.detail = "x".repeat(pantau_proto::MAX_MESSAGE_BYTES + 1);
    let s = status_after(&mut c, vec![batch(vec![huge])]).await;
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");

    // Bytes that are not protobuf at all, after a valid Hello.
    let s = raw_stream(
        g,
        &token,
        vec![hello("dinkes-1", 77).encode_to_vec(), vec![0xff; 64]],
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    // Nothing refused was stored; the collector still serves and dedupes a replay.
    assert_eq!(stored(&data), 3);
    let mut c = open(g, Some(&token), hello("dinkes-1", 77)).await.unwrap();
    match next(&mut c).await.unwrap() {
        pb::collector_message::Msg::Welcome(w) => assert_eq!(w.committed_seq, 3, "resume point"),
        other => panic!("expected Welcome, got {other:?}"),
    }
    // The agent resends 2..=5 (2 and 3 are duplicates).
    c.tx.send(batch((2..=5).map(|s| result(77, s, "core")).collect()))
        .await
        .unwrap();
    match next(&mut c).await.unwrap() {
        pb::collector_message::Msg::Ack(a) => assert_eq!(a.up_to_seq, 5),
        other => panic!("expected Ack, got {other:?}"),
    }
    drop(c);
    assert_eq!(stored(&data), 5, "duplicates never count twice");

    let m = tokio::task::block_in_place(|| collector.metrics());
    assert_eq!(
        metric(&m, "pantau_ingest_results_total", &[("opd", "dinkes")]),
        Some(5.0)
    );
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_duplicate_results_total",
            &[("opd", "dinkes")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "unauthenticated")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "too_large")]
        ),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "malformed")]
        ),
        Some(1.0)
    );
    let (code, _) = tokio::task::block_in_place(|| collector.get("/healthz"));
    assert_eq!(code, 200);
}

/// A Hello of `agent` whose one target `f` changes, declaring `next_seq`.
fn hello_with(
    agent: &str,
    epoch: u64,
    next_seq: u64,
    f: impl FnOnce(&mut pb::TargetInfo),
) -> pb::AgentMessage {
    let mut m = hello(agent, epoch);
    if let Some(pb::agent_message::Msg::Hello(h)) = m.msg.as_mut() {
        h.spool.as_mut().unwrap().next_seq = next_seq;
        f(&mut h.targets[0]);
    }
    m
}

/// What no working agent declares or measures is refused with a status
/// naming the field, and nothing of it is stored: an interval of 2^52 ms, a
/// label with CR/LF, an RTT of u64::MAX µs, a seq far above the declared
/// next_seq. A second stream with the same identity takes over; the older
/// one is closed with ABORTED naming the newer peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implausible_declarations_and_results_get_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    let collector = tokio::task::block_in_place(|| Collector::start(&data));
    let g = collector.grpc;

    let s = open(
        g,
        Some(&token),
        hello_with("dinkes-1", 5, 1, |t| t.interval_ms = 1 << 52),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_eq!(
        s.message(),
        "Hello: targets[0].interval_ms 4503599627370496 is out of range; allowed 1000 to 86400000"
    );
    let s = open(
        g,
        Some(&token),
        hello_with("dinkes-1", 5, 1, |t| {
            t.label = "core\r\n=cmd|' /C calc'!A0".into()
        }),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(s.message().contains("targets[0].label"), "{s:?}");

    // An RTT of u64::MAX µs.
    let mut c = open(g, Some(&token), hello("dinkes-1", 5)).await.unwrap();
    next(&mut c).await.unwrap();
    let mut bad = result(5, 1, "core");
    bad.measurement = Some(pb::result::Measurement::Tcp(pb::TcpMeasurement {
        connect_us: u64::MAX,
    }));
    let s = status_after(&mut c, vec![batch(vec![bad])]).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert_eq!(
        s.message(),
        "results[0]: connect_us 18446744073709551615 is out of range; at most 120000000"
    );

    // A seq far above the next_seq the Hello declared.
    let mut c = open(g, Some(&token), hello_with("dinkes-1", 5, 10, |_| {}))
        .await
        .unwrap();
    next(&mut c).await.unwrap();
    let s = status_after(
        &mut c,
        vec![batch(vec![result(5, 1_000_000_000_000, "core")])],
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    assert!(
        s.message().starts_with(
            "results[0].seq 1000000000000 is far above the next_seq 10 declared in Hello"
        ),
        "{s:?}"
    );
    assert_eq!(stored(&data), 0, "nothing refused is stored");

    // One active stream per agent: the newer takes over.
    let mut older = open(g, Some(&token), hello("dinkes-1", 5)).await.unwrap();
    next(&mut older).await.unwrap();
    let mut newer = open(g, Some(&token), hello("dinkes-1", 5)).await.unwrap();
    next(&mut newer).await.unwrap();
    let s = status_after(&mut older, vec![]).await;
    assert_eq!(s.code(), Code::Aborted, "{s:?}");
    assert!(
        s.message()
            .starts_with("replaced by a newer connection from 127.0.0.1:"),
        "{s:?}"
    );
    newer
        .tx
        .send(batch((1..=2).map(|s| result(5, s, "core")).collect()))
        .await
        .unwrap();
    match next(&mut newer).await.unwrap() {
        pb::collector_message::Msg::Ack(a) => assert_eq!(a.up_to_seq, 2),
        other => panic!("expected Ack, got {other:?}"),
    }
    drop(newer);
    assert_eq!(stored(&data), 2);
    let m = tokio::task::block_in_place(|| collector.metrics());
    assert_eq!(
        metric(
            &m,
            "pantau_ingest_rejected_total",
            &[("reason", "replaced")]
        ),
        Some(1.0)
    );
    let (code, _) = tokio::task::block_in_place(|| collector.get("/healthz"));
    assert_eq!(code, 200);
}

/// The largest legal batch (1 000 results with the longest detail, about
/// 1 MB) is bigger than the collector's HTTP/2 flow-control windows
/// (`ingest::server::STREAM_WINDOW_BYTES`): it still arrives whole and is
/// stored and acknowledged, twice in a row on one stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn largest_batch_passes_the_flow_control_windows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = tokio::task::block_in_place(|| enrol(&data, "dinkes", "dinkes-1"));
    let collector = tokio::task::block_in_place(|| Collector::start(&data));
    let mut c = open(collector.grpc, Some(&token), hello("dinkes-1", 77))
        .await
        .unwrap();
    next(&mut c).await.unwrap();
    let full = |from: u64| {
        let results: Vec<pb::Result> = (from..from + pantau_proto::MAX_BATCH_RESULTS as u64)
            .map(|s| {
                let mut r = result(77, s, "core");
                r.detail = "d".repeat(1024);
                r
            })
            .collect();
        batch(results)
    };
    let size = full(1).encoded_len();
    assert!(
        size > 2 * pantau_collector::ingest::server::CONNECTION_WINDOW_BYTES as usize,
        "{size} bytes"
    );
    c.tx.send(full(1)).await.unwrap();
    c.tx.send(full(1001)).await.unwrap();
    let mut acked = 0;
    while acked < 2000 {
        match next(&mut c).await.unwrap() {
            pb::collector_message::Msg::Ack(a) => acked = a.up_to_seq,
            pb::collector_message::Msg::Backoff(_) => {}
            other => panic!("expected Ack, got {other:?}"),
        }
    }
    drop(c);
    assert_eq!(stored(&data), 2000);
}
