//! CSV registers as municipalities export them from spreadsheets: `;` or `,` separated, UTF-8
//! with or without BOM, Swedish or English headers. One system per row; list cells (hostnames,
//! networks, labels, device patterns, asset ids) are separated by `|`, `,`, `;` or newlines
//! inside the cell. One attestation per row via the `attestation_*` columns.

use std::collections::HashMap;

use super::{RawSystem, RowError};

/// Canonical field name for each accepted header (lowercase, spaces and dashes as `_`).
const HEADERS: &[(&str, &[&str])] = &[
    (
        "system_id",
        &["system_id", "systemid", "id", "system_nr", "systemnummer"],
    ),
    (
        "name",
        &["name", "namn", "system_name", "systemnamn", "system"],
    ),
    ("description", &["description", "beskrivning"]),
    (
        "system_owner",
        &["system_owner", "systemägare", "owner", "ägare"],
    ),
    (
        "system_owner_email",
        &[
            "system_owner_email",
            "systemägare_epost",
            "systemägare_e_post",
            "owner_email",
        ],
    ),
    (
        "system_administrator",
        &["system_administrator", "systemförvaltare", "administrator"],
    ),
    (
        "system_administrator_email",
        &[
            "system_administrator_email",
            "systemförvaltare_epost",
            "systemförvaltare_e_post",
        ],
    ),
    (
        "information_owner",
        &["information_owner", "informationsägare"],
    ),
    (
        "information_owner_email",
        &[
            "information_owner_email",
            "informationsägare_epost",
            "informationsägare_e_post",
        ],
    ),
    ("k", &["k", "konfidentialitet", "confidentiality"]),
    ("r", &["r", "riktighet", "integrity"]),
    ("t", &["t", "tillgänglighet", "availability"]),
    ("s", &["s", "spårbarhet", "traceability"]),
    (
        "classified_at",
        &[
            "classified_at",
            "klassad_datum",
            "klassningsdatum",
            "klassad",
            "classification_date",
        ],
    ),
    ("classified_by", &["classified_by", "klassad_av"]),
    ("rationale", &["rationale", "motivering"]),
    (
        "critical_to_society",
        &["critical_to_society", "samhällsviktig"],
    ),
    (
        "business_critical",
        &["business_critical", "verksamhetskritisk"],
    ),
    ("hostnames", &["hostnames", "värdnamn", "hosts"]),
    ("cidrs", &["cidrs", "nät", "nätverk", "networks"]),
    ("labels", &["labels", "etiketter", "agent_labels"]),
    ("devices", &["devices", "enheter", "device_patterns"]),
    ("asset_ids", &["asset_ids", "tillgångar", "assets"]),
    (
        "attestation.control",
        &["attestation_control", "intygande_kontroll"],
    ),
    (
        "attestation.statement",
        &["attestation_statement", "intygande"],
    ),
    ("attestation.attested_by", &["attestation_by", "intygat_av"]),
    (
        "attestation.attested_at",
        &["attestation_at", "intygat_datum"],
    ),
    (
        "attestation.expires_at",
        &[
            "attestation_expires",
            "intygande_upphör",
            "intygande_giltigt_till",
        ],
    ),
];

const LIST_FIELDS: &[&str] = &["hostnames", "cidrs", "labels", "devices", "asset_ids"];

fn canonical(header: &str) -> Option<&'static str> {
    let key: String = header
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    HEADERS
        .iter()
        .find(|(_, aliases)| aliases.contains(&key.as_str()))
        .map(|(name, _)| *name)
}

fn delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or_default();
    if header.matches(';').count() > header.matches(',').count() {
        b';'
    } else {
        b','
    }
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split(['|', ',', ';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Reads every row; header problems and malformed rows are all reported.
pub fn read(text: &str) -> Result<Vec<RawSystem>, Vec<RowError>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(text))
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| vec![row_error("line 1", "", e.to_string())])?
        .clone();
    let mut columns = Vec::with_capacity(headers.len());
    let mut errors = Vec::new();
    for header in &headers {
        match canonical(header) {
            Some(name) if columns.contains(&Some(name)) => {
                errors.push(row_error("line 1", header, "column appears twice"));
            }
            Some(name) => columns.push(Some(name)),
            None => {
                errors.push(row_error("line 1", header, "unknown column"));
                columns.push(None);
            }
        }
    }
    if !columns.contains(&Some("system_id")) {
        errors.push(row_error(
            "line 1",
            "system_id",
            "the register needs a system id column",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut systems = Vec::new();
    for record in reader.records() {
        match record {
            Ok(record) => {
                let line = record.position().map_or(0, csv::Position::line);
                if record.iter().all(|cell| cell.trim().is_empty()) {
                    continue;
                }
                systems.push(raw_system(&columns, &record, line));
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(row_error(&format!("line {line}"), "", e.to_string()));
            }
        }
    }
    if errors.is_empty() {
        Ok(systems)
    } else {
        Err(errors)
    }
}

fn raw_system(
    columns: &[Option<&'static str>],
    record: &csv::StringRecord,
    line: u64,
) -> RawSystem {
    let mut raw = RawSystem {
        location: format!("line {line}"),
        ..RawSystem::default()
    };
    let mut attestation = HashMap::new();
    for (column, cell) in columns.iter().zip(record.iter()) {
        let Some(name) = column else { continue };
        if let Some(field) = name.strip_prefix("attestation.") {
            let field: &'static str = match field {
                "control" => "control",
                "statement" => "statement",
                "attested_by" => "attested_by",
                "attested_at" => "attested_at",
                _ => "expires_at",
            };
            attestation.insert(field, cell.to_string());
        } else if LIST_FIELDS.contains(name) {
            raw.lists.insert(name, split_list(cell));
        } else {
            raw.fields.insert(name, cell.to_string());
        }
    }
    if !attestation.is_empty() {
        raw.attestations.push(attestation);
    }
    raw
}

fn row_error(location: &str, field: &str, problem: impl Into<String>) -> RowError {
    RowError {
        location: location.to_string(),
        field: field.to_string(),
        problem: problem.into(),
    }
}
