//! The pipeline's own state in the warehouse: every statement about each
//! bookkeeping table, one module per table. Their shapes are specs in
//! [`crate::tables`] ([`crate::tables::BOOKKEEPING`]); nothing outside this
//! module writes SQL about them.
//!
//! - [`census`]: the last census of each scope, and its marks on `issue`.
//! - [`checkpoint`]: where each scope's incremental cursor stands (read by
//!   extract and status, advanced by the loader's End pages).
//! - [`page_ledger`]: the pages loaded (exactly-once loading).
//! - [`quarantine`]: issues transform could not turn into rows.
//! - [`run_history`]: one row per run (`pipeline status` shows the last).
//! - [`issue_digest`]: the digest of each stored issue version (the loader
//!   skips unchanged issues).
//! - [`deferred_index`]: secondary indexes a bulk first load dropped, and
//!   their rebuild.
//!
//! Functions take any [`postgres::GenericClient`] (a client or an open
//! transaction) and the schema's name. Statements are written as templates
//! ([`sql`]) whose every table and column name enters the SQL through
//! [`crate::db::Ident`] and is checked against the specs in debug builds.

pub mod census;
pub mod checkpoint;
pub mod deferred_index;
pub mod issue_digest;
pub mod page_ledger;
pub mod quarantine;
pub mod run_history;

use crate::db::Ident;
use crate::tables::TableSpec;

/// `"schema"."table"`.
fn table(schema: &str, spec: &TableSpec) -> String {
    format!("{}.{}", Ident::new(schema), spec.ident())
}

/// Renders a statement template: `{name}` becomes `"schema"."name"` when a
/// listed spec is that table, and the quoted identifier when it is a column
/// of a listed spec or one of `extra` (working tables such as
/// `stg_accepted`); `{}` is copied as is. A name none of them has is a bug:
/// debug builds (every test) panic on it.
fn sql(schema: &str, specs: &[&TableSpec], extra: &[&str], template: &str) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        if let Some(spec) = specs.iter().find(|s| s.name == name) {
            out.push_str(&table(schema, spec));
        } else if name.is_empty() {
            out.push_str("{}");
        } else {
            debug_assert!(
                specs.iter().any(|s| s.column(name).is_some()) || extra.contains(&name),
                "bookkeeping SQL names {name:?}, which no listed spec has: {template}"
            );
            out.push_str(&Ident::new(name).to_string());
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::CHECKPOINT;

    #[test]
    fn templates_quote_every_name() {
        let q = sql(
            "jira",
            &[&CHECKPOINT],
            &[],
            "SELECT {cursor} FROM {checkpoint} WHERE {scope} = $1 AND x = '{}'",
        );
        assert_eq!(
            q,
            "SELECT \"cursor\" FROM \"jira\".\"checkpoint\" WHERE \"scope\" = $1 AND x = '{}'"
        );
    }

    #[test]
    #[should_panic(expected = "no listed spec has")]
    fn a_name_the_spec_lacks_is_caught() {
        sql(
            "jira",
            &[&CHECKPOINT],
            &[],
            "SELECT {cursr} FROM {checkpoint}",
        );
    }
}
