//! The staging area on disk: its layout, atomic writes, and the page and batch
//! file formats shared by extract, transform, load and replay.
//!
//! ```text
//! staging/
//!   pages/<scope>/<page>.ndjson.zst      staged Jira responses, waiting for transform
//!   batches/<scope>/<page>/<table>.copy.zst + meta.json
//!                                        table-shaped rows, waiting for load
//!   archive/<scope>/<page>.ndjson.zst    loaded pages, kept for replay
//!   quarantine/<scope>/<page>.ndjson.zst + <page>.reason.txt
//!   catalog/<run_id>.field.json.zst      the field catalogue of each extract run
//!   state/                               extractor progress (resume after a crash)
//! ```
//!
//! A page file is zstd-compressed; its first line is a JSON [`PageMeta`], the rest
//! is the response body exactly as Jira sent it. Page names sort in load order:
//! `<run_id>-s<slice>-p<seq>` for search pages, `<run_id>-zend` for the page that
//! closes a run and carries its proposed checkpoint.
//!
//! Every file is written to a temporary name in the same directory, fsynced, and
//! renamed into place; a batch is a directory built under a temporary name and
//! renamed whole. Files are created with mode 0600 (issue data is confidential).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What kind of response a page holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// A `/rest/api/2/search` response.
    Search,
    /// No body: closes an extract run of one scope and proposes its checkpoint.
    End,
}

/// The metadata line at the top of every page file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageMeta {
    /// Format version of this header (1).
    pub format: u32,
    pub kind: PageKind,
    pub scope: String,
    /// The extract run that wrote it: `YYYYMMDDTHHMMSSmmmZ` of the run's start.
    pub run_id: String,
    /// `backfill` or `incremental`.
    pub mode: String,
    pub slice: u32,
    pub seq: u32,
    /// The JQL sent.
    pub jql: String,
    pub start_at: u64,
    pub max_results: u32,
    /// Issues in the body.
    pub issue_count: u32,
    /// `total` as Jira reported it (never trusted for completeness).
    pub total: Option<u64>,
    /// `updated` of the first and last issue, as Jira wrote them.
    pub first_updated: Option<String>,
    pub last_updated: Option<String>,
    pub fetched_at: DateTime<Utc>,
    /// Jira's `X-AREQUESTID`, when sent.
    pub request_id: Option<String>,
    pub http_status: u16,
    /// `End` pages: the checkpoint the run proposes for the loader.
    pub checkpoint: Option<DateTime<Utc>>,
    /// `End` pages: how many search pages the run staged for this scope.
    pub pages_in_run: Option<u64>,
    /// `End` pages: the fingerprint of the scope definition the run
    /// extracted (see `extract::fingerprint`); the checkpoint carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Documents appended to the body, in order, each with its length:
    /// issues fetched alone because the search cut their changelog
    /// (`issue:<id>`, after a search response), and the project's
    /// `versions:<KEY>` and `components:<KEY>` (in an `End` page).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<ExtraDoc>,
}

/// One document appended to a page's body (see [`PageMeta::extra`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraDoc {
    /// What it is: `issue:<id>`, `versions:<KEY>`, `components:<KEY>`.
    pub what: String,
    pub bytes: u64,
}

/// Splits a page's body into the Jira response and the documents appended
/// to it ([`PageMeta::extra`]): `body` keeps the response, the documents
/// are returned in order. A body shorter than its documents is a corrupt page.
pub fn split_extra(
    meta: &PageMeta,
    body: &mut Vec<u8>,
) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    if meta.extra.is_empty() {
        return Ok(Vec::new());
    }
    let total: u64 = meta.extra.iter().map(|d| d.bytes).sum();
    let Some(main) = (body.len() as u64).checked_sub(total) else {
        return Err(format!(
            "the page is truncated: its {} appended documents need {total} bytes, the body has {}",
            meta.extra.len(),
            body.len()
        ));
    };
    let mut rest = body.split_off(main as usize);
    let mut out = Vec::with_capacity(meta.extra.len());
    for d in meta.extra.iter().rev() {
        let doc = rest.split_off(rest.len() - d.bytes as usize);
        out.push((d.what.clone(), doc));
    }
    out.reverse();
    Ok(out)
}

impl PageMeta {
    /// The page's file stem, which sorts in load order.
    pub fn page_name(&self) -> String {
        match self.kind {
            PageKind::Search => page_name(&self.run_id, self.slice, self.seq),
            PageKind::End => end_page_name(&self.run_id),
        }
    }
}

pub fn page_name(run_id: &str, slice: u32, seq: u32) -> String {
    format!("{run_id}-s{slice:05}-p{seq:06}")
}

