//! The Jira REST calls the extractor makes: `/myself` (who we are, the
//! profile time zone), `/serverInfo`, `/field`, and `/search` (pages and
//! `maxResults=0` counts), each with the response checks that decide whether
//! an answer is usable.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::client::{JiraClient, Req, Response, parse_json};
use super::error::Failure;
use super::jql::parse_jira_time;
use crate::error::{Error, JiraKind, Result};

/// `GET /rest/api/2/myself`, reduced to what we use.
#[derive(Debug, Clone)]
pub struct Myself {
    pub name: String,
    pub display_name: String,
    /// The profile time zone as Jira sent it.
    pub time_zone: Option<String>,
    /// The zone JQL dates are read in (UTC when Jira sent none or an unknown one).
    pub tz: Tz,
}

/// `GET /rest/api/2/serverInfo`, reduced to what we use.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerInfo {
    pub version: String,
    pub deployment_type: String,
    pub server_time: Option<DateTime<Utc>>,
}

/// One issue of a search page: what paging needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueHead {
    pub id: u64,
    pub key: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub updated_raw: String,
    /// `(histories carried, changelog.total)` when the search cut the
    /// issue's changelog short (it carries fewer histories than `total`).
    pub changelog_cut: Option<(u64, u64)>,
}

/// A search response: the raw body plus what paging needs from it.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub body: Bytes,
    pub status: u16,
    pub start_at: u64,
    /// `maxResults` as the server reports it (it may cap what we asked).
    pub max_results: Option<u64>,
    /// `total` as reported (never trusted for completeness).
    pub total: Option<u64>,
    pub issues: Vec<IssueHead>,
    pub request_id: Option<String>,
    pub fetched_at: DateTime<Utc>,
    /// Issues fetched alone after the search (`issue:<id>`, raw body),
    /// staged after the page's body.
    pub extra: Vec<(String, Bytes)>,
}

#[derive(Deserialize)]
struct RawMyself {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default, rename = "displayName")]
    display_name: Option<String>,
    #[serde(default, rename = "timeZone")]
    time_zone: Option<String>,
}

#[derive(Deserialize)]
struct RawServerInfo {
    #[serde(default)]
    version: Option<String>,
    #[serde(default, rename = "deploymentType")]
    deployment_type: Option<String>,
    #[serde(default, rename = "serverTime")]
    server_time: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default, rename = "startAt")]
    start_at: Option<u64>,
    #[serde(default, rename = "maxResults")]
    max_results: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    issues: Option<Vec<RawIssue>>,
}

#[derive(Deserialize)]
struct RawIssue {
    id: serde_json::Value,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    fields: Option<RawFields>,
    #[serde(default)]
    changelog: Option<RawChangelog>,
}

#[derive(Deserialize)]
struct RawChangelog {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    histories: Option<Vec<serde::de::IgnoredAny>>,
}

impl RawChangelog {
    /// `(carried, total)` when fewer histories are carried than `total` says.
    fn cut(&self) -> Option<(u64, u64)> {
        let have = self.histories.as_ref().map_or(0, |h| h.len() as u64);
        self.total.filter(|&t| t > have).map(|t| (have, t))
    }
}

/// One page of a census listing: issue ids only.
#[derive(Debug, Clone)]
pub struct IdPage {
    pub ids: Vec<u64>,
    pub total: Option<u64>,
    /// `maxResults` as the server reports it (it may cap what we asked).
    pub max_results: Option<u64>,
}

#[derive(Deserialize)]
struct RawFields {
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    updated: Option<String>,
}

#[derive(Deserialize)]
struct RawIdPage {
    #[serde(default, rename = "maxResults")]
    max_results: Option<u64>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    issues: Option<Vec<RawId>>,
}

#[derive(Deserialize)]
struct RawId {
    id: serde_json::Value,
}

