//! Flags of `preview`, `fields` and `plan`, and their mapping to
//! [`jira_pipeline_core::insight`]'s options.

use clap::{Args, ValueEnum};

use jira_pipeline_core::insight::fields::FieldsOptions;
use jira_pipeline_core::insight::plan::PlanOptions;
use jira_pipeline_core::insight::preview::PreviewOptions;
use jira_pipeline_core::insight::{self, plan};

/// Output format of `preview` and `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table that fits the terminal width (`COLUMNS`, else the
    /// terminal's size, else 120 columns); long values end in `…`.
    Table,
    /// One JSON document (for `jq`).
    Json,
    /// RFC 4180 CSV with a header row.
    Csv,
}

impl From<Format> for insight::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => Self::Table,
            Format::Json => Self::Json,
            Format::Csv => Self::Csv,
        }
    }
}

/// `pipeline preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The JQL query, sent to Jira as written.
    #[arg(long)]
    pub jql: String,
    /// Fields to show, by id or name, comma-separated (`summary,Story Points,customfield_10103`);
    /// default: issuetype,status,assignee,updated,summary.
    #[arg(long, value_delimiter = ',', value_name = "A,B,C")]
    pub fields: Vec<String>,
    /// How many issues to show (1..=1000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl PreviewArgs {
    pub fn options(&self) -> PreviewOptions {
        PreviewOptions {
            jql: self.jql.clone(),
            fields: self.fields.clone(),
            limit: self.limit,
            format: self.format.into(),
        }
    }
}

/// `pipeline fields`.
#[derive(Debug, Args)]
pub struct FieldsArgs {
    /// Only custom fields.
    #[arg(long, conflicts_with = "system")]
    pub custom: bool,
    /// Only system fields.
    #[arg(long)]
    pub system: bool,
    /// Only fields whose id or name contains TEXT (case-insensitive).
    #[arg(long = "match", value_name = "TEXT")]
    pub pattern: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl FieldsArgs {
    pub fn options(&self) -> FieldsOptions {
        FieldsOptions {
            custom: self.custom,
            system: self.system,
            pattern: self.pattern.clone(),
            format: self.format.into(),
        }
    }
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

impl From<PlanFormat> for plan::PlanFormat {
    fn from(f: PlanFormat) -> Self {
        match f {
            PlanFormat::Text => Self::Text,
            PlanFormat::Json => Self::Json,
        }
    }
}

/// `pipeline plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this scope (repeatable); default: every configured scope.
    #[arg(long = "scope", value_name = "NAME")]
    pub scopes: Vec<String>,
    /// Plan a backfill from sync.backfill_start even where a checkpoint exists (as `run --full`).
    #[arg(long)]
    pub full: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

impl PlanArgs {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            scopes: self.scopes.clone(),
            full: self.full,
            format: self.format.into(),
        }
    }
}
