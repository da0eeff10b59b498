//! The status page `/`: one card per OPD for a wall screen, problems first
//! (a failing target or a silent agent, then unknown, then OK). Each card
//! shows its agents online with relative "last seen" times and, per report
//! group, the current state and a 90-day history bar from the stored day
//! rollups. Server-rendered with [`maud`] in the shared [`layout`] frame; it
//! reloads itself (no script: the pages' CSP forbids them).
//!
//! The cards are built by a pure function ([`cards`]) from what the store
//! returns, so the ordering and the states are tested without a server.

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::auth::Principal;
use super::layout;
use crate::config::Display;
use crate::report::Lang;
use crate::report::render::{group_label, num};
use crate::report::rules::GROUPS;
use crate::report::time::DAY_MS;
use crate::store::api;
use crate::store::report::GroupDayRow;

/// Days in a history bar.
pub const HISTORY_DAYS: usize = 90;
/// An agent whose latest result is older than this is silent.
pub const SILENT_AFTER_MS: i64 = 5 * 60_000;
/// The status page reloads itself this often (seconds).
pub const REFRESH_S: u32 = 60;

/// Format a time in the configured zone, e.g. "28 November 2026 17.45.00 WITA".
pub fn local_time(d: &Display, ms: i64) -> String {
    use crate::report::render::BULAN;
    use chrono::{Datelike, Timelike};
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms + d.utc_offset_minutes * 60_000)
    else {
        return "-".into();
    };
    format!(
        "{} {} {} {:02}.{:02}.{:02} {}",
        t.day(),
        BULAN[t.month0() as usize],
        t.year(),
        t.hour(),
        t.minute(),
        t.second(),
        d.zone_name
    )
}

/// UTC ms of the local midnight starting the day of `ms`.
pub fn day_start(ms: i64, offset_min: i64) -> i64 {
    let off = offset_min * 60_000;
    (ms + off).div_euclid(DAY_MS) * DAY_MS - off
}

/// How long ago `then` was, at `now`: Indonesian and English.
pub fn ago(now: i64, then: i64) -> (String, String) {
    let s = (now - then).max(0) / 1000;
    match s {
        0..60 => ("baru saja".into(), "just now".into()),
        60..3_600 => (
            format!("{} menit lalu", s / 60),
            format!("{} min ago", s / 60),
        ),
        3_600..172_800 => (
            format!("{} jam lalu", s / 3600),
            format!("{} h ago", s / 3600),
        ),
        _ => (
            format!("{} hari lalu", s / 86_400),
            format!("{} days ago", s / 86_400),
        ),
    }
}

/// State of an OPD, a group or a target; the order is the cards' order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// A failing target or a silent agent.
    Bad,
    /// No agent, or nothing measured recently.
    Unknown,
    /// Every recent result OK.
    Ok,
}

impl State {
    /// CSS class and `data-state` value.
    pub fn class(self) -> &'static str {
        match self {
            State::Bad => "bad",
            State::Unknown => "unk",
            State::Ok => "ok",
        }
    }

    fn label(self) -> &'static str {
        match self {
            State::Bad => "GANGGUAN / problem",
            State::Unknown => "TIDAK DIKETAHUI / unknown",
            State::Ok => "NORMAL",
        }
    }
}

/// What the page is built from, as the store returns it (already filtered
/// to the OPDs the caller may see).
#[derive(Debug, Default)]
pub struct Input {
    /// OPDs.
    pub opds: Vec<api::Opd>,
    /// Agents.
    pub agents: Vec<api::Agent>,
    /// Targets with their latest result.
    pub targets: Vec<api::Target>,
    /// Day rollups per OPD and group over the history window.
    pub days: Vec<GroupDayRow>,
}

/// An agent on a card.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLine {
    /// Id.
    pub id: String,
    /// Latest result received, ms.
    pub last_seen_ms: Option<i64>,
    /// Reported within [`SILENT_AFTER_MS`].
    pub online: bool,
}

