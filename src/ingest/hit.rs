//! From Matomo parameters to an anonymised [`Event`] and the transient [`Hit`] the pipeline
//! reads: what kind of request it is, what each parameter means, which ones need `token_auth`.
//!
//! Like Matomo, only a missing `rec`/`idsite`, an unknown site, a missing page URL and a
//! back-dated time beyond what the sender may write refuse a hit. Every other malformed value
//! is dropped (or clamped) and the hit kept: one sloppy field must not cost a visit.

use std::borrow::Cow;

use super::params::{Params, flag, present};
use super::reject::Reject;
use crate::enrich::uadata::{self, UaData};
use crate::enrich::{ClientHints, Location};
use crate::event::{Event, Kind, VisitorType};
use crate::pipeline::Hit;
use crate::privacy::{self, FullIp, TruncatedIp};
use crate::state::App;

/// What the request as a whole contributes to each of its hits.
pub struct RequestContext<'a> {
    /// The request's client address, truncated on arrival.
    pub ip: TruncatedIp,
    /// `User-Agent` header.
    pub user_agent: &'a str,
    /// `Accept-Language` header.
    pub accept_language: &'a str,
    /// `Referer` header: the page, for hits that carry no `url` (Matomo's `<noscript>` image).
    pub referer: &'a str,
    /// Arrival time, Unix seconds.
    pub now: u32,
    /// A valid `token_auth` came with the request as a whole (bulk body).
    pub authenticated: bool,
    /// `Sec-CH-UA*` client hints.
    pub hints: ClientHints<'a>,
    /// `Sec-CH-UA-Model`, when the browser sent it.
    pub model_header: Option<&'a str>,
    /// Location of the full client address, looked up on arrival when `geo.use_full_ip` is on.
    pub location: Option<Location>,
}

/// How old a `cdt` may be without `token_auth`: trackers queue hits while offline, and
/// Matomo accepts them for a day.
const CDT_WITHOUT_TOKEN_SECS: u32 = 86_400;

/// Most ecommerce items read from one cart or order.
const MAX_ITEMS: usize = 100;

/// Builds the event of one hit. `Ok(None)`: the hit is dropped on purpose (counted).
pub fn build<'a>(
    p: &'a Params<'a>,
    ctx: &RequestContext<'a>,
    app: &'a App,
) -> Result<Option<(Event, Hit<'a>)>, Reject> {
    if p.rec.as_deref() != Some("1") {
        return Err(Reject::bad_request("`rec=1` is required"));
    }
    let site_id: u32 = present(&p.idsite)
        .ok_or_else(|| Reject::bad_request("`idsite` is required"))?
        .trim()
        .parse()
        .map_err(|_| Reject::bad_request("`idsite` must be a positive integer"))?;
    let site = app
        .config
        .site(site_id)
        .ok_or_else(|| Reject::bad_request(format!("unknown site {site_id}")))?;
    let url = present(&p.url)
        .or_else(|| Some(ctx.referer).filter(|r| !r.is_empty()))
        .ok_or_else(|| Reject::bad_request("`url` is required (or a `Referer` header)"))?;
    let page =
        url::Url::parse(url).map_err(|_| Reject::bad_request("`url` is not an absolute URL"))?;

    let authenticated = ctx.authenticated || app.token_matches(present(&p.token_auth));
    let ts = timestamp(p, ctx.now, authenticated, app.config.retention.raw_days)?;
    let Some(kind) = kind_of(p) else {
        // Matomo ignores a custom action (`ca=1`) it has no handler for; so does tally.
        app.metrics.drop_for("custom_action");
        return Ok(None);
    };
    let mut ip = ctx.ip;
    let mut location = ctx.location.clone();
    if authenticated && let Some(full) = present(&p.cip).and_then(privacy::parse_client_ip) {
        // Exactly the treatment of a socket address: exclusion list, then truncation.
        match privacy::anonymize(&full, &app.config.privacy) {
            Ok(t) => {
                ip = t;
                location = full_ip_location(app, &full);
            }
            Err(privacy::Excluded) => {
                app.metrics.drop_for("excluded_ip");
                return Ok(None);
            }
        }
    }

    let mut event = Event {
        ts,
        site_id,
        kind: kind as i8,
        url: url.to_string(),
        title: text(&p.action_name),
        referrer: text(&p.urlref),
        ip: ip.to_string(),
        pv_id: pv_id(&p.pv_id),
        new_visit: u8::from(flag(&p.new_visit)),
        visit_count: number(&p.idvc).unwrap_or(0),
        days_since_last_visit: days_since(&p.viewts, ts),
        visitor_type: visitor_type(p) as i8,
        resolution: resolution(&p.res),
        local_time: local_time(p),
        dimension_ids: p.dimensions.iter().map(|(id, _)| *id).collect(),
        dimension_values: p.dimensions.iter().map(|(_, v)| v.to_string()).collect(),
        ..Event::default()
    };
    kind_fields(&mut event, kind, p, ts);
    if authenticated {
        // Location given by a trusted server-side integration wins over the lookup.
        event.country = text(&p.country).to_ascii_uppercase();
        event.region = text(&p.region);
        event.city = text(&p.city);
    }
    let user_agent = present(&p.ua).unwrap_or(ctx.user_agent);
    let accept_language = present(&p.lang).unwrap_or(ctx.accept_language);
    event.lang = primary_language(accept_language);
    // Matomo prefers the JSON hints to the headers: they are what the tracker could read.
    let ua_data = present(&p.uadata).and_then(UaData::parse);
    event.device_model = match &ua_data {
        Some(u) if !u.model.is_empty() => u.model.clone(),
        _ => ctx
            .model_header
            .map(uadata::model_from_header)
            .unwrap_or_default(),
    };
    let hit = Hit {
        site,
        page,
        ip,
        user_agent: Cow::Borrowed(user_agent),
        accept_language: Cow::Borrowed(accept_language),
        client_id: client_id(&p.id),
        bots_param: flag(&p.bots),
        hints: ctx.hints,
        ua_data,
        location,
        order_id: if kind == Kind::EcommerceOrder {
            present(&p.ec_id)
        } else {
            None
        },
    };
    Ok(Some((event, hit)))
}

