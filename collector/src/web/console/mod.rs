//! The admin console (issue 13 item 6): server-rendered pages on the shared
//! frame ([`super::layout::page`]), no JavaScript, POST forms carrying the
//! session's CSRF token, Post/Redirect/Get after a change. Every change goes
//! through [`crate::admin`], the code path of the CLI, so it is checked and
//! audited the same way. Refused input is shown on the form it came from, in
//! Indonesian and English (status 400); a one-time secret (enrolment code,
//! rotated token, generated password) is shown once in the POST's answer and
//! never put in a URL.
//!
//! - `/admin`: overview and links; `/admin/audit` (+ `.jsonl` export).
//! - [`opd`]: `/admin/opd`. [`agent`]: `/admin/agen` (also for `opd` staff,
//!   filtered to their OPDs). [`target`]: `/admin/target` (central targets;
//!   `opd` staff: their OPDs' and agents' scopes). [`maintenance`]: `/admin/pemeliharaan`,
//!   `/admin/gangguan`. [`user`]: `/admin/pengguna`.

mod agent;
mod maintenance;
mod opd;
mod target;
mod user;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::auth::{self, Principal, Via};
use super::layout;
use crate::admin::ActionError;
use crate::audit::{Actor, ActorKind};
use crate::cli::enrol::EnrolHint;
use crate::store::{SharedStore, Store, StoreError};

/// What the console needs.
#[derive(Clone, Debug)]
pub struct Console {
    /// The shared store.
    pub store: SharedStore,
    /// The collector address and CA fingerprint shown with an enrolment code.
    pub hint: Arc<EnrolHint>,
    /// Minutes east of UTC of the times shown and typed in.
    pub utc_offset_minutes: i64,
}

/// The console's routes (each with its rule in [`auth::ROUTES`]).
pub fn routes(state: Console) -> Router {
    let mut r = Router::new();
    for (path, route) in [
        ("/admin", get(overview)),
        ("/admin/audit", get(audit_page)),
        ("/admin/audit.jsonl", get(audit_export)),
        ("/admin/opd", get(opd::page)),
        ("/admin/agen", get(agent::page)),
        ("/admin/pemeliharaan", get(maintenance::page)),
        ("/admin/gangguan", get(maintenance::notes_page)),
        ("/admin/pengguna", get(user::page)),
        ("/admin/target", get(target::page)),
        ("/admin/target/agen/{id}", get(target::effective)),
    ] {
        r = auth::add(r, Method::GET, path, route);
    }
    for (path, route) in [
        ("/admin/opd", post(opd::add)),
        ("/admin/opd/{id}", post(opd::change)),
        ("/admin/agen", post(agent::add)),
        ("/admin/agen/{id}", post(agent::change)),
        ("/admin/pemeliharaan", post(maintenance::create)),
        ("/admin/pemeliharaan/{id}", post(maintenance::change)),
        ("/admin/gangguan", post(maintenance::note)),
        ("/admin/pengguna", post(user::add)),
        ("/admin/pengguna/{name}", post(user::change)),
        ("/admin/target", post(target::change)),
    ] {
        r = auth::add(r, Method::POST, path, route);
    }
    r.with_state(state)
}

/// A submitted form's fields, in order (a name may repeat).
#[derive(Debug, Default, Clone)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    fn from(f: Result<Form<Vec<(String, String)>>, FormRejection>) -> Self {
        Fields(f.map(|Form(v)| v).unwrap_or_default())
    }

    /// The first value of `name` ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `name` as a comma-separated list (also repeated fields), trimmed.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// These fields without `name` (a refused form shown again gets a
    /// fresh CSRF field of its own).
    pub fn without(&self, name: &str) -> Fields {
        Fields(self.0.iter().filter(|(k, _)| k != name).cloned().collect())
    }
}

