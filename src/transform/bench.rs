//! `pipeline bench transform`: transform throughput against a bare
//! `simd_json::to_tape` of the same bytes, measured in the same run, on one
//! thread and on all cores. Input: staged pages (or raw Jira JSON files) from a
//! directory, or generated simulator-shaped search pages.
//!
//! Both sides do the same per-page work besides the part being measured: copy
//! the decompressed body into a reused buffer (simd-json parses in place), then
//! either `to_tape` (baseline) or [`super::transform_page_with`] (which parses
//! with `to_tape` too and then builds every table's COPY rows). Decompression
//! and file writes are left out: the figures are MB/s of decompressed JSON.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use clap::Args;
use rayon::prelude::*;
use serde_json::{Value as Json, json};

use super::{Catalog, Selection, parse_only, transform_page_with};
use crate::error::{Error, ExitCode, Result};
use crate::staging::{self, PageKind, PageMeta};

/// `pipeline bench transform` options.
#[derive(Debug, Args, Clone)]
pub struct BenchTransformArgs {
    /// Directory of input: staged page files (`*.ndjson.zst`), raw search
    /// responses or single-issue responses (`*.json`), searched recursively; a
    /// `/rest/api/2/field` array found there is used as the field catalogue.
    #[arg(long, value_name = "DIR", conflicts_with = "issues")]
    pub pages: Option<PathBuf>,
    /// Generate this many simulator-shaped issues (100 per page) instead.
    #[arg(long, value_name = "N")]
    pub issues: Option<usize>,
    /// Threads for the "all cores" measurement (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Seconds per measurement round (each figure is the best of 3 rounds).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub seconds: f64,
}

/// Pages held in memory for benchmarking.
pub struct Corpus {
    pub pages: Vec<(PageMeta, Vec<u8>)>,
    pub catalog: Catalog,
    pub issues: u64,
    pub bytes: u64,
    pub origin: String,
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub threads: usize,
    /// MB/s (10^6 bytes) of decompressed JSON: bare `simd_json::to_tape`.
    pub parse_mbs: f64,
    /// The transform's own parse alone (reused buffers, no input copy).
    pub parse_reused_mbs: f64,
    pub transform_mbs: f64,
    pub transform_issues_per_s: f64,
}

impl Figure {
    pub fn ratio(&self) -> f64 {
        self.transform_mbs / self.parse_mbs
    }
}

pub fn search_meta(scope: &str, seq: u32, n: u32) -> PageMeta {
    PageMeta {
        format: 1,
        kind: PageKind::Search,
        scope: scope.into(),
        run_id: "20240101T000000000Z".into(),
        mode: "backfill".into(),
        slice: 0,
        seq,
        jql: String::new(),
        start_at: u64::from(seq) * u64::from(n),
        max_results: n,
        issue_count: n,
        total: None,
        first_updated: None,
        last_updated: None,
        fetched_at: Utc
            .timestamp_opt(1_704_067_200, 0)
            .single()
            .unwrap_or_default(),
        request_id: None,
        http_status: 200,
        checkpoint: None,
        pages_in_run: None,
    }
}

fn count_issues(body: &[u8]) -> u64 {
    serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|v| v.get("issues").and_then(|i| i.as_array()).map(Vec::len))
        .unwrap_or(0) as u64
}

