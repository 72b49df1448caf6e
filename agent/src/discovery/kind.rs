//! Device kind inference: which of `plc`, `camera`, `building_control`, `network`, `printer`,
//! `iot`, `robot` or `unknown` a device is, with a confidence and the reason, from the services
//! it exposes and what they said. Every candidate names the evidence it rests on; the strongest
//! candidate wins.

use serde::Serialize;

use super::identity::{Field, Identification};

/// What kind of device an address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Programmable logic controller or other process controller.
    Plc,
    /// IP camera or video encoder.
    Camera,
    /// Building automation: HVAC, access, lighting controllers.
    BuildingControl,
    /// Switch, router, firewall, access point.
    Network,
    /// Printer.
    Printer,
    /// Sensor, gateway or other small connected device.
    Iot,
    /// Industrial robot controller.
    Robot,
    /// Not enough evidence.
    Unknown,
}

/// The inferred kind with its confidence (0..=1) and reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindVerdict {
    /// The kind.
    pub kind: Kind,
    /// How sure, 0..=1.
    pub confidence: f64,
    /// The evidence in words.
    pub reason: String,
}

/// One service as kind inference sees it.
pub struct ServiceView<'a> {
    /// Protocol name, `connect` for liveness only.
    pub protocol: &'a str,
    /// The port.
    pub port: u16,
    /// What the probe identified, if anything.
    pub identification: Option<&'a Identification>,
}

const ROBOT_VENDORS: &[&str] = &[
    "abb",
    "kuka",
    "fanuc",
    "yaskawa",
    "universal robots",
    "staubli",
    "stäubli",
    "kawasaki",
    "denso",
    "swisslog",
];
const CAMERA_HINTS: &[&str] = &[
    "axis",
    "hikvision",
    "dahua",
    "camera",
    "ipcam",
    "network video",
    "bosch security",
    "hanwha",
    "vivotek",
    "mobotix",
];
const PRINTER_HINTS: &[&str] = &[
    "printer",
    "jetdirect",
    "laserjet",
    "ricoh",
    "kyocera",
    "lexmark",
    "xerox",
    "brother",
    "canon",
];
const NETWORK_HINTS: &[&str] = &[
    "cisco",
    "juniper",
    "routeros",
    "mikrotik",
    "switch",
    "router",
    "firewall",
    "fortigate",
    "aruba",
    "hirschmann",
    "moxa",
    // Network operating systems and makers named in the real SNMP walks of snmpsim-data
    // (Huawei VRP, H3C Comware, Arista EOS, HP ProCurve, Brocade, Palo Alto).
    "versatile routing platform",
    "comware",
    "arista",
    "procurve",
    "brocade",
    "palo alto",
    "fortinet",
];

