//! Transform: every table's rows from the real Jira fixtures, odd shapes,
//! quarantine of bad pages and bad issues, determinism, the text round trip
//! through PostgreSQL, and `pipeline run --stage transform`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use jira_pipeline_core::batch::{self, Batch};
use jira_pipeline_core::config::Scope;
use jira_pipeline_core::staging::{self, PageKind, PageMeta, Staging};
use jira_pipeline_core::tables::{self, CopyRow};
use jira_pipeline_core::transform::{
    self, Catalog, Selection, transform_page, transform_page_with,
};
use serde_json::{Value, json};

use crate::common::*;

const RUN: &str = "20240310T120000000Z";

fn fixtures_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jira-real");
    assert!(
        dir.is_dir(),
        "the real Jira fixtures are missing: {}",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> Value {
    let p = fixtures_dir().join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn fixture_catalog() -> Catalog {
    Catalog::parse(&std::fs::read(fixtures_dir().join("jrjc-server5_field-list.json")).unwrap())
        .unwrap()
}

const SINGLE_ISSUES: &[&str] = &[
    "jrjc-server5_issue_all-expanded_links-components-fixversions-30-histories.json",
    "jrjc-server5_issue_changelog-deleted-user-worklogid.json",
    "jrjc-server5_issue_expand-changelog_custom-items.json",
    "jrjc-server5_issue_labels-userpicker-issuelinks-changelog.json",
    "jrjc-server5_issue_subtasks.json",
];

/// A search response holding the given issues.
fn search_body(issues: Vec<Value>) -> Vec<u8> {
    let n = issues.len();
    serde_json::to_vec(&json!({"startAt": 0, "maxResults": 50, "total": n, "issues": issues}))
        .unwrap()
}

fn meta(scope: &str, kind: PageKind, seq: u32) -> PageMeta {
    PageMeta {
        format: 1,
        kind,
        scope: scope.into(),
        run_id: RUN.into(),
        mode: "backfill".into(),
        slice: 0,
        seq,
        jql: "project = TST".into(),
        start_at: 0,
        max_results: 50,
        issue_count: 0,
        total: None,
        first_updated: None,
        last_updated: None,
        fetched_at: Utc::now(),
        request_id: None,
        http_status: 200,
        checkpoint: None,
        pages_in_run: None,
        fingerprint: None,
        extra: Vec::new(),
    }
}

fn scope(name: &str, fields: &[&str]) -> Scope {
    Scope {
        name: name.into(),
        project: "TST".into(),
        issue_types: vec![],
        fields: fields.iter().map(|s| s.to_string()).collect(),
        jql: None,
    }
}

fn transform(body: Vec<u8>, fields: &[&str]) -> Batch {
    let mut body = body;
    transform_page(
        &meta("s", PageKind::Search, 0),
        &mut body,
        &fixture_catalog(),
        &scope("s", fields),
    )
    .unwrap()
}

/// The fixture issues as one page. SAM-1 (subtasks) comes from another Jira
/// instance and has the same id as HST-1, so it gets a page of its own.
fn fixture_batch() -> Batch {
    transform(
        search_body(SINGLE_ISSUES[..4].iter().map(|f| fixture(f)).collect()),
        &["*all"],
    )
}

fn sam1_batch() -> Batch {
    transform(search_body(vec![fixture(SINGLE_ISSUES[4])]), &["*all"])
}

type Row = HashMap<&'static str, Option<String>>;

/// Rows of a table as column name → value maps.
fn rows(b: &Batch, table: &str) -> Vec<Row> {
    let spec = tables::by_name(table).unwrap();
    let decoded = tables::decode_rows(b.rows(table));
    assert_eq!(decoded.len() as u64, b.row_count(table), "{table} count");
    decoded
        .into_iter()
        .map(|r| {
            assert_eq!(r.len(), spec.columns.len(), "{table} columns");
            spec.columns.iter().map(|c| c.name).zip(r).collect()
        })
        .collect()
}

fn get<'a>(r: &'a Row, c: &str) -> Option<&'a str> {
    r.get(c)
        .unwrap_or_else(|| panic!("no column {c}"))
        .as_deref()
}

fn find<'a>(rows: &'a [Row], pairs: &[(&str, &str)]) -> Vec<&'a Row> {
    rows.iter()
        .filter(|r| pairs.iter().all(|(c, v)| get(r, c) == Some(*v)))
        .collect()
}

fn one<'a>(rows: &'a [Row], pairs: &[(&str, &str)]) -> &'a Row {
    let f = find(rows, pairs);
    assert_eq!(f.len(), 1, "{pairs:?}: {f:?}");
    f[0]
}

