//! The words of the dashboard's server-rendered pages (sign-in, one-time sign-in, a shared
//! link's password, not found), in the languages of [`crate::web::texts::Lang`]. The dashboard
//! itself is translated by its script.

use crate::web::texts::Lang;

/// Everything the server-rendered pages say, in one language.
#[derive(Debug)]
pub struct DashTexts {
    /// Heading of the sign-in page.
    pub sign_in_title: &'static str,
    /// Label of the name field.
    pub name: &'static str,
    /// Label of the password field.
    pub password: &'static str,
    /// The sign-in button.
    pub sign_in: &'static str,
    /// A wrong name or password (not saying which).
    pub wrong: &'static str,
    /// Too many failures. `{secs}`.
    pub throttled: &'static str,
    /// Heading of the one-time sign-in page.
    pub once_title: &'static str,
    /// What the one-time button does.
    pub once_intro: &'static str,
    /// A spent, expired or unknown one-time link.
    pub once_invalid: &'static str,
    /// Link to the sign-in form.
    pub to_sign_in: &'static str,
    /// Heading of a protected shared link.
    pub share_title: &'static str,
    /// What the password is for.
    pub share_intro: &'static str,
    /// The button that opens a protected link.
    pub open: &'static str,
    /// Heading of the not-found page.
    pub not_found_title: &'static str,
    /// A revoked or unknown shared link.
    pub not_found_body: &'static str,
    /// A form sent from another site.
    pub bad_origin: &'static str,
    /// The database cannot be read.
    pub unavailable: &'static str,
}

/// The texts in `lang`.
pub fn texts(lang: Lang) -> &'static DashTexts {
    match lang {
        Lang::En => &EN,
        Lang::De => &DE,
    }
}

static EN: DashTexts = DashTexts {
    sign_in_title: "Sign in",
    name: "Name",
    password: "Password",
    sign_in: "Sign in",
    wrong: "The name or the password is wrong.",
    throttled: "Too many failed attempts. Try again in {secs} seconds.",
    once_title: "Sign in with a one-time link",
    once_intro: "This link signs you in once. It cannot be used again afterwards.",
    once_invalid: "This sign-in link has been used already, has expired or is unknown.",
    to_sign_in: "Sign in with a name and password",
    share_title: "Shared statistics",
    share_intro: "These statistics are protected by a password.",
    open: "Open",
    not_found_title: "Not found",
    not_found_body: "This link does not exist or has been revoked.",
    bad_origin: "This form was sent from another site and has been refused.",
    unavailable: "The dashboard cannot reach its database right now. Try again later.",
};

static DE: DashTexts = DashTexts {
    sign_in_title: "Anmelden",
    name: "Name",
    password: "Passwort",
    sign_in: "Anmelden",
    wrong: "Name oder Passwort ist falsch.",
    throttled: "Zu viele Fehlversuche. Bitte in {secs} Sekunden erneut versuchen.",
    once_title: "Mit einem Einmal-Link anmelden",
    once_intro: "Dieser Link meldet Sie einmal an. Danach ist er nicht mehr gültig.",
    once_invalid: "Dieser Anmeldelink wurde schon benutzt, ist abgelaufen oder unbekannt.",
    to_sign_in: "Mit Name und Passwort anmelden",
    share_title: "Geteilte Statistiken",
    share_intro: "Diese Statistiken sind durch ein Passwort geschützt.",
    open: "Öffnen",
    not_found_title: "Nicht gefunden",
    not_found_body: "Diesen Link gibt es nicht oder er wurde widerrufen.",
    bad_origin: "Dieses Formular wurde von einer anderen Website gesendet und abgelehnt.",
    unavailable: "Das Dashboard erreicht seine Datenbank gerade nicht. Bitte später erneut versuchen.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_text() {
        for lang in Lang::ALL {
            let t = texts(lang);
            for s in [
                t.sign_in_title,
                t.name,
                t.password,
                t.sign_in,
                t.wrong,
                t.throttled,
                t.once_title,
                t.once_intro,
                t.once_invalid,
                t.to_sign_in,
                t.share_title,
                t.share_intro,
                t.open,
                t.not_found_title,
                t.not_found_body,
                t.bad_origin,
                t.unavailable,
            ] {
                assert!(!s.is_empty(), "{lang:?}");
            }
            assert!(t.throttled.contains("{secs}"));
        }
    }
}
