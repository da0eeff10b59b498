//! Appendix: the intranet topology drawing, the path changes of the period
//! and (spreadsheets) the nodes with the OPDs whose paths pass them (see
//! [`crate::report::topology`]).

use crate::report::Lang;
use crate::report::Report;
use crate::report::model::{Block, Body, Cell, Empty, Media, Para, Section, Sheet, Size};
use crate::report::model::{gap, heading, labels, table};
use crate::report::text::date_time;
use crate::report::topology::{self, hops_text};

/// The topology appendix (sheet "Jalur").
pub fn build(r: &Report) -> Vec<Section> {
    let (g, m) = (&r.topology, &r.meta);
    let en = m.lang == Lang::En;
    let pick = |id: &'static str, e: &'static str| if en { e } else { id };
    let drawn = !g.nodes.is_empty();
    let changes: Vec<Vec<Cell>> = g
        .changes
        .iter()
        .map(|c| {
            vec![
                Cell::Text(date_time(c.at_ms, m.utc_offset_minutes, &m.zone, m.lang)),
                Cell::Text(format!("{} / {}", c.opd, c.agent)),
                Cell::text(&c.target),
                Cell::Text(hops_text(&c.old_hops)),
                Cell::Text(hops_text(&c.new_hops)),
            ]
        })
        .collect();
    let heads = if en {
        [
            "Changed (first seen)",
            "OPD / agent",
            "Target",
            "Old hops",
            "New hops",
        ]
    } else {
        [
            "Berubah (pertama terlihat)",
            "OPD / agen",
            "Target",
            "Jalur lama",
            "Jalur baru",
        ]
    };
    // Pages show the change table under the drawing when there is one; the
    // HTML page says so when there is no path or no change.
    let any = !changes.is_empty();
    let changes_for = Media::SHEET
        .or(Media::when(any, Media::PDF))
        .or(Media::when(any && drawn, Media::HTML));
    let mut blocks = vec![
        gap(6.0, Media::PDF),
        heading(2, None, topology::title(m.lang)).only(Media::PRINT),
    ];
    if drawn {
        blocks.push(Block::new(Body::Figure(topology::diagram(g, m.lang))).only(Media::PRINT));
        blocks.push(heading(3, None, pick("Perubahan jalur", "Path changes")).only(Media::HTML));
        if !any {
            blocks.push(Para::text(Size::Body, pick("Tidak ada.", "None.")).only(Media::HTML));
        }
    } else {
        blocks.push(
            Para::text(
                Size::Body,
                pick(
                    "Tidak ada data jalur (traceroute) pada periode ini.",
                    "No traceroute paths in this period.",
                ),
            )
            .only(Media::HTML),
        );
    }
    blocks.push(
        table(
            labels(&heads),
            changes,
            &[1.2, 1.0, 0.8, 2.0, 2.0],
            Empty::Headers,
        )
        .only(changes_for),
    );
    let nodes = g
        .nodes
        .iter()
        .map(|n| {
            vec![
                Cell::text(&n.label),
                Cell::Text(format!("{:?}", n.kind).to_lowercase()),
                Cell::text(n.address.as_deref().unwrap_or("-")),
                Cell::Text(n.opds.join(", ")),
            ]
        })
        .collect();
    let node_heads = if en {
        ["Node", "Kind", "Address", "OPDs"]
    } else {
        ["Simpul", "Jenis", "Alamat", "OPD"]
    };
    blocks.push(gap(1.0, Media::SHEET));
    blocks.push(table(labels(&node_heads), nodes, &[], Empty::Headers).only(Media::SHEET));
    vec![Section {
        id: "topology",
        sheet: Some(Sheet {
            name: "Jalur",
            widths: vec![],
        }),
        blocks,
    }]
}
