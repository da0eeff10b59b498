//! Link utilisation against a real net-snmp `snmpd` (issue 4, section 4).
//!
//! A "router" namespace holds snmpd (on its own loopback), the collector and
//! the agent; a "host" namespace pushes UDP through a veth pair shaped with
//! tbf, first to 20 Mbit/s, then to 100 Mbit/s. The agent polls the router's
//! veth over SNMP v2c, over SNMP v3 authPriv (SHA-256 + AES and SHA + AES
//! users) and from /proc/net/dev. Bars: polled octets equal the kernel's
//! counters and net-snmp's own `snmpget -v3`; utilisation within 5 % of the
//! shaped rate; a wrong v3 auth password is a named USM failure, not a
//! timeout; a wrong privacy password says to check it.
//!
//! Needs root; without it the test says so and passes, unless `CI` is set.

mod common;
mod netns;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use common::{Proc, admin_token, bin, enrol, metric, shared_client_cert, wait_for};

/// The admin token `ns_get` sends (made before the collector starts).
static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
use netns::{Netns, veth};

const NET: &str = "10.98.40";
const SNMP_PORT: u16 = 16161;

/// v3 users created in snmpd.conf: (user, net-snmp auth name, our
/// auth_protocol, auth password, privacy password).
const V3_USERS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "pantau-sha256",
        "SHA-256",
        "sha256",
        "auth-pass-256",
        "priv-pass-256",
    ),
    (
        "pantau-sha",
        "SHA",
        "sha",
        "auth-pass-sha1",
        "priv-pass-sha1",
    ),
];

/// Link targets polled from the router; the first three carry traffic figures.
const SNMP_TARGETS: [&str; 3] = ["wan-snmp", "wan-v3", "wan-v3-sha"];

/// GET over HTTP/1.0 from inside the namespace (bash /dev/tcp).
fn ns_get(ns: &Netns, port: u16, path: &str) -> String {
    let token = TOKEN.get().map_or("", String::as_str);
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET {path} HTTP/1.0\\r\\nAuthorization: Bearer {token}\\r\\n\\r\\n' >&3; cat <&3"
    );
    let out = ns.cmd("bash").args(["-c", &script]).output().expect("bash");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// (rx_bytes, tx_bytes) of `dev` from the kernel.
fn kernel_counters(ns: &Netns, dev: &str) -> (u64, u64) {
    let text = ns.run(&["cat", "/proc/net/dev"]);
    pantau_agent::probe::link::parse_proc_net_dev(&text, dev).expect("device in /proc/net/dev")
}

