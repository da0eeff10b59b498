//! Incidents (gangguan): runs of consecutive down minutes of a group, with a
//! probable-cause hint read from the other groups during the same minutes.

use std::collections::BTreeMap;

use serde::Serialize;

use super::rules::MinuteState;

/// A probable cause, from the evidence only; an admin confirms it in a note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Intranet and internet both down: the OPD's local network or power.
    LocalNetwork,
    /// Internet down while the intranet answered: the ISP or the central breakout.
    InternetProvider,
    /// Intranet or data centre down while the internet answered.
    IntranetLink,
    /// One application down while the network answered: that application.
    Application,
    /// JIP/PDN interconnection down.
    Interconnection,
    /// No group had data: the agent was off or cut off (power, the agent's host, or its link).
    AgentOffline,
    /// Not enough evidence.
    Unclear,
}

impl Cause {
    /// Label in Indonesian or English.
    pub fn label(self, english: bool) -> &'static str {
        match (self, english) {
            (Cause::LocalNetwork, false) => {
                "jaringan lokal OPD (intranet dan internet sama-sama putus)"
            }
            (Cause::LocalNetwork, true) => "OPD local network (intranet and internet both down)",
            (Cause::InternetProvider, false) => {
                "ISP atau breakout internet pusat (intranet tetap aktif)"
            }
            (Cause::InternetProvider, true) => "ISP or central internet breakout (intranet up)",
            (Cause::IntranetLink, false) => "tautan Jaringan Intra / Pusat Data",
            (Cause::IntranetLink, true) => "intranet link / data centre",
            (Cause::Application, false) => "aplikasi itu sendiri (jaringan aktif)",
            (Cause::Application, true) => "the application itself (network up)",
            (Cause::Interconnection, false) => "interkoneksi JIP/PDN",
            (Cause::Interconnection, true) => "JIP/PDN interconnection",
            (Cause::AgentOffline, false) => {
                "agen tidak melapor (listrik, perangkat agen, atau tautannya)"
            }
            (Cause::AgentOffline, true) => {
                "agent not reporting (power, the agent's host, or its link)"
            }
            (Cause::Unclear, false) => "belum jelas",
            (Cause::Unclear, true) => "unclear",
        }
    }
}

/// One detected incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// OPD.
    pub opd: String,
    /// Group that was down.
    pub group: String,
    /// First down minute, UTC ms.
    pub start_ms: i64,
    /// Minute after the last down minute (recovery), UTC ms.
    pub end_ms: i64,
    /// Down minutes.
    pub minutes: i64,
    /// Still down at the end of the data examined.
    pub open: bool,
    /// Probable cause.
    pub cause: Cause,
    /// Targets down during the incident.
    pub affected: Vec<String>,
    /// Admin note, if any.
    pub note: Option<String>,
    /// Ticket reference, if any.
    pub ticket: Option<String>,
}

/// Minute states of one OPD's groups: group -> minute start (ms) -> state.
pub type Timelines = BTreeMap<String, BTreeMap<i64, MinuteState>>;

fn majority(t: Option<&BTreeMap<i64, MinuteState>>, minutes: &[i64], want: &[MinuteState]) -> bool {
    let Some(t) = t else { return false };
    let hits = minutes
        .iter()
        .filter(|m| t.get(m).is_some_and(|s| want.contains(s)))
        .count();
    hits * 2 > minutes.len()
}

fn cause(tl: &Timelines, grp: &str, minutes: &[i64]) -> Cause {
    use MinuteState::*;
    let down = |g: &str| majority(tl.get(g), minutes, &[Down]);
    let up = |g: &str| majority(tl.get(g), minutes, &[Up, Degraded]);
    let intranet_down = down("intranet") || down("datacenter");
    let intranet_up = up("intranet") || up("datacenter");
    match grp {
        "internet" if intranet_down => Cause::LocalNetwork,
        "internet" if intranet_up => Cause::InternetProvider,
        "intranet" | "datacenter" if down("internet") => Cause::LocalNetwork,
        "intranet" | "datacenter" if up("internet") => Cause::IntranetLink,
        "app" if intranet_down => Cause::LocalNetwork,
        "app" if intranet_up || up("internet") => Cause::Application,
        "jip" if intranet_down => Cause::LocalNetwork,
        "jip" => Cause::Interconnection,
        _ => Cause::Unclear,
    }
}

