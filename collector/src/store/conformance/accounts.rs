//! Conformance checks of [`Accounts`](crate::store::Accounts): web users,
//! sessions, API tokens and the signed-report register.

use crate::store::accounts::{Account, ApiToken, Role, SignedReport};
use crate::store::{Store, StoreError};

fn user(name: &str, role: Role) -> Account {
    Account {
        name: name.into(),
        role,
        opds: vec!["dinkes".into(), "bappeda".into()],
        password_hash: "$argon2id$x".into(),
        disabled: false,
        created_at_ms: 1,
    }
}

/// Accounts, sessions (idle, absolute and purge), disabling, API tokens
/// and the signed-report register.
pub fn accounts_sessions_tokens_and_register(s: &dyn Store) {
    s.add_account(&user("ani", Role::Opd)).unwrap();
    assert!(matches!(
        s.add_account(&user("ani", Role::Admin)),
        Err(StoreError::Exists(_))
    ));
    assert_eq!(s.account("ani").unwrap().unwrap(), user("ani", Role::Opd));
    s.add_session(&[9; 32], "ani", "c", 10, 0).unwrap();
    // A new login purges sessions past the absolute limit.
    s.add_session(&[1; 32], "ani", "c", 100, 50).unwrap();
    assert_eq!(s.session(&[9; 32], 0, 0).unwrap(), None);
    let live = s.session(&[1; 32], 50, 50).unwrap().unwrap();
    assert_eq!(live.account.opds, vec!["dinkes", "bappeda"]);
    assert_eq!(live.csrf, "c");
    // Idle beyond the limit: gone, and deleted.
    assert_eq!(s.session(&[1; 32], 100, 0).unwrap(), None);
    assert_eq!(s.session(&[1; 32], 0, 0).unwrap(), None);
    s.add_session(&[2; 32], "ani", "c", 100, 0).unwrap();
    assert!(s.set_disabled("ani", true).unwrap());
    assert_eq!(s.session(&[2; 32], 0, 0).unwrap(), None);
    assert!(s.remove_account("ani").unwrap());
    assert!(!s.remove_account("ani").unwrap());

    let t = ApiToken {
        name: "prom".into(),
        role: Role::Scrape,
        opds: vec![],
        created_at_ms: 5,
        revoked_at_ms: None,
    };
    s.add_api_token(&t, &[7; 32]).unwrap();
    assert!(matches!(
        s.add_api_token(&t, &[8; 32]),
        Err(StoreError::Exists(_))
    ));
    assert_eq!(s.api_token(&[7; 32]).unwrap(), Some(t));
    assert!(s.revoke_api_token("prom", 9).unwrap());
    assert_eq!(s.api_token(&[7; 32]).unwrap(), None);
    assert_eq!(s.api_tokens().unwrap()[0].revoked_at_ms, Some(9));

    let r = SignedReport {
        number: "870/PALSU".into(),
        number_given: true,
        issued: "2026-12-04".into(),
        issued_given: false,
        from: "2026-11-01".into(),
        to: "2026-11-30".into(),
        scope: "provinsi".into(),
        format: "pdf".into(),
        sha256: "ab".into(),
        requester: "user eva".into(),
        role: "evaluator".into(),
        source: "127.0.0.1".into(),
        at_ms: 3,
    };
    s.record_signed_report(&r).unwrap();
    assert_eq!(s.signed_reports().unwrap(), vec![r]);
}
