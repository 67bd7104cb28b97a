//! Everything served to browsers that is not tracking: the tracker script, the opt-out page,
//! and the snippet an operator pastes into a site.
//!
//! [`assets`] serves the embedded JavaScript tracker, [`optout`] the page where visitors see
//! what is recorded and refuse it, with its words in [`texts`] and its security policy from
//! [`csp`]; [`widget`] serves the opt-out widget (`/optout.js`) that sites put into their own
//! privacy policy; [`statement`] is the privacy statement for that policy (`tally
//! privacy-statement`, `/privacy`), its words in [`statement_texts`]; [`snippet`] writes the HTML for `tally snippet`; [`demo`] is the demo's
//! tracked website at `/demo`.
//!
//! HTML is written only through askama templates (`templates/`), which escape every
//! interpolated value unless the template says `|safe`. Two values do: the opt-out page's
//! stylesheet (a constant, allowed by its hash) and the snippet's base URL once the `json`
//! filter has made it a JavaScript string. askama rather than maud: the templates read as the HTML they produce (the
//! snippet is mostly a block of JavaScript, awkward in maud's syntax), and askama escapes `'`
//! too, where maud leaves it.

pub mod assets;
pub mod csp;
pub mod demo;
pub mod optout;
pub mod snippet;
pub mod statement;
pub mod statement_texts;
pub mod texts;
pub mod widget;
