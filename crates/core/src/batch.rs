//! Table batches: what transform makes of one page and load merges in one unit.
//!
//! In memory a [`Batch`] is the page's [`BatchMeta`] plus, per table, rows in
//! text COPY format (see [`crate::tables::CopyRow`]). On disk it is a directory
//! `staging/batches/<scope>/<page>/` holding `meta.json` and one
//! `<table>.copy.zst` per non-empty table; it is built under a temporary name
//! and renamed whole, so a batch directory either is complete or does not exist.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::staging::{self, BATCH_META, PageKind, Staging};
use crate::tables;

/// The version of one issue that a batch carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueVersion {
    pub id: i64,
    pub key: String,
    pub updated: Option<DateTime<Utc>>,
    /// xxh3-128 (hex) of every row the issue contributes to the batch except
    /// links: equal digests mean identical rows. Absent in batches written
    /// before digests existed (such issues are always merged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// The digest of one issue's rows: xxh3-128 (32 hex digits) over every
/// table's bytes, with the table's position and length, except `field` (not
/// per issue) and `issue_link` (a link between two issues of one page is
/// written by whichever comes first, so it is not the issue's own; the loader
/// never skips links). `parts` are `(table name, the issue's rows in it)`.
/// Equal digests mean byte-identical rows, which lets the loader skip an
/// unchanged issue before the COPY.
pub fn issue_digest<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (name, rows) in parts {
        if name == tables::FIELD.name || name == tables::ISSUE_LINK.name || rows.is_empty() {
            continue;
        }
        let pos = tables::ALL
            .iter()
            .position(|t| t.name == name)
            .unwrap_or(usize::MAX);
        h.update(&(pos as u64).to_le_bytes());
        h.update(&(rows.len() as u64).to_le_bytes());
        h.update(rows);
    }
    format!("{:032x}", h.digest128())
}

/// An issue left out of a batch because it could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedIssue {
    /// The issue key, or `#<index>` when the issue had no usable key.
    pub key: String,
    pub id: Option<i64>,
    pub reason: String,
}

/// Row count of one table in a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
}

/// Everything the loader needs to know about a batch besides its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub format: u32,
    pub scope: String,
    pub page: String,
    pub run_id: String,
    pub kind: PageKind,
    /// Issues present in the page (their children are replaced on load).
    pub issues: Vec<IssueVersion>,
    pub tables: Vec<TableCount>,
    /// `End` pages: the checkpoint proposed by the extract run.
    pub checkpoint: Option<DateTime<Utc>>,
    /// `End` pages: how many search pages the run staged.
    pub pages_in_run: Option<u64>,
    /// `End` pages: the fingerprint of the scope definition the run extracted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// What the page's issues told about the reporting model.
    #[serde(default)]
    pub notes: ModelNotes,
    pub quarantined: Vec<QuarantinedIssue>,
    /// Decompressed size of the source page body.
    pub source_bytes: u64,
}

/// Counts the transform reports about the reporting model of a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelNotes {
    /// Fields of the changelog whose name maps to no field or to several
    /// (their history is kept under `?<name>`), counted once per issue.
    pub unmapped_fields: u64,
    /// Issues whose changelog does not end in their current status.
    pub status_mismatches: u64,
}

impl std::ops::AddAssign for ModelNotes {
    fn add_assign(&mut self, o: Self) {
        self.unmapped_fields += o.unmapped_fields;
        self.status_mismatches += o.status_mismatches;
    }
}

/// A batch: metadata plus text-COPY rows per table, in [`tables::ALL`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub meta: BatchMeta,
    /// `(table name, text COPY bytes)`; tables without rows are omitted.
    pub data: Vec<(&'static str, Vec<u8>)>,
}

impl Batch {
    /// Rows of `table` (empty slice if none).
    pub fn rows(&self, table: &str) -> &[u8] {
        self.data
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, d)| d.as_slice())
            .unwrap_or(&[])
    }

    pub fn row_count(&self, table: &str) -> u64 {
        self.meta
            .tables
            .iter()
            .find(|t| t.table == table)
            .map(|t| t.rows)
            .unwrap_or(0)
    }

    pub fn total_rows(&self) -> u64 {
        self.meta.tables.iter().map(|t| t.rows).sum()
    }
}

