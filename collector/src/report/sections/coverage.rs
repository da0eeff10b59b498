//! Section 1: OPD coverage, connected OPDs against the target.

use crate::report::Report;
use crate::report::model::{Cell, Empty, Media, Para, Section, Size, Unit};
use crate::report::model::{gap, heading, table};
use crate::report::text::{num, t};

/// The coverage section: a sentence on pages, the figures in cells in a
/// spreadsheet.
pub fn build(r: &Report) -> Vec<Section> {
    let (l, c) = (r.meta.lang, &r.coverage);
    let met = if c.met { t(l, "yes") } else { t(l, "no") };
    let sentence = format!(
        "{} / {} OPD {} = {} % ({} {} %: {met})",
        c.connected,
        c.total,
        t(l, "connected"),
        num(c.connected_pct, 1, l),
        t(l, "target"),
        num(c.target_pct, 1, l),
    );
    let cells = vec![
        Cell::count(c.connected as u64, Unit::Count),
        Cell::count(c.total as u64, Unit::Count),
        Cell::num(Some(c.connected_pct), 1, Unit::Percent),
        Cell::num(Some(c.target_pct), 1, Unit::Percent),
        Cell::text(met),
    ];
    vec![Section {
        id: "coverage",
        sheet: None,
        blocks: vec![
            heading(2, Some("1"), t(l, "coverage")),
            Para::text(Size::Body, sentence).only(Media::PRINT),
            table(vec![], vec![cells], &[], Empty::Headers).only(Media::SHEET),
            gap(4.0, Media::PDF.or(Media::SHEET)),
        ],
    }]
}
