//! `pipeline bench load`: loads N synthetic, Jira-shaped issues into a fresh
//! schema and prints rows/s per table and overall, next to three figures
//! measured in the same run on the same rows:
//!
//! - the **ceiling**: a plain `COPY` of the same rows into unindexed tables;
//! - the **no-op reload**: the same rows again under new page names (not
//!   skipped by the ledger, merged, and found identical: nothing written);
//! - the **row-by-row baseline**: one `INSERT … ON CONFLICT DO UPDATE` per row
//!   (what a naive loader does), on a sample, its rate extrapolated.
//!
//! Rows are synthesised directly with [`jira_pipeline_core::tables::CopyRow`], shaped like
//! Jira data: per issue ~5 labels, 3 components, 3 versions, 3 links (each
//! carried on the pages of both ends, as Jira does), 10 changelog histories of
//! 2 items each, 10 custom field values; pages of 100 issues, one End page with
//! the field catalogue.
//!
//! The random values come from the simulator's generator, [`jira_sim::Rng`]
//! (one stream per issue for its links, one for its rows), so the workspace
//! has one PRNG. The rows are not derived from the simulator's
//! [`jira_sim::Dataset`]: its issues vary in shape (0 to 45 histories, 0 to 3
//! labels, optional custom fields), and the figures this bench prints are
//! rates over this fixed shape, comparable between runs and sizes; generating
//! them from the dataset would change what is measured.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use postgres::Client;

use jira_pipeline_core::batch::{Batch, BatchMeta, IssueVersion, TableCount};
use jira_pipeline_core::config::{self, Config, DatabaseConfig, Secret};
use jira_pipeline_core::db::{self, Ident};
use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::load::{LoadOptions, Loader, UnitReport};
use jira_pipeline_core::staging::{self, PageKind, Staging};
use jira_pipeline_core::tables::{self, CopyRow};
use jira_sim::Rng;

/// Issues per synthetic page (Jira DC's default `maxResults` cap).
pub const PAGE_ISSUES: u64 = 100;

/// Seed of the synthetic rows; with [`jira_sim::Rng`]'s per-issue streams
/// every run loads the same rows.
const SEED: u64 = 0x9E37_79B9_7F4A_7C15;
/// The stream of an issue's links.
const LINK_STREAM: u64 = 1;
/// The stream of an issue's own rows.
const ROW_STREAM: u64 = 2;

/// Words of synthetic text, with the characters COPY must escape.
const WORDS: &[&str] = &[
    "the",
    "login",
    "page",
    "fails",
    "when",
    "user",
    "clicks",
    "save",
    "error",
    "timeout",
    "database",
    "report",
    "export",
    "CSV",
    "null",
    "pointer",
    "in",
    "module",
    "after",
    "upgrade",
    "to",
    "version",
    "slow",
    "query",
    "dashboard",
    "widget",
    "émoji",
    "naïve",
    "tab\there",
    "line\nbreak",
    "back\\slash",
    "API",
    "rate",
    "limit",
];

/// `n` random words, space-separated, appended to `out`.
fn words(rng: &mut Rng, n: usize, out: &mut String) {
    for i in 0..n {
        if i > 0 {
            out.push(' ');
        }
        let w: &&str = rng.pick(WORDS);
        out.push_str(w);
    }
}

struct Builder {
    bufs: HashMap<&'static str, (Vec<u8>, u64)>,
}

impl Builder {
    fn new() -> Self {
        Builder {
            bufs: HashMap::new(),
        }
    }
    fn row(&mut self, table: &'static str, f: impl FnOnce(&mut CopyRow)) {
        let e = self.bufs.entry(table).or_default();
        let mut r = CopyRow::new(&mut e.0);
        f(&mut r);
        r.end();
        e.1 += 1;
    }
    /// Where every table's buffer ends now.
    fn mark(&self) -> HashMap<&'static str, usize> {
        self.bufs.iter().map(|(t, (b, _))| (*t, b.len())).collect()
    }
    /// The digest of the rows added since `mark` (as transform computes it).
    fn digest_since(&self, mark: &HashMap<&'static str, usize>) -> String {
        jira_pipeline_core::batch::issue_digest(tables::ALL.iter().filter_map(|t| {
            let (b, _) = self.bufs.get(t.name)?;
            Some((t.name, &b[mark.get(t.name).copied().unwrap_or(0)..]))
        }))
    }
    fn finish(mut self, meta: BatchMeta) -> Batch {
        let mut meta = meta;
        let mut data = Vec::new();
        for spec in tables::ALL {
            if let Some((bytes, n)) = self.bufs.remove(spec.name) {
                meta.tables.push(TableCount {
                    table: spec.name.into(),
                    rows: n,
                });
                data.push((spec.name, bytes));
            }
        }
        Batch { meta, data }
    }
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// A link: (id, source id, target id, type 0..3).
type Link = (i64, i64, i64, u8);

