//! `tally key create|list|revoke`: Stats API keys on the configured database.

use crate::api::keystore::{KeyTable, Revocation};
use crate::config::Config;

/// What `tally key` was asked to do.
#[derive(Debug, Clone)]
pub enum KeyCommand {
    /// Make a key for these sites, called `name`.
    Create {
        /// Sites it may query.
        sites: Vec<u32>,
        /// What it is for.
        name: String,
    },
    /// List every key, never the keys themselves.
    List,
    /// Revoke a key by id (or whole key).
    Revoke {
        /// The id or key.
        id: String,
    },
}

/// Runs `cmd` on the configured database (migrated first, so that the tables exist).
pub async fn run(cfg: &Config, cmd: KeyCommand) -> anyhow::Result<()> {
    if let KeyCommand::Create { sites, .. } = &cmd
        && let Some(unknown) = sites.iter().find(|id| cfg.site(**id).is_none())
    {
        anyhow::bail!("site {unknown} is not configured ([[sites]] id)");
    }
    let db = crate::lifecycle::Database::open(cfg).await?;
    let result = async {
        crate::lifecycle::migrate_on(db.url(), cfg).await?;
        let table = KeyTable::new(crate::store::client(db.url(), &cfg.clickhouse));
        let now = crate::time::now_unix();
        match cmd {
            KeyCommand::Create { sites, name } => {
                let (info, key) = table.create(&sites, &name, now).await?;
                println!(
                    "Created API key {}{} for site{} {}.",
                    info.id,
                    if info.name.is_empty() {
                        String::new()
                    } else {
                        format!(" ({:?})", info.name)
                    },
                    if info.sites.len() == 1 { "" } else { "s" },
                    join(&info.sites)
                );
                println!(
                    "It is shown only now; tally keeps only its hash. Send it as \
                     `Authorization: Bearer <key>`:"
                );
                println!("{key}");
            }
            KeyCommand::List => {
                let keys = table.list().await?;
                if keys.is_empty() {
                    println!("no API keys");
                }
                for k in keys {
                    println!(
                        "{}\t{}\t{}\tcreated {}\t{}",
                        k.id,
                        if k.name.is_empty() { "-" } else { &k.name },
                        format_args!("sites {}", join(&k.sites)),
                        utc(k.created),
                        k.revoked
                            .map_or("active".to_string(), |t| format!("revoked {}", utc(t)))
                    );
                }
            }
            KeyCommand::Revoke { id } => match table.revoke(&id, now).await? {
                Revocation::Revoked => println!(
                    "revoked API key {}; every collector refuses it within {} s",
                    crate::api::keys::id_of(&id).unwrap_or(&id),
                    cfg.api.key_refresh_secs
                ),
                Revocation::Already(at) => println!("already revoked at {}", utc(at)),
                Revocation::Unknown => anyhow::bail!("no API key with id {id:?}"),
            },
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    result
}

/// Site ids joined by commas.
pub fn join(ids: &[u32]) -> String {
    ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(unix: u32) -> String {
    chrono::DateTime::from_timestamp(i64::from(unix), 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}
