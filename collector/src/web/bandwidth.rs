//! The bandwidth endpoint agents test their link against:
//! `GET /api/v1/bandwidth/download?bytes=N` streams N bytes,
//! `POST /api/v1/bandwidth/upload` reads and discards the body.
//! Both need the agent's token (`authorization: Bearer ...`), checked exactly
//! as the gRPC ingest does, and both are bounded: bytes per request and
//! streams at once.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::StreamExt as _;

use super::AppState;
use crate::auth;
use crate::model::AgentIdentity;

/// Most bytes one request may move.
pub const MAX_BYTES: u64 = 1 << 30;
/// Most bandwidth streams served at once (all agents together).
pub const MAX_STREAMS: usize = 64;

const CHUNK: usize = 64 * 1024;
static ZEROS: [u8; CHUNK] = [0; CHUNK];

fn streams() -> &'static Arc<Semaphore> {
    static S: OnceLock<Arc<Semaphore>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Semaphore::new(MAX_STREAMS)))
}

fn refuse(code: StatusCode, msg: &str) -> Response {
    (code, Json(json!({"error": msg}))).into_response()
}

/// The agent behind the bearer token, or the response to send instead.
async fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> Result<AgentIdentity, Response> {
    let deny = || {
        s.metrics.reject("unauthenticated");
        // Never the token: only where the attempt came from.
        let peer = peer.map_or_else(
            || "unknown".to_string(),
            |Extension(ConnectInfo(p))| p.to_string(),
        );
        tracing::warn!(%peer, "agent token refused (missing or unknown) on the bandwidth endpoint");
        refuse(
            StatusCode::UNAUTHORIZED,
            "missing or unknown agent token; enrol the agent with `pantau-collector agent add`",
        )
    };
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
        .map(str::to_string)
    else {
        return Err(deny());
    };
    let digest = auth::digest(&token);
    match s.store.with(move |st| st.agent_by_token(&digest)).await {
        Ok(Some((who, stored))) if auth::matches(&token, &stored) => Ok(who),
        Ok(_) => Err(deny()),
        Err(e) => Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("cannot check token: {e}"),
        )),
    }
}

fn permit() -> Option<OwnedSemaphorePermit> {
    Arc::clone(streams()).try_acquire_owned().ok()
}

fn busy() -> Response {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many bandwidth tests at once; try again later",
    )
}

#[derive(Deserialize)]
pub(super) struct DownloadQuery {
    bytes: u64,
}

/// Stream `bytes` zero bytes.
pub(super) async fn download(
    State(s): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let who = match authenticate(&s, &headers, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if q.bytes == 0 || q.bytes > MAX_BYTES {
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("bytes must be 1 to {MAX_BYTES}"),
        );
    }
    let permit = match permit() {
        Some(p) => p,
        None => return busy(),
    };
    tracing::debug!(agent = %who.agent_id, bytes = q.bytes, "bandwidth download");
    let mut left = q.bytes;
    let chunks = std::iter::from_fn(move || {
        // The permit lives as long as the stream.
        let _held = &permit;
        if left == 0 {
            return None;
        }
        let n = left.min(CHUNK as u64) as usize;
        left -= n as u64;
        Some(Ok::<_, std::io::Error>(Bytes::from_static(&ZEROS[..n])))
    });
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, q.bytes.to_string()),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(tokio_stream::iter(chunks)),
    )
        .into_response()
}

/// Read and discard the body; answer how many bytes arrived and how long it took.
pub(super) async fn upload(
    State(s): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Body,
) -> Response {
    let who = match authenticate(&s, &headers, peer).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let _permit = match permit() {
        Some(p) => p,
        None => return busy(),
    };
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut data = body.into_data_stream();
    while let Some(chunk) = data.next().await {
        match chunk {
            Ok(c) => bytes += c.len() as u64,
            Err(e) => {
                return refuse(StatusCode::BAD_REQUEST, &format!("upload broke off: {e}"));
            }
        }
        if bytes > MAX_BYTES {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("at most {MAX_BYTES} bytes per upload"),
            );
        }
    }
    tracing::debug!(agent = %who.agent_id, bytes, "bandwidth upload");
    Json(json!({"bytes": bytes, "seconds": start.elapsed().as_secs_f64()})).into_response()
}
