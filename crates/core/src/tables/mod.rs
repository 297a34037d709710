//! The warehouse schema as data: one [`TableSpec`] per table — columns,
//! PostgreSQL types, nullability, defaults, primary key, secondary indexes and,
//! for the tables batches carry, the merge mode. It is the single description
//! of the schema:
//!
//! - the loader's temp-table DDL, COPY column lists and merge SQL are generated
//!   from it ([`crate::load::merge`]);
//! - the transform's table writers are bound to it: each row goes through a
//!   [`CopyRow`] made with [`CopyRow::of`], which in debug builds asserts that
//!   every value pushed fits its column's type and nullability and that a row
//!   has exactly the spec's column count;
//! - the migrations in `sql/` (which stay hand-written SQL: existing
//!   warehouses are migrated by them) are checked against it by a test that
//!   needs no database (`ddl_check.rs`: it parses the CREATE TABLE / ALTER
//!   TABLE ADD COLUMN / CREATE INDEX statements of every migration, in order,
//!   and compares names, types, nullability, defaults, keys and indexes);
//! - `schema_migrations`, which `pipeline db init` creates before any
//!   migration, is created from its spec ([`create_table`]);
//! - the SQL of the bookkeeping tables lives in [`crate::bookkeeping`], one
//!   module per table.
//!
//! Lists: [`ALL`] the tables a batch carries (load order), [`BOOKKEEPING`]
//! the pipeline's own state, [`SCHEMA`] both, in migration order.
//!
//! # Adding a table
//!
//! 1. A migration `sql/000N_<what>.sql` (`CREATE TABLE IF NOT EXISTS …`, its
//!    indexes), listed in [`crate::db::MIGRATIONS`].
//! 2. One `pub const` [`TableSpec`] here with the same columns, key and
//!    indexes, added to [`SCHEMA`] and — for a table batches carry — to
//!    [`ALL`] (parents first). The DDL test says what disagrees.
//! 3. For a table batches carry: its writer in the transform (a `T_<TABLE>`
//!    index in `transform/issue.rs`, and a function that writes its rows with
//!    `out.row(T_<TABLE>)`); staging DDL, COPY and merge follow from the spec.
//! 4. For a bookkeeping table: a module in [`crate::bookkeeping`] holding every
//!    statement about it.
//!
//! Rows travel in PostgreSQL's *text* COPY format (see [`CopyRow`], in
//! `copy.rs`): it is byte-for-byte what `COPY … FROM STDIN` reads, so the
//! loader streams staged batches into COPY with no per-value work; unlike
//! binary COPY it does not need exact OIDs per column, keeps batches readable
//! with `zstdcat`, and is compact for the short text values that dominate
//! Jira data.

mod copy;
#[cfg(test)]
mod ddl_check;

use std::fmt::Write as _;

pub use copy::{CopyRow, NUL_REPLACEMENT, decode_rows};

use crate::db::Ident;

/// PostgreSQL column types used by the warehouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    Int4,
    Int8,
    /// `bigserial`: a `bigint` fed by its own sequence.
    Bigserial,
    Float8,
    Bool,
    Text,
    Jsonb,
    Date,
    Timestamptz,
}

impl PgType {
    /// The type as `information_schema.columns.data_type` spells it (valid
    /// in DDL too, except that it loses `bigserial`'s sequence).
    pub fn sql(self) -> &'static str {
        match self {
            PgType::Int4 => "integer",
            PgType::Int8 | PgType::Bigserial => "bigint",
            PgType::Float8 => "double precision",
            PgType::Bool => "boolean",
            PgType::Text => "text",
            PgType::Jsonb => "jsonb",
            PgType::Date => "date",
            PgType::Timestamptz => "timestamp with time zone",
        }
    }

    /// The type in `CREATE TABLE`.
    pub(crate) fn ddl(self) -> &'static str {
        match self {
            PgType::Bigserial => "bigserial",
            PgType::Timestamptz => "timestamptz",
            t => t.sql(),
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub ty: PgType,
    /// Declared nullable (a primary key column is never null, whatever this says).
    pub nullable: bool,
    /// The `DEFAULT` expression, as SQL.
    pub default: Option<&'static str>,
}

const fn col(name: &'static str, ty: PgType) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        default: None,
    }
}

