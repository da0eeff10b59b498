//! SNMP v3 User-based Security Model (RFC 3414) primitives: password to key,
//! key localisation, message authentication and AES privacy (RFC 3826).
//!
//! Only the protocols that are still safe are here: HMAC-SHA-96 (SHA-1,
//! RFC 3414), HMAC-SHA-256-192 (RFC 7860) and AES-128-CFB (RFC 3826). MD5 and
//! DES are left out on purpose: both are broken, and every router that speaks
//! SNMP v3 today also speaks SHA and AES.
//!
//! Everything here is pure: the message layout lives in [`super::snmp`].

use aes::cipher::{AsyncStreamCipher, KeyIvInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Authentication protocol of a USM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthProtocol {
    /// usmHMACSHAAuthProtocol: HMAC-SHA-1 truncated to 96 bits.
    Sha1,
    /// usmHMAC192SHA256AuthProtocol: HMAC-SHA-256 truncated to 192 bits.
    Sha256,
}

/// Privacy protocol of a USM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivProtocol {
    /// usmAesCfb128Protocol.
    Aes128,
}

impl From<pantau_core::probe::AuthProtocol> for AuthProtocol {
    fn from(p: pantau_core::probe::AuthProtocol) -> Self {
        match p {
            pantau_core::probe::AuthProtocol::Sha1 => AuthProtocol::Sha1,
            pantau_core::probe::AuthProtocol::Sha256 => AuthProtocol::Sha256,
        }
    }
}

impl From<pantau_core::probe::PrivProtocol> for PrivProtocol {
    fn from(p: pantau_core::probe::PrivProtocol) -> Self {
        match p {
            pantau_core::probe::PrivProtocol::Aes128 => PrivProtocol::Aes128,
        }
    }
}

/// Bytes of password stretched into the master key (RFC 3414 A.2).
const EXPANSION: usize = 1_048_576;

impl AuthProtocol {
    /// Length of msgAuthenticationParameters on the wire.
    pub fn mac_len(self) -> usize {
        match self {
            AuthProtocol::Sha1 => 12,
            AuthProtocol::Sha256 => 24,
        }
    }

    /// The name used in the configuration and in net-snmp's tools.
    pub fn name(self) -> &'static str {
        match self {
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha256 => "SHA-256",
        }
    }

    fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        match self {
            AuthProtocol::Sha1 => {
                let mut h = Sha1::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
            AuthProtocol::Sha256 => {
                let mut h = Sha256::new();
                parts.iter().for_each(|p| h.update(p));
                h.finalize().to_vec()
            }
        }
    }

    /// The user's master key Ku: the hash of the password repeated to 1 MiB
    /// (RFC 3414 A.2). Slow on purpose; compute once per user.
    pub fn password_to_key(self, password: &[u8]) -> Vec<u8> {
        assert!(!password.is_empty(), "empty SNMP password");
        // 64-byte chunks of the endless password, as in the RFC's sample code.
        let mut chunk = [0u8; 64];
        let mut at = 0usize;
        let mut fill = |chunk: &mut [u8; 64]| {
            for b in chunk.iter_mut() {
                *b = password[at % password.len()];
                at += 1;
            }
        };
        match self {
            AuthProtocol::Sha1 => {
                let mut h = Sha1::new();
                for _ in 0..EXPANSION / 64 {
                    fill(&mut chunk);
                    h.update(chunk);
                }
                h.finalize().to_vec()
            }
            AuthProtocol::Sha256 => {
                let mut h = Sha256::new();
                for _ in 0..EXPANSION / 64 {
                    fill(&mut chunk);
                    h.update(chunk);
                }
                h.finalize().to_vec()
            }
        }
    }

    /// The key localised to one engine: H(Ku || engineID || Ku).
    pub fn localize(self, ku: &[u8], engine_id: &[u8]) -> Vec<u8> {
        self.hash(&[ku, engine_id, ku])
    }

    /// msgAuthenticationParameters for `whole_msg`, which must carry zeros
    /// in that field while it is computed.
    pub fn mac(self, key: &[u8], whole_msg: &[u8]) -> Vec<u8> {
        let mut full = match self {
            AuthProtocol::Sha1 => {
                let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(whole_msg);
                m.finalize().into_bytes().to_vec()
            }
            AuthProtocol::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(whole_msg);
                m.finalize().into_bytes().to_vec()
            }
        };
        full.truncate(self.mac_len());
        full
    }

    /// Whether `mac` authenticates `whole_msg` (zeros in the field), in
    /// constant time.
    pub fn verify(self, key: &[u8], whole_msg: &[u8], mac: &[u8]) -> bool {
        if mac.len() != self.mac_len() {
            return false;
        }
        match self {
            AuthProtocol::Sha1 => {
                let mut m = <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(whole_msg);
                m.verify_truncated_left(mac).is_ok()
            }
            AuthProtocol::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
                m.update(whole_msg);
                m.verify_truncated_left(mac).is_ok()
            }
        }
    }
}

