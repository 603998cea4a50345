//! A run's life, as state changes that need nothing but the run (and, to create one, the
//! executor state): created with its first discovery request, discovery serialised, steps
//! memoized, pending sleeps/waits/invokes resolved, and the end (completed, failed or
//! cancelled) with the `inngest/function.finished` / `.failed` / `.cancelled` events that
//! `invoke` and `on_failure` rely on.
//!
//! Discovery requests are serialised per run (at most one queued, in flight or waiting for its
//! retry): a second request for discovery while one is busy is remembered and sent once the
//! first is answered, so a step is never executed inline twice by two concurrent discoveries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::registry::FunctionDef;
use crate::shared::{Actions, Job, State, EVENT_CANCELLED, EVENT_FAILED, EVENT_FINISHED};
use crate::state::{HistoryKind, Run, RunStatus, StepStatus};
use inngest_protocol::wire;

/// What a new run starts from.
pub(crate) struct NewRun {
    pub(crate) function: Arc<FunctionDef>,
    /// The triggering event.
    pub(crate) event: Value,
    /// Its internal id.
    pub(crate) event_id: String,
    /// `<parent run>.<hashed step>` when the run is invoked.
    pub(crate) correlation_id: Option<String>,
}

/// Creates a run (with the function's step mocks memoized) and queues its first discovery
/// request. Returns its id.
pub(crate) fn start_run(
    st: &mut State,
    new: NewRun,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> String {
    let NewRun {
        function,
        event,
        event_id,
        correlation_id,
    } = new;
    let id = st.new_run_id(now);
    let mocks = st.mocks.get(&function.slug).cloned().unwrap_or_default();
    let name = event
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut run = Run {
        id: id.clone(),
        max_attempts: function.retries + 1,
        function: function.clone(),
        event_id: event_id.clone(),
        events: vec![event.clone()],
        event,
        status: RunStatus::Running,
        output: None,
        error: None,
        started_at: now,
        ended_at: None,
        memo: BTreeMap::new(),
        stack: Vec::new(),
        mocked: mocks
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect(),
        version: -1,
        force_step_plan: false,
        planned: HashSet::new(),
        pending: HashMap::new(),
        discovery_busy: false,
        discovery_again: false,
        empty_responses: 0,
        steps: Vec::new(),
        history: Vec::new(),
        correlation_id,
        requests: 0,
    };
    run.log(
        now,
        HistoryKind::Scheduled,
        None,
        None,
        format!("run of `{}` triggered by `{name}`", function.slug),
    );
    for (hash, (user, memo)) in &mocks {
        let s = run.step_mut(hash, user, "StepRun", now);
        s.status = StepStatus::Mocked;
        s.ended_at = Some(now);
        s.output = Some(memo.clone());
        run.log(
            now,
            HistoryKind::Mocked,
            Some(hash),
            None,
            format!("step `{user}` mocked"),
        );
    }
    request_discovery(&mut run, actions);
    tracing::info!(run_id = %id, function = %function.slug, "run started");
    st.runs.insert(id.clone(), run);
    st.run_order.push(id.clone());
    st.runs_by_event
        .entry(event_id)
        .or_default()
        .push(id.clone());
    id
}

/// Queues a discovery request, or remembers to send one once the busy one is answered.
pub(crate) fn request_discovery(run: &mut Run, actions: &mut Actions) {
    if run.status != RunStatus::Running {
        return;
    }
    if run.discovery_busy {
        run.discovery_again = true;
        return;
    }
    run.discovery_busy = true;
    run.discovery_again = false;
    actions
        .jobs
        .push((Job::new(&run.id, wire::DISCOVERY_STEP_ID), None));
}

/// Memoizes a run step's result. Returns false for a step that was already memoized.
pub(crate) fn complete_step(
    run: &mut Run,
    job: &Job,
    id: &str,
    label: &str,
    memo: Value,
    status: StepStatus,
    now: DateTime<Utc>,
) -> bool {
    run.planned.remove(id);
    if run.memo.contains_key(id) {
        return false;
    }
    run.memo.insert(id.to_owned(), memo.clone());
    run.stack.push(id.to_owned());
    let s = run.step_mut(id, label, "StepRun", job.sent_at.unwrap_or(now));
    s.status = status;
    s.ended_at = Some(now);
    s.attempts = job.attempt + 1;
    if status == StepStatus::Failed {
        s.error = memo.get("error").cloned();
    }
    s.output = Some(memo);
    let (kind, verb) = if status == StepStatus::Failed {
        (HistoryKind::StepFailed, "failed")
    } else {
        (HistoryKind::StepCompleted, "completed")
    };
    run.log(
        now,
        kind,
        Some(id),
        Some(job.attempt),
        format!("step `{label}` {verb}"),
    );
    true
}

/// How a pending sleep, wait or invoke ended.
pub(crate) struct Resolution {
    /// The memo the app receives for the step.
    pub(crate) memo: Value,
    pub(crate) status: StepStatus,
    pub(crate) kind: HistoryKind,
    pub(crate) message: String,
}

/// Resolves a pending async op with its memo and asks for discovery.
pub(crate) fn resolve_pending(
    run: &mut Run,
    step: &str,
    resolution: Resolution,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    let Resolution {
        memo,
        status,
        kind,
        message,
    } = resolution;
    run.pending.remove(step);
    run.memo.insert(step.to_owned(), memo.clone());
    if !run.stack.iter().any(|s| s == step) {
        run.stack.push(step.to_owned());
    }
    if let Some(s) = run.find_step(step) {
        s.status = status;
        s.ended_at = Some(now);
        if status == StepStatus::Failed {
            s.error = memo.get("error").cloned();
        }
        s.output = Some(memo);
    }
    run.log(now, kind, Some(step), None, message);
    request_discovery(run, actions);
}

/// Ends a run and emits `inngest/function.finished` (and `.failed` / `.cancelled`).
pub(crate) fn finish_run(
    run: &mut Run,
    status: RunStatus,
    output: Option<Value>,
    error: Option<Value>,
    message: String,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    if run.status != RunStatus::Running {
        return;
    }
    run.status = status;
    run.ended_at = Some(now);
    run.output = output.clone();
    run.error = error.clone();
    run.pending.clear();
    run.planned.clear();
    run.discovery_busy = false;
    run.discovery_again = false;
    for s in &mut run.steps {
        if matches!(
            s.status,
            StepStatus::Planned
                | StepStatus::Running
                | StepStatus::Sleeping
                | StepStatus::Waiting
                | StepStatus::Invoking
        ) {
            s.status = StepStatus::Cancelled;
            s.ended_at = Some(now);
        }
    }
    let kind = match status {
        RunStatus::Completed => HistoryKind::Completed,
        RunStatus::Failed => HistoryKind::Failed,
        _ => HistoryKind::Cancelled,
    };
    run.log(now, kind, None, None, message);
    tracing::info!(run_id = %run.id, function = %run.function.slug, status = status.as_str(), "run finished");
    emit_finished(run, output, error, now, actions);
}

/// The events of a run that just ended: `inngest/function.finished`, plus `.failed` or
/// `.cancelled`.
fn emit_finished(
    run: &Run,
    output: Option<Value>,
    error: Option<Value>,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    let status = run.status;
    let ts = now.timestamp_millis();
    let mut data = json!({
        "function_id": run.function.slug,
        "run_id": run.id,
        "event": run.event,
        "events": run.events,
        "_inngest": {"status": status.as_str()},
    });
    if status == RunStatus::Completed {
        data["result"] = output.unwrap_or(Value::Null);
    } else {
        data["error"] = normalize_error(error.clone());
    }
    if let Some(cid) = &run.correlation_id {
        data["correlation_id"] = Value::String(cid.clone());
    }
    actions
        .events
        .push(json!({"name": EVENT_FINISHED, "data": data, "ts": ts}));
    let extra = match status {
        RunStatus::Failed => Some(EVENT_FAILED),
        RunStatus::Cancelled => Some(EVENT_CANCELLED),
        _ => None,
    };
    if let Some(name) = extra {
        actions.events.push(json!({
            "name": name,
            "id": run.id,
            "ts": ts,
            "data": {
                "function_id": run.function.slug,
                "run_id": run.id,
                "error": normalize_error(error),
                "event": run.event,
                "events": run.events,
                "_inngest": {"status": status.as_str()},
            },
        }));
    }
}

/// Cancels a run (see [`finish_run`]): its error is `{"name": "Error", "message": message}` and
/// `history` is the line its history gets.
pub(crate) fn cancel_run(
    run: &mut Run,
    message: String,
    history: String,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    finish_run(
        run,
        RunStatus::Cancelled,
        None,
        Some(json!({"name": "Error", "message": message})),
        history,
        now,
        actions,
    );
}

/// An error object with at least `name` and `message`.
fn normalize_error(error: Option<Value>) -> Value {
    match error {
        Some(Value::Object(mut m)) => {
            if !m.get("name").is_some_and(Value::is_string) {
                m.insert("name".into(), "Error".into());
            }
            if !m.get("message").is_some_and(Value::is_string) {
                let msg = m
                    .get("error")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| "unknown error".to_owned());
                m.insert("message".into(), msg.into());
            }
            Value::Object(m)
        }
        Some(Value::String(s)) => json!({"name": "Error", "message": s}),
        Some(other) => json!({"name": "Error", "message": other.to_string()}),
        None => json!({"name": "Error", "message": "unknown error"}),
    }
}
