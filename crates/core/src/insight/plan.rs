//! `pipeline plan`: what the next run will do, without doing it. For each
//! scope: the JQL the run will send, how many issues it matches
//! (`maxResults=0` counts), its slices (from the extractor's own planner,
//! [`crate::extract::scope::plan_slices`], so the numbers are the run's), the
//! requests it will make, and — from one or two real page requests, timed —
//! its estimated duration at the configured concurrency.
//!
//! The mode is decided as the extractor decides it: an interrupted run whose
//! query is unchanged is resumed; otherwise the scope's checkpoint (from
//! PostgreSQL when `DATABASE_URL` is set and the schema is initialised, or a
//! staged End page not yet loaded) makes the run incremental, and no
//! checkpoint means a backfill. Writes nothing: no staging file, no state,
//! no database row.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, Scope};
use crate::error::{Error, ExitCode, Result};
use crate::extract::scope::{ScopeCtx, plan_slices};
use crate::extract::state::{Mode, RunState, SliceState, StateStore, advance};
use crate::extract::{Checkpoints, read_checkpoints};
use crate::jira::api::check_search;
use crate::jira::client::Response;
use crate::jira::jql::{DateField, Range, floor_minute, scope_clause, search_jql};
use crate::jira::{IssueHead, JiraClient};
use crate::progress::StageCounters;
use crate::session::Session;
use crate::staging::Staging;

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Text,
    Json,
}

/// `pipeline plan` options.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// Only these scopes; empty: every configured scope.
    pub scopes: Vec<String>,
    /// Plan a backfill from sync.backfill_start even where a checkpoint exists (as `run --full`).
    pub full: bool,
    /// Output format.
    pub format: PlanFormat,
}

/// One slice of a scope's run.
#[derive(Debug, Clone, Serialize)]
pub struct SlicePlan {
    pub id: u32,
    /// The slice's window, e.g. `created >= 2023-01-01T00:00Z, < 2023-04-01T00:00Z`.
    pub window: String,
    /// The JQL of its first request.
    pub jql: String,
    /// Issues the planning counts put in it (a resumed slice: still to read).
    pub issues: u64,
    /// Search requests it needs at the effective page size.
    pub pages: u64,
}

/// One scope's next run.
#[derive(Debug, Clone, Serialize)]
pub struct ScopePlan {
    pub scope: String,
    /// `backfill` or `incremental`.
    pub mode: String,
    /// Why this mode: the checkpoint found, its absence, `--full`, or a resume.
    pub reason: String,
    /// The run id of an interrupted run the next run continues.
    pub resumes: Option<String>,
    /// Where the incremental catch-up run that follows the resumed run reads
    /// from (the resumed run's start minus the safety window); its slices are
    /// counted in `slices`, its counts in `planning_requests`.
    pub catch_up_from: Option<DateTime<Utc>>,
    /// Where the run reads from (backfill start, or checkpoint − safety window).
    pub from: DateTime<Utc>,
    /// The query of the whole run (each slice narrows it).
    pub jql: String,
    /// Issues it matches (sum of the planning counts).
    pub issues: u64,
    pub slices: Vec<SlicePlan>,
    /// `maxResults=0` counts (and the first-issue lookup) the run makes to plan.
    pub planning_requests: u64,
    /// Search page requests.
    pub page_requests: u64,
    /// Estimated seconds for this scope alone (planning + pages).
    pub duration_secs: f64,
    /// What a census of the scope (`pipeline reconcile`, and `sync` when
    /// due) costs; filled after the sample.
    pub census: Option<CensusPlan>,
}

/// The cost of one scope's census, from a count and one timed light page.
#[derive(Debug, Clone, Serialize)]
pub struct CensusPlan {
    /// Issues of the whole scope (every `created`).
    pub issues: u64,
    /// Ids per light page the server grants (`fields=id`, 1000 asked).
    pub ids_per_page: u32,
    /// Light pages, plus the counts that slice the listing and check it.
    pub requests: u64,
    /// Estimated seconds at the configured concurrency (lookups of issues
    /// the listing does not return come on top: one request each).
    pub duration_secs: f64,
    /// `sync.reconcile_every_hours` (0: only `pipeline reconcile`).
    pub every_hours: u64,
}

