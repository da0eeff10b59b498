//! SPBE reports end to end: a hand-built day of results for one OPD (and a
//! second OPD without data) goes through the store, the rollups and the real
//! `pantau-collector report` command; the PDF text (pdftotext), CSV, JSON and
//! HTML must carry the hand-computed figures, `verify` must pass on the
//! bundle and fail after a one-byte change, and a late result must correct
//! the rollups.

mod common;

use std::path::Path;

use common::*;
use pantau_collector::model::{Outcome, ProbeKind};

/// The day's province report, numbered.
fn report(data: &Path, out: &Path, format: &str, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec!["--number", "005/DISKOMINFO/XI/2026"];
    args.extend(extra);
    day_report(data, "2026-11-02", out, format, &args)
}
use pantau_collector::model::{ResultRow, TargetDecl};

/// 2026-11-02 00:00 WITA (UTC+8) = 2026-11-01T16:00:00Z.
const DAY0: i64 = 1_793_548_800_000;

/// Whether `target` is down at local minute `m`; `None` = no data (agent off).
fn state(target: &str, m: i64) -> Option<bool> {
    if (1000..1030).contains(&m) {
        return None;
    }
    let local_outage = (600..610).contains(&m);
    let down = match target {
        "pusdat" => local_outage,
        "inet-a" => local_outage || (300..400).contains(&m) || (700..720).contains(&m),
        "inet-b" => local_outage || (700..720).contains(&m),
        "simpeg" => local_outage || (800..806).contains(&m),
        _ => unreachable!(),
    };
    Some(down)
}

fn rows_for(
    targets: &[TargetDecl],
    minutes: std::ops::Range<i64>,
    seq: &mut u64,
    day0: i64,
) -> Vec<ResultRow> {
    let mut rows = Vec::new();
    for m in minutes {
        for t in targets {
            let Some(down) = state(&t.id, m) else {
                continue;
            };
            for half in [5_000, 35_000] {
                *seq += 1;
                let icmp = t.kind == ProbeKind::Icmp;
                rows.push(ResultRow {
                    epoch: 1,
                    seq: *seq,
                    target_id: t.id.clone(),
                    group: t.group.to_string(),
                    kind: t.kind.into(),
                    observed_at_ms: day0 + m * 60_000 + half,
                    outcome: if down { Outcome::Timeout } else { Outcome::Ok },
                    detail: String::new(),
                    value_ms: (!down).then_some(if icmp { 12.0 } else { 40.0 }),
                    sent: icmp.then_some(5),
                    received: icmp.then_some(if down { 0 } else { 5 }),
                    data: serde_json::json!({}),
                    late: false,
                    clock_flag: None,
                    agent_time_ms: day0 + m * 60_000 + half,
                    clock_correction_ms: None,
                });
            }
        }
    }
    rows
}

fn targets() -> Vec<TargetDecl> {
    vec![
        decl("pusdat", "intranet", "icmp", 30_000),
        decl("inet-a", "internet", "tcp", 30_000),
        decl("inet-b", "internet", "tcp", 30_000),
        decl("simpeg", "app", "http", 30_000),
    ]
}

/// Store the day for OPD `dinkes`; OPD `disdik` is enrolled without data.
fn seed(data: &Path) {
    enrol(data, "dinkes", "dinkes-1");
    enrol(data, "disdik", "disdik-1");
    declare(data, "dinkes", "dinkes-1", targets());
    let mut seq = 0;
    let rows = rows_for(&targets(), 0..1440, &mut seq, DAY0);
    store_rows(data, "dinkes", "dinkes-1", &rows, DAY0 + 86_400_000);
}

