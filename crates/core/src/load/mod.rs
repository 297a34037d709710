//! The load stage: table batches → the PostgreSQL warehouse.
//!
//! - [`Loader`]: a synchronous loader over one `postgres::Client`. Its
//!   [`Loader::load_unit`] loads one *unit* (one or more batches of one scope,
//!   in page order) in one transaction (`unit.rs`): COPY into `ON COMMIT
//!   DROP` staging tables, merge with SQL generated from the table specs (see
//!   [`merge`]), record the pages in the ledger, move the scope's checkpoint
//!   when an End page closes a complete run, record quarantined issues, COMMIT;
//!   then archive the pages and remove their batch directories. A lost
//!   connection or a server restart rolls the unit back; the loader reconnects
//!   with backoff and redoes it.
//! - [`UnitAssembler`]: the one place batches are grouped into units (used
//!   here and by `run --stage all`).
//! - [`run`]: `pipeline run --stage load` — takes the advisory lock and
//!   loads every staged batch not loaded yet, per scope, in page order, grouped
//!   into units of a target size.
//! - `pipeline bench load` lives in the `jira-pipeline-bench` crate.
//!
//! The `postgres` client is synchronous and must never run inside a tokio
//! runtime: the orchestrator gives the loader a thread of its own.

pub mod merge;
mod unit;

use std::fmt;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postgres::Client;

use crate::batch::{self, Batch};
use crate::bookkeeping;
use crate::config::{DatabaseConfig, Secret};
use crate::db::{self, Ident};
use crate::error::{Error, ExitCode, Result};
use crate::session::{Report, RunOptions, Session};
use crate::staging::Staging;

/// Points inside a unit's transaction where a fault-injection hook runs (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    /// Every table is in its staging table.
    AfterCopy,
    /// Every table is merged; ledger and checkpoint not yet written.
    AfterMerge,
    /// Everything is written; the next statement is COMMIT.
    BeforeCommit,
}

/// Rows a unit changed in one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl TableCounts {
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

/// What one unit (or a whole run, summed) did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UnitReport {
    /// Per table, in [`crate::tables::ALL`] order (tables with no merge run are absent).
    pub tables: Vec<(&'static str, TableCounts)>,
    /// Pages merged and recorded in the ledger now.
    pub pages_loaded: u64,
    /// Pages found in the ledger (loaded before): not merged again.
    pub pages_skipped: u64,
    /// End pages of an incomplete run: merged, but not recorded; they stay staged.
    pub pages_deferred: u64,
    /// Incoming issues whose version was taken (new, newer, or identical).
    pub issues_accepted: u64,
    /// Incoming issues older than the stored row: nothing of them was written.
    pub issues_rejected_older: u64,
    /// Incoming issues stored already with byte-identical rows (same digest):
    /// skipped before the COPY.
    pub issues_unchanged: u64,
    /// Quarantined issues recorded.
    pub quarantined: u64,
    /// What the loaded batches told about the reporting model.
    pub notes: crate::batch::ModelNotes,
    /// Rows COPYed into the staging tables.
    pub rows_in: u64,
    /// Times the unit was redone after a lost connection.
    pub retries: u64,
    /// The checkpoint after the unit, when it moved (or was confirmed).
    pub checkpoint: Option<DateTime<Utc>>,
    /// Time per step: `(setup)`, `(copy)` (all COPYs into staging), `(accepted)`,
    /// each table's merge, `(ledger+commit)`; with the rows each step handled.
    pub timings: Vec<(&'static str, u64, Duration)>,
}

impl UnitReport {
    fn add(&mut self, table: &'static str, c: TableCounts) {
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, e)) => {
                e.inserted += c.inserted;
                e.updated += c.updated;
                e.deleted += c.deleted;
            }
            None => self.tables.push((table, c)),
        }
    }

    fn add_time(&mut self, table: &'static str, rows: u64, d: Duration) {
        match self.timings.iter_mut().find(|(t, _, _)| *t == table) {
            Some((_, r, e)) => {
                *r += rows;
                *e += d;
            }
            None => self.timings.push((table, rows, d)),
        }
    }

    /// The counts of one table (zero if untouched).
    pub fn table(&self, name: &str) -> TableCounts {
        self.tables
            .iter()
            .find(|(t, _)| *t == name)
            .map(|(_, c)| *c)
            .unwrap_or_default()
    }

    /// Rows written (inserted + updated + deleted) over every table.
    pub fn rows_written(&self) -> u64 {
        self.tables.iter().map(|(_, c)| c.total()).sum()
    }

    /// Adds another report into this one.
    pub fn absorb(&mut self, o: &UnitReport) {
        for (t, c) in &o.tables {
            self.add(t, *c);
        }
        for (t, r, d) in &o.timings {
            self.add_time(t, *r, *d);
        }
        self.pages_loaded += o.pages_loaded;
        self.pages_skipped += o.pages_skipped;
        self.pages_deferred += o.pages_deferred;
        self.issues_accepted += o.issues_accepted;
        self.issues_rejected_older += o.issues_rejected_older;
        self.issues_unchanged += o.issues_unchanged;
        self.quarantined += o.quarantined;
        self.notes += o.notes;
        self.rows_in += o.rows_in;
        self.retries += o.retries;
        if o.checkpoint.is_some() {
            self.checkpoint = o.checkpoint;
        }
    }
}

