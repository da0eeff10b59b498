//! Who may see what on the HTTP port, against the real binary: every route
//! of `web::auth::ROUTES` (the one table the router is built from) with every
//! role and anonymously; an `opd` caller of OPD A never sees OPD B's names,
//! agents or targets in any response; login sessions with CSRF tokens and
//! throttling; the first admin's one-time password; signed reports only for
//! admin and evaluator.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use pantau_collector::web::auth::ROUTES;

/// Who is asking.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    Admin,
    Opd,
    Evaluator,
    Viewer,
    Scrape,
}

const ALL: [Who; 6] = [
    Who::Anonymous,
    Who::Admin,
    Who::Opd,
    Who::Evaluator,
    Who::Viewer,
    Who::Scrape,
];

use Who::*;

/// The specification (issue 13), written out here rather than read from the
/// code: for every route, a request that succeeds for an allowed caller, and
/// who is allowed. `None`: the route has its own credential (agents).
const SPEC: &[(&str, &str, &str, Option<&[Who]>)] = &[
    ("GET", "/healthz", "/healthz", Some(&ALL)),
    ("GET", "/login", "/login", Some(&ALL)),
    ("POST", "/login", "/login", Some(&ALL)),
    // Public; 404 here: this fixture has no [web.oidc] (tests/tests/oidc.rs).
    ("GET", "/login/oidc", "/login/oidc", Some(&ALL)),
    (
        "GET",
        "/login/oidc/callback",
        "/login/oidc/callback",
        Some(&ALL),
    ),
    (
        "POST",
        "/logout",
        "/logout",
        Some(&[Admin, Opd, Evaluator, Viewer]),
    ),
    ("GET", "/metrics", "/metrics", Some(&[Admin, Scrape])),
    ("GET", "/", "/", Some(&[Admin, Opd, Evaluator, Viewer])),
    (
        "GET",
        "/laporan",
        "/laporan",
        Some(&[Admin, Opd, Evaluator, Viewer]),
    ),
    (
        "GET",
        "/laporan/gangguan",
        "/laporan/gangguan",
        Some(&[Admin, Opd, Evaluator, Viewer]),
    ),
    (
        "GET",
        "/laporan/opd/{id}",
        "/laporan/opd/dinkes",
        Some(&[Admin, Opd, Evaluator, Viewer]),
    ),
    ("GET", "/jalur", "/jalur", Some(&[Admin, Opd, Evaluator])),
    (
        "GET",
        "/api/v1/opds",
        "/api/v1/opds",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/agents",
        "/api/v1/agents",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/targets",
        "/api/v1/targets",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/results",
        "/api/v1/results?agent=agen-a&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/sessions",
        "/api/v1/sessions?agent=agen-a&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/paths",
        "/api/v1/paths",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/report",
        "/api/v1/report?opd=dinkes&period=2026-11&format=json",
        Some(&[Admin, Opd, Evaluator]),
    ),
    (
        "GET",
        "/laporan/register",
        "/laporan/register",
        Some(&[Admin, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/reports/register",
        "/api/v1/reports/register",
        Some(&[Admin, Evaluator]),
    ),
    (
        "GET",
        "/api/v1/bandwidth/download",
        "/api/v1/bandwidth/download?bytes=1000",
        None,
    ),
    (
        "POST",
        "/api/v1/bandwidth/upload",
        "/api/v1/bandwidth/upload?bytes=0",
        None,
    ),
    // The admin console: admin only, except the agent pages, which `opd`
    // staff use for their own OPDs' agents. An allowed POST here carries no
    // fields, so it is refused on the form (400), never done.
    ("GET", "/admin", "/admin", Some(&[Admin, Opd])),
    ("GET", "/admin/opd", "/admin/opd", Some(&[Admin])),
    ("POST", "/admin/opd", "/admin/opd", Some(&[Admin])),
    (
        "POST",
        "/admin/opd/{id}",
        "/admin/opd/dinkes",
        Some(&[Admin]),
    ),
    ("GET", "/admin/agen", "/admin/agen", Some(&[Admin, Opd])),
    ("POST", "/admin/agen", "/admin/agen", Some(&[Admin, Opd])),
    (
        "POST",
        "/admin/agen/{id}",
        "/admin/agen/agen-a",
        Some(&[Admin, Opd]),
    ),
    (
        "GET",
        "/admin/pemeliharaan",
        "/admin/pemeliharaan",
        Some(&[Admin]),
    ),
    (
        "POST",
        "/admin/pemeliharaan",
        "/admin/pemeliharaan",
        Some(&[Admin]),
    ),
    (
        "POST",
        "/admin/pemeliharaan/{id}",
        "/admin/pemeliharaan/1",
        Some(&[Admin]),
    ),
    ("GET", "/admin/gangguan", "/admin/gangguan", Some(&[Admin])),
    ("POST", "/admin/gangguan", "/admin/gangguan", Some(&[Admin])),
    ("GET", "/admin/pengguna", "/admin/pengguna", Some(&[Admin])),
    ("POST", "/admin/pengguna", "/admin/pengguna", Some(&[Admin])),
    (
        "POST",
        "/admin/pengguna/{name}",
        "/admin/pengguna/siti",
        Some(&[Admin]),
    ),
    ("GET", "/admin/audit", "/admin/audit", Some(&[Admin])),
    (
        "GET",
        "/admin/audit.jsonl",
        "/admin/audit.jsonl",
        Some(&[Admin]),
    ),
    // Central targets: admin, and `opd` staff for their own OPDs' and
    // agents' scopes (filtered; checked below).
    ("GET", "/admin/target", "/admin/target", Some(&[Admin, Opd])),
    (
        "POST",
        "/admin/target",
        "/admin/target",
        Some(&[Admin, Opd]),
    ),
    (
        "GET",
        "/admin/target/agen/{id}",
        "/admin/target/agen/agen-a",
        Some(&[Admin, Opd]),
    ),
];

/// Names of OPD B that an `opd` caller of OPD A must never see.
const SECRETS_OF_B: [&str; 5] = [
    "rahasia-b",
    "Badan Rahasia B",
    "agen-b",
    "target-b-xyz",
    "10.66.66.66",
];

struct Fixture {
    collector: Collector,
    tokens: Vec<(Who, String)>,
    agent_token: String,
}

fn fixture(dir: &std::path::Path) -> Fixture {
    let data = dir.join("data");
    collector_cmd(
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    collector_cmd(
        &data,
        &["opd", "add", "rahasia-b", "--name", "Badan Rahasia B"],
    );
    let agent_token = collector_cmd(
        &data,
        &["agent", "add", "agen-a", "--opd", "dinkes", "--print-token"],
    )
    .trim()
    .to_string();
    collector_cmd(
        &data,
        &[
            "agent",
            "add",
            "agen-b",
            "--opd",
            "rahasia-b",
            "--print-token",
        ],
    );
    declare(
        &data,
        "dinkes",
        "agen-a",
        vec![decl("target-a-abc", "intranet", "icmp", 60_000)],
    );
    let mut b = decl("target-b-xyz", "intranet", "icmp", 60_000);
    b.address = "10.66.66.66".into();
    declare(&data, "rahasia-b", "agen-b", vec![b]);
    let collector = Collector::start(&data);
    let tokens = vec![
        (Admin, collector.token.clone()),
        (Opd, make_token(&data, "opd", &["dinkes"])),
        (Evaluator, make_token(&data, "evaluator", &[])),
        (Viewer, make_token(&data, "viewer", &[])),
        (Scrape, make_token(&data, "scrape", &[])),
    ];
    Fixture {
        collector,
        tokens,
        agent_token,
    }
}

fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}\r\n")
}

fn send(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String, String) {
    let body = if method == "POST" && !path.contains("bandwidth") {
        // A form without a CSRF token.
        "x=1"
    } else {
        ""
    };
    let headers = if body.is_empty() {
        headers.to_string()
    } else {
        format!("{headers}Content-Type: application/x-www-form-urlencoded\r\n")
    };
    http_send(addr, method, path, &headers, body, Duration::from_secs(30))
}

#[test]
fn every_route_with_every_role_and_opd_data_filtered() {
    // The spec names exactly the registered routes: a new route without an
    // entry here (or a removed one still here) fails.
    let mut registered: Vec<(&str, &str)> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let mut specified: Vec<(&str, &str)> = SPEC.iter().map(|s| (s.0, s.1)).collect();
    registered.sort();
    specified.sort();
    assert_eq!(
        registered, specified,
        "web::auth::ROUTES and this test's SPEC differ"
    );

    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let addr = f.collector.http;
    for &(method, _, path, allowed) in SPEC {
        for who in ALL {
            let headers = f
                .tokens
                .iter()
                .find(|(w, _)| *w == who)
                .map_or(String::new(), |(_, t)| bearer(t));
            let (code, head, body) = send(addr, method, path, &headers);
            let ctx = format!("{who:?} {method} {path}: {code}\n{head}\n{body}");
            match allowed {
                // The agents' endpoints answer only their own agent tokens.
                None => assert_eq!(code, 401, "{ctx}"),
                Some(a) if a.contains(&who) => {
                    let ok = match (method, path) {
                        ("POST", "/login") => code == 403, // no CSRF token
                        ("POST", "/logout") => code == 303,
                        ("GET", "/login/oidc" | "/login/oidc/callback") => code == 404,
                        ("POST", p) if p.starts_with("/admin") => {
                            code == 400 && body.contains("Ditolak / refused")
                        }
                        _ => code == 200,
                    };
                    assert!(ok, "allowed: {ctx}");
                }
                Some(_) if who == Anonymous => {
                    if path.starts_with("/api/") || path == "/metrics" {
                        assert_eq!(code, 401, "{ctx}");
                    } else {
                        assert_eq!(code, 302, "{ctx}");
                        assert!(
                            head.to_ascii_lowercase()
                                .contains("\r\nlocation: /login?next="),
                            "{ctx}"
                        );
                    }
                }
                Some(_) => assert_eq!(code, 403, "denied: {ctx}"),
            }
            if who == Opd {
                for s in SECRETS_OF_B {
                    assert!(!body.contains(s), "OPD A's caller sees `{s}`: {ctx}");
                }
            }
            if who == Admin && path == "/api/v1/targets" {
                // The secrets exist, so their absence above means something.
                assert!(
                    body.contains("target-b-xyz") && body.contains("10.66.66.66"),
                    "{ctx}"
                );
            }
            if who == Admin && path == "/" {
                // The status page shows OPDs and their agents (the targets
                // are on the OPD's page): B's are there for an admin.
                assert!(
                    body.contains("Badan Rahasia B") && body.contains("agen-b"),
                    "{ctx}"
                );
            }
            if who == Opd && path == "/api/v1/targets" {
                assert!(
                    body.contains("target-a-abc"),
                    "filtered, not emptied: {ctx}"
                );
            }
        }
    }
    // The agents' endpoint with an agent token works.
    let (code, _, body) = send(
        addr,
        "GET",
        "/api/v1/bandwidth/download?bytes=1000",
        &bearer(&f.agent_token),
    );
    assert_eq!((code, body.len()), (200, 1000));

    // OPD B does not exist for OPD A's caller, however it is asked for.
    let opd = &f.tokens.iter().find(|(w, _)| *w == Opd).unwrap().1;
    // The report form offers the signed bundle only to those who may sign,
    // and an `opd` caller's form starts at its own OPD.
    let (_, _, page) = send(addr, "GET", "/laporan", &bearer(opd));
    assert!(page.contains("name=\"opd\" value=\"dinkes\""), "{page}");
    assert!(!page.contains("name=\"bundle\""), "{page}");
    let evaluator = &f.tokens.iter().find(|(w, _)| *w == Evaluator).unwrap().1;
    let (_, _, page) = send(addr, "GET", "/laporan", &bearer(evaluator));
    assert!(
        page.contains("name=\"bundle\"") && page.contains("value=\"all\""),
        "{page}"
    );
    // The console's agent page: OPD A's agents only, and OPD B's agent does
    // not exist for OPD A's staff when they act on it.
    let (code, _, page) = send(addr, "GET", "/admin/agen", &bearer(opd));
    assert!(code == 200 && page.contains("agen-a"), "{page}");
    assert!(
        !page.contains("href=\"/admin/opd\""),
        "no admin-only links: {page}"
    );
    for agent in ["agen-b", "agen-x"] {
        let (code, _, body) = http_send(
            addr,
            "POST",
            &format!("/admin/agen/{agent}"),
            &format!(
                "{}Content-Type: application/x-www-form-urlencoded\r\n",
                bearer(opd)
            ),
            "aksi=disable",
            Duration::from_secs(30),
        );
        assert_eq!(code, 400, "{body}");
        assert!(
            body.contains(&format!("agent `{agent}` does not exist")),
            "{body}"
        );
    }
    central_targets_of_other_opds_do_not_exist_for_opd_staff(addr, opd, &f.tokens[0].1);
    let (_, _, page) = send(addr, "GET", "/admin/agen", &bearer(&f.tokens[0].1));
    let row_b = page
        .split("<tr data-agent=\"agen-b\">")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("admin sees agen-b: {page}"));
    assert!(
        row_b.contains("aktif / active") && !row_b.contains("disabled"),
        "agen-b stays enabled: {row_b}"
    );
    for (path, want) in [
        ("/laporan/opd/rahasia-b", 404),
        (
            "/api/v1/report?opd=rahasia-b&period=2026-11&format=json",
            404,
        ),
        ("/api/v1/report?opd=all&period=2026-11&format=json", 403),
        ("/api/v1/report?period=2026-11&format=csv", 403),
        (
            "/api/v1/results?agent=agen-b&from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z",
            404,
        ),
        ("/api/v1/paths?agent=agen-b", 404),
        ("/api/v1/targets?agent=agen-b", 200),
    ] {
        let (code, _, body) = send(addr, "GET", path, &bearer(opd));
        assert_eq!(code, want, "{path}: {body}");
        // Only what was asked may be echoed ("no OPD `rahasia-b`", the same
        // answer as for an OPD that does not exist).
        for s in SECRETS_OF_B.iter().filter(|s| !path.contains(*s)) {
            assert!(!body.contains(s), "{path} shows `{s}`: {body}");
        }
    }
}

