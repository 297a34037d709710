//! TLS, for real: the simulator over HTTPS with a certificate from a CA made
//! in the test (Jira), and a throwaway PostgreSQL cluster with `ssl = on`
//! (the database). Default settings refuse an unknown CA at once, naming the
//! host and the setting to fix; the configured CA bundle, or the explicit
//! opt-out, make the same run work.

use crate::certs::TestCa;
use crate::common::*;
use crate::pgcluster::PgCluster;
use jira_pipeline_core::config::Secret;
use jira_sim::{SimConfig, SimHandle, Simulator};

/// An HTTPS simulator serving a certificate for `names`, signed by `ca`.
fn https_sim(ca: &TestCa, names: &[&str]) -> SimHandle {
    let cert = ca.server_cert(names);
    Simulator::start(
        SimConfig::default()
            .issues(120)
            .projects(1)
            .tls(cert.sim_material()),
    )
    .unwrap()
}

/// A config for `sim` with `jira_extra` lines in `[jira]` and the retry
/// policy of production (8 attempts), so a retry would show.
fn config(sim: &SimHandle, schema: &str, jira_extra: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\n{jira_extra}\n[jira.retry]\nbase_delay_ms = 20\nmax_delay_ms = 200\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        sim.url()
    )
}

/// Runs `pipeline run`: (exit code, stderr).
fn run(w: &Workdir, sim: &SimHandle) -> (Option<i32>, String) {
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .arg("run")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The last line of stderr, which is the error `main` prints.
fn error_line(stderr: &str) -> &str {
    stderr.trim_end().lines().last().unwrap_or_default()
}

#[test]
fn tls_jira_unknown_ca_is_refused_at_once_naming_host_and_setting() {
    let ca = TestCa::new("tls-test private CA");
    let sim = https_sim(&ca, &["localhost", "127.0.0.1"]);
    assert!(sim.url().starts_with("https://127.0.0.1:"), "{}", sim.url());
    let s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, ""));
    let (code, stderr) = run(&w, &sim);
    assert_eq!(code, Some(3), "{stderr}");
    let line = error_line(&stderr);
    let host = sim.url().trim_start_matches("https://");
    assert!(
        line.starts_with("error: ")
            && line.contains(host)
            && line.contains("jira.ca_bundle")
            && line.contains("not trusted"),
        "{stderr}"
    );
    eprintln!("{line}\nTLS handshakes: {}", sim.stats().tls_handshakes);
    // Not retried: one handshake (reqwest may try a second connection at
    // most), and no HTTP request ever got through.
    let st = sim.stats();
    assert!(
        (1..=2).contains(&st.tls_handshakes),
        "{} handshakes: a certificate error was retried",
        st.tls_handshakes
    );
    assert_eq!(st.tls_handshake_failures, st.tls_handshakes);
    assert_eq!(st.requests, 0);
    assert!(!stderr.contains("retrying:"), "{stderr}");
}

#[test]
fn tls_jira_certificate_for_another_name_is_refused_even_with_the_ca() {
    let ca = TestCa::new("tls-test CA");
    let sim = https_sim(&ca, &["jira.example.com"]);
    let s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, ""));
    let ca_pem = ca.write_pem(w.path(), "ca.pem");
    let extra = format!("ca_bundle = \"{}\"", ca_pem.display());
    std::fs::write(w.config_path(), config(&sim, &s.name, &extra)).unwrap();
    let (code, stderr) = run(&w, &sim);
    assert_eq!(code, Some(3), "{stderr}");
    let line = error_line(&stderr);
    assert!(
        line.contains("127.0.0.1") && line.contains("not trusted"),
        "{stderr}"
    );
    assert!(sim.stats().tls_handshakes <= 2);
    assert_eq!(sim.stats().requests, 0);
}

#[test]
fn tls_jira_ca_bundle_runs_end_to_end() {
    let ca = TestCa::new("tls-test CA");
    let sim = https_sim(&ca, &["localhost", "127.0.0.1"]);
    let mut s = TestSchema::initialised();
    let w = Workdir::new("");
    let ca_pem = ca.write_pem(w.path(), "corp-ca.pem");
    let extra = format!("ca_bundle = \"{}\"", ca_pem.display());
    std::fs::write(w.config_path(), config(&sim, &s.name, &extra)).unwrap();
    let (code, stderr) = run(&w, &sim);
    assert_eq!(code, Some(0), "{stderr}");
    let live = sim.ids_in_project("DEMO").len() as i64;
    assert!(live > 0);
    assert_eq!(s.count("issue"), live);
    assert_eq!(sim.stats().tls_handshake_failures, 0);
    assert!(!stderr.contains("VERIFICATION IS OFF"), "{stderr}");
}

#[test]
fn tls_jira_danger_accept_invalid_certs_works_and_warns_at_every_start() {
    let ca = TestCa::new("tls-test CA");
    // A certificate for another name, from a CA nobody trusts.
    let sim = https_sim(&ca, &["jira.example.com"]);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, "danger_accept_invalid_certs = true"));
    for round in 0..2 {
        let (code, stderr) = run(&w, &sim);
        assert_eq!(code, Some(0), "round {round}: {stderr}");
        let warning = stderr
            .lines()
            .find(|l| l.contains("TLS CERTIFICATE VERIFICATION IS OFF"))
            .unwrap_or_else(|| panic!("round {round}: no warning in {stderr}"));
        assert!(
            warning.contains("WARN") && warning.contains("jira.ca_bundle"),
            "{warning}"
        );
        assert!(!stderr.contains(sim.token()), "the token leaked: {stderr}");
    }
    assert_eq!(s.count("issue"), sim.ids_in_project("DEMO").len() as i64);
}

