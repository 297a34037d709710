//! One command's context, built once: the checked configuration, the secrets,
//! the staging area, the stop flag (one signal handler per process), one
//! tokio runtime (built on first use) and the database connections with the
//! schema's advisory lock. Every stage's entry point takes a [`Session`] and
//! a [`RunOptions`], and returns a report that implements [`Report`], so a
//! command is: build the session, call one entry point, print the report,
//! exit with its code.
//!
//! ```text
//! Session ──> extract::run ──> ExtractReport ┐
//!         ──> transform::run ─> TransformReport ├─ Display + exit_code()
//!         ──> load::run ──────> LoadReport     │
//!         ──> pipeline::run ──> RunSummary     ┘
//! ```

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::OnceLock;

use postgres::Client;

use crate::config::{Config, Scope, Secret};
use crate::error::{Error, ExitCode, Result};
use crate::load::LoadOptions;
use crate::shutdown::Stop;
use crate::staging::Staging;

/// What every stage reports: a summary for people (`Display`) and the exit
/// code it stands for.
pub trait Report: fmt::Display {
    fn exit_code(&self) -> ExitCode;
}

/// How a stage, or the whole pipeline, runs. Each stage reads the fields it
/// needs: extract `scopes` and `full`; transform `scopes` and `threads`; load
/// `scopes` and `load`; `pipeline::run` all of them.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Scope names; empty means every configured scope.
    pub scopes: Vec<String>,
    /// Backfill even where a checkpoint exists.
    pub full: bool,
    /// Rewrite OpenMetrics text here every few seconds and at the end.
    pub metrics_file: Option<PathBuf>,
    /// No progress display.
    pub quiet: bool,
    /// The command name recorded in `run_history`.
    pub command: String,
    /// Transform threads (0 = one per core).
    pub threads: usize,
    /// Loader tuning.
    pub load: LoadOptions,
}

/// One command's context. See the module docs.
pub struct Session {
    cfg: Config,
    staging: Staging,
    stop: Stop,
    jira_token: Option<Secret>,
    database_url: Option<Secret>,
    runtime: OnceLock<tokio::runtime::Runtime>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("config", &self.cfg.path)
            .field("staging", &self.cfg.staging.dir)
            .field("stop_requested", &self.stop.requested())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A session over `cfg` whose stages stop when `stop` is raised. The
    /// binary passes the flag of [`crate::shutdown::install`] (Ctrl-C);
    /// tests and benches pass their own.
    pub fn new(cfg: Config, stop: Stop) -> Session {
        let staging = Staging::new(&cfg.staging.dir, cfg.staging.compression_level);
        Session {
            cfg,
            staging,
            stop,
            jira_token: None,
            database_url: None,
            runtime: OnceLock::new(),
        }
    }

    /// Uses this token instead of `JIRA_PAT` (the demo, tests).
    pub fn with_jira_token(mut self, token: Secret) -> Session {
        self.jira_token = Some(token);
        self
    }

