//! The listening TCP and UDP sockets of a Windows host and their owning processes, as the same
//! [`Listener`]s the Linux `/proc/net` reader gives, so the live probes (`tls_probe`, `rdp`)
//! and the `listener` observations are the Linux ones.
//!
//! - **Live** (Windows builds): the IP Helper API through `tillsyn-netapi`
//!   (`GetExtendedTcpTable` with `TCP_TABLE_OWNER_PID_LISTENER`, `GetExtendedUdpTable` with
//!   `UDP_TABLE_OWNER_PID`, IPv4 and IPv6), the owner's image path through
//!   `QueryFullProcessImageNameW` where the process can be opened.
//! - **Offline**: [`RECORDED_PATH`] under the root, written on the host by (PowerShell 5.1 or 7,
//!   as administrator, so other users' process paths are readable):
//!
//! ```powershell
//! $p = @{}; Get-Process | ForEach-Object { $p[[uint32]$_.Id] = $_ }
//! function Row($s) { [pscustomobject]@{ LocalAddress = $s.LocalAddress; LocalPort = $s.LocalPort
//!     OwningProcess = $s.OwningProcess; ProcessName = $p[$s.OwningProcess].ProcessName
//!     Path = $p[$s.OwningProcess].Path } }
//! [pscustomobject]@{ Tcp = @(Get-NetTCPConnection -State Listen | ForEach-Object { Row $_ })
//!     Udp = @(Get-NetUDPEndpoint | ForEach-Object { Row $_ }) } |
//!   ConvertTo-Json -Depth 3 | Out-File -Encoding utf8 listeners.json
//! ```
//!
//! `Tcp` and `Udp` are arrays of `{LocalAddress: string, LocalPort: 0..65535, OwningProcess:
//! u32, ProcessName: string|null, Path: string|null}`; a lone object where an array belongs
//! (PowerShell 5.1 unwraps one-element arrays without `@()`) is accepted. Anything else is a
//! [`ListenersError`] naming the file and the JSON path; the caller then leaves the listeners
//! unknown. Nothing here opens a socket.

use std::net::IpAddr;

use serde_json::Value;

use crate::inventory::listeners::{Listener, Owner, Transport};
use crate::inventory::{Observation, listeners};

/// The recorded listener table, under the root.
pub const RECORDED_PATH: &str = "/recorded/listeners.json";
/// A recording of 100k sockets is about 15 MiB of JSON; more is not a listener table.
pub const MAX_RECORDED_BYTES: usize = 16 * 1024 * 1024;
/// Sockets read from one recording; beyond it the host is cut with an error, like Linux's.
const MAX_SOCKETS: usize = 100_000;

/// Why the listener table could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenersError {
    /// The file or API call.
    pub origin: String,
    /// The JSON path that is wrong (`Tcp[2].LocalPort`), or the call's status.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ListenersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.field, self.message)
    }
}

impl std::error::Error for ListenersError {}

/// Parses the recorded JSON (see the module header).
pub fn parse_recorded(text: &str) -> Result<Vec<Listener>, ListenersError> {
    let fail = |field: String, message: String| ListenersError {
        origin: RECORDED_PATH.into(),
        field,
        message,
    };
    let root: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| fail("(document)".into(), e.to_string()))?;
    if !root.is_object() {
        return Err(fail("(document)".into(), "not a JSON object".into()));
    }
    let mut found = Vec::new();
    for (key, transport) in [("Tcp", Transport::Tcp), ("Udp", Transport::Udp)] {
        let entries: &[Value] = match &root[key] {
            Value::Array(list) => list,
            one @ Value::Object(_) => std::slice::from_ref(one),
            Value::Null => return Err(fail(key.into(), "missing".into())),
            _ => return Err(fail(key.into(), "not an array".into())),
        };
        if found.len() + entries.len() > MAX_SOCKETS {
            return Err(fail(key.into(), format!("more than {MAX_SOCKETS} sockets")));
        }
        for (i, entry) in entries.iter().enumerate() {
            let listener = socket(entry, key, i, transport)
                .map_err(|(f, m)| fail(format!("{key}[{i}].{f}"), m))?;
            found.push(listener);
        }
    }
    Ok(found)
}

