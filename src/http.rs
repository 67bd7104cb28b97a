//! Small HTTP pieces that both sides of the server use: the response type, the few ways an
//! answer is built, reading a body with a limit and a timeout, and whether a request came over
//! https.
//!
//! Neutral ground: the write path (`ingest`, `web`) and the read side (`api`, `dashboard`)
//! both import this module, so that neither has to import the other for a response helper.
//! It depends only on `config` and `privacy`'s trusted-proxy check.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::config::Config;
use crate::privacy::FullIp;

/// Response type of every handler.
pub type Resp = Response<Full<Bytes>>;

/// `Content-Type` of one-line answers.
pub const TEXT: &str = "text/plain; charset=utf-8";

/// `Content-Type` of JSON answers.
pub const JSON: &str = "application/json";

/// Longest time a request body of the API or the dashboard may take to arrive.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The policy an HTML page gets when its own could not be a header value: nothing loads, no
/// one frames it. A broken page is better than one without a policy.
const FALLBACK_POLICY: &str = "default-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `body` with `status` and `content_type`; caching is left to the caller.
pub fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `body` with `status` and `content_type`, never cached (it answers one request: a result,
/// a refusal, a visitor's or an operator's own state).
pub fn no_store(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = text(status, content_type, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A refusal as `{"error": "message"}` with `status`, never cached.
pub fn json_error(status: StatusCode, message: &str) -> Resp {
    let body = serde_json::json!({ "error": message }).to_string();
    no_store(status, JSON, body)
}

/// An HTML page with the headers every page of tally has: its type, `policy` as the
/// `Content-Security-Policy` (a strict fallback if `policy` cannot be a header value),
/// `nosniff`, and `no-store` (pages show a visitor's or an operator's own state; a caller may
/// replace it). `Referrer-Policy` is the caller's: the pages need different ones.
pub fn html(status: StatusCode, body: String, policy: &str) -> Resp {
    let mut r = no_store(status, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    let policy = HeaderValue::from_str(policy).unwrap_or_else(|_| {
        tracing::warn!(
            policy,
            "a page's security policy is not a valid header value"
        );
        HeaderValue::from_static(FALLBACK_POLICY)
    });
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than this many bytes, declared or sent.
    TooLarge(usize),
    /// The connection failed while it was read.
    Unreadable,
    /// It did not arrive within this time.
    TooSlow(Duration),
    /// The server holds as many body bytes as it may at once
    /// (`[server] max_inflight_body_bytes`).
    Busy,
}

/// Why the server stopped a request body (`crate::server` wraps every body): the error inside
/// the body's error, which [`read_body`] turns into the matching [`BodyError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyStop {
    /// It did not arrive within the body read timeout.
    TooSlow(Duration),
    /// The budget of body bytes held at once is spent.
    Busy,
}

impl std::fmt::Display for BodyStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyStop::TooSlow(t) => write!(f, "body not read within {} s", t.as_secs()),
            BodyStop::Busy => f.write_str("server busy"),
        }
    }
}

impl std::error::Error for BodyStop {}

impl BodyError {
    /// The status to answer with.
    pub fn status(self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
            BodyError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "the body is larger than {limit} bytes"),
            BodyError::Unreadable => f.write_str("could not read the request body"),
            BodyError::TooSlow(t) => write!(
                f,
                "the request body did not arrive within {} seconds",
                t.as_secs()
            ),
            BodyError::Busy => f.write_str("server busy"),
        }
    }
}

/// Reads a whole body of at most `limit` bytes within `within`. A declared length
/// (`Content-Length`) over the limit is refused before anything is read; a body of unknown
/// length is cut off at the limit. A body the server stopped ([`BodyStop`]: too slow, or over
/// the server's budget of body bytes) gives the matching error. Every handler reads its body
/// here, so that each of these is answered the same way everywhere.
pub async fn read_body<B>(body: B, limit: usize, within: Duration) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if hyper::body::Body::size_hint(&body).lower() > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    match tokio::time::timeout(within, Limited::new(body, limit).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => match e.downcast_ref::<BodyStop>() {
            Some(BodyStop::TooSlow(t)) => Err(BodyError::TooSlow(*t)),
            Some(BodyStop::Busy) => Err(BodyError::Busy),
            None => Err(BodyError::Unreadable),
        },
        Err(_) => Err(BodyError::TooSlow(within)),
    }
}

