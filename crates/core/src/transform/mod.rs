//! The transform stage: staged pages → table batches, on a rayon pool, with
//! simd-json.
//!
//! - [`transform_page`]: one page in memory → one [`Batch`] (pure, no I/O,
//!   deterministic: the same page gives byte-identical batches). Used by
//!   [`run_stage`], by the orchestrator (`run --stage all`) and by `replay --dry-run`.
//! - [`worker`]: the page worker (page → batch or quarantine) and the rayon
//!   pool, shared by [`run_stage`] and `run --stage all`.
//! - [`run`] / [`run_stage`]: `pipeline run --stage transform`: every staged page of the
//!   selected scopes that has no batch yet is transformed and its batch written
//!   atomically; bad pages are quarantined, counted, and the neighbours go on.
//!   Rerunning after a kill -9 finishes the job with identical batches.
//!
//! Submodules: [`issue`] (issue → rows), [`fields`] (field catalogue and
//! custom-field typing), [`time`] (Jira timestamps), [`tape`] (walking the
//! simd-json tape); `pipeline bench transform` lives in the `jira-pipeline-bench` crate.

mod dims;
pub mod fields;
pub mod issue;
mod model;
pub mod tape;
pub mod time;
pub mod worker;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::batch::{self, Batch, BatchMeta, TableCount};
use crate::config::{Config, Scope};
use crate::error::{Error, ExitCode, Result};
use crate::session::{Report, RunOptions, Session};
use crate::staging::{PageKind, PageMeta, PageRef, Staging};
pub use fields::{Catalog, Selection};
use issue::{Out, T_FIELD};
use tape::V;

/// Format version of the batches this module writes.
pub(crate) const BATCH_FORMAT: u32 = 1;

/// Why a page cannot be transformed; the page goes to the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPage {
    pub reason: String,
}

impl fmt::Display for BadPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for BadPage {}

fn bad(reason: impl Into<String>) -> BadPage {
    BadPage {
        reason: reason.into(),
    }
}

/// A printable preview of the first bytes of a body.
fn preview(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(60)]);
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Transforms one page in memory (pure and deterministic).
///
/// `body` is parsed in place by simd-json and left clobbered (same length; its
/// spare capacity serves as the parser's padding, so it is not copied).
/// `catalog` is the field catalogue of the page's run (empty if the run staged
/// none); `scope` selects the custom fields. An `End` page gives the `field`
/// rows of the catalogue and carries the run's checkpoint. A page that is not a
/// search response is a [`BadPage`] (quarantine it); a malformed issue is left
/// out and listed in `BatchMeta::quarantined`.
pub fn transform_page(
    meta: &PageMeta,
    body: &mut Vec<u8>,
    catalog: &Catalog,
    scope: &Scope,
) -> std::result::Result<Batch, BadPage> {
    let selection = Selection::resolve(scope, catalog);
    transform_page_with(meta, body, catalog, &selection)
}

/// [`transform_page`] with the scope's field selection already resolved.
pub fn transform_page_with(
    meta: &PageMeta,
    body: &mut Vec<u8>,
    catalog: &Catalog,
    selection: &Selection,
) -> std::result::Result<Batch, BadPage> {
    let source_bytes = body.len() as u64;
    let mut out = Out::new();
    out.scope.clone_from(&meta.scope);
    let mut issues = Vec::new();
    let mut quarantined = Vec::new();
    let extra = crate::staging::split_extra(meta, body).map_err(bad)?;
    match meta.kind {
        PageKind::End => {
            out.counts[T_FIELD] = catalog.write_field_rows(&mut out.bufs[T_FIELD]);
            for (what, doc) in &extra {
                if let Err(e) = dims::write_rows(&mut out, what, doc) {
                    tracing::warn!(scope = %meta.scope, page = %meta.page_name(), "{e}; the project's {what} stay as they were until the next run");
                }
            }
        }
        PageKind::Search => {
            check_json_object(body)?;
            out.reserve_for(body.len());
            let head = preview(body);
            replace_lone_surrogates(body);
            with_tape(body, |tape| {
                let tape = tape.map_err(|e| {
                    bad(format!(
                        "the page body is not valid JSON ({e}); it may be truncated (starts with {head:?})"
                    ))
                })?;
                let found = Found {
                    issues: &mut issues,
                    quarantined: &mut quarantined,
                };
                search_rows(tape, catalog, selection, &mut out, found, extra)
            })?;
            let users = std::mem::take(&mut out.users);
            model::write_users(&mut out, &users);
        }
    }
    let notes = out.notes;
    let (data, counts) = out.into_data();
    let mut meta = batch_meta(meta, counts, issues, quarantined, source_bytes);
    meta.notes = notes;
    Ok(Batch { meta, data })
}

