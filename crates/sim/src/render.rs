//! Rendering the simulated Jira's JSON exactly as Jira DC shapes it: issues
//! (with field selection and `expand=changelog`), search pages, the field
//! catalogue, `/myself` and `/serverInfo`. Hand-written writers into a byte
//! buffer, so pages render fast enough for benchmarks.

use chrono::TimeZone;

use super::catalog::*;
use super::data::{CfValue, Dataset, History, ID_BASE, Issue, Poison, Project, format_ts};
pub use super::frags::Frags;
use super::frags::sprint_string;
use super::json::{key_field, opt_str, raw};
pub use super::json::{write_json_str, write_ts};
use super::rng::mix;

/// The system fields the simulator renders, in output order:
/// (id, name, schema type, schema items, orderable, searchable, clause names).
/// (id, name, schema type, schema items, orderable, searchable, clause names).
pub type SystemField = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    bool,
    bool,
    &'static [&'static str],
);

pub static SYSTEM_FIELDS: [SystemField; 31] = [
    (
        "summary",
        "Summary",
        "string",
        None,
        true,
        true,
        &["summary"],
    ),
    (
        "issuetype",
        "Issue Type",
        "issuetype",
        None,
        true,
        true,
        &["issuetype", "type"],
    ),
    (
        "project",
        "Project",
        "project",
        None,
        false,
        true,
        &["project"],
    ),
    ("status", "Status", "status", None, false, true, &["status"]),
    (
        "priority",
        "Priority",
        "priority",
        None,
        true,
        true,
        &["priority"],
    ),
    (
        "resolution",
        "Resolution",
        "resolution",
        None,
        true,
        true,
        &["resolution"],
    ),
    (
        "resolutiondate",
        "Resolved",
        "datetime",
        None,
        false,
        true,
        &["resolutiondate", "resolved"],
    ),
    (
        "created",
        "Created",
        "datetime",
        None,
        false,
        true,
        &["created", "createdDate"],
    ),
    (
        "updated",
        "Updated",
        "datetime",
        None,
        false,
        true,
        &["updated", "updatedDate"],
    ),
    (
        "duedate",
        "Due Date",
        "date",
        None,
        true,
        true,
        &["due", "duedate"],
    ),
    (
        "assignee",
        "Assignee",
        "user",
        None,
        true,
        true,
        &["assignee"],
    ),
    (
        "reporter",
        "Reporter",
        "user",
        None,
        true,
        true,
        &["reporter"],
    ),
    (
        "creator",
        "Creator",
        "user",
        None,
        false,
        true,
        &["creator"],
    ),
    (
        "description",
        "Description",
        "string",
        None,
        true,
        true,
        &["description"],
    ),
    (
        "labels",
        "Labels",
        "array",
        Some("string"),
        true,
        true,
        &["labels"],
    ),
    (
        "components",
        "Component/s",
        "array",
        Some("component"),
        true,
        true,
        &["component"],
    ),
    (
        "fixVersions",
        "Fix Version/s",
        "array",
        Some("version"),
        true,
        true,
        &["fixVersion"],
    ),
    (
        "versions",
        "Affects Version/s",
        "array",
        Some("version"),
        true,
        true,
        &["affectedVersion"],
    ),
    (
        "issuelinks",
        "Linked Issues",
        "array",
        Some("issuelinks"),
        true,
        true,
        &["issueLink"],
    ),
    (
        "subtasks",
        "Sub-Tasks",
        "array",
        Some("issuelinks"),
        false,
        true,
        &["subtasks"],
    ),
    (
        "parent",
        "Parent",
        "issuelink",
        None,
        false,
        true,
        &["parent"],
    ),
    (
        "environment",
        "Environment",
        "string",
        None,
        true,
        true,
        &["environment"],
    ),
    ("votes", "Votes", "votes", None, false, false, &["votes"]),
    (
        "watches",
        "Watchers",
        "watches",
        None,
        false,
        false,
        &["watchers"],
    ),
    (
        "workratio",
        "Work Ratio",
        "number",
        None,
        false,
        true,
        &["workratio"],
    ),
    (
        "lastViewed",
        "Last Viewed",
        "datetime",
        None,
        false,
        false,
        &["lastViewed"],
    ),
    (
        "progress",
        "Progress",
        "progress",
        None,
        false,
        false,
        &["progress"],
    ),
    (
        "aggregateprogress",
        "Σ Progress",
        "progress",
        None,
        false,
        false,
        &["aggregateprogress"],
    ),
    (
        "timespent",
        "Time Spent",
        "number",
        None,
        false,
        false,
        &["timespent"],
    ),
    (
        "timeoriginalestimate",
        "Original Estimate",
        "number",
        None,
        false,
        true,
        &["originalEstimate", "timeoriginalestimate"],
    ),
    (
        "timeestimate",
        "Remaining Estimate",
        "number",
        None,
        false,
        true,
        &["remainingEstimate", "timeestimate"],
    ),
];

