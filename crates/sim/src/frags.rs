//! Pre-rendered JSON of the simulated Jira's constant objects (users,
//! statuses, issue types, priorities, sprints) under one base URL and zone
//! ([`Frags`], built once per dataset), and the sprint calendar they render.
//! Depends only on [`crate::catalog`], `json` and [`crate::rng`], so that both
//! `data` (which owns a `Frags`) and `render` (which reads it) can use it.

use chrono::TimeZone;
use chrono_tz::Tz;

use super::catalog::*;
use super::json::{key_field, raw, write_json_str};
use super::rng::mix;

/// A DC user object.
fn build_user(b: &str, out: &mut Vec<u8>, u: &User) {
    raw(out, "{\"self\":");
    write_json_str(out, &format!("{b}/rest/api/2/user?username={}", u.name));
    raw(out, ",\"name\":");
    write_json_str(out, u.name);
    raw(out, ",\"key\":");
    write_json_str(out, u.key);
    raw(out, ",\"emailAddress\":");
    write_json_str(out, u.email);
    raw(out, ",\"avatarUrls\":{");
    for (i, (sz, q)) in [
        ("48x48", ""),
        ("24x24", "small"),
        ("16x16", "xsmall"),
        ("32x32", "medium"),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        key_field(out, sz);
        let sep = if q.is_empty() {
            String::new()
        } else {
            format!("size={q}&")
        };
        write_json_str(
            out,
            &format!(
                "{b}/secure/useravatar?{sep}ownerId={}&avatarId=10122",
                u.key
            ),
        );
    }
    raw(out, "},\"displayName\":");
    write_json_str(out, u.display_name);
    raw(
        out,
        if u.active {
            ",\"active\":true"
        } else {
            ",\"active\":false"
        },
    );
    raw(out, ",\"timeZone\":");
    write_json_str(out, u.time_zone);
    out.push(b'}');
}

fn build_status(b: &str, out: &mut Vec<u8>, s: usize) {
    let s = &STATUSES[s];
    raw(
        out,
        &format!(
            "{{\"self\":\"{b}/rest/api/2/status/{}\",\"description\":",
            s.id
        ),
    );
    write_json_str(out, s.description);
    raw(
        out,
        &format!(
            ",\"iconUrl\":\"{b}/images/icons/statuses/generic.png\",\"name\":\"{}\",\"id\":\"{}\",\"statusCategory\":{{\"self\":\"{b}/rest/api/2/statuscategory/{}\",\"id\":{},\"key\":\"{}\",\"colorName\":\"{}\",\"name\":\"{}\"}}}}",
            s.name,
            s.id,
            s.category_id,
            s.category_id,
            s.category_key,
            s.category_color,
            s.category_name
        ),
    );
}

fn build_issuetype(b: &str, out: &mut Vec<u8>, t: usize) {
    let t = &ISSUE_TYPES[t];
    raw(
        out,
        &format!(
            "{{\"self\":\"{b}/rest/api/2/issuetype/{}\",\"id\":\"{}\",\"description\":",
            t.id, t.id
        ),
    );
    write_json_str(out, t.description);
    raw(
        out,
        &format!(
            ",\"iconUrl\":\"{b}/images/icons/issuetypes/{}\",\"name\":\"{}\",\"subtask\":{}}}",
            t.icon, t.name, t.subtask
        ),
    );
}

fn build_priority(b: &str, out: &mut Vec<u8>, p: usize) {
    {
        {
            let p = &PRIORITIES[p];
            raw(
                out,
                &format!(
                    "{{\"self\":\"{b}/rest/api/2/priority/{id}\",\"iconUrl\":\"{b}/images/icons/priorities/{icon}\",\"name\":\"{name}\",\"id\":\"{id}\"}}",
                    id = p.id,
                    icon = p.icon,
                    name = p.name
                ),
            );
        }
    }
}

/// Pre-rendered JSON of the constant objects (users, statuses, types,
/// priorities) under one base URL.
#[derive(Debug, Default)]
pub struct Frags {
    pub(crate) users: Vec<Vec<u8>>,
    pub(crate) statuses: Vec<Vec<u8>>,
    pub(crate) types: Vec<Vec<u8>>,
    pub(crate) priorities: Vec<Vec<u8>>,
    /// Sprint id → its JSON string literal.
    pub(crate) sprints: std::collections::HashMap<u32, Vec<u8>>,
}

impl Frags {
    pub fn new(base_url: &str, tz: chrono_tz::Tz, projects: usize) -> Frags {
        let mut sprints = std::collections::HashMap::new();
        for p in 0..projects as u32 {
            for s in 1..=90u32 {
                let id = p * 1000 + s;
                let mut out = Vec::new();
                write_json_str(&mut out, &sprint_string(tz, id));
                sprints.insert(id, out);
            }
        }
        let build = |n: usize, f: &dyn Fn(&mut Vec<u8>, usize)| -> Vec<Vec<u8>> {
            (0..n)
                .map(|i| {
                    let mut out = Vec::new();
                    f(&mut out, i);
                    out
                })
                .collect()
        };
        Frags {
            users: build(USERS.len(), &|o, i| build_user(base_url, o, &USERS[i])),
            statuses: build(STATUSES.len(), &|o, i| build_status(base_url, o, i)),
            types: build(ISSUE_TYPES.len(), &|o, i| build_issuetype(base_url, o, i)),
            priorities: build(PRIORITIES.len(), &|o, i| build_priority(base_url, o, i)),
            sprints,
        }
    }
}

/// Sprint `id` as the legacy GreenHopper string Jira DC returns.
pub(crate) fn sprint_string(tz: Tz, id: u32) -> String {
    let s = (id % 1000).saturating_sub(1) as i64;
    let start = START_MS + s * 14 * DAY_MS + 9 * 3_600_000;
    let end = start + 14 * DAY_MS;
    let state = if end < END_MS - 30 * DAY_MS {
        "CLOSED"
    } else {
        "ACTIVE"
    };
    let fmt = |ms: i64| {
        tz.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string())
            .unwrap_or_default()
    };
    let goal = if id.is_multiple_of(3) {
        "Ship it, then [rest]"
    } else {
        ""
    };
    let complete = if state == "CLOSED" {
        fmt(end)
    } else {
        "<null>".to_string()
    };
    format!(
        "com.atlassian.greenhopper.service.sprint.Sprint@{:x}[id={id},rapidViewId={},state={state},name=Sprint {},startDate={},endDate={},completeDate={complete},activatedDate={},sequence={id},goal={goal},autoStartStop=false,synced=false]",
        mix(id as u64) as u32,
        1 + id / 1000,
        s + 1,
        fmt(start),
        fmt(end),
        fmt(start),
    )
}
