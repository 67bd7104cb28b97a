//! Reports bench: the read side at the size of a big installation. Figures for people, no
//! assertion on a time (`docs/performance.md`, "Reports", has the figures and how to read them).
//!
//! `cargo bench --bench reports` (several minutes). What it does, on a throw-away ClickHouse:
//!
//! 1. **Aggregates of `REPORTS_DAYS` days** (default 180, ending yesterday) for one big site
//!    (`REPORTS_PV_PER_DAY` page views a day, default 1,000,000; about 0.4 visits and 0.3
//!    visitors per page view) and `REPORTS_SMALL_SITES` small ones (default 49, 100 to 5,000
//!    page views a day, log-spaced). The rows of `agg_daily`, `agg_hourly` and `agg_breakdown`
//!    are generated directly, day by day, by `INSERT .. SELECT` in ClickHouse, shaped as the
//!    rollup shapes them (`src/rollup/sql.rs`): one row per site and day, 24 per site and day,
//!    and one per site, day, dimension and value for *every* dimension of
//!    `tally::rollup::dimensions::DIMENSIONS` (the bench refuses to run if a dimension has no
//!    generator here). Each dimension's values have Zipf-like popularity over a pool of
//!    distinct values (200,000 page paths, 5,000 referrer hosts, 200 countries, ...; see
//!    [`DIM_SPECS`]); a value's count on a day is `floor(λ·noise + u)`, so the long tail shows
//!    up on some days and not others, and the exponents are chosen so that the big site has
//!    about 50,000 distinct pages a day out of the 200,000 (and nearly all of them over 180
//!    days). Small sites have smaller pools (scaled by the square root of their traffic).
//!    Day-to-day variation: weekends lower, a slow wave, a few percent of noise. The values
//!    themselves (paths, titles, hosts, ...) are generated once in Rust into a `Join`-engine
//!    table that the `INSERT`s look up with `joinGet`. Nothing is cached across runs.
//! 2. **Storage**: `system.parts` bytes on disk of the three tables after the big site, after
//!    the small sites, and after `OPTIMIZE .. FINAL`, divided by site-days.
//! 3. **Queries** through `tally::query::Engine::run` (the whole engine path): a summary, a
//!    `time:day` time series and an `event:page` top-100 breakdown over all the days, each
//!    `REPORTS_RUNS` times (default 20) after 2 warm-ups, median and p90. The statements the
//!    engine sent are taken from `system.query_log` (only the engine's client logs queries)
//!    and timed again alone through the `clickhouse` client, with ClickHouse's own duration,
//!    rows and bytes read; so engine overhead and ClickHouse time can be told apart. Beside
//!    them, hand-written statements over the aggregates ("plain SQL") give the floor a
//!    straightforward engine would reach. For the breakdown, the cost is taken apart (counting,
//!    summing, reading the values, grouping) and two other layouts are timed and checked
//!    against the daily answer: a table of whole months plus the daily rows of the partial
//!    months, and values stored as 64-bit ids with a table of names.
//! 4. **Rollup of one day**: `REPORTS_ROLLUP_HITS` (default = the page views a day) raw hits of
//!    the big site's last day are generated into `events` of another database (about 300,000
//!    visitor keys per million hits with 1 to 20 hits each, visits cut by gaps over the 30
//!    minute timeout, page views, pings, events, outlinks, downloads, searches, goals, the same
//!    long-tail values as above), then `Rollup::run_day` is timed for that day, with its
//!    statements' durations from the query log and the rows it wrote per table. Its
//!    `agg_daily` page views must equal the page views generated, or the bench fails.
//!
//! Options (environment): `REPORTS_DAYS`, `REPORTS_PV_PER_DAY`, `REPORTS_RUNS`,
//! `REPORTS_SMALL_SITES`, `REPORTS_ROLLUP_HITS`; `REPORTS_SQL_DIR=DIR` also writes the bench's
//! own statements (binds rendered) to `DIR/reports.sql`, to run them on a current ClickHouse.
//! Without cargo's `--bench` argument (`cargo test --benches`) it runs a tiny version (3 days,
//! 3,000 page views, 3 small sites, 3 runs) that still checks what it can: every dimension
//! generated, the engine's numbers equal to the aggregates', the alternative breakdowns equal
//! to the daily one, the rollup's page views equal to the hits'.

mod common;
use common::{loadavg, mix};

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use chrono::{Datelike, NaiveDate};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use tally::config::Config;
use tally::query::{Access, Engine};
use tally::rollup::Rollup;
use tally::rollup::dimensions::DIMENSIONS;
use tally::store::Client;

/// The database the aggregates are generated into, and the one the rollup runs in.
const DB: &str = "reports_bench";
const ROLLUP_DB: &str = "reports_rollup";

/// The big site's time zone (its days are local days, as the rollup's).
const BIG_TZ: &str = "Europe/Berlin";

/// Traffic the pools are sized for: a site of this many page views a day has the full pools.
const FULL_POOL_PV: f64 = 1_000_000.0;

#[derive(Clone, Debug)]
struct Opts {
    bench: bool,
    days: u32,
    pv_per_day: f64,
    runs: usize,
    small_sites: u32,
    rollup_hits: u64,
}

impl Opts {
    fn from_env() -> Result<Opts> {
        let bench = std::env::args().any(|a| a == "--bench");
        let get = |name: &str, default: f64| -> Result<f64> {
            match std::env::var(name) {
                Ok(v) => v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite() && *x >= 0.0)
                    .ok_or_else(|| anyhow!("{name}: `{v}` is not a number")),
                Err(_) => Ok(default),
            }
        };
        // `cargo test --benches` runs this without `--bench`: a tiny round then.
        let (days, pv, runs, small) = if bench {
            (180.0, 1_000_000.0, 20.0, 49.0)
        } else {
            (3.0, 3_000.0, 3.0, 3.0)
        };
        let pv_per_day = get("REPORTS_PV_PER_DAY", pv)?.max(10.0);
        Ok(Opts {
            bench,
            days: (get("REPORTS_DAYS", days)? as u32).clamp(1, 3650),
            pv_per_day,
            runs: (get("REPORTS_RUNS", runs)? as usize).max(1),
            small_sites: get("REPORTS_SMALL_SITES", small)? as u32,
            rollup_hits: get("REPORTS_ROLLUP_HITS", pv_per_day)? as u64,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// What is generated

/// How a dimension's daily counts relate to the day's traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// One value per visit (entry page, country, ...): the counts are visits, `share` of them.
    Visit = 0,
    /// One value per page view (page, title, ...): the counts are page views.
    Page = 1,
    /// One value per other action (event, outlink, search, ...): the counts are those actions.
    Action = 2,
}

/// One dimension's generator: its pool of distinct values, ranked by popularity.
struct DimSpec {
    name: &'static str,
    kind: Kind,
    /// Distinct values of the big site (small sites use a prefix of the same ranking).
    pool: u32,
    /// Zipf exponent: the value of rank `r` gets a share proportional to `r^-s`.
    s: f64,
    /// Daily total of this dimension's counts per visit (`Visit`) or per page view.
    share: f64,
    /// The value of rank `r` (1-based); made unique within the pool afterwards.
    value: fn(u32) -> String,
}

/// Every stored dimension, with pools and exponents chosen for a big site of 1M page views a
/// day (400k visits): about 50,000 distinct pages a day of 200,000, 20,000 entry and 25,000
/// exit pages, 2,000 referrer hosts of 5,000, 8,000 cities of 30,000, 800 screens of 2,000,
/// and campaign, keyword and referrer fields empty for most visits (rank 1 is the empty value
/// where the rollup stores one).
#[rustfmt::skip]
const DIM_SPECS: &[DimSpec] = &[
    // Per page view.
    dim("event:page", Kind::Page, 200_000, 1.263, 1.0, page),
    dim("event:title", Kind::Page, 200_000, 1.263, 1.0, title),
    dim("event:hostname", Kind::Page, 4, 2.0, 1.0, hostname),
    dim("event:page_load", Kind::Page, 6, 1.0, 0.8, load_bucket),
    // Per other action (events are 10% of page views; outlinks 3%, ...).
    dim("event:category", Kind::Action, 40, 1.2, 0.10, category),
    dim("event:action", Kind::Action, 150, 1.2, 0.10, event_action),
    dim("event:name", Kind::Action, 2_000, 1.833, 0.10, event_name),
    dim("event:outlink", Kind::Action, 20_000, 1.299, 0.03, outlink),
    dim("event:download", Kind::Action, 2_000, 1.3, 0.005, download),
    dim("event:search", Kind::Action, 100_000, 0.986, 0.01, keyword),
    dim("event:search_category", Kind::Action, 12, 1.2, 0.01, search_category),
    dim("event:goal", Kind::Action, 11, 1.2, 0.004, goal),
    // Per visit.
    dim("visit:entry_page", Kind::Visit, 200_000, 1.322, 1.0, page),
    dim("visit:exit_page", Kind::Visit, 200_000, 1.279, 1.0, page),
    dim("visit:entry_page_hostname", Kind::Visit, 4, 2.2, 1.0, hostname),
    dim("visit:exit_page_hostname", Kind::Visit, 4, 2.0, 1.0, hostname),
    dim("visit:channel", Kind::Visit, 4, 1.3, 1.0, channel),
    dim("visit:source", Kind::Visit, 5_000, 1.622, 1.0, source),
    dim("visit:referrer", Kind::Visit, 5_000, 1.622, 1.0, referrer_host),
    dim("visit:referrer_keyword", Kind::Visit, 2_000, 3.5, 1.0, maybe_keyword),
    dim("visit:utm_campaign", Kind::Visit, 100, 3.5, 1.0, campaign),
    dim("visit:utm_source", Kind::Visit, 50, 3.5, 1.0, utm_source),
    dim("visit:utm_medium", Kind::Visit, 20, 3.5, 1.0, utm_medium),
    dim("visit:utm_term", Kind::Visit, 500, 3.5, 1.0, maybe_keyword),
    dim("visit:utm_content", Kind::Visit, 200, 3.5, 1.0, utm_content),
    dim("visit:country", Kind::Visit, 200, 1.2, 1.0, country),
    dim("visit:region", Kind::Visit, 3_000, 1.825, 1.0, region),
    dim("visit:city", Kind::Visit, 30_000, 1.464, 1.0, city),
    dim("visit:browser", Kind::Visit, 30, 1.6, 1.0, browser),
    dim("visit:browser_version", Kind::Visit, 200, 1.3, 1.0, version),
    dim("visit:browser+visit:browser_version", Kind::Visit, 400, 1.3, 1.0, browser_version),
    dim("visit:os", Kind::Visit, 15, 1.5, 1.0, os),
    dim("visit:os_version", Kind::Visit, 80, 1.3, 1.0, os_version_alone),
    dim("visit:os+visit:os_version", Kind::Visit, 150, 1.3, 1.0, os_version),
    dim("visit:device", Kind::Visit, 6, 2.0, 1.0, device),
    dim("visit:screen", Kind::Visit, 2_000, 2.029, 1.0, screen),
    dim("visit:language", Kind::Visit, 150, 1.5, 1.0, language),
    dim("visit:visitor_type", Kind::Visit, 3, 1.0, 1.0, visitor_type),
];

const fn dim(
    name: &'static str,
    kind: Kind,
    pool: u32,
    s: f64,
    share: f64,
    value: fn(u32) -> String,
) -> DimSpec {
    DimSpec {
        name,
        kind,
        pool,
        s,
        share,
        value,
    }
}

fn spec_index(name: &str) -> Result<u32> {
    DIM_SPECS
        .iter()
        .position(|d| d.name == name)
        .map(|i| i as u32)
        .ok_or_else(|| anyhow!("no generator for {name}"))
}

fn pick<'a>(list: &[&'a str], r: u32, salt: u64) -> &'a str {
    list[(mix(u64::from(r) ^ salt.wrapping_mul(0x1000_0001)) % list.len() as u64) as usize]
}

