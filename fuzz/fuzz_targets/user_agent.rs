//! User agents through the device detector (`enrich::device`): uap-core's regexes, the bot
//! checks (`isbot` and tally's own tokens), the library prefixes and the device-type rule.
//!
//! Input: the user agent, as the `User-Agent` header or the `ua` parameter (any text) gives
//! it. Checked besides "no panic": a bot verdict and the bot device type go together; the
//! cached detection equals the uncached one; detection is deterministic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tally::enrich::{ClientHints, DeviceType};
use tally_fuzz::app;

fuzz_target!(|data: &[u8]| {
    let Ok(ua) = std::str::from_utf8(data) else {
        return;
    };
    let detector = &app().enrich.devices;
    let none = ClientHints::default();
    let d = detector.parse(ua, &none);
    assert_eq!(d.is_bot, d.device_type == DeviceType::Bot, "{d:?}");
    assert_eq!(*detector.detect(ua, &none), d);
    assert_eq!(detector.parse(ua, &none), d);
});
