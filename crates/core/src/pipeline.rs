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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};
use rayon::prelude::*;
use serde::Serialize;

use crate::batch::{self, Batch};
use crate::config::{Config, Scope, Secret};
use crate::error::{Error, ExitCode, Result};
use crate::extract::{self, ExtractOptions, ExtractReport};
use crate::load::{Connect, LoadOptions, Loader, LockedConnector, UnitReport};
use crate::metrics;
use crate::progress::{Reporter, RunProgress};
use crate::shutdown::Stop;
use crate::staging::{self, PageRef, Staging};
use crate::transform::{CatalogCache, Selection, transform_page_with};

/// How a run is done.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Scope names; empty means every configured scope.
    pub scopes: Vec<String>,
    /// Backfill even where a checkpoint exists.
    pub full: bool,
    /// Rewrite OpenMetrics text here every few seconds and at the end.
    pub metrics_file: Option<std::path::PathBuf>,
    /// No progress display.
    pub quiet: bool,
    /// The command name recorded in `run_history`.
    pub command: String,
    /// Transform threads (0 = one per core).
    pub threads: usize,
    /// Loader tuning.
    pub load: LoadOptions,
}

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
    pub interrupted: bool,
    pub error: Option<String>,
}

impl RunSummary {
    pub fn exit_code(&self) -> ExitCode {
        if self.pages_quarantined + self.issues_quarantined > 0 {
            ExitCode::Quarantined
        } else {
            ExitCode::Success
        }
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

/// Scope names selected by `names` (all when empty), checked against the config.
pub fn select_scopes<'a>(cfg: &'a Config, names: &[String]) -> Result<Vec<&'a Scope>> {
    if names.is_empty() {
        Ok(cfg.scopes.iter().collect())
    } else {
        names.iter().map(|n| cfg.scope(n)).collect()
    }
}

/// Runs extract, transform and load together. Takes the schema's advisory
/// lock (exit 5 when another run holds it) for the whole run.
pub fn run_all(
    cfg: &Config,
    token: &Secret,
    db_url: &Secret,
    opts: &RunOptions,
    stop: &Stop,
) -> Result<RunSummary> {
    let started = Instant::now();
    let scopes = select_scopes(cfg, &opts.scopes)?;
    let names: Vec<String> = scopes.iter().map(|s| s.name.clone()).collect();
    let schema = cfg.database.schema.clone();
    let st = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);

    // The loader's connection holds the lock for the whole run.
    let mut connector = LockedConnector {
        url: db_url.clone(),
        db: cfg.database.clone(),
        schema: schema.clone(),
    };
    let load_client = connector.connect()?;
    let mut admin = crate::db::connect(db_url, &cfg.database)?;
    let run_id = crate::runlog::start(&mut admin, &schema, &opts.command)?;
    let checkpoints = extract::read_checkpoints(&mut admin, &schema, &names)?;
    metrics::set(
        "jira_pipeline_run_start_timestamp_seconds",
        &[],
        chrono::Utc::now().timestamp() as f64,
    );

    let progress = Arc::new(RunProgress::default());
    let reporter = Reporter::start(progress.clone(), opts.quiet, Duration::from_secs(5));
    let metrics_writer = opts
        .metrics_file
        .clone()
        .map(|p| MetricsWriter::start(p, Duration::from_secs(5)));

    let (page_tx, page_rx) = bounded::<PageRef>(32);
    let (batch_tx, batch_rx) = bounded::<Batch>(8);

    // Leftovers of an interrupted run, oldest first.
    let mut leftover_pages = Vec::new();
    for s in &names {
        let done: std::collections::HashSet<String> = st.list_batches(s)?.into_iter().collect();
        for p in st.list_pages(s)? {
            if !done.contains(&p) {
                leftover_pages.push(PageRef {
                    scope: s.clone(),
                    page: p,
                });
            }
        }
    }

    let transform = {
        let cfg = cfg.clone();
        let st = st.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let threads = opts.threads;
        std::thread::Builder::new()
            .name("transform".into())
            .spawn(move || {
                transform_loop(
                    &cfg,
                    &st,
                    leftover_pages,
                    page_rx,
                    batch_tx,
                    &progress,
                    &stop,
                    threads,
                )
            })
            .map_err(|e| Error::Other(format!("cannot start the transform thread: {e}")))?
    };
    let load = {
        let st = st.clone();
        let progress = progress.clone();
        let stop = stop.clone();
        let names = names.clone();
        let lopts = opts.load.clone();
        std::thread::Builder::new()
            .name("load".into())
            .spawn(move || {
                let mut loader = Loader::new(load_client, &schema, st.clone())
                    .with_options(lopts)
                    .with_reconnect(connector);
                let loaded = load_loop(&mut loader, &st, &names, batch_rx, &progress, &stop);
                // Indexes a bulk first load deferred are rebuilt even after
                // a failure or a stop.
                let finished = loader.finish();
                let total = loaded?;
                finished?;
                Ok(total)
            })
            .map_err(|e| Error::Other(format!("cannot start the load thread: {e}")))?
    };

    // Extract on this thread (it owns its runtime).
    let ex_started = Instant::now();
    let ex = extract::extract_blocking(
        cfg,
        token,
        &checkpoints,
        ExtractOptions {
            scopes: names.clone(),
            full: opts.full,
            sink: Some(page_tx),
            stop: stop.flag(),
            display: extract::progress::Display::Off,
        },
    );
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
        interrupted: stop.requested(),
        ..Default::default()
    };
    fill_stage(&mut summary.extract, &progress.extract);
    fill_stage(&mut summary.transform, &progress.transform);
    fill_stage(&mut summary.load, &progress.load);
    if let Ok(r) = &ex {
        absorb_extract(&mut summary, r);
    }
    let tr_counts = tr.as_ref().ok().copied().unwrap_or_default();
    summary.pages_quarantined = tr_counts.pages_quarantined;
    if let Ok(u) = &ld {
        absorb_load(&mut summary, u);
    }
    // Checkpoints now stored (whatever moved them).
    let now_cp = extract::read_checkpoints(&mut admin, &cfg.database.schema, &names)?;
    let now = chrono::Utc::now();
    for n in &names {
        if let Some(c) = now_cp.get(n) {
            summary.checkpoints.push((n.clone(), c.to_rfc3339()));
            metrics::set(
                "jira_pipeline_checkpoint_lag_seconds",
                &[("scope", n)],
                (now - *c).num_milliseconds() as f64 / 1000.0,
            );
        }
    }
    record_metrics(&summary);
    // The most downstream failure is the cause: a failed loader stops
    // transform, which stops extract ("stopped taking pages").
    let first_err = ld.err().or(tr.err()).or(ex.err());
    if let Some(e) = &first_err {
        summary.error = Some(e.one_line());
    }
    let outcome = match (&first_err, summary.interrupted, summary.exit_code()) {
        (Some(_), _, _) => "failed",
        (None, true, _) => "interrupted",
        (None, false, ExitCode::Quarantined) => "quarantined",
        _ => "ok",
    };
    let json = serde_json::to_value(&summary).unwrap_or(serde_json::Value::Null);
    crate::runlog::finish(&mut admin, &cfg.database.schema, run_id, outcome, &json)?;
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
    Ok(summary)
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
}

