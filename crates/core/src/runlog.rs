//! The `run_history` table: one row per run, opened at start and closed with
//! its outcome and a JSON summary (`pipeline status` shows the last one).

use postgres::Client;

use crate::db::Ident;
use crate::error::{Error, Result};

/// Records the start of a run; returns its id. The caller holds the
/// schema's advisory lock, so every older row still without an end belongs to
/// a run that died (`kill -9`, a lost connection) without recording one: it
/// is closed as `interrupted` here (its `ended_at` stays unknown, null).
pub fn start(client: &mut Client, schema: &str, command: &str) -> Result<i64> {
    let s = Ident::new(schema);
    let row = client
        .query_one(
            &format!("INSERT INTO {s}.run_history (command) VALUES ($1) RETURNING run_id"),
            &[&command],
        )
        .map_err(Error::db("recording the run start in run_history"))?;
    let run_id: i64 = row.get(0);
    let closed = client
        .execute(
            &format!(
                "UPDATE {s}.run_history SET outcome = 'interrupted',
                        summary = coalesce(summary, '{{}}'::jsonb)
                                  || jsonb_build_object('error', 'the run ended without recording an end (killed, or its connection was lost); found by run ' || $1::bigint)
                  WHERE run_id < $1 AND ended_at IS NULL AND outcome IS NULL"
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
    let s = Ident::new(schema);
    client
        .execute(
            &format!(
                "UPDATE {s}.run_history SET ended_at = now(), outcome = $2, summary = $3 WHERE run_id = $1"
            ),
            &[&run_id, &outcome, summary],
        )
        .map_err(Error::db("recording the run end in run_history"))?;
    Ok(())
}
