//! The census (`pipeline reconcile`, and from `sync`/`run` when a scope's
//! last one is older than `sync.reconcile_every_hours`): what search stops
//! returning is found and marked, so the warehouse never shows a deleted or
//! moved issue as live (invariant 7).
//!
//! One scope's census:
//!
//! 1. reads the stored issues the scope answers for (`issue.scope`, see
//!    [`crate::bookkeeping::census::stored`]);
//! 2. counts the scope's issues created before the census's start minute;
//! 3. lists every issue id of the scope with light pages (`fields=id`, the
//!    largest page the server allows), on `created` slices planned exactly
//!    like a backfill's, so no query passes the 10,000-result window;
//! 4. counts again: when the count moved by more than the changes the
//!    census itself saw (issues listed but not stored, stored but not
//!    listed, removed but listed), the census is not complete;
//! 5. looks up every stored, live issue it did not list, alone (`GET
//!    /rest/api/2/issue/{id}`): HTTP 404 → `deleted`; found → asks every
//!    configured scope (`<scope's query> AND id in (…)`): matched by this
//!    scope (the listing missed it while issues moved under it) → stays;
//!    by another scope → that scope answers for it now; by none →
//!    `out_of_scope`;
//! 6. writes the marks and its record in one transaction.
//!
//! Nothing is marked without a 404 or a no-scope-matches answer about that
//! very issue, so a listing that skipped issues costs lookups, never a
//! wrong mark. A census that is not complete (a request that finally
//! failed, a count that moved, a stop signal) writes nothing at all.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::bookkeeping::census::{self as book, Marks, Record, Stored};
use crate::config::{Config, Scope};
use crate::error::{Error, ExitCode, Result};
use crate::extract::scope::{ScopeCtx, plan_slices};
use crate::extract::state::{Mode, RunState, SEARCH_WINDOW, StateStore};
use crate::jira::JiraClient;
use crate::jira::jql::{DateField, Range, count_jql, floor_minute, scope_clause, search_jql};
use crate::progress::StageCounters;
use crate::session::{Report, RunOptions, Session};

/// Ids asked per census page (servers cap it at their own maximum).
pub const CENSUS_PAGE: u32 = 1000;
/// Ids per `id in (…)` query when asking which scope matches an issue.
const IN_CHUNK: usize = 200;

/// What one scope's census found (and, when complete, marked).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScopeCensus {
    pub scope: String,
    /// Distinct issue ids the listing returned.
    pub listed: u64,
    /// Live issues the warehouse held for the scope.
    pub stored_live: u64,
    /// Listed, but not in the warehouse (created since the last sync): the
    /// next sync loads them.
    pub not_loaded: u64,
    /// Not listed, but the scope's query still matches them (the listing
    /// missed them while issues moved under it): left live.
    pub relisted: u64,
    pub deleted: u64,
    pub out_of_scope: u64,
    /// Handed to another configured scope that matches them now.
    pub moved: u64,
    /// Marked removed before, seen again: live again.
    pub revived: u64,
    /// The scope's issue count before and after the listing.
    pub count_before: u64,
    pub count_after: u64,
    pub requests: u64,
    pub secs: f64,
}

/// A census of one scope that did not complete: nothing was marked.
#[derive(Debug, Clone, Serialize)]
pub struct CensusFailure {
    pub scope: String,
    pub message: String,
    #[serde(skip)]
    pub exit: ExitCode,
}

/// What `pipeline reconcile` (or the automatic census of `sync`/`run`) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CensusReport {
    pub scopes: Vec<ScopeCensus>,
    pub failed: Vec<CensusFailure>,
}

impl std::fmt::Display for CensusReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.scopes {
            writeln!(f, "{}", line(s))?;
        }
        for x in &self.failed {
            writeln!(
                f,
                "census of scope {}: not complete, nothing marked: {}",
                x.scope, x.message
            )?;
        }
        Ok(())
    }
}

