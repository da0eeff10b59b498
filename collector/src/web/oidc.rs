//! Sign-in through an OpenID Connect provider (issue 13, `[web.oidc]`):
//! the authorization-code flow with PKCE, `state` and `nonce`.
//!
//! - `GET /login/oidc` keeps the flow's `state`, `nonce` and PKCE verifier
//!   server-side (bounded, ten minutes), binds them to the browser with a
//!   short-lived `pantau_oidc` cookie (`SameSite=Lax`: the provider's
//!   redirect back is a cross-site navigation) and redirects to the
//!   provider's authorization endpoint (from its discovery document).
//! - `GET /login/oidc/callback` checks the state against the cookie,
//!   exchanges the code (with the verifier) at the token endpoint, verifies
//!   the ID token ([`verify_id_token`]: RS256/ES256 signature against the
//!   provider's JWKS, `iss`, `aud`/`azp`, `exp`/`iat` with 60 s of skew,
//!   `nonce`), maps the groups claim to a role and OPDs
//!   (`[web.oidc] roles`) and signs the user in to the account linked to
//!   (issuer, subject) ([`crate::store::accounts::Accounts::oidc_sign_in`]):
//!   the same session cookie, CSRF token and audit entries as a password
//!   login, with `"method": "oidc"`.
//!
//! A user without a mapped role, a provider error or timeout, a mismatched
//! state or a bad token gets a bilingual page, the failure is audited, and
//! the collector keeps serving. Local accounts keep working (break-glass).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::Jwk};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{AuthState, SESSION_COOKIE, add, cookie, peer_ip, random_hex};
use crate::audit::{Action, Actor};
use crate::config::{OidcConfig, OidcGrant, WebConfig};
use crate::store::accounts::{OidcIdentity, Role};
use crate::store::now_ms;

/// The cookie binding a started sign-in to the browser (its `state`).
pub const STATE_COOKIE: &str = "pantau_oidc";
/// How long a started sign-in may take at the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Started sign-ins kept at most (the oldest go first).
const MAX_PENDING: usize = 10_000;
/// Clock skew allowed on `exp` and `iat`.
const SKEW_SECS: u64 = 60;
/// The audit reason's prefix of a provider that could not be reached.
const OUTAGE: &str = "provider unreachable: ";
/// The discovery document is fetched again after this long.
const DISCOVERY_FOR: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWKS at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(10);

/// The "Masuk dengan SSO / Sign in with SSO" link of the login page:
/// (href, label), or `None` when `[web.oidc]` is not configured.
pub fn login_link(cfg: &WebConfig) -> Option<(&'static str, String)> {
    cfg.oidc.as_ref().map(|o| {
        (
            "/login/oidc",
            format!("Masuk dengan {0} / Sign in with {0}", o.label),
        )
    })
}

/// Why a sign-in through the provider failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered garbage.
    #[error("{what}: {}", chain(source))]
    Http {
        /// Which request.
        what: &'static str,
        /// Cause (connection, timeout, body).
        source: reqwest::Error,
    },
    /// The provider answered with an error status.
    #[error("{what}: HTTP {status}: {body}")]
    Status {
        /// Which request.
        what: &'static str,
        /// Status code.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// The answer is not the JSON expected.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: &'static str,
        /// Cause.
        source: serde_json::Error,
    },
    /// The discovery document names another issuer.
    #[error("discovery names issuer `{found}`, configured `{configured}`")]
    IssuerMismatch {
        /// From the document.
        found: String,
        /// From `[web.oidc] issuer`.
        configured: String,
    },
    /// The ID token failed verification.
    #[error("ID token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
    /// The ID token is signed with a key the provider does not publish.
    #[error("ID token signed with an unknown key `{0}`")]
    UnknownKey(String),
    /// The ID token uses an algorithm other than RS256/ES256.
    #[error("ID token algorithm {0:?} is not accepted (RS256, ES256)")]
    Algorithm(Algorithm),
    /// A claim is missing or wrong.
    #[error("ID token: {0}")]
    Claim(String),
}

