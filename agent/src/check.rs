//! `pantau-agent check`: run every configured probe once, concurrently, and
//! print a table an OPD IT officer can read.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::config::AgentConfig;
use crate::model::{Observation, Outcome};
use crate::probe::{Probe, ProbeSetupError, Prober};
use pantau_core::probe::Target;

/// Run every probe once; results in configuration order.
pub async fn run_all<P: Probe>(prober: Arc<P>, targets: &[Target]) -> Vec<Observation> {
    let mut set = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().cloned().enumerate() {
        let p = Arc::clone(&prober);
        set.spawn(async move { (i, p.probe(&t).await) });
    }
    let mut out: Vec<(usize, Observation)> = Vec::with_capacity(targets.len());
    while let Some(Ok(r)) = set.join_next().await {
        out.push(r);
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, o)| o).collect()
}

/// Render the table. Columns: group, target, kind, address, result, time, detail.
pub fn render(targets: &[Target], results: &[Observation]) -> String {
    let rows: Vec<[String; 7]> = targets
        .iter()
        .zip(results)
        .map(|(t, o)| {
            [
                t.group.as_str().to_string(),
                t.id.clone(),
                t.kind().as_str().to_string(),
                t.address.clone(),
                if o.outcome == Outcome::Ok {
                    "OK".into()
                } else {
                    format!("GAGAL/{}", o.outcome.as_str())
                },
                o.headline()
                    .map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3)),
                summary(o),
            ]
        })
        .collect();
    let head = [
        "GROUP", "TARGET", "KIND", "ADDRESS", "RESULT", "TIME", "DETAIL",
    ];
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r.iter()).take(6) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, cells: &[&str]| {
        for (i, c) in cells.iter().enumerate() {
            if i < 6 {
                let _ = write!(s, "{c:<w$}  ", w = width[i]);
            } else {
                let _ = write!(s, "{c}");
            }
        }
        s.push('\n');
    };
    line(&mut s, &head);
    for r in &rows {
        line(&mut s, &r.iter().map(String::as_str).collect::<Vec<_>>());
    }
    let failed = results.iter().filter(|o| o.outcome != Outcome::Ok).count();
    let _ = writeln!(
        s,
        "\n{} of {} probes OK ({} berhasil, {} gagal).",
        results.len() - failed,
        results.len(),
        results.len() - failed,
        failed
    );
    let unverified: Vec<&Target> = targets
        .iter()
        .filter(|t| matches!(&t.spec, pantau_core::ProbeSpec::Http(h) if !h.tls_verify))
        .collect();
    if !unverified.is_empty() {
        let _ = writeln!(
            s,
            "\nPERINGATAN / WARNING: tls_verify = false: sertifikat server TIDAK diperiksa / \
             the server certificate is NOT verified:"
        );
        for t in unverified {
            let _ = writeln!(s, "  {} ({})", t.id, t.address);
        }
    }
    if failed > 0 {
        let _ = writeln!(s, "\nArtinya / What it means:");
        for (t, o) in targets.iter().zip(results) {
            if let Some((id, en)) = explain(o) {
                let _ = writeln!(s, "  {}: {id}\n  {:w$}  {en}", t.id, "", w = t.id.len());
            }
        }
    }
    s
}

