//! Client hints: the `uadata` JSON matomo.js sends (`enrich::uadata`), turned into the header
//! forms, and the `Sec-CH-UA*` headers themselves, each read by the device detector
//! (`enrich::device`, brand lists parsed by hand) together with a user agent.
//!
//! Input, one per line: `uadata` JSON, `Sec-CH-UA`, `Sec-CH-UA-Platform`,
//! `Sec-CH-UA-Platform-Version`, `Sec-CH-UA-Mobile`, `Sec-CH-UA-Full-Version-List`,
//! `Sec-CH-UA-Model`, then the user agent (a Chrome one when empty). A header line no header
//! could carry is absent, as hyper would refuse it. Checked besides "no panic": the header
//! forms made from `uadata` are valid header values and its model is bounded; the cached
//! detection equals the uncached one.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tally::enrich::{ClientHints, DeviceDetector, UaData, uadata};
use tally_fuzz::{BROWSER_UA, app, fields, header_text, header_value};

fn detect_both(d: &DeviceDetector, ua: &str, hints: &ClientHints<'_>) {
    let parsed = d.parse(ua, hints);
    assert_eq!(*d.detect(ua, hints), parsed);
    assert_eq!(
        parsed.is_bot,
        parsed.device_type == tally::enrich::DeviceType::Bot
    );
}

fuzz_target!(|data: &[u8]| {
    let detector = &app().enrich.devices;
    let f = fields(data, 8);
    let ua = match std::str::from_utf8(f[7]) {
        Ok("") => BROWSER_UA,
        Ok(s) => s,
        Err(_) => return,
    };

    // `uadata` is a parameter value: any text (invalid UTF-8 was replaced on decoding).
    let json = String::from_utf8_lossy(f[0]);
    if let Some(u) = UaData::parse(&json) {
        assert!(u.model.chars().count() <= 64, "{:?}", u.model);
        let hints = u.hints();
        for v in [
            hints.ua,
            hints.platform,
            hints.platform_version,
            hints.mobile,
            hints.full_version_list,
        ]
        .into_iter()
        .flatten()
        {
            assert!(header_value(v.as_bytes()).is_some(), "{v:?}");
        }
        detect_both(detector, ua, &hints);
    }

    let headers = ClientHints {
        ua: header_text(f[1]),
        platform: header_text(f[2]),
        platform_version: header_text(f[3]),
        mobile: header_text(f[4]),
        full_version_list: header_text(f[5]),
    };
    if let Some(model) = header_text(f[6]) {
        let m = uadata::model_from_header(model);
        assert!(m.chars().count() <= 64, "{m:?}");
    }
    detect_both(detector, ua, &headers);
});
