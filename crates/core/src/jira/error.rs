//! What can go wrong with one HTTP request to Jira, and the one place that
//! decides whether it is worth retrying ([`Failure::is_retryable`]).
//!
//! The retry loop in [`super::client`] only asks this module; after the last
//! attempt, or at once for a failure that must not be retried, the failure
//! becomes a one-line [`crate::error::Error::Jira`] (exit code 3) naming the
//! request and what to do.

use std::time::Duration;

use crate::error::{Error, JiraKind};

/// How a transport-level failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// The TCP/TLS connection could not be made.
    Connect,
    /// The request or the body did not finish in time.
    Timeout,
    /// The connection was reset or closed before the response was complete.
    Reset,
    /// Anything else the HTTP client reported.
    Other,
}

/// One failed attempt of one request.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No complete HTTP response (connect error, reset, timeout, cut body).
    Transport { kind: TransportKind, detail: String },
    /// A non-success HTTP status.
    Http {
        status: u16,
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
        /// Jira's `errorMessages` / `errors`, when the body had them.
        messages: Vec<String>,
        /// The start of the body, one line, for messages.
        snippet: String,
        /// `X-Authentication-Denied-Reason: CAPTCHA_CHALLENGE` (or the body says so).
        captcha: bool,
        /// Where a redirect (3xx) points, or the CAPTCHA's `login-url`,
        /// without its query string.
        location: Option<String>,
    },
    /// The server's TLS certificate was refused (unknown issuer, wrong
    /// name, expired): the same on every attempt.
    Certificate { host: String, detail: String },
    /// A 2xx answer that is an HTML login page (a single-sign-on gateway in
    /// front of Jira that did not take the token); `detail` is its title.
    LoginPage { detail: String },
    /// A 200 whose body is not the JSON we expect (an HTML page, a truncated
    /// or empty body).
    BadBody { detail: String, snippet: String },
    /// A 200 that says we are nobody: the token was not accepted.
    Anonymous { detail: String },
    /// Well-formed JSON, but not something we can use (e.g. an issue with no
    /// `updated`): retrying would give the same answer.
    Unusable { detail: String },
    /// The stop flag was raised (Ctrl-C).
    Interrupted,
}

/// Jira DC 10 answers `startAt + maxResults > 10000` with HTTP 500 and this text.
fn is_search_limit(messages: &[String], snippet: &str) -> bool {
    let hit = |s: &str| {
        let l = s.to_ascii_lowercase();
        l.contains("search limit")
            || (l.contains("10000") || l.contains("10,000")) && l.contains("limit")
    };
    messages.iter().any(|m| hit(m)) || hit(snippet)
}

impl Failure {
    /// The one retry decision: transient failures (throttling, gateway errors,
    /// server errors other than the search limit, resets, timeouts, cut or
    /// non-JSON bodies) are retried; authentication, permission, CAPTCHA, bad
    /// JQL and the search-window limit never are.
    pub(crate) fn is_retryable(&self) -> bool {
        match self {
            Failure::Transport { .. } | Failure::BadBody { .. } => true,
            Failure::Http {
                status,
                messages,
                snippet,
                captcha,
                ..
            } => {
                if *captcha {
                    return false;
                }
                match status {
                    408 | 429 | 502 | 503 | 504 => true,
                    500 => !is_search_limit(messages, snippet),
                    _ => false,
                }
            }
            Failure::Anonymous { .. }
            | Failure::Certificate { .. }
            | Failure::LoginPage { .. }
            | Failure::Unusable { .. }
            | Failure::Interrupted => false,
        }
    }

    /// How long the server asked us to wait before the next attempt.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True for a 429 (the shared limiter slows every request down).
    pub(crate) fn is_throttle(&self) -> bool {
        matches!(self, Failure::Http { status: 429, .. })
    }

    /// A short description for a log line about a retry.
    pub fn short(&self) -> String {
        match self {
            Failure::Transport { kind, detail } => format!("{kind:?}: {detail}"),
            Failure::Http {
                status, snippet, ..
            } => format!("HTTP {status} {snippet}"),
            Failure::BadBody { detail, .. } => detail.clone(),
            Failure::Anonymous { detail } => detail.clone(),
            Failure::Certificate { host, detail } => format!("TLS certificate of {host}: {detail}"),
            Failure::LoginPage { detail } => format!("an HTML login page ({detail})"),
            Failure::Unusable { detail } => detail.clone(),
            Failure::Interrupted => "interrupted".into(),
        }
    }

