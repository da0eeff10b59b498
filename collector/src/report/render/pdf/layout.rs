//! Page layout of the PDF: the model's blocks as positioned [`Op`]s, in
//! points with the origin at the top left of the page (y grows downwards,
//! text `y` is the baseline).
//!
//! Rules that keep text readable: a heading is kept with the start of what
//! follows it (it moves to the next page rather than ending one); a heading
//! with nothing under it is left out and section numbers are renumbered
//! consecutively over the headings that remain; table columns are as wide
//! as their content asks (a header wraps only between words, a number never
//! wraps, and a table too wide for the page is set in a smaller size);
//! numbers are right-aligned and a number still wider than its cell is set
//! smaller until it fits.

use std::collections::HashMap;

use super::{FONT, PAGE_H, PAGE_W, png_size};
use crate::report::Lang;
use crate::report::model::{
    Block, Body, Cell, Diagram, Document, Empty, FieldStyle, Letterhead, Media, Size, Span, Table,
    Tone,
};

/// Left and right margin.
pub const MARGIN_X: f32 = 45.0;
/// Top margin.
pub const MARGIN_TOP: f32 = 45.0;
/// Bottom margin (the footer sits below it).
pub const MARGIN_BOTTOM: f32 = 55.0;
/// Footer baseline, from the top.
const FOOTER_Y: f32 = PAGE_H - 32.0;
/// Cell padding, left and right.
const PAD_X: f32 = 2.5;
/// Cell padding, top and bottom.
const PAD_Y: f32 = 2.0;
/// Table text sizes tried, largest first.
const TABLE_SIZES: [f32; 5] = [7.0, 6.5, 6.0, 5.5, 5.0];
/// Smallest size a number is shrunk to.
const MIN_NUM_SIZE: f32 = 3.5;

/// One drawing operation on a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Text on one line; `y` is the baseline.
    Text {
        /// Left edge.
        x: f32,
        /// Baseline.
        y: f32,
        /// Size, points.
        size: f32,
        /// Text (characters the font lacks are already replaced).
        text: String,
        /// Colour.
        rgb: (u8, u8, u8),
    },
    /// A rectangle, filled and/or stroked (black, this width).
    Rect {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
        /// Fill colour.
        fill: Option<(u8, u8, u8)>,
        /// Stroke width.
        stroke: Option<f32>,
    },
    /// A straight line.
    Line {
        /// Start.
        from: (f32, f32),
        /// End.
        to: (f32, f32),
        /// Width.
        width: f32,
        /// Colour.
        rgb: (u8, u8, u8),
    },
    /// The letterhead logo.
    Logo {
        /// Left.
        x: f32,
        /// Top.
        y: f32,
        /// Width.
        w: f32,
        /// Height.
        h: f32,
    },
}

const BLACK: (u8, u8, u8) = (0, 0, 0);

/// Advance widths of the embedded font.
pub struct Metrics {
    face: ttf_parser::Face<'static>,
    upem: f32,
    cache: std::cell::RefCell<HashMap<char, f32>>,
}

impl Metrics {
    /// Metrics of DejaVu Sans.
    pub fn new() -> Metrics {
        let face = ttf_parser::Face::parse(FONT, 0).expect("the embedded font parses");
        let upem = face.units_per_em() as f32;
        Metrics {
            face,
            upem,
            cache: Default::default(),
        }
    }