const FIRST_ID: i64 = 10_000;

/// Synthesises the batches of one extract run of `issues` issues: search pages
/// of [`PAGE_ISSUES`] issues, then the End page.
pub fn synth_batches(scope: &str, run_id: &str, issues: u64) -> Vec<Batch> {
    let links_of = synth_links(issues);
    let pages = issues.div_ceil(PAGE_ISSUES);
    let mut out = Vec::with_capacity(pages as usize + 1);
    for p in 0..pages {
        out.push(synth_page(scope, run_id, issues, p, &links_of));
    }
    out.push(synth_end_page(scope, run_id, issues, pages));
    out
}

/// Links: 3 per issue to other issues of the set; carried by both ends.
fn synth_links(issues: u64) -> Vec<Vec<Link>> {
    let n = issues as i64;
    let mut links_of: Vec<Vec<Link>> = vec![Vec::new(); issues as usize];
    let mut link_id = 1_000_000i64;
    for i in 0..n {
        let mut rng = Rng::new(SEED, i as u32, LINK_STREAM);
        for k in 0..3u8 {
            if n < 2 {
                break;
            }
            let mut j = rng.below(n as u64) as i64;
            if j == i {
                j = (i + 1) % n;
            }
            link_id += 1;
            let l = (link_id, FIRST_ID + i, FIRST_ID + j, k);
            links_of[i as usize].push(l);
            links_of[j as usize].push(l);
        }
    }
    links_of
}

/// Search page `p` of the run.
fn synth_page(scope: &str, run_id: &str, issues: u64, p: u64, links_of: &[Vec<Link>]) -> Batch {
    let mut b = Builder::new();
    let lo = (p * PAGE_ISSUES) as i64;
    let hi = ((p + 1) * PAGE_ISSUES).min(issues) as i64;
    let versions = (lo..hi)
        .map(|i| synth_issue(&mut b, i, issues as i64, &links_of[i as usize]))
        .collect();
    b.finish(BatchMeta {
        format: 1,
        scope: scope.into(),
        page: staging::page_name(run_id, 0, p as u32),
        run_id: run_id.into(),
        kind: PageKind::Search,
        issues: versions,
        tables: Vec::new(),
        checkpoint: None,
        pages_in_run: None,
        fingerprint: None,
        notes: Default::default(),
        quarantined: Vec::new(),
        source_bytes: 0,
    })
}