/// Loads every page under `dir` (recursively).
pub fn load_dir(dir: &Path) -> Result<Corpus> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut pages = Vec::new();
    let mut catalog = Catalog::default();
    for f in files {
        let name = f.to_string_lossy();
        if name.ends_with(staging::PAGE_EXT) {
            let (meta, body) = staging::read_page(&f)?;
            if meta.kind == PageKind::Search {
                pages.push((meta, body));
            }
        } else if name.ends_with(".json") {
            let raw = std::fs::read(&f).map_err(Error::io(&f))?;
            let Ok(v) = serde_json::from_slice::<Json>(&raw) else {
                continue;
            };
            let seq = pages.len() as u32;
            if v.is_array() {
                if let Ok(c) = Catalog::parse(&raw) {
                    catalog = c;
                }
            } else if v.get("issues").is_some_and(Json::is_array) {
                pages.push((search_meta("bench", seq, 0), raw));
            } else if v.get("fields").is_some() && v.get("key").is_some() {
                let body = json!({"startAt":0,"maxResults":1,"total":1,"issues":[v]});
                pages.push((
                    search_meta("bench", seq, 1),
                    serde_json::to_vec(&body).unwrap_or_default(),
                ));
            }
        }
    }
    if pages.is_empty() {
        return Err(Error::Config(format!(
            "{}: no search pages found (expected *.ndjson.zst staged pages or *.json Jira responses)",
            dir.display()
        )));
    }
    let issues = pages.iter().map(|(_, b)| count_issues(b)).sum();
    let bytes = pages.iter().map(|(_, b)| b.len() as u64).sum();
    Ok(Corpus {
        pages,
        catalog,
        issues,
        bytes,
        origin: dir.display().to_string(),
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(Error::io(dir))?;
    for e in rd {
        let e = e.map_err(Error::io(dir))?;
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Generated simulator-shaped pages of 100 issues.
pub fn generated(n_issues: usize) -> Corpus {
    let per_page = 100;
    let mut pages = Vec::new();
    let mut start = 0;
    while start < n_issues {
        let n = per_page.min(n_issues - start);
        let body = synth_search_body(start, n, n_issues);
        pages.push((search_meta("bench", pages.len() as u32, n as u32), body));
        start += n;
    }
    let bytes = pages.iter().map(|(_, b)| b.len() as u64).sum();
    Corpus {
        pages,
        catalog: Catalog::parse(&synth_field_catalogue()).unwrap_or_default(),
        issues: n_issues as u64,
        bytes,
        origin: "generated".into(),
    }
}

/// A deterministic pseudo-random sequence (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const BASE: &str = "https://jira.example.com";
const WORDS: &[&str] = &[
    "payment",
    "gateway",
    "timeout",
    "löschen",
    "retry",
    "the",
    "customer",
    "report",
    "fails",
    "when",
    "export",
    "CSV",
    "→",
    "unicode",
    "😀",
    "tab\there",
    "line\nbreak",
    "quote\"d",
    "back\\slash",
    "dashboard",
    "latency",
    "database",
    "index",
    "migration",
];

fn words(r: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[r.below(WORDS.len() as u64) as usize]);
    }
    s
}

fn user(name: &str) -> Json {
    json!({
        "self": format!("{BASE}/rest/api/2/user?username={name}"),
        "name": name,
        "key": format!("JIRAUSER{}", 10000 + name.len()),
        "emailAddress": format!("{name}@example.com"),
        "avatarUrls": {
            "48x48": format!("{BASE}/secure/useravatar?ownerId={name}&avatarId=10122"),
            "24x24": format!("{BASE}/secure/useravatar?size=small&ownerId={name}&avatarId=10122"),
            "16x16": format!("{BASE}/secure/useravatar?size=xsmall&ownerId={name}&avatarId=10122"),
            "32x32": format!("{BASE}/secure/useravatar?size=medium&ownerId={name}&avatarId=10122")
        },
        "displayName": name.to_uppercase(),
        "active": true,
        "timeZone": "Europe/Berlin"
    })
}

fn jira_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Berlin)
        .format("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

const USERS: &[&str] = &["alice", "bob", "carol", "dave", "erin"];
const STATUSES: &[(&str, &str, &str)] = &[
    ("1", "Open", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10001", "Done", "done"),
];

/// A `/rest/api/2/search?expand=changelog` response body of `n` issues
/// starting at index `start`, shaped like the project's simulator serves.
pub fn synth_search_body(start: usize, n: usize, total: usize) -> Vec<u8> {
    let mut issues = Vec::with_capacity(n);
    for i in start..start + n {
        issues.push(synth_issue(i));
    }
    let body = json!({
        "expand": "schema,names",
        "startAt": start,
        "maxResults": n,
        "total": total,
        "issues": issues,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn synth_issue(i: usize) -> Json {
    let mut r = Rng(i as u64 * 7919 + 1);
    let id = 10_000 + i as i64;
    let key = format!("DEMO-{}", i + 1);
    let created = Utc
        .timestamp_opt(1_600_000_000 + i as i64 * 3_600, 0)
        .single()
        .unwrap_or_default();
    let updated = created + chrono::Duration::minutes(r.below(500_000) as i64);
    let (sid, sname, scat) = STATUSES[r.below(3) as usize];
    let u = |r: &mut Rng| user(USERS[r.below(USERS.len() as u64) as usize]);
    let mut histories = Vec::new();
    let mut t = created;
    for h in 0..(2 + r.below(7)) {
        t += chrono::Duration::minutes(1 + r.below(10_000) as i64);
        let mut items = Vec::new();
        for _ in 0..(1 + r.below(3)) {
            items.push(json!({
                "field": "status", "fieldtype": "jira", "fieldId": "status",
                "from": "1", "fromString": "Open", "to": "3", "toString": "In Progress"
            }));
        }
        histories.push(json!({
            "id": (id * 100 + h as i64).to_string(),
            "author": u(&mut r),
            "created": jira_time(t),
            "items": items
        }));
    }
    let labels: Vec<String> = (0..r.below(4))
        .map(|k| format!("label-{}", (i + k as usize) % 17))
        .collect();
    let components: Vec<Json> = (0..r.below(3))
        .map(|k| json!({"self": format!("{BASE}/rest/api/2/component/{}", 10_000 + k), "id": (10_000 + k).to_string(), "name": format!("Component {k}")}))
        .collect();
    let version = |k: u64| json!({"self": format!("{BASE}/rest/api/2/version/{}", 10_100 + k), "id": (10_100 + k).to_string(), "description": "", "name": format!("1.{k}"), "archived": false, "released": k.is_multiple_of(2), "releaseDate": format!("2021-0{}-15", 1 + k % 9)});
    let links: Vec<Json> = (0..r.below(3))
        .map(|k| {
            let other = 10_000 + ((i as i64 + 1 + k as i64 * 13) % 100_000);
            let other_issue = json!({"id": other.to_string(), "key": format!("DEMO-{}", other - 9_999), "self": format!("{BASE}/rest/api/2/issue/{other}"),
                "fields": {"summary": "linked", "status": {"name": "Open", "id": "1"}, "priority": {"name": "Major", "id": "3"}, "issuetype": {"name": "Bug", "id": "1", "subtask": false}}});
            let mut l = json!({"id": (id * 10 + k as i64).to_string(), "self": format!("{BASE}/rest/api/2/issueLink/{}", id * 10 + k as i64),
                "type": {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks", "self": format!("{BASE}/rest/api/2/issueLinkType/10000")}});
            l[if k % 2 == 0 { "outwardIssue" } else { "inwardIssue" }] = other_issue;
            l
        })
        .collect();
    let sprint = format!(
        "com.atlassian.greenhopper.service.sprint.Sprint@{:x}[id={},rapidViewId=1,state={},name=Sprint {},startDate=2021-01-04T09:00:00.000+01:00,endDate=2021-01-18T09:00:00.000+01:00,completeDate=<null>,sequence={},goal=]",
        r.next() & 0xffff_ffff,
        1 + i / 200,
        if r.below(2) == 0 { "CLOSED" } else { "ACTIVE" },
        1 + i / 200,
        1 + i / 200
    );
    let desc_len = 40 + r.below(80) as usize;
    let mut fields = json!({
            "summary": words(&mut r, 6),
            "description": words(&mut r, desc_len),
            "issuetype": {"self": format!("{BASE}/rest/api/2/issuetype/1"), "id": "1", "description": "A problem.", "iconUrl": format!("{BASE}/secure/viewavatar?size=xsmall&avatarId=10303&avatarType=issuetype"), "name": "Bug", "subtask": false, "avatarId": 10303},
            "status": {"self": format!("{BASE}/rest/api/2/status/{sid}"), "description": "", "iconUrl": format!("{BASE}/images/icons/statuses/open.png"), "name": sname, "id": sid,
                "statusCategory": {"self": format!("{BASE}/rest/api/2/statuscategory/2"), "id": 2, "key": scat, "colorName": "blue-gray", "name": "To Do"}},
            "priority": {"self": format!("{BASE}/rest/api/2/priority/3"), "iconUrl": format!("{BASE}/images/icons/priorities/major.svg"), "name": "Major", "id": "3"},
            "resolution": if scat == "done" { json!({"self": format!("{BASE}/rest/api/2/resolution/1"), "id": "1", "description": "Fixed.", "name": "Fixed"}) } else { Json::Null },
            "assignee": if r.below(4) == 0 { Json::Null } else { u(&mut r) },
            "reporter": u(&mut r),
            "creator": u(&mut r),
            "created": jira_time(created),
            "updated": jira_time(updated),
            "resolutiondate": if scat == "done" { json!(jira_time(updated)) } else { Json::Null },
            "duedate": if r.below(3) == 0 { json!("2021-06-30") } else { Json::Null },
            "lastViewed": Json::Null,
            "project": {"self": format!("{BASE}/rest/api/2/project/10000"), "id": "10000", "key": "DEMO", "name": "Demo", "projectTypeKey": "software",
                "avatarUrls": {"48x48": format!("{BASE}/secure/projectavatar?avatarId=10324"), "24x24": format!("{BASE}/secure/projectavatar?size=small&avatarId=10324"), "16x16": format!("{BASE}/secure/projectavatar?size=xsmall&avatarId=10324"), "32x32": format!("{BASE}/secure/projectavatar?size=medium&avatarId=10324")}},
            "labels": labels,
            "components": components,
            "fixVersions": (0..r.below(2)).map(version).collect::<Vec<_>>(),
            "versions": (0..r.below(2)).map(version).collect::<Vec<_>>(),
            "issuelinks": links,
    });
    let more = json!({
            "watches": {"self": format!("{BASE}/rest/api/2/issue/{key}/watchers"), "watchCount": r.below(5), "isWatching": false},
            "votes": {"self": format!("{BASE}/rest/api/2/issue/{key}/votes"), "votes": 0, "hasVoted": false},
            "progress": {"progress": 0, "total": 0},
            "aggregateprogress": {"progress": 0, "total": 0},
            "timespent": Json::Null, "timeestimate": Json::Null, "timeoriginalestimate": Json::Null,
            "workratio": -1,
            "environment": Json::Null,
            "subtasks": [],
            "customfield_10002": (r.below(13)) as f64 / 2.0,
            "customfield_10003": {"self": format!("{BASE}/rest/api/2/customFieldOption/{}", 10_200 + r.below(3)), "value": "Team Rocket", "id": (10_200 + r.below(3)).to_string(), "disabled": false},
            "customfield_10004": [sprint],
            "customfield_10005": if r.below(2) == 0 { json!("DEMO-1") } else { Json::Null },
            "customfield_10006": u(&mut r),
            "customfield_10007": jira_time(updated),
            "customfield_10008": [{"self": format!("{BASE}/rest/api/2/customFieldOption/10300"), "value": "iOS", "id": "10300", "disabled": false}, {"self": format!("{BASE}/rest/api/2/customFieldOption/10301"), "value": "Android", "id": "10301", "disabled": false}],
            "customfield_10009": words(&mut r, 12),
            "customfield_10010": Json::Null,
            "customfield_10011": Json::Null,
    });
    if let (Some(f), Json::Object(m)) = (fields.as_object_mut(), more) {
        f.extend(m);
    }
    json!({
        "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
        "id": id.to_string(),
        "self": format!("{BASE}/rest/api/2/issue/{id}"),
        "key": key,
        "fields": fields,
        "changelog": {"startAt": 0, "maxResults": histories.len(), "total": histories.len(), "histories": histories}
    })
}

/// The `/rest/api/2/field` catalogue matching [`synth_search_body`].
pub fn synth_field_catalogue() -> Vec<u8> {
    let f = |id: &str, name: &str, ty: &str, items: Option<&str>, custom: &str| {
        let mut schema = json!({"type": ty, "custom": custom, "customId": id.trim_start_matches("customfield_").parse::<i64>().unwrap_or(0)});
        if let Some(it) = items {
            schema["items"] = json!(it);
        }
        json!({"id": id, "name": name, "custom": true, "orderable": true, "navigable": true, "searchable": true, "clauseNames": [name], "schema": schema})
    };
    let all = json!([
        {"id": "summary", "name": "Summary", "custom": false, "schema": {"type": "string", "system": "summary"}},
        f("customfield_10002", "Story Points", "number", None, "com.atlassian.jira.plugin.system.customfieldtypes:float"),
        f("customfield_10003", "Team", "option", None, "com.atlassian.jira.plugin.system.customfieldtypes:select"),
        f("customfield_10004", "Sprint", "array", Some("string"), "com.pyxis.greenhopper.jira:gh-sprint"),
        f("customfield_10005", "Epic Link", "any", None, "com.pyxis.greenhopper.jira:gh-epic-link"),
        f("customfield_10006", "Reviewer", "user", None, "com.atlassian.jira.plugin.system.customfieldtypes:userpicker"),
        f("customfield_10007", "Deployed", "datetime", None, "com.atlassian.jira.plugin.system.customfieldtypes:datetime"),
        f("customfield_10008", "Platforms", "array", Some("option"), "com.atlassian.jira.plugin.system.customfieldtypes:multiselect"),
        f("customfield_10009", "Notes", "string", None, "com.atlassian.jira.plugin.system.customfieldtypes:textarea"),
    ]);
    serde_json::to_vec(&all).unwrap_or_default()
}

/// Runs `work` on every page over `threads` threads until `min` has passed;
/// returns bytes/s and pages handled.
fn timed<F>(corpus: &Corpus, threads: usize, min: Duration, work: F) -> f64
where
    F: Fn(&PageMeta, &mut Vec<u8>) + Sync,
{
    let run_once = || {
        if threads <= 1 {
            let mut buf = Vec::new();
            for (meta, body) in &corpus.pages {
                buf.clear();
                buf.extend_from_slice(body);
                work(meta, &mut buf);
            }
        } else {
            corpus
                .pages
                .par_iter()
                .with_max_len(1)
                .for_each_init(Vec::new, |buf, (meta, body)| {
                    buf.clear();
                    buf.extend_from_slice(body);
                    work(meta, buf);
                });
        }
    };
    let start = Instant::now();
    let mut rounds = 0u64;
    while rounds == 0 || start.elapsed() < min {
        run_once();
        rounds += 1;
    }
    (corpus.bytes * rounds) as f64 / start.elapsed().as_secs_f64()
}

/// Measures bare parse and transform on `threads` threads (best of 3 rounds,
/// interleaved so both see the same machine load).
pub fn measure(corpus: &Corpus, threads: usize, per_round: Duration) -> Result<Figure> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Other(format!("cannot start bench threads: {e}")))?;
    let sel = Selection::all();
    let (mut parse, mut reused, mut transform) = (0f64, 0f64, 0f64);
    pool.install(|| {
        for _ in 0..3 {
            parse = parse.max(timed(corpus, threads, per_round, |_, buf| {
                let tape = simd_json::to_tape(buf);
                std::hint::black_box(tape.map(|t| t.0.len()).unwrap_or(0));
            }));
            reused = reused.max(timed(corpus, threads, per_round, |_, buf| {
                std::hint::black_box(parse_only(buf));
            }));
            transform = transform.max(timed(corpus, threads, per_round, |meta, buf| {
                let b = transform_page_with(meta, buf, &corpus.catalog, &sel);
                std::hint::black_box(b.map(|b| b.total_rows()).unwrap_or(0));
            }));
        }
    });
    let bytes_per_issue = corpus.bytes as f64 / corpus.issues.max(1) as f64;
    Ok(Figure {
        threads,
        parse_mbs: parse / 1e6,
        parse_reused_mbs: reused / 1e6,
        transform_mbs: transform / 1e6,
        transform_issues_per_s: transform / bytes_per_issue,
    })
}

/// The bench command.
pub fn exec(args: &BenchTransformArgs) -> Result<ExitCode> {
    let corpus = match (&args.pages, args.issues) {
        (Some(dir), _) => load_dir(dir)?,
        (None, n) => generated(n.unwrap_or(10_000)),
    };
    let all = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(Error::Config(
            "--seconds must be between 0 and 600".to_string(),
        ));
    }
    let per_round = Duration::from_secs_f64(args.seconds);
    println!(
        "transform bench: {} pages, {} issues, {:.1} MB of JSON ({}), {} bytes/issue",
        corpus.pages.len(),
        corpus.issues,
        corpus.bytes as f64 / 1e6,
        corpus.origin,
        corpus.bytes / corpus.issues.max(1)
    );
    println!(
        "{:>7}  {:>15}  {:>17}  {:>14}  {:>10}  {:>15}",
        "threads",
        "to_tape MB/s",
        "reused parse MB/s",
        "transform MB/s",
        "issues/s",
        "transform/parse"
    );
    let one = measure(&corpus, 1, per_round)?;
    print_figure(&one);
    if all > 1 {
        let many = measure(&corpus, all, per_round)?;
        print_figure(&many);
        println!(
            "scaling: all cores ({all} threads) = {:.2} x one thread (transform), {:.2} x (bare to_tape)",
            many.transform_mbs / one.transform_mbs,
            many.parse_mbs / one.parse_mbs
        );
    }
    Ok(ExitCode::Success)
}

fn print_figure(f: &Figure) {
    println!(
        "{:>7}  {:>15.1}  {:>17.1}  {:>14.1}  {:>10.0}  {:>15.2}",
        f.threads,
        f.parse_mbs,
        f.parse_reused_mbs,
        f.transform_mbs,
        f.transform_issues_per_s,
        f.ratio()
    );
}
