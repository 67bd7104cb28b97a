//! The Stats API's door, over HTTP against a real `tally serve` and ClickHouse: keys made and
//! revoked with the real `tally key` command on the collector's own configuration, Plausible's
//! 401s, the site check, the rate limit, the body limit, the OpenAPI description, `base_path`.
//!
//! The query engine is being written elsewhere; today it answers every query 400 "not built
//! yet". The checks that a request got through the door accept that answer or a real one
//! (200 with `results`), so they hold now and after the engine lands.

mod common;

use std::time::{Duration, Instant};

use common::{Collector, OTHER_SITE, http};
use serde_json::{Value, json};
use tally::api::{INVALID_KEY_OR_SITE, MISSING_KEY, MISSING_SITE};

fn collector(api: &str) -> Collector {
    Collector::start(&format!("[api]\n{api}\n{OTHER_SITE}"))
}

/// `tally key <args>` on the collector's configuration: stdout, or stderr when it fails.
fn tally_key(c: &Collector, args: &[&str]) -> Result<String, String> {
    c.run_tally(&[&["key"], args].concat(), "")
}

/// Creates a key for `sites` with the real command; returns the key (its last line).
fn create_key(c: &Collector, sites: &[u32]) -> String {
    let mut args = vec!["create", "--name", "test key"];
    let ids: Vec<String> = sites.iter().map(u32::to_string).collect();
    for id in &ids {
        args.extend(["--site", id]);
    }
    let out = tally_key(c, &args).unwrap_or_else(|e| panic!("tally key create: {e}"));
    let key = out.lines().last().unwrap().to_string();
    assert!(key.starts_with("tally_") && key.len() == 66, "{out}");
    assert_eq!(
        out.matches(&key).count(),
        1,
        "the key is printed once: {out}"
    );
    key
}

fn id_of(key: &str) -> &str {
    tally::api::keys::id_of(key).unwrap()
}

/// A query the engine can answer (once it is built).
fn visitors(site: Value) -> Value {
    json!({"site_id": site, "metrics": ["visitors"], "date_range": "7d"})
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn error(&self) -> String {
        let ct = self.headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with("application/json"), "{ct}");
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {}", self.text))
            .to_string()
    }

    /// The request went through the door to the engine: today its 400 "not built yet", later a
    /// real answer.
    fn reached_engine(&self) -> bool {
        let v = self.json();
        (self.status == 200 && v["results"].is_array())
            || (self.status == 400 && v["error"] == "not built yet")
    }
}

async fn post_to(c: &Collector, path: &str, key: Option<&str>, body: &Value) -> Answer {
    let mut req = http()
        .post(c.url(path))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        text: r.text().await.unwrap(),
    }
}

async fn post(c: &Collector, key: Option<&str>, body: &Value) -> Answer {
    post_to(c, "/api/v2/query", key, body).await
}

