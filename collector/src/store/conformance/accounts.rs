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

/// OpenID Connect sign-in: a new (issuer, subject) creates a password-less
/// account under a free name (never a local account's), a second sign-in
/// finds it again and applies the newly mapped role (ending its sessions),
/// and another issuer with the same subject is another user.
pub fn oidc_sign_in_links_and_maps(s: &dyn Store) {
    use crate::store::accounts::{OIDC_NO_PASSWORD, OidcIdentity};
    s.add_account(&user("ani", Role::Admin)).unwrap();
    let id = OidcIdentity {
        issuer: "https://sso.example".into(),
        subject: "s-1".into(),
        preferred_name: "ani".into(),
        role: Role::Opd,
        opds: vec!["dinkes".into()],
    };
    let first = s.oidc_sign_in(&id, 10).unwrap();
    assert_eq!(first.before, None);
    assert_eq!(
        first.account.name, "ani-2",
        "a local account's name is never taken over"
    );
    assert_eq!(first.account.password_hash, OIDC_NO_PASSWORD);
    assert_eq!(s.account("ani").unwrap().unwrap(), user("ani", Role::Admin));
    assert_eq!(s.account("ani-2").unwrap().unwrap(), first.account);
    assert_eq!(
        s.oidc_account("https://sso.example", "s-1")
            .unwrap()
            .as_deref(),
        Some("ani-2")
    );
    s.add_session(&[7; 32], "ani-2", "c", 10, 0).unwrap();
    // Same role again: the session stays.
    let again = s.oidc_sign_in(&id, 20).unwrap();
    assert_eq!(again.account, first.account);
    assert!(s.session(&[7; 32], 0, 0).unwrap().is_some());
    // The provider now says evaluator: role changes, sessions end.
    let promoted = OidcIdentity {
        role: Role::Evaluator,
        opds: vec![],
        preferred_name: "renamed".into(),
        ..id.clone()
    };
    let third = s.oidc_sign_in(&promoted, 30).unwrap();
    assert_eq!(third.account.name, "ani-2");
    assert_eq!(third.account.role, Role::Evaluator);
    assert_eq!(third.before.as_ref().map(|b| b.role), Some(Role::Opd));
    assert_eq!(s.account("ani-2").unwrap().unwrap().role, Role::Evaluator);
    assert_eq!(s.session(&[7; 32], 0, 0).unwrap(), None);
    // Another provider's "s-1" is someone else.
    let other = OidcIdentity {
        issuer: "https://other.example".into(),
        ..id.clone()
    };
    assert_eq!(s.oidc_sign_in(&other, 40).unwrap().account.name, "ani-3");
    assert_eq!(
        s.oidc_account("https://nobody.example", "s-1").unwrap(),
        None
    );
    // Removing the account drops the link: the next sign-in starts afresh.
    assert!(s.remove_account("ani-2").unwrap());
    assert_eq!(s.oidc_account("https://sso.example", "s-1").unwrap(), None);
    let fresh = s.oidc_sign_in(&id, 50).unwrap();
    assert_eq!(fresh.before, None);
    assert_eq!(fresh.account.name, "ani-2");
}
