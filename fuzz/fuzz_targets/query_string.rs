//! A Matomo tracking request (`GET /matomo.php?...`, or a form `POST`): its query string and
//! form body parsed into `Params` as `ingest::track` does (query first, the body overriding),
//! then the hit built (`ingest::hit`) and run through every pipeline step.
//!
//! Input: the query string, a newline, the form body (either may be empty). Checked besides
//! "no panic": the answer chosen from the raw bytes (`declines_image`, used for refused and
//! dropped hits) is the one the parsed parameters ask for, so a refused hit cannot be told
//! from a stored one; and every event that would be stored has a truncated address, a known
//! site and a time inside the raw-data window.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tally::enrich::ClientHints;
use tally::ingest::{hit, params};
use tally_fuzz::{BROWSER_UA, app, context, fields, track};

fuzz_target!(|data: &[u8]| {
    let app = app();
    let limits = &app.config.limits;
    let [query, body] = fields(data, 2)[..] else {
        unreachable!()
    };
    // What the server refuses before parsing (414, 413) never reaches the parser.
    if query.len() > limits.max_uri_bytes || body.len() > limits.max_body_bytes {
        return;
    }
    let mut p = params::Params::default();
    p.extend(query, limits);
    p.extend(body, limits);
    assert_eq!(
        params::declines_image(&[query, body]),
        !p.wants_image(),
        "the raw and the parsed answer differ"
    );
    let _ = hit::kind_of(&p);
    let ctx = context(app, BROWSER_UA, ClientHints::default());
    let _ = track(app, &p, &ctx);
});