/// A report group on a card.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLine {
    /// Group name (`intranet`, ...).
    pub grp: String,
    /// State from the latest results.
    pub now: State,
    /// Availability per day (percent), oldest first, [`HISTORY_DAYS`] long.
    pub days: Vec<Option<f64>>,
    /// Availability over the whole window.
    pub window_pct: Option<f64>,
}

/// One OPD's card.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// OPD id.
    pub id: String,
    /// OPD name.
    pub name: String,
    /// Overall state.
    pub state: State,
    /// Agents, by id.
    pub agents: Vec<AgentLine>,
    /// Groups in report order.
    pub groups: Vec<GroupLine>,
    /// Targets failing now: (agent, target label, outcome).
    pub failing: Vec<(String, String, String)>,
}

impl Card {
    /// Agents reporting now.
    pub fn online(&self) -> usize {
        self.agents.iter().filter(|a| a.online).count()
    }

    /// Sort key: failing targets, then only silent agents, then unknown,
    /// then OK; by name within each.
    fn rank(&self) -> u8 {
        match self.state {
            State::Bad if !self.failing.is_empty() => 0,
            State::Bad => 1,
            State::Unknown => 2,
            State::Ok => 3,
        }
    }
}

/// Availability (percent) of up, degraded and down minutes.
fn availability(up: i64, down: i64) -> Option<f64> {
    (up + down > 0).then(|| 100.0 * up as f64 / (up + down) as f64)
}

/// The cards, problems first. `first_day_ms` is the local midnight starting
/// the oldest day of the history bars.
pub fn cards(input: &Input, now: i64, first_day_ms: i64) -> Vec<Card> {
    let online = |seen: Option<i64>| seen.is_some_and(|t| now - t < SILENT_AFTER_MS);
    let agent_online: BTreeMap<&str, bool> = input
        .agents
        .iter()
        .map(|a| (a.id.as_str(), online(a.last_seen_ms)))
        .collect();
    // (opd, group) -> per-day (up, down).
    let mut hist: BTreeMap<(&str, &str), Vec<(i64, i64)>> = BTreeMap::new();
    for d in &input.days {
        let i = (d.day_ms - first_day_ms).div_euclid(DAY_MS);
        let Ok(i) = usize::try_from(i) else { continue };
        if i >= HISTORY_DAYS {
            continue;
        }
        let v = hist
            .entry((d.opd.as_str(), d.grp.as_str()))
            .or_insert_with(|| vec![(0, 0); HISTORY_DAYS]);
        v[i].0 += d.counts[0] + d.counts[1];
        v[i].1 += d.counts[2];
    }
    let mut out: Vec<Card> = input
        .opds
        .iter()
        .map(|o| {
            let agents: Vec<AgentLine> = input
                .agents
                .iter()
                .filter(|a| a.opd == o.id)
                .map(|a| AgentLine {
                    id: a.id.clone(),
                    last_seen_ms: a.last_seen_ms,
                    online: online(a.last_seen_ms),
                })
                .collect();
            let targets: Vec<&api::Target> =
                input.targets.iter().filter(|t| t.opd == o.id).collect();
            let target_state = |t: &api::Target| match t.outcome.as_deref() {
                _ if !agent_online.get(t.agent.as_str()).copied().unwrap_or(false) => {
                    State::Unknown
                }
                Some("ok") => State::Ok,
                Some(_) => State::Bad,
                None => State::Unknown,
            };
            let groups: Vec<GroupLine> = GROUPS
                .iter()
                .filter(|g| {
                    targets.iter().any(|t| t.group == **g)
                        || hist.contains_key(&(o.id.as_str(), **g))
                })
                .map(|g| {
                    let states = targets
                        .iter()
                        .filter(|t| t.group == *g)
                        .map(|t| target_state(t));
                    let now = states.min().unwrap_or(State::Unknown);
                    let days = hist.get(&(o.id.as_str(), *g));
                    let (up, down) = days.map_or((0, 0), |v| {
                        v.iter().fold((0, 0), |(u, d), (a, b)| (u + a, d + b))
                    });
                    GroupLine {
                        grp: g.to_string(),
                        now,
                        days: (0..HISTORY_DAYS)
                            .map(|i| days.and_then(|v| availability(v[i].0, v[i].1)))
                            .collect(),
                        window_pct: availability(up, down),
                    }
                })
                .collect();
            let failing: Vec<(String, String, String)> = targets
                .iter()
                .filter(|t| target_state(t) == State::Bad)
                .map(|t| {
                    let label = if t.label.is_empty() { &t.id } else { &t.label };
                    (
                        t.agent.clone(),
                        label.clone(),
                        t.outcome.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let silent = agents.iter().any(|a| a.last_seen_ms.is_some() && !a.online);
            let state = if !failing.is_empty() || silent {
                State::Bad
            } else if groups.iter().any(|g| g.now == State::Ok) {
                State::Ok
            } else {
                State::Unknown
            };
            Card {
                id: o.id.clone(),
                name: o.name.clone(),
                state,
                agents,
                groups,
                failing,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.rank(), a.name.to_lowercase(), &a.id).cmp(&(b.rank(), b.name.to_lowercase(), &b.id))
    });
    out
}

/// Colour class of a day's availability against the group's SLA.
fn day_class(pct: Option<f64>, sla: f64) -> &'static str {
    match pct {
        None => "",
        Some(p) if p >= sla => "g",
        Some(p) if p >= 95.0 => "a",
        Some(_) => "r",
    }
}

/// What the page needs besides the data.
#[derive(Debug)]
pub struct View<'a> {
    /// Zone and agency.
    pub display: &'a Display,
    /// SLA per group (percent), in [`GROUPS`] order.
    pub sla_pct: [f64; 5],
    /// Render time, ms.
    pub now_ms: i64,
    /// Local midnight starting the oldest history day.
    pub first_day_ms: i64,
}

impl View<'_> {
    fn sla(&self, grp: &str) -> f64 {
        GROUPS
            .iter()
            .position(|g| *g == grp)
            .map_or(99.0, |i| self.sla_pct[i])
    }

    fn date(&self, ms: i64) -> String {
        crate::report::render::date(ms, self.display.utc_offset_minutes, Lang::Id)
    }
}

