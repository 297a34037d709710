//! Fault injection: what can go wrong with a response ([`Fault`]), the
//! probabilities of each ([`FaultConfig`], drawn from a seeded sequence so a
//! run is reproducible) and a schedule of faults for the next requests
//! ("the next 3 search requests get 429").

use std::collections::VecDeque;

use super::data::mix;

/// One injected fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 429 with `Retry-After` and the `X-RateLimit-*` headers.
    RateLimit { retry_after_secs: u64 },
    /// HTTP 500, 502, 503 or 504 with a JSON error body.
    Status(u16),
    /// HTTP 502 with an HTML error page (as a reverse proxy sends).
    HtmlBadGateway,
    /// HTTP 200 with an HTML single-sign-on login page instead of JSON (a
    /// proxy in front of Jira that lost the session).
    HtmlLoginPage,
    /// Status and headers with the full `Content-Length`, half the body,
    /// then a TCP reset.
    ResetMidBody,
    /// HTTP 200 whose body is cut in half, with a `Content-Length` that
    /// matches the cut body: the HTTP exchange is fine, the JSON is not.
    TruncatedBody,
    /// The full `Content-Length`, half the body, then a clean close (FIN).
    CloseMidBody,
    /// The response is delayed this long before its first byte.
    SlowFirstByte { ms: u64 },
}

/// Which requests faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FaultScope {
    /// Only `/rest/api/2/search` (the default).
    #[default]
    Search,
    /// Every endpoint.
    All,
}

/// Fault probabilities (0.0 ..= 1.0 each, checked in this order, at most one
/// fault per request) and their parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Seed of the fault draws (a run with the same seed and request order
    /// gets the same faults).
    pub seed: u64,
    pub rate_429: f64,
    pub rate_500: f64,
    pub rate_502: f64,
    pub rate_503: f64,
    pub rate_html_502: f64,
    pub rate_reset: f64,
    pub rate_truncate: f64,
    pub rate_close: f64,
    pub rate_slow: f64,
    /// Delay of a slow first byte, milliseconds.
    pub slow_ms: u64,
    /// `Retry-After` of a 429, seconds.
    pub retry_after_secs: u64,
    pub scope: FaultScope,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: 0,
            rate_429: 0.0,
            rate_500: 0.0,
            rate_502: 0.0,
            rate_503: 0.0,
            rate_html_502: 0.0,
            rate_reset: 0.0,
            rate_truncate: 0.0,
            rate_close: 0.0,
            rate_slow: 0.0,
            slow_ms: 2000,
            retry_after_secs: 1,
            scope: FaultScope::Search,
        }
    }
}

impl FaultConfig {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// True when any probability is non-zero.
    pub fn any(&self) -> bool {
        self.rates().iter().any(|(r, _)| *r > 0.0)
    }

    fn rates(&self) -> [(f64, Fault); 9] {
        [
            (
                self.rate_429,
                Fault::RateLimit {
                    retry_after_secs: self.retry_after_secs,
                },
            ),
            (self.rate_500, Fault::Status(500)),
            (self.rate_502, Fault::Status(502)),
            (self.rate_503, Fault::Status(503)),
            (self.rate_html_502, Fault::HtmlBadGateway),
            (self.rate_reset, Fault::ResetMidBody),
            (self.rate_truncate, Fault::TruncatedBody),
            (self.rate_close, Fault::CloseMidBody),
            (self.rate_slow, Fault::SlowFirstByte { ms: self.slow_ms }),
        ]
    }
}

/// The fault state of a running simulator.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub config: FaultConfig,
    /// Faults for the next search requests, one per request, in order.
    pub search_schedule: VecDeque<Fault>,
    /// Faults for the next requests of any endpoint.
    pub any_schedule: VecDeque<Fault>,
    /// The authentication trap answering every request, if any.
    pub trap: Option<super::traps::AuthTrap>,
    draws: u64,
}

impl FaultState {
    pub fn new(config: FaultConfig) -> Self {
        FaultState {
            config,
            ..Default::default()
        }
    }

    /// The fault for the next request (if any): scheduled faults first, then
    /// a seeded draw against the probabilities.
    pub fn next(&mut self, is_search: bool) -> Option<Fault> {
        if let Some(f) = self.any_schedule.pop_front() {
            return Some(f);
        }
        if is_search && let Some(f) = self.search_schedule.pop_front() {
            return Some(f);
        }
        if !is_search && self.config.scope == FaultScope::Search {
            return None;
        }
        if !self.config.any() {
            return None;
        }
        self.draws += 1;
        let x = mix(self.config.seed ^ mix(self.draws)) as f64 / u64::MAX as f64;
        let mut acc = 0.0;
        for (rate, fault) in self.config.rates() {
            acc += rate;
            if x < acc {
                return Some(fault);
            }
        }
        None
    }
}
