//! The opt-out page, `GET /optout?idsite=ID[&lang=en|de][&return=URL]`, and its form,
//! `POST /optout`.
//!
//! The page tells a visitor in plain words what is recorded about them and for how long,
//! whether they are opted out now, and offers one button that sets or clears the opt-out cookie
//! ([`crate::config::PrivacyConfig::optout_cookie`]), which the tracking endpoint honours
//! before it looks at anything else. Matomo's opt-out cookies
//! ([`crate::config::PrivacyConfig::honour_optout_cookies`]) show as opted out too, and opting
//! back in clears them with tally's own. It works without JavaScript, loads nothing from
//! anywhere, and is meant to be framed in, or linked from, the site's privacy policy.
//!
//! Its cookie belongs to the collector's site, so the page claims only what the browser shows:
//! after the form it says "saved" only if the cookie came back; opened on its own on another
//! site than the site's it says that a choice made there cannot reach the site, and links to
//! the site's own opt-out (`privacy_url`, with the widget of [`super::widget`], which keeps the
//! choice first-party on the site).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use askama::Template;
use bytes::Bytes;
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use http_body_util::Full;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{HeaderMap, Request, Response, StatusCode};
use url::Url;

use super::csp;
use super::texts::{self, Lang, Texts, fill};
use crate::config::{Config, PrivacyConfig, RetentionConfig, SiteConfig};
use crate::http::{self, Resp, is_https};
use crate::privacy::signals::{opted_out, present_cookies};
use crate::privacy::{FullIp, TruncatedIp};
use crate::state::App;

/// Lifetime of the opt-out cookie: two years, as the tracker's own `optUserOut` cookie. Matomo
/// asks for 30 years, but browsers cap cookie lifetimes anyway (Chrome at 400 days, as RFC
/// 6265bis recommends), so a longer promise would not be kept; two years is the longest that
/// some browsers still honour, and a choice remembered that long is the visitor's own, not
/// something to renew quietly. The page says "up to two years" for that reason.
const COOKIE_MAX_AGE: Duration = Duration::days(730);

/// A form holds four short fields; anything bigger is not our form.
const MAX_FORM_BYTES: usize = 4096;

/// The page's whole stylesheet, allowed by its hash in the CSP, so no inline style other than
/// exactly this one can ever apply. The privacy statement's page (`super::statement`) wears it too.
pub(crate) const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif;\
margin:0;padding:1em;color:#1b1b1b;background:#fff}\
main{max-width:42em}h1{font-size:1.35em;margin:0 0 .6em}h2{font-size:1.05em;margin:1.2em 0 .3em}\
ul{padding-left:1.2em;margin:.3em 0}li{margin:.2em 0}\
.status{padding:.6em .8em;border-left:4px solid #1d7a45;background:#edf7f0;margin:0 0 1em}\
.status.out{border-color:#9a5b00;background:#fdf4e6}.saved{font-weight:600}\
button{font:inherit;padding:.5em 1em;margin-top:.5em;cursor:pointer}";

pub(crate) static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp::style_hash(STYLE));

/// The page's only script, allowed by its hash; the page works without it. Opened on its own
/// (`window.top === window`) on a page with the hidden `#cross-site` notice, where the server could not
/// tell from `Sec-Fetch-Dest` (plain http, older browsers), it shows the notice that a choice
/// made here cannot reach the site and hides the choice (the notice then becomes the one
/// `role=status`; hidden, it has none, so the page always has exactly one). In a frame it asks the browser for
/// access to the collector's own cookies before the form is sent (Storage Access API: a
/// browser that partitions or blocks third-party cookies may then keep the unpartitioned
/// one); refused or not, the form is sent, and the page it leads to says what was stored.
const SCRIPT: &str = "(function(){var w=window,d=document,f=d.forms[0],busy;if(w.top===w){var x=d.getElementById('cross-site');if(x){x.hidden=false;x.firstElementChild.setAttribute('role','status');\
[].forEach.call(d.querySelectorAll('[data-choice]'),function(e){e.hidden=true;e.removeAttribute('role')})}}\
else if(f&&d.hasStorageAccess&&d.requestStorageAccess)\
{f.addEventListener('submit',function(e){e.preventDefault();if(busy)return;busy=1;\
d.hasStorageAccess().then(function(has){return has||d.requestStorageAccess()}).catch(function(){}).then(function(){f.submit()})})}})();";

static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| csp::script_hash(SCRIPT));