    /// `s` with every character the font has no glyph for as `?` (a PDF/A
    /// file may not show the font's empty glyph).
    pub fn clean(&self, s: &str) -> String {
        s.chars()
            .map(|c| {
                if c == ' ' || self.face.glyph_index(c).is_some() {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    }

    fn advance(&self, c: char) -> f32 {
        *self.cache.borrow_mut().entry(c).or_insert_with(|| {
            self.face
                .glyph_index(c)
                .and_then(|g| self.face.glyph_hor_advance(g))
                .map_or(600.0, f32::from)
                / self.upem
        })
    }

    /// Width of `s` at `size`.
    pub fn width(&self, s: &str, size: f32) -> f32 {
        s.chars().map(|c| self.advance(c)).sum::<f32>() * size
    }

    /// Width of the widest word of `s`.
    fn widest_word(&self, s: &str, size: f32) -> f32 {
        s.split(' ')
            .map(|w| self.width(w, size))
            .fold(0.0, f32::max)
    }

    /// Split `s` into lines no wider than `w`, between words; a word wider
    /// than `w` is cut between characters when `cut` (else it stays whole).
    pub fn wrap(&self, s: &str, size: f32, w: f32, cut: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mut cur = String::new();
        for word in s.split(' ') {
            let cand = if cur.is_empty() {
                word.to_string()
            } else {
                format!("{cur} {word}")
            };
            if self.width(&cand, size) <= w || cur.is_empty() {
                cur = cand;
            } else {
                lines.push(std::mem::take(&mut cur));
                cur = word.to_string();
            }
            while cut && self.width(&cur, size) > w && cur.chars().count() > 1 {
                let mut head = String::new();
                for ch in cur.chars() {
                    if !head.is_empty() && self.width(&format!("{head}{ch}"), size) > w {
                        break;
                    }
                    head.push(ch);
                }
                cur = cur[head.len()..].to_string();
                lines.push(head);
            }
        }
        if !cur.is_empty() || lines.is_empty() {
            lines.push(cur);
        }
        lines
    }
}

/// Baseline below the top of a line box of `size` (DejaVu Sans ascends
/// 0.93 em).
fn baseline(size: f32) -> f32 {
    size * 1.03
}

/// Line box height of running text.
fn leading(size: f32) -> f32 {
    size * 1.4
}

/// Line box height inside table cells.
fn cell_leading(size: f32) -> f32 {
    size * 1.3
}

struct Pager {
    m: Metrics,
    pages: Vec<Vec<Op>>,
    /// Top of the free space on the current page.
    y: f32,
    lang: Lang,
}

impl Pager {
    fn bottom() -> f32 {
        PAGE_H - MARGIN_BOTTOM
    }

    fn width() -> f32 {
        PAGE_W - 2.0 * MARGIN_X
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN_TOP;
    }

    /// Start a new page unless `h` points fit on this one.
    fn need(&mut self, h: f32) {
        if self.pages.is_empty() || (self.y + h > Self::bottom() && self.y > MARGIN_TOP) {
            self.new_page();
        }
    }

    fn op(&mut self, op: Op) {
        if self.pages.is_empty() {
            self.new_page();
        }
        self.pages.last_mut().expect("a page").push(op);
    }

    fn text(&mut self, x: f32, y: f32, size: f32, s: &str) {
        if s.trim().is_empty() {
            return;
        }
        let text = self.m.clean(s);
        self.op(Op::Text {
            x,
            y,
            size,
            text,
            rgb: BLACK,
        });
    }

    /// Wrapped text at `x`, `w` wide.
    fn para_at(&mut self, x: f32, w: f32, size: f32, s: &str) {
        for l in self.m.wrap(s, size, w, true) {
            self.need(leading(size));
            let y = self.y + baseline(size);
            self.text(x, y, size, &l);
            self.y += leading(size);
        }
    }

    fn para(&mut self, size: f32, s: &str) {
        self.para_at(MARGIN_X, Self::width(), size, s);
    }
}

/// Lay the document out on pages.
pub fn layout(doc: &Document) -> Vec<Vec<Op>> {
    let mut p = Pager {
        m: Metrics::new(),
        pages: Vec::new(),
        y: MARGIN_TOP,
        lang: doc.lang,
    };
    p.new_page();
    if let Some(l) = &doc.letterhead {
        p.letterhead(l);
    }
    let blocks: Vec<&Block> = doc
        .sections
        .iter()
        .flat_map(|s| s.blocks.iter())
        .filter(|b| b.media.has(Media::PDF))
        .collect();
    let numbers = renumber(&blocks);
    p.blocks(&blocks, &numbers);
    let total = p.pages.len();
    for (i, page) in p.pages.iter_mut().enumerate() {
        let f = p.m.clean(&format!("{} — {}/{total}", doc.footer, i + 1));
        // A footer longer than the line is set smaller.
        let size = (7.5f32).min(7.5 * Pager::width() / p.m.width(&f, 7.5).max(1.0));
        page.push(Op::Text {
            x: MARGIN_X,
            y: FOOTER_Y,
            size,
            text: f,
            rgb: (85, 85, 85),
        });
    }
    p.pages
}

/// Whether a block shows anything on a page.
fn has_content(b: &Body) -> bool {
    match b {
        Body::Heading { .. } | Body::Gap(_) | Body::Records(_) => false,
        Body::Para(p) => p.spans.iter().any(|s| match s {
            Span::Text(t) | Span::Strong(t) | Span::Code(t) => !t.trim().is_empty(),
            Span::Break => false,
        }),
        Body::Table(_) => true,
        Body::List(items) => !items.is_empty(),
        Body::Fields { rows, .. } => !rows.is_empty(),
        Body::Figure(g) => !g.marks.is_empty(),
        Body::Frame { blocks, .. } => blocks
            .iter()
            .filter(|b| b.media.has(Media::PDF))
            .any(|b| has_content(&b.body)),
        Body::Signature(lines) => lines.iter().any(|l| !l.trim().is_empty()),
    }
}

/// Whether the heading at `i` has content before the next heading of its
/// level or higher.
fn heading_has_content(blocks: &[&Block], i: usize) -> bool {
    let Body::Heading { level, .. } = &blocks[i].body else {
        return true;
    };
    for b in &blocks[i + 1..] {
        match opening_level(&b.body) {
            Some(l) if l <= *level => return false,
            _ if has_content(&b.body) => return true,
            _ => {}
        }
    }
    false
}

/// The level of the heading a block opens with (a frame that starts with
/// a heading opens a section of its own).
fn opening_level(b: &Body) -> Option<u8> {
    match b {
        Body::Heading { level, .. } => Some(*level),
        Body::Frame { blocks, .. } => blocks
            .iter()
            .filter(|b| b.media.has(Media::PDF))
            .find(|b| !matches!(b.body, Body::Gap(_)))
            .and_then(|b| opening_level(&b.body)),
        _ => None,
    }
}

/// Consecutive section numbers for the headings that are shown: "4a" keeps
/// its letter after its new number. Keyed by block index.
fn renumber(blocks: &[&Block]) -> HashMap<usize, String> {
    let mut map: HashMap<String, u32> = HashMap::new();
    let mut next = 0;
    let mut out = HashMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let Body::Heading {
            number: Some(n), ..
        } = &b.body
        else {
            continue;
        };
        if !heading_has_content(blocks, i) {
            continue;
        }
        let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
        let rest = &n[digits.len()..];
        if digits.is_empty() {
            out.insert(i, n.clone());
            continue;
        }
        let major = *map.entry(digits).or_insert_with(|| {
            next += 1;
            next
        });
        out.insert(i, format!("{major}{rest}"));
    }
    out
}

fn heading_size(level: u8) -> f32 {
    match level {
        1 => 15.0,
        2 => 11.0,
        _ => 9.5,
    }
}

fn para_size(s: Size) -> f32 {
    match s {
        Size::Lead => 11.0,
        Size::Body => 9.0,
        Size::Small => 8.5,
        Size::Note => 8.0,
    }
}

impl Pager {
    /// The agency, its unit and the logo at the top of page 1, above a rule.
    fn letterhead(&mut self, l: &Letterhead) {
        let top = self.y;
        let logo_h = 52.0;
        let mut left = MARGIN_X;
        if let Some((w, h)) = l.logo.as_ref().and_then(png_size) {
            let lw = (logo_h * w as f32 / h as f32).min(120.0);
            let lh = lw * h as f32 / w as f32;
            self.op(Op::Logo {
                x: MARGIN_X,
                y: top + (logo_h - lh) / 2.0,
                w: lw,
                h: lh,
            });
            left += lw + 10.0;
        }
        let width = PAGE_W - MARGIN_X - left;
        let mut lines: Vec<(f32, String)> = vec![(14.0, l.agency.clone())];
        if let Some(u) = &l.unit {
            lines.push((11.5, u.clone()));
        }
        let mut wrapped = Vec::new();
        for (size, s) in lines {
            for w in self.m.wrap(&s, size, width, true) {
                wrapped.push((size, w));
            }
        }
        let text_h: f32 = wrapped.iter().map(|(s, _)| leading(*s)).sum();
        let block_h = if l.logo.is_some() {
            text_h.max(logo_h)
        } else {
            text_h
        };
        let mut y = top + (block_h - text_h) / 2.0;
        for (size, s) in wrapped {
            let x = left + (width - self.m.width(&s, size)) / 2.0;
            self.text(x, y + baseline(size), size, &s);
            y += leading(size);
        }
        let rule = top + block_h + 4.0;
        for (dy, w) in [(0.0, 1.6), (2.6, 0.5)] {
            self.op(Op::Line {
                from: (MARGIN_X, rule + dy),
                to: (PAGE_W - MARGIN_X, rule + dy),
                width: w,
                rgb: BLACK,
            });
        }
        self.y = rule + 14.0;
    }

    fn blocks(&mut self, list: &[&Block], numbers: &HashMap<usize, String>) {
        for (i, b) in list.iter().enumerate() {
            if let Body::Heading { level, text, .. } = &b.body {
                if !heading_has_content(list, i) {
                    continue;
                }
                let size = heading_size(*level);
                let text = match numbers.get(&i) {
                    Some(n) => format!("{n}. {text}"),
                    None => text.clone(),
                };
                let lines = self.m.wrap(&text, size, Self::width(), true).len() as f32;
                // Keep the heading with the start of the next block.
                let next = list[i + 1..]
                    .iter()
                    .find(|b| !matches!(b.body, Body::Gap(_)))
                    .map_or(0.0, |b| self.first_height(&b.body));
                self.need(lines * leading(size) + 4.0 + next);
                self.y += if *level <= 2 { 4.0 } else { 2.0 };
                self.para(size, &text);
                self.y += 2.0;
            } else {
                self.block(&b.body, i, list);
            }
        }
    }

    /// Room the first unbreakable part of a block needs.
    fn first_height(&self, body: &Body) -> f32 {
        match body {
            Body::Para(p) => 2.0 * leading(para_size(p.size)),
            Body::Table(t) => {
                let (heads, rows, _) = self.table_text(t);
                match self.columns(&heads, &rows) {
                    Some(cols) => {
                        let mut h = self.row_height(&heads, &cols, true);
                        if let Some(r) = rows.first() {
                            let cells: Vec<String> = r.iter().map(|c| c.0.clone()).collect();
                            h += self.row_height(&cells, &cols, false);
                        }
                        h
                    }
                    None => 3.0 * leading(9.0),
                }
            }
            Body::Frame { keep, .. } => *keep,
            Body::Figure(_) => 120.0,
            _ => 2.0 * leading(9.0),
        }
    }

    fn block(&mut self, body: &Body, i: usize, list: &[&Block]) {
        match body {
            Body::Heading { .. } => {}
            Body::Para(p) => {
                let size = para_size(p.size);
                // Each line break starts a paragraph of its own.
                let mut line = String::new();
                for s in &p.spans {
                    match s {
                        Span::Text(t) | Span::Strong(t) | Span::Code(t) => line.push_str(t),
                        Span::Break => self.para(size, &std::mem::take(&mut line)),
                    }
                }
                if !line.is_empty() {
                    self.para(size, &line);
                }
            }
            Body::Table(t) => self.model_table(t),
            Body::List(items) => {
                for x in items {
                    self.para_at(MARGIN_X, 10.0, 8.5, "•");
                    self.y -= leading(8.5);
                    self.para_at(MARGIN_X + 10.0, Self::width() - 10.0, 8.5, x);
                }
            }
            Body::Fields {
                style: FieldStyle::Lines,
                rows,
            } => {
                for (k, v) in rows {
                    self.para(9.0, &format!("{k}: {v}"));
                }
            }
            Body::Fields {
                style: FieldStyle::Boxed,
                rows,
            } => {
                // The first pair heads the box.
                let rows: Vec<Vec<(String, bool)>> = rows
                    .iter()
                    .map(|(k, v)| vec![(k.clone(), false), (v.clone(), false)])
                    .collect();
                let head: Vec<String> = rows
                    .first()
                    .map(|r| r.iter().map(|c| c.0.clone()).collect())
                    .unwrap_or_default();
                self.table(&head, rows.get(1..).unwrap_or_default());
            }
            Body::Figure(g) => self.figure(g),
            Body::Frame { keep, blocks, .. } => {
                self.need(*keep);
                let inner: Vec<&Block> =
                    blocks.iter().filter(|b| b.media.has(Media::PDF)).collect();
                let numbers = renumber(&inner);
                self.blocks(&inner, &numbers);
            }
            Body::Signature(lines) => self.signature(lines),
            Body::Gap(points) => {
                // No gap at the top of a page or before nothing.
                if self.y > MARGIN_TOP && i + 1 < list.len() {
                    self.y += points;
                }
            }
            Body::Records(_) => {}
        }
    }

    /// Sign-off lines on the right half, kept together.
    fn signature(&mut self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        let size = 9.0;
        let x = PAGE_W * 0.55;
        let w = PAGE_W - MARGIN_X - x;
        let h: f32 = lines
            .iter()
            .map(|l| self.m.wrap(l, size, w, true).len().max(1) as f32 * leading(size))
            .sum();
        self.need(h + 6.0);
        self.y += 6.0;
        for l in lines {
            if l.is_empty() {
                self.y += leading(size);
            } else {
                self.para_at(x, w, size, l);
            }
        }
    }

    /// A model table's header and cells as text; `true` marks a number.
    fn table_text(&self, t: &Table) -> (Vec<String>, Vec<TextRow>, Option<String>) {
        let heads = t.columns.clone();
        let rows: Vec<TextRow> = t
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| {
                        let num = matches!(c, Cell::Num { .. } | Cell::Shown { .. });
                        (c.show(self.lang, false), num)
                    })
                    .collect()
            })
            .collect();
        if rows.is_empty() {
            return match &t.empty {
                Empty::Headers => (heads, rows, None),
                // A single cell across the table.
                Empty::Row(none) => (heads, vec![vec![(none.clone(), false)]], None),
                Empty::Text(none) => (heads, rows, Some(none.clone())),
            };
        }
        (heads, rows, None)
    }

    fn model_table(&mut self, t: &Table) {
        let (heads, rows, text) = self.table_text(t);
        match text {
            Some(none) => self.para(9.0, &none),
            None => self.table(&heads, &rows),
        }
    }
}