/// Writes a batch directory atomically. If a complete batch for the page
/// already exists (a rerun after a crash), it is left as it is.
pub fn write_batch(st: &Staging, batch: &Batch) -> Result<PathBuf> {
    let m = &batch.meta;
    let final_dir = st.batch_dir(&m.scope, &m.page);
    if final_dir.join(BATCH_META).is_file() {
        return Ok(final_dir);
    }
    let parent = st.batches_dir(&m.scope);
    fs::create_dir_all(&parent).map_err(Error::io(&parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{}-", m.page))
        .tempdir_in(&parent)
        .map_err(Error::io(&parent))?;
    for (table, data) in &batch.data {
        let path = tmp.path().join(format!("{table}.copy.zst"));
        let compressed = zstd::bulk::compress(data, st.level).map_err(Error::io(&path))?;
        write_synced(&path, &compressed)?;
    }
    let meta_path = tmp.path().join(BATCH_META);
    let meta_json = serde_json::to_vec(m).map_err(|e| Error::Other(e.to_string()))?;
    write_synced(&meta_path, &meta_json)?;
    staging::sync_dir(tmp.path())?;
    if final_dir.exists() {
        // An incomplete leftover without meta.json: replace it.
        fs::remove_dir_all(&final_dir).map_err(Error::io(&final_dir))?;
    }
    let tmp_path = tmp.keep();
    fs::rename(&tmp_path, &final_dir).map_err(Error::io(&final_dir))?;
    staging::sync_dir(&parent)?;
    Ok(final_dir)
}

fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(path))?;
    staging::fault::point(staging::fault::Op::Write, path).map_err(Error::io(path))?;
    f.write_all(data).map_err(Error::io(path))?;
    staging::fault::point(staging::fault::Op::Sync, path).map_err(Error::io(path))?;
    f.sync_all().map_err(Error::io(path))
}

/// Reads a staged batch.
pub fn read_batch(st: &Staging, scope: &str, page: &str) -> Result<Batch> {
    let dir = st.batch_dir(scope, page);
    let meta_path = dir.join(BATCH_META);
    let raw = fs::read(&meta_path).map_err(Error::io(&meta_path))?;
    let meta: BatchMeta = serde_json::from_slice(&raw).map_err(|e| Error::Staging {
        path: meta_path.clone(),
        msg: format!(
            "batch metadata is not valid ({e}); delete the batch directory and rerun transform"
        ),
    })?;
    let mut data = Vec::new();
    for spec in tables::ALL {
        if !meta
            .tables
            .iter()
            .any(|t| t.table == spec.name && t.rows > 0)
        {
            continue;
        }
        let path = dir.join(format!("{}.copy.zst", spec.name));
        let rows = staging::read_zstd(&path).map_err(|e| Error::Staging {
            path: path.clone(),
            msg: match e {
                Error::Staging { msg, .. } => {
                    format!("{msg}; delete the batch directory and rerun transform")
                }
                other => format!("{other}; delete the batch directory and rerun transform"),
            },
        })?;
        data.push((spec.name, rows));
    }
    Ok(Batch { meta, data })
}

/// Removes a batch directory (after it was loaded).
/// Moves a loaded batch directory into the staging trash (one rename) and
/// returns where it went, for a background deletion; `None` if there was none.
pub(crate) fn trash_batch(st: &Staging, scope: &str, page: &str) -> Result<Option<PathBuf>> {
    let dir = st.batch_dir(scope, page);
    let trash = st.trash_dir();
    fs::create_dir_all(&trash).map_err(Error::io(&trash))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let to = trash.join(format!("{scope}--{page}--{}-{nanos}", std::process::id()));
    match fs::rename(&dir, &to) {
        Ok(()) => Ok(Some(to)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&dir)(e)),
    }
}

#[cfg(test)]
pub(crate) fn remove_batch(st: &Staging, scope: &str, page: &str) -> Result<()> {
    let dir = st.batch_dir(scope, page);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&dir)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let b = Batch {
            meta: BatchMeta {
                format: 1,
                scope: "s".into(),
                page: "r-s00000-p000000".into(),
                run_id: "r".into(),
                kind: PageKind::Search,
                issues: vec![IssueVersion {
                    id: 1,
                    key: "A-1".into(),
                    updated: Some(Utc::now()),
                    digest: Some(issue_digest([("issue", &b"1\tA-1\n"[..])])),
                }],
                tables: vec![TableCount {
                    table: "issue_label".into(),
                    rows: 1,
                }],
                checkpoint: None,
                pages_in_run: None,
                fingerprint: None,
                notes: Default::default(),
                quarantined: vec![],
                source_bytes: 10,
            },
            data: vec![("issue_label", b"1\tx\n".to_vec())],
        };
        write_batch(&st, &b).unwrap();
        assert_eq!(st.list_batches("s").unwrap(), vec![b.meta.page.clone()]);
        let back = read_batch(&st, "s", &b.meta.page).unwrap();
        assert_eq!(back, b);
        remove_batch(&st, "s", &b.meta.page).unwrap();
        write_batch(&st, &b).unwrap();
        let t = trash_batch(&st, "s", &b.meta.page).unwrap().unwrap();
        assert!(t.starts_with(st.trash_dir()) && t.join("meta.json").is_file());
        assert!(st.list_batches("s").unwrap().is_empty());
        assert!(trash_batch(&st, "s", &b.meta.page).unwrap().is_none());
        assert!(st.list_batches("s").unwrap().is_empty());
    }
}
