//! The transaction of one load unit: one or more batches of one scope, in page
//! order. BEGIN → skip pages already in the ledger → COPY every table into its
//! `ON COMMIT DROP` staging table → merge (see [`super::merge`]) → ledger →
//! End page: checkpoint when its run is complete → quarantine records → COMMIT.
//!
//! Nothing here retries or touches the staging area: the caller
//! ([`super::Loader`]) redoes the whole unit after a lost connection and
//! archives the pages once the COMMIT is through.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use postgres::Client;

use super::merge::{self, UnitSql};
use super::{HookPoint, TableCounts, UnitReport};
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::staging::PageKind;
use crate::tables::{MergeMode, TableSpec};

/// What the transaction decided about each page, for the caller's cleanup.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub report: UnitReport,
    /// Pages that may leave the staging area (loaded now or earlier).
    pub done_pages: Vec<String>,
}

/// Runs one unit in one transaction. `batches` are of one scope, in page order.
pub(crate) fn run(
    client: &mut Client,
    sql: &UnitSql,
    batches: &[&Batch],
    replay: bool,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<Outcome> {
    let mut out = Outcome::default();
    let Some(first) = batches.first() else {
        return Ok(out);
    };
    let scope = first.meta.scope.as_str();
    let pages: Vec<&str> = batches.iter().map(|b| b.meta.page.as_str()).collect();

    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("scope {scope}: BEGIN of a load unit")))?;
    // Sorts, hashes and the merges' materialised joins stay in memory; no
    // JIT (the merges are short; compiling them costs more than it saves).
    tx.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        .map_err(Error::db(format!("scope {scope}: SET work_mem")))?;
    let seen: HashSet<String> = if replay {
        HashSet::new()
    } else {
        tx.query(&sql.ledger_check, &[&scope, &pages])
            .map_err(Error::db(format!("scope {scope}: reading the page ledger")))?
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let todo: Vec<&Batch> = batches
        .iter()
        .copied()
        .filter(|b| !seen.contains(&b.meta.page))
        .collect();
    for b in batches.iter().filter(|b| seen.contains(&b.meta.page)) {
        tracing::debug!(scope, page = %b.meta.page, "page already loaded (in the ledger); skipping it");
        out.report.pages_skipped += 1;
        out.done_pages.push(b.meta.page.clone());
    }
    if todo.is_empty() {
        tx.commit()
            .map_err(Error::db(format!("scope {scope}: COMMIT")))?;
        return Ok(out);
    }
    let unit_pages = || {
        format!(
            "scope {scope}, pages {}..{}",
            todo[0].meta.page,
            todo[todo.len() - 1].meta.page
        )
    };

    // Which incoming issues are stored, and which are unchanged (same digest).
    let phase = Instant::now();
    let plan = plan_unit(&mut tx, sql, &todo, replay)?;
    out.report.add_time("(plan)", 0, phase.elapsed());
    out.report.issues_unchanged += plan.unchanged;

    let catalogue = todo
        .iter()
        .any(|b| b.row_count(crate::tables::FIELD.name) > 0);
    if plan.remaining.is_empty() && !catalogue {
        // Every issue of the unit is stored exactly as it arrives: nothing to
        // COPY or merge (links included: they are as their issues were).
        hook(HookPoint::AfterCopy);
    } else {
        let mut merged = false;
        if plan.direct {
            // A savepoint: if a key turns out to be stored after all (rows
            // left behind by a deleted issue row), the merge takes over.
            let mut sp = tx
                .savepoint("direct_load")
                .map_err(Error::db(format!("{}: SAVEPOINT", unit_pages())))?;
            let mut report = UnitReport::default();
            match load_direct(&mut sp, sql, &todo, &plan, &mut report, &unit_pages, hook) {
                Ok(()) => {
                    sp.commit()
                        .map_err(Error::db(format!("{}: RELEASE SAVEPOINT", unit_pages())))?;
                    out.report.absorb(&report);
                    merged = true;
                }
                Err(e) if is_unique_violation(&e) => {
                    sp.rollback().map_err(Error::db(format!(
                        "{}: ROLLBACK TO SAVEPOINT",
                        unit_pages()
                    )))?;
                    tracing::warn!(
                        "{}: a row of an issue not in the warehouse is stored already ({}); merging the unit instead",
                        unit_pages(),
                        e.one_line()
                    );
                }
                Err(e) => return Err(e),
            }
        }
        if !merged {
            load_merged(
                &mut tx,
                sql,
                &todo,
                &plan,
                &mut out.report,
                &unit_pages,
                hook,
            )?;
        }
        // The digests of the versions taken.
        let phase = Instant::now();
        let (ids, ords, digests) = plan.digest_arrays();
        tx.execute(&sql.digest_upsert, &[&ids, &ords, &digests])
            .map_err(Error::db(format!(
                "{}: recording issue digests",
                unit_pages()
            )))?;
        out.report.add_time("(digests)", 0, phase.elapsed());
    }
    hook(HookPoint::AfterMerge);
    let phase = Instant::now();

    // Ledger: search pages first, so an End page in the same unit sees them.
    let mut ledger: Vec<&Batch> = Vec::new();
    let record = |tx: &mut postgres::Transaction<'_>, ledger: &[&Batch]| -> Result<()> {
        if ledger.is_empty() {
            return Ok(());
        }
        let p: Vec<&str> = ledger.iter().map(|b| b.meta.page.as_str()).collect();
        let r: Vec<&str> = ledger.iter().map(|b| b.meta.run_id.as_str()).collect();
        let i: Vec<i32> = ledger
            .iter()
            .map(|b| i32::try_from(b.meta.issues.len()).unwrap_or(i32::MAX))
            .collect();
        let n: Vec<i64> = ledger
            .iter()
            .map(|b| i64::try_from(b.total_rows()).unwrap_or(i64::MAX))
            .collect();
        tx.execute(&sql.ledger_insert, &[&scope, &p, &r, &i, &n])
            .map_err(Error::db(format!(
                "scope {scope}: recording pages in the ledger"
            )))?;
        Ok(())
    };
    for b in todo.iter().filter(|b| b.meta.kind == PageKind::Search) {
        ledger.push(b);
    }
    record(&mut tx, &ledger)?;
    out.report.pages_loaded += ledger.len() as u64;
    out.done_pages
        .extend(ledger.iter().map(|b| b.meta.page.clone()));

    for b in todo
        .iter()
        .filter(|b| b.meta.kind == PageKind::End && !replay)
    {
        let m = &b.meta;
        let loaded: i64 = tx
            .query_one(&sql.ledger_run_count, &[&scope, &m.run_id, &m.page])
            .map_err(Error::db(format!(
                "scope {scope}: counting pages of run {}",
                m.run_id
            )))?
            .get(0);
        let need = m.pages_in_run.unwrap_or(0);
        let current: Option<DateTime<Utc>> = tx
            .query_opt(&sql.checkpoint_get, &[&scope])
            .map_err(Error::db(format!("scope {scope}: reading the checkpoint")))?
            .map(|r| r.get(0));
        let complete = loaded >= 0 && loaded as u64 == need;
        let stale = match (m.checkpoint, current) {
            (Some(p), Some(c)) => p <= c,
            (None, _) => true,
            _ => false,
        };
        if complete {
            if let Some(proposed) = m.checkpoint {
                let cursor: DateTime<Utc> = tx
                    .query_one(&sql.checkpoint_set, &[&scope, &proposed, &m.run_id])
                    .map_err(Error::db(format!("scope {scope}: moving the checkpoint")))?
                    .get(0);
                out.report.checkpoint = Some(cursor);
            }
        } else if stale {
            tracing::warn!(
                scope, run = %m.run_id, loaded, expected = need,
                "run is incomplete, but its proposed checkpoint is not newer than the stored one; closing it"
            );
        } else {
            tracing::warn!(
                scope, run = %m.run_id, loaded, expected = need,
                "run is incomplete ({loaded} of {need} search pages loaded): the checkpoint stays where it is and the End page stays staged until the missing pages are loaded; the next extract run re-reads them"
            );
            out.report.pages_deferred += 1;
            continue;
        }
        record(&mut tx, &[b])?;
        out.report.pages_loaded += 1;
        out.done_pages.push(m.page.clone());
    }

    // Issues the transform quarantined, recorded with their page.
    // One row per (page, issue key): the last reason wins.
    let mut quarantined = std::collections::BTreeMap::new();
    for b in &todo {
        for q in &b.meta.quarantined {
            quarantined.insert((b.meta.page.as_str(), q.key.as_str()), q.reason.as_str());
        }
    }
    let mut qp = Vec::new();
    let mut qk = Vec::new();
    let mut qr = Vec::new();
    for ((p, k), r) in quarantined {
        qp.push(p);
        qk.push(k);
        qr.push(r);
    }
    if !qp.is_empty() {
        tx.execute(&sql.quarantine_insert, &[&scope, &qp, &qk, &qr])
            .map_err(Error::db(format!(
                "scope {scope}: recording quarantined issues"
            )))?;
        out.report.quarantined += qp.len() as u64;
    }

    hook(HookPoint::BeforeCommit);
    tx.commit()
        .map_err(Error::db(format!("{}: COMMIT", unit_pages())))?;
    out.report.add_time("(ledger+commit)", 0, phase.elapsed());
    Ok(out)
}

