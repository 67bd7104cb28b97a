//! The ingestion pipeline: one ordered list of small named steps over an anonymised event.
//!
//! Each step may fill fields, refuse the whole request (`Reject`, a 4xx for the client) or drop
//! the hit on purpose (`Drop`, counted by reason, the client still gets its 204). A new step is
//! one function and one line in [`STEPS`].

use std::borrow::Cow;

use crate::config::SiteConfig;
use crate::enrich::visitor::{VisitorInput, key_with, order_key_with};
use crate::enrich::{Campaign, ClientHints, DeviceType, Location, UaData, clean_url, mask_emails};
use crate::event::Event;
use crate::event::Kind;
use crate::ingest::reject::Reject;
use crate::privacy::TruncatedIp;
use crate::state::App;

/// What the hit said that steps may use but that is never stored as such.
pub struct Hit<'a> {
    /// The site the hit is for.
    pub site: &'a SiteConfig,
    /// The page URL as sent, parsed once for every step that needs its parts.
    pub page: url::Url,
    /// Truncated client address.
    pub ip: TruncatedIp,
    /// User agent (header, or `ua` parameter).
    pub user_agent: Cow<'a, str>,
    /// `Accept-Language` (header, or `lang` parameter).
    pub accept_language: Cow<'a, str>,
    /// The tracker's visitor id cookie, when sent.
    pub client_id: Option<u64>,
    /// `bots=1`: record this hit even if it looks like a bot's (Matomo's meaning; the log
    /// importer's `--enable-bots` sets it).
    pub bots_param: bool,
    /// `Sec-CH-UA*` client hints from the headers.
    pub hints: ClientHints<'a>,
    /// Client hints from `uadata`, which win over the headers when sent.
    pub ua_data: Option<UaData>,
    /// The shop's order id (`ec_id`) of an order, only ever stored as a keyed hash.
    pub order_id: Option<&'a str>,
    /// Location of the full address, looked up on arrival (only with `geo.use_full_ip`).
    pub location: Option<Location>,
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
pub const STEPS: &[(&str, Step)] = &[
    ("page_domain", page_domain),
    ("device", device),
    ("bots", bots),
    ("non_browser", non_browser),
    ("referrer_spam", referrer_spam),
    ("referrer", referrer),
    ("url_hygiene", url_hygiene),
    ("geo", geo),
    ("visitor_key", visitor_key),
];

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
fn page_domain(_event: &mut Event, hit: &Hit<'_>, _app: &App) -> Result<(), Stop> {
    let host = hit.page.host_str().unwrap_or("");
    if !hit.site.allows_host(host) {
        return Err(Stop::Reject(Reject::bad_request(format!(
            "`url` host `{host}` is not a domain of site {}",
            hit.site.id
        ))));
    }
    Ok(())
}

/// Browser, OS and device type from the user agent and client hints (cached per agent).
fn device(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    let hints = hit.ua_data.as_ref().map_or(hit.hints, UaData::hints);
    let d = app.enrich.devices.detect(&hit.user_agent, &hints);
    event.browser.clone_from(&d.browser);
    event.browser_version.clone_from(&d.browser_version);
    event.os.clone_from(&d.os);
    event.os_version.clone_from(&d.os_version);
    event.device = d.device_type.as_str().to_string();
    event.is_bot = u8::from(d.is_bot);
    Ok(())
}

/// Crawlers are dropped (and counted) unless the operator keeps them or the sender asked for
/// this hit to be recorded anyway (`bots=1`); kept ones stay flagged `is_bot`.
fn bots(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    if event.is_bot == 1 && !app.config.privacy.keep_bots && !hit.bots_param {
        return Err(Stop::Drop("bot"));
    }
    Ok(())
}

/// Server-side senders (HTTP libraries, no user agent at all) are stored, flagged by their
/// device type, unless the site only wants browsers.
fn non_browser(event: &mut Event, hit: &Hit<'_>, _app: &App) -> Result<(), Stop> {
    let device = event.device.as_str();
    if !hit.site.track_non_browsers
        && (device == DeviceType::Library.as_str() || device == DeviceType::Unknown.as_str())
    {
        return Err(Stop::Drop("non_browser"));
    }
    Ok(())
}