/// A plain-words explanation of a failed probe for an OPD IT officer, in
/// Bahasa Indonesia and English: what the failure class usually means and
/// what to look at. `None` for a success.
pub fn explain(o: &Observation) -> Option<(&'static str, &'static str)> {
    let detail = o.detail.to_ascii_lowercase();
    let permission = detail.contains("cap_net_raw")
        || detail.contains("ping socket")
        || detail.contains("operation not permitted")
        || detail.contains("permission denied");
    Some(match o.outcome {
        Outcome::Ok => return None,
        _ if permission => (
            "Agen tidak punya izin membuka soket ICMP (kemampuan CAP_NET_RAW). Pasang paket \
             .deb (layanan systemd sudah memberinya) atau jalankan sebagai root.",
            "The agent lacks permission to open an ICMP socket (the CAP_NET_RAW capability). \
             Install the .deb (its systemd unit grants it) or run as root.",
        ),
        Outcome::Timeout => (
            "Tidak ada jawaban dalam batas waktu: jalur putus, firewall membuang paket, \
             atau target mati. Periksa link dan aturan firewall di jalur ke target.",
            "No answer in time: the path is down, a firewall silently drops the packets, \
             or the target is off. Check the link and the firewall rules on the way.",
        ),
        Outcome::Refused => (
            "Target menolak sambungan: tidak ada layanan yang mendengar di port itu, \
             atau firewall menolaknya. Jaringan sampai ke target.",
            "The target refused the connection: nothing listens on that port, or a \
             firewall rejects it. The network does reach the target.",
        ),
        Outcome::Unreachable => (
            "Tidak ada rute ke target: periksa gateway, kabel/link, dan tabel routing \
             komputer ini (ip route).",
            "No route to the target: check the gateway, the cable or link, and this \
             machine's routing table (ip route).",
        ),
        Outcome::DnsError => (
            "Nama tidak dapat diterjemahkan ke alamat IP (DNS): periksa ejaan nama dan \
             server DNS di /etc/resolv.conf.",
            "The name could not be resolved (DNS): check its spelling and the DNS server \
             in /etc/resolv.conf.",
        ),
        Outcome::TlsError => (
            "Sambungan aman (TLS) gagal: sertifikat kedaluwarsa, tidak dipercaya, atau \
             namanya tidak cocok dengan alamat.",
            "The secure connection (TLS) failed: the certificate is expired, untrusted, \
             or its name does not match the address.",
        ),
        Outcome::HttpStatus => (
            "Server menjawab, tetapi dengan status HTTP yang tidak diharapkan \
             (mis. 404 atau 500): aplikasinya bermasalah, jaringannya baik.",
            "The server answered, but with an unexpected HTTP status (e.g. 404 or 500): \
             the application has a problem, the network is fine.",
        ),
        Outcome::HttpMatch => (
            "Server menjawab dengan status yang benar, tetapi isinya tidak memenuhi aturan \
             body_contains/body_regex: halaman galat atau pemeliharaan, bukan aplikasinya.",
            "The server answered with a good status, but the body failed the body_contains or \
             body_regex rule: an error or maintenance page rather than the application.",
        ),
        Outcome::Other => (
            "Kegagalan lain; lihat kolom DETAIL.",
            "Another failure; see the DETAIL column.",
        ),
    })
}

fn summary(o: &Observation) -> String {
    use crate::model::Measurement;
    match (&o.measurement, o.outcome) {
        (Measurement::Ping(p), _) if p.sent > 0 => {
            let loss = crate::stats::loss_ratio(p.sent, p.received) * 100.0;
            let mut s = format!("{}/{} replies, loss {loss:.0}%", p.received, p.sent);
            if !o.detail.is_empty() {
                s.push_str("; ");
                s.push_str(&o.detail);
            }
            s
        }
        (Measurement::Http { status, .. }, Outcome::Ok) if o.detail.is_empty() => {
            format!("HTTP {status}")
        }
        (Measurement::Http { status, .. }, Outcome::Ok) => format!("HTTP {status}; {}", o.detail),
        (Measurement::Dns { answers, .. }, Outcome::Ok) => format!("{answers} answer(s)"),
        (Measurement::Bandwidth(b), Outcome::Ok) if b.skipped.is_empty() => format!(
            "down {:.1} Mbit/s, up {:.1} Mbit/s",
            b.download_bps as f64 / 1e6,
            b.upload_bps as f64 / 1e6
        ),
        (Measurement::Link(l), Outcome::Ok) if l.no_rate.is_empty() => format!(
            "in {:.1} Mbit/s, out {:.1} Mbit/s",
            l.in_bps / 1e6,
            l.out_bps / 1e6
        ),
        (Measurement::Link(l), Outcome::Ok) => {
            format!(
                "{} in / {} out octets ({} bit)",
                l.in_octets, l.out_octets, l.counter_bits
            )
        }
        _ => o.detail.clone(),
    }
}

