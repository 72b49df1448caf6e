//! Fleet deployment: one scoped token for many hosts, non-interactive and idempotent
//! enrollment, cloned state directories, certificate renewal and expiry.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use tillsyn_proto::v1::{RenewRequest, enrollment_client::EnrollmentClient};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::harness::{Agent, Collector, bin, ok, run};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A root whose `etc/machine-id` makes the agent a distinct host.
fn host_root(machine_id: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/machine-id"),
        format!("{machine_id}\n"),
    )
    .unwrap();
    std::fs::write(
        root.path().join("etc/hostname"),
        format!("host-{machine_id}\n"),
    )
    .unwrap();
    root
}

fn run_once_at(agent: &Agent, root: &Path) -> Output {
    agent.run_once(Some(root))
}

fn agent_record(collector: &Collector, agent_id: &str) -> serde_json::Value {
    collector
        .agents()
        .into_iter()
        .find(|a| a["agent_id"] == agent_id)
        .unwrap_or_else(|| panic!("no agent {agent_id}"))
}

fn tokens(collector: &Collector) -> Vec<serde_json::Value> {
    let out = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "token",
            "list",
            "--format",
            "json",
        ],
    );
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn enroll_command(collector: &Collector, agent: &Agent, token: &str, root: &Path) -> Command {
    let mut command = Command::new(bin("tillsyn-agent"));
    command
        .args([
            "--dir",
            agent.path(),
            "enroll",
            "--collector",
            &collector.url,
        ])
        .args(["--token", token, "--ca", &collector.ca_pem()])
        .args(["--label", "site=claimed-by-agent", "--label", "role=db"])
        .args(["--root", root.to_str().unwrap()])
        .args(["--env-file", "/nonexistent/tillsyn-agent"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn renew(agent: &Agent, root: &Path) -> Output {
    run(
        "tillsyn-agent",
        &[
            "--dir",
            agent.path(),
            "renew",
            "--root",
            root.to_str().unwrap(),
        ],
    )
}

fn cert_sha(agent: &Agent) -> Vec<u8> {
    std::fs::read(agent.dir.path().join("agent.pem")).unwrap()
}

// One roll-out read top to bottom: enrollment, two renewals, reporting after each.
#[allow(clippy::too_many_lines)]
#[test]
fn one_scoped_token_enrolls_twenty_agents_at_once_and_they_renew_and_keep_reporting() {
    const FLEET: usize = 20;
    let collector = Collector::start();
    let token = collector.token(&[
        "--uses",
        "20",
        "--ttl",
        "1h",
        "--label",
        "site=ward4",
        "--name",
        "rollout-ward4",
    ]);
    let agents: Vec<(Agent, tempfile::TempDir)> = (0..=FLEET)
        .map(|i| {
            (
                Agent {
                    dir: tempfile::tempdir().unwrap(),
                },
                host_root(&format!("{i:032x}")),
            )
        })
        .collect();
    // All 21 at once: the budget, not the order, decides who gets in.
    let children: Vec<_> = agents
        .iter()
        .map(|(agent, root)| {
            enroll_command(&collector, agent, &token, root.path())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let (enrolled, refused): (Vec<_>, Vec<_>) = agents
        .into_iter()
        .zip(&outputs)
        .partition(|(_, out)| out.status.success());
    assert_eq!(
        enrolled.len(),
        FLEET,
        "{:?}",
        refused.iter().map(|(_, o)| stderr(o)).collect::<Vec<_>>()
    );
    assert_eq!(refused.len(), 1);
    let refusal = stderr(refused[0].1);
    assert!(refusal.contains("already used"), "{refusal}");
    assert!(!refused[0].0.0.dir.path().join("agent.toml").exists());

    let listed = tokens(&collector);
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "rollout-ward4");
    assert_eq!(listed[0]["uses"], 20);
    assert_eq!(listed[0]["uses_left"], 0);
    assert_eq!(listed[0]["state"], "used up");
    assert_eq!(listed[0]["labels"]["site"], "ward4");
    let text = serde_json::to_string(&listed).unwrap();
    assert!(!text.contains(&token), "token list leaks the secret");

    let records = collector.agents();
    assert_eq!(records.len(), FLEET);
    for record in &records {
        // The collector's label wins; the agent's claim is kept apart.
        assert_eq!(record["labels"]["site"], "ward4", "{record:#}");
        assert_eq!(record["labels"]["role"], "db");
        assert_eq!(record["claimed_labels"]["site"], "claimed-by-agent");
        assert_eq!(record["token_labels"]["site"], "ward4");
        assert_eq!(record["token_name"], "rollout-ward4");
        assert_eq!(record["state"], "active");
        assert!(record["cert_expires"].as_str().unwrap().starts_with("20"));
    }

    let fleet: Vec<(Agent, tempfile::TempDir)> = enrolled.into_iter().map(|(a, _)| a).collect();
    let assets_with_labels = |collector: &Collector| {
        let assets = collector.assets();
        let host = crate::harness::host_of(&assets, &fleet[0].0.agent_id()).clone();
        assert_eq!(host["agent_labels"]["site"], "ward4", "{host:#}");
        assert_eq!(host["claimed_labels"]["site"], "claimed-by-agent");
    };
    let report_all = |round: u64| {
        for (agent, root) in &fleet {
            let out = run_once_at(agent, root.path());
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
    };
    let renew_all = |round: u64| {
        for (agent, root) in &fleet {
            let out = renew(agent, root.path());
            assert!(out.status.success(), "renewal {round}: {}", stderr(&out));
            assert!(String::from_utf8_lossy(&out.stdout).contains("renewed"));
        }
    };
    report_all(0);
    assets_with_labels(&collector);
    let before: Vec<Vec<u8>> = fleet.iter().map(|(a, _)| cert_sha(a)).collect();
    renew_all(1);
    report_all(1);

    // CA rotation: the new CA signs from the restart on, the old one stays trusted.
    let mut collector = collector;
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "ca", "rotate", "--overlap", "1h"],
    );
    assert!(out.contains("restart"), "{out}");
    collector.restart();
    let status = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "ca", "status"],
    );
    assert!(
        status.contains("agents still on the previous CA: 20"),
        "{status}"
    );
    // Moving the server certificate now would lock out agents that only trust the old CA.
    let early = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "cert", "renew"],
    );
    assert!(!early.status.success());
    assert!(stderr(&early).contains("20 agent(s)"), "{}", stderr(&early));
    // Agents that have not renewed yet keep reporting with old-CA certificates.
    report_all(2);

    renew_all(2);
    for (agent, _) in &fleet {
        let bundle = std::fs::read_to_string(agent.dir.path().join("ca.pem")).unwrap();
        assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    }
    report_all(3);
    let status = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "ca", "status"],
    );
    assert!(
        status.contains("agents still on the previous CA: 0"),
        "{status}"
    );
    let refused_retire = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "ca", "retire"],
    );
    assert!(!refused_retire.status.success());
    assert!(
        stderr(&refused_retire).contains("cert renew"),
        "{}",
        stderr(&refused_retire)
    );

    // The server certificate moves to the new CA; agents accept it through their bundle.
    ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "cert", "renew"],
    );
    collector.restart();
    report_all(4);
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "ca", "retire"],
    );
    assert!(out.contains("retired"), "{out}");
    collector.restart();
    report_all(5);

    for ((agent, _), old) in fleet.iter().zip(&before) {
        assert_ne!(&cert_sha(agent), old, "the certificate was not replaced");
        let record = agent_record(&collector, &agent.agent_id());
        assert_eq!(record["cert_renewals"], 2);
        assert_eq!(record["state"], "active");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(collector.stored_count()), 6 * FLEET as u64);
}