/// An issue id as Jira writes it (a string of digits; a number is accepted).
fn json_id(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::String(s) => s.parse::<u64>().ok(),
        serde_json::Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// Checks a `/myself` answer: an empty body, or a user with no name, is an
/// authentication failure (Jira answers some anonymous requests with 200).
pub(crate) fn check_myself(resp: Response) -> std::result::Result<Myself, Failure> {
    if resp.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Failure::Anonymous {
            detail: "an empty 200 answer to /myself".into(),
        });
    }
    let raw: RawMyself = parse_json(&resp)?;
    let name = raw
        .name
        .or(raw.key)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| Failure::Anonymous {
            detail: "/myself named no user".into(),
        })?;
    if name.eq_ignore_ascii_case("anonymous") {
        return Err(Failure::Anonymous {
            detail: "/myself answered for the anonymous user".into(),
        });
    }
    let tz = match raw.time_zone.as_deref() {
        Some(z) => z.parse::<Tz>().unwrap_or_else(|_| {
            tracing::warn!(
                zone = z,
                "Jira sent a time zone this build does not know; reading JQL dates as UTC"
            );
            chrono_tz::UTC
        }),
        None => chrono_tz::UTC,
    };
    Ok(Myself {
        display_name: raw.display_name.unwrap_or_else(|| name.clone()),
        name,
        time_zone: raw.time_zone,
        tz,
    })
}

/// Checks a search answer and extracts the issue heads.
pub fn check_search(resp: Response, want_issues: bool) -> std::result::Result<SearchPage, Failure> {
    let raw: RawPage = parse_json(&resp)?;
    let issues_raw = match raw.issues {
        Some(v) => v,
        None if !want_issues => Vec::new(),
        None => {
            return Err(Failure::BadBody {
                detail: "a search answer without an \"issues\" array".into(),
                snippet: super::error::snippet(&resp.body, 80),
            });
        }
    };
    if !want_issues && raw.total.is_none() {
        return Err(Failure::BadBody {
            detail: "a count answer without \"total\"".into(),
            snippet: super::error::snippet(&resp.body, 80),
        });
    }
    let mut issues = Vec::with_capacity(issues_raw.len());
    for (i, r) in issues_raw.into_iter().enumerate() {
        let id = json_id(&r.id);
        let key = r.key.unwrap_or_default();
        let who = if key.is_empty() {
            format!("issue #{i} of the page")
        } else {
            format!("issue {key}")
        };
        let id = id.ok_or_else(|| Failure::Unusable {
            detail: format!("{who} has no numeric \"id\""),
        })?;
        let f = r.fields.ok_or_else(|| Failure::Unusable {
            detail: format!("{who} has no \"fields\""),
        })?;
        let updated_raw = f.updated.unwrap_or_default();
        let updated = parse_jira_time(&updated_raw).ok_or_else(|| Failure::Unusable {
            detail: format!("{who} has no readable \"updated\" ({updated_raw:?})"),
        })?;
        let created_raw = f.created.unwrap_or_default();
        let created = parse_jira_time(&created_raw).ok_or_else(|| Failure::Unusable {
            detail: format!("{who} has no readable \"created\" ({created_raw:?})"),
        })?;
        issues.push(IssueHead {
            id,
            key,
            created,
            updated,
            updated_raw,
            changelog_cut: r.changelog.as_ref().and_then(RawChangelog::cut),
        });
    }
    Ok(SearchPage {
        request_id: resp.request_id(),
        status: resp.status,
        start_at: raw.start_at.unwrap_or(0),
        max_results: raw.max_results,
        total: raw.total,
        issues,
        fetched_at: resp.fetched_at,
        body: resp.body,
        extra: Vec::new(),
    })
}

/// `POST /rest/api/2/search` of `jql` at `(startAt, maxResults)` with one
/// `fields` entry and, optionally, one expansion.
fn search_req(
    jql: &str,
    (start_at, max_results): (u64, u32),
    fields: &str,
    expand: Option<&str>,
) -> Req {
    let mut body = serde_json::json!({
        "jql": jql,
        "startAt": start_at,
        "maxResults": max_results,
        "fields": [fields],
    });
    if let Some(e) = expand {
        body["expand"] = serde_json::json!([e]);
    }
    Req {
        post: true,
        path: "/rest/api/2/search".into(),
        query: Vec::new(),
        json: Some(body),
        jql: Some(jql.to_string()),
        page: Some((start_at, max_results)),
    }
}

