//! Agents whose clocks could not be trusted during a report's period: results
//! placed by the collector's offset estimate, and results left out because
//! their time was impossible. Listed in every report so an evaluator sees
//! which minutes rest on a corrected clock.

use serde::Serialize;

use crate::store::StoreError;
use crate::store::report::ReportRead;

/// One agent's clock disclosure for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClockNote {
    /// OPD.
    pub opd: String,
    /// Agent.
    pub agent: String,
    /// Results placed by the collector's offset estimate.
    pub corrected_results: i64,
    /// Distinct minutes holding such results.
    pub corrected_minutes: i64,
    /// Smallest and largest offset applied (collector minus agent clock), ms.
    pub correction_ms: Option<(i64, i64)>,
    /// Results not counted at all: agent time far in the future or past.
    pub excluded_results: i64,
}

/// Clock notes of the agents of `opd` (or all) for results placed in
/// `[from_ms, until_ms)`.
pub fn notes(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<ClockNote>, StoreError> {
    Ok(r.clock_rows(opd, from_ms, until_ms)?
        .into_iter()
        .map(|c| ClockNote {
            opd: c.opd,
            agent: c.agent,
            corrected_results: c.corrected_results,
            corrected_minutes: c.corrected_minutes,
            correction_ms: c.min_correction_ms.zip(c.max_correction_ms),
            excluded_results: c.excluded_results,
        })
        .collect())
}

use super::Lang;

/// Section title.
pub fn title(l: Lang) -> &'static str {
    if l == Lang::En {
        "Agent clocks (results placed by the collector's estimate)"
    } else {
        "Jam agen (hasil yang ditempatkan menurut perkiraan kolektor)"
    }
}

/// What the section says before its table.
pub fn note(l: Lang) -> &'static str {
    if l == Lang::En {
        "An agent whose clock was off by more than 10 seconds at connection has its results placed at its own time plus the offset the collector measured (collector clock minus agent clock); both times are kept in the raw export (observed_at_ms, agent_time_ms, clock_correction_ms). Results whose time was impossible (far in the future or older than the spool can hold) are not counted at all."
    } else {
        "Agen yang jamnya meleset lebih dari 10 detik saat terhubung: hasilnya ditempatkan pada jam agen ditambah selisih yang diukur kolektor (jam kolektor dikurangi jam agen); kedua waktu disimpan di ekspor hasil mentah (observed_at_ms, agent_time_ms, clock_correction_ms). Hasil dengan waktu yang mustahil (jauh di masa depan atau lebih tua dari yang dapat disimpan antrean agen) tidak dihitung sama sekali."
    }
}

/// Text when every agent's clock could be used.
pub fn none(l: Lang) -> &'static str {
    if l == Lang::En {
        "Every agent's clock was within 10 seconds of the collector's in the period."
    } else {
        "Jam setiap agen dalam periode ini selisihnya kurang dari 10 detik dari jam kolektor."
    }
}

/// Table headers matching [`rows`].
pub fn headers(l: Lang) -> Vec<&'static str> {
    if l == Lang::En {
        vec![
            "OPD",
            "Agent",
            "Results placed",
            "Minutes affected",
            "Offset applied",
            "Results not counted",
        ]
    } else {
        vec![
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
pub fn rows(notes: &[ClockNote], l: Lang) -> Vec<Vec<String>> {
    notes
        .iter()
        .map(|n| {
            vec![
                n.opd.clone(),
                n.agent.clone(),
                n.corrected_results.to_string(),
                n.corrected_minutes.to_string(),
                match n.correction_ms {
                    Some((lo, hi)) if lo == hi => offset_text(lo, l),
                    Some((lo, hi)) => format!("{} … {}", offset_text(lo, l), offset_text(hi, l)),
                    None => "-".into(),
                },
                n.excluded_results.to_string(),
            ]
        })
        .collect()
}

/// CSV block: a blank line, a header row whose first column is `section`,
/// then one row per agent.
pub fn csv(notes: &[ClockNote], s: &mut String) {
    use std::fmt::Write as _;
    let _ = writeln!(
        s,
        "\nsection,opd,agent,corrected_results,corrected_minutes,min_correction_ms,max_correction_ms,excluded_results"
    );
    for n in notes {
        let (lo, hi) = n
            .correction_ms
            .map_or((String::new(), String::new()), |(a, b)| {
                (a.to_string(), b.to_string())
            });
        let _ = writeln!(
            s,
            "agent_clock,{},{},{},{},{lo},{hi},{}",
            super::render::csv_field(&n.opd),
            super::render::csv_field(&n.agent),
            n.corrected_results,
            n.corrected_minutes,
            n.excluded_results
        );
    }
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
        let id = rows(std::slice::from_ref(&n), Lang::Id);
        assert_eq!(id[0][4], "+3 j 0 mnt 0 dtk");
        assert_eq!(id[0][2..4], ["120".to_string(), "2".to_string()]);
        let en = rows(std::slice::from_ref(&n), Lang::En);
        assert_eq!(en[0][4], "+3 h 0 min 0 s");
        let mut s = String::new();
        csv(&[n], &mut s);
        assert!(
            s.ends_with("agent_clock,dishub,dishub-1,120,2,10800250,10800250,1\n"),
            "{s}"
        );
        assert_eq!(offset_text(-61_000, Lang::Id), "-0 j 1 mnt 1 dtk");
    }
}
