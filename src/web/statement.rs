//! The privacy statement: the section an operator pastes into the site's privacy policy,
//! `tally privacy-statement --site ID --lang en|de` (Markdown or plain text), and the same
//! served as a page, `GET /privacy?idsite=ID[&lang=en|de]`, to link to or embed.
//!
//! Every sentence that depends on a setting is made from the live configuration, so the
//! statement cannot promise what the collector does not do: the bytes of the address masked
//! (`privacy.ip_bytes`, with an IPv4 example and the IPv6 prefix kept), whether and from which
//! address the location is determined (`geo`), the cookies (none for counting; the site's
//! visitor cookie only with `[[sites]] visitor_cookie`; the opt-out cookie only on objection),
//! Do Not Track and Global Privacy Control (`privacy.respect_dnt`, `respect_gpc`), the retention
//! periods (`retention.raw_days`, `aggregate_days`), the opt-out page's URL (`public_url`), and
//! what access and erasure can and cannot be (`tally subject`).
//!
//! The page is built like the opt-out page: askama escapes every value, the only style is the
//! opt-out page's stylesheet allowed by its hash, there is no script at all, and the site's
//! own pages may frame it (`frame-ancestors`, as the opt-out page).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use askama::Template;
use hyper::header::{self, HeaderValue};
use hyper::{Request, StatusCode};

use super::statement_texts::{self, StatementTexts};
use super::texts::{self, Lang, fill};
use super::{csp, optout, snippet};
use crate::config::{Config, SiteConfig};
use crate::http::{self, Resp};
use crate::privacy::TruncatedIp;

/// One piece of a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A paragraph that is a link: its text, then its URL.
    Link(String, String),
}

/// A headed section of the statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading.
    pub heading: String,
    /// Its paragraphs, lists and links, in order.
    pub blocks: Vec<Block>,
}

/// The whole statement for one site in one language: plain text, rendered as Markdown, text
/// or HTML by the callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The language it is in.
    pub lang: Lang,
    /// Its title.
    pub title: String,
    /// Its sections.
    pub sections: Vec<Section>,
}

/// The statement for `site` from `config`, in `lang`.
pub fn statement(config: &Config, site: &SiteConfig, lang: Lang) -> Statement {
    let t = statement_texts::of(lang);
    let name = site.name.as_str();
    let on_site = [("site", name)];
    let privacy = &config.privacy;

    let mut recorded = vec![
        ip_item(t, privacy.ip_bytes),
        t.pages.into(),
        t.actions.into(),
    ];
    recorded.extend([t.returns.to_string(), t.device.to_string()]);
    let geo = config.geo.records_location();
    if geo {
        recorded.push(if config.geo.use_full_ip {
            t.geo_full.into()
        } else {
            t.geo_masked.into()
        });
    }
    recorded.push(t.time.into());
    let mut scope = vec![
        Block::Para(fill(t.scope_intro, &on_site)),
        Block::Para(t.list_intro.into()),
        Block::List(recorded),
    ];
    if !geo {
        scope.push(Block::Para(t.no_geo.into()));
    }
    scope.push(Block::Para(
        if site.visitor_cookie {
            t.key_cookie
        } else {
            t.key_plain
        }
        .into(),
    ));
    scope.push(Block::Para(t.not_recorded.into()));

    let mut cookies = vec![Block::Para(if site.visitor_cookie {
        fill(t.cookies_visitor, &on_site)
    } else {
        t.cookies_none.into()
    })];
    cookies.push(Block::Para(fill(
        t.cookies_optout,
        &[("cookie", &privacy.optout_cookie)],
    )));
    cookies.push(Block::Para(fill(t.cookies_dashboard, &on_site)));

    let retention = vec![Block::Para(fill(
        t.retention,
        &[
            ("raw_days", &config.retention.raw_days.to_string()),
            (
                "aggregate_days",
                &config.retention.aggregate_days.to_string(),
            ),
        ],
    ))];

    let mut objection = Vec::new();
    let signals = [
        (privacy.respect_dnt, "Do Not Track"),
        (privacy.respect_gpc, "Global Privacy Control"),
    ];
    let honoured: Vec<&str> = signals.iter().filter(|s| s.0).map(|s| s.1).collect();
    let ignored: Vec<&str> = signals.iter().filter(|s| !s.0).map(|s| s.1).collect();
    if !honoured.is_empty() {
        objection.push(Block::Para(fill(
            t.signals_honoured,
            &[("signals", &honoured.join(t.or))],
        )));
    }
    if !ignored.is_empty() {
        let template = if ignored.len() == 1 {
            t.ignored_one
        } else {
            t.ignored_many
        };
        objection.push(Block::Para(fill(
            template,
            &[("signals", &ignored.join(t.and))],
        )));
    }
    objection.push(Block::Para(t.optout.into()));
    objection.push(Block::Link(
        fill(t.optout_link, &on_site),
        optout_url(config, site, lang),
    ));
    objection.push(Block::Para(t.optout_after.into()));

    let rights = vec![Block::Para(
        if site.visitor_cookie {
            t.rights_cookie
        } else {
            t.rights_plain
        }
        .into(),
    )];

    let section = |heading: &str, blocks| Section {
        heading: heading.into(),
        blocks,
    };
    Statement {
        lang,
        title: t.title.into(),
        sections: vec![
            section(t.scope_heading, scope),
            section(t.cookies_heading, cookies),
            section(t.retention_heading, retention),
            section(t.objection_heading, objection),
            section(t.rights_heading, rights),
        ],
    }
}

