//! URL hygiene: what must not reach storage is removed before a URL is kept.
//!
//! [`clean_url`] drops the fragment, credential/session/e-mail query
//! parameters and `;jsessionid=` path parameters, then [`mask_emails`]
//! replaces anything shaped like an e-mail address with `[email]`.
//!
//! Default parameter list, and the calls it makes (matched on the decoded
//! name, ASCII case-insensitively):
//! * session ids: `sid`, `sessionid`, `session_id`, `phpsessid`,
//!   `jsessionid`, `aspsessionid*` (ASP appends a random suffix), ColdFusion
//!   `cfid`/`cftoken`;
//! * credentials: `token`, `access_token`, `refresh_token`, `id_token`,
//!   `auth`, `auth_token`, `authtoken`, `api_key`, `apikey`, `password`,
//!   `passwd`, `pwd`, `secret`, `client_secret`, and the AWS pre-signed URL
//!   parameters `x-amz-credential`, `x-amz-signature`, `x-amz-security-token`;
//! * identity: `email`, `e-mail`, `mail`;
//! * click identifiers ([`CLICK_IDS`]): ad networks, social networks and mailing tools append
//!   an id per click (`gclid`, `fbclid`, `msclkid`, `mc_eid`, ...). Each one names one click
//!   of one person, so a stored URL carrying it could be joined with the network's own records
//!   of that person; the campaign is still recorded from `utm_*`/`mtm_*`/`pk_*`;
//! * OAuth: `code` is always dropped — on a redirect landing page it is a
//!   live one-time authorization code, and losing a promo `?code=` in reports
//!   is the cheaper mistake. `state` is dropped only when `code` is in the
//!   same query (the OAuth redirect shape): alone it is far more often a
//!   harmless filter (`?state=CA`) than a per-login nonce.
//! * `key` is *not* in the list: it is common as an innocuous parameter
//!   (`?key=pricing`), while real credentials in browser-visible page URLs
//!   nearly always have explicit names (`api_key`). Sites that need it add it
//!   to their own list (`extra_sensitive`).

use std::borrow::Cow;

use url::Url;

/// Placeholder that replaces every e-mail address.
pub const EMAIL_PLACEHOLDER: &str = "[email]";

/// Exact parameter names removed by default (lowercase).
const SENSITIVE_PARAMS: &[&str] = &[
    "sid",
    "sessionid",
    "session_id",
    "phpsessid",
    "jsessionid",
    "cfid",
    "cftoken",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "auth",
    "auth_token",
    "authtoken",
    "api_key",
    "apikey",
    "password",
    "passwd",
    "pwd",
    "secret",
    "client_secret",
    "x-amz-credential",
    "x-amz-signature",
    "x-amz-security-token",
    "email",
    "e-mail",
    "mail",
    "code",
];

/// Click identifiers removed by default (lowercase): one id per click of one person, set by
/// Google Ads (`gclid`, `dclid`, `gbraid`, `wbraid`, and `_gl`, the linker of Google's
/// cross-domain measurement), Meta (`fbclid`, `igshid`), Microsoft Ads (`msclkid`), Yandex
/// (`yclid`), X (`twclid`), TikTok (`ttclid`), LinkedIn (`li_fat_id`), Mailchimp (`mc_eid`),
/// HubSpot (`_hsenc`, `_hsmi`), Marketo (`mkt_tok`), Omeda (`oly_enc_id`), Vero (`vero_id`),
/// Rakuten (`rb_clickid`) and Adobe (`s_cid`).
pub const CLICK_IDS: &[&str] = &[
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "msclkid",
    "yclid",
    "twclid",
    "ttclid",
    "li_fat_id",
    "igshid",
    "mc_eid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "_gl",
    "oly_enc_id",
    "vero_id",
    "rb_clickid",
    "s_cid",
];

/// Parameter-name prefixes removed by default (lowercase).
const SENSITIVE_PREFIXES: &[&str] = &["aspsessionid"];

fn is_sensitive(name: &str, extra: &[String], has_code: bool) -> bool {
    SENSITIVE_PARAMS
        .iter()
        .chain(CLICK_IDS)
        .any(|p| name.eq_ignore_ascii_case(p))
        || SENSITIVE_PREFIXES.iter().any(|p| {
            name.len() >= p.len()
                && name.is_char_boundary(p.len())
                && name[..p.len()].eq_ignore_ascii_case(p)
        })
        || (has_code && name.eq_ignore_ascii_case("state"))
        || extra.iter().any(|p| name.eq_ignore_ascii_case(p))
}

