//! CSV: the [`Records`] blocks of every section, the first as the main table,
//! each further one after a blank line with its own header row; plain
//! numbers with a decimal point so spreadsheets in any locale read them.

use std::fmt::Write as _;

use crate::report::model::{Body, Document, Media, Records};

/// A field, quoted when it holds a separator, a quote or a line break.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', ';']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Records as CSV text.
pub fn records_text(blocks: &[Records]) -> String {
    let mut s = String::new();
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = writeln!(s, "{}", b.columns.join(","));
        for row in &b.rows {
            let row: Vec<String> = row.iter().map(|v| field(v)).collect();
            let _ = writeln!(s, "{}", row.join(","));
        }
    }
    s
}

/// CSV bytes of a document.
pub fn csv(d: &Document) -> Vec<u8> {
    let blocks: Vec<Records> = d
        .sections
        .iter()
        .flat_map(|s| &s.blocks)
        .filter(|b| b.media.has(Media::CSV))
        .filter_map(|b| match &b.body {
            Body::Records(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    records_text(&blocks).into_bytes()
}