/// Tuning of the loader.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// A unit is closed once it holds this many rows (over every table)…
    pub unit_rows: u64,
    /// …or this many pages.
    pub unit_pages: usize,
    /// Attempts per unit, including the first, when the connection is lost.
    pub max_attempts: u32,
    /// First reconnect delay; doubles per attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// `pipeline replay`: merge pages even when the ledger says they were
    /// loaded (the merge rules still refuse older versions); End pages are
    /// ignored, so checkpoints never move.
    pub replay: bool,
    /// When the warehouse holds no issue at the first unit, drop its
    /// secondary indexes for the load and rebuild them at [`Loader::finish`]
    /// (see [`Loader::prepare`]).
    pub bulk_first_load: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            unit_rows: 20_000,
            unit_pages: 16,
            max_attempts: 8,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(10),
            replay: false,
            bulk_first_load: true,
        }
    }
}

/// Opens a new connection for the loader after the old one was lost.
pub trait Connect: Send {
    fn connect(&mut self) -> Result<Client>;
}

impl<F: FnMut() -> Result<Client> + Send> Connect for F {
    fn connect(&mut self) -> Result<Client> {
        self()
    }
}

/// Connects with the configured settings, checks the schema version and takes
/// the schema's advisory lock on the new connection (so the lock lives exactly
/// as long as the connection that writes).
pub struct LockedConnector {
    pub url: Secret,
    pub db: DatabaseConfig,
    pub schema: String,
}

impl Connect for LockedConnector {
    fn connect(&mut self) -> Result<Client> {
        let mut c = db::connect(&self.url, &self.db)?;
        db::check_schema(&mut c, &self.schema)?;
        db::try_lock(&mut c, &self.schema)?;
        Ok(c)
    }
}

type Hook = Box<dyn FnMut(HookPoint, i32, u32) + Send>;

/// The synchronous loader. See the module docs.
pub struct Loader {
    client: Option<Client>,
    schema: String,
    staging: Staging,
    sql: merge::UnitSql,
    opts: LoadOptions,
    connector: Option<Box<dyn Connect>>,
    hook: Option<Hook>,
    session_ready: bool,
    /// [`Loader::prepare`] ran on this loader.
    prepared: bool,
    /// A bulk first load is under way (secondary indexes deferred).
    bulk: bool,
    /// Deletes loaded batch directories in the background.
    janitor: Option<Janitor>,
}

