//! jira-pipeline-core: the pipeline itself — everything that copies Jira Data
//! Center issues into a PostgreSQL reporting schema, without the command line.
//!
//! This crate owns the configuration, the Jira client, the three stages
//! (extract, transform, load), the staging area, the warehouse and the
//! orchestration that runs the stages together. It depends neither on the
//! command line (clap lives in the `pipeline` binary, which maps its flags to
//! the plain option structs here) nor on the simulator (`jira-sim` is only a
//! dev-dependency, for unit tests); the benchmark harness is `jira-pipeline-bench`.
//!
//! ## What is public, and why
//!
//! Items are `pub(crate)` unless something outside the crate uses them, and
//! three kinds of user do:
//!
//! - the `pipeline` binary: [`session::Session`], each stage's `run` entry
//!   point and its report (`Display` + [`session::Report::exit_code`]), the
//!   read-only commands (`insight`, `status`, `replay`), [`config`],
//!   [`error`], [`db::init`] and [`logging`];
//! - the integration tests and the bench harness, which drive the stages
//!   piecewise against real files and a real PostgreSQL: the staging layout
//!   and page format ([`staging`]), batches ([`batch`]), the table specs and
//!   COPY encoding ([`tables`]), the loader and its fault hooks ([`load`]),
//!   the async extractor ([`extract::extract`]) and the transform of one
//!   page ([`transform`]);
//! - the next features, which decide by an error's kind
//!   ([`error::Error::jira_kind`]).
//!
//! Everything else is crate-private: 210 items were narrowed so (about 400
//! stay public, most of them because the tests above name them, or because a
//! public signature carries them).

//! Module map and data flow:
//!
//! ```text
//! Jira DC ──HTTP──> extract ──pages──> transform ──batches──> load ──> PostgreSQL
//!            (jira, extract)   (staging)   (transform)  (staging)  (load, db)
//! ```
//!
//! - [`config`]: `pipeline.toml` → checked [`config::Config`]; secrets from the environment.
//! - [`error`]: the error type and the documented exit codes.
//! - [`db`]: connecting, identifier quoting, migrations, the advisory lock.
//! - `tls` (crate-private): reading CA bundles (PEM), shared by [`db`] and [`jira`].
//! - [`tables`]: the warehouse schema as specs (every table: columns, keys, indexes,
//!   merge mode) and the text-COPY row encoder.
//! - [`bookkeeping`]: every statement about the pipeline's own tables (checkpoint,
//!   page ledger, quarantine, run history, issue digests, deferred indexes).
//! - [`census`]: `pipeline reconcile`: lists every issue of a scope and marks
//!   what Jira deleted or no scope matches any more (the faithful mirror).
//! - [`batch`]: table batches (transform → load), in memory and on disk.
//! - [`jira`]: the shared Jira HTTP client (retries, rate limits), JQL building, REST calls.
//! - [`extract`]: scopes → sliced searches → staged pages, resume state, End pages.
//! - [`insight`]: read-only looks at Jira and at the next run: preview, fields, plan.
//! - [`staging`]: the staging area's layout, file formats and atomic writes.
//! - [`status`]: `pipeline status` and `staging usage|gc`.
//! - [`transform`]: staged pages → table batches (rayon + simd-json); `run --stage transform`.
//! - [`load`]: batches → PostgreSQL (COPY, merge, ledger, checkpoint; one transaction per unit).
//! - [`report`]: human-readable reports (effective configuration, …).
//! - [`session`]: one command's context (config, secrets, staging, stop flag,
//!   runtime, locked connections), the shared [`session::RunOptions`] and the
//!   [`session::Report`] every stage returns.
//! - [`shutdown`]: Ctrl-C / SIGTERM handling.
//! - [`metrics`]: counters and gauges, rendered as OpenMetrics text.
//! - [`pipeline`]: `run --stage all` / `sync` / `backfill`: the stages over bounded channels.
//! - [`progress`]: the one progress system: named counters drawn as lines (TTY) or logged.
//! - [`replay`]: selecting archived pages and printing the rows they produce.
//! - [`logging`]: tracing setup (text or JSON on stderr).

pub mod batch;
pub mod bookkeeping;
pub mod census;
pub mod config;
pub mod db;
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
pub mod session;
pub mod shutdown;
pub mod staging;
pub mod status;
pub mod tables;
pub(crate) mod tls;
pub mod transform;
