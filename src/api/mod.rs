//! The Stats API's door: `POST /api/v2/query` and `GET /api/v2/openapi.json`.
//!
//! Everything around the query engine ([`crate::query::Engine`]) happens here: the API key
//! ([`keys`], [`keystore`]), the per-key rate limit ([`ratelimit`]), the body's size and type,
//! which sites the key may see, a timeout around the engine, and the answer as Plausible's JSON
//! or as CSV ([`render`]). Errors are `{"error": "..."}` with the words Plausible uses where
//! Plausible has the same case, so its clients understand them.
//!
//! Besides API keys, the dashboard's callers are let in: an operator's session (cookie plus
//! CSRF header) and a shared link (`X-Tally-Share`), both checked by [`crate::access`]; see
//! [`authenticate`] for the order.
//!
//! The read side never touches the write path: this module uses only `access`, `config`,
//! `store`, `query`, `metrics`, `state` and `time`.

pub mod keys;
pub mod keystore;
pub mod openapi;
pub mod ratelimit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::access::{self, Access};
use crate::config::{ApiConfig, Config};
use crate::http::{self, BodyError};
use crate::query::{Access as QueryAccess, Engine, render};
use crate::state::App;
use keystore::{AuthError, KeyCache};
use ratelimit::Limiter;

/// Response type of the API's handlers (the same as every other handler's).
pub use crate::http::Resp;

/// Plausible's answer to a request without a key.
pub const MISSING_KEY: &str =
    "Missing API key. Please use a valid tally API key as a Bearer Token.";

/// Plausible's answer to a key that is unknown, revoked or not given the site, and to a site
/// that does not exist: it does not say which.
pub const INVALID_KEY_OR_SITE: &str = "Invalid API key or site ID. Please make sure you're using a valid API key with access to the site you've requested.";

/// Plausible's answer to a query without `site_id`.
pub const MISSING_SITE: &str =
    "Missing site ID. Please provide the required site_id parameter with your request.";

/// What the API needs besides the shared state: the engine, the keys, the limits.
pub struct Api {
    engine: Engine,
    keys: Arc<KeyCache>,
    access: Arc<Access>,
    limiter: Limiter,
    /// The dashboard's limits (sessions and shared links): see [`dashboard_limits`].
    dashboard_limiter: Limiter,
    openapi: Bytes,
}

/// The limits of dashboard callers: one view fires about 7 queries (a tab 4 to 6 more) and the
/// realtime card one every 30 s, and an operator clicking through rows and ranges quickly
/// makes dozens of views in a minute, so they get a burst of at least 300 and at least 36,000 an
/// hour (ten a second), or the configured limits where those are higher. Still a bound: one
/// session cannot take the database for itself.
pub fn dashboard_limits(api: &ApiConfig) -> ApiConfig {
    ApiConfig {
        requests_per_hour: api.requests_per_hour.max(36_000),
        burst: api.burst.max(300),
        ..api.clone()
    }
}

impl Api {
    /// The API over `engine`, checking keys against `keys` and sessions and shared links
    /// against `access`, with the limits of `config.api`.
    pub fn new(engine: Engine, keys: Arc<KeyCache>, access: Arc<Access>, config: &Config) -> Self {
        Api {
            engine,
            keys,
            access,
            limiter: Limiter::new(&config.api),
            dashboard_limiter: Limiter::new(&dashboard_limits(&config.api)),
            openapi: Bytes::from(openapi::document(config)),
        }
    }

    /// The engine (the dashboard's admin pages list keys through [`Api::keys`]).
    pub fn keys(&self) -> &Arc<KeyCache> {
        &self.keys
    }

    /// The accounts, sessions and links.
    pub fn access(&self) -> &Arc<Access> {
        &self.access
    }
}

/// Who is asking, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    /// An API key.
    Key(String),
    /// A signed-in operator.
    Operator(String),
    /// A shared link (its id).
    Share(String),
}

impl Who {
    /// The rate limiter's key.
    fn limit_key(&self) -> String {
        match self {
            Who::Key(id) => id.clone(),
            Who::Operator(name) => format!("user:{name}"),
            Who::Share(id) => format!("share:{id}"),
        }
    }
}

