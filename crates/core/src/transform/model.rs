//! The reporting model's rows: each issue's time in status
//! (`issue_status_interval`) and field history (`issue_field_history`),
//! rebuilt from its whole changelog whenever the issue is transformed, and
//! the page's users (`jira_user`), one row per user key.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::fields::Catalog;
use super::issue::{Out, T_FIELD_HISTORY, T_STATUS_INTERVAL, T_USER};
use super::tape::V;
use super::time::{parse_datetime, put_ts};
use crate::tables::{self, CopyRow};

/// One changelog item, with its history's instant and id.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change<'i> {
    pub at: Option<DateTime<Utc>>,
    pub hid: i64,
    pub item: usize,
    pub field: &'i str,
    /// `fieldtype` is `custom` (the field is named by its display name).
    pub custom: bool,
    pub from: Option<&'i str>,
    pub from_s: Option<&'i str>,
    pub to: Option<&'i str>,
    pub to_s: Option<&'i str>,
}

/// Every item of a changelog, ordered by the history's created instant,
/// then history id, then item order.
pub(crate) fn changes<'i>(changelog: Option<V<'_, 'i>>) -> Vec<Change<'i>> {
    let mut out = Vec::new();
    let Some(histories) = changelog
        .and_then(|c| c.get("histories"))
        .and_then(|h| h.arr())
    else {
        return out;
    };
    for h in histories {
        let Some(hid) = h.get("id").and_then(|x| x.id()) else {
            continue;
        };
        let at = h.get_str("created").and_then(parse_datetime);
        let Some(items) = h.get("items").and_then(|x| x.arr()) else {
            continue;
        };
        for (item, it) in items.enumerate() {
            let Some(field) = it.get_str("field") else {
                continue;
            };
            out.push(Change {
                at,
                hid,
                item,
                field,
                custom: it.get_str("fieldtype") == Some("custom"),
                from: it.get_str("from"),
                from_s: it.get_str("fromString"),
                to: it.get_str("to"),
                to_s: it.get_str("toString"),
            });
        }
    }
    out.sort_by_key(|c| (c.at, c.hid, c.item));
    out
}

/// The issue's current status, as its fields give it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Current<'i> {
    pub id: Option<i64>,
    pub name: Option<&'i str>,
}

/// `issue_status_interval`: the first stay starts at `created` in the
/// `from` status of the first status change (the current status if none);
/// each change closes the open stay at its instant and opens the next; the
/// last stay is open (`left_at`, `seconds` NULL). Returns false when the
/// last stay's status is not the current one (a changelog that is not
/// whole): the rows are written as the changelog says, and the caller
/// reports the issue.
pub(crate) fn write_status_intervals(
    out: &mut Out,
    id: i64,
    created: Option<DateTime<Utc>>,
    current: Current<'_>,
    changes: &[Change<'_>],
) -> bool {
    let status: Vec<&Change<'_>> = changes
        .iter()
        .filter(|c| !c.custom && c.field.eq_ignore_ascii_case("status"))
        .collect();
    let (mut sid, mut sname) = match status.first() {
        Some(c) => (c.from.and_then(|s| s.parse().ok()), c.from_s),
        None => (current.id, current.name),
    };
    let mut entered = created;
    let mut seq = 0;
    for c in &status {
        stay(out, id, seq, (sid, sname), entered, c.at);
        seq += 1;
        sid = c.to.and_then(|s| s.parse().ok());
        sname = c.to_s;
        entered = c.at;
    }
    stay(out, id, seq, (sid, sname), entered, None);
    match (sid, current.id) {
        (Some(a), Some(b)) => a == b,
        _ => sname == current.name,
    }
}

fn stay(
    out: &mut Out,
    id: i64,
    seq: i32,
    (sid, sname): (Option<i64>, Option<&str>),
    entered: Option<DateTime<Utc>>,
    left: Option<DateTime<Utc>>,
) {
    let seconds = match (entered, left) {
        (Some(a), Some(b)) => Some((b - a).num_seconds()),
        _ => None,
    };
    out.counts[T_STATUS_INTERVAL] += 1;
    let mut row = CopyRow::of(
        &tables::ISSUE_STATUS_INTERVAL,
        &mut out.bufs[T_STATUS_INTERVAL],
    );
    row.i64(id).i64(i64::from(seq)).opt_i64(sid).opt_text(sname);
    put_ts(&mut row, entered);
    put_ts(&mut row, left);
    row.opt_i64(seconds).end();
}

/// The DC changelog's names of system fields that are not their ids.
const SYSTEM_ALIASES: &[(&str, &str)] = &[
    ("Fix Version", "fixVersions"),
    ("Version", "versions"),
    ("Component", "components"),
    ("Attachment", "attachment"),
    ("Link", "issuelinks"),
    ("WorklogId", "worklog"),
    ("Key", "issuekey"),
    ("Parent", "parent"),
    ("Workflow", "workflow"),
    ("Security", "security"),
];

/// The field id a changelog item names: a system field by its id (or the
/// DC alias above, or its unique catalogue name), a custom field by its
/// unique catalogue name. `None` when no field or several carry that name.
pub(crate) fn field_id<'c>(
    catalog: &'c Catalog,
    c: &Change<'_>,
) -> Option<std::borrow::Cow<'c, str>> {
    use std::borrow::Cow;
    if !c.custom {
        if let Some(f) = catalog.get(c.field) {
            return Some(Cow::Borrowed(f.id.as_str()));
        }
        if let Some((_, id)) = SYSTEM_ALIASES.iter().find(|(n, _)| *n == c.field) {
            return Some(Cow::Owned((*id).to_string()));
        }
        if catalog.is_empty() || !c.field.contains(' ') {
            return Some(Cow::Owned(c.field.to_string()));
        }
    }
    catalog.unique_by_name(c.field, c.custom).map(Cow::Borrowed)
}

