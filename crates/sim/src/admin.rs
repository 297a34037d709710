//! The simulator's admin endpoints under `/_sim/`, so mutations and faults can
//! be scripted against a `pipeline simulate` process (demos, tests that run the
//! binary). They need the same Bearer token, are never faulted, and answer
//! JSON. Each maps to one [`SimControl`] call:
//!
//! | request | effect |
//! |---|---|
//! | `GET /_sim/stats` | request statistics |
//! | `GET /_sim/truth` | ground truth: every live issue but the archived (id, key, project, updated ms, summary, status, labels, link and history ids), the deleted and the archived ids |
//! | `POST /_sim/update` `{"ids":[…], "summary"?, "status"?, "add_labels"?, "remove_labels"?, "remove_all_links"?}` | updates issues now |
//! | `POST /_sim/bulk-edit` `{"ids"?:[…], "project"?:"DEMO", "count"?:N, "add_label"?:"x"}` | bulk edit within the current minute |
//! | `POST /_sim/move` `{"id":N, "project":"ALPHA"}` | move; answers the new key |
//! | `POST /_sim/delete` `{"ids":[…]}` | delete issues |
//! | `POST /_sim/faults` `{"fault":"429"\|"500"\|"502"\|"503"\|"504"\|"html502"\|"reset"\|"truncate"\|"close"\|"slow", "count":N, "retry_after"?:s, "ms"?:ms, "scope"?:"search"\|"all"}` | schedule faults |
//! | `POST /_sim/faults/clear` | remove every fault |
//! | `POST /_sim/latency` `{"ms":N}` | per-page latency |
//! | `POST /_sim/poison` `{"id":N, "kind":"wrong_type"\|"bad_date"}` | render an issue with a broken field |
//! | `POST /_sim/archive` `{"ids":[…]}` | archive issues (and their sub-tasks) |
//! | `POST /_sim/restore` `{"ids":[…]}` | restore archived issues |
//! | `POST /_sim/changelog-cut` `{"cut":N\|null, "on_get"?:bool}` | cut changelogs in search results (and GET issue) |
//! | `POST /_sim/version/release` `{"id":N, "date":"2024-03-01"}` | release a version |
//! | `POST /_sim/version/rename` `{"id":N, "name":"2.0"}` | rename a version |
//! | `POST /_sim/version/archive` `{"id":N}` | archive a version |
//! | `POST /_sim/component/rename` `{"id":N, "name":"Core"}` | rename a component |
//! | `POST /_sim/component/lead` `{"id":N, "lead":"alice"\|null}` | set or clear a component's lead |

use serde_json::{Value, json};

use super::data::Poison;
use super::faults::Fault;
use super::state::{IssueUpdate, SimControl};

/// Handles `/_sim/…`; returns (status, JSON body).
pub(crate) fn handle(ctl: &SimControl, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let req = if body.is_empty() {
        Body(json!({}))
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => Body(v),
            Err(e) => return err(400, &format!("the request body is not JSON: {e}")),
        }
    };
    match (method, path) {
        ("GET", "/_sim/stats") => stats(ctl),
        ("GET", "/_sim/truth") => truth(ctl),
        ("POST", "/_sim/update") => update(ctl, &req),
        ("POST", "/_sim/bulk-edit") => bulk_edit(ctl, &req),
        ("POST", "/_sim/move") => {
            let (Some(id), Some(p)) = (req.n("id"), req.s("project")) else {
                return err(400, "give \"id\" and \"project\"");
            };
            match ctl.move_issue(id, &p) {
                Ok(k) => ok(json!({ "key": k })),
                Err(e) => err(400, &e),
            }
        }
        ("POST", "/_sim/delete") => match ctl.delete_issues(&req.ids("ids")) {
            Ok(()) => ok(json!({ "deleted": req.ids("ids") })),
            Err(e) => err(400, &e),
        },
        ("POST", "/_sim/faults") => faults(ctl, &req),
        ("POST", "/_sim/faults/clear") => {
            ctl.clear_faults();
            ok(json!({}))
        }
        ("POST", "/_sim/poison") => poison(ctl, &req),
        ("POST", "/_sim/latency") => {
            ctl.set_latency_ms(req.n("ms").unwrap_or(0));
            ok(json!({}))
        }
        ("POST", "/_sim/changelog-cut") => {
            ctl.set_changelog_cut(req.n("cut").map(|n| n.min(u32::MAX as u64) as u32));
            if let Some(on) = req.0.get("on_get").and_then(|v| v.as_bool()) {
                ctl.set_changelog_cut_on_get(on);
            }
            ok(json!({}))
        }
        ("POST", "/_sim/archive") => each_id(&req, |id| ctl.archive_issue(id), "archived"),
        ("POST", "/_sim/restore") => each_id(&req, |id| ctl.restore_issue(id), "restored"),
        ("POST", p) => dimension(ctl, p, &req)
            .unwrap_or_else(|| err(404, &format!("no admin endpoint {method} {path}"))),
        _ => err(404, &format!("no admin endpoint {method} {path}")),
    }
}

