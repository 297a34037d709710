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
use postgres::{Client, Transaction};

use super::merge::{self, UnitSql};
use super::{HookPoint, TableCounts, UnitReport};
use crate::batch::Batch;
use crate::bookkeeping;
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

/// The batches of a unit still to load, and what every phase needs to know.
struct Unit<'a> {
    sql: &'a UnitSql,
    scope: &'a str,
    /// Batches not in the ledger, in page order.
    todo: Vec<&'a Batch>,
    replay: bool,
}

impl Unit<'_> {
    fn schema(&self) -> &str {
        self.sql.schema()
    }

    /// `scope S, pages A..B`, for error messages.
    fn pages(&self) -> String {
        format!(
            "scope {}, pages {}..{}",
            self.scope,
            self.todo.first().map_or("", |b| b.meta.page.as_str()),
            self.todo.last().map_or("", |b| b.meta.page.as_str())
        )
    }
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
    let mut tx = begin(client, scope)?;
    let todo = skip_loaded(&mut tx, sql, scope, batches, replay, &mut out)?;
    if todo.is_empty() {
        tx.commit()
            .map_err(Error::db(format!("scope {scope}: COMMIT")))?;
        return Ok(out);
    }
    let u = Unit {
        sql,
        scope,
        todo,
        replay,
    };
    write_rows(&mut tx, &u, &mut out.report, hook)?;
    hook(HookPoint::AfterMerge);
    let phase = Instant::now();
    record_pages(&mut tx, &u, &mut out)?;
    out.report.quarantined += bookkeeping::quarantine::record(&mut tx, u.schema(), scope, &u.todo)?;
    for b in &u.todo {
        out.report.notes += b.meta.notes;
    }
    hook(HookPoint::BeforeCommit);
    tx.commit()
        .map_err(Error::db(format!("{}: COMMIT", u.pages())))?;
    out.report.add_time("(ledger+commit)", 0, phase.elapsed());
    Ok(out)
}

/// BEGIN, with the unit's session settings.
fn begin<'c>(client: &'c mut Client, scope: &str) -> Result<Transaction<'c>> {
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("scope {scope}: BEGIN of a load unit")))?;
    // Sorts, hashes and the merges' materialised joins stay in memory; no
    // JIT (the merges are short; compiling them costs more than it saves).
    tx.batch_execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        .map_err(Error::db(format!("scope {scope}: SET work_mem")))?;
    Ok(tx)
}

/// The batches whose pages are not in the ledger (all of them on replay);
/// the others count as skipped and done.
fn skip_loaded<'b>(
    tx: &mut Transaction<'_>,
    sql: &UnitSql,
    scope: &str,
    batches: &[&'b Batch],
    replay: bool,
    out: &mut Outcome,
) -> Result<Vec<&'b Batch>> {
    let seen: HashSet<String> = if replay {
        HashSet::new()
    } else {
        let pages: Vec<&str> = batches.iter().map(|b| b.meta.page.as_str()).collect();
        bookkeeping::page_ledger::loaded(tx, sql.schema(), scope, &pages)?
    };
    let mut todo = Vec::with_capacity(batches.len());
    for b in batches {
        if seen.contains(&b.meta.page) {
            tracing::debug!(scope, page = %b.meta.page, "page already loaded (in the ledger); skipping it");
            out.report.pages_skipped += 1;
            out.done_pages.push(b.meta.page.clone());
        } else {
            todo.push(*b);
        }
    }
    Ok(todo)
}