/// An error with its causes, `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(&format!(": {c}"));
        cur = c.source();
    }
    out
}

/// What a started sign-in remembers until the callback.
#[derive(Debug, Clone)]
struct Pending {
    nonce: String,
    verifier: String,
    next: String,
    redirect_uri: String,
    started: Instant,
}

/// The provider's discovery document (the parts used).
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// Claims not in the ID token come from here.
    pub userinfo_endpoint: Option<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// The provider's signing keys, as fetched.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    keys: Vec<Jwk>,
}

impl Keys {
    /// The usable keys of a JWKS document (keys of unknown types and
    /// encryption keys are skipped).
    pub fn parse(doc: &[u8]) -> Result<Keys, OidcError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = serde_json::from_slice(doc).map_err(|source| OidcError::Json {
            what: "JWKS",
            source,
        })?;
        let keys = set
            .keys
            .into_iter()
            .filter(|k| k.get("use").and_then(Value::as_str) != Some("enc"))
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect();
        Ok(Keys { keys })
    }

    /// The key for a token header's `kid` (a token without `kid` needs a
    /// single key).
    fn find(&self, kid: Option<&str>) -> Option<&Jwk> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid)),
            None if self.keys.len() == 1 => self.keys.first(),
            None => None,
        }
    }
}

/// A verified ID token's claims.
#[derive(Debug, Clone, PartialEq)]
pub struct IdClaims {
    /// Every claim.
    pub claims: Value,
    /// `sub`.
    pub subject: String,
}

/// Verify an ID token from the token endpoint: signature (RS256 or ES256)
/// with a key of `keys`, `iss` = `issuer`, `aud` contains `client_id` (and
/// `azp` = `client_id` when there are several audiences), `exp` in the
/// future and `iat` not in the future (60 s of skew each), and `nonce`.
pub fn verify_id_token(
    token: &str,
    keys: &Keys,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_secs: u64,
) -> Result<IdClaims, OidcError> {
    let head = jsonwebtoken::decode_header(token)?;
    if !matches!(head.alg, Algorithm::RS256 | Algorithm::ES256) {
        return Err(OidcError::Algorithm(head.alg));
    }
    let jwk = keys
        .find(head.kid.as_deref())
        .ok_or_else(|| OidcError::UnknownKey(head.kid.clone().unwrap_or_default()))?;
    if let Some(k) = jwk.common.key_algorithm
        && format!("{k:?}") != format!("{:?}", head.alg)
    {
        return Err(OidcError::Algorithm(head.alg));
    }
    let key = DecodingKey::from_jwk(jwk)?;
    let mut v = Validation::new(head.alg);
    v.leeway = SKEW_SECS;
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &v)?;
    let c = data.claims;
    let iat = c
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or_else(|| OidcError::Claim("no `iat`".into()))?;
    if iat > now_secs + SKEW_SECS {
        return Err(OidcError::Claim(format!(
            "`iat` {iat} is in the future (now {now_secs})"
        )));
    }
    if let Some(exp) = c.get("exp").and_then(Value::as_u64)
        && exp + SKEW_SECS < now_secs
    {
        return Err(OidcError::Claim(format!(
            "expired at {exp} (now {now_secs})"
        )));
    }
    if let Some(Value::Array(auds)) = c.get("aud")
        && auds.len() > 1
        && c.get("azp").and_then(Value::as_str) != Some(client_id)
    {
        return Err(OidcError::Claim(
            "several audiences and `azp` is not this client".into(),
        ));
    }
    let sent = c.get("nonce").and_then(Value::as_str).unwrap_or_default();
    if !subtle_eq(sent, nonce) {
        return Err(OidcError::Claim(
            "`nonce` does not match the sign-in".into(),
        ));
    }
    let subject = match c.get("sub").and_then(Value::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 => s.to_string(),
        _ => return Err(OidcError::Claim("no usable `sub`".into())),
    };
    Ok(IdClaims { claims: c, subject })
}

