//! ONVIF identification: a WS-Discovery `Probe` sent unicast to the target's UDP port 3702,
//! then `GetDeviceInformation` from the device service the `ProbeMatch` names, without
//! credentials.
//!
//! Follows WS-Discovery (2005/04, the version ONVIF Core §7.3 mandates) §5.2 Probe and §5.3
//! ProbeMatches, ONVIF Core Specification §7.3.2.2 (scopes `onvif://www.onvif.org/<category>/
//! <value>`), §5.1.1 (the device service lives at `/onvif/device_service`) and §8.3.1
//! (GetDeviceInformation), §5.11.2.1 (the `ter:NotAuthorized` fault); SOAP 1.2 over HTTP/1.1.
//! Tested against IPyCam (PyPI `ipycam`), a virtual ONVIF camera, open and with credentials.
//!
//! ```text
//! UDP 3702  s:Envelope (SOAP 1.2) / s:Header: a:Action .../discovery/Probe, a:MessageID,
//!           a:ReplyTo anonymous, a:To urn:schemas-xmlsoap-org:ws:2005:04:discovery
//!           / s:Body / d:Probe / d:Types dn:NetworkVideoTransmitter
//! reply     .../d:ProbeMatches / d:ProbeMatch / d:Types, d:Scopes (space-separated URIs),
//!           d:XAddrs (space-separated device service URLs), d:MetadataVersion
//! TCP       POST /onvif/device_service HTTP/1.1  (to the XAddr's port, only on the target)
//!           Content-Type: application/soap+xml; action=".../device/wsdl/GetDeviceInformation"
//!           s:Envelope / s:Body / tds:GetDeviceInformation
//! reply     200: tds:GetDeviceInformationResponse / Manufacturer, Model, FirmwareVersion,
//!                SerialNumber, HardwareId
//!           401, or a s:Fault whose subcode is ter:NotAuthorized: credentials required
//! ```
//!
//! Safety: the Probe goes only to a configured target, never to the multicast group
//! 239.255.255.250; an XAddr that names another host (or HTTPS, or a name) is recorded but not
//! followed; the only SOAP operations built are Probe and GetDeviceInformation (read-only) and
//! no WS-Security header is ever sent. XML is read with `roxmltree` (no DTDs, node count
//! capped); the UDP session and [`TcpSession`] cap the reply sizes. Hand-written requests
//! instead of an ONVIF client crate: two fixed documents, and the ONVIF crates are full SOAP
//! clients able to call every operation, including the setters.

use std::net::{IpAddr, SocketAddr};

use super::http::{http_message_complete, message_body, parse_head};
use super::identity::{Auth, Field, Identification, Transit};
use super::limiter::HostPermit;
use super::session::{Budget, ProbeError, TcpSession, UdpSession};
use super::wire::{ParseError, text};

/// Protocol name in reports.
pub const PROTOCOL: &str = "onvif";

/// The device service path every ONVIF device serves (ONVIF Core §5.1.1).
pub const DEVICE_SERVICE_PATH: &str = "/onvif/device_service";

/// Most XML nodes a reply may hold; a ProbeMatch or device information has a few dozen.
const MAX_NODES: u32 = 2_000;

/// Longest value kept from a reply.
const MAX_VALUE: usize = 256;

/// Most scopes, types or XAddrs kept.
const MAX_ITEMS: usize = 32;

// BEGIN REQUEST BUILDERS (scanned by the forbidden-function test in registry.rs)
/// WS-Discovery Probe for NetworkVideoTransmitters, with `message_id` (a `urn:uuid:`).
pub fn probe_request(message_id: &str) -> Vec<u8> {
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" "#,
            r#"xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" "#,
            r#"xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" "#,
            r#"xmlns:dn="http://www.onvif.org/ver10/network/wsdl">"#,
            r#"<s:Header>"#,
            r#"<a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>"#,
            r#"<a:MessageID>{message_id}</a:MessageID>"#,
            r#"<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"#,
            r#"<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"#,
            r#"</s:Header>"#,
            r#"<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"#,
            r#"</s:Envelope>"#
        ),
        message_id = message_id
    )
    .into_bytes()
}

