//! The Matomo HTTP Tracking API parameters of one hit, borrowed from the request.
//!
//! Parsing only collects and bounds the values; what they mean is decided in `ingest::hit`.
//! Unknown parameters are ignored, as Matomo does, and never decoded; a repeated parameter keeps
//! its last value (so a POST body overrides the query string, again as Matomo does). Like
//! Matomo, parsing never refuses a hit for its values: a value that is not UTF-8 is decoded
//! with replacement characters and a value longer than its limit is cut at the limit, so that
//! one sloppy field does not cost the whole hit.

use std::borrow::Cow;

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
    /// `cdo`: seconds to subtract from `cdt` (or from now)
    pub cdo: Option<Cow<'a, str>>,
    /// `ca`: a custom action, never a page view
    pub ca: Option<Cow<'a, str>>,
    /// `_idn`: matomo.js's "visitor id cookie was just created"
    pub idn: Option<Cow<'a, str>>,
    /// `uadata`: client hints as JSON
    pub uadata: Option<Cow<'a, str>>,
    /// `c_n`
    pub c_n: Option<Cow<'a, str>>,
    /// `c_p`
    pub c_p: Option<Cow<'a, str>>,
    /// `c_t`
    pub c_t: Option<Cow<'a, str>>,
    /// `c_i`
    pub c_i: Option<Cow<'a, str>>,
    /// `idgoal`
    pub idgoal: Option<Cow<'a, str>>,
    /// `revenue`
    pub revenue: Option<Cow<'a, str>>,
    /// `ec_id`
    pub ec_id: Option<Cow<'a, str>>,
    /// `ec_items`
    pub ec_items: Option<Cow<'a, str>>,
    /// `ec_st`
    pub ec_st: Option<Cow<'a, str>>,
    /// `ec_tx`
    pub ec_tx: Option<Cow<'a, str>>,
    /// `ec_sh`
    pub ec_sh: Option<Cow<'a, str>>,
    /// `ec_dt`
    pub ec_dt: Option<Cow<'a, str>>,
    /// `pf_net`, `pf_srv`, `pf_tfr`, `pf_dm1`, `pf_dm2`, `pf_onl`, in that order
    pub pf: [Option<Cow<'a, str>>; 6],
    /// `_rcn`
    pub rcn: Option<Cow<'a, str>>,
    /// `_rck`
    pub rck: Option<Cow<'a, str>>,
    /// `_ref`
    pub attribution_ref: Option<Cow<'a, str>>,
    /// `_refts`
    pub refts: Option<Cow<'a, str>>,
    /// `dimensionN=value`, in the order sent, at most [`MAX_DIMENSIONS`]
    pub dimensions: Vec<(u16, Cow<'a, str>)>,
}

/// Custom dimensions kept per hit; Matomo allows far fewer per site by default (15).
pub const MAX_DIMENSIONS: usize = 50;

impl<'a> Params<'a> {
    /// Adds the pairs of a query string or form body, bounding each value.
    pub fn extend(&mut self, input: &'a [u8], limits: &Limits) {
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            // Names are ASCII; one that does not decode is nothing tally reads.
            let Some(name) = decode(name) else { continue };
            self.set_with(&name, limits, || decode_lossy(value));
        }
    }

    /// Sets one parameter from an already decoded value (a JSON bulk entry), bounded like the
    /// others.
    pub fn set(&mut self, name: &str, value: Cow<'a, str>, limits: &Limits) {
        self.set_with(name, limits, || value);
    }

    /// Stores the value of `name` if tally reads it; the value is only produced then.
    fn set_with(&mut self, name: &str, limits: &Limits, value: impl FnOnce() -> Cow<'a, str>) {
        if let Some(n) = name.strip_prefix("dimension") {
            if let Ok(id) = n.parse::<u16>()
                && id > 0
                && self.dimensions.len() < MAX_DIMENSIONS
            {
                let v = bounded(value(), limits.max_field_bytes);
                match self.dimensions.iter_mut().find(|(i, _)| *i == id) {
                    Some(slot) => slot.1 = v,
                    None => self.dimensions.push((id, v)),
                }
            }
            return;
        }
        if let Some((slot, max)) = self.slot(name, limits) {
            *slot = Some(bounded(value(), max));
        }
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
            "cdo" => (&mut self.cdo, field),
            "ca" => (&mut self.ca, field),
            "_idn" => (&mut self.idn, field),
            "uadata" => (&mut self.uadata, l.max_url_bytes),
            "c_n" => (&mut self.c_n, field),
            "c_p" => (&mut self.c_p, field),
            "c_t" => (&mut self.c_t, url),
            "c_i" => (&mut self.c_i, field),
            "idgoal" => (&mut self.idgoal, field),
            "revenue" => (&mut self.revenue, field),
            "ec_id" => (&mut self.ec_id, field),
            // A cart of many items is long; the request size limits bound it as a whole.
            "ec_items" => (&mut self.ec_items, l.max_uri_bytes),
            "ec_st" => (&mut self.ec_st, field),
            "ec_tx" => (&mut self.ec_tx, field),
            "ec_sh" => (&mut self.ec_sh, field),
            "ec_dt" => (&mut self.ec_dt, field),
            "pf_net" => (&mut self.pf[0], field),
            "pf_srv" => (&mut self.pf[1], field),
            "pf_tfr" => (&mut self.pf[2], field),
            "pf_dm1" => (&mut self.pf[3], field),
            "pf_dm2" => (&mut self.pf[4], field),
            "pf_onl" => (&mut self.pf[5], field),
            "_rcn" => (&mut self.rcn, field),
            "_rck" => (&mut self.rck, field),
            "_ref" => (&mut self.attribution_ref, url),
            "_refts" => (&mut self.refts, field),
            _ => return None,
        })
    }

    /// The answer the client asked for: Matomo's 1×1 GIF unless `send_image=0`.
    pub fn wants_image(&self) -> bool {
        self.send_image.as_deref() != Some("0")
    }
}

