//! Fuzzing the collector's wire boundary: protobuf decoding of what an
//! agent sends (`AgentMessage`) and of what the collector sends back
//! (`CollectorMessage`, read by every agent), the ingest validation of
//! Hello and Result batches through its public API (`ingest::validate`),
//! and the agent's parsing of the targets TOML a collector hands out at
//! enrolment.
//!
//! Seeds are messages built by the agent's real encoders (`pb::Result` from
//! a spool `Record`, `wire_kind`, `SpoolState`) and the shipped example
//! configuration, mutated byte by byte; the validation targets also get
//! structured random messages with boundary values. Budget:
//! `PANTAU_FUZZ_CASES` cases for a cheap target (default [`fuzz_kit::DEFAULT_CASES`],
//! the same as the agent crate's: 60-90 s for all the workspace's fuzz
//! targets in a debug `cargo test` on two cores), costly targets a
//! fraction; the seed is fixed (`PANTAU_FUZZ_SEED` overrides it).
//! Properties: never a panic; decode gives a typed error or a message that
//! re-encodes to itself; validation gives a typed, readable error or rows
//! that keep what was sent and the invariants the store relies on.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use pantau_agent::model::{
    BandwidthResult, Health, Hop, LinkSample, Measurement, Observation, Outcome, PathTrace,
    PingStats, ProbeKind, Record,
};
use pantau_agent::spool::SpoolState;
use pantau_agent::wire::wire_kind;
use pantau_collector::ingest::validate;
use pantau_proto::v1 as pb;
use proptest::prelude::*;
use proptest::sample::Index;
use prost::Message;

#[path = "../../agent/src/probe/fuzz_kit.rs"]
mod fuzz_kit;
use fuzz_kit::{apply, config, mutation};

const EPOCH: u64 = 0x1234_5678_9abc;

// ---------------------------------------------------------------- mutator

/// Varint and tag boundaries: continuation bits, wire types 0-7, all ones.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x07, 0x08, 0x0a, 0x12, 0x1a, 0x7f, 0x80, 0x81, 0xfe, 0xff,
];

/// Mutated seeds (mostly) or plain random bytes.
fn input(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = corpus.len();
    prop_oneof![
        4 => (0..n, proptest::collection::vec(mutation(INTERESTING), 1..4))
            .prop_map(move |(i, muts)| apply(corpus[i].clone(), &muts)),
        1 => proptest::collection::vec(any::<u8>(), 0..128),
    ]
}

// ---------------------------------------------------------------- seeds

const TARGETS: &[(&str, &str, ProbeKind)] = &[
    ("gw-ping", "intranet", ProbeKind::Icmp),
    ("web-tcp", "internet", ProbeKind::Tcp),
    ("portal", "app", ProbeKind::Http),
    ("dns-1", "datacenter", ProbeKind::Dns),
    ("bw", "internet", ProbeKind::Bandwidth),
    ("wan-link", "jip", ProbeKind::Link),
    ("path", "internet", ProbeKind::Traceroute),
];

/// A Hello as the agent sends it.
fn seed_hello() -> pb::Hello {
    pb::Hello {
        config_version: 0,
        config_sha256: String::new(),
        agent_id: "opd-dinkes-1".into(),
        agent_version: "0.1.0".into(),
        config_hash: "9f86d081884c7d65".into(),
        spool: Some(pb::SpoolState::from(SpoolState {
            epoch: EPOCH,
            first_seq: 1,
            next_seq: 40,
            records: 39,
            bytes: 4096,
            ..SpoolState::default()
        })),
        agent_time: Some(pantau_proto::timestamp_from_millis(1_764_800_000_000)),
        targets: TARGETS
            .iter()
            .map(|(id, group, kind)| pb::TargetInfo {
                id: (*id).into(),
                group: (*group).into(),
                kind: wire_kind(*kind).into(),
                address: "10.1.2.3".into(),
                interval_ms: 60_000,
                timeout_ms: 5_000,
                label: format!("Target {id}"),
            })
            .collect(),
        hostname: "pantau-dinkes".into(),
    }
}

