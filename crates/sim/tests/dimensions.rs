//! HTTP-level tests of the dimension endpoints (projects, versions,
//! components, statuses, priorities, issue types, resolutions), their ground
//! truth, the version and component mutations, and their admin endpoints.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use common::{get, get_anonymous, post, request, search};
use jira_sim::{ComponentTruth, Fault, SimConfig, SimHandle, Simulator, VersionTruth};
use serde_json::{Value, json};

fn start() -> SimHandle {
    Simulator::start(SimConfig::default().issues(300).projects(3).seed(7))
        .expect("simulator starts")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a yyyy-MM-dd date")
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(|k| k.as_str())
        .collect()
}

/// A served version equals its truth, member by member.
fn check_version(j: &Value, t: &VersionTruth) {
    assert_eq!(j["self"], t.self_url);
    assert_eq!(j["id"], t.id.to_string());
    assert_eq!(j["description"].as_str(), t.description.as_deref());
    assert_eq!(j["name"], t.name);
    assert_eq!(j["archived"], t.archived);
    assert_eq!(j["released"], t.released);
    assert_eq!(j["startDate"].as_str().map(date), t.start_date);
    assert_eq!(j["releaseDate"].as_str().map(date), t.release_date);
    assert_eq!(j["overdue"].as_bool(), t.overdue);
    assert_eq!(j["userStartDate"].as_str(), t.user_start_date.as_deref());
    assert_eq!(
        j["userReleaseDate"].as_str(),
        t.user_release_date.as_deref()
    );
    assert_eq!(j["projectId"], t.project_id);
    let mut want = BTreeSet::from(["self", "id", "name", "archived", "released", "projectId"]);
    for (k, present) in [
        ("description", t.description.is_some()),
        ("startDate", t.start_date.is_some()),
        ("userStartDate", t.start_date.is_some()),
        ("releaseDate", t.release_date.is_some()),
        ("userReleaseDate", t.release_date.is_some()),
        ("overdue", t.overdue.is_some()),
    ] {
        if present {
            want.insert(k);
        }
    }
    assert_eq!(keys(j), want, "{j}");
}

/// A served component equals its truth, member by member.
fn check_component(j: &Value, t: &ComponentTruth) {
    assert_eq!(j["self"], t.self_url);
    assert_eq!(j["id"], t.id.to_string());
    assert_eq!(j["name"], t.name);
    assert_eq!(j["description"].as_str(), t.description.as_deref());
    assert_eq!(j["assigneeType"], t.assignee_type);
    assert_eq!(j["isAssigneeTypeValid"], t.is_assignee_type_valid);
    assert_eq!(j["projectId"], t.project_id);
    assert_eq!(j["project"], t.project);
    match t.lead {
        Some(u) => {
            assert_eq!(
                keys(&j["lead"]),
                BTreeSet::from(["self", "key", "name", "displayName", "active"])
            );
            assert_eq!(j["lead"]["name"], u.name);
            assert_eq!(j["lead"]["key"], u.key);
            assert_eq!(j["lead"]["displayName"], u.display_name);
            assert_eq!(j["lead"]["active"], u.active);
        }
        None => assert!(j.get("lead").is_none()),
    }
}

#[test]
fn versions_and_components_match_their_truth() {
    let sim = start();
    for key in ["DEMO", "ALPHA", "BETA", "10001"] {
        let vs = get(sim.url(), &format!("/rest/api/2/project/{key}/versions")).json();
        let truth = sim.project_versions(key);
        assert_eq!(vs.as_array().expect("array").len(), truth.len());
        assert!(!truth.is_empty());
        for (j, t) in vs.as_array().expect("array").iter().zip(&truth) {
            check_version(j, t);
        }
        let cs = get(sim.url(), &format!("/rest/api/2/project/{key}/components")).json();
        let truth = sim.project_components(key);
        assert_eq!(cs.as_array().expect("array").len(), truth.len());
        for (j, t) in cs.as_array().expect("array").iter().zip(&truth) {
            check_component(j, t);
        }
    }
    let all = sim.project_versions("DEMO");
    assert!(all.iter().any(|v| v.description.is_none()));
    assert!(
        all.iter()
            .any(|v| v.release_date.is_none() && v.start_date.is_none())
    );
    assert!(all.iter().any(|v| !v.released && v.overdue.is_some()));
    let v0 = &all[0];
    assert_eq!(
        v0.user_release_date,
        v0.release_date.map(|d| d.format("%d/%b/%y").to_string())
    );
    let cs = sim.project_components("DEMO");
    assert!(cs.iter().any(|c| c.lead.is_none()) && cs.iter().any(|c| c.lead.is_some()));
    assert!(cs.iter().any(|c| c.description.is_none()));

    for (path, msg) in [
        (
            "/rest/api/2/project/NOPE/versions",
            "No project could be found with key 'NOPE'.",
        ),
        (
            "/rest/api/2/project/NOPE/components",
            "No project could be found with key 'NOPE'.",
        ),
        (
            "/rest/api/2/project/NOPE",
            "No project could be found with key 'NOPE'.",
        ),
        (
            "/rest/api/2/project/42/versions",
            "No project could be found with id '42'.",
        ),
    ] {
        let r = get(sim.url(), path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json(), json!({"errorMessages": [msg], "errors": {}}));
    }
    assert!(sim.project_versions("NOPE").is_empty());
}

