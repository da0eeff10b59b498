//! Central targets (issue 13, item 5): targets defined at the collector
//! for every agent (`province` templates: Pusat Data, JIP/PDN, internet
//! references), per OPD (`opd:<id>`) and per agent (`agent:<id>`). A later
//! scope overrides an id of an earlier one, or removes it. Each agent's
//! effective configuration is a canonical `[[targets]]` fragment, its
//! SHA-256 and the revision it was computed at; the ingest session pushes
//! it to the agent signed ([`sign_update`]).
//!
//! These are the operations behind `pantau-collector target ...` and the
//! admin console: plain functions over the store, typed errors, every
//! change audited with its before and after.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signer, SigningKey};
use pantau_core::confload::Problem;
use pantau_core::probe::{TomlTable, TomlValue, targets_fragment};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::{self, Action, Actor};
use crate::store::fleet::{FleetChange, ScopePolicy, ScopedTarget};
use crate::store::{Store, StoreError};

/// File name of the key central updates are signed with, in the data
/// directory (hex of the 32-byte Ed25519 secret, mode 0600).
pub const KEY_FILE: &str = "config-signing.key";

/// Where a definition applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every agent of the province.
    Province,
    /// Every agent of one OPD.
    Opd(String),
    /// One agent.
    Agent(String),
}

impl Scope {
    /// Parse `province`, `opd:<id>` or `agent:<id>`.
    pub fn parse(s: &str) -> Result<Scope, FleetError> {
        let bad = || FleetError::BadScope(s.chars().take(80).collect());
        match s.split_once(':') {
            None if s == "province" => Ok(Scope::Province),
            Some(("opd", id)) if pantau_core::valid_id(id) => Ok(Scope::Opd(id.into())),
            Some(("agent", id)) if pantau_core::valid_id(id) => Ok(Scope::Agent(id.into())),
            _ => Err(bad()),
        }
    }

    /// Precedence: province, then OPD, then agent.
    fn rank(&self) -> u8 {
        match self {
            Scope::Province => 0,
            Scope::Opd(_) => 1,
            Scope::Agent(_) => 2,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Province => f.write_str("province"),
            Scope::Opd(id) => write!(f, "opd:{id}"),
            Scope::Agent(id) => write!(f, "agent:{id}"),
        }
    }
}

/// Why a central target operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// Not a scope.
    #[error(
        "cakupan `{0}` tidak dikenal / unknown scope `{0}`: use province, opd:<id> or agent:<id>"
    )]
    BadScope(String),
    /// The definition breaks the target rules; every problem names its field.
    #[error("definisi target tidak sah / invalid target definition:{}", list(.0))]
    Invalid(Vec<Problem>),
    /// `add` of an id the scope already defines.
    #[error(
        "target `{id}` sudah ada di {scope} / already exists in {scope}; use `target set` to change it"
    )]
    Exists {
        /// The scope.
        scope: String,
        /// Target id.
        id: String,
    },
    /// Nothing to remove or show.
    #[error("target `{id}` tidak ada di {scope} / not defined in {scope} or any earlier scope")]
    NotFound {
        /// The scope.
        scope: String,
        /// Target id.
        id: String,
    },
    /// The scope names an OPD or agent that is not registered.
    #[error("{0} tidak terdaftar / is not registered")]
    Unregistered(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  {}: {}", p.key, p.message))
        .collect()
}

/// An agent's effective central configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    /// The revision it was computed at (the version the agent reports).
    pub version: i64,
    /// Canonical `[[targets]]` fragment (empty: no central targets).
    pub targets_toml: String,
    /// SHA-256 (hex) of `targets_toml`.
    pub sha256: String,
    /// Whether the agent keeps its own `[[targets]]` beside these.
    pub local_targets: bool,
    /// Each effective target id with the scope it comes from.
    pub origin: Vec<(String, String)>,
}

/// A definition as stored: its keys sorted (recursively), so one target
/// has one text whoever wrote it.
fn canonical_table(t: &TomlTable) -> TomlTable {
    fn sorted(v: &TomlValue) -> TomlValue {
        match v {
            TomlValue::Table(t) => TomlValue::Table(canonical_table(t)),
            TomlValue::Array(a) => TomlValue::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    let mut keys: Vec<&String> = t.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), sorted(&t[k])))
        .collect()
}