/// `GetDeviceInformation` POSTed to `host` (an address with port).
pub fn get_device_information(host: &str) -> Vec<u8> {
    let body = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">"#,
        r#"<s:Body><GetDeviceInformation xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body>"#,
        r#"</s:Envelope>"#
    );
    format!(
        "POST {DEVICE_SERVICE_PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: tillsyn-agent\r\nContent-Type: application/soap+xml; charset=utf-8; action=\"http://www.onvif.org/ver10/device/wsdl/GetDeviceInformation\"\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
// END REQUEST BUILDERS

/// A fresh WS-Discovery message id.
fn message_id() -> String {
    format!("urn:uuid:{}", uuid::Uuid::now_v7())
}

/// The requests a probe sends (for `--dry-run`; the message id differs per run).
pub fn plan() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "WS-Discovery Probe (unicast UDP)",
            probe_request(&message_id()),
        ),
        (
            "GetDeviceInformation (only if an XAddr is http on the target itself)",
            get_device_information("TARGET:XADDR-PORT"),
        ),
    ]
}

/// What a ProbeMatch announces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeMatch {
    /// `d:Types`, as written (QNames such as `dn:NetworkVideoTransmitter`).
    pub types: Vec<String>,
    /// `d:Scopes` URIs.
    pub scopes: Vec<String>,
    /// `d:XAddrs` device service URLs.
    pub xaddrs: Vec<String>,
}

impl ProbeMatch {
    /// Whether the device calls itself a NetworkVideoTransmitter (a camera or encoder).
    pub fn is_video_transmitter(&self) -> bool {
        self.types
            .iter()
            .any(|t| local_name(t) == "NetworkVideoTransmitter")
    }
}

/// The part of a QName after its prefix.
fn local_name(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

fn xml_error(error: &roxmltree::Error) -> ParseError {
    tracing::debug!(%error, "unparseable ONVIF XML");
    ParseError::Unexpected {
        field: "XML document",
        value: 0,
    }
}

/// Parses `bytes` as an XML document with DTDs refused and the node count capped.
fn document(bytes: &[u8]) -> Result<roxmltree::Document<'_>, ParseError> {
    let xml = std::str::from_utf8(bytes).map_err(|e| ParseError::Unexpected {
        field: "UTF-8 in XML",
        value: e.valid_up_to() as u64,
    })?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..roxmltree::ParsingOptions::default()
    };
    roxmltree::Document::parse_with_options(xml, options).map_err(|e| xml_error(&e))
}

fn clip(value: &str) -> String {
    text(value.trim().as_bytes())
        .chars()
        .take(MAX_VALUE)
        .collect()
}

/// The first descendant element of `node` called `name` (any namespace).
fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
    node.descendants()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// Space-separated list in element `name` under `node`.
