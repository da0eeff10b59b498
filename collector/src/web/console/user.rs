//! `/admin/pengguna`: web users and roles (add, role change, disable/enable).
//! Admin only. A generated password is shown once in the answer.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use maud::html;

use super::{
    Console, Done, Fields, Flash, csrf_field, respond, run, saved, settle, unavailable, with_flash,
};
use crate::admin::{self, ActionError};
use crate::store::accounts::Role;
use crate::web::auth::Principal;

const PATH: &str = "/admin/pengguna";
const ROLES: [(Role, &str); 4] = [
    (Role::Admin, "admin — semua / everything"),
    (Role::Opd, "opd — OPD sendiri / own OPDs"),
    (
        Role::Evaluator,
        "evaluator — baca semua, laporan / read all, reports",
    ),
    (Role::Viewer, "viewer — halaman status / status pages"),
];

/// GET: users and the forms.
pub async fn page(
    State(c): State<Console>,
    Extension(p): Extension<Principal>,
    q: Query<Done>,
) -> Response {
    render(&c, &p, with_flash(q)).await
}

async fn render(c: &Console, p: &Principal, flash: Flash) -> Response {
    let users = match c.store.with(|s| s.accounts()).await {
        Ok(u) => u,
        Err(e) => return unavailable(&e),
    };
    let role_select = |current: Option<Role>| {
        html! {
            select name="role" {
                @for (r, label) in ROLES {
                    option value=(r.as_str()) selected[current == Some(r)] { (label) }
                }
            }
        }
    };
    let body = html! {
        (flash.banner())
        h2 { "Tambah pengguna / add a user" }
        (flash.for_form("add"))
        form method="post" action=(PATH) id="user-add" {
            (csrf_field(p))
            label { "Nama login / login name " input name="name" required; }
            label { "Peran / role " (role_select(None)) }
            label { "OPD (peran opd; pisahkan dengan koma) / OPDs (opd role; comma-separated) " input name="opd"; }
            label { "Kata sandi (kosong: dibuatkan, tampil sekali) / password (empty: generated, shown once) "
                input name="password" type="password" autocomplete="new-password"; }
            button { "Tambah / add" }
        }
        h2 { "Pengguna / users" }
        (flash.for_form("change"))
        div.scroll { table #users {
            tr { th { "Nama / name" } th { "Peran / role" } th { "OPD" } th { "Status" } th { "Ubah / change" } }
            @for u in &users {
                tr data-user=(u.name) {
                    td { (u.name) }
                    td { (u.role.as_str()) }
                    td { (u.opds.join(", ")) }
                    td { @if u.disabled { span.bad { "nonaktif / disabled" } } @else { "aktif / active" } }
                    td {
                        form.inline method="post" action={(PATH) "/" (u.name)} {
                            (csrf_field(p))
                            input type="hidden" name="aksi" value="role";
                            (role_select(Some(u.role)))
                            input name="opd" value=(u.opds.join(",")) size="12" aria-label="OPD";
                            button { "Ubah peran / change role" }
                        }
                        " "
                        @if u.name != p.name {
                            form.inline method="post" action={(PATH) "/" (u.name)} {
                                (csrf_field(p))
                                @if u.disabled {
                                    input type="hidden" name="aksi" value="enable";
                                    button { "Aktifkan / enable" }
                                } @else {
                                    input type="hidden" name="aksi" value="disable";
                                    button { "Nonaktifkan / disable" }
                                }
                            }
                        }
                    }
                }
            }
        } }
        p { small { "CLI: " code { "pantau-collector user add|list|role|passwd|disable|enable|remove" } } }
    };
    respond(flash.status(), "Pengguna", p, "/admin", body)
}

/// POST /admin/pengguna: add a user.
pub async fn add(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let g = f.clone();
    let r = run(&c, &p, peer, &f, "add", move |s, who| {
        let pw = g.get("password");
        let pw = (!pw.is_empty()).then_some(pw);
        let name = g.get("name").trim().to_string();
        admin::user::add(s, who, &name, g.get("role"), &g.list("opd"), pw).map(|u| (name, u))
    })
    .await;
    match r {
        Err(r) => r,
        Ok(Ok((name, u))) => match u.generated_password {
            None => saved(PATH),
            Some(pw) => {
                let flash = Flash::Secret {
                    title: format!(
                        "Kata sandi `{name}` (hanya ditampilkan sekali) / password of `{name}` (shown once)"
                    ),
                    id: "user-password",
                    value: pw,
                    note: "Berikan lewat saluran aman / hand it over on a safe channel.".into(),
                };
                render(&c, &p, flash).await
            }
        },
        Ok(Err(flash)) => render(&c, &p, flash).await,
    }
}

/// POST /admin/pengguna/{name}: `aksi` = role (with `role`, `opd`) | disable | enable.
pub async fn change(
    State(c): State<Console>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    f: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let f = Fields::from(f);
    let g = f.clone();
    let me = p.name.clone();
    let r = run(&c, &p, peer, &f, "change", move |s, who| {
        match g.get("aksi") {
            "role" => admin::user::set_role(s, who, &name, g.get("role"), &g.list("opd")),
            "disable" if name == me => Err(ActionError::invalid(
                "aksi",
                "tidak dapat menonaktifkan diri sendiri",
                "you cannot disable yourself",
            )),
            "disable" => admin::user::set_disabled(s, who, &name, true),
            "enable" => admin::user::set_disabled(s, who, &name, false),
            _ => Err(ActionError::invalid(
                "aksi",
                "pilih role, disable atau enable",
                "choose role, disable or enable",
            )),
        }
    })
    .await;
    settle(r, PATH, |flash| render(&c, &p, flash)).await
}
