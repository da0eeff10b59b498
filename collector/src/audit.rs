//! The audit log's domain side: who did what ([`Actor`], [`Action`]), one
//! call to record it ([`record`]), chain verification ([`verify`],
//! [`verify_segment`]), the JSON-lines and RFC 5424 syslog forms, and which
//! entries belong in a report bundle ([`touches_period`]). Storage and the
//! canonical hash are in [`crate::store::audit`].

use serde_json::Value;

use crate::store::StoreError;
pub use crate::store::audit::{AuditEntry, AuditLog, AuditQuery, GENESIS, NewAuditEntry};

/// What kind of actor acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    /// A unix user running `pantau-collector` on the collector host.
    CliUser,
    /// A logged-in web account.
    WebUser,
    /// An API token.
    Token,
    /// An agent (enrolment).
    Agent,
    /// The collector itself.
    System,
}

impl ActorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::CliUser => "cli-user",
            ActorKind::WebUser => "web-user",
            ActorKind::Token => "token",
            ActorKind::Agent => "agent",
            ActorKind::System => "system",
        }
    }
}

/// Who acted, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Kind.
    pub kind: ActorKind,
    /// Name (unix user, account, token name, agent id).
    pub name: String,
    /// Peer address, or `cli:<unix user>@<host>`.
    pub source: String,
}

impl Actor {
    /// The unix user running this process on this host. The name comes from
    /// the process's real uid (`/etc/passwd`), not from `$USER`; under sudo
    /// the invoking user is added (`root (sudo: alice)`).
    pub fn cli() -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        let user = uid
            .and_then(passwd_name)
            .or_else(|| uid.map(|u| format!("uid{u}")))
            .unwrap_or_else(|| "unknown".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let name = match std::env::var("SUDO_USER") {
            Ok(s) if !s.is_empty() && s != user => format!("{user} (sudo: {s})"),
            _ => user.clone(),
        };
        Actor {
            kind: ActorKind::CliUser,
            name,
            source: format!("cli:{user}@{host}"),
        }
    }

    /// A logged-in web account at `peer` (for the web login and console).
    pub fn web_user(name: &str, peer: &str) -> Self {
        Actor {
            kind: ActorKind::WebUser,
            name: name.into(),
            source: peer.into(),
        }
    }

    /// An agent at `peer`.
    pub fn agent(id: &str, peer: &str) -> Self {
        Actor {
            kind: ActorKind::Agent,
            name: id.into(),
            source: peer.into(),
        }
    }
}

fn passwd_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

/// What was done: stable dotted names a SIEM can match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Action {
    OpdAdd,
    OpdContract,
    OpdRename,
    OpdDisable,
    OpdEnable,
    OpdRemove,
    AgentAdd,
    AgentDisable,
    AgentEnable,
    AgentRevoke,
    AgentRotate,
    EnrolCode,
    EnrolRedeem,
    MaintenanceCreate,
    MaintenanceEnd,
    MaintenanceDelete,
    IncidentNote,
    KeyRotate,
    CaInit,
    AuthLogin,
    AuthLoginFailed,
    AuthLogout,
    UserAdd,
    UserChange,
    TokenCreate,
    TokenRevoke,
    ReportSign,
    TargetChange,
}

impl Action {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::OpdAdd => "opd.add",
            Action::OpdContract => "opd.contract",
            Action::OpdRename => "opd.rename",
            Action::OpdDisable => "opd.disable",
            Action::OpdEnable => "opd.enable",
            Action::OpdRemove => "opd.remove",
            Action::AgentAdd => "agent.add",
            Action::AgentDisable => "agent.disable",
            Action::AgentEnable => "agent.enable",
            Action::AgentRevoke => "agent.revoke",
            Action::AgentRotate => "agent.rotate",
            Action::EnrolCode => "enrol.code",
            Action::EnrolRedeem => "enrol.redeem",
            Action::MaintenanceCreate => "maintenance.create",
            Action::MaintenanceEnd => "maintenance.end",
            Action::MaintenanceDelete => "maintenance.delete",
            Action::IncidentNote => "incident.note",
            Action::KeyRotate => "key.rotate",
            Action::CaInit => "ca.init",
            Action::AuthLogin => "auth.login",
            Action::AuthLoginFailed => "auth.login-failed",
            Action::AuthLogout => "auth.logout",
            Action::UserAdd => "user.add",
            Action::UserChange => "user.change",
            Action::TokenCreate => "token.create",
            Action::TokenRevoke => "token.revoke",
            Action::ReportSign => "report.sign",
            Action::TargetChange => "target.change",
        }
    }
}