/// One recorded socket; `Err((field, message))`.
fn socket(
    entry: &Value,
    key: &str,
    index: usize,
    transport: Transport,
) -> Result<Listener, (String, String)> {
    if !entry.is_object() {
        return Err(("(entry)".into(), "not an object".into()));
    }
    let address = match &entry["LocalAddress"] {
        // A scope id (`fe80::1%12`) is not part of the address.
        Value::String(s) => s
            .split('%')
            .next()
            .unwrap_or_default()
            .parse::<IpAddr>()
            .map_err(|e| ("LocalAddress".to_string(), format!("{s:?}: {e}")))?,
        _ => return Err(("LocalAddress".into(), "missing or not a string".into())),
    };
    let port = entry["LocalPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            (
                "LocalPort".to_string(),
                "missing or not a port number".into(),
            )
        })?;
    let pid = entry["OwningProcess"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .ok_or_else(|| {
            (
                "OwningProcess".to_string(),
                "missing or not a process id".into(),
            )
        })?;
    let text = |field: &str| match &entry[field] {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        _ => Err((field.to_string(), "not a string".to_string())),
    };
    let (name, path) = (text("ProcessName")?, text("Path")?);
    let raw = format!(
        "{key}[{index}] LocalAddress={address} LocalPort={port} OwningProcess={pid} ProcessName={name}"
    );
    Ok(windows_listener(
        transport,
        address,
        port,
        pid,
        name,
        path,
        RECORDED_PATH,
        raw,
    ))
}

/// A Windows socket as a [`Listener`]: no uid or inode (Windows has neither); the owner is the
/// owning process with its name (`svchost`, no `.exe`, as PowerShell prints it) and image path.
/// Pid 0 (the Idle process, which owns no listener on Windows; under wine, a socket of a
/// Linux process, whose owner wine cannot name) is no owner, as on Linux when unseen.
#[allow(clippy::too_many_arguments)] // One constructor for the two sources, field by field.
fn windows_listener(
    transport: Transport,
    address: IpAddr,
    port: u16,
    pid: u32,
    comm: String,
    exe: String,
    source: &'static str,
    raw: String,
) -> Listener {
    Listener {
        transport,
        address,
        port,
        uid: 0,
        inode: 0,
        source,
        line: 0,
        raw,
        owners: if pid == 0 {
            Vec::new()
        } else {
            vec![Owner { pid, comm, exe }]
        },
    }
}

/// The `listener` observations, in the Linux shape; `uid`, `user` and `inode` are null because
/// a Windows socket has none of them.
pub fn observations(found: &[Listener]) -> Vec<Observation> {
    found
        .iter()
        .map(|listener| {
            let mut observation = listeners::observation(listener, None);
            for key in ["uid", "inode"] {
                observation.value[key] = Value::Null;
            }
            observation
        })
        .collect()
}

/// The live host's listeners through the IP Helper API (Windows builds only).
#[cfg(windows)]
pub fn read_live() -> Result<Vec<Listener>, ListenersError> {
    use std::collections::HashMap;
    use tillsyn_netapi as netapi;
    let fail = |e: netapi::NetApiError| ListenersError {
        origin: "IP Helper API".into(),
        field: e.call.clone(),
        message: format!("status {}", e.code),
    };
    let mut sockets = netapi::tcp_listeners().map_err(fail)?;
    sockets.extend(netapi::udp_listeners().map_err(fail)?);
    let mut images: HashMap<u32, String> = HashMap::new();
    Ok(sockets
        .into_iter()
        .take(MAX_SOCKETS)
        .map(|s| {
            // Unreadable images (System, other sessions' processes) stay empty, as on Linux.
            let exe = images
                .entry(s.pid)
                .or_insert_with(|| netapi::process_image(s.pid).unwrap_or_default())
                .clone();
            let comm = match s.pid {
                4 => "System".to_string(),
                _ => image_name(&exe),
            };
            let transport = match s.transport {
                netapi::SocketTransport::Tcp => Transport::Tcp,
                netapi::SocketTransport::Udp => Transport::Udp,
            };
            let raw = format!(
                "{} LocalAddress={} LocalPort={} OwningPid={} Image={exe}",
                s.call, s.address, s.port, s.pid
            );
            windows_listener(transport, s.address, s.port, s.pid, comm, exe, s.call, raw)
        })
        .collect())
}

