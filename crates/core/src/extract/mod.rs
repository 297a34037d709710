//! The extract stage: scopes → JQL → sliced, resumable searches → staged
//! pages, then one End page per scope run carrying the proposed checkpoint.
//!
//! - Backfill (no checkpoint): slices on `created` (which never changes),
//!   each small enough for Jira's 10,000-result window, learnt from
//!   `maxResults=0` counts; ordered `created ASC, key ASC`; run in parallel.
//! - Incremental: `updated >= checkpoint − safety window` (a `>=` on the
//!   minute, written in the Jira user's time zone), split on `created` when
//!   large, each slice ordered `updated ASC, key ASC`.
//! - Every slice pages by the number of issues received and repeats the last
//!   issue seen at the head of the next page; when it is not there the result
//!   shifted (issues updated, moved, deleted meanwhile) and the slice restarts
//!   from that issue's minute instead of trusting `startAt`. Near the window
//!   the query restarts from the last minute seen; a minute holding more
//!   issues than the window is drained as its own slices on the other date
//!   field. `total` is never trusted for completeness: a slice ends when a
//!   page brings nothing past the last issue seen (a short page is not the
//!   end: Jira skips issues deleted since its index saw them). Restarts go
//!   back to the earliest minute on the last page, because Jira sorts by its
//!   possibly lagging index but renders live values.
//! - The run's start instant T (the earlier of our clock and Jira's
//!   `serverTime`, taken before the first search) is the checkpoint it
//!   proposes: every search happens after T, so every issue changed before T
//!   is fetched at a version at least as new as at T (invariant 1).
//!
//! [`run`] is the blocking entry point (`pipeline run --stage extract`), on
//! the session's runtime; [`extract`] is the async core,
//! which takes the loaded checkpoints as input (no database) and can hand
//! every staged page to the next stage over a bounded channel.

pub mod scope;
pub mod state;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;

use crate::config::{Config, Secret};
use crate::error::{Error, ExitCode, Result};
use crate::jira::JiraClient;
use crate::jira::jql::scope_clause;
use crate::progress::{Display, Reporter, StageCounters};
use crate::session::{Report, RunOptions, Session};
use crate::staging::{PageKind, PageRef, Staging, read_page};
use state::{Mode, RunState, StateStore, load, state_path};

pub use crate::bookkeeping::checkpoint::{Checkpoints, StoredCursor};

/// How an extraction runs.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Scope names to extract; empty means every configured scope.
    pub scopes: Vec<String>,
    /// Backfill even where a checkpoint exists.
    pub full: bool,
    /// Receives a [`PageRef`] for every staged page (End pages last per scope).
    pub sink: Option<Sender<PageRef>>,
    /// Raised to stop between requests (Ctrl-C).
    pub stop: Arc<AtomicBool>,
    pub display: Display,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            scopes: Vec::new(),
            full: false,
            sink: None,
            stop: Arc::new(AtomicBool::new(false)),
            display: Display::Auto,
        }
    }
}

/// An interrupted run that this invocation resumed and finished before it
/// caught up (see [`ScopeReport::caught_up_after`]).
#[derive(Debug, Clone)]
pub struct FinishedInterrupted {
    pub run_id: String,
    pub mode: Mode,
    /// When the interrupted run started: the checkpoint its End page proposes.
    pub started_at: DateTime<Utc>,
    pub pages: u64,
    pub issues: u64,
}

/// What one scope's run did.
#[derive(Debug, Clone)]
pub struct ScopeReport {
    pub scope: String,
    pub run_id: String,
    pub mode: Mode,
    /// True when this invocation continued a run interrupted earlier (then
    /// caught up when that run started before it: see `caught_up_after`).
    pub resumed: bool,
    /// Set when this invocation first finished a run interrupted earlier
    /// (which started before this invocation did, so its pages may hold
    /// versions older than this invocation's start), then ran the
    /// incremental catch-up run this report describes, from that run's
    /// start minus the safety window. Invariant 1 then holds for this
    /// invocation's own start instant.
    pub caught_up_after: Option<FinishedInterrupted>,
    /// Where the run started reading (backfill start or cursor − window).
    pub from: DateTime<Utc>,
    /// The checkpoint proposed in the End page.
    pub checkpoint: DateTime<Utc>,
    /// Search pages staged by the whole run (including before a resume).
    pub pages: u64,
    pub issues: u64,
    pub slices: usize,
    /// Query restarts (shifted results, full search windows, crowded minutes).
    pub restarts: u64,
    /// Issues fetched alone because the search cut their changelog short.
    pub refetched: u64,
    /// The run is a backfill because the scope's definition changed.
    pub scope_changed: bool,
}

