//! The faithful mirror (invariant 7) against the simulator: the census
//! (`pipeline reconcile`) marks deleted, archived and moved issues, revives
//! those that come back, marks nothing when it is not complete; changed
//! scope definitions are backfilled; cut changelogs are fetched whole or
//! quarantined; versions and components are current after every run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::*;
use jira_sim::{Fault, IssueUpdate, SimConfig, SimHandle, Simulator};

fn sim(issues: u32) -> SimHandle {
    Simulator::start(SimConfig::default().issues(issues).projects(3).port(0)).unwrap()
}

/// Two scopes (DEMO, ALPHA; BETA is in no scope), no automatic census
/// unless `every` says so.
fn config(sim: &SimHandle, schema: &str, every: u32, demo_extra: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\nconcurrency = 4\n\
         [jira.retry]\nattempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
         [sync]\nreconcile_every_hours = {every}\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n{demo_extra}\n\
         [[scope]]\nname = \"alpha\"\nproject = \"ALPHA\"\n",
        sim.url()
    )
}

/// `issue_id → (removed_reason or "live", scope)` of every stored issue.
fn marks(s: &mut TestSchema) -> BTreeMap<i64, (String, String)> {
    s.client
        .query(
            &format!(
                "SELECT issue_id, CASE WHEN deleted_at IS NULL THEN 'live' ELSE removed_reason END,
                        coalesce(scope, '')
                   FROM \"{}\".issue",
                s.name
            ),
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect()
}

fn reason(m: &BTreeMap<i64, (String, String)>, id: u64) -> &str {
    &m[&(id as i64)].0
}

/// `pipeline reconcile` in `w`: exit code and stdout + stderr.
fn reconcile(w: &Workdir, sim: &SimHandle) -> (Option<i32>, String) {
    reconcile_with(w, sim, &[])
}

fn reconcile_with(w: &Workdir, sim: &SimHandle, args: &[&str]) -> (Option<i32>, String) {
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .arg("reconcile")
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn census_marks_deleted_archived_and_moved_issues_and_revives_returns() {
    let sim = sim(400);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let demo = sim.ids_in_project("DEMO");
    let (deleted, archived, to_alpha, to_beta) = (&demo[0..3], &demo[3..5], demo[5], demo[6]);
    sim.delete_issues(deleted).unwrap();
    for id in archived {
        sim.archive_issue(*id).unwrap();
    }
    sim.move_issue(to_alpha, "ALPHA").unwrap();
    sim.move_issue(to_beta, "BETA").unwrap();

    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("census of scope demo"), "{out}");
    let m = marks(&mut s);
    for id in deleted {
        assert_eq!(reason(&m, *id), "deleted");
    }
    for id in archived.iter().chain([&to_beta]) {
        assert_eq!(reason(&m, *id), "out_of_scope");
    }
    // Moved into another configured scope: live, and that scope answers for it.
    assert_eq!(m[&(to_alpha as i64)], ("live".into(), "alpha".into()));
    let live = m.values().filter(|(r, _)| r == "live").count() as i64;
    assert_eq!(s.count("live_issue"), live);
    assert_eq!(live, m.len() as i64 - 6);
    // Rows of removed issues are kept.
    let kept: i64 = s
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".changelog WHERE issue_id = ANY($1)",
                s.name
            ),
            &[&deleted.iter().map(|i| *i as i64).collect::<Vec<_>>()],
        )
        .unwrap()
        .get(0);
    assert!(kept > 0, "a removed issue keeps its child rows");

    // Coming back: restored from the archive (no update: only a census sees
    // it), and moved back into DEMO (a sync sees it).
    sim.restore_issue(archived[0]).unwrap();
    sim.move_issue(to_beta, "DEMO").unwrap();
    run_ok(&w, &sim, &["sync"]);
    assert_eq!(reason(&marks(&mut s), to_beta), "live", "a sync revives");
    assert_eq!(reason(&marks(&mut s), archived[0]), "out_of_scope");
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    let m = marks(&mut s);
    assert_eq!(m[&(archived[0] as i64)], ("live".into(), "demo".into()));
    assert_eq!(reason(&m, archived[1]), "out_of_scope");
    assert!(out.contains("1 live again"), "{out}");
}

