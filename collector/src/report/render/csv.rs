//! CSV: the [`Records`] blocks of every section, the first as the main table,
//! each further one after a blank line with its own header row; plain
//! numbers with a decimal point so spreadsheets in any locale read them.
//!
//! Every CSV Pantau writes (reports, raw exports in evidence bundles) goes
//! through [`field`], so the rule is one and can be undone by a reader:
//!
//! - every field is quoted (`"`), a quote inside is doubled; CR and LF stay
//!   inside the quotes, so a value can never start a new row;
//! - a text that a spreadsheet would run as a formula (first character
//!   `=`, `+`, `-`, `@`, TAB or CR; OWASP "CSV injection") gets a `'`
//!   in front, and so does a text that already starts with `'`; plain numbers
//!   (`-12`, `-0.5`) are left as they are.
//!
//! To get the original text back (as `pantau-recompute.py` does): unquote,
//! then drop one leading `'` if there is one. Signed figures stay
//! recomputable because that step is exact.

use std::fmt::Write as _;

use crate::report::model::{Body, Document, Media, Records};

/// First characters a spreadsheet treats as the start of a formula, plus
/// the neutralising quote itself (so the rule can be undone).
const RISKY_START: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\''];

/// A plain decimal number: optional `-`, digits, optional `.digits`.
fn plain_number(s: &str) -> bool {
    let s = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// The text as a spreadsheet may show it: a `'` in front when it could be
/// read as a formula (see the module text).
pub fn neutralise(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some(c) if RISKY_START.contains(&c) && !plain_number(s) => format!("'{s}").into(),
        _ => s.into(),
    }
}

/// One CSV field: neutralised, always quoted, quotes doubled.
pub fn field(s: &str) -> String {
    format!("\"{}\"", neutralise(s).replace('"', "\"\""))
}

/// One CSV line (with its line feed) of `cells`.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut s = cells
        .iter()
        .map(|c| field(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

/// Records as CSV text.
pub fn records_text(blocks: &[Records]) -> String {
    let mut s = String::new();
    for (i, b) in blocks.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        let _ = write!(s, "{}", line(&b.columns));
        for row in &b.rows {
            let _ = write!(s, "{}", line(row));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Undo [`field`] the way a reader of the bundle does.
    fn read_back(f: &str) -> String {
        let inner = f
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .expect("quoted");
        let t = inner.replace("\"\"", "\"");
        t.strip_prefix('\'').map(str::to_string).unwrap_or(t)
    }

    #[test]
    fn formulas_are_neutralised_and_every_field_quoted() {
        assert_eq!(field("=cmd|' /C calc'!A0"), "\"'=cmd|' /C calc'!A0\"");
        assert_eq!(field("+1"), "\"'+1\"");
        assert_eq!(field("-1+2"), "\"'-1+2\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(field("\tx"), "\"'\tx\"");
        assert_eq!(field("\rx"), "\"'\rx\"");
        assert_eq!(field("'quoted"), "\"''quoted\"");
        assert_eq!(field("Dinas Kominfo"), "\"Dinas Kominfo\"");
        assert_eq!(field("a \"b\", c"), "\"a \"\"b\"\", c\"");
        // Numbers stay numbers.
        assert_eq!(field("-12"), "\"-12\"");
        assert_eq!(field("-0.5"), "\"-0.5\"");
        assert_eq!(field("99.5"), "\"99.5\"");
        assert_eq!(field(""), "\"\"");
    }

    #[test]
    fn line_breaks_stay_inside_the_field() {
        let evil = "eth0\r\n=HYPERLINK(\"http://x\")";
        let l = line(&["a", evil]);
        // One row: the only line feed outside quotes is the terminator.
        let mut quoted = false;
        let mut breaks = 0;
        for c in l.chars() {
            match c {
                '"' => quoted = !quoted,
                '\n' | '\r' if !quoted => breaks += 1,
                _ => {}
            }
        }
        assert_eq!(breaks, 1, "{l:?}");
        assert!(l.ends_with('\n'));
    }

    #[test]
    fn the_rule_can_be_undone_exactly() {
        for s in [
            "=1+1", "'=1", "''", "'", "-5", "-x", "@a", "plain", "", "a\"b", "\t\r\n",
        ] {
            assert_eq!(read_back(&field(s)), s, "{s:?}");
        }
    }
}
