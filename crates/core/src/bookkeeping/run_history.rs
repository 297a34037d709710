//! The `run_history` table: one row per run, opened at start and closed with
//! its outcome and a JSON summary (`pipeline status` shows the last one).

use postgres::{Client, GenericClient};

use super::sql;
use crate::error::{Error, Result};
use crate::status::LastRun;
use crate::tables::RUN_HISTORY;

/// Records the start of a run; returns its id. The caller holds the
/// schema's advisory lock, so every older row still without an end belongs to
/// a run that died (`kill -9`, a lost connection) without recording one: it
/// is closed as `interrupted` here (its `ended_at` stays unknown, null).
pub fn start(client: &mut Client, schema: &str, command: &str) -> Result<i64> {
    let row = client
        .query_one(
            &sql(
                schema,
                &[&RUN_HISTORY],
                &[],
                "INSERT INTO {run_history} ({command}) VALUES ($1) RETURNING {run_id}",
            ),
            &[&command],
        )
        .map_err(Error::db("recording the run start in run_history"))?;
    let run_id: i64 = row.get(0);
    let closed = client
        .execute(
            &sql(
                schema,
                &[&RUN_HISTORY],
                &[],
                "UPDATE {run_history} SET {outcome} = 'interrupted',
                        {summary} = coalesce({summary}, '{}'::jsonb)
                                  || jsonb_build_object('error', 'the run ended without recording an end (killed, or its connection was lost); found by run ' || $1::bigint)
                  WHERE {run_id} < $1 AND {ended_at} IS NULL AND {outcome} IS NULL",
            ),
            &[&run_id],
        )
        .map_err(Error::db("closing the run_history rows of killed runs"))?;
    if closed > 0 {
        tracing::warn!(
            runs = closed,
            "earlier runs ended without recording an end (killed?); marked interrupted in run_history"
        );
    }
    Ok(run_id)
}

/// Records the end of a run with its outcome (`ok`, `quarantined`, `failed`,
/// `interrupted`) and summary.
pub fn finish(
    client: &mut Client,
    schema: &str,
    run_id: i64,
    outcome: &str,
    summary: &serde_json::Value,
) -> Result<()> {
    client
        .execute(
            &sql(
                schema,
                &[&RUN_HISTORY],
                &[],
                "UPDATE {run_history} SET {ended_at} = now(), {outcome} = $2, {summary} = $3
                  WHERE {run_id} = $1",
            ),
            &[&run_id, &outcome, summary],
        )
        .map_err(Error::db("recording the run end in run_history"))?;
    Ok(())
}

/// The latest run recorded (`outcome` is `None` while it has no end).
pub fn last(c: &mut impl GenericClient, schema: &str) -> Result<Option<LastRun>> {
    Ok(c.query_opt(
        &sql(
            schema,
            &[&RUN_HISTORY],
            &[],
            "SELECT {command}, {started_at}, {ended_at}, {outcome}, {summary} FROM {run_history}
                  ORDER BY {run_id} DESC LIMIT 1",
        ),
        &[],
    )
    .map_err(Error::db("status: reading run_history"))?
    .map(|r| LastRun {
        command: r.get(0),
        started_at: r.get(1),
        ended_at: r.get(2),
        outcome: r.get(3),
        summary: r.get(4),
    }))
}
