//! The slice of Matomo's HTTP API (`index.php?module=API&method=...`) that Matomo's own
//! sending tools call before they track, answered from tally's configuration.
//!
//! It lives beside the tracking endpoint because its only clients are senders: Matomo's log
//! importer (`import_logs.py`) asks `SitesManager.getSiteFromId` (with `--idsite`) or
//! `SitesManager.getSitesIdFromSiteUrl` (host-based resolution) and then sends bulk tracking
//! requests. Nothing here reads stored data; tally has no reporting API.
//!
//! Answers follow Matomo's JSON renderer: a single site is an object, a list of rows an array,
//! and every error `{"result":"error","message":"..."}`. Unlike Matomo, which answers errors
//! with `200`, tally gives them a 4xx status so that a refusal is visible to any client.
//! Only what the configuration says about a site is exposed; nothing secret is.

use std::collections::HashMap;

use hyper::header;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::config::{Config, SiteConfig};
use crate::http::{self, Resp};
use crate::state::App;

/// The methods tally answers, each as Matomo names it.
pub const METHODS: &[&str] = &[
    "SitesManager.getSiteFromId",
    "SitesManager.getSitesIdFromSiteUrl",
    "SitesManager.getAllSites",
];

/// A refusal in Matomo's error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// 4xx status.
    pub status: StatusCode,
    /// One line for the client.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

/// Handles `GET|POST /index.php` (or `/`): parameters from the query string and, for a POST,
/// the form body (as PHP merges `$_GET` and `$_POST`, the body winning).
pub async fn handle<B>(app: &App, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let mut params = HashMap::new();
    collect(parts.uri.query().unwrap_or("").as_bytes(), &mut params);
    if parts.method == Method::POST {
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            });
        if !form {
            return error(&ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "the API reads a POST body only as application/x-www-form-urlencoded",
            ));
        }
        let limit = app.config.limits.max_body_bytes;
        match http::read_body(body, limit, app.config.server.body_read_timeout()).await {
            Ok(b) => collect(&b, &mut params),
            Err(e) => return error(&ApiError::new(e.status(), e.to_string())),
        }
    }
    match answer(&app.config, |t| app.token_matches(t), &params) {
        Ok(v) => json_response(StatusCode::OK, v.to_string()),
        Err(e) => error(&e),
    }
}

/// Merges `key=value` pairs into `params`; a repeated key keeps its last value, as PHP does.
fn collect(bytes: &[u8], params: &mut HashMap<String, String>) {
    for (k, v) in url::form_urlencoded::parse(bytes) {
        params.insert(k.into_owned(), v.into_owned());
    }
}

/// Decides the answer to one API call from its parameters; `token_matches` is
/// [`App::token_matches`] (a parameter so that the decision can be tested without a running
/// collector).
pub fn answer(
    config: &Config,
    token_matches: impl Fn(Option<&str>) -> bool,
    params: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let limit = config.limits.max_url_bytes;
    if let Some((k, _)) = params.iter().find(|(_, v)| v.len() > limit) {
        return Err(ApiError::bad(format!("`{k}` is longer than {limit} bytes")));
    }
    match get("module") {
        Some("API") => {}
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "tally serves only Matomo's API here: module=API is required",
            ));
        }
    }
    // Matomo's default is XML; tally renders nothing but JSON and says so rather than guess.
    if !get("format").is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        return Err(ApiError::bad(
            "tally answers the API only as JSON: format=json is required",
        ));
    }
    if config.token_auth.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "the API is disabled: no token_auth is configured on this collector",
        ));
    }
    if !token_matches(get("token_auth")) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a valid token_auth is required",
        ));
    }
    let method = get("method").ok_or_else(|| ApiError::bad("`method` is required"))?;
    match method {
        "SitesManager.getSiteFromId" => {
            let id = get("idSite").ok_or_else(|| ApiError::bad("`idSite` is required"))?;
            let id: u32 = id
                .parse()
                .map_err(|_| ApiError::bad("`idSite` must be a positive integer"))?;
            let site = config
                .site(id)
                .ok_or_else(|| ApiError::bad(format!("website id = {id} is not configured")))?;
            Ok(site_json(site))
        }
        "SitesManager.getSitesIdFromSiteUrl" => {
            let url = get("url").ok_or_else(|| ApiError::bad("`url` is required"))?;
            let Some(host) = host_of(url) else {
                return Err(ApiError::bad("`url` has no host name"));
            };
            let rows: Vec<Value> = config
                .sites
                .iter()
                .filter(|s| s.allows_host(&host))
                .map(|s| json!({ "idsite": s.id.to_string() }))
                .collect();
            Ok(Value::Array(rows))
        }
        "SitesManager.getAllSites" => Ok(Value::Object(
            config
                .sites
                .iter()
                .map(|s| (s.id.to_string(), site_json(s)))
                .collect(),
        )),
        other => Err(ApiError::bad(format!(
            "tally does not implement the API method `{other}`; it answers {}",
            METHODS.join(", ")
        ))),
    }
}

