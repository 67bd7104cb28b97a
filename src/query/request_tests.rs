//! Tests of `request.rs`: every rule and every message, table by table.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::*;
use crate::query::filter::{Condition, Operator};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A valid body with `extra` merged in (a `null` removes a key).
fn body(extra: Value) -> Value {
    let mut base = json!({
        "site_id": "example.org",
        "metrics": ["visitors"],
        "date_range": "7d",
    });
    for (key, value) in extra.as_object().unwrap() {
        if value.is_null() {
            base.as_object_mut().unwrap().remove(key);
        } else {
            base[key] = value.clone();
        }
    }
    base
}

fn ok(extra: Value) -> Query {
    let b = body(extra);
    parse(&b).unwrap_or_else(|e| panic!("{b}: {}", e.message))
}

fn fails(extra: Value) -> String {
    let b = body(extra);
    match parse(&b) {
        Ok(q) => panic!("{b} was accepted: {q:?}"),
        Err(e) => e.message,
    }
}

#[test]
fn a_minimal_request_gets_plausibles_defaults() {
    let q = ok(json!({}));
    assert_eq!(
        q,
        Query {
            site: SiteRef::Domain("example.org".into()),
            metrics: vec![Metric::Visitors],
            date_range: DateRange::LastDays(7),
            date: None,
            dimensions: vec![],
            filters: None,
            order_by: vec![(OrderBy::Metric(Metric::Visitors), Direction::Desc)],
            include: Include::default(),
            pagination: Pagination {
                limit: 10_000,
                offset: 0
            },
            prop_key: None,
        }
    );
}

#[test]
fn a_full_request_is_understood() {
    let q = ok(json!({
        "site_id": "1",
        "metrics": ["visitors", "pageviews", "percentage"],
        "date_range": ["2024-01-01", "2024-01-31"],
        "date": "2024-02-10",
        "dimensions": ["time:day", "visit:country"],
        "filters": [
            ["is", "visit:country", ["DE", "FR"]],
            ["contains", "event:page", ["/blog"], {"case_sensitive": false}]
        ],
        "order_by": [["pageviews", "asc"], ["visit:country", "desc"]],
        "include": {"total_rows": true, "time_labels": true, "imports": true,
                    "comparisons": {"mode": "year_over_year", "match_day_of_week": true}},
        "pagination": {"limit": 100, "offset": 200}
    }));
    assert_eq!(q.site, SiteRef::Id(1));
    assert_eq!(
        q.metrics,
        [Metric::Visitors, Metric::Pageviews, Metric::Percentage]
    );
    assert_eq!(
        q.date_range,
        DateRange::Custom(d("2024-01-01"), d("2024-01-31"))
    );
    assert_eq!(q.date, Some(d("2024-02-10")));
    assert_eq!(q.dimensions, [Dimension::TimeDay, Dimension::Country]);
    assert_eq!(
        q.filters,
        Some(Filter::And(vec![
            Filter::Condition(Condition {
                op: Operator::Is,
                dimension: Dimension::Country,
                prop_key: None,
                values: vec!["DE".into(), "FR".into()],
                case_sensitive: true,
            }),
            Filter::Condition(Condition {
                op: Operator::Contains,
                dimension: Dimension::Page,
                prop_key: None,
                values: vec!["/blog".into()],
                case_sensitive: false,
            }),
        ]))
    );
    assert_eq!(
        q.order_by,
        [
            (OrderBy::Metric(Metric::Pageviews), Direction::Asc),
            (OrderBy::Dimension(Dimension::Country), Direction::Desc),
        ]
    );
    assert_eq!(
        q.include,
        Include {
            total_rows: true,
            time_labels: true,
            imports: true,
            comparisons: Some(Comparisons {
                mode: CompareMode::YearOverYear,
                match_day_of_week: true,
            }),
        }
    );
    assert_eq!(
        q.pagination,
        Pagination {
            limit: 100,
            offset: 200
        }
    );
}

