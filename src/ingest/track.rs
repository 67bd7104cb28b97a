//! `/matomo.php`: one GET, POST or bulk request in, its hits validated, anonymised, run through
//! the pipeline and queued, all or nothing.

use std::net::IpAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{ACCEPT_LANGUAGE, USER_AGENT};
use hyper::{HeaderMap, Method, Request, StatusCode};

use super::bulk;
use super::hit::{self, RequestContext};
use super::params::Params;
use super::reject::Reject;
use super::response::{self, Resp};
use crate::enrich::ClientHints;
use crate::pipeline;
use crate::privacy;
use crate::state::App;

/// Handles a tracking request from `peer`. Generic over the body so that the whole path can be
/// driven without a socket (`benches/ingest.rs`); the server passes hyper's `Incoming`.
pub async fn handle<B>(app: &App, req: Request<B>, peer: IpAddr) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").as_bytes();
    // Only the query string is consulted for the image choice before the body is read.
    let image_requested = super::params::wants_image(query);

    // The visitor's own refusal comes first: nothing of the request is looked at further.
    if let Some(refusal) = privacy::refusal(&parts.headers, &app.config.privacy) {
        app.metrics.drop_for(refusal.as_str());
        return response::tracked(image_requested);
    }
    let arrival = privacy::arrive(peer, &parts.headers, &app.config.privacy, |full| {
        hit::full_ip_location(app, full)
    });
    let (ip, location) = match arrival {
        Ok(a) => a,
        Err(privacy::Excluded) => {
            app.metrics.drop_for("excluded_ip");
            return response::tracked(image_requested);
        }
    };

    let body = if parts.method == Method::POST {
        match Limited::new(body, app.config.limits.max_body_bytes)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return reject(
                    app,
                    "body_too_large",
                    Reject::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "request body is larger than {} bytes",
                            app.config.limits.max_body_bytes
                        ),
                    ),
                );
            }
            Err(_) => {
                return reject(
                    app,
                    "body_read",
                    Reject::bad_request("could not read request body"),
                );
            }
        }
    } else {
        Bytes::new()
    };

    let ctx = RequestContext {
        ip,
        user_agent: header_str(&parts.headers, USER_AGENT),
        accept_language: header_str(&parts.headers, ACCEPT_LANGUAGE),
        now: crate::time::now_unix(),
        authenticated: false,
        hints: ClientHints {
            ua: header_opt(&parts.headers, "sec-ch-ua"),
            platform: header_opt(&parts.headers, "sec-ch-ua-platform"),
            platform_version: header_opt(&parts.headers, "sec-ch-ua-platform-version"),
            mobile: header_opt(&parts.headers, "sec-ch-ua-mobile"),
            full_version_list: header_opt(&parts.headers, "sec-ch-ua-full-version-list"),
        },
        location,
    };
    let outcome = if bulk::is_bulk(&body) {
        track_bulk(app, &body, ctx)
    } else {
        track_one(app, query, &body, &ctx)
    };
    match outcome {
        Ok(image) => response::tracked(image || image_requested),
        Err((reason, r)) => reject(app, reason, r),
    }
}

fn reject(app: &App, reason: &'static str, r: Reject) -> Resp {
    app.metrics.reject_for(reason);
    response::rejected(&r)
}

type Outcome = Result<bool, (&'static str, Reject)>;

/// A single hit from the query string and (for POST) the form body.
fn track_one(app: &App, query: &[u8], body: &[u8], ctx: &RequestContext<'_>) -> Outcome {
    let mut params = Params::default();
    params
        .extend(query, &app.config.limits)
        .and_then(|()| params.extend(body, &app.config.limits))
        .map_err(|r| ("invalid", r))?;
    let image = params.wants_image();
    let events = match hit::build(&params, ctx, app).map_err(|r| ("invalid", r))? {
        Some((event, hit)) => pipeline::run(event, &hit, app)
            .map_err(|r| ("invalid", r))?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    enqueue(app, events)?;
    Ok(image)
}

/// A bulk request: every hit is validated before any is queued.
fn track_bulk(app: &App, body: &[u8], mut ctx: RequestContext<'_>) -> Outcome {
    let bulk =
        bulk::parse(body, app.config.limits.max_bulk_hits).map_err(|r| ("malformed_bulk", r))?;
    if let Some(token) = bulk.token_auth.as_deref() {
        if !app.token_matches(Some(token)) {
            return Err((
                "bad_token",
                Reject::new(StatusCode::FORBIDDEN, "`token_auth` is not valid"),
            ));
        }
        ctx.authenticated = true;
    }
    if !app.sink.has_room(bulk.requests.len()) {
        return Err(queue_full());
    }
    let mut events = Vec::with_capacity(bulk.requests.len());
    for (i, request) in bulk.requests.iter().enumerate() {
        let query = bulk::query_of(request).as_bytes();
        if query.len() > app.config.limits.max_uri_bytes {
            return Err((
                "invalid",
                Reject::bad_request("hit is longer than the URI limit").in_bulk(i),
            ));
        }
        let mut params = Params::default();
        params
            .extend(query, &app.config.limits)
            .map_err(|r| ("invalid", r.in_bulk(i)))?;
        if let Some((event, hit)) =
            hit::build(&params, &ctx, app).map_err(|r| ("invalid", r.in_bulk(i)))?
            && let Some(event) =
                pipeline::run(event, &hit, app).map_err(|r| ("invalid", r.in_bulk(i)))?
        {
            events.push(event);
        }
    }
    enqueue(app, events)?;
    Ok(false)
}

fn enqueue(app: &App, events: Vec<crate::event::Event>) -> Result<(), (&'static str, Reject)> {
    app.sink.enqueue(events).map_err(|_| queue_full())
}

fn queue_full() -> (&'static str, Reject) {
    (
        "queue_full",
        Reject::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "collector is overloaded; retry later",
        ),
    )
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
