//! Which stored columns the audit reads: the address columns, and the free texts a tracker
//! sends (URLs, titles, referrers, event, search, campaign and content fields) in which no
//! e-mail address, full IP address or click identifier may survive.

/// Address columns of `schema/*.sql`. Columns found in the live database whose name looks like
/// an address ([`looks_like_address`]) are checked as well, so a column added later is not
/// missed because this list was not updated.
pub const ADDRESS_COLUMNS: &[(&str, &str)] = &[("events", "ip")];

/// Whether a column's name says it holds an address (`ip`, `client_ip`, `ip_prefix`,
/// `remote_addr`, `address`).
pub fn looks_like_address(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "ip" || n.ends_with("_ip") || n.starts_with("ip_") || n.contains("addr")
}

/// The free-text columns of the per-hit and per-visit tables; `Array(String)` columns are read
/// element by element. Not listed: what tally derives itself from fixed vocabularies (country,
/// browser and its version, which looks like an IPv4 address in Chrome's `120.0.0.0`), ids and
/// numbers.
pub const TEXT_COLUMNS: &[(&str, &[&str])] = &[
    (
        "events",
        &[
            "url",
            "title",
            "referrer",
            "target_url",
            "event_category",
            "event_action",
            "event_name",
            "search_keyword",
            "search_category",
            "referrer_name",
            "referrer_keyword",
            "campaign_name",
            "campaign_source",
            "campaign_medium",
            "campaign_keyword",
            "campaign_content",
            "content_name",
            "content_piece",
            "content_target",
            "content_interaction",
            "attribution_campaign",
            "attribution_keyword",
            "attribution_referrer",
            "item_names",
            "item_categories",
            "dimension_values",
            "prop_keys",
            "prop_values",
        ],
    ),
    (
        "visits",
        &[
            "entry_page",
            "exit_page",
            "referrer_host",
            "referrer_keyword",
            "source",
            "campaign_name",
            "campaign_source",
            "campaign_medium",
            "campaign_keyword",
            "campaign_content",
            "pv_pages",
            "pv_titles",
            "ev_categories",
            "ev_actions",
            "ev_names",
            "outlinks",
            "downloads",
            "searches",
            "search_categories",
            "action_prop_values",
        ],
    ),
];

/// The aggregate tables keyed by a dimension's value: their `value` column is read for these
/// dimensions, the ones whose values are free texts (pages, titles, events, searches,
/// referrers, campaigns).
pub const VALUE_TABLES: &[&str] = &["agg_breakdown", "agg_top", "agg_top_week"];

/// The dimensions of [`VALUE_TABLES`] whose values are read (`rollup::dimensions`' names).
pub const TEXT_DIMENSIONS: &[&str] = &[
    "event:page",
    "event:title",
    "event:hostname",
    "event:category",
    "event:action",
    "event:name",
    "event:outlink",
    "event:download",
    "event:search",
    "event:search_category",
    "visit:entry_page",
    "visit:exit_page",
    "visit:entry_page_hostname",
    "visit:exit_page_hostname",
    "visit:source",
    "visit:referrer",
    "visit:referrer_keyword",
    "visit:utm_campaign",
    "visit:utm_source",
    "visit:utm_medium",
    "visit:utm_term",
    "visit:utm_content",
];

/// The dimensions of [`VALUE_TABLES`] starting with this are read too: custom properties
/// (`event:props:KEY`), whose values are whatever a site sent.
pub const PROPS_PREFIX: &str = "event:props:";

/// A name that can be written into SQL as it is: ClickHouse identifiers tally's schema uses.
/// Names from `system.columns` that are anything else are not read (and reported).
pub fn plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_names() {
        for yes in [
            "ip",
            "client_ip",
            "ip_prefix",
            "remote_addr",
            "address",
            "IP",
        ] {
            assert!(looks_like_address(yes), "{yes}");
        }
        for no in ["pv_pages", "zip", "tip", "description", "ipsum"] {
            assert!(!looks_like_address(no), "{no}");
        }
    }

    #[test]
    fn every_text_dimension_exists() {
        for d in TEXT_DIMENSIONS {
            assert!(crate::rollup::dimensions::find(d).is_some(), "{d}");
        }
    }

    #[test]
    fn identifiers() {
        assert!(plain_identifier("event_name"));
        assert!(!plain_identifier("a`b"));
        assert!(!plain_identifier("1a"));
        assert!(!plain_identifier(""));
    }

    /// The listed columns exist in the schema, so none is silently skipped on a real install.
    #[test]
    fn listed_columns_are_in_the_schema() {
        let schema: String = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/schema"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        for (_, columns) in TEXT_COLUMNS {
            for c in *columns {
                // Created with its table, or added later (`ADD COLUMN`).
                assert!(
                    schema.contains(&format!("    {c} "))
                        || schema.contains(&format!("ADD COLUMN {c} ")),
                    "{c}"
                );
            }
        }
        for (_, c) in ADDRESS_COLUMNS {
            assert!(schema.contains(&format!("    {c} String")), "{c}");
        }
    }
}
