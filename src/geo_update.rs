//! The free country database: `tally geo update`, and the first run of `tally serve` when no
//! `[geo] database` is configured.
//!
//! The database is the npm package `@ip-location-db/geo-whois-asn-country-mmdb` (licence field
//! `CC0-1.0`; it bundles the NRO's statistics, whose CC BY 4.0 notice asks for attribution to
//! nro.net): a country-only `.mmdb` in the flat layout [`crate::enrich::geo`] reads, about
//! 8 MB, rebuilt daily from the regional internet registries' public data. It is fetched from
//! the npm registry because that is a registry every tally machine reaches, and it needs no
//! account or licence key (MaxMind's GeoLite2 needs both).
//!
//! One update, [`update`]:
//! 1. `GET <registry>/<package>/latest`: the package's newest version, its `dist.tarball` and
//!    `dist.integrity` (a Subresource Integrity string, `sha512-<base64>`);
//! 2. the tarball, refused unless its SHA-512 is the one the registry names;
//! 3. the `.mmdb` ([`FILE_NAME`], which covers IPv4 and IPv6) taken out of the `.tgz` into a temporary file beside the destination, opened
//!    with the geo reader (so a file that is not a usable database never replaces a good one);
//! 4. renamed over the destination. A rename, never a rewrite in place: a running collector has
//!    the old file memory-mapped and picks the new one up within seconds
//!    ([`crate::enrich::GeoDb::spawn_reload_watcher`]).
//!
//! Every step has a limit: a connect timeout, an overall timeout per request, and a size limit
//! on the registry's answer, the tarball and the unpacked database. The client is blocking
//! (`ureq`, small, over the `ring` tally already has); [`update_async`] runs it off the async
//! workers.
//!
//! # Privacy
//! The request goes from the collector's machine to the registry, at start (once, only while
//! the file is missing) and when an operator runs `tally geo update`; it carries nothing about
//! visitors. `[geo] auto = false` turns it off.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest;
use serde::Deserialize;

use crate::config::Config;
use crate::enrich::geo::{DatabaseInfo, GeoDb, GeoError};

/// The npm package holding the database.
pub const PACKAGE: &str = "@ip-location-db/geo-whois-asn-country-mmdb";
/// The public npm registry.
pub const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org";
/// The database's file name, in the package and in the data directory.
pub const FILE_NAME: &str = "geo-whois-asn-country.mmdb";

/// The registry's answer about the package is a few KB; anything far bigger is not it.
const MAX_METADATA: u64 = 1 << 20;
/// The tarball is about 5 MB today; room to grow, not to fill a disk.
const MAX_TARBALL: u64 = 64 << 20;
/// The unpacked database is about 8 MB today.
const MAX_DATABASE: u64 = 256 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// Generous for a slow line, yet a stalled download cannot hold a start for long.
const TARBALL_TIMEOUT: Duration = Duration::from_secs(180);

/// Why an update failed. The destination is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The request failed: no network, a timeout, an HTTP error status, a body over its limit.
    #[error("{url}: {source}")]
    Http {
        /// What was requested.
        url: String,
        /// The client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The registry's answer is not what an npm registry says about the package.
    #[error("{url}: {message}")]
    Registry {
        /// What was requested.
        url: String,
        /// What is wrong with the answer.
        message: String,
    },
    /// The tarball is not the one the registry vouches for.
    #[error(
        "{url}: integrity check failed: the registry names {expected}, the download is {actual}"
    )]
    Integrity {
        /// The tarball.
        url: String,
        /// `sha512-…` as the registry gave it.
        expected: String,
        /// `sha512-…` of what was downloaded.
        actual: String,
    },
    /// The tarball could not be unpacked, or holds no database.
    #[error("package tarball: {0}")]
    Archive(String),
    /// Writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The unpacked file is not a database the geo reader can use.
    #[error(transparent)]
    Geo(#[from] GeoError),
}