/// The timed sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub requests: u64,
    pub secs_per_request: f64,
    /// Staging one such page (zstd at the configured level, atomic write with
    /// fsync, the resume-state replace), timed in a temporary directory.
    pub local_secs_per_page: f64,
    /// CPU time per page on this machine: parsing the page (as the client
    /// checks it) and compressing it; plus, when Jira is on this machine
    /// (a loopback `base_url`, e.g. the simulator), its time per request.
    pub cpu_secs_per_page: f64,
    /// CPU cores available to the run (`available_parallelism`).
    pub cores: usize,
    /// True when `base_url` is a loopback address (Jira shares the cores).
    pub server_on_this_machine: bool,
    pub bytes_per_request: u64,
    pub issues_per_request: f64,
}

/// The whole plan (also its JSON shape).
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub user: String,
    pub time_zone: String,
    pub server_version: String,
    /// Where the checkpoints came from, or why none were read.
    pub checkpoints: String,
    pub concurrency: usize,
    /// `jira.page_size`.
    pub page_size: u32,
    /// What the server grants per page (its `maxResults` cap), from the sample.
    pub effective_page_size: u32,
    pub scopes: Vec<ScopePlan>,
    /// `/myself`, `/serverInfo`, the scope check (`/project`, `/issuetype`,
    /// `/field`, also the field catalogue) and `/status`, `/priority`,
    /// `/resolution`.
    pub setup_requests: u64,
    /// The dimensions each run's End page fetches (the project's versions
    /// and components): per scope, per run (a catch-up is a second run).
    pub dimension_requests: u64,
    /// Every request of the run: setup + planning + pages.
    pub requests: u64,
    pub sample: Option<Sample>,
    /// Seconds this plan spent counting (the run spends about as long).
    pub planning_secs: f64,
    /// Estimated seconds of the whole run at the configured concurrency.
    pub duration_secs: f64,
    /// Requests this plan made that the run does not (sample, resume counts).
    pub plan_only_requests: u64,
}

/// Search requests a slice needs when `total` issues match its query and
/// the server returns `page` per request: the extractor's own paging rule
/// ([`advance`]) applied to a synthetic result, from the slice's current
/// position (a fresh slice starts at 0; a resumed one repeats its last issue).
pub(crate) fn pages_needed(slice: &SliceState, total: u64, page: u32) -> u64 {
    let page = u64::from(page.max(2));
    let mut s = slice.clone();
    let start_id = s.last.as_ref().map(|l| (s.start_at, l.id));
    let head = |i: u64| IssueHead {
        id: match start_id {
            Some((at, id)) if at == i => id,
            _ => 1_000_000_000_000 + i,
        },
        key: String::new(),
        created: DateTime::<Utc>::UNIX_EPOCH,
        updated: DateTime::<Utc>::UNIX_EPOCH,
        updated_raw: String::new(),
        changelog_cut: None,
    };
    let mut n = 0u64;
    // Each page moves at least one issue on, or ends the slice.
    let limit = total + 3;
    while !s.done && n < limit {
        let at = s.start_at;
        let end = total.min(at + page);
        let issues: Vec<IssueHead> = (at..end.max(at)).map(head).collect();
        n += 1;
        advance(&mut s, at, &issues);
    }
    n
}

fn fmt_instant(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .unwrap_or_default()
}

/// `created >= …, < …; updated >= …`.
pub fn window(ranges: &[Range]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| {
            let mut p = vec![];
            if r.lo.is_some() {
                p.push(format!(">= {}", fmt_instant(r.lo)));
            }
            if r.hi.is_some() {
                p.push(format!("< {}", fmt_instant(r.hi)));
            }
            format!("{} {}", r.field.name(), p.join(", "))
        })
        .collect();
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join("; ")
    }
}

/// The checkpoints of `names` from PostgreSQL, when it can be asked, and a
/// sentence saying where they came from. Never inside a tokio runtime.
fn checkpoints(cfg: &Config, names: &[String]) -> (Checkpoints, String) {
    let none = HashMap::new();
    let url = match crate::config::database_url() {
        Ok(u) => u,
        Err(_) if std::env::var_os("DATABASE_URL").is_none() => {
            return (
                none,
                "DATABASE_URL is not set: no checkpoint read, every scope without a staged End page is planned as a backfill".into(),
            );
        }
        Err(e) => {
            return (
                none,
                format!(
                    "{}: no checkpoint read, planned as a backfill",
                    e.one_line()
                ),
            );
        }
    };
    let schema = &cfg.database.schema;
    let mut db = match crate::db::connect(&url, &cfg.database) {
        Ok(c) => c,
        Err(e) => {
            return (
                none,
                format!(
                    "cannot reach PostgreSQL ({}): no checkpoint read, planned as a backfill — the real run needs the database",
                    e.one_line()
                ),
            );
        }
    };
    if let Err(e) = crate::db::check_schema(&mut db, schema) {
        return (
            none,
            format!(
                "{}: no checkpoint read, planned as a backfill",
                e.one_line()
            ),
        );
    }
    match read_checkpoints(&mut db, schema, names) {
        Ok(c) => {
            let n = c.len();
            (
                c,
                format!("read from PostgreSQL schema {schema:?} ({n} scope(s) with a checkpoint)"),
            )
        }
        Err(e) => (
            none,
            format!(
                "{}: no checkpoint read, planned as a backfill",
                e.one_line()
            ),
        ),
    }
}

