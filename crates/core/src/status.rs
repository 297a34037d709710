//! `pipeline status` and `pipeline staging usage|gc`: what is where — per scope
//! the checkpoint, the last run, pages waiting per stage, quarantined items and
//! the archive — and pruning of the archive by age and size.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::staging::{self, PAGE_EXT, Staging};

/// Staging counts of one scope.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct ScopeStaging {
    /// Pages staged and not yet transformed.
    pub pages_waiting_transform: u64,
    /// Batches transformed and not yet loaded.
    pub batches_waiting_load: u64,
    pub pages_quarantined: u64,
    pub archived_pages: u64,
    pub archive_bytes: u64,
    pub pending_bytes: u64,
}

/// A quarantined page with its reason.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedPage {
    pub page: String,
    pub reason: String,
}

/// A quarantined issue recorded by the loader.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QuarantinedIssueRow {
    pub page: String,
    pub issue_key: String,
    pub reason: String,
    pub recorded_at: DateTime<Utc>,
}

/// The last run recorded in `run_history`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LastRun {
    pub command: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    /// `ok`, `quarantined`, `failed`, `interrupted` (stopped, or killed: no end
    /// recorded and no session holds the lock) or `running`.
    pub outcome: Option<String>,
    pub summary: Option<serde_json::Value>,
}

/// Everything `status` shows for one scope.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScopeStatus {
    pub scope: String,
    pub project: String,
    pub checkpoint: Option<DateTime<Utc>>,
    pub loaded_pages: Option<i64>,
    /// Live issues the scope answers for (`live_issue`).
    pub issues_in_warehouse: Option<i64>,
    /// Issues of the scope marked removed (deleted or out of scope).
    pub issues_removed: Option<i64>,
    /// When the scope's last complete census finished.
    pub last_census: Option<DateTime<Utc>>,
    /// The scope's definition changed since its checkpoint was taken: the
    /// next run backfills it (its fingerprint differs from the checkpoint's).
    pub fingerprint_change_pending: bool,
    pub staging: ScopeStaging,
    pub quarantined_pages: Vec<QuarantinedPage>,
    pub quarantined_issues: Vec<QuarantinedIssueRow>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Status {
    pub schema: String,
    pub staging_dir: String,
    /// Why the database part is missing, if it is.
    pub database_error: Option<String>,
    pub last_run: Option<LastRun>,
    /// Secondary indexes an interrupted bulk first load dropped and has not
    /// rebuilt yet (the next load rebuilds them).
    pub deferred_indexes: Vec<String>,
    pub scopes: Vec<ScopeStatus>,
}

/// Counts what is staged for a scope.
pub(crate) fn scope_staging(st: &Staging, scope: &str) -> Result<ScopeStaging> {
    let pages = st.list_pages(scope)?;
    let batches = st.list_batches(scope)?;
    let waiting_transform = pages
        .iter()
        .filter(|p| batches.binary_search(p).is_err())
        .count() as u64;
    let quarantined = count_ext(&st.quarantine_dir(scope), PAGE_EXT);
    let archived = st.list_archived(scope)?.len() as u64;
    Ok(ScopeStaging {
        pages_waiting_transform: waiting_transform,
        batches_waiting_load: batches.len() as u64,
        pages_quarantined: quarantined,
        archived_pages: archived,
        archive_bytes: staging::dir_size(&st.archive_dir(scope)),
        pending_bytes: staging::dir_size(&st.pages_dir(scope))
            + staging::dir_size(&st.batches_dir(scope)),
    })
}

fn count_ext(dir: &Path, ext: &str) -> u64 {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(ext))
                .count() as u64
        })
        .unwrap_or(0)
}

/// Quarantined pages of a scope with their reason files.
pub fn quarantined_pages(st: &Staging, scope: &str) -> Vec<QuarantinedPage> {
    let dir = st.quarantine_dir(scope);
    let mut out: Vec<QuarantinedPage> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let page = name.strip_suffix(".reason.txt")?.to_string();
                    let reason = fs::read_to_string(e.path())
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    Some(QuarantinedPage { page, reason })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.page.cmp(&b.page));
    out
}

