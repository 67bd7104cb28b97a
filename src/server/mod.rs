//! The HTTP server: accepts connections within limits, guards each one with timeouts,
//! routes requests, shuts down gracefully.
//!
//! - [`conn`]: the header and idle timeouts of a connection, and hyper's own refusals
//!   rewritten with a JSON body;
//! - [`body`]: the body timeout and the server-wide budget of body bytes;
//! - [`limits`]: the file descriptor limit and the connection limit.
//!
//! What bounds memory: at most `max_connections` connections, each with hyper's buffers (a
//! request head is at most [`MAX_HEAD_BYTES`]), and at most `max_inflight_body_bytes` of
//! request bodies over all of them.

pub mod body;
pub mod conn;
pub mod limits;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::api;
use crate::config::{Config, ServerConfig};
use crate::http::{self, Resp};
use crate::ingest::matomo_api;
use crate::ingest::plausible;
use crate::ingest::reject::Reject;
use crate::ingest::response;
use crate::ingest::track;
use crate::privacy::FullIp;
use crate::state::App;
use crate::web;

use body::{Budget, GuardedBody};
use conn::{Calls, GuardedIo, Timeouts};
use limits::{AcceptErrors, ConnectionLimit};

/// Largest request head (request line and headers) hyper buffers: a longer one is refused
/// with 431 (or 414 for a request target over hyper's 65,534 bytes). Room for a request target
/// of that length, well above `[limits] max_uri_bytes`, which tally answers itself.
pub const MAX_HEAD_BYTES: usize = 96 * 1024;

/// Largest sum of a request's header names and values (each counted with 4 bytes of syntax):
/// a larger request is refused with 431. hyper's buffer limit ([`MAX_HEAD_BYTES`]) alone is
/// not exact: a head that arrives at once may be parsed whole from a larger read.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Streams one HTTP/2 connection may have open at once.
const H2_MAX_STREAMS: u32 = 100;

/// A request as the handlers see it: its body guarded by [`body`].
pub type Req = Request<GuardedBody<Incoming>>;

/// The listeners of a collector, bound at start.
pub struct Listeners {
    main: TcpListener,
    admin: Option<TcpListener>,
    /// `[server] max_connections` fitted to the file descriptor limit; `None`: as configured.
    max_connections: Option<usize>,
}

/// A tracking listener bound by the caller (benchmarks, tests): no admin listener, and
/// `[server] max_connections` as configured.
impl From<TcpListener> for Listeners {
    fn from(main: TcpListener) -> Listeners {
        Listeners {
            main,
            admin: None,
            max_connections: None,
        }
    }
}

impl Listeners {
    /// Binds `listen` and `[admin] listen`, and raises the file descriptor limit, fitting
    /// `[server] max_connections` in it. An address that cannot be bound is named in the error.
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let main = bind(config.listen).await?;
        let admin = match config.admin.listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        let max_connections = limits::fit_connections(config.server.max_connections);
        Ok(Listeners {
            main,
            admin,
            max_connections: Some(max_connections),
        })
    }

    /// The address the tracking listener is bound to (port 0 asks for any).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.main.local_addr()
    }

    /// The address the admin listener is bound to, if there is one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }
}

/// Connections the kernel holds for tally before it accepts them (capped by
/// `net.core.somaxconn`): a burst, or the connections waiting at the connection limit, wait
/// there instead of having their handshakes dropped.
const BACKLOG: u32 = 4096;

/// A listener on `addr`; the error names it.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listen = || -> std::io::Result<TcpListener> {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As std's and tokio's `bind` do: a restarted collector may reuse its port at once.
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(BACKLOG)
    };
    listen().map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))
}

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Router {
    /// Everything; `/metrics` only for `[metrics] allow`.
    Main,
    /// `/metrics`, `/health`, `/ready` for anyone who reaches it.
    Admin,
}

/// What every connection of a server shares.
struct Shared {
    app: Arc<App>,
    builder: auto::Builder<TokioExecutor>,
    timeouts: Timeouts,
    budget: Budget,
    /// Set when the grace period is over: connections still open are closed.
    force: watch::Receiver<bool>,
}

