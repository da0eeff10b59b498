//! Native PDF: A4, DejaVu Sans embedded (TrueType, WinAnsi encoding), no
//! browser. Text is laid out line by line; tables wrap their cells.

use pdf_writer::types::FontFlags;
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use super::Report;
use super::render::{self, t};

/// The embedded font (Bitstream Vera licence, see assets/fonts/DejaVu-LICENSE).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

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

/// Render a report as PDF bytes.
pub fn pdf(r: &Report) -> Vec<u8> {
    let face = ttf_parser::Face::parse(FONT, 0).expect("the embedded font parses");
    let l = r.meta.lang;
    let m = &r.meta;
    let mut d = Doc {
        m: Metrics::new(&face),
        pages: Vec::new(),
        y: 0.0,
        footer: format!("{} — {} {}", m.agency, t(l, "number"), m.number),
    };
    d.need(0.0);
    d.para(15.0, t(l, "title"));
    d.para(11.0, &m.agency);
    d.gap(4.0);
    d.para(9.0, &format!("{}: {}", t(l, "number"), m.number));
    d.para(9.0, &format!("{}: {}", t(l, "period"), render::period(r)));
    d.para(
        9.0,
        &format!(
            "{}: {}",
            t(l, "issued"),
            render::date(m.issued_ms, m.utc_offset_minutes, l)
        ),
    );
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
    d.para(9.0, &format!("{}: {scope}{bh}", t(l, "scope")));
    d.para(9.0, &format!("Zona waktu / time zone: {}", m.zone));
    d.para(9.0, &render::data_until(m));
    d.gap(6.0);

    let c = &r.coverage;
    d.para(11.0, &format!("1. {}", t(l, "coverage")));
    d.para(
        9.0,
        &format!(
            "{} / {} OPD {} = {} % ({} {} %: {})",
            c.connected,
            c.total,
            t(l, "connected"),
            render::num(c.connected_pct, 1, l),
            t(l, "target"),
            render::num(c.target_pct, 1, l),
            if c.met { t(l, "yes") } else { t(l, "no") }
        ),
    );
    d.gap(4.0);
    d.para(11.0, &format!("2. {}", t(l, "availability")));
    let rows: Vec<Vec<String>> = r.groups.iter().map(|g| render::group_cells(g, l)).collect();
    let gw = [1.6, 1.2, 0.8, 1.1, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0, 1.1];
    d.table(&render::group_headers(l), &rows, &gw);

    d.para(11.0, &format!("3. {}", t(l, "per_opd")));
    let mut headers = vec!["OPD", t(l, "completeness")];
    headers.extend(render::group_headers(l));
    let mut rows = Vec::new();
    for o in &r.opds {
        for g in &o.groups {
            let mut row = vec![
                o.id.clone(),
                o.completeness_pct
                    .map_or("-".into(), |v| render::num(v, 1, l)),
            ];
            row.extend(render::group_cells(g, l));
            rows.push(row);
        }
        if o.groups.is_empty() {
            let mut row = vec![o.id.clone(), "0".into()];
            row.extend(std::iter::repeat_n("-".to_string(), 11));
            rows.push(row);
        }
    }
    let mut w = vec![1.4, 1.0];
    w.extend(gw);
    d.table(&headers, &rows, &w);
    capacity_sections(&mut d, r);

    d.para(11.0, &format!("4. {}", t(l, "incidents")));
    if r.incidents.is_empty() {
        d.para(9.0, t(l, "none"));
    } else {
        d.table(
            &render::incident_headers(l),
            &render::incident_rows(r),
            &[0.9, 0.9, 1.5, 1.5, 0.9, 2.4, 1.3, 1.3],
        );
    }
    maintenance_section(&mut d, r);
    clock_section(&mut d, r);
    if let Some(cmp) = &r.comparison {
        d.para(11.0, &format!("5. {}", t(l, "comparison")));
        let rows: Vec<Vec<String>> = cmp
            .groups
            .iter()
            .map(|(g, b, a)| {
                vec![
                    render::group_label(g, l),
                    b.map_or("-".into(), |v| render::num(v, 2, l)),
                    a.map_or("-".into(), |v| render::num(v, 2, l)),
                ]
            })
            .collect();
        let before = format!(
            "{} ({} – {}) %",
            t(l, "before"),
            cmp.before_from,
            cmp.before_to
        );
        let after = format!("{} %", t(l, "after"));
        d.table(&[t(l, "group"), &before, &after], &rows, &[1.0, 1.5, 1.0]);
    }
    d.para(11.0, &format!("6. {}", t(l, "review")));
    d.para(9.5, t(l, "findings"));
    for f in &r.findings {
        d.para(8.5, &format!("• {f}"));
    }
    d.para(9.5, t(l, "recommendations"));
    for x in &r.recommendations {
        d.para(8.5, &format!("• {x}"));
    }
    d.gap(4.0);
    d.para(11.0, &format!("7. {}", t(l, "methodology")));
    d.para(8.5, t(l, "method_text"));
    d.table(
        &render::parameter_headers(l),
        &render::parameter_rows(m),
        &[1.5, 1.0],
    );
    if let Some(k) = &m.public_key {
        d.para(8.5, &format!("{}: {k}", t(l, "public_key")));
    }
    topology_section(&mut d, r);
    validity_section(&mut d, r);
    assemble(d, &face)
}