/// Find runs of at least `min_minutes` consecutive down minutes per group.
/// A run is broken by any minute that is not down (including unknown: we do
/// not know it stayed down). `data_end_ms` marks where the data examined ends.
pub fn detect(opd: &str, tl: &Timelines, min_minutes: u32, data_end_ms: i64) -> Vec<Incident> {
    let mut out = Vec::new();
    for (grp, t) in tl {
        let mut run: Vec<i64> = Vec::new();
        let mut flush = |run: &mut Vec<i64>, next: Option<i64>| {
            if run.len() >= min_minutes.max(1) as usize {
                let start = run[0];
                let end = run[run.len() - 1] + 60_000;
                out.push(Incident {
                    opd: opd.to_string(),
                    group: grp.clone(),
                    start_ms: start,
                    end_ms: end,
                    minutes: run.len() as i64,
                    open: next.is_none() && end >= data_end_ms,
                    cause: cause(tl, grp, run),
                    affected: Vec::new(),
                    note: None,
                    ticket: None,
                });
            }
            run.clear();
        };
        for (m, s) in t {
            if *s == MinuteState::Down {
                if run.last().is_some_and(|l| *l + 60_000 != *m) {
                    flush(&mut run, Some(*m));
                }
                run.push(*m);
            } else if !run.is_empty() {
                flush(&mut run, Some(*m));
            }
        }
        flush(&mut run, None);
    }
    // Agent offline: minutes where every group is unknown. Reported as an
    // incident of the pseudo-group `agent`; it never counts as down.
    let mut all: BTreeMap<i64, bool> = BTreeMap::new();
    for t in tl.values() {
        for (m, s) in t {
            let e = all.entry(*m).or_insert(true);
            *e &= *s == MinuteState::Unknown;
        }
    }
    let mut run: Vec<i64> = Vec::new();
    let mut push = |run: &mut Vec<i64>, last: bool| {
        if run.len() >= min_minutes.max(1) as usize {
            let end = run[run.len() - 1] + 60_000;
            out.push(Incident {
                opd: opd.to_string(),
                group: "agent".into(),
                start_ms: run[0],
                end_ms: end,
                minutes: run.len() as i64,
                open: last && end >= data_end_ms,
                cause: Cause::AgentOffline,
                affected: Vec::new(),
                note: None,
                ticket: None,
            });
        }
        run.clear();
    };
    for (m, offline) in &all {
        let all_groups = tl.values().all(|t| t.contains_key(m));
        if *offline && all_groups {
            if run.last().is_some_and(|l| *l + 60_000 != *m) {
                push(&mut run, false);
            }
            run.push(*m);
        } else if !run.is_empty() {
            push(&mut run, false);
        }
    }
    push(&mut run, true);
    out.sort_by_key(|i| (i.start_ms, i.group.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use MinuteState::*;

    fn line(start: i64, s: &str) -> BTreeMap<i64, MinuteState> {
        s.chars()
            .enumerate()
            .map(|(i, c)| (start + i as i64 * 60_000, MinuteState::from_code(c)))
            .collect()
    }

    #[test]
    fn opens_after_n_minutes_and_closes_on_recovery() {
        let mut tl = Timelines::new();
        // 3 down (too short), up, 6 down, up, unknown, 5 down to the end.
        tl.insert("internet".into(), line(0, "DDDUDDDDDDU-DDDDD"));
        tl.insert("intranet".into(), line(0, "UUUUUUUUUUUUDDDDD"));
        let v = detect("dinkes", &tl, 5, 17 * 60_000);
        let internet: Vec<_> = v.iter().filter(|i| i.group == "internet").collect();
        assert_eq!(internet.len(), 2, "{v:?}");
        assert_eq!(internet[0].start_ms, 4 * 60_000);
        assert_eq!(internet[0].end_ms, 10 * 60_000);
        assert_eq!(internet[0].minutes, 6);
        assert!(!internet[0].open);
        assert_eq!(internet[0].cause, Cause::InternetProvider);
        assert_eq!(internet[1].minutes, 5);
        assert!(internet[1].open);
        assert_eq!(internet[1].cause, Cause::LocalNetwork);
        // The intranet's 5 down minutes with internet down too.
        let intra: Vec<_> = v.iter().filter(|i| i.group == "intranet").collect();
        assert_eq!(intra.len(), 1);
        assert_eq!(intra[0].cause, Cause::LocalNetwork);
    }

    #[test]
    fn unknown_breaks_a_run_and_app_cause() {
        let mut tl = Timelines::new();
        tl.insert("app".into(), line(0, "DDD-DDD"));
        assert!(detect("x", &tl, 5, 7 * 60_000).is_empty());
        tl.insert("app".into(), line(0, "DDDDDD"));
        tl.insert("intranet".into(), line(0, "UUUUUU"));
        let v = detect("x", &tl, 5, 100 * 60_000);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].cause, Cause::Application);
        assert!(!v[0].open);
        // A gap in the timeline (missing minutes) also breaks a run.
        let mut t = line(0, "DDD");
        t.extend(line(10 * 60_000, "DDD"));
        tl.insert("app".into(), t);
        assert!(detect("x", &tl, 5, 100 * 60_000).is_empty());
        let _ = Up;
    }

    #[test]
    fn every_group_unknown_is_agent_offline_not_down() {
        let mut tl = Timelines::new();
        tl.insert("intranet".into(), line(0, "UU------UU"));
        tl.insert("internet".into(), line(0, "U-------UU"));
        let v = detect("x", &tl, 5, 100 * 60_000);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].group, "agent");
        assert_eq!(v[0].cause, Cause::AgentOffline);
        assert_eq!((v[0].start_ms, v[0].minutes), (2 * 60_000, 6));
        // One group still answering: not offline.
        tl.insert("internet".into(), line(0, "UUUUUUUUUU"));
        assert!(detect("x", &tl, 5, 100 * 60_000).is_empty());
    }
}
