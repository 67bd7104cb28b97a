//! `uadata`: the client hints matomo.js sends as JSON (the result of
//! `navigator.userAgentData.getHighEntropyValues`), turned into the header forms
//! (`Sec-CH-UA-*`) that [`super::device`] reads, so one detector serves both.
//!
//! matomo.js sends hints this way because a cross-site tracking request does not carry the
//! high-entropy `Sec-CH-UA-*` headers unless the site delegates them; the JSON is the only way
//! the collector learns "Windows 11" or a phone's model.

use serde::Deserialize;

use super::device::ClientHints;

/// Longest brand or model name kept; real ones are a few dozen bytes.
const MAX_NAME: usize = 64;
/// Most brands read from a list; browsers send three or four.
const MAX_BRANDS: usize = 8;

/// Client hints from `uadata`, already in header syntax.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UaData {
    brands: String,
    full_version_list: String,
    platform: String,
    platform_version: String,
    mobile: &'static str,
    /// Device model (`"Pixel 8"` → `Pixel 8`), empty when not sent.
    pub model: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    brands: Vec<Brand>,
    #[serde(default)]
    full_version_list: Vec<Brand>,
    #[serde(default)]
    mobile: Option<bool>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    platform_version: Option<String>,
}

#[derive(Deserialize)]
struct Brand {
    brand: String,
    version: String,
}

impl UaData {
    /// Parses the JSON; `None` when it is not the object matomo.js sends (the hit is kept, the
    /// hints are ignored, as Matomo does).
    pub fn parse(json: &str) -> Option<UaData> {
        let raw: Raw = serde_json::from_str(json).ok()?;
        Some(UaData {
            brands: brand_list(&raw.brands),
            full_version_list: brand_list(&raw.full_version_list),
            platform: raw.platform.as_deref().map(quoted).unwrap_or_default(),
            platform_version: raw
                .platform_version
                .as_deref()
                .map(quoted)
                .unwrap_or_default(),
            mobile: match raw.mobile {
                Some(true) => "?1",
                Some(false) => "?0",
                None => "",
            },
            model: raw.model.as_deref().map(clean).unwrap_or_default(),
        })
    }

    /// The hints as the headers would have carried them.
    pub fn hints(&self) -> ClientHints<'_> {
        fn some(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        ClientHints {
            ua: some(&self.brands),
            platform: some(&self.platform),
            platform_version: some(&self.platform_version),
            mobile: some(self.mobile),
            full_version_list: some(&self.full_version_list),
        }
    }
}

/// The model from a `Sec-CH-UA-Model` header value (`"Pixel 8"`).
pub fn model_from_header(value: &str) -> String {
    clean(value.trim().trim_matches('"'))
}

/// `"Brand";v="1.2"` entries joined by `, `.
fn brand_list(brands: &[Brand]) -> String {
    brands
        .iter()
        .take(MAX_BRANDS)
        .map(|b| format!("{};v={}", quoted(&b.brand), quoted(&b.version)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A structured-field string: quotes and backslashes dropped rather than escaped, since no
/// real brand or platform name has them.
fn quoted(s: &str) -> String {
    format!("\"{}\"", clean(s))
}

fn clean(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(MAX_NAME)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matomo_js_payload() {
        let json = r#"{"brands":[{"brand":"Chromium","version":"131"},{"brand":"Not_A Brand","version":"24"}],
            "fullVersionList":[{"brand":"Chromium","version":"131.0.6778.85"},{"brand":"Google Chrome","version":"131.0.6778.85"}],
            "mobile":true,"model":"Pixel 8","platform":"Android","platformVersion":"14.0.0","formFactors":["Mobile"]}"#;
        let u = UaData::parse(json).unwrap();
        let h = u.hints();
        assert_eq!(h.ua, Some(r#""Chromium";v="131", "Not_A Brand";v="24""#));
        assert_eq!(
            h.full_version_list,
            Some(r#""Chromium";v="131.0.6778.85", "Google Chrome";v="131.0.6778.85""#)
        );
        assert_eq!(h.platform, Some(r#""Android""#));
        assert_eq!(h.platform_version, Some(r#""14.0.0""#));
        assert_eq!(h.mobile, Some("?1"));
        assert_eq!(u.model, "Pixel 8");
    }

    #[test]
    fn partial_and_hostile_payloads() {
        let u = UaData::parse(r#"{"platform":"Win\"dows\n","platformVersion":"15.0.0"}"#).unwrap();
        assert_eq!(u.hints().platform, Some(r#""Windows""#));
        assert_eq!(u.hints().mobile, None);
        assert_eq!(u.hints().ua, None);
        assert!(UaData::parse("not json").is_none());
        assert!(UaData::parse("[1,2]").is_none());
        assert_eq!(model_from_header(r#""SM-G991B""#), "SM-G991B");
    }

    #[test]
    fn windows_11_is_detected_from_uadata() {
        let d = super::super::DeviceDetector::new(10);
        let u = UaData::parse(r#"{"platform":"Windows","platformVersion":"15.0.0"}"#).unwrap();
        let device = d.parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            &u.hints(),
        );
        assert_eq!(
            (device.os.as_str(), device.os_version.as_str()),
            ("Windows", "11")
        );
    }
}
