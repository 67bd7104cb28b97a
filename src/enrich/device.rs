//! Device detection: browser, OS, device type and bot verdict from the
//! `User-Agent` header, refined by `Sec-CH-UA*` client hints.
//!
//! # Crate choice (measured on this file's 40-UA table, release build, 2 cores)
//! | crate | per UA (cold) | misses on the table |
//! | --- | --- | --- |
//! | `woothee` 0.13 | 1.3 µs | `python-requests`, `Go-http-client` unparsed; `HeadlessChrome`, `PhantomJS`, Applebot seen as normal browsers; no tablet category (iPad = smartphone) |
//! | `ua-parser` 0.2 (uap-core 0.18 regexes), UA + OS | 3.8 µs | none for browser/OS; build 110 ms once |
//! | `ua-parser` incl. its device regexes | 9.2 µs | — (device regexes add 5 µs for what a 3-line rule below does) |
//!
//! We use `ua-parser` for browser and OS: it is the maintained uap-core
//! regex set (the one Matomo-like tools and most ports share), it was the
//! only candidate right on every row, and the cold cost is paid once per
//! distinct UA because [`DeviceDetector`] caches results (a warm hit is a
//! hash lookup, ~100 ns). Its device regexes are skipped: they cost more than
//! the UA and OS passes together and we only need desktop/mobile/tablet,
//! which the rule in [`device_type_from_ua`] derives from well-known tokens.
//! `user-agent-parser` (same regexes, older engine) was not measured
//! separately: it wraps the same data without the prefilter that makes
//! `ua-parser` fast.
//!
//! In the criterion bench a full cold [`DeviceDetector::parse`] of an iPhone
//! Safari UA (UA + OS regexes, bot checks, tablet rule) takes ~6.9 µs and a
//! warm cache hit ~57 ns.
//!
//! Bots: the `isbot` crate (0.26 µs per UA; its list is a port of the npm
//! `isbot` patterns: crawlers, monitors, HTTP libraries, headless browsers)
//! plus [`EXTRA_BOT_TOKENS`] for the few agents it misses. HTTP libraries
//! ([`LIBRARY_PREFIXES`]) and an empty UA are *not* bots: Matomo's server-side
//! trackers and back-end integrations send them, so they are kept as
//! [`DeviceType::Library`] and [`DeviceType::Unknown`]; only named crawlers,
//! monitors and headless browsers are bots.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use quick_cache::Equivalent;
use quick_cache::sync::Cache;
use ua_parser::{os, user_agent};

/// Coarse device class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceType {
    /// Desktop or laptop computer.
    Desktop,
    /// Phone.
    Mobile,
    /// Tablet.
    Tablet,
    /// Crawler, monitor or headless browser.
    Bot,
    /// An HTTP library (`curl`, `node-fetch`, `python-requests`...): a server-side sender.
    Library,
    /// No user agent at all.
    Unknown,
    /// Anything else (TV, console, unknown).
    Other,
}

impl DeviceType {
    /// Stable lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceType::Desktop => "desktop",
            DeviceType::Mobile => "mobile",
            DeviceType::Tablet => "tablet",
            DeviceType::Bot => "bot",
            DeviceType::Library => "library",
            DeviceType::Unknown => "unknown",
            DeviceType::Other => "other",
        }
    }
}

/// What we know about the visitor's software and hardware. Names are
/// uap-core family names ("Chrome", "Mobile Safari", "Samsung Internet",
/// "Mac OS X", "iOS"…); empty when unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Browser family (or bot name for bots).
    pub browser: String,
    /// Browser major version.
    pub browser_version: String,
    /// Operating system family.
    pub os: String,
    /// OS major version; `10.x` for Mac OS X 10, where the minor is the
    /// release (10.15 = Catalina).
    pub os_version: String,
    /// Device class.
    pub device_type: DeviceType,
    /// Bot verdict (then `device_type` is [`DeviceType::Bot`]).
    pub is_bot: bool,
}

