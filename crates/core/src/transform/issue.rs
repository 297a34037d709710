//! One issue of a search response → rows of `issue`, `issue_label`,
//! `issue_component`, `issue_version`, `issue_link`, `changelog`,
//! `changelog_item` and `issue_field_value`, written straight into the page's
//! text-COPY buffers in `tables::ALL` column order.
//!
//! An issue is all-or-nothing: if it turns out malformed half-way (no numeric
//! id, an unparsable timestamp, a history without id, …) every row written for
//! it is rolled back and the issue is reported as quarantined.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::fields::{Typing, write_custom};
use super::tape::{ArrIter, V};
use super::time::{parse_date, parse_datetime, put_date, put_ts};
use crate::batch::{IssueVersion, QuarantinedIssue};
use crate::tables::{self, CopyRow};

/// Index of each table in [`tables::ALL`] (checked by a test).
pub(crate) const T_FIELD: usize = 0;
pub(crate) const T_PROJECT_VERSION: usize = 1;
pub(crate) const T_PROJECT_COMPONENT: usize = 2;
pub(crate) const T_STATUS: usize = 3;
pub(crate) const T_PRIORITY: usize = 4;
pub(crate) const T_ISSUE_TYPE: usize = 5;
pub(crate) const T_RESOLUTION: usize = 6;
pub(crate) const T_PROJECT: usize = 7;
pub(crate) const T_USER: usize = 8;
pub(crate) const T_ISSUE: usize = 9;
pub(crate) const T_LABEL: usize = 10;
pub(crate) const T_COMPONENT: usize = 11;
pub(crate) const T_VERSION: usize = 12;
pub(crate) const T_LINK: usize = 13;
pub(crate) const T_CHANGELOG: usize = 14;
pub(crate) const T_ITEM: usize = 15;
pub(crate) const T_FIELD_VALUE: usize = 16;
pub(crate) const T_STATUS_INTERVAL: usize = 17;
pub(crate) const T_FIELD_HISTORY: usize = 18;
pub(crate) const N_TABLES: usize = 19;

/// The rows of one page being built.
pub(crate) struct Out {
    pub bufs: [Vec<u8>; N_TABLES],
    pub counts: [u64; N_TABLES],
    /// Links already written for this page (a link between two issues of the
    /// same page appears in both; the normalised rows are identical).
    links: HashSet<i64>,
    scratch: String,
    /// The scope of the page (written into `issue.scope`).
    pub scope: String,
    /// Users seen in the page's issues (written once, at the end of the page).
    pub users: std::collections::HashMap<String, super::model::UserSeen>,
    /// What the page's issues told about the model (counted in the summary).
    pub notes: crate::batch::ModelNotes,
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

impl Out {
    pub fn new() -> Self {
        Out {
            bufs: std::array::from_fn(|_| take_buffer()),
            counts: [0; N_TABLES],
            links: HashSet::new(),
            scratch: String::new(),
            scope: String::new(),
            users: std::collections::HashMap::new(),
            notes: crate::batch::ModelNotes::default(),
        }
    }

    /// Reserves room for the rows of a page of `len` JSON bytes, so buffers
    /// rarely grow (and copy) while rows are written.
    pub(crate) fn reserve_for(&mut self, len: usize) {
        const SHARE: [usize; N_TABLES] = [
            0, 0, 0, 0, 0, 0, 0, 0, 256, 12, 256, 256, 128, 64, 32, 8, 16, 64, 16,
        ];
        for (b, share) in self.bufs.iter_mut().zip(SHARE) {
            if let Some(n) = len.checked_div(share) {
                b.reserve(n);
            }
        }
    }

