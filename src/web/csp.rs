//! The `Content-Security-Policy` of the opt-out page, and the hashes that let an inline style
//! or script through a policy (the page's own, and the widget's inline form for sites).
//!
//! The page needs nothing but its own inline stylesheet, its one small script and its own form,
//! so everything else is refused. Its one delicate directive is `frame-ancestors`: the page is meant to be embedded
//! in the site's privacy policy, so the site's own pages must be allowed to frame it, and no
//! one else (a foreign page framing it could trick visitors into clicking the button). No
//! `X-Frame-Options` is sent: it cannot list several origins, and browsers ignore it when
//! `frame-ancestors` is present anyway.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::digest;

use crate::config::SiteConfig;

/// The CSP source matching exactly `text` as the content of an inline `<style>` element.
pub fn style_hash(text: &str) -> String {
    let hash = digest::digest(&digest::SHA256, text.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(hash.as_ref()))
}

/// The CSP source matching exactly `text` as the content of an inline `<script>` element. The
/// same hash as [`style_hash`]: CSP hashes the element's text whatever the element.
pub fn script_hash(text: &str) -> String {
    style_hash(text)
}

/// The pages allowed to frame `site`'s opt-out page: `frame_ancestors` when configured, else
/// each of its domains over https and http, a `*.example.org` domain as both `example.org` and
/// CSP's `*.example.org` (which does not match the bare name).
pub fn frame_ancestors(site: &SiteConfig) -> Vec<String> {
    if let Some(configured) = &site.frame_ancestors {
        return configured.clone();
    }
    let mut sources: Vec<String> = Vec::new();
    for domain in &site.domains {
        let domain = domain.to_ascii_lowercase();
        let names = match domain.strip_prefix("*.") {
            Some(base) => vec![base.to_string(), domain.clone()],
            None => vec![domain.clone()],
        };
        for name in names {
            for scheme in ["https", "http"] {
                let source = format!("{scheme}://{name}");
                if !sources.contains(&source) {
                    sources.push(source);
                }
            }
        }
    }
    sources
}

/// The opt-out page's policy: only `style` (a [`style_hash`] source) may style it, only `script`
/// (a [`script_hash`] source, if any) may run, its form may
/// post to the collector and, when the visitor is to be sent back afterwards, redirect to
/// `return_origin` (Chrome applies `form-action` to the redirect after the post too), and only
/// the collector and `ancestors` may frame it.
pub fn optout_policy(
    style: &str,
    script: Option<&str>,
    return_origin: Option<&str>,
    ancestors: &[String],
) -> String {
    let mut form_action = String::from("'self'");
    if let Some(origin) = return_origin {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let mut frame = String::from("'self'");
    for a in ancestors {
        frame.push(' ');
        frame.push_str(a);
    }
    let script = script.map_or(String::new(), |s| format!("script-src {s}; "));
    format!(
        "default-src 'none'; style-src {style}; {script}form-action {form_action}; \
         base-uri 'none'; frame-ancestors {frame}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(domains: &[&str], frame_ancestors: Option<&[&str]>) -> SiteConfig {
        SiteConfig {
            id: 1,
            name: "S".into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            sensitive_params: Vec::new(),
            frame_ancestors: frame_ancestors.map(|f| f.iter().map(|d| d.to_string()).collect()),
            track_non_browsers: true,
            privacy_url: None,
            timezone: "UTC".into(),
            visit_timeout: 1800,
            visitor_cookie: false,
        }
    }

    #[test]
    fn hash_of_the_exact_text() {
        // printf 'body{color:red}' | openssl dgst -sha256 -binary | base64
        assert_eq!(
            style_hash("body{color:red}"),
            "'sha256-FcQqt3aNlV7AZnGV4zkQRVeCeJOxbMPnQSx258L803E='"
        );
    }

    #[test]
    fn ancestors_from_domains_with_wildcards() {
        assert_eq!(
            frame_ancestors(&site(&["Example.org", "*.example.org", "other.net"], None)),
            [
                "https://example.org",
                "http://example.org",
                "https://*.example.org",
                "http://*.example.org",
                "https://other.net",
                "http://other.net",
            ]
        );
    }

    #[test]
    fn configured_ancestors_replace_the_domains() {
        let s = site(&["example.org"], Some(&["https://intranet.example.net"]));
        assert_eq!(frame_ancestors(&s), ["https://intranet.example.net"]);
        let none = site(&["example.org"], Some(&[]));
        assert_eq!(
            optout_policy("'sha256-x'", None, None, &frame_ancestors(&none)),
            "default-src 'none'; style-src 'sha256-x'; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'self'"
        );
    }

    #[test]
    fn full_policy() {
        let p = optout_policy(
            "'sha256-x'",
            Some("'sha256-y'"),
            Some("https://www.example.org"),
            &frame_ancestors(&site(&["*.example.org"], None)),
        );
        assert_eq!(
            p,
            "default-src 'none'; style-src 'sha256-x'; script-src 'sha256-y'; \
             form-action 'self' https://www.example.org; base-uri 'none'; \
             frame-ancestors 'self' https://example.org http://example.org \
             https://*.example.org http://*.example.org"
        );
    }
}