fn list(node: roxmltree::Node<'_, '_>, name: &str) -> Vec<String> {
    child(node, name)
        .and_then(|n| n.text())
        .map(|t| {
            t.split_whitespace()
                .take(MAX_ITEMS)
                .map(clip)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
}

/// Scopes are URIs separated by white space, so a value should be percent-encoded; some
/// devices put raw spaces in `name/...`. A token without a scheme continues the scope before it.
fn scopes(node: roxmltree::Node<'_, '_>) -> Vec<String> {
    let Some(raw) = child(node, "Scopes").and_then(|n| n.text()) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for token in raw.split_whitespace() {
        if let Some(last) = out.last_mut().filter(|_| !token.contains("://")) {
            last.push(' ');
            last.push_str(token);
        } else if out.len() < MAX_ITEMS {
            out.push(token.to_string());
        } else {
            break;
        }
    }
    out.iter().map(|s| clip(s)).collect()
}

/// Parses a WS-Discovery ProbeMatches datagram.
pub fn parse_probe_matches(datagram: &[u8]) -> Result<ProbeMatch, ParseError> {
    let doc = document(datagram)?;
    let matched = child(doc.root(), "ProbeMatch").ok_or(ParseError::Empty)?;
    Ok(ProbeMatch {
        types: list(matched, "Types"),
        scopes: scopes(matched),
        xaddrs: list(matched, "XAddrs"),
    })
}

/// Percent-decodes a scope value (invalid escapes stay as written).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    clip(&String::from_utf8_lossy(&out))
}

/// ONVIF scope categories kept, with the identity field each feeds.
const SCOPES: [(&str, Field, &str); 5] = [
    ("hardware", Field::Model, "hardware"),
    ("name", Field::Detail, "onvif_name"),
    ("location", Field::Detail, "onvif_location"),
    ("type", Field::Detail, "onvif_type"),
    ("Profile", Field::Detail, "onvif_profile"),
];

/// The identification a ProbeMatch alone gives: scopes, types and XAddrs, plaintext unless
/// every XAddr is HTTPS, auth unknown until the device service answers.
pub fn identify_probe_match(matched: &ProbeMatch) -> Identification {
    let all_https = !matched.xaddrs.is_empty()
        && matched
            .xaddrs
            .iter()
            .all(|x| x.to_ascii_lowercase().starts_with("https://"));
    let mut id = Identification {
        protocol: PROTOCOL,
        fields: Vec::new(),
        transit: if all_https {
            Transit::Tls
        } else {
            Transit::Plaintext
        },
        auth: Auth::Unknown,
        auth_reason: "WS-Discovery answers anyone; the device service was not asked".to_string(),
    };
    for scope in &matched.scopes {
        let Some(rest) = scope.strip_prefix("onvif://www.onvif.org/") else {
            continue;
        };
        let Some((category, value)) = rest.split_once('/') else {
            continue;
        };
        if let Some((_, field, name)) = SCOPES.iter().find(|(c, _, _)| *c == category) {
            id.push(
                *field,
                name,
                percent_decode(value),
                format!("WS-Discovery scope onvif://www.onvif.org/{category}/"),
            );
        }
    }
    id.push(
        Field::Detail,
        "onvif_types",
        matched.types.join(" "),
        "WS-Discovery ProbeMatch Types",
    );
    id.push(
        Field::Detail,
        "onvif_xaddrs",
        matched.xaddrs.join(" "),
        "WS-Discovery ProbeMatch XAddrs",
    );
    id
}

/// Parses a ProbeMatches datagram into an identification (the fuzzed entry point).
pub fn parse(datagram: &[u8]) -> Result<Identification, ParseError> {
    Ok(identify_probe_match(&parse_probe_matches(datagram)?))
}

/// The device service to ask: the first `http://` XAddr whose host is the literal address of
/// `target` (an XAddr elsewhere is never followed). Returns its socket address.
pub fn device_service(xaddrs: &[String], target: IpAddr) -> Option<SocketAddr> {
    xaddrs.iter().find_map(|xaddr| {
        let rest = xaddr.strip_prefix("http://")?;
        let authority = rest.split('/').next()?;
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            (host, port_of(after)?)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (authority, 80),
            }
        };
        let ip: IpAddr = host.parse().ok()?;
        (ip == target).then_some(SocketAddr::new(ip, port))
    })
}

/// The port after an IPv6 literal's `]`: `:PORT`, or 80 when there is none.
fn port_of(after: &str) -> Option<u16> {
    match after.strip_prefix(':') {
        Some(port) => port.parse().ok(),
        None if after.is_empty() => Some(80),
        None => None,
    }
}

/// What the device service said to an anonymous GetDeviceInformation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceInformation {
    /// The answer: (field, observation name, value, element) in reply order.
    Answered(Vec<(Field, &'static str, String, &'static str)>),
    /// HTTP 401/403 or a `NotAuthorized` fault.
    NotAuthorized(String),
    /// Another fault or status.
    Refused(String),
}

