//! Report pages and API: province overview (`/laporan`), OPD detail with
//! inline SVG charts (`/laporan/opd/{id}`), incidents (`/laporan/gangguan`)
//! and report download (`/api/v1/report`). Server-rendered, no scripts, no
//! external assets.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::auth::Principal;
use super::layout;
use crate::report::render::{self, group_label, num};
use crate::report::rules::GROUPS;
use crate::report::time::DAY_MS;
use crate::report::{Format, Lang, Request, Settings, assemble, render_as, rollup};
use crate::store::accounts::Role;
use crate::store::report::ReportRead;
use crate::store::{SharedStore, StoreError};

/// State of the report routes.
#[derive(Clone)]
pub struct ReportWeb {
    /// The shared store: registry reads (last seen per OPD), rollup
    /// refreshes (through its writer) and report snapshots (its readers).
    pub store: SharedStore,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Collector public key, hex.
    pub public_key: String,
    /// The signing key, for signed bundle downloads (`bundle=1`).
    pub key: Arc<ed25519_dalek::SigningKey>,
}

impl std::fmt::Debug for ReportWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportWeb")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

/// The routes (each with its rule from [`super::auth::ROUTES`]).
pub fn routes(state: ReportWeb) -> Router {
    let mut r = Router::new();
    for (path, route) in [
        ("/laporan", get(overview)),
        ("/laporan/opd/{id}", get(opd_page)),
        ("/laporan/gangguan", get(incidents_page)),
        ("/api/v1/report", get(api_report)),
        ("/laporan/register", get(register_page)),
        ("/api/v1/reports/register", get(register_api)),
    ] {
        r = super::auth::add(r, Method::GET, path, route);
    }
    r.with_state(state)
}

/// Keep only what `p` may see of a province report.
fn only_visible(r: &mut crate::report::Report, p: &Principal) {
    r.opds.retain(|o| p.sees(&o.id));
    r.incidents.retain(|i| p.sees(&i.opd));
}

struct WebError(StatusCode, String);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

/// A report page in the shared frame, with the rules version and the
/// collector's public key at its foot.
fn framed(s: &ReportWeb, title: &str, who: &Principal, active: &str, body: Markup) -> Html<String> {
    let body = html! {
        (body)
        p {
            small {
                "Aturan / rules " (s.settings.rules.version)
                " · Kunci publik kolektor (Ed25519) / collector public key: " code { (s.public_key) }
            }
        }
    };
    Html(layout::page(title, Some(who), active, body).into_string())
}

fn today(s: &Settings) -> NaiveDate {
    let now = crate::store::now_ms() + s.utc_offset_minutes * 60_000;
    chrono::DateTime::from_timestamp_millis(now)
        .unwrap_or_default()
        .date_naive()
}

fn last_30(s: &Settings, opd: Option<String>) -> Request {
    let to = today(s);
    Request {
        opd,
        from: to - chrono::Days::new(29),
        to,
        number: String::new(),
        issued_ms: crate::store::now_ms(),
        lang: Lang::Id,
        business_hours: false,
        compare: None,
    }
}

/// Refresh the rollups through the store's writer, then run `f` on one
/// consistent snapshot, on a blocking thread.
async fn refreshed<T: Send + 'static>(
    s: &ReportWeb,
    f: impl FnOnce(&dyn ReportRead, &Settings) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let st = Arc::clone(&s.settings);
    s.store
        .with(move |store| {
            let mut f = Some(f);
            rollup::consistent(store, &st.rules, st.utc_offset_minutes, None, |r| {
                f.take().expect("called once")(r, &st)
            })
        })
        .await
}

/// A group's availability as a small meter and its figure.
fn bar(pct: Option<f64>, sla: f64) -> Markup {
    html! {
        @match pct {
            None => span.unk { "tanpa data" },
            Some(p) => {
                span.meter role="img" aria-label={ (num(p, 2, Lang::Id)) " %" } {
                    span style={
                        "width:" (format!("{:.1}", p.clamp(0.0, 100.0))) "%;background:"
                        (if p >= sla { "#2e7d32" } else { "#c62828" })
                    } {}
                }
                (num(p, 2, Lang::Id)) " %"
            }
        }
    }
}

