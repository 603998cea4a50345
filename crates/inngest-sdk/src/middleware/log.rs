//! The replay-quiet logger of a handler ([`Ctx::log`](crate::Ctx::log)).

use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Whether the code of a call is still replaying memoized steps. Shared by the call's state
/// (which clears it when the last memoized step resolves or a new step is found) and its
/// [`Logger`].
#[derive(Debug, Clone)]
pub(crate) struct ReplayFlag(Arc<AtomicBool>);

impl ReplayFlag {
    pub(crate) fn new(replaying: bool) -> ReplayFlag {
        ReplayFlag(Arc::new(AtomicBool::new(replaying)))
    }

    pub(crate) fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Ends the replay; `true` only for the call that ended it.
    pub(crate) fn finish(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// A handler's logger: emits `tracing` events (target `inngest::user`) only for code that runs
/// for the first time, not while the call replays memoized steps, so each line is logged once
/// per run although the function is called once per step.
///
/// The replay ends when the last memoized step of the call resolves, or when the code reaches a
/// step that has no result yet. A line logged before the first step is also logged again by a
/// targeted call with nothing memoized (a parallel step run on its own): log after a step to
/// log once.
#[derive(Debug, Clone)]
pub struct Logger {
    replay: ReplayFlag,
}

impl Logger {
    pub(crate) fn new(replay: ReplayFlag) -> Logger {
        Logger { replay }
    }

    /// Whether the code is replaying memoized steps right now (the logger is quiet).
    pub fn is_replaying(&self) -> bool {
        self.replay.get()
    }

    /// Logs at `DEBUG`.
    pub fn debug(&self, message: impl Display) {
        if !self.is_replaying() {
            tracing::debug!(target: "inngest::user", "{message}");
        }
    }

    /// Logs at `INFO`.
    pub fn info(&self, message: impl Display) {
        if !self.is_replaying() {
            tracing::info!(target: "inngest::user", "{message}");
        }
    }

    /// Logs at `WARN`.
    pub fn warn(&self, message: impl Display) {
        if !self.is_replaying() {
            tracing::warn!(target: "inngest::user", "{message}");
        }
    }

    /// Logs at `ERROR`.
    pub fn error(&self, message: impl Display) {
        if !self.is_replaying() {
            tracing::error!(target: "inngest::user", "{message}");
        }
    }
}