/// hyper's settings: its own timers as a backstop behind [`conn`]'s, the head size limit, and
/// HTTP/2's keep-alive and stream limits.
fn builder(cfg: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        // Without a timer hyper's header timeout is silently off. It runs from the end of the
        // previous answer, so it covers idle and header time together: a second behind
        // `conn`'s, which answers 408 first.
        .timer(TokioTimer::new())
        .header_read_timeout(
            cfg.header_read_timeout() + cfg.idle_timeout() + std::time::Duration::from_secs(1),
        )
        .max_buf_size(MAX_HEAD_BYTES);
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(cfg.idle_timeout()))
        .keep_alive_timeout(cfg.header_read_timeout())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(MAX_HEAD_BYTES as u32);
    b
}

/// Serves `app` on `listeners` until `shutdown` resolves; then stops accepting, lets open
/// requests finish for `[server] shutdown_grace_secs` and closes what is still open.
pub async fn serve(
    app: Arc<App>,
    listeners: impl Into<Listeners>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let listeners = listeners.into();
    let cfg = &app.config.server;
    let max_connections = listeners.max_connections.unwrap_or(cfg.max_connections);
    let grace = cfg.shutdown_grace();
    let largest = app
        .config
        .limits
        .max_body_bytes
        .max(app.config.api.max_body_bytes);
    let (force_tx, force) = watch::channel(false);
    let shared = Arc::new(Shared {
        builder: builder(cfg),
        timeouts: Timeouts {
            header: cfg.header_read_timeout(),
            idle: cfg.idle_timeout(),
        },
        budget: Budget::new(
            cfg.max_inflight_body_bytes,
            cfg.body_read_timeout(),
            largest,
            app.metrics.clone(),
        ),
        force,
        app: app.clone(),
    });
    let graceful = GracefulShutdown::new();
    let (stop_tx, stop) = watch::channel(false);
    let main = accept_loop(
        &shared,
        listeners.main,
        Router::Main,
        ConnectionLimit::new(max_connections, app.metrics.clone(), true),
        &graceful,
        stop.clone(),
    );
    let admin = async {
        if let Some(l) = listeners.admin {
            let limit = ConnectionLimit::new(limits::ADMIN_CONNECTIONS, app.metrics.clone(), false);
            accept_loop(&shared, l, Router::Admin, limit, &graceful, stop.clone()).await;
        }
    };
    let signal = async {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tokio::join!(main, admin, signal);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(grace_secs = grace.as_secs(), "connections still open after the shutdown grace; closing them");
            let _ = force_tx.send(true);
        }
    }
}