/// Every row of issue `i` (of `n`) into `b`; returns its ledger entry.
fn synth_issue(b: &mut Builder, i: i64, n: i64, links: &[Link]) -> IssueVersion {
    let mut rng = Rng::new(SEED, i as u32, ROW_STREAM);
    let id = FIRST_ID + i;
    let key = format!("BENCH-{}", i + 1);
    let updated = base_time() + chrono::Duration::seconds(i * 37);
    let created = updated - chrono::Duration::days(30 + rng.below(400) as i64);
    let mut summary = String::new();
    let nw = 6 + rng.below(8) as usize;
    words(&mut rng, nw, &mut summary);
    let mut desc = String::new();
    let nw = 40 + rng.below(80) as usize;
    words(&mut rng, nw, &mut desc);
    let project = ["BENCH", "OPS", "WEB", "API", "DATA"][rng.below(5) as usize];
    let mark = b.mark();
    b.row("issue", |c| {
        c.i64(id)
            .text(&key)
            .i64(10_100 + rng.below(5) as i64)
            .text(project)
            .text(["Bug", "Story", "Task", "Epic"][rng.below(4) as usize])
            .text(["Open", "In Progress", "Resolved", "Closed"][rng.below(4) as usize])
            .text(["new", "indeterminate", "done"][rng.below(3) as usize])
            .text(["Blocker", "Major", "Minor"][rng.below(3) as usize])
            .opt_text((rng.below(2) == 0).then_some("Fixed"))
            .text(&summary)
            .text(&desc)
            .text(&format!("user{}", rng.below(200)))
            .text(&format!("user{}", rng.below(200)))
            .text(&format!("user{}", rng.below(200)))
            .timestamp(created)
            .timestamp(updated)
            .opt_timestamp((rng.below(3) == 0).then_some(updated))
            .opt_date((rng.below(4) == 0).then(|| updated.date_naive()))
            .opt_i64((rng.below(5) == 0).then_some(FIRST_ID + rng.below(n as u64) as i64))
            .null()
            .null()
            .text("bench");
        for _ in 0..3 {
            c.text(&format!("JIRAUSER{}", 10_000 + rng.below(200)));
        }
        for n in [6, 5, 4, 2] {
            c.i64(1 + rng.below(n) as i64);
        }
        for _ in 0..6 {
            c.opt_i64((rng.below(3) == 0).then(|| 3600 * rng.below(40) as i64));
        }
    });
    synth_refs(b, &mut rng, id, created);
    synth_link_rows(b, links);
    synth_changelog(b, &mut rng, id, created);
    synth_field_values(b, &mut rng, id, updated, &summary);
    IssueVersion {
        id,
        key,
        updated: Some(updated),
        digest: Some(b.digest_since(&mark)),
    }
}

/// 5 labels, 3 components, 3 versions of issue `id`.
fn synth_refs(b: &mut Builder, rng: &mut Rng, id: i64, created: DateTime<Utc>) {
    for k in 0..5 {
        b.row("issue_label", |c| {
            c.i64(id).text(&format!("label-{}-{k}", rng.below(40)));
        });
    }
    for k in 0..3i64 {
        b.row("issue_component", |c| {
            c.i64(id)
                .i64(500 + k * 10 + rng.below(10) as i64)
                .text(&format!("component {}", rng.below(30)));
        });
    }
    for (k, rel) in [(0i64, "fix"), (1, "fix"), (2, "affects")] {
        b.row("issue_version", |c| {
            c.i64(id)
                .i64(900 + k * 20 + rng.below(20) as i64)
                .text(rel)
                .text(&format!("{}.{}", rng.below(5), rng.below(10)))
                .bool(rng.below(2) == 0)
                .opt_date((rng.below(2) == 0).then(|| created.date_naive()));
        });
    }
}

/// The link rows an issue's page carries (its own links and those to it).
fn synth_link_rows(b: &mut Builder, links: &[Link]) {
    for &(lid, s, t, k) in links {
        let (ty, ow, iw) = [
            ("Blocks", "blocks", "is blocked by"),
            ("Relates", "relates to", "relates to"),
            ("Duplicate", "duplicates", "is duplicated by"),
        ][k as usize];
        b.row("issue_link", |c| {
            c.i64(lid)
                .i64(s)
                .i64(t)
                .text(&format!("BENCH-{}", s - FIRST_ID + 1))
                .text(&format!("BENCH-{}", t - FIRST_ID + 1))
                .text(ty)
                .text(ow)
                .text(iw);
        });
    }
}

/// 10 changelog histories of 2 items each.
fn synth_changelog(b: &mut Builder, rng: &mut Rng, id: i64, created: DateTime<Utc>) {
    for h in 0..10i64 {
        let hid = id * 100 + h;
        let at = created + chrono::Duration::hours(h * 5);
        let author = format!("user{}", rng.below(200));
        b.row("changelog", |c| {
            c.i64(hid).i64(id).text(&author).timestamp(at);
        });
        for item in 0..2i64 {
            let from = rng.below(5);
            b.row("changelog_item", |c| {
                c.i64(hid)
                    .i64(item)
                    .i64(id)
                    .text(["status", "assignee", "priority", "labels"][rng.below(4) as usize])
                    .text("jira")
                    .text("status")
                    .text(&from.to_string())
                    .text(&format!("State {from}"))
                    .text(&(from + 1).to_string())
                    .text(&format!("State {}", from + 1));
            });
        }
    }
}

