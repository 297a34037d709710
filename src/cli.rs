//! Command-line interface (clap derive) and the thin dispatch from each
//! subcommand to one library call. Subcommands parse, load the config, call the
//! library, and print a summary; they hold no pipeline logic.
//!
//! Every clap type lives in this module and its children; the libraries take
//! plain option structs, which the `*Args` types here convert to:
//!
//! - [`insight`]: `preview`, `fields`, `plan`.
//! - [`replay`]: the `replay` command.
//! - [`mod@bench`] (feature `sim`): `bench transform|load|e2e`.
//! - [`simulate`] (feature `sim`): `simulate`.

#[cfg(feature = "sim")]
pub mod bench;
pub mod insight;
pub mod replay;
#[cfg(feature = "sim")]
pub mod simulate;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand, ValueEnum};

use jira_pipeline_core::config::{self, Config};
use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::pipeline::{self, RunOptions};
use jira_pipeline_core::session::{Report, Session};
use jira_pipeline_core::{db, extract, load, report, staging, status, transform};

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  unexpected error (I/O, database, bug)
  2  usage or configuration error
  3  Jira, authentication or connectivity error
  4  finished, but some items were quarantined (see `pipeline status`)
  5  another run holds the lock";

/// Copies Jira Data Center issues into a PostgreSQL reporting schema.
#[derive(Debug, Parser)]
#[command(name = "pipeline", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        default_value = "pipeline.toml",
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// More log output (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q warnings only, -qq errors only).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for jira_pipeline_core::logging::LogFormat {
    fn from(f: LogFormat) -> Self {
        match f {
            LogFormat::Text => Self::Text,
            LogFormat::Json => Self::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
    /// Configuration checks.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Per scope: checkpoint, last run, pages waiting per stage, quarantined items, archive size.
    Status(StatusArgs),
    /// Staging area maintenance: disk use and archive pruning.
    #[command(subcommand)]
    Staging(StagingCommand),
    /// Run the pipeline, or one stage of it, over the configured scopes.
    Run(RunArgs),
    /// The everyday incremental job: `run --stage all` from each scope's checkpoint
    /// (a scope without one is backfilled).
    Sync(SyncArgs),
    /// Full copy: `run --stage all --full` (re-reads every issue from sync.backfill_start).
    Backfill(SyncArgs),
    /// Census: list every issue of each scope and mark what Jira deleted or
    /// no scope matches any more (also run by sync every sync.reconcile_every_hours).
    Reconcile(ReconcileArgs),
    /// Benchmarks.
    #[cfg(feature = "sim")]
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Quick start: simulator → full pipeline → fresh schema `jira_demo` of DATABASE_URL, then a summary.
    #[cfg(feature = "sim")]
    Demo(crate::demo::DemoArgs),
    /// Re-feed archived pages through transform: print their rows (--dry-run) or load them again.
    Replay(replay::ReplayArgs),
    /// Serve a simulated Jira Data Center on 127.0.0.1 (no config or database needed).
    #[cfg(feature = "sim")]
    Simulate(simulate::SimulateArgs),
    /// Show live issues of a JQL query (table, JSON or CSV); writes nothing.
    Preview(insight::PreviewArgs),
    /// List Jira's field catalogue (ids, names, types); writes nothing.
    Fields(insight::FieldsArgs),
    /// Show what the next run will send, match, slice and cost; writes nothing.
    Plan(insight::PlanArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum StagingCommand {
    /// Disk use of each part of the staging area.
    Usage {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Prune the archive by age and size (defaults from [staging] in the config).
    Gc {
        /// Remove archived pages older than this many days (0 keeps all).
        #[arg(long)]
        max_age_days: Option<u32>,
        /// Then remove the oldest until the archive fits in this many MiB (0 = no limit).
        #[arg(long)]
        max_mib: Option<u64>,
    },
}

/// Which stage(s) `run` executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Jira → staged pages.
    Extract,
    /// Staged pages → table batches.
    Transform,
    /// Table batches → PostgreSQL.
    Load,
    /// All three, connected by bounded channels.
    All,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The stage to run; `all` runs extract, transform and load together.
    #[arg(long, value_enum, default_value_t = Stage::All)]
    pub stage: Stage,
    /// Only this scope (repeatable); default: every configured scope.
    #[arg(long = "scope", value_name = "NAME")]
    pub scopes: Vec<String>,
    /// Extract: backfill from sync.backfill_start even where a checkpoint exists.
    #[arg(long)]
    pub full: bool,
    /// Write run metrics as OpenMetrics text to this file (rewritten every 5 s and at the end).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this scope (repeatable); default: every configured scope.
    #[arg(long = "scope", value_name = "NAME")]
    pub scopes: Vec<String>,
    /// Write run metrics as OpenMetrics text to this file (rewritten every 5 s and at the end).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Only this scope (repeatable); default: every configured scope.
    #[arg(long = "scope", value_name = "NAME")]
    pub scopes: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create or migrate the warehouse schema (idempotent).
    Init(DbInitArgs),
}

#[derive(Debug, Args)]
pub struct DbInitArgs {
    /// Schema to create instead of the configured one.
    #[arg(long)]
    pub schema: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; print the effective settings with
    /// secrets masked; check every scope's project, issue types and fields
    /// against the Jira server.
    Check {
        /// Skip the checks against the Jira server.
        #[arg(long)]
        offline: bool,
    },
}

/// Runs the parsed command; returns the exit code for success-like outcomes.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    let quiet = cli.quiet > 0;
    let config = cli.config.as_path();
    match cli.command {
        Command::Db(DbCommand::Init(args)) => db_init(config, args),
        Command::Status(args) => status_cmd(config, args),
        Command::Staging(cmd) => staging_cmd(config, cmd),
        Command::Sync(a) => {
            let opts = a.options("sync", false, quiet);
            print_report(pipeline::run(&open(config, Signals::Stop)?, &opts)?)
        }
        Command::Backfill(a) => {
            let opts = a.options("backfill", true, quiet);
            print_report(pipeline::run(&open(config, Signals::Stop)?, &opts)?)
        }
        Command::Reconcile(a) => {
            let opts = RunOptions {
                scopes: a.scopes,
                command: "reconcile".into(),
                quiet,
                ..Default::default()
            };
            let session = open(config, Signals::Stop)?;
            print_report(jira_pipeline_core::census::run(&session, &opts)?)
        }
        Command::Run(args) => {
            let session = open(config, Signals::Stop)?;
            let opts = args.options("run", quiet);
            match args.stage {
                Stage::Extract => print_report(extract::run(&session, &opts)?),
                Stage::Transform => print_report(transform::run(&session, &opts)?),
                Stage::Load => print_report(load::run(&session, &opts)?),
                Stage::All => print_report(pipeline::run(&session, &opts)?),
            }
        }
        #[cfg(feature = "sim")]
        Command::Bench(cmd) => bench::exec(config, cmd),
        Command::Replay(args) => {
            jira_pipeline_core::replay::exec(&open(config, Signals::Stop)?, &args.options())
        }
        #[cfg(feature = "sim")]
        Command::Demo(args) => crate::demo::exec(&args, quiet),
        #[cfg(feature = "sim")]
        Command::Simulate(args) => simulate::exec(&args),
        Command::Preview(args) => jira_pipeline_core::insight::preview::exec(
            &open(config, Signals::Default)?,
            &args.options(),
        ),
        Command::Fields(args) => jira_pipeline_core::insight::fields::exec(
            &open(config, Signals::Default)?,
            &args.options(),
        ),
        Command::Plan(args) => jira_pipeline_core::insight::plan::exec(
            &open(config, Signals::Default)?,
            &args.options(),
        ),
        Command::Config(ConfigCommand::Check { offline }) => {
            let cfg = Config::load(config)?;
            print!("{}", report::effective_config(&cfg));
            if !offline {
                let session = open(config, Signals::Stop)?;
                jira_pipeline_core::insight::check::run(&session)?;
                println!("scopes: every project, issue type and field exists on the Jira server");
            }
            Ok(ExitCode::Success)
        }
    }
}

/// `pipeline db init [--schema S]`.
fn db_init(config: &Path, args: DbInitArgs) -> Result<ExitCode> {
    let cfg = Config::load(config)?;
    let schema = match args.schema {
        Some(s) => {
            if !config::is_valid_schema_name(&s) {
                return Err(Error::Config(format!(
                    "--schema {s:?} is not a valid schema name; use lower-case letters, digits and _"
                )));
            }
            s
        }
        None => cfg.database.schema.clone(),
    };
    let url = config::database_url()?;
    let mut client = db::connect(&url, &cfg.database)?;
    let r = db::init(&mut client, &schema)?;
    if r.applied.is_empty() {
        println!(
            "schema {:?} is up to date at version {}",
            r.schema, r.to_version
        );
    } else {
        println!(
            "schema {:?} migrated from version {} to {} ({})",
            r.schema,
            r.from_version,
            r.to_version,
            r.applied.join(", ")
        );
    }
    Ok(ExitCode::Success)
}

/// `pipeline status`: works without a database too (then says why).
fn status_cmd(config: &Path, args: StatusArgs) -> Result<ExitCode> {
    let cfg = Config::load(config)?;
    let (mut client, db_error) =
        match config::database_url().and_then(|url| db::connect(&url, &cfg.database)) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e.one_line())),
        };
    let s = status::status(&cfg, client.as_mut(), db_error)?;
    match args.format {
        OutputFormat::Text => print!("{}", status::render_text(&s)),
        OutputFormat::Json => println!("{}", to_json(&s)?),
    }
    Ok(ExitCode::Success)
}

