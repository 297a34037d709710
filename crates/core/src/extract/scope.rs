//! One scope's extract run: planning slices from `maxResults=0` counts,
//! running every slice under the client's global limit of requests in
//! flight, staging each page (and updating the resume state), draining a
//! crowded minute as its own bounded slices, and closing the run with the
//! End page that proposes the checkpoint.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use crossbeam_channel::Sender;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::state::{
    Mode, RunState, SEARCH_WINDOW, SliceState, StateStore, Step, WindowStep, advance, window_step,
};
use crate::error::{Error, JiraKind, Result};
use crate::jira::api::check_search;
use crate::jira::client::Response;
use crate::jira::jql::{DateField, Range, count_jql, floor_minute, search_jql};
use crate::jira::{JiraClient, SearchPage};
use crate::progress::StageCounters;
use crate::staging::{PageKind, PageMeta, PageRef, Staging, read_page};

/// Everything a scope's slices share.
pub(crate) struct ScopeCtx {
    pub client: JiraClient,
    pub staging: Staging,
    pub scope: String,
    /// The scope's project (its versions and components go in the End page).
    pub project: String,
    /// This run is a backfill because the scope's definition changed.
    pub scope_changed: bool,
    /// The instance's dimension lists, fetched once per extraction, that
    /// every End page carries ([`instance_dimensions`]).
    pub dimensions: Arc<Vec<(&'static str, bytes::Bytes)>>,
    pub base: String,
    pub tz: Tz,
    pub page_size: u32,
    pub concurrency: usize,
    /// Lowest instant slicing considers (the configured backfill start).
    pub domain_start: DateTime<Utc>,
    pub store: Arc<StateStore>,
    pub sink: Option<Sender<PageRef>>,
    pub progress: Arc<StageCounters>,
}

impl ScopeCtx {
    fn run_id(&self) -> String {
        self.store.snapshot().run_id
    }

    /// Issues a slice should hold at most: well inside the search window.
    fn target(&self) -> u64 {
        SEARCH_WINDOW
            .saturating_sub(2 * u64::from(self.page_size))
            .max(1)
            * 4
            / 5
    }

    async fn count(&self, ranges: &[Range]) -> Result<u64> {
        self.client
            .count(&count_jql(&self.base, ranges, self.tz))
            .await
    }
}

/// A piece of a range being planned.
#[derive(Debug, Clone, Copy)]
struct Piece {
    lo: Option<DateTime<Utc>>,
    hi: Option<DateTime<Utc>>,
    count: u64,
}

/// What [`plan_pieces`] splits: `[lo, hi)` of `field` under the `fixed`
/// ranges; `span` is where the issues are.
struct Extent<'a> {
    fixed: &'a [Range],
    field: DateField,
    lo: Option<DateTime<Utc>>,
    hi: Option<DateTime<Utc>>,
    span: (DateTime<Utc>, DateTime<Utc>),
}

/// Splits `[lo, hi)` of `field` (under the `fixed` ranges) into pieces,
/// learning counts with `maxResults=0` queries (each round's counts in
/// parallel), until every piece holds at most `target` issues and at least
/// `min_pieces` pieces are worth running in parallel. `span` is where the
/// issues are (it bounds open ends for the cut points).
async fn plan_pieces(
    ctx: &ScopeCtx,
    ext: Extent<'_>,
    total: u64,
    min_pieces: usize,
) -> Result<Vec<Piece>> {
    let Extent {
        fixed,
        field,
        lo,
        hi,
        span,
    } = ext;
    let target = ctx.target();
    let small = 4 * u64::from(ctx.page_size);
    let whole = Piece {
        lo,
        hi,
        count: total,
    };
    if total <= small.min(target) {
        return Ok(vec![whole]);
    }
    // Round 0: equal widths; later rounds: halve what is still too big.
    let first_n = min_pieces
        .max(2)
        .max((total / target.max(1)) as usize + 1)
        .min(64);
    let mut pieces = vec![whole];
    let mut plan: Vec<(usize, Vec<DateTime<Utc>>)> = vec![(0, cuts(&whole, first_n, span))];
    for _round in 0..40 {
        plan.retain(|(_, c)| !c.is_empty());
        if plan.is_empty() {
            break;
        }
        pieces = split_and_count(ctx, fixed, field, &pieces, &plan).await?;
        plan = next_cuts(&pieces, target, small, min_pieces, span);
    }
    // Pieces counted empty are kept: a count is only a snapshot, and an
    // empty slice costs one request.
    Ok(pieces)
}