/// What an update installed.
#[derive(Debug, Clone)]
pub struct Updated {
    /// The package version, e.g. `2.3.2026061719` (the last part is the build date).
    pub version: String,
    /// The package's licence field, e.g. `CC0-1.0`.
    pub license: String,
    /// The database as the geo reader sees it.
    pub info: DatabaseInfo,
}

/// The data directory: where the embedded ClickHouse keeps its files (`[clickhouse]
/// embedded_dir`'s parent, `./var` by default), also when the events go to another server.
pub fn data_dir(config: &Config) -> PathBuf {
    config.data_dir()
}

/// Where `tally geo update` writes the database and `tally serve` looks for it.
pub fn auto_path(config: &Config) -> PathBuf {
    data_dir(config).join(FILE_NAME)
}

/// Fetches the newest database from `registry` and installs it at `dest` (see the module
/// documentation). Blocking: network and disk.
pub fn update(registry: &str, dest: &Path) -> Result<Updated, UpdateError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        // The machine's own trust store (`/etc/ssl/certs`, `SSL_CERT_FILE`), as curl and apt
        // use it: a company or proxy CA the operator installed is trusted here too.
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                .build(),
        )
        .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let url = metadata_url(registry);
    let latest: Latest = {
        let body = get(&agent, &url, METADATA_TIMEOUT, MAX_METADATA)?;
        serde_json::from_slice(&body).map_err(|e| UpdateError::Registry {
            url: url.clone(),
            message: format!("not the package's metadata: {e}"),
        })?
    };
    let tarball_url = latest.dist.tarball;
    match url::Url::parse(&tarball_url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => {}
        _ => {
            return Err(UpdateError::Registry {
                url,
                message: format!("dist.tarball {tarball_url:?} is not an http(s) URL"),
            });
        }
    }
    let expected = latest
        .dist
        .integrity
        .as_deref()
        .and_then(sha512_of_sri)
        .ok_or_else(|| UpdateError::Registry {
            url: url.clone(),
            message: "dist.integrity names no sha512 digest".into(),
        })?;
    let tarball = get(&agent, &tarball_url, TARBALL_TIMEOUT, MAX_TARBALL)?;
    let actual = STANDARD.encode(digest::digest(&digest::SHA512, &tarball));
    if actual != expected {
        return Err(UpdateError::Integrity {
            url: tarball_url,
            expected: format!("sha512-{expected}"),
            actual: format!("sha512-{actual}"),
        });
    }
    let info = install(&tarball, dest)?;
    Ok(Updated {
        version: latest.version,
        license: latest.license.unwrap_or_default(),
        info,
    })
}

/// [`update`] on the blocking pool.
pub async fn update_async(registry: String, dest: PathBuf) -> Result<Updated, UpdateError> {
    match tokio::task::spawn_blocking(move || update(&registry, &dest)).await {
        Ok(result) => result,
        Err(e) => Err(UpdateError::Archive(format!("the update task failed: {e}"))),
    }
}

/// `<registry>/<package>/latest`; the scope's `/` stays as it is, as npm's own client sends it.
fn metadata_url(registry: &str) -> String {
    format!("{}/{PACKAGE}/latest", registry.trim_end_matches('/'))
}

/// The parts of `GET /<package>/latest` that are used.
#[derive(Deserialize)]
struct Latest {
    version: String,
    #[serde(default)]
    license: Option<String>,
    dist: Dist,
}

#[derive(Deserialize)]
struct Dist {
    tarball: String,
    #[serde(default)]
    integrity: Option<String>,
}

/// The base64 SHA-512 digest of a Subresource Integrity string (`sha512-<base64>`, possibly
/// among other space-separated hashes); `None` without one. The older `shasum` (SHA-1) is not
/// accepted.
fn sha512_of_sri(sri: &str) -> Option<String> {
    sri.split_whitespace()
        .filter_map(|h| h.strip_prefix("sha512-"))
        // An SRI hash may carry `?options`.
        .map(|b64| b64.split('?').next().unwrap_or(b64).to_string())
        .find(|b64| STANDARD.decode(b64).is_ok_and(|d| d.len() == 64))
}

