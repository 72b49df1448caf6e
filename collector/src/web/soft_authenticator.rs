//! Tests only: a software WebAuthn authenticator (one ES256 credential, "none" attestation,
//! user present and verified) that answers the JSON options the collector sends the way a
//! browser's `webauthn.js` would post them back. It follows WebAuthn Level 3 §6.1
//! (authenticator data: rpIdHash | flags | signCount | attestedCredentialData), §6.5.4
//! (attestation object) and RFC 9053 §2.1 / RFC 8152 §13.1.1 (EC2 COSE key), with the few
//! CBOR forms (RFC 8949) these need, written by hand. Real browsers are exercised by the e2e
//! test with Chromium's virtual authenticator.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;
use sha2::{Digest as _, Sha256};

/// One credential held in software.
pub struct SoftAuthenticator {
    key: PKey<Private>,
    /// The credential id it registers and signs with.
    pub credential_id: Vec<u8>,
    counter: u32,
    origin: String,
}

fn cbor_head(major: u8, len: usize) -> Vec<u8> {
    let major = major << 5;
    match len {
        0..=23 => vec![major | u8::try_from(len).unwrap()],
        24..=255 => vec![major | 0x18, u8::try_from(len).unwrap()],
        _ => {
            let mut v = vec![major | 0x19];
            v.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
            v
        }
    }
}

fn cbor_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut v = cbor_head(2, bytes.len());
    v.extend_from_slice(bytes);
    v
}

fn cbor_text(text: &str) -> Vec<u8> {
    let mut v = cbor_head(3, text.len());
    v.extend_from_slice(text.as_bytes());
    v
}

impl SoftAuthenticator {
    /// A new credential for pages of `origin` (e.g. `https://tillsyn.test:8443`).
    pub fn new(origin: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut credential_id = vec![0u8; 32];
        openssl::rand::rand_bytes(&mut credential_id).unwrap();
        Self {
            key,
            credential_id,
            counter: 0,
            origin: origin.to_string(),
        }
    }

    /// The credential id as the store keeps it.
    pub fn credential_id_text(&self) -> String {
        B64.encode(&self.credential_id)
    }

    fn cose_key(&self) -> Vec<u8> {
        let ec = self.key.ec_key().unwrap();
        let group = ec.group();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        let mut ctx = BigNumContext::new().unwrap();
        ec.public_key()
            .affine_coordinates(group, &mut x, &mut y, &mut ctx)
            .unwrap();
        // {1: 2 (EC2), 3: -7 (ES256), -1: 1 (P-256), -2: x, -3: y}
        let mut v = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        v.extend(cbor_bytes(&x.to_vec_padded(32).unwrap()));
        v.push(0x22);
        v.extend(cbor_bytes(&y.to_vec_padded(32).unwrap()));
        v
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    fn auth_data(&self, rp_id: &str, flags: u8) -> Vec<u8> {
        let mut v = Sha256::digest(rp_id.as_bytes()).to_vec();
        v.push(flags);
        v.extend_from_slice(&self.counter.to_be_bytes());
        v
    }

    /// The credential `navigator.credentials.create` would give for `options` (the JSON the
    /// registration start answered), as `webauthn.js` posts it.
    pub fn register(&mut self, options: &serde_json::Value) -> serde_json::Value {
        let o = &options["publicKey"];
        let rp_id = o["rp"]["id"].as_str().unwrap();
        let challenge = o["challenge"].as_str().unwrap();
        self.counter += 1;
        // UP | UV | AT
        let mut auth_data = self.auth_data(rp_id, 0x01 | 0x04 | 0x40);
        auth_data.extend_from_slice(&[0u8; 16]); // AAGUID: none
        auth_data.extend_from_slice(
            &u16::try_from(self.credential_id.len())
                .unwrap()
                .to_be_bytes(),
        );
        auth_data.extend_from_slice(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = vec![0xa3];
        attestation.extend(cbor_text("fmt"));
        attestation.extend(cbor_text("none"));
        attestation.extend(cbor_text("attStmt"));
        attestation.push(0xa0);
        attestation.extend(cbor_text("authData"));
        attestation.extend(cbor_bytes(&auth_data));
        let id = self.credential_id_text();
        serde_json::json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(self.client_data("webauthn.create", challenge)),
            },
            "extensions": {},
        })
    }

    /// The assertion `navigator.credentials.get` would give for `options` (the JSON the
    /// sign-in start answered), signed whether or not this credential is allowed there.
    pub fn sign(
        &mut self,
        options: &serde_json::Value,
        user_handle: Option<&str>,
    ) -> serde_json::Value {
        let o = &options["publicKey"];
        let rp_id = o["rpId"].as_str().unwrap();
        let challenge = o["challenge"].as_str().unwrap();
        self.counter += 1;
        let auth_data = self.auth_data(rp_id, 0x01 | 0x04);
        let client_data = self.client_data("webauthn.get", challenge);
        let mut message = auth_data.clone();
        message.extend_from_slice(&Sha256::digest(&client_data));
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key).unwrap();
        signer.update(&message).unwrap();
        let signature = signer.sign_to_vec().unwrap();
        let id = self.credential_id_text();
        serde_json::json!({
            "id": id,
            "rawId": id,
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(&signature),
                "userHandle": user_handle,
            },
            "extensions": {},
        })
    }
}
