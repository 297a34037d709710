//! Command-line interface (clap derive) and the thin dispatch from each
//! subcommand to one library call. Subcommands parse, load the config, call the
//! library, and print a summary; they hold no pipeline logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{self, Config};
use crate::error::{ExitCode, Result};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Database administration.
    #[command(subcommand)]
    Db(DbCommand),
    /// Configuration checks.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the pipeline, or one stage of it, over the configured scopes.
    Run(RunArgs),
    /// Serve a simulated Jira Data Center on 127.0.0.1 (no config or database needed).
    Simulate(crate::sim::SimulateArgs),
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
    /// Load and validate the configuration; print the effective settings with secrets masked.
    Check,
}

/// Runs the parsed command; returns the exit code for success-like outcomes.
pub fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Db(DbCommand::Init(args)) => {
            let cfg = Config::load(&cli.config)?;
            let schema = match args.schema {
                Some(s) => {
                    if !config::is_valid_schema_name(&s) {
                        return Err(crate::error::Error::Config(format!(
                            "--schema {s:?} is not a valid schema name; use lower-case letters, digits and _"
                        )));
                    }
                    s
                }
                None => cfg.database.schema.clone(),
            };
            let url = config::database_url()?;
            let mut client = crate::db::connect(&url, &cfg.database)?;
            let r = crate::db::init(&mut client, &schema)?;
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
        Command::Run(args) => {
            let cfg = Config::load(&cli.config)?;
            match args.stage {
                Stage::Extract => crate::extract::run_stage(&cfg, &args.scopes, args.full),
                other => Err(crate::error::Error::Config(format!(
                    "stage {} is not available yet",
                    other
                        .to_possible_value()
                        .map(|v| v.get_name().to_string())
                        .unwrap_or_default()
                ))),
            }
        }
        Command::Simulate(args) => crate::sim::exec(&args),
        Command::Config(ConfigCommand::Check) => {
            let cfg = Config::load(&cli.config)?;
            print!("{}", crate::report::effective_config(&cfg));
            Ok(ExitCode::Success)
        }
    }
}
