//! The Windows audit policy: each advanced-audit subcategory with whether it records successes
//! and failures, as `audit_policy` observations, and the Logon subcategory that
//! `log_protection` weighs.
//!
//! Two inputs, one result type ([`AuditSubcategory`], built by [`AuditSubcategory::new`] from
//! the subcategory's GUID, name and setting bits):
//! - live, advapi32's `AuditQuerySystemPolicy` through `tillsyn-netapi` (bit flags, not
//!   auditpol's localised text; see that crate) for each of [`SUBCATEGORIES`], named from
//!   that table;
//! - offline, `DIR/recorded/auditpol.csv`, the output of `auditpol /get /category:* /r` (run as
//!   an administrator; `cmd` redirection writes the OEM code page, PowerShell's `>` UTF-16LE,
//!   both read). Its columns are `Machine Name, Policy Target, Subcategory, Subcategory GUID,
//!   Inclusion Setting, Exclusion Setting` and, on newer releases, `Setting Value` (0-3). The
//!   setting is read from `Setting Value` when present, else from the English `Inclusion
//!   Setting` text (`No Auditing`, `Success`, `Failure`, `Success and Failure`); other text (a
//!   localised recording without `Setting Value`) is an error naming the line.
//!
//! Observations are named by the subcategory GUID (the same in every language); the name is in
//! the value.

use serde_json::json;

use crate::inventory::{Evidence, Observation};

/// Named as the probe in evidence and errors.
pub const PROBE: &str = "windows_audit";
/// The recording under `DIR/recorded/`.
pub const RECORDED_FILE: &str = "auditpol.csv";
/// Largest recording read (a full policy is ~60 lines).
pub const MAX_RECORDED_BYTES: usize = 1024 * 1024;
/// Logon/Logoff > Logon: interactive, network and RDP logons (events 4624, 4625).
pub const LOGON: &str = "{0CCE9215-69AE-11D9-BED3-505054503030}";
/// `POLICY_AUDIT_EVENT_SUCCESS`.
const SUCCESS: u32 = 1;
/// `POLICY_AUDIT_EVENT_FAILURE`.
const FAILURE: u32 = 2;

/// The advanced-audit subcategories Windows 10 / Server 2016 and later have, by GUID (all
/// `{0CCE92xx-69AE-11D9-BED3-505054503030}`) with the English names auditpol gives them. The
/// live agent asks for these (the API's own enumeration is missing under wine, see
/// `tillsyn-netapi`) and names them from here, so names are the same in every language.
pub const SUBCATEGORIES: [(u8, &str); 59] = [
    (0x10, "Security State Change"),
    (0x11, "Security System Extension"),
    (0x12, "System Integrity"),
    (0x13, "IPsec Driver"),
    (0x14, "Other System Events"),
    (0x15, "Logon"),
    (0x16, "Logoff"),
    (0x17, "Account Lockout"),
    (0x18, "IPsec Main Mode"),
    (0x19, "IPsec Quick Mode"),
    (0x1A, "IPsec Extended Mode"),
    (0x1B, "Special Logon"),
    (0x1C, "Other Logon/Logoff Events"),
    (0x1D, "File System"),
    (0x1E, "Registry"),
    (0x1F, "Kernel Object"),
    (0x20, "SAM"),
    (0x21, "Certification Services"),
    (0x22, "Application Generated"),
    (0x23, "Handle Manipulation"),
    (0x24, "File Share"),
    (0x25, "Filtering Platform Packet Drop"),
    (0x26, "Filtering Platform Connection"),
    (0x27, "Other Object Access Events"),
    (0x28, "Sensitive Privilege Use"),
    (0x29, "Non Sensitive Privilege Use"),
    (0x2A, "Other Privilege Use Events"),
    (0x2B, "Process Creation"),
    (0x2C, "Process Termination"),
    (0x2D, "DPAPI Activity"),
    (0x2E, "RPC Events"),
    (0x2F, "Audit Policy Change"),
    (0x30, "Authentication Policy Change"),
    (0x31, "Authorization Policy Change"),
    (0x32, "MPSSVC Rule-Level Policy Change"),
    (0x33, "Filtering Platform Policy Change"),
    (0x34, "Other Policy Change Events"),
    (0x35, "User Account Management"),
    (0x36, "Computer Account Management"),
    (0x37, "Security Group Management"),
    (0x38, "Distribution Group Management"),
    (0x39, "Application Group Management"),
    (0x3A, "Other Account Management Events"),
    (0x3B, "Directory Service Access"),
    (0x3C, "Directory Service Changes"),
    (0x3D, "Directory Service Replication"),
    (0x3E, "Detailed Directory Service Replication"),
    (0x3F, "Credential Validation"),
    (0x40, "Kerberos Service Ticket Operations"),
    (0x41, "Other Account Logon Events"),
    (0x42, "Kerberos Authentication Service"),
    (0x43, "Network Policy Server"),
    (0x44, "Detailed File Share"),
    (0x45, "Removable Storage"),
    (0x46, "Central Policy Staging"),
    (0x47, "User / Device Claims"),
    (0x48, "Plug and Play Events"),
    (0x49, "Group Membership"),
    (0x4A, "Token Right Adjusted Events"),
];