/// The location of a full address, when the operator chose full-address lookups; the address
/// is only read here, in memory, never kept.
pub fn full_ip_location(app: &App, full: &FullIp) -> Option<Location> {
    match &app.enrich.geo {
        Some(geo) if app.config.geo.use_full_ip => Some(full.locate(&**geo)),
        _ => None,
    }
}

/// Matomo's precedence (the request processors, then `Action::factory`): a heartbeat records
/// no action at all; an ecommerce request (`idgoal=0`) or a goal conversion (`idgoal` > 0)
/// replaces the action; otherwise download > outlink > event > content > site search; a
/// custom action (`ca=1`) that is none of these is ignored (`None`), anything else is a page
/// view.
pub fn kind_of(p: &Params<'_>) -> Option<Kind> {
    if flag(&p.ping) {
        return Some(Kind::Ping);
    }
    match present(&p.idgoal).and_then(|g| g.trim().parse::<i64>().ok()) {
        Some(0) if present(&p.ec_id).is_some() => return Some(Kind::EcommerceOrder),
        Some(0) => return Some(Kind::CartUpdate),
        Some(g) if g > 0 => return Some(Kind::Goal),
        _ => {}
    }
    Some(if present(&p.download).is_some() {
        Kind::Download
    } else if present(&p.link).is_some() {
        Kind::Outlink
    } else if present(&p.e_c).is_some() && present(&p.e_a).is_some() {
        Kind::Event
    } else if present(&p.c_n).is_some() {
        if present(&p.c_i).is_some() {
            Kind::ContentInteraction
        } else {
            Kind::ContentImpression
        }
    } else if present(&p.search).is_some() {
        Kind::Search
    } else if flag(&p.ca) {
        return None;
    } else {
        Kind::Pageview
    })
}

