//! The `census` table (the last complete census of each scope) and the
//! census's reads and marks on `issue`: which stored issues a scope answers
//! for, and the removal marks, written in one transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::sql;
use crate::error::{Error, Result};
use crate::tables::{CENSUS, ISSUE};

/// The stored issues a scope's census answers for: those its runs loaded
/// last (`issue.scope`), and those loaded before the scope was recorded
/// (`scope` null) of the scope's project.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// Live issues (no `deleted_at`).
    pub live: Vec<i64>,
    /// Issues marked removed.
    pub removed: Vec<i64>,
}

pub(crate) fn stored(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    project: &str,
) -> Result<Stored> {
    let rows = c
        .query(
            &sql(
                schema,
                &[&ISSUE],
                &[],
                "SELECT {issue_id}, {deleted_at} IS NULL FROM {issue}
                  WHERE {scope} = $1 OR ({scope} IS NULL AND {project_key} = $2)",
            ),
            &[&scope, &project],
        )
        .map_err(Error::db(format!(
            "scope {scope}: reading the stored issues for the census"
        )))?;
    let mut out = Stored::default();
    for r in rows {
        let id: i64 = r.get(0);
        if r.get::<_, bool>(1) {
            out.live.push(id);
        } else {
            out.removed.push(id);
        }
    }
    Ok(out)
}

/// What a complete census of one scope changes.
#[derive(Debug, Default, Clone)]
pub struct Marks {
    /// Jira answers 404: `removed_reason = 'deleted'`.
    pub deleted: Vec<i64>,
    /// Jira has it, no configured scope matches it: `'out_of_scope'`.
    pub out_of_scope: Vec<i64>,
    /// Matched by another configured scope: that scope answers for it now.
    pub moved: HashMap<String, Vec<i64>>,
    /// Marked removed, seen again: live again.
    pub revived: Vec<i64>,
}

impl Marks {
    pub fn is_empty(&self) -> bool {
        self.deleted.is_empty()
            && self.out_of_scope.is_empty()
            && self.moved.values().all(Vec::is_empty)
            && self.revived.is_empty()
    }
}

/// The census record of one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub listed: i64,
    pub deleted: i64,
    pub out_of_scope: i64,
    pub moved: i64,
    pub revived: i64,
    pub requests: i64,
}

/// Writes the marks of a complete census and its record (the caller's
/// transaction makes them one commit). Issues are never deleted: only
/// `deleted_at`, `removed_reason` and `scope` change, and only where they
/// differ, so a census with nothing to mark writes its record alone.
pub(crate) fn apply(
    c: &mut impl GenericClient,
    schema: &str,
    scope: &str,
    marks: &Marks,
    rec: &Record,
) -> Result<()> {
    let ctx = |what: &str| format!("scope {scope}: census: {what}");
    let mark = sql(
        schema,
        &[&ISSUE],
        &[],
        "UPDATE {issue} SET {deleted_at} = $2, {removed_reason} = $3
          WHERE {issue_id} = ANY($1) AND {deleted_at} IS NULL",
    );
    for (ids, reason) in [
        (&marks.deleted, "deleted"),
        (&marks.out_of_scope, "out_of_scope"),
    ] {
        if !ids.is_empty() {
            c.execute(&mark, &[ids, &rec.finished_at, &reason])
                .map_err(Error::db(ctx("marking removed issues")))?;
        }
    }
    let rescope = sql(
        schema,
        &[&ISSUE],
        &[],
        "UPDATE {issue} SET {scope} = $2
          WHERE {issue_id} = ANY($1) AND {scope} IS DISTINCT FROM $2",
    );
    for (to, ids) in &marks.moved {
        if !ids.is_empty() {
            c.execute(&rescope, &[ids, to])
                .map_err(Error::db(ctx("handing issues to another scope")))?;
        }
    }
    if !marks.revived.is_empty() {
        c.execute(
            &sql(
                schema,
                &[&ISSUE],
                &[],
                "UPDATE {issue} SET {deleted_at} = NULL, {removed_reason} = NULL, {scope} = $2
                  WHERE {issue_id} = ANY($1) AND {deleted_at} IS NOT NULL",
            ),
            &[&marks.revived, &scope],
        )
        .map_err(Error::db(ctx("reviving issues seen again")))?;
    }
    c.execute(
        &sql(
            schema,
            &[&CENSUS],
            &[],
            "INSERT INTO {census} ({scope}, {started_at}, {finished_at}, {listed}, {deleted},
                                   {out_of_scope}, {moved}, {revived}, {requests})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT ({scope}) DO UPDATE SET
                {started_at} = EXCLUDED.{started_at}, {finished_at} = EXCLUDED.{finished_at},
                {listed} = EXCLUDED.{listed}, {deleted} = EXCLUDED.{deleted},
                {out_of_scope} = EXCLUDED.{out_of_scope}, {moved} = EXCLUDED.{moved},
                {revived} = EXCLUDED.{revived}, {requests} = EXCLUDED.{requests}",
        ),
        &[
            &scope,
            &rec.started_at,
            &rec.finished_at,
            &rec.listed,
            &rec.deleted,
            &rec.out_of_scope,
            &rec.moved,
            &rec.revived,
            &rec.requests,
        ],
    )
    .map_err(Error::db(ctx("recording the census")))?;
    Ok(())
}

/// The last complete census of each of `scopes` (absent: none yet).
pub fn last(
    c: &mut impl GenericClient,
    schema: &str,
    scopes: &[String],
) -> Result<HashMap<String, Record>> {
    let rows = c
        .query(
            &sql(
                schema,
                &[&CENSUS],
                &[],
                "SELECT {scope}, {started_at}, {finished_at}, {listed}, {deleted}, {out_of_scope},
                        {moved}, {revived}, {requests}
                   FROM {census} WHERE {scope} = ANY($1)",
            ),
            &[&scopes],
        )
        .map_err(Error::db("reading the last censuses"))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                Record {
                    started_at: r.get(1),
                    finished_at: r.get(2),
                    listed: r.get(3),
                    deleted: r.get(4),
                    out_of_scope: r.get(5),
                    moved: r.get(6),
                    revived: r.get(7),
                    requests: r.get(8),
                },
            )
        })
        .collect())
}