/// `C:\Windows\System32\svchost.exe` -> `svchost`, PowerShell's `ProcessName`.
pub fn image_name(path: &str) -> String {
    let file = path.rsplit(['\\', '/']).next().unwrap_or_default();
    file.strip_suffix(".exe")
        .or_else(|| file.strip_suffix(".EXE"))
        .unwrap_or(file)
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;
    use crate::inventory::windows::RECORDED_DIR;

    const RECORDING: &str = r#"{"Tcp":[{"LocalAddress":"0.0.0.0","LocalPort":3389,"OwningProcess":1180,"ProcessName":"svchost","Path":"C:\\Windows\\system32\\svchost.exe"},
        {"LocalAddress":"::","LocalPort":445,"OwningProcess":4,"ProcessName":"System","Path":null},
        {"LocalAddress":"fe80::1%12","LocalPort":5357,"OwningProcess":4,"ProcessName":"System"}],
        "Udp":{"LocalAddress":"0.0.0.0","LocalPort":3389,"OwningProcess":1180,"ProcessName":"svchost","Path":null}}"#;

    #[test]
    fn the_recording_gives_linux_shaped_listeners() {
        assert_eq!(RECORDED_PATH, format!("{RECORDED_DIR}/listeners.json"));
        let found = parse_recorded(&format!("\u{feff}{RECORDING}")).unwrap();
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].key(), "tcp 0.0.0.0:3389");
        assert!(found[0].is_exposed());
        assert_eq!(found[0].owners[0].comm, "svchost");
        assert_eq!(found[1].key(), "tcp [::]:445");
        assert_eq!(found[2].key(), "tcp [fe80::1]:5357");
        assert_eq!(
            found[3].key(),
            "udp 0.0.0.0:3389",
            "a lone UDP object is one socket"
        );
        let observations = observations(&found);
        assert_eq!(observations[0].category, "listener");
        assert_eq!(observations[0].value["port"], 3389);
        assert_eq!(observations[0].value["processes"][0]["pid"], 1180);
        assert!(observations[0].value["uid"].is_null());
        assert_eq!(observations[0].evidence[0].source, RECORDED_PATH);
        assert!(
            observations[0].evidence[0]
                .detail
                .contains("Tcp[0] LocalAddress=0.0.0.0"),
            "{:?}",
            observations[0].evidence
        );
    }

    #[test]
    fn bad_recordings_name_the_file_and_field() {
        let cut = &RECORDING[..RECORDING.len() / 2];
        let e = parse_recorded(cut).unwrap_err();
        assert_eq!(
            (e.origin.as_str(), e.field.as_str()),
            (RECORDED_PATH, "(document)")
        );
        let e = parse_recorded(&RECORDING.replace("3389,", "\"3389\",")).unwrap_err();
        assert_eq!(e.field, "Tcp[0].LocalPort");
        let e = parse_recorded(&RECORDING.replace(
            "1180,\"ProcessName\":\"svchost\",\"Path\":\"C",
            "-1,\"ProcessName\":\"svchost\",\"Path\":\"C",
        ))
        .unwrap_err();
        assert_eq!(e.field, "Tcp[0].OwningProcess");
        assert!(e.to_string().starts_with(RECORDED_PATH), "{e}");
        let e = parse_recorded(&RECORDING.replace("\"::\"", "\"not-an-ip\"")).unwrap_err();
        assert_eq!(e.field, "Tcp[1].LocalAddress");
        let e = parse_recorded(&RECORDING.replace("3389,\"Own", "70000,\"Own")).unwrap_err();
        assert_eq!(e.field, "Tcp[0].LocalPort");
        let e = parse_recorded(r#"{"Tcp":[]}"#).unwrap_err();
        assert_eq!(e.field, "Udp");
        assert!(parse_recorded("[]").is_err());
        let e =
            parse_recorded(&RECORDING.replace("\"System\",\"Path\"", "7,\"Path\"")).unwrap_err();
        assert_eq!(e.field, "Tcp[1].ProcessName");
    }

    #[test]
    fn image_names() {
        assert_eq!(image_name("C:\\Windows\\System32\\svchost.exe"), "svchost");
        assert_eq!(image_name(""), "");
        assert_eq!(image_name("Z:/opt/x/python3"), "python3");
    }
}
