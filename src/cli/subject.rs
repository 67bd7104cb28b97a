//! `tally subject export|erase --site ID --visitor-id ID`: a data-subject request (access,
//! erasure) for a visitor known by the tracker's visitor id (`_id`, the value of the site's
//! visitor cookie `_tly_id`, 16 hex digits).
//!
//! tally never stores `_id`: a hit's visitor key is `HMAC(secret of its local day, site ‖ _id)`
//! ([`crate::enrich::visitor`]). So a visitor's rows can be found only while their day's
//! secret exists, 48 hours after the day began: for each such day the keys are derived from
//! every stored secret of the day exactly as ingestion does ([`key_with`]), and the rows are
//! those of the site, that day and those keys, in `events` and `visits`. The other days cannot
//! be linked to anyone any more, and the command says so instead of pretending to search them.
//!
//! Export prints the rows as JSON. Erase deletes them (`ALTER TABLE .. DELETE WHERE`, one
//! mutation per table; ClickHouse 18.16 has no `mutations_sync`, so the command waits for
//! `system.mutations` to report them done, with a timeout), checks that none is left, and
//! recomputes the affected days' visits and aggregates with the rollup, so the day's counts
//! no longer include the visitor. Any failure is a non-zero exit with a message saying what
//! was and was not done.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clickhouse::Row;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{Config, SiteConfig};
use crate::enrich::secrets::stored_for_zone;
use crate::enrich::visitor::{VisitorInput, key_with};
use crate::privacy::TruncatedIp;
use crate::rollup::Rollup;
use crate::store::Client;
use crate::store::cluster::{self, Shards};
use crate::time::{date_of, day_bounds};

/// Rows of one table and day exported at most: a person's day is a few hundred hits; more
/// means something is wrong, and a partial export would be a wrong answer.
const MAX_ROWS: u64 = 100_000;

/// How often the mutations are polled while waiting.
const POLL: Duration = Duration::from_millis(200);

/// The tables holding per-hit or per-visit rows with a visitor key.
const TABLES: [&str; 2] = ["events", "visits"];

/// What was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Print the visitor's rows as JSON.
    Export,
    /// Delete them, verify, and recompute the days' aggregates.
    Erase,
}

/// The visitor id as the tracker sends it (`_id`): exactly 16 hex digits, as ingestion accepts
/// it; anything else would find nothing, so it is refused.
pub fn parse_visitor_id(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "`{s}` is not a visitor id: it is 16 hex digits, the value of the site's visitor cookie _tly_id (or the `_id` the tracker sends)"
        );
    }
    u64::from_str_radix(s, 16).context("visitor id")
}

/// A local day of the site whose secret still exists, and the visitor's keys on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkableDay {
    /// The site's local date.
    pub date: NaiveDate,
    /// Its first second (Unix, UTC).
    pub start: u32,
    /// The next day's first second.
    pub end: u32,
    /// The visitor's key under each stored secret of the day (usually one).
    pub keys: Vec<u64>,
}

/// The days of `site` that can still be linked to `visitor_id` at `now`, oldest first: every
/// day that has begun and whose secret has not been deleted.
pub async fn linkable_days(
    client: &Client,
    site: &SiteConfig,
    visitor_id: u64,
    now: u32,
) -> anyhow::Result<Vec<LinkableDay>> {
    let secrets = stored_for_zone(client, site.tz().name(), now)
        .await
        .context("reading the visitor secrets (day_secrets)")?;
    let input = VisitorInput {
        site_id: site.id,
        // Not part of the key when the tracker's id is: see `key_with`.
        ip: TruncatedIp::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 2),
        user_agent: "",
        accept_language: "",
        client_id: Some(visitor_id),
    };
    let mut days: Vec<LinkableDay> = Vec::new();
    for (day, secret) in secrets {
        let date = date_of(day);
        let (start, end) = day_bounds(site.tz(), date);
        if start > now {
            continue; // tomorrow's secret, made ahead: no hit can have used it yet
        }
        let key = key_with(&secret, &input);
        match days.last_mut() {
            Some(last) if last.date == date => last.keys.push(key),
            _ => days.push(LinkableDay {
                date,
                start,
                end,
                keys: vec![key],
            }),
        }
    }
    Ok(days)
}

