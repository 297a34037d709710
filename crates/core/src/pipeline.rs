//! `pipeline run --stage all` (and `sync`, `backfill`): the three stages at
//! once, connected by bounded crossbeam channels so memory stays flat and the
//! slowest stage sets the pace.
//!
//! ```text
//! main thread:      extract (own tokio runtime) ──PageRef──┐   (pages are staged files)
//! transform thread: rayon pool, pages in order  ◄──────────┘ ──Batch──┐  (batches in memory)
//! load thread:      sync postgres Loader        ◄────────────────────┘
//! ```
//!
//! Pages always go through the staging area, so a crash loses nothing: a
//! rerun first transforms the pages left in `pages/` and loads the batches
//! left in `batches/` (by an earlier `--stage transform`), then extracts.
//! Ctrl-C stops fetching, lets the load unit in flight commit (or roll back),
//! and exits; the rerun completes the job.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use rayon::prelude::*;
use serde::Serialize;

use crate::batch::{self, Batch};
use crate::error::{Error, ExitCode, Result};
use crate::extract::{self, ExtractOptions, ExtractReport};
use crate::load::{Loader, UnitAssembler, UnitReport};
use crate::metrics;
use crate::progress::{Reporter, RunProgress};
use crate::session::{Report, Session};
use crate::shutdown::Stop;
use crate::staging::{PageRef, Staging};
use crate::transform::worker::{PageWorker, Prepared};

pub use crate::session::RunOptions;

/// Per-stage figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageFigures {
    pub pages: u64,
    pub issues: u64,
    pub rows: u64,
    pub bytes: u64,
    pub busy_secs: f64,
}

/// What a run did (also stored as JSON in `run_history.summary`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunSummary {
    pub scopes: Vec<String>,
    pub wall_secs: f64,
    pub extract: StageFigures,
    pub transform: StageFigures,
    pub load: StageFigures,
    pub requests: u64,
    pub retries: u64,
    pub throttled: u64,
    /// Rows written per table (inserted + updated + deleted).
    pub rows_by_table: Vec<(String, u64)>,
    pub pages_loaded: u64,
    pub pages_already_loaded: u64,
    pub pages_quarantined: u64,
    pub issues_quarantined: u64,
    pub issues_rejected_older: u64,
    /// Incoming issues stored already with identical rows: skipped.
    pub issues_unchanged: u64,
    pub checkpoints: Vec<(String, String)>,
    /// Scopes whose run finished an interrupted run and then caught up
    /// ("scope S: finished the … run … interrupted at …, then caught up from …").
    pub catch_ups: Vec<String>,
    /// Issues fetched alone because the search cut their changelog short.
    pub changelogs_refetched: u64,
    /// Changelog field names that map to no field or to several (per issue).
    pub unmapped_field_names: u64,
    /// Issues whose changelog does not end in their current status.
    pub status_history_mismatches: u64,
    /// Scopes backfilled because their definition changed.
    pub scopes_changed: Vec<String>,
    /// The automatic census of the scopes that were due (see
    /// `sync.reconcile_every_hours`); a census that did not complete is a
    /// warning here, not a failed run.
    pub census: crate::census::CensusReport,
    pub interrupted: bool,
    pub error: Option<String>,
}

