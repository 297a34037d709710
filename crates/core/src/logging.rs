//! Logging: `tracing` to stderr as text or JSON, level from `-v`/`-q`
//! (or `RUST_LOG`). Nothing logged ever carries a secret: secrets are
//! [`crate::config::Secret`]s, whose `Debug`/`Display` print `***`.

use tracing_subscriber::EnvFilter;

/// Log format on stderr (the binary maps its `--log-format` flag to this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber. `verbosity`: -2 errors … 0 info … 2 trace.
pub fn init(format: LogFormat, verbosity: i8) {
    let level = match verbosity {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // Our crates (`jira_pipeline*`, `jira_sim`, the `pipeline` binary) at the chosen level; dependencies one step quieter unless tracing.
    let default = if verbosity >= 2 {
        "trace".to_string()
    } else {
        format!("warn,jira_pipeline={level},jira_sim={level},pipeline={level}")
    };
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Logs a warning found before logging started (e.g. about `.env`).
pub fn warn(msg: &str) {
    tracing::warn!("{msg}");
}
