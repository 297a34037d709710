//! `run --stage all`, `sync`, the single stages, crash safety (kill -9 and
//! Ctrl-C), the lock, metrics and the warehouse against the simulator's
//! ground truth.

use std::collections::BTreeMap;
use std::process::Command;

use crate::common::*;
use jira_sim::{IssueUpdate, SimConfig, SimHandle, Simulator};

/// The contract tables compared between runs (state tables hold run times).
const TABLES: &[(&str, &str)] = &[
    ("issue", "issue_id"),
    ("issue_label", "issue_id, label"),
    ("issue_component", "issue_id, component_id"),
    ("issue_version", "issue_id, version_id, relation"),
    ("issue_link", "link_id"),
    ("changelog", "history_id"),
    ("changelog_item", "history_id, item_seq"),
    ("issue_field_value", "issue_id, field_id, ordinal"),
    ("field", "field_id"),
    ("project_version", "version_id"),
    ("project_component", "component_id"),
];

/// md5 of every row of every contract table, in key order.
pub(crate) fn digest(s: &mut TestSchema) -> BTreeMap<String, (i64, String)> {
    let mut out = BTreeMap::new();
    for (t, key) in TABLES {
        let row = s
            .client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY {key})), '') FROM \"{}\".{t} x",
                    s.name
                ),
                &[],
            )
            .unwrap();
        out.insert(t.to_string(), (row.get(0), row.get(1)));
    }
    out
}

fn sim(issues: u32, latency_ms: u64) -> SimHandle {
    Simulator::start(
        SimConfig::default()
            .issues(issues)
            .projects(2)
            .latency_ms(latency_ms)
            .port(0),
    )
    .unwrap()
}

fn config(sim: &SimHandle, schema: &str, page_size: u32) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = {page_size}\nconcurrency = 4\n[jira.retry]\nbase_delay_ms = 20\nmax_delay_ms = 500\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n\
         [[scope]]\nname = \"alpha\"\nproject = \"ALPHA\"\nissue_types = [\"Bug\", \"Story\", \"Task\"]\n",
        sim.url()
    )
}

/// Regression: a command that exited left its advisory lock to be freed
/// whenever PostgreSQL noticed the closed socket, so the next command could
/// still find it held (exit 5). Every command now releases it before it
/// exits: checked at once, with no waiting.
fn assert_lock_released(s: &mut TestSchema) {
    assert!(!lock_held(s), "the lock outlived the command that took it");
}

/// The reference: one uninterrupted `run` into a fresh schema.
fn reference(sim: &SimHandle) -> BTreeMap<String, (i64, String)> {
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(sim, &s.name, 50));
    run_ok(&w, sim, &["run"]);
    let d = digest(&mut s);
    assert!(d["issue"].0 > 0, "the reference run loaded nothing");
    d
}

#[test]
fn stage_all_equals_the_stages_run_one_by_one() {
    let sim = sim(1200, 0);
    let expected = reference(&sim);

    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    run_ok(&w, &sim, &["run", "--stage", "extract"]);
    assert_lock_released(&mut s);
    assert!(count_files(&w.path().join("staging/pages/demo")) > 0);
    assert_eq!(s.count("issue"), 0, "extract alone loads nothing");
    run_ok(&w, &sim, &["run", "--stage", "transform"]);
    assert_lock_released(&mut s);
    run_ok(&w, &sim, &["run", "--stage", "load"]);
    assert_lock_released(&mut s);
    assert_eq!(digest(&mut s), expected);
    // Everything moved to the archive; checkpoints set for both scopes.
    assert_eq!(count_files(&w.path().join("staging/pages/demo")), 0);
    assert!(count_files(&w.path().join("staging/archive/demo")) > 0);
    assert_eq!(s.count("checkpoint"), 2);
    // A second full run changes nothing in the warehouse.
    run_ok(&w, &sim, &["run"]);
    assert_lock_released(&mut s);
    assert_eq!(digest(&mut s), expected);
}

