//! Listening TCP and UDP sockets, from `/proc/net/{tcp,tcp6,udp,udp6}`, and the processes that
//! own them, from the socket inodes behind `/proc/<pid>/fd/*`.
//!
//! Line layout (kernel `net/ipv4/tcp_ipv4.c` `get_tcp4_sock`, `net/ipv6/tcp_ipv6.c`):
//!
//! ```text
//!   sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//!    0: 0100007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0     0   12345 ...
//! ```
//!
//! Addresses are the raw `__be32` words printed with `%08X` in the host's byte order (so
//! `0100007F` is 127.0.0.1 on little-endian hosts); IPv6 is four such words. Ports are printed
//! after `ntohs`, so they read as plain hex. TCP state `0A` is LISTEN; a UDP socket "listens"
//! when it is unconnected: state `07` (CLOSE) with remote port 0.
//!
//! This module only reads; it must not open sockets (the probes in `tls_probe` do that).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::input::{line_no, list_dir, read_bounded, read_path};
use super::{Evidence, FactError, Observation, rooted};

const COLLECTOR: &str = "listeners";
/// Each socket is one ~150-byte line; 16 MiB is about 100k sockets.
const PROC_NET_LIMIT: u64 = 16 * 1024 * 1024;
const PASSWD_LIMIT: u64 = 4 * 1024 * 1024;
/// Bounds the walk of `/proc/<pid>/fd` on hosts (or hostile roots) with huge process tables.
const MAX_PROCESSES: usize = 65_536;
const MAX_FDS_PER_PROCESS: usize = 65_536;
/// Forking servers share one socket among many workers; name the first few.
const MAX_OWNERS: usize = 8;

/// The transport of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

/// A process holding a listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// `/proc/<pid>/comm`.
    pub comm: String,
    /// Target of `/proc/<pid>/exe`, empty when unreadable.
    pub exe: String,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// TCP or UDP.
    pub transport: Transport,
    /// Bound address; `0.0.0.0` or `::` for a wildcard bind.
    pub address: IpAddr,
    /// Bound port.
    pub port: u16,
    /// Owning uid of the socket.
    pub uid: u32,
    /// Socket inode, the key into `/proc/<pid>/fd`.
    pub inode: u64,
    /// The `/proc/net` file it came from.
    pub source: &'static str,
    /// 1-based line in `source`.
    pub line: u32,
    /// The line's text.
    pub raw: String,
    /// Processes holding the socket (empty when they cannot be seen).
    pub owners: Vec<Owner>,
}

impl Listener {
    /// Reachable from other hosts: not bound to a loopback address.
    pub fn is_exposed(&self) -> bool {
        !is_loopback(self.address)
    }

    /// `tcp 0.0.0.0:22`, `tcp [::]:22`: the observation name and the join key for probes.
    pub fn key(&self) -> String {
        match self.address {
            IpAddr::V4(a) => format!("{} {a}:{}", self.transport.as_str(), self.port),
            IpAddr::V6(a) => format!("{} [{a}]:{}", self.transport.as_str(), self.port),
        }
    }

    /// Evidence pointing at the `/proc/net` line.
    pub fn evidence(&self) -> Evidence {
        Evidence {
            source: self.source.into(),
            line: self.line,
            probe: COLLECTOR.into(),
            detail: self.raw.trim().into(),
        }
    }
}

/// Loopback including IPv4-mapped `::ffff:127.0.0.0/104`.
pub fn is_loopback(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

const TABLES: [(&str, Transport); 4] = [
    ("/proc/net/tcp", Transport::Tcp),
    ("/proc/net/tcp6", Transport::Tcp),
    ("/proc/net/udp", Transport::Udp),
    ("/proc/net/udp6", Transport::Udp),
];

/// Reads every listening socket under `root`, with owners where `/proc/<pid>/fd` is readable.
pub fn listeners(root: &Path, errors: &mut Vec<FactError>) -> Vec<Listener> {
    let mut found = Vec::new();
    for (source, transport) in TABLES {
        let Some(input) = read_bounded(root, source, PROC_NET_LIMIT, COLLECTOR, errors) else {
            continue;
        };
        let (mut parsed, bad) = parse_table(&input.text, transport, source);
        if let Some((first, count)) = bad {
            errors.push(FactError {
                collector: COLLECTOR.into(),
                source: source.into(),
                error: format!(
                    "{count} malformed line(s), first at line {first}; they were skipped"
                ),
            });
        }
        found.append(&mut parsed);
    }
    let owners = socket_owners(root, errors);
    for listener in &mut found {
        if let Some(list) = owners.get(&listener.inode) {
            listener.owners.clone_from(list);
        }
    }
    found
}

/// Parses one `/proc/net` table; returns the listeners and, if any line was malformed, the
/// first bad line number and the count.
pub fn parse_table(
    text: &str,
    transport: Transport,
    source: &'static str,
) -> (Vec<Listener>, Option<(u32, usize)>) {
    let mut listeners = Vec::new();
    let mut bad: Option<(u32, usize)> = None;
    // Line 1 is the column header.
    for (index, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, transport) {
            Ok(Some(mut listener)) => {
                listener.source = source;
                listener.line = line_no(index);
                listeners.push(listener);
            }
            Ok(None) => {}
            Err(()) => {
                let (first, count) = bad.unwrap_or((line_no(index), 0));
                bad = Some((first, count + 1));
            }
        }
    }
    (listeners, bad)
}