#[test]
fn default_order_puts_time_first() {
    let cases = [
        (
            json!({"metrics": ["pageviews", "visitors"], "dimensions": ["visit:source", "time"]}),
            vec![
                (OrderBy::Dimension(Dimension::Time), Direction::Asc),
                (OrderBy::Metric(Metric::Pageviews), Direction::Desc),
            ],
        ),
        (
            json!({"metrics": ["events"], "dimensions": ["event:name"]}),
            vec![(OrderBy::Metric(Metric::Events), Direction::Desc)],
        ),
        // An explicit empty list is no order: the default too.
        (
            json!({"order_by": []}),
            vec![(OrderBy::Metric(Metric::Visitors), Direction::Desc)],
        ),
    ];
    for (extra, order) in cases {
        assert_eq!(ok(extra.clone()).order_by, order, "{extra}");
    }
}

#[test]
fn site_id_is_a_domain_or_an_id() {
    let cases = [
        (json!("example.org"), SiteRef::Domain("example.org".into())),
        (
            json!("Shop.Example.ORG"),
            SiteRef::Domain("shop.example.org".into()),
        ),
        (
            json!("xn--bcher-kva.example"),
            SiteRef::Domain("xn--bcher-kva.example".into()),
        ),
        (json!("7"), SiteRef::Id(7)),
        (json!("007"), SiteRef::Id(7)),
        (json!(7), SiteRef::Id(7)),
        (json!(0), SiteRef::Id(0)),
        (json!(4_294_967_295_u64), SiteRef::Id(u32::MAX)),
    ];
    for (site, expected) in cases {
        assert_eq!(ok(json!({ "site_id": site })).site, expected, "{site}");
    }
    let hint = ": give the site's domain (\"example.org\") or its id";
    let refused = [
        (json!(""), format!("#/site_id: Invalid site_id \"\"{hint}")),
        (
            json!("exa mple.org"),
            format!("#/site_id: Invalid site_id \"exa mple.org\"{hint}"),
        ),
        (
            json!("example.org/"),
            format!("#/site_id: Invalid site_id \"example.org/\"{hint}"),
        ),
        (
            json!(".example.org"),
            format!("#/site_id: Invalid site_id \".example.org\"{hint}"),
        ),
        (
            json!("*.example.org"),
            format!("#/site_id: Invalid site_id \"*.example.org\"{hint}"),
        ),
        (
            json!("4294967296"),
            format!("#/site_id: Invalid site_id \"4294967296\"{hint}"),
        ),
        (
            json!(4_294_967_296_u64),
            format!("#/site_id: Invalid site_id 4294967296{hint}"),
        ),
        (json!(-1), format!("#/site_id: Invalid site_id -1{hint}")),
        (json!(1.5), format!("#/site_id: Invalid site_id 1.5{hint}")),
        (
            json!(["example.org"]),
            "#/site_id: Type mismatch. Expected String but got Array.".into(),
        ),
        (
            json!(true),
            "#/site_id: Type mismatch. Expected String but got Boolean.".into(),
        ),
    ];
    for (site, message) in refused {
        assert_eq!(fails(json!({ "site_id": site })), message, "{site}");
    }
    let long = format!("{}.org", "a".repeat(250));
    assert!(fails(json!({ "site_id": long })).starts_with("#/site_id: Invalid site_id"));
}

#[test]
fn every_metric_and_dimension_parses_by_its_name() {
    for m in Metric::ALL {
        assert_eq!(Metric::from_name(m.as_str()), Some(m));
        // With what each needs: a goal for conversion_rate, a dimension for percentage.
        let dimensions: &[&str] = if m == Metric::Percentage {
            &["visit:source"]
        } else {
            &[]
        };
        let q = ok(json!({"metrics": [m.as_str()], "dimensions": dimensions,
                          "filters": [["is", "event:goal", ["Signup"]]]}));
        assert_eq!(q.metrics, [m]);
    }
    for dim in Dimension::ALL {
        assert_eq!(Dimension::from_name(dim.as_str()), Some(dim));
        let q = ok(json!({ "dimensions": [dim.as_str()] }));
        assert_eq!(q.dimensions, [dim]);
    }
    // No name twice, and the lists are complete (a new variant must be added to ALL).
    let mut names: Vec<&str> = Dimension::ALL.iter().map(Dimension::as_str).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), Dimension::ALL.len());
    assert_eq!(Metric::ALL.len(), 9);
    assert_eq!(Dimension::ALL.len(), 44);
}

