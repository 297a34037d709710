//! The `issue_digest` table: the digest of the version of each issue stored
//! in the warehouse, written in the load unit's transaction, so the loader
//! skips issues that arrive unchanged before any COPY.

use std::collections::HashMap;

use postgres::GenericClient;

use super::sql;
use crate::error::{Error, Result};
use crate::load::merge::{ACCEPTED, ORD};
use crate::tables::{ISSUE, ISSUE_DIGEST};

/// Of `ids`, those stored in `issue`, each with its digest (`None` when no
/// digest is recorded, and for an issue marked removed: one that arrives
/// again is written whatever its digest, which makes it live again).
pub fn stored(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    ids: &[i64],
) -> Result<HashMap<i64, Option<String>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(c.query(
        &sql(
            schema,
            &[&ISSUE, &ISSUE_DIGEST],
            &[],
            "SELECT i.{issue_id}, CASE WHEN i.{deleted_at} IS NULL THEN d.{digest} END
                   FROM {issue} i
                   LEFT JOIN {issue_digest} d ON d.{issue_id} = i.{issue_id}
                  WHERE i.{issue_id} = ANY($1)",
        ),
        &[&ids],
    )
    .map_err(Error::db(format!(
        "scope {scope}: reading stored issues and digests"
    )))?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

/// Records the digests of the versions a unit took: `ids`, their batch
/// ordinals `ords` and `digests`, kept for those in the unit's accepted set
/// (`stg_accepted`) with that ordinal.
pub(crate) fn record(
    c: &mut impl GenericClient,
    schema: &str,
    ids: &[i64],
    ords: &[i32],
    digests: &[Option<String>],
    ctx: &dyn Fn() -> String,
) -> Result<()> {
    c.execute(
        &sql(
            schema,
            &[&ISSUE_DIGEST],
            &[ACCEPTED, ORD],
            &format!(
                "INSERT INTO {{issue_digest}} AS t ({{issue_id}}, {{digest}})
                 SELECT u.i, u.d FROM unnest($1::int8[], $2::int4[], $3::text[]) AS u(i, b, d)
                   JOIN {{{ACCEPTED}}} a ON a.{{issue_id}} = u.i AND a.{{{ORD}}} = u.b
                 ON CONFLICT ({{issue_id}}) DO UPDATE SET {{digest}} = EXCLUDED.{{digest}}
                  WHERE t.{{digest}} IS DISTINCT FROM EXCLUDED.{{digest}}"
            ),
        ),
        &[&ids, &ords, &digests],
    )
    .map_err(Error::db(format!("{}: recording issue digests", ctx())))?;
    Ok(())
}
