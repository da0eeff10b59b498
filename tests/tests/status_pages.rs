//! The status pages as people see them: a real collector holding data for
//! four OPDs (one with a failing target, one with a silent agent, one
//! without agents whose name carries `<script>`, one all OK), signed in
//! through the login form of Debian's headless Chromium at a wall-screen
//! width (1280 px) and a phone width (390 px). The layout is measured in
//! the browser: no horizontal scrolling, cards side by side or in one
//! column, problems first, 90 cells per history bar, one navigation on
//! every page, a refresh, escaped names. Screenshots go to the test's temp
//! directory and their sizes are printed.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser;
use common::*;
use headless_chrome::Tab;
use headless_chrome::protocol::cdp::Emulation::SetDeviceMetricsOverride;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use pantau_collector::model::{Outcome, ResultRow, TargetDecl};
use serde_json::Value;

const PASSWORD: &str = "layar-dinding-2026";
const SCRIPT_NAME: &str = "<script>alert('x')</script> Dinas Pariwisata";
const HOUR: i64 = 3_600_000;

/// Results of `targets` every 5 minutes in `[from, to)`; `down(target, t)`
/// says which fail.
fn rows(
    targets: &[TargetDecl],
    from: i64,
    to: i64,
    seq: &mut u64,
    down: impl Fn(&str, i64) -> bool,
) -> Vec<ResultRow> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        for d in targets {
            *seq += 1;
            let bad = down(&d.id, t);
            out.push(ResultRow {
                epoch: 1,
                seq: *seq,
                target_id: d.id.clone(),
                group: d.group.to_string(),
                kind: d.kind.into(),
                observed_at_ms: t,
                outcome: if bad { Outcome::Timeout } else { Outcome::Ok },
                detail: String::new(),
                value_ms: (!bad).then_some(12.0),
                sent: None,
                received: None,
                data: serde_json::json!({}),
                late: false,
                clock_flag: None,
                agent_time_ms: t,
                clock_correction_ms: None,
            });
        }
        t += 5 * 60_000;
    }
    out
}

/// Four OPDs in `data`: `bappeda` (its internet target failing for the last
/// hour), `kominfo` (one of two agents silent for three hours), `dispar`
/// (no agent, a name with `<script>`), `arsip` (five groups, all OK).
fn seed(data: &Path) {
    let now = now_ms();
    for (id, name) in [
        ("arsip", "Dinas Arsip"),
        ("bappeda", "Badan Perencanaan"),
        ("dispar", SCRIPT_NAME),
        ("kominfo", "Dinas Kominfo"),
    ] {
        collector_cmd(data, &["opd", "add", id, "--name", name]);
    }
    for (agent, opd) in [
        ("arsip-1", "arsip"),
        ("bappeda-1", "bappeda"),
        ("kominfo-1", "kominfo"),
        ("kominfo-2", "kominfo"),
    ] {
        collector_cmd(data, &["agent", "add", agent, "--opd", opd]);
    }
    let mut seq = 0;
    let all = vec![
        decl("lan", "intranet", "tcp", 300_000),
        decl("isp", "internet", "http", 300_000),
        decl("pusdat", "datacenter", "tcp", 300_000),
        decl("pdn", "jip", "icmp", 300_000),
        decl("sipd", "app", "http", 300_000),
    ];
    declare(data, "arsip", "arsip-1", all.clone());
    let r = rows(&all, now - 50 * HOUR, now - 60_000, &mut seq, |_, _| false);
    store_rows(data, "arsip", "arsip-1", &r, now);

    let two = vec![
        decl("lan", "intranet", "tcp", 300_000),
        decl("isp", "internet", "http", 300_000),
    ];
    declare(data, "bappeda", "bappeda-1", two.clone());
    let r = rows(&two, now - 50 * HOUR, now - 60_000, &mut seq, |id, t| {
        id == "isp" && t > now - HOUR
    });
    store_rows(data, "bappeda", "bappeda-1", &r, now);

    declare(data, "kominfo", "kominfo-1", two.clone());
    let r = rows(&two, now - 50 * HOUR, now - 60_000, &mut seq, |_, _| false);
    store_rows(data, "kominfo", "kominfo-1", &r, now);
    let one = vec![decl("lan2", "intranet", "tcp", 300_000)];
    declare(data, "kominfo", "kominfo-2", one.clone());
    let r = rows(&one, now - 50 * HOUR, now - 3 * HOUR, &mut seq, |_, _| {
        false
    });
    store_rows(data, "kominfo", "kominfo-2", &r, now - 3 * HOUR);
}

/// Navigate `tab` to `url` and wait for the page.
fn open(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
}

/// Save a PNG screenshot of the viewport and print its size.
fn shot(tab: &Tab, dir: &Path, name: &str) -> u64 {
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    assert_eq!(&png[1..4], b"PNG", "a PNG");
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot {}: {} bytes", path.display(), png.len());
    png.len() as u64
}

