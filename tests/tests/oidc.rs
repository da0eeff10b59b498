//! OpenID Connect sign-in against a real provider: the npm package
//! `oidc-provider` (pinned in tests/oidc/package-lock.json, installed by
//! tests/run.sh, or here on a developer's first run) started from
//! tests/oidc/provider.mjs on loopback, with users whose `groups` claim maps
//! (or does not) to Pantau roles. The collector runs as the real binary; the
//! browser is played by plain HTTP requests that keep each site's cookies.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);
const SECRET: &str = "rahasia-klien-pantau-0123456789";
/// Names of OPD B that an OPD-A user must never see.
const SECRETS_OF_B: [&str; 3] = ["rahasia-b", "agen-b", "target-b-xyz"];

/// The directory holding `node_modules/oidc-provider`, installed once
/// from the pinned lock file (`npm ci`) when tests/run.sh has not already.
fn provider_modules() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bin_dir()
            .parent()
            .expect("target dir")
            .join("oidc-provider");
        if !dir.join("node_modules/oidc-provider/lib/index.js").exists() {
            std::fs::create_dir_all(&dir).unwrap();
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(repo(&format!("tests/oidc/{f}")), dir.join(f)).unwrap();
            }
            let ok = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&dir)
                .status()
                .expect("npm (nodejs) is installed by tests/run.sh");
            assert!(ok.success(), "npm ci in {}", dir.display());
        }
        dir
    })
    .clone()
}

/// Start tests/oidc/provider.mjs for `redirect_uri`; returns the process
/// and its address (the issuer is `http://<addr>`).
fn start_provider(redirect_uri: &str, host: &str, default_user: &str) -> (Proc, SocketAddr) {
    let addr: SocketAddr = free_addr().parse().unwrap();
    let module = provider_modules().join("node_modules/oidc-provider/lib/index.js");
    let mut child = Command::new("node")
        .arg(repo("tests/oidc/provider.mjs"))
        .env("OIDC_PROVIDER_MODULE", module)
        .env("PORT", addr.port().to_string())
        .env("REDIRECT_URI", redirect_uri)
        .env("CLIENT_SECRET", SECRET)
        .env("ISSUER_HOST", host)
        .env("DEFAULT_USER", default_user)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while line.trim() != "ready" {
        line.clear();
        let n = out.read_line(&mut line).expect("provider output");
        assert!(n > 0, "the OIDC provider stopped before it was ready");
    }
    // Keep reading: a closed pipe would kill node at its next line.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    (
        Proc {
            child,
            name: "oidc-provider",
        },
        addr,
    )
}

/// One site's cookies, as a browser keeps them (paths ignored).
#[derive(Default, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn take(&mut self, head: &str) {
        for v in set_cookies(head) {
            let pair = v.split(';').next().unwrap_or_default();
            let Some((k, val)) = pair.split_once('=') else {
                continue;
            };
            if val.is_empty() || v.to_ascii_lowercase().contains("max-age=0") {
                self.0.remove(k.trim());
            } else {
                self.0.insert(k.trim().to_string(), val.to_string());
            }
        }
    }

    fn header(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let all: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("Cookie: {}\r\n", all.join("; "))
    }

    fn without(&self, name: &str) -> Jar {
        let mut j = Jar(self.0.clone());
        j.0.remove(name);
        j
    }
}

fn set_cookies(head: &str) -> Vec<String> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn location(head: &str) -> String {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| panic!("no Location in {head}"))
}

struct Setup {
    _dir: tempfile::TempDir,
    c: Collector,
    provider: Proc,
    issuer: SocketAddr,
}

/// Two OPDs with an agent and a target each, a provider, and a collector
/// whose `[web.oidc]` maps `pantau-admin`, `pantau-eval` and
/// `pantau-opd-dinkes`.
fn setup() -> Setup {
    setup_with("127.0.0.1", "")
}