#[test]
fn a_census_with_nothing_to_mark_writes_no_issue_row() {
    let sim = sim(300);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let versions = |s: &mut TestSchema| -> String {
        s.client
            .query_one(
                &format!(
                    "SELECT md5(string_agg(xmin::text, ',' ORDER BY issue_id)) FROM \"{}\".issue",
                    s.name
                ),
                &[],
            )
            .unwrap()
            .get(0)
    };
    let before = versions(&mut s);
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("marked 0 deleted, 0 out of scope"), "{out}");
    assert_eq!(versions(&mut s), before, "no issue row was rewritten");
    assert_eq!(s.count("census"), 2, "one census record per scope");
}

#[test]
fn a_broken_census_marks_nothing_and_exits_non_zero() {
    let sim = sim(300);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let gone = sim.ids_in_project("DEMO")[..4].to_vec();
    sim.delete_issues(&gone).unwrap();
    // More server errors than the retry policy takes.
    sim.schedule_search_faults(Fault::Status(503), 50);
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("not complete, nothing marked"), "{out}");
    sim.clear_faults();
    assert!(marks(&mut s).values().all(|(r, _)| r == "live"));
    assert_eq!(s.count("census"), 0);

    sim.clear_faults();
    assert!(marks(&mut s).values().all(|(r, _)| r == "live"));
    assert_eq!(s.count("census"), 0);

    // A whole census of demo, counting its searches.
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    sim.set_search_hook(move |_, _| {
        c2.fetch_add(1, Ordering::SeqCst);
    });
    let (code, out) = reconcile_with(&w, &sim, &["--scope", "demo"]);
    assert_eq!(code, Some(0), "{out}");
    let searches = calls.load(Ordering::SeqCst);
    assert_eq!(deleted_ids(&mut s), sorted(&gone));

    // The same census again, but 20 issues it has listed are deleted just
    // before its last search (the second count): the count moves by more
    // than the changes it saw, so it marks nothing.
    let victims = sim.ids_in_project("DEMO")[..20].to_vec();
    let c3 = Arc::new(AtomicUsize::new(0));
    let c4 = c3.clone();
    let v2 = victims.clone();
    sim.set_search_hook(move |ctl, _| {
        if c4.fetch_add(1, Ordering::SeqCst) + 1 == searches {
            ctl.delete_issues(&v2).unwrap();
        }
    });
    let (code, out) = reconcile_with(&w, &sim, &["--scope", "demo"]);
    sim.clear_search_hook();
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("count moved"), "{out}");
    assert_eq!(deleted_ids(&mut s), sorted(&gone), "nothing more marked");

    // Whole again: the next census marks them.
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    let all: Vec<u64> = gone.iter().chain(&victims).copied().collect();
    assert_eq!(deleted_ids(&mut s), sorted(&all));
}

fn deleted_ids(s: &mut TestSchema) -> Vec<i64> {
    marks(s)
        .into_iter()
        .filter(|(_, (r, _))| r == "deleted")
        .map(|(id, _)| id)
        .collect()
}

fn sorted(ids: &[u64]) -> Vec<i64> {
    let mut v: Vec<i64> = ids.iter().map(|i| *i as i64).collect();
    v.sort_unstable();
    v
}

#[test]
fn a_census_under_edits_marks_exactly_the_deleted_issues() {
    let sim = sim(500);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let demo = sim.ids_in_project("DEMO");
    sim.delete_issues(&demo[..5]).unwrap();
    // Every search the census makes, one issue is edited (its `updated`
    // changes, which reorders nothing in a `created` listing) and every
    // fifth one a new issue is not involved: counts stay.
    let edit = demo[5..].to_vec();
    sim.set_search_hook(move |ctl, n| {
        let id = edit[(n as usize) % edit.len()];
        let _ = ctl.update_issue(id, &IssueUpdate::new().summary(format!("edit {n}")));
    });
    let (code, out) = reconcile(&w, &sim);
    sim.clear_search_hook();
    assert_eq!(code, Some(0), "{out}");
    let m = marks(&mut s);
    let deleted: Vec<i64> = m
        .iter()
        .filter(|(_, (r, _))| r == "deleted")
        .map(|(id, _)| *id)
        .collect();
    let want: Vec<i64> = demo[..5].iter().map(|i| *i as i64).collect();
    assert_eq!(deleted, want);
    assert_eq!(m.values().filter(|(r, _)| r != "live").count(), 5);
}

