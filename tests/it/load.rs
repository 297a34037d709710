//! Load stage: merge rules, exactly-once, checkpoints, crash and reconnect, lock,
//! and `run --stage load` through the binary. Batches are built directly with
//! `tables::CopyRow` and `batch::Batch`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use jira_pipeline_core::batch::{Batch, BatchMeta, IssueVersion, QuarantinedIssue, TableCount};
use jira_pipeline_core::error::{Error, ExitCode};
use jira_pipeline_core::load::{HookPoint, LoadOptions, Loader};
use jira_pipeline_core::staging::{PageKind, PageMeta, Staging};
use jira_pipeline_core::tables::{self, CopyRow};
use predicates::prelude::*;

use crate::common::*;

const SCOPE: &str = "demo";
const RUN1: &str = "20240301T100000000Z";
const RUN2: &str = "20240302T100000000Z";

fn t(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(min)
}

/// One issue as a page carries it.
#[derive(Clone, Debug)]
struct Iss {
    id: i64,
    key: String,
    project: String,
    updated: DateTime<Utc>,
    summary: String,
    labels: Vec<String>,
    components: Vec<(i64, String)>,
    versions: Vec<(i64, &'static str, String)>,
    /// (link_id, source, target)
    links: Vec<(i64, i64, i64)>,
    /// (history_id, author)
    histories: Vec<(i64, String)>,
    /// (field_id, ordinal, number)
    fields: Vec<(String, i32, f64)>,
}

fn iss(id: i64, min: i64) -> Iss {
    Iss {
        id,
        key: format!("DEMO-{id}"),
        project: "DEMO".into(),
        updated: t(min),
        summary: format!("summary {id}\twith tab, \\ backslash\nand newline"),
        labels: vec!["l1".into(), "l2".into()],
        components: vec![(10, "api".into())],
        versions: vec![(20, "fix", "1.0".into()), (21, "affects", "0.9".into())],
        links: vec![],
        histories: vec![(id * 1000 + 1, "alice".into())],
        fields: vec![("customfield_10002".into(), 0, 3.0)],
    }
}

struct Rows(BTreeMap<&'static str, (Vec<u8>, u64)>);

impl Rows {
    fn new() -> Self {
        Rows(BTreeMap::new())
    }
    fn row(&mut self, table: &'static str, f: impl FnOnce(&mut CopyRow)) {
        let e = self.0.entry(table).or_default();
        let mut r = CopyRow::new(&mut e.0);
        f(&mut r);
        r.end();
        e.1 += 1;
    }
}

fn build(
    page: String,
    run: &str,
    kind: PageKind,
    issues: &[Iss],
    rows: Rows,
    end: Option<(u64, DateTime<Utc>)>,
) -> Batch {
    let mut data = Vec::new();
    let mut counts = Vec::new();
    for spec in tables::ALL {
        if let Some((bytes, n)) = rows.0.get(spec.name) {
            data.push((spec.name, bytes.clone()));
            counts.push(TableCount {
                table: spec.name.into(),
                rows: *n,
            });
        }
    }
    Batch {
        meta: BatchMeta {
            format: 1,
            scope: SCOPE.into(),
            page,
            run_id: run.into(),
            kind,
            issues: issues
                .iter()
                .map(|i| IssueVersion {
                    id: i.id,
                    key: i.key.clone(),
                    updated: Some(i.updated),
                    digest: None,
                })
                .collect(),
            tables: counts,
            checkpoint: end.map(|e| e.1),
            pages_in_run: end.map(|e| e.0),
            fingerprint: None,
            notes: Default::default(),
            quarantined: vec![],
            source_bytes: 0,
        },
        data,
    }
}

/// A search page of `run` holding `issues`.
fn page(run: &str, seq: u32, issues: &[Iss]) -> Batch {
    let mut r = Rows::new();
    for i in issues {
        r.row("issue", |c| {
            c.i64(i.id)
                .text(&i.key)
                .i64(10000)
                .text(&i.project)
                .text("Bug")
                .text("Open")
                .text("new")
                .null()
                .null()
                .text(&i.summary)
                .opt_text(None)
                .text("bob")
                .text("carol")
                .text("carol")
                .timestamp(t(0))
                .timestamp(i.updated)
                .null()
                .date(chrono::NaiveDate::from_ymd_opt(2024, 4, 1).unwrap())
                .null()
                .null()
                .null()
                .text(SCOPE);
            for _ in 0..13 {
                c.null();
            }
        });
        for l in &i.labels {
            r.row("issue_label", |c| {
                c.i64(i.id).text(l);
            });
        }
        for (cid, name) in &i.components {
            r.row("issue_component", |c| {
                c.i64(i.id).i64(*cid).text(name);
            });
        }
        for (vid, rel, name) in &i.versions {
            r.row("issue_version", |c| {
                c.i64(i.id).i64(*vid).text(rel).text(name).bool(true).null();
            });
        }
        for (lid, s, tg) in &i.links {
            r.row("issue_link", |c| {
                c.i64(*lid)
                    .i64(*s)
                    .i64(*tg)
                    .text(&format!("DEMO-{s}"))
                    .text(&format!("DEMO-{tg}"))
                    .text("Blocks")
                    .text("blocks")
                    .text("is blocked by");
            });
        }
        for (h, author) in &i.histories {
            r.row("changelog", |c| {
                c.i64(*h).i64(i.id).text(author).timestamp(t(1));
            });
            r.row("changelog_item", |c| {
                c.i64(*h)
                    .i64(0)
                    .i64(i.id)
                    .text("status")
                    .text("jira")
                    .text("status")
                    .text("1")
                    .text("Open")
                    .text("3")
                    .text("In Progress");
            });
        }
        for (f, ord, n) in &i.fields {
            r.row("issue_field_value", |c| {
                c.i64(i.id)
                    .text(f)
                    .i64(i64::from(*ord))
                    .text("number")
                    .null()
                    .f64(*n)
                    .null()
                    .null()
                    .null()
                    .null()
                    .null()
                    .null();
            });
        }
    }
    build(
        jira_pipeline_core::staging::page_name(run, 0, seq),
        run,
        PageKind::Search,
        issues,
        r,
        None,
    )
}

/// The End page of `run`: the field catalogue and the proposed checkpoint.
fn end_page(run: &str, pages_in_run: u64, checkpoint: DateTime<Utc>, field_name: &str) -> Batch {
    let mut r = Rows::new();
    for (id, name, custom) in [
        ("summary", "Summary", false),
        ("customfield_10002", field_name, true),
    ] {
        r.row("field", |c| {
            c.text(id)
                .text(name)
                .bool(custom)
                .text("string")
                .null()
                .null()
                .opt_i64(custom.then_some(10002));
        });
    }
    build(
        jira_pipeline_core::staging::end_page_name(run),
        run,
        PageKind::End,
        &[],
        r,
        Some((pages_in_run, checkpoint)),
    )
}

struct Env {
    s: TestSchema,
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            s: TestSchema::initialised(),
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn staging(&self) -> Staging {
        Staging::new(self.dir.path(), 3)
    }
    fn loader(&self) -> Loader {
        Loader::new(connect(), &self.s.name, self.staging())
    }
    fn q(&mut self, sql: &str) -> Vec<postgres::Row> {
        let sql = sql.replace("S.", &format!("\"{}\".", self.s.name));
        self.client().query(&sql, &[]).unwrap()
    }
    fn client(&mut self) -> &mut postgres::Client {
        &mut self.s.client
    }
    fn strings(&mut self, sql: &str) -> Vec<String> {
        self.q(sql).iter().map(|r| r.get(0)).collect()
    }
    fn count(&mut self, table: &str) -> i64 {
        self.s.count(table)
    }
    /// `table -> [(key text, xmin, ctid)]`: any new tuple version changes it.
    fn tuples(&mut self) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for spec in tables::ALL {
            let key = spec.key.join("::text || '/' || ");
            let v = self.strings(&format!(
                "SELECT {key}::text || ' ' || xmin::text || ' ' || ctid::text FROM S.{} ORDER BY 1",
                spec.name
            ));
            out.insert(spec.name.to_string(), v);
        }
        out
    }
    fn checkpoint(&mut self) -> Option<DateTime<Utc>> {
        self.q("SELECT cursor FROM S.checkpoint WHERE scope = 'demo'")
            .first()
            .map(|r| r.get(0))
    }
}

#[test]
fn load_fills_every_table_and_round_trips_values() {
    let mut e = Env::new();
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2)];
    let mut b = iss(2, 11);
    b.links = vec![(500, 1, 2)];
    b.labels = vec!["naïve 😀".into(), "back\\slash".into()];
    let mut l = e.loader();
    let r = l
        .load_unit(&[
            page(RUN1, 0, &[a.clone(), b.clone()]),
            end_page(RUN1, 1, t(100), "Story Points"),
        ])
        .unwrap();
    assert_eq!(r.pages_loaded, 2);
    assert_eq!(r.table("issue").inserted, 2);
    assert_eq!(r.table("issue_label").inserted, 4);
    assert_eq!(r.table("issue_link").inserted, 1, "one link owned by both");
    assert_eq!(r.table("field").inserted, 2);
    assert_eq!(r.checkpoint, Some(t(100)));
    for (table, n) in [
        ("issue", 2),
        ("issue_label", 4),
        ("issue_component", 2),
        ("issue_version", 4),
        ("issue_link", 1),
        ("changelog", 2),
        ("changelog_item", 2),
        ("issue_field_value", 2),
        ("field", 2),
        ("page_ledger", 2),
    ] {
        assert_eq!(e.count(table), n, "{table}");
    }
    let row = &e
        .q("SELECT summary, description, updated, due_date::text FROM S.issue WHERE issue_id = 1")
        [0];
    assert_eq!(row.get::<_, String>(0), a.summary);
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, DateTime<Utc>>(2), t(10));
    assert_eq!(row.get::<_, String>(3), "2024-04-01");
    let labels = e.strings("SELECT label FROM S.issue_label WHERE issue_id = 2 ORDER BY label");
    assert_eq!(
        labels,
        vec!["back\\slash".to_string(), "naïve 😀".to_string()]
    );
    assert_eq!(e.checkpoint(), Some(t(100)));
}

