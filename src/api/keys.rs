//! API keys: their form, how they are made, and how a presented key is checked against what is
//! stored.
//!
//! A key reads `tally_<id>_<secret>`: `id` is 16 lowercase hex digits (8 random bytes), public,
//! the row a key is looked up by, and what `tally key list` and the logs show; `secret` is 32
//! bytes from the operating system's secure generator (`ring::rand::SystemRandom`), base64url
//! without padding (43 characters). The prefix makes a leaked key recognisable to people and
//! secret scanners.
//!
//! Only `SHA-256(key)` is stored. A slow password hash (Argon2, bcrypt) is not needed: it
//! protects secrets people choose, whose few bits an attacker with a stolen table can guess
//! offline, and its cost is what limits the guessing. A 256-bit random secret cannot be guessed
//! at any speed (2^255 tries on average), so SHA-256's preimage resistance alone keeps a stolen
//! hash useless, and each request costs one fast hash instead of tens of milliseconds of
//! deliberately wasted work that would also make the API easy to overload. The hash covers the
//! whole key, id included, so a stored hash is bound to its row.
//!
//! Hashes are compared in constant time (`subtle`), so the time a refusal takes says nothing
//! about how many bytes of a guess were right.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// What every key begins with.
pub const PREFIX: &str = "tally_";

/// Length of the public id: 16 hex digits.
pub const ID_LEN: usize = 16;

/// Random bytes in the secret part.
pub const SECRET_BYTES: usize = 32;

/// Length of the secret part: 32 bytes in base64url without padding.
pub const SECRET_LEN: usize = 43;

/// Length of a whole key.
pub const KEY_LEN: usize = PREFIX.len() + ID_LEN + 1 + SECRET_LEN;

/// A freshly made key: the text to hand to its owner once, and what is stored of it.
#[derive(Debug)]
pub struct NewKey {
    /// The public id.
    pub id: String,
    /// The whole key, `tally_<id>_<secret>`: shown once, never stored.
    pub key: String,
    /// `SHA-256(key)`, the only thing stored.
    pub hash: [u8; 32],
}

/// The operating system's generator failed (no entropy source): no key is made.
#[derive(Debug, thiserror::Error)]
#[error("the system's secure random generator failed")]
pub struct RandomError;

/// Makes a new key from the system's secure random generator.
pub fn generate() -> Result<NewKey, RandomError> {
    let rng = SystemRandom::new();
    let mut id = [0u8; ID_LEN / 2];
    let mut secret = [0u8; SECRET_BYTES];
    rng.fill(&mut id).map_err(|_| RandomError)?;
    rng.fill(&mut secret).map_err(|_| RandomError)?;
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let key = format!("{PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = hash(&key);
    Ok(NewKey { id, key, hash })
}

/// `SHA-256(key)`.
pub fn hash(key: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, key.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The public id of `key` if it has the form of a key, else `None` (nothing that is not shaped
/// like a key is ever looked up or hashed).
pub fn id_of(key: &str) -> Option<&str> {
    if key.len() != KEY_LEN {
        return None;
    }
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let id_ok = id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret.len() == SECRET_LEN
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        // 43 base64 characters carry 258 bits; the last one's low 2 bits must be 0.
        && URL_SAFE_NO_PAD.decode(secret).is_ok_and(|s| s.len() == SECRET_BYTES);
    (id_ok && secret_ok).then_some(id)
}

/// Whether `key` hashes to `stored`, compared in constant time.
pub fn verify(key: &str, stored: &[u8; 32]) -> bool {
    hash(key).ct_eq(stored).into()
}

/// Hex of a hash, as stored in ClickHouse.
pub fn to_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored hash back from hex; `None` for anything else (a damaged row matches no key).
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_has_the_documented_form() {
        let k = generate().unwrap();
        assert_eq!(k.key.len(), KEY_LEN);
        assert_eq!(KEY_LEN, 66);
        assert!(k.key.starts_with("tally_"));
        assert_eq!(id_of(&k.key), Some(k.id.as_str()));
        assert_eq!(k.id.len(), 16);
        assert!(
            k.id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let secret = &k.key[PREFIX.len() + ID_LEN + 1..];
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
        assert_eq!(k.hash, hash(&k.key));
    }

    #[test]
    fn keys_are_random() {
        let keys: std::collections::HashSet<String> =
            (0..200).map(|_| generate().unwrap().key).collect();
        assert_eq!(keys.len(), 200);
        let ids: std::collections::HashSet<String> =
            keys.iter().map(|k| id_of(k).unwrap().to_string()).collect();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn only_well_formed_keys_have_an_id() {
        let k = generate().unwrap().key;
        assert!(id_of(&k).is_some());
        let secret = "A".repeat(SECRET_LEN);
        let good = format!("tally_0123456789abcdef_{secret}");
        assert_eq!(id_of(&good), Some("0123456789abcdef"));
        for bad in [
            String::new(),
            "tally_".into(),
            k[..KEY_LEN - 1].to_string(),
            format!("{k}x"),
            k.replacen("tally_", "tallY_", 1),
            format!("tally_0123456789ABCDEF_{secret}"),
            format!("tally_0123456789abcdeg_{secret}"),
            format!("tally_0123456789abcdef-{secret}"),
            format!("tally_0123456789abcdef_{}", "A".repeat(42) + "="),
            format!("tally_0123456789abcdef_{}", "A".repeat(42) + "+"),
            format!("tally_0123456789abcdef_{}", "A".repeat(42) + "é"),
            // Low bits set in the last character: not the encoding of 32 bytes.
            format!("tally_0123456789abcdef_{}", "A".repeat(42) + "B"),
            format!("x{}", &good[1..]),
        ] {
            assert_eq!(id_of(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashing_and_verifying() {
        let k = generate().unwrap();
        assert!(verify(&k.key, &k.hash));
        // One character changed anywhere fails, the id included.
        for i in PREFIX.len()..KEY_LEN {
            let mut other = k.key.clone().into_bytes();
            other[i] = if other[i] == b'a' { b'b' } else { b'a' };
            let other = String::from_utf8(other).unwrap();
            assert!(!verify(&other, &k.hash), "position {i}");
        }
        // Known answer: SHA-256 of the text, not of the decoded secret.
        assert_eq!(
            to_hex(&hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex(&to_hex(&k.hash)), Some(k.hash));
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(&"g".repeat(64)), None);
        assert_eq!(from_hex(&"é".repeat(32)), None);
    }
}
