//! `pipeline demo`: the quick start. Starts the Jira simulator in-process with
//! a modest dataset, copies it into a fresh schema (`jira_demo`) of
//! `DATABASE_URL` with the full pipeline (backfill), edits a few issues in the
//! simulator, runs an incremental sync, and prints a summary, two of the
//! reports (docs/reports.md) and example queries. Needs no config file and
//! no Jira.

use std::path::PathBuf;

use clap::Args;

use jira_pipeline_core::config::{self, Config, RawConfig, Secret};
use jira_pipeline_core::db::Ident;
use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::pipeline::{self, RunOptions};
use jira_pipeline_core::session::Session;
use jira_sim::{IssueUpdate, SimConfig, Simulator};

use crate::cli::simulate::sim_error;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Issues in the simulated Jira (over projects DEMO, ALPHA, BETA).
    #[arg(long, default_value_t = 3000)]
    pub issues: u32,
    /// Schema to (re)create for the demo; it is dropped first.
    #[arg(long, default_value = "jira_demo")]
    pub schema: String,
    /// Staging directory (default: a temporary directory removed at the end).
    #[arg(long, value_name = "DIR")]
    pub staging: Option<PathBuf>,
}

/// Runs the demo; prints what it did.
pub fn exec(args: &DemoArgs, quiet: bool) -> Result<ExitCode> {
    if !config::is_valid_schema_name(&args.schema) {
        return Err(Error::Config(format!(
            "--schema {:?} is not a valid schema name; use lower-case letters, digits and _",
            args.schema
        )));
    }
    let db_url = config::database_url()?;
    let sim = Simulator::start(SimConfig::default().issues(args.issues).projects(3).port(0))
        .map_err(sim_error)?;
    let tmp;
    let staging_dir = match &args.staging {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
            tmp.path().to_path_buf()
        }
    };
    let cfg = demo_config(sim.url(), &args.schema, &staging_dir)?;
    println!(
        "simulated Jira Data Center at {} ({} issues in DEMO, ALPHA, BETA)",
        sim.url(),
        args.issues
    );

    let mut client = jira_pipeline_core::db::connect(&db_url, &cfg.database)?;
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            Ident::new(&args.schema)
        ))
        .map_err(Error::db(format!(
            "dropping the demo schema {}",
            args.schema
        )))?;
    jira_pipeline_core::db::init(&mut client, &args.schema)?;
    println!("created schema {:?}", args.schema);

    let session = Session::new(cfg, jira_pipeline_core::shutdown::install()?)
        .with_jira_token(Secret::new(sim.token()))
        .with_database_url(db_url.clone());
    let opts = |command: &str| RunOptions {
        command: command.into(),
        quiet,
        ..Default::default()
    };
    println!(
        "\n1. backfill: every issue of scopes demo (DEMO) and alpha-bugs (ALPHA, Bug and Story)"
    );
    let first = pipeline::run(&session, &opts("demo backfill"))?;
    print!("{first}");

    // Edit a few issues the way people do, then sync.
    let edited = edit_some(&sim)?;
    println!("\n3. incremental sync from the checkpoint");
    let second = pipeline::run(&session, &opts("demo sync"))?;
    print!("{second}");

    show_warehouse(&mut client, &args.schema, edited)?;
    show_reports(&mut client, &args.schema)?;
    show_queries(&args.schema);
    Ok(first.exit_code().max_with(second.exit_code()))
}

/// Step 2: edits a few DEMO issues (status, labels replaced by
/// `demo-edited`) and moves one to ALPHA; returns how many were edited.
fn edit_some(sim: &jira_sim::SimHandle) -> Result<usize> {
    let ids = sim.ids_in_project("DEMO");
    let edited: Vec<u64> = ids.iter().step_by(40).take(25).copied().collect();
    for (i, id) in edited.iter().enumerate() {
        let upd = IssueUpdate::new()
            .status(if i % 2 == 0 { "Done" } else { "In Review" })
            .clear_labels()
            .add_label("demo-edited");
        sim.update_issue(*id, &upd).map_err(Error::Other)?;
    }
    let moved = ids.get(7).copied();
    let new_key = match moved {
        Some(id) => Some(sim.move_issue(id, "ALPHA").map_err(Error::Other)?),
        None => None,
    };
    println!(
        "\n2. in the simulator: edited {} DEMO issues (status, labels replaced by 'demo-edited'){}",
        edited.len(),
        new_key
            .as_ref()
            .map(|k| format!(", moved one issue to ALPHA as {k}"))
            .unwrap_or_default()
    );
    Ok(edited.len())
}