impl RunSummary {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from_quarantined(self.pages_quarantined + self.issues_quarantined)
    }

    /// The final summary printed by `run`.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "run finished in {:.1}s: {} issues extracted, {} transformed, {} loaded pages ({} already loaded)",
            self.wall_secs,
            self.extract.issues,
            self.transform.issues,
            self.pages_loaded,
            self.pages_already_loaded
        );
        for (name, f) in [
            ("extract", &self.extract),
            ("transform", &self.transform),
            ("load", &self.load),
        ] {
            let _ = writeln!(
                s,
                "  {name:<9} {:>7} pages {:>9} issues {:>10} rows {:>10} bytes, busy {:.1}s",
                f.pages, f.issues, f.rows, f.bytes, f.busy_secs
            );
        }
        let _ = writeln!(
            s,
            "  requests {} (retries {}, throttled {})",
            self.requests, self.retries, self.throttled
        );
        for (t, n) in &self.rows_by_table {
            let _ = writeln!(s, "  {t:<18} {n} rows written");
        }
        for line in &self.catch_ups {
            let _ = writeln!(s, "  {line}");
        }
        for scope in &self.scopes_changed {
            let _ = writeln!(
                s,
                "  scope {scope}: its definition changed since its checkpoint, so it was backfilled"
            );
        }
        if self.changelogs_refetched > 0 {
            let _ = writeln!(
                s,
                "  {} issues fetched alone because the search cut their changelog short",
                self.changelogs_refetched
            );
        }
        if self.unmapped_field_names > 0 {
            let _ = writeln!(
                s,
                "  {} changelog field names map to no field or to several: their history is kept under field_id '?<name>'",
                self.unmapped_field_names
            );
        }
        if self.status_history_mismatches > 0 {
            let _ = writeln!(
                s,
                "  {} issues have a changelog that does not end in their current status (their time in status is as the changelog says; see the log)",
                self.status_history_mismatches
            );
        }
        for c in &self.census.scopes {
            let _ = writeln!(s, "  {}", crate::census::line(c));
        }
        for x in &self.census.failed {
            let _ = writeln!(
                s,
                "  warning: census of scope {} not complete, nothing marked: {}",
                x.scope, x.message
            );
        }
        for (scope, c) in &self.checkpoints {
            let _ = writeln!(s, "  checkpoint of scope {scope}: {c}");
        }
        if self.issues_rejected_older > 0 {
            let _ = writeln!(
                s,
                "  {} issue versions older than the warehouse's were ignored",
                self.issues_rejected_older
            );
        }
        if self.issues_unchanged > 0 {
            let _ = writeln!(
                s,
                "  {} issues arrived exactly as stored and were skipped",
                self.issues_unchanged
            );
        }
        if self.pages_quarantined + self.issues_quarantined > 0 {
            let _ = writeln!(
                s,
                "  quarantined: {} pages, {} issues (see `pipeline status`)",
                self.pages_quarantined, self.issues_quarantined
            );
        }
        if self.interrupted {
            let _ = writeln!(s, "  interrupted: rerun to complete the job");
        }
        s
    }
}

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl Report for RunSummary {
    fn exit_code(&self) -> ExitCode {
        RunSummary::exit_code(self)
    }
}

/// Runs extract, transform and load together (`run`, `sync`, `backfill`).
/// The loader's connection takes the schema's advisory lock (exit 5 when
/// another run holds it) for the whole run; extract runs on this thread, on
/// the session's runtime, transform and load on threads of their own.
pub fn run(session: &Session, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let names = session.scope_names(&opts.scopes)?;
    let token = session.jira_token()?;
    let loader = Loader::locked(session, opts.load.clone())?;
    let mut admin = session.connect()?;
    let schema = session.config().database.schema.clone();
    let run_id = crate::bookkeeping::run_history::start(&mut admin, &schema, &opts.command)?;
    let checkpoints = extract::read_checkpoints(&mut admin, &schema, &names)?;
    metrics::set(
        "jira_pipeline_run_start_timestamp_seconds",
        &[],
        chrono::Utc::now().timestamp() as f64,
    );
    let progress = Arc::new(RunProgress::default());
    let reporter = Reporter::start(progress.lines(), opts.quiet, Duration::from_secs(5));
    let metrics_writer = opts
        .metrics_file
        .clone()
        .map(|p| MetricsWriter::start(p, Duration::from_secs(5)));

    let (page_tx, page_rx) = bounded::<PageRef>(32);
    let (batch_tx, batch_rx) = bounded::<Batch>(8);
    let leftovers = leftover_pages(session.staging(), &names)?;
    let transform = spawn_transform(session, opts, leftovers, page_rx, batch_tx, &progress)?;
    let load = spawn_load(session, loader, &names, batch_rx, &progress)?;

    // Extract on this thread, on the session's runtime.
    let ex_started = Instant::now();
    let ex = session
        .block_on(extract::extract(
            session.config(),
            &token,
            &checkpoints,
            ExtractOptions {
                scopes: names.clone(),
                full: opts.full,
                sink: Some(page_tx),
                stop: session.stop().flag(),
                display: crate::progress::Display::Off,
            },
        ))
        .and_then(|r| r);
    progress.extract.add_busy(ex_started.elapsed());
    if ex.is_err() {
        // Nothing more will be fetched; the stages still finish what is staged.
        tracing::warn!("extract failed; finishing what was staged before it did");
    }
    let tr = transform
        .join()
        .map_err(|_| Error::Other("the transform thread panicked".into()))?;
    let ld = load
        .join()
        .map_err(|_| Error::Other("the load thread panicked".into()))?;
    drop(reporter);

    let mut summary = RunSummary {
        scopes: names.clone(),
        wall_secs: started.elapsed().as_secs_f64(),
        interrupted: session.stop().requested(),
        ..Default::default()
    };
    absorb_stages(&mut summary, &progress, &ex, &tr, &ld);
    reconnect_if_lost(session, &mut admin)?;
    record_checkpoints(&mut summary, &mut admin, &schema, &names)?;
    let first_err = cause(ld.err(), tr.err(), ex.err(), session.stop().requested());
    if first_err.is_none() && !summary.interrupted {
        summary.census = auto_census(session, &names);
        reconnect_if_lost(session, &mut admin)?;
    }
    record_metrics(&summary);
    finish_run(
        &mut summary,
        &mut admin,
        &schema,
        run_id,
        first_err,
        metrics_writer,
    )
}

