//! jira-sim: the Jira Data Center simulator, a faithful fake Jira DC 10 served
//! over HTTP on loopback for tests, demos and benchmarks (`pipeline simulate`,
//! and [`Simulator::start`] in tests).
//!
//! A crate of its own so that production code cannot reach it by accident: the
//! pipeline's core uses it only as a dev-dependency, and the `pipeline` binary
//! only behind its `sim` feature. It depends on no other crate of the workspace.
//!
//! Module map:
//!
//! - [`Simulator`], [`SimConfig`], [`SimHandle`] (this file): settings, start, stop.
//! - [`Error`]: what can go wrong starting a simulator.
//! - [`catalog`]: constant catalogues (types, statuses, users, custom fields,
//!   the generated time window).
//! - [`rng`]: [`Rng`], the one PRNG of all synthetic data (the load bench's too).
//! - `json` (private): byte-level JSON writers (strings, timestamps).
//! - `frags` (private): pre-rendered constant objects ([`render::Frags`]) and
//!   the sprint calendar.
//! - [`data`]: the lazily generated, deterministic dataset and its ground truth.
//! - [`render`]: Jira DC JSON (issues, search pages, fields, myself, serverInfo).
//! - [`jql`]: the JQL parser, compiler and evaluator.
//! - [`faults`]: fault kinds, probabilities and schedules.
//! - [`state`]: mutations, hook, statistics, ground truth ([`SimControl`]).
//! - [`dims`]: projects, versions, components, statuses, priorities, issue
//!   types and resolutions as their endpoints serve them, their ground truth
//!   ([`VersionTruth`], [`ComponentTruth`]) and mutations.
//! - [`server`]: the HTTP/1.1 server (hyper) on its own thread and tokio runtime.
//! - [`admin`]: `/_sim/…` endpoints to script mutations and faults over HTTP.
//! - [`traps`]: authentication traps ([`AuthTrap`]): anonymous proxy, SSO
//!   login page or redirect, CAPTCHA, expired token, on every endpoint.
//! - [`tls`]: HTTPS ([`TlsMaterial`]): the same server behind a TLS handshake.
//!
//! The modules form a DAG, leaves first: `catalog`, `rng`, `json` → `frags`
//! → `data` → `render`, `jql`, `faults` → `state` → `dims` → `server`, `admin`. In particular
//! `data` does not use `render`: what both need (JSON writers, the
//! pre-rendered fragments a [`Dataset`] owns) lives in `json` and `frags`, and
//! the renderer adds the rendering methods ([`Issue::custom_values`],
//! [`Dataset::search_page_body`], [`Dataset::issue_body`]) in its own `impl`
//! blocks.

pub mod admin;
pub mod catalog;
pub mod data;
pub mod dims;
pub mod faults;
mod frags;
pub mod jql;
mod json;
pub mod render;
pub mod rng;
pub mod server;
pub mod state;
pub mod tls;
pub mod traps;

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use chrono_tz::Tz;