const F_SUMMARY: u32 = 0;
const F_ISSUETYPE: u32 = 1;
const F_PROJECT: u32 = 2;
const F_STATUS: u32 = 3;
const F_PRIORITY: u32 = 4;
const F_RESOLUTION: u32 = 5;
const F_RESOLUTIONDATE: u32 = 6;
const F_CREATED: u32 = 7;
const F_UPDATED: u32 = 8;
const F_DUEDATE: u32 = 9;
const F_ASSIGNEE: u32 = 10;
const F_REPORTER: u32 = 11;
const F_CREATOR: u32 = 12;
const F_DESCRIPTION: u32 = 13;
const F_LABELS: u32 = 14;
const F_COMPONENTS: u32 = 15;
const F_FIXVERSIONS: u32 = 16;
const F_VERSIONS: u32 = 17;
const F_ISSUELINKS: u32 = 18;
const F_SUBTASKS: u32 = 19;
const F_PARENT: u32 = 20;
const F_ENVIRONMENT: u32 = 21;
const F_VOTES: u32 = 22;
const F_WATCHES: u32 = 23;
const F_WORKRATIO: u32 = 24;
const F_PROGRESS: u32 = 26;
const F_AGGREGATEPROGRESS: u32 = 27;

/// Which fields to render: bit masks over [`SYSTEM_FIELDS`] and [`CUSTOM_FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSel {
    pub sys: u32,
    pub cf: u32,
}

impl FieldSel {
    /// Every field (`*all`); in the simulator `*navigable` is the same set.
    pub const ALL: FieldSel = FieldSel {
        sys: (1 << SYSTEM_FIELDS.len()) - 1,
        cf: (1 << CUSTOM_FIELDS.len()) - 1,
    };
    pub const NONE: FieldSel = FieldSel { sys: 0, cf: 0 };

    /// Parses Jira's `fields` parameter items (`*all`, `*navigable`, `id`,
    /// `-id`); with no positive item the default set is the start. Unknown ids
    /// are ignored, as Jira does.
    pub fn parse<S: AsRef<str>>(items: &[S], default: FieldSel) -> FieldSel {
        let items: Vec<&str> = items
            .iter()
            .flat_map(|s| s.as_ref().split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let any_positive = items.iter().any(|s| !s.starts_with('-'));
        let mut sel = if any_positive {
            FieldSel::NONE
        } else {
            default
        };
        for item in items {
            let (neg, name) = match item.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, item),
            };
            let bits = match name {
                "*all" | "*navigable" => FieldSel::ALL,
                _ => FieldSel::one(name),
            };
            if neg {
                sel.sys &= !bits.sys;
                sel.cf &= !bits.cf;
            } else {
                sel.sys |= bits.sys;
                sel.cf |= bits.cf;
            }
        }
        sel
    }

    fn one(name: &str) -> FieldSel {
        if let Some(i) = SYSTEM_FIELDS.iter().position(|f| f.0 == name) {
            return FieldSel { sys: 1 << i, cf: 0 };
        }
        if let Some(i) = CUSTOM_FIELDS.iter().position(|f| f.id() == name) {
            return FieldSel { sys: 0, cf: 1 << i };
        }
        FieldSel::NONE
    }

    #[inline]
    fn has(&self, f: u32) -> bool {
        self.sys & (1 << f) != 0
    }
}

fn ts(ds: &Dataset, out: &mut Vec<u8>, ms: i64) {
    out.push(b'"');
    write_ts(out, ds.server_tz, ms);
    out.push(b'"');
}

fn opt_user(ds: &Dataset, out: &mut Vec<u8>, u: Option<usize>) {
    match u {
        Some(u) => write_user(ds, out, u),
        None => raw(out, "null"),
    }
}

fn write_user(ds: &Dataset, out: &mut Vec<u8>, u: usize) {
    out.extend_from_slice(&ds.frags.users[u]);
}

fn write_status(ds: &Dataset, out: &mut Vec<u8>, s: usize) {
    out.extend_from_slice(&ds.frags.statuses[s]);
}

fn write_issuetype(ds: &Dataset, out: &mut Vec<u8>, t: usize) {
    out.extend_from_slice(&ds.frags.types[t]);
}

fn write_priority(ds: &Dataset, out: &mut Vec<u8>, p: Option<usize>) {
    match p {
        Some(p) => out.extend_from_slice(&ds.frags.priorities[p]),
        None => raw(out, "null"),
    }
}