#[test]
fn pdf_report_carries_hand_computed_figures_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let out = dir.path().join("bundle-pdf");
    let pdf = report(&data, &out, "pdf", &[]);
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let text = pdftotext(&pdf);
    // Header.
    for want in [
        "Laporan Pemantauan Jaringan Intra",
        "Pemerintah Provinsi Sulawesi Barat",
        "005/DISKOMINFO/XI/2026",
        "2 November 2026",
        "WITA",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Coverage: 1 of 2 OPD (disdik has no data), target 100 %.
    assert!(text.contains("1 / 2 OPD terhubung = 50,0 %"), "{text}");
    // Availability: intranet 1400/1410, internet 1380/1410, app 1394/1410.
    for want in ["99,29", "97,87", "98,87"] {
        assert!(
            text.contains(want),
            "missing availability {want} in:\n{text}"
        );
    }
    // Latency p50 of 12 ms ICMP samples: geometric middle of its bucket, 11,7.
    assert!(text.contains("11,7"), "{text}");
    // ICMP loss: 20 failed rounds of 2820 = 0,71 %.
    assert!(text.contains("0,71"), "{text}");
    // Completeness 1410/1440 = 97,9 %.
    assert!(text.contains("97,9"), "{text}");
    // Incidents: six of them, with causes.
    // (Table cells wrap, so each phrase is checked on one line.)
    assert!(text.contains("ISP atau breakout internet"), "{text}");
    assert!(text.contains("jaringan lokal OPD (intranet"), "{text}");
    assert!(text.contains("aplikasi itu sendiri (jaringan"), "{text}");
    // 700..720 local minutes = 11.40 WITA for 20 minutes; the app one at 13.20.
    let isp = text
        .lines()
        .position(|l| l.contains("ISP atau breakout internet"))
        .unwrap();
    assert!(text.lines().nth(isp).unwrap().contains(" 20 "), "{text}");
    assert!(
        text.lines().nth(isp + 1).unwrap().contains("11.40 WITA"),
        "{text}"
    );
    assert!(text.contains("13.20 WITA"), "{text}");
    assert!(text.contains("agen tidak melapor"), "{text}");
    assert_eq!(
        text.matches("jaringan lokal OPD (intranet").count(),
        3,
        "{text}"
    );
    // Review draft, methodology, rule version and public key.
    assert!(text.contains("Draf Laporan Reviu dan Evaluasi"), "{text}");
    assert!(text.contains("disdik"), "{text}");
    assert!(text.contains("pantau-rules/2"), "{text}");
    assert!(text.contains("Kunci publik kolektor"), "{text}");

    // Verify passes, then fails after a one-byte change anywhere.
    let (ok, stdout, stderr) = collector_run(&data, &["verify", out.to_str().unwrap()]);
    assert!(ok, "verify failed on an intact bundle: {stderr}");
    assert!(stdout.starts_with("OK: 10 file(s)"), "{stdout}");
    let mut b = bytes.clone();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(&pdf, &b).unwrap();
    let (ok, _, stderr) = collector_run(&data, &["verify", pdf.to_str().unwrap()]);
    assert!(!ok, "verify passed on a changed PDF");
    assert!(
        stderr.contains("VERIFICATION FAILED") && stderr.contains("was changed after signing"),
        "{stderr}"
    );
    std::fs::write(&pdf, &bytes).unwrap();
    let raw = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("hasil-mentah")
        })
        .expect("raw export in the bundle");
    let raw_text = std::fs::read_to_string(&raw).unwrap();
    // 1410 minutes x 4 targets x 2 results + header.
    assert_eq!(raw_text.lines().count(), 1410 * 4 * 2 + 1);
    std::fs::write(&raw, raw_text.replacen("timeout", "ok", 1)).unwrap();
    let (ok, _, stderr) = collector_run(&data, &["verify", out.to_str().unwrap()]);
    assert!(!ok && stderr.contains("hasil-mentah"), "{stderr}");
    // A different expected key fails too.
    std::fs::write(&raw, &raw_text).unwrap();
    let (ok, _, _) = collector_run(
        &data,
        &[
            "verify",
            out.to_str().unwrap(),
            "--public-key",
            &"ab".repeat(32),
        ],
    );
    assert!(!ok);
    let (ok, _, _) = collector_run(&data, &["verify", out.to_str().unwrap()]);
    assert!(ok);
    // The bundled independent recomputation finds every figure equal.
    let run = std::process::Command::new("python3")
        .arg(out.join("pantau-recompute.py"))
        .arg(&out)
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(text.contains("SAMA / EQUAL"), "{text}");
}

