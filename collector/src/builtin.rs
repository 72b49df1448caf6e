//! The collector judges itself: its database aggregates every weakness found, which is K3
//! information. The built-in system `tillsyn` (K3/R3/T3, the coordinator as owner) claims the
//! collector's own host, so the same rules flag its unencrypted volume or password-only SSH.
//!
//! The collector's host is the host asset of an agent enrolled with the label
//! `tillsyn=collector` (`quickstart` enrolls its local agent so). That link is always made and
//! is never a link conflict: the host may belong to business systems as well. A register row
//! with id `tillsyn` overrides the built-in definition (classification, owners, further link
//! rules); without one the built-in is evaluated and listed like any other system as soon as
//! an agent carries the label (before that it has nothing to judge and is left out, so it does
//! not count as a compliant K3 system in the report). Pure.

use std::collections::BTreeMap;

use crate::catalog::{Classification, LinkRules, Person, System};
use crate::linking::{AssetLinks, Link};

/// Id of the built-in system; a register row with this id overrides it.
pub const SYSTEM_ID: &str = "tillsyn";
/// The agent label that marks the collector's own host.
pub const LABEL_KEY: &str = "tillsyn";
/// Value of [`LABEL_KEY`] on the collector's own host.
pub const LABEL_VALUE: &str = "collector";
/// Owner of the built-in system: the role, since the register names no person for it.
pub const OWNER: &str = "coordinator";

/// The built-in definition, classified on `today` (it is fixed by the software, not reviewed
/// by a person, so it is never due for review; override it to record a real review).
pub fn system(today: time::Date) -> System {
    let coordinator = Person {
        name: OWNER.into(),
        email: None,
    };
    System {
        id: SYSTEM_ID.into(),
        name: "Tillsyn (this collector)".into(),
        description: "Built in: the collector's database aggregates every weakness found in the organisation.".into(),
        system_owner: Some(coordinator.clone()),
        system_administrator: None,
        information_owner: Some(coordinator),
        classification: Some(Classification {
            k: 3,
            r: 3,
            t: 3,
            s: None,
            classified_at: today,
            classified_by: "tillsyn (built in)".into(),
            rationale: "An aggregate of every weakness found is K3 information; override with a `tillsyn` row in the register.".into(),
        }),
        critical_to_society: false,
        business_critical: false,
        links: LinkRules {
            labels: BTreeMap::from([(LABEL_KEY.to_string(), LABEL_VALUE.to_string())]),
            ..LinkRules::default()
        },
        attestations: vec![],
    }
}

/// True when these agent labels mark the collector's own host.
pub fn is_collector(labels: &BTreeMap<String, String>) -> bool {
    labels.get(LABEL_KEY).is_some_and(|v| v == LABEL_VALUE)
}

/// The register with the built-in appended when an agent runs on the collector's host
/// (`collector_host`), unless the register defines `tillsyn` itself.
pub fn with_builtin(
    mut register: Vec<System>,
    collector_host: bool,
    today: time::Date,
) -> Vec<System> {
    if collector_host && !register.iter().any(|s| s.id == SYSTEM_ID) {
        register.push(system(today));
    }
    register
}

/// Links the collector's own host (a host asset, of `kind`, whose agent carries the label
/// in `labels`) to `tillsyn`, in addition to whatever the register linked it to and without
/// making it a conflict.
pub fn link_collector_host(kind: &str, labels: &BTreeMap<String, String>, links: &mut AssetLinks) {
    if kind != "host" || !is_collector(labels) {
        return;
    }
    // A pattern link to `tillsyn` alongside others is the built-in's, not a conflict.
    links
        .links
        .retain(|l| l.system_id != SYSTEM_ID || l.explicit);
    if links.links.len() <= 1 {
        links.conflict = None;
    }
    if !links.links.iter().any(|l| l.system_id == SYSTEM_ID) {
        links.links.push(Link {
            system_id: SYSTEM_ID.into(),
            reason: format!(
                "agent label {LABEL_KEY}={LABEL_VALUE}: the collector's own host (built in)"
            ),
            explicit: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_register_overrides_the_builtin() {
        let today = time::macros::date!(2026 - 12 - 01);
        assert!(with_builtin(vec![], false, today).is_empty());
        let systems = with_builtin(vec![], true, today);
        assert_eq!(systems.len(), 1);
        let c = systems[0].classification.as_ref().unwrap();
        assert_eq!((c.k, c.r, c.t), (3, 3, 3));
        assert_eq!(systems[0].system_owner.as_ref().unwrap().name, OWNER);
        let mut own = system(today);
        own.classification = None;
        own.name = "Ours".into();
        let systems = with_builtin(vec![own], true, today);
        assert_eq!(systems.len(), 1);
        assert_eq!(systems[0].name, "Ours");
    }

    #[test]
    fn only_a_labelled_host_is_linked_and_never_as_a_conflict() {
        let labels = BTreeMap::from([(LABEL_KEY.to_string(), LABEL_VALUE.to_string())]);
        let mut links = AssetLinks {
            links: vec![Link {
                system_id: "patientjournal".into(),
                reason: "agent label source=quickstart".into(),
                explicit: false,
            }],
            conflict: None,
        };
        link_collector_host("host", &labels, &mut links);
        let ids: Vec<&str> = links.links.iter().map(|l| l.system_id.as_str()).collect();
        assert_eq!(ids, ["patientjournal", "tillsyn"]);
        assert!(links.conflict.is_none());

        let mut links = AssetLinks::default();
        link_collector_host("device", &labels, &mut links);
        link_collector_host("host", &BTreeMap::new(), &mut links);
        assert!(links.links.is_empty());
    }
}
