//! The operators' dashboard, server side: the sign-in pages, sign-out, the shell that loads the
//! dashboard's script, shared links, the admins' JSON endpoints and the embedded assets.
//!
//! The statistics themselves come only from `POST /api/v2/query` ([`crate::api`]); this module
//! decides who is signed in ([`crate::access`]) and hands the script its configuration in the
//! shell (`docs/dashboard.md` and the contract in `dashboard-js/` describe it).
//!
//! Security, in short:
//! - HTML only through askama templates; no inline script anywhere, the small pages' one
//!   stylesheet allowed by its hash, the shell's files by `'self'`. Every page but a shared link
//!   refuses to be framed (`frame-ancestors 'none'`); a shared link may be framed by its site's
//!   own domains, as the opt-out page.
//! - The session cookie is `HttpOnly`, `SameSite=Strict`, `Secure` over https, scoped to the
//!   base path, and set only by a sign-in: nothing here runs for the sites' visitors.
//! - The sign-in forms (no session yet) are accepted only from our own origin (`Sec-Fetch-Site`,
//!   else `Origin`); the signed-in forms and the JSON endpoints need the session's CSRF token.
//! - Every body is read with a size limit and a timeout; bad input is a 4xx with one line.
//!
//! Part of the read side: it uses `access`, `api`, `config`, `http`, `privacy`, `state` and
//! `web`'s texts, CSP helpers and asset serving, never `ingest`, `pipeline`, `sink` or `enrich`.

pub mod admin;
pub mod texts;

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use askama::Template;
use bytes::Bytes;
use cookie::{Cookie, SameSite};
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::access::{self, Access, Attempt, SESSION_COOKIE, Viewer, store::SESSION_SECS};
use crate::config::Config;
use crate::http::{self, Resp, query_param};
use crate::privacy::FullIp;
use crate::state::App;
use crate::web::texts::Lang;
use crate::web::{assets, csp};
use texts::{DashTexts, texts};

/// Largest form or JSON body: a name, a password and a few fields.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The small pages' whole stylesheet, allowed by its hash.
const STYLE: &str = "body{font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",sans-serif;\
margin:0;padding:1em;color:#1b1b1b;background:#f6f7f9}\
main{max-width:24em;margin:3em auto;background:#fff;padding:1.5em;border-radius:8px;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.35em;margin:0 0 .8em}\
label{display:block;margin:.8em 0 .2em;font-weight:600}\
input{font:inherit;width:100%;box-sizing:border-box;padding:.5em;border:1px solid #8a8f98;border-radius:4px}\
button{font:inherit;margin-top:1.2em;padding:.55em 1.2em;border:0;border-radius:4px;background:#1f5fbf;color:#fff;cursor:pointer}\
button:focus,input:focus{outline:3px solid #f0b400;outline-offset:1px}\
.error{padding:.6em .8em;border-left:4px solid #b3261e;background:#fdecea;margin:0 0 1em}";

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp::style_hash(STYLE));

/// A dashboard path, relative to `base_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `/` without `module=`: the shell or the way to sign in.
    Home,
    /// `/login`.
    Login,
    /// `/login/once`.
    LoginOnce,
    /// `/logout`.
    Logout,
    /// `/assets/dashboard.js`.
    Script,
    /// `/assets/dashboard.css`.
    Style,
    /// `/share/<token>`.
    Share(String),
    /// `/admin/...`.
    Admin(admin::Endpoint),
}

/// The dashboard page at `path` (relative to the base, normalised), if it is one; `/` is
/// decided by the router (it is Matomo's API with `module=`).
pub fn page_of(path: &str) -> Option<Page> {
    Some(match path {
        "/login" => Page::Login,
        "/login/once" => Page::LoginOnce,
        "/logout" => Page::Logout,
        "/assets/dashboard.js" => Page::Script,
        "/assets/dashboard.css" => Page::Style,
        p => {
            if let Some(token) = p.strip_prefix("/share/") {
                return (!token.is_empty() && !token.contains('/'))
                    .then(|| Page::Share(token.to_string()));
            }
            return admin::endpoint_of(p).map(Page::Admin);
        }
    })
}

/// Everything a handler needs about the request.
struct Ctx<'a> {
    app: &'a App,
    access: &'a Access,
    base: &'a str,
    lang: Lang,
    https: bool,
    peer: IpAddr,
}

impl Ctx<'_> {
    fn t(&self) -> &'static DashTexts {
        texts(self.lang)
    }

    fn client(&self, headers: &HeaderMap) -> FullIp {
        crate::privacy::client(
            FullIp::of_peer(self.peer),
            headers,
            &self.app.config.privacy,
        )
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Answers a request for `page` arriving from `peer`.
pub async fn handle<B>(app: &App, page: Page, req: Request<B>, peer: IpAddr) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(api) = app.api.as_ref() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the dashboard is not running on this collector",
        );
    };
    let lang_param = query_param(req.uri(), "lang");
    let ctx = Ctx {
        app,
        access: api.access(),
        base: app.config.base_path.as_deref().unwrap_or(""),
        lang: crate::web::texts::choose(lang_param.as_deref(), req.headers()),
        https: http::is_https(&app.config, req.headers(), &FullIp::of_peer(peer)),
        peer,
    };
    let method = req.method().clone();
    match (page, &method) {
        (Page::Script, &Method::GET | &Method::HEAD) => assets::dashboard_js(req.headers()),
        (Page::Style, &Method::GET | &Method::HEAD) => assets::dashboard_css(req.headers()),
        (Page::Home, &Method::GET | &Method::HEAD) => home(&ctx, &req).await,
        (Page::Login, &Method::GET | &Method::HEAD) => login_form(&ctx, &req).await,
        (Page::Login, &Method::POST) => login(&ctx, req).await,
        (Page::LoginOnce, &Method::GET | &Method::HEAD) => once_form(&ctx, &req),
        (Page::LoginOnce, &Method::POST) => once(&ctx, req).await,
        (Page::Logout, &Method::POST) => logout(&ctx, req).await,
        (Page::Share(token), &Method::GET | &Method::HEAD) => share(&ctx, &token, None, &req).await,
        (Page::Share(token), &Method::POST) => share_unlock(&ctx, &token, req).await,
        (Page::Admin(endpoint), _) => admin::handle(&ctx_admin(&ctx), endpoint, req).await,
        (_, m) => plain(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {m} is not allowed here"),
        ),
    }
}

