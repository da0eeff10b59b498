//! The report-related commands behind `pantau-collector report`, `verify`,
//! `maintenance`, `incident-note`, `opd contract`, and the listings
//! `incidents` and `maintenance-list`: what the admins look up before
//! writing a note or a report, printed as tab-separated lines with RFC 3339
//! times (copy a start into `incident-note --start`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate};

use crate::admin::maintenance;
use crate::audit::{self, Action, Actor};
use crate::config::CollectorConfig;
use crate::report::capacity::ContractError;
use crate::report::{Format, Lang, Request, Settings, assemble, produce_bundle, rollup, sign};
use crate::store::report::{ReportRead, snapshot};
use crate::store::{self, StoreError};
use serde_json::Value::Null;
use sha2::Digest as _;

/// Why a report command failed; the message is what the command prints.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The arguments cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The OPD asked for is not registered.
    #[error("no OPD `{0}`; list them with `pantau-collector opd list`")]
    UnknownOpd(String),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Signing, writing or verifying a bundle failed.
    #[error("{0}")]
    Integrity(#[from] sign::IntegrityError),
    /// The contract could not be recorded.
    #[error("{0}")]
    Contract(#[from] ContractError),
    /// An admin action refused its input or failed.
    #[error("{0}")]
    Action(#[from] crate::admin::ActionError),
}

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
    Settings::from_config(cfg)
}

fn open(cfg: &CollectorConfig) -> Result<std::sync::Arc<dyn store::Store>, StoreError> {
    crate::cli::open_store(cfg)
}

/// `pantau-collector report`.
pub fn report(cfg: &CollectorConfig, a: ReportArgs) -> Result<String, CommandError> {
    let format: Format = a
        .format
        .parse()
        .map_err(|e: crate::report::UnknownFormat| CommandError::Usage(e.to_string()))?;
    let lang = match a.lang.as_str() {
        "id" => Lang::Id,
        "en" => Lang::En,
        other => {
            return Err(CommandError::Usage(format!(
                "unknown --lang `{other}`; use id or en"
            )));
        }
    };
    if a.to < a.from {
        return Err(CommandError::Usage("--to must not be before --from".into()));
    }
    let store = open(cfg)?;
    let store = &*store;
    let opd = (a.opd != "all").then(|| a.opd.clone());
    if let Some(o) = &opd
        && !snapshot(store, |r| r.opd_exists(o))?
    {
        return Err(CommandError::UnknownOpd(o.clone()));
    }
    let key = sign::load_or_create_key_at(&cfg.signing_key_path())?;
    let scope = opd.clone().unwrap_or_else(|| "provinsi".into());
    let number_given = a.number.is_some();
    let req = Request {
        number: a
            .number
            .unwrap_or_else(|| crate::report::default_number(&scope, a.from, a.to)),
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
    let produce = || produce_bundle(store, &settings(cfg), &req, format, &key, &a.out);
    let name = if a.progress || terminal {
        let sink = crate::report::progress::Sink::new(Box::new(std::io::stderr()), terminal);
        crate::report::progress::with(sink, produce)
    } else {
        produce()
    }?;
    // Who signed which number, period and date of issue (given or today):
    // the register (as for bundles from the web; a directory bundle is
    // identified by its signed manifest's SHA-256) and the audit log.
    let manifest = std::fs::read(a.out.join(sign::MANIFEST)).unwrap_or_default();
    let manifest_sha256 = hex::encode(sha2::Sha256::digest(&manifest));
    let actor = Actor::cli();
    let issued = crate::when::When::At(req.issued_ms).day(cfg.display.utc_offset_minutes);
    store.record_signed_report(&crate::store::accounts::SignedReport {
        number: req.number.clone(),
        number_given,
        issued: issued.to_string(),
        issued_given: a.issued.is_some(),
        from: req.from.to_string(),
        to: req.to.to_string(),
        scope,
        format: format.ext().to_string(),
        sha256: manifest_sha256.clone(),
        requester: format!("cli {}", actor.name),
        role: "admin".into(),
        source: actor.source.clone(),
        at_ms: store::now_ms(),
    })?;
    let after = serde_json::json!({
        "opd": req.opd, "from": req.from.to_string(), "to": req.to.to_string(),
        "issued_ms": req.issued_ms, "issued_given": a.issued.is_some(), "format": a.format,
        "public_key": sign::public_hex(&key), "manifest_sha256": manifest_sha256,
    });
    audit::record(store, &actor, Action::ReportSign, &req.number, Null, after)?;
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
/// checks its signer against this collector's key at `key_path` and the
/// retired keys in `keys/` beside it (a bundle signed before a rotation
/// still verifies; one signed by a key retired as compromised does not).
///
/// A bundle folder's `audit.jsonl` must also be a sound chain segment.
pub fn verify(
    key_path: &Path,
    path: &Path,
    public_key: Option<String>,
) -> Result<VerifyOutcome, CommandError> {
    let mut outcome = verify_signed(key_path, path, public_key)?;
    if let Some(note) = audit_segment(path)? {
        outcome.message.push('\n');
        outcome.message.push_str(&note);
    }
    Ok(outcome)
}

/// Check the chain segment in a bundle's `audit.jsonl` (hashes, order,
/// links between consecutive entries), in a folder or a `.tar`.
fn audit_segment(path: &Path) -> Result<Option<String>, CommandError> {
    let name = crate::report::recompute::AUDIT;
    let (file, bytes) = if path.is_file() && path.extension().is_some_and(|e| e == "tar") {
        (path.join(name), sign::archive_file(path, name))
    } else {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(Path::new("."))
        };
        (dir.join(name), std::fs::read(dir.join(name)).ok())
    };
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    let bad = |m: String| CommandError::Integrity(sign::IntegrityError::Invalid(m));
    let entries = audit::from_jsonl(&text).map_err(|e| bad(format!("{}: {e}", file.display())))?;
    audit::verify_segment(&entries).map_err(|e| bad(format!("{}: {e}", file.display())))?;
    Ok(Some(format!(
        "log audit / audit log: {} entri, rantai utuh / entries, chain segment intact",
        entries.len()
    )))
}

fn verify_signed(
    key_path: &Path,
    path: &Path,
    public_key: Option<String>,
) -> Result<VerifyOutcome, CommandError> {
    if let Some(pk) = public_key {
        let v = sign::verify(path, Some(&pk))?;
        return Ok(VerifyOutcome {
            message: format!("{} (the expected collector key)", verified_text(&v)),
            origin_checked: true,
        });
    }
    let current = sign::load_key(key_path)?.map(|k| sign::public_hex(&k));
    let retired = sign::history(key_path)?;
    let v = sign::verify(path, None)?;
    let message = verified_text(&v);
    if current.as_deref() == Some(v.public_key.as_str()) {
        return Ok(VerifyOutcome {
            message: format!("{message} (the expected collector key)"),
            origin_checked: true,
        });
    }
    if let Some(r) = retired.iter().find(|r| r.public_key == v.public_key) {
        if r.compromised {
            return Err(sign::IntegrityError::Invalid(format!(
                "signed by key {}, retired on {} as compromised: the bundle is no proof of origin /                  ditandatangani kunci yang dipensiunkan karena bocor, bukan bukti asal-usul",
                r.public_key, r.valid_until
            ))
            .into());
        }
        return Ok(VerifyOutcome {
            message: format!(
                "{message} (a retired key of this collector, valid from {} until {} / kunci lama                  kolektor ini, berlaku {} s.d. {})",
                or_unknown(&r.valid_from),
                r.valid_until,
                or_unknown(&r.valid_from),
                r.valid_until
            ),
            origin_checked: true,
        });
    }
    if let Some(exp) = current {
        let mut known = retired.len().to_string();
        known.push_str(" retired");
        return Err(sign::IntegrityError::Invalid(format!(
            "signed by key {}, not by the collector's key {exp} nor one of its {known} keys",
            v.public_key
        ))
        .into());
    }
    Ok(VerifyOutcome {
        message: format!(
            "{message}\nINTEGRITAS DIPERIKSA, ASAL-USUL TIDAK: isi bundel cocok dengan manifesnya, tetapi \
             siapa pun dapat menandatangani bundel dengan kuncinya sendiri. Bandingkan kunci di atas \
             dengan kunci publik resmi, atau ulangi dengan --public-key KUNCI-RESMI.\n\
             INTEGRITY CHECKED, ORIGIN WAS NOT: the files match the manifest, but anyone can sign a \
             bundle with their own key. Compare the key above with the official public key, or run \
             again with --public-key OFFICIAL-KEY. (exit code {EXIT_ORIGIN_NOT_CHECKED})"
        ),
        origin_checked: false,
    })
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "?" } else { s }
}

fn verified_text(v: &sign::Verified) -> String {
    format!(
        "OK: {} file(s) match the signed manifest in {}: {}\nsigned by Ed25519 key {}",
        v.files.len(),
        v.dir.display(),
        v.files.join(", "),
        v.public_key,
    )
}

/// `pantau-collector key ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCmd {
    /// Print the current public key and the retired ones with their validity.
    ///
    /// Example: pantau-collector key show
    Show,
    /// Retire the current key into `keys/` beside it and create a new one;
    /// bundles signed with the old key still verify. Restart the collector
    /// afterwards.
    ///
    /// Example: pantau-collector key rotate --compromised
    Rotate {
        /// The old secret may have leaked: `verify` refuses bundles it signed.
        #[arg(long)]
        compromised: bool,
    },
}