fn subtle_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The values of `claim` (a string or an array of strings; a dotted name
/// walks into objects, e.g. Keycloak's `realm_access.roles`).
pub fn claim_values(claims: &Value, claim: &str) -> Vec<String> {
    let mut v = Some(claims);
    for part in claim.split('.') {
        v = v.and_then(|x| x.get(part));
    }
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => vec![],
    }
}

/// The role and OPDs `values` map to: the strongest role among the
/// matches (admin, evaluator, opd, viewer), with every mapped OPD for
/// `opd`. `None`: no value is mapped.
pub fn map_role(cfg: &OidcConfig, values: &[String]) -> Option<(Role, Vec<String>)> {
    let grants: Vec<&OidcGrant> = cfg
        .roles
        .iter()
        .filter(|(v, _)| values.iter().any(|x| x == v))
        .map(|(_, g)| g)
        .collect();
    let has = |r: Role| grants.contains(&&OidcGrant::Role(r));
    let mut opds: Vec<String> = grants
        .iter()
        .filter_map(|g| match g {
            OidcGrant::Opd(o) => Some(o.clone()),
            OidcGrant::Role(_) => None,
        })
        .collect();
    opds.sort();
    opds.dedup();
    if has(Role::Admin) {
        Some((Role::Admin, vec![]))
    } else if has(Role::Evaluator) {
        Some((Role::Evaluator, vec![]))
    } else if !opds.is_empty() {
        Some((Role::Opd, opds))
    } else if has(Role::Viewer) {
        Some((Role::Viewer, vec![]))
    } else {
        None
    }
}

/// The provider side of sign-in: its configuration, an HTTP client, the
/// cached discovery document and keys, and the started sign-ins.
#[derive(Debug)]
pub struct Provider {
    cfg: OidcConfig,
    http: reqwest::Client,
    discovery: tokio::sync::Mutex<Option<(Discovery, Instant)>>,
    keys: tokio::sync::Mutex<(Keys, Option<Instant>)>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl Provider {
    /// A provider client for `[web.oidc]` (requests limited by its timeout,
    /// no redirects followed).
    pub fn new(cfg: OidcConfig) -> Result<Provider, OidcError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Sign-ins are rare: a pooled connection the provider closed
            // meanwhile would fail the token POST (not retried).
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|source| OidcError::Http {
                what: "HTTP client",
                source,
            })?;
        Ok(Provider {
            cfg,
            http,
            discovery: tokio::sync::Mutex::new(None),
            keys: tokio::sync::Mutex::new((Keys::default(), None)),
            pending: Mutex::new(HashMap::new()),
        })
    }

    async fn get_json(
        &self,
        what: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, OidcError> {
        let res = req
            .send()
            .await
            .map_err(|source| OidcError::Http { what, source })?;
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|source| OidcError::Http { what, source })?;
        if !status.is_success() {
            return Err(OidcError::Status {
                what,
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(300).collect(),
            });
        }
        Ok(body.to_vec())
    }

    /// The discovery document (cached for an hour).
    pub async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut d = self.discovery.lock().await;
        if let Some((doc, at)) = &*d
            && at.elapsed() < DISCOVERY_FOR
        {
            return Ok(doc.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let what = "discovery";
        let body = self.get_json(what, self.http.get(url)).await?;
        let doc: Discovery =
            serde_json::from_slice(&body).map_err(|source| OidcError::Json { what, source })?;
        if doc.issuer != self.cfg.issuer {
            return Err(OidcError::IssuerMismatch {
                found: doc.issuer,
                configured: self.cfg.issuer.clone(),
            });
        }
        *d = Some((doc.clone(), Instant::now()));
        Ok(doc)
    }

    /// The signing keys, fetched again when `kid` is unknown (at most every
    /// ten seconds).
    async fn keys_for(&self, jwks_uri: &str, kid: Option<&str>) -> Result<Keys, OidcError> {
        let mut k = self.keys.lock().await;
        let known = k.1.is_some() && k.0.find(kid).is_some();
        let may_fetch = k.1.is_none_or(|at| at.elapsed() >= JWKS_REFETCH);
        if !known && may_fetch {
            let body = self.get_json("JWKS", self.http.get(jwks_uri)).await?;
            *k = (Keys::parse(&body)?, Some(Instant::now()));
        }
        Ok(k.0.clone())
    }

    fn remember(&self, state: String, p: Pending) {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_PENDING {
            m.retain(|_, x| x.started.elapsed() < PENDING_FOR);
            if m.len() >= MAX_PENDING {
                let oldest = m
                    .iter()
                    .min_by_key(|(_, x)| x.started)
                    .map(|(k, _)| k.clone());
                if let Some(o) = oldest {
                    m.remove(&o);
                }
            }
        }
        m.insert(state, p);
    }

    /// The started sign-in of `state`, once.
    fn take(&self, state: &str) -> Option<Pending> {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(state)
            .filter(|p| p.started.elapsed() < PENDING_FOR)
    }
}