/// What a unit will do with its issues, decided before any COPY.
#[derive(Debug, Default)]
pub(crate) struct UnitPlan {
    /// Per batch (in unit order): issue ids whose rows are skipped (stored
    /// with the same digest).
    pub skip: Vec<HashSet<i64>>,
    /// Issues skipped as unchanged.
    pub unchanged: u64,
    /// Issues to load: `(batch ordinal, issue id, digest)`.
    pub remaining: Vec<(i32, i64, Option<String>)>,
    /// No remaining issue is stored and none appears twice: the rows of the
    /// tables keyed by issue go straight into the warehouse tables.
    pub direct: bool,
}

impl UnitPlan {
    fn digest_arrays(&self) -> (Vec<i64>, Vec<i32>, Vec<Option<String>>) {
        let ids = self.remaining.iter().map(|r| r.1).collect();
        let ords = self.remaining.iter().map(|r| r.0).collect();
        let digests = self.remaining.iter().map(|r| r.2.clone()).collect();
        (ids, ords, digests)
    }
}

/// Reads which of the unit's issues are stored and their digests, and decides
/// the skip sets and the path (see [`UnitPlan`]). `replay` skips nothing and
/// always merges.
fn plan_unit(
    tx: &mut postgres::Transaction<'_>,
    sql: &UnitSql,
    todo: &[&Batch],
    replay: bool,
) -> Result<UnitPlan> {
    let ids: Vec<i64> = todo
        .iter()
        .flat_map(|b| b.meta.issues.iter().map(|i| i.id))
        .collect();
    let scope = todo.first().map_or("", |b| b.meta.scope.as_str());
    let stored: HashMap<i64, Option<String>> = if ids.is_empty() {
        HashMap::new()
    } else {
        tx.query(&sql.stored_digests, &[&ids])
            .map_err(Error::db(format!(
                "scope {scope}: reading stored issues and digests"
            )))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    };
    Ok(decide(todo, &stored, replay))
}

