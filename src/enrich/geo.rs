//! IP geolocation from a MaxMind DB (`.mmdb`) file.
//!
//! # Privacy
//! The caller decides which address is looked up. By default the pipeline
//! passes the *truncated* address (IPv4 `/16`, e.g. `81.2.0.0`; IPv6 `/48`),
//! so the database never sees the visitor's full address; only when a site
//! opts into `use_full_ip` does the caller pass the full one. This module
//! neither truncates nor stores addresses.
//!
//! What a truncated lookup yields depends on the database: the address
//! `a.b.0.0` falls into whichever network contains it, so with a real,
//! full-coverage database the *country* almost always still resolves (the
//! whole `/16` is usually allocated to one country), while the *city* and
//! *region* are those of whatever network happens to start at `a.b.0.0`, and
//! may be empty or differ from the visitor's. Examples from real databases
//! (geo-whois-asn-country and DB-IP City Lite, checked by hand):
//! `89.160.0.0` stays SE but the city moves from Stockholm to Bergshamra;
//! `193.99.0.0` stays DE but moves from Hanover to Pforzheim; `81.2.0.0`
//! becomes RU/Vladivostok while `81.2.69.142` is GB/London — the /16 is
//! split between countries. MaxMind's test databases only
//! contain a few small networks, so there a truncated address is simply not
//! found and yields an empty [`Location`] (the tests pin both behaviours).
//!
//! # Layouts
//! Two record layouts are decoded by the same reader:
//! * MaxMind GeoIP2/GeoLite2 Country and City (and DB-IP's own mmdb files,
//!   which use the same nested layout): `country.iso_code`,
//!   `subdivisions[0].iso_code`, `city.names.en`.
//! * The flat `@ip-location-db` layout (`dbip-city-mmdb`,
//!   `geolite2-city-mmdb`, `*-country-mmdb`): `country_code`, `state1`,
//!   `city`.
//!
//! # Hot reload
//! The reader sits behind an [`ArcSwap`]: lookups load the current reader
//! without locking, [`GeoDb::reload`] swaps in a new one when the file's
//! length or mtime changed. Lookups that started on the old reader finish on
//! it; it is unmapped when the last of them drops it. The binary calls
//! `reload` on SIGHUP and may also run [`GeoDb::spawn_reload_watcher`].
//!
//! Replace the database by writing a new file and renaming it over the old
//! one (as `geoipupdate` does), never by rewriting it in place: the old file
//! is memory-mapped, and truncating a mapped file under a reader is
//! undefined behaviour.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use maxminddb::{MaxMindDbError, Mmap, Reader};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::privacy::{Geolocate, TruncatedIp};

/// Where an address is, as far as the database knows. All fields are empty
/// when unknown (the [`Default`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2 country code, e.g. `"DE"`; empty if unknown.
    pub country: String,
    /// Largest subdivision: its ISO 3166-2 code (`"ENG"`) in MaxMind
    /// layouts, its name (`"England"`) in the flat layout; empty if none.
    pub region: String,
    /// City name in English; empty if none.
    pub city: String,
}

/// Errors opening or reloading a database.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// The file could not be stat'ed (missing, permissions…).
    #[error("geo database {path}: {source}")]
    Io {
        /// The database path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be mapped or is not a valid MaxMind DB.
    #[error("geo database {path}: {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: MaxMindDbError,
    },
}

/// Metadata of the loaded database, for a start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseInfo {
    /// Path the database was opened from.
    pub path: PathBuf,
    /// The `database_type` metadata, e.g. `"GeoIP2-City"`.
    pub database_type: String,
    /// Build time, seconds since the Unix epoch.
    pub build_epoch: u64,
    /// 4 for IPv4-only databases, 6 for IPv6 (which also hold IPv4).
    pub ip_version: u16,
    /// Size of the file in bytes.
    pub file_len: u64,
}

impl fmt::Display for DatabaseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, IPv{}, built at epoch {}, {} bytes)",
            self.path.display(),
            self.database_type,
            self.ip_version,
            self.build_epoch,
            self.file_len
        )
    }
}

/// Identity of a file version: a change of either means "reload".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    mtime: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> Result<Self, GeoError> {
        let meta = std::fs::metadata(path).map_err(|source| GeoError::Io {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            len: meta.len(),
            mtime: meta.modified().ok(),
        })
    }
}