/// `issue_field_history`: per field, the value before its first change
/// (`from` of that change, valid from `created`), then the value each
/// change set, valid until the next change (the last one open). A field
/// whose changelog name maps to no field or to several keeps the name as
/// written with `field_id` `?<name>`; returns how many such fields.
pub(crate) fn write_field_history(
    out: &mut Out,
    id: i64,
    created: Option<DateTime<Utc>>,
    catalog: &Catalog,
    changes: &[Change<'_>],
) -> u64 {
    let mut order: Vec<String> = Vec::new();
    let mut by_field: HashMap<String, (&str, Vec<&Change<'_>>)> = HashMap::new();
    let mut unmapped = 0;
    for c in changes {
        let key = match field_id(catalog, c) {
            Some(f) => f.into_owned(),
            None => format!("?{}", c.field),
        };
        let e = by_field.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            if key.starts_with('?') {
                unmapped += 1;
            }
            (c.field, Vec::new())
        });
        e.1.push(c);
    }
    for key in &order {
        let Some((name, cs)) = by_field.get(key) else {
            continue;
        };
        let field = FieldRows {
            id,
            field_id: key,
            name,
        };
        let first = cs[0];
        field.row(out, 0, (first.from, first.from_s), (created, first.at));
        for (i, c) in cs.iter().enumerate() {
            let next = cs.get(i + 1).and_then(|n| n.at);
            field.row(out, i as i64 + 1, (c.to, c.to_s), (c.at, next));
        }
    }
    unmapped
}

/// The history rows of one field of one issue.
struct FieldRows<'a> {
    id: i64,
    field_id: &'a str,
    name: &'a str,
}

impl FieldRows<'_> {
    fn row(
        &self,
        out: &mut Out,
        seq: i64,
        (value, display): (Option<&str>, Option<&str>),
        (from, to): (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    ) {
        out.counts[T_FIELD_HISTORY] += 1;
        let mut row = CopyRow::of(&tables::ISSUE_FIELD_HISTORY, &mut out.bufs[T_FIELD_HISTORY]);
        row.i64(self.id)
            .text(self.field_id)
            .text(self.name)
            .i64(seq)
            .opt_text(value)
            .opt_text(display);
        put_ts(&mut row, from);
        put_ts(&mut row, to);
        row.end();
    }
}

/// What a page says about one user (by key).
#[derive(Debug, Default, Clone)]
pub(crate) struct UserSeen {
    name: Option<String>,
    display: Option<String>,
    email: Option<String>,
    active: Option<bool>,
    time_zone: Option<String>,
    last_seen: Option<DateTime<Utc>>,
}