/// Whether an OPD reports now, by the status page's rule.
fn reporting(seen: Option<i64>, now: i64) -> Markup {
    html! {
        @match seen {
            Some(t) if now - t < super::page::SILENT_AFTER_MS => span.ok { "melapor / reporting" },
            Some(_) => span.bad { "tidak melapor / silent" },
            None => span.unk { "belum ada data / no data" },
        }
    }
}

/// `GET /laporan`: every visible OPD over the last 30 days, with all five
/// report groups, and the download form.
async fn overview(
    State(s): State<ReportWeb>,
    Extension(p): Extension<Principal>,
) -> Result<Html<String>, WebError> {
    let req = last_30(&s.settings, None);
    let mut r = refreshed(&s, move |c, st| assemble(c, st, &req)).await?;
    only_visible(&mut r, &p);
    let opds = s.store.with(|st| st.opds()).await?;
    let last: BTreeMap<String, Option<i64>> =
        opds.into_iter().map(|o| (o.id, o.last_seen_ms)).collect();
    let st = &s.settings;
    let now = crate::store::now_ms();
    let body = html! {
        h1 { "Ketersediaan Jaringan Intra " small { "availability, 30 hari terakhir / last 30 days" } }
        p { (st.agency) " · " (render::period(&r)) }
        p {
            "Cakupan / coverage: " (r.coverage.connected) " dari " (r.coverage.total)
            " OPD terhubung (" (num(r.coverage.connected_pct, 1, Lang::Id)) " %, target "
            (num(r.coverage.target_pct, 1, Lang::Id)) " %)"
        }
        div.scroll {
            table {
                tr {
                    th { "OPD" } th { "Kondisi kini / state now" }
                    @for g in GROUPS { th { (group_label(g, Lang::Id)) } }
                    th { "Gangguan" } th { "Data terakhir / last seen" }
                }
                @for o in &r.opds {
                    @let seen = last.get(&o.id).copied().flatten();
                    tr {
                        td { a href={ "/laporan/opd/" (o.id) } { (o.id) } " — " (o.name) }
                        td { (reporting(seen, now)) }
                        @for g in GROUPS {
                            td {
                                (bar(
                                    o.groups.iter().find(|x| x.group == g).and_then(|x| x.availability_pct),
                                    st.sla_of(g),
                                ))
                            }
                        }
                        td { (r.incidents.iter().filter(|i| i.opd == o.id).count()) }
                        td {
                            @match seen {
                                Some(t) => (render::date_time(t, st.utc_offset_minutes, &st.zone_name, Lang::Id)),
                                None => "-",
                            }
                        }
                    }
                }
            }
        }
        (download_form(&p, &r))
    };
    Ok(framed(&s, "Laporan ketersediaan", &p, "/laporan", body))
}

/// The report download form; only the roles that may sign are offered the
/// signed bundle.
fn download_form(p: &Principal, r: &crate::report::Report) -> Markup {
    let opd = p
        .opds
        .first()
        .filter(|_| !p.sees_all())
        .map_or("all", String::as_str);
    html! {
        h2 { "Unduh laporan / download a report" }
        form action="/api/v1/report" method="get" {
            "OPD " input name="opd" value=(opd) size="10";
            " dari / from " input name="from" type="date" value=(r.meta.from);
            " sampai / to " input name="to" type="date" value=(r.meta.to);
            " atau periode / or period "
            input name="period" size="8" placeholder="2026-Q3" title="2026, 2026-S1, 2026-Q3, 2026-11";
            " "
            select name="format" {
                option { "pdf" } option { "xlsx" } option { "csv" } option { "html" } option { "json" }
            }
            " "
            select name="lang" {
                option value="id" { "Bahasa Indonesia" } option value="en" { "English" }
            }
            " "
            @if matches!(p.role, Role::Admin | Role::Evaluator) {
                label {
                    input type="checkbox" name="bundle" value="1";
                    " bundel bertanda tangan + data mentah / signed bundle + raw data (.tar)"
                }
                " " a href="/laporan/register" { "register" } " "
            }
            button { "Unduh / download" }
        }
        p {
            small {
                "Periksa bundel / verify a bundle: "
                code { "pantau-collector verify --public-key KUNCI-RESMI FILE.tar" }
                " (tanpa kunci resmi hanya keutuhan yang diperiksa, bukan asal-usul / without the official key only integrity is checked, not origin); hitung ulang / recompute: "
                code { "python3 pantau-recompute.py FILE.tar" }
            }
        }
    }
}

