//! The live host's local accounts (Windows builds only), read through `tillsyn-netapi`
//! (`NetUserEnum` level 3, `LookupAccountNameW`, `LookupAccountSidW`,
//! `NetLocalGroupGetMembers` level 2) into the same [`LocalAccounts`] the recorded JSON
//! gives, so the verdict is [`accounts::control`](super::accounts::control) either way.
//!
//! The NetAPI reports no `PrincipalSource`; a member is `Local` when its SID is one of the
//! machine's users, `AzureAD` for `S-1-12-1-*`, and otherwise `Unknown`, which the verdict
//! treats as foreign when the SID lies outside the machine's domain.

use tillsyn_netapi as netapi;

use super::accounts::{
    ADMINISTRATORS_SID, AccountsError, LocalAccounts, LocalGroup, LocalUser, Member,
    PrincipalSource, REMOTE_DESKTOP_USERS_SID,
};

/// Named in evidence and errors.
pub const ORIGIN: &str = "NetAPI";
/// `UF_ACCOUNTDISABLE` in lmaccess.h.
const UF_ACCOUNTDISABLE: u32 = 0x2;
/// `UF_PASSWD_NOTREQD` in lmaccess.h.
const UF_PASSWD_NOTREQD: u32 = 0x20;

fn fail(error: &netapi::NetApiError) -> AccountsError {
    // The codes seen in practice, named so the control's reason says what happened.
    let name = match error.code {
        5 => " (ERROR_ACCESS_DENIED: the agent must run as an administrator or LocalSystem)",
        124 => " (ERROR_INVALID_LEVEL: this NetAPI does not implement the level)",
        1332 => " (ERROR_NONE_MAPPED: no account of that name or SID)",
        2140 => " (NERR_InternalError)",
        2220 => " (NERR_GroupNotFound)",
        2221 => " (NERR_UserNotFound)",
        _ => "",
    };
    AccountsError {
        origin: ORIGIN.into(),
        field: error.call.clone(),
        message: format!("status {}{name}", error.code),
    }
}

/// Reads the host's users and the two groups.
pub fn read() -> Result<LocalAccounts, AccountsError> {
    let users = netapi::local_users()
        .map_err(|e| fail(&e))?
        .into_iter()
        .map(|u| {
            Ok(LocalUser {
                sid: netapi::account_sid(&u.name).map_err(|e| fail(&e))?,
                enabled: u.flags & UF_ACCOUNTDISABLE == 0,
                password_required: u.flags & UF_PASSWD_NOTREQD == 0,
                last_logon: (u.last_logon != 0).then_some(i64::from(u.last_logon)),
                name: u.name,
            })
        })
        .collect::<Result<Vec<_>, AccountsError>>()?;
    let administrators = group(ADMINISTRATORS_SID, &users)?;
    let remote_desktop_users = group(REMOTE_DESKTOP_USERS_SID, &users)?;
    Ok(LocalAccounts {
        origin: ORIGIN.into(),
        users,
        administrators,
        remote_desktop_users,
    })
}

fn group(sid: &str, users: &[LocalUser]) -> Result<LocalGroup, AccountsError> {
    let name = netapi::sid_account_name(sid).map_err(|e| fail(&e))?;
    let members = netapi::group_members(&name)
        .map_err(|e| fail(&e))?
        .into_iter()
        .map(|m| {
            if m.sid.is_empty() {
                return Err(AccountsError {
                    origin: ORIGIN.into(),
                    field: format!("NetLocalGroupGetMembers({name}).{}", m.name),
                    message: "a member without a SID".into(),
                });
            }
            let source = if users.iter().any(|u| u.sid == m.sid) {
                PrincipalSource::Local
            } else if m.sid.starts_with("S-1-12-1-") {
                PrincipalSource::AzureAd
            } else {
                PrincipalSource::Unknown
            };
            Ok(Member {
                object_class: match m.sid_usage {
                    1 => "User",
                    2 | 4 | 5 => "Group",
                    6 => "DeletedAccount",
                    _ => "Unknown",
                }
                .into(),
                name: m.name,
                sid: m.sid,
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LocalGroup {
        sid: sid.into(),
        name,
        members,
    })
}