#[test]
fn scopes() {
    use Dimension as D;
    let cases = [
        (D::Page, Scope::Event, false),
        (D::Goal, Scope::Event, false),
        (D::Title, Scope::Event, false),
        (D::PageLoad, Scope::Event, false),
        (D::EntryPage, Scope::Visit, true),
        (D::ExitPageHostname, Scope::Visit, true),
        (D::Source, Scope::Visit, false),
        (D::VisitorType, Scope::Visit, false),
        (D::Language, Scope::Visit, false),
        (D::Time, Scope::Time, false),
        (D::TimeMonth, Scope::Time, false),
    ];
    for (dim, scope, whole_visit) in cases {
        assert_eq!(dim.scope(), scope, "{dim:?}");
        assert_eq!(dim.whole_visit_only(), whole_visit, "{dim:?}");
    }
    assert_eq!(Metric::Pageviews.scope(), MetricScope::Event);
    assert_eq!(Metric::BounceRate.scope(), MetricScope::Visit);
    assert_eq!(Metric::Visitors.scope(), MetricScope::Either);
}

#[test]
fn the_reference_documents_every_name() {
    let doc = include_str!("../../docs/stats-api.md");
    let names = Metric::ALL
        .iter()
        .map(Metric::as_str)
        .chain(Dimension::ALL.iter().map(Dimension::as_str));
    for name in names {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/stats-api.md does not mention `{name}`"
        );
    }
}

#[test]
fn combinations_plausible_allows() {
    let cases = [
        // Visit metrics split by a page: the visits that entered on it.
        json!({"metrics": ["bounce_rate", "visit_duration"], "dimensions": ["event:page"]}),
        json!({"metrics": ["bounce_rate"], "dimensions": ["event:page", "visit:device", "time:day"]}),
        json!({"metrics": ["bounce_rate"], "dimensions": ["visit:exit_page"]}),
        json!({"metrics": ["bounce_rate"], "dimensions": ["visit:device"]}),
        // Event filters narrow visit metrics down to visits with such events.
        json!({"metrics": ["bounce_rate"], "filters": [["is", "event:name", ["Signup"]]]}),
        json!({"metrics": ["pageviews", "events"], "dimensions": ["visit:source", "event:name"]}),
        json!({"metrics": ["visitors", "visits"], "dimensions": ["visit:entry_page", "event:name"]}),
        json!({"metrics": ["conversion_rate"], "dimensions": ["event:goal"]}),
        json!({"metrics": ["conversion_rate"], "filters": [["is", "event:goal", ["Signup"]]]}),
        json!({"metrics": ["conversion_rate", "visitors"], "dimensions": ["visit:source"],
               "filters": [["contains", "event:goal", ["Sign"]]]}),
        json!({"metrics": ["views_per_visit"]}),
        json!({"metrics": ["views_per_visit"], "filters": [["is", "visit:country", ["DE"]]]}),
        json!({"metrics": ["views_per_visit"], "dimensions": ["time:week"]}),
        json!({"metrics": ["percentage"], "dimensions": ["visit:browser"]}),
        json!({"metrics": ["percentage"], "dimensions": ["time", "visit:browser"]}),
        json!({"metrics": ["visitors"], "dimensions": ["time"], "include": {"time_labels": true}}),
        json!({"date_range": "realtime", "dimensions": ["time:hour"]}),
        json!({"date_range": "day", "date": "2021-05-05"}),
        json!({"include": {"comparisons": {"mode": "custom", "date_range": ["2023-01-01", "2023-01-07"]}}}),
        json!({"include": {"comparisons": null, "time_labels": false}}),
    ];
    for extra in cases {
        ok(extra);
    }
}

