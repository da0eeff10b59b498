//! Report renderers as a regression guard: two hand-built reports (a full
//! one in Indonesian with every section populated and awkward text, and an
//! almost empty one in English) are rendered in all five formats and compared
//! with the outputs saved under `tests/fixtures/report_model/`: JSON, CSV
//! and HTML byte for byte, the PDF by its laid-out text (pdftotext) and as
//! reproducible bytes, XLSX cell by cell (value, type, place) since the zip
//! carries a creation time.
//!
//! The fixtures were saved from the renderers as they were before the report
//! model (issue 11); `PANTAU_BLESS=1` rewrites them after an intended change.

use std::path::{Path, PathBuf};

use calamine::{Data, Reader as _};
use pantau_collector::config::Signoff;
use pantau_collector::report::capacity::{
    BandwidthFigure, DirFigure, Dist, Evidence, LinkFigure, ReachFigure,
};
use pantau_collector::report::clock::ClockNote;
use pantau_collector::report::incident::{Cause, Incident};
use pantau_collector::report::maintenance::MaintenanceWindow;
use pantau_collector::report::rules::StateMinutes;
use pantau_collector::report::topology::{PathObs, Topology};
use pantau_collector::report::{
    Comparison, Coverage, Format, GroupFigure, Lang, Meta, OpdFigure, RawExport, Report, render_as,
};

/// 2026-11-02 00:00 WITA.
const DAY0: i64 = 1_793_548_800_000;
const MIN: i64 = 60_000;

fn minutes(up: u64, degraded: u64, down: u64, unknown: u64, maintenance: u64) -> StateMinutes {
    StateMinutes {
        up,
        degraded,
        down,
        unknown,
        maintenance,
    }
}

fn group(name: &str, m: StateMinutes, p50: Option<f64>, sla_met: Option<bool>) -> GroupFigure {
    let measured = m.up + m.degraded + m.down;
    let avail = (measured > 0).then(|| 100.0 * (m.up + m.degraded) as f64 / measured as f64);
    GroupFigure {
        group: name.into(),
        minutes: m,
        availability_pct: avail,
        completeness_pct: Some(97.123_456),
        sla_pct: 99.5,
        sla_met,
        p50_ms: p50,
        p95_ms: p50.map(|p| p * 3.0),
        jitter_ms: p50.map(|p| p / 10.0),
        loss_pct: Some(0.254),
        results: 12_345,
    }
}

