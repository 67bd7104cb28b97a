//! The shipped example configuration must stay loadable.

#[test]
fn example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tally.example.toml");
    let c = tally::config::Config::load(Some(std::path::Path::new(path))).unwrap();
    assert_eq!(c.sites.len(), 1);
    assert_eq!(c.privacy.ip_bytes, 2);
}
