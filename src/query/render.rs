//! An [`Answer`] written out: Plausible's JSON, or the same rows as CSV.
//!
//! CSV follows RFC 4180 (the `csv` crate: fields with commas, quotes or line breaks quoted,
//! quotes doubled, lines ended by CRLF), one header line with the answer's `columns`, then a
//! line per row: the dimension values, then the metric values. With comparisons each metric
//! also gets a `comparison:<metric>` and a `change:<metric>` column.
//!
//! Spreadsheets run a cell that begins with `=`, `+`, `-` or `@` as a formula, and some also
//! one that begins with a tab or a carriage return; a page title or referrer chosen by a
//! visitor could then run in the operator's spreadsheet (CSV injection). As OWASP advises,
//! such a text cell gets a `'` in front, which spreadsheets show as text and do not store.
//! Numbers are written as they are: a negative change such as `-12.5` is a number, not a
//! formula, and stays one.

use std::borrow::Cow;

use serde_json::{Value, json};

use crate::query::{Answer, ResultRow};

/// Plausible's answer: `{"results": [...], "meta": {...}, "query": {...}}`, each row
/// `{"dimensions": [...], "metrics": [...]}` plus `"comparison"` when there is one.
pub fn json(answer: &Answer) -> Value {
    let results: Vec<Value> = answer.results.iter().map(row_json).collect();
    json!({
        "results": results,
        "meta": answer.meta,
        "query": answer.query,
    })
}

fn row_json(row: &ResultRow) -> Value {
    let mut v = json!({
        "dimensions": row.dimensions,
        "metrics": row.metrics,
    });
    if let Some(c) = &row.comparison {
        v["comparison"] = json!({
            "dimensions": c.dimensions,
            "metrics": c.metrics,
            "change": c.change,
        });
    }
    v
}

