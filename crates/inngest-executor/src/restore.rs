//! Resuming runs after a restart ([`crate::ExecutorBuilder::state_dir`]): the runs read from
//! the state directory wait until their function is registered again; then they join the
//! history, and each unfinished one is driven again from its last memoized step — pending
//! sleeps, waits and invokes keep their deadlines, planned steps get their targeted request
//! again, and a run whose request was in flight gets a new discovery.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expr::Expr;
use crate::persist::{PendingRecord, RunRecord};
use crate::registry::FunctionDef;
use crate::shared::{Actions, Inner, Job, State, Timer};
use crate::state::{HistoryKind, Pending, PendingKind, Run, RunStatus};
use inngest_protocol::wire;

/// What a restored run was doing when the process stopped.
struct Resume {
    pending: Vec<PendingRecord>,
    /// Planned steps, in the record's order.
    planned: Vec<String>,
    discovery_busy: bool,
}

impl Inner {
    /// Brings back the restored runs whose function is registered now.
    pub(crate) fn restore_runs(&self, st: &mut State, now: DateTime<Utc>, actions: &mut Actions) {
        if st.restored.is_empty() {
            return;
        }
        let mut restored_any = false;
        let mut unfinished = Vec::new();
        for rec in std::mem::take(&mut st.restored) {
            let Some(function) = st.functions.get(&rec.function).cloned() else {
                st.restored.push(rec);
                continue;
            };
            if st.runs.contains_key(&rec.id) {
                continue;
            }
            restored_any = true;
            let resume = Resume {
                pending: rec.pending.clone(),
                planned: rec.planned.clone(),
                discovery_busy: rec.discovery_busy,
            };
            let mut run = run_of_record(rec, function);
            if run.status == RunStatus::Running {
                self.resume(&mut run, resume, now, actions);
                unfinished.push(run.id.clone());
            }
            st.runs_by_event
                .entry(run.event_id.clone())
                .or_default()
                .push(run.id.clone());
            st.run_order.push(run.id.clone());
            st.runs.insert(run.id.clone(), run);
        }
        if restored_any {
            let runs = &st.runs;
            st.run_order
                .sort_by(|a, b| (runs[a].started_at, a).cmp(&(runs[b].started_at, b)));
            for ids in st.runs_by_event.values_mut() {
                ids.sort_by(|a, b| (runs[a].started_at, a).cmp(&(runs[b].started_at, b)));
            }
        }
        // Run ids sort in creation order ([`State::new_run_id`]): the queues of concurrency
        // and throttle are rebuilt in the order the runs joined them, ties included.
        unfinished.sort_unstable();
        for id in &unfinished {
            crate::flow_control::restore_run_flow(st, id, now, actions);
        }
    }

    /// Drives an unfinished restored run again: its pending ops get their timers back, its
    /// planned steps and (when one was busy or nothing else is pending) a discovery are sent.
    fn resume(&self, run: &mut Run, resume: Resume, now: DateTime<Utc>, actions: &mut Actions) {
        let Resume {
            pending,
            planned,
            discovery_busy,
        } = resume;
        run.log(
            now,
            HistoryKind::Resumed,
            None,
            None,
            "executor restarted: resuming from the last memoized step",
        );
        for p in pending {
            let Some((step, until, kind)) = pending_of_record(&run.id, p) else {
                continue;
            };
            let seq = self.next_seq();
            actions.timers.push(Timer {
                run_id: run.id.clone(),
                step: step.clone(),
                seq,
                at: until,
            });
            run.pending.insert(step, Pending { kind, seq, until });
        }
        let mut jobs = planned;
        if discovery_busy || (run.pending.is_empty() && run.planned.is_empty()) {
            run.discovery_busy = true;
            jobs.push(wire::DISCOVERY_STEP_ID.to_owned());
        }
        for step in jobs {
            let attempt = resumed_attempt(run, &step, now);
            actions
                .jobs
                .push((Job::resumed(&run.id, &step, attempt), None));
        }
        tracing::info!(run_id = %run.id, function = %run.function.slug, "run resumed after an executor restart");
    }
}

/// The live run of a record (no pending ops yet, no discovery busy).
fn run_of_record(rec: RunRecord, function: Arc<FunctionDef>) -> Run {
    Run {
        id: rec.id,
        function,
        event_id: rec.event_id,
        event: rec.events.first().cloned().unwrap_or(Value::Null),
        events: rec.events,
        status: rec.status,
        output: rec.output,
        error: rec.error,
        started_at: rec.started_at,
        ended_at: rec.ended_at,
        max_attempts: rec.max_attempts,
        memo: rec.memo,
        stack: rec.stack,
        mocked: rec.mocked,
        version: rec.version,
        force_step_plan: rec.force_step_plan,
        planned: rec.planned.iter().cloned().collect(),
        pending: HashMap::new(),
        discovery_busy: false,
        discovery_again: false,
        empty_responses: 0,
        steps: rec.steps,
        history: rec.history,
        correlation_id: rec.correlation_id,
        requests: rec.requests,
    }
}

/// `(step, deadline, kind)` of a pending record; `None` (logged) for a wait whose expression
/// no longer compiles.
fn pending_of_record(
    run_id: &str,
    p: PendingRecord,
) -> Option<(String, DateTime<Utc>, PendingKind)> {
    Some(match p {
        PendingRecord::Sleep { step, until } => (step, until, PendingKind::Sleep),
        PendingRecord::Wait {
            step,
            until,
            event,
            expr,
        } => {
            // It compiled when the wait started; the evaluator is the same.
            let expr = match expr.as_deref().map(Expr::compile) {
                Some(Ok(e)) => Some(e),
                Some(Err(e)) => {
                    tracing::error!(run_id = %run_id, error = %e, "a restored wait's expression no longer compiles: the wait will only time out");
                    return None;
                }
                None => None,
            };
            (step, until, PendingKind::Wait { event, expr })
        }
        PendingRecord::Invoke {
            step,
            until,
            correlation_id,
        } => (step, until, PendingKind::Invoke { correlation_id }),
        PendingRecord::Signal {
            step,
            until,
            signal,
            replace,
            active,
        } => (
            step,
            until,
            PendingKind::Signal {
                signal,
                replace,
                active,
            },
        ),
    })
}

/// The attempt to resume a restored run's job for `step` with: a request that was in flight
/// when the process died counts as a failed attempt (recorded in the history), a retry that was
/// scheduled keeps its number, anything else starts at 0.
fn resumed_attempt(run: &mut Run, step: &str, now: DateTime<Utc>) -> u32 {
    let last = run
        .history
        .iter()
        .rev()
        .find(|h| h.step_id.as_deref() == Some(step))
        .map(|h| (h.kind, h.attempt.unwrap_or(0)));
    match last {
        Some((HistoryKind::Request, a)) => {
            run.log(
                now,
                HistoryKind::RequestFailed,
                Some(step),
                Some(a),
                "the request was interrupted by an executor restart",
            );
            (a + 1).min(run.max_attempts.saturating_sub(1)).max(a)
        }
        Some((HistoryKind::RetryScheduled, a)) => a,
        _ => 0,
    }
}
