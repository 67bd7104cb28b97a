//! Matomo bulk tracking: `POST {"requests": ["?idsite=1&url=...", ...], "token_auth": "..."}`.

use serde::Deserialize;

use super::reject::Reject;

/// A bulk request body.
#[derive(Debug, Deserialize)]
pub struct Bulk {
    /// Query strings of the hits, each with or without a leading `?`.
    pub requests: Vec<String>,
    /// Token for the whole batch.
    #[serde(default)]
    pub token_auth: Option<String>,
}

/// Whether a POST body is a bulk request rather than a form.
pub fn is_bulk(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'{')
}

/// Parses a bulk body, bounding the number of hits.
pub fn parse(body: &[u8], max_hits: usize) -> Result<Bulk, Reject> {
    let bulk: Bulk = serde_json::from_slice(body)
        .map_err(|e| Reject::bad_request(format!("malformed bulk request: {e}")))?;
    if bulk.requests.len() > max_hits {
        return Err(Reject::new(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            format!("bulk request has more than {max_hits} hits"),
        ));
    }
    if bulk.requests.is_empty() {
        return Err(Reject::bad_request("bulk request has no hits"));
    }
    Ok(bulk)
}

/// A hit's query string without its leading `?`.
pub fn query_of(request: &str) -> &str {
    let q = request.strip_prefix("?").unwrap_or(request);
    // Some clients send a full path (`/matomo.php?idsite=...`).
    match q.split_once('?') {
        Some((path, rest)) if !path.contains('=') => rest,
        _ => q,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_shapes() {
        assert!(is_bulk(b"  {\"requests\":[]}"));
        assert!(!is_bulk(b"idsite=1"));
        let b = parse(
            br#"{"requests":["?idsite=1","idsite=2"],"token_auth":"x"}"#,
            10,
        )
        .unwrap();
        assert_eq!(b.requests.len(), 2);
        assert_eq!(b.token_auth.as_deref(), Some("x"));
        assert!(parse(b"{\"requests\": [1]}", 10).is_err());
        assert!(parse(b"{\"requests\": \"x\"", 10).is_err());
        assert!(parse(b"{}", 10).is_err());
        assert!(parse(br#"{"requests":[]}"#, 10).is_err());
        assert_eq!(
            parse(br#"{"requests":["a","b","c"]}"#, 2)
                .unwrap_err()
                .status,
            hyper::StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn query_forms() {
        assert_eq!(query_of("?idsite=1&a=b"), "idsite=1&a=b");
        assert_eq!(query_of("idsite=1"), "idsite=1");
        assert_eq!(query_of("/matomo.php?idsite=1"), "idsite=1");
        assert_eq!(
            query_of("?url=https%3A%2F%2Fa%3Fb"),
            "url=https%3A%2F%2Fa%3Fb"
        );
    }
}
