//! `POST /api/event`: Plausible's Events API, so that sites running Plausible's script (or a
//! server-side sender of its API) move to tally by changing the endpoint.
//!
//! The body is one JSON object (the script sends it as `text/plain`); every field has a long
//! and a short name (`name`/`n`, `url`/`u`, `domain`/`d`, `referrer`/`r`, `props`/`p` and the
//! legacy `meta`/`m`, `revenue`/`$`, `interactive`/`i`; engagement's `sd` and `e`). What
//! becomes of each is told in the README, "Coming from Plausible".
//!
//! As Plausible: `202 ok` for every hit taken, whether stored or dropped on purpose (opt-out,
//! `DNT`, `GPC`, excluded address, bot, a `domain` no site has); `400` with a one-line reason
//! for a body that is not a valid event. Beyond Plausible: the page's host must belong to the
//! site (as for Matomo hits), and a request naming several sites is stored for all of them or
//! for none.

use bytes::Bytes;
use hyper::header::{self, ACCEPT_LANGUAGE, HeaderValue, USER_AGENT};
use hyper::{HeaderMap, Request, StatusCode};
use serde_json::{Map, Value};

use super::hit::{full_ip_location, primary_language};
use super::reject::Reject;
use super::track::{read_body, reject};
use crate::config::{Config, SiteConfig};
use crate::enrich::ClientHints;
use crate::enrich::uadata;
use crate::event::{Event, Kind, VisitorType};
use crate::http::Resp;
use crate::pipeline::{self, Hit};
use crate::privacy::{self, FullIp};
use crate::state::App;

/// Most custom properties kept of one event (Plausible keeps the first 30).
pub const MAX_PROPS: usize = 30;
/// Longest property key, bytes (Plausible's limit; a longer one refuses the event).
pub const MAX_PROP_KEY_BYTES: usize = 300;
/// Longest property value, bytes (Plausible's limit; a longer one refuses the event).
pub const MAX_PROP_VALUE_BYTES: usize = 2000;
/// Longest event name, characters (Plausible's limit).
pub const MAX_NAME_CHARS: usize = 120;
/// Longest page URL and referrer, bytes (Plausible refuses a longer URL and cuts a longer
/// referrer).
pub const MAX_URL_BYTES: usize = 2000;
/// Engagement times from this long on are an old script's bug (Plausible ignores them): 30
/// days, in milliseconds.
const TOO_LARGE_ENGAGEMENT_MS: u64 = 30 * 24 * 3600 * 1000;

/// The event names with a meaning of their own; every other name is a custom event.
const PAGEVIEW: &str = "pageview";
const ENGAGEMENT: &str = "engagement";
const OUTBOUND: &str = "Outbound Link: Click";
const DOWNLOAD: &str = "File Download";

/// One event as the request described it, validated, before any site or visitor is looked at.
#[derive(Debug, Clone, PartialEq)]
pub struct PlausibleEvent {
    /// `name`/`n`.
    pub name: String,
    /// `url`/`u`: the page.
    pub url: String,
    /// `domain`/`d`, split at commas, trimmed, lower-case, `www.` removed.
    pub domains: Vec<String>,
    /// `referrer`/`r`, cut to [`MAX_URL_BYTES`].
    pub referrer: String,
    /// `props`/`p` (or the legacy `meta`/`m`): keys and values as text.
    pub props: Vec<(String, String)>,
    /// `revenue`/`$`: the amount (its currency is not kept: tally stores amounts without one).
    pub revenue: Option<f64>,
    /// `interactive`/`i` (default true).
    pub interactive: bool,
    /// Engagement `sd`: scroll depth, percent (0–100).
    pub scroll_depth: Option<u8>,
    /// Engagement `e`: engaged time, milliseconds.
    pub engagement_ms: Option<u64>,
}

impl PlausibleEvent {
    /// The kind tally stores this event as.
    pub fn kind(&self) -> Kind {
        match self.name.as_str() {
            PAGEVIEW => Kind::Pageview,
            ENGAGEMENT => Kind::Ping,
            OUTBOUND => Kind::Outlink,
            DOWNLOAD => Kind::Download,
            _ => Kind::Event,
        }
    }

    fn prop(&self, key: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The first of `names` present in `body` and not `null`.
fn field<'b>(body: &'b Map<String, Value>, names: &[&str]) -> Option<&'b Value> {
    names
        .iter()
        .find_map(|n| body.get(*n).filter(|v| !v.is_null()))
}

