//! `TALLY_<SECTION>_<KEY>` environment overrides, applied to the TOML tree before validation.
//!
//! Not every `TALLY_*` variable is meant for tally: Kubernetes gives every pod variables for
//! each service in its namespace, named after the service, so a service called `tally` brings
//! `TALLY_SERVICE_HOST`, `TALLY_PORT=tcp://...`, `TALLY_PORT_8080_TCP_ADDR` and more. A
//! variable that names neither a section nor a top-level key is therefore ignored (and the
//! names, never the values, logged once). One that names a section is ours, and an unknown key
//! in it is refused like one in the file.

use super::ConfigError;

/// Tables of the configuration whose keys can be overridden one by one.
const SECTIONS: &[&str] = &[
    "clickhouse",
    "privacy",
    "sink",
    "spool",
    "limits",
    "geo",
    "rollup",
    "retention",
    "api",
    "server",
    "metrics",
    "admin",
];

/// Keys of the top level that are not sections; `sites` is a list, set as a whole.
const TOP_KEYS: &[&str] = &["listen", "public_url", "sites", "token_auth", "base_path"];

/// Keys whose value is text: taken verbatim, so a numeric password stays a string.
const TEXT_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "token_auth",
    "base_path",
    "clickhouse.url",
    "clickhouse.database",
    "clickhouse.user",
    "clickhouse.password",
    "clickhouse.embedded_dir",
    "clickhouse.cluster",
    "privacy.optout_cookie",
    "geo.database",
    "admin.listen",
];

/// Applies every `TALLY_*` variable of `vars` that names a configuration key to `tree`.
///
/// Other values are read as TOML (`2`, `true`, `["10.0.0.0/8"]`) and fall back to a string,
/// which the list-valued keys also accept comma-separated.
pub(super) fn apply(
    tree: &mut toml::Table,
    vars: impl Iterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut ignored = Vec::new();
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
            None if TOP_KEYS.contains(&rest.as_str()) || SECTIONS.contains(&rest.as_str()) => {
                (None, rest.clone())
            }
            None => {
                ignored.push(name);
                continue;
            }
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
    if !ignored.is_empty() {
        ignored.sort();
        tracing::info!(
            "ignored environment variables that name no configuration key: {}",
            ignored.join(", ")
        );
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
        // A known section is ours: an unknown key in it is a mistake, not someone else's.
        for (name, key) in [
            ("TALLY_PRIVACY_NOPE", "privacy.nope"),
            ("TALLY_CLICKHOUSE_PORT", "clickhouse.port"),
        ] {
            match with_env("", &[(name, "1")]) {
                Err(ConfigError::Key { key: k, message }) => {
                    assert_eq!(k, key, "{name}");
                    assert!(message.contains("unknown field"), "{message}");
                }
                other => panic!("{name} accepted: {other:?}"),
            }
        }
        let err = with_env("", &[("TALLY_SINK", "1")]).unwrap_err();
        assert!(err.to_string().contains("sink"), "{err}");
    }

    #[test]
    fn variables_of_other_software_are_ignored() {
        // What Kubernetes sets for a service named `tally`, next to a real override.
        let c = with_env(
            "",
            &[
                ("TALLY_SERVICE_HOST", "10.0.0.1"),
                ("TALLY_SERVICE_PORT", "8080"),
                ("TALLY_SERVICE_PORT_HTTP", "8080"),
                ("TALLY_PORT", "tcp://10.0.0.1:8080"),
                ("TALLY_PORT_8080_TCP", "tcp://10.0.0.1:8080"),
                ("TALLY_PORT_8080_TCP_PROTO", "tcp"),
                ("TALLY_PORT_8080_TCP_PORT", "8080"),
                ("TALLY_PORT_8080_TCP_ADDR", "10.0.0.1"),
                ("TALLY_LISTEN", "0.0.0.0:9999"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9999);
    }

    /// The lists above must name every key of the configuration's top level, or an override
    /// of a new key would be ignored silently.
    #[test]
    fn every_top_level_key_is_known() {
        let Err(ConfigError::Key { message, .. }) = with_env("zzz = 1", &[]) else {
            panic!("an unknown key must be refused");
        };
        let (_, expected) = message.split_once("expected one of ").expect(&message);
        let mut fields: Vec<&str> = expected.split(", ").map(|f| f.trim_matches('`')).collect();
        fields.sort();
        let mut known: Vec<&str> = TOP_KEYS.iter().chain(SECTIONS).copied().collect();
        known.sort();
        assert_eq!(fields, known);
    }
}