/// Applies `f` to every id of `"ids"`, stopping at the first error;
/// answers `{what: ids}`.
fn each_id(req: &Body, mut f: impl FnMut(u64) -> Result<(), String>, what: &str) -> (u16, String) {
    let ids = req.ids("ids");
    for &id in &ids {
        if let Err(e) = f(id) {
            return err(400, &e);
        }
    }
    ok(json!({ what: ids }))
}

/// `POST /_sim/version/…` and `/_sim/component/…` (`None`: no such endpoint).
fn dimension(ctl: &SimControl, path: &str, req: &Body) -> Option<(u16, String)> {
    let kinds = ["/_sim/version/", "/_sim/component/"];
    if !kinds.iter().any(|k| path.starts_with(k)) {
        return None;
    }
    let Some(id) = req.n("id") else {
        return Some(err(400, "give \"id\""));
    };
    let name = || req.s("name").ok_or_else(|| "give \"name\"".to_string());
    let done = match path {
        "/_sim/version/release" => req
            .s("date")
            .and_then(|d| chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
            .ok_or_else(|| "give \"date\" as yyyy-MM-dd".to_string())
            .and_then(|d| ctl.release_version(id, d)),
        "/_sim/version/rename" => name().and_then(|n| ctl.rename_version(id, &n)),
        "/_sim/version/archive" => ctl.archive_version(id),
        "/_sim/component/rename" => name().and_then(|n| ctl.rename_component(id, &n)),
        "/_sim/component/lead" => ctl.set_component_lead(id, req.s("lead").as_deref()),
        _ => return None,
    };
    Some(match done {
        Ok(()) => ok(json!({})),
        Err(e) => err(400, &e),
    })
}

/// An admin request's JSON body, read leniently (a missing key is empty).
struct Body(Value);

impl Body {
    fn ids(&self, k: &str) -> Vec<u64> {
        self.0
            .get(k)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
            .unwrap_or_default()
    }
    fn strs(&self, k: &str) -> Vec<String> {
        self.0
            .get(k)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
    fn s(&self, k: &str) -> Option<String> {
        self.0.get(k).and_then(|v| v.as_str()).map(str::to_string)
    }
    fn n(&self, k: &str) -> Option<u64> {
        self.0.get(k).and_then(|v| v.as_u64())
    }
}

/// `GET /_sim/stats`.
fn stats(ctl: &SimControl) -> (u16, String) {
    let st = ctl.stats();
    let by: Vec<Value> = st
        .by_endpoint
        .iter()
        .map(|((e, c), n)| json!({"endpoint": e, "status": c, "count": n}))
        .collect();
    ok(json!({
        "requests": st.requests, "rate_limited": st.rate_limited, "faults": st.faults,
        "cut_connections": st.cut_connections, "bytes_sent": st.bytes_sent,
        "searches_served": st.searches_served, "by_endpoint": by
    }))
}

/// `GET /_sim/truth`.
fn truth(ctl: &SimControl) -> (u16, String) {
    let list: Vec<Value> = ctl
        .ground_truth()
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "key": i.key, "project": i.project_key,
                "updated": i.updated_ms, "created": i.created_ms,
                "summary": i.summary, "status": i.status_name(), "labels": i.labels,
                "link_ids": i.link_ids(), "history_ids": i.history_ids(),
            })
        })
        .collect();
    ok(json!({
        "issues": list, "deleted": ctl.deleted_ids(), "archived": ctl.archived_ids()
    }))
}