/// Run a `key` subcommand on the key at `key_path`.
pub fn key(key_path: &Path, cmd: KeyCmd) -> Result<String, CommandError> {
    match cmd {
        KeyCmd::Show => key_show(key_path),
        KeyCmd::Rotate { compromised } => key_rotate(key_path, compromised),
    }
}

/// `pantau-collector key show`: the current public key and the retired ones.
pub fn key_show(key_path: &Path) -> Result<String, CommandError> {
    let mut out = match sign::load_key(key_path)? {
        Some(k) => format!(
            "kunci aktif / current key: {} ({})\n",
            sign::public_hex(&k),
            key_path.display()
        ),
        None => format!(
            "belum ada kunci / no key yet at {} (created by the first report)\n",
            key_path.display()
        ),
    };
    for r in sign::history(key_path)? {
        out.push_str(&format!(
            "kunci lama / retired: {} berlaku / valid {} .. {}{}\n",
            r.public_key,
            or_unknown(&r.valid_from),
            r.valid_until,
            if r.compromised {
                " BOCOR / COMPROMISED"
            } else {
                ""
            }
        ));
    }
    Ok(out)
}

/// Run a `key` subcommand and record a rotation in the audit log of the
/// configured store.
pub fn key_audited(cfg: &CollectorConfig, cmd: KeyCmd) -> Result<String, CommandError> {
    let path = cfg.signing_key_path();
    let KeyCmd::Rotate { compromised } = cmd else {
        return key(&path, cmd);
    };
    let store = open(cfg)?;
    let store = &*store;
    let old = sign::load_key(&path)?.map(|k| sign::public_hex(&k));
    let msg = key_rotate(&path, compromised)?;
    let new = sign::load_key(&path)?.map(|k| sign::public_hex(&k));
    let before = serde_json::json!({"public_key": old});
    let after = serde_json::json!({"public_key": new, "old_compromised": compromised});
    audit::record(
        store,
        &Actor::cli(),
        Action::KeyRotate,
        "signing-key",
        before,
        after,
    )?;
    Ok(msg)
}

