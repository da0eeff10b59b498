//! Enrolment of new agents (`pantau-agent enroll`): the one-time enrolment
//! codes, the `[enrol]` section of the collector configuration, which holds
//! the province's standard target set for new agents, and the built-in
//! default when it is absent.

use pantau_core::ProbeKind;
use pantau_core::confload::Problem;
use pantau_core::probe::{self, TomlTable, TomlValue};
use serde::Deserialize;

/// How long an enrolment code is valid unless `--expires` says otherwise.
pub const DEFAULT_CODE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Characters of an enrolment code: upper-case letters and digits without
/// the ones easily mistaken for each other (0/O, 1/I/L, U/V).
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTWXYZ23456789";

/// Random characters in a code (29^25: about 121 bits).
const CODE_CHARS: usize = 25;

/// A new random enrolment code, e.g. `PE-ABCDE-FGHJK-MNPQR-STWXY-Z2345`.
/// It is shown once and stored only as [`code_digest`].
pub fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut s = String::from("PE");
    for i in 0..CODE_CHARS {
        if i % 5 == 0 {
            s.push('-');
        }
        s.push(char::from(
            CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())],
        ));
    }
    s
}

/// SHA-256 of a code as typed: case, spaces and dashes do not matter.
pub fn code_digest(code: &str) -> [u8; 32] {
    let norm: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    crate::auth::digest(&norm)
}

/// `[enrol]`
#[derive(Debug, Deserialize, Default)]
pub struct RawEnrol {
    /// Targets written into the configuration of every newly enrolled agent,
    /// as `[[enrol.targets]]` tables in the agent's target syntax.
    pub targets: Option<Vec<TomlTable>>,
}

/// Validate `[enrol]`: `None` when the section (or its `targets`) is absent,
/// so the built-in default applies; otherwise the targets as a `[[targets]]`
/// TOML fragment (empty when the list is empty).
pub fn validate(raw: Option<RawEnrol>, p: &mut Vec<Problem>) -> Option<String> {
    let tables = raw?.targets?;
    match probe::targets_fragment(tables) {
        Ok(text) => {
            let before = p.len();
            refuse_plaintext_token(&text, p);
            (p.len() == before).then_some(text)
        }
        Err(problems) => {
            p.extend(
                problems
                    .into_iter()
                    .map(|q| Problem::new(format!("enrol.{}", q.key), q.message)),
            );
            None
        }
    }
}

/// A collector bandwidth target sends the agent's token: handed out over
/// `http://`, every enrolled agent would refuse to load its configuration
/// (or, with `collector.insecure`, send the token readable). Refused here,
/// naming the key, so the admin learns it at start instead.
fn refuse_plaintext_token(fragment: &str, p: &mut Vec<Problem>) {
    let Ok(targets) = probe::targets_from_toml(fragment) else {
        return;
    };
    for (i, t) in targets.iter().enumerate() {
        if let probe::ProbeSpec::Bandwidth(b) = &t.spec
            && b.collector
            && t.address.starts_with("http://")
        {
            p.push(Problem::new(
                format!("enrol.targets[{i}].address"),
                format!(
                    "`{}` tanpa TLS / is plaintext: a collector bandwidth test sends the agent \
                     token; use https:// (the HTTP port with [tls] https)",
                    t.address
                ),
            ));
        }
    }
}

fn quoted(s: &str) -> String {
    TomlValue::String(s.to_string()).to_string()
}

