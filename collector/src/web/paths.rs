//! Paths (traceroute): `GET /api/v1/paths` and the `/jalur` topology page.
//! The graph and its drawing live in [`crate::report::topology`].

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::{Extension, Json};
use maud::{PreEscaped, html};
use serde::Deserialize;
use serde_json::json;

use super::auth::Principal;
use super::layout;
use super::page::local_time;
use super::{ApiError, AppState, parse_time, rfc3339, visible_agent};
use crate::report::Lang;
use crate::report::topology::{self, Filter, PathObs, Topology, hops_text};
use crate::store::{self, SharedStore, StoreError};

/// How far back the page looks for paths and changes, by default (days).
const PAGE_DAYS: i64 = 30;
/// Most paths one API answer carries, by default and at most.
const API_LIMIT: (usize, usize) = (1000, 10_000);

/// Query of `/api/v1/paths`: every key optional; `from`/`to` are RFC 3339.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PathsQuery {
    opd: Option<String>,
    agent: Option<String>,
    target: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// Most paths in the answer (the most recently seen; default 1000).
    limit: Option<usize>,
}

/// Query of `/jalur`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PageQuery {
    /// Days to look back (1-400, default 30).
    days: Option<i64>,
}

/// The paths matching `filter`, read from one snapshot of the store.
async fn load(store: &SharedStore, filter: Filter) -> Result<Vec<PathObs>, StoreError> {
    store
        .with(move |st| store::report::snapshot(st, |r| topology::load(r, &filter)))
        .await
}

/// `GET /api/v1/paths?opd=&agent=&target=&from=&to=`: the paths in use in
/// the window (hops with address and latest RTT, first/last seen) and the
/// path changes whose new path was first seen in it.
pub(super) async fn api(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<PathsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let from_ms = q
        .from
        .as_deref()
        .map(|v| parse_time("from", Some(v)))
        .transpose()?;
    let to_ms =
        q.to.as_deref()
            .map(|v| parse_time("to", Some(v)))
            .transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms)
        && t <= f
    {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "`to` must be after `from`".into(),
        ));
    }
    if let Some(name) = q.agent.clone()
        && !visible_agent(&s, &who, &name).await?
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no agent `{name}`"),
        ));
    }
    let filter = Filter {
        opd: q.opd,
        agent: q.agent,
        target: q.target,
        from_ms,
        to_ms,
    };
    let limit = q.limit.unwrap_or(API_LIMIT.0);
    if !(1..=API_LIMIT.1).contains(&limit) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("`limit` must be 1 to {}", API_LIMIT.1),
        ));
    }
    let mut paths = load(&s.store, filter).await?;
    paths.retain(|p| who.sees(&p.opd));
    let truncated = paths.len() > limit;
    if truncated {
        // Keep the most recently seen, in their original order.
        let mut order: Vec<(i64, i64)> = paths.iter().map(|p| (p.last_seen_ms, p.id)).collect();
        order.sort_unstable_by(|a, b| b.cmp(a));
        let keep: std::collections::HashSet<i64> =
            order.into_iter().take(limit).map(|(_, id)| id).collect();
        paths.retain(|p| keep.contains(&p.id));
    }
    let changes_from = from_ms.unwrap_or(i64::MIN);
    let items: Vec<serde_json::Value> = paths
        .iter()
        .map(|p| {
            let hops: Vec<serde_json::Value> = p
                .hops
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let us = p.rtt_us.get(i).copied().unwrap_or(0);
                    json!({
                        "ttl": i + 1,
                        "address": (!a.is_empty()).then_some(a),
                        "rtt_ms": (us > 0).then_some(us as f64 / 1000.0),
                    })
                })
                .collect();
            json!({
                "id": p.id, "opd": p.opd, "agent": p.agent, "target": p.target,
                "group": p.group, "address": p.address, "reached": p.reached,
                "hops": hops,
                "first_seen": rfc3339(p.first_seen_ms), "last_seen": rfc3339(p.last_seen_ms),
                "times_seen": p.times_seen, "previous_id": p.previous_id,
            })
        })
        .collect();
    let changes: Vec<serde_json::Value> = paths
        .iter()
        .filter(|p| p.first_seen_ms >= changes_from)
        .filter_map(|p| {
            Some(json!({
                "opd": p.opd, "agent": p.agent, "target": p.target,
                "path_id": p.id, "previous_id": p.previous_id?,
                "old_last_seen": p.previous_last_seen_ms.map(rfc3339),
                "at": rfc3339(p.first_seen_ms),
                "old_hops": p.previous_hops.as_ref()?,
                "new_hops": p.hops,
            }))
        })
        .collect();
    Ok(Json(
        json!({"paths": items, "changes": changes, "truncated": truncated}),
    ))
}

