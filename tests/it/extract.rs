//! Extract stage against the simulator (real HTTP on 127.0.0.1): every test
//! proves one property of `extract` by comparing what was staged with the
//! simulator's ground truth, its statistics, or the binary's exit code.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use jira_pipeline_core::config::{Config, RawConfig, Secret};
use jira_pipeline_core::error::{Error, ExitCode};
use jira_pipeline_core::extract::{ExtractOptions, ExtractReport, StoredCursor, extract_blocking};
use jira_pipeline_core::jira::jql::parse_jira_time;
use jira_pipeline_core::progress::Display;
use jira_pipeline_core::staging::{PageKind, Staging, read_page};
use jira_sim::{Fault, FaultConfig, IssueUpdate, SimConfig, SimHandle, Simulator};

use crate::common::{TestSchema, Workdir};

/// A config for one scope `demo` on project DEMO against `url`.
/// A session over `cfg` with a stop flag of its own (no signal handler).
fn session(cfg: &Config) -> jira_pipeline_core::session::Session {
    jira_pipeline_core::session::Session::new(
        cfg.clone(),
        jira_pipeline_core::shutdown::Stop::new(),
    )
}

fn config(url: &str, staging: &Path, jira_extra: &str, sync_extra: &str) -> Config {
    let text = format!(
        "[jira]\nbase_url = \"{url}\"\n{jira_extra}\n[sync]\n{sync_extra}\n[staging]\ndir = \"{}\"\n\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        staging.display()
    );
    let p = staging.join("pipeline.toml");
    RawConfig::parse(&text, &p).unwrap().validate(&p).unwrap()
}

fn opts() -> ExtractOptions {
    ExtractOptions {
        display: Display::Off,
        ..Default::default()
    }
}

fn run(
    cfg: &Config,
    sim: &SimHandle,
    checkpoints: &[(&str, DateTime<Utc>)],
) -> Result<ExtractReport, Error> {
    let cp: HashMap<String, StoredCursor> = checkpoints
        .iter()
        .map(|(s, t)| {
            let at = *t;
            (
                s.to_string(),
                StoredCursor {
                    at,
                    fingerprint: None,
                },
            )
        })
        .collect();
    extract_blocking(&session(cfg), &Secret::new(sim.token()), &cp, opts())
}

/// Every issue in the staged search pages (pages/ and archive/) of a scope:
/// id → the newest `updated` (ms) staged.
fn staged_versions(staging: &Path, scope: &str) -> HashMap<u64, i64> {
    let st = Staging::new(staging, 3);
    let mut out: HashMap<u64, i64> = HashMap::new();
    for (dir, names) in [
        (st.pages_dir(scope), st.list_pages(scope).unwrap()),
        (st.archive_dir(scope), st.list_archived(scope).unwrap()),
    ] {
        for n in names {
            let (meta, body) = read_page(&dir.join(format!("{n}.ndjson.zst"))).unwrap();
            if meta.kind != PageKind::Search {
                continue;
            }
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            for i in v["issues"].as_array().unwrap() {
                let id: u64 = i["id"].as_str().unwrap().parse().unwrap();
                let u = parse_jira_time(i["fields"]["updated"].as_str().unwrap())
                    .unwrap()
                    .timestamp_millis();
                let e = out.entry(id).or_insert(u);
                *e = (*e).max(u);
            }
        }
    }
    out
}

/// Live issues of a project now: id → updated (ms).
fn truth(sim: &SimHandle, project: &str) -> HashMap<u64, i64> {
    sim.ground_truth()
        .into_iter()
        .filter(|i| i.project_key == project)
        .map(|i| (i.id, i.updated_ms))
        .collect()
}

/// Invariant 1: every issue of `truth` is staged at a version no older.
fn assert_covers(staged: &HashMap<u64, i64>, truth: &HashMap<u64, i64>, what: &str) {
    let mut missing = Vec::new();
    let mut stale = Vec::new();
    for (id, u) in truth {
        match staged.get(id) {
            None => missing.push(*id),
            Some(s) if s < u => stale.push(*id),
            _ => {}
        }
    }
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{what}: {} of {} issues missing (e.g. {:?}), {} stale (e.g. {:?})",
        missing.len(),
        truth.len(),
        &missing[..missing.len().min(5)],
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}

/// The End pages staged for a scope: (run_id, checkpoint, pages_in_run).
fn end_pages(staging: &Path, scope: &str) -> Vec<(String, DateTime<Utc>, u64)> {
    let st = Staging::new(staging, 3);
    st.list_pages(scope)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with("-zend"))
        .map(|n| {
            let (m, _) = read_page(&st.page_path(scope, &n)).unwrap();
            (m.run_id, m.checkpoint.unwrap(), m.pages_in_run.unwrap())
        })
        .collect()
}

fn search_pages_of_run(staging: &Path, scope: &str, run_id: &str) -> usize {
    Staging::new(staging, 3)
        .list_pages(scope)
        .unwrap()
        .iter()
        .filter(|n| n.starts_with(run_id) && !n.ends_with("-zend"))
        .count()
}

