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
        // New issues first, straight into the tables (inside a savepoint: if
        // a key turns out to be stored after all, rows left behind by a
        // hand-deleted issue row, everything takes the merge path instead).
        let mut direct = false;
        if plan.direct() {
            let mut sp = tx
                .savepoint("direct_load")
                .map_err(Error::db(format!("{}: SAVEPOINT", unit_pages())))?;
            let mut report = UnitReport::default();
            match load_direct(&mut sp, sql, &todo, &plan, &mut report, &unit_pages) {
                Ok(()) => {
                    sp.commit()
                        .map_err(Error::db(format!("{}: RELEASE SAVEPOINT", unit_pages())))?;
                    out.report.absorb(&report);
                    direct = true;
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
        // Then the merge: stored issues, links, the field catalogue.
        load_merged(
            &mut tx,
            sql,
            &todo,
            &plan,
            direct,
            &mut out.report,
            &unit_pages,
            hook,
        )?;
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
    /// Per batch (in unit order): issue ids whose rows are skipped because
    /// they are stored with the same digest.
    pub unchanged_skip: Vec<HashSet<i64>>,
    /// Per batch: what the direct COPY leaves out — unchanged and stored
    /// issues, and every version of a new issue but its winning one.
    pub direct_skip: Vec<HashSet<i64>>,
    /// Per batch: what the merge leaves out once the direct COPY is done —
    /// unchanged issues and new issues.
    pub merge_skip: Vec<HashSet<i64>>,
    /// Issues skipped as unchanged.
    pub unchanged: u64,
    /// Every version still to load: `(batch ordinal, issue id, digest)`.
    pub remaining: Vec<(i32, i64, Option<String>)>,
    /// New issues (not stored): their winning version `(batch ordinal,
    /// issue id, updated)` — latest `updated`, then latest page, as the merge
    /// would pick it.
    pub new_winners: Vec<(i32, i64, Option<DateTime<Utc>>)>,
    /// Some new issue has more than one version in the unit.
    pub new_repeated: bool,
}

impl UnitPlan {
    /// Some new issue goes straight into the tables.
    pub fn direct(&self) -> bool {
        !self.new_winners.is_empty()
    }

    fn digest_arrays(&self) -> (Vec<i64>, Vec<i32>, Vec<Option<String>>) {
        let ids = self.remaining.iter().map(|r| r.1).collect();
        let ords = self.remaining.iter().map(|r| r.0).collect();
        let digests = self.remaining.iter().map(|r| r.2.clone()).collect();
        (ids, ords, digests)
    }
}

/// Reads which of the unit's issues are stored and their digests, and decides
/// the skip sets (see [`UnitPlan`]). `replay` skips nothing and always merges.
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
    let n = todo.len();
    let mut plan = UnitPlan {
        unchanged_skip: vec![HashSet::new(); n],
        direct_skip: vec![HashSet::new(); n],
        merge_skip: vec![HashSet::new(); n],
        ..UnitPlan::default()
    };
    // New issue → index of its winning version in `new_winners`.
    let mut winner: HashMap<i64, usize> = HashMap::new();
    for (ord, b) in todo.iter().enumerate() {
        let o = i32::try_from(ord).unwrap_or(i32::MAX);
        for i in &b.meta.issues {
            let same =
                !replay && i.digest.is_some() && stored.get(&i.id).is_some_and(|d| *d == i.digest);
            if same {
                plan.unchanged_skip[ord].insert(i.id);
                plan.direct_skip[ord].insert(i.id);
                plan.merge_skip[ord].insert(i.id);
                plan.unchanged += 1;
                continue;
            }
            plan.remaining.push((o, i.id, i.digest.clone()));
            if replay || stored.contains_key(&i.id) {
                plan.direct_skip[ord].insert(i.id);
                continue;
            }
            plan.merge_skip[ord].insert(i.id);
            match winner.get(&i.id) {
                // A later page wins unless its version is older.
                Some(&w) if plan.new_winners[w].2 > i.updated => {
                    plan.new_repeated = true;
                    plan.direct_skip[ord].insert(i.id);
                }
                Some(&w) => {
                    plan.new_repeated = true;
                    let (old, _, _) = plan.new_winners[w];
                    plan.direct_skip[old as usize].insert(i.id);
                    plan.new_winners[w] = (o, i.id, i.updated);
                }
                None => {
                    winner.insert(i.id, plan.new_winners.len());
                    plan.new_winners.push((o, i.id, i.updated));
                }
            }
        }
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

/// One COPY of `data`, which holds `expected` rows; a server error raised
/// while streaming is reported as the database error (so a unique violation
/// is recognisable), and a row count other than `expected` is an error.
fn copy(
    tx: &mut postgres::Transaction<'_>,
    stmt: &str,
    data: &[u8],
    expected: u64,
    ctx: &dyn Fn() -> String,
) -> Result<u64> {
    let mut w = tx.copy_in(stmt).map_err(Error::db(ctx()))?;
    if let Err(e) = w.write_all(data) {
        return match w.finish() {
            Err(pe) => Err(Error::db(ctx())(pe)),
            Ok(_) => Err(Error::Other(format!("{}: {e}", ctx()))),
        };
    }
    let copied = w.finish().map_err(Error::db(ctx()))?;
    if copied != expected {
        return Err(Error::Other(format!(
            "{}: COPY reported {copied} rows, the batches hold {expected}; delete the unit's batch directories and rerun transform",
            ctx()
        )));
    }
    Ok(copied)
}

/// The batches' rows of one table, filtered by the plan's skip sets, with the
/// batch ordinal appended when `tag`; checks each batch's row count against
/// its metadata. Returns the rows kept.
fn gather(
    spec: &TableSpec,
    todo: &[&Batch],
    skips: &[HashSet<i64>],
    tag: bool,
    buf: &mut Vec<u8>,
) -> Result<u64> {
    buf.clear();
    let col = issue_col(spec);
    let mut kept = 0;
    for (ord, b) in todo.iter().enumerate() {
        let empty = HashSet::new();
        let skip = skips.get(ord).unwrap_or(&empty);
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

/// The direct part: the winning version of every new issue goes straight
/// into the tables keyed by issue, by COPY.
fn load_direct(
    tx: &mut postgres::Transaction<'_>,
    sql: &UnitSql,
    todo: &[&Batch],
    plan: &UnitPlan,
    report: &mut UnitReport,
    unit_pages: &dyn Fn() -> String,
) -> Result<()> {
    let mut buf = Vec::new();
    for (spec, _, _, _) in &sql.tables {
        if issue_col(spec).is_none() {
            continue;
        }
        let n = gather(spec, todo, &plan.direct_skip, false, &mut buf)?;
        if n == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into table {}", unit_pages(), spec.name);
        let copied = copy(tx, &sql.copy_direct(spec), &buf, n, &ctx)?;
        report.add(
            spec.name,
            TableCounts {
                inserted: copied,
                ..TableCounts::default()
            },
        );
        report.add_time("(direct copy)", copied, started.elapsed());
    }
    report.issues_accepted += plan.new_winners.len() as u64;
    Ok(())
}

/// The merge: every table's rows not skipped (with `direct`, new issues were
/// COPYed already and only stored issues, links and the field catalogue are
/// left) go into staging tables and are merged (see [`super::merge`]). The
/// new issues join [`merge::ACCEPTED`] just before the link merge, which runs
/// last, so their links are replaced like any accepted issue's.
#[allow(clippy::too_many_arguments)]
fn load_merged(
    tx: &mut postgres::Transaction<'_>,
    sql: &UnitSql,
    todo: &[&Batch],
    plan: &UnitPlan,
    direct: bool,
    report: &mut UnitReport,
    unit_pages: &dyn Fn() -> String,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<()> {
    let skips = if direct {
        &plan.merge_skip
    } else {
        &plan.unchanged_skip
    };
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
        let expected = gather(spec, todo, skips, true, &mut buf)?;
        if expected == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into staging table {}", unit_pages(), spec.name);
        let copied = copy(tx, copy_sql, &buf, expected, &ctx)?;
        copied_tables.push(spec.name);
        report.add_time("(copy)", copied, started.elapsed());
    }
    hook(HookPoint::AfterCopy);

    // Which incoming (merged) issues win: newest version, not older than stored.
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
    // The fast path takes the staged rows as they are: only when every issue
    // appears once (the links of a new issue's older version must not count).
    let once = !(direct && plan.new_repeated);
    let path = if once && acc == distinct_in && distinct_in == issue_rows {
        merge::Path::Fast
    } else {
        merge::Path::Full
    };
    report.add_time("(accepted)", 0, phase.elapsed());
    report.issues_accepted += acc as u64;
    report.issues_rejected_older += (distinct_in - acc).max(0) as u64;

    let link = crate::tables::ISSUE_LINK.name;
    let mut order: Vec<_> = sql.tables.iter().filter(|t| t.0.name != link).collect();
    order.extend(sql.tables.iter().filter(|t| t.0.name == link));
    for (spec, _, fast, full) in order {
        if spec.name == link && direct {
            tx.execute(
                &sql.accepted_add,
                &[
                    &plan.new_winners.iter().map(|w| w.1).collect::<Vec<i64>>(),
                    &plan.new_winners.iter().map(|w| w.0).collect::<Vec<i32>>(),
                    &plan
                        .new_winners
                        .iter()
                        .map(|w| w.2)
                        .collect::<Vec<Option<DateTime<Utc>>>>(),
                ],
            )
            .map_err(Error::db(format!(
                "{}: adding new issues to the accepted set",
                unit_pages()
            )))?;
        }
        let owns =
            spec.merge == MergeMode::ReplacePerIssue && (acc > 0 || (spec.name == link && direct));
        if !copied_tables.contains(&spec.name) && !owns {
            continue;
        }
        let stmt = match path {
            merge::Path::Fast => fast,
            merge::Path::Full => full,
        };
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

    fn set(ids: &[i64]) -> HashSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn plan_skips_unchanged_copies_new_winners_and_merges_the_rest() {
        let a = batch(
            "p1",
            &[(1, Some("d1")), (2, Some("d2")), (3, None), (4, Some("x"))],
        );
        let b = batch("p2", &[(4, Some("d4")), (5, Some("d5"))]);
        let stored: HashMap<i64, Option<String>> = [
            (1, Some("d1".to_string())),
            (2, Some("old".to_string())),
            (3, None),
        ]
        .into_iter()
        .collect();
        let p = decide(&[&a, &b], &stored, false);
        assert_eq!(p.unchanged, 1);
        assert_eq!(p.unchanged_skip, vec![set(&[1]), set(&[])]);
        // Direct: new issues only, each in its winning version (4: the later page).
        assert_eq!(p.direct_skip, vec![set(&[1, 2, 3, 4]), set(&[])]);
        // Merge: stored issues only.
        assert_eq!(p.merge_skip, vec![set(&[1, 4]), set(&[4, 5])]);
        assert_eq!(
            p.new_winners.iter().map(|w| (w.0, w.1)).collect::<Vec<_>>(),
            vec![(1, 4), (1, 5)]
        );
        assert!(p.direct() && p.new_repeated);
        assert_eq!(
            p.remaining.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
            vec![(0, 2), (0, 3), (0, 4), (1, 4), (1, 5)]
        );
        // Replay skips nothing and copies nothing directly.
        let p = decide(&[&a], &stored, true);
        assert_eq!((p.unchanged, p.remaining.len(), p.direct()), (0, 4, false));
        assert_eq!(p.direct_skip, vec![set(&[1, 2, 3, 4])]);
        // Only unchanged issues: nothing remains.
        let p = decide(&[&batch("p4", &[(1, Some("d1"))])], &stored, false);
        assert_eq!((p.unchanged, p.remaining.len(), p.direct()), (1, 0, false));
    }

    #[test]
    fn the_winner_of_a_new_issue_is_its_latest_version() {
        let t = |m: i64| Some(chrono::DateTime::<Utc>::from_timestamp(m * 60, 0).unwrap());
        let mut a = batch("p1", &[(7, Some("a"))]);
        a.meta.issues[0].updated = t(20);
        let mut b = batch("p2", &[(7, Some("b"))]);
        b.meta.issues[0].updated = t(10);
        let mut c = batch("p3", &[(7, Some("c"))]);
        c.meta.issues[0].updated = t(20);
        // p2 is older than p1; p3 ties p1 and is the later page: p3 wins.
        let p = decide(&[&a, &b, &c], &HashMap::new(), false);
        assert_eq!(p.new_winners, vec![(2, 7, t(20))]);
        assert_eq!(p.direct_skip, vec![set(&[7]), set(&[7]), set(&[])]);
        // Without p3, p1 stays the winner over the older p2.
        let p = decide(&[&a, &b], &HashMap::new(), false);
        assert_eq!(p.new_winners, vec![(0, 7, t(20))]);
        assert_eq!(p.direct_skip, vec![set(&[]), set(&[7])]);
    }
}
