//! The first-party opt-out (issue 14): the widget `/optout.js` that runs on the site's own
//! privacy page, the opt-out page's truthful states (a choice the browser did not keep, a page
//! on another site than the site's), and `tally snippet --optout`, against a real
//! `tally serve`.

mod common;

use std::process::Command;

use common::{Collector, http, raw, tally_bin, write_config};

/// Site 1 on example.org (its privacy page named), site 2 with a hostile name.
const SITES: &str = r#"
[[sites]]
id = 1
name = "Example"
domains = ["example.org", "*.example.org"]
privacy_url = "https://www.example.org/privacy#optout"

[[sites]]
id = 2
name = "</script><script>alert(1)</script>\"'\\ \u2028 {cookie}"
domains = ["other.example.net"]
"#;

/// The JSON object the collector put into the widget's code, parsed back.
fn widget_config(script: &str) -> serde_json::Value {
    let start = script.rfind(",{\"lang\"").expect("configuration object") + 1;
    let end = script.rfind(");").unwrap();
    serde_json::from_str(&script[start..end]).unwrap()
}

#[tokio::test]
async fn the_widget_carries_the_sites_texts_in_its_language() {
    let c = Collector::start_raw(&format!("[privacy]\nip_bytes = 1\n{SITES}"));
    let r = http()
        .get(c.url("/optout.js?idsite=1&lang=de"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/javascript; charset=utf-8");
    assert_eq!(h["cache-control"], "public, max-age=300");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(h["vary"], "Accept-Encoding, Accept-Language");
    let de = r.text().await.unwrap();
    // The built widget, called with the site's configuration (the minifier's names vary).
    assert!(de.starts_with("(("), "{de}");
    assert!(de.contains("})(window,document,navigator,location,{\"lang\":\"de\","));
    assert!(!de.contains("TALLY_OPTOUT"));
    let v = widget_config(&de);
    assert_eq!(v["lang"], "de");
    assert_eq!(v["cookie"], "tally_ignore");
    assert_eq!(v["cookie_domains"], serde_json::json!(["example.org"]));
    assert_eq!(v["title"], "Webanalyse auf Example");
    // The same facts as the opt-out page, from the configuration: one byte masked, 7 days.
    let recorded = v["recorded"][0].as_str().unwrap();
    assert!(
        recorded.contains(
            "ihr letztes Byte wird auf null gesetzt (aus 198.51.100.23 wird 198.51.100.0)"
        ),
        "{recorded}"
    );
    assert!(v["retention"].as_str().unwrap().contains("nach 7 Tagen"));
    assert_eq!(v["saved"], "Ihre Auswahl wurde gespeichert.");
    let page = c.text("/optout?idsite=1&lang=de").await;
    for text in [&v["intro"], &v["stored_where"], &v["not_recorded"]] {
        // The page escapes `'` and `&`; these texts have neither.
        assert!(
            page.contains(text.as_str().unwrap()),
            "{text} not on the page"
        );
    }

    // English by the header when no `lang` is given.
    let en = c
        .text_with(
            "/optout.js?idsite=1",
            &[("Accept-Language", "en-GB,en;q=0.9")],
        )
        .await;
    assert_eq!(widget_config(&en)["title"], "Web analytics on Example");
}

#[tokio::test]
async fn a_hostile_site_name_stays_a_javascript_string() {
    let c = Collector::start_raw(SITES);
    let js = c.text("/optout.js?idsite=2&lang=en").await;
    assert!(!js.contains("</script"), "{js}");
    assert!(!js.contains('\u{2028}'));
    let v = widget_config(&js);
    let name = "</script><script>alert(1)</script>\"'\\ \u{2028} {cookie}";
    assert_eq!(v["title"], format!("Web analytics on {name}"));
    // A placeholder inside a name is not filled in.
    assert!(
        v["storage"]
            .as_str()
            .unwrap()
            .contains(&format!("for {name} for up to two years"))
    );
}

#[tokio::test]
async fn the_widget_revalidates_and_refuses_unknown_sites() {
    let c = Collector::start_raw(SITES);
    let r = raw()
        .get(c.url("/optout.js?idsite=1&lang=en"))
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let body = r.text().await.unwrap();
    let again = raw()
        .get(c.url("/optout.js?idsite=1&lang=en"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    // Another language is another script, with another tag.
    let de = raw()
        .get(c.url("/optout.js?idsite=1&lang=de"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(de.status(), 200);
    assert_ne!(de.headers()["etag"], etag.as_str());
    // Gzipped when asked, the same script.
    let gz = raw()
        .get(c.url("/optout.js?idsite=1&lang=en"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let mut plain = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..]),
        &mut plain,
    )
    .unwrap();
    assert_eq!(plain, body);

    for (query, status, reason) in [
        ("idsite=99", 404, "no site with idsite 99 is configured"),
        (
            "idsite=abc",
            400,
            "idsite must be the number of a configured site",
        ),
        ("", 400, "idsite must be the number of a configured site"),
    ] {
        let r = http()
            .get(c.url(&format!("/optout.js?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{query}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap(),
            serde_json::json!({ "error": reason })
        );
    }
    let post = http()
        .post(c.url("/optout.js?idsite=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn the_widget_under_a_base_path() {
    let c = Collector::start_raw(&format!("base_path = \"/analytics\"\n{SITES}"));
    let r = http()
        .get(c.url("/analytics/optout.js?idsite=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .get(c.url("/optout.js?idsite=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// GETs the opt-out page with these headers.
async fn page(c: &Collector, query: &str, headers: &[(&str, &str)]) -> String {
    let mut req = http().get(c.url(&format!("/optout?{query}")));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().text().await.unwrap()
}

const SAVED: &str = "Your choice has been saved.";
const NOT_STORED: &str = "Your browser did not store your choice on this page";
const CROSS: &str = "runs on a different website than Example";
/// Opens at the top, not inside the collector's frame the page may be shown in.
const LINK: &str = "<a href=\"https://www.example.org/privacy#optout\" target=\"_top\">Opt out on the privacy page of Example</a>";

#[tokio::test]
async fn after_the_form_the_page_says_saved_only_when_the_cookie_came_back() {
    // A first-party deployment: the collector on a subdomain of the site.
    let c = Collector::start_raw(&format!(
        "public_url = \"https://stats.example.org\"\n{SITES}"
    ));
    let q = "idsite=1&lang=en&done=1&choice=out";
    let kept = page(&c, q, &[("Cookie", "tally_ignore=1")]).await;
    assert!(kept.contains(SAVED), "{kept}");
    assert!(kept.contains("You have opted out"));
    assert!(!kept.contains(NOT_STORED));

    // The browser did not send the cookie back: it did not keep it (a cross-site frame over
    // http, cookies blocked). No "saved"; the site's own opt-out instead.
    let lost = page(&c, q, &[]).await;
    assert!(!lost.contains(SAVED), "{lost}");
    assert!(lost.contains(NOT_STORED), "{lost}");
    assert!(lost.contains(LINK), "{lost}");
    assert!(lost.contains("Your visits are currently counted"));

    // Opting in is saved when the cookie is gone, not when it is still sent.
    let q = "idsite=1&lang=en&done=1&choice=in";
    assert!(page(&c, q, &[]).await.contains(SAVED));
    let stuck = page(&c, q, &[("Cookie", "tally_ignore=1")]).await;
    assert!(
        !stuck.contains(SAVED) && stuck.contains(NOT_STORED),
        "{stuck}"
    );

    // A bare done=1 (an old bookmark) claims nothing.
    let bare = page(&c, "idsite=1&lang=en&done=1", &[]).await;
    assert!(!bare.contains(SAVED) && !bare.contains(NOT_STORED));

    // Without privacy_url the page says where to look instead of linking.
    let other = page(&c, "idsite=2&lang=en&done=1&choice=out", &[]).await;
    assert!(
        other.contains("please use the opt-out in the privacy policy of"),
        "{other}"
    );
}

#[tokio::test]
async fn on_another_site_the_top_level_page_does_not_pretend() {
    let c = Collector::start_raw(&format!(
        "public_url = \"https://stats.analytics-host.net\"\n{SITES}"
    ));
    // Opened on its own (the browser says so): the notice and the link, no form, no state,
    // not even with the collector's own cookie.
    let top = page(
        &c,
        "idsite=1&lang=en",
        &[("Sec-Fetch-Dest", "document"), ("Cookie", "tally_ignore=1")],
    )
    .await;
    assert!(top.contains(CROSS), "{top}");
    assert!(top.contains(LINK));
    assert!(!top.contains("<form"), "{top}");
    assert!(!top.contains("You have opted out"));
    assert!(!top.contains("currently counted"));
    assert_eq!(top.matches("role=\"status\"").count(), 1);
    let after = page(
        &c,
        "idsite=1&lang=en&done=1&choice=out",
        &[("Sec-Fetch-Dest", "document"), ("Cookie", "tally_ignore=1")],
    )
    .await;
    assert!(!after.contains(SAVED), "{after}");

    // Framed by the site: the partitioned cookie works there, the choice is offered.
    let framed = page(&c, "idsite=1&lang=en", &[("Sec-Fetch-Dest", "iframe")]).await;
    assert!(framed.contains("<form method=\"post\" action=\"optout\">"));
    assert!(!framed.contains(CROSS), "{framed}");

    // Unknown (plain http, no fetch metadata): the choice, and the notice hidden for the script
    // to show when the page turns out to be top-level.
    let unknown = page(&c, "idsite=1&lang=en", &[]).await;
    assert!(unknown.contains("<form method=\"post\" action=\"optout\">"));
    assert!(
        unknown.contains("<div id=\"cross-site\" hidden>"),
        "{unknown}"
    );
    assert!(unknown.contains(CROSS));
    // One status line at a time: the hidden notice has no role until the script shows it.
    assert_eq!(unknown.matches("role=\"status\"").count(), 1);
}

#[tokio::test]
async fn a_first_party_deployment_offers_the_choice_at_top_level() {
    // The collector under a path of the site (reverse proxy), and on a subdomain.
    for public in [
        "https://www.example.org/analytics",
        "https://stats.example.org",
    ] {
        let c = Collector::start_raw(&format!("public_url = \"{public}\"\n{SITES}"));
        let top = page(&c, "idsite=1&lang=en", &[("Sec-Fetch-Dest", "document")]).await;
        assert!(
            top.contains("<form method=\"post\" action=\"optout\">"),
            "{public}"
        );
        assert!(!top.contains(CROSS), "{public}: {top}");
        assert!(!top.contains("id=\"cross-site\""), "{public}");
    }
    // Without public_url the request's own host counts: 127.0.0.1 is not example.org.
    let c = Collector::start_raw(SITES);
    let top = page(&c, "idsite=1&lang=en", &[("Sec-Fetch-Dest", "document")]).await;
    assert!(top.contains(CROSS));
}

#[test]
fn snippet_prints_the_widget_with_its_csp() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "snippet",
        &format!("public_url = \"https://stats.analytics-host.net\"\n{SITES}"),
    );
    let out = Command::new(tally_bin())
        .args([
            "snippet", "--site", "1", "--optout", "--lang", "de", "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    let text = common::succeeded(&out);
    assert!(
        text.contains(
            "<div id=\"tally-optout\"></div>\n<script src=\"https://stats.analytics-host.net/optout.js?idsite=1&amp;lang=de\" async></script>"
        ),
        "{text}"
    );
    assert!(text.contains("script-src https://stats.analytics-host.net -->"));
    // Collector and site are different sites: the snippet says so and recommends first-party.
    assert!(text.contains("are different sites"));
    assert!(text.contains("subdomain of the site"));
    // The inline form, and the hash of exactly its text.
    let inline = text
        .split("<div id=\"tally-optout\"></div>\n<script>")
        .nth(1)
        .and_then(|rest| rest.split_once("</script>"))
        .unwrap()
        .0;
    assert_eq!(widget_config(inline)["title"], "Webanalyse auf Example");
    let hash = tally::web::csp::script_hash(inline);
    assert!(
        text.contains(&format!("script-src {hash} -->")),
        "{hash} not in\n{text}"
    );

    // The tracking snippet points to the widget too.
    let out = Command::new(tally_bin())
        .args(["snippet", "--site", "1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("`tally snippet --site 1 --optout` prints it"),
        "{text}"
    );
    assert!(text.contains("are different sites"));
}