/// Fields and expansions every search asks for.
pub(crate) const SEARCH_FIELDS: &str = "*all";
pub(crate) const SEARCH_EXPAND: &str = "changelog";

impl JiraClient {
    /// `GET /rest/api/2/myself`.
    pub async fn myself(&self) -> Result<Myself> {
        self.execute(&Req::get("/rest/api/2/myself"), check_myself)
            .await
    }

    /// `GET /rest/api/2/serverInfo`.
    pub(crate) async fn server_info(&self) -> Result<ServerInfo> {
        self.execute(&Req::get("/rest/api/2/serverInfo"), |resp| {
            let raw: RawServerInfo = parse_json(&resp)?;
            Ok(ServerInfo {
                version: raw.version.unwrap_or_default(),
                deployment_type: raw.deployment_type.unwrap_or_default(),
                server_time: raw.server_time.as_deref().and_then(parse_jira_time),
            })
        })
        .await
    }

    /// `GET /rest/api/2/field`: the raw body (checked to be a JSON array).
    pub async fn fields(&self) -> Result<Bytes> {
        self.execute(&Req::get("/rest/api/2/field"), |resp| {
            let v: Vec<serde::de::IgnoredAny> = parse_json(&resp)?;
            let _ = v;
            Ok(resp.body)
        })
        .await
    }

    /// `POST /rest/api/2/search` for one page.
    pub async fn search(&self, jql: &str, start_at: u64, max_results: u32) -> Result<SearchPage> {
        let req = search_req(
            jql,
            (start_at, max_results),
            SEARCH_FIELDS,
            Some(SEARCH_EXPAND),
        );
        self.execute(&req, |resp| check_search(resp, true)).await
    }

    /// One page of issue ids (`fields=id`, no expansion): the census's
    /// light listing.
    pub async fn list_ids(&self, jql: &str, start_at: u64, max_results: u32) -> Result<IdPage> {
        let req = search_req(jql, (start_at, max_results), "id", None);
        self.execute(&req, |resp| {
            let raw: RawIdPage = parse_json(&resp)?;
            let Some(list) = raw.issues else {
                return Err(Failure::BadBody {
                    detail: "a search answer without an \"issues\" array".into(),
                    snippet: super::error::snippet(&resp.body, 80),
                });
            };
            let mut ids = Vec::with_capacity(list.len());
            for (i, r) in list.iter().enumerate() {
                ids.push(json_id(&r.id).ok_or_else(|| Failure::Unusable {
                    detail: format!("issue #{i} of the page has no numeric \"id\""),
                })?);
            }
            Ok(IdPage {
                ids,
                total: raw.total,
                max_results: raw.max_results,
            })
        })
        .await
    }

