//! `pipeline bench census`: the census of one scope of N simulated issues
//! (the simulator's page cap at 1000, as Jira's default), against a
//! warehouse that holds every one of them, after one in a thousand was
//! deleted in the simulator; then the same census again with nothing left
//! to mark. Prints seconds, requests and ids per second of each, and the
//! ratio of the second census to the first (the lookups' share).

use std::time::Instant;

use jira_pipeline_core::config::Secret;
use jira_pipeline_core::db::Ident;
use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::session::{Report, RunOptions, Session};
use jira_pipeline_core::shutdown::Stop;
use jira_sim::{SimConfig, Simulator};

/// `pipeline bench census` options.
#[derive(Debug, Clone)]
pub struct BenchCensusOptions {
    /// Issues in the simulated instance (all in one scope).
    pub issues: u32,
}

pub fn exec(args: &BenchCensusOptions) -> Result<ExitCode> {
    let db_url = jira_pipeline_core::config::database_url()?;
    let mut sim_cfg = SimConfig::default()
        .issues(args.issues)
        .project_keys(&["DEMO"])
        .max_results(1000)
        .port(0);
    sim_cfg.cache_mib = 8;
    let sim = Simulator::start(sim_cfg).map_err(crate::sim_error)?;
    let schema = format!("bench_census_{}", std::process::id());
    let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let cfg = crate::e2e::bench_config(sim.url(), &schema, dir.path(), 100)?;
    let mut admin = jira_pipeline_core::db::connect(&db_url, &cfg.database)?;
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            Ident::new(&schema)
        ))
        .map_err(Error::db("bench: dropping an old schema"))?;
    jira_pipeline_core::db::init(&mut admin, &schema)?;
    // The warehouse holds every issue (the census reads ids and marks only).
    let ids: Vec<i64> = sim
        .truth_index()
        .iter()
        .map(|(id, _, _)| *id as i64)
        .collect();
    admin
        .execute(
            &format!(
                "INSERT INTO {}.issue (issue_id, issue_key, project_key, scope)
                 SELECT id, 'DEMO-' || id, 'DEMO', 'bench' FROM unnest($1::int8[]) id",
                Ident::new(&schema)
            ),
            &[&ids],
        )
        .map_err(Error::db("bench: storing the issues"))?;
    let gone: Vec<u64> = ids.iter().step_by(1000).map(|i| *i as u64).collect();
    sim.delete_issues(&gone).map_err(Error::Other)?;
    println!(
        "bench census: {} issues in one scope, {} deleted in Jira, page cap 1000, concurrency {}",
        ids.len(),
        gone.len(),
        cfg.jira.concurrency
    );
    let session = Session::new(cfg, Stop::new())
        .with_jira_token(Secret::new(sim.token()))
        .with_database_url(db_url);
    let opts = RunOptions::default();
    let mut code = ExitCode::Success;
    let mut first = 0.0;
    for label in ["census marking the deleted", "census with nothing to mark"] {
        let t = Instant::now();
        let r = jira_pipeline_core::census::run(&session, &opts)?;
        let secs = t.elapsed().as_secs_f64();
        code = code.max_with(r.exit_code());
        for s in &r.scopes {
            println!(
                "{label:<28} {secs:>7.2} s  {:>9.0} ids/s  {} requests, {} listed, {} marked deleted",
                s.listed as f64 / secs,
                s.requests,
                s.listed,
                s.deleted
            );
        }
        for f in &r.failed {
            println!("{label}: not complete: {}", f.message);
        }
        if first == 0.0 {
            first = secs;
        } else {
            println!("ratio second / first: {:.2}", secs / first);
        }
    }
    let _ = admin.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        Ident::new(&schema)
    ));
    Ok(code)
}
