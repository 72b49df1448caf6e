//! The system audit policy: every advanced-audit subcategory with its success/failure setting
//! (`AuditEnumerateSubCategories`, `AuditQuerySystemPolicy`, `AuditLookupSubCategoryNameW`).
//! Every buffer advapi32 allocates is freed with `AuditFree` by a guard on every path.
//!
//! Why the API and not `auditpol /get /category:* /r`: auditpol's CSV writes the setting as
//! localised text ("Lyckade och misslyckade" on a Swedish host), the API as bit flags.

use std::ptr;

use windows_sys::Win32::Security::Authentication::Identity::{
    AUDIT_POLICY_INFORMATION, AuditEnumerateSubCategories, AuditFree, AuditLookupSubCategoryNameW,
    AuditQuerySystemPolicy,
};
use windows_sys::core::GUID;

use crate::NetApiError;

/// One subcategory's setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSetting {
    /// `{0CCE9215-69AE-11D9-BED3-505054503030}`, as auditpol writes it.
    pub subcategory_guid: String,
    /// The subcategory's name in the system's language.
    pub name: String,
    /// `POLICY_AUDIT_EVENT_SUCCESS` 1 | `POLICY_AUDIT_EVENT_FAILURE` 2; 0 or
    /// `POLICY_AUDIT_EVENT_NONE` 4 is no auditing.
    pub auditing: u32,
}

/// Frees an advapi32 audit buffer.
struct Freed(*const core::ffi::c_void);

impl Drop for Freed {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from an Audit* call that documents AuditFree as its
            // release, and is freed once, here.
            unsafe { AuditFree(self.0) };
        }
    }
}

fn last_error(call: &str) -> NetApiError {
    NetApiError {
        call: call.into(),
        // SAFETY: reads the calling thread's last-error value; no memory is touched.
        code: unsafe { windows_sys::Win32::Foundation::GetLastError() },
    }
}

/// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` in upper case.
fn guid_text(g: &GUID) -> String {
    let d4 = g.data4;
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
        g.data1, g.data2, g.data3, d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]
    )
}

/// Every subcategory of the system audit policy with its setting. Reading the policy needs
/// `SeSecurityPrivilege` (an administrator or LocalSystem); without it the call fails with
/// `ERROR_PRIVILEGE_NOT_HELD` (1314).
pub fn system_audit_policy() -> Result<Vec<AuditSetting>, NetApiError> {
    let mut guids: *mut GUID = ptr::null_mut();
    let mut count: u32 = 0;
    // SAFETY: both out-pointers point at locals; a null category with `true` asks for every
    // subcategory of every category.
    let ok =
        unsafe { AuditEnumerateSubCategories(ptr::null(), true, &raw mut guids, &raw mut count) };
    let _guids = Freed(guids.cast());
    if !ok {
        return Err(last_error("AuditEnumerateSubCategories"));
    }
    if count == 0 || guids.is_null() {
        return Ok(Vec::new());
    }
    let mut info: *mut AUDIT_POLICY_INFORMATION = ptr::null_mut();
    // SAFETY: `guids` holds `count` GUIDs (the call above filled it); `info` is a local.
    let ok = unsafe { AuditQuerySystemPolicy(guids, count, &raw mut info) };
    let _info = Freed(info.cast());
    if !ok || info.is_null() {
        return Err(last_error("AuditQuerySystemPolicy"));
    }
    // SAFETY: AuditQuerySystemPolicy returns one entry per GUID asked for, `count` in all, in
    // a buffer that lives until `_info` is dropped at the end of this function.
    let entries = unsafe { std::slice::from_raw_parts(info, count as usize) };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let mut name: windows_sys::core::PWSTR = ptr::null_mut();
        // SAFETY: the GUID is a field of a live entry; `name` is a local out-pointer.
        let ok = unsafe {
            AuditLookupSubCategoryNameW(&raw const entry.AuditSubCategoryGuid, &raw mut name)
        };
        let _name = Freed(name.cast_const().cast());
        let name = if ok && !name.is_null() {
            // SAFETY: the call returned a NUL-terminated UTF-16 string, freed by `_name` after
            // it is copied here.
            let len = (0..).take_while(|&i| unsafe { *name.add(i) } != 0).count();
            // SAFETY: `len` units before the terminator were just read.
            String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(name, len) })
        } else {
            String::new()
        };
        out.push(AuditSetting {
            subcategory_guid: guid_text(&entry.AuditSubCategoryGuid),
            name,
            auditing: entry.AuditingInformation,
        });
    }
    Ok(out)
}