#[test]
fn fixture_issue_rows() {
    let b = fixture_batch();
    assert!(b.meta.quarantined.is_empty(), "{:?}", b.meta.quarantined);
    let keys: Vec<&str> = b.meta.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["TST-2", "TST-13", "HST-1", "TST-11"]);
    let issues = rows(&b, "issue");
    assert_eq!(issues.len(), 4);
    let tst2 = one(&issues, &[("issue_key", "TST-2")]);
    assert_eq!(get(tst2, "issue_id"), Some("10010"));
    assert_eq!(get(tst2, "project_id"), Some("10000"));
    assert_eq!(get(tst2, "project_key"), Some("TST"));
    assert_eq!(get(tst2, "issue_type"), Some("Bug"));
    assert_eq!(get(tst2, "status"), Some("In Progress"));
    // Jira 5 statuses carry no statusCategory.
    assert_eq!(get(tst2, "status_category"), None);
    assert_eq!(get(tst2, "priority"), Some("Major"));
    assert_eq!(get(tst2, "resolution"), None);
    assert_eq!(get(tst2, "summary"), Some("Testing attachem2"));
    assert_eq!(get(tst2, "description"), Some("my description"));
    assert_eq!(get(tst2, "assignee"), Some("wseliga"));
    assert_eq!(get(tst2, "reporter"), Some("admin"));
    // created is +0200 (CEST), updated +0100 (CET): both exact instants.
    assert_eq!(get(tst2, "created"), Some("2010-07-26 11:29:18.262000+00"));
    assert_eq!(get(tst2, "updated"), Some("2012-12-07 13:52:52.570000+00"));
    assert_eq!(get(tst2, "resolved"), None);
    assert_eq!(get(tst2, "due_date"), None);
    assert_eq!(get(tst2, "parent_id"), None);
    assert_eq!(get(tst2, "deleted_at"), None);
    // The reporting model's columns: ids of the dimensions, user keys (a
    // Jira 5 user has no key: its name is the key), time tracking.
    assert_eq!(get(tst2, "status_id"), Some("3"));
    assert_eq!(get(tst2, "priority_id"), Some("3"));
    assert_eq!(get(tst2, "issue_type_id"), Some("1"));
    assert_eq!(get(tst2, "assignee_key"), Some("wseliga"));
    assert_eq!(get(tst2, "time_spent_seconds"), Some("8700"));
    assert_eq!(get(tst2, "original_estimate_seconds"), Some("0"));
    assert_eq!(get(tst2, "aggregate_time_spent_seconds"), Some("8700"));
    assert_eq!(get(tst2, "scope"), Some("s"), "the page's scope");
    let tst13 = one(&issues, &[("issue_key", "TST-13")]);
    assert_eq!(get(tst13, "time_spent_seconds"), Some("10800"));
    assert_eq!(get(tst13, "original_estimate_seconds"), None);
    let hst1 = one(&issues, &[("issue_key", "HST-1")]);
    assert_eq!(get(hst1, "due_date"), Some("2012-04-13"));
    assert_eq!(get(hst1, "project_key"), Some("HST"));
    let sam1 = rows(&sam1_batch(), "issue");
    assert_eq!(get(&sam1[0], "project_id"), Some("10010"));
    assert_eq!(get(&sam1[0], "issue_id"), Some("10000"));
    // BatchMeta carries every issue's `updated`.
    let v = b.meta.issues.iter().find(|i| i.key == "TST-2").unwrap();
    assert_eq!(v.id, 10010);
    assert_eq!(
        v.updated.unwrap().to_rfc3339(),
        "2012-12-07T13:52:52.570+00:00"
    );
}

#[test]
fn fixture_labels_components_versions() {
    let b = fixture_batch();
    let labels = rows(&b, "issue_label");
    let tst11: Vec<_> = find(&labels, &[("issue_id", "10073")])
        .iter()
        .map(|r| get(r, "label").unwrap())
        .collect();
    assert_eq!(tst11, ["a", "bcds"]);
    assert_eq!(labels.len(), 2);

    let comps = rows(&b, "issue_component");
    assert_eq!(
        get(
            one(&comps, &[("issue_id", "10010"), ("component_id", "10000")]),
            "component_name"
        ),
        Some("Component A")
    );
    assert_eq!(
        get(
            one(&comps, &[("issue_id", "10010"), ("component_id", "10001")]),
            "component_name"
        ),
        Some("Component B")
    );

    let vers = rows(&b, "issue_version");
    let fix = one(&vers, &[("issue_id", "10010"), ("relation", "fix")]);
    assert_eq!(get(fix, "version_id"), Some("10000"));
    assert_eq!(get(fix, "version_name"), Some("1.1"));
    assert_eq!(get(fix, "released"), Some("f"));
    assert_eq!(get(fix, "release_date"), Some("2010-08-25"));
    let affects = find(&vers, &[("issue_id", "10010"), ("relation", "affects")]);
    let names: Vec<_> = affects
        .iter()
        .map(|r| get(r, "version_name").unwrap())
        .collect();
    assert_eq!(names, ["1", "1.1"]);
    assert_eq!(get(affects[0], "release_date"), None);
}

#[test]
fn fixture_links_are_normalised() {
    let b = fixture_batch();
    let links = rows(&b, "issue_link");
    // TST-2 --duplicates--> TST-1 (seen as outwardIssue from TST-2).
    let l = one(&links, &[("link_id", "10010")]);
    assert_eq!(get(l, "source_issue_id"), Some("10010"));
    assert_eq!(get(l, "source_issue_key"), Some("TST-2"));
    assert_eq!(get(l, "target_issue_id"), Some("10000"));
    assert_eq!(get(l, "target_issue_key"), Some("TST-1"));
    assert_eq!(get(l, "link_type"), Some("Duplicate"));
    assert_eq!(get(l, "outward"), Some("duplicates"));
    assert_eq!(get(l, "inward"), Some("is duplicated by"));
    // Seen as inwardIssue from TST-2: TST-1 is the source.
    let l = one(&links, &[("link_id", "10000")]);
    assert_eq!(get(l, "source_issue_key"), Some("TST-1"));
    assert_eq!(get(l, "target_issue_key"), Some("TST-2"));
    // TST-11: 10022 outward to TST-2, 10021 inward from TST-2, 10020 inward from TST-3.
    let l = one(&links, &[("link_id", "10022")]);
    assert_eq!(
        (get(l, "source_issue_key"), get(l, "target_issue_key")),
        (Some("TST-11"), Some("TST-2"))
    );
    let l = one(&links, &[("link_id", "10021")]);
    assert_eq!(
        (get(l, "source_issue_id"), get(l, "target_issue_id")),
        (Some("10010"), Some("10073"))
    );
    let l = one(&links, &[("link_id", "10020")]);
    assert_eq!(get(l, "source_issue_key"), Some("TST-3"));
    assert_eq!(links.len(), 5);
}

#[test]
fn same_link_from_both_ends_gives_the_identical_row() {
    // TST-2's own view holds link 10010 as outwardIssue TST-1; build TST-1's
    // view of the same link (inwardIssue TST-2) from the fixture's own parts.
    let tst2 = fixture(SINGLE_ISSUES[0]);
    let link = tst2["fields"]["issuelinks"][0].clone();
    assert_eq!(link["id"], "10010");
    let mut mirrored = link.clone();
    let other = mirrored
        .as_object_mut()
        .unwrap()
        .remove("outwardIssue")
        .unwrap();
    assert_eq!(other["key"], "TST-1");
    mirrored["inwardIssue"] =
        json!({"id": "10010", "key": "TST-2", "fields": {"summary": "Testing attachem2"}});
    let tst1 = json!({"id": "10000", "key": "TST-1", "fields": {"summary": "My sample test", "issuelinks": [mirrored]}});

    let from_tst2 = transform(search_body(vec![tst2.clone()]), &["*all"]);
    let from_tst1 = transform(search_body(vec![tst1.clone()]), &["*all"]);
    let row = |b: &Batch| {
        tables::decode_rows(b.rows("issue_link"))
            .into_iter()
            .find(|r| r[0].as_deref() == Some("10010"))
            .unwrap()
    };
    assert_eq!(row(&from_tst2), row(&from_tst1));
    // Both issues in one page: the link is written once (its key is unique in a batch).
    let both = transform(search_body(vec![tst2, tst1]), &["*all"]);
    let ids: Vec<_> = tables::decode_rows(both.rows("issue_link"))
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(ids.iter().filter(|i| *i == "10010").count(), 1);
}