/// The `WHERE` condition of the visitor's rows of `day` in `table`, and its binds in order.
fn condition(table: &str, site: u32, day: &LinkableDay) -> (String, Binds) {
    match table {
        "events" => (
            "site_id = ? AND ts >= toDateTime(?) AND ts < toDateTime(?) AND has(?, visitor_key)"
                .into(),
            Binds {
                site,
                range: Some((day.start, day.end)),
                date: None,
                keys: day.keys.clone(),
            },
        ),
        _ => (
            "site_id = ? AND day = toDate(?) AND has(?, visitor_key)".into(),
            Binds {
                site,
                range: None,
                date: Some(day.date.format("%Y-%m-%d").to_string()),
                keys: day.keys.clone(),
            },
        ),
    }
}

/// The values of a [`condition`], bound in its order.
struct Binds {
    site: u32,
    range: Option<(u32, u32)>,
    date: Option<String>,
    keys: Vec<u64>,
}

impl Binds {
    fn apply(&self, mut q: clickhouse::query::Query) -> clickhouse::query::Query {
        q = q.bind(self.site);
        if let Some((start, end)) = self.range {
            q = q.bind(start).bind(end);
        }
        if let Some(date) = &self.date {
            q = q.bind(date.as_str());
        }
        q.bind(&self.keys)
    }
}

#[derive(Row, Deserialize)]
struct Count {
    n: u64,
}

#[derive(Row, Deserialize)]
struct Others {
    n: u64,
    first: u32,
    last: u32,
}

#[derive(Row, Deserialize)]
struct Mutation {
    mutation_id: String,
    is_done: u8,
}

/// Rows of the visitor in `table` on `day`.
async fn count(client: &Client, table: &str, site: u32, day: &LinkableDay) -> anyhow::Result<u64> {
    let (cond, binds) = condition(table, site, day);
    let q = client.query(&format!("SELECT count() AS n FROM {table} WHERE {cond}"));
    Ok(binds.apply(q).fetch_one::<Count>().await?.n)
}

/// The visitor's rows of `table` on `day`, as JSON objects (ClickHouse's `JSONEachRow`).
async fn rows(
    client: &Client,
    table: &str,
    site: u32,
    day: &LinkableDay,
) -> anyhow::Result<Vec<Value>> {
    let (cond, binds) = condition(table, site, day);
    let order = if table == "events" { "ts" } else { "start" };
    let q = client.query(&format!(
        "SELECT * FROM {table} WHERE {cond} ORDER BY {order} LIMIT ?"
    ));
    let bytes = binds
        .apply(q)
        .bind(MAX_ROWS + 1)
        .fetch_bytes("JSONEachRow")?
        .collect()
        .await?;
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        out.push(serde_json::from_slice(line).context("a row ClickHouse sent as JSON")?);
    }
    if out.len() as u64 > MAX_ROWS {
        bail!(
            "more than {MAX_ROWS} rows of {table} on {}: refusing a partial answer",
            day.date
        );
    }
    Ok(out)
}

/// What is said about the days that can no longer be linked: how many raw events of the site
/// lie outside the linkable days, and why nobody can tell whose they are.
async fn unlinkable_note(
    client: &Client,
    cfg: &Config,
    site: &SiteConfig,
    days: &[LinkableDay],
) -> anyhow::Result<String> {
    let mut cond = String::from("site_id = ?");
    for _ in days {
        cond.push_str(" AND NOT (ts >= toDateTime(?) AND ts < toDateTime(?))");
    }
    let mut q = client.query(&format!(
        "SELECT count() AS n, toUInt32(min(ts)) AS first, toUInt32(max(ts)) AS last \
         FROM events WHERE {cond}"
    ));
    q = q.bind(site.id);
    for d in days {
        q = q.bind(d.start).bind(d.end);
    }
    let others = q.fetch_one::<Others>().await?;
    let lifetime = "A day's visitor secret is deleted 48 hours after the day began; from then \
                    on nobody, the operator included, can tell which stored visitor key belongs \
                    to whom";
    if others.n == 0 {
        return Ok(format!(
            "{lifetime}. Site {} holds no raw rows of such days now.",
            site.id
        ));
    }
    let date = |t: u32| crate::time::local_date(site.tz(), t);
    Ok(format!(
        "{lifetime}. {} raw events of site {} from {} to {} lie on days whose secret is gone: \
         whether any of them belong to this visitor can no longer be found out, by anyone, so \
         they are neither exported nor erased. They are deleted with their day after {} days \
         (retention.raw_days); the daily aggregates hold counts only.",
        others.n,
        site.id,
        date(others.first),
        date(others.last),
        cfg.retention.raw_days
    ))
}