/// Replaces `admin` with a new connection when it was lost while the stages
/// ran (a server restart, a terminated backend): the loader reconnects and
/// finishes on its own, and the run's outcome must still be recorded.
fn reconnect_if_lost(session: &Session, admin: &mut postgres::Client) -> Result<()> {
    if admin.is_valid(Duration::from_secs(10)).is_err() {
        tracing::warn!("the bookkeeping connection to PostgreSQL was lost; reconnecting");
        *admin = session.connect()?;
    }
    Ok(())
}

/// The census of the scopes that are due, after a run that completed; a
/// census that cannot run at all is one warning per scope.
fn auto_census(session: &Session, names: &[String]) -> crate::census::CensusReport {
    match crate::census::run_due(session, names) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("census skipped: {}", e.one_line());
            crate::census::CensusReport {
                scopes: Vec::new(),
                failed: names
                    .iter()
                    .map(|n| crate::census::CensusFailure {
                        scope: n.clone(),
                        message: e.one_line(),
                        exit: e.exit_code(),
                    })
                    .collect(),
            }
        }
    }
}

/// The error a run reports, of its three stages' errors. The most
/// downstream failure is the cause: a failed loader stops transform, which
/// stops extract ("stopped taking pages", [`Error::Downstream`]); and when
/// the run was stopped, a stage that found the next one gone was stopped
/// too, not failed.
fn cause(
    load: Option<Error>,
    transform: Option<Error>,
    extract: Option<Error>,
    stopped: bool,
) -> Option<Error> {
    let not_a_cause = |e: &Error| stopped && matches!(e, Error::Downstream(_));
    load.or(transform.filter(|e| !not_a_cause(e)))
        .or(extract.filter(|e| !not_a_cause(e)))
}

/// Pages an interrupted run left in `pages/` without a batch, oldest first.
fn leftover_pages(st: &Staging, names: &[String]) -> Result<Vec<PageRef>> {
    let mut leftovers = Vec::new();
    for s in names {
        let done: std::collections::HashSet<String> = st.list_batches(s)?.into_iter().collect();
        for p in st.list_pages(s)? {
            if !done.contains(&p) {
                leftovers.push(PageRef {
                    scope: s.clone(),
                    page: p,
                });
            }
        }
    }
    Ok(leftovers)
}

/// The transform thread: leftovers first, then the pages extract sends.
fn spawn_transform(
    session: &Session,
    opts: &RunOptions,
    leftovers: Vec<PageRef>,
    pages: Receiver<PageRef>,
    batches: Sender<Batch>,
    progress: &Arc<RunProgress>,
) -> Result<std::thread::JoinHandle<Result<TransformCounts>>> {
    let cfg = session.config().clone();
    let st = session.staging().clone();
    let progress = progress.clone();
    let stop = session.stop().clone();
    let threads = opts.threads;
    std::thread::Builder::new()
        .name("transform".into())
        .spawn(move || {
            let worker = PageWorker::new(&cfg, &st);
            transform_loop(
                &worker, leftovers, pages, batches, &progress, &stop, threads,
            )
        })
        .map_err(|e| Error::Other(format!("cannot start the transform thread: {e}")))
}