/// One form-encoded name or value: `+` is a space, `%XX` a byte; `None` unless the bytes are
/// UTF-8. Borrowed unless something had to be decoded.
fn decode(raw: &[u8]) -> Option<Cow<'_, str>> {
    if !raw.contains(&b'+') {
        return percent_encoding::percent_decode(raw).decode_utf8().ok();
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = if spaced.contains(&b'%') {
        percent_encoding::percent_decode(&spaced).collect()
    } else {
        spaced
    };
    String::from_utf8(decoded).ok().map(Cow::Owned)
}

/// A form-encoded value, with replacement characters for bytes that are not UTF-8 (as Matomo
/// keeps such values rather than refusing the hit).
fn decode_lossy(raw: &[u8]) -> Cow<'_, str> {
    if let Some(v) = decode(raw) {
        return v;
    }
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    Cow::Owned(String::from_utf8_lossy(&bytes).into_owned())
}

/// `value` cut to at most `max` bytes, at a character boundary.
fn bounded(value: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..end]),
        Cow::Owned(mut s) => {
            s.truncate(end);
            Cow::Owned(s)
        }
    }
}

/// Whether the form-encoded inputs (query string, then body) say `send_image=0`, without
/// decoding any other parameter: then the answer is `204`, otherwise Matomo's GIF. The last
/// `send_image` counts, as in [`Params::extend`].
pub fn declines_image(inputs: &[&[u8]]) -> bool {
    // Neither `send_image` nor `0` contains `+` or a space, so plain percent-decoding compares
    // exactly as form decoding would.
    let is = |raw: &[u8], expected: &[u8]| {
        percent_encoding::percent_decode(raw).eq(expected.iter().copied())
    };
    inputs
        .iter()
        .flat_map(|input| input.split(|&b| b == b'&'))
        .filter_map(|pair| {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            is(name, b"send_image").then_some(value)
        })
        .next_back()
        .is_some_and(|value| is(value, b"0"))
}

/// A parameter set to `1`.
pub fn flag(v: &Option<Cow<'_, str>>) -> bool {
    v.as_deref() == Some("1")
}