/// A daily availability chart: one bar per day, red below the SLA, grey
/// without data.
fn day_chart(days: &[(i64, Option<f64>)], sla: f64) -> Markup {
    let (w, hgt) = (600.0, 120.0);
    let n = days.len().max(1) as f64;
    let bw = w / n;
    let f1 = |v: f64| format!("{v:.1}");
    html! {
        div.chart {
            svg width=(w) height=(hgt + 16.0) viewBox={ "0 0 " (w) " " (hgt + 16.0) } role="img" {
                rect width=(w) height=(hgt) fill="#fafafa" stroke="#ccc" {}
                @for (i, (_, a)) in days.iter().enumerate() {
                    @let x = i as f64 * bw;
                    @match a {
                        // 90 %..100 % fills the chart so small drops are visible.
                        Some(p) => {
                            @let h = ((p - 90.0).max(0.0) / 10.0 * hgt).max(2.0);
                            rect x=(f1(x)) y=(f1(hgt - h)) width=(f1((bw - 1.0).max(1.0))) height=(f1(h))
                                fill=(if *p >= sla { "#2e7d32" } else { "#c62828" }) {
                                title { (num(*p, 2, Lang::Id)) " %" }
                            }
                        }
                        None => {
                            rect x=(f1(x)) y="0" width=(f1((bw - 1.0).max(1.0))) height=(hgt) fill="#ddd" {}
                        }
                    }
                }
                text x="0" y=(hgt + 13.0) font-size="11" { "90 %" }
                text x=(w) y=(hgt + 13.0) font-size="11" text-anchor="end" { "100 % di atas / at top" }
            }
        }
    }
}

fn daily(
    c: &dyn ReportRead,
    opd: &str,
    from: i64,
    to: i64,
) -> Result<BTreeMap<String, BTreeMap<i64, Option<f64>>>, StoreError> {
    let mut out: BTreeMap<String, BTreeMap<i64, Option<f64>>> = BTreeMap::new();
    for d in c.group_days(Some(opd), from, to, false)? {
        let (up, down) = (d.counts[0] + d.counts[1], d.counts[2]);
        let a = (up + down > 0).then(|| 100.0 * up as f64 / (up + down) as f64);
        out.entry(d.grp).or_default().insert(d.day_ms, a);
    }
    Ok(out)
}

