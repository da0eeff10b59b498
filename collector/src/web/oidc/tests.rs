//! The ID-token verifier and the role mapping, with keys made here.

use super::*;
use crate::config::Secret;
use jsonwebtoken::{EncodingKey, Header};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

const ISS: &str = "https://sso.example.go.id/realms/pemprov";
const NOW: u64 = 1_800_000_000;

/// A P-256 key: its encoding key and its public JWK with `kid`.
fn key(kid: &str) -> (EncodingKey, Value) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": b64url(&public[1..33]), "y": b64url(&public[33..65]),
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

fn keys(jwks: &[Value]) -> Keys {
    Keys::parse(json!({ "keys": jwks }).to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "pantau", "sub": "user-1", "nonce": "n-1",
        "iat": NOW - 5, "exp": NOW + 300, "groups": ["pantau-admin"],
    })
}

fn sign(enc: &EncodingKey, kid: &str, c: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, c, enc).unwrap()
}

fn verify(token: &str, k: &Keys) -> Result<IdClaims, OidcError> {
    verify_id_token(token, k, ISS, "pantau", "n-1", NOW)
}

#[test]
fn a_good_token_verifies_and_every_tampering_is_refused() {
    let (enc, jwk) = key("k1");
    let k = keys(&[jwk]);
    let ok = verify(&sign(&enc, "k1", &claims()), &k).unwrap();
    assert_eq!(ok.subject, "user-1");
    assert_eq!(claim_values(&ok.claims, "groups"), vec!["pantau-admin"]);

    let with = |key: &str, v: Value| {
        let mut c = claims();
        c[key] = v;
        verify(&sign(&enc, "k1", &c), &k)
    };
    // Another client's token.
    assert!(matches!(
        with("aud", json!("grafana")),
        Err(OidcError::Token(_))
    ));
    // Another issuer.
    assert!(matches!(
        with("iss", json!("https://evil.example")),
        Err(OidcError::Token(_))
    ));
    // Expired beyond the skew; within the skew it passes.
    assert!(with("exp", json!(NOW - 120)).is_err());
    assert!(with("exp", json!(NOW - 30)).is_ok());
    // Issued in the future.
    assert!(matches!(
        with("iat", json!(NOW + 600)),
        Err(OidcError::Claim(_))
    ));
    // A replayed token of another sign-in.
    assert!(matches!(
        with("nonce", json!("n-2")),
        Err(OidcError::Claim(_))
    ));
    // Several audiences: `azp` must be this client.
    assert!(matches!(
        with("aud", json!(["pantau", "grafana"])),
        Err(OidcError::Claim(_))
    ));
    let mut c = claims();
    c["aud"] = json!(["pantau", "grafana"]);
    c["azp"] = json!("pantau");
    assert!(verify(&sign(&enc, "k1", &c), &k).is_ok());
    // No subject.
    let mut c = claims();
    c.as_object_mut().unwrap().remove("sub");
    assert!(verify(&sign(&enc, "k1", &c), &k).is_err());
}

#[test]
fn foreign_keys_unknown_kids_and_other_algorithms_are_refused() {
    let (enc, jwk) = key("k1");
    let (other, _) = key("k1");
    let k = keys(std::slice::from_ref(&jwk));
    // Same kid, another key: the signature fails.
    assert!(matches!(
        verify(&sign(&other, "k1", &claims()), &k),
        Err(OidcError::Token(_))
    ));
    // A kid the provider does not publish.
    assert!(matches!(
        verify(&sign(&enc, "k9", &claims()), &k),
        Err(OidcError::UnknownKey(kid)) if kid == "k9"
    ));
    // HS256 with the public key's bytes as the secret (the classic confusion).
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("k1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(),
        &EncodingKey::from_secret(jwk["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    assert!(matches!(
        verify(&hs, &k),
        Err(OidcError::Algorithm(Algorithm::HS256))
    ));
    // Not a JWT at all.
    assert!(verify("a.b.c", &k).is_err());
    // Encryption keys and unknown key types are skipped, not fatal.
    let mixed = keys(&[
        json!({"kty": "weird"}),
        json!({"use": "enc", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": "k1"}),
        jwk,
    ]);
    assert!(verify(&sign(&enc, "k1", &claims()), &mixed).is_ok());
}

fn cfg(roles: &[(&str, OidcGrant)]) -> OidcConfig {
    OidcConfig {
        issuer: ISS.into(),
        client_id: "pantau".into(),
        client_secret: Secret("s".into()),
        redirect_url: None,
        scopes: vec!["openid".into()],
        claim: "groups".into(),
        roles: roles
            .iter()
            .map(|(v, g)| (v.to_string(), g.clone()))
            .collect(),
        require_verified_email: false,
        label: "SSO".into(),
        timeout: Duration::from_secs(5),
    }
}

#[test]
fn groups_map_to_the_strongest_role_and_every_mapped_opd() {
    let c = cfg(&[
        ("pantau-admin", OidcGrant::Role(Role::Admin)),
        ("pantau-eval", OidcGrant::Role(Role::Evaluator)),
        ("pantau-view", OidcGrant::Role(Role::Viewer)),
        ("opd-dinkes", OidcGrant::Opd("dinkes".into())),
        ("opd-bappeda", OidcGrant::Opd("bappeda".into())),
    ]);
    let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        map_role(&c, &v(&["pantau-admin", "opd-dinkes"])),
        Some((Role::Admin, vec![]))
    );
    assert_eq!(
        map_role(
            &c,
            &v(&["opd-dinkes", "opd-bappeda", "pantau-view", "other"])
        ),
        Some((Role::Opd, vec!["bappeda".into(), "dinkes".into()]))
    );
    assert_eq!(
        map_role(&c, &v(&["pantau-view"])),
        Some((Role::Viewer, vec![]))
    );
    assert_eq!(
        map_role(&c, &v(&["pantau-eval", "pantau-view"])),
        Some((Role::Evaluator, vec![]))
    );
    assert_eq!(map_role(&c, &v(&["Pantau-Admin", "staff"])), None);
    assert_eq!(map_role(&c, &[]), None);
    // A dotted claim walks into objects; a single string counts too.
    let claims = json!({"realm_access": {"roles": ["a", "b", 3]}, "group": "x"});
    assert_eq!(claim_values(&claims, "realm_access.roles"), vec!["a", "b"]);
    assert_eq!(claim_values(&claims, "group"), vec!["x"]);
    assert!(claim_values(&claims, "missing.deeper").is_empty());
}

#[test]
fn login_link_only_when_configured_and_secrets_never_print() {
    let mut w = WebConfig::default();
    assert_eq!(login_link(&w), None);
    w.oidc = Some(cfg(&[]));
    let (href, label) = login_link(&w).unwrap();
    assert_eq!(href, "/login/oidc");
    assert_eq!(label, "Masuk dengan SSO / Sign in with SSO");
    let mut c = cfg(&[]);
    c.client_secret = Secret("sangat-rahasia".into());
    assert!(!format!("{c:?}").contains("sangat-rahasia"));
    assert_eq!(form_enc("a b/c+d"), "a+b%2Fc%2Bd");
    assert_eq!(crate::web::auth::safe_next(Some("//evil.example")), "/");
}
