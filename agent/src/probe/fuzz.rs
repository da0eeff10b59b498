//! Byte-level fuzzing of the probes' packet decoders (DNS replies, ICMP
//! echo replies, traceroute's ICMP errors), plus the shared pieces the
//! other fuzz targets of this crate use (SNMP in `snmp_fuzz.rs`, spool
//! segments in `spool/fuzz.rs`): a fixed seed, a case budget and a mutator.
//!
//! Each target starts from a fixed corpus of valid packets built by the real
//! encoders (or byte-exact captures of the real format), mutates them (bit
//! flips, interesting bytes, inserts, cuts, chunk copies) and also feeds
//! plain random bytes. Budget: `PANTAU_FUZZ_CASES` cases for a cheap target
//! (default [`super::fuzz_kit::DEFAULT_CASES`]); costly targets run a fraction of it. The
//! seed is fixed (`PANTAU_FUZZ_SEED` overrides it), so a run is repeatable.

use proptest::prelude::*;

use super::dns::{Header, build_query, parse_header};
pub(crate) use super::fuzz_kit::{Mutation, apply, config};
use super::icmp::{icmp_start, parse_echo_reply};
use super::traceroute::{Answer, parse};

/// Byte values that sit on decoder boundaries (BER long-form lengths, high
/// bits, all ones).
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x30, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0xa2,
    0xa8, 0xff,
];

/// A seed input of `corpus` with 1 to 8 mutations, and which seed it was.
pub(crate) fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = (usize, Vec<u8>)> {
    let n = corpus.len();
    (
        0..n,
        proptest::collection::vec(super::fuzz_kit::mutation(INTERESTING), 1..8),
    )
        .prop_map(move |(i, muts)| (i, apply(corpus[i].clone(), &muts)))
}