/// `pantau-collector key rotate`: retire the current key into `keys/` and
/// create a new one. The collector must be restarted to sign with it.
pub fn key_rotate(key_path: &Path, compromised: bool) -> Result<String, CommandError> {
    let (old, new) = sign::rotate(key_path, compromised, chrono::Utc::now())?;
    Ok(format!(
        "kunci baru / new key: {}\nkunci lama dipensiunkan / retired key: {} ({}{})\n\
         Mulai ulang kolektor agar memakai kunci baru, lalu terbitkan kunci publik baru. / Restart the \
         collector to sign with the new key, then publish the new public key.",
        sign::public_hex(&new),
        old.public_key,
        sign::history_dir(key_path)
            .join(format!("{}.pub", old.public_key))
            .display(),
        if compromised {
            ", BOCOR / COMPROMISED"
        } else {
            ""
        },
    ))
}

/// `pantau-collector maintenance`: through [`crate::admin::maintenance`],
/// the console's code path.
pub fn maintenance_add(
    cfg: &CollectorConfig,
    opd: Option<String>,
    group: Option<String>,
    from_ms: i64,
    to_ms: i64,
    reason: &str,
    by: &str,
) -> Result<String, CommandError> {
    let store = open(cfg)?;
    let w = crate::store::report::NewMaintenance {
        opd,
        group,
        from_ms,
        to_ms,
        reason: reason.to_string(),
        by: by.to_string(),
        at_ms: crate::store::now_ms(),
    };
    Ok(maintenance::create(&*store, &Actor::cli(), &w)?)
}

