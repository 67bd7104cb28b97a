//! Enrichment: what is added to an anonymised event before it is stored.
//!
//! Each module is a set of pure, fast functions with no I/O on the hot path; the pipeline
//! (`crate::pipeline`) calls them as named steps:
//! * [`geo`]: country, region and city from the (by default truncated) address;
//! * [`device`]: browser, OS, device type and bot verdict from the user agent and `Sec-CH-UA*`
//!   client hints, behind a concurrent cache;
//! * [`referrer`]: Matomo channel type (direct, website, search, social, campaign), campaign
//!   parameters, referrer-spam verdict;
//! * [`uadata`]: matomo.js's JSON client hints in the header forms [`device`] reads;
//! * [`url_hygiene`]: fragments, session ids, tokens and e-mail addresses out of URLs and text;
//! * [`visitor`] and [`secrets`]: the visitor key under the daily shared secret.
//!
//! The lists they rely on (search engines, social networks, spammers, UA regexes) are compiled
//! in from `data/` (see its README for sources and licences); the geo database is a file
//! loaded at run time.

pub mod device;
pub mod geo;
pub mod referrer;
pub mod secrets;
pub mod uadata;
pub mod url_hygiene;
pub mod visitor;

pub use device::{ClientHints, Device, DeviceDetector, DeviceType};
pub use geo::{GeoDb, GeoError, Location};
pub use referrer::{Campaign, Channel, Referrer, ReferrerClassifier, SpamList};
pub use uadata::UaData;
pub use url_hygiene::{clean_url, mask_emails};

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;

/// Distinct user-agent and client-hint combinations kept parsed.
const DEVICE_CACHE: usize = 20_000;

/// The resources the enrichment steps use, built once at start.
pub struct Enrichers {
    /// The geolocation database: the configured one, or the first run's country database
    /// (maybe still awaited); `None` with neither.
    pub geo: Option<Arc<GeoDb>>,
    /// User-agent parsing with its cache.
    pub devices: DeviceDetector,
    /// Search engines and social networks.
    pub referrers: ReferrerClassifier,
    /// Referrer-spam hosts.
    pub spam: SpamList,
    /// Per site: the query parameters removed from URLs besides the built-in list (global
    /// `privacy.sensitive_params` plus the site's own), merged once here.
    sensitive: HashMap<u32, Vec<String>>,
}

impl Enrichers {
    /// Builds everything `config` asks for; fails only if the geo database cannot be opened.
    pub fn from_config(config: &Config) -> Result<Self, GeoError> {
        let geo = match &config.geo.database {
            Some(path) => Some(Arc::new(GeoDb::open(path)?)),
            // The first run's country database is not there (the fetch at start failed, or the
            // file does not open): wait for `tally geo update` to write it, and load it then.
            None if config.geo.auto => Some(Arc::new(GeoDb::awaiting(
                crate::geo_update::auto_path(config),
            ))),
            None => None,
        };
        let sensitive = config
            .sites
            .iter()
            .map(|site| {
                let mut list = config.privacy.sensitive_params.clone();
                list.extend(site.sensitive_params.iter().cloned());
                (site.id, list)
            })
            .collect();
        Ok(Enrichers {
            geo,
            devices: DeviceDetector::new(DEVICE_CACHE),
            referrers: ReferrerClassifier::new(),
            spam: SpamList::new(),
            sensitive,
        })
    }

    /// The extra sensitive query parameters of `site`.
    pub fn sensitive_params(&self, site: u32) -> &[String] {
        self.sensitive.get(&site).map_or(&[], Vec::as_slice)
    }
}
