//! `tally snippet`: the HTML an operator pastes into a site, and the HTML that links or embeds
//! the opt-out page from its privacy policy.

use url::Url;

use super::escape_html;
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
            Url::parse(&format!("http://{}/", config.listen)).expect("an address is a valid host"),
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

/// The tracking snippet for site `site_id`, then the opt-out iframe and link.
pub fn render(config: &Config, site_id: u32) -> Result<String, SnippetError> {
    let site = config
        .site(site_id)
        .ok_or(SnippetError::UnknownSite(site_id))?;
    let (base, _) = base_url(config);
    // A URL serialises without quotes, backslashes or angle brackets, so it can stand in a
    // JavaScript string as it is; the attribute copies are escaped all the same.
    let u = base.as_str();
    let optout = base.join("optout").expect("a relative path joins");
    let optout_en = escape_html(&format!("{optout}?idsite={}&lang=en", site.id)).into_owned();
    let name = escape_html(&site.name);
    Ok(format!(
        r#"<!-- tally -->
<script>
  var _paq = window._paq = window._paq || [];
  _paq.push(['trackPageView']);
  _paq.push(['enableLinkTracking']);
  (function() {{
    var u="{u}";
    _paq.push(['setTrackerUrl', u+'matomo.php']);
    _paq.push(['setSiteId', '{id}']);
    var d=document, g=d.createElement('script'), s=d.getElementsByTagName('script')[0];
    g.async=true; g.src=u+'tally.js'; s.parentNode.insertBefore(g,s);
  }})();
</script>
<!-- end tally -->

<!-- tally opt-out for {name}: embed it in the privacy policy (lang=en or lang=de) -->
<iframe src="{optout_en}" title="Web analytics opt-out" width="100%" height="640" style="border:0"></iframe>

<!-- or link to it -->
<a href="{optout_en}">Opt out of web analytics</a>
"#,
        id = site.id,
    ))
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
        assert!(s.contains("for A &amp; B"));
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
    fn unknown_site_is_an_error() {
        let e = render(&config(""), 99).unwrap_err();
        assert!(e.to_string().contains("99"));
    }
}
