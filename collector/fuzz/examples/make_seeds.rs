//! Writes the binary seed inputs of the fuzz corpora, so they come from the real encoders
//! rather than hand-made bytes: `report_decode` gets prost-encoded `ReportRequest`s (one built
//! by the agent from its LUKS host fixture, one small hand-made one), `csr_pem` gets rcgen CSRs
//! like the agent sends at enrollment, `cert_der` gets the certificates the collector's CA makes.
//! Text seeds (CSV, YAML registers) are committed as files. Run from `collector/fuzz`:
//! `cargo run --example make_seeds`; the output is deterministic except for keys and serials.

// A seed generator that cannot write its seeds has nothing better to do than stop loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use prost::Message;
use rcgen::{CertificateParams, DnType, KeyPair, PKCS_ED25519};
use tillsyn_proto::v1;

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };

    // A fixed id keeps the agent's report stable across regenerations.
    let report_id = "01890a5d-ac96-774b-bcce-b302099a8057".to_string();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../agent/tests/fixtures/services/luks-host");
    let inventory = tillsyn_agent::inventory::collect(&fixture);
    let agent_report = tillsyn_agent::report::build_with_id(&inventory, report_id.clone());
    write("report_decode", "agent-luks-host.pb", &agent_report.encode_to_vec());
    write("report_decode", "small.pb", &small_report(report_id).encode_to_vec());

    let key = KeyPair::generate().unwrap();
    write("csr_pem", "ecdsa-p256.pem", csr(&key, "agent-csr").as_bytes());
    let ed_key = KeyPair::generate_for(&PKCS_ED25519).unwrap();
    write("csr_pem", "ed25519.pem", csr(&ed_key, "ed25519-agent").as_bytes());

    let material = tillsyn_collector::ca::create("Seed", &["localhost".into(), "127.0.0.1".into()]).unwrap();
    write("cert_der", "ca.der", &pem_der(&material.ca_cert_pem));
    write("cert_der", "server.der", &pem_der(&material.server_cert_pem));
    let mut params = CertificateParams::new(vec!["agent-1.example".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "agent-1");
    write("cert_der", "agent.der", params.self_signed(&key).unwrap().der());
}

/// Every message type in the report at least once, each string field non-empty.
fn small_report(report_id: String) -> v1::ReportRequest {
    v1::ReportRequest {
        report_id,
        collected_at_unix_ms: 1_767_225_600_000,
        agent_version: "0.1.0".into(),
        host: Some(v1::HostInventory {
            hostname: "journal-db-01".into(),
            os_name: "Debian GNU/Linux".into(),
            os_version: "12".into(),
            kernel_version: "6.1.0-18-amd64".into(),
            architecture: "x86_64".into(),
            cpu_model: "Intel Xeon".into(),
            cpu_count: 2,
            memory_total_bytes: 8 << 30,
            boot_time_unix: 1_767_000_000,
            uptime_seconds: 225_600,
            disks: vec![v1::Disk {
                name: "/dev/vda1".into(),
                mount_point: "/".into(),
                file_system: "ext4".into(),
                total_bytes: 20 << 30,
                available_bytes: 5 << 30,
                removable: false,
            }],
            interfaces: vec![v1::NetworkInterface {
                name: "eth0".into(),
                mac: "52:54:00:12:34:56".into(),
                addresses: vec!["10.20.0.5/24".into()],
            }],
        }),
        observations: vec![v1::Observation {
            category: "package".into(),
            name: "openssh-server".into(),
            value_json: r#"{"version":"1:9.2p1-2","manager":"dpkg"}"#.into(),
            evidence: vec![v1::Evidence {
                source: "/var/lib/dpkg/status".into(),
                line: 42,
                probe: String::new(),
                detail: "Status: install ok installed".into(),
            }],
        }],
        controls: vec![v1::Control {
            name: "mfa".into(),
            state: "absent".into(),
            reason: "no second factor in PAM sshd stack".into(),
            evidence: vec![],
        }],
        devices: vec![v1::Device {
            address: "192.168.50.7".into(),
            kind: "camera".into(),
            vendor: "Hikvision".into(),
            model: "DS-2CD2143G2".into(),
            firmware: "V5.7.3".into(),
            serial: "E12345678".into(),
            mac: "c0:56:e3:00:00:01".into(),
            observations: vec![],
            controls: vec![],
        }],
        job_id: "01890a5d-ac96-774b-bcce-b302099a8058".into(),
        sequence: 7,
    }
}

fn csr(key: &KeyPair, common_name: &str) -> String {
    let mut params = CertificateParams::new(vec![format!("{common_name}.example")]).unwrap();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.serialize_request(key).unwrap().pem().unwrap()
}

fn pem_der(pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    pem.contents
}
