//! `/demo`: a tiny website for the zero-configuration demo (`tally serve` without `--config`),
//! so that a newcomer can click through a tracked site and watch their own visit arrive.
//!
//! It is the demo site's page in every respect that matters: it carries the tracking snippet
//! exactly as `tally snippet` prints it ([`super::snippet::tracking_script`]), the opt-out
//! widget a site puts into its privacy policy, internal pages (`/demo`, `/demo?page=news`,
//! `/demo?page=about`), an outlink and a download (`/demo/leaflet.txt`). Its
//! `Content-Security-Policy` allows the inline snippet by its hash and scripts, hits and the
//! widget from the collector only, as a careful site would.
//!
//! With a configuration file the path does not exist (`404`, like any unknown path): an
//! operator's collector serves no pages of its own besides the opt-out.

use std::sync::LazyLock;

use askama::Template;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};

use super::{csp, snippet};
use crate::http::{self, Resp};
use crate::state::App;

/// The page's whole stylesheet, allowed by its hash.
const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif;\
margin:0;color:#1b1b1b;background:#fff}\
header{background:#1d3557;color:#fff;padding:.8em 1em}\
header a{color:#fff;margin-right:1em}.brand{margin:0 0 .3em;font-weight:600}\
[aria-current]{text-decoration-thickness:3px}\
main{max-width:42em;padding:1em}h1{font-size:1.4em;margin:.2em 0 .6em}\
h2{font-size:1.05em;margin:1.4em 0 .3em}ul{padding-left:1.2em}\
.cta{padding:.6em .8em;border-left:4px solid #1d7a45;background:#edf7f0}\
code{background:#f2f2f2;padding:0 .2em}";

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp::style_hash(STYLE));

/// What `/demo/leaflet.txt` downloads.
const LEAFLET: &str = "tally demo site: leaflet\n\n\
This file stands for a brochure or a report on a real site. Downloading it was recorded as a \
download (the tracker recognises the .txt extension), with no cookie and a shortened address.\n";

#[derive(Template)]
#[template(path = "demo.html")]
struct DemoPage<'a> {
    page: &'static str,
    heading: &'static str,
    style: &'static str,
    script: &'a str,
    /// The collector's base URL, ending in `/`.
    base: &'a str,
    site_id: u32,
    site_name: &'a str,
    /// The geo database in use: its type and build, for the note on countries.
    geo: Option<String>,
}

/// Answers `GET`/`HEAD` `/demo` and `/demo/leaflet.txt`: the page, the download, or `404` when
/// this is not the demo.
pub fn serve<B>(app: &App, req: &Request<B>) -> Resp {
    let site = match app.config.sites.first() {
        Some(site) if app.config.demo => site,
        _ => return http::json_error(StatusCode::NOT_FOUND, "not found"),
    };
    if req.uri().path().ends_with("/leaflet.txt") {
        let mut r = http::text(StatusCode::OK, http::TEXT, LEAFLET);
        r.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"tally-demo-leaflet.txt\""),
        );
        return r;
    }
    let page = http::query_param(req.uri(), "page");
    let (page, heading) = match page.as_deref() {
        Some("news") => ("news", "News"),
        Some("about") => ("about", "About this demo"),
        _ => ("home", "Welcome to the demo site"),
    };
    let (base, _) = snippet::base_url(&app.config);
    let script = snippet::tracking_script(&app.config, site);
    let geo = app
        .enrich
        .geo
        .as_ref()
        .and_then(|g| g.database_info())
        .map(|info| {
            let file = info
                .path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            format!("{file} ({})", info.database_type)
        });
    let body = DemoPage {
        page,
        heading,
        style: STYLE,
        script: &script,
        base: base.as_str(),
        site_id: site.id,
        site_name: &site.name,
        geo,
    }
    .render()
    .expect("rendering into a String cannot fail");
    let origin = base.origin().ascii_serialization();
    html(body, &policy(&csp::script_hash(&script), &origin))
}

/// The page's policy: its own stylesheet, the snippet by its hash, and from the collector
/// (`'self'`, and its configured origin, should the page be opened under another name) the
/// tracker, the widget and the hits. Nothing may frame it, and it has no forms.
pub fn policy(script_hash: &str, collector: &str) -> String {
    format!(
        "default-src 'none'; style-src {style}; script-src {script_hash} 'self' {collector}; \
         connect-src 'self' {collector}; img-src 'self' {collector}; form-action 'none'; \
         base-uri 'none'; frame-ancestors 'none'",
        style = *STYLE_HASH
    )
}

/// The page shows nothing of the visitor's own, so a cache may keep it if it asks again
/// before using it (`no-cache`).
fn html(body: String, policy: &str) -> Resp {
    let mut r = http::html(StatusCode::OK, body, policy);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_snippet_by_hash_and_the_collector() {
        let p = policy("'sha256-abc'", "http://127.0.0.1:8080");
        assert!(
            p.contains("script-src 'sha256-abc' 'self' http://127.0.0.1:8080;"),
            "{p}"
        );
        assert!(p.starts_with("default-src 'none';"), "{p}");
        assert!(!p.contains("unsafe"), "{p}");
    }
}
