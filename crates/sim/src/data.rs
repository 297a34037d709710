//! The simulated Jira's data: issues generated lazily and deterministically
//! from `(seed, issue index)`, plus the compact per-issue state that mutations
//! leave behind ([`Dataset`]). An issue is materialised on demand as an
//! [`Issue`] (the ground truth), which the renderer turns into Jira DC JSON.
//!
//! Layout of the synthetic world: issue `i` (0-based) has id `10000 + i`,
//! belongs to project `i % P` and has key number `i / P + 1`; its `created`
//! instant grows with `i` inside 2023-01-01 .. 2025-12-31 (UTC). Per issue the
//! dataset keeps one 32-byte [`Core`] (created, updated, project, key number,
//! type, status, deleted); everything else is recomputed from the seed, except
//! what mutations changed (kept in a sparse override map).
//!
//! This module does not depend on `render` (the dependency runs the other
//! way): it draws from [`crate::rng`], formats timestamps with the shared
//! `json` writers and owns the pre-rendered `frags` it is built with; the JSON
//! of an [`Issue`] (including [`Issue::custom_values`]) is written by `render`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::catalog::*;
pub use super::catalog::{END_MS, START_MS};
use super::frags::Frags;
// `faults` draws from `data::mix`; the generator itself lives in `rng`.
use super::rng::Rng;
pub(crate) use super::rng::mix;

/// First issue id.
pub const ID_BASE: u64 = 10000;
/// First project id.
pub const PROJECT_ID_BASE: u64 = 10000;
const HIST_BASE: u64 = 100_000;
const HIST_PER_ISSUE: u64 = 64;
const LINK_BASE: u64 = 10000;
/// How far back (in issue indexes) a generated link may point.
const LINK_REACH: u32 = 40;

/// A project with its components and versions.
#[derive(Debug, Clone)]
pub struct Project {
    pub id: u64,
    pub key: String,
    pub name: String,
    /// `description` of `/rest/api/2/project/{key}`.
    pub description: String,
    /// The project lead: an index into [`USERS`].
    pub lead: usize,
    /// Index into [`PROJECT_CATEGORIES`] (`None`: no category).
    pub category: Option<usize>,
    pub components: Vec<ComponentDef>,
    pub versions: Vec<VersionDef>,
}

/// A project component.
#[derive(Debug, Clone)]
pub struct ComponentDef {
    pub id: u64,
    /// The current name (renames show everywhere but in old changelogs).
    pub name: String,
    pub description: Option<String>,
    /// The component lead: an index into [`USERS`].
    pub lead: Option<usize>,
    /// The name it was generated with (what generated changelogs say).
    pub(crate) generated_name: &'static str,
}

/// A project version.
#[derive(Debug, Clone)]
pub struct VersionDef {
    pub id: u64,
    /// The current name (renames show everywhere but in old changelogs).
    pub name: String,
    pub description: Option<String>,
    pub archived: bool,
    pub released: bool,
    pub start_date: Option<NaiveDate>,
    pub release_date: Option<NaiveDate>,
    /// The name it was generated with (what generated changelogs say).
    pub(crate) generated_name: String,
}

/// The compact per-issue state kept for every issue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Core {
    pub created: i64,
    pub updated: i64,
    pub number: u32,
    pub project: u16,
    pub itype: u8,
    pub status: u8,
    pub deleted: bool,
    /// Archived: found by no search, still served by GET issue.
    pub archived: bool,
    /// Moved at least once (its components and versions are cleared).
    pub moved: bool,
    pub hist: u8,
}

/// A custom field value.
#[derive(Debug, Clone, PartialEq)]
pub enum CfValue {
    Number(f64),
    Text(String),
    /// Option id.
    Option(u32),
    /// Option ids.
    Options(Vec<u32>),
    /// Index into [`USERS`].
    User(usize),
    DateTime(i64),
    Date(NaiveDate),
    /// Sprint ids.
    Sprints(Vec<u32>),
    /// Issue index of the epic.
    EpicLink(u32),
    Labels(Vec<String>),
}

/// One changelog item, as DC renders it (no `fieldId`).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryItem {
    pub field: String,
    /// `jira` or `custom`.
    pub fieldtype: &'static str,
    pub from: Option<String>,
    pub from_string: Option<String>,
    pub to: Option<String>,
    pub to_string: Option<String>,
}

/// One changelog history.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub id: u64,
    /// Index into [`USERS`]; `None` renders no author (anonymous/automation).
    pub author: Option<usize>,
    pub created_ms: i64,
    pub items: Vec<HistoryItem>,
}

/// An issue link as seen from one issue.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueLink {
    pub id: u64,
    /// Index into [`LINK_TYPES`].
    pub link_type: usize,
    /// True when this issue is the link's source (`outwardIssue` is the other one).
    pub outward: bool,
    pub other_index: u32,
    pub other_id: u64,
}

/// A materialised issue: what Jira holds now (the ground truth).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub index: u32,
    pub id: u64,
    pub key: String,
    pub project_index: usize,
    pub project_key: String,
    /// Index into [`ISSUE_TYPES`].
    pub issue_type: usize,
    pub summary: String,
    pub description: Option<String>,
    /// Index into [`STATUSES`].
    pub status: usize,
    /// Index into [`PRIORITIES`].
    pub priority: Option<usize>,
    /// Index into [`RESOLUTIONS`].
    pub resolution: Option<usize>,
    pub resolved_ms: Option<i64>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub due_date: Option<NaiveDate>,
    /// Indexes into [`USERS`].
    pub assignee: Option<usize>,
    pub reporter: Option<usize>,
    pub creator: Option<usize>,
    pub labels: Vec<String>,
    pub components: Vec<(u64, String)>,
    pub fix_versions: Vec<(u64, String)>,
    pub versions: Vec<(u64, String)>,
    pub links: Vec<IssueLink>,
    pub parent: Option<u32>,
    pub subtasks: Vec<u32>,
    /// (index into [`CUSTOM_FIELDS`], value), present values only, by field.
    pub custom: Vec<(usize, CfValue)>,
    /// Oldest first.
    pub histories: Vec<History>,
}