/// Validate one target table with the agent's own rules (pantau-core: the
/// id rule, kind, group, address, interval and timeout, per-kind keys,
/// unknown keys). Problems name the field (`group`, `http.ca_file`).
/// Checks only an agent can make (files on its disk) are made there.
pub fn validate_definition(def: &TomlTable) -> Result<(String, String), FleetError> {
    let table = canonical_table(def);
    let id = match table.get("id") {
        Some(TomlValue::String(s)) => s.clone(),
        _ => {
            return Err(FleetError::Invalid(vec![Problem::new(
                "id",
                "wajib diisi / required: the target id (letters, digits, '-', '_', '.')",
            )]));
        }
    };
    targets_fragment(vec![table.clone()]).map_err(|p| {
        FleetError::Invalid(
            p.into_iter()
                .map(|p| Problem {
                    key: p
                        .key
                        .strip_prefix("targets[0].")
                        .map(str::to_string)
                        .unwrap_or(p.key),
                    message: p.message,
                })
                .collect(),
        )
    })?;
    let stored = toml_text(&table)?;
    Ok((id, stored))
}

fn toml_text(t: &TomlTable) -> Result<String, FleetError> {
    toml::to_string(t)
        .map_err(|e| FleetError::Invalid(vec![Problem::new("targets", e.to_string())]))
}

fn parse_stored(text: &str) -> Result<TomlTable, StoreError> {
    text.parse::<TomlTable>()
        .map_err(|e| StoreError::NotStored(format!("stored central target is not TOML: {e}")))
}

/// Compute the effective configuration of `agent` in `opd` from stored
/// entries (pure; [`effective`] reads them). Ids sorted; an entry of a
/// later scope replaces (or, without definition, removes) an earlier one.
pub fn merge(
    entries: &[ScopedTarget],
    policies: &[ScopePolicy],
    revision: i64,
    agent: &str,
    opd: &str,
) -> Result<Effective, StoreError> {
    let applies = |scope: &str| -> Option<u8> {
        let s = Scope::parse(scope).ok()?;
        let hit = match &s {
            Scope::Province => true,
            Scope::Opd(o) => o == opd,
            Scope::Agent(a) => a == agent,
        };
        hit.then(|| s.rank())
    };
    let mut ranked: Vec<(u8, &ScopedTarget)> = entries
        .iter()
        .filter_map(|e| applies(&e.scope).map(|r| (r, e)))
        .collect();
    ranked.sort_by_key(|(r, _)| *r);
    let mut chosen: BTreeMap<&str, &ScopedTarget> = BTreeMap::new();
    for (_, e) in ranked {
        match e.definition {
            Some(_) => chosen.insert(&e.target_id, e),
            None => chosen.remove(e.target_id.as_str()),
        };
    }
    let mut tables = Vec::with_capacity(chosen.len());
    let mut origin = Vec::with_capacity(chosen.len());
    for (id, e) in &chosen {
        tables.push(canonical_table(&parse_stored(
            e.definition.as_deref().unwrap_or_default(),
        )?));
        origin.push((id.to_string(), e.scope.clone()));
    }
    let targets_toml = if tables.is_empty() {
        String::new()
    } else {
        let mut root = TomlTable::new();
        root.insert(
            "targets".into(),
            TomlValue::Array(tables.into_iter().map(TomlValue::Table).collect()),
        );
        toml::to_string(&root)
            .map_err(|e| StoreError::NotStored(format!("central targets: {e}")))?
    };
    let mut local_targets = true;
    let mut best = None;
    for p in policies {
        if let Some(rank) = applies(&p.scope)
            && best.is_none_or(|b| rank >= b)
        {
            best = Some(rank);
            local_targets = p.local_targets;
        }
    }
    Ok(Effective {
        version: revision,
        sha256: hex::encode(Sha256::digest(targets_toml.as_bytes())),
        targets_toml,
        local_targets,
        origin,
    })
}

/// The effective configuration of `agent` (of `opd`) now.
pub fn effective(store: &dyn Store, agent: &str, opd: &str) -> Result<Effective, StoreError> {
    // The revision first: a change landing between the reads is pushed
    // again at the next check, never hidden behind a newer number.
    let revision = store.fleet_revision()?;
    merge(
        &store.fleet_targets()?,
        &store.fleet_policies()?,
        revision,
        agent,
        opd,
    )
}

fn actor_text(actor: &Actor) -> String {
    format!("{}:{}", actor.kind.as_str(), actor.name)
}

fn check_registered(store: &dyn Store, scope: &Scope) -> Result<(), FleetError> {
    let known = match scope {
        Scope::Province => true,
        Scope::Opd(id) => store.opd_name(id)?.is_some(),
        Scope::Agent(id) => store.agent_exists(id)?,
    };
    if known {
        Ok(())
    } else {
        Err(FleetError::Unregistered(scope.to_string()))
    }
}

