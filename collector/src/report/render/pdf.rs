//! Native PDF: A4, DejaVu Sans embedded (TrueType, WinAnsi encoding), no
//! browser. Text is laid out line by line; tables wrap their cells.

use pdf_writer::types::FontFlags;
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use crate::report::Lang;
use crate::report::model::{
    Block, Body, Diagram, Document, Empty, FieldStyle, Mark, Media, Size, Span, Table, Tone,
};

/// The embedded font (Bitstream Vera licence, see assets/fonts/DejaVu-LICENSE).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 45.0;

/// WinAnsi code of a character ('?' when it has none).
fn winansi(c: char) -> u8 {
    const HIGH: [(u8, char); 27] = [
        (0x80, '€'),
        (0x82, '‚'),
        (0x83, 'ƒ'),
        (0x84, '„'),
        (0x85, '…'),
        (0x86, '†'),
        (0x87, '‡'),
        (0x88, 'ˆ'),
        (0x89, '‰'),
        (0x8A, 'Š'),
        (0x8B, '‹'),
        (0x8C, 'Œ'),
        (0x8E, 'Ž'),
        (0x91, '‘'),
        (0x92, '’'),
        (0x93, '“'),
        (0x94, '”'),
        (0x95, '•'),
        (0x96, '–'),
        (0x97, '—'),
        (0x98, '˜'),
        (0x99, '™'),
        (0x9A, 'š'),
        (0x9B, '›'),
        (0x9C, 'œ'),
        (0x9E, 'ž'),
        (0x9F, 'Ÿ'),
    ];
    let u = c as u32;
    if (0x20..0x7F).contains(&u) || (0xA0..=0xFF).contains(&u) {
        return u as u8;
    }
    HIGH.iter()
        .find(|(_, ch)| *ch == c)
        .map_or(b'?', |(b, _)| *b)
}

fn unicode_of(code: u8) -> Option<char> {
    (32..=255u32)
        .contains(&(code as u32))
        .then(|| {
            (0x20..=0xFFFFu32)
                .filter_map(char::from_u32)
                .find(|c| winansi(*c) == code && (*c != '?' || code == b'?'))
        })
        .flatten()
}

struct Metrics {
    /// Advance widths per WinAnsi code, in 1/1000 em.
    widths: Vec<f32>,
}

impl Metrics {
    fn new(face: &ttf_parser::Face<'_>) -> Self {
        let upem = face.units_per_em() as f32;
        let widths = (32u8..=255)
            .map(|code| {
                unicode_of(code)
                    .and_then(|c| face.glyph_index(c))
                    .and_then(|g| face.glyph_hor_advance(g))
                    .map_or(500.0, |a| a as f32 * 1000.0 / upem)
            })
            .collect();
        Metrics { widths }
    }

    fn width(&self, s: &str, size: f32) -> f32 {
        s.chars()
            .map(|c| {
                let b = winansi(c);
                self.widths
                    .get(b.saturating_sub(32) as usize)
                    .copied()
                    .unwrap_or(500.0)
            })
            .sum::<f32>()
            * size
            / 1000.0
    }

    /// Split `s` into lines no wider than `w`.
    fn wrap(&self, s: &str, size: f32, w: f32) -> Vec<String> {
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
                // A single word wider than the column is cut by characters.
                while self.width(&cur, size) > w && cur.chars().count() > 1 {
                    let mut head = String::new();
                    for ch in cur.chars() {
                        if self.width(&format!("{head}{ch}"), size) > w {
                            break;
                        }
                        head.push(ch);
                    }
                    if head.is_empty() {
                        break;
                    }
                    cur = cur[head.len()..].to_string();
                    lines.push(head);
                }
            } else {
                lines.push(std::mem::take(&mut cur));
                cur = word.to_string();
            }
        }
        lines.push(cur);
        lines
    }
}

struct Doc {
    m: Metrics,
    pages: Vec<Content>,
    y: f32,
    footer: String,
}