/// Whether a choice made on the page can reach the site's tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The collector is on the site's own site (a path or subdomain of it), or the page is
    /// framed by the site: the cookie goes where the hits go.
    Site,
    /// The page is the top-level document on another site than the site's: browsers keep its
    /// cookie apart from the site (partitioned, or blocked as third-party on the hits).
    Apart,
    /// Another site, and the browser did not say whether the page is framed: the script
    /// decides (`window.top`).
    ApartIfTopLevel,
}

/// `GET /optout`: the page for the site in the query.
pub fn page<B>(app: &App, req: &Request<B>) -> Resp {
    let query = req.uri().query().unwrap_or("");
    let mut idsite = None;
    let mut lang = None;
    let mut done = false;
    let mut choice = None;
    let mut return_to = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "idsite" => idsite = Some(v.into_owned()),
            "lang" => lang = Some(v.into_owned()),
            "done" => done = v == "1",
            "choice" => choice = Some(v.into_owned()),
            "return" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let lang = texts::choose(lang.as_deref(), req.headers());
    let Some(site) = find_site(&app.config, idsite.as_deref()) else {
        return unknown_site(&app.config, lang);
    };
    let return_to = return_to.as_deref().and_then(|r| safe_return(site, r));
    let privacy = &app.config.privacy;
    // Only a choice the redirect after the form names is checked; a bare `done=1` (an old
    // bookmark) claims nothing.
    let done = match (done, choice.as_deref()) {
        (true, Some("out")) => Some(true),
        (true, Some("in")) => Some(false),
        _ => None,
    };
    let cross_site = collector_host(&app.config, req.uri(), req.headers())
        .is_some_and(|host| !same_site_as(site, &host));
    let reach = match (cross_site, fetch_dest(req.headers())) {
        (false, _) => Reach::Site,
        (true, Some("document")) => Reach::Apart,
        (true, Some(_)) => Reach::Site,
        (true, None) => Reach::ApartIfTopLevel,
    };
    let page = Page {
        site,
        lang,
        privacy,
        retention: &app.config.retention,
        geo: app.config.geo.records_location(),
        opted_out: opted_out(req.headers(), privacy),
        signal: sends_refusal_signal(req.headers(), privacy),
        done,
        return_to: return_to.as_ref(),
        reach,
    };
    let policy = csp::optout_policy(
        &STYLE_HASH,
        Some(&SCRIPT_HASH),
        return_to
            .as_ref()
            .map(|u| u.origin().ascii_serialization())
            .as_deref(),
        &csp::frame_ancestors(site),
    );
    html(StatusCode::OK, page.render(), &policy)
}

/// `POST /optout`: sets (`choice=out`) or clears (`choice=in`) the opt-out cookie and sends the
/// visitor back to the page, or to `return` when that is a page of the site.
pub async fn submit<B>(app: &App, req: Request<B>, peer: FullIp) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let timeout = app.config.server.body_read_timeout();
    let body = match http::read_body(body, MAX_FORM_BYTES, timeout).await {
        Ok(b) => b,
        Err(http::BodyError::TooLarge(_)) => {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large\n");
        }
        Err(http::BodyError::TooSlow(_)) => {
            return plain(
                StatusCode::REQUEST_TIMEOUT,
                "the form did not arrive in time\n",
            );
        }
        Err(http::BodyError::Busy) => {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "server busy\n");
        }
        Err(http::BodyError::Unreadable) => {
            return plain(StatusCode::BAD_REQUEST, "could not read the form\n");
        }
    };
    let mut form = Form::default();
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "idsite" => form.idsite = Some(v.into_owned()),
            "lang" => form.lang = Some(v.into_owned()),
            "choice" => form.choice = Some(v.into_owned()),
            "return" => form.return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let lang = texts::choose(form.lang.as_deref(), &parts.headers);
    let Some(site) = find_site(&app.config, form.idsite.as_deref()) else {
        return unknown_site(&app.config, lang);
    };
    let authority = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(String::from)
        });
    if !allowed_origin(
        &parts.headers,
        site,
        app.config.public_url.as_deref(),
        authority.as_deref(),
    ) {
        return plain(
            StatusCode::FORBIDDEN,
            "cross-site request refused: the opt-out form must be sent from its own page\n",
        );
    }
    let opt_out = match form.choice.as_deref() {
        Some("out") => true,
        Some("in") => false,
        _ => return plain(StatusCode::BAD_REQUEST, "choice must be `out` or `in`\n"),
    };
    let location = match form.return_to.as_deref().and_then(|r| safe_return(site, r)) {
        Some(url) => url.to_string(),
        // Relative, so it also works when the collector is served under a path prefix.
        // `choice` lets the page check that the browser really kept (or dropped) the cookie.
        None => format!(
            "optout?idsite={}&lang={}&done=1&choice={}",
            site.id,
            lang.code(),
            if opt_out { "out" } else { "in" }
        ),
    };
    let secure = is_https(&app.config, &parts.headers, &peer);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(&location).expect("a serialised URL is a valid header value"),
    );
    let privacy = &app.config.privacy;
    let mut names = vec![privacy.optout_cookie.as_str()];
    if !opt_out {
        // Opting back in lifts every opt-out the page reported, Matomo's included; left in
        // place, they would keep the visitor out while the page offered to let them in.
        names.extend(
            present_cookies(&parts.headers, privacy)
                .into_iter()
                .filter(|n| *n != privacy.optout_cookie),
        );
    }
    for name in names {
        for c in optout_cookies(name, secure, opt_out) {
            h.append(
                header::SET_COOKIE,
                HeaderValue::from_str(&c.to_string()).expect("cookie names are validated"),
            );
        }
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[derive(Default)]
struct Form {
    idsite: Option<String>,
    lang: Option<String>,
    choice: Option<String>,
    return_to: Option<String>,
}

fn find_site<'c>(config: &'c Config, idsite: Option<&str>) -> Option<&'c SiteConfig> {
    idsite
        .and_then(|s| s.trim().parse::<u32>().ok())
        .and_then(|id| config.site(id))
}

