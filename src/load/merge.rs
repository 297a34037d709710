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
//!   FROM` on every non-key column) are upserted; identical rows are never
//!   touched, so a no-op reload writes no tuple.
//! - [`MergeMode::ReplacePerIssue`]: the rows *owned* by an accepted issue are
//!   replaced: stored rows owned by it whose key is not incoming are deleted,
//!   new or changed rows are upserted, identical rows are left alone. The owner
//!   columns are `issue_id`, or for a table without one (`issue_link`) every
//!   `*_issue_id` column: a link belongs to both its source and its target.
//! - [`MergeMode::InsertOnce`]: `INSERT … ON CONFLICT DO NOTHING`.
//! - [`MergeMode::Upsert`]: latest batch wins per key; rewritten only when different.

use std::fmt::Write as _;

use crate::db::Ident;
use crate::tables::{MergeMode, TableSpec};

/// The batch-ordinal column of the staging tables.
pub const ORD: &str = "_b";

/// The accepted-issues temp table (issue id, winning batch, its `updated`).
pub const ACCEPTED: &str = "stg_accepted";

/// The column that orders versions of an issue.
pub const UPDATED: &str = "updated";

/// The staging table of a spec.
pub fn stg(spec: &TableSpec) -> String {
    format!("stg_{}", spec.name)
}

/// The schema-qualified target table.
pub fn target(schema: &Ident, spec: &TableSpec) -> String {
    format!("{schema}.{}", Ident::new(spec.name))
}

/// `CREATE TEMP TABLE stg_<t> (… , _b integer NOT NULL) ON COMMIT DROP`.
pub fn create_temp(spec: &TableSpec) -> String {
    let mut s = format!("CREATE TEMP TABLE {} (", stg(spec));
    for c in spec.columns {
        let _ = write!(s, "{} {}, ", c.name, c.ty.sql());
    }
    let _ = write!(s, "{ORD} integer NOT NULL) ON COMMIT DROP");
    s
}

/// `COPY stg_<t> (cols, _b) FROM STDIN` (text format).
pub fn copy_in(spec: &TableSpec) -> String {
    format!(
        "COPY {} ({}, {ORD}) FROM STDIN",
        stg(spec),
        spec.column_list()
    )
}

