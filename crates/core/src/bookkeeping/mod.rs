//! The pipeline's own state in the warehouse: every statement about each
//! bookkeeping table, one module per table. Their shapes are specs in
//! [`crate::tables`] ([`crate::tables::BOOKKEEPING`]); nothing outside this
//! module writes SQL about them.
//!
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
//! transaction) and the schema's name; the schema and table names enter the
//! SQL through [`crate::db::Ident`].

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
