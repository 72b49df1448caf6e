//! Bad input: malformed and oversized messages, broken configuration. Clear errors, nothing
//! stored, no crash.

use crate::harness::{Collector, report, run};

#[tokio::test]
async fn a_malformed_report_is_refused_naming_the_field_and_stores_nothing() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let mut client = agent.client(&collector).await;
    let mut bad = report(&uuid::Uuid::now_v7().to_string(), "h");
    bad.observations.push(tillsyn_proto::v1::Observation {
        category: "package".into(),
        name: "x".into(),
        value_json: "{not json".into(),
        evidence: vec![],
    });
    let status = client.report(bad).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("observations[0].value_json"),
        "{status:?}"
    );

    let status = client.report(report("not-a-uuid", "h")).await.unwrap_err();
    assert!(status.message().contains("report_id"), "{status:?}");
    assert!(collector.assets().is_empty());

    // The collector is still serving.
    client
        .report(report(&uuid::Uuid::now_v7().to_string(), "h"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_oversized_report_is_refused() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let mut client = agent.client(&collector).await;
    let mut big = report(&uuid::Uuid::now_v7().to_string(), "h");
    big.observations.push(tillsyn_proto::v1::Observation {
        category: "blob".into(),
        name: "x".into(),
        value_json: format!("\"{}\"", "a".repeat(17 * 1024 * 1024)),
        evidence: vec![],
    });
    let status = client.report(big).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{status:?}"
    );
    assert!(collector.assets().is_empty());
}

#[test]
fn a_broken_config_is_reported_with_file_and_line() {
    let collector = Collector::start();
    let config = collector.dir.path().join("collector.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\nbogus_key = [\n")).unwrap();
    let out = run(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("collector.toml"), "{stderr}");
    assert!(stderr.contains("line"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_agent_without_enrollment_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        "tillsyn-agent",
        &["--dir", dir.path().to_str().unwrap(), "run", "--once"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not enrolled"));
}