/// Decoded name of one raw `name=value` query segment. Borrowed unless the
/// name is actually percent- or `+`-encoded.
fn param_name(segment: &str) -> Cow<'_, str> {
    let raw = segment.split_once('=').map_or(segment, |(n, _)| n);
    if raw.contains(['%', '+']) {
        let spaced = raw.replace('+', " ");
        Cow::Owned(
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8_lossy()
                .into_owned(),
        )
    } else {
        Cow::Borrowed(raw)
    }
}

/// Removes `;jsessionid=…` path parameters (Java servlet URL rewriting),
/// up to the next `/` or `;`.
fn strip_jsessionid(path: &str) -> Option<String> {
    const NEEDLE: &str = ";jsessionid=";
    let lower_find = |s: &str| {
        s.as_bytes()
            .windows(NEEDLE.len())
            .position(|w| w.eq_ignore_ascii_case(NEEDLE.as_bytes()))
    };
    let mut start = lower_find(path)?;
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    loop {
        out.push_str(&rest[..start]);
        // The value runs to the next `/` or `;`, which is kept.
        let after = &rest[start + 1..];
        let end = after.find(['/', ';']).map_or(rest.len(), |i| start + 1 + i);
        rest = &rest[end..];
        match lower_find(rest) {
            Some(i) => start = i,
            None => {
                out.push_str(rest);
                return Some(out);
            }
        }
    }
}

/// Cleans a page or referrer URL for storage: parses it with `url`, strips
/// the fragment, drops sensitive query parameters (default list above plus
/// `extra_sensitive`, case-insensitive) keeping the others in their order
/// and encoding, strips `;jsessionid=` path parameters, then masks e-mail
/// addresses. Input that does not parse as an absolute URL is returned
/// with e-mails masked and otherwise unchanged. Never panics.
pub fn clean_url(raw: &str, extra_sensitive: &[String]) -> String {
    let Ok(mut url) = Url::parse(raw.trim()) else {
        return mask_emails(raw).into_owned();
    };
    url.set_fragment(None);

    if let Some(path) = strip_jsessionid(url.path()) {
        url.set_path(&path);
    }

    if let Some(query) = url.query() {
        let has_code = query
            .split('&')
            .any(|seg| param_name(seg).eq_ignore_ascii_case("code"));
        let mut kept = String::with_capacity(query.len());
        let mut dropped = false;
        for seg in query.split('&') {
            if seg.is_empty() {
                continue;
            }
            if is_sensitive(&param_name(seg), extra_sensitive, has_code) {
                dropped = true;
                continue;
            }
            if !kept.is_empty() {
                kept.push('&');
            }
            kept.push_str(seg);
        }
        if dropped || kept.len() != query.len() {
            // `set_query` re-validates; the kept segments were already valid.
            url.set_query(if kept.is_empty() { None } else { Some(&kept) });
        }
    }

    let cleaned: String = url.into();
    match mask_emails(&cleaned) {
        Cow::Borrowed(_) => cleaned,
        Cow::Owned(masked) => masked,
    }
}

/// True for bytes allowed in the local part of an address we mask. The set
/// is narrower than RFC 5322 on purpose: `=`, `&`, `/`, `?` delimit URL
/// parts and must stop the scan so `email=a@b.com` keeps `email=`.
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-')
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Start of the local part ending at `end` (exclusive). Steps over plain
/// local bytes and over `%XX` escapes that decode to one (`%2B` = `+`), but
/// stops at an escaped delimiter such as `%3D` (`=`) or `%2F` (`/`).
fn local_start(b: &[u8], end: usize) -> usize {
    let mut i = end;
    while i > 0 {
        if is_local_byte(b[i - 1]) {
            // Could be the second hex digit of an escape: check for `%XY`.
            if i >= 3
                && b[i - 3] == b'%'
                && let (Some(h), Some(l)) = (hex_val(b[i - 2]), hex_val(b[i - 1]))
            {
                if !is_local_byte(h * 16 + l) {
                    break;
                }
                i -= 3;
                continue;
            }
            i -= 1;
        } else {
            break;
        }
    }
    i
}

