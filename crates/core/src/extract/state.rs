//! Resume state of a scope's extract run, in `staging/state/<scope>.json`,
//! rewritten atomically after every staged page: the run (id, mode, the
//! instant it started = its proposed checkpoint) and, per slice, where its
//! paging stands. A rerun after `kill -9` continues every unfinished slice
//! from its last staged page; a finished run is never redone.
//!
//! The paging rules themselves are the pure functions [`advance`] and
//! [`window_step`], unit-tested here without any HTTP.

use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jira::IssueHead;
use crate::jira::jql::{DateField, Range, floor_minute};

/// Jira DC refuses `startAt + maxResults > 10000`.
pub(crate) const SEARCH_WINDOW: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Backfill,
    Incremental,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Backfill => "backfill",
            Mode::Incremental => "incremental",
        }
    }
}

/// The last issue of the last page a slice consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Last {
    pub id: u64,
    pub key: String,
    /// The smallest value of the slice's order field on the page this issue
    /// ended. Jira orders by its search index but renders live data, and the
    /// index may lag: an issue's rendered value can be newer than the one it
    /// was sorted by, so the page's minimum (not the last issue's value) is
    /// the safe point to restart the query from.
    pub sort: DateTime<Utc>,
}

/// One independently paged query of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceState {
    pub id: u32,
    /// Fixed constraints of the slice.
    pub ranges: Vec<Range>,
    /// The field the slice is ordered by (then `key`).
    pub order: DateField,
    /// Restart point: the query asks `order >= lo` on top of `ranges`.
    pub lo: Option<DateTime<Utc>>,
    /// Next `startAt` (the index of `last`, which the next page must repeat).
    pub start_at: u64,
    pub last: Option<Last>,
    /// Sequence number of the next page to stage.
    pub next_seq: u32,
    /// Search pages staged by this slice.
    pub pages: u64,
    /// Issues in those pages (with repeats).
    pub issues: u64,
    /// Issues expected from planning counts (for progress only).
    pub estimate: u64,
    /// 0 for planned slices, 1 for the slices that drain one crowded minute.
    pub depth: u8,
    /// Times the query was restarted (result shifted, or the window was full).
    #[serde(default)]
    pub restarts: u32,
    pub done: bool,
}

impl SliceState {
    pub fn new(id: u32, ranges: Vec<Range>, order: DateField, estimate: u64, depth: u8) -> Self {
        SliceState {
            id,
            ranges,
            order,
            lo: None,
            start_at: 0,
            last: None,
            next_seq: 0,
            pages: 0,
            issues: 0,
            estimate,
            depth,
            restarts: 0,
            done: false,
        }
    }

    /// The lower bound the query puts on the order field.
    pub(crate) fn effective_lo(&self) -> Option<DateTime<Utc>> {
        let fixed = self
            .ranges
            .iter()
            .filter(|r| r.field == self.order)
            .filter_map(|r| r.lo)
            .max();
        match (fixed, self.lo) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The ranges the next query uses: the fixed ones, with the restart point.
    pub(crate) fn query_ranges(&self) -> Vec<Range> {
        let mut out = self.ranges.clone();
        if let Some(lo) = self.lo {
            match out.iter_mut().find(|r| r.field == self.order) {
                Some(r) => r.lo = Some(r.lo.map_or(lo, |x| x.max(lo))),
                None => out.push(Range {
                    field: self.order,
                    lo: Some(lo),
                    hi: None,
                }),
            }
        }
        out
    }

    /// The slice's ranges narrowed to one minute of its order field.
    pub(crate) fn minute_ranges(&self, m: DateTime<Utc>) -> Vec<Range> {
        let mut out: Vec<Range> = self
            .ranges
            .iter()
            .filter(|r| r.field != self.order)
            .copied()
            .collect();
        out.push(Range {
            field: self.order,
            lo: Some(m),
            hi: Some(m + Duration::minutes(1)),
        });
        out
    }
}

/// The state of one scope's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub format: u32,
    pub scope: String,
    pub run_id: String,
    pub mode: Mode,
    /// When the run started (before its first search): the checkpoint it proposes.
    pub started_at: DateTime<Utc>,
    /// Backfill: the configured start; incremental: checkpoint − safety window.
    pub from: DateTime<Utc>,
    /// The scope's JQL clause when the run started (a changed scope starts afresh).
    pub base_jql: String,
    /// The fingerprint of the scope's definition ([`super::fingerprint`]);
    /// `None` in runs started before fingerprints existed.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// The Jira user's time zone the JQL dates were written in.
    pub time_zone: String,
    pub planned: bool,
    pub slices: Vec<SliceState>,
    /// True once the End page is staged.
    pub finished: bool,
}