/// Cutting phase: `n - 1` cut points at equal widths strictly inside the
/// piece (its open ends bounded by `span`), on whole minutes.
fn cuts(p: &Piece, n: usize, span: (DateTime<Utc>, DateTime<Utc>)) -> Vec<DateTime<Utc>> {
    let (a, b) = (
        p.lo.unwrap_or(span.0).max(span.0),
        p.hi.unwrap_or(span.1).min(span.1),
    );
    let mut out: Vec<DateTime<Utc>> = Vec::new();
    if b - a < Duration::minutes(2) {
        return out;
    }
    for k in 1..n {
        let c = floor_minute(a + (b - a) * k as i32 / n as i32);
        if c > a && c < b && out.last().is_none_or(|l| c > *l) {
            out.push(c);
        }
    }
    out
}

/// Cutting phase: the piece split at `points` into uncounted pieces.
fn split_at(p: &Piece, points: &[DateTime<Utc>]) -> Vec<Piece> {
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut from = p.lo;
    for c in points {
        out.push(Piece {
            lo: from,
            hi: Some(*c),
            count: 0,
        });
        from = Some(*c);
    }
    out.push(Piece {
        lo: from,
        hi: p.hi,
        count: 0,
    });
    out
}

/// Counting phase of a planning round: the pieces `plan` names split at
/// its cut points, the new pieces counted in parallel, the others kept.
async fn split_and_count(
    ctx: &ScopeCtx,
    fixed: &[Range],
    field: DateField,
    pieces: &[Piece],
    plan: &[(usize, Vec<DateTime<Utc>>)],
) -> Result<Vec<Piece>> {
    let mut next: Vec<Piece> = Vec::new();
    let mut todo: Vec<Piece> = Vec::new();
    let mut slots: Vec<usize> = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        match plan.iter().find(|(j, _)| *j == i) {
            Some((_, c)) => {
                for q in split_at(p, c) {
                    slots.push(next.len());
                    next.push(q);
                    todo.push(q);
                }
            }
            None => next.push(*p),
        }
    }
    let counts = futures::future::try_join_all(todo.iter().map(|q| {
        let mut ranges = fixed.to_vec();
        ranges.extend(range_of(field, q));
        async move { ctx.count(&ranges).await }
    }))
    .await?;
    for (slot, c) in slots.into_iter().zip(counts) {
        next[slot].count = c;
    }
    Ok(next)
}

/// Choosing phase of a planning round: the pieces to halve next, with their
/// cut points.
fn next_cuts(
    pieces: &[Piece],
    target: u64,
    small: u64,
    min_pieces: usize,
    span: (DateTime<Utc>, DateTime<Utc>),
) -> Vec<(usize, Vec<DateTime<Utc>>)> {
    // Split what is too big for the window; then, while there are too
    // few slices worth running in parallel, the largest ones.
    let busy = pieces.iter().filter(|p| p.count > 0).count();
    let mut order: Vec<usize> = (0..pieces.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(pieces[i].count));
    let mut more = min_pieces.saturating_sub(busy);
    let mut plan = Vec::new();
    for i in order {
        let p = &pieces[i];
        let split = if p.count > target {
            true
        } else if more > 0 && p.count > small {
            more -= 1;
            true
        } else {
            false
        };
        if split {
            plan.push((i, cuts(p, 2, span)));
        }
    }
    plan
}

/// The earliest (or latest) value of `field` among the issues matching `ranges`.
async fn edge_value(
    ctx: &ScopeCtx,
    ranges: &[Range],
    field: DateField,
    latest: bool,
) -> Result<Option<DateTime<Utc>>> {
    let jql = if latest {
        format!(
            "{} ORDER BY {} DESC, key DESC",
            count_jql(&ctx.base, ranges, ctx.tz),
            field.name()
        )
    } else {
        search_jql(&ctx.base, ranges, field, ctx.tz)
    };
    let page = ctx.client.search(&jql, 0, 1).await?;
    Ok(page.issues.first().map(|i| match field {
        DateField::Created => i.created,
        DateField::Updated => i.updated,
    }))
}

/// Where the issues matching `ranges` lie on `field`, for cutting slices:
/// from the earliest to just after the latest (both asked at once with the count).
async fn count_and_span(
    ctx: &ScopeCtx,
    ranges: &[Range],
    field: DateField,
    fallback: (DateTime<Utc>, DateTime<Utc>),
) -> Result<(u64, (DateTime<Utc>, DateTime<Utc>))> {
    let (total, first, last) = tokio::try_join!(
        ctx.count(ranges),
        edge_value(ctx, ranges, field, false),
        edge_value(ctx, ranges, field, true)
    )?;
    let a = first.map_or(fallback.0, floor_minute);
    let b = last.map_or(fallback.1, |l| floor_minute(l) + Duration::minutes(1));
    Ok((total, if b > a { (a, b) } else { fallback }))
}

