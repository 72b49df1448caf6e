//! The system register (catalog): business systems with owners, classification (K/R/T),
//! link rules and attestations, imported from CSV or YAML.
//!
//! Both formats are read into [`RawSystem`] (strings, as written) and validated by one function,
//! so a CSV row and a YAML entry obey the same rules and give the same errors. Import is all or
//! nothing: any error and nothing is stored. This crate does no I/O beyond reading the file.
//!
//! A crate of its own (the collector re-exports it as `tillsyn_collector::catalog`) so that the
//! register's fuzz targets link only the parser, not the collector.
//!
//! # Layout
//! - `lib.rs`: the register's types ([`System`] and its parts), [`load`]/[`parse`], and the one
//!   validation both formats go through.
//! - `csv_format`: CSV (Excel's Swedish `;` export with BOM, or `,`) into [`RawSystem`]s.
//! - `yaml_format`: YAML documents into [`RawSystem`]s.

mod csv_format;
mod yaml_format;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};
use time::Date;

/// Largest register file accepted (bytes); larger files are refused before parsing.
pub const MAX_FILE_BYTES: u64 = 50 * 1024 * 1024;
/// Most systems accepted in one register.
pub const MAX_SYSTEMS: usize = 100_000;

/// A person named in the register.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Person {
    /// Full name.
    pub name: String,
    /// E-mail address, lowercase.
    pub email: Option<String>,
}

/// Confidentiality, integrity and availability levels 0-3 with who decided them and when.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Classification {
    /// Konfidentialitet (confidentiality), 0-3.
    pub k: u8,
    /// Riktighet (integrity), 0-3.
    pub r: u8,
    /// Tillgänglighet (availability), 0-3.
    pub t: u8,
    /// Spårbarhet (traceability), 0-3, the optional fourth aspect of SKR's KLASSA; where given,
    /// the logging rule follows it instead of K.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<u8>,
    /// Date of the classification.
    pub classified_at: Date,
    /// Who classified.
    pub classified_by: String,
    /// Why.
    pub rationale: String,
}

/// How assets are linked to a system.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LinkRules {
    /// Hostname globs, e.g. `journal-db-*`.
    pub hostnames: Vec<String>,
    /// Networks, e.g. `10.20.0.0/24`.
    pub cidrs: Vec<ipnet::IpNet>,
    /// Agent labels that must match exactly.
    pub labels: BTreeMap<String, String>,
    /// Device patterns `vendor:model` with globs, e.g. `Hikvision:DS-2CD*`.
    pub devices: Vec<String>,
    /// Explicit asset ids (these beat every pattern).
    pub asset_ids: Vec<String>,
}

/// A signed-off statement where no probe can see the truth.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attestation {
    /// The control it vouches for: `mfa`, `transit_encryption` or `rest_encryption`.
    pub control: String,
    /// The statement.
    pub statement: String,
    /// Who attested.
    pub attested_by: String,
    /// When.
    pub attested_at: Date,
    /// Until when it counts.
    pub expires_at: Date,
}

/// A business system from the register.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct System {
    /// Register id, unique.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Systemägare.
    pub system_owner: Option<Person>,
    /// Systemförvaltare.
    pub system_administrator: Option<Person>,
    /// Informationsägare.
    pub information_owner: Option<Person>,
    /// None = unclassified.
    pub classification: Option<Classification>,
    /// Samhällsviktig.
    pub critical_to_society: bool,
    /// Verksamhetskritisk.
    pub business_critical: bool,
    /// Link rules.
    pub links: LinkRules,
    /// Attestations.
    pub attestations: Vec<Attestation>,
}

/// A system as written in the file: strings, not yet validated.
#[derive(Clone, Debug, Default)]
pub struct RawSystem {
    /// Where it came from: `line 7` or `systems[3]`.
    pub location: String,
    /// Named fields (canonical English names) to their text.
    pub fields: HashMap<&'static str, String>,
    /// List fields (canonical names) to their items.
    pub lists: HashMap<&'static str, Vec<String>>,
    /// Attestations as field maps.
    pub attestations: Vec<HashMap<&'static str, String>>,
}