/// One measurement of every kind, as the probes produce them.
// Long: a table of one literal per probe kind.
fn measurements() -> Vec<(Option<ProbeKind>, &'static str, Outcome, Measurement)> {
    let ms = Duration::from_millis;
    vec![
        (
            Some(ProbeKind::Icmp),
            "gw-ping",
            Outcome::Ok,
            Measurement::Ping(PingStats {
                sent: 3,
                received: 2,
                samples: vec![ms(3), ms(5)],
                min: ms(3),
                avg: ms(4),
                max: ms(5),
                stddev: ms(1),
            }),
        ),
        (
            Some(ProbeKind::Tcp),
            "web-tcp",
            Outcome::Refused,
            Measurement::Tcp { connect: ms(12) },
        ),
        (
            Some(ProbeKind::Http),
            "portal",
            Outcome::Ok,
            Measurement::Http {
                status: 200,
                ttfb: ms(80),
                total: ms(120),
                tls_not_after: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
                body_bytes: 5120,
            },
        ),
        (
            Some(ProbeKind::Dns),
            "dns-1",
            Outcome::DnsError,
            Measurement::Dns {
                resolve: ms(9),
                answers: 0,
                rcode: 3,
            },
        ),
        (
            None,
            "",
            Outcome::Ok,
            Measurement::Heartbeat(Health {
                uptime: Duration::from_secs(3600),
                spool_records: 4,
                spool_bytes: 900,
                clock_offset_ms: -12,
                probes_in_flight: 2,
                ..Health::default()
            }),
        ),
        (
            Some(ProbeKind::Bandwidth),
            "bw",
            Outcome::Ok,
            Measurement::Bandwidth(BandwidthResult {
                download_bps: 50_000_000,
                upload_bps: 10_000_000,
                download_bytes: 60_000_000,
                upload_bytes: 12_000_000,
                download_window: ms(10_000),
                upload_window: ms(10_000),
                streams: 4,
                ..BandwidthResult::default()
            }),
        ),
        (
            Some(ProbeKind::Link),
            "wan-link",
            Outcome::Ok,
            Measurement::Link(LinkSample {
                source: "snmp",
                if_index: 2,
                if_name: "GigabitEthernet0/1".into(),
                in_octets: 1 << 40,
                out_octets: 1 << 38,
                counter_bits: 64,
                sys_uptime_cs: 123_456,
                oper_status: 1,
                capacity_bps: 100_000_000,
                contracted: true,
                interval_seconds: 60.0,
                in_bps: 1.5e6,
                out_bps: 2.5e5,
                no_rate: "",
                wraps: 0,
            }),
        ),
        (
            Some(ProbeKind::Traceroute),
            "path",
            Outcome::Ok,
            Measurement::Path(PathTrace {
                hops: vec![
                    Hop {
                        ttl: 1,
                        addr: Some("10.0.0.1".parse().expect("ip")),
                        rtt: Some(ms(1)),
                    },
                    Hop {
                        ttl: 2,
                        addr: None,
                        rtt: None,
                    },
                    Hop {
                        ttl: 3,
                        addr: Some("2001:db8::1".parse().expect("ip")),
                        rtt: Some(ms(9)),
                    },
                ],
                reached: true,
            }),
        ),
    ]
}

/// Results of every kind as the agent's spool encodes them.
fn seed_results() -> Vec<pb::Result> {
    measurements()
        .into_iter()
        .enumerate()
        .map(|(i, (kind, target, outcome, m))| {
            pb::Result::from(&Record {
                epoch: EPOCH,
                seq: 100 + i as u64,
                kind,
                obs: Observation {
                    target_id: target.into(),
                    observed_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_800_000),
                    outcome,
                    detail: if outcome == Outcome::Ok {
                        String::new()
                    } else {
                        "connection refused".into()
                    },
                    measurement: m,
                },
            })
        })
        .collect()
}