/// Body check: rejects a search page whose body cannot be a JSON object
/// (empty, an HTML error page, anything else), before parsing it.
fn check_json_object(body: &[u8]) -> std::result::Result<(), BadPage> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        None => Err(bad("the page body is empty (expected a search response)")),
        Some(b'<') => Err(bad(format!(
            "the page holds an HTML page, not JSON (starts with {:?}); Jira or a proxy answered with an error page",
            preview(body)
        ))),
        Some(b'{') => Ok(()),
        Some(_) => Err(bad(format!(
            "the page body is not a JSON object (starts with {:?})",
            preview(body)
        ))),
    }
}

/// Batch assembly: the batch's metadata from the page's, the issues and
/// quarantined issues found, and the row count of every table.
fn batch_meta(
    meta: &PageMeta,
    counts: Vec<(&'static str, u64)>,
    issues: Vec<crate::batch::IssueVersion>,
    quarantined: Vec<crate::batch::QuarantinedIssue>,
    source_bytes: u64,
) -> BatchMeta {
    BatchMeta {
        format: BATCH_FORMAT,
        scope: meta.scope.clone(),
        page: meta.page_name(),
        run_id: meta.run_id.clone(),
        kind: meta.kind,
        issues,
        tables: counts
            .into_iter()
            .map(|(t, rows)| TableCount {
                table: t.to_string(),
                rows,
            })
            .collect(),
        checkpoint: if meta.kind == PageKind::End {
            meta.checkpoint
        } else {
            None
        },
        pages_in_run: if meta.kind == PageKind::End {
            meta.pages_in_run
        } else {
            None
        },
        fingerprint: if meta.kind == PageKind::End {
            meta.fingerprint.clone()
        } else {
            None
        },
        notes: Default::default(),
        quarantined,
        source_bytes,
    }
}

/// Where [`search_rows`] puts the issues it transformed and those it quarantined.
struct Found<'a> {
    issues: &'a mut Vec<crate::batch::IssueVersion>,
    quarantined: &'a mut Vec<crate::batch::QuarantinedIssue>,
}