impl Issue {
    pub fn issue_type_name(&self) -> &'static str {
        ISSUE_TYPES[self.issue_type].name
    }
    pub fn status_name(&self) -> &'static str {
        STATUSES[self.status].name
    }
    pub fn status_category(&self) -> &'static str {
        STATUSES[self.status].category_name
    }
    pub fn link_ids(&self) -> Vec<u64> {
        self.links.iter().map(|l| l.id).collect()
    }
    pub fn history_ids(&self) -> Vec<u64> {
        self.histories.iter().map(|h| h.id).collect()
    }
    pub fn priority_name(&self) -> Option<&'static str> {
        self.priority.map(|p| PRIORITIES[p].name)
    }
    pub fn resolution_name(&self) -> Option<&'static str> {
        self.resolution.map(|r| RESOLUTIONS[r].name)
    }
    pub fn assignee_name(&self) -> Option<&'static str> {
        self.assignee.map(|u| USERS[u].name)
    }
}

/// A deliberately broken rendering of one issue, for quarantine tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// `customfield_10100` (Story Points, a number) rendered as the string `"lots"`.
    WrongType,
    /// `created` rendered as `"yesterday"`.
    BadDate,
}

/// A link added by a mutation.
#[derive(Debug, Clone)]
pub(crate) struct AddedLink {
    pub id: u64,
    pub source: u32,
    pub target: u32,
    pub link_type: usize,
}

/// What mutations changed on one issue, beyond its [`Core`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Override {
    pub summary: Option<String>,
    pub description: Option<Option<String>>,
    pub labels: Option<Vec<String>>,
    pub priority: Option<Option<usize>>,
    pub assignee: Option<Option<usize>>,
    pub resolution: Option<Option<usize>>,
    pub resolved: Option<Option<i64>>,
    pub custom: BTreeMap<usize, Option<CfValue>>,
    pub histories: Vec<History>,
}

impl Override {
    /// Lays these changes over the generated `issue` (histories appended).
    fn apply(&self, issue: &mut Issue) {
        if let Some(s) = &self.summary {
            issue.summary = s.clone();
        }
        if let Some(d) = &self.description {
            issue.description = d.clone();
        }
        if let Some(l) = &self.labels {
            issue.labels = l.clone();
        }
        if let Some(p) = self.priority {
            issue.priority = p;
        }
        if let Some(a) = self.assignee {
            issue.assignee = a;
        }
        if let Some(r) = self.resolution {
            issue.resolution = r;
        }
        if let Some(r) = self.resolved {
            issue.resolved_ms = r;
        }
        for (k, v) in &self.custom {
            issue.custom.retain(|(f, _)| f != k);
            if let Some(v) = v {
                issue.custom.push((*k, v.clone()));
            }
        }
        issue.custom.sort_by_key(|(k, _)| *k);
        issue.histories.extend(self.histories.iter().cloned());
    }
}

/// What [`Dataset::issue`] draws from an issue's stream 8.
struct BaseAttrs {
    priority: Option<usize>,
    assignee: Option<usize>,
    reporter: Option<usize>,
    creator: Option<usize>,
    due_date: Option<NaiveDate>,
    components: Vec<(u64, String)>,
    fix_versions: Vec<(u64, String)>,
    versions: Vec<(u64, String)>,
}

/// The generated summary and description of issue `idx` (its stream 2).
fn base_text(seed: u64, idx: u32) -> (String, Option<String>) {
    let mut r = Rng::new(seed, idx, 2);
    let summary = gen_summary(&mut r);
    let description = if r.chance(100) {
        None
    } else {
        Some(gen_description(&mut r, idx))
    };
    (summary, description)
}

/// The whole simulated instance: base parameters, per-issue cores and the
/// sparse state left by mutations. Also the pure renderer used by benchmarks.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub(crate) seed: u64,
    pub(crate) n: u32,
    pub(crate) projects: Vec<Project>,
    pub(crate) server_tz: Tz,
    pub(crate) base_url: String,
    pub(crate) cores: Vec<Core>,
    pub(crate) overrides: HashMap<u32, Override>,
    pub(crate) removed_links: HashSet<u64>,
    pub(crate) added_links: Vec<AddedLink>,
    pub(crate) added_by_issue: HashMap<u32, Vec<usize>>,
    /// Current keys of moved issues: (project, number) → index.
    pub(crate) moved_in: HashMap<(u16, u32), u32>,
    /// Keys an issue had before a move: (project, number) → index.
    pub(crate) old_keys: HashMap<(u16, u32), u32>,
    pub(crate) project_next: Vec<u32>,
    pub(crate) next_history_id: u64,
    pub(crate) next_link_id: u64,
    /// Bumped by every mutation (cache key).
    pub(crate) generation: u64,
    /// Issues rendered with a broken field.
    pub(crate) poisoned: HashMap<u32, Poison>,
    /// Pre-rendered constant JSON under `base_url`.
    pub(crate) frags: std::sync::Arc<Frags>,
}