/// `application/x-www-form-urlencoded` value.
fn form_encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// POST a console form with a bearer token (tokens need no CSRF field).
fn post_form(addr: SocketAddr, path: &str, token: &str, body: &str) -> (u16, String) {
    let headers = format!(
        "{}Content-Type: application/x-www-form-urlencoded\r\n",
        bearer(token)
    );
    let (code, _, body) = http_send(addr, "POST", path, &headers, body, Duration::from_secs(30));
    (code, body)
}

/// `opd` staff change their own OPD's and agents' central targets; the
/// province templates are the admin's, and another OPD's scopes or agents
/// do not exist for them. The admin sees every scope.
fn central_targets_of_other_opds_do_not_exist_for_opd_staff(
    addr: SocketAddr,
    opd: &str,
    admin: &str,
) {
    let def = "group=app&kind=tcp&address=10.66.66.66%3A80";
    let (code, body) = post_form(
        addr,
        "/admin/target",
        admin,
        &format!("aksi=add&scope=agent%3Aagen-b&id=target-b-xyz&{def}"),
    );
    assert_eq!(code, 303, "the admin adds to agen-b: {body}");
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        "aksi=add&scope=opd%3Adinkes&id=web-a&group=app&kind=tcp&address=10.1.1.1%3A80",
    );
    assert_eq!(code, 303, "opd staff add to their own OPD: {body}");
    // Edit: the stored definition in the form, saved with `set`.
    let (code, _, page) = send(
        addr,
        "GET",
        "/admin/target?edit=opd:dinkes/web-a",
        &bearer(opd),
    );
    assert!(
        code == 200
            && page.contains("name=\"aksi\" value=\"set\"")
            && page.contains("value=\"10.1.1.1:80\""),
        "{page}"
    );
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        "aksi=set&scope=opd%3Adinkes&id=web-a&group=app&kind=tcp&address=10.1.1.9%3A80&lainnya=",
    );
    assert_eq!(code, 303, "{body}");
    // A province template: opd staff cannot change it but may stop it for
    // their OPD, and replace their agent's targets with pasted TOML.
    let (code, body) = post_form(
        addr,
        "/admin/target",
        admin,
        "aksi=add&scope=province&id=pusat-data&group=datacenter&kind=tcp&address=10.10.0.5%3A443",
    );
    assert_eq!(code, 303, "{body}");
    let (code, _, page) = send(addr, "GET", "/admin/target/agen/agen-a", &bearer(opd));
    assert!(code == 200 && page.contains("10.10.0.5:443"), "{page}");
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        "aksi=stop&scope=opd%3Adinkes&id=pusat-data",
    );
    assert_eq!(code, 303, "{body}");
    let bad =
        "[[targets]]\nid = \"imp\"\ngroup = \"bulan\"\nkind = \"tcp\"\naddress = \"10.1.1.2:22\"\n";
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        &format!("aksi=import&scope=agent%3Aagen-a&toml={}", form_encode(bad)),
    );
    assert!(
        code == 400 && body.contains("targets[0].group") && body.contains("bulan"),
        "the bad import names the field and stays in the form: {body}"
    );
    let good = bad.replace("bulan", "app");
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        &format!(
            "aksi=import&scope=agent%3Aagen-a&toml={}",
            form_encode(&good)
        ),
    );
    assert_eq!(code, 303, "{body}");
    let (_, _, page) = send(addr, "GET", "/admin/target/agen/agen-a", &bearer(opd));
    assert!(
        page.contains("10.1.1.2:22") && page.contains("10.1.1.9:80") && !page.contains("10.10.0.5"),
        "imported, own OPD's kept, the stopped template gone: {page}"
    );
    for (scope, want) in [
        ("province", "province templates are changed by admins only"),
        ("opd%3Arahasia-b", "opd:rahasia-b tidak terdaftar"),
        ("agent%3Aagen-b", "agent:agen-b tidak terdaftar"),
    ] {
        let (code, body) = post_form(
            addr,
            "/admin/target",
            opd,
            &format!("aksi=set&scope={scope}&id=x&{def}"),
        );
        assert_eq!(code, 400, "{scope}: {body}");
        assert!(body.contains(want), "{scope}: {body}");
    }
    let (code, body) = post_form(
        addr,
        "/admin/target",
        opd,
        "aksi=remove&scope=agent%3Aagen-b&id=target-b-xyz",
    );
    assert!(code == 400 && body.contains("tidak terdaftar"), "{body}");
    let (code, _, page) = send(addr, "GET", "/admin/target", &bearer(opd));
    assert!(code == 200 && page.contains("web-a"), "{page}");
    let (code, _, page) = send(addr, "GET", "/admin/target/agen/agen-a", &bearer(opd));
    assert!(code == 200 && page.contains("web-a"), "{page}");
    let (code, _, page) = send(addr, "GET", "/admin/target/agen/agen-b", &bearer(opd));
    assert_eq!(code, 404, "{page}");
    for s in SECRETS_OF_B.iter().filter(|s| **s != "agen-b") {
        assert!(!page.contains(s), "shows `{s}`: {page}");
    }
    let (_, _, page) = send(addr, "GET", "/admin/target", &bearer(admin));
    assert!(
        page.contains("target-b-xyz") && page.contains("web-a"),
        "the admin sees every scope: {page}"
    );
    // Leave agen-b's scope as the route walk found it.
    let (code, body) = post_form(
        addr,
        "/admin/target",
        admin,
        "aksi=remove&scope=agent%3Aagen-b&id=target-b-xyz",
    );
    assert_eq!(code, 303, "{body}");
}

