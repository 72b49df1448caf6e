//! The system audit policy: the success/failure setting of each advanced-audit subcategory
//! asked for (`AuditQuerySystemPolicy`), freed with `AuditFree` by a guard on every path.
//!
//! Why the API and not `auditpol /get /category:* /r`: auditpol's CSV writes the setting as
//! localised text ("Lyckade och misslyckade" on a Swedish host), the API as bit flags. Why the
//! caller names the subcategories instead of `AuditEnumerateSubCategories` listing them: wine
//! 8.0 does not implement that call, and an unimplemented wine function aborts the process
//! (its `AuditQuerySystemPolicy` is there); the subcategory GUIDs are fixed by Microsoft anyway.

use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INVALID_PARAMETER, GetLastError};
use windows_sys::Win32::Security::Authentication::Identity::{
    AUDIT_POLICY_INFORMATION, AuditFree, AuditQuerySystemPolicy,
};
use windows_sys::core::GUID;

use crate::NetApiError;

/// Frees an `AuditQuerySystemPolicy` buffer.
struct Freed(*mut AUDIT_POLICY_INFORMATION);

impl Drop for Freed {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from AuditQuerySystemPolicy, which documents AuditFree
            // as its release, and is freed once, here.
            unsafe { AuditFree(self.0.cast_const().cast()) };
        }
    }
}

/// The `AuditingInformation` bits (success 1, failure 2, none 4) of each subcategory in
/// `subcategories` (GUIDs as `u128`, `0x0cce9215_69ae_11d9_bed3_505054503030`) that this
/// system knows; one it does not (an older release) is left out. Each is asked for alone so
/// an unknown one does not fail the rest. Reading the policy needs `SeSecurityPrivilege` (an
/// administrator or LocalSystem): without it the error is `ERROR_PRIVILEGE_NOT_HELD` (1314).
pub fn system_audit_policy(subcategories: &[u128]) -> Result<Vec<(u128, u32)>, NetApiError> {
    let mut out = Vec::with_capacity(subcategories.len());
    let mut last_error = None;
    for &id in subcategories {
        let guid = GUID::from_u128(id);
        let mut info: *mut AUDIT_POLICY_INFORMATION = ptr::null_mut();
        // SAFETY: one GUID, read by the call; `info` is a local out-pointer.
        let ok = unsafe { AuditQuerySystemPolicy(&raw const guid, 1, &raw mut info) };
        let info = Freed(info);
        if !ok || info.0.is_null() {
            // SAFETY: reads the calling thread's last-error value; no memory is touched.
            let code = unsafe { GetLastError() };
            if code != ERROR_INVALID_PARAMETER {
                last_error = Some(code);
            }
            continue;
        }
        // SAFETY: a successful call returns one entry for the one GUID asked for, valid until
        // `info` is dropped at the end of this iteration.
        let bits = unsafe { (*info.0).AuditingInformation };
        out.push((id, bits));
    }
    match (out.is_empty(), last_error) {
        (true, Some(code)) => Err(NetApiError {
            call: "AuditQuerySystemPolicy".into(),
            code,
        }),
        _ => Ok(out),
    }
}
