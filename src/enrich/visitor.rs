//! The visitor key: a keyed hash that lets reports count visitors and visits without storing
//! anything that identifies a person.
//!
//! `HMAC-SHA256(secret, site ‖ truncated IP ‖ user agent ‖ accept-language)`, cut to 64 bits; or,
//! when the tracker sends its own visitor id cookie (`_id`), `HMAC(secret, site ‖ _id)`. Only
//! the hash is stored; the secret is what makes it unlinkable once it is gone.
//!
//! There is one secret per **time zone and local date**: a hit is keyed with the secret of the
//! local date its timestamp (`ts`, which may be a back-dated `cdt`) falls on in its site's zone,
//! so one person has one key for the whole of a site's local day, the day its reports count
//! visitors by, and unrelated keys on different days. Each secret is deleted 48 hours after its
//! day began in its own zone ([`SECRET_LIFETIME`]; [`super::secrets`] stores and deletes them).
//!
//! [`VisitorKeys`] holds, per zone, the stored secrets of every local day that may still
//! receive hits and whose secret still exists: usually yesterday, today and tomorrow (created
//! ahead, so local midnight never finds a gap). A hit of any other day (an import of old logs,
//! a clock far off) is keyed with an *ephemeral* secret made for that (zone, date) on demand,
//! kept in memory only, and thrown away at the next refresh: days stay unlinkable, at the price
//! that such a day's hits agree with each other only within one refresh period.
//!
//! The request path never waits: it reads an immutable table through an [`ArcSwap`], finds the
//! site's zone by binary search and the day by comparing `ts` with each held day's UTC bounds.
//! Nothing is allocated unless an ephemeral secret has to be made.

use std::collections::HashMap;
use std::sync::Mutex;

use arc_swap::ArcSwap;
use chrono_tz::Tz;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::SiteConfig;
use crate::privacy::TruncatedIp;
use crate::time::{DayNumber, date_of, day_number, local_date, start_of_day};

/// Length of a secret in bytes.
pub const SECRET_LEN: usize = 32;

/// How long a secret exists after its local day began: the next day, and no longer, for hits
/// that arrive late (queued by an offline tracker, sent with `cdt`, or in bulk).
pub const SECRET_LIFETIME: u32 = 48 * 3600;

/// Most ephemeral secrets (days without a stored secret) held at once. Hits are at most 7 days
/// old (the raw-data window) and never in the future, so a collector needs about 8 per zone;
/// the cap only bounds memory against anything unforeseen.
pub const MAX_EPHEMERAL: usize = 1_000;

/// What identifies a visitor for the hash, borrowed from the hit.
#[derive(Debug, Clone, Copy)]
pub struct VisitorInput<'a> {
    /// Matomo `idsite`.
    pub site_id: u32,
    /// Truncated client address.
    pub ip: TruncatedIp,
    /// User agent.
    pub user_agent: &'a str,
    /// `Accept-Language` (as sent).
    pub accept_language: &'a str,
    /// The tracker's visitor id (`_id`, 16 hex digits), when it sends one.
    pub client_id: Option<u64>,
}

/// A secret key for visitor and order keys.
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
}

impl Secret {
    /// A secret from its bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// Fresh random bytes for a secret, from the operating system's secure generator.
    pub fn generate_bytes() -> [u8; SECRET_LEN] {
        let mut bytes = [0u8; SECRET_LEN];
        // The system generator only fails if the OS has no entropy source at all; tally cannot
        // protect visitors without one, so refusing to continue is right.
        SystemRandom::new()
            .fill(&mut bytes)
            .expect("operating system random generator unavailable");
        bytes
    }

    /// A fresh random secret.
    pub fn generate() -> Self {
        Secret::new(&Secret::generate_bytes())
    }
}

/// One local day of one of the configured zones: where it lies in UTC and when its secret must
/// be gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneDay {
    /// Index of the zone in [`VisitorKeys::zones`].
    pub zone: usize,
    /// The local date, as a day number (what ClickHouse's `Date` holds).
    pub day: DayNumber,
    /// Unix time of the day's first instant (local midnight, or the first instant after it
    /// when the clocks skip midnight).
    pub start: u32,
    /// Unix time of the next day's first instant: the day is `[start, end)`, 23 to 25 hours.
    pub end: u32,
    /// `start` + 48 hours: from then on the secret must not exist.
    pub expires: u32,
}

