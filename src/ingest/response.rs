//! Responses of the tracking endpoint, and the CORS headers that let sites' pages send hits.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};

use super::reject::Reject;
use crate::config::Config;
use crate::http::{self, JSON, Resp};

/// A transparent 1×1 GIF: Matomo's answer to a hit unless it says `send_image=0`.
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The answer to an accepted (or quietly dropped) hit: the two must look the same, so that
/// nobody can tell from outside whether a visitor was counted.
pub fn tracked(image: bool) -> Resp {
    if image {
        http::no_store(StatusCode::OK, "image/gif", Bytes::from_static(GIF))
    } else {
        tracked_status(StatusCode::NO_CONTENT)
    }
}

/// Matomo's answer to a bulk request (`plugins/BulkTracking/Tracker/Response.php`): how many
/// hits were tracked and how many were invalid, with their positions only for a sender that
/// authenticated; or an empty `204` when the body said `send_image: 0`.
pub fn bulk(tracked: usize, invalid: &[usize], authenticated: bool, summary: bool) -> Resp {
    if !summary {
        return tracked_status(StatusCode::NO_CONTENT);
    }
    let mut body = serde_json::json!({
        "status": "success",
        "tracked": tracked,
        "invalid": invalid.len(),
    });
    if authenticated {
        body["invalid_indices"] = serde_json::json!(invalid);
    }
    http::no_store(StatusCode::OK, JSON, body.to_string())
}

fn tracked_status(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A refused request: its status and `{"error": "..."}`.
pub fn rejected(r: &Reject) -> Resp {
    http::json_error(r.status, &r.message)
}

/// Adds CORS headers when the request's `Origin` is a page of a configured site, so that
/// `fetch`/XHR from those pages can read the answer (with credentials, for the opt-out
/// cookie). Other origins get no CORS grant; `sendBeacon` works without one anyway.
pub fn cors(resp: &mut Resp, origin: Option<&HeaderValue>, config: &Config) {
    resp.headers_mut()
        .append(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = origin else {
        return;
    };
    let allowed = origin
        .to_str()
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|host| config.sites.iter().any(|s| s.allows_host(&host)));
    if allowed {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// Answer to a CORS preflight (`OPTIONS`).
pub fn preflight(request: &HeaderMap, config: &Config) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    cors(&mut r, request.get(header::ORIGIN), config);
    let h = r.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}
