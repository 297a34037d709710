//! SQL generated from the table specs ([`crate::tables::TableSpec`]): the
//! temp-table DDL, the COPY statements and the merge statement of every table.
//! Nothing here is written per table by hand — one spec drives all, so the
//! staging tables, the COPY column lists and the merges cannot drift apart.
//!
//! Every staging table `stg_<table>` has the spec's columns plus [`ORD`], the
//! position of the row's batch inside the load unit (the loader appends it to
//! each COPY line). It lets the merge pick, for an issue that appears on two
//! pages of one unit, the rows of the page with the latest `updated`.
//!
//! The merges (each returns one row: deleted, inserted, updated):
//!
//! - [`MergeMode::IssueUpsert`]: `stg_accepted` holds, per incoming issue, the
//!   winning batch (latest `updated`, then latest page) when the stored row is
//!   not newer. Accepted rows that differ from the stored row (`IS DISTINCT
//!   FROM` on every non-key column) are written; identical rows are never
//!   touched, so a no-op reload writes no tuple.
//! - [`MergeMode::ReplacePerIssue`]: the rows *owned* by an accepted issue are
//!   replaced: stored rows owned by it whose key is not incoming are deleted,
//!   new or changed rows are written, identical rows are left alone. The owner
//!   columns are `issue_id`, or for a table without one (`issue_link`) every
//!   `*_issue_id` column: a link belongs to both its source and its target.
//! - [`MergeMode::InsertOnce`]: rows whose key is not stored are inserted.
//! - [`MergeMode::Upsert`]: latest batch wins per key; rewritten only when different.
//! - [`MergeMode::Coalesce`]: per key and column, the latest non-null value
//!   of the unit, else the stored one (`last_seen`: the latest); rewritten
//!   only when different.
//!
//! [`Path`]: when every incoming issue is accepted and appears once in the
//! unit (the usual case), the staging tables are used as they are; otherwise
//! rows come only from each accepted issue's winning batch.
//!
//! Every table and column name (the schema, the specs' names, the staging
//! tables, [`ORD`], [`ACCEPTED`]) enters the SQL through [`Ident`]; only the
//! statements' own aliases (`src`, `j`, `_tid`, …) are written bare.
//!
//! Access to the warehouse tables is always by index (the staging tables have
//! no statistics, and a plan that scans a whole warehouse table per unit makes
//! a backfill quadratic): per-row probes are `LATERAL … OFFSET 0` subqueries
//! on the primary key; tables keyed by `issue_id` first read the stored rows
//! of the unit's issues once with `issue_id = ANY(ARRAY(…))`; `issue_link`
//! finds the links of the unit's issues through its two owner indexes;
//! updates and deletes go by `ctid`. No merge needs any other secondary
//! index, so a bulk first load may defer them (see `Loader::prepare`). Writes are plain `INSERT`/`UPDATE`/`DELETE`: the loader holds
//! the schema's advisory lock, so no other writer races it.

use std::fmt::Write as _;

use crate::db::Ident;
use crate::tables::{MergeMode, TableSpec};

/// The column a [`MergeMode::Coalesce`] merge keeps the latest of.
const LAST_SEEN: &str = "last_seen";

/// The batch-ordinal column of the staging tables.
pub(crate) const ORD: &str = "_b";

/// The accepted-issues temp table (issue id, winning batch, its `updated`).
pub(crate) const ACCEPTED: &str = "stg_accepted";

/// The column that orders versions of an issue.
pub(crate) const UPDATED: &str = "updated";

/// The owner column of child tables, and the key of [`ACCEPTED`].
const ISSUE_ID: &str = "issue_id";

fn q(name: &str) -> Ident {
    Ident::new(name)
}

/// The staging table of a spec, quoted.
pub(crate) fn stg(spec: &TableSpec) -> Ident {
    Ident::new(&format!("stg_{}", spec.name))
}

/// The schema-qualified target table.
pub fn target(schema: &Ident, spec: &TableSpec) -> String {
    format!("{schema}.{}", spec.ident())
}