/// Plan → direct COPY of new issues → COPY and merge of the rest → digests.
fn write_rows(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    report: &mut UnitReport,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<()> {
    // Which incoming issues are stored, and which are unchanged (same digest).
    let phase = Instant::now();
    let plan = plan_unit(tx, u)?;
    report.add_time("(plan)", 0, phase.elapsed());
    report.issues_unchanged += plan.unchanged;

    // End pages: the field catalogue and the project dimensions.
    let catalogue = u.todo.iter().any(|b| {
        crate::tables::ALL
            .iter()
            .any(|t| t.merge == crate::tables::MergeMode::Upsert && b.row_count(t.name) > 0)
    });
    if plan.remaining.is_empty() && !catalogue {
        // Every issue of the unit is stored exactly as it arrives: nothing to
        // COPY or merge (links included: they are as their issues were).
        hook(HookPoint::AfterCopy);
        return Ok(());
    }
    let direct = plan.direct() && try_direct(tx, u, &plan, report)?;
    // Then the merge: stored issues, links, the catalogue and dimensions.
    load_merged(tx, u, &plan, direct, report, hook)?;
    // The digests of the versions taken.
    let phase = Instant::now();
    let (ids, ords, digests) = plan.digest_arrays();
    bookkeeping::issue_digest::record(tx, u.schema(), &ids, &ords, &digests, &|| u.pages())?;
    report.add_time("(digests)", 0, phase.elapsed());
    Ok(())
}

/// New issues first, straight into the tables, inside a savepoint: if a key
/// turns out to be stored after all (rows left behind by a hand-deleted
/// issue row), it is rolled back and everything takes the merge path.
/// Returns whether the direct load stands.
fn try_direct(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    plan: &UnitPlan,
    report: &mut UnitReport,
) -> Result<bool> {
    let mut sp = tx
        .savepoint("direct_load")
        .map_err(Error::db(format!("{}: SAVEPOINT", u.pages())))?;
    let mut direct = UnitReport::default();
    match load_direct(&mut sp, u, plan, &mut direct) {
        Ok(()) => {
            sp.commit()
                .map_err(Error::db(format!("{}: RELEASE SAVEPOINT", u.pages())))?;
            report.absorb(&direct);
            Ok(true)
        }
        Err(e) if is_unique_violation(&e) => {
            sp.rollback()
                .map_err(Error::db(format!("{}: ROLLBACK TO SAVEPOINT", u.pages())))?;
            tracing::warn!(
                "{}: a row of an issue not in the warehouse is stored already ({}); merging the unit instead",
                u.pages(),
                e.one_line()
            );
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The ledger: search pages first, so an End page in the same unit sees
/// them; then each End page, which moves the checkpoint when its run is
/// complete (see [`close_run`]).
fn record_pages(tx: &mut Transaction<'_>, u: &Unit<'_>, out: &mut Outcome) -> Result<()> {
    let search: Vec<&Batch> = u
        .todo
        .iter()
        .copied()
        .filter(|b| b.meta.kind == PageKind::Search)
        .collect();
    bookkeeping::page_ledger::record(tx, u.schema(), u.scope, &search)?;
    out.report.pages_loaded += search.len() as u64;
    out.done_pages
        .extend(search.iter().map(|b| b.meta.page.clone()));
    if u.replay {
        return Ok(());
    }
    for b in u.todo.iter().filter(|b| b.meta.kind == PageKind::End) {
        if close_run(tx, u, b, &mut out.report)? {
            bookkeeping::page_ledger::record(tx, u.schema(), u.scope, &[b])?;
            out.report.pages_loaded += 1;
            out.done_pages.push(b.meta.page.clone());
        } else {
            out.report.pages_deferred += 1;
        }
    }
    Ok(())
}

/// An End page: when every search page of its run is in the ledger, the
/// checkpoint moves to the run's proposal. Returns whether the End page is
/// done (complete, or stale: its proposal is not newer than the stored
/// checkpoint); otherwise it stays staged until the missing pages arrive.
fn close_run(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    end: &Batch,
    report: &mut UnitReport,
) -> Result<bool> {
    let (m, scope, schema) = (&end.meta, u.scope, u.schema());
    let loaded = bookkeeping::page_ledger::run_pages(tx, schema, scope, &m.run_id, &m.page)?;
    let need = m.pages_in_run.unwrap_or(0);
    let current = bookkeeping::checkpoint::get(tx, schema, scope)?;
    let complete = loaded >= 0 && loaded as u64 == need;
    let stale = match (m.checkpoint, current) {
        (Some(p), Some(c)) => p <= c,
        (None, _) => true,
        _ => false,
    };
    if complete {
        if let Some(proposed) = m.checkpoint {
            let cursor = bookkeeping::checkpoint::advance(
                tx,
                schema,
                scope,
                proposed,
                &m.run_id,
                m.fingerprint.as_deref(),
            )?;
            report.checkpoint = Some(cursor);
        }
        Ok(true)
    } else if stale {
        tracing::warn!(
            scope, run = %m.run_id, loaded, expected = need,
            "run is incomplete, but its proposed checkpoint is not newer than the stored one; closing it"
        );
        Ok(true)
    } else {
        tracing::warn!(
            scope, run = %m.run_id, loaded, expected = need,
            "run is incomplete ({loaded} of {need} search pages loaded): the checkpoint stays where it is and the End page stays staged until the missing pages are loaded; the next extract run re-reads them"
        );
        Ok(false)
    }
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
fn plan_unit(tx: &mut Transaction<'_>, u: &Unit<'_>) -> Result<UnitPlan> {
    let ids: Vec<i64> = u
        .todo
        .iter()
        .flat_map(|b| b.meta.issues.iter().map(|i| i.id))
        .collect();
    let stored = bookkeeping::issue_digest::stored(tx, u.schema(), u.scope, &ids)?;
    Ok(decide(&u.todo, &stored, u.replay))
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
    tx: &mut Transaction<'_>,
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
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    plan: &UnitPlan,
    report: &mut UnitReport,
) -> Result<()> {
    let mut buf = Vec::new();
    for t in &u.sql.tables {
        let spec = t.spec;
        if issue_col(spec).is_none() {
            continue;
        }
        let n = gather(spec, &u.todo, &plan.direct_skip, false, &mut buf)?;
        if n == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into table {}", u.pages(), spec.name);
        let copied = copy(tx, &u.sql.copy_direct(spec), &buf, n, &ctx)?;
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
/// left) go into staging tables ([`copy_to_staging`]), the accepted issues
/// are chosen ([`select_accepted`]) and every table is merged
/// ([`merge_tables`]).
fn load_merged(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    plan: &UnitPlan,
    direct: bool,
    report: &mut UnitReport,
    hook: &mut dyn FnMut(HookPoint),
) -> Result<()> {
    let skips = if direct {
        &plan.merge_skip
    } else {
        &plan.unchanged_skip
    };
    let copied = copy_to_staging(tx, u, skips, report)?;
    hook(HookPoint::AfterCopy);
    let accepted = select_accepted(tx, u, plan, direct, report)?;
    merge_tables(tx, u, plan, direct, &accepted, &copied, report)
}

/// Creates the staging tables and COPYs each table's rows not in `skips`
/// into its own; returns the tables that received rows.
fn copy_to_staging(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    skips: &[HashSet<i64>],
    report: &mut UnitReport,
) -> Result<Vec<&'static str>> {
    let phase = Instant::now();
    tx.batch_execute(&u.sql.create_temps)
        .map_err(Error::db(format!("{}: creating staging tables", u.pages())))?;
    report.add_time("(setup)", 0, phase.elapsed());
    let mut buf = Vec::new();
    let mut copied_tables = Vec::new();
    for t in &u.sql.tables {
        let expected = gather(t.spec, &u.todo, skips, true, &mut buf)?;
        if expected == 0 {
            continue;
        }
        let started = Instant::now();
        let ctx = || format!("{}: COPY into staging table {}", u.pages(), t.spec.name);
        let copied = copy(tx, &t.copy, &buf, expected, &ctx)?;
        copied_tables.push(t.spec.name);
        report.add_time("(copy)", copied, started.elapsed());
    }
    Ok(copied_tables)
}

/// The merged issues that win, and the merge path that follows.
struct Accepted {
    /// Issues in [`merge::ACCEPTED`] (before the direct ones join).
    count: i64,
    path: merge::Path,
}

/// Fills [`merge::ACCEPTED`]: per incoming (merged) issue its newest
/// version, when not older than the stored one; picks the merge path.
fn select_accepted(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    plan: &UnitPlan,
    direct: bool,
    report: &mut UnitReport,
) -> Result<Accepted> {
    let phase = Instant::now();
    tx.batch_execute(&u.sql.accepted)
        .map_err(Error::db(format!(
            "{}: selecting accepted issues",
            u.pages()
        )))?;
    let counts = tx
        .query_one(&u.sql.accepted_counts, &[])
        .map_err(Error::db(format!(
            "{}: counting accepted issues",
            u.pages()
        )))?;
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
    Ok(Accepted { count: acc, path })
}

/// Merges every table that received rows or owns rows of an accepted issue.
/// `issue_link` goes last: with `direct`, the new issues join
/// [`merge::ACCEPTED`] just before it, so their links are replaced like any
/// accepted issue's.
fn merge_tables(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    plan: &UnitPlan,
    direct: bool,
    accepted: &Accepted,
    copied: &[&str],
    report: &mut UnitReport,
) -> Result<()> {
    let link = crate::tables::ISSUE_LINK.name;
    let mut order: Vec<_> = u
        .sql
        .tables
        .iter()
        .filter(|t| t.spec.name != link)
        .collect();
    order.extend(u.sql.tables.iter().filter(|t| t.spec.name == link));
    for t in order {
        let spec = t.spec;
        if spec.name == link && direct {
            add_direct_to_accepted(tx, u, plan)?;
        }
        let owns = spec.merge == MergeMode::ReplacePerIssue
            && (accepted.count > 0 || (spec.name == link && direct));
        if !copied.contains(&spec.name) && !owns {
            continue;
        }
        let stmt = match accepted.path {
            merge::Path::Fast => &t.fast,
            merge::Path::Full => &t.full,
        };
        let rows_in: u64 = u.todo.iter().map(|b| b.row_count(spec.name)).sum();
        merge_table(tx, u, spec, stmt, rows_in, report)?;
    }
    Ok(())
}

/// Adds the new issues COPYed directly to [`merge::ACCEPTED`].
fn add_direct_to_accepted(tx: &mut Transaction<'_>, u: &Unit<'_>, plan: &UnitPlan) -> Result<()> {
    let w = &plan.new_winners;
    let ids: Vec<i64> = w.iter().map(|w| w.1).collect();
    let ords: Vec<i32> = w.iter().map(|w| w.0).collect();
    let updated: Vec<Option<DateTime<Utc>>> = w.iter().map(|w| w.2).collect();
    tx.execute(&u.sql.accepted_add, &[&ids, &ords, &updated])
        .map_err(Error::db(format!(
            "{}: adding new issues to the accepted set",
            u.pages()
        )))?;
    Ok(())
}

/// Runs one table's merge statement and records its counts and time.
fn merge_table(
    tx: &mut Transaction<'_>,
    u: &Unit<'_>,
    spec: &TableSpec,
    stmt: &str,
    rows_in: u64,
    report: &mut UnitReport,
) -> Result<()> {
    let started = Instant::now();
    let row = tx.query_one(stmt, &[]).map_err(Error::db(format!(
        "{}: merging table {}",
        u.pages(),
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
                fingerprint: None,
                notes: Default::default(),
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
