//! Stats API v2 requests: the JSON body of `POST /api/v2/query`, shaped as Plausible's, parsed
//! into a validated [`Query`] or refused with a [`RequestError`] worded as Plausible words it
//! (`#/metrics/0: Invalid metric "foo"`).
//!
//! [`parse`] checks everything that can be checked without the database: the shape of every
//! field (Plausible checks it with a JSON schema; the messages here follow that schema's
//! wording), then the rules between fields (Plausible's `QueryBuilder` and `TableDecider`),
//! then tally's own limits. Nothing here knows the sites or the data: the engine resolves the
//! [`SiteRef`], the days ([`Query::resolve`]) and the goals.
//!
//! The reference of what is accepted, and where tally differs from Plausible, is
//! `docs/stats-api.md`.

use std::fmt;

use chrono::{NaiveDate, TimeZone};
use serde_json::{Map, Value};

use super::date_range::{self, CompareMode, Comparisons, DateRange, TimeGrain};
use super::filter::{self, Filter};
pub(super) use super::vocabulary::unsupported_dimension;
use super::vocabulary::unsupported_metric;
pub use super::vocabulary::{Dimension, Metric, MetricScope, Scope};

/// The most levels of arrays and objects in a request body.
pub const MAX_BODY_DEPTH: usize = 32;

/// The most JSON values (of any kind, nested ones included) in a request body.
pub const MAX_BODY_VALUES: usize = 20_000;

/// The default and largest `pagination.limit` (Plausible's).
pub const MAX_LIMIT: u32 = 10_000;

/// The largest `pagination.offset`.
pub const MAX_OFFSET: u32 = 1_000_000;

/// The keys a request may have.
const KEYS: [&str; 9] = [
    "site_id",
    "metrics",
    "date_range",
    "date",
    "dimensions",
    "filters",
    "order_by",
    "include",
    "pagination",
];

/// Why a request was refused: always an HTTP 400, with a message naming the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// One line (at most a few hundred characters) for people.
    pub message: String,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

impl From<RequestError> for super::QueryError {
    fn from(e: RequestError) -> Self {
        super::QueryError::bad(e.message)
    }
}

/// `{path}: {message}`.
pub(super) fn err(path: &str, message: impl fmt::Display) -> RequestError {
    RequestError {
        message: format!("{path}: {message}"),
    }
}

/// `{path}: Type mismatch. Expected {expected} but got {actual}.` (the JSON schema's words).
pub(super) fn mismatch(path: &str, expected: &str, value: &Value) -> RequestError {
    err(
        path,
        format!(
            "Type mismatch. Expected {expected} but got {}.",
            type_name(value)
        ),
    )
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "Null",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Number",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

/// The longest rendering of a request value in a message, in characters.
const SHOW_CHARS: usize = 200;

/// A request value as messages quote it: JSON with a space after each comma and colon
/// (`["is", "event:page", ["/"]]`), cut at [`SHOW_CHARS`] characters with `…`.
pub(super) fn show(value: &Value) -> String {
    fn write(out: &mut String, value: &Value, depth: usize) {
        if out.len() > SHOW_CHARS * 4 {
            return;
        }
        match value {
            Value::Array(items) if depth < 8 => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(out, item, depth + 1);
                    if out.len() > SHOW_CHARS * 4 {
                        return;
                    }
                }
                out.push(']');
            }
            Value::Object(map) if depth < 8 => {
                out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::from(key.as_str()).to_string());
                    out.push_str(": ");
                    write(out, item, depth + 1);
                    if out.len() > SHOW_CHARS * 4 {
                        return;
                    }
                }
                out.push('}');
            }
            Value::Array(_) => out.push_str("[…]"),
            Value::Object(_) => out.push_str("{…}"),
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(&mut out, value, 0);
    match out.char_indices().nth(SHOW_CHARS) {
        Some((cut, _)) => {
            out.truncate(cut);
            out.push('…');
            out
        }
        None => out,
    }
}

