//! Agent tokens: generated once, stored only as SHA-256, compared in
//! constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix that makes a Pantau token recognisable in a config file.
pub const TOKEN_PREFIX: &str = "pantau_";

/// A new random token: prefix + 64 hex characters (256 bits).
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// SHA-256 of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time comparison of a presented token with a stored digest.
pub fn matches(token: &str, stored: &[u8]) -> bool {
    stored.len() == 32 && bool::from(digest(token).as_slice().ct_eq(stored))
}

/// Extract the token from an `authorization: Bearer <token>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let t = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!t.is_empty() && t.len() <= 256).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_verify_only_against_their_digest() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert!(matches(&a, &digest(&a)));
        assert!(!matches(&b, &digest(&a)));
        assert!(!matches(&a, &digest(&a)[..31]));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
