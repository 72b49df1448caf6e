//! YAML registers: a `systems:` list with nested owners, classification, links and
//! attestations. Unknown keys are errors, like unknown CSV columns.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{RawSystem, RowError};

/// A scalar written as text, number or boolean; kept as text for the shared validation.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(i64),
    Flag(bool),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::Number(n) => n.to_string(),
            Self::Flag(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum PersonEntry {
    Inline(String),
    Full { name: String, email: Option<String> },
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct Register {
    systems: Vec<SystemEntry>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct SystemEntry {
    id: Option<Scalar>,
    name: Option<String>,
    description: Option<String>,
    system_owner: Option<PersonEntry>,
    system_administrator: Option<PersonEntry>,
    information_owner: Option<PersonEntry>,
    classification: Option<ClassificationEntry>,
    critical_to_society: Option<Scalar>,
    business_critical: Option<Scalar>,
    #[serde(default)]
    links: LinksEntry,
    #[serde(default)]
    attestations: Vec<AttestationEntry>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ClassificationEntry {
    k: Option<Scalar>,
    r: Option<Scalar>,
    t: Option<Scalar>,
    s: Option<Scalar>,
    classified_at: Option<Scalar>,
    classified_by: Option<String>,
    rationale: Option<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct LinksEntry {
    #[serde(default)]
    hostnames: Vec<String>,
    #[serde(default)]
    cidrs: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    asset_ids: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct AttestationEntry {
    control: Option<String>,
    statement: Option<String>,
    attested_by: Option<String>,
    attested_at: Option<Scalar>,
    expires_at: Option<Scalar>,
}

/// Reads the `systems:` list.
pub fn read(text: &str) -> Result<Vec<RawSystem>, Vec<RowError>> {
    let register: Register = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e
            .location()
            .map_or_else(|| "file".to_string(), |l| format!("line {}", l.line()));
        vec![RowError {
            location,
            field: String::new(),
            problem: e.to_string(),
        }]
    })?;
    Ok(register
        .systems
        .into_iter()
        .enumerate()
        .map(|(i, s)| raw(i, s))
        .collect())
}

fn raw(index: usize, entry: SystemEntry) -> RawSystem {
    let mut fields: HashMap<&'static str, String> = HashMap::new();
    let mut put = |key: &'static str, value: Option<String>| {
        if let Some(value) = value {
            fields.insert(key, value);
        }
    };
    put("system_id", entry.id.as_ref().map(Scalar::text));
    put("name", entry.name);
    put("description", entry.description);
    for (key, person) in [
        ("system_owner", entry.system_owner),
        ("system_administrator", entry.system_administrator),
        ("information_owner", entry.information_owner),
    ] {
        match person {
            Some(PersonEntry::Inline(text)) => put(key, Some(text)),
            Some(PersonEntry::Full { name, email }) => {
                put(key, Some(name));
                let email_key = match key {
                    "system_owner" => "system_owner_email",
                    "system_administrator" => "system_administrator_email",
                    _ => "information_owner_email",
                };
                put(email_key, email);
            }
            None => {}
        }
    }
    if let Some(c) = entry.classification {
        put("k", c.k.as_ref().map(Scalar::text));
        put("r", c.r.as_ref().map(Scalar::text));
        put("t", c.t.as_ref().map(Scalar::text));
        put("s", c.s.as_ref().map(Scalar::text));
        put("classified_at", c.classified_at.as_ref().map(Scalar::text));
        put("classified_by", c.classified_by);
        put("rationale", c.rationale);
    }
    put(
        "critical_to_society",
        entry.critical_to_society.as_ref().map(Scalar::text),
    );
    put(
        "business_critical",
        entry.business_critical.as_ref().map(Scalar::text),
    );

    let links = entry.links;
    let lists = HashMap::from([
        ("hostnames", links.hostnames),
        ("cidrs", links.cidrs),
        (
            "labels",
            links
                .labels
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        ("devices", links.devices),
        ("asset_ids", links.asset_ids),
    ]);
    let attestations = entry
        .attestations
        .into_iter()
        .map(|a| {
            HashMap::from([
                ("control", a.control.unwrap_or_default()),
                ("statement", a.statement.unwrap_or_default()),
                ("attested_by", a.attested_by.unwrap_or_default()),
                (
                    "attested_at",
                    a.attested_at.map(|s| s.text()).unwrap_or_default(),
                ),
                (
                    "expires_at",
                    a.expires_at.map(|s| s.text()).unwrap_or_default(),
                ),
            ])
        })
        .collect();
    RawSystem {
        location: format!("systems[{index}]"),
        fields,
        lists,
        attestations,
    }
}