/// Accepts connections on `listener` within `limit` until `stop` is set.
async fn accept_loop(
    shared: &Arc<Shared>,
    listener: TcpListener,
    router: Router,
    mut limit: ConnectionLimit,
    graceful: &GracefulShutdown,
    mut stop: watch::Receiver<bool>,
) {
    let metrics = shared.app.metrics.clone();
    let mut errors = AcceptErrors::default();
    loop {
        let permit = tokio::select! {
            p = limit.acquire() => p,
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        match accepted {
            Ok((stream, peer)) => connection(shared, stream, peer, router, permit, graceful),
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning, and say
                // so once in a while rather than once per failure.
                errors.record(&e, &metrics);
                drop(permit);
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        }
    }
}

/// Serves one accepted connection in a task of its own, holding `permit` until it closes.
fn connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    permit: OwnedSemaphorePermit,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let metrics = shared.app.metrics.clone();
    let calls = Calls::new();
    let io = GuardedIo::new(stream, calls.clone(), shared.timeouts, metrics.clone());
    let for_service = shared.clone();
    let service = service_fn(move |req| {
        // Entered when hyper hands the request over, not when the future first runs: from
        // here the connection is busy, not idle.
        let call = calls.enter();
        let shared = for_service.clone();
        async move {
            let resp = handle(&shared, req, peer, router).await;
            drop(call);
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = shared
        .builder
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let conn = graceful.watch(conn);
    let mut force = shared.force.clone();
    metrics.connections_open.inc();
    tokio::spawn(async move {
        // Client disconnects and timeouts are routine; they are counted, not reported.
        tokio::select! {
            _ = conn => {}
            _ = force.wait_for(|f| *f) => {}
        }
        metrics.connections_open.dec();
        drop(permit);
    });
}

/// One request: its body guarded, routed, and its connection closed after a body that timed
/// out.
async fn handle(shared: &Shared, req: Request<Incoming>, peer: SocketAddr, router: Router) -> Resp {
    let version = req.version();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        shared.app.metrics.reject_for("headers_too_large");
        return http::json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request headers are too large",
        );
    }
    let (parts, body) = req.into_parts();
    let Some((body, held)) = shared.budget.guard(body) else {
        shared.app.metrics.reject_for("server_busy");
        return http::json_error(StatusCode::SERVICE_UNAVAILABLE, "server busy");
    };
    let req = Request::from_parts(parts, body);
    let mut resp = match router {
        Router::Main => route(&shared.app, req, peer).await,
        Router::Admin => route_admin(&shared.app, &req),
    };
    if held.timed_out() && version <= Version::HTTP_11 {
        // The rest of a slow body is not waited for.
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The admin listener's routes: `/metrics`, `/health`, `/ready`, nothing else.
fn route_admin<B>(app: &App, req: &Request<B>) -> Resp {
    let target = match normalize_path(req.uri().path()).as_deref() {
        Some("/metrics") => Target::Metrics,
        Some("/health") => Target::Health,
        Some("/ready") => Target::Ready,
        _ => return not_found(),
    };
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return method_not_allowed(req.method());
    }
    match target {
        Target::Metrics => metrics(app),
        Target::Ready => ready(app),
        _ => health(),
    }
}

/// `/health`: the process runs.
fn health() -> Resp {
    http::text(StatusCode::OK, "text/plain", "ok\n")
}

/// `/ready`: 200 when hits can be taken and stored, else 503 with the first reason not.
fn ready(app: &App) -> Resp {
    match app.status.ready() {
        Ok(()) => http::no_store(StatusCode::OK, "text/plain", "ok\n"),
        Err(reason) => http::json_error(StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// `/metrics`: the Prometheus exposition.
fn metrics(app: &App) -> Resp {
    http::text(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        app.metrics.render(),
    )
}

fn not_found() -> Resp {
    response::rejected(&Reject::new(StatusCode::NOT_FOUND, "not found"))
}

fn method_not_allowed(method: &Method) -> Resp {
    response::rejected(&Reject::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method {method} is not allowed here"),
    ))
}

/// What a request is for, decided from its path alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `matomo.php`, `piwik.php`: the tracking endpoint.
    Tracker,
    /// `tally.js`, `matomo.js`, `piwik.js`.
    Script,
    /// `optout`: the opt-out page.
    OptOut,
    /// `optout.js`: the opt-out widget for the site's own privacy policy.
    OptOutWidget,
    /// `privacy`: the privacy statement of a site ([`crate::web::statement`]).
    Privacy,
    /// `/` or `index.php`: Matomo's API slice ([`crate::ingest::matomo_api`]).
    Index,
    /// `health`.
    Health,
    /// `ready`.
    Ready,
    /// `metrics`.
    Metrics,
    /// `api/event`: Plausible's Events API ([`crate::ingest::plausible`]).
    PlausibleEvent,
    /// `api/v2/query`: the Stats API ([`crate::api`]).
    ApiQuery,
    /// `api/v2/openapi.json`: its OpenAPI description.
    ApiSchema,
    /// A page of the operators' dashboard ([`crate::dashboard`]): `login`, `logout`,
    /// `share/<token>`, `assets/dashboard.*`, `admin/...`.
    Dashboard,
    /// `demo` and `demo/leaflet.txt`: the demo's tracked website ([`crate::web::demo`]).
    Demo,
    /// Anything else.
    NotFound,
}

/// Maps a request path to its [`Target`] the way a web server in front of Matomo would:
/// percent-escaped unreserved characters decoded, repeated slashes merged (`//piwik.php`),
/// `.` and `..` segments resolved, extra path after a PHP file ignored (`/matomo.php/`, PHP's
/// `PATH_INFO`), `/` served by `index.php`. With a `base` (`base_path`, already normalised)
/// everything is under it, except `/health`, `/ready` and `/metrics`, which are for the operator
/// and stay at the root too. A path that climbs above the root finds nothing.
pub fn resolve(path: &str, base: Option<&str>) -> Target {
    let Some(path) = normalize_path(path) else {
        return Target::NotFound;
    };
    if let Some(inner) = inner_path(&path, base) {
        let target = target_of(inner);
        if target != Target::NotFound {
            return target;
        }
    }
    match path.as_str() {
        "/health" => Target::Health,
        "/ready" => Target::Ready,
        "/metrics" => Target::Metrics,
        _ => Target::NotFound,
    }
}

/// A normalised path relative to `base`, if it is under it.
fn inner_path<'a>(path: &'a str, base: Option<&str>) -> Option<&'a str> {
    match base {
        None => Some(path),
        Some(b) => match path.strip_prefix(b) {
            Some("") => Some("/"),
            Some(rest) if rest.starts_with('/') => Some(rest),
            _ => None,
        },
    }
}

/// The dashboard page a request path names (see [`resolve`]), if any.
fn dashboard_page(path: &str, base: Option<&str>) -> Option<crate::dashboard::Page> {
    let path = normalize_path(path)?;
    crate::dashboard::page_of(inner_path(&path, base)?)
}

/// Whether a request is for the dashboard's home: a GET of `/` (under the base; not
/// `index.php`, which stays Matomo's) without Matomo's `module=` parameter, which Matomo's API
/// slice needs.
fn is_dashboard_home(method: &Method, path: &str, query: Option<&str>, base: Option<&str>) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && normalize_path(path).is_some_and(|p| inner_path(&p, base) == Some("/"))
        && !form_urlencoded::parse(query.unwrap_or("").as_bytes()).any(|(k, _)| k == "module")
}

