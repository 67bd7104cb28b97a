//! The `tally` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tally::cli::key::KeyCommand;
use tally::cli::user::UserCommand;
use tally::config::Config;

/// Self-hosted, privacy-first web analytics collector (Matomo tracking protocol).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the collector. Without --config, runs a demo site on localhost with an embedded ClickHouse.
    Serve {
        /// Configuration file (TOML); every key can also be set as TALLY_<SECTION>_<KEY>.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Prints the HTML to paste into a site's pages, and to embed or link its opt-out page; with
    /// --optout, the opt-out widget for the site's privacy policy.
    Snippet {
        /// The site's id (`[[sites]] id`).
        #[arg(long)]
        site: u32,
        /// Print the opt-out widget for the site's privacy policy instead (external and inline,
        /// with the inline script's CSP hash).
        #[arg(long)]
        optout: bool,
        /// Language of the widget: en or de.
        #[arg(long, default_value = "en", value_parser = ["en", "de"])]
        lang: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Prints the section on web analytics for the site's privacy policy, made from the live
    /// configuration (what is stored, the address masking, location, cookies, the opt-out link,
    /// Do Not Track and GPC, retention, access and erasure). Also served at
    /// /privacy?idsite=ID&lang=en|de.
    PrivacyStatement {
        /// The site's id (`[[sites]] id`).
        #[arg(long)]
        site: u32,
        /// Language: en or de.
        #[arg(long, default_value = "en", value_parser = ["en", "de"])]
        lang: String,
        /// Output: Markdown, or plain text.
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "text"])]
        format: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// A data-subject request for a visitor known by the tracker's visitor id (`_id`, the value
    /// of the visitor cookie `_tly_id`): export their rows as JSON, or erase them. Only days whose
    /// visitor secret still exists (48 hours after the day began) can be linked to anyone.
    Subject {
        #[command(subcommand)]
        action: SubjectAction,
    },
    /// Recomputes visits and daily aggregates from the raw events now: every day whose raw
    /// events are still kept (a week), or one day. `tally serve` recomputes today and yesterday
    /// every `[rollup] interval_secs`, and the week at start and every 6 hours.
    Rollup {
        /// Only this site (`[[sites]] id`).
        #[arg(long)]
        site: Option<u32>,
        /// Only this local date (YYYY-MM-DD); it must still have all its raw events.
        #[arg(long, value_parser = parse_date)]
        day: Option<chrono::NaiveDate>,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Prints a report from the aggregates: the Stats API's query engine in the terminal.
    Report {
        /// The site's id (`[[sites]] id`).
        #[arg(long)]
        site: u32,
        /// Period: day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all, realtime.
        #[arg(long, default_value = "30d")]
        period: String,
        /// First day of a custom period (YYYY-MM-DD; with --to).
        #[arg(long)]
        from: Option<String>,
        /// Last day of a custom period (YYYY-MM-DD; with --from).
        #[arg(long)]
        to: Option<String>,
        /// Break down by this dimension (event:page, visit:source, visit:country, time:day, ...);
        /// repeat for several.
        #[arg(long)]
        by: Vec<String>,
        /// Metrics, comma-separated [default: visitors,visits,pageviews,bounce_rate,visit_duration;
        /// for realtime: visitors,pageviews].
        #[arg(long, value_delimiter = ',')]
        metrics: Vec<String>,
        /// A filter as the API writes it, e.g. '["is","visit:country",["DE"]]'; repeat for several
        /// (all must hold).
        #[arg(long)]
        filter: Vec<String>,
        /// Rows at most.
        #[arg(long, default_value_t = 25)]
        limit: u32,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: tally::cli::report::Format,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Checks the live database against the configuration: addresses truncated, nothing kept
    /// longer than the retention windows, no e-mail address, full IP address or click id in
    /// stored texts, the pruner running. Exits non-zero on any violation, naming table and column.
    Audit {
        /// One JSON object (checks with name, ok, table, column, count) for monitoring.
        #[arg(long)]
        json: bool,
        /// Seconds each query may take.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Drops every partition whose retention window has passed ([retention] raw_days,
    /// aggregate_days; day secrets 48 hours after their day began) and lists each with its rows;
    /// raw days are rolled up first. `tally serve` does it at start and every
    /// [retention] prune_interval_secs. Each run is recorded in `prune_runs`.
    Prune {
        /// List what would be dropped, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Applies the schema migrations and exits.
    Migrate {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Creates the schema on this ClickHouse cluster (its `remote_servers` name):
        /// replicated tables on every node, raw events and visits sharded behind Distributed
        /// tables. Overrides `[clickhouse] cluster`.
        #[arg(long, value_name = "NAME")]
        cluster: Option<String>,
        /// Prints the statements a fresh installation runs, in order, and exits without
        /// connecting.
        #[arg(long)]
        print: bool,
    },
    /// Creates, lists and revokes Stats API keys (kept in ClickHouse, shared by every collector
    /// of the database).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Adds, lists, removes operators' accounts for the dashboard and sets their passwords
    /// (kept in ClickHouse, shared by every collector of the database).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// The free country database (npm package @ip-location-db/geo-whois-asn-country-mmdb, CC0)
    /// that `tally serve` uses when no `[geo] database` is configured.
    Geo {
        #[command(subcommand)]
        action: GeoAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Adds an account; the password is asked for (or read as one line of standard input).
    Add {
        /// The name to sign in with (letters, digits, ._@-).
        name: String,
        /// An admin sees every site and manages API keys and shared links.
        #[arg(long)]
        admin: bool,
        /// A site the account sees (`[[sites]] id`); repeat for more.
        #[arg(long = "site")]
        sites: Vec<u32>,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lists the accounts (never their passwords or hashes).
    List {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Removes an account; its sessions end.
    Remove {
        /// The account's name.
        name: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Sets a new password (asked for, or one line of standard input); the sessions end.
    Passwd {
        /// The account's name.
        name: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SubjectAction {
    /// Prints the visitor's rows (raw events and visits) of the days that can still be linked,
    /// as JSON.
    Export {
        #[command(flatten)]
        args: SubjectArgs,
    },
    /// Deletes the visitor's rows of the days that can still be linked, waits for ClickHouse to
    /// apply the deletion, verifies that none is left, and recomputes those days' aggregates.
    Erase {
        #[command(flatten)]
        args: SubjectArgs,
        /// Seconds to wait for ClickHouse to apply the deletion.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

#[derive(clap::Args)]
struct SubjectArgs {
    /// The site's id (`[[sites]] id`).
    #[arg(long)]
    site: u32,
    /// The visitor id: 16 hex digits, the value of the visitor cookie `_tly_id`.
    #[arg(long)]
    visitor_id: String,
    /// Configuration file (TOML).
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum GeoAction {
    /// Downloads the newest country database from the npm registry (`[geo] registry`), checks
    /// its integrity and that it opens, and replaces the one in the data directory; a running
    /// `tally serve` that uses it picks it up within seconds.
    Update {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeyAction {
    /// Makes a key for one or more sites and prints it once, on the last line. Only its hash is
    /// kept: store it now.
    Create {
        /// A site the key may query (`[[sites]] id`); repeat for more.
        #[arg(long = "site", required = true)]
        sites: Vec<u32>,
        /// What the key is for (shown by `tally key list`).
        #[arg(long, default_value = "")]
        name: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Lists the keys: id, name, sites, created, revoked; never the keys themselves.
    List {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Revokes a key; every collector refuses it within `[api] key_refresh_secs`.
    Revoke {
        /// The key's id (as `tally key list` shows it), or the whole key.
        id: String,
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tally: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => {
                let cfg = load(config.as_deref())?;
                tally::lifecycle::serve(cfg).await
            }
            Command::Snippet {
                site,
                optout,
                lang,
                config,
            } => {
                let cfg = load(config.as_deref())?;
                if tally::web::snippet::base_url(&cfg).1 {
                    eprintln!(
                        "tally: public_url is not set; the snippet uses the listen address, \
                         which visitors' browsers may not reach"
                    );
                }
                if optout {
                    let lang = tally::web::texts::Lang::from_tag(&lang)
                        .unwrap_or(tally::web::texts::Lang::En);
                    print!("{}", tally::web::snippet::render_optout(&cfg, site, lang)?);
                } else {
                    print!("{}", tally::web::snippet::render(&cfg, site)?);
                }
                Ok(())
            }
            Command::PrivacyStatement {
                site,
                lang,
                format,
                config,
            } => {
                let cfg = load(config.as_deref())?;
                let Some(site) = cfg.site(site) else {
                    anyhow::bail!("site {site} is not configured");
                };
                if tally::web::snippet::base_url(&cfg).1 {
                    eprintln!(
                        "tally: public_url is not set; the opt-out link uses the listen address, \
                         which visitors' browsers may not reach"
                    );
                }
                let lang =
                    tally::web::texts::Lang::from_tag(&lang).unwrap_or(tally::web::texts::Lang::En);
                let statement = tally::web::statement::statement(&cfg, site, lang);
                if format == "text" {
                    print!("{}", statement.text());
                } else {
                    print!("{}", statement.markdown());
                }
                eprintln!(
                    "tally: the controller's name and contact, the data protection officer and the \
                     legal basis are yours to add; the statement follows this configuration, so \
                     print it again after changing it"
                );
                Ok(())
            }
            Command::Rollup { site, day, config } => {
                let cfg = load(config.as_deref())?;
                let db = tally::lifecycle::Database::open(&cfg).await?;
                tally::lifecycle::migrate_on(db.url(), &cfg).await?;
                let client = tally::store::client(db.url(), &cfg.clickhouse);
                let rollup = tally::rollup::Rollup::new(client, &cfg);
                let now = tally::time::now_unix();
                let result = match (day, site) {
                    (Some(d), only) => rollup.run_day(d, only, now).await.map(|o| vec![o]),
                    (None, only) => rollup.run_window(now, only).await,
                };
                db.close().await;
                for o in result? {
                    println!(
                        "{}: {} visits of site(s) {:?} rolled up",
                        o.date, o.visits, o.recomputed
                    );
                }
                Ok(())
            }
            Command::Report {
                site,
                period,
                from,
                to,
                by,
                metrics,
                filter,
                limit,
                format,
                config,
            } => {
                let cfg = load(config.as_deref())?;
                let db = tally::lifecycle::Database::open(&cfg).await?;
                // The tables the engine reads (the top lists of migration 0007 after an upgrade,
                // before `tally serve` was restarted), as `tally rollup` and `tally key` do.
                tally::lifecycle::migrate_on(db.url(), &cfg).await?;
                let client = tally::store::client(db.url(), &cfg.clickhouse);
                let engine = tally::query::Engine::new(client, std::sync::Arc::new(cfg));
                let args = tally::cli::report::ReportArgs {
                    site,
                    period,
                    from,
                    to,
                    by,
                    metrics,
                    filters: filter,
                    limit,
                };
                let out = tally::cli::report::run(&engine, &args, format).await;
                db.close().await;
                print!("{}", out.map_err(|e| anyhow::anyhow!(e))?);
                Ok(())
            }
            Command::Audit {
                json,
                timeout,
                config,
            } => {
                let cfg = load(config.as_deref())?;
                let timeout = std::time::Duration::from_secs(timeout.clamp(1, 86_400));
                if tally::cli::audit::run(&cfg, json, timeout).await? {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("the audit found violations (see above)"))
                }
            }
            Command::Prune { dry_run, config } => {
                tally::cli::prune::run(&load(config.as_deref())?, dry_run).await
            }
            Command::Migrate {
                config,
                cluster,
                print,
            } => {
                let mut cfg = load(config.as_deref())?;
                if let Some(name) = cluster {
                    if !tally::store::cluster::valid_name(&name) {
                        anyhow::bail!(
                            "--cluster: {name:?} is not a name of letters, digits, `_` and `-`"
                        );
                    }
                    cfg.clickhouse.cluster = Some(name);
                    if cfg.clickhouse.url.is_none() && !print {
                        anyhow::bail!(
                            "--cluster needs [clickhouse] url (a node of the cluster) in the configuration"
                        );
                    }
                }
                if print {
                    let layout = tally::store::cluster::Layout::of(&cfg.clickhouse);
                    for statement in tally::store::migrate::all_statements(layout.as_ref())? {
                        println!("{statement};\n");
                    }
                    return Ok(());
                }
                let db = tally::lifecycle::Database::open(&cfg).await?;
                let applied = tally::lifecycle::migrate_on(db.url(), &cfg).await?;
                if applied.is_empty() {
                    println!("schema is up to date");
                } else {
                    for name in applied {
                        println!("applied {name}");
                    }
                }
                db.close().await;
                Ok(())
            }
            Command::Key { action } => {
                let (cmd, config) = match action {
                    KeyAction::Create {
                        sites,
                        name,
                        config,
                    } => (KeyCommand::Create { sites, name }, config),
                    KeyAction::List { config } => (KeyCommand::List, config),
                    KeyAction::Revoke { id, config } => (KeyCommand::Revoke { id }, config),
                };
                tally::cli::key::run(&load(config.as_deref())?, cmd).await
            }
            Command::User { action } => {
                let (cmd, config) = match action {
                    UserAction::Add {
                        name,
                        admin,
                        sites,
                        config,
                    } => (UserCommand::Add { name, admin, sites }, config),
                    UserAction::List { config } => (UserCommand::List, config),
                    UserAction::Remove { name, config } => (UserCommand::Remove { name }, config),
                    UserAction::Passwd { name, config } => (UserCommand::Passwd { name }, config),
                };
                tally::cli::user::run(&load(config.as_deref())?, cmd).await
            }
            Command::Subject { action } => {
                use tally::cli::subject::{Action, run};
                let (action, args, timeout) = match action {
                    SubjectAction::Export { args } => (Action::Export, args, 300),
                    SubjectAction::Erase { args, timeout } => (Action::Erase, args, timeout),
                };
                let cfg = load(args.config.as_deref())?;
                let timeout = std::time::Duration::from_secs(timeout);
                run(&cfg, action, args.site, &args.visitor_id, timeout).await
            }
            Command::Geo {
                action: GeoAction::Update { config },
            } => tally::cli::geo::update(&load(config.as_deref())?).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tally: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date like 2026-11-26"))
}

/// The configuration at `path`, or without one the demo site that `tally serve` runs, so that
/// `tally report`, `tally rollup` and `tally key` work on the demo too.
fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    let mut cfg = Config::load(path)?;
    if path.is_none() {
        cfg.apply_demo_site();
    }
    Ok(cfg)
}

/// glibc gives every thread that allocates an arena of its own, up to eight per core, and keeps
/// what was freed in each: with tokio's workers and blocking threads (the spool's reads and
/// flushes) a burst of large requests left RSS at 240 MB after the load was gone. Two arenas
/// keep it at 168 MB for the same input (`benches/load.rs`, worst phase) at no measurable cost,
/// as the threads rarely allocate at the same instant. Must run before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
