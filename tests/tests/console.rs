//! The admin console in headless Chromium against the real collector: an
//! admin logs in, adds an OPD (and sees a refused id explained on the
//! form), issues an enrolment code on the agents page and enrols a real
//! `pantau-agent` with it (its results arrive), schedules a maintenance
//! window and ends it early, generates a signed report through the report
//! form, and reads the audit entries of all of it on /admin/audit. A viewer
//! gets 403 on /admin.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::browser::{add_user, eval, launch, sign_in};
use common::*;
use headless_chrome::Tab;

const ADMIN_PW: &str = "kata-sandi-admin-panjang";
const VIEWER_PW: &str = "kata-sandi-viewer-panjang";

fn goto(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
}

fn body_text(tab: &Tab) -> String {
    eval(tab, "document.body.innerText")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Type `text` into the field `css` (emptied first).
fn fill(tab: &Tab, css: &str, text: &str) {
    let js = format!("document.querySelector({css:?}).value = ''");
    eval(tab, &js);
    let field = tab
        .wait_for_element(css)
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field
        .click()
        .and_then(|f| f.type_into(text))
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

/// Choose `value` in the `<select>` `css`.
fn choose(tab: &Tab, css: &str, value: &str) {
    let js = format!(
        "(() => {{ const s = document.querySelector({css:?}); s.value = {value:?}; return s.value; }})()"
    );
    assert_eq!(eval(tab, &js), value, "{css} has the option {value}");
}

/// Click the button `css` and wait for the page it leads to (a new
/// document: the mark set on the old one is gone).
fn submit(tab: &Tab, css: &str) {
    eval(tab, "window.pantauOldPage = true");
    tab.wait_for_element(css)
        .and_then(|e| e.click().map(|_| ()))
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
    wait_for("the page after the form", Duration::from_secs(30), || {
        let gone = tab
            .evaluate(
                "window.pantauOldPage === undefined && document.readyState === 'complete'",
                false,
            )
            .ok()?
            .value?;
        (gone == serde_json::Value::Bool(true)).then_some(())
    });
}

/// `pantau-agent enroll` with a code and the pinned CA fingerprint.
fn enroll(url: &str, fingerprint: &str, code: &str, dir: &Path) -> Output {
    let file = dir.join("pantau.code");
    std::fs::write(&file, format!("{code}\n")).unwrap();
    Command::new(bin("pantau-agent"))
        .args([
            "enroll",
            "--collector",
            url,
            "--ca-fingerprint",
            fingerprint,
        ])
        .arg("--config")
        .arg(dir.join("etc/agent.toml"))
        .arg("--token-file")
        .arg(dir.join("etc/agent.token"))
        .arg("--spool-dir")
        .arg(dir.join("spool"))
        .arg("--code-file")
        .arg(&file)
        .env_remove("PANTAU_AGENT_TOKEN")
        .output()
        .expect("run pantau-agent enroll")
}

/// The `Cookie:` header line of the tab's session.
fn session_cookie(tab: &Tab) -> String {
    let session = tab
        .get_cookies()
        .unwrap()
        .into_iter()
        .find(|c| c.name == "pantau_session")
        .expect("a session cookie");
    format!("Cookie: pantau_session={}\r\n", session.value)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[test]
// Long: one walk-through, step by step as an admin does it in the browser.
fn an_admin_enrols_an_office_schedules_maintenance_signs_a_report_and_reads_the_audit() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    add_user(data, "siti", "admin", &[], ADMIN_PW);
    add_user(data, "vivi", "viewer", &[], VIEWER_PW);
    let collector = Collector::start(data);
    let base = format!("http://{}", collector.http);
    let browser = launch(1280, 900);
    let tab = sign_in(&browser, &base, "siti", ADMIN_PW);

    // An OPD: a refused id is explained on the form, nothing is added.
    goto(&tab, &format!("{base}/admin/opd"));
    fill(&tab, "#opd-add input[name=id]", "dinas kesehatan");
    fill(&tab, "#opd-add input[name=name]", "Dinas Kesehatan");
    submit(&tab, "#opd-add button");
    let page = body_text(&tab);
    assert!(
        page.contains("Ditolak / refused") && page.contains("`id`"),
        "{page}"
    );
    assert!(
        tab.find_elements("tr[data-opd]").is_err(),
        "nothing added: {page}"
    );
    fill(&tab, "#opd-add input[name=id]", "dinkes");
    fill(&tab, "#opd-add input[name=name]", "Dinas Kesehatan");
    submit(&tab, "#opd-add button");
    assert!(
        tab.get_url().ends_with("/admin/opd?ok=1"),
        "Post/Redirect/Get: {}",
        tab.get_url()
    );
    let page = body_text(&tab);
    assert!(
        page.contains("Dinas Kesehatan") && page.contains("aktif / active"),
        "{page}"
    );

    // An agent and its one-time enrolment code, shown once on the page.
    goto(&tab, &format!("{base}/admin/agen"));
    fill(&tab, "#agent-add input[name=id]", "dinkes-1");
    choose(&tab, "#agent-add select[name=opd]", "dinkes");
    submit(&tab, "#agent-add button");
    let code = eval(&tab, "document.getElementById('enrol-code').textContent");
    let code = code
        .as_str()
        .expect("the code on the page")
        .trim()
        .to_string();
    assert!(code.starts_with("PE-"), "{code}");
    let shown = collector_cmd(data, &["ca", "show"]);
    let fingerprint = shown.lines().nth(1).unwrap().trim().to_string();
    let page = body_text(&tab);
    assert!(
        page.contains(&format!("--ca-fingerprint {fingerprint}")),
        "{page}"
    );

    // A real agent enrols with it and its results arrive.
    let agent_dir = tempfile::tempdir().unwrap();
    let out = enroll(
        &collector.agent_url(),
        &fingerprint,
        &code,
        agent_dir.path(),
    );
    assert!(
        out.status.success(),
        "enroll: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut agent = start_agent(&agent_dir.path().join("etc/agent.toml"));
    let ok = wait_for(
        "a result of the enrolled agent",
        Duration::from_secs(90),
        || {
            metric(
                &collector.metrics(),
                "pantau_probe_success",
                &[
                    ("opd", "dinkes"),
                    ("agent", "dinkes-1"),
                    ("target", "pusat-data-pantau-tcp"),
                ],
            )
        },
    );
    assert_eq!(ok, 1.0);
    goto(&tab, &format!("{base}/admin/agen"));
    let row = eval(
        &tab,
        "document.querySelector('tr[data-agent=\"dinkes-1\"]').innerText",
    );
    let row = row.as_str().unwrap_or_default();
    assert!(
        row.contains("aktif / active") && row.contains("127.0.0.1"),
        "{row}"
    );
    let version = eval(
        &tab,
        "document.querySelector('tr[data-agent=\"dinkes-1\"] td:nth-child(4)').innerText",
    );
    assert_ne!(
        version.as_str().unwrap_or("-").trim(),
        "-",
        "the agent's version: {row}"
    );
    assert!(agent.terminate().success());

    // A maintenance window, then ended early.
    goto(&tab, &format!("{base}/admin/pemeliharaan"));
    let now = now_ms();
    choose(&tab, "#maintenance-add select[name=opd]", "dinkes");
    fill(
        &tab,
        "#maintenance-add input[name=from]",
        &rfc3339(now - 600_000),
    );
    fill(
        &tab,
        "#maintenance-add input[name=to]",
        &rfc3339(now + 7_200_000),
    );
    fill(
        &tab,
        "#maintenance-add input[name=reason]",
        "ganti router inti",
    );
    submit(&tab, "#maintenance-add button");
    assert!(tab.get_url().ends_with("?ok=1"), "{}", tab.get_url());
    let page = body_text(&tab);
    assert!(
        page.contains("ganti router inti") && page.contains("Akhiri sekarang"),
        "{page}"
    );
    submit(&tab, "tr[data-window] input[value=end] ~ button");
    let page = body_text(&tab);
    assert!(tab.get_url().ends_with("?ok=1"), "{page}");
    assert!(
        page.contains("ganti router inti") && !page.contains("Akhiri sekarang"),
        "ended: {page}"
    );

    // A signed report through the report form.
    goto(&tab, &format!("{base}/laporan"));
    fill(
        &tab,
        "form[action='/api/v1/report'] input[name=opd]",
        "dinkes",
    );
    choose(
        &tab,
        "form[action='/api/v1/report'] select[name=format]",
        "json",
    );
    eval(
        &tab,
        "document.querySelector('input[name=bundle]').checked = true",
    );
    let query = eval(
        &tab,
        "new URLSearchParams(new FormData(document.querySelector(\"form[action='/api/v1/report']\"))).toString()",
    );
    let query = query.as_str().unwrap_or_default().to_string();
    assert!(
        query.contains("bundle=1") && query.contains("opd=dinkes"),
        "{query}"
    );
    tab.wait_for_element("form[action='/api/v1/report'] button")
        .and_then(|b| b.click().map(|_| ()))
        .expect("download the signed bundle");
    // The browser downloads the bundle; the register lists it with its requester.
    let listed = (0..30).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        goto(&tab, &format!("{base}/laporan/register"));
        body_text(&tab).contains("siti")
    });
    if !listed {
        let cookie = session_cookie(&tab);
        let (code, head, body) = http_send(
            collector.http,
            "GET",
            &format!("/api/v1/report?{query}"),
            &cookie,
            "",
            Duration::from_secs(60),
        );
        panic!(
            "the form's signed report is not in the register; the same request gives {code}\n{head}\n{}",
            &body[..body.len().min(2000)]
        );
    }

    // The audit entries of all of this, with who and from where.
    goto(&tab, &format!("{base}/admin/audit"));
    let rows = eval(
        &tab,
        "Array.from(document.querySelectorAll('#audit tr')).map(r => r.innerText).join('\\n')",
    );
    let rows = rows.as_str().unwrap_or_default().to_string();
    for action in [
        "auth.login",
        "opd.add",
        "agent.add",
        "enrol.code",
        "enrol.redeem",
        "maintenance.create",
        "maintenance.end",
        "report.sign",
    ] {
        let row = rows
            .lines()
            .find(|l| l.contains(action))
            .unwrap_or_else(|| panic!("no {action} entry:\n{rows}"));
        if action != "enrol.redeem" {
            assert!(row.contains("siti") && row.contains("127.0.0.1"), "{row}");
        }
    }
    let end = rows
        .lines()
        .find(|l| l.contains("maintenance.end"))
        .unwrap();
    assert!(
        end.contains("\"to_ms\"") && end.contains("ganti router inti"),
        "before/after: {end}"
    );
    assert!(!rows.contains(&code), "the code never enters the audit log");
    // The JSON-lines export holds the same chain, and it verifies.
    let (status, jsonl) = collector.get("/admin/audit.jsonl");
    assert_eq!(status, 200);
    let entries = pantau_collector::audit::from_jsonl(&jsonl).expect("JSON lines");
    assert!(entries.iter().any(|e| e.action == "maintenance.end"));
    pantau_collector::audit::verify(&entries).expect("the exported chain verifies");

    // A viewer gets 403 on /admin, in the browser and on the wire.
    let viewer = sign_in(&browser, &base, "vivi", VIEWER_PW);
    goto(&viewer, &format!("{base}/admin"));
    let page = body_text(&viewer);
    assert!(
        page.contains("Tidak diizinkan") && page.contains("viewer"),
        "{page}"
    );
    let cookie = session_cookie(&viewer);
    let (code, _, _) = http_send(
        collector.http,
        "GET",
        "/admin",
        &cookie,
        "",
        Duration::from_secs(30),
    );
    assert_eq!(code, 403);
    let (code, _, _) = http_send(
        collector.http,
        "GET",
        "/",
        &cookie,
        "",
        Duration::from_secs(30),
    );
    assert_eq!(code, 200, "the viewer's own pages still open");
}