/// Edits `n` pseudo-random live issues of both projects in the simulator
/// (status, labels, summary: each edit moves `updated` to now).
fn edit_some(sim: &SimHandle, seed: &mut u64, n: usize) {
    let mut ids = sim.ids_in_project("DEMO");
    ids.extend(sim.ids_in_project("ALPHA"));
    let statuses = ["Open", "In Progress", "In Review", "Done"];
    for k in 0..n {
        let id = ids[(xorshift(seed) % ids.len() as u64) as usize];
        let upd = IssueUpdate::new()
            .status(statuses[k % statuses.len()])
            .add_label(format!("edit-{}", xorshift(seed) % 7))
            .summary(format!("edited {k} ({seed})"));
        sim.update_issue(id, &upd).unwrap();
    }
}

/// The last `run_history` row's outcome as `pipeline status` shows it.
fn last_outcome(w: &Workdir) -> String {
    status_json(w)["last_run"]["outcome"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The bounded kill loop: Jira changes between the attempts, and the rerun
/// that exits 0 leaves the warehouse equal to Jira at its own start (the
/// reference is taken afterwards, with no edit in between).
#[test]
fn kill_9_at_three_points_then_rerun_equals_an_uninterrupted_run() {
    let sim = sim(1500, 15);
    let mut seed = 0x2545f4914f6cdd1d_u64;

    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    let pages = w.path().join("staging/pages/demo");
    let archive = w.path().join("staging/archive/demo");
    let mut killed_mid_run = 0;
    // 1: while extracting (first pages staged); 2: after some pages were
    // loaded; 3: later still, during the other scope or the end.
    let points: [Box<dyn Fn() -> bool>; 3] = [
        Box::new(|| count_files(&pages) >= 2),
        Box::new(|| count_files(&archive) >= 3),
        Box::new(|| count_files(&archive) >= 12),
    ];
    for point in &points {
        let mut child = spawn(&w, &sim, &["run"]);
        if wait_for(&mut child, point) {
            child.kill().unwrap(); // SIGKILL
            killed_mid_run += 1;
        }
        let _ = child.wait();
        wait_lock_free(&mut s);
        edit_some(&sim, &mut seed, 150);
    }
    assert!(
        killed_mid_run >= 2,
        "the run finished before it could be killed"
    );
    assert_eq!(last_outcome(&w), "interrupted");
    run_ok(&w, &sim, &["run"]);
    assert_eq!(last_outcome(&w), "ok");
    let open: i64 = s
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".run_history WHERE outcome IS NULL OR ended_at IS NULL AND outcome <> 'interrupted'",
                s.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(open, 0, "killed runs left open in run_history");
    assert_eq!(digest(&mut s), reference(&sim));
    assert_eq!(count_files(&pages), 0, "pages left behind after the rerun");
}

/// `run --stage extract` that resumes an interrupted extract run catches up
/// too, for each scope on its own; the stages after it then give Jira as it
/// was when that extract started.
#[test]
fn stage_extract_that_resumes_catches_up_for_every_scope() {
    let sim = sim(2000, 10);
    let mut seed = 0x853c49e6748fea9b_u64;
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    let root = w.path().join("staging");
    let mut child = spawn(&w, &sim, &["run", "--stage", "extract"]);
    assert!(
        wait_for(&mut child, || {
            count_files(&root.join("pages/demo")) >= 2
                && count_files(&root.join("pages/alpha")) >= 2
        }),
        "the extract finished before it could be killed"
    );
    child.kill().unwrap();
    let _ = child.wait();
    wait_lock_free(&mut s);
    edit_some(&sim, &mut seed, 300);
    let out = run_ok(&w, &sim, &["run", "--stage", "extract"]);
    for scope in ["demo", "alpha"] {
        assert!(
            out.contains(&format!("scope {scope}: finished the backfill run")),
            "{out}"
        );
    }
    assert_eq!(out.matches("then caught up from").count(), 2, "{out}");
    run_ok(&w, &sim, &["run", "--stage", "transform"]);
    run_ok(&w, &sim, &["run", "--stage", "load"]);
    assert_eq!(digest(&mut s), reference(&sim));
}

/// Regression (issue 12): a backfill killed again and again while Jira
/// changes, then syncs killed too; the run that finally exits 0 finished an
/// interrupted run that started long before it, and must still leave the
/// warehouse as Jira was at its own start, not at the interrupted run's.
#[test]
fn a_run_that_finishes_an_interrupted_run_catches_up_to_its_own_start() {
    let sim = sim(3000, 10);
    let mut seed = 0x9e3779b97f4a7c15_u64;
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    let root = w.path().join("staging");
    let mut kills = 0;
    for attempt in 0..7 {
        let cmd = if attempt < 4 { "backfill" } else { "sync" };
        let mut child = spawn(&w, &sim, &[cmd]);
        if kill_at_random(&mut child, &root, &mut seed, 10) {
            kills += 1;
        }
        let _ = child.wait();
        wait_lock_free(&mut s);
        edit_some(&sim, &mut seed, 200);
    }
    assert!(kills >= 4, "only {kills} of 7 attempts were killed mid-run");

    // One deterministic catch-up: from an empty pages/ (a clean sync), a
    // backfill killed mid-extract, edits, then the clean run.
    run_ok(&w, &sim, &["sync"]);
    assert_eq!(last_outcome(&w), "ok");
    let pages = root.join("pages/demo");
    let mut child = spawn(&w, &sim, &["backfill"]);
    assert!(
        wait_for(&mut child, || count_files(&pages) >= 2),
        "the backfill finished before it could be killed"
    );
    child.kill().unwrap();
    let _ = child.wait();
    wait_lock_free(&mut s);
    edit_some(&sim, &mut seed, 300);

    assert_eq!(last_outcome(&w), "interrupted");
    let out = run_ok(&w, &sim, &["sync"]);
    assert!(out.contains("then caught up from"), "{out}");
    assert!(out.contains("finished the backfill run"), "{out}");
    // No edit since the clean run started: a fresh run is Jira at that moment.
    assert_eq!(digest(&mut s), reference(&sim));
}

#[test]
fn ctrl_c_stops_cleanly_and_the_rerun_completes() {
    let sim = sim(1200, 20);
    let expected = reference(&sim);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    let archive = w.path().join("staging/archive/demo");
    let mut child = spawn(&w, &sim, &["run"]);
    let running = wait_for(&mut child, || count_files(&archive) >= 2);
    assert!(running, "the run ended before Ctrl-C could be sent");
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    // Interrupted before the end: the checkpoint of at least one scope did not move.
    assert!(s.count("checkpoint") < 2, "the run was not interrupted");
    run_ok(&w, &sim, &["run"]);
    assert_eq!(digest(&mut s), expected);
}

#[test]
fn a_second_run_exits_5_at_once() {
    let s = TestSchema::initialised();
    let sim = sim(50, 0);
    let w = Workdir::new(&config(&sim, &s.name, 50));
    let mut holder = connect();
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&jira_pipeline_core::db::lock_key(&s.name)],
        )
        .unwrap();
    for args in [
        vec!["run"],
        vec!["sync"],
        vec!["run", "--stage", "load"],
        vec!["run", "--stage", "extract"],
    ] {
        let out = w
            .cmd()
            .env("JIRA_PAT", sim.token())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(err.contains("holds the lock"), "{err}");
    }
    assert_eq!(
        sim.stats().endpoint_total("search"),
        0,
        "nothing was fetched"
    );
}