fn absorb_load(s: &mut RunSummary, u: &UnitReport) {
    s.pages_loaded = u.pages_loaded;
    s.pages_already_loaded = u.pages_skipped;
    s.issues_quarantined = u.quarantined;
    s.issues_rejected_older = u.issues_rejected_older;
    s.issues_unchanged = u.issues_unchanged;
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
}

/// Counts of the transform thread.
#[derive(Debug, Clone, Copy, Default)]
struct TransformCounts {
    pages_quarantined: u64,
}

type Selections = HashMap<(String, String), Arc<Selection>>;

/// Transforms pages in arrival order: leftovers first, then what extract
/// sends. Groups of pages are transformed in parallel and sent on in order.
#[allow(clippy::too_many_arguments)]
fn transform_loop(
    cfg: &Config,
    st: &Staging,
    leftovers: Vec<PageRef>,
    rx: Receiver<PageRef>,
    tx: Sender<Batch>,
    progress: &RunProgress,
    stop: &Stop,
    threads: usize,
) -> Result<TransformCounts> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("transform-{i}"))
        .build()
        .map_err(|e| Error::Other(format!("cannot start the transform threads: {e}")))?;
    let group_max = pool.current_num_threads() * 2;
    let cache = CatalogCache::default();
    let mut selections: Selections = HashMap::new();
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
        let mut group: Vec<PageRef> = leftovers.by_ref().take(group_max).collect();
        if group.is_empty() {
            match rx.recv() {
                Ok(p) => group.push(p),
                Err(_) => return Ok(counts),
            }
            while group.len() < group_max {
                match rx.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
        }
        let t0 = Instant::now();
        // Read pages and resolve catalogues sequentially (cheap), transform in parallel.
        let mut work = Vec::with_capacity(group.len());
        for p in &group {
            if !handled.insert((p.scope.clone(), p.page.clone())) {
                tracing::debug!(scope = %p.scope, page = %p.page, "page handed on twice (resumed run); transformed once");
                continue;
            }
            let path = st.page_path(&p.scope, &p.page);
            let Ok(scope) = cfg.scope(&p.scope) else {
                continue;
            };
            match staging::read_page(&path) {
                Ok((meta, body)) => {
                    progress
                        .extract
                        .add(1, u64::from(meta.issue_count), 0, body.len() as u64);
                    let catalog = cache.get(st, &meta.run_id)?;
                    let sel = selections
                        .entry((p.scope.clone(), meta.run_id.clone()))
                        .or_insert_with(|| Arc::new(Selection::resolve(scope, &catalog)))
                        .clone();
                    work.push((p.clone(), meta, body, catalog, sel));
                }
                Err(e @ Error::Staging { .. }) => {
                    st.quarantine_page(&p.scope, &p.page, &format!("{e}\n"))?;
                    counts.pages_quarantined += 1;
                }
                // Gone from pages/ but in the archive: loaded already.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && st.archived_path(&p.scope, &p.page).is_file() =>
                {
                    tracing::debug!(scope = %p.scope, page = %p.page, "page loaded and archived already");
                }
                Err(e) => return Err(e),
            }
        }
        let results: Vec<_> = pool.install(|| {
            work.into_par_iter()
                .map(|(p, meta, mut body, catalog, sel)| {
                    let r = transform_page_with(&meta, &mut body, &catalog, &sel);
                    (p, r)
                })
                .collect()
        });
        progress.transform.add_busy(t0.elapsed());
        for (p, r) in results {
            match r {
                Ok(b) => {
                    for q in &b.meta.quarantined {
                        tracing::warn!(scope = %p.scope, page = %p.page, issue = %q.key, reason = %q.reason, "issue quarantined");
                    }
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
                Err(bad) => {
                    tracing::warn!(scope = %p.scope, page = %p.page, reason = %bad, "page quarantined");
                    st.quarantine_page(
                        &p.scope,
                        &p.page,
                        &format!("{}: {bad}\n", st.page_path(&p.scope, &p.page).display()),
                    )?;
                    counts.pages_quarantined += 1;
                }
            }
        }
    }
}

