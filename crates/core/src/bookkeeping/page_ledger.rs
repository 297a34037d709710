//! The `page_ledger` table: one row per loaded page, written in the
//! transaction that loads it, so loading a page twice changes nothing.

use std::collections::HashSet;

use postgres::GenericClient;

use super::sql;
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::tables::PAGE_LEDGER;

/// Which of `pages` of `scope` are in the ledger.
pub fn loaded(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    pages: &[&str],
) -> Result<HashSet<String>> {
    Ok(c.query(
        &sql(
            schema,
            &[&PAGE_LEDGER],
            &[],
            "SELECT {page} FROM {page_ledger} WHERE {scope} = $1 AND {page} = ANY($2)",
        ),
        &[&scope, &pages],
    )
    .map_err(Error::db(format!("scope {scope}: reading the page ledger")))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Records the pages of `batches` (of `scope`) as loaded, with their run,
/// issue and row counts. A page recorded already stays as it was.
pub(crate) fn record(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    batches: &[&Batch],
) -> Result<()> {
    if batches.is_empty() {
        return Ok(());
    }
    let p: Vec<&str> = batches.iter().map(|b| b.meta.page.as_str()).collect();
    let r: Vec<&str> = batches.iter().map(|b| b.meta.run_id.as_str()).collect();
    let i: Vec<i32> = batches
        .iter()
        .map(|b| i32::try_from(b.meta.issues.len()).unwrap_or(i32::MAX))
        .collect();
    let n: Vec<i64> = batches
        .iter()
        .map(|b| i64::try_from(b.total_rows()).unwrap_or(i64::MAX))
        .collect();
    c.execute(
        &sql(
            schema,
            &[&PAGE_LEDGER],
            &[],
            "INSERT INTO {page_ledger} ({scope}, {page}, {run_id}, {issue_count}, {row_count})
             SELECT $1, p, r, i, n
               FROM unnest($2::text[], $3::text[], $4::int4[], $5::int8[]) AS u(p, r, i, n)
             ON CONFLICT ({scope}, {page}) DO NOTHING",
        ),
        &[&scope, &p, &r, &i, &n],
    )
    .map_err(Error::db(format!(
        "scope {scope}: recording pages in the ledger"
    )))?;
    Ok(())
}

/// Pages of run `run_id` of `scope` in the ledger, `except` excepted (the
/// End page asking).
pub(crate) fn run_pages(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    run_id: &str,
    except: &str,
) -> Result<i64> {
    Ok(c.query_one(
        &sql(
            schema,
            &[&PAGE_LEDGER],
            &[],
            "SELECT count(*) FROM {page_ledger} WHERE {scope} = $1 AND {run_id} = $2 AND {page} <> $3",
        ),
        &[&scope, &run_id, &except],
    )
    .map_err(Error::db(format!(
        "scope {scope}: counting pages of run {run_id}"
    )))?
    .get(0))
}

/// Pages of `scope` in the ledger.
pub fn count(c: &mut impl GenericClient, schema: &str, scope: &str) -> Result<i64> {
    Ok(c.query_one(
        &sql(
            schema,
            &[&PAGE_LEDGER],
            &[],
            "SELECT count(*) FROM {page_ledger} WHERE {scope} = $1",
        ),
        &[&scope],
    )
    .map_err(Error::db("status: reading page_ledger"))?
    .get(0))
}