#[test]
fn sync_takes_the_census_when_it_is_due_and_warns_when_it_breaks() {
    let sim = sim(300);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 24, ""));
    let out = run_ok(&w, &sim, &["sync"]);
    assert!(out.contains("census of scope demo"), "{out}");
    assert_eq!(s.count("census"), 2);
    let gone = sim.ids_in_project("ALPHA")[0];
    sim.delete_issues(&[gone]).unwrap();
    // Not due again within 24 hours: nothing marked.
    let out = run_ok(&w, &sim, &["sync"]);
    assert!(!out.contains("census of scope"), "{out}");
    assert_eq!(reason(&marks(&mut s), gone), "live");
    // Due (an old record): the census runs and marks it.
    s.client
        .batch_execute(&format!(
            "UPDATE \"{}\".census SET finished_at = now() - interval '25 hours'",
            s.name
        ))
        .unwrap();
    let out = run_ok(&w, &sim, &["sync"]);
    assert!(out.contains("marked 1 deleted"), "{out}");
    assert_eq!(reason(&marks(&mut s), gone), "deleted");
}

#[test]
fn widened_and_narrowed_scopes_are_backfilled_and_their_leavers_marked() {
    let sim = sim(400);
    let mut s = TestSchema::initialised();
    let narrow = "issue_types = [\"Bug\"]";
    let w = Workdir::new(&config(&sim, &s.name, 0, narrow));
    run_ok(&w, &sim, &["run"]);
    let types = |s: &mut TestSchema| -> Vec<String> {
        s.client
            .query(
                &format!(
                    "SELECT DISTINCT issue_type FROM \"{}\".live_issue WHERE project_key = 'DEMO' ORDER BY 1",
                    s.name
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    assert_eq!(types(&mut s), vec!["Bug".to_string()]);

    // Widened: the next sync backfills the scope, says why, and loads
    // every issue of the new definition (old, unchanged ones too).
    std::fs::write(w.config_path(), config(&sim, &s.name, 0, "")).unwrap();
    let plan = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .args(["plan", "--scope", "demo"])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("definition"),
        "plan shows the pending change: {plan}"
    );
    let status = status_json(&w);
    assert!(
        status.to_string().contains("fingerprint"),
        "status shows the pending change: {status}"
    );
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .arg("sync")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("definition changed"), "{text}");
    let all_demo = sim
        .ground_truth()
        .iter()
        .filter(|i| i.project_key == "DEMO")
        .count() as i64;
    let stored: i64 = s
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".live_issue WHERE project_key = 'DEMO'",
                s.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, all_demo);
    assert!(types(&mut s).len() > 1);

    // Narrowed again: backfilled, and the census marks the leavers.
    std::fs::write(w.config_path(), config(&sim, &s.name, 0, narrow)).unwrap();
    run_ok(&w, &sim, &["sync"]);
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(types(&mut s), vec!["Bug".to_string()]);
    let leavers: i64 = s
        .client
        .query_one(
            &format!(
                "SELECT count(*) FROM \"{}\".issue WHERE removed_reason = 'out_of_scope'",
                s.name
            ),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(leavers > 0);
}

#[test]
fn cut_changelogs_are_fetched_whole_or_quarantined() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(300)
            .projects(2)
            .changelog_cut(Some(1))
            .port(0),
    )
    .unwrap();
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    let out = run_ok(&w, &sim, &["run"]);
    assert!(out.contains("fetched alone"), "{out}");
    let truth: i64 = sim
        .ground_truth()
        .iter()
        .filter(|i| i.project_key != "BETA")
        .map(|i| i.histories.len() as i64)
        .sum();
    assert_eq!(s.count("changelog"), truth, "every history is loaded");

    // Still cut when fetched alone: quarantined with its reason, exit 4.
    sim.set_changelog_cut_on_get(true);
    let id = sim
        .ground_truth()
        .iter()
        .find(|i| i.project_key == "DEMO" && i.histories.len() > 1)
        .map(|i| i.id)
        .unwrap();
    sim.update_issue(id, &IssueUpdate::new().summary("edited"))
        .unwrap();
    let out = w
        .cmd()
        .env("JIRA_PAT", sim.token())
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let reason: String = s
        .client
        .query_one(
            &format!("SELECT reason FROM \"{}\".quarantine", s.name),
            &[],
        )
        .unwrap()
        .get(0);
    assert!(reason.contains("fetched alone"), "{reason}");
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
    assert_ne!(summary, "edited", "a short history is never loaded");
}

