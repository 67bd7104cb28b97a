//! The one query engine of the read side: the Stats API, the dashboard and `tally report` all
//! call [`Engine::run`]. It reads only what the rollup wrote (`visits`, the daily aggregates)
//! and, for realtime, the raw `events`; it never imports the write path.

pub mod date_range;
pub mod filter;
pub mod request;
pub mod vocabulary;

use std::sync::Arc;

use crate::config::Config;
use crate::store::Client;

/// Which sites a caller may query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Every configured site (an operator at the terminal).
    All,
    /// Only these site ids (an API key).
    Sites(Vec<u32>),
}

impl Access {
    /// Whether site `id` may be queried.
    pub fn allows(&self, id: u32) -> bool {
        match self {
            Access::All => true,
            Access::Sites(ids) => ids.contains(&id),
        }
    }
}

/// Why a query was not answered: the HTTP status and a message naming the offending field,
/// as Plausible words them (`{"error": message}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// 400 for a bad request, 404 for an unknown site or one the caller may not see.
    pub status: u16,
    /// One line for people.
    pub message: String,
}

impl QueryError {
    /// A 400 with this message.
    pub fn bad(message: impl Into<String>) -> Self {
        QueryError {
            status: 400,
            message: message.into(),
        }
    }
}

/// One result row: the dimension values and the metric values, in the request's order.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// Values of the requested dimensions.
    pub dimensions: Vec<String>,
    /// Values of the requested metrics (`null` where undefined, e.g. a bounce rate of no visits).
    pub metrics: Vec<serde_json::Value>,
    /// With `include.comparisons`: the same row in the comparison period, and the change.
    pub comparison: Option<Comparison>,
}

/// A row's values in the comparison period.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Dimension values in the comparison period (the time labels differ).
    pub dimensions: Vec<String>,
    /// Metric values in the comparison period.
    pub metrics: Vec<serde_json::Value>,
    /// Change per metric: percent, or percentage points for rates.
    pub change: Vec<serde_json::Value>,
}

/// A query's answer, ready to be written as Plausible's JSON or as CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The request as understood (Plausible echoes it).
    pub query: serde_json::Value,
    /// `meta`: notes on how to read the numbers, `total_rows`, `time_labels`.
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// Names of the dimensions, then of the metrics (the CSV header).
    pub columns: Vec<String>,
    /// The rows.
    pub results: Vec<ResultRow>,
}

/// The query engine over one ClickHouse database.
#[derive(Clone)]
pub struct Engine {
    client: Client,
    config: Arc<Config>,
}

impl Engine {
    /// An engine reading `client`'s database for the sites of `config`.
    pub fn new(client: Client, config: Arc<Config>) -> Self {
        Engine { client, config }
    }

    /// Answers a Stats API v2 query (the JSON body of `POST /api/v2/query`).
    pub async fn run(
        &self,
        body: &serde_json::Value,
        access: &Access,
    ) -> Result<Answer, QueryError> {
        let _ = (&self.client, &self.config, body, access);
        Err(QueryError::bad("not built yet"))
    }
}