#[test]
fn refuses_with_plausibles_words() {
    let cases = [
        // The body as a whole.
        (
            json!({"foo": 1}),
            "#/foo: Schema does not allow additional properties.",
        ),
        (
            json!({"imports": true}),
            "#/imports: Schema does not allow additional properties.",
        ),
        (
            json!({"a/b~c": 1}),
            "#/a~1b~0c: Schema does not allow additional properties.",
        ),
        (
            json!({"site_id": null}),
            "#: Required property site_id was not present.",
        ),
        (
            json!({"metrics": null}),
            "#: Required property metrics was not present.",
        ),
        (
            json!({"date_range": null}),
            "#: Required property date_range was not present.",
        ),
        // Metrics.
        (
            json!({"metrics": "visitors"}),
            "#/metrics: Type mismatch. Expected Array but got String.",
        ),
        (
            json!({"metrics": []}),
            "#/metrics: Expected a minimum of 1 items but got 0.",
        ),
        (
            json!({"metrics": ["visitors", "foo"]}),
            "#/metrics/1: Invalid metric \"foo\"",
        ),
        (json!({"metrics": [5]}), "#/metrics/0: Invalid metric 5"),
        (
            json!({"metrics": ["events", "visitors", "visitors"]}),
            "#/metrics: Expected items to be unique but they were not.",
        ),
        (
            json!({"metrics": ["scroll_depth"]}),
            "#/metrics/0: Invalid metric \"scroll_depth\": tally does not support it (no scroll depth is recorded)",
        ),
        (
            json!({"metrics": ["time_on_page"]}),
            "#/metrics/0: Invalid metric \"time_on_page\": tally does not support it (time is reported per visit, as visit_duration)",
        ),
        (
            json!({"metrics": ["visitors", "total_revenue"]}),
            "#/metrics/1: Invalid metric \"total_revenue\": tally does not support it (revenue is not reported)",
        ),
        (
            json!({"metrics": ["average_revenue"]}),
            "#/metrics/0: Invalid metric \"average_revenue\": tally does not support it (revenue is not reported)",
        ),
        (
            json!({"metrics": ["group_conversion_rate"]}),
            "#/metrics/0: Invalid metric \"group_conversion_rate\": tally does not support it (use conversion_rate)",
        ),
        (
            json!({"metrics": ["exit_rate"]}),
            "#/metrics/0: Invalid metric \"exit_rate\": tally does not support it (exit rates are not computed)",
        ),
        // Dimensions.
        (
            json!({"dimensions": "foobar"}),
            "#/dimensions: Type mismatch. Expected Array but got String.",
        ),
        (
            json!({"dimensions": ["visitors"]}),
            "#/dimensions/0: Invalid dimension \"visitors\"",
        ),
        (
            json!({"dimensions": ["event:props:"]}),
            "#/dimensions/0: Invalid dimension \"event:props:\": give the property's name after event:props:",
        ),
        (
            json!({"dimensions": ["event:props:author", "event:props:plan"]}),
            "#/dimensions: Invalid query: it names the custom properties \"author\" and \"plan\"; tally answers about one custom property per query",
        ),
        (
            json!({"dimensions": ["time:minute"]}),
            "#/dimensions/0: Invalid dimension \"time:minute\": tally groups by the hour at the finest (time:hour)",
        ),
        (
            json!({"dimensions": ["event:name", "event:name"]}),
            "#/dimensions: Expected items to be unique but they were not.",
        ),
        (
            json!({"dimensions": ["time", "visit:source", "time:day"]}),
            "#/dimensions/2: Invalid dimension \"time:day\": only one time dimension can be queried, and \"time\" is one",
        ),
        // Dates.
        (
            json!({"date_range": "foo"}),
            "#/date_range: Invalid date range \"foo\"",
        ),
        (
            json!({"date": "2021-13-01"}),
            "#/date: Invalid date \"2021-13-01\": \"2021-13-01\" is not a date of the calendar",
        ),
        // Filters (the details are in filter.rs's tests).
        (
            json!({"filters": "foobar"}),
            "#/filters: Type mismatch. Expected Array but got String.",
        ),
        (
            json!({"filters": [["is", "event:device", ["foo"]]]}),
            "#/filters/0: Invalid filter [\"is\", \"event:device\", [\"foo\"]]",
        ),
        // Order.
        (
            json!({"order_by": "visitors"}),
            "#/order_by: Type mismatch. Expected Array but got String.",
        ),
        (
            json!({"order_by": ["visitors"]}),
            "#/order_by/0: Type mismatch. Expected Array but got String.",
        ),
        (
            json!({"order_by": [["visitors"]]}),
            "#/order_by/0: Invalid order_by entry [\"visitors\"]: give [name, \"asc\" or \"desc\"]",
        ),
        (
            json!({"order_by": [["visssss", "desc"]]}),
            "#/order_by/0/0: Invalid value in order_by \"visssss\"",
        ),
        (
            json!({"order_by": [["visitors", "up"]]}),
            "#/order_by/0/1: Invalid order_by direction \"up\": \"asc\" or \"desc\"",
        ),
        (
            json!({"order_by": [["visitors", "asc"], ["visitors", "desc"]]}),
            "#/order_by/1: Invalid order_by entry [\"visitors\", \"desc\"]: \"visitors\" is already ordered by",
        ),
        (
            json!({"order_by": [["events", "desc"]]}),
            "#/order_by/0: Invalid order_by entry [\"events\", \"desc\"]. Entry is not a queried metric or dimension.",
        ),
        (
            json!({"order_by": [["visitors", "desc"], ["event:name", "desc"]]}),
            "#/order_by/1: Invalid order_by entry [\"event:name\", \"desc\"]. Entry is not a queried metric or dimension.",
        ),
        // Include.
        (
            json!({"include": "foobar"}),
            "#/include: Type mismatch. Expected Object but got String.",
        ),
        (
            json!({"include": {"foo": true}}),
            "#/include/foo: Schema does not allow additional properties.",
        ),
        (
            json!({"include": {"time_labels": "yes"}}),
            "#/include/time_labels: Type mismatch. Expected Boolean but got String.",
        ),
        (
            json!({"include": {"total_rows": 1}}),
            "#/include/total_rows: Type mismatch. Expected Boolean but got Integer.",
        ),
        (
            json!({"include": {"time_labels": true}}),
            "Invalid include.time_labels: requires a time dimension.",
        ),
        (
            json!({"include": {"comparisons": "previous_period"}}),
            "#/include/comparisons: Type mismatch. Expected Object but got String.",
        ),
        (
            json!({"include": {"comparisons": {"mode": "last_year"}}}),
            "#/include/comparisons: Invalid comparisons {\"mode\": \"last_year\"}: mode must be \"previous_period\", \"year_over_year\" or \"custom\"",
        ),
        (
            json!({"include": {"comparisons": {}}}),
            "#/include/comparisons: Invalid comparisons {}: mode must be \"previous_period\", \"year_over_year\" or \"custom\"",
        ),
        (
            json!({"include": {"comparisons": {"mode": "custom"}}}),
            "#/include/comparisons: Invalid comparisons {\"mode\": \"custom\"}: the \"custom\" mode needs a date_range",
        ),
        (
            json!({"include": {"comparisons": {"mode": "previous_period", "date_range": ["2024-01-01", "2024-01-31"]}}}),
            "#/include/comparisons: Invalid comparisons {\"date_range\": [\"2024-01-01\", \"2024-01-31\"], \"mode\": \"previous_period\"}: only the \"custom\" mode takes a date_range",
        ),
        (
            json!({"include": {"comparisons": {"mode": "custom", "date_range": "7d"}}}),
            "#/include/comparisons/date_range: Invalid date range \"7d\": give two dates such as [\"2024-01-01\", \"2024-01-31\"]",
        ),
        (
            json!({"include": {"comparisons": {"mode": "custom", "date_range": ["2024-02-01", "2024-01-01"]}}}),
            "#/include/comparisons/date_range: Invalid date range [\"2024-02-01\", \"2024-01-01\"]: the first day (2024-02-01) is after the last (2024-01-01)",
        ),
        (
            json!({"include": {"comparisons": {"mode": "year_over_year", "match_day_of_week": "yes"}}}),
            "#/include/comparisons/match_day_of_week: Type mismatch. Expected Boolean but got String.",
        ),
        (
            json!({"include": {"comparisons": {"mode": "year_over_year", "shift": 1}}}),
            "#/include/comparisons/shift: Schema does not allow additional properties.",
        ),
        // Pagination.
        (
            json!({"pagination": []}),
            "#/pagination: Type mismatch. Expected Object but got Array.",
        ),
        (
            json!({"pagination": {"page": 2}}),
            "#/pagination/page: Schema does not allow additional properties.",
        ),
        (
            json!({"pagination": {"limit": 100_000}}),
            "#/pagination/limit: Expected the value to be <= 10000",
        ),
        (
            json!({"pagination": {"limit": 0}}),
            "#/pagination/limit: Expected the value to be >= 1",
        ),
        (
            json!({"pagination": {"limit": "10"}}),
            "#/pagination/limit: Type mismatch. Expected Integer but got String.",
        ),
        (
            json!({"pagination": {"limit": 10.5}}),
            "#/pagination/limit: Type mismatch. Expected Integer but got Number.",
        ),
        (
            json!({"pagination": {"offset": -5}}),
            "#/pagination/offset: Expected the value to be >= 0",
        ),
        (
            json!({"pagination": {"offset": 1_000_001}}),
            "#/pagination/offset: Expected the value to be <= 1000000",
        ),
        (
            json!({"pagination": {"offset": 18_446_744_073_709_551_615_u64}}),
            "#/pagination/offset: Expected the value to be <= 1000000",
        ),
    ];
    for (extra, message) in cases {
        assert_eq!(fails(extra.clone()), message, "{extra}");
    }
}

