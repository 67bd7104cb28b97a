//! The words of the privacy statement ([`super::statement`]), one table per language.
//!
//! Written as an operator's privacy policy words it (the structure German institutions use:
//! scope of processing, cookies, duration of storage, objection, the data subject's rights),
//! in the first person plural of the operator. Plain text with `{name}` placeholders, filled
//! by [`super::texts::fill`]; escaped by the page's template, never by these tables.
//!
//! "48 hours" is the lifetime of a day's visitor secret (`enrich::visitor::SECRET_LIFETIME`,
//! which this read-side module may not import); `tests/privacy_statement.rs` pins the two
//! together.

use super::texts::Lang;

/// Everything the statement says, in one language.
#[derive(Debug)]
pub struct StatementTexts {
    /// Title of the statement and the page.
    pub title: &'static str,
    /// Heading: what is processed.
    pub scope_heading: &'static str,
    /// What tally is, where it runs, that nothing is passed on. `{site}`.
    pub scope_intro: &'static str,
    /// Introduces the list of what is recorded.
    pub list_intro: &'static str,
    /// The address when one byte is masked. `{example}`, `{truncated}`, `{v6_bits}`.
    pub ip_one: &'static str,
    /// The address when several bytes are masked. `{bytes}`, `{example}`, `{truncated}`,
    /// `{v6_bits}`.
    pub ip_many: &'static str,
    /// Page, title, referrer, next pages, dwell time.
    pub pages: &'static str,
    /// Outlinks, downloads, site search, events.
    pub actions: &'static str,
    /// New or returning, as the browser says.
    pub returns: &'static str,
    /// Browser, system, device, screen, language.
    pub device: &'static str,
    /// Location from the truncated address.
    pub geo_masked: &'static str,
    /// Location from the full address, in memory only.
    pub geo_full: &'static str,
    /// Date and time.
    pub time: &'static str,
    /// No location at all.
    pub no_geo: &'static str,
    /// The visitor key without a visitor cookie.
    pub key_plain: &'static str,
    /// The visitor key made from the visitor cookie's id.
    pub key_cookie: &'static str,
    /// What is never recorded, no profiling.
    pub not_recorded: &'static str,
    /// Heading: cookies.
    pub cookies_heading: &'static str,
    /// No cookie for counting.
    pub cookies_none: &'static str,
    /// The site's visitor cookie. `{site}`.
    pub cookies_visitor: &'static str,
    /// The opt-out cookie, only on request. `{cookie}`.
    pub cookies_optout: &'static str,
    /// The dashboard's session cookie concerns staff only. `{site}`.
    pub cookies_dashboard: &'static str,
    /// Heading: retention.
    pub retention_heading: &'static str,
    /// Retention. `{raw_days}`, `{aggregate_days}`.
    pub retention: &'static str,
    /// Heading: objection.
    pub objection_heading: &'static str,
    /// Browser signals that stop recording. `{signals}`.
    pub signals_honoured: &'static str,
    /// One browser signal that is not evaluated. `{signals}`.
    pub ignored_one: &'static str,
    /// Both browser signals are not evaluated. `{signals}`.
    pub ignored_many: &'static str,
    /// "or" between honoured signals.
    pub or: &'static str,
    /// "and" between ignored signals.
    pub and: &'static str,
    /// Before the opt-out link.
    pub optout: &'static str,
    /// The opt-out link's text. `{site}`.
    pub optout_link: &'static str,
    /// After the opt-out link.
    pub optout_after: &'static str,
    /// Heading: access and erasure.
    pub rights_heading: &'static str,
    /// Access and erasure with the visitor cookie's id, while the day's secret exists.
    pub rights_cookie: &'static str,
    /// No visitor cookie: records cannot be assigned to a person.
    pub rights_plain: &'static str,
}

/// The statement's texts in `lang`.
pub fn of(lang: Lang) -> &'static StatementTexts {
    match lang {
        Lang::En => &EN,
        Lang::De => &DE,
    }
}

