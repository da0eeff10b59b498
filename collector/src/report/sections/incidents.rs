//! Section 4: incidents (gangguan), open ones with their duration so far.

use crate::report::model::{Cell, Empty, Media, Para, Section, Sheet, Size};
use crate::report::model::{heading, records, table};
use crate::report::text::{date_time, group_label, num, rfc3339, t};
use crate::report::{Lang, Report};

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

fn cells(r: &Report) -> Vec<Vec<Cell>> {
    let (l, off, z) = (r.meta.lang, r.meta.utc_offset_minutes, r.meta.zone.as_str());
    r.incidents
        .iter()
        .map(|i| {
            vec![
                Cell::text(&i.opd),
                Cell::Text(group_label(&i.group, l)),
                Cell::Text(date_time(i.start_ms, off, z, l)),
                Cell::Text(if i.open {
                    t(l, "ongoing").to_string()
                } else {
                    date_time(i.end_ms, off, z, l)
                }),
                // Duration as a number in spreadsheets (minutes so far when ongoing).
                Cell::Shown {
                    value: i.minutes as f64,
                    text: if i.open {
                        format!("{} ({})", num(i.minutes as f64, 0, l), t(l, "so_far"))
                    } else {
                        num(i.minutes as f64, 0, l)
                    },
                },
                Cell::text(i.cause.label(l == Lang::En)),
                Cell::Text(i.affected.join(", ")),
                Cell::Text(
                    [i.note.clone(), i.ticket.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(" / "),
                ),
            ]
        })
        .collect()
}

/// Rows of the incident table, as text (the report pages).
pub fn incident_rows(r: &Report) -> Vec<Vec<String>> {
    cells(r)
        .iter()
        .map(|row| row.iter().map(|c| c.show(r.meta.lang, true)).collect())
        .collect()
}

/// CSV block of incidents: an open one has no end (`open` true, minutes so
/// far, up to the data cut-off).
fn csv_rows(r: &Report) -> Vec<Vec<String>> {
    let t = |ms| rfc3339(ms, r.meta.utc_offset_minutes);
    r.incidents
        .iter()
        .map(|i| {
            vec![
                "incident".into(),
                i.opd.clone(),
                i.group.clone(),
                t(i.start_ms),
                if i.open { String::new() } else { t(i.end_ms) },
                i.minutes.to_string(),
                i.open.to_string(),
                serde_json::to_value(i.cause)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                i.affected.join(" "),
            ]
        })
        .collect()
}

/// The incident section (sheet "Gangguan"); pages say there were none.
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    let columns = incident_headers(l).iter().map(|s| s.to_string()).collect();
    let weights = [0.9, 0.9, 1.5, 1.5, 0.9, 2.4, 1.3, 1.3];
    let mut blocks = vec![heading(2, Some("4"), t(l, "incidents")).only(Media::PRINT)];
    if r.incidents.is_empty() {
        blocks.push(Para::text(Size::Body, t(l, "none")).only(Media::PRINT));
        blocks.push(table(columns, vec![], &weights, Empty::Headers).only(Media::SHEET));
    } else {
        blocks.push(table(columns, cells(r), &weights, Empty::Headers));
    }
    blocks.push(records(
        vec![
            "section", "opd", "group", "start", "end", "minutes", "open", "cause", "affected",
        ],
        csv_rows(r),
    ));
    vec![Section {
        id: "incidents",
        sheet: Some(Sheet {
            name: "Gangguan",
            widths: vec![],
        }),
        blocks,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::incident::{Cause, Incident};
    use crate::report::{Coverage, Meta};

    fn meta(lang: Lang) -> Meta {
        crate::report::test_meta(lang, vec![])
    }

    #[test]
    fn an_ongoing_incident_has_no_end_and_a_duration_so_far() {
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
            meta: meta(lang),
            coverage: Coverage {
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
        let csv = crate::report::render_as(&report(Lang::Id), crate::report::Format::Csv);
        let csv = String::from_utf8(csv).unwrap();
        let lines: Vec<&str> = csv
            .lines()
            .filter(|l| l.starts_with("\"incident\","))
            .collect();
        // Every field quoted (see render::csv).
        assert_eq!(
            lines,
            [
                r#""incident","dinkes","datacenter","2026-11-17T08:00:00+08:00","2026-11-17T08:20:00+08:00","20","false","intranet_link","pusdat""#,
                r#""incident","dinkes","datacenter","2026-11-17T08:00:00+08:00","","54","true","intranet_link","pusdat""#,
            ]
        );
    }
}
