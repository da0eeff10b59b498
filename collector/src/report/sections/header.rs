//! The report header: title, agency, number, period, issue date, scope and
//! the data cut-off.

use crate::report::model::{Block, Body, FieldStyle, Media, Para, Section, Sheet, Size, Span};
use crate::report::model::{gap, heading};
use crate::report::text::{data_until, date, period, t};
use crate::report::{Lang, Report};

/// The header section (first sheet: "Ringkasan").
pub fn build(r: &Report) -> Vec<Section> {
    let (l, m) = (r.meta.lang, &r.meta);
    let scope = if m.scope == "all" {
        t(l, "all")
    } else {
        &m.scope
    };
    let bh = if m.business_hours {
        format!(" ({})", t(l, "business"))
    } else {
        String::new()
    };
    let issued = date(m.issued_ms, m.utc_offset_minutes, l);
    let lines = [
        format!("{}: {}", t(l, "number"), m.number),
        format!("{}: {}", t(l, "period"), period(r)),
        format!("{}: {issued}", t(l, "issued")),
        format!("{}: {scope}{bh}", t(l, "scope")),
    ];
    let mut spans = Vec::new();
    for (i, s) in lines.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::Break);
        }
        spans.push(Span::Text(s));
    }
    let cut_off = if l == Lang::En {
        "Data cut-off"
    } else {
        "Batas data"
    };
    let fields = [
        (t(l, "number"), m.number.clone()),
        (t(l, "period"), period(r)),
        (t(l, "issued"), issued),
        (t(l, "scope"), scope.to_string()),
        (cut_off, data_until(m)),
        ("Rule", m.rule_version.clone()),
        (t(l, "public_key"), m.public_key.clone().unwrap_or_default()),
    ];
    let strong = |size, s: String| {
        Block::new(Body::Para(Para {
            size,
            spans: vec![Span::Strong(s)],
        }))
    };
    vec![Section {
        id: "header",
        sheet: Some(Sheet {
            name: "Ringkasan",
            widths: vec![(0, 28.0)],
        }),
        blocks: vec![
            heading(1, None, t(l, "title")),
            strong(Size::Lead, m.agency.clone()),
            gap(4.0, Media::PDF.or(Media::SHEET)),
            Block::new(Body::Para(Para {
                size: Size::Body,
                spans,
            }))
            .only(Media::PRINT),
            Para::text(Size::Body, format!("Zona waktu / time zone: {}", m.zone)).only(Media::PDF),
            strong(Size::Body, data_until(m)).only(Media::PRINT),
            gap(6.0, Media::PDF),
            Block::new(Body::Fields {
                style: FieldStyle::Lines,
                rows: fields
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            })
            .only(Media::SHEET),
            gap(1.0, Media::SHEET),
        ],
    }]
}