/// The columns that tie a row of a `ReplacePerIssue` table to its issue(s).
pub fn owner_columns(spec: &TableSpec) -> Vec<&'static str> {
    if spec.column("issue_id").is_some() {
        return vec!["issue_id"];
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

fn list(prefix: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("{prefix}{n}"))
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
        .map(|k| format!("{a}.{k} = {b}.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The statement that fills [`ACCEPTED`] from `stg_issue`: per issue, the
/// winning incoming version (latest `updated`, then latest batch), kept only
/// when the stored row is not newer. Run after the COPY, before any merge.
pub fn accepted(schema: &Ident, issue: &TableSpec) -> String {
    debug_assert_eq!(issue.merge, MergeMode::IssueUpsert);
    let k = issue.key[0];
    format!(
        "CREATE TEMP TABLE {ACCEPTED} ON COMMIT DROP AS
         SELECT w.{k} AS issue_id, w.{ORD}, w.{UPDATED}
           FROM (SELECT DISTINCT ON ({k}) {k}, {ORD}, {UPDATED} FROM {stg}
                  ORDER BY {k}, {UPDATED} DESC NULLS LAST, {ORD} DESC) w
           LEFT JOIN {t} t ON t.{k} = w.{k}
          WHERE t.{k} IS NULL OR t.{UPDATED} IS NULL OR w.{UPDATED} >= t.{UPDATED}",
        stg = stg(issue),
        t = target(schema, issue),
    )
}

/// The upsert tail shared by the modes: `chg` = rows of `src` that are new or
/// differ from the stored row; `up` = their upsert, returning `ins`.
fn upsert_ctes(schema: &Ident, spec: &TableSpec, guard: Option<&str>) -> String {
    let t = target(schema, spec);
    let cols = all_cols(spec);
    let nk = nonkey(spec);
    let key = spec.key.join(", ");
    let same = if nk.is_empty() {
        String::new()
    } else {
        format!(
            " AND ({}) IS NOT DISTINCT FROM ({})",
            list("t.", &nk),
            list("src.", &nk)
        )
    };
    let action = if nk.is_empty() {
        "DO NOTHING".to_string()
    } else {
        let set = nk
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        match guard {
            Some(g) => format!("DO UPDATE SET {set} WHERE {g}"),
            None => format!("DO UPDATE SET {set}"),
        }
    };
    format!(
        "chg AS (
           SELECT * FROM src WHERE NOT EXISTS (
             SELECT 1 FROM {t} t WHERE {keq}{same})
         ), up AS (
           INSERT INTO {t} AS t ({cl}) SELECT {cl} FROM chg
           ON CONFLICT ({key}) {action}
           RETURNING (t.xmax = 0) AS ins
         )",
        keq = key_eq(spec, "t", "src"),
        cl = list("", &cols),
    )
}

const COUNTS: &str = "count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up";

/// The merge statement of a table. It returns one row of three `bigint`s:
/// rows deleted, inserted, updated.
pub fn merge(schema: &Ident, spec: &TableSpec) -> String {
    let cols = all_cols(spec);
    let key = spec.key.join(", ");
    let st = stg(spec);
    match spec.merge {
        MergeMode::IssueUpsert => {
            let k = spec.key[0];
            format!(
                "WITH src AS (
                   SELECT DISTINCT ON (s.{k}) {scols} FROM {st} s
                     JOIN {ACCEPTED} a ON a.issue_id = s.{k} AND a.{ORD} = s.{ORD}
                    ORDER BY s.{k}
                 ), {ups}
                 SELECT 0::bigint, {COUNTS}",
                scols = list("s.", &cols),
                ups = upsert_ctes(
                    schema,
                    spec,
                    Some(&format!(
                        "t.{UPDATED} IS NULL OR EXCLUDED.{UPDATED} >= t.{UPDATED}"
                    ))
                ),
            )
        }
        MergeMode::ReplacePerIssue => {
            let owners = owner_columns(spec);
            let owned = owners
                .iter()
                .map(|o| {
                    format!(
                        "SELECT {scols}, s.{ORD}, a.{UPDATED} AS _ou FROM {st} s
                           JOIN {ACCEPTED} a ON a.issue_id = s.{o} AND a.{ORD} = s.{ORD}",
                        scols = list("s.", &cols)
                    )
                })
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            let owner_match = owners
                .iter()
                .map(|o| format!("d.{o} = a.issue_id"))
                .collect::<Vec<_>>()
                .join(" OR ");
            format!(
                "WITH src AS (
                   SELECT DISTINCT ON ({xkey}) {xcols} FROM ({owned}) x
                    ORDER BY {xkey}, x._ou DESC NULLS LAST, x.{ORD} DESC
                 ), del AS (
                   DELETE FROM {t} d USING {ACCEPTED} a
                    WHERE ({owner_match})
                      AND NOT EXISTS (SELECT 1 FROM src WHERE {keq})
                   RETURNING 1
                 ), {ups}
                 SELECT (SELECT count(*) FROM del), {COUNTS}",
                xkey = list("x.", spec.key),
                xcols = list("x.", &cols),
                t = target(schema, spec),
                keq = key_eq(spec, "src", "d"),
                ups = upsert_ctes(schema, spec, None),
            )
        }
        MergeMode::InsertOnce => format!(
            "WITH up AS (
               INSERT INTO {t} ({cl}) SELECT {cl} FROM {st}
               ON CONFLICT ({key}) DO NOTHING
               RETURNING true AS ins
             )
             SELECT 0::bigint, {COUNTS}",
            t = target(schema, spec),
            cl = list("", &cols),
        ),
        MergeMode::Upsert => format!(
            "WITH src AS (
               SELECT DISTINCT ON ({skey}) {scols} FROM {st} s
                ORDER BY {skey}, s.{ORD} DESC
             ), {ups}
             SELECT 0::bigint, {COUNTS}",
            skey = list("s.", spec.key),
            scols = list("s.", &cols),
            ups = upsert_ctes(schema, spec, None),
        ),
    }
}

