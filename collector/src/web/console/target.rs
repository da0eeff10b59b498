//! `/admin/target`: central targets (docs/ADMIN.md, "Target terpusat /
//! Central targets"). The definitions of every scope (province templates,
//! per OPD, per agent) with the current revision; add or edit a target,
//! remove one (also an id an earlier scope defines), import pasted
//! `[[targets]]`, a scope's local-targets policy; `/admin/target/agen/{id}`:
//! an agent's effective configuration beside what the agent reported.
//!
//! Every change goes through [`crate::fleet`], the code of `pantau-collector
//! target ...` (the form is turned into the CLI's [`Definition`]), so it is
//! validated by the agent's own rules and audited the same way. `opd` staff
//! see and edit only the scopes of their OPDs and of those OPDs' agents; the
//! province templates (which their agents probe too) are shown to them
//! read-only, and the revision history only to admins (its lines name
//! every scope).

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};
use pantau_core::probe::{TomlTable, TomlValue};
use pantau_core::{Group, ProbeKind};
use serde::Deserialize;

use super::{
    Console, Done, Fields, Flash, actor, csrf_field, local, respond, saved, unavailable, with_flash,
};
use crate::audit::Actor;
use crate::cli::target::{Definition, TargetCliError};
use crate::fleet::{self, FleetError, Scope};
use crate::store::api::Agent;
use crate::store::fleet::{ConfigStatus, Revision, ScopePolicy, ScopedTarget};
use crate::store::registry::OpdState;
use crate::store::{Store, StoreError};
use crate::web::auth::{self, Principal};

const PATH: &str = "/admin/target";

/// Revisions of the history shown (newest first).
const HISTORY_ROWS: usize = 30;

