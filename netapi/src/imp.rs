//! The FFI calls. Every buffer Windows allocates is freed by a guard on every path
//! (`NetApiBufferFree` for NetAPI buffers, `LocalFree` for converted SIDs), and every pointer
//! read is one the call just filled, within the count it returned.

use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, ERROR_MORE_DATA, LocalFree};
use windows_sys::Win32::NetworkManagement::NetManagement::{
    FILTER_NORMAL_ACCOUNT, LOCALGROUP_MEMBERS_INFO_2, MAX_PREFERRED_LENGTH, NERR_Success,
    NetApiBufferFree, NetLocalGroupGetMembers, NetUserEnum, USER_INFO_3,
};
use windows_sys::Win32::Security::Authorization::{ConvertSidToStringSidW, ConvertStringSidToSidW};
use windows_sys::Win32::Security::{LookupAccountNameW, LookupAccountSidW, PSID, SID_NAME_USE};

/// A call that failed, with its Win32 or NET_API_STATUS code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetApiError {
    /// The function and its argument (`NetLocalGroupGetMembers(Administrators)`).
    pub call: String,
    /// The status it returned (or `GetLastError`).
    pub code: u32,
}

impl std::fmt::Display for NetApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with status {}", self.call, self.code)
    }
}

impl std::error::Error for NetApiError {}

/// One local user as `NetUserEnum` level 3 reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The account name.
    pub name: String,
    /// `usri3_flags` (`UF_ACCOUNTDISABLE` 0x2, `UF_PASSWD_NOTREQD` 0x20, ...).
    pub flags: u32,
    /// `usri3_last_logon`: seconds since 1970 (UTC), 0 when it never logged on.
    pub last_logon: u32,
    /// `usri3_user_id`: the relative id (500 Administrator, 501 Guest).
    pub rid: u32,
}

/// One member of a local group (`LOCALGROUP_MEMBERS_INFO_2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `DOMAIN\name`.
    pub name: String,
    /// The SID as a string (`S-1-5-21-...`).
    pub sid: String,
    /// `SID_NAME_USE`: 1 user, 2 group, 4 alias, 5 well-known group, 6 deleted, 8 unknown.
    pub sid_usage: i32,
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

/// # Safety
/// `p` is null or points at a NUL-terminated UTF-16 string.
unsafe fn from_wide(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the string is NUL-terminated (the caller's contract), so every index up to and
    // including the terminator is inside it.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` elements before the terminator were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Frees a NetAPI buffer when dropped.
struct NetBuffer(*mut u8);

impl Drop for NetBuffer {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a NetAPI call and is freed once, here.
            unsafe { NetApiBufferFree(self.0.cast()) };
        }
    }
}

/// Frees a `LocalAlloc` buffer (converted SIDs and SID strings) when dropped.
struct LocalBuffer(*mut core::ffi::c_void);

