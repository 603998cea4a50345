//! The executor's in-memory state: runs (memo, stack, steps, history), received events, and the
//! read-only views handed to callers ([`RunView`], [`StepView`], [`HistoryEntry`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::expr::Expr;
use crate::registry::{CancelRule, FunctionDef};
use inngest_protocol::wire::ErrorObject;

/// Status of a run, with the names the dev server's REST API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RunStatus {
    /// Scheduled or in progress (including sleeping or waiting).
    Running,
    /// The function returned.
    Completed,
    /// The function failed for good (retries exhausted or a non-retriable error).
    Failed,
    /// A cancellation rule (or an API call) cancelled the run.
    Cancelled,
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Running)
    }

    /// The status name (`"Running"`, `"Completed"`, `"Failed"`, `"Cancelled"`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "Running",
            RunStatus::Completed => "Completed",
            RunStatus::Failed => "Failed",
            RunStatus::Cancelled => "Cancelled",
        }
    }
}

/// Status of one step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepStatus {
    /// Reported as `StepPlanned`; its targeted request has not been answered yet.
    Planned,
    /// A request executing it is in flight (or waiting for a retry).
    Running,
    /// A durable sleep in progress.
    Sleeping,
    /// Waiting for an event.
    Waiting,
    /// Waiting for an invoked function to finish.
    Invoking,
    /// Finished with an output.
    Completed,
    /// Finished with an error (its memo is `{"error": …}`).
    Failed,
    /// A wait or invoke whose timeout passed.
    TimedOut,
    /// Still pending when its run ended.
    Cancelled,
    /// Output supplied by a step mock: the app never ran it.
    Mocked,
}

/// One step of a run as recorded by the executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepView {
    /// Hashed step id (the key of the memo map).
    pub id: String,
    /// The user's step id (`userland.id`, else `displayName`, else `name`).
    pub name: String,
    /// The op that introduced the step (`StepRun`, `Sleep`, `WaitForEvent`, `InvokeFunction`, …).
    pub op: String,
    /// Current status.
    pub status: StepStatus,
    /// When the executor first sent a request for it or registered it (executor clock).
    pub started_at: DateTime<Utc>,
    /// When it completed, failed, timed out or was cancelled.
    pub ended_at: Option<DateTime<Utc>>,
    /// Attempts made (1 after a first-try success; 0 for async ops and mocks).
    pub attempts: u32,
    /// The memoized value sent back to the app (`{"data": …}`, `null`, an event, …).
    pub output: Option<Value>,
    /// The last error reported for the step, if any.
    pub error: Option<Value>,
}

/// What a [`HistoryEntry`] records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HistoryKind {
    /// The run was created.
    Scheduled,
    /// A request was sent to the app.
    Request,
    /// A valid response was received.
    Response,
    /// A step completed and was memoized.
    StepCompleted,
    /// A step failed for good and its error was memoized.
    StepFailed,
    /// A step errored and will be retried.
    StepErrored,
    /// A step was planned (a targeted request follows).
    StepPlanned,
    /// A step mock replaced a step's output.
    Mocked,
    /// A request will be retried after a delay.
    RetryScheduled,
    /// A durable sleep started.
    Sleeping,
    /// A wait for an event started.
    Waiting,
    /// A function was invoked.
    Invoking,
    /// A sleep, wait or invoke finished and the run resumes.
    Resumed,
    /// A wait or invoke timed out.
    TimedOut,
    /// The app's answer broke the protocol (missing SDK header, malformed or unknown ops, empty
    /// op array, …); the message says how.
    InvalidResponse,
    /// The request itself failed (connection refused, timeout, …).
    RequestFailed,
    /// The function reported an error (non-2xx).
    FunctionError,
    /// An op the local executor does not implement.
    UnsupportedOp,
    /// The run completed.
    Completed,
    /// The run failed.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

/// One line of a run's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// When (executor clock).
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: HistoryKind,
    /// The step concerned (`step` for discovery requests, else a hashed id), if any.
    pub step_id: Option<String>,
    /// The attempt concerned, if any.
    pub attempt: Option<u32>,
    /// Human-readable details (never payloads or keys).
    pub message: String,
}