/// `Ok(None)` for a well-formed line that is not a listener, `Err` for a malformed one.
fn parse_line(line: &str, transport: Transport) -> Result<Option<Listener>, ()> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return Err(());
    }
    let (address, port) = parse_endpoint(fields[1]).ok_or(())?;
    let (_, remote_port) = parse_endpoint(fields[2]).ok_or(())?;
    let state = u8::from_str_radix(fields[3], 16).map_err(|_| ())?;
    let uid = fields[7].parse::<u32>().map_err(|_| ())?;
    let inode = fields[9].parse::<u64>().map_err(|_| ())?;
    let listening = match transport {
        Transport::Tcp => state == 0x0A,
        Transport::Udp => state == 0x07 && remote_port == 0,
    };
    if !listening {
        return Ok(None);
    }
    Ok(Some(Listener {
        transport,
        address,
        port,
        uid,
        inode,
        source: "",
        line: 0,
        raw: line.to_string(),
        owners: Vec::new(),
    }))
}

/// Parses `ADDR:PORT` with an 8 (IPv4) or 32 (IPv6) hex digit address in host word order.
pub fn parse_endpoint(field: &str) -> Option<(IpAddr, u16)> {
    let (address, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if !address.is_ascii() {
        return None;
    }
    let address = match address.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(address)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(&address[i * 8..i * 8 + 8])?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some((address, port))
}

/// One `%08X` word back to the bytes it was in memory: the kernel printed it in host order.
fn word(hex: &str) -> Option<[u8; 4]> {
    u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes)
}

/// Maps socket inodes to the processes holding them. Unreadable processes (other users' when
/// not root, or ones that exited mid-walk) are counted into one error, not one per process.
fn socket_owners(root: &Path, errors: &mut Vec<FactError>) -> HashMap<u64, Vec<Owner>> {
    let mut owners: HashMap<u64, Vec<Owner>> = HashMap::new();
    let mut unreadable = 0usize;
    let pids = list_dir(root, "/proc", COLLECTOR, errors)
        .into_iter()
        .filter_map(|(name, _)| name.parse::<u32>().ok())
        .take(MAX_PROCESSES);
    for pid in pids {
        let fd_dir = rooted(root, &format!("/proc/{pid}/fd"));
        let Ok(entries) = std::fs::read_dir(&fd_dir) else {
            unreadable += 1;
            continue;
        };
        let mut owner: Option<Owner> = None;
        for entry in entries.filter_map(Result::ok).take(MAX_FDS_PER_PROCESS) {
            let Some(inode) = std::fs::read_link(entry.path())
                .ok()
                .and_then(|target| socket_inode(&target.to_string_lossy()))
            else {
                continue;
            };
            let list = owners.entry(inode).or_default();
            if list.len() < MAX_OWNERS && list.iter().all(|o| o.pid != pid) {
                list.push(owner.get_or_insert_with(|| describe(root, pid)).clone());
            }
        }
    }
    if unreadable > 0 {
        errors.push(FactError {
            collector: COLLECTOR.into(),
            source: "/proc/*/fd".into(),
            error: format!(
                "{unreadable} process(es) could not be read; their sockets have no owner"
            ),
        });
    }
    for list in owners.values_mut() {
        list.sort_by_key(|o| o.pid);
    }
    owners
}

/// `socket:[12345]` -> 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn describe(root: &Path, pid: u32) -> Owner {
    let comm = read_path(&rooted(root, &format!("/proc/{pid}/comm")), 256)
        .map(|(text, _)| text.trim().to_string())
        .unwrap_or_default();
    let exe = std::fs::read_link(rooted(root, &format!("/proc/{pid}/exe")))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Owner { pid, comm, exe }
}

