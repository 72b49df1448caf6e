//! What one probe learned about one service: identity fields, each naming the protocol field it
//! came from, plus the transit and authentication verdicts the rule engine needs.
//!
//! Parsers produce these from bytes; they know nothing of addresses or sockets.

use serde::Serialize;

/// An identity attribute a protocol can reveal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// Manufacturer.
    Vendor,
    /// Model, order code or product name.
    Model,
    /// Firmware or software revision.
    Firmware,
    /// Serial number.
    Serial,
    /// Anything else worth keeping (names, product codes, device types); kept as observations.
    Detail,
}

/// One attribute value and the protocol field it was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IdentityField {
    /// Which attribute.
    pub field: Field,
    /// Short stable name, e.g. `product_code` (the observation name for details).
    pub name: String,
    /// The value as printable text.
    pub value: String,
    /// The protocol field, e.g. `Read Device Identification object 0x00 (VendorName)`.
    pub protocol_field: String,
}

/// Whether traffic to the service is encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transit {
    /// TLS or an equivalent secured channel.
    Tls,
    /// Readable by anyone on the path.
    Plaintext,
    /// The probe cannot tell (SNMPv3: whether users encrypt is invisible without one of them).
    Unknown,
}

/// Whether the service let us in without credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Auth {
    /// The service demanded credentials.
    Required,
    /// The service answered (or admitted) an anonymous client.
    None,
    /// The probe cannot tell.
    Unknown,
}

/// What a probe learned from a service's replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Identification {
    /// The protocol spoken, e.g. `modbus`.
    pub protocol: &'static str,
    /// Identity attributes, in reply order.
    pub fields: Vec<IdentityField>,
    /// Transit verdict.
    pub transit: Transit,
    /// Authentication verdict.
    pub auth: Auth,
    /// Why the auth verdict is what it is.
    pub auth_reason: String,
}

impl Identification {
    /// An identification of a plaintext protocol with no authentication concept (Modbus, S7,
    /// EtherNet/IP, BACnet: they answer anybody).
    pub fn plaintext_open(protocol: &'static str) -> Self {
        Self {
            protocol,
            fields: Vec::new(),
            transit: Transit::Plaintext,
            auth: Auth::None,
            auth_reason: format!(
                "{protocol} has no authentication; the device answered an anonymous request"
            ),
        }
    }

    /// Adds a field unless its value is empty.
    pub fn push(
        &mut self,
        field: Field,
        name: &str,
        value: impl Into<String>,
        protocol_field: impl Into<String>,
    ) {
        let value = value.into();
        if !value.is_empty() {
            self.fields.push(IdentityField {
                field,
                name: name.to_string(),
                value,
                protocol_field: protocol_field.into(),
            });
        }
    }

    /// The first value of `field`.
    pub fn get(&self, field: Field) -> Option<&IdentityField> {
        self.fields.iter().find(|f| f.field == field)
    }

    /// The value of the detail called `name`.
    pub fn detail(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_str())
    }
}