/// 10 custom field values: number, option, datetime, text, in turn.
fn synth_field_values(
    b: &mut Builder,
    rng: &mut Rng,
    id: i64,
    updated: DateTime<Utc>,
    summary: &str,
) {
    for f in 0..10i64 {
        let field = format!("customfield_{}", 10_000 + f);
        b.row("issue_field_value", |c| {
            c.i64(id).text(&field).i64(0);
            match f % 4 {
                0 => c
                    .text("number")
                    .null()
                    .f64(rng.below(100) as f64 / 4.0)
                    .null()
                    .null()
                    .null()
                    .null()
                    .null()
                    .null(),
                1 => c
                    .text("option")
                    .text(&format!("Option {}", rng.below(8)))
                    .null()
                    .null()
                    .null()
                    .i64(20_000 + rng.below(8) as i64)
                    .null()
                    .null()
                    .null(),
                2 => c
                    .text("datetime")
                    .null()
                    .null()
                    .timestamp(updated)
                    .null()
                    .null()
                    .null()
                    .null()
                    .null(),
                _ => c
                    .text("text")
                    .text(summary)
                    .null()
                    .null()
                    .null()
                    .null()
                    .null()
                    .null()
                    .null(),
            };
        });
    }
}

/// The End page: the field catalogue and the run's checkpoint.
fn synth_end_page(scope: &str, run_id: &str, issues: u64, pages: u64) -> Batch {
    let mut b = Builder::new();
    for f in 0..50i64 {
        b.row("field", |c| {
            c.text(&format!("customfield_{}", 10_000 + f))
                .text(&format!("Custom field {f}"))
                .bool(true)
                .text(["number", "option", "datetime", "string"][(f % 4) as usize])
                .null()
                .text("com.atlassian.jira.plugin.system.customfieldtypes:textfield")
                .i64(10_000 + f);
        });
    }
    b.finish(BatchMeta {
        format: 1,
        scope: scope.into(),
        page: staging::end_page_name(run_id),
        run_id: run_id.into(),
        kind: PageKind::End,
        issues: Vec::new(),
        tables: Vec::new(),
        checkpoint: Some(base_time() + chrono::Duration::seconds(issues as i64 * 37)),
        pages_in_run: Some(pages),
        fingerprint: None,
        notes: Default::default(),
        quarantined: Vec::new(),
        source_bytes: 0,
    })
}

/// The same batches as a different extract run (new page names and run id).
fn as_run(batches: &[Batch], run_id: &str) -> Vec<Batch> {
    batches
        .iter()
        .map(|b| {
            let mut b = b.clone();
            b.meta.page = b.meta.page.replacen(&b.meta.run_id, run_id, 1);
            b.meta.run_id = run_id.into();
            b
        })
        .collect()
}

/// Figures of one bench run.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub issues: u64,
    pub rows: u64,
    pub pages: u64,
    pub units: u64,
    pub first_load: Duration,
    pub first: UnitReport,
    pub ceiling: Duration,
    /// Rows and time of a plain COPY into the *indexed* warehouse tables
    /// (links deduplicated): what any loader into this schema must pay.
    pub floor_rows: u64,
    pub floor: Duration,
    /// The same into tables with only their primary keys.
    pub pk_rows: u64,
    pub pk_floor: Duration,
    pub noop: Duration,
    pub noop_report: UnitReport,
    pub ledger_skip: Duration,
    pub rbr_rows: u64,
    pub rbr: Duration,
}

fn rate(rows: u64, d: Duration) -> f64 {
    rows as f64 / d.as_secs_f64().max(1e-9)
}

impl Figures {
    pub fn load_rate(&self) -> f64 {
        rate(self.rows, self.first_load)
    }
    pub fn ceiling_rate(&self) -> f64 {
        rate(self.rows, self.ceiling)
    }
    pub fn noop_rate(&self) -> f64 {
        rate(self.rows, self.noop)
    }
    pub fn rbr_rate(&self) -> f64 {
        rate(self.rbr_rows, self.rbr)
    }