/// What the next run of one scope starts from.
struct Start {
    state: RunState,
    reason: String,
    resumed: bool,
}

/// The extractor's decision ([`crate::extract::start_of`]), with the reason
/// in words and the state a new run would start with.
fn start_of(
    cfg: &Config,
    staging: &Staging,
    sc: &Scope,
    full: bool,
    db_checkpoints: &Checkpoints,
    started: DateTime<Utc>,
    tz: &str,
) -> Result<Start> {
    let (mode, from, cursor, cursor_staged, scope_changed) = match crate::extract::start_of(
        cfg,
        staging,
        sc,
        full,
        db_checkpoints,
    )? {
        crate::extract::Start::Resume(s) => {
            return Ok(Start {
                reason: format!(
                    "continues the interrupted {} run {} ({} pages staged){}",
                    s.mode.as_str(),
                    s.run_id,
                    s.pages(),
                    if s.started_at < started {
                        format!(
                            ", then catches up with an incremental run from its start ({}) minus the safety window, so the run is current as of its own start",
                            s.started_at.to_rfc3339()
                        )
                    } else {
                        String::new()
                    }
                ),
                resumed: true,
                state: s,
            });
        }
        crate::extract::Start::New {
            mode,
            from,
            cursor,
            cursor_staged,
            scope_changed,
            ..
        } => (
            mode,
            from,
            cursor,
            cursor_staged || scope_changed,
            scope_changed,
        ),
    };
    let reason = match cursor {
        None if full => "--full: backfill from sync.backfill_start".to_string(),
        None if scope_changed => "the scope's definition (project, issue types, jql or fields) changed since its checkpoint: backfill from sync.backfill_start (fingerprint change pending)".to_string(),
        None => "no checkpoint: backfill from sync.backfill_start".to_string(),
        Some(c) => format!(
            "checkpoint {} ({}) minus the {}-minute safety window",
            c.to_rfc3339(),
            if cursor_staged {
                "from a staged End page not yet loaded"
            } else {
                "from PostgreSQL"
            },
            cfg.sync.safety_window.as_secs() / 60
        ),
    };
    Ok(Start {
        state: RunState {
            format: 1,
            scope: sc.name.clone(),
            run_id: crate::staging::run_id(started),
            mode,
            started_at: started,
            from,
            base_jql: scope_clause(sc)?,
            fingerprint: Some(crate::extract::fingerprint(sc)?),
            time_zone: tz.to_string(),
            planned: false,
            slices: Vec::new(),
            finished: false,
        },
        reason,
        resumed: false,
    })
}

fn requests(c: &JiraClient) -> u64 {
    c.stats().requests.load(Ordering::Relaxed)
}

