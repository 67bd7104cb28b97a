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
        // `application/x-www-form-urlencoded` as form_urlencoded parses it, but decoded
        // strictly: invalid UTF-8 is refused instead of silently altered. The separators are
        // ASCII, so every name and value being valid is the whole input being valid; values of
        // ignored parameters are only checked, never copied.
        let not_utf8 = || Reject::bad_request("parameters are not valid UTF-8");
        for pair in input.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name).ok_or_else(not_utf8)?;
            let Some((slot, max)) = self.slot(&name, limits) else {
                if !decodes_to_utf8(value) {
                    return Err(not_utf8());
                }
                continue;
            };
            let value = decode(value).ok_or_else(not_utf8)?;
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

/// Whether `raw` percent-decodes to UTF-8, without allocating (`+` is ASCII either way).
fn decodes_to_utf8(raw: &[u8]) -> bool {
    if !raw.contains(&b'%') {
        return std::str::from_utf8(raw).is_ok();
    }
    let mut buf = [0u8; 256];
    let mut len = 0;
    for b in percent_encoding::percent_decode(raw) {
        buf[len] = b;
        len += 1;
        if len == buf.len() {
            match std::str::from_utf8(&buf) {
                Ok(_) => len = 0,
                // A character cut at the end of the buffer: carry its bytes over.
                Err(e) if e.error_len().is_none() => {
                    let valid = e.valid_up_to();
                    buf.copy_within(valid.., 0);
                    len = buf.len() - valid;
                }
                Err(_) => return false,
            }
        }
    }
    std::str::from_utf8(&buf[..len]).is_ok()
}

/// Whether a form-encoded query asks for the image answer (`send_image=1`), without decoding
/// any other parameter.
pub fn wants_image(query: &[u8]) -> bool {
    // Neither `send_image` nor `1` contains `+` or a space, so plain percent-decoding compares
    // exactly as form decoding would.
    let is = |raw: &[u8], expected: &[u8]| {
        percent_encoding::percent_decode(raw).eq(expected.iter().copied())
    };
    query.split(|&b| b == b'&').any(|pair| {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        is(name, b"send_image") && is(value, b"1")
    })
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
            p.extend(input, &limits).unwrap();
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
    fn invalid_utf8_anywhere_is_refused() {
        let bad: &[&[u8]] = &[
            b"action_name=%FF",
            b"unknown=%C3",
            b"unknown=%C3&x=%A9",
            b"%FF=1",
            b"url=\xff",
        ];
        for input in bad {
            let mut p = Params::default();
            assert!(p.extend(input, &Limits::default()).is_err(), "{input:?}");
        }
        // A character cut by the internal 256-byte buffer of the ignored-value check.
        for pad in 250..260 {
            let ok = format!("zzz={}%C3%BC", "a".repeat(pad));
            assert!(decodes_to_utf8(ok.as_bytes()), "{pad}");
            let bad = format!("zzz={}%C3%C3", "a".repeat(pad));
            assert!(!decodes_to_utf8(bad.as_bytes()), "{pad}");
            let mut p = Params::default();
            assert!(p.extend(ok.as_bytes(), &Limits::default()).is_ok());
        }
    }

    #[test]
    fn image_request() {
        assert!(wants_image(b"idsite=1&send_image=1"));
        assert!(wants_image(b"send%5Fimage=%31&url=x"));
        assert!(!wants_image(b"send_image=0"));
        assert!(!wants_image(b"send_image=+1"));
        assert!(!wants_image(b"send_image"));
        assert!(!wants_image(b"xsend_image=1"));
        assert!(!wants_image(b""));
    }
}