/// What the OIDC routes need.
#[derive(Clone, Debug)]
pub struct OidcState {
    auth: AuthState,
    provider: Option<Arc<Provider>>,
}

/// `GET /login/oidc` and `GET /login/oidc/callback` (404 pages when
/// `[web.oidc]` is not configured).
pub fn routes(auth: AuthState) -> Router {
    let provider = auth
        .config
        .oidc
        .clone()
        .and_then(|c| match Provider::new(c) {
            Ok(p) => Some(Arc::new(p)),
            Err(e) => {
                tracing::error!(error = %e, "OpenID Connect sign-in is off");
                None
            }
        });
    let r = Router::new();
    let r = add(r, Method::GET, "/login/oidc", axum::routing::get(start));
    let r = add(
        r,
        Method::GET,
        "/login/oidc/callback",
        axum::routing::get(callback),
    );
    r.with_state(OidcState { auth, provider })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small bilingual page: `id` and `en` are plain text.
fn page(code: StatusCode, id: &str, en: &str, detail: Option<&str>) -> Response {
    let detail = detail.map_or(String::new(), |d| {
        format!("<p><small><code>{}</code></small></p>", esc(d))
    });
    let body = format!(
        "<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>Pantau — {0}</title><style>body{{font-family:sans-serif;margin:1.5em;color:#222}}small{{color:#555}}.bad{{color:#b00020;font-weight:bold}}</style></head>\
<body><h1>Pantau — masuk dengan SSO <small>sign in with SSO</small></h1><p class=bad>{0}</p><p><small>{1}</small></p>{detail}\
<p><a href=\"/login\">Kembali ke halaman masuk / back to the sign-in page</a></p></body></html>",
        esc(id),
        esc(en)
    );
    (code, Html(body)).into_response()
}

fn not_configured() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Masuk dengan SSO (OpenID Connect) tidak diaktifkan di collector ini.",
        "OpenID Connect sign-in is not configured on this collector ([web.oidc]).",
        None,
    )
}

fn provider_failed(e: &OidcError) -> Response {
    page(
        StatusCode::BAD_GATEWAY,
        "Penyedia identitas (SSO) tidak dapat dihubungi atau memberi jawaban yang salah. Coba lagi nanti, atau masuk dengan akun lokal.",
        "The identity provider could not be reached or answered wrongly. Try again later, or sign in with a local account.",
        Some(&e.to_string()),
    )
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `application/x-www-form-urlencoded` of one value.
fn form_enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

fn cookie_attrs(secure: bool) -> &'static str {
    if secure {
        "; Path=/login/oidc; HttpOnly; SameSite=Lax; Secure"
    } else {
        "; Path=/login/oidc; HttpOnly; SameSite=Lax"
    }
}

