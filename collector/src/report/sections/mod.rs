//! Report sections: each turns the assembled [`Report`] into its part of the
//! neutral [`model`](super::model) (in reading order), one file per section.
//!
//! Adding a section: a file here with a `build` function, one line in
//! [`SECTIONS`], and the data it needs on [`Report`] (loaded through the
//! store).

pub mod availability;
pub mod capacity;
pub mod clock;
pub mod comparison;
pub mod coverage;
pub mod header;
pub mod incidents;
pub mod maintenance;
pub mod methodology;
pub mod per_opd;
pub mod review;
pub mod topology;
pub mod validity;

use super::Report;
use super::model::{Document, Letterhead, Section};
use super::text::t;

/// A section builder: none, one or several sections of the model.
pub type Build = fn(&Report) -> Vec<Section>;

/// Every section, in reading order.
pub const SECTIONS: &[Build] = &[
    header::build,
    coverage::build,
    availability::build,
    per_opd::build,
    capacity::build,
    incidents::build,
    maintenance::build,
    clock::build,
    comparison::build,
    review::build,
    methodology::build,
    topology::build,
    validity::build,
];

/// The model of a whole report.
pub fn document(r: &Report) -> Document {
    let (l, m) = (r.meta.lang, &r.meta);
    Document {
        lang: l,
        title: format!("{} {}", t(l, "title"), m.number),
        footer: format!("{} — {} {}", m.agency, t(l, "number"), m.number),
        sections: SECTIONS.iter().flat_map(|build| build(r)).collect(),
        letterhead: Some(Letterhead {
            agency: m.agency.clone(),
            ..m.letterhead.clone()
        }),
        issued: (m.issued_ms, m.utc_offset_minutes),
    }
}