/// What the admin endpoints need.
fn ctx_admin<'a>(ctx: &'a Ctx<'a>) -> admin::AdminCtx<'a> {
    admin::AdminCtx {
        app: ctx.app,
        access: ctx.access,
        base: ctx.base,
        https: ctx.https,
    }
}

/// The signed-in operator of a request, if any (`Err` when the database cannot be read).
async fn viewer_of(access: &Access, headers: &HeaderMap) -> Result<Option<Viewer>, ()> {
    let Some(token) = access::session_cookie(headers) else {
        return Ok(None);
    };
    access
        .session(&token, crate::time::now_unix())
        .await
        .map_err(|_| ())
}

/// `GET /`: the shell when signed in, else to the sign-in page.
async fn home<B>(ctx: &Ctx<'_>, req: &Request<B>) -> Resp {
    match viewer_of(ctx.access, req.headers()).await {
        Ok(Some(v)) => shell(ctx, Mode::Session(&v), None),
        Ok(None) => see_other(&ctx.url("/login"), None),
        Err(()) => unavailable(ctx, ctx.t().sign_in_title),
    }
}

#[derive(Template)]
#[template(path = "dash_login.html")]
struct LoginHtml<'a> {
    lang: &'static str,
    style: &'static str,
    title: &'static str,
    t: &'static DashTexts,
    message: Option<String>,
    action: String,
    next: &'a str,
    name: &'a str,
}

/// `GET /login`.
async fn login_form<B>(ctx: &Ctx<'_>, req: &Request<B>) -> Resp {
    if let Ok(Some(_)) = viewer_of(ctx.access, req.headers()).await {
        return see_other(&ctx.url("/"), None);
    }
    let next = query_param(req.uri(), "next")
        .and_then(|n| safe_next(ctx.base, &n))
        .unwrap_or_default();
    login_page(ctx, StatusCode::OK, None, &next, "")
}

fn login_page(
    ctx: &Ctx<'_>,
    status: StatusCode,
    message: Option<String>,
    next: &str,
    name: &str,
) -> Resp {
    let t = ctx.t();
    let page = LoginHtml {
        lang: ctx.lang.code(),
        style: STYLE,
        title: t.sign_in_title,
        t,
        message,
        action: ctx.url("/login"),
        next,
        name,
    };
    small_page(status, &page, &small_page_policy())
}

