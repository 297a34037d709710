//! Configuration: `pipeline.toml` → [`RawConfig`] (serde, unknown keys refused)
//! → [`Config`] (checked by the pure [`RawConfig::validate`], no I/O), plus the
//! secrets (`JIRA_PAT`, `DATABASE_URL`) that only ever come from the
//! environment or a `.env` file.
//!
//! Every error is one line naming the file, the key (and line when the parser
//! gives one) and the fix.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The configuration file as written. Every field has a default, so an empty
/// file plus one `[[scope]]` is a valid configuration.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// How to reach Jira.
    #[serde(default)]
    pub jira: RawJira,
    /// Incremental sync and backfill settings.
    #[serde(default)]
    pub sync: RawSync,
    /// The staging area on disk.
    #[serde(default)]
    pub staging: RawStaging,
    /// The PostgreSQL warehouse.
    #[serde(default)]
    pub database: RawDatabase,
    /// What to copy: one entry per scope.
    #[serde(default)]
    pub scope: Vec<RawScope>,
}

/// `[jira]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawJira {
    /// Base URL of the Jira instance, e.g. `https://jira.example.com`.
    pub base_url: String,
    /// `maxResults` asked for per search request (1..=1000). Jira may cap it lower.
    pub page_size: u32,
    /// Requests in flight at once, over all scopes (1..=64).
    pub concurrency: u32,
    /// TCP connect timeout, seconds.
    pub connect_timeout_secs: u64,
    /// Timeout for a whole request including the body, seconds.
    pub request_timeout_secs: u64,
    /// Optional PEM file with extra CA certificates to trust.
    pub ca_bundle: Option<PathBuf>,
    /// Turns TLS certificate verification off. Logged loudly; never do this in production.
    pub danger_accept_invalid_certs: bool,
    /// Retry policy for transient failures (429, 502/503/504, resets, timeouts).
    pub retry: RawRetry,
}

impl Default for RawJira {
    fn default() -> Self {
        RawJira {
            base_url: "http://127.0.0.1:8080".into(),
            page_size: 100,
            concurrency: 8,
            connect_timeout_secs: 10,
            request_timeout_secs: 120,
            ca_bundle: None,
            danger_accept_invalid_certs: false,
            retry: RawRetry::default(),
        }
    }
}

/// `[jira.retry]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    /// Attempts per request, including the first (1..=100).
    pub attempts: u32,
    /// First backoff delay, milliseconds (exponential with full jitter).
    pub base_delay_ms: u64,
    /// Upper bound of one backoff delay, milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry {
            attempts: 8,
            base_delay_ms: 500,
            max_delay_ms: 60_000,
        }
    }
}

/// `[sync]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSync {
    /// An incremental run re-reads issues updated this many minutes before the checkpoint.
    pub safety_window_minutes: u32,
    /// Where a backfill starts: `YYYY-MM-DD` or an RFC 3339 timestamp.
    pub backfill_start: String,
    /// `sync` and `run` take a census of a scope (`pipeline reconcile`)
    /// when its last one is older than this many hours; 0 = never automatically.
    pub reconcile_every_hours: u32,
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync {
            safety_window_minutes: 15,
            backfill_start: "2000-01-01".into(),
            reconcile_every_hours: 24,
        }
    }
}

/// `[staging]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStaging {
    /// Directory of the staging area (relative paths are relative to the working directory).
    pub dir: PathBuf,
    /// zstd level for staged files (1..=22).
    pub compression_level: i32,
    /// Archived pages older than this many days are removed by `staging gc` (0 keeps them).
    pub archive_max_age_days: u32,
    /// The archive is pruned, oldest first, down to this many MiB (0 means no limit).
    pub archive_max_mib: u64,
}

impl Default for RawStaging {
    fn default() -> Self {
        RawStaging {
            dir: PathBuf::from("staging"),
            compression_level: 3,
            archive_max_age_days: 30,
            archive_max_mib: 0,
        }
    }
}

/// `[database]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDatabase {
    /// PostgreSQL schema that holds the warehouse tables.
    pub schema: String,
    /// `statement_timeout` for the pipeline's sessions, seconds (0 = none).
    pub statement_timeout_secs: u64,
    /// Optional PEM file of CA certificates; when set, TLS connections verify the server.
    pub ca_bundle: Option<PathBuf>,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            schema: "jira".into(),
            statement_timeout_secs: 600,
            ca_bundle: None,
        }
    }
}