/// What an extraction did.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    pub user: String,
    pub time_zone: String,
    pub server_version: String,
    pub scopes: Vec<ScopeReport>,
    /// The instant this extraction started (before its first search).
    pub started_at: Option<DateTime<Utc>>,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    pub body_bytes: u64,
}

/// Where a scope's next extract run starts. The one place this is decided:
/// the extractor and `pipeline plan` both call [`start_of`].
#[derive(Debug, Clone)]
pub enum Start {
    /// Resume this unfinished run (same query; not an incremental run under `--full`).
    Resume(RunState),
    /// Start a new run.
    New {
        mode: Mode,
        /// The lower bound of the run (backfill start, or cursor − safety window).
        from: DateTime<Utc>,
        /// The cursor it continues from: the newer of the database checkpoint
        /// and a staged, not yet loaded End page's (`None`: backfill).
        cursor: Option<DateTime<Utc>>,
        /// The cursor came from a staged End page, not from PostgreSQL.
        cursor_staged: bool,
        /// An unfinished run that is not resumed (its query changed, or `--full`).
        abandoned: Option<RunState>,
        /// The stored cursor belongs to another definition of the scope
        /// (its fingerprint differs): the scope is backfilled.
        scope_changed: bool,
    },
}

/// The fingerprint of a scope's definition: its effective query (project,
/// issue types, extra JQL) and its field selection, hashed (xxh3, 16 hex
/// digits). A cursor stored under another fingerprint is not continued: the
/// scope is backfilled, so every issue of the new definition is loaded.
pub fn fingerprint(sc: &crate::config::Scope) -> Result<String> {
    let base = scope_clause(sc)?;
    let mut fields: Vec<&str> = sc.fields.iter().map(String::as_str).collect();
    fields.sort_unstable();
    fields.dedup();
    let text = format!("jql={base}\nfields={}", fields.join(","));
    Ok(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(text.as_bytes())
    ))
}

/// Decides how scope `sc` starts (see [`Start`]): resume an unfinished run
/// with the same query, else incremental from the checkpoint, else backfill.
pub(crate) fn start_of(
    cfg: &Config,
    staging: &Staging,
    sc: &crate::config::Scope,
    full: bool,
    checkpoints: &Checkpoints,
) -> Result<Start> {
    let base = scope_clause(sc)?;
    let fp = fingerprint(sc)?;
    let existing = load(&state_path(&staging.state_dir(), &sc.name))?;
    let mut abandoned = None;
    if let Some(s) = existing.filter(|s| !s.finished) {
        let same = s.base_jql == base && s.fingerprint.as_ref().is_none_or(|f| *f == fp);
        if same && !(full && s.mode == Mode::Incremental) {
            return Ok(Start::Resume(s));
        }
        abandoned = Some(s);
    }
    // A cursor taken under another definition of the scope does not count.
    let other = |f: Option<&String>| f.is_some_and(|f| *f != fp);
    let stored = checkpoints.get(&sc.name);
    let scope_changed = !full && stored.is_some_and(|c| other(c.fingerprint.as_ref()));
    let (db, staged) = if full || scope_changed {
        (None, None)
    } else {
        let staged = staged_checkpoint(staging, &sc.name)?
            .filter(|(_, f)| !other(f.as_ref()))
            .map(|(at, _)| at);
        (stored.map(|c| c.at), staged)
    };
    let cursor = db.max(staged);
    let (mode, from) = match cursor {
        None => (Mode::Backfill, cfg.sync.backfill_start),
        Some(c) => (
            Mode::Incremental,
            c - chrono::Duration::from_std(cfg.sync.safety_window).unwrap_or_default(),
        ),
    };
    Ok(Start::New {
        mode,
        from,
        cursor,
        cursor_staged: cursor.is_some() && staged == cursor && db != cursor,
        abandoned,
        scope_changed,
    })
}