/// Deletes the staging trash (loaded batch directories, renamed there) on a
/// thread of its own: unlinking many small files just written costs ~2 ms
/// each on ext4 here, more than loading their rows. Leftovers of an earlier
/// run are deleted first. Joined by [`Loader::finish`] and on drop.
struct Janitor {
    tx: Option<std::sync::mpsc::Sender<std::path::PathBuf>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Janitor {
    fn start(trash: std::path::PathBuf) -> Option<Janitor> {
        let (tx, rx) = std::sync::mpsc::channel::<std::path::PathBuf>();
        let handle = std::thread::Builder::new()
            .name("janitor".into())
            .spawn(move || {
                if let Ok(entries) = std::fs::read_dir(&trash) {
                    for e in entries.flatten() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
                for dir in rx {
                    if let Err(e) = std::fs::remove_dir_all(&dir)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        tracing::warn!(dir = %dir.display(), "cannot delete a loaded batch from the staging trash: {e}; `pipeline staging gc` or the next load retries");
                    }
                }
            })
            .ok()?;
        Some(Janitor {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    fn join(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        self.join();
    }
}

/// How much larger a unit is during a bulk first load: every unit is new
/// rows going straight into the tables, so fewer, larger transactions save
/// the per-unit costs (commit flush, setup, statements) at no risk.
const BULK_UNIT_FACTOR: u64 = 3;

/// Whether a failed unit may be redone on a new connection: the connection is
/// gone, the server is shutting down or restarting, or a serialization
/// failure / deadlock. Data errors and timeouts are not retried.
pub(crate) fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Db { source, .. } => {
            if source.is_closed() {
                return true;
            }
            match source.code() {
                Some(code) => {
                    let c = code.code();
                    c.starts_with("08")
                        || matches!(c, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
                }
                // No SQLSTATE: retried only if it is an I/O error on the socket.
                None => std::error::Error::source(source).is_some_and(|s| s.is::<std::io::Error>()),
            }
        }
        _ => false,
    }
}

impl Loader {
    /// A loader writing into `schema` over `client`; pages and batches are
    /// archived/removed in `staging`. Without [`Loader::with_reconnect`] a lost
    /// connection is an error.
    pub fn new(client: Client, schema: &str, staging: Staging) -> Self {
        Loader {
            client: Some(client),
            schema: schema.to_string(),
            staging,
            sql: merge::UnitSql::new(schema),
            opts: LoadOptions::default(),
            connector: None,
            hook: None,
            session_ready: false,
            prepared: false,
            bulk: false,
            janitor: None,
        }
    }

    /// The size at which callers close a unit: `(rows, pages)`. Runs
    /// [`Loader::prepare`] first: a bulk first load uses larger units.
    pub fn unit_limits(&mut self) -> Result<(u64, usize)> {
        self.prepare()?;
        let (r, p) = (self.opts.unit_rows.max(1), self.opts.unit_pages.max(1));
        Ok(if self.bulk {
            (r * BULK_UNIT_FACTOR, p * BULK_UNIT_FACTOR as usize)
        } else {
            (r, p)
        })
    }

    /// Whether a bulk first load is under way (after [`Loader::prepare`]).
    pub fn bulk(&self) -> bool {
        self.bulk
    }

    /// Runs once, before the first unit (`load_unit` calls it).
    ///
    /// Bulk first load: when [`LoadOptions::bulk_first_load`] is on and the
    /// warehouse holds no issue, the secondary indexes readers use (not the
    /// keys, not those the merges need) are dropped — their definitions kept
    /// in `deferred_index` in the same transaction — and [`Loader::finish`]
    /// rebuilds them, which is several times cheaper than maintaining them
    /// row by row. If the run dies before that, the next run finds them in
    /// `deferred_index`: it keeps loading without them and rebuilds them at
    /// its end, or rebuilds them at once if bulk loading is off.
    pub fn prepare(&mut self) -> Result<()> {
        if self.prepared {
            return Ok(());
        }
        let schema = self.schema.clone();
        let bulk = self.opts.bulk_first_load && !self.opts.replay;
        let client = self.client()?;
        let mut tx = client
            .transaction()
            .map_err(Error::db("bulk load: BEGIN"))?;
        let deferred = bookkeeping::deferred_index::count(&mut tx, &schema)?;
        let empty: bool = tx
            .query_one(
                &format!(
                    "SELECT NOT EXISTS (SELECT 1 FROM {}.{})",
                    Ident::new(&schema),
                    crate::tables::ISSUE.ident()
                ),
                &[],
            )
            .map_err(Error::db("bulk load: is the warehouse empty?"))?
            .get(0);
        if bulk && (empty || deferred > 0) {
            let tables: Vec<&str> = crate::tables::ALL.iter().map(|t| t.name).collect();
            let dropped = bookkeeping::deferred_index::defer(&mut tx, &schema, &tables)?;
            if dropped > 0 {
                tracing::info!(
                    indexes = dropped,
                    "bulk first load: secondary indexes dropped for the load, rebuilt when it ends"
                );
            }
            tx.commit().map_err(Error::db("bulk load: COMMIT"))?;
            self.bulk = true;
        } else {
            tx.commit().map_err(Error::db("bulk load: COMMIT"))?;
            if deferred > 0 {
                self.restore_indexes()?;
            }
        }
        self.prepared = true;
        Ok(())
    }

    /// Rebuilds the indexes a bulk first load deferred (none: nothing to do).
    /// Call it when the load ends, whether it succeeded or not.
    pub fn finish(&mut self) -> Result<()> {
        let restored = self.restore_indexes();
        if let Some(mut j) = self.janitor.take() {
            j.join();
        }
        restored
    }

    fn restore_indexes(&mut self) -> Result<()> {
        let schema = self.schema.clone();
        bookkeeping::deferred_index::rebuild_all(self.client()?, &schema)
    }

    /// The connection, reconnecting if it was lost.
    fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            self.session_ready = false;
            let Some(conn) = self.connector.as_mut() else {
                return Err(Error::Database(
                    "the connection to PostgreSQL was lost; rerun `pipeline run --stage load`"
                        .into(),
                ));
            };
            self.client = Some(conn.connect()?);
        }
        self.client
            .as_mut()
            .ok_or_else(|| Error::Other("loader has no connection".into()))
    }

    pub fn with_options(mut self, opts: LoadOptions) -> Self {
        self.opts = opts;
        self
    }

    /// How to reconnect after a lost connection (e.g. [`LockedConnector`]).
    pub fn with_reconnect(mut self, c: impl Connect + 'static) -> Self {
        self.connector = Some(Box::new(c));
        self
    }

    /// Fault injection for tests: called at each [`HookPoint`] with the
    /// loader's backend pid and the attempt number (1-based).
    pub fn set_hook(&mut self, hook: impl FnMut(HookPoint, i32, u32) + Send + 'static) {
        self.hook = Some(Box::new(hook));
    }

    pub fn options(&self) -> &LoadOptions {
        &self.opts
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Loads one unit: batches of one scope (sorted into page order here).
    pub fn load_unit(&mut self, batches: &[Batch]) -> Result<UnitReport> {
        let Some(first) = batches.first() else {
            return Ok(UnitReport::default());
        };
        let scope = first.meta.scope.clone();
        if let Some(b) = batches.iter().find(|b| b.meta.scope != scope) {
            return Err(Error::Other(format!(
                "a load unit mixes scopes {scope:?} and {:?} (page {}); this is a bug in the caller",
                b.meta.scope, b.meta.page
            )));
        }
        self.prepare()?;
        let mut sorted: Vec<&Batch> = batches.iter().collect();
        sorted.sort_by(|a, b| a.meta.page.cmp(&b.meta.page));
        sorted.dedup_by(|a, b| a.meta.page == b.meta.page);
        let rows_in: u64 = sorted.iter().map(|b| b.total_rows()).sum();

        let mut attempt: u32 = 0;
        let outcome = loop {
            attempt += 1;
            match self.attempt(&sorted, attempt) {
                Ok(o) => break o,
                Err(e) => {
                    let lost = self.client.as_ref().is_none_or(|c| c.is_closed());
                    let retry = (is_retryable(&e) || (lost && !is_final(&e)))
                        && self.connector.is_some()
                        && attempt < self.opts.max_attempts;
                    if lost || is_retryable(&e) {
                        self.client = None;
                    }
                    if !retry {
                        return Err(e);
                    }
                    let delay = backoff(&self.opts, attempt);
                    tracing::warn!(
                        scope = %scope, attempt, delay_ms = delay.as_millis() as u64,
                        "load unit failed ({}); it was rolled back, reconnecting and redoing it",
                        e.one_line()
                    );
                    std::thread::sleep(delay);
                }
            }
        };
        let mut report = outcome.report;
        report.retries = u64::from(attempt - 1);
        report.rows_in = rows_in;
        // After COMMIT: the pages leave the staging area. A crash here is
        // harmless: the rerun finds them in the ledger and only archives them.
        for page in &outcome.done_pages {
            self.staging.archive_page(&scope, page)?;
            if let Some(dir) = batch::trash_batch(&self.staging, &scope, page)? {
                if self.janitor.is_none() {
                    self.janitor = Janitor::start(self.staging.trash_dir());
                }
                match &self.janitor {
                    Some(Janitor { tx: Some(tx), .. }) if tx.send(dir.clone()).is_ok() => {}
                    _ => std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?,
                }
            }
        }
        Ok(report)
    }

    fn attempt(&mut self, batches: &[&Batch], attempt: u32) -> Result<unit::Outcome> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            self.session_ready = false;
            let Some(conn) = self.connector.as_mut() else {
                return Err(Error::Database(format!(
                    "the connection to PostgreSQL was lost while loading scope {}; rerun `pipeline run --stage load`",
                    batches[0].meta.scope
                )));
            };
            self.client = Some(conn.connect()?);
        }
        let Some(client) = self.client.as_mut() else {
            return Err(Error::Other("loader has no connection".into()));
        };
        let mut pid = 0;
        if !self.session_ready {
            // Staging tables live in temp buffers; the default 8MB spills a
            // large unit to disk. Only settable before the session's first
            // temp table, so a failure is harmless.
            let _ = client.batch_execute("SET temp_buffers = '64MB'");
            self.session_ready = true;
        }
        if self.hook.is_some() {
            pid = client
                .query_one("SELECT pg_backend_pid()", &[])
                .map_err(Error::db("reading the backend pid"))?
                .get(0);
        }
        let hook = &mut self.hook;
        let mut h = |p: HookPoint| {
            if let Some(h) = hook.as_mut() {
                h(p, pid, attempt)
            }
        };
        unit::run(client, &self.sql, batches, self.opts.replay, &mut h)
    }
}

