//! RD Gateway and the NPS extension for Microsoft Entra (Azure) MFA, where the host itself can
//! tell: `rd_gateway` observations, no verdict.
//!
//! Read from the registry:
//! - the RD Gateway role: its service `TSGateway` under
//!   `HKLM\SYSTEM\CurrentControlSet\Services` (start type recorded);
//! - the NPS extension: NPS (`IAS`) loads RADIUS extension DLLs listed in
//!   `HKLM\SYSTEM\CurrentControlSet\Services\AuthSrv\Parameters` `ExtensionDLLs` and
//!   `AuthorizationDLLs` (REG_MULTI_SZ); the extension's are under `...\AzureMfa\` and named
//!   `MfaNps*.dll`. Its settings key is `HKLM\SOFTWARE\Microsoft\AzureMfa`, whose
//!   `REQUIRE_USER_MATCH` `FALSE` lets users who have not registered for MFA in through with
//!   the password alone (Microsoft's documented behaviour), which is recorded.
//!
//! Why not a `mfa` verdict: the extension asks for a second factor on the RADIUS requests this
//! NPS server answers, i.e. RD Gateway (or VPN) connections that authenticate through it. It
//! does nothing for RDP straight to this host, which is what `logon` weighs; and whether a
//! server is reachable only through a gateway elsewhere is a property of the network, which
//! the host cannot tell. So both facts are observations for a reader to weigh.

use serde_json::json;

use super::registry::{Registry, RegistryError};
use crate::inventory::{Evidence, FactError, Observation};

const PROBE: &str = "windows_gateway";
const TS_GATEWAY: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\TSGateway";
const AUTH_SRV: &str = "HKLM\\SYSTEM\\CurrentControlSet\\Services\\AuthSrv\\Parameters";
const AZURE_MFA: &str = "HKLM\\SOFTWARE\\Microsoft\\AzureMfa";

/// Records the RD Gateway role and the NPS MFA extension when present; a registry read that
/// fails is an error, and the other fact is still read.
pub fn collect(
    registry: &Registry<'_>,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) {
    let registry = registry.with_probe(PROBE);
    let mut fail = |e: RegistryError| {
        errors.push(FactError {
            collector: PROBE.into(),
            source: match &e {
                RegistryError::Source { origin, .. } | RegistryError::WrongType { origin, .. } => {
                    origin.clone()
                }
            },
            error: e.to_string(),
        });
    };
    match gateway_role(&registry) {
        Ok(Some(o)) => observations.push(o),
        Ok(None) => {}
        Err(e) => fail(e),
    }
    match nps_extension(&registry) {
        Ok(Some(o)) => observations.push(o),
        Ok(None) => {}
        Err(e) => fail(e),
    }
}

fn gateway_role(registry: &Registry<'_>) -> Result<Option<Observation>, RegistryError> {
    let Some(start) = registry.dword(TS_GATEWAY, "Start")? else {
        return Ok(None);
    };
    let state = match start.value {
        2 => "automatic",
        3 => "manual",
        4 => "disabled",
        _ => "other",
    };
    Ok(Some(Observation {
        category: "rd_gateway".into(),
        name: "gateway_role".into(),
        value: json!({
            "service": "TSGateway",
            "start": state,
            "note": "this host is an RD Gateway: RDP through it authenticates at this host's NPS (or a central one)",
        }),
        evidence: vec![start.evidence],
    }))
}

/// Whether `dll` is one of the NPS extension's DLLs.
fn is_mfa_extension(dll: &str) -> bool {
    let lower = dll.to_ascii_lowercase();
    let file = lower.rsplit(['\\', '/']).next().unwrap_or(&lower);
    lower.contains("\\azuremfa\\") || file.starts_with("mfanps")
}

fn nps_extension(registry: &Registry<'_>) -> Result<Option<Observation>, RegistryError> {
    let mut evidence: Vec<Evidence> = Vec::new();
    let mut loaded: Vec<String> = Vec::new();
    let mut lists: Vec<&str> = Vec::new();
    for list in ["ExtensionDLLs", "AuthorizationDLLs"] {
        if let Some(found) = registry.strings(AUTH_SRV, list)? {
            let ours: Vec<String> = found
                .value
                .into_iter()
                .filter(|d| is_mfa_extension(d))
                .collect();
            if !ours.is_empty() {
                loaded.extend(ours);
                lists.push(list);
                evidence.push(found.evidence);
            }
        }
    }
    let require_match = registry.string(AZURE_MFA, "REQUIRE_USER_MATCH")?;
    let settings = registry.exists(AZURE_MFA)?;
    if loaded.is_empty() && !settings {
        return Ok(None);
    }
    let require_user_match = require_match.map(|found| {
        evidence.push(found.evidence);
        found.value
    });
    // Microsoft's default when the value is absent is TRUE (unregistered users are refused).
    let unregistered_pass = require_user_match
        .as_deref()
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
    if evidence.is_empty() {
        evidence.push(Evidence {
            source: AZURE_MFA.into(),
            line: 0,
            probe: PROBE.into(),
            detail: format!("key present in {}", registry.source().origin()),
        });
    }
    Ok(Some(Observation {
        category: "rd_gateway".into(),
        name: "nps_azure_mfa_extension".into(),
        value: json!({
            "loaded_by_nps": !loaded.is_empty(),
            "registered_in": lists,
            "dlls": loaded,
            "require_user_match": require_user_match,
            "unregistered_users_pass_with_password": unregistered_pass,
            "protects": "RADIUS requests this NPS server answers (RD Gateway, VPN), not RDP straight to this host",
        }),
        evidence,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    #[test]
    fn extension_dlls_are_recognised() {
        assert!(is_mfa_extension(
            "C:\\Program Files\\Microsoft\\AzureMfa\\Extensions\\MfaNpsAuthzExt.dll"
        ));
        assert!(is_mfa_extension("MfaNpsExtn.dll"));
        assert!(!is_mfa_extension("C:\\Windows\\System32\\iasrad.dll"));
    }
}
