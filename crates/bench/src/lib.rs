//! jira-pipeline-bench: the benchmark harness behind `pipeline bench`, kept out
//! of the core library so that production code cannot depend on it.
//!
//! It drives `jira-pipeline-core` with data from `jira-sim` (generated pages,
//! synthetic batches, a simulated Jira) and prints throughput figures. The
//! `pipeline` binary maps its `bench` flags to the option structs here.
//!
//! Module map:
//!
//! - [`transform`]: `pipeline bench transform` — transform vs a bare simd-json
//!   parse of the same bytes; also the page corpus the criterion bench uses.
//! - [`load`]: `pipeline bench load` — merge vs plain COPY vs row-by-row upsert.
//! - [`e2e`]: `pipeline bench e2e` — the whole pipeline vs each stage alone.
//! - [`census`]: `pipeline bench census` — a census of N issues, marking and not.

pub mod census;
pub mod e2e;
pub mod load;
pub mod transform;

use jira_pipeline_core::error::Error;

/// The simulator's start-up errors as the pipeline's (same exit codes:
/// settings → usage error, anything else → unexpected).
fn sim_error(e: jira_sim::Error) -> Error {
    match e {
        jira_sim::Error::Config(m) => Error::Config(m),
        jira_sim::Error::Other(m) => Error::Other(m),
    }
}