    /// `(table, rows)` for every table with rows, in `tables::ALL` order.
    pub(crate) fn into_data(self) -> (TableData, Vec<(&'static str, u64)>) {
        let mut data = Vec::new();
        let mut counts = Vec::new();
        let mut unused = Vec::new();
        for (i, buf) in self.bufs.into_iter().enumerate() {
            if self.counts[i] > 0 {
                data.push((tables::ALL[i].name, buf));
                counts.push((tables::ALL[i].name, self.counts[i]));
            } else if buf.capacity() > 0 {
                unused.push(("", buf));
            }
        }
        recycle(unused);
        (data, counts)
    }
}

thread_local! {
    /// Row buffers of batches already written, kept for the next page of this
    /// thread: no fresh memory (and no page faults) per page.
    static SPARE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// At most this many spare buffers per thread (bounded memory).
const MAX_SPARE: usize = 2 * N_TABLES;

fn take_buffer() -> Vec<u8> {
    SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default()
}

/// Gives a written batch's row buffers back for reuse by this thread.
pub fn recycle(data: TableData) {
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        for (_, mut buf) in data {
            if s.len() < MAX_SPARE {
                buf.clear();
                s.push(buf);
            }
        }
    });
}

/// Text-COPY bytes per table, as in [`crate::batch::Batch::data`].
pub(crate) type TableData = Vec<(&'static str, Vec<u8>)>;

/// Where the buffers stood before an issue, to roll it back.
struct Mark {
    lens: [usize; N_TABLES],
    counts: [u64; N_TABLES],
}

/// The scalar members of `fields` the issue row needs.
#[derive(Default)]
struct Slots<'t, 'i> {
    summary: Option<V<'t, 'i>>,
    description: Option<V<'t, 'i>>,
    issuetype: Option<V<'t, 'i>>,
    status: Option<V<'t, 'i>>,
    priority: Option<V<'t, 'i>>,
    resolution: Option<V<'t, 'i>>,
    assignee: Option<V<'t, 'i>>,
    reporter: Option<V<'t, 'i>>,
    creator: Option<V<'t, 'i>>,
    created: Option<V<'t, 'i>>,
    updated: Option<V<'t, 'i>>,
    resolutiondate: Option<V<'t, 'i>>,
    duedate: Option<V<'t, 'i>>,
    project: Option<V<'t, 'i>>,
    parent: Option<V<'t, 'i>>,
    labels: Option<V<'t, 'i>>,
    components: Option<V<'t, 'i>>,
    fix_versions: Option<V<'t, 'i>>,
    versions: Option<V<'t, 'i>>,
    issuelinks: Option<V<'t, 'i>>,
    /// `timeoriginalestimate`, `timeestimate`, `timespent` and their aggregates.
    time: [Option<V<'t, 'i>>; 6],
}

/// The time tracking fields, in the order of `issue`'s `*_seconds` columns.
const TIME_FIELDS: [&str; 6] = [
    "timeoriginalestimate",
    "timeestimate",
    "timespent",
    "aggregatetimeoriginalestimate",
    "aggregatetimeestimate",
    "aggregatetimespent",
];

/// Text of a value that is a string, or an object's `name` (issue type, status, …).
fn named<'i>(v: Option<V<'_, 'i>>) -> Option<&'i str> {
    let v = v?;
    v.str().or_else(|| v.get_str("name"))
}

/// A user column: the DC user `name`, else `key`, else `displayName`.
pub fn user<'i>(v: Option<V<'_, 'i>>) -> Option<&'i str> {
    let v = v?;
    if let Some(s) = v.str() {
        return Some(s);
    }
    v.get_str("name")
        .or_else(|| v.get_str("key"))
        .or_else(|| v.get_str("displayName"))
}

type Bad = String;

fn opt_datetime<W: std::fmt::Display>(
    v: Option<V<'_, '_>>,
    what: impl FnOnce() -> W,
) -> Result<Option<DateTime<Utc>>, Bad> {
    match v {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.str().and_then(parse_datetime) {
            Some(t) => Ok(Some(t)),
            None => Err(format!(
                "{} {} is not a timestamp with an offset",
                what(),
                v.to_json()
            )),
        },
    }
}

fn opt_date<W: std::fmt::Display>(
    v: Option<V<'_, '_>>,
    what: impl FnOnce() -> W,
) -> Result<Option<NaiveDate>, Bad> {
    match v {
        None => Ok(None),
        Some(v) if v.is_null() => Ok(None),
        Some(v) => match v.str().and_then(parse_date) {
            Some(d) => Ok(Some(d)),
            None => Err(format!(
                "{} {} is not a YYYY-MM-DD date",
                what(),
                v.to_json()
            )),
        },
    }
}

/// The issue id of an element of `issues`, if it has a usable one.
pub fn issue_id(issue: V<'_, '_>) -> Option<i64> {
    issue.get("id").and_then(|v| v.id())
}

/// `(histories carried, changelog.total)` when the issue's changelog is
/// cut short (fewer histories than `total`).
pub(crate) fn changelog_cut(issue: V<'_, '_>) -> Option<(u64, u64)> {
    let c = issue.get("changelog")?;
    let total = c.get("total")?.id()?;
    let have = c
        .get("histories")
        .and_then(|h| h.arr())
        .map_or(0, |h| h.count()) as i64;
    (total > have).then_some((have as u64, total as u64))
}

/// The quarantine record of an issue whose changelog is cut short.
pub(crate) fn cut_short(issue: V<'_, '_>, index: usize, reason: String) -> QuarantinedIssue {
    QuarantinedIssue {
        key: issue
            .get_str("key")
            .map_or_else(|| format!("#{index}"), str::to_owned),
        id: issue_id(issue),
        reason,
    }
}

/// `fields.updated` of an issue, parsed (for choosing among duplicates).
pub(crate) fn issue_updated(issue: V<'_, '_>) -> Option<DateTime<Utc>> {
    issue
        .get("fields")?
        .get_str("updated")
        .and_then(parse_datetime)
}

/// Transforms one issue into `out`; on error nothing of it stays in `out`.
pub(crate) fn transform_issue<'t, 'i>(
    out: &mut Out,
    typing: &Typing<'_, 't, 'i>,
    issue: V<'t, 'i>,
    index: usize,
) -> Result<IssueVersion, QuarantinedIssue> {
    let mark = Mark {
        lens: std::array::from_fn(|i| out.bufs[i].len()),
        counts: out.counts,
    };
    let mut added_links = Vec::new();
    let mut id = None;
    let mut key = None;
    let mut fields = None;
    let mut changelog = None;
    if let Some(obj) = issue.obj() {
        for (k, v) in obj {
            match k {
                "id" => id = Some(v),
                "key" => key = v.str(),
                "fields" => fields = Some(v),
                "changelog" => changelog = Some(v),
                _ => {}
            }
        }
    }
    let id_num = id.and_then(|v| v.id());
    let quarantine = |reason: String| QuarantinedIssue {
        key: key.map_or_else(|| format!("#{index}"), str::to_owned),
        id: id_num,
        reason,
    };
    if !issue.is_object() {
        return Err(quarantine(format!(
            "issues[{index}] is not an object: {}",
            truncate(&issue.to_json(), 80)
        )));
    }
    let Some(id_num) = id_num else {
        return Err(quarantine(match id {
            None => "the issue has no id".into(),
            Some(v) => format!("the issue id {} is not a number", v.to_json()),
        }));
    };
    let Some(key_str) = key else {
        return Err(quarantine("the issue has no key".into()));
    };
    match write_issue(
        out,
        typing,
        id_num,
        key_str,
        fields,
        changelog,
        &mut added_links,
    ) {
        Ok(updated) => Ok(IssueVersion {
            id: id_num,
            key: key_str.to_owned(),
            updated,
            digest: Some(digest(out, &mark.lens)),
        }),
        Err(reason) => {
            for (i, len) in mark.lens.iter().enumerate() {
                out.bufs[i].truncate(*len);
            }
            out.counts = mark.counts;
            for l in added_links {
                out.links.remove(&l);
            }
            Err(quarantine(reason))
        }
    }
}

/// The digest of the rows one issue added to `out` since `lens`.
fn digest(out: &Out, lens: &[usize; N_TABLES]) -> String {
    crate::batch::issue_digest(
        tables::ALL
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name, &out.bufs[i][lens[i]..])),
    )
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A row of table `t` (an index into [`tables::ALL`]), bound to its spec
/// and counted now (an issue's rows are rolled back as a whole).
#[inline]
fn row<'b>(
    bufs: &'b mut [Vec<u8>; N_TABLES],
    counts: &mut [u64; N_TABLES],
    t: usize,
) -> CopyRow<'b> {
    counts[t] += 1;
    CopyRow::of(tables::ALL[t], &mut bufs[t])
}

