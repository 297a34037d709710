//! The `quarantine` table: issues transform could not turn into rows, with
//! their page and reason, recorded by the loader with the page's data.

use std::collections::BTreeMap;

use postgres::GenericClient;

use super::sql;
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::status::QuarantinedIssueRow;
use crate::tables::QUARANTINE;

/// Records the issues `batches` (of `scope`) quarantined, one row per (page,
/// issue key): the last reason wins. Returns the rows written.
pub(crate) fn record(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    batches: &[&Batch],
) -> Result<u64> {
    let mut rows = BTreeMap::new();
    for b in batches {
        for q in &b.meta.quarantined {
            rows.insert((b.meta.page.as_str(), q.key.as_str()), q.reason.as_str());
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let mut pages = Vec::with_capacity(rows.len());
    let mut keys = Vec::with_capacity(rows.len());
    let mut reasons = Vec::with_capacity(rows.len());
    for ((p, k), r) in rows {
        pages.push(p);
        keys.push(k);
        reasons.push(r);
    }
    c.execute(
        &sql(
            schema,
            &[&QUARANTINE],
            &[],
            "INSERT INTO {quarantine} ({scope}, {page}, {issue_key}, {reason})
             SELECT $1, p, k, r FROM unnest($2::text[], $3::text[], $4::text[]) AS u(p, k, r)
             ON CONFLICT ({scope}, {page}, {issue_key}) DO UPDATE
                SET {reason} = EXCLUDED.{reason}, {recorded_at} = now()",
        ),
        &[&scope, &pages, &keys, &reasons],
    )
    .map_err(Error::db(format!(
        "scope {scope}: recording quarantined issues"
    )))?;
    Ok(pages.len() as u64)
}

/// The `limit` latest quarantined issues of `scope`, newest first.
pub(crate) fn recent(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    limit: i64,
) -> Result<Vec<QuarantinedIssueRow>> {
    Ok(c.query(
        &sql(
            schema,
            &[&QUARANTINE],
            &[],
            "SELECT {page}, {issue_key}, {reason}, {recorded_at} FROM {quarantine}
                  WHERE {scope} = $1 ORDER BY {recorded_at} DESC LIMIT $2",
        ),
        &[&scope, &limit],
    )
    .map_err(Error::db("status: reading quarantine"))?
    .iter()
    .map(|r| QuarantinedIssueRow {
        page: r.get(0),
        issue_key: r.get(1),
        reason: r.get(2),
        recorded_at: r.get(3),
    })
    .collect())
}
