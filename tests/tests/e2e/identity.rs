//! The agent id comes from the certificate: foreign CAs, revoked agents, impersonation and
//! token misuse are refused and change nothing.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::Identity;

use crate::harness::{Agent, Collector, connect, host_of, report};

#[tokio::test]
async fn a_certificate_from_a_foreign_ca_is_rejected() {
    let collector = Collector::start();
    let agent = collector.enroll();
    // A foreign CA issues a certificate that claims the real agent's id.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, agent.agent_id());
    let cert = params.signed_by(&key, &issuer).unwrap();

    let result = match connect(
        &collector,
        Some(Identity::from_pem(cert.pem(), key.serialize_pem())),
    )
    .await
    {
        Err(_) => None,
        Ok(mut client) => Some(
            client
                .report(report(&uuid::Uuid::now_v7().to_string(), "evil"))
                .await,
        ),
    };
    assert!(
        !matches!(result, Some(Ok(_))),
        "the collector accepted a foreign certificate: {result:?}"
    );
    assert!(collector.assets().is_empty());
}

#[tokio::test]
async fn reporting_without_a_client_certificate_is_refused() {
    let collector = Collector::start();
    let mut client = connect(&collector, None).await.unwrap();
    let status = client
        .report(report(&uuid::Uuid::now_v7().to_string(), "anon"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(
        status.message().contains("client certificate"),
        "{status:?}"
    );
    assert!(collector.assets().is_empty());
}

#[test]
fn a_revoked_agent_is_refused() {
    let collector = Collector::start();
    let agent = collector.enroll();
    assert!(agent.run_once(None).status.success());
    let before = collector.assets();

    let out = crate::harness::ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "agent",
            "revoke",
            &agent.agent_id(),
            "--reason",
            "stolen laptop",
        ],
    );
    assert!(out.contains("revoked"), "{out}");
    let refused = agent.run_once(None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("revoked"), "{stderr}");
    assert_eq!(
        collector.assets(),
        before,
        "a revoked agent changed the store"
    );
    assert_eq!(collector.agents()[0]["state"], "revoked");
    assert_eq!(collector.agents()[0]["revoke_reason"], "stolen laptop");
}

#[tokio::test]
async fn agent_a_cannot_submit_for_agent_b() {
    let collector = Collector::start();
    let a = collector.enroll();
    let b = collector.enroll();
    let shared_id = uuid::Uuid::now_v7().to_string();
    let mut b_client = b.client(&collector).await;
    b_client.report(report(&shared_id, "b-host")).await.unwrap();

    // A claims B's hostname and reuses B's report id: it is stored as A's own host, and B's
    // asset is untouched.
    let mut a_client = a.client(&collector).await;
    let answer = a_client
        .report(report(&shared_id, "b-host-forged"))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.duplicate, "A's report was mistaken for B's");

    let assets = collector.assets();
    assert_eq!(assets.len(), 2);
    assert_eq!(host_of(&assets, &b.agent_id())["hostname"], "b-host");
    assert_eq!(host_of(&assets, &a.agent_id())["hostname"], "b-host-forged");
    assert_eq!(host_of(&assets, &a.agent_id())["asset_id"], answer.asset_id);
}

#[test]
fn a_reused_token_is_rejected() {
    let collector = Collector::start();
    let token = collector.token(&[]);
    let first = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    assert!(first.enroll(&collector, &token).status.success());
    let second = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = second.enroll(&collector, &token);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already used"));
    assert!(
        !second.dir.path().join("agent.key").exists(),
        "a refused enrollment left a key"
    );
    assert_eq!(collector.agents().len(), 1);
}

#[test]
fn an_expired_or_unknown_token_is_rejected() {
    let collector = Collector::start();
    let token = collector.token(&["--ttl", "1s"]);
    // The only way to let a token expire is to let its second pass.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let agent = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = agent.enroll(&collector, &token);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = agent.enroll(&collector, "tsy_0000");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid"));
    assert!(collector.agents().is_empty());
}