type AesCfbEnc = cfb_mode::Encryptor<aes::Aes128>;
type AesCfbDec = cfb_mode::Decryptor<aes::Aes128>;

/// RFC 3826 3.1.2.1: IV = engineBoots || engineTime || salt (64 bits).
fn aes_iv(boots: u32, time: u32, salt: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..4].copy_from_slice(&boots.to_be_bytes());
    iv[4..8].copy_from_slice(&time.to_be_bytes());
    iv[8..].copy_from_slice(salt);
    iv
}

/// Encrypt a scoped PDU with AES-128-CFB; `priv_key` is the localised
/// privacy key (its first 16 bytes are the AES key).
pub fn aes_encrypt(priv_key: &[u8], boots: u32, time: u32, salt: &[u8; 8], data: &[u8]) -> Vec<u8> {
    let mut buf = data.to_vec();
    AesCfbEnc::new_from_slices(&priv_key[..16], &aes_iv(boots, time, salt))
        .expect("16-byte key and IV")
        .encrypt(&mut buf);
    buf
}

/// Decrypt an encryptedPDU; CFB has no padding, so any length decrypts and
/// a wrong key shows only as a scoped PDU that does not parse.
pub fn aes_decrypt(priv_key: &[u8], boots: u32, time: u32, salt: &[u8; 8], data: &[u8]) -> Vec<u8> {
    let mut buf = data.to_vec();
    AesCfbDec::new_from_slices(&priv_key[..16], &aes_iv(boots, time, salt))
        .expect("16-byte key and IV")
        .decrypt(&mut buf);
    buf
}

/// A USM user's master keys, computed once from the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct UserKeys {
    /// User name.
    pub user: String,
    /// Authentication protocol.
    pub auth: AuthProtocol,
    /// Privacy protocol.
    pub privacy: PrivProtocol,
    auth_ku: Vec<u8>,
    priv_ku: Vec<u8>,
}

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserKeys")
            .field("user", &self.user)
            .field("auth", &self.auth)
            .field("privacy", &self.privacy)
            .finish_non_exhaustive()
    }
}

/// A user's keys localised to one engine.
#[derive(Clone, PartialEq, Eq)]
pub struct LocalKeys {
    /// Authentication key.
    pub auth: Vec<u8>,
    /// Privacy key (first 16 bytes used by AES-128).
    pub privacy: Vec<u8>,
}

impl UserKeys {
    /// Stretch both passwords (about 2 MiB of hashing).
    pub fn new(
        user: &str,
        auth: AuthProtocol,
        auth_password: &str,
        privacy: PrivProtocol,
        priv_password: &str,
    ) -> Self {
        UserKeys {
            user: user.to_string(),
            auth,
            privacy,
            auth_ku: auth.password_to_key(auth_password.as_bytes()),
            priv_ku: auth.password_to_key(priv_password.as_bytes()),
        }
    }