/// A JSON pointer's escaping of one key (`~` → `~0`, `/` → `~1`), cut to 100 characters.
fn pointer_key(key: &str) -> String {
    key.chars()
        .take(100)
        .collect::<String>()
        .replace('~', "~0")
        .replace('/', "~1")
}

/// The site a query is about: `site_id`, a domain or tally's numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SiteRef {
    /// A domain as the site's `domains` list it, in lower case: `"example.org"`.
    Domain(String),
    /// The site's id (Matomo's `idsite`), given as a number or a string of digits.
    Id(u32),
}

impl SiteRef {
    fn to_json(&self) -> Value {
        match self {
            SiteRef::Domain(d) => Value::from(d.as_str()),
            // As a string: Plausible's `site_id` is one.
            SiteRef::Id(id) => Value::from(id.to_string()),
        }
    }
}

/// What `order_by` may name: a queried metric or dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderBy {
    /// A metric of the query.
    Metric(Metric),
    /// A dimension of the query.
    Dimension(Dimension),
}

impl OrderBy {
    /// The request's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            OrderBy::Metric(m) => m.as_str(),
            OrderBy::Dimension(d) => d.as_str(),
        }
    }
}

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `"asc"`.
    Asc,
    /// `"desc"`.
    Desc,
}

impl Direction {
    /// The request's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }
}

/// `include`: what to add to the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Include {
    /// `total_rows`: `meta.total_rows`, the number of rows without pagination.
    pub total_rows: bool,
    /// `time_labels`: `meta.time_labels`, every time bucket of the range (needs a time
    /// dimension).
    pub time_labels: bool,
    /// `imports`: accepted for Plausible's clients; tally has no imported data, so the answer
    /// says `meta.imports_included: false`.
    pub imports: bool,
    /// `comparisons`: the same query over a comparison period.
    pub comparisons: Option<Comparisons>,
}

/// `pagination`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pagination {
    /// Rows per page, 1 to [`MAX_LIMIT`]; default [`MAX_LIMIT`].
    pub limit: u32,
    /// Rows skipped, 0 to [`MAX_OFFSET`]; default 0.
    pub offset: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            limit: MAX_LIMIT,
            offset: 0,
        }
    }
}

/// A validated Stats API query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `site_id`.
    pub site: SiteRef,
    /// `metrics`: at least one, no repeats.
    pub metrics: Vec<Metric>,
    /// `date_range`.
    pub date_range: DateRange,
    /// `date` (tally's; Plausible's internal API has it): the reference day of relative
    /// ranges instead of today.
    pub date: Option<NaiveDate>,
    /// `dimensions`: no repeats, at most one time dimension.
    pub dimensions: Vec<Dimension>,
    /// `filters`: `None` without filters; the top-level list is an implicit `And`.
    pub filters: Option<Filter>,
    /// `order_by`, never empty: as asked, or Plausible's default (the time dimension
    /// ascending if there is one, then the first metric descending). Every entry names a
    /// queried metric or dimension, once.
    pub order_by: Vec<(OrderBy, Direction)>,
    /// `include`.
    pub include: Include,
    /// `pagination`.
    pub pagination: Pagination,
    /// The custom property's key when a dimension, filter or order names `event:props:KEY`
    /// ([`Dimension::Prop`]): one key per query.
    pub prop_key: Option<String>,
}

