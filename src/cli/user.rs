//! `tally user add|list|remove|passwd`: operators' accounts for the dashboard, on the configured
//! database, shared by every collector of it.
//!
//! Passwords are read from a prompt that does not echo them (asked twice) when standard input is
//! a terminal, else as one line of standard input (for scripts:
//! `printf '%s\n' "$PW" | tally user add ada`). They are checked (at least
//! [`MIN_PASSWORD_CHARS`] characters) and hashed with Argon2id before anything is stored; the
//! hash is never printed.

use std::io::{BufRead, IsTerminal};

use super::key::{join, utc};
use crate::access::secret::{self, MIN_PASSWORD_CHARS};
use crate::access::store::AccountTables;
use crate::config::Config;

/// What `tally user` was asked to do.
#[derive(Debug, Clone)]
pub enum UserCommand {
    /// Add an account.
    Add {
        /// Its name.
        name: String,
        /// Admin (every site, keys, links).
        admin: bool,
        /// The sites it sees.
        sites: Vec<u32>,
    },
    /// List the accounts.
    List,
    /// Remove an account (its sessions end).
    Remove {
        /// Its name.
        name: String,
    },
    /// Set a new password (its sessions end).
    Passwd {
        /// Its name.
        name: String,
    },
}

/// Reads a password: from a prompt on a terminal (twice, they must match), else one line of
/// standard input; refused when shorter than [`MIN_PASSWORD_CHARS`]. Returns its Argon2id hash.
pub fn read_password_hash() -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!(
            "Password (at least {MIN_PASSWORD_CHARS} characters): "
        ))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .take_line(&mut line, secret::MAX_PASSWORD_BYTES + 2)?;
        line.trim_end_matches(['\n', '\r']).to_string()
    };
    Ok(secret::hash_password(&password)?)
}

/// One line of at most `limit` bytes.
trait TakeLine {
    fn take_line(&mut self, out: &mut String, limit: usize) -> std::io::Result<()>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, out: &mut String, limit: usize) -> std::io::Result<()> {
        use std::io::Read;
        self.take(limit as u64).read_line(out).map(|_| ())
    }
}

/// Runs `cmd` on the configured database (migrated first). The password, when one is needed,
/// is read and checked before the database is opened.
pub async fn run(cfg: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    if let UserCommand::Add { name, sites, admin } = &cmd {
        if !crate::access::store::valid_name(name) {
            anyhow::bail!(
                "an account name is 1 to {} letters, digits and ._@-",
                crate::access::store::MAX_NAME_CHARS
            );
        }
        if let Some(unknown) = sites.iter().find(|id| cfg.site(**id).is_none()) {
            anyhow::bail!("site {unknown} is not configured ([[sites]] id)");
        }
        if !admin && sites.is_empty() {
            anyhow::bail!("a user who is not an admin needs at least one --site");
        }
    }
    let hash = match &cmd {
        UserCommand::Add { .. } | UserCommand::Passwd { .. } => Some(read_password_hash()?),
        _ => None,
    };
    let db = crate::lifecycle::Database::open(cfg).await?;
    let result = async {
        crate::lifecycle::migrate_on(db.url(), cfg).await?;
        let tables = AccountTables::new(crate::store::client(db.url(), &cfg.clickhouse));
        let now = crate::time::now_unix();
        match cmd {
            UserCommand::Add { name, admin, sites } => {
                let user = tables
                    .add_user(&name, hash.unwrap_or_default(), admin, &sites, now)
                    .await?;
                println!(
                    "added {}{}",
                    user.name,
                    if user.admin {
                        " (admin: every site)".to_string()
                    } else {
                        format!(" (sites {})", join(&user.sites))
                    }
                );
            }
            UserCommand::List => {
                let mut users: Vec<_> = tables
                    .users()
                    .await?
                    .into_values()
                    .filter(|u| !u.removed)
                    .collect();
                users.sort_by(|a, b| a.name.cmp(&b.name));
                if users.is_empty() {
                    println!("no users");
                }
                for u in users {
                    println!(
                        "{}\t{}\tchanged {}",
                        u.name,
                        if u.admin {
                            "admin".to_string()
                        } else {
                            format!("sites {}", join(&u.sites))
                        },
                        utc(u.changed)
                    );
                }
            }
            UserCommand::Remove { name } => {
                tables.change_user(&name, now, |u| u.removed = true).await?;
                println!(
                    "removed {name}; its sessions end on every collector within {} s",
                    cfg.api.key_refresh_secs
                );
            }
            UserCommand::Passwd { name } => {
                let hash = hash.unwrap_or_default();
                tables
                    .change_user(&name, now, |u| u.password_hash = hash)
                    .await?;
                println!(
                    "new password set for {name}; its sessions end on every collector within {} s",
                    cfg.api.key_refresh_secs
                );
            }
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    result
}