fn range_of(field: DateField, p: &Piece) -> Option<Range> {
    (p.lo.is_some() || p.hi.is_some()).then_some(Range {
        field,
        lo: p.lo,
        hi: p.hi,
    })
}

/// Plans the run's slices (counts only; nothing staged) and records them.
pub(crate) async fn plan_run(ctx: &ScopeCtx) -> Result<()> {
    let slices = plan_slices(ctx).await?;
    let n = slices.len();
    let expected: u64 = slices.iter().map(|s| s.estimate).sum();
    let store = ctx.store.clone();
    blocking(move || {
        store.update(|s| {
            s.slices = slices;
            s.planned = true;
        })
    })
    .await??;
    ctx.progress
        .expected_issues
        .store(expected, Ordering::Relaxed);
    tracing::info!(scope = %ctx.scope, slices = n, expected, "planned");
    Ok(())
}

/// The slices of the run in `ctx.store` (its mode, `from` and start
/// instant), from `maxResults=0` counts; writes nothing (also `pipeline plan`).
pub(crate) async fn plan_slices(ctx: &ScopeCtx) -> Result<Vec<SliceState>> {
    let st = ctx.store.snapshot();
    let end = st.started_at + Duration::minutes(1);
    let mut slices = match st.mode {
        Mode::Backfill => backfill_slices(ctx, st.from, end).await?,
        Mode::Incremental => incremental_slices(ctx, st.from, end).await?,
    };
    if slices.is_empty() {
        // Nothing matched when counting: one open slice still checks, so an
        // issue that appeared meanwhile is not missed.
        slices.push(open_slice(st.mode, st.from));
    }
    Ok(slices)
}

/// Backfill planning: slices on `created` from `from`, cut where the issues are.
async fn backfill_slices(
    ctx: &ScopeCtx,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<SliceState>> {
    let small = 4 * u64::from(ctx.page_size);
    let mut slices = Vec::new();
    let lo = Some(floor_minute(from));
    let r = [Range {
        field: DateField::Created,
        lo,
        hi: None,
    }];
    // Cut where the issues are, not from a backfill start decades back.
    let (total, span) =
        count_and_span(ctx, &r, DateField::Created, (floor_minute(from), end)).await?;
    let pieces = if total <= small {
        vec![Piece {
            lo,
            hi: None,
            count: total,
        }]
    } else {
        let span = (span.0.max(floor_minute(from)), span.1);
        let ext = Extent {
            fixed: &[],
            field: DateField::Created,
            lo,
            hi: None,
            span,
        };
        plan_pieces(ctx, ext, total, 2 * ctx.concurrency).await?
    };
    for (i, p) in pieces.iter().enumerate() {
        let ranges = range_of(DateField::Created, p).into_iter().collect();
        slices.push(SliceState::new(
            i as u32,
            ranges,
            DateField::Created,
            p.count,
            0,
        ));
    }
    Ok(slices)
}

/// Incremental planning: slices of the issues updated since `from`, cut on
/// `created`, read in `updated` order.
async fn incremental_slices(
    ctx: &ScopeCtx,
    from: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<SliceState>> {
    let small = 4 * u64::from(ctx.page_size);
    let mut slices = Vec::new();
    let fixed = vec![Range {
        field: DateField::Updated,
        lo: Some(floor_minute(from)),
        hi: None,
    }];
    let (total, span) =
        count_and_span(ctx, &fixed, DateField::Created, (ctx.domain_start, end)).await?;
    let pieces = if total <= small {
        vec![Piece {
            lo: None,
            hi: None,
            count: total,
        }]
    } else {
        let ext = Extent {
            fixed: &fixed,
            field: DateField::Created,
            lo: None,
            hi: None,
            span,
        };
        plan_pieces(ctx, ext, total, 2 * ctx.concurrency).await?
    };
    for (i, p) in pieces.iter().enumerate() {
        let mut ranges = fixed.clone();
        ranges.extend(range_of(DateField::Created, p));
        slices.push(SliceState::new(
            i as u32,
            ranges,
            DateField::Updated,
            p.count,
            0,
        ));
    }
    Ok(slices)
}

/// Fallback planning: the one open slice of a run whose counts matched nothing.
fn open_slice(mode: Mode, from: DateTime<Utc>) -> SliceState {
    let ranges = match mode {
        Mode::Backfill => vec![Range {
            field: DateField::Created,
            lo: Some(floor_minute(from)),
            hi: None,
        }],
        Mode::Incremental => vec![Range {
            field: DateField::Updated,
            lo: Some(floor_minute(from)),
            hi: None,
        }],
    };
    let order = match mode {
        Mode::Backfill => DateField::Created,
        Mode::Incremental => DateField::Updated,
    };
    SliceState::new(0, ranges, order, 0, 0)
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Other(format!("a staging task failed: {e}")))
}

/// Slices of one scope that page at once. Every running slice holds its set
/// of seen issue versions (up to a slice's worth), a blocking thread and,
/// while the next stage is busy, a page it cannot hand on yet; a large
/// backfill plans over a hundred slices, so running them all at once made the
/// extractor's memory grow with the data size (306 MB peak RSS at a million
/// issues). Twice the request limit keeps every request slot busy: a slice
/// stages its page before it asks for the next one.
pub(crate) fn max_active_slices(concurrency: usize) -> usize {
    concurrency.max(1) * 2
}

/// Runs every unfinished slice of the scope's run, at most
/// [`max_active_slices`] at once, starting the slices that drain crowded
/// minutes as they appear.
pub(crate) async fn run_slices(ctx: Arc<ScopeCtx>) -> Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
    for s in ctx.store.snapshot().slices.iter().filter(|s| !s.done) {
        let _ = tx.send(s.id);
    }
    let limit = max_active_slices(ctx.concurrency);
    let scope = ctx.scope.clone();
    run_bounded(limit, tx, &mut rx, &scope, |id, spawn| {
        run_slice(ctx.clone(), id, spawn)
    })
    .await
}

