//! Everything served to browsers that is not tracking: the tracker script, the opt-out page,
//! and the snippet an operator pastes into a site.
//!
//! [`assets`] serves the embedded JavaScript tracker, [`optout`] the page where visitors see
//! what is recorded and refuse it, with its words in [`texts`] and its security policy from
//! [`csp`]; [`snippet`] writes the HTML for `tally snippet`.

pub mod assets;
pub mod csp;
pub mod optout;
pub mod snippet;
pub mod texts;

use std::borrow::Cow;

/// Escapes `s` for HTML text and double- or single-quoted attribute values.
pub fn escape_html(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The items of a comma-separated header list with their `q` weights (RFC 9110 §12.4.2):
/// `gzip;q=0.5, br` gives `("gzip", 0.5), ("br", 1.0)`. A weight that does not parse counts as
/// 0, so a malformed preference never turns something on.
pub(crate) fn weighted<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(&'a str, f32)> {
    values
        .flat_map(|v| v.split(','))
        .filter_map(|item| {
            let mut parts = item.split(';');
            let token = parts.next()?.trim();
            if token.is_empty() {
                return None;
            }
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| {
                    v.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                });
            Some((token, q))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape_html("plain name"), "plain name");
        assert!(matches!(escape_html("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape_html("Müller & Söhne"), "Müller &amp; Söhne");
    }

    #[test]
    fn weights() {
        let w = weighted(["gzip;q=0.5, br", " deflate ; Q=0 ,, x;q=oops"].into_iter());
        assert_eq!(
            w,
            vec![("gzip", 0.5), ("br", 1.0), ("deflate", 0.0), ("x", 0.0)]
        );
        assert_eq!(weighted(["a;q=2"].into_iter()), vec![("a", 0.0)]);
    }
}
