//! WMI queries on the live host (Windows builds only), through the `wmi` crate's COM calls:
//! each class's WQL ([`WmiClass::query`]) with its answer turned into the same JSON rows a
//! recording holds, and `Win32_EncryptableVolume` with its `GetKeyProtectors` /
//! `GetKeyProtectorType` method calls, shaped like the recorded BitLocker JSON. Parsing is
//! left to [`super::wmi`] and [`super::bitlocker`], the recordings' parsers.
//!
//! WMI can hang (a stuck provider, the Winmgmt service restarting), so every class is read on
//! a thread of its own with its own COM apartment (a `wmi` connection is bound to the thread
//! that made it) and given up after [`TIMEOUT`]; the error then names the class, and
//! [`super::wmi::Patience`] asks no further class in that inventory. A thread
//! given up on is left to finish or hang by itself: COM offers no way to cancel a call in
//! progress from another thread, and it holds nothing the inventory waits for.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use ::wmi::{COMLibrary, Variant, WMIConnection, WMIError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::wmi::{ENCRYPTABLE_VOLUME, Origin, WmiClass, WmiError, WmiRows};

/// How long one class may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(8);

/// Runs `class`'s query and returns its rows.
pub fn rows(class: WmiClass) -> Result<WmiRows, WmiError> {
    let rows = on_thread(class, move || {
        let connection = connect(class)?;
        let found: Vec<HashMap<String, Variant>> = connection
            .raw_query(class.query)
            .map_err(|e| describe(&e))?;
        Ok(found
            .into_iter()
            .map(|row| row.into_iter().map(|(k, v)| (k, to_json(v))).collect())
            .collect())
    })?;
    Ok(WmiRows {
        class,
        origin: Origin::Live,
        rows,
    })
}

/// The instance properties `bitlocker::parse_wmi_value` reads, and the path methods need.
#[derive(Deserialize)]
#[allow(non_camel_case_types, non_snake_case)] // The `wmi` crate takes the class's name from the struct's.
struct Win32_EncryptableVolume {
    __Path: String,
    DeviceID: Option<String>,
    DriveLetter: Option<String>,
    VolumeType: Option<u32>,
    ProtectionStatus: Option<u32>,
    ConversionStatus: Option<u32>,
    EncryptionMethod: Option<u32>,
}

