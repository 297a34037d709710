//! Pacing shared by every request in flight: a global pause after a 429 with
//! `Retry-After`, an adaptive spacing learnt from Jira DC's `X-RateLimit-*`
//! headers (so we slow down before the server has to refuse), and the
//! exponential backoff with full jitter used between attempts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use crate::config::RetryPolicy;

/// Delay before attempt `attempt + 1` (attempt counts from 1): uniform in
/// `[0, min(max, base · 2^(attempt-1))]` ("full jitter").
pub(crate) fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let cap = exp.min(policy.max_delay);
    let ms = cap.as_millis() as u64;
    Duration::from_millis(if ms == 0 { 0 } else { fastrand::u64(0..=ms) })
}

/// Parses `Retry-After`: delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs.min(3600.0)));
        }
        return None;
    }
    let when = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(
        delta
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600)),
    )
}

#[derive(Debug)]
struct State {
    /// No request starts before this (after a 429).
    paused_until: Option<Instant>,
    /// The next request may start at this instant (adaptive spacing).
    next_slot: Instant,
    /// Spacing between request starts; zero when the server shows headroom.
    interval: Duration,
    /// The spacing lapses at this instant unless the headers renew it (a
    /// server that stops sending them must not slow us down for ever).
    spacing_until: Option<Instant>,
}

/// The shared limiter.
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter {
            state: Mutex::new(State {
                paused_until: None,
                next_slot: Instant::now(),
                interval: Duration::ZERO,
                spacing_until: None,
            }),
        }
    }
}

fn header_f64(h: &HeaderMap, name: &str) -> Option<f64> {
    h.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Limiter {
    /// Waits until a request may start; returns how long it waited, or `None`
    /// if `stop` was raised meanwhile.
    pub(crate) async fn acquire(&self, stop: &AtomicBool) -> Option<Duration> {
        let began = Instant::now();
        loop {
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            let wait = {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let mut ready = s.next_slot.max(now);
                if let Some(p) = s.paused_until {
                    if p > ready {
                        ready = p;
                    } else if p <= now {
                        s.paused_until = None;
                    }
                }
                if s.spacing_until.is_some_and(|u| u <= now) {
                    s.interval = Duration::ZERO;
                    s.spacing_until = None;
                }
                if ready <= now {
                    s.next_slot = now + s.interval;
                    None
                } else {
                    Some(ready - now)
                }
            };
            match wait {
                None => return Some(began.elapsed()),
                Some(w) => tokio::time::sleep(w.min(Duration::from_millis(200))).await,
            }
        }
    }

    /// Stops every request from starting for `d` (a 429's `Retry-After`).
    pub fn pause(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let until = Instant::now() + d;
        s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
    }

    /// The current spacing between request starts.
    #[cfg(test)]
    pub(crate) fn interval(&self) -> Duration {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .interval
    }

    /// Learns from Jira DC's rate-limit headers (`X-RateLimit-Limit`,
    /// `-Remaining`, `-FillRate`, `-Interval-Seconds`): while fewer than a
    /// fifth of the tokens remain, requests are spaced at the fill rate;
    /// with more than half left, or five intervals without news, the
    /// spacing is dropped again.
    pub(crate) fn observe(&self, h: &HeaderMap) {
        let Some(remaining) = header_f64(h, "x-ratelimit-remaining") else {
            return;
        };
        let limit = header_f64(h, "x-ratelimit-limit").unwrap_or(remaining.max(1.0));
        let fill = header_f64(h, "x-ratelimit-fillrate").unwrap_or(0.0);
        let every = header_f64(h, "x-ratelimit-interval-seconds").unwrap_or(1.0);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if remaining <= (limit / 5.0).max(1.0) && fill > 0.0 && every > 0.0 {
            // One token every `every / fill` seconds; stay just under it.
            let spacing = Duration::from_secs_f64((every / fill * 1.1).min(60.0));
            if spacing > s.interval {
                tracing::debug!(
                    remaining,
                    limit,
                    spacing_ms = spacing.as_millis() as u64,
                    "Jira rate limit nearly used up; spacing requests"
                );
            }
            s.interval = spacing;
            s.spacing_until =
                Some(Instant::now() + Duration::from_secs_f64((every * 5.0).clamp(1.0, 300.0)));
        } else if remaining > limit / 2.0 {
            s.interval = Duration::ZERO;
            s.spacing_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        for attempt in 1..10 {
            for _ in 0..50 {
                let d = backoff(&p, attempt);
                let cap = (100u64 << (attempt - 1)).min(350);
                assert!(d <= Duration::from_millis(cap), "{attempt}: {d:?}");
            }
        }
        // Full jitter: the delays spread, they are not all the cap.
        let set: std::collections::HashSet<_> = (0..50).map(|_| backoff(&p, 4)).collect();
        assert!(set.len() > 5);
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert!(parse_retry_after("soon").is_none());
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&later).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(31),
            "{d:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn rate_limit_headers_adapt_spacing() {
        let l = Limiter::default();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("90"));
        h.insert("x-ratelimit-fillrate", HeaderValue::from_static("10"));
        h.insert(
            "x-ratelimit-interval-seconds",
            HeaderValue::from_static("1"),
        );
        l.observe(&h);
        assert_eq!(l.interval(), Duration::ZERO);
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("5"));
        l.observe(&h);
        let i = l.interval();
        assert!(
            i >= Duration::from_millis(100) && i < Duration::from_millis(200),
            "{i:?}"
        );
        h.insert("x-ratelimit-remaining", HeaderValue::from_static("80"));
        l.observe(&h);
        assert_eq!(l.interval(), Duration::ZERO);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn pause_holds_every_request() {
        let l = Limiter::default();
        let stop = AtomicBool::new(false);
        l.pause(Duration::from_millis(60));
        // A lower bound only: the limiter may never let a request start early.
        let waited = l.acquire(&stop).await.unwrap();
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        stop.store(true, Ordering::Relaxed);
        l.pause(Duration::from_secs(30));
        assert!(l.acquire(&stop).await.is_none(), "stop flag ends the wait");
    }
}
