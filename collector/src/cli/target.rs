//! `pantau-collector target ...`: central targets (docs/ADMIN.md, "Target
//! terpusat / Central targets"). Every command goes through
//! [`crate::fleet`], the same code the admin console uses.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use pantau_core::probe::{TomlTable, TomlValue};

use crate::audit::Actor;
use crate::config::CollectorConfig;
use crate::fleet::{self, FleetError, Scope};

/// `pantau-collector target ...`.
#[derive(Debug, Subcommand)]
pub enum TargetCmd {
    /// Add a target to a scope (refused when the scope already has the id).
    ///
    /// Example: pantau-collector target add --scope province --id pusat-data
    /// --group datacenter --kind tcp --address 10.10.0.5:443
    Add(Definition),
    /// Add or replace a target in a scope.
    ///
    /// Example: pantau-collector target set --scope agent:dinkes-1 --id pusat-data
    /// --group datacenter --kind http --address https://10.10.0.5/ --set ca_file=/etc/pantau/pd.pem
    Set(Definition),
    /// Remove a target from a scope; for an id an earlier scope defines
    /// (province, the OPD) the agents of this scope stop probing it.
    ///
    /// Example: pantau-collector target remove --scope opd:dinkes --id pdn-ping
    Remove {
        /// `province`, `opd:<id>` or `agent:<id>`.
        #[arg(long)]
        scope: String,
        /// Target id.
        #[arg(long)]
        id: String,
    },
    /// Replace every target of a scope with the `[[targets]]` of a TOML file
    /// (agent configuration syntax, docs/CONFIG.md).
    ///
    /// Example: pantau-collector target import --scope province templates.toml
    Import {
        /// `province`, `opd:<id>` or `agent:<id>`.
        #[arg(long)]
        scope: String,
        /// The TOML file.
        file: PathBuf,
    },
    /// Whether agents of a scope keep the targets of their own file beside
    /// the central ones (`allow`, the default, or `deny`; `inherit` clears).
    ///
    /// Example: pantau-collector target policy --scope province --local-targets deny
    Policy {
        /// `province`, `opd:<id>` or `agent:<id>`.
        #[arg(long)]
        scope: String,
        /// allow, deny or inherit.
        #[arg(long)]
        local_targets: String,
    },
    /// Every central target by scope, and the revision history.
    List,
    /// What one agent gets: the canonical `[[targets]]`, its SHA-256 and version.
    ///
    /// Example: pantau-collector target show-effective --agent dinkes-1
    ShowEffective {
        /// Agent id.
        #[arg(long)]
        agent: String,
    },
}

