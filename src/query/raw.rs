//! Answers from the per-visit rows (`visits`), kept as long as the raw events (7 days): any
//! combination of dimensions and filters the daily aggregates cannot answer exactly.
//!
//! A condition on a per-visit dimension (country, source, entry page, ...) selects visits. A
//! condition on a per-action dimension (pages, titles, events, outlinks, downloads, searches,
//! goals) selects the visits that have such an action, and, when the filter is a plain `and`,
//! also which actions count as page views and events: filtered by `event:page`, `pageviews` is
//! the number of views of those pages, as in the aggregates (and in Plausible). A negated
//! condition on actions (`is_not`, `contains_not`, `matches_not`) selects visits with no such
//! action.

use super::aggregates::{
    NotFromAggregates, Shape, condition_sql, filter_sql, group_value, matches_any, page_sql,
    time_label,
};
use super::binds::{Binds, Params, Value};
use super::date_range::TimeGrain;
use super::filter::{Condition, Filter};
use crate::rollup::dimensions::{self, Values};

/// A kind of action and its parallel arrays in `visits`: the element names a condition uses.
struct Family {
    /// `(array column, element name)`, in order.
    arrays: &'static [(&'static str, &'static str)],
    /// Whether an element is a page view: an SQL expression over the element names, `1` or
    /// `0` for families of one kind.
    pageview: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        arrays: &[
            ("pv_pages", "a_page"),
            ("pv_titles", "a_title"),
            ("pv_hosts", "a_host"),
            ("pv_load_ms", "a_load"),
            ("pv_hours", "a_hour"),
        ],
        pageview: "1",
    },
    Family {
        arrays: &[
            ("ev_categories", "a_category"),
            ("ev_actions", "a_action"),
            ("ev_names", "a_name"),
        ],
        pageview: "0",
    },
    Family {
        arrays: &[("outlinks", "a_outlink")],
        pageview: "0",
    },
    Family {
        arrays: &[("downloads", "a_download")],
        pageview: "0",
    },
    Family {
        arrays: &[
            ("searches", "a_search"),
            ("search_categories", "a_search_category"),
        ],
        pageview: "0",
    },
    Family {
        arrays: &[("goals", "a_goal")],
        pageview: "0",
    },
    // Every action with its custom properties (`event:props:KEY`).
    Family {
        arrays: &[
            ("action_pageview", "a_prop_pv"),
            ("action_prop_keys", "a_prop_keys"),
            ("action_prop_values", "a_prop_values"),
        ],
        pageview: "a_prop_pv",
    },
];

/// The family of the custom properties.
const PROPS_FAMILY: usize = 6;

const LOAD_BUCKET_OF_ELEMENT: &str = "multiIf(a_load < 500, '0-0.5s', a_load < 1000, '0.5-1s', \
     a_load < 2000, '1-2s', a_load < 5000, '2-5s', a_load < 10000, '5-10s', '10s+')";

/// The family of a per-action dimension and the SQL of its element value; `key` is the bind
/// token of the query's custom property key (`event:props`: the action's value of it, `''`
/// without it).
fn element(dimension: &str, key: &str) -> Option<(usize, String)> {
    let (family, expr) = match dimension {
        "event:page" => (0, "a_page".to_string()),
        "event:title" => (0, "a_title".into()),
        "event:hostname" => (0, "a_host".into()),
        "event:page_load" => (0, LOAD_BUCKET_OF_ELEMENT.into()),
        "event:category" => (1, "a_category".into()),
        "event:action" => (1, "a_action".into()),
        "event:name" => (1, "a_name".into()),
        "event:outlink" => (2, "a_outlink".into()),
        "event:download" => (3, "a_download".into()),
        "event:search" => (4, "a_search".into()),
        "event:search_category" => (4, "a_search_category".into()),
        "event:goal" => (5, "a_goal".into()),
        "event:props" => (
            PROPS_FAMILY,
            format!("if(has(a_prop_keys, {key}), a_prop_values[indexOf(a_prop_keys, {key})], '')"),
        ),
        _ => return None,
    };
    Some((family, expr))
}

/// The per-visit SQL expression of a dimension, if it has one value per visit.
fn per_visit(dimension: &str) -> Option<&'static str> {
    match dimensions::find(dimension)?.values {
        Values::PerVisit(expr) => Some(expr),
        Values::PerAction { .. } => None,
    }
}

fn lambda(f: &Family, body: &str) -> String {
    let vars: Vec<&str> = f.arrays.iter().map(|a| a.1).collect();
    let arrays: Vec<&str> = f.arrays.iter().map(|a| a.0).collect();
    format!("({}) -> {body}, {}", vars.join(", "), arrays.join(", "))
}