/// The `{id,key,self,fields:{summary,status,priority,issuetype}}` stub of another issue.
fn write_issue_stub(ds: &Dataset, out: &mut Vec<u8>, j: u32) {
    let c = ds.core(j);
    let id = ID_BASE + j as u64;
    raw(
        out,
        &format!(
            "{{\"id\":\"{id}\",\"key\":\"{}\",\"self\":\"{}/rest/api/2/issue/{id}\",\"fields\":{{\"summary\":",
            ds.key_of(j),
            ds.base_url
        ),
    );
    write_json_str(out, &ds.summary_of(j));
    raw(out, ",\"status\":");
    write_status(ds, out, c.status as usize);
    raw(out, ",\"priority\":");
    write_priority(ds, out, ds.priority_of(j));
    raw(out, ",\"issuetype\":");
    write_issuetype(ds, out, c.itype as usize);
    raw(out, "}}");
}

fn write_option(ds: &Dataset, out: &mut Vec<u8>, id: u32) {
    let value = SEVERITY_OPTIONS
        .iter()
        .chain(PLATFORM_OPTIONS.iter())
        .find(|o| o.0 == id)
        .map(|o| o.1)
        .unwrap_or("?");
    raw(
        out,
        &format!(
            "{{\"self\":\"{}/rest/api/2/customFieldOption/{id}\",\"value\":",
            ds.base_url
        ),
    );
    write_json_str(out, value);
    raw(out, &format!(",\"id\":\"{id}\",\"disabled\":false}}"));
}

/// A custom field value as Jira renders it in `fields`.
pub(crate) fn write_cf_value(ds: &Dataset, out: &mut Vec<u8>, v: &CfValue) {
    match v {
        CfValue::Number(x) => raw(out, &format!("{x:?}")),
        CfValue::Text(s) => write_json_str(out, s),
        CfValue::Option(id) => write_option(ds, out, *id),
        CfValue::Options(ids) => {
            out.push(b'[');
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_option(ds, out, *id);
            }
            out.push(b']');
        }
        CfValue::User(u) => write_user(ds, out, *u),
        CfValue::DateTime(ms) => ts(ds, out, *ms),
        CfValue::Date(d) => raw(out, &format!("\"{}\"", d.format("%Y-%m-%d"))),
        CfValue::Sprints(ids) => {
            out.push(b'[');
            for (i, id) in ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match ds.frags.sprints.get(id) {
                    Some(lit) => out.extend_from_slice(lit),
                    None => write_json_str(out, &sprint_string(ds.server_tz, *id)),
                }
            }
            out.push(b']');
        }
        CfValue::EpicLink(e) => {
            if ds.is_live(*e) {
                write_json_str(out, &ds.key_of(*e))
            } else {
                raw(out, "null")
            }
        }
        CfValue::Labels(l) => {
            out.push(b'[');
            for (i, s) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json_str(out, s);
            }
            out.push(b']');
        }
    }
}

/// Whether and how much of an issue's changelog is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Changelog {
    /// No `changelog` member (no `expand=changelog`).
    #[default]
    Omit,
    /// Every history: `maxResults` = `total` = their count.
    Full,
    /// At most this many histories, oldest first, as Jira cuts long
    /// changelogs: `"startAt":0,"maxResults":N,"total":<true count>` when
    /// cut (an issue with at most N histories renders as with `Full`).
    Cut(u32),
}

impl Changelog {
    /// `Full`, or `Cut(n)` when `cut` is `Some(n)`.
    pub fn expanded(cut: Option<u32>) -> Changelog {
        cut.map_or(Changelog::Full, Changelog::Cut)
    }

    /// Is a changelog rendered at all?
    pub fn is_rendered(self) -> bool {
        self != Changelog::Omit
    }
}

/// The `changelog` object of `hs` (oldest first), cut to `cut` histories.
fn write_histories(ds: &Dataset, out: &mut Vec<u8>, hs: &[History], cut: Option<u32>) {
    let total = hs.len();
    // Uncut, maxResults = total; cut, maxResults = what is shown.
    let shown = cut.map_or(total, |n| total.min(n as usize));
    raw(
        out,
        &format!("{{\"startAt\":0,\"maxResults\":{shown},\"total\":{total},\"histories\":["),
    );
    let hs = &hs[..shown];
    for (i, h) in hs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        raw(out, &format!("{{\"id\":\"{}\",", h.id));
        if let Some(a) = h.author {
            raw(out, "\"author\":");
            write_user(ds, out, a);
            out.push(b',');
        }
        raw(out, "\"created\":");
        ts(ds, out, h.created_ms);
        raw(out, ",\"items\":[");
        for (k, it) in h.items.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            raw(out, "{\"field\":");
            write_json_str(out, &it.field);
            raw(out, ",\"fieldtype\":\"");
            raw(out, it.fieldtype);
            raw(out, "\",\"from\":");
            opt_str(out, it.from.as_deref());
            raw(out, ",\"fromString\":");
            opt_str(out, it.from_string.as_deref());
            raw(out, ",\"to\":");
            opt_str(out, it.to.as_deref());
            raw(out, ",\"toString\":");
            opt_str(out, it.to_string.as_deref());
            out.push(b'}');
        }
        raw(out, "]}");
    }
    raw(out, "]}");
}