impl Dataset {
    /// A dataset of `issues` issues over the given project keys, rendered in
    /// America/New_York with self URLs under `http://127.0.0.1:8080`.
    pub fn new(seed: u64, issues: u32, project_keys: &[String]) -> Dataset {
        Dataset::with_zone(
            seed,
            issues,
            project_keys,
            chrono_tz::America::New_York,
            "http://127.0.0.1:8080",
        )
    }

    /// A dataset over `projects` generated project keys (DEMO, ALPHA, BETA, …).
    pub fn with_projects(seed: u64, issues: u32, projects: usize) -> Dataset {
        Dataset::new(seed, issues, &project_keys(projects.max(1)))
    }

    /// Like [`Dataset::new`] with the server's time zone and base URL.
    pub fn with_zone(
        seed: u64,
        issues: u32,
        project_keys: &[String],
        server_tz: Tz,
        base_url: &str,
    ) -> Dataset {
        let keys: Vec<String> = if project_keys.is_empty() {
            project_keys_default()
        } else {
            project_keys.to_vec()
        };
        let p = keys.len() as u32;
        let projects: Vec<Project> = keys
            .iter()
            .enumerate()
            .map(|(pi, key)| make_project(seed, pi, key))
            .collect();
        let cores: Vec<Core> = (0..issues).map(|i| base_core(seed, issues, p, i)).collect();
        let project_next = (0..p).map(|pi| base_count(issues, p, pi) + 1).collect();
        let n64 = issues as u64;
        Dataset {
            seed,
            n: issues,
            projects,
            server_tz,
            base_url: base_url.trim_end_matches('/').to_string(),
            cores,
            overrides: HashMap::new(),
            removed_links: HashSet::new(),
            added_links: Vec::new(),
            added_by_issue: HashMap::new(),
            moved_in: HashMap::new(),
            old_keys: HashMap::new(),
            project_next,
            next_history_id: HIST_BASE + n64 * HIST_PER_ISSUE + 1000,
            next_link_id: LINK_BASE + n64 * 2 + 1000,
            generation: 0,
            poisoned: HashMap::new(),
            frags: std::sync::Arc::new(Frags::new(
                base_url.trim_end_matches('/'),
                server_tz,
                p as usize,
            )),
        }
    }