impl Doc {
    fn new_page(&mut self) {
        let mut c = Content::new();
        let n = self.pages.len() + 1;
        let f = format!("{} — {n}", self.footer);
        c.begin_text();
        c.set_font(Name(b"F1"), 7.5);
        c.next_line(MARGIN, 22.0);
        c.show(Str(&enc(&f)));
        c.end_text();
        self.pages.push(c);
        self.y = PAGE_H - MARGIN;
    }

    fn need(&mut self, h: f32) {
        if self.pages.is_empty() || self.y - h < MARGIN {
            self.new_page();
        }
    }

    fn text_at(&mut self, x: f32, y: f32, size: f32, s: &str) {
        let c = self.pages.last_mut().expect("a page");
        c.begin_text();
        c.set_font(Name(b"F1"), size);
        c.next_line(x, y);
        c.show(Str(&enc(s)));
        c.end_text();
    }

    fn para(&mut self, size: f32, s: &str) {
        let lines = self.m.wrap(s, size, PAGE_W - 2.0 * MARGIN);
        for l in lines {
            self.need(size * 1.4);
            self.y -= size * 1.4;
            let y = self.y;
            self.text_at(MARGIN, y, size, &l);
        }
    }

    fn gap(&mut self, h: f32) {
        self.y -= h;
    }

    fn table(&mut self, headers: &[&str], rows: &[Vec<String>], weights: &[f32]) {
        let size = 7.0;
        let total: f32 = weights.iter().sum();
        let widths: Vec<f32> = weights
            .iter()
            .map(|w| w / total * (PAGE_W - 2.0 * MARGIN))
            .collect();
        let header: Vec<String> = headers.iter().map(|s| s.to_string()).collect();
        self.row(&header, &widths, size, true);
        for r in rows {
            self.row(r, &widths, size, false);
        }
        self.gap(6.0);
    }

    fn row(&mut self, cells: &[String], widths: &[f32], size: f32, head: bool) {
        let wrapped: Vec<Vec<String>> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| self.m.wrap(c, size, w - 4.0))
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let h = lines as f32 * size * 1.25 + 4.0;
        self.need(h);
        let top = self.y;
        let c = self.pages.last_mut().expect("a page");
        if head {
            c.set_fill_rgb(0.9, 0.9, 0.9);
            c.rect(MARGIN, top - h, PAGE_W - 2.0 * MARGIN, h);
            c.fill_nonzero();
            c.set_fill_rgb(0.0, 0.0, 0.0);
        }
        c.set_line_width(0.4);
        let mut x = MARGIN;
        for w in widths {
            c.rect(x, top - h, *w, h);
            x += w;
        }
        c.stroke();
        let mut x = MARGIN;
        for (cell, w) in wrapped.iter().zip(widths) {
            for (i, l) in cell.iter().enumerate() {
                let y = top - 2.0 - (i as f32 + 1.0) * size * 1.25 + 1.5;
                self.text_at(x + 2.0, y, size, l);
            }
            x += w;
        }
        self.y = top - h;
    }
}

fn enc(s: &str) -> Vec<u8> {
    s.chars().map(winansi).collect()
}

/// The PDF's text: its WinAnsi font has no arrow.
fn shaped(s: &str) -> String {
    s.replace('→', "->")
}

/// Render a document as PDF bytes.
pub fn pdf(doc: &Document) -> Vec<u8> {
    let face = ttf_parser::Face::parse(FONT, 0).expect("the embedded font parses");
    let mut d = Doc {
        m: Metrics::new(&face),
        pages: Vec::new(),
        y: 0.0,
        footer: doc.footer.clone(),
    };
    d.need(0.0);
    for s in &doc.sections {
        d.blocks(&s.blocks, doc.lang);
    }
    assemble(d, &face)
}

impl Doc {
    fn blocks(&mut self, list: &[Block], l: Lang) {
        for b in list.iter().filter(|b| b.media.has(Media::PDF)) {
            self.block(&b.body, l);
        }
    }