#[test]
fn fixture_changelog_and_items() {
    let b = fixture_batch();
    let hist = rows(&b, "changelog");
    // 30 (TST-2) + 1 (TST-13) + 4 (HST-1) + 4 (TST-11).
    assert_eq!(hist.len(), 39);
    let h = one(&hist, &[("history_id", "10000")]);
    assert_eq!(get(h, "issue_id"), Some("10000"));
    assert_eq!(get(h, "author"), Some("user1"));
    assert_eq!(get(h, "created"), Some("2012-04-12 12:28:28.255000+00"));
    // A history whose author is null.
    assert_eq!(get(one(&hist, &[("history_id", "10003")]), "author"), None);
    // The deleted user is kept by name.
    let h = one(&hist, &[("history_id", "10183")]);
    assert_eq!(get(h, "author"), Some("deleteduser"));
    assert_eq!(get(h, "issue_id"), Some("10075"));

    let items = rows(&b, "changelog_item");
    let due = one(&items, &[("history_id", "10000"), ("item_seq", "0")]);
    assert_eq!(get(due, "issue_id"), Some("10000"));
    assert_eq!(get(due, "field"), Some("duedate"));
    assert_eq!(get(due, "field_type"), Some("jira"));
    assert_eq!(get(due, "field_id"), None);
    assert_eq!(get(due, "from_value"), None);
    assert_eq!(get(due, "to_value"), Some("2012-04-12"));
    // Kept as the text Jira sent, not parsed.
    assert_eq!(get(due, "to_string"), Some("2012-04-12 00:00:00.0"));
    let radio = one(&items, &[("history_id", "10000"), ("item_seq", "1")]);
    assert_eq!(get(radio, "field"), Some("Radio Field"));
    assert_eq!(get(radio, "field_type"), Some("custom"));
    assert_eq!(get(radio, "to_value"), Some("10000"));
    assert_eq!(get(radio, "to_string"), Some("One"));
    let worklog = one(&items, &[("history_id", "10183"), ("item_seq", "2")]);
    assert_eq!(get(worklog, "field"), Some("WorklogId"));
    assert_eq!(get(worklog, "from_value"), Some("10030"));
    assert_eq!(get(worklog, "from_string"), Some("10030"));
    assert_eq!(get(worklog, "to_string"), None);
    // The Polish attachment name survives.
    assert_eq!(
        find(&items, &[("to_string", "Admal pompa ciepła.pdf")]).len(),
        1
    );
}

#[test]
fn fixture_custom_fields() {
    let b = fixture_batch();
    let fv = rows(&b, "issue_field_value");
    let row = |issue: &str, field: &str| one(&fv, &[("issue_id", issue), ("field_id", field)]);
    // The catalogue calls customfield_10000 a multiselect; TST-2 holds a number: kept as a number.
    let r = row("10010", "customfield_10000");
    assert_eq!(get(r, "value_kind"), Some("number"));
    assert_eq!(get(r, "number_value"), Some("1.457"));
    assert_eq!(get(r, "ordinal"), Some("0"));
    // Not in the catalogue: inferred from the value.
    let r = row("10010", "customfield_10001");
    assert_eq!(get(r, "value_kind"), Some("option"));
    assert_eq!(get(r, "option_id"), Some("10001"));
    assert_eq!(get(r, "text_value"), Some("Another"));
    // A project picker: any other shape is kept as JSON, never dropped.
    let r = row("10010", "customfield_10010");
    assert_eq!(get(r, "value_kind"), Some("json"));
    let j: Value = serde_json::from_str(get(r, "json_value").unwrap()).unwrap();
    assert_eq!(j["key"], "TST");
    let r = row("10000", "customfield_10001");
    assert_eq!(get(r, "value_kind"), Some("datetime"));
    assert_eq!(
        get(r, "timestamp_value"),
        Some("2012-04-12 12:26:00.000000+00")
    );
    let r = row("10000", "customfield_10000");
    assert_eq!(get(r, "value_kind"), Some("string"));
    assert_eq!(get(r, "text_value"), Some("Modified text field value"));
    let r = row("10073", "customfield_10020");
    assert_eq!(get(r, "value_kind"), Some("user"));
    assert_eq!(get(r, "text_value"), Some("wseliga"));
    assert_eq!(get(r, "user_key"), None);
    let sam1 = rows(&sam1_batch(), "issue_field_value");
    let r = one(&sam1, &[("field_id", "customfield_10005")]);
    assert_eq!(get(r, "value_kind"), Some("string"));
    assert_eq!(get(r, "text_value"), Some("1"));
    // Null custom fields give no rows.
    assert!(find(&fv, &[("issue_id", "10075")]).is_empty());
    assert!(find(&fv, &[("field_id", "customfield_10011")]).is_empty());
}

#[test]
fn scope_fields_select_by_id_and_by_name() {
    let body = || search_body(SINGLE_ISSUES.iter().map(|f| fixture(f)).collect());
    let by_name = transform(body(), &["MultiSelect Custom IssueField"]);
    let fields: Vec<_> = rows(&by_name, "issue_field_value")
        .iter()
        .map(|r| get(r, "field_id").unwrap().to_string())
        .collect();
    assert!(!fields.is_empty());
    assert!(
        fields.iter().all(|f| f == "customfield_10000"),
        "{fields:?}"
    );
    let by_id = transform(body(), &["customfield_10020"]);
    assert_eq!(by_id.row_count("issue_field_value"), 1);
    let none = transform(body(), &[]);
    assert_eq!(none.row_count("issue_field_value"), 0);
    // The search fixture's own `names` map resolves names the catalogue lacks.
    let search =
        serde_json::to_vec(&fixture("jrjc-server5_search_names-schema_8-of-15.json")).unwrap();
    let b = transform(search, &["Extra User"]);
    let f = rows(&b, "issue_field_value");
    assert!(!f.is_empty());
    assert!(
        f.iter()
            .all(|r| get(r, "field_id") == Some("customfield_10020"))
    );
}

