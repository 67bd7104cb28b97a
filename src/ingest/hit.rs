//! From Matomo parameters to an anonymised [`Event`] and the transient [`Hit`] the pipeline
//! reads: what each parameter means, and which ones need `token_auth`.

use std::borrow::Cow;
use std::net::IpAddr;

use super::params::{Params, flag, present};
use super::reject::Reject;
use crate::enrich::{ClientHints, Location};
use crate::event::{Event, Kind};
use crate::pipeline::Hit;
use crate::privacy::{self, TruncatedIp};
use crate::state::App;

/// What the request as a whole contributes to each of its hits.
pub struct RequestContext<'a> {
    /// The request's client address, truncated on arrival.
    pub ip: TruncatedIp,
    /// `User-Agent` header.
    pub user_agent: &'a str,
    /// `Accept-Language` header.
    pub accept_language: &'a str,
    /// Arrival time, Unix seconds.
    pub now: u32,
    /// A valid `token_auth` came with the request as a whole (bulk body).
    pub authenticated: bool,
    /// `Sec-CH-UA*` client hints.
    pub hints: ClientHints<'a>,
    /// Location of the full client address, looked up on arrival when `geo.use_full_ip` is on.
    pub location: Option<Location>,
}

/// How far back an authenticated `cdt` may go: raw events older than this are already due
/// for pruning.
const MAX_CDT_AGE_SECS: u32 = 7 * 86_400;

/// Builds the event of one hit. `Ok(None)`: the hit is dropped (its `cip` is excluded).
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
        .parse()
        .map_err(|_| Reject::bad_request("`idsite` must be a positive integer"))?;
    let site = app
        .config
        .site(site_id)
        .ok_or_else(|| Reject::bad_request(format!("unknown site {site_id}")))?;
    let url = present(&p.url).ok_or_else(|| Reject::bad_request("`url` is required"))?;
    let page =
        url::Url::parse(url).map_err(|_| Reject::bad_request("`url` is not an absolute URL"))?;

    let authenticated = ctx.authenticated || app.token_matches(present(&p.token_auth));
    let mut ip = ctx.ip;
    let mut location = ctx.location.clone();
    let mut ts = ctx.now;
    if authenticated {
        if let Some(cip) = present(&p.cip) {
            let full: IpAddr = cip
                .parse()
                .map_err(|_| Reject::bad_request("`cip` is not an IP address"))?;
            // Exactly the treatment of a socket address: exclusion list, then truncation.
            match privacy::anonymize(full, &app.config.privacy) {
                Ok(t) => {
                    ip = t;
                    location = full_ip_location(app, full);
                }
                Err(privacy::Excluded) => {
                    app.metrics.drop_for("excluded_ip");
                    return Ok(None);
                }
            }
        }
        if let Some(cdt) = present(&p.cdt) {
            let t = crate::time::parse_cdt(cdt)
                .ok_or_else(|| Reject::bad_request("`cdt` is not a Unix time or date-time"))?;
            if t > ctx.now.saturating_add(60) || t < ctx.now.saturating_sub(MAX_CDT_AGE_SECS) {
                return Err(Reject::bad_request(
                    "`cdt` must lie within the last 7 days and not in the future",
                ));
            }
            ts = t;
        }
    }

    let kind = kind_of(p);
    let mut event = Event {
        ts,
        site_id,
        kind: kind as i8,
        url: url.to_string(),
        title: text(&p.action_name),
        referrer: text(&p.urlref),
        target_url: match kind {
            Kind::Outlink => text(&p.link),
            Kind::Download => text(&p.download),
            _ => String::new(),
        },
        ip: ip.to_string(),
        pv_id: pv_id(&p.pv_id)?,
        new_visit: u8::from(flag(&p.new_visit)),
        visit_count: number(&p.idvc, "_idvc")?.unwrap_or(0),
        days_since_last_visit: days_since(&p.viewts, ctx.now)?,
        resolution: resolution(&p.res)?,
        local_time: local_time(p)?,
        event_category: text(&p.e_c),
        event_action: text(&p.e_a),
        event_name: text(&p.e_n),
        event_value: float(&p.e_v, "e_v")?,
        search_keyword: text(&p.search),
        search_category: text(&p.search_cat),
        search_count: number(&p.search_count, "search_count")?,
        ..Event::default()
    };
    if authenticated {
        // Location given by a trusted server-side integration wins over the lookup.
        event.country = text(&p.country).to_ascii_uppercase();
        event.region = text(&p.region);
        event.city = text(&p.city);
    }
    let user_agent = present(&p.ua).unwrap_or(ctx.user_agent);
    let accept_language = present(&p.lang).unwrap_or(ctx.accept_language);
    event.lang = primary_language(accept_language);
    let hit = Hit {
        site,
        page,
        ip,
        user_agent: Cow::Borrowed(user_agent),
        accept_language: Cow::Borrowed(accept_language),
        client_id: client_id(&p.id)?,
        bots_param: flag(&p.bots),
        hints: ctx.hints,
        location,
    };
    Ok(Some((event, hit)))
}

