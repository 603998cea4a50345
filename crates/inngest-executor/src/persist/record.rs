//! The records the state directory holds: events, a run's core (everything but its growing
//! parts), its pending ops, and the marks that tell what of a live run is already written.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::{
    error_object, HistoryEntry, PendingKind, Run, RunStatus, RunView, StepStatus, StepView,
};

/// An event as stored.
#[derive(Serialize, Deserialize)]
pub(super) struct EventLine<S, E> {
    pub(super) internal_id: S,
    pub(super) received_at: DateTime<Utc>,
    pub(super) event: E,
}

/// A pending sleep, wait or invoke, with its deadline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum PendingRecord {
    Sleep {
        step: String,
        until: DateTime<Utc>,
    },
    Wait {
        step: String,
        until: DateTime<Utc>,
        event: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expr: Option<String>,
    },
    Signal {
        step: String,
        until: DateTime<Utc>,
        signal: String,
        replace: bool,
        active: bool,
    },
    Invoke {
        step: String,
        until: DateTime<Utc>,
        correlation_id: String,
    },
}

impl PendingRecord {
    pub(crate) fn step(&self) -> &str {
        match self {
            PendingRecord::Sleep { step, .. }
            | PendingRecord::Wait { step, .. }
            | PendingRecord::Invoke { step, .. }
            | PendingRecord::Signal { step, .. } => step,
        }
    }
}

/// A run's core as written: everything but its memo, stack, steps and history, which are
/// written entry by entry.
#[derive(Serialize)]
pub(super) struct RunCoreRef<'a> {
    pub(super) id: &'a str,
    pub(super) function: &'a str,
    pub(super) app: &'a str,
    pub(super) event_id: &'a str,
    pub(super) events: &'a [Value],
    pub(super) status: RunStatus,
    pub(super) output: &'a Option<Value>,
    pub(super) error: &'a Option<Value>,
    pub(super) started_at: DateTime<Utc>,
    pub(super) ended_at: Option<DateTime<Utc>>,
    pub(super) max_attempts: u32,
    pub(super) mocked: &'a BTreeMap<String, Value>,
    pub(super) version: i64,
    pub(super) force_step_plan: bool,
    pub(super) planned: Vec<&'a str>,
    pub(super) pending: Vec<PendingRecord>,
    pub(super) discovery_busy: bool,
    pub(super) correlation_id: &'a Option<String>,
    pub(super) requests: u32,
}

/// A run's core as read back.
#[derive(Deserialize)]
pub(super) struct RunCore {
    id: String,
    function: String,
    /// The app id (missing from cores written before format version 3).
    #[serde(default)]
    app: String,
    event_id: String,
    events: Vec<Value>,
    status: RunStatus,
    output: Option<Value>,
    error: Option<Value>,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    max_attempts: u32,
    mocked: BTreeMap<String, Value>,
    version: i64,
    force_step_plan: bool,
    planned: Vec<String>,
    pending: Vec<PendingRecord>,
    discovery_busy: bool,
    correlation_id: Option<String>,
    requests: u32,
}

/// A whole run as read back (from the store's parts, or from a version 1 `runs/<id>.json`).
#[derive(Deserialize)]
pub(crate) struct RunRecord {
    pub(crate) id: String,
    /// The function's composite id (slug).
    pub(crate) function: String,
    /// The app id (empty when the record predates format version 3).
    #[serde(default)]
    pub(crate) app: String,
    pub(crate) event_id: String,
    pub(crate) events: Vec<Value>,
    pub(crate) status: RunStatus,
    pub(crate) output: Option<Value>,
    pub(crate) error: Option<Value>,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) ended_at: Option<DateTime<Utc>>,
    pub(crate) max_attempts: u32,
    pub(crate) memo: BTreeMap<String, Value>,
    pub(crate) stack: Vec<String>,
    pub(crate) mocked: BTreeMap<String, Value>,
    pub(crate) version: i64,
    pub(crate) force_step_plan: bool,
    pub(crate) planned: Vec<String>,
    pub(crate) pending: Vec<PendingRecord>,
    pub(crate) discovery_busy: bool,
    pub(crate) steps: Vec<StepView>,
    pub(crate) history: Vec<HistoryEntry>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) requests: u32,
}

