//! Section 4a: the recorded maintenance windows that shaped the figures
//! (see [`crate::report::maintenance`]).

use crate::report::model::{Cell, Empty, Media, Para, Section, Sheet, Size};
use crate::report::model::{gap, heading, labels, records, table};
use crate::report::text::{date_time, group_label, rfc3339};
use crate::report::{Lang, Report};

/// Section title.
pub fn title(l: Lang) -> &'static str {
    if l == Lang::En {
        "Maintenance windows (excluded from availability)"
    } else {
        "Jendela pemeliharaan (dikecualikan dari ketersediaan)"
    }
}

/// What the section says before its table.
fn note(l: Lang) -> &'static str {
    if l == Lang::En {
        "Minutes inside a recorded window count as maintenance, not as up or down; the maintenance minutes per OPD and group are in the tables above. \"retroactive\" = recorded after the window had started, so it changed figures that already existed."
    } else {
        "Menit di dalam jendela yang dicatat dihitung sebagai pemeliharaan, bukan aktif atau henti; menit pemeliharaan per OPD dan kelompok ada pada tabel di atas. \"retroaktif\" = dicatat setelah jendela dimulai, sehingga mengubah angka yang sudah ada."
    }
}

/// Text when the period has no window.
fn none(l: Lang) -> &'static str {
    if l == Lang::En {
        "No maintenance window in the period."
    } else {
        "Tidak ada jendela pemeliharaan dalam periode ini."
    }
}

fn headers(l: Lang) -> [&'static str; 7] {
    if l == Lang::En {
        [
            "OPD",
            "Group",
            "Start – end",
            "Reason",
            "Recorded by",
            "Recorded at",
            "Retroactive",
        ]
    } else {
        [
            "OPD",
            "Kelompok",
            "Mulai – selesai",
            "Alasan",
            "Dicatat oleh",
            "Dicatat pada",
            "Retroaktif",
        ]
    }
}

/// "retroaktif" / "retroactive", or empty.
pub fn retroactive_mark(retroactive: bool, l: Lang) -> &'static str {
    match (retroactive, l) {
        (false, _) => "",
        (true, Lang::En) => "retroactive",
        (true, Lang::Id) => "retroaktif",
    }
}

/// Table rows, times in the report's zone.
fn rows(r: &Report) -> Vec<Vec<Cell>> {
    let (l, off, z) = (r.meta.lang, r.meta.utc_offset_minutes, r.meta.zone.as_str());
    let en = l == Lang::En;
    r.maintenance
        .iter()
        .map(|w| {
            vec![
                Cell::Text(
                    w.opd
                        .clone()
                        .unwrap_or_else(|| if en { "all OPD" } else { "semua OPD" }.to_string()),
                ),
                Cell::Text(w.group.as_deref().map_or_else(
                    || if en { "all groups" } else { "semua kelompok" }.to_string(),
                    |g| group_label(g, l),
                )),
                Cell::Text(format!(
                    "{} – {}",
                    date_time(w.from_ms, off, z, l),
                    date_time(w.to_ms, off, z, l)
                )),
                Cell::text(&w.reason),
                Cell::text(&w.recorded_by),
                Cell::Text(date_time(w.recorded_at_ms, off, z, l)),
                Cell::text(retroactive_mark(w.retroactive, l)),
            ]
        })
        .collect()
}

/// CSV block: one row per window; times RFC 3339 in the report's zone.
fn csv_rows(r: &Report) -> Vec<Vec<String>> {
    let t = |ms| rfc3339(ms, r.meta.utc_offset_minutes);
    r.maintenance
        .iter()
        .map(|w| {
            vec![
                "maintenance".into(),
                w.opd.clone().unwrap_or_else(|| "*".into()),
                w.group.clone().unwrap_or_else(|| "*".into()),
                t(w.from_ms),
                t(w.to_ms),
                w.reason.clone(),
                w.recorded_by.clone(),
                t(w.recorded_at_ms),
                w.retroactive.to_string(),
            ]
        })
        .collect()
}

/// The maintenance disclosure (sheet "Pemeliharaan").
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    vec![Section {
        id: "maintenance",
        sheet: Some(Sheet {
            name: "Pemeliharaan",
            widths: vec![(2, 40.0)],
        }),
        blocks: vec![
            heading(2, Some("4a"), title(l)),
            Para::text(Size::Note, note(l)),
            gap(1.0, Media::SHEET),
            table(
                labels(&headers(l)),
                rows(r),
                &[1.0, 1.0, 2.4, 1.6, 1.0, 1.6, 0.9],
                Empty::Text(none(l).into()),
            ),
            records(
                vec![
                    "section",
                    "opd",
                    "group",
                    "from",
                    "to",
                    "reason",
                    "recorded_by",
                    "recorded_at",
                    "retroactive",
                ],
                csv_rows(r),
            ),
        ],
    }]
}