/// Mutated seeds (mostly) or plain random bytes; the seed index is
/// `usize::MAX` for random bytes.
pub(crate) fn input(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = (usize, Vec<u8>)> {
    prop_oneof![
        4 => mutated(corpus),
        1 => proptest::collection::vec(any::<u8>(), 0..96).prop_map(|b| (usize::MAX, b)),
    ]
}

// ---------------------------------------------------------------- DNS

/// Byte-exact replies of the shapes a resolver sends: NOERROR with answers,
/// NXDOMAIN, SERVFAIL, a truncated (TC) reply, plus the query itself.
fn dns_corpus() -> Vec<Vec<u8>> {
    let q = build_query(0x1234, "sulbarprov.go.id", 1).expect("valid name");
    let reply = |flags: [u8; 2], ancount: u16, answers: &[u8]| {
        let mut r = q.clone();
        r[2..4].copy_from_slice(&flags);
        r[6..8].copy_from_slice(&ancount.to_be_bytes());
        r.extend_from_slice(answers);
        r
    };
    // One A record by compression pointer to the question name.
    let a = [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 103, 1, 2, 3];
    vec![
        reply([0x81, 0x80], 1, &a),
        reply([0x81, 0x80], 2, &[a, a].concat()),
        reply([0x81, 0x83], 0, &[]),
        reply([0x81, 0x82], 0, &[]),
        reply([0x83, 0x80], 0, &[]),
        q,
    ]
}

proptest! {
    #![proptest_config(config("dns_reply", 1))]

    /// A reply is either refused (`None`: short, another id, or a query) or
    /// its rcode and ANCOUNT are exactly the header's fields.
    #[test]
    fn fuzz_dns_reply((_, b) in input(dns_corpus()), id in prop_oneof![Just(0x1234u16), any::<u16>()]) {
        match parse_header(&b, id) {
            None => prop_assert!(
                b.len() < 12 || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0
            ),
            Some(Header { rcode, answers }) => {
                prop_assert!(b.len() >= 12 && b[2] & 0x80 != 0);
                prop_assert_eq!(u16::from_be_bytes([b[0], b[1]]), id);
                prop_assert_eq!(rcode, b[3] & 0x0f);
                prop_assert_eq!(answers, u32::from(u16::from_be_bytes([b[6], b[7]])));
            }
        }
    }

}

proptest! {
    #![proptest_config(config("dns_query_names", 2))]

    /// Any configured name either is refused or gives a query whose labels
    /// spell the name and that is never mistaken for a reply.
    #[test]
    fn fuzz_dns_query_names(name in "[a-z0-9.\\-]{0,80}|\\PC{0,80}", id in any::<u16>()) {
        let Some(q) = build_query(id, &name, 28) else {
            let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
            prop_assert!(labels.iter().any(|l| l.is_empty() || l.len() > 63));
            return Ok(());
        };
        prop_assert_eq!(parse_header(&q, id), None);
        let mut labels = Vec::new();
        let mut at = 12;
        while q[at] != 0 {
            let n = usize::from(q[at]);
            labels.push(String::from_utf8(q[at + 1..at + 1 + n].to_vec()).expect("utf-8 labels"));
            at += 1 + n;
        }
        prop_assert_eq!(labels.join("."), name.trim_end_matches('.'));
        prop_assert_eq!(&q[at + 1..], &[0, 28, 0, 1][..]);
    }
}

// ---------------------------------------------------------------- ICMP

fn echo(t: u8, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![t, 0, 0, 0];
    p.extend(ident.to_be_bytes());
    p.extend(seq.to_be_bytes());
    p.extend([0x50; 32]);
    p
}

/// An ICMP error quoting our echo request: time exceeded / unreachable.
fn icmp_error(v6: bool, t: u8, ident: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![t, 0, 0, 0, 0, 0, 0, 0];
    if v6 {
        let mut ip = vec![0u8; 40];
        ip[0] = 0x60;
        ip[6] = 58;
        p.extend(ip);
    } else {
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[9] = 1;
        p.extend(ip);
    }
    p.extend(echo(if v6 { 128 } else { 8 }, ident, seq));
    p
}

/// Raw IPv4 packets (IP header, then ICMP) and bare ICMP messages, v4 and v6.
fn icmp_corpus() -> Vec<Vec<u8>> {
    let ip4 = |icmp: Vec<u8>, ihl: u8| {
        let mut p = vec![0u8; usize::from(ihl) * 4];
        p[0] = 0x40 | ihl;
        p[9] = 1;
        p.extend(icmp);
        p
    };
    vec![
        echo(0, 0x4242, 3),
        echo(129, 0x4242, 3),
        icmp_error(false, 11, 0x4242, 5),
        icmp_error(false, 3, 0x4242, 6),
        icmp_error(true, 3, 0x4242, 7),
        icmp_error(true, 1, 0x4242, 8),
        ip4(echo(0, 0x4242, 9), 5),
        ip4(icmp_error(false, 11, 0x4242, 10), 6),
    ]
}

proptest! {
    #![proptest_config(config("icmp_packet", 1))]

    /// The echo-reply path of a raw or ping socket: the IP header is
    /// skipped by its IHL, and a reply's (ident, seq) are its header bytes;
    /// anything else is ignored, never a panic.
    #[test]
    fn fuzz_icmp_echo_reply((_, b) in input(icmp_corpus()), v6: bool, raw: bool) {
        let header = if raw && !v6 { usize::from(b.first().copied().unwrap_or(0) & 0x0f) * 4 } else { 0 };
        let Some(start) = icmp_start(raw && !v6, &b) else {
            prop_assert!(header >= b.len());
            return Ok(());
        };
        prop_assert_eq!(start, header);
        prop_assert!(start < b.len());
        let icmp = &b[start..];
        match parse_echo_reply(v6, raw, icmp) {
            None => {
                let reply_type = if v6 { 129 } else { 0 };
                prop_assert!(icmp.len() < 8 || icmp[0] != reply_type);
            }
            Some((ident, seq)) => {
                prop_assert_eq!(seq, u16::from_be_bytes([icmp[6], icmp[7]]));
                prop_assert_eq!(ident, raw.then(|| u16::from_be_bytes([icmp[4], icmp[5]])));
            }
        }
    }

    /// Traceroute's parser: echo replies, and time-exceeded / unreachable
    /// errors whose quote holds our echo request; the (ident, seq) it
    /// returns are the bytes at the documented places.
    #[test]
    fn fuzz_traceroute_packet((_, b) in input(icmp_corpus()), v6: bool) {
        let (reply, exceeded, unreachable, request) =
            if v6 { (129, 3, 1, 128) } else { (0, 11, 3, 8) };
        let id_seq = |p: &[u8]| {
            (u16::from_be_bytes([p[4], p[5]]), u16::from_be_bytes([p[6], p[7]]))
        };
        let got = parse(v6, &b);
        match got {
            Some(Answer::Reached(i, s)) => {
                prop_assert!(b[0] == reply && b.len() >= 8);
                prop_assert_eq!((i, s), id_seq(&b));
            }
            Some(Answer::Expired(i, s)) | Some(Answer::Unreachable(i, s)) => {
                let t = b[0];
                prop_assert!(t == exceeded || t == unreachable);
                prop_assert_eq!(matches!(got, Some(Answer::Expired(..))), t == exceeded);
                let skip = if v6 { 40 } else { usize::from(b[8] & 0x0f) * 4 };
                let inner = &b[8 + skip..];
                prop_assert_eq!(inner[0], request);
                prop_assert_eq!((i, s), id_seq(inner));
            }
            None => {
                let t = b.first().copied();
                prop_assert!(t != Some(reply) || b.len() < 8);
            }
        }
    }
}

#[test]
fn icmp_corpus_parses_as_built() {
    assert_eq!(
        parse(false, &icmp_error(false, 11, 7, 3)),
        Some(Answer::Expired(7, 3))
    );
    assert_eq!(
        parse(true, &icmp_error(true, 1, 7, 4)),
        Some(Answer::Unreachable(7, 4))
    );
    let raw = &icmp_corpus()[6];
    let start = icmp_start(true, raw).unwrap();
    assert_eq!(start, 20);
    assert_eq!(
        parse_echo_reply(false, true, &raw[start..]),
        Some((Some(0x4242), 9))
    );
    // An IHL pointing past the packet is not a packet.
    assert_eq!(icmp_start(true, &[0x4f, 0, 0, 0]), None);
    assert_eq!(
        parse_header(&dns_corpus()[0], 0x1234),
        Some(Header {
            rcode: 0,
            answers: 1
        })
    );
}
