//! The overview page: server-rendered, no scripts, no external assets.
//! Indonesian first, English beside it.

use std::fmt::Write as _;

use crate::config::Display;
use crate::store::api;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Format a time in the configured zone, e.g. "28 November 2026 17.45 WITA".
pub fn local_time(d: &Display, ms: i64) -> String {
    use crate::report::render::BULAN;
    use chrono::{Datelike, Timelike};
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms + d.utc_offset_minutes * 60_000)
    else {
        return "-".into();
    };
    format!(
        "{} {} {} {:02}.{:02}.{:02} {}",
        t.day(),
        BULAN[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute(),
        t.second(),
        d.zone_name
    )
}

/// Decimal comma, as Indonesian documents write numbers.
pub fn decimal(v: f64, places: usize) -> String {
    format!("{v:.places$}").replace('.', ",")
}

/// Render the overview.
pub fn overview(
    d: &Display,
    who: &super::auth::Principal,
    opds: &[api::Opd],
    targets: &[api::Target],
    now_ms: i64,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>Pantau — Pemantauan Jaringan Intra</title><style>body{{font-family:sans-serif;margin:1.5em;color:#222}}\
table{{border-collapse:collapse;margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}\
.ok{{color:#176c2b}}.bad{{color:#b00020;font-weight:bold}}.unk{{color:#777}}small{{color:#555}}</style></head><body>{}\
<h1>Pantau — Pemantauan Jaringan Intra <small>(Intranet monitoring)</small></h1><p>{} · Diperbarui / updated: {}</p>",
        super::auth::user_bar(who),
        esc(&d.agency),
        local_time(d, now_ms)
    );
    let _ = write!(
        h,
        "<h2>Perangkat Daerah (OPD) <small>agencies</small></h2><table><tr><th>OPD</th><th>Nama / name</th>\
<th>Agen / agents</th><th>Data terakhir / last data</th></tr>"
    );
    for o in opds {
        let last = o.last_seen_ms.map_or(
            "<span class=unk>belum ada data / no data yet</span>".into(),
            |t| local_time(d, t),
        );
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{last}</td></tr>",
            esc(&o.id),
            esc(&o.name),
            o.agents
        );
    }
    h.push_str("</table><h2>Target <small>targets, latest result</small></h2><table><tr><th>OPD</th><th>Agen</th>\
<th>Kelompok / group</th><th>Target</th><th>Jenis / kind</th><th>Alamat / address</th><th>Status</th>\
<th>Waktu / time (ms)</th><th>Kehilangan paket / loss</th><th>Pengamatan / observed</th></tr>");
    for t in targets {
        let status = match t.outcome.as_deref() {
            Some("ok") => "<span class=ok>NORMAL</span>".to_string(),
            Some(o) => format!("<span class=bad>GANGGUAN ({})</span>", esc(o)),
            None => "<span class=unk>TIDAK DIKETAHUI / unknown</span>".into(),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{status}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.opd),
            esc(&t.agent),
            esc(&t.group),
            esc(if t.label.is_empty() { &t.id } else { &t.label }),
            esc(&t.kind),
            esc(&t.address),
            t.value_ms.map_or("-".into(), |v| decimal(v, 1)),
            t.loss
                .map_or("-".into(), |l| format!("{} %", decimal(l * 100.0, 1))),
            t.observed_at_ms.map_or("-".into(), |ms| local_time(d, ms)),
        );
    }
    h.push_str("</table><p><a href=\"/metrics\">/metrics</a> · <a href=\"/api/v1/opds\">/api/v1/opds</a> · \
<a href=\"/api/v1/agents\">/api/v1/agents</a> · <a href=\"/api/v1/targets\">/api/v1/targets</a> · \
<a href=\"/jalur\">Topologi jaringan / Network paths</a></p></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indonesian_time_and_numbers() {
        let d = Display {
            agency: "X".into(),
            zone_name: "WITA".into(),
            utc_offset_minutes: 480,
        };
        // 2026-11-28T09:45:00Z is 17.45 WITA.
        assert_eq!(
            local_time(&d, 1_795_859_100_000),
            "28 November 2026 17.45.00 WITA"
        );
        assert_eq!(decimal(99.5, 1), "99,5");
        assert_eq!(esc("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