fn agent_corpus() -> Vec<Vec<u8>> {
    use pb::agent_message::Msg;
    let mut out = vec![
        pb::AgentMessage {
            msg: Some(Msg::Hello(seed_hello())),
        }
        .encode_to_vec(),
    ];
    for r in seed_results() {
        out.push(
            pb::AgentMessage {
                msg: Some(Msg::Batch(pb::ResultBatch { results: vec![r] })),
            }
            .encode_to_vec(),
        );
    }
    out.push(
        pb::AgentMessage {
            msg: Some(Msg::Batch(pb::ResultBatch {
                results: seed_results(),
            })),
        }
        .encode_to_vec(),
    );
    out
}

fn collector_corpus() -> Vec<Vec<u8>> {
    use pb::collector_message::Msg;
    [
        Msg::Welcome(pb::Welcome {
            epoch: EPOCH,
            committed_seq: 99,
            collector_time: Some(pantau_proto::timestamp_from_millis(1_764_800_000_000)),
            opd_id: "dinkes".into(),
            max_batch_results: 500,
        }),
        Msg::Ack(pb::Ack {
            epoch: EPOCH,
            up_to_seq: 107,
        }),
        Msg::Config(pb::ConfigUpdate {
            targets_toml: "[[target]]\nid = \"gw\"\ngroup = \"intranet\"\nkind = \"icmp\"\naddress = \"10.0.0.1\"\n".into(),
            heartbeat_interval_ms: 60_000,
            ..pb::ConfigUpdate::default()
        }),
        Msg::Backoff(pb::Backoff {
            delay_ms: 5_000,
            reason: "database busy".into(),
        }),
    ]
    .into_iter()
    .map(|m| pb::CollectorMessage { msg: Some(m) }.encode_to_vec())
    .collect()
}

// ---------------------------------------------------------------- checks

fn catalogue() -> validate::Catalogue {
    validate::catalogue(&validate::hello(seed_hello()).expect("seed Hello is valid"))
}

/// A validated Hello keeps the invariants the collector relies on.
fn check_hello(h: pb::Hello) -> Result<(), TestCaseError> {
    let sent = h.clone();
    match validate::hello(h) {
        Err(e) => prop_assert!(!e.to_string().is_empty()),
        Ok(info) => {
            prop_assert!(info.targets.len() <= validate::MAX_TARGETS);
            prop_assert_eq!(Some(info.epoch), sent.spool.as_ref().map(|s| s.epoch));
            prop_assert!(info.epoch != 0);
            let mut ids = HashSet::new();
            for t in &info.targets {
                prop_assert!(ids.insert(t.id.clone()), "duplicate id {}", t.id);
                prop_assert!(sent.targets.iter().any(|s| s.id == t.id));
            }
            prop_assert!(info.hostname.len() <= sent.hostname.len());
            prop_assert!(sent.hostname.starts_with(&info.hostname));
            prop_assert!(sent.agent_version.starts_with(&info.version));
        }
    }
    Ok(())
}

