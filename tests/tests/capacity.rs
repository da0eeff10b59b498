//! Capacity and interconnection evidence end to end: a hand-built day of
//! bandwidth tests, link polls and Pusat Data/JIP pings for one OPD, decoded
//! from protocol messages by the collector's own validation, goes through the
//! store, the rollups and the real `pantau-collector report` command. The JSON,
//! the PDF text (pdftotext) and the XLSX must carry the hand-computed
//! throughput, utilisation and reachability figures and the new findings; late
//! link polls must correct the rollups; the signed bundle downloaded from
//! `/api/v1/report?bundle=1` must verify and fail after a one-byte change.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The day's province report.
fn report(data: &Path, out: &Path, format: &str, extra: &[&str]) -> std::path::PathBuf {
    day_report(data, "2026-11-02", out, format, extra)
}
use pantau_collector::ingest::validate;
use pantau_collector::model::{ResultRow, TargetDecl};
use pantau_proto::v1 as pb;

/// 2026-11-02 00:00 WITA (UTC+8) = 2026-11-01T16:00:00Z.
const DAY0: i64 = 1_793_548_800_000;
const MIN: i64 = 60_000;

fn targets() -> Vec<TargetDecl> {
    vec![
        decl("pusdat", "datacenter", "icmp", 60_000),
        decl("jip-a", "jip", "icmp", 60_000),
        decl("wan", "intranet", "link", 60_000),
        decl("bw", "datacenter", "bandwidth", 6 * 3_600_000),
    ]
}

/// One protocol result, converted exactly as the ingest does.
fn convert(seq: &mut u64, t: &str, at: i64, ok: bool, m: pb::result::Measurement) -> ResultRow {
    *seq += 1;
    let kind = match &m {
        pb::result::Measurement::Ping(_) => pb::ProbeKind::Icmp,
        pb::result::Measurement::Link(_) => pb::ProbeKind::Link,
        pb::result::Measurement::Bandwidth(_) => pb::ProbeKind::Bandwidth,
        _ => unreachable!(),
    };
    let r = pb::Result {
        epoch: 1,
        seq: *seq,
        target_id: t.into(),
        kind: kind as i32,
        observed_at: Some(pantau_proto::timestamp_from_millis(at)),
        outcome: if ok {
            pb::Outcome::Ok as i32
        } else {
            pb::Outcome::Timeout as i32
        },
        detail: String::new(),
        measurement: Some(m),
    };
    let mut row = validate::result(r).expect("valid result");
    row.group = targets()
        .iter()
        .find(|x| x.id == t)
        .map(|x| x.group.to_string())
        .unwrap();
    row
}

fn ping(ok: bool) -> pb::result::Measurement {
    pb::result::Measurement::Ping(pb::PingMeasurement {
        sent: 5,
        received: if ok { 5 } else { 0 },
        rtt_min_us: if ok { 12_000 } else { 0 },
        rtt_avg_us: if ok { 12_000 } else { 0 },
        rtt_max_us: if ok { 12_000 } else { 0 },
        samples_us: if ok { vec![12_000; 5] } else { vec![] },
        ..Default::default()
    })
}

fn link(in_mbps: f64, out_mbps: f64, no_rate: &str) -> pb::result::Measurement {
    let rate = no_rate.is_empty();
    pb::result::Measurement::Link(pb::LinkMeasurement {
        source: "snmp".into(),
        if_index: 2,
        if_name: "ether1".into(),
        counter_bits: 64,
        oper_status: 1,
        capacity_bps: 20_000_000,
        contracted: true,
        interval_seconds: if rate { 60.0 } else { 0.0 },
        in_bps: if rate { in_mbps * 1e6 } else { 0.0 },
        out_bps: if rate { out_mbps * 1e6 } else { 0.0 },
        no_rate: no_rate.into(),
        ..Default::default()
    })
}

fn bandwidth(down_mbps: u64, up_mbps: u64, skipped: &str) -> pb::result::Measurement {
    pb::result::Measurement::Bandwidth(pb::BandwidthMeasurement {
        download_bps: down_mbps * 1_000_000,
        upload_bps: up_mbps * 1_000_000,
        streams: 4,
        skipped: skipped.into(),
        ..Default::default()
    })
}