#[test]
fn search_fixture_page() {
    let body =
        serde_json::to_vec(&fixture("jrjc-server5_search_names-schema_8-of-15.json")).unwrap();
    let b = transform(body, &["*all"]);
    assert_eq!(b.meta.issues.len(), 8);
    assert!(b.meta.quarantined.is_empty());
    assert_eq!(b.row_count("issue"), 8);
    assert_eq!(b.meta.kind, PageKind::Search);
    assert_eq!(b.meta.page, meta("s", PageKind::Search, 0).page_name());
    // The page's own schema types customfield_10020 as a user picker.
    let fv = rows(&b, "issue_field_value");
    for r in find(&fv, &[("field_id", "customfield_10020")]) {
        assert_eq!(get(r, "value_kind"), Some("user"));
    }
}

#[test]
fn end_page_carries_checkpoint_and_field_rows() {
    let mut m = meta("s", PageKind::End, 0);
    let cp = Utc::now();
    m.checkpoint = Some(cp);
    m.pages_in_run = Some(12);
    let b = transform_page(
        &m,
        &mut Vec::new(),
        &fixture_catalog(),
        &scope("s", &["*all"]),
    )
    .unwrap();
    assert_eq!(b.meta.kind, PageKind::End);
    assert_eq!(b.meta.page, staging::end_page_name(RUN));
    assert_eq!(b.meta.checkpoint, Some(cp));
    assert_eq!(b.meta.pages_in_run, Some(12));
    assert!(b.meta.issues.is_empty());
    let f = rows(&b, "field");
    assert_eq!(f.len(), 40);
    let ms = one(&f, &[("field_id", "customfield_10000")]);
    assert_eq!(get(ms, "name"), Some("MultiSelect Custom IssueField"));
    assert_eq!(get(ms, "custom"), Some("t"));
    assert_eq!(get(ms, "schema_type"), Some("array"));
    assert_eq!(get(ms, "schema_items"), Some("string"));
    assert_eq!(
        get(ms, "schema_custom"),
        Some("com.atlassian.jira.plugin.system.customfieldtypes:multiselect")
    );
    assert_eq!(get(ms, "custom_id"), Some("10000"));
    let key = one(&f, &[("field_id", "issuekey")]);
    assert_eq!(get(key, "schema_type"), None);
    // Without a catalogue the End batch has no field rows.
    let b = transform_page(&m, &mut Vec::new(), &Catalog::default(), &scope("s", &[])).unwrap();
    assert_eq!(b.row_count("field"), 0);
}