/// (id → name) of a dimension list.
fn by_id(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|x| {
            (
                x["id"].as_str().expect("string id").to_string(),
                x["name"].as_str().expect("name").to_string(),
            )
        })
        .collect()
}

#[test]
fn dimension_ids_are_the_ids_issue_bodies_carry() {
    let sim = start();
    let statuses = by_id(&get(sim.url(), "/rest/api/2/status").json());
    let priorities = by_id(&get(sim.url(), "/rest/api/2/priority").json());
    let types = by_id(&get(sim.url(), "/rest/api/2/issuetype").json());
    let resolutions = by_id(&get(sim.url(), "/rest/api/2/resolution").json());
    let projects = by_id(&get(sim.url(), "/rest/api/2/project").json());
    assert_eq!(projects.len(), 3);
    let mut seen = BTreeSet::new();
    for start_at in [0, 100, 200] {
        let page = search(
            sim.url(),
            "",
            &format!("&startAt={start_at}&maxResults=100"),
        );
        for i in page["issues"].as_array().expect("issues") {
            let f = &i["fields"];
            for (what, list) in [
                ("status", &statuses),
                ("priority", &priorities),
                ("issuetype", &types),
                ("resolution", &resolutions),
                ("project", &projects),
            ] {
                if f[what].is_null() {
                    continue;
                }
                let id = f[what]["id"].as_str().expect("id").to_string();
                assert_eq!(list.get(&id).map(String::as_str), f[what]["name"].as_str());
                seen.insert(what);
            }
            let key = f["project"]["key"].as_str().expect("key");
            let versions =
                by_id(&get(sim.url(), &format!("/rest/api/2/project/{key}/versions")).json());
            let components =
                by_id(&get(sim.url(), &format!("/rest/api/2/project/{key}/components")).json());
            for (field, list) in [
                ("fixVersions", &versions),
                ("versions", &versions),
                ("components", &components),
            ] {
                for x in f[field].as_array().expect("array") {
                    let id = x["id"].as_str().expect("id");
                    assert_eq!(list.get(id).map(String::as_str), x["name"].as_str());
                }
            }
        }
    }
    assert_eq!(seen.len(), 5);
}

#[test]
fn dimension_shapes_are_jira_dc() {
    let sim = start();
    let s = get(sim.url(), "/rest/api/2/status").json();
    assert_eq!(
        keys(&s[0]),
        BTreeSet::from([
            "self",
            "description",
            "iconUrl",
            "name",
            "id",
            "statusCategory"
        ])
    );
    assert_eq!(s[0]["statusCategory"]["key"], "new");
    assert_eq!(s[0]["statusCategory"]["id"], 2);
    let p = get(sim.url(), "/rest/api/2/priority").json();
    assert_eq!(
        keys(&p[0]),
        BTreeSet::from([
            "self",
            "statusColor",
            "description",
            "iconUrl",
            "name",
            "id"
        ])
    );
    let t = get(sim.url(), "/rest/api/2/issuetype").json();
    assert_eq!(
        keys(&t[0]),
        BTreeSet::from([
            "self",
            "id",
            "description",
            "iconUrl",
            "name",
            "subtask",
            "avatarId"
        ])
    );
    assert!(
        t.as_array()
            .expect("array")
            .iter()
            .any(|x| x["subtask"] == true)
    );
    let r = get(sim.url(), "/rest/api/2/resolution").json();
    assert_eq!(
        keys(&r[0]),
        BTreeSet::from(["self", "id", "description", "name"])
    );
}

