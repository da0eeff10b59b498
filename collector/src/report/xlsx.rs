//! XLSX for evaluators' spreadsheets: figures as numbers (the spreadsheet
//! shows them in the reader's locale), one sheet per section.

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::render::{self, group_label, t};
use super::{GroupFigure, Report};

fn opt(
    ws: &mut rust_xlsxwriter::Worksheet,
    r: u32,
    c: u16,
    v: Option<f64>,
    f: &Format,
) -> Result<(), XlsxError> {
    match v {
        Some(v) => ws.write_number_with_format(r, c, v, f).map(|_| ()),
        None => ws.write_string(r, c, "-").map(|_| ()),
    }
}

fn group_row(
    ws: &mut rust_xlsxwriter::Worksheet,
    r: u32,
    c0: u16,
    g: &GroupFigure,
    rep: &Report,
    f2: &Format,
) -> Result<(), XlsxError> {
    let l = rep.meta.lang;
    ws.write_string(r, c0, group_label(&g.group, l))?;
    opt(ws, r, c0 + 1, g.availability_pct, f2)?;
    ws.write_number_with_format(r, c0 + 2, g.sla_pct, f2)?;
    ws.write_string(
        r,
        c0 + 3,
        match g.sla_met {
            Some(true) => t(l, "yes"),
            Some(false) => t(l, "no"),
            None => "-",
        },
    )?;
    opt(ws, r, c0 + 4, g.p50_ms, f2)?;
    opt(ws, r, c0 + 5, g.p95_ms, f2)?;
    opt(ws, r, c0 + 6, g.jitter_ms, f2)?;
    opt(ws, r, c0 + 7, g.loss_pct, f2)?;
    ws.write_number(r, c0 + 8, g.minutes.down as f64)?;
    ws.write_number(r, c0 + 9, g.minutes.unknown as f64)?;
    ws.write_number(r, c0 + 10, g.minutes.maintenance as f64)?;
    Ok(())
}