/// The status page.
pub fn status(v: &View<'_>, who: &Principal, cards: &[Card]) -> Markup {
    let count = |s: State| cards.iter().filter(|c| c.state == s).count();
    let body = html! {
        h1 { "Status Jaringan Intra " small { "intranet status" } }
        p {
            (v.display.agency) " · diperbarui / updated "
            (local_time(v.display, v.now_ms))
            " · " small { "dimuat ulang tiap / reloads every " (REFRESH_S) " s" }
        }
        p.summary {
            b { (cards.len()) " OPD" } ": "
            span.bad { (count(State::Bad)) " bermasalah / problems" } " · "
            span.unk { (count(State::Unknown)) " tidak diketahui / unknown" } " · "
            span.ok { (count(State::Ok)) " normal" }
        }
        p.legend {
            small {
                "Riwayat " (HISTORY_DAYS) " hari / " (HISTORY_DAYS) "-day history:"
                span style="background:#2da44e" {} "≥ SLA"
                span style="background:#d4a72c" {} "≥ 95 %"
                span style="background:#cf222e" {} "< 95 %"
                span style="background:#d0d7de" {} "tanpa data / no data"
            }
        }
        @if cards.is_empty() {
            p { "Belum ada OPD. " small { "No OPD yet." } }
        }
        div.cards { @for c in cards { (card(v, c)) } }
        (failing_table(cards))
    };
    layout::refreshing("Status", Some(who), "/", REFRESH_S, body)
}