/// Runs `task` for every id on `rx` — those queued before the call and those
/// the tasks send meanwhile through the sender they are given — in the order
/// received, at most `limit` at once, until none runs and none waits. The
/// first error aborts the running tasks and is returned.
async fn run_bounded<F, Fut>(
    limit: usize,
    tx: mpsc::UnboundedSender<u32>,
    rx: &mut mpsc::UnboundedReceiver<u32>,
    scope: &str,
    mut task: F,
) -> Result<()>
where
    F: FnMut(u32, mpsc::UnboundedSender<u32>) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let limit = limit.max(1);
    let mut waiting = std::collections::VecDeque::new();
    let mut set: JoinSet<Result<()>> = JoinSet::new();
    loop {
        while let Ok(id) = rx.try_recv() {
            waiting.push_back(id);
        }
        while set.len() < limit {
            let Some(id) = waiting.pop_front() else { break };
            set.spawn(task(id, tx.clone()));
        }
        if set.is_empty() {
            // Nothing runs, so nothing can queue more: every id is done.
            return Ok(());
        }
        tokio::select! {
            Some(id) = rx.recv() => waiting.push_back(id),
            joined = set.join_next() => {
                match joined {
                    Some(Ok(Ok(()))) | None => {}
                    Some(Ok(Err(e))) => {
                        set.abort_all();
                        return Err(e);
                    }
                    Some(Err(e)) => {
                        set.abort_all();
                        return Err(Error::Other(format!("scope {scope}: a slice task failed: {e}")));
                    }
                }
            }
        }
    }
}

/// A page already staged for (slice, seq) by a run that was killed before
/// recording it: used instead of fetching it again.
fn staged_page(ctx: &ScopeCtx, name: &str, jql: &str, start_at: u64) -> Option<(SearchPage, bool)> {
    let live = ctx.staging.page_path(&ctx.scope, name);
    let archived = ctx
        .staging
        .archive_dir(&ctx.scope)
        .join(format!("{name}{}", crate::staging::PAGE_EXT));
    let (path, in_pages) = if live.is_file() {
        (live, true)
    } else if archived.is_file() {
        (archived, false)
    } else {
        return None;
    };
    let (meta, body) = read_page(&path).ok()?;
    if meta.kind != PageKind::Search || meta.jql != jql || meta.start_at != start_at {
        return None;
    }
    let resp = Response {
        status: meta.http_status,
        body: body.into(),
        headers: Default::default(),
        fetched_at: meta.fetched_at,
    };
    let mut page = check_search(resp, true).ok()?;
    page.request_id = meta.request_id;
    Some((page, in_pages))
}