/// Builds the status report. The database part is optional: without a
/// reachable database, the staging part is still shown.
pub fn status(
    cfg: &Config,
    client: Option<&mut postgres::Client>,
    db_error: Option<String>,
) -> Result<Status> {
    let st = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
    let mut scopes = Vec::new();
    let mut last_run = None;
    let mut deferred_indexes = Vec::new();
    let mut database_error = db_error;
    let mut client = client;
    if let Some(c) = client.as_deref_mut() {
        match crate::db::check_schema(c, &cfg.database.schema) {
            Ok(()) => {
                last_run = read_last_run(c, cfg)?;
                deferred_indexes = read_deferred_indexes(c, cfg)?;
            }
            Err(e) => {
                database_error = Some(e.one_line());
                client = None;
            }
        }
    }
    for sc in &cfg.scopes {
        let mut s = ScopeStatus {
            scope: sc.name.clone(),
            project: sc.project.clone(),
            checkpoint: None,
            loaded_pages: None,
            issues_in_warehouse: None,
            issues_removed: None,
            last_census: None,
            fingerprint_change_pending: false,
            staging: scope_staging(&st, &sc.name)?,
            quarantined_pages: quarantined_pages(&st, &sc.name),
            quarantined_issues: Vec::new(),
        };
        if let Some(c) = client.as_deref_mut() {
            read_scope_database(c, cfg, sc, &mut s)?;
        }
        scopes.push(s);
    }
    Ok(Status {
        schema: cfg.database.schema.clone(),
        staging_dir: cfg.staging.dir.display().to_string(),
        database_error,
        last_run,
        deferred_indexes,
        scopes,
    })
}

/// Database phase: the last run from run_history, a run with no end shown
/// as `running` (a session holds the lock) or `interrupted` (killed).
fn read_last_run(c: &mut postgres::Client, cfg: &Config) -> Result<Option<LastRun>> {
    let mut last_run = crate::bookkeeping::run_history::last(c, &cfg.database.schema)?;
    // A row with no end is a run under way while some session
    // holds the schema's lock, otherwise a run that was killed.
    if let Some(r) = last_run.as_mut().filter(|r| r.outcome.is_none()) {
        let running = crate::db::lock_held(c, &cfg.database.schema)?;
        r.outcome = Some(if running { "running" } else { "interrupted" }.into());
    }
    Ok(last_run)
}

/// Database phase: the indexes whose creation was deferred.
fn read_deferred_indexes(c: &mut postgres::Client, cfg: &Config) -> Result<Vec<String>> {
    crate::bookkeeping::deferred_index::names(c, &cfg.database.schema)
}

/// Per-scope database phase: the scope's checkpoint, loaded pages, issues in
/// the warehouse and latest quarantined issues, filled into `s`.
fn read_scope_database(
    c: &mut postgres::Client,
    cfg: &Config,
    sc: &crate::config::Scope,
    s: &mut ScopeStatus,
) -> Result<()> {
    let name = &cfg.database.schema;
    s.checkpoint = crate::bookkeeping::checkpoint::get(c, name, &sc.name)?;
    s.loaded_pages = Some(crate::bookkeeping::page_ledger::count(c, name, &sc.name)?);
    let stored = crate::bookkeeping::census::stored(c, name, &sc.name, &sc.project)?;
    s.issues_in_warehouse = Some(stored.live.len() as i64);
    s.issues_removed = Some(stored.removed.len() as i64);
    let names = [sc.name.clone()];
    s.last_census = crate::bookkeeping::census::last(c, name, &names)?
        .remove(&sc.name)
        .map(|r| r.finished_at);
    let fp = crate::extract::fingerprint(sc)?;
    s.fingerprint_change_pending = crate::bookkeeping::checkpoint::read_all(c, name, &names)?
        .get(&sc.name)
        .and_then(|c| c.fingerprint.as_ref())
        .is_some_and(|f| *f != fp);
    s.quarantined_issues = crate::bookkeeping::quarantine::recent(c, name, &sc.name, 50)?;
    Ok(())
}