/// `POST /login`.
async fn login<B>(ctx: &Ctx<'_>, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (headers, form) = match sign_in_form(ctx, ctx.t().sign_in_title, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = field(&form, "name");
    let password = field(&form, "password");
    let next = safe_next(ctx.base, field(&form, "next")).unwrap_or_else(|| ctx.url("/"));
    let client = ctx.client(&headers);
    match ctx
        .access
        .sign_in(name, password, &client, crate::time::now_unix())
        .await
    {
        Attempt::Ok((token, _)) => see_other(&next, Some(session_cookie(ctx, &token))),
        Attempt::Wrong => {
            tracing::info!("a dashboard sign-in failed");
            login_page(
                ctx,
                StatusCode::UNAUTHORIZED,
                Some(ctx.t().wrong.into()),
                field(&form, "next"),
                name,
            )
        }
        Attempt::Throttled(wait) => throttled(ctx, wait, |m| {
            login_page(
                ctx,
                StatusCode::TOO_MANY_REQUESTS,
                Some(m),
                field(&form, "next"),
                name,
            )
        }),
        Attempt::Failed(e) => {
            tracing::warn!(error = %e, "a dashboard sign-in could not be checked");
            unavailable(ctx, ctx.t().sign_in_title)
        }
    }
}

/// A 429 page with `Retry-After`.
fn throttled(ctx: &Ctx<'_>, wait: Duration, page: impl FnOnce(String) -> Resp) -> Resp {
    let secs = access::throttle::retry_after_secs(wait);
    let mut r = page(ctx.t().throttled.replace("{secs}", &secs.to_string()));
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

#[derive(Template)]
#[template(path = "dash_once.html")]
struct OnceHtml<'a> {
    lang: &'static str,
    style: &'static str,
    title: &'static str,
    t: &'static DashTexts,
    message: Option<String>,
    show_form: bool,
    action: String,
    token: &'a str,
    login: String,
}

fn once_page(ctx: &Ctx<'_>, status: StatusCode, token: &str, message: Option<String>) -> Resp {
    let t = ctx.t();
    let page = OnceHtml {
        lang: ctx.lang.code(),
        style: STYLE,
        title: t.once_title,
        t,
        show_form: message.is_none(),
        message,
        action: ctx.url("/login/once"),
        token,
        login: ctx.url("/login"),
    };
    small_page(status, &page, &small_page_policy())
}

/// `GET /login/once?t=TOKEN`: a button, so that a link preview or prefetch does not spend it.
fn once_form<B>(ctx: &Ctx<'_>, req: &Request<B>) -> Resp {
    let token = query_param(req.uri(), "t").unwrap_or_default();
    if !access::secret::is_token(&token) {
        return once_page(
            ctx,
            StatusCode::NOT_FOUND,
            "",
            Some(ctx.t().once_invalid.into()),
        );
    }
    once_page(ctx, StatusCode::OK, &token, None)
}

/// `POST /login/once`.
async fn once<B>(ctx: &Ctx<'_>, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (headers, form) = match sign_in_form(ctx, ctx.t().once_title, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let client = ctx.client(&headers);
    match ctx
        .access
        .sign_in_once(field(&form, "t"), &client, crate::time::now_unix())
        .await
    {
        Attempt::Ok((token, _)) => see_other(&ctx.url("/"), Some(session_cookie(ctx, &token))),
        Attempt::Wrong => once_page(
            ctx,
            StatusCode::UNAUTHORIZED,
            "",
            Some(ctx.t().once_invalid.into()),
        ),
        Attempt::Throttled(wait) => throttled(ctx, wait, |m| {
            once_page(ctx, StatusCode::TOO_MANY_REQUESTS, "", Some(m))
        }),
        Attempt::Failed(e) => {
            tracing::warn!(error = %e, "a one-time sign-in could not be checked");
            unavailable(ctx, ctx.t().once_title)
        }
    }
}

/// `POST /logout` with the session's `csrf`: ends the session everywhere.
async fn logout<B>(ctx: &Ctx<'_>, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let form = match read_form(body).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let viewer = match viewer_of(ctx.access, &parts.headers).await {
        Ok(Some(v)) => v,
        Ok(None) => return see_other(&ctx.url("/login"), Some(clear_cookie(ctx))),
        Err(()) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the sessions cannot be read right now",
            );
        }
    };
    if !access::secret::same(field(&form, "csrf"), &viewer.csrf) {
        return plain(StatusCode::FORBIDDEN, "missing or wrong csrf field");
    }
    if let Err(e) = ctx.access.sign_out(&viewer, crate::time::now_unix()).await {
        tracing::warn!(error = %e, "recording a sign-out failed");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the sign-out could not be recorded; try again",
        );
    }
    see_other(&ctx.url("/login"), Some(clear_cookie(ctx)))
}