/// Parses and validates a request body.
pub fn parse(body: &Value) -> Result<Query, RequestError> {
    check_size(body)?;
    let Value::Object(obj) = body else {
        return Err(mismatch("#", "Object", body));
    };
    if let Some(key) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(err(
            &format!("#/{}", pointer_key(key)),
            "Schema does not allow additional properties.",
        ));
    }
    for required in ["site_id", "metrics", "date_range"] {
        if !obj.contains_key(required) {
            return Err(err(
                "#",
                format!("Required property {required} was not present."),
            ));
        }
    }
    let site = parse_site(&obj["site_id"])?;
    let metrics = parse_metrics(&obj["metrics"])?;
    let date_range = date_range::parse(&obj["date_range"], "#/date_range")?;
    let date = obj
        .get("date")
        .map(|v| date_range::parse_reference_date(v, "#/date"))
        .transpose()?;
    // Two keys would otherwise be two equal dimensions (`Dimension::Prop`), refused as repeats.
    one_prop_key(obj, None)?;
    let dimensions = match obj.get("dimensions") {
        Some(v) => parse_dimensions(v)?,
        None => Vec::new(),
    };
    let filters = match obj.get("filters") {
        Some(v) => filter::parse_filters(v)?,
        None => None,
    };
    let order_by = match obj.get("order_by") {
        Some(v) => parse_order_by(v)?,
        None => Vec::new(),
    };
    let include = match obj.get("include") {
        Some(v) => parse_include(v)?,
        None => Include::default(),
    };
    let pagination = match obj.get("pagination") {
        Some(v) => parse_pagination(v)?,
        None => Pagination::default(),
    };
    let prop_key = one_prop_key(obj, filters.as_ref())?;
    let mut query = Query {
        site,
        metrics,
        date_range,
        date,
        dimensions,
        filters,
        order_by,
        include,
        pagination,
        prop_key,
    };
    validate(&query)?;
    if query.order_by.is_empty() {
        query.order_by = query.default_order_by();
    }
    Ok(query)
}

/// The one custom property key the query's dimensions, filters and order name, if any; a 400
/// when they name two (the engine reads one property's rows at a time).
fn one_prop_key(
    obj: &Map<String, Value>,
    filters: Option<&Filter>,
) -> Result<Option<String>, RequestError> {
    let mut keys: Vec<(String, &str)> = Vec::new();
    let names = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    // An order_by entry: [name, direction].
                    Value::Array(pair) => pair.first().and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    for (path, name) in names(obj.get("dimensions"))
        .into_iter()
        .map(|n| ("#/dimensions", n))
        .chain(
            names(obj.get("order_by"))
                .into_iter()
                .map(|n| ("#/order_by", n)),
        )
    {
        if let Some(key) = super::vocabulary::prop_key(&name) {
            keys.push((key.to_string(), path));
        }
    }
    if let Some(f) = filters {
        for c in f.conditions() {
            if let Some(key) = &c.prop_key {
                keys.push((key.clone(), "#/filters"));
            }
        }
    }
    let Some((first, _)) = keys.first() else {
        return Ok(None);
    };
    if let Some((other, path)) = keys.iter().find(|(k, _)| k != first) {
        return Err(err(
            path,
            format!(
                "Invalid query: it names the custom properties \"{first}\" and \"{other}\"; tally answers about one custom property per query"
            ),
        ));
    }
    Ok(Some(first.clone()))
}

/// Refuses bodies nested deeper than [`MAX_BODY_DEPTH`] or with more than [`MAX_BODY_VALUES`]
/// values, before anything walks them.
fn check_size(body: &Value) -> Result<(), RequestError> {
    let mut stack = vec![(body, 1usize)];
    let mut count = 0usize;
    while let Some((value, depth)) = stack.pop() {
        count += 1;
        if count > MAX_BODY_VALUES {
            return Err(err(
                "#",
                format!("The request is too large: at most {MAX_BODY_VALUES} values"),
            ));
        }
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        for child in children {
            if depth + 1 > MAX_BODY_DEPTH && (child.is_array() || child.is_object()) {
                return Err(err(
                    "#",
                    format!("The request is nested too deeply: at most {MAX_BODY_DEPTH} levels"),
                ));
            }
            stack.push((child, depth + 1));
        }
    }
    Ok(())
}

