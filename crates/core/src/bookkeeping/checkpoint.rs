//! The `checkpoint` table: per scope, the incremental cursor. It moves only
//! forward, and only in the transaction that loads the data it covers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::sql;
use crate::error::{Error, Result};
use crate::tables::CHECKPOINT;

/// A scope's stored cursor and the fingerprint of the scope definition it
/// belongs to (`None` for a cursor stored before fingerprints existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCursor {
    pub at: DateTime<Utc>,
    pub fingerprint: Option<String>,
}

/// The stored cursors by scope.
pub type Checkpoints = HashMap<String, StoredCursor>;

/// The stored cursors of `scopes` (scopes without one are absent).
pub(crate) fn read_all(
    c: &mut impl GenericClient,
    schema: &str,
    scopes: &[String],
) -> Result<Checkpoints> {
    let rows = c
        .query(
            &sql(
                schema,
                &[&CHECKPOINT],
                &[],
                "SELECT {scope}, {cursor}, {fingerprint} FROM {checkpoint} WHERE {scope} = ANY($1)",
            ),
            &[&scopes],
        )
        .map_err(Error::db("reading the extract checkpoints"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                StoredCursor {
                    at: r.get(1),
                    fingerprint: r.get(2),
                },
            )
        })
        .collect())
}

/// The stored cursor of one scope.
pub fn get(c: &mut impl GenericClient, schema: &str, scope: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(c.query_opt(
        &sql(
            schema,
            &[&CHECKPOINT],
            &[],
            "SELECT {cursor} FROM {checkpoint} WHERE {scope} = $1",
        ),
        &[&scope],
    )
    .map_err(Error::db(format!("scope {scope}: reading the checkpoint")))?
    .map(|r| r.get(0)))
}

/// Moves the cursor of `scope` to `proposed` unless it stands later already
/// (the run id and the scope's fingerprint follow the cursor; a run that
/// carried no fingerprint keeps the stored one); returns where it stands now.
pub(crate) fn advance(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    proposed: DateTime<Utc>,
    run_id: &str,
    fingerprint: Option<&str>,
) -> Result<DateTime<Utc>> {
    Ok(c
        .query_one(
            &sql(
                schema,
                &[&CHECKPOINT],
                &[],
                "INSERT INTO {checkpoint} AS c ({scope}, {cursor}, {run_id}, {fingerprint})
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT ({scope}) DO UPDATE
                    SET {cursor} = GREATEST(c.{cursor}, EXCLUDED.{cursor}),
                        {run_id} = CASE WHEN EXCLUDED.{cursor} >= c.{cursor} THEN EXCLUDED.{run_id} ELSE c.{run_id} END,
                        {fingerprint} = CASE WHEN EXCLUDED.{cursor} >= c.{cursor}
                                             THEN coalesce(EXCLUDED.{fingerprint}, c.{fingerprint})
                                             ELSE c.{fingerprint} END,
                        {updated_at} = now()
                 RETURNING {cursor}",
            ),
            &[&scope, &proposed, &run_id, &fingerprint],
        )
        .map_err(Error::db(format!("scope {scope}: moving the checkpoint")))?
        .get(0))
}