/// The list item on the address: how many bytes are zeroed, an IPv4 example, the IPv6 prefix.
fn ip_item(t: &StatementTexts, ip_bytes: u8) -> String {
    let example = Ipv4Addr::new(198, 51, 100, 23);
    let truncated = TruncatedIp::new(IpAddr::V4(example), ip_bytes).to_string();
    // The prefix the truncation keeps of an all-ones address is the prefix it keeps of any.
    let v6_bits = match TruncatedIp::new(IpAddr::V6(Ipv6Addr::from(u128::MAX)), ip_bytes).addr() {
        IpAddr::V6(v6) => u128::from(v6).leading_ones(),
        IpAddr::V4(_) => 0,
    };
    let values = [
        ("bytes", ip_bytes.clamp(1, 3).to_string()),
        ("example", example.to_string()),
        ("truncated", truncated),
        ("v6_bits", v6_bits.to_string()),
    ];
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // The same clamp as the truncation itself: what is said is what is done.
    let template = if ip_bytes.clamp(1, 3) == 1 {
        t.ip_one
    } else {
        t.ip_many
    };
    fill(template, &values)
}

/// The site's opt-out page as visitors reach it: `public_url` (or the listen address) +
/// `optout?idsite=ID&lang=..`.
pub fn optout_url(config: &Config, site: &SiteConfig, lang: Lang) -> String {
    let (mut url, _) = snippet::base_url(config);
    url.set_path(&format!("{}optout", url.path()));
    url.query_pairs_mut()
        .append_pair("idsite", &site.id.to_string())
        .append_pair("lang", lang.code());
    url.to_string()
}

impl Statement {
    /// Markdown: `##` title, `###` sections, `-` lists, `[text](url)` links; every text is
    /// escaped, so a site's name or a cookie name such as `_tly_id` stays literal.
    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n", md(&self.title));
        for s in &self.sections {
            out.push_str(&format!("\n### {}\n", md(&s.heading)));
            for b in &s.blocks {
                out.push('\n');
                match b {
                    Block::Para(p) => out.push_str(&format!("{}\n", md(p))),
                    Block::List(items) => {
                        for i in items {
                            out.push_str(&format!("- {}\n", md(i)));
                        }
                    }
                    Block::Link(text, url) => {
                        out.push_str(&format!("[{}](<{}>)\n", md(text), url));
                    }
                }
            }
        }
        out
    }

    /// Plain text: the title, each section's heading, paragraphs separated by blank lines,
    /// list items after `- `, a link as its text, a colon and the URL.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for s in &self.sections {
            out.push_str(&format!("\n{}\n", s.heading));
            for b in &s.blocks {
                out.push('\n');
                match b {
                    Block::Para(p) => out.push_str(&format!("{p}\n")),
                    Block::List(items) => {
                        for i in items {
                            out.push_str(&format!("- {i}\n"));
                        }
                    }
                    Block::Link(text, url) => out.push_str(&format!("{text}: {url}\n")),
                }
            }
        }
        out
    }

    /// The HTML page (`templates/privacy.html`), every value escaped.
    pub fn html(&self) -> String {
        PrivacyHtml {
            lang: self.lang.code(),
            style: optout::STYLE,
            title: &self.title,
            sections: &self.sections,
        }
        .render()
        .expect("rendering into a String cannot fail")
    }
}