/// The delay before attempt `attempt + 1`: `backoff_base` doubling per attempt,
/// at most `backoff_max`.
fn backoff(opts: &LoadOptions, attempt: u32) -> Duration {
    let f = 1u32 << attempt.saturating_sub(1).min(16);
    (opts.backoff_base * f).min(opts.backoff_max)
}

/// Errors that a new connection cannot fix.
fn is_final(e: &Error) -> bool {
    matches!(
        e,
        Error::Locked(_) | Error::Config(_) | Error::Staging { .. } | Error::Io { .. }
    )
}

/// What `run --stage load` did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub units: u64,
    pub totals: UnitReport,
    /// Per scope whose checkpoint moved: the new cursor.
    pub checkpoints: Vec<(String, DateTime<Utc>)>,
    pub elapsed: Duration,
}

impl LoadReport {
    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let t = &self.totals;
        let mut s = format!(
            "load: {} unit(s), {} page(s) loaded, {} already loaded, {} End page(s) waiting for missing pages; {} rows in, {} rows written in {:.1}s",
            self.units,
            t.pages_loaded,
            t.pages_skipped,
            t.pages_deferred,
            t.rows_in,
            t.rows_written(),
            self.elapsed.as_secs_f64()
        );
        for (table, c) in &t.tables {
            if c.total() > 0 {
                s.push_str(&format!(
                    "\n  {table:<18} +{} ~{} -{}",
                    c.inserted, c.updated, c.deleted
                ));
            }
        }
        if t.issues_rejected_older > 0 {
            s.push_str(&format!(
                "\n  {} incoming issue version(s) older than the warehouse's were ignored",
                t.issues_rejected_older
            ));
        }
        if t.issues_unchanged > 0 {
            s.push_str(&format!(
                "\n  {} incoming issue(s) arrived exactly as stored and were skipped",
                t.issues_unchanged
            ));
        }
        for (scope, c) in &self.checkpoints {
            s.push_str(&format!(
                "\n  checkpoint of scope {scope}: {}",
                c.to_rfc3339()
            ));
        }
        if t.quarantined > 0 {
            s.push_str(&format!(
                "\n  {} issue(s) were quarantined by transform; see `pipeline status`",
                t.quarantined
            ));
        }
        if t.retries > 0 {
            s.push_str(&format!(
                "\n  {} unit(s) redone after a lost connection",
                t.retries
            ));
        }
        s
    }
}