/// Builds the plan (async; the checkpoints are read before, outside the runtime).
pub async fn build(
    cfg: &Config,
    client: &JiraClient,
    scopes: &[&Scope],
    full: bool,
    db_checkpoints: &Checkpoints,
    checkpoint_note: String,
) -> Result<Plan> {
    let me = client.myself().await?;
    let info = client.server_info().await?;
    // The run's start instant, as the extractor takes it.
    let now = Utc::now();
    let started = match info.server_time {
        Some(st) if st < now => st,
        _ => now,
    };
    let started = DateTime::from_timestamp_millis(started.timestamp_millis()).unwrap_or(started);
    let staging = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);

    let mut works = Vec::new();
    let mut plan_only = 0u64;
    let mut planning_total = 0.0;
    for sc in scopes {
        let start = start_of(
            cfg,
            &staging,
            sc,
            full,
            db_checkpoints,
            started,
            &me.tz.to_string(),
        )?;
        let w = plan_scope(cfg, client, &staging, sc, start, started, me.tz).await?;
        plan_only += w.plan_only;
        planning_total += w.planning_secs;
        works.push(w);
    }

    let r0 = requests(client);
    let (sample, effective) = take_sample(cfg, client, &works, me.tz).await?;
    plan_only += requests(client) - r0;
    let timing = Timing {
        per_page: sample
            .as_ref()
            .map_or(0.0, |s| s.secs_per_request + s.local_secs_per_page),
        cpu_per_page: sample.as_ref().map_or(0.0, |s| s.cpu_secs_per_page),
        concurrency: cfg.jira.concurrency.max(1),
        cores: sample.as_ref().map_or(1, |s| s.cores),
    };

    let (mut scopes_out, total_pages, longest, planning_requests) =
        paged_scopes(works, effective, &timing, me.tz);
    let r0 = requests(client);
    for sp in &mut scopes_out {
        let sc = cfg.scopes.iter().find(|s| s.name == sp.scope);
        if let Some(sc) = sc {
            sp.census = Some(census_plan(cfg, client, sc).await?);
        }
    }
    plan_only += requests(client) - r0;
    // /myself, /serverInfo, the scope check (/project, /issuetype, /field,
    // which is also the catalogue a run stages) and the instance's other
    // dimension lists (/status, /priority, /resolution).
    let setup = 5 + crate::extract::scope::INSTANCE_DIMENSION_REQUESTS;
    let dimension_requests: u64 = scopes_out
        .iter()
        .map(|sp| {
            crate::extract::scope::END_PAGE_REQUESTS * (1 + u64::from(sp.catch_up_from.is_some()))
        })
        .sum();
    let duration = planning_total + timing.secs(total_pages, longest);
    Ok(Plan {
        user: me.name,
        time_zone: me.tz.to_string(),
        server_version: info.version,
        checkpoints: checkpoint_note,
        concurrency: cfg.jira.concurrency,
        page_size: cfg.jira.page_size,
        effective_page_size: effective,
        scopes: scopes_out,
        setup_requests: setup,
        dimension_requests,
        requests: setup + planning_requests + total_pages + dimension_requests,
        sample,
        planning_secs: planning_total,
        duration_secs: duration,
        plan_only_requests: plan_only,
    })
}

/// A census's cost: the scope's count, one timed light page (its server
/// cap and latency), and the listing's slices (each well inside the search
/// window) with two counts per slice to plan them.
async fn census_plan(cfg: &Config, client: &JiraClient, sc: &Scope) -> Result<CensusPlan> {
    let base = scope_clause(sc)?;
    let issues = client.count(&base).await?;
    let t = Instant::now();
    let page = client
        .list_ids(
            &format!("{base} ORDER BY created ASC, key ASC"),
            0,
            crate::census::CENSUS_PAGE,
        )
        .await?;
    let per_request = t.elapsed().as_secs_f64();
    let per_page = page
        .max_results
        .filter(|m| *m > 0)
        .map_or(crate::census::CENSUS_PAGE, |m| {
            m.min(u64::from(crate::census::CENSUS_PAGE)) as u32
        });
    let slice = crate::extract::state::SEARCH_WINDOW * 3 / 5;
    let slices = issues.div_ceil(slice).max(1);
    let requests = issues.div_ceil(u64::from(per_page)).max(1) + 2 * slices + 2;
    let every = cfg.sync.reconcile_every.map_or(0, |d| d.as_secs() / 3600);
    Ok(CensusPlan {
        issues,
        ids_per_page: per_page,
        requests,
        duration_secs: requests as f64 * per_request / cfg.jira.concurrency.max(1) as f64,
        every_hours: every,
    })
}

/// One scope planned, before the sample sets the page size.
struct Work {
    sp: ScopePlan,
    base: String,
    raw: Vec<(SliceState, u64)>,
    planning_secs: f64,
    /// Requests made only by the plan (the counts of a resumed run's slices).
    plan_only: u64,
}

