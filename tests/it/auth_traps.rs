//! Authentication traps (issue 16): a proxy that drops the token, an SSO
//! login page or a redirect to one, Jira's CAPTCHA lock-out and an expired
//! token, each served by the simulator on every endpoint. `run` and `sync`
//! must stop at once — at most two requests, never a retry — with one line
//! that says what happened and what to do (exit 3), having staged and
//! loaded nothing.

use std::collections::HashMap;
use std::path::Path;

use crate::common::*;
use jira_sim::{AuthTrap, SimConfig, SimHandle, Simulator};

/// Production's retry policy (8 attempts) with short delays: a retry would
/// show in the request count, not in the test's duration.
fn config(sim: &SimHandle, schema: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\n[jira.retry]\nattempts = 8\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        sim.url()
    )
}

/// Staged files anywhere under `dir` (pages, batches, catalogues).
fn staged_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(staged_files(&p));
        } else if p.to_string_lossy().ends_with(".zst") {
            out.push(p.display().to_string());
        }
    }
    out
}

/// `trap` on every endpoint: `run` and then `sync` each exit 3 after at
/// most two requests, with one error line holding every word of `says`.
fn assert_stops_at_once(trap: AuthTrap, says: &[&str]) {
    let sim = Simulator::start(SimConfig::default().issues(60).projects(1)).unwrap();
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name));
    sim.set_auth_trap(Some(trap));
    for command in ["run", "sync"] {
        sim.reset_stats();
        let out = w
            .cmd()
            .env("JIRA_PAT", sim.token())
            .arg(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{trap:?} {command}: {stderr}");
        let requests = sim.stats().requests;
        eprintln!("{trap:?} {command}: {requests} request(s)");
        assert!(
            (1..=2).contains(&requests),
            "{trap:?} {command}: {requests} requests (retried): {stderr}"
        );
        assert!(
            !stderr.contains("retrying:"),
            "{trap:?} {command}: {stderr}"
        );
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect();
        assert_eq!(errors.len(), 1, "{trap:?} {command}: {stderr}");
        for word in says {
            assert!(
                errors[0].contains(word),
                "{trap:?} {command}: {word:?} missing from {}",
                errors[0]
            );
        }
        assert!(!stderr.contains(sim.token()), "the token leaked: {stderr}");
        let staged = staged_files(&w.path().join("staging"));
        assert!(staged.is_empty(), "{trap:?} {command} staged {staged:?}");
        assert_eq!(s.count("issue"), 0);
        assert_eq!(s.count("checkpoint"), 0);
    }
    // Lifted, the same configuration works.
    sim.set_auth_trap(None);
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .arg("run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.count("issue"), sim.ids_in_project("DEMO").len() as i64);
}

#[test]
fn auth_trap_proxy_dropping_the_token_stops_at_once() {
    assert_stops_at_once(
        AuthTrap::AnonymousProxy,
        &[
            "anonymous",
            "JIRA_PAT",
            "Authorization header",
            "not retried",
        ],
    );
}

#[test]
fn auth_trap_sso_login_page_stops_at_once() {
    assert_stops_at_once(
        AuthTrap::LoginPage,
        &[
            "HTML login page",
            "Log in - Company SSO",
            "single-sign-on",
            "not retried",
        ],
    );
}

#[test]
fn auth_trap_redirect_to_login_stops_at_once() {
    assert_stops_at_once(
        AuthTrap::RedirectToLogin,
        &[
            "redirected to a login page",
            "/login.jsp",
            "HTTP 302",
            "not retried",
        ],
    );
}

#[test]
fn auth_trap_captcha_stops_at_once() {
    assert_stops_at_once(
        AuthTrap::Captcha,
        &[
            "CAPTCHA",
            "/login.jsp",
            "log in once in a browser",
            "stopped at once",
        ],
    );
}

#[test]
fn auth_trap_expired_token_stops_at_once() {
    assert_stops_at_once(
        AuthTrap::ExpiredToken,
        &[
            "expired",
            "new personal access token",
            "JIRA_PAT",
            "not retried",
        ],
    );
}

/// `GET path` with the simulator's token over a fresh connection: (status,
/// headers with lower-case names, body).
fn get(sim: &SimHandle, path: &str) -> (u16, HashMap<String, String>, String) {
    use std::io::{Read, Write};
    let addr = sim.url().trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        sim.token()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

/// The simulator side: each trap answers as documented on every endpoint.
#[test]
fn auth_trap_sim_answers_every_endpoint() {
    let sim = Simulator::start(SimConfig::default().issues(10).projects(1)).unwrap();
    for trap in AuthTrap::ALL {
        sim.set_auth_trap(Some(trap));
        for path in [
            "/rest/api/2/myself",
            "/rest/api/2/field",
            "/rest/api/2/search?jql=",
        ] {
            let (status, headers, body) = get(&sim, path);
            let want = match trap {
                AuthTrap::AnonymousProxy | AuthTrap::LoginPage => 200,
                AuthTrap::RedirectToLogin => 302,
                AuthTrap::Captcha => 403,
                AuthTrap::ExpiredToken => 401,
            };
            assert_eq!(status, want, "{trap:?} {path}");
            match trap {
                AuthTrap::AnonymousProxy => {
                    assert_eq!(headers["x-ausername"], "anonymous", "{path}")
                }
                AuthTrap::LoginPage => {
                    assert!(headers["content-type"].starts_with("text/html"));
                    assert!(body.contains("password"));
                }
                AuthTrap::RedirectToLogin => {
                    assert!(headers["location"].contains("/login.jsp?os_destination="))
                }
                AuthTrap::Captcha => assert!(
                    headers["x-authentication-denied-reason"]
                        .starts_with("CAPTCHA_CHALLENGE; login-url=")
                ),
                AuthTrap::ExpiredToken => assert!(body.contains("expired")),
            }
        }
    }
    sim.set_auth_trap(None);
    assert_eq!(get(&sim, "/rest/api/2/myself").0, 200);
}
