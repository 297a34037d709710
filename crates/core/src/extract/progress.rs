//! Progress of an extract run: counters per scope, shown as an indicatif bar
//! per scope on a terminal, otherwise as a log line every few seconds.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters of one scope.
#[derive(Debug, Default)]
pub struct ScopeProgress {
    pub scope: String,
    pub pages: AtomicU64,
    pub issues: AtomicU64,
    pub bytes: AtomicU64,
    /// Expected issues (from planning counts; `total` is only an estimate).
    pub expected: AtomicU64,
    pub done: AtomicBool,
}

impl ScopeProgress {
    pub fn new(scope: &str) -> Arc<Self> {
        Arc::new(ScopeProgress {
            scope: scope.to_string(),
            ..Default::default()
        })
    }
    pub fn add_page(&self, issues: u64, bytes: u64) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.issues.fetch_add(issues, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Bars when stderr is a terminal, log lines otherwise.
    Auto,
    /// Log lines only.
    Log,
    /// Nothing.
    Off,
}

/// Shows progress until `finished` is raised (runs on its own thread).
pub fn spawn_reporter(
    scopes: Vec<Arc<ScopeProgress>>,
    display: Display,
    finished: Arc<AtomicBool>,
) -> Option<std::thread::JoinHandle<()>> {
    if display == Display::Off || scopes.is_empty() {
        return None;
    }
    let bars = display == Display::Auto && std::io::stderr().is_terminal();
    Some(std::thread::spawn(move || {
        if bars {
            show_bars(&scopes, &finished);
        } else {
            log_lines(&scopes, &finished);
        }
    }))
}

fn show_bars(scopes: &[Arc<ScopeProgress>], finished: &AtomicBool) {
    let multi = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} issues {msg} ({per_sec}, ETA {eta})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .progress_chars("=> ");
    let bars: Vec<_> = scopes
        .iter()
        .map(|s| {
            let b = multi.add(indicatif::ProgressBar::new(0));
            b.set_style(style.clone());
            b.set_prefix(s.scope.clone());
            b
        })
        .collect();
    loop {
        let end = finished.load(Ordering::Relaxed);
        for (s, b) in scopes.iter().zip(&bars) {
            let issues = s.issues.load(Ordering::Relaxed);
            b.set_length(s.expected.load(Ordering::Relaxed).max(issues));
            b.set_position(issues);
            b.set_message(format!(
                "{} pages, {:.1} MiB",
                s.pages.load(Ordering::Relaxed),
                s.bytes.load(Ordering::Relaxed) as f64 / 1048576.0
            ));
            if s.done.load(Ordering::Relaxed) && !b.is_finished() {
                b.finish();
            }
        }
        if end {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for b in bars {
        b.abandon();
    }
}

fn log_lines(scopes: &[Arc<ScopeProgress>], finished: &AtomicBool) {
    let began = Instant::now();
    let mut last = Instant::now();
    while !finished.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < Duration::from_secs(5) {
            continue;
        }
        last = Instant::now();
        for s in scopes {
            if s.done.load(Ordering::Relaxed) {
                continue;
            }
            let issues = s.issues.load(Ordering::Relaxed);
            let secs = began.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                scope = %s.scope,
                pages = s.pages.load(Ordering::Relaxed),
                issues,
                expected = s.expected.load(Ordering::Relaxed),
                mib = format!("{:.1}", s.bytes.load(Ordering::Relaxed) as f64 / 1048576.0),
                issues_per_sec = format!("{:.0}", issues as f64 / secs),
                "extracting"
            );
        }
    }
}
