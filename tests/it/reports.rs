//! Reports (`sql/0005_reports.sql`, docs/reports.md): every view and
//! `field_value_at` after a run over the simulator, checked against answers
//! computed from the simulator's ground truth (its changelogs), before and
//! after edits, a sync and a census; and the reporting model's rows (users,
//! status intervals, field history) from the real Jira fixtures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use jira_pipeline_core::load::Loader;
use jira_pipeline_core::staging::{PageMeta, Staging};
use jira_pipeline_core::transform::{Catalog, transform_page};
use jira_sim::catalog::{PRIORITIES, STATUSES, USERS};
use jira_sim::{HistoryItem, Issue, IssueUpdate, SimConfig, SimHandle, Simulator};
use serde_json::{Value, json};

use crate::common::*;

const PROJECTS: [&str; 2] = ["DEMO", "ALPHA"];

fn sim() -> SimHandle {
    Simulator::start(SimConfig::default().issues(300).projects(3).port(0)).unwrap()
}

/// Scopes DEMO and ALPHA (BETA is in none), no automatic census.
fn config(sim: &SimHandle, schema: &str) -> String {
    format!(
        "[jira]\nbase_url = \"{}\"\npage_size = 50\nconcurrency = 4\n\
         [sync]\nreconcile_every_hours = 0\n\
         [database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"demo\"\nproject = \"DEMO\"\n\
         [[scope]]\nname = \"alpha\"\nproject = \"ALPHA\"\n",
        sim.url()
    )
}

/// Rows of `sql`, where `S.` names the test schema.
fn q(s: &mut TestSchema, sql: &str) -> Vec<postgres::Row> {
    let sql = sql.replace("S.", &format!("\"{}\".", s.name));
    s.client
        .query(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn ms(t: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(t).unwrap()
}

/// Whole seconds from `a` to `b` (ms), as the views count them.
fn secs(a: i64, b: i64) -> i64 {
    (b - a).div_euclid(1000)
}

// ---------------------------------------------------------------------------
// The answers, from the simulator's ground truth.

/// One stay of an issue in a status (index into `STATUSES`).
#[derive(Debug, Clone)]
struct Stay {
    status: usize,
    entered: i64,
    left: Option<i64>,
}

/// One period of a field's value: `(value, shown)` from `from` to `to`.
#[derive(Debug, Clone, PartialEq)]
struct Held {
    value: Option<String>,
    shown: Option<String>,
    from: i64,
    to: Option<i64>,
}

/// What the reports should say about one issue.
#[derive(Debug)]
struct Truth {
    id: i64,
    project: String,
    created: i64,
    stays: Vec<Stay>,
    assignee: Vec<Held>,
    priority: Vec<Held>,
}

fn status_of_id(id: &str) -> usize {
    STATUSES.iter().position(|s| s.id == id).unwrap()
}

fn display_of_key(key: &str) -> Option<&'static str> {
    USERS.iter().find(|u| u.key == key).map(|u| u.display_name)
}

/// The issue's changelog items of a system field, oldest first.
fn changes<'i>(i: &'i Issue, field: &str) -> Vec<(i64, &'i HistoryItem)> {
    let mut hs: Vec<_> = i.histories.iter().collect();
    hs.sort_by_key(|h| (h.created_ms, h.id));
    hs.iter()
        .flat_map(|h| h.items.iter().map(move |it| (h.created_ms, it)))
        .filter(|(_, it)| it.fieldtype == "jira" && it.field == field)
        .collect()
}

/// A field's periods: before its first change (from `created`), after each
/// change; one period with the current value when it never changed.
fn held(i: &Issue, field: &str, current: (Option<String>, Option<String>)) -> Vec<Held> {
    let cs = changes(i, field);
    let Some((first_at, first)) = cs.first() else {
        return vec![Held {
            value: current.0,
            shown: current.1,
            from: i.created_ms,
            to: None,
        }];
    };
    let mut out = vec![Held {
        value: first.from.clone(),
        shown: first.from_string.clone(),
        from: i.created_ms,
        to: Some(*first_at),
    }];
    for (k, (at, it)) in cs.iter().enumerate() {
        out.push(Held {
            value: it.to.clone(),
            shown: it.to_string.clone(),
            from: *at,
            to: cs.get(k + 1).map(|n| n.0),
        });
    }
    out
}