pub use data::{CfValue, Dataset, History, HistoryItem, Issue, IssueLink, Poison};
pub use dims::{ComponentTruth, VersionTruth};
pub use faults::{Fault, FaultConfig, FaultScope};
pub use render::FieldSel;
pub use rng::Rng;
pub use state::{IssueUpdate, SearchHook, SimControl, SimStats};
pub use tls::TlsMaterial;
pub use traps::AuthTrap;

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings it cannot run with (a usage error on a command line).
    #[error("{0}")]
    Config(String),
    /// A failure to set up its socket, runtime or thread.
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of a simulated Jira instance. `Default` plus builder methods
/// named like the fields.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Number of issues.
    pub issues: u32,
    /// Project keys; the first is `DEMO`.
    pub projects: Vec<String>,
    /// Seed of the generated data.
    pub seed: u64,
    /// The user's time zone (`/myself` `timeZone`), used to read JQL dates.
    pub time_zone: String,
    /// The zone timestamps are rendered in (the server JVM's); default = `time_zone`.
    pub server_time_zone: Option<String>,
    /// `maxResults` cap (DC's `jira.search.views.default.max`).
    pub max_results: u32,
    /// The personal access token accepted as `Authorization: Bearer`.
    pub token: String,
    /// Fixed latency added to every search response, milliseconds.
    pub latency_ms: u64,
    /// Port on 127.0.0.1 (0 = any free port).
    pub port: u16,
    /// Fault probabilities.
    pub faults: FaultConfig,
    /// Failed authentications before the CAPTCHA challenge (403).
    pub captcha_after: u32,
    /// Worker threads of the server's runtime.
    pub threads: usize,
    /// Cache of rendered search bodies, MiB.
    pub cache_mib: usize,
    /// Changelogs in search results cut to this many histories (`None`:
    /// whole); see [`SimControl::set_changelog_cut`].
    pub changelog_cut: Option<u32>,
    /// Serve HTTPS with this certificate instead of plain HTTP.
    pub tls: Option<TlsMaterial>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            issues: 1000,
            projects: catalog::project_keys(3),
            seed: 42,
            time_zone: "America/New_York".into(),
            server_time_zone: None,
            max_results: 100,
            token: "sim-token".into(),
            latency_ms: 0,
            port: 0,
            faults: FaultConfig::default(),
            captcha_after: 3,
            threads: 2,
            cache_mib: 256,
            changelog_cut: None,
            tls: None,
        }
    }
}

impl SimConfig {
    pub fn issues(mut self, n: u32) -> Self {
        self.issues = n;
        self
    }
    /// `n` projects: DEMO, ALPHA, BETA, ….
    pub fn projects(mut self, n: usize) -> Self {
        self.projects = catalog::project_keys(n.max(1));
        self
    }
    pub fn project_keys(mut self, keys: &[&str]) -> Self {
        self.projects = keys.iter().map(|k| k.to_string()).collect();
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn time_zone(mut self, tz: impl Into<String>) -> Self {
        self.time_zone = tz.into();
        self
    }
    pub fn server_time_zone(mut self, tz: impl Into<String>) -> Self {
        self.server_time_zone = Some(tz.into());
        self
    }
    pub fn max_results(mut self, cap: u32) -> Self {
        self.max_results = cap;
        self
    }
    pub fn token(mut self, t: impl Into<String>) -> Self {
        self.token = t.into();
        self
    }
    pub fn latency_ms(mut self, ms: u64) -> Self {
        self.latency_ms = ms;
        self
    }
    pub fn port(mut self, p: u16) -> Self {
        self.port = p;
        self
    }
    pub fn faults(mut self, f: FaultConfig) -> Self {
        self.faults = f;
        self
    }
    pub fn captcha_after(mut self, n: u32) -> Self {
        self.captcha_after = n;
        self
    }
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n.max(1);
        self
    }
    /// Cuts changelogs in search results to `n` histories (`None`: whole).
    pub fn changelog_cut(mut self, n: Option<u32>) -> Self {
        self.changelog_cut = n;
        self
    }
    /// Serves HTTPS (`https://127.0.0.1:port`) with this certificate.
    pub fn tls(mut self, m: TlsMaterial) -> Self {
        self.tls = Some(m);
        self
    }

    fn zone(name: &str) -> Result<Tz> {
        name.parse::<Tz>().map_err(|_| {
            Error::Config(format!(
                "unknown time zone {name:?}; use an IANA name such as America/New_York"
            ))
        })
    }

    /// The dataset these settings describe (self URLs under `base_url`).
    pub fn dataset(&self, base_url: &str) -> Result<Dataset> {
        if self.projects.is_empty() {
            return Err(Error::Config(
                "the simulator needs at least one project".into(),
            ));
        }
        let server_tz = Self::zone(self.server_time_zone.as_deref().unwrap_or(&self.time_zone))?;
        Ok(Dataset::with_zone(
            self.seed,
            self.issues,
            &self.projects,
            server_tz,
            base_url,
        ))
    }
}