fn meta(lang: Lang, signed: bool) -> Meta {
    Meta {
        agency: "Dinas Komunikasi & Informatika <Provinsi>".into(),
        number: "005/DISKOMINFO/XI/2026".into(),
        scope: if signed {
            "all".into()
        } else {
            "dinkes".into()
        },
        lang,
        from: "2026-11-02".into(),
        to: "2026-11-03".into(),
        from_ms: DAY0,
        to_ms: DAY0 + 2 * 1440 * MIN,
        issued_ms: DAY0 + 3 * 1440 * MIN,
        data_until_ms: DAY0 + 2 * 1440 * MIN - 7 * MIN,
        zone: "WITA".into(),
        utc_offset_minutes: 480,
        business_hours: !signed,
        rule_version: "pantau-rules/2".into(),
        parameters: [
            ("degraded_loss", "0.2"),
            ("degraded_rtt_ms", "150"),
            ("business_hours", "08:00-16:00 Mon-Fri"),
            ("composite.app", "quorum(2)"),
            ("composite.internet", "any"),
            ("sla.datacenter", "99.5"),
            ("rules_before 2026-11-02 10:00 WITA", "pantau-rules/1"),
            ("saturation_p95_pct", "80"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        public_key: signed.then(|| "ab".repeat(32)),
        public_key_url: "https://diskominfo.example/kunci".into(),
        raw_export: signed.then(|| RawExport {
            file: "hasil-mentah-provinsi-2026-11-02-2026-11-03.csv".into(),
            sha256: "cd".repeat(32),
        }),
        letterhead: Default::default(),
        signoff: signed.then(|| Signoff {
            name: "Budi Santoso, S.Kom.".into(),
            nip: "198001012005011001".into(),
            position: "Kepala Bidang Persandian".into(),
            place: "Mataram".into(),
        }),
    }
}

fn path(id: i64, agent: &str, opd: &str, hops: &[&str], first: i64) -> PathObs {
    PathObs {
        id,
        agent: agent.into(),
        opd: opd.into(),
        target: "pusdat".into(),
        group: "datacenter".into(),
        address: "10.0.0.1".into(),
        label: "Pusat Data".into(),
        hops: hops.iter().map(|s| s.to_string()).collect(),
        rtt_us: vec![100; hops.len()],
        reached: true,
        first_seen_ms: first,
        last_seen_ms: first + 60 * MIN,
        times_seen: 3,
        previous_id: None,
        previous_hops: None,
        previous_last_seen_ms: None,
    }
}

fn topology() -> Topology {
    let mut changed = path(
        3,
        "dinkes-1",
        "dinkes",
        &["10.1.0.1", "10.9.0.2", "10.0.0.1"],
        DAY0 + 600 * MIN,
    );
    changed.previous_id = Some(1);
    changed.previous_hops = Some(vec!["10.1.0.1".into(), "".into(), "10.0.0.1".into()]);
    changed.previous_last_seen_ms = Some(DAY0 + 500 * MIN);
    let paths = vec![
        path(1, "dinkes-1", "dinkes", &["10.1.0.1", "", "10.0.0.1"], DAY0),
        path(
            2,
            "bappeda-1",
            "bappeda",
            &["10.2.0.1", "10.9.0.2", "", "10.0.0.1"],
            DAY0,
        ),
        changed,
    ];
    Topology::build(&paths, DAY0)
}

fn incident(opd: &str, group: &str, start_min: i64, minutes: i64, open: bool) -> Incident {
    Incident {
        opd: opd.into(),
        group: group.into(),
        start_ms: DAY0 + start_min * MIN,
        end_ms: DAY0 + (start_min + minutes) * MIN,
        minutes,
        open,
        cause: if open {
            Cause::AgentOffline
        } else {
            Cause::IntranetLink
        },
        affected: vec!["pusdat".into(), "inet, \"b\"".into()],
        note: open.then(|| "kabel putus".into()),
        ticket: open.then(|| "TIK-7".into()),
    }
}

fn capacity() -> Evidence {
    let dist = |m: f64| Dist {
        n: 14,
        median_bps: m,
        p5_bps: m * 0.6,
        min_bps: m * 0.5,
        max_bps: m * 1.2,
    };
    let dir = |avg: f64| DirFigure {
        avg_bps: avg,
        p95_bps: avg * 2.0,
        peak_bps: avg * 3.0,
        avg_pct: Some(avg / 1e6),
        p95_pct: Some(2.0 * avg / 1e6),
        peak_pct: None,
    };
    Evidence {
        reachability: vec![
            ReachFigure {
                opd: "dinkes".into(),
                opd_name: "Dinas Kesehatan".into(),
                group: "datacenter".into(),
                figure: Some(group(
                    "datacenter",
                    minutes(2800, 10, 40, 30, 0),
                    Some(4.94),
                    Some(false),
                )),
            },
            ReachFigure {
                opd: "dinkes".into(),
                opd_name: "Dinas Kesehatan".into(),
                group: "jip".into(),
                figure: None,
            },
        ],
        bandwidth: vec![BandwidthFigure {
            opd: "dinkes".into(),
            agent: "dinkes-1".into(),
            target: "bw-pusdat".into(),
            group: "datacenter".into(),
            label: "Uji kecepatan, Pusat Data".into(),
            tests_run: 14,
            tests_skipped: 2,
            tests_failed: 1,
            download: Some(dist(42_500_000.0)),
            upload: None,
            contracted_bps: Some(50e6),
            contracted_source: Some("opd".into()),
            download_pct_of_contracted: Some(85.0),
            upload_pct_of_contracted: None,
        }],
        utilisation: vec![
            LinkFigure {
                opd: "dinkes".into(),
                agent: "dinkes-1".into(),
                target: "wan".into(),
                label: "WAN".into(),
                if_name: "ge-0/0/1, unit 0".into(),
                capacity_bps: Some(1e8),
                capacity_contracted: true,
                polls: 2880,
                polls_without_rate: 3,
                covered_seconds: 172_500.0,
                period_seconds: 172_800.0,
                coverage_pct: 99.826,
                inbound: Some(dir(4_100_000.0)),
                outbound: None,
            },
            LinkFigure {
                opd: "dinkes".into(),
                agent: "dinkes-1".into(),
                target: "lan".into(),
                label: "LAN".into(),
                if_name: String::new(),
                capacity_bps: None,
                capacity_contracted: false,
                polls: 10,
                polls_without_rate: 10,
                covered_seconds: 0.0,
                period_seconds: 172_800.0,
                coverage_pct: 0.0,
                inbound: None,
                outbound: None,
            },
        ],
    }
}

/// Every section populated, Indonesian, signed.
fn full() -> Report {
    let groups = vec![
        group(
            "intranet",
            minutes(2700, 40, 60, 80, 0),
            Some(0.04),
            Some(false),
        ),
        group(
            "datacenter",
            minutes(2800, 10, 40, 30, 0),
            Some(4.94),
            Some(true),
        ),
        group("internet", minutes(0, 0, 0, 2880, 0), None, None),
        group("app", minutes(2860, 0, 0, 0, 20), Some(0.25), Some(true)),
    ];
    Report {
        meta: meta(Lang::Id, true),
        coverage: Coverage {
            total: 3,
            connected: 2,
            connected_pct: 66.666_666,
            target_pct: 100.0,
            met: false,
            not_connected: vec!["disdik".into()],
        },
        groups: groups.clone(),
        opds: vec![
            OpdFigure {
                id: "dinkes".into(),
                name: "Dinas Kesehatan".into(),
                completeness_pct: Some(97.2),
                connected: true,
                groups: groups.clone(),
            },
            OpdFigure {
                id: "bappeda".into(),
                name: "Bappeda, \"Perencanaan\"".into(),
                completeness_pct: None,
                connected: true,
                groups: groups[..1].to_vec(),
            },
            OpdFigure {
                id: "disdik".into(),
                name: "Dinas Pendidikan".into(),
                completeness_pct: None,
                connected: false,
                groups: vec![],
            },
        ],
        incidents: vec![
            incident("dinkes", "datacenter", 600, 20, false),
            incident("dinkes", "agent", 2800, 1234, true),
        ],
        maintenance: vec![
            MaintenanceWindow {
                opd: Some("dinkes".into()),
                group: Some("internet".into()),
                from_ms: DAY0 + 100 * MIN,
                to_ms: DAY0 + 120 * MIN,
                reason: "ganti router, \"core\"".into(),
                recorded_by: "budi".into(),
                recorded_at_ms: DAY0,
                retroactive: false,
            },
            MaintenanceWindow {
                opd: None,
                group: None,
                from_ms: DAY0 + 200 * MIN,
                to_ms: DAY0 + 260 * MIN,
                reason: "listrik padam".into(),
                recorded_by: "admin".into(),
                recorded_at_ms: DAY0 + 300 * MIN,
                retroactive: true,
            },
        ],
        comparison: Some(Comparison {
            before_from: "2026-10-01".into(),
            before_to: "2026-10-31".into(),
            groups: vec![
                ("intranet".into(), Some(98.5), Some(97.87)),
                ("app".into(), None, Some(100.0)),
            ],
            incidents: (4, 2),
        }),
        capacity: capacity(),
        findings: vec![
            "Cakupan 2 dari 3 OPD (66,7 %) di bawah target 100,0 %; belum terhubung: disdik."
                .into(),
            "dinkes: ketersediaan <Jaringan Intra> 97,87 % di bawah target SLA 99,5 %.".into(),
        ],
        recommendations: vec![
            "Pasang dan daftarkan agen di setiap OPD yang belum terhubung.".into(),
        ],
        topology: topology(),
        clock: vec![
            ClockNote {
                opd: "dinkes".into(),
                agent: "dinkes-1".into(),
                corrected_results: 3700,
                corrected_minutes: 62,
                correction_ms: Some((10_800_250, 10_861_000)),
                excluded_results: 1,
            },
            ClockNote {
                opd: "bappeda".into(),
                agent: "bappeda,1".into(),
                corrected_results: 0,
                corrected_minutes: 0,
                correction_ms: None,
                excluded_results: 12,
            },
        ],
    }
}

/// Nothing but the header: English, unsigned, one OPD, business hours.
fn empty() -> Report {
    Report {
        meta: meta(Lang::En, false),
        coverage: Coverage {
            total: 1,
            connected: 1,
            connected_pct: 100.0,
            target_pct: 100.0,
            met: true,
            not_connected: vec![],
        },
        groups: vec![],
        opds: vec![],
        incidents: vec![],
        maintenance: vec![],
        comparison: None,
        capacity: Evidence::default(),
        findings: vec!["No problems found in the period.".into()],
        recommendations: vec![],
        topology: Topology::default(),
        clock: vec![],
    }
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/report_model")
}

/// An XLSX as text: every sheet's name, then one line per cell with its
/// place, type and value.
fn xlsx_cells(bytes: &[u8]) -> String {
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).expect("xlsx opens");
    let mut out = String::new();
    for name in wb.sheet_names() {
        out.push_str(&format!("== {name}\n"));
        let range = wb.worksheet_range(&name).expect("sheet reads");
        let (r0, c0) = range.start().unwrap_or((0, 0));
        for (r, row) in range.rows().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (kind, v) = match cell {
                    Data::Empty => continue,
                    Data::String(s) => ("s", s.clone()),
                    Data::Float(f) => ("n", f.to_string()),
                    Data::Int(i) => ("n", i.to_string()),
                    other => ("?", format!("{other:?}")),
                };
                out.push_str(&format!(
                    "{},{} {kind} {v}\n",
                    r0 as usize + r,
                    c0 as usize + c
                ));
            }
        }
    }
    out
}