#[test]
fn a_revoked_or_expired_token_is_refused_and_changes_nothing() {
    let collector = Collector::start();
    let token = collector.token(&["--uses", "5", "--name", "revoked-one"]);
    let out = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "token", "revoke", "revoked-one"],
    );
    assert!(out.contains("revoked"), "{out}");
    let agent = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = agent.enroll(&collector, &token);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert!(collector.agents().is_empty());
    assert_eq!(tokens(&collector)[0]["uses"], 0);

    let unknown = run(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "token",
            "revoke",
            "no-such-token",
        ],
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no-such-token"),
        "{}",
        stderr(&unknown)
    );

    let duplicate = run(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "token",
            "create",
            "--name",
            "revoked-one",
        ],
    );
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("exists already"),
        "{}",
        stderr(&duplicate)
    );

    let zero = run(
        "tillsyn-collector",
        &["--dir", collector.path(), "token", "create", "--uses", "0"],
    );
    assert!(!zero.status.success());

    let short = collector.token(&["--ttl", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = agent.enroll(&collector, &short);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
    assert!(collector.agents().is_empty());
}

#[test]
fn enroll_reads_the_environment_file_and_does_nothing_when_enrolled() {
    let collector = Collector::start();
    let token = collector.token(&["--uses", "2"]);
    let agent = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let root = host_root("e1");
    let env_file = agent.dir.path().join("tillsyn-agent.env");
    let ca = std::fs::read_to_string(collector.ca_pem()).unwrap();
    // The CA as PEM text, quoted over several lines, as configuration management writes it.
    std::fs::write(
        &env_file,
        format!(
            "TILLSYN_COLLECTOR={}\nTILLSYN_ENROLL_TOKEN={token}\nTILLSYN_CA=\"{ca}\"\nTILLSYN_LABELS=site=ward5\n",
            collector.url
        ),
    )
    .unwrap();
    let enroll = || {
        run(
            "tillsyn-agent",
            &[
                "--dir",
                agent.path(),
                "enroll",
                "--env-file",
                env_file.to_str().unwrap(),
                "--root",
                root.path().to_str().unwrap(),
            ],
        )
    };
    let first = enroll();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("enrolled as agent"));
    let second = enroll();
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("already enrolled"),
        "{}",
        String::from_utf8_lossy(&second.stdout)
    );
    assert_eq!(collector.agents().len(), 1);
    assert_eq!(tokens(&collector)[0]["uses"], 1);
    assert_eq!(collector.agents()[0]["labels"]["site"], "ward5");
    assert!(run_once_at(&agent, root.path()).status.success());

    // Without any settings: a precise error naming what is missing, nothing written.
    let bare = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = run(
        "tillsyn-agent",
        &[
            "--dir",
            bare.path(),
            "enroll",
            "--env-file",
            "/nonexistent/env",
        ],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("TILLSYN_COLLECTOR"),
        "{}",
        stderr(&out)
    );
    assert!(!bare.dir.path().join("agent.toml").exists());
}

