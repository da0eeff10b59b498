//! Who may see what on the HTTP port (issue 13): local accounts with
//! argon2id passwords and server-side sessions, API tokens for machines,
//! and one table ([`ROUTES`]) giving every route its [`Access`] rule.
//!
//! - [`protect`] wraps the whole app: it resolves the caller (a session
//!   cookie, a bearer API token, or the `[web] metrics_token_file` token)
//!   into a [`Principal`] in the request's extensions. It never refuses.
//! - [`add`] registers a route only together with its rule from
//!   [`ROUTES`] (a route without a rule panics at start-up) and puts a guard
//!   on it: anonymous callers get a redirect to `/login` (pages) or 401
//!   (API, metrics); a role the rule does not allow gets 403.
//! - Handlers that show per-OPD data filter by [`Principal::sees`].
//!
//! Sessions: a random 256-bit id in an `HttpOnly; SameSite=Strict` cookie
//! (`Secure` when the port serves HTTPS), stored as SHA-256, with an idle and
//! an absolute limit. Every form carries a CSRF token (login: a double-submit
//! cookie; signed-in forms: the session's token). Failed logins are
//! throttled per source address and per account, in bounded memory.

use crate::audit::Action;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::WebConfig;
use crate::store::accounts::{Account, Role};
use crate::store::{SharedStore, Store, StoreError, now_ms};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pantau_session";
/// Name of the login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "pantau_login_csrf";
/// File in the data directory holding the first admin's one-time password.
pub const BOOTSTRAP_FILE: &str = "admin-password-once";
/// Name of the first admin account.
pub const BOOTSTRAP_USER: &str = "admin";

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: `/healthz` and the login page.
    Public,
    /// The agents' bandwidth endpoints: their own agent-token check.
    Agent,
    /// `/metrics`: admin and scrape.
    Metrics,
    /// Status pages: admin, evaluator, viewer, opd (filtered).
    Status,
    /// Data pages and the API: admin, evaluator, opd (filtered).
    Data,
    /// Any signed-in user (logout).
    SignedIn,
    /// The signed-report register: admin and evaluator.
    Signing,
    /// The admin console: admin only.
    Admin,
    /// The console's agent pages: admin, and `opd` staff for their own
    /// OPDs' agents (filtered by the handlers).
    AgentAdmin,
}

impl Access {
    /// Whether `role` may use a route with this rule (anonymous callers
    /// only reach [`Access::Public`] and [`Access::Agent`]).
    pub fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Access::Public | Access::Agent => true,
            Access::Metrics => matches!(role, Admin | Scrape),
            Access::Status => matches!(role, Admin | Evaluator | Viewer | Opd),
            Access::Data => matches!(role, Admin | Evaluator | Opd),
            Access::SignedIn => role != Scrape,
            Access::Signing => matches!(role, Admin | Evaluator),
            Access::Admin => role == Admin,
            Access::AgentAdmin => matches!(role, Admin | Opd),
        }
    }

    /// Whether anonymous callers pass the guard.
    pub fn anonymous(self) -> bool {
        matches!(self, Access::Public | Access::Agent)
    }
}

/// One route of the HTTP port and its rule.
#[derive(Debug, Clone, Copy)]
pub struct RouteRule {
    /// HTTP method.
    pub method: &'static str,
    /// Path as registered (`{id}` for a parameter).
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
}

const fn r(method: &'static str, path: &'static str, access: Access) -> RouteRule {
    RouteRule {
        method,
        path,
        access,
    }
}

