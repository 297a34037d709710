//! `pipeline status` and `pipeline staging usage|gc` through the binary.

use crate::common::*;
use jira_pipeline_core::staging::Staging;

#[test]
fn status_reports_checkpoint_waiting_pages_and_quarantine() {
    let mut s = TestSchema::initialised();
    s.client
        .execute(
            &format!(
                "INSERT INTO \"{}\".checkpoint (scope, cursor) VALUES ('demo', '2024-05-01T00:00:00Z')",
                s.name
            ),
            &[],
        )
        .unwrap();
    // What a bulk first load killed before its index rebuild leaves.
    s.client
        .execute(
            &format!(
                "INSERT INTO \"{}\".deferred_index VALUES ('issue_key_idx', 'CREATE INDEX …')",
                s.name
            ),
            &[],
        )
        .unwrap();
    let w = Workdir::new(&config_with(&s.name, ""));
    let st = Staging::new(w.path().join("staging"), 3);
    std::fs::create_dir_all(st.pages_dir("demo")).unwrap();
    std::fs::write(st.page_path("demo", "r1-s00000-p000000"), b"junk").unwrap();
    st.quarantine_page(
        "demo",
        "r1-s00000-p000000",
        "not zstd: unknown frame descriptor",
    )
    .unwrap();
    let v = status_json(&w);
    let sc = &v["scopes"][0];
    assert_eq!(sc["scope"], "demo");
    assert_eq!(sc["checkpoint"], "2024-05-01T00:00:00Z");
    assert_eq!(sc["staging"]["pages_quarantined"], 1);
    assert_eq!(
        sc["quarantined_pages"][0]["reason"],
        "not zstd: unknown frame descriptor"
    );
    assert!(v["database_error"].is_null());
    assert_eq!(v["deferred_indexes"][0], "issue_key_idx");

    let text = w.cmd().arg("status").output().unwrap();
    let t = String::from_utf8_lossy(&text.stdout);
    assert!(t.contains("checkpoint: 2024-05-01T00:00:00+00:00"), "{t}");
    assert!(t.contains("not zstd"), "{t}");
    assert!(
        t.contains("indexes deferred by an interrupted bulk first load (the next load rebuilds them): issue_key_idx"),
        "{t}"
    );
}

#[test]
fn status_without_database_still_shows_staging() {
    let w = Workdir::new(&config_with("jira_nowhere", ""));
    let out = w
        .cmd()
        .env_remove("DATABASE_URL")
        .args(["status", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["database_error"]
            .as_str()
            .unwrap()
            .contains("DATABASE_URL is not set")
    );
    assert_eq!(v["scopes"][0]["staging"]["pages_waiting_transform"], 0);
}

#[test]
fn staging_gc_prunes_archive_to_size() {
    let w = Workdir::new(&config_with("jira", ""));
    let st = Staging::new(w.path().join("staging"), 3);
    let dir = st.archive_dir("demo");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..3 {
        std::fs::write(dir.join(format!("p{i}.ndjson.zst")), vec![1u8; 600 * 1024]).unwrap();
    }
    let out = w
        .cmd()
        .args(["staging", "gc", "--max-mib", "1", "--max-age-days", "0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let o = String::from_utf8_lossy(&out.stdout);
    assert!(o.contains("removed 2 files"), "{o}");
    let u = w
        .cmd()
        .args(["staging", "usage", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&u.stdout).unwrap();
    assert_eq!(v["total"], 600 * 1024);
}

/// A `run_history` row with no end is `running` while a session holds the
/// schema's lock and `interrupted` (killed) once none does.
#[test]
fn status_shows_a_run_without_an_end_as_running_or_interrupted() {
    let mut s = TestSchema::initialised();
    s.client
        .execute(
            &format!(
                "INSERT INTO \"{}\".run_history (command) VALUES ('sync')",
                s.name
            ),
            &[],
        )
        .unwrap();
    let w = Workdir::new(&config_with(&s.name, ""));
    let outcome = |w: &Workdir| -> String {
        status_json(w)["last_run"]["outcome"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(outcome(&w), "interrupted");
    let text = w.cmd().arg("status").output().unwrap();
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("outcome interrupted"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    let mut holder = connect();
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&jira_pipeline_core::db::lock_key(&s.name)],
        )
        .unwrap();
    assert_eq!(outcome(&w), "running");
}
