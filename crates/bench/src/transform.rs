//! `pipeline bench transform`: transform throughput against a bare
//! `simd_json::to_tape` of the same bytes, measured in the same run, on one
//! thread and on all cores. Input: staged pages (or raw Jira JSON files) from a
//! directory, or generated simulator-shaped search pages.
//!
//! Both sides do the same per-page work besides the part being measured: copy
//! the decompressed body into a reused buffer (simd-json parses in place), then
//! either `to_tape` (baseline) or [`transform_page_with`] (which parses
//! with `to_tape` too and then builds every table's COPY rows). Decompression
//! and file writes are left out: the figures are MB/s of decompressed JSON.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde_json::{Value as Json, json};

use jira_pipeline_core::error::{Error, ExitCode, Result};
use jira_pipeline_core::staging::{self, PageKind, PageMeta, search_meta};
use jira_pipeline_core::transform::{
    Catalog, Selection, parse_only, recycle, run_stage, transform_page_with,
};

/// `pipeline bench transform` options.
#[derive(Debug, Clone)]
pub struct BenchTransformOptions {
    /// Directory of input: staged page files (`*.ndjson.zst`), raw search
    /// responses or single-issue responses (`*.json`), searched recursively; a
    /// `/rest/api/2/field` array found there is used as the field catalogue.
    pub pages: Option<PathBuf>,
    /// Generate this many simulator-shaped issues (100 per page) instead.
    pub issues: Option<usize>,
    /// Threads for the "all cores" measurement (default: one per core).
    pub threads: Option<usize>,
    /// Instead of the in-memory comparison: stage the generated pages in a
    /// temporary staging area and run the whole stage as `run --stage
    /// transform` does (read, zstd, transform, write batches); prints the
    /// end-to-end rate and the process's peak memory.
    pub staged: bool,
    /// Seconds per measurement round (each figure is the best of 3 rounds).
    pub seconds: f64,
}

/// Pages held in memory for benchmarking.
pub struct Corpus {
    pub pages: Vec<(PageMeta, Vec<u8>)>,
    pub catalog: Catalog,
    pub issues: u64,
    pub bytes: u64,
    pub origin: String,
}

/// One measurement.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub threads: usize,
    /// Rates per CPU-second of the measuring thread instead of per wall second.
    pub cpu_time: bool,
    /// MB/s (10^6 bytes) of decompressed JSON: bare `simd_json::to_tape`.
    pub parse_mbs: f64,
    /// The transform's own parse alone (reused buffers, no input copy).
    pub parse_reused_mbs: f64,
    pub transform_mbs: f64,
    pub transform_issues_per_s: f64,
}

impl Figure {
    pub fn ratio(&self) -> f64 {
        self.transform_mbs / self.parse_mbs
    }
}

fn count_issues(body: &[u8]) -> u64 {
    serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|v| v.get("issues").and_then(|i| i.as_array()).map(Vec::len))
        .unwrap_or(0) as u64
}