fn parse_site(value: &Value) -> Result<SiteRef, RequestError> {
    let path = "#/site_id";
    let invalid = || {
        err(
            path,
            format!(
                "Invalid site_id {}: give the site's domain (\"example.org\") or its id",
                show(value)
            ),
        )
    };
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(SiteRef::Id)
            .ok_or_else(invalid),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(SiteRef::Id).map_err(|_| invalid())
        }
        Value::String(s) => {
            let domain = s.to_ascii_lowercase();
            let valid = (1..=253).contains(&domain.len())
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !domain.starts_with('.')
                && !domain.ends_with('.');
            if valid {
                Ok(SiteRef::Domain(domain))
            } else {
                Err(invalid())
            }
        }
        _ => Err(mismatch(path, "String", value)),
    }
}

/// A list (at `path`) of unique items parsed by `item`.
fn parse_unique<T: PartialEq>(
    value: &Value,
    path: &str,
    mut item: impl FnMut(&Value, &str) -> Result<T, RequestError>,
) -> Result<Vec<T>, RequestError> {
    let Value::Array(items) = value else {
        return Err(mismatch(path, "Array", value));
    };
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        let parsed = item(v, &format!("{path}/{i}"))?;
        if out.contains(&parsed) {
            return Err(err(path, "Expected items to be unique but they were not."));
        }
        out.push(parsed);
    }
    Ok(out)
}

fn parse_metrics(value: &Value) -> Result<Vec<Metric>, RequestError> {
    let metrics = parse_unique(value, "#/metrics", |v, path| {
        let name = v.as_str().unwrap_or_default();
        if let Some(m) = Metric::from_name(name) {
            return Ok(m);
        }
        Err(match unsupported_metric(name) {
            Some(why) => err(
                path,
                format!(
                    "Invalid metric {}: tally does not support it ({why})",
                    show(v)
                ),
            ),
            None => err(path, format!("Invalid metric {}", show(v))),
        })
    })?;
    if metrics.is_empty() {
        return Err(err("#/metrics", "Expected a minimum of 1 items but got 0."));
    }
    Ok(metrics)
}

fn parse_dimension(v: &Value, path: &str) -> Result<Dimension, RequestError> {
    let name = v.as_str().unwrap_or_default();
    if let Some(d) = Dimension::from_name(name) {
        return Ok(d);
    }
    Err(match unsupported_dimension(name) {
        Some(why) => err(path, format!("Invalid dimension {}: {why}", show(v))),
        None => err(path, format!("Invalid dimension {}", show(v))),
    })
}

fn parse_dimensions(value: &Value) -> Result<Vec<Dimension>, RequestError> {
    let dimensions = parse_unique(value, "#/dimensions", parse_dimension)?;
    let mut times = dimensions
        .iter()
        .enumerate()
        .filter(|(_, d)| d.scope() == Scope::Time);
    if let (Some((_, first)), Some((i, second))) = (times.next(), times.next()) {
        return Err(err(
            &format!("#/dimensions/{i}"),
            format!(
                "Invalid dimension \"{}\": only one time dimension can be queried, and \"{}\" is one",
                second.as_str(),
                first.as_str()
            ),
        ));
    }
    Ok(dimensions)
}

fn parse_order_by(value: &Value) -> Result<Vec<(OrderBy, Direction)>, RequestError> {
    let path = "#/order_by";
    let Value::Array(entries) = value else {
        return Err(mismatch(path, "Array", value));
    };
    let mut out: Vec<(OrderBy, Direction)> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{path}/{i}");
        let Value::Array(pair) = entry else {
            return Err(mismatch(&path, "Array", entry));
        };
        let [key, direction] = pair.as_slice() else {
            return Err(err(
                &path,
                format!(
                    "Invalid order_by entry {}: give [name, \"asc\" or \"desc\"]",
                    show(entry)
                ),
            ));
        };
        let name = key.as_str().unwrap_or_default();
        let by = match (Metric::from_name(name), Dimension::from_name(name)) {
            (Some(m), _) => OrderBy::Metric(m),
            (None, Some(d)) => OrderBy::Dimension(d),
            (None, None) => {
                return Err(err(
                    &format!("{path}/0"),
                    format!("Invalid value in order_by {}", show(key)),
                ));
            }
        };
        let direction = match direction.as_str() {
            Some("asc") => Direction::Asc,
            Some("desc") => Direction::Desc,
            _ => {
                return Err(err(
                    &format!("{path}/1"),
                    format!(
                        "Invalid order_by direction {}: \"asc\" or \"desc\"",
                        show(direction)
                    ),
                ));
            }
        };
        if out.iter().any(|(b, _)| *b == by) {
            return Err(err(
                &path,
                format!(
                    "Invalid order_by entry {}: {} is already ordered by",
                    show(entry),
                    show(key)
                ),
            ));
        }
        out.push((by, direction));
    }
    Ok(out)
}