/// What a page shows above (or in) its forms.
#[derive(Debug, Clone, Default)]
pub enum Flash {
    /// Nothing.
    #[default]
    None,
    /// After a redirect: the change was saved.
    Saved,
    /// The form `form` was refused: the message names the field.
    Refused {
        /// Which form.
        form: &'static str,
        /// Bilingual message.
        message: String,
    },
    /// A one-time secret to show (and a note with it).
    Secret {
        /// What it is, bilingual.
        title: String,
        /// The id of the `<code>` holding it (for tests and users' eyes).
        id: &'static str,
        /// The secret.
        value: String,
        /// What to do with it.
        note: String,
    },
}

impl Flash {
    /// The error box of form `form`, if it was the one refused.
    pub fn for_form(&self, form: &str) -> Markup {
        match self {
            Flash::Refused { form: f, message } if *f == form => html! {
                p.err role="alert" { "Ditolak / refused: " (message) }
            },
            _ => html! {},
        }
    }

    /// The page-level box (saved, or a secret shown once).
    pub fn banner(&self) -> Markup {
        match self {
            Flash::Saved => html! {
                p.note { "Perubahan disimpan dan dicatat di log audit / change saved and recorded in the audit log." }
            },
            Flash::Secret {
                title,
                id,
                value,
                note,
            } => html! {
                div.note {
                    p { b { (title) } }
                    p { code id=(id) { (value) } }
                    p { small { (note) } }
                }
            },
            _ => html! {},
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Flash::Refused { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::OK,
        }
    }
}

/// `?ok` after a redirect.
#[derive(Debug, Deserialize)]
pub struct Done {
    ok: Option<String>,
}

impl Done {
    fn flash(&self) -> Flash {
        if self.ok.is_some() {
            Flash::Saved
        } else {
            Flash::None
        }
    }
}

/// The session's CSRF token for forms ("" for API tokens, which need none).
pub fn csrf(p: &Principal) -> &str {
    match &p.via {
        Via::Session { csrf, .. } => csrf,
        Via::Token => "",
    }
}

/// The hidden CSRF field of a form.
pub fn csrf_field(p: &Principal) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf(p)); }
}

/// Who acts, for the audit log.
fn actor(p: &Principal, peer: Option<Extension<ConnectInfo<SocketAddr>>>) -> Actor {
    let ip = auth::peer_ip(peer);
    match p.via {
        Via::Session { .. } => Actor::web_user(&p.name, &ip),
        Via::Token => Actor {
            kind: ActorKind::Token,
            name: p.name.clone(),
            source: ip,
        },
    }
}

/// A page of the console in the shared frame, with `status`.
pub fn respond(
    status: StatusCode,
    title: &str,
    p: &Principal,
    active: &str,
    body: Markup,
) -> Response {
    let nav = html! {
        p { small {
            a href="/admin" { "Ikhtisar / overview" } " · "
            @for (path, id, en) in SECTIONS {
                @if auth::rule("GET", path).is_some_and(|a| a.allows(p.role)) {
                    a href=(path) title=(en) { (id) } " · "
                }
            }
            a href="/laporan/register" { "Register laporan / signed reports" }
        } }
    };
    let html = layout::page(
        title,
        Some(p),
        active,
        html! { h1 { (title) } (nav) (body) },
    );
    (status, Html(html.into_string())).into_response()
}

/// The console's sections: path, Indonesian label, English label.
pub const SECTIONS: [(&str, &str, &str); 7] = [
    ("/admin/opd", "OPD", "OPDs"),
    ("/admin/agen", "Agen", "agents"),
    ("/admin/target", "Target terpusat", "central targets"),
    ("/admin/pemeliharaan", "Pemeliharaan", "maintenance"),
    ("/admin/gangguan", "Catatan gangguan", "incident notes"),
    ("/admin/pengguna", "Pengguna", "users and roles"),
    ("/admin/audit", "Log audit", "audit log"),
];

/// The 503 of a store failure.
pub fn unavailable(e: &StoreError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("penyimpanan gagal / store failed: {e}"),
    )
        .into_response()
}

/// 303 to `path?ok=1` (Post/Redirect/Get).
pub fn saved(path: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{path}?ok=1"))],
    )
        .into_response()
}

