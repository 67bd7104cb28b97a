//! The ingestion pipeline: one ordered list of small named steps over an anonymised event.
//!
//! Each step may fill fields, refuse the whole request (`Reject`, a 4xx for the client) or drop
//! the hit on purpose (`Drop`, counted by reason, the client still gets its 204). A new step is
//! one function and one line in [`STEPS`].

use std::borrow::Cow;

use crate::app::App;
use crate::config::SiteConfig;
use crate::enrich::visitor::VisitorInput;
use crate::event::Event;
use crate::ingest::reject::Reject;
use crate::privacy::TruncatedIp;

/// What the hit said that steps may use but that is never stored as such.
pub struct Hit<'a> {
    /// The site the hit is for.
    pub site: &'a SiteConfig,
    /// Truncated client address.
    pub ip: TruncatedIp,
    /// User agent (header, or `ua` parameter).
    pub user_agent: Cow<'a, str>,
    /// `Accept-Language` (header, or `lang` parameter).
    pub accept_language: Cow<'a, str>,
    /// The tracker's visitor id cookie, when sent.
    pub client_id: Option<u64>,
    /// `bots=1`: the sender says this is a bot's request.
    pub bots_param: bool,
}

/// Why a step stopped a hit.
#[derive(Debug)]
pub enum Stop {
    /// Refuse the request with this error.
    Reject(Reject),
    /// Drop this hit quietly, counting it under this reason.
    Drop(&'static str),
}

/// A pipeline step.
pub type Step = fn(&mut Event, &Hit<'_>, &App) -> Result<(), Stop>;

/// The steps, in order.
pub const STEPS: &[(&str, Step)] = &[("page_domain", page_domain), ("visitor_key", visitor_key)];

/// Runs every step; `Ok(None)` when a step dropped the hit.
pub fn run(mut event: Event, hit: &Hit<'_>, app: &App) -> Result<Option<Event>, Reject> {
    for (_name, step) in STEPS {
        match step(&mut event, hit, app) {
            Ok(()) => {}
            Err(Stop::Drop(reason)) => {
                app.metrics.drop_for(reason);
                return Ok(None);
            }
            Err(Stop::Reject(r)) => return Err(r),
        }
    }
    Ok(Some(event))
}

/// The page must be on one of the site's domains: nobody else may write into its statistics.
fn page_domain(event: &mut Event, hit: &Hit<'_>, _app: &App) -> Result<(), Stop> {
    let url = url::Url::parse(&event.url)
        .map_err(|_| Stop::Reject(Reject::bad_request("`url` is not an absolute URL")))?;
    let host = url.host_str().unwrap_or("");
    if !hit.site.allows_host(host) {
        return Err(Stop::Reject(Reject::bad_request(format!(
            "`url` host `{host}` is not a domain of site {}",
            hit.site.id
        ))));
    }
    Ok(())
}

/// The hashed visitor key.
fn visitor_key(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    event.visitor_key = app.visitors.key(&VisitorInput {
        site_id: hit.site.id,
        ip: hit.ip,
        user_agent: &hit.user_agent,
        accept_language: &hit.accept_language,
        client_id: hit.client_id,
    });
    Ok(())
}