impl Drop for Loader {
    /// A locked loader releases the schema's lock before its connection
    /// closes (see [`db::unlock`]).
    fn drop(&mut self) {
        if self.connector.is_some()
            && let Some(c) = self.client.as_mut()
            && !c.is_closed()
        {
            let _ = db::unlock(c, &self.schema);
        }
    }
}

/// Groups batches of one scope, in page order, into load units of at most
/// `max_rows` rows or `max_pages` pages (see [`Loader::unit_limits`]). A
/// unit never mixes scopes: a batch of another scope closes the unit.
#[derive(Debug, Default)]
pub(crate) struct UnitAssembler {
    max_rows: u64,
    max_pages: usize,
    unit: Vec<Batch>,
    rows: u64,
}

impl UnitAssembler {
    pub fn new((max_rows, max_pages): (u64, usize)) -> UnitAssembler {
        UnitAssembler {
            max_rows: max_rows.max(1),
            max_pages: max_pages.max(1),
            ..Default::default()
        }
    }

    /// Adds a batch; returns the unit it closed when it is of another scope
    /// than the unit being filled.
    pub fn push(&mut self, b: Batch) -> Option<Vec<Batch>> {
        let closed = self
            .unit
            .first()
            .is_some_and(|u| u.meta.scope != b.meta.scope)
            .then(|| self.take());
        self.rows += b.total_rows();
        self.unit.push(b);
        closed
    }

