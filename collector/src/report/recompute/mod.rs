//! What a signed bundle carries so that every figure can be recomputed
//! without Pantau's code: the raw results (with group and both clocks), the
//! target catalogue, agents, agent sessions, maintenance windows, a README,
//! and `pantau-recompute.py`, an independent recomputation in Python
//! (standard library only) that compares its figures with the report JSON.

use rusqlite::{Connection, params};

use crate::store::StoreError;

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
/// README file name.
pub const README: &str = "README.txt";

fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}

/// One CSV field: quoted when it holds a separator, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A SQLite value as CSV text: NULL is empty.
fn cell(v: rusqlite::types::ValueRef<'_>) -> String {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Text(t) => field(&String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => hex::encode(b),
    }
}

/// Run `query` with `args` and write a CSV with `header`.
fn csv(
    conn: &Connection,
    op: &'static str,
    header: &str,
    query: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<u8>, StoreError> {
    let mut out = format!("{header}\n");
    let mut st = conn.prepare(query).map_err(sql(op))?;
    let n = st.column_count();
    let mut rows = st.query(args).map_err(sql(op))?;
    while let Some(r) = rows.next().map_err(sql(op))? {
        let cells: Vec<String> = (0..n)
            .map(|i| r.get_ref(i).map(cell))
            .collect::<Result<_, _>>()
            .map_err(sql(op))?;
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// The longest probe interval of the agents in scope: results that early
/// before the period still hold into its first minutes.
fn max_interval(conn: &Connection, opd: Option<&str>) -> Result<i64, StoreError> {
    conn.query_row(
        "SELECT COALESCE(MAX(t.interval_ms), 0) FROM target t JOIN agent a ON a.id = t.agent_id
         WHERE ?1 IS NULL OR a.opd_id = ?1",
        params![opd],
        |r| r.get(0),
    )
    .map_err(sql("max interval"))
}

/// Raw results of one OPD (or all) observed in `[from_ms - longest
/// interval, until_ms)`, with the target's group and both clocks.
pub fn raw_results(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    let from = from_ms - max_interval(conn, opd)?;
    csv(
        conn,
        "raw export",
        "agent,epoch,seq,opd,group,target,kind,observed_at_ms,agent_time_ms,clock_correction_ms,\
received_at_ms,outcome,value_ms,sent,received,late,clock_flag,data",
        "SELECT r.agent_id, r.epoch, r.seq, r.opd_id, t.grp, r.target_id, r.kind, r.observed_at_ms,
                r.agent_time_ms, r.clock_correction_ms, r.received_at_ms, r.outcome, r.value_ms,
                r.sent, r.received, r.late, r.clock_flag,
                CASE WHEN r.kind IN ('bandwidth', 'link') THEN r.data ELSE '' END
         FROM result r LEFT JOIN target t ON t.agent_id = r.agent_id AND t.id = r.target_id
         WHERE r.observed_at_ms >= ?1 AND r.observed_at_ms < ?2 AND (?3 IS NULL OR r.opd_id = ?3)
         ORDER BY r.opd_id, r.agent_id, r.epoch, r.seq",
        params![from, until_ms, opd],
    )
}

/// Every target of the agents in scope, with the earliest result of its agent
/// (monitoring may start before the first declaration when spooled results
/// arrive).
pub fn targets(conn: &Connection, opd: Option<&str>) -> Result<Vec<u8>, StoreError> {
    csv(
        conn,
        "target catalogue export",
        "agent,opd,id,group,kind,address,label,interval_ms,timeout_ms,first_seen_ms,last_declared_ms,\
agent_first_result_ms",
        "SELECT t.agent_id, a.opd_id, t.id, t.grp, t.kind, t.address, t.label, t.interval_ms, t.timeout_ms,
                t.first_seen_ms, t.last_declared_ms,
                (SELECT MIN(r.observed_at_ms) FROM result r WHERE r.agent_id = t.agent_id AND r.clock_flag IS NULL)
         FROM target t JOIN agent a ON a.id = t.agent_id
         WHERE ?1 IS NULL OR a.opd_id = ?1 ORDER BY a.opd_id, t.agent_id, t.id",
        params![opd],
    )
}

/// Agents in scope with the collector's clock offset estimate.
pub fn agents(conn: &Connection, opd: Option<&str>) -> Result<Vec<u8>, StoreError> {
    csv(
        conn,
        "agent export",
        "agent,opd,clock_offset_ms,last_hello_ms,version",
        "SELECT id, opd_id, clock_offset_ms, last_hello_ms, version FROM agent
         WHERE ?1 IS NULL OR opd_id = ?1 ORDER BY opd_id, id",
        params![opd],
    )
}

/// Stream sessions of the agents in scope that overlap `[from_ms, until_ms)`.
pub fn sessions(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    until_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    csv(
        conn,
        "session export",
        "id,agent,epoch,connected_at_ms,disconnected_at_ms,end_reason",
        "SELECT s.id, s.agent_id, s.epoch, s.connected_at_ms, s.disconnected_at_ms, s.end_reason
         FROM agent_session s JOIN agent a ON a.id = s.agent_id
         WHERE (?1 IS NULL OR a.opd_id = ?1) AND s.connected_at_ms < ?3
           AND (s.disconnected_at_ms IS NULL OR s.disconnected_at_ms > ?2)
         ORDER BY s.agent_id, s.connected_at_ms",
        params![opd, from_ms, until_ms],
    )
}

/// Maintenance windows that apply to the scope and overlap the period.
pub fn maintenance(
    conn: &Connection,
    opd: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<u8>, StoreError> {
    csv(
        conn,
        "maintenance export",
        "id,opd,group,from_ms,to_ms,reason,recorded_by,recorded_at_ms",
        "SELECT id, opd_id, grp, from_ms, to_ms, reason, recorded_by, recorded_at_ms FROM maintenance
         WHERE (?1 IS NULL OR opd_id IS NULL OR opd_id = ?1) AND from_ms < ?3 AND to_ms > ?2
         ORDER BY from_ms, id",
        params![opd, from_ms, to_ms],
    )
}

/// The bundle's README (Indonesian, then English): what each file holds.
pub fn readme(report_files: &[String], raw: &str) -> Vec<u8> {
    let reports = report_files.join(", ");
    format!(
        "BUNDEL BUKTI PANTAU (bertanda tangan)
=====================================
Semua waktu dalam milidetik sejak 1970-01-01 UTC (*_ms). Berkas CSV memakai koma dan baris judul.

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
{SCRIPT_NAME}
    Perhitungan ulang independen (Python 3, pustaka standar saja). Jalankan:
        python3 {SCRIPT_NAME} FOLDER-BUNDEL-ATAU-BERKAS.tar
    Kode keluar: 0 semua angka sama, 1 ada yang berbeda (didaftar), 2 masukan tidak dapat dipakai.
MANIFEST.txt, MANIFEST.sig
    SHA-256 setiap berkas dan tanda tangan Ed25519. Periksa dengan kunci publik resmi:
        pantau-collector verify FOLDER-BUNDEL-ATAU-BERKAS.tar --public-key KUNCI

PANTAU EVIDENCE BUNDLE (signed)
===============================
All times are milliseconds since 1970-01-01 UTC (*_ms). CSV files use commas and a header line.

{reports}: the report; the .json file is always present: the figures pantau-recompute.py compares.
{raw}: raw results of the period (from one longest interval before it, up to meta.data_until_ms);
    observed_at_ms is where a result is placed, agent_time_ms the agent's own clock,
    clock_correction_ms the correction applied; a non-empty clock_flag is never counted.
{TARGETS}: every target of the agents in scope, with the earliest result of its agent.
{AGENTS}: agents and the collector's clock offset estimate. {SESSIONS}: agent stream sessions.
{MAINTENANCE}: maintenance windows (empty opd/group = all).
{SCRIPT_NAME}: independent recomputation (Python 3, standard library only):
    python3 {SCRIPT_NAME} BUNDLE-DIR-OR-FILE.tar   (exit 0 all equal, 1 differences, 2 unusable input)
MANIFEST.txt, MANIFEST.sig: SHA-256 of every file and the Ed25519 signature; check with the official key:
    pantau-collector verify BUNDLE-DIR-OR-FILE.tar --public-key KEY
"
    )
    .into_bytes()
}
