//! `tally snippet`: the HTML an operator pastes into a site, and the HTML that links or embeds
//! the opt-out page from its privacy policy.

use askama::Template;
use url::Url;

use super::texts::Lang;
use crate::config::Config;

/// `tally snippet` cannot write a snippet.
#[derive(Debug, thiserror::Error)]
pub enum SnippetError {
    /// No `[[sites]]` entry has this id.
    #[error("no site with id {0} is configured (see [[sites]] in the configuration)")]
    UnknownSite(u32),
}

/// The collector's base URL as browsers reach it, ending in `/`, and whether it had to be
/// guessed from `listen` because `public_url` is not set.
pub fn base_url(config: &Config) -> (Url, bool) {
    let (mut url, guessed) = match config
        .public_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
    {
        Some(u) => (u, false),
        None => (
            // `base_path` is normalised at load to plain segments, so the URL stays valid.
            Url::parse(&format!(
                "http://{}{}/",
                config.listen,
                config.base_path.as_deref().unwrap_or("")
            ))
            .expect("an address is a valid host"),
            true,
        ),
    };
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    (url, guessed)
}

/// The tracking snippet's inline script, as `templates/snippet_script.js` writes it.
#[derive(Template)]
#[template(path = "snippet_script.js", escape = "none")]
struct TrackingScript<'a> {
    /// The collector's base URL, ending in `/`.
    base: &'a str,
    id: u32,
    /// `privacy.optout_cookie` when it is not tally.js's default, so that the tracker checks
    /// the name the widget and the collector use.
    optout_cookie: Option<&'a str>,
}

/// The text of the tracking snippet's `<script>` element for `site` (what `tally snippet`
/// prints between `<script>` and `</script>`): the demo page carries it and its CSP allows it
/// by [`super::csp::script_hash`] of exactly this text.
pub fn tracking_script(config: &Config, site: &crate::config::SiteConfig) -> String {
    let (base, _) = base_url(config);
    let mut script = TrackingScript {
        base: base.as_str(),
        id: site.id,
        optout_cookie: Some(config.privacy.optout_cookie.as_str())
            .filter(|n| *n != crate::config::PrivacyConfig::default().optout_cookie),
    }
    .render()
    .expect("rendering into a String cannot fail");
    // askama drops the template file's last newline; the element's text ends with one.
    script.push('\n');
    script
}

/// The tracking snippet and the opt-out iframe and link, as `templates/snippet.html` lays them
/// out.
#[derive(Template)]
#[template(path = "snippet.html")]
struct Snippet<'a> {
    /// The tracking script ([`tracking_script`]).
    script: String,
    /// The opt-out page's URL, without a query.
    optout: &'a str,
    id: u32,
    name: &'a str,
    host: &'a str,
    cross_site: bool,
}

/// The opt-out widget for a site's privacy policy, as `templates/snippet_optout.html` lays it
/// out: the external script, and the inline script with its CSP hash.
#[derive(Template)]
#[template(path = "snippet_optout.html")]
struct OptoutSnippet<'a> {
    base: &'a str,
    origin: String,
    host: &'a str,
    cross_site: bool,
    id: u32,
    name: &'a str,
    lang: &'static str,
    inline: String,
    hash: String,
}

/// The opt-out widget for site `site_id` in `lang`: `<div id="tally-optout">` with the
/// collector's `/optout.js`, and the same widget inline with the CSP hash that allows it.
pub fn render_optout(config: &Config, site_id: u32, lang: Lang) -> Result<String, SnippetError> {
    let site = config
        .site(site_id)
        .ok_or(SnippetError::UnknownSite(site_id))?;
    let (base, _) = base_url(config);
    let host = base.host_str().unwrap_or("");
    let inline = super::widget::script(config, site, lang);
    let mut text = OptoutSnippet {
        base: base.as_str(),
        origin: base.origin().ascii_serialization(),
        host,
        cross_site: !super::optout::same_site_as(site, host),
        id: site.id,
        name: &site.name,
        lang: lang.code(),
        hash: super::csp::script_hash(&inline),
        inline,
    }
    .render()
    .expect("rendering into a String cannot fail");
    text.push('\n');
    Ok(text)
}