fn spawn(ns: &Netns, argv: &[&str], name: &'static str) -> Proc {
    Proc {
        child: ns
            .cmd(argv[0])
            .args(&argv[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn"),
        name,
    }
}

fn link_rows(ns: &Netns, target: &str) -> Vec<serde_json::Value> {
    let body = ns_get(
        ns,
        7471,
        "/api/v1/results?agent=gw-agent&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["results"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["kind"] == "link" && r["target"] == target)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Milliseconds of the API's `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) times.
fn observed_ms(r: &serde_json::Value) -> i64 {
    let s = r["observed_at"].as_str().expect("observed_at");
    let n = |a: usize, b: usize| -> i64 { s[a..b].parse().expect("digits") };
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11, 13)) * 60 + n(14, 16)) * 60_000 + n(17, 19) * 1000 + n(20, 23)
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}

/// net-snmp's `snmpget` in the router namespace, value only.
fn snmpget(r: &Netns, persist: &std::path::Path, args: &[&str]) -> std::process::Output {
    r.cmd("snmpget")
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", persist)
        .args(args)
        .output()
        .expect("snmpget (Debian package snmp)")
}

/// Rates (in bit/s, seconds) of `target` over intervals that lie wholly
/// inside `[from_ms, to_ms]`.
fn rates_between(r: &Netns, target: &str, from_ms: i64, to_ms: i64) -> Vec<(f64, f64)> {
    link_rows(r, target)
        .iter()
        .filter(|row| {
            let end = observed_ms(row);
            let start =
                end - (row["data"]["interval_seconds"].as_f64().unwrap_or(0.0) * 1000.0) as i64;
            row["outcome"] == "ok" && row["data"]["no_rate"] == "" && start > from_ms && end < to_ms
        })
        .map(|row| {
            (
                row["data"]["in_bps"].as_f64().unwrap(),
                row["data"]["interval_seconds"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn snmp_and_local_counters_match_the_kernel_and_utilisation_the_traffic() {
    if !netns::available() {
        return;
    }
    let r = Netns::new("lk-r");
    let h = Netns::new("lk-h");
    // No IPv6 autoconfiguration chatter: the link carries only our traffic.
    for ns in [&r, &h] {
        ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1");
        ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1");
    }
    veth(
        &r,
        "rv",
        &format!("{NET}.1/30"),
        &h,
        "hv",
        &format!("{NET}.2/30"),
    );
    // Permanent neighbours: no ARP on the link, so once the traffic stops
    // nothing crosses it and the counters stay put while the agent polls.
    let mac = |ns: &Netns, dev: &str| ns.run(&["cat", &format!("/sys/class/net/{dev}/address")]);
    let (rv_mac, hv_mac) = (mac(&r, "rv"), mac(&h, "hv"));
    r.run(&[
        "ip",
        "neigh",
        "replace",
        &format!("{NET}.2"),
        "lladdr",
        hv_mac.trim(),
        "dev",
        "rv",
        "nud",
        "permanent",
    ]);
    h.run(&[
        "ip",
        "neigh",
        "replace",
        &format!("{NET}.1"),
        "lladdr",
        rv_mac.trim(),
        "dev",
        "hv",
        "nud",
        "permanent",
    ]);
    // Traffic goes to an address behind the router; the router does not
    // forward, so it drops the packets silently (no ICMP error would stop
    // the sender) after its veth has counted them.
    h.route("10.98.41.0/24", &format!("{NET}.1"));
    let if_index: u32 = r
        .run(&["cat", "/sys/class/net/rv/ifindex"])
        .trim()
        .parse()
        .expect("ifindex");

    // snmpd with its own config and persistent directory, on the router
    // namespace's loopback: a v2c community and two v3 authPriv users.
    let dir = tempfile::tempdir().expect("tempdir");
    let persist = dir.path().join("snmp-persist");
    let conf = dir.path().join("snmpd.conf");
    let mut conf_text =
        "rocommunity pantau-ro 127.0.0.1\nrwcommunity pantau-rw 127.0.0.1\n".to_string();
    for (user, net_snmp_auth, _, auth_pw, priv_pw) in V3_USERS {
        conf_text.push_str(&format!(
            "createUser {user} {net_snmp_auth} \"{auth_pw}\" AES \"{priv_pw}\"\nrouser {user} priv\n"
        ));
    }
    std::fs::write(&conf, conf_text).expect("snmpd.conf");
    let snmpd_addr = format!("udp:127.0.0.1:{SNMP_PORT}");
    let _snmpd = Proc {
        child: r
            .cmd("/usr/sbin/snmpd")
            .env("MIBS", "")
            .env("SNMP_PERSISTENT_DIR", &persist)
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(&snmpd_addr)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start snmpd (Debian package snmpd)"),
        name: "snmpd",
    };
    let peer = format!("127.0.0.1:{SNMP_PORT}");
    wait_for("snmpd to answer", Duration::from_secs(20), || {
        Some(snmpget(
            &r,
            &persist,
            &[
                "-v2c",
                "-c",
                "pantau-ro",
                "-r",
                "0",
                "-t",
                "1",
                &peer,
                "1.3.6.1.2.1.1.3.0",
            ],
        ))
        .filter(|o| o.status.success())
    });
    // net-snmp caches the interface table for 3 s; a router reads its
    // counters when asked, so switch the cache off (NET-SNMP-AGENT-MIB
    // nsCacheTimeout of ifTable, which ifXTable shares).
    r.run(&[
        "snmpset",
        "-v2c",
        "-c",
        "pantau-rw",
        &peer,
        "1.3.6.1.4.1.8072.1.5.3.1.2.1.3.6.1.2.1.2.2",
        "i",
        "0",
    ]);

    // Collector and agent in the router namespace too.
    let data = dir.path().join("collector");
    let token = enrol(&data, "dinkes", "gw-agent");
    let _ = TOKEN.set(admin_token(&data));
    let mut collector = r
        .cmd(bin("pantau-collector"))
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:7470",
            "--http-listen",
            "127.0.0.1:7471",
            "--data-dir",
        ])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("collector");
    let mut line = String::new();
    BufReader::new(collector.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let _collector = Proc {
        child: collector,
        name: "pantau-collector",
    };
    // The SHA-256 user's auth password from a file, as deployments should.
    let auth_file = dir.path().join("snmp-auth");
    std::fs::write(&auth_file, format!("{}\n", V3_USERS[0].3)).expect("auth file");
    let v3_target = |id: &str, user: &str, proto: &str, auth: &str, privacy: &str| {
        format!(
            r#"
[[targets]]
id = "{id}"
group = "intranet"
kind = "link"
address = "{peer}"
interval = "5s"
timeout = "2s"
[targets.link]
source = "snmp"
if_index = {if_index}
version = "3"
user = "{user}"
auth_protocol = "{proto}"
{auth}
priv_protocol = "aes"
priv_password = "{privacy}"
contracted_mbps = 25
"#
        )
    };
    let (u256, _, p256, _, priv256) = V3_USERS[0];
    let (u1, _, p1, auth1, priv1) = V3_USERS[1];
    let ca = data.join("tls").join("ca.crt").display().to_string();
    let (cert, key) = shared_client_cert(&data, "gw-agent").expect("gw-agent's certificate");
    let (cert, key) = (cert.display(), key.display());
    let cfg = dir.path().join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[agent]
id = "gw-agent"
heartbeat_interval = "1h"
[collector]
url = "https://127.0.0.1:7470"
ca = "{ca}"
cert = "{cert}"
key = "{key}"
token = "{token}"
[spool]
dir = "{spool}"
[[targets]]
id = "wan-snmp"
group = "intranet"
kind = "link"
address = "{peer}"
interval = "5s"
timeout = "2s"
[targets.link]
source = "snmp"
if_index = {if_index}
community = "pantau-ro"
contracted_mbps = 25
[[targets]]
id = "wan-local"
group = "intranet"
kind = "link"
address = "rv"
interval = "5s"
[targets.link]
source = "local"
{v3}{v3_sha}{bad_auth}{bad_priv}"#,
            spool = dir.path().join("spool").display(),
            v3 = v3_target(
                "wan-v3",
                u256,
                p256,
                &format!("auth_password_file = \"{}\"", auth_file.display()),
                priv256
            ),
            v3_sha = v3_target(
                "wan-v3-sha",
                u1,
                p1,
                &format!("auth_password = \"{auth1}\""),
                priv1
            ),
            bad_auth = v3_target(
                "v3-bad-auth",
                u1,
                p1,
                "auth_password = \"not-the-password\"",
                priv1
            ),
            bad_priv = v3_target(
                "v3-bad-priv",
                u1,
                p1,
                &format!("auth_password = \"{auth1}\""),
                "not-the-password"
            ),
        ),
    )
    .expect("agent config");
    let mut agent = Proc {
        child: r
            .cmd(bin("pantau-agent"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("agent"),
        name: "pantau-agent",
    };
    let all_targets = ["wan-snmp", "wan-v3", "wan-v3-sha", "wan-local"];
    wait_for("first polls", Duration::from_secs(30), || {
        all_targets
            .iter()
            .all(|t| !link_rows(&r, t).is_empty())
            .then_some(())
    });

    // Wrong credentials fail with the reason, at once, not as a hang.
    let bad_auth = wait_for(
        "a poll with a wrong auth password",
        Duration::from_secs(30),
        || link_rows(&r, "v3-bad-auth").into_iter().next(),
    );
    eprintln!(
        "wrong auth password: {} / {}",
        bad_auth["outcome"], bad_auth["detail"]
    );
    assert_eq!(bad_auth["outcome"], "other", "{bad_auth}");
    let detail = bad_auth["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("usmStatsWrongDigests") && detail.contains("auth_password"),
        "{detail}"
    );
    let bad_priv = wait_for(
        "a poll with a wrong privacy password",
        Duration::from_secs(30),
        || link_rows(&r, "v3-bad-priv").into_iter().next(),
    );
    eprintln!(
        "wrong privacy password: {} / {}",
        bad_priv["outcome"], bad_priv["detail"]
    );
    assert_ne!(bad_priv["outcome"], "ok", "{bad_priv}");
    assert!(
        bad_priv["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("priv_password"),
        "{bad_priv}"
    );

    // Known traffic: UDP from the host side, shaped on the wire, at each rate.
    let mut figures = Vec::new();
    for (rate, burst) in [("20mbit", "32kb"), ("100mbit", "64kb")] {
        let rate_bps: f64 = rate.trim_end_matches("mbit").parse::<f64>().unwrap() * 1e6;
        h.tbf("hv", rate, burst, "50ms");
        let traffic_start = unix_ms(SystemTime::now());
        let mut traffic = spawn(
            &h,
            &[
                "bash",
                "-c",
                "exec dd if=/dev/zero bs=1400 count=100000000 status=none > /dev/udp/10.98.41.1/9",
            ],
            "traffic",
        );
        // Three intervals per link that began after the traffic started.
        let now = || unix_ms(SystemTime::now());
        wait_for(
            "three loaded intervals per link",
            Duration::from_secs(60),
            || {
                if let Ok(Some(s)) = agent.child.try_wait() {
                    panic!("agent exited: {s}");
                }
                let t = now();
                all_targets
                    .iter()
                    .all(|l| rates_between(&r, l, traffic_start + 1000, t).len() >= 3)
                    .then_some(())
            },
        );
        let metrics = ns_get(&r, 7471, "/metrics");
        let ratios: Vec<(&str, f64)> = SNMP_TARGETS
            .iter()
            .map(|l| {
                let v = metric(
                    &metrics,
                    "pantau_link_utilisation_ratio",
                    &[("target", l), ("direction", "download")],
                )
                .unwrap_or_else(|| panic!("utilisation ratio for {l}"));
                (*l, v)
            })
            .collect();
        let traffic_end = now();
        let _ = traffic.child.kill();
        let _ = traffic.child.wait();
        for name in all_targets {
            let list = rates_between(&r, name, traffic_start + 1000, traffic_end);
            assert!(list.len() >= 3, "{name}: {list:?}");
            for (bps, secs) in list {
                let err = (bps - rate_bps) / rate_bps;
                eprintln!(
                    "link utilisation ({name}): {:.3} Mbit/s over {secs:.2} s vs {rate} shaped ({:+.2} %)",
                    bps / 1e6,
                    err * 100.0
                );
                figures.push((rate, name, err));
                assert!(err.abs() <= 0.05, "{name}: {bps} bit/s vs {rate_bps}");
            }
        }
        // Contracted 25 Mbit/s overrides the veth's speed: 20/25, or 4x
        // over (100 Mbit/s on a link contracted at 25).
        let want = rate_bps / 25e6;
        for (l, ratio) in ratios {
            eprintln!("utilisation ratio ({l}, contracted 25 Mbit/s): {ratio:.4} vs {want}");
            assert!((ratio - want).abs() <= want * 0.05, "{l}: ratio {ratio}");
        }
    }
    for rate in ["20mbit", "100mbit"] {
        for name in all_targets {
            let errs: Vec<f64> = figures
                .iter()
                .filter(|(r, n, _)| *r == rate && *n == name)
                .map(|(_, _, e)| e.abs() * 100.0)
                .collect();
            eprintln!(
                "summary {rate} {name}: {} intervals, worst |error| {:.2} %",
                errs.len(),
                errs.iter().cloned().fold(0.0, f64::max)
            );
        }
    }

    // Quiet link: the latest polls equal the kernel's own counters. The
    // kernel is read before and after a round of polls; only a round during
    // which nothing crossed the link is compared.
    let (krx, ktx) = wait_for(
        "a round of polls on a quiet link",
        Duration::from_secs(60),
        || {
            let before = kernel_counters(&r, "rv");
            let since = unix_ms(SystemTime::now());
            wait_for("a poll of every link", Duration::from_secs(20), || {
                all_targets
                    .iter()
                    .all(|t| {
                        link_rows(&r, t)
                            .last()
                            .is_some_and(|row| observed_ms(row) > since + 500)
                    })
                    .then_some(())
            });
            let after = kernel_counters(&r, "rv");
            if before != after {
                eprintln!("the link was not quiet ({before:?} -> {after:?}); again");
            }
            (before == after).then_some(after)
        },
    );
    for t in all_targets {
        let rows = link_rows(&r, t);
        let last = &rows.last().expect("rows")["data"];
        assert_eq!(
            (last["in_octets"].as_u64(), last["out_octets"].as_u64()),
            (Some(krx), Some(ktx)),
            "{t}: polled octets vs kernel rx/tx of rv"
        );
    }
    // Side check: net-snmp's own v3 client reads the same counter.
    for (user, net_snmp_auth, _, auth_pw, priv_pw) in V3_USERS {
        let out = snmpget(
            &r,
            &persist,
            &[
                "-v3",
                "-l",
                "authPriv",
                "-u",
                user,
                "-a",
                net_snmp_auth,
                "-A",
                auth_pw,
                "-x",
                "AES",
                "-X",
                priv_pw,
                "-Oqv",
                &peer,
                &format!("1.3.6.1.2.1.31.1.1.1.6.{if_index}"),
            ],
        );
        assert!(
            out.status.success(),
            "snmpget -v3 {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("ifHCInOctets from snmpget");
        assert_eq!(v, krx, "snmpget -v3 ({user}) vs the agent and the kernel");
    }
    for t in SNMP_TARGETS {
        let last = &link_rows(&r, t).last().expect("rows")["data"].clone();
        assert_eq!(last["counter_bits"], 64, "{t}: ifHCInOctets used");
        assert_eq!(last["oper_status"], 1, "{t}: ifOperStatus up");
        assert_eq!(last["if_name"], "rv", "{t}");
        assert_eq!(last["capacity_bps"], 25_000_000, "{t}");
        assert_eq!(last["contracted"], true, "{t}");
    }
    // Polling went on through everything above: the engine stayed in sync.
    for t in ["wan-v3", "wan-v3-sha"] {
        let rows = link_rows(&r, t);
        let failed: Vec<_> = rows.iter().filter(|r| r["outcome"] != "ok").collect();
        assert!(failed.is_empty(), "{t}: {failed:?}");
    }
    agent.terminate();
}