#[test]
fn project_shapes_are_jira_dc() {
    let sim = start();
    let s = get(sim.url(), "/rest/api/2/status").json();
    let t = get(sim.url(), "/rest/api/2/issuetype").json();
    let list = get(sim.url(), "/rest/api/2/project").json();
    assert_eq!(list[0]["key"], "DEMO");
    assert_eq!(list[0]["id"], "10000");
    assert_eq!(list[0]["projectTypeKey"], "software");
    assert!(list[0]["projectCategory"]["name"].is_string());
    assert!(list[2].get("projectCategory").is_none());
    let one = get(sim.url(), "/rest/api/2/project/ALPHA").json();
    assert_eq!(one["id"], "10001");
    assert_eq!(one["key"], "ALPHA");
    assert_eq!(
        one["components"],
        get(sim.url(), "/rest/api/2/project/ALPHA/components").json()
    );
    assert_eq!(
        one["versions"],
        get(sim.url(), "/rest/api/2/project/10001/versions").json()
    );
    assert_eq!(one["issueTypes"], t);
    assert!(one["lead"]["name"].is_string());
    // The issue body's project carries the same category.
    let body = get(sim.url(), "/rest/api/2/issue/DEMO-1?fields=project").json();
    assert_eq!(
        body["fields"]["project"]["projectCategory"],
        list[0]["projectCategory"]
    );

    // Anonymous: no browsable projects; the global lists are public.
    assert_eq!(
        get_anonymous(sim.url(), "/rest/api/2/project").json(),
        json!([])
    );
    assert_eq!(
        get_anonymous(sim.url(), "/rest/api/2/project/DEMO/versions").status,
        404
    );
    assert_eq!(get_anonymous(sim.url(), "/rest/api/2/status").json(), s);
    assert_eq!(
        request(sim.url(), "POST", "/rest/api/2/status", Some("{}")).status,
        405
    );
    assert_eq!(
        get(sim.url(), "/rest/api/2/project/DEMO/nothing").status,
        404
    );
}

#[test]
fn dimension_endpoints_are_counted_and_faulted() {
    let sim = start();
    sim.reset_stats();
    for p in [
        "/rest/api/2/project",
        "/rest/api/2/project/DEMO",
        "/rest/api/2/project/DEMO/versions",
        "/rest/api/2/project/DEMO/components",
        "/rest/api/2/status",
        "/rest/api/2/priority",
        "/rest/api/2/issuetype",
        "/rest/api/2/resolution",
    ] {
        assert_eq!(get(sim.url(), p).status, 200, "{p}");
    }
    let st = sim.stats();
    for ep in [
        "project",
        "versions",
        "components",
        "status",
        "priority",
        "issuetype",
        "resolution",
    ] {
        assert!(st.count(ep, 200) >= 1, "{ep}: {:?}", st.by_endpoint);
    }
    assert_eq!(st.count("project", 200), 2);
    assert_eq!(st.count("other", 200), 0);
    sim.schedule_faults(Fault::Status(503), 1);
    assert_eq!(
        get(sim.url(), "/rest/api/2/project/DEMO/versions").status,
        503
    );
    assert_eq!(sim.stats().count("versions", 503), 1);
}

#[test]
fn renames_show_in_issue_bodies_without_touching_issues() {
    let sim = start();
    let issue = sim
        .ground_truth()
        .into_iter()
        .find(|i| i.project_key == "DEMO" && !i.fix_versions.is_empty() && !i.components.is_empty())
        .expect("a DEMO issue with a fix version and a component");
    let (vid, _) = issue.fix_versions[0].clone();
    let (cid, _) = issue.components[0].clone();
    let path = format!("/rest/api/2/issue/{}?expand=changelog", issue.id);
    let before = get(sim.url(), &path).json();

    sim.rename_version(vid, "Renamed ✓").expect("renames");
    sim.rename_component(cid, "Core \"platform\"")
        .expect("renames");
    sim.archive_version(vid).expect("archives");
    let after = get(sim.url(), &path).json();
    let fv = &after["fields"]["fixVersions"][0];
    assert_eq!(
        (fv["id"].as_str(), fv["name"].as_str()),
        (Some(vid.to_string().as_str()), Some("Renamed ✓"))
    );
    assert_eq!(fv["archived"], true);
    let comp = after["fields"]["components"]
        .as_array()
        .expect("array")
        .iter()
        .find(|c| c["id"].as_str() == Some(cid.to_string().as_str()))
        .expect("the component")
        .clone();
    assert_eq!(comp["name"], "Core \"platform\"");
    assert_eq!(after["fields"]["updated"], before["fields"]["updated"]);
    assert_eq!(
        after["changelog"], before["changelog"],
        "history is not rewritten"
    );
    let t = sim.issue(issue.id).expect("the issue");
    assert_eq!(t.updated_ms, issue.updated_ms);
    assert_eq!(t.fix_versions[0], (vid, "Renamed ✓".to_string()));
    let v = sim
        .project_versions("DEMO")
        .into_iter()
        .find(|v| v.id == vid)
        .expect("v");
    assert!(v.archived && v.name == "Renamed ✓");
    // No issue was touched: none is updated after the generated data ends.
    let jql = format!("updated > {}", jira_sim::data::END_MS);
    assert_eq!(search(sim.url(), &jql, "&maxResults=0")["total"], 0);

    // Errors: a name another version has, empty names, unknown ids and users.
    let other = sim
        .project_versions("DEMO")
        .into_iter()
        .find(|x| x.id != vid)
        .expect("v");
    assert!(sim.rename_version(vid, &other.name.to_uppercase()).is_err());
    assert!(sim.rename_version(vid, " ").is_err());
    assert!(sim.rename_version(1, "x").is_err());
    let other_c = sim
        .project_components("DEMO")
        .into_iter()
        .find(|c| c.id != cid)
        .expect("c");
    assert!(sim.rename_component(cid, &other_c.name).is_err());
    assert!(sim.set_component_lead(cid, Some("nobody")).is_err());
    assert!(sim.archive_version(7).is_err());
    // The same name in another project is fine.
    let alpha = sim.project_versions("ALPHA");
    sim.rename_version(alpha[0].id, "Renamed ✓")
        .expect("per project");
}