impl ZoneDay {
    fn of(zone: usize, tz: Tz, date: chrono::NaiveDate) -> ZoneDay {
        let start = start_of_day(tz, date);
        ZoneDay {
            zone,
            day: day_number(date),
            start,
            end: start_of_day(tz, date.succ_opt().unwrap_or(date)),
            expires: start.saturating_add(SECRET_LIFETIME),
        }
    }
}

/// Why a hit got no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoKey {
    /// The site is not one the keys were built for.
    #[error("site {0} is not configured")]
    UnknownSite(u32),
    /// The hit's day has no stored secret and [`MAX_EPHEMERAL`] ephemeral ones exist already.
    #[error("too many days without a stored visitor secret")]
    TooManyDays,
}

impl NoKey {
    /// The reason under which a hit dropped for this is counted.
    pub fn reason(self) -> &'static str {
        match self {
            NoKey::UnknownSite(_) => "unknown_site",
            NoKey::TooManyDays => "no_visitor_secret",
        }
    }
}

/// Computes visitor and order keys under the secret of each hit's local day.
pub struct VisitorKeys {
    /// The distinct zones of the configured sites.
    zones: Box<[Tz]>,
    /// `(site id, zone index)`, sorted by site id.
    sites: Box<[(u32, usize)]>,
    table: ArcSwap<Table>,
}

/// The secrets in use, replaced as a whole at every refresh.
struct Table {
    /// Per zone (same order as `VisitorKeys::zones`), its days with a stored secret.
    zones: Box<[Box<[Held]>]>,
    /// Secrets of days without a stored one, made on demand, never stored, dropped with the
    /// table at the next refresh.
    ephemeral: Mutex<HashMap<(usize, DayNumber), Secret>>,
}

struct Held {
    day: ZoneDay,
    secret: Secret,
}

impl Table {
    fn empty(zones: usize) -> Table {
        Table {
            zones: (0..zones).map(|_| Box::default()).collect(),
            ephemeral: Mutex::new(HashMap::new()),
        }
    }
}

impl VisitorKeys {
    /// Keys for sites given as `(site id, time zone)`. No secret is held until
    /// [`install`](Self::install): until then every hit gets an ephemeral one.
    pub fn new(sites: impl IntoIterator<Item = (u32, Tz)>) -> Self {
        let mut zones: Vec<Tz> = Vec::new();
        let mut by_site: Vec<(u32, usize)> = Vec::new();
        for (site, tz) in sites {
            let zone = match zones.iter().position(|z| *z == tz) {
                Some(i) => i,
                None => {
                    zones.push(tz);
                    zones.len() - 1
                }
            };
            by_site.push((site, zone));
        }
        by_site.sort_unstable();
        by_site.dedup_by_key(|(site, _)| *site);
        let table = Table::empty(zones.len());
        VisitorKeys {
            zones: zones.into(),
            sites: by_site.into(),
            table: ArcSwap::from_pointee(table),
        }
    }

    /// Keys for the configured sites, each in its own `timezone`.
    pub fn for_sites(sites: &[SiteConfig]) -> Self {
        Self::new(sites.iter().map(|s| (s.id, s.tz())))
    }

    /// The distinct time zones of the sites.
    pub fn zones(&self) -> &[Tz] {
        &self.zones
    }

    /// The days whose secrets should be held at `now`, in every zone: every local day that
    /// has begun and whose secret has not expired (yesterday and today; the day before
    /// yesterday too for an hour after a 23-hour day), and tomorrow.
    pub fn held_days(&self, now: u32) -> Vec<ZoneDay> {
        let mut days = Vec::with_capacity(self.zones.len() * 4);
        for (zone, &tz) in self.zones.iter().enumerate() {
            let today = local_date(tz, now);
            let first = today
                .checked_sub_days(chrono::Days::new(2))
                .unwrap_or(today);
            // The day before yesterday (rarely still unexpired) to tomorrow.
            for date in first
                .iter_days()
                .take_while(|d| *d <= today)
                .chain(today.succ_opt())
            {
                let day = ZoneDay::of(zone, tz, date);
                // `end > start` only fails at the ends of the u32 range tally handles.
                if day.expires > now && day.end > day.start {
                    days.push(day);
                }
            }
        }
        days
    }