/// Validates a request body. The error is the one-line reason the client gets with its `400`.
pub fn parse(body: &[u8]) -> Result<PlausibleEvent, Reject> {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(body) else {
        return Err(Reject::bad_request("body is not a JSON object"));
    };
    let name = match field(&body, &["n", "name"]) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        // Plausible takes a number as a name (404 tracking sends the status).
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(Reject::bad_request("`name` must be a non-empty string")),
        None => return Err(Reject::bad_request("`name` is required")),
    };
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Reject::bad_request(format!(
            "`name` is longer than {MAX_NAME_CHARS} characters"
        )));
    }
    let url = match field(&body, &["u", "url"]) {
        Some(Value::String(s)) if s.len() <= MAX_URL_BYTES => s.clone(),
        Some(Value::String(_)) => {
            return Err(Reject::bad_request(format!(
                "`url` is longer than {MAX_URL_BYTES} bytes"
            )));
        }
        Some(_) => return Err(Reject::bad_request("`url` must be a string")),
        None => return Err(Reject::bad_request("`url` is required")),
    };
    let domains = match field(&body, &["d", "domain"]) {
        Some(Value::String(s)) => s
            .split(',')
            .map(|d| {
                let d = d.trim().to_ascii_lowercase();
                d.strip_prefix("www.").map(str::to_string).unwrap_or(d)
            })
            .filter(|d| !d.is_empty())
            .collect::<Vec<_>>(),
        Some(_) => return Err(Reject::bad_request("`domain` must be a string")),
        // As Plausible: without a domain, the page's own host names the site.
        None => url::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .map(|h| vec![h.strip_prefix("www.").map(str::to_string).unwrap_or(h)])
            .unwrap_or_default(),
    };
    if domains.is_empty() {
        return Err(Reject::bad_request("`domain` is required"));
    }
    let referrer = match field(&body, &["r", "referrer"]) {
        Some(Value::String(s)) => cut(s, MAX_URL_BYTES),
        _ => String::new(),
    };
    let props = props(field(&body, &["m", "meta", "p", "props"]))?;
    let interactive = !matches!(
        field(&body, &["i", "interactive"]),
        Some(Value::Bool(false))
    );
    let revenue = field(&body, &["$", "revenue"]).and_then(revenue);
    let (scroll_depth, engagement_ms) = if name == ENGAGEMENT {
        let sd = body.get("sd").and_then(scroll_depth);
        let e = body.get("e").and_then(engagement_time);
        if sd.is_none() && e.is_none() {
            return Err(Reject::bad_request(
                "an engagement needs a whole number in `sd` or `e`",
            ));
        }
        (sd, e)
    } else {
        (None, None)
    };
    Ok(PlausibleEvent {
        name,
        url,
        domains,
        referrer,
        props,
        revenue,
        interactive,
        scroll_depth,
        engagement_ms,
    })
}

/// `props`: an object, or an object encoded as a JSON string (older scripts, `meta`). Values
/// that are lists, objects, `null` or blank are left out, as by Plausible; numbers and
/// booleans are written out; the first [`MAX_PROPS`] in key order are kept (Plausible keeps an
/// arbitrary 30 of its map); a key or
/// value beyond its limit refuses the event.
fn props(raw: Option<&Value>) -> Result<Vec<(String, String)>, Reject> {
    let decoded;
    let map = match raw {
        Some(Value::Object(m)) => m,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => {
                decoded = m;
                &decoded
            }
            _ => return Ok(Vec::new()),
        },
        _ => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let v = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if k.trim_start().is_empty() || v.trim_start().is_empty() {
            continue;
        }
        if k.len() > MAX_PROP_KEY_BYTES || v.len() > MAX_PROP_VALUE_BYTES {
            return Err(Reject::bad_request(format!(
                "`props` keys may have at most {MAX_PROP_KEY_BYTES} bytes and values \
                 {MAX_PROP_VALUE_BYTES} bytes"
            )));
        }
        out.push((k.clone(), v));
        if out.len() == MAX_PROPS {
            break;
        }
    }
    Ok(out)
}