/// Rows of every issue of a parsed search response. An issue whose
/// changelog the search cut short is taken from `extra` (the issue fetched
/// alone, `issue:<id>`) when the page carries it; without it, or when it is
/// still cut, the issue is quarantined (a history is never loaded short).
fn search_rows(
    tape: &simd_json::tape::Tape<'_>,
    catalog: &Catalog,
    selection: &Selection,
    out: &mut Out,
    found: Found<'_>,
    extra: Vec<(String, Vec<u8>)>,
) -> std::result::Result<(), BadPage> {
    let Found {
        issues,
        quarantined,
    } = found;
    let mut alone: HashMap<i64, Vec<u8>> = extra
        .into_iter()
        .filter_map(|(what, doc)| {
            let id = what.strip_prefix("issue:")?.parse().ok()?;
            Some((id, doc))
        })
        .collect();
    let root = V::root(tape).ok_or_else(|| bad("the page body is empty"))?;
    let (mut issues_v, mut schema, mut names, mut errors) = (None, None, None, None);
    if let Some(obj) = root.obj() {
        for (k, v) in obj {
            match k {
                "issues" => issues_v = Some(v),
                "schema" => schema = Some(v),
                "names" => names = Some(v),
                "errorMessages" => errors = Some(v),
                _ => {}
            }
        }
    }
    let Some(list) = issues_v.and_then(|v| v.arr()) else {
        return Err(bad(match errors {
            Some(e) => format!(
                "the page holds a Jira error response, not a search result: {}",
                e.to_json()
            ),
            None => {
                "the page is not a /rest/api/2/search response (no \"issues\" array)".to_string()
            }
        }));
    };
    let typing = fields::Typing::new(catalog, selection, schema, names);
    let all: Vec<V<'_, '_>> = list.collect();
    let skip = superseded(&all);
    for (index, item) in all.iter().enumerate() {
        if skip.get(index).copied().unwrap_or(false) {
            continue;
        }
        let cut = issue::changelog_cut(*item);
        let r = match (cut, issue::issue_id(*item).and_then(|id| alone.remove(&id))) {
            (None, _) => issue::transform_issue(out, &typing, *item, index),
            (Some(_), Some(doc)) => transform_alone(out, catalog, selection, doc, index),
            (Some((have, total)), None) => Err(issue::cut_short(
                *item,
                index,
                format!(
                    "the search returned {have} of the issue's {total} changelog histories and the issue was not fetched alone (it was gone by then: HTTP 404); rerun to fetch it again"
                ),
            )),
        };
        match r {
            Ok(v) => issues.push(v),
            Err(q) => quarantined.push(q),
        }
    }
    Ok(())
}

/// Transforms an issue fetched alone (`GET /rest/api/2/issue/{id}`, which
/// carries the whole changelog); quarantined when its changelog is still cut.
fn transform_alone(
    out: &mut Out,
    catalog: &Catalog,
    selection: &Selection,
    mut doc: Vec<u8>,
    index: usize,
) -> std::result::Result<crate::batch::IssueVersion, crate::batch::QuarantinedIssue> {
    let unreadable = |e: String| crate::batch::QuarantinedIssue {
        key: format!("#{index}"),
        id: None,
        reason: format!(
            "the issue fetched alone for its whole changelog is not readable JSON ({e})"
        ),
    };
    let tape = simd_json::to_tape(&mut doc).map_err(|e| unreadable(e.to_string()))?;
    let item = V::root(&tape).ok_or_else(|| unreadable("empty".into()))?;
    if let Some((have, total)) = issue::changelog_cut(item) {
        return Err(issue::cut_short(
            item,
            index,
            format!(
                "Jira returned only {have} of the issue's {total} changelog histories, in the search and when the issue was fetched alone; not loaded, so no history is loaded short"
            ),
        ));
    }
    let typing = fields::Typing::new(catalog, selection, None, None);
    issue::transform_issue(out, &typing, item, index)
}