/// A snapshot of one run: what tests assert on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunView {
    /// Run id (ULID).
    pub id: String,
    /// The function's composite id (`<app id>-<function id>`).
    pub function_id: String,
    /// The app id the function belongs to.
    pub app_id: String,
    /// Status.
    pub status: RunStatus,
    /// The function's return value (completed runs).
    pub output: Option<Value>,
    /// The final error (failed runs), or why the run was cancelled.
    pub error: Option<ErrorObject>,
    /// Id of the triggering event as returned by the event API.
    pub event_id: String,
    /// The triggering events as sent to the app (`events[0]` is `event`).
    pub events: Vec<Value>,
    /// Steps in the order they were first seen.
    pub steps: Vec<StepView>,
    /// Everything that happened, in order.
    pub history: Vec<HistoryEntry>,
    /// When the run was created (executor clock).
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Number of requests sent to the app.
    pub requests: u32,
}

impl RunView {
    /// The triggering event.
    pub fn event(&self) -> &Value {
        self.events.first().unwrap_or(&Value::Null)
    }

    /// The first step whose user id (or hashed id) is `name`.
    pub fn step(&self, name: &str) -> Option<&StepView> {
        self.steps.iter().find(|s| s.name == name || s.id == name)
    }

    /// History entries of one kind.
    pub fn history_of(&self, kind: HistoryKind) -> impl Iterator<Item = &HistoryEntry> {
        self.history.iter().filter(move |h| h.kind == kind)
    }

    /// Whether the run is sleeping, waiting for an event or waiting for an invoked function.
    pub fn is_paused(&self) -> bool {
        self.status == RunStatus::Running
            && self.steps.iter().any(|s| {
                matches!(
                    s.status,
                    StepStatus::Sleeping | StepStatus::Waiting | StepStatus::Invoking
                )
            })
    }
}

/// What a run is waiting on for a step that the executor resolves itself.
#[derive(Debug, Clone)]
pub(crate) enum PendingKind {
    Sleep,
    Wait {
        event: String,
        expr: Option<Expr>,
    },
    Invoke {
        correlation_id: String,
    },
    /// A `WaitForSignal`: `replace` is its `conflict: "replace"`; `active` turns false when a
    /// later wait on the same signal replaced it (it then only times out).
    Signal {
        signal: String,
        replace: bool,
        active: bool,
    },
}

/// A pending async op of a run. `seq` tells a live timer from a stale one.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) kind: PendingKind,
    pub(crate) seq: u64,
    /// When the sleep ends or the wait / invoke times out.
    pub(crate) until: DateTime<Utc>,
}

/// One run.
pub(crate) struct Run {
    pub(crate) id: String,
    pub(crate) function: Arc<FunctionDef>,
    pub(crate) event_id: String,
    pub(crate) event: Value,
    pub(crate) events: Vec<Value>,
    pub(crate) status: RunStatus,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) max_attempts: u32,
    /// Memoized values of completed steps, keyed by hashed id.
    pub(crate) memo: BTreeMap<String, Value>,
    /// Completed steps in completion order.
    pub(crate) stack: Vec<String>,
    /// Memo entries supplied by step mocks (sent, never stacked).
    pub(crate) mocked: BTreeMap<String, Value>,
    /// Request version: -1 until the first 206 decides it.
    pub(crate) version: i64,
    /// `ctx.disable_immediate_execution`.
    pub(crate) force_step_plan: bool,
    /// Planned steps whose targeted request has not completed them yet.
    pub(crate) planned: HashSet<String>,
    /// Async ops waiting for the executor (sleep, wait, invoke).
    pub(crate) pending: HashMap<String, Pending>,
    /// A discovery request is queued, in flight or waiting for its retry.
    pub(crate) discovery_busy: bool,
    /// Another discovery was asked for while one was busy.
    pub(crate) discovery_again: bool,
    /// Consecutive `206 []` answers.
    pub(crate) empty_responses: u32,
    pub(crate) steps: Vec<StepView>,
    pub(crate) history: Vec<HistoryEntry>,
    /// `<parent run>.<hashed step>` when this run was invoked.
    pub(crate) correlation_id: Option<String>,
    pub(crate) requests: u32,
}