#[test]
fn a_cloned_state_directory_is_refused_reported_and_re_enrolls_with_a_token() {
    let collector = Collector::start();
    let token = collector.token(&["--uses", "2"]);
    let original = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let host_a = host_root("aaaa");
    let out = enroll_command(&collector, &original, &token, host_a.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(run_once_at(&original, host_a.path()).status.success());

    // A golden image taken after enrollment, booted as another host.
    let clone = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    crate::harness::copy_tree(original.dir.path(), clone.dir.path());
    let host_b = host_root("bbbb");
    let out = run_once_at(&clone, host_b.path());
    assert!(!out.status.success());
    let log = stderr(&out);
    assert!(log.contains("copied state directory"), "{log}");
    assert!(log.contains("enroll --force"), "{log}");

    let record = agent_record(&collector, &original.agent_id());
    assert_eq!(record["state"], "cloned");
    assert!(record["clone_host_id"].is_string());
    assert_ne!(record["clone_host_id"], record["host_id"]);
    let audit = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "assets", "--format", "json"],
    );
    assert!(
        !audit.contains("host-bbbb"),
        "the clone's report was merged: {audit}"
    );
    // The original keeps reporting.
    assert!(run_once_at(&original, host_a.path()).status.success());

    // `enroll` on the clone sees the foreign directory and enrolls this host with the token.
    let out = enroll_command(&collector, &clone, &token, host_b.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(clone.agent_id(), original.agent_id());
    assert!(run_once_at(&clone, host_b.path()).status.success());
    assert_eq!(collector.agents().len(), 2);
}

