//! The signed bundle is self-contained and its origin checkable (issue 10):
//! a scripted day (yesterday, WITA) with known outages, a silent agent
//! stretch, degraded minutes, a result before the period that holds into it
//! and a retroactive maintenance window goes through the real store, rollups
//! and `pantau-collector report` (CLI and the HTTP .tar). The bundled
//! `pantau-recompute.py` (Python, standard library only) must find every
//! figure of the report JSON equal, and a changed raw row different; `verify`
//! must refuse a file the manifest does not list, and say plainly when origin
//! was not checked (exit code 3).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use pantau_collector::model::{Outcome, ProbeKind};
use pantau_collector::model::{ResultRow, TargetDecl};

const OFFSET_H: i32 = 8;

fn targets() -> Vec<TargetDecl> {
    vec![
        // Every two minutes: each result holds the next minute.
        decl("pusdat", "intranet", "icmp", 120_000),
        decl("inet-a", "internet", "tcp", 30_000),
        decl("inet-b", "internet", "tcp", 30_000),
        decl("simpeg", "app", "http", 60_000),
    ]
}

/// (ok, value ms, echoes received of 5) of `target` at local minute `m`;
/// `None`: the agent sent nothing (silent).
fn truth(target: &str, m: i64) -> Option<(bool, f64, u32)> {
    if (1000..1030).contains(&m) {
        return None;
    }
    let local_outage = (600..610).contains(&m);
    Some(match target {
        "pusdat" if local_outage => (false, 0.0, 0),
        // 2 of 5 echoes lost: degraded.
        "pusdat" if (1101..1111).contains(&m) => (true, 12.0, 3),
        "pusdat" => (true, 12.0, 5),
        "inet-a" if local_outage || (300..400).contains(&m) || (700..720).contains(&m) => {
            (false, 0.0, 0)
        }
        "inet-b" if local_outage || (700..720).contains(&m) => (false, 0.0, 0),
        "simpeg" if local_outage || (800..806).contains(&m) => (false, 0.0, 0),
        // 700 ms > 500 ms: degraded.
        "simpeg" if (900..910).contains(&m) => (true, 700.0, 0),
        _ => (true, 40.0, 0),
    })
}

fn rows(day0: i64) -> Vec<ResultRow> {
    let mut out = Vec::new();
    let mut seq = 0;
    // From one minute before the period: pusdat's result at -1 holds minute 0.
    for m in -1i64..1440 {
        for t in targets() {
            let offsets: &[i64] = match t.id.as_str() {
                "pusdat" if m.rem_euclid(2) == 1 => &[10_000],
                "pusdat" => &[],
                "simpeg" => &[20_000],
                _ => &[5_000, 35_000],
            };
            let Some((ok, v, rc)) = truth(&t.id, m) else {
                continue;
            };
            for off in offsets {
                seq += 1;
                let icmp = t.kind == ProbeKind::Icmp;
                out.push(ResultRow {
                    epoch: 1,
                    seq,
                    target_id: t.id.clone(),
                    group: t.group.to_string(),
                    kind: t.kind.into(),
                    observed_at_ms: day0 + m * 60_000 + off,
                    outcome: if ok { Outcome::Ok } else { Outcome::Timeout },
                    detail: String::new(),
                    value_ms: ok.then_some(v),
                    sent: icmp.then_some(5),
                    received: icmp.then_some(rc),
                    data: serde_json::json!({}),
                    late: false,
                    clock_flag: None,
                    agent_time_ms: day0 + m * 60_000 + off,
                    clock_correction_ms: None,
                });
            }
        }
    }
    out
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339()
}

/// Yesterday (local) and the UTC ms of its local midnight.
fn yesterday() -> (String, i64) {
    let day = local_date(now_ms() - 86_400_000, OFFSET_H);
    let d = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").unwrap();
    let day0 = d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
        - i64::from(OFFSET_H) * 3_600_000;
    (day, day0)
}

/// The scripted day, a second OPD whose agent never reported, and a
/// maintenance window on the internet group recorded afterwards.
fn seed(data: &Path, day0: i64) {
    enrol(data, "dinkes", "dinkes-1");
    enrol(data, "disdik", "disdik-1");
    declare(data, "dinkes", "dinkes-1", targets());
    declare(data, "disdik", "disdik-1", targets());
    store_rows(data, "dinkes", "dinkes-1", &rows(day0), now_ms());
    let (ok, _, e) = collector_run(
        data,
        &[
            "maintenance",
            "--opd",
            "dinkes",
            "--group",
            "internet",
            "--from",
            &rfc3339(day0 + 300 * 60_000),
            "--to",
            &rfc3339(day0 + 320 * 60_000),
            "--reason",
            "ganti router",
            "--by",
            "budi",
        ],
    );
    assert!(ok, "{e}");
}

