//! Section 3: every OPD's figures per group (the main CSV table too).

use super::availability::{WEIGHTS, cells, group_headers};
use crate::report::Report;
use crate::report::model::{Cell, Empty, Media, Section, Sheet, Unit};
use crate::report::model::{heading, records, table};
use crate::report::text::{rfc3339, t};

/// The per-OPD section (sheet "Per OPD"; the spreadsheet has the OPD name
/// in a column of its own).
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    let mut print = Vec::new();
    let mut sheet = Vec::new();
    for o in &r.opds {
        let named = Cell::Named {
            id: o.id.clone(),
            name: o.name.clone(),
        };
        let completeness = Cell::num(o.completeness_pct, 1, Unit::Percent);
        for g in &o.groups {
            let mut row = vec![named.clone(), completeness.clone()];
            row.extend(cells(g, l));
            print.push(row);
            let mut row = vec![Cell::text(&o.id), Cell::text(&o.name), completeness.clone()];
            row.extend(cells(g, l));
            sheet.push(row);
        }
        if o.groups.is_empty() {
            let zero = Cell::Shown {
                value: 0.0,
                text: "0".into(),
            };
            let mut row = vec![named, zero.clone()];
            row.extend(std::iter::repeat_n(Cell::Missing, 11));
            print.push(row);
            sheet.push(vec![Cell::text(&o.id), Cell::text(&o.name), zero]);
        }
    }
    let headers = |first: &[&str]| {
        let mut v: Vec<String> = first.iter().map(|s| s.to_string()).collect();
        v.push(t(l, "completeness").into());
        v.extend(group_headers(l).iter().map(|s| s.to_string()));
        v
    };
    let mut weights = vec![1.4, 1.0];
    weights.extend(WEIGHTS);
    vec![Section {
        id: "per_opd",
        sheet: Some(Sheet {
            name: "Per OPD",
            widths: vec![],
        }),
        blocks: vec![
            heading(2, Some("3"), t(l, "per_opd")).only(Media::PRINT),
            table(headers(&["OPD"]), print, &weights, Empty::Headers).only(Media::PRINT),
            table(headers(&["OPD", "Nama"]), sheet, &[], Empty::Headers).only(Media::SHEET),
            records(COLUMNS.to_vec(), csv_rows(r)),
        ],
    }]
}

const COLUMNS: [&str; 19] = [
    "opd",
    "opd_name",
    "group",
    "availability_pct",
    "sla_pct",
    "sla_met",
    "completeness_pct",
    "up_min",
    "degraded_min",
    "down_min",
    "unknown_min",
    "maintenance_min",
    "p50_ms",
    "p95_ms",
    "jitter_ms",
    "loss_pct",
    "results",
    "rule_version",
    "data_until",
];

/// CSV: one row per OPD and group, plain numbers with a decimal point so
/// spreadsheets in any locale read them.
fn csv_rows(r: &Report) -> Vec<Vec<String>> {
    let until = rfc3339(r.meta.data_until_ms, r.meta.utc_offset_minutes);
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
    let mut out = Vec::new();
    for o in &r.opds {
        for g in &o.groups {
            out.push(vec![
                o.id.clone(),
                o.name.clone(),
                g.group.clone(),
                f(g.availability_pct),
                g.sla_pct.to_string(),
                g.sla_met.map_or(String::new(), |m| m.to_string()),
                f(g.completeness_pct),
                g.minutes.up.to_string(),
                g.minutes.degraded.to_string(),
                g.minutes.down.to_string(),
                g.minutes.unknown.to_string(),
                g.minutes.maintenance.to_string(),
                f(g.p50_ms),
                f(g.p95_ms),
                f(g.jitter_ms),
                f(g.loss_pct),
                g.results.to_string(),
                r.meta.rule_version.clone(),
                until.clone(),
            ]);
        }
    }
    out
}