#[test]
fn nulls_absent_and_unexpected_types() {
    let issues = vec![
        json!({"id": "1", "key": "X-1"}),
        json!({"id": 2, "key": "X-2", "fields": null}),
        json!({"id": "3", "key": "X-3", "fields": {
            "summary": 42, "description": null, "status": "Open", "issuetype": {"id": "1"},
            "assignee": {"key": "JIRAUSER1", "displayName": "Ann"}, "reporter": {"displayName": "Bob"},
            "creator": "carol", "labels": ["b", 7, null, "b"], "components": [], "fixVersions": null,
            "project": {"id": 5, "key": "X"}, "parent": {"id": "9", "key": "X-9"},
            "status2": {"name": "ignored"}, "resolution": {"name": "Fixed"},
            "resolutiondate": "2024-01-01T00:00:00Z", "duedate": null,
            "customfield_1": {"weird": [1, {"a": null}]}, "customfield_2": [],
            "customfield_3": "com.atlassian.greenhopper.service.sprint.Sprint@1f[id=4,rapidViewId=2,state=FUTURE,name=Next, maybe,startDate=<null>]",
            "customfield_4": true, "customfield_5": null
        }}),
    ];
    let b = transform(search_body(issues), &["*all"]);
    assert!(b.meta.quarantined.is_empty(), "{:?}", b.meta.quarantined);
    let is = rows(&b, "issue");
    assert_eq!(is.len(), 3);
    let x1 = one(&is, &[("issue_key", "X-1")]);
    for c in [
        "summary",
        "status",
        "created",
        "updated",
        "project_key",
        "assignee",
    ] {
        assert_eq!(get(x1, c), None, "{c}");
    }
    assert!(b.meta.issues[0].updated.is_none());
    one(&is, &[("issue_id", "2"), ("issue_key", "X-2")]);
    let x3 = one(&is, &[("issue_key", "X-3")]);
    assert_eq!(get(x3, "summary"), Some("42"));
    assert_eq!(get(x3, "status"), Some("Open"));
    assert_eq!(get(x3, "issue_type"), None);
    assert_eq!(get(x3, "assignee"), Some("JIRAUSER1"));
    assert_eq!(get(x3, "reporter"), Some("Bob"));
    assert_eq!(get(x3, "creator"), Some("carol"));
    assert_eq!(get(x3, "project_id"), Some("5"));
    assert_eq!(get(x3, "parent_id"), Some("9"));
    assert_eq!(get(x3, "resolution"), Some("Fixed"));
    assert_eq!(get(x3, "resolved"), Some("2024-01-01 00:00:00.000000+00"));
    let labels: Vec<_> = rows(&b, "issue_label")
        .iter()
        .map(|r| get(r, "label").unwrap().to_string())
        .collect();
    assert_eq!(labels, ["b", "7"]);
    let fv = rows(&b, "issue_field_value");
    assert_eq!(
        get(one(&fv, &[("field_id", "customfield_1")]), "json_value"),
        Some(r#"{"weird":[1,{"a":null}]}"#)
    );
    assert!(find(&fv, &[("field_id", "customfield_2")]).is_empty());
    let sprint = one(&fv, &[("field_id", "customfield_3")]);
    assert_eq!(get(sprint, "value_kind"), Some("sprint"));
    assert_eq!(get(sprint, "option_id"), Some("4"));
    assert_eq!(get(sprint, "text_value"), Some("Next, maybe"));
    assert_eq!(get(sprint, "sprint_state"), Some("FUTURE"));
    assert_eq!(
        get(one(&fv, &[("field_id", "customfield_4")]), "json_value"),
        Some("true")
    );
    assert!(find(&fv, &[("field_id", "customfield_5")]).is_empty());
}

#[test]
fn one_bad_issue_is_quarantined_alone() {
    let good = |id: &str, key: &str| {
        json!({"id": id, "key": key, "fields": {"updated": "2024-03-10T01:59:59.123-0500", "labels": ["l"]},
               "changelog": {"histories": [{"id": format!("{id}0"), "created": "2024-03-10T01:00:00.000-0500", "items": [{"field": "f"}]}]}})
    };
    let bad_created = json!({"id": "20", "key": "B-20", "fields": {"created": "10/03/2024 01:59", "labels": ["gone"]}});
    let bad_id = json!({"id": "abc", "key": "B-21", "fields": {"labels": ["gone"]}});
    let no_id = json!({"key": "B-22"});
    // The bad history comes after rows of this issue were written: all rolled back.
    let bad_history = json!({"id": "23", "key": "B-23", "fields": {"labels": ["gone"], "issuelinks": [
            {"id": "99", "type": {"name": "Blocks"}, "outwardIssue": {"id": "1", "key": "A-1"}}]},
        "changelog": {"histories": [{"id": "230", "created": "2024-01-01T00:00:00Z", "items": [{"field": "x"}]}, {"created": "2024-01-01T00:00:00Z"}]}});
    let not_object = json!("B-24");
    let body = search_body(vec![
        good("1", "A-1"),
        bad_created,
        bad_id,
        no_id,
        bad_history,
        not_object,
        good("2", "A-2"),
    ]);
    let b = transform(body, &["*all"]);
    let keys: Vec<_> = b.meta.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, ["A-1", "A-2"]);
    let q: Vec<_> = b
        .meta
        .quarantined
        .iter()
        .map(|q| (q.key.as_str(), q.id))
        .collect();
    assert_eq!(
        q,
        [
            ("B-20", Some(20)),
            ("B-21", None),
            ("B-22", None),
            ("B-23", Some(23)),
            ("#5", None)
        ]
    );
    assert!(b.meta.quarantined[0].reason.contains("created"));
    assert!(b.meta.quarantined[0].reason.contains("10/03/2024 01:59"));
    assert!(b.meta.quarantined[1].reason.contains("\"abc\""));
    assert!(b.meta.quarantined[3].reason.contains("history"));
    assert_eq!(b.row_count("issue"), 2);
    assert_eq!(b.row_count("issue_label"), 2);
    assert_eq!(b.row_count("issue_link"), 0);
    assert_eq!(b.row_count("changelog"), 2);
    assert_eq!(b.row_count("changelog_item"), 2);
    assert!(!String::from_utf8_lossy(b.rows("issue_label")).contains("gone"));
    let upd = b.meta.issues[0].updated.unwrap();
    assert_eq!(upd.to_rfc3339(), "2024-03-10T06:59:59.123+00:00");
}

#[test]
fn issues_sharing_an_id_in_one_page_keep_the_latest() {
    // Real data: HST-1 and SAM-1 were captured on two Jira instances and both
    // have id 10000. One page holding both must not carry two rows for one key.
    let b = transform(
        search_body(vec![fixture(SINGLE_ISSUES[4]), fixture(SINGLE_ISSUES[2])]),
        &["*all"],
    );
    let keys: Vec<_> = b.meta.issues.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        ["HST-1"],
        "HST-1 was updated later (2012-04-12 > 2012-04-01)"
    );
    assert_eq!(b.row_count("issue"), 1);
    assert!(b.meta.quarantined.is_empty());
}

#[test]
fn the_same_page_gives_byte_identical_batches() {
    let body = search_body(SINGLE_ISSUES.iter().map(|f| fixture(f)).collect());
    let a = transform(body.clone(), &["*all"]);
    let b = transform(body, &["*all"]);
    assert_eq!(a, b);
    // On disk too, through two staging areas.
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    for d in [&d1, &d2] {
        batch::write_batch(&Staging::new(d.path(), 3), &a).unwrap();
    }
    let dir = |d: &tempfile::TempDir| Staging::new(d.path(), 3).batch_dir("s", &a.meta.page);
    for f in ["meta.json", "issue.copy.zst", "issue_field_value.copy.zst"] {
        assert_eq!(
            std::fs::read(dir(&d1).join(f)).unwrap(),
            std::fs::read(dir(&d2).join(f)).unwrap(),
            "{f}"
        );
    }
}

fn staging_checkpoint() -> Option<chrono::DateTime<Utc>> {
    jira_pipeline_core::config::parse_instant("2024-03-10T11:59:00Z")
}

/// A staging area holding good pages, bad pages and the run's catalogue.
fn populate(st: &Staging, scope: &str) -> Vec<String> {
    let fields = std::fs::read(fixtures_dir().join("jrjc-server5_field-list.json")).unwrap();
    st.write_compressed(&st.catalog_path(RUN), &fields).unwrap();
    let mut names = Vec::new();
    for (i, f) in SINGLE_ISSUES.iter().enumerate() {
        let m = meta(scope, PageKind::Search, i as u32);
        let mut m = m;
        m.fetched_at = staging_checkpoint().unwrap();
        st.write_page(&m, &search_body(vec![fixture(f)])).unwrap();
        names.push(m.page_name());
    }
    let mut end = meta(scope, PageKind::End, 0);
    end.checkpoint = staging_checkpoint();
    end.pages_in_run = Some(SINGLE_ISSUES.len() as u64);
    st.write_page(&end, b"").unwrap();
    names.push(end.page_name());
    names
}