/// `POST /_sim/update`.
fn update(ctl: &SimControl, req: &Body) -> (u16, String) {
    let mut u = IssueUpdate::new();
    if let Some(x) = req.s("summary") {
        u = u.summary(x);
    }
    if let Some(x) = req.s("status") {
        u = u.status(x);
    }
    u.add_labels = req.strs("add_labels");
    u.remove_labels = req.strs("remove_labels");
    u.remove_all_links = req
        .0
        .get("remove_all_links")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let ids = req.ids("ids");
    for id in &ids {
        if let Err(e) = ctl.update_issue(*id, &u) {
            return err(400, &e);
        }
    }
    ok(json!({ "updated": ids }))
}

/// `POST /_sim/bulk-edit`.
fn bulk_edit(ctl: &SimControl, req: &Body) -> (u16, String) {
    let mut list = req.ids("ids");
    if let Some(p) = req.s("project") {
        list = ctl.ids_in_project(&p);
    }
    if let Some(c) = req.n("count") {
        list.truncate(c as usize);
    }
    let mut u = IssueUpdate::new();
    if let Some(l) = req.s("add_label") {
        u = u.add_label(l);
    }
    match ctl.bulk_edit(&list, &u) {
        Ok(t) => ok(json!({ "edited": list.len(), "first": t.first(), "last": t.last() })),
        Err(e) => err(400, &e),
    }
}

/// `POST /_sim/faults`.
fn faults(ctl: &SimControl, req: &Body) -> (u16, String) {
    let count = req.n("count").unwrap_or(1) as usize;
    let fault = match req.s("fault").as_deref() {
        Some("429") => Fault::RateLimit {
            retry_after_secs: req.n("retry_after").unwrap_or(1),
        },
        Some(c @ ("500" | "502" | "503" | "504")) => Fault::Status(c.parse().unwrap_or(500)),
        Some("html502") => Fault::HtmlBadGateway,
        Some("html200") => Fault::HtmlLoginPage,
        Some("reset") => Fault::ResetMidBody,
        Some("truncate") => Fault::TruncatedBody,
        Some("close") => Fault::CloseMidBody,
        Some("slow") => Fault::SlowFirstByte {
            ms: req.n("ms").unwrap_or(2000),
        },
        other => return err(400, &format!("unknown fault {other:?}")),
    };
    if req.s("scope").as_deref() == Some("all") {
        ctl.schedule_faults(fault, count);
    } else {
        ctl.schedule_search_faults(fault, count);
    }
    ok(json!({ "scheduled": count }))
}

/// `POST /_sim/poison`.
fn poison(ctl: &SimControl, req: &Body) -> (u16, String) {
    let kind = match req.s("kind").as_deref() {
        Some("wrong_type") => Poison::WrongType,
        Some("bad_date") => Poison::BadDate,
        other => return err(400, &format!("unknown poison {other:?}")),
    };
    match req.n("id").map(|id| ctl.poison_issue(id, kind)) {
        Some(Ok(())) => ok(json!({})),
        Some(Err(e)) => err(400, &e),
        None => err(400, "give \"id\""),
    }
}

fn ok(v: Value) -> (u16, String) {
    (200, v.to_string())
}

fn err(status: u16, msg: &str) -> (u16, String) {
    (
        status,
        json!({"errorMessages": [msg], "errors": {}}).to_string(),
    )
}
