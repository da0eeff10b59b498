//! `pantau-agent check`: run every configured probe once, concurrently, and
//! print a table an OPD IT officer can read.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::config::{AgentConfig, Target};
use crate::model::{Observation, Outcome};
use crate::probe::{Probe, Prober};

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
                t.kind.as_str().to_string(),
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
    s
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
        (Measurement::Http { status, .. }, Outcome::Ok) => format!("HTTP {status}"),
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
pub async fn check(cfg: &AgentConfig) -> Result<(String, bool), String> {
    let mut prober = Prober::new()?;
    prober.configure_bandwidth(cfg.require_token().ok(), cfg.bandwidth.clone());
    let prober = Arc::new(prober);
    let results = run_all(prober, &cfg.targets).await;
    let all_ok = results.iter().all(|o| o.outcome == Outcome::Ok);
    Ok((render(&cfg.targets, &results), all_ok))
}
