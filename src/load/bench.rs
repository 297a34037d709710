//! `pipeline bench load`: synthetic Jira-shaped batches loaded into a fresh
//! schema, against a plain-COPY ceiling and a row-by-row upsert baseline.

use crate::error::{ExitCode, Result};

use super::BenchLoadArgs;

pub fn exec(_config: &std::path::Path, _args: &BenchLoadArgs) -> Result<ExitCode> {
    Ok(ExitCode::Success)
}