struct Loaded {
    reader: Reader<Mmap>,
    stamp: FileStamp,
}

impl Loaded {
    fn open(path: &Path) -> Result<Self, GeoError> {
        let stamp = FileStamp::of(path)?;
        // SAFETY: the mapping is only sound while nobody truncates or rewrites
        // the file in place. The module docs require replacing the database by
        // rename, which leaves this mapping on the old inode intact.
        let reader = unsafe { Reader::open_mmap(path) }.map_err(|source| GeoError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { reader, stamp })
    }
}

/// A memory-mapped, hot-reloadable geolocation database.
pub struct GeoDb {
    path: PathBuf,
    /// `None` only for [`GeoDb::awaiting`] until its file appears.
    current: ArcSwapOption<Loaded>,
    /// Serialises reloads (watcher and SIGHUP may race) so one file version
    /// is mapped once; lookups never take it.
    reload_lock: Mutex<()>,
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl crate::privacy::ip::sealed::Sealed for GeoDb {}

impl Geolocate for GeoDb {
    type Location = Location;
    fn locate_addr(&self, ip: IpAddr) -> Location {
        self.lookup_addr(ip)
    }
}

impl GeoDb {
    /// Memory-maps the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<GeoDb, GeoError> {
        let path = path.as_ref().to_owned();
        let loaded = Loaded::open(&path)?;
        Ok(GeoDb {
            path,
            current: ArcSwapOption::from_pointee(loaded),
            reload_lock: Mutex::new(()),
        })
    }

    /// A database whose file is not there yet (the first run's country database, when the
    /// fetch at start failed): every lookup finds nothing until [`GeoDb::reload`] finds the
    /// file, which `tally geo update` then writes, and loads it.
    pub fn awaiting(path: impl AsRef<Path>) -> GeoDb {
        GeoDb {
            path: path.as_ref().to_owned(),
            current: ArcSwapOption::empty(),
            reload_lock: Mutex::new(()),
        }
    }

    /// Looks a truncated address up (the default; a full one only through
    /// [`crate::privacy::FullIp::locate`]). Never fails: an address that is not in the
    /// database, a record of an unexpected shape or a corrupt record all give an empty
    /// [`Location`].
    pub fn lookup(&self, ip: TruncatedIp) -> Location {
        self.lookup_addr(ip.addr())
    }

    fn lookup_addr(&self, ip: IpAddr) -> Location {
        let guard = self.current.load();
        let Some(loaded) = guard.as_ref() else {
            return Location::default();
        };
        let record = match loaded.reader.lookup(ip) {
            Ok(result) => match result.decode::<GeoRecord<'_>>() {
                Ok(Some(record)) => record,
                Ok(None) | Err(_) => return Location::default(),
            },
            // An IPv6 address in an IPv4-only database, or a corrupt tree.
            Err(_) => return Location::default(),
        };
        record.into_location()
    }

    /// Swaps in a new reader if the file's length or mtime changed since it
    /// was last loaded. Returns `Ok(true)` if it reloaded, `Ok(false)` if the
    /// file is unchanged (or, [`GeoDb::awaiting`] it, still missing). On error
    /// the current reader stays in service.
    pub fn reload(&self) -> Result<bool, GeoError> {
        // A poisoned lock only means another reload panicked; the data it
        // guards is `()`, so carrying on is safe.
        let _guard = self
            .reload_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.current.load();
        let stamp = match FileStamp::of(&self.path) {
            Ok(stamp) => stamp,
            // Still waiting for the first file: nothing to report every few seconds.
            Err(GeoError::Io { source, .. })
                if current.is_none() && source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if current.as_ref().is_some_and(|l| l.stamp == stamp) {
            return Ok(false);
        }
        let loaded = Loaded::open(&self.path)?;
        self.current.store(Some(Arc::new(loaded)));
        Ok(true)
    }

    /// Spawns a tokio task that calls [`GeoDb::reload`] every `interval`
    /// (a few seconds is plenty: the check is one `stat`). Reload errors are
    /// logged with `tracing` and retried at the next tick; the old database
    /// keeps serving meanwhile. The task ends when the handle is aborted.
    /// Must be called from within a tokio runtime.
    pub fn spawn_reload_watcher(
        self: Arc<Self>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await; // the first tick is immediate; the file was just opened
            loop {
                ticker.tick().await;
                let db = Arc::clone(&self);
                // stat + mmap are blocking syscalls: keep them off the async workers.
                match tokio::task::spawn_blocking(move || db.reload()).await {
                    Ok(Ok(true)) => {
                        if let Some(info) = self.database_info() {
                            tracing::info!(db = %info, "geo database reloaded");
                        }
                    }
                    Ok(Ok(false)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "geo database reload failed; keeping the old one");
                    }
                    Err(err) => tracing::warn!(error = %err, "geo database reload task failed"),
                }
            }
        })
    }

    /// Metadata of the database currently in service; `None` while [`GeoDb::awaiting`] it.
    pub fn database_info(&self) -> Option<DatabaseInfo> {
        let guard = self.current.load();
        let loaded = guard.as_ref()?;
        let meta = loaded.reader.metadata();
        Some(DatabaseInfo {
            path: self.path.clone(),
            database_type: meta.database_type.clone(),
            build_epoch: meta.build_epoch,
            ip_version: meta.ip_version,
            file_len: loaded.stamp.len,
        })
    }

    /// The path the database is (re)loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One record, decoded from either layout. Only the fields we keep are