#[test]
fn sync_after_edits_matches_the_simulator_and_metrics_match_the_summary() {
    let sim = sim(800, 0);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    run_ok(&w, &sim, &["backfill"]);

    // Edits: labels replaced, links removed, one issue moved to ALPHA.
    let ids = sim.ids_in_project("DEMO");
    for id in ids.iter().take(30) {
        sim.update_issue(
            *id,
            &IssueUpdate::new()
                .clear_labels()
                .add_label("edited")
                .remove_all_links()
                .status("Done"),
        )
        .unwrap();
    }
    let moved = ids[40];
    let new_key = sim.move_issue(moved, "ALPHA").unwrap();

    let metrics = w.path().join("m.prom");
    let out = run_ok(
        &w,
        &sim,
        &["sync", "--metrics-file", metrics.to_str().unwrap()],
    );
    assert!(out.contains("run finished"), "{out}");

    // Every issue of DEMO in the simulator is in the warehouse with the same
    // updated instant, key and labels.
    for issue in sim
        .ground_truth()
        .iter()
        .filter(|i| i.project_key == "DEMO")
    {
        let row = s
            .client
            .query_one(
                &format!(
                    "SELECT issue_key, (extract(epoch FROM updated) * 1000)::bigint,
                            coalesce((SELECT array_agg(label ORDER BY label) FROM \"{0}\".issue_label l WHERE l.issue_id = i.issue_id), '{{}}')
                       FROM \"{0}\".issue i WHERE issue_id = $1",
                    s.name
                ),
                &[&(issue.id as i64)],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), issue.key);
        assert_eq!(row.get::<_, i64>(1), issue.updated_ms, "{}", issue.key);
        let mut labels = issue.labels.clone();
        labels.sort();
        assert_eq!(row.get::<_, Vec<String>>(2), labels, "{}", issue.key);
    }
    let n_links: i64 = s
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".issue_link WHERE source_issue_id = ANY($1) OR target_issue_id = ANY($1)",
                s.name
            ),
            &[&ids.iter().take(30).map(|i| *i as i64).collect::<Vec<_>>()],
        )
        .unwrap()
        .get(0);
    assert_eq!(n_links, 0, "removed links must disappear");
    let moved_row = s
        .client
        .query_one(
            &format!(
                "SELECT issue_key, project_key FROM \"{}\".issue WHERE issue_id = $1",
                s.name
            ),
            &[&(moved as i64)],
        )
        .unwrap();
    let moved_type = sim.issue(moved).unwrap().issue_type_name().to_string();
    if ["Bug", "Story", "Task"].contains(&moved_type.as_str()) {
        assert_eq!(moved_row.get::<_, String>(0), new_key);
        assert_eq!(moved_row.get::<_, String>(1), "ALPHA");
    }

    // Metrics: valid OpenMetrics text whose counters match the stored run summary.
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let mut typed = std::collections::HashSet::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            let name = p.next().unwrap().to_string();
            assert!(matches!(p.next(), Some("counter" | "gauge")), "{line}");
            assert!(typed.insert(name), "family declared twice: {line}");
        } else if line.starts_with('#') {
            assert!(line.starts_with("# HELP ") || line == "# EOF", "{line}");
        } else {
            let (name_labels, value) = line.rsplit_once(' ').unwrap();
            let v: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            let family = name_labels.split('{').next().unwrap();
            let base = family.strip_suffix("_total").unwrap_or(family);
            assert!(typed.contains(base), "sample before its TYPE: {line}");
            assert!(family.starts_with("jira_pipeline_"), "{line}");
            samples.insert(name_labels.to_string(), v);
        }
    }
    let summary: serde_json::Value = s
        .client
        .query_one(
            &format!("SELECT summary FROM \"{}\".run_history WHERE command = 'sync' ORDER BY run_id DESC LIMIT 1", s.name),
            &[],
        )
        .unwrap()
        .get(0);
    let rows = summary["rows_by_table"].as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        let table = r[0].as_str().unwrap();
        let n = r[1].as_f64().unwrap();
        assert_eq!(
            samples[&format!("jira_pipeline_rows_total{{table=\"{table}\"}}")],
            n,
            "{table}"
        );
    }
    assert_eq!(
        samples["jira_pipeline_pages_total{stage=\"load\"}"],
        summary["load"]["pages"].as_f64().unwrap()
    );
    assert!(samples.contains_key("jira_pipeline_checkpoint_lag_seconds{scope=\"demo\"}"));

    // Another sync at once: the safety window fetches the edited issues
    // again; they arrive exactly as stored and are skipped, nothing written.
    let out = run_ok(&w, &sim, &["sync"]);
    assert!(
        out.contains("arrived exactly as stored and were skipped"),
        "{out}"
    );
    assert!(!out.contains("rows written"), "{out}");
    let summary: serde_json::Value = s
        .client
        .query_one(
            &format!(
                "SELECT summary FROM \"{}\".run_history ORDER BY run_id DESC LIMIT 1",
                s.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        summary["issues_unchanged"].as_u64().unwrap() >= 30,
        "{summary}"
    );
}

