//! Report rendering: JSON, CSV and printable HTML, in Bahasa Indonesia
//! (decimal comma, "17 November 2025") or English.

use std::fmt::Write as _;

use super::{GroupFigure, Lang, Meta, Report};

/// Indonesian month names.
pub(crate) const BULAN: [&str; 12] = [
    "Januari",
    "Februari",
    "Maret",
    "April",
    "Mei",
    "Juni",
    "Juli",
    "Agustus",
    "September",
    "Oktober",
    "November",
    "Desember",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A number with `places` decimals: "99,50" (with a thousands dot) in
/// Indonesian, "99.50" in English.
pub fn num(v: f64, places: usize, lang: Lang) -> String {
    let s = format!("{:.places$}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let (sep, dec) = match lang {
        Lang::Id => ('.', ','),
        Lang::En => (',', '.'),
    };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(sep);
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}{dec}{frac}")
    }
}

fn opt(v: Option<f64>, places: usize, lang: Lang) -> String {
    v.map_or_else(|| "-".into(), |v| num(v, places, lang))
}

/// A local date like "17 November 2025" from UTC ms.
pub fn date(ms: i64, offset_min: i64, lang: Lang) -> String {
    use chrono::Datelike;
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms + offset_min * 60_000) else {
        return "-".into();
    };
    let m = t.month0() as usize;
    let name = if lang == Lang::En {
        MONTHS[m]
    } else {
        BULAN[m]
    };
    format!("{} {} {}", t.day(), name, t.year())
}

/// A local date and time like "17 November 2025 08.05 WITA".
pub fn date_time(ms: i64, offset_min: i64, zone: &str, lang: Lang) -> String {
    use chrono::Timelike;
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms + offset_min * 60_000) else {
        return "-".into();
    };
    let sep = if lang == Lang::En { ':' } else { '.' };
    format!(
        "{} {:02}{sep}{:02} {zone}",
        date(ms, offset_min, lang),
        t.hour(),
        t.minute()
    )
}

/// RFC 3339 in the report's zone, e.g. "2026-11-02T18:05:00+08:00" (CSV).
pub fn rfc3339(ms: i64, offset_min: i64) -> String {
    let zone = chrono::FixedOffset::east_opt((offset_min * 60) as i32)
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"));
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

/// The data cut-off line of every header: "Data s.d. 17 November 2026,
/// 18.05 WITA" / "Data up to 17 November 2026, 18:05 WITA".
pub fn data_until(m: &Meta) -> String {
    use chrono::Timelike;
    let ms = m.data_until_ms;
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms + m.utc_offset_minutes * 60_000)
    else {
        return "-".into();
    };
    let (lead, sep) = if m.lang == Lang::En {
        ("Data up to", ':')
    } else {
        ("Data s.d.", '.')
    };
    format!(
        "{lead} {}, {:02}{sep}{:02} {}",
        date(ms, m.utc_offset_minutes, m.lang),
        t.hour(),
        t.minute(),
        m.zone
    )
}

