//! Section 5: availability per group before and after (when asked for).

use crate::report::Report;
use crate::report::model::{Cell, Empty, Media, Section, Unit};
use crate::report::model::{heading, table};
use crate::report::text::{group_label, t};

/// The comparison section (pages only).
pub fn build(r: &Report) -> Vec<Section> {
    let Some(cmp) = &r.comparison else {
        return vec![];
    };
    let l = r.meta.lang;
    let rows = cmp
        .groups
        .iter()
        .map(|(g, b, a)| {
            vec![
                Cell::Text(group_label(g, l)),
                Cell::num(*b, 2, Unit::Percent),
                Cell::num(*a, 2, Unit::Percent),
            ]
        })
        .collect();
    let columns = vec![
        t(l, "group").to_string(),
        format!(
            "{} ({} – {}) %",
            t(l, "before"),
            cmp.before_from,
            cmp.before_to
        ),
        format!("{} %", t(l, "after")),
    ];
    vec![Section {
        id: "comparison",
        sheet: None,
        blocks: vec![
            heading(2, Some("5"), t(l, "comparison")).only(Media::PRINT),
            table(columns, rows, &[1.0, 1.5, 1.0], Empty::Headers).only(Media::PRINT),
        ],
    }]
}
