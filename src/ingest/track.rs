//! `/matomo.php`: one GET, POST or bulk request in, its hits validated, anonymised, run through
//! the pipeline and queued. A single hit is stored or refused; of a bulk request the valid hits
//! are stored together (or none, when the queue lacks room for all) and the invalid ones
//! skipped and counted, as Matomo does.

use bytes::Bytes;
use hyper::header::{ACCEPT_LANGUAGE, REFERER, USER_AGENT};
use hyper::{HeaderMap, Method, Request, StatusCode};

use super::bulk::{self, Bulk};
use super::hit::{self, RequestContext};
use super::params::{self, Params};
use super::reject::Reject;
use super::response;
use crate::enrich::ClientHints;
use crate::event::Event;
use crate::http::Resp;
use crate::pipeline;
use crate::privacy::{self, FullIp};
use crate::sink::{Refused, Spooled};
use crate::state::App;

/// What the client is answered when its hits are taken (stored, or dropped on purpose: the
/// two must look the same, so nobody can tell from outside whether a visitor was counted).
enum Answer {
    /// One hit: the GIF, or `204` for `send_image=0`.
    Single { image: bool },
    /// A bulk request: Matomo's JSON summary (or `204`).
    Bulk {
        tracked: usize,
        invalid: Vec<usize>,
        authenticated: bool,
        summary: bool,
    },
}

impl Answer {
    fn into_response(self) -> Resp {
        match self {
            Answer::Single { image } => response::tracked(image),
            Answer::Bulk {
                tracked,
                invalid,
                authenticated,
                summary,
            } => response::bulk(tracked, &invalid, authenticated, summary),
        }
    }
}

/// Handles a tracking request from `peer`. Generic over the body so that the whole path can be
/// driven without a socket (`benches/ingest.rs`); the server passes hyper's `Incoming`.
pub async fn handle<B>(app: &App, req: Request<B>, peer: FullIp) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").as_bytes();
    let body = if parts.method == Method::POST {
        match read_body(app, body).await {
            Ok(b) => b,
            Err((reason, r)) => return reject(app, reason, r),
        }
    } else {
        Bytes::new()
    };
    // The shape of the answer is known before anything about the visitor is looked at, so
    // that a refused or dropped hit gets exactly the answer a stored one would.
    let bulk = if bulk::is_bulk(&body) {
        match bulk::parse(&body, app.config.limits.max_bulk_hits) {
            Ok(b) => Some(b),
            Err(r) => return reject(app, "malformed_bulk", r),
        }
    } else {
        None
    };
    let authenticated = match bulk.as_ref().and_then(|b| b.token_auth.as_deref()) {
        Some(token) if !app.token_matches(Some(token)) => {
            return reject(
                app,
                "bad_token",
                Reject::new(StatusCode::FORBIDDEN, "`token_auth` is not valid"),
            );
        }
        Some(_) => true,
        None => false,
    };
    // For a hit not looked at further (refused, excluded): its answer from the raw request, as
    // parsing would give it (`params::declines_image` agrees with `Params::wants_image`).
    let taken_whole = || match &bulk {
        Some(b) => Answer::Bulk {
            tracked: b.requests.len(),
            invalid: Vec::new(),
            authenticated,
            summary: b.wants_summary(),
        },
        None => Answer::Single {
            image: !params::declines_image(&[query, &body]),
        },
    };

    // The visitor's own refusal comes first: nothing of the hits is looked at further.
    if let Some(refusal) = privacy::refusal(&parts.headers, &app.config.privacy) {
        app.metrics.drop_for(refusal.as_str());
        return taken_whole().into_response();
    }
    // The full address lives only inside this match: located (when configured), then gone.
    let (ip, location) = match privacy::arrive(peer, &parts.headers, &app.config.privacy) {
        Ok((ip, full)) => (ip, hit::full_ip_location(app, &full)),
        Err(privacy::Excluded) => {
            app.metrics.drop_for("excluded_ip");
            return taken_whole().into_response();
        }
    };
    let h = &parts.headers;
    let ctx = RequestContext {
        ip,
        user_agent: header_str(h, USER_AGENT),
        accept_language: header_str(h, ACCEPT_LANGUAGE),
        referer: header_str(h, REFERER),
        now: crate::time::now_unix(),
        authenticated,
        hints: ClientHints {
            ua: header_opt(h, "sec-ch-ua"),
            platform: header_opt(h, "sec-ch-ua-platform"),
            platform_version: header_opt(h, "sec-ch-ua-platform-version"),
            mobile: header_opt(h, "sec-ch-ua-mobile"),
            full_version_list: header_opt(h, "sec-ch-ua-full-version-list"),
        },
        model_header: header_opt(h, "sec-ch-ua-model"),
        location,
    };
    let outcome = match &bulk {
        Some(b) => track_bulk(app, b, &ctx),
        None => track_one(app, query, &body, &ctx)
            .map(|(image, spooled)| (Answer::Single { image }, spooled)),
    };
    match outcome {
        // With `fsync = "always"` the answer waits until the disk has the events.
        Ok((answer, spooled)) => match app.sink.durable(spooled).await {
            Ok(()) => answer.into_response(),
            Err(why) => reject(app, why.reason(), refused(why)),
        },
        Err((reason, r)) => reject(app, reason, r),
    }
}

