//! Printable, self-contained HTML of a report [`Document`].

use std::fmt::Write as _;

use crate::report::Lang;
use crate::report::model::{
    Block, Body, Cell, Diagram, Document, Empty, FieldStyle, Media, Shape, Span, Table, Tone,
};

/// Escape for HTML text and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// HTML bytes of a document.
pub fn html(d: &Document) -> Vec<u8> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
<style>body{{font-family:sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}\
td,th{{border:1px solid #999;padding:.2em .5em;font-size:.9em}}th{{background:#eee}}h1{{font-size:1.4em}}\
@page{{size:A4;margin:15mm}}.ok{{color:#070}}.bad{{color:#a00}}</style></head><body>",
        if d.lang == Lang::En { "en" } else { "id" },
        esc(&d.title),
    );
    for s in &d.sections {
        blocks(&mut h, &s.blocks, d.lang);
    }
    h.push_str("</body></html>\n");
    h.into_bytes()
}

fn blocks(h: &mut String, list: &[Block], l: Lang) {
    for b in list.iter().filter(|b| b.media.has(Media::HTML)) {
        block(h, &b.body, l);
    }
}

fn block(h: &mut String, body: &Body, l: Lang) {
    match body {
        Body::Heading {
            level,
            number,
            text,
        } => {
            let n = number.as_ref().map_or(String::new(), |n| format!("{n}. "));
            let _ = write!(h, "<h{level}>{n}{}</h{level}>", esc(text));
        }
        Body::Para(p) => {
            h.push_str("<p>");
            for s in &p.spans {
                let _ = match s {
                    Span::Text(t) => write!(h, "{}", esc(t)),
                    Span::Strong(t) => write!(h, "<b>{}</b>", esc(t)),
                    Span::Code(t) => write!(h, "<code>{}</code>", esc(t)),
                    Span::Break => write!(h, "<br>"),
                };
            }
            h.push_str("</p>");
        }
        Body::Table(t) => table(h, t, l),
        Body::List(items) => {
            h.push_str("<ul>");
            for x in items {
                let _ = write!(h, "<li>{}</li>", esc(x));
            }
            h.push_str("</ul>");
        }
        Body::Fields {
            style: FieldStyle::Lines,
            rows,
        } => {
            let lines: Vec<String> = rows
                .iter()
                .map(|(k, v)| format!("{}: {}", esc(k), esc(v)))
                .collect();
            let _ = write!(h, "<p>{}</p>", lines.join("<br>"));
        }
        Body::Fields {
            style: FieldStyle::Boxed,
            rows,
        } => {
            h.push_str("<table>");
            for (k, v) in rows {
                let _ = write!(
                    h,
                    "<tr><th>{}</th><td><code>{}</code></td></tr>",
                    esc(k),
                    esc(v)
                );
            }
            h.push_str("</table>");
        }
        Body::Figure(g) => {
            h.push_str("<div style=\"overflow-x:auto\">");
            h.push_str(&svg(g));
            h.push_str("</div>");
        }
        Body::Frame {
            class, blocks: b, ..
        } => {
            let _ = write!(
                h,
                "<section class=\"{class}\" style=\"border:1px solid #000;padding:6px;margin-top:12px\">"
            );
            blocks(h, b, l);
            h.push_str("</section>");
        }
        Body::Signature(lines) => {
            if !lines.is_empty() {
                h.push_str("<p style=\"margin-left:55%\">");
                for x in lines {
                    let _ = write!(h, "{}<br>", esc(x));
                }
                h.push_str("</p>");
            }
        }
        Body::Gap(_) | Body::Records(_) => {}
    }
}

fn table(h: &mut String, t: &Table, l: Lang) {
    if t.rows.is_empty()
        && let Empty::Text(none) = &t.empty
    {
        let _ = write!(h, "<p>{}</p>", esc(none));
        return;
    }
    h.push_str("<table><tr>");
    for x in &t.columns {
        let _ = write!(h, "<th>{}</th>", esc(x));
    }
    h.push_str("</tr>");
    for row in &t.rows {
        h.push_str("<tr>");
        for c in row {
            let _ = write!(h, "<td>{}</td>", esc(&Cell::show(c, l, true)));
        }
        h.push_str("</tr>");
    }
    if t.rows.is_empty()
        && let Empty::Row(none) = &t.empty
    {
        let _ = write!(
            h,
            "<tr><td colspan=\"{}\">{}</td></tr>",
            t.columns.len(),
            esc(none)
        );
    }
    h.push_str("</table>");
}

fn colour(t: Tone) -> &'static str {
    match t {
        Tone::Primary => "#1f5fa8",
        Tone::Neutral => "#555",
        Tone::Muted => "#aaa",
        Tone::Positive => "#176c2b",
    }
}

/// Inline SVG of a drawing (no scripts, no external assets). Each mark is a
/// `<g>` with its class and, when it has one, `data-address`.
pub fn svg(g: &Diagram) -> String {
    let (w, h) = (g.width, g.height);
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"topologi\" width=\"{w:.0}\" height=\"{h:.0}\" \
viewBox=\"0 0 {w:.0} {h:.0}\" font-family=\"sans-serif\" font-size=\"10\" role=\"img\" aria-label=\"{}\">",
        g.caption
    );
    for (a, b) in &g.lines {
        let (m1, m2) = (&g.marks[*a], &g.marks[*b]);
        let _ = write!(
            s,
            "<line x1=\"{:.0}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#999\"/>",
            m1.x, m1.y, m2.x, m2.y
        );
    }
    for n in &g.marks {
        let (x, y) = (n.x, n.y);
        let c = colour(n.tone);
        let addr = n
            .address
            .as_deref()
            .map(|a| format!(" data-address=\"{}\"", esc(a)))
            .unwrap_or_default();
        let _ = write!(s, "<g class=\"{}\"{addr}>", n.class);
        let _ = match n.shape {
            Shape::Dot => write!(
                s,
                "<circle cx=\"{x:.0}\" cy=\"{y:.0}\" r=\"5\" fill=\"{c}\"/>"
            ),
            Shape::Square => write!(
                s,
                "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{c}\"/>",
                x - 5.0,
                y - 5.0
            ),
        };
        let _ = write!(
            s,
            "<text x=\"{x:.0}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"{c}\">{}</text></g>",
            y + 16.0,
            esc(&n.label)
        );
    }
    s.push_str("</svg>");
    s
}