/// A subcategory's GUID as a `u128` (for the API) from its [`SUBCATEGORIES`] byte.
pub fn subcategory_id(byte: u8) -> u128 {
    0x0cce_9200_69ae_11d9_bed3_5050_5450_3030 | (u128::from(byte) << 96)
}

/// `{0CCE9215-69AE-11D9-BED3-505054503030}` from a GUID as a `u128`.
pub fn guid_text(id: u128) -> String {
    let hex = format!("{id:032X}");
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// One subcategory's setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSubcategory {
    /// `{0CCE9215-69AE-11D9-BED3-505054503030}` (upper case).
    pub guid: String,
    /// The subcategory's name as the source gives it (localised live).
    pub name: String,
    /// Successes are audited.
    pub success: bool,
    /// Failures are audited.
    pub failure: bool,
    /// Where it was read.
    pub evidence: Evidence,
}

/// Why the audit policy could not be read or parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct AuditError {
    /// The file, or the API call.
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

impl AuditSubcategory {
    /// A subcategory from its GUID, name and setting bits (success 1, failure 2; anything else,
    /// `POLICY_AUDIT_EVENT_NONE` 4 included, audits nothing).
    pub fn new(guid: &str, name: &str, bits: u32, evidence: Evidence) -> Self {
        Self {
            guid: guid.trim().to_ascii_uppercase(),
            name: name.trim().to_string(),
            success: bits & SUCCESS != 0,
            failure: bits & FAILURE != 0,
            evidence,
        }
    }

    /// `success_and_failure`, `success`, `failure` or `no_auditing`.
    pub fn setting(&self) -> &'static str {
        match (self.success, self.failure) {
            (true, true) => "success_and_failure",
            (true, false) => "success",
            (false, true) => "failure",
            (false, false) => "no_auditing",
        }
    }
}

/// Parses `auditpol /get /category:* /r` output (see the module header).
pub fn parse_auditpol_csv(text: &str, source: &str) -> Result<Vec<AuditSubcategory>, AuditError> {
    let fail = |line: usize, message: String| AuditError {
        source_name: source.into(),
        message: if line == 0 {
            message
        } else {
            format!("line {line}: {message}")
        },
    };
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((header_no, header)) = lines.next() else {
        return Err(fail(0, "empty: not auditpol /r output".into()));
    };
    let header = split_csv(header).map_err(|e| fail(header_no, e))?;
    if header.len() < 6 || !header[3].eq_ignore_ascii_case("Subcategory GUID") {
        return Err(fail(
            header_no,
            "no \"Subcategory GUID\" in the fourth column: not auditpol /get /r output".into(),
        ));
    }
    let value_column = header
        .iter()
        .position(|h| h.eq_ignore_ascii_case("Setting Value"));
    let mut out = Vec::new();
    for (line_no, line) in lines {
        let fields = split_csv(line).map_err(|e| fail(line_no, e))?;
        if fields.len() < 6 {
            return Err(fail(
                line_no,
                format!("{} fields, expected at least 6", fields.len()),
            ));
        }
        let (name, guid, inclusion) = (&fields[2], &fields[3], &fields[4]);
        if !is_guid(guid) {
            return Err(fail(line_no, format!("{guid:?} is not a subcategory GUID")));
        }
        let numeric = value_column
            .and_then(|at| fields.get(at))
            .filter(|v| !v.trim().is_empty());
        let bits = match numeric {
            Some(value) => value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|v| *v <= 3)
                .ok_or_else(|| fail(line_no, format!("Setting Value {value:?} is not 0-3")))?,
            None => match inclusion.trim() {
                "No Auditing" => 0,
                "Success" => SUCCESS,
                "Failure" => FAILURE,
                "Success and Failure" => SUCCESS | FAILURE,
                other => {
                    return Err(fail(
                        line_no,
                        format!(
                            "Inclusion Setting {other:?} is not auditpol's English text and there is no Setting Value column"
                        ),
                    ));
                }
            },
        };
        let evidence = Evidence {
            source: source.into(),
            line: u32::try_from(line_no).unwrap_or(u32::MAX),
            probe: PROBE.into(),
            detail: format!("{name}: {inclusion}"),
        };
        out.push(AuditSubcategory::new(guid, name, bits, evidence));
    }
    if out.is_empty() {
        return Err(fail(0, "no subcategory rows".into()));
    }
    Ok(out)
}