/// Every table's generated SQL, built once per loader.
#[derive(Debug, Clone)]
pub struct UnitSql {
    /// All `CREATE TEMP TABLE` statements, `;`-separated.
    pub create_temps: String,
    pub accepted: String,
    /// `(table, COPY statement, merge statement)` in [`crate::tables::ALL`] order.
    pub tables: Vec<(&'static TableSpec, String, String)>,
    pub ledger_check: String,
    pub ledger_insert: String,
    pub ledger_run_count: String,
    pub checkpoint_get: String,
    pub checkpoint_set: String,
    pub quarantine_insert: String,
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
        UnitSql {
            create_temps: create,
            accepted: accepted(&s, &crate::tables::ISSUE),
            tables: crate::tables::ALL
                .iter()
                .map(|t| (*t, copy_in(t), merge(&s, t)))
                .collect(),
            ledger_check: format!(
                "SELECT page FROM {s}.page_ledger WHERE scope = $1 AND page = ANY($2)"
            ),
            ledger_insert: format!(
                "INSERT INTO {s}.page_ledger (scope, page, run_id, issue_count, row_count)
                 SELECT $1, p, r, i, n
                   FROM unnest($2::text[], $3::text[], $4::int4[], $5::int8[]) AS u(p, r, i, n)"
            ),
            ledger_run_count: format!(
                "SELECT count(*) FROM {s}.page_ledger WHERE scope = $1 AND run_id = $2 AND page <> $3"
            ),
            checkpoint_get: format!("SELECT cursor FROM {s}.checkpoint WHERE scope = $1"),
            checkpoint_set: format!(
                "INSERT INTO {s}.checkpoint AS c (scope, cursor, run_id) VALUES ($1, $2, $3)
                 ON CONFLICT (scope) DO UPDATE
                    SET cursor = GREATEST(c.cursor, EXCLUDED.cursor),
                        run_id = CASE WHEN EXCLUDED.cursor >= c.cursor THEN EXCLUDED.run_id ELSE c.run_id END,
                        updated_at = now()
                 RETURNING cursor"
            ),
            quarantine_insert: format!(
                "INSERT INTO {s}.quarantine (scope, page, issue_key, reason)
                 SELECT $1, p, k, r FROM unnest($2::text[], $3::text[], $4::text[]) AS u(p, k, r)
                 ON CONFLICT (scope, page, issue_key) DO UPDATE
                    SET reason = EXCLUDED.reason, recorded_at = now()"
            ),
        }
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
            "CREATE TEMP TABLE stg_issue_label (issue_id bigint, label text, _b integer NOT NULL) ON COMMIT DROP"
        );
        assert_eq!(
            copy_in(&tables::ISSUE_LABEL),
            "COPY stg_issue_label (issue_id, label, _b) FROM STDIN"
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
        for (_, _, m) in &sql.tables {
            assert!(m.contains("\"we\"\"ird\"."), "{m}");
        }
        assert!(sql.accepted.contains("\"we\"\"ird\".\"issue\""));
    }

    #[test]
    fn label_merge_does_nothing_on_conflict() {
        let m = merge(&Ident::new("s"), &tables::ISSUE_LABEL);
        assert!(m.contains("DO NOTHING"), "{m}");
        assert!(m.contains("DELETE FROM \"s\".\"issue_label\""), "{m}");
        let l = merge(&Ident::new("s"), &tables::ISSUE_LINK);
        assert!(
            l.contains("d.source_issue_id = a.issue_id OR d.target_issue_id = a.issue_id"),
            "{l}"
        );
    }
}