/// decoded; the deserializer skips the rest without allocating, and strings
/// borrow from the mapped file.
#[derive(Deserialize, Default)]
#[serde(default)]
struct GeoRecord<'a> {
    // MaxMind layout.
    #[serde(borrow)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow)]
    subdivisions: Option<FirstSubdivision<'a>>,
    // `city` is a map in the MaxMind layout and a plain string in the flat
    // layout, hence the dual-shape type.
    #[serde(borrow)]
    city: Option<CityName<'a>>,
    // Flat layout.
    #[serde(borrow)]
    country_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    state1: Option<Cow<'a, str>>,
}

impl GeoRecord<'_> {
    fn into_location(self) -> Location {
        let country = self
            .country
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .unwrap_or_default();
        let region = self
            .subdivisions
            .and_then(|s| s.0)
            .or(self.state1)
            .unwrap_or_default();
        let city = self.city.and_then(|c| c.0).unwrap_or_default();
        Location {
            country: country.into_owned(),
            region: region.into_owned(),
            city: city.into_owned(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct IsoCode<'a> {
    #[serde(borrow)]
    iso_code: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct EnglishName<'a> {
    #[serde(borrow)]
    en: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Subdivision<'a> {
    #[serde(borrow)]
    iso_code: Option<Cow<'a, str>>,
    #[serde(borrow)]
    names: Option<EnglishName<'a>>,
}

/// The first (largest) subdivision's ISO code, else its English name.
/// Decoding a sequence element by element avoids a `Vec` per lookup.
struct FirstSubdivision<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstSubdivision<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FirstSubdivision<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of subdivisions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first: Option<Subdivision<'a>> = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstSubdivision(first.and_then(|s| {
                    s.iso_code.or_else(|| s.names.and_then(|n| n.en))
                })))
            }
        }
        deserializer.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// `city` as either `{"names": {"en": …}, …}` (MaxMind) or `"…"` (flat).