/// `fields.fixVersions` or `fields.versions`: the versions' current names,
/// descriptions, flags and release dates.
fn write_versions(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, vs: &[(u64, String)]) {
    out.push(b'[');
    for (i, (id, name)) in vs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let def = ds.projects[is.project_index]
            .versions
            .iter()
            .find(|v| v.id == *id);
        raw(
            out,
            &format!(
                "{{\"self\":\"{}/rest/api/2/version/{id}\",\"id\":\"{id}\",",
                ds.base_url
            ),
        );
        if let Some(d) = def.and_then(|d| d.description.as_deref()) {
            raw(out, "\"description\":");
            write_json_str(out, d);
            out.push(b',');
        }
        raw(out, "\"name\":");
        write_json_str(out, name);
        let released = def.is_some_and(|d| d.released);
        let archived = def.is_some_and(|d| d.archived);
        raw(
            out,
            &format!(",\"archived\":{archived},\"released\":{released}"),
        );
        if let Some(d) = def.and_then(|d| d.release_date) {
            raw(
                out,
                &format!(",\"releaseDate\":\"{}\"", d.format("%Y-%m-%d")),
            );
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// The opening of an issue object: `{"expand","id","self","key"` (no
/// closing brace).
fn write_issue_head(ds: &Dataset, out: &mut Vec<u8>, id: u64, key: &str) {
    raw(
        out,
        &format!(
            "{{\"expand\":\"operations,versionedRepresentations,editmeta,changelog,renderedFields\",\"id\":\"{id}\",\"self\":\"{b}/rest/api/2/issue/{id}\",\"key\":\"{key}\"",
            b = ds.base_url
        ),
    );
}

/// One issue object as it appears in `issues[]` of a search (or from GET
/// issue). With no field selected (`fields=id`, `fields=key`) there is no
/// `fields` member at all, as in Jira.
pub fn write_issue(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, sel: FieldSel, cl: Changelog) {
    write_issue_head(ds, out, is.id, &is.key);
    if sel != FieldSel::NONE {
        raw(out, ",\"fields\":{");
        write_fields(ds, out, is, sel);
        out.push(b'}');
    }
    match cl {
        Changelog::Omit => {}
        Changelog::Full => {
            raw(out, ",\"changelog\":");
            write_histories(ds, out, &is.histories, None);
        }
        Changelog::Cut(n) => {
            raw(out, ",\"changelog\":");
            write_histories(ds, out, &is.histories, Some(n));
        }
    }
    out.push(b'}');
}

/// The members of `fields` that `sel` selects.
fn write_fields(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, sel: FieldSel) {
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        key_field(out, name);
    };
    for f in 0..SYSTEM_FIELDS.len() as u32 {
        if !sel.has(f) {
            continue;
        }
        if f == F_PARENT && is.parent.is_none() {
            continue;
        }
        sep(out, SYSTEM_FIELDS[f as usize].0);
        write_system_field(ds, out, is, f);
    }
    for (ci, cf) in CUSTOM_FIELDS.iter().enumerate() {
        if sel.cf & (1 << ci) == 0 {
            continue;
        }
        sep(out, &cf.id());
        write_custom_field(ds, out, is, ci);
    }
}

/// The value of system field `f` (an index into [`SYSTEM_FIELDS`]) of `is`.
fn write_system_field(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, f: u32) {
    match f {
        F_SUMMARY => write_json_str(out, &is.summary),
        F_ISSUETYPE => write_issuetype(ds, out, is.issue_type),
        F_PROJECT => write_project(ds, out, is),
        F_STATUS => write_status(ds, out, is.status),
        F_PRIORITY => write_priority(ds, out, is.priority),
        F_RESOLUTION => write_resolution(ds, out, is.resolution),
        F_RESOLUTIONDATE => match is.resolved_ms {
            Some(ms) => ts(ds, out, ms),
            None => raw(out, "null"),
        },
        F_CREATED if ds.poisoned.get(&is.index) == Some(&Poison::BadDate) => {
            raw(out, "\"yesterday\"")
        }
        F_CREATED => ts(ds, out, is.created_ms),
        F_UPDATED => ts(ds, out, is.updated_ms),
        F_DUEDATE => match is.due_date {
            Some(d) => raw(out, &format!("\"{}\"", d.format("%Y-%m-%d"))),
            None => raw(out, "null"),
        },
        F_ASSIGNEE => opt_user(ds, out, is.assignee),
        F_REPORTER => opt_user(ds, out, is.reporter),
        F_CREATOR => opt_user(ds, out, is.creator),
        F_DESCRIPTION => opt_str(out, is.description.as_deref()),
        F_LABELS => write_str_array(out, &is.labels),
        F_COMPONENTS => write_components(ds, out, is),
        F_FIXVERSIONS => write_versions(ds, out, is, &is.fix_versions),
        F_VERSIONS => write_versions(ds, out, is, &is.versions),
        F_ISSUELINKS => write_links(ds, out, is),
        F_SUBTASKS => {
            out.push(b'[');
            for (i, s) in is.subtasks.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_issue_stub(ds, out, *s);
            }
            out.push(b']');
        }
        F_PARENT => {
            if let Some(p) = is.parent {
                write_issue_stub(ds, out, p);
            }
        }
        F_ENVIRONMENT => {
            if is.id % 10 == 3 {
                write_json_str(out, "Chrome 120 on Windows 11\r\nJava 17 (Temurin)")
            } else {
                raw(out, "null")
            }
        }
        F_VOTES | F_WATCHES => write_social(ds, out, is, f),
        F_WORKRATIO => raw(out, "-1"),
        F_PROGRESS | F_AGGREGATEPROGRESS => raw(out, "{\"progress\":0,\"total\":0}"),
        _ => raw(out, "null"),
    }
}