#[test]
fn csv_json_html_english_and_late_data_correction() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let csv = csv_plain(
        &std::fs::read_to_string(report(&data, &dir.path().join("c"), "csv", &[])).unwrap(),
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with("dinkes,") && l.contains(",internet,"))
        .expect("internet row");
    let f: Vec<&str> = line.split(',').collect();
    let avail: f64 = f[3].parse().unwrap();
    assert!((avail - 1380.0 / 1410.0 * 100.0).abs() < 1e-3, "{line}");
    assert_eq!(f[5], "false", "97,87 % is under the 99 % SLA: {line}");
    assert_eq!(
        (f[9], f[10]),
        ("30", "30"),
        "down and unknown minutes: {line}"
    );

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report(
            &data,
            &dir.path().join("j"),
            "json",
            &["--compare-from", "2026-11-01", "--compare-to", "2026-11-01"],
        ))
        .unwrap(),
    )
    .unwrap();
    let inc = json["incidents"].as_array().unwrap();
    assert_eq!(inc.len(), 6, "{inc:#?}");
    // The 30 minutes without any data are an agent-offline incident, not down.
    let off = inc.iter().find(|i| i["cause"] == "agent_offline").unwrap();
    assert_eq!(off["group"], "agent");
    assert_eq!(off["minutes"], 30);
    assert_eq!(off["start_ms"], DAY0 + 1000 * 60_000);
    let isp = inc
        .iter()
        .find(|i| i["cause"] == "internet_provider")
        .unwrap();
    assert_eq!(isp["minutes"], 20);
    assert_eq!(isp["start_ms"], DAY0 + 700 * 60_000);
    assert_eq!(isp["affected"], serde_json::json!(["inet-a", "inet-b"]));
    let app = inc.iter().find(|i| i["cause"] == "application").unwrap();
    assert_eq!(app["minutes"], 6);
    assert_eq!(app["affected"], serde_json::json!(["simpeg"]));
    assert_eq!(
        json["coverage"]["not_connected"],
        serde_json::json!(["disdik"])
    );
    assert_eq!(json["comparison"]["incidents"], serde_json::json!([0, 6]));

    let html = std::fs::read_to_string(report(
        &data,
        &dir.path().join("h"),
        "html",
        &["--lang", "en"],
    ))
    .unwrap();
    assert!(html.contains("Intranet Monitoring Report"));
    assert!(html.contains("97.87"), "English decimal point");
    assert!(html.contains("2 November 2026"));

    // Late results for the no-data window (agent was off, delivered later).
    let mut seq = 1_000_000;
    let mut late: Vec<ResultRow> = Vec::new();
    for m in 1000..1030 {
        for t in targets() {
            seq += 1;
            late.push(ResultRow {
                epoch: 2,
                seq,
                target_id: t.id.clone(),
                group: t.group.to_string(),
                kind: t.kind.into(),
                observed_at_ms: DAY0 + m * 60_000 + 5_000,
                outcome: Outcome::Timeout,
                detail: String::new(),
                value_ms: None,
                sent: (t.kind == ProbeKind::Icmp).then_some(5),
                received: (t.kind == ProbeKind::Icmp).then_some(0),
                data: serde_json::json!({}),
                late: true,
                clock_flag: None,
                agent_time_ms: DAY0 + m * 60_000 + 5_000,
                clock_correction_ms: None,
            });
        }
    }
    store_rows(&data, "dinkes", "dinkes-1", &late, DAY0 + 2 * 86_400_000);
    let csv = csv_plain(
        &std::fs::read_to_string(report(&data, &dir.path().join("c2"), "csv", &[])).unwrap(),
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with("dinkes,") && l.contains(",intranet,"))
        .unwrap();
    let f: Vec<&str> = line.split(',').collect();
    // 30 formerly unknown minutes are now down: 1400 / 1440.
    assert_eq!((f[9], f[10]), ("40", "0"), "{line}");
    let avail: f64 = f[3].parse().unwrap();
    assert!((avail - 1400.0 / 1440.0 * 100.0).abs() < 1e-3, "{line}");
}

#[test]
fn maintenance_is_excluded_and_bad_arguments_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    // The 20-minute internet outage (11.40-12.00 WITA = 03:40-04:00Z) was planned.
    let (ok, _, e) = collector_run(
        &data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--from",
            "2026-11-02T03:40:00Z",
            "--to",
            "2026-11-02T04:00:00Z",
            "--reason",
            "penggantian router ISP",
            "--by",
            "admin",
        ],
    );
    assert!(ok, "{e}");
    let csv = csv_plain(
        &std::fs::read_to_string(report(&data, &dir.path().join("m"), "csv", &[])).unwrap(),
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with("dinkes,") && l.contains(",internet,"))
        .unwrap();
    let f: Vec<&str> = line.split(',').collect();
    // up 1380, down 10, maintenance 20: 1380 / 1390.
    assert_eq!((f[9], f[11]), ("10", "20"), "{line}");
    let avail: f64 = f[3].parse().unwrap();
    assert!((avail - 1380.0 / 1390.0 * 100.0).abs() < 1e-3, "{line}");

    let (ok, _, e) = collector_run(
        &data,
        &[
            "report",
            "--opd",
            "nope",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--out",
            "x",
        ],
    );
    assert!(!ok && e.contains("no OPD `nope`"), "{e}");
    let (ok, _, e) = collector_run(
        &data,
        &[
            "report",
            "--opd",
            "all",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-02",
            "--format",
            "doc",
            "--out",
            "x",
        ],
    );
    assert!(!ok && e.contains("unknown format `doc`"), "{e}");
    let (ok, _, e) = collector_run(&data, &["verify", dir.path().to_str().unwrap()]);
    assert!(!ok && e.contains("MANIFEST.txt"), "{e}");
}