/// `GET /laporan/opd/{id}`: one OPD over the last 30 days: figures per
/// group, daily charts, incidents and every target's latest result.
async fn opd_page(
    State(s): State<ReportWeb>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    if !p.sees(&id) {
        // Another OPD's page does not exist for an `opd` user.
        return Err(WebError(StatusCode::NOT_FOUND, format!("no OPD `{id}`")));
    }
    let req = last_30(&s.settings, Some(id.clone()));
    let i2 = id.clone();
    let (r, series) = refreshed(&s, move |c, st| {
        let r = assemble(c, st, &req)?;
        let d = daily(c, &i2, r.meta.from_ms, r.meta.to_ms)?;
        Ok((r, d))
    })
    .await?;
    let Some(o) = r.opds.first() else {
        return Err(WebError(StatusCode::NOT_FOUND, format!("no OPD `{id}`")));
    };
    let mut targets = s.store.with(|st| st.targets(None)).await?;
    targets.retain(|t| t.opd == id);
    let st = &s.settings;
    let body = html! {
        h1 { (o.name) " " small { (o.id) } }
        p {
            (render::period(&r)) " · kelengkapan data / data completeness: "
            (o.completeness_pct.map_or("-".into(), |v| num(v, 1, Lang::Id))) " %"
        }
        div.scroll {
            table {
                tr { @for x in render::group_headers(Lang::Id) { th { (x) } } }
                @for g in &o.groups {
                    tr { @for c in render::group_cells(g, Lang::Id) { td { (c) } } }
                }
            }
        }
        @for (g, days) in &series {
            @let v: Vec<(i64, Option<f64>)> = (0..)
                .map(|i| r.meta.from_ms + i * DAY_MS)
                .take_while(|d| *d < r.meta.to_ms)
                .map(|d| (d, days.get(&d).copied().flatten()))
                .collect();
            h2 { (group_label(g, Lang::Id)) " — ketersediaan harian / daily availability" }
            (day_chart(&v, st.sla_of(g)))
        }
        h2 { "Target " small { "hasil terakhir / latest result" } }
        (target_table(st, &targets))
        h2 { "Gangguan / incidents" }
        (incident_table(&r))
    };
    Ok(framed(&s, &o.name, &p, "/laporan", body))
}

/// Every target of an OPD with its latest result.
fn target_table(st: &Settings, targets: &[crate::store::api::Target]) -> Markup {
    html! {
        @if targets.is_empty() {
            p { "Belum ada target. " small { "No targets yet." } }
        } @else {
            div.scroll {
                table {
                    tr {
                        th { "Agen" } th { "Kelompok / group" } th { "Target" } th { "Jenis / kind" }
                        th { "Alamat / address" } th { "Status" } th { "Waktu / time (ms)" }
                        th { "Kehilangan paket / loss" } th { "Pengamatan / observed" }
                    }
                    @for t in targets {
                        tr {
                            td { (t.agent) }
                            td { (group_label(&t.group, Lang::Id)) }
                            td { (if t.label.is_empty() { &t.id } else { &t.label }) }
                            td { (t.kind) }
                            td { code { (t.address) } }
                            td {
                                @match t.outcome.as_deref() {
                                    Some("ok") => span.ok { "NORMAL" },
                                    Some(o) => span.bad { "GANGGUAN (" (o) ")" },
                                    None => span.unk { "TIDAK DIKETAHUI / unknown" },
                                }
                            }
                            td { (t.value_ms.map_or("-".into(), |v| num(v, 1, Lang::Id))) }
                            td { (t.loss.map_or("-".into(), |l| format!("{} %", num(l * 100.0, 1, Lang::Id)))) }
                            td {
                                (t.observed_at_ms.map_or("-".into(), |ms| {
                                    render::date_time(ms, st.utc_offset_minutes, &st.zone_name, Lang::Id)
                                }))
                            }
                        }
                    }
                }
            }
        }
    }
}

fn incident_table(r: &crate::report::Report) -> Markup {
    html! {
        @if r.incidents.is_empty() {
            p { "Tidak ada gangguan / no incidents." }
        } @else {
            div.scroll {
                table {
                    tr { @for x in render::incident_headers(Lang::Id) { th { (x) } } }
                    @for row in render::incident_rows(r) {
                        tr { @for c in row { td { (c) } } }
                    }
                }
            }
        }
    }
}

/// `GET /laporan/gangguan`: the incidents of the last 30 days.
async fn incidents_page(
    State(s): State<ReportWeb>,
    Extension(p): Extension<Principal>,
) -> Result<Html<String>, WebError> {
    let req = last_30(&s.settings, None);
    let mut r = refreshed(&s, move |c, st| assemble(c, st, &req)).await?;
    only_visible(&mut r, &p);
    let body = html! {
        h1 { "Gangguan " small { "incidents" } }
        p { (render::period(&r)) }
        (incident_table(&r))
    };
    Ok(framed(&s, "Gangguan", &p, "/laporan/gangguan", body))
}

