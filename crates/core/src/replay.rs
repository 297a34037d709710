//! `pipeline replay`: re-feed archived pages — one page file, a scope, or a
//! fetched-at time range — through transform, then either print the rows they
//! produce (`--dry-run`, NDJSON or a table per warehouse table) or load them
//! again (after a fix or a schema change). The loader's rules still apply:
//! a page older than what is loaded cannot roll an issue back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::staging::{self, PAGE_EXT, PageMeta, Staging};
use crate::tables;

/// Which archived pages to replay.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// One page file (anywhere: archive, quarantine, pages).
    pub page_file: Option<PathBuf>,
    /// Every archived page of these scopes (all configured scopes if empty).
    pub scopes: Vec<String>,
    /// Only pages fetched at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only pages fetched before this instant.
    pub until: Option<DateTime<Utc>>,
}

/// A page chosen for replay: its path and metadata.
#[derive(Debug, Clone)]
pub struct Selected {
    pub path: PathBuf,
    pub meta: PageMeta,
    pub body: Vec<u8>,
}

/// Finds the pages to replay, in load order.
pub fn select(st: &Staging, all_scopes: &[String], sel: &Selection) -> Result<Vec<Selected>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(p) = &sel.page_file {
        if !p.is_file() {
            return Err(Error::Config(format!(
                "{}: no such page file; give a path under {}/archive/<scope>/",
                p.display(),
                st.root.display()
            )));
        }
        paths.push(p.clone());
    } else {
        let scopes = if sel.scopes.is_empty() {
            all_scopes.to_vec()
        } else {
            sel.scopes.clone()
        };
        for s in &scopes {
            for page in st.list_archived(s)? {
                paths.push(st.archive_dir(s).join(format!("{page}{PAGE_EXT}")));
            }
        }
    }
    let mut out = Vec::new();
    for path in paths {
        let (meta, body) = staging::read_page(&path)?;
        if sel.since.is_some_and(|t| meta.fetched_at < t)
            || sel.until.is_some_and(|t| meta.fetched_at >= t)
        {
            continue;
        }
        out.push(Selected { path, meta, body });
    }
    out.sort_by(|a, b| {
        (a.meta.scope.as_str(), a.meta.page_name())
            .cmp(&(b.meta.scope.as_str(), b.meta.page_name()))
    });
    Ok(out)
}

/// Rows of a batch as NDJSON: one object per row, `{"table": …, <column>: value, …}`.
/// Values are strings or null exactly as they would be loaded.
pub(crate) fn render_ndjson(batch: &Batch, only: Option<&str>) -> String {
    let mut out = String::new();
    for (table, data) in &batch.data {
        if only.is_some_and(|t| t != *table) {
            continue;
        }
        let Some(spec) = tables::by_name(table) else {
            continue;
        };
        for row in tables::decode_rows(data) {
            let mut obj = serde_json::Map::new();
            obj.insert("table".into(), serde_json::Value::String(table.to_string()));
            for (c, v) in spec.columns.iter().zip(row) {
                obj.insert(
                    c.name.to_string(),
                    v.map(serde_json::Value::String)
                        .unwrap_or(serde_json::Value::Null),
                );
            }
            let _ = writeln!(out, "{}", serde_json::Value::Object(obj));
        }
    }
    out
}

/// Rows of a batch as aligned text tables, one per warehouse table; long
/// values are cut to `max_width` characters with an ellipsis.
pub(crate) fn render_table(batch: &Batch, only: Option<&str>, max_width: usize) -> String {
    let mut out = String::new();
    for (table, data) in &batch.data {
        if only.is_some_and(|t| t != *table) {
            continue;
        }
        let Some(spec) = tables::by_name(table) else {
            continue;
        };
        let rows = tables::decode_rows(data);
        let _ = writeln!(out, "== {table} ({} rows)", rows.len());
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| cut(&v.clone().unwrap_or_else(|| "∅".into()), max_width))
                    .collect()
            })
            .collect();
        let mut widths: Vec<usize> = spec
            .columns
            .iter()
            .map(|c| c.name.chars().count())
            .collect();
        for r in &cells {
            for (i, c) in r.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(c.chars().count());
                }
            }
        }
        let header: Vec<String> = spec
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| pad(c.name, *w))
            .collect();
        let _ = writeln!(out, "{}", header.join(" | ").trim_end());
        for r in &cells {
            let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
            let _ = writeln!(out, "{}", line.join(" | ").trim_end());
        }
    }
    out
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

