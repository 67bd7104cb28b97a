//! Referrer classification into Matomo's channel types, campaign parameters
//! and referrer spam.
//!
//! Lists (embedded from `data/`, see its README): Matomo's
//! `searchengine-and-social-list` (CC0) for search engines and social
//! networks, Matomo's `referrer-spam-list` (public domain) for spammers.
//!
//! Host matching follows Matomo: a search engine is found by its exact host
//! or, failing that, by a "lossy" host in which `www.`/`search.` and `m.`
//! labels are dropped and country-code labels become `{}` (so
//! `www.google.co.uk` → `google.{}`, as listed). Search engines whose only
//! keyword extractor is a path regex (a minority of small engines) are
//! recognised, but their keyword is left empty.
//!
//! Privacy: [`Referrer::url`] is the referrer as given; the pipeline should
//! pass it through [`crate::enrich::url_hygiene::clean_url`] before storing.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use url::Url;

/// Matomo's channel types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Typed in, bookmark, or no referrer sent.
    Direct,
    /// A link on another website.
    Website,
    /// A search engine result.
    Search,
    /// A social network.
    Social,
    /// A tagged campaign link (`utm_*`, `mtm_*`, `pk_*` in the page URL).
    Campaign,
}

impl Channel {
    /// Stable lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Direct => "direct",
            Channel::Website => "website",
            Channel::Search => "search",
            Channel::Social => "social",
            Channel::Campaign => "campaign",
        }
    }
}

/// The classified source of a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// Channel type.
    pub channel: Channel,
    /// Search engine or social network name ("Google", "Facebook"), the host
    /// for websites, the campaign name for campaigns, empty for direct.
    pub name: String,
    /// Search keyword, or the campaign keyword; empty if none.
    pub keyword: String,
    /// The referrer URL as given (trimmed); empty for direct.
    pub url: String,
}

impl Referrer {
    fn direct() -> Self {
        Referrer {
            channel: Channel::Direct,
            name: String::new(),
            keyword: String::new(),
            url: String::new(),
        }
    }
}

/// Campaign parameters from the landing page URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Campaign {
    /// `mtm_campaign` / `pk_campaign` / `pk_cpn` / `utm_campaign`.
    pub name: String,
    /// `mtm_source` / `pk_source` / `utm_source`.
    pub source: String,
    /// `mtm_medium` / `pk_medium` / `utm_medium`.
    pub medium: String,
    /// `mtm_keyword` / `mtm_kwd` / `pk_keyword` / `pk_kwd` / `utm_term`.
    pub keyword: String,
    /// `mtm_content` / `pk_content` / `utm_content`.
    pub content: String,
}

#[derive(Clone, Copy)]
enum CampaignField {
    Name,
    Source,
    Medium,
    Keyword,
    Content,
}

/// Parameter → field, in precedence order: Matomo's own prefixes first, so a
/// URL tagged both ways reports the `mtm_` value.
const CAMPAIGN_PARAMS: &[(&str, CampaignField, u8)] = &[
    ("mtm_campaign", CampaignField::Name, 0),
    ("pk_campaign", CampaignField::Name, 1),
    ("pk_cpn", CampaignField::Name, 2),
    ("utm_campaign", CampaignField::Name, 3),
    ("mtm_source", CampaignField::Source, 0),
    ("pk_source", CampaignField::Source, 1),
    ("utm_source", CampaignField::Source, 2),
    ("mtm_medium", CampaignField::Medium, 0),
    ("pk_medium", CampaignField::Medium, 1),
    ("utm_medium", CampaignField::Medium, 2),
    ("mtm_keyword", CampaignField::Keyword, 0),
    ("mtm_kwd", CampaignField::Keyword, 1),
    ("pk_keyword", CampaignField::Keyword, 2),
    ("pk_kwd", CampaignField::Keyword, 3),
    ("utm_term", CampaignField::Keyword, 4),
    ("mtm_content", CampaignField::Content, 0),
    ("pk_content", CampaignField::Content, 1),
    ("utm_content", CampaignField::Content, 2),
];