/// The pure part of [`plan_unit`]: `stored` maps every stored issue of the
/// unit to its digest (if any).
pub(crate) fn decide(
    todo: &[&Batch],
    stored: &HashMap<i64, Option<String>>,
    replay: bool,
) -> UnitPlan {
    let mut plan = UnitPlan {
        direct: !replay,
        ..UnitPlan::default()
    };
    let mut seen = HashSet::new();
    for (ord, b) in todo.iter().enumerate() {
        let mut skip = HashSet::new();
        for i in &b.meta.issues {
            let same =
                !replay && i.digest.is_some() && stored.get(&i.id).is_some_and(|d| *d == i.digest);
            if same {
                skip.insert(i.id);
                plan.unchanged += 1;
                continue;
            }
            if stored.contains_key(&i.id) || !seen.insert(i.id) {
                plan.direct = false;
            }
            plan.remaining.push((
                i32::try_from(ord).unwrap_or(i32::MAX),
                i.id,
                i.digest.clone(),
            ));
        }
        plan.skip.push(skip);
    }
    plan
}

/// The position of the `issue_id` column in a table, if it has one.
fn issue_col(spec: &TableSpec) -> Option<usize> {
    spec.columns.iter().position(|c| c.name == "issue_id")
}

/// Appends the rows of text-COPY `data` whose column `col` (an integer) is
/// not in `skip` to `out`, each followed by `\t<ord>` when `ord` is given.
/// Returns `(rows read, rows kept)`. Lines are split on `\n`, which text
/// COPY escapes inside values.
pub(crate) fn filter_rows(
    data: &[u8],
    col: Option<usize>,
    skip: &HashSet<i64>,
    ord: Option<usize>,
    out: &mut Vec<u8>,
) -> (u64, u64) {
    let suffix = ord.map(|o| format!("\t{o}\n"));
    let mut read = 0;
    let mut rows = 0;
    let mut start = 0;
    while start < data.len() {
        let end = match memchr(b'\n', &data[start..]) {
            Some(i) => start + i,
            None => data.len(),
        };
        let line = &data[start..end];
        start = end + 1;
        read += 1;
        if let Some(c) = col
            && !skip.is_empty()
            && field_i64(line, c).is_some_and(|id| skip.contains(&id))
        {
            continue;
        }
        out.extend_from_slice(line);
        match &suffix {
            Some(sfx) => out.extend_from_slice(sfx.as_bytes()),
            None => out.push(b'\n'),
        }
        rows += 1;
    }
    (read, rows)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// The integer in tab-separated field `col` of a text-COPY line.
fn field_i64(line: &[u8], col: usize) -> Option<i64> {
    let f = line.split(|&b| b == b'\t').nth(col)?;
    std::str::from_utf8(f).ok()?.parse().ok()
}

/// One COPY of `data`; a server error raised while streaming is reported as
/// the database error (so a unique violation is recognisable).
fn copy(
    tx: &mut postgres::Transaction<'_>,
    stmt: &str,
    data: &[u8],
    ctx: &dyn Fn() -> String,
) -> Result<u64> {
    let mut w = tx.copy_in(stmt).map_err(Error::db(ctx()))?;
    if let Err(e) = w.write_all(data) {
        return match w.finish() {
            Err(pe) => Err(Error::db(ctx())(pe)),
            Ok(_) => Err(Error::Other(format!("{}: {e}", ctx()))),
        };
    }
    w.finish().map_err(Error::db(ctx()))
}

/// The batches' rows of one table, filtered by the plan's skip sets, with the
/// batch ordinal appended when `tag`; checks each batch's row count against
/// its metadata. Returns the rows kept.
fn gather(
    spec: &TableSpec,
    todo: &[&Batch],
    plan: &UnitPlan,
    tag: bool,
    buf: &mut Vec<u8>,
) -> Result<u64> {
    buf.clear();
    let col = issue_col(spec);
    let mut kept = 0;
    for (ord, b) in todo.iter().enumerate() {
        let empty = HashSet::new();
        let skip = plan.skip.get(ord).unwrap_or(&empty);
        let (rows, k) = filter_rows(b.rows(spec.name), col, skip, tag.then_some(ord), buf);
        let meta_rows = b.row_count(spec.name);
        if rows != meta_rows {
            return Err(Error::Other(format!(
                "scope {}, page {}: table {} holds {rows} rows but its metadata says {meta_rows}; delete the batch directory and rerun transform",
                b.meta.scope, b.meta.page, spec.name
            )));
        }
        kept += k;
    }
    Ok(kept)
}

/// The direct path: tables keyed by issue are COPYed straight into the
/// warehouse (none of their issues is stored, none appears twice); the others
/// (links, which both ends carry; the field catalogue) are staged and merged.
fn load_direct(
    tx: &mut postgres::Transaction<'_>,
    sql: &UnitSql,
    todo: &[&Batch],
    plan: &UnitPlan,
    report: &mut UnitReport,
    unit_pages: &dyn Fn() -> String,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<()> {
    let mut buf = Vec::new();
    let (ids, ords, _) = plan.digest_arrays();
    let updated: Vec<Option<DateTime<Utc>>> = plan
        .remaining
        .iter()
        .map(|(o, id, _)| {
            todo.get(*o as usize)
                .and_then(|b| b.meta.issues.iter().find(|i| i.id == *id))
                .and_then(|i| i.updated)
        })
        .collect();
    let phase = Instant::now();
    tx.execute(&sql.accepted_direct, &[&ids, &ords, &updated])
        .map_err(Error::db(format!(
            "{}: recording accepted issues",
            unit_pages()
        )))?;
    report.add_time("(setup)", 0, phase.elapsed());
    report.issues_accepted += ids.len() as u64;
    let mut staged = Vec::new();
    for (spec, copy_stg, fast, _) in &sql.tables {
        if issue_col(spec).is_some() {
            let n = gather(spec, todo, plan, false, &mut buf)?;
            if n == 0 {
                continue;
            }
            let started = Instant::now();
            let ctx = || format!("{}: COPY into table {}", unit_pages(), spec.name);
            let copied = copy(tx, &sql.copy_direct(spec), &buf, &ctx)?;
            if copied != n {
                return Err(Error::Other(format!(
                    "{}: COPY reported {copied} rows, the batches hold {n}",
                    ctx()
                )));
            }
            report.add(
                spec.name,
                TableCounts {
                    inserted: copied,
                    ..TableCounts::default()
                },
            );
            report.add_time("(direct copy)", copied, started.elapsed());
        } else {
            if spec.merge == MergeMode::ReplacePerIssue && plan.remaining.is_empty() {
                // Only unchanged issues: their links are as stored.
                continue;
            }
            let n = gather(spec, todo, plan, true, &mut buf)?;
            let started = Instant::now();
            tx.batch_execute(&merge::create_temp(spec))
                .map_err(Error::db(format!(
                    "{}: creating staging table {}",
                    unit_pages(),
                    spec.name
                )))?;
            if n > 0 {
                let ctx = || format!("{}: COPY into staging table {}", unit_pages(), spec.name);
                let copied = copy(tx, copy_stg, &buf, &ctx)?;
                if copied != n {
                    return Err(Error::Other(format!(
                        "{}: COPY reported {copied} rows, the batches hold {n}",
                        ctx()
                    )));
                }
            }
            report.add_time("(copy)", n, started.elapsed());
            if n > 0 || spec.merge == MergeMode::ReplacePerIssue {
                staged.push((*spec, fast.as_str(), n));
            }
        }
    }
    hook(HookPoint::AfterCopy);
    for (spec, stmt, n) in staged {
        merge_table(tx, spec, stmt, n, report, unit_pages)?;
    }
    Ok(())
}

/// The merge path: every table is COPYed into its staging table and merged
/// (see [`super::merge`]).
fn load_merged(
    tx: &mut postgres::Transaction<'_>,
    sql: &UnitSql,
    todo: &[&Batch],
    plan: &UnitPlan,
    report: &mut UnitReport,
    unit_pages: &dyn Fn() -> String,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<()> {
    let phase = Instant::now();
    tx.batch_execute(&sql.create_temps)
        .map_err(Error::db(format!(
            "{}: creating staging tables",
            unit_pages()
        )))?;
    report.add_time("(setup)", 0, phase.elapsed());
    let mut buf = Vec::new();
    let mut copied_tables = Vec::new();
    for (spec, copy_sql, _, _) in &sql.tables {
        let expected = gather(spec, todo, plan, true, &mut buf)?;
        if expected == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into staging table {}", unit_pages(), spec.name);
        let copied = copy(tx, copy_sql, &buf, &ctx)?;
        if copied != expected {
            return Err(Error::Other(format!(
                "{}: COPY reported {copied} rows, the batches hold {expected}",
                ctx()
            )));
        }
        copied_tables.push(spec.name);
        report.add_time("(copy)", copied, started.elapsed());
    }
    hook(HookPoint::AfterCopy);

    // Which incoming issues win (newest version, not older than stored).
    let phase = Instant::now();
    tx.batch_execute(&sql.accepted).map_err(Error::db(format!(
        "{}: selecting accepted issues",
        unit_pages()
    )))?;
    let counts = tx
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {a}), (SELECT count(DISTINCT issue_id) FROM {i}), (SELECT count(*) FROM {i})",
                a = merge::ACCEPTED,
                i = merge::stg(&crate::tables::ISSUE)
            ),
            &[],
        )
        .map_err(Error::db(format!("{}: counting accepted issues", unit_pages())))?;
    let acc: i64 = counts.get(0);
    let distinct_in: i64 = counts.get(1);
    let issue_rows: i64 = counts.get(2);
    let path = if acc == distinct_in && distinct_in == issue_rows {
        merge::Path::Fast
    } else {
        merge::Path::Full
    };
    report.add_time("(accepted)", 0, phase.elapsed());
    report.issues_accepted += acc as u64;
    report.issues_rejected_older += (distinct_in - acc).max(0) as u64;

    for (spec, _, fast, full) in &sql.tables {
        let stmt = match path {
            merge::Path::Fast => fast,
            merge::Path::Full => full,
        };
        if !copied_tables.contains(&spec.name) && spec.merge != MergeMode::ReplacePerIssue {
            continue;
        }
        let rows_in: u64 = todo.iter().map(|b| b.row_count(spec.name)).sum();
        merge_table(tx, spec, stmt, rows_in, report, unit_pages)?;
    }
    Ok(())
}

