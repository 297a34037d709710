//! Human-readable reports printed by commands (effective configuration, …).
//! Secrets are always masked here.

use std::fmt::Write as _;

use crate::config::{Config, mask_url};

/// The effective configuration as TOML-like text, with secrets masked.
pub fn effective_config(cfg: &Config) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# effective configuration from {}", cfg.path.display());
    let j = &cfg.jira;
    let _ = writeln!(s, "[jira]");
    let _ = writeln!(s, "base_url = {:?}", j.base_url);
    let _ = writeln!(s, "page_size = {}", j.page_size);
    let _ = writeln!(s, "concurrency = {}", j.concurrency);
    let _ = writeln!(s, "connect_timeout_secs = {}", j.connect_timeout.as_secs());
    let _ = writeln!(s, "request_timeout_secs = {}", j.request_timeout.as_secs());
    let _ = writeln!(
        s,
        "ca_bundle = {:?}",
        j.ca_bundle
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "danger_accept_invalid_certs = {}",
        j.danger_accept_invalid_certs
    );
    let _ = writeln!(s, "[jira.retry]");
    let _ = writeln!(s, "attempts = {}", j.retry.attempts);
    let _ = writeln!(s, "base_delay_ms = {}", j.retry.base_delay.as_millis());
    let _ = writeln!(s, "max_delay_ms = {}", j.retry.max_delay.as_millis());
    let _ = writeln!(s, "[sync]");
    let _ = writeln!(
        s,
        "safety_window_minutes = {}",
        cfg.sync.safety_window.as_secs() / 60
    );
    let _ = writeln!(
        s,
        "backfill_start = {:?}",
        cfg.sync.backfill_start.to_rfc3339()
    );
    let _ = writeln!(s, "[staging]");
    let _ = writeln!(s, "dir = {:?}", cfg.staging.dir.display().to_string());
    let _ = writeln!(s, "compression_level = {}", cfg.staging.compression_level);
    let _ = writeln!(
        s,
        "archive_max_age_days = {}",
        cfg.staging.archive_max_age_days
    );
    let _ = writeln!(s, "archive_max_mib = {}", cfg.staging.archive_max_mib);
    let _ = writeln!(s, "[database]");
    let _ = writeln!(s, "schema = {:?}", cfg.database.schema);
    let _ = writeln!(
        s,
        "statement_timeout_secs = {}",
        cfg.database.statement_timeout.as_secs()
    );
    for sc in &cfg.scopes {
        let _ = writeln!(s, "[[scope]]");
        let _ = writeln!(s, "name = {:?}", sc.name);
        let _ = writeln!(s, "project = {:?}", sc.project);
        let _ = writeln!(s, "issue_types = {:?}", sc.issue_types);
        let _ = writeln!(s, "fields = {:?}", sc.fields);
        if let Some(q) = &sc.jql {
            let _ = writeln!(s, "jql = {q:?}");
        }
    }
    let _ = writeln!(s, "# environment");
    let pat = match std::env::var("JIRA_PAT") {
        Ok(v) if !v.is_empty() => "set (***)".to_string(),
        _ => "NOT SET (needed for commands that talk to Jira)".to_string(),
    };
    let _ = writeln!(s, "# JIRA_PAT = {pat}");
    let db = match std::env::var("DATABASE_URL") {
        Ok(v) => match crate::config::check_database_url(&v) {
            Ok(()) => mask_url(&v),
            Err(e) => format!("INVALID: {e}"),
        },
        Err(_) => "NOT SET (needed for commands that use the warehouse)".to_string(),
    };
    let _ = writeln!(s, "# DATABASE_URL = {db}");
    s
}