/// The value of rank `r` in a short list of known values, or something list-like past it.
fn nth(list: &[&str], r: u32) -> String {
    list.get(r as usize - 1).map_or_else(
        || format!("{}{}", list[r as usize % list.len()], r),
        |s| s.to_string(),
    )
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "privacy", "analytics", "cookie", "consent", "release", "guide", "install", "docker",
    "pricing", "team", "about", "careers", "security", "report", "dashboard", "export",
    "import", "matomo", "plausible", "tracking", "server", "cloud", "hosting", "update",
    "feature", "compare", "tutorial", "faq", "contact", "blog", "news", "event",
    "webinar", "case-study", "customer", "story", "api", "reference", "changelog", "roadmap",
    "community", "forum", "support", "download", "mobile", "desktop", "plugin", "theme",
    "shop", "cart", "checkout", "order", "invoice", "account", "login", "signup",
    "newsletter", "podcast", "video", "gallery", "archive", "tag", "category", "search",
];
const SECTIONS: &[&str] = &["blog", "docs", "news", "guides", "shop", "help", "company"];

fn page(r: u32) -> String {
    if r == 1 {
        return "/".into();
    }
    let h = mix(u64::from(r));
    format!(
        "/{}/{}/{}-{}-{}",
        pick(SECTIONS, r, 1),
        2012 + h % 14,
        pick(WORDS, r, 2),
        pick(WORDS, r, 3),
        r
    )
}
fn title(r: u32) -> String {
    if r == 1 {
        return "Example – privacy-first analytics".into();
    }
    let mut w = pick(WORDS, r, 2).replace('-', " ");
    if let Some(c) = w.get(..1) {
        w = c.to_uppercase() + &w[1..];
    }
    format!(
        "{w} {} {} ({r}) | Example",
        pick(WORDS, r, 3),
        pick(WORDS, r, 4)
    )
}
fn hostname(r: u32) -> String {
    nth(
        &[
            "www.example.org",
            "blog.example.org",
            "docs.example.org",
            "shop.example.org",
        ],
        r,
    )
}
fn load_bucket(r: u32) -> String {
    nth(&["0.5-1s", "0-0.5s", "1-2s", "2-5s", "5-10s", "10s+"], r)
}
fn category(r: u32) -> String {
    format!(
        "{} {}",
        pick(WORDS, r, 5),
        pick(&["click", "video", "form", "menu", "scroll"], r, 6)
    )
}
fn event_action(r: u32) -> String {
    format!(
        "{} {}",
        pick(
            &["play", "pause", "submit", "open", "close", "share", "copy"],
            r,
            7
        ),
        pick(WORDS, r, 8)
    )
}
fn event_name(r: u32) -> String {
    format!("{}-{}-{r}", pick(WORDS, r, 9), pick(WORDS, r, 10))
}
fn outlink(r: u32) -> String {
    format!(
        "https://{}{}.example.net/{}/{r}",
        pick(WORDS, r, 11),
        r % 97,
        pick(WORDS, r, 12)
    )
}
fn download(r: u32) -> String {
    format!(
        "https://www.example.org/files/{}-{}-{r}.pdf",
        pick(WORDS, r, 13),
        pick(WORDS, r, 14)
    )
}
fn keyword(r: u32) -> String {
    if r <= 64 {
        return WORDS[r as usize - 1].replace('-', " ");
    }
    format!(
        "{} {} {}",
        pick(WORDS, r, 15),
        pick(WORDS, r, 16),
        if r > 4096 {
            r.to_string()
        } else {
            pick(WORDS, r, 17).into()
        }
    )
}
fn maybe_keyword(r: u32) -> String {
    if r == 1 {
        String::new()
    } else {
        keyword(r - 1)
    }
}
fn search_category(r: u32) -> String {
    nth(&["", "docs", "blog", "shop", "forum", "help"], r)
}
fn goal(r: u32) -> String {
    if r == 3 {
        "ecommerce".into()
    } else {
        r.to_string()
    }
}
fn channel(r: u32) -> String {
    nth(
        &["Direct", "Organic Search", "Referral", "Organic Social"],
        r,
    )
}
const ENGINES: &[&str] = &[
    "Google",
    "Bing",
    "DuckDuckGo",
    "Ecosia",
    "Yahoo!",
    "Qwant",
    "Startpage",
    "Brave",
];
const SOCIAL: &[&str] = &[
    "Facebook",
    "Twitter",
    "LinkedIn",
    "Reddit",
    "Mastodon",
    "YouTube",
    "Hacker News",
];
fn host(r: u32) -> String {
    format!(
        "{}{}.{}",
        pick(WORDS, r, 18),
        pick(WORDS, r, 19),
        pick(&["com", "org", "net", "de", "io", "co.uk", "fr"], r, 20)
    )
}
fn source(r: u32) -> String {
    match r {
        1 => String::new(),
        2..=9 => ENGINES[r as usize - 2].into(),
        10..=16 => SOCIAL[r as usize - 10].into(),
        _ => host(r),
    }
}
fn referrer_host(r: u32) -> String {
    match r {
        1 => String::new(),
        2..=9 => format!(
            "www.{}.com",
            ENGINES[r as usize - 2].to_lowercase().replace('!', "")
        ),
        _ => format!("www.{}", host(r)),
    }
}
fn campaign(r: u32) -> String {
    if r == 1 {
        String::new()
    } else {
        format!(
            "{}-{}-{r}",
            pick(&["spring", "summer", "autumn", "winter", "launch"], r, 21),
            2020 + r % 7
        )
    }
}
fn utm_source(r: u32) -> String {
    if r == 1 {
        String::new()
    } else {
        nth(
            &[
                "newsletter",
                "twitter",
                "mastodon",
                "partner",
                "linkedin",
                "ads",
            ],
            r - 1,
        )
    }
}
fn utm_medium(r: u32) -> String {
    if r == 1 {
        String::new()
    } else {
        nth(&["email", "social", "cpc", "banner", "referral"], r - 1)
    }
}
fn utm_content(r: u32) -> String {
    if r == 1 {
        String::new()
    } else {
        format!("{}-{r}", pick(WORDS, r, 22))
    }
}
const COUNTRIES: &[&str] = &[
    "us", "de", "gb", "fr", "in", "nl", "ca", "br", "es", "it", "pl", "se", "au", "ch", "at", "jp",
    "be", "ru", "cn", "mx", "dk", "no", "fi", "cz", "pt", "ie", "tr", "ua", "ar", "id",
];
fn country(r: u32) -> String {
    let letters = |x: u32| -> String {
        let a = (b'a' + (x % 26) as u8) as char;
        let b = (b'a' + (x / 26 % 26) as u8) as char;
        format!("{a}{b}")
    };
    COUNTRIES
        .get(r as usize - 1)
        .map_or_else(|| letters(r * 7 + 3), |c| c.to_string())
}
fn region(r: u32) -> String {
    format!(
        "{}-{}",
        country(1 + r % 40).to_uppercase(),
        1 + mix(u64::from(r)) % 99
    )
}
fn city(r: u32) -> String {
    let mut a = pick(WORDS, r, 23).replace('-', " ");
    if let Some(c) = a.get(..1) {
        a = c.to_uppercase() + &a[1..];
    }
    format!(
        "{a} {}",
        pick(
            &[
                "City", "Town", "upon Sea", "Heights", "Park", "Valley", "Springs"
            ],
            r,
            24
        )
    )
}
const BROWSERS: &[&str] = &[
    "Chrome",
    "Safari",
    "Firefox",
    "Microsoft Edge",
    "Samsung Browser",
    "Opera",
    "Chrome Mobile",
    "Mobile Safari",
    "Firefox Mobile",
    "Brave",
    "Vivaldi",
    "UC Browser",
    "Yandex Browser",
    "DuckDuckGo Privacy Browser",
    "Chrome Webview",
    "Ecosia",
    "Opera Mobile",
    "Silk",
    "Whale",
    "Huawei Browser",
    "MIUI Browser",
    "Edge Mobile",
    "Firefox Focus",
    "SeaMonkey",
    "Pale Moon",
    "Waterfox",
    "Konqueror",
    "Epiphany",
    "Falkon",
    "Internet Explorer",
];
fn browser(r: u32) -> String {
    nth(BROWSERS, r)
}
fn browser_version(r: u32) -> String {
    let (b, k) = (BROWSERS[(r as usize - 1) % 12], (r as usize - 1) / 12);
    format!("{b}\u{1f}{}", 142 - k % 100)
}
/// A browser version alone, newest (most used) first.
fn version(r: u32) -> String {
    let k = r - 1;
    if k < 120 {
        (142 - k).to_string()
    } else {
        format!("{}.{}", 142 - k % 120, k / 120)
    }
}
const OSES: &[&str] = &[
    "Windows",
    "Android",
    "iOS",
    "Mac",
    "GNU/Linux",
    "Chrome OS",
    "iPadOS",
    "Ubuntu",
    "Fedora",
    "HarmonyOS",
    "FreeBSD",
    "Debian",
    "Tizen",
    "KaiOS",
    "OpenBSD",
];
fn os(r: u32) -> String {
    nth(OSES, r)
}
fn os_version(r: u32) -> String {
    let (o, k) = (OSES[(r as usize - 1) % 6], (r as usize - 1) / 6);
    format!("{o}\u{1f}{}.{}", 17 - k % 12, k / 12)
}
fn os_version_alone(r: u32) -> String {
    let k = r - 1;
    format!("{}.{}", 18 - k % 18, k / 18)
}
fn device(r: u32) -> String {
    nth(
        &[
            "desktop",
            "smartphone",
            "tablet",
            "phablet",
            "tv",
            "console",
        ],
        r,
    )
}
const SCREENS: &[&str] = &[
    "1920x1080",
    "390x844",
    "1366x768",
    "1536x864",
    "414x896",
    "2560x1440",
    "1440x900",
    "375x812",
    "1280x720",
    "412x915",
    "3840x2160",
    "1600x900",
];
fn screen(r: u32) -> String {
    SCREENS.get(r as usize - 1).map_or_else(
        || format!("{}x{}", 320 + mix(u64::from(r)) % 3500, 480 + r % 2000),
        |s| s.to_string(),
    )
}
fn language(r: u32) -> String {
    let base = [
        "en-us", "de-de", "en-gb", "fr-fr", "es-es", "nl-nl", "it-it", "pt-br", "pl-pl", "ja-jp",
    ];
    base.get(r as usize - 1).map_or_else(
        || format!("{}-{}", country(r % 60 + 1), country(r / 3 + 1)),
        |s| s.to_string(),
    )
}
fn visitor_type(r: u32) -> String {
    nth(&["new", "returning", "unknown"], r)
}

