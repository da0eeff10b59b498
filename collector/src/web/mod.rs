//! HTTP: `/metrics`, `/healthz`, the JSON API under `/api/v1/`, a light
//! overview page, the paths page and (in [`report`]) the report pages.
//! Every handler reads through the one shared store ([`SharedStore`]) on
//! tokio's blocking pool; the backend serves reads from its readers, never
//! from the ingest writer. Nothing here knows which backend it is.
//!
//! [`ApiRead`]: crate::store::ApiRead

pub mod auth;
mod bandwidth;
pub mod console;
pub mod layout;
pub mod oidc;
mod page;
mod paths;
pub mod report;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::config::Display;
use crate::ingest::writer::Writer;
use crate::metrics::Metrics;
use crate::net;
use crate::store::{self, SharedStore, StoreError, api};

/// Most rows one results request returns.
pub const MAX_RESULTS: usize = 10_000;

/// Shared state of the HTTP handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The store.
    pub store: SharedStore,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Writer health.
    pub writer: Writer,
    /// Display settings.
    pub display: Arc<Display>,
    /// SLA availability target per report group (percent), in
    /// [`crate::report::rules::GROUPS`] order: the status page's colours.
    pub sla_pct: [f64; 5],
}

/// How the HTTP port treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connection caps and idle close ([`net::Limits::HTTP`]).
    pub connections: net::Limits,
    /// A request's headers must arrive within this long, and a keep-alive
    /// connection waiting for its next request is closed after it: the
    /// slowloris defence.
    pub header_read: Duration,
    /// With HTTPS, the TLS handshake must finish within this long (done in
    /// the connection's own task, so a slow one never holds up accepts).
    pub handshake: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            connections: net::Limits::HTTP,
            header_read: Duration::from_secs(10),
            handshake: Duration::from_secs(10),
        }
    }
}

/// Serve the HTTP port (`app`) on `listener` until `shutdown`, with the
/// default [`HttpLimits`] but the configured connection caps
/// (`[limits]`), counted in `counters`; HTTPS when `tls` is given
/// ([`tls::acceptor`]).
pub async fn serve(
    app: Router,
    listener: tokio::net::TcpListener,
    connections: net::Limits,
    counters: net::PortCounters,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let limits = HttpLimits {
        connections,
        ..HttpLimits::default()
    };
    serve_with(app, listener, limits, Some(counters), tls, shutdown).await
}

/// Serve the HTTP port with `limits`: our own accept loop over
/// [`net::Incoming`] (caps per source and in total, idle close), the TLS
/// handshake (when `tls`) with a timeout in each connection's task, and
/// hyper's HTTP/1 connection with a header-read timeout; every response
/// gets the [`SECURITY_HEADERS`]. On `shutdown`, open connections finish
/// their request and close.
pub async fn serve_with(
    app: Router,
    listener: tokio::net::TcpListener,
    limits: HttpLimits,
    counters: Option<net::PortCounters>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::map_response(security_headers));
    let mut incoming = net::Incoming::new(listener, limits.connections);
    if let Some(c) = counters {
        incoming = incoming.with_counters(c);
    }
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let conn = tokio::select! {
            _ = shutdown.cancelled() => break,
            c = std::future::poll_fn(|cx| incoming.poll_accept(cx)) => c,
        };
        let (app, shutdown) = (app.clone(), shutdown.clone());
        match tls.clone() {
            None => {
                let peer = conn.peer();
                conns.spawn(serve_connection(
                    app,
                    conn,
                    peer,
                    limits.header_read,
                    shutdown,
                ));
            }
            Some(acceptor) => {
                conns.spawn(serve_tls_connection(app, acceptor, conn, limits, shutdown));
            }
        }
        // Reap finished connections so the set stays as small as the open ones.
        while conns.try_join_next().is_some() {}
    }
    drop(incoming);
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// The TLS handshake (bounded by `limits.handshake`, abandoned on
/// `shutdown`), then the HTTP/1 connection over it.
async fn serve_tls_connection(
    app: Router,
    acceptor: tokio_rustls::TlsAcceptor,
    conn: net::Limited<tokio::net::TcpStream>,
    limits: HttpLimits,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let peer = conn.peer();
    let handshake = tokio::time::timeout(limits.handshake, acceptor.accept(conn));
    let stream = tokio::select! {
        r = handshake => r,
        _ = shutdown.cancelled() => return,
    };
    match stream {
        Ok(Ok(stream)) => {
            serve_connection(app, stream, peer, limits.header_read, shutdown).await;
        }
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "HTTPS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "HTTPS handshake timed out"),
    }
}