/// Fixed labels.
pub fn t(lang: Lang, key: &str) -> &'static str {
    let en = lang == Lang::En;
    match key {
        "title" if en => "Intranet Monitoring Report",
        "title" => "Laporan Pemantauan Jaringan Intra",
        "number" if en => "Report number",
        "number" => "Nomor laporan",
        "period" if en => "Period",
        "period" => "Periode",
        "issued" if en => "Date of issue",
        "issued" => "Tanggal terbit",
        "scope" if en => "Scope",
        "scope" => "Cakupan laporan",
        "all" if en => "all OPD (province)",
        "all" => "seluruh OPD (provinsi)",
        "coverage" if en => "Coverage (OPD connected vs target)",
        "coverage" => "Cakupan (OPD terhubung vs target)",
        "availability" if en => "Availability per group vs SLA",
        "availability" => "Ketersediaan per kelompok vs SLA",
        "per_opd" if en => "Per OPD",
        "per_opd" => "Per perangkat daerah (OPD)",
        "incidents" if en => "Incidents",
        "incidents" => "Gangguan",
        "comparison" if en => "Before/after comparison",
        "comparison" => "Perbandingan sebelum/sesudah",
        "review" if en => "Draft review and evaluation report",
        "review" => "Draf Laporan Reviu dan Evaluasi",
        "findings" if en => "Findings",
        "findings" => "Permasalahan",
        "recommendations" if en => "Recommendations",
        "recommendations" => "Rekomendasi",
        "methodology" if en => "Methodology and rule version",
        "methodology" => "Metodologi dan versi aturan",
        "public_key" if en => "Collector public key (Ed25519)",
        "public_key" => "Kunci publik kolektor (Ed25519)",
        "group" if en => "Group",
        "group" => "Kelompok",
        "avail" if en => "Availability %",
        "avail" => "Ketersediaan %",
        "sla" => "SLA %",
        "met" if en => "Met",
        "met" => "Capaian",
        "yes" if en => "met",
        "yes" => "tercapai",
        "no" if en => "not met",
        "no" => "tidak tercapai",
        "p50" if en => "Latency p50 ms",
        "p50" => "Latensi p50 ms",
        "p95" if en => "Latency p95 ms",
        "p95" => "Latensi p95 ms",
        "jitter" => "Jitter ms",
        "loss" if en => "Loss %",
        "loss" => "Kehilangan paket %",
        "down_min" if en => "Downtime min",
        "down_min" => "Waktu henti menit",
        "unknown_min" if en => "No data min",
        "unknown_min" => "Tanpa data menit",
        "maint_min" if en => "Maintenance min",
        "maint_min" => "Pemeliharaan menit",
        "completeness" if en => "Data completeness %",
        "completeness" => "Kelengkapan data %",
        "start" if en => "Start",
        "start" => "Mulai",
        "end" if en => "End",
        "end" => "Selesai",
        "so_far" if en => "duration so far",
        "so_far" => "durasi s.d. data terakhir",
        "param" => "Parameter",
        "value" if en => "Value",
        "value" => "Nilai",
        "duration" if en => "Duration (min)",
        "duration" => "Durasi (menit)",
        "cause" if en => "Probable cause",
        "cause" => "Dugaan penyebab",
        "affected" if en => "Affected targets",
        "affected" => "Target terdampak",
        "note" if en => "Note / ticket",
        "note" => "Catatan / tiket",
        "ongoing" if en => "ongoing",
        "ongoing" => "berlangsung",
        "none" if en => "No incidents.",
        "none" => "Tidak ada gangguan.",
        "before" if en => "Before",
        "before" => "Sebelum",
        "after" if en => "Now",
        "after" => "Sesudah",
        "connected" if en => "connected",
        "connected" => "terhubung",
        "target" => "target",
        "business" if en => "business hours only",
        "business" => "hanya jam kerja",
        "method_text" if en => {
            "Per target and minute: up, degraded, down or no data. Groups combine their targets by the composite rule. Availability = (up + degraded) / (up + degraded + down); no-data minutes are reported as data completeness (per group: measured minutes / minutes outside maintenance; “coverage” means OPD connected only) and recorded maintenance windows are excluded and listed. Full text: docs/METHODOLOGY.md."
        }
        "method_text" => {
            "Per target per menit: aktif, menurun, henti, atau tanpa data. Kelompok menggabungkan targetnya menurut aturan komposit. Ketersediaan = (aktif + menurun) / (aktif + menurun + henti); menit tanpa data dilaporkan sebagai kelengkapan data (per kelompok: menit terukur / menit di luar pemeliharaan; “cakupan” hanya berarti OPD terhubung) dan jendela pemeliharaan yang dicatat dikecualikan serta dicantumkan. Teks lengkap: docs/METHODOLOGY.md."
        }
        _ => "",
    }
}