    /// One line per step of the first load, with its no-op reload time.
    fn render_steps(&self, s: &mut String) {
        for (t, rows, d) in &self.first.timings {
            let noop = match self.noop_report.timings.iter().find(|(n, _, _)| n == t) {
                Some((_, _, nd)) => format!("{:>7.3}s", nd.as_secs_f64()),
                None => format!("{:>8}", "-"),
            };
            if *rows > 0 {
                let _ = writeln!(
                    s,
                    "  {t:<18} {rows:>9} rows  {:>7.3}s {:>9.0} rows/s  {noop}",
                    d.as_secs_f64(),
                    rate(*rows, *d),
                );
            } else {
                let _ = writeln!(
                    s,
                    "  {t:<18}                 {:>7.3}s                  {noop}",
                    d.as_secs_f64(),
                );
            }
        }
    }

    /// The three plain COPY figures, each against the first load's rate `r`.
    fn render_copies(&self, s: &mut String, r: f64) {
        let _ = writeln!(
            s,
            "plain COPY (ceiling)  {:>9} rows  {:>8.3}s  {:>10.0} rows/s   first load = {:.2} x ceiling (target >= 0.4)",
            self.rows,
            self.ceiling.as_secs_f64(),
            self.ceiling_rate(),
            r / self.ceiling_rate()
        );
        let _ = writeln!(
            s,
            "COPY, indexed tables  {:>9} rows  {:>8.3}s  {:>10.0} rows/s   first load = {:.2} x a plain COPY into the same indexed tables",
            self.floor_rows,
            self.floor.as_secs_f64(),
            rate(self.floor_rows, self.floor),
            r / rate(self.floor_rows, self.floor)
        );
        let _ = writeln!(
            s,
            "COPY, keys only       {:>9} rows  {:>8.3}s  {:>10.0} rows/s   first load = {:.2} x a plain COPY into tables with only their primary keys",
            self.pk_rows,
            self.pk_floor.as_secs_f64(),
            rate(self.pk_rows, self.pk_floor),
            r / rate(self.pk_rows, self.pk_floor)
        );
    }

    /// The printed report.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "load bench: {} issues, {} rows in {} pages, {} units",
            self.issues, self.rows, self.pages, self.units
        );
        let _ = writeln!(
            s,
            "step (a table's name: its merge)      first load                   no-op reload"
        );
        self.render_steps(&mut s);
        let r = self.load_rate();
        let _ = writeln!(
            s,
            "first load            {:>9} rows  {:>8.3}s  {:>10.0} rows/s",
            self.rows,
            self.first_load.as_secs_f64(),
            r
        );
        self.render_copies(&mut s, r);
        let _ = writeln!(
            s,
            "no-op reload          {:>9} rows  {:>8.3}s  {:>10.0} rows/s   {:.2} x faster than the first load (target >= 3); rows written: {}",
            self.rows,
            self.noop.as_secs_f64(),
            self.noop_rate(),
            self.first_load.as_secs_f64() / self.noop.as_secs_f64().max(1e-9),
            self.noop_report.rows_written()
        );
        let _ = writeln!(
            s,
            "ledger-skip reload    {:>9} rows  {:>8.3}s  (pages already loaded are not merged again)",
            self.rows,
            self.ledger_skip.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "row-by-row upsert     {:>9} rows  {:>8.3}s  {:>10.0} rows/s   first load = {:.1} x row-by-row (target >= 10)",
            self.rbr_rows,
            self.rbr.as_secs_f64(),
            self.rbr_rate(),
            r / self.rbr_rate()
        );
        s
    }
}

use std::fmt::Write as _;