/// A validated batch: one row per result, increasing seqs above `after`,
/// of the stream's epoch, what was sent kept, declared targets only.
fn check_batch(b: pb::ResultBatch, after: u64) -> Result<(), TestCaseError> {
    let sent = b.clone();
    let cat = catalogue();
    match validate::batch(b, EPOCH, after, &cat) {
        Err(e) => prop_assert!(!e.to_string().is_empty()),
        Ok(rows) => {
            prop_assert_eq!(rows.len(), sent.results.len());
            let mut prev = after;
            for (row, r) in rows.iter().zip(&sent.results) {
                prop_assert_eq!(row.epoch, EPOCH);
                prop_assert!(row.seq > prev && row.seq <= i64::MAX as u64);
                prev = row.seq;
                prop_assert_eq!(
                    (&row.target_id, row.seq, &row.detail),
                    (&r.target_id, r.seq, &r.detail)
                );
                prop_assert!(row.detail.len() <= validate::MAX_DETAIL);
                prop_assert_eq!(
                    Some(row.observed_at_ms),
                    r.observed_at
                        .as_ref()
                        .and_then(pantau_proto::millis_from_timestamp)
                );
                if !row.target_id.is_empty() {
                    let (group, _, _) = cat.get(&row.target_id).expect("declared target");
                    prop_assert_eq!(row.group.as_str(), group.as_str());
                }
                // The row's data is stored as JSON text.
                prop_assert!(serde_json::to_string(&row.data).is_ok());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config("agent_message", 1))]

    /// What an agent sends: a typed decode error, or a message that
    /// re-encodes to itself and that validation accepts (rows as above) or
    /// refuses with a readable reason. Never a panic.
    #[test]
    fn fuzz_agent_message(b in input(agent_corpus()), after in prop_oneof![Just(0u64), Just(99u64), any::<u64>()]) {
        use pb::agent_message::Msg;
        let Ok(m) = pb::AgentMessage::decode(b.as_slice()) else {
            return Ok(());
        };
        let again = m.encode_to_vec();
        prop_assert_eq!(&pb::AgentMessage::decode(again.as_slice()).expect("re-encoded decodes"), &m);
        match m.msg {
            Some(Msg::Hello(h)) => check_hello(h)?,
            Some(Msg::Batch(batch)) => check_batch(batch, after)?,
            // Stored as text the collector cuts to a bound.
            Some(Msg::ConfigStatus(_)) => {}
            None => {}
        }
    }
}

proptest! {
    #![proptest_config(config("collector_message", 1))]

    /// What every agent reads from the collector: a typed decode error or a
    /// message that re-encodes to itself.
    #[test]
    fn fuzz_collector_message(b in input(collector_corpus())) {
        if let Ok(m) = pb::CollectorMessage::decode(b.as_slice()) {
            let again = m.encode_to_vec();
            prop_assert_eq!(pb::CollectorMessage::decode(again.as_slice()).expect("re-encoded decodes"), m);
        }
    }
}

// ---------------------------------------------------------------- structured

fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..100_000,
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(1u64 << 52),
        any::<u64>()
    ]
}

fn timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let secs = prop_oneof![
        1_700_000_000i64..1_800_000_000,
        Just(i64::MAX),
        Just(i64::MIN),
        Just(253_402_300_800i64),
        any::<i64>()
    ];
    let nanos = prop_oneof![0i32..1_000_000_000, Just(-1), Just(i32::MAX), any::<i32>()];
    proptest::option::weighted(
        0.9,
        (secs, nanos).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    )
}

fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0f64..1e12,
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(-1.0),
        Just(f64::MAX),
        any::<f64>()
    ]
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "",
            "gw-ping",
            "web-tcp",
            "portal",
            "dns-1",
            "bw",
            "wan-link",
            "path",
            "snmp",
            "local",
            "first",
            "gap",
            "10.0.0.1",
            "2001:db8::1",
        ])
        .prop_map(String::from),
        proptest::string::string_regex(&format!("\\PC{{0,{}}}", max.min(40))).expect("regex"),
        (0..max * 2).prop_map(|n| "a".repeat(n)),
    ]
}