/// The summary line of one complete census.
pub(crate) fn line(s: &ScopeCensus) -> String {
    format!(
        "census of scope {}: {} issues listed, {} live in the warehouse, in {} requests ({:.1} s); marked {} deleted, {} out of scope; {} handed to another scope, {} live again, {} not loaded yet (the next sync loads them), {} missed by the listing and still in scope",
        s.scope,
        s.listed,
        s.stored_live,
        s.requests,
        s.secs,
        s.deleted,
        s.out_of_scope,
        s.moved,
        s.revived,
        s.not_loaded,
        s.relisted
    )
}

impl Report for CensusReport {
    /// The most severe failure's code (a Jira error 3, anything else 1).
    fn exit_code(&self) -> ExitCode {
        self.failed
            .iter()
            .fold(ExitCode::Success, |a, x| a.max_with(x.exit))
    }
}

/// `pipeline reconcile`: a census of every selected scope, under the
/// schema's lock; each scope's marks commit on their own.
pub fn run(session: &Session, opts: &RunOptions) -> Result<CensusReport> {
    let names = session.scope_names(&opts.scopes)?;
    census(session, &names)
}

/// The automatic census of `sync`/`run`: the scopes of `names` whose last
/// census is older than `sync.reconcile_every_hours` (none when it is 0).
pub(crate) fn run_due(session: &Session, names: &[String]) -> Result<CensusReport> {
    let Some(every) = session.config().sync.reconcile_every else {
        return Ok(CensusReport::default());
    };
    let mut db = session.connect()?;
    let last = book::last(&mut db, &session.config().database.schema, names)?;
    drop(db);
    let every = chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let due: Vec<String> = names
        .iter()
        .filter(|n| last.get(*n).is_none_or(|r| now - r.finished_at >= every))
        .cloned()
        .collect();
    if due.is_empty() {
        return Ok(CensusReport::default());
    }
    census(session, &due)
}