/// Every route of the HTTP port. [`add`] refuses to register a route that
/// is not here, and the route/role test (tests/tests/access.rs) walks this
/// table with every role.
pub const ROUTES: &[RouteRule] = &[
    r("GET", "/healthz", Access::Public),
    r("GET", "/login", Access::Public),
    r("POST", "/login", Access::Public),
    r("GET", "/login/oidc", Access::Public),
    r("GET", "/login/oidc/callback", Access::Public),
    r("POST", "/logout", Access::SignedIn),
    r("GET", "/metrics", Access::Metrics),
    r("GET", "/", Access::Status),
    r("GET", "/laporan", Access::Status),
    r("GET", "/laporan/gangguan", Access::Status),
    r("GET", "/laporan/opd/{id}", Access::Status),
    r("GET", "/jalur", Access::Data),
    r("GET", "/api/v1/opds", Access::Data),
    r("GET", "/api/v1/agents", Access::Data),
    r("GET", "/api/v1/targets", Access::Data),
    r("GET", "/api/v1/results", Access::Data),
    r("GET", "/api/v1/sessions", Access::Data),
    r("GET", "/api/v1/paths", Access::Data),
    r("GET", "/api/v1/report", Access::Data),
    r("GET", "/laporan/register", Access::Signing),
    r("GET", "/api/v1/reports/register", Access::Signing),
    r("GET", "/api/v1/bandwidth/download", Access::Agent),
    r("POST", "/api/v1/bandwidth/upload", Access::Agent),
    // The admin console (web/console/); every action is a POST here.
    r("GET", "/admin", Access::AgentAdmin),
    r("GET", "/admin/opd", Access::Admin),
    r("POST", "/admin/opd", Access::Admin),
    r("POST", "/admin/opd/{id}", Access::Admin),
    r("GET", "/admin/agen", Access::AgentAdmin),
    r("POST", "/admin/agen", Access::AgentAdmin),
    r("POST", "/admin/agen/{id}", Access::AgentAdmin),
    r("GET", "/admin/pemeliharaan", Access::Admin),
    r("POST", "/admin/pemeliharaan", Access::Admin),
    r("POST", "/admin/pemeliharaan/{id}", Access::Admin),
    r("GET", "/admin/gangguan", Access::Admin),
    r("POST", "/admin/gangguan", Access::Admin),
    r("GET", "/admin/pengguna", Access::Admin),
    r("POST", "/admin/pengguna", Access::Admin),
    r("POST", "/admin/pengguna/{name}", Access::Admin),
    r("GET", "/admin/audit", Access::Admin),
    r("GET", "/admin/audit.jsonl", Access::Admin),
    // Central targets: `opd` staff for their own OPDs' and agents' scopes
    // (filtered by the handlers; province templates admin only).
    r("GET", "/admin/target", Access::AgentAdmin),
    r("POST", "/admin/target", Access::AgentAdmin),
    r("GET", "/admin/target/agen/{id}", Access::AgentAdmin),
];

/// The rule of a registered route.
pub fn rule(method: &str, path: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|x| x.method == method && x.path == path)
        .map(|x| x.access)
}

/// Register `route` at `path` for `method` with its rule from [`ROUTES`].
///
/// # Panics
/// When the route has no rule: a new route must say who may use it.
pub fn add<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    method: Method,
    path: &str,
    route: MethodRouter<S>,
) -> Router<S> {
    let access = rule(method.as_str(), path)
        .unwrap_or_else(|| panic!("route {method} {path} has no access rule in web::auth::ROUTES"));
    let guarded = route.route_layer(axum::middleware::from_fn(
        move |req: Request, next: Next| guard(access, req, next),
    ));
    router.route(path, guarded)
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A login session (cookie); its CSRF token.
    Session {
        /// The session's form token.
        csrf: String,
        /// SHA-256 of the session id (for logout).
        id_sha256: [u8; 32],
    },
    /// An API token.
    Token,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User or token name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// OPDs of an `opd` principal.
    pub opds: Vec<String>,
    /// Session or token.
    pub via: Via,
}

impl Principal {
    /// Whether this caller may see data of `opd`.
    pub fn sees(&self, opd: &str) -> bool {
        self.role != Role::Opd || self.opds.iter().any(|o| o == opd)
    }

    /// Whether this caller sees every OPD.
    pub fn sees_all(&self) -> bool {
        self.role != Role::Opd
    }

    /// "user ani (opd)" or "token grafana (evaluator)", for manifests and logs.
    pub fn describe(&self) -> String {
        let kind = match self.via {
            Via::Session { .. } => "user",
            Via::Token => "token",
        };
        format!("{kind} {} ({})", self.name, self.role)
    }
}

/// Failed logins of one key (address or account) in the current window.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    first_ms: i64,
}