#[test]
fn extract_updates_during_paging_are_not_missed_backfill_then_incremental() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(3000)
            .projects(3)
            .max_results(50),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Ask for 100: the server caps at 50 without saying so in the page count.
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 100\nconcurrency = 3",
        "",
    );
    let demo: Vec<u64> = sim.ids_in_project("DEMO");
    assert!(demo.len() > 900);
    // While pages are fetched, issues change: some already fetched, some not.
    let d2 = demo.clone();
    sim.set_search_hook(move |ctl, n| {
        if n % 3 == 0 {
            for k in 0..4u64 {
                let id = d2[((n * 37 + k * 211) % d2.len() as u64) as usize];
                ctl.update_issue(id, &IssueUpdate::new().add_label(format!("l{n}")))
                    .unwrap();
            }
        }
    });
    let (tx, rx) = crossbeam_channel::bounded(2);
    let consumer = std::thread::spawn(move || rx.iter().collect::<Vec<_>>());
    let at_start = truth(&sim, "DEMO");
    let report = extract_blocking(
        &session(&cfg),
        &Secret::new(sim.token()),
        &HashMap::new(),
        ExtractOptions {
            sink: Some(tx),
            ..opts()
        },
    )
    .unwrap();
    let refs = consumer.join().unwrap();
    let sc = &report.scopes[0];
    assert_eq!(sc.mode.as_str(), "backfill");
    assert!(sc.slices >= 3, "parallel slices: {}", sc.slices);
    assert_covers(&staged_versions(dir.path(), "demo"), &at_start, "backfill");
    // The End page closes the run: checkpoint = run start, page count exact.
    let ends = end_pages(dir.path(), "demo");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].1, sc.checkpoint);
    assert_eq!(
        ends[0].2 as usize,
        search_pages_of_run(dir.path(), "demo", &sc.run_id)
    );
    // Every staged page went down the channel, the End page last.
    assert_eq!(refs.len(), ends[0].2 as usize + 1);
    assert!(refs.last().unwrap().page.ends_with("-zend"));
    // The catalogue was staged with the run.
    assert!(
        Staging::new(dir.path(), 3)
            .catalog_path(&sc.run_id)
            .is_file()
    );

    // More changes, then an incremental run from the staged End page's checkpoint.
    for id in demo.iter().take(25) {
        sim.update_issue(*id, &IssueUpdate::new().summary("changed"))
            .unwrap();
    }
    let before_incr = truth(&sim, "DEMO");
    let r2 = run(&cfg, &sim, &[]).unwrap();
    let sc2 = &r2.scopes[0];
    assert_eq!(
        sc2.mode.as_str(),
        "incremental",
        "cursor taken from the staged End page"
    );
    assert!(sc2.from < sc.checkpoint && sc2.checkpoint > sc.checkpoint);
    assert!(
        sc2.issues < 700,
        "incremental reads only what changed: {}",
        sc2.issues
    );
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &before_incr,
        "incremental",
    );
    assert_eq!(sim.stats().count("search", 500), 0);
    assert_eq!(sim.stats().count("search", 400), 0);
}

#[test]
fn extract_25000_issues_one_scope_window_10000_cap_100() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(25_000)
            .project_keys(&["DEMO"])
            .max_results(100),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Ask for 1000 per page; the server silently gives 100.
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 1000\nconcurrency = 4",
        "",
    );
    let at_start = truth(&sim, "DEMO");
    assert_eq!(at_start.len(), 25_000);
    let report = run(&cfg, &sim, &[]).unwrap();
    let staged = staged_versions(dir.path(), "demo");
    assert_covers(&staged, &at_start, "25,000 issues");
    let st = sim.stats();
    // Never asked past the window (the simulator answers that with 500).
    assert_eq!(st.count("search", 500), 0);
    // Paging advanced by what was received: ~250 pages, not 25.
    let sc = &report.scopes[0];
    assert!(sc.pages >= 250 && sc.pages < 300, "pages {}", sc.pages);
    assert!(sc.slices >= 4);
}

#[test]
fn extract_bulk_edit_of_12000_issues_in_one_minute_then_incremental() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(12_500)
            .project_keys(&["DEMO"])
            .max_results(100),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 100\nconcurrency = 2",
        "safety_window_minutes = 15",
    );
    // Loaded up to now; then a bulk edit of 12,000 issues, all in one minute.
    let checkpoint = Utc::now();
    let ids: Vec<u64> = sim
        .ids_in_project("DEMO")
        .into_iter()
        .take(12_000)
        .collect();
    let at = sim
        .bulk_edit(&ids, &IssueUpdate::new().add_label("bulk"))
        .unwrap();
    let minute = |ms: i64| ms - ms.rem_euclid(60_000);
    assert!(at.iter().all(|t| minute(*t) == minute(at[0])), "one minute");
    let edited = truth(&sim, "DEMO");
    let edited: HashMap<u64, i64> = ids.iter().map(|i| (*i, edited[i])).collect();
    let report = run(&cfg, &sim, &[("demo", checkpoint)]).unwrap();
    let sc = &report.scopes[0];
    assert_eq!(sc.mode.as_str(), "incremental");
    assert_covers(&staged_versions(dir.path(), "demo"), &edited, "bulk edit");
    assert_eq!(
        sim.stats().count("search", 500),
        0,
        "never past the 10,000 window"
    );
    assert!(
        sc.slices >= 2,
        "the crowded minute is split: {} slices",
        sc.slices
    );
    // Only the edited issues (plus repeats of page heads), not the other 500.
    assert!(sc.issues < 12_000 + 12_000 / 50, "{}", sc.issues);
}