/// `pantau-collector maintenance-end ID`: the window ends now.
pub fn maintenance_end(cfg: &CollectorConfig, id: i64) -> Result<String, CommandError> {
    let store = open(cfg)?;
    Ok(maintenance::end(&*store, &Actor::cli(), id)?)
}

/// `pantau-collector maintenance-delete ID --reason TEXT`.
pub fn maintenance_delete(
    cfg: &CollectorConfig,
    id: i64,
    reason: &str,
) -> Result<String, CommandError> {
    let store = open(cfg)?;
    Ok(maintenance::delete(&*store, &Actor::cli(), id, reason)?)
}

/// `pantau-collector incident-note`.
pub fn incident_note(
    cfg: &CollectorConfig,
    opd: &str,
    group: &str,
    start_ms: i64,
    note: &str,
    ticket: &str,
    by: &str,
) -> Result<String, CommandError> {
    let store = open(cfg)?;
    let n = maintenance::Note {
        opd: opd.to_string(),
        group: group.to_string(),
        start_ms,
        note: note.to_string(),
        ticket: ticket.to_string(),
        by: by.to_string(),
    };
    Ok(maintenance::incident_note(&*store, &Actor::cli(), &n)?)
}

/// `pantau-collector opd contract ID --mbps N`.
/// The same audited path as `admin::opd`.
pub fn contract(cfg: &CollectorConfig, opd: &str, mbps: f64) -> Result<String, CommandError> {
    let mut out = Vec::new();
    let cmd = crate::cli::admin::OpdCmd::Contract {
        id: opd.to_string(),
        mbps,
    };
    crate::cli::admin::opd(cfg, cmd, &mut out).map_err(|e| CommandError::Usage(e.to_string()))?;
    Ok(String::from_utf8_lossy(&out).trim_end().to_string())
}

fn local(ms: i64, offset_min: i64) -> String {
    let zone = FixedOffset::east_opt((offset_min * 60) as i32)
        .unwrap_or(FixedOffset::east_opt(0).expect("UTC"));
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&zone).to_rfc3339())
        .unwrap_or_else(|| ms.to_string())
}

/// `pantau-collector incidents`: incidents (gangguan) of `opd` (or every
/// OPD) between two local days.
pub fn incidents(
    cfg: &CollectorConfig,
    opd: Option<String>,
    from: NaiveDate,
    to: NaiveDate,
    english: bool,
) -> Result<String, CommandError> {
    if to < from {
        return Err(CommandError::Usage("--to must not be before --from".into()));
    }
    let s = settings(cfg);
    let store = open(cfg)?;
    let store = &*store;
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
    let r = rollup::consistent(store, &s.rules, s.utc_offset_minutes, None, |c| {
        assemble(c, &s, &req)
    })?;
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

/// `pantau-collector maintenance-list`: recorded maintenance windows
/// touching `opd` (or all of them).
pub fn maintenance(cfg: &CollectorConfig, opd: Option<String>) -> Result<String, CommandError> {
    let store = open(cfg)?;
    let store = &*store;
    let rows = snapshot(store, |r: &dyn ReportRead| {
        r.maintenance(opd.as_deref(), None)
    })?;
    let off = cfg.display.utc_offset_minutes;
    let mut out = String::from("id\tOPD\tgroup\tfrom\tto\treason\tby\trecorded\n");
    for w in &rows {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            w.id,
            w.opd.as_deref().unwrap_or("*"),
            w.group.as_deref().unwrap_or("*"),
            local(w.from_ms, off),
            local(w.to_ms, off),
            w.reason,
            w.recorded_by,
            local(w.recorded_at_ms, off),
        ));
    }
    out.push_str(&format!(
        "{} jendela pemeliharaan / maintenance window(s)",
        rows.len()
    ));
    Ok(out)
}