/// The newest checkpoint proposed by a finished run whose End page is still
/// waiting in `pages/` (staged, not yet loaded), with its fingerprint:
/// those pages will be loaded before anything this run stages, so the next
/// run may start from there — unless a page of that run was quarantined (a
/// corrupt file): that run can never be complete, and its issues must be
/// fetched again.
pub(crate) fn staged_checkpoint(
    staging: &Staging,
    scope: &str,
) -> Result<Option<(DateTime<Utc>, Option<String>)>> {
    let mut best: Option<(DateTime<Utc>, Option<String>)> = None;
    for name in staging.list_pages(scope)? {
        if !name.ends_with("-zend") {
            continue;
        }
        let (meta, _) = read_page(&staging.page_path(scope, &name))?;
        if let (PageKind::End, Some(at)) = (meta.kind, meta.checkpoint)
            && best.as_ref().is_none_or(|(b, _)| at > *b)
            && !staging.run_has_quarantined_page(scope, &meta.run_id)?
        {
            best = Some((at, meta.fingerprint));
        }
    }
    Ok(best)
}

/// The async core. `checkpoints` holds the loaded cursor of each scope that
/// has one (from PostgreSQL, see [`read_checkpoints`]); a scope without one
/// is backfilled.
pub async fn extract(
    cfg: &Config,
    token: &Secret,
    checkpoints: &Checkpoints,
    opts: ExtractOptions,
) -> Result<ExtractReport> {
    let selected = cfg.select_scopes(&opts.scopes)?;
    let client = JiraClient::new(&cfg.jira, token, opts.stop.clone())?;
    let jira = connect(&client).await?;
    let known = crate::insight::check::check_scopes(&client, &selected).await?;
    let dimensions = Arc::new(scope::instance_dimensions(&client, &known).await?);
    let staging = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
    let new_run_id = crate::staging::run_id(jira.started);
    let setup = Setup {
        cfg,
        staging: &staging,
        client: &client,
        jira: &jira,
        new_run_id: &new_run_id,
        opts: &opts,
        checkpoints,
        dimensions: &dimensions,
    };
    let mut ctxs = Vec::new();
    let mut resumed_flags = Vec::new();
    for sc in &selected {
        let (ctx, resumed) = scope_context(&setup, sc).await?;
        resumed_flags.push(resumed);
        ctxs.push(ctx);
    }
    stage_catalogues(
        &known.field_body,
        &staging,
        &ctxs,
        jira.started,
        &new_run_id,
    )
    .await?;
    let reporter = Reporter::for_display(
        ctxs.iter()
            .map(|c| (c.scope.clone(), c.progress.clone()))
            .collect(),
        opts.display,
    );
    let catch_up = CatchUp {
        started: jira.started,
        run_id: new_run_id.clone(),
        window: chrono::Duration::from_std(cfg.sync.safety_window).unwrap_or_default(),
        time_zone: jira.me.tz.to_string(),
    };
    let results = futures::future::join_all(
        ctxs.iter()
            .map(|c| run_scope_caught_up(c.clone(), &catch_up)),
    )
    .await;
    drop(reporter);
    let mut report = ExtractReport {
        user: jira.me.name.clone(),
        time_zone: jira.me.tz.to_string(),
        server_version: jira.info.version.clone(),
        started_at: Some(jira.started),
        ..Default::default()
    };
    let mut first_err = None;
    for ((r, c), resumed) in results.into_iter().zip(&ctxs).zip(resumed_flags) {
        match r {
            Ok((st, caught_up_after)) => {
                report
                    .scopes
                    .push(scope_report(c, &st, resumed, caught_up_after))
            }
            Err(e) => {
                tracing::error!(scope = %c.scope, "{}", e.one_line());
                first_err.get_or_insert(e);
            }
        }
    }
    let s = client.stats();
    report.requests = s.requests.load(Ordering::Relaxed);
    report.retries = s.retries.load(Ordering::Relaxed);
    report.throttled = s.throttled.load(Ordering::Relaxed);
    report.body_bytes = s.body_bytes.load(Ordering::Relaxed);
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Who we are in Jira and when this run starts.
struct Connected {
    me: crate::jira::api::Myself,
    info: crate::jira::api::ServerInfo,
    /// The run's start instant: the earlier of our clock and Jira's
    /// `serverTime`, on the millisecond, taken before the first search.
    started: DateTime<Utc>,
}

/// Connect phase: `/myself` (the user's time zone), `/serverInfo` (Jira's
/// clock), and the run's start instant.
async fn connect(client: &JiraClient) -> Result<Connected> {
    let me = client.myself().await?;
    let info = client.server_info().await?;
    let now = Utc::now();
    let started = match info.server_time {
        Some(st) if st < now => {
            if now - st > chrono::Duration::seconds(60) {
                tracing::warn!(
                    skew_secs = (now - st).num_seconds(),
                    "Jira's clock is behind this machine's; using Jira's time for the checkpoint"
                );
            }
            st
        }
        _ => now,
    };
    let started = DateTime::from_timestamp_millis(started.timestamp_millis()).unwrap_or(started);
    tracing::info!(
        user = %me.name,
        time_zone = %me.tz,
        server = %info.version,
        deployment = %info.deployment_type,
        "connected to Jira"
    );
    Ok(Connected { me, info, started })
}

/// What every scope of one extraction shares while its context is built.
struct Setup<'a> {
    cfg: &'a Config,
    staging: &'a Staging,
    client: &'a JiraClient,
    jira: &'a Connected,
    new_run_id: &'a str,
    opts: &'a ExtractOptions,
    checkpoints: &'a Checkpoints,
    /// The instance's dimension lists every End page carries.
    dimensions: &'a Arc<Vec<(&'static str, bytes::Bytes)>>,
}