#[test]
fn extract_user_time_zone_with_dst_change_inside_the_range() {
    // JQL dates are read in New York time; timestamps are rendered in Berlin time.
    let sim = Simulator::start(
        SimConfig::default()
            .issues(1500)
            .projects(1)
            .time_zone("America/New_York")
            .server_time_zone("Europe/Berlin"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 100\nconcurrency = 2",
        "safety_window_minutes = 15",
    );
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // 2024-11-03: New York falls back at 06:00Z (02:00 EDT -> 01:00 EST), so
    // 01:00-02:00 local happens twice. Checkpoint at the first 01:50 EDT.
    let checkpoint = utc("2024-11-03T05:50:00Z");
    let ids = sim.ids_in_project("DEMO");
    // Issues whose last change falls at instants a wrong zone or a wrong
    // reading of the repeated hour would miss (all after cursor - window).
    let instants = [
        "2024-11-03T05:35:00Z", // 01:35 EDT, exactly cursor - window
        "2024-11-03T05:59:59Z", // 01:59 EDT
        "2024-11-03T06:10:00Z", // 01:10 EST (second 01:10)
        "2024-11-03T06:40:00Z", // 01:40 EST
        "2024-11-03T08:00:00Z", // 03:00 EST
        "2024-11-03T09:30:00Z", // 04:30 EST (a UTC literal would start here)
    ];
    let mut expected = HashMap::new();
    for (k, s) in instants.iter().enumerate() {
        let id = ids[k * 7];
        let t = utc(s).timestamp_millis();
        sim.update_issue_at(id, &IssueUpdate::new().summary("dst"), t)
            .unwrap();
        expected.insert(id, t);
    }
    // Everything changed at or after cursor - window must come.
    let from = (checkpoint - chrono::Duration::minutes(15)).timestamp_millis();
    for (id, u) in truth(&sim, "DEMO") {
        if u >= from {
            expected.insert(id, u);
        }
    }
    let report = run(&cfg, &sim, &[("demo", checkpoint)]).unwrap();
    assert_eq!(report.time_zone, "America/New_York");
    let staged = staged_versions(dir.path(), "demo");
    assert_covers(&staged, &expected, "DST");
    // And the run did not simply read everything: nothing from days before.
    let day_before = (checkpoint - chrono::Duration::days(1)).timestamp_millis();
    assert!(
        staged.values().all(|u| *u >= day_before),
        "range read in the user's zone"
    );
}

#[test]
fn extract_moved_issue_and_deleted_anchor_during_backfill() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(600)
            .project_keys(&["DEMO", "OTHER"])
            .max_results(20),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(sim.url(), dir.path(), "page_size = 20\nconcurrency = 1", "");
    let at_start = truth(&sim, "DEMO");
    let staging = dir.path().to_path_buf();
    let gone = Arc::new(Mutex::new(Vec::<u64>::new()));
    let g2 = gone.clone();
    // Before some searches: delete the last issue of the newest staged page
    // (the anchor the next page repeats) and move its first issue away.
    sim.set_search_hook(move |ctl, n| {
        if n % 5 != 0 {
            return;
        }
        let st = Staging::new(&staging, 3);
        let Some(newest) = st
            .list_pages("demo")
            .unwrap()
            .into_iter()
            .filter(|p| !p.ends_with("-zend"))
            .max_by_key(|p| {
                std::fs::metadata(st.page_path("demo", p))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
        else {
            return;
        };
        let (_, body) = read_page(&st.page_path("demo", &newest)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let issues = v["issues"].as_array().unwrap();
        let id = |i: &serde_json::Value| i["id"].as_str().unwrap().parse::<u64>().unwrap();
        let (first, last) = (id(&issues[0]), id(issues.last().unwrap()));
        let mut g = g2.lock().unwrap();
        if first != last && !g.contains(&first) && !g.contains(&last) {
            ctl.delete_issues(&[last]).unwrap();
            ctl.move_issue(first, "OTHER").unwrap();
            g.extend([first, last]);
        }
    });
    let report = run(&cfg, &sim, &[]).unwrap();
    sim.clear_search_hook();
    let gone = gone.lock().unwrap().clone();
    assert!(
        gone.len() >= 4,
        "the hook deleted and moved issues: {gone:?}"
    );
    // Every issue that stayed in DEMO throughout (sub-tasks go with their parent).
    let now = truth(&sim, "DEMO");
    let expected: HashMap<u64, i64> = at_start
        .into_iter()
        .filter(|(id, _)| now.contains_key(id))
        .collect();
    assert!(expected.len() < 300 - 4);
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &expected,
        "moves and deletes",
    );
    assert!(
        report.scopes[0].restarts >= 2,
        "shifts were detected: {:?}",
        report.scopes[0]
    );
    let st = sim.stats();
    assert_eq!(st.count("search", 400) + st.count("search", 500), 0);
}

#[test]
fn extract_rate_limit_storm_waits_for_retry_after() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(300)
            .projects(1)
            .max_results(100),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 100\nconcurrency = 1\n[jira.retry]\nbase_delay_ms = 1",
        "",
    );
    let at_start = truth(&sim, "DEMO");
    // One request in flight at a time: two 429s in a row.
    sim.schedule_search_faults(
        Fault::RateLimit {
            retry_after_secs: 1,
        },
        2,
    );
    // The hook runs only for searches that are served (not for the 429s).
    let first_served = Arc::new(Mutex::new(None::<Instant>));
    let f2 = first_served.clone();
    sim.set_search_hook(move |_, _| {
        f2.lock().unwrap().get_or_insert_with(Instant::now);
    });
    let began = Instant::now();
    let report = run(&cfg, &sim, &[]).unwrap();
    let first = first_served.lock().unwrap().unwrap();
    // Two 429s with Retry-After: 1 in a row before the first search could be
    // served; the second came after the first pause, and every request waits
    // for the pause: at least 2 s (a lower bound; never early).
    assert!(
        first - began >= Duration::from_secs(2),
        "waited {:?}",
        first - began
    );
    assert_eq!(sim.stats().rate_limited, 2);
    assert_eq!(report.throttled, 2);
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &at_start,
        "after 429s",
    );
}

