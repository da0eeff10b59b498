//! `/admin/agen`: agents (status, version, last seen, peer address, the
//! central configuration version applied or its error), add an
//! agent, issue a one-time enrolment code (shown once), disable/enable,
//! revoke, rotate. `opd` staff see and manage only their OPDs' agents: the
//! others do not exist for them (filtered, not hidden).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;

use super::{
    Console, Done, Fields, Flash, csrf_field, local, respond, run, saved, unavailable, with_flash,
};
use crate::admin::agent::Switch;
use crate::admin::{self, ActionError};
use crate::store::registry::OpdState;
use crate::store::{Store, StoreError};
use crate::web::auth::Principal;

const PATH: &str = "/admin/agen";

/// GET: the list and the forms.
pub async fn page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
) -> Response {
    render(&c, &p, with_flash(q)).await
}

async fn render(c: &Console, p: &Principal, flash: Flash) -> Response {
    let data = c
        .store
        .with(|s| Ok((s.agents()?, s.credentials()?, s.opd_infos()?)))
        .await;
    let (mut agents, creds, mut opds) = match data {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    agents.retain(|a| p.sees(&a.opd));
    opds.retain(|o| p.sees(&o.id) && o.state == OpdState::Active);
    let creds: HashMap<_, _> = creds.into_iter().map(|c| (c.agent_id.clone(), c)).collect();
    let off = c.utc_offset_minutes;
    let body = html! {
        (flash.banner())
        h2 { "Tambah agen / add an agent" }
        (flash.for_form("add"))
        form method="post" action=(PATH) id="agent-add" {
            (csrf_field(p))
            label { "Id agen / agent id " input name="id" required; }
            label { "OPD "
                select name="opd" {
                    @for o in &opds { option value=(o.id) { (o.id) " — " (o.name) } }
                }
            }
            button { "Tambah dan buat kode pendaftaran / add and issue an enrolment code" }
        }
        h2 { "Daftar agen / agents" }
        (flash.for_form("change"))
        div.scroll { table #agents {
            tr { th { "Agen / agent" } th { "OPD" } th { "Status" } th { "Versi / version" }
                 th { "Terakhir terlihat / last seen" } th { "Alamat / peer" } th { "Host" }
                 th { "Token kedaluwarsa / token expires" } th { "Konfigurasi / config" } th { "Ubah / change" } }
            @for a in &agents {
                @let cr = creds.get(&a.id);
                tr data-agent=(a.id) {
                    td { (a.id) }
                    td { (a.opd) }
                    td { @match cr {
                        Some(c) if c.revoked => span.bad { "dicabut / revoked" },
                        Some(c) if c.disabled => span.bad { "nonaktif / disabled" },
                        _ => span.ok { "aktif / active" },
                    } }
                    td { (a.version.as_deref().unwrap_or("-")) }
                    td { (local(a.last_seen_ms.or(a.last_hello_ms), off)) }
                    td { (a.last_peer.as_deref().or(cr.and_then(|c| c.last_peer.as_deref())).unwrap_or("-")) }
                    td { (a.hostname.as_deref().unwrap_or("-")) }
                    td { (local(cr.and_then(|c| c.expires_at_ms), off)) }
                    td.config { (config_cell(a)) }
                    td {
                        @if !cr.is_some_and(|c| c.revoked) {
                            form.inline method="post" action={(PATH) "/" (a.id)} {
                                (csrf_field(p))
                                input type="hidden" name="aksi" value="code";
                                input name="expires" value="24h" size="5" aria-label="berlaku / valid for";
                                button { "Kode pendaftaran / enrolment code" }
                            }
                            " "
                            @for (aksi, label, show) in [
                                ("disable", "Nonaktifkan / disable", !cr.is_some_and(|c| c.disabled)),
                                ("enable", "Aktifkan / enable", cr.is_some_and(|c| c.disabled)),
                                ("rotate", "Token baru / rotate", true),
                                ("revoke", "Cabut / revoke", true),
                            ] {
                                @if show {
                                    form.inline method="post" action={(PATH) "/" (a.id)} {
                                        (csrf_field(p))
                                        input type="hidden" name="aksi" value=(aksi);
                                        button { (label) }
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
            }
        } }
        p { small { "CLI: " code { "pantau-collector agent add|enrol-code|list|disable|enable|revoke|rotate" } } }
    };
    respond(flash.status(), "Agen", p, "/admin", body)
}

/// The central configuration the agent reported: version, short hash, or
/// the error it refused the last update with; links to its effective one.
fn config_cell(a: &crate::store::api::Agent) -> maud::Markup {
    let error = a.config_error.as_deref().unwrap_or_default();
    html! {
        @match a.config_version {
            None => "-",
            Some(v) => { "v" (v) }
        }
        @if let Some(sha) = a.config_sha256.as_deref().filter(|s| !s.is_empty()) {
            " " small { code { (sha.chars().take(12).collect::<String>()) } }
        }
        @if !error.is_empty() {
            br; span.bad { "ditolak / refused: " (error) }
        }
        br; small { a href={"/admin/target/agen/" (a.id)} { "efektif / effective" } }
    }
}

/// The secret box of a fresh enrolment code, with the command to run.
fn code_flash(c: &Console, agent: &str, code: admin::agent::IssuedCode) -> Flash {
    let pin = match &c.hint.fingerprint {
        Some(fp) => format!(" --ca-fingerprint {fp}"),
        None => " --ca /etc/pantau/collector-ca.crt".into(),
    };
    Flash::Secret {
        title: format!(
            "Kode pendaftaran sekali pakai untuk `{agent}` (hanya ditampilkan sekali, berlaku sampai {}) / \
             one-time enrolment code for `{agent}` (shown once, valid until {})",
            local(Some(code.expires_at_ms), c.utc_offset_minutes),
            local(Some(code.expires_at_ms), c.utc_offset_minutes),
        ),
        id: "enrol-code",
        value: code.code,
        note: format!(
            "Di mesin agen, simpan kode di berkas lalu jalankan / on the agent machine, save the code in a file and run: \
             sudo pantau-agent enroll --collector {}{pin} --code-file /root/pantau.code",
            c.hint.url
        ),
    }
}

/// An agent `p` may manage: of one of its OPDs (others do not exist for it).
fn visible(s: &dyn Store, p: &Principal, agent: &str) -> Result<(), ActionError> {
    match s.agents()?.into_iter().find(|a| a.id == agent) {
        Some(a) if p.sees(&a.opd) => Ok(()),
        _ => Err(StoreError::UnknownAgent(agent.to_string()).into()),
    }
}

fn lifetime(v: &str) -> Result<std::time::Duration, ActionError> {
    let v = if v.trim().is_empty() { "24h" } else { v.trim() };
    humantime::parse_duration(v).map_err(|_| {
        ActionError::invalid(
            "expires",
            &format!("`{v}` bukan durasi (mis. 24h, 2days)"),
            &format!("`{v}` is not a duration (e.g. 24h, 2days)"),
        )
    })
}

/// POST /admin/agen: add an agent and issue its first enrolment code.
pub async fn add(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let (id, opd) = (f.get("id").to_string(), f.get("opd").to_string());
    let pp = p.clone();
    let agent = id.clone();
    let r = run(&c, &p, peer, &f, "add", move |s, who| {
        if !pp.sees(&opd) {
            return Err(StoreError::UnknownOpd(opd).into());
        }
        admin::agent::add(s, who, &id, &opd, false)?;
        admin::agent::enrol_code(s, who, &id, std::time::Duration::from_secs(24 * 3600))
    })
    .await;
    match r {
        Err(r) => r,
        Ok(Ok(code)) => render(&c, &p, code_flash(&c, &agent, code)).await,
        Ok(Err(flash)) => render(&c, &p, flash).await,
    }
}

/// What a change on one agent gave.
enum Changed {
    Done,
    Code(admin::agent::IssuedCode),
    Token(String),
}

/// POST /admin/agen/{id}: `aksi` = code | disable | enable | rotate | revoke.
pub async fn change(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let (aksi, expires) = (f.get("aksi").to_string(), f.get("expires").to_string());
    let (pp, agent) = (p.clone(), id.clone());
    let r = run(&c, &p, peer, &f, "change", move |s, who| {
        visible(s, &pp, &id)?;
        let switch = |w| admin::agent::credential(s, who, &id, w).map(|_| Changed::Done);
        match aksi.as_str() {
            "code" => admin::agent::enrol_code(s, who, &id, lifetime(&expires)?).map(Changed::Code),
            "disable" => switch(Switch::Disable),
            "enable" => switch(Switch::Enable),
            "revoke" => switch(Switch::Revoke),
            "rotate" => admin::agent::rotate(s, who, &id, None).map(|(t, _)| Changed::Token(t)),
            _ => Err(ActionError::invalid(
                "aksi",
                "pilih code, disable, enable, rotate atau revoke",
                "choose code, disable, enable, rotate or revoke",
            )),
        }
    })
    .await;
    match r {
        Err(r) => r,
        Ok(Ok(Changed::Done)) => saved(PATH),
        Ok(Ok(Changed::Code(code))) => render(&c, &p, code_flash(&c, &agent, code)).await,
        Ok(Ok(Changed::Token(token))) => {
            let flash = Flash::Secret {
                title: format!(
                    "Token baru agen `{agent}` (hanya ditampilkan sekali; token lama tidak berlaku lagi) / \
                     new token of agent `{agent}` (shown once; the old one no longer works)"
                ),
                id: "agent-token",
                value: token,
                note: "Simpan di berkas token agen / put it in the agent's token file.".into(),
            };
            render(&c, &p, flash).await
        }
        Ok(Err(flash)) => render(&c, &p, flash).await,
    }
}
