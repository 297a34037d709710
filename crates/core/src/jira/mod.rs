//! Everything that talks to Jira over HTTP: the shared client (auth, TLS,
//! gzip, timeouts, retries with full jitter, `Retry-After`, the adaptive
//! `X-RateLimit-*` limiter), the retry decision next to the failure type,
//! JQL building with correct quoting, and the REST calls the extractor makes.

pub mod api;
pub mod client;
pub mod error;
pub mod jql;
pub(crate) mod limiter;

pub(crate) use api::{IssueHead, SearchPage};
pub(crate) use client::JiraClient;
