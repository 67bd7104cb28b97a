//! A refused request: an HTTP status and a one-line reason for the client.

use std::borrow::Cow;

use hyper::StatusCode;

/// Why a request is refused. Nothing of a refused request is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The status to answer with (always 4xx or 503).
    pub status: StatusCode,
    /// One line saying what was wrong.
    pub message: Cow<'static, str>,
}

impl Reject {
    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Reject {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// Any other status.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Reject {
            status,
            message: message.into(),
        }
    }

    /// A body that could not be read, with the reason it is counted under
    /// (`tally_requests_rejected_total`).
    pub fn body(e: crate::http::BodyError) -> (&'static str, Reject) {
        use crate::http::BodyError;
        let reason = match e {
            BodyError::TooLarge(_) => "body_too_large",
            BodyError::Unreadable => "body_read",
            BodyError::TooSlow(_) => "body_timeout",
            BodyError::Busy => "server_busy",
        };
        (reason, Reject::new(e.status(), e.to_string()))
    }

    /// The same refusal, saying which hit of a bulk request it concerns.
    pub fn in_bulk(self, index: usize) -> Self {
        Reject {
            status: self.status,
            message: format!("requests[{index}]: {}", self.message).into(),
        }
    }
}
