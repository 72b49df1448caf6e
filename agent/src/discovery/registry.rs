//! The probe registry: one table of every protocol the agent speaks, its transport and
//! well-known port, and the single dispatch from a protocol to its probe. Adding a probe means
//! adding a row here and a module beside this one.
//!
//! Also home of the tests that hold every probe to the read-only promise: the request builders
//! of each probe module are grepped for forbidden function codes, and every planned request is
//! decoded to check its function code against an allow-list.

use super::identity::Identification;
use super::limiter::HostPermit;
use super::session::{Budget, ProbeError, TcpSession, UdpSession};
use super::{bacnet, banner, enip, http, modbus, mqtt, onvif, opcua, rtsp, s7, snmp, tls};
use std::net::SocketAddr;

/// Raw printing (JetDirect): anything sent is printed, so it only ever gets a connect.
pub const RAW_PRINT_PORT: u16 = 9100;

/// Layer-4 transport of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A TCP connection.
    Tcp,
    /// UDP datagrams.
    Udp,
}

impl Transport {
    /// `tcp` or `udp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A protocol the agent can identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Liveness only: a TCP connect, no payload.
    Connect,
    /// Modbus/TCP Read Device Identification.
    Modbus,
    /// MQTT anonymous CONNECT.
    Mqtt,
    /// S7comm SZL identification.
    S7,
    /// EtherNet/IP ListIdentity over TCP.
    Enip,
    /// EtherNet/IP ListIdentity over UDP.
    EnipUdp,
    /// OPC UA GetEndpoints.
    OpcUa,
    /// SNMP v2c/v1 GET of the system group.
    Snmp,
    /// BACnet/IP unicast Who-Is and ReadProperty.
    Bacnet,
    /// HTTP `GET /`: Server header and title.
    Http,
    /// RTSP OPTIONS and DESCRIBE.
    Rtsp,
    /// ONVIF: unicast WS-Discovery Probe, then GetDeviceInformation.
    Onvif,
    /// SSH banner (nothing sent).
    Ssh,
    /// FTP greeting (nothing sent).
    Ftp,
    /// Telnet greeting (nothing sent).
    Telnet,
    /// MQTT over TLS: handshake, then the anonymous CONNECT.
    Mqtts,
    /// HTTP over TLS: handshake, then `GET /`.
    Https,
    /// RTSP over TLS: handshake, then OPTIONS. Keep this the last variant: the registry's
    /// length is derived from it.
    Rtsps,
}

/// One registry row.
struct Row {
    protocol: Protocol,
    name: &'static str,
    transport: Transport,
    port: Option<u16>,
}

// One row per protocol, in the enum's order, one line per row: the table is easier to audit
// unwrapped. Its length and order are checked at compile time below, so a protocol's row is
// found by index and can never be missing.
#[rustfmt::skip]
const REGISTRY: [Row; Protocol::Rtsps as usize + 1] = [
    Row { protocol: Protocol::Connect, name: "connect", transport: Transport::Tcp, port: None },
    Row { protocol: Protocol::Modbus, name: modbus::PROTOCOL, transport: Transport::Tcp, port: Some(502) },
    Row { protocol: Protocol::Mqtt, name: mqtt::PROTOCOL, transport: Transport::Tcp, port: Some(1883) },
    Row { protocol: Protocol::S7, name: s7::PROTOCOL, transport: Transport::Tcp, port: Some(102) },
    Row { protocol: Protocol::Enip, name: enip::PROTOCOL, transport: Transport::Tcp, port: Some(44818) },
    Row { protocol: Protocol::EnipUdp, name: enip::PROTOCOL_UDP, transport: Transport::Udp, port: Some(44818) },
    Row { protocol: Protocol::OpcUa, name: opcua::PROTOCOL, transport: Transport::Tcp, port: Some(4840) },
    Row { protocol: Protocol::Snmp, name: snmp::PROTOCOL, transport: Transport::Udp, port: Some(161) },
    Row { protocol: Protocol::Bacnet, name: bacnet::PROTOCOL, transport: Transport::Udp, port: Some(47808) },
    Row { protocol: Protocol::Http, name: http::PROTOCOL, transport: Transport::Tcp, port: Some(80) },
    Row { protocol: Protocol::Rtsp, name: rtsp::PROTOCOL, transport: Transport::Tcp, port: Some(554) },
    Row { protocol: Protocol::Onvif, name: onvif::PROTOCOL, transport: Transport::Udp, port: Some(3702) },
    Row { protocol: Protocol::Ssh, name: banner::SSH, transport: Transport::Tcp, port: Some(22) },
    Row { protocol: Protocol::Ftp, name: banner::FTP, transport: Transport::Tcp, port: Some(21) },
    Row { protocol: Protocol::Telnet, name: banner::TELNET, transport: Transport::Tcp, port: Some(23) },
    Row { protocol: Protocol::Mqtts, name: "mqtts", transport: Transport::Tcp, port: Some(8883) },
    Row { protocol: Protocol::Https, name: "https", transport: Transport::Tcp, port: Some(443) },
    Row { protocol: Protocol::Rtsps, name: "rtsps", transport: Transport::Tcp, port: Some(322) },
];