/// Run `check` for a config: returns the table and whether every probe passed.
pub async fn check(cfg: &AgentConfig) -> Result<(String, bool), ProbeSetupError> {
    let mut prober = Prober::new()?;
    prober.configure_bandwidth(
        cfg.require_token().ok(),
        &cfg.collector_tls,
        cfg.bandwidth.clone(),
    )?;
    let prober = Arc::new(prober);
    // What `run` probes: the file's targets and the central ones kept in
    // the spool directory.
    let targets = crate::central::Central::load(cfg).targets();
    let results = run_all(prober, &targets).await;
    let all_ok = results.iter().all(|o| o.outcome == Outcome::Ok);
    Ok((render(&targets, &results), all_ok))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::model::{Group, Measurement};

    fn target(id: &str) -> Target {
        Target {
            id: id.into(),
            group: Group::Datacenter,
            address: "192.0.2.1:443".into(),
            label: String::new(),
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            spec: pantau_core::ProbeSpec::Tcp(pantau_core::probe::TcpSpec),
        }
    }

    fn obs(outcome: Outcome, detail: &str) -> Observation {
        Observation {
            target_id: String::new(),
            observed_at: SystemTime::now(),
            outcome,
            detail: detail.into(),
            measurement: Measurement::Tcp {
                connect: Duration::ZERO,
            },
        }
    }

    #[test]
    fn every_failure_class_has_a_plain_explanation_in_both_languages() {
        let cases = [
            (Outcome::Timeout, "", "batas waktu", "firewall"),
            (Outcome::Refused, "", "menolak", "refused"),
            (Outcome::Unreachable, "", "rute", "No route"),
            (Outcome::DnsError, "", "DNS", "resolved"),
            (Outcome::TlsError, "", "sertifikat", "certificate"),
            (Outcome::HttpStatus, "", "status HTTP", "HTTP status"),
            (Outcome::HttpMatch, "", "body_regex", "body_contains"),
            (Outcome::Other, "", "DETAIL", "DETAIL"),
            (
                Outcome::Other,
                "cannot open ICMP socket (EPERM: Operation not permitted)",
                "CAP_NET_RAW",
                "capability",
            ),
        ];
        for (outcome, detail, id, en) in cases {
            let (i, e) = explain(&obs(outcome, detail)).expect("a failure is explained");
            assert!(i.contains(id), "{outcome:?}: {i}");
            assert!(e.contains(en), "{outcome:?}: {e}");
        }
        assert_eq!(explain(&obs(Outcome::Ok, "")), None);
        // The detail a probe really carries when the socket is refused.
        let denied = crate::probe::icmp::IcmpError::Permission(nix::errno::Errno::EPERM);
        let (i, e) = explain(&obs(Outcome::Other, &denied.to_string())).expect("explained");
        assert!(i.contains("CAP_NET_RAW") && e.contains("capability"), "{e}");
    }

    #[test]
    fn the_table_explains_each_failed_target() {
        let targets = [target("web"), target("db")];
        let results = [
            obs(Outcome::Ok, ""),
            obs(Outcome::Refused, "connection refused"),
        ];
        let table = render(&targets, &results);
        assert!(table.contains("1 of 2 probes OK"), "{table}");
        assert!(table.contains("Artinya / What it means:"), "{table}");
        assert!(table.contains("db: Target menolak sambungan"), "{table}");
        assert!(!table.contains("web: "), "{table}");
        let all_ok = render(&targets[..1], &results[..1]);
        assert!(!all_ok.contains("Artinya"), "{all_ok}");
    }
}