#[test]
fn xlsx_reads_back_with_the_figures() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let out = dir.path().join("x");
    let path = report(&data, &out, "xlsx", &[]);
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let sheets = wb.sheet_names();
    assert_eq!(
        sheets,
        [
            "Ringkasan",
            "Per OPD",
            "Pusat Data dan JIP",
            "Kecepatan aktual",
            "Pemanfaatan",
            "Gangguan",
            "Pemeliharaan",
            "Jam agen",
            "Reviu",
            "Jalur"
        ]
    );
    let per = wb.worksheet_range("Per OPD").unwrap();
    let row = per
        .rows()
        .find(|r| r[0] == Data::String("dinkes".into()) && r[3] == Data::String("Internet".into()))
        .expect("dinkes internet row");
    let Data::Float(avail) = row[4] else {
        panic!("availability is not a number: {row:?}")
    };
    assert!((avail - 1380.0 / 1410.0 * 100.0).abs() < 1e-9, "{row:?}");
    assert_eq!(row[6], Data::String("tidak tercapai".into()));
    assert_eq!(row[11], Data::Float(30.0), "down minutes");
    let Data::Float(done) = row[2] else {
        panic!("{row:?}")
    };
    assert!((done - 1410.0 / 1440.0 * 100.0).abs() < 1e-9);
    let inc = wb.worksheet_range("Gangguan").unwrap();
    assert_eq!(inc.rows().count(), 1 + 6);
    let mins: Vec<f64> = inc
        .rows()
        .skip(1)
        .filter_map(|r| match r[4] {
            Data::Float(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(mins, [10.0, 10.0, 10.0, 20.0, 6.0, 30.0]);
    let sum = wb.worksheet_range("Ringkasan").unwrap();
    assert!(
        sum.rows()
            .any(|r| r[1] == Data::String("005/DISKOMINFO/XI/2026".into()))
    );
    // The bundle verifies.
    let (ok, _, e) = collector_run(&data, &["verify", out.to_str().unwrap()]);
    assert!(ok, "{e}");
}

/// Issue 10, defect 5: a maintenance window recorded (through the CLI) after
/// the outage it covers turns down minutes into maintenance; every format
/// shows the maintenance minutes per OPD and group and the window, marked
/// retroactive, and every header says up to when data counts.
#[test]
fn retroactive_maintenance_is_disclosed_in_every_format() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let before = now_ms();
    // Half of the 20-minute internet outage (11.40-12.00 WITA), recorded
    // now, long after it started.
    let (ok, _, e) = collector_run(
        &data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--from",
            "2026-11-02T11:40:00+08:00",
            "--to",
            "2026-11-02T11:50:00+08:00",
            "--reason",
            "penggantian router ISP",
            "--by",
            "admin",
        ],
    );
    assert!(ok, "{e}");

    // JSON: figures, the window, the cut-off; the per-group field is
    // completeness, not coverage.
    let p = report(&data, &dir.path().join("j"), "json", &[]);
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
    let inet = j["opds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "dinkes")
        .unwrap()["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "internet")
        .unwrap()
        .clone();
    // Down 30 (local outage 10 + internet 20) of which 10 now maintenance.
    assert_eq!(inet["minutes"]["maintenance"], 10, "{inet:#}");
    assert_eq!(inet["minutes"]["down"], 20, "{inet:#}");
    assert!(inet.get("coverage_pct").is_none(), "{inet:#}");
    let done = inet["completeness_pct"].as_f64().unwrap();
    assert!((done - 1400.0 / 1430.0 * 100.0).abs() < 1e-9, "{inet:#}");
    let w = j["maintenance"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!(w[0]["opd"], "dinkes");
    assert_eq!(w[0]["group"], "internet");
    assert_eq!(w[0]["from_ms"], DAY0 + 700 * 60_000);
    assert_eq!(w[0]["to_ms"], DAY0 + 710 * 60_000);
    assert_eq!(w[0]["reason"], "penggantian router ISP");
    assert_eq!(w[0]["recorded_by"], "admin");
    let at = w[0]["recorded_at_ms"].as_i64().unwrap();
    assert!((before..=now_ms()).contains(&at), "{at}");
    assert_eq!(w[0]["retroactive"], true);
    assert_eq!(j["meta"]["data_until_ms"], DAY0 + 86_400_000);
    // Findings name groups as the report does, never by internal id
    // (simpeg: 1394 / 1410 = 98,87 % under the 99 % SLA).
    let findings = j["findings"].to_string();
    assert!(
        findings.contains("dinkes: ketersediaan Aplikasi 98,87 % di bawah target SLA 99,0 %."),
        "{findings}"
    );
    assert!(!findings.contains(" app "), "{findings}");

    // CSV: the group row, the cut-off column and the window section.
    let csv = csv_plain(
        &std::fs::read_to_string(report(&data, &dir.path().join("c"), "csv", &[])).unwrap(),
    );
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(head[6], "completeness_pct");
    assert_eq!((head[11], head[18]), ("maintenance_min", "data_until"));
    let line = csv
        .lines()
        .find(|l| l.starts_with("dinkes,") && l.contains(",internet,"))
        .unwrap();
    let f: Vec<&str> = line.split(',').collect();
    assert_eq!((f[9], f[11]), ("20", "10"), "{line}");
    assert_eq!(f[18], "2026-11-03T00:00:00+08:00", "{line}");
    let win = csv
        .lines()
        .find(|l| l.starts_with("maintenance,"))
        .expect(&csv);
    assert!(
        win.starts_with(
            "maintenance,dinkes,internet,2026-11-02T11:40:00+08:00,2026-11-02T11:50:00+08:00,penggantian router ISP,admin,"
        ) && win.ends_with(",true"),
        "{win}"
    );

    // HTML, Indonesian and English.
    let html = std::fs::read_to_string(report(&data, &dir.path().join("h"), "html", &[])).unwrap();
    for want in [
        "Data s.d. 3 November 2026, 00.00 WITA",
        "Pemeliharaan menit",
        "<td>dinkes</td><td>Internet</td><td>2 November 2026 11.40 WITA – 2 November 2026 11.50 WITA</td><td>penggantian router ISP</td><td>admin</td>",
        "<td>retroaktif</td>",
    ] {
        assert!(html.contains(want), "{want} not in the HTML");
    }
    let en = std::fs::read_to_string(report(
        &data,
        &dir.path().join("he"),
        "html",
        &["--lang", "en"],
    ))
    .unwrap();
    for want in [
        "Data up to 3 November 2026, 00:00 WITA",
        "Maintenance min",
        "<td>retroactive</td>",
        "2 November 2026 11:40 WITA – 2 November 2026 11:50 WITA",
    ] {
        assert!(en.contains(want), "{want} not in the English HTML");
    }

    // PDF text.
    let pdf = pdftotext(&report(&data, &dir.path().join("p"), "pdf", &[]));
    for want in [
        "Data s.d. 3 November 2026, 00.00 WITA",
        "4a. Jendela pemeliharaan",
        "retroaktif",
        "penggantian router",
    ] {
        assert!(pdf.contains(want), "{want} not in the PDF text:\n{pdf}");
    }
    // The per-OPD internet row ends with down, no-data and maintenance minutes.
    let row = pdf
        .lines()
        .find(|l| l.trim_start().starts_with("dinkes") && l.contains("Internet"))
        .expect(&pdf);
    let tail: Vec<&str> = row.split_whitespace().rev().take(3).collect();
    assert_eq!(tail, ["10", "30", "20"], "{row}");

    // XLSX: the maintenance minutes as a number and the window sheet.
    let path = report(&data, &dir.path().join("x"), "xlsx", &[]);
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let per = wb.worksheet_range("Per OPD").unwrap();
    let row = per
        .rows()
        .find(|r| r[0] == Data::String("dinkes".into()) && r[3] == Data::String("Internet".into()))
        .expect("dinkes internet row");
    assert_eq!(
        (&row[11], &row[13]),
        (&Data::Float(20.0), &Data::Float(10.0))
    );
    let sheet = wb.worksheet_range("Pemeliharaan").unwrap();
    let row = sheet
        .rows()
        .find(|r| r[0] == Data::String("dinkes".into()))
        .expect("window row");
    assert_eq!(row[1], Data::String("Internet".into()));
    assert_eq!(row[3], Data::String("penggantian router ISP".into()));
    assert_eq!(row[6], Data::String("retroaktif".into()));
    let sum = wb.worksheet_range("Ringkasan").unwrap();
    assert!(
        sum.rows()
            .any(|r| r[1] == Data::String("Data s.d. 3 November 2026, 00.00 WITA".into()))
    );
}