/// How long the loader waits for more batches while its unit holds less
/// than a quarter of the unit size.
const UNIT_FILL_WAIT: Duration = Duration::from_millis(250);

/// Loads leftover staged batches, then what transform sends, in units of
/// one scope; a unit closes when it is full, or when nothing more is waiting
/// and it is a quarter full or [`UNIT_FILL_WAIT`] has passed.
fn load_loop(
    loader: &mut Loader,
    st: &Staging,
    scopes: &[String],
    rx: Receiver<Batch>,
    progress: &RunProgress,
    stop: &Stop,
) -> Result<UnitReport> {
    let mut total = UnitReport::default();
    let (max_rows, max_pages) = loader.unit_limits()?;
    let run_unit =
        |loader: &mut Loader, unit: &mut Vec<Batch>, total: &mut UnitReport| -> Result<()> {
            if unit.is_empty() {
                return Ok(());
            }
            let t0 = Instant::now();
            let r = loader.load_unit(unit)?;
            progress.load.add_busy(t0.elapsed());
            progress
                .load
                .add(r.pages_loaded, r.issues_accepted, r.rows_written(), 0);
            total.absorb(&r);
            unit.clear();
            Ok(())
        };
    // Batches an earlier `run --stage transform` left on disk.
    for s in scopes {
        let mut unit = Vec::new();
        let mut rows = 0;
        for page in st.list_batches(s)? {
            if stop.requested() {
                return Ok(total);
            }
            let b = batch::read_batch(st, s, &page)?;
            rows += b.total_rows();
            unit.push(b);
            if rows >= max_rows || unit.len() >= max_pages {
                run_unit(loader, &mut unit, &mut total)?;
                rows = 0;
            }
        }
        run_unit(loader, &mut unit, &mut total)?;
    }
    let mut unit: Vec<Batch> = Vec::new();
    let mut rows = 0u64;
    loop {
        if stop.requested() {
            return Ok(total);
        }
        let b = match rx.recv() {
            Ok(b) => b,
            Err(_) => break,
        };
        if unit.first().is_some_and(|u| u.meta.scope != b.meta.scope) {
            run_unit(loader, &mut unit, &mut total)?;
            rows = 0;
        }
        rows += b.total_rows();
        unit.push(b);
        // Take what is already waiting, up to a full unit; while the unit is
        // small, wait a little for more: every unit pays a fixed cost (its
        // statements, a COMMIT flush), and a loader that keeps up with
        // transform would otherwise load one page per unit.
        let deadline = Instant::now() + UNIT_FILL_WAIT;
        while rows < max_rows && unit.len() < max_pages {
            let next = if rows < max_rows / 4 {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => rx.recv_timeout(left).ok(),
                    None => rx.try_recv().ok(),
                }
            } else {
                rx.try_recv().ok()
            };
            match next {
                Some(b) if b.meta.scope == unit[0].meta.scope => {
                    rows += b.total_rows();
                    unit.push(b);
                }
                Some(b) => {
                    run_unit(loader, &mut unit, &mut total)?;
                    rows = b.total_rows();
                    unit.push(b);
                }
                None => break,
            }
        }
        run_unit(loader, &mut unit, &mut total)?;
        rows = 0;
    }
    run_unit(loader, &mut unit, &mut total)?;
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

/// CLI entry of `run --stage all`, `sync` and `backfill`.
pub fn exec_run(cfg: &Config, opts: &RunOptions) -> Result<ExitCode> {
    let token = crate::config::jira_pat()?;
    let url = crate::config::database_url()?;
    let stop = crate::shutdown::install()?;
    let summary = run_all(cfg, &token, &url, opts, &stop)?;
    print!("{}", summary.render());
    Ok(summary.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let counts = transform_loop(
            &cfg,
            &st,
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
                &cfg,
                &st,
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
