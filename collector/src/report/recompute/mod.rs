//! What a signed bundle carries so that every figure can be recomputed
//! without Pantau's code: the raw results (with group and both clocks), the
//! target catalogue, agents, agent sessions, maintenance windows, a README,
//! and `pantau-recompute.py`, an independent recomputation in Python
//! (standard library only) that compares its figures with the report JSON.

use crate::store::StoreError;
use crate::store::report::{Export, ExportValue, ReportRead};

/// The recomputation script, shipped in every bundle.
pub const SCRIPT: &str = include_str!("pantau-recompute.py");
/// Its file name in a bundle.
pub const SCRIPT_NAME: &str = "pantau-recompute.py";
/// Target catalogue file name.
pub const TARGETS: &str = "katalog-target.csv";
/// Agents file name.
pub const AGENTS: &str = "agen.csv";
/// Agent sessions file name.
pub const SESSIONS: &str = "sesi-agen.csv";
/// Maintenance windows file name.
pub const MAINTENANCE: &str = "pemeliharaan.csv";
/// Audit entries touching the period, with their chain hashes.
pub const AUDIT: &str = "audit.jsonl";
/// README file name.
pub const README: &str = "README.txt";

use crate::report::render::csv::field;

/// A stored value as one CSV field (quoted and neutralised, see
/// [`crate::report::render::csv`]); NULL is the empty field.
fn cell(v: &ExportValue) -> String {
    match v {
        ExportValue::Null => field(""),
        ExportValue::Int(i) => field(&i.to_string()),
        ExportValue::Real(f) => field(&f.to_string()),
        ExportValue::Text(t) => field(t),
        ExportValue::Blob(b) => field(&hex::encode(b)),
    }
}

/// Export `what` as a CSV with `header` (comma-separated names).
fn csv(r: &dyn ReportRead, header: &str, what: Export<'_>) -> Result<Vec<u8>, StoreError> {
    let names: Vec<&str> = header.split(',').collect();
    let mut out = crate::report::render::csv::line(&names);
    r.export(what, &mut |row| {
        let cells: Vec<String> = row.iter().map(cell).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    })?;
    Ok(out.into_bytes())
}

/// Raw results of one OPD (or all) observed in `[from_ms - longest
/// interval, until_ms)`, with the target's group and both clocks.
pub fn raw_results(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    // Results that early before the period still hold into its first minutes.
    let from = from_ms - r.max_interval(opd)?;
    csv(
        r,
        "agent,epoch,seq,opd,group,target,kind,observed_at_ms,agent_time_ms,clock_correction_ms,\
received_at_ms,outcome,value_ms,sent,received,late,clock_flag,data",
        Export::RawResults {
            opd,
            from_ms: from,
            until_ms,
        },
    )
}

/// Every target of the agents in scope, with the earliest result of its agent
/// (monitoring may start before the first declaration when spooled results
/// arrive).
pub fn targets(r: &dyn ReportRead, opd: Option<&str>) -> Result<Vec<u8>, StoreError> {
    csv(
        r,
        "agent,opd,id,group,kind,address,label,interval_ms,timeout_ms,first_seen_ms,last_declared_ms,\
agent_first_result_ms",
        Export::Targets { opd },
    )
}

/// Agents in scope with the collector's clock offset estimate.
pub fn agents(r: &dyn ReportRead, opd: Option<&str>) -> Result<Vec<u8>, StoreError> {
    csv(
        r,
        "agent,opd,clock_offset_ms,last_hello_ms,version",
        Export::Agents { opd },
    )
}

/// Stream sessions of the agents in scope that overlap `[from_ms, until_ms)`.
pub fn sessions(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    csv(
        r,
        "id,agent,epoch,connected_at_ms,disconnected_at_ms,end_reason",
        Export::Sessions {
            opd,
            from_ms,
            until_ms,
        },
    )
}

/// Maintenance windows that apply to the scope and overlap the period.
pub fn maintenance(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    csv(
        r,
        "id,opd,group,from_ms,to_ms,reason,recorded_by,recorded_at_ms",
        Export::Maintenance {
            opd,
            from_ms,
            to_ms,
        },
    )
}

/// The audit entries that touch the report's period and scope (see
/// [`crate::audit::touches_period`]) as JSON lines with their chain hashes.
pub fn audit(
    r: &dyn ReportRead,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let all = r.audit_entries(&crate::store::audit::AuditQuery::default())?;
    let mine: Vec<_> = all
        .into_iter()
        .filter(|e| crate::audit::touches_period(e, opd, from_ms, to_ms))
        .collect();
    Ok(crate::audit::to_jsonl(&mine).into_bytes())
}