/// `revenue`: `{"amount": 12.5 | "12.50", "currency": "EUR"}`; the amount when it is a finite
/// number.
fn revenue(v: &Value) -> Option<f64> {
    let amount = v.as_object()?.get("amount")?;
    let f = match amount {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    f.filter(|f| f.is_finite())
}

/// Whole number, or a string holding one.
fn whole(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `sd`: 0–100; more is 100 (as Plausible); negative or not a whole number is unknown.
fn scroll_depth(v: &Value) -> Option<u8> {
    let n = whole(v)?;
    (n >= 0).then(|| n.min(100) as u8)
}

/// `e`: milliseconds, 0 up to [`TOO_LARGE_ENGAGEMENT_MS`].
fn engagement_time(v: &Value) -> Option<u64> {
    let n = u64::try_from(whole(v)?).ok()?;
    (n < TOO_LARGE_ENGAGEMENT_MS).then_some(n)
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The sites a request names: for each name, the first site whose `domains` allow it as a
/// host; each site once. Names no site has are left out (Plausible drops them quietly).
pub fn sites<'c>(config: &'c Config, names: &[String]) -> Vec<&'c SiteConfig> {
    let mut out: Vec<&SiteConfig> = Vec::new();
    for name in names {
        let site = config.sites.iter().find(|s| {
            s.allows_host(name)
                || s.allows_host(&format!("www.{name}"))
                || s.domains.iter().any(|d| d.eq_ignore_ascii_case(name))
        });
        if let Some(site) = site
            && !out.iter().any(|s| s.id == site.id)
        {
            out.push(site);
        }
    }
    out
}

/// The answer to a hit taken (stored or dropped on purpose): Plausible's `202` and `ok`.
pub fn accepted() -> Resp {
    crate::http::no_store(
        StatusCode::ACCEPTED,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"ok"),
    )
}

/// Whether the body is announced as something other than JSON or plain text.
fn wrong_type(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    !matches!(essence, "application/json" | "text/plain" | "")
}

/// Handles `POST /api/event` from `peer`. Generic over the body so that it can be driven
/// without a socket; the server passes hyper's `Incoming`.
pub async fn handle<B>(app: &App, req: Request<B>, peer: FullIp) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if wrong_type(&parts.headers) {
        return reject(
            app,
            "unsupported_media_type",
            Reject::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the body must be JSON, sent as application/json or text/plain",
            ),
        );
    }
    let body = match read_body(app, body).await {
        Ok(b) => b,
        Err((reason, r)) => return reject(app, reason, r),
    };
    // The body is judged before anything about the visitor is looked at, so that a refused or
    // dropped hit gets exactly the answer a stored one would.
    let event = match parse(&body) {
        Ok(e) => e,
        Err(r) => return reject(app, "invalid", r),
    };
    let sites = sites(&app.config, &event.domains);
    if sites.is_empty() {
        // Refused as a Matomo hit for an unknown `idsite` is (400), not dropped in silence: a
        // site that names a domain tally does not know is misconfigured and should hear it.
        // Names beside a known one are ignored, as Plausible ignores sites it does not host.
        return reject(
            app,
            "unknown_site",
            Reject::bad_request(format!(
                "no configured site has the domain {:?}",
                event.domains.join(",")
            )),
        );
    }
    if let Some(refusal) = privacy::refusal(&parts.headers, &app.config.privacy) {
        app.metrics.drop_for(refusal.as_str());
        return accepted();
    }
    // The full address lives only inside this match: located (when configured), then gone.
    let (ip, location) = match privacy::arrive(peer, &parts.headers, &app.config.privacy) {
        Ok((ip, full)) => (ip, full_ip_location(app, &full)),
        Err(privacy::Excluded) => {
            app.metrics.drop_for("excluded_ip");
            return accepted();
        }
    };
    let page = match url::Url::parse(&event.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => u,
        _ => {
            return reject(
                app,
                "invalid",
                Reject::bad_request("`url` is not an absolute http(s) URL"),
            );
        }
    };
    let h = &parts.headers;
    let user_agent = header_str(h, USER_AGENT);
    let accept_language = header_str(h, ACCEPT_LANGUAGE);
    let hints = ClientHints {
        ua: header_opt(h, "sec-ch-ua"),
        platform: header_opt(h, "sec-ch-ua-platform"),
        platform_version: header_opt(h, "sec-ch-ua-platform-version"),
        mobile: header_opt(h, "sec-ch-ua-mobile"),
        full_version_list: header_opt(h, "sec-ch-ua-full-version-list"),
    };
    let now = crate::time::now_unix();
    let mut events = Vec::with_capacity(sites.len());
    for site in sites {
        let row = row(&event, site.id, now, ip.to_string(), accept_language, h);
        let hit = Hit {
            site,
            page: page.clone(),
            ip,
            user_agent: user_agent.into(),
            accept_language: accept_language.into(),
            client_id: None,
            bots_param: false,
            hints,
            ua_data: None,
            order_id: None,
            location: location.clone(),
        };
        // One site refusing (a page on none of its domains) refuses the request: nothing of
        // it is stored for the others either.
        match pipeline::run(row, &hit, app) {
            Ok(Some(e)) => events.push(e),
            Ok(None) => {}
            Err(r) => return reject(app, "invalid", r),
        }
    }
    let spooled = app.sink.enqueue(events);
    match spooled {
        Ok(at) => match app.sink.durable(at).await {
            Ok(()) => accepted(),
            Err(why) => reject(app, why.reason(), super::track::refused(why)),
        },
        Err(why) => reject(app, why.reason(), super::track::refused(why)),
    }
}

