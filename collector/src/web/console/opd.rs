//! `/admin/opd`: OPDs (add, rename, contracted bandwidth, disable/enable,
//! remove with history kept). Admin only.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;

use super::{
    Console, Done, Fields, Flash, csrf_field, respond, run, settle, unavailable, with_flash,
};
use crate::admin::{self, ActionError};
use crate::store::registry::OpdState;
use crate::web::auth::Principal;

const PATH: &str = "/admin/opd";

/// GET: the list and the forms.
pub async fn page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
) -> Response {
    render(&c, &p, with_flash(q)).await
}

async fn render(c: &Console, p: &Principal, flash: Flash) -> Response {
    let opds = match c.store.with(|s| s.opd_infos()).await {
        Ok(o) => o,
        Err(e) => return unavailable(&e),
    };
    let state = |s: OpdState| match s {
        OpdState::Active => "aktif / active",
        OpdState::Disabled => "nonaktif / disabled",
        OpdState::Removed => "dihapus / removed",
    };
    let body = html! {
        (flash.banner())
        h2 { "Tambah OPD / add an OPD" }
        (flash.for_form("add"))
        form method="post" action=(PATH) id="opd-add" {
            (csrf_field(p))
            label { "Id (huruf, angka, -, _, .) / id " input name="id" required; }
            label { "Nama lengkap / full name " input name="name" required size="40"; }
            button { "Tambah / add" }
        }
        h2 { "Daftar OPD / OPDs" }
        (flash.for_form("change"))
        div.scroll { table #opds {
            tr { th { "Id" } th { "Nama / name" } th { "Status" } th { "Agen / agents" }
                 th { "Kontrak / contract (Mbit/s)" } th { "Ubah / change" } }
            @for o in &opds {
                tr data-opd=(o.id) {
                    td { (o.id) }
                    td { (o.name) }
                    td { (state(o.state)) }
                    td { (o.agents) }
                    td { @if let Some(m) = o.contracted_mbps { (m) } @else { "-" } }
                    td {
                        form.inline method="post" action={(PATH) "/" (o.id)} {
                            (csrf_field(p))
                            input type="hidden" name="aksi" value="rename";
                            input name="name" value=(o.name) aria-label="nama baru / new name";
                            button { "Ganti nama / rename" }
                        }
                        " "
                        form.inline method="post" action={(PATH) "/" (o.id)} {
                            (csrf_field(p))
                            input type="hidden" name="aksi" value="contract";
                            input name="mbps" size="6" value=[o.contracted_mbps] aria-label="Mbit/s";
                            button { "Kontrak / contract" }
                        }
                        " "
                        @for (aksi, label, show) in [
                            ("disable", "Nonaktifkan / disable", o.state == OpdState::Active),
                            ("enable", "Aktifkan / enable", o.state != OpdState::Active),
                            ("remove", "Hapus (riwayat tetap) / remove (history kept)", o.state != OpdState::Removed),
                        ] {
                            @if show {
                                form.inline method="post" action={(PATH) "/" (o.id)} {
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
        } }
        p { small { "CLI: " code { "pantau-collector opd add|rename|contract|disable|enable|remove|list --all" } } }
    };
    respond(flash.status(), "OPD", p, "/admin", body)
}

/// POST /admin/opd: add.
pub async fn add(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let (id, name) = (f.get("id").to_string(), f.get("name").to_string());
    let r = run(&c, &p, peer, &f, "add", move |s, who| {
        admin::opd::add(s, who, &id, &name)
    })
    .await;
    settle(r, PATH, |flash| render(&c, &p, flash)).await
}

/// POST /admin/opd/{id}: `aksi` = rename | contract | disable | enable | remove.
pub async fn change(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let (aksi, name, mbps) = (
        f.get("aksi").to_string(),
        f.get("name").to_string(),
        f.get("mbps").trim().to_string(),
    );
    let r = run(&c, &p, peer, &f, "change", move |s, who| {
        match aksi.as_str() {
            "rename" => admin::opd::rename(s, who, &id, &name),
            "contract" => {
                let mbps = if mbps.is_empty() {
                    Ok(0.0)
                } else {
                    mbps.parse::<f64>()
                };
                let mbps =
                    mbps.map_err(|_| ActionError::invalid("mbps", "bukan angka", "not a number"))?;
                admin::opd::contract(s, who, &id, mbps)
            }
            "disable" => admin::opd::set_state(s, who, &id, OpdState::Disabled),
            "enable" => admin::opd::set_state(s, who, &id, OpdState::Active),
            "remove" => admin::opd::set_state(s, who, &id, OpdState::Removed),
            _ => Err(ActionError::invalid(
                "aksi",
                "pilih rename, contract, disable, enable atau remove",
                "choose rename, contract, disable, enable or remove",
            )),
        }
    })
    .await;
    settle(r, PATH, |flash| render(&c, &p, flash)).await
}
