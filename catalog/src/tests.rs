use std::path::Path;

use super::*;

const SWEDISH_CSV: &str = "\u{feff}System-ID;Namn;Systemägare;Systemägare e-post;K;R;T;Klassad datum;Klassad av;Samhällsviktig;Värdnamn;Nät;Etiketter\n\
journal;Patientjournal;Anna Svensson;anna.svensson@kommun.se;3;3;2;2026-01-15;Informationssäkerhetssamordnare;ja;journal-*|ehr-db-01;10.20.0.0/24;site=ward4\n\
cameras;Kameror entré;Bo Ek <bo.ek@kommun.se>;;2;2;1;2025-09-01;IT;nej;;192.168.50.0/24;\n\
wiki;Intranät;;;;;;;;;;;\n";

#[test]
fn swedish_csv_with_bom_and_semicolons_is_read() {
    let systems = parse(Path::new("register.csv"), SWEDISH_CSV.as_bytes()).unwrap();
    assert_eq!(systems.len(), 3);
    let journal = &systems[0];
    assert_eq!(journal.id, "journal");
    assert_eq!(
        journal.system_owner.as_ref().unwrap().email.as_deref(),
        Some("anna.svensson@kommun.se")
    );
    let c = journal.classification.as_ref().unwrap();
    assert_eq!((c.k, c.r, c.t), (3, 3, 2));
    assert!(journal.critical_to_society);
    assert_eq!(journal.links.hostnames, vec!["journal-*", "ehr-db-01"]);
    assert_eq!(journal.links.labels["site"], "ward4");
    assert_eq!(
        systems[1].system_owner.as_ref().unwrap().email.as_deref(),
        Some("bo.ek@kommun.se")
    );
    assert!(systems[2].classification.is_none());
    assert!(systems[2].system_owner.is_none());
}

#[test]
fn english_comma_csv_with_attestation_is_read() {
    let text = "system_id,name,system_owner,k,r,t,classified_at,attestation_control,attestation_statement,attestation_by,attestation_at,attestation_expires\n\
portal,Web portal,ops@kommun.se,2,2,2,2026-03-01,mfa,MFA enforced by the IdP,CISO,2026-03-01,2027-03-01\n";
    let systems = parse(Path::new("r.csv"), text.as_bytes()).unwrap();
    assert_eq!(systems[0].attestations.len(), 1);
    assert_eq!(systems[0].attestations[0].control, "mfa");
}

#[test]
fn every_bad_row_is_reported_with_its_line_and_nothing_is_returned() {
    let text = "system_id;name;k;r;t;classified_at;cidrs\n\
a;A;7;1;1;2026-01-01;\n\
b;B;1;1;1;15/01/2026;\n\
a;A again;;;;;\n\
c;C;;;;;10.0.0.300/24\n\
;NoId;;;;;\n";
    let err = parse(Path::new("r.csv"), text.as_bytes()).unwrap_err();
    let lines: Vec<String> = err.errors.iter().map(ToString::to_string).collect();
    assert!(
        lines.iter().any(|l| l.starts_with("line 2: k:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("line 3: classified_at:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("line 4: system_id: duplicate")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("line 5: cidrs:")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("line 6: system_id: is required")),
        "{lines:?}"
    );
}

#[test]
fn unknown_columns_are_refused() {
    let err = parse(Path::new("r.csv"), b"system_id,name,colour\na,A,red\n").unwrap_err();
    assert_eq!(err.errors[0].field, "colour");
    assert_eq!(err.errors[0].location, "line 1");
}

#[test]
fn yaml_register_is_read() {
    let text = r"
systems:
  - id: robot-ward4
    name: Medication robot ward 4
    system_owner: { name: Anna Svensson, email: anna.svensson@kommun.se }
    classification: { k: 3, r: 3, t: 3, classified_at: 2026-02-01, classified_by: CISO }
    business_critical: true
    links:
      devices: ['Swisslog:*']
      cidrs: [10.40.4.0/24]
      labels: { site: ward4 }
    attestations:
      - { control: transit_encryption, statement: VPN tunnel, attested_by: IT, attested_at: 2026-02-01, expires_at: 2027-02-01 }
";
    let systems = parse(Path::new("r.yaml"), text.as_bytes()).unwrap();
    assert_eq!(systems[0].id, "robot-ward4");
    assert_eq!(systems[0].classification.as_ref().unwrap().k, 3);
    assert!(systems[0].business_critical);
    assert_eq!(systems[0].links.devices, vec!["Swisslog:*"]);
    assert_eq!(systems[0].attestations[0].control, "transit_encryption");
}

#[test]
fn yaml_errors_name_the_entry_or_line() {
    let err = parse(
        Path::new("r.yaml"),
        b"systems:\n  - id: a\n    name: A\n    colour: red\n",
    )
    .unwrap_err();
    assert!(err.errors[0].location.starts_with("line"), "{err}");
    let err = parse(Path::new("r.yaml"), b"systems:\n  - id: a\n    name: A\n    classification: { k: 9, r: 1, t: 1, classified_at: 2026-01-01 }\n").unwrap_err();
    assert_eq!(err.errors[0].location, "systems[0]");
    assert_eq!(err.errors[0].field, "k");
}

#[test]
fn hostile_bytes_give_errors_not_panics() {
    for bytes in [
        &b"\xff\xfe\x00garbage"[..],
        b"",
        b"\"unterminated",
        b"systems: 5",
        b"system_id\n\"a",
    ] {
        let _ = parse(Path::new("x.csv"), bytes);
        let _ = parse(Path::new("x.yaml"), bytes);
    }
}
