//! The signed evidence bundle: the report, its JSON, the raw results of the
//! period, the data and script to recompute every figure, a README and the
//! signed manifest ([`sign`]).

use super::{
    Format, RawExport, Request, Settings, assemble, progress, recompute, render, render_as, rollup,
    sign,
};
use crate::store::StoreError;
use crate::store::report::{ReportBackend, ReportRead};

/// Refresh rollups, assemble, render and sign a bundle into `dir`: the report,
/// the raw results of the period and the signed manifest. Returns the
/// report file name.
pub fn produce_bundle(
    conn: &dyn ReportBackend,
    s: &Settings,
    req: &Request,
    format: Format,
    key: &ed25519_dalek::SigningKey,
    dir: &std::path::Path,
) -> Result<String, sign::IntegrityError> {
    progress::step(
        "Memperbarui rekap per jam dan per hari",
        "Refreshing the hourly and daily rollups",
    );
    let (name, files) = rollup::consistent(
        conn,
        &s.rules,
        s.utc_offset_minutes,
        req.opd.as_deref(),
        |c| bundle_files(c, s, req, format, key),
    )?;
    progress::step(
        "Menandatangani dan menulis bundel",
        "Signing and writing the bundle",
    );
    sign::write_bundle(dir, &files, key)?;
    Ok(name)
}

/// The files of a signed bundle (rollups must be fresh): the report, its
/// JSON (always: the figures the recomputation script compares), the raw
/// results, the data and script to recompute every figure (see
/// [`recompute`]), and a README. Returns the report file name and the files.
pub fn bundle_files(
    conn: &dyn ReportRead,
    s: &Settings,
    req: &Request,
    format: Format,
    key: &ed25519_dalek::SigningKey,
) -> Result<(String, sign::Files), StoreError> {
    use sha2::Digest as _;
    progress::step("Membaca rekap periode", "Reading the period's rollups");
    let mut r = assemble(conn, s, req)?;
    r.meta.public_key = Some(sign::public_hex(key));
    let scope = req.opd.clone().unwrap_or_else(|| "provinsi".into());
    let base = format!("laporan-{scope}-{}-{}", req.from, req.to);
    let name = format!("{base}.{}", format.ext());
    progress::step("Mengekspor hasil mentah", "Exporting the raw results");
    let opd = req.opd.as_deref();
    let (from_ms, to_ms, until_ms) = (r.meta.from_ms, r.meta.to_ms, r.meta.data_until_ms);
    let raw = recompute::raw_results(conn, opd, from_ms, until_ms)?;
    let raw_name = format!("hasil-mentah-{scope}-{}-{}.csv", req.from, req.to);
    r.meta.raw_export = Some(RawExport {
        file: raw_name.clone(),
        sha256: hex::encode(sha2::Sha256::digest(&raw)),
    });
    progress::step(
        &format!("Menulis laporan {}", format.ext()),
        &format!("Writing the {} report", format.ext()),
    );
    let mut files = vec![(name.clone(), render_as(&r, format))];
    if format != Format::Json {
        files.push((format!("{base}.json"), render::json::json(&r)));
    }
    let reports: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    files.extend([
        (raw_name.clone(), raw),
        (recompute::TARGETS.into(), recompute::targets(conn, opd)?),
        (recompute::AGENTS.into(), recompute::agents(conn, opd)?),
        (
            recompute::SESSIONS.into(),
            recompute::sessions(conn, opd, from_ms, until_ms)?,
        ),
        (
            recompute::MAINTENANCE.into(),
            recompute::maintenance(conn, opd, from_ms, to_ms)?,
        ),
        (
            recompute::AUDIT.into(),
            recompute::audit(conn, opd, from_ms, to_ms)?,
        ),
        (
            recompute::README.into(),
            recompute::readme(&reports, &raw_name),
        ),
        (
            recompute::SCRIPT_NAME.into(),
            recompute::SCRIPT.as_bytes().to_vec(),
        ),
    ]);
    Ok((name, files))
}