/// The built-in default targets: the collector itself, at the address the
/// agent used to reach it (`authority`, `host:port`), probed by ICMP and
/// TCP as group `datacenter`. `fallback` is the socket address the connection
/// arrived on, used when the agent sent no usable authority.
pub fn default_targets(authority: &str, fallback: Option<std::net::SocketAddr>) -> String {
    let from_agent = probe::split_host_port(authority).filter(|(host, _)| {
        probe::check_address(ProbeKind::Icmp, host).is_ok()
            && probe::check_address(ProbeKind::Tcp, authority).is_ok()
    });
    let (host, tcp) = match (from_agent, fallback) {
        (Some((host, _)), _) => (host.to_string(), authority.to_string()),
        (None, Some(a)) if !a.ip().is_unspecified() => (a.ip().to_string(), a.to_string()),
        _ => return String::new(),
    };
    format!(
        "[[targets]]\nid = \"pusat-data-pantau\"\ngroup = \"datacenter\"\nkind = \"icmp\"\n\
         address = {}\nlabel = \"Server Pantau di Pusat Data (ping)\"\n\n\
         [[targets]]\nid = \"pusat-data-pantau-tcp\"\ngroup = \"datacenter\"\nkind = \"tcp\"\n\
         address = {}\nlabel = \"Layanan Pantau di Pusat Data (TCP)\"\n",
        quoted(&host),
        quoted(&tcp)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_and_their_digest_ignores_case_and_dashes() {
        let a = new_code();
        assert_ne!(a, new_code());
        assert_eq!(a.len(), 2 + CODE_CHARS + CODE_CHARS / 5);
        assert!(a.starts_with("PE-"));
        assert_eq!(
            code_digest(&a),
            code_digest(&a.to_lowercase().replace('-', " "))
        );
        assert_ne!(code_digest(&a), code_digest(&new_code()));
    }

    #[test]
    fn the_default_probes_the_address_the_agent_used() {
        let text = default_targets("10.10.0.5:7470", None);
        let targets = probe::targets_from_toml(&text).unwrap();
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].kind(), ProbeKind::Icmp);
        assert_eq!(targets[0].address, "10.10.0.5");
        assert_eq!(targets[1].kind(), ProbeKind::Tcp);
        assert_eq!(targets[1].address, "10.10.0.5:7470");
        assert!(
            targets
                .iter()
                .all(|t| t.group == pantau_core::Group::Datacenter)
        );

        let v6 = probe::targets_from_toml(&default_targets("[::1]:7470", None)).unwrap();
        assert_eq!(v6[0].address, "::1");
        assert_eq!(v6[1].address, "[::1]:7470");

        let fallback = default_targets("", Some("192.0.2.7:7470".parse().unwrap()));
        let targets = probe::targets_from_toml(&fallback).unwrap();
        assert_eq!(targets[1].address, "192.0.2.7:7470");
        assert_eq!(
            default_targets("", Some("0.0.0.0:7470".parse().unwrap())),
            ""
        );
    }

    #[test]
    fn enrol_targets_are_validated_with_their_keys() {
        let mut p = Vec::new();
        assert_eq!(validate(None, &mut p), None);
        assert_eq!(validate(Some(RawEnrol::default()), &mut p), None);
        assert_eq!(
            validate(
                Some(RawEnrol {
                    targets: Some(vec![])
                }),
                &mut p
            ),
            Some(String::new())
        );
        assert!(p.is_empty());

        let good: TomlTable = toml_table(
            "id = \"jip\"\ngroup = \"jip\"\nkind = \"tcp\"\naddress = \"10.254.0.10:443\"",
        );
        let bad: TomlTable = toml_table(
            "id = \"x\"\ngroup = \"kantor\"\nkind = \"icmp\"\naddress = \"10.0.0.1\"\ncolour = 1",
        );
        let text = validate(
            Some(RawEnrol {
                targets: Some(vec![good.clone()]),
            }),
            &mut p,
        )
        .unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(probe::targets_from_toml(&text).unwrap()[0].id, "jip");

        assert_eq!(
            validate(
                Some(RawEnrol {
                    targets: Some(vec![good, bad])
                }),
                &mut p
            ),
            None
        );
        let keys: Vec<&str> = p.iter().map(|q| q.key.as_str()).collect();
        assert_eq!(keys, ["enrol.targets[1].colour", "enrol.targets[1].group"]);
    }

    #[test]
    fn nested_target_tables_survive_the_trip_to_the_agent() {
        let bw = toml_table(
            "id = \"pusat-data-throughput\"\ngroup = \"datacenter\"\nkind = \"bandwidth\"\n\
             address = \"https://10.10.0.5:7471\"\ninterval = \"6h\"\ntimeout = \"10s\"\n\
             [bandwidth]\nserver = \"collector\"\ndirection = \"both\"\nstreams = 4\n\
             busy_interface = \"eth0\"\nbusy_threshold_mbps = 5",
        );
        let mut p = Vec::new();
        let text = validate(
            Some(RawEnrol {
                targets: Some(vec![bw]),
            }),
            &mut p,
        )
        .unwrap_or_else(|| panic!("{p:?}"));
        assert!(p.is_empty(), "{p:?}");
        let t = &probe::targets_from_toml(&text).unwrap()[0];
        let probe::ProbeSpec::Bandwidth(b) = &t.spec else {
            panic!("{t:?}")
        };
        assert_eq!(b.streams, 4);
        assert_eq!(b.direction, probe::Direction::Both);
        assert!(b.collector);
        assert_eq!(b.busy, Some(("eth0".to_string(), 5_000_000)));
    }

    #[test]
    fn a_collector_bandwidth_target_over_plain_http_is_refused_naming_the_key() {
        let table = |server: &str| {
            toml_table(&format!(
                "id = \"bw\"\ngroup = \"datacenter\"\nkind = \"bandwidth\"\n\
                 address = \"http://10.10.0.5:7471/besar.bin\"\n[bandwidth]\nserver = \"{server}\"\ndirection = \"download\""
            ))
        };
        let mut p = Vec::new();
        let got = validate(
            Some(RawEnrol {
                targets: Some(vec![table("collector")]),
            }),
            &mut p,
        );
        assert_eq!(got, None);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].key, "enrol.targets[0].address");
        assert!(p[0].message.contains("tanpa TLS / is plaintext"), "{p:?}");
        // A plain web server carries no token: allowed over http://.
        let mut p = Vec::new();
        let got = validate(
            Some(RawEnrol {
                targets: Some(vec![table("http")]),
            }),
            &mut p,
        );
        assert!(got.is_some() && p.is_empty(), "{p:?}");
    }

    fn toml_table(s: &str) -> TomlTable {
        s.parse().unwrap()
    }
}