const DEVICE_INFORMATION: [(&str, Field, &str); 5] = [
    ("Manufacturer", Field::Vendor, "vendor"),
    ("Model", Field::Model, "model"),
    ("FirmwareVersion", Field::Firmware, "firmware"),
    ("SerialNumber", Field::Serial, "serial"),
    ("HardwareId", Field::Detail, "hardware_id"),
];

/// Parses the HTTP reply to GetDeviceInformation.
pub fn parse_device_information(reply: &[u8]) -> Result<DeviceInformation, ParseError> {
    let head = parse_head(reply, "HTTP/")?;
    let body = message_body(reply, &head);
    let fault = if body.is_empty() {
        None
    } else {
        match document(&body) {
            Ok(doc) => {
                if let Some(answer) = child(doc.root(), "GetDeviceInformationResponse")
                    && head.status == 200
                {
                    return Ok(DeviceInformation::Answered(answer_fields(answer)));
                }
                child(doc.root(), "Fault").map(fault_text)
            }
            // A 401 often carries an HTML page, not SOAP; only a 200 must parse.
            Err(error) if head.status == 200 => return Err(error),
            Err(_) => None,
        }
    };
    let status = head.status;
    Ok(match fault {
        Some((true, text)) => DeviceInformation::NotAuthorized(format!(
            "GetDeviceInformation without credentials: HTTP {status}, SOAP fault NotAuthorized ({text})"
        )),
        _ if matches!(status, 401 | 403) => DeviceInformation::NotAuthorized(format!(
            "GetDeviceInformation without credentials: HTTP {status}{}",
            fault.map(|(_, t)| format!(" ({t})")).unwrap_or_default()
        )),
        Some((false, text)) => DeviceInformation::Refused(format!(
            "GetDeviceInformation: HTTP {status}, SOAP fault ({text})"
        )),
        None => DeviceInformation::Refused(format!(
            "GetDeviceInformation: HTTP {status} without a device information response"
        )),
    })
}

fn answer_fields(
    answer: roxmltree::Node<'_, '_>,
) -> Vec<(Field, &'static str, String, &'static str)> {
    DEVICE_INFORMATION
        .iter()
        .filter_map(|(element, field, name)| {
            let value = clip(child(answer, element)?.text()?);
            Some((*field, *name, value, *element))
        })
        .collect()
}

/// Whether a fault's codes name `NotAuthorized`, and its reason text.
fn fault_text(fault: roxmltree::Node<'_, '_>) -> (bool, String) {
    // SOAP 1.2 puts codes in Code/Value and Subcode/Value, SOAP 1.1 in faultcode.
    let not_authorized = fault.descendants().any(|n| {
        n.is_element()
            && matches!(n.tag_name().name(), "Value" | "faultcode")
            && n.text()
                .is_some_and(|t| local_name(t.trim()) == "NotAuthorized")
    });
    let reason = child(fault, "Text")
        .or_else(|| child(fault, "faultstring"))
        .and_then(|n| n.text())
        .map(clip)
        .unwrap_or_default();
    (not_authorized, reason)
}

/// Folds the answer of the device service at `origin` (its URL, for the evidence) into the
/// ProbeMatch identification; the device information comes first so it outranks the
/// `hardware` scope for the model.
pub fn apply_device_information(id: &mut Identification, answer: DeviceInformation, origin: &str) {
    match answer {
        DeviceInformation::Answered(fields) => {
            let mut first = Vec::new();
            for (field, name, value, element) in fields {
                let mut tmp = Identification::plaintext_open(PROTOCOL);
                tmp.push(
                    field,
                    name,
                    value,
                    format!("ONVIF GetDeviceInformation {element} from {origin}"),
                );
                first.extend(tmp.fields);
            }
            first.append(&mut id.fields);
            id.fields = first;
            id.auth = Auth::None;
            id.auth_reason =
                "GetDeviceInformation answered without credentials (ONVIF Core makes it READ_SYSTEM, which should need them)"
                    .to_string();
        }
        DeviceInformation::NotAuthorized(reason) => {
            id.auth = Auth::Required;
            id.auth_reason = reason;
        }
        DeviceInformation::Refused(reason) => id.auth_reason = reason,
    }
}