/// The value of custom field `ci` (an index into [`CUSTOM_FIELDS`]) of `is`.
fn write_custom_field(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, ci: usize) {
    if ci == CF_STORY_POINTS && ds.poisoned.get(&is.index) == Some(&Poison::WrongType) {
        raw(out, "\"lots\"");
        return;
    }
    match is.custom.iter().find(|(k, _)| *k == ci) {
        Some((_, v)) => write_cf_value(ds, out, v),
        None => raw(out, "null"),
    }
}

/// `fields.project`.
fn write_project(ds: &Dataset, out: &mut Vec<u8>, is: &Issue) {
    let b = &ds.base_url;
    let p = &ds.projects[is.project_index];
    raw(
        out,
        &format!(
            "{{\"self\":\"{b}/rest/api/2/project/{id}\",\"id\":\"{id}\",\"key\":\"{key}\",\"name\":",
            id = p.id,
            key = p.key
        ),
    );
    write_json_str(out, &p.name);
    raw(out, ",\"projectTypeKey\":\"software\",");
    write_project_avatars(b, out);
    write_project_category(b, out, p);
    out.push(b'}');
}

/// `"avatarUrls":{…}` of a project.
pub(crate) fn write_project_avatars(b: &str, out: &mut Vec<u8>) {
    raw(
        out,
        &format!(
            "\"avatarUrls\":{{\"48x48\":\"{b}/secure/projectavatar?avatarId=10324\",\"24x24\":\"{b}/secure/projectavatar?size=small&avatarId=10324\",\"16x16\":\"{b}/secure/projectavatar?size=xsmall&avatarId=10324\",\"32x32\":\"{b}/secure/projectavatar?size=medium&avatarId=10324\"}}"
        ),
    );
}

/// `"projectCategory":{…}` (with a leading comma) if `p` has a category.
pub(crate) fn write_project_category(base: &str, out: &mut Vec<u8>, p: &Project) {
    if let Some(c) = p.category.map(|c| &PROJECT_CATEGORIES[c]) {
        raw(
            out,
            &format!(
                ",\"projectCategory\":{{\"self\":\"{base}/rest/api/2/projectCategory/{id}\",\"id\":\"{id}\",\"name\":",
                id = c.id
            ),
        );
        write_json_str(out, c.name);
        raw(out, ",\"description\":");
        write_json_str(out, c.description);
        out.push(b'}');
    }
}

/// `fields.resolution`: an object, or `null`.
fn write_resolution(ds: &Dataset, out: &mut Vec<u8>, resolution: Option<usize>) {
    let b = &ds.base_url;
    match resolution {
        Some(r) => {
            let r = &RESOLUTIONS[r];
            raw(
                out,
                &format!(
                    "{{\"self\":\"{b}/rest/api/2/resolution/{id}\",\"id\":\"{id}\",\"description\":",
                    id = r.id
                ),
            );
            write_json_str(out, r.description);
            raw(out, ",\"name\":");
            write_json_str(out, r.name);
            out.push(b'}');
        }
        None => raw(out, "null"),
    }
}

/// A JSON array of strings.
fn write_str_array(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (i, l) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, l);
    }
    out.push(b']');
}