#[derive(Template)]
#[template(path = "dash_share_password.html")]
struct SharePasswordHtml {
    lang: &'static str,
    style: &'static str,
    title: &'static str,
    t: &'static DashTexts,
    message: Option<String>,
    action: String,
}

/// `GET /share/<token>` (and the answer to its password form, with `grant`).
async fn share<B>(ctx: &Ctx<'_>, token: &str, grant: Option<&str>, _req: &Request<B>) -> Resp {
    let shared = match ctx.access.share(token).await {
        Ok(Some(s)) => s,
        Ok(None) => return not_found(ctx),
        Err(_) => return unavailable(ctx, ctx.t().share_title),
    };
    if shared.protected && grant.is_none() {
        return share_password(ctx, token, shared.site, StatusCode::OK, None);
    }
    shell(
        ctx,
        Mode::Share {
            token,
            site: shared.site,
            grant,
        },
        Some(shared.site),
    )
}

/// The password form of a protected link, which (like the link's dashboard) only its own site's
/// pages may frame.
fn share_password(
    ctx: &Ctx<'_>,
    token: &str,
    site: u32,
    status: StatusCode,
    message: Option<String>,
) -> Resp {
    let t = ctx.t();
    let page = SharePasswordHtml {
        lang: ctx.lang.code(),
        style: STYLE,
        title: t.share_title,
        t,
        message,
        action: ctx.url(&format!("/share/{token}")),
    };
    small_page(status, &page, &small_page_policy_framed(ctx, site))
}

/// `POST /share/<token>`: the password of a protected link.
async fn share_unlock<B>(ctx: &Ctx<'_>, token: &str, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (headers, form) = match sign_in_form(ctx, ctx.t().share_title, req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let shared = match ctx.access.share(token).await {
        Ok(Some(s)) if s.protected => s,
        Ok(Some(_)) => return see_other(&ctx.url(&format!("/share/{token}")), None),
        Ok(None) => return not_found(ctx),
        Err(_) => return unavailable(ctx, ctx.t().share_title),
    };
    let client = ctx.client(&headers);
    match ctx
        .access
        .unlock(&shared, field(&form, "password"), &client)
        .await
    {
        Attempt::Ok(grant) => shell(
            ctx,
            Mode::Share {
                token,
                site: shared.site,
                grant: Some(&grant),
            },
            Some(shared.site),
        ),
        Attempt::Wrong => share_password(
            ctx,
            token,
            shared.site,
            StatusCode::UNAUTHORIZED,
            Some(ctx.t().wrong.into()),
        ),
        Attempt::Throttled(wait) => throttled(ctx, wait, |m| {
            share_password(
                ctx,
                token,
                shared.site,
                StatusCode::TOO_MANY_REQUESTS,
                Some(m),
            )
        }),
        Attempt::Failed(e) => {
            tracing::warn!(error = %e, "a shared link's password could not be checked");
            unavailable(ctx, ctx.t().share_title)
        }
    }
}

/// Who the shell is for.
enum Mode<'a> {
    Session(&'a Viewer),
    Share {
        token: &'a str,
        site: u32,
        grant: Option<&'a str>,
    },
}

/// The shell's configuration (the contract's CONFIG).
#[derive(Serialize)]
struct ShellConfig<'a> {
    mode: &'static str,
    base: &'a str,
    api: String,
    headers: serde_json::Map<String, serde_json::Value>,
    lang: &'static str,
    user: Option<UserJson<'a>>,
    sites: Vec<SiteJson<'a>>,
    logout: Option<String>,
    csrf: Option<&'a str>,
    admin: Option<AdminJson>,
    demo: bool,
}

#[derive(Serialize)]
struct UserJson<'a> {
    name: &'a str,
    admin: bool,
}

#[derive(Serialize)]
struct SiteJson<'a> {
    id: u32,
    name: &'a str,
    timezone: &'a str,
    domains: &'a [String],
}

#[derive(Serialize)]
struct AdminJson {
    keys: String,
    links: String,
}

#[derive(Template)]
#[template(path = "dash_shell.html")]
struct ShellHtml<'a> {
    lang: &'static str,
    base: &'a str,
    config: String,
    js_v: &'static str,
    css_v: &'static str,
}