/// Scope phase: the slices of the scope's next run with their counts (and
/// those of the catch-up run after a resumed one), timed.
async fn plan_scope(
    cfg: &Config,
    client: &JiraClient,
    staging: &Staging,
    sc: &Scope,
    start: Start,
    started: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> Result<Work> {
    let mut plan_only = 0u64;
    let st = start.state.clone();
    let ctx = ScopeCtx {
        client: client.clone(),
        staging: staging.clone(),
        scope: sc.name.clone(),
        project: sc.project.clone(),
        scope_changed: false,
        dimensions: Arc::default(),
        base: st.base_jql.clone(),
        tz,
        page_size: cfg.jira.page_size,
        concurrency: cfg.jira.concurrency,
        domain_start: cfg.sync.backfill_start,
        // Never written: plan_slices only reads the state.
        store: Arc::new(StateStore::new(PathBuf::new(), st.clone())),
        sink: None,
        progress: Arc::new(StageCounters::default()),
    };
    let t0 = Instant::now();
    let r0 = requests(client);
    let (mut raw, mut planning_requests) = if start.resumed && st.planned {
        let raw = resumed_counts(client, &st, tz).await?;
        plan_only += requests(client) - r0;
        (raw, 0)
    } else {
        let slices = plan_slices(&ctx).await?;
        (
            slices
                .into_iter()
                .map(|s| {
                    let e = s.estimate;
                    (s, e)
                })
                .collect(),
            requests(client) - r0,
        )
    };
    // A resumed run that started before this one is followed by an
    // incremental catch-up run from its start (see the extractor).
    let mut catch_up_from = None;
    if start.resumed && st.started_at < started {
        let (slices, from, n) = catch_up(cfg, client, ctx, &st, started).await?;
        planning_requests += n;
        raw.extend(slices);
        catch_up_from = Some(from);
    }
    let planning_secs = if planning_requests > 0 {
        t0.elapsed().as_secs_f64()
    } else {
        0.0
    };
    Ok(Work {
        sp: scope_plan(sc, start, catch_up_from, &raw, planning_requests, tz),
        base: st.base_jql.clone(),
        raw,
        planning_secs,
        plan_only,
    })
}

/// Counting phase of a resumed run: each unfinished slice counted from its position.
async fn resumed_counts(
    client: &JiraClient,
    st: &RunState,
    tz: chrono_tz::Tz,
) -> Result<Vec<(SliceState, u64)>> {
    // The run goes on from each unfinished slice's position.
    let mut raw = Vec::new();
    for s in st.slices.iter().filter(|s| !s.done) {
        let total = client
            .count(&crate::jira::jql::count_jql(
                &st.base_jql,
                &s.query_ranges(),
                tz,
            ))
            .await?;
        raw.push((s.clone(), total));
    }
    Ok(raw)
}

/// Catch-up phase: the slices of the incremental run that follows a resumed
/// run (from its start minus the safety window), where it reads from, and
/// the requests planning them took.
async fn catch_up(
    cfg: &Config,
    client: &JiraClient,
    ctx: ScopeCtx,
    st: &RunState,
    started: DateTime<Utc>,
) -> Result<(Vec<(SliceState, u64)>, DateTime<Utc>, u64)> {
    let from =
        st.started_at - chrono::Duration::from_std(cfg.sync.safety_window).unwrap_or_default();
    let up = RunState {
        run_id: crate::staging::run_id(started),
        mode: Mode::Incremental,
        started_at: started,
        from,
        planned: false,
        slices: Vec::new(),
        finished: false,
        ..st.clone()
    };
    let ctx = ScopeCtx {
        store: Arc::new(StateStore::new(PathBuf::new(), up)),
        ..ctx
    };
    let r1 = requests(client);
    let slices = plan_slices(&ctx).await?;
    let n = requests(client) - r1;
    let raw = slices
        .into_iter()
        .map(|s| {
            let e = s.estimate;
            (s, e)
        })
        .collect();
    Ok((raw, from, n))
}

/// Summary phase of a scope: its plan without slices and page requests
/// (they wait for the sample's page size).
fn scope_plan(
    sc: &Scope,
    start: Start,
    catch_up_from: Option<DateTime<Utc>>,
    raw: &[(SliceState, u64)],
    planning_requests: u64,
    tz: chrono_tz::Tz,
) -> ScopePlan {
    let st = &start.state;
    let (order, range) = match st.mode {
        Mode::Backfill => (DateField::Created, DateField::Created),
        Mode::Incremental => (DateField::Updated, DateField::Updated),
    };
    let whole = [Range {
        field: range,
        lo: Some(floor_minute(st.from)),
        hi: None,
    }];
    let issues = raw
        .iter()
        .map(|(s, n)| n.saturating_sub(if start.resumed { s.start_at } else { 0 }))
        .sum();
    ScopePlan {
        scope: sc.name.clone(),
        mode: st.mode.as_str().into(),
        reason: start.reason,
        resumes: start.resumed.then(|| st.run_id.clone()),
        catch_up_from,
        from: st.from,
        jql: search_jql(&st.base_jql, &whole, order, tz),
        issues,
        slices: Vec::new(),
        planning_requests,
        page_requests: 0,
        duration_secs: 0.0,
        census: None,
    }
}

/// Sampling phase: the first page (and the second, when the first is full)
/// of the biggest slice, timed, exactly as the run will ask for them; with
/// the page size the server grants.
async fn take_sample(
    cfg: &Config,
    client: &JiraClient,
    works: &[Work],
    tz: chrono_tz::Tz,
) -> Result<(Option<Sample>, u32)> {
    let biggest = works
        .iter()
        .flat_map(|w| w.raw.iter().map(move |(s, n)| (w, s, *n)))
        .max_by_key(|(_, s, n)| n.saturating_sub(s.start_at));
    let mut sample = None;
    let mut effective = cfg.jira.page_size;
    if let Some((w, s, _)) = biggest {
        let jql = search_jql(&w.base, &s.query_ranges(), s.order, tz);
        let mut secs = 0.0;
        let mut bytes = 0u64;
        let mut issues = 0u64;
        let mut n = 0u64;
        let mut first_body = None;
        let mut at = s.start_at;
        for _ in 0..2 {
            let t = Instant::now();
            let page = client.search(&jql, at, cfg.jira.page_size).await?;
            secs += t.elapsed().as_secs_f64();
            n += 1;
            bytes += page.body.len() as u64;
            issues += page.issues.len() as u64;
            first_body.get_or_insert_with(|| page.body.clone());
            if let Some(m) = page.max_results.filter(|m| *m > 0) {
                effective = effective.min(m.min(u64::from(u32::MAX)) as u32);
            }
            if (page.issues.len() as u64) < u64::from(effective) || page.issues.len() < 2 {
                break;
            }
            at += page.issues.len() as u64 - 1;
        }
        let level = cfg.staging.compression_level;
        let (local, cpu) = match first_body {
            Some(b) => tokio::task::spawn_blocking(move || time_staging(&b, level))
                .await
                .ok()
                .flatten()
                .unwrap_or((0.0, 0.0)),
            None => (0.0, 0.0),
        };
        let per_request = secs / n as f64;
        let here = is_loopback(&cfg.jira.base_url);
        sample = Some(Sample {
            requests: n,
            secs_per_request: per_request,
            local_secs_per_page: local,
            cpu_secs_per_page: cpu + if here { per_request } else { 0.0 },
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            server_on_this_machine: here,
            bytes_per_request: bytes / n,
            issues_per_request: issues as f64 / n as f64,
        });
    }
    Ok((sample, effective))
}

/// Paging phase: every scope's slices with their pages at the effective
/// page size, and its duration; with the total pages, the longest slice's
/// pages and the planning requests of all scopes.
fn paged_scopes(
    works: Vec<Work>,
    effective: u32,
    timing: &Timing,
    tz: chrono_tz::Tz,
) -> (Vec<ScopePlan>, u64, u64, u64) {
    let mut total_pages = 0u64;
    let mut longest = 0u64;
    let mut scopes_out = Vec::new();
    let mut planning_requests = 0;
    for w in works {
        let mut sp = w.sp;
        let mut scope_longest = 0;
        for (s, n) in &w.raw {
            let pages = pages_needed(s, *n, effective);
            scope_longest = scope_longest.max(pages);
            sp.slices.push(SlicePlan {
                id: s.id,
                window: window(&s.ranges),
                jql: search_jql(&w.base, &s.query_ranges(), s.order, tz),
                issues: n.saturating_sub(if s.last.is_some() { s.start_at } else { 0 }),
                pages,
            });
        }
        sp.page_requests = sp.slices.iter().map(|s| s.pages).sum();
        sp.duration_secs = w.planning_secs + timing.secs(sp.page_requests, scope_longest);
        total_pages += sp.page_requests;
        longest = longest.max(scope_longest);
        planning_requests += sp.planning_requests;
        scopes_out.push(sp);
    }
    (scopes_out, total_pages, longest, planning_requests)
}

/// How long paging takes, from the sample.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Wall time of one page in one slice: request + staging.
    pub per_page: f64,
    /// CPU time of one page on this machine.
    pub cpu_per_page: f64,
    pub concurrency: usize,
    pub cores: usize,
}