/// One problem in a register file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// `line 7`, `systems[3]`, or `file`.
    pub location: String,
    /// The column or key.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.location, self.problem)
        } else {
            write!(f, "{}: {}: {}", self.location, self.field, self.problem)
        }
    }
}

/// Why a register file was refused; nothing was imported.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {} problem(s), nothing imported:\n{}", errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct CatalogError {
    /// The file.
    pub path: String,
    /// Every problem found.
    pub errors: Vec<RowError>,
}

fn file_error(path: &Path, problem: impl Into<String>) -> CatalogError {
    CatalogError {
        path: path.display().to_string(),
        errors: vec![RowError {
            location: "file".into(),
            field: String::new(),
            problem: problem.into(),
        }],
    }
}

/// Reads and validates a register file (CSV or YAML by extension, else by content).
pub fn load(path: &Path) -> Result<Vec<System>, CatalogError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, e.to_string()))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(file_error(
            path,
            format!(
                "{} bytes is more than the {MAX_FILE_BYTES} byte limit for a register",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e.to_string()))?;
    parse(path, &bytes)
}

/// Parses and validates register bytes; `path` decides the format and names errors.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Vec<System>, CatalogError> {
    let text = std::str::from_utf8(bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes))
        .map_err(|e| file_error(path, format!("not UTF-8: {e}")))?;
    let raws = if is_yaml(path, text) {
        yaml_format::read(text)
    } else {
        csv_format::read(text)
    }
    .map_err(|errors| CatalogError {
        path: path.display().to_string(),
        errors,
    })?;
    if raws.len() > MAX_SYSTEMS {
        return Err(file_error(
            path,
            format!("{} systems, more than the {MAX_SYSTEMS} limit", raws.len()),
        ));
    }
    validate_all(&raws).map_err(|errors| CatalogError {
        path: path.display().to_string(),
        errors,
    })
}

fn is_yaml(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => true,
        Some("csv") => false,
        _ => text.trim_start().starts_with("systems:") || text.trim_start().starts_with("---"),
    }
}

fn validate_all(raws: &[RawSystem]) -> Result<Vec<System>, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut systems = Vec::with_capacity(raws.len());
    let mut seen: HashMap<String, String> = HashMap::new();
    for raw in raws {
        let id = raw
            .fields
            .get("system_id")
            .map(|id| id.trim().to_string())
            .unwrap_or_default();
        if !id.is_empty() {
            if let Some(first) = seen.get(&id) {
                errors.push(RowError {
                    location: raw.location.clone(),
                    field: "system_id".into(),
                    problem: format!("duplicate system id {id:?} (first at {first})"),
                });
                continue;
            }
            seen.insert(id, raw.location.clone());
        }
        match validate(raw) {
            Ok(system) => systems.push(system),
            Err(mut row_errors) => errors.append(&mut row_errors),
        }
    }
    if errors.is_empty() {
        Ok(systems)
    } else {
        Err(errors)
    }
}

/// Collects problems of one system while validating it.
struct Check<'a> {
    raw: &'a RawSystem,
    errors: Vec<RowError>,
}