/// GET with a bearer token; (status, raw body bytes).
fn get_bytes(addr: SocketAddr, path: &str, token: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, raw[split + 4..].to_vec())
}

#[test]
fn signed_reports_only_for_admin_and_evaluator_and_the_forged_request_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let addr = f.collector.http;
    let token = |who: Who| f.tokens.iter().find(|(w, _)| *w == who).unwrap().1.clone();
    // The request from issue 13: any number, a back-dated issue date.
    let forged = "/api/v1/report?opd=all&period=2026-11&format=csv&bundle=1\
&number=870/PALSU/2020&issued=2020-01-01";
    let (code, _, _) = http_send(addr, "GET", forged, "", "", Duration::from_secs(30));
    assert_eq!(code, 401, "anonymous");
    let own = "/api/v1/report?opd=dinkes&period=2026-11&format=csv&bundle=1";
    for (who, token) in &f.tokens {
        let (code, _, body) = send(addr, "GET", own, &bearer(token));
        let want = match who {
            Admin | Evaluator => 200,
            _ => 403,
        };
        assert_eq!(code, want, "{who:?}: {body}");
    }
    // An evaluator may not back-date (nor future-date) a signed report...
    let (code, _, body) = send(addr, "GET", forged, &bearer(&token(Evaluator)));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("`issued`"), "{body}");
    let (code, _, _) = send(
        addr,
        "GET",
        &forged.replace("2020-01-01", "2099-01-01"),
        &bearer(&token(Evaluator)),
    );
    assert_eq!(code, 400, "future issue date");
    // ...but the number they give is recorded as given, with who asked.
    let chosen = forged.replace("&issued=2020-01-01", "");
    let (code, tar) = get_bytes(addr, &chosen, &token(Evaluator));
    assert_eq!(code, 200);
    let file = dir.path().join("bundle.tar");
    std::fs::write(&file, &tar).unwrap();
    // Signed by this collector's key (exit 0: origin checked too), the
    // request record inside the signed manifest.
    collector_cmd(&f.collector.data_dir, &["verify", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&tar);
    let manifest = text.split("pantau-manifest").nth(1).unwrap_or_default();
    assert!(manifest.contains("  permintaan.json"), "{manifest}");
    assert!(
        text.contains("\"number_source\": \"diberikan pemohon / given by the requester\"")
            && text.contains("870/PALSU/2020")
            && text.contains("\"role\": \"evaluator\"")
            && text.contains("\"source_address\": \"127.0.0.1\""),
        "the signed request record"
    );
    let sha = {
        let out = std::process::Command::new("sha256sum")
            .arg(&file)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    // The register: API (admin, evaluator), page, CLI.
    let (code, _, reg) = send(
        addr,
        "GET",
        "/api/v1/reports/register",
        &bearer(&token(Evaluator)),
    );
    assert_eq!(code, 200, "{reg}");
    let rows: serde_json::Value = serde_json::from_str(&reg).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(
        rows.len(),
        3,
        "two own bundles and the chosen-number one: {reg}"
    );
    let top = &rows[0];
    assert_eq!(top["number"], "870/PALSU/2020");
    assert_eq!(top["number_given"], true);
    assert_eq!(top["issued_given"], false);
    assert_eq!(top["scope"], "provinsi");
    assert_eq!(top["role"], "evaluator");
    assert_eq!(top["sha256"], sha.as_str());
    assert!(
        top["requester"]
            .as_str()
            .unwrap()
            .starts_with("token tests-evaluator-")
    );
    let (code, _, page) = send(addr, "GET", "/laporan/register", &bearer(&token(Admin)));
    assert_eq!(code, 200);
    assert!(
        page.contains(&sha) && page.contains("870/PALSU/2020"),
        "{page}"
    );
    let cli = collector_cmd(&f.collector.data_dir, &["register"]);
    assert!(
        cli.contains(&sha) && cli.contains("870/PALSU/2020 (given)"),
        "{cli}"
    );
    // The audit log has the signing, by the token, with the archive's hash.
    let log = collector_cmd(&f.collector.data_dir, &["audit", "list", "--json"]);
    let signed: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "report.sign" && e["object"] == "870/PALSU/2020")
        .collect();
    assert_eq!(signed.len(), 1, "{log}");
    assert_eq!(signed[0]["actor_kind"], "token", "{log}");
    assert_eq!(signed[0]["source"], "127.0.0.1", "{log}");
    assert_eq!(signed[0]["after"]["tar_sha256"], sha.as_str(), "{log}");
}