/// A throwaway cluster with `ssl = on` serving a certificate for `names`
/// signed by `ca`.
fn tls_cluster(ca: &TestCa, names: &[&str]) -> PgCluster {
    PgCluster::start(Some(&ca.server_cert(names)))
}

/// Connects through the pipeline's own connector; `Ok(true)` when the
/// session is encrypted.
fn pg_connect(url: &str, ca_bundle: Option<&std::path::Path>) -> Result<bool, String> {
    let db = jira_pipeline_core::config::DatabaseConfig {
        schema: "unused".into(),
        statement_timeout: std::time::Duration::from_secs(30),
        ca_bundle: ca_bundle.map(|p| p.to_path_buf()),
    };
    let mut c =
        jira_pipeline_core::db::connect(&Secret::new(url), &db).map_err(|e| e.one_line())?;
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[test]
fn tls_pg_sslmode_require_verify_ca_and_verify_full() {
    let ca = TestCa::new("pg-test CA");
    let pg = tls_cluster(&ca, &["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = ca.write_pem(dir.path(), "root.crt");
    let root = format!("sslrootcert={}", ca_pem.display());
    // require: encrypted, nothing checked (libpq's meaning).
    assert_eq!(
        pg_connect(&pg.url("127.0.0.1", "sslmode=require"), None),
        Ok(true)
    );
    // verify-ca, with the CA in the URL or in database.ca_bundle.
    let url = pg.url("127.0.0.1", &format!("sslmode=verify-ca&{root}"));
    assert_eq!(pg_connect(&url, None), Ok(true), "{}", pg.log());
    let url = pg.url("127.0.0.1", "sslmode=verify-ca");
    assert_eq!(pg_connect(&url, Some(&ca_pem)), Ok(true));
    // verify-full by IP address and by name.
    for host in ["127.0.0.1", "localhost"] {
        let url = pg.url(host, &format!("sslmode=verify-full&{root}"));
        assert_eq!(pg_connect(&url, None), Ok(true), "{host}");
    }
    // A CA is needed to verify anything: said, not guessed.
    let e = pg_connect(&pg.url("127.0.0.1", "sslmode=verify-full"), None).unwrap_err();
    assert!(
        e.contains("names no CA") && e.contains("database.ca_bundle"),
        "{e}"
    );
    // Another CA: refused, naming the fix.
    let other = TestCa::new("someone else's CA").write_pem(dir.path(), "other.crt");
    let e = pg_connect(&pg.url("127.0.0.1", "sslmode=verify-ca"), Some(&other)).unwrap_err();
    assert!(
        e.contains("not trusted") && e.contains("database.ca_bundle") && e.contains("127.0.0.1"),
        "{e}"
    );
}

#[test]
fn tls_pg_verify_full_refuses_a_certificate_for_another_name() {
    let ca = TestCa::new("pg-test CA");
    let pg = tls_cluster(&ca, &["db.example.com"]);
    let dir = tempfile::tempdir().unwrap();
    let ca_pem = ca.write_pem(dir.path(), "root.crt");
    let url = pg.url("127.0.0.1", "sslmode=verify-full");
    let e = pg_connect(&url, Some(&ca_pem)).unwrap_err();
    assert!(
        e.starts_with("cannot connect to PostgreSQL at postgres://postgres@127.0.0.1:")
            && e.contains("not valid for name")
            && e.contains("verify-ca")
            && !e.contains('\n'),
        "{e}"
    );
    // The same CA without the name check is fine.
    let url = pg.url("127.0.0.1", "sslmode=verify-ca");
    assert_eq!(pg_connect(&url, Some(&ca_pem)), Ok(true));
    // So is the binary: `db init` through verify-full fails (exit 1, one
    // line), through verify-ca it works.
    let w = Workdir::new(&format!(
        "[database]\nschema = \"tls_pg\"\nca_bundle = \"{}\"\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        ca_pem.display()
    ));
    let out = w
        .cmd()
        .env("DATABASE_URL", pg.url("127.0.0.1", "sslmode=verify-full"))
        .args(["db", "init"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.trim().lines().count() == 1 && stderr.contains("not valid for name"),
        "{stderr}"
    );
    w.cmd()
        .env("DATABASE_URL", pg.url("127.0.0.1", "sslmode=verify-ca"))
        .args(["db", "init"])
        .assert()
        .success();
}

#[test]
fn tls_pg_and_jira_run_end_to_end_over_verified_tls() {
    let ca = TestCa::new("corp CA");
    let pg = tls_cluster(&ca, &["localhost", "127.0.0.1"]);
    let sim = https_sim(&ca, &["localhost", "127.0.0.1"]);
    let w = Workdir::new("");
    let ca_pem = ca.write_pem(w.path(), "corp-ca.pem");
    // One CA for both: jira.ca_bundle, and sslrootcert in DATABASE_URL.
    let jira_ca = format!("ca_bundle = \"{}\"", ca_pem.display());
    std::fs::write(w.config_path(), config(&sim, "warehouse", &jira_ca)).unwrap();
    let url = pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", ca_pem.display()),
    );
    for args in [&["db", "init"][..], &["run"][..]] {
        let out = w
            .cmd()
            .env("DATABASE_URL", &url)
            .env("JIRA_PAT", sim.token())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut c = postgres::Client::connect(&pg.url("127.0.0.1", ""), postgres::NoTls).unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM warehouse.issue", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, sim.ids_in_project("DEMO").len() as i64);
}
