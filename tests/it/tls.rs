//! TLS, for real: the simulator over HTTPS with a certificate from a CA made
//! in the test (Jira), and a throwaway PostgreSQL cluster with `ssl = on`
//! (the database). Default settings refuse an unknown CA at once, naming the
//! host and the setting to fix; the configured CA bundle, or the explicit
//! opt-out, make the same run work.

use crate::certs::TestCa;
use crate::common::*;
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
