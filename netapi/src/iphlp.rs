//! The listening sockets of this machine through the IP Helper API: `GetExtendedTcpTable`
//! (`TCP_TABLE_OWNER_PID_LISTENER`) and `GetExtendedUdpTable` (`UDP_TABLE_OWNER_PID`), each for
//! `AF_INET` and `AF_INET6`, and the owning process's image path
//! (`OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)` + `QueryFullProcessImageNameW`).
//!
//! Row layouts (iprtrmib.h / tcpmib.h / udpmib.h): addresses are in network byte order (the
//! IPv4 `DWORD`'s bytes in memory are the address's octets), ports in network byte order in the
//! low 16 bits of a `DWORD`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_INSUFFICIENT_BUFFER, HANDLE, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, GetExtendedUdpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCPROW_OWNER_PID,
    MIB_UDP6ROW_OWNER_PID, MIB_UDPROW_OWNER_PID, TCP_TABLE_OWNER_PID_LISTENER, UDP_TABLE_OWNER_PID,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
use windows_sys::Win32::System::Threading::{
    OpenProcess, PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION, QueryFullProcessImageNameW,
};

use super::imp::{NetApiError, last_error};

/// The transport of a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketTransport {
    /// From the TCP table (listeners only).
    Tcp,
    /// From the UDP table (every bound endpoint).
    Udp,
}

/// One listening socket as the IP Helper API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListeningSocket {
    /// TCP or UDP.
    pub transport: SocketTransport,
    /// The bound address (`0.0.0.0` / `::` for a wildcard bind).
    pub address: IpAddr,
    /// The bound port.
    pub port: u16,
    /// `dwOwningPid`.
    pub pid: u32,
    /// The call that listed it (for evidence), e.g. `GetExtendedTcpTable(AF_INET6)`.
    pub call: &'static str,
}

