//! `tally geo update`.

use crate::config::Config;

/// `tally geo update`: installs the country database where `tally serve` looks for it.
pub async fn update(cfg: &Config) -> anyhow::Result<()> {
    use crate::geo_update::{PACKAGE, auto_path, update_async};
    let path = auto_path(cfg);
    eprintln!(
        "tally: fetching {PACKAGE} from {} into {}",
        cfg.geo.registry,
        path.display()
    );
    let u = update_async(cfg.geo.registry.clone(), path).await?;
    println!(
        "installed {PACKAGE} {} (licence {}): {}",
        u.version,
        if u.license.is_empty() {
            "not stated"
        } else {
            &u.license
        },
        u.info
    );
    if let Some(configured) = &cfg.geo.database {
        println!(
            "note: [geo] database = {} is configured, so tally serve uses that file, not this one",
            configured.display()
        );
    } else if !cfg.geo.auto {
        println!("note: [geo] auto = false, so tally serve does not use this file");
    }
    Ok(())
}