/// The key of value rank `r` of dimension `dim` in `bench_values`.
fn value_key(dim: u32, r: u32) -> u64 {
    (u64::from(dim) << 32) | u64::from(r)
}

/// The pool of a site with `pv` page views a day: the full pool scaled by the square root of
/// its traffic (a blog of 100 page views a day has hundreds of pages, not 200,000).
fn pool_of(spec: &DimSpec, pv: f64) -> u32 {
    let scaled = (f64::from(spec.pool) * (pv / FULL_POOL_PV).sqrt()).round() as u32;
    scaled.clamp(spec.pool.min(3), spec.pool)
}

/// `sum(r^-s)` for `r` in `1..=pool`.
fn harmonic(pool: u32, s: f64) -> f64 {
    (1..=pool).map(|r| f64::from(r).powf(-s)).sum()
}

/// Page views a day of each site: the big one, then the small ones log-spaced 100..5,000.
fn sites(opts: &Opts) -> Vec<(u32, f64)> {
    let mut out = vec![(1, opts.pv_per_day)];
    let n = opts.small_sites;
    for i in 0..n {
        let t = if n > 1 {
            f64::from(i) / f64::from(n - 1)
        } else {
            0.0
        };
        out.push((2 + i, (100.0 * 50f64.powf(t)).round()));
    }
    out
}

fn config_for(url: &str, db: &str, opts: &Opts) -> Result<Config> {
    let mut text = format!(
        "listen = \"127.0.0.1:0\"\n\n[clickhouse]\nurl = \"{url}\"\ndatabase = \"{db}\"\n\n\
         [[sites]]\nid = 1\nname = \"Big\"\ndomains = [\"example.org\", \"*.example.org\"]\n\
         timezone = \"{BIG_TZ}\"\n"
    );
    for (id, _) in sites(opts).into_iter().skip(1) {
        text.push_str(&format!(
            "\n[[sites]]\nid = {id}\nname = \"Small {id}\"\ndomains = [\"small{id}.example.net\"]\n"
        ));
    }
    let table: toml::Table = text.parse().context("bench config is TOML")?;
    Ok(Config::from_table(table)?)
}

// ---------------------------------------------------------------------------------------------
// SQL of the generator (ClickHouse 18.16 and current releases: no CTE, no window functions)

/// Bench-only tables: the values (`Join` engine, looked up with `joinGet`), the generator's
/// parameters per site and dimension, and the sites' traffic.
const SETUP: &[&str] = &[
    "CREATE TABLE bench_values (key UInt64, value String) ENGINE = Join(ANY, LEFT, key)",
    "CREATE TABLE bench_spec (site_id UInt32, dim UInt32, dimension String, kind UInt8, \
     pool UInt32, s Float64, norm Float64) ENGINE = Memory",
    "CREATE TABLE bench_sites (site_id UInt32, pv Float64) ENGINE = Memory",
];

#[derive(Row, Serialize)]
struct ValueRow {
    key: u64,
    value: String,
}

#[derive(Row, Serialize)]
struct SpecRow {
    site_id: u32,
    dim: u32,
    dimension: String,
    kind: u8,
    pool: u32,
    s: f64,
    norm: f64,
}

#[derive(Row, Serialize)]
struct SiteRow {
    site_id: u32,
    pv: f64,
}

/// The day's traffic factor of a site (`day` and `site_id` in scope): weekends lower, a slow
/// wave over weeks, and a few percent of noise. Averages about 1.
const DAY_FACTOR: &str = "(if(toDayOfWeek(day) >= 6, 0.8, 1.08) \
     * (1 + 0.1 * sin(toUInt32(day) / 23.0)) \
     * (0.95 + 0.1 * (intHash32(site_id * 65537 + toUInt32(day)) % 1000) / 1000))";

/// `agg_daily` of one day for the sites in a bound array. Binds: the date, the site ids.
fn daily_sql() -> String {
    format!(
        "INSERT INTO agg_daily (day, site_id, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, toUInt32(round(visits * (0.72 + 0.06 * u))), toUInt32(visits), \
         toUInt32(round(pv * f)), toUInt32(round(pv * f * (1.15 + 0.06 * u))), \
         toUInt32(round(visits * (0.38 + 0.1 * u))), toUInt64(round(visits * (110 + 60 * u))) \
         FROM (SELECT toDate(?) AS day, site_id, pv, {DAY_FACTOR} AS f, round(pv * 0.4 * f) AS visits, \
               (intHash32(site_id * 7 + toUInt32(day)) % 1000) / 1000 AS u \
               FROM bench_sites WHERE has(?, site_id))"
    )
}

