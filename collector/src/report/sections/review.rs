//! Section 6: the draft review (findings and recommendations to edit).

use crate::report::Report;
use crate::report::model::{Block, Body, Media, Section, Sheet};
use crate::report::model::{gap, heading};
use crate::report::text::t;

/// The draft review (sheet "Reviu", which the methodology continues).
pub fn build(r: &Report) -> Vec<Section> {
    let l = r.meta.lang;
    vec![Section {
        id: "review",
        sheet: Some(Sheet {
            name: "Reviu",
            widths: vec![],
        }),
        blocks: vec![
            heading(2, Some("6"), t(l, "review")).only(Media::PRINT),
            heading(3, None, t(l, "findings")),
            Block::new(Body::List(r.findings.clone())),
            gap(1.0, Media::SHEET),
            heading(3, None, t(l, "recommendations")),
            Block::new(Body::List(r.recommendations.clone())),
            gap(4.0, Media::PDF.or(Media::SHEET)),
        ],
    }]
}
