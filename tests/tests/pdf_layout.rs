//! The PDF report as a reader and an archive see it: real reports made by
//! `pantau-collector report --format pdf` from a data directory with a day
//! of results, read back with poppler (`pdftotext -bbox-layout`, `pdffonts`,
//! `pdfinfo -meta`):
//!
//! - every word lies inside the page margins and no two words overlap;
//! - the availability table's header row holds exactly the model's header
//!   words (headers wrap between words, never inside one) and every number
//!   under it lies inside its own column;
//! - PDF/A-2b metadata (pdfaid:part 2, conformance B), every font an
//!   embedded subset (`ABCDEF+` names, `emb yes`, `sub yes`);
//! - Unicode text (Indonesian and symbols like ≥ µ –) extracts as itself;
//! - the letterhead (agency, unit, logo) and the sign-off block are there;
//! - an OPD report stays under 150 KB (its size is printed).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pantau_collector::model::{Outcome, ProbeKind, ResultRow, TargetDecl};
use pantau_collector::report::Lang;
use pantau_collector::report::render::group_headers;

/// 2026-11-02 00:00 WITA (UTC+8) = 2026-11-01T16:00:00Z.
const DAY0: i64 = 1_793_548_800_000;

/// Hard margin no word may cross, points.
const MARGIN: f64 = 36.0;

/// Agency and unit with characters outside cp1252 (≥ µ –).
const AGENCY: &str = "Pemerintah Provinsi Sulawesi Barat – Uji ≥ µ";
const UNIT: &str = "Dinas Komunikasi, Informatika dan Persandian";

fn targets() -> Vec<TargetDecl> {
    vec![
        decl("pusdat", "intranet", "icmp", 30_000),
        decl("gw-opd", "intranet", "icmp", 30_000),
        decl("inet-a", "internet", "tcp", 30_000),
        decl("inet-b", "internet", "tcp", 30_000),
        decl("simpeg", "app", "http", 30_000),
        decl("sipd", "app", "http", 30_000),
    ]
}

/// Down minutes per target (local minutes of the day); none between 1000
/// and 1030 (the agent off).
fn down(target: &str, m: i64) -> Option<bool> {
    if (1000..1030).contains(&m) {
        return None;
    }
    let every = |n: i64| m % n == 7;
    Some(match target {
        "pusdat" => (600..610).contains(&m),
        "gw-opd" => (600..610).contains(&m) || (100..130).contains(&m),
        "inet-a" => (300..400).contains(&m) || (700..720).contains(&m) || every(97),
        "inet-b" => (700..720).contains(&m),
        "simpeg" => (800..806).contains(&m) || every(211),
        _ => (1200..1290).contains(&m),
    })
}

fn seed(data: &Path) {
    for (opd, agent) in [("dinkes", "dinkes-1"), ("disdik", "disdik-1")] {
        enrol(data, opd, agent);
        declare(data, opd, agent, targets());
        let mut rows = Vec::new();
        let mut seq = 0;
        for m in 0..1440 {
            for t in targets() {
                let Some(d) = down(&t.id, m) else { continue };
                // disdik loses a different hour of its internet.
                let d = d
                    || (opd == "disdik"
                        && t.group.to_string() == "internet"
                        && (900..960).contains(&m));
                for half in [5_000, 35_000] {
                    seq += 1;
                    let icmp = t.kind == ProbeKind::Icmp;
                    let at = DAY0 + m * 60_000 + half;
                    rows.push(ResultRow {
                        epoch: 1,
                        seq,
                        target_id: t.id.clone(),
                        group: t.group.to_string(),
                        kind: t.kind.into(),
                        observed_at_ms: at,
                        outcome: if d { Outcome::Timeout } else { Outcome::Ok },
                        detail: String::new(),
                        value_ms: (!d).then_some(if icmp { 12.0 + (m % 7) as f64 } else { 140.0 }),
                        sent: icmp.then_some(5),
                        received: icmp.then_some(if d { 0 } else { 5 }),
                        data: serde_json::json!({}),
                        late: false,
                        clock_flag: None,
                        agent_time_ms: at,
                        clock_correction_ms: None,
                    });
                }
            }
        }
        store_rows(data, opd, agent, &rows, DAY0 + 86_400_000);
    }
}

/// A small PNG (stored deflate blocks), 96 x 48, a blue field with a band.
fn png() -> Vec<u8> {
    fn crc(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let (w, h) = (96u32, 48u32);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            let band = (y as i64 - x as i64 / 2).abs() < 4;
            raw.extend_from_slice(if band {
                &[240, 200, 40]
            } else {
                &[20, 70, 160]
            });
        }
    }
    let mut z = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, c) in chunks.iter().enumerate() {
        z.push(u8::from(i + 1 == chunks.len()));
        let n = c.len() as u16;
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&(!n).to_le_bytes());
        z.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for x in &raw {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    out
}