fn card(v: &View<'_>, c: &Card) -> Markup {
    let state = match c.state {
        State::Unknown => "unknown",
        s => s.class(),
    };
    html! {
        article.card data-opd=(c.id) data-state=(state) {
            h2 { a href={ "/laporan/opd/" (c.id) } { (c.name) } }
            p {
                span class={ "badge " (c.state.class()) } { (c.state.label()) }
                " " small { "OPD " code { (c.id) } }
            }
            p {
                "Agen online / agents online: " b { (c.online()) "/" (c.agents.len()) }
            }
            @if !c.agents.is_empty() {
                ul.agents {
                    @for a in &c.agents {
                        li {
                            (a.id) " — "
                            @match a.last_seen_ms {
                                Some(t) => {
                                    @let (id, en) = ago(v.now_ms, t);
                                    span data-seen class=(if a.online { "ok" } else { "bad" })
                                        title=(local_time(v.display, t)) { (id) " / " (en) }
                                }
                                None => span.unk { "belum ada data / no data yet" },
                            }
                        }
                    }
                }
            }
            @for g in &c.groups { (group(v, g)) }
            @if c.groups.is_empty() {
                p.unk { "Belum ada target. " small { "No targets yet." } }
            }
        }
    }
}

fn group(v: &View<'_>, g: &GroupLine) -> Markup {
    let sla = v.sla(&g.grp);
    html! {
        div.grp {
            div.grp-head {
                b { (group_label(&g.grp, Lang::Id)) }
                span class=(g.now.class()) { (g.now.label()) }
                small {
                    @match g.window_pct {
                        Some(p) => { (num(p, 2, Lang::Id)) " % · " (HISTORY_DAYS) " hari / days" }
                        None => "tanpa data / no data",
                    }
                }
            }
            div.hist role="img" aria-label={ "Riwayat " (HISTORY_DAYS) " hari / " (HISTORY_DAYS) "-day history" } {
                @for (i, d) in g.days.iter().enumerate() {
                    @let day = v.date(v.first_day_ms + i as i64 * DAY_MS + DAY_MS / 2);
                    span class=[(!day_class(*d, sla).is_empty()).then(|| day_class(*d, sla))]
                        title=(match d {
                            Some(p) => format!("{day}: {} %", num(*p, 2, Lang::Id)),
                            None => format!("{day}: tanpa data / no data"),
                        }) {}
                }
            }
        }
    }
}