impl Campaign {
    /// Reads campaign parameters (names case-insensitive, values trimmed)
    /// from `page_url`'s query. A campaign exists when it has a name or, for
    /// links tagged only with a source (common with `utm_source=newsletter`),
    /// a source; otherwise `None`.
    pub fn from_url(page_url: &Url) -> Option<Campaign> {
        let query = page_url.query()?;
        // Cheap pre-check: most page URLs carry no campaign at all.
        if !query.contains("tm_")
            && !query.contains("pk_")
            && !query.contains("TM_")
            && !query.contains("PK_")
        {
            return None;
        }
        let mut c = Campaign::default();
        let mut rank = [u8::MAX; 5];
        for (k, v) in page_url.query_pairs() {
            let Some(&(_, field, r)) = CAMPAIGN_PARAMS
                .iter()
                .find(|(p, _, _)| k.eq_ignore_ascii_case(p))
            else {
                continue;
            };
            let v = v.trim();
            let idx = field as usize;
            if v.is_empty() || r >= rank[idx] {
                continue;
            }
            rank[idx] = r;
            let slot = match field {
                CampaignField::Name => &mut c.name,
                CampaignField::Source => &mut c.source,
                CampaignField::Medium => &mut c.medium,
                CampaignField::Keyword => &mut c.keyword,
                CampaignField::Content => &mut c.content,
            };
            v.clone_into(slot);
        }
        (!c.name.is_empty() || !c.source.is_empty()).then_some(c)
    }
}

/// One search engine: display name and keyword query parameters.
#[derive(Debug)]
struct Engine {
    name: String,
    params: Vec<String>,
    /// The list declares `hiddenkeyword` paths: the engine often sends no
    /// keyword, so a bare hit still counts as search.
    hides_keyword: bool,
}

#[derive(Deserialize)]
struct EngineDef {
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    params: Vec<String>,
    #[serde(default)]
    hiddenkeyword: Vec<String>,
}

/// Errors building a classifier from custom lists.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// A list is not in the expected JSON shape.
    #[error("referrer list: {0}")]
    Json(#[from] serde_json::Error),
}

const SEARCH_ENGINES_JSON: &str = include_str!("data/search_engines.json");
const SOCIALS_JSON: &str = include_str!("data/socials.json");
const SPAMMERS_TXT: &str = include_str!("data/spammers.txt");

/// Classifies referrers; build once, share (`Send + Sync`, read-only).
#[derive(Debug)]
pub struct ReferrerClassifier {
    engines: Vec<Engine>,
    /// Exact and lossy host → index into `engines`.
    engine_hosts: HashMap<String, usize>,
    /// Host (or domain suffix) → social network name.
    socials: HashMap<String, String>,
}

impl Default for ReferrerClassifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ReferrerClassifier {
    /// Builds the classifier from the embedded Matomo lists.
    ///
    /// # Panics
    /// Only if the embedded lists are malformed, which the unit tests rule
    /// out; use [`ReferrerClassifier::from_json`] for lists read at run time.
    pub fn new() -> Self {
        Self::from_json(SEARCH_ENGINES_JSON, SOCIALS_JSON)
            .expect("embedded referrer lists are valid")
    }

    /// Builds from lists in the JSON form of Matomo's `SearchEngines.yml`
    /// and `Socials.yml` (what `data/update.sh` produces).
    pub fn from_json(search_engines: &str, socials: &str) -> Result<Self, ListError> {
        // `serde_json` keeps the map order of the file only with a feature
        // flag; a Vec of pairs keeps it without one, so "first definition
        // wins" holds like in Matomo.
        let engines_def: OrderedMap<Vec<EngineDef>> = serde_json::from_str(search_engines)?;
        let socials_def: OrderedMap<Vec<String>> = serde_json::from_str(socials)?;

        let mut engines = Vec::new();
        let mut engine_hosts = HashMap::new();
        for (name, defs) in engines_def.0 {
            let name = decode_name(&name);
            for def in defs {
                let idx = engines.len();
                // Keyword extractors written as /regex/ are not supported (see
                // module docs); plain parameter names are.
                let params = def
                    .params
                    .into_iter()
                    .filter(|p| !p.starts_with('/'))
                    .collect();
                engines.push(Engine {
                    name: name.clone(),
                    params,
                    hides_keyword: !def.hiddenkeyword.is_empty(),
                });
                for url in def.urls {
                    let host = url.trim().to_ascii_lowercase();
                    // Entries like "android-app//com.google…/https/www.google.com"
                    // describe app referrers by path; their app id is listed
                    // separately as a plain host, so skip the path forms.
                    if host.is_empty() || host.contains('/') {
                        continue;
                    }
                    let lossy = lossy_host(&host);
                    engine_hosts.entry(host).or_insert(idx);
                    engine_hosts.entry(lossy).or_insert(idx);
                }
            }
        }

        let mut social_hosts = HashMap::new();
        for (name, hosts) in socials_def.0 {
            let name = decode_name(&name);
            for host in hosts {
                social_hosts
                    .entry(host.trim().to_ascii_lowercase())
                    .or_insert_with(|| name.clone());
            }
        }
        Ok(ReferrerClassifier {
            engines,
            engine_hosts,
            socials: social_hosts,
        })
    }