/// The load thread: batches left on disk first, then what transform sends.
fn spawn_load(
    session: &Session,
    mut loader: Loader,
    names: &[String],
    batches: Receiver<Batch>,
    progress: &Arc<RunProgress>,
) -> Result<std::thread::JoinHandle<Result<UnitReport>>> {
    let st = session.staging().clone();
    let progress = progress.clone();
    let stop = session.stop().clone();
    let names = names.to_vec();
    std::thread::Builder::new()
        .name("load".into())
        .spawn(move || {
            let loaded = load_loop(&mut loader, &st, &names, batches, &progress, &stop);
            // Indexes a bulk first load deferred are rebuilt even after
            // a failure or a stop.
            let finished = loader.finish();
            let total = loaded?;
            finished?;
            Ok(total)
        })
        .map_err(|e| Error::Other(format!("cannot start the load thread: {e}")))
}

/// The checkpoints now stored (whatever moved them), into the summary and
/// the lag metric.
fn record_checkpoints(
    summary: &mut RunSummary,
    admin: &mut postgres::Client,
    schema: &str,
    names: &[String],
) -> Result<()> {
    let now_cp = extract::read_checkpoints(admin, schema, names)?;
    let now = chrono::Utc::now();
    for n in names {
        if let Some(c) = now_cp.get(n) {
            summary.checkpoints.push((n.clone(), c.at.to_rfc3339()));
            metrics::set(
                "jira_pipeline_checkpoint_lag_seconds",
                &[("scope", n)],
                (now - c.at).num_milliseconds() as f64 / 1000.0,
            );
        }
    }
    Ok(())
}