const _: () = {
    let mut i = 0;
    while i < REGISTRY.len() {
        assert!(
            REGISTRY[i].protocol as usize == i,
            "REGISTRY rows must follow the order of the Protocol variants"
        );
        i += 1;
    }
};

impl Protocol {
    fn row(self) -> &'static Row {
        &REGISTRY[self as usize]
    }

    /// The protocol's name in reports and in `--ports PORT/NAME`.
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// Its transport.
    pub fn transport(self) -> Transport {
        self.row().transport
    }

    /// Looks a protocol up by name.
    pub fn from_name(name: &str) -> Option<Self> {
        REGISTRY
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name.trim()))
            .map(|r| r.protocol)
    }

    /// The protocol spoken on a well-known port; unknown ports only get a connect.
    pub fn for_port(port: u16) -> Self {
        REGISTRY
            .iter()
            .find(|r| r.port == Some(port))
            .map_or(Self::Connect, |r| r.protocol)
    }

    /// The plaintext protocol a TLS protocol runs inside its TLS session (`https` -> `http`).
    pub fn inside_tls(self) -> Option<Self> {
        match self {
            Self::Mqtts => Some(Self::Mqtt),
            Self::Https => Some(Self::Http),
            Self::Rtsps => Some(Self::Rtsp),
            _ => None,
        }
    }

    /// All names, for error messages.
    pub fn names() -> String {
        REGISTRY
            .iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The default `--ports` list: every registered well-known port plus liveness-only ports that
/// hint at a device kind.
pub fn default_ports() -> String {
    let mut ports: Vec<String> = REGISTRY
        .iter()
        .filter_map(|r| r.port.map(|p| format!("{p}/{}", r.name)))
        .collect();
    ports.push(RAW_PRINT_PORT.to_string());
    ports.join(",")
}

/// Settings that shape probe requests.
#[derive(Clone, Debug)]
pub struct ProbeSettings {
    /// Modbus unit id to ask (never swept).
    pub modbus_unit: u8,
    /// SNMP communities to try, in order.
    pub snmp_communities: Vec<String>,
    /// RTSP paths to DESCRIBE, in order (at most [`rtsp::MAX_PATHS`]).
    pub rtsp_paths: Vec<String>,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self {
            modbus_unit: 255,
            snmp_communities: vec!["public".to_string()],
            rtsp_paths: rtsp::DEFAULT_PATHS
                .iter()
                .map(|p| (*p).to_string())
                .collect(),
        }
    }
}

/// A request a probe would send, for `--dry-run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// What the request is.
    pub step: &'static str,
    /// The bytes (empty for a connect).
    pub bytes: Vec<u8>,
}

/// The requests `protocol` sends on success, in order, after the connect.
pub fn plan(protocol: Protocol, settings: &ProbeSettings) -> Vec<PlannedRequest> {
    steps(protocol, settings)
        .into_iter()
        .map(|(step, bytes)| PlannedRequest { step, bytes })
        .collect()
}

fn steps(protocol: Protocol, settings: &ProbeSettings) -> Vec<(&'static str, Vec<u8>)> {
    if let Some(inner) = protocol.inside_tls() {
        return tls::plan(steps(inner, settings));
    }
    match protocol {
        Protocol::Modbus => modbus::plan(settings.modbus_unit),
        Protocol::Mqtt => mqtt::plan(),
        Protocol::S7 => s7::plan(),
        Protocol::Enip | Protocol::EnipUdp => enip::plan(),
        Protocol::OpcUa => opcua::plan("opc.tcp://TARGET:PORT"),
        Protocol::Snmp => snmp::plan(&settings.snmp_communities),
        Protocol::Bacnet => bacnet::plan(),
        Protocol::Http => http::plan(),
        Protocol::Rtsp => rtsp::plan(&settings.rtsp_paths),
        Protocol::Onvif => onvif::plan(),
        // Liveness and banner protocols send nothing after the connect; TLS protocols were
        // handled above (the TLS step, then the inner protocol's requests).
        Protocol::Connect
        | Protocol::Ssh
        | Protocol::Ftp
        | Protocol::Telnet
        | Protocol::Mqtts
        | Protocol::Https
        | Protocol::Rtsps => Vec::new(),
    }
}

