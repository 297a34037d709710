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
//! - [`status`]: `pipeline status` and `staging usage|gc`.
//! - [`transform`]: staged pages → table batches (rayon + simd-json); `run --stage transform`.
//! - [`load`]: batches → PostgreSQL (COPY, merge, ledger, checkpoint; one transaction per unit).
//! - [`report`]: human-readable reports (effective configuration, …).
//! - [`runlog`]: the `run_history` table.
//! - [`shutdown`]: Ctrl-C / SIGTERM handling.
//! - [`metrics`]: counters and gauges, rendered as OpenMetrics text.
//! - [`bench_e2e`]: `pipeline bench e2e`, the whole pipeline vs each stage alone.
//! - [`demo`]: `pipeline demo`, the quick start against the built-in simulator.
//! - [`pipeline`]: `run --stage all` / `sync` / `backfill`: the stages over bounded channels.
//! - [`progress`]: per-stage progress lines (TTY) or periodic log lines.
//! - [`replay`]: selecting archived pages and printing the rows they produce.
//! - [`logging`]: tracing setup (text or JSON on stderr).
//! - [`sim`]: the Jira Data Center simulator (`pipeline simulate`, tests, benches).

pub mod batch;
pub mod bench_e2e;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod extract;
pub mod insight;
pub mod jira;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod progress;
pub mod replay;
pub mod report;
pub mod runlog;
pub mod shutdown;
pub mod sim;
pub mod staging;
pub mod status;
pub mod tables;
pub mod transform;