impl RunState {
    pub fn slice(&self, id: u32) -> Option<&SliceState> {
        self.slices.iter().find(|s| s.id == id)
    }
    pub(crate) fn slice_mut(&mut self, id: u32) -> Option<&mut SliceState> {
        self.slices.iter_mut().find(|s| s.id == id)
    }
    pub fn pages(&self) -> u64 {
        self.slices.iter().map(|s| s.pages).sum()
    }
    pub(crate) fn next_slice_id(&self) -> u32 {
        self.slices.iter().map(|s| s.id + 1).max().unwrap_or(0)
    }
}

/// The state file of a scope and the in-memory copy every slice updates.
#[derive(Debug)]
pub(crate) struct StateStore {
    pub path: PathBuf,
    state: Mutex<RunState>,
}

/// `staging/state/<scope>.json`.
pub(crate) fn state_path(state_dir: &std::path::Path, scope: &str) -> PathBuf {
    state_dir.join(format!("{scope}.json"))
}

/// Reads a scope's state file, if any.
pub fn load(path: &std::path::Path) -> Result<Option<RunState>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path)(e)),
    };
    serde_json::from_slice(&data).map(Some).map_err(|e| Error::Staging {
        path: path.to_path_buf(),
        msg: format!(
            "extract resume state is not readable ({e}); delete it to start the scope's run afresh"
        ),
    })
}

impl StateStore {
    pub fn new(path: PathBuf, state: RunState) -> Self {
        StateStore {
            path,
            state: Mutex::new(state),
        }
    }

    pub fn snapshot(&self) -> RunState {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn slice(&self, id: u32) -> Option<SliceState> {
        self.lock().slice(id).cloned()
    }

    /// Changes the state and writes it atomically (blocking: call from a
    /// blocking thread). The write happens under the lock, so an older
    /// snapshot never overwrites a newer one.
    pub fn update<R>(&self, f: impl FnOnce(&mut RunState) -> R) -> Result<R> {
        let mut st = self.lock();
        let r = f(&mut st);
        let data = serde_json::to_vec_pretty(&*st).map_err(|e| Error::Other(e.to_string()))?;
        replace_file(&self.path, &data)?;
        Ok(r)
    }
}

/// Replaces `path` atomically (temp file + rename) without fsync. The state
/// only has to survive the process (`kill -9`), and it is always written
/// after the page it records was fsynced: after a power cut it can only be
/// older than the pages, and a page staged but not recorded is picked up
/// again from the staging area instead of being fetched.
fn replace_file(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(Error::io(dir))?;
    tmp.as_file_mut().write_all(data).map_err(Error::io(path))?;
    tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
    Ok(())
}

/// What a page did to a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More to fetch.
    More,
    /// The page held nothing past the last issue already seen: the slice is complete.
    Done,
    /// Issues before our position left the result (updated, moved, deleted):
    /// the query restarts from the last seen value of the order field.
    Restarted,
}