/// The day, as documented figure by figure in the test below.
fn day_rows(seq: &mut u64) -> Vec<ResultRow> {
    let mut rows = Vec::new();
    for m in 0..1440 {
        let at = DAY0 + m * MIN + 1_000;
        rows.push(convert(seq, "pusdat", at, true, ping(true)));
        // JIP unreachable for the first two hours.
        rows.push(convert(seq, "jip-a", at, m >= 120, ping(m >= 120)));
        // Link polls every minute; none in 600..660 (agent's router
        // unreachable), the poll at 660 has no rate (gap), the first none.
        if (600..660).contains(&m) {
            continue;
        }
        let no_rate = match m {
            0 => "first",
            660 => "gap",
            _ => "",
        };
        // 17 Mbit/s in for the first 100 intervals with a rate, then 4.
        let inb = if (1..=100).contains(&m) { 17.0 } else { 4.0 };
        rows.push(convert(seq, "wan", at, true, link(inb, 2.0, no_rate)));
    }
    // Bandwidth tests at 00, 06, 12, 18 local; skipped at 03; failed at 09.
    for (h, d, u) in [(0, 15, 8), (6, 18, 9), (12, 12, 10), (18, 16, 7)] {
        rows.push(convert(
            seq,
            "bw",
            DAY0 + h * 60 * MIN + 30_000,
            true,
            bandwidth(d, u, ""),
        ));
    }
    rows.push(convert(
        seq,
        "bw",
        DAY0 + 3 * 60 * MIN,
        true,
        bandwidth(0, 0, "gap"),
    ));
    rows.push(convert(
        seq,
        "bw",
        DAY0 + 9 * 60 * MIN,
        false,
        bandwidth(0, 0, ""),
    ));
    rows
}

fn seed(data: &Path) -> u64 {
    enrol(data, "dinkes", "dinkes-1");
    enrol(data, "disdik", "disdik-1");
    declare(data, "dinkes", "dinkes-1", targets());
    let mut seq = 0;
    let rows = day_rows(&mut seq);
    store_rows(data, "dinkes", "dinkes-1", &rows, DAY0 + 2 * 86_400_000);
    seq
}

fn close(v: &serde_json::Value, want: f64, what: &str) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(
        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
        "{what}: {got} != {want}"
    );
}