/// A PDF's text as `pdftotext -layout` lays it out: the fixture holds what a
/// reader sees (the bytes are compressed and carry a font subset, so a text
/// diff says more than a byte diff).
fn pdf_text(name: &str, pdf: &[u8]) -> String {
    let file = std::env::temp_dir().join(format!("report_model-{name}-{}.pdf", std::process::id()));
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by tests/run.sh");
    std::fs::remove_file(&file).ok();
    assert!(out.status.success(), "pdftotext failed on {name}");
    String::from_utf8(out.stdout).expect("utf-8 text")
}

fn check(name: &str, ext: &str, got: &[u8], problems: &mut Vec<String>) {
    let file = fixtures().join(format!("{name}.{ext}"));
    if std::env::var_os("PANTAU_BLESS").is_some() {
        std::fs::create_dir_all(fixtures()).unwrap();
        std::fs::write(&file, got).unwrap();
        return;
    }
    let want = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    if want != got {
        let out = std::env::temp_dir().join(format!("report_model-{name}.{ext}"));
        std::fs::write(&out, got).unwrap();
        problems.push(format!(
            "{name}.{ext} differs from the fixture (new output in {})",
            out.display()
        ));
    }
}

#[test]
fn every_format_matches_the_saved_output() {
    let mut problems = Vec::new();
    for (name, report) in [("full", full()), ("empty", empty())] {
        for (ext, format) in [
            ("json", Format::Json),
            ("csv", Format::Csv),
            ("html", Format::Html),
        ] {
            check(name, ext, &render_as(&report, format), &mut problems);
        }
        let pdf = render_as(&report, Format::Pdf);
        // The same report gives the same bytes (a signed bundle can be
        // rebuilt and compared).
        assert!(
            pdf == render_as(&report, Format::Pdf),
            "{name}: PDF not reproducible"
        );
        check(
            name,
            "pdf.txt",
            pdf_text(name, &pdf).as_bytes(),
            &mut problems,
        );
        let xlsx = render_as(&report, Format::Xlsx);
        // A place to keep the whole workbook for a closer look (sheet XML).
        if let Some(dir) = std::env::var_os("PANTAU_REPORT_DUMP") {
            std::fs::write(Path::new(&dir).join(format!("{name}.xlsx")), &xlsx).unwrap();
        }
        check(
            name,
            "xlsx.txt",
            xlsx_cells(&xlsx).as_bytes(),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
