//! `tally report`: the query engine in the terminal, for operators who live in a shell. It
//! builds the same Stats API v2 request a script would send and prints the answer as an aligned
//! table, CSV or the API's JSON.

use serde_json::{Value, json};

use crate::query::{Access, Answer, Engine, QueryError};

/// What `tally report` was asked.
#[derive(Debug, Clone)]
pub struct ReportArgs {
    /// The site's id.
    pub site: u32,
    /// A Stats API `date_range` shorthand (`30d`, `month`, ...), unless `from`/`to` are given.
    pub period: String,
    /// First day of a custom range.
    pub from: Option<String>,
    /// Last day of a custom range.
    pub to: Option<String>,
    /// Dimensions to break down by (`event:page`, `visit:country`, `time:day`, ...).
    pub by: Vec<String>,
    /// Metrics, in order.
    pub metrics: Vec<String>,
    /// Filters as the API writes them (`["is","visit:country",["DE"]]`), each a JSON array.
    pub filters: Vec<String>,
    /// Rows at most.
    pub limit: u32,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table with a header.
    Table,
    /// RFC 4180 CSV, as the API's `format=csv`.
    Csv,
    /// The API's JSON answer.
    Json,
}

/// The Stats API request for `args`.
pub fn request(args: &ReportArgs) -> Result<Value, String> {
    let date_range = match (&args.from, &args.to) {
        (Some(from), Some(to)) => json!([from, to]),
        (None, None) => json!(args.period),
        _ => return Err("--from and --to go together".into()),
    };
    let filters = args
        .filters
        .iter()
        .map(|f| {
            serde_json::from_str::<Value>(f)
                .map_err(|e| format!("--filter {f}: not JSON ({e}); write it as the API does, e.g. '[\"is\",\"visit:country\",[\"DE\"]]'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut body = json!({
        "site_id": args.site,
        "metrics": args.metrics,
        "date_range": date_range,
        "dimensions": args.by,
        "pagination": {"limit": args.limit},
    });
    if !filters.is_empty() {
        body["filters"] = Value::Array(filters);
    }
    Ok(body)
}

/// Runs the report on `engine` and renders it.
pub async fn run(engine: &Engine, args: &ReportArgs, format: Format) -> Result<String, String> {
    let body = request(args)?;
    let answer = engine
        .run(&body, &Access::All)
        .await
        .map_err(|QueryError { message, .. }| message)?;
    Ok(match format {
        Format::Table => table(&answer),
        Format::Csv => {
            String::from_utf8_lossy(&crate::query::render::csv(&answer).map_err(|e| e.to_string())?)
                .into_owned()
        }
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&crate::query::render::json(&answer))
                .map_err(|e| e.to_string())?;
            s.push('\n');
            s
        }
    })
}

/// The answer as an aligned table: dimensions left-aligned, metrics right-aligned, the notes of
/// `meta` below it.
pub fn table(answer: &Answer) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::NOTHING);
    t.set_header(answer.columns.iter().map(|c| short(c)));
    let dims = answer.results.first().map_or(0, |r| r.dimensions.len());
    for row in &answer.results {
        let cells = row
            .dimensions
            .iter()
            .cloned()
            .chain(row.metrics.iter().map(cell));
        t.add_row(cells);
    }
    for i in dims..answer.columns.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(comfy_table::CellAlignment::Right);
        }
    }
    let mut out = t.to_string();
    out.push('\n');
    for (key, value) in &answer.meta {
        if let Value::String(note) = value
            && key.ends_with("_note")
        {
            out.push_str(&format!("note: {note}\n"));
        }
    }
    out
}

/// A column title without the `event:`/`visit:` prefix, which the terminal can spare.
fn short(name: &str) -> &str {
    name.split_once(':').map_or(name, |(_, rest)| rest)
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ResultRow;

    fn args() -> ReportArgs {
        ReportArgs {
            site: 3,
            period: "30d".into(),
            from: None,
            to: None,
            by: vec!["event:page".into()],
            metrics: vec!["visitors".into(), "bounce_rate".into()],
            filters: vec![r#"["is","visit:country",["DE"]]"#.into()],
            limit: 10,
        }
    }

    #[test]
    fn builds_the_api_request() {
        let body = request(&args()).unwrap();
        assert_eq!(body["site_id"], 3);
        assert_eq!(body["date_range"], "30d");
        assert_eq!(body["filters"][0][1], "visit:country");
        let mut custom = args();
        custom.from = Some("2026-11-01".into());
        custom.to = Some("2026-11-26".into());
        assert_eq!(request(&custom).unwrap()["date_range"][1], "2026-11-26");
        custom.to = None;
        assert!(request(&custom).is_err());
        let mut bad = args();
        bad.filters = vec!["[is".into()];
        assert!(request(&bad).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn aligned_table() {
        let answer = Answer {
            query: Value::Null,
            meta: serde_json::Map::from_iter([(
                "visitors_note".to_string(),
                Value::from("sum of daily visitors"),
            )]),
            columns: vec!["event:page".into(), "visitors".into(), "bounce_rate".into()],
            results: vec![
                ResultRow {
                    dimensions: vec!["/".into()],
                    metrics: vec![json!(1200), json!(45)],
                    comparison: None,
                },
                ResultRow {
                    dimensions: vec!["/a-long-page".into()],
                    metrics: vec![json!(7), Value::Null],
                    comparison: None,
                },
            ],
        };
        let out = table(&answer);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].contains("page") && lines[0].contains("visitors"),
            "{out}"
        );
        // Right-aligned numbers end in the same column.
        let end = |l: &str, s: &str| l.find(s).unwrap() + s.len();
        assert_eq!(end(lines[1], "1200"), end(lines[2], " 7"));
        assert!(lines[2].contains('-'));
        assert!(out.contains("note: sum of daily visitors"));
    }
}