pub fn end_page_name(run_id: &str) -> String {
    format!("{run_id}-zend")
}

/// The metadata of a synthetic search page `seq` of `n` issues (scope `scope`,
/// run `20240101T000000000Z`): benchmarks and tests stage generated pages with it.
pub fn search_meta(scope: &str, seq: u32, n: u32) -> PageMeta {
    use chrono::TimeZone as _;
    PageMeta {
        format: 1,
        kind: PageKind::Search,
        scope: scope.into(),
        run_id: "20240101T000000000Z".into(),
        mode: "backfill".into(),
        slice: 0,
        seq,
        jql: String::new(),
        start_at: u64::from(seq) * u64::from(n),
        max_results: n,
        issue_count: n,
        total: None,
        first_updated: None,
        last_updated: None,
        fetched_at: Utc
            .timestamp_opt(1_704_067_200, 0)
            .single()
            .unwrap_or_default(),
        request_id: None,
        http_status: 200,
        checkpoint: None,
        pages_in_run: None,
        fingerprint: None,
        extra: Vec::new(),
    }
}

/// A run id for a run starting at `t`; sorts chronologically.
pub fn run_id(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%3fZ").to_string()
}

pub const PAGE_EXT: &str = ".ndjson.zst";
pub(crate) const BATCH_META: &str = "meta.json";

/// The staging area rooted at a directory.
#[derive(Debug, Clone)]
pub struct Staging {
    pub root: PathBuf,
    pub level: i32,
}

impl Staging {
    pub fn new(root: impl Into<PathBuf>, level: i32) -> Self {
        Staging {
            root: root.into(),
            level,
        }
    }

    pub fn pages_dir(&self, scope: &str) -> PathBuf {
        self.root.join("pages").join(scope)
    }
    pub fn page_path(&self, scope: &str, page: &str) -> PathBuf {
        self.pages_dir(scope).join(format!("{page}{PAGE_EXT}"))
    }
    pub fn batches_dir(&self, scope: &str) -> PathBuf {
        self.root.join("batches").join(scope)
    }
    pub fn batch_dir(&self, scope: &str, page: &str) -> PathBuf {
        self.batches_dir(scope).join(page)
    }
    pub fn archive_dir(&self, scope: &str) -> PathBuf {
        self.root.join("archive").join(scope)
    }
    pub fn quarantine_dir(&self, scope: &str) -> PathBuf {
        self.root.join("quarantine").join(scope)
    }
    pub fn catalog_path(&self, run_id: &str) -> PathBuf {
        self.root
            .join("catalog")
            .join(format!("{run_id}.field.json.zst"))
    }
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    /// Batch directories already loaded, renamed here to be deleted in the
    /// background (deleting many small files is slow on some file systems;
    /// a rename is not). Anything here may be deleted at any time.
    pub fn trash_dir(&self) -> PathBuf {
        self.root.join("trash")
    }

    /// Page names (stems) in a scope's pages directory, sorted (load order).
    pub fn list_pages(&self, scope: &str) -> Result<Vec<String>> {
        list_with_ext(&self.pages_dir(scope), PAGE_EXT)
    }

    /// Page names in a scope's archive, sorted.
    pub fn list_archived(&self, scope: &str) -> Result<Vec<String>> {
        list_with_ext(&self.archive_dir(scope), PAGE_EXT)
    }