/// Escapes JSON for a `<script type="application/json">` element: `<`, `>`, `&` and U+2028/9
/// as `\uXXXX` (the same JSON value), so no text inside it can end the element.
pub fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The shell for a signed-in operator or a shared link.
fn shell(ctx: &Ctx<'_>, mode: Mode<'_>, framed_site: Option<u32>) -> Resp {
    let config: &Config = &ctx.app.config;
    let mut headers = serde_json::Map::new();
    let (visible, user, logout, csrf, admin, mode_name) = match &mode {
        Mode::Session(v) => {
            headers.insert("X-Tally-CSRF".into(), v.csrf.clone().into());
            (
                v.sites.clone(),
                Some(UserJson {
                    name: &v.user,
                    admin: v.admin,
                }),
                Some(ctx.url("/logout")),
                Some(v.csrf.as_str()),
                v.admin.then(|| AdminJson {
                    keys: ctx.url("/admin/keys"),
                    links: ctx.url("/admin/links"),
                }),
                "session",
            )
        }
        Mode::Share { token, site, grant } => {
            headers.insert("X-Tally-Share".into(), (*token).into());
            if let Some(g) = grant {
                headers.insert("X-Tally-Share-Grant".into(), (*g).into());
            }
            (vec![*site], None, None, None, None, "share")
        }
    };
    let sites = config
        .sites
        .iter()
        .filter(|s| visible.contains(&s.id))
        .map(|s| SiteJson {
            id: s.id,
            name: &s.name,
            timezone: &s.timezone,
            domains: &s.domains,
        })
        .collect();
    let shell_config = ShellConfig {
        mode: mode_name,
        base: ctx.base,
        api: ctx.url("/api/v2/query"),
        headers,
        lang: ctx.lang.code(),
        user,
        sites,
        logout,
        csrf,
        admin,
        demo: ctx.app.config.demo,
    };
    let json = serde_json::to_string(&shell_config).unwrap_or_else(|_| "{}".into());
    let (js_v, css_v) = assets::dashboard_versions();
    let body = ShellHtml {
        lang: ctx.lang.code(),
        base: ctx.base,
        config: script_safe_json(&json),
        js_v,
        css_v,
    }
    .render()
    .unwrap_or_default();
    let ancestors = match framed_site.and_then(|id| config.site(id)) {
        Some(site) => {
            let mut a = String::from("'self'");
            for s in csp::frame_ancestors(site) {
                a.push(' ');
                a.push_str(&s);
            }
            a
        }
        None => "'none'".into(),
    };
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    );
    html(StatusCode::OK, body, &policy)
}

#[derive(Template)]
#[template(path = "dash_message.html")]
struct MessageHtml {
    lang: &'static str,
    style: &'static str,
    title: &'static str,
    body: &'static str,
}

fn message(ctx: &Ctx<'_>, status: StatusCode, title: &'static str, body: &'static str) -> Resp {
    let page = MessageHtml {
        lang: ctx.lang.code(),
        style: STYLE,
        title,
        body,
    };
    small_page(status, &page, &small_page_policy())
}

/// The 503 page of a request that needed the accounts, which cannot be read right now.
fn unavailable(ctx: &Ctx<'_>, title: &'static str) -> Resp {
    message(
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
        title,
        ctx.t().unavailable,
    )
}

/// One of the small pages (sign-in, messages), rendered, with `policy`.
fn small_page(status: StatusCode, page: &impl Template, policy: &str) -> Resp {
    html(status, page.render().unwrap_or_default(), policy)
}

fn not_found(ctx: &Ctx<'_>) -> Resp {
    message(
        ctx,
        StatusCode::NOT_FOUND,
        ctx.t().not_found_title,
        ctx.t().not_found_body,
    )
}

/// The policy of the small pages: their stylesheet, their own forms, no framing.
fn small_page_policy() -> String {
    policy_framed_by("'none'")
}

/// A shared link's password page may be framed where its dashboard may: by its site's own
/// domains (`frame_ancestors`, as for the opt-out page), not by every configured site's.
fn small_page_policy_framed(ctx: &Ctx<'_>, site: u32) -> String {
    let ancestors: Vec<String> = ctx
        .app
        .config
        .site(site)
        .map(csp::frame_ancestors)
        .unwrap_or_default();
    policy_framed_by(&format!("'self' {}", ancestors.join(" ")))
}

/// The small pages' policy (their stylesheet by hash, their own forms) with `frame-ancestors`.
fn policy_framed_by(frame_ancestors: &str) -> String {
    format!(
        "default-src 'none'; style-src {}; form-action 'self'; base-uri 'none'; \
         frame-ancestors {frame_ancestors}",
        *STYLE_HASH
    )
}