/// `[[scope]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Unique name; used in file names and as the checkpoint key.
    pub name: String,
    /// Jira project key.
    pub project: String,
    /// Issue type names; empty means all.
    #[serde(default)]
    pub issue_types: Vec<String>,
    /// Custom fields to copy into `issue_field_value`, by id (`customfield_10002`)
    /// or by name (`Story Points`); `"*all"` means every custom field.
    #[serde(default = "default_fields")]
    pub fields: Vec<String>,
    /// Extra JQL, ANDed with the scope's own clauses (wrapped in parentheses).
    #[serde(default)]
    pub jql: Option<String>,
}

fn default_fields() -> Vec<String> {
    vec!["*all".into()]
}

/// A secret string: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; only for building an `Authorization` header or a connection.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (for messages).
    pub path: PathBuf,
    pub jira: JiraConfig,
    pub sync: SyncConfig,
    pub staging: StagingConfig,
    pub database: DatabaseConfig,
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone)]
pub struct JiraConfig {
    /// Without a trailing slash.
    pub base_url: String,
    pub page_size: u32,
    pub concurrency: usize,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub ca_bundle: Option<PathBuf>,
    pub danger_accept_invalid_certs: bool,
    pub retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

#[derive(Debug, Clone)]
pub struct SyncConfig {
    pub safety_window: Duration,
    pub backfill_start: DateTime<Utc>,
    /// How old a scope's last census may be before `sync`/`run` take one
    /// (`None`: never automatically).
    pub reconcile_every: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct StagingConfig {
    pub dir: PathBuf,
    pub compression_level: i32,
    pub archive_max_age_days: u32,
    pub archive_max_mib: u64,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub schema: String,
    pub statement_timeout: Duration,
    pub ca_bundle: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub name: String,
    pub project: String,
    pub issue_types: Vec<String>,
    /// Custom fields by id or name; `*all` for every custom field.
    pub fields: Vec<String>,
    pub jql: Option<String>,
}

impl Scope {
    /// True when every custom field is wanted.
    pub(crate) fn all_custom_fields(&self) -> bool {
        self.fields.iter().any(|f| f == "*all")
    }
}

/// Page size limits accepted by `validate`.
pub(crate) const PAGE_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

fn is_valid_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// PostgreSQL identifiers we accept for the schema: lower-case, no quoting surprises.
pub fn is_valid_schema_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && s.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_valid_project_key(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Parses `YYYY-MM-DD` (midnight UTC) or an RFC 3339 timestamp.
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl RawConfig {
    /// Parses TOML text; `path` only names the file in messages.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig> {
        let de = toml::Deserializer::parse(text).map_err(|e| toml_error(path, text, &e, None))?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            toml_error(path, text, e.inner(), Some(key))
        })
    }

    /// Checks every setting; pure (no I/O). Every problem is collected
    /// before failing, so a user fixes the file once: the error is one line
    /// naming the file and each key with its fix (`; ` between them).
    pub fn validate(self, path: &Path) -> Result<Config> {
        let mut p = Problems::default();
        let jira = self.jira.validate(&mut p);
        let sync = self.sync.validate(&mut p);
        let staging = self.staging.validate(&mut p);
        let database = self.database.validate(&mut p);
        let scopes = validate_scopes(self.scope, &mut p);
        match (jira, sync, staging, database) {
            (Some(jira), Some(sync), Some(staging), Some(database)) if p.0.is_empty() => {
                Ok(Config {
                    path: path.to_path_buf(),
                    jira,
                    sync,
                    staging,
                    database,
                    scopes,
                })
            }
            _ => Err(p.into_error(path)),
        }
    }
}

/// Configuration problems found by `validate`: (key, what to do).
#[derive(Debug, Default)]
struct Problems(Vec<(String, String)>);

impl Problems {
    fn bad(&mut self, key: impl Into<String>, msg: String) {
        self.0.push((key.into(), msg));
    }

    fn into_error(self, path: &Path) -> Error {
        let file = path.display();
        let list: Vec<String> = self.0.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        match list.len() {
            0 => Error::Config(format!("{file}: invalid configuration")),
            1 => Error::Config(format!("{file}: {}", list[0])),
            n => Error::Config(format!("{file}: {n} problems: {}", list.join("; "))),
        }
    }
}