/// The tracking snippet for site `site_id`, then the opt-out iframe and link.
pub fn render(config: &Config, site_id: u32) -> Result<String, SnippetError> {
    let site = config
        .site(site_id)
        .ok_or(SnippetError::UnknownSite(site_id))?;
    let (base, _) = base_url(config);
    let optout = base.join("optout").expect("a relative path joins");
    let host = base.host_str().unwrap_or("");
    let mut text = Snippet {
        script: tracking_script(config, site),
        optout: optout.as_str(),
        id: site.id,
        name: &site.name,
        host,
        cross_site: !super::optout::same_site_as(site, host),
    }
    .render()
    .expect("rendering into a String cannot fail");
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text =
            format!("{extra}\n[[sites]]\nid = 4\nname = \"A & B\"\ndomains = [\"example.org\"]\n");
        Config::from_table(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn uses_public_url() {
        let c = config("public_url = \"https://analytics.example.org\"");
        let s = render(&c, 4).unwrap();
        assert!(
            s.contains(r#"var u="https://analytics.example.org/";"#),
            "{s}"
        );
        assert!(s.contains("_paq.push(['setSiteId', '4']);"));
        assert!(s.contains("u+'matomo.php'") && s.contains("u+'tally.js'"));
        assert!(s.contains(
            r#"<iframe src="https://analytics.example.org/optout?idsite=4&amp;lang=en""#
        ));
        // Escaped by the template: `&` as askama writes it.
        assert!(s.contains("for A &#38; B"), "{s}");
        assert!(s.starts_with("<!-- tally -->\n<script>\n"));
    }

    #[test]
    fn keeps_a_path_prefix() {
        let c = config("public_url = \"https://example.org/stats?x=1\"");
        let (base, guessed) = base_url(&c);
        assert_eq!(base.as_str(), "https://example.org/stats/");
        assert!(!guessed);
        assert!(
            render(&c, 4)
                .unwrap()
                .contains("https://example.org/stats/optout?idsite=4")
        );
    }

    #[test]
    fn falls_back_to_listen() {
        let c = config("listen = \"127.0.0.1:9090\"");
        let (base, guessed) = base_url(&c);
        assert_eq!(base.as_str(), "http://127.0.0.1:9090/");
        assert!(guessed);
    }

    #[test]
    fn the_base_url_is_a_javascript_string_and_names_are_escaped() {
        let c = config("public_url = \"https://a.example.org/it's/</script>\"");
        let s = render(&c, 4).unwrap();
        // The URL crate percent-encodes `<`, `>` and `"`; the JSON filter escapes `'`, so
        // nothing in the string can end it or the script element.
        assert!(
            s.contains(r#"var u="https://a.example.org/it\u0027s/%3C/script%3E/";"#),
            "{s}"
        );
        assert_eq!(s.matches("</script>").count(), 1);
        let evil = Config::from_table(
            "[[sites]]\nid = 4\nname = \"--> <script>x</script>\"\ndomains = [\"example.org\"]"
                .parse()
                .unwrap(),
        )
        .unwrap();
        let s = render(&evil, 4).unwrap();
        assert!(
            s.contains("for --&#62; &#60;script&#62;x&#60;/script&#62;. Best"),
            "{s}"
        );
        assert_eq!(
            s.matches("-->").count(),
            4,
            "only the snippet's own comments end"
        );
    }

    #[test]
    fn a_renamed_optout_cookie_is_passed_to_the_tracker() {
        let s = render(&config(""), 4).unwrap();
        assert!(!s.contains("setOptOutCookieName"), "{s}");
        let c = config("[privacy]\noptout_cookie = \"no_stats\"");
        let s = render(&c, 4).unwrap();
        assert!(
            s.contains("    _paq.push(['setOptOutCookieName', \"no_stats\"]);\n"),
            "{s}"
        );
    }

    #[test]
    fn unknown_site_is_an_error() {
        let e = render(&config(""), 99).unwrap_err();
        assert!(e.to_string().contains("99"));
    }
}