fn entry_of(
    store: &dyn Store,
    scope: &Scope,
    id: &str,
) -> Result<Option<ScopedTarget>, StoreError> {
    let scope = scope.to_string();
    Ok(store
        .fleet_targets()?
        .into_iter()
        .find(|e| e.scope == scope && e.target_id == id))
}

fn entry_json(e: &Option<ScopedTarget>) -> Value {
    match e {
        None => Value::Null,
        Some(ScopedTarget {
            definition: Some(d),
            ..
        }) => json!({"definition": d}),
        Some(_) => json!({"removed": true}),
    }
}

/// Store one change and audit it; returns the new revision.
fn change(
    store: &dyn Store,
    actor: &Actor,
    object: &str,
    c: &FleetChange,
    summary: &str,
    before: Value,
    after: Value,
) -> Result<i64, FleetError> {
    let revision = store.fleet_change(c, crate::store::now_ms(), &actor_text(actor), summary)?;
    let after = match after {
        Value::Object(mut m) => {
            m.insert("revision".into(), json!(revision));
            Value::Object(m)
        }
        other => json!({"revision": revision, "value": other}),
    };
    audit::record(store, actor, Action::TargetChange, object, before, after)?;
    Ok(revision)
}

/// Add a new target to `scope` (refused when the scope already has it).
pub fn add(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    def: &TomlTable,
) -> Result<i64, FleetError> {
    check_registered(store, scope)?;
    let (id, text) = validate_definition(def)?;
    if entry_of(store, scope, &id)?.is_some_and(|e| e.definition.is_some()) {
        return Err(FleetError::Exists {
            scope: scope.to_string(),
            id,
        });
    }
    set_validated(store, actor, scope, id, text, "add")
}

/// Add or replace a target in `scope`.
pub fn set(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    def: &TomlTable,
) -> Result<i64, FleetError> {
    check_registered(store, scope)?;
    let (id, text) = validate_definition(def)?;
    set_validated(store, actor, scope, id, text, "set")
}

fn set_validated(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    id: String,
    text: String,
    verb: &str,
) -> Result<i64, FleetError> {
    let before = entry_json(&entry_of(store, scope, &id)?);
    let object = format!("{scope}/{id}");
    let put = FleetChange::Put(ScopedTarget {
        scope: scope.to_string(),
        target_id: id,
        definition: Some(text.clone()),
    });
    change(
        store,
        actor,
        &object,
        &put,
        &format!("target {verb} {object}"),
        before,
        json!({"definition": text}),
    )
}

/// Remove target `id` from `scope`: its own definition is deleted; an id
/// only an earlier scope defines gets a removal marker here (the agents of
/// this scope stop probing it).
pub fn remove(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    id: &str,
) -> Result<i64, FleetError> {
    let own = entry_of(store, scope, id)?;
    let object = format!("{scope}/{id}");
    if own.as_ref().is_some_and(|e| e.definition.is_some()) {
        let del = FleetChange::Delete {
            scope: scope.to_string(),
            target_id: id.into(),
        };
        let summary = format!("target remove {object}");
        return change(
            store,
            actor,
            &object,
            &del,
            &summary,
            entry_json(&own),
            Value::Null,
        );
    }
    let earlier = store.fleet_targets()?.into_iter().any(|e| {
        e.target_id == id
            && e.definition.is_some()
            && Scope::parse(&e.scope).is_ok_and(|s| s.rank() < scope.rank())
    });
    if !earlier || own.is_some() {
        return Err(FleetError::NotFound {
            scope: scope.to_string(),
            id: id.into(),
        });
    }
    let marker = FleetChange::Put(ScopedTarget {
        scope: scope.to_string(),
        target_id: id.into(),
        definition: None,
    });
    let summary = format!("target remove {object} (override)");
    change(
        store,
        actor,
        &object,
        &marker,
        &summary,
        Value::Null,
        json!({"removed": true}),
    )
}

