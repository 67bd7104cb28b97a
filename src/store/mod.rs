//! ClickHouse: the connection, the schema migrations and the embedded server.

pub mod cluster;
pub mod embedded;
pub mod insert;
pub mod migrate;

use crate::config::ClickHouseConfig;

pub use clickhouse::Client;

/// Builds a client for `url` and the configured database and credentials.
///
/// Validation is off because it relies on formats and settings ClickHouse 18.16 lacks
/// (`RowBinaryWithNamesAndTypes`); the store tests compare `Event` with the table instead.
pub fn client(url: &str, cfg: &ClickHouseConfig) -> Client {
    let mut c = server_client(url, cfg).with_database(&cfg.database);
    // Reports must not hang on a runaway query.
    c = c.with_setting("max_execution_time", "60");
    if cfg.cluster.is_some() {
        // An insert into a Distributed table answers once every shard has its rows, not when
        // they are queued on this node: the writer's exactly-once count relies on it.
        c = c.with_setting("insert_distributed_sync", "1");
        // A subquery over a Distributed table inside a distributed query reads each shard's own
        // rows: exact here because `events` and `visits` are sharded by visitor key (see
        // `cluster::SHARDING_KEY`), and ClickHouse refuses such queries otherwise.
        c = c.with_setting("distributed_product_mode", "local");
    }
    c
}

/// A client for the server as a whole, without a database (to create it).
pub fn server_client(url: &str, cfg: &ClickHouseConfig) -> Client {
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
    connector.set_nodelay(true);
    // The crate's default client, with a connect timeout; idle connections are closed below
    // ClickHouse's own keep-alive timeout (3 s), as the default does.
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build(connector);
    let mut c = Client::with_http_client(http)
        .with_url(url)
        .with_validation(false)
        .with_compression(clickhouse::Compression::Lz4);
    if let Some(user) = &cfg.user {
        c = c.with_user(user);
    }
    if let Some(password) = &cfg.password {
        c = c.with_password(password);
    }
    c
}

/// How long a connection to ClickHouse may take to open. The crate's own client has no limit,
/// so a server that drops packets (not one that refuses) would hold a call until the OS gives
/// up, minutes later.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
