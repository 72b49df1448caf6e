//! The Windows calls the agent reads local accounts and listening sockets with, behind a safe
//! interface: the local users with their flags and last logon (`NetUserEnum` level 3), each
//! user's SID (`LookupAccountNameW`), a well-known group's local name (`LookupAccountSidW`)
//! and its members with their SIDs (`NetLocalGroupGetMembers` level 2).
//!
//! Why a crate of its own: the workspace forbids `unsafe`, and there is no maintained safe
//! wrapper of these calls on crates.io; the agent's alternative for ACLs (running a system
//! tool, `icacls`) has no equivalent here that is not localised text (`net user`) or missing
//! on Server Core and under wine (PowerShell). So the FFI is written once, here, each `unsafe`
//! block with the reason it is sound, and the agent stays `forbid(unsafe_code)`. Nothing here
//! judges anything; it returns what Windows says.
//!
//! Never read: passwords (NetUserEnum never returns them; `usri3_password` is always null) and
//! the free-text fields (comments, full names), which are not copied.
//!
//! The listener table comes from the IP Helper API the same way: `GetExtendedTcpTable` /
//! `GetExtendedUdpTable` with their buffer-size retry loop, and the owning process's image path.
//!
//! And one COM call for WMI: packet privacy on a `wmi` connection, which the BitLocker
//! namespace requires and the `wmi` crate does not set (`wmi_privacy` says why).
//!
//! The system audit policy comes from advapi32's `AuditQuerySystemPolicy` (`audit` says why
//! not `auditpol`).
//!
//! On other platforms the crate is empty.
//!
//! # Layout
//! - `imp` (Windows only): the NetAPI and SID calls, the buffer guards and the UTF-16 and SID
//!   conversions.
//! - `iphlp` (Windows only): the TCP and UDP listener tables and process image names.
//! - `audit` (Windows only): the success/failure setting of given audit subcategories.
//! - `wmi_privacy` (Windows only): `CoSetProxyBlanket` at packet privacy on a WMI connection.

#[cfg(windows)]
#[allow(unsafe_code)]
mod imp;
#[cfg(windows)]
#[allow(unsafe_code)]
mod iphlp;

#[cfg(windows)]
#[allow(unsafe_code)]
mod audit;
#[cfg(windows)]
#[allow(unsafe_code)]
mod wmi_privacy;

#[cfg(windows)]
pub use audit::system_audit_policy;

#[cfg(windows)]
pub use iphlp::{ListeningSocket, SocketTransport, process_image, tcp_listeners, udp_listeners};
#[cfg(windows)]
pub use wmi_privacy::require_packet_privacy;

#[cfg(windows)]
pub use imp::{
    Member, NetApiError, User, account_sid, group_members, local_users, sid_account_name,
};
