//! The one HTTP client for Jira: bearer-token auth, TLS (system roots plus an
//! optional CA bundle), gzip, timeouts, a bounded pool, one global limit of
//! requests in flight, the shared [`Limiter`], and the retry loop that asks
//! [`Failure::is_retryable`] and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::sync::Semaphore;

use super::error::{Failure, TransportKind, jira_messages, snippet};
use super::limiter::{Limiter, backoff, parse_retry_after};
use crate::config::{JiraConfig, RetryPolicy, Secret};
use crate::error::{Error, Result};

/// Counters over the client's life (for reports, tests and benches).
#[derive(Debug, Default)]
pub struct ClientStats {
    /// HTTP exchanges attempted (every attempt counts).
    pub requests: AtomicU64,
    /// Attempts that were retried.
    pub retries: AtomicU64,
    /// 429 answers received.
    pub throttled: AtomicU64,
    /// Response body bytes received (after gzip decoding).
    pub body_bytes: AtomicU64,
    /// Milliseconds spent waiting in the limiter or backing off.
    pub waited_ms: AtomicU64,
}

/// A request to make.
#[derive(Debug, Clone)]
pub struct Req {
    pub post: bool,
    /// Path under the base URL, e.g. `/rest/api/2/search`.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub json: Option<serde_json::Value>,
    /// The JQL, for error messages.
    pub jql: Option<String>,
    /// Search paging (`startAt`, `maxResults`), for the debug log.
    pub page: Option<(u64, u32)>,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Req {
            post: false,
            path: path.into(),
            query: Vec::new(),
            json: None,
            jql: None,
            page: None,
        }
    }
    /// `GET /path` as shown in messages (query strings are left out).
    pub fn what(&self) -> String {
        format!("{} {}", if self.post { "POST" } else { "GET" }, self.path)
    }
}

/// A complete response (status 2xx, whole body read).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
    pub headers: HeaderMap,
    pub fetched_at: DateTime<Utc>,
}

impl Response {
    /// Jira's `X-AREQUESTID`.
    pub fn request_id(&self) -> Option<String> {
        self.headers
            .get("x-arequestid")
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    }
}

/// The shared Jira client. Cheap to clone.
#[derive(Clone)]
pub struct JiraClient {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    retry: RetryPolicy,
    limiter: Arc<Limiter>,
    permits: Arc<Semaphore>,
    stop: Arc<AtomicBool>,
    stats: Arc<ClientStats>,
}

impl std::fmt::Debug for JiraClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JiraClient")
            .field("base", &self.base)
            .field("auth", &"***")
            .finish()
    }
}

