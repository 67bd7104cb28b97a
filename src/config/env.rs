//! `TALLY_<SECTION>_<KEY>` environment overrides, applied to the TOML tree before validation.

use super::ConfigError;

/// Tables of the configuration whose keys can be overridden one by one.
const SECTIONS: &[&str] = &["clickhouse", "privacy", "sink", "limits", "geo"];

/// Keys whose value is text: taken verbatim, so a numeric password stays a string.
const TEXT_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "token_auth",
    "clickhouse.url",
    "clickhouse.database",
    "clickhouse.user",
    "clickhouse.password",
    "clickhouse.embedded_dir",
    "privacy.optout_cookie",
    "geo.database",
];

/// Applies every `TALLY_*` variable of `vars` to `tree`.
///
/// Other values are read as TOML (`2`, `true`, `["10.0.0.0/8"]`) and fall back to a string,
/// which the list-valued keys also accept comma-separated.
pub(super) fn apply(
    tree: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("TALLY_") else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let (section, key) = match SECTIONS.iter().find_map(|s| {
            rest.strip_prefix(s)
                .and_then(|k| k.strip_prefix('_'))
                .map(|k| (*s, k))
        }) {
            Some((s, k)) => (Some(s), k.to_string()),
            None => (None, rest.clone()),
        };
        let dotted = match section {
            Some(s) => format!("{s}.{key}"),
            None => key.clone(),
        };
        let value = if TEXT_KEYS.contains(&dotted.as_str()) {
            toml::Value::String(raw)
        } else {
            parse_value(&raw)
        };
        let table = match section {
            Some(s) => tree
                .entry(s)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .ok_or_else(|| ConfigError::key(s, "must be a table"))?,
            None => &mut *tree,
        };
        table.insert(key, value);
    }
    Ok(())
}

fn parse_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn with_env(file: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut tree: toml::Table = file.parse().unwrap();
        apply(
            &mut tree,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )?;
        Config::from_table(tree)
    }

    #[test]
    fn overrides_every_kind_of_key() {
        let c = with_env(
            "[privacy]\nip_bytes = 1",
            &[
                ("TALLY_PRIVACY_IP_BYTES", "3"),
                ("TALLY_PRIVACY_RESPECT_DNT", "false"),
                ("TALLY_PRIVACY_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
                ("TALLY_LISTEN", "0.0.0.0:9999"),
                ("TALLY_CLICKHOUSE_PASSWORD", "12345"),
                ("TALLY_CLICKHOUSE_URL", "http://db:8123"),
                ("TALLY_SINK_FLUSH_MS", "250"),
                (
                    "TALLY_SITES",
                    r#"[{id = 7, name = "x", domains = ["x.org"]}]"#,
                ),
                ("UNRELATED", "1"),
            ],
        )
        .unwrap();
        assert_eq!(c.privacy.ip_bytes, 3);
        assert!(!c.privacy.respect_dnt);
        assert_eq!(c.privacy.trusted_proxies.len(), 2);
        assert_eq!(c.listen.port(), 9999);
        assert_eq!(c.clickhouse.password.as_deref(), Some("12345"));
        assert_eq!(c.clickhouse.url.as_deref(), Some("http://db:8123"));
        assert_eq!(c.sink.flush_ms, 250);
        assert_eq!(c.site(7).unwrap().domains, vec!["x.org"]);
    }

    #[test]
    fn bad_override_names_the_key() {
        let err = with_env("", &[("TALLY_PRIVACY_IP_BYTES", "9")]).unwrap_err();
        assert!(err.to_string().contains("privacy.ip_bytes"), "{err}");
        let err = with_env("", &[("TALLY_PRIVACY_NOPE", "1")]).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