    /// Localise to `engine_id`. The privacy key is localised with the
    /// authentication hash (RFC 3414 2.6, RFC 3826 1.2); SHA-1 gives 20 and
    /// SHA-256 32 bytes, both enough for AES-128.
    pub fn localize(&self, engine_id: &[u8]) -> LocalKeys {
        LocalKeys {
            auth: self.auth.localize(&self.auth_ku, engine_id),
            privacy: self.auth.localize(&self.priv_ku, engine_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENGINE: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    #[test]
    fn rfc3414_a32_sha_password_to_key_and_localisation() {
        let ku = AuthProtocol::Sha1.password_to_key(b"maplesyrup");
        assert_eq!(hex::encode(&ku), "9fb5cc0381497b3793528939ff788d5d79145211");
        let kul = AuthProtocol::Sha1.localize(&ku, &ENGINE);
        assert_eq!(hex::encode(kul), "6695febc9288e36282235fc7151f128497b38f3f");
    }

    #[test]
    fn sha256_password_to_key_and_localisation() {
        // The same construction with SHA-256 (RFC 7860 4.2.2), checked
        // against Python's hashlib, an independent implementation.
        let ku = AuthProtocol::Sha256.password_to_key(b"maplesyrup");
        assert_eq!(
            hex::encode(&ku),
            SHA256_KU,
            "master key of maplesyrup with SHA-256"
        );
        let kul = AuthProtocol::Sha256.localize(&ku, &ENGINE);
        assert_eq!(hex::encode(kul), SHA256_KUL);
    }

    const SHA256_KU: &str = "ab51014d1e077f6017df2b12bee5f5aa72993177e9bb569c4dff5a4ca0b4afac";
    const SHA256_KUL: &str = "8982e0e549e866db361a6b625d84cccc11162d453ee8ce3a6445c2d6776f0f8b";

    #[test]
    fn hmac_truncates_and_verifies() {
        // RFC 2202 test case 2 for HMAC-SHA-1 ("Jefe"), truncated to 96 bits.
        let mac = AuthProtocol::Sha1.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(&mac), "effcdf6ae5eb2fa2d27416d5");
        assert!(AuthProtocol::Sha1.verify(b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(!AuthProtocol::Sha1.verify(b"Jefe", b"what do ya want for nothing!", &mac));
        assert!(!AuthProtocol::Sha1.verify(b"Jeff", b"what do ya want for nothing?", &mac));
        // RFC 4231 test case 2 for HMAC-SHA-256, truncated to 192 bits.
        let mac = AuthProtocol::Sha256.mac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d273983"
        );
        assert!(AuthProtocol::Sha256.verify(b"Jefe", b"what do ya want for nothing?", &mac));
        assert!(!AuthProtocol::Sha256.verify(b"Jefe", b"what do ya want for nothing?", &mac[..12]));
    }

    #[test]
    fn aes_cfb_round_trips_and_depends_on_every_iv_part() {
        // NIST SP 800-38A F.3.13 CFB128-AES128.Encrypt, first block.
        let key = hex::decode("2b7e151628aed2a6abf7158809cf4f3c").unwrap();
        let iv = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let boots = u32::from_be_bytes(iv[..4].try_into().unwrap());
        let time = u32::from_be_bytes(iv[4..8].try_into().unwrap());
        let salt: [u8; 8] = iv[8..].try_into().unwrap();
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d").unwrap();
        let enc = aes_encrypt(&key, boots, time, &salt, &plain);
        assert_eq!(hex::encode(&enc[..16]), "3b3fd92eb72dad20333449f8e83cfb4a");
        assert_eq!(enc.len(), plain.len(), "no padding");
        assert_eq!(aes_decrypt(&key, boots, time, &salt, &enc), plain);
        assert_ne!(aes_decrypt(&key, boots + 1, time, &salt, &enc), plain);
        assert_ne!(aes_decrypt(&key, boots, time + 1, &salt, &enc), plain);
        let mut other = salt;
        other[7] ^= 1;
        assert_ne!(aes_decrypt(&key, boots, time, &other, &enc), plain);
    }

    #[test]
    fn user_keys_localise_both_passwords_and_hide_them_in_debug() {
        let u = UserKeys::new(
            "pantau",
            AuthProtocol::Sha1,
            "maplesyrup",
            PrivProtocol::Aes128,
            "maplesyrup",
        );
        let l = u.localize(&ENGINE);
        assert_eq!(
            hex::encode(&l.auth),
            "6695febc9288e36282235fc7151f128497b38f3f"
        );
        assert_eq!(l.auth, l.privacy);
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("auth_ku") && dbg.contains("pantau"), "{dbg}");
    }
}