impl Column {
    /// Declared `NOT NULL`.
    pub const fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    /// `DEFAULT expr`.
    pub const fn default(mut self, expr: &'static str) -> Self {
        self.default = Some(expr);
        self
    }
}

/// A secondary index (not the primary key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Index {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    /// A partial index's `WHERE` predicate, as SQL.
    pub predicate: Option<&'static str>,
}

const fn idx(name: &'static str, columns: &'static [&'static str]) -> Index {
    Index {
        name,
        columns,
        predicate: None,
    }
}

impl Index {
    const fn filter(mut self, predicate: &'static str) -> Self {
        self.predicate = Some(predicate);
        self
    }
}

/// How incoming rows are merged into the target table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeMode {
    /// `issue`: upsert by key; a row whose `updated` is older than the stored one
    /// changes nothing; an identical row is not rewritten.
    IssueUpsert,
    /// Child rows: for every issue in the batch (that was accepted), the set of
    /// rows is replaced; unchanged rows are not rewritten. `issue_link` belongs to
    /// both its source and its target issue.
    ReplacePerIssue,
    /// Immutable history: inserted once by key, never updated.
    InsertOnce,
    /// Metadata (the field catalogue, dimensions): upsert by key, rewritten only when different.
    Upsert,
    /// Users: one row per key from every batch of the unit, each column the
    /// latest non-null value (`last_seen` the latest instant); upserted so a
    /// value seen replaces the stored one and a value not seen keeps it.
    Coalesce,
    /// Not carried by batches: the pipeline's own state, written only through
    /// [`crate::bookkeeping`].
    Bookkeeping,
}

/// A warehouse table: the single source of truth for its shape.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub columns: &'static [Column],
    /// Primary key columns, in order.
    pub key: &'static [&'static str],
    /// Secondary indexes.
    pub indexes: &'static [Index],
    pub merge: MergeMode,
}

impl TableSpec {
    /// Quoted column names joined with `, ` (for COPY and INSERT column lists).
    pub fn column_list(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{}", Ident::new(c.name));
        }
        s
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether column `i` may hold NULL: declared nullable and not part of the key.
    pub fn nullable(&self, i: usize) -> bool {
        self.columns
            .get(i)
            .is_some_and(|c| c.nullable && !self.key.contains(&c.name))
    }

    /// The table's name, quoted.
    pub fn ident(&self) -> Ident {
        Ident::new(self.name)
    }
}

/// `CREATE TABLE IF NOT EXISTS <schema>.<table> (…)` from the spec (columns,
/// types, NOT NULL, defaults, primary key), every identifier quoted.
pub(crate) fn create_table(schema: &Ident, spec: &TableSpec) -> String {
    let mut s = format!("CREATE TABLE IF NOT EXISTS {schema}.{} (", spec.ident());
    for c in spec.columns {
        let _ = write!(s, "\n    {} {}", Ident::new(c.name), c.ty.ddl());
        if !c.nullable {
            s.push_str(" NOT NULL");
        }
        if let Some(d) = c.default {
            let _ = write!(s, " DEFAULT {d}");
        }
        s.push(',');
    }
    let key: Vec<String> = spec.key.iter().map(|k| Ident::new(k).to_string()).collect();
    let _ = write!(s, "\n    PRIMARY KEY ({})\n)", key.join(", "));
    s
}

use PgType::*;

pub const ISSUE: TableSpec = TableSpec {
    name: "issue",
    columns: &[
        col("issue_id", Int8),
        col("issue_key", Text).not_null(),
        col("project_id", Int8),
        col("project_key", Text),
        col("issue_type", Text),
        col("status", Text),
        col("status_category", Text),
        col("priority", Text),
        col("resolution", Text),
        col("summary", Text),
        col("description", Text),
        col("assignee", Text),
        col("reporter", Text),
        col("creator", Text),
        col("created", Timestamptz),
        col("updated", Timestamptz),
        col("resolved", Timestamptz),
        col("due_date", Date),
        col("parent_id", Int8),
        col("deleted_at", Timestamptz),
        col("removed_reason", Text),
        col("scope", Text),
        col("assignee_key", Text),
        col("reporter_key", Text),
        col("creator_key", Text),
        col("status_id", Int8),
        col("priority_id", Int8),
        col("issue_type_id", Int8),
        col("resolution_id", Int8),
        col("original_estimate_seconds", Int8),
        col("remaining_estimate_seconds", Int8),
        col("time_spent_seconds", Int8),
        col("aggregate_original_estimate_seconds", Int8),
        col("aggregate_remaining_estimate_seconds", Int8),
        col("aggregate_time_spent_seconds", Int8),
    ],
    key: &["issue_id"],
    indexes: &[
        idx("issue_key_idx", &["issue_key"]),
        idx("issue_project_updated_idx", &["project_key", "updated"]),
        idx("issue_parent_idx", &["parent_id"]).filter("parent_id IS NOT NULL"),
    ],
    merge: MergeMode::IssueUpsert,
};

