//! The census the pipeline runs: id-only search pages (`fields=id`) over
//! created windows, ordered by id, and `id in (…)` lists of up to 1000 ids.

mod common;

use std::time::Instant;

use chrono::TimeZone;
use common::{ids, post, search};
use jira_sim::{Dataset, SimConfig, Simulator, jql};
use serde_json::json;

#[test]
fn id_only_pages_carry_expand_id_self_and_key() {
    let sim = Simulator::start(SimConfig::default().issues(500).max_results(1000))
        .expect("simulator starts");
    let page = search(
        sim.url(),
        "project = DEMO ORDER BY id ASC",
        "&fields=id&maxResults=1000",
    );
    let issues = page["issues"].as_array().expect("issues");
    assert_eq!(page["maxResults"], 1000);
    assert_eq!(issues.len() as u64, page["total"].as_u64().expect("total"));
    let first = &issues[0];
    let keys: Vec<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(|k| k.as_str())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["expand", "id", "key", "self"]);
    assert_eq!(first["id"], "10000");
    assert_eq!(first["key"], "DEMO-1");
    assert_eq!(
        first["self"],
        format!("{}/rest/api/2/issue/10000", sim.url())
    );
    let got = ids(&page);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "ORDER BY id ASC");
    assert_eq!(got, sim.ids_in_project("DEMO"));

    // POST, and `fields=key`: the same light shape.
    let r = post(
        sim.url(),
        "/rest/api/2/search",
        &json!({"jql": "project = DEMO ORDER BY id ASC", "maxResults": 1000, "fields": ["id"]}),
    );
    assert_eq!(ids(&r.json()), got);
    let keyed = search(
        sim.url(),
        "project = DEMO ORDER BY id DESC",
        "&fields=key&maxResults=5",
    );
    assert!(keyed["issues"][0].get("fields").is_none());
    let mut desc = got.clone();
    desc.reverse();
    assert_eq!(ids(&keyed), desc[..5].to_vec());
    // With fields selected, `fields` is there as before.
    let full = search(sim.url(), "", "&fields=summary&maxResults=1");
    assert!(full["issues"][0]["fields"]["summary"].is_string());
}

#[test]
fn created_windows_and_id_lists_select_the_right_ids() {
    let sim = Simulator::start(SimConfig::default().issues(3000).max_results(1000))
        .expect("simulator starts");
    let ny = chrono_tz::America::New_York;
    let ms = |y, m| {
        ny.with_ymd_and_hms(y, m, 1, 0, 0, 0)
            .single()
            .expect("a local midnight")
            .timestamp_millis()
    };
    let jql = "project = \"DEMO\" AND created >= \"2024/01/01 00:00\" AND created < \"2024/02/01 00:00\" ORDER BY id ASC";
    let page = search(sim.url(), jql, "&fields=id&maxResults=1000");
    let want: Vec<u64> = sim
        .ground_truth()
        .iter()
        .filter(|i| {
            i.project_key == "DEMO" && i.created_ms >= ms(2024, 1) && i.created_ms < ms(2024, 2)
        })
        .map(|i| i.id)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(ids(&page), want);

    // The same window narrowed to an id list (every other id, plus ids
    // outside the window and unknown ones).
    let mut list: Vec<u64> = want.iter().step_by(2).copied().collect();
    list.extend([10_001, 10_002, 99_999_999]);
    let text: Vec<String> = list.iter().map(|i| i.to_string()).collect();
    let narrowed = format!(
        "project = \"DEMO\" AND created >= \"2024/01/01 00:00\" AND created < \"2024/02/01 00:00\" AND id in ({}) ORDER BY id ASC",
        text.join(",")
    );
    let r = post(
        sim.url(),
        "/rest/api/2/search",
        &json!({"jql": narrowed, "maxResults": 1000, "fields": ["id"]}),
    );
    let want_narrow: Vec<u64> = want.iter().step_by(2).copied().collect();
    assert_eq!(ids(&r.json()), want_narrow);
}

#[test]
fn a_thousand_id_list_parses_and_runs_quickly() {
    let ds = Dataset::new(1, 200_000, &["DEMO".to_string(), "ALPHA".to_string()]);
    // Every 150th id, descending in the text (the set is sorted for lookup).
    let list: Vec<u64> = (0..1000u64).rev().map(|k| 10_000 + k * 150).collect();
    let text: Vec<String> = list.iter().map(|i| i.to_string()).collect();
    let q = format!("id in ({}) ORDER BY id ASC", text.join(", "));
    let t = Instant::now();
    let compiled = jql::parse(&q)
        .expect("parses")
        .compile(&ds, chrono_tz::America::New_York)
        .expect("compiles");
    let found = compiled.run(&ds);
    let took = t.elapsed();
    let mut want: Vec<u32> = list.iter().map(|&id| (id - 10_000) as u32).collect();
    want.sort();
    assert_eq!(found, want);
    // Debug build, shared machine: generous; a linear lookup per issue took
    // far longer (200,000 x 1000 comparisons).
    assert!(took.as_secs_f64() < 2.0, "{took:?}");
    let not_in = jql::parse(&q.replace(" in ", " not in "))
        .expect("parses")
        .compile(&ds, chrono_tz::America::New_York)
        .expect("compiles")
        .run(&ds);
    assert_eq!(not_in.len(), 200_000 - 1000);
}