    /// Classifies a visit's referrer.
    ///
    /// Order: a campaign in `page_url` wins (→ [`Channel::Campaign`], even
    /// with an external referrer); an empty or unparseable referrer is
    /// [`Channel::Direct`]; a referrer on the page's own host or one of
    /// `own_hosts` returns `None` — *internal navigation, not a new
    /// referrer*, the caller keeps the visit's existing one; then search
    /// engines (with keyword if the URL has it), social networks, and
    /// finally [`Channel::Website`] named by host.
    ///
    /// `own_hosts` entries match exactly (case-insensitive); an entry
    /// `*.example.com` also matches every subdomain of `example.com`.
    pub fn classify(
        &self,
        referrer: &str,
        page_url: &Url,
        own_hosts: &[impl AsRef<str>],
    ) -> Option<Referrer> {
        let referrer = referrer.trim();
        if let Some(c) = Campaign::from_url(page_url) {
            let name = if c.name.is_empty() { c.source } else { c.name };
            return Some(Referrer {
                channel: Channel::Campaign,
                name,
                keyword: c.keyword,
                url: referrer.to_owned(),
            });
        }
        if referrer.is_empty() {
            return Some(Referrer::direct());
        }
        let Ok(ref_url) = Url::parse(referrer) else {
            return Some(Referrer::direct());
        };
        let Some(host) = ref_url.host_str() else {
            return Some(Referrer::direct());
        };
        let host = host.trim_end_matches('.');
        if host.is_empty() {
            return Some(Referrer::direct());
        }
        // Hosts of special schemes (http, https) are already lowercase; others
        // (android-app://…) are not normalised by `url`.
        let lowered;
        let host = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = host.to_ascii_lowercase();
            lowered.as_str()
        } else {
            host
        };

        if self.is_internal(host, page_url, own_hosts) {
            return None;
        }

        if let Some(engine) = self.search_engine(host) {
            let keyword = ref_url
                .query_pairs()
                .find(|(k, v)| !v.trim().is_empty() && engine.params.iter().any(|p| p == k))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_default();
            // Like Matomo: a search-engine host without a keyword is search
            // only if the engine is known to hide keywords (Google, Bing,
            // DuckDuckGo…); otherwise (www.facebook.com listed for its
            // search box) it falls through to social/website.
            if keyword.is_empty() && !engine.hides_keyword {
                return Some(self.non_search(host, referrer));
            }
            return Some(Referrer {
                channel: Channel::Search,
                name: engine.name.clone(),
                keyword,
                url: referrer.to_owned(),
            });
        }

        Some(self.non_search(host, referrer))
    }

    /// Social network if the host is one, else a website named by host.
    fn non_search(&self, host: &str, referrer: &str) -> Referrer {
        match self.social(host) {
            Some(name) => Referrer {
                channel: Channel::Social,
                name: name.to_owned(),
                keyword: String::new(),
                url: referrer.to_owned(),
            },
            None => Referrer {
                channel: Channel::Website,
                name: host.to_owned(),
                keyword: String::new(),
                url: referrer.to_owned(),
            },
        }
    }

    fn is_internal(&self, host: &str, page_url: &Url, own_hosts: &[impl AsRef<str>]) -> bool {
        if page_url
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
        {
            return true;
        }
        own_hosts.iter().any(|own| {
            let own = own.as_ref().trim();
            match own.strip_prefix("*.") {
                Some(base) => {
                    host.eq_ignore_ascii_case(base)
                        || (host.len() > base.len()
                            && host.as_bytes()[host.len() - base.len() - 1] == b'.'
                            && host[host.len() - base.len()..].eq_ignore_ascii_case(base))
                }
                None => host.eq_ignore_ascii_case(own),
            }
        })
    }

    fn search_engine(&self, host: &str) -> Option<&Engine> {
        let idx = match self.engine_hosts.get(host) {
            Some(&i) => i,
            None => *self.engine_hosts.get(lossy_host(host).as_str())?,
        };
        self.engines.get(idx)
    }

    /// Social network of `host` or of any parent domain (`m.facebook.com`
    /// → `facebook.com`), like Matomo's label-boundary match.
    fn social(&self, host: &str) -> Option<&str> {
        parent_domains(host).find_map(|h| self.socials.get(h).map(String::as_str))
    }
}