#[test]
fn same_batch_twice_is_skipped_by_the_ledger() {
    let mut e = Env::new();
    let p = page(RUN1, 0, &[iss(1, 10)]);
    let mut l = e.loader();
    l.load_unit(std::slice::from_ref(&p)).unwrap();
    let before = e.tuples();
    let r = l.load_unit(&[p]).unwrap();
    assert_eq!((r.pages_loaded, r.pages_skipped), (0, 1));
    assert_eq!(r.rows_written(), 0);
    assert_eq!(e.tuples(), before);
    assert_eq!(e.count("page_ledger"), 1);
}

#[test]
fn identical_rows_on_a_new_page_write_no_tuple() {
    let mut e = Env::new();
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2)];
    let b = iss(2, 10);
    let mut l = e.loader();
    l.load_unit(&[
        page(RUN1, 0, &[a.clone(), b.clone()]),
        end_page(RUN1, 1, t(100), "Story Points"),
    ])
    .unwrap();
    let before = e.tuples();
    // Same content, new pages (a later run): not skipped, merged, and a no-op.
    let r = l
        .load_unit(&[
            page(RUN2, 0, &[a, b]),
            end_page(RUN2, 1, t(100), "Story Points"),
        ])
        .unwrap();
    assert_eq!(r.pages_loaded, 2);
    assert_eq!(r.issues_accepted, 2);
    assert_eq!(r.rows_written(), 0, "{:?}", r.tables);
    assert_eq!(e.tuples(), before, "no table got a new tuple version");
}

