//! Conformance checks of [`ClientCerts`](crate::store::ClientCerts): client
//! certificates recorded by serial, superseded by a renewal, revoked, and
//! agents whose credential is revoked blocked whatever their certificate.

use crate::store::Store;
use crate::store::registry::CredentialChange;

/// Record, supersede, revoke; a disabled agent is not blocked (its token
/// check refuses it), a revoked one is.
pub fn client_certs_supersede_revoke_and_block(s: &dyn Store) {
    s.add_opd("dinkes", "Dinas Kesehatan").unwrap();
    s.add_agent("a1", "dinkes", &[1; 32]).unwrap();
    s.record_client_cert("a1", "01aa", 1, 100).unwrap();
    s.record_client_cert("a1", "02bb", 2, 200).unwrap();
    let mut r = s.cert_refusals().unwrap();
    r.active.sort();
    assert_eq!(
        r.active,
        vec![
            ("01aa".to_string(), "a1".to_string()),
            ("02bb".to_string(), "a1".to_string())
        ]
    );
    assert!(r.revoked.is_empty());
    // A serial is recorded once; an unknown agent has no certificate.
    assert!(s.record_client_cert("a1", "01aa", 3, 300).is_err());
    assert!(s.record_client_cert("nope", "03cc", 3, 300).is_err());
    assert_eq!(s.supersede_client_certs("a1", "02bb", 3).unwrap(), 1);
    assert_eq!(s.supersede_client_certs("a1", "02bb", 3).unwrap(), 0);
    let r = s.cert_refusals().unwrap();
    assert_eq!(r.active, vec![("02bb".to_string(), "a1".to_string())]);
    assert_eq!(r.revoked, vec!["01aa".to_string()]);
    assert!(r.blocked_agents.is_empty());
    assert!(s.revoke_client_cert("02bb", 4).unwrap());
    assert!(!s.revoke_client_cert("ffff", 4).unwrap());
    let mut r = s.cert_refusals().unwrap();
    r.revoked.sort();
    assert!(r.active.is_empty());
    assert_eq!(r.revoked, vec!["01aa".to_string(), "02bb".to_string()]);
    s.change_credential("a1", &CredentialChange::Disable)
        .unwrap();
    assert!(s.cert_refusals().unwrap().blocked_agents.is_empty());
    s.change_credential("a1", &CredentialChange::Revoke)
        .unwrap();
    assert_eq!(s.cert_refusals().unwrap().blocked_agents, vec!["a1"]);
}