/// Records the run's outcome in `run_history`, writes the metrics file last
/// time, and turns a failure or a stop into the command's error.
fn finish_run(
    summary: &mut RunSummary,
    admin: &mut postgres::Client,
    schema: &str,
    run_id: i64,
    first_err: Option<Error>,
    metrics_writer: Option<MetricsWriter>,
) -> Result<RunSummary> {
    if let Some(e) = &first_err {
        summary.error = Some(e.one_line());
    }
    let outcome = match (&first_err, summary.interrupted, summary.exit_code()) {
        (Some(_), _, _) => "failed",
        (None, true, _) => "interrupted",
        (None, false, ExitCode::Quarantined) => "quarantined",
        _ => "ok",
    };
    let json = serde_json::to_value(&*summary).unwrap_or(serde_json::Value::Null);
    crate::bookkeeping::run_history::finish(admin, schema, run_id, outcome, &json)?;
    if let Some(w) = metrics_writer {
        w.finish()?;
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if summary.interrupted {
        return Err(Error::Interrupted(
            "the run was stopped; what was loaded is consistent, rerun to complete it".into(),
        ));
    }
    Ok(std::mem::take(summary))
}

/// The stages' figures and outcomes into the summary.
fn absorb_stages(
    summary: &mut RunSummary,
    progress: &RunProgress,
    ex: &Result<ExtractReport>,
    tr: &Result<TransformCounts>,
    ld: &Result<UnitReport>,
) {
    fill_stage(&mut summary.extract, &progress.extract);
    fill_stage(&mut summary.transform, &progress.transform);
    fill_stage(&mut summary.load, &progress.load);
    if let Ok(r) = ex {
        absorb_extract(summary, r);
    }
    if let Ok(t) = tr {
        summary.pages_quarantined = t.pages_quarantined;
    }
    if let Ok(u) = ld {
        absorb_load(summary, u);
    }
}

fn fill_stage(f: &mut StageFigures, c: &crate::progress::StageCounters) {
    f.pages = c.pages.load(Ordering::Relaxed);
    f.issues = c.issues.load(Ordering::Relaxed);
    f.rows = c.rows.load(Ordering::Relaxed);
    f.bytes = c.bytes.load(Ordering::Relaxed);
    f.busy_secs = c.busy().as_secs_f64();
}

fn absorb_extract(s: &mut RunSummary, r: &ExtractReport) {
    s.requests = r.requests;
    s.retries = r.retries;
    s.throttled = r.throttled;
    s.catch_ups = r.scopes.iter().filter_map(extract::catch_up_line).collect();
    s.changelogs_refetched = r.scopes.iter().map(|x| x.refetched).sum();
    s.scopes_changed = r
        .scopes
        .iter()
        .filter(|x| x.scope_changed)
        .map(|x| x.scope.clone())
        .collect();
}

fn absorb_load(s: &mut RunSummary, u: &UnitReport) {
    s.pages_loaded = u.pages_loaded;
    s.pages_already_loaded = u.pages_skipped;
    s.issues_quarantined = u.quarantined;
    s.issues_rejected_older = u.issues_rejected_older;
    s.issues_unchanged = u.issues_unchanged;
    s.unmapped_field_names = u.notes.unmapped_fields;
    s.status_history_mismatches = u.notes.status_mismatches;
    s.rows_by_table = u
        .tables
        .iter()
        .map(|(t, c)| (t.to_string(), c.total()))
        .filter(|(_, n)| *n > 0)
        .collect();
}

fn record_metrics(s: &RunSummary) {
    for (stage, f) in [
        ("extract", &s.extract),
        ("transform", &s.transform),
        ("load", &s.load),
    ] {
        metrics::add("jira_pipeline_pages", &[("stage", stage)], f.pages as f64);
        metrics::add("jira_pipeline_issues", &[("stage", stage)], f.issues as f64);
        metrics::add(
            "jira_pipeline_stage_busy_seconds",
            &[("stage", stage)],
            f.busy_secs,
        );
    }
    for (t, n) in &s.rows_by_table {
        metrics::add("jira_pipeline_rows", &[("table", t)], *n as f64);
    }
    metrics::add(
        "jira_pipeline_quarantined",
        &[("kind", "page")],
        s.pages_quarantined as f64,
    );
    metrics::add(
        "jira_pipeline_quarantined",
        &[("kind", "issue")],
        s.issues_quarantined as f64,
    );
    metrics::add(
        "jira_pipeline_changelogs_refetched",
        &[],
        s.changelogs_refetched as f64,
    );
    for c in &s.census.scopes {
        for (reason, n) in [("deleted", c.deleted), ("out_of_scope", c.out_of_scope)] {
            metrics::add(
                "jira_pipeline_issues_removed",
                &[("scope", &c.scope), ("reason", reason)],
                n as f64,
            );
        }
    }
}

/// Counts of the transform thread.
#[derive(Debug, Clone, Copy, Default)]
struct TransformCounts {
    pages_quarantined: u64,
}

/// Transforms pages in arrival order: leftovers first, then what extract
/// sends. Groups of pages are read in order, transformed in parallel by the
/// page worker, and sent on in order.
fn transform_loop(
    worker: &PageWorker,
    leftovers: Vec<PageRef>,
    rx: Receiver<PageRef>,
    tx: Sender<Batch>,
    progress: &RunProgress,
    stop: &Stop,
    threads: usize,
) -> Result<TransformCounts> {
    let pool = crate::transform::worker::pool(threads)?;
    let group_max = pool.current_num_threads() * 2;
    let mut counts = TransformCounts::default();
    // A resumed extract run hands on again a page it staged before the
    // crash, which is also among the leftovers: each page is transformed
    // once per run (the second time, it may be loaded and archived already).
    let mut handled: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    let mut leftovers = leftovers.into_iter();
    loop {
        if stop.requested() {
            // Whatever is not transformed stays staged for the rerun.
            while rx.try_recv().is_ok() {}
            return Ok(counts);
        }
        let Some(group) = next_group(&mut leftovers, &rx, group_max) else {
            return Ok(counts);
        };
        let t0 = Instant::now();
        // Read pages and resolve catalogues sequentially (cheap), transform in parallel.
        let mut work = Vec::with_capacity(group.len());
        for p in &group {
            if !handled.insert((p.scope.clone(), p.page.clone())) {
                tracing::debug!(scope = %p.scope, page = %p.page, "page handed on twice (resumed run); transformed once");
                continue;
            }
            match worker.prepare(p)? {
                Prepared::Ready(job) => {
                    progress.extract.add(
                        1,
                        u64::from(job.meta.issue_count),
                        0,
                        job.body.len() as u64,
                    );
                    work.push(job);
                }
                Prepared::Quarantined => counts.pages_quarantined += 1,
                Prepared::Archived => {}
            }
        }
        let results: Vec<Result<Option<Batch>>> = pool.install(|| {
            work.into_par_iter()
                .map(|job| worker.transform(job))
                .collect()
        });
        progress.transform.add_busy(t0.elapsed());
        for r in results {
            let Some(b) = r? else {
                counts.pages_quarantined += 1;
                continue;
            };
            progress.transform.add(
                1,
                b.meta.issues.len() as u64,
                b.total_rows(),
                b.meta.source_bytes,
            );
            if tx.send(b).is_err() {
                // The loader stopped (error or Ctrl-C): pages stay staged.
                return Ok(counts);
            }
        }
    }
}

/// The next group of pages: leftovers first, else one page from extract
/// (waiting for it) plus what else is already waiting; `None` when extract
/// is done and nothing is left.
fn next_group(
    leftovers: &mut std::vec::IntoIter<PageRef>,
    rx: &Receiver<PageRef>,
    group_max: usize,
) -> Option<Vec<PageRef>> {
    let mut group: Vec<PageRef> = leftovers.by_ref().take(group_max).collect();
    if group.is_empty() {
        group.push(rx.recv().ok()?);
        while group.len() < group_max {
            match rx.try_recv() {
                Ok(p) => group.push(p),
                Err(_) => break,
            }
        }
    }
    Some(group)
}

/// How long the loader waits for more batches while its unit holds less
/// than a quarter of the unit size.
const UNIT_FILL_WAIT: Duration = Duration::from_millis(250);

/// Loads leftover staged batches, then what transform sends, in units of
/// one scope (formed by [`UnitAssembler`]); a unit closes when it is full,
/// or when nothing more is waiting and it is a quarter full or
/// [`UNIT_FILL_WAIT`] has passed.
fn load_loop(
    loader: &mut Loader,
    st: &Staging,
    scopes: &[String],
    rx: Receiver<Batch>,
    progress: &RunProgress,
    stop: &Stop,
) -> Result<UnitReport> {
    let mut total = UnitReport::default();
    let mut units = UnitAssembler::new(loader.unit_limits()?);
    let mut run_unit = |loader: &mut Loader, unit: Vec<Batch>| -> Result<()> {
        if unit.is_empty() {
            return Ok(());
        }
        let t0 = Instant::now();
        let r = loader.load_unit(&unit)?;
        progress.load.add_busy(t0.elapsed());
        progress
            .load
            .add(r.pages_loaded, r.issues_accepted, r.rows_written(), 0);
        total.absorb(&r);
        Ok(())
    };
    // Batches an earlier `run --stage transform` left on disk.
    for s in scopes {
        for page in st.list_batches(s)? {
            if stop.requested() {
                return Ok(total);
            }
            for unit in units.push_full(batch::read_batch(st, s, &page)?) {
                run_unit(loader, unit)?;
            }
        }
        run_unit(loader, units.take())?;
    }
    loop {
        if stop.requested() {
            return Ok(total);
        }
        let Ok(b) = rx.recv() else { break };
        if let Some(unit) = units.push(b) {
            run_unit(loader, unit)?;
        }
        // Take what is already waiting, up to a full unit; while the unit is
        // small, wait a little for more: every unit pays a fixed cost (its
        // statements, a COMMIT flush), and a loader that keeps up with
        // transform would otherwise load one page per unit.
        let deadline = Instant::now() + UNIT_FILL_WAIT;
        while !units.is_full() {
            let next = if units.is_small() {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => rx.recv_timeout(left).ok(),
                    None => rx.try_recv().ok(),
                }
            } else {
                rx.try_recv().ok()
            };
            let Some(b) = next else { break };
            if let Some(unit) = units.push(b) {
                run_unit(loader, unit)?;
            }
        }
        run_unit(loader, units.take())?;
    }
    run_unit(loader, units.take())?;
    Ok(total)
}