#[test]
fn older_page_after_newer_changes_nothing() {
    let mut e = Env::new();
    let mut new = iss(1, 20);
    new.summary = "new".into();
    new.labels = vec!["a".into(), "b".into()];
    let mut old = iss(1, 10);
    old.summary = "old".into();
    old.labels = vec!["a".into(), "c".into()];
    old.components = vec![];
    let mut l = e.loader();
    l.load_unit(&[page(RUN2, 0, &[new])]).unwrap();
    let before = e.tuples();
    let r = l.load_unit(&[page(RUN1, 0, &[old])]).unwrap();
    assert_eq!(r.issues_rejected_older, 1);
    assert_eq!(r.issues_accepted, 0);
    assert_eq!(r.rows_written(), 0, "{:?}", r.tables);
    assert_eq!(e.strings("SELECT summary FROM S.issue"), vec!["new"]);
    assert_eq!(
        e.strings("SELECT label FROM S.issue_label ORDER BY 1"),
        vec!["a", "b"]
    );
    assert_eq!(e.count("issue_component"), 1);
    assert_eq!(e.tuples(), before);
    assert_eq!(
        e.count("page_ledger"),
        2,
        "the old page is recorded as loaded"
    );
}

#[test]
fn child_sets_are_replaced_and_unchanged_children_untouched() {
    let mut e = Env::new();
    let mut v1 = iss(1, 10);
    v1.labels = vec!["a".into(), "b".into(), "c".into()];
    v1.components = vec![(10, "api".into()), (11, "ui".into())];
    v1.fields = vec![
        ("customfield_1".into(), 0, 1.0),
        ("customfield_1".into(), 1, 2.0),
    ];
    let mut other = iss(2, 10);
    other.labels = vec!["keep".into()];
    let mut l = e.loader();
    l.load_unit(&[page(RUN1, 0, &[v1.clone(), other])]).unwrap();
    let xmin = |e: &mut Env, sql: &str| e.strings(sql);
    let ab_before = xmin(
        &mut e,
        "SELECT label || xmin::text FROM S.issue_label WHERE issue_id = 1 AND label IN ('a','b') ORDER BY 1",
    );
    let keep_before = xmin(
        &mut e,
        "SELECT xmin::text FROM S.issue_label WHERE issue_id = 2",
    );

    let mut v2 = v1.clone();
    v2.updated = t(20);
    v2.labels = vec!["a".into(), "b".into(), "d".into()];
    v2.components = vec![(10, "api-renamed".into())];
    v2.versions = vec![];
    v2.fields = vec![("customfield_1".into(), 0, 1.0)];
    let r = l.load_unit(&[page(RUN1, 1, &[v2])]).unwrap();
    assert_eq!(r.table("issue").updated, 1);
    assert_eq!(
        r.table("issue_label"),
        jira_pipeline_core::load::TableCounts {
            inserted: 1,
            updated: 0,
            deleted: 1
        }
    );
    assert_eq!(r.table("issue_component").updated, 1);
    assert_eq!(r.table("issue_component").deleted, 1);
    assert_eq!(r.table("issue_version").deleted, 2, "empty set removes all");
    assert_eq!(r.table("issue_field_value").deleted, 1);
    assert_eq!(
        e.strings("SELECT label FROM S.issue_label WHERE issue_id = 1 ORDER BY 1"),
        vec!["a", "b", "d"]
    );
    assert_eq!(
        e.strings("SELECT component_name FROM S.issue_component WHERE issue_id = 1"),
        vec!["api-renamed"]
    );
    assert_eq!(e.count("issue_version"), 2, "issue 2's versions stay");
    assert_eq!(
        xmin(
            &mut e,
            "SELECT label || xmin::text FROM S.issue_label WHERE issue_id = 1 AND label IN ('a','b') ORDER BY 1"
        ),
        ab_before,
        "unchanged labels are not rewritten"
    );
    assert_eq!(
        xmin(
            &mut e,
            "SELECT xmin::text FROM S.issue_label WHERE issue_id = 2"
        ),
        keep_before,
        "issues not in the batch are untouched"
    );
}

#[test]
fn a_link_belongs_to_its_source_and_its_target() {
    let mut e = Env::new();
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2), (501, 3, 1)];
    let mut b = iss(2, 10);
    b.links = vec![(500, 1, 2)];
    let mut l = e.loader();
    l.load_unit(&[page(RUN1, 0, &[a.clone(), b.clone()])])
        .unwrap();
    assert_eq!(e.count("issue_link"), 2);
    // Issue 2 (the *target* of link 500) comes back without it: the link is gone.
    b.updated = t(20);
    b.links = vec![];
    let r = l.load_unit(&[page(RUN1, 1, &[b])]).unwrap();
    assert_eq!(r.table("issue_link").deleted, 1);
    assert_eq!(
        e.strings("SELECT link_id::text FROM S.issue_link"),
        vec!["501"]
    );
    // Issue 1 (the target of 501, whose source 3 is not loaded) drops it too.
    a.updated = t(30);
    a.links = vec![];
    l.load_unit(&[page(RUN1, 2, &[a])]).unwrap();
    assert_eq!(e.count("issue_link"), 0);
}