/// A table row as text: (cell text, whether it is a number).
type TextRow = Vec<(String, bool)>;

/// Column sizes of a table.
struct Columns {
    size: f32,
    widths: Vec<f32>,
    numeric: Vec<bool>,
}

impl Pager {
    /// Column widths from content: each column at least as wide as its
    /// widest header word and its widest number, extra room shared by how
    /// much more each column would use; a smaller size when the minimum
    /// does not fit.
    fn columns(&self, heads: &[String], rows: &[Vec<(String, bool)>]) -> Option<Columns> {
        let n = heads
            .len()
            .max(rows.iter().map(Vec::len).max().unwrap_or(0));
        if n == 0 {
            return None;
        }
        let total = Self::width();
        let numeric: Vec<bool> = (0..n)
            .map(|c| {
                let mut cells = rows.iter().filter_map(|r| r.get(c));
                let mut any = false;
                let all = cells.all(|(s, num)| {
                    any |= *num;
                    *num || s == "-" || s.is_empty()
                });
                any && all
            })
            .collect();
        let mut size = TABLE_SIZES[0];
        let (mut min, mut max) = (vec![0.0; n], vec![0.0; n]);
        for s in TABLE_SIZES {
            size = s;
            for c in 0..n {
                let head = heads.get(c).map_or("", String::as_str);
                let mut lo = self.m.widest_word(head, s);
                let mut hi = self.m.width(head, s);
                for r in rows {
                    let Some((text, num)) = r.get(c) else {
                        continue;
                    };
                    let full = self.m.width(text, s);
                    lo = lo.max(if *num || numeric[c] {
                        full
                    } else {
                        self.m.widest_word(text, s).min(total * 0.3)
                    });
                    hi = hi.max(full);
                }
                min[c] = lo + 2.0 * PAD_X;
                max[c] = hi.max(lo) + 2.0 * PAD_X;
            }
            if min.iter().sum::<f32>() <= total {
                break;
            }
        }
        let (smin, smax): (f32, f32) = (min.iter().sum(), max.iter().sum());
        let widths = if smin > total {
            min.iter().map(|w| w * total / smin).collect()
        } else if smax <= total {
            // Every column on one line: share the rest by width.
            max.iter().map(|w| w + (total - smax) * w / smax).collect()
        } else {
            let k = (total - smin) / (smax - smin);
            min.iter()
                .zip(&max)
                .map(|(lo, hi)| lo + (hi - lo) * k)
                .collect()
        };
        Some(Columns {
            size,
            widths,
            numeric,
        })
    }

