//! What the black-box fixture tests share: a fixture root by set and name, the real
//! `tillsyn-agent` binary's `inventory --json --root` over it, and a control by name.

// Each test binary compiles this module and uses only some of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `tests/fixtures/<set>/<name>` in this crate.
pub fn fixture(set: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(set)
        .join(name)
}

/// Runs the agent over `root` and returns its JSON inventory; a failed run fails the test with
/// the agent's stderr.
pub fn inventory(root: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_tillsyn-agent"))
        .args(["inventory", "--json", "--root"])
        .arg(root)
        .output()
        .expect("run tillsyn-agent");
    assert!(
        output.status.success(),
        "agent failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("inventory is JSON")
}

/// The control `name` of an inventory.
pub fn control<'a>(inventory: &'a Value, name: &str) -> &'a Value {
    inventory["controls"]
        .as_array()
        .expect("controls is an array")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} control"))
}