/// Authenticates a request in the contract's order: `Authorization: Bearer` (an API key);
/// else the session cookie with `X-Tally-CSRF` equal to the session's CSRF token (the
/// operator's sites); else `X-Tally-Share` naming a live shared link, with its grant when it is
/// protected (that one site). Anything else is 401.
async fn authenticate(api: &Api, headers: &HeaderMap) -> Result<(Who, Vec<u32>), Refusal> {
    let unavailable = || {
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "API keys cannot be checked right now (the database is unreachable); try again later",
        )
    };
    if let Some(token) = bearer(headers) {
        let caller = api.keys.authenticate(token).await.map_err(|e| match e {
            AuthError::Invalid => Refusal::unauthorized(INVALID_KEY_OR_SITE),
            AuthError::Unavailable => unavailable(),
        })?;
        return Ok((Who::Key(caller.id), caller.sites));
    }
    let now = crate::time::now_unix();
    if let (Some(token), Some(csrf)) = (
        access::session_cookie(headers),
        access::header_text(headers, access::CSRF_HEADER),
    ) {
        let viewer = api
            .access
            .session(&token, now)
            .await
            .map_err(|_| unavailable())?;
        if let Some(v) = viewer
            && access::secret::same(csrf, &v.csrf)
        {
            return Ok((Who::Operator(v.user), v.sites));
        }
    }
    if let Some(token) = access::header_text(headers, access::SHARE_HEADER) {
        let shared = api.access.share(token).await.map_err(|_| unavailable())?;
        if let Some(s) = shared
            && s.admits(access::header_text(headers, access::GRANT_HEADER))
        {
            return Ok((Who::Share(s.id), vec![s.site]));
        }
        return Err(Refusal::unauthorized(INVALID_KEY_OR_SITE));
    }
    if access::session_cookie(headers).is_some() {
        return Err(Refusal::unauthorized(
            "Missing or wrong X-Tally-CSRF header for this session.",
        ));
    }
    Err(Refusal::unauthorized(MISSING_KEY))
}

/// A refusal: a status and the one line for `{"error": ...}`.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    fn with(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn unauthorized(message: &str) -> Self {
        Refusal::new(StatusCode::UNAUTHORIZED, message)
            .with(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    fn into_response(self) -> Resp {
        let mut r = http::json_error(self.status, &self.message);
        for (name, value) in self.headers {
            r.headers_mut().insert(name, value);
        }
        r
    }
}

/// A 200 with `body` of `content_type`, never cached (statistics are private).
fn with_type(body: Bytes, content_type: &'static str) -> Resp {
    http::no_store(StatusCode::OK, content_type, body)
}

/// `POST /api/v2/query`.
pub async fn query<B>(app: &App, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let resp = match answer(app, req).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    };
    let status = resp.status().as_u16();
    app.metrics.api_request(status);
    tracing::debug!(
        status,
        ms = started.elapsed().as_millis() as u64,
        "stats API query"
    );
    resp
}

async fn answer<B>(app: &App, req: Request<B>) -> Result<Resp, Refusal>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if req.method() != Method::POST {
        return Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not allowed here; use POST", req.method()),
        )
        .with(header::ALLOW, HeaderValue::from_static("POST")));
    }
    let Some(api) = app.api.as_ref() else {
        return Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the Stats API is not running on this collector",
        ));
    };
    let (parts, body) = req.into_parts();
    let (who, sites) = authenticate(api, &parts.headers).await?;
    let limiter = match who {
        Who::Key(_) => &api.limiter,
        Who::Operator(_) | Who::Share(_) => &api.dashboard_limiter,
    };
    limiter.check(&who.limit_key()).map_err(|limited| {
        Refusal::new(StatusCode::TOO_MANY_REQUESTS, limiter.message()).with(
            header::RETRY_AFTER,
            HeaderValue::from(limited.retry_after_secs),
        )
    })?;
    if !is_json(&parts.headers) {
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the query must be sent as application/json",
        ));
    }
    let csv = wants_csv(parts.uri.query(), &parts.headers)?;
    let body = read_body(
        body,
        app.config.api.max_body_bytes,
        app.config.server.body_read_timeout(),
    )
    .await?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let site = requested_site(&app.config, &body)?;
    if !sites.contains(&site) {
        return Err(Refusal::unauthorized(INVALID_KEY_OR_SITE));
    }
    let access = QueryAccess::Sites(sites);
    let timeout = app.config.api.query_timeout();
    let answer = within(timeout, api.engine.run(&body, &access))
        .await
        .inspect_err(
            |r| tracing::debug!(caller = ?who, site, status = %r.status, "query refused"),
        )?;
    if csv {
        let text = render::csv(&answer).map_err(|e| {
            tracing::error!(error = %e, "writing CSV failed");
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "writing CSV failed")
        })?;
        Ok(with_type(
            text.into(),
            "text/csv; charset=utf-8; header=present",
        ))
    } else {
        Ok(with_type(
            render::json(&answer).to_string().into(),
            "application/json",
        ))
    }
}