    /// Complete batches (directories with a meta file) of a scope, sorted.
    pub fn list_batches(&self, scope: &str) -> Result<Vec<String>> {
        let dir = self.batches_dir(scope);
        let mut out = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(&dir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(Error::io(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if entry.path().join(BATCH_META).is_file() {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Writes a page file atomically: meta line, then the raw body, zstd-compressed.
    pub fn write_page(&self, meta: &PageMeta, body: &[u8]) -> Result<PathBuf> {
        let path = self.page_path(&meta.scope, &meta.page_name());
        // Free the uncompressed copy and the unused tail of the worst-case
        // output buffer (each about the size of the body) before the fsync,
        // which can be slow: many slices stage pages at once.
        let compressed = {
            let mut raw = serde_json::to_vec(meta).map_err(|e| Error::Other(e.to_string()))?;
            raw.push(b'\n');
            raw.extend_from_slice(body);
            let mut c = zstd::bulk::compress(&raw, self.level).map_err(Error::io(&path))?;
            c.shrink_to_fit();
            c
        };
        write_atomic(&path, &compressed)?;
        Ok(path)
    }

    /// Compresses and writes any file atomically (e.g. the field catalogue).
    pub fn write_compressed(&self, path: &Path, data: &[u8]) -> Result<()> {
        let compressed = zstd::bulk::compress(data, self.level).map_err(Error::io(path))?;
        write_atomic(path, &compressed)
    }
}

/// A page that is ready for the next stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRef {
    pub scope: String,
    pub page: String,
}

impl Staging {
    /// Where a loaded page is archived.
    pub(crate) fn archived_path(&self, scope: &str, page: &str) -> PathBuf {
        self.archive_dir(scope).join(format!("{page}{PAGE_EXT}"))
    }

    /// Moves a loaded page to the archive (idempotent: a page already archived
    /// is fine).
    pub(crate) fn archive_page(&self, scope: &str, page: &str) -> Result<()> {
        let from = self.page_path(scope, page);
        let to = self.archived_path(scope, page);
        if !from.exists() {
            return Ok(());
        }
        move_file(&from, &to)
    }

    /// True when a page of extract run `run_id` of `scope` is in the
    /// quarantine: that run can never be loaded whole.
    pub(crate) fn run_has_quarantined_page(&self, scope: &str, run_id: &str) -> Result<bool> {
        let prefix = format!("{run_id}-");
        Ok(list_with_ext(&self.quarantine_dir(scope), PAGE_EXT)?
            .iter()
            .any(|p| p.starts_with(&prefix)))
    }

    /// Moves a bad page to the quarantine with a reason file next to it.
    pub fn quarantine_page(&self, scope: &str, page: &str, reason: &str) -> Result<PathBuf> {
        let from = self.page_path(scope, page);
        let dir = self.quarantine_dir(scope);
        let to = dir.join(format!("{page}{PAGE_EXT}"));
        write_atomic(&dir.join(format!("{page}.reason.txt")), reason.as_bytes())?;
        if from.exists() {
            move_file(&from, &to)?;
        }
        Ok(to)
    }
}

/// Reads a page file: its metadata and the raw body.
pub fn read_page(path: &Path) -> Result<(PageMeta, Vec<u8>)> {
    let raw = read_zstd(path)?;
    split_page(path, raw)
}

/// Splits decompressed page bytes into metadata and body.
pub(crate) fn split_page(path: &Path, mut raw: Vec<u8>) -> Result<(PageMeta, Vec<u8>)> {
    let nl = raw
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| Error::Staging {
            path: path.to_path_buf(),
            msg: "not a staged page (no metadata line); move it out of the staging area".into(),
        })?;
    let meta: PageMeta = serde_json::from_slice(&raw[..nl]).map_err(|e| Error::Staging {
        path: path.to_path_buf(),
        msg: format!("page metadata line is not valid ({e})"),
    })?;
    let body = raw.split_off(nl + 1);
    Ok((meta, body))
}

/// Reads and decompresses a zstd file.
pub fn read_zstd(path: &Path) -> Result<Vec<u8>> {
    let file = fs::File::open(path).map_err(Error::io(path))?;
    let mut dec = zstd::stream::read::Decoder::new(file).map_err(Error::io(path))?;
    let mut out = Vec::new();
    dec.read_to_end(&mut out).map_err(|e| Error::Staging {
        path: path.to_path_buf(),
        msg: format!("not a complete zstd file ({e})"),
    })?;
    Ok(out)
}

/// Writes `data` to `path` atomically: temp file in the same directory, fsync,
/// rename, fsync of the directory. Mode 0600.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(Error::io(dir))?;
    // Errors name the file being written, not its temporary name.
    fault::point(fault::Op::Write, path).map_err(Error::io(path))?;
    tmp.as_file_mut().write_all(data).map_err(Error::io(path))?;
    fault::point(fault::Op::Sync, path).map_err(Error::io(path))?;
    tmp.as_file().sync_all().map_err(Error::io(path))?;
    tmp.persist(path).map_err(|e| Error::io(path)(e.error))?;
    sync_dir(dir)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsyncs a directory so a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).map_err(Error::io(dir))?;
    d.sync_all().map_err(Error::io(dir))
}

/// Moves a file, creating the destination directory; durable. Across file
/// systems (e.g. `archive/` mounted elsewhere), where a rename cannot go, it
/// is copied atomically (temp name, fsync, rename) and then removed.
pub(crate) fn move_file(from: &Path, to: &Path) -> Result<()> {
    let dir = parent_dir(to);
    fs::create_dir_all(dir).map_err(Error::io(dir))?;
    match fs::rename(from, to) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            let data = fs::read(from).map_err(Error::io(from))?;
            write_atomic(to, &data)?;
            fs::remove_file(from).map_err(Error::io(from))?;
            sync_dir(parent_dir(from))
        }
        Err(e) => Err(Error::io(from)(e)),
    }
}