/// Infers the kind from `services`.
pub fn infer(services: &[ServiceView<'_>]) -> KindVerdict {
    let mut best = KindVerdict {
        kind: Kind::Unknown,
        confidence: 0.0,
        reason: "no service identified the device".to_string(),
    };
    for service in services {
        for candidate in candidates(service) {
            if candidate.confidence > best.confidence {
                best = candidate;
            }
        }
    }
    best
}

fn verdict(kind: Kind, confidence: f64, reason: String) -> KindVerdict {
    KindVerdict {
        kind,
        confidence,
        reason,
    }
}

fn candidates(service: &ServiceView<'_>) -> Vec<KindVerdict> {
    let mut out = by_protocol(service);
    if let Some(id) = service.identification {
        out.extend(by_text(service.protocol, id));
    }
    out
}

fn by_protocol(service: &ServiceView<'_>) -> Vec<KindVerdict> {
    let p = service.protocol;
    let identified = service.identification.is_some();
    let said = |what: &str| format!("{p} on port {} {what}", service.port);
    match p {
        "s7comm" if identified => vec![verdict(
            Kind::Plc,
            0.9,
            said("returned an S7 CPU identification (SZL 0x0011)"),
        )],
        "modbus" if identified => vec![verdict(
            Kind::Plc,
            0.7,
            said("answered Read Device Identification"),
        )],
        "enip" | "enip-udp" if identified => vec![enip_kind(service)],
        "bacnet" if identified => vec![verdict(
            Kind::BuildingControl,
            0.85,
            said("answered Who-Is with an I-Am of a BACnet device"),
        )],
        "opcua" if identified => vec![verdict(
            Kind::Plc,
            0.5,
            said("is an OPC UA server (controllers and their gateways expose it)"),
        )],
        "mqtt" | "mqtts" if identified => {
            vec![verdict(Kind::Iot, 0.4, said("is an MQTT broker"))]
        }
        "rtsp" | "rtsps" if identified => vec![rtsp_kind(service)],
        "onvif" if identified => vec![onvif_kind(service)],
        "connect" if service.port == super::registry::RAW_PRINT_PORT => {
            vec![verdict(
                Kind::Printer,
                0.5,
                format!("port {} (raw printing) accepts connections", service.port),
            )]
        }
        _ => Vec::new(),
    }
}

/// RTSP is a video protocol; an SDP that describes video makes it surer.
fn rtsp_kind(service: &ServiceView<'_>) -> KindVerdict {
    let video = service
        .identification
        .and_then(|id| id.detail("sdp_media"))
        .is_some_and(|media| media.split(", ").any(|m| m.starts_with("video")));
    let what = if video {
        "returned an SDP describing a video stream (DESCRIBE)"
    } else {
        "answered RTSP OPTIONS (video streaming)"
    };
    verdict(
        Kind::Camera,
        if video { 0.85 } else { 0.75 },
        format!("rtsp on port {} {what}", service.port),
    )
}

/// An ONVIF device that announces `dn:NetworkVideoTransmitter` is a camera or video encoder
/// (ONVIF Core §7.3.2.1); other ONVIF devices (recorders, displays, access control) less so.
fn onvif_kind(service: &ServiceView<'_>) -> KindVerdict {
    let transmitter = service
        .identification
        .and_then(|id| id.detail("onvif_types"))
        .is_some_and(|types| {
            types
                .split_whitespace()
                .any(|t| t.rsplit(':').next() == Some("NetworkVideoTransmitter"))
        });
    if transmitter {
        verdict(
            Kind::Camera,
            0.9,
            format!(
                "onvif WS-Discovery on port {} announced Types dn:NetworkVideoTransmitter",
                service.port
            ),
        )
    } else {
        verdict(
            Kind::Camera,
            0.5,
            format!(
                "onvif WS-Discovery on port {} answered (an ONVIF device, not a NetworkVideoTransmitter)",
                service.port
            ),
        )
    }
}

fn enip_kind(service: &ServiceView<'_>) -> KindVerdict {
    let device_type = service
        .identification
        .and_then(|id| id.detail("device_type_id"))
        .and_then(|t| t.parse::<u16>().ok());
    let said = |what: &str| {
        format!(
            "EtherNet/IP ListIdentity on port {} reports {what}",
            service.port
        )
    };
    match device_type {
        Some(0x0E) => verdict(
            Kind::Plc,
            0.9,
            said("device type 0x0E (Programmable Logic Controller)"),
        ),
        Some(0x0C) => verdict(
            Kind::Network,
            0.6,
            said("device type 0x0C (Communications Adapter)"),
        ),
        Some(t) => verdict(
            Kind::Plc,
            0.5,
            said(&format!("device type {t:#06x} (an industrial device)")),
        ),
        None => verdict(Kind::Plc, 0.5, said("an identity")),
    }
}

/// Vendor, model and banner text that names a kind outright.
fn by_text(protocol: &str, id: &Identification) -> Vec<KindVerdict> {
    let text: String = id
        .fields
        .iter()
        .filter(|f| {
            matches!(f.field, Field::Vendor | Field::Model)
                || f.name.contains("descr")
                || f.name.contains("server")
                || f.name.contains("title")
        })
        .map(|f| f.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let tables: [(&[&str], Kind, f64); 4] = [
        (ROBOT_VENDORS, Kind::Robot, 0.8),
        (CAMERA_HINTS, Kind::Camera, 0.8),
        (PRINTER_HINTS, Kind::Printer, 0.8),
        (NETWORK_HINTS, Kind::Network, 0.65),
    ];
    tables
        .iter()
        .filter_map(|(hints, kind, confidence)| {
            hints.iter().find(|h| text.contains(**h)).map(|h| {
                verdict(
                    *kind,
                    *confidence,
                    format!("{protocol} identity text contains {h:?}"),
                )
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id_with(protocol: &'static str, vendor: &str, model: &str) -> Identification {
        let mut id = Identification::plaintext_open(protocol);
        id.push(Field::Vendor, "vendor", vendor, "test");
        id.push(Field::Model, "model", model, "test");
        id
    }

    #[test]
    fn modbus_plc_and_robot_vendor() {
        let plc = id_with("modbus", "Schneider Electric", "M340");
        let v = infer(&[ServiceView {
            protocol: "modbus",
            port: 502,
            identification: Some(&plc),
        }]);
        assert_eq!(v.kind, Kind::Plc);
        let robot = id_with("modbus", "KUKA Roboter", "KRC4");
        let v = infer(&[ServiceView {
            protocol: "modbus",
            port: 502,
            identification: Some(&robot),
        }]);
        assert_eq!(v.kind, Kind::Robot);
        assert!(v.reason.contains("kuka"));
    }

    #[test]
    fn onvif_transmitter_and_rtsp_video_are_cameras() {
        let mut onvif = Identification::plaintext_open("onvif");
        onvif.push(
            Field::Detail,
            "onvif_types",
            "dn:NetworkVideoTransmitter tds:Device",
            "test",
        );
        let v = infer(&[ServiceView {
            protocol: "onvif",
            port: 3702,
            identification: Some(&onvif),
        }]);
        assert_eq!((v.kind, v.confidence), (Kind::Camera, 0.9));
        assert!(v.reason.contains("NetworkVideoTransmitter"));
        let mut rtsp = Identification::plaintext_open("rtsp");
        rtsp.push(Field::Detail, "sdp_media", "video JPEG/90000", "test");
        let v = infer(&[ServiceView {
            protocol: "rtsp",
            port: 554,
            identification: Some(&rtsp),
        }]);
        assert_eq!((v.kind, v.confidence), (Kind::Camera, 0.85));
        assert!(v.reason.contains("video stream"));
    }

    #[test]
    fn unknown_without_evidence_and_printer_port() {
        let v = infer(&[ServiceView {
            protocol: "connect",
            port: 8080,
            identification: None,
        }]);
        assert_eq!(v.kind, Kind::Unknown);
        let v = infer(&[ServiceView {
            protocol: "connect",
            port: 9100,
            identification: None,
        }]);
        assert_eq!(v.kind, Kind::Printer);
    }

    fn snmp_descr(descr: &str) -> Identification {
        let mut id = Identification::plaintext_open("snmp");
        id.push(Field::Detail, "sys_descr", descr, "test");
        id
    }

    #[test]
    fn snmp_descriptions_of_real_devices() {
        // sysDescr values from snmpsim-data's walks of a Huawei S5720, an H3C switch and a
        // Samsung camera, and an HP JetDirect print server's.
        for (descr, kind) in [
            (
                "S5720-36C-EI-AC Huawei Versatile Routing Platform Software",
                Kind::Network,
            ),
            ("H3C Comware Platform Software", Kind::Network),
            // HP's print-server format (no printer walk ships with snmpsim-data).
            (
                "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI24090",
                Kind::Printer,
            ),
            ("SAMSUNG iPolis H.264 Premium Level IP Camera", Kind::Camera),
        ] {
            let id = snmp_descr(descr);
            let v = infer(&[ServiceView {
                protocol: "snmp",
                port: 161,
                identification: Some(&id),
            }]);
            assert_eq!(v.kind, kind, "{descr}: {}", v.reason);
        }
    }
}