/// Login throttling: after [`Throttle::MAX_FAILURES`] failures within
/// [`Throttle::WINDOW_MS`] from one source address, or against one account,
/// further attempts are refused until the window passes. At most
/// [`Throttle::MAX_KEYS`] keys are kept (expired ones go first, then the
/// oldest), so a flood of names cannot grow memory.
#[derive(Debug, Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Strikes>>,
}

impl Throttle {
    /// Failures allowed per window.
    pub const MAX_FAILURES: u32 = 5;
    /// Window length.
    pub const WINDOW_MS: i64 = 15 * 60_000;
    /// Most keys remembered.
    pub const MAX_KEYS: usize = 10_000;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Strikes>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any of `keys` is locked out at `now`.
    pub fn blocked(&self, keys: &[String], now: i64) -> bool {
        let m = self.lock();
        keys.iter().any(|k| {
            m.get(k).is_some_and(|s| {
                now - s.first_ms < Self::WINDOW_MS && s.count >= Self::MAX_FAILURES
            })
        })
    }

    /// Count a failure against each of `keys`.
    pub fn fail(&self, keys: &[String], now: i64) {
        let mut m = self.lock();
        for k in keys {
            if !m.contains_key(k) && m.len() >= Self::MAX_KEYS {
                m.retain(|_, s| now - s.first_ms < Self::WINDOW_MS);
                if m.len() >= Self::MAX_KEYS {
                    let oldest = m
                        .iter()
                        .min_by_key(|(_, s)| s.first_ms)
                        .map(|(k, _)| k.clone());
                    if let Some(o) = oldest {
                        m.remove(&o);
                    }
                }
            }
            let s = m.entry(k.clone()).or_insert(Strikes {
                count: 0,
                first_ms: now,
            });
            if now - s.first_ms >= Self::WINDOW_MS {
                *s = Strikes {
                    count: 0,
                    first_ms: now,
                };
            }
            s.count += 1;
        }
    }

    /// Forget the account's failures after a successful login.
    pub fn succeed(&self, account_key: &str) {
        self.lock().remove(account_key);
    }

    /// Keys remembered (for tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the sign-in needs.
#[derive(Clone, Debug)]
pub struct AuthState {
    /// The store (accounts, sessions, tokens).
    pub store: SharedStore,
    /// Session limits and the scrape token.
    pub config: Arc<WebConfig>,
    /// The port serves HTTPS: cookies get `Secure`.
    pub secure: bool,
    /// Login throttling.
    pub throttle: Arc<Throttle>,
    /// The data directory (the bootstrap password file).
    pub data_dir: PathBuf,
}

impl AuthState {
    /// A new state with an empty throttle.
    pub fn new(store: SharedStore, config: WebConfig, secure: bool, data_dir: &Path) -> Self {
        AuthState {
            store,
            config: Arc::new(config),
            secure,
            throttle: Arc::new(Throttle::default()),
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// The caller behind the request's credentials, if any.
    async fn resolve(&self, headers: &HeaderMap) -> Result<Option<Principal>, StoreError> {
        if let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::auth::bearer)
            .map(str::to_string)
        {
            if let Some(m) = &self.config.metrics_token
                && subtle_eq(m, &token)
            {
                return Ok(Some(Principal {
                    name: "metrics_token_file".into(),
                    role: Role::Scrape,
                    opds: vec![],
                    via: Via::Token,
                }));
            }
            let digest = crate::auth::digest(&token);
            let t = self.store.with(move |s| s.api_token(&digest)).await?;
            return Ok(t.map(|t| Principal {
                name: t.name,
                role: t.role,
                opds: t.opds,
                via: Via::Token,
            }));
        }
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let id_sha256 = crate::auth::digest(&id);
        let now = now_ms();
        let idle = now - self.config.session_idle.as_millis() as i64;
        let created = now - self.config.session_max.as_millis() as i64;
        let found = self
            .store
            .with(move |s| {
                let found = s.session(&id_sha256, idle, created)?;
                // One write a minute per session at most, not one per request.
                if let Some(f) = &found
                    && now - f.last_seen_ms > 60_000
                {
                    s.touch_session(&id_sha256, now)?;
                }
                Ok(found)
            })
            .await?;
        Ok(found.map(|f| Principal {
            name: f.account.name,
            role: f.account.role,
            opds: f.account.opds,
            via: Via::Session {
                csrf: f.csrf,
                id_sha256,
            },
        }))
    }

    fn cookie_attrs(&self) -> &'static str {
        if self.secure {
            "; Path=/; HttpOnly; SameSite=Strict; Secure"
        } else {
            "; Path=/; HttpOnly; SameSite=Strict"
        }
    }
}

fn subtle_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The value of cookie `name` in the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 256)
}