/// The growing parts of a run, read back from the store.
#[derive(Default)]
pub(super) struct RunParts {
    pub(super) memo: BTreeMap<String, Value>,
    pub(super) stack: Vec<String>,
    pub(super) steps: Vec<StepView>,
    pub(super) history: Vec<HistoryEntry>,
}

impl RunCore {
    /// The run's status.
    pub(super) fn status(&self) -> RunStatus {
        self.status
    }

    /// The internal id of the event that started the run.
    pub(super) fn event_id(&self) -> &str {
        &self.event_id
    }

    /// The whole run, from its core and parts.
    pub(super) fn into_record(self, parts: RunParts) -> RunRecord {
        RunRecord {
            id: self.id,
            function: self.function,
            app: self.app,
            event_id: self.event_id,
            events: self.events,
            status: self.status,
            output: self.output,
            error: self.error,
            started_at: self.started_at,
            ended_at: self.ended_at,
            max_attempts: self.max_attempts,
            memo: parts.memo,
            stack: parts.stack,
            mocked: self.mocked,
            version: self.version,
            force_step_plan: self.force_step_plan,
            planned: self.planned,
            pending: self.pending,
            discovery_busy: self.discovery_busy,
            steps: parts.steps,
            history: parts.history,
            correlation_id: self.correlation_id,
            requests: self.requests,
        }
    }
}

impl RunRecord {
    /// The view of a run read back from the store. `app` is the app id to show when the record
    /// has none (one written before format version 3).
    pub(crate) fn into_view(self, app: impl FnOnce() -> String) -> RunView {
        RunView {
            app_id: if self.app.is_empty() { app() } else { self.app },
            id: self.id,
            function_id: self.function,
            status: self.status,
            output: self.output,
            error: self.error.as_ref().map(error_object),
            event_id: self.event_id,
            events: self.events,
            steps: self.steps,
            history: self.history,
            started_at: self.started_at,
            ended_at: self.ended_at,
            requests: self.requests,
        }
    }

    /// The core of a record read from a version 1 directory, to write it to the store.
    pub(super) fn core(&self) -> RunCoreRef<'_> {
        RunCoreRef {
            id: &self.id,
            function: &self.function,
            app: &self.app,
            event_id: &self.event_id,
            events: &self.events,
            status: self.status,
            output: &self.output,
            error: &self.error,
            started_at: self.started_at,
            ended_at: self.ended_at,
            max_attempts: self.max_attempts,
            mocked: &self.mocked,
            version: self.version,
            force_step_plan: self.force_step_plan,
            planned: sorted(&self.planned),
            pending: self.pending.clone(),
            discovery_busy: self.discovery_busy,
            correlation_id: &self.correlation_id,
            requests: self.requests,
        }
    }
}

/// Planned step ids in a stable order (a run keeps them in a set).
fn sorted<'a>(planned: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = planned.into_iter().map(String::as_str).collect();
    out.sort_unstable();
    out
}

/// The core of a live run.
pub(super) fn core_of(run: &Run) -> RunCoreRef<'_> {
    let mut pending: Vec<PendingRecord> = run
        .pending
        .iter()
        .map(|(step, p)| {
            let step = step.clone();
            let until = p.until;
            match &p.kind {
                PendingKind::Sleep => PendingRecord::Sleep { step, until },
                PendingKind::Wait { event, expr } => PendingRecord::Wait {
                    step,
                    until,
                    event: event.clone(),
                    expr: expr.as_ref().map(|e| e.source().to_owned()),
                },
                PendingKind::Signal {
                    signal,
                    replace,
                    active,
                } => PendingRecord::Signal {
                    step,
                    until,
                    signal: signal.clone(),
                    replace: *replace,
                    active: *active,
                },
                PendingKind::Invoke { correlation_id } => PendingRecord::Invoke {
                    step,
                    until,
                    correlation_id: correlation_id.clone(),
                },
            }
        })
        .collect();
    pending.sort_by(|a, b| a.step().cmp(b.step()));
    RunCoreRef {
        id: &run.id,
        function: &run.function.slug,
        app: &run.function.app,
        event_id: &run.event_id,
        events: &run.events,
        status: run.status,
        output: &run.output,
        error: &run.error,
        started_at: run.started_at,
        ended_at: run.ended_at,
        max_attempts: run.max_attempts,
        mocked: &run.mocked,
        version: run.version,
        force_step_plan: run.force_step_plan,
        planned: sorted(&run.planned),
        pending,
        discovery_busy: run.discovery_busy,
        correlation_id: &run.correlation_id,
        requests: run.requests,
    }
}

