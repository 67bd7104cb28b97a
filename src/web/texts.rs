//! The words of the opt-out page, one table per language, and the choice of language.
//!
//! Texts are plain text, escaped by the page's template like everything else it shows;
//! `{name}` marks a value filled in first (the site's name, the number of bytes masked, ...).
//! A new language is one more [`Texts`] value and one more [`Lang`] variant.

use hyper::HeaderMap;
use hyper::header::ACCEPT_LANGUAGE;

/// A language the opt-out page speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English, also the fallback.
    En,
    /// German.
    De,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    /// The BCP 47 primary tag, as used in `lang=` and `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::De => "de",
        }
    }

    /// The language whose primary tag starts `tag` (`de`, `de-AT`, `DE-de`), if supported.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim();
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// The page's texts in this language.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }
}

/// The language for a request: the `lang` parameter if it names a supported language, else
/// the most preferred supported one in `Accept-Language`, else English.
pub fn choose(param: Option<&str>, headers: &HeaderMap) -> Lang {
    if let Some(lang) = param.and_then(Lang::from_tag) {
        return lang;
    }
    let mut ranked = crate::headers::weighted(
        headers
            .get_all(ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // Stable: among equal weights the visitor's own order stands.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
        .into_iter()
        .filter(|(_, q)| *q > 0.0)
        .find_map(|(tag, _)| Lang::from_tag(tag))
        .unwrap_or(Lang::En)
}

/// Everything the opt-out page says, in one language.
#[derive(Debug)]
pub struct Texts {
    /// Page title and heading. `{site}`.
    pub title: &'static str,
    /// What tally is and who gets the data. `{site}`.
    pub intro: &'static str,
    /// Status: visits are counted.
    pub status_in: &'static str,
    /// Status: opted out by the cookie.
    pub status_out: &'static str,
    /// Status: the browser's Do Not Track or Global Privacy Control setting already refuses.
    pub status_signal: &'static str,
    /// Shown after the form was sent.
    pub saved: &'static str,
    /// Heading of the list of what is recorded.
    pub recorded: &'static str,
    /// IP truncation when one byte is masked. `{example}`, `{truncated}`, `{v6_bits}`.
    pub ip_one: &'static str,
    /// IP truncation when several bytes are masked. `{bytes}`, `{example}`, `{truncated}`,
    /// `{v6_bits}`.
    pub ip_many: &'static str,
    /// Pages, referrer, time on page.
    pub pages: &'static str,
    /// How often the visitor comes back.
    pub returns: &'static str,
    /// Browser, system, device, screen, language.
    pub device: &'static str,
    /// Approximate location (only said when geolocation is configured).
    pub location: &'static str,
    /// What is never recorded.
    pub not_recorded: &'static str,
    /// Heading of where and how long.
    pub kept: &'static str,
    /// Where the data is stored. `{site}`.
    pub stored_where: &'static str,
    /// Retention. `{raw_days}`, `{aggregate_days}`.
    pub retention: &'static str,
    /// Heading of the visitor's choice.
    pub choice: &'static str,
    /// Do Not Track and Global Privacy Control are honoured.
    pub signals: &'static str,
    /// What the opt-out button does. `{cookie}`.
    pub cookie: &'static str,
    /// What the widget's button does, on the site's own page. `{cookie}`, `{site}`.
    pub storage: &'static str,
    /// The widget, when the browser did not keep the choice it just wrote.
    pub not_saved: &'static str,
    /// The opt-out page, when the form was sent but the browser did not send the cookie back.
    pub not_stored_here: &'static str,
    /// The opt-out page opened on its own on another site than the site's: a choice made there
    /// cannot reach the site's tracking. `{site}`.
    pub cross_site: &'static str,
    /// Link to the site's privacy policy with the widget (`privacy_url`). `{site}`.
    pub use_site_optout: &'static str,
    /// Where to opt out instead, when no `privacy_url` is configured. `{site}`.
    pub find_site_optout: &'static str,
    /// Button while counted.
    pub button_out: &'static str,
    /// Button while opted out.
    pub button_in: &'static str,
    /// Title of the page for an unknown site.
    pub unknown_title: &'static str,
    /// Body of the page for an unknown site.
    pub unknown_body: &'static str,
}

/// English.
pub static EN: Texts = Texts {
    title: "Web analytics on {site}",
    intro: "{site} counts its visitors with tally, a web analytics service run by the operator of {site} themselves, to learn which pages are read and how visitors find them. It builds no profile of you across websites and shows you no advertising.",
    status_in: "Your visits are currently counted, anonymously.",
    status_out: "You have opted out: your visits are not recorded.",
    status_signal: "Your browser asks websites not to track you (Do Not Track or Global Privacy Control), so your visits are not recorded, whatever you choose below.",
    saved: "Your choice has been saved.",
    recorded: "What is recorded",
    ip_one: "Your IP address, shortened on arrival: its last byte is set to zero ({example} is stored as {truncated}); of an IPv6 address only the first {v6_bits} bits are kept. The full address is never stored.",
    ip_many: "Your IP address, shortened on arrival: the last {bytes} of its 4 bytes are set to zero ({example} is stored as {truncated}); of an IPv6 address only the first {v6_bits} bits are kept. The full address is never stored.",
    pages: "The pages you visit, the page you came from (the referrer) and how long you stay on a page.",
    returns: "How often you come back, and how many days since your last visit.",
    device: "The type of your browser, operating system and device (computer, phone or tablet), your screen size and your preferred language.",
    location: "Your approximate location (country, region or city), looked up from your IP address.",
    not_recorded: "Not recorded: your name, your e-mail address, what you type into forms, or anything that would let the operator recognise you on other websites.",
    kept: "Where it is kept, and for how long",
    stored_where: "Everything is stored only on the operator's own server for {site}. It is not passed to an analytics company or anyone else.",
    retention: "Records of single visits are deleted after {raw_days} days; the statistics made from them (such as page views per day) after {aggregate_days} days.",
    choice: "Your choice",
    signals: "If your browser sends Do Not Track or Global Privacy Control, nothing is recorded.",
    cookie: "You can also opt out here. A cookie named {cookie} is then kept by your browser for up to two years and tells this service not to record your visits. If you delete your cookies, the opt-out is deleted with them.",
    storage: "If you opt out here, your browser keeps a cookie named {cookie} and an entry of the same name in its local storage for {site} for up to two years; the analytics script of {site} checks them and then sends nothing. If you delete your cookies and site data, the opt-out is deleted with them.",
    not_saved: "Your browser did not store your choice (it may block cookies and site data for this website), so it cannot take effect. The Do Not Track or Global Privacy Control setting of your browser always works.",
    not_stored_here: "Your browser did not store your choice on this page, so it cannot take effect from here.",
    cross_site: "This page belongs to the analytics service, which runs on a different website than {site}. Browsers keep a choice made here apart from {site}, so it would not reach the analytics on {site}.",
    use_site_optout: "Opt out on the privacy page of {site}",
    find_site_optout: "To opt out, please use the opt-out in the privacy policy of {site}.",
    button_out: "Opt out: do not record my visits",
    button_in: "Opt back in: count my visits again",
    unknown_title: "Unknown website",
    unknown_body: "No website with this number is measured here. Please check the link.",
};

/// German.
pub static DE: Texts = Texts {
    title: "Webanalyse auf {site}",
    intro: "{site} zählt seine Besucher mit tally, einem Webanalyse-Dienst, den der Betreiber von {site} selbst betreibt, um zu erfahren, welche Seiten gelesen werden und wie Besucher sie finden. Der Dienst erstellt kein websiteübergreifendes Profil von Ihnen und zeigt Ihnen keine Werbung.",
    status_in: "Ihre Besuche werden derzeit anonym gezählt.",
    status_out: "Sie haben widersprochen: Ihre Besuche werden nicht erfasst.",
    status_signal: "Ihr Browser bittet Websites, Sie nicht zu verfolgen (Do Not Track oder Global Privacy Control). Ihre Besuche werden deshalb nicht erfasst, unabhängig von Ihrer Wahl unten.",
    saved: "Ihre Auswahl wurde gespeichert.",
    recorded: "Was erfasst wird",
    ip_one: "Ihre IP-Adresse, gekürzt beim Eintreffen: ihr letztes Byte wird auf null gesetzt (aus {example} wird {truncated}); von einer IPv6-Adresse bleiben nur die ersten {v6_bits} Bit erhalten. Die vollständige Adresse wird nie gespeichert.",
    ip_many: "Ihre IP-Adresse, gekürzt beim Eintreffen: die letzten {bytes} ihrer 4 Bytes werden auf null gesetzt (aus {example} wird {truncated}); von einer IPv6-Adresse bleiben nur die ersten {v6_bits} Bit erhalten. Die vollständige Adresse wird nie gespeichert.",
    pages: "Die Seiten, die Sie aufrufen, die Seite, von der Sie kommen (Referrer), und wie lange Sie auf einer Seite bleiben.",
    returns: "Wie oft Sie wiederkommen und wie viele Tage seit Ihrem letzten Besuch vergangen sind.",
    device: "Die Art Ihres Browsers, Betriebssystems und Geräts (Computer, Telefon oder Tablet), Ihre Bildschirmgröße und Ihre bevorzugte Sprache.",
    location: "Ihr ungefährer Standort (Land, Region oder Stadt), ermittelt aus Ihrer IP-Adresse.",
    not_recorded: "Nicht erfasst werden: Ihr Name, Ihre E-Mail-Adresse, Eingaben in Formulare und nichts, womit der Betreiber Sie auf anderen Websites wiedererkennen könnte.",
    kept: "Wo und wie lange die Daten gespeichert werden",
    stored_where: "Alles wird ausschließlich auf dem eigenen Server des Betreibers von {site} gespeichert. Nichts davon wird an ein Analyseunternehmen oder andere weitergegeben.",
    retention: "Aufzeichnungen einzelner Besuche werden nach {raw_days} Tagen gelöscht, die daraus berechneten Statistiken (etwa Seitenaufrufe pro Tag) nach {aggregate_days} Tagen.",
    choice: "Ihre Wahl",
    signals: "Wenn Ihr Browser Do Not Track oder Global Privacy Control sendet, wird nichts erfasst.",
    cookie: "Sie können hier auch widersprechen. Ihr Browser speichert dann bis zu zwei Jahre lang ein Cookie namens {cookie}, das diesem Dienst sagt, Ihre Besuche nicht zu erfassen. Wenn Sie Ihre Cookies löschen, ist auch der Widerspruch gelöscht.",
    storage: "Wenn Sie hier widersprechen, speichert Ihr Browser für {site} bis zu zwei Jahre lang ein Cookie namens {cookie} und einen gleichnamigen Eintrag im lokalen Speicher; das Analyse-Skript von {site} prüft sie und sendet dann nichts. Wenn Sie Ihre Cookies und Websitedaten löschen, ist auch der Widerspruch gelöscht.",
    not_saved: "Ihr Browser hat Ihre Auswahl nicht gespeichert (vielleicht blockiert er Cookies und Websitedaten für diese Website), sie kann deshalb nicht wirken. Die Einstellung Do Not Track oder Global Privacy Control Ihres Browsers wirkt immer.",
    not_stored_here: "Ihr Browser hat Ihre Auswahl auf dieser Seite nicht gespeichert, sie kann von hier aus deshalb nicht wirken.",
    cross_site: "Diese Seite gehört zum Analyse-Dienst, der auf einer anderen Website läuft als {site}. Browser halten eine hier getroffene Auswahl von {site} getrennt, sie würde die Analyse auf {site} deshalb nicht erreichen.",
    use_site_optout: "Auf der Datenschutzseite von {site} widersprechen",
    find_site_optout: "Bitte widersprechen Sie über die Widerspruchsmöglichkeit in der Datenschutzerklärung von {site}.",
    button_out: "Widersprechen: meine Besuche nicht erfassen",
    button_in: "Widerspruch aufheben: meine Besuche wieder zählen",
    unknown_title: "Unbekannte Website",
    unknown_body: "Eine Website mit dieser Nummer wird hier nicht gemessen. Bitte prüfen Sie den Link.",
};

/// `template` with every `{key}` replaced by its value, in one pass: a value is never searched
/// for placeholders itself, so a site named `{cookie}` stays `{cookie}`. Texts and values are
/// plain text and so is the result; the page's template escapes it.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let key = &after[..close];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn parameter_wins() {
        assert_eq!(choose(Some("de"), &accept("en")), Lang::De);
        assert_eq!(choose(Some("DE-at"), &HeaderMap::new()), Lang::De);
        assert_eq!(choose(Some("en"), &accept("de")), Lang::En);
    }

    #[test]
    fn unsupported_parameter_falls_back_to_the_header() {
        assert_eq!(choose(Some("fr"), &accept("de-DE,de;q=0.9")), Lang::De);
        assert_eq!(choose(Some(""), &accept("de")), Lang::De);
    }

    #[test]
    fn accept_language_by_weight() {
        assert_eq!(choose(None, &accept("de-DE,de;q=0.9,en;q=0.8")), Lang::De);
        assert_eq!(choose(None, &accept("en;q=0.5, de;q=0.7")), Lang::De);
        assert_eq!(choose(None, &accept("fr-FR, de;q=0.3, en;q=0.2")), Lang::De);
        assert_eq!(choose(None, &accept("fr, en, de")), Lang::En);
        assert_eq!(choose(None, &accept("de;q=0, en;q=0.1")), Lang::En);
        assert_eq!(choose(None, &accept("de;q=0")), Lang::En);
    }

    #[test]
    fn english_by_default() {
        assert_eq!(choose(None, &HeaderMap::new()), Lang::En);
        assert_eq!(choose(None, &accept("fr, es;q=0.5, *;q=0.1")), Lang::En);
        assert_eq!(choose(None, &accept("garbage;;;")), Lang::En);
    }

    #[test]
    fn every_language_fills_the_same_placeholders() {
        for lang in Lang::ALL {
            let t = lang.texts();
            assert!(t.title.contains("{site}") && t.intro.contains("{site}"));
            assert!(t.ip_many.contains("{bytes}") && t.ip_many.contains("{truncated}"));
            assert!(t.ip_one.contains("{v6_bits}") && !t.ip_one.contains("{bytes}"));
            assert!(t.retention.contains("{raw_days}") && t.retention.contains("{aggregate_days}"));
            assert!(t.cookie.contains("{cookie}"));
            assert!(t.stored_where.contains("{site}"));
            assert!(t.storage.contains("{cookie}") && t.storage.contains("{site}"));
            assert!(t.cross_site.contains("{site}") && t.use_site_optout.contains("{site}"));
            assert!(t.find_site_optout.contains("{site}"));
        }
    }

    #[test]
    fn fill_replaces_every_occurrence() {
        assert_eq!(
            fill("{a} and {a}, {b}", &[("a", "x"), ("b", "y")]),
            "x and x, y"
        );
        assert_eq!(fill("{a}{b}", &[("a", "{b}"), ("b", "y")]), "{b}y");
        assert_eq!(fill("{ {a} {c} }", &[("a", "x")]), "{ x {c} }");
        assert_eq!(fill("open {a", &[("a", "x")]), "open {a");
    }
}
