//! Accounts, sessions and shared links over HTTP against a real `tally serve` and ClickHouse:
//! `tally user` with the real binary, the sign-in page, the session cookie, CSRF, the API's
//! three kinds of callers, the admin endpoints, revocation and removal within the refresh time,
//! sign-out, the throttle on password guessing, and that visitors never get a cookie from any
//! of this. Also the pruning of expired sessions.

mod common;

use std::time::Duration;

use common::{Collector, OTHER_SITE, raw, set_cookies};
use serde_json::{Value, json};

/// `tally user <args>` on the collector's configuration with `stdin` as its input.
fn tally_user(c: &Collector, args: &[&str], stdin: &str) -> Result<String, String> {
    c.run_tally(&[&["user"], args].concat(), stdin)
}

/// Signs in with the form, as a browser on the collector's own page would; returns the
/// response.
async fn sign_in(c: &Collector, name: &str, password: &str) -> reqwest::Response {
    raw()
        .post(c.url("/login"))
        .header("origin", &c.base)
        .form(&[("name", name), ("password", password), ("next", "")])
        .send()
        .await
        .unwrap()
}

/// The `name=value` of the session cookie a sign-in set.
fn session_of(r: &reqwest::Response) -> String {
    let cookies = set_cookies(r);
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let c = cookies[0];
    assert!(c.starts_with("tally_session="), "{c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=1209600"] {
        assert!(c.contains(attr), "{attr} missing: {c}");
    }
    assert!(!c.contains("Secure"), "plain http: {c}");
    c.split(';').next().unwrap().to_string()
}

/// The shell's configuration for a session cookie or a share URL.
async fn shell_config(c: &Collector, path: &str, cookie: Option<&str>) -> Value {
    let mut req = raw().get(c.url(path));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    config_in(&r.text().await.unwrap())
}