/// A value that is present and not empty (trackers send `x=` for "not set").
pub fn present<'b>(v: &'b Option<Cow<'_, str>>) -> Option<&'b str> {
    v.as_deref().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_matches_form_urlencoded_on_valid_input() {
        let inputs: &[&[u8]] = &[
            b"action_name=Hello+World%21&url=https%3A%2F%2Fexample.org%2F%3Fa%3D1%2B2&urlref=",
            b"&&idsite=1&&rec&=x&e_c=%C3%BCber+%E2%82%AC&e_a=a%2Bb+c&e_n=%25",
            b"e_c=100%&e_a=%zz&e_n=%4&search=a=b=c",
        ];
        let limits = Limits::default();
        for input in inputs {
            let mut p = Params::default();
            p.extend(input, &limits);
            for (name, _) in form_urlencoded::parse(input) {
                // The last occurrence wins in both.
                let expected = form_urlencoded::parse(input)
                    .filter(|(n, _)| *n == name)
                    .last()
                    .map(|(_, v)| v);
                if let Some((mine, _)) = p.slot(&name, &limits) {
                    assert_eq!(mine.as_deref(), expected.as_deref(), "{name}");
                }
            }
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_never_refused() {
        let mut p = Params::default();
        p.extend(
            b"action_name=a%FFb&unknown=%C3&e_c=x\xff",
            &Limits::default(),
        );
        assert_eq!(p.action_name.as_deref(), Some("a\u{fffd}b"));
        assert_eq!(p.e_c.as_deref(), Some("x\u{fffd}"));
        let mut p = Params::default();
        p.extend(b"%FF=1&idsite=3", &Limits::default());
        assert_eq!(p.idsite.as_deref(), Some("3"));
    }

    #[test]
    fn long_values_are_cut_at_a_character() {
        let limits = Limits {
            max_field_bytes: 4,
            ..Limits::default()
        };
        let mut p = Params::default();
        p.extend("action_name=ab%C3%BCcd&e_c=abcdef".as_bytes(), &limits);
        // `ü` is two bytes: cutting after 4 bytes would split it, so 3 bytes remain.
        assert_eq!(p.action_name.as_deref(), Some("ab\u{fc}"));
        assert_eq!(p.e_c.as_deref(), Some("abcd"));
    }

    #[test]
    fn dimensions_are_collected_and_bounded() {
        let mut p = Params::default();
        p.extend(
            b"dimension1=a&dimension12=b&dimension1=c&dimension0=x&dimensionx=y&dimension70000=z",
            &Limits::default(),
        );
        assert_eq!(
            p.dimensions,
            vec![(1, Cow::Borrowed("c")), (12, Cow::Borrowed("b"))]
        );
        let many: String = (1..=60).map(|i| format!("dimension{i}=v&")).collect();
        let mut p = Params::default();
        p.extend(many.as_bytes(), &Limits::default());
        assert_eq!(p.dimensions.len(), MAX_DIMENSIONS);
    }

    #[test]
    fn image_is_the_default_answer() {
        let p = |q: &'static str| {
            let mut p = Params::default();
            p.extend(q.as_bytes(), &Limits::default());
            p.wants_image()
        };
        assert!(p("idsite=1"));
        assert!(p("send_image=1"));
        assert!(!p("send_image=0"));
        assert!(declines_image(&[b"idsite=1&send_image=0"]));
        assert!(declines_image(&[b"send%5Fimage=%30&url=x"]));
        assert!(!declines_image(&[b"send_image=1"]));
        assert!(!declines_image(&[b"send_image"]));
        assert!(!declines_image(&[b"xsend_image=0"]));
        assert!(!declines_image(&[b""]));
    }

    /// A refused hit is answered from the raw query, a tracked one from its parsed
    /// parameters: the two must agree, or the answer would tell them apart.
    #[test]
    fn raw_and_parsed_image_choice_agree() {
        for (query, body) in [
            ("send_image=0", ""),
            ("send_image=1", ""),
            ("send%5Fimage=%30", ""),
            ("send_image=0&send_image=1", ""),
            ("send_image=1&send_image=0", ""),
            ("send_image=+0", ""),
            ("send_image", ""),
            ("idsite=1", ""),
            ("send_image=0", "send_image=1"),
            ("send_image=1", "send_image=0"),
            ("send_image=0", "idsite=1"),
        ] {
            let mut p = Params::default();
            p.extend(query.as_bytes(), &Limits::default());
            p.extend(body.as_bytes(), &Limits::default());
            assert_eq!(
                declines_image(&[query.as_bytes(), body.as_bytes()]),
                !p.wants_image(),
                "{query} | {body}"
            );
        }
    }
}