/// Raw `Sec-CH-UA*` header values, as received (quotes included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClientHints<'a> {
    /// `Sec-CH-UA`: brand list, e.g. `"Chromium";v="131", "Not_A Brand";v="24"`.
    pub ua: Option<&'a str>,
    /// `Sec-CH-UA-Platform`, e.g. `"Windows"`.
    pub platform: Option<&'a str>,
    /// `Sec-CH-UA-Platform-Version`, e.g. `"15.0.0"` (Windows 11).
    pub platform_version: Option<&'a str>,
    /// `Sec-CH-UA-Mobile`: `?1` on phones.
    pub mobile: Option<&'a str>,
    /// `Sec-CH-UA-Full-Version-List`: brand list with full versions.
    pub full_version_list: Option<&'a str>,
}

impl<'a> ClientHints<'a> {
    fn fields(&self) -> [Option<&'a str>; 5] {
        [
            self.ua,
            self.platform,
            self.platform_version,
            self.mobile,
            self.full_version_list,
        ]
    }
}

/// Starts (lowercase) of HTTP libraries' default agents. A sender using one is a program, not
/// a browser, but not a crawler either: Matomo's PHP and Node.js trackers, shop back-ends and
/// apps send these.
pub const LIBRARY_PREFIXES: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests/",
    "python-urllib/",
    "python-httpx/",
    "aiohttp/",
    "node-fetch",
    "node",
    "undici",
    "axios/",
    "got ",
    "okhttp/",
    "go-http-client/",
    "java/",
    "apache-httpclient/",
    "guzzlehttp/",
    "libwww-perl/",
    "ruby",
    "faraday ",
    "dart/",
    "postmanruntime/",
    "reqwest/",
    "matomo",
    "piwik",
];

/// Words that make any agent a crawler, whatever library it is built on.
const CRAWLER_WORDS: &[&str] = &["bot", "crawl", "spider", "slurp", "scrap"];

/// Substrings (lowercase) of agents `isbot`'s list misses: synthetic
/// monitoring and browser-automation defaults.
pub const EXTRA_BOT_TOKENS: &[&str] = &[
    "datadogsynthetics",
    "headless",
    "puppeteer",
    "playwright",
    "selenium",
    "cypress",
    "lighthouse",
    "pagespeed",
    "gtmetrix",
    "site24x7",
    "newrelicpinger",
    "checkly",
];

/// Embedded uap-core regexes (see `data/README.md`).
const UAP_REGEXES_JSON: &str = include_str!("data/uap_regexes.json");

/// Errors building the parser (only possible with malformed regex data).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The regex file is not valid JSON of the uap-core shape.
    #[error("uap regexes: {0}")]
    Json(#[from] serde_json::Error),
    /// A regex failed to compile.
    #[error("uap regexes: {0}")]
    Regex(String),
}

/// Owned cache key: the UA and the hint values that influence the result.
#[derive(Clone, PartialEq, Eq)]
struct Key {
    ua: Box<str>,
    hints: [Option<Box<str>>; 5],
}

/// Borrowed form of [`Key`], so cache hits do not allocate.
struct KeyRef<'a> {
    ua: &'a str,
    hints: [Option<&'a str>; 5],
}

// `Key` and `KeyRef` must hash identically: both feed `str`/`Option<&str>`
// in the same order.
impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.ua.hash(h);
        for x in &self.hints {
            x.as_deref().hash(h);
        }
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.ua.hash(h);
        for x in &self.hints {
            x.hash(h);
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        *self.ua == *key.ua
            && self
                .hints
                .iter()
                .zip(&key.hints)
                .all(|(a, b)| *a == b.as_deref())
    }
}

/// Parses user agents, with a concurrent LRU-like cache in front because the
/// same few thousand UAs make up nearly all traffic. `Send + Sync`; share
/// one per process.
pub struct DeviceDetector {
    ua: user_agent::Extractor<'static>,
    os: os::Extractor<'static>,
    bots: isbot::Bots,
    cache: Cache<Key, Arc<Device>>,
}

