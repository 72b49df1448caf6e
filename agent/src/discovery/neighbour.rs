//! Hardware addresses of discovered devices, read from the kernel's IPv4 neighbour (ARP) table
//! after a sweep, and their manufacturer from the IEEE OUI registry.
//!
//! Nothing is sent for this: the sweep's own connects made the kernel resolve every reachable
//! host on a directly attached subnet, so the table already holds their addresses. Hosts behind
//! a router have no entry (the router's address answers for them) and simply get no MAC.
//!
//! `/proc/net/arp` is read rather than a netlink dump because it needs no privileges and no
//! extra crate; its one weakness, that it hides the entry's state (a stale entry looks like a
//! fresh one), does not matter here, since only hosts that answered a probe moments ago are
//! looked up. That is also why a neighbour entry alone never makes a host a device.
//!
//! The vendor comes from the registry Debian ships as `ieee-data` (`oui.txt`, lines such as
//! `C0-56-E3   (hex)\t\tHangzhou Hikvision Digital Technology Co.,Ltd.`). It names the maker of
//! the network interface, which for embedded devices is usually the device's maker, so it is
//! kept as an observation and never overrides a vendor a protocol reported.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// `ATF_COM` in the flags column: the hardware address is resolved.
const ATF_COM: u32 = 0x2;

/// Where Linux publishes the IPv4 neighbour table.
pub const ARP_TABLE: &str = "/proc/net/arp";

/// Where Debian's `ieee-data` puts the OUI registry.
pub const OUI_REGISTRY: &str = "/usr/share/ieee-data/oui.txt";

/// The most registry lines read: the 2025 registry has about 38,000 entries; a file far larger
/// than that is not the registry, and reading stops instead of scanning it all.
const MAX_REGISTRY_LINES: usize = 1_000_000;

/// One resolved neighbour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// Its IPv4 address.
    pub address: Ipv4Addr,
    /// Its hardware address, lower-case and colon-separated.
    pub mac: String,
    /// The interface it was resolved on.
    pub interface: String,
}

/// Parses `/proc/net/arp`: a header line, then whitespace-separated columns
/// `IP address, HW type, Flags, HW address, Mask, Device`. Incomplete entries, all-zero
/// addresses and malformed lines are skipped: the table is advisory.
pub fn parse_arp_table(text: &str) -> Vec<Neighbour> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let [address, _hw_type, flags, mac, _mask, interface] = columns[..] else {
                return None;
            };
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            let mac = normalise_mac(mac)?;
            let address = address.parse().ok()?;
            (flags & ATF_COM != 0 && mac != "00:00:00:00:00:00").then(|| Neighbour {
                address,
                mac,
                interface: interface.to_string(),
            })
        })
        .collect()
}

/// `AA:bb:...` as six lower-case colon-separated octets, or `None` if it is not one.
fn normalise_mac(raw: &str) -> Option<String> {
    let octets: Vec<&str> = raw.split([':', '-']).collect();
    let valid = octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    valid.then(|| octets.join(":").to_ascii_lowercase())
}

/// Reads the neighbour table at `path`; an unreadable table (not Linux, a sandbox) means no MACs.
pub fn read_table(path: &Path) -> Vec<Neighbour> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_arp_table(&text),
        Err(error) => {
            tracing::debug!(path = %path.display(), %error, "no neighbour table");
            Vec::new()
        }
    }
}

/// The registry entry that names a MAC's manufacturer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuiEntry {
    /// The organisation the prefix is assigned to.
    pub organisation: String,
    /// The registry file.
    pub source: PathBuf,
    /// Its line, 1-based.
    pub line: u32,
}

/// The three-octet prefix of a normalised MAC, as the registry writes it (`C0-56-E3`).
fn oui_key(mac: &str) -> Option<String> {
    let prefix = mac.get(..8)?;
    Some(prefix.replace(':', "-").to_ascii_uppercase())
}