/// Probes `addr` (UDP 3702): Probe, then GetDeviceInformation when an XAddr points back at
/// the target. A device service that does not answer keeps the WS-Discovery identification.
pub async fn probe(
    addr: SocketAddr,
    permit: &mut HostPermit,
    budget: Budget,
) -> Result<Identification, ProbeError> {
    let matched = {
        // Responders may answer from another port than 3702 (the WSDiscovery package does).
        let mut session = UdpSession::open_host(addr, permit, budget).await?;
        parse_probe_matches(&session.exchange(&probe_request(&message_id())).await?)?
    };
    let mut id = identify_probe_match(&matched);
    let Some(service) = device_service(&matched.xaddrs, addr.ip()) else {
        if !matched.xaddrs.is_empty() {
            id.auth_reason =
                "no XAddr is plain http on the probed address; the device service was not followed"
                    .to_string();
        }
        return Ok(id);
    };
    match device_information(service, permit, budget).await {
        Ok(answer) => apply_device_information(
            &mut id,
            answer,
            &format!("http://{service}{DEVICE_SERVICE_PATH}"),
        ),
        Err(error) => id.push(
            Field::Detail,
            "device_service_error",
            error.to_string(),
            "ONVIF GetDeviceInformation",
        ),
    }
    Ok(id)
}