/// The timestamps and date of the issue row, parsed.
struct Times {
    created: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
    due: Option<NaiveDate>,
}

/// Writes every row of one issue, one writer per table; returns its `updated`.
fn write_issue<'t, 'i>(
    out: &mut Out,
    typing: &Typing<'_, 't, 'i>,
    id: i64,
    key: &'i str,
    fields: Option<V<'t, 'i>>,
    changelog: Option<V<'t, 'i>>,
    added_links: &mut Vec<i64>,
) -> Result<Option<DateTime<Utc>>, Bad> {
    let s = scan_fields(out, typing, id, fields)?;
    let times = Times {
        created: opt_datetime(s.created, || "created")?,
        updated: opt_datetime(s.updated, || "updated")?,
        resolved: opt_datetime(s.resolutiondate, || "resolutiondate")?,
        due: opt_date(s.duedate, || "duedate")?,
    };
    write_issue_row(out, id, key, &s, &times);
    write_labels(out, id, s.labels);
    write_components(out, id, s.components)?;
    write_versions(out, id, s.fix_versions, "fix", "fixVersions")?;
    write_versions(out, id, s.versions, "affects", "versions")?;
    write_links(out, id, key, s.issuelinks, added_links)?;
    write_changelog(out, id, changelog)?;
    write_model(out, typing, id, key, &s, &times, changelog);
    Ok(times.updated)
}