/// Scope phase: how the scope's run starts ([`start_of`]), its resume
/// state recorded before the first search (so a crash during planning
/// resumes the same run, same start instant), and its context. True when
/// the run is resumed.
async fn scope_context(
    setup: &Setup<'_>,
    sc: &crate::config::Scope,
) -> Result<(Arc<scope::ScopeCtx>, bool)> {
    let Setup {
        cfg,
        staging,
        client,
        jira,
        new_run_id,
        opts,
        checkpoints,
        dimensions,
    } = *setup;
    let base = scope_clause(sc)?;
    let start = start_of(cfg, staging, sc, opts.full, checkpoints)?;
    let resumed = matches!(start, Start::Resume(_));
    let changed = matches!(
        start,
        Start::New {
            scope_changed: true,
            ..
        }
    );
    let st = match start {
        Start::Resume(s) => {
            tracing::info!(scope = %sc.name, run = %s.run_id, mode = s.mode.as_str(), "resuming the interrupted run");
            s
        }
        Start::New {
            mode,
            from,
            abandoned,
            scope_changed,
            ..
        } => {
            if scope_changed {
                tracing::warn!(
                    scope = %sc.name,
                    "the scope's definition (project, issue types, jql or fields) changed since its checkpoint was taken; backfilling it instead of an incremental run"
                );
            }
            if let Some(s) = abandoned {
                tracing::warn!(
                    scope = %sc.name,
                    run = %s.run_id,
                    "not resuming the interrupted run (the scope's query changed or --full was given); starting a new run"
                );
            }
            RunState {
                format: 1,
                scope: sc.name.clone(),
                run_id: new_run_id.to_string(),
                mode,
                started_at: jira.started,
                from,
                base_jql: base.clone(),
                fingerprint: Some(fingerprint(sc)?),
                time_zone: jira.me.tz.to_string(),
                planned: false,
                slices: Vec::new(),
                finished: false,
            }
        }
    };
    let store = Arc::new(StateStore::new(
        state_path(&staging.state_dir(), &sc.name),
        st,
    ));
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.update(|_| ()))
        .await
        .map_err(|e| Error::Other(e.to_string()))??;
    let ctx = Arc::new(scope::ScopeCtx {
        client: client.clone(),
        staging: staging.clone(),
        scope: sc.name.clone(),
        project: sc.project.clone(),
        scope_changed: changed,
        dimensions: dimensions.clone(),
        base,
        tz: jira.me.tz,
        page_size: cfg.jira.page_size,
        concurrency: cfg.jira.concurrency,
        domain_start: cfg.sync.backfill_start,
        store,
        sink: opts.sink.clone(),
        progress: Arc::new(StageCounters::default()),
    });
    Ok((ctx, resumed))
}

