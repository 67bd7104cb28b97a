//! What Matomo's trackers send, and what tally makes of it: every request kind with its own
//! fields, tolerance of sloppy fields, bulk semantics, server-side senders, back-dated hits.
//! Real `tally serve` processes over HTTP, a real ClickHouse.

mod common;

use common::{Collector, http, query};
use serde_json::json;

fn hit(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("idsite".into(), "1".into()),
        ("rec".into(), "1".into()),
        ("url".into(), "https://example.org/page".into()),
        ("send_image".into(), "0".into()),
    ];
    for (k, v) in extra {
        p.retain(|(name, _)| name != k);
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// Extra parameters or headers of a case.
type Pairs<'a> = &'a [(&'a str, &'a str)];

async fn send(c: &Collector, params: &[(String, String)]) -> reqwest::Response {
    http()
        .get(c.url("/matomo.php"))
        .query(params)
        .send()
        .await
        .unwrap()
}

async fn rows(c: &Collector, columns: &str, filter: &str) -> String {
    query(&format!(
        "SELECT {columns} FROM {}.events WHERE {filter} ORDER BY title",
        c.db
    ))
    .await
}

#[tokio::test]
async fn every_kind_is_stored_as_matomo_gives_it() {
    let c = Collector::start("");
    let items = r#"[["SKU-1","Mug",["Kitchen","Cups"],9.5,2],["SKU-2","Pen","Office","1.25",1]]"#;
    let cases: Vec<Vec<(String, String)>> = vec![
        hit(&[
            ("action_name", "a-pageview"),
            ("pf_net", "12"),
            ("pf_srv", "30"),
            ("pf_onl", "-5"),
        ]),
        hit(&[
            ("action_name", "b-impression"),
            ("c_n", "Banner"),
            ("c_p", "spring.png"),
            ("c_t", "https://example.org/sale"),
            ("ca", "1"),
        ]),
        hit(&[
            ("action_name", "c-interaction"),
            ("c_n", "Banner"),
            ("c_p", "spring.png"),
            ("c_i", "click"),
            ("ca", "1"),
        ]),
        hit(&[
            ("action_name", "d-goal"),
            ("idgoal", "4"),
            ("revenue", "12.5"),
            ("_rcn", "spring"),
            ("_rck", "mugs"),
            ("_ref", "https://news.example.net/a?gclid=x"),
            (
                "_refts",
                &(tally::time::now_unix() - 3 * 86_400).to_string(),
            ),
        ]),
        hit(&[
            ("action_name", "e-order"),
            ("idgoal", "0"),
            ("ec_id", "ORDER-4711"),
            ("revenue", "21.25"),
            ("ec_st", "20"),
            ("ec_tx", "3.8"),
            ("ec_sh", "4.5"),
            ("ec_dt", "7.05"),
            ("ec_items", items),
        ]),
        hit(&[
            ("action_name", "f-cart"),
            ("idgoal", "0"),
            ("revenue", "9.5"),
            ("ec_items", r#"[["SKU-1","Mug","Kitchen",9.5,1]]"#),
        ]),
        hit(&[
            ("action_name", "g-event"),
            ("e_c", "Video"),
            ("e_a", "Play"),
            ("e_n", "Intro"),
            ("e_v", "3"),
            ("ca", "1"),
            ("search", "ignored"),
        ]),
        hit(&[
            ("action_name", "h-download"),
            ("download", "https://example.org/a.pdf"),
            ("link", "https://x.example.net/"),
        ]),
        hit(&[
            ("action_name", "i-search"),
            ("search", "privacy"),
            ("search_cat", "docs"),
            ("search_count", "4"),
        ]),
        hit(&[("action_name", "j-ping"), ("ping", "1"), ("idgoal", "4")]),
        hit(&[
            ("action_name", "k-dimensions"),
            ("dimension1", "member"),
            ("dimension3", "de"),
        ]),
        // A custom action of a plugin tally does not have is ignored, as in Matomo.
        hit(&[
            ("action_name", "z-custom"),
            ("ca", "1"),
            ("ma_id", "media1"),
        ]),
    ];
    for h in &cases {
        assert_eq!(send(&c, h).await.status(), 204);
    }
    c.barrier("zz-barrier").await;
    assert_eq!(
        rows(&c, "title, kind", "title != 'zz-barrier'").await,
        "a-pageview\tpageview\n\
         b-impression\tcontent_impression\n\
         c-interaction\tcontent_interaction\n\
         d-goal\tgoal\n\
         e-order\tecommerce_order\n\
         f-cart\tcart_update\n\
         g-event\tevent\n\
         h-download\tdownload\n\
         i-search\tsearch\n\
         j-ping\tping\n\
         k-dimensions\tpageview"
    );
    assert_eq!(
        rows(&c, "pf_net, pf_srv, pf_onl", "title = 'a-pageview'").await,
        "12\t30\t\\N"
    );
    assert_eq!(
        rows(
            &c,
            "content_name, content_piece, content_target, content_interaction",
            "kind IN ('content_impression', 'content_interaction')"
        )
        .await,
        "Banner\tspring.png\thttps://example.org/sale\t\nBanner\tspring.png\t\tclick"
    );
    assert_eq!(
        rows(&c, "goal_id, revenue, attribution_campaign, attribution_keyword, attribution_referrer, attribution_days", "kind = 'goal'").await,
        "4\t12.5\tspring\tmugs\thttps://news.example.net/a\t3"
    );
    let order = rows(
        &c,
        "revenue, ec_subtotal, ec_tax, ec_shipping, ec_discount, item_skus, item_names, item_categories, item_prices, item_quantities, order_key != 0",
        "kind = 'ecommerce_order'",
    )
    .await;
    assert_eq!(
        order,
        "21.25\t20\t3.8\t4.5\t7.05\t['SKU-1','SKU-2']\t['Mug','Pen']\t['Kitchen/Cups','Office']\t[9.5,1.25]\t[2,1]\t1"
    );
    // The shop's order number is nowhere in the row.
    assert_eq!(
        query(&format!(
            "SELECT count() FROM {}.events WHERE position(toString(tuple(*)), 'ORDER-4711') > 0",
            c.db
        ))
        .await,
        "0"
    );
    assert_eq!(
        rows(&c, "revenue, item_skus, order_key", "kind = 'cart_update'").await,
        "9.5\t['SKU-1']\t0"
    );
    assert_eq!(
        rows(
            &c,
            "event_category, event_value, search_keyword",
            "kind = 'event'"
        )
        .await,
        "Video\t3\t"
    );
    assert_eq!(
        rows(&c, "target_url", "kind = 'download'").await,
        "https://example.org/a.pdf"
    );
    assert_eq!(
        rows(&c, "goal_id", "kind = 'ping'").await,
        "0",
        "a heartbeat converts no goal"
    );
    assert_eq!(
        rows(
            &c,
            "dimension_ids, dimension_values",
            "title = 'k-dimensions'"
        )
        .await,
        "[1,3]\t['member','de']"
    );
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"custom_action\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sloppy_optional_fields_are_dropped_and_the_hit_kept() {
    let c = Collector::start("");
    let long_title = "é".repeat(1000);
    let h = hit(&[
        ("action_name", &long_title),
        ("e_c", "Cat"),
        ("e_a", "Act"),
        ("e_v", "4,5"),
        ("h", "24"),
        ("m", "0"),
        ("s", "0"),
        ("_id", "not-hex-at-all!!"),
        ("res", "huge"),
        ("_idvc", "-3"),
        ("_viewts", "yesterday"),
        ("pv_id", "has spaces"),
        ("uadata", "{not json"),
    ]);
    assert_eq!(send(&c, &h).await.status(), 204);
    // Invalid UTF-8 in a parameter tally does not read, and in one it does.
    let r = http()
        .post(c.url("/matomo.php"))
        .body(
            b"idsite=1&rec=1&send_image=0&url=https%3A%2F%2Fexample.org%2Fx&action_name=bad%FFbyte&zzz=%C3"
                .to_vec(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    c.barrier("zz-barrier").await;
    assert_eq!(
        rows(
            &c,
            "kind, event_value, local_time, resolution, visit_count, days_since_last_visit, pv_id, length(title)",
            "event_category = 'Cat'"
        )
        .await,
        // The title is cut at the 1024-byte field limit, at a character boundary.
        "event\t\\N\t\t\t0\t\\N\t\t1024"
    );
    assert_eq!(
        rows(&c, "title", "url = 'https://example.org/x'").await,
        "bad\u{fffd}byte"
    );
}

#[tokio::test]
async fn the_referer_header_stands_in_for_a_missing_url() {
    let c = Collector::start("");
    // Matomo's <noscript> image: no url parameter, the page is the Referer.
    let r = http()
        .get(c.url("/matomo.php?idsite=1&rec=1&action_name=noscript"))
        .header("Referer", "https://example.org/no-js-page")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    let r = http()
        .get(c.url("/matomo.php?idsite=1&rec=1&action_name=nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = http()
        .get(c.url("/matomo.php?idsite=1&rec=1&action_name=foreign"))
        .header("Referer", "https://evil.example.net/")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    c.barrier("zz-barrier").await;
    assert_eq!(
        rows(&c, "title, url", "title != 'zz-barrier'").await,
        "noscript\thttps://example.org/no-js-page"
    );
}

#[tokio::test]
async fn server_side_senders_are_kept_flagged_and_crawlers_dropped() {
    let c = Collector::start_raw(
        r#"
[[sites]]
id = 1
name = "Shop"
domains = ["example.org"]

[[sites]]
id = 2
name = "Browsers only"
domains = ["example.org"]
track_non_browsers = false
"#,
    );
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let cases: [(&str, &str, &str, Pairs); 7] = [
        ("1", "curl", "curl/8.5.0", &[]),
        (
            "1",
            "node",
            "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
            &[],
        ),
        ("1", "none", "", &[]),
        ("1", "crawler", googlebot, &[]),
        ("1", "crawler-bots1", googlebot, &[("bots", "1")]),
        ("2", "curl-site2", "curl/8.5.0", &[]),
        ("2", "browser-site2", common::BROWSER_UA, &[]),
    ];
    for (site, tag, ua, extra) in cases {
        let mut params = hit(&[("idsite", site), ("action_name", tag)]);
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // reqwest sends no User-Agent unless told; an empty one is sent as such.
        let r = reqwest::Client::new()
            .get(c.url("/matomo.php"))
            .query(&params)
            .header("User-Agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{tag}");
    }
    c.barrier("zz-barrier").await;
    assert_eq!(
        rows(
            &c,
            "title, site_id, device, is_bot",
            "title != 'zz-barrier'"
        )
        .await,
        "browser-site2\t2\tdesktop\t0\n\
         crawler-bots1\t1\tbot\t1\n\
         curl\t1\tlibrary\t0\n\
         node\t1\tlibrary\t0\n\
         none\t1\tunknown\t0"
    );
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"bot\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"non_browser\"} 1"),
        "{metrics}"
    );
}

const TOKEN: &str = "secret-token-0123456789";

#[tokio::test]
async fn back_dated_hits_follow_matomo_and_the_retention_window() {
    let c = Collector::start(&format!("token_auth = \"{TOKEN}\"\n"));
    let now = tally::time::now_unix();
    let ago = |secs: u32| (now - secs).to_string();
    let day = 86_400;
    let cases: [(&str, String, bool, u16); 6] = [
        // An SDK's offline queue: up to a day back without the token.
        ("two-hours", ago(2 * 3600), false, 204),
        ("two-days-no-token", ago(2 * day), false, 400),
        ("two-days-token", ago(2 * day), true, 204),
        // Beyond the raw-data window even the token cannot go.
        ("eight-days-token", ago(8 * day), true, 400),
        ("future", (now + 3 * 3600).to_string(), false, 204),
        ("garbage", "soon".to_string(), false, 204),
    ];
    for (tag, cdt, token, status) in &cases {
        let mut params = hit(&[("action_name", tag), ("cdt", cdt)]);
        if *token {
            params.push(("token_auth".into(), TOKEN.into()));
        }
        let r = send(&c, &params).await;
        assert_eq!(r.status().as_u16(), *status, "{tag}");
        if *status == 400 {
            let body: serde_json::Value = r.json().await.unwrap();
            assert!(body["error"].as_str().unwrap().contains("cdt"), "{body}");
        }
    }
    c.barrier("zz-barrier").await;
    // A batch spanning two days is written as one part per day: the barrier's day may show
    // before the back-dated one does.
    assert_eq!(c.wait_for("title = 'two-days-token'", 1).await, 1);
    let got = rows(
        &c,
        &format!(
            "title, toUInt32(ts) BETWEEN {} AND {} + 60",
            now - 3 * day,
            now
        ),
        "title != 'zz-barrier'",
    )
    .await;
    assert_eq!(
        got,
        "future\t1\ngarbage\t1\ntwo-days-token\t1\ntwo-hours\t1"
    );
    assert_eq!(
        rows(
            &c,
            "toUInt32(ts)",
            "title IN ('two-hours', 'two-days-token')"
        )
        .await,
        format!("{}\n{}", now - 2 * day, now - 2 * 3600)
    );
}

#[tokio::test]
async fn bulk_stores_valid_hits_and_reports_invalid_ones() {
    let c = Collector::start(&format!("token_auth = \"{TOKEN}\"\n"));
    let requests = json!([
        "?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F1&action_name=b-string",
        {"idsite": 1, "rec": 1, "url": "https://example.org/2", "action_name": "b-object",
         "bw_bytes": 512, "e_c": "Cat", "e_a": "Act", "e_v": 2.5},
        "?idsite=99&rec=1&url=https%3A%2F%2Fexample.org%2F3&action_name=b-unknown-site",
        {"idsite": 1, "rec": 1, "url": "https://evil.example.net/", "action_name": "b-foreign"},
        42,
        "/matomo.php?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F6&action_name=b-path",
        {"idsite": 1, "rec": 1, "url": "https://example.org/7", "action_name": "b-back-dated",
         "cdt": (tally::time::now_unix() - 3 * 86_400)},
        // The log importer's line of a host it could not resolve: tracked, nothing stored.
        null
    ]);
    // Without the token: positions are Matomo's secret too; the old `cdt` is invalid.
    let r = http()
        .post(c.url("/matomo.php"))
        .json(&json!({ "requests": requests }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "success", "tracked": 4, "invalid": 4})
    );
    c.barrier("b-barrier-1").await;
    assert_eq!(
        rows(
            &c,
            "title, kind, event_value",
            "title LIKE 'b-%' AND title NOT LIKE 'b-barrier%'"
        )
        .await,
        "b-object\tevent\t2.5\nb-path\tpageview\t\\N\nb-string\tpageview\t\\N"
    );
    // With the token: the positions, and the back-dated hit is allowed.
    let r = http()
        .post(c.url("/matomo.php"))
        .json(&json!({ "requests": requests, "token_auth": TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"status": "success", "tracked": 5, "invalid": 3, "invalid_indices": [2, 3, 4]})
    );
    c.barrier("b-barrier-2").await;
    // Back-dated: its own day's part, which may show after the barrier's.
    assert_eq!(c.wait_for("title = 'b-back-dated'", 1).await, 1);
    assert_eq!(c.count("title = 'b-string'").await, 2);
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_requests_rejected_total{reason=\"bulk_invalid_hit\"} 7"),
        "{metrics}"
    );
}

#[tokio::test]
async fn new_or_returning_and_client_hints_from_the_tracker() {
    let c = Collector::start("");
    let uadata = json!({
        "brands": [{"brand": "Chromium", "version": "131"}],
        "fullVersionList": [{"brand": "Chromium", "version": "131.0.6778.85"}],
        "mobile": false, "model": "", "platform": "Windows", "platformVersion": "15.0.0"
    })
    .to_string();
    let windows_chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    let android = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    let cases: [(&str, Pairs, &str, Pairs); 5] = [
        ("v-new-idn", &[("_idn", "1")], windows_chrome, &[]),
        (
            "v-returning-idn",
            &[("_idn", "0"), ("uadata", &uadata)],
            windows_chrome,
            &[],
        ),
        (
            "v-returning-idvc",
            &[("_idvc", "5"), ("_viewts", "1700000000")],
            windows_chrome,
            &[],
        ),
        ("v-unknown", &[], windows_chrome, &[]),
        (
            "v-model-header",
            &[],
            android,
            &[("Sec-CH-UA-Model", "\"Pixel 8\"")],
        ),
    ];
    for (tag, extra, ua, headers) in cases {
        let mut params = hit(&[("action_name", tag)]);
        params.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut req = http()
            .get(c.url("/matomo.php"))
            .query(&params)
            .header("User-Agent", ua);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        assert_eq!(req.send().await.unwrap().status(), 204);
    }
    c.barrier("zz-barrier").await;
    assert_eq!(
        rows(
            &c,
            "title, visitor_type, os, os_version, device_model",
            "title LIKE 'v-%'"
        )
        .await,
        "v-model-header\tunknown\tAndroid\t10\tPixel 8\n\
         v-new-idn\tnew\tWindows\t10\t\n\
         v-returning-idn\treturning\tWindows\t11\t\n\
         v-returning-idvc\treturning\tWindows\t10\t\n\
         v-unknown\tunknown\tWindows\t10\t"
    );
}
