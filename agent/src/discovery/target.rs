//! Which addresses and ports a sweep may touch: CIDR and exclusion parsing, the size bound, and
//! the port list (`502`, or `15020/modbus` to speak a protocol on a non-standard port).
//!
//! Only IPv4 is swept: an IPv6 prefix cannot be enumerated. Network and broadcast addresses of
//! prefixes shorter than /31 are skipped, because a packet to a directed broadcast reaches every
//! device on the segment — exactly the fan-out an OT sweep must not cause.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use thiserror::Error;

use super::registry::Protocol;

/// A problem with `--target`, `--exclude` or `--ports`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TargetError {
    /// Not an IPv4 address or CIDR.
    #[error("{0:?} is not an IPv4 address or CIDR (IPv6 cannot be swept)")]
    Syntax(String),
    /// More addresses than the configured bound.
    #[error(
        "target has {count} addresses, more than the bound of {bound} (/{prefix}); pass --force to sweep it anyway"
    )]
    TooLarge {
        /// Addresses in the target.
        count: u64,
        /// The bound.
        bound: u64,
        /// The bound as a prefix length.
        prefix: u8,
    },
    /// Nothing left after exclusions.
    #[error("no address left to probe after exclusions")]
    Empty,
    /// A broadcast, multicast or unspecified address.
    #[error("{0} is a broadcast, multicast or unspecified address and is never probed")]
    Forbidden(Ipv4Addr),
    /// A bad port entry.
    #[error("port {0:?}: expected PORT or PORT/PROTOCOL with PROTOCOL one of {1}")]
    Port(String, String),
}

/// An IPv4 network: base address and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    base: u32,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/24` or a bare address (a /32). Host bits are cleared.
    pub fn parse(raw: &str) -> Result<Self, TargetError> {
        let raw = raw.trim();
        let bad = || TargetError::Syntax(raw.to_string());
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, prefix.parse::<u8>().map_err(|_| bad())?),
            None => (raw, 32),
        };
        if prefix > 32 {
            return Err(bad());
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        Ok(Self {
            base: u32::from(addr) & mask(prefix),
            prefix,
        })
    }

    /// Number of addresses, including network and broadcast.
    pub fn size(self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    /// Whether `addr` lies inside.
    pub fn contains(self, addr: Ipv4Addr) -> bool {
        u32::from(addr) & mask(self.prefix) == self.base
    }

    /// The addresses worth probing: all but network and broadcast when the prefix is < /31.
    fn hosts(self) -> impl Iterator<Item = Ipv4Addr> {
        let last = u64::from(self.base) + self.size() - 1;
        let (first, last) = if self.prefix < 31 {
            (u64::from(self.base) + 1, last - 1)
        } else {
            (u64::from(self.base), last)
        };
        (first..=last)
            .filter_map(|a| u32::try_from(a).ok())
            .map(Ipv4Addr::from)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// Parses a comma-separated CIDR list.
pub fn parse_cidrs(raw: &str) -> Result<Vec<Cidr>, TargetError> {
    raw.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(Cidr::parse)
        .collect()
}

/// Expands targets minus exclusions into a sorted address list, refusing more than
/// `2^(32 - max_prefix)` addresses unless `force`.
pub fn expand(
    targets: &[Cidr],
    exclude: &[Cidr],
    max_prefix: u8,
    force: bool,
) -> Result<Vec<Ipv4Addr>, TargetError> {
    let count: u64 = targets.iter().map(|c| c.size()).sum();
    let bound = 1u64 << (32 - u32::from(max_prefix.min(32)));
    if count > bound && !force {
        return Err(TargetError::TooLarge {
            count,
            bound,
            prefix: max_prefix,
        });
    }
    let mut out = BTreeSet::new();
    for cidr in targets {
        for addr in cidr.hosts() {
            if addr.is_broadcast() || addr.is_multicast() || addr.is_unspecified() {
                if cidr.prefix == 32 {
                    return Err(TargetError::Forbidden(addr));
                }
                continue;
            }
            if !exclude.iter().any(|e| e.contains(addr)) {
                out.insert(addr);
            }
        }
    }
    if out.is_empty() {
        return Err(TargetError::Empty);
    }
    Ok(out.into_iter().collect())
}

/// One port to probe and the protocol to speak there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// TCP or UDP port.
    pub port: u16,
    /// The protocol; [`Protocol::Connect`] only checks liveness.
    pub protocol: Protocol,
}

/// Parses `502,161/snmp,15020/modbus`. A bare port speaks its well-known protocol (or only
/// connects). Port 9100 is always connect-only: raw print ports print whatever they receive.
pub fn parse_ports(raw: &str) -> Result<Vec<PortSpec>, TargetError> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || TargetError::Port(entry.to_string(), Protocol::names());
        let (port, protocol) = if let Some((port, name)) = entry.split_once('/') {
            (
                port.parse::<u16>().map_err(|_| bad())?,
                Protocol::from_name(name).ok_or_else(bad)?,
            )
        } else {
            let port = entry.parse::<u16>().map_err(|_| bad())?;
            (port, Protocol::for_port(port))
        };
        if port == 0 {
            return Err(bad());
        }
        let protocol = if port == super::registry::RAW_PRINT_PORT {
            Protocol::Connect
        } else {
            protocol
        };
        let spec = PortSpec { port, protocol };
        if !out.contains(&spec) {
            out.push(spec);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_expands() {
        let t = parse_cidrs("192.0.2.7/30, 198.51.100.1").unwrap();
        let ex = parse_cidrs("192.0.2.5").unwrap();
        let hosts = expand(&t, &ex, 16, false).unwrap();
        assert_eq!(
            hosts,
            vec![Ipv4Addr::new(192, 0, 2, 6), Ipv4Addr::new(198, 51, 100, 1)]
        );
    }

    #[test]
    fn refuses_large_targets_unless_forced() {
        let t = parse_cidrs("10.0.0.0/15").unwrap();
        assert!(matches!(
            expand(&t, &[], 16, false),
            Err(TargetError::TooLarge { count: 131_072, .. })
        ));
        let t = parse_cidrs("10.0.0.0/24").unwrap();
        assert!(matches!(
            expand(&t, &[], 25, false),
            Err(TargetError::TooLarge { .. })
        ));
        assert_eq!(expand(&t, &[], 25, true).unwrap().len(), 254);
    }

    #[test]
    fn rejects_bad_syntax_and_broadcast() {
        assert!(Cidr::parse("::1/128").is_err());
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
        let b = parse_cidrs("255.255.255.255").unwrap();
        assert!(matches!(
            expand(&b, &[], 16, false),
            Err(TargetError::Forbidden(_))
        ));
        let all = parse_cidrs("10.0.0.1").unwrap();
        assert_eq!(expand(&all, &all, 16, false), Err(TargetError::Empty));
    }

    #[test]
    fn ports_map_to_protocols_and_9100_is_connect_only() {
        let p = parse_ports("502,15020/modbus,9100,9100/modbus,161").unwrap();
        assert_eq!(
            p[0],
            PortSpec {
                port: 502,
                protocol: Protocol::Modbus
            }
        );
        assert_eq!(
            p[1],
            PortSpec {
                port: 15020,
                protocol: Protocol::Modbus
            }
        );
        assert_eq!(
            p[2],
            PortSpec {
                port: 9100,
                protocol: Protocol::Connect
            }
        );
        assert_eq!(
            p.len(),
            4,
            "9100/modbus collapses into the connect-only entry"
        );
        assert_eq!(p[3].protocol, Protocol::Snmp);
        assert!(parse_ports("502/nope").is_err());
        assert!(parse_ports("0").is_err());
    }
}