/// Why a target form was refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// Refused by the central-target rules (the CLI's errors).
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// A form field is unusable before it reaches them.
    #[error("`{field}`: {message}")]
    Field {
        /// The form field.
        field: &'static str,
        /// "Indonesian / English".
        message: String,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Refusal {
    fn field(field: &'static str, id: &str, en: &str) -> Self {
        Refusal::Field {
            field,
            message: format!("{id} / {en}"),
        }
    }
}

/// `?edit=<scope>/<id>`: the definition to put in the form.
#[derive(Debug, Deserialize)]
pub struct Edit {
    edit: Option<String>,
}

/// What the page shows, read in one go.
struct Data {
    revision: i64,
    entries: Vec<ScopedTarget>,
    policies: Vec<ScopePolicy>,
    history: Vec<Revision>,
    agents: Vec<Agent>,
    opds: Vec<(String, String)>,
}

/// Whether `p` sees the scope `scope` (stored text): the province for
/// everyone here, an OPD's or agent's scope only for its OPD's staff.
fn sees_scope(p: &Principal, agents: &[Agent], scope: &str) -> bool {
    match Scope::parse(scope) {
        Ok(Scope::Province) => true,
        Ok(Scope::Opd(id)) => p.sees(&id),
        Ok(Scope::Agent(id)) => p.sees_all() || agents.iter().any(|a| a.id == id && p.sees(&a.opd)),
        Err(_) => p.sees_all(),
    }
}

/// The scopes `p` may change, in precedence order.
fn editable(p: &Principal, d: &Data) -> Vec<String> {
    let mut v = Vec::new();
    if p.sees_all() {
        v.push(Scope::Province.to_string());
    }
    v.extend(
        d.opds
            .iter()
            .map(|(id, _)| Scope::Opd(id.clone()).to_string()),
    );
    v.extend(
        d.agents
            .iter()
            .map(|a| Scope::Agent(a.id.clone()).to_string()),
    );
    v
}

/// Refuse a change of `scope` by `p` unless it may make it. Another OPD's
/// scope is answered like an unregistered one (it does not exist for `p`).
fn may_change(s: &dyn Store, p: &Principal, scope: &Scope) -> Result<(), Refusal> {
    let ok = match scope {
        Scope::Province if p.sees_all() => true,
        Scope::Province => {
            return Err(Refusal::field(
                "scope",
                "templat provinsi hanya dapat diubah admin",
                "province templates are changed by admins only",
            ));
        }
        Scope::Opd(id) => p.sees(id),
        Scope::Agent(id) => {
            p.sees_all() || s.agents()?.iter().any(|a| a.id == *id && p.sees(&a.opd))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(FleetError::Unregistered(scope.to_string()).into())
    }
}

/// GET: the definitions by scope, the forms, the history.
pub async fn page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
    Query(e): Query<Edit>,
) -> Response {
    let draft = e
        .edit
        .as_deref()
        .and_then(|e| e.split_once('/'))
        .map(|(scope, id)| Draft::Stored(scope.to_string(), id.to_string()));
    render(&c, &p, with_flash(q), draft).await
}

/// What the target form starts with.
enum Draft {
    /// A stored definition (`?edit=`).
    Stored(String, String),
    /// The fields of a refused form, to fix and send again.
    Typed(Fields),
}

/// The form's field values for `draft` (empty for a new target).
fn form_values(draft: Option<&Draft>, d: &Data) -> Fields {
    match draft {
        Some(Draft::Typed(f)) => f.clone(),
        Some(Draft::Stored(scope, id)) => d
            .entries
            .iter()
            .find(|e| &e.scope == scope && &e.target_id == id)
            .and_then(|e| e.definition.as_deref())
            .and_then(|t| t.parse::<TomlTable>().ok())
            .map(|t| definition_fields(scope, &t))
            .unwrap_or_default(),
        None => Fields::default(),
    }
}

/// A stored target as form fields: the common keys in their own fields,
/// every other key as a `key = value` line (tables as dotted keys).
fn definition_fields(scope: &str, t: &TomlTable) -> Fields {
    let mut f = vec![
        ("aksi".to_string(), "set".to_string()),
        ("scope".to_string(), scope.to_string()),
    ];
    let mut other = String::new();
    fn lines(prefix: &str, t: &TomlTable, out: &mut String) {
        for (k, v) in t {
            match v {
                TomlValue::Table(inner) => lines(&format!("{prefix}{k}."), inner, out),
                v => out.push_str(&format!("{prefix}{k} = {v}\n")),
            }
        }
    }
    for (k, v) in t {
        match (k.as_str(), v) {
            ("id" | "group" | "kind" | "address" | "label" | "interval" | "timeout", v) => {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                f.push((k.clone(), text));
            }
            (_, TomlValue::Table(inner)) => lines(&format!("{k}."), inner, &mut other),
            (_, v) => other.push_str(&format!("{k} = {v}\n")),
        }
    }
    f.push(("lainnya".into(), other));
    Fields(f)
}

/// The CLI's definition of the form: the same `key = value` reading as
/// `--set KEY=VALUE` (a TOML value, otherwise text; dotted keys).
fn definition(f: &Fields) -> Definition {
    let opt = |k: &str| Some(f.get(k).trim().to_string()).filter(|v| !v.is_empty());
    Definition {
        scope: f.get("scope").trim().to_string(),
        id: f.get("id").trim().to_string(),
        group: f.get("group").trim().to_string(),
        kind: f.get("kind").trim().to_string(),
        address: f.get("address").trim().to_string(),
        interval: opt("interval"),
        timeout: opt("timeout"),
        label: opt("label"),
        set: f
            .get("lainnya")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
    }
}

fn table(f: &Fields) -> Result<TomlTable, Refusal> {
    definition(f).table().map_err(|e| match e {
        TargetCliError::Usage(m) => Refusal::Field {
            field: "lainnya",
            message: m.replace("--set ", ""),
        },
        TargetCliError::Fleet(e) => e.into(),
        TargetCliError::Store(e) => e.into(),
        other => Refusal::Field {
            field: "lainnya",
            message: other.to_string(),
        },
    })
}

async fn load(c: &Console, p: &Principal) -> Result<Data, StoreError> {
    let pp = p.clone();
    c.store
        .with(move |s| {
            let agents: Vec<Agent> = s
                .agents()?
                .into_iter()
                .filter(|a| pp.sees(&a.opd))
                .collect();
            let opds = s
                .opd_infos()?
                .into_iter()
                .filter(|o| pp.sees(&o.id) && o.state == OpdState::Active)
                .map(|o| (o.id, o.name))
                .collect();
            let entries = s
                .fleet_targets()?
                .into_iter()
                .filter(|e| sees_scope(&pp, &agents, &e.scope))
                .collect();
            let policies = s
                .fleet_policies()?
                .into_iter()
                .filter(|e| sees_scope(&pp, &agents, &e.scope))
                .collect();
            let history = if pp.sees_all() {
                let mut h = s.fleet_history()?;
                h.reverse();
                h.truncate(HISTORY_ROWS);
                h
            } else {
                Vec::new()
            };
            Ok(Data {
                revision: s.fleet_revision()?,
                entries,
                policies,
                history,
                agents,
                opds,
            })
        })
        .await
}

/// The refusal box of form `form`: the first line, then one item per
/// problem (each names its field).
fn refusal_box(flash: &Flash, form: &str) -> Markup {
    match flash {
        Flash::Refused { form: f, message } if *f == form => {
            let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
            let head = lines.next().unwrap_or_default().to_string();
            let rest: Vec<&str> = lines.collect();
            html! {
                div.err role="alert" {
                    p { "Ditolak / refused: " (head) }
                    @if !rest.is_empty() { ul { @for l in rest { li { (l) } } } }
                    p { small { "Tidak ada yang diubah / nothing was changed." } }
                }
            }
        }
        _ => html! {},
    }
}

// Long: one page template, the scope tables and the three forms in order.
async fn render(c: &Console, p: &Principal, flash: Flash, draft: Option<Draft>) -> Response {
    let d = match load(c, p).await {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let scopes = editable(p, &d);
    let v = form_values(draft.as_ref(), &d);
    let chosen_scope = if v.get("scope").is_empty() {
        scopes.first().cloned().unwrap_or_default()
    } else {
        v.get("scope").to_string()
    };
    let editing = v.get("aksi") == "set";
    let off = c.utc_offset_minutes;
    let mut by_scope: Vec<(String, Vec<&ScopedTarget>)> = Vec::new();
    for e in &d.entries {
        match by_scope.last_mut() {
            Some((s, v)) if *s == e.scope => v.push(e),
            _ => by_scope.push((e.scope.clone(), vec![e])),
        }
    }
    by_scope.sort_by_key(|(s, _)| Scope::parse(s).map_err(|_| s.clone()));
    let body = html! {
        (flash.banner())
        p { "Revisi saat ini / current revision: " b #revision { (d.revision) } " · "
            small { "Agen menerapkan perubahan dalam beberapa detik / agents apply a change within seconds." } }
        h2 { "Target per cakupan / targets by scope" }
        p { small { "Urutan / precedence: province → opd:<id> → agent:<id>; cakupan berikutnya mengganti \
                     atau menghapus id yang sama / a later scope replaces or removes the same id." } }
        (refusal_box(&flash, "remove"))
        @if by_scope.is_empty() { p { "Belum ada target terpusat / no central targets yet." } }
        @for (scope, entries) in &by_scope {
            @let may = scopes.contains(scope);
            h3 { code { (scope) } }
            div.scroll { table.targets data-scope=(scope) {
                tr { th { "Id" } th { "Definisi / definition" } @if may { th { "Ubah / change" } } }
                @for e in entries {
                    tr data-target={(scope) "/" (e.target_id)} {
                        td { (e.target_id) }
                        td { @match &e.definition {
                            Some(t) => code { (t.trim_end().replace('\n', "; ")) },
                            None => span.bad { "dihapus di cakupan ini / removed in this scope" },
                        } }
                        @if may {
                            td {
                                @if e.definition.is_some() {
                                    a href={(PATH) "?edit=" (scope) "/" (e.target_id) "#target-form"} { "Ubah / edit" } " "
                                    form.inline method="post" action=(PATH) {
                                        (csrf_field(p))
                                        input type="hidden" name="aksi" value="remove";
                                        input type="hidden" name="scope" value=(scope);
                                        input type="hidden" name="id" value=(e.target_id);
                                        button { "Hapus / remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 #target-form-title { @if editing { "Ubah target / edit a target" } @else { "Tambah target / add a target" } }
        (refusal_box(&flash, "target"))
        @if scopes.is_empty() {
            p { "Tidak ada cakupan yang dapat Anda ubah / no scope you may change." }
        } @else {
            form method="post" action=(PATH) id="target-form" {
                (csrf_field(p))
                input type="hidden" name="aksi" value=(if editing { "set" } else { "add" });
                label { "Cakupan / scope "
                    select name="scope" {
                        @for s in &scopes { option value=(s) selected[*s == chosen_scope] { (s) } }
                    }
                }
                label { "Id " input name="id" value=(v.get("id")) required; }
                label { "Kelompok / group " input name="group" list="groups" value=(v.get("group")) required; }
                label { "Jenis / kind " input name="kind" list="kinds" value=(v.get("kind")) required; }
                label { "Alamat / address " input name="address" value=(v.get("address")) required; }
                label { "Label " input name="label" value=(v.get("label")); }
                label { "Interval " input name="interval" value=(v.get("interval")) placeholder="30s" size="6"; }
                label { "Batas waktu / timeout " input name="timeout" value=(v.get("timeout")) placeholder="5s" size="6"; }
                label { "Kunci lain, satu per baris / other keys, one per line (" code { "kunci = nilai" } ")"
                    textarea name="lainnya" rows="3" cols="50" placeholder="expect_status = 200\nbandwidth.streams = 2" { (v.get("lainnya")) } }
                datalist #groups { @for g in Group::ALL { option value=(g.as_str()); } }
                datalist #kinds { @for k in ProbeKind::ALL { option value=(k.as_str()); } }
                button { @if editing { "Simpan perubahan / save the change" } @else { "Tambah / add" } }
                @if editing { " " a href=(PATH) { "Batal / cancel" } }
            }
        }
        (scope_forms(p, &scopes, &flash, &v))
        h2 { "Target lokal agen / the agents' own targets" }
        p { small { "Apakah agen di cakupan ini tetap memakai [[targets]] dari berkasnya sendiri / whether agents \
                     of a scope keep the [[targets]] of their own file (default: allow)." } }
        table #policies {
            tr { th { "Cakupan / scope" } th { "local_targets" } }
            @for pol in &d.policies {
                tr { td { code { (pol.scope) } } td { (if pol.local_targets { "allow" } else { "deny" }) } }
            }
        }
        (refusal_box(&flash, "policy"))
        @if !scopes.is_empty() {
            form method="post" action=(PATH) id="policy-form" {
                (csrf_field(p))
                input type="hidden" name="aksi" value="policy";
                label { "Cakupan / scope " select name="scope" { @for s in &scopes { option value=(s) { (s) } } } }
                label { "local_targets "
                    select name="local_targets" {
                        option value="allow" { "allow — boleh / allowed" }
                        option value="deny" { "deny — tidak boleh / denied" }
                        option value="inherit" { "inherit — ikut cakupan sebelumnya / as the earlier scope" }
                    }
                }
                button { "Simpan / save" }
            }
        }
        h2 { "Konfigurasi efektif per agen / effective configuration per agent" }
        ul #effective {
            @for a in &d.agents {
                li { a href={(PATH) "/agen/" (a.id)} { (a.id) } " (" (a.opd) ") — "
                     @match (a.config_version, a.config_error.as_deref()) {
                         (_, Some(e)) if !e.is_empty() => span.bad { "galat / error" },
                         (Some(v), _) => { "v" (v) },
                         (None, _) => "-",
                     } }
            }
        }
        @if p.sees_all() {
            h2 { "Riwayat revisi / revision history" }
            div.scroll { table #history {
                tr { th { "Revisi / revision" } th { "Waktu / when" } th { "Siapa / who" } th { "Perubahan / change" } }
                @for r in &d.history {
                    tr { td { (r.revision) } td { (local(Some(r.time_ms), off)) } td { (r.actor) } td { (r.summary) } }
                }
            } }
        }
        p { small { "CLI: " code { "pantau-collector target add|set|remove|import|policy|list|show-effective" } } }
    };
    respond(flash_status(&flash), "Target terpusat", p, "/admin", body)
}

/// Stop probing an id an earlier scope defines (a removal marker, as
/// `target remove`), and replace a scope's targets with pasted `[[targets]]`
/// (`target import`).
fn scope_forms(p: &Principal, scopes: &[String], flash: &Flash, v: &Fields) -> Markup {
    if scopes.is_empty() {
        return html! {};
    }
    let pick = html! { select name="scope" { @for s in scopes { option value=(s) selected[v.get("scope") == s] { (s) } } } };
    html! {
        h2 { "Hapus menurut id / remove by id" }
        p { small { "Juga untuk id dari cakupan sebelumnya: agen cakupan ini berhenti memprobenya / also for an id                      an earlier scope defines: this scope's agents stop probing it." } }
        (refusal_box(flash, "stop"))
        form method="post" action=(PATH) id="stop-form" {
            (csrf_field(p))
            input type="hidden" name="aksi" value="stop";
            label { "Cakupan / scope " (pick) }
            label { "Id " input name="id" required; }
            button { "Hapus di cakupan ini / remove in this scope" }
        }
        h2 { "Impor / import" }
        p { small { "Mengganti semua target cakupan dengan " code { "[[targets]]" } " (sintaks berkas agen,                      docs/CONFIG.md); tidak ada yang disimpan bila satu saja tidak sah / replaces every target                      of the scope; nothing is stored unless all are valid." } }
        (refusal_box(flash, "import"))
        form method="post" action=(PATH) id="import-form" {
            (csrf_field(p))
            input type="hidden" name="aksi" value="import";
            label { "Cakupan / scope " (pick) }
            label { "TOML " textarea name="toml" rows="6" cols="60" { (v.get("toml")) } }
            button { "Impor / import" }
        }
    }
}

fn flash_status(f: &Flash) -> StatusCode {
    match f {
        Flash::Refused { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    }
}

/// Which form an `aksi` belongs to (its refusal is shown there).
fn form_of(aksi: &str) -> &'static str {
    match aksi {
        "remove" => "remove",
        "stop" => "stop",
        "import" => "import",
        "policy" => "policy",
        _ => "target",
    }
}

/// Do the change `f` asks for, as `who` acting for `p`.
fn apply(s: &dyn Store, p: &Principal, who: &Actor, f: &Fields) -> Result<i64, Refusal> {
    let aksi = f.get("aksi");
    if !matches!(
        aksi,
        "add" | "set" | "remove" | "stop" | "import" | "policy"
    ) {
        return Err(Refusal::field(
            "aksi",
            "pilih add, set, remove, stop, import atau policy",
            "choose add, set, remove, stop, import or policy",
        ));
    }
    let scope = Scope::parse(f.get("scope").trim())?;
    may_change(s, p, &scope)?;
    Ok(match aksi {
        "add" => fleet::add(s, who, &scope, &table(f)?)?,
        "set" => fleet::set(s, who, &scope, &table(f)?)?,
        "remove" | "stop" => fleet::remove(s, who, &scope, f.get("id").trim())?,
        "import" => fleet::import(s, who, &scope, f.get("toml"))?,
        _ => {
            let allow = match f.get("local_targets") {
                "allow" => Some(true),
                "deny" => Some(false),
                "inherit" => None,
                _ => {
                    return Err(Refusal::field(
                        "local_targets",
                        "pilih allow, deny atau inherit",
                        "choose allow, deny or inherit",
                    ));
                }
            };
            fleet::set_policy(s, who, &scope, allow)?
        }
    })
}

/// POST /admin/target: `aksi` = add | set | remove | stop (remove by id,
/// also an id an earlier scope defines) | import | policy.
pub async fn change(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    if !auth::csrf_ok(&p, Some(f.get("csrf"))) {
        return auth::csrf_refused();
    }
    let who = actor(&p, peer);
    let (pp, ff) = (p.clone(), f.clone());
    let r = c.store.with(move |s| Ok(apply(s, &pp, &who, &ff))).await;
    match r {
        Err(e) => unavailable(&e),
        Ok(Ok(_revision)) => saved(PATH),
        Ok(Err(e)) => {
            let form = form_of(f.get("aksi"));
            let flash = Flash::Refused {
                form,
                message: e.to_string(),
            };
            let draft =
                matches!(form, "target" | "import").then(|| Draft::Typed(f.without("csrf")));
            render(&c, &p, flash, draft).await
        }
    }
}

/// GET /admin/target/agen/{id}: what the agent should probe (the rendered
/// fragment, its SHA-256 and version, where each target comes from) and
/// what it last reported applying.
pub async fn effective(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Response {
    let (pp, agent) = (p.clone(), id.clone());
    let read = c
        .store
        .with(move |s| {
            let Some(a) = s
                .agents()?
                .into_iter()
                .find(|a| a.id == agent && pp.sees(&a.opd))
            else {
                return Ok(None);
            };
            let e = fleet::effective(s, &a.id, &a.opd)?;
            let status = s
                .config_statuses()?
                .into_iter()
                .find(|(id, _)| *id == a.id)
                .map(|(_, st)| st);
            Ok(Some((a, e, status)))
        })
        .await;
    let (a, e, status) = match read {
        Err(e) => return unavailable(&e),
        Ok(None) => {
            let body = html! {
                p.err { "Agen `" (id) "` tidak ada / agent `" (id) "` does not exist." }
                p { a href=(PATH) { "Kembali / back" } }
            };
            return respond(
                StatusCode::NOT_FOUND,
                "Konfigurasi efektif",
                &p,
                "/admin",
                body,
            );
        }
        Ok(Some(v)) => v,
    };
    let body = effective_body(&a, &e, status.as_ref(), c.utc_offset_minutes);
    respond(
        StatusCode::OK,
        &format!("Konfigurasi efektif {}", a.id),
        &p,
        "/admin",
        body,
    )
}

fn effective_body(
    a: &Agent,
    e: &fleet::Effective,
    status: Option<&ConfigStatus>,
    off: i64,
) -> Markup {
    let applied_sha = status.map(|s| s.sha256.as_str()).unwrap_or_default();
    let error = status.map(|s| s.error.as_str()).unwrap_or_default();
    html! {
        p { "Agen / agent " b { (a.id) } ", OPD " b { (a.opd) } " · " a href=(PATH) { "Semua target / all targets" } }
        h2 { "Seharusnya / should apply" }
        table #should {
            tr { th { "Versi / version" } td { (e.version) } }
            tr { th { "SHA-256" } td { code { (e.sha256) } } }
            tr { th { "local_targets" } td { (if e.local_targets { "allow" } else { "deny" }) } }
        }
        @if !e.origin.is_empty() {
            table #origin {
                tr { th { "Target" } th { "Dari cakupan / from scope" } }
                @for (id, scope) in &e.origin { tr { td { (id) } td { code { (scope) } } } }
            }
        }
        div.scroll { pre #toml { @if e.targets_toml.is_empty() { "# tidak ada target terpusat / no central targets" } @else { (e.targets_toml) } } }
        h2 { "Dilaporkan agen / reported by the agent" }
        table #reported {
            tr { th { "Status" } td {
                @if status.is_none() { "belum melapor / not reported yet" }
                @else if !error.is_empty() { span.bad { "ditolak agen, versi sebelumnya tetap dipakai / refused by the agent, it keeps the previous version" } }
                @else if applied_sha == e.sha256 { span.ok { "diterapkan / applied" } }
                @else { "menunggu / pending" }
            } }
            tr { th { "Versi diterapkan / applied version" } td { (status.map_or("-".to_string(), |s| s.version.to_string())) } }
            tr { th { "SHA-256" } td { code { (if applied_sha.is_empty() { "-" } else { applied_sha }) } } }
            tr { th { "Galat / error" } td { (if error.is_empty() { "-" } else { error }) } }
            tr { th { "Dilaporkan / reported" } td { (local(status.map(|s| s.reported_at_ms), off)) } }
        }
        p { small { "CLI: " code { "pantau-collector target show-effective --agent " (a.id) } } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_definition_round_trips_through_the_form() {
        let stored: TomlTable = "address = \"10.0.0.1:443\"\ngroup = \"datacenter\"\nid = \"pd\"\n\
             interval = \"1m\"\nkind = \"http\"\nexpect_status = 200\n[bandwidth]\nstreams = 2\n"
            .parse()
            .unwrap();
        let f = definition_fields("opd:dinkes", &stored);
        assert_eq!((f.get("aksi"), f.get("scope")), ("set", "opd:dinkes"));
        assert_eq!((f.get("id"), f.get("interval")), ("pd", "1m"));
        assert!(f.get("lainnya").contains("bandwidth.streams = 2"), "{f:?}");
        let again = table(&f).unwrap();
        assert_eq!(again, stored);
    }

    #[test]
    fn a_bad_line_names_the_field_without_cli_flags() {
        let f = Fields(vec![
            ("id".into(), "pd".into()),
            ("lainnya".into(), "no-equals-sign".into()),
        ]);
        let e = table(&f).unwrap_err().to_string();
        assert!(
            e.starts_with("`lainnya`: no-equals-sign") && !e.contains("--set"),
            "{e}"
        );
    }
}