/// The fields that belong to the kind; parameters of other kinds sent along are not stored.
fn kind_fields(event: &mut Event, kind: Kind, p: &Params<'_>, ts: u32) {
    match kind {
        Kind::Outlink => event.target_url = text(&p.link),
        Kind::Download => event.target_url = text(&p.download),
        Kind::Event => {
            event.event_category = text(&p.e_c);
            event.event_action = text(&p.e_a);
            event.event_name = text(&p.e_n);
            event.event_value = float(&p.e_v);
        }
        Kind::Search => {
            event.search_keyword = text(&p.search);
            event.search_category = text(&p.search_cat);
            event.search_count = number(&p.search_count);
        }
        Kind::ContentImpression | Kind::ContentInteraction => {
            event.content_name = text(&p.c_n);
            event.content_piece = text(&p.c_p);
            event.content_target = text(&p.c_t);
            event.content_interaction = text(&p.c_i);
        }
        Kind::Goal => {
            event.goal_id = number(&p.idgoal).unwrap_or(0);
            event.revenue = float(&p.revenue);
            attribution(event, p, ts);
        }
        Kind::EcommerceOrder | Kind::CartUpdate => {
            event.revenue = float(&p.revenue);
            event.ec_subtotal = float(&p.ec_st);
            event.ec_tax = float(&p.ec_tx);
            event.ec_shipping = float(&p.ec_sh);
            event.ec_discount = float(&p.ec_dt);
            items(event, present(&p.ec_items).unwrap_or(""));
            if kind == Kind::EcommerceOrder {
                attribution(event, p, ts);
            }
        }
        Kind::Pageview => {
            // Matomo's PagePerformance: a timing outside 0..1 h is a measuring error.
            let [net, srv, tfr, dm1, dm2, onl] =
                p.pf.each_ref()
                    .map(|v| number::<u32>(v).filter(|ms| *ms <= 3_600_000));
            (event.pf_net, event.pf_srv, event.pf_tfr) = (net, srv, tfr);
            (event.pf_dm1, event.pf_dm2, event.pf_onl) = (dm1, dm2, onl);
        }
        Kind::Ping => {}
    }
}

/// Campaign attribution, kept only on conversions, where Matomo uses it: the first campaign
/// the tracker remembered, the referrer then, and how many days before.
fn attribution(event: &mut Event, p: &Params<'_>, ts: u32) {
    event.attribution_campaign = text(&p.rcn);
    event.attribution_keyword = text(&p.rck);
    event.attribution_referrer = text(&p.attribution_ref);
    event.attribution_days = days_since(&p.refts, ts);
}

/// `ec_items`: `[[sku, name, category, price, quantity], ...]`; category may be a list of up
/// to five. Entries that are not lists are skipped, as Matomo does.
fn items(event: &mut Event, json: &str) {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    for item in list.iter().filter_map(|i| i.as_array()).take(MAX_ITEMS) {
        let field = |i: usize| item.get(i).map(json_text).unwrap_or_default();
        let category = match item.get(2) {
            Some(serde_json::Value::Array(cats)) => cats
                .iter()
                .take(5)
                .map(json_text)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join("/"),
            _ => field(2),
        };
        event.item_skus.push(field(0));
        event.item_names.push(field(1));
        event.item_categories.push(category);
        event.item_prices.push(
            field(3)
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite())
                .unwrap_or(0.0),
        );
        event.item_quantities.push(
            field(4)
                .parse::<f64>()
                .ok()
                .filter(|q| q.is_finite() && *q >= 0.0)
                .map_or(1, |q| q.min(f64::from(u32::MAX)) as u32),
        );
    }
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.chars().take(255).collect(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// The hit's time: now, or `cdt` (minus `cdo`) when sent. As Matomo: a time in the future is
/// ignored; one more than a day old needs `token_auth`. Beyond Matomo: even with the token no
/// hit may be older than the raw-data window (`[retention] raw_days`), so back-dated data
/// cannot outlive the promise that raw events are gone after that many days.
fn timestamp(p: &Params<'_>, now: u32, authenticated: bool, raw_days: u32) -> Result<u32, Reject> {
    let cdt = present(&p.cdt).and_then(|s| crate::time::parse_cdt(s.trim()));
    let cdo = present(&p.cdo).and_then(|s| s.trim().parse::<i64>().ok());
    let t = match (cdt, cdo) {
        (None, None) => return Ok(now),
        (cdt, cdo) => {
            let base = i64::from(cdt.unwrap_or(now));
            // Saturating: `i64::MIN` has no absolute value (`abs` panics with overflow
            // checks); the largest offset makes a time before 1970, which falls back to now.
            base - cdo.map_or(0, i64::saturating_abs)
        }
    };
    let Ok(t) = u32::try_from(t) else {
        return Ok(now);
    };
    if t > now {
        return Ok(now);
    }
    if now - t < CDT_WITHOUT_TOKEN_SECS {
        return Ok(t);
    }
    if !authenticated {
        return Err(Reject::bad_request(
            "`cdt` is more than 24 hours old; sending it needs `token_auth`",
        ));
    }
    if crate::time::day_of(t) < crate::prune::rules::raw_keep_from(raw_days, now) {
        return Err(Reject::bad_request(format!(
            "`cdt` lies before the {raw_days}-day raw-data window"
        )));
    }
    Ok(t)
}

/// New or returning, from what the tracker says: `_idn` (matomo.js 4+), else the visit count.
fn visitor_type(p: &Params<'_>) -> VisitorType {
    match present(&p.idn).map(str::trim) {
        Some("0") => return VisitorType::Returning,
        Some("1") => return VisitorType::New,
        _ => {}
    }
    match number::<u32>(&p.idvc) {
        Some(n) if n > 1 => VisitorType::Returning,
        Some(1) => VisitorType::New,
        _ => VisitorType::Unknown,
    }
}

fn text(v: &Option<Cow<'_, str>>) -> String {
    v.as_deref().unwrap_or("").to_string()
}

/// A whole number, or nothing when it is not one (`h=x`, `_idvc=-1`).
fn number<T: std::str::FromStr>(v: &Option<Cow<'_, str>>) -> Option<T> {
    present(v).and_then(|s| s.trim().parse().ok())
}

/// A finite number, or nothing (`e_v=4,5`, `NaN`).
fn float(v: &Option<Cow<'_, str>>) -> Option<f64> {
    present(v)
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite())
}