#[test]
fn a_link_kept_by_one_accepted_issue_survives_the_other() {
    // In one unit, issue 1 still lists link 500 and issue 2 (its target) does
    // not: an accepted issue says it exists, so it is kept (not deleted and
    // re-inserted).
    let mut e = Env::new();
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2)];
    let mut b = iss(2, 10);
    b.links = vec![(500, 1, 2)];
    let mut l = e.loader();
    l.load_unit(&[page(RUN1, 0, &[a.clone(), b.clone()])])
        .unwrap();
    let before = e.tuples();
    b.links = vec![];
    let r = l.load_unit(&[page(RUN1, 1, &[a, b])]).unwrap();
    assert_eq!(r.table("issue_link").total(), 0);
    assert_eq!(e.tuples()["issue_link"], before["issue_link"]);
}

#[test]
fn changelog_is_inserted_once() {
    let mut e = Env::new();
    let a = iss(1, 10);
    let mut l = e.loader();
    l.load_unit(&[page(RUN1, 0, std::slice::from_ref(&a))])
        .unwrap();
    let before = e.tuples();
    let mut a2 = a.clone();
    a2.updated = t(20);
    a2.histories = vec![(1001, "someone else".into()), (1002, "dave".into())];
    let r = l.load_unit(&[page(RUN1, 1, &[a2])]).unwrap();
    assert_eq!(r.table("changelog").inserted, 1);
    assert_eq!(r.table("changelog_item").inserted, 1);
    assert_eq!(
        e.strings("SELECT author FROM S.changelog ORDER BY history_id"),
        vec!["alice", "dave"]
    );
    let after = e.tuples();
    assert!(after["changelog"].contains(&before["changelog"][0]));
}

#[test]
fn field_catalogue_rewritten_only_when_different() {
    let mut e = Env::new();
    let mut l = e.loader();
    l.load_unit(&[end_page(RUN1, 0, t(1), "Story Points")])
        .unwrap();
    let before = e.tuples();
    let r = l
        .load_unit(&[end_page(RUN2, 0, t(2), "Story Points")])
        .unwrap();
    assert_eq!(r.table("field").total(), 0);
    assert_eq!(e.tuples()["field"], before["field"]);
    let r = l
        .load_unit(&[end_page("20240303T100000000Z", 0, t(3), "Points")])
        .unwrap();
    assert_eq!(r.table("field").updated, 1);
    assert_eq!(
        e.strings("SELECT name FROM S.field WHERE field_id = 'customfield_10002'"),
        vec!["Points"]
    );
}

#[test]
fn duplicate_issue_in_one_unit_latest_updated_wins() {
    for newer_first in [true, false] {
        let mut e = Env::new();
        let mut new = iss(1, 20);
        new.summary = "new".into();
        new.labels = vec!["n".into()];
        new.links = vec![(500, 1, 2)];
        let mut old = iss(1, 10);
        old.summary = "old".into();
        old.labels = vec!["o1".into(), "o2".into()];
        old.links = vec![(501, 1, 3)];
        let pages = if newer_first {
            vec![page(RUN1, 0, &[new]), page(RUN1, 1, &[old])]
        } else {
            vec![page(RUN1, 0, &[old]), page(RUN1, 1, &[new])]
        };
        let r = e.loader().load_unit(&pages).unwrap();
        assert_eq!(r.pages_loaded, 2);
        assert_eq!(r.table("issue").inserted, 1);
        assert_eq!(e.strings("SELECT summary FROM S.issue"), vec!["new"]);
        assert_eq!(e.strings("SELECT label FROM S.issue_label"), vec!["n"]);
        assert_eq!(
            e.strings("SELECT link_id::text FROM S.issue_link"),
            vec!["500"]
        );
    }
}

#[test]
fn moved_issue_is_one_updated_row() {
    let mut e = Env::new();
    let mut l = e.loader();
    l.load_unit(&[page(RUN1, 0, &[iss(1, 10)])]).unwrap();
    let mut moved = iss(1, 20);
    moved.key = "OPS-7".into();
    moved.project = "OPS".into();
    let r = l.load_unit(&[page(RUN1, 1, &[moved])]).unwrap();
    assert_eq!(r.table("issue").updated, 1);
    let rows = e.q("SELECT issue_key, project_key FROM S.issue");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "OPS-7");
    assert_eq!(rows[0].get::<_, String>(1), "OPS");
}

#[test]
fn end_page_moves_the_checkpoint_only_when_its_run_is_complete() {
    let mut e = Env::new();
    let st = e.staging();
    let p0 = page(RUN1, 0, &[iss(1, 10)]);
    let p1 = page(RUN1, 1, &[iss(2, 10)]);
    let end = end_page(RUN1, 2, t(100), "Story Points");
    jira_pipeline_core::batch::write_batch(&st, &end).unwrap();
    let mut l = e.loader();
    let r = l.load_unit(&[p0, end.clone()]).unwrap();
    assert_eq!(r.pages_deferred, 1);
    assert_eq!(r.checkpoint, None);
    assert_eq!(e.checkpoint(), None, "page 1 of 2 is missing");
    assert_eq!(e.count("page_ledger"), 1, "the End page is not recorded");
    assert_eq!(st.list_batches(SCOPE).unwrap(), vec![end.meta.page.clone()]);

    l.load_unit(&[p1]).unwrap();
    let r = l.load_unit(&[end]).unwrap();
    assert_eq!(r.pages_loaded, 1);
    assert_eq!(e.checkpoint(), Some(t(100)));
    assert!(st.list_batches(SCOPE).unwrap().is_empty());

    // An older run's End page never moves the checkpoint back.
    let r = l
        .load_unit(&[end_page("20240201T000000000Z", 0, t(50), "Story Points")])
        .unwrap();
    assert_eq!(r.checkpoint, Some(t(100)));
    assert_eq!(e.checkpoint(), Some(t(100)));
    // A newer complete run moves it forward.
    l.load_unit(&[
        page(RUN2, 0, &[iss(3, 10)]),
        end_page(RUN2, 1, t(200), "Story Points"),
    ])
    .unwrap();
    assert_eq!(e.checkpoint(), Some(t(200)));
}