/// English.
pub static EN: StatementTexts = StatementTexts {
    title: "Web analytics with tally",
    scope_heading: "Scope of processing",
    scope_intro: "On {site} we use the web analytics software tally to learn which pages are read and how visitors find them. tally runs solely on our own servers. The data it records is stored only there and is not passed on to anyone, neither to the makers of the software nor to any other third party. The software sends no data about visitors anywhere, and the pages load nothing for it from other providers.",
    list_intro: "When you open a page, the following is recorded:",
    ip_one: "your IP address, shortened before anything is stored: its last byte is set to zero (for example, {example} is stored as {truncated}); of an IPv6 address only the first {v6_bits} bits are kept. Your full IP address is never stored;",
    ip_many: "your IP address, shortened before anything is stored: the last {bytes} of its 4 bytes are set to zero (for example, {example} is stored as {truncated}); of an IPv6 address only the first {v6_bits} bits are kept. Your full IP address is never stored;",
    pages: "the address and title of the page you open, the page you came from (referrer), the pages you open next and how long you stay on a page;",
    actions: "clicks on links to other websites and on downloads, searches on this website and other interactions the page reports;",
    returns: "whether you have visited before, as your browser reports it: the number of your visits and the days since your last visit;",
    device: "the type and version of your browser and operating system, the type of your device (computer, phone or tablet), your screen size and your preferred language;",
    geo_masked: "your approximate location (country, region or city), determined from the shortened IP address;",
    geo_full: "your approximate location (country, region or city), determined from your full IP address, which is used for this lookup in memory only and is not stored;",
    time: "the date and time of each access.",
    no_geo: "Your location is not determined.",
    key_plain: "To count visitors without identifying them, tally derives a pseudonymous key from the shortened IP address and the identification and language of your browser, using a secret that changes every day. The secret is deleted 48 hours after its day began. From then on nobody, including us, can tell which person a key belongs to, and visits on different days cannot be linked to each other.",
    key_cookie: "To count visitors without identifying them, tally derives a pseudonymous key from the random identifier in the analytics cookie (see below), using a secret that changes every day. The secret is deleted 48 hours after its day began. From then on nobody, including us, can tell which person a key belongs to, and visits on different days cannot be linked to each other.",
    not_recorded: "We do not record your name, your e-mail address, what you type into forms or your full IP address. Session identifiers, access tokens, e-mail addresses and the click identifiers of advertising networks are removed from recorded addresses. We build no profile of you, do not combine the data with other data and do not use it for advertising.",
    cookies_heading: "Cookies and storage in your browser",
    cookies_none: "The analytics sets no cookies and stores nothing in your browser in order to count your visits.",
    cookies_visitor: "The analytics script of {site} stores a cookie named _tly_id with a random identifier in your browser for up to 13 months. It tells the analytics whether you have visited before. The identifier itself is never stored on our server, only the daily changing key made from it.",
    cookies_optout: "Only if you object to the analysis (see below), your browser keeps a cookie named {cookie} for up to two years, which tells the analytics not to record your visits (if you object on a page of this website, also an entry of the same name in its local storage and a cookie named mtm_consent_removed).",
    cookies_dashboard: "Signing in to the statistics sets a session cookie for our staff only; visitors of {site} never receive it.",
    retention_heading: "Duration of storage",
    retention: "Records of single page views and visits are deleted after {raw_days} days at the latest. The statistics made from them hold only counts (such as page views per page and day) and nothing about individual visitors; they are deleted after {aggregate_days} days. The daily secrets behind the pseudonymous keys are deleted 48 hours after their day began.",
    objection_heading: "Objection",
    signals_honoured: "If your browser sends {signals}, nothing is recorded.",
    ignored_one: "The {signals} setting of your browser is not evaluated; please use the opt-out below.",
    ignored_many: "The {signals} settings of your browser are not evaluated; please use the opt-out below.",
    or: " or ",
    and: " and ",
    optout: "You can object to the analysis at any time on the following page; your visits are then no longer recorded:",
    optout_link: "Opt out of web analytics on {site}",
    optout_after: "If you delete your cookies, the objection is deleted with them, and you would need to object again.",
    rights_heading: "Access and erasure",
    rights_cookie: "Recorded visits can be assigned to a person only as long as the day's secret exists, that is until 48 hours after the day began, and only with the identifier in the cookie _tly_id of your browser. Within that time we will, on request, give you a copy of the records of your visits or erase them; please send us the value of that cookie. After that, the records can no longer be assigned to anyone, by us or by anyone else: they are anonymous, and we can no longer find, disclose or erase the records of a particular person.",
    rights_plain: "The records contain no name, no full IP address and no identifier from your browser, and the pseudonymous keys can no longer be traced back once the day's secret is deleted, 48 hours after the day began. We therefore do not assign recorded visits to persons and cannot find, disclose or erase the records of a particular person (Art. 11 GDPR). They are deleted in any case after the periods above.",
};