    fn cell_lines(&self, text: &str, w: f32, size: f32, head: bool) -> Vec<String> {
        self.m.wrap(text, size, w - 2.0 * PAD_X, !head)
    }

    fn row_height(&self, cells: &[String], cols: &Columns, head: bool) -> f32 {
        let lines = cells
            .iter()
            .zip(&cols.widths)
            .zip(&cols.numeric)
            .map(|((c, w), num)| {
                if *num && !head {
                    1
                } else {
                    self.cell_lines(c, *w, cols.size, head).len()
                }
            })
            .max()
            .unwrap_or(1)
            .max(1);
        lines as f32 * cell_leading(cols.size) + 2.0 * PAD_Y
    }

    fn table(&mut self, heads: &[String], rows: &[Vec<(String, bool)>]) {
        // A lone cell under several headers spans the table.
        let span = (heads.len() > 1 && rows.len() == 1 && rows[0].len() == 1)
            .then(|| rows[0][0].0.clone());
        let rows = if span.is_some() { &[][..] } else { rows };
        let Some(cols) = self.columns(heads, rows) else {
            return;
        };
        let cells = |r: &Vec<(String, bool)>| r.iter().map(|c| c.0.clone()).collect::<Vec<_>>();
        // The header row comes back on every page the table continues on.
        let head_h = if heads.is_empty() {
            0.0
        } else {
            self.row_height(heads, &cols, true)
        };
        if !heads.is_empty() {
            let first = rows
                .first()
                .map_or(0.0, |r| self.row_height(&cells(r), &cols, false))
                .max(2.0 * cell_leading(cols.size) + 2.0 * PAD_Y);
            self.need(head_h + first);
            self.row(heads, &cols, true);
        }
        for r in rows {
            let c = cells(r);
            let h = self.row_height(&c, &cols, false);
            if self.y + h > Self::bottom() {
                self.new_page();
                if !heads.is_empty() {
                    self.row(heads, &cols, true);
                }
            }
            self.row(&c, &cols, false);
        }
        if let Some(text) = span {
            let wide = Columns {
                size: cols.size,
                widths: vec![cols.widths.iter().sum()],
                numeric: vec![false],
            };
            if self.y + self.row_height(std::slice::from_ref(&text), &wide, false) > Self::bottom()
            {
                self.new_page();
            }
            self.row(&[text], &wide, false);
        }
        self.y += 6.0;
    }