/// Shares of a day's traffic per local hour (sum 1): quiet nights, a day-time hump.
fn hour_weights() -> Vec<f64> {
    let raw: Vec<f64> = (0..24)
        .map(|h| {
            let x = std::f64::consts::PI * (f64::from(h) - 6.0) / 16.0;
            0.12 + if (6..22).contains(&h) { x.sin() } else { 0.0 }
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter().map(|w| w / total).collect()
}

/// `agg_hourly` of one day: 24 rows per site. Visitors per hour add up to more than the day's
/// (a visitor counts in every hour they did something in). Binds: the date, the site ids.
fn hourly_sql() -> String {
    let weights: Vec<String> = hour_weights().iter().map(|w| format!("{w:.6}")).collect();
    format!(
        "INSERT INTO agg_hourly (day, site_id, hour, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, toUInt8(hour), toUInt32(round(visits * w * (0.8 + 0.1 * u))), toUInt32(round(visits * w)), \
         toUInt32(round(pv * f * w)), toUInt32(round(pv * f * w * 1.18)), \
         toUInt32(round(visits * w * (0.38 + 0.1 * u))), toUInt64(round(visits * w * (110 + 60 * u))) \
         FROM (SELECT toDate(?) AS day, site_id, pv, {DAY_FACTOR} AS f, round(pv * 0.4 * f) AS visits, hour, \
               [{}][hour + 1] AS w, (intHash32(site_id * 11 + toUInt32(day) + hour) % 1000) / 1000 AS u \
               FROM bench_sites ARRAY JOIN range(24) AS hour WHERE has(?, site_id))",
        weights.join(", ")
    )
}

/// `agg_breakdown` of one day: for each site and dimension, every rank of the site's pool
/// gets `n = floor(λ·(0.8..1.2) + u)` counts (`λ` the rank's Zipf share of the day's total),
/// and a row where `n > 0`. Visits, visitors, bounces and durations follow the dimension's
/// kind as in the rollup: per-visit values count visits (page views and actions per visit),
/// per-page values count page views (a visit seeing a page twice counts once as a visit),
/// other actions are never bounces. Per-value rates (pages per visit, bounce rate, duration)
/// are fixed per value, so a value looks alike every day. Binds: the date, the site ids.
fn breakdown_sql() -> String {
    format!(
        "INSERT INTO agg_breakdown (day, site_id, dimension, value, visitors, visits, pageviews, events, bounces, duration) \
         SELECT day, site_id, dimension, joinGet('bench_values', 'value', bitOr(bitShiftLeft(toUInt64(dim), 32), r)), \
         toUInt32(greatest(1, round(visits * (0.7 + 0.2 * v2)))), toUInt32(visits), \
         toUInt32(multiIf(kind = 0, round(n * (1.5 + 2 * v1)), kind = 1, n, 0)), \
         toUInt32(multiIf(kind = 0, round(n * (1.8 + 2.4 * v1)), n)), \
         toUInt32(if(kind = 2, 0, round(visits * (0.2 + 0.5 * v3)))), \
         toUInt64(round(visits * (20 + 400 * v4))) \
         FROM (SELECT toDate(?) AS day, site_id, dim, dimension, kind, r, \
               cityHash64(toUInt32(day), site_id, dim, r) AS h, \
               (h % 1000003) / 1000003 AS u1, (intHash64(h) % 1000003) / 1000003 AS u2, \
               toUInt32(floor(norm * {DAY_FACTOR} * pow(r, -s) * (0.8 + 0.4 * u1) + u2)) AS n, \
               cityHash64(site_id, dim, r) AS hv, \
               (hv % 1009) / 1009 AS v1, (hv % 1013) / 1013 AS v2, (hv % 1019) / 1019 AS v3, (hv % 1021) / 1021 AS v4, \
               if(kind = 1 OR kind = 2, greatest(1, round(n * (0.6 + 0.3 * u2))), n) AS visits \
               FROM bench_spec ARRAY JOIN arrayMap(x -> toUInt32(x + 1), range(pool)) AS r \
               WHERE has(?, site_id)) \
         WHERE n > 0"
    )
}

// ---------------------------------------------------------------------------------------------
// Raw hits for the rollup

/// SQL of a value of `dim` drawn with its Zipf popularity from the uniform `u` (0..1), by the
/// inverse of the continuous approximation of its distribution, ranks from `first` on.
fn draw(dim: &str, u: &str, first: u32) -> Result<String> {
    let i = spec_index(dim)?;
    let spec = &DIM_SPECS[i as usize];
    let s = if (spec.s - 1.0).abs() < 1e-3 {
        1.001
    } else {
        spec.s
    };
    let (lo, hi) = (f64::from(first), f64::from(spec.pool));
    let (a, b) = (lo.powf(1.0 - s), hi.powf(1.0 - s));
    Ok(format!(
        "joinGet('bench_values', 'value', toUInt64({} + least({}, toUInt32(floor(pow({a:.12} + {u} * ({b:.12} - {a:.12}), {:.12}))))))",
        u64::from(i) << 32,
        spec.pool,
        1.0 / (1.0 - s)
    ))
}

/// `INSERT` of `hits` raw hits of site 1 between two Unix times. Binds: the site id, a salt,
/// the first second, the day's length, the last second, the number of hits.
///
/// Each visitor key has 1 to 20 hits (mean about 3.3); gaps between them are seconds to
/// minutes, and 7% are longer than the 30 minute timeout, so some visitors come back for a
/// second visit. The first hit of a visit is a page view; the others are page views (62%),
/// pings (16%), events (11%), outlinks, searches, downloads, goals and content interactions.
/// Where the visit came from is drawn per visit (direct 40%, search 30%, websites 18%,
/// social 8%, campaigns 4%), who and with what device per visitor key.
fn hits_sql(target: &str) -> Result<String> {
    let u = |salt: u32, of: &str| format!("((intHash64({of} + {salt}) % 1000000) / 1000000.)");
    let uv = |salt| u(salt, "visitor_key");
    let us = |salt| u(salt, "hs");
    let uh = |salt| u(salt, "hk");
    let page_rank = {
        let spec = &DIM_SPECS[spec_index("event:page")? as usize];
        let (a, b) = (1f64, f64::from(spec.pool).powf(1.0 - spec.s));
        format!(
            "least({}, toUInt32(floor(pow({a} + {} * ({b:.12} - {a}), {:.12}))))",
            spec.pool,
            uh(1),
            1.0 / (1.0 - spec.s)
        )
    };
    let page_dim = u64::from(spec_index("event:page")?) << 32;
    let title_dim = u64::from(spec_index("event:title")?) << 32;
    let engines = ENGINES
        .iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let social = SOCIAL
        .iter()
        .map(|e| format!("'{e}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(format!(
        "INSERT INTO {target} (ts, site_id, kind, visitor_key, pv_id, url, title, referrer, target_url, \
           new_visit, visit_count, resolution, lang, event_category, event_action, event_name, \
           search_keyword, search_category, is_bot, country, region, city, browser, browser_version, \
           os, os_version, device, referrer_type, referrer_name, referrer_keyword, campaign_name, \
           campaign_source, campaign_medium, campaign_keyword, campaign_content, visitor_type, goal_id, \
           revenue, pf_net, pf_srv) \
         SELECT toDateTime(t), site, kind, visitor_key, substring(hex(hk), 1, 6), \
           concat('https://', host, page), title, referrer, \
           multiIf(kind = 'outlink', {outlink}, kind = 'download', {download}, ''), \
           first, toUInt32(1 + sess), {screen}, {lang}, \
           if(kind = 'event', {category}, ''), if(kind = 'event', {action}, ''), if(kind = 'event', {name}, ''), \
           if(kind = 'search', {keyword}, ''), if(kind = 'search' AND {us3} < 0.5, {scat}, ''), 0, \
           {country}, {region}, {city}, {browser}, toString(110 + intHash32(visitor_key) % 33), \
           {os}, toString(10 + intHash32(visitor_key) % 8), {device}, \
           rtype, multiIf(rtype = 'search', engine, rtype = 'social', net, rtype = 'website', rhost, rtype = 'campaign', cname, ''), \
           if(rtype = 'search' AND {us4} < 0.1, {keyword_s}, ''), \
           if(rtype = 'campaign', cname, ''), if(rtype = 'campaign', {csource}, ''), if(rtype = 'campaign', {cmedium}, ''), \
           '', '', if({uv9} < 0.6, 'new', 'returning'), \
           if(kind = 'goal', toUInt32(1 + intHash32(hk) % 10), 0), \
           if(kind = 'goal' AND {uh5} < 0.2, toNullable(round({uh6} * 200, 2)), NULL), \
           if(kind = 'pageview' AND {uh7} < 0.8, toNullable(toUInt32(10 + intHash32(hk) % 300)), NULL), \
           if(kind = 'pageview' AND {uh7} < 0.8, toNullable(toUInt32(50 + intHash64(hk) % 2500)), NULL) \
         FROM ( \
           SELECT *, \
             if(first, 'pageview', multiIf(x < 62, 'pageview', x < 78, 'ping', x < 89, 'event', x < 93, 'outlink', \
                x < 96, 'search', x < 98, 'download', x < 99, 'goal', 'content_interaction')) AS kind, \
             {hostname} AS host, \
             joinGet('bench_values', 'value', toUInt64({page_dim} + prank)) AS page, \
             joinGet('bench_values', 'value', toUInt64({title_dim} + prank)) AS title, \
             multiIf({us1} < 0.40, 'direct', {us1} < 0.70, 'search', {us1} < 0.88, 'website', {us1} < 0.96, 'social', 'campaign') AS rtype, \
             [{engines}][1 + toUInt32(floor(pow({us2}, 2.5) * {n_engines}))] AS engine, \
             [{social}][1 + toUInt32(floor(pow({us2}, 2) * {n_social}))] AS net, \
             {rhost} AS rhost, {cname} AS cname, \
             multiIf(rtype = 'search', concat('https://www.', lower(replaceAll(engine, '!', '')), '.com/'), \
                     rtype = 'social', concat('https://', lower(replaceAll(net, ' ', '')), '.com/some/post'), \
                     rtype = 'website', concat('https://', rhost, '/', toString(intHash32(hs) % 1000)), \
                     rtype = 'campaign', concat('https://www.example.org/??mtm_campaign=', cname), '') AS referrer \
           FROM ( \
             SELECT site, visitor_key, least(last, t0 + off) AS t, first, sess, hk, \
               cityHash64(visitor_key, sess) AS hs, hk % 100 AS x, {page_rank} AS prank \
             FROM ( \
               SELECT ? AS site, cityHash64(?, number) AS visitor_key, \
                 toUInt32(1 + least(19, floor(-log({uv1} + 0.000001) * 2.7))) AS h, \
                 arrayMap(k -> cityHash64(visitor_key, k), range(h)) AS hks, \
                 arrayMap((hh, k) -> if(k = 0, 0, if(hh % 100 < 7, 1801 + hh % 7200, 3 + intHash32(hh) % 240)), hks, range(h)) AS gaps, \
                 arrayMap((g, k) -> k = 0 OR g > 1800, gaps, range(h)) AS firsts, \
                 toUInt32(?) + toUInt32(? * if({uv2} < 0.65, 0.30 + 0.58 * {uv3}, {uv3})) AS t0, toUInt32(?) AS last \
               FROM numbers(toUInt64(? / 3.0 + 1000)) \
             ) ARRAY JOIN arrayCumSum(gaps) AS off, firsts AS first, arrayCumSum(firsts) AS sess, hks AS hk \
             LIMIT ? \
           ) \
         )",
        outlink = draw("event:outlink", &uh(2), 1)?,
        download = draw("event:download", &uh(2), 1)?,
        screen = draw("visit:screen", &uv(4), 1)?,
        lang = draw("visit:language", &uv(5), 1)?,
        category = draw("event:category", &uh(2), 1)?,
        action = draw("event:action", &uh(3), 1)?,
        name = draw("event:name", &uh(4), 1)?,
        keyword = draw("event:search", &uh(2), 1)?,
        us3 = us(3),
        scat = draw("event:search_category", &uh(3), 2)?,
        country = draw("visit:country", &uv(6), 1)?,
        region = draw("visit:region", &uv(7), 1)?,
        city = draw("visit:city", &uv(8), 1)?,
        browser = draw("visit:browser", &uv(10), 1)?,
        os = draw("visit:os", &uv(11), 1)?,
        device = draw("visit:device", &uv(12), 1)?,
        us4 = us(4),
        keyword_s = draw("event:search", &us(5), 1)?,
        csource = draw("visit:utm_source", &us(6), 2)?,
        cmedium = draw("visit:utm_medium", &us(7), 2)?,
        uv9 = uv(9),
        uh5 = uh(5),
        uh6 = uh(6),
        uh7 = uh(7),
        hostname = draw("event:hostname", &us(8), 1)?,
        us1 = us(1),
        us2 = us(2),
        n_engines = ENGINES.len(),
        n_social = SOCIAL.len(),
        rhost = draw("visit:referrer", &us(9), 10)?,
        cname = draw("visit:utm_campaign", &us(10), 2)?,
        uv1 = uv(1),
        uv2 = uv(2),
        uv3 = uv(3),
    ))
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// With `REPORTS_SQL_DIR` set, the statements the bench itself sends (binds rendered) are
/// kept in order and written to `DIR/reports.sql` at the end, to be run on a current ClickHouse
/// (chdb) as well; the engine's and the rollup's own statements are `tally`'s, checked there by
/// `tests/modern/check_schema.py`.
static SQL_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn rec(q: clickhouse::query::Query) -> clickhouse::query::Query {
    if std::env::var_os("REPORTS_SQL_DIR").is_some()
        && let Ok(mut log) = SQL_LOG.lock()
    {
        let sql = q.sql_display().to_string();
        if !log.contains(&sql) {
            log.push(sql);
        }
    }
    q
}

fn write_sql_log() -> Result<()> {
    let Some(dir) = std::env::var_os("REPORTS_SQL_DIR") else {
        return Ok(());
    };
    let log = SQL_LOG.lock().map_err(|_| anyhow!("SQL log poisoned"))?;
    let path = std::path::Path::new(&dir).join("reports.sql");
    std::fs::write(&path, log.join(";\n\n") + ";\n")?;
    println!("{} statements written to {}", log.len(), path.display());
    Ok(())
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Median and p90 (nearest rank) of durations, in milliseconds.
fn stats(times: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    if ms.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = ms.len();
    let median = if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    };
    let p90 = ms[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1];
    (median, p90)
}

#[derive(Row, Deserialize)]
struct PartsRow {
    table: String,
    bytes: u64,
    rows: u64,
    parts: u64,
}

/// Bytes on disk, rows and active parts of the aggregate tables.
async fn storage(c: &Client, db: &str) -> Result<BTreeMap<String, (u64, u64, u64)>> {
    let rows = rec(c
        .query(
            "SELECT table, sum(bytes_on_disk) AS bytes, sum(rows) AS rows, count() AS parts \
             FROM system.parts WHERE active AND database = ? \
             AND has(['agg_daily', 'agg_hourly', 'agg_breakdown', 'agg_top', 'agg_top_week'], table) GROUP BY table",
        )
        .bind(db))
    .fetch_all::<PartsRow>()
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.table, (r.bytes, r.rows, r.parts)))
        .collect())
}

