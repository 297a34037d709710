//! Ctrl-C / SIGTERM handling: the first signal sets a flag the stages check
//! (stop fetching, finish or roll back the unit in flight, exit); a second
//! signal exits at once with code 130. Both leave a consistent state, because
//! every staged file is written atomically and every load unit is one
//! transaction.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// A shared "please stop" flag.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Self {
        Stop::default()
    }
    pub(crate) fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
    /// The underlying flag, for APIs that take an `Arc<AtomicBool>`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// Installs the SIGINT/SIGTERM handlers and returns the flag they set.
pub fn install() -> Result<Stop> {
    let stop = Stop::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Second signal: the flag is already set → exit immediately.
        signal_hook::flag::register_conditional_shutdown(sig, 130, stop.flag())
            .map_err(|e| Error::Other(format!("cannot install the signal handler: {e}")))?;
        signal_hook::flag::register(sig, stop.flag())
            .map_err(|e| Error::Other(format!("cannot install the signal handler: {e}")))?;
    }
    Ok(stop)
}