thread_local! {
    /// simd-json's buffers and tape, reused by every page a thread parses.
    static PARSER: std::cell::RefCell<Option<(simd_json::Buffers, simd_json::tape::Tape<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Parses `body` in place with this thread's reused simd-json buffers, using
/// the Vec's spare capacity as the parser's padding (no copy of the input),
/// and hands the tape to `f`.
fn with_tape<R>(
    body: &mut Vec<u8>,
    f: impl FnOnce(std::result::Result<&simd_json::tape::Tape<'_>, simd_json::Error>) -> R,
) -> R {
    let (mut buffers, tape) = PARSER.with(|p| p.borrow_mut().take()).unwrap_or_else(|| {
        (
            simd_json::Buffers::new(body.len()),
            simd_json::tape::Tape::null(),
        )
    });
    let len = body.len();
    body.resize(len + simd_json::INPUT_PADDING, 0);
    let mut tape = tape.reset();
    let parsed = simd_json::fill_tape_padded(body, len, &mut buffers, &mut tape);
    let r = f(parsed.map(|()| &tape));
    let tape = tape.reset();
    body.truncate(len);
    PARSER.with(|p| *p.borrow_mut() = Some((buffers, tape)));
    r
}

/// Hands a batch's row buffers back to this thread's transform for reuse
/// (optional: call it once the batch is written, on the thread that made it).
pub fn recycle(batch: Batch) {
    issue::recycle(batch.data);
}

/// Parses `body` exactly as [`transform_page`] does (reused buffers, in
/// place) and does nothing else; returns the tape's node count. A reference
/// point for benchmarks.
pub fn parse_only(body: &mut Vec<u8>) -> usize {
    with_tape(body, |t| t.map(|t| t.0.len()).unwrap_or(0))
}

/// Marks issues that appear more than once in a page and are not the version
/// to keep (latest `updated`; on a tie the last one), so a batch never holds
/// two rows with the same key.
fn superseded(issues: &[V<'_, '_>]) -> Vec<bool> {
    let ids: Vec<Option<i64>> = issues.iter().map(|i| issue::issue_id(*i)).collect();
    let mut first: HashMap<i64, usize> = HashMap::with_capacity(ids.len());
    let mut dup = false;
    for (i, id) in ids.iter().enumerate() {
        if let Some(id) = id
            && first.insert(*id, i).is_some()
        {
            dup = true;
        }
    }
    let mut skip = vec![false; issues.len()];
    if !dup {
        return skip;
    }
    let mut best: HashMap<i64, (usize, Option<chrono::DateTime<chrono::Utc>>)> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let Some(id) = id else { continue };
        let upd = issue::issue_updated(issues[i]);
        match best.get(id) {
            Some((_, u)) if *u > upd => skip[i] = true,
            Some((j, _)) => {
                skip[*j] = true;
                best.insert(*id, (i, upd));
            }
            None => {
                best.insert(*id, (i, upd));
            }
        }
    }
    skip
}

/// What `run --stage transform` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TransformReport {
    /// Pages that had no batch when the run started.
    pub pages_todo: u64,
    pub pages_transformed: u64,
    /// Pages that already had a batch (left alone).
    pub pages_already_done: u64,
    pub pages_quarantined: u64,
    pub issues: u64,
    pub issues_quarantined: u64,
    pub rows: u64,
    /// Decompressed JSON bytes transformed.
    pub source_bytes: u64,
    pub elapsed: Duration,
}

impl TransformReport {
    /// Exit code: 4 when anything was quarantined.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from_quarantined(self.pages_quarantined + self.issues_quarantined)
    }

    /// Adds the per-page figures of `o` (not its `pages_todo`, `elapsed`).
    fn add(&mut self, o: &TransformReport) {
        self.pages_transformed += o.pages_transformed;
        self.pages_quarantined += o.pages_quarantined;
        self.issues += o.issues;
        self.issues_quarantined += o.issues_quarantined;
        self.rows += o.rows;
        self.source_bytes += o.source_bytes;
    }
}

impl Report for TransformReport {
    fn exit_code(&self) -> ExitCode {
        TransformReport::exit_code(self)
    }
}

impl fmt::Display for TransformReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "transform: {} page(s) transformed ({} already done), {} issue(s), {} row(s), {:.1} MB of JSON in {:.2}s ({:.1} MB/s); quarantined: {} page(s), {} issue(s)",
            self.pages_transformed,
            self.pages_already_done,
            self.issues,
            self.rows,
            self.source_bytes as f64 / 1e6,
            secs,
            self.source_bytes as f64 / 1e6 / secs,
            self.pages_quarantined,
            self.issues_quarantined,
        )?;
        if self.pages_quarantined > 0 || self.issues_quarantined > 0 {
            write!(
                f,
                " (see staging/quarantine/ and `pipeline status`; fix the cause, then move pages back to staging/pages/ and rerun)"
            )?;
        }
        Ok(())
    }
}

/// Field catalogues by run id, loaded once per run.
#[derive(Default)]
pub(crate) struct CatalogCache {
    map: Mutex<HashMap<String, Arc<Catalog>>>,
}