async fn run_slice(ctx: Arc<ScopeCtx>, id: u32, spawn: mpsc::UnboundedSender<u32>) -> Result<()> {
    let run_id = ctx.run_id();
    let mode = ctx.store.snapshot().mode;
    let mut seen = std::collections::HashSet::new();
    let mut idle = 0u64;
    let idle_limit = SEARCH_WINDOW / u64::from(ctx.page_size.max(1)) + 20;
    loop {
        if ctx.client.stopped() {
            return Err(Error::Interrupted(format!(
                "scope {}: extraction stopped; rerun to continue where it stopped",
                ctx.scope
            )));
        }
        let Some(s) = ctx.store.slice(id) else {
            return Ok(());
        };
        if s.done {
            return Ok(());
        }
        if !window_allows_fetch(&ctx, &s, id, &spawn).await? {
            continue;
        }
        let jql = search_jql(&ctx.base, &s.query_ranges(), s.order, ctx.tz);
        let name = crate::staging::page_name(&run_id, s.id, s.next_seq);
        let (page, already) = fetch_page(&ctx, &name, &jql, &s).await?;
        // A guard against a server whose order is not stable: a restarted
        // query may re-read up to a window of issues, but never more.
        let fresh = page
            .issues
            .iter()
            .filter(|i| seen.insert((i.id, i.updated.timestamp_millis())))
            .count();
        idle = if fresh == 0 { idle + 1 } else { 0 };
        if idle > idle_limit {
            return Err(Error::jira(
                JiraKind::Unusable,
                format!(
                    "scope {}: {idle} pages in a row brought no issue not seen before (JQL: {jql}); Jira's result order is not stable — report this with the staged pages",
                    ctx.scope
                ),
            ));
        }
        let ctx2 = ctx.clone();
        let run_id2 = run_id.clone();
        debug_assert_eq!(s.id, id);
        let fetched = Fetched { jql, page, already };
        let step = blocking(move || stage_and_record(&ctx2, &run_id2, mode, &s, fetched)).await??;
        if step == Step::Done {
            tracing::debug!(scope = %ctx.scope, slice = id, "slice complete");
            return Ok(());
        }
    }
}

/// Window phase of a slice step: true when the slice can fetch its next
/// page; false when its query was moved on first (restarted past a minute,
/// or a crowded minute handed to slices of its own) and the slice is read again.
async fn window_allows_fetch(
    ctx: &ScopeCtx,
    s: &SliceState,
    id: u32,
    spawn: &mpsc::UnboundedSender<u32>,
) -> Result<bool> {
    match window_step(s, ctx.page_size) {
        WindowStep::Fetch => Ok(true),
        WindowStep::Restart(m) => {
            let crowded = ctx.count(&s.minute_ranges(m)).await?;
            if crowded + 2 * u64::from(ctx.page_size) > SEARCH_WINDOW {
                drain_crowded_minute(ctx, s, m, crowded, spawn).await?;
            } else {
                let store = ctx.store.clone();
                blocking(move || {
                    store.update(|st| {
                        if let Some(x) = st.slice_mut(id) {
                            x.lo = Some(m);
                            x.start_at = 0;
                            x.last = None;
                            x.restarts += 1;
                        }
                    })
                })
                .await??;
            }
            Ok(false)
        }
        WindowStep::Crowded(m) => {
            let crowded = ctx.count(&s.minute_ranges(m)).await?;
            drain_crowded_minute(ctx, s, m, crowded, spawn).await?;
            Ok(false)
        }
    }
}

/// Fetch phase of a slice step: the page staged before an interruption
/// (and whether it is still in pages/), else the page asked from Jira.
async fn fetch_page(
    ctx: &ScopeCtx,
    name: &str,
    jql: &str,
    s: &SliceState,
) -> Result<(SearchPage, Option<bool>)> {
    Ok(match staged_page(ctx, name, jql, s.start_at) {
        Some((p, in_pages)) => {
            tracing::debug!(scope = %ctx.scope, page = %name, "resuming from a page staged before the interruption");
            (p, Some(in_pages))
        }
        None => {
            let mut page = ctx.client.search(jql, s.start_at, ctx.page_size).await?;
            page.extra = refetch_cut_changelogs(ctx, &page).await?;
            (page, None)
        }
    })
}