#[derive(Row, Deserialize)]
struct LoggedQuery {
    query: String,
    n: u64,
    ms: f64,
    read_rows: u64,
    read_bytes: u64,
    memory: u64,
}

/// The statements logged since `since` (Unix seconds) that are not in `seen`, with how often
/// and how long ClickHouse took (median). Only clients with `log_queries = 1` are logged.
async fn logged(c: &Client, since: u32, seen: &mut HashSet<String>) -> Result<Vec<LoggedQuery>> {
    c.query("SYSTEM FLUSH LOGS").execute().await?;
    let rows = c
        .query(
            "SELECT query, count() AS n, toFloat64(median(query_duration_ms)) AS ms, \
             max(read_rows) AS read_rows, max(read_bytes) AS read_bytes, max(memory_usage) AS memory \
             FROM system.query_log WHERE type = 2 AND event_time >= toDateTime(?) \
             GROUP BY query ORDER BY min(query_start_time), ms DESC",
        )
        .bind(since)
        .fetch_all::<LoggedQuery>()
        .await?;
    Ok(rows
        .into_iter()
        .filter(|r| seen.insert(r.query.clone()))
        .collect())
}

/// A logged statement as it can be sent again: without the `FORMAT` the client appended, with
/// literal question marks escaped from the client's binding.
fn resendable(query: &str) -> String {
    let q = query.trim_end();
    let q = match q.rfind(" FORMAT ") {
        Some(i) if !q[i + 8..].contains(char::is_whitespace) => &q[..i],
        _ => q,
    };
    q.replace('?', "??")
}

/// Times `sql` alone `runs` times after 2 warm-ups, fetching the whole result.
async fn time_sql(c: &Client, sql: &str, runs: usize) -> Result<(Vec<Duration>, usize)> {
    let mut times = Vec::with_capacity(runs);
    let mut size = 0;
    for i in 0..runs + 2 {
        let began = Instant::now();
        let bytes = c.query(sql).fetch_bytes("TSV")?.collect().await?;
        if i >= 2 {
            times.push(began.elapsed());
        }
        size = bytes.len();
    }
    Ok((times, size))
}

fn short(sql: &str, n: usize) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() <= n {
        one
    } else {
        one.chars().take(n).collect::<String>() + "…"
    }
}

// ---------------------------------------------------------------------------------------------
// The run

struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
}

impl Report {
    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        println!("{line}");
        self.lines.push(line);
    }
    fn fail(&mut self, what: impl Into<String>) {
        let what = what.into();
        println!("CHECK FAILED: {what}");
        self.failures.push(what);
    }
}

fn main() -> ExitCode {
    let opts = match Opts::from_env() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ch = common::clickhouse();
    let mut report = Report {
        lines: Vec::new(),
        failures: Vec::new(),
    };
    let outcome = rt.block_on(run(&opts, ch.url(), &mut report));
    drop(ch);
    match outcome {
        Err(e) => {
            eprintln!("reports bench: {e:#}");
            ExitCode::FAILURE
        }
        Ok(()) if !report.failures.is_empty() => {
            eprintln!("FAILED: {}", report.failures.join("; "));
            ExitCode::FAILURE
        }
        Ok(()) => ExitCode::SUCCESS,
    }
}