/// The bundle's README (Indonesian, then English): what each file holds.
pub fn readme(report_files: &[String], raw: &str) -> Vec<u8> {
    let reports = report_files.join(", ");
    format!(
        "BUNDEL BUKTI PANTAU (bertanda tangan)
=====================================
Semua waktu dalam milidetik sejak 1970-01-01 UTC (*_ms). Berkas CSV memakai koma dan baris judul;
setiap kolom berkutip (\"), dan teks yang diawali = + - @ TAB CR atau ' diberi ' di depannya agar tidak
dijalankan sebagai rumus oleh spreadsheet: buang satu ' di awal untuk mendapatkan teks aslinya.

{reports}
    Laporan. Berkas .json selalu ada: angka yang dibandingkan oleh pantau-recompute.py.
{raw}
    Hasil mentah periode (mulai satu interval terpanjang sebelum periode, sampai meta.data_until_ms):
    agent, epoch, seq, opd, group, target, kind, observed_at_ms (waktu penempatan), agent_time_ms
    (jam agen), clock_correction_ms (koreksi jam yang diterapkan), received_at_ms, outcome, value_ms,
    sent, received, late, clock_flag (terisi = tidak dihitung), data.
{TARGETS}
    Katalog target semua agen dalam cakupan: agent, opd, id, group, kind, address, label, interval_ms,
    timeout_ms, first_seen_ms, last_declared_ms, agent_first_result_ms (hasil paling awal agen itu yang jamnya tepercaya / the agent's earliest result with a trusted time).
{AGENTS}
    Agen: agent, opd, clock_offset_ms (perkiraan selisih jam kolektor - agen), last_hello_ms, version.
{SESSIONS}
    Sesi aliran agen: id, agent, epoch, connected_at_ms, disconnected_at_ms, end_reason.
{MAINTENANCE}
    Jendela pemeliharaan: id, opd, group (kosong = semua), from_ms, to_ms, reason, recorded_by,
    recorded_at_ms.
{AUDIT}
    Entri log audit yang menyentuh periode (jendela pemeliharaan, catatan gangguan, rotasi kunci,
    perubahan kontrak), satu JSON per baris dengan seq, prev_hash dan hash rantainya; diperiksa oleh
    {SCRIPT_NAME} dan `pantau-collector verify`, dan dapat dicocokkan dengan `pantau-collector audit list`.
{SCRIPT_NAME}
    Perhitungan ulang independen (Python 3, pustaka standar saja). Jalankan:
        python3 {SCRIPT_NAME} FOLDER-BUNDEL-ATAU-BERKAS.tar
    Kode keluar: 0 semua angka sama, 1 ada yang berbeda (didaftar), 2 masukan tidak dapat dipakai.
MANIFEST.txt, MANIFEST.sig
    SHA-256 setiap berkas dan tanda tangan Ed25519. Periksa dengan kunci publik resmi:
        pantau-collector verify FOLDER-BUNDEL-ATAU-BERKAS.tar --public-key KUNCI

PANTAU EVIDENCE BUNDLE (signed)
===============================
All times are milliseconds since 1970-01-01 UTC (*_ms). CSV files use commas and a header line;
every field is quoted (\"), and a text starting with = + - @ TAB CR or ' has a ' put in front so that no
spreadsheet runs it as a formula: drop one leading ' to get the original text back.

{reports}: the report; the .json file is always present: the figures pantau-recompute.py compares.
{raw}: raw results of the period (from one longest interval before it, up to meta.data_until_ms);
    observed_at_ms is where a result is placed, agent_time_ms the agent's own clock,
    clock_correction_ms the correction applied; a non-empty clock_flag is never counted.
{TARGETS}: every target of the agents in scope, with the earliest result of its agent.
{AGENTS}: agents and the collector's clock offset estimate. {SESSIONS}: agent stream sessions.
{MAINTENANCE}: maintenance windows (empty opd/group = all).
{AUDIT}: audit entries touching the period (maintenance windows, incident notes, key rotations,
    contract changes), one JSON per line with seq, prev_hash and hash; {SCRIPT_NAME} and
    `pantau-collector verify` check their chain segment; compare with `pantau-collector audit list`.
{SCRIPT_NAME}: independent recomputation (Python 3, standard library only):
    python3 {SCRIPT_NAME} BUNDLE-DIR-OR-FILE.tar   (exit 0 all equal, 1 differences, 2 unusable input)
MANIFEST.txt, MANIFEST.sig: SHA-256 of every file and the Ed25519 signature; check with the official key:
    pantau-collector verify BUNDLE-DIR-OR-FILE.tar --public-key KEY
"
    )
    .into_bytes()
}