/// [`setup`] with the provider's issuer at `host` (its address stays
/// 127.0.0.1) and a user for requests without `login_hint`.
fn setup_with(host: &str, default_user: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    collector_cmd(
        &data,
        &["opd", "add", "dinkes", "--name", "Dinas Kesehatan"],
    );
    collector_cmd(&data, &["opd", "add", "rahasia-b", "--name", "Badan B"]);
    for (agent, opd) in [("agen-a", "dinkes"), ("agen-b", "rahasia-b")] {
        collector_cmd(&data, &["agent", "add", agent, "--opd", opd]);
    }
    declare(
        &data,
        "dinkes",
        "agen-a",
        vec![decl("target-a-abc", "intranet", "icmp", 60_000)],
    );
    declare(
        &data,
        "rahasia-b",
        "agen-b",
        vec![decl("target-b-xyz", "intranet", "icmp", 60_000)],
    );
    let http = free_addr();
    let (provider, issuer) = start_provider(
        &format!("http://{http}/login/oidc/callback"),
        host,
        default_user,
    );
    let secret = dir.path().join("oidc-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[web.oidc]\nissuer = \"http://{host}:{}\"\nclient_id = \"pantau\"\n\
client_secret_file = \"{}\"\nscopes = [\"openid\", \"profile\", \"email\", \"groups\"]\n\
claim = \"groups\"\nlabel = \"SSO Pemprov\"\n\n[web.oidc.roles]\n\"pantau-admin\" = \"admin\"\n\
\"pantau-eval\" = \"evaluator\"\n\"pantau-opd-dinkes\" = \"opd:dinkes\"\n",
            issuer.port(),
            secret.display()
        ),
    )
    .unwrap();
    let c = Collector::start_with(&data, "127.0.0.1:0", &http, Some(&cfg));
    Setup {
        _dir: dir,
        c,
        provider,
        issuer,
    }
}

/// Start a sign-in at the collector and walk the provider's redirects as
/// `user`'s browser (the test user is named by `login_hint`): returns the
/// collector's callback (path and query) and the collector's cookies.
fn through_provider(s: &Setup, user: &str) -> (String, Jar) {
    let mut jar = Jar::default();
    let (code, head, _) = http_send(
        s.c.http,
        "GET",
        "/login/oidc?next=/laporan/register",
        "",
        "",
        T,
    );
    assert_eq!(code, 303, "{head}");
    jar.take(&head);
    assert!(jar.0.contains_key("pantau_oidc"), "{head}");
    let mut url = location(&head);
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=pantau",
    ] {
        assert!(url.contains(part), "{part} in {url}");
    }
    url.push_str(&format!("&login_hint={user}"));
    let site = format!("http://{}", s.issuer);
    let mut at_provider = Jar::default();
    for _ in 0..10 {
        let path = url
            .strip_prefix(&site)
            .unwrap_or_else(|| panic!("{url} is not the provider's"));
        let (code, head, body) = http_send(s.issuer, "GET", path, &at_provider.header(), "", T);
        assert!(matches!(code, 302 | 303), "{code} {path}\n{head}\n{body}");
        at_provider.take(&head);
        let next = location(&head);
        let next = if next.starts_with('/') {
            format!("{site}{next}")
        } else {
            next
        };
        if let Some(cb) = next.strip_prefix(&format!("http://{}", s.c.http)) {
            assert!(cb.starts_with("/login/oidc/callback?"), "{cb}");
            return (cb.to_string(), jar);
        }
        url = next;
    }
    panic!("the provider never redirected back to the collector");
}

/// The callback: (status, head, body).
fn callback(s: &Setup, cb: &str, jar: &Jar) -> (u16, String, String) {
    http_send(s.c.http, "GET", cb, &jar.header(), "", T)
}

/// Sign `user` in; returns the `Cookie:` header of the new session.
fn sign_in(s: &Setup, user: &str) -> String {
    let (cb, jar) = through_provider(s, user);
    let (code, head, body) = callback(s, &cb, &jar);
    assert_eq!(code, 200, "{user}: {head}\n{body}");
    assert!(
        body.contains("url=/laporan/register"),
        "back to where the user was going: {body}"
    );
    let session = set_cookies(&head)
        .into_iter()
        .find(|c| c.starts_with("pantau_session="))
        .unwrap_or_else(|| panic!("no session cookie for {user}: {head}"));
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    format!("Cookie: {}\r\n", session.split(';').next().unwrap())
}

fn get(s: &Setup, path: &str, cookie: &str) -> (u16, String) {
    let (code, _, body) = http_send(s.c.http, "GET", path, cookie, "", T);
    (code, body)
}