fn write_page_file(st: &Staging, b: &Batch) {
    let meta = PageMeta {
        format: 1,
        kind: b.meta.kind,
        scope: b.meta.scope.clone(),
        run_id: b.meta.run_id.clone(),
        mode: "backfill".into(),
        slice: 0,
        seq: b
            .meta
            .page
            .rsplit("-p")
            .next()
            .unwrap()
            .parse()
            .unwrap_or(0),
        jql: String::new(),
        start_at: 0,
        max_results: 100,
        issue_count: 0,
        total: None,
        first_updated: None,
        last_updated: None,
        fetched_at: Utc::now(),
        request_id: None,
        http_status: 200,
        checkpoint: b.meta.checkpoint,
        pages_in_run: b.meta.pages_in_run,
        fingerprint: None,
        extra: Vec::new(),
    };
    let p = st.write_page(&meta, b"{}").unwrap();
    assert_eq!(
        p.file_name().unwrap().to_string_lossy(),
        format!("{}.ndjson.zst", b.meta.page)
    );
}

#[test]
fn connection_killed_before_commit_moves_neither_data_nor_checkpoint() {
    let mut e = Env::new();
    let st = e.staging();
    let batches = vec![
        page(RUN1, 0, &[iss(1, 10)]),
        end_page(RUN1, 1, t(100), "Story Points"),
    ];
    for b in &batches {
        jira_pipeline_core::batch::write_batch(&st, b).unwrap();
        write_page_file(&st, b);
    }
    let mut l = e.loader();
    l.set_hook(|p, pid, _| {
        if p == HookPoint::BeforeCommit {
            terminate(pid);
        }
    });
    let err = l.load_unit(&batches).unwrap_err();
    assert!(
        err.to_string().contains("scope demo"),
        "names the scope: {err}"
    );
    assert_eq!(e.count("issue"), 0);
    assert_eq!(e.count("page_ledger"), 0);
    assert_eq!(e.checkpoint(), None);
    assert_eq!(
        st.list_batches(SCOPE).unwrap().len(),
        2,
        "batches stay staged"
    );
    assert_eq!(st.list_pages(SCOPE).unwrap().len(), 2, "pages not archived");
}

/// Terminates a backend from another connection and waits until it is gone.
fn terminate(pid: i32) {
    let mut c = connect();
    let ok: bool = c
        .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
        .unwrap()
        .get(0);
    assert!(ok, "backend {pid} terminated");
}

#[test]
fn lost_connection_mid_unit_is_rolled_back_and_redone() {
    for point in [
        HookPoint::AfterCopy,
        HookPoint::AfterMerge,
        HookPoint::BeforeCommit,
    ] {
        let mut e = Env::new();
        let st = e.staging();
        let batches = vec![
            page(RUN1, 0, &[iss(1, 10), iss(2, 10)]),
            end_page(RUN1, 1, t(100), "Story Points"),
        ];
        for b in &batches {
            jira_pipeline_core::batch::write_batch(&st, b).unwrap();
            write_page_file(&st, b);
        }
        let mut l = e
            .loader()
            .with_options(LoadOptions {
                backoff_base: std::time::Duration::from_millis(1),
                ..LoadOptions::default()
            })
            .with_reconnect(|| Ok::<_, Error>(connect()));
        let pids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = pids.clone();
        l.set_hook(move |p, pid, attempt| {
            if p == point && attempt == 1 {
                seen.lock().unwrap().push(pid);
                terminate(pid);
            }
        });
        let r = l.load_unit(&batches).unwrap();
        assert_eq!(r.retries, 1, "{point:?}");
        assert_eq!(r.table("issue").inserted, 2, "{point:?}");
        assert_eq!(pids.lock().unwrap().len(), 1);
        assert_eq!(e.count("issue"), 2);
        assert_eq!(e.count("issue_label"), 4);
        assert_eq!(e.count("page_ledger"), 2);
        assert_eq!(e.checkpoint(), Some(t(100)));
        assert!(st.list_batches(SCOPE).unwrap().is_empty());
        assert!(st.list_pages(SCOPE).unwrap().is_empty());
        assert_eq!(st.list_archived(SCOPE).unwrap().len(), 2);
    }
}

#[test]
fn quarantined_issues_are_recorded() {
    let mut e = Env::new();
    let mut p = page(RUN1, 0, &[iss(1, 10)]);
    p.meta.quarantined = vec![
        QuarantinedIssue {
            key: "DEMO-9".into(),
            id: Some(9),
            reason: "first".into(),
        },
        QuarantinedIssue {
            key: "DEMO-9".into(),
            id: Some(9),
            reason: "customfield_1: expected a number, got \"x\"".into(),
        },
    ];
    let r = e.loader().load_unit(&[p.clone()]).unwrap();
    assert_eq!(r.quarantined, 1, "one row per page and issue");
    let rows = e.q("SELECT page, issue_key, reason FROM S.quarantine");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), p.meta.page);
    assert_eq!(rows[0].get::<_, String>(1), "DEMO-9");
    assert!(rows[0].get::<_, String>(2).contains("expected a number"));
}