impl Check<'_> {
    fn fail(&mut self, field: &str, problem: impl Into<String>) {
        self.errors.push(RowError {
            location: self.raw.location.clone(),
            field: field.into(),
            problem: problem.into(),
        });
    }

    fn text(&self, field: &str) -> String {
        self.raw
            .fields
            .get(field)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    }

    fn list(&self, field: &str) -> Vec<String> {
        self.raw.lists.get(field).cloned().unwrap_or_default()
    }

    fn level(&mut self, field: &str) -> Option<u8> {
        let text = self.text(field);
        if text.is_empty() {
            return None;
        }
        let digits = text.trim_start_matches(['K', 'R', 'T', 'S', 'k', 'r', 't', 's']);
        match digits.parse::<u8>() {
            Ok(level) if level <= 3 => Some(level),
            _ => {
                self.fail(field, format!("{text:?} is not a level 0-3"));
                None
            }
        }
    }

    fn flag(&mut self, field: &str) -> bool {
        let text = self.text(field).to_lowercase();
        match text.as_str() {
            "" | "no" | "nej" | "false" | "0" | "n" => false,
            "yes" | "ja" | "true" | "1" | "x" | "j" | "y" => true,
            _ => {
                self.fail(field, format!("{text:?} is not yes/no (ja/nej)"));
                false
            }
        }
    }

    fn person(&mut self, field: &str, email_field: &str) -> Option<Person> {
        let name = self.text(field);
        let email = self.text(email_field);
        if name.is_empty() && email.is_empty() {
            return None;
        }
        let (name, inline_email) = split_name_email(&name);
        let email = if email.is_empty() {
            inline_email
        } else {
            Some(email.to_lowercase())
        };
        if let Some(email) = &email
            && !is_email(email)
        {
            self.fail(email_field, format!("{email:?} is not an e-mail address"));
        }
        Some(Person { name, email })
    }
}

/// `Anna Svensson <anna@kommun.se>` -> ("Anna Svensson", Some("anna@kommun.se")); a bare
/// address is both name and e-mail.
fn split_name_email(text: &str) -> (String, Option<String>) {
    if let Some((name, rest)) = text.split_once('<')
        && let Some(email) = rest.strip_suffix('>')
    {
        return (name.trim().to_string(), Some(email.trim().to_lowercase()));
    }
    if is_email(text) {
        return (text.to_string(), Some(text.to_lowercase()));
    }
    (text.to_string(), None)
}

fn is_email(text: &str) -> bool {
    text.split_once('@').is_some_and(|(user, domain)| {
        !user.is_empty() && domain.contains('.') && !text.contains(char::is_whitespace)
    })
}

/// Parses an ISO date `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).map_err(|_| format!("{text:?} is not a date like 2026-01-31"))
}

fn validate(raw: &RawSystem) -> Result<System, Vec<RowError>> {
    let mut check = Check {
        raw,
        errors: Vec::new(),
    };
    let id = check.text("system_id");
    if id.is_empty() {
        check.fail("system_id", "is required");
    }
    let name = check.text("name");
    if name.is_empty() {
        check.fail("name", "is required");
    }
    let system = System {
        description: check.text("description"),
        system_owner: check.person("system_owner", "system_owner_email"),
        system_administrator: check.person("system_administrator", "system_administrator_email"),
        information_owner: check.person("information_owner", "information_owner_email"),
        classification: classification(&mut check),
        critical_to_society: check.flag("critical_to_society"),
        business_critical: check.flag("business_critical"),
        links: links(&mut check),
        attestations: attestations(&mut check),
        id,
        name,
    };
    if check.errors.is_empty() {
        Ok(system)
    } else {
        Err(check.errors)
    }
}

fn classification(check: &mut Check<'_>) -> Option<Classification> {
    let errors_before = check.errors.len();
    let (k, r, t) = (check.level("k"), check.level("r"), check.level("t"));
    let s = check.level("s");
    if check.errors.len() > errors_before {
        return None;
    }
    let at = check.text("classified_at");
    let (k, r, t) = match (k, r, t) {
        (None, None, None) => {
            if !at.is_empty() {
                check.fail("classified_at", "given, but K, R and T are empty");
            }
            if s.is_some() {
                check.fail("s", "given, but K, R and T are empty");
            }
            return None;
        }
        (Some(k), Some(r), Some(t)) => (k, r, t),
        _ => {
            check.fail("k", "K, R and T must all be given (0-3) or all be empty");
            return None;
        }
    };
    let classified_at = if at.is_empty() {
        check.fail(
            "classified_at",
            "is required when K/R/T are given (the yearly review counts from it)",
        );
        return None;
    } else {
        match parse_date(&at) {
            Ok(date) => date,
            Err(problem) => {
                check.fail("classified_at", problem);
                return None;
            }
        }
    };
    Some(Classification {
        k,
        r,
        t,
        s,
        classified_at,
        classified_by: check.text("classified_by"),
        rationale: check.text("rationale"),
    })
}