    /// The next instant after `now` at which the held secrets must change: the next local
    /// midnight of any zone, or the expiry of a held secret, whichever comes first.
    pub fn next_change(&self, now: u32) -> u32 {
        let mut next = u32::MAX;
        for day in self.held_days(now) {
            // A day that has begun ends at a midnight; its secret expires after that.
            for t in [day.start, day.end, day.expires] {
                if t > now {
                    next = next.min(t);
                }
            }
        }
        next
    }

    /// Replaces the held secrets by `secrets` (those expired at `now` are left out) and throws
    /// the ephemeral ones away.
    pub fn install(&self, now: u32, secrets: impl IntoIterator<Item = (ZoneDay, Secret)>) {
        let mut zones: Vec<Vec<Held>> = (0..self.zones.len()).map(|_| Vec::new()).collect();
        for (day, secret) in secrets {
            if day.expires > now
                && let Some(held) = zones.get_mut(day.zone)
                && !held.iter().any(|h| h.day.day == day.day)
            {
                held.push(Held { day, secret });
            }
        }
        self.table.store(std::sync::Arc::new(Table {
            zones: zones.into_iter().map(Vec::into_boxed_slice).collect(),
            ephemeral: Mutex::new(HashMap::new()),
        }));
    }

    /// Forgets every held secret that has expired at `now`, and the ephemeral ones: what a
    /// refresh that could not reach the database still does, so no secret outlives its 48
    /// hours in memory either.
    pub fn forget_expired(&self, now: u32) {
        let current = self.table.load_full();
        let kept: Vec<(ZoneDay, Secret)> = current
            .zones
            .iter()
            .flat_map(|held| held.iter())
            .map(|h| (h.day, h.secret.clone()))
            .collect();
        self.install(now, kept);
    }

    /// The days with a stored secret now held, in zone order.
    pub fn held(&self) -> Vec<ZoneDay> {
        let table = self.table.load();
        table
            .zones
            .iter()
            .flat_map(|h| h.iter().map(|h| h.day))
            .collect()
    }

    /// How many ephemeral secrets exist now.
    pub fn ephemeral_count(&self) -> usize {
        let table = self.table.load();
        let map = table.ephemeral.lock().unwrap_or_else(|e| e.into_inner());
        map.len()
    }

    /// Calls `f` with the secret of the local date of `at` (Unix seconds) in site `site_id`'s
    /// zone: a held one, or else an ephemeral one for that zone and date.
    pub fn with_secret<R>(
        &self,
        site_id: u32,
        at: u32,
        f: impl FnOnce(&Secret) -> R,
    ) -> Result<R, NoKey> {
        let zone = self
            .sites
            .binary_search_by_key(&site_id, |&(site, _)| site)
            .map(|i| self.sites[i].1)
            .map_err(|_| NoKey::UnknownSite(site_id))?;
        let table = self.table.load();
        if let Some(held) = table
            .zones
            .get(zone)
            .and_then(|days| days.iter().find(|h| h.day.start <= at && at < h.day.end))
        {
            return Ok(f(&held.secret));
        }
        self.ephemeral(&table, zone, at, f)
    }

    /// The slow path: a day without a stored secret.
    #[cold]
    fn ephemeral<R>(
        &self,
        table: &Table,
        zone: usize,
        at: u32,
        f: impl FnOnce(&Secret) -> R,
    ) -> Result<R, NoKey> {
        let day = day_number(local_date(self.zones[zone], at));
        let mut map = table.ephemeral.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(secret) = map.get(&(zone, day)) {
            return Ok(f(secret));
        }
        if map.len() >= MAX_EPHEMERAL {
            // Reusing any other day's secret would link that day's visitors with this one's;
            // the caller drops the hit instead (counted), until the next refresh empties this.
            return Err(NoKey::TooManyDays);
        }
        tracing::debug!(zone = self.zones[zone].name(), date = %date_of(day), "ephemeral visitor secret for a day without a stored one");
        let secret = map.entry((zone, day)).or_insert_with(Secret::generate);
        Ok(f(secret))
    }

    /// The visitor key of a hit at `at` (Unix seconds) for `input`.
    pub fn key(&self, at: u32, input: &VisitorInput<'_>) -> Result<u64, NoKey> {
        self.with_secret(input.site_id, at, |s| key_with(s, input))
    }

