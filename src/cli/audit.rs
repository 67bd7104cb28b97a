//! `tally audit`: runs [`crate::audit`] on the configured database and prints its report, for
//! people or (`--json`) for monitoring. The caller turns a failed audit into a non-zero exit.

use std::time::Duration;

use crate::config::Config;

/// Audits the configured database and prints the report; returns whether every check passed.
/// Nothing is migrated or changed: the audit reads the database as it is.
pub async fn run(cfg: &Config, json: bool, timeout: Duration) -> anyhow::Result<bool> {
    let db = crate::lifecycle::Database::open(cfg).await?;
    let client = crate::store::client(db.url(), &cfg.clickhouse);
    let result = crate::audit::run(&client, cfg, crate::time::now_unix(), timeout).await;
    db.close().await;
    let report = result?;
    let text = if json {
        format!("{}\n", report.json())
    } else {
        report.human()
    };
    // A reader that stops early (`| head`) is not an error of the audit; its verdict stands.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    Ok(report.ok)
}