/// End of a plausible domain starting at `start`, or `None` if what follows
/// is not `label(.label)+` with an alphabetic TLD of at least two letters.
fn domain_end(b: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    while end < b.len() && is_domain_byte(b[end]) {
        end += 1;
    }
    // Trailing dots/hyphens are sentence punctuation, not the domain.
    while end > start && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = &b[start..end];
    if domain.first().is_none_or(|c| !c.is_ascii_alphanumeric()) {
        return None;
    }
    let dot = domain.iter().rposition(|&c| c == b'.')?;
    let tld = &domain[dot + 1..];
    (tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic)).then_some(end)
}

/// Replaces every e-mail address in `s`, in plain (`a@b.com`) or
/// percent-encoded (`a%40b.com`) form, with `[email]`. Returns the input
/// borrowed — no allocation — when there is none.
///
/// Hand-written rather than a regex: the pre-check makes the common
/// no-`@` case a single `memchr`-speed scan, and escape-aware scanning to
/// the left (stopping at `%3D`, `%2F`…) is awkward to express as a regex.
pub fn mask_emails(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !s.contains('@') && !s.contains("%40") {
        return Cow::Borrowed(s);
    }
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `s` already emitted into `out`
    let mut i = 0;
    while i < b.len() {
        let at_len = if b[i] == b'@' {
            1
        } else if b[i] == b'%' && b.get(i + 1) == Some(&b'4') && b.get(i + 2) == Some(&b'0') {
            3
        } else {
            i += 1;
            continue;
        };
        let start = local_start(b, i).max(copied);
        match domain_end(b, i + at_len) {
            Some(end) if start < i => {
                let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
                // `start`/`end` sit on ASCII bytes, hence on char boundaries.
                o.push_str(&s[copied..start]);
                o.push_str(EMAIL_PLACEHOLDER);
                copied = end;
                i = end;
            }
            _ => i += at_len,
        }
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(raw: &str) -> String {
        clean_url(raw, &[])
    }

    #[test]
    fn strips_fragment_and_keeps_other_params_in_order() {
        assert_eq!(
            clean("https://example.com/a/b?z=1&a=2&m=3#section-2"),
            "https://example.com/a/b?z=1&a=2&m=3"
        );
    }

    #[test]
    fn drops_session_ids_case_insensitively() {
        assert_eq!(
            clean(
                "https://example.com/p?PHPSESSID=abc&page=2&JSESSIONID=x&sid=9&SessionId=7&session_id=1"
            ),
            "https://example.com/p?page=2"
        );
        assert_eq!(
            clean("https://example.com/p?ASPSESSIONIDQABCDEFG=HIJ&x=1"),
            "https://example.com/p?x=1"
        );
    }

    #[test]
    fn drops_credentials_and_identity() {
        assert_eq!(
            clean(
                "https://example.com/?token=t&access_token=a&api_key=k&apikey=k2&password=p&pwd=q&auth=z&keep=1"
            ),
            "https://example.com/?keep=1"
        );
        assert_eq!(
            clean("https://example.com/?email=x&E-Mail=y&mail=z&name=bob"),
            "https://example.com/?name=bob"
        );
        assert_eq!(
            clean("https://bucket.s3.amazonaws.com/f.pdf?X-Amz-Credential=c&X-Amz-Signature=s&v=1"),
            "https://bucket.s3.amazonaws.com/f.pdf?v=1"
        );
    }

    #[test]
    fn drops_every_click_identifier() {
        for id in CLICK_IDS {
            assert_eq!(
                clean(&format!("https://example.com/p?a=1&{id}=Cj0KCQ_x-1&b=2")),
                "https://example.com/p?a=1&b=2",
                "{id}"
            );
            let upper = id.to_ascii_uppercase();
            assert_eq!(
                clean(&format!("https://example.com/?{upper}=x")),
                "https://example.com/",
                "{upper}"
            );
        }
        // Names that merely contain one stay; campaign parameters stay for the referrer step.
        assert_eq!(
            clean("https://example.com/?gclid_note=1&my_fbclid=2&utm_source=ads&mtm_campaign=c"),
            "https://example.com/?gclid_note=1&my_fbclid=2&utm_source=ads&mtm_campaign=c"
        );
        // Several at once, and in link targets as in pages: the same function cleans both.
        assert_eq!(
            clean(
                "https://shop.example/item?id=7&gclid=a&fbclid=b&msclkid=c&_gl=1*abc*_ga*MTIz&mc_eid=d&_hsenc=p2&_hsmi=9#top"
            ),
            "https://shop.example/item?id=7"
        );
    }

    #[test]
    fn encoded_param_names_are_matched_decoded() {
        assert_eq!(
            clean("https://example.com/?%74oken=x&a=1"),
            "https://example.com/?a=1"
        );
    }

    #[test]
    fn oauth_code_always_dropped_state_only_with_code() {
        assert_eq!(
            clean("https://app.example.com/callback?code=abc123&state=xyz&lang=de"),
            "https://app.example.com/callback?lang=de"
        );
        assert_eq!(
            clean("https://shop.example.com/stores?state=CA&city=LA"),
            "https://shop.example.com/stores?state=CA&city=LA"
        );
    }

    #[test]
    fn key_is_kept_by_default_but_site_list_removes_it() {
        assert_eq!(
            clean("https://example.com/?key=pricing"),
            "https://example.com/?key=pricing"
        );
        assert_eq!(
            clean_url(
                "https://example.com/?key=pricing&ref=x&Internal=1",
                &["key".into(), "internal".into()]
            ),
            "https://example.com/?ref=x"
        );
    }

    #[test]
    fn query_removed_entirely_when_nothing_left() {
        assert_eq!(
            clean("https://example.com/page?sid=1&token=2"),
            "https://example.com/page"
        );
    }

    #[test]
    fn strips_jsessionid_path_parameter() {
        assert_eq!(
            clean("https://example.com/shop/cart;jsessionid=A1B2C3?item=4"),
            "https://example.com/shop/cart?item=4"
        );
        assert_eq!(
            clean("https://example.com/a;JSESSIONID=x/b;jsessionid=y"),
            "https://example.com/a/b"
        );
        assert_eq!(
            clean("https://example.com/a;jsessionid=x;v=1"),
            "https://example.com/a;v=1"
        );
    }

    #[test]
    fn masks_emails_left_in_path_and_values() {
        assert_eq!(
            clean("https://example.com/users/john.doe@example.org/profile?ref=x"),
            "https://example.com/users/[email]/profile?ref=x"
        );
        assert_eq!(
            clean("https://example.com/?next=%2Fhome%3Fuser%3Djane%40example.com&x=1"),
            "https://example.com/?next=%2Fhome%3Fuser%3D[email]&x=1"
        );
    }

    #[test]
    fn unparseable_input_is_masked_as_is() {
        assert_eq!(
            clean("/relative/path?email=a@b.co#x"),
            "/relative/path?email=[email]#x"
        );
        assert_eq!(clean("not a url"), "not a url");
        assert_eq!(clean(""), "");
        assert_eq!(clean("http://[::1"), "http://[::1");
    }

    #[test]
    fn normalises_like_the_url_crate() {
        assert_eq!(clean("HTTPS://Example.COM"), "https://example.com/");
    }

    #[test]
    fn mask_emails_plain_and_encoded() {
        assert_eq!(
            mask_emails("contact a.b+tag@mail.example.co.uk now"),
            "contact [email] now"
        );
        assert_eq!(mask_emails("u=jane%40example.com&v=1"), "u=[email]&v=1");
        assert_eq!(mask_emails("u=jane%2Btag%40example.com"), "u=[email]");
        assert_eq!(mask_emails("mailto:x@y.de."), "mailto:[email].");
        assert_eq!(mask_emails("a@b.com,c@d.org"), "[email],[email]");
    }

    #[test]
    fn mask_emails_leaves_non_addresses_alone() {
        for s in [
            "@handle",
            "user@localhost",
            "x@1.2.3.4",
            "a@b.c",
            "@@@",
            "%40%40",
            "price 5%40",
            "café@",
            "ü@ü.ü",
        ] {
            assert_eq!(mask_emails(s), s, "{s}");
        }
    }

    #[test]
    fn mask_emails_borrows_when_nothing_to_mask() {
        assert!(matches!(
            mask_emails("https://example.com/?a=1"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(mask_emails("@nobody"), Cow::Borrowed(_)));
        assert!(matches!(mask_emails("a@b.io"), Cow::Owned(_)));
    }

    #[test]
    fn mask_emails_handles_multibyte_neighbours() {
        assert_eq!(mask_emails("élan jo@ex.com ü"), "élan [email] ü");
        assert_eq!(mask_emails("日本x@ex.jp日本"), "日本[email]日本");
    }
}