#[test]
fn refuses_combinations_plausible_refuses() {
    let cases = [
        (
            json!({"metrics": ["conversion_rate"]}),
            "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
        ),
        (
            json!({"metrics": ["visitors", "conversion_rate"], "dimensions": ["visit:source"]}),
            "Metric `conversion_rate` can only be queried with event:goal filters or dimensions.",
        ),
        (
            json!({"metrics": ["views_per_visit"], "filters": [["is", "event:page", ["/"]]]}),
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        ),
        (
            json!({"metrics": ["views_per_visit"], "filters": [["not", ["contains", "event:page", ["/a"]]]]}),
            "Metric `views_per_visit` cannot be queried with a filter on `event:page`.",
        ),
        (
            json!({"metrics": ["views_per_visit"], "dimensions": ["visit:source"]}),
            "Metric `views_per_visit` cannot be queried with `dimensions` other than time.",
        ),
        (
            json!({"metrics": ["percentage"]}),
            "Metric `percentage` requires a dimension other than time.",
        ),
        (
            json!({"metrics": ["percentage"], "dimensions": ["time:day"]}),
            "Metric `percentage` requires a dimension other than time.",
        ),
        (
            json!({"metrics": ["bounce_rate"], "dimensions": ["event:props:foo"]}),
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:props:foo`",
        ),
        (
            json!({"metrics": ["bounce_rate", "visitors"], "dimensions": ["event:name"]}),
            "Session metric(s) `bounce_rate` cannot be queried along with event dimension(s) `event:name`",
        ),
        (
            json!({"metrics": ["visit_duration", "bounce_rate"], "dimensions": ["event:page", "event:title"]}),
            "Session metric(s) `visit_duration`, `bounce_rate` cannot be queried along with event dimension(s) `event:page`, `event:title`",
        ),
        (
            json!({"metrics": ["visit_duration"], "dimensions": ["event:goal"]}),
            "Session metric(s) `visit_duration` cannot be queried along with event dimension(s) `event:goal`",
        ),
        (
            json!({"metrics": ["events"], "dimensions": ["visit:exit_page"]}),
            "Event metric(s) `events` cannot be queried along with session dimension(s) `visit:exit_page`",
        ),
        (
            json!({"metrics": ["pageviews", "visitors", "events"], "dimensions": ["visit:entry_page_hostname", "visit:entry_page"]}),
            "Event metric(s) `pageviews`, `events` cannot be queried along with session dimension(s) `visit:entry_page_hostname`, `visit:entry_page`",
        ),
        // tally's own rules.
        (
            json!({"date_range": "realtime", "include": {"comparisons": {"mode": "previous_period"}}}),
            "#/include/comparisons: Comparisons are not available for the realtime date range.",
        ),
        (
            json!({"date_range": "realtime", "date": "2024-01-01"}),
            "#/date: The realtime date range is always the last 30 minutes; date cannot move it.",
        ),
    ];
    for (extra, message) in cases {
        assert_eq!(fails(extra.clone()), message, "{extra}");
    }
}

#[test]
fn limits_the_body() {
    let mut deep = json!(1);
    for _ in 0..MAX_BODY_DEPTH {
        deep = json!([deep]);
    }
    // 32 levels of arrays under the object: the object is the 33rd.
    assert_eq!(
        fails(json!({ "pagination": deep })),
        "#: The request is nested too deeply: at most 32 levels"
    );
    let mut fine = json!(1);
    for _ in 0..MAX_BODY_DEPTH - 1 {
        fine = json!([fine]);
    }
    assert_eq!(
        fails(json!({ "pagination": fine })),
        "#/pagination: Type mismatch. Expected Object but got Array."
    );
    let many: Vec<Value> = (0..MAX_BODY_VALUES).map(Value::from).collect();
    assert_eq!(
        fails(json!({ "dimensions": many })),
        "#: The request is too large: at most 20000 values"
    );
    assert_eq!(
        parse(&json!([1])).unwrap_err().message,
        "#: Type mismatch. Expected Object but got Array."
    );
}

#[test]
fn resolves_with_the_requests_date() {
    let today = d("2024-06-15");
    let q = ok(json!({"date_range": "7d"}));
    assert_eq!(
        q.resolve(today, None).unwrap(),
        (d("2024-06-08"), d("2024-06-14"))
    );
    let q = ok(json!({"date_range": "month", "date": "2021-05-05"}));
    assert_eq!(
        q.resolve(today, None).unwrap(),
        (d("2021-05-01"), d("2021-05-31"))
    );
    // Comparisons cut the period at the request's date, not at the real today.
    let q = ok(json!({"date_range": "month", "date": "2021-05-05",
                      "include": {"comparisons": {"mode": "previous_period"}}}));
    let resolved = q.resolve(today, None).unwrap();
    assert_eq!(
        q.comparison_period(resolved, today),
        Some((d("2021-04-26"), d("2021-04-30")))
    );
    assert_eq!(ok(json!({})).comparison_period(resolved, today), None);
}

#[test]
fn time_grain_of_the_query() {
    let days = (d("2024-01-01"), d("2024-01-31"));
    let cases = [
        (json!({"dimensions": ["time"]}), Some(TimeGrain::Day)),
        (
            json!({"dimensions": ["visit:source", "time:month"]}),
            Some(TimeGrain::Month),
        ),
        (json!({"dimensions": ["visit:source"]}), None),
        (
            json!({"dimensions": ["time"], "date_range": "realtime"}),
            Some(TimeGrain::Hour),
        ),
    ];
    for (extra, grain) in cases {
        assert_eq!(ok(extra.clone()).time_grain(days), grain, "{extra}");
    }
    let q = ok(json!({"dimensions": ["time"]}));
    assert_eq!(
        q.time_grain((d("2024-01-01"), d("2024-01-02"))),
        Some(TimeGrain::Hour)
    );
    assert_eq!(
        q.time_grain((d("2024-01-01"), d("2024-12-31"))),
        Some(TimeGrain::Week)
    );
    assert_eq!(
        q.time_grain((d("2020-01-01"), d("2024-12-31"))),
        Some(TimeGrain::Month)
    );
}

#[test]
fn echo_is_the_normalised_request() {
    let q = ok(json!({
        "site_id": 3,
        "metrics": ["visitors", "bounce_rate"],
        "date_range": "month",
        "dimensions": ["time", "visit:country"],
        "filters": [
            ["is", "visit:country", ["DE"]],
            ["or", [["contains", "event:page", ["/Blog"], {"case_sensitive": false}],
                    ["not", ["matches", "visit:source", ["^Goo"]]]]]
        ],
        "include": {"time_labels": true, "total_rows": false,
                    "comparisons": {"mode": "custom", "date_range": ["2023-03-01", "2023-03-31"]}},
        "pagination": {"limit": 50}
    }));
    let echo = q.echo(
        (d("2024-03-01"), d("2024-03-31")),
        chrono_tz::Europe::Berlin,
    );
    assert_eq!(
        echo,
        json!({
            "site_id": "3",
            "metrics": ["visitors", "bounce_rate"],
            // Berlin moves to summer time on 31 March 2024.
            "date_range": ["2024-03-01T00:00:00+01:00", "2024-03-31T23:59:59+02:00"],
            "filters": [
                ["is", "visit:country", ["DE"]],
                ["or", [["contains", "event:page", ["/Blog"], {"case_sensitive": false}],
                        ["not", ["matches", "visit:source", ["^Goo"]]]]]
            ],
            "dimensions": ["time:day", "visit:country"],
            "order_by": [["time:day", "asc"], ["visitors", "desc"]],
            "include": {"time_labels": true,
                        "comparisons": {"mode": "custom", "date_range": ["2023-03-01", "2023-03-31"]}},
            "pagination": {"limit": 50, "offset": 0}
        })
    );
}

#[test]
fn echo_in_utc_and_of_a_window() {
    let q = ok(
        json!({"filters": [["and", [["is", "visit:browser", ["Firefox"]]]]],
                      "include": {"imports": true, "total_rows": true,
                                  "comparisons": {"mode": "previous_period", "match_day_of_week": true}}}),
    );
    let echo = q.echo((d("2021-04-28"), d("2021-05-04")), chrono_tz::UTC);
    assert_eq!(
        echo["date_range"],
        json!(["2021-04-28T00:00:00Z", "2021-05-04T23:59:59Z"])
    );
    assert_eq!(echo["site_id"], json!("example.org"));
    // A single `and` at the top is the top-level list itself.
    assert_eq!(
        echo["filters"],
        json!([["is", "visit:browser", ["Firefox"]]])
    );
    assert_eq!(
        echo["include"],
        json!({"imports": true, "total_rows": true,
               "comparisons": {"mode": "previous_period", "match_day_of_week": true}})
    );
    assert_eq!(echo["order_by"], json!([["visitors", "desc"]]));

    let q = ok(json!({"date_range": "realtime", "dimensions": ["time"]}));
    let (from, to) = date_range::realtime_window(1_717_000_000);
    let echo = q.echo_window(from, to, chrono_tz::America::New_York);
    assert_eq!(
        echo["date_range"],
        json!(["2024-05-29T11:56:40-04:00", "2024-05-29T12:26:40-04:00"])
    );
    assert_eq!(echo["dimensions"], json!(["time:hour"]));
}

#[test]
fn echo_on_a_day_without_midnight() {
    // America/Havana skipped from 00:00 to 01:00 on 2024-03-10: that day began at 01:00.
    let q = ok(json!({}));
    let echo = q.echo(
        (d("2024-03-10"), d("2024-03-10")),
        chrono_tz::America::Havana,
    );
    assert_eq!(
        echo["date_range"],
        json!(["2024-03-10T01:00:00-04:00", "2024-03-10T23:59:59-04:00"])
    );
}

#[test]
fn errors_become_400s() {
    let e: crate::query::QueryError = parse(&json!({})).unwrap_err().into();
    assert_eq!(e.status, 400);
    assert_eq!(e.message, "#: Required property site_id was not present.");
    assert_eq!(e.message, format!("{}", parse(&json!({})).unwrap_err()));
}

#[test]
fn show_quotes_values_briefly() {
    assert_eq!(
        show(&json!(["is", {"a": [1, 2.5, null, true]}])),
        "[\"is\", {\"a\": [1, 2.5, null, true]}]"
    );
    let long = "é".repeat(300);
    let shown = show(&json!(long));
    assert_eq!(shown.chars().count(), SHOW_CHARS + 1);
    assert!(shown.ends_with('…'));
    let mut deep = json!(1);
    for _ in 0..20 {
        deep = json!([deep]);
    }
    assert_eq!(show(&deep), "[[[[[[[[[…]]]]]]]]]");
}

#[test]
fn a_custom_property_is_one_dimension_with_its_key() {
    let q = ok(json!({
        "dimensions": ["event:props:author"],
        "filters": [["is", "event:props:author", ["alice", "(none)"]]],
        "order_by": [["event:props:author", "asc"]],
    }));
    assert_eq!(q.dimensions, [Dimension::Prop]);
    assert_eq!(q.prop_key.as_deref(), Some("author"));
    let Some(Filter::Condition(c)) = &q.filters else {
        panic!("{:?}", q.filters)
    };
    assert_eq!(
        (c.dimension, c.prop_key.as_deref()),
        (Dimension::Prop, Some("author"))
    );
    let d = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let echo = q.echo((d, d), chrono_tz::UTC);
    assert_eq!(echo["dimensions"], json!(["event:props:author"]));
    assert_eq!(
        echo["filters"],
        json!([["is", "event:props:author", ["alice", "(none)"]]])
    );
    assert_eq!(echo["order_by"], json!([["event:props:author", "asc"]]));
    // Named by a filter alone, and refused when too long or when a second key comes along.
    let q = ok(json!({"filters": [["contains", "event:props:plan", ["pro"]]]}));
    assert_eq!(q.prop_key.as_deref(), Some("plan"));
    assert!(Dimension::from_name(&format!("event:props:{}", "k".repeat(301))).is_none());
    assert!(Dimension::from_name("event:props").is_none());
}
