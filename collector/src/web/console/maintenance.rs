//! `/admin/pemeliharaan` (maintenance windows: create, end early, delete
//! with a reason) and `/admin/gangguan` (incident notes). Admin only.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::{Markup, html};

use super::{
    Console, Done, Fields, Flash, csrf_field, local, parse_local, parse_local_end, respond, run,
    settle, unavailable, with_flash,
};
use crate::admin::maintenance::Note;
use crate::admin::{self, ActionError};
use crate::store::now_ms;
use crate::store::registry::OpdInfo;
use crate::store::report::{NewMaintenance, snapshot};
use crate::web::auth::Principal;

const PATH: &str = "/admin/pemeliharaan";
const NOTES: &str = "/admin/gangguan";
const GROUPS: [&str; 5] = ["internet", "intranet", "datacenter", "jip", "app"];

/// GET: windows and the form.
pub async fn page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
) -> Response {
    render(&c, &p, with_flash(q)).await
}

fn opd_select(opds: &[OpdInfo], all: bool) -> Markup {
    html! {
        select name="opd" {
            @if all { option value="" { "semua OPD / every OPD" } }
            @for o in opds { option value=(o.id) { (o.id) " — " (o.name) } }
        }
    }
}

fn group_select(all: bool) -> Markup {
    html! {
        select name="group" {
            @if all { option value="" { "semua grup / every group" } }
            @for g in GROUPS { option value=(g) { (g) } }
        }
    }
}

async fn render(c: &Console, p: &Principal, flash: Flash) -> Response {
    let data = c
        .store
        .with(|s| Ok((snapshot(s, |r| r.maintenance(None, None))?, s.opd_infos()?)))
        .await;
    let (windows, opds) = match data {
        Ok(d) => d,
        Err(e) => return unavailable(&e),
    };
    let (off, now) = (c.utc_offset_minutes, now_ms());
    let body = html! {
        (flash.banner())
        h2 { "Jadwalkan pemeliharaan / schedule maintenance" }
        p { small { "Waktu dalam zona collector (UTC" (format!("{:+}", off as f64 / 60.0)) "), mis. 2026-12-04 22:00. / Times in the collector's zone." } }
        (flash.for_form("create"))
        form method="post" action=(PATH) id="maintenance-add" {
            (csrf_field(p))
            label { "OPD " (opd_select(&opds, true)) }
            label { "Grup / group " (group_select(true)) }
            label { "Mulai / from " input name="from" required placeholder="2026-12-04 22:00"; }
            label { "Selesai / to " input name="to" required placeholder="2026-12-05 02:00"; }
            label { "Alasan / reason " input name="reason" required size="40"; }
            button { "Simpan / save" }
        }
        h2 { "Jendela pemeliharaan / maintenance windows" }
        (flash.for_form("change"))
        div.scroll { table #windows {
            tr { th { "Id" } th { "OPD" } th { "Grup / group" } th { "Mulai / from" } th { "Selesai / to" }
                 th { "Alasan / reason" } th { "Oleh / by" } th { "Ubah / change" } }
            @for w in windows.iter().rev() {
                tr data-window=(w.id) {
                    td { (w.id) }
                    td { (w.opd.as_deref().unwrap_or("*")) }
                    td { (w.group.as_deref().unwrap_or("*")) }
                    td { (local(Some(w.from_ms), off)) }
                    td { (local(Some(w.to_ms), off)) }
                    td { (w.reason) }
                    td { (w.recorded_by) }
                    td {
                        @if w.to_ms > now {
                            form.inline method="post" action={(PATH) "/" (w.id)} {
                                (csrf_field(p))
                                input type="hidden" name="aksi" value="end";
                                button { "Akhiri sekarang / end now" }
                            }
                            " "
                        }
                        form.inline method="post" action={(PATH) "/" (w.id)} {
                            (csrf_field(p))
                            input type="hidden" name="aksi" value="delete";
                            input name="reason" placeholder="alasan hapus / why" aria-label="alasan / reason";
                            button { "Hapus / delete" }
                        }
                    }
                }
            }
        } }
        p { small { "CLI: " code { "pantau-collector maintenance | maintenance-list | maintenance-end ID | maintenance-delete ID --reason TEXT" } } }
    };
    respond(flash.status(), "Pemeliharaan", p, "/admin", body)
}