/// Notes a user object (`{"key","name","displayName","emailAddress",
/// "active","timeZone"}`) seen at `at`; values it lacks keep what the page
/// said before. An object without a `key` (or `name`) is not a user.
pub(crate) fn note_user(
    users: &mut HashMap<String, UserSeen>,
    v: V<'_, '_>,
    at: Option<DateTime<Utc>>,
) {
    let Some(key) = v.get_str("key").or_else(|| v.get_str("name")) else {
        return;
    };
    let u = users.entry(key.to_string()).or_default();
    let set = |slot: &mut Option<String>, k: &str| {
        if let Some(s) = v.get_str(k) {
            *slot = Some(s.to_string());
        }
    };
    set(&mut u.name, "name");
    set(&mut u.display, "displayName");
    set(&mut u.email, "emailAddress");
    set(&mut u.time_zone, "timeZone");
    if let Some(b) = v.get("active").and_then(|x| x.bool()) {
        u.active = Some(b);
    }
    u.last_seen = u.last_seen.max(at);
}

/// Notes a user known only by key and display name (a changelog item of a
/// user field: the key in `from`/`to`, the name shown in the strings).
pub(crate) fn note_user_key(
    users: &mut HashMap<String, UserSeen>,
    key: &str,
    display: Option<&str>,
    at: Option<DateTime<Utc>>,
) {
    let u = users.entry(key.to_string()).or_default();
    if u.display.is_none() {
        u.display = display.map(str::to_string);
    }
    u.last_seen = u.last_seen.max(at);
}