/// Cuts `s` to at most `max` characters (with `…`), showing control characters escaped.
pub fn cut(s: &str, max: usize) -> String {
    let s = s
        .replace('\n', "\\n")
        .replace('\r', "\\r")
        .replace('\t', "\\t");
    if s.chars().count() <= max {
        return s;
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// A page path's scope directory name, for messages.
pub fn describe(path: &Path) -> String {
    path.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{BatchMeta, TableCount};
    use crate::staging::PageKind;

    fn batch() -> Batch {
        let mut rows = Vec::new();
        tables::CopyRow::new(&mut rows).i64(7).text("a\tb").end();
        Batch {
            meta: BatchMeta {
                format: 1,
                scope: "s".into(),
                page: "p".into(),
                run_id: "r".into(),
                kind: PageKind::Search,
                issues: vec![],
                tables: vec![TableCount {
                    table: "issue_label".into(),
                    rows: 1,
                }],
                checkpoint: None,
                pages_in_run: None,
                fingerprint: None,
                notes: Default::default(),
                quarantined: vec![],
                source_bytes: 0,
            },
            data: vec![("issue_label", rows)],
        }
    }

    #[test]
    fn ndjson_rows_name_columns() {
        let s = render_ndjson(&batch(), None);
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        assert_eq!(v["table"], "issue_label");
        assert_eq!(v["issue_id"], "7");
        assert_eq!(v["label"], "a\tb");
        assert_eq!(render_ndjson(&batch(), Some("issue")), "");
    }

    #[test]
    fn table_rows_are_aligned_and_cut() {
        let s = render_table(&batch(), None, 10);
        assert!(s.contains("== issue_label (1 rows)"), "{s}");
        assert!(s.contains("issue_id | label"), "{s}");
        assert!(s.contains("a\\tb"), "{s}");
        assert_eq!(cut("abcdefghijkl", 5), "abcd…");
    }
}

/// Output format of `replay --dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayFormat {
    Table,
    Ndjson,
}

/// `pipeline replay` options.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Replay this one page file (e.g. staging/archive/<scope>/<page>.ndjson.zst).
    pub page: Option<PathBuf>,
    /// Replay the archived pages of these scopes; empty: every scope.
    pub scopes: Vec<String>,
    /// Only pages fetched at or after this instant (YYYY-MM-DD or RFC 3339).
    pub since: Option<String>,
    /// Only pages fetched before this instant (YYYY-MM-DD or RFC 3339).
    pub until: Option<String>,
    /// Print the rows the pages produce instead of loading them.
    pub dry_run: bool,
    /// `--dry-run` output format.
    pub format: ReplayFormat,
    /// `--dry-run`: only this warehouse table.
    pub table: Option<String>,
}

fn parse_when(flag: &str, v: &Option<String>) -> Result<Option<DateTime<Utc>>> {
    v.as_deref()
        .map(|s| {
            crate::config::parse_instant(s).ok_or_else(|| {
                Error::Config(format!(
                    "--{flag} {s:?} is not a date; write YYYY-MM-DD or an RFC 3339 timestamp"
                ))
            })
        })
        .transpose()
}

/// Runs `pipeline replay`.
pub fn exec(
    session: &crate::session::Session,
    args: &ReplayOptions,
) -> Result<crate::error::ExitCode> {
    let cfg = session.config();
    use crate::error::ExitCode;
    use crate::transform::{CatalogCache, transform_page_with};

    if let Some(t) = &args.table
        && tables::by_name(t).is_none()
    {
        let names: Vec<&str> = tables::ALL.iter().map(|t| t.name).collect();
        return Err(Error::Config(format!(
            "--table {t:?} is not a warehouse table; use one of {}",
            names.join(", ")
        )));
    }
    session.scopes(&args.scopes)?;
    let st = session.staging().clone();
    let sel = Selection {
        page_file: args.page.clone(),
        scopes: args.scopes.clone(),
        since: parse_when("since", &args.since)?,
        until: parse_when("until", &args.until)?,
    };
    let all: Vec<String> = cfg.scopes.iter().map(|s| s.name.clone()).collect();
    let pages = select(&st, &all, &sel)?;
    if pages.is_empty() {
        eprintln!(
            "no archived pages match (archive: {})",
            st.root.join("archive").display()
        );
        return Ok(ExitCode::Success);
    }
    let cache = CatalogCache::default();
    let mut batches: Vec<Batch> = Vec::new();
    let mut bad = 0u64;
    for p in pages {
        let scope = cfg.scope(&p.meta.scope).map_err(|_| {
            Error::Config(format!(
                "{}: the page belongs to scope {:?}, which is not in {}; add the scope or use its configuration",
                p.path.display(),
                p.meta.scope,
                cfg.path.display()
            ))
        })?;
        let catalog = cache.get(&st, &p.meta.run_id)?;
        let selection = crate::transform::Selection::resolve(scope, &catalog);
        let mut body = p.body;
        match transform_page_with(&p.meta, &mut body, &catalog, &selection) {
            Ok(b) => batches.push(b),
            Err(e) => {
                bad += 1;
                eprintln!("{}: cannot be transformed: {e}", describe(&p.path));
            }
        }
    }
    if args.dry_run {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        for b in &batches {
            let text = match args.format {
                ReplayFormat::Ndjson => render_ndjson(b, args.table.as_deref()),
                ReplayFormat::Table => {
                    let mut t = format!("# scope {} page {}\n", b.meta.scope, b.meta.page);
                    t.push_str(&render_table(b, args.table.as_deref(), 40));
                    t
                }
            };
            match out.write_all(text.as_bytes()) {
                Ok(()) => {}
                // `| head` closed the pipe: not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    return Ok(ExitCode::Success);
                }
                Err(e) => return Err(Error::Other(format!("writing to stdout: {e}"))),
            }
        }
    } else {
        let opts = crate::load::LoadOptions {
            replay: true,
            ..Default::default()
        };
        let mut loader = crate::load::Loader::locked(session, opts)?;
        let mut total = crate::load::UnitReport::default();
        // Units of at most 16 pages of one scope.
        let mut units = crate::load::UnitAssembler::new((u64::MAX, 16));
        let pages = batches.len();
        for b in batches {
            for unit in units.push_full(b) {
                total.absorb(&loader.load_unit(&unit)?);
            }
        }
        let last = units.take();
        if !last.is_empty() {
            total.absorb(&loader.load_unit(&last)?);
        }
        println!(
            "replayed {} pages: {} issue versions taken, {} older than the warehouse's ignored, {} rows written",
            pages,
            total.issues_accepted,
            total.issues_rejected_older,
            total.rows_written()
        );
    }
    Ok(ExitCode::from_quarantined(bad))
}