fn config_in(html: &str) -> Value {
    let start = html.find(r#"id="tally-config">"#).expect("config element") + 18;
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

/// `POST /api/v2/query` for `site` with these headers: the status.
async fn query(c: &Collector, site: u32, headers: &[(&str, &str)]) -> u16 {
    let mut req = raw()
        .post(c.url("/api/v2/query"))
        .header("content-type", "application/json")
        .body(json!({"site_id": site, "metrics": ["visitors"], "date_range": "7d"}).to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Waits up to `secs` for `check` to hold.
async fn eventually<F: AsyncFnMut() -> bool>(secs: u64, mut check: F) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn accounts_sessions_links_and_the_api() {
    let c = Collector::start(&format!("[api]\nkey_refresh_secs = 1\n{OTHER_SITE}"));

    // --- tally user ---
    let short = tally_user(&c, &["add", "ada", "--site", "1"], "too short\n").unwrap_err();
    assert!(short.contains("at least 10 characters"), "{short}");
    assert!(tally_user(&c, &["add", "ada", "--site", "9"], "long enough pw\n").is_err());
    assert!(
        tally_user(&c, &["add", "ada"], "long enough pw\n").is_err(),
        "no site, no admin"
    );
    let added = tally_user(&c, &["add", "ada", "--site", "1"], "ada's password\n").unwrap();
    assert_eq!(added, "added ada (sites 1)\n");
    tally_user(&c, &["add", "root", "--admin"], "root password 1\n").unwrap();
    assert!(tally_user(&c, &["add", "ada", "--site", "1"], "another password\n").is_err());
    let list = tally_user(&c, &["list"], "").unwrap();
    assert!(
        list.contains("ada\tsites 1\t") && list.contains("root\tadmin\t"),
        "{list}"
    );
    assert!(!list.contains("argon2"), "never a hash: {list}");

    // --- signed out ---
    let home = raw().get(c.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 303);
    assert_eq!(home.headers()["location"], "/login");
    assert!(set_cookies(&home).is_empty());
    let form = raw().get(c.url("/login?lang=de")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csp = form.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(form.text().await.unwrap().contains("Passwort"));

    // --- sign-in: our origin only; one message for a wrong name or password ---
    let foreign = raw()
        .post(c.url("/login"))
        .header("origin", "http://evil.example")
        .form(&[("name", "ada"), ("password", "ada's password")])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    assert!(set_cookies(&foreign).is_empty());
    let wrong_pw = sign_in(&c, "ada", "not the password").await;
    assert_eq!(wrong_pw.status(), 401);
    let wrong_pw = wrong_pw.text().await.unwrap();
    let wrong_name = sign_in(&c, "nobody", "not the password")
        .await
        .text()
        .await
        .unwrap();
    assert!(wrong_pw.contains("The name or the password is wrong."));
    assert!(wrong_name.contains("The name or the password is wrong."));
    let ok = sign_in(&c, "ada", "ada's password").await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/");
    let ada = session_of(&ok);

    // --- the shell: ada's sites only ---
    let config = shell_config(&c, "/", Some(&ada)).await;
    assert_eq!(config["mode"], "session");
    assert_eq!(config["user"], json!({"name": "ada", "admin": false}));
    assert_eq!(config["sites"].as_array().unwrap().len(), 1);
    assert_eq!(config["sites"][0]["id"], 1);
    assert_eq!(config["admin"], Value::Null);
    assert_eq!(config["api"], "/api/v2/query");
    let csrf = config["csrf"].as_str().unwrap().to_string();
    assert_eq!(config["headers"]["X-Tally-CSRF"], csrf.as_str());

    // --- the API: cookie alone refused, with CSRF only ada's sites ---
    assert_eq!(query(&c, 1, &[("cookie", &ada)]).await, 401);
    assert_eq!(
        query(&c, 1, &[("cookie", &ada), ("x-tally-csrf", "wrong")]).await,
        401
    );
    assert_eq!(
        query(&c, 1, &[("cookie", &ada), ("x-tally-csrf", &csrf)]).await,
        200
    );
    assert_eq!(
        query(&c, 2, &[("cookie", &ada), ("x-tally-csrf", &csrf)]).await,
        401
    );
    assert_eq!(query(&c, 1, &[]).await, 401);

    // --- admin endpoints: ada is no admin; root is ---
    let admin = |path: &str, cookie: &str, csrf: &str| {
        raw()
            .get(c.url(path))
            .header("cookie", cookie)
            .header("x-tally-csrf", csrf)
            .send()
    };
    assert_eq!(
        admin("/admin/links", &ada, &csrf).await.unwrap().status(),
        403
    );
    let root = session_of(&sign_in(&c, "root", "root password 1").await);
    let root_config = shell_config(&c, "/", Some(&root)).await;
    assert_eq!(root_config["sites"].as_array().unwrap().len(), 2);
    assert_eq!(root_config["admin"]["links"], "/admin/links");
    let root_csrf = root_config["csrf"].as_str().unwrap().to_string();
    assert_eq!(
        admin("/admin/links", &root, "").await.unwrap().status(),
        403,
        "no CSRF"
    );
    let post = |path: &str, body: Value| {
        raw()
            .post(c.url(path))
            .header("cookie", &root)
            .header("x-tally-csrf", &root_csrf)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    // Keys from the page.
    let key = post(
        "/admin/keys",
        json!({"name": "from the page", "sites": [2]}),
    )
    .await
    .unwrap();
    assert_eq!(key.status(), 201);
    let key: Value = key.json().await.unwrap();
    let bearer = format!("Bearer {}", key["key"].as_str().unwrap());
    assert_eq!(query(&c, 2, &[("authorization", &bearer)]).await, 200);
    let keys: Value = admin("/admin/keys", &root, &root_csrf)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"][0]["name"], "from the page");
    assert!(
        !keys.to_string().contains("tally_"),
        "keys are shown once: {keys}"
    );
    // Revoked from the page: this collector refuses it at once (the others within the refresh
    // time), as the page says.
    let id = keys["keys"][0]["id"].as_str().unwrap();
    let revoked = post(&format!("/admin/keys/{id}/revoke"), json!({}))
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(query(&c, 2, &[("authorization", &bearer)]).await, 401);
    let bad = post("/admin/keys", json!({"sites": [7]})).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].is_string());

    // --- a public shared link for site 2 ---
    let link: Value = post("/admin/links", json!({"site": 2, "name": "board"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = link["url"].as_str().unwrap().to_string();
    let token = url.rsplit('/').next().unwrap().to_string();
    assert!(url.starts_with(&format!("{}/share/", c.base)), "{url}");
    let share = shell_config(&c, &format!("/share/{token}"), None).await;
    assert_eq!(share["mode"], "share");
    assert_eq!(share["user"], Value::Null);
    assert_eq!(share["sites"][0]["id"], 2);
    assert_eq!(share["headers"]["X-Tally-Share"], token.as_str());
    assert_eq!(query(&c, 2, &[("x-tally-share", &token)]).await, 200);
    assert_eq!(query(&c, 1, &[("x-tally-share", &token)]).await, 401);
    // Framed only by site 2's own domains.
    let r = raw()
        .get(c.url(&format!("/share/{token}")))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://other.net http://other.net"),
        "{csp}"
    );

    // --- a protected link ---
    let secret: Value = post(
        "/admin/links",
        json!({"site": 1, "name": "board", "password": "link password"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret_token = secret["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let page = raw()
        .get(c.url(&format!("/share/{secret_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Framed, like the link's dashboard, by its own site's pages only.
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'self' ") && !csp.contains("other.net"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains(r#"type="password""#));
    assert_eq!(query(&c, 1, &[("x-tally-share", &secret_token)]).await, 401);
    let unlock = |pw: &'static str| {
        raw()
            .post(c.url(&format!("/share/{secret_token}")))
            .header("origin", &c.base)
            .form(&[("password", pw)])
            .send()
    };
    assert_eq!(unlock("wrong one!").await.unwrap().status(), 401);
    let opened = unlock("link password").await.unwrap();
    assert_eq!(opened.status(), 200);
    assert!(set_cookies(&opened).is_empty());
    let opened = config_in(&opened.text().await.unwrap());
    let grant = opened["headers"]["X-Tally-Share-Grant"]
        .as_str()
        .unwrap()
        .to_string();
    let with_grant = [
        ("x-tally-share", secret_token.as_str()),
        ("x-tally-share-grant", grant.as_str()),
    ];
    assert_eq!(query(&c, 1, &with_grant).await, 200);
    assert_eq!(
        query(
            &c,
            1,
            &[
                ("x-tally-share", &secret_token),
                ("x-tally-share-grant", "x")
            ]
        )
        .await,
        401
    );

    // --- revoking the public link: refused here at once, elsewhere within the refresh time ---
    let links: Value = admin("/admin/links", &root, &root_csrf)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["url"].as_str() == Some(url.as_str()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked = post(&format!("/admin/links/{id}/revoke"), json!({}))
        .await
        .unwrap();
    assert_eq!(
        revoked.json::<Value>().await.unwrap(),
        json!({"revoked": true})
    );
    assert_eq!(
        query(&c, 2, &[("x-tally-share", &token)]).await,
        401,
        "a revoked link still works on the collector that revoked it"
    );
    let gone = raw()
        .get(c.url(&format!("/share/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);

    // --- a removed user's session is refused ---
    tally_user(&c, &["remove", "ada"], "").unwrap();
    assert!(
        eventually(5, async || {
            query(&c, 1, &[("cookie", &ada), ("x-tally-csrf", &csrf)]).await == 401
        })
        .await,
        "a removed user's session still works"
    );
    assert_eq!(
        raw()
            .get(c.url("/"))
            .header("cookie", &ada)
            .send()
            .await
            .unwrap()
            .status(),
        303
    );

    // --- sign-out ends the session at once ---
    let no_csrf = raw()
        .post(c.url("/logout"))
        .header("cookie", &root)
        .form(&[("csrf", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);
    let out = raw()
        .post(c.url("/logout"))
        .header("cookie", &root)
        .form(&[("csrf", root_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    assert!(set_cookies(&out)[0].contains("Max-Age=0"));
    assert_eq!(
        query(&c, 1, &[("cookie", &root), ("x-tally-csrf", &root_csrf)]).await,
        401
    );

    // --- throttling, last: it locks this test's address too. The address failed three times
    // above (a wrong password, a wrong name, a wrong link password), so two more lock it. ---
    for _ in 0..2 {
        assert_eq!(sign_in(&c, "root", "wrong password").await.status(), 401);
    }
    let locked = sign_in(&c, "root", "root password 1").await;
    assert_eq!(locked.status(), 429);
    let retry: u64 = locked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(set_cookies(&locked).is_empty());
    let locked_link = unlock("link password").await.unwrap();
    assert_eq!(
        locked_link.status(),
        429,
        "the address is locked for links too"
    );
}

#[tokio::test]
async fn visitors_never_get_a_session_cookie() {
    let c = Collector::start("");
    let optout_cookie = "tally_ignore";
    let track = raw()
        .get(c.url("/matomo.php?idsite=1&rec=1&url=https%3A%2F%2Fexample.org%2F&send_image=0"))
        .send()
        .await
        .unwrap();
    assert!(track.status().is_success(), "{}", track.status());
    assert!(set_cookies(&track).is_empty(), "{:?}", set_cookies(&track));
    for path in [
        "/tally.js",
        "/matomo.js",
        "/optout?idsite=1",
        "/",
        "/login",
        "/assets/dashboard.js",
    ] {
        let r = raw().get(c.url(path)).send().await.unwrap();
        assert!(set_cookies(&r).is_empty(), "{path}: {:?}", set_cookies(&r));
    }
    // The opt-out form sets only the opt-out cookie.
    let r = raw()
        .post(c.url("/optout"))
        .header("origin", &c.base)
        .form(&[("idsite", "1"), ("choice", "out")])
        .send()
        .await
        .unwrap();
    for cookie in set_cookies(&r) {
        assert!(cookie.starts_with(&format!("{optout_cookie}=")), "{cookie}");
    }
}

#[tokio::test]
async fn expired_months_of_sessions_are_dropped() {
    let c = Collector::start("");
    let db = &c.db;
    let now = tally::time::now_unix();
    let month = 31 * 24 * 3600;
    for (table, cols) in [
        ("sessions", "'h', 'u', 1, now(), toDateTime(?)"),
        ("session_ends", "'h', now(), toDateTime(?)"),
        ("signin_tokens", "'h', 'u', toDateTime(?)"),
        ("signin_token_uses", "'h', 'n', now(), toDateTime(?)"),
    ] {
        for expires in [now - 2 * month, now + month] {
            common::query(&format!(
                "INSERT INTO {db}.{table} SELECT {}",
                cols.replace('?', &expires.to_string())
            ))
            .await;
        }
    }
    let cfg = tally::config::Config::load(Some(&c.dir.join("tally.toml"))).unwrap();
    let client = tally::store::client(common::clickhouse().url(), &cfg.clickhouse);
    let report = tally::prune::Pruner::new(client, &cfg)
        .run(now, false)
        .await;
    for table in [
        "sessions",
        "session_ends",
        "signin_tokens",
        "signin_token_uses",
    ] {
        let months = report.dropped_from(table);
        assert_eq!(months.len(), 1, "{table}: {months:?}");
        let left = common::query(&format!("SELECT count() FROM {db}.{table}")).await;
        assert_eq!(left, "1", "{table}: the live row stays");
    }
}
