//! `pipeline bench …`: flags, and their mapping to the options of the
//! `jira-pipeline-bench` crate (feature `sim`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use jira_pipeline_bench::e2e::BenchE2eOptions;
use jira_pipeline_bench::load::BenchLoadOptions;
use jira_pipeline_bench::transform::BenchTransformOptions;
use jira_pipeline_core::error::{ExitCode, Result};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Transform throughput vs a bare simd-json parse of the same bytes.
    Transform(BenchTransformArgs),
    /// Load throughput: merge vs plain COPY vs row-by-row upsert.
    Load(BenchLoadArgs),
    /// Simulator → PostgreSQL with `run --stage all`, vs each stage alone on the same data.
    E2e(BenchE2eArgs),
    /// The census (`pipeline reconcile`) of N simulated issues: marking, then nothing to mark.
    Census(BenchCensusArgs),
}

/// Runs one benchmark; `config` is only read by `bench load` (when it exists).
pub fn exec(config: &Path, cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Transform(a) => jira_pipeline_bench::transform::exec(&a.options()),
        BenchCommand::Load(a) => jira_pipeline_bench::load::exec(config, &a.options()),
        BenchCommand::E2e(a) => jira_pipeline_bench::e2e::exec(&a.options()),
        BenchCommand::Census(a) => {
            jira_pipeline_bench::census::exec(&jira_pipeline_bench::census::BenchCensusOptions {
                issues: a.issues,
            })
        }
    }
}

/// `pipeline bench transform` options.
#[derive(Debug, Args, Clone)]
pub struct BenchTransformArgs {
    /// Directory of input: staged page files (`*.ndjson.zst`), raw search
    /// responses or single-issue responses (`*.json`), searched recursively; a
    /// `/rest/api/2/field` array found there is used as the field catalogue.
    #[arg(long, value_name = "DIR", conflicts_with = "issues")]
    pub pages: Option<PathBuf>,
    /// Generate this many simulator-shaped issues (100 per page) instead.
    #[arg(long, value_name = "N")]
    pub issues: Option<usize>,
    /// Threads for the "all cores" measurement (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Instead of the in-memory comparison: stage the generated pages in a
    /// temporary staging area and run the whole stage as `run --stage
    /// transform` does (read, zstd, transform, write batches); prints the
    /// end-to-end rate and the process's peak memory.
    #[arg(long, conflicts_with = "pages")]
    pub staged: bool,
    /// Seconds per measurement round (each figure is the best of 3 rounds).
    #[arg(long, default_value_t = 1.0, value_name = "SECS")]
    pub seconds: f64,
}

impl BenchTransformArgs {
    fn options(&self) -> BenchTransformOptions {
        BenchTransformOptions {
            pages: self.pages.clone(),
            issues: self.issues,
            threads: self.threads,
            staged: self.staged,
            seconds: self.seconds,
        }
    }
}

/// `pipeline bench load` arguments.
#[derive(Debug, Clone, Args)]
pub struct BenchLoadArgs {
    /// Simulated issues to load.
    #[arg(long, default_value_t = 20_000)]
    pub issues: u64,
    /// Issues in the row-by-row upsert baseline sample (its rate is extrapolated).
    #[arg(long, default_value_t = 1_000)]
    pub baseline_issues: u64,
    /// Schema to create for the run (default: a fresh random one, dropped afterwards).
    #[arg(long)]
    pub schema: Option<String>,
    /// Keep the bench schema instead of dropping it.
    #[arg(long)]
    pub keep: bool,
}

impl BenchLoadArgs {
    fn options(&self) -> BenchLoadOptions {
        BenchLoadOptions {
            issues: self.issues,
            baseline_issues: self.baseline_issues,
            schema: self.schema.clone(),
            keep: self.keep,
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchE2eArgs {
    /// Issues in the simulated instance (all in one scope).
    #[arg(long, default_value_t = 100_000)]
    pub issues: u32,
    /// Search page size (the simulator's cap is set to it).
    #[arg(long, default_value_t = 100)]
    pub page_size: u32,
    /// Skip the stages-alone comparison (only the end-to-end run).
    #[arg(long)]
    pub e2e_only: bool,
}

impl BenchE2eArgs {
    fn options(&self) -> BenchE2eOptions {
        BenchE2eOptions {
            issues: self.issues,
            page_size: self.page_size,
            e2e_only: self.e2e_only,
        }
    }
}

/// `pipeline bench census` options.
#[derive(Debug, Args, Clone)]
pub struct BenchCensusArgs {
    /// Issues in the simulated instance (all in one scope).
    #[arg(long, default_value_t = 1_000_000)]
    pub issues: u32,
}