/// Rewrites the metrics file periodically on its own thread.
struct MetricsWriter {
    path: std::path::PathBuf,
    done: Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl MetricsWriter {
    fn start(path: std::path::PathBuf, every: Duration) -> MetricsWriter {
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        let p = path.clone();
        let handle = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !d.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() >= every {
                        last = Instant::now();
                        if let Err(e) = metrics::write_file(&p) {
                            tracing::warn!("cannot write the metrics file: {}", e.one_line());
                        }
                    }
                }
            })
            .ok();
        MetricsWriter { path, done, handle }
    }

    fn finish(mut self) -> Result<()> {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        metrics::write_file(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a run stopped by Ctrl-C reported extract's "the transform
    /// stage stopped taking pages" as a failure instead of an interruption.
    #[test]
    fn a_stopped_run_is_interrupted_not_failed_by_a_gone_downstream() {
        let gone = || Error::Downstream("scope s: the transform stage stopped taking pages".into());
        assert!(cause(None, None, Some(gone()), true).is_none());
        assert!(matches!(
            cause(None, None, Some(gone()), false),
            Some(Error::Downstream(_))
        ));
        let db = Error::Database("lost".into());
        assert!(matches!(
            cause(Some(db), None, Some(gone()), true),
            Some(Error::Database(_))
        ));
        let jira = Error::jira(crate::error::JiraKind::Auth, "refused");
        assert_eq!(
            cause(None, None, Some(jira), true).and_then(|e| e.jira_kind()),
            Some(crate::error::JiraKind::Auth)
        );
    }

    /// A page handed on twice (a resumed extract run re-sends a page that is
    /// also a leftover) is transformed once; a page already archived is skipped.
    #[test]
    fn transform_loop_takes_each_page_once_and_skips_archived_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("pipeline.toml");
        let text = format!(
            "[staging]\ndir = {:?}\n\n[[scope]]\nname = \"bench\"\nproject = \"DEMO\"\n",
            dir.path().join("staging").display().to_string()
        );
        let cfg = crate::config::RawConfig::parse(&text, &cfg_path)
            .unwrap()
            .validate(&cfg_path)
            .unwrap();
        let st = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
        let ds = jira_sim::Dataset::new(42, 20, &[]);
        let meta0 = crate::staging::search_meta("bench", 0, 10);
        let meta1 = crate::staging::search_meta("bench", 1, 10);
        st.write_compressed(
            &st.catalog_path(&meta0.run_id),
            &jira_sim::render::field_list(&ds),
        )
        .unwrap();
        st.write_page(&meta0, &ds.search_page_body(0, 10, true))
            .unwrap();
        st.write_page(&meta1, &ds.search_page_body(10, 10, true))
            .unwrap();
        let (p0, p1) = (meta0.page_name(), meta1.page_name());
        st.archive_page("bench", &p1).unwrap();
        let r = |p: &str| PageRef {
            scope: "bench".into(),
            page: p.to_string(),
        };
        let (page_tx, page_rx) = bounded::<PageRef>(4);
        page_tx.send(r(&p0)).unwrap();
        page_tx.send(r(&p1)).unwrap();
        drop(page_tx);
        let (batch_tx, batch_rx) = bounded::<Batch>(8);
        let worker = PageWorker::new(&cfg, &st);
        let counts = transform_loop(
            &worker,
            vec![r(&p0)],
            page_rx,
            batch_tx,
            &RunProgress::default(),
            &Stop::new(),
            1,
        )
        .unwrap();
        let batches: Vec<Batch> = batch_rx.try_iter().collect();
        assert_eq!(batches.len(), 1, "p0 once, p1 (archived) not at all");
        assert_eq!(batches[0].meta.page, p0);
        assert_eq!(counts.pages_quarantined, 0);
        // A page that is neither staged nor archived is still an error.
        let (page_tx, page_rx) = bounded::<PageRef>(1);
        page_tx
            .send(r("20240101T000000000Z-s00000-p000009"))
            .unwrap();
        drop(page_tx);
        let (batch_tx, _keep) = bounded::<Batch>(1);
        assert!(
            transform_loop(
                &worker,
                vec![],
                page_rx,
                batch_tx,
                &RunProgress::default(),
                &Stop::new(),
                1
            )
            .is_err()
        );
    }
}