/// `host`, then each parent domain: `a.b.c` → `a.b.c`, `b.c`, `c`.
fn parent_domains(host: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(host), |h| h.split_once('.').map(|(_, rest)| rest))
        .filter(|h| !h.is_empty())
}

/// Names in the YAML are sometimes URL-encoded (`Google%2B`).
fn decode_name(name: &str) -> String {
    percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .into_owned()
}

fn is_country_label(label: &str) -> bool {
    // Matomo uses its country list; every ISO 3166 code is two letters and
    // nearly every two-letter label is a ccTLD, so the shape test suffices.
    label.len() == 2 && label.bytes().all(|b| b.is_ascii_lowercase())
}

/// Port of Matomo's `UrlHelper::getLossyUrl` for a lowercase host:
/// drop a leading `www*`/`search` label, drop `m` labels, turn a country
/// TLD (with an optional `com|org|net|co|it|edu` second level) into `{}`,
/// and turn country-code labels before a dot into `{}`.
fn lossy_host(host: &str) -> String {
    let mut labels: Vec<&str> = host.split('.').collect();
    if let Some(first) = labels.first() {
        let www = first.starts_with('w')
            && first
                .trim_start_matches('w')
                .bytes()
                .all(|b| b.is_ascii_digit());
        if labels.len() > 1 && (www || *first == "search") {
            labels.remove(0);
        }
    }
    if labels.len() > 1 {
        labels.retain(|l| *l != "m");
    }
    let mut tld_placeholder = false;
    if labels.len() > 1 && labels.last().is_some_and(|l| is_country_label(l)) {
        labels.pop();
        if labels.len() > 1
            && labels
                .last()
                .is_some_and(|l| matches!(*l, "com" | "org" | "net" | "co" | "it" | "edu"))
        {
            labels.pop();
        }
        tld_placeholder = true;
    }
    let mut out = String::with_capacity(host.len());
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        // A country label followed by another label ("de.search.yahoo.com").
        let followed = i + 1 < labels.len() || tld_placeholder;
        if followed && is_country_label(label) {
            out.push_str("{}");
        } else {
            out.push_str(label);
        }
    }
    if tld_placeholder {
        out.push_str(".{}");
    }
    out
}

/// A JSON object read as an ordered list of (key, value) pairs.
struct OrderedMap<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Vis<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry()? {
                    v.push(entry);
                }
                Ok(OrderedMap(v))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// Referrer-spam domains (Matomo's `referrer-spam-list`).
#[derive(Debug)]
pub struct SpamList {
    domains: HashSet<Box<str>>,
}

impl Default for SpamList {
    fn default() -> Self {
        Self::new()
    }
}

impl SpamList {
    /// The embedded Matomo list.
    pub fn new() -> Self {
        Self::from_text(SPAMMERS_TXT)
    }

