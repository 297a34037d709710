//! `pipeline bench e2e`: N simulated issues with changelogs from the built-in
//! simulator to PostgreSQL with `run --stage all`, then the same data with each
//! stage run alone, in the same process. Prints issues/s, the wall time, each
//! stage's busy time, the ratio of the end-to-end time to the slowest stage
//! alone (the stages overlap when it is near 1), and the peak RSS.

use std::time::Instant;

use jira_pipeline_core::config::{RawConfig, Secret};
use jira_pipeline_core::db::Ident;
use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::pipeline::{self, RunOptions};
use jira_pipeline_core::session::Session;
use jira_pipeline_core::shutdown::Stop;
use jira_sim::{SimConfig, Simulator};

/// `pipeline bench e2e` options.
#[derive(Debug, Clone)]
pub struct BenchE2eOptions {
    /// Issues in the simulated instance (all in one scope).
    pub issues: u32,
    /// Search page size (the simulator's cap is set to it).
    pub page_size: u32,
    /// Skip the stages-alone comparison (only the end-to-end run).
    pub e2e_only: bool,
}

/// Peak resident set size of this process, in bytes (Linux `VmHWM`).
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The benchmarks' configuration: one scope `bench` over project DEMO; no
/// automatic census (`bench census` runs its own).
pub(crate) fn bench_config(
    url: &str,
    schema: &str,
    staging: &std::path::Path,
    page_size: u32,
) -> Result<jira_pipeline_core::config::Config> {
    let text = format!(
        "[jira]\nbase_url = \"{url}\"\npage_size = {page_size}\nconcurrency = 8\n\
         [sync]\nreconcile_every_hours = 0\n\
         [staging]\ndir = {:?}\n[database]\nschema = \"{schema}\"\n\
         [[scope]]\nname = \"bench\"\nproject = \"DEMO\"\n",
        staging.display().to_string()
    );
    let p = std::path::Path::new("(bench configuration)");
    RawConfig::parse(&text, p)?.validate(p)
}

pub fn exec(args: &BenchE2eOptions) -> Result<ExitCode> {
    let db_url = jira_pipeline_core::config::database_url()?;
    let mut sim_cfg = SimConfig::default()
        .issues(args.issues)
        .project_keys(&["DEMO"])
        .max_results(args.page_size)
        .port(0);
    // The simulator shares this process: keep its response cache small so the
    // peak RSS printed below is (almost) the pipeline's own.
    sim_cfg.cache_mib = 8;
    let sim = Simulator::start(sim_cfg).map_err(crate::sim_error)?;
    let token = Secret::new(sim.token());
    let pid = std::process::id();
    let schemas = [format!("bench_e2e_{pid}_a"), format!("bench_e2e_{pid}_b")];
    let dirs = [
        tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?,
        tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?,
    ];
    let cfg_a = bench_config(sim.url(), &schemas[0], dirs[0].path(), args.page_size)?;
    let cfg_b = bench_config(sim.url(), &schemas[1], dirs[1].path(), args.page_size)?;
    let mut admin = jira_pipeline_core::db::connect(&db_url, &cfg_a.database)?;
    for s in &schemas {
        admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", Ident::new(s)))
            .map_err(Error::db("bench: dropping an old schema"))?;
        jira_pipeline_core::db::init(&mut admin, s)?;
    }
    println!(
        "bench e2e: {} issues with changelogs, page size {}, {} cores, simulator at {}",
        args.issues,
        args.page_size,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        sim.url()
    );

    let stop = Stop::new();
    let opts = RunOptions {
        command: "bench e2e".into(),
        quiet: true,
        ..Default::default()
    };
    let t0 = Instant::now();
    let session_a = Session::new(cfg_a, stop.clone())
        .with_jira_token(token.clone())
        .with_database_url(db_url.clone());
    let summary = pipeline::run(&session_a, &opts)?;
    let e2e = t0.elapsed().as_secs_f64();
    print_e2e(&summary, e2e);
    let rss_e2e = peak_rss_bytes();
    if let Some(r) = rss_e2e {
        println!(
            "  peak RSS after the end-to-end run: {:.0} MB",
            r as f64 / 1e6
        );
    }

    let mut code = summary.exit_code();
    let session_b = Session::new(cfg_b, stop.clone())
        .with_jira_token(token.clone())
        .with_database_url(db_url.clone());
    if !args.e2e_only && stages_alone(&session_b, &token, &opts, e2e)? {
        code = ExitCode::Quarantined;
    }
    for s in &schemas {
        let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", Ident::new(s)));
    }
    Ok(code)
}

/// Runs each stage alone on `cfg` and prints their times against the
/// end-to-end time `e2e`; true if anything was quarantined.
fn stages_alone(session: &Session, token: &Secret, opts: &RunOptions, e2e: f64) -> Result<bool> {
    let t = Instant::now();
    let ex = jira_pipeline_core::extract::extract_blocking(
        session,
        token,
        &Default::default(),
        jira_pipeline_core::extract::ExtractOptions {
            display: jira_pipeline_core::progress::Display::Off,
            ..Default::default()
        },
    )?;
    let t_ex = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let tr = jira_pipeline_core::transform::run_stage(session.config(), &[], 0)?;
    let t_tr = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ld = jira_pipeline_core::load::run(session, opts)?;
    let t_ld = t.elapsed().as_secs_f64();
    let slowest = t_ex.max(t_tr).max(t_ld);
    println!(
        "stages alone: extract {t_ex:.2} s ({} requests), transform {t_tr:.2} s ({} pages), load {t_ld:.2} s ({} pages); sum {:.2} s",
        ex.requests,
        tr.pages_transformed,
        ld.totals.pages_loaded,
        t_ex + t_tr + t_ld
    );
    println!(
        "ratio end-to-end / slowest stage alone: {:.2} (target ≤ 1.3); end-to-end / sum of stages: {:.2}",
        e2e / slowest,
        e2e / (t_ex + t_tr + t_ld)
    );
    Ok(ld.totals.quarantined > 0 || tr.pages_quarantined > 0)
}

/// The end-to-end line and the stages' busy times.
fn print_e2e(summary: &jira_pipeline_core::pipeline::RunSummary, e2e: f64) {
    let issues = summary.load.issues.max(1);
    println!(
        "end to end   {e2e:>8.2} s  {:>9.0} issues/s  ({} issues, {} rows, {:.1} MB of JSON)",
        issues as f64 / e2e,
        issues,
        summary.load.rows,
        summary.transform.bytes as f64 / 1e6
    );
    println!(
        "  busy: extract {:.2} s, transform {:.2} s, load {:.2} s",
        summary.extract.busy_secs, summary.transform.busy_secs, summary.load.busy_secs
    );
}