/// Wrap the whole app: resolve the caller into a [`Principal`] extension.
pub fn protect(app: Router, auth: AuthState) -> Router {
    app.layer(axum::middleware::from_fn_with_state(auth, authenticate))
}

async fn authenticate(State(a): State<AuthState>, mut req: Request, next: Next) -> Response {
    match a.resolve(req.headers()).await {
        Ok(Some(p)) => {
            req.extensions_mut().insert(p);
        }
        Ok(None) => {}
        // Routes open to anyone (`/healthz`, the login page) still answer:
        // a health check must work while the database is down, whatever
        // credentials the prober sends. The others answer 503 in `guard`.
        Err(e) => {
            req.extensions_mut().insert(Unchecked(e.to_string()));
        }
    }
    next.run(req).await
}

/// The caller's credentials could not be checked (the store failed).
#[derive(Debug, Clone)]
struct Unchecked(String);

/// Machine-facing paths answer 401/403 in JSON; pages redirect to the login.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/metrics"
}

async fn guard(access: Access, req: Request, next: Next) -> Response {
    if access.anonymous() {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    if let Some(Unchecked(e)) = req.extensions().get::<Unchecked>() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": format!("cannot check credentials: {e}")})),
        )
            .into_response();
    }
    match req.extensions().get::<Principal>() {
        None if is_api(&path) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "perlu masuk / authentication required: send `Authorization: Bearer TOKEN` (pantau-collector token add)"})),
        )
            .into_response(),
        None => {
            let target = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let loc = format!("/login?next={}", encode(&target));
            (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response()
        }
        Some(p) if !access.allows(p.role) => forbidden(&path, p),
        Some(_) => next.run(req).await,
    }
}

/// 403 for a signed-in caller whose role does not allow the route.
pub fn forbidden(path: &str, p: &Principal) -> Response {
    let msg = format!(
        "tidak diizinkan untuk peran `{}` / not allowed for role `{}`",
        p.role, p.role
    );
    if is_api(path) {
        (StatusCode::FORBIDDEN, Json(json!({"error": msg}))).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            Html(
                super::layout::page(
                    "Tidak diizinkan / forbidden",
                    Some(p),
                    "",
                    maud::html! {
                        h1 { "Tidak diizinkan " small { "forbidden" } }
                        p { (msg) }
                        p { a href="/" { "Beranda / home" } }
                    },
                )
                .into_string(),
            ),
        )
            .into_response()
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page without a signed-in user (login, its errors) in the shared frame.
fn page(title: &str, body: maud::Markup) -> String {
    super::layout::page(title, None, "", body).into_string()
}

/// A random 256-bit secret, hex.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Password hashing failed (a broken stored hash or a library error).
#[derive(Debug, thiserror::Error)]
#[error("password hash: {0}")]
pub struct HashError(String);

/// argon2id (the crate's default parameters: 19 MiB, 2 passes) PHC string.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    use argon2::PasswordHasher;
    let salt = argon2::password_hash::SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| HashError(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier;
    argon2::password_hash::PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A generated password: 20 characters from an alphabet without look-alikes
/// (32 symbols, so 100 bits).
pub fn new_password() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghjkmnpqrstuvwxyz23456789A";
    rand::random::<[u8; 20]>()
        .iter()
        .map(|b| ALPHABET[(*b % 32) as usize] as char)
        .collect()
}

/// Why the first admin could not be created.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The password file could not be written.
    #[error("cannot write {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// With no account at all, create [`BOOTSTRAP_USER`] (admin) with a
/// generated password, written 0600 to `<data_dir>/admin-password-once`
/// (deleted at the first login) and returned for the log. Never a default
/// password. `None` when accounts exist.
pub fn bootstrap(store: &dyn Store, data_dir: &Path) -> Result<Option<String>, BootstrapError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !store.accounts()?.is_empty() {
        return Ok(None);
    }
    let password = new_password();
    let path = data_dir.join(BOOTSTRAP_FILE);
    let err = |source| BootstrapError::File {
        path: path.clone(),
        source,
    };
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err)?;
    writeln!(f, "{password}").map_err(err)?;
    store.add_account(&Account {
        name: BOOTSTRAP_USER.into(),
        role: Role::Admin,
        opds: vec![],
        password_hash: hash_password(&password)?,
        disabled: false,
        created_at_ms: now_ms(),
    })?;
    Ok(Some(password))
}

