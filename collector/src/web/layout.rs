//! The frame every page shares: the document head and style sheet, one
//! navigation bar and the signed-in user. Pages are [`maud`] templates, so
//! every value is escaped unless a page says otherwise.
//!
//! The navigation shows the pages the caller's role may open: an entry is
//! listed when [`auth::ROUTES`](super::auth::ROUTES) gives its path a rule
//! that allows the role, so a page becomes reachable from every other page
//! by registering its route.

use maud::{DOCTYPE, Markup, html};

use super::auth::{self, Principal, Via};

/// The navigation entries: path, Indonesian label, English label.
pub const NAV: [(&str, &str, &str); 6] = [
    ("/", "Status", "status"),
    ("/laporan", "Laporan", "reports"),
    ("/laporan/gangguan", "Gangguan", "incidents"),
    ("/jalur", "Jalur jaringan", "network paths"),
    ("/laporan/register", "Register laporan", "report register"),
    ("/admin", "Administrasi", "administration"),
];

/// Shared style: readable on a wall screen and down to a phone's width.
pub const STYLE: &str = "\
*{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;margin:0;color:#1f2328;background:#f6f8fa;line-height:1.4}\
header{background:#0b3d62;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;align-items:center;gap:.4em 1.2em}\
header a{color:#fff;text-decoration:none;padding:.2em .4em;border-radius:4px}\
header a.on{background:#1f6aa5}header .brand{font-weight:bold;font-size:1.1em}\
header nav{display:flex;flex-wrap:wrap;gap:.2em .6em;flex:1}\
header form{margin:0}header small{color:#d8e6f2}\
main{padding:1em;max-width:1400px;margin:0 auto}\
h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}small{color:#57606a}\
.scroll{overflow-x:auto}\
table{border-collapse:collapse;margin-bottom:1.5em;background:#fff}\
td,th{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}\
.ok{color:#176c2b}.bad{color:#b00020;font-weight:bold}.unk{color:#6e7781}\
.err{background:#ffebe9;border:1px solid #cf222e;padding:.5em 1em}\
.note{background:#ddf4ff;border:1px solid #54aeff;padding:.5em 1em}\
form.inline{display:inline}label{display:block;margin:.4em 0}\
input,select,textarea,button{font:inherit}code{word-break:break-all}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,24em),1fr));gap:1em;margin:1em 0}\
.card{background:#fff;border:1px solid #d0d7de;border-left:6px solid #8c959f;border-radius:6px;padding:.6em .9em;min-width:0}\
.card[data-state=bad]{border-left-color:#cf222e}.card[data-state=ok]{border-left-color:#2da44e}\
.card h2{margin:0;font-size:1.1em;overflow-wrap:anywhere}.card h2 a{color:inherit}\
.card ul{margin:.3em 0;padding-left:1.1em}.card p{margin:.3em 0}\
.badge{display:inline-block;font-size:.8em;font-weight:bold;padding:.05em .5em;border-radius:1em;color:#fff;background:#6e7781}\
.badge.ok{background:#1a7f37;color:#fff}.badge.bad{background:#cf222e;color:#fff}\
.grp{margin:.5em 0 0}.grp-head{display:flex;flex-wrap:wrap;justify-content:space-between;gap:0 .6em;font-size:.9em}\
.hist{display:flex;gap:1px;height:1.6em;margin-top:.15em}.hist span{flex:1;min-width:0;background:#d0d7de;border-radius:1px}\
.hist .g{background:#2da44e}.hist .a{background:#d4a72c}.hist .r{background:#cf222e}\
.legend span{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin:0 .2em 0 .6em}\
.meter{display:inline-block;width:6em;height:.7em;background:#d0d7de;vertical-align:middle;margin-right:.3em}\
.meter span{display:block;height:100%}\
.chart svg{max-width:100%;height:auto}";

/// A whole page: `title` in the head and as the heading, `body` below it.
pub fn page(title: &str, who: Option<&Principal>, active: &str, body: Markup) -> Markup {
    head_and_body(title, who, active, None, body)
}

/// A page that reloads itself every `refresh_s` seconds (no script: a
/// `<meta http-equiv="refresh">`, allowed by the pages' CSP).
pub fn refreshing(
    title: &str,
    who: Option<&Principal>,
    active: &str,
    refresh_s: u32,
    body: Markup,
) -> Markup {
    head_and_body(title, who, active, Some(refresh_s), body)
}

fn head_and_body(
    title: &str,
    who: Option<&Principal>,
    active: &str,
    refresh_s: Option<u32>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(s) = refresh_s { meta http-equiv="refresh" content=(s); }
                title { (title) " — Pantau" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "Pantau" }
                    @if let Some(p) = who { (nav(p, active)) (user(p)) }
                }
                main { (body) }
            }
        }
    }
}

/// The entries of [`NAV`] the principal's role may open.
pub fn nav(p: &Principal, active: &str) -> Markup {
    html! {
        nav {
            @for (path, id, en) in NAV {
                @if auth::rule("GET", path).is_some_and(|a| a.allows(p.role)) {
                    a class=[(path == active).then_some("on")] href=(path) title=(en) { (id) }
                }
            }
        }
    }
}

/// Who is signed in, and the log-out button (sessions only: an API token
/// has nothing to log out of).
fn user(p: &Principal) -> Markup {
    html! {
        small { "Masuk sebagai / signed in as " b { (p.name) } " (" (p.role.as_str()) ")" }
        @if let Via::Session { csrf, .. } = &p.via {
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(csrf);
                button { "Keluar / log out" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::accounts::Role;

    fn principal(role: Role) -> Principal {
        Principal {
            name: "<siti>".into(),
            role,
            opds: vec![],
            via: Via::Token,
        }
    }

    #[test]
    fn navigation_follows_the_route_rules_and_escapes() {
        let viewer = page(
            "Status",
            Some(&principal(Role::Viewer)),
            "/",
            html! { p { "x" } },
        )
        .into_string();
        assert!(viewer.contains("href=\"/laporan\""), "{viewer}");
        assert!(
            !viewer.contains("href=\"/jalur\""),
            "viewer sees no data pages"
        );
        assert!(!viewer.contains("href=\"/laporan/register\""));
        assert!(viewer.contains("&lt;siti&gt;") && !viewer.contains("<siti>"));
        assert!(viewer.contains("class=\"on\" href=\"/\""), "{viewer}");
        let evaluator = page("x", Some(&principal(Role::Evaluator)), "/", html! {}).into_string();
        assert!(evaluator.contains("href=\"/laporan/register\""));
        assert!(evaluator.contains("href=\"/jalur\""));
        let anonymous = page("Masuk", None, "/login", html! {}).into_string();
        assert!(!anonymous.contains("<nav"), "no navigation before login");
    }
}