/// Catalogue phase: stages the field catalogue of every run that lacks one,
/// including the catch-up run that follows a resumed run started before
/// this one (`new_run_id`).
async fn stage_catalogues(
    body: &bytes::Bytes,
    staging: &Staging,
    ctxs: &[Arc<scope::ScopeCtx>],
    started: DateTime<Utc>,
    new_run_id: &str,
) -> Result<()> {
    let mut need: Vec<String> = ctxs
        .iter()
        .map(|c| c.store.snapshot())
        .flat_map(|st| {
            let catch_up = (st.started_at < started).then(|| new_run_id.to_string());
            std::iter::once(st.run_id).chain(catch_up)
        })
        .filter(|r| !staging.catalog_path(r).is_file())
        .collect();
    need.sort();
    need.dedup();
    if need.is_empty() {
        return Ok(());
    }
    for r in need {
        let st = staging.clone();
        let body = body.clone();
        tokio::task::spawn_blocking(move || st.write_compressed(&st.catalog_path(&r), &body))
            .await
            .map_err(|e| Error::Other(e.to_string()))??;
    }
    Ok(())
}

/// What one scope's finished run reports.
fn scope_report(
    c: &scope::ScopeCtx,
    st: &RunState,
    resumed: bool,
    caught_up_after: Option<FinishedInterrupted>,
) -> ScopeReport {
    ScopeReport {
        scope: c.scope.clone(),
        refetched: c.progress.refetched.load(Ordering::Relaxed),
        scope_changed: c.scope_changed,
        run_id: st.run_id.clone(),
        mode: st.mode,
        resumed,
        caught_up_after,
        from: st.from,
        checkpoint: st.started_at,
        pages: st.pages(),
        issues: st.slices.iter().map(|s| s.issues).sum(),
        slices: st.slices.len(),
        restarts: st.slices.iter().map(|s| u64::from(s.restarts)).sum(),
    }
}

/// What a catch-up run after a resumed run starts with.
struct CatchUp {
    /// This invocation's start instant (the catch-up run's checkpoint).
    started: DateTime<Utc>,
    run_id: String,
    window: chrono::Duration,
    time_zone: String,
}

/// Runs the scope's run to its End page; when that run was interrupted
/// earlier and started before this invocation did, goes on at once with an
/// incremental run from its start minus the safety window, started at this
/// invocation's start, so what this invocation reports complete is current
/// as of its own start (invariant 1), not as of the interrupted run's.
async fn run_scope_caught_up(
    ctx: Arc<scope::ScopeCtx>,
    catch_up: &CatchUp,
) -> Result<(RunState, Option<FinishedInterrupted>)> {
    let first = run_scope(ctx.clone()).await?;
    if first.started_at >= catch_up.started {
        return Ok((first, None));
    }
    let from = first.started_at - catch_up.window;
    tracing::info!(
        scope = %ctx.scope,
        interrupted_run = %first.run_id,
        interrupted_at = %first.started_at,
        from = %from,
        "finished the interrupted run; catching up with an incremental run from its start"
    );
    let st = RunState {
        format: 1,
        scope: ctx.scope.clone(),
        run_id: catch_up.run_id.clone(),
        mode: Mode::Incremental,
        started_at: catch_up.started,
        from,
        base_jql: first.base_jql.clone(),
        fingerprint: first.fingerprint.clone(),
        time_zone: catch_up.time_zone.clone(),
        planned: false,
        slices: Vec::new(),
        finished: false,
    };
    let store = Arc::new(StateStore::new(ctx.store.path.clone(), st));
    let s2 = store.clone();
    tokio::task::spawn_blocking(move || s2.update(|_| ()))
        .await
        .map_err(|e| Error::Other(e.to_string()))??;
    let next = Arc::new(scope::ScopeCtx {
        client: ctx.client.clone(),
        staging: ctx.staging.clone(),
        scope: ctx.scope.clone(),
        project: ctx.project.clone(),
        scope_changed: ctx.scope_changed,
        dimensions: ctx.dimensions.clone(),
        base: ctx.base.clone(),
        tz: ctx.tz,
        page_size: ctx.page_size,
        concurrency: ctx.concurrency,
        domain_start: ctx.domain_start,
        store,
        sink: ctx.sink.clone(),
        progress: ctx.progress.clone(),
    });
    let second = run_scope(next).await?;
    // `second` started at this invocation's start, so one catch-up is
    // enough; if it is interrupted, the next invocation resumes it and
    // catches up again from its start.
    Ok((
        second,
        Some(FinishedInterrupted {
            run_id: first.run_id.clone(),
            mode: first.mode,
            started_at: first.started_at,
            pages: first.pages(),
            issues: first.slices.iter().map(|s| s.issues).sum(),
        }),
    ))
}

