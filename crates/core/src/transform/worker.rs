//! The page worker: one staged page → its table batch, or the page goes to
//! quarantine with the reason. Both `run --stage transform` (which writes
//! the batch to disk) and `run --stage all` (which hands it to the loader)
//! use it, so a page is read, checked, typed and quarantined the same way
//! whichever way it is transformed. It is `Sync`: [`PageWorker::prepare`]
//! and [`PageWorker::transform`] may run on many rayon threads at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::batch::Batch;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::staging::{self, PageMeta, PageRef, Staging};

use super::{Catalog, CatalogCache, Selection, transform_page_with};

/// The rayon pool of the transform stage (`threads` = 0: one per core).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("transform-{i}"))
        .build()
        .map_err(|e| Error::Other(format!("cannot start the transform threads: {e}")))
}

/// A page read from staging with what typing it needs.
pub(crate) struct PageJob {
    pub page: PageRef,
    pub meta: PageMeta,
    pub body: Vec<u8>,
    catalog: Arc<Catalog>,
    selection: Arc<Selection>,
}

/// What became of a page the worker was asked to prepare.
pub(crate) enum Prepared {
    /// Read and ready to transform.
    Ready(Box<PageJob>),
    /// Unreadable or misnamed: moved to quarantine.
    Quarantined,
    /// Gone from `pages/` but archived: loaded already, nothing to do.
    Archived,
}

/// See the module docs.
pub(crate) struct PageWorker<'a> {
    cfg: &'a Config,
    st: &'a Staging,
    catalogs: CatalogCache,
    /// Field selection per (scope, run id).
    selections: Mutex<HashMap<(String, String), Arc<Selection>>>,
}

impl<'a> PageWorker<'a> {
    pub fn new(cfg: &'a Config, st: &'a Staging) -> PageWorker<'a> {
        PageWorker {
            cfg,
            st,
            catalogs: CatalogCache::default(),
            selections: Mutex::new(HashMap::new()),
        }
    }

    /// Reads a staged page and resolves its run's field catalogue and the
    /// scope's field selection. A page that cannot be read, or whose
    /// metadata names another scope or page than its file, is quarantined.
    pub fn prepare(&self, p: &PageRef) -> Result<Prepared> {
        let path = self.st.page_path(&p.scope, &p.page);
        let (meta, body) = match staging::read_page(&path) {
            Ok(x) => x,
            Err(e @ Error::Staging { .. }) => return self.quarantine(p, e.to_string()),
            Err(Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound
                    && self.st.archived_path(&p.scope, &p.page).is_file() =>
            {
                tracing::debug!(scope = %p.scope, page = %p.page, "page loaded and archived already");
                return Ok(Prepared::Archived);
            }
            Err(e) => return Err(e),
        };
        if meta.scope != p.scope || meta.page_name() != p.page {
            return self.quarantine(
                p,
                format!(
                    "{}: the page metadata names scope {:?} page {:?}, but the file is staged as scope {:?} page {:?}",
                    path.display(),
                    meta.scope,
                    meta.page_name(),
                    p.scope,
                    p.page
                ),
            );
        }
        let scope = self.cfg.scope(&p.scope)?;
        let catalog = self.catalogs.get(self.st, &meta.run_id)?;
        let selection = {
            let mut m = self
                .selections
                .lock()
                .map_err(|_| Error::Other("selection cache poisoned".into()))?;
            m.entry((p.scope.clone(), meta.run_id.clone()))
                .or_insert_with(|| Arc::new(Selection::resolve(scope, &catalog)))
                .clone()
        };
        Ok(Prepared::Ready(Box::new(PageJob {
            page: p.clone(),
            meta,
            body,
            catalog,
            selection,
        })))
    }

    /// Transforms a prepared page. A page whose body cannot be transformed
    /// is quarantined (`None`); issues quarantined inside a good page are
    /// logged here and travel in the batch.
    pub fn transform(&self, job: Box<PageJob>) -> Result<Option<Batch>> {
        let PageJob {
            page: p,
            meta,
            mut body,
            catalog,
            selection,
        } = *job;
        match transform_page_with(&meta, &mut body, &catalog, &selection) {
            Ok(b) => {
                for q in &b.meta.quarantined {
                    tracing::warn!(scope = %p.scope, page = %p.page, issue = %q.key, reason = %q.reason, "issue quarantined");
                }
                Ok(Some(b))
            }
            Err(bad) => {
                let path = self.st.page_path(&p.scope, &p.page);
                self.quarantine(&p, format!("{}: {bad}", path.display()))?;
                Ok(None)
            }
        }
    }

    fn quarantine(&self, p: &PageRef, reason: String) -> Result<Prepared> {
        tracing::warn!(scope = %p.scope, page = %p.page, %reason, "page quarantined");
        self.st
            .quarantine_page(&p.scope, &p.page, &format!("{reason}\n"))?;
        Ok(Prepared::Quarantined)
    }
}