async fn metric(c: &Collector, status: u16) -> u64 {
    let text = http()
        .get(c.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("tally_api_requests_total{{status=\"{status}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse().unwrap())
}

/// Without a key, with something that is not a key, with a well-formed key nobody made: 401
/// in Plausible's words, with `WWW-Authenticate: Bearer`.
#[tokio::test]
async fn no_key_or_a_wrong_key_is_401() {
    let c = collector("");
    let body = visitors(json!("example.org"));
    let a = post(&c, None, &body).await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(a.error(), MISSING_KEY);
    assert!(a.error().starts_with("Missing API key."));
    assert_eq!(a.headers["www-authenticate"], "Bearer");
    // Another scheme is no key either.
    let r = http()
        .post(c.url("/api/v2/query"))
        .basic_auth("user", Some("pass"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let made_up = format!("tally_0123456789abcdef_{}", "A".repeat(43));
    for garbage in ["garbage", "tally_", &made_up] {
        let a = post(&c, Some(garbage), &body).await;
        assert_eq!(a.status, 401, "{garbage}: {}", a.text);
        assert_eq!(a.error(), INVALID_KEY_OR_SITE);
        assert!(a.error().starts_with("Invalid API key or site ID."));
    }
    assert_eq!(metric(&c, 401).await, 5);
}

/// A key made with `tally key create` while the collector runs works at once (an unknown id
/// makes the collector read the keys again), reaches the engine for its site, and is refused
/// for another site, an unknown one, or none.
#[tokio::test]
async fn a_created_key_reaches_the_engine_for_its_sites_only() {
    // A refresh interval of an hour: only the read for an unknown id can find the new key.
    let c = collector("key_refresh_secs = 3600");
    let key = create_key(&c, &[1]);
    for site in [json!("example.org"), json!(1), json!("1")] {
        let a = post(&c, Some(&key), &visitors(site.clone())).await;
        assert!(a.status != 401 && a.status != 403, "{site}: {}", a.text);
        assert!(a.reached_engine(), "{site}: {} {}", a.status, a.text);
    }
    // An invalid query gets the engine's 400, not the door's: today "not built yet", later a
    // message naming the bad metric.
    let bad = json!({"site_id": "example.org", "metrics": ["nope"], "date_range": "7d"});
    let a = post(&c, Some(&key), &bad).await;
    assert_eq!(a.status, 400, "{}", a.text);
    let e = a.error();
    assert!(
        e != INVALID_KEY_OR_SITE && e != MISSING_KEY && e != MISSING_SITE,
        "{e}"
    );

    // Site 2 exists but is not the key's; site 99 does not exist: Plausible answers both alike.
    for site in [
        json!("other.net"),
        json!(2),
        json!("2"),
        json!(99),
        json!("nope.org"),
    ] {
        let a = post(&c, Some(&key), &visitors(site.clone())).await;
        assert_eq!(a.status, 401, "{site}: {}", a.text);
        assert_eq!(a.error(), INVALID_KEY_OR_SITE);
    }
    let a = post(
        &c,
        Some(&key),
        &json!({"metrics": ["visitors"], "date_range": "7d"}),
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.error(), MISSING_SITE);

    // A key for both sites sees both.
    let both = create_key(&c, &[1, 2]);
    for site in [json!("example.org"), json!("other.net")] {
        let a = post(&c, Some(&both), &visitors(site.clone())).await;
        assert!(a.reached_engine(), "{site}: {} {}", a.status, a.text);
    }

    // CSV is asked for by parameter or Accept; the errors stay JSON.
    let r = http()
        .post(c.url("/api/v2/query?format=csv"))
        .bearer_auth(&key)
        .json(&visitors(json!("example.org")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    let text = r.text().await.unwrap();
    if status == 200 {
        assert!(ct.starts_with("text/csv"), "{ct}");
        assert_eq!(text.lines().next(), Some("visitors"));
    } else {
        assert_eq!(
            (status, text.as_str()),
            (400, r#"{"error":"not built yet"}"#)
        );
    }
    let a = post_to(
        &c,
        "/api/v2/query?format=xml",
        Some(&key),
        &visitors(json!(1)),
    )
    .await;
    assert_eq!(a.status, 400);
    assert!(a.error().contains("format"), "{}", a.text);

    // `tally key create` refuses a site that is not configured.
    let e = tally_key(&c, &["create", "--site", "99"]).unwrap_err();
    assert!(e.contains("site 99 is not configured"), "{e}");
}

/// `tally key revoke` on the database reaches the running collector within its refresh
/// interval (2 s here); `tally key list` shows the keys and their state, never a key.
#[tokio::test]
async fn a_revoked_key_is_refused_within_the_refresh_interval() {
    let c = collector("key_refresh_secs = 2");
    let key = create_key(&c, &[1]);
    let other = create_key(&c, &[2]);
    let body = visitors(json!("example.org"));
    assert!(post(&c, Some(&key), &body).await.reached_engine());

    let list = tally_key(&c, &["list"]).unwrap();
    let line = list
        .lines()
        .find(|l| l.starts_with(id_of(&key)))
        .expect(&list);
    assert!(
        line.contains("test key") && line.contains("sites 1") && line.ends_with("active"),
        "{line}"
    );
    assert!(
        !list.contains(&key[23..]) && !list.contains(&other[23..]),
        "{list}"
    );

    let out = tally_key(&c, &["revoke", id_of(&key)]).unwrap();
    assert!(out.contains("revoked API key"), "{out}");
    let revoked_at = Instant::now();
    let refused_after = loop {
        let a = post(&c, Some(&key), &body).await;
        if a.status == 401 {
            assert_eq!(a.error(), INVALID_KEY_OR_SITE);
            break revoked_at.elapsed();
        }
        assert!(a.reached_engine(), "{} {}", a.status, a.text);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "still accepted after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The interval plus the time one refresh and one request take.
    assert!(
        refused_after < Duration::from_millis(3500),
        "{refused_after:?}"
    );
    // And it stays refused; the other key is untouched.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(post(&c, Some(&key), &body).await.status, 401);
    assert!(
        post(&c, Some(&other), &visitors(json!(2)))
            .await
            .reached_engine()
    );

    let list = tally_key(&c, &["list"]).unwrap();
    let line = list
        .lines()
        .find(|l| l.starts_with(id_of(&key)))
        .expect(&list);
    assert!(line.contains("revoked 2"), "{line}");
    // Revoking again says so; an unknown id is an error. The whole key is accepted too.
    let again = tally_key(&c, &["revoke", &key]).unwrap();
    assert!(again.starts_with("already revoked"), "{again}");
    let e = tally_key(&c, &["revoke", "0000000000000000"]).unwrap_err();
    assert!(e.contains("no API key"), "{e}");
}

/// `[api] burst` requests at once, then 429 with `Retry-After`, per key; here under a
/// `base_path`, where the API lives as everything else does.
#[tokio::test]
async fn the_rate_limit_answers_429_with_retry_after() {
    let c = Collector::start(&format!(
        "base_path = \"/analytics\"\n[api]\nrequests_per_hour = 60\nburst = 3\n{OTHER_SITE}"
    ));
    let key = create_key(&c, &[1]);
    let body = visitors(json!("example.org"));
    let path = "/analytics/api/v2/query";
    for i in 0..3 {
        let a = post_to(&c, path, Some(&key), &body).await;
        assert!(a.reached_engine(), "request {i}: {} {}", a.status, a.text);
    }
    let a = post_to(&c, path, Some(&key), &body).await;
    assert_eq!(a.status, 429, "{}", a.text);
    assert!(
        a.error().starts_with("Too many API requests."),
        "{}",
        a.text
    );
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // One request a minute: the next one in up to 60 s.
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(metric(&c, 429).await, 1);
    // Another key has its own allowance.
    let other = create_key(&c, &[1]);
    assert!(
        post_to(&c, path, Some(&other), &body)
            .await
            .reached_engine()
    );
    // Not at the root when a base path is set.
    let r = http().post(c.url("/api/v2/query")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    // The description names the prefix as its server.
    let doc: Value = http()
        .get(c.url("/analytics/api/v2/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], "/analytics");
}

/// A body over `[api] max_body_bytes` is 413, a body that is not JSON 415 or 400, another
/// method 405 with `Allow`.
#[tokio::test]
async fn bodies_methods_and_types() {
    let c = collector("max_body_bytes = 4096");
    let key = create_key(&c, &[1]);
    let mut big = visitors(json!("example.org"));
    big["padding"] = json!("x".repeat(5000));
    let a = post(&c, Some(&key), &big).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert_eq!(a.error(), "the query is larger than 4096 bytes");
    // Just under the limit passes the door (whatever the engine then makes of the padding).
    let mut fits = visitors(json!("example.org"));
    fits["padding"] = json!("x".repeat(3900));
    let a = post(&c, Some(&key), &fits).await;
    assert!(
        a.status != 413 && a.status != 401,
        "{} {}",
        a.status,
        a.text
    );

    let r = http()
        .post(c.url("/api/v2/query"))
        .bearer_auth(&key)
        .header("content-type", "text/plain")
        .body(visitors(json!(1)).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = http()
        .post(c.url("/api/v2/query"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );

    let r = http()
        .get(c.url("/api/v2/query"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(metric(&c, 413).await, 1);
    assert_eq!(metric(&c, 415).await, 1);
    assert_eq!(metric(&c, 405).await, 1);
}

/// `GET /api/v2/openapi.json` serves the compiled-in description, which parses as OpenAPI 3.1.
#[tokio::test]
async fn openapi_json_is_served() {
    let c = collector("");
    let r = http()
        .get(c.url("/api/v2/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v2/query"]["post"].is_object());
    assert_eq!(doc["servers"][0]["url"], "/");
    let r = http()
        .post(c.url("/api/v2/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
}
