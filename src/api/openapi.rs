//! `GET /api/v2/openapi.json`: the OpenAPI 3.1 description of the Stats API, written by hand in
//! `openapi.json` beside this file and compiled in. Only its `servers` entry is filled in at
//! start, from `public_url` or `base_path`, so that tools reach this collector's endpoint.

use serde_json::{Value, json};

use crate::config::Config;

/// The description as written.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// The description with this collector's URL as its server.
pub fn document(config: &Config) -> String {
    let mut doc: Value = match serde_json::from_str(DOCUMENT) {
        Ok(v) => v,
        // A unit test parses it; this only keeps a broken build from panicking.
        Err(_) => return DOCUMENT.to_string(),
    };
    let server = match (&config.public_url, &config.base_path) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(base)) => base.clone(),
        (None, None) => "/".to_string(),
    };
    doc["servers"] = json!([{ "url": server }]);
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// What the Stats API accepts (tally's issue for the read side). When the request parser
    /// lands (`src/query/request.rs`, `docs/stats-api.md`) this list is to be checked against
    /// it.
    const METRICS: &[&str] = &[
        "visitors",
        "visits",
        "pageviews",
        "views_per_visit",
        "bounce_rate",
        "visit_duration",
        "events",
        "percentage",
        "conversion_rate",
    ];

    const DIMENSIONS: &[&str] = &[
        "event:page",
        "event:name",
        "event:goal",
        "event:hostname",
        "visit:entry_page",
        "visit:exit_page",
        "visit:source",
        "visit:referrer",
        "visit:channel",
        "visit:utm_source",
        "visit:utm_medium",
        "visit:utm_campaign",
        "visit:utm_term",
        "visit:utm_content",
        "visit:country",
        "visit:region",
        "visit:city",
        "visit:country_name",
        "visit:region_name",
        "visit:city_name",
        "visit:device",
        "visit:browser",
        "visit:browser_version",
        "visit:os",
        "visit:os_version",
        "visit:screen",
        "time",
        "time:hour",
        "time:day",
        "time:week",
        "time:month",
        "event:title",
        "event:category",
        "event:action",
        "event:outlink",
        "event:download",
        "event:search",
        "event:search_category",
        "event:page_load",
        "visit:visitor_type",
        "visit:language",
        "visit:referrer_keyword",
    ];

    const DATE_RANGES: &[&str] = &[
        "day", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all", "realtime",
    ];

    fn parsed() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    fn strings(v: &Value) -> BTreeSet<String> {
        v.as_array()
            .expect("an array")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    }

    fn set(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn it_is_openapi_3_1_with_the_endpoint_and_bearer_auth() {
        let doc = parsed();
        assert_eq!(doc["openapi"], "3.1.0");
        let post = &doc["paths"]["/api/v2/query"]["post"];
        assert!(post.is_object());
        assert_eq!(
            post["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/QueryRequest"
        );
        assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
        let auth = &doc["components"]["securitySchemes"]["bearerAuth"];
        assert_eq!(auth["type"], "http");
        assert_eq!(auth["scheme"], "bearer");
        let statuses: BTreeSet<String> = post["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            statuses,
            set(&[
                "200", "400", "401", "404", "405", "408", "413", "415", "429", "503"
            ])
        );
        assert!(post["responses"]["200"]["content"]["text/csv"].is_object());
        assert!(doc["paths"]["/api/v2/openapi.json"]["get"].is_object());
    }

    #[test]
    fn it_names_every_metric_dimension_and_date_range() {
        let doc = parsed();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(strings(&schemas["Metric"]["enum"]), set(METRICS));
        assert_eq!(strings(&schemas["Dimension"]["enum"]), set(DIMENSIONS));
        let props = schemas["PropDimension"]["pattern"].as_str().unwrap();
        assert_eq!(props, "^event:props:.{1,300}$");
        assert_eq!(
            schemas["QueryRequest"]["properties"]["dimensions"]["items"]["oneOf"][1]["$ref"],
            "#/components/schemas/PropDimension"
        );
        assert_eq!(strings(&schemas["DateRangeName"]["enum"]), set(DATE_RANGES));
        assert_eq!(
            strings(&schemas["QueryRequest"]["required"]),
            set(&["site_id", "metrics", "date_range"])
        );
    }

    /// Every `$ref` points at something that exists.
    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, doc: &Value, seen: &mut usize) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("a local reference");
                        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
                        *seen += 1;
                    }
                    m.values().for_each(|x| walk(x, doc, seen));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, doc, seen)),
                _ => {}
            }
        }
        let doc = parsed();
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 20, "{seen}");
    }

    #[test]
    fn the_server_is_this_collector() {
        let mut config = Config::from_table(toml::Table::new()).unwrap();
        let server = |c: &Config| {
            let v: Value = serde_json::from_str(&document(c)).unwrap();
            v["servers"][0]["url"].as_str().unwrap().to_string()
        };
        assert_eq!(server(&config), "/");
        config.base_path = Some("/analytics".into());
        assert_eq!(server(&config), "/analytics");
        config.public_url = Some("https://example.org/analytics/".into());
        assert_eq!(server(&config), "https://example.org/analytics");
    }
}
