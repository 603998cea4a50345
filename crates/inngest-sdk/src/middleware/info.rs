//! What hooks are told: the run, the step, the input, a failure.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::Extensions;
use crate::error::Error;

/// The run and call a hook runs for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunInfo {
    /// The function's own id (without the app prefix).
    pub function_id: String,
    /// The run's id.
    pub run_id: String,
    /// 0-based attempt of this call.
    pub attempt: u32,
    /// Attempts allowed in total.
    pub max_attempts: u32,
    /// The hashed id of the step this call targets; `None` for a discovery call.
    pub targeted_step: Option<String>,
}

/// The kind of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepKind {
    /// `step.run`.
    Run,
    /// `step.send_event`.
    SendEvent,
    /// `step.sleep` / `step.sleep_until`.
    Sleep,
    /// `step.wait_for_event`.
    WaitForEvent,
    /// `step.invoke`.
    Invoke,
    /// `step.wait_for_signal`.
    WaitForSignal,
    /// `step.fetch` (made by Inngest: there is no step body).
    Fetch,
    /// `step.ai().infer` (made by Inngest: there is no step body).
    AiInfer,
}

/// The step a hook runs for.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepInfo {
    /// The id the code gave (`"charge"`).
    pub id: String,
    /// The hashed id on the wire.
    pub hash: String,
    /// What the step is.
    pub kind: StepKind,
    /// 0-based attempt of this call.
    pub attempt: u32,
}

/// The input of a call, before the handler sees it ([`Middleware::transform_input`]): its
/// events, and the values attached for the handler ([`Ctx::get`](crate::Ctx::get)).
///
/// [`Middleware::transform_input`]: super::Middleware::transform_input
pub struct Input<'a> {
    run: &'a RunInfo,
    event: Bytes,
    events: Option<Bytes>,
    parsed: Option<Vec<Value>>,
    extensions: &'a mut Extensions,
}

impl<'a> Input<'a> {
    pub(crate) fn new(
        run: &'a RunInfo,
        event: Bytes,
        events: Option<Bytes>,
        extensions: &'a mut Extensions,
    ) -> Self {
        Input {
            run,
            event,
            events,
            parsed: None,
            extensions,
        }
    }

    /// The run.
    pub fn run(&self) -> &RunInfo {
        self.run
    }

    /// Every event of the call (the batch, or just the triggering event), parsed on first use;
    /// the first one is the triggering event the handler sees as `ctx.event`.
    pub fn events_mut(&mut self) -> Result<&mut Vec<Value>, Error> {
        if self.parsed.is_none() {
            let bad = |e: serde_json::Error| {
                Error::msg(format!("a middleware could not read the run's events: {e}"))
                    .non_retriable()
            };
            let mut events: Vec<Value> = match &self.events {
                Some(raw) => serde_json::from_slice(raw).map_err(bad)?,
                None => Vec::new(),
            };
            if events.is_empty() {
                events.push(serde_json::from_slice(&self.event).map_err(bad)?);
            }
            self.parsed = Some(events);
        }
        Ok(self.parsed.as_mut().expect("parsed above"))
    }

    /// Attaches a value the handler reads with [`Ctx::get`](crate::Ctx::get).
    pub fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.extensions.insert(value);
    }

    /// Attaches a shared value the handler reads with [`Ctx::get`](crate::Ctx::get) (or
    /// [`Ctx::get_arc`](crate::Ctx::get_arc)).
    pub fn insert_arc<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.extensions.insert_arc(value);
    }

    /// The event and events to go on with.
    pub(crate) fn finish(self) -> (Bytes, Option<Bytes>) {
        let Some(events) = self.parsed else {
            return (self.event, self.events);
        };
        let encode = |v: &Value| Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        let event = events.first().map_or(self.event, encode);
        let all = self
            .events
            .map(|_| Bytes::from(serde_json::to_vec(&events).unwrap_or_default()));
        (event, all)
    }
}

impl std::fmt::Debug for Input<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

/// What failed, for [`Middleware::on_error`](super::Middleware::on_error): the function's error
/// or a step's failed attempt.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Failure<'a> {
    /// The step whose attempt failed; `None` when the function itself returned the error.
    pub step: Option<&'a StepInfo>,
    /// The error's name as reported to Inngest.
    pub name: &'a str,
    /// The error's message as reported to Inngest.
    pub message: &'a str,
    /// Whether Inngest will retry (false on the final attempt or for a non-retriable error).
    pub will_retry: bool,
    /// The function's error is a step's final failure that the code let escape: the call in
    /// which that step failed already reported it, with `step` set. A reporter that wants each
    /// failure once skips these.
    pub from_step: bool,
}
