//! The spine end to end: real `tally serve` processes over HTTP, a real ClickHouse.

mod common;

use common::{Collector, http, query};

const TRUSTED_LOOPBACK: &str = r#"
[privacy]
trusted_proxies = ["127.0.0.0/8", "::1/128"]
"#;

fn hit(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("idsite", "1"),
        ("rec", "1"),
        ("url", "https://example.org/page"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.retain(|(name, _)| name != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

#[tokio::test]
async fn get_and_post_hits_are_stored_with_truncated_ips() {
    let c = Collector::start(TRUSTED_LOOPBACK);
    let r = http()
        .get(c.url("/matomo.php"))
        .query(&hit(&[
            ("action_name", "Home"),
            ("urlref", "https://search.example.net/?q=x"),
            ("res", "1920x1080"),
            ("h", "13"),
            ("m", "4"),
            ("s", "5"),
            ("pv_id", "abc123"),
            ("_idvc", "3"),
        ]))
        .header("X-Forwarded-For", "203.0.113.77")
        .header("User-Agent", "Mozilla/5.0 test")
        .header("Accept-Language", "de-DE,de;q=0.9")
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    let form = serde_urlencoded(&hit(&[
        ("action_name", "Posted"),
        ("url", "https://www.example.org/post"),
    ]));
    let r = http()
        .post(c.url("/piwik.php"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Forwarded-For", "2001:db8:85a3:1234:5678::9")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    assert_eq!(c.wait_for("1", 2).await, 2);
    let rows = query(&format!(
        "SELECT title, url, ip, kind, resolution, local_time, pv_id, visit_count, lang, referrer \
         FROM {}.events ORDER BY title",
        c.db
    ))
    .await;
    assert_eq!(
        rows,
        "Home\thttps://example.org/page\t203.0.0.0\tpageview\t1920x1080\t13:04:05\tabc123\t3\tde-de\thttps://search.example.net/?q=x\n\
         Posted\thttps://www.example.org/post\t2001:db8:85a3::\tpageview\t\t\t\t0\t\t"
    );
}

/// Matomo's default answer to a tracked (or quietly dropped) hit: the 1×1 GIF.
async fn assert_gif(r: reqwest::Response) {
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(&r.bytes().await.unwrap()[..6], b"GIF89a");
}

/// Form encoding for a POST body.
fn serde_urlencoded(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn forwarded_for_only_believed_from_trusted_proxies() {
    let untrusted = Collector::start("");
    let r = http()
        .get(untrusted.url("/matomo.php"))
        .query(&hit(&[("action_name", "spoof")]))
        .header("X-Forwarded-For", "203.0.113.77")
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    assert_eq!(untrusted.wait_for("title = 'spoof'", 1).await, 1);
    assert_eq!(
        query(&format!(
            "SELECT ip FROM {}.events WHERE title = 'spoof'",
            untrusted.db
        ))
        .await,
        "127.0.0.0"
    );

    let trusted = Collector::start(TRUSTED_LOOPBACK);
    let r = http()
        .get(trusted.url("/matomo.php"))
        .query(&hit(&[("action_name", "proxied")]))
        // The client-written left entry is not believed; the proxy-appended right one is.
        .header("X-Forwarded-For", "192.0.2.1, 198.51.100.23")
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    assert_eq!(trusted.wait_for("title = 'proxied'", 1).await, 1);
    assert_eq!(
        query(&format!(
            "SELECT ip FROM {}.events WHERE title = 'proxied'",
            trusted.db
        ))
        .await,
        "198.51.0.0"
    );
}

/// A refused or excluded hit gets exactly the answer a stored one gets: the GIF by default,
/// `204` for `send_image=0` (in the query or a POST body), Matomo's JSON summary for bulk.
#[tokio::test]
async fn refusals_and_exclusions_answer_as_stored_hits_and_store_nothing() {
    let c = Collector::start(
        r#"
[privacy]
trusted_proxies = ["127.0.0.0/8"]
exclude_ips = ["203.0.113.0/24"]
"#,
    );
    let cases: [(&str, &str, &str); 4] = [
        ("optout", "Cookie", "other=1; tally_ignore=1"),
        ("dnt", "DNT", "1"),
        ("gpc", "Sec-GPC", "1"),
        ("excluded", "X-Forwarded-For", "203.0.113.77"),
    ];
    for (tag, header, value) in cases {
        for method in ["GET", "POST"] {
            for send_image in [None, Some("0")] {
                let mut params = hit(&[("action_name", tag)]);
                if let Some(v) = send_image {
                    params.push(("send_image".into(), v.into()));
                }
                let req = if method == "GET" {
                    http().get(c.url("/matomo.php")).query(&params)
                } else {
                    http()
                        .post(c.url("/matomo.php"))
                        .body(serde_urlencoded(&params))
                };
                let r = req.header(header, value).send().await.unwrap();
                match send_image {
                    None => assert_gif(r).await,
                    Some(_) => assert_eq!(r.status(), 204, "{tag} {method}"),
                }
            }
        }
        // Bulk: the summary a stored request would get, or 204 when the body asks for it.
        let r = http()
            .post(c.url("/matomo.php"))
            .header(header, value)
            .body(bulk_body(&[tag; 3]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{tag} bulk");
        let summary: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            summary,
            serde_json::json!({"status": "success", "tracked": 3, "invalid": 0})
        );
        let mut quiet: serde_json::Value = serde_json::from_str(&bulk_body(&[tag; 2])).unwrap();
        quiet["send_image"] = 0.into();
        let r = http()
            .post(c.url("/matomo.php"))
            .header(header, value)
            .body(quiet.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{tag} quiet bulk");
    }
    c.barrier("after-refusals").await;
    assert_eq!(c.count("1").await, 1, "only the barrier hit may be stored");
    let metrics = c.text("/metrics").await;
    for reason in ["optout_cookie", "dnt", "gpc", "excluded_ip"] {
        assert!(
            metrics.contains(&format!("tally_hits_dropped_total{{reason=\"{reason}\"}}")),
            "{reason} missing from metrics:\n{metrics}"
        );
    }
}

fn bulk_body(titles: &[&str]) -> String {
    let requests: Vec<String> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| {
            format!("?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2Fp{i}&action_name={t}")
        })
        .collect();
    serde_json::json!({ "requests": requests }).to_string()
}

#[tokio::test]
async fn invalid_requests_get_4xx_and_store_nothing() {
    let c = Collector::start(
        r#"
[limits]
max_body_bytes = 8192
max_bulk_hits = 50
"#,
    );
    let get = |params: Vec<(String, String)>| {
        let url = c.url("/matomo.php");
        async move { http().get(url).query(&params).send().await.unwrap() }
    };
    let expect = |r: reqwest::Response, status: u16, needle: &'static str| async move {
        assert_eq!(r.status(), status);
        let body: serde_json::Value = r.json().await.unwrap();
        let msg = body["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
        assert!(!msg.contains('\n'));
    };
    expect(get(hit(&[("idsite", "99")])).await, 400, "unknown site 99").await;
    expect(
        get(hit(&[("url", "https://evil.example.net/")])).await,
        400,
        "evil.example.net",
    )
    .await;
    expect(
        get(hit(&[("url", "https://notexample.org/")])).await,
        400,
        "not a domain",
    )
    .await;
    expect(get(hit(&[("rec", "0")])).await, 400, "rec").await;
    expect(get(hit(&[("idsite", "")])).await, 400, "idsite").await;
    expect(get(hit(&[("idsite", "one")])).await, 400, "idsite").await;
    expect(get(hit(&[("url", "")])).await, 400, "url").await;

    let r = http()
        .get(format!(
            "{}&x={}",
            c.url("/matomo.php?idsite=1&rec=1"),
            "a".repeat(20_000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);

    let post = |body: Vec<u8>| {
        let url = c.url("/matomo.php");
        async move { http().post(url).body(body).send().await.unwrap() }
    };
    expect(post(vec![b'a'; 10_000]).await, 413, "larger than 8192").await;
    expect(
        post(b"{\"requests\": [\"?idsite=1\"".to_vec()).await,
        400,
        "malformed bulk",
    )
    .await;
    expect(
        post(b"{\"requests\": \"nope\"}".to_vec()).await,
        400,
        "malformed bulk",
    )
    .await;
    expect(
        post(bulk_body(&["t"; 51]).into_bytes()).await,
        413,
        "more than 50",
    )
    .await;
    // A bulk token that does not match is refused, not silently downgraded.
    let mut bad_token: serde_json::Value = serde_json::from_str(&bulk_body(&["t"])).unwrap();
    bad_token["token_auth"] = "wrong-token-wrong-token".into();
    expect(
        post(bad_token.to_string().into_bytes()).await,
        403,
        "token_auth",
    )
    .await;

    c.barrier("after-invalid").await;
    assert_eq!(c.count("1").await, 1, "only the barrier hit may be stored");
}

#[tokio::test]
async fn bulk_of_100_hits_stores_100_rows() {
    let c = Collector::start("");
    let titles: Vec<String> = (0..100).map(|i| format!("bulk{i}")).collect();
    let refs: Vec<&str> = titles.iter().map(String::as_str).collect();
    let r = http()
        .post(c.url("/matomo.php"))
        .header("Content-Type", "application/json")
        .body(bulk_body(&refs))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "success", "tracked": 100, "invalid": 0})
    );
    assert_eq!(c.wait_for("title LIKE 'bulk%'", 100).await, 100);
    assert_eq!(
        query(&format!(
            "SELECT uniqExact(title), uniqExact(url) FROM {}.events",
            c.db
        ))
        .await,
        "100\t100"
    );
}

#[tokio::test]
async fn event_kinds_and_fields() {
    let c = Collector::start("");
    let hits: Vec<Vec<(String, String)>> = vec![
        hit(&[
            ("action_name", "k-event"),
            ("e_c", "Video"),
            ("e_a", "Play"),
            ("e_n", "Intro"),
            ("e_v", "4.5"),
        ]),
        hit(&[
            ("action_name", "k-outlink"),
            ("link", "https://other.example.net/x"),
        ]),
        hit(&[
            ("action_name", "k-download"),
            ("download", "https://example.org/report.pdf"),
        ]),
        hit(&[
            ("action_name", "k-search"),
            ("search", "privacy"),
            ("search_cat", "docs"),
            ("search_count", "7"),
        ]),
        hit(&[
            ("action_name", "k-ping"),
            ("ping", "1"),
            ("pv_id", "zzz999"),
        ]),
    ];
    for h in &hits {
        let r = http()
            .get(c.url("/matomo.php"))
            .query(h)
            .send()
            .await
            .unwrap();
        assert_gif(r).await;
    }
    assert_eq!(c.wait_for("title LIKE 'k-%'", 5).await, 5);
    let rows = query(&format!(
        "SELECT title, kind, target_url, event_category, event_action, event_name, event_value, \
         search_keyword, search_category, search_count, pv_id FROM {}.events ORDER BY title",
        c.db
    ))
    .await;
    assert_eq!(
        rows,
        "k-download\tdownload\thttps://example.org/report.pdf\t\t\t\t\\N\t\t\t\\N\t\n\
         k-event\tevent\t\tVideo\tPlay\tIntro\t4.5\t\t\t\\N\t\n\
         k-outlink\toutlink\thttps://other.example.net/x\t\t\t\t\\N\t\t\t\\N\t\n\
         k-ping\tping\t\t\t\t\t\\N\t\t\t\\N\tzzz999\n\
         k-search\tsearch\t\t\t\t\t\\N\tprivacy\tdocs\t7\t"
    );
}

#[tokio::test]
async fn image_cors_and_preflight() {
    let c = Collector::start("");
    let r = http()
        .get(c.url("/matomo.php"))
        .query(&hit(&[("send_image", "1")]))
        .header("Origin", "https://www.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://www.example.org"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    assert_eq!(&r.bytes().await.unwrap()[..6], b"GIF89a");

    let r = http()
        .get(c.url("/matomo.php"))
        .query(&hit(&[("send_image", "0")]))
        .header("Origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let r = http()
        .request(reqwest::Method::OPTIONS, c.url("/matomo.php"))
        .header("Origin", "https://example.org")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://example.org"
    );
    assert!(
        r.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

const TOKEN: &str = "secret-token-0123456789";

#[tokio::test]
async fn privileged_parameters_need_the_token() {
    let c = Collector::start(&format!("token_auth = \"{TOKEN}\"\n"));
    // Two days back: beyond what a sender may back-date without the token.
    let old = (tally::time::now_unix() - 2 * 86_400).to_string();
    // Without a token, cip and country are ignored: the socket address counts.
    let r = http()
        .get(c.url("/matomo.php"))
        .query(&hit(&[
            ("action_name", "no-token"),
            ("cip", "203.0.113.77"),
            ("country", "fr"),
        ]))
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    // With it, they are used, and the given address is truncated like any other.
    let r = http()
        .get(c.url("/matomo.php"))
        .query(&hit(&[
            ("action_name", "with-token"),
            ("cip", "203.0.113.77"),
            ("cdt", &old),
            ("country", "fr"),
            ("token_auth", TOKEN),
        ]))
        .send()
        .await
        .unwrap();
    assert_gif(r).await;
    assert_eq!(c.wait_for("1", 2).await, 2);
    let rows = query(&format!(
        "SELECT title, ip, country, toUInt32(ts) = {old} FROM {}.events ORDER BY title",
        c.db
    ))
    .await;
    assert_eq!(
        rows,
        "no-token\t127.0.0.0\t\t0\nwith-token\t203.0.0.0\tFR\t1"
    );
}

#[tokio::test]
async fn shutdown_flushes_the_queue() {
    // A flush interval far beyond the test: only the shutdown can write these events.
    let mut c = Collector::start_raw(&format!(
        "{}\n[sink]\nflush_ms = 600000\nbatch_size = 100000\n",
        common::SITE
    ));
    for i in 0..20 {
        let r = http()
            .get(c.url("/matomo.php"))
            .query(&hit(&[("action_name", &format!("late{i}"))]))
            .send()
            .await
            .unwrap();
        assert_gif(r).await;
    }
    assert_eq!(c.count("1").await, 0);
    assert!(c.stop(), "tally should exit cleanly on SIGTERM");
    assert_eq!(c.count("title LIKE 'late%'").await, 20);
}
