//! HTTP-level tests of what happens to issues over their life: changelogs cut
//! in search results, archiving and restoring, moves (and moves back), and
//! deletion.

mod common;

use common::{get, ids, search};
use jira_sim::state::now_ms;
use jira_sim::{IssueUpdate, SimConfig, SimHandle, Simulator};
use serde_json::Value;

fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg.issues(300).projects(3).seed(7)).expect("simulator starts")
}

fn changelog_of(sim: &SimHandle, id: u64) -> Value {
    let page = search(
        sim.url(),
        &format!("id = {id}"),
        "&fields=updated&expand=changelog",
    );
    page["issues"][0]["changelog"].clone()
}

fn history_ids(changelog: &Value) -> Vec<u64> {
    changelog["histories"]
        .as_array()
        .expect("histories")
        .iter()
        .map(|h| h["id"].as_str().expect("id").parse().expect("numeric"))
        .collect()
}

#[test]
fn long_changelogs_are_cut_in_search_and_whole_on_get() {
    let sim = start(SimConfig::default().changelog_cut(Some(3)));
    let truth = sim.ground_truth();
    let long = truth
        .iter()
        .find(|i| i.histories.len() > 3)
        .expect("a long one");
    let short = truth
        .iter()
        .find(|i| (1..=3).contains(&i.histories.len()))
        .expect("a short one");

    let cl = changelog_of(&sim, long.id);
    assert_eq!(cl["startAt"], 0);
    assert_eq!(cl["maxResults"], 3);
    assert_eq!(cl["total"], long.histories.len());
    assert_eq!(history_ids(&cl), long.history_ids()[..3].to_vec());
    let cl = changelog_of(&sim, short.id);
    assert_eq!(cl["maxResults"], short.histories.len());
    assert_eq!(cl["total"], short.histories.len());

    // GET issue: whole, unless asked to cut too.
    let path = format!("/rest/api/2/issue/{}?expand=changelog", long.id);
    let whole = get(sim.url(), &path).json()["changelog"].clone();
    assert_eq!(whole["maxResults"], long.histories.len());
    assert_eq!(whole["total"], long.histories.len());
    assert_eq!(history_ids(&whole), long.history_ids());
    sim.set_changelog_cut_on_get(true);
    let cut = get(sim.url(), &path).json()["changelog"].clone();
    assert_eq!(
        (cut["maxResults"].clone(), cut["total"].clone()),
        (3.into(), long.histories.len().into())
    );
    sim.set_changelog_cut_on_get(false);

    // The same search after the setting changes is not served from the cache.
    sim.set_changelog_cut(None);
    let cl = changelog_of(&sim, long.id);
    assert_eq!(cl["maxResults"], long.histories.len());
    assert_eq!(history_ids(&cl), long.history_ids());
    sim.set_changelog_cut(Some(1));
    assert_eq!(
        history_ids(&changelog_of(&sim, long.id)),
        long.history_ids()[..1].to_vec()
    );
}

#[test]
fn changelogs_are_whole_by_default() {
    let sim = start(SimConfig::default());
    let long = sim
        .ground_truth()
        .into_iter()
        .find(|i| i.histories.len() > 20)
        .expect("a long one");
    let cl = changelog_of(&sim, long.id);
    assert_eq!(cl["maxResults"], cl["total"]);
    assert_eq!(history_ids(&cl), long.history_ids());
}

fn total(sim: &SimHandle, jql: &str) -> u64 {
    search(sim.url(), jql, "&maxResults=0")["total"]
        .as_u64()
        .expect("total")
}

#[test]
fn archived_issues_leave_search_but_not_get() {
    let sim = start(SimConfig::default());
    let all = total(&sim, "");
    let victim = sim
        .ground_truth()
        .into_iter()
        .find(|i| i.project_key == "DEMO" && i.parent.is_none() && i.subtasks.is_empty())
        .expect("a plain DEMO issue");
    let path = format!("/rest/api/2/issue/{}?expand=changelog", victim.id);
    let before = get(sim.url(), &path).body;

    sim.archive_issue(victim.id).expect("archives");
    assert_eq!(total(&sim, ""), all - 1);
    assert_eq!(total(&sim, &format!("id = {}", victim.id)), 0);
    assert_eq!(total(&sim, &format!("key = {}", victim.key)), 0);
    let demo = search(sim.url(), "project = DEMO", "&maxResults=100&fields=id");
    assert!(!ids(&demo).contains(&victim.id));
    let r = get(sim.url(), &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, before, "served unchanged");
    assert_eq!(sim.archived_ids(), vec![victim.id]);
    assert!(sim.ground_truth().iter().all(|i| i.id != victim.id));
    assert!(sim.truth_index().iter().all(|t| t.0 != victim.id));
    assert!(!sim.ids_in_project("DEMO").contains(&victim.id));
    let mut visited = 0;
    sim.visit_ground_truth(|_| visited += 1);
    assert_eq!(visited as u64, all - 1);
    assert_eq!(
        sim.issue(victim.id).expect("still there").updated_ms,
        victim.updated_ms
    );
    assert!(sim.deleted_ids().is_empty());
    // Not editable, not movable, not archivable twice.
    assert!(
        sim.update_issue(victim.id, &IssueUpdate::new().summary("x"))
            .is_err()
    );
    assert!(sim.move_issue(victim.id, "ALPHA").is_err());
    assert!(sim.archive_issue(victim.id).is_err());

    sim.restore_issue(victim.id).expect("restores");
    assert!(sim.restore_issue(victim.id).is_err());
    assert_eq!(total(&sim, ""), all);
    assert_eq!(total(&sim, &format!("id = {}", victim.id)), 1);
    assert_eq!(get(sim.url(), &path).body, before);
    assert_eq!(sim.issue(victim.id), Some(victim));
    assert!(sim.archived_ids().is_empty());
}

