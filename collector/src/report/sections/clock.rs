//! Section 4b: agents whose clock was corrected or whose results were left
//! out for an impossible time (see [`crate::report::clock`]).

use crate::report::clock::ClockNote;
use crate::report::model::{Cell, Empty, Media, Para, Section, Sheet, Size};
use crate::report::model::{gap, heading, labels, records, table};
use crate::report::{Lang, Report};

/// Section title.
fn title(l: Lang) -> &'static str {
    if l == Lang::En {
        "Agent clocks (results placed by the collector's estimate)"
    } else {
        "Jam agen (hasil yang ditempatkan menurut perkiraan kolektor)"
    }
}

/// What the section says before its table.
fn note(l: Lang) -> &'static str {
    if l == Lang::En {
        "An agent whose clock was off by more than 10 seconds at connection has its results placed at its own time plus the offset the collector measured (collector clock minus agent clock); both times are kept in the raw export (observed_at_ms, agent_time_ms, clock_correction_ms). Results whose time was impossible (far in the future or older than the spool can hold) are not counted at all."
    } else {
        "Agen yang jamnya meleset lebih dari 10 detik saat terhubung: hasilnya ditempatkan pada jam agen ditambah selisih yang diukur kolektor (jam kolektor dikurangi jam agen); kedua waktu disimpan di ekspor hasil mentah (observed_at_ms, agent_time_ms, clock_correction_ms). Hasil dengan waktu yang mustahil (jauh di masa depan atau lebih tua dari yang dapat disimpan antrean agen) tidak dihitung sama sekali."
    }
}

/// Text when every agent's clock could be used.
fn none(l: Lang) -> &'static str {
    if l == Lang::En {
        "Every agent's clock was within 10 seconds of the collector's in the period."
    } else {
        "Jam setiap agen dalam periode ini selisihnya kurang dari 10 detik dari jam kolektor."
    }
}

fn headers(l: Lang) -> [&'static str; 6] {
    if l == Lang::En {
        [
            "OPD",
            "Agent",
            "Results placed",
            "Minutes affected",
            "Offset applied",
            "Results not counted",
        ]
    } else {
        [
            "OPD",
            "Agen",
            "Hasil ditempatkan",
            "Menit terdampak",
            "Selisih yang diterapkan",
            "Hasil tidak dihitung",
        ]
    }
}

/// An offset in words: "+3 j 0 mnt 12 dtk" / "+3 h 0 min 12 s".
fn offset_text(ms: i64, l: Lang) -> String {
    let sign = if ms < 0 { "-" } else { "+" };
    let s = ms.unsigned_abs() / 1000;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if l == Lang::En {
        format!("{sign}{h} h {m} min {s} s")
    } else {
        format!("{sign}{h} j {m} mnt {s} dtk")
    }
}

/// Table rows.
fn rows(notes: &[ClockNote], l: Lang) -> Vec<Vec<Cell>> {
    notes
        .iter()
        .map(|n| {
            vec![
                Cell::text(&n.opd),
                Cell::text(&n.agent),
                Cell::plain(n.corrected_results),
                Cell::plain(n.corrected_minutes),
                Cell::Text(match n.correction_ms {
                    Some((lo, hi)) if lo == hi => offset_text(lo, l),
                    Some((lo, hi)) => format!("{} … {}", offset_text(lo, l), offset_text(hi, l)),
                    None => "-".into(),
                }),
                Cell::plain(n.excluded_results),
            ]
        })
        .collect()
}

/// CSV block: one row per agent.
fn csv_rows(notes: &[ClockNote]) -> Vec<Vec<String>> {
    notes
        .iter()
        .map(|n| {
            let (lo, hi) = n
                .correction_ms
                .map_or((String::new(), String::new()), |(a, b)| {
                    (a.to_string(), b.to_string())
                });
            vec![
                "agent_clock".into(),
                n.opd.clone(),
                n.agent.clone(),
                n.corrected_results.to_string(),
                n.corrected_minutes.to_string(),
                lo,
                hi,
                n.excluded_results.to_string(),
            ]
        })
        .collect()
}

/// The clock disclosure (sheet "Jam agen").
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    vec![Section {
        id: "clock",
        sheet: Some(Sheet {
            name: "Jam agen",
            widths: vec![],
        }),
        blocks: vec![
            heading(2, Some("4b"), title(l)),
            Para::text(Size::Note, note(l)),
            gap(1.0, Media::SHEET),
            table(
                labels(&headers(l)),
                rows(&r.clock, l),
                &[1.0, 1.2, 1.0, 1.0, 1.6, 1.0],
                Empty::Text(none(l).into()),
            ),
            records(
                vec![
                    "section",
                    "opd",
                    "agent",
                    "corrected_results",
                    "corrected_minutes",
                    "min_correction_ms",
                    "max_correction_ms",
                    "excluded_results",
                ],
                csv_rows(&r.clock),
            ),
        ],
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_name_the_offset_in_both_languages() {
        let n = ClockNote {
            opd: "dishub".into(),
            agent: "dishub-1".into(),
            corrected_results: 120,
            corrected_minutes: 2,
            correction_ms: Some((10_800_250, 10_800_250)),
            excluded_results: 1,
        };
        let text = |l| -> Vec<Vec<String>> {
            rows(std::slice::from_ref(&n), l)
                .iter()
                .map(|r| r.iter().map(|c| c.show(l, true)).collect())
                .collect()
        };
        let id = text(Lang::Id);
        assert_eq!(id[0][4], "+3 j 0 mnt 0 dtk");
        assert_eq!(id[0][2..4], ["120".to_string(), "2".to_string()]);
        let en = text(Lang::En);
        assert_eq!(en[0][4], "+3 h 0 min 0 s");
        let s = crate::report::render::csv::records_text(&[crate::report::model::Records {
            columns: vec!["section"],
            rows: csv_rows(&[n]),
        }]);
        assert!(
            s.ends_with(
                "\"agent_clock\",\"dishub\",\"dishub-1\",\"120\",\"2\",\"10800250\",\"10800250\",\"1\"\n"
            ),
            "{s}"
        );
        assert_eq!(offset_text(-61_000, Lang::Id), "-0 j 1 mnt 1 dtk");
    }
}