pub const ISSUE_LABEL: TableSpec = TableSpec {
    name: "issue_label",
    columns: &[col("issue_id", Int8), col("label", Text)],
    key: &["issue_id", "label"],
    indexes: &[idx("issue_label_label_idx", &["label"])],
    merge: MergeMode::ReplacePerIssue,
};

pub(crate) const ISSUE_COMPONENT: TableSpec = TableSpec {
    name: "issue_component",
    columns: &[
        col("issue_id", Int8),
        col("component_id", Int8),
        col("component_name", Text),
    ],
    key: &["issue_id", "component_id"],
    indexes: &[],
    merge: MergeMode::ReplacePerIssue,
};

pub(crate) const ISSUE_VERSION: TableSpec = TableSpec {
    name: "issue_version",
    columns: &[
        col("issue_id", Int8),
        col("version_id", Int8),
        col("relation", Text),
        col("version_name", Text),
        col("released", Bool),
        col("release_date", Date),
    ],
    key: &["issue_id", "version_id", "relation"],
    indexes: &[],
    merge: MergeMode::ReplacePerIssue,
};

pub(crate) const ISSUE_LINK: TableSpec = TableSpec {
    name: "issue_link",
    columns: &[
        col("link_id", Int8),
        col("source_issue_id", Int8).not_null(),
        col("target_issue_id", Int8).not_null(),
        col("source_issue_key", Text),
        col("target_issue_key", Text),
        col("link_type", Text),
        col("outward", Text),
        col("inward", Text),
    ],
    key: &["link_id"],
    indexes: &[
        idx("issue_link_source_idx", &["source_issue_id"]),
        idx("issue_link_target_idx", &["target_issue_id"]),
    ],
    merge: MergeMode::ReplacePerIssue,
};

pub(crate) const CHANGELOG: TableSpec = TableSpec {
    name: "changelog",
    columns: &[
        col("history_id", Int8),
        col("issue_id", Int8).not_null(),
        col("author", Text),
        col("created", Timestamptz),
    ],
    key: &["history_id"],
    indexes: &[idx("changelog_issue_idx", &["issue_id", "created"])],
    merge: MergeMode::InsertOnce,
};

pub(crate) const CHANGELOG_ITEM: TableSpec = TableSpec {
    name: "changelog_item",
    columns: &[
        col("history_id", Int8),
        col("item_seq", Int4),
        col("issue_id", Int8).not_null(),
        col("field", Text),
        col("field_type", Text),
        col("field_id", Text),
        col("from_value", Text),
        col("from_string", Text),
        col("to_value", Text),
        col("to_string", Text),
    ],
    key: &["history_id", "item_seq"],
    indexes: &[idx(
        "changelog_item_issue_field_idx",
        &["issue_id", "field"],
    )],
    merge: MergeMode::InsertOnce,
};

/// Typed custom field values. `value_kind` says which columns are set:
/// `number` → number_value; `string`/`text` → text_value; `datetime` →
/// timestamp_value; `date` → date_value; `option` → option_id + text_value (the
/// option's value); `user` → text_value (name) + user_key; `sprint` → option_id
/// (sprint id) + text_value (name) + sprint_state; `json` → json_value (any other
/// shape, kept as its JSON text).
pub(crate) const ISSUE_FIELD_VALUE: TableSpec = TableSpec {
    name: "issue_field_value",
    columns: &[
        col("issue_id", Int8),
        col("field_id", Text),
        col("ordinal", Int4),
        col("value_kind", Text).not_null(),
        col("text_value", Text),
        col("number_value", Float8),
        col("timestamp_value", Timestamptz),
        col("date_value", Date),
        col("option_id", Int8),
        col("user_key", Text),
        col("sprint_state", Text),
        col("json_value", Text),
    ],
    key: &["issue_id", "field_id", "ordinal"],
    indexes: &[idx("issue_field_value_field_idx", &["field_id"])],
    merge: MergeMode::ReplacePerIssue,
};

