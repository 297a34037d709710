//! jira-pipeline: copies Jira Data Center issues into a PostgreSQL reporting schema.
//!
//! Module map and data flow:
//!
//! ```text
//! Jira DC ──HTTP──> extract ──pages──> transform ──batches──> load ──> PostgreSQL
//!            (jira, extract)   (staging)   (transform)  (staging)  (load, db)
//! ```
//!
//! - [`config`]: `pipeline.toml` → checked [`config::Config`]; secrets from the environment.
//! - [`error`]: the error type and the documented exit codes.
//! - [`cli`]: clap definitions and the thin dispatch to library calls.
//! - [`db`]: connecting, identifier quoting, migrations, the advisory lock.
//! - [`tables`]: the warehouse table specs and the text-COPY row encoder.
//! - [`batch`]: table batches (transform → load), in memory and on disk.
//! - [`jira`]: the shared Jira HTTP client (retries, rate limits), JQL building, REST calls.
//! - [`extract`]: scopes → sliced searches → staged pages, resume state, End pages.
//! - [`insight`]: read-only looks at Jira and at the next run: preview, fields, plan.
//! - [`staging`]: the staging area's layout, file formats and atomic writes.
//! - [`report`]: human-readable reports (effective configuration, …).
//! - [`logging`]: tracing setup (text or JSON on stderr).
//! - [`sim`]: the Jira Data Center simulator (`pipeline simulate`, tests, benches).

pub mod batch;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod extract;
pub mod insight;
pub mod jira;
pub mod logging;
pub mod report;
pub mod sim;
pub mod staging;
pub mod tables;