/// The opt-out cookie(s) that record the choice (`opt_out`) or clear it.
///
/// Over https the cookie is `SameSite=None; Secure`: the tracker's hits go from the site's
/// pages to the collector, cross-site unless the collector is a subdomain of the site, and the
/// page itself is framed by the site; a `Lax` cookie would be set but never sent on those
/// requests, and the opt-out would silently do nothing. Browsers refuse `SameSite=None`
/// without `Secure`, so over plain http (local trials, tests) it is `Lax`, which still works
/// when the page is opened directly and the site is same-site with the collector.
///
/// Over https a second, `Partitioned` copy (CHIPS) is set as well. Browsers that block
/// third-party cookies (Safari, Firefox's and Chrome's strict modes) drop the plain cookie when
/// the page is framed in the site's privacy policy, but keep a partitioned one, keyed to the
/// top-level site that frames it: exactly the site whose pages then send the hits, so the
/// opt-out still applies there. The partitioned copy alone would not do: set on the standalone
/// page it would be keyed to the collector's own site and never sent with hits from the site's
/// pages. Both copies together cover both cases; the endpoint looks only at the cookie's
/// presence, so receiving two is harmless, and opting back in clears both.
pub fn optout_cookies(name: &str, secure: bool, opt_out: bool) -> Vec<Cookie<'static>> {
    let make = |partitioned: bool| {
        let mut b = Cookie::build((name.to_string(), "1")).path("/");
        b = if secure {
            b.same_site(SameSite::None)
                .secure(true)
                .partitioned(partitioned)
        } else {
            b.same_site(SameSite::Lax)
        };
        b = if opt_out {
            b.max_age(COOKIE_MAX_AGE)
        } else {
            b.removal()
        };
        b.build()
    };
    if secure {
        vec![make(false), make(true)]
    } else {
        vec![make(false)]
    }
}

/// Whether a form post may change the visitor's choice: it must come from the opt-out page
/// itself (same origin as the collector; also when framed, since the frame is the collector's)
/// or from a page of the site, never from a third party that would silently opt a visitor
/// back in. Fetch metadata is believed first; else `Origin` is compared with the collector's
/// own origin (`public_url`, or the request's `authority`) and the site's domains. A request
/// with neither header does not come from a current browser, so it carries no visitor's cookie
/// to abuse and is let through, as in Go's `CrossOriginProtection`.
fn allowed_origin(
    headers: &HeaderMap,
    site: &SiteConfig,
    public_url: Option<&str>,
    authority: Option<&str>,
) -> bool {
    let fetch_site = headers
        .get(HeaderName::from_static("sec-fetch-site"))
        .and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("same-origin" | "none")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return fetch_site.is_none();
    };
    // `Origin: null` (sandboxed frames, privacy-sensitive redirects) does not parse.
    let Some(origin) = origin.to_str().ok().and_then(|o| Url::parse(o).ok()) else {
        return false;
    };
    if !matches!(origin.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = origin.host_str().map(str::to_ascii_lowercase) else {
        return false;
    };
    if site.allows_host(&host) {
        return true;
    }
    if public_url
        .and_then(|p| Url::parse(p).ok())
        .is_some_and(|p| p.origin() == origin.origin())
    {
        return true;
    }
    let origin_authority = match origin.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    authority.is_some_and(|a| a.eq_ignore_ascii_case(&origin_authority))
}

