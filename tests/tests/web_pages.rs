//! Report pages against a running collector fed by a real agent: results flow
//! through the writer's dirty marks into rollups, the API serves reports, and
//! Debian's headless Chromium renders the OPD page; its screenshot must show
//! the green (intranet up) chart bars and its printed PDF the page's text.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
/// Count pixels of a colour in a PNG (8-bit RGB/RGBA, non-interlaced) with
/// Python's standard library, so the check needs no image crate.
fn count_color(png: &std::path::Path, rgb: (u8, u8, u8)) -> u64 {
    let script = r#"
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat, w, h, ct = 8, b'', 0, 0, 0
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos+4]); t = data[pos+4:pos+8]; c = data[pos+8:pos+8+n]
    if t == b'IHDR':
        w, h, bd, ct, _, _, il = struct.unpack('>IIBBBBB', c)
        assert bd == 8 and il == 0 and ct in (2, 6)
    elif t == b'IDAT':
        idat += c
    pos += 12 + n
bpp = 3 if ct == 2 else 4
raw = zlib.decompress(idat); stride = w * bpp
prev = bytearray(stride); out = 0; i = 0
want = tuple(int(x) for x in sys.argv[2:5])
for y in range(h):
    f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
    for x in range(stride):
        a = line[x-bpp] if x >= bpp else 0; b = prev[x]; cc = prev[x-bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - cc; pa, pb, pc = abs(p-a), abs(p-b), abs(p-cc)
            pr = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
            line[x] = (line[x] + pr) & 255
    for x in range(0, stride, bpp):
        if all(abs(line[x+k] - want[k]) <= 6 for k in range(3)): out += 1
    prev = line
print(out)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(png)
        .args([rgb.0.to_string(), rgb.1.to_string(), rgb.2.to_string()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn chromium(args: &[&str], url: &str) {
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is installed by tests/run.sh");
    assert!(
        status.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn pages_and_api_from_a_live_agent_render_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = enrol(&data, "bappeda", "bappeda-1");
    let collector = Collector::start(&data);
    let open = open_port();
    let closed = closed_port();
    let cfg = agent_config(
        dir.path(),
        "bappeda-1",
        &collector.grpc.to_string(),
        &token,
        "heartbeat_interval = \"1s\"",
        &format!(
            r#"[defaults]
interval = "1s"
timeout = "900ms"

[[targets]]
id = "pusdat"
group = "intranet"
kind = "tcp"
address = "127.0.0.1:{open}"

[[targets]]
id = "isp"
group = "internet"
kind = "tcp"
address = "127.0.0.1:{closed}"
"#,
        ),
    );
    let _agent = start_agent(&cfg);

    let now = now_ms();
    let (from, to) = (
        local_date(now - 86_400_000, 8),
        local_date(now + 86_400_000, 8),
    );
    let q = format!("/api/v1/report?opd=bappeda&from={from}&to={to}&format=json");
    // The API refreshes rollups from the writer's dirty marks before answering.
    let report: serde_json::Value =
        wait_for("rollups with both groups", Duration::from_secs(60), || {
            let (code, body) = collector.get(&q);
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let g = v["opds"][0]["groups"].as_array()?.clone();
            let ok = g.len() == 2
                && g.iter().all(|g| {
                    g["minutes"]["up"].as_u64().unwrap_or(0)
                        + g["minutes"]["down"].as_u64().unwrap_or(0)
                        >= 1
                });
            ok.then_some(v)
        });
    let groups = report["opds"][0]["groups"].as_array().unwrap();
    let intranet = groups.iter().find(|g| g["group"] == "intranet").unwrap();
    let internet = groups.iter().find(|g| g["group"] == "internet").unwrap();
    assert_eq!(intranet["availability_pct"], 100.0, "{intranet}");
    assert_eq!(internet["availability_pct"], 0.0, "{internet}");
    assert_eq!(internet["sla_met"], false);
    let pk = report["meta"]["public_key"].as_str().unwrap().to_string();
    assert_eq!(pk.len(), 64);

    // CSV through the API; errors are explained.
    let (code, csv) = collector.get(&format!(
        "/api/v1/report?opd=bappeda&from={from}&to={to}&format=csv"
    ));
    assert_eq!(code, 200);
    let csv = csv_plain(&csv);
    assert!(
        csv.starts_with("opd,opd_name,group,availability_pct"),
        "{csv}"
    );
    assert!(
        csv.contains("bappeda,OPD bappeda,intranet,100.0000"),
        "{csv}"
    );
    let (code, body) = collector.get(&format!("/api/v1/report?opd=nope&from={from}&to={to}"));
    assert_eq!(code, 404, "{body}");
    let (code, body) = collector.get("/api/v1/report?from=2026-13-01&to=2026-01-01");
    assert_eq!(code, 400);
    assert!(body.contains("not a date"), "{body}");

    // Pages: overview, detail, incidents, each with the public key.
    let (code, overview) = collector.get("/laporan");
    assert_eq!(code, 200);
    assert!(
        overview.contains("/laporan/opd/bappeda") && overview.contains(&pk),
        "{overview}"
    );
    assert!(overview.contains("100,00 %"), "{overview}");
    // The download form offers a period and the signed bundle; submitted
    // with an empty period it uses the dates, and the bundle is a tar.
    assert!(
        overview.contains("name=\"period\"") && overview.contains("name=\"bundle\" value=\"1\""),
        "{overview}"
    );
    let (code, body) = collector.get(&format!(
        "/api/v1/report?opd=bappeda&from={from}&to={to}&period=&format=json&lang=id"
    ));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["meta"]["from"],
        from.as_str()
    );
    let (code, body) = collector.get(&format!(
        "/api/v1/report?opd=bappeda&from={from}&to={to}&issued=2026-12-05&format=html"
    ));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("5 Desember 2026"), "date of issue");
    let (code, body) = collector.get(&format!(
        "/api/v1/report?opd=bappeda&from={from}&to={to}&issued=kemarin"
    ));
    assert_eq!(code, 400);
    assert!(body.contains("`issued`"), "{body}");
    let (code, tar) = http_get_bytes(
        collector.http,
        &format!("/api/v1/report?opd=bappeda&from={from}&to={to}&period=&format=csv&bundle=1"),
    );
    assert_eq!(code, 200);
    assert_eq!(&tar[257..262], b"ustar", "a tar archive");
    let (code, detail) = collector.get("/laporan/opd/bappeda");
    assert_eq!(code, 200);
    assert!(
        detail.contains("<svg") && detail.contains("ketersediaan harian"),
        "{detail}"
    );
    assert!(
        !detail.contains("http://") && !detail.contains("https://"),
        "no external assets"
    );
    // Every target's latest result moved here from the status page.
    assert!(
        detail.contains("<td>pusdat</td>")
            && detail.contains("NORMAL")
            && detail.contains("GANGGUAN (refused)"),
        "{detail}"
    );
    let (code, _) = collector.get("/laporan/gangguan");
    assert_eq!(code, 200);
    let (code, _) = collector.get("/laporan/opd/nope");
    assert_eq!(code, 404);

    // Real Chromium: screenshot with the intranet's green bars (#2e7d32),
    // and the page printed to PDF with its text. The page needs a login that
    // headless Chromium cannot send, so it renders the page as served (it has
    // no external assets, checked above) from a file.
    let page = dir.path().join("opd.html");
    std::fs::write(&page, &detail).unwrap();
    let url = format!("file://{}", page.display());
    let shot = dir.path().join("opd.png");
    chromium(
        &[
            "--window-size=1000,900",
            &format!("--screenshot={}", shot.display()),
        ],
        &url,
    );
    let green = count_color(&shot, (0x2e, 0x7d, 0x32));
    let red = count_color(&shot, (0xc6, 0x28, 0x28));
    // Today's intranet bar is 100 % of a 120-pixel-high chart.
    assert!(green >= 1000, "green pixels in the screenshot: {green}");
    assert!(
        red >= 1,
        "red (internet down) pixels in the screenshot: {red}"
    );
    let printed = dir.path().join("opd.pdf");
    chromium(
        &[
            &format!("--print-to-pdf={}", printed.display()),
            "--no-pdf-header-footer",
        ],
        &url,
    );
    let out = Command::new("pdftotext")
        .arg(&printed)
        .arg("-")
        .output()
        .unwrap();
    // Table cells wrap; compare with whitespace collapsed.
    let text = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("OPD bappeda") && text.contains("Jaringan Intra"),
        "{text}"
    );
    assert!(
        text.contains("tidak tercapai"),
        "internet SLA not met: {text}"
    );
}