/// Runs the bench in `schema` (created, and `schema_rbr` for the baseline).
pub fn run(
    url: &Secret,
    dbc: &DatabaseConfig,
    schema: &str,
    issues: u64,
    baseline_issues: u64,
) -> Result<Figures> {
    let mut admin = db::connect(url, dbc)?;
    db::init(&mut admin, schema)?;
    let batches = synth_batches("bench", "20230101T000000000Z", issues);
    let rows: u64 = batches.iter().map(|b| b.total_rows()).sum();
    let mut f = Figures {
        issues,
        rows,
        pages: batches.len() as u64,
        ..Default::default()
    };
    let tmp = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let st = Staging::new(tmp.path(), 3);
    let ident = Ident::new(schema);

    // 1. The ceiling: plain COPY of the same rows into unindexed tables.
    f.ceiling = ceiling_copy(url, dbc, &ident, &batches)?;

    // 1b. Plain COPY into the warehouse tables of other fresh schemas: with
    // every index, and with only the primary keys (what a bulk first load
    // keeps).
    (f.floor_rows, f.floor) = copy_floor(
        url,
        dbc,
        &mut admin,
        &format!("{schema}_floor"),
        false,
        &batches,
    )?;
    (f.pk_rows, f.pk_floor) = copy_floor(
        url,
        dbc,
        &mut admin,
        &format!("{schema}_pk"),
        true,
        &batches,
    )?;

    // 2. The first load, in units as `run --stage load` groups them.
    let opts = LoadOptions::default();
    let mut loader = Loader::new(db::connect(url, dbc)?, schema, st.clone()).with_options(opts);
    let started = Instant::now();
    let (first, units) = load_all(&mut loader, &batches)?;
    // A bulk first load rebuilds the indexes it deferred: part of its time.
    loader.finish()?;
    f.first_load = started.elapsed();
    f.first = first;
    f.units = units;
    // Let autovacuum's statistics catch up as they would between runs.
    admin
        .batch_execute(&format!(
            "ANALYZE {ident}.issue, {ident}.issue_label, {ident}.issue_component, {ident}.issue_version, {ident}.issue_link, {ident}.changelog, {ident}.changelog_item, {ident}.issue_field_value"
        ))
        .map_err(Error::db("bench: ANALYZE"))?;

    // 3. No-op reload: same rows, new page names.
    let again = as_run(&batches, "20230102T000000000Z");
    let started = Instant::now();
    let (noop, _) = load_all(&mut loader, &again)?;
    f.noop = started.elapsed();
    f.noop_report = noop;
    let started = Instant::now();
    load_all(&mut loader, &again)?;
    f.ledger_skip = started.elapsed();

    // 4. Row-by-row upsert baseline on a sample, into a fresh schema.
    (f.rbr_rows, f.rbr) = rbr_baseline(url, dbc, &mut admin, schema, baseline_issues, &batches)?;
    Ok(f)
}

/// The row-by-row upsert baseline: the first pages holding about
/// `baseline_issues` issues, into a fresh schema `{schema}_rbr`.
fn rbr_baseline(
    url: &Secret,
    dbc: &DatabaseConfig,
    admin: &mut Client,
    schema: &str,
    baseline_issues: u64,
    batches: &[Batch],
) -> Result<(u64, Duration)> {
    let rbr_schema = format!("{schema}_rbr");
    db::init(admin, &rbr_schema)?;
    let sample_pages = baseline_issues.div_ceil(PAGE_ISSUES).max(1) as usize;
    let sample = &batches[..sample_pages.min(batches.len().saturating_sub(1)).max(1)];
    let mut c = db::connect(url, dbc)?;
    row_by_row(&mut c, &rbr_schema, sample)
}

/// The ceiling: a plain COPY of `batches` into unindexed copies of the
/// tables (`ceiling_*` in `ident`), in one transaction. Returns its time.
fn ceiling_copy(
    url: &Secret,
    dbc: &DatabaseConfig,
    ident: &Ident,
    batches: &[Batch],
) -> Result<Duration> {
    let mut c = db::connect(url, dbc)?;
    let mut tx = c.transaction().map_err(Error::db("bench: BEGIN"))?;
    for spec in tables::ALL {
        tx.batch_execute(&format!(
            "CREATE TABLE {ident}.{} (LIKE {ident}.{})",
            Ident::new(&format!("ceiling_{}", spec.name)),
            Ident::new(spec.name)
        ))
        .map_err(Error::db("bench: creating the ceiling tables"))?;
    }
    tx.commit().map_err(Error::db("bench: COMMIT"))?;
    let started = Instant::now();
    let mut tx = c.transaction().map_err(Error::db("bench: BEGIN"))?;
    for spec in tables::ALL {
        let mut w = tx
            .copy_in(&format!(
                "COPY {ident}.{} ({}) FROM STDIN",
                Ident::new(&format!("ceiling_{}", spec.name)),
                spec.column_list()
            ))
            .map_err(Error::db("bench: ceiling COPY"))?;
        for b in batches {
            w.write_all(b.rows(spec.name))
                .map_err(|e| Error::Other(format!("bench: ceiling COPY: {e}")))?;
        }
        w.finish().map_err(Error::db("bench: ceiling COPY"))?;
    }
    tx.commit().map_err(Error::db("bench: COMMIT"))?;
    Ok(started.elapsed())
}