fn audit(s: &Setup) -> Vec<serde_json::Value> {
    collector_cmd(&s.c.data_dir, &["audit", "list", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn group_claims_map_to_roles_and_opd_users_see_only_their_opd() {
    let s = setup();
    // An admin by group: the signed-report register and /metrics.
    let ani = sign_in(&s, "ani");
    assert_eq!(get(&s, "/laporan/register", &ani).0, 200);
    assert_eq!(get(&s, "/metrics", &ani).0, 200);
    let (code, body) = get(&s, "/api/v1/targets", &ani);
    assert_eq!(code, 200);
    assert!(
        body.contains("target-b-xyz"),
        "admins see every OPD: {body}"
    );

    // An OPD user: their OPD's data only, no admin pages.
    let budi = sign_in(&s, "budi");
    for path in ["/", "/laporan", "/api/v1/targets", "/api/v1/agents"] {
        let (code, body) = get(&s, path, &budi);
        assert_eq!(code, 200, "{path}");
        for secret in SECRETS_OF_B {
            assert!(!body.contains(secret), "{path} shows `{secret}` to budi");
        }
        if path == "/api/v1/targets" {
            assert!(
                body.contains("target-a-abc"),
                "filtered, not emptied: {body}"
            );
        }
    }
    assert_eq!(get(&s, "/laporan/register", &budi).0, 403);
    assert_eq!(get(&s, "/metrics", &budi).0, 403);

    // A user without a mapped group is refused, with a bilingual page.
    let (cb, jar) = through_provider(&s, "citra");
    let (code, head, body) = callback(&s, &cb, &jar);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("tidak memiliki peran") && body.contains("no Pantau role"),
        "{body}"
    );
    assert!(!head.contains("pantau_session="), "no session: {head}");

    // A provider user named like the local admin gets an account of their
    // own (evaluator), the local admin is untouched and still signs in.
    let eval = sign_in(&s, "admin");
    assert_eq!(get(&s, "/laporan/register", &eval).0, 200);
    assert_eq!(get(&s, "/metrics", &eval).0, 403);
    let password = std::fs::read_to_string(s.c.data_dir.join("admin-password-once")).unwrap();
    let (code, _) = local_login(&s, "admin", password.trim());
    assert_eq!(code, 303, "break-glass local admin");

    // Signing in again finds the same account.
    let again = sign_in(&s, "ani");
    assert_ne!(again, ani, "a new session");
    let users = collector_cmd(&s.c.data_dir, &["user", "list"]);
    assert_eq!(
        users
            .lines()
            .filter(|l| l.split_whitespace().next() == Some("ani"))
            .count(),
        1,
        "{users}"
    );
    for (name, role) in [
        ("ani", "admin"),
        ("budi", "opd"),
        ("admin-2", "evaluator"),
        ("admin", "admin"),
    ] {
        assert!(
            users
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name) && l.contains(role)),
            "{name} {role} in\n{users}"
        );
    }
    assert!(!users.contains("citra"), "{users}");
    audited(&s);
}

/// Logins, the account creations and the refusal are in the audit log with
/// `method: oidc`; the client secret never is.
fn audited(s: &Setup) {
    let log = audit(s);
    let of = |action: &str, object: &str| -> Vec<&serde_json::Value> {
        log.iter()
            .filter(|e| e["action"] == action && e["object"] == object)
            .collect()
    };
    let logins = of("auth.login", "ani");
    assert_eq!(logins.len(), 2, "{log:?}");
    for l in &logins {
        assert_eq!(l["after"]["method"], "oidc", "{l}");
        assert_eq!(l["source"], "127.0.0.1", "{l}");
    }
    let added = of("user.add", "ani");
    assert_eq!(added.len(), 1, "{log:?}");
    assert_eq!(
        added[0]["after"]["oidc"]["subject"], "sub-ani-0001",
        "{log:?}"
    );
    assert_eq!(of("user.add", "budi")[0]["after"]["opds"][0], "dinkes");
    let refused = of("auth.login-failed", "citra");
    assert_eq!(refused.len(), 1, "{log:?}");
    assert_eq!(refused[0]["after"]["method"], "oidc");
    assert_eq!(refused[0]["after"]["reason"], "no mapped role");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(SECRET), "the client secret in the audit log");
}

/// A password login (GET /login for the CSRF cookie, then POST).
fn local_login(s: &Setup, user: &str, password: &str) -> (u16, String) {
    let (code, head, _) = http_send(s.c.http, "GET", "/login", "", "", T);
    assert_eq!(code, 200);
    let mut jar = Jar::default();
    jar.take(&head);
    let csrf = jar.0.get("pantau_login_csrf").expect("csrf cookie").clone();
    let form = format!(
        "{}Content-Type: application/x-www-form-urlencoded\r\n",
        jar.header()
    );
    let (code, _, body) = http_send(
        s.c.http,
        "POST",
        "/login",
        &form,
        &format!(
            "username={user}&password={}&csrf={csrf}&next=/",
            enc(password)
        ),
        T,
    );
    (code, body)
}

