//! Small helpers for HTTP header values that both sides of the server read.

/// The items of a comma-separated header list with their `q` weights (RFC 9110 §12.4.2):
/// `gzip;q=0.5, br` gives `("gzip", 0.5), ("br", 1.0)`. A weight that does not parse counts as
/// 0, so a malformed preference never turns something on.
pub fn weighted<'a>(values: impl Iterator<Item = &'a str>) -> Vec<(&'a str, f32)> {
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