/// [`bootstrap`] on the blocking pool; a new password goes to the log.
pub async fn bootstrap_logged(store: &SharedStore, data_dir: &Path) -> Result<(), BootstrapError> {
    let dir = data_dir.to_path_buf();
    let made = store
        .with(move |s| Ok(bootstrap(s, &dir)))
        .await
        .map_err(BootstrapError::Store)??;
    if let Some(password) = made {
        tracing::warn!(
            user = BOOTSTRAP_USER,
            %password,
            file = %data_dir.join(BOOTSTRAP_FILE).display(),
            "belum ada pengguna: admin pertama dibuat dengan kata sandi sekali pakai / no user yet: first admin created with a one-time password (change it: pantau-collector user passwd admin)"
        );
    }
    Ok(())
}

/// The login and logout routes.
pub fn routes(a: AuthState) -> Router {
    let r = Router::new();
    let r = add(r, Method::GET, "/login", axum::routing::get(login_page));
    let r = add(r, Method::POST, "/login", axum::routing::post(login_post));
    let r = add(r, Method::POST, "/logout", axum::routing::post(logout));
    r.with_state(a)
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    lang: Option<String>,
}

/// Only a local path may be a redirect target (no `//host`, no scheme).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

/// `v` percent-encoded for a query string (everything but the unreserved
/// characters of RFC 3986).
fn query_value(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn login_form(
    a: &AuthState,
    next: &str,
    en: bool,
    error: Option<&str>,
    code: StatusCode,
) -> Response {
    let csrf = random_hex();
    let (title, user, pass, button, other) = if en {
        (
            "Sign in",
            "Username",
            "Password",
            "Sign in",
            ("/login?lang=id", "Bahasa Indonesia"),
        )
    } else {
        (
            "Masuk",
            "Nama pengguna",
            "Kata sandi",
            "Masuk",
            ("/login?lang=en", "English"),
        )
    };
    let body = maud::html! {
        h1 { "Pantau — " (title) }
        @if let Some(e) = error { p.bad { (e) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label { (user) " " input name="username" autocomplete="username" required; }
            label { (pass) " " input name="password" type="password" autocomplete="current-password" required; }
            button { (button) }
        }
        @if let Some((href, label)) = super::oidc::login_link(&a.config) {
            p { a.button href={ (href) "?next=" (query_value(next)) } { (label) } }
        }
        p { small { a href=(other.0) { (other.1) } } }
    };
    (
        code,
        [(
            header::SET_COOKIE,
            format!(
                "{LOGIN_CSRF_COOKIE}={csrf}{}; Max-Age=3600",
                a.cookie_attrs()
            ),
        )],
        Html(page(title, body)),
    )
        .into_response()
}

async fn login_page(State(a): State<AuthState>, Query(q): Query<LoginQuery>) -> Response {
    let en = q.lang.as_deref() == Some("en");
    login_form(&a, &safe_next(q.next.as_deref()), en, None, StatusCode::OK)
}

#[derive(Deserialize, Default)]
struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    csrf: Option<String>,
    next: Option<String>,
}

async fn login_post(
    State(a): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    f: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // No form, or no CSRF token in it: refused before anything else.
    let f = f.map(|Form(f)| f).unwrap_or_default();
    let next = safe_next(f.next.as_deref());
    let sent = f.csrf.unwrap_or_default();
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE);
    if sent.is_empty() || expected.is_none_or(|c| !subtle_eq(&c, &sent)) {
        return (
            StatusCode::FORBIDDEN,
            Html(page(
                "403",
                maud::html! {
                    h1 { "Formulir kedaluwarsa / form expired" }
                    p {
                        "Token CSRF tidak cocok. " small { "CSRF token missing or wrong." } " "
                        a href="/login" { "Masuk lagi / sign in again" }
                    }
                },
            )),
        )
            .into_response();
    }
    let ip = peer_ip(peer);
    let name = f.username.trim().to_string();
    let keys = [format!("ip:{ip}"), format!("user:{name}")];
    let now = now_ms();
    if a.throttle.blocked(&keys, now) {
        tracing::warn!(peer = %ip, user = %name, "login refused: too many failed attempts");
        return login_form(
            &a,
            &next,
            false,
            Some(
                "Terlalu banyak percobaan gagal; coba lagi 15 menit lagi. / Too many failed attempts; try again in 15 minutes.",
            ),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let n2 = name.clone();
    let account = match a.store.with(move |s| s.account(&n2)).await {
        Ok(x) => x,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let password = f.password;
    // Unknown names cost the same hash as known ones.
    let stored = account
        .as_ref()
        .filter(|x| !x.disabled)
        .map(|x| x.password_hash.clone());
    let stored_known = account.is_some();
    let ok = tokio::task::spawn_blocking(move || match stored {
        Some(h) => verify_password(&password, &h),
        None => {
            let _ = verify_password(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(account) = account.filter(|_| ok) else {
        a.throttle.fail(&keys, now);
        tracing::warn!(peer = %ip, user = %name, "login failed");
        audit_failed_login(&a, &name, &ip, stored_known).await;
        return login_form(
            &a,
            &next,
            false,
            Some("Nama pengguna atau kata sandi salah. / Wrong username or password."),
            StatusCode::UNAUTHORIZED,
        );
    };
    a.throttle.succeed(&keys[1]);
    // No session without its audit entry.
    let after = serde_json::json!({"role": account.role.to_string()});
    if let Err(e) = audit_web(&a, &account.name, &ip, Action::AuthLogin, after).await {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    let id = random_hex();
    let (digest, csrf, who) = (crate::auth::digest(&id), random_hex(), account.name.clone());
    let purge = now - a.config.session_max.as_millis() as i64;
    if let Err(e) = a
        .store
        .with(move |s| s.add_session(&digest, &who, &csrf, now, purge))
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    let once = a.data_dir.join(BOOTSTRAP_FILE);
    if once.exists() {
        match std::fs::remove_file(&once) {
            Ok(()) => {
                tracing::info!(file = %once.display(), "first login: one-time admin password file deleted")
            }
            Err(e) => {
                tracing::warn!(file = %once.display(), error = %e, "could not delete the one-time password file")
            }
        }
    }
    tracing::info!(peer = %ip, user = %account.name, role = %account.role, "login");
    let mut res = (StatusCode::SEE_OTHER, [(header::LOCATION, next)]).into_response();
    let h = res.headers_mut();
    let max = a.config.session_max.as_secs();
    for c in [
        format!("{SESSION_COOKIE}={id}{}; Max-Age={max}", a.cookie_attrs()),
        format!("{LOGIN_CSRF_COOKIE}={}; Max-Age=0", a.cookie_attrs()),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

/// The caller's IP address as logs and the audit log show it (`unknown`
/// when the transport gave none).
pub fn peer_ip(peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> String {
    peer.map_or_else(
        || "unknown".into(),
        |Extension(ConnectInfo(a))| a.ip().to_string(),
    )
}

/// Record a web action of `user` from `ip` in the audit log.
async fn audit_web(
    a: &AuthState,
    user: &str,
    ip: &str,
    action: Action,
    after: serde_json::Value,
) -> Result<(), StoreError> {
    crate::audit::record_shared(
        &a.store,
        crate::audit::Actor::web_user(user, ip),
        action,
        user.to_string(),
        serde_json::Value::Null,
        after,
    )
    .await
    .map(|_| ())
}

/// A failed login in the audit log. Throttled by the caller, so an attacker
/// cannot flood the log; the name as typed is kept (bounded), never the
/// password. A failure to record is logged, the refusal stands.
async fn audit_failed_login(a: &AuthState, name: &str, ip: &str, known_user: bool) {
    let typed: String = name.chars().take(64).collect();
    let after = serde_json::json!({ "known_user": known_user });
    if let Err(e) = audit_web(a, &typed, ip, Action::AuthLoginFailed, after).await {
        tracing::error!(error = %e, "failed login not recorded in the audit log");
    }
}

/// An argon2id hash of a random password, verified against for unknown
/// users so a wrong name takes as long as a wrong password.
fn dummy_hash() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| hash_password(&new_password()).unwrap_or_default())
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// The CSRF check of a signed-in form: whether `sent` is the session's
/// token (API tokens send no forms and need none).
pub fn csrf_ok(p: &Principal, sent: Option<&str>) -> bool {
    match &p.via {
        Via::Token => true,
        Via::Session { csrf, .. } => sent.is_some_and(|s| subtle_eq(s, csrf)),
    }
}

/// The 403 of a form without the right CSRF token.
pub fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        Html(page(
            "403",
            maud::html! {
                h1 { "Token CSRF tidak ada atau salah" }
                p { small { "CSRF token missing or wrong." } }
            },
        )),
    )
        .into_response()
}

async fn logout(
    State(a): State<AuthState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let sent = f.ok().and_then(|Form(f)| f.csrf);
    if !csrf_ok(&p, sent.as_deref()) {
        return csrf_refused();
    }
    if let Via::Session { id_sha256, .. } = p.via
        && let Err(e) = a.store.with(move |s| s.remove_session(&id_sha256)).await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    tracing::info!(user = %p.name, "logout");
    let ip = peer_ip(peer);
    if let Err(e) = audit_web(
        &a,
        &p.name,
        &ip,
        Action::AuthLogout,
        serde_json::Value::Null,
    )
    .await
    {
        tracing::error!(error = %e, "logout not recorded in the audit log");
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_string()),
            (
                header::SET_COOKIE,
                format!("{SESSION_COOKIE}={}; Max-Age=0", a.cookie_attrs()),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            query_value("/laporan?opd=a&b=c d"),
            "%2Flaporan%3Fopd%3Da%26b%3Dc%20d"
        );
        assert_eq!(query_value("/"), "%2F");
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("rahasia-sekali").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("rahasia-sekali", &h));
        assert!(!verify_password("salah", &h));
        assert!(!verify_password("x", "not a hash"));
        assert!(dummy_hash().starts_with("$argon2id$"));
        assert!(!verify_password("x", dummy_hash()));
        let (a, b) = (new_password(), new_password());
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn throttle_locks_after_five_failures_and_stays_bounded() {
        let t = Throttle::default();
        let keys = ["ip:1".to_string(), "user:ani".to_string()];
        for _ in 0..Throttle::MAX_FAILURES {
            assert!(!t.blocked(&keys, 0));
            t.fail(&keys, 0);
        }
        assert!(t.blocked(&keys, 1));
        assert!(t.blocked(&["user:ani".into()], 1));
        assert!(!t.blocked(&keys, Throttle::WINDOW_MS));
        for i in 0..(Throttle::MAX_KEYS + 50) {
            t.fail(&[format!("user:{i}")], 10);
        }
        assert!(t.len() <= Throttle::MAX_KEYS);
    }

    #[test]
    fn every_rule_names_a_known_method_and_redirects_stay_local() {
        for x in ROUTES {
            assert!(matches!(x.method, "GET" | "POST"), "{x:?}");
        }
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/laporan?x=1")), "/laporan?x=1");
        assert!(Access::Metrics.allows(Role::Scrape));
        assert!(!Access::Status.allows(Role::Scrape));
        assert!(!Access::Data.allows(Role::Viewer));
        assert!(
            Access::AgentAdmin.allows(Role::Opd) && !Access::AgentAdmin.allows(Role::Evaluator)
        );
        assert!(Access::Admin.allows(Role::Admin) && !Access::Admin.allows(Role::Opd));
    }
}