/// The stored row of `event` for one site, before the pipeline's steps.
fn row(
    event: &PlausibleEvent,
    site_id: u32,
    now: u32,
    ip: String,
    accept_language: &str,
    headers: &HeaderMap,
) -> Event {
    let kind = event.kind();
    let mut row = Event {
        ts: now,
        site_id,
        kind: kind as i8,
        url: event.url.clone(),
        referrer: event.referrer.clone(),
        ip,
        visitor_type: VisitorType::Unknown as i8,
        lang: primary_language(accept_language),
        device_model: header_opt(headers, "sec-ch-ua-model")
            .map(uadata::model_from_header)
            .unwrap_or_default(),
        ..Event::default()
    };
    match kind {
        Kind::Outlink | Kind::Download => {
            row.target_url = event.prop("url").unwrap_or("").to_string();
        }
        Kind::Event => {
            row.event_name = event.name.clone();
            row.revenue = event.revenue;
        }
        Kind::Ping => row.scroll_depth = event.scroll_depth,
        _ => {}
    }
    // An engagement repeats its page view's props; they stay with the page view.
    if kind != Kind::Ping {
        (row.prop_keys, row.prop_values) = event.props.iter().cloned().unzip();
    }
    row
}

fn header_str(h: &HeaderMap, name: hyper::header::HeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn header_opt<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v: &HeaderValue| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Result<PlausibleEvent, Reject> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn short_and_long_names() {
        let short = p(
            json!({"n": "Signup", "u": "https://example.org/a", "d": "example.org",
            "r": "https://ref.net/", "p": {"plan": "pro", "seats": 3, "trial": true},
            "$": {"amount": "12.50", "currency": "EUR"}, "i": false}),
        )
        .unwrap();
        let long = p(json!({"name": "Signup", "url": "https://example.org/a",
            "domain": "example.org", "referrer": "https://ref.net/",
            "props": {"plan": "pro", "seats": 3, "trial": true},
            "revenue": {"amount": 12.5, "currency": "EUR"}, "interactive": false}))
        .unwrap();
        assert_eq!(short, long);
        assert_eq!(short.kind(), Kind::Event);
        assert_eq!(short.revenue, Some(12.5));
        assert!(!short.interactive);
        assert_eq!(
            short.props,
            [
                ("plan".to_string(), "pro".to_string()),
                ("seats".to_string(), "3".to_string()),
                ("trial".to_string(), "true".to_string())
            ]
        );
    }

    #[test]
    fn kinds() {
        let k = |n: &str| {
            p(json!({"n": n, "u": "https://example.org/", "d": "example.org", "e": 5}))
                .unwrap()
                .kind()
        };
        assert_eq!(k("pageview"), Kind::Pageview);
        assert_eq!(k("engagement"), Kind::Ping);
        assert_eq!(k("Outbound Link: Click"), Kind::Outlink);
        assert_eq!(k("File Download"), Kind::Download);
        assert_eq!(k("404"), Kind::Event);
        assert_eq!(k("Pageview"), Kind::Event);
    }

    #[test]
    fn props_as_plausible_filters_them() {
        // A JSON string (older scripts), blank and nested values left out.
        let e = p(
            json!({"n": "x", "u": "https://example.org/", "d": "example.org",
            "m": "{\"a\":\"1\",\"b\":\"\",\"c\":[1],\"d\":{\"x\":1},\"e\":null,\" \":\"k\"}"}),
        )
        .unwrap();
        assert_eq!(e.props, [("a".to_string(), "1".to_string())]);
        // Not an object: no props, the event kept.
        let e = p(
            json!({"n": "x", "u": "https://example.org/", "d": "example.org",
            "p": "[1,2]"}),
        )
        .unwrap();
        assert!(e.props.is_empty());
        // At most 30.
        let many: Map<String, Value> = (0..40).map(|i| (format!("k{i:02}"), json!(i))).collect();
        let e = p(
            json!({"n": "x", "u": "https://example.org/", "d": "example.org",
            "p": many}),
        )
        .unwrap();
        assert_eq!(e.props.len(), MAX_PROPS);
        // Too long: refused.
        for props in [
            json!({"k".repeat(301): "v"}),
            json!({"k": "v".repeat(2001)}),
        ] {
            let err = p(
                json!({"n": "x", "u": "https://example.org/", "d": "example.org",
                "p": props}),
            )
            .unwrap_err();
            assert!(err.message.contains("300 bytes"), "{}", err.message);
        }
        let ok = p(
            json!({"n": "x", "u": "https://example.org/", "d": "example.org",
            "p": {"k".repeat(300): "v".repeat(2000)}}),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn engagement_fields() {
        let e = |body: Value| p(body).map(|e| (e.scroll_depth, e.engagement_ms));
        let base = |extra: Value| {
            let mut b = json!({"n": "engagement", "u": "https://example.org/", "d": "example.org"});
            for (k, v) in extra.as_object().unwrap() {
                b[k] = v.clone();
            }
            b
        };
        assert_eq!(
            e(base(json!({"sd": 42, "e": 1500}))).unwrap(),
            (Some(42), Some(1500))
        );
        assert_eq!(
            e(base(json!({"sd": "130", "e": "20"}))).unwrap(),
            (Some(100), Some(20))
        );
        assert_eq!(e(base(json!({"sd": -1, "e": 7}))).unwrap(), (None, Some(7)));
        assert_eq!(
            e(base(json!({"sd": 10, "e": TOO_LARGE_ENGAGEMENT_MS}))).unwrap(),
            (Some(10), None)
        );
        assert!(e(base(json!({}))).is_err());
        assert!(e(base(json!({"sd": "x", "e": 1.5}))).is_err());
        // Other events ignore the fields.
        let pv = p(
            json!({"n": "pageview", "u": "https://example.org/", "d": "example.org",
            "sd": 5}),
        )
        .unwrap();
        assert_eq!(pv.scroll_depth, None);
    }

    #[test]
    fn refusals() {
        for (body, want) in [
            ("not json", "JSON object"),
            ("[1]", "JSON object"),
            (
                r#"{"u":"https://example.org/","d":"example.org"}"#,
                "`name`",
            ),
            (
                r#"{"n":"","u":"https://example.org/","d":"example.org"}"#,
                "`name`",
            ),
            (r#"{"n":"pageview","d":"example.org"}"#, "`url`"),
            (r#"{"n":"pageview","u":5,"d":"example.org"}"#, "`url`"),
            (
                r#"{"n":"pageview","u":"https://example.org/","d":""}"#,
                "`domain`",
            ),
            (
                r#"{"n":"pageview","u":"https://example.org/","d":7}"#,
                "`domain`",
            ),
        ] {
            let err = parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(want), "{body}: {}", err.message);
        }
        let long = format!("https://example.org/{}", "a".repeat(2000));
        assert!(p(json!({"n": "pageview", "u": long, "d": "example.org"})).is_err());
        assert!(
            p(json!({"n": "x".repeat(121), "u": "https://example.org/", "d": "e.org"})).is_err()
        );
    }

    #[test]
    fn domains_and_referrer() {
        let e = p(json!({"n": "pageview", "u": "https://www.example.org/",
            "d": " www.Example.org , other.net,", "r": format!("https://r.net/{}", "é".repeat(1500))}))
        .unwrap();
        assert_eq!(e.domains, ["example.org", "other.net"]);
        assert!(e.referrer.len() <= MAX_URL_BYTES && e.referrer.starts_with("https://r.net/"));
        // No domain: the page's host.
        let e = p(json!({"n": "pageview", "u": "https://www.example.org/x", "r": null})).unwrap();
        assert_eq!(e.domains, ["example.org"]);
        assert_eq!(e.referrer, "");
    }
}