/// The engine's answer, its refusal with the engine's status, or 503 after `timeout`. Dropping
/// the engine's future at the timeout ends its request to ClickHouse.
async fn within(
    timeout: Duration,
    run: impl Future<Output = Result<crate::query::Answer, crate::query::QueryError>>,
) -> Result<crate::query::Answer, Refusal> {
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => {
            let status = StatusCode::from_u16(e.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(Refusal::new(status, e.message))
        }
        Err(_) => {
            tracing::warn!(?timeout, "stats API query timed out");
            Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the query took longer than {} seconds; ask for less (a shorter date range, \
                     fewer dimensions)",
                    timeout.as_secs()
                ),
            ))
        }
    }
}

/// `GET /api/v2/openapi.json`.
pub fn openapi<B>(app: &App, req: &Request<B>) -> Resp {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {} is not allowed here; use GET", req.method()),
        )
        .with(header::ALLOW, HeaderValue::from_static("GET, HEAD"))
        .into_response();
    }
    let body = match &app.api {
        Some(api) => api.openapi.clone(),
        None => Bytes::from(openapi::document(&app.config)),
    };
    let mut r = Response::new(Full::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    r
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case, RFC 9110 §11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the body is declared JSON (`application/json`, any `+json`), or not declared at all.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(t, suffix)| {
            t.starts_with("application/") && suffix.eq_ignore_ascii_case("json")
        })
}

/// CSV when the query string says `format=csv`, or when it says nothing and `Accept` prefers
/// `text/csv` to JSON.
fn wants_csv(query: Option<&str>, headers: &HeaderMap) -> Result<bool, Refusal> {
    let format = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "format")
        .map(|(_, v)| v.into_owned());
    match format.as_deref() {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("format must be json or csv, not {other:?}"),
            ));
        }
        None => {}
    }
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let (mut csv, mut json) = (0.0f32, 0.0f32);
    for (range, q) in crate::headers::weighted(accept) {
        if range.eq_ignore_ascii_case("text/csv") {
            csv = csv.max(q);
        } else if range.eq_ignore_ascii_case("application/json") {
            json = json.max(q);
        }
    }
    Ok(csv > 0.0 && csv > json)
}

/// Reads the body, at most `limit` bytes and within `timeout`.
async fn read_body<B>(body: B, limit: usize, timeout: Duration) -> Result<Bytes, Refusal>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http::read_body(body, limit, timeout)
        .await
        .map_err(|e| match e {
            // The API's callers send queries: say so.
            BodyError::TooLarge(limit) => Refusal::new(
                e.status(),
                format!("the query is larger than {limit} bytes"),
            ),
            e => Refusal::new(e.status(), e.to_string()),
        })
}