impl RawJira {
    fn validate(self, p: &mut Problems) -> Option<JiraConfig> {
        let j = self;
        let ok = p.0.len();
        let base_url = j.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://"))
            || base_url.len() <= "https://".len()
        {
            p.bad(
                "jira.base_url",
                format!(
                    "{:?} is not an http(s) URL; set it to your Jira's address, e.g. \"https://jira.example.com\"",
                    j.base_url
                ),
            );
        }
        if !PAGE_SIZE_RANGE.contains(&j.page_size) {
            p.bad(
                "jira.page_size",
                format!(
                    "{} is out of range; use a value from {} to {} (Jira DC caps it at 100 by default)",
                    j.page_size,
                    PAGE_SIZE_RANGE.start(),
                    PAGE_SIZE_RANGE.end()
                ),
            );
        }
        if !(1..=64).contains(&j.concurrency) {
            p.bad(
                "jira.concurrency",
                format!("{} is out of range; use 1 to 64", j.concurrency),
            );
        }
        if j.connect_timeout_secs == 0 || j.request_timeout_secs == 0 {
            p.bad(
                "jira.connect_timeout_secs / jira.request_timeout_secs",
                "timeouts must be at least 1 second".into(),
            );
        }
        if !(1..=100).contains(&j.retry.attempts) {
            p.bad(
                "jira.retry.attempts",
                format!("{} is out of range; use 1 to 100", j.retry.attempts),
            );
        }
        if j.retry.base_delay_ms == 0 || j.retry.max_delay_ms < j.retry.base_delay_ms {
            p.bad(
                "jira.retry.max_delay_ms",
                format!(
                    "base_delay_ms ({}) must be at least 1 and no more than max_delay_ms ({})",
                    j.retry.base_delay_ms, j.retry.max_delay_ms
                ),
            );
        }
        (p.0.len() == ok).then(|| JiraConfig {
            base_url,
            page_size: j.page_size,
            concurrency: j.concurrency as usize,
            connect_timeout: Duration::from_secs(j.connect_timeout_secs),
            request_timeout: Duration::from_secs(j.request_timeout_secs),
            ca_bundle: j.ca_bundle,
            danger_accept_invalid_certs: j.danger_accept_invalid_certs,
            retry: RetryPolicy {
                attempts: j.retry.attempts,
                base_delay: Duration::from_millis(j.retry.base_delay_ms),
                max_delay: Duration::from_millis(j.retry.max_delay_ms),
            },
        })
    }
}

impl RawSync {
    fn validate(self, p: &mut Problems) -> Option<SyncConfig> {
        let Some(backfill_start) = parse_instant(&self.backfill_start) else {
            p.bad(
                "sync.backfill_start",
                format!(
                    "{:?} is not a date; write YYYY-MM-DD or an RFC 3339 timestamp such as 2020-01-01T00:00:00Z",
                    self.backfill_start
                ),
            );
            return None;
        };
        Some(SyncConfig {
            safety_window: Duration::from_secs(u64::from(self.safety_window_minutes) * 60),
            reconcile_every: (self.reconcile_every_hours > 0)
                .then(|| Duration::from_secs(u64::from(self.reconcile_every_hours) * 3600)),
            backfill_start,
        })
    }
}

impl RawStaging {
    fn validate(self, p: &mut Problems) -> Option<StagingConfig> {
        let ok = p.0.len();
        if !(1..=22).contains(&self.compression_level) {
            p.bad(
                "staging.compression_level",
                format!(
                    "{} is out of range; use a zstd level from 1 to 22 (3 is a good default)",
                    self.compression_level
                ),
            );
        }
        if self.dir.as_os_str().is_empty() {
            p.bad(
                "staging.dir",
                "is empty; name a directory, e.g. \"staging\"".into(),
            );
        }
        (p.0.len() == ok).then_some(StagingConfig {
            dir: self.dir,
            compression_level: self.compression_level,
            archive_max_age_days: self.archive_max_age_days,
            archive_max_mib: self.archive_max_mib,
        })
    }
}

impl RawDatabase {
    fn validate(self, p: &mut Problems) -> Option<DatabaseConfig> {
        if !is_valid_schema_name(&self.schema) {
            p.bad(
                "database.schema",
                format!(
                    "{:?} is not a valid schema name; use lower-case letters, digits and _ (at most 63), e.g. \"jira\"",
                    self.schema
                ),
            );
            return None;
        }
        Some(DatabaseConfig {
            schema: self.schema,
            statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            ca_bundle: self.ca_bundle,
        })
    }
}