/// Splits one CSV line: commas, with `"..."` fields whose `""` is a quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

fn is_guid(text: &str) -> bool {
    let b = text.trim().as_bytes();
    b.len() == 38
        && b[0] == b'{'
        && b[37] == b'}'
        && b[1..37].iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// One `audit_policy` observation per subcategory, named by its GUID.
pub fn observations(policy: &[AuditSubcategory]) -> Vec<Observation> {
    let mut seen = std::collections::BTreeSet::new();
    policy
        .iter()
        .filter(|s| seen.insert(s.guid.clone()))
        .map(|s| Observation {
            category: "audit_policy".into(),
            name: s.guid.clone(),
            value: json!({
                "subcategory": s.name,
                "success": s.success,
                "failure": s.failure,
                "setting": s.setting(),
            }),
            evidence: vec![s.evidence.clone()],
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    const CSV: &str = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting\r\n\
SRV,System,Security System Extension,{0CCE9211-69AE-11D9-BED3-505054503030},No Auditing,\r\n\
SRV,System,Logon,{0CCE9215-69AE-11D9-BED3-505054503030},Success and Failure,\r\n\
SRV,System,Logoff,{0CCE9216-69AE-11D9-BED3-505054503030},Success,\r\n\
SRV,System,Account Lockout,{0CCE9217-69AE-11D9-BED3-505054503030},Failure,\r\n";

    #[test]
    fn the_subcategory_table_gives_auditpol_guids() {
        assert_eq!(guid_text(subcategory_id(0x15)), LOGON);
        assert_eq!(SUBCATEGORIES[5], (0x15, "Logon"));
        let mut seen = std::collections::BTreeSet::new();
        assert!(SUBCATEGORIES.iter().all(|(b, _)| seen.insert(*b)));
    }

    #[test]
    fn english_inclusion_text_is_read() {
        let policy = parse_auditpol_csv(CSV, "/recorded/auditpol.csv").unwrap();
        assert_eq!(policy.len(), 4);
        let logon = &policy[1];
        assert_eq!(logon.guid, LOGON);
        assert_eq!(logon.setting(), "success_and_failure");
        assert_eq!(logon.evidence.line, 3);
        assert_eq!(logon.evidence.detail, "Logon: Success and Failure");
        assert_eq!(policy[0].setting(), "no_auditing");
        assert_eq!(policy[2].setting(), "success");
        assert_eq!(policy[3].setting(), "failure");
        let obs = observations(&policy);
        assert_eq!(obs[1].name, LOGON);
        assert_eq!(obs[1].value["subcategory"], "Logon");
    }

    #[test]
    fn setting_value_wins_over_localised_text() {
        let csv = "Machine Name,Policy Target,Subcategory,Subcategory GUID,Inclusion Setting,Exclusion Setting,Setting Value\n\
SRV,System,Inloggning,{0cce9215-69ae-11d9-bed3-505054503030},Lyckade och misslyckade,,3\n";
        let policy = parse_auditpol_csv(csv, "f").unwrap();
        assert_eq!(policy[0].guid, LOGON);
        assert!(policy[0].success && policy[0].failure);
        let without = csv.replace(",Setting Value", "").replace(",,3", ",");
        let e = parse_auditpol_csv(&without, "f").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f: line 2: Inclusion Setting \"Lyckade och misslyckade\""),
            "{e}"
        );
    }

    #[test]
    fn quoted_fields_and_bad_input() {
        let quoted = CSV.replace("Security System Extension", "\"Extension, \"\"quoted\"\"\"");
        let policy = parse_auditpol_csv(&quoted, "f").unwrap();
        assert_eq!(policy[0].name, "Extension, \"quoted\"");
        for (bad, says) in [
            ("", "empty"),
            ("a,b,c\n", "line 1: no \"Subcategory GUID\""),
            (
                &CSV.replace("{0CCE9216-69AE-11D9-BED3-505054503030}", "{x}"),
                "line 4: \"{x}\"",
            ),
            (
                &CSV.replace("Success,\r\n", "\"Success,\r\n"),
                "line 4: unterminated",
            ),
            (CSV.lines().next().unwrap(), "no subcategory rows"),
        ] {
            let e = parse_auditpol_csv(bad, "f").unwrap_err();
            assert!(e.message.contains(says), "{bad:?}: {e}");
        }
    }
}