async fn run(opts: &Opts, url: &str, out: &mut Report) -> Result<()> {
    let names: HashSet<&str> = DIMENSIONS.iter().map(|d| d.name).collect();
    let specs: HashSet<&str> = DIM_SPECS.iter().map(|d| d.name).collect();
    if names != specs {
        bail!(
            "the generator's dimensions differ from tally's: missing {:?}, extra {:?}",
            names.difference(&specs).collect::<Vec<_>>(),
            specs.difference(&names).collect::<Vec<_>>()
        );
    }
    let sites = sites(opts);
    let small_pv: f64 = sites.iter().skip(1).map(|s| s.1).sum();
    out.say(format!(
        "reports bench ({}): {} days, big site {} page views/day, {} small sites ({} page views/day together), \
         {} runs per query; {} CPUs; loadavg before: {}",
        if opts.bench { "bench" } else { "smoke round" },
        opts.days,
        opts.pv_per_day,
        opts.small_sites,
        small_pv,
        opts.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    ));

    let config = config_for(url, DB, opts)?;
    tally::lifecycle::migrate_on(url, &config)
        .await
        .context("migrations")?;
    let c =
        tally::store::client(url, &config.clickhouse).with_setting("max_execution_time", "1800");

    // The generator's tables.
    let began = Instant::now();
    for sql in SETUP {
        rec(c.query(sql))
            .execute()
            .await
            .with_context(|| sql.to_string())?;
    }
    let mut values = c.insert::<ValueRow>("bench_values").await?;
    let mut n_values = 0u64;
    for (i, spec) in DIM_SPECS.iter().enumerate() {
        let pool = pool_of(spec, opts.pv_per_day.max(small_pv)).max(pool_of(spec, FULL_POOL_PV));
        let mut seen = HashSet::with_capacity(pool as usize);
        for r in 1..=pool {
            let mut v = (spec.value)(r);
            if !seen.insert(v.clone()) {
                v = format!("{v}~{r}");
                seen.insert(v.clone());
            }
            values
                .write(&ValueRow {
                    key: value_key(i as u32, r),
                    value: v,
                })
                .await?;
            n_values += 1;
        }
    }
    values.end().await?;
    let mut spec_rows = c.insert::<SpecRow>("bench_spec").await?;
    let mut site_rows = c.insert::<SiteRow>("bench_sites").await?;
    for &(site_id, pv) in &sites {
        site_rows.write(&SiteRow { site_id, pv }).await?;
        let visits = pv * 0.4;
        for (i, spec) in DIM_SPECS.iter().enumerate() {
            let pool = pool_of(spec, pv);
            let total = spec.share * if spec.kind == Kind::Visit { visits } else { pv };
            spec_rows
                .write(&SpecRow {
                    site_id,
                    dim: i as u32,
                    dimension: spec.name.into(),
                    kind: spec.kind as u8,
                    pool,
                    s: spec.s,
                    norm: total / harmonic(pool, spec.s),
                })
                .await?;
        }
    }
    spec_rows.end().await?;
    site_rows.end().await?;
    out.say(format!(
        "generator tables: {n_values} distinct values over {} dimensions, {:.1} s",
        DIM_SPECS.len(),
        secs(began.elapsed())
    ));

    // 1. Aggregates, day by day: the big site, then the small ones.
    let end = tally::time::local_date(chrono_tz::UTC, tally::time::now_unix())
        .pred_opt()
        .ok_or_else(|| anyhow!("no yesterday"))?;
    let first = end - chrono::Days::new(u64::from(opts.days - 1));
    let days: Vec<NaiveDate> = first.iter_days().take(opts.days as usize).collect();
    let (daily, hourly, breakdown) = (daily_sql(), hourly_sql(), breakdown_sql());
    // The top lists, by the rollup's own statements, from the day's breakdown rows.
    let [lists, rests] = tally::rollup::sql::top_list_inserts(
        "agg_top",
        "agg_breakdown",
        "day = toDate(?) AND has(?, site_id)",
    );
    let big: Vec<u32> = vec![1];
    let small: Vec<u32> = sites.iter().skip(1).map(|s| s.0).collect();
    let mut phases = Vec::new();
    for (label, ids, n_sites) in [
        ("big site", &big, 1u64),
        ("small sites", &small, small.len() as u64),
    ] {
        if ids.is_empty() {
            continue;
        }
        let began = Instant::now();
        for day in &days {
            let d = day.format("%Y-%m-%d").to_string();
            for sql in [&daily, &hourly, &breakdown, &lists, &rests] {
                let q = c.query(sql).bind(&d).bind(ids);
                let q = if day == &days[0] { rec(q) } else { q };
                q.execute().await.with_context(|| short(sql, 80))?;
            }
        }
        let took = began.elapsed();
        let sizes = storage(&c, DB).await?;
        out.say(format!(
            "generated {label}: {} days in {:.1} s ({:.2} s/day)",
            days.len(),
            secs(took),
            secs(took) / days.len() as f64
        ));
        phases.push((label, n_sites, sizes));
    }

    // The final weeks' top lists, summed as `tally serve` sums them.
    let began = Instant::now();
    let weeks = tally::rollup::Rollup::new(c.clone(), &config)
        .compact_weeks(tally::time::now_unix())
        .await?;
    out.say(format!(
        "summed {} final weeks of top lists into agg_top_week in {:.1} s",
        weeks.len(),
        secs(began.elapsed())
    ));
    if let Some((_, _, sizes)) = phases.last_mut() {
        *sizes = storage(&c, DB).await?;
    }

    // 2. Storage per site-day.
    out.say("\nstorage (system.parts, bytes on disk of active parts):".to_string());
    out.say(format!(
        "{:<14} {:<13} {:>12} {:>12} {:>6} {:>14} {:>12}",
        "phase", "table", "rows", "bytes", "parts", "bytes/site-day", "rows/site-day"
    ));
    let mut before: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    for (label, n_sites, sizes) in &phases {
        let site_days = (*n_sites * days.len() as u64).max(1) as f64;
        let mut total = (0u64, 0u64);
        for (table, &(bytes, rows, parts)) in sizes {
            let (b0, r0, _) = before.get(table).copied().unwrap_or_default();
            let (db, dr) = (bytes.saturating_sub(b0), rows.saturating_sub(r0));
            total.0 += db;
            total.1 += dr;
            out.say(format!(
                "{label:<14} {table:<13} {dr:>12} {db:>12} {parts:>6} {:>14.0} {:>12.1}",
                db as f64 / site_days,
                dr as f64 / site_days
            ));
        }
        out.say(format!(
            "{label:<14} {:<13} {:>12} {:>12} {:>6} {:>14.0} {:>12.1}",
            "all",
            total.1,
            total.0,
            "",
            total.0 as f64 / site_days,
            total.1 as f64 / site_days
        ));
        before = sizes.clone();
    }
    let began = Instant::now();
    for table in tally::prune::AGGREGATE_TABLES {
        rec(c.query(&format!("OPTIMIZE TABLE {table} FINAL")))
            .execute()
            .await?;
    }
    let merged = storage(&c, DB).await?;
    let total_bytes: u64 = merged.values().map(|v| v.0).sum();
    let total_rows: u64 = merged.values().map(|v| v.1).sum();
    out.say(format!(
        "after OPTIMIZE FINAL ({:.1} s): {} rows, {} bytes ({:.1} MB) in {} parts; {:.0} bytes per site-day over all {} sites",
        secs(began.elapsed()),
        total_rows,
        total_bytes,
        total_bytes as f64 / 1e6,
        merged.values().map(|v| v.2).sum::<u64>(),
        total_bytes as f64 / (sites.len() * days.len()) as f64,
        sites.len()
    ));
    describe_data(&c, &days, out).await?;

    // 3. Queries.
    queries(opts, url, &config, &c, &days, out).await?;
    breakdown_anatomy(opts, &c, &days, out).await?;

    // 4. Rollup of one day.
    rollup(
        opts,
        url,
        &c,
        *days.last().ok_or_else(|| anyhow!("no days"))?,
        out,
    )
    .await?;

    out.say(format!("\nloadavg after: {}", loadavg()));
    write_sql_log()
}

#[derive(Row, Deserialize)]
struct DimCount {
    dimension: String,
    per_day: f64,
    total: u64,
}

/// What the generated data looks like: distinct values per day and over all days per
/// dimension for the big site; and every dimension must be there.
async fn describe_data(c: &Client, days: &[NaiveDate], out: &mut Report) -> Result<()> {
    let rows = rec(c
        .query(
            "SELECT dimension, avg(n) AS per_day, any(total) AS total FROM ( \
               SELECT dimension, day, count() AS n FROM agg_breakdown WHERE site_id = 1 GROUP BY dimension, day \
             ) AS daily_counts ANY LEFT JOIN ( \
               SELECT dimension, uniqExact(value) AS total FROM agg_breakdown WHERE site_id = 1 GROUP BY dimension \
             ) AS totals USING dimension GROUP BY dimension ORDER BY per_day DESC",
        ))
        .fetch_all::<DimCount>()
        .await?;
    out.say(format!(
        "\nbig site, distinct values per dimension (average per day / over all {} days):",
        days.len()
    ));
    let mut line = String::new();
    for r in &rows {
        line.push_str(&format!("{} {:.0}/{}; ", r.dimension, r.per_day, r.total));
    }
    out.say(line.trim_end_matches("; ").to_string());
    let present: HashSet<&str> = rows.iter().map(|r| r.dimension.as_str()).collect();
    for d in DIMENSIONS {
        if !present.contains(d.name) {
            out.fail(format!("no agg_breakdown rows for {}", d.name));
        }
    }
    Ok(())
}

/// One query scenario: the Stats API body, and the statement a plain reading of the
/// aggregates would send (binds: first date, last date).
struct Scenario {
    name: &'static str,
    body: serde_json::Value,
    plain: &'static str,
}

#[derive(Row, Deserialize)]
struct Totals {
    visitors: u64,
    visits: u64,
    pageviews: u64,
    days: u64,
    pages: u64,
}