/// German.
pub static DE: StatementTexts = StatementTexts {
    title: "Webanalyse mit tally",
    scope_heading: "Umfang der Verarbeitung personenbezogener Daten",
    scope_intro: "Auf {site} setzen wir die Webanalyse-Software tally ein, um zu erfahren, welche Seiten gelesen werden und wie Besucherinnen und Besucher sie finden. tally läuft ausschließlich auf unseren eigenen Servern. Die erfassten Daten werden nur dort gespeichert und nicht an Dritte weitergegeben, auch nicht an die Hersteller der Software. Die Software sendet keine Daten über Besucherinnen und Besucher an andere, und die Seiten laden dafür nichts von anderen Anbietern.",
    list_intro: "Beim Aufruf einer Seite werden folgende Daten erfasst:",
    ip_one: "Ihre IP-Adresse in gekürzter Form: ihr letztes Byte wird vor jeder Speicherung auf null gesetzt (aus {example} wird zum Beispiel {truncated}); von einer IPv6-Adresse werden nur die ersten {v6_bits} Bit gespeichert. Ihre vollständige IP-Adresse wird nie gespeichert;",
    ip_many: "Ihre IP-Adresse in gekürzter Form: die letzten {bytes} ihrer 4 Bytes werden vor jeder Speicherung auf null gesetzt (aus {example} wird zum Beispiel {truncated}); von einer IPv6-Adresse werden nur die ersten {v6_bits} Bit gespeichert. Ihre vollständige IP-Adresse wird nie gespeichert;",
    pages: "Adresse und Titel der aufgerufenen Seite, die Seite, von der aus Sie auf sie gelangt sind (Referrer), die danach aufgerufenen Seiten und die Verweildauer auf einer Seite;",
    actions: "Klicks auf Links zu anderen Websites und auf Downloads, Suchen auf dieser Website und weitere Interaktionen, die die Seite meldet;",
    returns: "ob Sie die Website schon früher besucht haben, wie Ihr Browser es meldet: die Zahl Ihrer Besuche und die Tage seit Ihrem letzten Besuch;",
    device: "Typ und Version Ihres Browsers und Betriebssystems, die Art Ihres Geräts (Computer, Telefon oder Tablet), Ihre Bildschirmgröße und Ihre bevorzugte Sprache;",
    geo_masked: "Ihr ungefährer Standort (Land, Region oder Stadt), ermittelt aus der gekürzten IP-Adresse;",
    geo_full: "Ihr ungefährer Standort (Land, Region oder Stadt), ermittelt aus Ihrer vollständigen IP-Adresse, die dafür nur im Arbeitsspeicher verwendet und nicht gespeichert wird;",
    time: "Datum und Uhrzeit jedes Zugriffs.",
    no_geo: "Ihr Standort wird nicht ermittelt.",
    key_plain: "Um Besucher zählen zu können, ohne sie zu identifizieren, bildet tally aus der gekürzten IP-Adresse sowie der Kennung und der Spracheinstellung Ihres Browsers mithilfe eines täglich wechselnden Geheimnisses einen pseudonymen Schlüssel. Das Geheimnis wird 48 Stunden nach Beginn seines Tages gelöscht. Danach kann niemand, auch wir nicht, einen Schlüssel einer Person zuordnen, und Besuche an verschiedenen Tagen lassen sich nicht miteinander verknüpfen.",
    key_cookie: "Um Besucher zählen zu können, ohne sie zu identifizieren, bildet tally aus der zufälligen Kennung im Analyse-Cookie (siehe unten) mithilfe eines täglich wechselnden Geheimnisses einen pseudonymen Schlüssel. Das Geheimnis wird 48 Stunden nach Beginn seines Tages gelöscht. Danach kann niemand, auch wir nicht, einen Schlüssel einer Person zuordnen, und Besuche an verschiedenen Tagen lassen sich nicht miteinander verknüpfen.",
    not_recorded: "Nicht erfasst werden Ihr Name, Ihre E-Mail-Adresse, Ihre Eingaben in Formulare und Ihre vollständige IP-Adresse. Sitzungskennungen, Zugangsschlüssel (Tokens), E-Mail-Adressen und die Klick-Kennungen von Werbenetzwerken werden aus den erfassten Adressen entfernt. Wir erstellen kein Profil von Ihnen, führen die Daten nicht mit anderen Daten zusammen und nutzen sie nicht für Werbung.",
    cookies_heading: "Cookies und Speicherung in Ihrem Browser",
    cookies_none: "Zur Zählung Ihrer Besuche setzt die Webanalyse keine Cookies und speichert nichts in Ihrem Browser.",
    cookies_visitor: "Das Analyse-Skript von {site} speichert in Ihrem Browser für bis zu 13 Monate ein Cookie namens _tly_id mit einer zufälligen Kennung. Es zeigt der Webanalyse, ob Sie die Website schon früher besucht haben. Die Kennung selbst wird auf unserem Server nie gespeichert, nur der daraus gebildete, täglich wechselnde Schlüssel.",
    cookies_optout: "Nur wenn Sie der Analyse widersprechen (siehe unten), speichert Ihr Browser für bis zu zwei Jahre ein Cookie namens {cookie}, das der Webanalyse mitteilt, Ihre Besuche nicht zu erfassen (bei einem Widerspruch auf einer Seite dieser Website zusätzlich einen gleichnamigen Eintrag im lokalen Speicher und ein Cookie namens mtm_consent_removed).",
    cookies_dashboard: "Die Anmeldung zur Statistik setzt ein Sitzungs-Cookie nur für unsere Mitarbeiterinnen und Mitarbeiter; Besucherinnen und Besucher von {site} erhalten es nie.",
    retention_heading: "Dauer der Speicherung",
    retention: "Aufzeichnungen einzelner Seitenaufrufe und Besuche werden spätestens nach {raw_days} Tagen gelöscht. Die daraus berechneten Statistiken enthalten nur Zählwerte (etwa Seitenaufrufe pro Seite und Tag) und keine Angaben zu einzelnen Besuchern; sie werden nach {aggregate_days} Tagen gelöscht. Die täglichen Geheimnisse hinter den pseudonymen Schlüsseln werden 48 Stunden nach Beginn ihres Tages gelöscht.",
    objection_heading: "Widerspruchs- und Beseitigungsmöglichkeit",
    signals_honoured: "Sendet Ihr Browser die Einstellung {signals}, wird nichts erfasst.",
    ignored_one: "Die Einstellung {signals} Ihres Browsers wird nicht ausgewertet; bitte nutzen Sie den Widerspruch unten.",
    ignored_many: "Die Einstellungen {signals} Ihres Browsers werden nicht ausgewertet; bitte nutzen Sie den Widerspruch unten.",
    or: " oder ",
    and: " und ",
    optout: "Sie können der Analyse jederzeit auf der folgenden Seite widersprechen; Ihre Besuche werden dann nicht mehr erfasst:",
    optout_link: "Widerspruch gegen die Webanalyse auf {site}",
    optout_after: "Wenn Sie Ihre Cookies löschen, ist auch der Widerspruch gelöscht, und Sie müssten erneut widersprechen.",
    rights_heading: "Auskunft und Löschung",
    rights_cookie: "Erfasste Besuche lassen sich einer Person nur zuordnen, solange das Geheimnis des Tages besteht, also bis 48 Stunden nach Beginn des Tages, und nur mithilfe der Kennung im Cookie _tly_id Ihres Browsers. In dieser Zeit erhalten Sie auf Anfrage eine Kopie der Aufzeichnungen Ihrer Besuche, oder wir löschen sie; senden Sie uns dazu bitte den Wert dieses Cookies. Danach können die Aufzeichnungen niemandem mehr zugeordnet werden, weder von uns noch von anderen: Sie sind anonym, und wir können die Aufzeichnungen einer bestimmten Person nicht mehr finden, herausgeben oder löschen.",
    rights_plain: "Die Aufzeichnungen enthalten keinen Namen, keine vollständige IP-Adresse und keine Kennung aus Ihrem Browser, und die pseudonymen Schlüssel lassen sich nicht mehr zurückverfolgen, sobald das Geheimnis des Tages gelöscht ist, 48 Stunden nach Beginn des Tages. Wir ordnen erfasste Besuche deshalb keinen Personen zu und können die Aufzeichnungen einer bestimmten Person weder finden noch herausgeben oder löschen (Art. 11 DSGVO). Sie werden in jedem Fall nach den oben genannten Fristen gelöscht.",
};