fn parse_bool(map: &Map<String, Value>, key: &str, path: &str) -> Result<bool, RequestError> {
    match map.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(mismatch(&format!("{path}/{key}"), "Boolean", v)),
    }
}

fn parse_include(value: &Value) -> Result<Include, RequestError> {
    let path = "#/include";
    let Value::Object(map) = value else {
        return Err(mismatch(path, "Object", value));
    };
    const INCLUDE_KEYS: [&str; 4] = ["total_rows", "time_labels", "imports", "comparisons"];
    if let Some(key) = map.keys().find(|k| !INCLUDE_KEYS.contains(&k.as_str())) {
        return Err(err(
            &format!("{path}/{}", pointer_key(key)),
            "Schema does not allow additional properties.",
        ));
    }
    let comparisons = match map.get("comparisons") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_comparisons(v)?),
    };
    Ok(Include {
        total_rows: parse_bool(map, "total_rows", path)?,
        time_labels: parse_bool(map, "time_labels", path)?,
        imports: parse_bool(map, "imports", path)?,
        comparisons,
    })
}

fn parse_comparisons(value: &Value) -> Result<Comparisons, RequestError> {
    let path = "#/include/comparisons";
    let Value::Object(map) = value else {
        return Err(mismatch(path, "Object", value));
    };
    let invalid = |reason: &str| {
        err(
            path,
            format!("Invalid comparisons {}: {reason}", show(value)),
        )
    };
    if let Some(key) = map
        .keys()
        .find(|k| !["mode", "date_range", "match_day_of_week"].contains(&k.as_str()))
    {
        return Err(err(
            &format!("{path}/{}", pointer_key(key)),
            "Schema does not allow additional properties.",
        ));
    }
    let mode = match (
        map.get("mode").and_then(Value::as_str),
        map.get("date_range"),
    ) {
        (Some("previous_period"), None) => CompareMode::PreviousPeriod,
        (Some("year_over_year"), None) => CompareMode::YearOverYear,
        (Some("previous_period" | "year_over_year"), Some(_)) => {
            return Err(invalid("only the \"custom\" mode takes a date_range"));
        }
        (Some("custom"), Some(range)) => {
            let pair = match range {
                Value::Array(items) => match items.as_slice() {
                    [Value::String(a), Value::String(b)] => Some((a, b)),
                    _ => None,
                },
                _ => None,
            };
            let Some((a, b)) = pair else {
                return Err(err(
                    &format!("{path}/date_range"),
                    format!(
                        "Invalid date range {}: give two dates such as [\"2024-01-01\", \"2024-01-31\"]",
                        show(range)
                    ),
                ));
            };
            let (first, last) = date_range::parse_day_pair(a, b).map_err(|reason| {
                err(
                    &format!("{path}/date_range"),
                    format!("Invalid date range {}: {reason}", show(range)),
                )
            })?;
            CompareMode::Custom(first, last)
        }
        (Some("custom"), None) => {
            return Err(invalid("the \"custom\" mode needs a date_range"));
        }
        _ => {
            return Err(invalid(
                "mode must be \"previous_period\", \"year_over_year\" or \"custom\"",
            ));
        }
    };
    Ok(Comparisons {
        mode,
        match_day_of_week: parse_bool(map, "match_day_of_week", path)?,
    })
}