/// Group label.
pub fn group_label(g: &str, lang: Lang) -> String {
    let en = lang == Lang::En;
    match g {
        "intranet" if !en => "Jaringan Intra".into(),
        "datacenter" if !en => "Pusat Data".into(),
        "datacenter" => "Data centre".into(),
        "jip" => "JIP/PDN".into(),
        "app" if !en => "Aplikasi".into(),
        "app" => "Applications".into(),
        "agent" if !en => "Agen (tanpa data)".into(),
        "agent" => "Agent (no data)".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// The period line, e.g. "1 November 2025 – 30 November 2025".
pub fn period(r: &Report) -> String {
    let m = &r.meta;
    format!(
        "{} – {}",
        date(m.from_ms, m.utc_offset_minutes, m.lang),
        date(m.to_ms - 1, m.utc_offset_minutes, m.lang)
    )
}

/// One row of figures for a group, as table cells.
pub fn group_cells(g: &GroupFigure, lang: Lang) -> Vec<String> {
    vec![
        group_label(&g.group, lang),
        opt(g.availability_pct, 2, lang),
        num(g.sla_pct, 1, lang),
        match g.sla_met {
            Some(true) => t(lang, "yes").into(),
            Some(false) => t(lang, "no").into(),
            None => "-".into(),
        },
        latency(g.p50_ms, lang),
        latency(g.p95_ms, lang),
        latency(g.jitter_ms, lang),
        opt(g.loss_pct, 2, lang),
        num(g.minutes.down as f64, 0, lang),
        num(g.minutes.unknown as f64, 0, lang),
        num(g.minutes.maintenance as f64, 0, lang),
    ]
}

/// A latency in ms: one decimal, more below 1 ms so LAN answers under
/// 0.1 ms do not print as zero ("0,04").
pub fn latency(v: Option<f64>, lang: Lang) -> String {
    v.map_or_else(
        || "-".into(),
        |v| {
            let places = match v.abs() {
                x if x >= 1.0 || x == 0.0 => 1,
                x if x >= 0.1 => 2,
                _ => 3,
            };
            num(v, places, lang)
        },
    )
}

/// Headers matching [`group_cells`].
pub fn group_headers(lang: Lang) -> Vec<&'static str> {
    [
        "group",
        "avail",
        "sla",
        "met",
        "p50",
        "p95",
        "jitter",
        "loss",
        "down_min",
        "unknown_min",
        "maint_min",
    ]
    .iter()
    .map(|k| t(lang, k))
    .collect()
}

/// The §7 parameter table: a label in the report's language for each
/// machine key of [`Meta::parameters`] (JSON keeps the keys) and the value
/// with the language's decimal mark.
pub fn parameter_rows(m: &Meta) -> Vec<Vec<String>> {
    m.parameters
        .iter()
        .map(|(k, v)| vec![parameter_label(k, m.lang), parameter_value(k, v, m.lang)])
        .collect()
}

/// Headers matching [`parameter_rows`].
pub fn parameter_headers(l: Lang) -> [&'static str; 2] {
    [t(l, "param"), t(l, "value")]
}

fn parameter_label(key: &str, l: Lang) -> String {
    let en = l == Lang::En;
    let pick = |id: &str, e: &str| if en { e.to_string() } else { id.to_string() };
    if let Some(g) = key.strip_prefix("sla.") {
        let g = group_label(g, l);
        return pick(
            &format!("target SLA {g} (%)"),
            &format!("SLA target, {g} (%)"),
        );
    }
    if let Some(g) = key.strip_prefix("composite.") {
        let g = group_label(g, l);
        return pick(
            &format!("aturan komposit {g}"),
            &format!("composite rule, {g}"),
        );
    }
    if let Some(rest) = key.strip_prefix("rules_before ") {
        return pick(
            &format!("aturan yang berlaku sebelum {rest}"),
            &format!("rules in force before {rest}"),
        );
    }
    match key {
        "rule_version" => pick("versi aturan", "rule version"),
        "degraded_loss" => pick(
            "ambang kehilangan paket menurun",
            "degraded packet-loss threshold",
        ),
        "degraded_rtt_ms" => pick(
            "ambang latensi menurun (ms)",
            "degraded latency threshold (ms)",
        ),
        "incident_minutes" => pick(
            "menit henti berturut-turut minimum untuk gangguan",
            "minimum consecutive down minutes for an incident",
        ),
        "business_hours" => pick("jam kerja", "business hours"),
        "coverage_target" => pick(
            "target cakupan OPD terhubung (%)",
            "OPD coverage target (%)",
        ),
        "saturation_p95_pct" => pick(
            "ambang jenuh pemanfaatan tautan p95 (%)",
            "link saturation threshold, p95 utilisation (%)",
        ),
        "throughput_min_pct_of_contract" => pick(
            "kecepatan minimum terhadap kontrak (%)",
            "minimum throughput, percent of contract",
        ),
        "utilisation_hist_buckets_per_doubling" => pick(
            "ember histogram pemanfaatan per kelipatan dua",
            "utilisation histogram buckets per doubling",
        ),
        other => other.to_string(),
    }
}

fn parameter_value(key: &str, v: &str, l: Lang) -> String {
    let en = l == Lang::En;
    if key.starts_with("composite.") {
        return match v {
            "any" => if en {
                "any target"
            } else {
                "salah satu target"
            }
            .to_string(),
            "all" => if en { "every target" } else { "semua target" }.to_string(),
            q => match q.strip_prefix("quorum(").and_then(|r| r.strip_suffix(')')) {
                Some(n) if en => format!("quorum of {n} targets"),
                Some(n) => format!("kuorum {n} target"),
                None => q.to_string(),
            },
        };
    }
    if en {
        return v.to_string();
    }
    if key == "business_hours" {
        return v.replace(':', ".").replace("Mon-Fri", "Senin-Jumat");
    }
    // A plain number as configured ("0.2", "99.5"), with the decimal comma.
    if v.parse::<f64>().is_ok() {
        return v.replace('.', ",");
    }
    v.to_string()
}

/// JSON (machine figures, unformatted numbers).
pub fn json(r: &Report) -> Vec<u8> {
    serde_json::to_vec_pretty(r).unwrap_or_default()
}

pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', ';']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// CSV: one row per OPD and group, plain numbers with a decimal point so
/// spreadsheets in any locale read them; the header says what each is.
pub fn csv(r: &Report) -> Vec<u8> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "opd,opd_name,group,availability_pct,sla_pct,sla_met,completeness_pct,up_min,degraded_min,down_min,unknown_min,maintenance_min,p50_ms,p95_ms,jitter_ms,loss_pct,results,rule_version,data_until"
    );
    let until = rfc3339(r.meta.data_until_ms, r.meta.utc_offset_minutes);
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    for o in &r.opds {
        for g in &o.groups {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{until}",
                csv_field(&o.id),
                csv_field(&o.name),
                g.group,
                f(g.availability_pct),
                g.sla_pct,
                g.sla_met.map_or(String::new(), |m| m.to_string()),
                f(g.completeness_pct),
                g.minutes.up,
                g.minutes.degraded,
                g.minutes.down,
                g.minutes.unknown,
                g.minutes.maintenance,
                f(g.p50_ms),
                f(g.p95_ms),
                f(g.jitter_ms),
                f(g.loss_pct),
                g.results,
                r.meta.rule_version
            );
        }
    }
    super::capacity::csv(r, &mut s);
    incident_csv(r, &mut s);
    super::maintenance::csv(r, &mut s);
    super::clock::csv(&r.clock, &mut s);
    s.into_bytes()
}

