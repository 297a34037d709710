//! The transaction of one load unit: one or more batches of one scope, in page
//! order. BEGIN → skip pages already in the ledger → COPY every table into its
//! `ON COMMIT DROP` staging table → merge (see [`super::merge`]) → ledger →
//! End page: checkpoint when its run is complete → quarantine records → COMMIT.
//!
//! Nothing here retries or touches the staging area: the caller
//! ([`super::Loader`]) redoes the whole unit after a lost connection and
//! archives the pages once the COMMIT is through.

use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, Utc};
use postgres::Client;

use super::merge::{self, UnitSql};
use super::{HookPoint, TableCounts, UnitReport};
use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::staging::PageKind;

/// What the transaction decided about each page, for the caller's cleanup.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub report: UnitReport,
    /// Pages that may leave the staging area (loaded now or earlier).
    pub done_pages: Vec<String>,
}

/// Appends `\t<ord>` to every line of text-COPY `data` into `out`; returns the
/// number of rows.
pub(crate) fn tag_rows(data: &[u8], ord: usize, out: &mut Vec<u8>) -> u64 {
    let suffix = format!("\t{ord}\n");
    let mut rows = 0;
    let mut start = 0;
    while start < data.len() {
        let end = match data[start..].iter().position(|&b| b == b'\n') {
            Some(i) => start + i,
            None => data.len(),
        };
        out.extend_from_slice(&data[start..end]);
        out.extend_from_slice(suffix.as_bytes());
        rows += 1;
        start = end + 1;
    }
    rows
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

    // Staging tables, then one COPY per table carrying every batch of the unit.
    let phase = Instant::now();
    tx.batch_execute(&sql.create_temps)
        .map_err(Error::db(format!(
            "{}: creating staging tables",
            unit_pages()
        )))?;
    out.report.add_time("(setup)", 0, phase.elapsed());
    let mut buf = Vec::new();
    let mut copied_tables = Vec::new();
    for (spec, copy_sql, _, _) in &sql.tables {
        let mut expected = 0u64;
        buf.clear();
        for (ord, b) in todo.iter().enumerate() {
            let data = b.rows(spec.name);
            let rows = tag_rows(data, ord, &mut buf);
            let meta_rows = b.row_count(spec.name);
            if rows != meta_rows {
                return Err(Error::Other(format!(
                    "scope {scope}, page {}: table {} holds {rows} rows but its metadata says {meta_rows}; delete the batch directory and rerun transform",
                    b.meta.page, spec.name
                )));
            }
            expected += rows;
        }
        if expected == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into staging table {}", unit_pages(), spec.name);
        let mut w = tx.copy_in(copy_sql.as_str()).map_err(Error::db(ctx()))?;
        w.write_all(&buf)
            .map_err(|e| Error::Other(format!("{}: {e}", ctx())))?;
        let copied = w.finish().map_err(Error::db(ctx()))?;
        if copied != expected {
            return Err(Error::Other(format!(
                "{}: COPY reported {copied} rows, the batches hold {expected}",
                ctx()
            )));
        }
        copied_tables.push(spec.name);
        out.report.add_time("(copy)", copied, started.elapsed());
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
        .map_err(Error::db(format!(
            "{}: counting accepted issues",
            unit_pages()
        )))?;
    let acc: i64 = counts.get(0);
    let distinct_in: i64 = counts.get(1);
    let issue_rows: i64 = counts.get(2);
    let path = if acc == distinct_in && distinct_in == issue_rows {
        merge::Path::Fast
    } else {
        merge::Path::Full
    };
    out.report.add_time("(accepted)", 0, phase.elapsed());
    out.report.issues_accepted = acc as u64;
    out.report.issues_rejected_older = (distinct_in - acc).max(0) as u64;

    for (spec, _, fast, full) in &sql.tables {
        let merge_sql = match path {
            merge::Path::Fast => fast,
            merge::Path::Full => full,
        };
        let skip = !copied_tables.contains(&spec.name)
            && spec.merge != crate::tables::MergeMode::ReplacePerIssue;
        if skip {
            continue;
        }
        let started = Instant::now();
        let row = tx
            .query_one(merge_sql.as_str(), &[])
            .map_err(Error::db(format!(
                "{}: merging table {}",
                unit_pages(),
                spec.name
            )))?;
        let c = TableCounts {
            deleted: row.get::<_, i64>(0) as u64,
            inserted: row.get::<_, i64>(1) as u64,
            updated: row.get::<_, i64>(2) as u64,
        };
        out.report.add(spec.name, c);
        let rows_in: u64 = todo.iter().map(|b| b.row_count(spec.name)).sum();
        out.report.add_time(spec.name, rows_in, started.elapsed());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_every_line() {
        let mut out = Vec::new();
        assert_eq!(tag_rows(b"1\ta\n2\tb\n", 3, &mut out), 2);
        assert_eq!(out, b"1\ta\t3\n2\tb\t3\n");
        out.clear();
        assert_eq!(tag_rows(b"1\tlast-without-newline", 0, &mut out), 1);
        assert_eq!(out, b"1\tlast-without-newline\t0\n");
        out.clear();
        assert_eq!(tag_rows(b"", 0, &mut out), 0);
        assert!(out.is_empty());
    }
}