fn parse_pagination(value: &Value) -> Result<Pagination, RequestError> {
    let path = "#/pagination";
    let Value::Object(map) = value else {
        return Err(mismatch(path, "Object", value));
    };
    if let Some(key) = map
        .keys()
        .find(|k| !["limit", "offset"].contains(&k.as_str()))
    {
        return Err(err(
            &format!("{path}/{}", pointer_key(key)),
            "Schema does not allow additional properties.",
        ));
    }
    let number = |key: &str, min: u32, max: u32, default: u32| -> Result<u32, RequestError> {
        let Some(v) = map.get(key) else {
            return Ok(default);
        };
        let path = format!("{path}/{key}");
        let Value::Number(n) = v else {
            return Err(mismatch(&path, "Integer", v));
        };
        if let Some(i) = n.as_i64() {
            if i < i64::from(min) {
                return Err(err(&path, format!("Expected the value to be >= {min}")));
            }
            if i > i64::from(max) {
                return Err(err(&path, format!("Expected the value to be <= {max}")));
            }
            return Ok(u32::try_from(i).unwrap_or(max));
        }
        if n.is_u64() {
            return Err(err(&path, format!("Expected the value to be <= {max}")));
        }
        Err(mismatch(&path, "Integer", v))
    };
    Ok(Pagination {
        limit: number("limit", 1, MAX_LIMIT, MAX_LIMIT)?,
        offset: number("offset", 0, MAX_OFFSET, 0)?,
    })
}

/// The rules between fields, in Plausible's order, then tally's.
fn validate(q: &Query) -> Result<(), RequestError> {
    for (i, (by, direction)) in q.order_by.iter().enumerate() {
        let queried = match by {
            OrderBy::Metric(m) => q.metrics.contains(m),
            OrderBy::Dimension(d) => q.dimensions.contains(d),
        };
        if !queried {
            return Err(err(
                &format!("#/order_by/{i}"),
                format!(
                    "Invalid order_by entry [\"{}\", \"{}\"]. Entry is not a queried metric or dimension.",
                    by.as_str(),
                    direction.as_str()
                ),
            ));
        }
    }
    let filters_on = |d: Dimension| q.filters.as_ref().is_some_and(|f| f.mentions(d));
    for metric in &q.metrics {
        let name = metric.as_str();
        match metric {
            Metric::ConversionRate
                if !q.dimensions.contains(&Dimension::Goal) && !filters_on(Dimension::Goal) =>
            {
                return Err(RequestError {
                    message: format!(
                        "Metric `{name}` can only be queried with event:goal filters or dimensions."
                    ),
                });
            }
            Metric::ViewsPerVisit if filters_on(Dimension::Page) => {
                return Err(RequestError {
                    message: format!(
                        "Metric `{name}` cannot be queried with a filter on `event:page`."
                    ),
                });
            }
            // Plausible refuses any dimension here; tally allows time buckets (views per
            // visit per day is well defined: the visits that began in the bucket).
            Metric::ViewsPerVisit if q.dimensions.iter().any(|d| d.scope() != Scope::Time) => {
                return Err(RequestError {
                    message: format!(
                        "Metric `{name}` cannot be queried with `dimensions` other than time."
                    ),
                });
            }
            Metric::Percentage if q.dimensions.iter().all(|d| d.scope() == Scope::Time) => {
                return Err(RequestError {
                    message: format!("Metric `{name}` requires a dimension other than time."),
                });
            }
            _ => {}
        }
    }
    check_scopes(q)?;
    if q.include.time_labels && q.time_dimension().is_none() {
        return Err(RequestError {
            message: "Invalid include.time_labels: requires a time dimension.".into(),
        });
    }
    if q.date_range.is_realtime() {
        if q.include.comparisons.is_some() {
            return Err(err(
                "#/include/comparisons",
                "Comparisons are not available for the realtime date range.",
            ));
        }
        if q.date.is_some() {
            return Err(err(
                "#/date",
                "The realtime date range is always the last 30 minutes; date cannot move it.",
            ));
        }
    }
    Ok(())
}

