//! Helpers shared by unit tests.

use hyper::HeaderMap;
use hyper::header::HeaderValue;

/// A header map from name/value pairs, repeated names appended in order.
pub fn header_map(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.append(*k, HeaderValue::from_str(v).unwrap());
    }
    m
}