#[test]
fn row_count_mismatch_is_refused() {
    let mut e = Env::new();
    let mut p = page(RUN1, 0, &[iss(1, 10)]);
    for t in &mut p.meta.tables {
        if t.table == "issue_label" {
            t.rows += 1;
        }
    }
    let err = e.loader().load_unit(&[p]).unwrap_err().to_string();
    assert!(err.contains("issue_label") && err.contains(RUN1), "{err}");
    assert_eq!(e.count("issue"), 0);
}

fn stage_config(schema: &str) -> String {
    config_with(schema, "").replace("[database]", "[staging]\ndir = \"staging\"\n\n[database]")
}

#[test]
fn run_stage_load_via_the_binary() {
    let mut e = Env::new();
    let w = Workdir::new(&stage_config(&e.s.name));
    let st = Staging::new(w.path().join("staging"), 3);
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2)];
    let batches = vec![
        page(RUN1, 0, &[a, iss(2, 10)]),
        page(RUN1, 1, &[iss(3, 10)]),
        end_page(RUN1, 2, t(100), "Story Points"),
    ];
    for b in &batches {
        jira_pipeline_core::batch::write_batch(&st, b).unwrap();
        write_page_file(&st, b);
    }
    w.cmd()
        .args(["run", "--stage", "load"])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 page(s) loaded"))
        .stdout(predicate::str::contains("checkpoint of scope demo"));
    assert_eq!(e.count("issue"), 3);
    assert_eq!(e.count("page_ledger"), 3);
    assert_eq!(e.checkpoint(), Some(t(100)));
    assert!(st.list_batches(SCOPE).unwrap().is_empty());
    assert_eq!(st.list_archived(SCOPE).unwrap().len(), 3);
    // Loaded batch directories went through the trash, emptied before exit;
    // a leftover there (a killed run's) is deleted by the next load.
    let trash = st.trash_dir();
    assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    std::fs::create_dir_all(trash.join("demo--leftover/x")).unwrap();
    // Nothing left: a second run is a no-op.
    w.cmd()
        .args(["run", "--stage", "load", "--scope", "demo"])
        .assert()
        .success();
    assert_eq!(e.count("issue"), 3);
    // A crash between COMMIT and the archive move: the batch is staged again,
    // the ledger knows the page, the run only archives it.
    jira_pipeline_core::batch::write_batch(&st, &batches[0]).unwrap();
    w.cmd()
        .args(["run", "--stage", "load"])
        .assert()
        .success()
        .stdout(predicate::str::contains("1 already loaded"));
    assert!(st.list_batches(SCOPE).unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&trash).unwrap().count(), 0);
    // Unknown scope: usage error.
    w.cmd()
        .args(["run", "--stage", "load", "--scope", "nope"])
        .assert()
        .code(ExitCode::Usage as i32);
}

#[test]
fn second_run_exits_5_naming_the_holder() {
    let mut e = Env::new();
    let w = Workdir::new(&stage_config(&e.s.name));
    let name = e.s.name.clone();
    jira_pipeline_core::db::try_lock(e.client(), &name).unwrap();
    w.cmd()
        .args(["run", "--stage", "load"])
        .assert()
        .code(ExitCode::Locked as i32)
        .stderr(predicate::str::contains("holds the lock"))
        .stderr(predicate::str::contains("pid"));
}