fn pv_id(v: &Option<Cow<'_, str>>) -> String {
    present(v)
        .filter(|s| s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or("")
        .to_string()
}

/// `_id`: 16 hexadecimal digits, else ignored (Matomo then uses its own id).
fn client_id(v: &Option<Cow<'_, str>>) -> Option<u64> {
    present(v)
        .filter(|s| s.len() == 16)
        .and_then(|s| u64::from_str_radix(s, 16).ok())
}

/// A Unix time (`_viewts`, `_refts`) as whole days before `now`; a future time is ignored.
fn days_since(v: &Option<Cow<'_, str>>, now: u32) -> Option<u16> {
    let prev = number::<u32>(v)?;
    (prev <= now).then(|| u16::try_from((now - prev) / 86_400).unwrap_or(u16::MAX))
}

fn resolution(v: &Option<Cow<'_, str>>) -> String {
    present(v)
        .filter(|s| {
            s.split_once('x')
                .is_some_and(|(w, h)| w.parse::<u16>().is_ok() && h.parse::<u16>().is_ok())
        })
        .unwrap_or("")
        .to_string()
}

fn local_time(p: &Params<'_>) -> String {
    let part = |v: &Option<Cow<'_, str>>, max: u8| match present(v) {
        None => Some(None),
        Some(s) => s.trim().parse::<u8>().ok().filter(|n| *n <= max).map(Some),
    };
    match (part(&p.h, 23), part(&p.m, 59), part(&p.s, 59)) {
        (Some(None), Some(None), Some(None)) => String::new(),
        (Some(h), Some(m), Some(s)) => format!(
            "{:02}:{:02}:{:02}",
            h.unwrap_or(0),
            m.unwrap_or(0),
            s.unwrap_or(0)
        ),
        // One part out of range: the local time is unknown rather than wrong.
        _ => String::new(),
    }
}