async fn enrollment_client(collector: &Collector, agent: &Agent) -> EnrollmentClient<Channel> {
    let read = |name: &str| std::fs::read_to_string(agent.dir.path().join(name)).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.pem")))
        .identity(Identity::from_pem(read("agent.pem"), read("agent.key")));
    let channel = Endpoint::from_shared(collector.url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    EnrollmentClient::new(channel)
}

fn csr_for(common_name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[tokio::test]
async fn renewal_is_refused_for_another_agent_id_and_for_a_revoked_agent() {
    let collector = Collector::start();
    let agent = collector.enroll();
    let other = collector.enroll();
    let mut client = enrollment_client(&collector, &agent).await;

    let status = client
        .renew(RenewRequest {
            csr_pem: csr_for(&other.agent_id()),
            host_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
    assert!(status.message().contains("names agent"), "{status:?}");
    let garbage = client
        .renew(RenewRequest {
            csr_pem: "not a csr".into(),
            host_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        agent_record(&collector, &agent.agent_id())["cert_renewals"],
        0
    );

    // Without a client certificate there is nobody to renew.
    let ca = std::fs::read_to_string(collector.ca_pem()).unwrap();
    let anonymous = Endpoint::from_shared(collector.url.clone())
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = EnrollmentClient::new(anonymous)
        .renew(RenewRequest {
            csr_pem: csr_for(&agent.agent_id()),
            host_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "agent",
            "revoke",
            &agent.agent_id(),
        ],
    );
    let before = cert_sha(&agent);
    let out = run("tillsyn-agent", &["--dir", agent.path(), "renew"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    assert_eq!(
        cert_sha(&agent),
        before,
        "a refused renewal changed the files"
    );
    assert_eq!(
        agent_record(&collector, &agent.agent_id())["cert_renewals"],
        0
    );
}

#[test]
fn a_running_agent_renews_by_itself_and_an_expired_one_needs_a_new_token() {
    // Renewal is due after two thirds of 12 s (less jitter); the agent runs on its own.
    let collector = Collector::start_with(&[("agent_cert_lifetime", "\"12s\"")]);
    let agent = Agent {
        dir: tempfile::tempdir().unwrap(),
    };
    let root = host_root("run1");
    let token = collector.token(&[]);
    let out = enroll_command(&collector, &agent, &token, root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut child = Command::new(bin("tillsyn-agent"))
        .args([
            "--dir",
            agent.path(),
            "run",
            "--root",
            root.path().to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Waits for an event, not a time: the bound only stops a broken build from hanging.
    let renewed = (0..120).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(500));
        agent_record(&collector, &agent.agent_id())["cert_renewals"]
            .as_i64()
            .unwrap()
            >= 2
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(renewed, "the running agent did not renew twice");
    assert!(run_once_at(&agent, root.path()).status.success());

    // Stopped past its expiry: the agent says so before connecting, and so does `agent list`.
    let expires = agent_record(&collector, &agent.agent_id())["cert_not_after"]
        .as_i64()
        .unwrap();
    while tillsyn_now_ms() <= expires {
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let out = run_once_at(&agent, root.path());
    assert!(!out.status.success());
    let log = stderr(&out);
    assert!(log.contains("expired"), "{log}");
    assert!(log.contains("enroll --force"), "{log}");
    let record = agent_record(&collector, &agent.agent_id());
    assert_eq!(record["state"], "expired");
    assert!(record["action"].as_str().unwrap().contains("token"));
    // The collector's own rule names the agent that did not renew.
    let findings = collector.findings(&[]);
    let expiring: Vec<_> = findings
        .iter()
        .filter(|f| f["rule"] == "certificate-expiring")
        .collect();
    assert_eq!(expiring.len(), 1, "{findings:#?}");
    assert!(
        expiring[0]["message"]
            .as_str()
            .unwrap()
            .contains(&agent.agent_id()),
        "{:#}",
        expiring[0]
    );
    let out = renew(&agent, root.path());
    assert!(!out.status.success());
    assert!(stderr(&out).contains("expired"), "{}", stderr(&out));
}

fn tillsyn_now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}