impl std::fmt::Debug for DeviceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceDetector")
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl DeviceDetector {
    /// Builds the detector with room for `cache_capacity` distinct
    /// UA + hints combinations (10 000 is plenty for most sites).
    ///
    /// # Panics
    /// Only if the embedded regex data is broken, which the unit tests rule
    /// out; [`DeviceDetector::try_new`] returns the error instead.
    pub fn new(cache_capacity: usize) -> Self {
        Self::try_new(cache_capacity).expect("embedded uap-core regexes compile")
    }

    /// Like [`DeviceDetector::new`], returning build errors.
    pub fn try_new(cache_capacity: usize) -> Result<Self, DeviceError> {
        let regexes: ua_parser::Regexes<'static> = serde_json::from_str(UAP_REGEXES_JSON)?;
        let ua = user_agent::Builder::new()
            .push_all(regexes.user_agent_parsers)
            .map_err(|e| DeviceError::Regex(e.to_string()))?
            .build()
            .map_err(|e| DeviceError::Regex(e.to_string()))?;
        let os = os::Builder::new()
            .push_all(regexes.os_parsers)
            .map_err(|e| DeviceError::Regex(e.to_string()))?
            .build()
            .map_err(|e| DeviceError::Regex(e.to_string()))?;
        Ok(DeviceDetector {
            ua,
            os,
            bots: isbot::Bots::default(),
            cache: Cache::new(cache_capacity.max(1)),
        })
    }

    /// Detects the device for a request, from cache when this exact UA and
    /// hint combination was seen before.
    pub fn detect(&self, user_agent: &str, hints: &ClientHints<'_>) -> Arc<Device> {
        let key = KeyRef {
            ua: user_agent,
            hints: hints.fields(),
        };
        if let Some(hit) = self.cache.get(&key) {
            return hit;
        }
        let device = Arc::new(self.parse(user_agent, hints));
        self.cache.insert(
            Key {
                ua: user_agent.into(),
                hints: key.hints.map(|h| h.map(Into::into)),
            },
            Arc::clone(&device),
        );
        device
    }

    /// Uncached detection (what [`DeviceDetector::detect`] computes on a miss).
    pub fn parse(&self, user_agent: &str, hints: &ClientHints<'_>) -> Device {
        let ua_str = user_agent.trim();
        // One lowercase copy per cache miss turns the token scans into plain
        // substring searches instead of case-folding every window.
        let ua_lower = ua_str.to_ascii_lowercase();
        let program = if ua_str.is_empty() {
            Some(DeviceType::Unknown)
        } else {
            is_library(&ua_lower).then_some(DeviceType::Library)
        };
        let is_bot = program.is_none() && self.is_bot(ua_str, &ua_lower);

        let (mut browser, mut browser_version) = match self.ua.extract(ua_str) {
            Some(v) => (
                v.family.into_owned(),
                v.major.unwrap_or_default().to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        let (mut os_name, mut os_version) = match self.os.extract(ua_str) {
            Some(v) => {
                let major = v.major.as_deref().unwrap_or_default();
                let version = match (v.os.as_ref(), major, v.minor.as_deref()) {
                    ("Mac OS X", "10", Some(minor)) => format!("10.{minor}"),
                    _ => major.to_owned(),
                };
                (v.os.into_owned(), version)
            }
            None => (String::new(), String::new()),
        };
        if browser == "Other" {
            browser.clear();
        }
        if os_name == "Other" {
            os_name.clear();
        }

        let mut device_type = if let Some(program) = program {
            program
        } else if is_bot {
            DeviceType::Bot
        } else {
            device_type_from_ua(ua_str, &ua_lower, &os_name)
        };

        if !is_bot && program.is_none() {
            apply_hints(
                hints,
                &mut browser,
                &mut browser_version,
                &mut os_name,
                &mut os_version,
                &mut device_type,
            );
        }

        Device {
            browser,
            browser_version,
            os: os_name,
            os_version,
            device_type,
            is_bot,
        }
    }

    fn is_bot(&self, ua: &str, ua_lower: &str) -> bool {
        self.bots.is_bot(ua) || EXTRA_BOT_TOKENS.iter().any(|tok| ua_lower.contains(tok))
    }
}

/// An HTTP library's agent that names no crawler.
fn is_library(ua_lower: &str) -> bool {
    LIBRARY_PREFIXES.iter().any(|p| ua_lower.starts_with(p))
        && !CRAWLER_WORDS.iter().any(|w| ua_lower.contains(w))
}

/// Device class from UA tokens. uap-core's device regexes would tell us the
/// model, which we do not store; these tokens are what they key the class
/// on anyway:
/// * TVs and consoles first, since their UAs also carry desktop/Android
///   tokens (`Xbox` has `Windows NT`, Android TVs have `Android`);
/// * `iPad`, Kindle/Silk, and Android *without* `Mobile` are tablets —
///   Google's guidance is that Android phones send `Mobile` and tablets do
///   not; Firefox for Android uses `Tablet`/`Mobile` explicitly;
/// * `iPhone`/`iPod`, `Mobile`/`Mobi`, Opera Mini, BlackBerry are phones;
/// * a desktop OS is a desktop.
///
/// iPadOS 13+ in desktop mode sends a Mac UA and is counted as desktop: the
/// UA holds nothing else, and Safari sends no client hints.
fn device_type_from_ua(ua: &str, ua_lower: &str, os: &str) -> DeviceType {
    const TV_OR_CONSOLE: &[&str] = &[
        "smart-tv",
        "smarttv",
        "googletv",
        "appletv",
        "hbbtv",
        "crkey",
        "roku",
        "playstation",
        "xbox",
        "nintendo",
        "bravia",
        "aftb",
        "aftt",
        "aftm",
        "; tv",
    ];
    if TV_OR_CONSOLE.iter().any(|t| ua_lower.contains(t)) {
        return DeviceType::Other;
    }
    if ua.contains("iPad") || ua.contains("Kindle") || ua.contains("Silk/") || ua.contains("Tablet")
    {
        return DeviceType::Tablet;
    }
    if ua.contains("iPhone")
        || ua.contains("iPod")
        || ua.contains("Mobi")
        || ua.contains("Opera Mini")
        || ua.contains("BlackBerry")
        || ua.contains("Windows Phone")
    {
        return DeviceType::Mobile;
    }
    if os == "Android" || ua.contains("Android") {
        return DeviceType::Tablet;
    }
    match os {
        "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Fedora" | "Debian" | "Chrome OS"
        | "FreeBSD" | "OpenBSD" | "NetBSD" | "Red Hat" | "SUSE" | "Linux Mint" | "Arch Linux" => {
            DeviceType::Desktop
        }
        _ => DeviceType::Other,
    }
}

/// Strips the structured-field quotes from a hint value (`"Windows"`).
fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// One `"brand";v="version"` entry of a brand list.
#[derive(Debug, PartialEq, Eq)]
struct Brand<'a> {
    brand: &'a str,
    version: &'a str,
}

/// Parses a `Sec-CH-UA` brand list (an RFC 8941 list of strings with a `v`
/// parameter). Hand-written because only this subset occurs, it runs on
/// cache misses only, and it borrows from the header instead of building
/// the owned structures a general structured-field crate returns. Quoted
/// strings may contain `,`/`;` (GREASE brands do), so splitting is
/// quote-aware. Malformed entries are skipped.
fn parse_brand_list(list: &str) -> impl Iterator<Item = Brand<'_>> {
    split_outside_quotes(list, b',').filter_map(|item| {
        let mut parts = split_outside_quotes(item, b';');
        let brand = unquote(parts.next()?);
        let version = parts
            .filter_map(|p| p.trim().strip_prefix("v="))
            .map(unquote)
            .next()
            .unwrap_or_default();
        (!brand.is_empty()).then_some(Brand { brand, version })
    })
}