/// The site a query names in `site_id`: tally's id (a number, or digits in a string) or one of
/// the site's domains (`example.org`, also for a site configured as `*.example.org`). A site
/// that is not configured is refused like one the key may not see, as Plausible does.
fn requested_site(config: &Config, body: &Value) -> Result<u32, Refusal> {
    let unknown = || Refusal::unauthorized(INVALID_KEY_OR_SITE);
    let id = match body.get("site_id") {
        None | Some(Value::Null) => {
            return Err(Refusal::new(StatusCode::BAD_REQUEST, MISSING_SITE));
        }
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u32>().ok()
        }
        Some(Value::String(s)) => config.site_by_domain(s).map(|site| site.id),
        Some(_) => None,
    };
    id.filter(|id| config.site(*id).is_some())
        .ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn dashboard_callers_are_limited_apart_with_a_burst_for_a_whole_view() {
        let api = ApiConfig {
            requests_per_hour: 600,
            burst: 10,
            ..ApiConfig::default()
        };
        let d = dashboard_limits(&api);
        assert_eq!((d.requests_per_hour, d.burst), (36_000, 300));
        let high = ApiConfig {
            requests_per_hour: 100_000,
            burst: 500,
            ..ApiConfig::default()
        };
        let d = dashboard_limits(&high);
        assert_eq!((d.requests_per_hour, d.burst), (100_000, 500));
        // A key, an operator and a link of the same text never share a budget.
        let keys = [
            Who::Key("ada".into()).limit_key(),
            Who::Operator("ada".into()).limit_key(),
            Who::Share("ada".into()).limit_key(),
        ];
        assert_eq!(
            keys.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            bearer(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer  abc ")])),
            Some("abc")
        );
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(bearer(&headers(&[])), None);
    }

    #[test]
    fn json_bodies_only() {
        assert!(is_json(&headers(&[])));
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(is_json(&headers(&[(
            "content-type",
            "application/vnd.x+json"
        )])));
        assert!(!is_json(&headers(&[(
            "content-type",
            "application/x-www-form-urlencoded"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&headers(&[("content-type", "text/x+json")])));
    }

    #[test]
    fn csv_by_parameter_or_accept() {
        let none = headers(&[]);
        assert!(wants_csv(Some("format=csv"), &none).unwrap());
        assert!(!wants_csv(Some("format=json"), &none).unwrap());
        assert!(!wants_csv(None, &none).unwrap());
        assert!(wants_csv(Some("format=xml"), &none).is_err());
        let csv = headers(&[("accept", "text/csv")]);
        assert!(wants_csv(None, &csv).unwrap());
        // The parameter wins over Accept.
        assert!(!wants_csv(Some("format=json"), &csv).unwrap());
        for (accept, expect) in [
            ("application/json, text/csv;q=0.5", false),
            ("text/csv, application/json;q=0.5", true),
            ("text/csv;q=0", false),
            ("*/*", false),
            ("text/csv;q=oops", false),
            ("TEXT/CSV", true),
        ] {
            let h = headers(&[("accept", accept)]);
            assert_eq!(wants_csv(None, &h).unwrap(), expect, "{accept}");
        }
    }

    #[test]
    fn site_ids_and_domains() {
        let config = Config::from_table(
            r#"
            [[sites]]
            id = 1
            name = "a"
            domains = ["example.org", "*.example.org"]
            [[sites]]
            id = 2
            name = "b"
            domains = ["*.other.net"]
            "#
            .parse()
            .unwrap(),
        )
        .unwrap();
        let site = |v: Value| requested_site(&config, &serde_json::json!({ "site_id": v }));
        assert_eq!(site(1.into()).unwrap(), 1);
        assert_eq!(site("2".into()).unwrap(), 2);
        assert_eq!(site("example.org".into()).unwrap(), 1);
        assert_eq!(site("Example.ORG".into()).unwrap(), 1);
        assert_eq!(site("other.net".into()).unwrap(), 2);
        for bad in [
            serde_json::json!(3),
            serde_json::json!("3"),
            serde_json::json!(-1),
            serde_json::json!(1.5),
            serde_json::json!("www.example.org.evil"),
            serde_json::json!(""),
            serde_json::json!([1]),
            serde_json::json!(true),
            serde_json::json!("99999999999"),
        ] {
            let e = site(bad.clone()).unwrap_err();
            assert_eq!(e.status, StatusCode::UNAUTHORIZED, "{bad}");
            assert_eq!(e.message, INVALID_KEY_OR_SITE);
        }
        for missing in [serde_json::json!({}), serde_json::json!({"site_id": null})] {
            let e = requested_site(&config, &missing).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert_eq!(e.message, MISSING_SITE);
        }
    }

    #[tokio::test]
    async fn the_engine_gets_a_time_limit_and_keeps_its_status() {
        use crate::query::{Answer, QueryError};
        let never = std::future::pending::<Result<Answer, QueryError>>();
        let started = Instant::now();
        let e = within(Duration::from_millis(200), never).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            e.message.starts_with("the query took longer than"),
            "{}",
            e.message
        );
        let in_time = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err::<Answer, _>(QueryError {
                status: 404,
                message: "unknown site".into(),
            })
        };
        let e = within(Duration::from_secs(30), in_time).await.unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str()),
            (StatusCode::NOT_FOUND, "unknown site")
        );
        let odd = async {
            Err::<Answer, _>(QueryError {
                status: 200,
                message: "?".into(),
            })
        };
        let e = within(Duration::from_secs(30), odd).await.unwrap_err();
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        let answer = Answer {
            query: Value::Null,
            meta: serde_json::Map::new(),
            columns: vec![],
            results: vec![],
        };
        let ok = within(Duration::from_secs(30), async { Ok(answer.clone()) }).await;
        assert_eq!(ok.unwrap(), answer);
    }
}