/// The issues of `page` whose changelog the search cut short, each fetched
/// alone (`GET /rest/api/2/issue/{id}?expand=changelog`, which returns the
/// whole changelog) to be staged with the page; transform uses them instead
/// of the cut versions, and quarantines an issue still cut (or gone: 404).
async fn refetch_cut_changelogs(
    ctx: &ScopeCtx,
    page: &SearchPage,
) -> Result<Vec<(String, bytes::Bytes)>> {
    let cut: Vec<&crate::jira::api::IssueHead> = page
        .issues
        .iter()
        .filter(|i| i.changelog_cut.is_some())
        .collect();
    let mut out = Vec::new();
    for head in cut {
        let (have, total) = head.changelog_cut.unwrap_or_default();
        tracing::info!(
            scope = %ctx.scope, issue = %head.key, have, total,
            "the search cut the issue's changelog short; fetching the issue alone"
        );
        ctx.progress.refetched.fetch_add(1, Ordering::Relaxed);
        let doc = ctx
            .client
            .issue_alone(
                head.id,
                crate::jira::api::SEARCH_FIELDS,
                crate::jira::api::SEARCH_EXPAND,
            )
            .await?;
        if let Some(doc) = doc {
            out.push((format!("issue:{}", head.id), doc));
        }
    }
    Ok(out)
}

/// A page fetched (or found staged) for a slice, with its query.
struct Fetched {
    jql: String,
    page: SearchPage,
    /// `None`: fetched now; `Some(in_pages)`: staged by an earlier run.
    already: Option<bool>,
}

/// Stages a fetched page (unless it only repeats the last issue), records the
/// slice's new position, then hands the page to the next stage.
fn stage_and_record(
    ctx: &ScopeCtx,
    run_id: &str,
    mode: Mode,
    before: &SliceState,
    fetched: Fetched,
) -> Result<Step> {
    let Fetched { jql, page, already } = fetched;
    let jql = jql.as_str();
    let id = before.id;
    let mut probe = before.clone();
    let step = advance(&mut probe, before.start_at, &page.issues);
    let stage = step != Step::Done && !page.issues.is_empty();
    let mut sent = None;
    if stage {
        let meta = PageMeta {
            format: 1,
            kind: PageKind::Search,
            scope: ctx.scope.clone(),
            run_id: run_id.to_string(),
            mode: mode.as_str().into(),
            slice: id,
            seq: before.next_seq,
            jql: jql.to_string(),
            start_at: before.start_at,
            max_results: ctx.page_size,
            issue_count: page.issues.len() as u32,
            total: page.total,
            first_updated: page.issues.first().map(|i| i.updated_raw.clone()),
            last_updated: page.issues.last().map(|i| i.updated_raw.clone()),
            fetched_at: page.fetched_at,
            request_id: page.request_id.clone(),
            http_status: page.status,
            checkpoint: None,
            pages_in_run: None,
            fingerprint: None,
            extra: Vec::new(),
        };
        if already.is_none() {
            write_with_extra(&ctx.staging, meta.clone(), &page)?;
        }
        if already != Some(false) {
            sent = Some(PageRef {
                scope: ctx.scope.clone(),
                page: meta.page_name(),
            });
        }
    }
    let n = page.issues.len() as u64;
    ctx.store.update(|st| {
        if let Some(x) = st.slice_mut(id) {
            let seq = x.next_seq;
            *x = probe.clone();
            x.next_seq = seq;
            if stage {
                x.next_seq += 1;
                x.pages += 1;
                x.issues += n;
            }
        }
    })?;
    if stage {
        ctx.progress.add(1, n, 0, page.body.len() as u64);
    }
    // The page is staged and recorded: free its body before waiting for room
    // in the channel, which can take long when load is the slowest stage.
    drop(page);
    if let Some(r) = sent {
        send(ctx, r)?;
    }
    Ok(step)
}

/// Stages a fetched search page with the issues fetched alone appended.
fn write_with_extra(staging: &Staging, mut meta: PageMeta, page: &SearchPage) -> Result<()> {
    if page.extra.is_empty() {
        staging.write_page(&meta, &page.body)?;
        return Ok(());
    }
    let mut body = page.body.to_vec();
    for (what, doc) in &page.extra {
        meta.extra.push(crate::staging::ExtraDoc {
            what: what.clone(),
            bytes: doc.len() as u64,
        });
        body.extend_from_slice(doc);
    }
    staging.write_page(&meta, &body)?;
    Ok(())
}