fn config(dir: &Path) -> PathBuf {
    let logo = dir.join("logo.png");
    std::fs::write(&logo, png()).unwrap();
    let p = dir.join("collector.toml");
    std::fs::write(
        &p,
        format!(
            "[display]\nagency = \"{AGENCY}\"\n\
             [report]\nunit = \"{UNIT}\"\nletterhead_logo = \"{}\"\n\
             [report.signoff]\nname = \"Andi Saputra, S.Kom.\"\nnip = \"19800101 200501 1 001\"\n\
             position = \"Kepala Bidang Persandian\"\nplace = \"Mamuju\"\n",
            logo.display()
        ),
    )
    .unwrap();
    p
}

/// `report --format pdf` for `opd` with the test's configuration.
fn make(data: &Path, cfg: &Path, opd: &str, out: &Path) -> PathBuf {
    let (code, stdout, stderr) = collector_cli(
        data,
        Some(cfg),
        &[
            "report",
            "--opd",
            opd,
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--format",
            "pdf",
            "--number",
            "005/DISKOMINFO/XI/2026",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "report failed: {stderr}");
    // The renderer warns when PDF/A validation refused the document.
    assert!(!stderr.contains("PDF/A"), "{stderr}");
    let p = PathBuf::from(stdout.lines().next().unwrap_or_default());
    assert!(p.exists(), "{p:?}: {stdout}");
    if let Ok(keep) = std::env::var("PANTAU_KEEP_PDF") {
        std::fs::copy(&p, Path::new(&keep).join(format!("{opd}.pdf"))).unwrap();
    }
    p
}

fn poppler(tool: &str, args: &[&str], p: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(p)
        .args(if tool == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("{tool} (poppler-utils): {e}"));
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[derive(Debug, Clone)]
struct Word {
    page: usize,
    line: usize,
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    text: String,
}

/// Attribute `name="..."` of an XML tag as a number.
fn attr(tag: &str, name: &str) -> f64 {
    let start = tag
        .find(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("{name} in {tag}"))
        + name.len()
        + 3;
    let end = start + tag[start..].find('"').unwrap();
    tag[start..end].parse().unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Pages (width, height) and words of `pdftotext -bbox-layout`.
fn words(p: &Path) -> (Vec<(f64, f64)>, Vec<Word>) {
    let xml = poppler("pdftotext", &["-bbox-layout"], p);
    let mut pages = Vec::new();
    let mut out = Vec::new();
    let mut line = 0;
    for part in xml.split('<').skip(1) {
        let (tag, rest) = part.split_once('>').unwrap_or((part, ""));
        if tag.starts_with("page ") {
            pages.push((attr(tag, "width"), attr(tag, "height")));
        } else if tag.starts_with("line") {
            line += 1;
        } else if tag.starts_with("word ") {
            out.push(Word {
                page: pages.len(),
                line,
                x0: attr(tag, "xMin"),
                y0: attr(tag, "yMin"),
                x1: attr(tag, "xMax"),
                y1: attr(tag, "yMax"),
                text: unescape(rest),
            });
        }
    }
    (pages, out)
}

fn overlap(a: &Word, b: &Word) -> f64 {
    let w = a.x1.min(b.x1) - a.x0.max(b.x0);
    let h = a.y1.min(b.y1) - a.y0.max(b.y0);
    if w > 0.0 && h > 0.0 { w.min(h) } else { 0.0 }
}

fn is_number(s: &str) -> bool {
    let s = s.trim_end_matches('%');
    !s.is_empty()
        && s != "-"
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == '.' || c == '-')
        && s.chars().any(|c| c.is_ascii_digit())
}

/// Inside the margins and no overlaps: every word of every page.
fn check_boxes(name: &str, pages: &[(f64, f64)], ws: &[Word]) {
    assert!(!ws.is_empty(), "{name}: no text");
    for w in ws {
        let (pw, ph) = pages[w.page - 1];
        assert!(
            w.x0 >= MARGIN
                && w.x1 <= pw - MARGIN
                && w.y0 >= MARGIN * 0.8
                && w.y1 <= ph - MARGIN * 0.8,
            "{name}: word outside the margins: {w:?}"
        );
    }
    for (i, a) in ws.iter().enumerate() {
        for b in ws[i + 1..].iter().filter(|b| b.page == a.page) {
            // Words of one line may touch; of two lines they may not meet.
            let tol = if a.line == b.line { 0.6 } else { 0.05 };
            assert!(
                overlap(a, b) <= tol,
                "{name}: words overlap on page {}: {a:?} and {b:?}",
                a.page
            );
        }
    }
}

/// Headings (lines set 11 pt or larger; a word box is one em high) are not clipped by what follows:
/// the next line under a heading starts at least 2.5 pt below the heading's
/// descenders (a table's top border drawn at the heading's baseline cut
/// them before).
fn check_heading_room(name: &str, ws: &[Word]) {
    // Line boxes: (page, x0, y0, x1, y1) per pdftotext line.
    let mut lines: Vec<(usize, f64, f64, f64, f64)> = Vec::new();
    let mut last = usize::MAX;
    for w in ws {
        if w.line == last {
            let l = lines.last_mut().expect("a line");
            l.1 = l.1.min(w.x0);
            l.2 = l.2.min(w.y0);
            l.3 = l.3.max(w.x1);
            l.4 = l.4.max(w.y1);
        } else {
            lines.push((w.page, w.x0, w.y0, w.x1, w.y1));
            last = w.line;
        }
    }
    let mut headings = 0;
    for h in lines.iter().filter(|l| l.4 - l.2 > 10.9) {
        let next = lines
            .iter()
            .filter(|l| l.0 == h.0 && l.2 > h.2 + 1.0 && l.1 < h.3 && l.3 > h.1)
            .min_by(|a, b| a.2.total_cmp(&b.2));
        if let Some(n) = next {
            headings += 1;
            assert!(
                n.2 - h.4 >= 2.5,
                "{name}: the line under a heading starts {:.2} pt below it: {h:?} then {n:?}",
                n.2 - h.4
            );
        }
    }
    assert!(headings >= 5, "{name}: only {headings} headings found");
}

/// The availability table's header row: exactly the model's header words,
/// and every number under a column inside that column's x-range.
fn check_table(name: &str, pages: &[(f64, f64)], ws: &[Word]) {
    let heads = group_headers(Lang::Id);
    let first = heads[0].split(' ').next().unwrap();
    let second = heads[1].split(' ').next().unwrap();
    // The header row: the first word of the first header with the second
    // header's first word beside it.
    let start = ws
        .iter()
        .position(|w| {
            w.text == first
                && ws.iter().any(|v| {
                    v.page == w.page && v.text == second && (v.y0 - w.y0).abs() < 1.0 && v.x0 > w.x1
                })
        })
        .unwrap_or_else(|| {
            panic!("{name}: availability header row {first:?} {second:?} not found")
        });
    let top = &ws[start];
    // The row ends where the first number below it starts.
    let bottom = ws
        .iter()
        .filter(|w| w.page == top.page && w.y0 > top.y1 && is_number(&w.text))
        .map(|w| w.y0)
        .fold(f64::INFINITY, f64::min);
    let mut row: Vec<&Word> = ws
        .iter()
        .filter(|w| w.page == top.page && w.y0 >= top.y0 - 0.5 && w.y1 <= bottom)
        .collect();
    let mut got: Vec<&str> = row.iter().map(|w| w.text.as_str()).collect();
    let mut want: Vec<&str> = heads.iter().flat_map(|h| h.split(' ')).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "{name}: header words are the model's whole words"
    );
    // Column left edges: each header's first word, left to right.
    row.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    let mut lefts: Vec<f64> = Vec::new();
    for h in &heads {
        let w = h.split(' ').next().unwrap();
        let after = lefts.last().copied().unwrap_or(f64::MIN);
        let x = row
            .iter()
            .filter(|r| r.text == w && r.x0 > after + 0.5)
            .map(|r| r.x0)
            .next()
            .unwrap_or_else(|| panic!("{name}: header {h:?} not placed after {after}"));
        lefts.push(x);
    }
    let right = pages[top.page - 1].0 - MARGIN;
    // Numbers in the rows below (the five groups), each within its column.
    let mut checked = 0;
    for w in ws
        .iter()
        .filter(|w| w.page == top.page && w.y0 >= bottom && w.y0 < bottom + 60.0)
        .filter(|w| is_number(&w.text) && w.x0 >= lefts[0])
    {
        let c = lefts.iter().rposition(|l| *l <= w.x0 + 0.5).unwrap();
        let limit = lefts.get(c + 1).copied().unwrap_or(right);
        assert!(
            w.x1 <= limit,
            "{name}: number {w:?} leaves column {c} ({}..{limit})",
            lefts[c]
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "{name}: only {checked} numbers under the header"
    );
}

fn check_archive(name: &str, p: &Path) {
    let meta = poppler("pdfinfo", &["-meta"], p);
    let part = meta.contains("<pdfaid:part>2</pdfaid:part>") || meta.contains("pdfaid:part=\"2\"");
    let conf = meta.contains("<pdfaid:conformance>B</pdfaid:conformance>")
        || meta.contains("pdfaid:conformance=\"B\"");
    assert!(
        part && conf,
        "{name}: no PDF/A-2b identification in XMP:\n{meta}"
    );
    let fonts = poppler("pdffonts", &[], p);
    let rows: Vec<&str> = fonts
        .lines()
        .skip(2)
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!rows.is_empty(), "{name}: no fonts:\n{fonts}");
    for r in rows {
        let f: Vec<&str> = r.split_whitespace().collect();
        let font = f[0];
        let (prefix, base) = font.split_once('+').unwrap_or(("", font));
        assert!(
            prefix.len() == 6 && prefix.chars().all(|c| c.is_ascii_uppercase()),
            "{name}: font {font} is not a subset:\n{fonts}"
        );
        assert!(base.starts_with("DejaVuSans"), "{name}: {font}");
        // name type [type] encoding emb sub uni object ID: emb and sub are
        // the 4th and 3rd fields from the end before "uni".
        let n = f.len();
        assert_eq!(
            (f[n - 5], f[n - 4]),
            ("yes", "yes"),
            "{name}: {font} not an embedded subset:\n{fonts}"
        );
    }
}

#[test]
fn pdf_reports_lay_out_cleanly_and_are_pdfa_subsets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let cfg = config(dir.path());
    for (opd, dir_name) in [("all", "prov"), ("dinkes", "opd")] {
        let pdf = make(&data, &cfg, opd, &dir.path().join(dir_name));
        let name = format!("report --opd {opd}");
        let size = std::fs::metadata(&pdf).unwrap().len();
        let (pages, ws) = words(&pdf);
        println!(
            "{name}: {} page(s), {size} bytes ({} KB)",
            pages.len(),
            size / 1024
        );
        check_boxes(&name, &pages, &ws);
        check_table(&name, &pages, &ws);
        check_heading_room(&name, &ws);
        check_archive(&name, &pdf);
        let text = poppler("pdftotext", &["-layout"], &pdf);
        // Unicode text extracts as itself; the letterhead and sign-off.
        for want in [
            AGENCY,
            UNIT,
            "Mamuju, ",
            "Kepala Bidang Persandian",
            "Andi Saputra, S.Kom.",
            "NIP 19800101 200501 1 001",
            "ditandatangani secara elektronik",
            "MANIFEST.sig",
        ] {
            assert!(text.contains(want), "{name}: missing {want:?} in:\n{text}");
        }
        assert!(!text.contains('?'), "{name}: a character was lost:\n{text}");
        // No heading without content: this day has no traceroute paths.
        assert!(
            !text.contains("Lampiran: Topologi"),
            "{name}: empty appendix:\n{text}"
        );
        assert!(text.contains("Keabsahan dokumen"), "{name}: {text}");
        // Section numbers are consecutive from 1.
        let mut majors: Vec<u32> = text
            .lines()
            .filter_map(|l| {
                let l = l.trim_start();
                let digits: String = l.chars().take_while(char::is_ascii_digit).collect();
                let rest = &l[digits.len()..];
                (!digits.is_empty()
                    && rest.starts_with(". ")
                    && rest[2..].starts_with(char::is_uppercase))
                .then(|| digits.parse().unwrap())
            })
            .collect();
        majors.dedup();
        let want: Vec<u32> = (1..=majors.len() as u32).collect();
        assert_eq!(majors, want, "{name}: section numbers\n{text}");
        if opd != "all" {
            assert!(
                size < 150 * 1024,
                "{name}: {size} bytes for {} pages",
                pages.len()
            );
        }
    }
    // PANTAU_KEEP_PDF also keeps the data directory and configuration (to
    // render the same day with another build).
    if std::env::var_os("PANTAU_KEEP_PDF").is_some() {
        println!("data kept in {}", dir.keep().display());
    }
}

#[test]
fn a_bad_letterhead_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let not_png = dir.path().join("logo.png");
    std::fs::write(&not_png, "not an image").unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(
        &path,
        format!(
            "[report]\nunit = \"\"\nletterhead_logo = \"{}\"\n",
            not_png.display()
        ),
    )
    .unwrap();
    let out = Command::new(bin("pantau-collector"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    assert!(
        err.contains(&format!(
            "{file}: report.letterhead_logo: {} is not a PNG image",
            not_png.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}: report.unit: must be one line")),
        "{err}"
    );
    // A relative path is refused too (it would depend on the working directory).
    std::fs::write(&path, "[report]\nletterhead_logo = \"logo.png\"\n").unwrap();
    let out = Command::new(bin("pantau-collector"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("report.letterhead_logo: logo.png must be an absolute path"),
        "{err}"
    );
}
