//! The crate's error type and the mapping from errors to documented exit codes.
//!
//! Every error names what failed (file, key, scope, page, issue) and what to do.
//! `main` prints the message on one line and exits with [`Error::exit_code`].

use std::path::PathBuf;

/// Documented process exit codes (README "Exit codes", `pipeline --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything worked.
    Success = 0,
    /// An unexpected error (a bug, or an I/O or database failure).
    Unexpected = 1,
    /// Usage or configuration error.
    Usage = 2,
    /// Jira, authentication or connectivity error.
    Jira = 3,
    /// Finished, but some items were quarantined.
    Quarantined = 4,
    /// Another run holds the lock.
    Locked = 5,
}

impl ExitCode {
    /// The more severe of two outcomes (for commands that run several jobs).
    pub fn max_with(self, other: ExitCode) -> ExitCode {
        if (other as u8) > (self as u8) {
            other
        } else {
            self
        }
    }
}

/// Errors of the pipeline. Each variant's message is a complete, one-line
/// sentence that names the thing that failed and, where possible, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration or command-line usage (exit 2).
    #[error("{0}")]
    Config(String),
    /// Jira answered with an error, refused our credentials or could not be
    /// reached (exit 3). `kind` says which, for callers that decide by it (an
    /// issue looked up alone and not found is deleted; a refused token stops
    /// at once).
    #[error("{msg}")]
    Jira { kind: JiraKind, msg: String },
    /// A PostgreSQL error (exit 1).
    #[error("{context}: {source}")]
    Db {
        context: String,
        #[source]
        source: postgres::Error,
    },
    /// A database problem that is not a driver error, e.g. a schema too new (exit 1).
    #[error("{0}")]
    Database(String),
    /// Another run holds the advisory lock (exit 5).
    #[error("{0}")]
    Locked(String),
    /// A file in the staging area could not be read or written (exit 1).
    #[error("{}: {source}{}", path.display(), io_hint(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A staged file is corrupt or not what it claims to be (exit 1).
    #[error("{}: {msg}", path.display())]
    Staging { path: PathBuf, msg: String },
    /// The run was interrupted (Ctrl-C) before it finished (exit 1).
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The next stage stopped taking pages (it failed, or the run was
    /// stopped); its own error, or the stop, is the cause (exit 1).
    #[error("{0}")]
    Downstream(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

/// The kinds of Jira failure (see [`Error::Jira`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JiraKind {
    /// The token was refused (401, an anonymous answer, a CAPTCHA demand).
    Auth,
    /// The user may not see it (403).
    Forbidden,
    /// Jira rejected the query (400).
    BadQuery,
    /// No such resource (404): an issue looked up alone is gone, or the
    /// base URL is wrong.
    NotFound,
    /// Jira kept failing (5xx, 429) through every retry.
    Server,
    /// No complete response (connect error, timeout, reset, cut body).
    Transport,
    /// A 200 whose body is not the JSON Jira sends (a proxy's page).
    BadBody,
    /// Well-formed answers the extractor cannot use or page through.
    Unusable,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do about an I/O error whose cause is the file system (full,
/// read-only), appended to [`Error::Io`]'s message.
fn io_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::StorageFull | K::QuotaExceeded => {
            "; its file system is full: free space there (staging.dir says where the staging area lives) and rerun — nothing half-written was kept"
        }
        K::ReadOnlyFilesystem | K::PermissionDenied => {
            "; it cannot be written: make it writable for this user, or point staging.dir elsewhere, and rerun — nothing half-written was kept"
        }
        // EIO: the device failed the write or the fsync.
        _ if e.raw_os_error() == Some(5) => {
            "; the disk reported an I/O error: check it (dmesg, SMART) before rerunning — nothing half-written was kept"
        }
        _ => "",
    }
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(_) => ExitCode::Usage,
            Error::Jira { .. } => ExitCode::Jira,
            Error::Locked(_) => ExitCode::Locked,
            Error::Db { .. }
            | Error::Database(_)
            | Error::Io { .. }
            | Error::Staging { .. }
            | Error::Interrupted(_)
            | Error::Downstream(_)
            | Error::Other(_) => ExitCode::Unexpected,
        }
    }

    /// A Jira error of `kind`.
    pub fn jira(kind: JiraKind, msg: impl Into<String>) -> Error {
        Error::Jira {
            kind,
            msg: msg.into(),
        }
    }

    /// The kind of a Jira error; `None` for every other error.
    pub fn jira_kind(&self) -> Option<JiraKind> {
        match self {
            Error::Jira { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Wraps a `postgres::Error` with what we were doing.
    pub fn db(context: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
        let context = context.into();
        move |source| Error::Db { context, source }
    }

    /// Wraps an `io::Error` with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    /// The message and its causes on one line, as `main` prints it.
    pub fn one_line(&self) -> String {
        let mut out = self.to_string();
        let mut src = std::error::Error::source(self);
        while let Some(s) = src {
            let text = s.to_string();
            if !out.contains(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            src = s.source();
        }
        out.push_str(self.db_hint());
        out.replace(['\n', '\r'], " ")
    }

    /// What to do about a database error whose cause the server names, for
    /// [`Error::one_line`] (empty when there is nothing to add).
    fn db_hint(&self) -> &'static str {
        let Error::Db { source, .. } = self else {
            return "";
        };
        match source.as_db_error() {
            Some(db)
                if *db.code() == postgres::error::SqlState::QUERY_CANCELED
                    && db.message().contains("statement timeout") =>
            {
                "; a statement ran longer than database.statement_timeout_secs: look for a session holding the warehouse's tables (pg_stat_activity, pg_locks), or raise the setting (0 = none), and rerun — the unfinished transaction was rolled back"
            }
            _ => "",
        }
    }
}