async fn start(
    State(s): State<OidcState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(p) = &s.provider else {
        return not_configured();
    };
    let d = match p.discovery().await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "OpenID Connect discovery failed");
            return provider_failed(&e);
        }
    };
    let redirect_uri = match &p.cfg.redirect_url {
        Some(u) => u.clone(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@', ' ']))
                .unwrap_or("localhost");
            let scheme = if s.auth.secure { "https" } else { "http" };
            format!("{scheme}://{host}/login/oidc/callback")
        }
    };
    let Ok(mut url) = reqwest::Url::parse(&d.authorization_endpoint) else {
        return page(
            StatusCode::BAD_GATEWAY,
            "Dokumen discovery penyedia identitas tidak berisi alamat otorisasi yang sah.",
            "The provider's discovery document has no valid authorization endpoint.",
            Some(&d.authorization_endpoint),
        );
    };
    let (state, nonce) = (random_hex(), random_hex());
    let verifier = b64url(&rand::random::<[u8; 32]>());
    let challenge = {
        use sha2::Digest;
        b64url(&sha2::Sha256::digest(verifier.as_bytes()))
    };
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.cfg.client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &p.cfg.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    p.remember(
        state.clone(),
        Pending {
            nonce,
            verifier,
            next: super::auth::safe_next(q.next.as_deref()),
            redirect_uri,
            started: Instant::now(),
        },
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, url.to_string()),
            (
                header::SET_COOKIE,
                format!(
                    "{STATE_COOKIE}={state}{}; Max-Age={}",
                    cookie_attrs(s.auth.secure),
                    PENDING_FOR.as_secs()
                ),
            ),
        ],
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// A refused sign-in: audited as `auth.login-failed` with method oidc,
/// counted against the source address (unless the provider was merely
/// unreachable: an outage must not lock users out), answered with a page.
async fn refuse(s: &OidcState, ip: &str, who: &str, reason: &str, res: Response) -> Response {
    if !reason.starts_with(OUTAGE) {
        s.auth.throttle.fail(&[format!("ip:{ip}")], now_ms());
    }
    tracing::warn!(peer = %ip, user = %who, reason, "OpenID Connect sign-in refused");
    // Before the token is verified the user is unknown.
    let who: String = if who.is_empty() { "(oidc)" } else { who }
        .chars()
        .take(64)
        .collect();
    let after = json!({"method": "oidc", "reason": reason});
    if let Err(e) = crate::audit::record_shared(
        &s.auth.store,
        Actor::web_user(&who, ip),
        Action::AuthLoginFailed,
        who.clone(),
        Value::Null,
        after,
    )
    .await
    {
        tracing::error!(error = %e, "failed login not recorded in the audit log");
    }
    res
}

async fn callback(
    State(s): State<OidcState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    q: Result<Query<CallbackQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(p) = s.provider.clone() else {
        return not_configured();
    };
    let ip = peer_ip(peer);
    if s.auth.throttle.blocked(&[format!("ip:{ip}")], now_ms()) {
        return page(
            StatusCode::TOO_MANY_REQUESTS,
            "Terlalu banyak percobaan gagal; coba lagi 15 menit lagi.",
            "Too many failed attempts; try again in 15 minutes.",
            None,
        );
    }
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let bound = cookie(&headers, STATE_COOKIE);
    let pending = match (&q.state, &bound) {
        (Some(st), Some(c)) if subtle_eq(st, c) => p.take(st),
        _ => None,
    };
    let Some(pending) = pending else {
        let res = page(
            StatusCode::BAD_REQUEST,
            "Permintaan masuk tidak cocok atau sudah kedaluwarsa (state). Mulai lagi dari halaman masuk.",
            "The sign-in request does not match this browser or has expired (state). Start again from the sign-in page.",
            None,
        );
        return refuse(&s, &ip, "", "state mismatch or expired", res).await;
    };
    if let Some(err) = &q.error {
        let detail = format!("{err}: {}", q.error_description.as_deref().unwrap_or(""));
        let res = page(
            StatusCode::FORBIDDEN,
            "Penyedia identitas menolak permintaan masuk.",
            "The identity provider refused the sign-in.",
            Some(&detail),
        );
        return refuse(&s, &ip, "", &format!("provider error {err}"), res).await;
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        let res = page(
            StatusCode::BAD_REQUEST,
            "Jawaban penyedia identitas tidak berisi kode otorisasi.",
            "The provider's answer has no authorization code.",
            None,
        );
        return refuse(&s, &ip, "", "no code", res).await;
    };
    match redeem(&p, &code, &pending).await {
        Ok(claims) => finish(&s, &p.cfg, &ip, claims, &pending.next).await,
        Err(e) => {
            tracing::warn!(peer = %ip, error = %e, "OpenID Connect token exchange or verification failed");
            let res = provider_failed(&e);
            let reason = match e {
                OidcError::Http { .. } | OidcError::Status { .. } => format!("{OUTAGE}{e}"),
                _ => format!("token: {e}"),
            };
            refuse(&s, &ip, "", &reason, res).await
        }
    }
}