/// One HTTP/1 connection until it closes or `shutdown`.
async fn serve_connection<I>(
    app: Router,
    conn: I,
    peer: std::net::SocketAddr,
    header_read: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower_service::Service as _;
    let svc = hyper::service::service_fn(
        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            // The peer address, for logging refused agent tokens.
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(req).await }
        },
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_read)
        .keep_alive(true);
    let served = builder.serve_connection(hyper_util::rt::TokioIo::new(conn), svc);
    tokio::pin!(served);
    let result = tokio::select! {
        r = served.as_mut() => r,
        _ = shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer = %peer, error = %e, "HTTP connection ended");
    }
}

/// Content-Security-Policy of every response. The pages are server-rendered
/// HTML with inline `<style>`, `style=` attributes and inline SVG, one GET
/// form to `/api/v1/report`, and no script, image, font or frame: so
/// everything comes from this origin, styles may be inline, scripts and
/// plugins never run, and no other site may frame a page (clickjacking).
pub const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// The security headers put on every HTTP response (pages, API, metrics,
/// errors and 404s alike).
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Adds [`SECURITY_HEADERS`] to a response (handlers never set them, so
/// nothing is overwritten that a handler chose).
pub async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(
            header::HeaderName::from_static(name),
            header::HeaderValue::from_static(value),
        );
    }
    res
}

/// The router. Every route goes through [`auth::add`], so each has its rule
/// in [`auth::ROUTES`]; the app must then be wrapped by [`auth::protect`].
pub fn router(state: AppState) -> Router {
    let gets: [(&str, axum::routing::MethodRouter<AppState>); 10] = [
        ("/", get(overview)),
        ("/metrics", get(metrics)),
        ("/healthz", get(healthz)),
        ("/api/v1/opds", get(opds)),
        ("/api/v1/agents", get(agents)),
        ("/api/v1/targets", get(targets)),
        ("/api/v1/results", get(results)),
        ("/api/v1/sessions", get(sessions)),
        ("/api/v1/paths", get(paths::api)),
        ("/jalur", get(paths::page)),
    ];
    let mut r = Router::new();
    for (path, route) in gets {
        r = auth::add(r, Method::GET, path, route);
    }
    r = auth::add(
        r,
        Method::GET,
        "/api/v1/bandwidth/download",
        get(bandwidth::download),
    );
    r = auth::add(
        r,
        Method::POST,
        "/api/v1/bandwidth/upload",
        post(bandwidth::upload),
    );
    r.with_state(state)
}

/// An API error: JSON body with a message.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> Response {
    let db = s.store.with(|st| st.ping()).await;
    let writer = s.writer.healthy();
    let ok = db.is_ok() && writer;
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({"status": if ok {"ok"} else {"unavailable"}, "database": db.is_ok(), "writer": writer}))).into_response()
}

async fn opds(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
) -> Result<Json<Vec<api::Opd>>, ApiError> {
    let mut rows = s.store.with(|st| st.opds()).await?;
    rows.retain(|o| p.sees(&o.id));
    Ok(Json(rows))
}

async fn agents(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
) -> Result<Json<Vec<api::Agent>>, ApiError> {
    let mut rows = s.store.with(|st| st.agents()).await?;
    rows.retain(|a| p.sees(&a.opd));
    Ok(Json(rows))
}

#[derive(Deserialize)]
struct TargetsQuery {
    agent: Option<String>,
}

async fn targets(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
    Query(q): Query<TargetsQuery>,
) -> Result<Json<Vec<api::Target>>, ApiError> {
    let mut rows = s
        .store
        .with(move |st| st.targets(q.agent.as_deref()))
        .await?;
    rows.retain(|t| p.sees(&t.opd));
    Ok(Json(rows))
}