    /// [`UnitAssembler::push`], then the unit being filled too when it is full.
    pub(crate) fn push_full(&mut self, b: Batch) -> Vec<Vec<Batch>> {
        let mut ready: Vec<Vec<Batch>> = self.push(b).into_iter().collect();
        if self.is_full() {
            ready.push(self.take());
        }
        ready
    }

    /// The unit being filled holds `max_rows` rows or `max_pages` pages.
    pub(crate) fn is_full(&self) -> bool {
        self.rows >= self.max_rows || self.unit.len() >= self.max_pages
    }

    /// The unit being filled holds less than a quarter of `max_rows`.
    pub(crate) fn is_small(&self) -> bool {
        self.rows < self.max_rows / 4
    }

    /// Closes the unit being filled (possibly empty) and starts a new one.
    pub fn take(&mut self) -> Vec<Batch> {
        self.rows = 0;
        std::mem::take(&mut self.unit)
    }
}

impl Loader {
    /// A loader whose connection (and every reconnection) checks the schema
    /// and holds its advisory lock: what every command that loads uses.
    pub(crate) fn locked(session: &Session, opts: LoadOptions) -> Result<Loader> {
        let cfg = session.config();
        let mut connector = LockedConnector {
            url: session.database_url()?,
            db: cfg.database.clone(),
            schema: cfg.database.schema.clone(),
        };
        let client = connector.connect()?;
        Ok(
            Loader::new(client, &cfg.database.schema, session.staging().clone())
                .with_options(opts)
                .with_reconnect(connector),
        )
    }
}