#[test]
fn released_and_renamed_versions_and_components_are_current_after_a_sync() {
    let sim = sim(200);
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let version = sim
        .project_versions("DEMO")
        .into_iter()
        .find(|v| !v.released)
        .unwrap();
    let component = sim.project_components("DEMO").remove(0);
    let n_versions: i64 =
        sim.project_versions("DEMO").len() as i64 + sim.project_versions("ALPHA").len() as i64;
    assert_eq!(s.count("project_version"), n_versions);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    sim.release_version(version.id, day).unwrap();
    sim.rename_version(version.id, "renamed 9.9").unwrap();
    sim.rename_component(component.id, "Renamed API").unwrap();
    // No issue changed: the sync reads no issue, yet the dimensions follow.
    run_ok(&w, &sim, &["sync"]);
    let row = s
        .client
        .query_one(
            &format!(
                "SELECT name, released, release_date FROM \"{}\".project_version WHERE version_id = $1",
                s.name
            ),
            &[&(version.id as i64)],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "renamed 9.9");
    assert!(row.get::<_, bool>(1));
    assert_eq!(row.get::<_, chrono::NaiveDate>(2), day);
    let name: String = s
        .client
        .query_one(
            &format!(
                "SELECT name FROM \"{}\".project_component WHERE component_id = $1",
                s.name
            ),
            &[&(component.id as i64)],
        )
        .unwrap()
        .get(0);
    assert_eq!(name, "Renamed API");
}

#[test]
fn kill_9_during_a_census_then_rerun_gives_the_same_marks() {
    let sim = Simulator::start(
        SimConfig::default()
            .issues(1500)
            .projects(3)
            .latency_ms(5)
            .port(0),
    )
    .unwrap();
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name, 0, ""));
    run_ok(&w, &sim, &["run"]);
    let gone = sim.ids_in_project("DEMO")[..10].to_vec();
    sim.delete_issues(&gone).unwrap();
    sim.archive_issue(sim.ids_in_project("ALPHA")[0]).unwrap();
    let mut seed = 0x2545f4914f6cdd1d_u64;
    let mut kills = 0;
    for _ in 0..3 {
        let base = sim.stats().endpoint_total("search");
        let wait = 2 + xorshift(&mut seed) % 20;
        let mut child = spawn(&w, &sim, &["reconcile"]);
        let killed = wait_for(&mut child, || {
            sim.stats().endpoint_total("search") >= base + wait
        });
        if !killed {
            break;
        }
        // Each scope's census commits whole or not at all: a kill leaves
        // whole scopes marked or none; the rerun finishes the rest.
        child.kill().unwrap();
        kills += 1;
        let _ = child.wait();
        wait_lock_free(&mut s);
    }
    assert!(kills > 0, "no kill landed mid-census");
    let (code, out) = reconcile(&w, &sim);
    assert_eq!(code, Some(0), "{out}");
    let after_kills = marks(&mut s);

    // The same Jira, a warehouse that never saw a kill.
    let mut r = TestSchema::initialised();
    let w2 = Workdir::new(&config(&sim, &r.name, 0, ""));
    run_ok(&w2, &sim, &["run"]);
    let (code, out) = reconcile(&w2, &sim);
    assert_eq!(code, Some(0), "{out}");
    // The reference loaded after the deletions: the deleted issues are
    // absent there, marked here; everything else is equal.
    let mut want = marks(&mut r);
    for id in &gone {
        want.insert(*id as i64, ("deleted".into(), "demo".into()));
    }
    let archived = sim.archived_ids()[0] as i64;
    want.insert(archived, ("out_of_scope".into(), "alpha".into()));
    assert_eq!(after_kills, want);
}
