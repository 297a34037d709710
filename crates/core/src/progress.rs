//! Progress of a whole run: one line per stage (pages, issues, rows, rate, ETA)
//! on a TTY, periodic log lines otherwise. Stages only bump atomic counters;
//! a reporter thread draws them, so the hot paths never wait on the terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters of one stage.
#[derive(Debug, Default)]
pub struct StageCounters {
    pub pages: AtomicU64,
    pub issues: AtomicU64,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    /// Expected issues (0 = unknown), for the ETA.
    pub expected_issues: AtomicU64,
    /// Nanoseconds spent working.
    pub busy_nanos: AtomicU64,
}

impl StageCounters {
    pub fn add(&self, pages: u64, issues: u64, rows: u64, bytes: u64) {
        self.pages.fetch_add(pages, Ordering::Relaxed);
        self.issues.fetch_add(issues, Ordering::Relaxed);
        self.rows.fetch_add(rows, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn add_busy(&self, d: Duration) {
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
        format!(
            "{name:<9} {pages} pages, {issues}{of} issues, {rows} rows, {rate:.0} issues/s{eta}"
        )
    }
}

/// Counters of the three stages.
#[derive(Debug, Default)]
pub struct RunProgress {
    pub extract: StageCounters,
    pub transform: StageCounters,
    pub load: StageCounters,
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
pub struct Reporter {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Reporter {
    /// Starts drawing `p`: bars on a TTY (unless `quiet`), log lines every
    /// `log_every` otherwise.
    pub fn start(p: Arc<RunProgress>, quiet: bool, log_every: Duration) -> Reporter {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let tty = std::io::stderr().is_terminal() && !quiet;
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let start = Instant::now();
                if tty {
                    let mp = indicatif::MultiProgress::new();
                    let style = indicatif::ProgressStyle::with_template("{spinner} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
                    let bars: Vec<_> = (0..3)
                        .map(|_| {
                            let b = mp.add(indicatif::ProgressBar::new_spinner());
                            b.set_style(style.clone());
                            b
                        })
                        .collect();
                    while !d.load(Ordering::Relaxed) {
                        let e = start.elapsed();
                        bars[0].set_message(p.extract.line("extract", e));
                        bars[1].set_message(p.transform.line("transform", e));
                        bars[2].set_message(p.load.line("load", e));
                        for b in &bars {
                            b.tick();
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    for b in &bars {
                        b.finish_and_clear();
                    }
                } else {
                    let mut last = Instant::now();
                    while !d.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(100));
                        if last.elapsed() >= log_every {
                            last = Instant::now();
                            let e = start.elapsed();
                            tracing::info!("{}", p.extract.line("extract", e));
                            tracing::info!("{}", p.transform.line("transform", e));
                            tracing::info!("{}", p.load.line("load", e));
                        }
                    }
                }
            })
            .ok();
        Reporter { done, handle }
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