/// `raw` as a URL to send the visitor back to, if it is an absolute http(s) URL on one of the
/// site's domains. Anything else is refused, so the form is never an open redirect.
pub fn safe_return(site: &SiteConfig, raw: &str) -> Option<Url> {
    if raw.len() > 2048 {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    let allowed = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url
            .host_str()
            .is_some_and(|h| site.allows_host(&h.to_ascii_lowercase()));
    allowed.then_some(url)
}

fn sends_refusal_signal(headers: &HeaderMap, cfg: &PrivacyConfig) -> bool {
    let is_one = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes().trim_ascii() == b"1")
    };
    (cfg.respect_dnt && is_one("dnt")) || (cfg.respect_gpc && is_one("sec-gpc"))
}

/// Everything one rendering of the page depends on.
struct Page<'a> {
    site: &'a SiteConfig,
    lang: Lang,
    privacy: &'a PrivacyConfig,
    /// The windows the pruner keeps, as the page tells visitors.
    retention: &'a RetentionConfig,
    /// Geolocation is configured, so the location is recorded.
    geo: bool,
    opted_out: bool,
    /// DNT or GPC is sent and honoured.
    signal: bool,
    /// The form was just sent with this choice (`true`: opt out).
    done: Option<bool>,
    return_to: Option<&'a Url>,
    reach: Reach,
}

/// The opt-out page as `templates/optout.html` lays it out. The texts are plain text, filled
/// in here and escaped by the template like every other value.
#[derive(Template)]
#[template(path = "optout.html")]
struct OptoutHtml<'a> {
    lang: &'static str,
    style: &'static str,
    t: &'static Texts,
    title: String,
    status_class: &'static str,
    status: &'static str,
    /// The choice just sent is what the browser sent back.
    saved: bool,
    /// The choice just sent is not what the browser sent back.
    not_stored: bool,
    /// The page is the top-level document on another site than the site's.
    apart: bool,
    /// The script shows the cross-site notice if the page turns out to be top-level.
    apart_if_top: bool,
    cross_site: String,
    /// The link to the site's own opt-out, and its text; or where to look without a link.
    privacy_url: Option<&'a str>,
    use_site_optout: String,
    find_site_optout: String,
    script: &'static str,
    intro: String,
    recorded: Vec<String>,
    stored_where: String,
    retention: String,
    cookie: String,
    site_id: u32,
    choice: &'static str,
    return_to: Option<&'a str>,
    button: &'static str,
}

/// The page for an unknown site, in the same frame.
#[derive(Template)]
#[template(path = "unknown_site.html")]
struct UnknownSiteHtml {
    lang: &'static str,
    style: &'static str,
    title: &'static str,
    body: &'static str,
}

/// What the opt-out page and the widget (`/optout.js`) both tell a visitor about a site, filled
/// in from the configuration: one source, so the two cannot say different things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Title. The site's name is in it.
    pub title: String,
    /// What tally is, and who runs it.
    pub intro: String,
    /// What is recorded: the IP address as masked by `privacy.ip_bytes`, pages, returns, device,
    /// and the location when geolocation is configured.
    pub recorded: Vec<String>,
    /// What is never recorded.
    pub not_recorded: &'static str,
    /// Where the data is kept.
    pub stored_where: String,
    /// How long: the pruner's own number of days.
    pub retention: String,
}

/// The [`Facts`] for `site` in `lang`; `geo` says whether a location database is configured.
pub fn facts(
    site: &SiteConfig,
    lang: Lang,
    privacy: &PrivacyConfig,
    retention: &RetentionConfig,
    geo: bool,
) -> Facts {
    let t: &'static Texts = lang.texts();
    let name = site.name.as_str();
    let bytes = privacy.ip_bytes.to_string();
    let example = Ipv4Addr::new(198, 51, 100, 23);
    let truncated = TruncatedIp::new(IpAddr::V4(example), privacy.ip_bytes).to_string();
    let v6_bits =
        match TruncatedIp::new(IpAddr::V6(Ipv6Addr::from(u128::MAX)), privacy.ip_bytes).addr() {
            IpAddr::V6(v6) => u128::from(v6).leading_ones(),
            IpAddr::V4(_) => 0,
        }
        .to_string();
    let example = example.to_string();
    let ip_values = [
        ("bytes", bytes.as_str()),
        ("example", example.as_str()),
        ("truncated", truncated.as_str()),
        ("v6_bits", v6_bits.as_str()),
    ];
    let ip = fill(
        if privacy.ip_bytes == 1 {
            t.ip_one
        } else {
            t.ip_many
        },
        &ip_values,
    );
    let mut recorded = vec![
        ip,
        t.pages.to_string(),
        t.returns.to_string(),
        t.device.to_string(),
    ];
    if geo {
        recorded.push(t.location.to_string());
    }
    Facts {
        title: fill(t.title, &[("site", name)]),
        intro: fill(t.intro, &[("site", name)]),
        recorded,
        not_recorded: t.not_recorded,
        stored_where: fill(t.stored_where, &[("site", name)]),
        retention: fill(
            t.retention,
            &[
                // The pruner's own windows, so the page cannot promise what it does not do.
                ("raw_days", &retention.raw_days.to_string()),
                ("aggregate_days", &retention.aggregate_days.to_string()),
            ],
        ),
    }
}