fn write_bad_pages(st: &Staging, scope: &str) -> Vec<(String, &'static str)> {
    let mut bad = Vec::new();
    let m = meta(scope, PageKind::Search, 100);
    st.write_page(&m, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
        .unwrap();
    bad.push((m.page_name(), "HTML"));
    let m = meta(scope, PageKind::Search, 101);
    let full = search_body(vec![fixture(SINGLE_ISSUES[0])]);
    st.write_page(&m, &full[..full.len() / 2]).unwrap();
    bad.push((m.page_name(), "not valid JSON"));
    let m = meta(scope, PageKind::Search, 102);
    st.write_page(&m, br#"{"errorMessages":["The value 'X' does not exist for the field 'project'."],"errors":{}}"#)
        .unwrap();
    bad.push((m.page_name(), "error response"));
    // Not zstd at all.
    let name = staging::page_name(RUN, 0, 103);
    std::fs::write(st.page_path(scope, &name), b"plain text, not zstd").unwrap();
    bad.push((name, "zstd"));
    // A zstd file cut short.
    let m = meta(scope, PageKind::Search, 104);
    let p = st.write_page(&m, &full).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    bad.push((m.page_name(), "zstd"));
    bad
}

fn test_config(dir: &Path, scope_name: &str) -> jira_pipeline_core::config::Config {
    let text = format!(
        "[staging]\ndir = {:?}\n\n[[scope]]\nname = \"{scope_name}\"\nproject = \"TST\"\n",
        dir.join("staging").display().to_string()
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    jira_pipeline_core::config::Config::load(&path).unwrap()
}

#[test]
fn run_stage_quarantines_bad_pages_and_transforms_their_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path(), "tst");
    let st = Staging::new(&cfg.staging.dir, 3);
    let good = populate(&st, "tst");
    let bad = write_bad_pages(&st, "tst");
    let report = transform::run_stage(&cfg, &[], 2).unwrap();
    assert_eq!(report.pages_todo, (good.len() + bad.len()) as u64);
    assert_eq!(report.pages_transformed, good.len() as u64);
    assert_eq!(report.pages_quarantined, bad.len() as u64);
    assert_eq!(report.issues, 5);
    assert_eq!(
        report.exit_code(),
        jira_pipeline_core::error::ExitCode::Quarantined
    );
    assert_eq!(st.list_batches("tst").unwrap(), {
        let mut g = good.clone();
        g.sort();
        g
    });
    for (page, why) in &bad {
        let reason =
            std::fs::read_to_string(st.quarantine_dir("tst").join(format!("{page}.reason.txt")))
                .unwrap();
        assert!(reason.contains(why), "{page}: {reason}");
        assert!(reason.contains(page.as_str()), "{page}: {reason}");
        assert!(
            st.quarantine_dir("tst")
                .join(format!("{page}{}", staging::PAGE_EXT))
                .is_file()
        );
        assert!(!st.page_path("tst", page).exists());
    }
    // The End batch has the run's field catalogue.
    let end = batch::read_batch(&st, "tst", &staging::end_page_name(RUN)).unwrap();
    assert_eq!(end.row_count("field"), 40);
    assert_eq!(end.meta.pages_in_run, Some(5));
    // Rerun: nothing left to do, nothing quarantined this time.
    let again = transform::run_stage(&cfg, &[], 1).unwrap();
    assert_eq!(again.pages_transformed, 0);
    assert_eq!(again.pages_already_done, good.len() as u64);
    assert_eq!(
        again.exit_code(),
        jira_pipeline_core::error::ExitCode::Success
    );
}

#[test]
fn rerun_after_a_kill_finishes_with_identical_batches() {
    // Uninterrupted reference.
    let ref_dir = tempfile::tempdir().unwrap();
    let ref_cfg = test_config(ref_dir.path(), "tst");
    let ref_st = Staging::new(&ref_cfg.staging.dir, 3);
    let pages = populate(&ref_st, "tst");
    transform::run_stage(&ref_cfg, &[], 2).unwrap();

    // "Killed" run: two batches done, a half-built batch directory left behind.
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path(), "tst");
    let st = Staging::new(&cfg.staging.dir, 3);
    populate(&st, "tst");
    for p in &pages[..2] {
        let b = batch::read_batch(&ref_st, "tst", p).unwrap();
        batch::write_batch(&st, &b).unwrap();
    }
    let junk = st.batches_dir("tst").join(format!(".tmp-{}-abc", pages[2]));
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("issue.copy.zst"), b"partial").unwrap();
    let r = transform::run_stage(&cfg, &["tst".to_string()], 2).unwrap();
    assert_eq!(r.pages_already_done, 2);
    assert_eq!(r.pages_transformed, pages.len() as u64 - 2);
    assert!(!junk.exists());
    for p in &pages {
        for spec in tables::ALL {
            let f = format!("{}.copy.zst", spec.name);
            let a = std::fs::read(ref_st.batch_dir("tst", p).join(&f)).ok();
            let b = std::fs::read(st.batch_dir("tst", p).join(&f)).ok();
            assert_eq!(a, b, "{p}/{f}");
        }
        let a = batch::read_batch(&ref_st, "tst", p).unwrap();
        let b = batch::read_batch(&st, "tst", p).unwrap();
        assert_eq!(a, b, "{p}");
    }
}

#[test]
fn run_stage_transform_via_the_binary() {
    let s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    let st = Staging::new(w.path().join("staging"), 3);
    let good = populate(&st, "demo");
    let bad = write_bad_pages(&st, "demo");
    let out = w
        .cmd()
        .args(["run", "--stage", "transform"])
        .assert()
        .code(4)
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{} page(s) transformed", good.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("quarantined: {} page(s), 0 issue(s)", bad.len())),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("page quarantined"), "{stderr}");
    assert_eq!(st.list_batches("demo").unwrap().len(), good.len());
    // Rerun: everything is done, exit 0.
    w.cmd()
        .args(["run", "--stage", "transform", "--scope", "demo"])
        .assert()
        .success()
        .stdout(predicates::str::contains("0 page(s) transformed"));
    // Unknown scope: usage error.
    w.cmd()
        .args(["run", "--stage", "transform", "--scope", "nope"])
        .assert()
        .code(2);
    // Other stages are not here yet.
    w.cmd().args(["run", "--stage", "load"]).assert().code(2);
}