    /// Number of issue slots (deleted issues included).
    pub fn len(&self) -> u32 {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn projects(&self) -> &[Project] {
        &self.projects
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn server_tz(&self) -> Tz {
        self.server_tz
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Mutation counter: changes whenever any issue changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn core(&self, idx: u32) -> &Core {
        &self.cores[idx as usize]
    }

    pub(crate) fn is_live(&self, idx: u32) -> bool {
        (idx as usize) < self.cores.len() && !self.cores[idx as usize].deleted
    }

    /// Live and not archived: what searches can find.
    pub(crate) fn is_searchable(&self, idx: u32) -> bool {
        self.is_live(idx) && !self.cores[idx as usize].archived
    }

    /// The index of the issue with this id, if it exists (deleted or not).
    pub fn index_of_id(&self, id: u64) -> Option<u32> {
        if id < ID_BASE || id - ID_BASE >= self.n as u64 {
            return None;
        }
        Some((id - ID_BASE) as u32)
    }

    /// Current key of an issue.
    pub fn key_of(&self, idx: u32) -> String {
        let c = self.core(idx);
        format!("{}-{}", self.projects[c.project as usize].key, c.number)
    }

    pub(crate) fn project_index(&self, key: &str) -> Option<usize> {
        self.projects
            .iter()
            .position(|p| p.key.eq_ignore_ascii_case(key))
    }

    /// Resolves a key (current or former) to an issue index, deleted or not.
    pub fn index_of_key(&self, key: &str) -> Option<u32> {
        let (proj, num) = key.rsplit_once('-')?;
        let num: u32 = num.parse().ok()?;
        let p = self.project_index(proj)? as u16;
        let pc = self.projects.len() as u32;
        if num >= 1 {
            let i = (num as u64 - 1) * pc as u64 + p as u64;
            if i < self.n as u64 {
                let c = &self.cores[i as usize];
                if !c.moved || (c.project == p && c.number == num) {
                    return Some(i as u32);
                }
            }
        }
        if let Some(&i) = self.moved_in.get(&(p, num)) {
            return Some(i);
        }
        self.old_keys.get(&(p, num)).copied()
    }

    /// Resolves an id or key literal to a live issue.
    pub fn resolve(&self, id_or_key: &str) -> Option<u32> {
        let idx = if id_or_key.bytes().all(|b| b.is_ascii_digit()) {
            self.index_of_id(id_or_key.parse().ok()?)
        } else {
            self.index_of_key(id_or_key)
        }?;
        self.is_live(idx).then_some(idx)
    }

    /// Base (unmutated) labels, cheap enough for JQL scans.
    pub(crate) fn labels_of(&self, i: u32) -> Vec<String> {
        if let Some(l) = self.overrides.get(&i).and_then(|o| o.labels.clone()) {
            return l;
        }
        base_labels(self.seed, i)
    }

    pub(crate) fn summary_of(&self, i: u32) -> String {
        if let Some(s) = self.overrides.get(&i).and_then(|o| o.summary.clone()) {
            return s;
        }
        let mut r = Rng::new(self.seed, i, 2);
        gen_summary(&mut r)
    }

    pub(crate) fn priority_of(&self, i: u32) -> Option<usize> {
        if let Some(p) = self.overrides.get(&i).and_then(|o| o.priority) {
            return p;
        }
        let mut r = Rng::new(self.seed, i, 8);
        base_priority(&mut r)
    }

    fn base_parent(&self, i: u32) -> Option<u32> {
        base_parent(self.seed, self.n, self.projects.len() as u32, i)
    }

    /// Live sub-tasks of `p`.
    fn subtasks_of(&self, p: u32) -> Vec<u32> {
        let pc = self.projects.len() as u32;
        (1..=3u32)
            .filter_map(|d| {
                let j = p as u64 + (pc * d) as u64;
                (j < self.n as u64).then_some(j as u32)
            })
            .filter(|&j| self.base_parent(j) == Some(p) && self.is_live(j))
            .collect()
    }

    /// Generated outward links of `i`: (link id, target, type).
    fn base_out_links(&self, i: u32) -> OutLinks {
        base_out_links(self.seed, i)
    }

    /// Every live link touching `i`.
    pub(crate) fn links_of(&self, i: u32) -> Vec<IssueLink> {
        let mut out = Vec::new();
        let mut push = |id: u64, lt: usize, outward: bool, other: u32, this: &Dataset| {
            if this.removed_links.contains(&id) || !this.is_live(other) {
                return;
            }
            out.push(IssueLink {
                id,
                link_type: lt,
                outward,
                other_index: other,
                other_id: ID_BASE + other as u64,
            });
        };
        for (id, t, lt) in self.base_out_links(i).into_iter().flatten() {
            push(id, lt, true, t, self);
        }
        for d in 1..=LINK_REACH {
            let j = i as u64 + d as u64;
            if j >= self.n as u64 {
                break;
            }
            for (id, t, lt) in self.base_out_links(j as u32).into_iter().flatten() {
                if t == i {
                    push(id, lt, false, j as u32, self);
                }
            }
        }
        if let Some(list) = self.added_by_issue.get(&i) {
            for &k in list {
                let l = &self.added_links[k];
                if l.source == i {
                    push(l.id, l.link_type, true, l.target, self);
                } else {
                    push(l.id, l.link_type, false, l.source, self);
                }
            }
        }
        out
    }

    /// The epic an issue links to (base generation; overridable via custom values).
    fn base_epic(&self, i: u32) -> Option<u32> {
        let t = self.cores[i as usize].itype as usize;
        if t == EPIC || t == SUBTASK {
            return None;
        }
        let mut r = Rng::new(self.seed, i, 7);
        if !r.chance(400) {
            return None;
        }
        let pc = self.projects.len() as u64;
        (1..=30u64)
            .map_while(|d| (i as u64).checked_sub(pc * d))
            .find(|&j| raw_type(self.seed, j as u32) == EPIC)
            .map(|j| j as u32)
    }

    /// Materialises issue `idx` as Jira holds it now (deleted issues too).
    pub fn issue(&self, idx: u32) -> Issue {
        let c = self.cores[idx as usize];
        let seed = self.seed;
        let base = base_core(seed, self.n, self.projects.len() as u32, idx);
        let project = &self.projects[c.project as usize];
        let (base_summary, base_description) = base_text(seed, idx);
        // Components/versions come from the issue's original project; a move
        // clears them (Jira does), also when the issue is moved back later.
        let a = self.base_attrs(idx, &base, c.moved);

        // Base histories decide the resolution date.
        let (histories, base_resolved, base_resolution) = base_histories(self, idx, &base);
        let mut custom = base_custom(self, idx, &base);
        if let Some(e) = self.base_epic(idx) {
            custom.push((CF_EPIC_LINK, CfValue::EpicLink(e)));
            custom.sort_by_key(|(k, _)| *k);
        }

        let mut issue = Issue {
            index: idx,
            id: ID_BASE + idx as u64,
            key: format!("{}-{}", project.key, c.number),
            project_index: c.project as usize,
            project_key: project.key.clone(),
            issue_type: c.itype as usize,
            summary: base_summary,
            description: base_description,
            status: c.status as usize,
            priority: a.priority,
            resolution: base_resolution,
            resolved_ms: base_resolved,
            created_ms: c.created,
            updated_ms: c.updated,
            due_date: a.due_date,
            assignee: a.assignee,
            reporter: a.reporter,
            creator: a.creator,
            labels: base_labels(seed, idx),
            components: a.components,
            fix_versions: a.fix_versions,
            versions: a.versions,
            links: self.links_of(idx),
            parent: self.base_parent(idx),
            subtasks: self.subtasks_of(idx),
            custom,
            histories,
        };
        if let Some(ov) = self.overrides.get(&idx) {
            ov.apply(&mut issue);
        }
        // An epic link to a deleted epic renders as null: not a value.
        issue
            .custom
            .retain(|(_, v)| !matches!(v, CfValue::EpicLink(e) if !self.is_live(*e)));
        issue
    }

    /// The generated priority, people, due date, components and versions of
    /// issue `idx` (all from its stream 8); no components or versions if it
    /// was `moved_away` from its original project.
    fn base_attrs(&self, idx: u32, base: &Core, moved_away: bool) -> BaseAttrs {
        let mut rp = Rng::new(self.seed, idx, 8);
        let priority = base_priority(&mut rp);
        let assignee = if rp.chance(200) {
            None
        } else {
            Some(rp.below(USERS.len() as u64) as usize)
        };
        let reporter = if rp.chance(20) {
            None
        } else {
            Some(rp.below(USERS.len() as u64) as usize)
        };
        let creator = reporter.or(Some(0));
        let due_date = rp.chance(300).then(|| {
            let d = (base.created + rp.below(120) as i64 * DAY_MS) / DAY_MS;
            NaiveDate::from_num_days_from_ce_opt(719_163 + d as i32).unwrap_or_default()
        });
        let base_project = &self.projects[base.project as usize];
        let components: Vec<(u64, String)> = if moved_away {
            Vec::new()
        } else {
            let k = rp.below(3);
            let mut v: Vec<(u64, String)> = (0..k)
                .map(|_| {
                    let c = rp.pick(&base_project.components);
                    (c.id, c.name.clone())
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let pick_versions = |rp: &mut Rng, max: u64| -> Vec<(u64, String)> {
            if moved_away {
                return Vec::new();
            }
            let k = rp.below(max + 1);
            let mut v: Vec<(u64, String)> = (0..k)
                .map(|_| {
                    let ver = rp.pick(&base_project.versions);
                    (ver.id, ver.name.clone())
                })
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let fix_versions = pick_versions(&mut rp, 1);
        let versions = pick_versions(&mut rp, 2);
        BaseAttrs {
            priority,
            assignee,
            reporter,
            creator,
            due_date,
            components,
            fix_versions,
            versions,
        }
    }

    /// Formats epoch milliseconds like Jira DC: `2024-03-10T01:59:59.123-0500`,
    /// in the server's zone.
    pub fn format_ts(&self, ms: i64) -> String {
        format_ts(self.server_tz, ms)
    }
}

/// `2024-03-10T01:59:59.123-0500` in `tz`.
pub fn format_ts(tz: Tz, ms: i64) -> String {
    let mut out = Vec::with_capacity(28);
    super::json::write_ts(&mut out, tz, ms);
    String::from_utf8(out).unwrap_or_default()
}

fn project_keys_default() -> Vec<String> {
    project_keys(1)
}

fn make_project(seed: u64, pi: usize, key: &str) -> Project {
    let id = PROJECT_ID_BASE + pi as u64;
    let components = COMPONENT_NAMES
        .iter()
        .enumerate()
        .map(|(ci, name)| ComponentDef {
            id: 10000 + pi as u64 * 100 + ci as u64,
            name: name.to_string(),
            description: ci
                .is_multiple_of(2)
                .then(|| format!("Everything about {name}")),
            lead: (ci % 3 != 2).then_some(1 + (pi * 6 + ci) % 9),
            generated_name: name,
        })
        .collect();
    let mut r = Rng::new(seed, pi as u32, 99);
    let versions = (0..8).map(|vi| make_version(&mut r, pi, vi)).collect();
    Project {
        id,
        key: key.to_string(),
        name: format!("{key} project"),
        description: format!("The {key} project of the simulated Jira"),
        lead: 1 + pi % 9,
        category: [Some(0), Some(1), None][pi % 3],
        components,
        versions,
    }
}

/// Version `vi` of project `pi`: 0..=5 released in 2023 (every other one
/// with a start date), 6 unreleased with dates in 2026, 7 without dates;
/// every third one has a description.
fn make_version(r: &mut Rng, pi: usize, vi: usize) -> VersionDef {
    let name = format!("{}.{}", 1 + vi / 4, vi % 4);
    let release_date = match vi {
        0..=5 => NaiveDate::from_ymd_opt(2023, 1 + (vi as u32 * 2) % 12, 1 + r.below(28) as u32),
        6 => NaiveDate::from_ymd_opt(2026, 6, 30),
        _ => None,
    };
    let start_date = release_date
        .filter(|_| vi.is_multiple_of(2))
        .map(|d| d - chrono::Days::new(45));
    VersionDef {
        id: 20000 + pi as u64 * 100 + vi as u64,
        description: vi.is_multiple_of(3).then(|| format!("Release {name}")),
        archived: false,
        released: vi < 6,
        start_date,
        release_date,
        generated_name: name.clone(),
        name,
    }
}

/// Issues of project `pi` in the base layout.
pub(crate) fn base_count(n: u32, p: u32, pi: u32) -> u32 {
    if pi >= n { 0 } else { (n - pi).div_ceil(p) }
}

/// Type drawn before the sub-task rule (stream 6).
fn raw_type(seed: u64, i: u32) -> usize {
    let mut r = Rng::new(seed, i, 6);
    match r.below(100) {
        0..=29 => BUG,
        30..=59 => STORY,
        60..=79 => TASK,
        80..=84 => EPIC,
        _ => SUBTASK,
    }
}

fn base_parent(seed: u64, n: u32, p: u32, i: u32) -> Option<u32> {
    if raw_type(seed, i) != SUBTASK {
        return None;
    }
    let _ = n;
    let mut r = Rng::new(seed, i, 6);
    r.next_u64();
    let d = 1 + r.below(3) as u32;
    let parent = (i as u64).checked_sub((p * d) as u64)? as u32;
    let pt = raw_type(seed, parent);
    (pt != SUBTASK && pt != EPIC).then_some(parent)
}

fn status_path(status: usize) -> &'static [usize] {
    match status {
        IN_PROGRESS => &[IN_PROGRESS],
        IN_REVIEW => &[IN_PROGRESS, IN_REVIEW],
        DONE => &[IN_PROGRESS, IN_REVIEW, DONE],
        CLOSED => &[IN_PROGRESS, CLOSED],
        _ => &[],
    }
}

pub(crate) fn base_core(seed: u64, n: u32, p: u32, i: u32) -> Core {
    let mut r = Rng::new(seed, i, 1);
    let span = (END_MS - START_MS) as i128;
    let n_ = n.max(1) as i128;
    let slot = (span / n_).max(1) as u64;
    let created = START_MS + (i as i128 * span / n_) as i64 + r.below(slot) as i64;
    let created = created.min(END_MS);
    let hist = match r.below(100) {
        0..=24 => 0,
        25..=84 => 1 + r.below(5),
        85..=97 => 6 + r.below(10),
        _ => 30 + r.below(16),
    } as u8;
    let mut status = match r.below(100) {
        0..=29 => OPEN,
        30..=49 => IN_PROGRESS,
        50..=59 => IN_REVIEW,
        60..=89 => DONE,
        _ => CLOSED,
    };
    while status_path(status).len() > hist as usize {
        status = match status {
            DONE => IN_REVIEW,
            IN_REVIEW | CLOSED => IN_PROGRESS,
            _ => OPEN,
        };
    }
    let updated = if hist == 0 {
        created
    } else {
        let room = (END_MS - created).max(0) as u64;
        let mut u = created + 1000 + r.below(room.min(200 * DAY_MS as u64).max(1)) as i64;
        // 2% share a "bulk edit" minute: one of 40 fixed minutes, spread over 20 s.
        if r.chance(20) {
            let step = (END_MS - START_MS) / 40;
            let k = ((created - START_MS) / step + 1).min(39);
            let bulk = START_MS + k * step - (START_MS + k * step) % 60_000 + 10_000;
            if bulk > created {
                u = bulk + r.below(20_000) as i64;
            }
        }
        u.min(END_MS).max(created)
    };
    let itype = match raw_type(seed, i) {
        SUBTASK if base_parent(seed, n, p, i).is_none() => TASK,
        t => t,
    };
    Core {
        created,
        updated,
        number: i / p + 1,
        project: (i % p) as u16,
        itype: itype as u8,
        status: status as u8,
        deleted: false,
        archived: false,
        moved: false,
        hist,
    }
}

fn base_priority(r: &mut Rng) -> Option<usize> {
    if r.chance(30) {
        None
    } else {
        Some(match r.below(10) {
            0 => 0,
            1..=2 => 1,
            3..=6 => 2,
            7..=8 => 3,
            _ => 4,
        })
    }
}

pub(crate) fn base_labels(seed: u64, i: u32) -> Vec<String> {
    let mut r = Rng::new(seed, i, 3);
    let k = match r.below(10) {
        0..=3 => 0,
        4..=6 => 1,
        7..=8 => 2,
        _ => 3,
    };
    let mut v: Vec<String> = (0..k).map(|_| r.pick(&LABELS).to_string()).collect();
    v.sort();
    v.dedup();
    v
}

/// (link id, target index, link type) of up to two generated outward links.
type OutLinks = [Option<(u64, u32, usize)>; 2];

fn base_out_links(seed: u64, i: u32) -> OutLinks {
    let mut r = Rng::new(seed, i, 5);
    let k = match r.below(100) {
        0..=59 => 0,
        60..=87 => 1,
        _ => 2,
    };
    let mut out: OutLinks = [None, None];
    for slot in 0..k {
        let d = 1 + r.below(LINK_REACH as u64) as u32;
        let lt = r.below(LINK_TYPES.len() as u64) as usize;
        if d > i || out.iter().flatten().any(|l| l.1 == i - d) {
            continue;
        }
        out[slot] = Some((LINK_BASE + i as u64 * 2 + slot as u64, i - d, lt));
    }
    out
}

fn gen_summary(r: &mut Rng) -> String {
    let k = 3 + r.below(8);
    let mut s = String::new();
    for w in 0..k {
        if w > 0 {
            s.push(' ');
        }
        let w: &&str = r.pick(&WORDS);
        s.push_str(w);
    }
    let mut cs = s.chars();
    match cs.next() {
        Some(f) => f.to_uppercase().collect::<String>() + cs.as_str(),
        None => s,
    }
}

fn gen_description(r: &mut Rng, idx: u32) -> String {
    let paras = 1 + r.below(5);
    let mut s = String::new();
    for p in 0..paras {
        if p > 0 {
            s.push_str(if r.chance(500) { "\r\n\r\n" } else { "\n\n" });
        }
        let words = 10 + r.below(60);
        for w in 0..words {
            if w > 0 {
                s.push(if r.chance(30) { '\t' } else { ' ' });
            }
            let w: &&str = r.pick(&WORDS);
            s.push_str(w);
        }
        s.push('.');
    }
    if r.chance(100) {
        s.push_str("\n{code}\nfn main() { println!(\"hi\\n\"); }\n{code}");
    }
    // A rare NUL, as real Jira data sometimes holds (pasted from binaries).
    if idx % 997 == 13 {
        s.push_str(" nul:\u{0000}.");
    }
    s
}

fn base_histories(
    ds: &Dataset,
    idx: u32,
    base: &Core,
) -> (Vec<History>, Option<i64>, Option<usize>) {
    let nh = base.hist as u64;
    let mut out = Vec::with_capacity(nh as usize);
    let mut resolved = None;
    let mut resolution = None;
    if nh == 0 {
        return (out, resolved, resolution);
    }
    let mut r = Rng::new(ds.seed, idx, 4);
    let path = status_path(base.status as usize);
    let span = base.updated - base.created;
    let mut prev_status = OPEN;
    let mut prev_t = base.created;
    for k in 0..nh {
        let t = if k + 1 == nh {
            base.updated
        } else {
            let ideal = base.created + (span as i128 * (k + 1) as i128 / nh as i128) as i64;
            (ideal - r.below((span as u64 / nh / 2).max(1)) as i64).max(prev_t)
        };
        prev_t = t;
        let mut items = Vec::new();
        if (k as usize) < path.len() {
            let s = path[k as usize];
            items.push(HistoryItem {
                field: "status".into(),
                fieldtype: "jira",
                from: Some(STATUSES[prev_status].id.into()),
                from_string: Some(STATUSES[prev_status].name.into()),
                to: Some(STATUSES[s].id.into()),
                to_string: Some(STATUSES[s].name.into()),
            });
            if STATUSES[s].category_key == "done" {
                let res = if s == CLOSED {
                    1
                } else {
                    [0, 0, 0, 3, 2][r.below(5) as usize]
                };
                items.push(HistoryItem {
                    field: "resolution".into(),
                    fieldtype: "jira",
                    from: None,
                    from_string: None,
                    to: Some(RESOLUTIONS[res].id.into()),
                    to_string: Some(RESOLUTIONS[res].name.into()),
                });
                resolved = Some(t);
                resolution = Some(res);
            }
            prev_status = s;
        } else {
            let m = 1 + r.below(3);
            for _ in 0..m {
                items.push(random_item(ds, &mut r, idx));
            }
        }
        let author = if r.chance(20) {
            None
        } else {
            Some(r.below(USERS.len() as u64) as usize)
        };
        out.push(History {
            id: HIST_BASE + idx as u64 * HIST_PER_ISSUE + k,
            author,
            created_ms: t,
            items,
        });
    }
    (out, resolved, resolution)
}

/// A changelog item with `fieldtype` "jira".
fn jira(
    f: &str,
    from: Option<String>,
    fs: Option<String>,
    to: Option<String>,
    ts: Option<String>,
) -> HistoryItem {
    HistoryItem {
        field: f.into(),
        fieldtype: "jira",
        from,
        from_string: fs,
        to,
        to_string: ts,
    }
}

/// A changelog item with `fieldtype` "custom".
fn custom(
    f: &str,
    from: Option<String>,
    fs: Option<String>,
    to: Option<String>,
    ts: Option<String>,
) -> HistoryItem {
    HistoryItem {
        field: f.into(),
        fieldtype: "custom",
        from,
        from_string: fs,
        to,
        to_string: ts,
    }
}

/// A random changelog item of issue `idx` (one of twelve kinds, drawn from `r`).
fn random_item(ds: &Dataset, r: &mut Rng, idx: u32) -> HistoryItem {
    match r.below(12) {
        k @ 0..=3 => random_field_item(r, k),
        k @ 4..=6 => random_custom_item(r, k),
        k => random_text_or_link_item(ds, r, idx, k),
    }
}

/// Kinds 0..=3: assignee, priority, labels, due date.
fn random_field_item(r: &mut Rng, kind: u64) -> HistoryItem {
    match kind {
        0 => {
            let a = r.pick(&USERS);
            let b = r.pick(&USERS);
            jira(
                "assignee",
                Some(a.key.into()),
                Some(a.display_name.into()),
                Some(b.key.into()),
                Some(b.display_name.into()),
            )
        }
        1 => {
            let a = r.pick(&PRIORITIES);
            let b = r.pick(&PRIORITIES);
            jira(
                "priority",
                Some(a.id.into()),
                Some(a.name.into()),
                Some(b.id.into()),
                Some(b.name.into()),
            )
        }
        2 => jira(
            "labels",
            None,
            Some(r.pick(&LABELS).to_string()),
            None,
            Some(format!("{} {}", r.pick(&LABELS), r.pick(&LABELS))),
        ),
        _ => {
            let d = NaiveDate::from_ymd_opt(2024, 1 + r.below(12) as u32, 1 + r.below(28) as u32)
                .unwrap_or_default();
            jira(
                "duedate",
                None,
                None,
                Some(d.format("%Y-%m-%d").to_string()),
                Some(d.format("%Y-%m-%d 00:00:00.0").to_string()),
            )
        }
    }
}

/// Kinds 4..=6: Story Points, Severity, Sprint.
fn random_custom_item(r: &mut Rng, kind: u64) -> HistoryItem {
    match kind {
        4 => {
            let a = r.below(13);
            let b = r.below(13);
            custom(
                "Story Points",
                None,
                Some(a.to_string()),
                None,
                Some(b.to_string()),
            )
        }
        5 => {
            let (a, av) = r.pick(&SEVERITY_OPTIONS);
            let (b, bv) = r.pick(&SEVERITY_OPTIONS);
            custom(
                "Severity",
                Some(a.to_string()),
                Some(av.to_string()),
                Some(b.to_string()),
                Some(bv.to_string()),
            )
        }
        _ => {
            let s = 1 + r.below(30);
            custom(
                "Sprint",
                None,
                None,
                Some(s.to_string()),
                Some(format!("Sprint {s}")),
            )
        }
    }
}

/// Kinds 7..=11: description, summary, link, fix version, component.
fn random_text_or_link_item(ds: &Dataset, r: &mut Rng, idx: u32, kind: u64) -> HistoryItem {
    match kind {
        7 => jira(
            "description",
            None,
            Some("Old text with \"quotes\"\tand\ttabs".into()),
            None,
            Some(gen_summary(r)),
        ),
        8 => jira(
            "summary",
            None,
            Some(gen_summary(r)),
            None,
            Some(gen_summary(r)),
        ),
        9 => {
            let other = idx.saturating_sub(1 + r.below(LINK_REACH as u64) as u32);
            let lt = r.pick(&LINK_TYPES);
            let key = ds.key_of(other);
            jira(
                "Link",
                None,
                None,
                Some(key.clone()),
                Some(format!("This issue {} {key}", lt.outward)),
            )
        }
        10 => {
            let p = &ds.projects[(idx % ds.projects.len() as u32) as usize];
            let v = r.pick(&p.versions);
            jira(
                "Fix Version",
                None,
                None,
                Some(v.id.to_string()),
                Some(v.generated_name.clone()),
            )
        }
        _ => {
            let p = &ds.projects[(idx % ds.projects.len() as u32) as usize];
            let c = r.pick(&p.components);
            jira(
                "Component",
                Some(c.id.to_string()),
                Some(c.generated_name.to_string()),
                None,
                None,
            )
        }
    }
}

fn base_custom(ds: &Dataset, idx: u32, base: &Core) -> Vec<(usize, CfValue)> {
    let mut r = Rng::new(ds.seed, idx, 9);
    let mut v = Vec::new();
    let t = base.itype as usize;
    if r.chance(600) {
        let pts = [0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0];
        v.push((CF_STORY_POINTS, CfValue::Number(*r.pick(&pts))));
    }
    if r.chance(250) {
        v.push((
            CF_TEAM_NOTES,
            CfValue::Text(format!(
                "Notes: {}\n- {}\r\n- \"{}\"",
                gen_summary(&mut r),
                r.pick(&WORDS),
                r.pick(&WORDS)
            )),
        ));
    }
    if t == BUG || r.chance(200) {
        v.push((CF_SEVERITY, CfValue::Option(r.pick(&SEVERITY_OPTIONS).0)));
    }
    if r.chance(350) {
        let k = 1 + r.below(3);
        let mut o: Vec<u32> = (0..k).map(|_| r.pick(&PLATFORM_OPTIONS).0).collect();
        o.sort();
        o.dedup();
        v.push((CF_PLATFORMS, CfValue::Options(o)));
    }
    if r.chance(300) {
        v.push((
            CF_REVIEWER,
            CfValue::User(r.below(USERS.len() as u64) as usize),
        ));
    }
    if r.chance(150) {
        v.push((
            CF_GO_LIVE,
            CfValue::DateTime(base.created + r.below(90 * DAY_MS as u64) as i64),
        ));
    }
    if r.chance(200) {
        let d = (base.created + r.below(60) as i64 * DAY_MS) / DAY_MS;
        v.push((
            CF_TARGET_DATE,
            CfValue::Date(
                NaiveDate::from_num_days_from_ce_opt(719_163 + d as i32).unwrap_or_default(),
            ),
        ));
    }
    if t != EPIC && r.chance(450) {
        let s = ((base.created - START_MS) / (14 * DAY_MS)) as u32;
        let p = (idx % ds.projects.len() as u32) * 1000;
        let mut sprints = vec![p + s + 1];
        if r.chance(300) {
            sprints.push(p + s + 2);
        }
        v.push((CF_SPRINT, CfValue::Sprints(sprints)));
    }
    if t == EPIC {
        v.push((
            CF_EPIC_NAME,
            CfValue::Text(format!("Epic: {}", gen_summary(&mut r))),
        ));
    }
    if r.chance(150) {
        let k = 1 + r.below(2);
        let mut l: Vec<String> = (0..k).map(|_| r.pick(&LABELS).to_string()).collect();
        l.sort();
        l.dedup();
        v.push((CF_TAGS, CfValue::Labels(l)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn keys(n: usize) -> Vec<String> {
        project_keys(n)
    }

    #[test]
    fn bounds_are_the_documented_instants() {
        use chrono::TimeZone;
        assert_eq!(
            chrono::Utc
                .with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis(),
            START_MS
        );
        assert_eq!(
            chrono::Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
                - 1,
            END_MS
        );
    }

    #[test]
    fn layout_keys_and_times() {
        let ds = Dataset::new(9, 1000, &keys(3));
        assert_eq!(ds.key_of(0), "DEMO-1");
        assert_eq!(ds.key_of(4), "ALPHA-2");
        assert_eq!(ds.index_of_key("beta-3"), Some(8));
        assert_eq!(ds.index_of_key("DEMO-335"), None);
        assert_eq!(ds.resolve("10004"), Some(4));
        let total: u32 = (0..3).map(|p| base_count(1000, 3, p)).sum();
        assert_eq!(total, 1000);
        for i in 0..1000 {
            let c = ds.core(i);
            assert!(c.created >= START_MS && c.updated <= END_MS && c.created <= c.updated);
            let is = ds.issue(i);
            if let Some(last) = is.histories.last() {
                assert_eq!(last.created_ms, c.updated, "last history is the update");
            } else {
                assert_eq!(c.updated, c.created);
            }
            assert!(
                is.histories
                    .windows(2)
                    .all(|w| w[0].created_ms <= w[1].created_ms)
            );
            assert_eq!(
                is.resolution.is_some(),
                STATUSES[is.status].category_key == "done"
            );
        }
    }

    #[test]
    fn dataset_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Dataset>();
        assert_send_sync::<Issue>();
    }

    #[test]
    fn a_million_issues_stay_compact() {
        assert!(std::mem::size_of::<Core>() <= 32);
        let ds = Dataset::new(1, 1_000_000, &keys(5));
        assert_eq!(ds.len(), 1_000_000);
        let is = ds.issue(999_999);
        assert_eq!(is.id, ID_BASE + 999_999);
    }

    #[test]
    fn format_is_jira_dc() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            format_ts(ny, 1_710_053_999_123),
            "2024-03-10T01:59:59.123-0500"
        );
        assert_eq!(
            format_ts(ny, 1_710_054_000_000),
            "2024-03-10T03:00:00.000-0400"
        );
        // The fast formatter agrees with chrono's, in zones with odd offsets.
        let mut r = Rng::new(1, 2, 3);
        for tz in [
            ny,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Australia::Adelaide,
            chrono_tz::UTC,
        ] {
            for _ in 0..2000 {
                let ms = START_MS - 1000 + r.below((END_MS - START_MS) as u64) as i64;
                let want = tz
                    .timestamp_millis_opt(ms)
                    .unwrap()
                    .format("%Y-%m-%dT%H:%M:%S%.3f%z")
                    .to_string();
                assert_eq!(format_ts(tz, ms), want);
            }
        }
    }
}