/// An HTML response, never cached (it may show who is signed in), with `policy` and
/// `Referrer-Policy: same-origin`.
fn html(status: StatusCode, body: String, policy: &str) -> Resp {
    let mut r = http::html(status, body, policy);
    // `same-origin`, not `no-referrer`: the sign-in forms must carry their `Origin`, which
    // `no-referrer` turns into `null`; over plain http to a host that is not localhost, browsers
    // send no `Sec-Fetch-Site` either, and the sign-in would be refused as cross-site. Nothing
    // goes to other origins (a shared link's token is in its URL), so that stays private.
    r.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

/// A one-line plain-text answer, never cached.
fn plain(status: StatusCode, text: &str) -> Resp {
    http::no_store(status, http::TEXT, format!("{text}\n"))
}

/// `303 See Other` to `location`, setting `cookie` if given.
fn see_other(location: &str, cookie: Option<String>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(if location.is_empty() { "/" } else { location }) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

fn cookie_path(ctx: &Ctx<'_>) -> String {
    if ctx.base.is_empty() {
        "/".into()
    } else {
        ctx.base.to_string()
    }
}

/// The session cookie: `HttpOnly`, `SameSite=Strict`, the base path, the session's lifetime,
/// `Secure` over https.
fn session_cookie(ctx: &Ctx<'_>, token: &str) -> String {
    Cookie::build((SESSION_COOKIE, token.to_string()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(cookie_path(ctx))
        .max_age(cookie::time::Duration::seconds(i64::from(SESSION_SECS)))
        .secure(ctx.https)
        .build()
        .to_string()
}

fn clear_cookie(ctx: &Ctx<'_>) -> String {
    Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(cookie_path(ctx))
        .max_age(cookie::time::Duration::ZERO)
        .secure(ctx.https)
        .build()
        .to_string()
}

/// A `next` that stays on this dashboard: a path under the base, not `//host` or `/\host`
/// (which browsers read as another host), without control characters.
pub fn safe_next(base: &str, next: &str) -> Option<String> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2000
        && (base.is_empty() || next == base || next.starts_with(&format!("{base}/")));
    ok.then(|| next.to_string())
}

/// Whether a form post without a session comes from our own origin: `Sec-Fetch-Site:
/// same-origin`, or, from a browser that does not send it, an `Origin` equal to ours (the
/// origin of `public_url`, or the scheme and `Host` of the request). A post with neither
/// header is refused: every current browser sends one of them with a form post.
pub fn same_origin(config: &Config, headers: &HeaderMap, https: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let mut ours = Vec::new();
    if let Some(u) = config
        .public_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
    {
        ours.push(u.origin().ascii_serialization().to_ascii_lowercase());
    }
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        let scheme = if https { "https" } else { "http" };
        ours.push(format!("{scheme}://{}", host.trim().to_ascii_lowercase()));
    }
    ours.contains(&origin)
}

/// The headers and the fields of a sign-in form's post (there is no session yet, so no CSRF
/// token): only from our own origin ([`same_origin`]), else the page `title` saying so.
async fn sign_in_form<B>(
    ctx: &Ctx<'_>,
    title: &'static str,
    req: Request<B>,
) -> Result<(HeaderMap, Vec<(String, String)>), Resp>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if !same_origin(&ctx.app.config, &parts.headers, ctx.https) {
        return Err(message(
            ctx,
            StatusCode::FORBIDDEN,
            title,
            ctx.t().bad_origin,
        ));
    }
    Ok((parts.headers, read_form(body).await?))
}

/// A form-urlencoded body, at most [`MAX_BODY_BYTES`], within [`http::BODY_TIMEOUT`].
async fn read_form<B>(body: B) -> Result<Vec<(String, String)>, Resp>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = read_body(body).await?;
    Ok(form_urlencoded::parse(&bytes).into_owned().collect())
}

/// A body, at most [`MAX_BODY_BYTES`], within [`http::BODY_TIMEOUT`]; else the 4xx to answer.
pub(crate) async fn read_body<B>(body: B) -> Result<Bytes, Resp>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http::read_body(body, MAX_BODY_BYTES, http::BODY_TIMEOUT)
        .await
        .map_err(|e| plain(e.status(), &e.to_string()))
}

/// The first value of form field `name`, or `""`.
fn field<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[cfg(test)]
mod tests;