    /// The final error for `what` (e.g. `POST /rest/api/2/search`) after
    /// `attempts` attempts; `jql` is shown for a bad query.
    pub(crate) fn into_error(self, what: &str, jql: Option<&str>, attempts: u32) -> Error {
        let jql_part = jql.map(|q| format!(" (JQL: {q})")).unwrap_or_default();
        match self {
            Failure::Interrupted => Error::Interrupted(format!("stopped before {what} finished")),
            Failure::Http {
                status,
                messages,
                snippet,
                captcha,
                location,
                ..
            } => http_error(
                what,
                &jql_part,
                attempts,
                HttpAnswer {
                    status,
                    messages: &messages,
                    snippet: &snippet,
                    captcha,
                    location: location.as_deref(),
                },
            ),
            Failure::Certificate { host, detail } => Error::jira(
                JiraKind::Transport,
                format!(
                    "{what}: the TLS certificate of {host} is not trusted ({detail}); set jira.ca_bundle to the PEM file of the CA that signed it — not retried"
                ),
            ),
            Failure::LoginPage { detail } => Error::jira(
                JiraKind::Auth,
                format!(
                    "{what}: got an HTML login page ({detail}) instead of Jira's JSON: a single-sign-on gateway in front of Jira did not accept the token; have /rest/ exempted from SSO for personal access tokens, or check jira.base_url and JIRA_PAT — not retried"
                ),
            ),
            Failure::Transport { kind, detail } => {
                let hint = match kind {
                    TransportKind::Connect => {
                        "check jira.base_url, the network and TLS settings (jira.ca_bundle)"
                    }
                    TransportKind::Timeout => {
                        "Jira is slow; raise jira.request_timeout_secs or lower jira.page_size"
                    }
                    _ => "the connection is unreliable; try again later",
                };
                Error::jira(
                    JiraKind::Transport,
                    format!("{what}: {detail} after {attempts} attempt(s){jql_part}; {hint}"),
                )
            }
            Failure::BadBody { detail, snippet } => Error::jira(
                JiraKind::BadBody,
                format!(
                    "{what}: the response was not the JSON Jira sends ({detail}; starts with {snippet:?}) after {attempts} attempt(s); a proxy or error page is in the way — check jira.base_url"
                ),
            ),
            Failure::Anonymous { detail } => Error::jira(
                JiraKind::Auth,
                format!(
                    "{what}: Jira answered as an anonymous user ({detail}): the token did not reach Jira or was not accepted; check JIRA_PAT, and that no proxy in front of Jira drops the Authorization header — not retried"
                ),
            ),
            Failure::Unusable { detail } => {
                Error::jira(JiraKind::Unusable, format!("{what}: {detail}{jql_part}"))
            }
        }
    }
}

/// What an HTTP error answer said (see [`http_error`]).
struct HttpAnswer<'a> {
    status: u16,
    messages: &'a [String],
    snippet: &'a str,
    captcha: bool,
    location: Option<&'a str>,
}