#[test]
fn bench_load_runs_and_its_noop_reload_writes_nothing() {
    let s = TestSchema::new();
    let w = Workdir::new(&config_with(&s.name, ""));
    let out = w
        .cmd()
        .args([
            "-q",
            "bench",
            "load",
            "--issues",
            "250",
            "--baseline-issues",
            "100",
            "--schema",
            &s.name,
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("250 issues"), "{out}");
    assert!(out.contains("x ceiling"), "{out}");
    assert!(out.contains("only their primary keys"), "{out}");
    assert!(out.contains("rows written: 0"), "{out}");
    assert!(out.contains("x row-by-row"), "{out}");
    // The bench schemas are dropped afterwards.
    let mut c = connect();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1",
            &[&format!("{}%", s.name)],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[test]
fn redo_after_a_lost_connection_refuses_if_another_run_took_the_lock() {
    let mut e = Env::new();
    let mut conn = jira_pipeline_core::load::LockedConnector {
        url: jira_pipeline_core::config::Secret::new(database_url()),
        db: jira_pipeline_core::config::DatabaseConfig {
            schema: e.s.name.clone(),
            statement_timeout: std::time::Duration::from_secs(60),
            ca_bundle: None,
        },
        schema: e.s.name.clone(),
    };
    use jira_pipeline_core::load::Connect;
    let client = conn.connect().unwrap();
    let mut l = Loader::new(client, &e.s.name, e.staging())
        .with_options(LoadOptions {
            backoff_base: std::time::Duration::from_millis(1),
            ..LoadOptions::default()
        })
        .with_reconnect(conn);
    let schema = e.s.name.clone();
    let intruder = std::sync::Arc::new(std::sync::Mutex::new(None));
    let slot = intruder.clone();
    l.set_hook(move |p, pid, attempt| {
        if p == HookPoint::AfterMerge && attempt == 1 {
            terminate(pid);
            // The lock died with the loader's session: another run takes it.
            let mut other = connect();
            jira_pipeline_core::db::try_lock(&mut other, &schema).unwrap();
            *slot.lock().unwrap() = Some(other);
        }
    });
    let err = l.load_unit(&[page(RUN1, 0, &[iss(1, 10)])]).unwrap_err();
    assert_eq!(err.exit_code(), ExitCode::Locked, "{err}");
    assert!(intruder.lock().unwrap().is_some());
    assert_eq!(e.count("issue"), 0, "nothing written by the loser");
    assert_eq!(e.count("page_ledger"), 0);
}

/// [`page`] with each issue's digest, as transform computes it.
fn dpage(run: &str, seq: u32, issues: &[Iss]) -> Batch {
    let mut b = page(run, seq, issues);
    for (v, i) in b.meta.issues.iter_mut().zip(issues) {
        let one = page(run, seq, std::slice::from_ref(i));
        v.digest = Some(jira_pipeline_core::batch::issue_digest(
            one.data.iter().map(|(t, d)| (*t, d.as_slice())),
        ));
    }
    b
}

/// `(key, xmin)` of every row of issue `id` in the tables keyed by issue.
fn issue_tuples(e: &mut Env, id: i64) -> Vec<String> {
    let mut out = Vec::new();
    for spec in tables::ALL {
        if spec.column("issue_id").is_none() {
            continue;
        }
        out.extend(e.strings(&format!(
            "SELECT '{t} ' || ctid::text || ' ' || xmin::text FROM S.{t} WHERE issue_id = {id} ORDER BY 1",
            t = spec.name
        )));
    }
    out
}

#[test]
fn unchanged_issues_are_skipped_before_the_copy() {
    let mut e = Env::new();
    let mut a = iss(1, 10);
    a.links = vec![(500, 1, 2)];
    let b = iss(2, 10);
    let mut l = e.loader();
    let r = l
        .load_unit(&[
            dpage(RUN1, 0, &[a.clone(), b.clone()]),
            end_page(RUN1, 1, t(100), "Story Points"),
        ])
        .unwrap();
    assert_eq!((r.issues_accepted, r.issues_unchanged), (2, 0));
    assert_eq!(e.count("issue_digest"), 2);
    let a_before = issue_tuples(&mut e, 1);
    let b_before = issue_tuples(&mut e, 2);
    assert!(!a_before.is_empty());

    // b changes (a new label, a later `updated`); a arrives as it is stored.
    let mut b2 = b.clone();
    b2.updated = t(30);
    b2.labels.push("new".into());
    let r = l.load_unit(&[dpage(RUN2, 0, &[a.clone(), b2])]).unwrap();
    assert_eq!((r.issues_accepted, r.issues_unchanged), (1, 1));
    assert_eq!(r.table("issue_label").inserted, 1);
    assert_eq!(issue_tuples(&mut e, 1), a_before, "a was not touched");
    assert_ne!(issue_tuples(&mut e, 2), b_before, "b was rewritten");
    assert_eq!(
        e.strings("SELECT label FROM S.issue_label WHERE issue_id = 2 ORDER BY 1"),
        vec!["l1", "l2", "new"]
    );
    assert_eq!(e.count("issue_link"), 1, "a's link is still there");

    // The same content again on new pages: nothing is copied or written.
    let before = e.tuples();
    let mut b3 = b.clone();
    b3.updated = t(30);
    b3.labels.push("new".into());
    let r = l
        .load_unit(&[dpage("20240303T100000000Z", 0, &[a.clone(), b3])])
        .unwrap();
    assert_eq!((r.issues_accepted, r.issues_unchanged), (0, 2));
    assert_eq!(r.rows_written(), 0, "{:?}", r.tables);
    assert_eq!(
        r.pages_loaded, 1,
        "the page is still recorded in the ledger"
    );
    assert_eq!(e.tuples(), before, "no table got a new tuple version");

    // A replay skips nothing: the merge runs (and finds nothing to change).
    let mut rl = e.loader().with_options(LoadOptions {
        replay: true,
        ..LoadOptions::default()
    });
    let r = rl.load_unit(&[dpage(RUN1, 7, &[a])]).unwrap();
    assert_eq!((r.issues_accepted, r.issues_unchanged), (1, 0));
    assert_eq!(r.rows_written(), 0, "{:?}", r.tables);
}

#[test]
fn a_new_issue_whose_rows_are_stored_already_falls_back_to_the_merge() {
    let mut e = Env::new();
    let mut l = e.loader();
    // A fresh issue goes straight into the tables.
    let r = l.load_unit(&[dpage(RUN1, 0, &[iss(5, 10)])]).unwrap();
    assert!(
        r.timings.iter().any(|(s, _, _)| *s == "(direct copy)"),
        "{:?}",
        r.timings
    );
    assert_eq!(r.table("issue").inserted, 1);
    // A changelog row of issue 1 is stored although issue 1 is not (a user
    // deleted the issue row): the direct COPY hits the key, the unit is
    // merged instead, and the stored history is kept as it is.
    e.q("INSERT INTO S.changelog (history_id, issue_id, author) VALUES (1001, 1, 'kept')");
    let r = l.load_unit(&[dpage(RUN1, 1, &[iss(1, 10)])]).unwrap();
    assert!(
        !r.timings.iter().any(|(s, _, _)| *s == "(direct copy)"),
        "{:?}",
        r.timings
    );
    assert_eq!(r.issues_accepted, 1);
    assert_eq!(r.table("issue").inserted, 1);
    assert_eq!(r.table("changelog").inserted, 0);
    assert_eq!(
        e.strings("SELECT author FROM S.changelog WHERE history_id = 1001"),
        vec!["kept"]
    );
    assert_eq!(
        e.strings("SELECT label FROM S.issue_label WHERE issue_id = 1 ORDER BY 1"),
        vec!["l1", "l2"]
    );
    assert_eq!(e.count("issue"), 2);
}

fn index_exists(e: &mut Env, name: &str) -> bool {
    let n = format!("\"{}\".{name}", e.s.name);
    e.client()
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&n])
        .unwrap()
        .get(0)
}

