//! Everything served to browsers that is not tracking: the tracker script, the opt-out page,
//! and the snippet an operator pastes into a site.
//!
//! [`assets`] serves the embedded JavaScript tracker, [`optout`] the page where visitors see
//! what is recorded and refuse it, with its words in [`texts`] and its security policy from
//! [`csp`]; [`widget`] serves the opt-out widget (`/optout.js`) that sites put into their own
//! privacy policy; [`snippet`] writes the HTML for `tally snippet`.
//!
//! HTML is written only through askama templates (`templates/`), which escape every
//! interpolated value unless the template says `|safe`. Two values do: the opt-out page's
//! stylesheet (a constant, allowed by its hash) and the snippet's base URL once the `json`
//! filter has made it a JavaScript string. askama rather than maud: the templates read as the HTML they produce (the
//! snippet is mostly a block of JavaScript, awkward in maud's syntax), and askama escapes `'`
//! too, where maud leaves it.

pub mod assets;
pub mod csp;
pub mod optout;
pub mod snippet;
pub mod texts;
pub mod widget;

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
    fn weights() {
        let w = weighted(["gzip;q=0.5, br", " deflate ; Q=0 ,, x;q=oops"].into_iter());
        assert_eq!(
            w,
            vec![("gzip", 0.5), ("br", 1.0), ("deflate", 0.0), ("x", 0.0)]
        );
        assert_eq!(weighted(["a;q=2"].into_iter()), vec![("a", 0.0)]);
    }
}