/// CSV block of incidents: an open one has no end (`open` true, minutes so
/// far, up to the data cut-off).
fn incident_csv(r: &Report, s: &mut String) {
    let t = |ms| rfc3339(ms, r.meta.utc_offset_minutes);
    let _ = writeln!(
        s,
        "\nsection,opd,group,start,end,minutes,open,cause,affected"
    );
    for i in &r.incidents {
        let _ = writeln!(
            s,
            "incident,{},{},{},{},{},{},{},{}",
            csv_field(&i.opd),
            i.group,
            t(i.start_ms),
            if i.open { String::new() } else { t(i.end_ms) },
            i.minutes,
            i.open,
            serde_json::to_value(i.cause)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            csv_field(&i.affected.join(" "))
        );
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A numbered disclosure section: title, note, then its table, or the
/// "none" text when it has no row.
fn disclosure(
    h: &mut String,
    number: &str,
    [title, note, none]: [&str; 3],
    headers: &[&str],
    rows: &[Vec<String>],
) {
    let _ = write!(h, "<h2>{number}. {}</h2><p>{}</p>", esc(title), esc(note));
    if rows.is_empty() {
        let _ = write!(h, "<p>{}</p>", esc(none));
    } else {
        table(h, headers, rows);
    }
}

fn table(h: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    h.push_str("<table><tr>");
    for x in headers {
        let _ = write!(h, "<th>{}</th>", esc(x));
    }
    h.push_str("</tr>");
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", esc(c));
        }
        h.push_str("</tr>");
    }
    h.push_str("</table>");
}