fn validate_scopes(raw: Vec<RawScope>, p: &mut Problems) -> Vec<Scope> {
    if raw.is_empty() {
        p.bad(
            "scope",
            "no scopes are configured; add at least one [[scope]] with name and project".into(),
        );
    }
    let mut names = HashSet::new();
    let mut scopes = Vec::with_capacity(raw.len());
    for (i, s) in raw.into_iter().enumerate() {
        let key = |k: &str| format!("scope[{i}].{k}");
        if !is_valid_scope_name(&s.name) {
            p.bad(
                key("name"),
                format!(
                    "{:?} is not a valid scope name; use letters, digits, _ and - (it becomes a directory name)",
                    s.name
                ),
            );
        } else if !names.insert(s.name.clone()) {
            p.bad(
                key("name"),
                format!(
                    "scope name {:?} is used twice; give every [[scope]] its own name",
                    s.name
                ),
            );
        }
        if !is_valid_project_key(&s.project) {
            p.bad(
                key("project"),
                format!(
                    "{:?} is not a Jira project key; use the key in capitals, e.g. \"ABC\"",
                    s.project
                ),
            );
        }
        if s.issue_types.iter().any(|t| t.trim().is_empty()) {
            p.bad(
                key("issue_types"),
                "contains an empty name; remove it or name the issue type".into(),
            );
        }
        if s.fields.iter().any(|t| t.trim().is_empty()) {
            p.bad(
                key("fields"),
                "contains an empty name; list custom field ids or names, or \"*all\"".into(),
            );
        }
        let jql = s
            .jql
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty());
        scopes.push(Scope {
            name: s.name,
            project: s.project,
            issue_types: s.issue_types,
            fields: s.fields,
            jql,
        });
    }
    scopes
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error, key: Option<String>) -> Error {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let loc = match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    };
    let msg = e.message().trim().replace('\n', " ");
    let hint = if msg.contains("unknown field") {
        "remove or correct the key (see the commented pipeline.toml for every setting)"
    } else if msg.contains("invalid type") {
        "give the value the type shown in pipeline.toml"
    } else if msg.contains("missing field") {
        "add the key"
    } else {
        "fix the TOML syntax"
    };
    match key.filter(|k| !k.is_empty() && k != ".") {
        Some(k) => Error::Config(format!("{loc}: {k}: {msg}; {hint}")),
        None => Error::Config(format!("{loc}: {msg}; {hint}")),
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "{}: cannot read the configuration file ({e}); pass --config PATH or create pipeline.toml",
                path.display()
            ))
        })?;
        RawConfig::parse(&text, path)?.validate(path)
    }

    /// The scope with this name.
    /// The scopes named (every configured scope when `names` is empty), in
    /// the order given: the one rule every command selects scopes by.
    pub(crate) fn select_scopes(&self, names: &[String]) -> Result<Vec<&Scope>> {
        if names.is_empty() {
            Ok(self.scopes.iter().collect())
        } else {
            names.iter().map(|n| self.scope(n)).collect()
        }
    }

    pub fn scope(&self, name: &str) -> Result<&Scope> {
        self.scopes.iter().find(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.scopes.iter().map(|s| s.name.as_str()).collect();
            Error::Config(format!(
                "{}: no scope named {name:?}; configured scopes: {}",
                self.path.display(),
                known.join(", ")
            ))
        })
    }
}

/// Loads `.env` from the working directory if present; variables already set
/// win. Returns a warning to log (logging starts after `.env` is read) when
/// the file is readable by its group or others: it holds the token.
pub fn load_dotenv() -> Result<Option<String>> {
    match dotenvy::dotenv() {
        Ok(path) => Ok(shared_warning(&path)),
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!(
            ".env: cannot be read ({e}); fix the line or remove the file"
        ))),
    }
}

/// A `.env` readable by group or others gets a warning (never an error:
/// some deployments mount secrets that way on purpose).
fn shared_warning(path: &std::path::Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "{}: readable by other users (mode {:o}) but it holds secrets; run chmod 600 on it",
                path.display(),
                mode & 0o777
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// `JIRA_PAT` from the environment.
pub fn jira_pat() -> Result<Secret> {
    match std::env::var("JIRA_PAT") {
        Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim())),
        _ => Err(Error::Config(
            "JIRA_PAT is not set; export your Jira personal access token as JIRA_PAT or put it in .env (see .env.example)".into(),
        )),
    }
}

