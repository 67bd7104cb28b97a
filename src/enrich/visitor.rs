//! The visitor key: a keyed hash that lets reports count visitors and visits without storing
//! anything that identifies a person.
//!
//! `HMAC-SHA256(secret, site ‖ truncated IP ‖ user agent ‖ accept-language)`, cut to 64 bits; or,
//! when the tracker sends its own visitor id cookie (`_id`), `HMAC(secret, site ‖ _id)`. Only
//! the hash is stored; the secret is what makes it unlinkable once it is gone.

use std::sync::RwLock;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::privacy::TruncatedIp;

/// Length of a secret in bytes.
pub const SECRET_LEN: usize = 32;

/// What identifies a visitor for the hash, borrowed from the hit.
#[derive(Debug, Clone, Copy)]
pub struct VisitorInput<'a> {
    /// Matomo `idsite`.
    pub site_id: u32,
    /// Truncated client address.
    pub ip: TruncatedIp,
    /// User agent.
    pub user_agent: &'a str,
    /// `Accept-Language` (as sent).
    pub accept_language: &'a str,
    /// The tracker's visitor id (`_id`, 16 hex digits), when it sends one.
    pub client_id: Option<u64>,
}

/// Computes visitor keys under the current secret.
pub struct VisitorKeys {
    current: RwLock<Secret>,
}

/// A secret and the UTC day (days since 1970) it belongs to.
#[derive(Clone)]
pub struct Secret {
    /// Day number the secret is used for.
    pub day: u32,
    key: hmac::Key,
}

impl Secret {
    /// A secret from its bytes.
    pub fn new(day: u32, bytes: &[u8]) -> Self {
        Secret {
            day,
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// Fresh random bytes for a secret, from the operating system's secure generator.
    pub fn generate_bytes() -> [u8; SECRET_LEN] {
        let mut bytes = [0u8; SECRET_LEN];
        // The system generator only fails if the OS has no entropy source at all; tally cannot
        // protect visitors without one, so refusing to continue is right.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("operating system random generator unavailable");
        bytes
    }
}

impl VisitorKeys {
    /// Keys under `secret`.
    pub fn new(secret: Secret) -> Self {
        VisitorKeys {
            current: RwLock::new(secret),
        }
    }

    /// Replaces the secret (at the daily rotation).
    pub fn rotate(&self, secret: Secret) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = secret;
    }

    /// The day of the secret in use.
    pub fn day(&self) -> u32 {
        self.current.read().unwrap_or_else(|e| e.into_inner()).day
    }

    /// The visitor key for `input` under the current secret.
    pub fn key(&self, input: &VisitorInput<'_>) -> u64 {
        let secret = self.current.read().unwrap_or_else(|e| e.into_inner());
        key_with(&secret, input)
    }

    /// An ecommerce order id under the current secret: the same order sent twice in a day has
    /// the same key, and nobody can go back from the key to the shop's order number.
    pub fn order_key(&self, site_id: u32, order_id: &str) -> u64 {
        let secret = self.current.read().unwrap_or_else(|e| e.into_inner());
        let mut ctx = hmac::Context::with_key(&secret.key);
        ctx.update(&site_id.to_be_bytes());
        ctx.update(b"o");
        ctx.update(order_id.as_bytes());
        first_64_bits(ctx.sign())
    }
}

fn first_64_bits(tag: hmac::Tag) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&tag.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// The visitor key for `input` under `secret`.
pub fn key_with(secret: &Secret, input: &VisitorInput<'_>) -> u64 {
    let mut ctx = hmac::Context::with_key(&secret.key);
    ctx.update(&input.site_id.to_be_bytes());
    match input.client_id {
        // The cookie id already separates visitors; IP and agent would only split one visitor
        // into several when they move between networks.
        Some(id) => {
            ctx.update(b"c");
            ctx.update(&id.to_be_bytes());
        }
        None => {
            ctx.update(b"a");
            match input.ip.addr() {
                std::net::IpAddr::V4(v4) => ctx.update(&v4.octets()),
                std::net::IpAddr::V6(v6) => ctx.update(&v6.octets()),
            }
            // Lengths first, so that ("ab", "c") and ("a", "bc") hash differently.
            ctx.update(&(input.user_agent.len() as u32).to_be_bytes());
            ctx.update(input.user_agent.as_bytes());
            ctx.update(&(input.accept_language.len() as u32).to_be_bytes());
            ctx.update(input.accept_language.as_bytes());
        }
    }
    first_64_bits(ctx.sign())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(ip: &str, ua: &'static str) -> VisitorInput<'static> {
        VisitorInput {
            site_id: 1,
            ip: TruncatedIp::new(ip.parse().unwrap(), 2),
            user_agent: ua,
            accept_language: "de-DE,de;q=0.9",
            client_id: None,
        }
    }

    #[test]
    fn same_visitor_same_secret_same_key() {
        let s = Secret::new(1, &[7; 32]);
        // Same /16, same agent: the same visitor as far as tally can tell.
        assert_eq!(
            key_with(&s, &input("203.0.113.77", "UA")),
            key_with(&s, &input("203.0.9.9", "UA"))
        );
    }

    #[test]
    fn differs_by_every_input_and_secret() {
        let s = Secret::new(1, &[7; 32]);
        let base = key_with(&s, &input("203.0.113.77", "UA"));
        assert_ne!(base, key_with(&s, &input("198.51.100.1", "UA")));
        assert_ne!(base, key_with(&s, &input("203.0.113.77", "UA2")));
        let mut other_site = input("203.0.113.77", "UA");
        other_site.site_id = 2;
        assert_ne!(base, key_with(&s, &other_site));
        let mut other_lang = input("203.0.113.77", "UA");
        other_lang.accept_language = "en";
        assert_ne!(base, key_with(&s, &other_lang));
        assert_ne!(
            base,
            key_with(&Secret::new(2, &[8; 32]), &input("203.0.113.77", "UA"))
        );
    }

    #[test]
    fn client_id_replaces_ip_and_agent() {
        let s = Secret::new(1, &[7; 32]);
        let mut a = input("203.0.113.77", "UA");
        let mut b = input("198.51.100.1", "Other");
        a.client_id = Some(0xabcdef);
        b.client_id = Some(0xabcdef);
        assert_eq!(key_with(&s, &a), key_with(&s, &b));
        b.client_id = Some(0xabcdee);
        assert_ne!(key_with(&s, &a), key_with(&s, &b));
    }

    #[test]
    fn rotation_changes_keys() {
        let keys = VisitorKeys::new(Secret::new(1, &[1; 32]));
        let before = keys.key(&input("203.0.113.77", "UA"));
        keys.rotate(Secret::new(2, &[2; 32]));
        assert_eq!(keys.day(), 2);
        assert_ne!(before, keys.key(&input("203.0.113.77", "UA")));
    }
}
