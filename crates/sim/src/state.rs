//! The running simulator's shared state and the mutations tests script on it:
//! issue updates (new histories, changed fields, labels and links added or
//! removed), bulk edits, moves, deletions, the search hook, faults at run
//! time, request statistics and the ground-truth dump ([`SimControl`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use chrono_tz::Tz;

use super::catalog::*;
use super::data::{
    AddedLink, CfValue, Dataset, History, HistoryItem, ID_BASE, Issue, Override, Poison,
};
use super::faults::{Fault, FaultConfig, FaultState};

/// Milliseconds since the epoch, real clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A change to one issue. Build with the methods; every change becomes an
/// item of one new changelog history, and `updated` becomes the time of the
/// change. An empty update only moves `updated` (like a comment would).
#[derive(Debug, Clone, Default)]
pub struct IssueUpdate {
    pub summary: Option<String>,
    pub description: Option<Option<String>>,
    /// Status name (Open, In Progress, In Review, Done, Closed).
    pub status: Option<String>,
    /// Priority name, or `None` to clear.
    pub priority: Option<Option<String>>,
    /// User name, or `None` to unassign.
    pub assignee: Option<Option<String>>,
    pub add_labels: Vec<String>,
    pub remove_labels: Vec<String>,
    pub clear_labels: bool,
    /// Link ids to remove.
    pub remove_links: Vec<u64>,
    pub remove_all_links: bool,
    /// (target issue id, link type name), this issue being the source.
    pub add_links: Vec<(u64, String)>,
    /// Custom field values to set (`None` clears), by custom field index in
    /// `catalog::CUSTOM_FIELDS`.
    pub custom: Vec<(usize, Option<CfValue>)>,
}

impl IssueUpdate {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn summary(mut self, s: impl Into<String>) -> Self {
        self.summary = Some(s.into());
        self
    }
    pub fn description(mut self, s: Option<String>) -> Self {
        self.description = Some(s);
        self
    }
    pub fn status(mut self, s: impl Into<String>) -> Self {
        self.status = Some(s.into());
        self
    }
    pub fn priority(mut self, p: Option<&str>) -> Self {
        self.priority = Some(p.map(str::to_string));
        self
    }
    pub fn assignee(mut self, u: Option<&str>) -> Self {
        self.assignee = Some(u.map(str::to_string));
        self
    }
    pub fn add_label(mut self, l: impl Into<String>) -> Self {
        self.add_labels.push(l.into());
        self
    }
    pub fn remove_label(mut self, l: impl Into<String>) -> Self {
        self.remove_labels.push(l.into());
        self
    }
    pub fn clear_labels(mut self) -> Self {
        self.clear_labels = true;
        self
    }
    pub fn remove_link(mut self, link_id: u64) -> Self {
        self.remove_links.push(link_id);
        self
    }
    pub fn remove_all_links(mut self) -> Self {
        self.remove_all_links = true;
        self
    }
    pub fn add_link(mut self, target_id: u64, link_type: impl Into<String>) -> Self {
        self.add_links.push((target_id, link_type.into()));
        self
    }
    pub fn story_points(mut self, v: Option<f64>) -> Self {
        self.custom.push((CF_STORY_POINTS, v.map(CfValue::Number)));
        self
    }
    pub fn custom(mut self, cf_index: usize, v: Option<CfValue>) -> Self {
        self.custom.push((cf_index, v));
        self
    }
}

fn jira_item(
    field: &str,
    from: Option<String>,
    from_string: Option<String>,
    to: Option<String>,
    to_string: Option<String>,
) -> HistoryItem {
    HistoryItem {
        field: field.into(),
        fieldtype: "jira",
        from,
        from_string,
        to,
        to_string,
    }
}