/// Loads `batches` in units as `run --stage load` groups them.
fn load_all(loader: &mut Loader, batches: &[Batch]) -> Result<(UnitReport, u64)> {
    let mut total = UnitReport::default();
    let mut units = 0;
    let mut start = 0;
    let (max_rows, max_pages) = loader.unit_limits()?;
    while start < batches.len() {
        let mut end = start;
        let mut n = 0;
        while end < batches.len() && (end == start || (n < max_rows && end - start < max_pages)) {
            n += batches[end].total_rows();
            end += 1;
        }
        total.absorb(&loader.load_unit(&batches[start..end])?);
        units += 1;
        start = end;
    }
    Ok((total, units))
}

/// A plain COPY of `batches` into the warehouse tables of a fresh schema
/// `name` (links carried by both ends would break the key: deduplicated
/// first), in one transaction; `keys_only` drops every index but the primary
/// keys first. Returns rows and time.
fn copy_floor(
    url: &Secret,
    dbc: &DatabaseConfig,
    admin: &mut Client,
    name: &str,
    keys_only: bool,
    batches: &[Batch],
) -> Result<(u64, Duration)> {
    db::init(admin, name)?;
    let fi = Ident::new(name);
    if keys_only {
        let rows = admin
            .query(
                "SELECT c.relname::text FROM pg_index i
                   JOIN pg_class c ON c.oid = i.indexrelid
                   JOIN pg_class t ON t.oid = i.indrelid
                   JOIN pg_namespace n ON n.oid = t.relnamespace
                  WHERE n.nspname = $1 AND NOT i.indisprimary
                    AND t.relname = ANY($2)",
                &[
                    &name,
                    &tables::ALL.iter().map(|t| t.name).collect::<Vec<_>>(),
                ],
            )
            .map_err(Error::db("bench: listing indexes"))?;
        for r in rows {
            let idx: String = r.get(0);
            admin
                .batch_execute(&format!("DROP INDEX {fi}.{}", Ident::new(&idx)))
                .map_err(Error::db("bench: dropping an index"))?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut links = Vec::new();
    for b in batches {
        for line in b.rows("issue_link").split_inclusive(|&c| c == b'\n') {
            let id = line.split(|&c| c == b'\t').next().unwrap_or_default();
            if seen.insert(id.to_vec()) {
                links.extend_from_slice(line);
            }
        }
    }
    let mut c = db::connect(url, dbc)?;
    let started = Instant::now();
    let mut tx = c.transaction().map_err(Error::db("bench: BEGIN"))?;
    let mut n = 0;
    for spec in tables::ALL {
        let mut w = tx
            .copy_in(&format!(
                "COPY {fi}.{} ({}) FROM STDIN",
                Ident::new(spec.name),
                spec.column_list()
            ))
            .map_err(Error::db("bench: COPY into warehouse tables"))?;
        if spec.name == "issue_link" {
            w.write_all(&links)
                .map_err(|e| Error::Other(format!("bench: COPY: {e}")))?;
        } else {
            for b in batches {
                w.write_all(b.rows(spec.name))
                    .map_err(|e| Error::Other(format!("bench: COPY: {e}")))?;
            }
        }
        n += w
            .finish()
            .map_err(Error::db("bench: COPY into warehouse tables"))?;
    }
    tx.commit().map_err(Error::db("bench: COMMIT"))?;
    Ok((n, started.elapsed()))
}

/// One prepared `INSERT … ON CONFLICT DO UPDATE` per row, one transaction
/// per page. Returns rows and time.
fn row_by_row(c: &mut Client, schema: &str, batches: &[Batch]) -> Result<(u64, Duration)> {
    let s = Ident::new(schema);
    let mut stmts = Vec::new();
    for spec in tables::ALL {
        let params = spec
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| format!("${}::text::{}", i + 1, col.ty.sql()))
            .collect::<Vec<_>>()
            .join(", ");
        let nonkey: Vec<&str> = spec
            .columns
            .iter()
            .map(|c| c.name)
            .filter(|n| !spec.key.contains(n))
            .collect();
        let action = if nonkey.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!(
                "DO UPDATE SET {}",
                nonkey
                    .iter()
                    .map(|n| format!("{n} = EXCLUDED.{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sql = format!(
            "INSERT INTO {s}.{} ({}) VALUES ({params}) ON CONFLICT ({}) {action}",
            Ident::new(spec.name),
            spec.column_list(),
            spec.key.join(", ")
        );
        let st = c
            .prepare(&sql)
            .map_err(Error::db("bench: preparing the row-by-row upsert"))?;
        stmts.push((spec, st));
    }
    // Decoding is not part of the measured time.
    type Decoded = Vec<(usize, Vec<Vec<Option<String>>>)>;
    let decoded: Vec<Decoded> = batches
        .iter()
        .map(|b| {
            stmts
                .iter()
                .enumerate()
                .map(|(i, (spec, _))| (i, tables::decode_rows(b.rows(spec.name))))
                .collect()
        })
        .collect();
    let mut n = 0u64;
    let started = Instant::now();
    for page in &decoded {
        let mut tx = c.transaction().map_err(Error::db("bench: BEGIN"))?;
        for (i, rows) in page {
            let st = &stmts[*i].1;
            for row in rows {
                let params: Vec<&(dyn postgres::types::ToSql + Sync)> = row
                    .iter()
                    .map(|v| v as &(dyn postgres::types::ToSql + Sync))
                    .collect();
                tx.execute(st, &params)
                    .map_err(Error::db("bench: row-by-row upsert"))?;
                n += 1;
            }
        }
        tx.commit().map_err(Error::db("bench: COMMIT"))?;
    }
    Ok((n, started.elapsed()))
}

/// `pipeline bench load` options.
#[derive(Debug, Clone)]
pub struct BenchLoadOptions {
    /// Simulated issues to load.
    pub issues: u64,
    /// Issues in the row-by-row upsert baseline sample (its rate is extrapolated).
    pub baseline_issues: u64,
    /// Schema to create for the run (default: a fresh random one, dropped afterwards).
    pub schema: Option<String>,
    /// Keep the bench schema instead of dropping it.
    pub keep: bool,
}

/// `pipeline bench load`.
pub fn exec(config_path: &Path, args: &BenchLoadOptions) -> Result<ExitCode> {
    let dbc = if config_path.exists() {
        Config::load(config_path)?.database
    } else {
        DatabaseConfig {
            schema: "jira".into(),
            statement_timeout: Duration::ZERO,
            ca_bundle: None,
        }
    };
    let url = config::database_url()?;
    let schema = match &args.schema {
        Some(s) if config::is_valid_schema_name(s) => s.clone(),
        Some(s) => {
            return Err(Error::Config(format!(
                "--schema {s:?} is not a valid schema name; use lower-case letters, digits and _"
            )));
        }
        None => format!(
            "bench_load_{}_{}",
            std::process::id(),
            Utc::now().timestamp()
        ),
    };
    if args.issues == 0 {
        return Err(Error::Config("--issues must be at least 1".into()));
    }
    eprintln!(
        "bench load: {} issues into schema {schema:?} (and {schema}_floor, {schema}_pk, {schema}_rbr for the baselines)…",
        args.issues
    );
    let res = run(&url, &dbc, &schema, args.issues, args.baseline_issues);
    if !args.keep
        && let Ok(mut c) = db::connect(&url, &dbc)
    {
        for s in [
            schema.clone(),
            format!("{schema}_rbr"),
            format!("{schema}_floor"),
            format!("{schema}_pk"),
        ] {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", Ident::new(&s)));
        }
    }
    let f = res?;
    print!("{}", f.render());
    Ok(ExitCode::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_batches_are_consistent() {
        let b = synth_batches("s", "r", 250);
        assert_eq!(b.len(), 4);
        assert_eq!(b[3].meta.kind, PageKind::End);
        assert_eq!(b[3].meta.pages_in_run, Some(3));
        for batch in &b {
            for (t, data) in &batch.data {
                let lines = data.iter().filter(|&&c| c == b'\n').count() as u64;
                assert_eq!(lines, batch.row_count(t), "{t}");
                let spec = tables::by_name(t).unwrap();
                for row in tables::decode_rows(data) {
                    assert_eq!(row.len(), spec.columns.len(), "{t}");
                }
            }
        }
        assert_eq!(b[0].meta.issues.len(), 100);
        assert_eq!(b[2].meta.issues.len(), 50);
    }
}
