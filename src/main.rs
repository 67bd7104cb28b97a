//! The `tally` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
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
    /// Recomputes visits and daily aggregates from the raw events now: today and yesterday of
    /// every site, or one day. `tally serve` does this every `[rollup] interval_secs`.
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
        /// Metrics, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "visitors,visits,pageviews,bounce_rate,visit_duration"
        )]
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
    /// Applies the schema migrations and exits.
    Migrate {
        /// Configuration file (TOML).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
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
                let mut cfg = load(config.as_deref())?;
                if config.is_none() {
                    cfg.apply_demo_site();
                }
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
            Command::Rollup { site, day, config } => {
                let cfg = load(config.as_deref())?;
                let db = tally::lifecycle::Database::open(&cfg).await?;
                tally::lifecycle::migrate_on(db.url(), &cfg).await?;
                let client = tally::store::client(db.url(), &cfg.clickhouse);
                let rollup = tally::rollup::Rollup::new(client, &cfg);
                let now = tally::time::now_unix();
                let result = match (day, site) {
                    (Some(d), only) => rollup.run_day(d, only, now).await.map(|o| vec![o]),
                    (None, None) => rollup.run_recent(now).await,
                    (None, Some(id)) => {
                        let mut out = Vec::new();
                        let tz = cfg
                            .site(id)
                            .map(|s| s.tz())
                            .ok_or_else(|| anyhow::anyhow!("site {id} is not configured"))?;
                        let today = tally::time::local_date(tz, now);
                        for d in [today.pred_opt().unwrap_or(today), today] {
                            match rollup.run_day(d, Some(id), now).await {
                                Ok(o) => out.push(o),
                                Err(e) => {
                                    db.close().await;
                                    return Err(e.into());
                                }
                            }
                        }
                        Ok(out)
                    }
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
            Command::Migrate { config } => {
                let cfg = load(config.as_deref())?;
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

fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}
