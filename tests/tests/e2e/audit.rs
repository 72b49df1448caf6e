//! The audit log for auditors: `audit list` reads it, `audit verify` passes on a fresh store,
//! names the entry an intruder changed with the `sqlite3` shell, and — given the head printed
//! in a management report — catches a forger who recomputed the whole chain.

use std::process::Command;

use sha2::{Digest, Sha256};

use crate::harness::{Collector, ok, run};

fn tillsyn(collector: &Collector, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--dir", collector.path()];
    full.extend(args);
    run("tillsyn-collector", &full)
}

/// A collector with three audited changes: two tokens and a register import.
fn collector_with_history() -> Collector {
    let collector = Collector::start();
    collector.token(&[]);
    collector.token(&[]);
    let out = collector.import(
        "register.yaml",
        "systems:\n  - id: wiki\n    name: Intranät\n    system_owner: karin@kommun.example\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    collector
}

/// The intruder: edits the database with Debian's sqlite3 shell behind the collector's back.
fn sqlite3(collector: &Collector, sql: &str) {
    let db = collector.dir.path().join("tillsyn.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| panic!("sqlite3: {e}; run scripts/deps/sqlite.sh"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn audit_list_shows_who_changed_what_and_filters() {
    let collector = collector_with_history();
    let json = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "audit",
            "list",
            "--format",
            "json",
        ],
    );
    let entries: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["token.create", "token.create", "catalog.import"]);
    assert_eq!(entries[0]["seq"], 1);
    assert!(entries[2]["time"].as_str().unwrap().ends_with('Z'));
    let actor = entries[0]["actor"].as_str().unwrap().to_string();
    let by = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "audit",
            "list",
            "--by",
            &actor,
            "--since",
            "1d",
            "--format",
            "csv",
        ],
    );
    assert_eq!(by.lines().count(), 4, "{by}");
    let nobody = ok(
        "tillsyn-collector",
        &[
            "--dir",
            collector.path(),
            "audit",
            "list",
            "--by",
            "nobody-else",
        ],
    );
    assert_eq!(nobody.lines().count(), 1, "only the header: {nobody}");
}

#[test]
fn audit_verify_passes_fresh_and_names_the_entry_changed_with_sqlite3() {
    let collector = collector_with_history();
    let out = tillsyn(&collector, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("audit log intact: 3 entries"), "{stdout}");

    // The append-only trigger stops the collector, not someone holding the file.
    sqlite3(
        &collector,
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory' WHERE seq = 2;",
    );
    let out = tillsyn(&collector, &["audit", "verify"]);
    assert!(!out.status.success(), "a changed entry passed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit entry 2:"), "{stderr}");
    assert!(stderr.contains("does not match its hash"), "{stderr}");

    // A removed entry breaks the link of the one after it.
    sqlite3(
        &collector,
        "UPDATE audit_log SET actor = (SELECT actor FROM audit_log WHERE seq = 1) WHERE seq = 2; DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 1;",
    );
    let out = tillsyn(&collector, &["audit", "verify"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("audit entry 2:"), "{stderr}");
}

/// The collector's hash: SHA-256 over the previous hash and the fields, NUL-separated.
fn chain_hash(
    prev: &str,
    at: i64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut hasher = Sha256::new();
    for part in [prev, &at.to_string(), actor, action, subject, detail] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(hasher.finalize())
}

#[tokio::test]
async fn a_forger_who_recomputes_the_chain_is_caught_by_the_reports_head() {
    let collector = collector_with_history();
    let report = ok(
        "tillsyn-collector",
        &["--dir", collector.path(), "report", "--format", "json"],
    );
    let figures: serde_json::Value = serde_json::from_str(&report).unwrap();
    let head = &figures["audit"]["head"];
    assert_eq!(head["seq"], 3, "{figures:#}");
    let head = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
    let html = ok("tillsyn-collector", &["--dir", collector.path(), "report"]);
    assert!(
        html.contains(&format!("audit verify --head {head}")),
        "the printed report names the head"
    );
    let out = tillsyn(&collector, &["audit", "verify", "--head", &head]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The forger rewrites the first entry and recomputes every hash after it.
    sqlite3(&collector, "DROP TRIGGER audit_log_no_update;");
    {
        use sqlx::Connection;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(collector.dir.path().join("tillsyn.db"))
            .busy_timeout(std::time::Duration::from_secs(10));
        let mut db = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        let rows: Vec<(i64, i64, String, String, String, String)> = sqlx::query_as(
            "SELECT seq, at, actor, action, subject, detail_json FROM audit_log ORDER BY seq",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        let mut prev = "0".repeat(64);
        for (seq, at, actor, action, subject, detail) in rows {
            let actor = if seq == 1 {
                "mallory".to_string()
            } else {
                actor
            };
            let hash = chain_hash(&prev, at, &actor, &action, &subject, &detail);
            sqlx::query("UPDATE audit_log SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?")
                .bind(&actor)
                .bind(&prev)
                .bind(&hash)
                .bind(seq)
                .execute(&mut db)
                .await
                .unwrap();
            prev = hash;
        }
    }
    // The chain alone is consistent again ...
    let out = tillsyn(&collector, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "the forger's chain should be self-consistent: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... but not with the head the auditor kept from the report.
    let out = tillsyn(&collector, &["audit", "verify", "--head", &head]);
    assert!(
        !out.status.success(),
        "a recomputed chain matched the report's head"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("entry 3 has hash"), "{stderr}");
    assert!(stderr.contains("rewritten"), "{stderr}");
}
