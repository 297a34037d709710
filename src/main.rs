//! `pipeline`: parse the command line, set up logging, run, map errors to exit codes.

mod cli;
#[cfg(feature = "sim")]
mod demo;

use clap::Parser;

use cli::Cli;
use jira_pipeline_core::error::ExitCode;

/// glibc gives every thread that allocates its own malloc arena (up to 8 per
/// core); with tokio, rayon and blocking threads all handling page-sized
/// buffers, the arenas fragment and the resident set grows with the amount of
/// data a run moves (measured at 300k issues: 185 MB with the default arenas,
/// 144 MB with two, the same as at 100k), at no measurable cost in speed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt is called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let env_warning = match jira_pipeline_core::config::load_dotenv() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            return std::process::ExitCode::from(e.exit_code() as u8);
        }
    };
    let verbosity = cli.verbose as i8 - cli.quiet as i8;
    jira_pipeline_core::logging::init(cli.log_format.into(), verbosity);
    if let Some(w) = env_warning {
        jira_pipeline_core::logging::warn(&w);
    }
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