/// The reporting model's rows of one issue (time in status, field
/// history) and the users it names.
fn write_model<'i>(
    out: &mut Out,
    typing: &Typing<'_, '_, 'i>,
    id: i64,
    key: &str,
    s: &Slots<'_, 'i>,
    times: &Times,
    changelog: Option<V<'_, 'i>>,
) {
    use super::model;
    let cs = model::changes(changelog);
    let current = model::Current {
        id: s.status.and_then(|v| v.get("id")).and_then(|v| v.id()),
        name: named(s.status),
    };
    if !model::write_status_intervals(out, id, times.created, current, &cs) {
        out.notes.status_mismatches += 1;
        tracing::warn!(
            issue = key,
            "the issue's changelog does not end in its current status; its time in status is as the changelog says, and the last stay is not guessed"
        );
    }
    out.notes.unmapped_fields +=
        model::write_field_history(out, id, times.created, typing.catalog, &cs);
    for u in [s.assignee, s.reporter, s.creator].into_iter().flatten() {
        model::note_user(&mut out.users, u, times.updated);
    }
    model::note_changelog_users(&mut out.users, changelog, &cs);
}

/// Sorts the members of `fields` into [`Slots`], writing the
/// `issue_field_value` rows of the selected custom fields on the way.
fn scan_fields<'t, 'i>(
    out: &mut Out,
    typing: &Typing<'_, 't, 'i>,
    id: i64,
    fields: Option<V<'t, 'i>>,
) -> Result<Slots<'t, 'i>, Bad> {
    let mut s = Slots::default();
    let Some(obj) = fields.and_then(|f| f.obj()) else {
        return match fields.filter(|f| !f.is_null()) {
            Some(f) => Err(format!(
                "fields is not an object: {}",
                truncate(&f.to_json(), 80)
            )),
            None => Ok(s),
        };
    };
    for (k, v) in obj {
        let slot = match k {
            "summary" => &mut s.summary,
            "description" => &mut s.description,
            "issuetype" => &mut s.issuetype,
            "status" => &mut s.status,
            "priority" => &mut s.priority,
            "resolution" => &mut s.resolution,
            "assignee" => &mut s.assignee,
            "reporter" => &mut s.reporter,
            "creator" => &mut s.creator,
            "created" => &mut s.created,
            "updated" => &mut s.updated,
            "resolutiondate" => &mut s.resolutiondate,
            "duedate" => &mut s.duedate,
            "project" => &mut s.project,
            "parent" => &mut s.parent,
            "labels" => &mut s.labels,
            "components" => &mut s.components,
            "fixVersions" => &mut s.fix_versions,
            "versions" => &mut s.versions,
            "issuelinks" => &mut s.issuelinks,
            k if k.starts_with("customfield_") && !v.is_null() && typing.wants(k) => {
                super::model::note_field_users(&mut out.users, v);
                let ty = typing.type_of(k);
                out.counts[T_FIELD_VALUE] +=
                    write_custom(&mut out.bufs[T_FIELD_VALUE], &mut out.scratch, id, k, ty, v);
                continue;
            }
            k => match TIME_FIELDS.iter().position(|t| *t == k) {
                Some(i) => &mut s.time[i],
                None => continue,
            },
        };
        *slot = Some(v);
    }
    Ok(s)
}