/// Every target failing now, for a closer look below the cards.
fn failing_table(cards: &[Card]) -> Markup {
    let rows: Vec<(&Card, &(String, String, String))> = cards
        .iter()
        .flat_map(|c| c.failing.iter().map(move |f| (c, f)))
        .collect();
    html! {
        @if !rows.is_empty() {
            h2 { "Target bermasalah " small { "failing targets" } }
            div.scroll {
                table {
                    tr { th { "OPD" } th { "Agen / agent" } th { "Target" } th { "Hasil / outcome" } }
                    @for (c, (agent, target, outcome)) in rows {
                        tr {
                            td { a href={ "/laporan/opd/" (c.id) } { (c.name) } }
                            td { (agent) } td { (target) } td.bad { "GANGGUAN (" (outcome) ")" }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_859_100_000;

    fn opd(id: &str, name: &str) -> api::Opd {
        api::Opd {
            id: id.into(),
            name: name.into(),
            agents: 0,
            last_seen_ms: None,
        }
    }

    fn agent(id: &str, opd: &str, seen: Option<i64>) -> api::Agent {
        api::Agent {
            id: id.into(),
            opd: opd.into(),
            version: None,
            hostname: None,
            last_hello_ms: None,
            last_seen_ms: seen,
            clock_offset_ms: None,
            conflicts: 0,
            last_peer: None,
            config_version: None,
            config_sha256: None,
            config_error: None,
        }
    }

    fn target(agent: &str, opd: &str, grp: &str, outcome: Option<&str>) -> api::Target {
        api::Target {
            agent: agent.into(),
            opd: opd.into(),
            id: format!("{grp}-t"),
            group: grp.into(),
            kind: "tcp".into(),
            address: "x".into(),
            label: String::new(),
            observed_at_ms: Some(NOW),
            outcome: outcome.map(Into::into),
            value_ms: None,
            loss: None,
        }
    }

    #[test]
    fn indonesian_time_relative_times_and_days() {
        let d = Display {
            agency: "X".into(),
            zone_name: "WITA".into(),
            utc_offset_minutes: 480,
        };
        // 2026-11-28T09:45:00Z is 17.45 WITA.
        assert_eq!(local_time(&d, NOW), "28 November 2026 17.45.00 WITA");
        assert_eq!(ago(NOW, NOW - 20_000).0, "baru saja");
        assert_eq!(
            ago(NOW, NOW - 3 * 60_000 - 5_000),
            ("3 menit lalu".into(), "3 min ago".into())
        );
        assert_eq!(ago(NOW, NOW - 3 * 3_600_000).1, "3 h ago");
        assert_eq!(ago(NOW, NOW - 5 * 86_400_000).0, "5 hari lalu");
        // Local midnight of 28 November (WITA) is 27 November 16:00 UTC.
        let m = day_start(NOW, 480);
        assert_eq!(m, NOW - (17 * 60 + 45) * 60_000);
        assert_eq!(day_start(m, 480), m);
    }

    #[test]
    fn problems_first_then_unknown_then_ok() {
        let first = day_start(NOW, 480) - (HISTORY_DAYS as i64 - 1) * DAY_MS;
        let input = Input {
            opds: vec![
                opd("a-ok", "A ok"),
                opd("b-silent", "B silent"),
                opd("c-none", "C none"),
                opd("d-fail", "D fail"),
            ],
            agents: vec![
                agent("a1", "a-ok", Some(NOW - 10_000)),
                agent("b1", "b-silent", Some(NOW - 10_000)),
                agent("b2", "b-silent", Some(NOW - 3 * 3_600_000)),
                agent("d1", "d-fail", Some(NOW - 10_000)),
            ],
            targets: vec![
                target("a1", "a-ok", "intranet", Some("ok")),
                target("b1", "b-silent", "intranet", Some("ok")),
                target("d1", "d-fail", "intranet", Some("ok")),
                target("d1", "d-fail", "internet", Some("timeout")),
            ],
            days: vec![GroupDayRow {
                opd: "a-ok".into(),
                grp: "datacenter".into(),
                day_ms: first + 89 * DAY_MS,
                counts: [90, 0, 10, 0, 0],
                business: [0; 4],
                tally: Default::default(),
            }],
        };
        let c = cards(&input, NOW, first);
        let order: Vec<(&str, State)> = c.iter().map(|c| (c.id.as_str(), c.state)).collect();
        assert_eq!(
            order,
            [
                ("d-fail", State::Bad),
                ("b-silent", State::Bad),
                ("c-none", State::Unknown),
                ("a-ok", State::Ok)
            ]
        );
        assert_eq!(c[0].failing.len(), 1);
        assert_eq!(c[1].online(), 1);
        let a = &c[3];
        let groups: Vec<&str> = a.groups.iter().map(|g| g.grp.as_str()).collect();
        assert_eq!(groups, ["intranet", "datacenter"], "report order");
        let dc = &a.groups[1];
        assert_eq!(dc.days.len(), HISTORY_DAYS);
        assert_eq!(dc.days[89], Some(90.0));
        assert!(dc.days[..89].iter().all(Option::is_none));
        assert_eq!(dc.now, State::Unknown, "no target: nothing measured now");
    }

    #[test]
    fn status_page_escapes_and_refreshes() {
        let d = Display::default();
        let first = day_start(NOW, 480) - (HISTORY_DAYS as i64 - 1) * DAY_MS;
        let input = Input {
            opds: vec![opd("x", "<script>alert(1)</script>")],
            ..Input::default()
        };
        let v = View {
            display: &d,
            sla_pct: [99.0; 5],
            now_ms: NOW,
            first_day_ms: first,
        };
        let who = Principal {
            name: "siti".into(),
            role: crate::store::accounts::Role::Viewer,
            opds: vec![],
            via: super::super::auth::Via::Token,
        };
        let html = status(&v, &who, &cards(&input, NOW, first)).into_string();
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"60\">"));
        assert!(html.contains("data-state=\"unknown\""));
    }
}