/// The fault-injection seam of the staging writers, compiled only with the
/// `fault-injection` feature (the integration tests turn it on; release
/// builds never have it): `JIRA_PIPELINE_STAGING_FAULT=<op>:<error>:<n>`
/// makes the `n`-th staged write (`op` = `write`) or fsync (`sync`) of this
/// process fail with `enospc` or `eio`, for the faults a real disk cannot be
/// made to show on cue (a full disk or an I/O error at one exact point).
#[cfg(feature = "fault-injection")]
pub(crate) mod fault {
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Op {
        Write,
        Sync,
    }

    static WRITES: AtomicU64 = AtomicU64::new(0);
    static SYNCS: AtomicU64 = AtomicU64::new(0);

    /// Fails when the configured fault is due here.
    pub(crate) fn point(op: Op, path: &std::path::Path) -> std::io::Result<()> {
        let Ok(spec) = std::env::var("JIRA_PIPELINE_STAGING_FAULT") else {
            return Ok(());
        };
        let mut parts = spec.split(':');
        let (want, error, nth) = (parts.next(), parts.next(), parts.next());
        let counter = match (op, want) {
            (Op::Write, Some("write")) => &WRITES,
            (Op::Sync, Some("sync")) => &SYNCS,
            _ => return Ok(()),
        };
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        if nth.and_then(|s| s.parse::<u64>().ok()) != Some(n) {
            return Ok(());
        }
        tracing::warn!(path = %path.display(), "fault injection: failing this {op:?}");
        Err(match error {
            Some("eio") => std::io::Error::from_raw_os_error(5),
            _ => std::io::Error::from_raw_os_error(28),
        })
    }
}

/// Without the `fault-injection` feature the seam is nothing.
#[cfg(not(feature = "fault-injection"))]
pub(crate) mod fault {
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Op {
        Write,
        Sync,
    }

    #[inline(always)]
    pub(crate) fn point(_op: Op, _path: &std::path::Path) -> std::io::Result<()> {
        Ok(())
    }
}

fn list_with_ext(dir: &Path, ext: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    for entry in rd {
        let entry = entry.map_err(Error::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some(stem) = name.strip_suffix(ext) {
            out.push(stem.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Bytes used under a directory (recursively); 0 if it does not exist.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> PageMeta {
        PageMeta {
            format: 1,
            kind: PageKind::Search,
            scope: "s".into(),
            run_id: run_id(Utc::now()),
            mode: "backfill".into(),
            slice: 2,
            seq: 7,
            jql: "project = A".into(),
            start_at: 0,
            max_results: 100,
            issue_count: 0,
            total: Some(0),
            first_updated: None,
            last_updated: None,
            fetched_at: Utc::now(),
            request_id: None,
            http_status: 200,
            checkpoint: None,
            pages_in_run: None,
            fingerprint: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn extra_documents_split_off_the_body_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let mut m = meta();
        m.extra = vec![
            ExtraDoc {
                what: "issue:1".into(),
                bytes: 3,
            },
            ExtraDoc {
                what: "issue:2".into(),
                bytes: 2,
            },
        ];
        let p = st.write_page(&m, b"{\"issues\":[]}abcde").unwrap();
        let (m2, mut body) = read_page(&p).unwrap();
        let docs = split_extra(&m2, &mut body).unwrap();
        assert_eq!(body, b"{\"issues\":[]}");
        assert_eq!(
            docs,
            vec![
                ("issue:1".to_string(), b"abc".to_vec()),
                ("issue:2".to_string(), b"de".to_vec())
            ]
        );
        let mut short = b"ab".to_vec();
        let e = split_extra(&m2, &mut short).unwrap_err();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn page_roundtrip_keeps_body_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let body = b"{\n  \"issues\": []\n}\r\n";
        let m = meta();
        let p = st.write_page(&m, body).unwrap();
        let (m2, b2) = read_page(&p).unwrap();
        assert_eq!(m2, m);
        assert_eq!(b2, body);
        assert_eq!(st.list_pages("s").unwrap(), vec![m.page_name()]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn page_names_sort_in_load_order() {
        let r = "20240101T000000000Z";
        let mut v = [end_page_name(r), page_name(r, 1, 0), page_name(r, 0, 12)];
        v.sort();
        assert_eq!(v.last().unwrap(), &end_page_name(r));
        assert_eq!(v[0], page_name(r, 0, 12));
    }

    #[test]
    fn corrupt_page_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.ndjson.zst");
        fs::write(&p, b"<html>502</html>").unwrap();
        let e = read_page(&p).unwrap_err().to_string();
        assert!(e.contains("x.ndjson.zst"), "{e}");
    }
}
