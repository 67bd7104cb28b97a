//! The Matomo HTTP Tracking API parameters of one hit, borrowed from the request.
//!
//! Parsing only collects and bounds the values; what they mean is decided in `ingest::hit`.
//! Unknown parameters are ignored, as Matomo does; a repeated parameter keeps its last value
//! (so a POST body overrides the query string, again as Matomo does).

use std::borrow::Cow;

use super::reject::Reject;
use crate::config::Limits;

/// Every parameter tally reads. Values are percent-decoded.
#[derive(Debug, Default)]
pub struct Params<'a> {
    /// `idsite`
    pub idsite: Option<Cow<'a, str>>,
    /// `rec`
    pub rec: Option<Cow<'a, str>>,
    /// `url`
    pub url: Option<Cow<'a, str>>,
    /// `action_name`
    pub action_name: Option<Cow<'a, str>>,
    /// `urlref`
    pub urlref: Option<Cow<'a, str>>,
    /// `_id`: the tracker's visitor id cookie, used only inside the visitor hash.
    pub id: Option<Cow<'a, str>>,
    /// `_idvc`
    pub idvc: Option<Cow<'a, str>>,
    /// `_viewts`
    pub viewts: Option<Cow<'a, str>>,
    /// `res`
    pub res: Option<Cow<'a, str>>,
    /// `h`
    pub h: Option<Cow<'a, str>>,
    /// `m`
    pub m: Option<Cow<'a, str>>,
    /// `s`
    pub s: Option<Cow<'a, str>>,
    /// `pv_id`
    pub pv_id: Option<Cow<'a, str>>,
    /// `link`
    pub link: Option<Cow<'a, str>>,
    /// `download`
    pub download: Option<Cow<'a, str>>,
    /// `search`
    pub search: Option<Cow<'a, str>>,
    /// `search_cat`
    pub search_cat: Option<Cow<'a, str>>,
    /// `search_count`
    pub search_count: Option<Cow<'a, str>>,
    /// `e_c`
    pub e_c: Option<Cow<'a, str>>,
    /// `e_a`
    pub e_a: Option<Cow<'a, str>>,
    /// `e_n`
    pub e_n: Option<Cow<'a, str>>,
    /// `e_v`
    pub e_v: Option<Cow<'a, str>>,
    /// `ping`
    pub ping: Option<Cow<'a, str>>,
    /// `new_visit`
    pub new_visit: Option<Cow<'a, str>>,
    /// `bots`
    pub bots: Option<Cow<'a, str>>,
    /// `send_image`
    pub send_image: Option<Cow<'a, str>>,
    /// `ua`
    pub ua: Option<Cow<'a, str>>,
    /// `lang`
    pub lang: Option<Cow<'a, str>>,
    /// `token_auth`
    pub token_auth: Option<Cow<'a, str>>,
    /// `cip` (only with a valid token)
    pub cip: Option<Cow<'a, str>>,
    /// `cdt` (only with a valid token)
    pub cdt: Option<Cow<'a, str>>,
    /// `country` (only with a valid token)
    pub country: Option<Cow<'a, str>>,
    /// `region` (only with a valid token)
    pub region: Option<Cow<'a, str>>,
    /// `city` (only with a valid token)
    pub city: Option<Cow<'a, str>>,
}

impl<'a> Params<'a> {
    /// Adds the pairs of a query string or form body, bounding each value.
    pub fn extend(&mut self, input: &'a [u8], limits: &Limits) -> Result<(), Reject> {
        // form_urlencoded decodes lossily (invalid UTF-8 becomes U+FFFD); check first so that
        // such input is refused instead of silently altered.
        if percent_encoding::percent_decode(input)
            .decode_utf8()
            .is_err()
        {
            return Err(Reject::bad_request("parameters are not valid UTF-8"));
        }
        for (name, value) in form_urlencoded::parse(input) {
            let Some((slot, max)) = self.slot(&name, limits) else {
                continue;
            };
            if value.len() > max {
                return Err(Reject::bad_request(format!(
                    "parameter `{name}` is longer than {max} bytes"
                )));
            }
            *slot = Some(value);
        }
        Ok(())
    }

    /// Where a parameter goes and its length limit; `None` for parameters tally ignores.
    fn slot(&mut self, name: &str, l: &Limits) -> Option<(&mut Option<Cow<'a, str>>, usize)> {
        let url = l.max_url_bytes;
        let field = l.max_field_bytes;
        Some(match name {
            "idsite" => (&mut self.idsite, field),
            "rec" => (&mut self.rec, field),
            "url" => (&mut self.url, url),
            "action_name" => (&mut self.action_name, field),
            "urlref" => (&mut self.urlref, url),
            "_id" => (&mut self.id, field),
            "_idvc" => (&mut self.idvc, field),
            "_viewts" => (&mut self.viewts, field),
            "res" => (&mut self.res, field),
            "h" => (&mut self.h, field),
            "m" => (&mut self.m, field),
            "s" => (&mut self.s, field),
            "pv_id" => (&mut self.pv_id, field),
            "link" => (&mut self.link, url),
            "download" => (&mut self.download, url),
            "search" => (&mut self.search, field),
            "search_cat" => (&mut self.search_cat, field),
            "search_count" => (&mut self.search_count, field),
            "e_c" => (&mut self.e_c, field),
            "e_a" => (&mut self.e_a, field),
            "e_n" => (&mut self.e_n, field),
            "e_v" => (&mut self.e_v, field),
            "ping" => (&mut self.ping, field),
            "new_visit" => (&mut self.new_visit, field),
            "bots" => (&mut self.bots, field),
            "send_image" => (&mut self.send_image, field),
            "ua" => (&mut self.ua, field),
            "lang" => (&mut self.lang, field),
            "token_auth" => (&mut self.token_auth, field),
            "cip" => (&mut self.cip, field),
            "cdt" => (&mut self.cdt, field),
            "country" => (&mut self.country, field),
            "region" => (&mut self.region, field),
            "city" => (&mut self.city, field),
            _ => return None,
        })
    }

    /// `send_image=1`: the client wants a GIF back.
    pub fn wants_image(&self) -> bool {
        flag(&self.send_image)
    }
}

/// A parameter set to `1`.
pub fn flag(v: &Option<Cow<'_, str>>) -> bool {
    v.as_deref() == Some("1")
}

/// A value that is present and not empty (trackers send `x=` for "not set").
pub fn present<'b>(v: &'b Option<Cow<'_, str>>) -> Option<&'b str> {
    v.as_deref().filter(|s| !s.is_empty())
}