/// A random measurement of any kind, with boundary numbers.
// Long: one strategy per measurement kind, side by side.
fn measurement() -> BoxedStrategy<Option<pb::result::Measurement>> {
    use pb::result::Measurement as M;
    let ping = (
        0u32..20,
        0u32..20,
        proptest::collection::vec(big_u64(), 0..24),
        big_u64(),
    )
        .prop_map(|(sent, received, samples_us, avg)| {
            M::Ping(pb::PingMeasurement {
                sent,
                received,
                rtt_avg_us: avg,
                rtt_min_us: avg / 2,
                rtt_max_us: avg,
                rtt_stddev_us: 1,
                samples_us,
            })
        });
    let tcp = big_u64().prop_map(|connect_us| M::Tcp(pb::TcpMeasurement { connect_us }));
    let http = (any::<u32>(), big_u64(), big_u64(), timestamp()).prop_map(
        |(status, ttfb_us, total_us, tls_not_after)| {
            M::Http(pb::HttpMeasurement {
                status,
                ttfb_us,
                total_us,
                tls_not_after,
                body_bytes: 1,
            })
        },
    );
    let dns = (big_u64(), any::<u32>(), any::<u32>()).prop_map(|(resolve_us, answers, rcode)| {
        M::Dns(pb::DnsMeasurement {
            resolve_us,
            answers,
            rcode,
        })
    });
    let heartbeat = (big_u64(), any::<i64>()).prop_map(|(n, clock_offset_ms)| {
        M::Heartbeat(pb::Heartbeat {
            uptime_seconds: n,
            spool_records: n,
            spool_bytes: n,
            results_dropped: n,
            clock_offset_ms,
            probes_in_flight: 3,
            spool_corrupt_bytes: n,
            seq_skipped: n,
        })
    });
    let bandwidth = (big_u64(), 0u32..100, text(20)).prop_map(|(bps, streams, skipped)| {
        M::Bandwidth(pb::BandwidthMeasurement {
            download_bps: bps,
            upload_bps: bps,
            download_bytes: bps,
            upload_bytes: bps,
            download_window_us: bps,
            upload_window_us: bps,
            streams,
            skipped,
            busy_bps: bps,
            month_bytes: bps,
        })
    });
    let link = (
        text(8),
        text(80),
        prop_oneof![Just(32u32), Just(64), any::<u32>()],
        float(),
        float(),
        text(8),
    )
        .prop_map(
            |(source, if_name, counter_bits, interval_seconds, rate, no_rate)| {
                M::Link(pb::LinkMeasurement {
                    source,
                    if_index: 2,
                    if_name,
                    in_octets: 1,
                    out_octets: 2,
                    counter_bits,
                    sys_uptime_cs: 3,
                    oper_status: 1,
                    capacity_bps: 100,
                    contracted: false,
                    interval_seconds,
                    in_bps: rate,
                    out_bps: rate,
                    no_rate,
                    wraps: 0,
                })
            },
        );
    let hop = (prop_oneof![1u32..70, any::<u32>()], text(40), big_u64()).prop_map(
        |(ttl, address, rtt_us)| pb::TracerouteHop {
            ttl,
            address,
            rtt_us,
        },
    );
    let trace =
        (proptest::collection::vec(hop, 0..70), any::<bool>()).prop_map(|(mut hops, reached)| {
            // Mostly well numbered, so the checks past the numbering run too.
            if reached {
                for (i, h) in hops.iter_mut().enumerate() {
                    h.ttl = i as u32 + 1;
                }
            }
            M::Traceroute(pb::TracerouteMeasurement { hops, reached })
        });
    // Boxed: the unboxed value trees of this union overflow a test
    // thread's stack in a debug build.
    proptest::option::weighted(
        0.95,
        prop_oneof![
            ping.boxed(),
            tcp.boxed(),
            http.boxed(),
            dns.boxed(),
            heartbeat.boxed(),
            bandwidth.boxed(),
            link.boxed(),
            trace.boxed()
        ],
    )
    .boxed()
}