/// Escapes the characters Markdown would read as markup.
fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The statement as a page.
#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyHtml<'a> {
    lang: &'static str,
    style: &'static str,
    title: &'a str,
    sections: &'a [Section],
}

/// `GET /privacy?idsite=ID[&lang=en|de]`: the statement of the site, in the language asked for
/// or else the browser's. An unknown or missing site is the opt-out page's 404.
pub fn page<B>(config: &Config, req: &Request<B>) -> Resp {
    let idsite = http::query_param(req.uri(), "idsite");
    let lang = http::query_param(req.uri(), "lang");
    let lang = texts::choose(lang.as_deref(), req.headers());
    let Some(site) = idsite
        .and_then(|s| s.trim().parse::<u32>().ok())
        .and_then(|id| config.site(id))
    else {
        return optout::unknown_site(config, lang);
    };
    // No script at all, and framed only by the site's own pages, as the opt-out page.
    let policy = csp::optout_policy(&optout::STYLE_HASH, None, None, &csp::frame_ancestors(site));
    let mut r = http::html(
        StatusCode::OK,
        statement(config, site, lang).html(),
        &policy,
    );
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        let text = format!(
            "public_url = \"https://stats.example.org/a\"\n{extra}\n\
             [[sites]]\nid = 3\nname = \"Example & <Co>\"\ndomains = [\"example.org\"]\n"
        );
        Config::from_table(toml::from_str(&text).unwrap()).unwrap()
    }

    fn both(extra: &str) -> [String; 2] {
        let c = config(extra);
        let site = c.site(3).unwrap();
        Lang::ALL.map(|l| statement(&c, site, l).text())
    }

    #[test]
    fn the_masked_bytes_follow_ip_bytes() {
        for (bytes, v4, v6, en, de) in [
            (1, "198.51.100.0", "64", "its last byte", "ihr letztes Byte"),
            (
                2,
                "198.51.0.0",
                "48",
                "the last 2 of its 4 bytes",
                "die letzten 2 ihrer",
            ),
            (
                3,
                "198.0.0.0",
                "24",
                "the last 3 of its 4 bytes",
                "die letzten 3 ihrer",
            ),
        ] {
            let [e, d] = both(&format!("[privacy]\nip_bytes = {bytes}\n"));
            assert!(
                e.contains(&format!("198.51.100.23 is stored as {v4}")),
                "{e}"
            );
            assert!(e.contains(&format!("the first {v6} bits")), "{e}");
            assert!(e.contains(en), "{e}");
            assert!(
                d.contains(&format!("aus 198.51.100.23 wird zum Beispiel {v4}")),
                "{d}"
            );
            assert!(d.contains(&format!("die ersten {v6} Bit")), "{d}");
            assert!(d.contains(de), "{d}");
        }
    }

    #[test]
    fn signals_follow_respect_dnt_and_gpc() {
        let [e, d] = both("");
        assert!(e.contains(
            "If your browser sends Do Not Track or Global Privacy Control, nothing is recorded."
        ));
        assert!(d.contains("Sendet Ihr Browser die Einstellung Do Not Track oder Global Privacy Control, wird nichts erfasst."));
        assert!(!e.contains("not evaluated") && !d.contains("nicht ausgewertet"));
        let [e, d] = both("[privacy]\nrespect_dnt = false\n");
        assert!(e.contains("If your browser sends Global Privacy Control, nothing"));
        assert!(e.contains("The Do Not Track setting of your browser is not evaluated"));
        assert!(d.contains("Die Einstellung Do Not Track Ihres Browsers wird nicht ausgewertet"));
        assert!(!d.contains("Do Not Track oder"));
        let [e, d] = both("[privacy]\nrespect_dnt = false\nrespect_gpc = false\n");
        assert!(!e.contains("If your browser sends"));
        assert!(e.contains(
            "The Do Not Track and Global Privacy Control settings of your browser are not evaluated"
        ));
        assert!(d.contains("Die Einstellungen Do Not Track und Global Privacy Control Ihres Browsers werden nicht ausgewertet"));
    }

    #[test]
    fn location_follows_geo() {
        let [e, d] = both("[geo]\nauto = false\n");
        assert!(e.contains("Your location is not determined."));
        assert!(d.contains("Ihr Standort wird nicht ermittelt."));
        assert!(!e.contains("approximate location"));
        let [e, d] = both("");
        assert!(e.contains("determined from the shortened IP address"));
        assert!(d.contains("ermittelt aus der gekürzten IP-Adresse"));
        let [e, d] = both("[geo]\nuse_full_ip = true\n");
        assert!(e.contains(
            "determined from your full IP address, which is used for this lookup in memory only"
        ));
        assert!(d.contains("ermittelt aus Ihrer vollständigen IP-Adresse"));
        assert!(!e.contains("Your location is not determined."));
    }

    #[test]
    fn retention_follows_the_configuration() {
        let [e, d] = both("[retention]\nraw_days = 3\naggregate_days = 90\n");
        assert!(e.contains("deleted after 3 days at the latest"), "{e}");
        assert!(e.contains("they are deleted after 90 days"), "{e}");
        assert!(d.contains("spätestens nach 3 Tagen gelöscht"), "{d}");
        assert!(d.contains("nach 90 Tagen gelöscht"), "{d}");
        let [e, _] = both("");
        assert!(e.contains("after 7 days at the latest") && e.contains("after 180 days"));
    }

    #[test]
    fn cookies_and_rights_follow_the_visitor_cookie() {
        let [e, d] = both("");
        assert!(e.contains("sets no cookies and stores nothing in your browser"));
        assert!(d.contains("setzt die Webanalyse keine Cookies"));
        assert!(e.contains("a cookie named tally_ignore for up to two years"));
        assert!(!e.contains("_tly_id") && !d.contains("_tly_id"));
        assert!(e.contains("Art. 11 GDPR") && d.contains("Art. 11 DSGVO"));
        let c = config("[privacy]\noptout_cookie = \"no_stats\"\n");
        let mut site = c.site(3).unwrap().clone();
        site.visitor_cookie = true;
        for lang in Lang::ALL {
            let s = statement(&c, &site, lang).text();
            assert!(s.contains("_tly_id") && s.contains("no_stats"), "{s}");
            assert!(!s.contains("Art. 11"), "{s}");
        }
    }

    #[test]
    fn the_optout_link_is_the_sites_page_under_public_url() {
        let c = config("");
        let s = statement(&c, c.site(3).unwrap(), Lang::De);
        let link = s
            .sections
            .iter()
            .flat_map(|s| &s.blocks)
            .find_map(|b| match b {
                Block::Link(_, url) => Some(url.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(link, "https://stats.example.org/a/optout?idsite=3&lang=de");
        assert!(s.markdown().contains(&format!("](<{link}>)")));
        assert!(s.text().contains(&format!(": {link}\n")));
    }

    #[test]
    fn markdown_escapes_and_html_escapes() {
        let c = config("[privacy]\noptout_cookie = \"a_b\"\n");
        let s = statement(&c, c.site(3).unwrap(), Lang::En);
        let m = s.markdown();
        assert!(m.starts_with("## Web analytics with tally\n"));
        assert!(m.contains("### Scope of processing"));
        assert!(
            m.contains("Example & \\<Co\\>") && m.contains("a\\_b"),
            "{m}"
        );
        let h = s.html();
        assert!(h.contains("Example &#38; &#60;Co&#62;"), "{h}");
        assert!(!h.contains("<Co>") && !h.contains("<script"));
        assert!(h.contains("href=\"https://stats.example.org/a/optout?idsite=3&#38;lang=en\""));
        assert!(h.contains("<html lang=\"en\">"));
    }
}