    /// Builds from one domain per line; blank lines and `#` comments are
    /// skipped, entries are lowercased.
    pub fn from_text(text: &str) -> Self {
        let domains = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                l.trim_end_matches('.')
                    .to_ascii_lowercase()
                    .into_boxed_str()
            })
            .collect();
        SpamList { domains }
    }

    /// Number of listed domains.
    pub fn len(&self) -> usize {
        self.domains.len()
    }

    /// True if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// True if `host` or any of its parent domains is listed
    /// (`www.semalt.com` is spam because `semalt.com` is). Set lookups per
    /// label; allocates only to lowercase a host that has uppercase letters.
    pub fn is_spam(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.');
        if host.bytes().any(|b| b.is_ascii_uppercase()) {
            let lower = host.to_ascii_lowercase();
            return parent_domains(&lower).any(|h| self.domains.contains(h));
        }
        parent_domains(host).any(|h| self.domains.contains(h))
    }

    /// [`SpamList::is_spam`] on the host of a referrer URL; `false` when the
    /// URL has no host.
    pub fn is_spam_url(&self, referrer: &str) -> bool {
        Url::parse(referrer.trim())
            .ok()
            .and_then(|u| u.host_str().map(|h| self.is_spam(h)))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn classifier() -> &'static ReferrerClassifier {
        static C: OnceLock<ReferrerClassifier> = OnceLock::new();
        C.get_or_init(ReferrerClassifier::new)
    }

    fn page() -> Url {
        Url::parse("https://www.tally.example/blog/post?id=7").unwrap()
    }

    const NO_HOSTS: &[&str] = &[];

    fn classify(referrer: &str) -> (Channel, String, String) {
        let r = classifier()
            .classify(referrer, &page(), NO_HOSTS)
            .expect("external referrer");
        assert_eq!(r.url, referrer.trim());
        (r.channel, r.name, r.keyword)
    }

    fn t(c: Channel, name: &str, kw: &str) -> (Channel, String, String) {
        (c, name.into(), kw.into())
    }

    #[test]
    fn search_engines_with_keywords() {
        use Channel::Search;
        let cases = [
            (
                "https://www.google.com/search?q=tally+analytics",
                t(Search, "Google", "tally analytics"),
            ),
            (
                "https://www.google.co.uk/search?q=caf%C3%A9&hl=en",
                t(Search, "Google", "café"),
            ),
            (
                "https://www.google.de/url?sa=t&q=datenschutz",
                t(Search, "Google", "datenschutz"),
            ),
            (
                "https://www.bing.com/search?q=privacy+first&form=QBLH",
                t(Search, "Bing", "privacy first"),
            ),
            (
                "https://duckduckgo.com/?q=self+hosted+analytics&t=h_",
                t(Search, "DuckDuckGo", "self hosted analytics"),
            ),
            (
                "https://search.yahoo.com/search?p=matomo+alternative",
                t(Search, "Yahoo!", "matomo alternative"),
            ),
            (
                "https://de.search.yahoo.com/search?p=web",
                t(Search, "Yahoo!", "web"),
            ),
            (
                "https://yandex.ru/search/?text=%D0%B0%D0%BD%D0%B0%D0%BB%D0%B8%D1%82%D0%B8%D0%BA%D0%B0",
                t(Search, "Yandex", "аналитика"),
            ),
            (
                "https://www.baidu.com/s?wd=%E5%88%86%E6%9E%90",
                t(Search, "Baidu", "分析"),
            ),
            (
                "https://www.ecosia.org/search?q=trees",
                t(Search, "Ecosia", "trees"),
            ),
            // Facebook's search box is a search engine when it carries a keyword.
            (
                "https://www.facebook.com/search/?q=tally",
                t(Search, "Facebook", "tally"),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(classify(url), want, "{url}");
        }
    }

    #[test]
    fn search_engines_without_keywords() {
        use Channel::Search;
        assert_eq!(classify("https://www.google.com/"), t(Search, "Google", ""));
        assert_eq!(classify("https://www.google.fr/"), t(Search, "Google", ""));
        assert_eq!(
            classify("https://www.bing.com/search?q="),
            t(Search, "Bing", "")
        );
        assert_eq!(
            classify("https://duckduckgo.com/"),
            t(Search, "DuckDuckGo", "")
        );
        assert_eq!(
            classify("android-app://com.google.android.googlequicksearchbox/"),
            t(Search, "Google", "")
        );
    }

    #[test]
    fn social_networks() {
        use Channel::Social;
        assert_eq!(
            classify("https://www.facebook.com/"),
            t(Social, "Facebook", "")
        );
        assert_eq!(
            classify("https://news.ycombinator.com/item?id=1"),
            t(Social, "Hacker News", "")
        );
        assert_eq!(
            classify("https://m.facebook.com/story.php?id=1"),
            t(Social, "Facebook", "")
        );
        assert_eq!(
            classify("https://l.facebook.com/l.php?u=x"),
            t(Social, "Facebook", "")
        );
        assert_eq!(classify("https://t.co/AbCdEf"), t(Social, "Twitter", ""));
        assert_eq!(
            classify("https://www.linkedin.com/feed/"),
            t(Social, "LinkedIn", "")
        );
        assert_eq!(classify("https://lnkd.in/xyz"), t(Social, "LinkedIn", ""));
        assert_eq!(
            classify("https://old.reddit.com/r/rust/"),
            t(Social, "reddit", "")
        );
        assert_eq!(
            classify("https://mastodon.social/@someone"),
            t(Social, "Mastodon", "")
        );
        assert_eq!(
            classify("https://fosstodon.org/@x"),
            t(Social, "Mastodon", "")
        );
    }

    #[test]
    fn other_sites_are_websites_named_by_host() {
        use Channel::Website;
        assert_eq!(
            classify("https://blog.rust-lang.org/2025/01/01/x.html"),
            t(Website, "blog.rust-lang.org", "")
        );
        assert_eq!(
            classify("https://blog.example.org/a"),
            t(Website, "blog.example.org", "")
        );
        // A Google host that is not the search engine.
        assert_eq!(
            classify("https://mail.google.com/mail/u/0/"),
            t(Website, "mail.google.com", "")
        );
        // A Mastodon instance not in the list is just a website.
        assert_eq!(
            classify("https://hachyderm.io/@x"),
            t(Website, "hachyderm.io", "")
        );
    }

    #[test]
    fn direct_when_empty_or_unparseable() {
        let c = classifier();
        assert_eq!(c.classify("", &page(), NO_HOSTS), Some(Referrer::direct()));
        assert_eq!(
            c.classify("   ", &page(), NO_HOSTS),
            Some(Referrer::direct())
        );
        assert_eq!(
            c.classify("not a url", &page(), NO_HOSTS),
            Some(Referrer::direct())
        );
        assert_eq!(
            c.classify("file:///tmp/x.html", &page(), NO_HOSTS),
            Some(Referrer::direct())
        );
    }

    #[test]
    fn internal_navigation_is_none() {
        let c = classifier();
        assert_eq!(
            c.classify("https://www.tally.example/", &page(), NO_HOSTS),
            None
        );
        assert_eq!(
            c.classify("http://WWW.TALLY.EXAMPLE/other", &page(), NO_HOSTS),
            None
        );
        let own = ["tally.example", "*.tally-cdn.example"];
        assert_eq!(c.classify("https://tally.example/x", &page(), &own), None);
        assert_eq!(
            c.classify("https://a.b.tally-cdn.example/x", &page(), &own),
            None
        );
        assert_eq!(
            c.classify("https://tally-cdn.example/x", &page(), &own),
            None
        );
        // Not a subdomain: a different site whose name merely ends alike.
        let r = c
            .classify("https://eviltally-cdn.example/", &page(), &own)
            .unwrap();
        assert_eq!(r.channel, Channel::Website);
    }

    #[test]
    fn campaigns_win_over_referrer() {
        let c = classifier();
        let page = Url::parse(
            "https://tally.example/?utm_campaign=spring_sale&utm_source=newsletter&utm_medium=email&utm_term=shoes&utm_content=hero",
        )
        .unwrap();
        let r = c
            .classify("https://www.google.com/", &page, NO_HOSTS)
            .unwrap();
        assert_eq!(r.channel, Channel::Campaign);
        assert_eq!(r.name, "spring_sale");
        assert_eq!(r.keyword, "shoes");
        assert_eq!(r.url, "https://www.google.com/");
        // A campaign also wins over internal navigation and direct.
        let r = c.classify("", &page, NO_HOSTS).unwrap();
        assert_eq!(
            (r.channel, r.name.as_str()),
            (Channel::Campaign, "spring_sale")
        );
    }

    #[test]
    fn campaign_parameter_families() {
        let parse =
            |q: &str| Campaign::from_url(&Url::parse(&format!("https://x.example/?{q}")).unwrap());
        assert_eq!(
            parse(
                "mtm_campaign=Launch&mtm_source=mastodon&mtm_medium=social&mtm_kwd=rust&mtm_content=v2"
            ),
            Some(Campaign {
                name: "Launch".into(),
                source: "mastodon".into(),
                medium: "social".into(),
                keyword: "rust".into(),
                content: "v2".into(),
            })
        );
        assert_eq!(
            parse("pk_cpn=Winter&pk_source=x&pk_medium=banner&pk_kwd=boots&pk_content=c"),
            Some(Campaign {
                name: "Winter".into(),
                source: "x".into(),
                medium: "banner".into(),
                keyword: "boots".into(),
                content: "c".into(),
            })
        );
        let c = parse("pk_campaign=Promo&pk_keyword=k&mtm_keyword=mk").unwrap();
        assert_eq!((c.name.as_str(), c.keyword.as_str()), ("Promo", "mk"));
        // Matomo's prefix wins whatever the order; names are case-insensitive.
        let c = parse("UTM_CAMPAIGN=u&mtm_campaign=m").unwrap();
        assert_eq!(c.name, "m");
        // Source-only tagging is a campaign named by its source.
        let c = parse("utm_source=newsletter&utm_medium=email").unwrap();
        assert_eq!((c.name.as_str(), c.source.as_str()), ("", "newsletter"));
        let r = classifier()
            .classify(
                "",
                &Url::parse("https://x.example/?utm_source=newsletter").unwrap(),
                NO_HOSTS,
            )
            .unwrap();
        assert_eq!(
            (r.channel, r.name.as_str()),
            (Channel::Campaign, "newsletter")
        );
        // Empty values and unrelated parameters are not campaigns.
        assert_eq!(parse("utm_campaign=&utm_medium=email"), None);
        assert_eq!(parse("page=2"), None);
        assert_eq!(
            Campaign::from_url(&Url::parse("https://x.example/").unwrap()),
            None
        );
        // Values are percent-decoded and trimmed.
        assert_eq!(
            parse("utm_campaign=%20Black+Friday%20").unwrap().name,
            "Black Friday"
        );
    }

    #[test]
    fn lossy_host_matches_matomo() {
        assert_eq!(lossy_host("www.google.co.uk"), "google.{}");
        assert_eq!(lossy_host("google.de"), "google.{}");
        assert_eq!(lossy_host("de.search.yahoo.com"), "{}.search.yahoo.com");
        assert_eq!(lossy_host("search.yahoo.com"), "yahoo.com");
        assert_eq!(lossy_host("m.baidu.com"), "baidu.com");
        assert_eq!(lossy_host("www2.google.com"), "google.com");
        assert_eq!(lossy_host("news.ycombinator.com"), "news.ycombinator.com");
    }

    #[test]
    fn embedded_lists_load() {
        let c = classifier();
        assert!(c.engines.len() > 250, "{}", c.engines.len());
        assert!(c.socials.len() > 130, "{}", c.socials.len());
        assert!(SpamList::new().len() > 1800);
        assert_eq!(Channel::Campaign.as_str(), "campaign");
        assert_eq!(Channel::Direct.as_str(), "direct");
        assert!(ReferrerClassifier::from_json("[]", "{}").is_err());
    }

    #[test]
    fn spam_hosts_and_their_subdomains() {
        let spam = SpamList::new();
        assert!(spam.is_spam("semalt.com"));
        assert!(spam.is_spam("www.semalt.com"));
        assert!(spam.is_spam("a.b.Semalt.COM"));
        assert!(spam.is_spam("darodar.com."));
        assert!(spam.is_spam("qiwi.xyz"), "list entries are lowercased");
        assert!(!spam.is_spam("notsemalt.com"));
        assert!(!spam.is_spam("semalt.com.example.org"));
        assert!(!spam.is_spam("google.com"));
        assert!(!spam.is_spam("com"));
        assert!(!spam.is_spam(""));
        assert!(spam.is_spam_url("http://www.semalt.com/crawler.php?u=x"));
        assert!(!spam.is_spam_url("https://www.google.com/"));
        assert!(!spam.is_spam_url("garbage"));
    }

    #[test]
    fn spam_list_from_custom_text() {
        let spam = SpamList::from_text("# comment\n\nEvil.example\n  bad.test  \n");
        assert_eq!(spam.len(), 2);
        assert!(spam.is_spam("x.evil.example"));
        assert!(spam.is_spam("bad.test"));
        assert!(!spam.is_spam("example"));
    }
}