fn truth(sim: &SimHandle) -> Vec<Truth> {
    sim.ground_truth()
        .iter()
        .filter(|i| PROJECTS.contains(&i.project_key.as_str()))
        .map(|i| {
            let status = changes(i, "status");
            let mut s = status.first().map_or(i.status, |(_, it)| {
                status_of_id(it.from.as_deref().unwrap())
            });
            let mut entered = i.created_ms;
            let mut stays = Vec::new();
            for (at, it) in &status {
                stays.push(Stay {
                    status: s,
                    entered,
                    left: Some(*at),
                });
                s = status_of_id(it.to.as_deref().unwrap());
                entered = *at;
            }
            stays.push(Stay {
                status: s,
                entered,
                left: None,
            });
            assert_eq!(s, i.status, "{}: the changelog ends in the status", i.key);
            let assignee = i.assignee.map(|u| &USERS[u]);
            let priority = i.priority.map(|p| &PRIORITIES[p]);
            Truth {
                id: i.id as i64,
                project: i.project_key.clone(),
                created: i.created_ms,
                stays,
                assignee: held(
                    i,
                    "assignee",
                    (
                        assignee.map(|u| u.key.to_string()),
                        assignee.map(|u| u.display_name.to_string()),
                    ),
                ),
                priority: held(
                    i,
                    "priority",
                    (
                        priority.map(|p| p.id.to_string()),
                        priority.map(|p| p.name.to_string()),
                    ),
                ),
            }
        })
        .collect()
}

/// First entry into a status of `category` (at or after `after`).
fn first_entry(t: &Truth, category: &str, after: i64) -> Option<i64> {
    t.stays
        .iter()
        .find(|s| STATUSES[s.status].category_key == category && s.entered >= after)
        .map(|s| s.entered)
}

/// The status (id, name) each issue created by `at` had then.
fn status_at(truth: &[Truth], at: i64) -> BTreeMap<i64, (Option<String>, Option<String>)> {
    truth
        .iter()
        .filter_map(|t| {
            let s = t
                .stays
                .iter()
                .find(|s| s.entered <= at && s.left.is_none_or(|l| l > at))?;
            let st = &STATUSES[s.status];
            Some((t.id, (Some(st.id.to_string()), Some(st.name.to_string()))))
        })
        .collect()
}

