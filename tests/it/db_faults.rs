//! Database faults (issue 16): the server restarted while a run loads,
//! backends terminated at random points, `statement_timeout` hit, the
//! database's disk full. Each runs on a throwaway cluster of its own
//! (`pgcluster.rs`), so a restart or a full disk touches no other test.
//!
//! For each: the faulted run either recovers and succeeds, or stops with one
//! error line and a non-zero exit code; the rerun, once the fault is gone,
//! gives a warehouse equal to an uninterrupted run into a fresh schema
//! against the same simulator (every contract, dimension and model table by
//! digest, see `common::warehouse_digest`).

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};

use crate::common::*;
use crate::pgcluster::PgCluster;
use jira_sim::{SimConfig, SimHandle, Simulator};

fn sim(issues: u32, latency_ms: u64) -> SimHandle {
    Simulator::start(
        SimConfig::default()
            .issues(issues)
            .projects(2)
            .seed(0xdb)
            .latency_ms(latency_ms)
            .port(0),
    )
    .unwrap()
}

/// Two scopes, no automatic census; `database` holds extra `[database]` keys.
fn config(sim: &SimHandle, schema: &str, database: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\nconcurrency = 4\n\
         [jira.retry]\nbase_delay_ms = 20\nmax_delay_ms = 500\n\
         [sync]\nreconcile_every_hours = 0\n\
         [database]\nschema = \"{schema}\"\n{database}\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n\
         [[scope]]\nname = \"alpha\"\nproject = \"ALPHA\"\nissue_types = [\"Bug\", \"Story\", \"Task\"]\n",
        sim.url()
    )
}

/// A throwaway cluster, a schema name on it and a working directory whose
/// config writes there.
struct Fixture {
    db: PgCluster,
    url: String,
    schema: String,
    w: Workdir,
}

impl Fixture {
    /// A new cluster and `pipeline db init` on it.
    fn new(sim: &SimHandle, database: &str) -> Fixture {
        let f = Self::without_schema(sim, database);
        f.run_ok(sim, &["db", "init"]);
        f
    }

    /// A new cluster; the schema is not created yet.
    fn without_schema(sim: &SimHandle, database: &str) -> Fixture {
        let db = PgCluster::start(None);
        let url = db.url("127.0.0.1", "");
        let schema = unique_name("t");
        let w = Workdir::new(&config(sim, &schema, database));
        Fixture { db, url, schema, w }
    }