/// `CREATE TEMP TABLE stg_<t> (… , _b integer NOT NULL) ON COMMIT DROP`.
pub(crate) fn create_temp(spec: &TableSpec) -> String {
    let mut s = format!("CREATE TEMP TABLE {} (", stg(spec));
    for c in spec.columns {
        let _ = write!(s, "{} {}, ", q(c.name), c.ty.sql());
    }
    let _ = write!(s, "{} integer NOT NULL) ON COMMIT DROP", q(ORD));
    s
}

/// `COPY stg_<t> (cols, _b) FROM STDIN` (text format).
pub fn copy_in(spec: &TableSpec) -> String {
    format!(
        "COPY {} ({}, {}) FROM STDIN",
        stg(spec),
        spec.column_list(),
        q(ORD)
    )
}

/// The columns that tie a row of a `ReplacePerIssue` table to its issue(s).
pub(crate) fn owner_columns(spec: &TableSpec) -> Vec<&'static str> {
    if spec.column(ISSUE_ID).is_some() {
        return vec![ISSUE_ID];
    }
    spec.columns
        .iter()
        .map(|c| c.name)
        .filter(|n| n.ends_with("_issue_id"))
        .collect()
}

fn nonkey(spec: &TableSpec) -> Vec<&'static str> {
    spec.columns
        .iter()
        .map(|c| c.name)
        .filter(|n| !spec.key.contains(n))
        .collect()
}

/// `p.a, p.b` with every name quoted (`prefix` is an alias and its dot, or empty).
fn list(prefix: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{prefix}{}", q(n)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn all_cols(spec: &TableSpec) -> Vec<&'static str> {
    spec.columns.iter().map(|c| c.name).collect()
}