/// What the layout checks need from the page, measured in the browser.
const MEASURE: &str = r#"JSON.stringify({
  inner: window.innerWidth,
  scroll: document.documentElement.scrollWidth,
  nav: [...document.querySelectorAll('header nav a')].map(a => a.getAttribute('href')),
  refresh: (document.querySelector('meta[http-equiv=refresh]') || {}).content || null,
  scripts: document.scripts.length,
  cards: [...document.querySelectorAll('.card')].map(c => {
    const r = c.getBoundingClientRect();
    return { opd: c.dataset.opd, state: c.dataset.state, top: Math.round(r.top),
             left: Math.round(r.left), right: Math.round(r.right),
             name: (c.querySelector('h2') || c).textContent,
             text: c.innerText,
             bars: [...c.querySelectorAll('.hist')].map(h => h.children.length),
             titled: [...c.querySelectorAll('.hist [title]')].filter(x => x.title.includes('%')).length,
             seen: [...c.querySelectorAll('[data-seen]')].map(x => x.title) };
  }),
})"#;

fn measure(tab: &Tab) -> Value {
    let v = browser::eval(tab, MEASURE);
    serde_json::from_str(v.as_str().expect("a JSON string")).expect("JSON")
}

/// The page's width fits the viewport of `width` px: nothing scrolls
/// sideways (and a phone did not widen its viewport to fit the page).
fn fits(m: &Value, width: i64, what: &str) {
    let (inner, scroll) = (m["inner"].as_i64().unwrap(), m["scroll"].as_i64().unwrap());
    assert_eq!(inner, width, "{what}: viewport width");
    assert!(
        scroll <= inner,
        "{what}: page is {scroll} px wide in a {inner} px viewport"
    );
}

fn card<'a>(m: &'a Value, opd: &str) -> &'a Value {
    m["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["opd"] == opd)
        .unwrap_or_else(|| panic!("no card for {opd}: {m}"))
}

/// The checks at the wall-screen width: cards share rows, problems first,
/// history bars of 90 days, relative times with the absolute time in a
/// title, escaped names, the same navigation on every page.
fn wall_screen(base: &str, dir: &Path) -> Vec<String> {
    let b = browser::launch(1280, 900);
    let tab = browser::sign_in(&b, base, "dinding", PASSWORD);
    open(&tab, &format!("{base}/"));
    let m = measure(&tab);
    println!("1280 px: {m}");
    assert_eq!(m["inner"], 1280, "viewport width");
    fits(&m, 1280, "/ at 1280 px");
    assert_eq!(m["refresh"], "60", "the status page refreshes itself");
    assert_eq!(m["scripts"], 0, "no script element, even from an OPD name");
    let cards = m["cards"].as_array().unwrap();
    let order: Vec<&str> = cards.iter().map(|c| c["opd"].as_str().unwrap()).collect();
    assert_eq!(
        order,
        ["bappeda", "kominfo", "dispar", "arsip"],
        "problems first (failing target, silent agent), then unknown, then OK"
    );
    let states: Vec<&str> = cards.iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["bad", "bad", "unknown", "ok"]);
    let tops: Vec<i64> = cards.iter().map(|c| c["top"].as_i64().unwrap()).collect();
    assert!(
        tops.iter().filter(|t| **t == tops[0]).count() >= 2,
        "at 1280 px at least two cards share the first row: {tops:?}"
    );
    for c in cards {
        assert!(
            c["bars"].as_array().unwrap().iter().all(|n| n == 90),
            "every history bar has 90 day cells: {c}"
        );
    }
    let arsip = card(&m, "arsip");
    assert_eq!(arsip["bars"].as_array().unwrap().len(), 5, "five groups");
    assert!(
        arsip["titled"].as_i64().unwrap() >= 5,
        "days with data carry their figure: {arsip}"
    );
    assert!(
        arsip["text"].as_str().unwrap().contains("Pusat Data")
            && arsip["text"].as_str().unwrap().contains("JIP/PDN"),
        "{arsip}"
    );
    let bappeda = card(&m, "bappeda");
    assert!(
        bappeda["text"].as_str().unwrap().contains("GANGGUAN"),
        "{bappeda}"
    );
    let kominfo = card(&m, "kominfo");
    let text = kominfo["text"].as_str().unwrap();
    assert!(text.contains("1/2"), "one of two agents online: {text}");
    assert!(
        text.contains("3 jam lalu") && text.contains("3 h ago"),
        "relative last-seen time: {text}"
    );
    assert!(
        kominfo["seen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("WITA")),
        "absolute time in the title: {kominfo}"
    );
    let dispar = card(&m, "dispar");
    assert!(
        dispar["name"].as_str().unwrap().contains(SCRIPT_NAME),
        "the name is shown as text: {dispar}"
    );
    let mut sizes = vec![format!(
        "status-1280.png {} B",
        shot(&tab, dir, "status-1280.png")
    )];
    // One navigation, the same on every page.
    let nav = m["nav"].clone();
    assert!(
        nav.as_array().unwrap().len() >= 5,
        "an admin's navigation: {nav}"
    );
    for page in [
        "/laporan",
        "/laporan/gangguan",
        "/laporan/opd/bappeda",
        "/jalur",
        "/laporan/register",
    ] {
        open(&tab, &format!("{base}{page}"));
        let p = measure(&tab);
        assert_eq!(p["nav"], nav, "navigation on {page}");
        assert_eq!(p["scripts"], 0, "{page}");
        fits(&p, 1280, &format!("{page} at 1280 px"));
    }
    open(&tab, &format!("{base}/laporan"));
    let text = browser::eval(&tab, "document.body.innerText");
    let text = text.as_str().unwrap();
    for g in [
        "Jaringan Intra",
        "Internet",
        "Pusat Data",
        "JIP/PDN",
        "Aplikasi",
    ] {
        assert!(text.contains(g), "/laporan shows the group {g}: {text}");
    }
    sizes.push(format!(
        "laporan-1280.png {} B",
        shot(&tab, dir, "laporan-1280.png")
    ));
    sizes
}