/// Referrer spam never reaches the statistics.
fn referrer_spam(event: &mut Event, _hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    if !event.referrer.is_empty() && app.enrich.spam.is_spam_url(&event.referrer) {
        return Err(Stop::Drop("referrer_spam"));
    }
    Ok(())
}

/// Channel (direct, website, search, social, campaign) with name and keyword, and the
/// campaign parameters of the page URL. Read before URL hygiene, which may remove the
/// parameters the classification needs; internal navigation leaves the channel empty.
fn referrer(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    if event.kind == Kind::Ping as i8 {
        return Ok(()); // a heartbeat repeats its page view's referrer
    }
    if let Some(r) = app
        .enrich
        .referrers
        .classify(&event.referrer, &hit.page, &hit.site.domains)
    {
        event.referrer_type = r.channel.as_str().to_string();
        event.referrer_name = r.name;
        event.referrer_keyword = r.keyword;
    }
    if let Some(c) = Campaign::from_url(&hit.page) {
        event.campaign_name = c.name;
        event.campaign_source = c.source;
        event.campaign_medium = c.medium;
        event.campaign_keyword = c.keyword;
        event.campaign_content = c.content;
    }
    Ok(())
}

/// No fragments, session ids, tokens or e-mail addresses in anything stored.
fn url_hygiene(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    let sensitive = app.enrich.sensitive_params(hit.site.id);
    for url in [
        &mut event.url,
        &mut event.referrer,
        &mut event.target_url,
        &mut event.content_target,
        &mut event.attribution_referrer,
    ] {
        if !url.is_empty() {
            *url = clean_url(url, sensitive);
        }
    }
    // Custom properties are free text a site's script fills (Plausible's `props`): a value
    // that is a URL (`props.url` of outbound links and downloads, a page path prop) gets the
    // URL treatment, every other value and every key the e-mail masking below.
    for value in &mut event.prop_values {
        let is_url = ["http://", "https://"].iter().any(|s| {
            value
                .get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        });
        *value = if is_url {
            clean_url(value, sensitive)
        } else {
            mask_emails(value).into_owned()
        };
    }
    for text in [
        &mut event.title,
        &mut event.search_keyword,
        &mut event.search_category,
        &mut event.event_category,
        &mut event.event_action,
        &mut event.event_name,
        &mut event.referrer_keyword,
        &mut event.referrer_name,
        &mut event.campaign_name,
        &mut event.campaign_keyword,
        &mut event.campaign_content,
        &mut event.content_name,
        &mut event.content_piece,
        &mut event.attribution_campaign,
        &mut event.attribution_keyword,
    ]
    .into_iter()
    .chain(event.dimension_values.iter_mut())
    .chain(event.item_names.iter_mut())
    .chain(event.prop_keys.iter_mut())
    {
        if let std::borrow::Cow::Owned(masked) = mask_emails(text) {
            *text = masked;
        }
    }
    Ok(())
}

/// Country, region and city: from a trusted integration's parameters if given, else from the
/// full-address lookup made on arrival (only with `geo.use_full_ip`), else from the truncated
/// address.
fn geo(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    if !event.country.is_empty() {
        return Ok(());
    }
    let location = match (&hit.location, &app.enrich.geo) {
        (Some(l), _) => l.clone(),
        (None, Some(db)) => db.lookup(hit.ip),
        (None, None) => return Ok(()),
    };
    event.country = location.country;
    event.region = location.region;
    event.city = location.city;
    Ok(())
}

/// The hashed visitor key, and the hashed order id of an order, under the secret of the local
/// date the hit's own time (`ts`, maybe a back-dated `cdt`) falls on in the site's zone.
fn visitor_key(event: &mut Event, hit: &Hit<'_>, app: &App) -> Result<(), Stop> {
    let input = VisitorInput {
        site_id: hit.site.id,
        ip: hit.ip,
        user_agent: &hit.user_agent,
        accept_language: &hit.accept_language,
        client_id: hit.client_id,
    };
    let (visitor, order) = app
        .visitors
        .with_secret(hit.site.id, event.ts, |secret| {
            (
                key_with(secret, &input),
                hit.order_id
                    .map(|order| order_key_with(secret, hit.site.id, order)),
            )
        })
        .map_err(|e| Stop::Drop(e.reason()))?;
    event.visitor_key = visitor;
    if let Some(order) = order {
        event.order_key = order;
    }
    Ok(())
}