/// `DATABASE_URL` from the environment, checked to be a PostgreSQL URL.
pub fn database_url() -> Result<Secret> {
    let v = std::env::var("DATABASE_URL").map_err(|_| {
        Error::Config(
            "DATABASE_URL is not set; export it (e.g. postgres://postgres@127.0.0.1:5432/test) or put it in .env (see .env.example)".into(),
        )
    })?;
    check_database_url(&v)?;
    Ok(Secret::new(v))
}

/// Checks that `url` is a `postgres://` or `postgresql://` URL the driver accepts.
pub(crate) fn check_database_url(url: &str) -> Result<()> {
    let masked = mask_url(url);
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::Config(format!(
            "DATABASE_URL {masked:?} is not a PostgreSQL URL; write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        )));
    }
    crate::db::driver_url(url).parse::<postgres::Config>().map_err(|e| {
        Error::Config(format!(
            "DATABASE_URL {masked:?} cannot be parsed ({e}); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ))
    })?;
    Ok(())
}

/// A URL with any password replaced by `***`, for display.
pub(crate) fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..auth_end].rfind('@') else {
        return url.to_string();
    };
    let userinfo = &rest[..at];
    match userinfo.find(':') {
        Some(colon) => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &userinfo[..colon],
            &rest[at..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        RawConfig::parse(text, Path::new("t.toml"))?.validate(Path::new("t.toml"))
    }

    const MIN: &str = "[[scope]]\nname = \"a\"\nproject = \"ABC\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(MIN).unwrap();
        assert_eq!(c.jira.page_size, 100);
        assert_eq!(c.database.schema, "jira");
        assert_eq!(c.scopes[0].fields, vec!["*all".to_string()]);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = parse(&format!("{MIN}\n[jira]\npagesize = 5\n")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("t.toml:6"), "{m}");
        assert!(m.contains("pagesize"), "{m}");
        assert_eq!(e.exit_code(), crate::error::ExitCode::Usage);
    }

    #[test]
    fn wrong_type_names_key() {
        let e = parse(&format!("[jira]\npage_size = \"big\"\n{MIN}")).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("jira.page_size"), "{m}");
        assert!(m.contains("t.toml:2"), "{m}");
    }

    #[test]
    fn empty_scopes_refused() {
        let m = parse("").unwrap_err().to_string();
        assert!(m.contains("scope") && m.contains("add at least one"), "{m}");
    }

    #[test]
    fn duplicate_scope_refused() {
        let m = parse(&format!("{MIN}{MIN}")).unwrap_err().to_string();
        assert!(m.contains("scope[1].name") && m.contains("twice"), "{m}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let m = parse(
            "[jira]\npage_size = 0\nconcurrency = 99\n[sync]\nbackfill_start = \"yesterday\"\n\
             [database]\nschema = \"Bad-Name\"\n[[scope]]\nname = \"demo\"\nproject = \"lower\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(m.starts_with("t.toml: 5 problems: "), "{m}");
        for key in [
            "jira.page_size",
            "jira.concurrency",
            "sync.backfill_start",
            "database.schema",
            "scope[0].project",
        ] {
            assert!(m.contains(key), "{key} missing from {m}");
        }
        assert!(!m.contains('\n'), "not one line: {m}");
    }

    #[test]
    fn page_size_range() {
        let m = parse(&format!("[jira]\npage_size = 0\n{MIN}"))
            .unwrap_err()
            .to_string();
        assert!(m.contains("jira.page_size"), "{m}");
        let m = parse(&format!("[jira]\npage_size = 5000\n{MIN}"))
            .unwrap_err()
            .to_string();
        assert!(m.contains("out of range"), "{m}");
    }

    #[test]
    fn database_url_checked_and_masked() {
        assert!(check_database_url("postgres://u:pw@localhost/db").is_ok());
        let m = check_database_url("mysql://u:topsecret@localhost/db")
            .unwrap_err()
            .to_string();
        assert!(m.contains("not a PostgreSQL URL"), "{m}");
        assert!(!m.contains("topsecret"), "{m}");
        assert_eq!(
            mask_url("postgres://u:pw@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(mask_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn secret_debug_is_masked() {
        let s = Secret::new("abc123");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }

    #[test]
    fn instants_parse() {
        assert!(parse_instant("2020-01-02").is_some());
        assert!(parse_instant("2020-01-02T03:04:05+02:00").is_some());
        assert!(parse_instant("yesterday").is_none());
    }
}