/// Takes the lock and runs the census of each of `names` in turn.
fn census(session: &Session, names: &[String]) -> Result<CensusReport> {
    let token = session.jira_token()?;
    let mut db = session.lock_checked()?;
    let cfg = session.config();
    let client = JiraClient::new(&cfg.jira, &token, session.stop().flag())?;
    let (tz, started) = session.block_on(connect(&client))??;
    let mut report = CensusReport::default();
    for name in names {
        let sc = session.scopes(std::slice::from_ref(name))?[0];
        let env = Env {
            cfg,
            client: &client,
            tz,
            started,
        };
        match census_scope(session, &mut db, &env, sc) {
            Ok(s) => {
                tracing::info!("{}", line(&s));
                report.scopes.push(s);
            }
            Err(e) => {
                tracing::warn!(scope = %name, "census not complete, nothing marked: {}", e.one_line());
                report.failed.push(CensusFailure {
                    scope: name.clone(),
                    message: e.one_line(),
                    exit: e.exit_code(),
                });
                if session.stop().requested() {
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// The user's time zone (JQL dates are read in it) and the census's start
/// instant (Jira's clock when it is behind ours).
async fn connect(client: &JiraClient) -> Result<(chrono_tz::Tz, DateTime<Utc>)> {
    let me = client.myself().await?;
    let info = client.server_info().await?;
    let now = Utc::now();
    Ok((me.tz, info.server_time.map_or(now, |t| t.min(now))))
}

/// What every scope's census shares.
struct Env<'a> {
    cfg: &'a Config,
    client: &'a JiraClient,
    tz: chrono_tz::Tz,
    started: DateTime<Utc>,
}

/// One scope: read, list, compare, look up, then mark in one transaction.
fn census_scope(
    session: &Session,
    db: &mut postgres::Client,
    env: &Env<'_>,
    sc: &Scope,
) -> Result<ScopeCensus> {
    let t0 = Instant::now();
    let r0 = env.client.stats().requests.load(Ordering::Relaxed);
    let schema = &env.cfg.database.schema;
    let stored = book::stored(db, schema, &sc.name, &sc.project)?;
    let (marks, mut stats) = session.block_on(find_marks(env, sc, &stored))??;
    if session.stop().requested() {
        return Err(Error::Interrupted(format!(
            "scope {}: the census was stopped",
            sc.name
        )));
    }
    stats.requests = env.client.stats().requests.load(Ordering::Relaxed) - r0;
    stats.secs = t0.elapsed().as_secs_f64();
    let rec = Record {
        started_at: env.started,
        finished_at: Utc::now(),
        listed: stats.listed as i64,
        deleted: stats.deleted as i64,
        out_of_scope: stats.out_of_scope as i64,
        moved: stats.moved as i64,
        revived: stats.revived as i64,
        requests: stats.requests as i64,
    };
    let mut tx = db
        .transaction()
        .map_err(Error::db(format!("scope {}: census: BEGIN", sc.name)))?;
    book::apply(&mut tx, schema, &sc.name, &marks, &rec)?;
    tx.commit()
        .map_err(Error::db(format!("scope {}: census: COMMIT", sc.name)))?;
    Ok(stats)
}

/// Steps 2–5 of the census (see the module docs): Jira only, no writes.
async fn find_marks(env: &Env<'_>, sc: &Scope, stored: &Stored) -> Result<(Marks, ScopeCensus)> {
    let base = scope_clause(sc)?;
    let counted = [Range {
        field: DateField::Created,
        lo: None,
        hi: Some(floor_minute(env.started)),
    }];
    let count_q = count_jql(&base, &counted, env.tz);
    let before = env.client.count(&count_q).await?;
    let listed = list_scope(env, sc, &base).await?;
    let after = env.client.count(&count_q).await?;
    let stored_live: HashSet<i64> = stored.live.iter().copied().collect();
    let missing: Vec<i64> = stored
        .live
        .iter()
        .copied()
        .filter(|id| !listed.contains(id))
        .collect();
    let revived: Vec<i64> = stored
        .removed
        .iter()
        .copied()
        .filter(|id| listed.contains(id))
        .collect();
    let not_loaded = listed.iter().filter(|id| !stored_live.contains(id)).count() - revived.len();
    let seen_changes = (not_loaded + missing.len() + revived.len()) as u64;
    if before.abs_diff(after) > seen_changes {
        return Err(Error::jira(
            crate::error::JiraKind::Unusable,
            format!(
                "scope {}: the scope's issue count moved from {before} to {after} while the census listed it, more than the {seen_changes} changes it saw (issues deleted or moved during the census, or a permission change); run pipeline reconcile again",
                sc.name
            ),
        ));
    }
    let (gone, present) = look_up(env, &missing).await?;
    let homes = scope_homes(env, sc, &present).await?;
    let mut marks = Marks {
        deleted: gone,
        revived,
        ..Marks::default()
    };
    let mut relisted = 0;
    for id in &present {
        match homes.get(id) {
            Some(home) if *home == sc.name => relisted += 1,
            Some(home) => marks.moved.entry(home.clone()).or_default().push(*id),
            None => marks.out_of_scope.push(*id),
        }
    }
    let stats = ScopeCensus {
        scope: sc.name.clone(),
        listed: listed.len() as u64,
        stored_live: stored.live.len() as u64,
        not_loaded: not_loaded as u64,
        relisted,
        deleted: marks.deleted.len() as u64,
        out_of_scope: marks.out_of_scope.len() as u64,
        moved: marks.moved.values().map(|v| v.len() as u64).sum(),
        revived: marks.revived.len() as u64,
        count_before: before,
        count_after: after,
        ..ScopeCensus::default()
    };
    Ok((marks, stats))
}

/// Every issue id of the scope: `created` slices planned like a backfill's
/// (each well inside the search window), listed in parallel with light pages.
async fn list_scope(env: &Env<'_>, sc: &Scope, base: &str) -> Result<HashSet<i64>> {
    let ctx = slicing_ctx(env, sc, base);
    let slices = plan_slices(&ctx).await?;
    let pages = futures::stream::iter(slices.into_iter().map(|s| {
        let jql = search_jql(base, &s.ranges, DateField::Created, env.tz);
        list_slice(env.client, &sc.name, jql)
    }))
    .buffer_unordered(env.cfg.jira.concurrency.max(1))
    .try_collect::<Vec<Vec<i64>>>()
    .await?;
    Ok(pages.into_iter().flatten().collect())
}

/// A planning context for [`plan_slices`]: a backfill of the whole scope
/// (from the epoch: the census answers for every issue of the scope, also
/// one created before `sync.backfill_start` that a sync loaded) with
/// census-sized pages; its state is never written.
fn slicing_ctx(env: &Env<'_>, sc: &Scope, base: &str) -> ScopeCtx {
    let st = RunState {
        format: 1,
        scope: sc.name.clone(),
        run_id: crate::staging::run_id(env.started),
        mode: Mode::Backfill,
        started_at: env.started,
        from: DateTime::<Utc>::UNIX_EPOCH,
        base_jql: base.to_string(),
        fingerprint: None,
        time_zone: env.tz.to_string(),
        planned: false,
        slices: Vec::new(),
        finished: false,
    };
    ScopeCtx {
        client: env.client.clone(),
        staging: crate::staging::Staging::new(PathBuf::new(), 0),
        scope: sc.name.clone(),
        project: sc.project.clone(),
        scope_changed: false,
        dimensions: Arc::default(),
        base: base.to_string(),
        tz: env.tz,
        page_size: CENSUS_PAGE,
        concurrency: env.cfg.jira.concurrency,
        domain_start: DateTime::<Utc>::UNIX_EPOCH,
        store: Arc::new(StateStore::new(PathBuf::new(), st)),
        sink: None,
        progress: Arc::new(StageCounters::default()),
    }
}

/// The ids of one slice, page by page until the slice's `total` is read.
async fn list_slice(client: &JiraClient, scope: &str, jql: String) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    let mut start_at = 0u64;
    loop {
        if start_at + u64::from(CENSUS_PAGE) > SEARCH_WINDOW && start_at > 0 {
            return Err(Error::jira(
                crate::error::JiraKind::Unusable,
                format!(
                    "scope {scope}: a census slice grew past Jira's 10,000-result search window while it was listed ({start_at} read; JQL: {jql}); run pipeline reconcile again"
                ),
            ));
        }
        let page = client.list_ids(&jql, start_at, CENSUS_PAGE).await?;
        let n = page.ids.len() as u64;
        ids.extend(page.ids.iter().map(|&id| id as i64));
        start_at += n;
        if n == 0 || page.total.is_none_or(|t| start_at >= t) {
            return Ok(ids);
        }
    }
}

/// Looks every id up alone: `(gone: HTTP 404, present)`.
async fn look_up(env: &Env<'_>, ids: &[i64]) -> Result<(Vec<i64>, Vec<i64>)> {
    let found = futures::stream::iter(ids.iter().map(|&id| async move {
        let doc = env.client.issue_alone(id as u64, "project", "").await?;
        Ok::<_, Error>((id, doc.is_some()))
    }))
    .buffer_unordered(env.cfg.jira.concurrency.max(1))
    .try_collect::<Vec<(i64, bool)>>()
    .await?;
    let (present, gone): (Vec<_>, Vec<_>) = found.into_iter().partition(|(_, p)| *p);
    let mut gone: Vec<i64> = gone.into_iter().map(|(id, _)| id).collect();
    let mut present: Vec<i64> = present.into_iter().map(|(id, _)| id).collect();
    gone.sort_unstable();
    present.sort_unstable();
    Ok((gone, present))
}

/// For issues Jira still has: the configured scope whose query matches
/// each (this scope first, then the others in configuration order); an
/// issue no scope matches is absent.
async fn scope_homes(env: &Env<'_>, sc: &Scope, ids: &[i64]) -> Result<HashMap<i64, String>> {
    let mut homes = HashMap::new();
    let mut left: Vec<i64> = ids.to_vec();
    let order = std::iter::once(sc).chain(env.cfg.scopes.iter().filter(|s| s.name != sc.name));
    for other in order {
        if left.is_empty() {
            break;
        }
        let base = scope_clause(other)?;
        for chunk in left.chunks(IN_CHUNK) {
            let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
            let jql = format!("{base} AND id in ({})", list.join(", "));
            for id in list_slice(env.client, &other.name, jql).await? {
                homes.entry(id).or_insert_with(|| other.name.clone());
            }
        }
        left.retain(|id| !homes.contains_key(id));
    }
    Ok(homes)
}
