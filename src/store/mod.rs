//! ClickHouse: the connection, the schema migrations and the embedded server.

pub mod embedded;
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
    c
}

/// A client for the server as a whole, without a database (to create it).
pub fn server_client(url: &str, cfg: &ClickHouseConfig) -> Client {
    let mut c = Client::default()
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