/// The end of a form POST whose success needs nothing shown: done goes to
/// `path?ok=1` (Post/Redirect/Get), refused shows the form again with the
/// message (`again`), a CSRF or store failure is the response itself.
pub async fn settle<T, F: Future<Output = Response>>(
    r: Result<Result<T, Flash>, Response>,
    path: &str,
    again: impl FnOnce(Flash) -> F,
) -> Response {
    match r {
        Err(r) => r,
        Ok(Ok(_)) => saved(path),
        Ok(Err(flash)) => again(flash).await,
    }
}

/// The message of a refused action.
pub fn refused(form: &'static str, e: &ActionError) -> Flash {
    Flash::Refused {
        form,
        message: e.to_string(),
    }
}

/// Run `action` on the store as `p` after the CSRF check: `Ok(Ok(value))`
/// done, `Ok(Err(flash))` refused (to show on the form), `Err(response)`
/// for a missing CSRF token or a failed store.
pub async fn run<T: Send + 'static>(
    c: &Console,
    p: &Principal,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    fields: &Fields,
    form: &'static str,
    action: impl FnOnce(&dyn Store, &Actor) -> Result<T, ActionError> + Send + 'static,
) -> Result<Result<T, Flash>, Response> {
    if !auth::csrf_ok(p, Some(fields.get("csrf"))) {
        return Err(auth::csrf_refused());
    }
    let who = actor(p, peer);
    match c.store.with(move |s| Ok(action(s, &who))).await {
        Ok(Ok(v)) => Ok(Ok(v)),
        Ok(Err(e)) => Ok(Err(refused(form, &e))),
        Err(e) => Err(unavailable(&e)),
    }
}

/// `ms` as local "YYYY-MM-DD HH:MM" in the configured zone ("-" for none).
pub fn local(ms: Option<i64>, offset_min: i64) -> String {
    ms.and_then(|ms| chrono::DateTime::from_timestamp_millis(ms + offset_min * 60_000))
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
}

/// A typed-in time in the one syntax of [`crate::when`]: a time ("2026-12-04
/// 22:00" in the configured zone, or RFC 3339) or a day, which means its
/// first minute for a start and its last for an `end`.
pub fn parse_local(field: &'static str, v: &str, offset_min: i64) -> Result<i64, ActionError> {
    parse_when(field, v, offset_min, false)
}

/// [`parse_local`] for the end of a period (a day runs to its end).
pub fn parse_local_end(field: &'static str, v: &str, offset_min: i64) -> Result<i64, ActionError> {
    parse_when(field, v, offset_min, true)
}

fn parse_when(
    field: &'static str,
    v: &str,
    offset_min: i64,
    end: bool,
) -> Result<i64, ActionError> {
    match v.parse::<crate::when::When>() {
        Ok(w) if end => Ok(w.end_ms(offset_min)),
        Ok(w) => Ok(w.start_ms(offset_min)),
        Err(_) => Err(ActionError::invalid(
            field,
            &format!("`{v}` bukan waktu; tulis mis. 2026-12-04 22:00 atau hari 2026-12-04"),
            &format!("`{v}` is not a time; write e.g. 2026-12-04 22:00 or a day 2026-12-04"),
        )),
    }
}

async fn overview(State(c): State<Console>, Extension(p): Extension<Principal>) -> Response {
    let pp = p.clone();
    let counts = c
        .store
        .with(move |s| {
            let opds = s.opd_infos()?;
            let agents = s.agents()?;
            let users = if pp.sees_all() {
                s.accounts()?.len()
            } else {
                0
            };
            Ok((
                opds.iter().filter(|o| pp.sees(&o.id)).count(),
                agents.iter().filter(|a| pp.sees(&a.opd)).count(),
                users,
                s.audit_head()?,
            ))
        })
        .await;
    let (opds, agents, users, head) = match counts {
        Ok(v) => v,
        Err(e) => return unavailable(&e),
    };
    let body = html! {
        table {
            tr { th { "OPD" } td { (opds) } }
            tr { th { "Agen / agents" } td { (agents) } }
            @if p.sees_all() {
                tr { th { "Pengguna / users" } td { (users) } }
                tr { th { "Entri log audit / audit entries" } td { (head) } }
            }
        }
        p { small {
            "Setiap perubahan di konsol juga tersedia di CLI (`pantau-collector opd|agent|target|maintenance|user ...`) \
             dan dicatat di log audit. / Every console action is also a CLI command and is recorded in the audit log."
        } }
        p { a href="/laporan" { "Buat laporan bertanda tangan / make a signed report" } }
    };
    respond(StatusCode::OK, "Administrasi", &p, "/admin", body)
}