/// Looks up the manufacturers of `macs` in the registry at `path`, in one streaming pass that
/// keeps only the prefixes asked for. A missing registry yields no vendors, not an error: it is
/// an optional package.
pub fn vendors(path: &Path, macs: &[&str]) -> HashMap<String, OuiEntry> {
    let wanted: HashMap<String, Vec<&str>> = macs.iter().fold(HashMap::new(), |mut map, mac| {
        if let Some(key) = oui_key(mac) {
            map.entry(key).or_default().push(mac);
        }
        map
    });
    let mut found = HashMap::new();
    if wanted.is_empty() {
        return found;
    }
    let Ok(file) = std::fs::File::open(path) else {
        tracing::debug!(path = %path.display(), "no OUI registry; MAC vendors not named");
        return found;
    };
    for (index, line) in BufReader::new(file)
        .lines()
        .take(MAX_REGISTRY_LINES)
        .enumerate()
    {
        // A non-UTF-8 line is someone else's text, not an assignment: skip it.
        let Ok(line) = line else { continue };
        let Some((key, organisation)) = parse_registry_line(&line) else {
            continue;
        };
        if let Some(macs) = wanted.get(key) {
            for mac in macs {
                found.entry((*mac).to_string()).or_insert_with(|| OuiEntry {
                    organisation: organisation.to_string(),
                    source: path.to_path_buf(),
                    line: u32::try_from(index + 1).unwrap_or(u32::MAX),
                });
            }
            if found.len() == macs_len(&wanted) {
                break;
            }
        }
    }
    found
}

fn macs_len(wanted: &HashMap<String, Vec<&str>>) -> usize {
    wanted.values().map(Vec::len).sum()
}

/// `C0-56-E3   (hex)\t\tOrganisation` → (`C0-56-E3`, `Organisation`).
fn parse_registry_line(line: &str) -> Option<(&str, &str)> {
    let (key, rest) = line.split_once("(hex)")?;
    let key = key.trim();
    let organisation = rest.trim();
    (key.len() == 8 && !organisation.is_empty()).then_some((key, organisation))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TABLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
192.0.2.1        0x1         0x2         02:FC:00:00:00:05     *        eth0
192.0.2.9        0x1         0x0         00:00:00:00:00:00     *        eth0
192.0.2.10       0x1         0x6         c0:56:e3:12:34:56     *        veth1
garbage line
192.0.2.11       0x1         0x2         zz:56:e3:12:34:56     *        eth0
";

    #[test]
    fn resolved_entries_are_kept_and_normalised() {
        let table = parse_arp_table(TABLE);
        assert_eq!(
            table,
            vec![
                Neighbour {
                    address: Ipv4Addr::new(192, 0, 2, 1),
                    mac: "02:fc:00:00:00:05".into(),
                    interface: "eth0".into(),
                },
                Neighbour {
                    address: Ipv4Addr::new(192, 0, 2, 10),
                    mac: "c0:56:e3:12:34:56".into(),
                    interface: "veth1".into(),
                },
            ]
        );
    }

    #[test]
    fn hostile_tables_never_panic() {
        for text in [
            "",
            "\n\n",
            "x\n1 2 3 4 5 6 7",
            "h\n1.2.3.4 0x1 0xZZ aa:bb:cc:dd:ee:ff * e",
        ] {
            assert!(parse_arp_table(text).is_empty(), "{text:?}");
        }
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..500 {
            let bytes: Vec<u8> = (0..64)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    b" :0x12abf.\n"[(seed % 11) as usize]
                })
                .collect();
            let _ = parse_arp_table(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn vendors_come_from_the_registry_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oui.txt");
        std::fs::write(
            &path,
            "OUI/MA-L\t\t\tOrganization\ncompany_id\t\t\tOrganization\n\n\
             00-1B-1B   (hex)\t\tSiemens AG\n001B1B     (base 16)\t\tSiemens AG\n\n\
             C0-56-E3   (hex)\t\tHangzhou Hikvision Digital Technology Co.,Ltd.\n",
        )
        .unwrap();
        let found = vendors(
            &path,
            &[
                "c0:56:e3:12:34:56",
                "00:1b:1b:00:00:01",
                "02:00:00:00:00:01",
            ],
        );
        assert_eq!(found.len(), 2);
        let hik = &found["c0:56:e3:12:34:56"];
        assert_eq!(
            hik.organisation,
            "Hangzhou Hikvision Digital Technology Co.,Ltd."
        );
        assert_eq!(hik.line, 7);
        assert_eq!(found["00:1b:1b:00:00:01"].organisation, "Siemens AG");
        assert!(vendors(&dir.path().join("missing"), &["c0:56:e3:12:34:56"]).is_empty());
    }
}
