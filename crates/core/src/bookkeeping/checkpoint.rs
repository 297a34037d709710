//! The `checkpoint` table: per scope, the incremental cursor. It moves only
//! forward, and only in the transaction that loads the data it covers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::sql;
use crate::error::{Error, Result};
use crate::tables::CHECKPOINT;

/// The stored cursors of `scopes` (scopes without one are absent).
pub(crate) fn read_all(
    c: &mut impl GenericClient,
    schema: &str,
    scopes: &[String],
) -> Result<HashMap<String, DateTime<Utc>>> {
    let rows = c
        .query(
            &sql(
                schema,
                &[&CHECKPOINT],
                &[],
                "SELECT {scope}, {cursor} FROM {checkpoint} WHERE {scope} = ANY($1)",
            ),
            &[&scopes],
        )
        .map_err(Error::db("reading the extract checkpoints"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, DateTime<Utc>>(1)))
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
/// (the run id follows the cursor); returns where it stands now.
pub(crate) fn advance(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    proposed: DateTime<Utc>,
    run_id: &str,
) -> Result<DateTime<Utc>> {
    Ok(c
        .query_one(
            &sql(
                schema,
                &[&CHECKPOINT],
                &[],
                "INSERT INTO {checkpoint} AS c ({scope}, {cursor}, {run_id}) VALUES ($1, $2, $3)
                 ON CONFLICT ({scope}) DO UPDATE
                    SET {cursor} = GREATEST(c.{cursor}, EXCLUDED.{cursor}),
                        {run_id} = CASE WHEN EXCLUDED.{cursor} >= c.{cursor} THEN EXCLUDED.{run_id} ELSE c.{run_id} END,
                        {updated_at} = now()
                 RETURNING {cursor}",
            ),
            &[&scope, &proposed, &run_id],
        )
        .map_err(Error::db(format!("scope {scope}: moving the checkpoint")))?
        .get(0))
}