/// Applies a page fetched at `asked_start` to the slice. Every request after
/// the first repeats the last issue seen (`startAt` = its index); if that
/// issue is not first in the page, the result shifted under us and the slice
/// restarts from that issue's minute instead of trusting `startAt`. The next
/// `startAt` advances by the number of issues received, never by the page
/// size asked. A slice ends only on a page with nothing past the repeated
/// issue: a short page is not the end (Jira skips issues deleted since its
/// index saw them), and `total` is never trusted.
pub(crate) fn advance(s: &mut SliceState, asked_start: u64, issues: &[IssueHead]) -> Step {
    // Every page after the first of a query repeats the last issue seen,
    // even when that issue sits at index 0.
    let overlap = usize::from(s.last.is_some());
    if overlap == 1 {
        let last = s.last.as_ref().map(|l| l.id);
        if issues.first().map(|i| i.id) != last {
            let sort = s.last.as_ref().map(|l| l.sort).unwrap_or_default();
            s.lo = Some(restart_lo(s, sort));
            s.start_at = 0;
            s.last = None;
            s.restarts += 1;
            return Step::Restarted;
        }
    }
    if issues.len() <= overlap {
        s.done = true;
        return Step::Done;
    }
    let Some(tail) = issues.last() else {
        s.done = true;
        return Step::Done;
    };
    s.start_at = asked_start + issues.len() as u64 - 1;
    let value = |i: &IssueHead| match s.order {
        DateField::Created => i.created,
        DateField::Updated => i.updated,
    };
    let sort = issues
        .iter()
        .map(value)
        .min()
        .unwrap_or_else(|| value(tail));
    s.last = Some(Last {
        id: tail.id,
        key: tail.key.clone(),
        sort,
    });
    Step::More
}

/// The minute to restart from, never before the current lower bound.
fn restart_lo(s: &SliceState, sort: DateTime<Utc>) -> DateTime<Utc> {
    let m = floor_minute(sort);
    match s.effective_lo() {
        Some(cur) if cur > m => cur,
        _ => m,
    }
}

/// What to do before the next request of a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WindowStep {
    /// Fetch at `start_at` as the state says.
    Fetch,
    /// The next page would pass the 10,000 window: restart the query from
    /// this minute (which is past the current lower bound).
    Restart(DateTime<Utc>),
    /// The window is full of issues of this one minute of the order field:
    /// drain that minute separately, then go on after it.
    Crowded(DateTime<Utc>),
}

