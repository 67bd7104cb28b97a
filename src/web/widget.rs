//! The opt-out widget, `GET /optout.js?idsite=ID[&lang=en|de]`: a script a site includes in its
//! own privacy policy, which renders the opt-out there and keeps the visitor's choice
//! first-party, on the site, where `tally.js` reads it.
//!
//! A choice made on the collector's own page (`/optout`) is a cookie of the collector's site.
//! When the site is another site, browsers partition or block that cookie on the site's
//! tracking requests, and `tally.js` cannot see it at all. The widget's code
//! (`tracker-js/src/optout.js`, built into `tracker-js/dist/optout.js` and embedded here) runs
//! on the site's page instead and writes the site's own cookie and `localStorage`.
//!
//! The script is made per request from the live configuration: the site's name and the opt-out
//! page's texts in the chosen language, filled in by [`super::optout::facts`], the same
//! function the page uses. The values go in as one JSON object (`serde_json`), so nothing in a
//! site's name can end a string or the script.

use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};
use serde::Serialize;

use super::optout::facts;
use super::texts::{self, Lang, fill};
use crate::config::{Config, SiteConfig};
use crate::http::{self, Resp};

/// The built widget, as `npm run build` in `tracker-js/` leaves it.
pub const WIDGET_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tracker-js/dist/optout.js"
));

/// The global name in the widget's code that the site's configuration replaces. Exactly one
/// occurrence (tested), which the minifier leaves alone because it is a free variable.
const PLACEHOLDER: &str = "TALLY_OPTOUT";

/// Five minutes: a changed configuration (texts, retention, masking) reaches visitors soon,
/// while a visitor reading the policy and coming back loads it once; revalidation after that
/// is a `304` thanks to the `ETag`.
const CACHE_CONTROL: &str = "public, max-age=300";

/// What the widget shows, in the names `optout.js` reads.
#[derive(Serialize)]
struct WidgetConfig<'a> {
    lang: &'static str,
    cookie: &'a str,
    /// The names of the site's `*.name` domains: the widget sets its cookie for the one its page
    /// is on, so it holds on every subdomain.
    cookie_domains: Vec<&'a str>,
    title: String,
    intro: String,
    recorded_heading: &'static str,
    recorded: Vec<String>,
    not_recorded: &'static str,
    kept: &'static str,
    stored_where: String,
    retention: String,
    choice: &'static str,
    signals: &'static str,
    storage: String,
    status_in: &'static str,
    status_out: &'static str,
    status_signal: &'static str,
    button_out: &'static str,
    button_in: &'static str,
    saved: &'static str,
    not_saved: &'static str,
}

/// The widget's script for `site` in `lang`, ready to serve or to inline in a `<script>`
/// element: the JSON is escaped so that no `<`, `>`, `&` or line separator appears in it, hence
/// no `</script>` and nothing an HTML parser or an old JavaScript engine would stumble on.
pub fn script(config: &Config, site: &SiteConfig, lang: Lang) -> String {
    let t = lang.texts();
    let f = facts(
        site,
        lang,
        &config.privacy,
        &config.retention,
        config.geo.records_location(),
    );
    let cookie = config.privacy.optout_cookie.as_str();
    let values = WidgetConfig {
        lang: lang.code(),
        cookie,
        cookie_domains: site
            .domains
            .iter()
            .filter_map(|d| d.strip_prefix("*."))
            .collect(),
        title: f.title,
        intro: f.intro,
        recorded_heading: t.recorded,
        recorded: f.recorded,
        not_recorded: f.not_recorded,
        kept: t.kept,
        stored_where: f.stored_where,
        retention: f.retention,
        choice: t.choice,
        signals: t.signals,
        storage: fill(t.storage, &[("cookie", cookie), ("site", &site.name)]),
        status_in: t.status_in,
        status_out: t.status_out,
        status_signal: t.status_signal,
        button_out: t.button_out,
        button_in: t.button_in,
        saved: t.saved,
        not_saved: t.not_saved,
    };
    let json = serde_json::to_string(&values).expect("strings and lists serialise");
    let mut safe = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => safe.push_str("\\u003c"),
            '>' => safe.push_str("\\u003e"),
            '&' => safe.push_str("\\u0026"),
            '\u{2028}' => safe.push_str("\\u2028"),
            '\u{2029}' => safe.push_str("\\u2029"),
            c => safe.push(c),
        }
    }
    WIDGET_JS.replacen(PLACEHOLDER, &safe, 1)
}

/// `GET`/`HEAD /optout.js`.
pub fn serve<B>(config: &Config, req: &Request<B>) -> Resp {
    let idsite = http::query_param(req.uri(), "idsite");
    let lang = http::query_param(req.uri(), "lang");
    let Some(id) = idsite.as_deref().and_then(|s| s.trim().parse::<u32>().ok()) else {
        return http::json_error(
            StatusCode::BAD_REQUEST,
            "idsite must be the number of a configured site",
        );
    };
    let Some(site) = config.site(id) else {
        return http::json_error(
            StatusCode::NOT_FOUND,
            &format!("no site with idsite {id} is configured"),
        );
    };
    let lang = texts::choose(lang.as_deref(), req.headers());
    let mut resp =
        super::assets::generated_script(script(config, site, lang), req.headers(), CACHE_CONTROL);
    // Without `lang` the language comes from the header, so caches must key on it too.
    resp.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept-Encoding, Accept-Language"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str) -> Config {
        let text = format!(
            "[privacy]\nip_bytes = 1\n[[sites]]\nid = 3\nname = {}\ndomains = [\"example.org\"]\n",
            toml::Value::from(name)
        );
        Config::from_table(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn the_placeholder_is_there_once() {
        assert_eq!(WIDGET_JS.matches(PLACEHOLDER).count(), 1);
        assert!(!WIDGET_JS.contains("</"), "the code itself may be inlined");
    }

    #[test]
    fn texts_of_the_site_in_its_language() {
        let c = config("Beispiel");
        let de = script(&c, &c.sites[0], Lang::De);
        assert!(!de.contains(PLACEHOLDER));
        assert!(de.contains("\"title\":\"Webanalyse auf Beispiel\""), "{de}");
        assert!(de.contains("ihr letztes Byte wird auf null gesetzt"));
        assert!(de.contains("nach 7 Tagen gelöscht"));
        assert!(de.contains("\"cookie\":\"tally_ignore\""));
        assert!(de.contains("\"lang\":\"de\""));
        assert!(de.contains("\"cookie_domains\":[]"));
        let en = script(&c, &c.sites[0], Lang::En);
        assert!(
            en.contains("\"saved\":\"Your choice has been saved.\""),
            "{en}"
        );
    }

    #[test]
    fn a_hostile_name_stays_inside_its_string() {
        let name = "</script><script>alert(1)</script>\"'\\\u{2028}&";
        let c = config(name);
        let s = script(&c, &c.sites[0], Lang::En);
        assert!(!s.contains("</script"), "{s}");
        assert!(!s.contains('\u{2028}'));
        // The object between the code's last `(...,` and `);` is JSON that gives the name back.
        let start = s.rfind(",{\"lang\"").unwrap() + 1;
        let end = s.rfind(");").unwrap();
        let json = &s[start..end];
        assert!(!json.contains('<') && !json.contains('&'), "{json}");
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["title"], format!("Web analytics on {name}"));
    }
}
