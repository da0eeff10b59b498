//! One date and time syntax in every command: a day (a whole day in the
//! collector's zone, WITA by default), a wall time in that zone, or RFC 3339.

mod common;

use common::*;

#[test]
fn every_command_takes_a_day_or_a_time_in_one_syntax() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    collector_cmd(d, &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"]);
    // A day as the start is its first minute, as the end its last.
    collector_cmd(
        d,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-03",
            "--reason",
            "satu hari penuh",
            "--by",
            "admin",
        ],
    );
    // A wall time in the collector's zone and an RFC 3339 instant mix.
    collector_cmd(
        d,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--from",
            "2026-11-05 08:00",
            "--to",
            "2026-11-05T02:00:00Z",
            "--reason",
            "dua jam",
            "--by",
            "admin",
        ],
    );
    let list = collector_cmd(d, &["maintenance-list"]);
    assert!(
        list.contains("2026-11-02T00:00:00+08:00\t2026-11-04T00:00:00+08:00\tsatu hari penuh"),
        "{list}"
    );
    assert!(
        list.contains("2026-11-05T08:00:00+08:00\t2026-11-05T10:00:00+08:00\tdua jam"),
        "{list}"
    );
    // Listings and reports take the same forms; a time names its local day.
    collector_cmd(
        d,
        &[
            "incidents",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30 23:59",
        ],
    );
    let out = tempfile::tempdir().unwrap();
    let report_dir = out.path().join("laporan");
    collector_cmd(
        d,
        &[
            "report",
            "--opd",
            "dinkes",
            "--from",
            "2026-11-01T00:30:00+08:00",
            "--to",
            "2026-11-02",
            "--format",
            "json",
            "--out",
            report_dir.to_str().unwrap(),
        ],
    );
    let json = std::fs::read_dir(&report_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("manifest.json"))
        .expect("report json");
    assert!(
        json.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("2026-11-01-2026-11-02"),
        "{json:?}"
    );
    let audit = collector_cmd(d, &["audit", "list", "--since", "2026-11-01"]);
    assert!(audit.contains("maintenance"), "{audit}");
    // Anything else: one bilingual refusal, nothing recorded.
    let (code, _, err) = collector_cli(
        d,
        None,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--from",
            "kemarin",
            "--to",
            "2026-11-03",
            "--reason",
            "x",
            "--by",
            "y",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bukan tanggal atau waktu") && err.contains("is not a date or time"));
    // An incident is named by its start time, not a day.
    let (code, _, err) = collector_cli(
        d,
        None,
        &[
            "incident-note",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--start",
            "2026-11-02",
            "--note",
            "n",
            "--by",
            "a",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a day"), "{err}");
    assert_eq!(
        collector_cmd(d, &["maintenance-list"])
            .matches("\tadmin\t")
            .count(),
        2
    );
}
