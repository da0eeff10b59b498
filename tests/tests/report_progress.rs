//! `pantau-collector report` prints its progress to stderr with --progress
//! (or on a terminal), and stays quiet otherwise.

mod common;

use std::process::Command;

use common::*;

fn report(data: &std::path::Path, out: &std::path::Path, extra: &[&str]) -> (String, String) {
    let o = Command::new(bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "report",
            "--opd",
            "all",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "json",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .output()
        .expect("run pantau-collector report");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert!(o.status.success(), "report failed:\n{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn report_progress_is_printed_on_request_and_quiet_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (id, name) in [
        ("bappeda", "Badan Perencanaan"),
        ("dinkes", "Dinas Kesehatan"),
        ("dishub", "Dinas Perhubungan"),
    ] {
        collector_cmd(&data, &["opd", "add", id, "--name", name]);
    }

    let (stdout, stderr) = report(&data, &dir.path().join("with"), &["--progress"]);
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        "Memperbarui rekap per jam dan per hari… / Refreshing the hourly and daily rollups…",
        "Membaca rekap periode… / Reading the period's rollups…",
        "Menyusun laporan… 1/3 OPD (bappeda) / Assembling the report… 1 of 3 OPDs",
        "Menyusun laporan… 2/3 OPD (dinkes) / Assembling the report… 2 of 3 OPDs",
        "Menyusun laporan… 3/3 OPD (dishub) / Assembling the report… 3 of 3 OPDs",
        "Mengekspor hasil mentah… / Exporting the raw results…",
        "Menulis laporan json… / Writing the json report…",
        "Menandatangani dan menulis bundel… / Signing and writing the bundle…",
    ];
    let mut at = 0;
    for want in expected {
        let found = lines[at..]
            .iter()
            .position(|l| *l == want)
            .unwrap_or_else(|| panic!("`{want}` missing or out of order in:\n{stderr}"));
        at += found + 1;
    }
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("Selesai dalam ") && l.contains("/ Done in ")),
        "{stderr}"
    );
    // The result itself still goes to stdout.
    assert!(
        stdout.contains("laporan-provinsi-2026-11-01-2026-11-30.json"),
        "{stdout}"
    );

    // stderr is a pipe here and --progress is not given: no progress.
    let (stdout, stderr) = report(&data, &dir.path().join("without"), &[]);
    assert!(!stderr.contains("Menyusun laporan"), "{stderr}");
    assert!(!stderr.contains("Selesai dalam"), "{stderr}");
    assert!(stdout.contains("laporan-provinsi-"), "{stdout}");
}