/// Bytes as a short human string.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The status report as text.
pub fn render_text(s: &Status) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(o, "schema {:?}, staging {}", s.schema, s.staging_dir);
    if let Some(e) = &s.database_error {
        let _ = writeln!(o, "database: unavailable ({e})");
    }
    match &s.last_run {
        Some(r) => {
            let _ = writeln!(
                o,
                "last run: {} started {} ended {} outcome {}",
                r.command,
                r.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                r.ended_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_else(|| "-".into()),
                r.outcome.as_deref().unwrap_or("unknown")
            );
            if let Some(sum) = &r.summary {
                let _ = writeln!(o, "  summary: {sum}");
            }
        }
        None => {
            let _ = writeln!(o, "last run: none recorded");
        }
    }
    if !s.deferred_indexes.is_empty() {
        let _ = writeln!(
            o,
            "indexes deferred by an interrupted bulk first load (the next load rebuilds them): {}",
            s.deferred_indexes.join(", ")
        );
    }
    for sc in &s.scopes {
        let _ = writeln!(o, "scope {} (project {})", sc.scope, sc.project);
        let _ = writeln!(
            o,
            "  checkpoint: {}",
            sc.checkpoint
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "none (next run is a backfill)".into())
        );
        if sc.fingerprint_change_pending {
            let _ = writeln!(
                o,
                "  definition changed (fingerprint differs from the checkpoint's): the next run backfills the scope"
            );
        }
        if let (Some(p), Some(i)) = (sc.loaded_pages, sc.issues_in_warehouse) {
            let _ = writeln!(
                o,
                "  warehouse: {i} live issues, {} removed, {p} pages loaded",
                sc.issues_removed.unwrap_or(0)
            );
        }
        let _ = writeln!(
            o,
            "  last census: {}",
            sc.last_census
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "none".into())
        );
        let st = &sc.staging;
        let _ = writeln!(
            o,
            "  waiting: {} pages for transform, {} batches for load ({})",
            st.pages_waiting_transform,
            st.batches_waiting_load,
            human_bytes(st.pending_bytes)
        );
        let _ = writeln!(
            o,
            "  archive: {} pages, {}",
            st.archived_pages,
            human_bytes(st.archive_bytes)
        );
        let _ = writeln!(
            o,
            "  quarantined: {} pages, {} issues",
            sc.quarantined_pages.len(),
            sc.quarantined_issues.len()
        );
        for q in &sc.quarantined_pages {
            let _ = writeln!(o, "    page {}: {}", q.page, q.reason);
        }
        for q in &sc.quarantined_issues {
            let _ = writeln!(
                o,
                "    issue {} (page {}): {}",
                q.issue_key, q.page, q.reason
            );
        }
    }
    o
}

/// Disk use of each part of the staging area.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub parts: Vec<(String, u64)>,
    pub total: u64,
}

pub fn usage(st: &Staging) -> Usage {
    let parts: Vec<(String, u64)> = [
        "pages",
        "batches",
        "archive",
        "quarantine",
        "catalog",
        "state",
        "trash",
    ]
    .iter()
    .map(|p| (p.to_string(), staging::dir_size(&st.root.join(p))))
    .collect();
    let total = parts.iter().map(|(_, b)| b).sum();
    Usage { parts, total }
}

/// What `staging gc` removed.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct GcReport {
    pub removed_files: u64,
    pub removed_bytes: u64,
    pub kept_files: u64,
    pub kept_bytes: u64,
}