/// Append one entry: `actor` did `action` on `object`, changing it from
/// `before` to `after` (`Value::Null` for none). Call it right after the
/// change succeeded; a blocking call (use `SharedStore::with` from async code).
pub fn record(
    log: &(impl AuditLog + ?Sized),
    actor: &Actor,
    action: Action,
    object: &str,
    before: Value,
    after: Value,
) -> Result<AuditEntry, StoreError> {
    log.append_audit(&NewAuditEntry {
        time_ms: crate::store::now_ms(),
        actor_kind: actor.kind.as_str().into(),
        actor_name: actor.name.clone(),
        source: actor.source.clone(),
        action: action.as_str().into(),
        object: object.into(),
        before,
        after,
    })
}

/// [`record`] from async code (the web login, console actions, RPCs): runs
/// on the store's blocking pool. Example for a web login:
/// `audit::record_shared(&store, Actor::web_user(&user, &peer), Action::AuthLogin,
/// user.clone(), Value::Null, json!({"role": role})).await?`.
pub async fn record_shared(
    store: &crate::store::SharedStore,
    actor: Actor,
    action: Action,
    object: String,
    before: Value,
    after: Value,
) -> Result<AuditEntry, StoreError> {
    store
        .with(move |s| record(s, &actor, action, &object, before, after))
        .await
}

/// The Enrol RPC's one audit call: records a redeemed code (the agent, its
/// OPD, the peer); refused codes are only logged and counted. The token was
/// already replaced, so a failed append is logged as an error, not returned.
pub async fn enrolled(
    store: &crate::store::SharedStore,
    outcome: &crate::store::Redeemed,
    peer: &str,
) {
    let crate::store::Redeemed::Enrolled(who) = outcome else {
        return;
    };
    let after = serde_json::json!({"agent": who.agent_id, "opd": who.opd_id});
    let actor = Actor::agent(&who.agent_id, peer);
    let (action, object) = (Action::EnrolRedeem, who.agent_id.clone());
    if let Err(e) = record_shared(store, actor, action, object, Value::Null, after).await {
        tracing::error!(agent = %who.agent_id, error = %e, "audit entry of an enrolment not stored");
    }
}

/// Where a chain is broken: the first bad seq and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log audit rusak pada seq {seq} / audit chain broken at seq {seq}: {why}")]
pub struct Break {
    /// First bad seq.
    pub seq: i64,
    /// What is wrong there.
    pub why: String,
}

fn check_hash(e: &AuditEntry) -> Result<(), Break> {
    if e.computed_hash() != e.hash {
        return Err(Break {
            seq: e.seq,
            why: "isi tidak cocok dengan hash-nya (diubah) / content does not match its hash (edited or moved)".into(),
        });
    }
    Ok(())
}

fn check_link(prev: &AuditEntry, e: &AuditEntry) -> Result<(), Break> {
    if e.prev_hash != prev.hash {
        return Err(Break {
            seq: e.seq,
            why: format!(
                "prev_hash tidak cocok dengan hash seq {} / prev_hash does not match the hash of seq {} (removed, inserted or reordered)",
                prev.seq, prev.seq
            ),
        });
    }
    Ok(())
}

/// Check a whole log, from seq 1: seqs without gaps, every hash, every link.
pub fn verify(entries: &[AuditEntry]) -> Result<(), Break> {
    let mut prev: Option<&AuditEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        let expected = i as i64 + 1;
        if e.seq != expected {
            let why = if e.seq > expected {
                format!("entri {expected} hilang / entry {expected} is missing (removed)")
            } else {
                format!(
                    "seq {} muncul lagi atau tidak berurutan / seq {} repeated or out of order",
                    e.seq, e.seq
                )
            };
            return Err(Break {
                seq: expected.min(e.seq),
                why,
            });
        }
        check_hash(e)?;
        match prev {
            Some(p) => check_link(p, e)?,
            None if e.prev_hash != GENESIS => {
                return Err(Break {
                    seq: e.seq,
                    why: "entri pertama tidak dimulai dari genesis / the first entry does not start the chain".into(),
                });
            }
            None => {}
        }
        prev = Some(e);
    }
    Ok(())
}

