//! The privacy statement follows the configuration: `tally privacy-statement` (the real binary)
//! under changed settings, in English and German, and the same text served at `/privacy` by a
//! running collector, escaped, without a script, framable by the site only.

mod common;

use common::{Collector, tally_bin};

/// `tally privacy-statement --site 1 --lang LANG --format text` with `extra` configuration.
fn statement(extra: &str, lang: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tally.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"https://stats.example.org\"\n{extra}\n\n\
             [[sites]]\nid = 1\nname = \"Example\"\ndomains = [\"example.org\"]\n"
        ),
    )
    .unwrap();
    let out = std::process::Command::new(tally_bin())
        .args(["privacy-statement", "--site", "1", "--lang", lang])
        .args(["--format", "text", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    common::succeeded(&out)
}

#[test]
fn the_statement_follows_the_configuration_in_both_languages() {
    // The statement's "48 hours" is the visitor secrets' lifetime.
    assert_eq!(tally::enrich::visitor::SECRET_LIFETIME, 48 * 3600);
    for bytes in [1, 2, 3] {
        let en = statement(&format!("[privacy]\nip_bytes = {bytes}"), "en");
        let de = statement(&format!("[privacy]\nip_bytes = {bytes}"), "de");
        let (v4, v6) = match bytes {
            1 => ("198.51.100.0", 64),
            2 => ("198.51.0.0", 48),
            _ => ("198.0.0.0", 24),
        };
        assert!(
            en.contains(&format!("198.51.100.23 is stored as {v4}")),
            "{en}"
        );
        assert!(en.contains(&format!("only the first {v6} bits")), "{en}");
        assert!(
            de.contains(&format!("aus 198.51.100.23 wird zum Beispiel {v4}")),
            "{de}"
        );
        assert!(de.contains(&format!("nur die ersten {v6} Bit")), "{de}");
    }

    let en = statement("", "en");
    let de = statement("", "de");
    assert!(en.contains(
        "If your browser sends Do Not Track or Global Privacy Control, nothing is recorded."
    ));
    assert!(de.contains("Sendet Ihr Browser die Einstellung Do Not Track oder Global Privacy Control, wird nichts erfasst."));
    assert!(en.contains("determined from the shortened IP address"));
    assert!(de.contains("ermittelt aus der gekürzten IP-Adresse"));
    assert!(en.contains("after 7 days at the latest") && en.contains("after 180 days"));
    assert!(de.contains("spätestens nach 7 Tagen") && de.contains("nach 180 Tagen"));
    assert!(en.contains("https://stats.example.org/optout?idsite=1&lang=en"));
    assert!(de.contains("https://stats.example.org/optout?idsite=1&lang=de"));
    assert!(en.contains("sets no cookies"));

    let en = statement("[privacy]\nrespect_dnt = false", "en");
    let de = statement("[privacy]\nrespect_dnt = false", "de");
    assert!(en.contains("If your browser sends Global Privacy Control, nothing is recorded."));
    assert!(en.contains("The Do Not Track setting of your browser is not evaluated"));
    assert!(de.contains("Die Einstellung Do Not Track Ihres Browsers wird nicht ausgewertet"));

    let en = statement("[geo]\nauto = false", "en");
    let de = statement("[geo]\nauto = false", "de");
    assert!(
        en.contains("Your location is not determined.") && !en.contains("approximate location")
    );
    assert!(
        de.contains("Ihr Standort wird nicht ermittelt.") && !de.contains("ungefährer Standort")
    );
    let en = statement("[geo]\nuse_full_ip = true", "en");
    assert!(en.contains("determined from your full IP address, which is used for this lookup in memory only and is not stored"));

    let en = statement("[retention]\nraw_days = 3\naggregate_days = 90", "en");
    let de = statement("[retention]\nraw_days = 3\naggregate_days = 90", "de");
    assert!(
        en.contains("deleted after 3 days at the latest") && en.contains("after 90 days"),
        "{en}"
    );
    assert!(
        de.contains("spätestens nach 3 Tagen") && de.contains("nach 90 Tagen"),
        "{de}"
    );
    assert!(!en.contains("180") && !de.contains("180"));
}

#[test]
fn an_unknown_site_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tally.toml");
    std::fs::write(
        &config,
        "[[sites]]\nid = 1\nname = \"Example\"\ndomains = [\"example.org\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(tally_bin())
        .args(["privacy-statement", "--site", "9", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("site 9 is not configured"));
}

#[tokio::test]
async fn the_page_serves_the_same_statement() {
    let c = Collector::start(
        "public_url = \"https://stats.example.org\"\n\n[privacy]\nip_bytes = 1\nrespect_dnt = false\n\n\
         [retention]\nraw_days = 3\naggregate_days = 90\n\n[geo]\nauto = false\n",
    );
    let r = common::http()
        .get(c.url("/privacy?idsite=1&lang=de"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(csp.ends_with("frame-ancestors 'self' https://example.org http://example.org https://*.example.org http://*.example.org"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"de\">"));
    assert!(!html.contains("<script"), "{html}");
    assert!(html.contains("ihr letztes Byte wird vor jeder Speicherung auf null gesetzt (aus 198.51.100.23 wird zum Beispiel 198.51.100.0)"), "{html}");
    assert!(html.contains("Die Einstellung Do Not Track Ihres Browsers wird nicht ausgewertet"));
    assert!(html.contains("spätestens nach 3 Tagen") && html.contains("nach 90 Tagen"));
    assert!(html.contains("Ihr Standort wird nicht ermittelt."));
    assert!(html.contains(
        "<a href=\"https://stats.example.org/optout?idsite=1&#38;lang=de\" target=\"_top\">"
    ));

    // The browser's language without `lang`; the CLI prints the same words.
    let en = c
        .text_with(
            "/privacy?idsite=1",
            &[("accept-language", "en-GB,en;q=0.9")],
        )
        .await;
    assert!(en.contains("<html lang=\"en\">"));
    let cli = c
        .run_tally(
            &["privacy-statement", "--site", "1", "--format", "text"],
            "",
        )
        .unwrap();
    // Lines without characters the page escapes, as they are.
    let plain = |l: &&str| !l.contains(['\'', '&', '<', '>', '"']) && !l.contains("http");
    let mut compared = 0;
    for line in cli.lines().filter(|l| l.len() > 40).filter(plain) {
        let line = line.trim_start_matches("- ");
        assert!(en.contains(line), "not on the page: {line}");
        compared += 1;
    }
    assert!(compared >= 8, "{compared} lines compared:\n{cli}");

    let r = common::http()
        .get(c.url("/privacy?idsite=77"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
