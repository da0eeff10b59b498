//! Native PDF: A4, PDF/A-2b, DejaVu Sans embedded as a subset, no browser.
//!
//! Built on krilla: it subsets the TrueType font (only the glyphs used are
//! embedded), writes text as glyph ids with a ToUnicode map (any character
//! DejaVu Sans has, Indonesian and symbols like ≥ µ – alike, is drawn and
//! extracts as itself) and validates PDF/A-2b while writing (XMP metadata,
//! sRGB output intent, embedded fonts). pdf-writer alone would leave all of
//! that to this module.
//!
//! The renderer works in two steps: [`layout`] places the model's blocks on
//! pages as positioned [`Op`]s (text never clipped or overlapping: headings
//! kept with what follows, table columns sized from their content, numbers
//! right-aligned and shrunk rather than overflowing, empty headings left
//! out and section numbers made consecutive); [`emit`] writes the ops.

mod layout;

use std::sync::Arc;

use krilla::color::rgb;
use krilla::configure::{Archival, ConfigurationBuilder};
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::image::Image;
use krilla::metadata::{DateTime, Metadata};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::{Document as PdfDocument, SerializeSettings};

use crate::report::Lang;
use crate::report::model::Document;

pub use layout::{Op, layout};

/// The embedded font (Bitstream Vera licence, see assets/fonts/DejaVu-LICENSE).
pub(crate) static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

/// A4 width, points.
pub const PAGE_W: f32 = 595.28;
/// A4 height, points.
pub const PAGE_H: f32 = 841.89;

/// Render a document as PDF/A-2b bytes.
///
/// Should the PDF/A validation ever refuse the output (a bug: the renderer
/// only writes what PDF/A-2b allows), the same pages are written as a plain
/// PDF and a warning is logged, so a report is never lost to it.
pub fn pdf(doc: &Document) -> Vec<u8> {
    let pages = layout(doc);
    match emit(doc, &pages, true) {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "PDF/A-2b validation refused the report; writing a plain PDF");
            emit(doc, &pages, false).unwrap_or_default()
        }
    }
}

/// Why a PDF could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// krilla refused the document (PDF/A validation or a limit).
    #[error("PDF tidak dapat ditulis / PDF could not be written: {0}")]
    Write(String),
    /// The embedded font did not load.
    #[error("fon DejaVu Sans tidak terbaca / the DejaVu Sans font did not load")]
    Font,
    /// The page size was refused.
    #[error("ukuran halaman A4 ditolak / the A4 page size was refused")]
    Page,
}

fn emit(doc: &Document, pages: &[Vec<Op>], pdfa: bool) -> Result<Vec<u8>, PdfError> {
    let mut settings = SerializeSettings::default();
    if pdfa {
        settings.configuration = ConfigurationBuilder::new()
            .with_archival_validator(Archival::A2_B)
            .finish()
            .map_err(|e| PdfError::Write(format!("{e:?}")))?;
    }
    let mut out = PdfDocument::new_with(settings);
    out.set_metadata(
        Metadata::new()
            .title(doc.title.clone())
            .language(match doc.lang {
                Lang::Id => "id-ID".into(),
                Lang::En => "en".into(),
            })
            .creator("Pantau".into())
            .producer("Pantau (krilla)".into())
            .creation_date(date(doc.issued)),
    );
    let font = Font::new(FONT.into(), 0).ok_or(PdfError::Font)?;
    let logo = doc
        .letterhead
        .as_ref()
        .and_then(|l| l.logo.clone())
        // PDF/A forbids image interpolation.
        .and_then(|png| match Image::from_png(png.into(), false) {
            Ok(i) => Some(i),
            Err(e) => {
                tracing::warn!(error = %e, "letterhead logo is not a readable PNG; left out");
                None
            }
        });
    for ops in pages {
        let size = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or(PdfError::Page)?;
        let mut page = out.start_page_with(size);
        let mut s = page.surface();
        for op in ops {
            draw(&mut s, op, &font, logo.as_ref());
        }
        s.finish();
        page.finish();
    }
    out.finish().map_err(|e| PdfError::Write(format!("{e:?}")))
}