const DEFERRED: [&str; 9] = [
    "project_version_project_idx",
    "project_component_project_idx",
    "changelog_issue_idx",
    "changelog_item_issue_field_idx",
    "issue_key_idx",
    "issue_project_updated_idx",
    "issue_parent_idx",
    "issue_label_label_idx",
    "issue_field_value_field_idx",
];

#[test]
fn bulk_first_load_defers_secondary_indexes_and_rebuilds_them() {
    let mut e = Env::new();
    let mut l = e.loader();
    let (rows, _) = l.unit_limits().unwrap();
    assert!(l.bulk());
    assert!(
        rows > LoadOptions::default().unit_rows,
        "larger units in bulk"
    );
    for i in DEFERRED {
        assert!(!index_exists(&mut e, i), "{i} is dropped during the load");
    }
    for i in ["issue_link_source_idx", "issue_link_target_idx"] {
        assert!(
            index_exists(&mut e, i),
            "{i} is kept: the link merge needs it"
        );
    }
    assert_eq!(e.count("deferred_index"), DEFERRED.len() as i64);
    l.load_unit(&[dpage(RUN1, 0, &[iss(1, 10), iss(2, 11)])])
        .unwrap();
    l.finish().unwrap();
    for i in DEFERRED {
        assert!(index_exists(&mut e, i), "{i} is rebuilt");
    }
    assert_eq!(e.count("deferred_index"), 0);
    // The warehouse is not empty any more: the next loader keeps the indexes.
    let mut l2 = e.loader();
    l2.prepare().unwrap();
    assert!(!l2.bulk());
    assert!(index_exists(&mut e, "issue_key_idx"));
}

#[test]
fn indexes_deferred_by_a_killed_bulk_load_are_rebuilt_by_the_next_run() {
    let mut e = Env::new();
    {
        let mut l = e.loader();
        l.prepare().unwrap();
        l.load_unit(&[dpage(RUN1, 0, &[iss(1, 10)])]).unwrap();
        // Dropped without finish(): what a kill -9 leaves.
    }
    assert!(!index_exists(&mut e, "issue_key_idx"));
    assert_eq!(e.count("deferred_index"), DEFERRED.len() as i64);
    // The next bulk-capable run carries on without them and rebuilds them at its end…
    let mut l = e.loader();
    l.prepare().unwrap();
    assert!(l.bulk(), "an interrupted bulk load resumes as one");
    l.load_unit(&[dpage(RUN1, 1, &[iss(2, 10)])]).unwrap();
    l.finish().unwrap();
    for i in DEFERRED {
        assert!(index_exists(&mut e, i), "{i} is rebuilt");
    }
}

#[test]
fn with_bulk_loading_off_deferred_indexes_are_rebuilt_at_once() {
    let mut e = Env::new();
    {
        let mut l = e.loader();
        l.load_unit(&[dpage(RUN1, 0, &[iss(1, 10)])]).unwrap();
        // Dropped without finish(): what a kill -9 leaves.
    }
    assert!(!index_exists(&mut e, "issue_label_label_idx"));
    let mut l = e.loader().with_options(LoadOptions {
        bulk_first_load: false,
        ..LoadOptions::default()
    });
    l.prepare().unwrap();
    assert!(!l.bulk());
    for i in DEFERRED {
        assert!(index_exists(&mut e, i), "{i} is rebuilt");
    }
    assert_eq!(e.count("deferred_index"), 0);
}

#[test]
fn a_unit_copies_new_issues_directly_and_merges_stored_ones() {
    let mut e = Env::new();
    let mut l = e.loader();
    let mut one = iss(1, 10);
    one.links = vec![(500, 1, 2)];
    l.load_unit(&[dpage(RUN1, 0, std::slice::from_ref(&one))])
        .unwrap();
    assert_eq!(e.count("issue_link"), 1);

    // One unit: issue 2 new on two pages — an older version still listing
    // the link, then the winning newer one without it, on the page where
    // issue 1 (stored: merged) has changed and lost the link too.
    let mut one2 = one.clone();
    one2.updated = t(20);
    one2.labels = vec!["l1".into(), "x".into()];
    one2.links = vec![];
    let mut two_old = iss(2, 10);
    two_old.links = vec![(500, 1, 2)];
    two_old.labels = vec!["old".into()];
    let mut two_new = iss(2, 15);
    two_new.labels = vec!["new".into()];
    let r = l
        .load_unit(&[dpage(RUN2, 0, &[two_old]), dpage(RUN2, 1, &[one2, two_new])])
        .unwrap();
    assert!(
        r.timings.iter().any(|(s, _, _)| *s == "(direct copy)"),
        "{:?}",
        r.timings
    );
    assert_eq!(r.issues_accepted, 2);
    assert_eq!(
        e.strings("SELECT issue_id::text || ':' || label FROM S.issue_label ORDER BY 1"),
        vec!["1:l1", "1:x", "2:new"]
    );
    assert_eq!(e.count("issue"), 2);
    assert_eq!(e.count("changelog"), 2, "one history per issue");
    assert_eq!(
        e.count("issue_link"),
        0,
        "neither end lists link 500 any more"
    );
    assert_eq!(
        e.strings("SELECT updated::text FROM S.issue WHERE issue_id = 2"),
        e.strings(&format!(
            "SELECT '{}'::timestamptz::text",
            t(15).to_rfc3339()
        ))
    );
    assert_eq!(e.count("issue_digest"), 2);

    // A new issue listing a link to a stored issue keeps it.
    let mut three = iss(3, 30);
    three.links = vec![(501, 3, 1)];
    let r = l
        .load_unit(&[dpage("20240303T100000000Z", 0, &[three])])
        .unwrap();
    assert_eq!(r.table("issue_link").inserted, 1);
    assert_eq!(e.count("issue_link"), 1);
}