/// The final error of an HTTP error status, by status (see
/// [`Failure::into_error`]).
fn http_error(what: &str, jql_part: &str, attempts: u32, a: HttpAnswer<'_>) -> Error {
    let HttpAnswer {
        status,
        messages,
        snippet,
        captcha,
        location,
    } = a;
    match status {
        300..=399 => redirect_error(what, status, location),
        401 if mentions_expiry(messages, snippet) => Error::jira(
            JiraKind::Auth,
            format!(
                "{what}: Jira says the token has expired (HTTP 401: {}); create a new personal access token (Jira profile → Personal Access Tokens) and put it in JIRA_PAT — not retried",
                detail_of(messages, snippet)
            ),
        ),
        401 => Error::jira(
            JiraKind::Auth,
            format!(
                "{what}: Jira refused the token (HTTP 401); check JIRA_PAT (a personal access token of a user who can browse the projects) — not retried"
            ),
        ),
        _ if captcha => Error::jira(
            JiraKind::Auth,
            format!(
                "{what}: Jira demands a CAPTCHA for this user (HTTP 403 CAPTCHA_CHALLENGE) — stopped at once, because retrying deepens the lockout; log in once in a browser{} to clear it, then check JIRA_PAT",
                location.map(|l| format!(" at {l}")).unwrap_or_default()
            ),
        ),
        403 => Error::jira(
            JiraKind::Forbidden,
            format!(
                "{what}: Jira refused access (HTTP 403: {}); the token's user needs Browse permission on the project — not retried",
                detail_of(messages, snippet)
            ),
        ),
        400 => Error::jira(
            JiraKind::BadQuery,
            format!(
                "{what}: Jira rejected the query (HTTP 400: {}){jql_part}; check the scope's project, issue_types and jql in the configuration",
                detail_of(messages, snippet)
            ),
        ),
        404 => Error::jira(
            JiraKind::NotFound,
            format!(
                "{what}: not found (HTTP 404: {snippet}); check jira.base_url (it must be the Jira base, without /rest/...)"
            ),
        ),
        500 if is_search_limit(messages, snippet) => Error::jira(
            JiraKind::Unusable,
            format!(
                "{what}: Jira refused to page past its 10,000-result search window (HTTP 500 \"Search limit exceeded\"){jql_part}; this is a bug in the extractor's paging, which must never ask for it — please report it"
            ),
        ),
        _ => Error::jira(
            JiraKind::Server,
            format!(
                "{what}: HTTP {status} ({}) after {attempts} attempt(s){jql_part}; Jira is failing or overloaded — try again later or raise jira.retry.attempts",
                detail_of(messages, snippet)
            ),
        ),
    }
}

/// A redirect: to a login page (a single-sign-on gateway that did not take
/// the token), or elsewhere (the base URL is not where Jira answers).
fn redirect_error(what: &str, status: u16, location: Option<&str>) -> Error {
    let to = location.unwrap_or("no Location");
    if location.is_some_and(looks_like_login) {
        Error::jira(
            JiraKind::Auth,
            format!(
                "{what}: redirected to a login page ({to}, HTTP {status}): a single-sign-on gateway in front of Jira did not accept the token; have /rest/ exempted from SSO for personal access tokens, or check JIRA_PAT — not retried"
            ),
        )
    } else {
        Error::jira(
            JiraKind::NotFound,
            format!(
                "{what}: redirected to {to} (HTTP {status}); set jira.base_url to the address Jira answers at (https://, context path) — not retried"
            ),
        )
    }
}

/// True when a 401 says the token expired (Jira's message or the
/// `WWW-Authenticate` error description).
fn mentions_expiry(messages: &[String], snippet: &str) -> bool {
    messages
        .iter()
        .map(String::as_str)
        .chain([snippet])
        .any(|m| m.to_ascii_lowercase().contains("expired"))
}

/// True for a URL or page text that is about logging in.
pub(crate) fn looks_like_login(text: &str) -> bool {
    let l = text.to_ascii_lowercase();
    [
        "login", "log in", "log-in", "signin", "sign in", "sign-in", "sso", "saml", "oauth",
        "password",
    ]
    .iter()
    .any(|w| l.contains(w))
}

/// The title of an HTML login page, or `None` when `body` is not HTML about
/// logging in.
pub(crate) fn login_page(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
    let t = head.trim_start();
    let lower = t.to_ascii_lowercase();
    let is_html = lower.starts_with("<!doctype html") || lower.starts_with("<html");
    if !is_html || !looks_like_login(&lower) {
        return None;
    }
    let title = lower
        .find("<title>")
        .and_then(|i| {
            let rest = &t[i + 7..];
            rest.find("</").map(|j| rest[..j].trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .map(|s| format!("title {s:?}"))
        .unwrap_or_else(|| "a page with a password field".into());
    Some(snippet(title.as_bytes(), 80))
}

fn detail_of(messages: &[String], snippet: &str) -> String {
    if messages.is_empty() {
        snippet.to_string()
    } else {
        messages.join("; ")
    }
}

/// The start of a body as one printable line (at most `max` characters).
pub(crate) fn snippet(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max * 4)]);
    let one: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    let mut s = one.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > max {
        s.push('…');
    }
    s
}