#[test]
fn tampered_state_other_browsers_replays_and_provider_outages_are_refused() {
    let mut s = setup();
    let (cb, jar) = through_provider(&s, "ani");
    let state = cb
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .expect("state in the callback")
        .to_string();
    // A tampered state.
    let forged = cb.replace(&state, &"0".repeat(state.len()));
    let (code, head, body) = callback(&s, &forged, &jar);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("state"), "{body}");
    assert!(!head.contains("pantau_session="), "{head}");
    // The right callback in another browser (without the flow's cookie).
    let (code, _, _) = callback(&s, &cb, &jar.without("pantau_oidc"));
    assert_eq!(code, 400);
    // Neither used up the sign-in: the real browser completes it, once.
    let (code, head, _) = callback(&s, &cb, &jar);
    assert_eq!(code, 200);
    assert!(head.contains("pantau_session="), "{head}");
    let (code, _, _) = callback(&s, &cb, &jar);
    assert_eq!(code, 400, "a replayed callback");

    // The provider refuses (the user cancelled).
    let (code, head, _) = http_send(s.c.http, "GET", "/login/oidc", "", "", T);
    assert_eq!(code, 303);
    let mut jar = Jar::default();
    jar.take(&head);
    let state = jar.0["pantau_oidc"].clone();
    let cancelled = format!(
        "/login/oidc/callback?error=access_denied&error_description=dibatalkan&state={state}"
    );
    let (code, _, body) = callback(&s, &cancelled, &jar);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("menolak") && body.contains("access_denied"),
        "{body}"
    );

    // The provider goes away between the redirect and the callback: a clear
    // page, and the collector keeps serving.
    let (cb, jar) = through_provider(&s, "budi");
    kill9(&mut s.provider);
    let (code, _, body) = callback(&s, &cb, &jar);
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("tidak dapat dihubungi") && body.contains("could not be reached"),
        "{body}"
    );
    assert_eq!(get(&s, "/healthz", "").0, 200);
    let (code, _) = get(&s, "/login", "");
    assert_eq!(code, 200);

    let failed: Vec<serde_json::Value> = audit(&s)
        .into_iter()
        .filter(|e| e["action"] == "auth.login-failed")
        .collect();
    let reasons: Vec<&str> = failed
        .iter()
        .filter_map(|e| e["after"]["reason"].as_str())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| r.starts_with("state")).count(),
        3,
        "tampered, other browser, replay: {reasons:?}"
    );
    assert!(
        reasons.contains(&"provider error access_denied"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("provider unreachable: ")),
        "{reasons:?}"
    );
}

#[test]
fn without_oidc_config_the_routes_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::start(&dir.path().join("data"));
    for path in ["/login/oidc", "/login/oidc/callback?code=x&state=y"] {
        let (code, body) = http_get(c.http, path);
        assert_eq!(code, 404, "{path}");
        assert!(
            body.contains("tidak diaktifkan") && body.contains("not configured"),
            "{body}"
        );
    }
}

#[test]
fn a_real_browser_signs_in_across_sites_and_lands_where_it_was_going() {
    // The provider on `localhost`, the collector on 127.0.0.1: two sites, so
    // the browser applies SameSite as it would in production (the flow's
    // cookie must come back on the provider's redirect, the session cookie
    // must be sent on the page after it).
    let s = setup_with("localhost", "budi");
    let browser = browser::launch(1000, 800);
    let tab = browser.new_tab().expect("tab");
    tab.navigate_to(&format!("http://{}/", s.c.http))
        .and_then(|t| t.wait_until_navigated())
        .expect("first page");
    assert!(
        tab.get_url().contains("/login?next="),
        "anonymous: to the login page"
    );
    // The login page offers the provider; its button keeps where the user
    // was going.
    tab.navigate_to(&format!("http://{}/login?next=/api/v1/targets", s.c.http))
        .and_then(|t| t.wait_until_navigated())
        .expect("login page");
    let button = tab
        .wait_for_element("a.button[href^='/login/oidc?next=']")
        .expect("the SSO button on the login page");
    let label = browser::eval(&tab, "document.querySelector('a.button').innerText");
    assert!(
        label.as_str().unwrap_or_default().contains("Masuk dengan"),
        "{label}"
    );
    button.click().expect("sign in with SSO");
    let body = wait_for(
        "the page after SSO sign-in",
        Duration::from_secs(30),
        || {
            let url = tab.get_url();
            let text = browser::eval(&tab, "document.body ? document.body.innerText : ''");
            let text = text.as_str().unwrap_or_default().to_string();
            (url.ends_with("/api/v1/targets") && text.contains("target-a-abc")).then_some(text)
        },
    );
    for secret in SECRETS_OF_B {
        assert!(!body.contains(secret), "budi sees `{secret}`: {body}");
    }
}

#[test]
fn a_provider_that_never_answers_times_out_into_a_clear_page() {
    // Accepts connections, never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = silent.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("oidc-secret");
    std::fs::write(&secret, SECRET).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[web.oidc]\nissuer = \"http://{issuer}\"\nclient_id = \"pantau\"\n\
client_secret_file = \"{}\"\ntimeout = \"1s\"\n[web.oidc.roles]\n\"g\" = \"viewer\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let c = Collector::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        "127.0.0.1:0",
        Some(&cfg),
    );
    let (code, body) = http_get(c.http, "/login/oidc");
    assert_eq!(code, 502, "{body}");
    assert!(
        body.contains("tidak dapat dihubungi") && body.contains("discovery"),
        "{body}"
    );
    assert_eq!(http_get(c.http, "/healthz").0, 200);
    drop(silent);
}