/// The result of probing one port.
pub enum Outcome {
    /// Nothing answered.
    Closed,
    /// The host refused the connection (a TCP reset): nothing listens there, but the host is up.
    Refused,
    /// The port accepted a connection (or answered a datagram) and the probe finished or failed.
    Open(Result<Option<Identification>, ProbeError>),
}

/// Probes `addr` with `protocol` through `permit`.
pub async fn probe(
    protocol: Protocol,
    addr: SocketAddr,
    permit: &mut HostPermit,
    budget: Budget,
    settings: &ProbeSettings,
) -> Outcome {
    if protocol == Protocol::Onvif {
        // WS-Discovery over UDP, then (maybe) the device service over TCP on the same host:
        // the probe needs the permit for both, so it opens its own sessions.
        return datagram_outcome(onvif::probe(addr, permit, budget).await.map(Some));
    }
    match protocol.transport() {
        Transport::Tcp => probe_tcp(protocol, addr, permit, budget, settings).await,
        Transport::Udp => match UdpSession::open(addr, permit, budget).await {
            Ok(mut session) => datagram_outcome(run_udp(protocol, &mut session, settings).await),
            Err(error) => Outcome::Open(Err(error)),
        },
    }
}

/// The outcome of a probe that starts with a datagram: a UDP service that stays silent is
/// indistinguishable from a closed port.
fn datagram_outcome(result: Result<Option<Identification>, ProbeError>) -> Outcome {
    match result {
        Err(ProbeError::Timeout(_) | ProbeError::Closed(_)) => Outcome::Closed,
        other => Outcome::Open(other),
    }
}

/// Connects and probes; S7 gets a second connection to its next TSAP when the first COTP
/// connection request is refused (every other protocol gets exactly one connection).
async fn probe_tcp(
    protocol: Protocol,
    addr: SocketAddr,
    permit: &mut HostPermit,
    budget: Budget,
    settings: &ProbeSettings,
) -> Outcome {
    let attempts = if protocol == Protocol::S7 {
        s7::CALLED_TSAPS.len()
    } else {
        1
    };
    let mut outcome = Outcome::Closed;
    for attempt in 0..attempts {
        let mut session = match TcpSession::connect(addr, permit, budget).await {
            Ok(session) => session,
            Err(ProbeError::Closed(error))
                if attempt == 0 && error.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                return Outcome::Refused;
            }
            Err(_) => return outcome,
        };
        let result = run_tcp(protocol, &mut session, settings, attempt).await;
        let retry = matches!(&result, Err(error) if s7::is_connect_refusal(error));
        outcome = Outcome::Open(result);
        if !retry {
            break;
        }
    }
    outcome
}

/// Runs `protocol`'s probe on a connected session; `attempt` counts connections to this port
/// (only S7 makes more than one). TLS protocols first run the handshake, then their plaintext
/// protocol's probe inside it.
async fn run_tcp(
    protocol: Protocol,
    session: &mut TcpSession<'_>,
    settings: &ProbeSettings,
    attempt: usize,
) -> Result<Option<Identification>, ProbeError> {
    let Some(inner) = protocol.inside_tls() else {
        return run_plain(protocol, session, settings, attempt).await;
    };
    match tls::start(session, protocol.name()).await? {
        tls::Start::Secured(facts) => {
            let result = run_plain(inner, session, settings, attempt).await;
            Ok(Some(tls::finish(protocol.name(), result, &facts)))
        }
        tls::Start::Ended(id) => Ok(Some(id)),
    }
}