/// Jira's error JSON: `{"errorMessages": [...], "errors": {"field": "msg"}}`.
pub(crate) fn jira_messages(body: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default, rename = "errorMessages")]
        error_messages: Vec<String>,
        #[serde(default)]
        errors: std::collections::BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        message: Option<String>,
    }
    match serde_json::from_slice::<E>(body) {
        Ok(e) => {
            let mut out = e.error_messages;
            for (k, v) in e.errors {
                match v {
                    serde_json::Value::String(s) => out.push(format!("{k}: {s}")),
                    other => out.push(format!("{k}: {other}")),
                }
            }
            if let Some(m) = e.message {
                out.push(m);
            }
            out
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Callers decide by the kind (a 404 on an issue looked up alone means
    /// it was deleted; auth failures stop at once), so each is kept.
    #[test]
    fn failures_keep_their_kind() {
        let kind = |f: Failure| f.into_error("GET x", None, 1).jira_kind();
        assert_eq!(kind(http(401, "")), Some(JiraKind::Auth));
        assert_eq!(kind(http(403, "")), Some(JiraKind::Forbidden));
        assert_eq!(kind(http(400, "")), Some(JiraKind::BadQuery));
        assert_eq!(kind(http(404, "")), Some(JiraKind::NotFound));
        assert_eq!(kind(http(503, "")), Some(JiraKind::Server));
        assert_eq!(
            kind(Failure::Anonymous { detail: "x".into() }),
            Some(JiraKind::Auth)
        );
        assert_eq!(kind(Failure::Interrupted), None);
    }

    fn http(status: u16, snippet: &str) -> Failure {
        Failure::Http {
            status,
            retry_after: None,
            messages: jira_messages(snippet.as_bytes()),
            snippet: snippet.into(),
            captcha: false,
            location: None,
        }
    }

    #[test]
    fn retry_decisions() {
        for s in [429, 502, 503, 504, 500, 408] {
            assert!(http(s, "oops").is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 405] {
            assert!(!http(s, "no").is_retryable(), "{s}");
        }
        let limit = http(
            500,
            r#"{"errorMessages":["Search limit exceeded. startAt + maxResults must be at most 10000"]}"#,
        );
        assert!(!limit.is_retryable());
        let e = limit.into_error("POST /rest/api/2/search", Some("project = \"A\""), 1);
        assert!(e.to_string().contains("10,000"), "{e}");
        let captcha = Failure::Http {
            status: 403,
            retry_after: None,
            messages: vec![],
            snippet: String::new(),
            captcha: true,
            location: None,
        };
        assert!(!captcha.is_retryable());
        assert!(
            captcha
                .into_error("GET /x", None, 1)
                .to_string()
                .contains("CAPTCHA")
        );
        assert!(
            Failure::Transport {
                kind: TransportKind::Reset,
                detail: "reset".into()
            }
            .is_retryable()
        );
        assert!(
            Failure::BadBody {
                detail: "html".into(),
                snippet: "<html>".into()
            }
            .is_retryable()
        );
        assert!(!Failure::Anonymous { detail: "x".into() }.is_retryable());
    }

    #[test]
    fn bad_request_shows_messages_and_jql() {
        let e = http(400, r#"{"errorMessages":["The value 'X' does not exist for the field 'project'."],"errors":{}}"#)
            .into_error("POST /rest/api/2/search", Some("project = \"X\""), 1);
        let m = e.to_string();
        assert!(
            m.contains("does not exist") && m.contains("project = \"X\""),
            "{m}"
        );
        assert_eq!(e.exit_code(), crate::error::ExitCode::Jira);
    }

    #[test]
    fn snippet_is_one_line() {
        assert_eq!(
            snippet(b"<html>\n<body>Bad\tgateway</body>", 100),
            "<html> <body>Bad gateway</body>"
        );
        assert!(snippet(&[b'a'; 500], 10).ends_with('…'));
    }
}
