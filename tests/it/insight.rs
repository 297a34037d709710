//! Insight commands (`preview`, `fields`, `plan`) against the simulator, run
//! as the real binary: table layout, JSON shape, CSV quoting, field-name
//! resolution, Jira's errors (exit 3), and plan numbers equal to what
//! `run --stage extract` then does.

use crate::common::*;
use jira_sim::{IssueUpdate, SimConfig, SimHandle, Simulator};
use predicates::prelude::*;
use unicode_width::UnicodeWidthStr;

fn sim(issues: u32) -> SimHandle {
    Simulator::start(SimConfig::default().issues(issues)).expect("simulator")
}

/// A config pointing at `sim`, with a staging dir inside the workdir.
fn config(sim: &SimHandle, schema: &str, jira_extra: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\n{jira_extra}\n[jira.retry]\nattempts = 2\nbase_delay_ms = 10\n\n\
         [database]\nschema = \"{schema}\"\n\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n",
        sim.url()
    )
}

/// The binary in `w`, with the simulator's token and no database.
fn cmd(w: &Workdir, sim: &SimHandle) -> assert_cmd::Command {
    let mut c = w.cmd();
    c.env("JIRA_PAT", sim.token()).env_remove("DATABASE_URL");
    c
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn preview_table_fits_the_terminal_and_cuts_with_an_ellipsis() {
    let s = sim(300);
    let w = Workdir::new(&config(&s, "jira", ""));
    let demo = s.ids_in_project("DEMO").len();
    for cols in [50usize, 80, 200] {
        let out = cmd(&w, &s)
            .env("COLUMNS", cols.to_string())
            .args([
                "preview",
                "--jql",
                "project = DEMO ORDER BY key ASC",
                "--fields",
                "summary,Story Points,status,labels",
                "--limit",
                "7",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        // Header, rule, 7 rows, footer.
        assert_eq!(lines.len(), 10, "{text}");
        for l in &lines {
            assert!(l.width() <= cols, "{cols}: {l:?} is {} wide", l.width());
        }
        assert!(lines[0].starts_with("Key "), "{}", lines[0]);
        assert!(lines[1].starts_with("------ "), "{}", lines[1]);
        assert!(lines[2].starts_with("DEMO-1 "), "{}", lines[2]);
        assert!(lines[8].starts_with("DEMO-7 "), "{}", lines[8]);
        assert_eq!(lines[9], format!("7 of {demo} issues"));
        if cols == 50 {
            assert!(text.contains('…'), "long summaries are cut: {text}");
        }
        if cols == 200 {
            assert!(lines[0].contains("Story Points"), "{}", lines[0]);
            // The full summary of DEMO-1 fits on a wide terminal.
            let id = s.ids_in_project("DEMO")[0];
            let summary = s.issue(id).unwrap().summary;
            assert!(lines[2].contains(&summary), "{} / {summary}", lines[2]);
        }
    }
}

#[test]
fn preview_json_has_raw_values_of_the_resolved_fields() {
    let s = sim(300);
    let w = Workdir::new(&config(&s, "jira", ""));
    let out = cmd(&w, &s)
        .args([
            "preview",
            "--jql",
            "project = DEMO ORDER BY key ASC",
            "--fields",
            "story points, LABELS,customfield_10103",
            "--limit",
            "5",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["jql"], "project = DEMO ORDER BY key ASC");
    assert_eq!(v["total"], s.ids_in_project("DEMO").len());
    let cols: Vec<(&str, &str)> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            ("customfield_10100", "Story Points"),
            ("labels", "Labels"),
            ("customfield_10103", "Platforms")
        ]
    );
    let issues = v["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 5);
    for i in issues {
        let id: u64 = i["id"].as_str().unwrap().parse().unwrap();
        let truth = s.issue(id).unwrap();
        assert_eq!(i["key"], truth.key);
        let f = i["fields"].as_object().unwrap();
        let mut keys: Vec<&String> = f.keys().collect();
        keys.sort();
        assert_eq!(keys, ["customfield_10100", "customfield_10103", "labels"]);
        let labels: Vec<&str> = f["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(labels, truth.labels);
    }
}

#[test]
fn preview_csv_quotes_commas_quotes_and_newlines() {
    let s = sim(30);
    let id = s.ids_in_project("DEMO")[0];
    let key = s.issue(id).unwrap().key;
    s.update_issue(
        id,
        &IssueUpdate::new().summary("He said \"hi\", then\nleft"),
    )
    .unwrap();
    let w = Workdir::new(&config(&s, "jira", ""));
    let out = cmd(&w, &s)
        .args([
            "preview",
            "--jql",
            &format!("key = {key}"),
            "--fields",
            "summary,status",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let status = s.issue(id).unwrap().status_name().to_string();
    assert_eq!(
        stdout(&out),
        format!("key,summary,status\n{key},\"He said \"\"hi\"\", then\nleft\",{status}\n")
    );
}

#[test]
fn preview_unknown_field_name_is_a_usage_error_with_suggestions() {
    let s = sim(30);
    let w = Workdir::new(&config(&s, "jira", ""));
    cmd(&w, &s)
        .args([
            "preview",
            "--jql",
            "project = DEMO",
            "--fields",
            "summary,Story Pints",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("\"Story Pints\"")
                .and(predicate::str::contains("Story Points"))
                .and(predicate::str::contains("customfield_10100")),
        );
}

#[test]
fn preview_bad_jql_shows_jiras_message_and_exits_3() {
    let s = sim(30);
    let w = Workdir::new(&config(&s, "jira", ""));
    cmd(&w, &s)
        .args(["preview", "--jql", "project = DEMO AND summary ="])
        .assert()
        .code(3)
        .stdout("")
        .stderr(
            predicate::str::contains("Error in the JQL Query")
                .and(predicate::str::contains("HTTP 400"))
                .and(predicate::str::contains("--jql")),
        );
}

#[test]
fn wrong_token_exits_3_for_every_insight_command() {
    let s = sim(30);
    let w = Workdir::new(&config(&s, "jira", ""));
    for args in [
        vec!["preview", "--jql", "project = DEMO"],
        vec!["fields"],
        vec!["plan"],
    ] {
        s.reset_auth_failures();
        cmd(&w, &s)
            .env("JIRA_PAT", "not-the-token")
            .args(&args)
            .assert()
            .code(3)
            .stderr(
                predicate::str::contains("JIRA_PAT")
                    .and(predicate::str::contains("not-the-token").not()),
            );
    }
}

#[test]
fn fields_lists_and_filters_the_catalogue() {
    let s = sim(30);
    let w = Workdir::new(&config(&s, "jira", ""));
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = cmd(&w, &s)
            .args(["fields", "--format", "json"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let all = json(&[]);
    let custom = json(&["--custom"]);
    let system = json(&["--system"]);
    assert_eq!(all.len(), custom.len() + system.len());
    assert!(!custom.is_empty() && !system.is_empty());
    assert!(custom.iter().all(|f| f["custom"] == true));
    assert!(system.iter().all(|f| f["custom"] == false));
    let sp = json(&["--match", "POINTS"]);
    assert_eq!(sp.len(), 1);
    assert_eq!(sp[0]["id"], "customfield_10100");
    assert_eq!(sp[0]["name"], "Story Points");
    assert_eq!(sp[0]["type"], "number");
    assert_eq!(
        sp[0]["custom_type"],
        "com.atlassian.jira.plugin.system.customfieldtypes:float"
    );
    let pl = json(&["--match", "customfield_10103"]);
    assert_eq!(pl[0]["items"], "option");
    // Table: fits, has the header; CSV: header and one row per field.
    let out = cmd(&w, &s)
        .env("COLUMNS", "60")
        .args(["fields", "--custom"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.lines().all(|l| l.width() <= 60), "{text}");
    assert!(text.starts_with("id "), "{text}");
    assert!(
        text.ends_with(&format!("{} fields\n", custom.len())),
        "{text}"
    );
    let out = cmd(&w, &s)
        .args(["fields", "--format", "csv", "--system"])
        .output()
        .unwrap();
    let csv = stdout(&out);
    assert!(
        csv.starts_with("id,name,custom,type,items,custom type\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), system.len() + 1);
    cmd(&w, &s)
        .args(["fields", "--custom", "--system"])
        .assert()
        .code(2);
}

/// `plan --format json` as a value.
fn plan_json(w: &Workdir, s: &SimHandle, db: bool) -> serde_json::Value {
    let mut c = cmd(w, s);
    if db {
        c.env("DATABASE_URL", database_url());
    }
    let out = c.args(["plan", "--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// From `run --stage extract`'s summary line of `scope`: (staged pages, slices).
fn run_scope_numbers(summary: &str, scope: &str) -> (u64, u64) {
    let line = summary
        .lines()
        .find(|l| l.starts_with(&format!("scope {scope}: ")))
        .unwrap_or_else(|| panic!("no line for scope {scope} in {summary}"));
    let num_before = |marker: &str| -> u64 {
        let head = &line[..line.find(marker).unwrap_or_else(|| panic!("{line}"))];
        head.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (num_before(" pages,"), num_before(" slices"))
}

#[test]
fn plan_numbers_equal_what_the_extract_run_does() {
    let mut schema = TestSchema::initialised();
    let s = sim(1500);
    let mut cfg = config(&s, &schema.name, "page_size = 20\nconcurrency = 4");
    cfg.push_str(
        "\n[[scope]]\nname = \"alpha\"\nproject = \"ALPHA\"\nissue_types = [\"Bug\", \"Story\"]\n",
    );
    let w = Workdir::new(&cfg);
    let plan = plan_json(&w, &s, true);
    assert!(
        plan["checkpoints"]
            .as_str()
            .unwrap()
            .contains("read from PostgreSQL"),
        "{plan}"
    );
    assert!(!w.path().join("staging").exists(), "plan wrote nothing");
    let scopes = plan["scopes"].as_array().unwrap();
    assert_eq!(scopes.len(), 2);
    let demo = &scopes[0];
    assert_eq!(demo["mode"], "backfill");
    assert_eq!(demo["issues"], s.ids_in_project("DEMO").len() as u64);
    let alpha_truth = s
        .ground_truth()
        .iter()
        .filter(|i| i.project_key == "ALPHA" && ["Bug", "Story"].contains(&i.issue_type_name()))
        .count() as u64;
    assert_eq!(scopes[1]["issues"], alpha_truth);
    assert!(
        scopes[1]["jql"]
            .as_str()
            .unwrap()
            .contains("issuetype in (\"Bug\", \"Story\")"),
        "{}",
        scopes[1]
    );
    let total_slices: u64 = scopes
        .iter()
        .map(|sc| sc["slices"].as_array().unwrap().len() as u64)
        .sum();
    assert!(
        demo["slices"].as_array().unwrap().len() > 1,
        "sliced: {demo}"
    );
    let planned_requests = plan["requests"].as_u64().unwrap();

    s.reset_stats();
    let out = w
        .cmd()
        .env("JIRA_PAT", s.token())
        .args(["run", "--stage", "extract"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary = stdout(&out);
    for sc in scopes {
        let name = sc["scope"].as_str().unwrap();
        let planned_slices = sc["slices"].as_array().unwrap().len() as u64;
        let (staged, slices) = run_scope_numbers(&summary, name);
        // Same slices.
        assert_eq!(slices, planned_slices, "{name}: {summary}");
        // Staged pages = page requests minus each slice's closing request
        // (which only repeats the last issue), within the pages actually needed.
        let page_requests = sc["page_requests"].as_u64().unwrap();
        assert!(
            (staged + slices).abs_diff(page_requests) <= slices,
            "{name}: plan {page_requests} page requests over {slices} slices; run staged {staged}"
        );
    }
    // Every request of the run was foreseen, within the pages actually needed.
    let stats = s.stats();
    assert!(
        stats.requests.abs_diff(planned_requests) <= total_slices,
        "plan {planned_requests} requests, run {} ({stats:?})",
        stats.requests
    );
    assert_eq!(schema.count("checkpoint"), 0, "extract alone loads nothing");
}

#[test]
fn plan_reads_the_checkpoint_and_plans_an_incremental_run() {
    let mut schema = TestSchema::initialised();
    let s = sim(300);
    let cursor = chrono::Utc::now() - chrono::Duration::days(400);
    schema
        .client
        .execute(
            &format!(
                "INSERT INTO \"{}\".checkpoint (scope, cursor) VALUES ('demo', $1)",
                schema.name
            ),
            &[&cursor],
        )
        .unwrap();
    let w = Workdir::new(&config(&s, &schema.name, ""));
    let plan = plan_json(&w, &s, true);
    let sc = &plan["scopes"][0];
    assert_eq!(sc["mode"], "incremental", "{plan}");
    let from: chrono::DateTime<chrono::Utc> = serde_json::from_value(sc["from"].clone()).unwrap();
    assert_eq!(
        (cursor - from).num_seconds(),
        15 * 60,
        "checkpoint minus the safety window"
    );
    let cut = cursor - chrono::Duration::minutes(15);
    let expected = s
        .ground_truth()
        .iter()
        .filter(|i| {
            i.project_key == "DEMO" && i.updated_ms >= cut.timestamp_millis() / 60_000 * 60_000
        })
        .count();
    assert_eq!(sc["issues"], expected as u64);
    assert!(sc["jql"].as_str().unwrap().contains("updated >= "), "{sc}");
    // --full ignores the checkpoint.
    let out = cmd(&w, &s)
        .env("DATABASE_URL", database_url())
        .args(["plan", "--full"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("--full: backfill"), "{out:?}");
}

#[test]
fn plan_without_a_database_assumes_a_backfill_and_says_so() {
    let s = sim(300);
    let w = Workdir::new(&config(&s, "jira", ""));
    let out = cmd(&w, &s).args(["plan"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("DATABASE_URL is not set"), "{text}");
    assert!(text.contains("scope demo: backfill"), "{text}");
    assert!(
        text.contains(&format!(
            "matches: {} issues",
            s.ids_in_project("DEMO").len()
        )),
        "{text}"
    );
    assert!(text.contains("estimated"), "{text}");
    assert!(!w.path().join("staging").exists(), "plan wrote nothing");
}

#[test]
fn plan_exits_3_when_jira_cannot_be_reached() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let w = Workdir::new(&format!(
        "[jira]\nbase_url = \"http://127.0.0.1:{port}\"\n[jira.retry]\nattempts = 1\n\n[[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n"
    ));
    w.cmd()
        .env("JIRA_PAT", "x")
        .env_remove("DATABASE_URL")
        .args(["plan"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("jira.base_url"));
}

#[test]
fn plan_uses_the_servers_page_cap() {
    let s = Simulator::start(SimConfig::default().issues(600).max_results(30)).unwrap();
    let w = Workdir::new(&config(&s, "jira", "page_size = 100"));
    let plan = plan_json(&w, &s, false);
    assert_eq!(plan["effective_page_size"], 30, "{plan}");
    let sc = &plan["scopes"][0];
    // 200 issues in one slice at 30 per page, each page repeating the last issue.
    assert_eq!(sc["issues"], 200);
    assert_eq!(sc["slices"].as_array().unwrap().len(), 1);
    assert_eq!(sc["page_requests"], 1 + 199_u64.div_ceil(29));
    let out = cmd(&w, &s).args(["plan"]).output().unwrap();
    assert!(
        stdout(&out).contains("page size 100 (the server caps it at 30)"),
        "{out:?}"
    );
}

#[test]
fn preview_pages_past_the_servers_cap_up_to_the_limit() {
    let s = Simulator::start(SimConfig::default().issues(300).max_results(20)).unwrap();
    let w = Workdir::new(&config(&s, "jira", ""));
    s.reset_stats();
    let out = cmd(&w, &s)
        .args([
            "preview",
            "--jql",
            "project = DEMO ORDER BY key ASC",
            "--limit",
            "45",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&str> = v["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (1..=45).map(|n| format!("DEMO-{n}")).collect();
    assert_eq!(keys, want);
    // The catalogue, then 20 + 20 + 5.
    assert_eq!(s.stats().endpoint_total("search"), 3);
    assert_eq!(s.stats().endpoint_total("field"), 1);
}

#[test]
fn plan_of_an_interrupted_run_counts_only_what_is_left() {
    let _schema = TestSchema::initialised();
    let schema = &_schema.name;
    let s = Simulator::start(SimConfig::default().issues(1500).latency_ms(150)).unwrap();
    let w = Workdir::new(&config(&s, schema, "page_size = 20\nconcurrency = 4"));
    let state = w.path().join("staging/state/demo.json");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("pipeline"))
        .current_dir(w.path())
        .env("JIRA_PAT", s.token())
        .env("DATABASE_URL", database_url())
        .args(["-q", "run", "--stage", "extract"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few pages are staged (polling the resume state, not timing).
    let staged = |v: &serde_json::Value| -> u64 {
        v["slices"]
            .as_array()
            .map(|a| a.iter().map(|x| x["pages"].as_u64().unwrap_or(0)).sum())
            .unwrap_or(0)
    };
    loop {
        if let Ok(text) = std::fs::read(&state)
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text)
            && staged(&v) >= 3
        {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "extract ended too early"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    s.set_latency_ms(0);
    let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(st["finished"], false, "the run was interrupted");
    let unfinished = st["slices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["done"] == false)
        .count();

    let plan = plan_json(&w, &s, true);
    let sc = &plan["scopes"][0];
    assert_eq!(sc["resumes"], st["run_id"], "{sc}");
    // A resumed run does not plan again; the catch-up run after it does.
    assert!(sc["catch_up_from"].is_string(), "{sc}");
    assert!(sc["planning_requests"].as_u64().unwrap() >= 1, "{sc}");
    assert!(
        sc["slices"].as_array().unwrap().len() > unfinished,
        "the catch-up's slices are planned too: {sc}"
    );
    assert_eq!(
        plan["setup_requests"], 8,
        "/myself, /serverInfo, the scope check (whose /field is every run's catalogue) and /status, /priority, /resolution"
    );
    let planned = plan["requests"].as_u64().unwrap();

    s.reset_stats();
    let out = w
        .cmd()
        .env("JIRA_PAT", s.token())
        .args(["run", "--stage", "extract"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("then caught up from"), "{out:?}");
    let run = s.stats().requests;
    assert!(
        run.abs_diff(planned) <= unfinished as u64,
        "plan {planned} requests, resumed run {run}"
    );
}