/// The table rows the calls return after their `dwNumEntries` count.
trait Row: Copy {
    fn socket(&self, transport: SocketTransport, call: &'static str) -> ListeningSocket;
}

/// A port from the low 16 bits of a `DWORD`, in network byte order.
fn port(dw: u32) -> u16 {
    // The low 16 bits hold the port; the cast keeps exactly them.
    #[allow(clippy::cast_possible_truncation)]
    u16::from_be(dw as u16)
}

impl Row for MIB_TCPROW_OWNER_PID {
    fn socket(&self, transport: SocketTransport, call: &'static str) -> ListeningSocket {
        ListeningSocket {
            transport,
            address: IpAddr::V4(Ipv4Addr::from(self.dwLocalAddr.to_ne_bytes())),
            port: port(self.dwLocalPort),
            pid: self.dwOwningPid,
            call,
        }
    }
}

impl Row for MIB_TCP6ROW_OWNER_PID {
    fn socket(&self, transport: SocketTransport, call: &'static str) -> ListeningSocket {
        ListeningSocket {
            transport,
            address: IpAddr::V6(Ipv6Addr::from(self.ucLocalAddr)),
            port: port(self.dwLocalPort),
            pid: self.dwOwningPid,
            call,
        }
    }
}

impl Row for MIB_UDPROW_OWNER_PID {
    fn socket(&self, transport: SocketTransport, call: &'static str) -> ListeningSocket {
        ListeningSocket {
            transport,
            address: IpAddr::V4(Ipv4Addr::from(self.dwLocalAddr.to_ne_bytes())),
            port: port(self.dwLocalPort),
            pid: self.dwOwningPid,
            call,
        }
    }
}

impl Row for MIB_UDP6ROW_OWNER_PID {
    fn socket(&self, transport: SocketTransport, call: &'static str) -> ListeningSocket {
        ListeningSocket {
            transport,
            address: IpAddr::V6(Ipv6Addr::from(self.ucLocalAddr)),
            port: port(self.dwLocalPort),
            pid: self.dwOwningPid,
            call,
        }
    }
}

/// Tables grow between the size query and the read on a busy host; after this many tries the
/// call is reported as failing rather than looping.
const SIZE_TRIES: usize = 8;

/// The buffer-size retry loop the table calls share: `call(buffer, &mut size)` is asked with
/// the current size; `ERROR_INSUFFICIENT_BUFFER` updates `size` and the call is repeated with a
/// buffer that large. The buffer is `u64`s so any table row is aligned in it.
fn sized_table(
    name: &str,
    mut call: impl FnMut(*mut core::ffi::c_void, &mut u32) -> u32,
) -> Result<Vec<u64>, NetApiError> {
    let mut size: u32 = 0;
    let mut buffer: Vec<u64> = Vec::new();
    for _ in 0..SIZE_TRIES {
        buffer.resize((size as usize).div_ceil(8).max(1), 0);
        let status = call(buffer.as_mut_ptr().cast(), &mut size);
        match status {
            NO_ERROR => return Ok(buffer),
            ERROR_INSUFFICIENT_BUFFER => {}
            code => {
                return Err(NetApiError {
                    call: name.into(),
                    code,
                });
            }
        }
    }
    Err(NetApiError {
        call: format!("{name} (the table kept growing)"),
        code: ERROR_INSUFFICIENT_BUFFER,
    })
}

/// The rows of a table buffer: `DWORD dwNumEntries`, then the rows (aligned after the count as
/// the C struct lays them out).
fn rows<R: Row>(
    buffer: &[u64],
    transport: SocketTransport,
    call: &'static str,
) -> Vec<ListeningSocket> {
    let bytes = std::mem::size_of_val(buffer);
    let Some(first) = buffer.first() else {
        return Vec::new();
    };
    let head = first.to_ne_bytes();
    let count = u32::from_ne_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let offset = std::mem::align_of::<R>().max(4);
    let fits = (bytes.saturating_sub(offset)) / std::mem::size_of::<R>();
    // A count beyond the buffer would be a Windows bug; read what the buffer holds.
    let count = count.min(fits);
    // SAFETY: the buffer is u64-aligned, so `offset` (4 or R's alignment, at most 8) is aligned
    // for R; `count` rows of R lie inside the buffer (checked above); the call filled them.
    let table = unsafe {
        std::slice::from_raw_parts(buffer.as_ptr().cast::<u8>().add(offset).cast::<R>(), count)
    };
    table.iter().map(|r| r.socket(transport, call)).collect()
}

/// Every TCP listener, IPv4 then IPv6.
pub fn tcp_listeners() -> Result<Vec<ListeningSocket>, NetApiError> {
    let mut sockets = Vec::new();
    for (family, call) in [
        (AF_INET, "GetExtendedTcpTable(AF_INET)"),
        (AF_INET6, "GetExtendedTcpTable(AF_INET6)"),
    ] {
        let buffer = sized_table(call, |table, size| {
            // SAFETY: `table` points at `*size` writable bytes (sized_table's buffer), `size`
            // is a live local; no order is asked (FALSE), reserved is 0.
            unsafe {
                GetExtendedTcpTable(
                    table,
                    size,
                    0,
                    u32::from(family),
                    TCP_TABLE_OWNER_PID_LISTENER,
                    0,
                )
            }
        })?;
        if family == AF_INET {
            sockets.extend(rows::<MIB_TCPROW_OWNER_PID>(
                &buffer,
                SocketTransport::Tcp,
                call,
            ));
        } else {
            sockets.extend(rows::<MIB_TCP6ROW_OWNER_PID>(
                &buffer,
                SocketTransport::Tcp,
                call,
            ));
        }
    }
    Ok(sockets)
}

/// Every bound UDP endpoint, IPv4 then IPv6.
pub fn udp_listeners() -> Result<Vec<ListeningSocket>, NetApiError> {
    let mut sockets = Vec::new();
    for (family, call) in [
        (AF_INET, "GetExtendedUdpTable(AF_INET)"),
        (AF_INET6, "GetExtendedUdpTable(AF_INET6)"),
    ] {
        let buffer = sized_table(call, |table, size| {
            // SAFETY: as for GetExtendedTcpTable above.
            unsafe {
                GetExtendedUdpTable(table, size, 0, u32::from(family), UDP_TABLE_OWNER_PID, 0)
            }
        })?;
        if family == AF_INET {
            sockets.extend(rows::<MIB_UDPROW_OWNER_PID>(
                &buffer,
                SocketTransport::Udp,
                call,
            ));
        } else {
            sockets.extend(rows::<MIB_UDP6ROW_OWNER_PID>(
                &buffer,
                SocketTransport::Udp,
                call,
            ));
        }
    }
    Ok(sockets)
}

/// Closes a process handle when dropped.
struct ProcessHandle(HANDLE);

impl Drop for ProcessHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpenProcess and is closed once, here.
        unsafe { CloseHandle(self.0) };
    }
}

/// The full image path of process `pid` (`C:\Windows\System32\svchost.exe`); `Err` when the
/// process is gone or not readable (other sessions' processes without administrator rights,
/// the System process 4 and the Idle process 0).
pub fn process_image(pid: u32) -> Result<String, NetApiError> {
    let call = || format!("OpenProcess({pid})");
    // SAFETY: plain call; a null handle is checked below.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if handle.is_null() {
        return Err(last_error(call()));
    }
    let guard = ProcessHandle(handle);
    // Paths may be long (\\?\ prefixes); 32k UTF-16 units is the Windows maximum.
    let mut name = vec![0u16; 32_768];
    let mut len = u32::try_from(name.len()).unwrap_or(u32::MAX);
    // SAFETY: `name` has `len` writable units; `len` is a live local the call updates to the
    // length written (without the terminator).
    let ok = unsafe {
        QueryFullProcessImageNameW(guard.0, PROCESS_NAME_WIN32, name.as_mut_ptr(), &raw mut len)
    };
    if ok == 0 {
        return Err(last_error(format!("QueryFullProcessImageNameW({pid})")));
    }
    name.truncate(len as usize);
    Ok(String::from_utf16_lossy(&name))
}

#[cfg(test)]
mod tests {
    use super::port;

    #[test]
    fn ports_are_network_order_in_the_low_word() {
        // 3389 = 0x0D3D, stored as bytes 0D 3D: the little-endian DWORD 0x3D0D.
        assert_eq!(port(u32::from(u16::to_be(3389))), 3389);
    }
}