fn optional(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// POST /admin/pemeliharaan: record a window.
pub async fn create(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let off = c.utc_offset_minutes;
    let by = p.name.clone();
    let g = f.clone();
    let r = run(&c, &p, peer, &f, "create", move |s, who| {
        let w = NewMaintenance {
            opd: optional(g.get("opd")),
            group: optional(g.get("group")),
            from_ms: parse_local("from", g.get("from"), off)?,
            to_ms: parse_local_end("to", g.get("to"), off)?,
            reason: g.get("reason").to_string(),
            by,
            at_ms: now_ms(),
        };
        admin::maintenance::create(s, who, &w)
    })
    .await;
    settle(r, PATH, |flash| render(&c, &p, flash)).await
}

/// POST /admin/pemeliharaan/{id}: `aksi` = end | delete (with `reason`).
pub async fn change(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let (aksi, reason) = (f.get("aksi").to_string(), f.get("reason").to_string());
    let r = run(&c, &p, peer, &f, "change", move |s, who| {
        let id: i64 = id.parse().map_err(|_| {
            ActionError::invalid("id", "bukan nomor jendela", "not a window number")
        })?;
        match aksi.as_str() {
            "end" => admin::maintenance::end(s, who, id),
            "delete" => admin::maintenance::delete(s, who, id, &reason),
            _ => Err(ActionError::invalid(
                "aksi",
                "pilih end atau delete",
                "choose end or delete",
            )),
        }
    })
    .await;
    settle(r, PATH, |flash| render(&c, &p, flash)).await
}

/// GET /admin/gangguan: the incident-note form.
pub async fn notes_page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
) -> Response {
    render_notes(&c, &p, with_flash(q)).await
}

async fn render_notes(c: &Console, p: &Principal, flash: Flash) -> Response {
    let opds = match c.store.with(|s| s.opd_infos()).await {
        Ok(o) => o,
        Err(e) => return unavailable(&e),
    };
    let body = html! {
        (flash.banner())
        p { "Gangguan dan waktu mulainya ada di " a href="/laporan/gangguan" { "halaman gangguan" }
            " / incidents and their starts are listed on the incidents page." }
        h2 { "Catatan gangguan / incident note" }
        (flash.for_form("note"))
        form method="post" action=(NOTES) id="incident-note" {
            (csrf_field(p))
            label { "OPD " (opd_select(&opds, false)) }
            label { "Grup / group " (group_select(false)) }
            label { "Mulai gangguan / incident start " input name="start" required placeholder="2026-12-04 22:00"; }
            label { "Catatan / note " textarea name="note" required rows="3" cols="50" {} }
            label { "Tiket / ticket " input name="ticket"; }
            button { "Simpan / save" }
        }
        p { small { "CLI: " code { "pantau-collector incident-note --opd OPD --group GRUP --start WAKTU --note TEKS --by NAMA" } } }
    };
    respond(flash.status(), "Catatan gangguan", p, "/admin", body)
}

/// POST /admin/gangguan: write (or replace) an incident's note.
pub async fn note(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let off = c.utc_offset_minutes;
    let by = p.name.clone();
    let g = f.clone();
    let r = run(&c, &p, peer, &f, "note", move |s, who| {
        let n = Note {
            opd: g.get("opd").to_string(),
            group: g.get("group").to_string(),
            start_ms: parse_local("start", g.get("start"), off)?,
            note: g.get("note").to_string(),
            ticket: g.get("ticket").to_string(),
            by,
        };
        admin::maintenance::incident_note(s, who, &n)
    })
    .await;
    settle(r, NOTES, |flash| render_notes(&c, &p, flash)).await
}