/// `issue`: one row.
fn write_issue_row(out: &mut Out, id: i64, key: &str, s: &Slots<'_, '_>, t: &Times) {
    let status_category = s.status.and_then(|st| {
        let c = st.get("statusCategory")?;
        c.get_str("key").or_else(|| c.get_str("name"))
    });
    let project_id = s.project.and_then(|p| p.get("id")).and_then(|v| v.id());
    let project_key = s.project.and_then(|p| p.get_str("key"));
    let parent_id = s.parent.and_then(|p| p.get("id")).and_then(|v| v.id());
    // Text as sent; a non-string value (never seen from Jira) as its JSON text.
    let mut summary_json = String::new();
    let summary = s.summary.and_then(|v| v.scalar_text(&mut summary_json));
    let description = s.description.and_then(|v| v.scalar_text(&mut out.scratch));
    let mut row = row(&mut out.bufs, &mut out.counts, T_ISSUE);
    row.i64(id)
        .text(key)
        .opt_i64(project_id)
        .opt_text(project_key)
        .opt_text(named(s.issuetype))
        .opt_text(named(s.status))
        .opt_text(status_category)
        .opt_text(named(s.priority))
        .opt_text(named(s.resolution))
        .opt_text(summary)
        .opt_text(description);
    row.opt_text(user(s.assignee))
        .opt_text(user(s.reporter))
        .opt_text(user(s.creator));
    put_ts(&mut row, t.created);
    put_ts(&mut row, t.updated);
    put_ts(&mut row, t.resolved);
    put_date(&mut row, t.due);
    // deleted_at and removed_reason: a loaded issue is live.
    row.opt_i64(parent_id).null().null().text(&out.scope);
    // The user key (Jira 5 and 6 users have none: their name is the key).
    for u in [s.assignee, s.reporter, s.creator] {
        row.opt_text(u.and_then(|u| u.get_str("key").or_else(|| u.get_str("name"))));
    }
    for d in [s.status, s.priority, s.issuetype, s.resolution] {
        row.opt_i64(d.and_then(|d| d.get("id")).and_then(|v| v.id()));
    }
    for t in s.time {
        row.opt_i64(t.and_then(|t| t.i64()));
    }
    row.end();
}