#[test]
fn archiving_a_parent_archives_its_subtasks() {
    let sim = start(SimConfig::default());
    let parent = sim
        .ground_truth()
        .into_iter()
        .find(|i| !i.subtasks.is_empty())
        .expect("a parent");
    let all = total(&sim, "");
    sim.archive_issue(parent.id).expect("archives");
    let mut want: Vec<u64> = std::iter::once(parent.index)
        .chain(parent.subtasks.iter().copied())
        .map(|i| 10_000 + i as u64)
        .collect();
    want.sort();
    assert_eq!(sim.archived_ids(), want);
    assert_eq!(total(&sim, ""), all - want.len() as u64);
    sim.restore_issue(parent.id).expect("restores");
    assert!(sim.archived_ids().is_empty());
    assert!(sim.archive_issue(99_999_999).is_err());
    sim.delete_issues(&[parent.id]).expect("deletes");
    assert!(sim.archive_issue(parent.id).is_err());
}

#[test]
fn moves_bump_updated_and_record_project_and_key() {
    let sim = start(SimConfig::default());
    let orig = sim
        .ground_truth()
        .into_iter()
        .find(|i| {
            i.project_key == "DEMO"
                && i.parent.is_none()
                && i.subtasks.is_empty()
                && !i.components.is_empty()
        })
        .expect("a plain DEMO issue with components");
    let t0 = now_ms();
    let alpha_key = sim.move_issue(orig.id, "ALPHA").expect("moves");
    let moved = sim.issue(orig.id).expect("same id");
    assert!(moved.updated_ms >= t0, "updated is now");
    assert_eq!(moved.key, alpha_key);
    let h = moved.histories.last().expect("a history");
    assert_eq!(h.created_ms, moved.updated_ms);
    let fields: Vec<&str> = h.items.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(fields, ["project", "Key"]);
    assert_eq!(h.items[0].from.as_deref(), Some("10000"));
    assert_eq!(h.items[0].to.as_deref(), Some("10001"));
    assert_eq!(h.items[1].from_string.as_deref(), Some(orig.key.as_str()));
    assert_eq!(h.items[1].to_string.as_deref(), Some(alpha_key.as_str()));

    // And back: a new DEMO key; every key it had still finds it.
    let t1 = now_ms();
    let demo_key = sim.move_issue(orig.id, "DEMO").expect("moves back");
    assert!(demo_key.starts_with("DEMO-") && demo_key != orig.key);
    let back = sim.issue(orig.id).expect("same id");
    assert!(back.updated_ms >= t1);
    let h = back.histories.last().expect("a history");
    assert_eq!(h.items[0].from.as_deref(), Some("10001"));
    assert_eq!(h.items[1].to_string.as_deref(), Some(demo_key.as_str()));
    assert!(back.components.is_empty() && back.fix_versions.is_empty());
    for k in [&orig.key, &alpha_key, &demo_key] {
        let v = get(sim.url(), &format!("/rest/api/2/issue/{k}")).json();
        assert_eq!(v["key"], demo_key.as_str());
        assert_eq!(v["id"], orig.id.to_string());
    }
    let demo = search(
        sim.url(),
        &format!("project = DEMO AND updated >= {t1}"),
        "&fields=id",
    );
    assert_eq!(ids(&demo), vec![orig.id]);
    assert!(sim.move_issue(orig.id, "DEMO").is_err(), "already there");
}

#[test]
fn deleted_issues_are_404_issue_does_not_exist() {
    let sim = start(SimConfig::default());
    let id = sim.ground_truth()[0].id;
    sim.delete_issues(&[id]).expect("deletes");
    for path in [
        format!("/rest/api/2/issue/{id}"),
        "/rest/api/2/issue/DEMO-1".to_string(),
        "/rest/api/2/issue/9".to_string(),
    ] {
        let r = get(sim.url(), &path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.json(),
            serde_json::json!({"errorMessages": ["Issue Does Not Exist"], "errors": {}})
        );
    }
}
