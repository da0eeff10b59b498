//! Paths (issue 4, section 5): the agent's traceroute through a chain of
//! namespace routers with known hops, stored by the collector as path
//! observations; re-routing a router shows as a path change. The same
//! chain runs over IPv4 and over IPv6 (ICMPv6 time exceeded / echo reply).
//! The stored paths are then read back through `/api/v1/paths`, the
//! `/jalur` topology page and the report's topology appendix.
//!
//! ```text
//! site 10.99.1.2 -- 10.99.1.1 r1 10.99.2.1 -- 10.99.2.2 r2 10.99.3.1 -- 10.99.3.2 dst
//!                             r1 10.99.4.1 -- 10.99.4.2 r3 10.99.5.1 -- 10.99.5.2 dst
//! ```
//! First r1 routes 10.99.3.0/24 via r2, then via r3. Over IPv6 the
//! addresses are fd99:N::H/64 for 10.99.N.H/24.

mod common;
mod netns;

use std::path::Path;
use std::time::Duration;

use common::{agent_config, enrol, local_date, metric, now_ms, wait_for};
use netns::{Netns, veth, veth6};

/// One stored path.
#[derive(Debug)]
struct PathRow {
    id: i64,
    hops: Vec<String>,
    reached: bool,
    rtt_us: Vec<u64>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    times_seen: i64,
    previous_id: Option<i64>,
}