impl Timing {
    /// Seconds to fetch `pages` pages whose longest slice has `longest`:
    /// slices run in parallel up to the concurrency, each slice one page
    /// after the other, and the CPU work shares the cores.
    pub fn secs(&self, pages: u64, longest: u64) -> f64 {
        let pages = pages as f64;
        (pages * self.per_page / self.concurrency.max(1) as f64)
            .max(longest as f64 * self.per_page)
            .max(pages * self.cpu_per_page / self.cores.max(1) as f64)
    }
}

/// True when `url`'s host is this machine.
fn is_loopback(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        })
}

/// `(wall, cpu)` seconds to stage `body` as the extractor does: parse it as
/// the client checks a search page, compress it, write it atomically with
/// fsync, replace a state file without fsync — in a temporary directory
/// removed afterwards; nothing is written in the staging area. `wall`
/// leaves out the parse (the sampled request time includes it).
fn time_staging(body: &Bytes, level: i32) -> Option<(f64, f64)> {
    let t = Instant::now();
    let resp = Response {
        status: 200,
        body: body.clone(),
        headers: Default::default(),
        fetched_at: Utc::now(),
    };
    check_search(resp, true).ok()?;
    let parse = t.elapsed().as_secs_f64();
    let dir = tempfile::tempdir().ok()?;
    let t = Instant::now();
    let c = zstd::bulk::compress(body, level).ok()?;
    let compress = t.elapsed().as_secs_f64();
    crate::staging::write_atomic(&dir.path().join("page.zst"), &c).ok()?;
    // The resume state is replaced without fsync (temp file + rename).
    let tmp = dir.path().join("state.json.tmp");
    std::fs::write(&tmp, [b' '; 4096]).ok()?;
    std::fs::rename(&tmp, dir.path().join("state.json")).ok()?;
    let wall = t.elapsed().as_secs_f64();
    Some((wall, parse + compress))
}

