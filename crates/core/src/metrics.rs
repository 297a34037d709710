//! Run metrics: a small process-wide registry of counters and gauges, rendered
//! as OpenMetrics text (`--metrics-file PATH`, rewritten periodically and at
//! the end of a run). Names follow Prometheus conventions: `jira_pipeline_`
//! prefix, units in the name, `_total` on counters.
//!
//! Updates happen per request, page or load unit — never per row — so a
//! mutex-protected map is cheap enough and keeps the code obvious.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use crate::error::Result;

/// Kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Every metric family the pipeline exports: (name without `_total`, kind, help).
pub(crate) const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "jira_pipeline_requests",
        Kind::Counter,
        "HTTP requests to Jira by endpoint and status",
    ),
    (
        "jira_pipeline_retries",
        Kind::Counter,
        "Requests retried after a transient failure",
    ),
    (
        "jira_pipeline_rate_limit_wait_seconds",
        Kind::Counter,
        "Time spent waiting because of HTTP 429 / rate-limit headers",
    ),
    (
        "jira_pipeline_response_bytes",
        Kind::Counter,
        "Bytes of response bodies received from Jira",
    ),
    (
        "jira_pipeline_pages",
        Kind::Counter,
        "Pages handled, by stage",
    ),
    (
        "jira_pipeline_issues",
        Kind::Counter,
        "Issues handled, by stage",
    ),
    ("jira_pipeline_rows", Kind::Counter, "Rows loaded, by table"),
    (
        "jira_pipeline_quarantined",
        Kind::Counter,
        "Items quarantined, by kind (page or issue)",
    ),
    (
        "jira_pipeline_changelogs_refetched",
        Kind::Counter,
        "Issues fetched alone because the search cut their changelog short",
    ),
    (
        "jira_pipeline_issues_removed",
        Kind::Counter,
        "Issues a census marked removed, by scope and reason (deleted or out_of_scope)",
    ),
    (
        "jira_pipeline_stage_busy_seconds",
        Kind::Counter,
        "Time each stage spent working",
    ),
    (
        "jira_pipeline_checkpoint_lag_seconds",
        Kind::Gauge,
        "Now minus the checkpoint cursor, per scope",
    ),
    (
        "jira_pipeline_run_start_timestamp_seconds",
        Kind::Gauge,
        "Unix time when this run started",
    ),
];

type Key = (String, Vec<(String, String)>);

#[derive(Default)]
struct Registry {
    values: BTreeMap<Key, f64>,
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Registry::default()))
}

fn key(name: &str, labels: &[(&str, &str)]) -> Key {
    let mut l: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    (name.to_string(), l)
}

/// Adds `v` to a counter.
pub(crate) fn add(name: &str, labels: &[(&str, &str)], v: f64) {
    debug_assert!(family(name).is_some(), "unknown metric {name}");
    if let Ok(mut r) = registry().lock() {
        *r.values.entry(key(name, labels)).or_insert(0.0) += v;
    }
}

/// Adds 1 to a counter.
pub(crate) fn inc(name: &str, labels: &[(&str, &str)]) {
    add(name, labels, 1.0);
}

/// Sets a gauge.
pub fn set(name: &str, labels: &[(&str, &str)], v: f64) {
    debug_assert!(family(name).is_some(), "unknown metric {name}");
    if let Ok(mut r) = registry().lock() {
        r.values.insert(key(name, labels), v);
    }
}

/// The current value of a metric (0 if never set), for summaries and tests.
pub fn get(name: &str, labels: &[(&str, &str)]) -> f64 {
    registry()
        .lock()
        .ok()
        .and_then(|r| r.values.get(&key(name, labels)).copied())
        .unwrap_or(0.0)
}

/// The sum of a metric over all label sets.
pub fn sum(name: &str) -> f64 {
    registry()
        .lock()
        .map(|r| {
            r.values
                .iter()
                .filter(|((n, _), _)| n == name)
                .map(|(_, v)| v)
                .sum()
        })
        .unwrap_or(0.0)
}

fn family(name: &str) -> Option<&'static (&'static str, Kind, &'static str)> {
    FAMILIES.iter().find(|f| f.0 == name)
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn fmt_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Renders every family in OpenMetrics text format, ending with `# EOF`.
pub fn render() -> String {
    let values = registry()
        .lock()
        .map(|r| r.values.clone())
        .unwrap_or_default();
    let mut out = String::new();
    for (name, kind, help) in FAMILIES {
        let samples: Vec<_> = values.iter().filter(|((n, _), _)| n == name).collect();
        if samples.is_empty() {
            continue;
        }
        let kind_s = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# TYPE {name} {kind_s}");
        let _ = writeln!(out, "# HELP {name} {help}.");
        let suffix = if *kind == Kind::Counter { "_total" } else { "" };
        for ((_, labels), v) in samples {
            let l = if labels.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            };
            let _ = writeln!(out, "{name}{suffix}{l} {}", fmt_value(*v));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// Writes the rendered metrics to `path` atomically.
pub(crate) fn write_file(path: &Path) -> Result<()> {
    crate::staging::write_atomic(path, render().as_bytes())
}

/// Clears every metric (tests and `bench` runs that reuse a process).
pub fn reset() {
    if let Ok(mut r) = registry().lock() {
        r.values.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics() {
        add("jira_pipeline_rows", &[("table", "issue")], 5.0);
        inc(
            "jira_pipeline_requests",
            &[("endpoint", "search"), ("status", "200")],
        );
        set(
            "jira_pipeline_checkpoint_lag_seconds",
            &[("scope", "a\"b")],
            1.5,
        );
        let r = render();
        assert!(r.contains("# TYPE jira_pipeline_rows counter\n"), "{r}");
        assert!(
            r.contains("jira_pipeline_rows_total{table=\"issue\"} "),
            "{r}"
        );
        assert!(r.contains("jira_pipeline_requests_total{endpoint=\"search\",status=\"200\"} "));
        assert!(
            r.contains("jira_pipeline_checkpoint_lag_seconds{scope=\"a\\\"b\"} 1.5"),
            "{r}"
        );
        assert!(r.ends_with("# EOF\n"));
        assert!(get("jira_pipeline_rows", &[("table", "issue")]) >= 5.0);
    }
}
