//! `Cookie` headers, as the privacy signals (`privacy::signals`: the opt-out cookies, checked
//! before anything else of a hit) and the dashboard's session lookup (`access::session_cookie`)
//! read them.
//!
//! Input: one `Cookie` header value per line (HTTP/2 clients send one header per cookie);
//! lines no header could carry are left out, as hyper would refuse them. Checked besides "no
//! panic": the opt-out decision, the list of opt-out cookies present and the refusal agree,
//! and the session lookup sees a session cookie exactly when `has_cookie` does.

#![no_main]

use hyper::HeaderMap;
use hyper::header::COOKIE;
use libfuzzer_sys::fuzz_target;
use tally::access::{self, SESSION_COOKIE};
use tally::privacy::{self, Refusal, signals};
use tally_fuzz::{app, header_value};

fuzz_target!(|data: &[u8]| {
    let cfg = &app().config.privacy;
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        if let Some(v) = header_value(line) {
            headers.append(COOKIE, v);
        }
    }
    let opted_out = signals::opted_out(&headers, cfg);
    let present = signals::present_cookies(&headers, cfg);
    assert_eq!(opted_out, !present.is_empty(), "{present:?}");
    // The fuzzed headers carry no DNT or Sec-GPC: a refusal can only be the cookie's.
    assert_eq!(
        privacy::refusal(&headers, cfg),
        opted_out.then_some(Refusal::OptOutCookie)
    );
    for name in present {
        assert!(signals::has_cookie(&headers, name), "{name}");
    }
    assert_eq!(
        access::session_cookie(&headers).is_some(),
        signals::has_cookie(&headers, SESSION_COOKIE)
    );
});