/// Replace every target of `scope` with the `[[targets]]` of a TOML file
/// (agent configuration syntax); nothing is stored unless all are valid.
pub fn import(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    text: &str,
) -> Result<i64, FleetError> {
    check_registered(store, scope)?;
    let root: TomlTable = text.parse().map_err(|e| {
        FleetError::Invalid(vec![Problem::new(
            "targets",
            format!("bukan TOML / not valid TOML: {e}"),
        )])
    })?;
    let mut problems = Vec::new();
    for key in root.keys().filter(|k| *k != "targets") {
        problems.push(Problem::new(
            key.clone(),
            "hanya [[targets]] / only [[targets]] tables may be imported",
        ));
    }
    let tables = match root.get("targets") {
        None => Vec::new(),
        Some(TomlValue::Array(a)) => a.clone(),
        Some(_) => {
            problems.push(Problem::new(
                "targets",
                "harus [[targets]] / must be [[targets]] tables",
            ));
            Vec::new()
        }
    };
    let mut entries: Vec<ScopedTarget> = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let TomlValue::Table(t) = t else {
            problems.push(Problem::new(format!("targets[{i}]"), "not a table"));
            continue;
        };
        match validate_definition(t) {
            Ok((id, _)) if entries.iter().any(|e| e.target_id == id) => {
                problems.push(Problem::new(
                    format!("targets[{i}].id"),
                    format!("`{id}` ganda / duplicate id"),
                ))
            }
            Ok((id, def)) => entries.push(ScopedTarget {
                scope: scope.to_string(),
                target_id: id,
                definition: Some(def),
            }),
            Err(FleetError::Invalid(p)) => problems.extend(p.into_iter().map(|p| Problem {
                key: format!("targets[{i}].{}", p.key),
                message: p.message,
            })),
            Err(e) => return Err(e),
        }
    }
    if !problems.is_empty() {
        return Err(FleetError::Invalid(problems));
    }
    let scope_s = scope.to_string();
    let before: Vec<Value> = store
        .fleet_targets()?
        .iter()
        .filter(|e| e.scope == scope_s)
        .map(|e| json!({"id": e.target_id, "definition": e.definition}))
        .collect();
    let after: Vec<Value> = entries
        .iter()
        .map(|e| json!({"id": e.target_id, "definition": e.definition}))
        .collect();
    let n = entries.len();
    let c = FleetChange::ReplaceScope {
        scope: scope_s.clone(),
        entries,
    };
    change(
        store,
        actor,
        &scope_s,
        &c,
        &format!("target import {scope_s} ({n} targets)"),
        json!({"targets": before}),
        json!({"targets": after}),
    )
}

/// Set (`Some`) or clear a scope's policy for the agents' own targets.
pub fn set_policy(
    store: &dyn Store,
    actor: &Actor,
    scope: &Scope,
    local_targets: Option<bool>,
) -> Result<i64, FleetError> {
    check_registered(store, scope)?;
    let scope_s = scope.to_string();
    let before = store
        .fleet_policies()?
        .into_iter()
        .find(|p| p.scope == scope_s)
        .map_or(Value::Null, |p| json!({"local_targets": p.local_targets}));
    let c = FleetChange::Policy {
        scope: scope_s.clone(),
        local_targets,
    };
    change(
        store,
        actor,
        &format!("{scope_s}/policy"),
        &c,
        &format!("target policy {scope_s}"),
        before,
        json!({"local_targets": local_targets}),
    )
}

/// The bytes a central update's signature covers: the agent it is for, the
/// version, the policy and the SHA-256 of the targets. The agent checks the
/// SHA-256 against the fragment it received.
pub fn signed_bytes(agent: &str, version: u64, local_targets: bool, sha256: &str) -> Vec<u8> {
    pantau_proto::config_signed_bytes(agent, version, local_targets, sha256)
}