/// The leaves of a plain `and` (or a single condition); `None` for `or`/`not` trees.
fn conjunction(filter: &Filter) -> Option<Vec<&Condition>> {
    match filter {
        Filter::Condition(c) => Some(vec![c]),
        Filter::And(fs) => fs
            .iter()
            .map(|f| match f {
                Filter::Condition(c) => Some(c),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A condition as a condition on visits: on the visit's own value, or "has an action
/// matching" (negated: "has none").
fn visit_condition(c: &Condition, p: &mut Params) -> Result<String, NotFromAggregates> {
    let name = c.dimension.as_str();
    if let Some(expr) = per_visit(name) {
        return Ok(condition_sql(c, expr, p));
    }
    let key = prop_token(c, p);
    let (family, expr) = element(name, &key)
        .ok_or_else(|| NotFromAggregates(format!("{name} cannot be filtered on")))?;
    let exists = format!(
        "arrayExists({})",
        lambda(&FAMILIES[family], &matches_any(c, &expr, p))
    );
    Ok(if c.op.is_negated() {
        format!("NOT {exists}")
    } else {
        exists
    })
}

/// The bind token of a condition's custom property key (empty for other conditions).
fn prop_token(c: &Condition, p: &mut Params) -> String {
    c.prop_key
        .as_ref()
        .map(|k| p.add(Value::Str(k.clone())))
        .unwrap_or_default()
}

/// The grouped `SELECT` answering `shape` from `visits` (columns as [`super::sums::Group`]),
/// and its binds; `page` adds `ORDER BY`/`LIMIT`.
pub fn sql(
    shape: &Shape<'_>,
    metrics: &[&str],
    page: bool,
) -> Result<(String, Binds), NotFromAggregates> {
    let refuse = |why: &str| Err(NotFromAggregates(why.to_string()));
    let mut p = Params::default();
    let key = shape
        .prop_key
        .map(|k| p.add(Value::Str(k.to_string())))
        .unwrap_or_default();
    // The breakdown: per-visit expressions, and at most one per-action dimension.
    let mut action_family: Option<usize> = None;
    let mut parts: Vec<String> = Vec::new();
    for d in &shape.dims {
        if let Some(expr) = per_visit(d) {
            parts.push(expr.to_string());
        } else if let Some((family, expr)) = element(d, &key) {
            if action_family.is_some() {
                return refuse(
                    "a breakdown by two dimensions of actions (such as pages and events) at once is not supported",
                );
            }
            parts.push(expr);
            action_family = Some(family);
        } else {
            return refuse(&format!("{d} is not available"));
        }
    }
    let gv = group_value(&parts);
    let mut wheres = vec![format!(
        "site_id = {} AND day >= toDate({}) AND day <= toDate({})",
        p.add(Value::U32(shape.site_id)),
        p.add(Value::Str(shape.first.to_string())),
        p.add(Value::Str(shape.last.to_string()))
    )];
    if let Some(f) = shape.filter {
        wheres.push(filter_sql(f, &mut visit_condition, &mut p)?);
    }
    let wheres = wheres.join(" AND ");
    let families: Vec<usize> = {
        let mut fs: Vec<usize> = shape
            .filter
            .map(|f| f.conditions())
            .unwrap_or_default()
            .iter()
            .filter_map(|c| element(c.dimension.as_str(), "").map(|e| e.0))
            .collect();
        fs.sort_unstable();
        fs.dedup();
        fs
    };
    // Which actions of one family count: the filter's conditions on that family, when the
    // filter is a plain `and`.
    let element_condition = |family: usize,
                             p: &mut Params|
     -> Result<Option<String>, NotFromAggregates> {
        let Some(f) = shape.filter else {
            return Ok(None);
        };
        let Some(leaves) = conjunction(f) else {
            return if families.is_empty() {
                Ok(None)
            } else {
                Err(NotFromAggregates(
                    "page views and events cannot be counted under `or`/`not` over conditions on pages or events; ask for visitors or visits, or use a plain `and`".into(),
                ))
            };
        };
        let mine: Vec<String> = leaves
            .into_iter()
            .filter_map(|c| {
                let (fam, _) = element(c.dimension.as_str(), "")?;
                let key = prop_token(c, p);
                let (_, expr) = element(c.dimension.as_str(), &key)?;
                (fam == family).then(|| condition_sql(c, &expr, p))
            })
            .collect();
        Ok((!mine.is_empty()).then(|| format!("({})", mine.join(" AND "))))
    };
    let wants_counts = metrics
        .iter()
        .any(|m| matches!(*m, "pageviews" | "events" | "views_per_visit"));
    let hourly = shape.grain == Some(TimeGrain::Hour);
    let inner = if let Some(family) = action_family {
        if hourly {
            return refuse("hourly figures broken down by pages or events are not supported");
        }
        let fam = &FAMILIES[family];
        let mut elements = element_condition(family, &mut p)?
            .map(|c| format!(" AND {c}"))
            .unwrap_or_default();
        if shape.dims.contains(&"event:page_load") {
            elements.push_str(" AND a_load >= 0");
        }
        let joins: Vec<String> = fam
            .arrays
            .iter()
            .map(|(a, v)| format!("{a} AS {v}"))
            .collect();
        format!(
            "SELECT day, gv, uniqExact(visitor_key) AS visitors, count() AS visits, \
             sum(np) AS pageviews, sum(n) AS events, sum(bounce) AS bounces, \
             sum(duration) AS duration \
             FROM (SELECT day, visitor_key, start, bounce, duration, {gv} AS gv, count() AS n, \
             toUInt64(sum({})) AS np \
             FROM visits ARRAY JOIN {} WHERE {wheres}{elements} \
             GROUP BY day, visitor_key, start, bounce, duration, gv) GROUP BY day, gv",
            fam.pageview,
            joins.join(", "),
        )
    } else {
        // Page views and events of each visit, and the hours of its page views and actions,
        // counted as the filter says.
        let (pv, ev, pv_hours, action_hours) = if families.is_empty() || (!wants_counts && !hourly)
        {
            (
                "pageviews".to_string(),
                "actions".to_string(),
                "pv_hours".to_string(),
                "action_hours".to_string(),
            )
        } else if families.len() > 1 {
            return refuse(
                "page views and events filtered by conditions on two kinds of actions (such as pages and events) cannot be counted; ask for visitors or visits",
            );
        } else {
            let fam = &FAMILIES[families[0]];
            let cond = element_condition(families[0], &mut p)?.unwrap_or_else(|| "1".into());
            let counted = format!("arrayCount({})", lambda(fam, &cond));
            if families[0] == PROPS_FAMILY {
                if hourly {
                    return refuse(
                        "hourly figures filtered by custom properties are not supported",
                    );
                }
                let pageviews = format!(
                    "arrayCount({})",
                    lambda(fam, &format!("({cond}) AND a_prop_pv = 1"))
                );
                (pageviews, counted, "pv_hours".into(), "action_hours".into())
            } else if fam.pageview == "1" {
                // arrayFilter keeps elements of its first array: the hours come first.
                let hours = format!(
                    "arrayFilter((a_hour_, {}) -> {cond}, pv_hours, {})",
                    fam.arrays
                        .iter()
                        .map(|a| a.1)
                        .collect::<Vec<_>>()
                        .join(", "),
                    fam.arrays
                        .iter()
                        .map(|a| a.0)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                (counted.clone(), counted, hours.clone(), hours)
            } else if hourly {
                return refuse(
                    "hourly figures filtered by events, outlinks, downloads, searches or goals are not supported",
                );
            } else {
                (
                    "0".into(),
                    counted,
                    "pv_hours".into(),
                    "action_hours".into(),
                )
            }
        };
        if hourly {
            // As the rollup counts hours: visits, bounces and duration in the hour a visit
            // began, page views and events in their own hour.
            format!(
                "SELECT day, hour, gv, uniqExact(visitor_key) AS visitors, \
                 countIf(start_hour = hour) AS visits, \
                 sum(arrayCount(h -> h = hour, sel_pv_hours)) AS pageviews, \
                 sum(arrayCount(h -> h = hour, sel_action_hours)) AS events, \
                 sumIf(bounce, start_hour = hour) AS bounces, \
                 sumIf(duration, start_hour = hour) AS duration \
                 FROM (SELECT day, visitor_key, start_hour, bounce, duration, {gv} AS gv, \
                 {pv_hours} AS sel_pv_hours, {action_hours} AS sel_action_hours, \
                 arrayJoin(arrayDistinct(arrayPushBack(sel_action_hours, start_hour))) AS hour \
                 FROM visits WHERE {wheres}) GROUP BY day, hour, gv"
            )
        } else {
            format!(
                "SELECT day, {gv} AS gv, uniqExact(visitor_key) AS visitors, count() AS visits, \
                 sum({pv}) AS pageviews, sum({ev}) AS events, sum(bounce) AS bounces, \
                 sum(duration) AS duration FROM visits WHERE {wheres} GROUP BY day, gv"
            )
        }
    };
    let label = time_label(shape, &mut p);
    let mut sql = format!(
        "SELECT {label} AS t, gv AS value, sum(visitors) AS visitors, sum(visits) AS visits, \
         sum(pageviews) AS pageviews, sum(events) AS events, sum(bounces) AS bounces, \
         sum(duration) AS duration, toUInt64(1) AS n FROM ({inner}) GROUP BY t, value"
    );
    if page {
        sql.push_str(&page_sql(shape, &mut p));
    }
    Ok(p.finish(&sql))
}