/// Check a segment (a bundle's entries): ascending seqs, every hash, and
/// the link wherever two entries are consecutive.
pub fn verify_segment(entries: &[AuditEntry]) -> Result<(), Break> {
    for (i, e) in entries.iter().enumerate() {
        check_hash(e)?;
        if let Some(p) = i.checked_sub(1).map(|j| &entries[j]) {
            if e.seq <= p.seq {
                return Err(Break {
                    seq: e.seq,
                    why: format!(
                        "tidak berurutan setelah seq {} / out of order after seq {}",
                        p.seq, p.seq
                    ),
                });
            }
            if e.seq == p.seq + 1 {
                check_link(p, e)?;
            }
        }
    }
    Ok(())
}

/// One JSON line per entry (for a SIEM, `verify-audit --file`, bundles).
pub fn to_jsonl(entries: &[AuditEntry]) -> String {
    let mut out = String::new();
    for e in entries {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// A JSON-lines text that cannot be read back.
#[derive(Debug, thiserror::Error)]
#[error("baris {line} / line {line}: {source}")]
pub struct JsonlError {
    /// 1-based line number.
    pub line: usize,
    /// Cause.
    pub source: serde_json::Error,
}

/// Parse [`to_jsonl`]'s output (empty lines are skipped).
pub fn from_jsonl(text: &str) -> Result<Vec<AuditEntry>, JsonlError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| JsonlError {
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// The entry as one RFC 5424 message (facility authpriv, severity notice),
/// structured data `pantau@32473` (the documentation enterprise number) and
/// the JSON line as the message.
pub fn syslog_line(e: &AuditEntry, hostname: &str) -> String {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
    };
    let time = chrono::DateTime::from_timestamp_millis(e.time_ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| "-".into());
    let host: String = hostname
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let host = if host.is_empty() { "-".into() } else { host };
    format!(
        "<85>1 {time} {host} pantau-collector - audit [pantau@32473 seq=\"{}\" action=\"{}\" actor=\"{}\" source=\"{}\" object=\"{}\" hash=\"{}\"] {}",
        e.seq,
        esc(&e.action),
        esc(&e.actor_name),
        esc(&e.source),
        esc(&e.object),
        e.hash,
        serde_json::to_string(e).unwrap_or_default()
    )
}

/// Why entries could not be sent to syslog.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// The address is not `udp://host:port` or `host:port`.
    #[error(
        "alamat syslog `{0}` tidak sah / syslog address `{0}` is not udp://HOST:PORT (e.g. udp://10.0.0.9:514)"
    )]
    Address(String),
    /// Sending failed.
    #[error("syslog {addr}: {source}")]
    Send {
        /// Where to.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// Check a syslog address (`udp://host:port` or `host:port`) and give the
/// `host:port` part.
pub fn syslog_target(addr: &str) -> Result<String, SyslogError> {
    let rest = addr.strip_prefix("udp://").unwrap_or(addr);
    if rest.contains("://")
        || rest
            .rsplit_once(':')
            .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(SyslogError::Address(addr.into()));
    }
    Ok(rest.to_string())
}

/// Send each entry as one RFC 5424 datagram to `addr`.
pub fn send_syslog(addr: &str, entries: &[AuditEntry]) -> Result<usize, SyslogError> {
    use std::net::ToSocketAddrs as _;
    let target = syslog_target(addr)?;
    let send = |source| SyslogError::Send {
        addr: addr.into(),
        source,
    };
    let peer = target
        .to_socket_addrs()
        .map_err(send)?
        .next()
        .ok_or_else(|| SyslogError::Address(addr.into()))?;
    let local: std::net::SocketAddr = if peer.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = std::net::UdpSocket::bind(local).map_err(send)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    for e in entries {
        sock.send_to(syslog_line(e, host.trim()).as_bytes(), peer)
            .map_err(send)?;
    }
    Ok(entries.len())
}