/// `issue_label`: a set, duplicates written once.
fn write_labels<'i>(out: &mut Out, id: i64, labels: Option<V<'_, 'i>>) {
    let Some(labels) = labels.and_then(|l| l.arr()) else {
        return;
    };
    let mut seen: Vec<std::borrow::Cow<'i, str>> = Vec::new();
    for l in labels {
        let text = match l.str() {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None if l.is_null() => continue,
            None => std::borrow::Cow::Owned(l.to_json()),
        };
        if seen.contains(&text) {
            continue;
        }
        row(&mut out.bufs, &mut out.counts, T_LABEL)
            .i64(id)
            .text(&text)
            .end();
        seen.push(text);
    }
}

/// `issue_component`: one row per component id.
fn write_components(out: &mut Out, id: i64, comps: Option<V<'_, '_>>) -> Result<(), Bad> {
    let Some(comps) = comps.and_then(|c| c.arr()) else {
        return Ok(());
    };
    let mut seen: Vec<i64> = Vec::new();
    for (i, c) in comps.enumerate() {
        let cid = c
            .get("id")
            .and_then(|v| v.id())
            .ok_or_else(|| format!("components[{i}] has no numeric id"))?;
        if seen.contains(&cid) {
            continue;
        }
        seen.push(cid);
        row(&mut out.bufs, &mut out.counts, T_COMPONENT)
            .i64(id)
            .i64(cid)
            .opt_text(c.get_str("name"))
            .end();
    }
    Ok(())
}

/// `issue_version`: the versions of one relation (`fix` from `fixVersions`,
/// `affects` from `versions`), one row per version id.
fn write_versions(
    out: &mut Out,
    id: i64,
    list: Option<V<'_, '_>>,
    relation: &str,
    what: &str,
) -> Result<(), Bad> {
    let Some(items) = list.and_then(|l| l.arr()) else {
        return Ok(());
    };
    let mut seen: Vec<i64> = Vec::new();
    for (i, v) in items.enumerate() {
        let vid = v
            .get("id")
            .and_then(|x| x.id())
            .ok_or_else(|| format!("{what}[{i}] has no numeric id"))?;
        if seen.contains(&vid) {
            continue;
        }
        seen.push(vid);
        let release = opt_date(v.get("releaseDate"), || format!("{what}[{i}].releaseDate"))?;
        let mut row = row(&mut out.bufs, &mut out.counts, T_VERSION);
        row.i64(id)
            .i64(vid)
            .text(relation)
            .opt_text(v.get_str("name"))
            .opt_bool(v.get("released").and_then(|b| b.bool()));
        put_date(&mut row, release);
        row.end();
    }
    Ok(())
}

/// `issue_link`: normalised to source --outward--> target; a link already
/// written for this page (by its other end) is not written again.
fn write_links(
    out: &mut Out,
    id: i64,
    key: &str,
    links: Option<V<'_, '_>>,
    added_links: &mut Vec<i64>,
) -> Result<(), Bad> {
    let Some(links) = links.and_then(|l| l.arr()) else {
        return Ok(());
    };
    for (i, l) in links.enumerate() {
        let lid = l
            .get("id")
            .and_then(|x| x.id())
            .ok_or_else(|| format!("issuelinks[{i}] has no numeric id"))?;
        let ty = l.get("type");
        let (other, this_is_source) = match (l.get_some("outwardIssue"), l.get_some("inwardIssue"))
        {
            (Some(o), _) => (o, true),
            (None, Some(o)) => (o, false),
            (None, None) => {
                return Err(format!(
                    "issuelinks[{i}] (id {lid}) has neither outwardIssue nor inwardIssue"
                ));
            }
        };
        let other_id = other.get("id").and_then(|x| x.id()).ok_or_else(|| {
            format!("issuelinks[{i}] (id {lid}): the linked issue has no numeric id")
        })?;
        if !out.links.insert(lid) {
            continue;
        }
        added_links.push(lid);
        let other_key = other.get_str("key");
        let ((src, src_key), (dst, dst_key)) = if this_is_source {
            ((id, Some(key)), (other_id, other_key))
        } else {
            ((other_id, other_key), (id, Some(key)))
        };
        row(&mut out.bufs, &mut out.counts, T_LINK)
            .i64(lid)
            .i64(src)
            .i64(dst)
            .opt_text(src_key)
            .opt_text(dst_key)
            .opt_text(ty.and_then(|t| t.get_str("name")))
            .opt_text(ty.and_then(|t| t.get_str("outward")))
            .opt_text(ty.and_then(|t| t.get_str("inward")))
            .end();
    }
    Ok(())
}