    fn row(&mut self, cells: &[String], cols: &Columns, head: bool) {
        let h = self.row_height(cells, cols, head);
        let top = self.y;
        let mut x = MARGIN_X;
        for (c, w) in cols.widths.iter().enumerate() {
            self.op(Op::Rect {
                x,
                y: top,
                w: *w,
                h,
                fill: head.then_some((230, 230, 230)),
                stroke: Some(0.4),
            });
            let text = cells.get(c).map_or("", String::as_str);
            let size = cols.size;
            if cols.numeric[c] && !head {
                // Right-aligned on one line; smaller when it would overflow.
                let room = w - 2.0 * PAD_X;
                let tw = self.m.width(text, size);
                let s = if tw > room {
                    (size * room / tw).max(MIN_NUM_SIZE)
                } else {
                    size
                };
                let tw = self.m.width(text, s);
                self.text(
                    x + w - PAD_X - tw,
                    top + PAD_Y + baseline(size) - (size - s) * 0.5,
                    s,
                    text,
                );
            } else {
                for (i, l) in self.cell_lines(text, *w, size, head).iter().enumerate() {
                    let y = top + PAD_Y + i as f32 * cell_leading(size) + baseline(size) - 0.5;
                    self.text(x + PAD_X, y, size, l);
                }
            }
            x += w;
        }
        self.y = top + h;
    }