/// Starts simulators.
pub struct Simulator;

impl Simulator {
    /// Binds 127.0.0.1:`port` (0 = any), starts the server on its own thread
    /// with its own tokio runtime, and returns a handle; dropping the handle
    /// stops the server.
    pub fn start(cfg: SimConfig) -> Result<SimHandle> {
        let user_tz = SimConfig::zone(&cfg.time_zone)?;
        if cfg.max_results == 0 {
            return Err(Error::Config(
                "the maxResults cap must be at least 1".into(),
            ));
        }
        let listener = std::net::TcpListener::bind(("127.0.0.1", cfg.port)).map_err(|e| {
            Error::Config(format!(
                "cannot listen on 127.0.0.1:{}: {e}; choose another --port (0 picks a free one)",
                cfg.port
            ))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Other(format!("simulator socket: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Other(format!("simulator socket: {e}")))?;
        let tls = cfg.tls.as_ref().map(TlsMaterial::acceptor).transpose()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://127.0.0.1:{}", addr.port());
        let ds = cfg.dataset(&url)?;
        let shared = Arc::new(state::Shared {
            ds: RwLock::new(ds),
            user_tz,
            user_tz_name: cfg.time_zone.clone(),
            cap: cfg.max_results,
            token: cfg.token.clone(),
            captcha_after: cfg.captcha_after,
            latency_ms: AtomicU64::new(cfg.latency_ms),
            faults: Mutex::new(faults::FaultState::new(cfg.faults.clone())),
            stats: Mutex::new(SimStats::default()),
            hook: Mutex::new(None),
            index: Mutex::new(Default::default()),
            auth_failures: AtomicU64::new(0),
            searches: AtomicU64::new(0),
            results: Mutex::new(Default::default()),
            bodies: Mutex::new(state::BodyCache {
                limit: cfg.cache_mib * 1024 * 1024,
                ..Default::default()
            }),
            changelog_cut: AtomicU64::new(cfg.changelog_cut.map_or(0, |n| n as u64 + 1)),
            changelog_cut_on_get: AtomicBool::new(false),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads.max(1))
            .thread_name("jira-sim")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Other(format!("simulator runtime: {e}")))?;
        let (tx, rx) = tokio::sync::watch::channel(false);
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("jira-sim-main".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => server::serve(l, sh, rx, tls).await,
                        Err(e) => tracing::error!("simulator cannot use its socket: {e}"),
                    }
                });
                rt.shutdown_timeout(std::time::Duration::from_millis(200));
            })
            .map_err(|e| Error::Other(format!("simulator thread: {e}")))?;
        Ok(SimHandle {
            control: SimControl { shared },
            url,
            token: cfg.token,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }
}

/// A running simulator. Derefs to [`SimControl`]; stops on drop.
pub struct SimHandle {
    control: SimControl,
    url: String,
    token: String,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle").field("url", &self.url).finish()
    }
}

impl SimHandle {
    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> &str {
        &self.url
    }
    /// The accepted token (a test fixture, not a secret).
    pub fn token(&self) -> &str {
        &self.token
    }
    /// A clonable control handle (for hooks and other threads).
    pub fn control(&self) -> SimControl {
        self.control.clone()
    }
}

impl std::ops::Deref for SimHandle {
    type Target = SimControl;
    fn deref(&self) -> &SimControl {
        &self.control
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Blocks until Ctrl-C (SIGINT): `pipeline simulate` serves until then.
pub fn wait_for_ctrl_c() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("runtime: {e}")))?;
    rt.block_on(tokio::signal::ctrl_c())
        .map_err(|e| Error::Other(format!("waiting for Ctrl-C: {e}")))
}
