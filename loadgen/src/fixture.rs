//! The recorded inventory every simulated host reports: `fixtures/debian12-host.json`, the
//! output of `tillsyn-agent inventory --json` on a Debian 12 build machine (about 950
//! observations, most of them dpkg packages, each with its evidence), hostname replaced.
//!
//! Each simulated agent reports it under its own hostname, MAC addresses and IPv4 address (from
//! 198.18.0.0/15, the benchmarking range of RFC 2544), so the collector sees distinct assets.
//! Churn changes package versions: the facts that change most often on a real host.

use tillsyn_agent::inventory::Inventory;
use tillsyn_proto::v1;

/// The recorded inventory, built into the binary so a run needs no files.
pub const RECORDED: &str = include_str!("../fixtures/debian12-host.json");

/// Errors loading a fixture.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The text is not an agent inventory.
    #[error("{source_name}: not a `tillsyn-agent inventory --json` document: {error}")]
    Parse {
        /// Where the text came from.
        source_name: String,
        /// The JSON error, with line and column.
        error: serde_json::Error,
    },
    /// The inventory holds no package whose version churn could change.
    #[error("{source_name}: no package observation with a version to change")]
    NoPackages {
        /// Where the text came from.
        source_name: String,
    },
}

/// A recorded inventory, mapped once to report form.
#[derive(Debug)]
pub struct Fixture {
    /// The report the recorded host would send (host frame, observations, controls).
    base: v1::ReportRequest,
    /// Indexes into `base.observations` of packages with a string `version`.
    packages: Vec<usize>,
}

impl Fixture {
    /// Parses `tillsyn-agent inventory --json` output; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, FixtureError> {
        let inventory: Inventory =
            serde_json::from_str(text).map_err(|error| FixtureError::Parse {
                source_name: source_name.to_string(),
                error,
            })?;
        let base = tillsyn_agent::report::build_with_id(&inventory, String::new());
        let packages: Vec<usize> = base
            .observations
            .iter()
            .enumerate()
            .filter(|(_, o)| o.category == "package" && version_of(&o.value_json).is_some())
            .map(|(i, _)| i)
            .collect();
        if packages.is_empty() {
            return Err(FixtureError::NoPackages {
                source_name: source_name.to_string(),
            });
        }
        Ok(Self { base, packages })
    }

    /// The inventory built into the binary.
    pub fn recorded() -> Result<Self, FixtureError> {
        Self::parse(RECORDED, "fixtures/debian12-host.json")
    }

    /// Observations in a full report.
    pub fn observation_count(&self) -> usize {
        self.base.observations.len()
    }

    /// Packages whose version churn may change.
    pub fn package_count(&self) -> usize {
        self.packages.len()
    }

    /// The observation index of the `n`-th changeable package (`n` modulo their number).
    pub fn package(&self, n: usize) -> usize {
        self.packages[n % self.packages.len()]
    }

    /// Observation `index` with its version replaced by `revision` of the recorded one.
    pub fn changed(&self, index: usize, revision: u64) -> v1::Observation {
        let mut observation = self.base.observations[index].clone();
        if let Ok(serde_json::Value::Object(mut value)) =
            serde_json::from_str::<serde_json::Value>(&observation.value_json)
            && let Some(version) = value.get("version").and_then(|v| v.as_str())
        {
            let version = format!("{version}+lg{revision}");
            value.insert("version".into(), serde_json::Value::String(version));
            observation.value_json = serde_json::Value::Object(value).to_string();
        }
        observation
    }

    /// Observation `index` as recorded.
    pub fn observation(&self, index: usize) -> &v1::Observation {
        &self.base.observations[index]
    }

    /// The host frame of simulated agent `index`: the recorded one under its own name and
    /// addresses.
    pub fn host(&self, index: u32) -> v1::HostInventory {
        let mut host = self.base.host.clone().unwrap_or_default();
        host.hostname = hostname(index);
        let [_, b, c, d] = index.to_be_bytes();
        let mut addressed = false;
        for (n, interface) in host.interfaces.iter_mut().enumerate() {
            if interface.name == "lo" {
                continue;
            }
            // Locally administered unicast (02:...), distinct per agent and interface.
            interface.mac = format!("02:4c:{:02x}:{b:02x}:{c:02x}:{d:02x}", n & 0xff);
            interface.addresses.clear();
            if !addressed {
                let number = index + 1;
                interface.addresses.push(format!(
                    "198.{}.{}.{}/15",
                    18 + ((number >> 16) & 1),
                    (number >> 8) & 0xff,
                    number & 0xff
                ));
                addressed = true;
            }
        }
        host
    }

    /// The controls, sent whole in every report.
    pub fn controls(&self) -> &[v1::Control] {
        &self.base.controls
    }

    /// The agent version the recording was made with.
    pub fn agent_version(&self) -> &str {
        &self.base.agent_version
    }
}

/// The hostname of simulated agent `index`.
pub fn hostname(index: u32) -> String {
    format!("loadgen-{index:05}")
}

fn version_of(value_json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(value_json).ok()?;
    value.get("version")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_host_is_a_full_inventory() {
        let fixture = Fixture::recorded().unwrap();
        assert!(
            fixture.observation_count() >= 900,
            "{}",
            fixture.observation_count()
        );
        assert!(fixture.package_count() >= 800);
        // Facts of absence (no firewall configured, say) have no evidence line; packages do.
        assert!(
            fixture
                .packages
                .iter()
                .all(|&i| !fixture.base.observations[i].evidence.is_empty()),
            "every package carries evidence"
        );
    }

    #[test]
    fn agents_get_distinct_names_and_addresses_and_churn_changes_a_version() {
        let fixture = Fixture::recorded().unwrap();
        let (a, b) = (fixture.host(0), fixture.host(70_000));
        assert_ne!(a.hostname, b.hostname);
        assert_ne!(a.interfaces[0].mac, b.interfaces[0].mac);
        assert_eq!(a.interfaces[0].addresses, ["198.18.0.1/15"]);
        assert_eq!(b.interfaces[0].addresses, ["198.19.17.113/15"]);
        let index = fixture.package(3);
        let changed = fixture.changed(index, 7);
        assert_ne!(changed.value_json, fixture.observation(index).value_json);
        assert!(
            changed.value_json.contains("+lg7"),
            "{}",
            changed.value_json
        );
    }

    #[test]
    fn a_document_that_is_not_an_inventory_is_refused_by_name() {
        let err = Fixture::parse("{\"observations\": 3}", "x.json").unwrap_err();
        assert!(err.to_string().contains("x.json"), "{err}");
    }
}