    fn block(&mut self, body: &Body, l: Lang) {
        match body {
            Body::Heading {
                level,
                number,
                text,
            } => {
                let size = match level {
                    1 => 15.0,
                    2 => 11.0,
                    _ => 9.5,
                };
                match number {
                    Some(n) => self.para(size, &format!("{n}. {text}")),
                    None => self.para(size, text),
                }
            }
            Body::Para(p) => {
                let size = match p.size {
                    Size::Lead => 11.0,
                    Size::Body => 9.0,
                    Size::Small => 8.5,
                    Size::Note => 8.0,
                };
                // Each line break starts a paragraph of its own.
                let mut line = String::new();
                for s in &p.spans {
                    match s {
                        Span::Text(t) | Span::Strong(t) | Span::Code(t) => line.push_str(t),
                        Span::Break => self.para(size, &std::mem::take(&mut line)),
                    }
                }
                self.para(size, &line);
            }
            Body::Table(t) => self.model_table(t, l),
            Body::List(items) => {
                for x in items {
                    self.para(8.5, &format!("• {x}"));
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
                let rows: Vec<Vec<String>> = rows
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone()])
                    .collect();
                let head = rows.first().cloned().unwrap_or_default();
                let head: Vec<&str> = head.iter().map(String::as_str).collect();
                self.table(&head, rows.get(1..).unwrap_or_default(), &[1.0, 3.0]);
            }
            Body::Figure(g) => self.figure(g),
            Body::Frame { keep, blocks, .. } => {
                self.need(*keep);
                self.blocks(blocks, l);
            }
            Body::Signature(lines) => {
                if !lines.is_empty() {
                    self.need(lines.len() as f32 * 13.0);
                    for x in lines {
                        self.y -= 12.0;
                        let y = self.y;
                        self.text_at(PAGE_W * 0.55, y, 9.0, x);
                    }
                }
            }
            Body::Gap(points) => self.gap(*points),
            Body::Records(_) => {}
        }
    }

    fn model_table(&mut self, t: &Table, l: Lang) {
        let heads: Vec<String> = t.columns.iter().map(|c| shaped(c)).collect();
        let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
        let mut rows: Vec<Vec<String>> = t
            .rows
            .iter()
            .map(|r| r.iter().map(|c| shaped(&c.show(l, false))).collect())
            .collect();
        if rows.is_empty() {
            match &t.empty {
                Empty::Headers => {}
                Empty::Row(none) => {
                    let mut row = vec![none.clone()];
                    row.resize(heads.len(), String::new());
                    rows.push(row);
                }
                Empty::Text(none) => {
                    self.para(9.0, none);
                    return;
                }
            }
        }
        self.table(&heads, &rows, &t.weights);
    }

    /// A drawing, as wide as the text and at most 680 points high.
    fn figure(&mut self, g: &Diagram) {
        if g.marks.is_empty() {
            return;
        }
        let width = PAGE_W - 2.0 * MARGIN;
        let k = (width / g.width as f32)
            .min(680.0 / g.height as f32)
            .min(1.0);
        let h = g.height as f32 * k;
        self.need(h + 4.0);
        let top = self.y - 4.0;
        let c = self.pages.last_mut().expect("a page");
        let p = |m: &Mark| (MARGIN + m.x as f32 * k, top - m.y as f32 * k);
        c.set_line_width(0.5);
        c.set_stroke_rgb(0.6, 0.6, 0.6);
        for (a, b) in &g.lines {
            let (x1, y1) = p(&g.marks[*a]);
            let (x2, y2) = p(&g.marks[*b]);
            c.move_to(x1, y1);
            c.line_to(x2, y2);
        }
        c.stroke();
        let font = (7.0 * k).max(4.0);
        for n in &g.marks {
            let (nx, ny) = p(n);
            let (r, gr, b) = match n.tone {
                Tone::Primary => (0.12, 0.37, 0.66),
                Tone::Neutral => (0.33, 0.33, 0.33),
                Tone::Muted => (0.67, 0.67, 0.67),
                Tone::Positive => (0.09, 0.42, 0.17),
            };
            c.set_fill_rgb(r, gr, b);
            // Every mark is a square at this size.
            let s = 8.0 * k;
            c.rect(nx - s / 2.0, ny - s / 2.0, s, s);
            c.fill_nonzero();
            let text = enc(&n.label);
            let tw = n.label.chars().count() as f32 * font * 0.5;
            c.begin_text();
            c.set_font(Name(b"F1"), font);
            c.next_line(nx - tw / 2.0, ny - s / 2.0 - font - 1.0);
            c.show(Str(&text));
            c.end_text();
        }
        c.set_fill_rgb(0.0, 0.0, 0.0);
        c.set_stroke_rgb(0.0, 0.0, 0.0);
        self.y = top - h;
    }
}