/// Rows of the incident table.
pub fn incident_rows(r: &Report) -> Vec<Vec<String>> {
    let (l, off, z) = (r.meta.lang, r.meta.utc_offset_minutes, r.meta.zone.as_str());
    r.incidents
        .iter()
        .map(|i| {
            vec![
                i.opd.clone(),
                group_label(&i.group, l),
                date_time(i.start_ms, off, z, l),
                if i.open {
                    t(l, "ongoing").to_string()
                } else {
                    date_time(i.end_ms, off, z, l)
                },
                if i.open {
                    format!("{} ({})", num(i.minutes as f64, 0, l), t(l, "so_far"))
                } else {
                    num(i.minutes as f64, 0, l)
                },
                i.cause.label(l == Lang::En).to_string(),
                i.affected.join(", "),
                [i.note.clone(), i.ticket.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" / "),
            ]
        })
        .collect()
}

/// Incident table headers.
pub fn incident_headers(l: Lang) -> Vec<&'static str> {
    vec![
        "OPD",
        t(l, "group"),
        t(l, "start"),
        t(l, "end"),
        t(l, "duration"),
        t(l, "cause"),
        t(l, "affected"),
        t(l, "note"),
    ]
}

/// Printable HTML, self-contained.
pub fn html(r: &Report) -> Vec<u8> {
    let l = r.meta.lang;
    let m = &r.meta;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{} {}</title>\
<style>body{{font-family:sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
td,th{{border:1px solid #999;padding:.2em .5em;font-size:.9em}}th{{background:#eee}}h1{{font-size:1.4em}}\
@page{{size:A4;margin:15mm}}.ok{{color:#070}}.bad{{color:#a00}}</style></head><body>",
        if l == Lang::En { "en" } else { "id" },
        esc(t(l, "title")),
        esc(&m.number)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p><b>{}</b></p><p>{}: {}<br>{}: {}<br>{}: {}<br>{}: {}{}</p>",
        esc(t(l, "title")),
        esc(&m.agency),
        esc(t(l, "number")),
        esc(&m.number),
        esc(t(l, "period")),
        esc(&period(r)),
        esc(t(l, "issued")),
        esc(&date(m.issued_ms, m.utc_offset_minutes, l)),
        esc(t(l, "scope")),
        esc(if m.scope == "all" {
            t(l, "all")
        } else {
            &m.scope
        }),
        if m.business_hours {
            format!(" ({})", t(l, "business"))
        } else {
            String::new()
        }
    );
    let _ = write!(h, "<p><b>{}</b></p>", esc(&data_until(m)));
    let c = &r.coverage;
    let _ = write!(
        h,
        "<h2>1. {}</h2><p>{} / {} OPD {} = {} % ({} {} %: {})</p>",
        esc(t(l, "coverage")),
        c.connected,
        c.total,
        t(l, "connected"),
        num(c.connected_pct, 1, l),
        t(l, "target"),
        num(c.target_pct, 1, l),
        if c.met { t(l, "yes") } else { t(l, "no") }
    );
    let _ = write!(h, "<h2>2. {}</h2>", esc(t(l, "availability")));
    let rows: Vec<Vec<String>> = r.groups.iter().map(|g| group_cells(g, l)).collect();
    table(&mut h, &group_headers(l), &rows);
    let _ = write!(h, "<h2>3. {}</h2>", esc(t(l, "per_opd")));
    let mut headers = vec!["OPD", t(l, "completeness")];
    headers.extend(group_headers(l));
    let mut rows = Vec::new();
    for o in &r.opds {
        for g in &o.groups {
            let mut row = vec![
                format!("{} — {}", o.id, o.name),
                opt(o.completeness_pct, 1, l),
            ];
            row.extend(group_cells(g, l));
            rows.push(row);
        }
        if o.groups.is_empty() {
            let mut row = vec![format!("{} — {}", o.id, o.name), "0".into()];
            row.extend(std::iter::repeat_n("-".to_string(), 11));
            rows.push(row);
        }
    }
    table(&mut h, &headers, &rows);
    h.push_str(&super::capacity::html(r));
    let _ = write!(h, "<h2>4. {}</h2>", esc(t(l, "incidents")));
    if r.incidents.is_empty() {
        let _ = write!(h, "<p>{}</p>", t(l, "none"));
    } else {
        table(&mut h, &incident_headers(l), &incident_rows(r));
    }
    disclosure(
        &mut h,
        "4a",
        [
            super::maintenance::title(l),
            super::maintenance::note(l),
            super::maintenance::none(l),
        ],
        &super::maintenance::headers(l),
        &super::maintenance::rows(r),
    );
    disclosure(
        &mut h,
        "4b",
        [
            super::clock::title(l),
            super::clock::note(l),
            super::clock::none(l),
        ],
        &super::clock::headers(l),
        &super::clock::rows(&r.clock, l),
    );
    if let Some(cmp) = &r.comparison {
        let _ = write!(h, "<h2>5. {}</h2>", esc(t(l, "comparison")));
        let rows: Vec<Vec<String>> = cmp
            .groups
            .iter()
            .map(|(g, b, a)| vec![group_label(g, l), opt(*b, 2, l), opt(*a, 2, l)])
            .collect();
        table(
            &mut h,
            &[
                t(l, "group"),
                &format!(
                    "{} ({} – {})",
                    t(l, "before"),
                    cmp.before_from,
                    cmp.before_to
                ),
                t(l, "after"),
            ],
            &rows,
        );
    }
    let _ = write!(
        h,
        "<h2>6. {}</h2><h3>{}</h3><ul>",
        esc(t(l, "review")),
        t(l, "findings")
    );
    for f in &r.findings {
        let _ = write!(h, "<li>{}</li>", esc(f));
    }
    let _ = write!(h, "</ul><h3>{}</h3><ul>", t(l, "recommendations"));
    for x in &r.recommendations {
        let _ = write!(h, "<li>{}</li>", esc(x));
    }
    let _ = write!(
        h,
        "</ul><h2>7. {}</h2><p>{}</p>",
        esc(t(l, "methodology")),
        esc(t(l, "method_text"))
    );
    table(&mut h, &parameter_headers(l), &parameter_rows(m));
    if let Some(k) = &m.public_key {
        let _ = write!(h, "<p>{}: <code>{}</code></p>", t(l, "public_key"), esc(k));
    }
    h.push_str(&super::topology::html_section(&r.topology, m));
    h.push_str(&validity_html(r));
    h.push_str("</body></html>\n");
    h.into_bytes()
}

/// The closing "Keabsahan dokumen" box, shared by PDF and HTML: how to
/// check the bundle, where the official key is, and the sign-off block.
pub struct Validity {
    /// Box title.
    pub title: &'static str,
    /// Label and value rows.
    pub rows: Vec<(&'static str, String)>,
    /// Sign-off lines (place and date, position, blank line for the
    /// signature, name, NIP); empty without `[report.signoff]`.
    pub signoff: Vec<String>,
}

/// The validity box of a report.
pub fn validity(r: &Report) -> Validity {
    let m = &r.meta;
    let en = m.lang == Lang::En;
    let pick = |id: &'static str, e: &'static str| if en { e } else { id };
    let bundle = pick("FOLDER-BUNDEL-atau-BERKAS.tar", "BUNDLE-DIR-or-FILE.tar");
    let key = m.public_key.clone().unwrap_or_else(|| "-".into());
    let (raw, digest) = match &m.raw_export {
        Some(x) => (x.file.clone(), x.sha256.clone()),
        None => {
            let none = pick(
                "- (bukan bundel bertanda tangan)",
                "- (not a signed bundle)",
            );
            (none.to_string(), none.to_string())
        }
    };
    let mut rows = vec![
        (pick("Berkas hasil mentah", "Raw export file"), raw),
        (pick("SHA-256 hasil mentah", "Raw export SHA-256"), digest),
        (
            pick(
                "Kunci publik kolektor (Ed25519)",
                "Collector public key (Ed25519)",
            ),
            key.clone(),
        ),
        (
            pick(
                "Kunci publik resmi diterbitkan di",
                "Official public key published at",
            ),
            m.public_key_url.clone(),
        ),
        (
            pick("Periksa keaslian", "Check authenticity"),
            format!("pantau-collector verify {bundle} --public-key {key}"),
        ),
        (
            pick("Hitung ulang angka", "Recompute the figures"),
            format!("python3 pantau-recompute.py {bundle}"),
        ),
    ];
    rows.push((
        pick("Catatan", "Note"),
        pick(
            "Tanpa --public-key, verify hanya memeriksa keutuhan (kode keluar 3), bukan asal-usul.",
            "Without --public-key, verify checks integrity only (exit code 3), not origin.",
        )
        .to_string(),
    ));
    let signoff = m.signoff.as_ref().map_or_else(Vec::new, |s| {
        vec![
            format!(
                "{}, {}",
                s.place,
                date(m.issued_ms, m.utc_offset_minutes, m.lang)
            ),
            s.position.clone(),
            String::new(),
            String::new(),
            s.name.clone(),
            format!("NIP {}", s.nip),
        ]
    });
    Validity {
        title: pick("Keabsahan dokumen", "Document validity"),
        rows,
        signoff,
    }
}

fn validity_html(r: &Report) -> String {
    let v = validity(r);
    let mut h = format!(
        "<section class=\"validity\" style=\"border:1px solid #000;padding:6px;margin-top:12px\"><h2>{}</h2><table>",
        esc(v.title)
    );
    for (k, x) in &v.rows {
        let _ = write!(
            h,
            "<tr><th>{}</th><td><code>{}</code></td></tr>",
            esc(k),
            esc(x)
        );
    }
    h.push_str("</table>");
    if !v.signoff.is_empty() {
        h.push_str("<p style=\"margin-left:55%\">");
        for l in &v.signoff {
            let _ = write!(h, "{}<br>", esc(l));
        }
        h.push_str("</p>");
    }
    h.push_str("</section>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indonesian_numbers_and_dates() {
        assert_eq!(num(99.5, 1, Lang::Id), "99,5");
        assert_eq!(num(3700.0, 0, Lang::Id), "3.700");
        assert_eq!(num(1234567.891, 2, Lang::Id), "1.234.567,89");
        assert_eq!(num(1234567.891, 2, Lang::En), "1,234,567.89");
        assert_eq!(num(-0.0001, 1, Lang::Id), "0,0");
        // 2025-11-16T16:30:00Z is 17 November 00.30 WITA.
        let ms = 1_763_310_600_000;
        assert_eq!(date(ms, 480, Lang::Id), "17 November 2025");
        assert_eq!(date(ms, 0, Lang::En), "16 November 2025");
        assert_eq!(
            date_time(ms, 480, "WITA", Lang::Id),
            "17 November 2025 00.30 WITA"
        );
    }

    fn meta(lang: Lang, parameters: Vec<(String, String)>) -> Meta {
        Meta {
            agency: "Diskominfo".into(),
            number: "1".into(),
            scope: "all".into(),
            lang,
            from: "2026-11-17".into(),
            to: "2026-11-17".into(),
            from_ms: 0,
            to_ms: 0,
            issued_ms: 0,
            // 2026-11-17T10:05:00Z = 18.05 WITA.
            data_until_ms: 1_794_909_900_000,
            zone: "WITA".into(),
            utc_offset_minutes: 480,
            business_hours: false,
            rule_version: "pantau-rules/2".into(),
            parameters,
            public_key: None,
            public_key_url: String::new(),
            raw_export: None,
            signoff: None,
        }
    }

    #[test]
    fn parameters_in_the_report_language() {
        let p: Vec<(String, String)> = [
            ("degraded_loss", "0.2"),
            ("degraded_rtt_ms", "150"),
            ("business_hours", "08:00-16:00 Mon-Fri"),
            ("composite.app", "quorum(2)"),
            ("composite.internet", "any"),
            ("sla.datacenter", "99.5"),
            ("rule_version", "pantau-rules/2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let id = parameter_rows(&meta(Lang::Id, p.clone()));
        let line = |rows: &[Vec<String>], i: usize| format!("{}: {}", rows[i][0], rows[i][1]);
        assert_eq!(line(&id, 0), "ambang kehilangan paket menurun: 0,2");
        assert_eq!(line(&id, 1), "ambang latensi menurun (ms): 150");
        assert_eq!(line(&id, 2), "jam kerja: 08.00-16.00 Senin-Jumat");
        assert_eq!(line(&id, 3), "aturan komposit Aplikasi: kuorum 2 target");
        assert_eq!(line(&id, 4), "aturan komposit Internet: salah satu target");
        assert_eq!(line(&id, 5), "target SLA Pusat Data (%): 99,5");
        assert_eq!(line(&id, 6), "versi aturan: pantau-rules/2");
        let en = parameter_rows(&meta(Lang::En, p));
        assert_eq!(line(&en, 0), "degraded packet-loss threshold: 0.2");
        assert_eq!(
            line(&en, 3),
            "composite rule, Applications: quorum of 2 targets"
        );
        assert_eq!(line(&en, 5), "SLA target, Data centre (%): 99.5");
        assert_eq!(parameter_headers(Lang::Id), ["Parameter", "Nilai"]);
    }

    #[test]
    fn data_cut_off_line_and_small_latencies() {
        assert_eq!(
            data_until(&meta(Lang::Id, vec![])),
            "Data s.d. 17 November 2026, 18.05 WITA"
        );
        assert_eq!(
            data_until(&meta(Lang::En, vec![])),
            "Data up to 17 November 2026, 18:05 WITA"
        );
        assert_eq!(latency(Some(0.04), Lang::Id), "0,040");
        assert_eq!(latency(Some(0.25), Lang::Id), "0,25");
        assert_eq!(latency(Some(12.34), Lang::En), "12.3");
        assert_eq!(latency(Some(0.0), Lang::Id), "0,0");
        assert_eq!(latency(None, Lang::En), "-");
    }

    #[test]
    fn an_ongoing_incident_has_no_end_and_a_duration_so_far() {
        use super::super::incident::{Cause, Incident};
        // 2026-11-17 08.00 WITA; closed after 20 minutes / still down after 54.
        let start = 1_794_873_600_000;
        let inc = |open: bool, minutes: i64| Incident {
            opd: "dinkes".into(),
            group: "datacenter".into(),
            start_ms: start,
            end_ms: start + minutes * 60_000,
            minutes,
            open,
            cause: Cause::IntranetLink,
            affected: vec!["pusdat".into()],
            note: None,
            ticket: None,
        };
        let report = |lang| Report {
            meta: meta(lang, vec![]),
            coverage: super::super::Coverage {
                total: 1,
                connected: 1,
                connected_pct: 100.0,
                target_pct: 100.0,
                met: true,
                not_connected: vec![],
            },
            groups: vec![],
            opds: vec![],
            incidents: vec![inc(false, 20), inc(true, 54)],
            maintenance: vec![],
            comparison: None,
            capacity: Default::default(),
            findings: vec![],
            recommendations: vec![],
            topology: Default::default(),
            clock: vec![],
        };
        let id = incident_rows(&report(Lang::Id));
        assert_eq!(incident_headers(Lang::Id)[3], "Selesai");
        assert_eq!(id[0][1], "Pusat Data");
        assert_eq!(id[0][3], "17 November 2026 08.20 WITA");
        assert_eq!(id[0][4], "20");
        assert_eq!(id[1][3], "berlangsung");
        assert_eq!(id[1][4], "54 (durasi s.d. data terakhir)");
        let en = incident_rows(&report(Lang::En));
        assert_eq!(
            (en[1][3].as_str(), en[1][4].as_str()),
            ("ongoing", "54 (duration so far)")
        );
        let csv = String::from_utf8(csv(&report(Lang::Id))).unwrap();
        let lines: Vec<&str> = csv.lines().filter(|l| l.starts_with("incident,")).collect();
        assert_eq!(
            lines,
            [
                "incident,dinkes,datacenter,2026-11-17T08:00:00+08:00,2026-11-17T08:20:00+08:00,20,false,intranet_link,pusdat",
                "incident,dinkes,datacenter,2026-11-17T08:00:00+08:00,,54,true,intranet_link,pusdat",
            ]
        );
    }
}