impl Page<'_> {
    fn render(&self) -> String {
        let t: &'static Texts = self.lang.texts();
        let site = self.site.name.as_str();
        let f = facts(self.site, self.lang, self.privacy, self.retention, self.geo);
        let apart = self.reach == Reach::Apart;
        let (status_class, status) = if apart {
            // The collector's cookie says nothing about the site: no state is claimed.
            ("status out", "")
        } else if self.opted_out {
            ("status out", t.status_out)
        } else if self.signal {
            ("status out", t.status_signal)
        } else {
            ("status", t.status_in)
        };
        let (choice, button) = if self.opted_out {
            ("in", t.button_in)
        } else {
            ("out", t.button_out)
        };
        // The cookie is present exactly when it was kept; "saved" only when that matches.
        let stored = self.done.map(|out| out == self.opted_out);
        OptoutHtml {
            lang: self.lang.code(),
            style: STYLE,
            t,
            title: f.title,
            status_class,
            status,
            saved: stored == Some(true) && !apart,
            not_stored: stored == Some(false) && !apart,
            apart,
            apart_if_top: self.reach == Reach::ApartIfTopLevel,
            cross_site: fill(t.cross_site, &[("site", site)]),
            privacy_url: self.site.privacy_url.as_deref(),
            use_site_optout: fill(t.use_site_optout, &[("site", site)]),
            find_site_optout: fill(t.find_site_optout, &[("site", site)]),
            script: SCRIPT,
            intro: f.intro,
            recorded: f.recorded,
            stored_where: f.stored_where,
            retention: f.retention,
            cookie: fill(t.cookie, &[("cookie", &self.privacy.optout_cookie)]),
            site_id: self.site.id,
            choice,
            return_to: self.return_to.map(Url::as_str),
            button,
        }
        .render()
        .expect("rendering into a String cannot fail")
    }
}

/// The collector's host name as the visitor's browser reaches it: `public_url`'s, else the
/// request's (absolute URI or `Host`), without the port.
fn collector_host(config: &Config, uri: &hyper::Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(host) = config
        .public_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
    {
        return Some(host.to_ascii_lowercase());
    }
    let authority = match uri.authority() {
        Some(a) => a.host().to_string(),
        None => {
            let host = headers.get(header::HOST)?.to_str().ok()?;
            host.parse::<hyper::http::uri::Authority>()
                .ok()?
                .host()
                .to_string()
        }
    };
    Some(authority.trim_matches(['[', ']']).to_ascii_lowercase())
}