impl CatalogCache {
    /// The catalogue of `run_id` (empty when the run staged none).
    pub fn get(&self, st: &Staging, run_id: &str) -> Result<Arc<Catalog>> {
        let mut map = self
            .map
            .lock()
            .map_err(|_| Error::Other("catalogue cache poisoned".into()))?;
        if let Some(c) = map.get(run_id) {
            return Ok(c.clone());
        }
        let path = st.catalog_path(run_id);
        let cat = match Catalog::load(&path)? {
            Some(c) => c,
            None => {
                tracing::warn!(
                    run_id,
                    path = %path.display(),
                    "no field catalogue for this run; custom fields are typed from their values"
                );
                Catalog::default()
            }
        };
        let cat = Arc::new(cat);
        map.insert(run_id.to_string(), cat.clone());
        Ok(cat)
    }
}

/// Removes half-built batch directories (`.tmp-*`) left by a killed run.
fn remove_leftovers(st: &Staging, scope: &str) -> Result<()> {
    let dir = st.batches_dir(scope);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with(".tmp-") {
            let p = e.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            r.map_err(Error::io(&p))?;
        }
    }
    Ok(())
}

/// `pipeline run --stage transform`: takes the schema's lock, then
/// [`run_stage`] over the selected scopes on `opts.threads` threads.
pub fn run(session: &Session, opts: &RunOptions) -> Result<TransformReport> {
    let _lock = session.lock()?;
    run_stage(session.config(), &opts.scopes, opts.threads)
}