/// The location of a full address, when the operator chose full-address lookups; the address
/// is only read here, in memory, never kept.
pub fn full_ip_location(app: &App, full: IpAddr) -> Option<Location> {
    match &app.enrich.geo {
        Some(geo) if app.config.geo.use_full_ip => Some(geo.lookup(full)),
        _ => None,
    }
}

/// Matomo's precedence: a heartbeat, a site search, an event, an outlink, a download, else a
/// page view.
fn kind_of(p: &Params<'_>) -> Kind {
    if flag(&p.ping) {
        Kind::Ping
    } else if present(&p.search).is_some() {
        Kind::Search
    } else if present(&p.e_c).is_some() && present(&p.e_a).is_some() {
        Kind::Event
    } else if present(&p.link).is_some() {
        Kind::Outlink
    } else if present(&p.download).is_some() {
        Kind::Download
    } else {
        Kind::Pageview
    }
}

fn text(v: &Option<Cow<'_, str>>) -> String {
    v.as_deref().unwrap_or("").to_string()
}

fn number<T: std::str::FromStr>(v: &Option<Cow<'_, str>>, name: &str) -> Result<Option<T>, Reject> {
    present(v)
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| Reject::bad_request(format!("`{name}` must be a whole number")))
        })
        .transpose()
}

fn float(v: &Option<Cow<'_, str>>, name: &str) -> Result<Option<f64>, Reject> {
    match present(v).map(|s| s.trim().parse::<f64>()) {
        None => Ok(None),
        Some(Ok(f)) if f.is_finite() => Ok(Some(f)),
        Some(_) => Err(Reject::bad_request(format!("`{name}` must be a number"))),
    }
}

fn pv_id(v: &Option<Cow<'_, str>>) -> Result<String, Reject> {
    match present(v) {
        None => Ok(String::new()),
        Some(s) if s.len() <= 32 && s.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(s.to_string())
        }
        Some(_) => Err(Reject::bad_request(
            "`pv_id` must be 1 to 32 letters or digits",
        )),
    }
}

/// `_id`: 16 hexadecimal digits.
fn client_id(v: &Option<Cow<'_, str>>) -> Result<Option<u64>, Reject> {
    match present(v) {
        None => Ok(None),
        Some(s) if s.len() == 16 => u64::from_str_radix(s, 16)
            .map(Some)
            .map_err(|_| Reject::bad_request("`_id` must be 16 hexadecimal digits")),
        Some(_) => Err(Reject::bad_request("`_id` must be 16 hexadecimal digits")),
    }
}

/// `_viewts` (the browser's previous visit) as whole days before now; a future time is ignored.
fn days_since(v: &Option<Cow<'_, str>>, now: u32) -> Result<Option<u16>, Reject> {
    let Some(prev) = number::<u32>(v, "_viewts")? else {
        return Ok(None);
    };
    Ok((prev <= now).then(|| u16::try_from((now - prev) / 86_400).unwrap_or(u16::MAX)))
}

fn resolution(v: &Option<Cow<'_, str>>) -> Result<String, Reject> {
    let Some(s) = present(v) else {
        return Ok(String::new());
    };
    let ok = s
        .split_once('x')
        .is_some_and(|(w, h)| w.parse::<u16>().is_ok() && h.parse::<u16>().is_ok());
    if ok {
        Ok(s.to_string())
    } else {
        Err(Reject::bad_request("`res` must be WIDTHxHEIGHT"))
    }
}