async fn device_information(
    service: SocketAddr,
    permit: &mut HostPermit,
    budget: Budget,
) -> Result<DeviceInformation, ProbeError> {
    let mut session = TcpSession::connect(service, permit, budget).await?;
    session
        .send(&get_device_information(&service.to_string()))
        .await?;
    Ok(parse_device_information(
        &session.read_banner(http_message_complete).await?,
    )?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::discovery::wire::fuzz;

    /// IPyCam 1.3.0's ProbeMatch (captured from `tests/peers/onvif_peer.py`): note the raw
    /// spaces inside its `name/` scope.
    const PROBE_MATCH_IPYCAM: &[u8] =
        include_bytes!("../../fuzz/corpus/onvif/probe_match_ipycam.bin");
    /// A ProbeMatch built after WS-Discovery §5.3 and ONVIF Core §7.3.2.2 in the gSOAP form
    /// (`SOAP-ENV:`/`wsdd:` prefixes) cameras' firmware sends, with hardware, name and location
    /// scopes (percent-encoded) and an IPv4 and an IPv6 XAddr. Not a capture.
    const PROBE_MATCH_SPEC: &[u8] = include_bytes!("../../fuzz/corpus/onvif/probe_match_spec.bin");
    /// IPyCam's answer to an anonymous GetDeviceInformation (captured from the peer).
    const DEVICE_INFO_IPYCAM: &[u8] =
        include_bytes!("../../fuzz/corpus/onvif/device_information_ipycam.bin");
    /// The NotAuthorized fault as ONVIF Core §5.11.2.1 defines it (env:Sender, subcode
    /// ter:NotAuthorized, "Sender not Authorized"), sent with HTTP 400. Built, not a capture.
    const NOT_AUTHORIZED: &[u8] =
        include_bytes!("../../fuzz/corpus/onvif/not_authorized_fault.bin");

    #[test]
    fn probe_match_from_ipycam() {
        let matched = parse_probe_matches(PROBE_MATCH_IPYCAM).unwrap();
        assert!(matched.is_video_transmitter());
        assert_eq!(
            matched.xaddrs,
            ["http://127.0.0.1:8080/onvif/device_service"]
        );
        let id = identify_probe_match(&matched);
        assert_eq!(id.detail("onvif_name"), Some("Ward 4 corridor"));
        assert_eq!(id.detail("onvif_type"), Some("video_encoder"));
        assert_eq!(id.transit, Transit::Plaintext);
        assert_eq!(id.auth, Auth::Unknown);
    }

    #[test]
    fn probe_match_scopes_decode() {
        let id = parse(PROBE_MATCH_SPEC).unwrap();
        assert_eq!(id.get(Field::Model).unwrap().value, "P3245-LVE");
        assert_eq!(id.detail("onvif_name"), Some("AXIS P3245-LVE"));
        assert_eq!(id.detail("onvif_location"), Some("ward 4"));
        assert!(parse(b"<a/>").is_err());
        assert!(parse(b"<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>").is_err());
    }

    #[test]
    fn follows_only_xaddrs_on_the_target() {
        let target: IpAddr = "192.0.2.7".parse().unwrap();
        let xaddrs = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            device_service(
                &xaddrs(&[
                    "http://[fe80::1]/onvif/device_service",
                    "http://192.0.2.7/onvif/device_service"
                ]),
                target
            ),
            Some("192.0.2.7:80".parse().unwrap())
        );
        assert_eq!(
            device_service(&xaddrs(&["http://192.0.2.7:8080/x"]), target),
            Some("192.0.2.7:8080".parse().unwrap())
        );
        assert_eq!(
            device_service(&xaddrs(&["http://192.0.2.8/onvif/device_service"]), target),
            None
        );
        assert_eq!(
            device_service(&xaddrs(&["https://192.0.2.7/onvif/device_service"]), target),
            None
        );
        assert_eq!(
            device_service(
                &xaddrs(&["http://camera.local/onvif/device_service"]),
                target
            ),
            None
        );
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(
            device_service(&xaddrs(&["http://[fe80::1]:8080/onvif/device_service"]), v6),
            Some(SocketAddr::new(v6, 8080))
        );
        assert_eq!(
            device_service(&xaddrs(&["http://[fe80::1]/x"]), v6),
            Some(SocketAddr::new(v6, 80))
        );
        assert_eq!(device_service(&xaddrs(&["http://[fe80::1]x/x"]), v6), None);
    }

    #[test]
    fn device_information_answered_and_refused() {
        let DeviceInformation::Answered(fields) =
            parse_device_information(DEVICE_INFO_IPYCAM).unwrap()
        else {
            panic!("no answer")
        };
        let mut id = parse(PROBE_MATCH_SPEC).unwrap();
        apply_device_information(&mut id, DeviceInformation::Answered(fields), "test");
        assert_eq!(id.get(Field::Vendor).unwrap().value, "ACME Vision");
        assert_eq!(id.get(Field::Model).unwrap().value, "AV-200");
        assert_eq!(id.get(Field::Serial).unwrap().value, "SN-0042");
        assert_eq!(id.detail("hardware_id"), Some("PY-HW-01"));
        assert_eq!(id.auth, Auth::None);
        let refused = parse_device_information(NOT_AUTHORIZED).unwrap();
        assert!(
            matches!(&refused, DeviceInformation::NotAuthorized(r) if r.contains("HTTP 400")),
            "{refused:?}"
        );
        let html_401 = parse_device_information(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"x\"\r\nContent-Length: 13\r\n\r\n<html></html>",
        )
        .unwrap();
        assert!(matches!(html_401, DeviceInformation::NotAuthorized(_)));
        // IPyCam with credentials: HTTP 401 and a Receiver fault (captured from the peer).
        let ipycam = parse_device_information(include_bytes!(
            "../../fuzz/corpus/onvif/not_authorized_ipycam.bin"
        ))
        .unwrap();
        assert!(
            matches!(&ipycam, DeviceInformation::NotAuthorized(r) if r.contains("HTTP 401")),
            "{ipycam:?}"
        );
        let other =
            parse_device_information(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(matches!(other, DeviceInformation::Refused(_)));
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("ward%204"), "ward 4");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn never_panics() {
        fuzz::no_panic(PROBE_MATCH_IPYCAM, parse);
        fuzz::no_panic(PROBE_MATCH_SPEC, parse);
        fuzz::no_panic(DEVICE_INFO_IPYCAM, parse_device_information);
        fuzz::no_panic(NOT_AUTHORIZED, parse_device_information);
    }
}