/// Section 4b: agents whose clock was corrected (clock.rs).
fn clock_section(d: &mut Doc, r: &Report) {
    use super::clock;
    let l = r.meta.lang;
    disclosure(
        d,
        "4b",
        [clock::title(l), clock::note(l), clock::none(l)],
        &clock::headers(l),
        &clock::rows(&r.clock, l),
        &[1.0, 1.2, 1.0, 1.0, 1.6, 1.0],
    );
}

/// Section 4a: the maintenance windows of the period (maintenance.rs).
fn maintenance_section(d: &mut Doc, r: &Report) {
    use super::maintenance;
    let l = r.meta.lang;
    disclosure(
        d,
        "4a",
        [
            maintenance::title(l),
            maintenance::note(l),
            maintenance::none(l),
        ],
        &maintenance::headers(l),
        &maintenance::rows(r),
        &[1.0, 1.0, 2.4, 1.6, 1.0, 1.6, 0.9],
    );
}

/// A numbered disclosure section: title, note, then its table, or the
/// "none" text when it has no row.
fn disclosure(
    d: &mut Doc,
    number: &str,
    [title, note, none]: [&str; 3],
    headers: &[&str],
    rows: &[Vec<String>],
    widths: &[f32],
) {
    d.para(11.0, &format!("{number}. {title}"));
    d.para(8.0, note);
    if rows.is_empty() {
        d.para(9.0, none);
    } else {
        d.table(headers, rows, widths);
    }
}

/// The closing "Keabsahan dokumen" box (render::validity) and the sign-off.
fn validity_section(d: &mut Doc, r: &Report) {
    let v = render::validity(r);
    d.gap(8.0);
    d.need(120.0);
    d.para(11.0, v.title);
    let rows: Vec<Vec<String>> = v
        .rows
        .iter()
        .map(|(k, x)| vec![k.to_string(), x.clone()])
        .collect();
    let head = rows.first().cloned().unwrap_or_default();
    let head: Vec<&str> = head.iter().map(String::as_str).collect();
    d.table(&head, &rows[1..], &[1.0, 3.0]);
    if !v.signoff.is_empty() {
        d.need(v.signoff.len() as f32 * 13.0);
        for l in &v.signoff {
            d.y -= 12.0;
            let y = d.y;
            d.text_at(PAGE_W * 0.55, y, 9.0, l);
        }
    }
}

/// Appendix: the intranet topology drawing and the path changes (topology.rs).
fn topology_section(d: &mut Doc, r: &Report) {
    use super::topology;
    let g = &r.topology;
    d.gap(6.0);
    d.para(11.0, topology::title(r.meta.lang));
    let w = PAGE_W - 2.0 * MARGIN;
    let h = topology::pdf_height(g, w);
    if h > 0.0 {
        d.need(h + 4.0);
        let top = d.y - 4.0;
        topology::draw_pdf(d.pages.last_mut().expect("a page"), MARGIN, top, w, g, &enc);
        d.y = top - h;
    }
    let (heads, rows) = topology::change_table(g, &r.meta, " -> ");
    if !rows.is_empty() {
        d.table(&heads, &rows, &[1.2, 1.0, 0.8, 2.0, 2.0]);
    }
}

/// Sections 3a-3c: Pusat Data/JIP reachability, throughput, utilisation (capacity.rs).
fn capacity_sections(d: &mut Doc, r: &Report) {
    let l = r.meta.lang;
    for s in super::capacity::sections(r) {
        d.para(11.0, &s.title);
        d.para(8.0, &s.note);
        let heads: Vec<&str> = s.headers.iter().map(String::as_str).collect();
        let mut rows = s.text_rows(l);
        if rows.is_empty() {
            let mut row = vec![if l == super::Lang::En {
                "No data in the period.".to_string()
            } else {
                "Tidak ada data dalam periode ini.".to_string()
            }];
            row.resize(heads.len(), String::new());
            rows.push(row);
        }
        d.table(&heads, &rows, &s.weights);
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