/// Exchange the code, verify the ID token, and add the user-info claims
/// the ID token lacks.
async fn redeem(p: &Provider, code: &str, pending: &Pending) -> Result<Value, OidcError> {
    let d = p.discovery().await?;
    let cfg = &p.cfg;
    let mut form = format!(
        "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
        form_enc(code),
        form_enc(&pending.redirect_uri),
        form_enc(&pending.verifier)
    );
    let mut req = p
        .http
        .post(&d.token_endpoint)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    let methods = &d.token_endpoint_auth_methods_supported;
    if !methods.is_empty()
        && !methods.iter().any(|m| m == "client_secret_basic")
        && methods.iter().any(|m| m == "client_secret_post")
    {
        form.push_str(&format!(
            "&client_id={}&client_secret={}",
            form_enc(&cfg.client_id),
            form_enc(&cfg.client_secret.0)
        ));
    } else {
        req = req.basic_auth(
            form_enc(&cfg.client_id),
            Some(form_enc(&cfg.client_secret.0)),
        );
    }
    let what = "token endpoint";
    let body = p.get_json(what, req.body(form)).await?;
    #[derive(Deserialize)]
    struct TokenAnswer {
        id_token: Option<String>,
        access_token: Option<String>,
    }
    let t: TokenAnswer =
        serde_json::from_slice(&body).map_err(|source| OidcError::Json { what, source })?;
    let id_token = t
        .id_token
        .ok_or_else(|| OidcError::Claim("the token endpoint sent no id_token".into()))?;
    let kid = jsonwebtoken::decode_header(&id_token)?.kid;
    let keys = p.keys_for(&d.jwks_uri, kid.as_deref()).await?;
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let v = verify_id_token(
        &id_token,
        &keys,
        &cfg.issuer,
        &cfg.client_id,
        &pending.nonce,
        now,
    )?;
    let mut claims = v.claims;
    let lacking = claims
        .get(cfg.claim.split('.').next().unwrap_or(""))
        .is_none()
        || (cfg.require_verified_email && claims.get("email_verified").is_none());
    if lacking && let (Some(ui), Some(at)) = (&d.userinfo_endpoint, &t.access_token) {
        let what = "userinfo";
        let body = p.get_json(what, p.http.get(ui).bearer_auth(at)).await?;
        let info: Value =
            serde_json::from_slice(&body).map_err(|source| OidcError::Json { what, source })?;
        if info.get("sub").and_then(Value::as_str) != Some(v.subject.as_str()) {
            return Err(OidcError::Claim(
                "userinfo `sub` differs from the ID token".into(),
            ));
        }
        if let (Value::Object(c), Value::Object(extra)) = (&mut claims, info) {
            for (k, x) in extra {
                c.entry(k).or_insert(x);
            }
        }
    }
    Ok(claims)
}

