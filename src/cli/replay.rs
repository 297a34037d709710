//! Flags of `replay`, and their mapping to [`jira_pipeline_core::replay`]'s options.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use jira_pipeline_core::replay::{self, ReplayOptions};

/// Output format of `replay --dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplayFormat {
    Table,
    Ndjson,
}

impl From<ReplayFormat> for replay::ReplayFormat {
    fn from(f: ReplayFormat) -> Self {
        match f {
            ReplayFormat::Table => Self::Table,
            ReplayFormat::Ndjson => Self::Ndjson,
        }
    }
}

/// `pipeline replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Replay this one page file (e.g. staging/archive/<scope>/<page>.ndjson.zst).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scopes", "since", "until"])]
    pub page: Option<PathBuf>,
    /// Replay the archived pages of this scope (repeatable); default: every scope.
    #[arg(long = "scope", value_name = "NAME")]
    pub scopes: Vec<String>,
    /// Only pages fetched at or after this instant (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only pages fetched before this instant (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Print the rows the pages produce instead of loading them.
    #[arg(long)]
    pub dry_run: bool,
    /// `--dry-run` output format.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Table)]
    pub format: ReplayFormat,
    /// `--dry-run`: only this warehouse table.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
}

impl ReplayArgs {
    pub fn options(&self) -> ReplayOptions {
        ReplayOptions {
            page: self.page.clone(),
            scopes: self.scopes.clone(),
            since: self.since.clone(),
            until: self.until.clone(),
            dry_run: self.dry_run,
            format: self.format.into(),
            table: self.table.clone(),
        }
    }
}
