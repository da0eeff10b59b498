//! Events from the store that dashboards show as annotations and panels,
//! published with the availability figures (after each rollup refresh):
//!
//! - `pantau_maintenance_active{opd,group}`: 1 while a recorded maintenance
//!   window covers now (`opd="all"` / `group="all"` for a window without
//!   one); absent otherwise.
//! - `pantau_path_changes{opd,agent,target,window="1d"}`: paths first seen
//!   in the last 24 hours that replaced another one (traceroute targets);
//!   absent when the path did not change.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use prometheus::{IntGaugeVec, Opts, Registry};

use crate::report::time::DAY_MS;
use crate::store::StoreError;
use crate::store::report::{PathFilter, ReportRead};

/// Label value of a maintenance window that covers every OPD or group.
pub const ALL: &str = "all";

/// Label sets of the series a family holds.
type Series = BTreeSet<Vec<String>>;

/// The two families and the series last published.
#[derive(Debug)]
pub struct Events {
    maintenance: IntGaugeVec,
    path_changes: IntGaugeVec,
    published: Mutex<(Series, Series)>,
}

impl Events {
    /// Create and register the families.
    pub fn register(r: &Registry) -> Self {
        let maintenance = IntGaugeVec::new(
            Opts::new(
                "pantau_maintenance_active",
                "1 while a recorded maintenance window covers now (opd or group \"all\": the window names none). Absent outside maintenance.",
            ),
            &["opd", "group"],
        )
        .expect("valid metric");
        let path_changes = IntGaugeVec::new(
            Opts::new(
                "pantau_path_changes",
                "Network paths (traceroute) first seen within the window that replaced an earlier path. Absent when the path did not change.",
            ),
            &["opd", "agent", "target", "window"],
        )
        .expect("valid metric");
        for f in [&maintenance, &path_changes] {
            r.register(Box::new(f.clone()))
                .expect("metric names are unique");
        }
        Events {
            maintenance,
            path_changes,
            published: Mutex::default(),
        }
    }

    /// Recompute both families from `conn` at `now_ms`.
    pub fn publish(&self, conn: &dyn ReportRead, now_ms: i64) -> Result<(), StoreError> {
        let mut active: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        for m in conn.maintenance(None, Some((now_ms, now_ms + 1)))? {
            if m.from_ms <= now_ms && now_ms < m.to_ms {
                let opd = m.opd.unwrap_or_else(|| ALL.into());
                let group = m.group.unwrap_or_else(|| ALL.into());
                active.insert(vec![opd, group], 1);
            }
        }
        let mut changes: BTreeMap<Vec<String>, i64> = BTreeMap::new();
        let recent = PathFilter {
            from_ms: Some(now_ms - DAY_MS),
            ..PathFilter::default()
        };
        for p in conn.paths(&recent)? {
            if p.previous_id.is_some() && p.first_seen_ms >= now_ms - DAY_MS {
                *changes
                    .entry(vec![p.opd, p.agent, p.target, "1d".into()])
                    .or_default() += 1;
            }
        }
        let mut published = self.published.lock().unwrap_or_else(|p| p.into_inner());
        published.0 = replace(&self.maintenance, &published.0, active);
        published.1 = replace(&self.path_changes, &published.1, changes);
        Ok(())
    }
}

/// Set every series of `now` and remove those of `before` that are gone;
/// returns the label sets now published.
fn replace(family: &IntGaugeVec, before: &Series, now: BTreeMap<Vec<String>, i64>) -> Series {
    for (labels, v) in &now {
        let l: Vec<&str> = labels.iter().map(String::as_str).collect();
        family.with_label_values(&l).set(*v);
    }
    let keys: Series = now.into_keys().collect();
    for gone in before.difference(&keys) {
        let l: Vec<&str> = gone.iter().map(String::as_str).collect();
        let _ = family.remove_label_values(&l);
    }
    keys
}