    /// Uses this URL instead of `DATABASE_URL` (the demo, tests).
    pub fn with_database_url(mut self, url: Secret) -> Session {
        self.database_url = Some(url);
        self
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn staging(&self) -> &Staging {
        &self.staging
    }

    pub fn stop(&self) -> &Stop {
        &self.stop
    }

    /// The Jira token: the one given, else `JIRA_PAT`.
    pub(crate) fn jira_token(&self) -> Result<Secret> {
        match &self.jira_token {
            Some(t) => Ok(t.clone()),
            None => crate::config::jira_pat(),
        }
    }

    /// The warehouse URL: the one given, else `DATABASE_URL`.
    pub fn database_url(&self) -> Result<Secret> {
        match &self.database_url {
            Some(u) => Ok(u.clone()),
            None => crate::config::database_url(),
        }
    }

    /// A new connection to the warehouse database.
    pub fn connect(&self) -> Result<Client> {
        crate::db::connect(&self.database_url()?, &self.cfg.database)
    }

    /// A new connection that holds the schema's advisory lock for as long
    /// as it lives (exit 5 when another run holds it). The schema need not
    /// exist yet (`run --stage transform` writes only files).
    pub fn lock(&self) -> Result<Locked> {
        let mut c = self.connect()?;
        crate::db::try_lock(&mut c, &self.cfg.database.schema)?;
        Ok(Locked {
            client: c,
            schema: self.cfg.database.schema.clone(),
        })
    }

    /// [`Session::lock`] on a schema that `pipeline db init` has created at
    /// the version this build knows (exit 2 naming the fix otherwise).
    pub(crate) fn lock_checked(&self) -> Result<Locked> {
        let mut c = self.connect()?;
        crate::db::check_schema(&mut c, &self.cfg.database.schema)?;
        crate::db::try_lock(&mut c, &self.cfg.database.schema)?;
        Ok(Locked {
            client: c,
            schema: self.cfg.database.schema.clone(),
        })
    }

    /// The scopes named (every configured scope when `names` is empty), in
    /// the order given; an unknown name is a configuration error naming it.
    pub fn scopes(&self, names: &[String]) -> Result<Vec<&Scope>> {
        self.cfg.select_scopes(names)
    }

    /// The names of [`Session::scopes`].
    pub(crate) fn scope_names(&self, names: &[String]) -> Result<Vec<String>> {
        Ok(self
            .scopes(names)?
            .into_iter()
            .map(|s| s.name.clone())
            .collect())
    }

    /// Runs `fut` to completion on the session's runtime (two worker
    /// threads, built on first use). Must not be called from inside a tokio
    /// runtime; the synchronous `postgres` client never runs on it.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        let rt = match self.runtime.get() {
            Some(rt) => rt,
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .thread_name("async")
                    .build()
                    .map_err(|e| Error::Other(format!("cannot start the async runtime: {e}")))?;
                self.runtime.get_or_init(|| rt)
            }
        };
        Ok(rt.block_on(fut))
    }
}

/// A connection holding the schema's advisory lock; releases it explicitly
/// when dropped (see [`crate::db::unlock`]), so the next command never finds
/// it still held by a process that has exited.
pub struct Locked {
    client: Client,
    schema: String,
}

impl std::ops::Deref for Locked {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        if !self.client.is_closed() {
            let _ = crate::db::unlock(&mut self.client, &self.schema);
        }
    }
}

impl ExitCode {
    /// `Quarantined` (4) when anything was quarantined, else `Success`: the
    /// one rule every stage's report applies.
    pub(crate) fn from_quarantined(count: u64) -> ExitCode {
        if count > 0 {
            ExitCode::Quarantined
        } else {
            ExitCode::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        crate::config::RawConfig::parse(
            "[[scope]]\nname = \"a\"\nproject = \"A\"\n[[scope]]\nname = \"b\"\nproject = \"B\"\n",
            std::path::Path::new("t.toml"),
        )
        .and_then(|r| r.validate(std::path::Path::new("t.toml")))
        .unwrap()
    }

    #[test]
    fn scope_selection_is_one_rule() {
        let s = Session::new(cfg(), Stop::new());
        assert_eq!(s.scope_names(&[]).unwrap(), ["a", "b"]);
        assert_eq!(s.scope_names(&["b".into()]).unwrap(), ["b"]);
        let e = s.scope_names(&["zz".into()]).unwrap_err();
        assert_eq!(e.exit_code(), ExitCode::Usage, "{e}");
        assert!(e.to_string().contains("zz"), "{e}");
    }

    #[test]
    fn one_runtime_per_session() {
        let s = Session::new(cfg(), Stop::new());
        assert_eq!(s.block_on(async { 1 }).unwrap(), 1);
        let first: *const tokio::runtime::Runtime = s.runtime.get().unwrap();
        assert_eq!(s.block_on(async { 2 }).unwrap(), 2);
        let second: *const tokio::runtime::Runtime = s.runtime.get().unwrap();
        assert_eq!(first, second, "the runtime is built once");
    }

    #[test]
    fn given_secrets_win_and_are_masked() {
        let s = Session::new(cfg(), Stop::new())
            .with_jira_token(Secret::new("tok-123"))
            .with_database_url(Secret::new("postgres://u:pw@h/db"));
        assert_eq!(s.jira_token().unwrap().expose(), "tok-123");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("tok-123") && !dbg.contains("pw"), "{dbg}");
    }

    #[test]
    fn quarantined_means_exit_4() {
        assert_eq!(ExitCode::from_quarantined(0), ExitCode::Success);
        assert_eq!(ExitCode::from_quarantined(3), ExitCode::Quarantined);
    }
}