impl JiraClient {
    /// Builds the client from the checked `[jira]` settings and the token.
    pub fn new(cfg: &JiraConfig, token: &Secret, stop: Arc<AtomicBool>) -> Result<JiraClient> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
            Error::Config(
                "JIRA_PAT contains characters that cannot go in an HTTP header; paste the token again".into(),
            )
        })?;
        auth.set_sensitive(true);
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("jira-pipeline/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.request_timeout)
            .timeout(cfg.request_timeout)
            .pool_max_idle_per_host(cfg.concurrency.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .gzip(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &cfg.ca_bundle {
            for der in crate::tls::read_pem_certs(path)? {
                let cert = reqwest::Certificate::from_der(der.as_ref()).map_err(|e| {
                    Error::Config(format!(
                        "{}: jira.ca_bundle holds a certificate that cannot be used ({e})",
                        path.display()
                    ))
                })?;
                b = b.add_root_certificate(cert);
            }
        }
        if cfg.danger_accept_invalid_certs {
            tracing::warn!(
                "TLS CERTIFICATE VERIFICATION IS OFF (jira.danger_accept_invalid_certs = true): anyone on the network path can read the token and the data; configure jira.ca_bundle instead"
            );
            b = b.danger_accept_invalid_certs(true);
        }
        let http = b
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client ({e})")))?;
        Ok(JiraClient {
            http,
            base: cfg.base_url.trim_end_matches('/').to_string(),
            auth,
            retry: cfg.retry.clone(),
            limiter: Arc::new(Limiter::default()),
            permits: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
            stop,
            stats: Arc::new(ClientStats::default()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// One attempt: wait for a slot and the limiter, send, read the whole body.
    async fn attempt(&self, req: &Req) -> std::result::Result<Response, Failure> {
        let _permit = self.wait_turn().await?;
        let endpoint = endpoint_label(&req.path);
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let rb = self.request_builder(req)?;
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => {
                crate::metrics::inc(
                    "jira_pipeline_requests",
                    &[("endpoint", endpoint), ("status", "error")],
                );
                return Err(transport(e));
            }
        };
        let status = resp.status().as_u16();

        crate::metrics::inc(
            "jira_pipeline_requests",
            &[("endpoint", endpoint), ("status", &status.to_string())],
        );
        let headers = resp.headers().clone();
        self.limiter.observe(&headers);
        let body = resp.bytes().await.map_err(transport)?;
        self.stats
            .body_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        crate::metrics::add("jira_pipeline_response_bytes", &[], body.len() as f64);
        outcome(status, headers, body)
    }

    /// Waiting phase of an attempt: a slot among the requests in flight
    /// (held until the permit is dropped), then the limiter's turn.
    async fn wait_turn(&self) -> std::result::Result<tokio::sync::SemaphorePermit<'_>, Failure> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::Interrupted)?;
        let waited = self
            .limiter
            .acquire(&self.stop)
            .await
            .ok_or(Failure::Interrupted)?;
        self.stats
            .waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::Relaxed);
        if !waited.is_zero() {
            crate::metrics::add(
                "jira_pipeline_rate_limit_wait_seconds",
                &[],
                waited.as_secs_f64(),
            );
        }
        Ok(permit)
    }

    /// Building phase of an attempt: logs the request and builds it (method,
    /// URL, auth and accept headers, query, JSON body).
    fn request_builder(&self, req: &Req) -> std::result::Result<reqwest::RequestBuilder, Failure> {
        match (&req.jql, req.page) {
            (Some(jql), Some((start_at, max_results))) => {
                tracing::debug!(request = %req.what(), jql = %jql, start_at, max_results, "sending");
            }
            _ => tracing::debug!(request = %req.what(), "sending"),
        }
        let url = format!("{}{}", self.base, req.path);
        let mut rb = if req.post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        rb = rb
            .header(AUTHORIZATION, self.auth.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if !req.query.is_empty() {
            rb = rb.query(&req.query);
        }
        if let Some(j) = &req.json {
            let body = serde_json::to_vec(j).map_err(|e| Failure::Unusable {
                detail: format!("cannot encode the request ({e})"),
            })?;
            rb = rb
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        Ok(rb)
    }

    /// Runs `req` with retries; `check` turns a 2xx response into a value or
    /// a [`Failure`] (e.g. a body that is not JSON), which is retried like
    /// any other failure if [`Failure::is_retryable`] says so.
    pub async fn execute<T, F>(&self, req: &Req, check: F) -> Result<T>
    where
        F: Fn(Response) -> std::result::Result<T, Failure> + Send + Sync + Clone + 'static,
        T: Send + 'static,
    {
        let attempts = self.retry.attempts.max(1);
        let what = req.what();
        let mut n = 0;
        loop {
            n += 1;
            if self.stopped() {
                return Err(Failure::Interrupted.into_error(&what, req.jql.as_deref(), n));
            }
            let result = match self.attempt(req).await {
                Ok(resp) => {
                    let check = check.clone();
                    // Parsing a large body is CPU work: keep it off the async workers.
                    match tokio::task::spawn_blocking(move || check(resp)).await {
                        Ok(r) => r,
                        Err(e) => Err(Failure::Unusable {
                            detail: format!("checking the response failed ({e})"),
                        }),
                    }
                }
                Err(f) => Err(f),
            };
            let failure = match result {
                Ok(v) => return Ok(v),
                Err(f) => f,
            };
            if !failure.is_retryable() || n >= attempts {
                if failure.is_retryable() {
                    tracing::error!(request = %what, attempts = n, "giving up: {}", failure.short());
                }
                return Err(failure.into_error(&what, req.jql.as_deref(), n));
            }
            if failure.is_throttle() {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            crate::metrics::inc(
                "jira_pipeline_retries",
                &[("endpoint", endpoint_label(&req.path))],
            );
            let delay = match failure.retry_after() {
                Some(ra) => {
                    // Honour Retry-After for everyone, not just this request.
                    self.limiter.pause(ra);
                    ra
                }
                None => backoff(&self.retry, n),
            };
            if failure.is_throttle() {
                crate::metrics::add(
                    "jira_pipeline_rate_limit_wait_seconds",
                    &[],
                    delay.as_secs_f64(),
                );
            }
            tracing::warn!(
                request = %what,
                attempt = n,
                of = attempts,
                delay_ms = delay.as_millis() as u64,
                "retrying: {}",
                failure.short()
            );
            if !self.sleep(delay).await {
                return Err(Failure::Interrupted.into_error(&what, req.jql.as_deref(), n));
            }
        }
    }

    /// Sleeps `d` in short steps, returning false if the stop flag is raised.
    async fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.stopped() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                self.stats
                    .waited_ms
                    .fetch_add(d.as_millis() as u64, Ordering::Relaxed);
                return true;
            }
            tokio::time::sleep((until - now).min(Duration::from_millis(200))).await;
        }
    }
}

/// Outcome phase of an attempt: a 2xx answer is the response (unless Jira
/// answered anonymously, or a login page came instead of Jira), anything
/// else the failure it describes.
fn outcome(status: u16, headers: HeaderMap, body: Bytes) -> std::result::Result<Response, Failure> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if (200..300).contains(&status) {
        if header("x-ausername").is_some_and(|u| u.eq_ignore_ascii_case("anonymous")) {
            return Err(Failure::Anonymous {
                detail: "X-AUSERNAME: anonymous".into(),
            });
        }
        if header("content-type").is_some_and(|t| t.to_ascii_lowercase().starts_with("text/html"))
            && let Some(detail) = super::error::login_page(&body)
        {
            return Err(Failure::LoginPage { detail });
        }
        return Ok(Response {
            status,
            body,
            headers,
            fetched_at: Utc::now(),
        });
    }
    let retry_after = header("retry-after").and_then(parse_retry_after);
    let denied = header("x-authentication-denied-reason").unwrap_or_default();
    let header_says_captcha = denied.to_ascii_uppercase().contains("CAPTCHA");
    let body_says_captcha = String::from_utf8_lossy(&body[..body.len().min(4096)])
        .to_ascii_uppercase()
        .contains("CAPTCHA_CHALLENGE");
    let location = if (300..400).contains(&status) {
        header("location")
    } else {
        denied
            .split(';')
            .find_map(|p| p.trim().strip_prefix("login-url="))
    };
    let mut messages = jira_messages(&body);
    if let Some(w) = header("www-authenticate").filter(|w| w.contains("error")) {
        messages.push(format!("WWW-Authenticate: {}", snippet(w.as_bytes(), 160)));
    }
    Err(Failure::Http {
        status,
        retry_after,
        messages,
        snippet: snippet(&body, 200),
        captcha: header_says_captcha || (status == 403 && body_says_captcha),
        location: location.map(|l| snippet(l.split('?').next().unwrap_or(l).as_bytes(), 200)),
    })
}

fn transport(e: reqwest::Error) -> Failure {
    if let Some(detail) = crate::tls::certificate_error(&e).map(|t| t.to_string()) {
        let host = e
            .url()
            .map(|u| match (u.host_str(), u.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => u.to_string(),
            })
            .unwrap_or_else(|| "the Jira server".into());
        return Failure::Certificate { host, detail };
    }
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else if e.is_body() || e.is_request() || e.is_decode() {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    // reqwest's Display names the URL (no credentials in it) and the cause.
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        let t = s.to_string();
        if !detail.contains(&t) {
            detail.push_str(": ");
            detail.push_str(&t);
        }
        src = s.source();
    }
    Failure::Transport { kind, detail }
}

/// Parses a body as JSON of type `T`; anything else is a (retryable) bad
/// body, except an HTML login page (see [`Failure::LoginPage`]).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    resp: &Response,
) -> std::result::Result<T, Failure> {
    if resp.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Failure::BadBody {
            detail: format!("HTTP {} with an empty body", resp.status),
            snippet: String::new(),
        });
    }
    serde_json::from_slice(&resp.body).map_err(|e| match super::error::login_page(&resp.body) {
        Some(detail) => Failure::LoginPage { detail },
        None => Failure::BadBody {
            detail: format!("not valid JSON ({e})"),
            snippet: snippet(&resp.body, 80),
        },
    })
}

