//! Signals: `WaitForSignal` waits and the `POST /v1/signals` route that resumes them, as the
//! Inngest server does it.
//!
//! Facts mirrored (not code) from the server and the JS SDK 4.x:
//! * the op carries `opts: {signal, timeout, conflict}` (inngest-js `packages/inngest/src/
//!   components/InngestStepTools.ts`, `waitForSignal`); its memo is
//!   `{"data": {"signal", "data"}}` when a signal arrives (inngest `executor.go` `ResumeSignal`)
//!   and `null` on timeout;
//! * a signal has at most one waiter. A second wait on a signal already waited on fails its
//!   step with a "Signal conflict" error, unless it asks `conflict: "replace"`, in which case it
//!   takes the signal over and the earlier wait can only time out (inngest `pkg/execution/
//!   executor/executor.go` `handleGeneratorWaitForSignal`, `state.ErrSignalConflict`, the
//!   `savePause` script's `replaceSignalOnConflict`);
//! * a signal sent when nobody waits is not stored: nothing resumes later. `POST /v1/signals`
//!   answers as `pkg/api/apiv1/signals.go` `receiveSignal` does: 200
//!   `{"data": {"run_id"}, "metadata": {"fetched_at"}}`, 404 `{"error": "No signal found"}`
//!   when nobody waits, 400 `"Invalid signal data"` for a body that is not the request's
//!   JSON, 500 `"Failed to receive signal"` for an empty signal name.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::lifecycle::{resolve_pending, Resolution};
use crate::shared::{Actions, State};
use crate::state::{HistoryKind, PendingKind, RunStatus, StepStatus};

/// The running run and step that waits on `signal` (and still holds it), if any, other than
/// `except`.
fn waiter(st: &State, signal: &str, except: Option<(&str, &str)>) -> Option<(String, String)> {
    st.run_order.iter().find_map(|run_id| {
        let run = st.runs.get(run_id)?;
        if run.status != RunStatus::Running {
            return None;
        }
        run.pending.iter().find_map(|(step, p)| match &p.kind {
            PendingKind::Signal {
                signal: s,
                active: true,
                ..
            } if s == signal && except != Some((run_id.as_str(), step.as_str())) => {
                Some((run_id.clone(), step.clone()))
            }
            _ => None,
        })
    })
}

/// Checks the signal waits an answer started against the waits already held: a conflicting
/// wait fails its step, or (with `conflict: "replace"`) takes the signal over.
pub(crate) fn claim(st: &mut State, now: DateTime<Utc>, actions: &mut Actions) {
    for (run_id, step) in std::mem::take(&mut actions.signal_waits) {
        let Some((signal, replace)) = st
            .runs
            .get(&run_id)
            .and_then(|r| r.pending.get(&step))
            .and_then(|p| match &p.kind {
                PendingKind::Signal {
                    signal, replace, ..
                } => Some((signal.clone(), *replace)),
                _ => None,
            })
        else {
            continue;
        };
        let Some((other_run, other_step)) = waiter(st, &signal, Some((&run_id, &step))) else {
            continue;
        };
        if replace {
            supersede(st, &other_run, &other_step, &signal, now);
        } else if let Some(run) = st.runs.get_mut(&run_id) {
            let message = format!("Signal conflict: signal `{signal}` already has a waiter");
            let resolution = Resolution {
                memo: json!({"error": {"name": "Error", "message": message}}),
                status: StepStatus::Failed,
                kind: HistoryKind::StepFailed,
                message,
            };
            resolve_pending(run, &step, resolution, now, actions);
        }
    }
}

/// Marks a wait as replaced: it no longer receives its signal and only times out.
fn supersede(st: &mut State, run_id: &str, step: &str, signal: &str, now: DateTime<Utc>) {
    let Some(run) = st.runs.get_mut(run_id) else {
        return;
    };
    if let Some(PendingKind::Signal { active, .. }) = run.pending.get_mut(step).map(|p| &mut p.kind)
    {
        *active = false;
    }
    run.log(
        now,
        HistoryKind::Waiting,
        Some(step),
        None,
        format!("signal `{signal}` was taken over by a later wait (conflict: replace)"),
    );
}

/// Delivers `data` to the run waiting on `signal`; the id of the resumed run, or `None` when
/// nobody waits (the signal is then dropped).
pub(crate) fn deliver(
    st: &mut State,
    signal: &str,
    data: Value,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> Option<String> {
    let (run_id, step) = waiter(st, signal, None)?;
    let run = st.runs.get_mut(&run_id)?;
    let resolution = Resolution {
        // The server resumes with `{"data": {"signal", "data"}}` (`state.SignalStepReturn`
        // under `execution.StateDataKey`), like a run step's output.
        memo: json!({"data": {"signal": signal, "data": data}}),
        status: StepStatus::Completed,
        kind: HistoryKind::Resumed,
        message: format!("signal `{signal}` received"),
    };
    resolve_pending(run, &step, resolution, now, actions);
    Some(run_id)
}