#[derive(Deserialize)]
struct ResultsQuery {
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

fn parse_time(key: &str, v: Option<&str>) -> Result<i64, ApiError> {
    let v = v.ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is required (RFC 3339, e.g. 2026-11-28T00:00:00Z)"),
        )
    })?;
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("`{key}` is not an RFC 3339 time ({e}): {v}"),
            )
        })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Whether `agent` exists and belongs to an OPD `p` may see: an agent of
/// another OPD does not exist for an `opd` caller.
async fn visible_agent(s: &AppState, p: &auth::Principal, agent: &str) -> Result<bool, StoreError> {
    let a = agent.to_string();
    Ok(s.store
        .with(move |st| Ok(st.agents()?.into_iter().find(|x| x.id == a)))
        .await?
        .is_some_and(|x| p.sees(&x.opd)))
}

/// The agent and the `[from, to)` window of a query, checked: the agent
/// exists and the window is not empty.
async fn agent_window(
    s: &AppState,
    p: &auth::Principal,
    q: ResultsQuery,
) -> Result<(String, i64, i64), ApiError> {
    let agent = q
        .agent
        .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "`agent` is required".into()))?;
    let from = parse_time("from", q.from.as_deref())?;
    let to = parse_time("to", q.to.as_deref())?;
    if to <= from {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "`to` must be after `from`".into(),
        ));
    }
    if !visible_agent(s, p, &agent).await? {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no agent `{agent}`"),
        ));
    }
    Ok((agent, from, to))
}

async fn results(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(MAX_RESULTS).clamp(1, MAX_RESULTS);
    let (agent, from, to) = agent_window(&s, &p, q).await?;
    let rows = s
        .store
        .with(move |st| st.results(&agent, from, to, limit + 1))
        .await?;
    let truncated = rows.len() > limit;
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .take(limit)
        .map(|r| {
            json!({
                "agent": r.agent, "opd": r.opd, "target": r.target, "kind": r.kind,
                "epoch": r.epoch, "seq": r.seq,
                "observed_at": rfc3339(r.observed_at_ms), "received_at": rfc3339(r.received_at_ms),
                "outcome": r.outcome, "detail": r.detail, "value_ms": r.value_ms,
                "sent": r.sent, "received": r.received, "data": r.data,
                "late": r.late, "clock_flag": r.clock_flag,
            })
        })
        .collect();
    Ok(Json(json!({"results": items, "truncated": truncated})))
}

async fn sessions(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
    Query(q): Query<ResultsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (agent, from, to) = agent_window(&s, &p, q).await?;
    let rows = s
        .store
        .with(move |st| st.sessions(&agent, from, to))
        .await?;
    let items: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|x| {
            json!({
                "agent": x.agent, "epoch": x.epoch,
                "connected_at": rfc3339(x.connected_at_ms),
                "disconnected_at": x.disconnected_at_ms.map(rfc3339),
                "end_reason": x.end_reason, "peer": x.peer,
            })
        })
        .collect();
    Ok(Json(json!({ "sessions": items })))
}

/// `GET /`: the status page ([`page`]): registry and latest results, and
/// the day rollups of the history window as the rollup task stored them
/// (no refresh here: a wall screen reloading every minute never writes).
async fn overview(
    State(s): State<AppState>,
    Extension(p): Extension<auth::Principal>,
) -> Result<Html<String>, ApiError> {
    use crate::report::time::DAY_MS;
    let now = store::now_ms();
    let today = page::day_start(now, s.display.utc_offset_minutes);
    let first = today - (page::HISTORY_DAYS as i64 - 1) * DAY_MS;
    let mut input = s
        .store
        .with(move |st| {
            Ok(page::Input {
                opds: st.opds()?,
                agents: st.agents()?,
                targets: st.targets(None)?,
                days: store::report::snapshot(st, |r| {
                    r.group_days(None, first, today + DAY_MS, false)
                })?,
            })
        })
        .await?;
    input.opds.retain(|o| p.sees(&o.id));
    input.agents.retain(|a| p.sees(&a.opd));
    input.targets.retain(|t| p.sees(&t.opd));
    input.days.retain(|d| p.sees(&d.opd));
    let view = page::View {
        display: &s.display,
        sla_pct: s.sla_pct,
        now_ms: now,
        first_day_ms: first,
    };
    let cards = page::cards(&input, now, first);
    Ok(Html(page::status(&view, &p, &cards).into_string()))
}
