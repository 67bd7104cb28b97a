//! Matomo bulk tracking: `POST {"requests": [...], "token_auth": "...", "send_image": 0}`.
//!
//! Each entry is a query string (`"?idsite=1&url=..."`, with or without the `?`, even with a
//! path before it) or a JSON object of parameters (`{"idsite": 1, "url": "..."}`, numbers and
//! strings alike), as Matomo's `BulkTracking` plugin accepts both.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::params::Params;
use super::reject::Reject;
use crate::config::Limits;

/// A bulk request body.
#[derive(Debug, Deserialize)]
pub struct Bulk {
    /// The hits, as sent.
    pub requests: Vec<Value>,
    /// Token for the whole batch.
    #[serde(default)]
    pub token_auth: Option<String>,
    /// `send_image`: `0` (or `false`) asks for an empty `204` instead of the JSON summary.
    #[serde(default)]
    pub send_image: Option<Value>,
}

impl Bulk {
    /// Whether the client wants Matomo's JSON summary (the default) rather than an empty 204.
    pub fn wants_summary(&self) -> bool {
        self.send_image
            .as_ref()
            .and_then(value_text)
            .is_none_or(|v| v != "0")
    }
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

/// The parameters of one entry; `None` for an entry that is neither a query string nor an
/// object, or a query string longer than a request target may be (counted invalid).
pub fn entry_params<'a>(entry: &'a Value, limits: &Limits) -> Option<Params<'a>> {
    let mut params = Params::default();
    match entry {
        Value::String(s) => {
            let query = query_of(s);
            if query.len() > limits.max_uri_bytes {
                return None;
            }
            params.extend(query.as_bytes(), limits);
        }
        Value::Object(map) => {
            for (name, value) in map {
                if let Some(v) = value_text(value) {
                    params.set(name, v, limits);
                }
            }
        }
        _ => return None,
    }
    Some(params)
}

/// `null`, `""`, `"?"` or `{}`: a request with nothing in it.
pub fn is_empty_entry(entry: &Value) -> bool {
    match entry {
        Value::Null => true,
        Value::String(s) => query_of(s).is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

/// A JSON parameter value as the text a query string would carry: strings as they are,
/// numbers and booleans as PHP prints them, lists and objects (`ec_items`) as JSON.
fn value_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "1" } else { "0" })),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Array(_) | Value::Object(_) => Some(Cow::Owned(v.to_string())),
    }
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
            br#"{"requests":["?idsite=1",{"idsite":2}],"token_auth":"x"}"#,
            10,
        )
        .unwrap();
        assert_eq!(b.requests.len(), 2);
        assert_eq!(b.token_auth.as_deref(), Some("x"));
        assert!(b.wants_summary());
        assert!(parse(b"{\"requests\": \"x\"", 10).is_err());
        assert!(parse(b"{}", 10).is_err());
        assert!(parse(br#"{"requests":[]}"#, 10).is_err());
        assert_eq!(
            parse(br#"{"requests":["a","b","c"]}"#, 2)
                .unwrap_err()
                .status,
            hyper::StatusCode::PAYLOAD_TOO_LARGE
        );
        // An entry of the wrong type is the entry's problem, not the body's.
        assert!(parse(b"{\"requests\": [1]}", 10).is_ok());
    }

    #[test]
    fn send_image_in_the_body() {
        for (body, summary) in [
            (r#"{"requests":["a"],"send_image":0}"#, false),
            (r#"{"requests":["a"],"send_image":"0"}"#, false),
            (r#"{"requests":["a"],"send_image":false}"#, false),
            (r#"{"requests":["a"],"send_image":1}"#, true),
            (r#"{"requests":["a"]}"#, true),
        ] {
            assert_eq!(
                parse(body.as_bytes(), 10).unwrap().wants_summary(),
                summary,
                "{body}"
            );
        }
    }

    #[test]
    fn entries_as_strings_and_objects() {
        let limits = Limits::default();
        let v: Value = serde_json::from_str(
            r#"["/matomo.php?idsite=1&rec=1&url=https%3A%2F%2Fa.org%2F",
                {"idsite": 1, "rec": 1, "url": "https://a.org/b", "bw_bytes": 512, "bots": true,
                 "e_v": 2.5, "ec_items": [["s","n","c",1.5,2]], "x": null},
                7]"#,
        )
        .unwrap();
        let list = v.as_array().unwrap();
        let p = entry_params(&list[0], &limits).unwrap();
        assert_eq!(p.url.as_deref(), Some("https://a.org/"));
        let p = entry_params(&list[1], &limits).unwrap();
        assert_eq!(p.idsite.as_deref(), Some("1"));
        assert_eq!(p.rec.as_deref(), Some("1"));
        assert_eq!(p.bots.as_deref(), Some("1"));
        assert_eq!(p.e_v.as_deref(), Some("2.5"));
        assert_eq!(p.ec_items.as_deref(), Some(r#"[["s","n","c",1.5,2]]"#));
        assert!(entry_params(&list[2], &limits).is_none());
        for empty in ["null", "\"\"", "\"?\"", "{}"] {
            assert!(
                is_empty_entry(&serde_json::from_str(empty).unwrap()),
                "{empty}"
            );
        }
        assert!(!is_empty_entry(&list[0]));
        assert!(!is_empty_entry(&list[2]));
        let long = Value::String(format!("idsite=1&x={}", "a".repeat(limits.max_uri_bytes)));
        assert!(entry_params(&long, &limits).is_none());
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
