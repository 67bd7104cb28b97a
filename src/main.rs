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

fn load(path: Option<&std::path::Path>) -> anyhow::Result<Config> {
    Ok(Config::load(path)?)
}