/// `changelog`: one row per history, and its items ([`write_items`]).
fn write_changelog(out: &mut Out, id: i64, changelog: Option<V<'_, '_>>) -> Result<(), Bad> {
    let Some(histories) = changelog
        .and_then(|c| c.get("histories"))
        .and_then(|h| h.arr())
    else {
        return Ok(());
    };
    for (hi, h) in histories.enumerate() {
        let hid = h
            .get("id")
            .and_then(|x| x.id())
            .ok_or_else(|| format!("changelog history [{hi}] has no numeric id"))?;
        let created = opt_datetime(h.get("created"), || format!("history {hid} created"))?;
        let mut row = row(&mut out.bufs, &mut out.counts, T_CHANGELOG);
        row.i64(hid)
            .i64(id)
            .opt_text(user(h.get("author").filter(|a| !a.is_null())));
        put_ts(&mut row, created);
        row.end();
        if let Some(items) = h.get("items").and_then(|x| x.arr()) {
            write_items(out, hid, id, items);
        }
    }
    Ok(())
}

/// `changelog_item`: one row per item of history `hid`, numbered in order.
fn write_items<'t, 'i: 't>(out: &mut Out, hid: i64, id: i64, items: ArrIter<'t, 'i>) {
    for (seq, it) in items.enumerate() {
        let mut slot: [Option<V<'t, 'i>>; 7] = [None; 7];
        if let Some(obj) = it.obj() {
            for (k, v) in obj {
                let i = match k {
                    "field" => 0,
                    "fieldtype" => 1,
                    "fieldId" => 2,
                    "from" => 3,
                    "fromString" => 4,
                    "to" => 5,
                    "toString" => 6,
                    _ => continue,
                };
                slot[i] = Some(v);
            }
        }
        let scratch = &mut out.scratch;
        let mut row = row(&mut out.bufs, &mut out.counts, T_ITEM);
        row.i64(hid).i64(seq as i64).i64(id);
        for v in slot {
            let text = v.and_then(|v| v.scalar_text(scratch));
            row.opt_text(text);
        }
        row.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_indices_match_tables_all() {
        let expect = [
            (T_FIELD, "field"),
            (T_PROJECT_VERSION, "project_version"),
            (T_PROJECT_COMPONENT, "project_component"),
            (T_STATUS, "status"),
            (T_PRIORITY, "priority"),
            (T_ISSUE_TYPE, "issue_type"),
            (T_RESOLUTION, "resolution"),
            (T_PROJECT, "project"),
            (T_USER, "jira_user"),
            (T_ISSUE, "issue"),
            (T_LABEL, "issue_label"),
            (T_COMPONENT, "issue_component"),
            (T_VERSION, "issue_version"),
            (T_LINK, "issue_link"),
            (T_CHANGELOG, "changelog"),
            (T_ITEM, "changelog_item"),
            (T_FIELD_VALUE, "issue_field_value"),
            (T_STATUS_INTERVAL, "issue_status_interval"),
            (T_FIELD_HISTORY, "issue_field_history"),
        ];
        assert_eq!(tables::ALL.len(), N_TABLES);
        for (i, name) in expect {
            assert_eq!(tables::ALL[i].name, name);
        }
    }
}
