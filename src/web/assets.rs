//! The JavaScript tracker, served at `/tally.js` and, for snippets that load the tracker from
//! the Matomo server, at `/matomo.js` and `/piwik.js`.
//!
//! The built `tracker-js/dist/tally.js` is compiled into the binary, so a deployment is one
//! file and the script always matches the collector it talks to. It is gzipped once, at first
//! use, rather than in a build script: `cargo build` then needs neither npm nor anything
//! beyond the file itself, and compressing a few kilobytes once costs well under a millisecond.

use std::io::Write;
use std::sync::LazyLock;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Response, StatusCode};
use ring::digest;

use crate::http::Resp;

/// The built tracker, as `npm run build` in `tracker-js/` leaves it.
pub const TRACKER_JS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tracker-js/dist/tally.js"
));

/// An hour: browsers and proxies revalidate the script at most this long after a fetch, so an
/// upgraded collector's tracker reaches every visitor within the hour, while a visitor moving
/// between pages loads it once. Revalidation after that is a cheap 304 thanks to the `ETag`.
/// Longer lifetimes need versioned URLs, which the Matomo-style snippet does not have.
const CACHE_CONTROL: &str = "public, max-age=3600";

/// One static file in both encodings, with their validators.
struct Asset {
    content_type: &'static str,
    /// The first 16 hex digits of the SHA-256 of the plain bytes.
    hex: String,
    plain: Bytes,
    gzip: Bytes,
    /// Strong validator of the plain bytes: the first 16 hex digits of their SHA-256.
    etag: HeaderValue,
    /// The gzip body is a different representation, so it needs a different strong validator
    /// (RFC 9110 §8.8.3); it is derived from the same hash, so both change together.
    etag_gzip: HeaderValue,
}

impl Asset {
    fn new(bytes: impl Into<Bytes>) -> Asset {
        Self::typed(bytes, "application/javascript; charset=utf-8")
    }

    fn typed(bytes: impl Into<Bytes>, content_type: &'static str) -> Asset {
        let bytes: Bytes = bytes.into();
        let hash = digest::digest(&digest::SHA256, &bytes);
        let hex: String = hash.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&bytes).expect("writing to a Vec cannot fail");
        let gzip = gz.finish().expect("writing to a Vec cannot fail");
        Asset {
            content_type,
            plain: bytes,
            gzip: Bytes::from(gzip),
            etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header"),
            etag_gzip: HeaderValue::from_str(&format!("\"{hex}-gzip\""))
                .expect("hex is a valid header"),
            hex,
        }
    }

    /// The response to a GET or HEAD with these request headers. hyper leaves the body out of
    /// answers to HEAD and keeps its `Content-Length`, so both get the same response.
    fn respond(&self, request: &HeaderMap, cache_control: &'static str) -> Resp {
        let gzip = accepts_gzip(request);
        let (body, etag) = if gzip {
            (&self.gzip, &self.etag_gzip)
        } else {
            (&self.plain, &self.etag)
        };
        let fresh = if_none_match(request, &[&self.etag, &self.etag_gzip]);
        let mut r = if fresh {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        } else {
            let mut r = Response::new(Full::new(body.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
            if gzip {
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            r
        };
        let h = r.headers_mut();
        h.insert(header::ETAG, etag.clone());
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        // Sites load the script from their own pages, i.e. cross-origin.
        h.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("cross-origin"),
        );
        r
    }
}

static TRACKER: LazyLock<Asset> = LazyLock::new(|| Asset::new(TRACKER_JS));

/// The built dashboard script, as `npm run build` in `dashboard-js/` leaves it.
pub const DASHBOARD_JS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/dashboard-js/dist/dashboard.js"
));

/// The built dashboard stylesheet.
pub const DASHBOARD_CSS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/dashboard-js/dist/dashboard.css"
));

/// The dashboard's files are requested as `?v=<hash>` of their content, so a browser may keep
/// them for a year: a new build has a new URL.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

static DASHBOARD_SCRIPT: LazyLock<Asset> = LazyLock::new(|| Asset::new(DASHBOARD_JS));
static DASHBOARD_STYLE: LazyLock<Asset> =
    LazyLock::new(|| Asset::typed(DASHBOARD_CSS, "text/css; charset=utf-8"));

/// `GET`/`HEAD /assets/dashboard.js`.
pub fn dashboard_js(request: &HeaderMap) -> Resp {
    same_origin_only(DASHBOARD_SCRIPT.respond(request, IMMUTABLE))
}

/// `GET`/`HEAD /assets/dashboard.css`.
pub fn dashboard_css(request: &HeaderMap) -> Resp {
    same_origin_only(DASHBOARD_STYLE.respond(request, IMMUTABLE))
}

