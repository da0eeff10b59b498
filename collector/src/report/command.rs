//! The report-related commands behind `pantau-collector report`, `verify`,
//! `maintenance add` and `incident note`; main.rs only parses arguments.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{Format, Lang, Request, Settings, produce_bundle, rollup, sign};
use crate::config::CollectorConfig;
use crate::store;

/// Arguments of `report`.
#[derive(Debug)]
pub struct ReportArgs {
    /// OPD id or `all`.
    pub opd: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day (inclusive).
    pub to: NaiveDate,
    /// pdf, csv, html, json.
    pub format: String,
    /// Bundle directory.
    pub out: PathBuf,
    /// id or en.
    pub lang: String,
    /// Report number.
    pub number: Option<String>,
    /// Business hours only.
    pub business_hours: bool,
    /// Earlier period to compare with.
    pub compare: Option<(NaiveDate, NaiveDate)>,
    /// Print progress steps to stderr even when it is not a terminal.
    pub progress: bool,
    /// Date of issue printed in the header (default: today).
    pub issued: Option<NaiveDate>,
}

/// Settings from the collector configuration.
pub fn settings(cfg: &CollectorConfig) -> Settings {
    let mut s = Settings::new(&cfg.display);
    s.rules = cfg.report.rules.clone();
    s.sla_pct = cfg.report.sla_pct;
    s.coverage_target_pct = cfg.report.coverage_target_pct;
    s.public_key_url.clone_from(&cfg.report.public_key_url);
    s.signoff.clone_from(&cfg.report.signoff);
    s
}

/// `pantau-collector report`.
pub fn report(cfg: &CollectorConfig, a: ReportArgs) -> Result<String, String> {
    let format: Format = a.format.parse()?;
    let lang = match a.lang.as_str() {
        "id" => Lang::Id,
        "en" => Lang::En,
        other => return Err(format!("unknown --lang `{other}`; use id or en")),
    };
    if a.to < a.from {
        return Err("--to must not be before --from".into());
    }
    let conn = store::open(&cfg.data_dir).map_err(|e| e.to_string())?;
    let opd = (a.opd != "all").then(|| a.opd.clone());
    if let Some(o) = &opd {
        let exists: bool = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM opd WHERE id = ?1)", [o], |r| {
                r.get(0)
            })
            .map_err(|e| e.to_string())?;
        if !exists {
            return Err(format!(
                "no OPD `{o}`; list them with `pantau-collector opd list`"
            ));
        }
    }
    let key = sign::load_or_create_key(&cfg.data_dir).map_err(|e| e.to_string())?;
    let scope = opd.clone().unwrap_or_else(|| "provinsi".into());
    let req = Request {
        number: a
            .number
            .unwrap_or_else(|| super::default_number(&scope, a.from, a.to)),
        opd,
        from: a.from,
        to: a.to,
        issued_ms: a
            .issued
            .map_or_else(store::now_ms, |d| settings(cfg).day_start(d)),
        lang,
        business_hours: a.business_hours,
        compare: a.compare,
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let produce = || produce_bundle(&conn, &settings(cfg), &req, format, &key, &a.out);
    let name = if a.progress || terminal {
        let sink = super::progress::Sink::new(Box::new(std::io::stderr()), terminal);
        super::progress::with(sink, produce)
    } else {
        produce()
    }
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "{}\nsigned with collector key {}\ncheck with: pantau-collector verify {}",
        a.out.join(&name).display(),
        sign::public_hex(&key),
        a.out.display()
    ))
}

/// Exit code of `verify` when the bundle is intact but no expected key was
/// known (no `--public-key`, no key in the data directory): integrity was
/// checked, origin was not.
pub const EXIT_ORIGIN_NOT_CHECKED: u8 = 3;

/// What `verify` found: the message and whether the signer was compared with
/// an expected key (origin checked).
#[derive(Debug)]
pub struct VerifyOutcome {
    /// Report for stdout.
    pub message: String,
    /// The signer was the expected key.
    pub origin_checked: bool,
}

/// `pantau-collector verify`: checks the bundle; with no `--public-key`, also
/// compares with this collector's key when its data directory has one.
pub fn verify(
    data_dir: &Path,
    path: &Path,
    public_key: Option<String>,
) -> Result<VerifyOutcome, String> {
    let local = std::fs::read_to_string(data_dir.join(sign::KEY_FILE))
        .ok()
        .and_then(|_| sign::load_or_create_key(data_dir).ok())
        .map(|k| sign::public_hex(&k));
    let expected = public_key.or(local);
    let v = sign::verify(path, expected.as_deref()).map_err(|e| e.to_string())?;
    let mut message = format!(
        "OK: {} file(s) match the signed manifest in {}: {}\nsigned by Ed25519 key {}",
        v.files.len(),
        v.dir.display(),
        v.files.join(", "),
        v.public_key,
    );
    if expected.is_some() {
        message.push_str(" (the expected collector key)");
    } else {
        message.push_str(&format!(
            "\nINTEGRITAS DIPERIKSA, ASAL-USUL TIDAK: isi bundel cocok dengan manifesnya, tetapi \
             siapa pun dapat menandatangani bundel dengan kuncinya sendiri. Bandingkan kunci di atas \
             dengan kunci publik resmi, atau ulangi dengan --public-key KUNCI-RESMI.\n\
             INTEGRITY CHECKED, ORIGIN WAS NOT: the files match the manifest, but anyone can sign a \
             bundle with their own key. Compare the key above with the official public key, or run \
             again with --public-key OFFICIAL-KEY. (exit code {EXIT_ORIGIN_NOT_CHECKED})"
        ));
    }
    Ok(VerifyOutcome {
        message,
        origin_checked: expected.is_some(),
    })
}

/// `pantau-collector maintenance add`.
pub fn maintenance_add(
    cfg: &CollectorConfig,
    opd: Option<String>,
    group: Option<String>,
    from_ms: i64,
    to_ms: i64,
    reason: &str,
    by: &str,
) -> Result<String, String> {
    if to_ms <= from_ms {
        return Err("--to must be after --from".into());
    }
    let conn = store::open(&cfg.data_dir).map_err(|e| e.to_string())?;
    let tx = store::write_tx(&conn).map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT INTO maintenance (opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![opd, group, from_ms, to_ms, reason, by, store::now_ms()],
    )
    .map_err(|e| e.to_string())?;
    rollup::mark_range_dirty(&tx, opd.as_deref(), from_ms, to_ms).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    Ok("pemeliharaan dicatat / maintenance window recorded".into())
}

/// `pantau-collector incident note`.
pub fn incident_note(
    cfg: &CollectorConfig,
    opd: &str,
    group: &str,
    start_ms: i64,
    note: &str,
    ticket: &str,
    by: &str,
) -> Result<String, String> {
    let conn = store::open(&cfg.data_dir).map_err(|e| e.to_string())?;
    conn.execute(
        "INSERT INTO incident_note (opd_id, grp, start_ms, note, ticket, author, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(opd_id, grp, start_ms) DO UPDATE SET note = excluded.note, ticket = excluded.ticket,
           author = excluded.author, at_ms = excluded.at_ms",
        rusqlite::params![opd, group, start_ms, note, ticket, by, store::now_ms()],
    )
    .map_err(|e| e.to_string())?;
    Ok("catatan gangguan disimpan / incident note saved".into())
}
