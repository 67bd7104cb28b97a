//! What browsers get besides tracking: the tracker script, the opt-out page and its cookie, and
//! `tally snippet`, against a real `tally serve` and ClickHouse.

mod common;

use std::io::Read;
use std::process::Command;
use std::time::Duration;

use common::{Collector, SITE, http, raw, set_cookies, tally_bin, write_config};

const DIST: &[u8] = include_bytes!("../tracker-js/dist/tally.js");

/// A client that keeps cookies and follows redirects, as a browser would.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(common::BROWSER_UA)
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn tracker_script_is_served_gzipped_with_validators() {
    let c = Collector::start("");
    let r = raw()
        .get(c.url("/tally.js"))
        .header("Accept-Encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/javascript; charset=utf-8");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["cache-control"], "public, max-age=3600");
    assert_eq!(h["vary"], "Accept-Encoding");
    let etag = h["etag"].to_str().unwrap().to_string();
    assert!(etag.starts_with('"') && etag.ends_with("-gzip\""), "{etag}");
    let body = r.bytes().await.unwrap();
    assert!(body.len() < DIST.len());
    assert_eq!(gunzip(&body), DIST);

    // Revalidation.
    let r = raw()
        .get(c.url("/tally.js"))
        .header("Accept-Encoding", "gzip")
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], etag.as_str());
    assert!(r.bytes().await.unwrap().is_empty());

    // gzip refused: the plain bytes, under their own tag.
    let r = raw()
        .get(c.url("/tally.js"))
        .header("Accept-Encoding", "gzip;q=0, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let plain_etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(plain_etag.len(), 18);
    assert_eq!(&r.bytes().await.unwrap()[..], DIST);
    let r = raw()
        .get(c.url("/tally.js"))
        .header("If-None-Match", &plain_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn matomo_names_serve_the_same_script() {
    let c = Collector::start("");
    for path in ["/matomo.js", "/piwik.js"] {
        let r = raw().get(c.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/javascript; charset=utf-8"
        );
        assert_eq!(&r.bytes().await.unwrap()[..], DIST, "{path}");
    }
    let head = raw().head(c.url("/matomo.js")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        DIST.len().to_string().as_str()
    );
    assert!(head.headers().contains_key("etag"));
    assert!(head.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn optout_page_in_english_and_german() {
    let c = Collector::start("[privacy]\nip_bytes = 3\n");
    let r = http()
        .get(c.url("/optout?idsite=1&lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.get("x-frame-options").is_none());
    let en = r.text().await.unwrap();
    for sentence in [
        "<html lang=\"en\">",
        "Web analytics on Example",
        "the last 3 of its 4 bytes are set to zero",
        "198.51.100.23 is stored as 198.0.0.0",
        "The pages you visit, the page you came from (the referrer) and how long you stay on a page.",
        "How often you come back",
        "operating system and device",
        "Everything is stored only on the operator&#39;s own server for Example.",
        "deleted after 7 days",
        "after 180 days",
        "Do Not Track or Global Privacy Control",
        "Your visits are currently counted, anonymously.",
        "<form method=\"post\" action=\"optout\">",
        "name=\"choice\" value=\"out\"",
    ] {
        assert!(en.contains(sentence), "missing {sentence:?} in\n{en}");
    }

    // German by parameter, and by Accept-Language without one.
    let by_param = c.text("/optout?idsite=1&lang=de").await;
    let by_header = c
        .text_with(
            "/optout?idsite=1",
            &[("Accept-Language", "de-AT,de;q=0.9,en;q=0.5")],
        )
        .await;
    assert_eq!(by_param, by_header);
    for sentence in [
        "<html lang=\"de\">",
        "Webanalyse auf Example",
        "die letzten 3 ihrer 4 Bytes werden auf null gesetzt",
        "nach 7 Tagen gelöscht",
        "nach 180 Tagen",
        "Ihre Besuche werden derzeit anonym gezählt.",
    ] {
        assert!(
            by_param.contains(sentence),
            "missing {sentence:?} in\n{by_param}"
        );
    }

    // DNT is reported as what it is.
    let dnt = c.text_with("/optout?idsite=1", &[("DNT", "1")]).await;
    assert!(dnt.contains("so your visits are not recorded"), "{dnt}");
}

#[tokio::test]
async fn csp_allows_only_the_site_to_frame_the_page() {
    let c = Collector::start(
        r#"
[[sites]]
id = 2
name = "Intranet"
domains = ["intranet.example.net"]
frame_ancestors = ["https://portal.example.net"]
"#,
    );
    let r = http().get(c.url("/optout?idsite=1")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        csp.contains("; form-action 'self'; base-uri 'none'; "),
        "{csp}"
    );
    assert!(
        csp.ends_with(
            "frame-ancestors 'self' https://example.org http://example.org \
             https://*.example.org http://*.example.org"
        ),
        "{csp}"
    );
    // The hash is that of the page's one inline style.
    let style = page
        .split_once("<style>")
        .and_then(|(_, rest)| rest.split_once("</style>"))
        .unwrap()
        .0;
    assert!(csp.contains(&tally::web::csp::style_hash(style)));

    let r = http().get(c.url("/optout?idsite=2")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.ends_with("frame-ancestors 'self' https://portal.example.net"),
        "{csp}"
    );

    // A return URL on the site may be redirected to after the post.
    let r = http()
        .get(c.url("/optout?idsite=1&return=https%3A%2F%2Fwww.example.org%2Fprivacy"))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' https://www.example.org;"),
        "{csp}"
    );
    assert!(r.text().await.unwrap().contains(
        "<input type=\"hidden\" name=\"return\" value=\"https://www.example.org/privacy\">"
    ));
}

#[tokio::test]
async fn unknown_site_is_404() {
    let c = Collector::start("");
    for q in ["idsite=99", "idsite=abc", ""] {
        let r = http()
            .get(c.url(&format!("/optout?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{q}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        assert!(r.text().await.unwrap().contains("Unknown website"));
    }
    let r = raw()
        .post(c.url("/optout"))
        .form(&[("idsite", "99"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn opting_out_sets_the_cookie_and_stops_tracking() {
    let c = Collector::start("");
    let r = raw()
        .post(c.url("/optout"))
        .header("Origin", &c.base)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("idsite", "1"), ("lang", "de"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The redirect names the choice, so the page can check the cookie came back.
    assert_eq!(
        r.headers()["location"],
        "optout?idsite=1&lang=de&done=1&choice=out"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookies = set_cookies(&r);
    // Plain http: Lax, no Secure (browsers refuse SameSite=None without it), no partition.
    assert_eq!(
        cookies,
        ["tally_ignore=1; SameSite=Lax; Path=/; Max-Age=63072000"]
    );

    // A hit carrying the cookie stores nothing.
    let hit = http()
        .get(c.url("/matomo.php"))
        .query(&[
            ("idsite", "1"),
            ("rec", "1"),
            ("url", "https://example.org/secret"),
            ("action_name", "opted-out"),
            ("send_image", "0"),
        ])
        .header("Cookie", "tally_ignore=1")
        .send()
        .await
        .unwrap();
    assert_eq!(hit.status(), 204);
    c.barrier("after-optout").await;
    assert_eq!(c.count("title = 'opted-out'").await, 0);
    assert_eq!(c.count("1").await, 1, "only the barrier hit may be stored");

    // The page sees the choice.
    let page = c
        .text_with("/optout?idsite=1&lang=en", &[("Cookie", "tally_ignore=1")])
        .await;
    assert!(page.contains("You have opted out"));
    assert!(page.contains("name=\"choice\" value=\"in\""));

    // Opting back in clears it with the same attributes.
    let r = raw()
        .post(c.url("/optout"))
        .header("Cookie", "tally_ignore=1")
        .form(&[("idsite", "1"), ("choice", "in")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cleared = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("tally_ignore=; SameSite=Lax; Path=/; Max-Age=0; Expires="),
        "{cleared}"
    );
}

#[tokio::test]
async fn a_browser_round_trip_through_the_form() {
    let c = Collector::start("");
    let b = browser();
    let track = |title: &'static str| {
        b.get(c.url("/matomo.php"))
            .query(&[
                ("idsite", "1"),
                ("rec", "1"),
                ("url", "https://example.org/p"),
                ("action_name", title),
                ("send_image", "0"),
            ])
            .send()
    };
    let page = b
        .post(c.url("/optout"))
        .header("Origin", &c.base)
        .form(&[("idsite", "1"), ("lang", "en"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    // The redirect was followed back to the page, which now shows the new state.
    assert_eq!(page.status(), 200);
    assert!(
        page.url()
            .as_str()
            .ends_with("/optout?idsite=1&lang=en&done=1&choice=out")
    );
    let text = page.text().await.unwrap();
    assert!(text.contains("Your choice has been saved."), "{text}");
    assert!(text.contains("You have opted out"));
    assert_eq!(track("while-out").await.unwrap().status(), 204);

    let page = b
        .post(c.url("/optout"))
        .header("Origin", &c.base)
        .form(&[("idsite", "1"), ("lang", "en"), ("choice", "in")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your visits are currently counted"), "{page}");
    assert_eq!(track("back-in").await.unwrap().status(), 204);
    c.barrier("round-trip").await;
    assert_eq!(c.count("title = 'while-out'").await, 0);
    assert_eq!(c.count("title = 'back-in'").await, 1);
}

#[tokio::test]
async fn https_cookies_work_across_sites_and_in_frames() {
    let c = Collector::start("public_url = \"https://analytics.example.org\"\n");
    let r = raw()
        .post(c.url("/optout"))
        // The form inside the iframe posts from the collector's own origin.
        .header("Origin", "https://analytics.example.org")
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[("idsite", "1"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookies = set_cookies(&r);
    assert_eq!(
        cookies,
        [
            "tally_ignore=1; SameSite=None; Secure; Path=/; Max-Age=63072000",
            "tally_ignore=1; SameSite=None; Partitioned; Secure; Path=/; Max-Age=63072000",
        ]
    );
    let r = raw()
        .post(c.url("/optout"))
        .header("Origin", "https://analytics.example.org")
        .form(&[("idsite", "1"), ("choice", "in")])
        .send()
        .await
        .unwrap();
    let cleared = set_cookies(&r);
    assert_eq!(cleared.len(), 2);
    assert!(cleared[0].starts_with("tally_ignore=; SameSite=None; Secure; Path=/; Max-Age=0"));
    assert!(
        cleared[1]
            .starts_with("tally_ignore=; SameSite=None; Partitioned; Secure; Path=/; Max-Age=0")
    );

    // Behind a trusted TLS-terminating proxy, without public_url.
    let proxied = Collector::start("[privacy]\ntrusted_proxies = [\"127.0.0.0/8\"]\n");
    let r = raw()
        .post(proxied.url("/optout"))
        .header("X-Forwarded-Proto", "https")
        .form(&[("idsite", "1"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers().get_all("set-cookie").iter().count(), 2);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("SameSite=None; Secure")
    );
}

#[tokio::test]
async fn cross_site_posts_are_forbidden() {
    let c = Collector::start("");
    let post = |origin: &str, fetch_site: Option<&str>| {
        let mut req = raw()
            .post(c.url("/optout"))
            .header("Origin", origin)
            .form(&[("idsite", "1"), ("choice", "in")]);
        if let Some(f) = fetch_site {
            req = req.header("Sec-Fetch-Site", f);
        }
        req.send()
    };
    for (origin, fetch_site) in [
        ("https://evil.example.com", None),
        ("https://evil.example.com", Some("cross-site")),
        ("null", None),
        ("https://example.org.evil.com", Some("cross-site")),
    ] {
        let r = post(origin, fetch_site).await.unwrap();
        assert_eq!(r.status(), 403, "{origin} {fetch_site:?}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // The site's own pages may post it.
    let r = post("https://www.example.org", Some("cross-site"))
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // A return URL is followed only to the site; anything else falls back to the page.
    let back = |ret: &'static str| {
        raw()
            .post(c.url("/optout"))
            .form(&[("idsite", "1"), ("choice", "out"), ("return", ret)])
            .send()
    };
    let r = back("https://www.example.org/privacy#optout")
        .await
        .unwrap();
    assert_eq!(
        r.headers()["location"],
        "https://www.example.org/privacy#optout"
    );
    for evil in [
        "https://evil.com/",
        "//evil.com",
        "https://example.org@evil.com/",
    ] {
        let r = back(evil).await.unwrap();
        assert_eq!(r.status(), 303);
        assert_eq!(
            r.headers()["location"],
            "optout?idsite=1&lang=en&done=1&choice=out",
            "{evil}"
        );
    }
}

#[test]
fn snippet_command_prints_the_tracker_and_the_optout_page() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "snippet",
        &format!("public_url = \"https://analytics.example.org\"\n{SITE}"),
    );
    let out = Command::new(tally_bin())
        .args(["snippet", "--site", "1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = common::succeeded(&out);
    assert!(text.starts_with("<!-- tally -->\n<script>"), "{text}");
    assert!(text.contains(r#"var u="https://analytics.example.org/";"#));
    assert!(text.contains("_paq.push(['setTrackerUrl', u+'matomo.php']);"));
    assert!(text.contains("_paq.push(['setSiteId', '1']);"));
    assert!(text.contains("g.src=u+'tally.js'"));
    assert!(
        text.contains(r#"<iframe src="https://analytics.example.org/optout?idsite=1&amp;lang=en""#)
    );

    let out = Command::new(tally_bin())
        .args(["snippet", "--site", "99", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no site with id 99"), "{err}");
}
