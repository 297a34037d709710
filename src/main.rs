//! `pipeline`: parse the command line, set up logging, run, map errors to exit codes.

use clap::Parser;

use jira_pipeline::cli::{self, Cli};
use jira_pipeline::error::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Err(e) = jira_pipeline::config::load_dotenv() {
        eprintln!("error: {}", e.one_line());
        return std::process::ExitCode::from(e.exit_code() as u8);
    }
    let verbosity = cli.verbose as i8 - cli.quiet as i8;
    jira_pipeline::logging::init(cli.log_format, verbosity);
    match cli::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            let code = e.exit_code();
            debug_assert_ne!(code, ExitCode::Success);
            std::process::ExitCode::from(code as u8)
        }
    }
}