fn links(check: &mut Check<'_>) -> LinkRules {
    let mut rules = LinkRules {
        hostnames: check.list("hostnames"),
        devices: check.list("devices"),
        asset_ids: check.list("asset_ids"),
        ..LinkRules::default()
    };
    for glob in &rules.hostnames {
        if let Err(e) = globset::Glob::new(&glob.to_lowercase()) {
            check.fail("hostnames", format!("{glob:?}: {e}"));
        }
    }
    for cidr in check.list("cidrs") {
        match cidr
            .parse::<ipnet::IpNet>()
            .or_else(|_| cidr.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        {
            Ok(net) => rules.cidrs.push(net),
            Err(_) => check.fail(
                "cidrs",
                format!("{cidr:?} is not a network like 10.0.0.0/24"),
            ),
        }
    }
    for label in check.list("labels") {
        match label.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                rules
                    .labels
                    .insert(key.trim().to_string(), value.trim().to_string());
            }
            _ => check.fail("labels", format!("{label:?} must look like key=value")),
        }
    }
    rules.devices.retain(|pattern| {
        let ok = pattern.contains(':');
        if !ok {
            check.errors.push(RowError {
                location: check.raw.location.clone(),
                field: "devices".into(),
                problem: format!("{pattern:?} must look like vendor:model (globs allowed)"),
            });
        }
        ok
    });
    rules
}

/// The controls an asset reports, each of which an attestation may cover.
pub const CONTROLS: &[&str] = &[
    "mfa",
    "transit_encryption",
    "rest_encryption",
    "log_protection",
    "privileged_access",
];

/// The control name of an attestation that a system has no technical footprint Tillsyn can
/// reach (a SaaS service, a supplier's hosting): it answers `unverified-system` until it expires.
pub const NO_FOOTPRINT: &str = "no_footprint";

/// What an attestation may cover: a control, or [`NO_FOOTPRINT`] for a system Tillsyn cannot
/// reach.
fn attestable(name: &str) -> bool {
    CONTROLS.contains(&name) || name == NO_FOOTPRINT
}

fn attestations(check: &mut Check<'_>) -> Vec<Attestation> {
    let mut list = Vec::new();
    for fields in check.raw.attestations.clone() {
        let get = |k: &str| {
            fields
                .get(k)
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        if fields.values().all(|v| v.trim().is_empty()) {
            continue;
        }
        let control = get("control");
        if !attestable(&control) {
            check.fail(
                "attestation_control",
                format!(
                    "{control:?} is not one of {}, {}",
                    CONTROLS.join(", "),
                    NO_FOOTPRINT
                ),
            );
            continue;
        }
        let attested_by = get("attested_by");
        if attested_by.is_empty() {
            check.fail(
                "attestation_by",
                "an attestation needs the person who signed it",
            );
        }
        let dates = (
            parse_date(&get("attested_at")),
            parse_date(&get("expires_at")),
        );
        match dates {
            (Ok(attested_at), Ok(expires_at)) if !attested_by.is_empty() => {
                list.push(Attestation {
                    control,
                    statement: get("statement"),
                    attested_by,
                    attested_at,
                    expires_at,
                });
            }
            (Err(problem), _) => check.fail("attestation_at", problem),
            (_, Err(problem)) => check.fail("attestation_expires", problem),
            _ => {}
        }
    }
    list
}

#[cfg(test)]
mod tests;