/// `GET /jalur[?days=N]`: the topology drawn from the current paths of every
/// agent, and per OPD the path changes of the last N days (default 30).
pub(super) async fn page(
    State(s): State<AppState>,
    Extension(who): Extension<Principal>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, ApiError> {
    let days = q.days.unwrap_or(PAGE_DAYS);
    if !(1..=400).contains(&days) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "`days` must be 1 to 400".into(),
        ));
    }
    let now = store::now_ms();
    let since = now - days * 86_400_000;
    let filter = Filter {
        from_ms: Some(since),
        ..Filter::default()
    };
    let mut paths = load(&s.store, filter).await?;
    paths.retain(|p| who.sees(&p.opd));
    let g = Topology::build(&paths, since);
    let d = &s.display;
    let mut opds: Vec<&str> = g.changes.iter().map(|c| c.opd.as_str()).collect();
    opds.sort_unstable();
    opds.dedup();
    let body = html! {
        h1 { "Topologi jaringan " small { "(Network paths)" } }
        p { (d.agency) " · Diperbarui / updated: " (local_time(d, now)) }
        p {
            small {
                "Jalur terkini setiap agen ke setiap target traceroute; router yang dilalui beberapa OPD digabung menjadi satu simpul. \
                 / Current path of every agent to every traceroute target; routers shared by several OPDs are one node. Warna / colours: "
                b style="color:#1f5fa8" { "agen / agent" } " (kotak / square), "
                b style="color:#555" { "router" } " (bulat / circle), "
                b style="color:#aaa" { "tidak menjawab / silent" } ", "
                b style="color:#176c2b" { "target" } " (kotak / square)."
            }
        }
        @if g.nodes.is_empty() {
            p {
                "Belum ada data jalur (traceroute) dalam " (days) " hari terakhir. "
                small { "No traceroute paths in the last " (days) " days." }
            }
        } @else {
            // The drawing escapes its own labels (report::topology).
            div.scroll { (PreEscaped(topology::svg(&g, Lang::Id))) }
        }
        h2 { "Perubahan jalur " (days) " hari terakhir " small { "path changes, last " (days) " days" } }
        @if g.changes.is_empty() {
            p { "Tidak ada perubahan jalur. " small { "No path changes." } }
        }
        @for opd in opds {
            h3 { (opd) }
            div.scroll {
                table {
                    tr {
                        th { "Waktu / when" } th { "Agen / agent" } th { "Target" }
                        th { "Jalur lama / old hops" } th { "Jalur baru / new hops" }
                    }
                    @for c in g.changes.iter().filter(|c| c.opd == opd) {
                        tr.perubahan {
                            td { (local_time(d, c.at_ms)) } td { (c.agent) } td { (c.target) }
                            td { (hops_text(&c.old_hops)) } td { (hops_text(&c.new_hops)) }
                        }
                    }
                }
            }
        }
        p { a href="/api/v1/paths" { "/api/v1/paths" } }
    };
    Ok(Html(
        layout::page("Topologi jaringan", Some(&who), "/jalur", body).into_string(),
    ))
}