fn human_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// Slices listed one per line in the text form (the JSON form has all).
const TEXT_SLICES: usize = 12;

/// The plan as text.
pub fn text(p: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "plan as {} (JQL dates in {}), Jira {}; concurrency {}, page size {}{}",
        p.user,
        p.time_zone,
        p.server_version,
        p.concurrency,
        p.page_size,
        if p.effective_page_size < p.page_size {
            format!(" (the server caps it at {})", p.effective_page_size)
        } else {
            String::new()
        }
    );
    let _ = writeln!(s, "checkpoints: {}", p.checkpoints);
    for sc in &p.scopes {
        scope_text(&mut s, sc);
    }
    let _ = writeln!(s);
    totals_text(&mut s, p);
    s
}

/// Scope section of the text: mode and reason, JQL, matches, slices, requests.
fn scope_text(s: &mut String, sc: &ScopePlan) {
    use std::fmt::Write as _;
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "scope {}: {} from {} — {}",
        sc.scope,
        sc.mode,
        sc.from.to_rfc3339(),
        sc.reason
    );
    let _ = writeln!(s, "  JQL: {}", sc.jql);
    let _ = writeln!(
        s,
        "  matches: {} issue{}",
        sc.issues,
        if sc.issues == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        s,
        "  slices: {}{}",
        sc.slices.len(),
        if sc.resumes.is_some() {
            " unfinished"
        } else {
            ""
        }
    );
    for sl in sc.slices.iter().take(TEXT_SLICES) {
        let _ = writeln!(
            s,
            "    #{:<3} {:>7} issues {:>5} pages  {}",
            sl.id, sl.issues, sl.pages, sl.window
        );
    }
    if sc.slices.len() > TEXT_SLICES {
        let _ = writeln!(
            s,
            "    … {} more (--format json lists every slice)",
            sc.slices.len() - TEXT_SLICES
        );
    }
    let _ = writeln!(
        s,
        "  requests: {} ({} to plan, {} pages); about {} alone",
        sc.planning_requests + sc.page_requests,
        sc.planning_requests,
        sc.page_requests,
        human_secs(sc.duration_secs)
    );
    if let Some(c) = &sc.census {
        let _ = writeln!(
            s,
            "  census: {} issues, {} requests ({} ids per page), about {}{}",
            c.issues,
            c.requests,
            c.ids_per_page,
            human_secs(c.duration_secs),
            if c.every_hours > 0 {
                format!(
                    "; sync takes one when the last is {} hours old",
                    c.every_hours
                )
            } else {
                "; only pipeline reconcile takes one (sync.reconcile_every_hours = 0)".into()
            }
        );
    }
}