fn held_at(
    truth: &[Truth],
    field: impl Fn(&Truth) -> &[Held],
    at: i64,
) -> BTreeMap<i64, (Option<String>, Option<String>)> {
    truth
        .iter()
        .filter_map(|t| {
            let h = field(t)
                .iter()
                .find(|h| h.from <= at && h.to.is_none_or(|x| x > at))?;
            Some((t.id, (h.value.clone(), h.shown.clone())))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// The checks.

/// Every report against the ground truth; returns how many issues have
/// reached a done status.
fn check_reports(s: &mut TestSchema, sim: &SimHandle) -> usize {
    let truth = truth(sim);
    let ids: BTreeSet<i64> = truth.iter().map(|t| t.id).collect();
    let live: BTreeSet<i64> = q(s, "SELECT issue_id FROM S.live_issue")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(live, ids, "the live issues are the simulator's");
    check_status_time(s, &truth);
    check_cycle_time_and_throughput(s, &truth);
    check_assignee_history(s, &truth);
    check_field_value_at(s, &truth);
    truth
        .iter()
        .filter(|t| first_entry(t, "done", i64::MIN).is_some())
        .count()
}

/// `issue_status_time` (every stay), `report_time_in_status` and
/// `report_time_in_status_category`: closed stays exact, the open one
/// counted to the query's now.
fn check_status_time(s: &mut TestSchema, truth: &[Truth]) {
    let before = Utc::now().timestamp_millis();
    let stays = q(
        s,
        "SELECT issue_id, seq, status_id, category_key, entered_at, left_at, seconds, is_current
           FROM S.issue_status_time ORDER BY issue_id, seq",
    );
    let by_status = q(
        s,
        "SELECT issue_id, status_id, status_name, seconds, stays FROM S.report_time_in_status",
    );
    let by_category = q(
        s,
        "SELECT issue_id, category_key, seconds, stays FROM S.report_time_in_status_category",
    );
    let after = Utc::now().timestamp_millis();

    let want_stays: usize = truth.iter().map(|t| t.stays.len()).sum();
    assert_eq!(stays.len(), want_stays, "one row per stay");
    let mut rows = stays.iter();
    // (issue, status id or category) → (closed seconds, open lower, open upper, stays)
    let mut want_status: BTreeMap<(i64, String), (i64, i64, i64, i64)> = BTreeMap::new();
    let mut want_category: BTreeMap<(i64, String), (i64, i64, i64, i64)> = BTreeMap::new();
    for t in truth {
        for (seq, st) in t.stays.iter().enumerate() {
            let r = rows.next().unwrap();
            let status = &STATUSES[st.status];
            let got: (
                i64,
                i32,
                i64,
                String,
                DateTime<Utc>,
                Option<DateTime<Utc>>,
                bool,
            ) = (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(7),
            );
            let want = (
                t.id,
                seq as i32,
                status.id.parse().unwrap(),
                status.category_key.to_string(),
                ms(st.entered),
                st.left.map(ms),
                st.left.is_none(),
            );
            assert_eq!(got, want, "stay {seq} of issue {}", t.id);
            let seconds: i64 = r.get(6);
            let (closed, lo, hi) = match st.left {
                Some(l) => {
                    assert_eq!(seconds, secs(st.entered, l), "stay {seq} of {}", t.id);
                    (seconds, 0, 0)
                }
                None => {
                    let (lo, hi) = (secs(st.entered, before), secs(st.entered, after));
                    assert!(
                        (lo..=hi).contains(&seconds),
                        "open stay of {}: {seconds} s, expected {lo}..={hi}",
                        t.id
                    );
                    (0, lo, hi)
                }
            };
            for (map, key) in [
                (&mut want_status, status.id.to_string()),
                (&mut want_category, status.category_key.to_string()),
            ] {
                let e = map.entry((t.id, key)).or_default();
                *e = (e.0 + closed, e.1 + lo, e.2 + hi, e.3 + 1);
            }
        }
    }
    let check = |what: &str,
                 got: BTreeMap<(i64, String), (i64, i64)>,
                 want: &BTreeMap<(i64, String), (i64, i64, i64, i64)>| {
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{what}: rows"
        );
        for (k, (seconds, stays)) in &got {
            let (closed, lo, hi, n) = want[k];
            assert_eq!(*stays, n, "{what} {k:?}: stays");
            assert!(
                (closed + lo..=closed + hi).contains(seconds),
                "{what} {k:?}: {seconds} s, expected {}..={}",
                closed + lo,
                closed + hi
            );
        }
    };
    let names: BTreeMap<String, String> = STATUSES
        .iter()
        .map(|s| (s.id.to_string(), s.name.to_string()))
        .collect();
    let got: BTreeMap<_, _> = by_status
        .iter()
        .map(|r| {
            let sid = r.get::<_, i64>(1).to_string();
            assert_eq!(r.get::<_, String>(2), names[&sid], "status name");
            ((r.get(0), sid), (r.get(3), r.get(4)))
        })
        .collect();
    check("report_time_in_status", got, &want_status);
    let got: BTreeMap<_, _> = by_category
        .iter()
        .map(|r| ((r.get(0), r.get(1)), (r.get(2), r.get(3))))
        .collect();
    check("report_time_in_status_category", got, &want_category);
}

/// `report_cycle_time` for every issue, and `report_throughput_weekly`.
fn check_cycle_time_and_throughput(s: &mut TestSchema, truth: &[Truth]) {
    type Cycle = (
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<DateTime<Utc>>,
        Option<i64>,
        Option<i64>,
    );
    let got: BTreeMap<i64, Cycle> = q(
        s,
        "SELECT issue_id, started_at, done_at, first_done_at, cycle_seconds, lead_seconds
           FROM S.report_cycle_time",
    )
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
    .collect();
    let mut weekly: BTreeMap<(NaiveDate, String), i64> = BTreeMap::new();
    let want: BTreeMap<i64, Cycle> = truth
        .iter()
        .map(|t| {
            let started = first_entry(t, "indeterminate", i64::MIN);
            let done = started.and_then(|a| first_entry(t, "done", a));
            let first_done = first_entry(t, "done", i64::MIN);
            if let Some(d) = first_done {
                let day = ms(d).date_naive();
                let monday = day - chrono::Days::new(day.weekday().num_days_from_monday().into());
                *weekly.entry((monday, t.project.clone())).or_default() += 1;
            }
            let cycle = started.zip(done).map(|(a, b)| secs(a, b));
            let lead = first_done.map(|d| secs(t.created, d));
            (
                t.id,
                (
                    started.map(ms),
                    done.map(ms),
                    first_done.map(ms),
                    cycle,
                    lead,
                ),
            )
        })
        .collect();
    assert_eq!(got, want, "report_cycle_time");
    assert!(
        want.values().any(|c| c.3.is_some()) && want.values().any(|c| c.0.is_none()),
        "the data has issues with and without a cycle"
    );

    // Weeks in UTC (the view follows the session's TimeZone).
    s.client.batch_execute("SET TIME ZONE 'UTC'").unwrap();
    let got: BTreeMap<(NaiveDate, String), i64> = q(
        s,
        "SELECT week_start, iso_year, iso_week, project_key, issues FROM S.report_throughput_weekly",
    )
    .iter()
    .map(|r| {
        let week: NaiveDate = r.get(0);
        let iso = week.iso_week();
        assert_eq!(
            (r.get::<_, i32>(1), r.get::<_, i32>(2)),
            (iso.year(), iso.week() as i32),
            "ISO year and week of {week}"
        );
        ((week, r.get(3)), r.get(4))
    })
    .collect();
    assert_eq!(got, weekly, "report_throughput_weekly");
}

/// `report_assignee_history` for every issue, display names from the users.
fn check_assignee_history(s: &mut TestSchema, truth: &[Truth]) {
    type Row = (
        i64,
        i32,
        Option<String>,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let got: Vec<Row> = q(
        s,
        "SELECT issue_id, seq, user_key, display_name, valid_from, valid_to
           FROM S.report_assignee_history ORDER BY issue_id, seq",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect();
    let want: Vec<Row> = truth
        .iter()
        .flat_map(|t| {
            t.assignee.iter().enumerate().map(|(seq, h)| {
                let shown = h
                    .value
                    .as_deref()
                    .and_then(display_of_key)
                    .map(str::to_string)
                    .or(h.shown.clone());
                (
                    t.id,
                    seq as i32,
                    h.value.clone(),
                    shown,
                    ms(h.from),
                    h.to.map(ms),
                )
            })
        })
        .collect();
    assert_eq!(got.len(), want.len(), "report_assignee_history rows");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "report_assignee_history");
    }
    assert!(want.iter().any(|r| r.1 > 0), "some issues changed assignee");
}

/// `field_value_at` for status, assignee and priority at a few instants.
fn check_field_value_at(s: &mut TestSchema, truth: &[Truth]) {
    let span = jira_sim::catalog::END_MS - jira_sim::catalog::START_MS;
    let mut instants: Vec<i64> = (1..5)
        .map(|k| jira_sim::catalog::START_MS + span * k / 5 + 123)
        .collect();
    instants.push(Utc::now().timestamp_millis());
    for at in instants {
        let mut value_at = |field: &str| -> BTreeMap<i64, (Option<String>, Option<String>)> {
            let sql = format!(
                "SELECT issue_id, value, value_display FROM \"{}\".field_value_at($1, $2)",
                s.name
            );
            let rows = s.client.query(&sql, &[&field, &ms(at)]).unwrap();
            let map: BTreeMap<_, _> = rows
                .iter()
                .map(|r| (r.get(0), (r.get(1), r.get(2))))
                .collect();
            assert_eq!(
                map.len(),
                rows.len(),
                "{field} at {}: one row per issue",
                ms(at)
            );
            map
        };
        let status = value_at("status");
        assert_eq!(status, status_at(truth, at), "status at {}", ms(at));
        let assignee = value_at("assignee");
        assert_eq!(
            assignee,
            held_at(truth, |t| &t.assignee, at),
            "assignee at {}",
            ms(at)
        );
        let priority = value_at("priority");
        assert_eq!(
            priority,
            held_at(truth, |t| &t.priority, at),
            "priority at {}",
            ms(at)
        );
    }
}

#[test]
fn reports_match_the_ground_truth_and_follow_edits_syncs_and_the_census() {
    let sim = sim();
    let mut s = TestSchema::initialised();
    let w = Workdir::new(&config(&sim, &s.name));
    run_ok(&w, &sim, &["run"]);
    let done_before = check_reports(&mut s, &sim);

    // Edits: an untouched open issue closed at once, then started and
    // finished (its cycle runs from the start to the second finish, its lead
    // time to the first), a finished one reopened and unassigned, one
    // reassigned; one deleted.
    let gt = sim.ground_truth();
    let in_scope: Vec<&Issue> = gt
        .iter()
        .filter(|i| PROJECTS.contains(&i.project_key.as_str()))
        .collect();
    let fresh = in_scope
        .iter()
        .find(|i| i.histories.is_empty() && i.status == jira_sim::catalog::OPEN)
        .expect("an issue never changed");
    let done = in_scope
        .iter()
        .find(|i| STATUSES[i.status].category_key == "done" && i.assignee.is_some())
        .expect("a done, assigned issue");
    let other = in_scope
        .iter()
        .find(|i| i.id != fresh.id && i.id != done.id && !i.histories.is_empty())
        .unwrap();
    let gone = in_scope
        .iter()
        .rev()
        .find(|i| i.subtasks.is_empty() && i.parent.is_none())
        .unwrap()
        .id;
    // A few ms apart, so that each change has an instant of its own.
    let upd = |id: u64, u: IssueUpdate| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        sim.update_issue(id, &u).unwrap()
    };
    upd(fresh.id, IssueUpdate::new().status("Done"));
    upd(fresh.id, IssueUpdate::new().status("In Progress"));
    upd(fresh.id, IssueUpdate::new().assignee(Some("carol")));
    upd(fresh.id, IssueUpdate::new().status("Closed"));
    upd(
        done.id,
        IssueUpdate::new().status("In Progress").assignee(None),
    );
    upd(other.id, IssueUpdate::new().assignee(Some("bob")));
    sim.delete_issues(&[gone]).unwrap();
    run_ok(&w, &sim, &["sync"]);
    run_ok(&w, &sim, &["reconcile"]);

    let done_after = check_reports(&mut s, &sim);
    assert_eq!(
        done_after,
        done_before + 1 - usize::from(gone_was_done(&gt, gone)),
        "the started and finished issue counts; the deleted one does not"
    );
    let id = |i: u64| i as i64;
    let row = &q(
        &mut s,
        &format!(
            "SELECT started_at, done_at, first_done_at FROM S.report_cycle_time WHERE issue_id = {}",
            id(fresh.id)
        ),
    )[0];
    let (started, done, first_done): (DateTime<Utc>, DateTime<Utc>, DateTime<Utc>) =
        (row.get(0), row.get(1), row.get(2));
    assert!(
        first_done < started && started < done,
        "the edited issue: done first ({first_done}), started ({started}), done again ({done})"
    );
    let gone_rows = q(
        &mut s,
        &format!(
            "SELECT (SELECT count(*) FROM S.report_cycle_time WHERE issue_id = {g})
                  + (SELECT count(*) FROM S.issue_status_time WHERE issue_id = {g})
                  + (SELECT count(*) FROM S.report_assignee_history WHERE issue_id = {g})",
            g = id(gone)
        ),
    )[0]
    .get::<_, i64>(0);
    assert_eq!(gone_rows, 0, "a deleted issue leaves the reports");
}

fn gone_was_done(gt: &[Issue], gone: u64) -> bool {
    let i = gt.iter().find(|i| i.id == gone).unwrap();
    // Reached done at some time: a done stay in its changelog or now.
    STATUSES[i.status].category_key == "done"
        || changes(i, "status")
            .iter()
            .any(|(_, it)| STATUSES[status_of_id(it.to.as_deref().unwrap())].category_key == "done")
}

#[test]
fn db_init_twice_keeps_the_reports() {
    let mut s = TestSchema::initialised();
    let report = jira_pipeline_core::db::init(&mut s.client, &s.name).unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
    // The function resolves its tables whatever the caller's search_path.
    s.client.batch_execute("SET search_path TO public").unwrap();
    let sql = format!(
        "SELECT count(*) FROM \"{}\".field_value_at('status', now())",
        s.name
    );
    let n: i64 = s.client.query_one(&sql, &[]).unwrap().get(0);
    assert_eq!(n, 0);
    for view in [
        "issue_status_time",
        "report_time_in_status",
        "report_time_in_status_category",
        "report_cycle_time",
        "report_throughput_weekly",
        "report_assignee_history",
    ] {
        assert_eq!(s.count(view), 0, "{view}");
    }
}

// ---------------------------------------------------------------------------
// The real Jira fixtures through transform and load.

fn fixture(name: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jira-real")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn page_meta(seq: u32) -> PageMeta {
    let mut m = jira_pipeline_core::staging::search_meta("s", seq, 50);
    m.run_id = "20240310T120000000Z".into();
    m.jql = "project = TST".into();
    m
}

/// Jira's timestamp format, as the fixtures write it.
fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap()
        .with_timezone(&Utc)
}

