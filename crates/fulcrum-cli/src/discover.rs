//! The discovery every subcommand builds from its arguments: the target,
//! placed by the locality map given or in `FULCRUM_LOCALITY_MAP`.

use fulcrum_discovery::{Discovery, DiscoveryConfig, LocalityMap};

use crate::Failure;

/// Discovery of `target` with the locality map `rules` (the environment's
/// when `None`); a bad target or map is a usage error.
pub(crate) fn discovery(target: &str, rules: Option<&str>) -> Result<Discovery, Failure> {
    let locality = match rules {
        Some(rules) => LocalityMap::parse(rules),
        None => LocalityMap::from_env(),
    }
    .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(Discovery::new(target)
        .map_err(|e| Failure::Usage(e.to_string()))?
        .with_config(DiscoveryConfig {
            locality,
            ..DiscoveryConfig::default()
        }))
}