/// The metrics label of a REST path: `/rest/api/2/search` → `search`.
fn endpoint_label(path: &str) -> &'static str {
    let p = path.trim_start_matches("/rest/api/2/");
    if p.starts_with("search") {
        "search"
    } else if p.starts_with("myself") {
        "myself"
    } else if p.starts_with("serverInfo") {
        "serverInfo"
    } else if p.starts_with("field") {
        "field"
    } else if p.starts_with("issue") {
        "issue"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ca: Option<std::path::PathBuf>) -> JiraConfig {
        JiraConfig {
            base_url: "https://jira.example.com".into(),
            page_size: 100,
            concurrency: 4,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            ca_bundle: ca,
            danger_accept_invalid_certs: false,
            retry: RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(100),
            },
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        let c =
            JiraClient::new(&cfg(None), &Secret::new("tok-abc-123"), Default::default()).unwrap();
        let d = format!("{c:?}");
        assert!(!d.contains("tok-abc-123") && d.contains("***"), "{d}");
    }

    #[test]
    fn ca_bundle_problems_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let e = JiraClient::new(&cfg(Some(missing)), &Secret::new("t"), Default::default())
            .unwrap_err();
        assert!(e.to_string().contains("nope.pem"), "{e}");
        assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let e =
            JiraClient::new(&cfg(Some(bad)), &Secret::new("t"), Default::default()).unwrap_err();
        assert!(e.to_string().contains("bad.pem"), "{e}");
    }

    #[test]
    fn token_that_cannot_be_a_header_is_a_config_error() {
        let e = JiraClient::new(&cfg(None), &Secret::new("bad\ntoken"), Default::default())
            .unwrap_err();
        assert!(!e.to_string().contains("bad\ntoken"));
        assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
    }
}