/// `python3 SCRIPT BUNDLE`: exit code and stdout + stderr.
fn recompute(script: &Path, bundle: &Path) -> (i32, String) {
    let out = Command::new("python3")
        .arg(script)
        .arg(bundle)
        .output()
        .expect("python3 is installed");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn config(dir: &Path) -> PathBuf {
    let p = dir.join("collector.toml");
    std::fs::write(
        &p,
        "[report]\npublic_key_url = \"https://diskominfo.example.invalid/kunci.txt\"\n\
         [report.signoff]\nname = \"Andi Saputra, S.Kom.\"\nnip = \"19800101 200501 1 001\"\n\
         position = \"Kepala Bidang Persandian\"\nplace = \"Mamuju\"\n",
    )
    .unwrap();
    p
}

#[test]
fn bundle_recomputes_every_figure_and_verify_is_honest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (day, day0) = yesterday();
    seed(&data, day0);
    let cfg = config(dir.path());
    let out = dir.path().join("bundel");
    let (code, stdout, stderr) = collector_cli(
        &data,
        Some(&cfg),
        &[
            "report",
            "--opd",
            "all",
            "--from",
            &day,
            "--to",
            &day,
            "--format",
            "pdf",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let base = format!("laporan-provinsi-{day}-{day}");
    let raw_name = format!("hasil-mentah-provinsi-{day}-{day}.csv");
    let mut want = vec![
        "MANIFEST.sig".to_string(),
        "MANIFEST.txt".into(),
        "README.txt".into(),
        "agen.csv".into(),
        "audit.jsonl".into(),
        raw_name.clone(),
        "katalog-target.csv".into(),
        format!("{base}.json"),
        format!("{base}.pdf"),
        "pantau-recompute.py".into(),
        "pemeliharaan.csv".into(),
        "sesi-agen.csv".into(),
    ];
    want.sort();
    assert_eq!(names, want);
    // The catalogue lists the silent agent's targets too.
    let cat = csv_plain(&std::fs::read_to_string(out.join("katalog-target.csv")).unwrap());
    assert!(cat.starts_with("agent,opd,id,group,kind,address,label,interval_ms,"));
    assert_eq!(
        cat.lines().filter(|l| l.starts_with("disdik-1,")).count(),
        4
    );
    let raw = csv_plain(&std::fs::read_to_string(out.join(&raw_name)).unwrap());
    assert!(raw.starts_with(
        "agent,epoch,seq,opd,group,target,kind,observed_at_ms,agent_time_ms,clock_correction_ms,received_at_ms,"
    ));
    // The rows of minute -1 (before the period) are exported: they hold into it.
    let before = day0 - 60_000 + 10_000;
    assert!(
        raw.contains(&format!(",intranet,pusdat,icmp,{before},")),
        "{}",
        &raw[..400]
    );

    // The recomputation agrees with every figure.
    let script = out.join("pantau-recompute.py");
    let (code, text) = recompute(&script, &out);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SAMA / EQUAL"), "{text}");
    // ... and the figures are the known truth, not just equal to each other.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{base}.json"))).unwrap()).unwrap();
    let dinkes = &json["opds"][0];
    assert_eq!(dinkes["id"], "dinkes");
    let group = |g: &str| {
        dinkes["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == g)
            .unwrap()["minutes"]
            .clone()
    };
    // Internet: down 600-609 and 700-719; maintenance 300-319; silent 1000-1029.
    let inet = group("internet");
    assert_eq!(
        (
            inet["down"].as_i64(),
            inet["maintenance"].as_i64(),
            inet["unknown"].as_i64()
        ),
        (Some(30), Some(20), Some(30)),
        "{inet}"
    );
    // App: down 600-609 and 800-805, degraded 900-909.
    let app = group("app");
    assert_eq!(
        (app["down"].as_i64(), app["degraded"].as_i64()),
        (Some(16), Some(10))
    );
    // Intranet: each two-minute result holds the next minute, so the outage
    // is 601-610, the silence 1001-1030, degraded 1101-1110 (loss 40 %).
    let intra = group("intranet");
    assert_eq!(
        (
            intra["down"].as_i64(),
            intra["unknown"].as_i64(),
            intra["degraded"].as_i64()
        ),
        (Some(10), Some(30), Some(10)),
        "{intra}"
    );
    let incidents: Vec<(String, i64)> = json["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["group"].as_str().unwrap().to_string(),
                i["minutes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(incidents.contains(&("agent".into(), 29)), "{incidents:?}");
    assert!(
        incidents.contains(&("internet".into(), 20)),
        "{incidents:?}"
    );

    // Verify with this collector's key: origin checked.
    let (code, stdout, stderr) = collector_cli(&data, None, &["verify", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.starts_with("OK: 10 file(s)"), "{stdout}");
    // Without any key known: integrity only, a distinct exit code, said plainly.
    let nokey = dir.path().join("elsewhere");
    let (code, stdout, _) = collector_cli(&nokey, None, &["verify", out.to_str().unwrap()]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains("ASAL-USUL TIDAK") && stdout.contains("ORIGIN WAS NOT"),
        "{stdout}"
    );
    assert!(!nokey.join("report-signing.key").exists());
    // With the right key given explicitly: origin checked.
    let key = stdout
        .lines()
        .find_map(|l| l.strip_prefix("signed by Ed25519 key "))
        .unwrap()
        .to_string();
    let (code, _, e) = collector_cli(
        &nokey,
        None,
        &["verify", out.to_str().unwrap(), "--public-key", &key],
    );
    assert_eq!(code, 0, "{e}");

    // The PDF's closing box: raw export name and SHA-256, the verify command,
    // where the official key is published, and the sign-off block.
    let pdf = pdftotext(&out.join(format!("{base}.pdf")));
    let sum = Command::new("sha256sum")
        .arg(out.join(&raw_name))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout)[..64].to_string();
    for want in [
        "Keabsahan dokumen",
        raw_name.as_str(),
        sum.as_str(),
        "pantau-collector verify",
        key.as_str(),
        "https://diskominfo.example.invalid/kunci.txt",
        "python3 pantau-recompute.py",
        "Andi Saputra, S.Kom.",
        "NIP 19800101 200501 1 001",
        "Kepala Bidang Persandian",
        "Mamuju,",
    ] {
        assert!(pdf.contains(want), "missing {want:?} in:\n{pdf}");
    }

    // A changed raw row: verify fails, and the script finds the difference.
    let copy = dir.path().join("diubah");
    std::fs::create_dir(&copy).unwrap();
    for n in &names {
        std::fs::copy(out.join(n), copy.join(n)).unwrap();
    }
    // simpeg at local 12.00 (minute 720): ok -> timeout.
    let at = day0 + 720 * 60_000 + 20_000;
    let line = raw
        .lines()
        .find(|l| l.contains(&format!(",app,simpeg,http,{at},")))
        .unwrap();
    let changed = line.replace(",ok,40,", ",timeout,,");
    assert_ne!(line, changed);
    std::fs::write(copy.join(&raw_name), raw.replace(line, &changed)).unwrap();
    let (code, text) = recompute(&script, &copy);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("BERBEDA / DIFFERENT"), "{text}");
    assert!(
        text.contains("dinkes app down: skrip/script 17 != laporan/report 16"),
        "{text}"
    );
    let (code, _, e) = collector_cli(&data, None, &["verify", copy.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(e.contains("was changed after signing"), "{e}");

    // A file the manifest does not list: verify fails.
    std::fs::write(out.join("hasil-mentah-koreksi.csv"), "agent\n").unwrap();
    let (code, _, e) = collector_cli(&data, None, &["verify", out.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        e.contains("hasil-mentah-koreksi.csv is in the bundle folder but not listed"),
        "{e}"
    );
    // Unusable input: exit 2.
    let (code, text) = recompute(&script, &dir.path().join("nothing"));
    assert_eq!(code, 2, "{text}");
}

#[test]
fn http_tar_bundle_recomputes_and_refuses_an_added_member() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (day, day0) = yesterday();
    seed(&data, day0);
    let mut c = Collector::start(&data);
    let (code, body) = http_get_bytes(
        c.http,
        &format!("/api/v1/report?opd=dinkes&from={day}&to={day}&format=csv&bundle=1"),
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    c.proc.terminate();
    let tar = dir.path().join("bundel.tar");
    std::fs::write(&tar, &body).unwrap();
    let (code, stdout, e) = collector_cli(&data, None, &["verify", tar.to_str().unwrap()]);
    assert_eq!(code, 0, "{e}");
    // csv + json + raw + catalogue + agents + sessions + maintenance + audit + README + script,
    // and from the web the signed request record (permintaan.json: who asked).
    assert!(stdout.starts_with("OK: 11 file(s)"), "{stdout}");
    // The script, taken out of the archive, reads the archive itself.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let (code, text) = recompute(&x.join("pantau-recompute.py"), &tar);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SAMA / EQUAL"), "{text}");
    // A member appended to the archive is refused.
    std::fs::write(dir.path().join("tambahan.txt"), "x").unwrap();
    let st = Command::new("tar")
        .arg("rf")
        .arg(&tar)
        .arg("-C")
        .arg(dir.path())
        .arg("tambahan.txt")
        .status()
        .unwrap();
    assert!(st.success());
    let (code, _, e) = collector_cli(&data, None, &["verify", tar.to_str().unwrap()]);
    assert_eq!(code, 1, "{e}");
    assert!(e.contains("VERIFICATION FAILED"), "{e}");
}