/// Whether `e` belongs in the bundle of a report on `opd` (or all) over
/// `[from_ms, to_ms)`: maintenance windows and incident notes whose own
/// period falls in it (whenever they were recorded: a window added after
/// the fact matters most), and key rotations, rule and contract changes
/// recorded since the period began.
pub fn touches_period(e: &AuditEntry, opd: Option<&str>, from_ms: i64, to_ms: i64) -> bool {
    let state = if e.after.is_null() {
        &e.before
    } else {
        &e.after
    };
    let num = |k: &str| state.get(k).and_then(Value::as_i64);
    let in_scope = match (opd, state.get("opd").and_then(Value::as_str)) {
        (Some(want), Some(got)) => want == got,
        _ => true,
    };
    let family = e.action.split('.').next().unwrap_or("");
    match family {
        "maintenance" => {
            in_scope
                && matches!((num("from_ms"), num("to_ms")), (Some(f), Some(t)) if f < to_ms && t > from_ms)
        }
        "incident" => in_scope && num("start_ms").is_some_and(|s| s >= from_ms && s < to_ms),
        "key" | "rules" => e.time_ms >= from_ms,
        "opd" if e.action == "opd.contract" => {
            e.time_ms >= from_ms && opd.is_none_or(|o| o == e.object)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::entry_hash;

    fn chain(n: i64) -> Vec<AuditEntry> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let c = NewAuditEntry {
                    time_ms: seq * 1000,
                    actor_kind: "cli-user".into(),
                    actor_name: "root".into(),
                    source: "cli:root@box".into(),
                    action: "opd.add".into(),
                    object: format!("o{seq}"),
                    before: Value::Null,
                    after: serde_json::json!({"name": seq}),
                };
                let hash = entry_hash(seq, &c, &prev);
                let e = AuditEntry {
                    seq,
                    time_ms: c.time_ms,
                    actor_kind: c.actor_kind,
                    actor_name: c.actor_name,
                    source: c.source,
                    action: c.action,
                    object: c.object,
                    before: c.before,
                    after: c.after,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                e
            })
            .collect()
    }

    #[test]
    fn verify_names_the_first_removed_edited_or_reordered_seq() {
        let good = chain(5);
        assert_eq!(verify(&good), Ok(()));
        assert_eq!(from_jsonl(&to_jsonl(&good)).unwrap(), good);
        let mut edited = good.clone();
        edited[2].after = serde_json::json!({"name": "forged"});
        assert_eq!(verify(&edited).unwrap_err().seq, 3);
        let mut removed = good.clone();
        removed.remove(1);
        assert_eq!(verify(&removed).unwrap_err().seq, 2);
        // Two rows swapped, each keeping its seq number.
        let mut swapped = good.clone();
        swapped.swap(3, 1);
        (swapped[1].seq, swapped[3].seq) = (2, 4);
        assert_eq!(verify(&swapped).unwrap_err().seq, 2);
        // Rehashing an edited entry breaks the next link instead.
        let mut rehashed = good.clone();
        rehashed[2].object = "x".into();
        rehashed[2].hash = rehashed[2].computed_hash();
        assert_eq!(verify(&rehashed).unwrap_err().seq, 4);
        // A segment with a gap still checks hashes and the links it has.
        let seg = vec![good[0].clone(), good[1].clone(), good[3].clone()];
        assert_eq!(verify_segment(&seg), Ok(()));
        let mut bad = seg.clone();
        bad[2].object = "x".into();
        assert_eq!(verify_segment(&bad).unwrap_err().seq, 4);
    }

    #[test]
    fn syslog_lines_are_rfc5424_and_addresses_are_checked() {
        let e = &chain(1)[0];
        let l = syslog_line(e, "pantau");
        assert!(
            l.starts_with("<85>1 1970-01-01T00:00:01.000Z pantau pantau-collector - audit [pantau@32473 seq=\"1\" action=\"opd.add\""),
            "{l}"
        );
        assert!(syslog_target("udp://127.0.0.1:514").is_ok());
        for bad in ["tcp://h:514", "udp://h", "h:x", ":514"] {
            assert!(syslog_target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bundle_entries_are_those_touching_the_period() {
        let mut e = chain(1).remove(0);
        e.action = "maintenance.create".into();
        e.time_ms = 10_000;
        e.after = serde_json::json!({"opd": "dinkes", "from_ms": 100, "to_ms": 200});
        assert!(touches_period(&e, Some("dinkes"), 150, 300));
        assert!(touches_period(&e, None, 0, 101));
        assert!(!touches_period(&e, Some("bappeda"), 150, 300));
        assert!(!touches_period(&e, None, 200, 300));
        e.action = "agent.add".into();
        assert!(!touches_period(&e, None, 0, 20_000));
        e.action = "key.rotate".into();
        assert!(touches_period(&e, None, 0, 1));
        assert!(!touches_period(&e, None, 20_000, 30_000));
    }
}