fn build(rep: &Report) -> Result<Vec<u8>, XlsxError> {
    let l = rep.meta.lang;
    let m = &rep.meta;
    let bold = Format::new().set_bold();
    let f2 = Format::new().set_num_format("0.00");
    let mut wb = Workbook::new();

    let ws = wb.add_worksheet();
    ws.set_name("Ringkasan")?;
    ws.set_column_width(0, 28)?;
    ws.write_string_with_format(0, 0, t(l, "title"), &bold)?;
    ws.write_string(1, 0, &m.agency)?;
    let head = [
        (t(l, "number"), m.number.clone()),
        (t(l, "period"), render::period(rep)),
        (
            t(l, "issued"),
            render::date(m.issued_ms, m.utc_offset_minutes, l),
        ),
        (
            t(l, "scope"),
            if m.scope == "all" {
                t(l, "all").to_string()
            } else {
                m.scope.clone()
            },
        ),
        (
            if l == super::Lang::En {
                "Data cut-off"
            } else {
                "Batas data"
            },
            render::data_until(m),
        ),
        ("Rule", m.rule_version.clone()),
        (t(l, "public_key"), m.public_key.clone().unwrap_or_default()),
    ];
    for (i, (k, v)) in head.iter().enumerate() {
        ws.write_string(3 + i as u32, 0, *k)?;
        ws.write_string(3 + i as u32, 1, v)?;
    }
    let c = &rep.coverage;
    ws.write_string_with_format(11, 0, t(l, "coverage"), &bold)?;
    ws.write_number(12, 0, c.connected as f64)?;
    ws.write_number(12, 1, c.total as f64)?;
    ws.write_number_with_format(12, 2, c.connected_pct, &f2)?;
    ws.write_number_with_format(12, 3, c.target_pct, &f2)?;
    ws.write_string(12, 4, if c.met { t(l, "yes") } else { t(l, "no") })?;
    ws.write_string_with_format(14, 0, t(l, "availability"), &bold)?;
    for (i, h) in render::group_headers(l).iter().enumerate() {
        ws.write_string_with_format(15, i as u16, *h, &bold)?;
    }
    for (i, g) in rep.groups.iter().enumerate() {
        group_row(ws, 16 + i as u32, 0, g, rep, &f2)?;
    }

    let ws = wb.add_worksheet();
    ws.set_name("Per OPD")?;
    let mut headers = vec!["OPD", "Nama", t(l, "completeness")];
    headers.extend(render::group_headers(l));
    for (i, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, &bold)?;
    }
    let mut r = 1;
    for o in &rep.opds {
        for g in &o.groups {
            ws.write_string(r, 0, &o.id)?;
            ws.write_string(r, 1, &o.name)?;
            opt(ws, r, 2, o.completeness_pct, &f2)?;
            group_row(ws, r, 3, g, rep, &f2)?;
            r += 1;
        }
        if o.groups.is_empty() {
            ws.write_string(r, 0, &o.id)?;
            ws.write_string(r, 1, &o.name)?;
            ws.write_number(r, 2, 0.0)?;
            r += 1;
        }
    }

    for sec in super::capacity::sections(rep) {
        let ws = wb.add_worksheet();
        ws.set_name(sec.sheet)?;
        ws.set_column_width(0, 24)?;
        ws.write_string_with_format(0, 0, &sec.title, &bold)?;
        ws.write_string(1, 0, &sec.note)?;
        for (i, h) in sec.headers.iter().enumerate() {
            ws.write_string_with_format(3, i as u16, h, &bold)?;
        }
        for (i, row) in sec.rows.iter().enumerate() {
            for (j, cell) in row.iter().enumerate() {
                let (r, c) = (4 + i as u32, j as u16);
                match cell {
                    super::capacity::Cell::T(t) => ws.write_string(r, c, t).map(|_| ())?,
                    super::capacity::Cell::N(v, _) => opt(ws, r, c, *v, &f2)?,
                }
            }
        }
    }

    let ws = wb.add_worksheet();
    ws.set_name("Gangguan")?;
    for (i, h) in render::incident_headers(l).iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *h, &bold)?;
    }
    for (i, row) in render::incident_rows(rep).iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            if j == 4 {
                // Duration as a number (minutes so far when ongoing).
                ws.write_number(1 + i as u32, j as u16, rep.incidents[i].minutes as f64)?;
            } else {
                ws.write_string(1 + i as u32, j as u16, cell)?;
            }
        }
    }

    let ws = wb.add_worksheet();
    ws.set_name("Pemeliharaan")?;
    ws.set_column_width(2, 40)?;
    ws.write_string_with_format(0, 0, super::maintenance::title(l), &bold)?;
    ws.write_string(1, 0, super::maintenance::note(l))?;
    for (i, h) in super::maintenance::headers(l).iter().enumerate() {
        ws.write_string_with_format(3, i as u16, *h, &bold)?;
    }
    for (i, row) in super::maintenance::rows(rep).iter().enumerate() {
        for (j, cell) in row.iter().enumerate() {
            ws.write_string(4 + i as u32, j as u16, cell)?;
        }
    }
    if rep.maintenance.is_empty() {
        ws.write_string(4, 0, super::maintenance::none(l))?;
    }

    let ws = wb.add_worksheet();
    ws.set_name("Jam agen")?;
    ws.write_string_with_format(0, 0, super::clock::title(l), &bold)?;
    ws.write_string(1, 0, super::clock::note(l))?;
    for (i, h) in super::clock::headers(l).iter().enumerate() {
        ws.write_string_with_format(3, i as u16, *h, &bold)?;
    }
    for (i, (n, row)) in rep
        .clock
        .iter()
        .zip(super::clock::rows(&rep.clock, l))
        .enumerate()
    {
        let y = 4 + i as u32;
        ws.write_string(y, 0, &row[0])?;
        ws.write_string(y, 1, &row[1])?;
        ws.write_number(y, 2, n.corrected_results as f64)?;
        ws.write_number(y, 3, n.corrected_minutes as f64)?;
        ws.write_string(y, 4, &row[4])?;
        ws.write_number(y, 5, n.excluded_results as f64)?;
    }
    if rep.clock.is_empty() {
        ws.write_string(4, 0, super::clock::none(l))?;
    }

    let ws = wb.add_worksheet();
    ws.set_name("Reviu")?;
    ws.write_string_with_format(0, 0, t(l, "findings"), &bold)?;
    let mut r = 1;
    for f in &rep.findings {
        ws.write_string(r, 0, f)?;
        r += 1;
    }
    r += 1;
    ws.write_string_with_format(r, 0, t(l, "recommendations"), &bold)?;
    r += 1;
    for x in &rep.recommendations {
        ws.write_string(r, 0, x)?;
        r += 1;
    }
    r += 1;
    ws.write_string_with_format(r, 0, t(l, "methodology"), &bold)?;
    r += 1;
    ws.write_string(r, 0, t(l, "method_text"))?;
    for row in render::parameter_rows(m) {
        r += 1;
        ws.write_string(r, 0, &row[0])?;
        ws.write_string(r, 1, &row[1])?;
    }
    super::topology::xlsx_sheet(&mut wb, &rep.topology, m)?;
    wb.save_to_buffer()
}

/// Render the report as XLSX bytes (empty, with an error logged, if the
/// writer fails, which only a bug can cause).
pub fn xlsx(rep: &Report) -> Vec<u8> {
    build(rep).unwrap_or_else(|e| {
        tracing::error!(error = %e, "XLSX report could not be written");
        Vec::new()
    })
}
