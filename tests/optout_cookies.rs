//! Matomo's opt-out cookies (`matomo_ignore`, `piwik_ignore`) are honoured like tally's own, for
//! every kind of tracking request, and shown and lifted by the opt-out page.

mod common;

use common::{Collector, http, raw, set_cookies};

fn hit(tag: &str) -> Vec<(&'static str, String)> {
    vec![
        ("idsite", "1".into()),
        ("rec", "1".into()),
        ("url", "https://example.org/private".into()),
        ("action_name", tag.into()),
        ("send_image", "0".into()),
    ]
}

fn form(tag: &str) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(hit(tag))
        .finish()
}

#[tokio::test]
async fn matomo_optout_cookies_store_nothing() {
    let c = Collector::start("");
    for cookie in ["matomo_ignore=*", "piwik_ignore=1", "a=b; piwik_ignore="] {
        let get = http()
            .get(c.url("/matomo.php"))
            .query(&hit("get"))
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 204, "{cookie}");
        let image = http()
            .get(c.url("/piwik.php"))
            .query(&hit("image")[..4])
            .header("Cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(image.status(), 200, "{cookie}");
        assert_eq!(image.headers()["content-type"], "image/gif");
        let post = http()
            .post(c.url("/matomo.php"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Cookie", cookie)
            .body(form("post"))
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 204, "{cookie}");
        let requests: Vec<String> = ["bulk-1", "bulk-2"]
            .iter()
            .map(|t| format!("?{}", form(t)))
            .collect();
        let bulk = http()
            .post(c.url("/matomo.php"))
            .header("Cookie", cookie)
            .body(serde_json::json!({ "requests": requests }).to_string())
            .send()
            .await
            .unwrap();
        // Matomo's summary, as for a stored request.
        assert_eq!(bulk.status(), 200, "{cookie}");
        assert_eq!(
            bulk.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({"status": "success", "tracked": 2, "invalid": 0})
        );
    }
    // The queue is first in, first out: once the barrier is stored, every hit before it has
    // been decided.
    c.barrier("after-matomo-cookies").await;
    assert_eq!(c.count("1").await, 1, "only the barrier hit may be stored");
    let metrics = c.text("/metrics").await;
    assert!(
        metrics.contains("tally_hits_dropped_total{reason=\"optout_cookie\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_page_shows_and_lifts_a_matomo_optout() {
    let c = Collector::start("");
    let page = c
        .text_with("/optout?idsite=1&lang=en", &[("Cookie", "matomo_ignore=*")])
        .await;
    assert!(page.contains("You have opted out"), "{page}");
    assert!(page.contains("name=\"choice\" value=\"in\""));

    // Opting back in clears tally's cookie and the Matomo ones the browser sent, no others.
    let r = raw()
        .post(c.url("/optout"))
        .header("Cookie", "piwik_ignore=1; matomo_ignore=*; other=1")
        .form(&[("idsite", "1"), ("choice", "in")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cleared = set_cookies(&r);
    assert_eq!(cleared.len(), 3, "{cleared:?}");
    for (set, name) in cleared
        .iter()
        .zip(["tally_ignore", "matomo_ignore", "piwik_ignore"])
    {
        assert!(
            set.starts_with(&format!("{name}=; SameSite=Lax; Path=/; Max-Age=0")),
            "{set}"
        );
    }

    // Opting out sets only tally's own.
    let r = raw()
        .post(c.url("/optout"))
        .header("Cookie", "piwik_ignore=1")
        .form(&[("idsite", "1"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 1);
}