/// Transforms every staged page without a batch in the given scopes (all
/// configured scopes when `scopes` is empty), on `threads` threads (0 = one
/// per core), with the [`worker::PageWorker`]; writes each batch atomically.
/// The caller holds the lock (the transform bench runs it without one).
pub fn run_stage(cfg: &Config, scopes: &[String], threads: usize) -> Result<TransformReport> {
    let started = Instant::now();
    let st = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
    let mut report = TransformReport::default();
    let mut todo: Vec<PageRef> = Vec::new();
    for scope in cfg.select_scopes(scopes)? {
        remove_leftovers(&st, &scope.name)?;
        let done: std::collections::HashSet<String> =
            st.list_batches(&scope.name)?.into_iter().collect();
        for page in st.list_pages(&scope.name)? {
            if done.contains(&page) {
                report.pages_already_done += 1;
            } else {
                todo.push(PageRef {
                    scope: scope.name.clone(),
                    page,
                });
            }
        }
    }
    report.pages_todo = todo.len() as u64;
    let pool = worker::pool(threads)?;
    let worker = worker::PageWorker::new(cfg, &st);
    let totals = Mutex::new(TransformReport::default());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    // One page per worker at a time: peak memory is threads × one page,
    // whatever the number of pages.
    pool.install(|| {
        todo.par_iter().with_max_len(1).for_each(|p| {
            if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                return;
            }
            match transform_to_disk(&worker, &st, p) {
                Ok(r) => {
                    if let Ok(mut t) = totals.lock() {
                        t.add(&r);
                    }
                }
                Err(e) => {
                    if let Ok(mut slot) = first_error.lock()
                        && slot.is_none()
                    {
                        *slot = Some(e);
                    }
                }
            }
        });
    });
    if let Some(e) = first_error.into_inner().ok().flatten() {
        return Err(e);
    }
    if let Ok(t) = totals.into_inner() {
        report.add(&t);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// One page through the worker, its batch written to `batches/`: the figures
/// of that one page.
fn transform_to_disk(
    worker: &worker::PageWorker,
    st: &Staging,
    p: &PageRef,
) -> Result<TransformReport> {
    let mut r = TransformReport::default();
    let job = match worker.prepare(p)? {
        worker::Prepared::Ready(job) => job,
        worker::Prepared::Quarantined => {
            r.pages_quarantined = 1;
            return Ok(r);
        }
        worker::Prepared::Archived => return Ok(r),
    };
    let Some(batch) = worker.transform(job)? else {
        r.pages_quarantined = 1;
        return Ok(r);
    };
    batch::write_batch(st, &batch)?;
    r.pages_transformed = 1;
    r.issues = batch.meta.issues.len() as u64;
    r.issues_quarantined = batch.meta.quarantined.len() as u64;
    r.rows = batch.total_rows();
    r.source_bytes = batch.meta.source_bytes;
    recycle(batch);
    Ok(r)
}

/// Replaces each `\uD800`–`\uDFFF` escape that is not half of a valid
/// surrogate pair with `\uFFFD` (same length, in place). Java — so Jira —
/// writes such lone halves (a string cut inside an emoji), and simd-json
/// refuses them, which would quarantine every issue of the page for one bad
/// character; U+FFFD keeps the rest of the text and the page.
fn replace_lone_surrogates(body: &mut [u8]) {
    let unit = |b: &[u8], i: usize| -> Option<u16> {
        if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
            return None;
        }
        let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut i = 0;
    while let Some(off) = body[i..].iter().position(|&b| b == b'\\') {
        i += off;
        match unit(body, i) {
            Some(0xD800..=0xDBFF) if matches!(unit(body, i + 6), Some(0xDC00..=0xDFFF)) => i += 12,
            Some(0xD800..=0xDFFF) => {
                body[i + 2..i + 6].copy_from_slice(b"FFFD");
                i += 6;
            }
            // Any other escape: skip it whole (`\\u` is a backslash, then u).
            _ => i += 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        let mut b =
            br#"{"a":"x\ud800y","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00\uD800"}"#.to_vec();
        replace_lone_surrogates(&mut b);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            r#"{"a":"x\uFFFDy","b":"\ud83d\ude00","c":"\\ud800","d":"\uFFFD\uFFFD"}"#
        );
    }

    fn meta(kind: PageKind) -> PageMeta {
        PageMeta {
            format: 1,
            kind,
            scope: "s".into(),
            run_id: "20240101T000000000Z".into(),
            mode: "backfill".into(),
            slice: 0,
            seq: 0,
            jql: String::new(),
            start_at: 0,
            max_results: 100,
            issue_count: 0,
            total: None,
            first_updated: None,
            last_updated: None,
            fetched_at: chrono::Utc::now(),
            request_id: None,
            http_status: 200,
            checkpoint: None,
            pages_in_run: None,
            fingerprint: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn bad_bodies_are_named() {
        let m = meta(PageKind::Search);
        let cat = Catalog::default();
        let sel = Selection::all();
        for (body, want) in [
            (&b""[..], "empty"),
            (b"<html><body>502 Bad Gateway</body></html>", "HTML"),
            (b"{\"issues\":[{\"id\":\"1\"", "not valid JSON"),
            (b"{\"errorMessages\":[\"no\"]}", "error response"),
            (b"{\"values\":[]}", "no \"issues\" array"),
            (b"[1,2]", "not a JSON object"),
        ] {
            let mut b = body.to_vec();
            let e = transform_page_with(&m, &mut b, &cat, &sel).unwrap_err();
            assert!(e.reason.contains(want), "{want}: {e}");
        }
    }

    #[test]
    fn duplicate_issue_in_page_keeps_latest() {
        let body = br#"{"issues":[
            {"id":"1","key":"A-1","fields":{"updated":"2024-01-02T00:00:00.000+0000","summary":"new","labels":["x"]}},
            {"id":"1","key":"A-1","fields":{"updated":"2024-01-01T00:00:00.000+0000","summary":"old","labels":["x"]}}
        ]}"#;
        let mut b = body.to_vec();
        let batch = transform_page_with(
            &meta(PageKind::Search),
            &mut b,
            &Catalog::default(),
            &Selection::all(),
        )
        .unwrap();
        assert_eq!(batch.meta.issues.len(), 1);
        assert_eq!(batch.row_count("issue"), 1);
        assert_eq!(batch.row_count("issue_label"), 1);
        let rows = crate::tables::decode_rows(batch.rows("issue"));
        assert_eq!(rows[0][9].as_deref(), Some("new"));
    }
}