/// The document date: the report's date of issue in its zone.
fn date((ms, offset): (i64, i64)) -> DateTime {
    use chrono::{Datelike, Timelike};
    let zone = chrono::FixedOffset::east_opt((offset * 60) as i32)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("UTC"));
    let t = chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&zone);
    DateTime::new(t.year().clamp(0, 9999) as u16)
        .month(t.month() as u8)
        .day(t.day() as u8)
        .hour(t.hour() as u8)
        .minute(t.minute() as u8)
        .second(t.second() as u8)
        .utc_offset_hour((offset / 60) as i8)
        .utc_offset_minute((offset % 60).unsigned_abs() as u8)
}

fn color(g: (u8, u8, u8)) -> rgb::Color {
    rgb::Color::new(g.0, g.1, g.2)
}

fn draw(s: &mut Surface<'_>, op: &Op, font: &Font, logo: Option<&Image>) {
    match op {
        Op::Text {
            x,
            y,
            size,
            text,
            rgb: c,
        } => {
            s.set_stroke(None);
            s.set_fill(Some(Fill {
                paint: color(*c).into(),
                ..Fill::default()
            }));
            s.draw_text(
                Point::from_xy(*x, *y),
                font.clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Op::Rect {
            x,
            y,
            w,
            h,
            fill,
            stroke,
        } => {
            let mut pb = PathBuilder::new();
            if let Some(r) = Rect::from_xywh(*x, *y, *w, *h) {
                pb.push_rect(r);
            }
            let Some(path) = pb.finish() else { return };
            s.set_fill(fill.map(|c| Fill {
                paint: color(c).into(),
                ..Fill::default()
            }));
            s.set_stroke(stroke.map(|w| Stroke {
                paint: color((0, 0, 0)).into(),
                width: w,
                ..Stroke::default()
            }));
            s.draw_path(&path);
        }
        Op::Line {
            from,
            to,
            width,
            rgb: c,
        } => {
            let mut pb = PathBuilder::new();
            pb.move_to(from.0, from.1);
            pb.line_to(to.0, to.1);
            let Some(path) = pb.finish() else { return };
            s.set_fill(None);
            s.set_stroke(Some(Stroke {
                paint: color(*c).into(),
                width: *width,
                ..Stroke::default()
            }));
            s.draw_path(&path);
        }
        Op::Logo { x, y, w, h } => {
            if let (Some(img), Some(size)) = (logo, Size::from_wh(*w, *h)) {
                s.push_transform(&krilla::geom::Transform::from_translate(*x, *y));
                s.draw_image(img.clone(), size);
                s.pop();
            }
        }
    }
}

/// Width and height of a PNG (its IHDR), for the letterhead's aspect ratio.
pub(crate) fn png_size(png: &Arc<Vec<u8>>) -> Option<(u32, u32)> {
    let b = png.get(16..24)?;
    let w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let h = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
    (png.starts_with(b"\x89PNG\r\n\x1a\n") && w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Cell, Empty, Para, Size as TextSize, Unit, heading, table};

    #[test]
    fn a_small_document_passes_the_pdfa_validator() {
        let doc = Document {
            lang: Lang::Id,
            title: "Uji".into(),
            footer: "Diskominfo".into(),
            sections: vec![crate::report::model::Section {
                id: "x",
                sheet: None,
                blocks: vec![
                    heading(2, Some("1"), "Ketersediaan ≥ 99 % – µs"),
                    Para::text(TextSize::Body, "Teks biasa."),
                    table(
                        vec!["Kelompok".into(), "Ketersediaan (%)".into()],
                        vec![vec![
                            Cell::text("Intra"),
                            Cell::num(Some(99.5), 2, Unit::Percent),
                        ]],
                        &[1.0, 1.0],
                        Empty::Headers,
                    ),
                ],
            }],
            letterhead: None,
            issued: (1_794_909_900_000, 480),
        };
        let pages = layout(&doc);
        let bytes = emit(&doc, &pages, true).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
    }
}