fn cf_string(ds: &Dataset, v: &CfValue) -> (Option<String>, Option<String>) {
    match v {
        CfValue::Number(x) => (None, Some(format!("{x}"))),
        CfValue::Text(s) => (None, Some(s.clone())),
        CfValue::Option(id) => (
            Some(id.to_string()),
            SEVERITY_OPTIONS
                .iter()
                .chain(PLATFORM_OPTIONS.iter())
                .find(|o| o.0 == *id)
                .map(|o| o.1.to_string()),
        ),
        CfValue::Options(ids) => (
            Some(format!(
                "[{}]",
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None,
        ),
        CfValue::User(u) => (
            Some(USERS[*u].key.to_string()),
            Some(USERS[*u].display_name.to_string()),
        ),
        CfValue::DateTime(ms) => (None, Some(ds.format_ts(*ms))),
        CfValue::Date(d) => (
            Some(d.format("%Y-%m-%d").to_string()),
            Some(d.format("%-d/%b/%y").to_string()),
        ),
        CfValue::Sprints(s) => (
            Some(
                s.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None,
        ),
        CfValue::EpicLink(e) => (Some((ID_BASE + *e as u64).to_string()), Some(ds.key_of(*e))),
        CfValue::Labels(l) => (None, Some(l.join(" "))),
    }
}

/// Summary and description changes of `upd`.
fn update_text(cur: &Issue, upd: &IssueUpdate, ov: &mut Override, items: &mut Vec<HistoryItem>) {
    if let Some(s) = &upd.summary {
        items.push(jira_item(
            "summary",
            None,
            Some(cur.summary.clone()),
            None,
            Some(s.clone()),
        ));
        ov.summary = Some(s.clone());
    }
    if let Some(d) = &upd.description {
        items.push(jira_item(
            "description",
            None,
            cur.description.clone(),
            None,
            d.clone(),
        ));
        ov.description = Some(d.clone());
    }
}

/// Priority and assignee changes of `upd`.
fn update_people(
    cur: &Issue,
    upd: &IssueUpdate,
    ov: &mut Override,
    items: &mut Vec<HistoryItem>,
) -> Result<(), String> {
    if let Some(p) = &upd.priority {
        let new = match p {
            Some(name) => Some(
                PRIORITIES
                    .iter()
                    .position(|x| x.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| format!("unknown priority {name:?}"))?,
            ),
            None => None,
        };
        items.push(jira_item(
            "priority",
            cur.priority.map(|p| PRIORITIES[p].id.to_string()),
            cur.priority.map(|p| PRIORITIES[p].name.to_string()),
            new.map(|p| PRIORITIES[p].id.to_string()),
            new.map(|p| PRIORITIES[p].name.to_string()),
        ));
        ov.priority = Some(new);
    }
    if let Some(a) = &upd.assignee {
        let new = match a {
            Some(name) => Some(
                USERS
                    .iter()
                    .position(|u| u.name == name)
                    .ok_or_else(|| format!("unknown user {name:?}"))?,
            ),
            None => None,
        };
        items.push(jira_item(
            "assignee",
            cur.assignee.map(|u| USERS[u].key.to_string()),
            cur.assignee.map(|u| USERS[u].display_name.to_string()),
            new.map(|u| USERS[u].key.to_string()),
            new.map(|u| USERS[u].display_name.to_string()),
        ));
        ov.assignee = Some(new);
    }
    Ok(())
}

/// A status change to `s`, with the resolution set or cleared when the
/// status category enters or leaves "done"; returns the new status.
fn update_status(
    cur: &Issue,
    s: &str,
    at_ms: i64,
    ov: &mut Override,
    items: &mut Vec<HistoryItem>,
) -> Result<usize, String> {
    let new = status_by_name(s).ok_or_else(|| format!("unknown status {s:?}"))?;
    let old = cur.status;
    items.push(jira_item(
        "status",
        Some(STATUSES[old].id.into()),
        Some(STATUSES[old].name.into()),
        Some(STATUSES[new].id.into()),
        Some(STATUSES[new].name.into()),
    ));
    let was_done = STATUSES[old].category_key == "done";
    let is_done = STATUSES[new].category_key == "done";
    if is_done && !was_done {
        items.push(jira_item(
            "resolution",
            None,
            None,
            Some(RESOLUTIONS[0].id.into()),
            Some(RESOLUTIONS[0].name.into()),
        ));
        ov.resolution = Some(Some(0));
        ov.resolved = Some(Some(at_ms));
    } else if was_done && !is_done {
        items.push(jira_item(
            "resolution",
            cur.resolution.map(|r| RESOLUTIONS[r].id.to_string()),
            cur.resolution.map(|r| RESOLUTIONS[r].name.to_string()),
            None,
            None,
        ));
        ov.resolution = Some(None);
        ov.resolved = Some(None);
    }
    Ok(new)
}

/// Label changes of `upd` (an item only if the set changes).
fn update_labels(cur: &Issue, upd: &IssueUpdate, ov: &mut Override, items: &mut Vec<HistoryItem>) {
    if upd.clear_labels || !upd.add_labels.is_empty() || !upd.remove_labels.is_empty() {
        let mut l: Vec<String> = if upd.clear_labels {
            Vec::new()
        } else {
            cur.labels.clone()
        };
        l.retain(|x| !upd.remove_labels.contains(x));
        l.extend(upd.add_labels.iter().cloned());
        l.sort();
        l.dedup();
        if l != cur.labels {
            items.push(jira_item(
                "labels",
                None,
                Some(cur.labels.join(" ")),
                None,
                Some(l.join(" ")),
            ));
        }
        ov.labels = Some(l);
    }
}

impl Dataset {
    /// Ok if issue `idx` can be changed: it exists, is not deleted and is
    /// not archived (Jira refuses to edit or move an archived issue).
    fn check_editable(&self, idx: u32) -> Result<(), String> {
        let id = ID_BASE + idx as u64;
        if !self.is_live(idx) {
            return Err(format!("issue {id} does not exist or is deleted"));
        }
        if self.core(idx).archived {
            return Err(format!("issue {id} is archived; restore it first"));
        }
        Ok(())
    }

    /// Archives (`archived`) or restores live issue `idx` and its sub-tasks
    /// (Jira archives sub-tasks with their parent); `updated` is unchanged.
    pub(crate) fn set_archived(&mut self, idx: u32, archived: bool) -> Result<(), String> {
        let id = ID_BASE + idx as u64;
        if !self.is_live(idx) {
            return Err(format!("issue {id} does not exist or is deleted"));
        }
        if self.core(idx).archived == archived {
            let state = if archived { "already" } else { "not" };
            return Err(format!("issue {id} is {state} archived"));
        }
        for i in std::iter::once(idx).chain(self.issue(idx).subtasks) {
            self.cores[i as usize].archived = archived;
        }
        self.generation += 1;
        Ok(())
    }

    fn touch(&mut self, idx: u32, at_ms: i64, items: Vec<HistoryItem>) {
        let c = &mut self.cores[idx as usize];
        c.updated = at_ms.max(c.created);
        if !items.is_empty() {
            let id = self.next_history_id;
            self.next_history_id += 1;
            self.overrides
                .entry(idx)
                .or_default()
                .histories
                .push(History {
                    id,
                    author: Some(0),
                    created_ms: at_ms,
                    items,
                });
        }
    }

    /// Applies `upd` to live issue `idx` at `at_ms`.
    pub(crate) fn apply_update(
        &mut self,
        idx: u32,
        upd: &IssueUpdate,
        at_ms: i64,
    ) -> Result<(), String> {
        self.check_editable(idx)?;
        let cur = self.issue(idx);
        let mut items = Vec::new();
        // On an error below, the issue's earlier overrides stay removed (and a
        // status already set stays set), as they always have.
        let mut ov = self.overrides.remove(&idx).unwrap_or_default();
        update_text(&cur, upd, &mut ov, &mut items);
        update_people(&cur, upd, &mut ov, &mut items)?;
        if let Some(s) = &upd.status {
            let new = update_status(&cur, s, at_ms, &mut ov, &mut items)?;
            self.cores[idx as usize].status = new as u8;
        }
        update_labels(&cur, upd, &mut ov, &mut items);
        self.update_custom(&cur, upd, &mut ov, &mut items)?;
        self.overrides.insert(idx, ov);
        // Links: both ends get a history and a new `updated`, as Jira does.
        let mut other_touches: Vec<(u32, HistoryItem)> = Vec::new();
        self.remove_links(&cur, upd, &mut items, &mut other_touches);
        self.add_links(idx, &cur.key, upd, &mut items, &mut other_touches)?;
        self.touch(idx, at_ms, items);
        for (other, item) in other_touches {
            self.touch(other, at_ms, vec![item]);
        }
        self.generation += 1;
        Ok(())
    }

    /// Custom field changes of `upd` (one "custom" item each).
    fn update_custom(
        &self,
        cur: &Issue,
        upd: &IssueUpdate,
        ov: &mut Override,
        items: &mut Vec<HistoryItem>,
    ) -> Result<(), String> {
        for (cf, v) in &upd.custom {
            let def = CUSTOM_FIELDS
                .get(*cf)
                .ok_or_else(|| format!("unknown custom field index {cf}"))?;
            let old = cur.custom.iter().find(|(k, _)| k == cf).map(|(_, v)| v);
            let (from, from_string) = old.map(|o| cf_string(self, o)).unwrap_or((None, None));
            let (to, to_string) = v
                .as_ref()
                .map(|o| cf_string(self, o))
                .unwrap_or((None, None));
            items.push(HistoryItem {
                field: def.name.into(),
                fieldtype: "custom",
                from,
                from_string,
                to,
                to_string,
            });
            ov.custom.insert(*cf, v.clone());
        }
        Ok(())
    }

    /// Removes the links `upd` names: an item here and one on the other end.
    fn remove_links(
        &mut self,
        cur: &Issue,
        upd: &IssueUpdate,
        items: &mut Vec<HistoryItem>,
        other_touches: &mut Vec<(u32, HistoryItem)>,
    ) {
        let this_key = &cur.key;
        for l in &cur.links {
            if !(upd.remove_all_links || upd.remove_links.contains(&l.id)) {
                continue;
            }
            self.removed_links.insert(l.id);
            let t = &LINK_TYPES[l.link_type];
            let other_key = self.key_of(l.other_index);
            let (mine, theirs) = if l.outward {
                (t.outward, t.inward)
            } else {
                (t.inward, t.outward)
            };
            items.push(jira_item(
                "Link",
                Some(other_key.clone()),
                Some(format!("This issue {mine} {other_key}")),
                None,
                None,
            ));
            other_touches.push((
                l.other_index,
                jira_item(
                    "Link",
                    Some(this_key.clone()),
                    Some(format!("This issue {theirs} {this_key}")),
                    None,
                    None,
                ),
            ));
        }
    }

    /// Adds the links `upd` lists, issue `idx` (key `this_key`) being the source.
    fn add_links(
        &mut self,
        idx: u32,
        this_key: &str,
        upd: &IssueUpdate,
        items: &mut Vec<HistoryItem>,
        other_touches: &mut Vec<(u32, HistoryItem)>,
    ) -> Result<(), String> {
        for (target_id, type_name) in &upd.add_links {
            let target = self
                .index_of_id(*target_id)
                .filter(|&t| self.is_live(t) && t != idx)
                .ok_or_else(|| format!("link target {target_id} does not exist"))?;
            let lt = link_type_by_name(type_name)
                .ok_or_else(|| format!("unknown link type {type_name:?}"))?;
            let id = self.next_link_id;
            self.next_link_id += 1;
            let k = self.added_links.len();
            self.added_links.push(AddedLink {
                id,
                source: idx,
                target,
                link_type: lt,
            });
            self.added_by_issue.entry(idx).or_default().push(k);
            self.added_by_issue.entry(target).or_default().push(k);
            let t = &LINK_TYPES[lt];
            let target_key = self.key_of(target);
            items.push(jira_item(
                "Link",
                None,
                None,
                Some(target_key.clone()),
                Some(format!("This issue {} {target_key}", t.outward)),
            ));
            other_touches.push((
                target,
                jira_item(
                    "Link",
                    None,
                    None,
                    Some(this_key.to_string()),
                    Some(format!("This issue {} {this_key}", t.inward)),
                ),
            ));
        }
        Ok(())
    }

    /// Moves live issue `idx` (and its sub-tasks) to project `p`; returns the new key.
    pub(crate) fn move_to(&mut self, idx: u32, p: usize, at_ms: i64) -> Result<String, String> {
        self.check_editable(idx)?;
        let c = self.cores[idx as usize];
        if c.project as usize == p {
            return Err(format!(
                "issue {} is already in project {}",
                self.key_of(idx),
                self.projects[p].key
            ));
        }
        let subtasks = self.issue(idx).subtasks;
        let old_key = self.key_of(idx);
        let old_p = &self.projects[c.project as usize];
        let (old_pid, old_pname) = (old_p.id, old_p.name.clone());
        self.old_keys.insert((c.project, c.number), idx);
        self.moved_in.remove(&(c.project, c.number));
        let number = self.project_next[p];
        self.project_next[p] += 1;
        {
            let cm = &mut self.cores[idx as usize];
            cm.project = p as u16;
            cm.number = number;
            cm.moved = true;
        }
        self.moved_in.insert((p as u16, number), idx);
        let new_key = self.key_of(idx);
        let np = &self.projects[p];
        let items = vec![
            jira_item(
                "project",
                Some(old_pid.to_string()),
                Some(old_pname),
                Some(np.id.to_string()),
                Some(np.name.clone()),
            ),
            jira_item("Key", None, Some(old_key), None, Some(new_key.clone())),
        ];
        self.touch(idx, at_ms, items);
        for s in subtasks {
            if self.cores[s as usize].project as usize != p {
                self.move_to(s, p, at_ms)?;
            }
        }
        self.generation += 1;
        Ok(new_key)
    }

    /// Deletes live issue `idx` and its sub-tasks (Jira deletes them with the parent).
    pub(crate) fn delete(&mut self, idx: u32) -> Result<(), String> {
        if !self.is_live(idx) {
            return Err(format!(
                "issue {} does not exist or is deleted",
                ID_BASE + idx as u64
            ));
        }
        let subtasks = self.issue(idx).subtasks;
        self.cores[idx as usize].deleted = true;
        for s in subtasks {
            if self.is_live(s) {
                self.cores[s as usize].deleted = true;
            }
        }
        self.generation += 1;
        Ok(())
    }
}

/// Request statistics of a running simulator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests answered (or failed by a fault), all endpoints.
    pub requests: u64,
    /// (endpoint, HTTP status) → count. Endpoints: myself, serverInfo, field,
    /// search, issue, project (the list and one project), versions,
    /// components, status, priority, issuetype, resolution, other.
    pub by_endpoint: BTreeMap<(String, u16), u64>,
    /// 429 responses sent.
    pub rate_limited: u64,
    /// Faults injected (all kinds).
    pub faults: u64,
    /// Connections reset or closed mid-body.
    pub cut_connections: u64,
    /// Response body bytes written (headers excluded).
    pub bytes_sent: u64,
    /// Search requests served normally (the hook's sequence numbers).
    pub searches_served: u64,
    /// TLS handshakes attempted (HTTPS simulators only).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (e.g. the client refused the certificate).
    pub tls_handshake_failures: u64,
}

impl SimStats {
    /// Responses of `endpoint` with `status`.
    pub fn count(&self, endpoint: &str, status: u16) -> u64 {
        self.by_endpoint
            .get(&(endpoint.to_string(), status))
            .copied()
            .unwrap_or(0)
    }

    /// Responses of `endpoint`, any status.
    pub fn endpoint_total(&self, endpoint: &str) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|((e, _), _)| e == endpoint)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A hook run before each search request is served (argument: its 1-based
/// sequence number), e.g. to update issues while a client is paging.
pub type SearchHook = Arc<dyn Fn(&SimControl, u64) + Send + Sync>;

/// A search index that lags behind the database: searches match and order
/// against a snapshot of the dataset as it was `lag_ms` ago, while issue
/// bodies (GET issue, and the fields of search results) come from the live
/// data, as in Jira DC whose search index is updated after the commit.
#[derive(Default)]
pub(crate) struct IndexLag {
    pub lag_ms: u64,
    /// What the index holds now (`None`: the index is the live data).
    pub snapshot: Option<Arc<Dataset>>,
    /// States waiting to reach the index: (visible at ms, state).
    pub pending: std::collections::VecDeque<(i64, Arc<Dataset>)>,
}

impl IndexLag {
    /// The dataset searches see at `now` (`None` = the live one).
    pub fn current(&mut self, now: i64) -> Option<Arc<Dataset>> {
        while let Some((t, _)) = self.pending.front() {
            if *t > now {
                break;
            }
            self.snapshot = self.pending.pop_front().map(|(_, d)| d);
        }
        self.snapshot.clone()
    }
}

/// (generation, JQL) → matching issue indexes in order.
pub(crate) type ResultCache = HashMap<String, (u64, Arc<Vec<u32>>)>;

pub(crate) struct Shared {
    pub ds: RwLock<Dataset>,
    pub user_tz: Tz,
    pub user_tz_name: String,
    pub cap: u32,
    pub token: String,
    pub captcha_after: u32,
    pub latency_ms: AtomicU64,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<SimStats>,
    pub hook: Mutex<Option<SearchHook>>,
    pub index: Mutex<IndexLag>,
    pub auth_failures: AtomicU64,
    pub searches: AtomicU64,
    /// (generation, query text) → matching indexes in order.
    pub results: Mutex<ResultCache>,
    /// Rendered bodies by request (generation in the key).
    pub bodies: Mutex<BodyCache>,
    /// Changelog cut of search results: 0 = none, else the limit + 1.
    pub changelog_cut: AtomicU64,
    /// Whether GET issue cuts changelogs too.
    pub changelog_cut_on_get: AtomicBool,
}

impl Shared {
    /// The changelog cut of search results (`None`: whole changelogs).
    pub fn changelog_cut(&self) -> Option<u32> {
        match self.changelog_cut.load(Ordering::Relaxed) {
            0 => None,
            n => Some((n - 1) as u32),
        }
    }
}

#[derive(Default)]
pub(crate) struct BodyCache {
    pub map: HashMap<String, Bytes>,
    pub bytes: usize,
    pub limit: usize,
}

impl BodyCache {
    pub fn get(&self, k: &str) -> Option<Bytes> {
        self.map.get(k).cloned()
    }
    pub fn put(&mut self, k: String, v: Bytes) {
        if v.len() > self.limit {
            return;
        }
        if self.bytes + v.len() > self.limit {
            self.map.clear();
            self.bytes = 0;
        }
        self.bytes += v.len();
        self.map.insert(k, v);
    }
}

/// Control of a running simulator: mutations, faults, hook, statistics and
/// ground truth. Cheap to clone; [`super::SimHandle`] derefs to it.
#[derive(Clone)]
pub struct SimControl {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl").finish_non_exhaustive()
    }
}

impl SimControl {
    /// Runs a mutation under the write lock and queues the new state for a
    /// lagging search index.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Dataset) -> T) -> T {
        let mut ds = self.shared.ds.write().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut ds);
        let mut ix = self.shared.index.lock().unwrap_or_else(|e| e.into_inner());
        if ix.lag_ms > 0 {
            let at = now_ms() + ix.lag_ms as i64;
            let state = Arc::new(ds.clone());
            // Changes within 10 ms of each other reach the index together,
            // which bounds the states kept during a burst of mutations.
            match ix.pending.back_mut() {
                Some(last) if at - last.0 < 10 => *last = (at, state),
                _ => ix.pending.push_back((at, state)),
            }
        }
        out
    }

    /// Makes the search index lag `ms` behind the data (0 = searches see
    /// every change at once, the default). With a lag, a change is found by
    /// JQL only `ms` after it was made, with its original `updated`; search
    /// results still render the live fields (as Jira DC loads found issues
    /// from the database), and issues deleted meanwhile are left out of a page.
    pub fn set_index_lag_ms(&self, ms: u64) {
        let ds = self.shared.ds.read().unwrap_or_else(|e| e.into_inner());
        let mut ix = self.shared.index.lock().unwrap_or_else(|e| e.into_inner());
        if ms == 0 {
            ix.snapshot = None;
            ix.pending.clear();
        } else if ix.snapshot.is_none() {
            ix.snapshot = Some(Arc::new(ds.clone()));
        }
        ix.lag_ms = ms;
    }

    /// Read access to the dataset (for tests that need more than the dump).
    pub fn dataset(&self) -> RwLockReadGuard<'_, Dataset> {
        self.shared.ds.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index(&self, ds: &Dataset, id: u64) -> Result<u32, String> {
        ds.index_of_id(id)
            .ok_or_else(|| format!("issue id {id} does not exist"))
    }

    /// Updates one issue now (real clock, ms).
    pub fn update_issue(&self, id: u64, upd: &IssueUpdate) -> Result<(), String> {
        let at = now_ms();
        self.write(|ds| {
            let i = self.index(ds, id)?;
            ds.apply_update(i, upd, at)
        })
    }

    /// Updates one issue at a given instant (epoch ms).
    pub fn update_issue_at(&self, id: u64, upd: &IssueUpdate, at_ms: i64) -> Result<(), String> {
        self.write(|ds| {
            let i = self.index(ds, id)?;
            ds.apply_update(i, upd, at_ms)
        })
    }

    /// Applies `upd` to every issue in `ids` as one bulk edit: their `updated`
    /// values all fall in the current minute, from its start to now, in order.
    /// Returns the `updated` instants given.
    pub fn bulk_edit(&self, ids: &[u64], upd: &IssueUpdate) -> Result<Vec<i64>, String> {
        let now = now_ms();
        let minute = now - now.rem_euclid(60_000);
        let n = ids.len().max(1) as i64;
        self.write(|ds| {
            let mut out = Vec::with_capacity(ids.len());
            for (k, &id) in ids.iter().enumerate() {
                let at = minute + (now - minute) * k as i64 / n;
                let i = self.index(ds, id)?;
                ds.apply_update(i, upd, at)?;
                out.push(at);
            }
            Ok(out)
        })
    }

    /// Moves an issue (and its sub-tasks) to another project: new key, same
    /// id; the old key still resolves. Returns the new key.
    pub fn move_issue(&self, id: u64, project_key: &str) -> Result<String, String> {
        let at = now_ms();
        self.write(|ds| {
            let i = self.index(ds, id)?;
            let p = ds
                .project_index(project_key)
                .ok_or_else(|| format!("project {project_key} does not exist"))?;
            ds.move_to(i, p, at)
        })
    }

    /// Deletes issues (and their sub-tasks). Links to them disappear from the
    /// other issues without changing those issues' `updated`, as in Jira.
    pub fn delete_issues(&self, ids: &[u64]) -> Result<(), String> {
        self.write(|ds| {
            for &id in ids {
                let i = self.index(ds, id)?;
                if ds.is_live(i) {
                    ds.delete(i)?;
                }
            }
            Ok(())
        })
    }

    /// Archives an issue (and its sub-tasks, as Jira does), like Jira DC's
    /// issue archiving: no search finds it any more (nor counts it in
    /// `total`), GET issue still answers 200 with it, and it cannot be
    /// updated or moved until restored. `updated` does not change and no
    /// history is added.
    pub fn archive_issue(&self, id: u64) -> Result<(), String> {
        self.write(|ds| {
            let i = self.index(ds, id)?;
            ds.set_archived(i, true)
        })
    }

    /// Restores an archived issue (and its sub-tasks): searches find it again,
    /// unchanged (`updated` as before the archiving).
    pub fn restore_issue(&self, id: u64) -> Result<(), String> {
        self.write(|ds| {
            let i = self.index(ds, id)?;
            ds.set_archived(i, false)
        })
    }

    /// Ids of archived (live) issues, ascending.
    pub fn archived_ids(&self) -> Vec<u64> {
        let ds = self.dataset();
        (0..ds.len())
            .filter(|&i| ds.is_live(i) && ds.core(i).archived)
            .map(|i| ID_BASE + i as u64)
            .collect()
    }

    /// Cuts long changelogs in search results (`expand=changelog`) to the
    /// first `n` histories, oldest first, with `"maxResults":n` and the true
    /// `total`, as Jira does; `None` (the default) renders them whole.
    pub fn set_changelog_cut(&self, n: Option<u32>) {
        self.shared
            .changelog_cut
            .store(n.map_or(0, |n| n as u64 + 1), Ordering::Relaxed);
    }

    /// Whether GET issue (`expand=changelog`) cuts changelogs too, by the
    /// same [`Self::set_changelog_cut`] limit (default false: GET renders the
    /// whole changelog, the way to complete a cut one).
    pub fn set_changelog_cut_on_get(&self, on: bool) {
        self.shared
            .changelog_cut_on_get
            .store(on, Ordering::Relaxed);
    }

    /// Installs the hook run before each search request is served.
    pub fn set_search_hook(&self, hook: impl Fn(&SimControl, u64) + Send + Sync + 'static) {
        *self.shared.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    pub fn clear_search_hook(&self) {
        *self.shared.hook.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Replaces the fault probabilities (the schedule is kept).
    pub fn set_faults(&self, cfg: FaultConfig) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config = cfg;
    }

    /// The next `n` search requests get `fault`.
    pub fn schedule_search_faults(&self, fault: Fault, n: usize) {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.search_schedule.extend(std::iter::repeat_n(fault, n));
    }

    /// The next `n` requests of any endpoint get `fault`.
    pub fn schedule_faults(&self, fault: Fault, n: usize) {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.any_schedule.extend(std::iter::repeat_n(fault, n));
    }

    /// Removes every fault: probabilities and schedules.
    pub fn clear_faults(&self) {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        *f = FaultState::new(FaultConfig::none());
    }

    /// Renders issue `id` with a broken field from now on (ground truth
    /// unchanged; `updated` moves to now so incremental runs pick it up).
    pub fn poison_issue(&self, id: u64, kind: Poison) -> Result<(), String> {
        let at = now_ms();
        self.write(|ds| {
            let i = self.index(ds, id)?;
            ds.apply_update(i, &IssueUpdate::new(), at)?;
            ds.poisoned.insert(i, kind);
            ds.generation += 1;
            Ok(())
        })
    }

    /// Ids of poisoned issues.
    pub fn poisoned_ids(&self) -> Vec<u64> {
        let ds = self.dataset();
        let mut v: Vec<u64> = ds.poisoned.keys().map(|&i| ID_BASE + i as u64).collect();
        v.sort();
        v
    }

    /// Sets the fixed latency added to every search response.
    pub fn set_latency_ms(&self, ms: u64) {
        self.shared.latency_ms.store(ms, Ordering::Relaxed);
    }

    /// Forgets failed authentications (lifts the CAPTCHA challenge).
    pub fn reset_auth_failures(&self) {
        self.shared.auth_failures.store(0, Ordering::Relaxed);
    }

    /// A snapshot of the request statistics.
    pub fn stats(&self) -> SimStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_stats(&self) {
        *self.shared.stats.lock().unwrap_or_else(|e| e.into_inner()) = SimStats::default();
    }

    /// What Jira holds now: every live issue, in id order. Archived issues
    /// are left out (searches cannot find them; see [`Self::archived_ids`]).
    pub fn ground_truth(&self) -> Vec<Issue> {
        let ds = self.dataset();
        (0..ds.len())
            .filter(|&i| ds.is_searchable(i))
            .map(|i| ds.issue(i))
            .collect()
    }

    /// Visits every live issue in id order without holding them all in
    /// memory (for large datasets; `ground_truth()` of 1,000,000 issues would
    /// need gigabytes). Archived issues are left out, as in `ground_truth`.
    /// The dataset is read-locked during the visit: do not mutate from `f`.
    pub fn visit_ground_truth(&self, mut f: impl FnMut(&Issue)) {
        let ds = self.dataset();
        for i in 0..ds.len() {
            if ds.is_searchable(i) {
                f(&ds.issue(i));
            }
        }
    }

    /// (id, key, updated ms) of every live issue, in id order: a compact
    /// summary for large checks. Archived issues are left out.
    pub fn truth_index(&self) -> Vec<(u64, String, i64)> {
        let ds = self.dataset();
        (0..ds.len())
            .filter(|&i| ds.is_searchable(i))
            .map(|i| (ID_BASE + i as u64, ds.key_of(i), ds.core(i).updated))
            .collect()
    }

    /// One issue as Jira holds it now, by id (`None` if missing or deleted;
    /// an archived issue is returned, as GET issue still serves it).
    pub fn issue(&self, id: u64) -> Option<Issue> {
        let ds = self.dataset();
        let i = ds.index_of_id(id)?;
        ds.is_live(i).then(|| ds.issue(i))
    }

    /// The custom field values of a ground-truth issue as `(field id, JSON
    /// value as rendered in fields)`.
    pub fn custom_values(&self, issue: &Issue) -> Vec<(String, serde_json::Value)> {
        issue.custom_values(&self.dataset())
    }

    /// Ids of deleted issues.
    pub fn deleted_ids(&self) -> Vec<u64> {
        let ds = self.dataset();
        (0..ds.len())
            .filter(|&i| !ds.is_live(i))
            .map(|i| ID_BASE + i as u64)
            .collect()
    }

    /// Ids of the live issues of a project (current keys), in key order;
    /// archived issues are left out.
    pub fn ids_in_project(&self, project_key: &str) -> Vec<u64> {
        let ds = self.dataset();
        let Some(p) = ds.project_index(project_key) else {
            return Vec::new();
        };
        let mut v: Vec<(u32, u64)> = (0..ds.len())
            .filter(|&i| ds.is_searchable(i) && ds.core(i).project as usize == p)
            .map(|i| (ds.core(i).number, ID_BASE + i as u64))
            .collect();
        v.sort();
        v.into_iter().map(|(_, id)| id).collect()
    }

    /// The user's (`/myself`) time zone.
    pub fn user_time_zone(&self) -> Tz {
        self.shared.user_tz
    }
}