/// Plausible's `TableDecider` rule: metrics of whole visits cannot be split by a property of
/// single events (which visit would a bounce belong to, with two pages?), nor counts of
/// events by the visit's entry or exit page. `event:page` alone is the exception: visit
/// metrics by page are those of the visits that entered on it.
fn check_scopes(q: &Query) -> Result<(), RequestError> {
    let event_dimensions: Vec<Dimension> = q
        .dimensions
        .iter()
        .copied()
        .filter(|d| d.scope() == Scope::Event)
        .collect();
    if event_dimensions == [Dimension::Page] {
        return Ok(());
    }
    let names = |items: &mut dyn Iterator<Item = String>| {
        items
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let visit_metrics: Vec<Metric> = q
        .metrics
        .iter()
        .copied()
        .filter(|m| m.scope() == MetricScope::Visit)
        .collect();
    if !visit_metrics.is_empty() && !event_dimensions.is_empty() {
        return Err(RequestError {
            message: format!(
                "Session metric(s) {} cannot be queried along with event dimension(s) {}",
                names(&mut visit_metrics.iter().map(|m| m.as_str().to_string())),
                names(
                    &mut event_dimensions
                        .iter()
                        .map(|d| d.name_with(q.prop_key.as_deref()))
                ),
            ),
        });
    }
    let event_metrics: Vec<Metric> = q
        .metrics
        .iter()
        .copied()
        .filter(|m| m.scope() == MetricScope::Event)
        .collect();
    let visit_only: Vec<Dimension> = q
        .dimensions
        .iter()
        .copied()
        .filter(Dimension::whole_visit_only)
        .collect();
    if !event_metrics.is_empty() && !visit_only.is_empty() {
        return Err(RequestError {
            message: format!(
                "Event metric(s) {} cannot be queried along with session dimension(s) {}",
                names(&mut event_metrics.iter().map(|m| m.as_str().to_string())),
                names(&mut visit_only.iter().map(|d| d.as_str().to_string())),
            ),
        });
    }
    Ok(())
}

impl Query {
    /// The query's time dimension, if it has one.
    pub fn time_dimension(&self) -> Option<Dimension> {
        self.dimensions
            .iter()
            .copied()
            .find(|d| d.scope() == Scope::Time)
    }

    /// The bucket of the query's time dimension over the resolved days (`time` chosen from
    /// their number; hours for `realtime`); `None` without a time dimension.
    pub fn time_grain(&self, resolved: (NaiveDate, NaiveDate)) -> Option<TimeGrain> {
        let grain = self.time_dimension()?.time_grain()?;
        Some(grain.unwrap_or_else(|| {
            if self.date_range.is_realtime() {
                TimeGrain::Hour
            } else {
                TimeGrain::for_span(resolved.0, resolved.1)
            }
        }))
    }

    /// The days of the query: [`DateRange::resolve`] with the request's `date`, if it has one,
    /// in place of `today`.
    pub fn resolve(
        &self,
        today: NaiveDate,
        first_day: Option<NaiveDate>,
    ) -> Result<(NaiveDate, NaiveDate), RequestError> {
        self.date_range
            .resolve(self.date.unwrap_or(today), first_day)
    }

    /// The comparison period of `include.comparisons` for the resolved days, if asked for
    /// ([`Comparisons::period`], with the request's `date` in place of `today`).
    pub fn comparison_period(
        &self,
        resolved: (NaiveDate, NaiveDate),
        today: NaiveDate,
    ) -> Option<(NaiveDate, NaiveDate)> {
        let comparisons = self.include.comparisons?;
        Some(comparisons.period(resolved, self.date.unwrap_or(today)))
    }

    /// The default order: the time dimension ascending if there is one, then the first
    /// metric descending (Plausible's).
    fn default_order_by(&self) -> Vec<(OrderBy, Direction)> {
        let time = self
            .time_dimension()
            .map(|d| (OrderBy::Dimension(d), Direction::Asc));
        let metric = self
            .metrics
            .first()
            .map(|m| (OrderBy::Metric(*m), Direction::Desc));
        time.into_iter().chain(metric).collect()
    }

    /// The `query` object of the answer, as Plausible returns it: the request as understood
    /// (defaults filled in, `time` replaced by its bucket), with `date_range` as the first
    /// and last second of the resolved days in the site's time zone `tz`
    /// (`["2024-01-01T00:00:00+01:00", "2024-01-31T23:59:59+01:00"]`). For `realtime`, whose
    /// window is not whole days, use [`Query::echo_window`].
    pub fn echo(&self, resolved: (NaiveDate, NaiveDate), tz: chrono_tz::Tz) -> Value {
        let from = crate::time::start_of_day(tz, resolved.0);
        let to = crate::time::day_bounds(tz, resolved.1).1.saturating_sub(1);
        self.echo_with(iso(from, tz), iso(to, tz), self.time_grain(resolved))
    }

    /// [`Query::echo`] for a window of instants (`realtime`'s, [`date_range::realtime_window`]).
    pub fn echo_window(&self, from_unix: u32, to_unix: u32, tz: chrono_tz::Tz) -> Value {
        let grain = self.time_dimension().map(|_| TimeGrain::Hour);
        self.echo_with(iso(from_unix, tz), iso(to_unix, tz), grain)
    }

    fn echo_with(&self, from: String, to: String, grain: Option<TimeGrain>) -> Value {
        let resolve_time = |d: Dimension| match (d, grain) {
            (Dimension::Time, Some(g)) => Dimension::of_grain(g),
            _ => d,
        };
        let filters: Vec<Value> = match &self.filters {
            None => Vec::new(),
            Some(Filter::And(list)) => list.iter().map(Filter::to_json).collect(),
            Some(f) => vec![f.to_json()],
        };
        let order_by: Vec<Value> = self
            .order_by
            .iter()
            .map(|(by, direction)| {
                let name = match by {
                    OrderBy::Dimension(d) => resolve_time(*d).name_with(self.prop_key.as_deref()),
                    OrderBy::Metric(m) => m.as_str().to_string(),
                };
                serde_json::json!([name, direction.as_str()])
            })
            .collect();
        let mut include = Map::new();
        for (key, on) in [
            ("imports", self.include.imports),
            ("time_labels", self.include.time_labels),
            ("total_rows", self.include.total_rows),
        ] {
            if on {
                include.insert(key.into(), Value::Bool(true));
            }
        }
        if let Some(c) = &self.include.comparisons {
            let mut comparisons = Map::new();
            comparisons.insert("mode".into(), c.mode.as_str().into());
            if let CompareMode::Custom(a, b) = c.mode {
                comparisons.insert(
                    "date_range".into(),
                    serde_json::json!([a.to_string(), b.to_string()]),
                );
            }
            if c.match_day_of_week {
                comparisons.insert("match_day_of_week".into(), Value::Bool(true));
            }
            include.insert("comparisons".into(), Value::Object(comparisons));
        }
        serde_json::json!({
            "site_id": self.site.to_json(),
            "metrics": self.metrics.iter().map(Metric::as_str).collect::<Vec<_>>(),
            "date_range": [from, to],
            "filters": filters,
            "dimensions": self.dimensions.iter().map(|d| resolve_time(*d).name_with(self.prop_key.as_deref())).collect::<Vec<_>>(),
            "order_by": order_by,
            "include": include,
            "pagination": {"limit": self.pagination.limit, "offset": self.pagination.offset},
        })
    }
}

/// An instant as ISO 8601 in `tz`: `2024-01-01T00:00:00+01:00`, `Z` for UTC (as Elixir
/// writes it).
fn iso(unix: u32, tz: chrono_tz::Tz) -> String {
    let at = tz.timestamp_opt(i64::from(unix), 0).single();
    let Some(at) = at else {
        return String::new();
    };
    if matches!(tz, chrono_tz::UTC | chrono_tz::Etc::UTC) {
        at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