fn paths(db: &rusqlite::Connection) -> Vec<PathRow> {
    let mut st = db
        .prepare(
            "SELECT id, hops, reached, rtt_us, first_seen_ms, last_seen_ms, times_seen, previous_id
             FROM path WHERE agent_id = 'uji-1' AND target_id = 'dst' ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| {
        let hops: String = r.get(1)?;
        let rtt: String = r.get(3)?;
        Ok(PathRow {
            id: r.get(0)?,
            hops: serde_json::from_str(&hops).unwrap(),
            reached: r.get(2)?,
            rtt_us: serde_json::from_str(&rtt).unwrap(),
            first_seen_ms: r.get(4)?,
            last_seen_ms: r.get(5)?,
            times_seen: r.get(6)?,
            previous_id: r.get(7)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}
/// Address of host `h` on network `n` of the chain.
fn addr(v6: bool, n: u8, h: u8) -> String {
    if v6 {
        format!("fd99:{n}::{h}")
    } else {
        format!("10.99.{n}.{h}")
    }
}

fn net(v6: bool, n: u8) -> String {
    if v6 {
        format!("fd99:{n}::/64")
    } else {
        format!("10.99.{n}.0/24")
    }
}

/// Route `dst` via `via` in `ns` (`ip route`, or `ip -6 route`).
fn route(ns: &Netns, v6: bool, verb: &str, dst: &str, via: &str) {
    let fam = if v6 { "-6" } else { "-4" };
    ns.run(&["ip", fam, "route", verb, dst, "via", via]);
}

/// `pantau-collector report` for OPD `opd-uji` over yesterday..tomorrow
/// (UTC), in `format`; returns the report file.
fn report(data: &Path, out: &Path, format: &str) -> std::path::PathBuf {
    let day = |d: i64| local_date(now_ms() + d * 86_400_000, 0);
    let out_s = out.to_str().unwrap();
    let (from, to) = (day(-1), day(1));
    let stdout = common::collector_cmd(
        data,
        &[
            "report", "--opd", "opd-uji", "--from", &from, "--to", &to, "--format", format,
            "--out", out_s,
        ],
    );
    let p = std::path::PathBuf::from(stdout.lines().next().unwrap());
    assert!(p.exists(), "{p:?} missing; stdout {stdout}");
    p
}

fn hops_of(path: &serde_json::Value) -> Vec<String> {
    path["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["address"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Whether a binary PPM (P6, 8 bit) holds a solid block of at least
/// `side` x `side` pixels of `rgb` (within ±8 per channel): a drawn node
/// square, which no text glyph makes.
fn has_block(ppm: &[u8], rgb: [u8; 3], side: usize) -> bool {
    // Header: "P6", width, height, maxval, each after whitespace, then one
    // whitespace byte and the pixels.
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 4 {
        while ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        while !ppm[i].is_ascii_whitespace() {
            i += 1;
        }
        fields.push(String::from_utf8_lossy(&ppm[start..i]).into_owned());
    }
    let w: usize = fields[1].parse().unwrap();
    let px = &ppm[i + 1..];
    // Per column: rows in a row with a horizontal run of `side` ending here.
    let mut tall = vec![0usize; w];
    for row in px.chunks_exact(w * 3) {
        let mut run = 0;
        for (x, p) in row.chunks_exact(3).enumerate() {
            run = if (0..3).all(|k| p[k].abs_diff(rgb[k]) <= 8) {
                run + 1
            } else {
                0
            };
            tall[x] = if run >= side { tall[x] + 1 } else { 0 };
            if tall[x] >= side {
                return true;
            }
        }
    }
    false
}

/// Real Chromium (headless, inside the site namespace) prints `/jalur` to
/// PDF: the SVG's labels come out as text, and rasterised (pdftoppm) the
/// agent and target squares show as solid blocks of their colours.
fn browser_renders(site: &Netns, port: u16, hops: &[String], dir: &Path) {
    let profile = dir.join("chromium");
    let printed = dir.join("jalur.pdf");
    // The page needs a login headless Chromium cannot send: it renders the
    // page as served (no external assets) from a file.
    let page = dir.join("jalur.html");
    std::fs::write(&page, site.http_get("127.0.0.1", port, "/jalur")).unwrap();
    let out = site
        .cmd("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", printed.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed by tests/run.sh");
    assert!(
        printed.exists(),
        "chromium printed nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::process::Command::new("pdftotext")
        .arg(&printed)
        .arg("-")
        .output()
        .expect("pdftotext");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Topologi jaringan"), "{text}");
    assert!(text.contains("opd-uji (uji-1)"), "agent label: {text}");
    for h in hops {
        assert!(text.contains(h.as_str()), "{h} drawn: {text}");
    }
    let raster = dir.join("jalur");
    let ok = std::process::Command::new("pdftoppm")
        .args(["-r", "96", "-f", "1", "-l", "1"])
        .arg(&printed)
        .arg(&raster)
        .status()
        .expect("pdftoppm (poppler-utils)")
        .success();
    assert!(ok, "pdftoppm failed");
    let ppm = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "ppm"))
        .expect("pdftoppm output");
    let ppm = std::fs::read(ppm).unwrap();
    // Each square is 10 x 10 CSS pixels, 10 x 10 at 96 dpi; allow for
    // anti-aliased edges.
    assert!(
        has_block(&ppm, [0x1f, 0x5f, 0xa8], 8),
        "the agent's blue square is drawn"
    );
    assert!(
        has_block(&ppm, [0x17, 0x6c, 0x2b], 8),
        "the target's green square is drawn"
    );
}

fn trace_case(v6: bool) {
    if !netns::available() {
        return;
    }
    let a = |n, h| addr(v6, n, h);
    let cidr = |n, h| format!("{}/{}", a(n, h), if v6 { 64 } else { 24 });
    let (site, r1, r2, r3, dst) = (
        Netns::new("site"),
        Netns::new("r1"),
        Netns::new("r2"),
        Netns::new("r3"),
        Netns::new("dst"),
    );
    let link = if v6 { veth6 } else { veth };
    link(&site, "r1", &cidr(1, 2), &r1, "site", &cidr(1, 1));
    link(&r1, "r2", &cidr(2, 1), &r2, "r1", &cidr(2, 2));
    link(&r2, "dst", &cidr(3, 1), &dst, "r2", &cidr(3, 2));
    link(&r1, "r3", &cidr(4, 1), &r3, "r1", &cidr(4, 2));
    link(&r3, "dst", &cidr(5, 1), &dst, "r3", &cidr(5, 2));
    for r in [&r1, &r2, &r3] {
        if v6 {
            r.sysctl("net.ipv6.conf.all.forwarding", "1");
            // One time-exceeded per traceroute per second is far below the
            // default rate limit, but keep the limit out of the picture.
            r.sysctl("net.ipv6.icmp.ratelimit", "0");
        } else {
            r.sysctl("net.ipv4.ip_forward", "1");
            // The per-destination time-exceeded budget refills at exactly
            // one per second, the probe's interval: keep it out of the way.
            r.sysctl("net.ipv4.icmp_ratelimit", "0");
        }
    }
    route(&site, v6, "add", "default", &a(1, 1));
    route(&r1, v6, "add", &net(v6, 3), &a(2, 2));
    route(&r2, v6, "add", &net(v6, 1), &a(2, 1));
    route(&r3, v6, "add", &net(v6, 1), &a(4, 1));
    route(&r3, v6, "add", &net(v6, 3), &a(5, 2));
    route(&dst, v6, "add", "default", &a(3, 1));

    // The chain carries traffic end to end (neighbour discovery done)
    // before the agent starts, so its first traceroute already sees it all.
    let target = a(3, 2);
    wait_for("the target answers ping", Duration::from_secs(20), || {
        site.cmd("ping")
            .args(["-n", "-c", "1", "-W", "1", &target])
            .output()
            .expect("ping (iputils-ping is installed by tests/run.sh)")
            .status
            .success()
            .then_some(())
    });

    // Collector and agent in the site namespace.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "opd-uji", "uji-1");
    let collector = site.start_collector(&data, "127.0.0.1:0", "127.0.0.1:0");
    let http_port: u16 = collector.http.rsplit(':').next().unwrap().parse().unwrap();
    let cfg = agent_config(
        dir.path(),
        "uji-1",
        &collector.grpc,
        &token,
        "",
        &format!(
            "[[targets]]\nid = \"dst\"\ngroup = \"datacenter\"\nlabel = \"Pusat Data\"\n\
             kind = \"traceroute\"\naddress = \"{target}\"\ninterval = \"1s\"\ntimeout = \"900ms\"\n"
        ),
    );
    let _agent = site.start_agent(&cfg);
    let db = rusqlite::Connection::open(data.join("pantau.db")).unwrap();
    let get = |path: &str| site.http_get("127.0.0.1", http_port, path);

    let via_r2 = [a(1, 1), a(2, 2), a(3, 2)];
    let via_r3 = [a(1, 1), a(4, 2), a(3, 2)];
    wait_for(
        "the path via r2 seen three times",
        Duration::from_secs(30),
        || {
            paths(&db)
                .last()
                .is_some_and(|p| p.times_seen >= 3)
                .then_some(())
        },
    );
    let before = paths(&db);
    assert_eq!(
        before.len(),
        1,
        "one path while nothing changed: {before:?}"
    );
    let first = &before[0];
    assert_eq!(first.hops, via_r2, "hops via r2");
    assert!(first.reached, "target reached");
    assert!(
        first.rtt_us.iter().all(|&us| us > 0 && us < 100_000),
        "every hop has an RTT: {:?}",
        first.rtt_us
    );
    assert_eq!(first.previous_id, None);

    // The API shows the same path with per-hop RTTs.
    let api: serde_json::Value =
        serde_json::from_str(&get("/api/v1/paths?agent=uji-1&target=dst")).unwrap();
    let ps = api["paths"].as_array().unwrap();
    assert_eq!(ps.len(), 1, "{api}");
    assert_eq!(hops_of(&ps[0]), via_r2);
    assert_eq!(ps[0]["opd"], "opd-uji");
    for h in ps[0]["hops"].as_array().unwrap() {
        assert!(h["rtt_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{h}");
    }
    assert_eq!(api["changes"].as_array().unwrap().len(), 0, "{api}");

    let changed_at = now_ms();
    route(&r1, v6, "replace", &net(v6, 3), &a(4, 2));
    let after = wait_for("a path via r3", Duration::from_secs(30), || {
        let ps = paths(&db);
        ps.iter()
            .any(|p| p.hops == via_r3 && p.times_seen >= 2)
            .then_some(ps)
    });
    eprintln!("paths: {after:#?}");
    let old = &after[0];
    let new = after.iter().find(|p| p.hops == via_r3).unwrap();
    assert_eq!(after.len(), 2, "exactly one change: {after:?}");
    assert_eq!(
        new.previous_id,
        Some(old.id),
        "the change points at the old path"
    );
    assert!(new.reached);
    assert!(
        old.last_seen_ms < changed_at + 1000 && new.first_seen_ms > changed_at - 1000,
        "the change is dated within one interval: old last seen {}, new first seen {}, change at {changed_at}",
        old.last_seen_ms,
        new.first_seen_ms
    );

    // API: both paths and the change event; a window before the change
    // holds only the old path; bad input is refused with the key named.
    let api: serde_json::Value = serde_json::from_str(&get("/api/v1/paths?opd=opd-uji")).unwrap();
    eprintln!("api: {api:#}");
    let ps = api["paths"].as_array().unwrap();
    assert_eq!(ps.len(), 2, "{api}");
    assert_eq!(hops_of(&ps[0]), via_r2);
    assert_eq!(hops_of(&ps[1]), via_r3);
    let changes = api["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{api}");
    assert_eq!(changes[0]["old_hops"], serde_json::json!(via_r2));
    assert_eq!(changes[0]["new_hops"], serde_json::json!(via_r3));
    assert_eq!(changes[0]["previous_id"], old.id);
    let t = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let early: serde_json::Value = serde_json::from_str(&get(&format!(
        "/api/v1/paths?agent=uji-1&from={}&to={}",
        t(old.first_seen_ms),
        t(old.first_seen_ms + 1)
    )))
    .unwrap();
    let ps = early["paths"].as_array().unwrap();
    assert_eq!(ps.len(), 1, "{early}");
    assert_eq!(hops_of(&ps[0]), via_r2);
    // Dashboards: the change is counted in pantau_path_changes, published
    // with the availability figures after the next rollup refresh.
    wait_for("pantau_path_changes", Duration::from_secs(60), || {
        metric(
            &get("/metrics"),
            "pantau_path_changes",
            &[("opd", "opd-uji"), ("agent", "uji-1"), ("window", "1d")],
        )
        .filter(|v| *v == 1.0)
    });
    let bad = get("/api/v1/paths?from=gestern");
    assert!(bad.contains("`from`"), "{bad}");
    let unknown = get("/api/v1/paths?agent=nobody");
    assert!(unknown.contains("no agent `nobody`"), "{unknown}");
    // A limit keeps the most recently seen paths: the new one.
    let one: serde_json::Value =
        serde_json::from_str(&get("/api/v1/paths?agent=uji-1&limit=1")).unwrap();
    assert_eq!(one["truncated"], true, "{one}");
    let ps = one["paths"].as_array().unwrap();
    assert_eq!(ps.len(), 1, "{one}");
    assert_eq!(hops_of(&ps[0]), via_r3);
    assert_eq!(api["truncated"], false);
    let bad = get("/api/v1/paths?limit=0");
    assert!(bad.contains("`limit`"), "{bad}");

    // The topology page draws the current hops and lists the change.
    let page = get("/jalur");
    assert!(page.contains("30 hari terakhir"), "the default window");
    let week = get("/jalur?days=7");
    assert!(
        week.contains("7 hari terakhir")
            && week.contains(&format!("data-address=\"{}\"", via_r3[1])),
        "{week}"
    );
    let bad = get("/jalur?days=0");
    assert!(bad.contains("`days`"), "{bad}");
    assert!(page.contains("Topologi jaringan"), "{page}");
    let svg = &page[page.find("<svg").expect("an inline SVG")..page.find("</svg>").unwrap()];
    for h in &via_r3 {
        assert!(
            svg.contains(&format!("data-address=\"{h}\"")),
            "{h} in {svg}"
        );
    }
    assert!(
        !svg.contains(&format!("data-address=\"{}\"", a(2, 2))),
        "the old hop r2 is no longer current: {svg}"
    );
    assert!(svg.contains("opd-uji (uji-1)"), "{svg}");
    let row = format!(
        "<td>{}</td><td>{}</td>",
        via_r2.join(" → "),
        via_r3.join(" → ")
    );
    assert!(page.contains(&row), "change row {row} in {page}");
    assert!(
        !page.contains("src=\"http") && !page.contains("href=\"http"),
        "no external assets"
    );
    browser_renders(&site, http_port, &via_r3, dir.path());
    let overview = get("/");
    assert!(
        overview.contains("href=\"/jalur\""),
        "overview links the topology page"
    );

    // Reports: the topology appendix in HTML (SVG), JSON (graph) and PDF.
    let html = std::fs::read_to_string(report(&data, &dir.path().join("rh"), "html")).unwrap();
    assert!(html.contains("Lampiran: Topologi intranet"));
    for h in &via_r3 {
        assert!(
            html.contains(&format!("data-address=\"{h}\"")),
            "{h} in report"
        );
    }
    assert!(html.contains(&row), "change row in the report");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report(&data, &dir.path().join("rj"), "json")).unwrap(),
    )
    .unwrap();
    let topo = &json["topology"];
    let mut addrs: Vec<&str> = topo["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["address"].as_str())
        .collect();
    addrs.sort_unstable();
    let mut want: Vec<&str> = via_r3.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(addrs, want, "{topo:#}");
    assert_eq!(topo["edges"].as_array().unwrap().len(), 3, "{topo:#}");
    assert_eq!(topo["changes"].as_array().unwrap().len(), 1, "{topo:#}");
    let xlsx = report(&data, &dir.path().join("rx"), "xlsx");
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
             print(z.read('xl/workbook.xml').decode()); print(z.read('xl/sharedStrings.xml').decode())",
        ])
        .arg(&xlsx)
        .output()
        .expect("python3");
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(xml.contains("name=\"Jalur\""), "sheet Jalur: {xml}");
    for h in &via_r3 {
        assert!(xml.contains(h.as_str()), "{h} in the XLSX");
    }
    let pdf = report(&data, &dir.path().join("rp"), "pdf");
    let out = std::process::Command::new("pdftotext")
        .arg(&pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed by tests/run.sh");
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("Lampiran: Topologi intranet"), "{text}");
    for h in &via_r3 {
        assert!(text.contains(h.as_str()), "{h} in the PDF:\n{text}");
    }
    // The change row: the new hop between arrows (the PDF's Unicode text
    // shows the same arrow as the pages).
    assert!(
        text.contains(&format!("→ {} →", a(4, 2))),
        "change row in the PDF: {text}"
    );
}

#[test]
fn traceroute_finds_known_hops_and_path_changes() {
    trace_case(false);
}

#[test]
fn traceroute_over_ipv6_finds_known_hops_and_path_changes() {
    trace_case(true);
}