/// Hands a page to the next stage; waits while the channel is full, but
/// gives up when the stop flag is raised or the receiver is gone.
fn send(ctx: &ScopeCtx, r: PageRef) -> Result<()> {
    let Some(tx) = &ctx.sink else { return Ok(()) };
    let mut r = r;
    loop {
        match tx.send_timeout(r, std::time::Duration::from_millis(200)) {
            Ok(()) => return Ok(()),
            Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => {
                if ctx.client.stopped() {
                    return Err(Error::Interrupted(format!(
                        "scope {}: stopped while handing pages to transform",
                        ctx.scope
                    )));
                }
                r = back;
            }
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                return Err(Error::Downstream(format!(
                    "scope {}: the transform stage stopped taking pages; the pages stay staged for a rerun",
                    ctx.scope
                )));
            }
        }
    }
}

/// More issues share minute `m` of the slice's order field than the search
/// window can page: they get their own slices, split on the other date
/// field, and the slice goes on after that minute.
async fn drain_crowded_minute(
    ctx: &ScopeCtx,
    s: &SliceState,
    m: DateTime<Utc>,
    count: u64,
    spawn: &mpsc::UnboundedSender<u32>,
) -> Result<()> {
    if s.depth > 0 {
        return Err(Error::jira(
            JiraKind::Unusable,
            format!(
                "scope {}: more than {} issues share one {} minute ({m}) and one {} minute too; they cannot be paged inside Jira's 10,000-result search window — narrow the scope with issue_types or jql",
                ctx.scope,
                SEARCH_WINDOW,
                s.order.other().name(),
                s.order.name()
            ),
        ));
    }
    let other = s.order.other();
    let fixed = s.minute_ranges(m);
    let fixed_no_other: Vec<Range> = fixed.iter().filter(|r| r.field != other).copied().collect();
    let existing = fixed.iter().find(|r| r.field == other).copied();
    let (lo, hi) = existing.map_or((None, None), |r| (r.lo, r.hi));
    let started = ctx.store.snapshot().started_at;
    // created <= updated: the other field's useful span is bounded by the minute.
    let span = match other {
        DateField::Created => (ctx.domain_start.min(m), m + Duration::minutes(1)),
        DateField::Updated => (m, started + Duration::minutes(1)),
    };
    tracing::info!(
        scope = %ctx.scope,
        minute = %m,
        field = s.order.name(),
        issues = count,
        "more issues share one minute than the search window holds; draining that minute by {}",
        other.name()
    );
    let ext = Extent {
        fixed: &fixed_no_other,
        field: other,
        lo,
        hi,
        span,
    };
    let pieces = plan_pieces(ctx, ext, count, ctx.concurrency).await?;
    let id = s.id;
    let store = ctx.store.clone();
    let new_ids = blocking(move || {
        store.update(|st| {
            let first = st.next_slice_id();
            let mut ids = Vec::new();
            for (next, p) in (first..).zip(pieces.iter()) {
                let mut ranges = fixed_no_other.clone();
                ranges.extend(range_of(other, p));
                st.slices
                    .push(SliceState::new(next, ranges, other, p.count, 1));
                ids.push(next);
            }
            if let Some(x) = st.slice_mut(id) {
                x.lo = Some(m + Duration::minutes(1));
                x.start_at = 0;
                x.last = None;
                x.restarts += 1;
            }
            ids
        })
    })
    .await??;
    ctx.progress
        .expected_issues
        .fetch_add(count, Ordering::Relaxed);
    for i in new_ids {
        let _ = spawn.send(i);
    }
    Ok(())
}

/// Requests each End page makes for its dimensions: the project's versions
/// and components (the instance-wide lists are fetched once per extraction,
/// [`instance_dimensions`]).
pub(crate) const END_PAGE_REQUESTS: u64 = 2;

/// Requests [`instance_dimensions`] makes (the other two lists come with the
/// scope check).
pub(crate) const INSTANCE_DIMENSION_REQUESTS: u64 = 3;

/// The instance's dimension lists every End page carries, by the name
/// transform knows them by (raw bodies): statuses, priorities and
/// resolutions fetched here, issue types and projects as the scope check
/// fetched them.
pub(crate) async fn instance_dimensions(
    client: &JiraClient,
    known: &crate::insight::check::Known,
) -> Result<Vec<(&'static str, bytes::Bytes)>> {
    let mut out = Vec::with_capacity(5);
    for (what, path) in [
        ("statuses", "/rest/api/2/status"),
        ("priorities", "/rest/api/2/priority"),
        ("resolutions", "/rest/api/2/resolution"),
    ] {
        out.push((what, client.json_list(path).await?));
    }
    out.push(("issuetypes", known.issuetype_body.clone()));
    out.push(("projects", known.project_body.clone()));
    Ok(out)
}