/// Runs one table's merge statement and records its counts and time.
fn merge_table(
    tx: &mut postgres::Transaction<'_>,
    spec: &TableSpec,
    stmt: &str,
    rows_in: u64,
    report: &mut UnitReport,
    unit_pages: &dyn Fn() -> String,
) -> Result<()> {
    let started = Instant::now();
    let row = tx.query_one(stmt, &[]).map_err(Error::db(format!(
        "{}: merging table {}",
        unit_pages(),
        spec.name
    )))?;
    report.add(
        spec.name,
        TableCounts {
            deleted: row.get::<_, i64>(0) as u64,
            inserted: row.get::<_, i64>(1) as u64,
            updated: row.get::<_, i64>(2) as u64,
        },
    );
    report.add_time(spec.name, rows_in, started.elapsed());
    Ok(())
}

/// A unique-key violation (SQLSTATE 23505).
fn is_unique_violation(e: &Error) -> bool {
    matches!(e, Error::Db { source, .. } if source.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_every_line() {
        let none = HashSet::new();
        let mut out = Vec::new();
        assert_eq!(
            filter_rows(b"1\ta\n2\tb\n", Some(0), &none, Some(3), &mut out),
            (2, 2)
        );
        assert_eq!(out, b"1\ta\t3\n2\tb\t3\n");
        out.clear();
        assert_eq!(
            filter_rows(b"1\tlast-without-newline", None, &none, Some(0), &mut out),
            (1, 1)
        );
        assert_eq!(out, b"1\tlast-without-newline\t0\n");
        out.clear();
        assert_eq!(filter_rows(b"", None, &none, Some(0), &mut out), (0, 0));
        assert!(out.is_empty());
    }

    #[test]
    fn skips_rows_of_skipped_issues_by_column() {
        let skip: HashSet<i64> = [7].into_iter().collect();
        let data = b"5\t1\t7\tx\n6\t1\t8\ty\\ttab\n7\t2\t7\tz\n";
        let mut out = Vec::new();
        // Column 2 is the issue id: rows of issue 7 go, whatever column 0 says.
        assert_eq!(filter_rows(data, Some(2), &skip, None, &mut out), (3, 1));
        assert_eq!(out, b"6\t1\t8\ty\\ttab\n");
        out.clear();
        // No issue column: nothing is skipped.
        assert_eq!(filter_rows(data, None, &skip, None, &mut out), (3, 3));
        assert_eq!(out, data);
    }

    fn batch(page: &str, issues: &[(i64, Option<&str>)]) -> Batch {
        Batch {
            meta: crate::batch::BatchMeta {
                format: 1,
                scope: "s".into(),
                page: page.into(),
                run_id: "r".into(),
                kind: PageKind::Search,
                issues: issues
                    .iter()
                    .map(|(id, d)| crate::batch::IssueVersion {
                        id: *id,
                        key: format!("K-{id}"),
                        updated: None,
                        digest: d.map(str::to_owned),
                    })
                    .collect(),
                tables: vec![],
                checkpoint: None,
                pages_in_run: None,
                quarantined: vec![],
                source_bytes: 0,
            },
            data: vec![],
        }
    }

    #[test]
    fn plan_skips_unchanged_and_goes_direct_only_for_new_unique_issues() {
        let a = batch("p1", &[(1, Some("d1")), (2, Some("d2")), (3, None)]);
        let b = batch("p2", &[(4, Some("d4"))]);
        let stored: HashMap<i64, Option<String>> = [
            (1, Some("d1".to_string())),
            (2, Some("old".to_string())),
            (3, None),
        ]
        .into_iter()
        .collect();
        let p = decide(&[&a, &b], &stored, false);
        assert_eq!(p.unchanged, 1);
        assert!(p.skip[0].contains(&1) && p.skip[0].len() == 1 && p.skip[1].is_empty());
        assert_eq!(
            p.remaining.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            vec![(0, 2), (0, 3), (1, 4)]
        );
        assert!(!p.direct, "issues 2 and 3 are stored");
        // All new and unique: direct.
        let p = decide(&[&b], &stored, false);
        assert!(p.direct);
        // The same new issue on two pages: merged (latest version wins there).
        let c = batch("p3", &[(4, Some("d4b"))]);
        assert!(!decide(&[&b, &c], &stored, false).direct);
        // Replay skips nothing and always merges.
        let p = decide(&[&a], &stored, true);
        assert_eq!((p.unchanged, p.remaining.len(), p.direct), (0, 3, false));
        // Only stored issues are unchanged ones: all skipped, nothing remains.
        let p = decide(&[&batch("p4", &[(1, Some("d1"))])], &stored, false);
        assert_eq!((p.unchanged, p.remaining.len()), (1, 0));
    }
}