/// `pipeline staging usage|gc`.
fn staging_cmd(config: &Path, cmd: StagingCommand) -> Result<ExitCode> {
    let cfg = Config::load(config)?;
    let st = staging::Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
    match cmd {
        StagingCommand::Usage { format } => {
            let u = status::usage(&st);
            match format {
                OutputFormat::Text => {
                    for (part, bytes) in &u.parts {
                        println!("{part:<11} {}", status::human_bytes(*bytes));
                    }
                    println!("{:<11} {}", "total", status::human_bytes(u.total));
                }
                OutputFormat::Json => println!("{}", to_json(&u)?),
            }
        }
        StagingCommand::Gc {
            max_age_days,
            max_mib,
        } => {
            let days = max_age_days.unwrap_or(cfg.staging.archive_max_age_days);
            let mib = max_mib.unwrap_or(cfg.staging.archive_max_mib);
            let r = status::gc(
                &st,
                (days > 0).then(|| std::time::Duration::from_secs(u64::from(days) * 86400)),
                (mib > 0).then_some(mib * 1024 * 1024),
                std::time::SystemTime::now(),
            )?;
            println!(
                "removed {} files ({}), kept {} files ({})",
                r.removed_files,
                status::human_bytes(r.removed_bytes),
                r.kept_files,
                status::human_bytes(r.kept_bytes)
            );
        }
    }
    Ok(ExitCode::Success)
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))
}

