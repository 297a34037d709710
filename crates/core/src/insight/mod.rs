//! Look before you load: read-only commands that show what is in Jira and
//! what a run will cost, through the same client (auth, retries, errors) as
//! the extractor. None of them writes anything.
//!
//! - [`preview`]: `pipeline preview` — live issues of a JQL query as a table
//!   fitting the terminal, or JSON/CSV for piping.
//! - [`fields`]: `pipeline fields` — the field catalogue (`/rest/api/2/field`),
//!   and resolving field names to ids (used by `preview --fields`).
//! - [`plan`]: `pipeline plan` — per scope, the JQL of the next run, the
//!   issues it matches, its slices, requests and estimated duration, using the
//!   extractor's own planner.
//! - [`table`]: aligned tables that fit a terminal width, and CSV.

pub mod check;
pub mod fields;
pub mod plan;
pub mod preview;
pub mod table;

use crate::error::{Error, Result};
use crate::jira::JiraClient;
use crate::session::Session;

/// Output format of `preview` and `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table that fits the terminal width (`COLUMNS`, else the
    /// terminal's size, else 120 columns); long values end in `…`.
    Table,
    /// One JSON document (for `jq`).
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

/// The shared Jira client of the session (its token, its stop flag).
pub(crate) fn client(session: &Session) -> Result<JiraClient> {
    JiraClient::new(
        &session.config().jira,
        &session.jira_token()?,
        session.stop().flag(),
    )
}

/// Writes `text` to stdout; a closed pipe (`| head`) is not an error.
pub(crate) fn emit(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Io {
            path: "<stdout>".into(),
            source: e,
        }),
    }
}
