//! The secrets of accounts: random tokens (sessions, shared links, one-time sign-ins), their
//! stored hashes, the CSRF token of a session, and passwords.
//!
//! Tokens are 32 bytes from the system's secure generator in base64url (43 characters). Like
//! API keys ([`crate::api::keys`]) they are stored only as SHA-256: a 256-bit random value
//! cannot be guessed, so a fast hash is enough and costs nothing per request. Passwords are the
//! opposite case, chosen by people and guessable offline from a stolen table, so they get
//! Argon2id (the `argon2` crate with its default parameters: 19 MiB, 2 passes, 1 lane, OWASP's
//! minimum), whose cost is what slows such guessing.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Random bytes in a token.
pub const TOKEN_BYTES: usize = 32;

/// Length of a token: 32 bytes in base64url without padding.
pub const TOKEN_LEN: usize = 43;

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// Longest password accepted (Argon2 takes any length; this bounds the work of one attempt).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The system's generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system's secure random generator failed")]
pub struct RandomError;

/// A new random token.
pub fn token() -> Result<String, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A new short random id (16 hex digits) for rows shown to admins (shared links).
pub fn short_id() -> Result<String, RandomError> {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Whether `s` has the form of a token (anything else is never hashed or looked up).
pub fn is_token(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Hex of `SHA-256(text)`, as stored.
pub fn sha256_hex(text: &str) -> String {
    digest::digest(&digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The CSRF token of the session whose cookie holds `session_token`: derived, not stored, so
/// every collector computes the same one. It is a hash of the secret token under its own label,
/// so the page may show it without revealing the cookie, and a page of another origin, which
/// can read neither, cannot forge it.
pub fn csrf_of(session_token: &str) -> String {
    let d = digest::digest(
        &digest::SHA256,
        format!("tally-csrf\0{session_token}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// Whether `given` equals `expected`, in constant time.
pub fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// Why a password is refused before it is hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    /// Hashing failed (no random salt).
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// The Argon2id PHC string of `password` (salt and parameters included) after checking its
/// length.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    hash_any(password)
}

/// Argon2id without the length rules (a random password nobody sees).
fn hash_any(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Hash("no random salt".into()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a random password shown to no one: the account exists but cannot sign in with a
/// password (the demo admin, who signs in with a one-time link).
pub fn unusable_password_hash() -> Result<String, PasswordError> {
    let t = token().map_err(|e| PasswordError::Hash(e.to_string()))?;
    hash_any(&t)
}

/// Whether `password` matches the PHC string `stored`. An empty or damaged `stored` matches
/// nothing. Runs Argon2 (tens of milliseconds): call it off the async threads.
pub fn verify_password(password: &str, stored: &str) -> bool {
    if password.is_empty() || password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A stand-in hash to verify against when the account does not exist, so that a wrong name
/// takes as long as a wrong password and the time of a refusal does not say which was wrong.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| hash_any("decoy password, never matched").unwrap_or_default());
    &DECOY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = token().unwrap();
        let b = token().unwrap();
        assert_ne!(a, b);
        assert!(is_token(&a), "{a}");
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(!is_token(&a[1..]));
        assert!(!is_token(&format!("{}=", &a[1..])));
        assert!(!is_token(""));
        assert_eq!(short_id().unwrap().len(), 16);
    }

    #[test]
    fn csrf_is_derived_and_differs_from_the_token() {
        let t = token().unwrap();
        assert_eq!(csrf_of(&t), csrf_of(&t));
        assert_ne!(csrf_of(&t), t);
        assert_ne!(csrf_of(&t), csrf_of(&token().unwrap()));
        assert!(same(&csrf_of(&t), &csrf_of(&t)));
        assert!(!same(&csrf_of(&t), ""));
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn passwords_are_argon2id_and_checked() {
        assert_eq!(hash_password("short"), Err(PasswordError::TooShort));
        assert_eq!(
            hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)),
            Err(PasswordError::TooLong)
        );
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterz", &h));
        assert!(!verify_password("", &h));
        assert!(!verify_password("correct horse battery", ""));
        assert!(!verify_password("correct horse battery", "garbage"));
        // Salted: the same password hashes differently.
        assert_ne!(h, hash_password("correct horse battery").unwrap());
        let unusable = unusable_password_hash().unwrap();
        assert!(unusable.starts_with("$argon2id$"));
        assert!(!verify_password("", &unusable));
        assert!(decoy_hash().starts_with("$argon2id$"));
    }
}