/// The first value of query parameter `name` in `uri`, decoded.
pub fn query_param(uri: &hyper::Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Whether the visitor reaches the collector over https: `public_url` says so, or a trusted
/// proxy in front of it does (`X-Forwarded-Proto` or `Forwarded: proto=`). The last value is
/// the one the nearest proxy wrote.
pub fn is_https(config: &Config, headers: &HeaderMap, peer: &FullIp) -> bool {
    if config
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .is_some_and(|u| u.scheme() == "https")
    {
        return true;
    }
    if !crate::privacy::is_trusted_proxy(peer, &config.privacy) {
        return false;
    }
    let last = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .map(|v| v.trim().to_ascii_lowercase())
    };
    if let Some(proto) = last("x-forwarded-proto") {
        return proto == "https";
    }
    last("forwarded").is_some_and(|element| {
        element
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .any(|(k, v)| k.trim() == "proto" && v.trim().trim_matches('"') == "https")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::header_map as h;

    #[test]
    fn https_from_public_url_or_trusted_proxy() {
        let mut config = Config::from_table(toml::Table::new()).unwrap();
        let proxy = &FullIp::of_peer("10.0.0.1".parse().unwrap());
        let forwarded = h(&[("x-forwarded-proto", "https")]);
        assert!(!is_https(&config, &HeaderMap::new(), proxy));
        // An untrusted peer's claim is not believed.
        assert!(!is_https(&config, &forwarded, proxy));
        config.privacy.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(is_https(&config, &forwarded, proxy));
        assert!(is_https(
            &config,
            &h(&[("forwarded", "for=1.2.3.4;proto=https")]),
            proxy
        ));
        assert!(!is_https(
            &config,
            &h(&[("x-forwarded-proto", "https, http")]),
            proxy
        ));
        config.privacy.trusted_proxies.clear();
        config.public_url = Some("https://analytics.example.org".into());
        assert!(is_https(&config, &HeaderMap::new(), proxy));
    }

    #[test]
    fn query_parameters() {
        let uri: hyper::Uri = "/login?next=%2Fa%3Fb&next=2&t=".parse().unwrap();
        assert_eq!(query_param(&uri, "next").as_deref(), Some("/a?b"));
        assert_eq!(query_param(&uri, "t").as_deref(), Some(""));
        assert_eq!(query_param(&uri, "lang"), None);
        assert_eq!(query_param(&"/".parse().unwrap(), "t"), None);
    }

    #[test]
    fn answers_carry_their_type_and_are_not_cached() {
        let r = json_error(StatusCode::FORBIDDEN, "no \"way\"");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let text = text(StatusCode::OK, TEXT, "ok");
        assert!(text.headers().get(header::CACHE_CONTROL).is_none());
    }

    #[test]
    fn a_page_always_has_a_policy() {
        let r = html(StatusCode::OK, String::new(), "default-src 'self'");
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'"
        );
        assert_eq!(r.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let r = html(StatusCode::OK, String::new(), "frame-ancestors a\nb");
        assert_eq!(
            r.headers()[header::CONTENT_SECURITY_POLICY],
            FALLBACK_POLICY
        );
    }

    #[tokio::test]
    async fn bodies_are_limited() {
        let t = BODY_TIMEOUT;
        let ok = read_body(Full::new(Bytes::from_static(b"{}")), 10, t).await;
        assert_eq!(ok.unwrap(), Bytes::from_static(b"{}"));
        let big = read_body(Full::new(Bytes::from(vec![b' '; 11])), 10, t).await;
        assert_eq!(big, Err(BodyError::TooLarge(10)));
        // A body of unknown length is cut off at the limit too.
        let big = read_body(Drip(vec![b' '; 11]), 10, t).await;
        assert_eq!(big, Err(BodyError::TooLarge(10)));
        let ok = read_body(Drip(b"{}".to_vec()), 10, t).await;
        assert_eq!(ok.unwrap(), Bytes::from_static(b"{}"));
        // A body that never ends is given up on.
        let slow = read_body(Stalled, 10, Duration::from_millis(50)).await;
        assert_eq!(slow, Err(BodyError::TooSlow(Duration::from_millis(50))));
        assert_eq!(slow.unwrap_err().status(), StatusCode::REQUEST_TIMEOUT);
    }

    /// A body that arrives one byte at a time and gives no length.
    struct Drip(Vec<u8>);

    impl hyper::body::Body for Drip {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(None);
            }
            let b = self.0.remove(0);
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![b])))))
        }
    }

    /// A body whose next byte never comes.
    struct Stalled;

    impl hyper::body::Body for Stalled {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }
}
