//! XLSX for evaluators' spreadsheets: figures as numbers (the spreadsheet
//! shows them in the reader's locale). A section may start a sheet; blocks
//! fill it from the top, one row each (tables: a bold header row, then a
//! row per record).

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use crate::report::Lang;
use crate::report::model::{Block, Body, Cell, Document, Empty, Media, Span, Table};

struct Sheet<'a> {
    ws: &'a mut Worksheet,
    row: u32,
    lang: Lang,
    bold: Format,
    f2: Format,
}

impl Sheet<'_> {
    fn blocks(&mut self, list: &[Block]) -> Result<(), XlsxError> {
        for b in list.iter().filter(|b| b.media.has(Media::SHEET)) {
            self.block(&b.body)?;
        }
        Ok(())
    }

    fn block(&mut self, body: &Body) -> Result<(), XlsxError> {
        match body {
            Body::Heading { text, .. } => {
                self.ws
                    .write_string_with_format(self.row, 0, text, &self.bold)?;
                self.row += 1;
            }
            Body::Para(p) => {
                let mut line = String::new();
                for s in &p.spans {
                    match s {
                        Span::Text(t) | Span::Strong(t) | Span::Code(t) => line.push_str(t),
                        Span::Break => self.line(&std::mem::take(&mut line))?,
                    }
                }
                self.line(&line)?;
            }
            Body::List(items) => {
                for x in items {
                    self.line(x)?;
                }
            }
            Body::Fields { rows, .. } => {
                for (k, v) in rows {
                    self.ws.write_string(self.row, 0, k)?;
                    self.ws.write_string(self.row, 1, v)?;
                    self.row += 1;
                }
            }
            Body::Table(t) => self.table(t)?,
            Body::Frame { blocks, .. } => self.blocks(blocks)?,
            Body::Signature(lines) => {
                for x in lines {
                    self.line(x)?;
                }
            }
            Body::Gap(_) => self.row += 1,
            Body::Figure(_) | Body::Records(_) => {}
        }
        Ok(())
    }

    fn line(&mut self, s: &str) -> Result<(), XlsxError> {
        self.ws.write_string(self.row, 0, s)?;
        self.row += 1;
        Ok(())
    }

    fn table(&mut self, t: &Table) -> Result<(), XlsxError> {
        if !t.columns.is_empty() {
            for (i, h) in t.columns.iter().enumerate() {
                self.ws
                    .write_string_with_format(self.row, i as u16, h, &self.bold)?;
            }
            self.row += 1;
        }
        for cells in &t.rows {
            for (i, c) in cells.iter().enumerate() {
                self.cell(i as u16, c)?;
            }
            self.row += 1;
        }
        if t.rows.is_empty()
            && let Empty::Text(none) = &t.empty
        {
            self.line(none)?;
        }
        Ok(())
    }

    fn cell(&mut self, col: u16, c: &Cell) -> Result<(), XlsxError> {
        let (ws, r) = (&mut *self.ws, self.row);
        match c {
            Cell::Num {
                value: Some(v),
                unit,
                ..
            } if unit.whole() => ws.write_number(r, col, *v).map(|_| ()),
            Cell::Num { value: Some(v), .. } => ws
                .write_number_with_format(r, col, *v, &self.f2)
                .map(|_| ()),
            Cell::Shown { value, .. } => ws.write_number(r, col, *value).map(|_| ()),
            Cell::Missing => Ok(()),
            other => ws
                .write_string(r, col, other.show(self.lang, true))
                .map(|_| ()),
        }
    }
}

fn build(d: &Document) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let mut current: Option<usize> = None;
    let mut rows: Vec<u32> = Vec::new();
    for s in &d.sections {
        if let Some(sheet) = &s.sheet {
            let ws = wb.add_worksheet();
            ws.set_name(sheet.name)?;
            for (c, w) in &sheet.widths {
                ws.set_column_width(*c, *w)?;
            }
            current = Some(rows.len());
            rows.push(0);
        }
        // Sections before the first sheet have nowhere to go.
        let Some(i) = current else { continue };
        let mut sheet = Sheet {
            ws: wb.worksheet_from_index(i)?,
            row: rows[i],
            lang: d.lang,
            bold: Format::new().set_bold(),
            f2: Format::new().set_num_format("0.00"),
        };
        sheet.blocks(&s.blocks)?;
        rows[i] = sheet.row;
    }
    wb.save_to_buffer()
}

/// Render a document as XLSX bytes (empty, with an error logged, if the
/// writer fails, which only a bug can cause).
pub fn xlsx(d: &Document) -> Vec<u8> {
    build(d).unwrap_or_else(|e| {
        tracing::error!(error = %e, "XLSX report could not be written");
        Vec::new()
    })
}
