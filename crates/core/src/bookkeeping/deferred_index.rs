//! The `deferred_index` table: secondary indexes a bulk first load dropped,
//! with their definitions, so that they are rebuilt when the load ends — or
//! by the next run if this one was killed.

use std::time::Instant;

use postgres::{Client, GenericClient};

use super::sql;
use crate::db::Ident;
use crate::error::{Error, Result};
use crate::tables::DEFERRED_INDEX;

/// Secondary indexes of the warehouse tables that a bulk first load may drop:
/// every index that is neither a primary key nor unique, except those the
/// merges reach the warehouse through (`issue_link`'s owner indexes; every
/// other merge goes by primary key).
const DEFERRABLE_INDEXES: &str = "
    SELECT c.relname::text, pg_get_indexdef(i.indexrelid)
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_class t ON t.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = $1
       AND t.relname = ANY($2)
       AND NOT i.indisprimary AND NOT i.indisunique
       AND t.relname <> 'issue_link'
     ORDER BY 1";

/// How many indexes are deferred (dropped and not rebuilt yet).
pub fn count(c: &mut impl GenericClient, schema: &str) -> Result<i64> {
    Ok(c.query_one(
        &sql(
            schema,
            &[&DEFERRED_INDEX],
            &[],
            "SELECT count(*) FROM {deferred_index}",
        ),
        &[],
    )
    .map_err(Error::db("bulk load: reading deferred_index"))?
    .get(0))
}

/// The names of the deferred indexes, sorted.
pub fn names(c: &mut impl GenericClient, schema: &str) -> Result<Vec<String>> {
    Ok(c.query(
        &sql(
            schema,
            &[&DEFERRED_INDEX],
            &[],
            "SELECT {index_name} FROM {deferred_index} ORDER BY 1",
        ),
        &[],
    )
    .map_err(Error::db("status: reading deferred_index"))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Drops the deferrable secondary indexes of `tables`, recording each
/// definition first (call it inside a transaction). Returns how many.
pub(crate) fn defer(c: &mut impl GenericClient, schema: &str, tables: &[&str]) -> Result<usize> {
    let s = Ident::new(schema);
    let rows = c
        .query(DEFERRABLE_INDEXES, &[&schema, &tables])
        .map_err(Error::db("bulk load: listing secondary indexes"))?;
    for r in &rows {
        let (name, def): (String, String) = (r.get(0), r.get(1));
        c.execute(
            &sql(
                schema,
                &[&DEFERRED_INDEX],
                &[],
                "INSERT INTO {deferred_index} ({index_name}, {definition}) VALUES ($1, $2)
                 ON CONFLICT ({index_name}) DO NOTHING",
            ),
            &[&name, &def],
        )
        .map_err(Error::db("bulk load: recording a deferred index"))?;
        c.batch_execute(&format!("DROP INDEX {s}.{}", Ident::new(&name)))
            .map_err(Error::db(format!("bulk load: dropping index {name}")))?;
    }
    Ok(rows.len())
}

/// Rebuilds every deferred index, each in its own transaction with its row
/// deleted (none: nothing to do).
pub(crate) fn rebuild_all(client: &mut Client, schema: &str) -> Result<()> {
    let s = Ident::new(schema);
    let rows = client
        .query(
            &sql(
                schema,
                &[&DEFERRED_INDEX],
                &[],
                "SELECT {index_name}, {definition} FROM {deferred_index} ORDER BY 1",
            ),
            &[],
        )
        .map_err(Error::db("reading deferred_index"))?;
    for r in &rows {
        let (name, def): (String, String) = (r.get(0), r.get(1));
        let started = Instant::now();
        let mut tx = client
            .transaction()
            .map_err(Error::db("rebuilding indexes: BEGIN"))?;
        // The definition comes from pg_get_indexdef; it may already exist
        // if an earlier rebuild committed and died before this row went.
        let exists: bool = tx
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&format!("{s}.{}", Ident::new(&name))],
            )
            .map_err(Error::db(format!("rebuilding index {name}")))?
            .get(0);
        if !exists {
            tx.batch_execute(&format!("SET LOCAL maintenance_work_mem = '256MB'; {def}"))
                .map_err(Error::db(format!("rebuilding index {name}")))?;
        }
        let delete = sql(
            schema,
            &[&DEFERRED_INDEX],
            &[],
            "DELETE FROM {deferred_index} WHERE {index_name} = $1",
        );
        tx.execute(&delete, &[&name])
            .map_err(Error::db(format!("rebuilding index {name}")))?;
        tx.commit()
            .map_err(Error::db(format!("rebuilding index {name}: COMMIT")))?;
        tracing::info!(index = %name, secs = started.elapsed().as_secs_f64(), "index rebuilt");
    }
    Ok(())
}