/// Map the verified user to an account, open a session and send the
/// browser on.
async fn finish(s: &OidcState, cfg: &OidcConfig, ip: &str, claims: Value, next: &str) -> Response {
    let str_claim = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
    let subject = str_claim("sub").unwrap_or_default();
    let shown = str_claim("preferred_username")
        .or_else(|| str_claim("email"))
        .unwrap_or_else(|| subject.clone());
    if cfg.require_verified_email
        && !matches!(claims.get("email_verified"), Some(Value::Bool(true)))
        && claims.get("email_verified").and_then(Value::as_str) != Some("true")
    {
        let res = page(
            StatusCode::FORBIDDEN,
            "Alamat e-mail akun SSO Anda belum terverifikasi.",
            "Your SSO account's e-mail address is not verified.",
            None,
        );
        return refuse(s, ip, &shown, "email not verified", res).await;
    }
    let values = claim_values(&claims, &cfg.claim);
    let Some((role, opds)) = map_role(cfg, &values) else {
        let res = page(
            StatusCode::FORBIDDEN,
            "Akun SSO Anda tidak memiliki peran di Pantau. Minta admin Diskominfo menambahkan Anda ke grup yang dipetakan.",
            "Your SSO account has no Pantau role. Ask the Diskominfo admin to add you to a mapped group.",
            Some(&format!("{}: {}", cfg.claim, values.join(", "))),
        );
        return refuse(s, ip, &shown, "no mapped role", res).await;
    };
    let id = OidcIdentity {
        issuer: cfg.issuer.clone(),
        subject: subject.clone(),
        preferred_name: shown.clone(),
        role,
        opds,
    };
    let now = now_ms();
    let linked = match s.auth.store.with(move |st| st.oidc_sign_in(&id, now)).await {
        Ok(l) => l,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    };
    let account = linked.account;
    if account.disabled {
        let res = page(
            StatusCode::FORBIDDEN,
            "Akun ini dinonaktifkan di Pantau.",
            "This account is disabled in Pantau.",
            None,
        );
        return refuse(s, ip, &account.name, "account disabled", res).await;
    }
    let link = json!({"method": "oidc", "issuer": cfg.issuer, "subject": subject});
    let now_json = json!({"role": account.role.to_string(), "opds": account.opds, "oidc": link});
    let changes = match &linked.before {
        None => vec![(Action::UserAdd, Value::Null, now_json.clone())],
        Some(b) if b.role != account.role || b.opds != account.opds => vec![(
            Action::UserChange,
            json!({"role": b.role.to_string(), "opds": b.opds}),
            now_json.clone(),
        )],
        Some(_) => vec![],
    };
    let login = json!({"role": account.role.to_string(), "method": "oidc", "issuer": cfg.issuer});
    // No session without its audit entries.
    for (action, before, after) in
        changes
            .into_iter()
            .chain([(Action::AuthLogin, Value::Null, login)])
    {
        if let Err(e) = crate::audit::record_shared(
            &s.auth.store,
            Actor::web_user(&account.name, ip),
            action,
            account.name.clone(),
            before,
            after,
        )
        .await
        {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
        }
    }
    session(s, ip, &account.name, account.role, next).await
}

/// Open the session: the same cookie as a password login; the browser moves
/// on from a page of this site (a redirect straight from the provider's
/// cross-site navigation would not carry the `SameSite=Strict` cookie).
async fn session(s: &OidcState, ip: &str, name: &str, role: Role, next: &str) -> Response {
    let a = &s.auth;
    let now = now_ms();
    let id = random_hex();
    let (digest, csrf, who) = (crate::auth::digest(&id), random_hex(), name.to_string());
    let purge = now - a.config.session_max.as_millis() as i64;
    if let Err(e) = a
        .store
        .with(move |st| st.add_session(&digest, &who, &csrf, now, purge))
        .await
    {
        return (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response();
    }
    a.throttle.succeed(&format!("user:{name}"));
    tracing::info!(peer = %ip, user = %name, role = %role, method = "oidc", "login");
    let session_attrs = if a.secure {
        "; Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/; HttpOnly; SameSite=Strict"
    };
    let body = format!(
        "<!doctype html><html lang=\"id\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={0}\">\
<title>Pantau</title></head><body><p>Berhasil masuk sebagai <b>{1}</b>. <a href=\"{0}\">Lanjut / continue</a></p></body></html>",
        esc(next),
        esc(name)
    );
    let mut res = (StatusCode::OK, Html(body)).into_response();
    let h = res.headers_mut();
    let max = a.config.session_max.as_secs();
    for c in [
        format!("{SESSION_COOKIE}={id}{session_attrs}; Max-Age={max}"),
        format!("{STATE_COOKIE}={}; Max-Age=0", cookie_attrs(a.secure)),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

#[cfg(test)]
mod tests;