/// uid -> user name from `/etc/passwd` (first entry wins, as in getpwuid).
pub fn parse_passwd(text: &str) -> BTreeMap<u32, String> {
    let mut users = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(uid)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if let Ok(uid) = uid.parse::<u32>() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

/// Reads the listeners and pushes one `listener` observation each; returns them for the probes.
pub fn collect(
    root: &Path,
    observations: &mut Vec<Observation>,
    errors: &mut Vec<FactError>,
) -> Vec<Listener> {
    let found = listeners(root, errors);
    let users = read_bounded(root, "/etc/passwd", PASSWD_LIMIT, COLLECTOR, errors)
        .map(|input| parse_passwd(&input.text))
        .unwrap_or_default();
    observations.extend(
        found
            .iter()
            .map(|listener| observation(listener, users.get(&listener.uid))),
    );
    found
}

/// The `listener` observation of one socket (Windows builds the same one from its tables).
pub fn observation(listener: &Listener, user: Option<&String>) -> Observation {
    Observation {
        category: "listener".into(),
        name: listener.key(),
        value: json!({
            "transport": listener.transport,
            "address": listener.address.to_string(),
            "port": listener.port,
            "exposed": listener.is_exposed(),
            "uid": listener.uid,
            "user": user,
            "inode": listener.inode,
            "processes": listener.owners,
        }),
        evidence: vec![listener.evidence()],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // In tests an unwrap that fails is the failing assertion.
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 21001 1 0000000000000000 100 0 0 10 0\n   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21002 1 0000000000000000 100 0 0 10 0\n   2: 0F02000A:0016 0202000A:C350 01 00000000:00000000 02:0009A2D2 00000000     0        0 21003 4 0000000000000000 20 4 30 10 -1\n";

    #[test]
    fn ipv4_listeners_in_host_byte_order() {
        let (listeners, bad) = parse_table(TCP, Transport::Tcp, "/proc/net/tcp");
        assert!(bad.is_none());
        assert_eq!(listeners.len(), 2, "the ESTABLISHED line is not a listener");
        assert_eq!(listeners[0].address, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(listeners[0].port, 3306);
        assert_eq!(listeners[0].uid, 105);
        assert_eq!(listeners[0].line, 2);
        assert!(!listeners[0].is_exposed());
        assert_eq!(listeners[1].key(), "tcp 0.0.0.0:22");
        assert!(listeners[1].is_exposed());
    }

    #[test]
    fn ipv6_words_are_reordered() {
        // ::1 and 2001:db8::1 as the kernel prints them on a little-endian host.
        let (a, p) = parse_endpoint("00000000000000000000000001000000:1F90").unwrap();
        assert_eq!(a, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(p, 8080);
        let (a, _) = parse_endpoint("B80D0120000000000000000001000000:0050").unwrap();
        assert_eq!(a, "2001:db8::1".parse::<IpAddr>().unwrap());
        let (a, _) = parse_endpoint("0000000000000000FFFF00000100007F:0050").unwrap();
        assert!(is_loopback(a), "::ffff:127.0.0.1 is loopback");
    }

    #[test]
    fn udp_unconnected_sockets_listen() {
        let udp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 300 2 0 0\n  2: 0100007F:A000 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 301 2 0 0\n";
        let (listeners, _) = parse_table(udp, Transport::Udp, "/proc/net/udp");
        assert_eq!(listeners.len(), 1);
        assert_eq!(listeners[0].port, 68);
    }

    #[test]
    fn hostile_lines_are_counted_not_fatal() {
        let cut = &TCP[..TCP.len() - 60];
        let text = format!(
            "{cut}\nZZ: garbage\n   9: 0100007F:GGGG 00000000:0000 0A a b c 0 0 1\n   9: 01007F:0016 00000000:0000 0A a b c 0 0 1\n\u{0}\u{ff}\n"
        );
        let (listeners, bad) = parse_table(&text, Transport::Tcp, "/proc/net/tcp");
        assert_eq!(listeners.len(), 2);
        assert_eq!(bad, Some((4, 5)));
        assert!(parse_endpoint("ÄÄÄÄÄÄÄÄ:0016").is_none());
        assert!(parse_endpoint("0100007F").is_none());
    }

    #[test]
    fn socket_links_and_passwd() {
        assert_eq!(socket_inode("socket:[21002]"), Some(21002));
        assert_eq!(socket_inode("pipe:[1]"), None);
        assert_eq!(socket_inode("socket:[x]"), None);
        let users = parse_passwd(
            "root:x:0:0:root:/root:/bin/bash\nmysql:x:105:110::/nonexistent:/bin/false\nbroken\nroot2:x:0:0::/:/bin/sh\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&105).map(String::as_str), Some("mysql"));
    }
}