prop_compose! {
    fn result()(
        seq in prop_oneof![100u64..120, big_u64()],
        epoch in prop_oneof![9 => Just(EPOCH), 1 => any::<u64>()],
        target_id in text(70),
        kind in prop_oneof![0i32..9, any::<i32>()],
        outcome in prop_oneof![0i32..9, any::<i32>()],
        observed_at in timestamp(),
        detail in prop_oneof![text(40), (1000usize..1100).prop_map(|n| "é".repeat(n / 2))],
        measurement in measurement(),
    ) -> pb::Result {
        pb::Result { epoch, seq, target_id, kind, outcome, observed_at, detail, measurement }
    }
}

/// The real encoders' batch, a subset in order, with one field of one
/// result taken from a random result: mostly valid, one thing wrong.
fn tweaked_batch() -> BoxedStrategy<Vec<pb::Result>> {
    (
        proptest::collection::vec(any::<bool>(), 8),
        result(),
        any::<Index>(),
        0u8..6,
    )
        .prop_map(|(keep, random, at, field)| {
            let mut rs: Vec<pb::Result> = seed_results()
                .into_iter()
                .zip(keep)
                .filter_map(|(r, k)| k.then_some(r))
                .collect();
            if !rs.is_empty() {
                let i = at.index(rs.len());
                let r = &mut rs[i];
                match field {
                    0 => r.measurement = random.measurement,
                    1 => r.detail = random.detail,
                    2 => r.observed_at = random.observed_at,
                    3 => r.outcome = random.outcome,
                    4 => r.target_id = random.target_id,
                    _ => r.seq = random.seq,
                }
            }
            rs
        })
        .boxed()
}

fn target_info() -> impl Strategy<Value = pb::TargetInfo> {
    (
        text(70),
        prop_oneof![
            proptest::sample::select(vec!["internet", "intranet", "datacenter", "jip", "app"])
                .prop_map(String::from),
            text(50),
        ],
        prop_oneof![0i32..9, any::<i32>()],
        text(520),
        big_u64(),
        text(260),
    )
        .prop_map(
            |(id, group, kind, address, interval_ms, label)| pb::TargetInfo {
                id,
                group,
                kind,
                address,
                interval_ms,
                timeout_ms: interval_ms / 2,
                label,
            },
        )
}

/// The agent's Hello with one target replaced by a random one.
fn tweaked_hello() -> impl Strategy<Value = pb::Hello> {
    (target_info(), any::<Index>(), 0u8..7).prop_map(|(t, at, field)| {
        let mut h = seed_hello();
        let i = at.index(h.targets.len());
        let old = &mut h.targets[i];
        match field {
            0 => old.id = t.id,
            1 => old.group = t.group,
            2 => old.kind = t.kind,
            3 => old.address = t.address,
            4 => old.interval_ms = t.interval_ms,
            5 => old.label = t.label,
            _ => h.targets[i] = t,
        }
        h
    })
}

fn hello() -> impl Strategy<Value = pb::Hello> {
    (
        proptest::collection::vec(target_info(), 0..12),
        0usize..600,
        proptest::option::weighted(0.9, prop_oneof![Just(EPOCH), Just(0u64), any::<u64>()]),
        text(300),
        text(100),
        timestamp(),
    )
        .prop_map(
            |(mut targets, extra, epoch, hostname, agent_version, agent_time)| {
                // Sometimes pad past the declared-targets cap with valid targets.
                if extra > 480 {
                    targets.extend((0..extra).map(|i| pb::TargetInfo {
                        id: format!("pad-{i}"),
                        group: "internet".into(),
                        kind: pb::ProbeKind::Tcp as i32,
                        address: "10.0.0.1:80".into(),
                        interval_ms: 60_000,
                        timeout_ms: 5_000,
                        label: String::new(),
                    }));
                }
                pb::Hello {
                    config_version: 0,
                    config_sha256: String::new(),
                    agent_id: "opd-1".into(),
                    agent_version,
                    config_hash: "h".into(),
                    spool: epoch.map(|epoch| pb::SpoolState {
                        epoch,
                        ..pb::SpoolState::default()
                    }),
                    agent_time,
                    targets,
                    hostname,
                }
            },
        )
}