/// What Ctrl-C does during a command.
enum Signals {
    /// The first Ctrl-C (or SIGTERM) asks the stages to stop and leave a
    /// consistent state; a second one exits at once (commands that write).
    Stop,
    /// The default: Ctrl-C ends the process (read-only commands).
    Default,
}

/// The command's one session: the checked configuration, and the stop flag.
fn open(config: &Path, signals: Signals) -> Result<Session> {
    let cfg = Config::load(config)?;
    let stop = match signals {
        Signals::Stop => jira_pipeline_core::shutdown::install()?,
        Signals::Default => jira_pipeline_core::shutdown::Stop::new(),
    };
    Ok(Session::new(cfg, stop))
}

/// Prints a stage's report; its exit code is the command's.
fn print_report(r: impl Report) -> Result<ExitCode> {
    let text = r.to_string();
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(r.exit_code())
}

impl SyncArgs {
    /// `sync` and `backfill`: `run --stage all`, incremental or full.
    fn options(&self, command: &str, full: bool, quiet: bool) -> RunOptions {
        RunOptions {
            scopes: self.scopes.clone(),
            full,
            metrics_file: self.metrics_file.clone(),
            quiet,
            command: command.to_string(),
            ..Default::default()
        }
    }
}

impl RunArgs {
    /// The library's options for `run` (every stage reads what it needs).
    fn options(&self, command: &str, quiet: bool) -> RunOptions {
        RunOptions {
            scopes: self.scopes.clone(),
            full: self.full,
            metrics_file: self.metrics_file.clone(),
            quiet,
            command: command.to_string(),
            ..Default::default()
        }
    }
}
