//! Request bodies that are JSON: Matomo's bulk tracking (`POST /matomo.php` with
//! `{"requests": [...]}`, `ingest::bulk`), each entry's parameters built into a hit and run
//! through the pipeline as `ingest::track` does; and the same bytes as a Plausible
//! `POST /api/event` body (`ingest::plausible::parse`, then the sites it names).
//!
//! Input: the body. Checked besides "no panic": every event that would be stored has a
//! truncated address, a known site and a time inside the raw-data window.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tally::enrich::ClientHints;
use tally::ingest::{bulk, plausible};
use tally_fuzz::{BROWSER_UA, app, context, track};

fuzz_target!(|body: &[u8]| {
    let app = app();
    let limits = &app.config.limits;
    if body.len() > limits.max_body_bytes {
        return;
    }
    if bulk::is_bulk(body)
        && let Ok(b) = bulk::parse(body, limits.max_bulk_hits)
    {
        let _ = b.wants_summary();
        let authenticated = match b.token_auth.as_deref() {
            // A wrong token refuses the whole request (403) before any entry is read.
            Some(token) if !app.token_matches(Some(token)) => None,
            Some(_) => Some(true),
            None => Some(false),
        };
        if let Some(authenticated) = authenticated {
            let mut ctx = context(app, BROWSER_UA, ClientHints::default());
            ctx.authenticated = authenticated;
            for entry in &b.requests {
                if bulk::is_empty_entry(entry) {
                    continue;
                }
                if let Some(p) = bulk::entry_params(entry, limits) {
                    let _ = track(app, &p, &ctx);
                }
            }
        }
    }
    if let Ok(event) = plausible::parse(body) {
        let _ = event.kind();
        let _ = plausible::sites(&app.config, &event.domains);
    }
});