impl Run {
    pub(crate) fn cancel_rules(&self) -> &[CancelRule] {
        &self.function.cancel
    }

    pub(crate) fn view(&self) -> RunView {
        RunView {
            id: self.id.clone(),
            function_id: self.function.slug.clone(),
            app_id: self.function.app.clone(),
            status: self.status,
            output: self.output.clone(),
            error: self.error.as_ref().map(error_object),
            event_id: self.event_id.clone(),
            events: self.events.clone(),
            steps: self.steps.clone(),
            history: self.history.clone(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            requests: self.requests,
        }
    }

    pub(crate) fn log(
        &mut self,
        at: DateTime<Utc>,
        kind: HistoryKind,
        step_id: Option<&str>,
        attempt: Option<u32>,
        message: impl Into<String>,
    ) {
        let message = message.into();
        // The message may quote app errors; only the kind goes to the log.
        tracing::debug!(run_id = %self.id, ?kind, step = step_id.unwrap_or(""), "run history");
        self.history.push(HistoryEntry {
            at,
            kind,
            step_id: step_id.map(str::to_owned),
            attempt,
            message,
        });
    }

    /// The step record for `id`, created (with `started_at = at`) if missing.
    pub(crate) fn step_mut(
        &mut self,
        id: &str,
        name: &str,
        op: &str,
        at: DateTime<Utc>,
    ) -> &mut StepView {
        let idx = match self.steps.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.steps.push(StepView {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    op: op.to_owned(),
                    status: StepStatus::Running,
                    started_at: at,
                    ended_at: None,
                    attempts: 0,
                    output: None,
                    error: None,
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[idx]
    }

    /// The step record for `id`, if any.
    pub(crate) fn find_step(&mut self, id: &str) -> Option<&mut StepView> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    /// The memo sent to the app: completed steps in the stack plus mocks.
    pub(crate) fn steps_for_request(&self) -> BTreeMap<String, Value> {
        let mut out = self.mocked.clone();
        for id in &self.stack {
            if let Some(v) = self.memo.get(id) {
                out.insert(id.clone(), v.clone());
            }
        }
        out
    }
}

/// The `name`, `message` and `stack` of a run's error (any JSON the app answered with):
/// strings are taken as they are, a missing name is `Error`, a missing message is empty and any
/// other value is its JSON text.
pub(crate) fn error_object(error: &Value) -> ErrorObject {
    let text = |key: &str| match error.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    match error {
        Value::Object(_) => ErrorObject {
            name: text("name").unwrap_or_else(|| "Error".to_owned()),
            message: text("message").unwrap_or_default(),
            stack: text("stack"),
        },
        Value::String(s) => ErrorObject {
            name: "Error".to_owned(),
            message: s.clone(),
            stack: None,
        },
        other => ErrorObject {
            name: "Error".to_owned(),
            message: other.to_string(),
            stack: None,
        },
    }
}

/// An event as stored by the executor.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    /// The id returned by the event API (ULID).
    pub(crate) internal_id: String,
    /// The event as sent to apps (`name`, `data`, `id`, `ts`, `user`, …).
    pub(crate) event: Value,
    pub(crate) received_at: DateTime<Utc>,
}

impl RunView {
    /// The run and its history as text, one line per history entry: what a failing test should
    /// print.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "run {} of {}: {:?}\n",
            self.id, self.function_id, self.status
        );
        for h in &self.history {
            out.push_str(&format!(
                "  {} {:?} {}{} {}\n",
                h.at.format("%H:%M:%S%.3f"),
                h.kind,
                h.step_id
                    .as_deref()
                    .map(|s| &s[..s.len().min(8)])
                    .unwrap_or("-"),
                h.attempt.map(|a| format!(" #{a}")).unwrap_or_default(),
                h.message
            ));
        }
        out
    }
}