/// The `v=` of the dashboard's script and stylesheet URLs: a hash of their content.
pub fn dashboard_versions() -> (&'static str, &'static str) {
    (&DASHBOARD_SCRIPT.hex, &DASHBOARD_STYLE.hex)
}

/// The dashboard's files are for the collector's own pages only.
fn same_origin_only(mut r: Resp) -> Resp {
    r.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// `GET`/`HEAD /tally.js` (and its Matomo names).
pub fn tracker(request: &HeaderMap) -> Resp {
    TRACKER.respond(request, CACHE_CONTROL)
}

/// A script made for this request (the opt-out widget), answered like the tracker: gzipped
/// when accepted, with a strong `ETag` of its content and `304` when it still matches.
pub fn generated_script(body: String, request: &HeaderMap, cache_control: &'static str) -> Resp {
    Asset::new(body).respond(request, cache_control)
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or the old `x-gzip`) with a weight above 0,
/// or else `*` with a weight above 0. `gzip;q=0` refuses it even when `*` is allowed.
pub fn accepts_gzip(request: &HeaderMap) -> bool {
    let items = crate::headers::weighted(
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    let weight_of = |names: &[&str]| {
        items
            .iter()
            .filter(|(t, _)| names.iter().any(|n| t.eq_ignore_ascii_case(n)))
            .map(|(_, q)| *q)
            .reduce(f32::max)
    };
    weight_of(&["gzip", "x-gzip"])
        .or_else(|| weight_of(&["*"]))
        .is_some_and(|q| q > 0.0)
}

/// Whether `If-None-Match` names one of `current` (or is `*`). The comparison is the weak one
/// RFC 9110 §13.1.2 prescribes for this header, so a `W/` prefix added by a proxy still matches.
fn if_none_match(request: &HeaderMap, current: &[&HeaderValue]) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| {
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*" || current.iter().any(|c| c.as_bytes() == tag.as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    use crate::test_support::header_map as h;

    fn gzip_ok(v: &str) -> bool {
        accepts_gzip(&h(&[("accept-encoding", v)]))
    }

    #[test]
    fn accept_encoding() {
        assert!(!accepts_gzip(&h(&[])));
        assert!(gzip_ok("gzip"));
        assert!(gzip_ok("gzip, deflate, br, zstd"));
        assert!(gzip_ok("br;q=1.0, GZIP;q=0.5"));
        assert!(gzip_ok("x-gzip"));
        assert!(gzip_ok("*"));
        assert!(!gzip_ok("gzip;q=0"));
        assert!(!gzip_ok("gzip; q=0.0, *"));
        assert!(!gzip_ok("*;q=0"));
        assert!(!gzip_ok("identity"));
        assert!(!gzip_ok("br, deflate"));
        assert!(!gzip_ok("gzip;q=nonsense"));
        assert!(!gzip_ok("gzipper"));
        // Several header lines are one list.
        let two = h(&[("accept-encoding", "br"), ("accept-encoding", "gzip;q=0.1")]);
        assert!(accepts_gzip(&two));
    }

    #[test]
    fn etag_is_a_strong_hash_prefix() {
        let a = Asset::new(&b"console.log(1)"[..]);
        let etag = a.etag.to_str().unwrap();
        assert_eq!(etag.len(), 18);
        assert!(etag.starts_with('"') && etag.ends_with('"'));
        assert!(etag[1..17].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            a.etag_gzip.to_str().unwrap(),
            format!("{}-gzip\"", &etag[..17])
        );
        assert_ne!(
            a.etag,
            Asset::new(&b"console.log(2)"[..]).etag,
            "the tag follows the content"
        );
    }

    #[test]
    fn gzip_body_round_trips() {
        let a = Asset::new(TRACKER_JS);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&a.gzip[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, TRACKER_JS);
        assert!(a.gzip.len() < a.plain.len());
    }

    #[test]
    fn conditional_and_encoded_responses() {
        let a = Asset::new(&b"var x = 1; var y = 2; var z = 3;"[..]);
        let plain = a.respond(&h(&[]), CACHE_CONTROL);
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()[header::ETAG], a.etag);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(plain.headers()[header::VARY], "Accept-Encoding");
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=3600"
        );

        let gz = a.respond(&h(&[("accept-encoding", "gzip")]), CACHE_CONTROL);
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gz.headers()[header::ETAG], a.etag_gzip);

        let etag = a.etag.to_str().unwrap();
        for inm in [
            etag.to_string(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            a.etag_gzip.to_str().unwrap().to_string(),
            "*".to_string(),
        ] {
            let r = a.respond(&h(&[("if-none-match", &inm)]), CACHE_CONTROL);
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{inm}");
            assert_eq!(r.headers()[header::ETAG], a.etag);
        }
        let stale = a.respond(
            &h(&[("if-none-match", "\"0123456789abcdef\"")]),
            CACHE_CONTROL,
        );
        assert_eq!(stale.status(), StatusCode::OK);
    }
}