    fn cmd(&self, sim: &SimHandle, args: &[&str]) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("pipeline"));
        c.current_dir(self.w.path())
            .env("JIRA_PAT", sim.token())
            .env("DATABASE_URL", &self.url)
            .env_remove("RUST_LOG")
            .args(args);
        c
    }

    /// `pipeline ARGS`, waited for.
    fn pipeline(&self, sim: &SimHandle, args: &[&str]) -> Output {
        self.cmd(sim, args).output().unwrap()
    }

    /// `pipeline ARGS` in the background (stderr piped).
    fn spawn(&self, sim: &SimHandle, args: &[&str]) -> Child {
        self.cmd(sim, args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_ok(&self, sim: &SimHandle, args: &[&str]) {
        let out = self.pipeline(sim, args);
        assert!(
            out.status.success(),
            "pipeline {args:?} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
    }

    fn digest(&self) -> BTreeMap<String, (i64, String)> {
        warehouse_digest(&mut self.db.connect(), &self.schema, &[])
    }

    fn count(&self, table: &str) -> i64 {
        self.db
            .connect()
            .query_one(
                &format!("SELECT count(*) FROM \"{}\".{table}", self.schema),
                &[],
            )
            .map(|r| r.get(0))
            .unwrap_or(0)
    }

    /// An uninterrupted `run` into a fresh schema on the same cluster
    /// (dropped afterwards): the warehouse every faulted one must equal.
    fn reference(&self, sim: &SimHandle) -> BTreeMap<String, (i64, String)> {
        let schema = unique_name("ref");
        let w = Workdir::new(&config(sim, &schema, ""));
        for args in [&["db", "init"][..], &["run"][..]] {
            let out = Command::new(assert_cmd::cargo::cargo_bin("pipeline"))
                .current_dir(w.path())
                .env("JIRA_PAT", sim.token())
                .env("DATABASE_URL", &self.url)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "reference {args:?}: {}", stderr(&out));
        }
        let mut c = self.db.connect();
        let d = warehouse_digest(&mut c, &schema, &[]);
        c.batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .unwrap();
        assert!(d["issue"].0 > 0, "the reference run loaded nothing");
        d
    }

    /// The rerun after the fault is gone, and the comparison.
    fn rerun_equals_reference(&self, sim: &SimHandle) {
        self.run_ok(sim, &["run"]);
        let diff = digest_diff(&self.digest(), &self.reference(sim));
        assert!(diff.is_empty(), "the warehouse differs: {diff:#?}");
        assert!(
            !lock_held_on(&mut self.db.connect(), &self.schema),
            "the rerun left its lock behind"
        );
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn lock_held_on(c: &mut postgres::Client, schema: &str) -> bool {
    jira_pipeline_core::db::lock_held(c, schema).unwrap()
}

/// What the faulted run did: `Ok(())` when it recovered and succeeded, or
/// its one error line, after checking it is alone and the exit code is not 0.
fn outcome(out: &Output) -> Result<(), String> {
    let err = stderr(out);
    if out.status.success() {
        return Ok(());
    }
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "not one error line: {err}");
    assert!(
        out.status.code().is_some_and(|c| c != 0),
        "{:?}: {err}",
        out.status
    );
    eprintln!("faulted run: {} ({:?})", errors[0], out.status.code());
    Err(errors[0].to_string())
}

/// Pages archived so far (each one's load has committed).
fn archived(f: &Fixture) -> usize {
    count_all(&f.w.path().join("staging"), true)
}

/// `pg_ctl restart -m fast` while the run loads: the loader's unit is
/// rolled back and redone on a new connection, the bookkeeping connection
/// is replaced, and the run succeeds.
#[test]
fn db_server_restarted_mid_load_the_run_recovers_and_equals_an_uninterrupted_run() {
    let sim = sim(3000, 5);
    let f = Fixture::new(&sim, "");
    let mut child = f.spawn(&sim, &["run"]);
    assert!(
        wait_for(&mut child, || archived(&f) >= 3),
        "the run finished before it was loading"
    );
    f.db.restart();
    let out = child.wait_with_output().unwrap();
    assert_eq!(outcome(&out), Ok(()), "the run did not recover");
    let err = stderr(&out);
    assert!(
        err.contains("reconnecting"),
        "the restart went unseen: {err}"
    );
    f.rerun_equals_reference(&sim);
}

/// Every backend of the run terminated (`pg_terminate_backend`) at three
/// pseudo-random points of the load.
#[test]
fn db_backends_terminated_at_random_points_then_rerun_equals_an_uninterrupted_run() {
    let sim = sim(3000, 5);
    let f = Fixture::new(&sim, "");
    let mut admin = f.db.connect();
    let mut seed = 0x6a09e667f3bcc909_u64 ^ std::process::id() as u64;
    let mut terminated = 0;
    let mut child = f.spawn(&sim, &["run"]);
    let mut at = 0;
    for _ in 0..3 {
        at += 2 + (xorshift(&mut seed) % 12) as usize;
        if !wait_for(&mut child, || archived(&f) >= at) {
            break;
        }
        for pid in pipeline_backends(&mut admin) {
            let ok: bool = admin
                .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
                .unwrap()
                .get(0);
            terminated += ok as u32;
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        terminated >= 2,
        "the run ended before its backends were terminated"
    );
    // Recovered, or (a termination during the final index rebuild) one
    // error line; the rerun completes either way.
    let _ = outcome(&out);
    eprintln!("terminated {terminated} backends");
    f.rerun_equals_reference(&sim);
}

/// `database.statement_timeout_secs = 1` and another session (a DBA's
/// VACUUM FULL, a migration) holding the `issue` table while the run loads:
/// the loader's next statement waits until the timeout cancels it. A timeout
/// is not retried (it would time out again): the run stops on one line that
/// names the setting; the unit is rolled back.
#[test]
fn db_statement_timeout_hit_stops_the_run_clearly_then_rerun_equals_an_uninterrupted_run() {
    let sim = sim(2000, 5);
    let f = Fixture::new(&sim, "statement_timeout_secs = 1");
    let mut holder = f.db.connect();
    let mut child = f.spawn(&sim, &["run"]);
    assert!(
        wait_for(&mut child, || archived(&f) >= 3),
        "the run finished before it was loading"
    );
    let mut tx = holder.transaction().unwrap();
    tx.batch_execute(&format!(
        "LOCK TABLE \"{}\".issue IN ACCESS EXCLUSIVE MODE",
        f.schema
    ))
    .unwrap();
    let out = child.wait_with_output().unwrap();
    tx.rollback().unwrap();
    let line = outcome(&out).expect_err("the run did not stop");
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(
        line.contains("canceling statement due to statement timeout")
            && line.contains("database.statement_timeout_secs")
            && line.contains("rolled back"),
        "{line}"
    );
    // The fault removed: the table free again, the default timeout back.
    std::fs::write(f.w.config_path(), config(&sim, &f.schema, "")).unwrap();
    f.rerun_equals_reference(&sim);
}

/// The database's disk full: the warehouse's tables on a tablespace of
/// their own (`ALTER DATABASE … SET default_tablespace` before `db init`) on
/// a 5 MiB tmpfs, about a third of what the warehouse needs. The run stops
/// on one line (PostgreSQL's ENOSPC and its hint); remounted at 256 MiB,
/// the rerun completes.
#[test]
fn db_disk_full_stops_the_run_clearly_then_rerun_equals_an_uninterrupted_run() {
    let sim = sim(2000, 0);
    let f = Fixture::without_schema(&sim, "");
    let (uid, gid) = f.db.server_ids();
    let fs = Tmpfs::mount_in(
        f.db.dir(),
        &format!("size=5m,uid={uid},gid={gid},mode=0700"),
    );
    let mut c = f.db.connect();
    c.batch_execute(&format!(
        "CREATE TABLESPACE tiny LOCATION '{}'",
        fs.path().display()
    ))
    .unwrap();
    c.batch_execute("ALTER DATABASE postgres SET default_tablespace = tiny")
        .unwrap();
    f.run_ok(&sim, &["db", "init"]);
    let in_tiny: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablespace = 'tiny'",
            &[&f.schema],
        )
        .unwrap()
        .get(0);
    assert!(in_tiny >= 10, "the tables are not on the small tablespace");
    let out = f.pipeline(&sim, &["run"]);
    let line = outcome(&out).expect_err("the run did not stop");
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(
        line.contains("No space left on device") && line.contains("Check free disk space"),
        "{line}"
    );
    eprintln!(
        "loaded before the disk was full: {} issues, {} pages",
        f.count("issue"),
        archived(&f)
    );
    fs.remount("size=256m");
    f.rerun_equals_reference(&sim);
    // Drop the tablespace's contents before the tmpfs goes.
    c.batch_execute(&format!(
        "DROP SCHEMA \"{}\" CASCADE; ALTER DATABASE postgres RESET default_tablespace",
        f.schema
    ))
    .unwrap();
    c.batch_execute("DROP TABLESPACE tiny").unwrap();
}

/// The backends of the pipeline's sessions (`application_name`).
fn pipeline_backends(c: &mut postgres::Client) -> Vec<i32> {
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'jira-pipeline'",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}