async fn queries(
    opts: &Opts,
    url: &str,
    config: &Config,
    c: &Client,
    days: &[NaiveDate],
    out: &mut Report,
) -> Result<()> {
    let (from, to) = (
        days[0].format("%Y-%m-%d").to_string(),
        days[days.len() - 1].format("%Y-%m-%d").to_string(),
    );
    let range = serde_json::json!([from, to]);
    let scenarios = [
        Scenario {
            name: "summary",
            body: serde_json::json!({"site_id": "1", "metrics": ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"], "date_range": range}),
            plain: "SELECT sum(visitors), sum(visits), sum(pageviews), round(sum(pageviews) / sum(visits), 2), \
                    round(100 * sum(bounces) / sum(visits)), round(sum(duration) / sum(visits)) \
                    FROM agg_daily WHERE site_id = 1 AND day >= toDate(?) AND day <= toDate(?)",
        },
        Scenario {
            name: "timeseries",
            body: serde_json::json!({"site_id": "1", "metrics": ["visitors", "visits", "pageviews"], "date_range": range, "dimensions": ["time:day"]}),
            plain: "SELECT day, sum(visitors), sum(visits), sum(pageviews) FROM agg_daily \
                    WHERE site_id = 1 AND day >= toDate(?) AND day <= toDate(?) GROUP BY day ORDER BY day",
        },
        Scenario {
            name: "breakdown",
            body: serde_json::json!({"site_id": "1", "metrics": ["visitors", "pageviews"], "date_range": range, "dimensions": ["event:page"], "order_by": [["visitors", "desc"]], "pagination": {"limit": 100}}),
            plain: "SELECT value, sum(visitors) AS v, sum(pageviews) FROM agg_breakdown \
                    WHERE site_id = 1 AND dimension = 'event:page' AND day >= toDate(?) AND day <= toDate(?) \
                    GROUP BY value ORDER BY v DESC, value LIMIT 100",
        },
    ];
    let truth = rec(c
        .query(
            "SELECT sum(visitors) AS visitors, sum(visits) AS visits, sum(pageviews) AS pageviews, count() AS days, \
             (SELECT uniqExact(value) FROM agg_breakdown WHERE site_id = 1 AND dimension = 'event:page') AS pages \
             FROM agg_daily WHERE site_id = 1",
        ))
        .fetch_one::<Totals>()
        .await?;

    // The engine's client logs its queries; ours does not (the server default).
    let engine_client =
        tally::store::client(url, &config.clickhouse).with_setting("log_queries", "1");
    let engine = Engine::new(engine_client, Arc::new(config.clone()));
    let mut seen = HashSet::new();
    out.say(format!(
        "\nqueries over {from}..{to} ({} days), {} runs after 2 warm-ups:",
        days.len(),
        opts.runs
    ));
    out.say(format!(
        "{:<11} {:<28} {:>10} {:>10}  notes",
        "query", "path", "median ms", "p90 ms"
    ));
    for sc in &scenarios {
        // Plain SQL first: the floor.
        let plain = c
            .query(sc.plain)
            .bind(&from)
            .bind(&to)
            .sql_display()
            .to_string();
        let _ = rec(c.query(&plain.replace('?', "??")));
        let (times, size) = time_sql(c, &plain, opts.runs).await?;
        let (m, p) = stats(&times);
        out.say(format!(
            "{:<11} {:<28} {m:>10.1} {p:>10.1}  {size} bytes of TSV",
            sc.name, "plain SQL (clickhouse crate)"
        ));

        tokio::time::sleep(Duration::from_millis(1100)).await;
        let since = tally::time::now_unix();
        let mut times = Vec::with_capacity(opts.runs);
        let mut answer = None;
        let mut refused = None;
        for i in 0..opts.runs + 2 {
            let began = Instant::now();
            match engine.run(&sc.body, &Access::All).await {
                Ok(a) => {
                    if i >= 2 {
                        times.push(began.elapsed());
                    }
                    answer = Some(a);
                }
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = refused {
            out.say(format!(
                "{:<11} {:<28} {:>10} {:>10}  refused: {} {}",
                sc.name, "Engine::run", "-", "-", e.status, e.message
            ));
            if e.message != "not built yet" {
                out.fail(format!(
                    "{}: the engine refused the query: {}",
                    sc.name, e.message
                ));
            }
            continue;
        }
        let (m, p) = stats(&times);
        let rows = answer.as_ref().map_or(0, |a| a.results.len());
        out.say(format!(
            "{:<11} {:<28} {m:>10.1} {p:>10.1}  {rows} result rows",
            sc.name, "Engine::run"
        ));
        if let Some(a) = &answer {
            check_answer(sc.name, a, &truth, out);
            if sc.name == "breakdown" {
                // Row for row what every breakdown row sums to (the top lists must agree).
                let want = c
                    .query(sc.plain)
                    .bind(&from)
                    .bind(&to)
                    .fetch_all::<(String, u64, u64)>()
                    .await?;
                let got: Vec<(String, u64, u64)> = a
                    .results
                    .iter()
                    .map(|r| {
                        let n = |i: usize| r.metrics.get(i).and_then(|v| v.as_u64()).unwrap_or(0);
                        (
                            r.dimensions.first().cloned().unwrap_or_default(),
                            n(0),
                            n(1),
                        )
                    })
                    .collect();
                if got != want {
                    out.fail(format!(
                        "breakdown: the engine's rows differ from the sums of agg_breakdown (first: {:?} vs {:?})",
                        got.first(),
                        want.first()
                    ));
                }
            }
        }
        for q in logged(c, since, &mut seen).await? {
            let sql = resendable(&q.query);
            let (times, size) = time_sql(c, &sql, opts.runs).await?;
            let (m, p) = stats(&times);
            out.say(format!(
                "{:<11} {:<28} {m:>10.1} {p:>10.1}  ClickHouse {:.0} ms median of {}, read {} rows / {:.1} MB, {:.0} MB memory, {size} bytes of TSV: {}",
                sc.name,
                "  its SQL alone",
                q.ms,
                q.n,
                q.read_rows,
                q.read_bytes as f64 / 1e6,
                q.memory as f64 / 1e6,
                short(&q.query, 160)
            ));
        }
    }
    Ok(())
}

/// Where the time of a long-tail breakdown goes, and what a monthly rollup of
/// `agg_breakdown` would make of it: the same top 100 pages read from a table of whole months
/// (built here from the daily rows, as a monthly rollup would) plus the daily rows of the
/// partial months at both ends. Its answer must equal the daily one.
async fn breakdown_anatomy(
    opts: &Opts,
    c: &Client,
    days: &[NaiveDate],
    out: &mut Report,
) -> Result<()> {
    let fmt = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let (first, last) = (days[0], days[days.len() - 1]);
    let (from, to) = (fmt(first), fmt(last));
    const RANGE: &str =
        "site_id = 1 AND dimension = 'event:page' AND day >= toDate(?) AND day <= toDate(?)";
    let steps = [
        (
            "count the rows",
            format!("SELECT count() FROM agg_breakdown WHERE {RANGE}"),
        ),
        (
            "sum without grouping",
            format!("SELECT sum(visitors), sum(pageviews) FROM agg_breakdown WHERE {RANGE}"),
        ),
        (
            "read the values",
            format!("SELECT sum(length(value)) FROM agg_breakdown WHERE {RANGE}"),
        ),
        (
            "distinct values",
            format!("SELECT uniqExact(value) FROM agg_breakdown WHERE {RANGE}"),
        ),
        (
            "group by value, top 100",
            format!(
                "SELECT value, sum(visitors) AS v, sum(pageviews) FROM agg_breakdown WHERE {RANGE} \
             GROUP BY value ORDER BY v DESC, value LIMIT 100"
            ),
        ),
        (
            "group by cityHash64(value)",
            format!(
                "SELECT any(value), sum(visitors) AS v, sum(pageviews) FROM agg_breakdown WHERE {RANGE} \
             GROUP BY cityHash64(value) ORDER BY v DESC LIMIT 100"
            ),
        ),
    ];
    out.say(
        "\nbreakdown by event:page, where the time goes (plain SQL, median / p90 ms):".to_string(),
    );
    let mut daily_answer = 0;
    for (what, sql) in &steps {
        let sql = rec(c.query(sql).bind(&from).bind(&to))
            .sql_display()
            .to_string();
        let (times, size) = time_sql(c, &sql.replace('?', "??"), opts.runs).await?;
        let (m, p) = stats(&times);
        if what.starts_with("group by value") {
            daily_answer = size;
        }
        out.say(format!("  {what:<28} {m:>8.1} {p:>8.1}"));
    }

    // Values as 64-bit ids (a hash), their text in a table of names: the top 100 is grouped
    // on a number, then its 100 names are looked up by primary key.
    for sql in [
        "CREATE TABLE bench_breakdown_ids (day Date, site_id UInt32, dimension String, value_id UInt64, \
         visitors UInt32, visits UInt32, pageviews UInt32, events UInt32, bounces UInt32, duration UInt64) \
         ENGINE = MergeTree PARTITION BY day ORDER BY (site_id, dimension, day, value_id)",
        "INSERT INTO bench_breakdown_ids SELECT day, site_id, dimension, cityHash64(value), visitors, visits, \
         pageviews, events, bounces, duration FROM agg_breakdown WHERE site_id = 1 AND dimension = 'event:page'",
        "CREATE TABLE bench_value_names (value_id UInt64, value String) ENGINE = MergeTree ORDER BY value_id",
        "INSERT INTO bench_value_names SELECT DISTINCT cityHash64(value), value FROM agg_breakdown \
         WHERE site_id = 1 AND dimension = 'event:page'",
        "OPTIMIZE TABLE bench_breakdown_ids FINAL",
    ] {
        rec(c.query(sql)).execute().await?;
    }
    #[derive(Row, Deserialize)]
    struct Top {
        value_id: u64,
        v: u64,
        #[allow(dead_code)]
        pv: u64,
    }
    let top_sql = "SELECT value_id, sum(visitors) AS v, sum(pageviews) AS pv FROM bench_breakdown_ids \
         WHERE site_id = 1 AND dimension = 'event:page' AND day >= toDate(?) AND day <= toDate(?) \
         GROUP BY value_id ORDER BY v DESC, value_id LIMIT 100";
    let names_sql = "SELECT value FROM bench_value_names WHERE has(?, value_id)";
    let mut times = Vec::with_capacity(opts.runs);
    let mut top_v = Vec::new();
    for i in 0..opts.runs + 2 {
        let began = Instant::now();
        let top = rec(c.query(top_sql).bind(&from).bind(&to))
            .fetch_all::<Top>()
            .await?;
        let ids: Vec<u64> = top.iter().map(|t| t.value_id).collect();
        let names = rec(c.query(names_sql).bind(&ids))
            .fetch_all::<String>()
            .await?;
        if i >= 2 {
            times.push(began.elapsed());
        }
        if names.len() != ids.len() && i == 0 {
            out.fail(format!(
                "breakdown by id: {} names for {} ids",
                names.len(),
                ids.len()
            ));
        }
        top_v = top.iter().map(|t| t.v).collect();
    }
    let (m, p) = stats(&times);
    out.say(format!("  value ids, top 100 + names   {m:>8.1} {p:>8.1}"));
    #[derive(Row, Deserialize)]
    struct V {
        v: u64,
    }
    let want: Vec<u64> = rec(c
        .query(
            "SELECT v FROM (SELECT value, sum(visitors) AS v FROM agg_breakdown WHERE site_id = 1 \
                AND dimension = 'event:page' AND day >= toDate(?) AND day <= toDate(?) \
                GROUP BY value ORDER BY v DESC LIMIT 100)",
        )
        .bind(&from)
        .bind(&to))
    .fetch_all::<V>()
    .await?
    .into_iter()
    .map(|r| r.v)
    .collect();
    if want != top_v {
        out.fail("breakdown by id: the top 100's visitors differ from the daily answer's");
    }

    // Whole months inside the range, and the partial ones at its ends.
    let month_start = |d: NaiveDate| d.with_day(1).unwrap_or(d);
    let next_month = |d: NaiveDate| month_start(month_start(d) + chrono::Days::new(32));
    let full_from = if first.day() == 1 {
        first
    } else {
        next_month(first)
    };
    let full_to = month_start(last + chrono::Days::new(1));
    if full_from >= full_to {
        out.say("  (no whole month in the range: the monthly variant is skipped)".to_string());
        return Ok(());
    }
    for sql in [
        "CREATE TABLE bench_breakdown_monthly (month Date, site_id UInt32, dimension String, value String, \
         visitors UInt64, visits UInt64, pageviews UInt64, events UInt64, bounces UInt64, duration UInt64) \
         ENGINE = MergeTree PARTITION BY toYYYYMM(month) ORDER BY (site_id, dimension, month, value)",
        "INSERT INTO bench_breakdown_monthly SELECT toStartOfMonth(day) AS month, site_id, dimension, value, \
         sum(visitors), sum(visits), sum(pageviews), sum(events), sum(bounces), sum(duration) \
         FROM agg_breakdown WHERE day >= toDate(?) AND day < toDate(?) \
         GROUP BY month, site_id, dimension, value",
        "OPTIMIZE TABLE bench_breakdown_monthly FINAL",
    ] {
        let began = Instant::now();
        let q = c.query(sql);
        let q = if sql.contains('?') {
            q.bind(fmt(full_from)).bind(fmt(full_to))
        } else {
            q
        };
        rec(q).execute().await?;
        if sql.starts_with("INSERT") {
            out.say(format!(
                "  monthly table built from {} to {} in {:.1} s",
                fmt(full_from),
                fmt(full_to),
                secs(began.elapsed())
            ));
        }
    }
    #[derive(Row, Deserialize)]
    struct Size {
        bytes: u64,
        rows: u64,
    }
    let size = rec(c.query(
        "SELECT sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts \
         WHERE active AND database = currentDatabase() AND table = 'bench_breakdown_monthly'",
    ))
    .fetch_one::<Size>()
    .await?;
    let sql = rec(c
        .query(
            "SELECT value, sum(visitors) AS v, sum(pageviews) FROM ( \
               SELECT value, visitors, pageviews FROM bench_breakdown_monthly \
               WHERE site_id = 1 AND dimension = 'event:page' AND month >= toDate(?) AND month < toDate(?) \
               UNION ALL \
               SELECT value, visitors, pageviews FROM agg_breakdown \
               WHERE site_id = 1 AND dimension = 'event:page' \
               AND ((day >= toDate(?) AND day < toDate(?)) OR (day >= toDate(?) AND day <= toDate(?))) \
             ) GROUP BY value ORDER BY v DESC, value LIMIT 100",
        )
        .bind(fmt(full_from))
        .bind(fmt(full_to))
        .bind(&from)
        .bind(fmt(full_from))
        .bind(fmt(full_to))
        .bind(&to))
    .sql_display()
    .to_string()
    .replace('?', "??");
    let (times, size_tsv) = time_sql(c, &sql, opts.runs).await?;
    let (m, p) = stats(&times);
    out.say(format!(
        "  monthly + daily ends, top 100 {m:>8.1} {p:>8.1}   (monthly table: {} rows, {:.1} MB on disk for all sites)",
        size.rows,
        size.bytes as f64 / 1e6
    ));
    let daily = c
        .query(&steps[4].1)
        .bind(&from)
        .bind(&to)
        .fetch_bytes("TSV")?
        .collect()
        .await?;
    let monthly = c.query(&sql).fetch_bytes("TSV")?.collect().await?;
    if daily != monthly || daily.len() != daily_answer || size_tsv != daily_answer {
        out.fail("breakdown: the monthly variant's top 100 differs from the daily one");
    }
    Ok(())
}

/// The engine's numbers must be those of the aggregates it read.
fn check_answer(name: &str, a: &tally::query::Answer, t: &Totals, out: &mut Report) {
    let num = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    match name {
        "summary" => {
            let Some(row) = a.results.first() else {
                return out.fail("summary: no row");
            };
            let want = [t.visitors as f64, t.visits as f64, t.pageviews as f64];
            for (i, w) in want.iter().enumerate() {
                let got = row.metrics.get(i).map_or(f64::NAN, num);
                if got != *w {
                    out.fail(format!(
                        "summary: metric {i} is {got}, the aggregates say {w}"
                    ));
                }
            }
        }
        "timeseries" => {
            if a.results.len() as u64 != t.days {
                out.fail(format!(
                    "timeseries: {} rows for {} days",
                    a.results.len(),
                    t.days
                ));
            }
            let pv: f64 = a
                .results
                .iter()
                .map(|r| r.metrics.get(2).map_or(f64::NAN, num))
                .sum();
            if pv != t.pageviews as f64 {
                out.fail(format!(
                    "timeseries: page views add up to {pv}, the aggregates say {}",
                    t.pageviews
                ));
            }
        }
        _ => {
            let want = t.pages.min(100) as usize;
            if a.results.len() != want {
                out.fail(format!(
                    "breakdown: {} rows, want {want} ({} distinct pages)",
                    a.results.len(),
                    t.pages
                ));
            }
        }
    }
}

#[derive(Row, Deserialize)]
struct HitCounts {
    hits: u64,
    pageviews: u64,
    visitors: u64,
}

#[derive(Row, Deserialize)]
struct TableRows {
    table: String,
    n: u64,
}

/// Generates a day of raw hits for the big site in the rollup database (through `main`, the
/// aggregates' database, where the generator's values are), then rolls it up.
async fn rollup(
    opts: &Opts,
    url: &str,
    main: &Client,
    date: NaiveDate,
    out: &mut Report,
) -> Result<()> {
    let config = config_for(url, ROLLUP_DB, opts)?;
    tally::lifecycle::migrate_on(url, &config)
        .await
        .context("migrations")?;
    let c =
        tally::store::client(url, &config.clickhouse).with_setting("max_execution_time", "1800");
    let tz: chrono_tz::Tz = BIG_TZ.parse().map_err(|e| anyhow!("{e}"))?;
    let (start, stop) = tally::time::day_bounds(tz, date);
    let began = Instant::now();
    rec(main
        .query(&hits_sql(&format!("{ROLLUP_DB}.events"))?)
        .bind(1u32)
        .bind(tally::time::day_number(date))
        .bind(start)
        .bind(stop - start)
        .bind(stop - 1)
        .bind(opts.rollup_hits)
        .bind(opts.rollup_hits))
    .execute()
    .await
    .context("generating raw hits")?;
    let generated = began.elapsed();
    let hits = c
        .query(
            "SELECT count() AS hits, countIf(kind = 'pageview') AS pageviews, uniqExact(visitor_key) AS visitors \
             FROM events WHERE site_id = 1",
        )
        .fetch_one::<HitCounts>()
        .await?;
    let kinds = c
        .query("SELECT toString(kind) AS table, count() AS n FROM events GROUP BY table ORDER BY n DESC")
        .fetch_all::<TableRows>()
        .await?;
    out.say(format!(
        "\nrollup: {} raw hits of {date} ({BIG_TZ}) generated in {:.1} s: {} visitor keys; {}",
        hits.hits,
        secs(generated),
        hits.visitors,
        kinds
            .iter()
            .map(|k| format!("{} {}", k.table, k.n))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    let now = stop + 3600;
    let logging = c.clone().with_setting("log_queries", "1");
    let roll = Rollup::new(logging, &config);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let since = tally::time::now_unix();
    let began = Instant::now();
    let done = roll
        .run_day(date, Some(1), now)
        .await
        .context("rollup of the big site")?;
    let took = began.elapsed();
    let rows = c
        .query(
            "SELECT 'visits' AS table, count() AS n FROM visits WHERE site_id = 1 \
             UNION ALL SELECT 'agg_daily' AS table, count() AS n FROM agg_daily WHERE site_id = 1 \
             UNION ALL SELECT 'agg_hourly' AS table, count() AS n FROM agg_hourly WHERE site_id = 1 \
             UNION ALL SELECT 'agg_breakdown' AS table, count() AS n FROM agg_breakdown WHERE site_id = 1",
        )
        .fetch_all::<TableRows>()
        .await?;
    out.say(format!(
        "Rollup::run_day({date}, site 1): {:.2} s, {} visits; rows written: {}",
        secs(took),
        done.visits,
        rows.iter()
            .map(|r| format!("{} {}", r.table, r.n))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut seen = HashSet::new();
    let mut statements = logged(&c, since, &mut seen).await?;
    statements.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    for q in statements.iter().take(8) {
        // The two breakdown statements start alike.
        let which = if q.query.contains("arrayConcat(") {
            "(per action) "
        } else if q.query.contains("ARRAY JOIN [(") {
            "(per visit) "
        } else {
            ""
        };
        out.say(format!(
            "  {:>8.0} ms  read {:>9} rows {:>8.1} MB, {:>6.0} MB memory  {which}{}",
            q.ms * q.n as f64,
            q.read_rows,
            q.read_bytes as f64 / 1e6,
            q.memory as f64 / 1e6,
            short(&q.query, 110)
        ));
    }
    let daily_pv = c
        .query("SELECT 'agg_daily' AS table, sum(pageviews) AS n FROM agg_daily WHERE site_id = 1")
        .fetch_one::<TableRows>()
        .await?
        .n;
    if daily_pv != hits.pageviews {
        out.fail(format!(
            "rollup: agg_daily has {daily_pv} page views, the raw hits {}",
            hits.pageviews
        ));
    }
    let dims = c
        .query("SELECT dimension AS table, count() AS n FROM agg_breakdown WHERE site_id = 1 GROUP BY dimension ORDER BY n DESC")
        .fetch_all::<TableRows>()
        .await?;
    out.say(format!(
        "  breakdown rows per dimension: {}",
        dims.iter()
            .map(|r| format!("{} {}", r.table, r.n))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}