/// Decides whether the next request fits the search window.
pub(crate) fn window_step(s: &SliceState, page_size: u32) -> WindowStep {
    if s.start_at == 0 || s.start_at + u64::from(page_size) <= SEARCH_WINDOW {
        return WindowStep::Fetch;
    }
    let Some(last) = &s.last else {
        return WindowStep::Fetch;
    };
    let m = floor_minute(last.sort);
    match s.effective_lo() {
        Some(cur) if m <= cur => WindowStep::Crowded(m),
        _ => WindowStep::Restart(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
            + Duration::minutes(min)
    }

    fn issue(id: u64, min: i64) -> IssueHead {
        IssueHead {
            id,
            key: format!("A-{id}"),
            created: t(0),
            updated: t(min) + Duration::seconds(7),
            updated_raw: String::new(),
            changelog_cut: None,
        }
    }

    fn slice() -> SliceState {
        SliceState::new(
            0,
            vec![Range {
                field: DateField::Updated,
                lo: Some(t(0)),
                hi: None,
            }],
            DateField::Updated,
            0,
            0,
        )
    }

    #[test]
    fn advance_by_received_with_overlap() {
        let mut s = slice();
        // Server capped 1000 asked to 3 issues.
        assert_eq!(
            advance(&mut s, 0, &[issue(1, 1), issue(2, 2), issue(3, 3)]),
            Step::More
        );
        assert_eq!(s.start_at, 2, "index of the last issue, not 0 + page size");
        assert_eq!(s.last.as_ref().unwrap().id, 3);
        assert_eq!(advance(&mut s, 2, &[issue(3, 3), issue(4, 4)]), Step::More);
        assert_eq!(s.start_at, 3);
        // Only the repeated issue: complete.
        assert_eq!(advance(&mut s, 3, &[issue(4, 4)]), Step::Done);
        assert!(s.done);
    }

    #[test]
    fn shifted_result_restarts_from_last_minute() {
        let mut s = slice();
        advance(&mut s, 0, &[issue(1, 1), issue(2, 5)]);
        // Issue 1 was updated and moved to the end: everything shifted left by one.
        assert_eq!(
            advance(&mut s, 1, &[issue(3, 6), issue(1, 9)]),
            Step::Restarted
        );
        assert_eq!(s.lo, Some(t(1)), "the earliest minute of the last page");
        assert_eq!(s.start_at, 0);
        assert!(s.last.is_none());
        // The restart query carries the new lower bound.
        let r = s.query_ranges();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].lo, Some(t(1)));
        // An empty answer where the repeated issue should be is a shift too.
        let mut s2 = slice();
        advance(&mut s2, 0, &[issue(1, 1), issue(2, 5)]);
        assert_eq!(advance(&mut s2, 1, &[]), Step::Restarted);
    }

    #[test]
    fn single_issue_page_at_index_0_is_repeated_not_refetched_for_ever() {
        // Regression: a restarted query whose first page held one issue left
        // startAt at 0; the next page repeated it and was taken as new.
        let mut s = slice();
        assert_eq!(advance(&mut s, 0, &[issue(7, 1)]), Step::More);
        assert_eq!(s.start_at, 0);
        assert_eq!(advance(&mut s, 0, &[issue(7, 1)]), Step::Done);
    }

    #[test]
    fn restart_point_is_the_page_minimum_not_the_last_issue() {
        // Jira sorts by its (lagging) index but renders live data: the last
        // issue may show a newer `updated` than the one it was sorted by.
        let mut s = slice();
        advance(&mut s, 0, &[issue(1, 10), issue(2, 30), issue(3, 12)]);
        assert_eq!(s.last.as_ref().unwrap().sort, t(10) + Duration::seconds(7));
        assert_eq!(advance(&mut s, 2, &[issue(9, 40)]), Step::Restarted);
        assert_eq!(s.lo, Some(t(10)), "restart from the page's earliest minute");
    }

    #[test]
    fn empty_first_page_is_done() {
        let mut s = slice();
        assert_eq!(advance(&mut s, 0, &[]), Step::Done);
    }

    #[test]
    fn window_restarts_then_detects_a_crowded_minute() {
        let mut s = slice();
        s.start_at = 9_950;
        s.last = Some(Last {
            id: 9,
            key: "A-9".into(),
            sort: t(42) + Duration::seconds(3),
        });
        assert_eq!(window_step(&s, 50), WindowStep::Fetch, "9950 + 50 fits");
        assert_eq!(window_step(&s, 100), WindowStep::Restart(t(42)));
        s.lo = Some(t(42));
        assert_eq!(window_step(&s, 100), WindowStep::Crowded(t(42)));
        let m = s.minute_ranges(t(42));
        assert_eq!(
            m,
            vec![Range {
                field: DateField::Updated,
                lo: Some(t(42)),
                hi: Some(t(43))
            }]
        );
    }

    #[test]
    fn state_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = state_path(dir.path(), "s");
        assert!(load(&p).unwrap().is_none());
        let st = RunState {
            format: 1,
            scope: "s".into(),
            run_id: "r".into(),
            mode: Mode::Backfill,
            started_at: t(0),
            from: t(0),
            base_jql: "project = \"A\"".into(),
            fingerprint: Some("f".into()),
            time_zone: "UTC".into(),
            planned: true,
            slices: vec![slice()],
            finished: false,
        };
        let store = StateStore::new(p.clone(), st.clone());
        store.update(|s| s.slices[0].pages = 3).unwrap();
        let back = load(&p).unwrap().unwrap();
        assert_eq!(back.slices[0].pages, 3);
        assert_eq!(back.run_id, st.run_id);
        std::fs::write(&p, b"{broken").unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("delete it"));
    }
}