/// One target from the command line.
#[derive(Debug, clap::Args)]
pub struct Definition {
    /// `province`, `opd:<id>` or `agent:<id>`.
    #[arg(long)]
    pub scope: String,
    /// Target id.
    #[arg(long)]
    pub id: String,
    /// internet, intranet, datacenter, jip or app.
    #[arg(long)]
    pub group: String,
    /// icmp, tcp, http, dns, bandwidth, link or traceroute.
    #[arg(long)]
    pub kind: String,
    /// What is probed (address, host:port or URL).
    #[arg(long)]
    pub address: String,
    /// Probe interval, e.g. 30s.
    #[arg(long)]
    pub interval: Option<String>,
    /// Probe timeout, e.g. 5s.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Human label.
    #[arg(long)]
    pub label: Option<String>,
    /// Any other key of the target (docs/CONFIG.md), KEY=VALUE; VALUE is
    /// read as TOML (a number, true/false, "text") and otherwise as text.
    /// Dotted keys set a kind's table: `--set http.expect_status=200`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Why a `target` command failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetCliError {
    /// The operation was refused.
    #[error(transparent)]
    Fleet(#[from] FleetError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A `--set` or `--local-targets` value is not usable.
    #[error("{0}")]
    Usage(String),
    /// The import file cannot be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Standard output could not be written.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl Definition {
    /// The target table the flags describe.
    pub fn table(&self) -> Result<TomlTable, TargetCliError> {
        let mut t = TomlTable::new();
        let text = |s: &str| TomlValue::String(s.to_string());
        t.insert("id".into(), text(&self.id));
        t.insert("group".into(), text(&self.group));
        t.insert("kind".into(), text(&self.kind));
        t.insert("address".into(), text(&self.address));
        for (k, v) in [
            ("interval", &self.interval),
            ("timeout", &self.timeout),
            ("label", &self.label),
        ] {
            if let Some(v) = v {
                t.insert(k.into(), text(v));
            }
        }
        for kv in &self.set {
            let (key, value) = kv.split_once('=').ok_or_else(|| {
                TargetCliError::Usage(format!("--set {kv}: tulis KUNCI=NILAI / write KEY=VALUE"))
            })?;
            let value = format!("v = {value}")
                .parse::<TomlTable>()
                .ok()
                .and_then(|mut v| v.remove("v"))
                .unwrap_or_else(|| text(value));
            insert_dotted(&mut t, key.trim(), value)?;
        }
        Ok(t)
    }
}

fn insert_dotted(t: &mut TomlTable, key: &str, value: TomlValue) -> Result<(), TargetCliError> {
    match key.split_once('.') {
        None => {
            t.insert(key.into(), value);
            Ok(())
        }
        Some((head, rest)) => {
            let entry = t
                .entry(head.to_string())
                .or_insert_with(|| TomlValue::Table(TomlTable::new()));
            match entry {
                TomlValue::Table(inner) => insert_dotted(inner, rest, value),
                _ => Err(TargetCliError::Usage(format!(
                    "--set {key}: `{head}` bukan tabel / is not a table"
                ))),
            }
        }
    }
}

/// Run a `target` command as the unix user (`Actor::cli`).
pub fn target(
    cfg: &CollectorConfig,
    cmd: TargetCmd,
    out: &mut dyn Write,
) -> Result<(), TargetCliError> {
    let store = crate::cli::open_store(cfg)?;
    let store = &*store;
    let actor = Actor::cli();
    let changed = |out: &mut dyn Write, revision: i64| {
        writeln!(
            out,
            "Tersimpan sebagai revisi {revision}; agen menerapkannya dalam beberapa detik / \
             stored as revision {revision}; agents apply it within seconds"
        )
    };
    match cmd {
        TargetCmd::Add(d) => {
            let r = fleet::add(store, &actor, &Scope::parse(&d.scope)?, &d.table()?)?;
            changed(out, r)?;
        }
        TargetCmd::Set(d) => {
            let r = fleet::set(store, &actor, &Scope::parse(&d.scope)?, &d.table()?)?;
            changed(out, r)?;
        }
        TargetCmd::Remove { scope, id } => {
            let r = fleet::remove(store, &actor, &Scope::parse(&scope)?, &id)?;
            changed(out, r)?;
        }
        TargetCmd::Import { scope, file } => {
            let text = std::fs::read_to_string(&file).map_err(|source| TargetCliError::File {
                path: file.clone(),
                source,
            })?;
            let r = fleet::import(store, &actor, &Scope::parse(&scope)?, &text)?;
            changed(out, r)?;
        }
        TargetCmd::Policy {
            scope,
            local_targets,
        } => {
            let allow = match local_targets.as_str() {
                "allow" => Some(true),
                "deny" => Some(false),
                "inherit" => None,
                other => {
                    return Err(TargetCliError::Usage(format!(
                        "--local-targets {other}: pilih / choose allow, deny or inherit"
                    )));
                }
            };
            let r = fleet::set_policy(store, &actor, &Scope::parse(&scope)?, allow)?;
            changed(out, r)?;
        }
        TargetCmd::List => {
            for e in store.fleet_targets()? {
                match &e.definition {
                    Some(d) => writeln!(
                        out,
                        "{}\t{}\t{}",
                        e.scope,
                        e.target_id,
                        d.replace('\n', " ")
                    )?,
                    None => writeln!(out, "{}\t{}\tdihapus/removed", e.scope, e.target_id)?,
                }
            }
            for p in store.fleet_policies()? {
                let v = if p.local_targets { "allow" } else { "deny" };
                writeln!(out, "{}\tlocal_targets={v}", p.scope)?;
            }
            for r in store.fleet_history()? {
                writeln!(
                    out,
                    "revisi/revision {}\t{}\t{}\t{}",
                    r.revision,
                    crate::cli::admin::when(Some(r.time_ms)),
                    r.actor,
                    r.summary
                )?;
            }
        }
        TargetCmd::ShowEffective { agent } => {
            let opd = store
                .agents()?
                .into_iter()
                .find(|a| a.id == agent)
                .map(|a| a.opd)
                .ok_or_else(|| FleetError::Unregistered(format!("agent:{agent}")))?;
            let e = fleet::effective(store, &agent, &opd)?;
            writeln!(out, "# version = {}", e.version)?;
            writeln!(out, "# sha256 = {}", e.sha256)?;
            writeln!(
                out,
                "# local_targets = {}",
                if e.local_targets { "allow" } else { "deny" }
            )?;
            for (id, scope) in &e.origin {
                writeln!(out, "# {id} <- {scope}")?;
            }
            write!(out, "{}", e.targets_toml)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(set: &[&str]) -> Definition {
        Definition {
            scope: "province".into(),
            id: "web".into(),
            group: "app".into(),
            kind: "http".into(),
            address: "https://10.0.0.1/".into(),
            interval: Some("1m".into()),
            timeout: None,
            label: None,
            set: set.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn set_values_are_toml_or_text_and_dotted_keys_make_tables() {
        let t = def(&[
            "expect_status=[200, \"300-302\"]",
            "ca_file=/etc/pantau/ca.pem",
            "follow_redirects=false",
            "bandwidth.streams=2",
        ])
        .table()
        .unwrap();
        assert_eq!(t["interval"].as_str(), Some("1m"));
        assert_eq!(t["ca_file"].as_str(), Some("/etc/pantau/ca.pem"));
        assert_eq!(t["follow_redirects"].as_bool(), Some(false));
        assert_eq!(t["expect_status"].as_array().map(Vec::len), Some(2));
        assert_eq!(t["bandwidth"]["streams"].as_integer(), Some(2));
        assert!(matches!(
            def(&["no-equals"]).table(),
            Err(TargetCliError::Usage(_))
        ));
        assert!(matches!(
            def(&["id.x=1"]).table(),
            Err(TargetCliError::Usage(m)) if m.contains("not a table")
        ));
    }
}