/// Runs a plaintext protocol's probe (inside TLS when the session was upgraded).
async fn run_plain(
    protocol: Protocol,
    session: &mut TcpSession<'_>,
    settings: &ProbeSettings,
    attempt: usize,
) -> Result<Option<Identification>, ProbeError> {
    match protocol {
        Protocol::Http => http::probe(session).await.map(Some),
        Protocol::Rtsp => rtsp::probe(session, &settings.rtsp_paths).await.map(Some),
        Protocol::Ssh => banner::probe_ssh(session).await.map(Some),
        Protocol::Ftp => banner::probe_ftp(session).await.map(Some),
        Protocol::Telnet => banner::probe_telnet(session).await.map(Some),
        Protocol::Modbus => modbus::probe(session, settings.modbus_unit).await.map(Some),
        Protocol::Mqtt => mqtt::probe(session).await.map(Some),
        Protocol::S7 => {
            let tsap = s7::CALLED_TSAPS
                .get(attempt)
                .copied()
                .unwrap_or(s7::CALLED_TSAPS[0]);
            s7::probe(session, tsap).await.map(Some)
        }
        Protocol::Enip => enip::probe_tcp(session).await.map(Some),
        Protocol::OpcUa => opcua::probe(session, &format!("opc.tcp://{}", session.peer()))
            .await
            .map(Some),
        // Liveness needs nothing past the connect; UDP protocols never get a TCP session
        // (`probe` dispatches on the transport); TLS protocols are unwrapped by `run_tcp`.
        Protocol::Connect
        | Protocol::EnipUdp
        | Protocol::Snmp
        | Protocol::Bacnet
        | Protocol::Mqtts
        | Protocol::Https
        | Protocol::Rtsps
        | Protocol::Onvif => Ok(None),
    }
}