/// The README's quick start: `pipeline demo` (smaller, into a random schema).
#[test]
fn demo_runs_end_to_end() {
    let s = TestSchema::new();
    let w = Workdir::new("");
    let out = w
        .cmd()
        .args(["-q", "demo", "--issues", "600", "--schema", &s.name])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "issues carrying the 'demo-edited' label: X (edited in the simulator: Y)"
    let line = stdout
        .lines()
        .find(|l| l.contains("issues carrying the 'demo-edited' label"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{line}");
    assert!(nums[1] > 0 && nums[0] == nums[1], "{line}");
    assert!(stdout.contains("SELECT label, count(*)"), "{stdout}");
    // Two reports: each heading followed by its (indented) lines.
    for (heading, at_least) in [
        ("(report_time_in_status_category):", 5),
        ("(report_throughput_weekly):", 1),
    ] {
        let lines = stdout
            .lines()
            .skip_while(|l| !l.ends_with(heading))
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .count();
        assert!(lines >= at_least, "{heading} {lines} lines: {stdout}");
    }
}

#[test]
fn replay_prints_rows_and_never_rolls_an_issue_back() {
    let sim = sim(300, 0);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 50));
    run_ok(&w, &sim, &["run"]);

    // Dry run: one NDJSON object per issue row of the archived pages.
    let out = run_ok(
        &w,
        &sim,
        &[
            "replay",
            "--scope",
            "demo",
            "--dry-run",
            "--format",
            "ndjson",
            "--table",
            "issue",
        ],
    );
    let keys: std::collections::BTreeSet<String> = out
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["table"], "issue");
            v["issue_key"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(keys.len() as i64, {
        let n: i64 = s
            .client
            .query_one(
                &format!(
                    "SELECT count(*) FROM \"{}\".issue WHERE project_key = 'DEMO'",
                    s.name
                ),
                &[],
            )
            .unwrap()
            .get(0);
        n
    });
    let table = run_ok(
        &w,
        &sim,
        &[
            "replay",
            "--scope",
            "demo",
            "--dry-run",
            "--table",
            "issue_label",
        ],
    );
    assert!(table.contains("issue_id | label"), "{table}");

    // A newer version in the warehouse, then a replay of the old pages.
    let id = sim.ids_in_project("DEMO")[3];
    sim.update_issue(id, &IssueUpdate::new().summary("after the replay still"))
        .unwrap();
    run_ok(&w, &sim, &["sync"]);
    let before = digest(&mut s);
    let out = run_ok(&w, &sim, &["replay", "--scope", "demo"]);
    assert!(out.contains("older than the warehouse's ignored"), "{out}");
    let summary: String = s
        .client
        .query_one(
            &format!(
                "SELECT summary FROM \"{}\".issue WHERE issue_id = $1",
                s.name
            ),
            &[&(id as i64)],
        )
        .unwrap()
        .get(0);
    assert_eq!(summary, "after the replay still");
    assert_eq!(
        digest(&mut s),
        before,
        "a replay of loaded pages changed the warehouse"
    );
}
