//! Matomo's API slice and web-server-like paths, over HTTP against a real collector: the calls
//! Matomo's sending tools make (`SitesManager.*` as GET query or POST form), Matomo's error
//! shape, `token_auth`, and the tracker, script, opt-out page and API at odd paths and under a
//! `base_path`.

mod common;

use common::{Collector, http};
use serde_json::{Value, json};

const TOKEN: &str = "api-token-0123456789";

fn with_token(extra: &str) -> Collector {
    Collector::start(&format!("token_auth = \"{TOKEN}\"\n{extra}"))
}

/// POSTs a form to `path` as the log importer does, returning status and parsed JSON.
async fn post_form(c: &Collector, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = http().post(c.url(path)).form(form).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{path}: {ct}");
    (status, r.json().await.unwrap())
}

async fn get(c: &Collector, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
    let r = http().get(c.url(path)).query(query).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn api<'a>(method: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![
        ("module", "API"),
        ("format", "json"),
        ("method", method),
        ("filter_limit", "-1"),
        ("token_auth", TOKEN),
    ];
    v.extend_from_slice(extra);
    v
}

/// A page view at `path`, answered 204 when tracked (`send_image=0`: no GIF).
async fn track_at(c: &Collector, path: &str, title: &str) -> u16 {
    http()
        .get(c.url(path))
        .query(&[
            ("idsite", "1"),
            ("rec", "1"),
            ("url", "https://example.org/p"),
            ("action_name", title),
            ("send_image", "0"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sites_manager_calls_as_the_importer_makes_them() {
    let c = with_token("");
    // The importer POSTs every API call as a form to the URL it was given plus `/`.
    for path in ["/", "/index.php", "//", "//index.php"] {
        let (s, v) = post_form(
            &c,
            path,
            &api("SitesManager.getSiteFromId", &[("idSite", "1")]),
        )
        .await;
        assert_eq!(s, 200, "{path}: {v}");
        assert_eq!(
            v,
            json!({"idsite": "1", "name": "Example", "main_url": "https://example.org",
                   "type": "website", "timezone": "UTC"}),
            "{path}"
        );
    }
    // The same as a GET query.
    let (s, v) = get(
        &c,
        "/index.php",
        &api(
            "SitesManager.getSitesIdFromSiteUrl",
            &[("url", "www.example.org")],
        ),
    )
    .await;
    assert_eq!((s, v), (200, json!([{"idsite": "1"}])));
    let (s, v) = post_form(
        &c,
        "/",
        &api(
            "SitesManager.getSitesIdFromSiteUrl",
            &[("url", "elsewhere.example")],
        ),
    )
    .await;
    assert_eq!((s, v), (200, json!([])));
    let (s, v) = post_form(&c, "/", &api("SitesManager.getAllSites", &[])).await;
    assert_eq!(s, 200);
    assert_eq!(v["1"]["main_url"], "https://example.org");
    // Nothing of the configuration beyond the site's public face.
    assert!(!v.to_string().contains(TOKEN));
}

#[tokio::test]
async fn refusals_have_matomo_error_shape_and_a_4xx() {
    let c = with_token("");
    // (form, status, a word the message must contain)
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("module", "API"),
                ("format", "json"),
                ("method", "SitesManager.getSiteFromId"),
                ("idSite", "1"),
            ],
            401,
            "token_auth",
        ),
        (
            {
                let mut v = api("SitesManager.getSiteFromId", &[("idSite", "1")]);
                v[4] = ("token_auth", "not-the-token-at-all");
                v
            },
            401,
            "token_auth",
        ),
        (
            api("SitesManager.getSiteFromId", &[("idSite", "42")]),
            400,
            "website id = 42",
        ),
        (
            api("SitesManager.getSiteFromId", &[("idSite", "one")]),
            400,
            "idSite",
        ),
        (
            api("SitesManager.addSite", &[("siteName", "x")]),
            400,
            "addSite",
        ),
        (
            {
                let mut v = api("SitesManager.getSiteFromId", &[("idSite", "1")]);
                v[1] = ("format", "xml");
                v
            },
            400,
            "format=json",
        ),
    ];
    for (form, status, needle) in cases {
        let (s, v) = post_form(&c, "/index.php", &form).await;
        assert_eq!(s, status, "{form:?}: {v}");
        assert_eq!(v["result"], "error", "{v}");
        let msg = v["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg} lacks {needle}");
        assert!(!msg.contains('\n'));
    }
    // A body that is not a form, and a GET of the bare `index.php`, are refused too, not ignored.
    let r = http()
        .post(c.url("/index.php"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Matomo writes `result` first; some clients look at the start of the body.
    let raw = http()
        .post(c.url("/"))
        .form(&[("module", "API"), ("format", "json")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with(r#"{"result":"error","message":""#), "{raw}");
    let (s, v) = get(&c, "/index.php", &[]).await;
    assert_eq!(s, 404);
    assert_eq!(v["result"], "error");
    // `/` without `module=` is the dashboard's now (issue #9): to its sign-in page.
    let home = common::raw().get(c.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/login");
    let r = http().delete(c.url("/index.php")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}

#[tokio::test]
async fn without_a_configured_token_the_api_is_closed() {
    let c = Collector::start("");
    for token in [TOKEN, ""] {
        let mut form = api("SitesManager.getSiteFromId", &[("idSite", "1")]);
        form[4] = ("token_auth", token);
        let (s, v) = post_form(&c, "/", &form).await;
        assert_eq!(s, 403, "{v}");
        assert_eq!(v["result"], "error");
    }
}

#[tokio::test]
async fn tracker_paths_as_a_web_server_would_match_them() {
    let c = with_token("");
    let paths = [
        "/matomo.php",
        "//piwik.php",
        "/matomo.php/",
        "/piwik.php/extra",
        "/./matomo.php",
        "/x/../piwik.php",
        "/matomo%2Ephp",
    ];
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(track_at(&c, p, &format!("path-{i}")).await, 204, "{p}");
    }
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(
            c.wait_for(&format!("title = 'path-{i}'"), 1).await,
            1,
            "{p}"
        );
    }
    for p in [
        "/matomo.phpx",
        "/MATOMO.PHP",
        "/analytics/matomo.php",
        "/a%2F..%2Fmatomo.php",
    ] {
        assert_eq!(track_at(&c, p, "nope").await, 404, "{p}");
    }
}

#[tokio::test]
async fn everything_under_a_base_path() {
    let c = with_token("base_path = \"/analytics/\"");
    assert_eq!(track_at(&c, "/analytics/matomo.php", "base-1").await, 204);
    assert_eq!(track_at(&c, "//analytics//piwik.php", "base-2").await, 204);
    assert_eq!(track_at(&c, "/matomo.php", "root").await, 404);
    assert_eq!(c.wait_for("title LIKE 'base-%'", 2).await, 2);

    let script = http()
        .get(c.url("/analytics/tally.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_eq!(
        http()
            .get(c.url("/tally.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let optout = http()
        .get(c.url("/analytics/optout?idsite=1&lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(optout.status(), 200);
    // The page's form posts relative to itself, so it stays under the prefix.
    assert!(optout.text().await.unwrap().contains("action=\"optout\""));

    let (s, v) = post_form(
        &c,
        "/analytics/",
        &api("SitesManager.getSiteFromId", &[("idSite", "1")]),
    )
    .await;
    assert_eq!((s, v["idsite"].clone()), (200, json!("1")));
    let (s, _) = post_form(
        &c,
        "/",
        &api("SitesManager.getSiteFromId", &[("idSite", "1")]),
    )
    .await;
    assert_eq!(s, 404);
    // The start banner names the tracker's URL under the prefix.
    assert!(c.logs().contains("/analytics/matomo.php?idsite=1"));
    // Monitoring stays where it was.
    assert_eq!(
        http().get(c.url("/health")).send().await.unwrap().status(),
        200
    );
}

#[test]
fn an_invalid_base_path_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), "unused", "base_path = \"analytics\"");
    let mut child = std::process::Command::new(common::tally_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A collector that accepted the key would serve on; give it a few seconds, then stop it.
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > std::time::Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = status.expect("tally started with base_path = \"analytics\"");
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("base_path"), "{stderr}");
}

#[test]
fn snippet_includes_the_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        "unused",
        &format!("base_path = \"/analytics\"\n{}", common::SITE),
    );
    let out = std::process::Command::new(common::tally_bin())
        .args(["snippet", "--site", "1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = common::succeeded(&out);
    // Without `public_url` the URL is guessed from `listen`, under the prefix.
    assert!(text.contains("/analytics/\""), "{text}");
    assert!(text.contains("/analytics/optout?idsite=1"), "{text}");
}
