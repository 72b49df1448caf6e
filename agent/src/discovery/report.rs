//! A discovered [`Device`] as the `tillsyn.v1.Device` message carried in
//! `ReportRequest.devices`. The typed attributes map to the message's fields; services, the
//! kind's confidence and reason, and every identity field travel as observations, so the
//! collector keeps the evidence without a contract change.

use tillsyn_proto::v1;

use super::{Attribute, Device, Service};
use crate::report;

impl Device {
    /// The wire form of this device.
    pub fn to_proto(&self) -> v1::Device {
        let value = |a: &Option<Attribute>| a.as_ref().map(|a| a.value.clone()).unwrap_or_default();
        let mut observations: Vec<v1::Observation> = self
            .services
            .iter()
            .map(|s| service(&self.address.to_string(), s))
            .collect();
        observations.push(v1::Observation {
            category: "discovery.kind".to_string(),
            name: format!("{:?}", self.kind).to_lowercase(),
            value_json: serde_json::json!({ "confidence": self.kind_confidence, "reason": self.kind_reason }).to_string(),
            evidence: Vec::new(),
        });
        observations.extend(self.observations.iter().map(report::observation));
        v1::Device {
            address: self.address.to_string(),
            kind: serde_json::to_value(self.kind)
                .ok()
                .and_then(|k| k.as_str().map(str::to_string))
                .unwrap_or_default(),
            vendor: value(&self.vendor),
            model: value(&self.model),
            firmware: value(&self.firmware),
            serial: value(&self.serial),
            mac: value(&self.mac),
            observations,
            controls: self.controls.iter().map(report::control).collect(),
        }
    }
}

fn service(address: &str, s: &Service) -> v1::Observation {
    v1::Observation {
        category: "discovery.service".to_string(),
        name: format!("{}/{}", s.transport, s.port),
        value_json: serde_json::to_string(s).unwrap_or_default(),
        evidence: vec![v1::Evidence {
            source: format!("{address}:{}/{}", s.port, s.transport),
            line: 0,
            probe: s.protocol.to_string(),
            detail: s.auth_reason.clone(),
        }],
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::discovery::identity::Auth;
    use crate::discovery::kind::Kind;
    use crate::inventory::Evidence;

    #[test]
    fn device_maps_to_the_wire_message() {
        let evidence = Evidence {
            source: "192.0.2.7:502/tcp".into(),
            line: 0,
            probe: "modbus".into(),
            detail: "VendorName".into(),
        };
        let device = Device {
            address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            kind: Kind::BuildingControl,
            kind_confidence: 0.85,
            kind_reason: "r".into(),
            vendor: Some(Attribute {
                value: "ACME".into(),
                evidence: evidence.clone(),
            }),
            model: None,
            firmware: None,
            serial: None,
            mac: Some(Attribute {
                value: "c0:56:e3:12:34:56".into(),
                evidence: evidence.clone(),
            }),
            services: vec![Service {
                port: 502,
                transport: "tcp",
                protocol: "modbus",
                identified: true,
                transit: None,
                auth: Auth::None,
                auth_reason: "open".into(),
                error: None,
            }],
            observations: Vec::new(),
            controls: Vec::new(),
        };
        let wire = device.to_proto();
        assert_eq!(wire.address, "192.0.2.7");
        assert_eq!(wire.kind, "building_control");
        assert_eq!(wire.vendor, "ACME");
        assert_eq!(wire.mac, "c0:56:e3:12:34:56");
        assert_eq!(wire.observations[0].name, "tcp/502");
        assert_eq!(wire.observations[1].category, "discovery.kind");
    }
}
