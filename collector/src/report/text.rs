//! Words and numbers in the report's language: decimal marks, dates in
//! the report's zone, fixed labels and group names. Sections use these to
//! build their model; renderers never need them.

use super::{Lang, Meta, Report};

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

/// An optional number, "-" when absent.
pub fn opt(v: Option<f64>, places: usize, lang: Lang) -> String {
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

    fn meta(lang: Lang) -> Meta {
        crate::report::test_meta(lang, vec![])
    }

    #[test]
    fn data_cut_off_line_and_small_latencies() {
        assert_eq!(
            data_until(&meta(Lang::Id)),
            "Data s.d. 17 November 2026, 18.05 WITA"
        );
        assert_eq!(
            data_until(&meta(Lang::En)),
            "Data up to 17 November 2026, 18:05 WITA"
        );
        assert_eq!(latency(Some(0.04), Lang::Id), "0,040");
        assert_eq!(latency(Some(0.25), Lang::Id), "0,25");
        assert_eq!(latency(Some(12.34), Lang::En), "12.3");
        assert_eq!(latency(Some(0.0), Lang::Id), "0,0");
        assert_eq!(latency(None, Lang::En), "-");
    }
}
