//! Conformance checks of [`Fleet`](crate::store::Fleet): central target
//! definitions per scope, removal markers, scope replacement, policies, the
//! gap-free revision history and the agents' reported status.

use crate::store::Store;
use crate::store::fleet::{ConfigStatus, FleetChange, ScopedTarget};

fn entry(scope: &str, id: &str, def: Option<&str>) -> ScopedTarget {
    ScopedTarget {
        scope: scope.into(),
        target_id: id.into(),
        definition: def.map(Into::into),
    }
}

/// Every change is one revision; entries are replaced by (scope, id);
/// a scope import replaces only that scope.
pub fn fleet_definitions_revisions_and_status(s: &dyn Store) {
    assert_eq!(s.fleet_revision().unwrap(), 0);
    assert!(s.fleet_targets().unwrap().is_empty());
    let pd = entry("province", "pusat-data", Some("id = \"pusat-data\""));
    assert_eq!(
        s.fleet_change(&FleetChange::Put(pd.clone()), 10, "cli-user:root", "add")
            .unwrap(),
        1
    );
    let changed = entry("province", "pusat-data", Some("id = \"pusat-data\"\n# v2"));
    let r2 = s
        .fleet_change(
            &FleetChange::Put(changed.clone()),
            11,
            "cli-user:root",
            "set",
        )
        .unwrap();
    assert_eq!(r2, 2);
    let removed = entry("agent:a1", "pusat-data", None);
    s.fleet_change(
        &FleetChange::Put(removed.clone()),
        12,
        "web-user:admin",
        "remove",
    )
    .unwrap();
    s.fleet_change(
        &FleetChange::ReplaceScope {
            scope: "opd:dinkes".into(),
            entries: vec![entry("opd:dinkes", "simpeg", Some("id = \"simpeg\""))],
        },
        13,
        "cli-user:root",
        "import",
    )
    .unwrap();
    s.fleet_change(
        &FleetChange::ReplaceScope {
            scope: "opd:dinkes".into(),
            entries: vec![entry("opd:dinkes", "sikda", Some("id = \"sikda\""))],
        },
        14,
        "cli-user:root",
        "import",
    )
    .unwrap();
    assert_eq!(
        s.fleet_targets().unwrap(),
        vec![
            removed,
            entry("opd:dinkes", "sikda", Some("id = \"sikda\"")),
            changed
        ]
    );
    s.fleet_change(
        &FleetChange::Delete {
            scope: "agent:a1".into(),
            target_id: "pusat-data".into(),
        },
        15,
        "cli-user:root",
        "delete",
    )
    .unwrap();
    assert_eq!(s.fleet_targets().unwrap().len(), 2);
    let policy = |allow| FleetChange::Policy {
        scope: "opd:dinkes".into(),
        local_targets: allow,
    };
    s.fleet_change(&policy(Some(false)), 16, "cli-user:root", "policy")
        .unwrap();
    let p = s.fleet_policies().unwrap();
    assert_eq!((p.len(), p[0].local_targets), (1, false));
    s.fleet_change(&policy(None), 17, "cli-user:root", "policy")
        .unwrap();
    assert!(s.fleet_policies().unwrap().is_empty());
    assert_eq!(s.fleet_revision().unwrap(), 8);
    let h = s.fleet_history().unwrap();
    let numbers: Vec<i64> = h.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    assert_eq!(
        (h[2].time_ms, h[2].actor.as_str(), h[2].summary.as_str()),
        (12, "web-user:admin", "remove")
    );

    assert!(s.config_statuses().unwrap().is_empty());
    let st = ConfigStatus {
        version: 2,
        sha256: "ab".into(),
        error: String::new(),
        reported_at_ms: 20,
    };
    s.record_config_status("a1", &st).unwrap();
    let failed = ConfigStatus {
        error: "targets[0].ca_file: missing".into(),
        reported_at_ms: 21,
        ..st
    };
    s.record_config_status("a1", &failed).unwrap();
    assert_eq!(
        s.config_statuses().unwrap(),
        vec![("a1".to_string(), failed)]
    );
}