#[test]
fn extract_transient_faults_are_retried_and_persistent_ones_fail_clearly() {
    let sim =
        Simulator::start(SimConfig::default().issues(400).projects(1).max_results(50)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let retry = "[jira.retry]\nattempts = 10\nbase_delay_ms = 1\nmax_delay_ms = 5";
    let cfg = config(
        sim.url(),
        dir.path(),
        &format!("page_size = 50\nconcurrency = 2\n{retry}"),
        "",
    );
    let at_start = truth(&sim, "DEMO");
    for f in [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(504),
        Fault::HtmlBadGateway,
        Fault::ResetMidBody,
        Fault::TruncatedBody,
        Fault::CloseMidBody,
    ] {
        sim.schedule_search_faults(f, 1);
    }
    let report = run(&cfg, &sim, &[]).unwrap();
    assert_eq!(sim.stats().faults, 8);
    assert!(report.retries >= 8, "{report:?}");
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &at_start,
        "after transient faults",
    );

    // A fault that does not go away: a clear error after the configured attempts.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = config(
        sim.url(),
        dir2.path(),
        &format!("page_size = 50\n{retry}"),
        "",
    );
    sim.reset_stats();
    sim.set_faults(FaultConfig {
        rate_html_502: 1.0,
        ..FaultConfig::none()
    });
    let e = run(&cfg2, &sim, &[]).unwrap_err();
    let m = e.to_string();
    assert_eq!(e.exit_code(), ExitCode::Jira, "{m}");
    assert!(
        m.contains("POST /rest/api/2/search") && m.contains("after 10 attempt"),
        "{m}"
    );
    assert!(m.contains("JQL: project = \"DEMO\""), "{m}");
    // Planning sends three searches at once; the one that gives up first
    // ends the run: 10 attempts of one request, at most 10 of each other.
    let n502 = sim.stats().count("search", 502);
    assert!((10..=30).contains(&n502), "{n502} attempts");
    sim.clear_faults();
}

/// A workdir whose config points at the simulator, with the test schema.
fn binary_workdir(sim: &SimHandle, schema: &TestSchema, jira_extra: &str) -> Workdir {
    Workdir::new(&crate::common::config_with(
        &schema.name,
        &format!("\n[jira]\nbase_url = \"{}\"\n{jira_extra}\n", sim.url()),
    ))
}