#[test]
fn bench_command_runs_on_fixtures() {
    let w = Workdir::new("");
    w.cmd()
        .args([
            "bench",
            "transform",
            "--pages",
            fixtures_dir().to_str().unwrap(),
            "--threads",
            "2",
            "--seconds",
            "0.05",
        ])
        .assert()
        .success()
        .stdout(predicates::str::contains("transform/parse"))
        .stdout(predicates::str::contains("scaling"));
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            "\t", "\n", "\r", "\r\n", "\\", "\\N", "\"", "'", "😀", "\u{0}", "\u{8}", "\u{b}",
            "\u{c}", "é", "\u{feff}", "a", " ", ",", "{}", "\u{7f}",
        ]);
        prop_oneof![
            any::<String>(),
            prop::collection::vec(special, 0..24).prop_map(|v| v.concat()),
            prop::collection::vec(
                prop_oneof![any::<char>().prop_map(String::from), "[a-z\\\\\t\n\r]{1,4}"],
                0..30
            )
            .prop_map(|v| v.concat()),
        ]
    }

    /// Random text in an issue → transform → COPY into PostgreSQL → SELECT:
    /// equal to the input, with NUL replaced by U+FFFD.
    #[test]
    fn text_survives_copy_into_postgres() {
        let mut s = TestSchema::new();
        let schema = s.name.clone();
        s.client
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .unwrap();
        for spec in [&tables::ISSUE, &tables::ISSUE_LABEL] {
            let cols: Vec<String> = spec
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.ty.sql()))
                .collect();
            s.client
                .batch_execute(&format!(
                    "CREATE TABLE \"{schema}\".{} ({})",
                    spec.name,
                    cols.join(", ")
                ))
                .unwrap();
        }
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 96,
            ..ProptestConfig::default()
        });
        let client = std::cell::RefCell::new(&mut s.client);
        runner
            .run(&(text(), text(), text()), |(summary, description, label)| {
                let issue = json!({"id": "1", "key": "T-1", "fields": {
                    "summary": summary, "description": description, "labels": [label]}});
                let b = transform(search_body(vec![issue]), &[]);
                let mut c = client.borrow_mut();
                c.batch_execute(&format!(
                    "TRUNCATE \"{schema}\".issue; TRUNCATE \"{schema}\".issue_label"
                ))
                .unwrap();
                for spec in [&tables::ISSUE, &tables::ISSUE_LABEL] {
                    let mut w = c
                        .copy_in(&format!(
                            "COPY \"{schema}\".{} ({}) FROM STDIN",
                            spec.name,
                            spec.column_list()
                        ))
                        .unwrap();
                    w.write_all(b.rows(spec.name)).unwrap();
                    assert_eq!(w.finish().unwrap(), 1);
                }
                let row = c
                    .query_one(
                        &format!(
                            "SELECT i.summary, i.description, l.label FROM \"{schema}\".issue i, \"{schema}\".issue_label l"
                        ),
                        &[],
                    )
                    .unwrap();
                let fix = |s: &str| s.replace('\u{0}', "\u{FFFD}");
                prop_assert_eq!(row.get::<_, String>(0), fix(&summary));
                prop_assert_eq!(row.get::<_, String>(1), fix(&description));
                prop_assert_eq!(row.get::<_, String>(2), fix(&label));
                Ok(())
            })
            .unwrap();
    }

    /// The encoder alone, straight through CopyRow, with NULLs in between.
    #[test]
    fn copyrow_text_roundtrip() {
        let mut s = TestSchema::new();
        let t = format!("\"{}\".rt", s.name);
        s.client
            .batch_execute(&format!(
                "CREATE SCHEMA \"{}\"; CREATE TABLE {t} (n int, a text, b text)",
                s.name
            ))
            .unwrap();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        });
        let client = std::cell::RefCell::new(&mut s.client);
        runner
            .run(&prop::collection::vec(text(), 1..6), |texts| {
                let mut buf = Vec::new();
                for (i, x) in texts.iter().enumerate() {
                    CopyRow::new(&mut buf).i64(i as i64).text(x).null().end();
                }
                let mut c = client.borrow_mut();
                c.batch_execute(&format!("TRUNCATE {t}")).unwrap();
                let mut w = c
                    .copy_in(&format!("COPY {t} (n, a, b) FROM STDIN"))
                    .unwrap();
                w.write_all(&buf).unwrap();
                assert_eq!(w.finish().unwrap(), texts.len() as u64);
                let rows = c
                    .query(&format!("SELECT a, b FROM {t} ORDER BY n"), &[])
                    .unwrap();
                for (r, x) in rows.iter().zip(&texts) {
                    prop_assert_eq!(r.get::<_, String>(0), x.replace('\u{0}', "\u{FFFD}"));
                    prop_assert_eq!(r.get::<_, Option<String>>(1), None);
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn selection_all_matches_scope_all() {
    // transform_page (scope) and transform_page_with (resolved selection) agree.
    let body = search_body(SINGLE_ISSUES.iter().map(|f| fixture(f)).collect());
    let mut b1 = body.clone();
    let a = transform_page_with(
        &meta("s", PageKind::Search, 0),
        &mut b1,
        &fixture_catalog(),
        &Selection::all(),
    )
    .unwrap();
    assert_eq!(a, transform(body, &["*all"]));
}

#[test]
fn simulator_pages_transform_cleanly_and_match_its_ground_truth() {
    use jira_sim::Dataset;
    let ds = Dataset::new(7, 300, &[]);
    let catalog = Catalog::parse(&jira_sim::render::field_list(&ds)).unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let (mut histories, mut links, mut issues) = (0u64, std::collections::HashSet::new(), 0u64);
    for (seq, start) in (0..300).step_by(100).enumerate() {
        let mut body = ds.search_page_body(start, 100, true);
        let m = meta("s", PageKind::Search, seq as u32);
        let b = transform_page(&m, &mut body, &catalog, &scope("s", &["*all"])).unwrap();
        assert!(b.meta.quarantined.is_empty(), "{:?}", b.meta.quarantined);
        issues += b.meta.issues.len() as u64;
        histories += b.row_count("changelog");
        for r in rows(&b, "issue_link") {
            links.insert(get(&r, "link_id").unwrap().to_string());
        }
        for r in rows(&b, "issue_field_value") {
            kinds.insert(get(&r, "value_kind").unwrap().to_string());
        }
        for r in rows(&b, "issue") {
            assert!(get(&r, "updated").is_some() && get(&r, "created").is_some());
            assert!(get(&r, "status_category").is_some());
        }
    }
    assert_eq!(issues, 300);
    let truth_hist: usize = (0..300).map(|i| ds.issue(i).history_ids().len()).sum();
    assert_eq!(histories, truth_hist as u64);
    let truth_links: std::collections::HashSet<String> = (0..300)
        .flat_map(|i| ds.issue(i).link_ids())
        .map(|l| l.to_string())
        .collect();
    assert_eq!(links, truth_links);
    for k in [
        "number", "text", "option", "user", "datetime", "date", "sprint", "string",
    ] {
        assert!(kinds.contains(k), "no {k} values in {kinds:?}");
    }
    assert!(!kinds.contains("json"), "{kinds:?}");
}

#[test]
fn a_corrupt_field_catalogue_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path(), "tst");
    let st = Staging::new(&cfg.staging.dir, 3);
    populate(&st, "tst");
    st.write_compressed(&st.catalog_path(RUN), b"<html>oops</html>")
        .unwrap();
    let e = transform::run_stage(&cfg, &[], 1).unwrap_err().to_string();
    assert!(e.contains(&format!("{RUN}.field.json.zst")), "{e}");
    assert!(e.contains("field catalogue"), "{e}");
    // Nothing was quarantined for it: the pages wait for a fixed catalogue.
    assert_eq!(st.list_pages("tst").unwrap().len(), SINGLE_ISSUES.len() + 1);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            Just(json!("2024-03-10T01:59:59.123-0500")),
            Just(json!("2024-03-10")),
            Just(json!("10010")),
            Just(json!(
                "com.atlassian.greenhopper.service.sprint.Sprint@1[id=1,state=ACTIVE,name=S]"
            )),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "id",
                        "key",
                        "name",
                        "value",
                        "self",
                        "child",
                        "state",
                        "outwardIssue",
                        "inwardIssue",
                        "type",
                        "statusCategory",
                        "displayName",
                        "x",
                    ]),
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    const FIELDS: &[&str] = &[
        "summary",
        "description",
        "status",
        "issuetype",
        "priority",
        "resolution",
        "assignee",
        "reporter",
        "creator",
        "created",
        "updated",
        "resolutiondate",
        "duedate",
        "project",
        "parent",
        "labels",
        "components",
        "fixVersions",
        "versions",
        "issuelinks",
        "customfield_10000",
        "customfield_10001",
        "customfield_99",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// Whatever shape each field has, the page is transformed: the issue
        /// lands or is quarantined alone, and every row has the table's width.
        #[test]
        fn any_field_shape_is_transformed_or_quarantined_never_a_panic(
            values in prop::collection::vec((prop::sample::select(FIELDS), json_value()), 0..12),
            changelog in json_value(),
        ) {
            let fields: serde_json::Map<String, Value> =
                values.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let issue = json!({"id": "5", "key": "F-5", "fields": fields, "changelog": {"histories": [changelog]}});
            let good = json!({"id": "6", "key": "F-6", "fields": {"summary": "ok"}});
            let b = transform(search_body(vec![issue, good]), &["*all"]);
            prop_assert_eq!(b.meta.issues.len() + b.meta.quarantined.len(), 2);
            prop_assert!(b.meta.issues.iter().any(|i| i.key == "F-6"));
            for spec in tables::ALL {
                for row in tables::decode_rows(b.rows(spec.name)) {
                    prop_assert_eq!(row.len(), spec.columns.len(), "{}", spec.name);
                }
            }
        }
    }
}