/// The dimensions the End page carries: the project's current versions and
/// components, and the instance's lists ([`ScopeCtx::dimensions`]).
async fn project_dimensions(ctx: &ScopeCtx) -> Result<(Vec<crate::staging::ExtraDoc>, Vec<u8>)> {
    let mut docs = Vec::new();
    let mut body = Vec::new();
    let mut push = |what: String, doc: &[u8]| {
        docs.push(crate::staging::ExtraDoc {
            what,
            bytes: doc.len() as u64,
        });
        body.extend_from_slice(doc);
    };
    for what in ["versions", "components"] {
        let doc = ctx.client.project_list(&ctx.project, what).await?;
        push(format!("{what}:{}", ctx.project), &doc);
    }
    for (what, doc) in ctx.dimensions.iter() {
        push(what.to_string(), doc);
    }
    Ok((docs, body))
}

/// Stages the End page of a finished run (with the project's current
/// versions and components) and marks the run finished.
pub(crate) async fn finish_run(ctx: &ScopeCtx) -> Result<RunState> {
    let store = ctx.store.clone();
    let staging = ctx.staging.clone();
    let scope = ctx.scope.clone();
    let (extra, body) = project_dimensions(ctx).await?;
    let (st, name) = blocking(move || -> Result<(RunState, String)> {
        let st = store.snapshot();
        let meta = PageMeta {
            format: 1,
            kind: PageKind::End,
            scope: scope.clone(),
            run_id: st.run_id.clone(),
            mode: st.mode.as_str().into(),
            slice: 0,
            seq: 0,
            jql: st.base_jql.clone(),
            start_at: 0,
            max_results: 0,
            issue_count: 0,
            total: None,
            first_updated: None,
            last_updated: None,
            fetched_at: Utc::now(),
            request_id: None,
            http_status: 200,
            checkpoint: Some(st.started_at),
            pages_in_run: Some(st.pages()),
            fingerprint: st.fingerprint.clone(),
            extra,
        };
        staging.write_page(&meta, &body)?;
        store.update(|s| s.finished = true)?;
        Ok((store.snapshot(), meta.page_name()))
    })
    .await??;
    send(
        ctx,
        PageRef {
            scope: ctx.scope.clone(),
            page: name,
        },
    )?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Probe {
        running: AtomicUsize,
        most: AtomicUsize,
        ran: Mutex<Vec<u32>>,
    }

    async fn work(p: Arc<Probe>, id: u32, spawn: mpsc::UnboundedSender<u32>) -> Result<()> {
        let now = p.running.fetch_add(1, Ordering::SeqCst) + 1;
        p.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        // Slice 3 finds a crowded minute: two more slices to drain it.
        if id == 3 {
            let _ = spawn.send(100);
            let _ = spawn.send(101);
        }
        p.ran.lock().unwrap().push(id);
        p.running.fetch_sub(1, Ordering::SeqCst);
        if id == 7 {
            return Err(Error::jira(JiraKind::Server, "slice 7 failed"));
        }
        Ok(())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn slices_run_at_most_the_limit_at_once_and_all_of_them() {
        let p = Arc::new(Probe::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        for id in (0..40).filter(|&i| i != 7) {
            tx.send(id).unwrap();
        }
        let p2 = p.clone();
        run_bounded(4, tx, &mut rx, "t", move |id, spawn| {
            work(p2.clone(), id, spawn)
        })
        .await
        .unwrap();
        assert_eq!(
            p.most.load(Ordering::SeqCst),
            4,
            "never more than the limit"
        );
        let mut ran = p.ran.lock().unwrap().clone();
        ran.sort_unstable();
        let mut want: Vec<u32> = (0..40).filter(|&i| i != 7).chain([100, 101]).collect();
        want.sort_unstable();
        assert_eq!(ran, want, "every slice ran once, the spawned ones too");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_first_failing_slice_stops_the_others() {
        let p = Arc::new(Probe::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        for id in 0..40 {
            tx.send(id).unwrap();
        }
        let p2 = p.clone();
        let err = run_bounded(2, tx, &mut rx, "t", move |id, spawn| {
            work(p2.clone(), id, spawn)
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("slice 7 failed"), "{err}");
        assert!(
            p.ran.lock().unwrap().len() < 12,
            "the slices queued behind the failure never start"
        );
    }

    #[test]
    fn the_limit_keeps_every_request_slot_busy() {
        assert_eq!(max_active_slices(8), 16);
        assert_eq!(max_active_slices(0), 2);
    }
}
