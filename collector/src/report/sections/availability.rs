//! Section 2: availability per group against the SLA, and the group row
//! shared by the per-OPD table.

use crate::report::model::{Cell, Empty, Places, Section, Unit};
use crate::report::model::{heading, table};
use crate::report::text::{group_label, t};
use crate::report::{GroupFigure, Lang, Report};

/// PDF column weights of [`cells`].
pub const WEIGHTS: [f32; 11] = [1.6, 1.2, 0.8, 1.1, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 1.1];

/// One group's figures as cells.
pub fn cells(g: &GroupFigure, l: Lang) -> Vec<Cell> {
    let latency = |v| Cell::Num {
        value: v,
        places: Places::Latency,
        unit: Unit::Millis,
    };
    vec![
        Cell::Text(group_label(&g.group, l)),
        Cell::num(g.availability_pct, 2, Unit::Percent),
        Cell::num(Some(g.sla_pct), 1, Unit::Percent),
        Cell::text(match g.sla_met {
            Some(true) => t(l, "yes"),
            Some(false) => t(l, "no"),
            None => "-",
        }),
        latency(g.p50_ms),
        latency(g.p95_ms),
        latency(g.jitter_ms),
        Cell::num(g.loss_pct, 2, Unit::Percent),
        Cell::count(g.minutes.down, Unit::Minutes),
        Cell::count(g.minutes.unknown, Unit::Minutes),
        Cell::count(g.minutes.maintenance, Unit::Minutes),
    ]
}

/// Headers matching [`cells`].
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

/// One row of figures for a group, as text (the report pages).
pub fn group_cells(g: &GroupFigure, lang: Lang) -> Vec<String> {
    cells(g, lang).iter().map(|c| c.show(lang, true)).collect()
}

/// The availability section.
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    let rows = r.groups.iter().map(|g| cells(g, l)).collect();
    vec![Section {
        id: "availability",
        sheet: None,
        blocks: vec![
            heading(2, Some("2"), t(l, "availability")),
            table(
                group_headers(l).iter().map(|s| s.to_string()).collect(),
                rows,
                &WEIGHTS,
                Empty::Headers,
            ),
        ],
    }]
}