/// A site as `SitesManager.getSiteFromId` returns it, limited to what tally's configuration
/// knows. Values are strings, as Matomo's MySQL-backed rows are. `main_url` is the first
/// domain over https (a wildcard `*.example.org` stands for `example.org`): the log importer
/// prefixes it to every path of a log without host names.
pub fn site_json(site: &SiteConfig) -> Value {
    let first = site
        .domains
        .first()
        .map_or("", |d| d.strip_prefix("*.").unwrap_or(d.as_str()));
    json!({
        "idsite": site.id.to_string(),
        "name": site.name,
        "main_url": format!("https://{first}"),
        "type": "website",
        // Every time tally stores is UTC.
        "timezone": "UTC",
    })
}

/// The host name in `url` as `getSitesIdFromSiteUrl` receives it: a bare host
/// (`example.org`, what the importer sends), with or without scheme, port, path or trailing
/// slash. Lower-cased, without a trailing dot; `None` if nothing host-like is left.
pub fn host_of(url: &str) -> Option<String> {
    let url = url.trim();
    let rest = match url.find("://") {
        Some(i) => &url[i + 3..],
        None => url.strip_prefix("//").unwrap_or(url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    valid.then_some(host)
}

fn json_response(status: StatusCode, body: String) -> Resp {
    http::no_store(status, "application/json; charset=utf-8", body)
}

/// Matomo's error shape with a 4xx status, `result` first as Matomo writes it.
pub fn error(e: &ApiError) -> Resp {
    let message = Value::String(e.message.clone());
    json_response(
        e.status,
        format!("{{\"result\":\"error\",\"message\":{message}}}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef";

    fn config(token: bool) -> Config {
        let mut text = String::from(
            "[[sites]]\nid = 1\nname = \"Example\"\ndomains = [\"example.org\", \"*.example.org\"]\n\
             [[sites]]\nid = 2\nname = \"Other\"\ndomains = [\"other.net\"]\n",
        );
        if token {
            text = format!("token_auth = \"{TOKEN}\"\n{text}");
        }
        Config::from_table(text.parse().unwrap()).unwrap()
    }

    fn call(config: &Config, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
        let params = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The same comparison as `App::token_matches`, minus the digest.
        let expected = config.token_auth.clone();
        answer(config, |t| t.is_some() && t == expected.as_deref(), &params)
    }

    fn api<'a>(method: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("module", "API"),
            ("format", "json"),
            ("token_auth", TOKEN),
            ("method", method),
            ("filter_limit", "-1"),
        ];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn site_from_id() {
        let c = config(true);
        let v = call(&c, &api("SitesManager.getSiteFromId", &[("idSite", "2")])).unwrap();
        assert_eq!(v["idsite"], "2");
        assert_eq!(v["main_url"], "https://other.net");
        let e = call(&c, &api("SitesManager.getSiteFromId", &[("idSite", "9")])).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("website id = 9"), "{}", e.message);
        for bad in ["", "x", "-1", "1.5"] {
            let e = call(&c, &api("SitesManager.getSiteFromId", &[("idSite", bad)])).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn sites_from_url() {
        let c = config(true);
        let ids = |url: &str| {
            call(
                &c,
                &api("SitesManager.getSitesIdFromSiteUrl", &[("url", url)]),
            )
            .unwrap()
        };
        assert_eq!(ids("example.org"), json!([{ "idsite": "1" }]));
        assert_eq!(ids("http://www.example.org/"), json!([{ "idsite": "1" }]));
        assert_eq!(ids("other.net"), json!([{ "idsite": "2" }]));
        // Only hosts whose hits the tracker would accept: www.other.net is not a domain of 2.
        assert_eq!(ids("www.other.net"), json!([]));
        assert_eq!(ids("unknown.example"), json!([]));
    }

    #[test]
    fn refusals() {
        let c = config(true);
        let status = |pairs: &[(&str, &str)]| call(&c, pairs).unwrap_err().status;
        let m = "SitesManager.getSiteFromId";
        assert_eq!(
            status(&[
                ("module", "API"),
                ("format", "json"),
                ("method", m),
                ("idSite", "1")
            ]),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(&[
                ("module", "API"),
                ("format", "json"),
                ("token_auth", "wrong-token-0000"),
                ("method", m)
            ]),
            StatusCode::UNAUTHORIZED
        );
        let mut xml = api(m, &[("idSite", "1")]);
        xml[1] = ("format", "xml");
        assert_eq!(status(&xml), StatusCode::BAD_REQUEST);
        let mut no_format = api(m, &[("idSite", "1")]);
        no_format.remove(1);
        assert_eq!(status(&no_format), StatusCode::BAD_REQUEST);
        let mut upper = api(m, &[("idSite", "1")]);
        upper[1] = ("format", "JSON");
        assert!(call(&c, &upper).is_ok());
        let mut other_module = api(m, &[("idSite", "1")]);
        other_module[0] = ("module", "CoreHome");
        assert_eq!(status(&other_module), StatusCode::NOT_FOUND);
        assert_eq!(
            status(&api("SitesManager.addSite", &[])),
            StatusCode::BAD_REQUEST
        );
        let long = "a".repeat(5000);
        assert_eq!(
            status(&api(
                "SitesManager.getSitesIdFromSiteUrl",
                &[("url", &long)]
            )),
            StatusCode::BAD_REQUEST
        );
        // Without a configured token nobody gets in, not even with an empty one.
        let open = config(false);
        let e = call(&open, &api(m, &[("idSite", "1")])).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let mut empty = api(m, &[("idSite", "1")]);
        empty[2] = ("token_auth", "");
        assert_eq!(
            call(&open, &empty).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn all_sites() {
        let v = call(&config(true), &api("SitesManager.getAllSites", &[])).unwrap();
        assert_eq!(v["1"]["name"], "Example");
        assert_eq!(v["2"]["main_url"], "https://other.net");
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("example.org").as_deref(), Some("example.org"));
        assert_eq!(
            host_of("WWW.Example.org.").as_deref(),
            Some("www.example.org")
        );
        assert_eq!(
            host_of("https://example.org/").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            host_of("http://a.example.org:8080/x?y").as_deref(),
            Some("a.example.org")
        );
        assert_eq!(host_of("//example.org").as_deref(), Some("example.org"));
        assert_eq!(
            host_of("http://[2001:db8::1]:80/").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(
            host_of("http://u:p@example.org/").as_deref(),
            Some("example.org")
        );
        assert_eq!(host_of(""), None);
        assert_eq!(host_of("https:///x"), None);
        assert_eq!(host_of("exa mple.org"), None);
        assert_eq!(host_of("<script>"), None);
    }

    #[test]
    fn site_shape() {
        let c = Config::from_table(
            "[[sites]]\nid = 7\nname = \"Institute\"\n\
             domains = [\"*.example.org\", \"example.net\"]\n\
             sensitive_params = [\"secret_param\"]\n"
                .parse()
                .unwrap(),
        )
        .unwrap();
        let site = c.site(7).unwrap();
        let v = site_json(site);
        assert_eq!(v["idsite"], "7");
        assert_eq!(v["name"], "Institute");
        assert_eq!(v["main_url"], "https://example.org");
        assert!(!v.to_string().contains("secret_param"));
    }
}