/// `Set-Cookie: name=value` of a response head.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set: &str) -> String {
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// GET /login, then POST the form: returns the POST's (status, head, body).
fn login(addr: SocketAddr, user: &str, password: &str) -> (u16, String, String) {
    let (code, head, page) = http_send(addr, "GET", "/login", "", "", Duration::from_secs(30));
    assert_eq!(code, 200);
    assert!(
        page.contains("Kata sandi") && page.contains("English"),
        "{page}"
    );
    let csrf = cookie_value(&set_cookie(&head, "pantau_login_csrf").expect("csrf cookie"));
    assert!(page.contains(&csrf), "the form carries the token");
    http_send(
        addr,
        "POST",
        "/login",
        &format!(
            "Cookie: pantau_login_csrf={csrf}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        &format!(
            "username={user}&password={}&csrf={csrf}&next=/laporan",
            enc(password)
        ),
        Duration::from_secs(30),
    )
}

#[test]
fn first_admin_login_sessions_csrf_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture(dir.path());
    let addr = f.collector.http;
    let data = &f.collector.data_dir;
    // The first admin: a one-time password in a 0600 file (and the log).
    let once = data.join("admin-password-once");
    let password = std::fs::read_to_string(&once).unwrap().trim().to_string();
    assert!(password.len() >= 16, "{password}");

    let (code, head, body) = login(addr, "admin", "salah-sekali");
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("salah"), "{body}");
    assert!(set_cookie(&head, "pantau_session").is_none());
    let (code, head, body) = login(addr, "admin", &password);
    assert_eq!(code, 303, "{head}{body}");
    assert!(
        head.to_ascii_lowercase().contains("\r\nlocation: /laporan"),
        "{head}"
    );
    assert!(
        !once.exists(),
        "the one-time password file goes at the first login"
    );
    let session = set_cookie(&head, "pantau_session").expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    assert!(
        !session.contains("Secure"),
        "plain HTTP on loopback: {session}"
    );
    let id = cookie_value(&session);
    assert_eq!(id.len(), 64, "256 bits");
    let cookie = format!("Cookie: pantau_session={id}\r\n");

    let (code, _, page) = http_send(addr, "GET", "/", &cookie, "", Duration::from_secs(30));
    assert_eq!(code, 200);
    assert!(
        page.contains("Badan Rahasia B") && page.contains("Keluar / log out"),
        "{page}"
    );
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the logout form's CSRF token")
        .to_string();
    // Logout without the token: 403, the session lives on.
    let form = format!("{cookie}Content-Type: application/x-www-form-urlencoded\r\n");
    let (code, _, _) = http_send(
        addr,
        "POST",
        "/logout",
        &form,
        "csrf=nope",
        Duration::from_secs(30),
    );
    assert_eq!(code, 403);
    let (code, _, _) = http_send(addr, "POST", "/logout", &form, "", Duration::from_secs(30));
    assert_eq!(code, 403);
    let (code, _, _) = http_send(
        addr,
        "GET",
        "/api/v1/opds",
        &cookie,
        "",
        Duration::from_secs(30),
    );
    assert_eq!(code, 200);
    let (code, _, _) = http_send(
        addr,
        "POST",
        "/logout",
        &form,
        &format!("csrf={csrf}"),
        Duration::from_secs(30),
    );
    assert_eq!(code, 303);
    let (code, _, _) = http_send(addr, "GET", "/", &cookie, "", Duration::from_secs(30));
    assert_eq!(code, 302, "the session is gone");

    // An opd user by session sees only its OPD, like its token.
    let mut add = std::process::Command::new(bin("pantau-collector"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "user",
            "add",
            "ani",
            "--role",
            "opd",
            "--opd",
            "dinkes",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"kata-sandi-ani-panjang\n")
            .unwrap();
    }
    assert!(add.wait().unwrap().success());
    let (code, head, _) = login(addr, "ani", "kata-sandi-ani-panjang");
    assert_eq!(code, 303);
    let ani = format!(
        "Cookie: pantau_session={}\r\n",
        cookie_value(&set_cookie(&head, "pantau_session").unwrap())
    );
    for path in ["/", "/laporan", "/api/v1/targets", "/api/v1/agents"] {
        let (code, _, body) = http_send(addr, "GET", path, &ani, "", Duration::from_secs(30));
        assert_eq!(code, 200, "{path}");
        for s in SECRETS_OF_B {
            assert!(!body.contains(s), "{path} shows `{s}` to ani");
        }
    }
    let (code, _, _) = http_send(addr, "GET", "/metrics", &ani, "", Duration::from_secs(30));
    assert_eq!(code, 403);
    // Disabling the user ends the session.
    collector_cmd(data, &["user", "disable", "ani"]);
    let (code, _, _) = http_send(addr, "GET", "/", &ani, "", Duration::from_secs(30));
    assert_eq!(code, 302);

    // Five failures (one above) lock the account (and this source) out,
    // even with the right password.
    for _ in 0..4 {
        assert_eq!(login(addr, "admin", "tebakan-salah").0, 401);
    }
    let (code, _, body) = login(addr, "admin", &password);
    assert_eq!(code, 429, "{body}");
    assert!(body.contains("Terlalu banyak"), "{body}");

    // Logins, failures, logouts and account changes are in the audit log,
    // with who and from where; a throttled attempt adds nothing; no
    // password ever appears.
    let log = collector_cmd(data, &["audit", "list", "--json"]);
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let of = |action: &str, object: &str| -> Vec<&serde_json::Value> {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["object"] == object)
            .collect()
    };
    let logins = of("auth.login", "admin");
    assert_eq!(logins.len(), 1, "{log}");
    assert_eq!(logins[0]["actor_kind"], "web-user", "{log}");
    assert_eq!(logins[0]["source"], "127.0.0.1", "{log}");
    assert_eq!(of("auth.login", "ani").len(), 1, "{log}");
    assert_eq!(of("auth.logout", "admin").len(), 1, "{log}");
    // One wrong password before the first login, four after it.
    assert_eq!(of("auth.login-failed", "admin").len(), 5, "{log}");
    assert_eq!(of("user.add", "ani").len(), 1, "{log}");
    let disabled = of("user.change", "ani");
    assert_eq!(disabled.len(), 1, "{log}");
    assert_eq!(disabled[0]["after"]["disabled"], true, "{log}");
    assert_eq!(disabled[0]["actor_kind"], "cli-user", "{log}");
    for secret in [password.as_str(), "kata-sandi-ani-panjang", "tebakan-salah"] {
        assert!(!log.contains(secret), "a password in the audit log");
    }
}

#[test]
fn metrics_token_file_reads_metrics_only_and_a_bad_one_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("metrics.token");
    std::fs::write(&token_file, "scrape-secret-0123456789abcdef\n").unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!("[web]\nmetrics_token_file = \"{}\"\n", token_file.display()),
    )
    .unwrap();
    let c = Collector::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        "127.0.0.1:0",
        Some(&cfg),
    );
    let scrape = bearer("scrape-secret-0123456789abcdef");
    let (code, _, body) = send(c.http, "GET", "/metrics", &scrape);
    assert_eq!(code, 200);
    assert!(body.contains("pantau_"), "{body}");
    let (code, _, _) = send(c.http, "GET", "/api/v1/opds", &scrape);
    assert_eq!(code, 403);
    let (code, _, _) = send(
        c.http,
        "GET",
        "/metrics",
        &bearer("scrape-secret-wrong-456789abcdef"),
    );
    assert_eq!(code, 401);

    std::fs::write(&token_file, "short").unwrap();
    let (code, _, err) = collector_cli(&dir.path().join("data"), Some(&cfg), &["serve"]);
    assert_eq!(code, 64, "{err}");
    assert!(
        err.contains("web.metrics_token_file") && err.contains("16 characters"),
        "{err}"
    );
}