/// A real `kill -9` of `pipeline run --stage transform` at an arbitrary
/// moment, then a rerun: the batches equal an uninterrupted run's, byte for
/// byte (whenever the kill lands, so the assertion does not depend on timing).
#[test]
fn kill_9_mid_run_then_rerun_gives_identical_batches() {
    use jira_sim::Dataset;
    let s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    let st = Staging::new(w.path().join("staging"), 3);
    let ref_dir = tempfile::tempdir().unwrap();
    let ref_cfg = test_config(ref_dir.path(), "demo");
    let ref_st = Staging::new(&ref_cfg.staging.dir, 3);
    let ds = Dataset::new(11, 3000, &[]);
    for target in [&st, &ref_st] {
        target
            .write_compressed(
                &target.catalog_path(RUN),
                &jira_sim::render::field_list(&ds),
            )
            .unwrap();
        for seq in 0..30u32 {
            let mut m = meta("demo", PageKind::Search, seq);
            m.fetched_at = staging_checkpoint().unwrap();
            target
                .write_page(&m, &ds.search_page_body(seq * 100, 100, true))
                .unwrap();
        }
    }
    transform::run_stage(&ref_cfg, &[], 2).unwrap();

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pipeline"))
        .current_dir(w.path())
        .env("DATABASE_URL", database_url())
        .args(["-q", "run", "--stage", "transform"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = st.list_batches("demo").unwrap().len();
    eprintln!("killed after {done_before} of 30 batches");

    w.cmd()
        .args(["run", "--stage", "transform"])
        .assert()
        .success()
        .stdout(predicates::str::contains(format!(
            "({done_before} already done)"
        )));
    let pages = ref_st.list_pages("demo").unwrap();
    assert_eq!(st.list_batches("demo").unwrap(), pages);
    let leftovers: Vec<_> = std::fs::read_dir(st.batches_dir("demo"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for p in &pages {
        for spec in tables::ALL {
            let f = format!("{}.copy.zst", spec.name);
            assert_eq!(
                std::fs::read(ref_st.batch_dir("demo", p).join(&f)).ok(),
                std::fs::read(st.batch_dir("demo", p).join(&f)).ok(),
                "{p}/{f}"
            );
        }
        assert_eq!(
            std::fs::read(ref_st.batch_dir("demo", p).join("meta.json")).unwrap(),
            std::fs::read(st.batch_dir("demo", p).join("meta.json")).unwrap(),
            "{p}/meta.json"
        );
    }
}