#[test]
fn throughput_utilisation_and_reachability_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut seq = seed(&data);

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report(&data, &dir.path().join("j"), "json", &[])).unwrap(),
    )
    .unwrap();
    let dinkes = json["opds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "dinkes")
        .unwrap();
    // Link polls and bandwidth tests are not availability: the intranet
    // group (only the link target) has no figure at all, and the Pusat Data
    // group is the ping alone.
    let groups: Vec<&str> = dinkes["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["datacenter", "jip"], "{dinkes:#}");

    let cap = &json["capacity"];
    // Reachability: Pusat Data 1440/1440, JIP 1320/1440 (120 minutes down).
    let reach = cap["reachability"].as_array().unwrap();
    assert_eq!(reach.len(), 4, "two OPD x two groups");
    let dc = &reach[0]["figure"];
    assert_eq!(
        (reach[0]["opd"].as_str(), reach[0]["group"].as_str()),
        (Some("dinkes"), Some("datacenter"))
    );
    close(&dc["availability_pct"], 100.0, "datacenter availability");
    let jip = &reach[1]["figure"];
    close(&jip["availability_pct"], 1320.0 / 1440.0 * 100.0, "jip");
    assert_eq!(jip["minutes"]["down"], 120);
    assert!(reach[2]["figure"].is_null(), "disdik: not measured");

    // Throughput: downloads 15, 18, 12, 16 -> sorted 12 15 16 18: median
    // (2nd) 15, p5 (1st) 12, max 18; uploads 8 9 10 7 -> 7 8 9 10: median 8.
    let bw = &cap["bandwidth"][0];
    assert_eq!(
        (&bw["tests_run"], &bw["tests_skipped"], &bw["tests_failed"]),
        (&4.into(), &1.into(), &1.into())
    );
    close(&bw["download"]["median_bps"], 15e6, "download median");
    close(&bw["download"]["p5_bps"], 12e6, "download p5");
    close(&bw["download"]["min_bps"], 12e6, "download min");
    close(&bw["download"]["max_bps"], 18e6, "download max");
    close(&bw["upload"]["median_bps"], 8e6, "upload median");
    close(&bw["upload"]["max_bps"], 10e6, "upload max");
    // Contract from the link's contracted_mbps (20): 75 % and 40 %.
    close(&bw["contracted_bps"], 20e6, "contract");
    assert_eq!(bw["contracted_source"], "link");
    close(&bw["download_pct_of_contracted"], 75.0, "download %");
    close(&bw["upload_pct_of_contracted"], 40.0, "upload %");

    // Utilisation: 1380 polls, 2 without a rate (first, gap), 1378 one-minute
    // intervals = 82 680 s of 86 400 (95,69 %). In: 100 min at 17, 1278 at 4:
    // average 6812/1378 = 4,9434 Mbit/s; 7,3 % of the time at 17 -> p95 17
    // (85 % of 20, saturated); out 2 flat.
    let u = &cap["utilisation"][0];
    assert_eq!(
        (&u["polls"], &u["polls_without_rate"]),
        (&1380.into(), &2.into())
    );
    close(&u["covered_seconds"], 82_680.0, "covered");
    close(&u["coverage_pct"], 82_680.0 / 86_400.0 * 100.0, "coverage");
    close(&u["inbound"]["avg_bps"], 6812.0 / 1378.0 * 1e6, "in avg");
    close(&u["inbound"]["p95_bps"], 17e6, "in p95");
    close(&u["inbound"]["peak_bps"], 17e6, "in peak");
    close(&u["inbound"]["p95_pct"], 85.0, "in p95 %");
    close(&u["outbound"]["p95_bps"], 2e6, "out p95");
    close(&u["outbound"]["avg_bps"], 2e6, "out avg");
    assert_eq!(u["if_name"], "ether1");
    assert_eq!(u["capacity_contracted"], true);

    // Business hours only (Monday 2 November, 08-16 local): the hour
    // rollups inside them. Bandwidth: the 12:00 test (12/10) ran, the 09:00
    // one failed; 00/06/18 and the 03 skip are outside. Link: polls at
    // minutes 480..959 without 600..659 = 420, one without a rate (660);
    // 419 intervals = 25 140 s of 28 800; all at 4 in and 2 out. JIP was
    // down only before 02:00: 100 % in business hours.
    let bh: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report(
            &data,
            &dir.path().join("jb"),
            "json",
            &["--business-hours"],
        ))
        .unwrap(),
    )
    .unwrap();
    let bcap = &bh["capacity"];
    let bw = &bcap["bandwidth"][0];
    assert_eq!(
        (&bw["tests_run"], &bw["tests_skipped"], &bw["tests_failed"]),
        (&1.into(), &0.into(), &1.into())
    );
    close(
        &bw["download"]["median_bps"],
        12e6,
        "business download median",
    );
    close(&bw["upload"]["median_bps"], 10e6, "business upload median");
    let u = &bcap["utilisation"][0];
    assert_eq!(
        (&u["polls"], &u["polls_without_rate"]),
        (&420.into(), &1.into())
    );
    close(&u["covered_seconds"], 25_140.0, "business covered");
    close(&u["period_seconds"], 28_800.0, "business period");
    close(&u["inbound"]["avg_bps"], 4e6, "business in avg");
    close(&u["inbound"]["peak_bps"], 4e6, "business in peak");
    close(&u["outbound"]["avg_bps"], 2e6, "business out avg");
    close(
        &bcap["reachability"][1]["figure"]["availability_pct"],
        100.0,
        "business jip",
    );

    // Findings with the new evidence.
    let findings: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let has = |s: &str| findings.iter().any(|f| f.contains(s));
    assert!(
        has("dinkes: tautan wan jenuh: pemanfaatan p95 masuk 85,0 %"),
        "{findings:#?}"
    );
    assert!(
        has(
            "kecepatan aktual unduh median (bw) 15,00 Mbit/s = 75,0 % dari bandwidth kontrak 20,00 Mbit/s"
        ),
        "{findings:#?}"
    );
    assert!(
        has("kecepatan aktual unggah median (bw) 8,00 Mbit/s = 40,0 %"),
        "{findings:#?}"
    );
    assert!(
        has("dinkes: JIP/PDN tidak terjangkau selama 120 menit"),
        "{findings:#?}"
    );
    let params: Vec<String> = json["meta"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}={}", p[0].as_str().unwrap(), p[1].as_str().unwrap()))
        .collect();
    assert!(
        params.contains(&"saturation_p95_pct=80".to_string()),
        "{params:?}"
    );

    // PDF (Indonesian, decimal comma).
    let pdf_out = dir.path().join("p");
    let pdf = report(&data, &pdf_out, "pdf", &[]);
    let text = pdftotext(&pdf);
    for want in [
        "3a. Keterjangkauan Pusat Data dan JIP",
        "3b. Kecepatan aktual (throughput) vs bandwidth kontrak",
        "3c. Pemanfaatan tautan (utilisasi bandwidth)",
        "91,67",
        "tidak diukur",
        "4/1/1",
        "15,00",
        "12,00",
        "18,00",
        "75,0",
        "40,0",
        "4,94",
        "17,00",
        "85,0",
        "95,7",
        "(kontrak)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(text.contains("jenuh"), "{text}");
    // The raw export carries the link and bandwidth measurements.
    let raw = std::fs::read_dir(&pdf_out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("hasil-mentah")
        })
        .unwrap();
    let raw = csv_plain(&std::fs::read_to_string(raw).unwrap());
    assert!(raw.lines().next().unwrap().ends_with(",data"));
    assert!(
        raw.contains("\"in_bps\":17000000.0"),
        "link data in the raw export"
    );
    assert!(raw.contains("\"download_bps\":18000000"));

    // English HTML: decimal point.
    let html = std::fs::read_to_string(report(
        &data,
        &dir.path().join("h"),
        "html",
        &["--lang", "en"],
    ))
    .unwrap();
    assert!(html.contains("3c. Link utilisation"), "{html}");
    assert!(html.contains("Data-centre and JIP reachability"));
    assert!(html.contains("<td>4.94</td>"), "{html}");
    assert!(html.contains("<td>91.67</td>"));

    // CSV sections.
    let csv = csv_plain(
        &std::fs::read_to_string(report(&data, &dir.path().join("c"), "csv", &[])).unwrap(),
    );
    let line = csv
        .lines()
        .find(|l| l.starts_with("throughput,dinkes,"))
        .unwrap();
    assert!(
        line.contains(",4,15000000,12000000,12000000,18000000,"),
        "{line}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("utilisation,dinkes,dinkes-1,wan,ether1,"))
    );

    // XLSX read-back: numbers, not text.
    {
        use calamine::{Data, Reader, Xlsx, open_workbook};
        let path = report(&data, &dir.path().join("x"), "xlsx", &[]);
        let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
        let util = wb.worksheet_range("Pemanfaatan").unwrap();
        let row = util
            .rows()
            .find(|r| r[0] == Data::String("dinkes".into()))
            .expect("dinkes link row");
        let Data::Float(avg) = row[3] else {
            panic!("{row:?}")
        };
        assert!((avg - 6812.0 / 1378.0).abs() < 1e-9, "{row:?}");
        assert_eq!(row[4], Data::Float(17.0));
        assert_eq!(row[9], Data::Float(85.0));
        let bw = wb.worksheet_range("Kecepatan aktual").unwrap();
        let row = bw
            .rows()
            .find(|r| r[0] == Data::String("dinkes".into()))
            .unwrap();
        assert_eq!(
            (&row[3], &row[4], &row[5]),
            (&Data::Float(15.0), &Data::Float(12.0), &Data::Float(18.0))
        );
        assert_eq!(row[10], Data::Float(75.0));
        let reach = wb.worksheet_range("Pusat Data dan JIP").unwrap();
        let row = reach
            .rows()
            .find(|r| {
                r[0] == Data::String("dinkes — OPD dinkes".into())
                    && r[1] == Data::String("JIP/PDN".into())
            })
            .unwrap();
        let Data::Float(a) = row[2] else {
            panic!("{row:?}")
        };
        assert!((a - 1320.0 / 1440.0 * 100.0).abs() < 1e-9);
    }

    // The OPD registry's contract overrides the link's: 15 / 18 = 83,3 %,
    // no longer under 80 %; the upload (8 / 18) still is.
    let (ok, _, e) = collector_run(&data, &["opd", "contract", "dinkes", "--mbps", "18"]);
    assert!(ok, "{e}");
    let (ok, _, e) = collector_run(&data, &["opd", "contract", "nope", "--mbps", "18"]);
    // (The admin action refuses an unknown OPD before touching the store.)
    assert!(
        !ok && e.contains("OPD `nope` tidak terdaftar / does not exist"),
        "{e}"
    );
    // Late link polls for the gap (delivered after the outage) correct the
    // rollups: 60 more covered minutes at 4 Mbit/s in.
    let who_rows: Vec<ResultRow> = (600..660)
        .map(|m| {
            convert(
                &mut seq,
                "wan",
                DAY0 + m * MIN + 1_000,
                true,
                link(4.0, 2.0, ""),
            )
        })
        .collect();
    store_rows(
        &data,
        "dinkes",
        "dinkes-1",
        &who_rows,
        DAY0 + 2 * 86_400_000,
    );
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report(&data, &dir.path().join("j2"), "json", &[])).unwrap(),
    )
    .unwrap();
    let bw = &json["capacity"]["bandwidth"][0];
    assert_eq!(bw["contracted_source"], "opd");
    close(
        &bw["download_pct_of_contracted"],
        15.0 / 18.0 * 100.0,
        "download % (opd)",
    );
    let u = &json["capacity"]["utilisation"][0];
    assert_eq!(
        (&u["polls"], &u["polls_without_rate"]),
        (&1440.into(), &2.into())
    );
    close(&u["covered_seconds"], 86_280.0, "covered after late data");
    close(
        &u["inbound"]["avg_bps"],
        7052.0 / 1438.0 * 1e6,
        "in avg after late data",
    );
    let findings = json["findings"].to_string();
    assert!(!findings.contains("kecepatan aktual unduh"), "{findings}");
    assert!(findings.contains("kecepatan aktual unggah"), "{findings}");

    // The signed bundle over HTTP verifies as downloaded, and not after a
    // one-byte change.
    let mut c = Collector::start(&data);
    let (code, body) = http_get_bytes(
        c.http,
        "/api/v1/report?opd=all&from=2026-11-02&to=2026-11-02&format=pdf&bundle=1",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let (code, _) = http_get_bytes(
        c.http,
        "/api/v1/report?opd=all&from=2026-11-02&to=2026-11-02&bundle=yes",
    );
    assert_eq!(code, 400);
    // An evaluation period instead of dates: the month holding the data.
    let (code, body_m) = http_get_bytes(
        c.http,
        "/api/v1/report?opd=dinkes&period=2026-11&format=json",
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body_m));
    let month: serde_json::Value = serde_json::from_slice(&body_m).unwrap();
    assert_eq!(
        (month["meta"]["from"].as_str(), month["meta"]["to"].as_str()),
        (Some("2026-11-01"), Some("2026-11-30"))
    );
    close(
        &month["capacity"]["bandwidth"][0]["download"]["median_bps"],
        15e6,
        "the month holds the same one day of tests",
    );
    let (code, body_b) = http_get_bytes(c.http, "/api/v1/report?opd=dinkes&period=2026-Q5");
    assert_eq!(code, 400);
    assert!(String::from_utf8_lossy(&body_b).contains("`2026-Q5` is not a period"));
    c.proc.terminate();
    let tar = dir.path().join("laporan.tar");
    std::fs::write(&tar, &body).unwrap();
    let (ok, stdout, stderr) = collector_run(&data, &["verify", tar.to_str().unwrap()]);
    assert!(ok, "verify failed on the downloaded bundle: {stderr}");
    // Nine report files, the audit entries of the period (audit.jsonl) and the
    // signed request record (permintaan.json).
    assert!(stdout.starts_with("OK: 11 file(s)"), "{stdout}");
    // The archive is a plain tar: the system tar lists the four members.
    let out = Command::new("tar").arg("tf").arg(&tar).output().unwrap();
    let list = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        list.contains("MANIFEST.sig") && list.contains(".pdf"),
        "{list}"
    );
    let mut b = body.clone();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    std::fs::write(&tar, &b).unwrap();
    let (ok, _, stderr) = collector_run(&data, &["verify", tar.to_str().unwrap()]);
    assert!(!ok && stderr.contains("VERIFICATION FAILED"), "{stderr}");
}