/// What tells a changed run from an unchanged one without serializing it: every change the
/// engine makes to a run logs a history line or moves one of these counters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint {
    history: usize,
    status: RunStatus,
    requests: u32,
    memo: usize,
    pending: usize,
    planned: usize,
    discovery_busy: bool,
    version: i64,
}

impl Fingerprint {
    pub(super) fn of(run: &Run) -> Fingerprint {
        Fingerprint {
            history: run.history.len(),
            status: run.status,
            requests: run.requests,
            memo: run.memo.len(),
            pending: run.pending.len(),
            planned: run.planned.len(),
            discovery_busy: run.discovery_busy,
            version: run.version,
        }
    }
}

/// What of a step view is written: a view changes only with these.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct StepMark {
    status: StepStatus,
    attempts: u32,
    ended: bool,
    output: bool,
    error: bool,
}

impl StepMark {
    pub(super) fn of(s: &StepView) -> StepMark {
        StepMark {
            status: s.status,
            attempts: s.attempts,
            ended: s.ended_at.is_some(),
            output: s.output.is_some(),
            error: s.error.is_some(),
        }
    }
}

/// What of a live run is in the store.
#[derive(Clone, Default)]
pub(super) struct RunWritten {
    pub(super) fingerprint: Option<Fingerprint>,
    pub(super) history: usize,
    pub(super) stack: usize,
    pub(super) memo: HashSet<String>,
    pub(super) steps: Vec<StepMark>,
}

impl RunWritten {
    /// The marks of a run read back whole.
    pub(super) fn of_record(r: &RunRecord) -> RunWritten {
        RunWritten {
            fingerprint: None,
            history: r.history.len(),
            stack: r.stack.len(),
            memo: r.memo.keys().cloned().collect(),
            steps: r.steps.iter().map(StepMark::of).collect(),
        }
    }
}

/// Events a debounce or batch key holds, with the time its run starts at the latest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HeldRecord {
    /// The function's composite id (slug).
    pub(crate) function: String,
    /// `(event, internal event id)`, in arrival order.
    pub(crate) events: Vec<(Value, String)>,
    /// When the first of them arrived (debounce `timeout`).
    pub(crate) first_at: DateTime<Utc>,
    /// When the run starts unless more events come.
    pub(crate) deadline: DateTime<Utc>,
}

/// The flow-control state that outlives a restart: rate-limit windows, debounce and batch
/// buffers (with their deadlines), singleton keys. Keys are the executor's flow keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FlowRecord {
    #[serde(default)]
    pub(crate) rate: BTreeMap<String, Vec<DateTime<Utc>>>,
    #[serde(default)]
    pub(crate) debounce: BTreeMap<String, HeldRecord>,
    #[serde(default)]
    pub(crate) batches: BTreeMap<String, HeldRecord>,
    #[serde(default)]
    pub(crate) singleton: BTreeMap<String, String>,
    /// The GCRA theoretical arrival time of each throttle key.
    #[serde(default)]
    pub(crate) throttle: BTreeMap<String, DateTime<Utc>>,
}

impl FlowRecord {
    /// Adds `other`'s entries (held buffers not restored yet) where this has none.
    pub(crate) fn merge(&mut self, other: &FlowRecord) {
        for (k, v) in &other.debounce {
            self.debounce.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &other.batches {
            self.batches.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}