struct CityName<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for CityName<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CityName<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a city name or a city record")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CityName(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CityName(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "names" {
                        name = map.next_value::<EnglishName<'a>>()?.en;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CityName(name))
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Test helpers shared with the bench: the fixture directory and a loud
/// failure when the fetch script has not been run.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    /// Path of a file fetched by `tests/fixtures/fetch-geo.sh`; panics with
    /// instructions when it is missing, so a missing fixture fails the test
    /// instead of skipping it.
    pub fn geo_fixture(name: &str) -> PathBuf {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/geo")
            .join(name);
        assert!(
            path.is_file(),
            "missing test database {}: run tests/fixtures/fetch-geo.sh first",
            path.display()
        );
        path
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::geo_fixture;
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn loc(country: &str, region: &str, city: &str) -> Location {
        Location {
            country: country.into(),
            region: region.into(),
            city: city.into(),
        }
    }

    #[test]
    fn city_test_db_resolves_documented_addresses() {
        let db = GeoDb::open(geo_fixture("GeoIP2-City-Test.mmdb")).unwrap();
        assert_eq!(
            db.lookup_addr(ip("81.2.69.142")),
            loc("GB", "ENG", "London")
        );
        assert_eq!(
            db.lookup_addr(ip("2.125.160.216")),
            loc("GB", "ENG", "Boxford")
        );
        assert_eq!(
            db.lookup_addr(ip("89.160.20.112")),
            loc("SE", "E", "Linköping")
        );
        assert_eq!(
            db.lookup_addr(ip("216.160.83.56")),
            loc("US", "WA", "Milton")
        );
        assert_eq!(
            db.lookup_addr(ip("175.16.199.1")),
            loc("CN", "22", "Changchun")
        );
        // IPv6 network with a country but no city.
        assert_eq!(db.lookup_addr(ip("2001:218::1")), loc("JP", "", ""));
        assert_eq!(
            db.lookup_addr(ip("2001:480:10::1")),
            loc("US", "CA", "San Diego")
        );
    }

    #[test]
    fn geolite_city_test_db_resolves() {
        let db = GeoDb::open(geo_fixture("GeoLite2-City-Test.mmdb")).unwrap();
        assert_eq!(
            db.lookup_addr(ip("81.2.69.142")),
            loc("GB", "ENG", "London")
        );
        assert_eq!(
            db.lookup_addr(ip("89.160.20.112")),
            loc("SE", "E", "Linköping")
        );
    }

    #[test]
    fn country_test_db_has_no_region_or_city() {
        let db = GeoDb::open(geo_fixture("GeoLite2-Country-Test.mmdb")).unwrap();
        assert_eq!(db.lookup_addr(ip("81.2.69.142")), loc("GB", "", ""));
        assert_eq!(db.lookup_addr(ip("89.160.20.112")), loc("SE", "", ""));
        let db = GeoDb::open(geo_fixture("GeoIP2-Country-Test.mmdb")).unwrap();
        assert_eq!(db.lookup_addr(ip("2.125.160.216")), loc("GB", "", ""));
    }

    #[test]
    fn unknown_and_private_addresses_give_empty_location() {
        let db = GeoDb::open(geo_fixture("GeoIP2-City-Test.mmdb")).unwrap();
        assert_eq!(db.lookup_addr(ip("10.0.0.1")), Location::default());
        assert_eq!(db.lookup_addr(ip("127.0.0.1")), Location::default());
        assert_eq!(db.lookup_addr(ip("::1")), Location::default());
        // A record that exists but has no country at all.
        assert_eq!(db.lookup_addr(ip("214.1.1.1")), Location::default());
    }

    #[test]
    fn truncated_address_in_test_db_is_not_found() {
        // The test database holds only tiny networks (81.2.69.142/31 …), so
        // the /16-truncated address falls outside all of them.
        let db = GeoDb::open(geo_fixture("GeoIP2-City-Test.mmdb")).unwrap();
        assert_eq!(db.lookup_addr(ip("81.2.0.0")), Location::default());
        assert_eq!(db.lookup_addr(ip("89.160.0.0")), Location::default());
        // IPv6 /48 truncation stays inside the /32 allocation: country kept.
        assert_eq!(db.lookup_addr(ip("2001:218:1234::")), loc("JP", "", ""));
    }

    #[test]
    fn flat_layout_country_db_full_and_truncated() {
        // Real full-coverage database in the @ip-location-db flat layout.
        let db = GeoDb::open(geo_fixture("geo-whois-asn-country.mmdb")).unwrap();
        for (full, truncated, country) in [
            ("89.160.20.112", "89.160.0.0", "SE"),
            ("193.99.144.80", "193.99.0.0", "DE"),
            ("8.8.8.8", "8.8.0.0", "US"),
            ("2.125.160.216", "2.125.0.0", "GB"),
        ] {
            assert_eq!(db.lookup_addr(ip(full)), loc(country, "", ""), "{full}");
            assert_eq!(
                db.lookup_addr(ip(truncated)),
                loc(country, "", ""),
                "{truncated}"
            );
        }
        // The caveat in the module docs, for real: 81.2.0.0/16 is split
        // between registries' customers, and its first network is Russian.
        assert_eq!(db.lookup_addr(ip("81.2.69.142")), loc("GB", "", ""));
        assert_eq!(db.lookup_addr(ip("81.2.0.0")), loc("RU", "", ""));
        assert_eq!(db.lookup_addr(ip("2a00:1450:4001::")), loc("IE", "", ""));
        assert_eq!(db.lookup_addr(ip("10.1.2.3")), Location::default());
    }

    #[test]
    fn an_awaited_database_finds_nothing_until_its_file_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("country.mmdb");
        let db = GeoDb::awaiting(&path);
        let ip: IpAddr = "193.99.144.80".parse().unwrap();
        assert_eq!(db.lookup_addr(ip), Location::default());
        assert!(db.database_info().is_none());
        // Missing is not an error while waiting (the watcher would warn every few seconds).
        assert!(!db.reload().unwrap());
        std::fs::copy(geo_fixture("geo-whois-asn-country.mmdb"), &path).unwrap();
        assert!(db.reload().unwrap());
        assert_eq!(db.lookup_addr(ip).country, "DE");
        assert!(db.database_info().is_some());
        assert!(!db.reload().unwrap());
    }

    #[test]
    fn database_info_reports_metadata() {
        let path = geo_fixture("GeoIP2-City-Test.mmdb");
        let db = GeoDb::open(&path).unwrap();
        let info = db.database_info().unwrap();
        assert_eq!(info.database_type, "GeoIP2-City");
        assert_eq!(info.ip_version, 6);
        assert_eq!(info.file_len, std::fs::metadata(&path).unwrap().len());
        assert!(info.build_epoch > 1_500_000_000, "{}", info.build_epoch);
        assert!(info.to_string().contains("GeoIP2-City"));
    }

    #[test]
    fn open_errors_are_reported_not_panicked() {
        let err = GeoDb::open("/nonexistent/x.mmdb").unwrap_err();
        assert!(matches!(err, GeoError::Io { .. }), "{err}");
        let dir = tempdir();
        let bogus = dir.join("bogus.mmdb");
        std::fs::write(&bogus, b"not a database").unwrap();
        let err = GeoDb::open(&bogus).unwrap_err();
        assert!(matches!(err, GeoError::Open { .. }), "{err}");
    }

    /// A fresh directory under the target dir (no tempfile dependency).
    fn tempdir() -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!(
            "target/geo-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Atomically replaces `dst` with a copy of `src` (write + rename), the
    /// way the module docs require.
    fn replace_with(src: &Path, dst: &Path) {
        let tmp = dst.with_extension("tmp");
        std::fs::copy(src, &tmp).unwrap();
        std::fs::rename(&tmp, dst).unwrap();
    }

    #[test]
    fn reload_swaps_database_when_file_changes() {
        let dir = tempdir();
        let live = dir.join("live.mmdb");
        replace_with(&geo_fixture("GeoLite2-Country-Test.mmdb"), &live);
        let db = GeoDb::open(&live).unwrap();
        assert_eq!(db.lookup_addr(ip("81.2.69.142")), loc("GB", "", ""));
        assert!(!db.reload().unwrap(), "unchanged file must not reload");

        replace_with(&geo_fixture("GeoIP2-City-Test.mmdb"), &live);
        assert!(db.reload().unwrap());
        assert_eq!(
            db.lookup_addr(ip("81.2.69.142")),
            loc("GB", "ENG", "London")
        );
        assert_eq!(db.database_info().unwrap().database_type, "GeoIP2-City");
        assert!(!db.reload().unwrap());

        // A broken replacement keeps the old reader serving.
        std::fs::write(dir.join("broken.tmp"), b"garbage").unwrap();
        std::fs::rename(dir.join("broken.tmp"), &live).unwrap();
        assert!(matches!(db.reload(), Err(GeoError::Open { .. })));
        assert_eq!(
            db.lookup_addr(ip("81.2.69.142")),
            loc("GB", "ENG", "London")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_picks_up_replaced_file() {
        let dir = tempdir();
        let live = dir.join("live.mmdb");
        replace_with(&geo_fixture("GeoLite2-Country-Test.mmdb"), &live);
        let db = Arc::new(GeoDb::open(&live).unwrap());
        let handle = Arc::clone(&db).spawn_reload_watcher(Duration::from_millis(20));
        replace_with(&geo_fixture("GeoLite2-City-Test.mmdb"), &live);
        let mut reloaded = false;
        for _ in 0..250 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if db.database_info().unwrap().database_type == "GeoLite2-City" {
                reloaded = true;
                break;
            }
        }
        handle.abort();
        assert!(reloaded, "watcher did not reload the replaced file");
        assert_eq!(
            db.lookup_addr(ip("81.2.69.142")),
            loc("GB", "ENG", "London")
        );
    }
}
