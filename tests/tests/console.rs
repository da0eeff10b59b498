//! The admin console in headless Chromium against the real collector: an
//! admin logs in, adds an OPD (and sees a refused id explained on the
//! form), issues an enrolment code on the agents page and enrols a real
//! `pantau-agent` with it (its results arrive), adds a central target for
//! the office (a bad address refused on the form first) and sees the agent
//! apply it and its results arrive, schedules a maintenance
//! window and ends it early, generates a signed report through the report
//! form, and reads the audit entries of all of it on /admin/audit. A viewer
//! gets 403 on /admin.

mod common;

use std::time::Duration;

use common::browser::{add_user, eval, launch, sign_in};
use common::enrol::{CodeFrom, enroll_agent};
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

/// A TCP port on loopback that accepts (and drops) every connection.
fn open_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    port
}

/// On /admin/target the admin adds a TCP target for the enrolled office:
/// a bad address is refused on the form (nothing stored), the fixed one
/// is stored as revision 1, the running agent applies it (the agents page
/// shows the version) and its results arrive.
fn change_the_offices_targets(tab: &Tab, base: &str, collector: &Collector) {
    let port = open_port();
    goto(tab, &format!("{base}/admin/target"));
    choose(tab, "#target-form select[name=scope]", "opd:dinkes");
    fill(tab, "#target-form input[name=id]", "layanan-dinkes");
    fill(tab, "#target-form input[name=group]", "app");
    fill(tab, "#target-form input[name=kind]", "tcp");
    fill(tab, "#target-form input[name=address]", "tanpa-port");
    fill(tab, "#target-form input[name=label]", "Layanan Dinkes");
    fill(tab, "#target-form input[name=interval]", "2s");
    fill(tab, "#target-form input[name=timeout]", "1s");
    submit(tab, "#target-form button");
    let page = body_text(tab);
    assert!(
        page.contains("Ditolak / refused")
            && page.contains("invalid target definition")
            && page.contains("address:"),
        "{page}"
    );
    assert!(tab.find_elements("tr[data-target]").is_err(), "{page}");
    assert_eq!(
        eval(tab, "document.getElementById('revision').textContent"),
        "0",
        "nothing stored"
    );
    // The typed values stay in the form; only the address is fixed.
    let kept = eval(
        tab,
        "document.querySelector('#target-form input[name=label]').value",
    );
    assert_eq!(kept, "Layanan Dinkes");
    fill(
        tab,
        "#target-form input[name=address]",
        &format!("127.0.0.1:{port}"),
    );
    submit(tab, "#target-form button");
    assert!(
        tab.get_url().ends_with("/admin/target?ok=1"),
        "{}: {}",
        tab.get_url(),
        body_text(tab)
    );
    let row = eval(
        tab,
        "document.querySelector('tr[data-target=\"opd:dinkes/layanan-dinkes\"]').innerText",
    );
    let row = row.as_str().unwrap_or_default();
    assert!(row.contains(&format!("127.0.0.1:{port}")), "{row}");
    assert_eq!(
        eval(tab, "document.getElementById('revision').textContent"),
        "1"
    );

    // The running agent applies revision 1; the agents page shows it.
    wait_for(
        "the agent applying revision 1",
        Duration::from_secs(60),
        || {
            goto(tab, &format!("{base}/admin/agen"));
            let cell = eval(
                tab,
                "document.querySelector('tr[data-agent=\"dinkes-1\"] td.config').innerText",
            );
            let cell = cell.as_str().unwrap_or_default().to_string();
            assert!(!cell.contains("ditolak"), "refused: {cell}");
            cell.starts_with("v1").then_some(())
        },
    );
    goto(tab, &format!("{base}/admin/target/agen/dinkes-1"));
    let page = body_text(tab);
    assert!(
        page.contains("diterapkan / applied") && page.contains("layanan-dinkes"),
        "{page}"
    );
    let ok = wait_for(
        "a result of the new central target",
        Duration::from_secs(60),
        || {
            metric(
                &collector.metrics(),
                "pantau_probe_success",
                &[
                    ("opd", "dinkes"),
                    ("agent", "dinkes-1"),
                    ("target", "layanan-dinkes"),
                ],
            )
        },
    );
    assert_eq!(ok, 1.0, "the open port answers");
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

    // The same form from elsewhere, without the session's CSRF token: refused.
    let cookie = format!(
        "{}Content-Type: application/x-www-form-urlencoded\r\n",
        session_cookie(&tab)
    );
    let (code, _, _) = http_send(
        collector.http,
        "POST",
        "/admin/opd",
        &cookie,
        "id=jahat&name=Jahat",
        Duration::from_secs(30),
    );
    assert_eq!(code, 403, "no CSRF token, no change");
    assert!(!collector_cmd(data, &["opd", "list", "--all"]).contains("jahat"));

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
    let out = enroll_agent(
        &collector.agent_url(),
        &fingerprint,
        agent_dir.path(),
        CodeFrom::File(&code),
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
    change_the_offices_targets(&tab, &base, &collector);
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
        "target.change",
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
    let target = rows.lines().find(|l| l.contains("target.change")).unwrap();
    assert!(
        target.contains("opd:dinkes/layanan-dinkes") && target.contains("\"revision\":1"),
        "the target change with its revision: {target}"
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

/// The CLI takes the console's code path: rename, maintenance ended early
/// and deleted with a reason, a role change, and a removed OPD that leaves
/// the status pages and takes no new agents while its history stays.
#[test]
fn the_cli_shares_the_actions_and_a_removed_opd_keeps_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let ok = |args: &[&str]| {
        let (done, out, err) = collector_run(&data, args);
        assert!(done, "{args:?}: {out}{err}");
        out
    };
    let refused = |args: &[&str]| {
        let (done, out, err) = collector_run(&data, args);
        assert!(!done, "{args:?} must be refused: {out}");
        err
    };
    ok(&["opd", "add", "dinkes", "--name", "Dinas Kesehatan"]);
    ok(&["opd", "add", "bappeda", "--name", "Bappeda"]);
    ok(&[
        "agent",
        "add",
        "dinkes-1",
        "--opd",
        "dinkes",
        "--print-token",
    ]);
    declare(
        &data,
        "dinkes",
        "dinkes-1",
        vec![decl("pusdat-xyz", "intranet", "icmp", 60_000)],
    );
    let out = ok(&["opd", "rename", "dinkes", "--name", "Dinkes Provinsi"]);
    assert!(out.contains("Dinkes Provinsi"), "{out}");
    let err = refused(&["opd", "rename", "dinkes", "--name", " "]);
    assert!(err.contains("`name`: wajib diisi / required"), "{err}");

    let now = now_ms();
    ok(&[
        "maintenance",
        "--opd",
        "dinkes",
        "--from",
        &rfc3339(now - 3_600_000),
        "--to",
        &rfc3339(now + 3_600_000),
        "--reason",
        "ganti router",
        "--by",
        "budi",
    ]);
    let err = refused(&[
        "maintenance",
        "--opd",
        "nope",
        "--from",
        &rfc3339(now),
        "--to",
        &rfc3339(now + 60_000),
        "--reason",
        "x",
        "--by",
        "budi",
    ]);
    assert!(
        err.contains("`opd`") && err.contains("does not exist"),
        "{err}"
    );
    let list = ok(&["maintenance-list"]);
    let id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_string();
    ok(&["maintenance-end", &id]);
    let err = refused(&["maintenance-end", &id]);
    assert!(err.contains("has already ended"), "{err}");
    let err = refused(&["maintenance-delete", &id, "--reason", ""]);
    assert!(err.contains("`reason`"), "{err}");
    ok(&["maintenance-delete", &id, "--reason", "salah tanggal"]);
    assert!(ok(&["maintenance-list"]).contains("0 jendela pemeliharaan"));
    let err = refused(&["maintenance-end", &id]);
    assert!(err.contains("does not exist"), "{err}");

    ok(&["user", "add", "ani", "--role", "viewer"]);
    let err = refused(&["user", "role", "ani", "--role", "opd"]);
    assert!(err.contains("`opd`"), "{err}");
    ok(&["user", "role", "ani", "--role", "opd", "--opd", "dinkes"]);
    assert!(ok(&["user", "list"]).contains("ani\topd\tdinkes\tactive"));

    ok(&["opd", "remove", "dinkes"]);
    let err = refused(&["agent", "add", "dinkes-2", "--opd", "dinkes"]);
    assert!(err.contains("disabled or removed"), "{err}");
    assert_eq!(ok(&["opd", "list"]), "bappeda\tBappeda\t0 agent(s)\n");
    assert!(ok(&["opd", "list", "--all"]).contains("dinkes\tDinkes Provinsi\t1 agent(s)\tremoved"));

    let collector = Collector::start(&data);
    let (code, page) = collector.get("/");
    assert_eq!(code, 200);
    assert!(page.contains("Bappeda"), "{page}");
    assert!(
        !page.contains("Dinkes Provinsi") && !page.contains("pusdat-xyz"),
        "{page}"
    );
    let (_, opds) = collector.get("/api/v1/opds");
    assert!(!opds.contains("dinkes"), "{opds}");
    let (code, _) = collector.get("/laporan/opd/dinkes");
    assert_eq!(code, 200, "a removed OPD's history stays readable");

    let log = ok(&["audit", "list", "--json"]);
    let entries = pantau_collector::audit::from_jsonl(&log).expect("JSON lines");
    let find = |a: &str| {
        entries
            .iter()
            .find(|e| e.action == a)
            .unwrap_or_else(|| panic!("{a}: {log}"))
    };
    assert_eq!(find("opd.rename").before["name"], "Dinas Kesehatan");
    assert_eq!(
        find("maintenance.delete").after["delete_reason"],
        "salah tanggal"
    );
    assert!(
        find("maintenance.end").after["to_ms"].as_i64()
            < find("maintenance.end").before["to_ms"].as_i64()
    );
    assert_eq!(find("opd.remove").after["state"], "removed");
    let role = entries.iter().rfind(|e| e.action == "user.change").unwrap();
    assert_eq!(
        (role.before["role"].as_str(), role.after["role"].as_str()),
        (Some("viewer"), Some("opd"))
    );
    assert!(entries.iter().all(|e| e.actor_kind == "cli-user"));
}