#[test]
fn releases_and_leads_change_the_truth_only() {
    let sim = start();
    let unreleased = sim
        .project_versions("BETA")
        .into_iter()
        .find(|v| !v.released)
        .expect("an unreleased version");
    let truth_before = sim.truth_index();
    sim.release_version(unreleased.id, date("2024-03-01"))
        .expect("releases");
    let v = sim
        .project_versions("BETA")
        .into_iter()
        .find(|v| v.id == unreleased.id)
        .expect("v");
    assert!(v.released);
    assert_eq!(v.release_date, Some(date("2024-03-01")));
    assert_eq!(v.user_release_date.as_deref(), Some("01/Mar/24"));
    assert_eq!(v.overdue, None);
    let c = sim.project_components("BETA")[0].clone();
    sim.set_component_lead(c.id, Some("zoe")).expect("a lead");
    let now = sim.project_components("BETA")[0].clone();
    assert_eq!(now.lead.map(|u| u.name), Some("zoe"));
    sim.set_component_lead(c.id, None).expect("no lead");
    assert_eq!(sim.project_components("BETA")[0].lead, None);
    assert_eq!(sim.truth_index(), truth_before);
}

#[test]
fn admin_endpoints_script_the_dimension_mutations() {
    let sim = start();
    let v = sim.project_versions("DEMO")[6].clone();
    let c = sim.project_components("DEMO")[2].clone();
    let ok = |path: &str, body: Value| {
        let r = post(sim.url(), path, &body);
        assert_eq!(
            r.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
    };
    ok(
        "/_sim/version/release",
        json!({"id": v.id, "date": "2024-03-01"}),
    );
    ok("/_sim/version/rename", json!({"id": v.id, "name": "9.9"}));
    ok("/_sim/version/archive", json!({"id": v.id}));
    ok(
        "/_sim/component/rename",
        json!({"id": c.id, "name": "Storage"}),
    );
    ok("/_sim/component/lead", json!({"id": c.id, "lead": "alice"}));
    let now = sim.project_versions("DEMO")[6].clone();
    assert!(now.released && now.archived && now.name == "9.9");
    let comp = sim.project_components("DEMO")[2].clone();
    assert_eq!(
        (comp.name.as_str(), comp.lead.map(|u| u.name)),
        ("Storage", Some("alice"))
    );
    ok("/_sim/component/lead", json!({"id": c.id, "lead": null}));
    assert_eq!(sim.project_components("DEMO")[2].lead, None);
    let bad = post(
        sim.url(),
        "/_sim/version/release",
        &json!({"id": v.id, "date": "March"}),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(
        post(
            sim.url(),
            "/_sim/version/rename",
            &json!({"id": 1, "name": "x"})
        )
        .status,
        400
    );
    assert_eq!(post(sim.url(), "/_sim/nothing", &json!({})).status, 404);

    // Archiving and the changelog cut, too.
    let id = sim.ground_truth()[3].id;
    ok("/_sim/archive", json!({"ids": [id]}));
    let truth = get(sim.url(), "/_sim/truth").json();
    assert_eq!(truth["archived"], json!([id]));
    ok("/_sim/restore", json!({"ids": [id]}));
    assert!(sim.archived_ids().is_empty());
    ok("/_sim/changelog-cut", json!({"cut": 1, "on_get": true}));
    let long = sim
        .ground_truth()
        .into_iter()
        .find(|i| i.histories.len() > 1)
        .expect("long");
    let cl = get(
        sim.url(),
        &format!("/rest/api/2/issue/{}?expand=changelog", long.id),
    )
    .json();
    assert_eq!(cl["changelog"]["maxResults"], 1);
    ok("/_sim/changelog-cut", json!({"cut": null, "on_get": false}));
    let cl = get(
        sim.url(),
        &format!("/rest/api/2/issue/{}?expand=changelog", long.id),
    )
    .json();
    assert_eq!(cl["changelog"]["maxResults"], long.histories.len());
}
