//! Packet privacy on a WMI connection: the one COM call the `wmi` crate (0.16) does not make.
//!
//! Why: the BitLocker namespace (`root\CIMV2\Security\MicrosoftVolumeEncryption`) is marked
//! `RequiresEncryption`, so WMI refuses a connection below `RPC_C_AUTHN_LEVEL_PKT_PRIVACY`
//! (`WBEM_E_ENCRYPTED_CONNECTION_REQUIRED`, 0x80041087), and `wmi` 0.16 sets the proxy of
//! every connection to `RPC_C_AUTHN_LEVEL_CALL`. Its newer releases can set the level, but
//! they need a newer Rust or a second `windows` crate (see the workspace Cargo.toml).

use windows::Win32::System::Com::{
    CoSetProxyBlanket, EOAC_NONE, RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE,
};
use windows::Win32::System::Rpc::{RPC_C_AUTHN_WINNT, RPC_C_AUTHZ_NONE};

/// Raises `connection`'s proxy to packet privacy (with the same authentication service,
/// impersonation and capabilities `wmi` set), as WMI's documentation for encrypted
/// namespaces asks. `Err` is the HRESULT.
pub fn require_packet_privacy(connection: &wmi::WMIConnection) -> Result<(), i32> {
    // SAFETY: `connection.svc` is a live `IWbemServices` proxy the connection owns for the
    // whole call; CoSetProxyBlanket only changes the proxy's security settings, and the null
    // principal and identity ask COM for the process's own, as `wmi` itself does.
    unsafe {
        CoSetProxyBlanket(
            &connection.svc,
            RPC_C_AUTHN_WINNT,
            RPC_C_AUTHZ_NONE,
            None,
            RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
            RPC_C_IMP_LEVEL_IMPERSONATE,
            None,
            EOAC_NONE,
        )
    }
    .map_err(|e| e.code().0)
}