/// The request body within `[limits] max_body_bytes` and the body timeout (Plausible's
/// endpoint reads its body the same way).
pub(super) async fn read_body<B>(app: &App, body: B) -> Result<Bytes, (&'static str, Reject)>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let max = app.config.limits.max_body_bytes;
    crate::http::read_body(body, max, app.config.server.body_read_timeout())
        .await
        .map_err(Reject::body)
}

/// Counts a refusal under `reason` and answers it.
pub(super) fn reject(app: &App, reason: &'static str, r: Reject) -> Resp {
    app.metrics.reject_for(reason);
    response::rejected(&r)
}

type Outcome<T> = Result<T, (&'static str, Reject)>;

/// A single hit from the query string and (for POST) the form body; `Ok((image, _))`: the
/// answer it asked for, and where its event went.
fn track_one(
    app: &App,
    query: &[u8],
    body: &[u8],
    ctx: &RequestContext<'_>,
) -> Outcome<(bool, Spooled)> {
    let mut params = Params::default();
    params.extend(query, &app.config.limits);
    params.extend(body, &app.config.limits);
    let image = params.wants_image();
    let events = match hit::build(&params, ctx, app).map_err(|r| ("invalid", r))? {
        Some((event, hit)) => pipeline::run(event, &hit, app)
            .map_err(|r| ("invalid", r))?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    enqueue(app, events).map(|spooled| (image, spooled))
}

/// A bulk request: every hit is decided before any is queued; the valid ones are queued
/// together.
fn track_bulk(app: &App, bulk: &Bulk, ctx: &RequestContext<'_>) -> Outcome<(Answer, Spooled)> {
    if !app.sink.has_room(bulk.requests.len()) {
        return Err(("spool_full", refused(Refused::Full)));
    }
    let mut events = Vec::with_capacity(bulk.requests.len());
    let mut invalid = Vec::new();
    for (i, entry) in bulk.requests.iter().enumerate() {
        match bulk_entry(app, entry, ctx) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => {}
            Err(r) => {
                tracing::debug!(index = i, reason = %r.message, "invalid hit in bulk request");
                app.metrics.reject_for("bulk_invalid_hit");
                invalid.push(i);
            }
        }
    }
    let spooled = enqueue(app, events)?;
    let answer = Answer::Bulk {
        tracked: bulk.requests.len() - invalid.len(),
        invalid,
        authenticated: ctx.authenticated,
        summary: bulk.wants_summary(),
    };
    Ok((answer, spooled))
}

/// One entry of a bulk request: its event, `None` when dropped on purpose.
fn bulk_entry(
    app: &App,
    entry: &serde_json::Value,
    ctx: &RequestContext<'_>,
) -> Result<Option<Event>, Reject> {
    if bulk::is_empty_entry(entry) {
        // Matomo counts an empty request as tracked and records nothing; the log importer
        // sends `null` for lines of hosts it could not resolve.
        app.metrics.drop_for("empty_request");
        return Ok(None);
    }
    let params = bulk::entry_params(entry, &app.config.limits)
        .ok_or_else(|| Reject::bad_request("not a query string or object of parameters"))?;
    match hit::build(&params, ctx, app)? {
        Some((event, hit)) => pipeline::run(event, &hit, app),
        None => Ok(None),
    }
}

fn enqueue(app: &App, events: Vec<Event>) -> Outcome<Spooled> {
    app.sink
        .enqueue(events)
        .map_err(|why| (why.reason(), refused(why)))
}

/// The answer to hits the spool refused.
pub fn refused(why: Refused) -> Reject {
    Reject::new(StatusCode::SERVICE_UNAVAILABLE, why.message())
}

fn header_str(h: &HeaderMap, name: hyper::header::HeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn header_opt<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Answers `status` for a request target longer than the limit (checked before routing).
pub fn uri_too_long(app: &App, max: usize) -> Resp {
    reject(
        app,
        "uri_too_long",
        Reject::new(
            StatusCode::URI_TOO_LONG,
            format!("request target is longer than {max} bytes"),
        ),
    )
}