    /// The key of an ecommerce order id sent at `at`: the same order sent twice in a day has
    /// the same key, and nobody can go back from the key to the shop's order number.
    pub fn order_key(&self, site_id: u32, at: u32, order_id: &str) -> Result<u64, NoKey> {
        self.with_secret(site_id, at, |s| order_key_with(s, site_id, order_id))
    }
}

fn first_64_bits(tag: hmac::Tag) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&tag.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// The visitor key for `input` under `secret`.
pub fn key_with(secret: &Secret, input: &VisitorInput<'_>) -> u64 {
    let mut ctx = hmac::Context::with_key(&secret.key);
    ctx.update(&input.site_id.to_be_bytes());
    match input.client_id {
        // The cookie id already separates visitors; IP and agent would only split one visitor
        // into several when they move between networks.
        Some(id) => {
            ctx.update(b"c");
            ctx.update(&id.to_be_bytes());
        }
        None => {
            ctx.update(b"a");
            match input.ip.addr() {
                std::net::IpAddr::V4(v4) => ctx.update(&v4.octets()),
                std::net::IpAddr::V6(v6) => ctx.update(&v6.octets()),
            }
            // Lengths first, so that ("ab", "c") and ("a", "bc") hash differently.
            ctx.update(&(input.user_agent.len() as u32).to_be_bytes());
            ctx.update(input.user_agent.as_bytes());
            ctx.update(&(input.accept_language.len() as u32).to_be_bytes());
            ctx.update(input.accept_language.as_bytes());
        }
    }
    first_64_bits(ctx.sign())
}