/// Loads every page under `dir` (recursively).
pub fn load_dir(dir: &Path) -> Result<Corpus> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut pages = Vec::new();
    let mut catalog = Catalog::default();
    for f in files {
        let name = f.to_string_lossy();
        if name.ends_with(staging::PAGE_EXT) {
            let (meta, body) = staging::read_page(&f)?;
            if meta.kind == PageKind::Search {
                pages.push((meta, body));
            }
        } else if name.ends_with(".json") {
            let raw = std::fs::read(&f).map_err(Error::io(&f))?;
            let Ok(v) = serde_json::from_slice::<Json>(&raw) else {
                continue;
            };
            let seq = pages.len() as u32;
            if v.is_array() {
                if let Ok(c) = Catalog::parse(&raw) {
                    catalog = c;
                }
            } else if v.get("issues").is_some_and(Json::is_array) {
                pages.push((search_meta("bench", seq, 0), raw));
            } else if v.get("fields").is_some() && v.get("key").is_some() {
                let body = json!({"startAt":0,"maxResults":1,"total":1,"issues":[v]});
                pages.push((
                    search_meta("bench", seq, 1),
                    serde_json::to_vec(&body).unwrap_or_default(),
                ));
            }
        }
    }
    if pages.is_empty() {
        return Err(Error::Config(format!(
            "{}: no search pages found (expected *.ndjson.zst staged pages or *.json Jira responses)",
            dir.display()
        )));
    }
    let issues = pages.iter().map(|(_, b)| count_issues(b)).sum();
    let bytes = pages.iter().map(|(_, b)| b.len() as u64).sum();
    Ok(Corpus {
        pages,
        catalog,
        issues,
        bytes,
        origin: dir.display().to_string(),
    })
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(Error::io(dir))?;
    for e in rd {
        let e = e.map_err(Error::io(dir))?;
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Pages rendered by the project's simulator (`sim::Dataset`, the same bytes
/// it serves for `/rest/api/2/search?expand=changelog`), 100 issues a page,
/// with its field catalogue.
pub fn generated(n_issues: usize) -> Corpus {
    let n = u32::try_from(n_issues).unwrap_or(u32::MAX);
    let ds = jira_sim::Dataset::new(42, n, &[]);
    let per_page = 100u32;
    let mut pages = Vec::new();
    let mut issues = 0u64;
    let mut start = 0u32;
    while start < n {
        let count = per_page.min(n - start);
        let body = ds.search_page_body(start, count, true);
        issues += u64::from(count);
        pages.push((search_meta("bench", pages.len() as u32, count), body));
        start += count;
    }
    let bytes = pages.iter().map(|(_, b)| b.len() as u64).sum();
    Corpus {
        pages,
        catalog: Catalog::parse(&jira_sim::render::field_list(&ds)).unwrap_or_default(),
        issues,
        bytes,
        origin: "generated by the simulator".into(),
    }
}

/// Runs `work` on every page over `threads` threads until `min` has passed;
/// returns bytes/s and pages handled.
/// CPU time this thread has run, from `/proc/thread-self/schedstat` (ns).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// CPU time of every thread of this process (sum of
/// `/proc/self/task/*/schedstat`, ns).
fn process_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let s = std::fs::read_to_string(e.path().join("schedstat")).ok()?;
        total += s.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// Throughput of one measurement: bytes per wall-clock second, and bytes per
/// CPU-second (of the measuring thread, or of all threads when parallel).
#[derive(Debug, Clone, Copy, Default)]
struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

fn timed<F>(corpus: &Corpus, threads: usize, min: Duration, work: F) -> Rate
where
    F: Fn(&PageMeta, &mut Vec<u8>) + Sync,
{
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    // Each thread copies a page into its own reused buffer (simd-json parses
    // in place), then works on it: no allocation on either side of the ratio.
    let one = |meta: &PageMeta, body: &Vec<u8>| {
        BUF.with(|b| {
            let mut buf = b.borrow_mut();
            buf.clear();
            buf.extend_from_slice(body);
            work(meta, &mut buf);
        })
    };
    let run_once = || {
        if threads <= 1 {
            corpus.pages.iter().for_each(|(m, b)| one(m, b));
        } else {
            corpus
                .pages
                .par_iter()
                .with_max_len(1)
                .for_each(|(m, b)| one(m, b));
        }
    };
    let cpu_now = || {
        if threads <= 1 {
            thread_cpu_ns()
        } else {
            process_cpu_ns()
        }
    };
    let cpu0 = cpu_now();
    let start = Instant::now();
    let mut rounds = 0u64;
    while rounds == 0 || start.elapsed() < min {
        run_once();
        rounds += 1;
    }
    let bytes = (corpus.bytes * rounds) as f64;
    let wall = bytes / start.elapsed().as_secs_f64();
    let cpu = match (cpu0, cpu_now()) {
        (Some(a), Some(b)) if b > a => Some(bytes / ((b - a) as f64 / 1e9)),
        _ => None,
    };
    Rate { wall, cpu }
}

fn best(a: Rate, b: Rate) -> Rate {
    Rate {
        wall: a.wall.max(b.wall),
        cpu: match (a.cpu, b.cpu) {
            (Some(x), Some(y)) => Some(x.max(y)),
            (x, y) => x.or(y),
        },
    }
}

/// Measures bare parse and transform on `threads` threads (best of 3 rounds,
/// interleaved so both see the same machine load).
/// Returns the wall-clock figure and the per-CPU-second one (which other
/// processes on the machine do not distort).
pub fn measure(
    corpus: &Corpus,
    threads: usize,
    per_round: Duration,
) -> Result<(Figure, Option<Figure>)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::Other(format!("cannot start bench threads: {e}")))?;
    let sel = Selection::all();
    let (mut parse, mut reused, mut transform) =
        (Rate::default(), Rate::default(), Rate::default());
    pool.install(|| {
        for _ in 0..3 {
            parse = best(
                parse,
                timed(corpus, threads, per_round, |_, buf| {
                    let tape = simd_json::to_tape(buf);
                    std::hint::black_box(tape.map(|t| t.0.len()).unwrap_or(0));
                }),
            );
            reused = best(
                reused,
                timed(corpus, threads, per_round, |_, buf| {
                    std::hint::black_box(parse_only(buf));
                }),
            );
            transform = best(
                transform,
                timed(corpus, threads, per_round, |meta, buf| {
                    // As `run --stage transform` does once a batch is written.
                    if let Ok(b) = transform_page_with(meta, buf, &corpus.catalog, &sel) {
                        std::hint::black_box(b.total_rows());
                        recycle(b);
                    }
                }),
            );
        }
    });
    let bytes_per_issue = corpus.bytes as f64 / corpus.issues.max(1) as f64;
    let wall = Figure {
        threads,
        cpu_time: false,
        parse_mbs: parse.wall / 1e6,
        parse_reused_mbs: reused.wall / 1e6,
        transform_mbs: transform.wall / 1e6,
        transform_issues_per_s: transform.wall / bytes_per_issue,
    };
    let cpu = match (parse.cpu, reused.cpu, transform.cpu) {
        (Some(p), Some(r), Some(t)) => Some(Figure {
            threads,
            cpu_time: true,
            parse_mbs: p / 1e6,
            parse_reused_mbs: r / 1e6,
            transform_mbs: t / 1e6,
            transform_issues_per_s: t / bytes_per_issue,
        }),
        _ => None,
    };
    Ok((wall, cpu))
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `--staged`: the whole stage over `n` simulator issues staged on disk.
fn exec_staged(n: usize, threads: usize) -> Result<ExitCode> {
    let dir = tempfile::tempdir().map_err(Error::io(std::env::temp_dir()))?;
    let cfg_path = dir.path().join("pipeline.toml");
    let text = format!(
        "[staging]\ndir = {:?}\n\n[[scope]]\nname = \"bench\"\nproject = \"DEMO\"\n",
        dir.path().join("staging").display().to_string()
    );
    let cfg =
        jira_pipeline_core::config::RawConfig::parse(&text, &cfg_path)?.validate(&cfg_path)?;
    let st = staging::Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
    let nn = u32::try_from(n).unwrap_or(u32::MAX);
    let ds = jira_sim::Dataset::new(42, nn, &[]);
    let run_id = "20240101T000000000Z";
    st.write_compressed(&st.catalog_path(run_id), &jira_sim::render::field_list(&ds))?;
    let mut start = 0u32;
    let mut seq = 0u32;
    let mut bytes = 0u64;
    while start < nn {
        let count = 100.min(nn - start);
        let body = ds.search_page_body(start, count, true);
        bytes += body.len() as u64;
        st.write_page(&search_meta("bench", seq, count), &body)?;
        start += count;
        seq += 1;
    }
    let before = peak_rss_mib();
    let report = run_stage(&cfg, &[], threads)?;
    let after = peak_rss_mib();
    println!(
        "staged run: {} pages, {} issues, {:.1} MB of JSON on {threads} threads: {:.2}s, {:.1} MB/s, {:.0} issues/s end to end (read, zstd, transform, write batches)",
        seq,
        report.issues,
        bytes as f64 / 1e6,
        report.elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / report.elapsed.as_secs_f64().max(1e-9),
        report.issues as f64 / report.elapsed.as_secs_f64().max(1e-9)
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!("peak memory (VmHWM): {b:.0} MiB before the stage, {a:.0} MiB after");
    }
    Ok(ExitCode::Success)
}

