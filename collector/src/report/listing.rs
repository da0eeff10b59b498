//! `pantau-collector incidents` and `maintenance-list`: what the admins look
//! up before writing a note or a report, printed as tab-separated lines with
//! RFC 3339 times (copy a start into `incident-note --start`).

use chrono::{DateTime, FixedOffset, NaiveDate};

use super::{Lang, Request, assemble, rollup};
use crate::config::CollectorConfig;
use crate::store;

fn local(ms: i64, offset_min: i64) -> String {
    let zone = FixedOffset::east_opt((offset_min * 60) as i32)
        .unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

/// Incidents (gangguan) of `opd` (or every OPD) between two local days.
pub fn incidents(
    cfg: &CollectorConfig,
    opd: Option<String>,
    from: NaiveDate,
    to: NaiveDate,
    english: bool,
) -> Result<String, String> {
    if to < from {
        return Err("--to must not be before --from".into());
    }
    let s = super::command::settings(cfg);
    let conn = store::open(&cfg.data_dir).map_err(|e| e.to_string())?;
    let req = Request {
        opd,
        from,
        to,
        number: String::new(),
        issued_ms: store::now_ms(),
        lang: if english { Lang::En } else { Lang::Id },
        business_hours: false,
        compare: None,
    };
    let r = rollup::consistent(&conn, &s.rules, s.utc_offset_minutes, None, |c| {
        assemble(c, &s, &req)
    })
    .map_err(|e: crate::store::StoreError| e.to_string())?;
    let mut out = String::from(if english {
        "OPD\tgroup\tstart\tend\tminutes\tprobable cause\taffected\tnote\tticket\n"
    } else {
        "OPD\tkelompok\tmulai\tselesai\tmenit\tdugaan penyebab\tterdampak\tcatatan\ttiket\n"
    });
    for i in &r.incidents {
        let end = if i.open {
            if english { "ongoing" } else { "berlangsung" }.to_string()
        } else {
            local(i.end_ms, s.utc_offset_minutes)
        };
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            i.opd,
            i.group,
            local(i.start_ms, s.utc_offset_minutes),
            end,
            i.minutes,
            i.cause.label(english),
            i.affected.join(","),
            i.note.as_deref().unwrap_or(""),
            i.ticket.as_deref().unwrap_or(""),
        ));
    }
    out.push_str(&if english {
        format!(
            "{} incident(s); rules {}",
            r.incidents.len(),
            s.rules.version
        )
    } else {
        format!("{} gangguan; aturan {}", r.incidents.len(), s.rules.version)
    });
    Ok(out)
}

/// Recorded maintenance windows touching `opd` (or all of them).
pub fn maintenance(cfg: &CollectorConfig, opd: Option<String>) -> Result<String, String> {
    let conn = store::open(&cfg.data_dir).map_err(|e| e.to_string())?;
    let mut st = conn
        .prepare(
            "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms FROM maintenance
             WHERE ?1 IS NULL OR opd_id IS NULL OR opd_id = ?1 ORDER BY from_ms, id",
        )
        .map_err(|e| e.to_string())?;
    type Row = (
        i64,
        Option<String>,
        Option<String>,
        i64,
        i64,
        String,
        String,
        i64,
    );
    let rows: Vec<Row> = st
        .query_map([&opd], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
            ))
        })
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let off = cfg.display.utc_offset_minutes;
    let mut out = String::from("id\tOPD\tgroup\tfrom\tto\treason\tby\trecorded\n");
    for (id, o, g, f, t, reason, by, at) in &rows {
        out.push_str(&format!(
            "{id}\t{}\t{}\t{}\t{}\t{reason}\t{by}\t{}\n",
            o.as_deref().unwrap_or("*"),
            g.as_deref().unwrap_or("*"),
            local(*f, off),
            local(*t, off),
            local(*at, off),
        ));
    }
    out.push_str(&format!(
        "{} jendela pemeliharaan / maintenance window(s)",
        rows.len()
    ));
    Ok(out)
}