fn split_outside_quotes(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut idx = 0;
    let bytes = s.as_bytes();
    std::iter::from_fn(move || {
        if start > bytes.len() {
            return None;
        }
        while idx < bytes.len() {
            let b = bytes[idx];
            idx += 1;
            if escaped {
                escaped = false;
            } else if in_quotes && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = !in_quotes;
            } else if b == sep && !in_quotes {
                let item = &s[start..idx - 1];
                start = idx;
                return Some(item);
            }
        }
        let item = &s[start..];
        start = bytes.len() + 1;
        Some(item)
    })
}

/// GREASE entries ("Not A;Brand", "Not_A Brand", "Not/A)Brand"…) are
/// deliberately fake brands Chrome adds so servers don't hard-code lists.
fn is_grease(brand: &str) -> bool {
    brand.contains("Not") && brand.contains("Brand")
}

/// Major version of `"15.0.0"` / `131.0.6778.86` / `131`.
fn major(v: &str) -> Option<u32> {
    unquote(v).split('.').next()?.trim().parse().ok()
}

/// Refines the UA-derived result with client hints (Chromium browsers send
/// them; the UA they send is "reduced": frozen at Windows 10, Android 10,
/// model `K`, macOS 10.15.7).
fn apply_hints(
    hints: &ClientHints<'_>,
    browser: &mut String,
    browser_version: &mut String,
    os_name: &mut String,
    os_version: &mut String,
    device_type: &mut DeviceType,
) {
    // Brand: the most specific non-GREASE brand. "Chromium" is the engine
    // every Chromium browser lists, and "Google Chrome" is what the UA
    // already says, so either only fills gaps; any other brand (Edge,
    // Opera, Brave…) names the real browser.
    let list = hints.full_version_list.or(hints.ua);
    if let Some(list) = list {
        let mut engine: Option<Brand<'_>> = None;
        let mut specific: Option<Brand<'_>> = None;
        for b in parse_brand_list(list) {
            if is_grease(b.brand) {
                continue;
            }
            if matches!(b.brand, "Chromium" | "Google Chrome") {
                if engine.as_ref().is_none_or(|e| e.brand == "Chromium") {
                    engine = Some(b);
                }
            } else if specific.is_none() {
                specific = Some(b);
            }
        }
        if let Some(b) = specific {
            *browser = match b.brand {
                "Microsoft Edge" => "Edge",
                "Opera" | "Opera GX" => "Opera",
                "Brave" => "Brave",
                "Yandex" | "YaBrowser" => "Yandex Browser",
                "Samsung Internet" => "Samsung Internet",
                "Vivaldi" => "Vivaldi",
                other => other,
            }
            .to_owned();
            if let Some(m) = major(b.version) {
                *browser_version = m.to_string();
            }
        } else if let Some(b) = engine {
            if browser.is_empty() {
                *browser = if b.brand == "Google Chrome" {
                    "Chrome"
                } else {
                    "Chromium"
                }
                .to_owned();
            }
            if let Some(m) = major(b.version) {
                *browser_version = m.to_string();
            }
        }
    }

    let platform = hints.platform.map(unquote).unwrap_or_default();
    let pv = hints.platform_version.and_then(major);
    match platform {
        "Windows" => {
            *os_name = "Windows".to_owned();
            // Microsoft's mapping: platform version 13+ is Windows 11,
            // 1–10 is Windows 10; 0.x are 7/8/8.1, which the UA already names.
            match pv {
                Some(v) if v >= 13 => *os_version = "11".to_owned(),
                Some(v) if v >= 1 => *os_version = "10".to_owned(),
                _ => {}
            }
        }
        "macOS" => {
            *os_name = "Mac OS X".to_owned();
            if let Some(v) = pv {
                *os_version = if v == 10 {
                    let minor = hints
                        .platform_version
                        .map(unquote)
                        .and_then(|s| s.split('.').nth(1))
                        .unwrap_or_default();
                    format!("10.{minor}")
                } else {
                    v.to_string()
                };
            }
        }
        "Android" | "Chrome OS" | "Linux" | "iOS" => {
            *os_name = platform.to_owned();
            if let Some(v) = pv.filter(|&v| v > 0) {
                *os_version = v.to_string();
            }
        }
        _ => {}
    }

    if hints.mobile.map(str::trim) == Some("?1") {
        *device_type = DeviceType::Mobile;
    } else if hints.mobile.map(str::trim) == Some("?0") && platform == "Android" {
        // Android + not mobile: a tablet (or desktop mode, indistinguishable).
        *device_type = DeviceType::Tablet;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn detector() -> &'static DeviceDetector {
        static D: OnceLock<DeviceDetector> = OnceLock::new();
        D.get_or_init(|| DeviceDetector::new(1000))
    }

    use DeviceType::{Bot, Desktop, Library, Mobile, Other, Tablet, Unknown};

    /// (UA, browser, major, OS, OS version, type). `is_bot` ⇔ type == Bot.
    const TABLE: &[(&str, &str, &str, &str, &str, DeviceType)] = &[
        // Desktop.
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "131",
            "Windows",
            "10",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox",
            "133",
            "Windows",
            "10",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge",
            "131",
            "Windows",
            "10",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36",
            "Chrome",
            "109",
            "Windows",
            "7",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0",
            "Opera",
            "115",
            "Windows",
            "10",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "131",
            "Mac OS X",
            "10.15",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
            "Safari",
            "18",
            "Mac OS X",
            "10.15",
            Desktop,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox",
            "133",
            "Mac OS X",
            "10.15",
            Desktop,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "131",
            "Linux",
            "",
            Desktop,
        ),
        (
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox",
            "133",
            "Ubuntu",
            "",
            Desktop,
        ),
        (
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "131",
            "Chrome OS",
            "14541",
            Desktop,
        ),
        // Phones.
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "18",
            "iOS",
            "18",
            Mobile,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
            "Chrome Mobile iOS",
            "131",
            "iOS",
            "17",
            Mobile,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
            "Firefox iOS",
            "133",
            "iOS",
            "18",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome Mobile",
            "131",
            "Android",
            "10",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
            "Samsung Internet",
            "26",
            "Android",
            "14",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
            "Firefox Mobile",
            "133",
            "Android",
            "14",
            Mobile,
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.0.0",
            "Edge Mobile",
            "131",
            "Android",
            "10",
            Mobile,
        ),
        // Tablets.
        (
            "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "17",
            "iOS",
            "17",
            Tablet,
        ),
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome",
            "131",
            "Android",
            "13",
            Tablet,
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-X910) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36",
            "Samsung Internet",
            "26",
            "Android",
            "14",
            Tablet,
        ),
        (
            "Mozilla/5.0 (Android 14; Tablet; rv:133.0) Gecko/133.0 Firefox/133.0",
            "Firefox Mobile",
            "133",
            "Android",
            "14",
            Tablet,
        ),
        // Other devices.
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
            "Edge",
            "18",
            "Windows",
            "10",
            Other,
        ),
        // Crawlers.
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot",
            "2",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.69 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Googlebot",
            "2",
            "Android",
            "6",
            Bot,
        ),
        (
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "bingbot",
            "2",
            "",
            "",
            Bot,
        ),
        (
            "DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)",
            "DuckDuckBot",
            "1",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "YandexBot",
            "3",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
            "Baiduspider",
            "2",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "AhrefsBot",
            "7",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
            "GPTBot",
            "1",
            "",
            "",
            Bot,
        ),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "FacebookBot",
            "1",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            "Applebot",
            "0",
            "Mac OS X",
            "10.15",
            Bot,
        ),
        // Monitors.
        (
            "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "UptimeRobot",
            "2",
            "",
            "",
            Bot,
        ),
        (
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "PingdomBot",
            "1",
            "",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 DatadogSynthetics",
            "Chrome",
            "131",
            "Linux",
            "",
            Bot,
        ),
        // HTTP libraries: server-side senders, kept.
        ("curl/8.5.0", "curl", "8", "", "", Library),
        (
            "python-requests/2.32.3",
            "Python Requests",
            "2",
            "",
            "",
            Library,
        ),
        ("Go-http-client/1.1", "Go-http-client", "1", "", "", Library),
        ("Wget/1.21.4", "Wget", "1", "", "", Library),
        (
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            "",
            "",
            "",
            "",
            Library,
        ),
        // A crawler built on a library is a crawler.
        (
            "python-requests/2.31 MyCrawlerBot/1.0",
            "MyCrawlerBot",
            "1",
            "",
            "",
            Bot,
        ),
        // Headless browsers.
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
            "HeadlessChrome",
            "131",
            "Linux",
            "",
            Bot,
        ),
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) PhantomJS/2.1.1 Safari/538.1",
            "PhantomJS",
            "2",
            "Linux",
            "",
            Bot,
        ),
        // Empty UA: a program that says nothing, kept as unknown.
        ("", "", "", "", "", Unknown),
    ];

    #[test]
    fn user_agent_table() {
        let d = detector();
        let none = ClientHints::default();
        let mut failures = Vec::new();
        for &(ua, browser, major, os, os_version, ty) in TABLE {
            let got = d.detect(ua, &none);
            let want = Device {
                browser: browser.into(),
                browser_version: major.into(),
                os: os.into(),
                os_version: os_version.into(),
                device_type: ty,
                is_bot: ty == Bot,
            };
            if *got != want {
                failures.push(format!("{ua}\n   got  {got:?}\n   want {want:?}"));
            }
        }
        assert!(TABLE.len() >= 40);
        assert!(
            failures.is_empty(),
            "{} mismatches:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn device_type_names() {
        assert_eq!(Desktop.as_str(), "desktop");
        assert_eq!(Mobile.as_str(), "mobile");
        assert_eq!(Tablet.as_str(), "tablet");
        assert_eq!(Bot.as_str(), "bot");
        assert_eq!(Other.as_str(), "other");
    }

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const CHROME_ANDROID_REDUCED: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

    #[test]
    fn hints_windows_11_vs_10() {
        let d = detector();
        let win11 = ClientHints {
            ua: Some(r#""Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
            platform: Some(r#""Windows""#),
            platform_version: Some(r#""15.0.0""#),
            mobile: Some("?0"),
            full_version_list: None,
        };
        let dev = d.detect(CHROME_WIN, &win11);
        assert_eq!(
            (dev.os.as_str(), dev.os_version.as_str()),
            ("Windows", "11")
        );
        assert_eq!(
            (dev.browser.as_str(), dev.browser_version.as_str()),
            ("Chrome", "131")
        );
        assert_eq!(dev.device_type, Desktop);

        let win10 = ClientHints {
            platform_version: Some(r#""10.0.0""#),
            ..win11
        };
        assert_eq!(d.detect(CHROME_WIN, &win10).os_version, "10");
        // The cache keys on hints too: the Windows 11 answer is not reused.
        assert_eq!(d.detect(CHROME_WIN, &win11).os_version, "11");
        let win7 = ClientHints {
            platform_version: Some(r#""0.1.0""#),
            ..win11
        };
        assert_eq!(
            d.detect(CHROME_WIN, &win7).os_version,
            "10",
            "0.x keeps the UA's version"
        );
    }

    #[test]
    fn hints_real_brand_skipping_grease() {
        let d = detector();
        // Brave sends a plain Chrome UA; only the brand list tells.
        let brave = ClientHints {
            ua: Some(r#""Brave";v="131", "Chromium";v="131", "Not_A Brand";v="24""#),
            platform: Some(r#""Windows""#),
            ..Default::default()
        };
        let dev = d.detect(CHROME_WIN, &brave);
        assert_eq!(
            (dev.browser.as_str(), dev.browser_version.as_str()),
            ("Brave", "131")
        );

        let edge = ClientHints {
            ua: Some(r#""Not A(Brand";v="8", "Chromium";v="132", "Microsoft Edge";v="132""#),
            ..Default::default()
        };
        let dev = d.detect(CHROME_WIN, &edge);
        assert_eq!(
            (dev.browser.as_str(), dev.browser_version.as_str()),
            ("Edge", "132")
        );

        // GREASE with separators inside quotes is skipped whole.
        let grease = ClientHints {
            ua: Some(r#""Not;A=Brand";v="99", "Opera";v="116", "Chromium";v="131""#),
            ..Default::default()
        };
        let dev = d.detect(CHROME_WIN, &grease);
        assert_eq!(
            (dev.browser.as_str(), dev.browser_version.as_str()),
            ("Opera", "116")
        );

        // Full version list takes precedence and yields the major only.
        let full = ClientHints {
            ua: Some(r#""Chromium";v="131""#),
            full_version_list: Some(
                r#""Chromium";v="131.0.6778.86", "Google Chrome";v="131.0.6778.86", "Not_A Brand";v="24.0.0.0""#,
            ),
            ..Default::default()
        };
        let dev = d.detect(CHROME_WIN, &full);
        assert_eq!(
            (dev.browser.as_str(), dev.browser_version.as_str()),
            ("Chrome", "131")
        );
    }

    #[test]
    fn hints_undo_reduced_android_ua() {
        let d = detector();
        let phone = ClientHints {
            ua: Some(r#""Chromium";v="131", "Google Chrome";v="131", "Not_A Brand";v="24""#),
            platform: Some(r#""Android""#),
            platform_version: Some(r#""14.0.0""#),
            mobile: Some("?1"),
            full_version_list: None,
        };
        let dev = d.detect(CHROME_ANDROID_REDUCED, &phone);
        assert_eq!(
            (dev.os.as_str(), dev.os_version.as_str()),
            ("Android", "14")
        );
        assert_eq!(
            dev.browser, "Chrome Mobile",
            "Chrome brand keeps the UA family"
        );
        assert_eq!(dev.device_type, Mobile);

        let tablet_ua = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let tablet = ClientHints {
            mobile: Some("?0"),
            ..phone
        };
        assert_eq!(d.detect(tablet_ua, &tablet).device_type, Tablet);
    }

    #[test]
    fn hints_macos_version() {
        let d = detector();
        let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        let h = ClientHints {
            platform: Some(r#""macOS""#),
            platform_version: Some(r#""15.1.0""#),
            ..Default::default()
        };
        let dev = d.detect(ua, &h);
        assert_eq!(
            (dev.os.as_str(), dev.os_version.as_str()),
            ("Mac OS X", "15")
        );
    }

    #[test]
    fn hints_do_not_override_bot_verdict() {
        let d = detector();
        let h = ClientHints {
            mobile: Some("?1"),
            platform: Some(r#""Android""#),
            ..Default::default()
        };
        let dev = d.detect(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            &h,
        );
        assert!(dev.is_bot);
        assert_eq!(dev.device_type, Bot);
        let dev = d.detect("curl/8.5.0", &h);
        assert_eq!(dev.device_type, Library);
    }

    #[test]
    fn malformed_hints_are_ignored() {
        let d = detector();
        let h = ClientHints {
            ua: Some(r#"garbage;;,,"unterminated"#),
            platform: Some(""),
            platform_version: Some("x.y"),
            mobile: Some("maybe"),
            full_version_list: Some(",,,"),
        };
        let dev = d.detect(CHROME_WIN, &h);
        assert_eq!(
            (dev.os.as_str(), dev.os_version.as_str()),
            ("Windows", "10")
        );
        assert_eq!(dev.device_type, Desktop);
    }

    #[test]
    fn brand_list_parser() {
        let got: Vec<_> =
            parse_brand_list(r#" "Chromium";v="131" , "Not\"A;Brand";v="8","X" "#).collect();
        assert_eq!(
            got,
            vec![
                Brand {
                    brand: "Chromium",
                    version: "131"
                },
                Brand {
                    brand: r#"Not\"A;Brand"#,
                    version: "8"
                },
                Brand {
                    brand: "X",
                    version: ""
                },
            ]
        );
        assert_eq!(parse_brand_list("").count(), 0);
    }

    #[test]
    fn cache_returns_same_arc_and_handles_odd_input() {
        let d = DeviceDetector::new(2);
        let a = d.detect(CHROME_WIN, &ClientHints::default());
        let b = d.detect(CHROME_WIN, &ClientHints::default());
        assert!(Arc::ptr_eq(&a, &b));
        for ua in [
            "\u{0}\u{ffff}",
            "   ",
            &"A".repeat(10_000),
            "Mozilla/5.0 (",
            "é",
        ] {
            let dev = d.detect(ua, &ClientHints::default());
            assert!(!dev.is_bot, "{ua:?}");
            assert_eq!(dev.device_type == Unknown, ua.trim().is_empty(), "{ua:?}");
        }
    }

    #[test]
    fn key_ref_hashes_like_key() {
        use std::collections::hash_map::DefaultHasher;
        let h = ClientHints {
            platform: Some("\"Windows\""),
            ..Default::default()
        };
        let r = KeyRef {
            ua: "ua",
            hints: h.fields(),
        };
        let k = Key {
            ua: "ua".into(),
            hints: h.fields().map(|x| x.map(Into::into)),
        };
        let hash = |x: &dyn Fn(&mut DefaultHasher)| {
            let mut s = DefaultHasher::new();
            x(&mut s);
            s.finish()
        };
        assert_eq!(hash(&|s| r.hash(s)), hash(&|s| k.hash(s)));
        assert!(r.equivalent(&k));
        let other = KeyRef {
            ua: "ua",
            hints: ClientHints::default().fields(),
        };
        assert!(!other.equivalent(&k));
    }
}