/// `fields.components`: current names, and descriptions where set.
fn write_components(ds: &Dataset, out: &mut Vec<u8>, is: &Issue) {
    let b = &ds.base_url;
    out.push(b'[');
    for (i, (id, name)) in is.components.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        raw(
            out,
            &format!("{{\"self\":\"{b}/rest/api/2/component/{id}\",\"id\":\"{id}\",\"name\":"),
        );
        write_json_str(out, name);
        let def = ds.projects[is.project_index]
            .components
            .iter()
            .find(|c| c.id == *id);
        if let Some(d) = def.and_then(|c| c.description.as_deref()) {
            raw(out, ",\"description\":");
            write_json_str(out, d);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// `fields.issuelinks`, each with a stub of the issue at the other end.
fn write_links(ds: &Dataset, out: &mut Vec<u8>, is: &Issue) {
    let b = &ds.base_url;
    out.push(b'[');
    for (i, l) in is.links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let t = &LINK_TYPES[l.link_type];
        raw(
            out,
            &format!(
                "{{\"id\":\"{id}\",\"self\":\"{b}/rest/api/2/issueLink/{id}\",\"type\":{{\"id\":\"{tid}\",\"name\":\"{tn}\",\"inward\":\"{ti}\",\"outward\":\"{to}\",\"self\":\"{b}/rest/api/2/issueLinkType/{tid}\"}},",
                id = l.id,
                tid = t.id,
                tn = t.name,
                ti = t.inward,
                to = t.outward
            ),
        );
        raw(
            out,
            if l.outward {
                "\"outwardIssue\":"
            } else {
                "\"inwardIssue\":"
            },
        );
        write_issue_stub(ds, out, l.other_index);
        out.push(b'}');
    }
    out.push(b']');
}

/// `fields.votes` (`f` = [`F_VOTES`]) or `fields.watches`, counts derived from the id.
fn write_social(ds: &Dataset, out: &mut Vec<u8>, is: &Issue, f: u32) {
    let b = &ds.base_url;
    if f == F_VOTES {
        raw(
            out,
            &format!(
                "{{\"self\":\"{b}/rest/api/2/issue/{}/votes\",\"votes\":{},\"hasVoted\":false}}",
                is.key,
                mix(is.id) % 4
            ),
        );
    } else {
        raw(
            out,
            &format!(
                "{{\"self\":\"{b}/rest/api/2/issue/{}/watchers\",\"watchCount\":{},\"isWatching\":false}}",
                is.key,
                1 + mix(is.id ^ 7) % 5
            ),
        );
    }
}

/// The paging numbers of a search response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    pub start_at: u64,
    pub max_results: u64,
    pub total: u64,
}

/// A search response body for the given issue indexes (already paged).
/// Issues with neither fields nor a changelog (`fields=id`) are written from
/// the per-issue core alone, without materialising them: the census path.
pub fn write_search_page(
    ds: &Dataset,
    out: &mut Vec<u8>,
    head: PageHeader,
    page: &[u32],
    sel: FieldSel,
    cl: Changelog,
) {
    let PageHeader {
        start_at,
        max_results,
        total,
    } = head;
    let expand = if cl.is_rendered() {
        "changelog,schema,names"
    } else {
        "schema,names"
    };
    raw(
        out,
        &format!(
            "{{\"expand\":\"{expand}\",\"startAt\":{start_at},\"maxResults\":{max_results},\"total\":{total},\"issues\":["
        ),
    );
    let light = sel == FieldSel::NONE && cl == Changelog::Omit;
    for (i, &idx) in page.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if light {
            write_issue_head(ds, out, ID_BASE + idx as u64, &ds.key_of(idx));
            out.push(b'}');
        } else {
            let is = ds.issue(idx);
            write_issue(ds, out, &is, sel, cl);
        }
    }
    raw(out, "]}");
}

/// The `"names"` and/or `"schema"` members a search adds for `expand=names,schema`
/// (each starting with a comma), for the selected fields.
pub fn names_and_schema(sel: FieldSel, names: bool, schema: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let sys: Vec<&SystemField> = SYSTEM_FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.sys & (1 << i) != 0)
        .map(|(_, f)| f)
        .collect();
    let cfs: Vec<&CustomField> = CUSTOM_FIELDS
        .iter()
        .enumerate()
        .filter(|(i, _)| sel.cf & (1 << i) != 0)
        .map(|(_, f)| f)
        .collect();
    if names {
        raw(&mut out, ",\"names\":{");
        let mut first = true;
        for (id, name, ..) in &sys {
            if !first {
                out.push(b',');
            }
            first = false;
            key_field(&mut out, id);
            write_json_str(&mut out, name);
        }
        for cf in &cfs {
            if !first {
                out.push(b',');
            }
            first = false;
            key_field(&mut out, &cf.id());
            write_json_str(&mut out, cf.name);
        }
        out.push(b'}');
    }
    if schema {
        raw(&mut out, ",\"schema\":{");
        let mut first = true;
        for (id, _, ty, items, ..) in &sys {
            if !first {
                out.push(b',');
            }
            first = false;
            key_field(&mut out, id);
            raw(&mut out, &format!("{{\"type\":\"{ty}\""));
            if let Some(it) = items {
                raw(&mut out, &format!(",\"items\":\"{it}\""));
            }
            raw(&mut out, &format!(",\"system\":\"{id}\"}}"));
        }
        for cf in &cfs {
            if !first {
                out.push(b',');
            }
            first = false;
            key_field(&mut out, &cf.id());
            let (ty, items) = cf.schema();
            raw(&mut out, &format!("{{\"type\":\"{ty}\""));
            if let Some(it) = items {
                raw(&mut out, &format!(",\"items\":\"{it}\""));
            }
            raw(
                &mut out,
                &format!(",\"custom\":\"{}\",\"customId\":{}}}", cf.custom, cf.num),
            );
        }
        out.push(b'}');
    }
    out
}