/// The rows as CSV (see the module documentation).
pub fn csv(answer: &Answer) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let dims = answer
        .results
        .first()
        .map_or(0, |r| r.dimensions.len())
        .min(answer.columns.len());
    let metric_names = &answer.columns[dims..];
    let comparisons = answer.results.iter().any(|r| r.comparison.is_some());
    let mut header: Vec<Cow<'_, str>> = answer.columns.iter().map(|c| guard(c)).collect();
    if comparisons {
        header.extend(
            metric_names
                .iter()
                .map(|m| guard(&format!("comparison:{m}")).into_owned().into()),
        );
        header.extend(
            metric_names
                .iter()
                .map(|m| guard(&format!("change:{m}")).into_owned().into()),
        );
    }
    w.write_record(header.iter().map(|c| c.as_bytes()))?;
    for row in &answer.results {
        let mut cells: Vec<Cow<'_, str>> = row.dimensions.iter().map(|d| guard(d)).collect();
        cells.extend(row.metrics.iter().map(cell));
        if comparisons {
            let width = row.metrics.len();
            match &row.comparison {
                Some(c) => {
                    cells.extend(pad(&c.metrics, width).map(cell));
                    cells.extend(pad(&c.change, width).map(cell));
                }
                None => cells.extend(std::iter::repeat_n(Cow::Borrowed(""), 2 * width)),
            }
        }
        w.write_record(cells.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// `values` cut or padded with nulls to `width`.
fn pad(values: &[Value], width: usize) -> impl Iterator<Item = &Value> {
    values
        .iter()
        .chain(std::iter::repeat(&Value::Null))
        .take(width)
}

/// A metric value as a cell: numbers and booleans as JSON writes them, `null` empty, text
/// guarded.
fn cell(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        Value::String(s) => guard(s),
        Value::Number(n) => Cow::Owned(n.to_string()),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        other => guard_owned(other.to_string()),
    }
}

/// A text cell with a `'` in front if a spreadsheet would take it for a formula.
pub fn guard(s: &str) -> Cow<'_, str> {
    if starts_like_formula(s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn guard_owned(s: String) -> Cow<'static, str> {
    if starts_like_formula(&s) {
        Cow::Owned(format!("'{s}"))
    } else {
        Cow::Owned(s)
    }
}

fn starts_like_formula(s: &str) -> bool {
    s.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Comparison;

    fn answer(rows: Vec<ResultRow>) -> Answer {
        Answer {
            query: json!({"site_id": "example.org", "metrics": ["visitors", "bounce_rate"]}),
            meta: serde_json::Map::from_iter([("total_rows".to_string(), json!(2))]),
            columns: vec!["event:page".into(), "visitors".into(), "bounce_rate".into()],
            results: rows,
        }
    }

    fn row(page: &str, metrics: Vec<Value>) -> ResultRow {
        ResultRow {
            dimensions: vec![page.into()],
            metrics,
            comparison: None,
        }
    }

    #[test]
    fn json_has_plausibles_shape() {
        let mut with_cmp = row("/b", vec![json!(4), json!(50.0)]);
        with_cmp.comparison = Some(Comparison {
            dimensions: vec!["/b".into()],
            metrics: vec![json!(2), json!(25.0)],
            change: vec![json!(100), json!(25.0)],
        });
        let a = answer(vec![row("/a", vec![json!(3), Value::Null]), with_cmp]);
        assert_eq!(
            json(&a),
            json!({
                "results": [
                    {"dimensions": ["/a"], "metrics": [3, null]},
                    {"dimensions": ["/b"], "metrics": [4, 50.0],
                     "comparison": {"dimensions": ["/b"], "metrics": [2, 25.0], "change": [100, 25.0]}}
                ],
                "meta": {"total_rows": 2},
                "query": {"site_id": "example.org", "metrics": ["visitors", "bounce_rate"]}
            })
        );
    }

    #[test]
    fn csv_quotes_as_rfc_4180() {
        let a = answer(vec![
            row("/a,b", vec![json!(3), json!(12.5)]),
            row("say \"hi\"", vec![json!(1), Value::Null]),
            row("two\nlines", vec![json!(0), json!(0)]),
            row("ünïcode ✓", vec![json!(7), json!(100)]),
        ]);
        let text = String::from_utf8(csv(&a).unwrap()).unwrap();
        assert_eq!(
            text,
            "event:page,visitors,bounce_rate\r\n\
             \"/a,b\",3,12.5\r\n\
             \"say \"\"hi\"\"\",1,\r\n\
             \"two\nlines\",0,0\r\n\
             ünïcode ✓,7,100\r\n"
        );
        // And a CSV reader gets the values back.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let back: Vec<Vec<String>> = r
            .records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect())
            .collect();
        assert_eq!(back[1], ["say \"hi\"", "1", ""]);
        assert_eq!(back[2][0], "two\nlines");
    }

    #[test]
    fn csv_guards_against_formulas() {
        for (given, written) in [
            (
                "=HYPERLINK(\"http://evil\")",
                "\"'=HYPERLINK(\"\"http://evil\"\")\"",
            ),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\r=1", "\"'\r=1\""),
            ("a=1", "a=1"),
            (" =1", " =1"),
            ("/page", "/page"),
            ("", ""),
        ] {
            let a = answer(vec![row(given, vec![json!(1), json!(-12.5)])]);
            let text = String::from_utf8(csv(&a).unwrap()).unwrap();
            let line = text.split("\r\n").nth(1).unwrap();
            // Numbers, negative ones included, are not touched.
            assert_eq!(line, format!("{written},1,-12.5"), "{given:?}");
        }
        // Text metric values and header names are guarded too.
        assert_eq!(cell(&json!("=1")), "'=1");
        assert_eq!(cell(&json!(-1)), "-1");
        assert_eq!(cell(&json!(true)), "true");
        let mut a = answer(vec![]);
        a.columns = vec!["=x".into()];
        assert_eq!(String::from_utf8(csv(&a).unwrap()).unwrap(), "'=x\r\n");
    }

    #[test]
    fn csv_with_comparisons_adds_columns() {
        let mut r = row("/b", vec![json!(4), json!(50.0)]);
        r.comparison = Some(Comparison {
            dimensions: vec!["/b".into()],
            metrics: vec![json!(2), json!(25.0)],
            change: vec![json!(100), json!(-25.0)],
        });
        let a = answer(vec![r, row("/new", vec![json!(1), json!(0)])]);
        let text = String::from_utf8(csv(&a).unwrap()).unwrap();
        assert_eq!(
            text,
            "event:page,visitors,bounce_rate,comparison:visitors,comparison:bounce_rate,change:visitors,change:bounce_rate\r\n\
             /b,4,50.0,2,25.0,100,-25.0\r\n\
             /new,1,0,,,,\r\n"
        );
    }

    #[test]
    fn csv_of_no_rows_is_the_header() {
        let text = String::from_utf8(csv(&answer(vec![])).unwrap()).unwrap();
        assert_eq!(text, "event:page,visitors,bounce_rate\r\n");
    }
}