async fn run_udp(
    protocol: Protocol,
    session: &mut UdpSession<'_>,
    settings: &ProbeSettings,
) -> Result<Option<Identification>, ProbeError> {
    match protocol {
        Protocol::EnipUdp => enip::probe_udp(session).await.map(Some),
        Protocol::Snmp => snmp::probe(session, &settings.snmp_communities)
            .await
            .map(Some),
        Protocol::Bacnet => bacnet::probe(session).await.map(Some),
        // TCP protocols never get a UDP session (`probe` dispatches on the transport); listed
        // one by one so a new protocol cannot silently fall through here.
        Protocol::Connect
        | Protocol::Modbus
        | Protocol::Mqtt
        | Protocol::S7
        | Protocol::Enip
        | Protocol::OpcUa
        | Protocol::Http
        | Protocol::Rtsp
        | Protocol::Onvif
        | Protocol::Ssh
        | Protocol::Ftp
        | Protocol::Telnet
        | Protocol::Mqtts
        | Protocol::Https
        | Protocol::Rtsps => Ok(None),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The request-builder section of a probe's source.
    fn builders(source: &'static str) -> &'static str {
        let start = source
            .find("// BEGIN REQUEST BUILDERS")
            .expect("probe marks its request builders");
        let end = source
            .find("// END REQUEST BUILDERS")
            .expect("probe marks the end of its builders");
        &source[start..end]
    }

    /// Whether `token` occurs in `text` as a whole word (case-insensitive).
    fn contains_token(text: &str, token: &str) -> bool {
        let text = text.to_ascii_lowercase();
        let token = token.to_ascii_lowercase();
        text.match_indices(&token).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + token.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
    }

    /// Each probe's source and the function codes, services and names it must never build.
    const FORBIDDEN: &[(&str, &str, &[&str])] = &[
        // Modbus writes: coils, registers, mask write, read/write multiple.
        (
            "modbus",
            include_str!("modbus.rs"),
            &[
                "0x05", "0x06", "0x0f", "0x10", "0x15", "0x16", "0x17", "write",
            ],
        ),
        // SNMP: SetRequest, the trap and inform PDUs, and no write of any kind.
        (
            "snmp",
            include_str!("snmp.rs"),
            &["0xa3", "0xa4", "0xa6", "0xa7", "set", "write"],
        ),
        (
            "snmp v3",
            include_str!("snmp/v3.rs"),
            &["0xa3", "0xa4", "0xa6", "0xa7", "set", "write"],
        ),
        // RTSP methods that start, steer or change a stream, and credentials.
        (
            "rtsp",
            include_str!("rtsp.rs"),
            &[
                "SETUP",
                "PLAY",
                "PAUSE",
                "RECORD",
                "ANNOUNCE",
                "TEARDOWN",
                "SET_PARAMETER",
                "REDIRECT",
                "Authorization",
            ],
        ),
        // ONVIF: no setter, creator, deleter, reboot or reset, no credentials, and no
        // multicast announcements of our own.
        (
            "onvif",
            include_str!("onvif.rs"),
            &[
                "SystemReboot",
                "SetSystemFactoryDefault",
                "SetUser",
                "CreateUsers",
                "DeleteUsers",
                "SetNetworkInterfaces",
                "SetScopes",
                "SetHostname",
                "UpgradeSystemFirmware",
                "Security",
                "UsernameToken",
                "Hello",
                "Bye",
                "239.255.255.250",
            ],
        ),
    ];

    #[test]
    fn request_builders_contain_no_forbidden_codes() {
        for (probe, source, tokens) in FORBIDDEN {
            let section = builders(source);
            for token in *tokens {
                assert!(
                    !contains_token(section, token),
                    "{probe}: request builder mentions forbidden {token:?}"
                );
            }
        }
        assert!(contains_token("x = 0x05;", "0x05"));
        assert!(!contains_token("x = 0x0500;", "0x05"));
    }

    #[test]
    fn planned_requests_use_only_read_functions() {
        let settings = ProbeSettings::default();
        for request in plan(Protocol::Modbus, &settings) {
            assert_eq!(
                request.bytes[7], 0x2B,
                "modbus function must be Read Device Identification"
            );
            assert_ne!(request.bytes[6], 0, "modbus unit id 0 is broadcast");
        }
        for request in plan(Protocol::S7, &settings) {
            let b = &request.bytes;
            match (b.get(7), b.get(8)) {
                (Some(0x32), Some(0x01)) => {
                    assert_eq!(b[17], 0xF0, "the only S7 job is setup communication");
                }
                (Some(0x32), Some(0x07)) => assert_eq!(
                    (b[22], b[23]),
                    (0x44, 0x01),
                    "the only userdata is read SZL"
                ),
                (Some(0x32), other) => panic!("unexpected S7 ROSCTR {other:?}"),
                _ => assert_eq!(b[5], 0xE0, "non-S7 frames are COTP connection requests"),
            }
        }
        let snmp = ProbeSettings {
            snmp_communities: vec!["public".to_string(), "s3cret".to_string()],
            ..ProbeSettings::default()
        };
        let planned = plan(Protocol::Snmp, &snmp);
        assert!(planned.iter().any(|r| r.step.contains("SNMPv3")));
        for request in planned {
            let shape = snmp::request_shape(&request.bytes).unwrap();
            assert_eq!(
                shape.pdu, 0xA0,
                "{}: the only SNMP PDU is GetRequest",
                request.step
            );
            if shape.version == 3 {
                assert!(shape.varbinds.is_empty(), "v3 discovery asks for nothing");
            } else {
                assert!(
                    shape
                        .varbinds
                        .iter()
                        .all(|v| v.starts_with("1.3.6.1.2.1.1.")),
                    "v1/v2c read only the system group: {:?}",
                    shape.varbinds
                );
            }
        }
    }

    #[test]
    fn rtsp_plans_only_options_and_describe_without_credentials() {
        let settings = ProbeSettings {
            rtsp_paths: vec!["/".into(), "/stream1".into()],
            ..ProbeSettings::default()
        };
        let planned = plan(Protocol::Rtsp, &settings);
        assert_eq!(planned.len(), 3);
        for request in planned {
            let text = String::from_utf8(request.bytes).unwrap();
            let method = text.split_whitespace().next().unwrap();
            assert!(
                ["OPTIONS", "DESCRIBE"].contains(&method),
                "RTSP method {method}"
            );
            assert!(!text.to_ascii_lowercase().contains("authorization"));
        }
    }

    #[test]
    fn onvif_plans_only_probe_and_get_operations() {
        for request in plan(Protocol::Onvif, &ProbeSettings::default()) {
            let text = String::from_utf8(request.bytes).unwrap();
            let xml = &text[text.find("<?xml").unwrap()..];
            let doc = roxmltree::Document::parse(xml).unwrap();
            let body = doc
                .descendants()
                .find(|n| n.tag_name().name() == "Body")
                .unwrap();
            let operations: Vec<&str> = body
                .children()
                .filter(roxmltree::Node::is_element)
                .map(|n| n.tag_name().name())
                .collect();
            assert_eq!(operations.len(), 1, "{text}");
            assert!(
                operations[0] == "Probe" || operations[0].starts_with("Get"),
                "ONVIF operation {} is neither Probe nor Get*",
                operations[0]
            );
            assert!(
                !doc.descendants()
                    .any(|n| matches!(n.tag_name().name(), "Security" | "UsernameToken")),
                "no credentials"
            );
            if text.starts_with("POST ") {
                assert!(text.starts_with("POST /onvif/device_service HTTP/1.1\r\n"));
                assert!(text.contains("GetDeviceInformation\"\r\n"));
            }
        }
    }

    #[test]
    fn every_protocol_but_silent_ones_plans_requests() {
        let silent = [
            Protocol::Connect,
            Protocol::Ssh,
            Protocol::Ftp,
            Protocol::Telnet,
        ];
        for row in REGISTRY {
            let planned = plan(row.protocol, &ProbeSettings::default());
            assert_eq!(
                planned.is_empty(),
                silent.contains(&row.protocol),
                "{}",
                row.name
            );
            assert_eq!(Protocol::from_name(row.name), Some(row.protocol));
        }
    }

    #[test]
    fn tls_rows_plan_the_client_hello_then_exactly_their_inner_requests() {
        let settings = ProbeSettings::default();
        for row in REGISTRY {
            let Some(inner) = row.protocol.inside_tls() else {
                continue;
            };
            let planned = plan(row.protocol, &settings);
            assert_eq!(planned[0].step, tls::CLIENT_HELLO_STEP, "{}", row.name);
            assert!(planned[0].bytes.is_empty());
            let inner_steps: Vec<&str> = plan(inner, &settings).iter().map(|r| r.step).collect();
            let outer_steps: Vec<&str> = planned[1..].iter().map(|r| r.step).collect();
            assert_eq!(outer_steps, inner_steps, "{}", row.name);
            assert_eq!(row.transport, Transport::Tcp);
        }
        assert_eq!(Protocol::for_port(8883), Protocol::Mqtts);
        assert_eq!(Protocol::for_port(443), Protocol::Https);
        assert_eq!(Protocol::for_port(322), Protocol::Rtsps);
    }

    /// Reads one TPKT frame from a test client.
    async fn read_tpkt(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut frame = vec![0u8; 4];
        stream.read_exact(&mut frame).await.unwrap();
        let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
        frame.resize(len, 0);
        stream.read_exact(&mut frame[4..]).await.unwrap();
        frame
    }

    #[tokio::test]
    async fn s7_retries_the_second_tsap_on_a_new_connection() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            // First connection: refuse with a COTP disconnect request.
            let (mut first, _) = listener.accept().await.unwrap();
            let request = read_tpkt(&mut first).await;
            first
                .write_all(&[3, 0, 0, 11, 6, 0x80, 0, 0, 0, 1, 0])
                .await
                .unwrap();
            drop(first);
            // Second connection: a python-snap7 conversation, replayed.
            let (mut second, _) = listener.accept().await.unwrap();
            let retry = read_tpkt(&mut second).await;
            let replies: [&[u8]; 4] = [
                &[
                    3, 0, 0, 22, 17, 0xD0, 0, 1, 0, 1, 0, 0xC0, 1, 0x0A, 0xC1, 2, 1, 0, 0xC2, 2, 2,
                    0,
                ],
                include_bytes!("../../fuzz/corpus/s7/setup_ack_snap7.bin"),
                include_bytes!("../../fuzz/corpus/s7/szl_0011_snap7.bin"),
                include_bytes!("../../fuzz/corpus/s7/szl_001c_snap7.bin"),
            ];
            for (i, reply) in replies.iter().enumerate() {
                if i > 0 {
                    read_tpkt(&mut second).await;
                }
                second.write_all(reply).await.unwrap();
            }
            (request[20..22].to_vec(), retry[20..22].to_vec())
        });
        let limiter =
            crate::discovery::limiter::Limiter::new(crate::discovery::limiter::Limits::default());
        let mut permit = limiter.host(addr.ip()).await;
        let budget = Budget {
            timeout: std::time::Duration::from_secs(5),
            max_response: 65536,
        };
        let outcome = probe(
            Protocol::S7,
            addr,
            &mut permit,
            budget,
            &ProbeSettings::default(),
        )
        .await;
        let Outcome::Open(Ok(Some(id))) = outcome else {
            panic!("S7 probe did not identify after the retry")
        };
        assert_eq!(
            id.get(crate::discovery::identity::Field::Model)
                .unwrap()
                .value,
            "6ES7 315-2EH14-0AB0"
        );
        let (first_tsap, second_tsap) = server.await.unwrap();
        assert_eq!((first_tsap, second_tsap), (vec![1, 2], vec![2, 0]));
    }

    #[test]
    fn raw_print_port_gets_no_payload() {
        assert_eq!(Protocol::for_port(RAW_PRINT_PORT), Protocol::Connect);
        assert!(
            plan(
                Protocol::for_port(RAW_PRINT_PORT),
                &ProbeSettings::default()
            )
            .is_empty()
        );
    }
}
