//! `pipeline simulate`: flags, their check and mapping to a
//! [`jira_sim::SimConfig`], and serving until Ctrl-C (feature `sim`).

use clap::Args;

use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_sim::{FaultConfig, FaultScope, SimConfig, Simulator, catalog};

/// The simulator's start-up errors as the pipeline's (same exit codes:
/// settings → usage error, anything else → unexpected).
pub fn sim_error(e: jira_sim::Error) -> Error {
    match e {
        jira_sim::Error::Config(m) => Error::Config(m),
        jira_sim::Error::Other(m) => Error::Other(m),
    }
}

/// `pipeline simulate`: serve a simulated Jira DC until Ctrl-C.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Number of issues.
    #[arg(long, default_value_t = 1000)]
    pub issues: u32,
    /// Number of projects (DEMO, ALPHA, BETA, …) or a comma-separated list of keys.
    #[arg(long, default_value = "3")]
    pub projects: String,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The user's time zone (`/myself`), used to read JQL dates.
    #[arg(long, default_value = "America/New_York")]
    pub tz: String,
    /// Zone timestamps are rendered in (default: --tz).
    #[arg(long)]
    pub server_tz: Option<String>,
    /// maxResults cap.
    #[arg(long, default_value_t = 100)]
    pub cap: u32,
    /// Fixed latency per search response, milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The personal access token to accept (Authorization: Bearer …).
    #[arg(long, default_value = "sim-token")]
    pub token: String,
    /// Probability of HTTP 429 per search request.
    #[arg(long, default_value_t = 0.0)]
    pub rate_429: f64,
    /// Probability of HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    pub rate_500: f64,
    /// Probability of HTTP 502 (JSON body).
    #[arg(long, default_value_t = 0.0)]
    pub rate_502: f64,
    /// Probability of HTTP 503.
    #[arg(long, default_value_t = 0.0)]
    pub rate_503: f64,
    /// Probability of an HTML 502 page.
    #[arg(long, default_value_t = 0.0)]
    pub rate_html_502: f64,
    /// Probability of a connection reset mid-body.
    #[arg(long, default_value_t = 0.0)]
    pub rate_reset: f64,
    /// Probability of a truncated body with status 200.
    #[arg(long, default_value_t = 0.0)]
    pub rate_truncate: f64,
    /// Probability of a slow first byte.
    #[arg(long, default_value_t = 0.0)]
    pub rate_slow: f64,
    /// Delay of a slow first byte, milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub slow_ms: u64,
    /// Retry-After of a 429, seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after: u64,
    /// Seed of the fault draws.
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Apply faults to every endpoint, not only search.
    #[arg(long)]
    pub faults_everywhere: bool,
    /// Failed logins before the CAPTCHA challenge.
    #[arg(long, default_value_t = 3)]
    pub captcha_after: u32,
    /// Search index lag behind changes, milliseconds (changes made through
    /// /_sim/ reach JQL this much later).
    #[arg(long, default_value_t = 0)]
    pub index_lag_ms: u64,
}

impl SimulateArgs {
    /// The simulator settings these flags describe.
    pub fn to_config(&self) -> Result<SimConfig> {
        let projects: Vec<String> = match self.projects.trim().parse::<usize>() {
            Ok(0) => return Err(Error::Config("--projects must be at least 1".into())),
            Ok(n) => catalog::project_keys(n),
            Err(_) => self
                .projects
                .split(',')
                .map(|k| k.trim().to_ascii_uppercase())
                .filter(|k| !k.is_empty())
                .collect(),
        };
        if projects.is_empty()
            || projects
                .iter()
                .any(|k| !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(Error::Config(format!(
                "--projects {:?}: give a count or comma-separated keys like DEMO,ALPHA",
                self.projects
            )));
        }
        for (name, r) in [
            ("--rate-429", self.rate_429),
            ("--rate-500", self.rate_500),
            ("--rate-502", self.rate_502),
            ("--rate-503", self.rate_503),
            ("--rate-html-502", self.rate_html_502),
            ("--rate-reset", self.rate_reset),
            ("--rate-truncate", self.rate_truncate),
            ("--rate-slow", self.rate_slow),
        ] {
            if !(0.0..=1.0).contains(&r) {
                return Err(Error::Config(format!("{name} {r} must be between 0 and 1")));
            }
        }
        Ok(SimConfig {
            issues: self.issues,
            projects,
            seed: self.seed,
            time_zone: self.tz.clone(),
            server_time_zone: self.server_tz.clone(),
            max_results: self.cap,
            token: self.token.clone(),
            latency_ms: self.latency_ms,
            port: self.port,
            faults: FaultConfig {
                seed: self.fault_seed,
                rate_429: self.rate_429,
                rate_500: self.rate_500,
                rate_502: self.rate_502,
                rate_503: self.rate_503,
                rate_html_502: self.rate_html_502,
                rate_reset: self.rate_reset,
                rate_truncate: self.rate_truncate,
                rate_close: 0.0,
                rate_slow: self.rate_slow,
                slow_ms: self.slow_ms,
                retry_after_secs: self.retry_after,
                scope: if self.faults_everywhere {
                    FaultScope::All
                } else {
                    FaultScope::Search
                },
            },
            captcha_after: self.captcha_after,
            ..SimConfig::default()
        })
    }
}

/// Runs `pipeline simulate`: prints the URL and token, serves until Ctrl-C.
pub fn exec(args: &SimulateArgs) -> Result<ExitCode> {
    let cfg = args.to_config()?;
    let (issues, projects) = (cfg.issues, cfg.projects.join(", "));
    let handle = Simulator::start(cfg).map_err(sim_error)?;
    if args.index_lag_ms > 0 {
        handle.set_index_lag_ms(args.index_lag_ms);
    }
    println!("Jira DC simulator listening on {}", handle.url());
    println!("  {issues} issues in projects {projects}");
    println!(
        "  use: JIRA_PAT={} and base_url = \"{}\"",
        handle.token(),
        handle.url()
    );
    println!("Press Ctrl-C to stop.");
    jira_sim::wait_for_ctrl_c().map_err(sim_error)?;
    let st = handle.stats();
    drop(handle);
    println!(
        "stopped after {} requests ({} bytes of bodies sent)",
        st.requests, st.bytes_sent
    );
    Ok(ExitCode::Success)
}