/// Prunes the archive: files older than `max_age` (if set), then the oldest
/// until the archive fits in `max_bytes` (if set). Also removes leftover
/// temporary files (`.tmp-*`) of crashed writers older than an hour, and
/// the staging trash (loaded batches a killed load did not delete).
pub fn gc(
    st: &Staging,
    max_age: Option<Duration>,
    max_bytes: Option<u64>,
    now: SystemTime,
) -> Result<GcReport> {
    let archive = st.root.join("archive");
    let mut files: Vec<(SystemTime, u64, std::path::PathBuf)> = Vec::new();
    collect_files(&archive, &mut files)?;
    files.sort();
    let mut report = GcReport::default();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    for (mtime, size, path) in files {
        let too_old = max_age
            .map(|age| now.duration_since(mtime).unwrap_or_default() > age)
            .unwrap_or(false);
        let too_big = max_bytes.map(|m| total > m).unwrap_or(false);
        if too_old || too_big {
            fs::remove_file(&path).map_err(Error::io(&path))?;
            report.removed_files += 1;
            report.removed_bytes += size;
            total -= size;
        } else {
            report.kept_files += 1;
            report.kept_bytes += size;
        }
    }
    // Temp files of writers killed mid-write.
    let mut tmp = Vec::new();
    collect_files(&st.root, &mut tmp)?;
    for (mtime, size, path) in tmp {
        let is_tmp = path
            .file_name()
            .map(|n| n.to_string_lossy().starts_with(".tmp-"))
            .unwrap_or(false);
        if is_tmp && now.duration_since(mtime).unwrap_or_default() > Duration::from_secs(3600) {
            fs::remove_file(&path).map_err(Error::io(&path))?;
            report.removed_files += 1;
            report.removed_bytes += size;
        }
    }
    // Loaded batches waiting for deletion; a running load's janitor may be
    // deleting them at the same time, so a vanished file is fine.
    let mut trash = Vec::new();
    collect_files(&st.trash_dir(), &mut trash)?;
    for (_, size, path) in trash {
        match fs::remove_file(&path) {
            Ok(()) => {
                report.removed_files += 1;
                report.removed_bytes += size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path)(e)),
        }
    }
    if let Ok(entries) = fs::read_dir(st.trash_dir()) {
        for e in entries.flatten() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok(report)
}

fn collect_files(dir: &Path, out: &mut Vec<(SystemTime, u64, std::path::PathBuf)>) -> Result<()> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir)(e)),
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            collect_files(&e.path(), out)?;
        } else {
            out.push((
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                e.path(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_prunes_by_size_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let a = st.archive_dir("s");
        fs::create_dir_all(&a).unwrap();
        for i in 0..4 {
            let p = a.join(format!("p{i}{PAGE_EXT}"));
            fs::write(&p, vec![0u8; 100]).unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i * 10);
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        let r = gc(&st, None, Some(250), SystemTime::now()).unwrap();
        assert_eq!(r.removed_files, 2);
        assert_eq!(r.kept_bytes, 200);
        assert!(!a.join(format!("p0{PAGE_EXT}")).exists());
        assert!(a.join(format!("p3{PAGE_EXT}")).exists());
    }

    #[test]
    fn gc_empties_the_trash() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let b = st.trash_dir().join("demo--p1--1-2");
        fs::create_dir_all(&b).unwrap();
        fs::write(b.join("meta.json"), b"{}").unwrap();
        fs::write(b.join("issue.copy.zst"), b"xyz").unwrap();
        let r = gc(&st, None, None, SystemTime::now()).unwrap();
        assert_eq!((r.removed_files, r.removed_bytes), (2, 5));
        assert_eq!(fs::read_dir(st.trash_dir()).unwrap().count(), 0);
    }

    #[test]
    fn gc_prunes_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let st = Staging::new(dir.path(), 3);
        let a = st.archive_dir("s");
        fs::create_dir_all(&a).unwrap();
        let old = a.join(format!("old{PAGE_EXT}"));
        let new = a.join(format!("new{PAGE_EXT}"));
        fs::write(&old, b"x").unwrap();
        fs::write(&new, b"y").unwrap();
        let now = SystemTime::now();
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(now - Duration::from_secs(10 * 86400))
            .unwrap();
        let r = gc(&st, Some(Duration::from_secs(86400)), None, now).unwrap();
        assert_eq!(r.removed_files, 1);
        assert!(!old.exists() && new.exists());
    }

    #[test]
    fn human_bytes_units() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
