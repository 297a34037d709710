//! Misconfiguration caught early: every scope's project, issue types and
//! fields checked against what the server has (`/rest/api/2/project`,
//! `/issuetype`, `/field`), by `pipeline config check` (unless `--offline`)
//! and at the start of every extraction. Names match case-insensitively; an
//! unknown one is a configuration error (exit 2) that names the scope and the
//! closest known names.

use std::collections::HashSet;

use serde::Deserialize;

use crate::config::Scope;
use crate::error::{Error, Result};
use crate::jira::JiraClient;

#[derive(Deserialize)]
struct Named {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// What the server knows: project keys, issue type names, field ids and names.
#[derive(Debug, Default, Clone)]
pub struct Known {
    pub projects: Vec<String>,
    pub issue_types: Vec<String>,
    pub field_ids: Vec<String>,
    pub field_names: Vec<String>,
    /// The raw `/rest/api/2/field` body (the run stages it as its catalogue).
    pub field_body: bytes::Bytes,
    /// The raw `/rest/api/2/project` and `/issuetype` bodies (End pages
    /// carry them as the `projects` and `issuetypes` dimensions).
    pub project_body: bytes::Bytes,
    pub issuetype_body: bytes::Bytes,
}

impl Known {
    /// Asks the server (three requests).
    pub async fn fetch(client: &JiraClient) -> Result<Known> {
        let parse = |what: &str, body: &[u8]| -> Result<Vec<Named>> {
            serde_json::from_slice(body)
                .map_err(|e| Error::Other(format!("{what}: the list is not readable ({e})")))
        };
        let project_body = client.json_list("/rest/api/2/project").await?;
        let projects = parse("/rest/api/2/project", &project_body)?;
        let issuetype_body = client.json_list("/rest/api/2/issuetype").await?;
        let types = parse("/rest/api/2/issuetype", &issuetype_body)?;
        let field_body = client.fields().await?;
        let fields = parse("/rest/api/2/field", &field_body)?;
        Ok(Known {
            projects: projects.into_iter().filter_map(|p| p.key).collect(),
            issue_types: types.into_iter().filter_map(|t| t.name).collect(),
            field_ids: fields.iter().filter_map(|f| f.id.clone()).collect(),
            field_names: fields.into_iter().filter_map(|f| f.name).collect(),
            field_body,
            project_body,
            issuetype_body,
        })
    }
}

/// Every problem of `scopes` against `known`, one sentence each (empty: all good).
pub fn problems(scopes: &[&Scope], known: &Known) -> Vec<String> {
    let mut out = Vec::new();
    for sc in scopes {
        if !has(&known.projects, &sc.project) {
            out.push(unknown(sc, "project", &sc.project, &known.projects));
        }
        for t in &sc.issue_types {
            if !has(&known.issue_types, t) {
                out.push(unknown(sc, "issue type", t, &known.issue_types));
            }
        }
        let all: Vec<String> = known
            .field_ids
            .iter()
            .chain(&known.field_names)
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        for f in sc.fields.iter().filter(|f| *f != "*all") {
            if !has(&all, f) {
                out.push(unknown(sc, "field", f, &all));
            }
        }
    }
    out
}

/// Checks `scopes` against the server: a configuration error listing every
/// unknown name when there is one; else what the server knows.
pub async fn check_scopes(client: &JiraClient, scopes: &[&Scope]) -> Result<Known> {
    let known = Known::fetch(client).await?;
    let p = problems(scopes, &known);
    if p.is_empty() {
        return Ok(known);
    }
    Err(Error::Config(format!(
        "pipeline.toml: {} unknown name{} on the Jira server: {}; correct the scope (pipeline fields lists the field names)",
        p.len(),
        if p.len() == 1 { "" } else { "s" },
        p.join("; ")
    )))
}

/// `pipeline config check` (not `--offline`): every configured scope
/// against the server.
pub fn run(session: &crate::session::Session) -> Result<()> {
    let token = session.jira_token()?;
    let client = JiraClient::new(&session.config().jira, &token, session.stop().flag())?;
    let scopes: Vec<&Scope> = session.config().scopes.iter().collect();
    session.block_on(async {
        client.myself().await?;
        check_scopes(&client, &scopes).await.map(|_| ())
    })?
}

fn has(list: &[String], name: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(name))
}

fn unknown(sc: &Scope, what: &str, name: &str, known: &[String]) -> String {
    let close = closest(name, known, 3);
    format!(
        "scope {:?}: {what} {name:?} does not exist{}",
        sc.name,
        if close.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", close.join(", "))
        }
    )
}

/// The `n` known names nearest to `name` (case-insensitive edit distance),
/// only those within a third of its length.
pub fn closest(name: &str, known: &[String], n: usize) -> Vec<String> {
    let lower = name.to_lowercase();
    let limit = (lower.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &String)> = known
        .iter()
        .map(|k| (distance(&lower, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(n)
        .map(|(_, k)| format!("{k:?}"))
        .collect()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(project: &str, types: &[&str], fields: &[&str]) -> Scope {
        Scope {
            name: "s".into(),
            project: project.into(),
            issue_types: types.iter().map(|s| s.to_string()).collect(),
            fields: fields.iter().map(|s| s.to_string()).collect(),
            jql: None,
        }
    }

    fn known() -> Known {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect();
        Known {
            projects: v(&["DEMO", "ALPHA"]),
            issue_types: v(&["Bug", "Story", "Sub-task"]),
            field_ids: v(&["summary", "customfield_10002"]),
            field_names: v(&["Summary", "Story Points"]),
            field_body: bytes::Bytes::new(),
            project_body: bytes::Bytes::new(),
            issuetype_body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn names_match_case_insensitively() {
        let sc = scope(
            "demo",
            &["bug", "STORY"],
            &["story points", "customfield_10002", "*all"],
        );
        assert!(problems(&[&sc], &known()).is_empty());
    }

    #[test]
    fn unknown_names_are_named_with_the_closest_known_ones() {
        let sc = scope("DEMOO", &["Bgu"], &["Story Pionts"]);
        let p = problems(&[&sc], &known());
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].contains("project \"DEMOO\"") && p[0].contains("\"DEMO\""),
            "{}",
            p[0]
        );
        assert!(p[1].contains("did you mean \"Bug\""), "{}", p[1]);
        assert!(p[2].contains("\"Story Points\""), "{}", p[2]);
        assert!(closest("zzzzzzzz", &known().projects, 3).is_empty());
    }
}