#[test]
fn extract_wrong_token_exits_3_after_one_request_and_captcha_stops_at_once() {
    let schema = TestSchema::initialised();
    let sim = Simulator::start(SimConfig::default().issues(50).projects(1)).unwrap();
    let wd = binary_workdir(&sim, &schema, "");
    let out = wd
        .cmd()
        .env("JIRA_PAT", "not-the-token")
        .args(["run", "--stage", "extract"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("401") && err.contains("JIRA_PAT"), "{err}");
    assert!(!err.contains("not-the-token"), "{err}");
    assert_eq!(sim.stats().requests, 1, "one request, no retry loop");

    // Jira demanding a CAPTCHA: stop at once, say so.
    let sim =
        Simulator::start(SimConfig::default().issues(50).projects(1).captcha_after(0)).unwrap();
    let wd = binary_workdir(&sim, &schema, "");
    let out = wd
        .cmd()
        .env("JIRA_PAT", "not-the-token")
        .args(["run", "--stage", "extract"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CAPTCHA"), "{err}");
    assert_eq!(sim.stats().requests, 1);
}

/// `(jql, startAt)` of every search page request the binary sent (its -v log).
fn logged_searches(stderr: &str) -> Vec<(String, u64)> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "sending" && v["max_results"].as_u64().unwrap_or(0) > 1)
        .map(|v| {
            (
                v["jql"].as_str().unwrap().to_string(),
                v["start_at"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn extract_kill_9_mid_run_then_resume_loses_no_page_and_refetches_only_in_flight() {
    let schema = TestSchema::initialised();
    let sim = Simulator::start(
        SimConfig::default()
            .issues(3000)
            .project_keys(&["DEMO"])
            .max_results(50)
            .latency_ms(60),
    )
    .unwrap();
    let wd = binary_workdir(&sim, &schema, "page_size = 50\nconcurrency = 2");
    let at_start = truth(&sim, "DEMO");
    let bin = assert_cmd::cargo::cargo_bin("pipeline");
    let log1 = wd.path().join("run1.log");
    let mut child = std::process::Command::new(&bin)
        .current_dir(wd.path())
        .env("JIRA_PAT", sim.token())
        .env("DATABASE_URL", crate::common::database_url())
        .env_remove("RUST_LOG")
        .args(["-v", "--log-format", "json", "run", "--stage", "extract"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log1).unwrap())
        .spawn()
        .unwrap();
    let pages_dir = wd.path().join("staging/pages/demo");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = std::fs::read_dir(&pages_dir)
            .map(|d| d.count())
            .unwrap_or(0);
        if n >= 12 {
            break;
        }
        assert!(Instant::now() < deadline, "the run staged no pages");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before the kill"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let staged_before = Staging::new(wd.path().join("staging"), 3)
        .list_pages("demo")
        .unwrap();
    assert!(
        !staged_before.iter().any(|p| p.ends_with("-zend")),
        "killed mid-run"
    );

    let out = wd
        .cmd()
        .env("JIRA_PAT", sim.token())
        .args(["-v", "--log-format", "json", "run", "--stage", "extract"])
        .output()
        .unwrap();
    let err2 = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err2}");
    // The interrupted run is finished, then (it started before this
    // invocation) an incremental catch-up run follows.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("finished the backfill run") && stdout.contains("then caught up from"),
        "{stdout}"
    );
    let staging = wd.path().join("staging");
    // No page lost.
    assert_covers(
        &staged_versions(&staging, "demo"),
        &at_start,
        "after kill -9 and resume",
    );
    let ends = end_pages(&staging, "demo");
    assert_eq!(
        ends.len(),
        2,
        "the resumed run, then the catch-up: {ends:?}"
    );
    assert!(
        staged_before.iter().all(|p| p.starts_with(&ends[0].0)),
        "the first End page is the resumed run's"
    );
    assert!(
        ends[0].1 < ends[1].1,
        "the catch-up proposes a later checkpoint"
    );
    for end in &ends {
        assert_eq!(
            end.2 as usize,
            search_pages_of_run(&staging, "demo", &end.0)
        );
    }
    // Everything staged before the kill is still there, unchanged in name.
    let after = Staging::new(&staging, 3).list_pages("demo").unwrap();
    assert!(staged_before.iter().all(|p| after.contains(p)));
    // No page fetched twice except the one each slice had in flight at the
    // kill (on the wire, or received and not yet staged): at most one repeat
    // per slice, and no more than 2 x concurrency in all.
    let log1 = std::fs::read_to_string(&log1).unwrap();
    let mut all = logged_searches(&log1);
    let second = logged_searches(&err2);
    assert!(!second.is_empty());
    all.extend(second);
    let mut seen = std::collections::HashSet::new();
    let repeats: Vec<_> = all.iter().filter(|q| !seen.insert(*q)).collect();
    let mut per_slice = std::collections::HashSet::new();
    assert!(
        repeats.len() <= 4 && repeats.iter().all(|(jql, _)| per_slice.insert(jql)),
        "{} searches repeated across the kill: {repeats:?}",
        repeats.len()
    );
    // The resumed run planned nothing again: the only counts are the
    // catch-up's (an incremental query on `updated`).
    for v in err2
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "sending" && v["max_results"].as_u64() == Some(0))
    {
        assert!(
            v["jql"].as_str().unwrap_or("").contains("updated >="),
            "re-planning after resume: {v}"
        );
    }
}

#[test]
fn extract_token_never_in_logs_or_staged_files() {
    let schema = TestSchema::initialised();
    let token = "tok-SECRET-9f8e7d6c";
    let sim = Simulator::start(SimConfig::default().issues(120).projects(1).token(token)).unwrap();
    let wd = binary_workdir(&sim, &schema, "page_size = 50");
    let mut logs = String::new();
    for args in [
        vec!["-vv", "run", "--stage", "extract", "--full"],
        vec!["-vv", "--log-format", "json", "run", "--stage", "extract"],
    ] {
        let out = wd
            .cmd()
            .env("JIRA_PAT", token)
            .args(&args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // A refused token is not echoed either.
    let out = wd
        .cmd()
        .env("JIRA_PAT", "tok-WRONG-1234")
        .args(["-vv", "run", "--stage", "extract"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let bad = String::from_utf8_lossy(&out.stderr);
    assert!(!bad.contains("tok-WRONG-1234"));
    assert!(
        logs.len() > 10_000,
        "-vv logs plenty ({} bytes)",
        logs.len()
    );
    assert!(logs.contains("search"), "the logs show the requests");
    assert!(!logs.contains(token), "token in the logs");
    assert!(!logs.contains("Bearer"), "auth header in the logs");
    // Nothing staged holds it: pages, catalogue, state.
    let mut files = 0;
    let mut stack = vec![wd.path().join("staging")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let raw = std::fs::read(&p).unwrap();
            let data = if p.extension().is_some_and(|x| x == "zst") {
                jira_pipeline_core::staging::read_zstd(&p).unwrap()
            } else {
                raw
            };
            assert!(
                !String::from_utf8_lossy(&data).contains(token),
                "{}",
                p.display()
            );
            files += 1;
        }
    }
    assert!(files >= 4, "{files} staged files checked");
}

#[test]
fn unknown_projects_issue_types_and_fields_stop_the_run_before_any_search() {
    let sim = Simulator::start(SimConfig::default().issues(50).projects(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[jira]\nbase_url = \"{}\"\n[staging]\ndir = \"{}\"\n[[scope]]\nname = \"demo\"\nproject = \"DEMOO\"\nissue_types = [\"bug\", \"Stroy\"]\nfields = [\"story points\", \"Story Pionts\"]\n",
        sim.url(),
        dir.path().display()
    );
    let p = dir.path().join("p.toml");
    let cfg = RawConfig::parse(&text, &p).unwrap().validate(&p).unwrap();
    let e = run(&cfg, &sim, &[]).unwrap_err();
    let m = e.to_string();
    assert_eq!(e.exit_code(), ExitCode::Usage, "{m}");
    // Case-insensitive: "bug" and "story points" are fine; the misspelt
    // ones are named with the closest known names.
    assert!(
        m.contains("3 unknown names") && m.contains("correct the scope"),
        "{m}"
    );
    assert!(
        m.contains("project \"DEMOO\"") && m.contains("\"DEMO\""),
        "{m}"
    );
    assert!(
        m.contains("\"Stroy\"") && m.contains("did you mean \"Story\""),
        "{m}"
    );
    assert!(
        m.contains("\"Story Pionts\"") && m.contains("\"Story Points\""),
        "{m}"
    );
    assert!(!m.contains("\"bug\""), "{m}");
    assert_eq!(
        sim.stats().endpoint_total("search"),
        0,
        "no search was sent"
    );
    assert!(
        !dir.path().join("pages").exists()
            || std::fs::read_dir(dir.path().join("pages")).unwrap().count() == 0
    );
}

#[test]
fn extract_bad_jql_shows_jira_messages_and_the_query() {
    let sim = Simulator::start(SimConfig::default().issues(50).projects(1)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[jira]\nbase_url = \"{}\"\n[staging]\ndir = \"{}\"\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\njql = 'nosuchfield = \"No \\\"Such\\\" Value\"'\n",
        sim.url(),
        dir.path().display()
    );
    let p = dir.path().join("p.toml");
    let cfg = RawConfig::parse(&text, &p).unwrap().validate(&p).unwrap();
    let e = run(&cfg, &sim, &[]).unwrap_err();
    let m = e.to_string();
    assert_eq!(e.exit_code(), ExitCode::Jira);
    assert!(m.contains("HTTP 400"), "{m}");
    // Jira's own words, and the JQL with the quoted value.
    assert!(
        m.contains("nosuchfield") && m.contains("(nosuchfield = \"No \\\"Such\\\" Value\")"),
        "{m}"
    );
    // Planning sends three queries at once: each refused once, none retried.
    let n400 = sim.stats().count("search", 400);
    assert!(
        (1..=3).contains(&n400),
        "a bad query is not retried: {n400}"
    );
}

#[test]
fn extract_stop_flag_interrupts_between_requests_and_a_rerun_resumes() {
    let sim =
        Simulator::start(SimConfig::default().issues(800).projects(1).max_results(50)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(sim.url(), dir.path(), "page_size = 50\nconcurrency = 2", "");
    let at_start = truth(&sim, "DEMO");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    sim.set_search_hook(move |_, n| {
        if n == 8 {
            s2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let e = extract_blocking(
        &session(&cfg),
        &Secret::new(sim.token()),
        &HashMap::new(),
        ExtractOptions { stop, ..opts() },
    )
    .unwrap_err();
    assert!(matches!(e, Error::Interrupted(_)), "{e}");
    let served = sim.stats().searches_served;
    assert!(
        served <= 8 + 2,
        "stopped within the requests in flight: {served}"
    );
    assert!(end_pages(dir.path(), "demo").is_empty());
    sim.clear_search_hook();
    let r = run(&cfg, &sim, &[]).unwrap();
    assert!(r.scopes[0].resumed);
    assert!(r.scopes[0].caught_up_after.is_some());
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &at_start,
        "stopped then resumed",
    );
}

/// Long (about 25,000 issue renders): `cargo test --test it -- --ignored crowded`.
#[test]
#[ignore]
fn extract_crowded_minute_during_the_run_is_drained_by_created() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(12_500)
            .project_keys(&["DEMO"])
            .max_results(100),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 100\nconcurrency = 2",
        "",
    );
    let checkpoint = Utc::now();
    let ids: Vec<u64> = sim.ids_in_project("DEMO");
    // A few changes the run plans for (one slice)...
    for id in ids.iter().take(30) {
        sim.update_issue(*id, &IssueUpdate::new().summary("before"))
            .unwrap();
    }
    // ...then, once paging has begun, a bulk edit of 12,000 issues in one minute.
    let bulk: Vec<u64> = ids.iter().skip(100).take(12_000).copied().collect();
    let b2 = bulk.clone();
    sim.set_search_hook(move |ctl, n| {
        if n == 2 {
            ctl.bulk_edit(&b2, &IssueUpdate::new().add_label("bulk"))
                .unwrap();
        }
    });
    let r = run(&cfg, &sim, &[("demo", checkpoint)]).unwrap();
    sim.clear_search_hook();
    let now = truth(&sim, "DEMO");
    let expected: HashMap<u64, i64> = ids
        .iter()
        .take(30)
        .chain(&bulk)
        .map(|i| (*i, now[i]))
        .collect();
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &expected,
        "crowded minute",
    );
    let sc = &r.scopes[0];
    assert!(
        sc.slices > 1,
        "the crowded minute got slices of its own: {sc:?}"
    );
    assert_eq!(sim.stats().count("search", 500), 0);
}

/// CPU seconds (user + system) this process has used so far (Linux).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ")".
    (ticks(11) + ticks(12)) / 100.0
}

/// Extract throughput figures. Run in release:
/// `cargo test --release --test it -- --ignored --nocapture bench_extract`
/// (`BENCH_ISSUES`, `BENCH_LATENCY_MS`, `BENCH_K` override the sizes).
#[test]
#[ignore]
fn bench_extract() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };

    // 1. Latency-bound: per-page latency L, concurrency K: pages/s vs 0.8 K / L.
    let l = env("BENCH_LATENCY_MS", 200);
    let k = env("BENCH_K", 8);
    let sim = Simulator::start(
        SimConfig::default()
            .issues(env("BENCH_LATENCY_ISSUES", 20_000) as u32)
            .project_keys(&["DEMO"])
            .max_results(100)
            .latency_ms(l)
            .threads(2),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        &format!("page_size = 100\nconcurrency = {k}"),
        "",
    );
    let t0 = Instant::now();
    let r = run(&cfg, &sim, &[]).unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let pages = r.scopes[0].pages as f64;
    let searches = sim.stats().searches_served as f64;
    let target = 0.8 * k as f64 / (l as f64 / 1000.0);
    // Steady state: from the first page received to the last.
    let st = Staging::new(dir.path(), 3);
    let times: Vec<DateTime<Utc>> = st
        .list_pages("demo")
        .unwrap()
        .iter()
        .filter(|p| !p.ends_with("-zend"))
        .map(|p| read_page(&st.page_path("demo", p)).unwrap().0.fetched_at)
        .collect();
    let span = (*times.iter().max().unwrap() - *times.iter().min().unwrap()).num_milliseconds()
        as f64
        / 1000.0;
    println!(
        "bench extract latency: L = {l} ms, K = {k}, {} slices: {pages} pages ({searches} search requests incl. planning) in {secs:.2} s = {:.1} pages/s overall, {:.1} pages/s from first page to last; target 0.8 K/L = {target:.1} pages/s ({:.0}% / {:.0}% of target)",
        r.scopes[0].slices,
        pages / secs,
        (pages - 1.0) / span,
        100.0 * pages / secs / target,
        100.0 * (pages - 1.0) / span / target,
    );
    drop(sim);

    // 2. No latency, many issues with changelogs, simulator in another process
    //    so this process's CPU time is the extractor's alone.
    let n = env("BENCH_ISSUES", 100_000);
    let bin = assert_cmd::cargo::cargo_bin("pipeline");
    let mut child = std::process::Command::new(&bin)
        .args([
            "simulate",
            "--port",
            "0",
            "--projects",
            "DEMO",
            "--cap",
            "100",
        ])
        .args(["--issues", &n.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &url,
        dir.path(),
        &format!("page_size = 100\nconcurrency = {k}"),
        "",
    );
    let cpu0 = process_cpu_secs();
    let t0 = Instant::now();
    let r = extract_blocking(
        &session(&cfg),
        &Secret::new("sim-token"),
        &HashMap::new(),
        opts(),
    )
    .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    let cpu = process_cpu_secs() - cpu0;
    let _ = child.kill();
    let _ = child.wait();
    // Compression alone: compress the same bodies again at the same level.
    let st = Staging::new(dir.path(), cfg.staging.compression_level);
    let mut raw_bytes = 0usize;
    let mut staged_bytes = 0u64;
    let mut bodies = Vec::new();
    for p in st.list_pages("demo").unwrap() {
        let path = st.page_path("demo", &p);
        staged_bytes += std::fs::metadata(&path).unwrap().len();
        bodies.push(jira_pipeline_core::staging::read_zstd(&path).unwrap());
    }
    let c0 = Instant::now();
    for b in &bodies {
        raw_bytes += b.len();
        std::hint::black_box(zstd::bulk::compress(b, cfg.staging.compression_level).unwrap());
    }
    let compress = c0.elapsed().as_secs_f64();
    // The client's own parse of each page (ids, keys, created, updated).
    let p0 = Instant::now();
    for b in &bodies {
        let nl = b.iter().position(|c| *c == b'\n').unwrap();
        let resp = jira_pipeline_core::jira::client::Response {
            status: 200,
            body: bytes::Bytes::copy_from_slice(&b[nl + 1..]),
            headers: Default::default(),
            fetched_at: Utc::now(),
        };
        let _ = std::hint::black_box(jira_pipeline_core::jira::api::check_search(resp, true));
    }
    let parse = p0.elapsed().as_secs_f64();
    let mb = r.body_bytes as f64 / 1e6;
    println!(
        "bench extract throughput: {n} issues with changelogs, K = {k}, no latency: {} pages, {mb:.1} MB of bodies in {secs:.2} s = {:.1} MB/s ({:.0} issues/s); extractor CPU {cpu:.2} s ({:.0}% of one core), of which zstd compression {compress:.2} s = {:.0}%, page parse {parse:.2} s = {:.0}%; staged {:.1} MB (ratio {:.1})",
        r.scopes[0].pages,
        mb / secs,
        n as f64 / secs,
        100.0 * cpu / secs,
        100.0 * compress / cpu.max(0.001),
        100.0 * parse / cpu.max(0.001),
        staged_bytes as f64 / 1e6,
        raw_bytes as f64 / staged_bytes.max(1) as f64
    );
}

#[test]
fn extract_with_a_lagging_search_index_misses_nothing_changed_before_the_lag() {
    // Jira's search index trails the data: JQL matches and orders by a
    // 300 ms old snapshot while pages render live issues.
    let sim = Simulator::start(
        SimConfig::default()
            .issues(1500)
            .projects(1)
            .max_results(50),
    )
    .unwrap();
    sim.set_index_lag_ms(300);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        sim.url(),
        dir.path(),
        "page_size = 50\nconcurrency = 3",
        "safety_window_minutes = 15",
    );
    let ids = sim.ids_in_project("DEMO");
    let checkpoint = Utc::now();
    for id in ids.iter().step_by(7) {
        sim.update_issue(*id, &IssueUpdate::new().summary("before"))
            .unwrap();
    }
    // Setup, not a timing assertion: let the index see those changes.
    std::thread::sleep(Duration::from_millis(400));
    let at_start: HashMap<u64, i64> = truth(&sim, "DEMO")
        .into_iter()
        .filter(|(_, u)| *u >= checkpoint.timestamp_millis() - 15 * 60_000)
        .collect();
    assert!(at_start.len() >= 200);
    // While paging: changes to issues, deletions the index has not seen yet.
    let d2 = ids.clone();
    sim.set_search_hook(move |ctl, n| {
        if n % 2 == 0 {
            let id = d2[((n * 53) % d2.len() as u64) as usize];
            let _ = ctl.update_issue(id, &IssueUpdate::new().add_label("during"));
        }
        if n % 5 == 0 {
            let id = d2[((n * 101 + 3) % d2.len() as u64) as usize];
            let _ = ctl.delete_issues(&[id]);
        }
    });
    run(&cfg, &sim, &[("demo", checkpoint)]).unwrap();
    sim.clear_search_hook();
    let now = truth(&sim, "DEMO");
    let expected: HashMap<u64, i64> = at_start
        .into_iter()
        .filter(|(id, _)| now.contains_key(id))
        .collect();
    assert_covers(
        &staged_versions(dir.path(), "demo"),
        &expected,
        "lagging index",
    );
}

#[test]
fn extract_two_scopes_run_together_each_with_its_own_end_page() {
    let sim =
        Simulator::start(SimConfig::default().issues(900).projects(3).max_results(50)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\nconcurrency = 2\n[staging]\ndir = \"{}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n\
         [[scope]]\nname = \"alpha-bugs\"\nproject = \"ALPHA\"\nissue_types = [\"Bug\"]\n",
        sim.url(),
        dir.path().display()
    );
    let p = dir.path().join("p.toml");
    let cfg = RawConfig::parse(&text, &p).unwrap().validate(&p).unwrap();
    let demo = truth(&sim, "DEMO");
    let bugs: HashMap<u64, i64> = sim
        .ground_truth()
        .into_iter()
        .filter(|i| i.project_key == "ALPHA" && i.issue_type_name() == "Bug")
        .map(|i| (i.id, i.updated_ms))
        .collect();
    assert!(!bugs.is_empty());
    let r = run(&cfg, &sim, &[]).unwrap();
    assert_eq!(r.scopes.len(), 2);
    assert_covers(&staged_versions(dir.path(), "demo"), &demo, "demo");
    let staged_bugs = staged_versions(dir.path(), "alpha-bugs");
    assert_covers(&staged_bugs, &bugs, "alpha-bugs");
    assert_eq!(staged_bugs.len(), bugs.len(), "only the scope's issue type");
    for s in ["demo", "alpha-bugs"] {
        assert_eq!(end_pages(dir.path(), s).len(), 1, "{s}");
    }
    // Only one field catalogue for the run both scopes share.
    assert_eq!(
        std::fs::read_dir(dir.path().join("catalog"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(sim.stats().count("field", 200), 1);
}