    /// `GET /rest/api/2/issue/{id}` with `fields` and `expand` as given:
    /// the raw body (checked to be a JSON object), or `None` when Jira
    /// answers 404 (deleted, or not visible to this user).
    pub async fn issue_alone(&self, id: u64, fields: &str, expand: &str) -> Result<Option<Bytes>> {
        let mut req = Req::get(&format!("/rest/api/2/issue/{id}"));
        req.query.push(("fields".into(), fields.into()));
        if !expand.is_empty() {
            req.query.push(("expand".into(), expand.into()));
        }
        let r = self
            .execute(&req, move |resp| {
                let v: RawIssue = parse_json(&resp)?;
                if json_id(&v.id) != Some(id) {
                    return Err(Failure::Unusable {
                        detail: format!("GET issue {id} answered with another issue"),
                    });
                }
                Ok(resp.body)
            })
            .await;
        match r {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.jira_kind() == Some(JiraKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /rest/api/2/project/{key}/versions` or `…/components` (`what`):
    /// the raw body, checked to be a JSON array.
    pub async fn project_list(&self, key: &str, what: &str) -> Result<Bytes> {
        self.json_list(&format!("/rest/api/2/project/{key}/{what}"))
            .await
    }

    /// `GET path` of a list endpoint (`/rest/api/2/status`, …): the raw
    /// body, checked to be a JSON array.
    pub async fn json_list(&self, path: &str) -> Result<Bytes> {
        let req = Req::get(path);
        self.execute(&req, |resp| {
            let v: Vec<serde::de::IgnoredAny> = parse_json(&resp)?;
            let _ = v;
            Ok(resp.body)
        })
        .await
    }

    /// How many issues match `jql` (`maxResults=0`; only for planning).
    pub async fn count(&self, jql: &str) -> Result<u64> {
        let req = search_req(jql, (0, 0), "id", None);
        let page = self.execute(&req, |resp| check_search(resp, false)).await?;
        page.total.ok_or_else(|| {
            Error::jira(
                JiraKind::Unusable,
                format!("count query gave no total (JQL: {jql})"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(body: &str) -> Response {
        Response {
            status: 200,
            body: Bytes::from(body.to_string()),
            headers: Default::default(),
            fetched_at: Utc::now(),
        }
    }

    #[test]
    fn myself_parses_real_shape_and_zone() {
        // The workspace's fixtures, two levels above this crate.
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/jira-real/jrjc-server5_user-with-timezone.json");
        let body = std::fs::read_to_string(&fixture)
            .unwrap_or_else(|e| panic!("real Jira fixture {}: {e}", fixture.display()));
        let m = check_myself(resp(&body)).unwrap();
        assert!(!m.name.is_empty());
        assert!(m.time_zone.is_some());
        let m = check_myself(resp(r#"{"name":"bob","timeZone":"America/New_York"}"#)).unwrap();
        assert_eq!(m.tz, chrono_tz::America::New_York);
    }

    #[test]
    fn anonymous_or_empty_myself_is_auth_failure() {
        for body in ["", "  ", "{}", r#"{"name":"anonymous"}"#] {
            let f = check_myself(resp(body)).unwrap_err();
            assert!(matches!(f, Failure::Anonymous { .. }), "{body:?}: {f:?}");
            assert!(!f.is_retryable());
        }
        // A login page instead of JSON: an SSO gateway kept the token out,
        // which no retry changes.
        let f = check_myself(resp("<html><title>Log in</title></html>")).unwrap_err();
        assert!(
            matches!(f, Failure::LoginPage { .. }) && !f.is_retryable(),
            "{f:?}"
        );
        assert!(f.short().contains("Log in"), "{f:?}");
    }

    #[test]
    fn search_page_heads_and_bad_bodies() {
        let p = check_search(
            resp(r#"{"startAt":0,"maxResults":100,"total":1,"issues":[{"id":"10001","key":"A-1","fields":{"created":"2024-01-01T10:00:00.000+0100","updated":"2024-01-02T10:00:00.000+0100"}}]}"#),
            true,
        )
        .unwrap();
        assert_eq!(p.issues[0].id, 10001);
        assert_eq!(p.issues[0].updated_raw, "2024-01-02T10:00:00.000+0100");
        assert_eq!(p.total, Some(1));
        assert!(
            check_search(resp(r#"{"startAt":0,"issues":[{"id":"1"#), true)
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            check_search(resp("<html>502</html>"), true)
                .unwrap_err()
                .is_retryable()
        );
        assert!(
            check_search(resp(r#"{"total":3}"#), true)
                .unwrap_err()
                .is_retryable()
        );
        assert_eq!(
            check_search(resp(r#"{"total":3}"#), false).unwrap().total,
            Some(3)
        );
        let f = check_search(
            resp(r#"{"issues":[{"id":"1","key":"A-1","fields":{}}]}"#),
            true,
        )
        .unwrap_err();
        assert!(!f.is_retryable() && f.short().contains("A-1"), "{f:?}");
    }
}