/// `pipeline run --stage load`: loads every transformed, not yet loaded batch of
/// the selected scopes (all configured scopes when none), in page order per
/// scope, grouped into units. Takes the schema's advisory lock for the run.
pub fn run(session: &Session, opts: &RunOptions) -> Result<LoadReport> {
    let started = Instant::now();
    let names = session.scope_names(&opts.scopes)?;
    let mut loader = Loader::locked(session, opts.load.clone())?;
    let mut report = LoadReport::default();
    let loaded = load_scopes(&mut loader, session.staging(), &names, &mut report);
    // Indexes a bulk first load deferred are rebuilt even after a failure.
    let finished = loader.finish();
    loaded?;
    finished?;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn load_scopes(
    loader: &mut Loader,
    staging: &Staging,
    names: &[String],
    report: &mut LoadReport,
) -> Result<()> {
    for scope in names {
        let pages = staging.list_batches(scope)?;
        if pages.is_empty() {
            tracing::info!(scope = %scope, "no transformed batches waiting to be loaded");
            continue;
        }
        tracing::info!(scope = %scope, batches = pages.len(), "loading");
        let mut units = UnitAssembler::new(loader.unit_limits()?);
        let mut checkpoint = None;
        for page in &pages {
            for unit in units.push_full(batch::read_batch(staging, scope, page)?) {
                flush(loader, &unit, report, &mut checkpoint)?;
            }
        }
        flush(loader, &units.take(), report, &mut checkpoint)?;
        if let Some(c) = checkpoint {
            report.checkpoints.push((scope.clone(), c));
        }
    }
    Ok(())
}

fn flush(
    loader: &mut Loader,
    unit: &[Batch],
    report: &mut LoadReport,
    checkpoint: &mut Option<DateTime<Utc>>,
) -> Result<()> {
    if unit.is_empty() {
        return Ok(());
    }
    let r = loader.load_unit(unit)?;
    tracing::debug!(
        scope = %unit[0].meta.scope, pages = unit.len(), rows = r.rows_in, written = r.rows_written(),
        "unit loaded"
    );
    if r.checkpoint.is_some() {
        *checkpoint = r.checkpoint;
    }
    report.units += 1;
    report.totals.absorb(&r);
    Ok(())
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.summary())
    }
}

impl Report for LoadReport {
    /// 4 when the loaded batches carried quarantined issues.
    fn exit_code(&self) -> ExitCode {
        ExitCode::from_quarantined(self.totals.quarantined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_can_move_to_its_own_thread() {
        fn send<T: Send>() {}
        send::<Loader>();
    }

    #[test]
    fn only_driver_errors_are_retryable() {
        assert!(!is_retryable(&Error::Other("x".into())));
        assert!(!is_retryable(&Error::Locked("x".into())));
        assert!(is_final(&Error::Locked("x".into())));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let l = LoadOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..LoadOptions::default()
        };
        let f = |a: u32| backoff(&l, a);
        assert_eq!(f(1), Duration::from_millis(100));
        assert_eq!(f(2), Duration::from_millis(200));
        assert_eq!(f(3), Duration::from_millis(350));
        assert_eq!(f(40), Duration::from_millis(350));
    }
}