fn assemble(d: Doc, face: &ttf_parser::Face<'_>) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let font = Ref::new(3);
    let descriptor = Ref::new(4);
    let file = Ref::new(5);
    let info = Ref::new(6);
    let mut next = 7;
    pdf.catalog(catalog).pages(tree);
    pdf.document_info(info)
        .producer(pdf_writer::TextStr("Pantau"))
        .title(pdf_writer::TextStr("Laporan Pemantauan Jaringan Intra"));
    let page_ids: Vec<(Ref, Ref)> = d
        .pages
        .iter()
        .map(|_| {
            let p = (Ref::new(next), Ref::new(next + 1));
            next += 2;
            p
        })
        .collect();
    pdf.pages(tree)
        .kids(page_ids.iter().map(|p| p.0))
        .count(page_ids.len() as i32);
    for ((page, content), c) in page_ids.iter().zip(d.pages) {
        let mut p = pdf.page(*page);
        p.media_box(Rect::new(0.0, 0.0, PAGE_W, PAGE_H));
        p.parent(tree);
        p.contents(*content);
        p.resources().fonts().pair(Name(b"F1"), font);
        drop(p);
        pdf.stream(*content, &c.finish());
    }
    {
        let mut f = pdf.indirect(font).dict();
        f.pair(Name(b"Type"), Name(b"Font"));
        f.pair(Name(b"Subtype"), Name(b"TrueType"));
        f.pair(Name(b"BaseFont"), Name(b"DejaVuSans"));
        f.pair(Name(b"FirstChar"), 32);
        f.pair(Name(b"LastChar"), 255);
        f.insert(Name(b"Widths"))
            .array()
            .items(d.m.widths.iter().copied());
        f.pair(Name(b"Encoding"), Name(b"WinAnsiEncoding"));
        f.pair(Name(b"FontDescriptor"), descriptor);
    }
    let upem = face.units_per_em() as f32;
    let s = |v: i16| v as f32 * 1000.0 / upem;
    let bb = face.global_bounding_box();
    pdf.font_descriptor(descriptor)
        .name(Name(b"DejaVuSans"))
        .flags(FontFlags::NON_SYMBOLIC)
        .bbox(Rect::new(
            s(bb.x_min),
            s(bb.y_min),
            s(bb.x_max),
            s(bb.y_max),
        ))
        .italic_angle(0.0)
        .ascent(s(face.ascender()))
        .descent(s(face.descender()))
        .cap_height(s(face.capital_height().unwrap_or(face.ascender())))
        .stem_v(80.0)
        .font_file2(file);
    pdf.stream(file, FONT)
        .pair(Name(b"Length1"), FONT.len() as i32);
    pdf.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winansi_round_trip_and_wrap() {
        assert_eq!(winansi('A'), b'A');
        assert_eq!(winansi('–'), 0x96);
        assert_eq!(winansi('é'), 0xE9);
        assert_eq!(winansi('漢'), b'?');
        assert_eq!(unicode_of(0x96), Some('–'));
        let face = ttf_parser::Face::parse(FONT, 0).unwrap();
        let m = Metrics::new(&face);
        let lines = m.wrap("ketersediaan jaringan intra pemerintah daerah", 10.0, 80.0);
        assert!(lines.len() > 1, "{lines:?}");
        for l in &lines {
            assert!(m.width(l, 10.0) <= 80.0, "{l}");
        }
    }
}