/// Emulate a phone's screen in `tab`: headless Chromium's window is never
/// narrower than 500 px, so the viewport is set over the DevTools protocol.
fn phone_screen(tab: &Tab, width: u32, height: u32) {
    tab.call_method(SetDeviceMetricsOverride {
        width,
        height,
        device_scale_factor: 1.0,
        mobile: true,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .expect("emulate a phone screen");
}

/// The checks at a phone's width: one column of cards that fit the width,
/// no sideways scrolling on the status page or the report overview.
fn phone(base: &str, dir: &Path) -> Vec<String> {
    let b = browser::launch(500, 844);
    let tab = browser::sign_in(&b, base, "dinding", PASSWORD);
    phone_screen(&tab, 390, 844);
    open(&tab, &format!("{base}/"));
    let m = measure(&tab);
    println!("390 px: {m}");
    assert_eq!(m["inner"], 390, "viewport width");
    fits(&m, 390, "/ at 390 px");
    let cards = m["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 4);
    let left = cards[0]["left"].as_i64().unwrap();
    let mut last_top = i64::MIN;
    for c in cards {
        let (l, r, t) = (
            c["left"].as_i64().unwrap(),
            c["right"].as_i64().unwrap(),
            c["top"].as_i64().unwrap(),
        );
        assert_eq!(l, left, "one column: {c}");
        assert!(l >= 0 && r <= 390, "the card fits the width: {c}");
        assert!(t > last_top, "cards stacked: {c}");
        last_top = t;
    }
    let mut sizes = vec![format!(
        "status-390.png {} B",
        shot(&tab, dir, "status-390.png")
    )];
    for page in ["/laporan", "/laporan/opd/bappeda", "/jalur"] {
        open(&tab, &format!("{base}{page}"));
        fits(&measure(&tab), 390, &format!("{page} at 390 px"));
    }
    open(&tab, &format!("{base}/laporan"));
    sizes.push(format!(
        "laporan-390.png {} B",
        shot(&tab, dir, "laporan-390.png")
    ));
    sizes
}

#[test]
fn status_page_fits_a_wall_screen_and_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    browser::add_user(&data, "dinding", "admin", &[], PASSWORD);
    let collector = Collector::start(&data);
    // The report overview refreshes the rollups through the writer; the
    // status page then reads them as stored.
    let (code, body) = collector.get("/laporan");
    assert_eq!(code, 200, "{body}");
    let html = wait_for("history from the rollups", Duration::from_secs(60), || {
        let (code, body) = collector.get("/");
        assert_eq!(code, 200, "{body}");
        body.contains("data-opd=\"arsip\"").then_some(body)
    });
    assert!(
        html.contains("&lt;script&gt;alert") && !html.contains("<script"),
        "the OPD name is escaped in the markup"
    );
    assert!(
        html.contains("<meta http-equiv=\"refresh\" content=\"60\">"),
        "refresh"
    );
    let base = format!("http://{}", collector.http);
    // PANTAU_SCREENSHOTS=DIR keeps the screenshots for a person to look at.
    let shots = std::env::var_os("PANTAU_SCREENSHOTS")
        .map_or_else(|| dir.path().to_path_buf(), std::path::PathBuf::from);
    std::fs::create_dir_all(&shots).unwrap();
    let mut sizes = wall_screen(&base, &shots);
    sizes.extend(phone(&base, &shots));
    println!("screenshot sizes: {}", sizes.join(", "));
}