/// The key of ecommerce order `order_id` of site `site_id` under `secret`.
pub fn order_key_with(secret: &Secret, site_id: u32, order_id: &str) -> u64 {
    let mut ctx = hmac::Context::with_key(&secret.key);
    ctx.update(&site_id.to_be_bytes());
    // A different tag than the visitor key's `a`/`c`, so an order key never equals one.
    ctx.update(b"o");
    ctx.update(order_id.as_bytes());
    first_64_bits(ctx.sign())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(ip: &str, ua: &'static str) -> VisitorInput<'static> {
        VisitorInput {
            site_id: 1,
            ip: TruncatedIp::new(ip.parse().unwrap(), 2),
            user_agent: ua,
            accept_language: "de-DE,de;q=0.9",
            client_id: None,
        }
    }

    fn berlin() -> Tz {
        "Europe/Berlin".parse().unwrap()
    }

    /// 2026-11-24 23:30 UTC: already the 25th in Berlin.
    const LATE_24TH: u32 = 1_795_563_000;
    const HOUR: u32 = 3600;

    /// Site 1 in Berlin, site 2 in UTC, site 3 in Berlin too.
    fn keys() -> VisitorKeys {
        VisitorKeys::new([(1, berlin()), (2, chrono_tz::UTC), (3, berlin())])
    }

    /// Installs a fresh secret for every held day at `now`.
    fn install_fresh(keys: &VisitorKeys, now: u32) {
        keys.install(
            now,
            keys.held_days(now)
                .into_iter()
                .map(|d| (d, Secret::generate())),
        );
    }

    fn key_of(keys: &VisitorKeys, site: u32, at: u32) -> u64 {
        let mut i = input("203.0.113.77", "UA");
        i.site_id = site;
        keys.key(at, &i).unwrap()
    }

    #[test]
    fn same_visitor_same_secret_same_key() {
        let s = Secret::new(&[7; 32]);
        // Same /16, same agent: the same visitor as far as tally can tell.
        assert_eq!(
            key_with(&s, &input("203.0.113.77", "UA")),
            key_with(&s, &input("203.0.9.9", "UA"))
        );
    }

    #[test]
    fn differs_by_every_input_and_secret() {
        let s = Secret::new(&[7; 32]);
        let base = key_with(&s, &input("203.0.113.77", "UA"));
        assert_ne!(base, key_with(&s, &input("198.51.100.1", "UA")));
        assert_ne!(base, key_with(&s, &input("203.0.113.77", "UA2")));
        let mut other_site = input("203.0.113.77", "UA");
        other_site.site_id = 2;
        assert_ne!(base, key_with(&s, &other_site));
        let mut other_lang = input("203.0.113.77", "UA");
        other_lang.accept_language = "en";
        assert_ne!(base, key_with(&s, &other_lang));
        assert_ne!(
            base,
            key_with(&Secret::new(&[8; 32]), &input("203.0.113.77", "UA"))
        );
        assert_ne!(order_key_with(&s, 1, "A1"), order_key_with(&s, 1, "A2"));
        assert_ne!(order_key_with(&s, 1, "A1"), order_key_with(&s, 2, "A1"));
    }

    #[test]
    fn client_id_replaces_ip_and_agent() {
        let s = Secret::new(&[7; 32]);
        let mut a = input("203.0.113.77", "UA");
        let mut b = input("198.51.100.1", "Other");
        a.client_id = Some(0xabcdef);
        b.client_id = Some(0xabcdef);
        assert_eq!(key_with(&s, &a), key_with(&s, &b));
        b.client_id = Some(0xabcdee);
        assert_ne!(key_with(&s, &a), key_with(&s, &b));
    }

    #[test]
    fn zones_are_shared_by_sites_and_looked_up_by_site() {
        let k = keys();
        assert_eq!(k.zones(), &[berlin(), chrono_tz::UTC]);
        assert!(k.key(LATE_24TH, &input("203.0.113.77", "UA")).is_ok());
        let mut unknown = input("203.0.113.77", "UA");
        unknown.site_id = 9;
        assert_eq!(k.key(LATE_24TH, &unknown), Err(NoKey::UnknownSite(9)));
    }

    #[test]
    fn held_days_are_yesterday_today_tomorrow_of_each_zone() {
        let k = keys();
        let days = k.held_days(LATE_24TH);
        let dates: Vec<(usize, String)> = days
            .iter()
            .map(|d| (d.zone, date_of(d.day).to_string()))
            .collect();
        assert_eq!(
            dates,
            [
                (0, "2026-11-24".into()),
                (0, "2026-11-25".into()),
                (0, "2026-11-26".into()),
                (1, "2026-11-23".into()),
                (1, "2026-11-24".into()),
                (1, "2026-11-25".into()),
            ]
        );
        // Berlin's 25th began at 23:00 UTC on the 24th; its secret goes 48 hours later.
        assert_eq!(days[1].start, LATE_24TH - HOUR / 2);
        assert_eq!(days[1].end - days[1].start, 24 * HOUR);
        assert_eq!(days[1].expires, days[1].start + 48 * HOUR);
        // UTC's 23rd began at 00:00 on the 23rd: 47.5 hours ago, still held for half an hour.
        assert_eq!(days[3].expires, LATE_24TH + HOUR / 2);
        assert_eq!(k.next_change(LATE_24TH), LATE_24TH + HOUR / 2);
        // Half an hour later UTC's 23rd is gone and the 26th is tomorrow.
        let later: Vec<String> = k
            .held_days(LATE_24TH + HOUR / 2)
            .iter()
            .filter(|d| d.zone == 1)
            .map(|d| date_of(d.day).to_string())
            .collect();
        assert_eq!(later, ["2026-11-24", "2026-11-25", "2026-11-26"]);
    }

    #[test]
    fn after_a_short_day_the_day_before_yesterday_is_held_until_it_expires() {
        // Berlin's 2026-03-29 has 23 hours: at 00:30 on the 30th (22:30 UTC on the 29th) the
        // 28th began 47.5 hours ago.
        let k = VisitorKeys::new([(1, berlin())]);
        let now = start_of_day(berlin(), "2026-03-30".parse().unwrap()) + HOUR / 2;
        let dates: Vec<String> = k
            .held_days(now)
            .iter()
            .map(|d| date_of(d.day).to_string())
            .collect();
        assert_eq!(
            dates,
            ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
        );
        assert_eq!(k.next_change(now), now + HOUR / 2);
    }

    #[test]
    fn one_key_per_local_day_of_the_sites_zone() {
        let k = keys();
        install_fresh(&k, LATE_24TH);
        let utc_midnight = LATE_24TH + HOUR / 2; // 00:00 UTC on the 25th, 01:00 in Berlin
        let berlin_midnight = LATE_24TH - HOUR / 2; // 00:00 on the 25th in Berlin
        // Berlin: across 00:00 UTC one key (the same local day), across local midnight two.
        assert_eq!(
            key_of(&k, 1, utc_midnight - 60),
            key_of(&k, 1, utc_midnight + 60)
        );
        assert_ne!(
            key_of(&k, 1, berlin_midnight - 1),
            key_of(&k, 1, berlin_midnight)
        );
        // UTC: the other way round.
        assert_ne!(key_of(&k, 2, utc_midnight - 1), key_of(&k, 2, utc_midnight));
        assert_eq!(
            key_of(&k, 2, berlin_midnight - 60),
            key_of(&k, 2, berlin_midnight + 60)
        );
        // Orders follow the same days.
        assert_eq!(
            k.order_key(1, utc_midnight - 60, "A-1"),
            k.order_key(1, utc_midnight + 60, "A-1")
        );
        assert_ne!(
            k.order_key(2, utc_midnight - 60, "A-1"),
            k.order_key(2, utc_midnight + 60, "A-1")
        );
        // Every hit of the three held days used a held secret.
        assert_eq!(k.ephemeral_count(), 0);
    }

    #[test]
    fn days_without_a_stored_secret_get_an_ephemeral_one_until_the_next_refresh() {
        let k = keys();
        install_fresh(&k, LATE_24TH);
        let old = LATE_24TH - 4 * 86_400;
        let first = key_of(&k, 1, old);
        // Consistent within the day and the refresh period, for every site of the zone...
        assert_eq!(first, key_of(&k, 1, old + 3600));
        let mut other_site = input("203.0.113.77", "UA");
        other_site.site_id = 3;
        k.key(old, &other_site).unwrap();
        assert_eq!(k.ephemeral_count(), 1);
        // ...a zone and a day of its own...
        key_of(&k, 2, old);
        key_of(&k, 1, old - 86_400);
        assert_eq!(k.ephemeral_count(), 3);
        // ...and gone at the next refresh, whether it reached the database or not.
        install_fresh(&k, LATE_24TH + 60);
        assert_eq!(k.ephemeral_count(), 0);
        assert_ne!(first, key_of(&k, 1, old));
        k.forget_expired(LATE_24TH + 120);
        assert_ne!(first, key_of(&k, 1, old));
        assert_eq!(k.ephemeral_count(), 1);
        // Held days never take an ephemeral secret.
        key_of(&k, 1, LATE_24TH);
        key_of(&k, 2, LATE_24TH - 86_400);
        assert_eq!(k.ephemeral_count(), 1);
    }

    #[test]
    fn beyond_the_cap_a_hit_gets_no_key() {
        let k = VisitorKeys::new([(1, chrono_tz::UTC)]);
        let base = 1_700_000_000 - (MAX_EPHEMERAL as u32) * 86_400;
        for d in 0..MAX_EPHEMERAL as u32 {
            k.key(base + d * 86_400, &input("203.0.113.77", "UA"))
                .unwrap();
        }
        // A day already made still works; a new one is refused rather than given another
        // day's secret.
        assert!(k.key(base, &input("203.0.113.77", "UA")).is_ok());
        assert_eq!(
            k.key(1_700_000_000, &input("203.0.113.77", "UA")),
            Err(NoKey::TooManyDays)
        );
        assert_eq!(NoKey::TooManyDays.reason(), "no_visitor_secret");
        k.forget_expired(1_700_000_000);
        assert!(k.key(1_700_000_000, &input("203.0.113.77", "UA")).is_ok());
    }

    #[test]
    fn expired_secrets_are_forgotten_even_without_the_database() {
        let k = keys();
        install_fresh(&k, LATE_24TH);
        let before = key_of(&k, 2, LATE_24TH - 86_400); // UTC's 23rd
        assert_eq!(k.held().len(), 6);
        // Past the expiry of UTC's 23rd (00:00 UTC on the 25th), with no new secrets loaded.
        k.forget_expired(LATE_24TH + HOUR / 2);
        assert_eq!(k.held().len(), 5);
        assert!(k.held().iter().all(|d| d.expires > LATE_24TH + HOUR / 2));
        assert_ne!(before, key_of(&k, 2, LATE_24TH - 86_400));
        // Installing an expired secret does nothing either.
        let k2 = keys();
        k2.install(
            LATE_24TH + HOUR,
            k.held_days(LATE_24TH)
                .into_iter()
                .map(|d| (d, Secret::generate())),
        );
        assert_eq!(k2.held().len(), 5);
    }
}