/// A GET of at most `limit` bytes within `timeout`; any status but 2xx is an error.
fn get(
    agent: &ureq::Agent,
    url: &str,
    timeout: Duration,
    limit: u64,
) -> Result<Vec<u8>, UpdateError> {
    let http = |source| UpdateError::Http {
        url: url.to_string(),
        source: Box::new(source),
    };
    let mut resp = agent
        .get(url)
        .config()
        .timeout_global(Some(timeout))
        .build()
        .call()
        .map_err(http)?;
    resp.body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(http)
}

/// Unpacks the database of `tarball` beside `dest`, checks it opens, and renames it over
/// `dest`.
fn install(tarball: &[u8], dest: &Path) -> Result<DatabaseInfo, UpdateError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UpdateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = dest
        .file_name()
        .map_or_else(|| FILE_NAME.into(), |n| n.to_string_lossy().into_owned());
    // Hidden, per process: two updates at once do not write into each other's file.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        unpack_database(tarball, &tmp)?;
        let info = GeoDb::open(&tmp)?
            .database_info()
            .ok_or_else(|| UpdateError::Archive("the database did not load".into()))?;
        std::fs::rename(&tmp, dest).map_err(io(dest))?;
        Ok(DatabaseInfo {
            path: dest.to_path_buf(),
            ..info
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the entry named [`FILE_NAME`] of the gzipped tarball to `out`. The package also holds
/// IPv4-only and IPv6-only halves of it; the whole one answers both.
fn unpack_database(tarball: &[u8], out: &Path) -> Result<(), UpdateError> {
    let archive = |e: std::io::Error| UpdateError::Archive(e.to_string());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(tarball));
    for entry in tar.entries().map_err(archive)? {
        let entry = entry.map_err(archive)?;
        let is_db = entry.header().entry_type().is_file()
            && entry
                .path()
                .ok()
                .is_some_and(|p| p.file_name().is_some_and(|n| n == FILE_NAME));
        if !is_db {
            continue;
        }
        let size = entry.header().size().map_err(archive)?;
        if size > MAX_DATABASE {
            return Err(UpdateError::Archive(format!(
                "the database is {size} bytes, more than the {MAX_DATABASE} accepted"
            )));
        }
        let io = |source| UpdateError::Io {
            path: out.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::create(out).map_err(io)?;
        // The header's size is what the entry yields; `take` holds even if it lied.
        let copied = std::io::copy(&mut entry.take(MAX_DATABASE), &mut file).map_err(io)?;
        if copied != size {
            return Err(UpdateError::Archive(format!(
                "the database entry is cut short: {copied} of {size} bytes"
            )));
        }
        file.flush().map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok(());
    }
    Err(UpdateError::Archive(format!(
        "no {FILE_NAME} in the package"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_sha512_only() {
        let d = STANDARD.encode([7u8; 64]);
        assert_eq!(sha512_of_sri(&format!("sha512-{d}")), Some(d.clone()));
        assert_eq!(
            sha512_of_sri(&format!("sha1-abc sha512-{d}?x")),
            Some(d.clone())
        );
        assert_eq!(sha512_of_sri("sha1-2jzOq3BTPicdfpa8UNjYFs9PRHA="), None);
        assert_eq!(sha512_of_sri("sha512-short"), None);
    }

    #[test]
    fn metadata_url_keeps_the_scope() {
        assert_eq!(
            metadata_url("https://registry.npmjs.org/"),
            "https://registry.npmjs.org/@ip-location-db/geo-whois-asn-country-mmdb/latest"
        );
    }

    #[test]
    fn data_dir_is_beside_the_embedded_clickhouse() {
        let mut c = Config::from_table(toml::Table::new()).unwrap();
        assert_eq!(auto_path(&c), Path::new("var").join(FILE_NAME));
        c.clickhouse.embedded_dir = PathBuf::from("clickhouse");
        assert_eq!(auto_path(&c), Path::new(".").join(FILE_NAME));
        c.clickhouse.embedded_dir = PathBuf::from("/srv/tally/ch");
        assert_eq!(auto_path(&c), Path::new("/srv/tally").join(FILE_NAME));
    }
}