/// Closing section of the text: the sample, the CPU time per page, the totals.
fn totals_text(s: &mut String, p: &Plan) {
    use std::fmt::Write as _;
    match &p.sample {
        Some(x) => {
            let _ = writeln!(
                s,
                "sample: {} page request(s), {} each (+ {} to stage), {:.0} KiB and {:.0} issues per page",
                x.requests,
                human_secs(x.secs_per_request),
                human_secs(x.local_secs_per_page),
                x.bytes_per_request as f64 / 1024.0,
                x.issues_per_request
            );
        }
        None => {
            let _ = writeln!(s, "sample: none (no slice to read)");
        }
    }
    if let Some(x) = &p.sample {
        let _ = writeln!(
            s,
            "cpu: {} per page on {} core(s){}",
            human_secs(x.cpu_secs_per_page),
            x.cores,
            if x.server_on_this_machine {
                " (Jira is on this machine: its time counts too)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(
        s,
        "total: {} requests ({} setup, {} to plan, {} pages, {} for dimensions); estimated {} at concurrency {}",
        p.requests,
        p.setup_requests,
        p.scopes.iter().map(|x| x.planning_requests).sum::<u64>(),
        p.scopes.iter().map(|x| x.page_requests).sum::<u64>(),
        p.dimension_requests,
        human_secs(p.duration_secs),
        p.concurrency
    );
}

/// `pipeline plan`.
pub fn exec(session: &Session, args: &PlanOptions) -> Result<ExitCode> {
    let cfg = session.config();
    let selected = session.scopes(&args.scopes)?;
    let client = super::client(session)?;
    let names: Vec<String> = selected.iter().map(|s| s.name.clone()).collect();
    // The sync postgres client stays outside the runtime.
    let (cps, note) = checkpoints(cfg, &names);
    let plan = session.block_on(build(cfg, &client, &selected, args.full, &cps, note))??;
    let out = match args.format {
        PlanFormat::Text => text(&plan),
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(&plan)
                .map_err(|e| Error::Other(format!("cannot encode the plan: {e}")))?;
            s.push('\n');
            s
        }
    };
    super::emit(&out)?;
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> SliceState {
        SliceState::new(0, Vec::new(), DateField::Created, 0, 0)
    }

    #[test]
    fn pages_follow_the_extractors_overlap_paging() {
        // Every page after the first repeats the last issue seen; a page with
        // only that issue ends the slice.
        assert_eq!(pages_needed(&fresh(), 0, 100), 1);
        assert_eq!(pages_needed(&fresh(), 1, 100), 2);
        assert_eq!(pages_needed(&fresh(), 2, 100), 2);
        assert_eq!(pages_needed(&fresh(), 100, 100), 2);
        assert_eq!(pages_needed(&fresh(), 150, 100), 3);
        assert_eq!(pages_needed(&fresh(), 199, 100), 3);
        assert_eq!(pages_needed(&fresh(), 200, 100), 4);
        assert_eq!(pages_needed(&fresh(), 1000, 50), 1 + 999_u64.div_ceil(49));
    }

    #[test]
    fn resumed_slice_counts_from_its_position() {
        let mut s = fresh();
        let heads: Vec<IssueHead> = (0..100)
            .map(|i| IssueHead {
                id: 1_000_000_000_000 + i,
                key: String::new(),
                created: DateTime::<Utc>::UNIX_EPOCH,
                updated: DateTime::<Utc>::UNIX_EPOCH,
                updated_raw: String::new(),
                changelog_cut: None,
            })
            .collect();
        advance(&mut s, 0, &heads);
        assert_eq!(s.start_at, 99);
        // 250 match; 99 are behind us: pages at 99, 198, then the last one.
        assert_eq!(pages_needed(&s, 250, 100), 3);
        assert_eq!(pages_needed(&fresh(), 250, 100), 4);
    }

    #[test]
    fn timing_is_bounded_by_slices_concurrency_and_cores() {
        let t = Timing {
            per_page: 0.1,
            cpu_per_page: 0.01,
            concurrency: 4,
            cores: 2,
        };
        // 100 pages over 4 slices of 25: concurrency-bound.
        assert!((t.secs(100, 25) - 2.5).abs() < 1e-9);
        // One slice of 100 pages: sequential.
        assert!((t.secs(100, 100) - 10.0).abs() < 1e-9);
        // CPU-heavy pages on 2 cores.
        let cpu = Timing {
            cpu_per_page: 0.08,
            ..t
        };
        assert!((cpu.secs(100, 25) - 4.0).abs() < 1e-9);
        assert!(is_loopback("http://127.0.0.1:8080"));
        assert!(is_loopback("http://localhost:8080/jira"));
        assert!(is_loopback("http://[::1]:8080"));
        assert!(!is_loopback("https://jira.example.com"));
    }

    #[test]
    fn window_text() {
        let t = DateTime::parse_from_rfc3339("2024-01-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            window(&[Range {
                field: DateField::Created,
                lo: Some(t),
                hi: None
            }]),
            "created >= 2024-01-01T10:00Z"
        );
        assert_eq!(window(&[]), "everything");
    }
}