pub(crate) const FIELD: TableSpec = TableSpec {
    name: "field",
    columns: &[
        col("field_id", Text),
        col("name", Text),
        col("custom", Bool),
        col("schema_type", Text),
        col("schema_items", Text),
        col("schema_custom", Text),
        col("custom_id", Int8),
    ],
    key: &["field_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Where the incremental cursor of each scope stands. Moves only in the
/// transaction that loads the data it covers ([`crate::bookkeeping::checkpoint`]).
pub(crate) const CHECKPOINT: TableSpec = TableSpec {
    name: "checkpoint",
    columns: &[
        col("scope", Text),
        col("cursor", Timestamptz).not_null(),
        col("run_id", Text),
        col("updated_at", Timestamptz).not_null().default("now()"),
        col("fingerprint", Text),
    ],
    key: &["scope"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// Ledger of loaded pages: loading a page twice changes nothing
/// ([`crate::bookkeeping::page_ledger`]).
pub(crate) const PAGE_LEDGER: TableSpec = TableSpec {
    name: "page_ledger",
    columns: &[
        col("scope", Text).not_null(),
        col("page", Text).not_null(),
        col("run_id", Text).not_null(),
        col("issue_count", Int4).not_null(),
        col("row_count", Int8).not_null(),
        col("loaded_at", Timestamptz).not_null().default("now()"),
    ],
    key: &["scope", "page"],
    indexes: &[idx("page_ledger_run_idx", &["scope", "run_id"])],
    merge: MergeMode::Bookkeeping,
};

/// Issues that could not be transformed or loaded, with the reason
/// ([`crate::bookkeeping::quarantine`]).
pub(crate) const QUARANTINE: TableSpec = TableSpec {
    name: "quarantine",
    columns: &[
        col("scope", Text).not_null(),
        col("page", Text).not_null(),
        col("issue_key", Text).not_null().default("''"),
        col("reason", Text).not_null(),
        col("recorded_at", Timestamptz).not_null().default("now()"),
    ],
    key: &["scope", "page", "issue_key"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// One row per pipeline run ([`crate::bookkeeping::run_history`]).
pub(crate) const RUN_HISTORY: TableSpec = TableSpec {
    name: "run_history",
    columns: &[
        col("run_id", Bigserial),
        col("command", Text).not_null(),
        col("started_at", Timestamptz).not_null().default("now()"),
        col("ended_at", Timestamptz),
        col("outcome", Text),
        col("summary", Jsonb),
    ],
    key: &["run_id"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// The digest of the stored version of each issue, so the loader skips
/// unchanged issues before the COPY ([`crate::bookkeeping::issue_digest`]).
pub(crate) const ISSUE_DIGEST: TableSpec = TableSpec {
    name: "issue_digest",
    columns: &[col("issue_id", Int8), col("digest", Text)],
    key: &["issue_id"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// Secondary indexes dropped for a bulk first load, with their definitions
/// ([`crate::bookkeeping::deferred_index`]).
pub(crate) const DEFERRED_INDEX: TableSpec = TableSpec {
    name: "deferred_index",
    columns: &[col("index_name", Text), col("definition", Text).not_null()],
    key: &["index_name"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// The last complete census of each scope ([`crate::bookkeeping::census`]).
pub(crate) const CENSUS: TableSpec = TableSpec {
    name: "census",
    columns: &[
        col("scope", Text),
        col("started_at", Timestamptz).not_null(),
        col("finished_at", Timestamptz).not_null(),
        col("listed", Int8).not_null(),
        col("deleted", Int8).not_null(),
        col("out_of_scope", Int8).not_null(),
        col("moved", Int8).not_null(),
        col("revived", Int8).not_null(),
        col("requests", Int8).not_null(),
    ],
    key: &["scope"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// The migrations applied: created by `pipeline db init` from this spec
/// before any migration runs (see [`crate::db::init`]).
pub const SCHEMA_MIGRATIONS: TableSpec = TableSpec {
    name: "schema_migrations",
    columns: &[
        col("version", Int4),
        col("name", Text).not_null(),
        col("applied_at", Timestamptz).not_null().default("now()"),
    ],
    key: &["version"],
    indexes: &[],
    merge: MergeMode::Bookkeeping,
};

/// The versions of every project in scope, as Jira lists them now (from
/// `/rest/api/2/project/{key}/versions`, carried by each run's End page).
pub(crate) const PROJECT_VERSION: TableSpec = TableSpec {
    name: "project_version",
    columns: &[
        col("version_id", Int8),
        col("project_key", Text).not_null(),
        col("project_id", Int8),
        col("name", Text),
        col("description", Text),
        col("released", Bool),
        col("archived", Bool),
        col("release_date", Date),
        col("start_date", Date),
    ],
    key: &["version_id"],
    indexes: &[idx("project_version_project_idx", &["project_key"])],
    merge: MergeMode::Upsert,
};

/// The components of every project in scope, as Jira lists them now (from
/// `/rest/api/2/project/{key}/components`, carried by each run's End page).
pub(crate) const PROJECT_COMPONENT: TableSpec = TableSpec {
    name: "project_component",
    columns: &[
        col("component_id", Int8),
        col("project_key", Text).not_null(),
        col("project_id", Int8),
        col("name", Text),
        col("description", Text),
        col("lead_key", Text),
        col("lead_name", Text),
        col("assignee_type", Text),
    ],
    key: &["component_id"],
    indexes: &[idx("project_component_project_idx", &["project_key"])],
    merge: MergeMode::Upsert,
};

/// Every user the pipeline has seen, by user key: merged column by column
/// (a value seen replaces the stored one, a value not seen keeps it).
pub(crate) const JIRA_USER: TableSpec = TableSpec {
    name: "jira_user",
    columns: &[
        col("user_key", Text),
        col("user_name", Text),
        col("display_name", Text),
        col("email", Text),
        col("active", Bool),
        col("time_zone", Text),
        col("last_seen", Timestamptz),
    ],
    key: &["user_key"],
    indexes: &[],
    merge: MergeMode::Coalesce,
};

/// Statuses (`/rest/api/2/status`), with their category.
pub(crate) const STATUS: TableSpec = TableSpec {
    name: "status",
    columns: &[
        col("status_id", Int8),
        col("name", Text),
        col("category_key", Text),
        col("category_name", Text),
    ],
    key: &["status_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Priorities (`/rest/api/2/priority`).
pub(crate) const PRIORITY: TableSpec = TableSpec {
    name: "priority",
    columns: &[col("priority_id", Int8), col("name", Text)],
    key: &["priority_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Issue types (`/rest/api/2/issuetype`).
pub(crate) const ISSUE_TYPE: TableSpec = TableSpec {
    name: "issue_type",
    columns: &[
        col("issue_type_id", Int8),
        col("name", Text),
        col("subtask", Bool),
    ],
    key: &["issue_type_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Resolutions (`/rest/api/2/resolution`).
pub(crate) const RESOLUTION: TableSpec = TableSpec {
    name: "resolution",
    columns: &[col("resolution_id", Int8), col("name", Text)],
    key: &["resolution_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Projects (`/rest/api/2/project`).
pub(crate) const PROJECT: TableSpec = TableSpec {
    name: "project",
    columns: &[
        col("project_id", Int8),
        col("project_key", Text),
        col("name", Text),
        col("project_type", Text),
    ],
    key: &["project_id"],
    indexes: &[],
    merge: MergeMode::Upsert,
};

/// Time in status: an issue's stays in each status, from its changelog.
pub(crate) const ISSUE_STATUS_INTERVAL: TableSpec = TableSpec {
    name: "issue_status_interval",
    columns: &[
        col("issue_id", Int8),
        col("seq", Int4),
        col("status_id", Int8),
        col("status_name", Text),
        col("entered_at", Timestamptz),
        col("left_at", Timestamptz),
        col("seconds", Int8),
    ],
    key: &["issue_id", "seq"],
    indexes: &[],
    merge: MergeMode::ReplacePerIssue,
};

/// What each field of an issue held when, from its changelog.
pub(crate) const ISSUE_FIELD_HISTORY: TableSpec = TableSpec {
    name: "issue_field_history",
    columns: &[
        col("issue_id", Int8),
        col("field_id", Text),
        col("field_name", Text),
        col("seq", Int4),
        col("value", Text),
        col("value_display", Text),
        col("valid_from", Timestamptz),
        col("valid_to", Timestamptz),
    ],
    key: &["issue_id", "field_id", "seq"],
    indexes: &[],
    merge: MergeMode::ReplacePerIssue,
};

/// Every table a batch can carry, in load order (parents first).
pub const ALL: &[&TableSpec] = &[
    &FIELD,
    &PROJECT_VERSION,
    &PROJECT_COMPONENT,
    &STATUS,
    &PRIORITY,
    &ISSUE_TYPE,
    &RESOLUTION,
    &PROJECT,
    &JIRA_USER,
    &ISSUE,
    &ISSUE_LABEL,
    &ISSUE_COMPONENT,
    &ISSUE_VERSION,
    &ISSUE_LINK,
    &CHANGELOG,
    &CHANGELOG_ITEM,
    &ISSUE_FIELD_VALUE,
    &ISSUE_STATUS_INTERVAL,
    &ISSUE_FIELD_HISTORY,
];

/// Looks a table up by name.
pub fn by_name(name: &str) -> Option<&'static TableSpec> {
    ALL.iter().copied().find(|t| t.name == name)
}

/// The pipeline's own state, in migration order.
pub const BOOKKEEPING: &[&TableSpec] = &[
    &CHECKPOINT,
    &PAGE_LEDGER,
    &QUARANTINE,
    &RUN_HISTORY,
    &ISSUE_DIGEST,
    &DEFERRED_INDEX,
    &CENSUS,
];

/// Every table the migrations in `sql/` create, in migration order
/// ([`ALL`] and [`BOOKKEEPING`]; `schema_migrations` is not among them).
pub const SCHEMA: &[&TableSpec] = &[
    &ISSUE,
    &ISSUE_LABEL,
    &ISSUE_COMPONENT,
    &ISSUE_VERSION,
    &ISSUE_LINK,
    &CHANGELOG,
    &CHANGELOG_ITEM,
    &ISSUE_FIELD_VALUE,
    &FIELD,
    &CHECKPOINT,
    &PAGE_LEDGER,
    &QUARANTINE,
    &RUN_HISTORY,
    &ISSUE_DIGEST,
    &DEFERRED_INDEX,
    &CENSUS,
    &PROJECT_VERSION,
    &PROJECT_COMPONENT,
    &JIRA_USER,
    &STATUS,
    &PRIORITY,
    &ISSUE_TYPE,
    &RESOLUTION,
    &PROJECT,
    &ISSUE_STATUS_INTERVAL,
    &ISSUE_FIELD_HISTORY,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_indexes_are_columns() {
        for t in SCHEMA.iter().chain([&&SCHEMA_MIGRATIONS]) {
            for k in t.key {
                assert!(t.column(k).is_some(), "{}.{k}", t.name);
            }
            for i in t.indexes {
                for c in i.columns {
                    assert!(t.column(c).is_some(), "{}: {}.{c}", i.name, t.name);
                }
            }
        }
    }

    #[test]
    fn schema_is_all_and_bookkeeping() {
        let mut names: Vec<&str> = SCHEMA.iter().map(|t| t.name).collect();
        let mut parts: Vec<&str> = ALL.iter().chain(BOOKKEEPING).map(|t| t.name).collect();
        names.sort_unstable();
        parts.sort_unstable();
        assert_eq!(names, parts);
        assert!(ALL.iter().all(|t| t.merge != MergeMode::Bookkeeping));
        assert!(
            BOOKKEEPING
                .iter()
                .all(|t| t.merge == MergeMode::Bookkeeping)
        );
    }

    #[test]
    fn create_table_quotes_and_keeps_defaults() {
        let d = create_table(&Ident::new("s"), &SCHEMA_MIGRATIONS);
        assert_eq!(
            d,
            "CREATE TABLE IF NOT EXISTS \"s\".\"schema_migrations\" (\n    \"version\" integer,\n    \"name\" text NOT NULL,\n    \"applied_at\" timestamptz NOT NULL DEFAULT now(),\n    PRIMARY KEY (\"version\")\n)"
        );
    }
}
