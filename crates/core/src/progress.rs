//! Progress, the one system every command uses: named [`StageCounters`]
//! (pages, issues, rows, bytes, expected issues, busy time) drawn as one line
//! each (a line per stage for `run`, a line per scope for `run --stage
//! extract`) on a TTY, or logged every few seconds otherwise. Stages only
//! bump atomic counters; a reporter thread draws them, so the hot paths never
//! wait on the terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters of one stage.
#[derive(Debug, Default)]
pub(crate) struct StageCounters {
    pub pages: AtomicU64,
    pub issues: AtomicU64,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    /// Expected issues (0 = unknown), for the ETA.
    pub expected_issues: AtomicU64,
    /// Nanoseconds spent working.
    pub busy_nanos: AtomicU64,
    /// Extract: issues fetched alone because the search cut their changelog.
    pub refetched: AtomicU64,
}

impl StageCounters {
    pub(crate) fn add(&self, pages: u64, issues: u64, rows: u64, bytes: u64) {
        self.pages.fetch_add(pages, Ordering::Relaxed);
        self.issues.fetch_add(issues, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub(crate) fn add_busy(&self, d: Duration) {
        self.busy_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
    pub fn busy(&self) -> Duration {
        Duration::from_nanos(self.busy_nanos.load(Ordering::Relaxed))
    }
    fn line(&self, name: &str, elapsed: Duration) -> String {
        let pages = self.pages.load(Ordering::Relaxed);
        let issues = self.issues.load(Ordering::Relaxed);
        let rows = self.rows.load(Ordering::Relaxed);
        let expected = self.expected_issues.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = issues as f64 / secs;
        let eta = if expected > issues && rate > 0.0 {
            format!(
                ", ETA {}",
                fmt_duration(Duration::from_secs_f64((expected - issues) as f64 / rate))
            )
        } else {
            String::new()
        };
        let of = if expected > 0 {
            format!("/{expected}")
        } else {
            String::new()
        };
        let rows = if rows > 0 {
            format!(", {rows} rows")
        } else {
            String::new()
        };
        format!("{name:<9} {pages} pages, {issues}{of} issues{rows}, {rate:.0} issues/s{eta}")
    }
}

/// Counters of the three stages.
#[derive(Debug, Default)]
pub(crate) struct RunProgress {
    pub extract: Arc<StageCounters>,
    pub transform: Arc<StageCounters>,
    pub load: Arc<StageCounters>,
}

impl RunProgress {
    /// The three stages as named lines for the [`Reporter`].
    pub fn lines(&self) -> Vec<(String, Arc<StageCounters>)> {
        vec![
            ("extract".into(), self.extract.clone()),
            ("transform".into(), self.transform.clone()),
            ("load".into(), self.load.clone()),
        ]
    }
}

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// Lines redrawn in place when stderr is a terminal, log lines otherwise.
    Auto,
    /// Log lines only.
    Log,
    /// Nothing.
    Off,
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}.{}s", s, d.subsec_millis() / 100)
    }
}

/// Draws progress until dropped.
pub(crate) struct Reporter {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts drawing `lines` (name, counters): lines redrawn in place on a
    /// TTY (unless `quiet`), log lines every `log_every` otherwise.
    pub fn start(
        lines: Vec<(String, Arc<StageCounters>)>,
        quiet: bool,
        log_every: Duration,
    ) -> Reporter {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let tty = std::io::stderr().is_terminal() && !quiet;
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                if tty {
                    draw(&lines, &d);
                } else {
                    log(&lines, &d, log_every);
                }
            })
            .ok();
        Reporter { done, handle }
    }

    /// [`Reporter::start`] as `display` asks (`None` for [`Display::Off`]).
    pub(crate) fn for_display(
        lines: Vec<(String, Arc<StageCounters>)>,
        display: Display,
    ) -> Option<Reporter> {
        match display {
            Display::Off => None,
            Display::Auto => Some(Reporter::start(lines, false, Duration::from_secs(5))),
            Display::Log => Some(Reporter::start(lines, true, Duration::from_secs(5))),
        }
    }
}

/// Redraws one spinner line per counter until `done`.
fn draw(lines: &[(String, Arc<StageCounters>)], done: &AtomicBool) {
    let start = Instant::now();
    let mp = indicatif::MultiProgress::new();
    let style = indicatif::ProgressStyle::with_template("{spinner} {msg}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
    let bars: Vec<_> = lines
        .iter()
        .map(|_| {
            let b = mp.add(indicatif::ProgressBar::new_spinner());
            b.set_style(style.clone());
            b
        })
        .collect();
    while !done.load(Ordering::Relaxed) {
        let e = start.elapsed();
        for ((name, c), b) in lines.iter().zip(&bars) {
            b.set_message(c.line(name, e));
            b.tick();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for b in &bars {
        b.finish_and_clear();
    }
}

/// Logs one line per counter every `every` until `done`.
fn log(lines: &[(String, Arc<StageCounters>)], done: &AtomicBool, every: Duration) {
    let start = Instant::now();
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= every {
            last = Instant::now();
            let e = start.elapsed();
            for (name, c) in lines {
                tracing::info!("{}", c.line(name, e));
            }
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_rate_and_eta() {
        let c = StageCounters::default();
        c.add(2, 100, 500, 10);
        c.expected_issues.store(300, Ordering::Relaxed);
        let l = c.line("extract", Duration::from_secs(10));
        assert!(l.contains("100/300 issues"), "{l}");
        assert!(l.contains("10 issues/s"), "{l}");
        assert!(l.contains("ETA 20.0s"), "{l}");
    }
}