/// The first language tag of an `Accept-Language` value, lower-case (`de-DE,de;q=0.9` → `de-de`).
pub(crate) fn primary_language(accept: &str) -> String {
    let tag = accept.split(',').next().unwrap_or("");
    let tag = tag.split(';').next().unwrap_or("").trim();
    if tag.len() <= 35 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        tag.to_ascii_lowercase()
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;

    fn params(q: &str) -> Params<'_> {
        let mut p = Params::default();
        p.extend(q.as_bytes(), &Limits::default());
        p
    }

    /// Parameter combinations and the kind Matomo's request processors and `Action::factory`
    /// give them.
    #[test]
    fn kinds_follow_matomo_precedence() {
        use Kind::*;
        let table: &[(&str, Option<Kind>)] = &[
            ("url=x", Some(Pageview)),
            ("action_name=Home", Some(Pageview)),
            ("ping=1", Some(Ping)),
            ("ping=1&search=a&idgoal=3&download=d", Some(Ping)),
            ("ping=0&search=a", Some(Search)),
            ("search=tally", Some(Search)),
            ("search=", Some(Pageview)),
            ("search=a&search_cat=docs&search_count=3", Some(Search)),
            ("e_c=video&e_a=play", Some(Event)),
            ("e_c=video", Some(Pageview)),
            ("e_a=play", Some(Pageview)),
            ("e_c=video&e_a=play&search=a", Some(Event)),
            ("e_c=video&e_a=play&ca=1", Some(Event)),
            ("link=https%3A%2F%2Fx.org", Some(Outlink)),
            ("link=https%3A%2F%2Fx.org&e_c=a&e_a=b", Some(Outlink)),
            ("download=https%3A%2F%2Fx.org%2Fa.pdf", Some(Download)),
            ("download=d&link=l", Some(Download)),
            ("c_n=Banner&c_p=img.png", Some(ContentImpression)),
            ("c_n=Banner&c_p=img.png&ca=1", Some(ContentImpression)),
            ("c_n=Banner&c_i=click&ca=1", Some(ContentInteraction)),
            ("c_n=Banner&search=x", Some(ContentImpression)),
            ("c_n=Banner&e_c=a&e_a=b", Some(Event)),
            ("c_p=img.png&c_i=click", Some(Pageview)),
            ("idgoal=3", Some(Goal)),
            ("idgoal=3&revenue=9.5&e_c=a&e_a=b", Some(Goal)),
            ("idgoal=0", Some(CartUpdate)),
            ("idgoal=0&ec_items=%5B%5D&revenue=20", Some(CartUpdate)),
            ("idgoal=0&ec_id=A1&revenue=20", Some(EcommerceOrder)),
            ("idgoal=-1", Some(Pageview)),
            ("idgoal=abc", Some(Pageview)),
            ("ec_id=A1", Some(Pageview)),
            ("ca=1", None),
            ("ca=1&url=x&action_name=y", None),
            ("ca=0", Some(Pageview)),
        ];
        for (q, want) in table {
            assert_eq!(kind_of(&params(q)), *want, "{q}");
        }
    }

    #[test]
    fn malformed_optional_fields_are_dropped() {
        assert_eq!(resolution(&params("res=1280x720").res), "1280x720");
        assert_eq!(resolution(&params("res=big").res), "");
        assert_eq!(local_time(&params("h=9&m=5&s=7")), "09:05:07");
        assert_eq!(local_time(&params("h=24&m=0&s=0")), "");
        assert_eq!(local_time(&params("h=x")), "");
        assert_eq!(local_time(&params("")), "");
        assert_eq!(pv_id(&params("pv_id=aB3xYz").pv_id), "aB3xYz");
        assert_eq!(pv_id(&params("pv_id=a%20b").pv_id), "");
        assert_eq!(
            client_id(&params("_id=0123456789abcdef").id),
            Some(0x0123456789abcdef)
        );
        assert_eq!(client_id(&params("_id=xyz").id), None);
        assert_eq!(client_id(&params("_id=0123456789abcdeg").id), None);
        assert_eq!(
            days_since(&params("_viewts=1000").viewts, 1000 + 3 * 86_400 + 5),
            Some(3)
        );
        assert_eq!(days_since(&params("_viewts=5000").viewts, 1000), None);
        assert_eq!(days_since(&params("_viewts=x").viewts, 1000), None);
        assert_eq!(float(&params("e_v=NaN").e_v), None);
        assert_eq!(float(&params("e_v=4,5").e_v), None);
        assert_eq!(float(&params("e_v=2.5").e_v), Some(2.5));
        assert_eq!(number::<u32>(&params("_idvc=-1").idvc), None);
        assert_eq!(primary_language("de-DE,de;q=0.9,en;q=0.8"), "de-de");
        assert_eq!(primary_language("<script>"), "");
    }

    #[test]
    fn new_or_returning_from_the_tracker() {
        let t = |q| visitor_type(&params(q));
        assert_eq!(t("_idn=1"), VisitorType::New);
        assert_eq!(t("_idn=0"), VisitorType::Returning);
        // matomo.js 5 sends `_idn` with the visit count gone; `_idn` wins when both are sent.
        assert_eq!(t("_idn=1&_idvc=4"), VisitorType::New);
        assert_eq!(t("_idvc=1&_viewts="), VisitorType::New);
        assert_eq!(t("_idvc=3&_viewts=1700000000"), VisitorType::Returning);
        assert_eq!(t("_idvc=x"), VisitorType::Unknown);
        assert_eq!(t(""), VisitorType::Unknown);
    }

    #[test]
    fn back_dated_hits() {
        let now = 1_795_514_400; // 2026-11-24 10:00 UTC
        let ts = |q: &str, auth| timestamp(&params(q), now, auth, 7);
        assert_eq!(ts("", false), Ok(now));
        assert_eq!(ts(&format!("cdt={}", now - 3600), false), Ok(now - 3600));
        assert_eq!(ts("cdt=2026-11-24+09:00:00", false), Ok(now - 3600));
        assert_eq!(ts("cdo=60", false), Ok(now - 60));
        assert_eq!(
            ts(&format!("cdt={}&cdo=-60", now - 60), false),
            Ok(now - 120)
        );
        // The future is not a time a hit can have: now instead, as Matomo.
        assert_eq!(ts(&format!("cdt={}", now + 3600), false), Ok(now));
        // Garbage is ignored.
        assert_eq!(ts("cdt=yesterday", false), Ok(now));
        // Offsets beyond any time: now (the smallest `i64` made `abs` panic).
        assert_eq!(ts("cdo=-9223372036854775808", false), Ok(now));
        assert_eq!(ts("cdo=9223372036854775807", false), Ok(now));
        assert_eq!(
            ts(&format!("cdt={now}&cdo=-9223372036854775808"), true),
            Ok(now)
        );
        // Older than a day: only with the token.
        let two_days = format!("cdt={}", now - 2 * 86_400);
        assert!(ts(&two_days, false).is_err());
        assert_eq!(ts(&two_days, true), Ok(now - 2 * 86_400));
        // With the token, as far back as the first day the pruner still keeps.
        let start_of_today = now - now % 86_400;
        let oldest = start_of_today - 6 * 86_400;
        assert_eq!(ts(&format!("cdt={oldest}"), true), Ok(oldest));
        let err = ts(&format!("cdt={}", oldest - 1), true).unwrap_err();
        assert!(err.message.contains("7-day"), "{}", err.message);
        // A shorter configured window is the limit.
        let three = |q: &str| timestamp(&params(q), now, true, 3);
        let oldest = start_of_today - 2 * 86_400;
        assert_eq!(three(&format!("cdt={oldest}")), Ok(oldest));
        let err = three(&format!("cdt={}", oldest - 1)).unwrap_err();
        assert!(err.message.contains("3-day"), "{}", err.message);
    }

    #[test]
    fn ecommerce_items() {
        let mut e = Event::default();
        items(
            &mut e,
            r#"[["SKU1","Mug",["Kitchen","Cups"],"9.5",2],["SKU2","Pen","Office",1.25,"x"],"junk",["SKU3"]]"#,
        );
        assert_eq!(e.item_skus, ["SKU1", "SKU2", "SKU3"]);
        assert_eq!(e.item_names, ["Mug", "Pen", ""]);
        assert_eq!(e.item_categories, ["Kitchen/Cups", "Office", ""]);
        assert_eq!(e.item_prices, [9.5, 1.25, 0.0]);
        assert_eq!(e.item_quantities, [2, 1, 1]);
        let mut e = Event::default();
        items(&mut e, "not json");
        assert!(e.item_skus.is_empty());
    }

    #[test]
    fn fields_belong_to_their_kind() {
        let p = params("e_c=a&e_a=b&search=s&c_n=n&pf_net=20&pf_srv=9999999&revenue=5");
        let mut e = Event::default();
        kind_fields(&mut e, kind_of(&p).unwrap(), &p, 0);
        assert_eq!(
            (e.event_category.as_str(), e.search_keyword.as_str()),
            ("a", "")
        );
        assert_eq!(
            (e.content_name.as_str(), e.revenue, e.pf_net),
            ("", None, None)
        );
        let p = params("url=x&pf_net=20&pf_srv=9999999&pf_onl=-3");
        let mut e = Event::default();
        kind_fields(&mut e, Kind::Pageview, &p, 0);
        assert_eq!((e.pf_net, e.pf_srv, e.pf_onl), (Some(20), None, None));
        let p = params(
            "idgoal=4&revenue=12.5&_rcn=spring&_rck=shoes&_ref=https%3A%2F%2Fa.org%2F&_refts=1000",
        );
        let mut e = Event::default();
        kind_fields(&mut e, Kind::Goal, &p, 1000 + 2 * 86_400);
        assert_eq!((e.goal_id, e.revenue), (4, Some(12.5)));
        assert_eq!(e.attribution_campaign, "spring");
        assert_eq!(e.attribution_days, Some(2));
        // Attribution is not kept on page views.
        let mut e = Event::default();
        kind_fields(&mut e, Kind::Pageview, &p, 0);
        assert_eq!(e.attribution_campaign, "");
    }
}