/// `GetKeyProtectors` without `KeyProtectorType`: every protector.
#[derive(Serialize)]
struct AllProtectors {}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Protectors {
    ReturnValue: u32,
    VolumeKeyProtectorID: Option<Vec<String>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct ProtectorId {
    VolumeKeyProtectorID: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ProtectorType {
    ReturnValue: u32,
    KeyProtectorType: Option<u32>,
}

/// Every encryptable volume with its key protectors' types, as the recorded JSON holds them
/// (`DeviceID`, `DriveLetter`, `VolumeType`, `ProtectionStatus`, `ConversionStatus`,
/// `EncryptionMethod`, `KeyProtectorTypes`). A failed method call fails the whole read, so the
/// caller falls back to `manage-bde` rather than report a volume without its protectors.
pub fn encryptable_volumes() -> Result<Vec<Value>, WmiError> {
    on_thread(ENCRYPTABLE_VOLUME, || {
        let connection = connect(ENCRYPTABLE_VOLUME)?;
        tillsyn_netapi::require_packet_privacy(&connection)
            .map_err(|hres| format!("CoSetProxyBlanket(packet privacy): {}", hresult(hres)))?;
        let volumes: Vec<Win32_EncryptableVolume> = connection.query().map_err(|e| describe(&e))?;
        let mut out = Vec::new();
        for v in volumes {
            let name = v
                .DriveLetter
                .clone()
                .or(v.DeviceID.clone())
                .unwrap_or_default();
            let ids: Protectors = connection
                .exec_instance_method::<Win32_EncryptableVolume, _>(
                    &v.__Path,
                    "GetKeyProtectors",
                    AllProtectors {},
                )
                .map_err(|e| format!("GetKeyProtectors({name}): {}", describe(&e)))?;
            if ids.ReturnValue != 0 {
                return Err(format!(
                    "GetKeyProtectors({name}) returned {:#x}",
                    ids.ReturnValue
                ));
            }
            let mut types = Vec::new();
            for id in ids.VolumeKeyProtectorID.unwrap_or_default() {
                let kind: ProtectorType = connection
                    .exec_instance_method::<Win32_EncryptableVolume, _>(
                        &v.__Path,
                        "GetKeyProtectorType",
                        ProtectorId {
                            VolumeKeyProtectorID: id.clone(),
                        },
                    )
                    .map_err(|e| format!("GetKeyProtectorType({name}, {id}): {}", describe(&e)))?;
                if kind.ReturnValue != 0 {
                    return Err(format!(
                        "GetKeyProtectorType({name}, {id}) returned {:#x}",
                        kind.ReturnValue
                    ));
                }
                types.extend(kind.KeyProtectorType);
            }
            out.push(json!({
                "DeviceID": v.DeviceID,
                "DriveLetter": v.DriveLetter,
                "VolumeType": v.VolumeType,
                "ProtectionStatus": v.ProtectionStatus,
                "ConversionStatus": v.ConversionStatus,
                "EncryptionMethod": v.EncryptionMethod,
                "KeyProtectorTypes": types,
            }));
        }
        Ok(out)
    })
}

fn connect(class: WmiClass) -> Result<WMIConnection, String> {
    let com = COMLibrary::new().map_err(|e| format!("COM initialisation: {}", describe(&e)))?;
    WMIConnection::with_namespace_path(class.namespace, com)
        .map_err(|e| format!("connecting to {}: {}", class.namespace, describe(&e)))
}

/// Runs `read` on a thread of its own and waits at most [`TIMEOUT`] for it.
fn on_thread<T: Send + 'static>(
    class: WmiClass,
    read: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, WmiError> {
    let fail = |message: String| WmiError {
        source_name: class.live_source(),
        message,
    };
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name(format!("wmi {}", class.class))
        .spawn(move || {
            // The receiver is gone only when the wait below gave up; nothing is left to tell.
            let _ = send.send(read());
        })
        .map_err(|e| fail(format!("cannot start a thread: {e}")))?;
    match receive.recv_timeout(TIMEOUT) {
        Ok(result) => result.map_err(fail),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(fail(format!(
            "no answer within {} s ({})",
            TIMEOUT.as_secs(),
            super::wmi::HUNG
        ))),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(fail("the WMI thread ended without an answer".into()))
        }
    }
}

fn describe(error: &WMIError) -> String {
    match error {
        WMIError::HResultError { hres } => hresult(*hres),
        other => other.to_string(),
    }
}

/// An HRESULT with the name of the WMI codes seen in practice, so a reason says what happened.
fn hresult(hres: i32) -> String {
    // HRESULTs are printed and named as the unsigned values Microsoft documents.
    let code = u32::from_ne_bytes(hres.to_ne_bytes());
    let name = match code {
        0x8004_1002 => " (WBEM_E_NOT_FOUND)",
        0x8004_1003 => " (WBEM_E_ACCESS_DENIED: the agent must run as an administrator)",
        0x8004_100E => " (WBEM_E_INVALID_NAMESPACE: the namespace does not exist here)",
        0x8004_1010 => " (WBEM_E_INVALID_CLASS: the class does not exist here)",
        0x8004_1017 => " (WBEM_E_INVALID_QUERY)",
        0x8004_1087 => " (WBEM_E_ENCRYPTED_CONNECTION_REQUIRED)",
        0x8007_0005 => " (E_ACCESS_DENIED)",
        0x8000_4001 => " (E_NOTIMPL)",
        _ => "",
    };
    format!("HRESULT {code:#010X}{name}")
}

fn to_json(value: Variant) -> Value {
    match value {
        Variant::String(s) => Value::String(s),
        Variant::Bool(b) => Value::Bool(b),
        Variant::I1(n) => json!(n),
        Variant::I2(n) => json!(n),
        Variant::I4(n) => json!(n),
        Variant::I8(n) => json!(n),
        Variant::UI1(n) => json!(n),
        Variant::UI2(n) => json!(n),
        Variant::UI4(n) => json!(n),
        Variant::UI8(n) => json!(n),
        Variant::R4(n) => json!(f64::from(n)),
        Variant::R8(n) => json!(n),
        Variant::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        // Embedded objects are not among the properties selected.
        Variant::Empty | Variant::Null | Variant::Unknown(_) | Variant::Object(_) => Value::Null,
    }
}