type HistRow = (
    String,
    i32,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

fn history(s: &mut TestSchema, issue: i64, field: &str) -> Vec<HistRow> {
    let sql = format!(
        "SELECT field_name, seq, value, value_display, valid_from, valid_to
           FROM \"{}\".issue_field_history WHERE issue_id = $1 AND field_id = $2 ORDER BY seq",
        s.name
    );
    s.client
        .query(&sql, &[&issue, &field])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect()
}

fn h(
    name: &str,
    seq: i32,
    v: Option<&str>,
    d: Option<&str>,
    from: &str,
    to: Option<&str>,
) -> HistRow {
    (
        name.into(),
        seq,
        v.map(Into::into),
        d.map(Into::into),
        ts(from),
        to.map(ts),
    )
}

#[test]
fn real_jira_fixtures_give_users_status_intervals_and_field_history() {
    // The single-issue responses (TST-2, TST-13, HST-1, TST-11) as one search
    // page, and the search page's other issues (no changelog) as another.
    let singles = [
        "jrjc-server5_issue_all-expanded_links-components-fixversions-30-histories.json",
        "jrjc-server5_issue_changelog-deleted-user-worklogid.json",
        "jrjc-server5_issue_expand-changelog_custom-items.json",
        "jrjc-server5_issue_labels-userpicker-issuelinks-changelog.json",
    ]
    .map(fixture);
    let single_ids: Vec<&Value> = singles.iter().map(|i| &i["id"]).collect();
    let search = fixture("jrjc-server5_search_names-schema_8-of-15.json");
    let others: Vec<Value> = search["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| !single_ids.contains(&&i["id"]))
        .cloned()
        .collect();
    assert_eq!(others.len(), 6);
    let catalog = Catalog::parse(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/jira-real/jrjc-server5_field-list.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let scope = jira_pipeline_core::config::Scope {
        name: "s".into(),
        project: "TST".into(),
        issue_types: vec![],
        fields: vec!["*all".into()],
        jql: None,
    };
    let batches: Vec<_> = [singles.to_vec(), others]
        .into_iter()
        .enumerate()
        .map(|(seq, issues)| {
            let mut body = serde_json::to_vec(&json!({"startAt": 0, "maxResults": 50,
                "total": issues.len(), "issues": issues}))
            .unwrap();
            transform_page(&page_meta(seq as u32), &mut body, &catalog, &scope).unwrap()
        })
        .collect();
    let mut s = TestSchema::initialised();
    let dir = tempfile::tempdir().unwrap();
    let mut loader = Loader::new(connect(), &s.name, Staging::new(dir.path(), 3));
    let r = loader.load_unit(&batches).unwrap();
    assert_eq!(r.pages_loaded, 2);
    assert_eq!(s.count("live_issue"), 10);

    // Users: keyed by name where Jira 5 sends no key; display names as sent;
    // the deleted changelog author inactive.
    let users: Vec<(String, Option<String>, Option<bool>)> = q(
        &mut s,
        "SELECT user_key, display_name, active FROM S.jira_user ORDER BY user_key",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    let u = |k: &str, d: &str, a: Option<bool>| (k.to_string(), Some(d.to_string()), a);
    assert_eq!(
        users,
        vec![
            u("admin", "Administrator", Some(true)),
            u("deleteduser", "deleteduser", Some(false)),
            u("user1", "User One", Some(true)),
            u("user2", "User Two", Some(true)),
            u("wseliga", "Wojciech Seliga", Some(true)),
        ]
    );

    // Status intervals. TST-2 went Open → In Progress once (history 10099).
    type Interval = (
        i32,
        Option<i64>,
        Option<String>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
        Option<i64>,
    );
    let intervals = |s: &mut TestSchema, id: i64| -> Vec<Interval> {
        let sql = format!(
            "SELECT seq, status_id, status_name, entered_at, left_at, seconds
               FROM \"{}\".issue_status_interval WHERE issue_id = $1 ORDER BY seq",
            s.name
        );
        s.client
            .query(&sql, &[&id])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
            .collect()
    };
    let (created, moved) = (
        ts("2010-07-26T13:29:18.262+0200"),
        ts("2010-08-17T16:40:34.924+0200"),
    );
    assert_eq!(
        intervals(&mut s, 10010),
        vec![
            (
                0,
                Some(1),
                Some("Open".into()),
                created,
                Some(moved),
                Some((moved - created).num_seconds())
            ),
            (1, Some(3), Some("In Progress".into()), moved, None, None),
        ],
        "TST-2"
    );
    // No status change: one open stay in the current status since created.
    assert_eq!(
        intervals(&mut s, 10000),
        vec![(
            0,
            Some(1),
            Some("Open".into()),
            ts("2012-04-12T14:27:37.672+0200"),
            None,
            None
        )],
        "HST-1"
    );
    assert_eq!(
        intervals(&mut s, 10070),
        vec![(
            0,
            Some(5),
            Some("Resolved".into()),
            ts("2012-12-07T15:25:24.000+0100"),
            None,
            None
        )],
        "TST-8 (search page, no changelog)"
    );

    // Field history, read off the changelogs.
    assert_eq!(
        history(&mut s, 10010, "assignee"),
        vec![
            h(
                "assignee",
                0,
                Some("admin"),
                Some("Administrator"),
                "2010-07-26T13:29:18.262+0200",
                Some("2012-12-07T14:43:49.593+0100")
            ),
            h(
                "assignee",
                1,
                Some("wseliga"),
                Some("Wojciech Seliga"),
                "2012-12-07T14:43:49.593+0100",
                None
            ),
        ],
        "TST-2 assignee"
    );
    // HST-1: histories 10001 and 10003 share an instant (a zero-length
    // period between them); the priority changed once.
    let (c, t1, t2) = (
        "2012-04-12T14:27:37.672+0200",
        "2012-04-12T14:28:44.079+0200",
        "2012-04-12T14:30:09.690+0200",
    );
    assert_eq!(
        history(&mut s, 10000, "assignee"),
        vec![
            h("assignee", 0, Some("user1"), Some("User One"), c, Some(t1)),
            h("assignee", 1, Some("user2"), Some("User Two"), t1, Some(t1)),
            h("assignee", 2, Some("user2"), Some("User Two"), t1, None),
        ],
        "HST-1 assignee"
    );
    assert_eq!(
        history(&mut s, 10000, "priority"),
        vec![
            h("priority", 0, Some("3"), Some("Major"), c, Some(t2)),
            h("priority", 1, Some("4"), Some("Minor"), t2, None),
        ],
        "HST-1 priority"
    );
    // A custom field the catalogue does not know keeps its name.
    assert_eq!(
        history(&mut s, 10000, "?Radio Field"),
        vec![
            h(
                "Radio Field",
                0,
                None,
                None,
                c,
                Some("2012-04-12T14:28:28.255+0200")
            ),
            h(
                "Radio Field",
                1,
                Some("10000"),
                Some("One"),
                "2012-04-12T14:28:28.255+0200",
                Some(t2)
            ),
            h("Radio Field", 2, Some("10001"), Some("Two"), t2, None),
        ],
        "HST-1 Radio Field"
    );
    // TST-11 was unassigned when created.
    assert_eq!(
        history(&mut s, 10073, "assignee"),
        vec![
            h(
                "assignee",
                0,
                None,
                None,
                "2012-12-07T15:44:32.633+0100",
                Some("2012-12-07T15:48:42.579+0100")
            ),
            h(
                "assignee",
                1,
                Some("admin"),
                Some("Administrator"),
                "2012-12-07T15:48:42.579+0100",
                None
            ),
        ],
        "TST-11 assignee"
    );
    assert_eq!(
        history(&mut s, 10075, "timespent"),
        vec![
            h(
                "timespent",
                0,
                None,
                None,
                "2012-12-07T16:07:29.451+0100",
                Some("2012-12-07T16:08:20.822+0100")
            ),
            h(
                "timespent",
                1,
                Some("10800"),
                Some("10800"),
                "2012-12-07T16:08:20.822+0100",
                None
            ),
        ],
        "TST-13 time spent"
    );

    // The reports over them: the assignee at an instant, from the history
    // (TST-2) or, for an issue whose assignee never changed (TST-13), the
    // current one; display names from jira_user.
    let sql = format!(
        "SELECT issue_id, value, value_display FROM \"{}\".field_value_at('assignee', $1)
          WHERE issue_id IN (10010, 10075)",
        s.name
    );
    let at: BTreeMap<i64, (String, String)> = s
        .client
        .query(&sql, &[&ts("2012-12-07T16:00:00.000+0100")])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let want = |k: &str, d: &str| (k.to_string(), d.to_string());
    assert_eq!(
        at,
        BTreeMap::from([
            (10010, want("wseliga", "Wojciech Seliga")),
            // TST-13 was created at 16:07:29: it did not exist yet.
        ])
    );
    let at: BTreeMap<i64, (String, String)> = s
        .client
        .query(&sql, &[&ts("2013-01-01T00:00:00.000+0100")])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    assert_eq!(
        at,
        BTreeMap::from([
            (10010, want("wseliga", "Wojciech Seliga")),
            (10075, want("admin", "Administrator")),
        ])
    );
    let stays: Vec<(i32, Option<String>, Option<String>)> = q(
        &mut s,
        "SELECT seq, user_key, display_name FROM S.report_assignee_history
          WHERE issue_id = 10010 ORDER BY seq",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect();
    assert_eq!(
        stays,
        vec![
            (0, Some("admin".into()), Some("Administrator".into())),
            (1, Some("wseliga".into()), Some("Wojciech Seliga".into())),
        ]
    );
}