    /// A drawing, as wide as the text and at most 600 points high.
    fn figure(&mut self, g: &Diagram) {
        if g.marks.is_empty() {
            return;
        }
        let width = Self::width();
        let k = (width / g.width as f32)
            .min(600.0 / g.height as f32)
            .min(1.0);
        let font = (7.0 * k).max(4.0);
        let h = g.height as f32 * k + font * 2.0;
        self.need(h + 4.0);
        let top = self.y + 4.0;
        let p = |x: f64, y: f64| (MARGIN_X + x as f32 * k, top + y as f32 * k);
        for (a, b) in &g.lines {
            let (Some(a), Some(b)) = (g.marks.get(*a), g.marks.get(*b)) else {
                continue;
            };
            self.op(Op::Line {
                from: p(a.x, a.y),
                to: p(b.x, b.y),
                width: 0.5,
                rgb: (153, 153, 153),
            });
        }
        for n in &g.marks {
            let (nx, ny) = p(n.x, n.y);
            let tone = match n.tone {
                Tone::Primary => (31, 94, 168),
                Tone::Neutral => (84, 84, 84),
                Tone::Muted => (171, 171, 171),
                Tone::Positive => (23, 107, 43),
            };
            let s = 8.0 * k;
            self.op(Op::Rect {
                x: nx - s / 2.0,
                y: ny - s / 2.0,
                w: s,
                h: s,
                fill: Some(tone),
                stroke: None,
            });
            let label = self.m.clean(&n.label);
            let tw = self.m.width(&label, font);
            let x = (nx - tw / 2.0).clamp(MARGIN_X, PAGE_W - MARGIN_X - tw);
            self.text(x, ny + s / 2.0 + baseline(font), font, &label);
        }
        self.y = top + h;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_between_words_and_cut_long_words() {
        let m = Metrics::new();
        let lines = m.wrap(
            "ketersediaan jaringan intra pemerintah daerah",
            10.0,
            80.0,
            true,
        );
        assert!(lines.len() > 1, "{lines:?}");
        for l in &lines {
            assert!(m.width(l, 10.0) <= 80.0, "{l}");
        }
        // Headers never break inside a word.
        let lines = m.wrap("Ketersediaan Jaringan", 7.0, 10.0, false);
        assert_eq!(lines, vec!["Ketersediaan", "Jaringan"]);
        assert_eq!(m.clean("≥ µ – 漢"), "≥ µ – ?");
    }

    /// Every text drawn inside a table row lies inside the cell it starts
    /// in, however wide the table: numbers shrink, text wraps.
    #[test]
    fn table_text_stays_inside_its_cell() {
        use crate::report::model::{Section, Unit, table};
        let m = Metrics::new();
        let cols: Vec<String> = (0..14)
            .map(|i| format!("Kolom panjang sekali nomor {i}"))
            .collect();
        let row = |k: f64| -> Vec<Cell> {
            (0..14)
                .map(|i| match i {
                    0 => Cell::text("dinkes — Dinas Kesehatan Provinsi Sulawesi Barat"),
                    _ => Cell::num(Some(k * 1_234_567.891 * i as f64), 2, Unit::Count),
                })
                .collect()
        };
        let doc = Document {
            lang: Lang::Id,
            title: "t".into(),
            footer: "f".into(),
            sections: vec![Section {
                id: "x",
                sheet: None,
                blocks: (0..30)
                    .map(|k| table(cols.clone(), vec![row(k as f64)], &[], Empty::Headers))
                    .collect(),
            }],
            letterhead: None,
            issued: (0, 0),
        };
        let pages = layout(&doc);
        assert!(pages.len() > 1);
        let mut texts = 0;
        for ops in &pages {
            let cells: Vec<(f32, f32, f32, f32)> = ops
                .iter()
                .filter_map(|o| match o {
                    Op::Rect {
                        x,
                        y,
                        w,
                        h,
                        stroke: Some(_),
                        ..
                    } => Some((*x, *y, *w, *h)),
                    _ => None,
                })
                .collect();
            for o in ops {
                let Op::Text {
                    x, y, size, text, ..
                } = o
                else {
                    continue;
                };
                let Some(c) = cells
                    .iter()
                    .find(|c| *y > c.1 && *y < c.1 + c.3 && *x >= c.0 && *x < c.0 + c.2)
                else {
                    continue;
                };
                texts += 1;
                let right = x + m.width(text, *size);
                assert!(
                    right <= c.0 + c.2 + 0.01,
                    "{text:?} at {x} leaves its cell {c:?}"
                );
                assert!(
                    y - size * 0.93 >= c.1 - 0.01 && y + size * 0.24 <= c.1 + c.3 + 0.01,
                    "{text:?}"
                );
                assert!(
                    x + 0.01 >= MARGIN_X && right <= PAGE_W - MARGIN_X + 0.01,
                    "{text:?}"
                );
            }
        }
        assert!(texts > 30 * 14, "{texts} texts in cells");
    }

    #[test]
    fn numbers_renumbered_over_shown_headings() {
        use crate::report::model::{Para, heading};
        let b = [
            heading(2, Some("1"), "A"),
            Para::text(Size::Body, "x"),
            heading(2, Some("2"), "Empty"),
            heading(2, Some("3"), "C"),
            Para::text(Size::Body, "y"),
            heading(2, Some("3a"), "C a"),
            Para::text(Size::Body, "z"),
        ];
        let refs: Vec<&Block> = b.iter().collect();
        let n = renumber(&refs);
        assert_eq!(n.get(&0).map(String::as_str), Some("1"));
        assert_eq!(n.get(&2), None);
        assert_eq!(n.get(&3).map(String::as_str), Some("2"));
        assert_eq!(n.get(&5).map(String::as_str), Some("2a"));
    }
}