/// `GET /rest/api/2/field`: every system and custom field the simulator emits.
pub fn field_list(ds: &Dataset) -> Vec<u8> {
    let _ = ds;
    let mut out = Vec::with_capacity(8192);
    out.push(b'[');
    let mut first = true;
    let mut comma = |out: &mut Vec<u8>| {
        if !first {
            out.push(b',');
        }
        first = false;
    };
    comma(&mut out);
    raw(
        &mut out,
        "{\"id\":\"issuekey\",\"name\":\"Key\",\"custom\":false,\"orderable\":false,\"navigable\":true,\"searchable\":false,\"clauseNames\":[\"id\",\"issue\",\"issuekey\",\"key\"]}",
    );
    for (id, name, ty, items, orderable, searchable, clauses) in SYSTEM_FIELDS.iter() {
        comma(&mut out);
        raw(&mut out, "{\"id\":");
        write_json_str(&mut out, id);
        raw(&mut out, ",\"name\":");
        write_json_str(&mut out, name);
        raw(
            &mut out,
            &format!(
                ",\"custom\":false,\"orderable\":{orderable},\"navigable\":true,\"searchable\":{searchable},\"clauseNames\":["
            ),
        );
        for (i, c) in clauses.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(&mut out, c);
        }
        raw(&mut out, &format!("],\"schema\":{{\"type\":\"{ty}\""));
        if let Some(it) = items {
            raw(&mut out, &format!(",\"items\":\"{it}\""));
        }
        raw(&mut out, &format!(",\"system\":\"{id}\"}}}}"));
    }
    for cf in CUSTOM_FIELDS.iter() {
        comma(&mut out);
        let (ty, items) = cf.schema();
        raw(&mut out, &format!("{{\"id\":\"{}\",\"name\":", cf.id()));
        write_json_str(&mut out, cf.name);
        raw(
            &mut out,
            &format!(
                ",\"custom\":true,\"orderable\":true,\"navigable\":true,\"searchable\":true,\"clauseNames\":[\"cf[{}]\",",
                cf.num
            ),
        );
        write_json_str(&mut out, cf.name);
        raw(&mut out, &format!("],\"schema\":{{\"type\":\"{ty}\""));
        if let Some(it) = items {
            raw(&mut out, &format!(",\"items\":\"{it}\""));
        }
        raw(
            &mut out,
            &format!(",\"custom\":\"{}\",\"customId\":{}}}}}", cf.custom, cf.num),
        );
    }
    out.push(b']');
    out
}

/// `GET /rest/api/2/myself` for the PAT's user, in `time_zone`.
pub fn myself(ds: &Dataset, time_zone: &str) -> Vec<u8> {
    let u = &SIM_USER;
    let b = &ds.base_url;
    let mut out = Vec::new();
    raw(
        &mut out,
        &format!(
            "{{\"self\":\"{b}/rest/api/2/user?username={n}\",\"key\":\"{k}\",\"name\":\"{n}\",\"emailAddress\":\"{e}\",\"avatarUrls\":{{\"48x48\":\"{b}/secure/useravatar?avatarId=10122\",\"24x24\":\"{b}/secure/useravatar?size=small&avatarId=10122\",\"16x16\":\"{b}/secure/useravatar?size=xsmall&avatarId=10122\",\"32x32\":\"{b}/secure/useravatar?size=medium&avatarId=10122\"}},\"displayName\":\"{d}\",\"active\":true,\"deleted\":false,\"timeZone\":",
            n = u.name,
            k = u.key,
            e = u.email,
            d = u.display_name
        ),
    );
    write_json_str(&mut out, time_zone);
    raw(
        &mut out,
        ",\"locale\":\"en_US\",\"groups\":{\"size\":2,\"items\":[]},\"applicationRoles\":{\"size\":1,\"items\":[]},\"expand\":\"groups,applicationRoles\"}",
    );
    out
}