/// Whether two hosts are the same site as browsers see it: equal, or with the same registrable
/// domain (the public suffix plus one label, from the Public Suffix List in the `psl` crate,
/// so `a.example.co.uk` and `b.example.co.uk` are one site, `a.github.io` and `b.github.io`
/// two). An IP address is a site of its own.
pub fn same_site(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    let (a, b) = (a.trim_end_matches('.'), b.trim_end_matches('.'));
    if a == b {
        return true;
    }
    if a.parse::<IpAddr>().is_ok() || b.parse::<IpAddr>().is_ok() {
        return false;
    }
    match (psl::domain_str(a), psl::domain_str(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether the collector at `host` is on the same site as one of `site`'s domains (a
/// `*.example.org` domain counts as `example.org`): a first-party deployment, whose cookie
/// reaches the collector with the site's hits.
pub fn same_site_as(site: &SiteConfig, host: &str) -> bool {
    site.domains
        .iter()
        .any(|d| same_site(d.trim_start_matches("*."), host))
}

/// `Sec-Fetch-Dest`, where the browser sends it (https, current browsers).
fn fetch_dest(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(HeaderName::from_static("sec-fetch-dest"))
        .and_then(|v| v.to_str().ok())
}

/// The page for an unknown or missing `idsite`: 404. Any configured site may frame it, so an
/// operator who embedded the wrong number sees why the frame is empty of choices.
pub(crate) fn unknown_site(config: &Config, lang: Lang) -> Resp {
    let t = lang.texts();
    let body = UnknownSiteHtml {
        lang: lang.code(),
        style: STYLE,
        title: t.unknown_title,
        body: t.unknown_body,
    }
    .render()
    .expect("rendering into a String cannot fail");
    let ancestors: Vec<String> = config.sites.iter().flat_map(csp::frame_ancestors).collect();
    html(
        StatusCode::NOT_FOUND,
        body,
        &csp::optout_policy(&STYLE_HASH, None, None, &ancestors),
    )
}

/// An HTML response with the page's security headers. No `X-Frame-Options`: it would stop the
/// site from framing the page, and the CSP's `frame-ancestors` supersedes it.
fn html(status: StatusCode, body: String, policy: &str) -> Resp {
    let mut r = http::html(status, body, policy);
    let h = r.headers_mut();
    // `same-origin`, not `no-referrer`: the page's own form must carry its `Origin`, which
    // `no-referrer` turns into `null`; over plain http (no `Sec-Fetch-Site`) the form was then
    // refused as cross-site. Links away from the page still send no referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // The choice shown depends on the cookie and the language on the header.
    h.insert(
        header::VARY,
        HeaderValue::from_static("Cookie, Accept-Language"),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Resp {
    http::no_store(status, http::TEXT, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteConfig {
        SiteConfig {
            id: 7,
            name: "Ex <b>\"ample\"</b> & Co".into(),
            domains: vec!["example.org".into(), "*.example.org".into()],
            sensitive_params: Vec::new(),
            frame_ancestors: None,
            track_non_browsers: true,
            privacy_url: None,
            timezone: "UTC".into(),
            visit_timeout: 1800,
            visitor_cookie: false,
        }
    }

    use crate::test_support::header_map as h;

    #[test]
    fn same_site_by_the_public_suffix_list() {
        for (a, b) in [
            ("example.org", "stats.example.org"),
            ("www.example.co.uk", "stats.example.co.uk"),
            ("EXAMPLE.org", "example.org."),
            ("localhost", "localhost"),
            ("127.0.0.1", "127.0.0.1"),
        ] {
            assert!(same_site(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("example.org", "analytics-host.net"),
            // Public suffixes: every name under them is a site of its own.
            ("example.co.uk", "other.co.uk"),
            ("alice.github.io", "bob.github.io"),
            ("a.blogspot.com", "b.blogspot.com"),
            ("site.test", "stats.example"),
            // Addresses are compared whole, never by their last labels.
            ("127.0.0.1", "10.0.0.1"),
            ("localhost", "127.0.0.1"),
        ] {
            assert!(!same_site(a, b), "{a} {b}");
        }
        let s = site();
        assert!(same_site_as(&s, "stats.example.org"));
        assert!(!same_site_as(&s, "example.net"));
    }

    #[test]
    fn the_page_states_the_configured_retention_windows() {
        let shorter = RetentionConfig {
            raw_days: 3,
            aggregate_days: 90,
            ..RetentionConfig::default()
        };
        let privacy = PrivacyConfig::default();
        let en = facts(&site(), Lang::En, &privacy, &shorter, false).retention;
        assert!(
            en.contains("after 3 days") && en.contains("after 90 days"),
            "{en}"
        );
        let de = facts(&site(), Lang::De, &privacy, &shorter, false).retention;
        assert!(
            de.contains("nach 3 Tagen") && de.contains("nach 90 Tagen"),
            "{de}"
        );
        let default = facts(
            &site(),
            Lang::En,
            &privacy,
            &RetentionConfig::default(),
            false,
        );
        assert!(
            default.retention.contains("after 7 days")
                && default.retention.contains("after 180 days")
        );
    }

    #[test]
    fn cookie_over_http_is_lax_without_secure() {
        let set = optout_cookies("tally_ignore", false, true);
        assert_eq!(set.len(), 1);
        assert_eq!(
            set[0].to_string(),
            "tally_ignore=1; SameSite=Lax; Path=/; Max-Age=63072000"
        );
        let clear = optout_cookies("tally_ignore", false, false);
        assert_eq!(clear.len(), 1);
        let s = clear[0].to_string();
        assert!(
            s.starts_with("tally_ignore=; SameSite=Lax; Path=/; Max-Age=0; Expires="),
            "{s}"
        );
        assert!(!s.contains("Secure"));
    }

    #[test]
    fn cookie_over_https_is_cross_site_and_also_partitioned() {
        let set = optout_cookies("no_stats", true, true);
        let s: Vec<String> = set.iter().map(ToString::to_string).collect();
        assert_eq!(
            s,
            [
                "no_stats=1; SameSite=None; Secure; Path=/; Max-Age=63072000",
                "no_stats=1; SameSite=None; Partitioned; Secure; Path=/; Max-Age=63072000",
            ]
        );
        let clear = optout_cookies("no_stats", true, false);
        assert_eq!(clear.len(), 2, "opting in clears both copies");
        for c in &clear {
            assert_eq!(c.max_age(), Some(Duration::ZERO));
            assert_eq!(c.same_site(), Some(SameSite::None));
            assert_eq!(c.secure(), Some(true));
        }
        assert_eq!(clear[1].partitioned(), Some(true));
    }

    #[test]
    fn return_urls_only_to_the_site() {
        let s = site();
        for ok in [
            "https://example.org/privacy",
            "http://www.example.org/datenschutz?x=1#top",
            "https://WWW.Example.org/",
        ] {
            assert!(safe_return(&s, ok).is_some(), "{ok}");
        }
        for bad in [
            "https://evil.com/",
            "//evil.com/",
            "/privacy",
            "https://example.org.evil.com/",
            "https://evil.com\\@example.org/",
            "https://example.org@evil.com/",
            "https://user@example.org/",
            "javascript:alert(1)//example.org",
            "data:text/html,example.org",
            "https:\\\\evil.com",
            "",
        ] {
            assert!(safe_return(&s, bad).is_none(), "{bad}");
        }
        let long = format!("https://example.org/{}", "a".repeat(3000));
        assert!(safe_return(&s, &long).is_none());
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let s = site();
        let collector = Some("analytics.test:8080");
        let allowed = |headers: &[(&'static str, &str)], public: Option<&str>| {
            allowed_origin(&h(headers), &s, public, collector)
        };
        // The page's own form, framed or not.
        assert!(allowed(&[("sec-fetch-site", "same-origin")], None));
        assert!(allowed(&[("origin", "http://analytics.test:8080")], None));
        assert!(allowed(
            &[
                ("origin", "https://stats.example.net"),
                ("sec-fetch-site", "cross-site")
            ],
            Some("https://stats.example.net/")
        ));
        // The site's own pages.
        assert!(allowed(
            &[
                ("origin", "https://www.example.org"),
                ("sec-fetch-site", "cross-site")
            ],
            None
        ));
        // Not a browser at all.
        assert!(allowed(&[], None));
        // Third parties.
        assert!(!allowed(&[("origin", "https://evil.com")], None));
        assert!(!allowed(
            &[
                ("origin", "https://evil.com"),
                ("sec-fetch-site", "cross-site")
            ],
            None
        ));
        assert!(!allowed(&[("sec-fetch-site", "cross-site")], None));
        assert!(!allowed(&[("origin", "null")], None));
        assert!(!allowed(&[("origin", "http://analytics.test:9999")], None));
        assert!(!allowed(
            &[("origin", "https://example.org.evil.com")],
            None
        ));
    }

    fn render(lang: Lang, ip_bytes: u8, opted_out: bool) -> String {
        render_site(&site(), lang, ip_bytes, opted_out, None)
    }

    fn render_site(
        s: &SiteConfig,
        lang: Lang,
        ip_bytes: u8,
        opted_out: bool,
        return_to: Option<&Url>,
    ) -> String {
        let privacy = PrivacyConfig {
            ip_bytes,
            ..PrivacyConfig::default()
        };
        Page {
            site: s,
            lang,
            privacy: &privacy,
            retention: &RetentionConfig::default(),
            geo: false,
            opted_out,
            signal: false,
            done: None,
            return_to,
            reach: Reach::Site,
        }
        .render()
    }

    #[test]
    fn page_escapes_the_site_name() {
        let p = render(Lang::En, 2, false);
        assert!(
            p.contains("Web analytics on Ex &#60;b&#62;&#34;ample&#34;&#60;/b&#62; &#38; Co"),
            "{p}"
        );
        assert!(!p.contains("<b>"));
    }

    #[test]
    fn hostile_site_names_come_out_as_text() {
        let name = r#"<script>alert(1)</script>&"'"#;
        let s = SiteConfig {
            name: name.into(),
            ..site()
        };
        let escaped = "&#60;script&#62;alert(1)&#60;/script&#62;&#38;&#34;&#39;";
        for lang in Lang::ALL {
            let p = render_site(&s, lang, 2, false, None);
            // The page's own script is the only one.
            assert_eq!(p.matches("<script").count(), 1, "{p}");
            assert!(!p.contains(name));
            // Title, heading, introduction (twice) and where the data is kept.
            assert_eq!(p.matches(escaped).count(), 5, "{p}");
        }
        // A return URL is an attribute value: the URL crate percent-encodes quotes and angle
        // brackets, and the template escapes what is left.
        let ret = Url::parse("https://example.org/a?q=\"><script>&x='y'").unwrap();
        let p = render_site(&s, Lang::En, 2, false, Some(&ret));
        assert_eq!(p.matches("<script").count(), 1, "{p}");
        assert!(
            p.contains(
                "name=\"return\" value=\"https://example.org/a?q=%22%3E%3Cscript%3E&#38;x=%27y%27\">"
            ),
            "{p}"
        );
    }

    /// Every domain the configuration accepts gives a page whose headers can be sent and whose
    /// policy has exactly its own six directives; the rest is refused at load.
    #[test]
    fn no_accepted_domain_breaks_the_page() {
        let mut accepted = 0;
        for c in (0..=255u8).map(char::from) {
            for domain in [
                format!("a{c}b.example"),
                format!("*.{c}.example"),
                c.to_string(),
            ] {
                let text = format!(
                    "[[sites]]\nid = 1\nname = \"n\"\ndomains = [{}]",
                    toml::Value::from(domain.as_str())
                );
                let Ok(config) = Config::from_table(text.parse().unwrap()) else {
                    continue;
                };
                accepted += 1;
                let site = &config.sites[0];
                let host = site.domains[0].trim_start_matches("*.");
                let back = safe_return(site, &format!("https://{host}/privacy"));
                let origin = back.as_ref().map(|u| u.origin().ascii_serialization());
                let policy = csp::optout_policy(
                    &STYLE_HASH,
                    Some(&SCRIPT_HASH),
                    origin.as_deref(),
                    &csp::frame_ancestors(site),
                );
                let body = render_site(site, Lang::De, 2, false, back.as_ref());
                let resp = html(StatusCode::OK, body, &policy);
                let sent = resp.headers()[header::CONTENT_SECURITY_POLICY]
                    .to_str()
                    .unwrap();
                assert_eq!(sent.split("; ").count(), 6, "{domain:?}: {sent}");
                assert!(
                    sent.ends_with(&format!("http://{}", site.domains[0])),
                    "{sent}"
                );
            }
        }
        // Letters, digits, `-` and `.` inside a name; letters and digits as a whole label.
        assert_eq!(
            accepted,
            (2 * 26 + 10 + 2) + (2 * 26 + 10) * 2,
            "{accepted}"
        );
    }

    #[test]
    fn page_states_the_masking() {
        let en = render(Lang::En, 2, false);
        assert!(
            en.contains("the last 2 of its 4 bytes are set to zero"),
            "{en}"
        );
        assert!(en.contains("198.51.100.23 is stored as 198.51.0.0"));
        assert!(en.contains("first 48 bits"));
        let one = render(Lang::En, 1, false);
        assert!(
            one.contains("its last byte is set to zero (198.51.100.23 is stored as 198.51.100.0)")
        );
        assert!(one.contains("first 64 bits"));
        let de = render(Lang::De, 3, false);
        assert!(de.contains("die letzten 3 ihrer 4 Bytes"), "{de}");
        assert!(de.contains("aus 198.51.100.23 wird 198.0.0.0"));
        assert!(de.contains("<html lang=\"de\">"));
    }

    #[test]
    fn button_follows_the_state() {
        let counted = render(Lang::En, 2, false);
        assert!(counted.contains("name=\"choice\" value=\"out\""));
        assert!(counted.contains("Your visits are currently counted"));
        let out = render(Lang::En, 2, true);
        assert!(out.contains("name=\"choice\" value=\"in\""));
        assert!(out.contains("You have opted out"));
    }

    #[test]
    fn style_is_the_hashed_one() {
        let p = render(Lang::En, 2, false);
        assert!(p.contains(&format!("<style>{STYLE}</style>")));
        assert_eq!(p.matches("<style").count(), 1);
        assert!(!p.contains("style=\""));
        // One script, the hashed one (deliberately added for the storage-access request and
        // the cross-site notice; the page still works without it).
        assert!(p.contains(&format!("<script>{SCRIPT}</script>")));
        assert_eq!(p.matches("<script").count(), 1);
    }
}