async fn run_scope(ctx: Arc<scope::ScopeCtx>) -> Result<RunState> {
    if !ctx.store.snapshot().planned {
        scope::plan_run(&ctx).await?;
    } else {
        let st = ctx.store.snapshot();
        ctx.progress.expected_issues.store(
            st.slices.iter().map(|s| s.estimate).sum(),
            Ordering::Relaxed,
        );
    }
    scope::run_slices(ctx.clone()).await?;
    let st = scope::finish_run(&ctx).await?;
    tracing::info!(
        scope = %ctx.scope,
        run = %st.run_id,
        mode = st.mode.as_str(),
        pages = st.pages(),
        checkpoint = %st.started_at,
        "extract run complete"
    );
    Ok(st)
}

/// Runs [`extract`] on the session's runtime (blocking). Must not be called
/// from inside a tokio runtime.
pub fn extract_blocking(
    session: &Session,
    token: &Secret,
    checkpoints: &Checkpoints,
    opts: ExtractOptions,
) -> Result<ExtractReport> {
    session.block_on(extract(session.config(), token, checkpoints, opts))?
}

/// The loaded checkpoints of `scopes` from the warehouse's `checkpoint` table.
pub(crate) fn read_checkpoints(
    client: &mut postgres::Client,
    schema: &str,
    scopes: &[String],
) -> Result<Checkpoints> {
    crate::bookkeeping::checkpoint::read_all(client, schema, scopes)
}

/// `pipeline run --stage extract`: takes the schema's lock, reads the
/// checkpoints, extracts the selected scopes (stopping between requests when
/// the session's stop flag is raised).
pub fn run(session: &Session, opts: &RunOptions) -> Result<ExtractReport> {
    let token = session.jira_token()?;
    let names = session.scope_names(&opts.scopes)?;
    let mut db = session.lock_checked()?;
    let checkpoints = read_checkpoints(&mut db, &session.config().database.schema, &names)?;
    let opts = ExtractOptions {
        scopes: names,
        full: opts.full,
        sink: None,
        stop: session.stop().flag(),
        display: Display::Auto,
    };
    let report = extract_blocking(session, &token, &checkpoints, opts);
    drop(db);
    report
}

impl std::fmt::Display for ExtractReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&summary(self))
    }
}

impl Report for ExtractReport {
    /// Extraction quarantines nothing: a report means success.
    fn exit_code(&self) -> ExitCode {
        ExitCode::Success
    }
}

/// The summary `run --stage extract` prints.
pub fn summary(r: &ExtractReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "extracted as {} (time zone {}, Jira {}): {} requests, {} retries, {} throttled, {:.1} MiB",
        r.user,
        r.time_zone,
        r.server_version,
        r.requests,
        r.retries,
        r.throttled,
        r.body_bytes as f64 / 1048576.0
    );
    for sc in &r.scopes {
        if let Some(line) = catch_up_line(sc) {
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(
            s,
            "scope {}: {} run {}{} from {} — {} pages, {} issues in {} slices ({} restarts); proposed checkpoint {}",
            sc.scope,
            sc.mode.as_str(),
            sc.run_id,
            if sc.caught_up_after.is_some() {
                " (catch-up)"
            } else if sc.resumed {
                " (resumed)"
            } else {
                ""
            },
            sc.from.to_rfc3339(),
            sc.pages,
            sc.issues,
            sc.slices,
            sc.restarts,
            sc.checkpoint.to_rfc3339()
        );
    }
    s
}

/// "scope S: finished the run interrupted at …, then caught up from …", for a
/// scope whose invocation finished an interrupted run before catching up.
pub(crate) fn catch_up_line(sc: &ScopeReport) -> Option<String> {
    let f = sc.caught_up_after.as_ref()?;
    Some(format!(
        "scope {}: finished the {} run {} interrupted at {} ({} pages, {} issues), then caught up from {}",
        sc.scope,
        f.mode.as_str(),
        f.run_id,
        f.started_at.to_rfc3339(),
        f.pages,
        f.issues,
        sc.from.to_rfc3339()
    ))
}