/// `GET /rest/api/2/serverInfo` (deploymentType DataCenter).
pub fn server_info(ds: &Dataset, now_ms: i64) -> Vec<u8> {
    let build = ds
        .server_tz
        .timestamp_millis_opt(1_733_000_000_000)
        .single()
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string())
        .unwrap_or_default();
    format!(
        "{{\"baseUrl\":\"{b}\",\"version\":\"10.3.1\",\"versionNumbers\":[10,3,1],\"deploymentType\":\"DataCenter\",\"buildNumber\":10030001,\"buildDate\":\"{build}\",\"serverTime\":\"{now}\",\"scmInfo\":\"0000000000000000000000000000000000000000\",\"serverTitle\":\"Jira Simulator\"}}",
        b = ds.base_url,
        now = format_ts(ds.server_tz, now_ms)
    )
    .into_bytes()
}

impl Issue {
    /// The custom field values as `(field id, value)`; the value is the JSON
    /// Jira renders in `fields`.
    pub fn custom_values(&self, ds: &Dataset) -> Vec<(String, serde_json::Value)> {
        self.custom
            .iter()
            .map(|(cf, v)| {
                let mut out = Vec::new();
                write_cf_value(ds, &mut out, v);
                let value = serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null);
                (CUSTOM_FIELDS[*cf].id(), value)
            })
            .collect()
    }
}

impl Dataset {
    /// The exact body of a search response listing issues
    /// `[start, start + count)` in index (= id) order, with `total` = the
    /// dataset size, every field, and optionally the changelog. For benchmarks
    /// and tests that need pages without HTTP.
    pub fn search_page_body(&self, start: u32, count: u32, changelog: bool) -> Vec<u8> {
        let end = start.saturating_add(count).min(self.n);
        let page: Vec<u32> = (start.min(end)..end)
            .filter(|&i| self.is_searchable(i))
            .collect();
        let mut out = Vec::with_capacity(page.len() * if changelog { 12_000 } else { 7_000 });
        write_search_page(
            self,
            &mut out,
            PageHeader {
                start_at: start as u64,
                max_results: count as u64,
                total: self.n as u64,
            },
            &page,
            FieldSel::ALL,
            if changelog {
                Changelog::Full
            } else {
                Changelog::Omit
            },
        );
        out
    }

    /// One issue as `GET /rest/api/2/issue/{id}` renders it with every field.
    pub fn issue_body(&self, idx: u32, changelog: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let is = self.issue(idx);
        let cl = if changelog {
            Changelog::Full
        } else {
            Changelog::Omit
        };
        write_issue(self, &mut out, &is, FieldSel::ALL, cl);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_escape_like_jackson() {
        let mut out = Vec::new();
        write_json_str(&mut out, "a\"b\\c\nd\re\tf\u{0}g\u{1f}h é 🚀");
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0000g\\u001fh é 🚀\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\re\tf\u{0}g\u{1f}h é 🚀");
    }

    #[test]
    fn field_selection() {
        assert_eq!(FieldSel::parse::<&str>(&[], FieldSel::ALL), FieldSel::ALL);
        assert_eq!(FieldSel::parse(&["*all"], FieldSel::NONE), FieldSel::ALL);
        let s = FieldSel::parse(&["summary,customfield_10100"], FieldSel::ALL);
        assert_eq!(s.sys, 1);
        assert_eq!(s.cf, 1);
        let s = FieldSel::parse(&["-description"], FieldSel::ALL);
        assert_eq!(s.sys, FieldSel::ALL.sys & !(1 << F_DESCRIPTION));
        let s = FieldSel::parse(&["*navigable", "-customfield_10101"], FieldSel::NONE);
        assert_eq!(s.cf, FieldSel::ALL.cf & !2);
        assert_eq!(FieldSel::parse(&["nosuch"], FieldSel::ALL), FieldSel::NONE);
    }

    #[test]
    fn pages_are_valid_json_with_every_issue() {
        let ds = Dataset::new(3, 250, &["DEMO".to_string(), "OPS".to_string()]);
        for changelog in [false, true] {
            let body = ds.search_page_body(200, 100, changelog);
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["issues"].as_array().unwrap().len(), 50);
            assert_eq!(v["startAt"], 200);
            assert_eq!(v["total"], 250);
            assert_eq!(v["issues"][0]["changelog"].is_object(), changelog);
        }
        let f: serde_json::Value = serde_json::from_slice(&field_list(&ds)).unwrap();
        assert_eq!(
            f.as_array().unwrap().len(),
            1 + SYSTEM_FIELDS.len() + CUSTOM_FIELDS.len()
        );
    }
}