/// Most audit entries the page shows (newest first); the export has all.
const AUDIT_PAGE_ROWS: usize = 500;

async fn audit_page(State(c): State<Console>, Extension(p): Extension<Principal>) -> Response {
    // Only the newest entries are read: the page stays bounded however long the log.
    let newest = c.store.with(|s| {
        let head = s.audit_head()?;
        s.audit_list(&crate::audit::AuditQuery {
            after_seq: Some((head - AUDIT_PAGE_ROWS as i64).max(0)),
            since_ms: None,
        })
    });
    let rows = match newest.await {
        Ok(r) => r,
        Err(e) => return unavailable(&e),
    };
    let off = c.utc_offset_minutes;
    let body = html! {
        p { small { (AUDIT_PAGE_ROWS) " entri terbaru / newest entries" } " · "
            a href="/admin/audit.jsonl" download { "Ekspor semua sebagai JSON lines (SIEM) / export all as JSON lines" } " · "
            small { "Periksa rantai / verify the chain: " code { "pantau-collector verify-audit" } } }
        div.scroll { table #audit {
            tr { th { "seq" } th { "Waktu / when" } th { "Siapa / who" } th { "Dari / from" }
                 th { "Aksi / action" } th { "Objek / object" } th { "Sebelum / before" } th { "Sesudah / after" } }
            @for e in rows.iter().rev() {
                tr {
                    td { (e.seq) }
                    td { (local(Some(e.time_ms), off)) }
                    td { (e.actor_name) " " small { "(" (e.actor_kind) ")" } }
                    td { (e.source) }
                    td { code { (e.action) } }
                    td { (e.object) }
                    td { code { (e.before.to_string()) } }
                    td { code { (e.after.to_string()) } }
                }
            }
        } }
    };
    respond(StatusCode::OK, "Log audit", &p, "/admin", body)
}

async fn audit_export(State(c): State<Console>) -> Response {
    match c.store.with(|s| s.audit_list(&Default::default())).await {
        Ok(rows) => (
            [
                (header::CONTENT_TYPE, "application/x-ndjson; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"pantau-audit.jsonl\"",
                ),
            ],
            crate::audit::to_jsonl(&rows),
        )
            .into_response(),
        Err(e) => unavailable(&e),
    }
}

/// A page handler's render on `GET`, shared by the POST handlers to show a
/// refused form again.
pub fn with_flash(Query(d): Query<Done>) -> Flash {
    d.flash()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_times_are_local_and_errors_name_the_field() {
        let t = parse_local("from", "2026-12-04 22:00", 7 * 60).unwrap();
        assert_eq!(t, parse_local("from", "2026-12-04T15:00:00Z", 0).unwrap());
        assert_eq!(local(Some(t), 7 * 60), "2026-12-04 22:00");
        let e = parse_local("to", "besok", 0).unwrap_err();
        assert_eq!(e.field(), Some("to"));
        assert!(e.to_string().contains("bukan waktu") && e.to_string().contains("not a time"));
    }

    #[test]
    fn fields_take_repeated_and_comma_separated_values() {
        let f = Fields(vec![
            ("opd".into(), "a, b".into()),
            ("opd".into(), "c".into()),
            ("name".into(), "x".into()),
        ]);
        assert_eq!(f.list("opd"), ["a", "b", "c"]);
        assert_eq!((f.get("name"), f.get("none")), ("x", ""));
    }
}
