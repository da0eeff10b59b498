//! The admin console's store writes: an OPD's rename and life cycle
//! (disable, enable, remove with its history kept) and a user's role change.

use crate::store::accounts::{Account, Role};
use crate::store::registry::OpdState;
use crate::store::{Store, StoreError};

/// Rename, disable (its agents refused, no new ones), enable, remove
/// (gone from the status listings, still in the admin list, no new
/// agents), and a role change that ends the user's sessions.
pub fn opd_life_cycle_and_role_change(s: &dyn Store) {
    s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
    s.add_opd("dishub", "Dinas Perhubungan").unwrap();
    s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
    assert_eq!(
        s.rename_opd("dinkes", "Dinkes Provinsi").unwrap(),
        "Dinas Kesehatan"
    );
    assert_eq!(
        s.opd_name("dinkes").unwrap().as_deref(),
        Some("Dinkes Provinsi")
    );
    assert!(matches!(s.rename_opd("nope", "x"), Err(StoreError::UnknownOpd(o)) if o == "nope"));

    assert_eq!(
        s.set_opd_state("dinkes", OpdState::Disabled).unwrap(),
        OpdState::Active
    );
    assert!(
        s.agent_by_token(&[1; 32]).unwrap().is_none(),
        "agents of a disabled OPD are refused"
    );
    let c = s.credential_of("a1").unwrap().unwrap();
    assert!(c.disabled, "an open stream sees its OPD disabled");
    assert!(matches!(
        s.add_agent("a2", "dinkes", &[2; 32]),
        Err(StoreError::OpdInactive(o)) if o == "dinkes"
    ));
    assert_eq!(
        s.set_opd_state("dinkes", OpdState::Active).unwrap(),
        OpdState::Disabled
    );
    assert!(s.agent_by_token(&[1; 32]).unwrap().is_some());
    assert!(!s.credential_of("a1").unwrap().unwrap().disabled);

    assert_eq!(
        s.set_opd_state("dishub", OpdState::Removed).unwrap(),
        OpdState::Active
    );
    let listed: Vec<String> = s.opds().unwrap().into_iter().map(|o| o.id).collect();
    assert_eq!(
        listed,
        ["dinkes"],
        "a removed OPD leaves the status listing"
    );
    let infos = s.opd_infos().unwrap();
    let states: Vec<(&str, OpdState)> = infos.iter().map(|o| (o.id.as_str(), o.state)).collect();
    assert_eq!(
        states,
        [("dinkes", OpdState::Active), ("dishub", OpdState::Removed)]
    );
    assert_eq!(
        (infos[0].agents, infos[0].name.as_str()),
        (1, "Dinkes Provinsi")
    );
    assert!(matches!(
        s.add_agent("a3", "dishub", &[3; 32]),
        Err(StoreError::OpdInactive(_))
    ));
    assert!(matches!(
        s.set_opd_state("nope", OpdState::Removed),
        Err(StoreError::UnknownOpd(_))
    ));
    assert_eq!(
        s.opd_name("dishub").unwrap().as_deref(),
        Some("Dinas Perhubungan"),
        "kept"
    );

    s.add_account(&Account {
        name: "ani".into(),
        role: Role::Viewer,
        opds: vec![],
        password_hash: "x".into(),
        disabled: false,
        created_at_ms: 1,
    })
    .unwrap();
    s.add_session(&[7; 32], "ani", "csrf", 10, 0).unwrap();
    assert!(s.session(&[7; 32], 0, 0).unwrap().is_some());
    assert!(
        s.set_role("ani", Role::Opd, &["dinkes".to_string()])
            .unwrap()
    );
    let a = s.account("ani").unwrap().unwrap();
    assert_eq!((a.role, a.opds), (Role::Opd, vec!["dinkes".to_string()]));
    assert!(
        s.session(&[7; 32], 0, 0).unwrap().is_none(),
        "a role change ends the sessions"
    );
    assert!(!s.set_role("nobody", Role::Admin, &[]).unwrap());
}