#[derive(Deserialize)]
struct ReportQuery {
    opd: Option<String>,
    /// Instead of `from`/`to`: 2026, 2026-S1, 2026-Q3 or 2026-11.
    period: Option<String>,
    /// Date of issue printed in the header (YYYY-MM-DD; default today).
    issued: Option<String>,
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
    lang: Option<String>,
    number: Option<String>,
    business_hours: Option<bool>,
    /// `1`/`true`: the signed bundle (report, raw export, manifest and
    /// signature) as one `.tar`, as `pantau-collector report` writes it.
    bundle: Option<String>,
}

fn date_arg(key: &str, v: Option<&str>) -> Result<NaiveDate, WebError> {
    let v = v.ok_or_else(|| {
        WebError(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is required (YYYY-MM-DD)"),
        )
    })?;
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|e| {
        WebError(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is not a date YYYY-MM-DD ({e}): {v}"),
        )
    })
}

async fn api_report(
    State(s): State<ReportWeb>,
    Extension(p): Extension<Principal>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    let (from, to) = match q.period.as_deref().filter(|p| !p.trim().is_empty()) {
        Some(p) => crate::report::parse_period(p)
            .map_err(|e| WebError(StatusCode::BAD_REQUEST, e.to_string()))?,
        None => (
            date_arg("from", q.from.as_deref())?,
            date_arg("to", q.to.as_deref())?,
        ),
    };
    if to < from {
        return Err(WebError(
            StatusCode::BAD_REQUEST,
            "`to` must not be before `from`".into(),
        ));
    }
    let format: Format = q.format.as_deref().unwrap_or("pdf").parse().map_err(
        |e: crate::report::UnknownFormat| WebError(StatusCode::BAD_REQUEST, e.to_string()),
    )?;
    let lang = match q.lang.as_deref().unwrap_or("id") {
        "id" => Lang::Id,
        "en" => Lang::En,
        other => {
            return Err(WebError(
                StatusCode::BAD_REQUEST,
                format!("unknown lang `{other}`; use id or en"),
            ));
        }
    };
    let opd = q.opd.filter(|o| o != "all");
    match &opd {
        None if !p.sees_all() => {
            return Err(WebError(
                StatusCode::FORBIDDEN,
                "peran `opd` hanya boleh laporan OPD-nya sendiri; pilih `opd=` / the `opd` role may only report on its own OPDs: give `opd=`".into(),
            ));
        }
        Some(o) if !p.sees(o) => {
            return Err(WebError(StatusCode::NOT_FOUND, format!("no OPD `{o}`")));
        }
        _ => {}
    }
    let scope = opd.clone().unwrap_or_else(|| "provinsi".into());
    let given = Given {
        number: q.number.is_some(),
        issued: q.issued.as_deref().is_some_and(|d| !d.trim().is_empty()),
    };
    let req = Request {
        number: q
            .number
            .unwrap_or_else(|| crate::report::default_number(&scope, from, to)),
        opd: opd.clone(),
        from,
        to,
        issued_ms: match q.issued.as_deref().filter(|d| !d.trim().is_empty()) {
            Some(d) => s.settings.day_start(date_arg("issued", Some(d))?),
            None => crate::store::now_ms(),
        },
        lang,
        business_hours: q.business_hours.unwrap_or(false),
        compare: None,
    };
    if let Some(o) = &opd {
        let o2 = o.clone();
        let exists = s
            .store
            .with(move |st| crate::store::report::snapshot(st, |r| r.opd_exists(&o2)))
            .await?;
        if !exists {
            return Err(WebError(StatusCode::NOT_FOUND, format!("no OPD `{o}`")));
        }
    }
    let bundle = match q.bundle.as_deref() {
        None | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            return Err(WebError(
                StatusCode::BAD_REQUEST,
                format!("`bundle` must be 1 or 0, not `{other}`"),
            ));
        }
    };
    if bundle {
        let source = super::auth::peer_ip(peer);
        return signed_bundle(&s, &p, source, req, given, format, scope).await;
    }
    let pk = s.public_key.clone();
    let bytes = refreshed(&s, move |c, st| {
        let mut r = assemble(c, st, &req)?;
        r.meta.public_key = Some(pk);
        Ok(render_as(&r, format))
    })
    .await?;
    let name = format!("laporan-{scope}-{from}-{to}.{}", format.ext());
    Ok((
        [
            (header::CONTENT_TYPE, format.mime().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// What the requester of a signed report chose rather than left to the
/// collector.
#[derive(Debug, Clone, Copy)]
struct Given {
    number: bool,
    issued: bool,
}

/// Name of the signed request record inside a bundle.
pub const REQUEST_FILE: &str = "permintaan.json";

/// How far back a requester may date a signed report.
const ISSUED_BACK_DAYS: u64 = 1;

/// A signed bundle for an admin or evaluator: an issue date they give must be
/// today or at most [`ISSUED_BACK_DAYS`] back; the bundle carries a signed
/// request record ([`REQUEST_FILE`]: who, role, from where, when, and
/// whether number and date were given or generated) and goes into the
/// register.
async fn signed_bundle(
    s: &ReportWeb,
    p: &Principal,
    source: String,
    req: Request,
    given: Given,
    format: Format,
    scope: String,
) -> Result<Response, WebError> {
    if !matches!(p.role, Role::Admin | Role::Evaluator) {
        return Err(WebError(
            StatusCode::FORBIDDEN,
            format!(
                "laporan bertanda tangan hanya untuk admin dan evaluator / signed reports are for admin and evaluator only (you are `{}`)",
                p.role
            ),
        ));
    }
    let st = &s.settings;
    let issued =
        chrono::DateTime::from_timestamp_millis(req.issued_ms + st.utc_offset_minutes * 60_000)
            .unwrap_or_default()
            .date_naive();
    let today = today(st);
    if given.issued && (issued > today || issued + chrono::Days::new(ISSUED_BACK_DAYS) < today) {
        return Err(WebError(
            StatusCode::BAD_REQUEST,
            format!(
                "`issued` {issued}: tanggal terbit laporan bertanda tangan harus hari ini atau paling lama {ISSUED_BACK_DAYS} hari lalu / the issue date of a signed report must be today or at most {ISSUED_BACK_DAYS} day back (today is {today})"
            ),
        ));
    }
    let now = crate::store::now_ms();
    let actor = actor_of(p, &source);
    let record = crate::store::accounts::SignedReport {
        number: req.number.clone(),
        number_given: given.number,
        issued: issued.to_string(),
        issued_given: given.issued,
        from: req.from.to_string(),
        to: req.to.to_string(),
        scope: scope.clone(),
        format: format.ext().to_string(),
        sha256: String::new(),
        requester: format!(
            "{} {}",
            match p.via {
                super::auth::Via::Session { .. } => "user",
                super::auth::Via::Token => "token",
            },
            p.name
        ),
        role: p.role.to_string(),
        source,
        at_ms: now,
    };
    let source_of = |given: bool| {
        if given {
            "diberikan pemohon / given by the requester"
        } else {
            "dibuat kolektor / set by the collector"
        }
    };
    let request = serde_json::to_vec_pretty(&json!({
        "requester": record.requester,
        "role": record.role,
        "source_address": record.source,
        "requested_at": chrono::DateTime::from_timestamp_millis(now).unwrap_or_default().to_rfc3339(),
        "number": record.number,
        "number_source": source_of(given.number),
        "issued": record.issued,
        "issued_source": source_of(given.issued),
        "period": {"from": record.from, "to": record.to},
        "scope": record.scope,
        "format": record.format,
    }))
    .unwrap_or_default();
    let key = Arc::clone(&s.key);
    let bytes = refreshed(s, move |c, st| {
        let (_, mut files) = crate::report::bundle_files(c, st, &req, format, &key)?;
        files.push((REQUEST_FILE.into(), request));
        Ok(crate::report::sign::tar_bundle(&files, &key))
    })
    .await?;
    let name = format!(
        "laporan-{scope}-{}-{}-{}.tar",
        record.from,
        record.to,
        format.ext()
    );
    let mut record = record;
    {
        use sha2::Digest as _;
        record.sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    }
    tracing::info!(number = %record.number, requester = %record.requester, role = %record.role,
        source = %record.source, sha256 = %record.sha256, "signed report issued");
    register(s, record, actor).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// Who asks for a signed bundle, as the audit log names them.
fn actor_of(p: &Principal, source: &str) -> crate::audit::Actor {
    crate::audit::Actor {
        kind: match p.via {
            super::auth::Via::Session { .. } => crate::audit::ActorKind::WebUser,
            super::auth::Via::Token => crate::audit::ActorKind::Token,
        },
        name: p.name.clone(),
        source: source.to_string(),
    }
}

/// The register entry of a signed bundle and its audit entry, both or the
/// bundle is not handed out.
async fn register(
    s: &ReportWeb,
    record: crate::store::accounts::SignedReport,
    actor: crate::audit::Actor,
) -> Result<(), WebError> {
    let after = json!({
        "opd": record.scope, "from": record.from, "to": record.to, "issued": record.issued,
        "issued_given": record.issued_given, "number_given": record.number_given,
        "format": record.format, "role": record.role, "tar_sha256": record.sha256,
    });
    let number = record.number.clone();
    s.store
        .with(move |st| {
            st.record_signed_report(&record)?;
            crate::audit::record(
                st,
                &actor,
                crate::audit::Action::ReportSign,
                &number,
                serde_json::Value::Null,
                after,
            )
            .map(|_| ())
        })
        .await?;
    Ok(())
}

/// `GET /api/v1/reports/register`: every signed report handed out, newest first.
async fn register_api(
    State(s): State<ReportWeb>,
) -> Result<Json<Vec<crate::store::accounts::SignedReport>>, WebError> {
    Ok(Json(s.store.with(|st| st.signed_reports()).await?))
}

/// `GET /laporan/register`: the register as a page.
async fn register_page(
    State(s): State<ReportWeb>,
    Extension(p): Extension<Principal>,
) -> Result<Html<String>, WebError> {
    let rows = s.store.with(|st| st.signed_reports()).await?;
    let st = &s.settings;
    let given = |g: bool| {
        html! { @if g { " " small { "(diberikan / given)" } } }
    };
    let body = html! {
        h1 { "Register laporan bertanda tangan " small { "signed-report register" } }
        p {
            small {
                "Setiap bundel bertanda tangan yang diunduh dari kolektor; cocokkan SHA-256 berkas .tar dengan daftar ini. \
                 / Every signed bundle handed out by the collector; check a .tar file's SHA-256 against this list."
            }
        }
        div.scroll {
            table {
                tr {
                    th { "Waktu / when" } th { "Nomor / number" } th { "Tanggal terbit / issued" }
                    th { "Periode / period" } th { "Cakupan / scope" } th { "Pemohon / requester" }
                    th { "Peran / role" } th { "Alamat / source" } th { "SHA-256" }
                }
                @for r in &rows {
                    tr {
                        td { (render::date_time(r.at_ms, st.utc_offset_minutes, &st.zone_name, Lang::Id)) }
                        td { (r.number) (given(r.number_given)) }
                        td { (r.issued) (given(r.issued_given)) }
                        td { (r.from) " – " (r.to) }
                        td { (r.scope) } td { (r.requester) } td { (r.role) } td { (r.source) }
                        td { code { (r.sha256) } }
                    }
                }
            }
        }
        @if rows.is_empty() {
            p { "Belum ada laporan bertanda tangan. " small { "No signed report yet." } }
        }
    };
    Ok(framed(
        &s,
        "Register laporan bertanda tangan",
        &p,
        "/laporan/register",
        body,
    ))
}
