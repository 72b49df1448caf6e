//! Runs the software, services and at-rest collectors in order and derives their controls.
//!
//! Order matters only where one collector feeds another: enabled units feed the configuration
//! facts, listeners feed the live probes, and both feed `transit_encryption`. Probes run only
//! on the live root; under a fixture root exposed services stay unprobed, so the transit
//! control is `unknown` rather than guessed. This module owns the order, not the facts.

use std::collections::BTreeMap;
use std::path::Path;

use super::{
    Inventory, is_live_root, kernel, listeners, logging, packages, system_config, tls_probe,
    transit, units, volumes,
};

/// Adds packages, kernel, units, listeners and their probes, volumes and configuration facts
/// and logging to `inventory`, with the `transit_encryption`, `rest_encryption` and
/// `log_protection` controls.
pub fn collect(root: &Path, inventory: &mut Inventory) {
    let Inventory {
        observations,
        controls,
        errors,
        ..
    } = inventory;
    packages::collect(root, observations, errors);
    kernel::collect(root, observations, errors);
    let enabled = units::collect(root, observations, errors);
    system_config::collect(root, &enabled, observations, errors);
    logging::collect(root, &enabled, observations, controls, errors);
    let found = listeners::collect(root, observations, errors);
    let verdicts = if is_live_root(root) {
        tls_probe::collect(&found, observations, errors)
    } else {
        BTreeMap::new()
    };
    controls.push(transit::control(&found, &verdicts));
    volumes::collect(root, observations, controls, errors);
}