/// The bench command.
pub fn exec(args: &BenchTransformOptions) -> Result<ExitCode> {
    let all = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if args.staged {
        return exec_staged(args.issues.unwrap_or(10_000), all);
    }
    let corpus = match (&args.pages, args.issues) {
        (Some(dir), _) => load_dir(dir)?,
        (None, n) => generated(n.unwrap_or(10_000)),
    };
    if !(args.seconds > 0.0 && args.seconds <= 600.0) {
        return Err(Error::Config(
            "--seconds must be between 0 and 600".to_string(),
        ));
    }
    let per_round = Duration::from_secs_f64(args.seconds);
    println!(
        "transform bench: {} pages, {} issues, {:.1} MB of JSON ({}), {} bytes/issue",
        corpus.pages.len(),
        corpus.issues,
        corpus.bytes as f64 / 1e6,
        corpus.origin,
        corpus.bytes / corpus.issues.max(1)
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!(
            "machine: {} cores, load average {} (other work on the machine lowers the all-cores figures)",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            load.join(" ")
        );
    }
    println!(
        "{:>9}  {:>15}  {:>17}  {:>14}  {:>10}  {:>15}",
        "threads",
        "to_tape MB/s",
        "reused parse MB/s",
        "transform MB/s",
        "issues/s",
        "transform/parse"
    );
    let (one, one_cpu) = measure(&corpus, 1, per_round)?;
    print_figure(&one);
    if let Some(c) = &one_cpu {
        print_figure(c);
    }
    if all > 1 {
        let (many, many_cpu) = measure(&corpus, all, per_round)?;
        print_figure(&many);
        if let Some(c) = &many_cpu {
            print_figure(c);
        }
        println!(
            "scaling of transform on {all} threads: {:.2} x one thread by the wall clock (both under the same machine load)",
            many.transform_mbs / one.transform_mbs,
        );
        if let (Some(c1), Some(cn)) = (one_cpu, many_cpu) {
            let eff = cn.transform_mbs / c1.transform_mbs;
            println!(
                "parallel efficiency (per-CPU-second rate on {all} threads / on one): {eff:.2}; on an idle machine {all} threads would give ~{:.2} x one thread",
                eff * all as f64
            );
        }
    }
    Ok(ExitCode::Success)
}

fn print_figure(f: &Figure) {
    let label = if f.cpu_time {
        format!("{} (cpu)", f.threads)
    } else {
        format!("{} (wall)", f.threads)
    };
    println!(
        "{:>9}  {:>15.1}  {:>17.1}  {:>14.1}  {:>10.0}  {:>15.2}",
        label,
        f.parse_mbs,
        f.parse_reused_mbs,
        f.transform_mbs,
        f.transform_issues_per_s,
        f.ratio()
    );
}