/// Notes every changelog author, and the users a user field's items name
/// (assignee, reporter: key in `from`/`to`, display name in the strings).
pub(crate) fn note_changelog_users(
    users: &mut HashMap<String, UserSeen>,
    changelog: Option<V<'_, '_>>,
    changes: &[Change<'_>],
) {
    if let Some(histories) = changelog
        .and_then(|c| c.get("histories"))
        .and_then(|h| h.arr())
    {
        for h in histories {
            if let Some(a) = h.get("author").filter(|a| !a.is_null()) {
                note_user(users, a, h.get_str("created").and_then(parse_datetime));
            }
        }
    }
    for c in changes {
        if !c.custom && (c.field == "assignee" || c.field == "reporter") {
            if let Some(k) = c.from {
                note_user_key(users, k, c.from_s, c.at);
            }
            if let Some(k) = c.to {
                note_user_key(users, k, c.to_s, c.at);
            }
        }
    }
}

/// Notes the users a custom field's value holds (a user object, or an
/// array of them).
pub(crate) fn note_field_users(users: &mut HashMap<String, UserSeen>, v: V<'_, '_>) {
    let is_user = |u: &V<'_, '_>| {
        u.get_str("key").is_some()
            && (u.get("displayName").is_some() || u.get("emailAddress").is_some())
    };
    match v.arr() {
        Some(items) => {
            for u in items.filter(is_user) {
                note_user(users, u, None);
            }
        }
        None if is_user(&v) => note_user(users, v, None),
        None => {}
    }
}

/// The page's `jira_user` rows, sorted by key (deterministic batches).
pub(crate) fn write_users(out: &mut Out, users: &HashMap<String, UserSeen>) {
    let mut keys: Vec<&String> = users.keys().collect();
    keys.sort_unstable();
    for k in keys {
        let u = &users[k];
        out.counts[T_USER] += 1;
        let mut row = CopyRow::of(&tables::JIRA_USER, &mut out.bufs[T_USER]);
        row.text(k)
            .opt_text(u.name.as_deref())
            .opt_text(u.display.as_deref())
            .opt_text(u.email.as_deref())
            .opt_bool(u.active)
            .opt_text(u.time_zone.as_deref());
        put_ts(&mut row, u.last_seen);
        row.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::decode_rows;

    fn with_changelog<R>(json: &str, f: impl FnOnce(Option<V<'_, '_>>) -> R) -> R {
        let mut buf = json.as_bytes().to_vec();
        let tape = simd_json::to_tape(&mut buf).unwrap();
        f(V::root(&tape))
    }

    fn t(s: &str) -> Option<DateTime<Utc>> {
        parse_datetime(s)
    }

    const LOG: &str = r#"{"histories":[
        {"id":"12","created":"2024-01-03T00:00:00.000+0000","items":[
            {"field":"status","fieldtype":"jira","from":"3","fromString":"In Progress","to":"10001","toString":"Done"}]},
        {"id":"11","created":"2024-01-02T00:00:00.000+0000","items":[
            {"field":"assignee","fieldtype":"jira","from":null,"fromString":null,"to":"JIRAUSER1","toString":"Alice A"},
            {"field":"status","fieldtype":"jira","from":"1","fromString":"Open","to":"3","toString":"In Progress"}]},
        {"id":"13","created":"2024-01-03T00:00:00.000+0000","items":[
            {"field":"Story Points","fieldtype":"custom","from":null,"fromString":null,"to":"5","toString":"5"}]}]}"#;

    #[test]
    fn stays_follow_the_status_changes_in_time_then_id_order() {
        with_changelog(LOG, |log| {
            let cs = changes(log);
            assert_eq!(
                cs.iter().map(|c| c.hid).collect::<Vec<_>>(),
                vec![11, 11, 12, 13]
            );
            let mut out = Out::new();
            let cur = Current {
                id: Some(10001),
                name: Some("Done"),
            };
            assert!(write_status_intervals(
                &mut out,
                7,
                t("2024-01-01T00:00:00.000+0000"),
                cur,
                &cs
            ));
            let rows = decode_rows(&out.bufs[T_STATUS_INTERVAL]);
            let ids: Vec<_> = rows.iter().map(|r| r[2].clone()).collect();
            assert_eq!(
                ids,
                vec![Some("1".into()), Some("3".into()), Some("10001".into())]
            );
            assert_eq!(rows[0][6].as_deref(), Some("86400"));
            assert_eq!(rows[2][5], None, "the current stay is open");
            // A changelog that does not end in the current status is reported.
            let other = Current {
                id: Some(1),
                name: Some("Open"),
            };
            assert!(!write_status_intervals(
                &mut Out::new(),
                7,
                None,
                other,
                &cs
            ));
        });
    }

    #[test]
    fn an_issue_that_never_changed_status_has_one_open_stay() {
        let mut out = Out::new();
        let cur = Current {
            id: Some(1),
            name: Some("Open"),
        };
        assert!(write_status_intervals(
            &mut out,
            7,
            t("2024-01-01T00:00:00.000+0000"),
            cur,
            &[]
        ));
        let rows = decode_rows(&out.bufs[T_STATUS_INTERVAL]);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][3].as_deref(), Some("Open"));
    }

    #[test]
    fn field_history_starts_at_created_and_maps_names_to_ids() {
        let cat = Catalog::parse(
            br#"[{"id":"assignee","name":"Assignee","custom":false},
                 {"id":"customfield_10002","name":"Story Points","custom":true,"schema":{"type":"number"}}]"#,
        )
        .unwrap();
        with_changelog(LOG, |log| {
            let cs = changes(log);
            let mut out = Out::new();
            let unmapped =
                write_field_history(&mut out, 7, t("2024-01-01T00:00:00.000+0000"), &cat, &cs);
            assert_eq!(unmapped, 0);
            let rows = decode_rows(&out.bufs[T_FIELD_HISTORY]);
            let a: Vec<_> = rows
                .iter()
                .filter(|r| r[1].as_deref() == Some("assignee"))
                .collect();
            assert_eq!(a.len(), 2);
            assert_eq!(a[0][4], None, "unassigned before the first change");
            assert!(a[0][6].as_deref().unwrap().starts_with("2024-01-01"));
            assert_eq!(a[1][5].as_deref(), Some("Alice A"));
            assert_eq!(a[1][7], None, "the last value is open");
            assert!(
                rows.iter()
                    .any(|r| r[1].as_deref() == Some("customfield_10002"))
            );
            // Without the catalogue the custom field's name cannot be mapped.
            let mut out = Out::new();
            let unmapped = write_field_history(&mut out, 7, None, &Catalog::default(), &cs);
            assert_eq!(unmapped, 1);
            let rows = decode_rows(&out.bufs[T_FIELD_HISTORY]);
            assert!(
                rows.iter()
                    .any(|r| r[1].as_deref() == Some("?Story Points"))
            );
        });
    }
}