/// The signed `ConfigUpdate` for `agent` carrying `e`.
pub fn sign_update(key: &SigningKey, agent: &str, e: &Effective) -> pantau_proto::v1::ConfigUpdate {
    let version = e.version.max(0) as u64;
    let sig = key.sign(&signed_bytes(agent, version, e.local_targets, &e.sha256));
    pantau_proto::v1::ConfigUpdate {
        targets_toml: e.targets_toml.clone(),
        heartbeat_interval_ms: 0,
        version,
        sha256: e.sha256.clone(),
        local_targets: if e.local_targets {
            pantau_proto::v1::LocalTargets::Allow as i32
        } else {
            pantau_proto::v1::LocalTargets::Deny as i32
        },
        signature: hex::encode(sig.to_bytes()),
        signing_key: hex::encode(key.verifying_key().to_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{AuditLog, Fleet, Registry, SqliteStore};
    use ed25519_dalek::Verifier;

    fn table(text: &str) -> TomlTable {
        text.parse().unwrap()
    }

    fn put(scope: &str, id: &str, def: Option<&str>) -> ScopedTarget {
        ScopedTarget {
            scope: scope.into(),
            target_id: id.into(),
            definition: def.map(|d| validate_definition(&table(d)).unwrap().1),
        }
    }

    const PD: &str =
        "id = \"pd\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"10.0.0.1:443\"";

    #[test]
    fn later_scopes_override_and_remove() {
        let entries = vec![
            put("province", "pd", Some(PD)),
            put(
                "province",
                "pdn",
                Some("id = \"pdn\"\ngroup = \"jip\"\nkind = \"icmp\"\naddress = \"10.1.0.1\""),
            ),
            put(
                "opd:dinkes",
                "pd",
                Some(
                    "id = \"pd\"\ngroup = \"datacenter\"\nkind = \"tcp\"\naddress = \"10.0.0.2:443\"",
                ),
            ),
            put("agent:a1", "pdn", None),
            put(
                "agent:a2",
                "own",
                Some("id = \"own\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"10.2.0.1:80\""),
            ),
            put(
                "opd:other",
                "x",
                Some("id = \"x\"\ngroup = \"app\"\nkind = \"tcp\"\naddress = \"10.3.0.1:80\""),
            ),
        ];
        let a1 = merge(&entries, &[], 7, "a1", "dinkes").unwrap();
        assert_eq!(
            a1.origin,
            vec![("pd".to_string(), "opd:dinkes".to_string())]
        );
        assert!(
            a1.targets_toml.contains("10.0.0.2:443"),
            "{}",
            a1.targets_toml
        );
        assert_eq!(a1.version, 7);
        assert!(a1.local_targets);
        let a2 = merge(&entries, &[], 7, "a2", "dinkes").unwrap();
        let ids: Vec<&str> = a2.origin.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["own", "pd", "pdn"]);
        let a3 = merge(&entries, &[], 7, "a3", "other").unwrap();
        let ids: Vec<&str> = a3.origin.iter().map(|(i, _)| i.as_str()).collect();
        assert_eq!(ids, ["pd", "pdn", "x"]);
        assert!(a3.targets_toml.contains("10.0.0.1:443"));
        // The fragment is what the agent parses.
        assert_eq!(
            pantau_core::probe::targets_from_toml(&a2.targets_toml)
                .unwrap()
                .len(),
            3
        );
        // The most specific policy wins.
        let policies = vec![
            ScopePolicy {
                scope: "province".into(),
                local_targets: false,
            },
            ScopePolicy {
                scope: "agent:a2".into(),
                local_targets: true,
            },
        ];
        assert!(
            !merge(&entries, &policies, 7, "a1", "dinkes")
                .unwrap()
                .local_targets
        );
        assert!(
            merge(&entries, &policies, 7, "a2", "dinkes")
                .unwrap()
                .local_targets
        );
        // Nothing applies: empty fragment, the SHA-256 of nothing.
        let none = merge(&[], &[], 1, "a1", "dinkes").unwrap();
        assert_eq!(none.targets_toml, "");
        assert_eq!(none.sha256, hex::encode(Sha256::digest(b"")));
    }

    #[test]
    fn rendering_is_canonical_whatever_the_key_order() {
        let a = put("province", "pd", Some(PD));
        let b = put(
            "province",
            "pd",
            Some("address = \"10.0.0.1:443\"\nkind = \"tcp\"\nid = \"pd\"\ngroup = \"datacenter\""),
        );
        assert_eq!(a.definition, b.definition);
        let x = merge(&[a], &[], 1, "a", "o").unwrap();
        let y = merge(&[b], &[], 1, "a", "o").unwrap();
        assert_eq!(
            (x.targets_toml.clone(), x.sha256.clone()),
            (y.targets_toml, y.sha256)
        );
        assert_eq!(
            x.targets_toml,
            "[[targets]]\naddress = \"10.0.0.1:443\"\ngroup = \"datacenter\"\nid = \"pd\"\nkind = \"tcp\"\n"
        );
    }

    #[test]
    fn definitions_are_checked_with_the_agent_rules_naming_the_field() {
        let Err(FleetError::Invalid(p)) = validate_definition(&table(
            "id = \"pd\"\ngroup = \"moon\"\nkind = \"tcp\"\naddress = \"no-port\"\ncolour = \"red\"",
        )) else {
            panic!("accepted")
        };
        let keys: Vec<&str> = p.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["colour", "group", "address"], "{p:?}");
        let e = FleetError::Invalid(p).to_string();
        assert!(
            e.starts_with("definisi target tidak sah / invalid target definition:"),
            "{e}"
        );
        assert!(matches!(
            validate_definition(&table("group = \"app\"")),
            Err(FleetError::Invalid(p)) if p[0].key == "id"
        ));
        assert!(Scope::parse("kabupaten").is_err());
        assert!(Scope::parse("opd:bad id").is_err());
        assert_eq!(Scope::parse("agent:a-1").unwrap().to_string(), "agent:a-1");
    }

    #[test]
    fn the_update_is_signed_for_one_agent() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let e = merge(&[put("province", "pd", Some(PD))], &[], 3, "a1", "o").unwrap();
        let u = sign_update(&key, "a1", &e);
        assert_eq!((u.version, u.sha256.as_str()), (3, e.sha256.as_str()));
        let sig = ed25519_dalek::Signature::from_bytes(
            &hex::decode(&u.signature).unwrap().try_into().unwrap(),
        );
        let vk = key.verifying_key();
        assert!(
            vk.verify(&signed_bytes("a1", 3, true, &u.sha256), &sig)
                .is_ok()
        );
        assert!(
            vk.verify(&signed_bytes("a2", 3, true, &u.sha256), &sig)
                .is_err()
        );
        assert!(
            vk.verify(&signed_bytes("a1", 4, true, &u.sha256), &sig)
                .is_err()
        );
        assert!(
            vk.verify(&signed_bytes("a1", 3, false, &u.sha256), &sig)
                .is_err()
        );
        assert_eq!(u.signing_key, hex::encode(vk.to_bytes()));
    }

    #[test]
    fn operations_are_audited_and_removal_of_an_inherited_id_is_an_override() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path()).unwrap();
        s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
        s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
        let actor = Actor::web_user("admin", "10.0.0.9");
        let store: &dyn Store = &s;
        assert_eq!(add(store, &actor, &Scope::Province, &table(PD)).unwrap(), 1);
        assert!(matches!(
            add(store, &actor, &Scope::Province, &table(PD)),
            Err(FleetError::Exists { .. })
        ));
        assert!(matches!(
            add(store, &actor, &Scope::Opd("nope".into()), &table(PD)),
            Err(FleetError::Unregistered(_))
        ));
        let a1 = Scope::Agent("a1".into());
        assert_eq!(remove(store, &actor, &a1, "pd").unwrap(), 2);
        assert!(effective(store, "a1", "dinkes").unwrap().origin.is_empty());
        assert_eq!(effective(store, "a2", "dinkes").unwrap().origin.len(), 1);
        // The marker itself is removed from its scope only by `set`.
        assert!(matches!(
            remove(store, &actor, &a1, "pd"),
            Err(FleetError::NotFound { .. })
        ));
        assert!(matches!(
            remove(store, &actor, &a1, "never"),
            Err(FleetError::NotFound { .. })
        ));
        let bad = import(
            store,
            &actor,
            &Scope::Province,
            "[[targets]]\nid = \"x\"\n[[targets]]\nid = \"x\"\n",
        );
        let Err(FleetError::Invalid(p)) = bad else {
            panic!("{bad:?}")
        };
        assert!(p.iter().any(|p| p.key == "targets[0].group"), "{p:?}");
        assert_eq!(s.fleet_revision().unwrap(), 2, "nothing stored");
        let r = import(
            store,
            &actor,
            &Scope::Province,
            "[[targets]]\nid = \"pdn\"\ngroup = \"jip\"\nkind = \"icmp\"\naddress = \"10.1.0.1\"\n",
        )
        .unwrap();
        assert_eq!(r, 3);
        let ids: Vec<String> = s
            .fleet_targets()
            .unwrap()
            .into_iter()
            .map(|e| e.target_id)
            .collect();
        assert_eq!(ids, ["pd", "pdn"], "agent marker kept, province replaced");
        assert_eq!(
            set_policy(store, &actor, &Scope::Province, Some(false)).unwrap(),
            4
        );
        let log = s.audit_list(&crate::audit::AuditQuery::default()).unwrap();
        let changes: Vec<_> = log.iter().filter(|e| e.action == "target.change").collect();
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[0].object, "province/pd");
        assert_eq!(changes[0].actor_name, "admin");
        assert_eq!(changes[0].after["revision"], 1);
        assert_eq!(changes[1].after["removed"], true);
        assert!(
            changes[2].before["targets"][0]["definition"]
                .as_str()
                .unwrap()
                .contains("10.0.0.1")
        );
    }
}