/// Runs a data-subject request on the configured database; prints the export (JSON) or what
/// was erased to stdout, notes to stderr.
pub async fn run(
    cfg: &Config,
    action: Action,
    site_id: u32,
    visitor_id: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let Some(site) = cfg.site(site_id) else {
        bail!("site {site_id} is not configured ([[sites]] id)");
    };
    let visitor = parse_visitor_id(visitor_id)?;
    if !site.visitor_cookie {
        eprintln!(
            "tally: site {site_id} does not say it uses the visitor cookie ([[sites]] visitor_cookie); \
             without it its hits carry no visitor id, and nothing will be found"
        );
    }
    let db = crate::lifecycle::Database::open(cfg).await?;
    let result = async {
        crate::lifecycle::migrate_on(db.url(), cfg).await?;
        let client = crate::store::client(db.url(), &cfg.clickhouse);
        let now = crate::time::now_unix();
        let days = linkable_days(&client, site, visitor, now).await?;
        match action {
            Action::Export => export(&client, cfg, site, visitor, &days, now).await,
            Action::Erase => erase(&client, cfg, site, visitor, &days, timeout).await,
        }
    }
    .await;
    db.close().await;
    result
}

async fn export(
    client: &Client,
    cfg: &Config,
    site: &SiteConfig,
    visitor: u64,
    days: &[LinkableDay],
    now: u32,
) -> anyhow::Result<()> {
    let mut out_days = Vec::new();
    for day in days {
        let mut entry = serde_json::Map::new();
        entry.insert("date".into(), json!(day.date.to_string()));
        for table in TABLES {
            entry.insert(
                table.into(),
                Value::Array(rows(client, table, site.id, day).await?),
            );
        }
        out_days.push(Value::Object(entry));
    }
    let note = unlinkable_note(client, cfg, site, days).await?;
    let exported = chrono::DateTime::from_timestamp(i64::from(now), 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let doc = json!({
        "site": site.id,
        "visitor_id": format!("{visitor:016x}"),
        "exported_at": exported,
        "days": out_days,
        "not_linkable": note,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    let n: usize = out_days
        .iter()
        .map(|d| d["events"].as_array().map_or(0, Vec::len))
        .sum();
    eprintln!(
        "tally: exported {n} events of visitor {visitor:016x} on site {} from {} day(s) that can still be linked",
        site.id,
        days.len()
    );
    Ok(())
}

async fn erase(
    client: &Client,
    cfg: &Config,
    site: &SiteConfig,
    visitor: u64,
    days: &[LinkableDay],
    timeout: Duration,
) -> anyhow::Result<()> {
    // What there is to erase, per day and table.
    let mut found: Vec<(&LinkableDay, [u64; 2])> = Vec::new();
    for day in days {
        let mut n = [0u64; 2];
        for (i, table) in TABLES.into_iter().enumerate() {
            n[i] = count(client, table, site.id, day).await?;
        }
        if n.iter().any(|c| *c > 0) {
            found.push((day, n));
        }
    }
    println!(
        "visitor {visitor:016x} on site {}: {} day(s) can still be linked ({})",
        site.id,
        days.len(),
        days.iter()
            .map(|d| d.date.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if found.is_empty() {
        println!("nothing stored for this visitor on those days; nothing to erase");
    } else {
        let affected: Vec<&LinkableDay> = found.iter().map(|(d, _)| *d).collect();
        for table in TABLES {
            let context = || format!("erasing from {table}: nothing is verified yet");
            match Shards::of(&cfg.clickhouse) {
                None => delete(client, table, table, site.id, &affected, timeout)
                    .await
                    .with_context(context)?,
                // Mutations do not pass through Distributed tables: each shard deletes from its
                // own rows, through one replica (the replication applies it on the others).
                Some(shards) => {
                    for index in 0..shards.len() {
                        let shard = shards.reach(index).await.with_context(context)?;
                        let local = cluster::local_name(table);
                        delete(&shard, table, &local, site.id, &affected, timeout)
                            .await
                            .with_context(context)?;
                    }
                }
            }
        }
        // The rollup rebuilds the days' visits and aggregates from what is left of the events.
        let rollup = Rollup::new(client.clone(), cfg);
        for (day, n) in &found {
            rollup
                .run_day(day.date, Some(site.id), crate::time::now_unix())
                .await
                .with_context(|| {
                    format!(
                        "the rows are erased, but the aggregates of {} were not recomputed; run \
                         `tally rollup --site {} --day {}`",
                        day.date, site.id, day.date
                    )
                })?;
            println!(
                "{}: erased {} event row(s) and {} visit row(s); the day's visits and aggregates recomputed",
                day.date, n[0], n[1]
            );
        }
        // Verified after the rollup, which rewrites the day's visits.
        for day in &affected {
            for table in TABLES {
                let left = count(client, table, site.id, day).await?;
                if left > 0 {
                    bail!(
                        "{left} rows of this visitor are still in {table} on {} (hits that \
                         arrived during the erasure?); run the command again",
                        day.date
                    );
                }
            }
        }
        println!("verified: no row of this visitor is left in events or visits on those days");
    }
    println!("{}", unlinkable_note(client, cfg, site, days).await?);
    Ok(())
}

/// Deletes the visitor's rows of `days` from `table` (`target` on the node: `table` itself,
/// or its `_local` table on a cluster shard) in one mutation, and waits until ClickHouse has
/// applied it.
async fn delete(
    client: &Client,
    table: &str,
    target: &str,
    site: u32,
    days: &[&LinkableDay],
    timeout: Duration,
) -> anyhow::Result<()> {
    let before = mutation_ids(client, target).await?;
    let conds: Vec<(String, Binds)> = days.iter().map(|d| condition(table, site, d)).collect();
    let sql = format!(
        "ALTER TABLE {target} DELETE WHERE {}",
        conds
            .iter()
            .map(|(c, _)| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    let mut q = client.query(&sql);
    for (_, binds) in &conds {
        q = binds.apply(q);
    }
    q.execute().await?;
    let started = Instant::now();
    loop {
        let pending: Vec<String> = client
            .query(
                "SELECT mutation_id, toUInt8(is_done) AS is_done FROM system.mutations \
                 WHERE database = currentDatabase() AND table = ?",
            )
            .bind(target)
            .fetch_all::<Mutation>()
            .await?
            .into_iter()
            // Ours are the new ones (and any another process started meanwhile: waiting for
            // those too costs only time). Filtered here: an empty bound array is
            // `Array(Nothing)`, which `has` refuses.
            .filter(|m| m.is_done == 0 && !before.contains(&m.mutation_id))
            .map(|m| m.mutation_id)
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!(
                "the deletion from {table} ({}) was not done after {} s; ClickHouse goes on \
                 with it, check system.mutations and run the command again to verify",
                pending.join(", "),
                timeout.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The ids of the mutations `table` has now.
async fn mutation_ids(client: &Client, table: &str) -> anyhow::Result<Vec<String>> {
    #[derive(Row, Deserialize)]
    struct Id {
        mutation_id: String,
    }
    Ok(client
        .query(
            "SELECT mutation_id FROM system.mutations \
             WHERE database = currentDatabase() AND table = ?",
        )
        .bind(table)
        .fetch_all::<Id>()
        .await?
        .into_iter()
        .map(|m| m.mutation_id)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_ids_are_16_hex_digits() {
        assert_eq!(
            parse_visitor_id("0123456789abcdef").unwrap(),
            0x0123456789abcdef
        );
        assert_eq!(
            parse_visitor_id(" 0123456789ABCDEF\n").unwrap(),
            0x0123456789abcdef
        );
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdefa",
            "0123456789abcdeg",
            "+123456789abcdef",
        ] {
            assert!(parse_visitor_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conditions_bind_in_order() {
        let day = LinkableDay {
            date: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
            start: 100,
            end: 200,
            keys: vec![7],
        };
        let (events, b) = condition("events", 1, &day);
        assert_eq!(events.matches('?').count(), 4);
        assert_eq!((b.range, b.date.as_deref()), (Some((100, 200)), None));
        let (visits, b) = condition("visits", 1, &day);
        assert_eq!(visits.matches('?').count(), 3);
        assert_eq!((b.range, b.date.as_deref()), (None, Some("2026-11-25")));
    }
}