/// The target of a path relative to the base.
fn target_of(path: &str) -> Target {
    // A PHP file followed by more path still runs that file.
    let file = ["/matomo.php", "/piwik.php", "/index.php"]
        .into_iter()
        .find(|f| {
            path.strip_prefix(f)
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
        });
    match (file, path) {
        (Some("/index.php"), _) | (None, "/") => Target::Index,
        (Some(_), _) => Target::Tracker,
        (None, "/tally.js" | "/matomo.js" | "/piwik.js") => Target::Script,
        (None, "/optout") => Target::OptOut,
        (None, "/optout.js") => Target::OptOutWidget,
        (None, "/privacy") => Target::Privacy,
        (None, "/health") => Target::Health,
        (None, "/ready") => Target::Ready,
        (None, "/metrics") => Target::Metrics,
        (None, "/api/event") => Target::PlausibleEvent,
        (None, "/api/v2/query") => Target::ApiQuery,
        (None, "/api/v2/openapi.json") => Target::ApiSchema,
        (None, p) if crate::dashboard::page_of(p).is_some() => Target::Dashboard,
        (None, "/demo" | "/demo/leaflet.txt") => Target::Demo,
        _ => Target::NotFound,
    }
}

/// Normalises a request path (RFC 3986 section 6 plus merged slashes); `None` for one that is
/// not absolute or climbs above the root with `..`.
pub fn normalize_path(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return None;
    }
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// Decodes `%XX` escapes of unreserved characters (letters, digits, `-._~`), which name the
/// same resource as the characters themselves; every other escape stays as it is, so that an
/// escaped `/` cannot create a segment.
fn decode_unreserved(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return path.into();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = path.get(i + 1..i + 3)
            && hex.bytes().all(|c| c.is_ascii_hexdigit())
            && let Ok(b) = u8::from_str_radix(hex, 16)
            && (b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    // Only ASCII escapes were replaced by ASCII, so the bytes are as valid as `path` was.
    String::from_utf8_lossy(&out).into_owned().into()
}

/// Dispatches one request of the tracking listener.
async fn route(app: &App, req: Req, peer: SocketAddr) -> Resp {
    let max_uri = app.config.limits.max_uri_bytes;
    let target_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > max_uri {
        return track::uri_too_long(app, max_uri);
    }
    let target = resolve(req.uri().path(), app.config.base_path.as_deref());
    let method = req.method().clone();
    match (target, &method) {
        (Target::Tracker, &Method::GET | &Method::POST) => {
            let origin = req.headers().get(hyper::header::ORIGIN).cloned();
            let mut resp = track::handle(app, req, FullIp::of_peer(peer.ip())).await;
            response::cors(&mut resp, origin.as_ref(), &app.config);
            resp
        }
        (Target::Tracker, &Method::OPTIONS) => response::preflight(req.headers(), &app.config),
        (Target::PlausibleEvent, &Method::POST) => {
            let origin = req.headers().get(hyper::header::ORIGIN).cloned();
            let mut resp = plausible::handle(app, req, FullIp::of_peer(peer.ip())).await;
            response::cors(&mut resp, origin.as_ref(), &app.config);
            resp
        }
        (Target::PlausibleEvent, &Method::OPTIONS) => {
            response::preflight(req.headers(), &app.config)
        }
        (Target::Script, &Method::GET | &Method::HEAD) => web::assets::tracker(req.headers()),
        (Target::OptOut, &Method::GET | &Method::HEAD) => web::optout::page(app, &req),
        (Target::OptOutWidget, &Method::GET | &Method::HEAD) => {
            web::widget::serve(&app.config, &req)
        }
        (Target::Privacy, &Method::GET | &Method::HEAD) => web::statement::page(&app.config, &req),
        (Target::OptOut, &Method::POST) => {
            web::optout::submit(app, req, FullIp::of_peer(peer.ip())).await
        }
        (Target::Index, _)
            if is_dashboard_home(
                &method,
                req.uri().path(),
                req.uri().query(),
                app.config.base_path.as_deref(),
            ) =>
        {
            crate::dashboard::handle(app, crate::dashboard::Page::Home, req, peer.ip()).await
        }
        (Target::Index, &Method::GET | &Method::POST) => matomo_api::handle(app, req).await,
        (Target::Dashboard, _) => {
            match dashboard_page(req.uri().path(), app.config.base_path.as_deref()) {
                Some(page) => crate::dashboard::handle(app, page, req, peer.ip()).await,
                None => response::rejected(&Reject::new(StatusCode::NOT_FOUND, "not found")),
            }
        }
        (Target::Health, &Method::GET | &Method::HEAD) => health(),
        (Target::Ready, &Method::GET | &Method::HEAD) => ready(app),
        // Only for the addresses allowed: to anyone else it does not exist, whatever the method.
        (Target::Metrics, _) if !FullIp::of_peer(peer.ip()).within(&app.config.metrics.allow) => {
            not_found()
        }
        (Target::Metrics, &Method::GET) => metrics(app),
        // The API answers every method itself: 405 with the `Allow` it accepts.
        (Target::ApiQuery, _) => api::query(app, req).await,
        (Target::ApiSchema, _) => api::openapi(app, &req),
        (Target::Demo, &Method::GET | &Method::HEAD) => web::demo::serve(app, &req),
        (Target::NotFound, _) => not_found(),
        _ => method_not_allowed(&method),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_like_a_web_server() {
        let n = |p: &str| normalize_path(p);
        assert_eq!(n("/").as_deref(), Some("/"));
        assert_eq!(n("//piwik.php").as_deref(), Some("/piwik.php"));
        assert_eq!(n("///a//b/").as_deref(), Some("/a/b/"));
        assert_eq!(n("/a/./b").as_deref(), Some("/a/b"));
        assert_eq!(n("/a/../matomo.php").as_deref(), Some("/matomo.php"));
        assert_eq!(n("/a/b/..").as_deref(), Some("/a/"));
        assert_eq!(n("/matomo%2Ephp").as_deref(), Some("/matomo.php"));
        assert_eq!(n("/%6datomo.php").as_deref(), Some("/matomo.php"));
        // An escaped slash or dot-dot-escape does not become structure.
        assert_eq!(n("/a%2Fmatomo.php").as_deref(), Some("/a%2Fmatomo.php"));
        assert_eq!(n("/%").as_deref(), Some("/%"));
        assert_eq!(n("/%4").as_deref(), Some("/%4"));
        assert_eq!(n("/x%zz").as_deref(), Some("/x%zz"));
        assert_eq!(n("/.."), None);
        assert_eq!(n("/a/../../matomo.php"), None);
        assert_eq!(n("matomo.php"), None);
    }

    #[test]
    fn targets_at_the_root() {
        let r = |p: &str| resolve(p, None);
        for p in [
            "/matomo.php",
            "/piwik.php",
            "//piwik.php",
            "/matomo.php/",
            "/matomo.php/extra",
            "/./matomo.php",
        ] {
            assert_eq!(r(p), Target::Tracker, "{p}");
        }
        for p in ["/", "//", "/index.php", "/index.php/", "/x/.."] {
            assert_eq!(r(p), Target::Index, "{p}");
        }
        assert_eq!(r("/tally.js"), Target::Script);
        assert_eq!(r("/piwik.js"), Target::Script);
        assert_eq!(r("/optout"), Target::OptOut);
        assert_eq!(r("/optout.js"), Target::OptOutWidget);
        assert_eq!(r("/privacy"), Target::Privacy);
        assert_eq!(r("/health"), Target::Health);
        assert_eq!(r("/ready"), Target::Ready);
        assert_eq!(r("/metrics"), Target::Metrics);
        assert_eq!(r("/api/v2/query"), Target::ApiQuery);
        assert_eq!(r("/api/event"), Target::PlausibleEvent);
        assert_eq!(r("//api/v2/./query"), Target::ApiQuery);
        assert_eq!(r("/api/v2/openapi.json"), Target::ApiSchema);
        for p in [
            "/login",
            "/login/once",
            "/logout",
            "/assets/dashboard.js",
            "/assets/dashboard.css",
            "/share/abc",
            "/admin/keys",
            "/admin/links/0a/revoke",
        ] {
            assert_eq!(r(p), Target::Dashboard, "{p}");
        }
        let home = |m: &Method, p: &str, q: Option<&str>| is_dashboard_home(m, p, q, None);
        assert!(home(&Method::GET, "/", None));
        assert!(home(&Method::GET, "//", Some("lang=de")));
        assert!(!home(&Method::GET, "/", Some("module=API&method=x")));
        assert!(!home(&Method::GET, "/index.php", None));
        assert!(!home(&Method::POST, "/", None));
        assert!(is_dashboard_home(&Method::GET, "/a/", None, Some("/a")));
        assert!(is_dashboard_home(&Method::GET, "/a", None, Some("/a")));
        for p in [
            "/api/v2/query/",
            "/api/v2/Query",
            "/api/v1/query",
            "/api/v2",
            "/matomo.phpx",
            "/matomo",
            "/MATOMO.PHP",
            "/analytics/matomo.php",
            "/tally.js/",
            "/../matomo.php",
            "/a%2F..%2Fmatomo.php",
        ] {
            assert_eq!(r(p), Target::NotFound, "{p}");
        }
    }

    #[test]
    fn targets_under_a_base_path() {
        let r = |p: &str| resolve(p, Some("/analytics"));
        assert_eq!(r("/analytics/matomo.php"), Target::Tracker);
        assert_eq!(r("//analytics//piwik.php"), Target::Tracker);
        assert_eq!(r("/analytics/matomo.php/"), Target::Tracker);
        assert_eq!(r("/analytics/tally.js"), Target::Script);
        assert_eq!(r("/analytics/optout"), Target::OptOut);
        assert_eq!(r("/analytics/optout.js"), Target::OptOutWidget);
        assert_eq!(r("/analytics/privacy"), Target::Privacy);
        assert_eq!(r("/analytics"), Target::Index);
        assert_eq!(r("/analytics/"), Target::Index);
        assert_eq!(r("/analytics/index.php"), Target::Index);
        assert_eq!(r("/analytics/api/v2/query"), Target::ApiQuery);
        assert_eq!(r("/analytics/api/event"), Target::PlausibleEvent);
        assert_eq!(r("/api/event"), Target::NotFound);
        assert_eq!(r("/analytics/api/v2/openapi.json"), Target::ApiSchema);
        assert_eq!(r("/analytics/login"), Target::Dashboard);
        assert_eq!(r("/login"), Target::NotFound);
        assert_eq!(
            dashboard_page("/analytics//share/t", Some("/analytics")),
            Some(crate::dashboard::Page::Share("t".into()))
        );
        assert_eq!(r("/analytics/health"), Target::Health);
        assert_eq!(r("/health"), Target::Health);
        assert_eq!(r("/ready"), Target::Ready);
        assert_eq!(r("/metrics"), Target::Metrics);
        for p in [
            "/matomo.php",
            "/",
            "/index.php",
            "/tally.js",
            "/optout",
            "/optout.js",
            "/api/v2/query",
            "/api/v2/openapi.json",
            "/analyticsx/matomo.php",
            "/analytics/../matomo.php",
            "/other/analytics/matomo.php",
        ] {
            assert_eq!(r(p), Target::NotFound, "{p}");
        }
        let deep = |p: &str| resolve(p, Some("/a/b"));
        assert_eq!(deep("/a/b/piwik.php"), Target::Tracker);
        assert_eq!(deep("/a/piwik.php"), Target::NotFound);
    }
}