/// The warehouse's row counts, and whether every edit arrived.
fn show_warehouse(
    client: &mut jira_pipeline_core::db::Client,
    schema: &str,
    edited: usize,
) -> Result<()> {
    let s = Ident::new(schema);
    println!("\nwarehouse {:?} now holds:", schema);
    for t in jira_pipeline_core::tables::ALL {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {s}.{}", t.name), &[])
            .map_err(Error::db(format!("counting {}", t.name)))?
            .get(0);
        println!("  {:<22} {n:>8} rows", t.name);
    }
    let edited_now: i64 = client
        .query_one(
            &format!(
                "SELECT count(DISTINCT issue_id) FROM {s}.issue_label WHERE label = 'demo-edited'"
            ),
            &[],
        )
        .map_err(Error::db("checking the edited issues"))?
        .get(0);
    println!(
        "  issues carrying the 'demo-edited' label: {edited_now} (edited in the simulator: {})",
        edited
    );

    Ok(())
}

/// Two reports, short: the issues longest in progress, and the issues done
/// per week of the last weeks that had any.
fn show_reports(client: &mut jira_pipeline_core::db::Client, schema: &str) -> Result<()> {
    let s = Ident::new(schema);
    println!("\nreports (docs/reports.md):");
    println!("  longest in an 'indeterminate' status, days (report_time_in_status_category):");
    let rows = client
        .query(
            &format!(
                "SELECT issue_key, round(seconds / 86400.0, 1)::float8, is_current
                   FROM {s}.report_time_in_status_category
                  WHERE category_key = 'indeterminate'
                  ORDER BY seconds DESC, issue_key LIMIT 5"
            ),
            &[],
        )
        .map_err(Error::db("reading report_time_in_status_category"))?;
    for r in &rows {
        let (key, days, now): (String, f64, bool) = (r.get(0), r.get(1), r.get(2));
        let still = if now { "  (still in progress)" } else { "" };
        println!("    {key:<12} {days:>8.1}{still}");
    }
    println!("  issues done per ISO week, last 5 weeks with any (report_throughput_weekly):");
    let rows = client
        .query(
            &format!(
                "SELECT format('%s-W%s', iso_year, lpad(iso_week::text, 2, '0')),
                        string_agg(project_key || ' ' || issues, ', ' ORDER BY project_key)
                   FROM {s}.report_throughput_weekly
                  GROUP BY iso_year, iso_week
                  ORDER BY iso_year DESC, iso_week DESC LIMIT 5"
            ),
            &[],
        )
        .map_err(Error::db("reading report_throughput_weekly"))?;
    for r in &rows {
        let (week, counts): (String, String) = (r.get(0), r.get(1));
        println!("    {week}  {counts}");
    }
    Ok(())
}

/// Example queries to try in `psql`.
fn show_queries(schema: &str) {
    let sch = schema;
    println!("\nTry these (psql \"$DATABASE_URL\"):");
    println!("  -- issues per status category and status");
    println!(
        "  SELECT status_category, status, count(*) FROM {sch}.issue GROUP BY 1, 2 ORDER BY 3 DESC;"
    );
    println!("  -- time from creation to the first move to Done, per issue type");
    println!(
        "  SELECT i.issue_type, avg(c.created - i.created) AS to_done FROM {sch}.issue i JOIN {sch}.changelog c USING (issue_id) JOIN {sch}.changelog_item ci USING (history_id) WHERE ci.field = 'status' AND ci.to_string = 'Done' GROUP BY 1;"
    );
    println!("  -- median cycle time (first start to done) per project, in days");
    println!(
        "  SELECT project_key, percentile_cont(0.5) WITHIN GROUP (ORDER BY cycle_seconds) / 86400 FROM {sch}.report_cycle_time GROUP BY 1;"
    );
    println!("  -- the most used labels");
    println!(
        "  SELECT label, count(*) FROM {sch}.issue_label GROUP BY 1 ORDER BY 2 DESC LIMIT 10;"
    );
}

fn demo_config(base_url: &str, schema: &str, staging: &std::path::Path) -> Result<Config> {
    let text = format!(
        r#"
[jira]
base_url = "{base_url}"
concurrency = 8
[jira.retry]
base_delay_ms = 50
max_delay_ms = 2000
[staging]
dir = {staging:?}
[database]
schema = "{schema}"
[[scope]]
name = "demo"
project = "DEMO"
[[scope]]
name = "alpha-bugs"
project = "ALPHA"
issue_types = ["Bug", "Story"]
"#,
        staging = staging.display().to_string()
    );
    let path = std::path::Path::new("(demo configuration)");
    RawConfig::parse(&text, path)?.validate(path)
}
