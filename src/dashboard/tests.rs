use super::*;
use crate::test_support::header_map as h;

#[test]
fn pages() {
    assert_eq!(page_of("/login"), Some(Page::Login));
    assert_eq!(page_of("/login/once"), Some(Page::LoginOnce));
    assert_eq!(page_of("/logout"), Some(Page::Logout));
    assert_eq!(page_of("/assets/dashboard.js"), Some(Page::Script));
    assert_eq!(page_of("/share/abc"), Some(Page::Share("abc".into())));
    for bad in [
        "/share/",
        "/share/a/b",
        "/login/",
        "/assets/other.js",
        "/admin",
    ] {
        assert_eq!(page_of(bad), None, "{bad}");
    }
}

#[test]
fn config_json_cannot_end_its_script_element() {
    let json =
        serde_json::to_string(&serde_json::json!({"n": "</script><b>&\u{2028}\u{2029}"})).unwrap();
    let safe = script_safe_json(&json);
    assert!(
        !safe.contains('<') && !safe.contains('>') && !safe.contains('&'),
        "{safe}"
    );
    assert!(!safe.contains('\u{2028}') && !safe.contains('\u{2029}'));
    // The same value once parsed.
    let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
    assert_eq!(back["n"], "</script><b>&\u{2028}\u{2029}");
}

#[test]
fn next_stays_on_the_dashboard() {
    assert_eq!(safe_next("", "/").as_deref(), Some("/"));
    assert_eq!(safe_next("", "/?site=1").as_deref(), Some("/?site=1"));
    assert_eq!(safe_next("/a", "/a/").as_deref(), Some("/a/"));
    for bad in [
        "",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example",
        "x",
        "/a\n",
    ] {
        assert_eq!(safe_next("", bad), None, "{bad:?}");
    }
    assert_eq!(safe_next("/a", "/b/"), None);
    assert_eq!(safe_next("/a", "/ab"), None);
}

#[test]
fn sign_in_forms_only_from_our_origin() {
    let config = Config::from_table(
        "public_url = \"https://stats.example.org/\""
            .parse()
            .unwrap(),
    )
    .unwrap();
    let none = Config::from_table(toml::Table::new()).unwrap();
    assert!(same_origin(
        &none,
        &h(&[("sec-fetch-site", "same-origin")]),
        false
    ));
    assert!(!same_origin(
        &none,
        &h(&[("sec-fetch-site", "cross-site")]),
        false
    ));
    assert!(!same_origin(
        &none,
        &h(&[("sec-fetch-site", "same-site")]),
        false
    ));
    // Fetch metadata wins over a matching Origin.
    assert!(!same_origin(
        &none,
        &h(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]),
        false
    ));
    assert!(same_origin(
        &none,
        &h(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]),
        false
    ));
    assert!(!same_origin(
        &none,
        &h(&[
            ("origin", "https://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]),
        false
    ));
    assert!(!same_origin(
        &none,
        &h(&[("origin", "null"), ("host", "127.0.0.1:8080")]),
        false
    ));
    assert!(!same_origin(
        &none,
        &h(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ]),
        false
    ));
    // Neither header: refused.
    assert!(!same_origin(
        &none,
        &h(&[("host", "127.0.0.1:8080")]),
        false
    ));
    assert!(same_origin(
        &config,
        &h(&[("origin", "https://stats.example.org")]),
        true
    ));
    assert!(!same_origin(
        &config,
        &h(&[("origin", "https://example.org")]),
        true
    ));
}

#[test]
fn small_pages_are_not_framed_and_run_no_script() {
    let p = small_page_policy();
    assert!(p.contains("frame-ancestors 'none'"), "{p}");
    assert!(!p.contains("script-src"), "{p}");
    assert!(p.contains(&*STYLE_HASH));
}

#[test]
fn small_pages_use_the_shared_layout_with_tally_in_the_title() {
    let page = MessageHtml {
        lang: "de",
        style: STYLE,
        title: "Anmelden <x>",
        body: "b",
    }
    .render()
    .unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(page.contains("<html lang=\"de\">"), "{page}");
    assert!(
        page.contains("<title>Anmelden &#60;x&#62; · tally</title>"),
        "{page}"
    );
    assert!(page.contains("<h1>Anmelden &#60;x&#62;</h1>"), "{page}");
    assert!(page.contains(&format!("<style>{STYLE}</style>")), "{page}");
    assert!(page.contains("<p>b</p>"), "{page}");
}