impl Drop for LocalBuffer {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from ConvertStringSidToSidW / ConvertSidToStringSidW,
            // which document LocalFree, and is freed once, here.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// The buffer as records of `T`, or `None` when it is null or (never seen: NetAPI buffers
/// come from its own allocator, aligned for any record) not aligned for `T`.
fn aligned<T>(buffer: &NetBuffer) -> Option<*const T> {
    // The cast is checked on the next line rather than assumed.
    #[allow(clippy::cast_ptr_alignment)]
    let records = buffer.0.cast::<T>().cast_const();
    (!records.is_null() && records.is_aligned()).then_some(records)
}

pub(crate) fn last_error(call: String) -> NetApiError {
    NetApiError {
        call,
        code: std::io::Error::last_os_error()
            .raw_os_error()
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(u32::MAX),
    }
}

/// Every normal local account (`FILTER_NORMAL_ACCOUNT`) of this machine.
pub fn local_users() -> Result<Vec<User>, NetApiError> {
    let mut users = Vec::new();
    let mut resume: u32 = 0;
    loop {
        let mut buffer: *mut u8 = ptr::null_mut();
        let (mut read, mut total) = (0u32, 0u32);
        // SAFETY: every out-pointer is a live local; a null server name is this machine.
        let status = unsafe {
            NetUserEnum(
                ptr::null(),
                3,
                FILTER_NORMAL_ACCOUNT,
                &raw mut buffer,
                MAX_PREFERRED_LENGTH,
                &raw mut read,
                &raw mut total,
                &raw mut resume,
            )
        };
        let guard = NetBuffer(buffer);
        if status != NERR_Success && status != ERROR_MORE_DATA {
            return Err(NetApiError {
                call: "NetUserEnum(level 3)".into(),
                code: status,
            });
        }
        if let Some(records) = aligned::<USER_INFO_3>(&guard) {
            // SAFETY: on success the buffer holds `read` USER_INFO_3 records.
            let records = unsafe { std::slice::from_raw_parts(records, read as usize) };
            for record in records {
                users.push(User {
                    // SAFETY: usri3_name is a NUL-terminated string inside the buffer.
                    name: unsafe { from_wide(record.usri3_name) },
                    flags: record.usri3_flags,
                    last_logon: record.usri3_last_logon,
                    rid: record.usri3_user_id,
                });
            }
        }
        if status != ERROR_MORE_DATA {
            return Ok(users);
        }
    }
}

/// A SID's string form.
///
/// # Safety
/// `sid` points at a valid SID.
unsafe fn sid_string(sid: PSID) -> Result<String, NetApiError> {
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is valid (the caller's contract); `text` is a live out-pointer.
    if unsafe { ConvertSidToStringSidW(sid, &raw mut text) } == 0 {
        return Err(last_error("ConvertSidToStringSidW".into()));
    }
    let guard = LocalBuffer(text.cast());
    // SAFETY: on success `text` is a NUL-terminated string.
    Ok(unsafe { from_wide(guard.0.cast()) })
}

/// The SID of a local account name, as a string (`LookupAccountNameW` on this machine).
pub fn account_sid(name: &str) -> Result<String, NetApiError> {
    let call = || format!("LookupAccountNameW({name})");
    let account = wide(name);
    let (mut sid_len, mut domain_len) = (0u32, 0u32);
    let mut usage: SID_NAME_USE = 0;
    // First call asks for the sizes.
    // SAFETY: null buffers with zero sizes is the documented size query.
    unsafe {
        LookupAccountNameW(
            ptr::null(),
            account.as_ptr(),
            ptr::null_mut(),
            &raw mut sid_len,
            ptr::null_mut(),
            &raw mut domain_len,
            &raw mut usage,
        )
    };
    let error = last_error(call());
    if error.code != ERROR_INSUFFICIENT_BUFFER || sid_len == 0 {
        return Err(error);
    }
    let mut sid = vec![0u8; sid_len as usize];
    let mut domain = vec![0u16; domain_len.max(1) as usize];
    // SAFETY: both buffers have the sizes the first call asked for.
    let ok = unsafe {
        LookupAccountNameW(
            ptr::null(),
            account.as_ptr(),
            sid.as_mut_ptr().cast(),
            &raw mut sid_len,
            domain.as_mut_ptr(),
            &raw mut domain_len,
            &raw mut usage,
        )
    };
    if ok == 0 {
        return Err(last_error(call()));
    }
    // SAFETY: on success `sid` holds a valid SID.
    unsafe { sid_string(sid.as_mut_ptr().cast()) }
}

/// The local name of a well-known SID (`S-1-5-32-544` is "Administrators", or
/// "Administratörer" on Swedish Windows), without its `BUILTIN\` domain.
pub fn sid_account_name(sid: &str) -> Result<String, NetApiError> {
    let call = || format!("LookupAccountSidW({sid})");
    let text = wide(sid);
    let mut raw: PSID = ptr::null_mut();
    // SAFETY: `text` is NUL-terminated; `raw` is a live out-pointer.
    if unsafe { ConvertStringSidToSidW(text.as_ptr(), &raw mut raw) } == 0 {
        return Err(last_error(format!("ConvertStringSidToSidW({sid})")));
    }
    let guard = LocalBuffer(raw);
    let (mut name_len, mut domain_len) = (0u32, 0u32);
    let mut usage: SID_NAME_USE = 0;
    // SAFETY: the size query, as for LookupAccountNameW; the SID is valid.
    unsafe {
        LookupAccountSidW(
            ptr::null(),
            guard.0,
            ptr::null_mut(),
            &raw mut name_len,
            ptr::null_mut(),
            &raw mut domain_len,
            &raw mut usage,
        )
    };
    let error = last_error(call());
    if error.code != ERROR_INSUFFICIENT_BUFFER || name_len == 0 {
        return Err(error);
    }
    let mut name = vec![0u16; name_len as usize];
    let mut domain = vec![0u16; domain_len.max(1) as usize];
    // SAFETY: the buffers have the sizes the first call asked for.
    let ok = unsafe {
        LookupAccountSidW(
            ptr::null(),
            guard.0,
            name.as_mut_ptr(),
            &raw mut name_len,
            domain.as_mut_ptr(),
            &raw mut domain_len,
            &raw mut usage,
        )
    };
    if ok == 0 {
        return Err(last_error(call()));
    }
    // SAFETY: on success `name` is NUL-terminated within its length.
    Ok(unsafe { from_wide(name.as_ptr()) })
}

/// The direct members of the local group `group` (its local name).
pub fn group_members(group: &str) -> Result<Vec<Member>, NetApiError> {
    let name = wide(group);
    let mut members = Vec::new();
    let mut resume: usize = 0;
    loop {
        let mut buffer: *mut u8 = ptr::null_mut();
        let (mut read, mut total) = (0u32, 0u32);
        // SAFETY: every out-pointer is a live local; `name` is NUL-terminated.
        let status = unsafe {
            NetLocalGroupGetMembers(
                ptr::null(),
                name.as_ptr(),
                2,
                &raw mut buffer,
                MAX_PREFERRED_LENGTH,
                &raw mut read,
                &raw mut total,
                &raw mut resume,
            )
        };
        let guard = NetBuffer(buffer);
        if status != NERR_Success && status != ERROR_MORE_DATA {
            return Err(NetApiError {
                call: format!("NetLocalGroupGetMembers({group}, level 2)"),
                code: status,
            });
        }
        if let Some(records) = aligned::<LOCALGROUP_MEMBERS_INFO_2>(&guard) {
            // SAFETY: on success the buffer holds `read` LOCALGROUP_MEMBERS_INFO_2 records.
            let records = unsafe { std::slice::from_raw_parts(records, read as usize) };
            for record in records {
                members.push(Member {
                    // SAFETY: the name is a NUL-terminated string inside the buffer.
                    name: unsafe { from_wide(record.lgrmi2_domainandname) },
                    sid: if record.lgrmi2_sid.is_null() {
                        String::new()
                    } else {
                        // SAFETY: a non-null lgrmi2_sid is a valid SID inside the buffer.
                        unsafe { sid_string(record.lgrmi2_sid)? }
                    },
                    sid_usage: record.lgrmi2_sidusage,
                });
            }
        }
        if status != ERROR_MORE_DATA {
            return Ok(members);
        }
    }
}