proptest! {
    #![proptest_config(config("ingest_validate", 4))]

    /// Structured hostile batches (boundary numbers, NaN rates, wrong
    /// kinds, undeclared targets, bad timestamps, long texts, seqs out of
    /// order) through `ingest::validate::batch`.
    #[test]
    fn fuzz_ingest_batch(
        results in prop_oneof![tweaked_batch(), proptest::collection::vec(result(), 0..6)],
        after in prop_oneof![Just(0u64), Just(99u64), big_u64()],
    ) {
        check_batch(pb::ResultBatch { results }, after)?;
    }

    /// Structured hostile Hellos through `ingest::validate::hello`.
    #[test]
    fn fuzz_ingest_hello(h in prop_oneof![tweaked_hello(), hello()]) {
        check_hello(h)?;
    }
}

// ---------------------------------------------------------------- enrolment

/// The `[[targets]]` tables of the shipped example configurations: what a
/// collector hands an agent at enrolment (`EnrolInfo.targets_toml`).
fn targets_corpus() -> Vec<Vec<u8>> {
    let agent = include_str!("../../deploy/config/agent.example.toml");
    // Only the target tables: `[[targets]]` and their `[targets.*]` parts.
    let mut all = String::new();
    let mut inside = false;
    for line in agent.lines() {
        if line.starts_with('[') {
            inside = line.starts_with("[[targets]]") || line.starts_with("[targets.");
        }
        if inside {
            all.push_str(line);
            all.push('\n');
        }
    }
    let first_two: String = all
        .split("\n[[targets]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("\n[[targets]]");
    vec![all.as_bytes().to_vec(), first_two.into_bytes()]
}

proptest! {
    #![proptest_config(config("enrol_targets_toml", 4))]

    /// The agent parses the targets a collector sends at enrolment: a list
    /// of problems that each name a key, or targets with valid, unique ids;
    /// the same text always gives the same answer. Never a panic.
    #[test]
    fn fuzz_enrol_targets_toml(b in input(targets_corpus())) {
        let text = String::from_utf8_lossy(&b);
        let got = pantau_agent::config::targets_from_toml(&text);
        match &got {
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                for p in problems {
                    prop_assert!(!p.key.is_empty() && !p.message.is_empty(), "{:?}", p);
                }
            }
            Ok(targets) => {
                let mut ids = HashSet::new();
                for t in targets {
                    prop_assert!(pantau_agent::config::valid_id(&t.id), "{}", t.id);
                    prop_assert!(ids.insert(t.id.clone()), "duplicate {}", t.id);
                    // docs/CONFIG.md: interval at least 1 s, timeout at least 100 ms.
                    prop_assert!(t.interval >= Duration::from_secs(1), "{:?}", t.interval);
                    prop_assert!(t.timeout >= Duration::from_millis(100), "{:?}", t.timeout);
                }
            }
        }
        prop_assert_eq!(
            format!("{:?}", pantau_agent::config::targets_from_toml(&text)),
            format!("{:?}", got)
        );
    }
}

#[test]
fn seeds_are_valid_and_validate() {
    for t in targets_corpus() {
        let text = String::from_utf8(t).expect("utf-8");
        let targets =
            pantau_agent::config::targets_from_toml(&text).expect("example targets are valid");
        assert!(!targets.is_empty());
    }
    let cat = catalogue();
    assert_eq!(cat.len(), TARGETS.len());
    let rows = validate::batch(
        pb::ResultBatch {
            results: seed_results(),
        },
        EPOCH,
        99,
        &cat,
    )
    .expect("the real encoders' results validate");
    assert_eq!(rows.len(), measurements().len());
    for b in agent_corpus().iter().chain(&collector_corpus()) {
        assert!(
            pb::AgentMessage::decode(b.as_slice()).is_ok()
                || pb::CollectorMessage::decode(b.as_slice()).is_ok()
        );
    }
}