fn local_time(p: &Params<'_>) -> Result<String, Reject> {
    let h = number::<u8>(&p.h, "h")?;
    let m = number::<u8>(&p.m, "m")?;
    let s = number::<u8>(&p.s, "s")?;
    match (h, m, s) {
        (None, None, None) => Ok(String::new()),
        (h, m, s) => {
            let (h, m, s) = (h.unwrap_or(0), m.unwrap_or(0), s.unwrap_or(0));
            if h > 23 || m > 59 || s > 59 {
                return Err(Reject::bad_request("`h`, `m`, `s` must form a time of day"));
            }
            Ok(format!("{h:02}:{m:02}:{s:02}"))
        }
    }
}

/// The first language tag of an `Accept-Language` value, lower-case (`de-DE,de;q=0.9` → `de-de`).
fn primary_language(accept: &str) -> String {
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
        p.extend(q.as_bytes(), &Limits::default()).unwrap();
        p
    }

    #[test]
    fn kinds() {
        let k = |q| kind_of(&params(q));
        assert_eq!(k("url=x"), Kind::Pageview);
        assert_eq!(k("ping=1&search=a"), Kind::Ping);
        assert_eq!(k("search=tally"), Kind::Search);
        assert_eq!(k("e_c=video&e_a=play"), Kind::Event);
        assert_eq!(k("e_c=video"), Kind::Pageview);
        assert_eq!(k("link=https%3A%2F%2Fx.org"), Kind::Outlink);
        assert_eq!(k("download=https%3A%2F%2Fx.org%2Fa.pdf"), Kind::Download);
        assert_eq!(k("search="), Kind::Pageview);
    }

    #[test]
    fn field_parsers() {
        assert_eq!(resolution(&params("res=1280x720").res).unwrap(), "1280x720");
        assert!(resolution(&params("res=big").res).is_err());
        assert_eq!(local_time(&params("h=9&m=5&s=7")).unwrap(), "09:05:07");
        assert!(local_time(&params("h=24&m=0&s=0")).is_err());
        assert_eq!(local_time(&params("")).unwrap(), "");
        assert_eq!(pv_id(&params("pv_id=aB3xYz").pv_id).unwrap(), "aB3xYz");
        assert!(pv_id(&params("pv_id=a%20b").pv_id).is_err());
        assert_eq!(
            client_id(&params("_id=0123456789abcdef").id).unwrap(),
            Some(0x0123456789abcdef)
        );
        assert!(client_id(&params("_id=xyz").id).is_err());
        assert_eq!(
            days_since(&params("_viewts=1000").viewts, 1000 + 3 * 86_400 + 5).unwrap(),
            Some(3)
        );
        assert_eq!(
            days_since(&params("_viewts=5000").viewts, 1000).unwrap(),
            None
        );
        assert!(float(&params("e_v=NaN").e_v, "e_v").is_err());
        assert_eq!(float(&params("e_v=2.5").e_v, "e_v").unwrap(), Some(2.5));
        assert_eq!(primary_language("de-DE,de;q=0.9,en;q=0.8"), "de-de");
        assert_eq!(primary_language("<script>"), "");
    }

    #[test]
    fn limits_and_utf8() {
        let limits = Limits {
            max_field_bytes: 8,
            max_url_bytes: 16,
            ..Limits::default()
        };
        let mut p = Params::default();
        let err = p.extend(b"action_name=123456789", &limits).unwrap_err();
        assert!(err.message.contains("action_name"), "{}", err.message);
        let mut p = Params::default();
        assert!(p.extend(b"url=https://a.org/12", &limits).is_ok());
        let mut p = Params::default();
        assert!(p.extend(b"url=https://a.org/123456789", &limits).is_err());
        let mut p = Params::default();
        let err = p
            .extend(b"action_name=%FF%FE", &Limits::default())
            .unwrap_err();
        assert!(err.message.contains("UTF-8"));
        // Unknown parameters are ignored, whatever their size.
        let mut p = Params::default();
        assert!(
            p.extend(format!("zzz={}", "a".repeat(5000)).as_bytes(), &limits)
                .is_ok()
        );
    }
}