/// `a.k1 = b.k1 AND a.k2 = b.k2`
fn key_eq(spec: &TableSpec, a: &str, b: &str) -> String {
    spec.key
        .iter()
        .map(|k| format!("{a}.{k} = {b}.{k}", k = q(k)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `c1 = j.c1, c2 = j.c2` (an UPDATE's SET list).
fn set_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|c| format!("{c} = j.{c}", c = q(c)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The statement that fills [`ACCEPTED`] from `stg_issue`: per issue, the
/// winning incoming version (latest `updated`, then latest batch), kept only
/// when the stored row is not newer. Run after the COPY, before any merge.
pub fn accepted(schema: &Ident, issue: &TableSpec) -> String {
    debug_assert_eq!(issue.merge, MergeMode::IssueUpsert);
    let (k, ord, upd, id) = (q(issue.key[0]), q(ORD), q(UPDATED), q(ISSUE_ID));
    format!(
        "CREATE TEMP TABLE {acc} ON COMMIT DROP AS
         SELECT w.{k} AS {id}, w.{ord}, w.{upd}
           FROM (SELECT DISTINCT ON ({k}) {k}, {ord}, {upd} FROM {stg}
                  ORDER BY {k}, {upd} DESC NULLS LAST, {ord} DESC) w
           LEFT JOIN LATERAL (SELECT true AS present, t.{upd} FROM {t} t
                               WHERE t.{k} = w.{k} OFFSET 0) t ON true
          WHERE t.present IS NULL OR t.{upd} IS NULL OR w.{upd} >= t.{upd}",
        acc = q(ACCEPTED),
        stg = stg(issue),
        t = target(schema, issue),
    )
}

/// `$1` ids, `$2` batch ordinals, `$3` updated → rows of [`ACCEPTED`] (the
/// new issues COPYed directly).
pub(crate) fn accepted_add() -> String {
    format!(
        "INSERT INTO {} ({}, {}, {})
         SELECT * FROM unnest($1::int8[], $2::int4[], $3::timestamptz[])",
        q(ACCEPTED),
        q(ISSUE_ID),
        q(ORD),
        q(UPDATED)
    )
}

/// Which rows of a unit a merge reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// Every incoming issue is accepted and appears once in the unit: the
    /// staging table is the incoming set as it is (links, which both ends
    /// carry, are still deduplicated by key).
    Fast,
    /// Some issue is older than the stored row or appears on two pages: rows
    /// are taken only from each accepted issue's winning batch, and
    /// deduplicated by key (latest `updated`, then latest page).
    Full,
}

/// The incoming rows of a table, one per key, as a `SELECT` of the spec's columns.
fn source(spec: &TableSpec, path: Path) -> String {
    let cols = all_cols(spec);
    let (st, ord, acc) = (stg(spec), q(ORD), q(ACCEPTED));
    let scols = list("s.", &cols);
    let skey = list("s.", spec.key);
    let latest_batch =
        format!("SELECT DISTINCT ON ({skey}) {scols} FROM {st} s ORDER BY {skey}, s.{ord} DESC");
    match (spec.merge, path) {
        (MergeMode::IssueUpsert, Path::Fast) | (MergeMode::InsertOnce, Path::Fast) => {
            format!("SELECT {scols} FROM {st} s")
        }
        (MergeMode::IssueUpsert, Path::Full) => {
            let k = q(spec.key[0]);
            format!(
                "SELECT DISTINCT ON (s.{k}) {scols} FROM {st} s
                   JOIN {acc} a ON a.{id} = s.{k} AND a.{ord} = s.{ord}
                  ORDER BY s.{k}",
                id = q(ISSUE_ID)
            )
        }
        (MergeMode::ReplacePerIssue, Path::Fast) => {
            if owner_columns(spec) == [ISSUE_ID] {
                format!("SELECT {scols} FROM {st} s")
            } else {
                latest_batch
            }
        }
        (MergeMode::ReplacePerIssue, Path::Full) => owned_winners(spec),
        (MergeMode::InsertOnce, Path::Full) | (MergeMode::Upsert, _) => latest_batch,
        (MergeMode::Coalesce, _) => unreachable!("coalesce_source builds its source"),
        (MergeMode::Bookkeeping, _) => {
            unreachable!("table {} is not loaded from batches", spec.name)
        }
    }
}

/// The incoming rows of a [`MergeMode::Coalesce`] table (users), one per
/// key: each column the latest batch's non-null value, else the stored one
/// (`last_seen`: the latest of all); the stored row is read by its key.
fn coalesce_source(t: &str, spec: &TableSpec) -> String {
    let (st, ord) = (stg(spec), q(ORD));
    let nk = nonkey(spec);
    // Per column: how the unit's batches are folded, and how the fold
    // meets the stored value.
    let (agg, merged): (Vec<String>, Vec<String>) = nk
        .iter()
        .map(|name| {
            let c = q(name);
            if *name == LAST_SEEN {
                (
                    format!("max(s.{c}) AS {c}"),
                    format!("greatest(a.{c}, t.{c}) AS {c}"),
                )
            } else {
                (
                    format!("(array_agg(s.{c} ORDER BY s.{ord} DESC) FILTER (WHERE s.{c} IS NOT NULL))[1] AS {c}"),
                    format!("coalesce(a.{c}, t.{c}) AS {c}"),
                )
            }
        })
        .unzip();
    format!(
        "SELECT {akey}, {merged}
           FROM (SELECT {skey}, {agg} FROM {st} s GROUP BY {skey}) a
           LEFT JOIN LATERAL (SELECT {tnk} FROM {t} t WHERE {keq} OFFSET 0) t ON true",
        akey = list("a.", spec.key),
        skey = list("s.", spec.key),
        agg = agg.join(", "),
        merged = merged.join(", "),
        tnk = list("t.", &nk),
        keq = key_eq(spec, "t", "a"),
    )
}

/// The full path of a `ReplacePerIssue` table: the rows of each accepted
/// issue's winning batch, through every owner column, one per key (the
/// newest owner's, then the latest batch's).
fn owned_winners(spec: &TableSpec) -> String {
    let cols = all_cols(spec);
    let (st, ord, acc, upd, id) = (stg(spec), q(ORD), q(ACCEPTED), q(UPDATED), q(ISSUE_ID));
    let scols = list("s.", &cols);
    let owned = owner_columns(spec)
        .iter()
        .map(|o| {
            format!(
                "SELECT {scols}, s.{ord}, a.{upd} AS _ou FROM {st} s
                   JOIN {acc} a ON a.{id} = s.{o} AND a.{ord} = s.{ord}",
                o = q(o)
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    format!(
        "SELECT DISTINCT ON ({xkey}) {xcols} FROM ({owned}) x
          ORDER BY {xkey}, x._ou DESC NULLS LAST, x.{ord} DESC",
        xkey = list("x.", spec.key),
        xcols = list("x.", &cols),
    )
}

/// The merge statement of a table on a path. It returns one row of three
/// `bigint`s: rows deleted, inserted, updated.
///
/// One probe of the target per incoming row (`j`) classifies it as new,
/// changed or identical; new rows are inserted (plain INSERT: the caller holds
/// the schema's advisory lock, so no one else writes), changed rows are
/// updated by `ctid`, identical rows are not touched. `ReplacePerIssue` also
/// deletes the stored rows owned by an accepted issue whose key is not incoming.
///
/// The target is only ever reached through an index, whatever the planner
/// thinks of the (statistics-less) staging tables: the probe is a `LATERAL`
/// subquery fenced with `OFFSET 0` (a nested loop of index lookups), the
/// owned rows are found with `= ANY(ARRAY(…))` on the owner index, updates
/// go by `ctid`. A unit is small next to a grown table; a plan that scans the
/// whole table per unit would make a backfill quadratic.
pub fn merge(schema: &Ident, spec: &TableSpec, path: Path) -> String {
    if spec.merge == MergeMode::ReplacePerIssue
        && owner_columns(spec) == [ISSUE_ID]
        && spec.key.first() == Some(&ISSUE_ID)
    {
        return merge_owned(schema, spec, path);
    }
    let t = target(schema, spec);
    let nk = nonkey(spec);
    let compare = !nk.is_empty() && spec.merge != MergeMode::InsertOnce;
    let src = if spec.merge == MergeMode::Coalesce {
        coalesce_source(&t, spec)
    } else {
        source(spec, path)
    };
    let mut ctes = vec![
        format!("src AS ({src})"),
        probe_cte(&t, spec, compare),
        insert_cte(&t, spec),
    ];
    let mut counts = [
        "0::bigint".to_string(),
        "(SELECT count(*) FROM ins)".to_string(),
        "0::bigint".to_string(),
    ];
    if compare {
        ctes.push(update_cte(&t, &nk));
        counts[2] = "(SELECT count(*) FROM upd)".into();
    }
    if spec.merge == MergeMode::ReplacePerIssue {
        ctes.push(delete_unowned_cte(&t, spec, path));
        counts[0] = "(SELECT count(*) FROM del)".into();
    }
    format!("WITH {} SELECT {}", ctes.join(",\n"), counts.join(", "))
}

/// `j`: every incoming row with the `ctid` of its stored row (`_tid`, by a
/// key probe), whether it is new (`_new`) and, when `compare`, whether its
/// non-key columns differ from the stored ones (`_chg`).
fn probe_cte(t: &str, spec: &TableSpec, compare: bool) -> String {
    let nk = nonkey(spec);
    let (changed, probe_cols) = if compare {
        (
            format!(
                "t._tid IS NOT NULL AND ({}) IS DISTINCT FROM ({})",
                list("t.", &nk),
                list("src.", &nk)
            ),
            format!(", {}", list("t.", &nk)),
        )
    } else {
        ("false".to_string(), String::new())
    };
    format!(
        "j AS MATERIALIZED (
           SELECT src.*, t._tid, t._tid IS NULL AS _new, {changed} AS _chg
             FROM src LEFT JOIN LATERAL (
               SELECT t.ctid AS _tid{probe_cols} FROM {t} t WHERE {keq} OFFSET 0
             ) t ON true)",
        keq = key_eq(spec, "t", "src")
    )
}

/// `ins`: the rows of `j` marked `_new`.
fn insert_cte(t: &str, spec: &TableSpec) -> String {
    format!(
        "ins AS (INSERT INTO {t} ({cl}) SELECT {cl} FROM j WHERE _new RETURNING 1)",
        cl = list("", &all_cols(spec))
    )
}

/// `upd`: the stored rows of `j` marked `_chg`, rewritten by `ctid`.
fn update_cte(t: &str, nk: &[&str]) -> String {
    format!(
        "upd AS (UPDATE {t} t SET {set} FROM j
                  WHERE t.ctid = ANY (ARRAY(SELECT _tid FROM j WHERE _chg))
                    AND t.ctid = j._tid AND j._chg
                  RETURNING 1)",
        set = set_list(nk)
    )
}

/// `del`: stored rows owned by an accepted issue whose key is not incoming.
fn delete_unowned_cte(t: &str, spec: &TableSpec, path: Path) -> String {
    let owner_match = owner_columns(spec)
        .iter()
        .map(|o| {
            format!(
                "d.{} = ANY (ARRAY(SELECT {} FROM {}))",
                q(o),
                q(ISSUE_ID),
                q(ACCEPTED)
            )
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    // On the fast path the staging table is the incoming set.
    let incoming = match path {
        Path::Fast => stg(spec).to_string(),
        Path::Full => "src".to_string(),
    };
    // NOT IN over a subquery stays a hashed subplan (keys are never NULL).
    format!(
        "del AS (DELETE FROM {t} d
                  WHERE ({owner_match})
                    AND ({dkey}) NOT IN (SELECT {ikey} FROM {incoming} i)
                  RETURNING 1)",
        dkey = list("d.", spec.key),
        ikey = list("i.", spec.key),
    )
}

/// The merge of a `ReplacePerIssue` table whose key starts with its owner
/// (`issue_id`): the stored rows of the accepted issues are read once through
/// the key's index (`= ANY(ARRAY(…))` on its first column) and matched with
/// the incoming rows in one hash `FULL JOIN`: incoming only → insert, both
/// and different → update by `ctid`, stored only → delete by `ctid`. No
/// per-row probe, so an unchanged set costs one index range read.
fn merge_owned(schema: &Ident, spec: &TableSpec, path: Path) -> String {
    let t = target(schema, spec);
    let nk = nonkey(spec);
    let changed = if nk.is_empty() {
        "false".to_string()
    } else {
        format!(
            "({}) IS DISTINCT FROM ({})",
            list("cur.", &nk),
            list("src.", &nk)
        )
    };
    let mut ctes = vec![
        format!(
            "src AS (SELECT x.*, true AS _in FROM ({}) x)",
            source(spec, path)
        ),
        format!(
            "cur AS (SELECT t.ctid AS _tid, {tcols} FROM {t} t
                      WHERE t.{id} = ANY (ARRAY(SELECT {id} FROM {acc})))",
            tcols = list("t.", &all_cols(spec)),
            id = q(ISSUE_ID),
            acc = q(ACCEPTED),
        ),
        format!(
            "j AS MATERIALIZED (
               SELECT src.*, cur._tid,
                      src._in AND cur._tid IS NULL AS _new,
                      src._in AND cur._tid IS NOT NULL AND {changed} AS _chg,
                      src._in IS NULL AS _del
                 FROM src FULL JOIN cur ON {keq})",
            keq = key_eq(spec, "cur", "src")
        ),
        insert_cte(&t, spec),
        format!(
            "del AS (DELETE FROM {t} d
                      WHERE d.ctid = ANY (ARRAY(SELECT _tid FROM j WHERE _del))
                      RETURNING 1)"
        ),
    ];
    let mut upd = "0::bigint";
    if !nk.is_empty() {
        ctes.push(update_cte(&t, &nk));
        upd = "(SELECT count(*) FROM upd)";
    }
    format!(
        "WITH {} SELECT (SELECT count(*) FROM del), (SELECT count(*) FROM ins), {upd}",
        ctes.join(",\n")
    )
}

/// One table's generated statements.
#[derive(Debug, Clone)]
pub(crate) struct TableSql {
    pub spec: &'static TableSpec,
    /// `COPY` into its staging table.
    pub copy: String,
    /// The merge on [`Path::Fast`] and on [`Path::Full`].
    pub fast: String,
    pub full: String,
}

/// Every table's generated SQL, built once per loader.
#[derive(Debug, Clone)]
pub(crate) struct UnitSql {
    /// All `CREATE TEMP TABLE` statements, `;`-separated.
    pub create_temps: String,
    pub accepted: String,
    /// Per table, in [`crate::tables::ALL`] order.
    pub tables: Vec<TableSql>,
    /// Adds the new issues COPYed directly to [`ACCEPTED`]: `$1` ids, `$2`
    /// batch ordinals, `$3` updated.
    pub accepted_add: String,
    /// Counts `(accepted issues, distinct staged issues, staged issue rows)`.
    pub accepted_counts: String,
    schema: Ident,
}

impl UnitSql {
    pub fn new(schema: &str) -> Self {
        let s = Ident::new(schema);
        let mut create = crate::tables::ALL
            .iter()
            .map(|t| create_temp(t))
            .collect::<Vec<_>>()
            .join(";\n");
        create.push(';');
        let issue = &crate::tables::ISSUE;
        UnitSql {
            create_temps: create,
            accepted: accepted(&s, issue),
            tables: crate::tables::ALL
                .iter()
                .map(|t| TableSql {
                    spec: t,
                    copy: copy_in(t),
                    fast: merge(&s, t, Path::Fast),
                    full: merge(&s, t, Path::Full),
                })
                .collect(),
            accepted_add: accepted_add(),
            accepted_counts: format!(
                "SELECT (SELECT count(*) FROM {a}), (SELECT count(DISTINCT {id}) FROM {i}), (SELECT count(*) FROM {i})",
                a = q(ACCEPTED),
                id = q(issue.key[0]),
                i = stg(issue)
            ),
            schema: s,
        }
    }

    /// The warehouse schema's name (unquoted).
    pub fn schema(&self) -> &str {
        self.schema.raw()
    }

    /// `COPY <schema>.<table> (cols) FROM STDIN`: the direct path's COPY
    /// straight into a warehouse table.
    pub(crate) fn copy_direct(&self, spec: &TableSpec) -> String {
        format!(
            "COPY {} ({}) FROM STDIN",
            target(&self.schema, spec),
            spec.column_list()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables;

    #[test]
    fn temp_ddl_follows_the_spec() {
        let d = create_temp(&tables::ISSUE_LABEL);
        assert_eq!(
            d,
            r#"CREATE TEMP TABLE "stg_issue_label" ("issue_id" bigint, "label" text, "_b" integer NOT NULL) ON COMMIT DROP"#
        );
        assert_eq!(
            copy_in(&tables::ISSUE_LABEL),
            r#"COPY "stg_issue_label" ("issue_id", "label", "_b") FROM STDIN"#
        );
    }

    #[test]
    fn owners() {
        assert_eq!(owner_columns(&tables::ISSUE_LABEL), vec!["issue_id"]);
        assert_eq!(
            owner_columns(&tables::ISSUE_LINK),
            vec!["source_issue_id", "target_issue_id"]
        );
        for t in tables::ALL {
            if t.merge == MergeMode::ReplacePerIssue {
                assert!(!owner_columns(t).is_empty(), "{} has no owner", t.name);
            }
            if t.merge == MergeMode::IssueUpsert {
                assert!(t.column(UPDATED).is_some());
                assert_eq!(t.key.len(), 1);
            }
        }
    }

    #[test]
    fn schema_is_quoted_everywhere() {
        let sql = UnitSql::new("we\"ird");
        for t in &sql.tables {
            assert!(t.full.contains("\"we\"\"ird\"."), "{}", t.full);
            assert!(t.fast.contains("\"we\"\"ird\"."), "{}", t.fast);
        }
        assert!(sql.accepted.contains("\"we\"\"ird\".\"issue\""));
    }

    #[test]
    fn every_column_is_quoted() {
        let sql = UnitSql::new("s");
        for t in &sql.tables {
            for c in t.spec.columns {
                for stmt in [&t.copy, &t.fast, &t.full] {
                    let bare = format!(".{} ", c.name);
                    assert!(!stmt.contains(&bare), "{} unquoted in {stmt}", c.name);
                }
            }
        }
    }

    #[test]
    fn merge_shapes() {
        let m = merge(&Ident::new("s"), &tables::ISSUE_LABEL, Path::Full);
        assert!(!m.contains("upd AS"), "{m}");
        assert!(m.contains("DELETE FROM \"s\".\"issue_label\""), "{m}");
        let l = merge(&Ident::new("s"), &tables::ISSUE_LINK, Path::Fast);
        assert!(
            l.contains(r#"d."source_issue_id" = ANY (ARRAY(SELECT "issue_id" FROM "stg_accepted")) OR d."target_issue_id" = ANY"#),
            "{l}"
        );
    }
}
#[cfg(test)]
mod dump {
    /// Prints every generated statement, for reading and EXPLAINing:
    /// `cargo test --lib dump_sql -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn dump_sql() {
        let s = super::UnitSql::new("by");
        println!("{};", s.create_temps);
        println!("{};", s.accepted);
        for t in &s.tables {
            println!("-- {}\n{};\n-- full\n{};", t.copy, t.fast, t.full);
        }
    }
}
