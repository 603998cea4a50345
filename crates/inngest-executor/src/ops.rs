//! Applying an app's answer to its run: the ops of a 206 (steps memoized, planned steps
//! requested, sleeps/waits/invokes paused, errors retried, the run completed), an empty 206, a
//! 200, or a failure (retried with backoff while attempts remain, else the run fails); and the
//! deadlines of pending sleeps, waits and invokes.
//!
//! Parallel groups follow request version 2: a 206 with more than one op sets
//! `disable_immediate_execution`, each planned step gets its own targeted request, and one
//! discovery follows when the last planned step of the group completes, with the flag reset.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

use crate::gateway::{self, GatewayCall};
use crate::lifecycle::{complete_step, finish_run, request_discovery, resolve_pending, Resolution};
use crate::response::{
    chrono_duration, step_label, Failure, OpAction, OpsResponse, Outcome, ParsedOp,
};
use crate::shared::{new_ulid, random_uuid, Actions, Inner, Job, State, Timer, EVENT_INVOKED};
use crate::state::{HistoryKind, Pending, PendingKind, Run, RunStatus, StepStatus};
use inngest_protocol::wire::{Op, OpCode};

/// A failed attempt and whether (and when) it may be retried.
pub(crate) struct Retry {
    /// The run's error if it fails for good.
    pub(crate) error: Value,
    pub(crate) retriable: bool,
    /// `Retry-After` from the app, else the executor's backoff.
    pub(crate) retry_after: Option<Duration>,
}

/// The ops of one answer being applied.
struct Answer<'a> {
    job: &'a Job,
    no_retry: bool,
    now: DateTime<Utc>,
    /// A step was memoized.
    completed: bool,
    /// A step errored and the request will be retried.
    retry: bool,
}

/// A pending async op to register ([`Inner::pause`]).
struct Pause {
    step: String,
    label: String,
    op_name: &'static str,
    kind: PendingKind,
    until: DateTime<Utc>,
    status: StepStatus,
    history: HistoryKind,
    message: String,
}

impl Inner {
    /// Applies an answer to its run.
    pub(crate) fn apply(
        &self,
        run: &mut Run,
        job: &Job,
        outcome: Outcome,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let step = Some(job.step_id.as_str());
        if run.status != RunStatus::Running {
            run.log(
                now,
                HistoryKind::Response,
                step,
                Some(job.attempt),
                "response ignored: the run already ended",
            );
            return;
        }
        match outcome {
            Outcome::Ops(response) => self.apply_response(run, job, response, now, actions),
            Outcome::Empty => self.apply_empty(run, job, now, actions),
            Outcome::Done(value) => {
                run.log(
                    now,
                    HistoryKind::Response,
                    step,
                    Some(job.attempt),
                    "200: the function returned",
                );
                finish_run(
                    run,
                    RunStatus::Completed,
                    Some(value),
                    None,
                    "function completed".into(),
                    now,
                    actions,
                );
            }
            Outcome::Failure(Failure {
                error,
                retriable,
                retry_after,
                kind,
                reason,
            }) => {
                run.log(now, kind, step, Some(job.attempt), reason);
                let retry = Retry {
                    error,
                    retriable,
                    retry_after,
                };
                self.retry_or_fail(run, job, retry, now, actions);
            }
        }
    }

    /// A 206 with ops: records the request version on the first one, then applies the ops.
    fn apply_response(
        &self,
        run: &mut Run,
        job: &Job,
        response: OpsResponse,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let step = Some(job.step_id.as_str());
        let names: Vec<&str> = response.ops.iter().map(|o| o.name.as_str()).collect();
        run.log(
            now,
            HistoryKind::Response,
            step,
            Some(job.attempt),
            format!("206 [{}]", names.join(", ")),
        );
        if run.version == -1 {
            match response.version {
                Some(v) => run.version = v,
                None => {
                    run.version = 0;
                    run.log(
                        now,
                        HistoryKind::InvalidResponse,
                        step,
                        Some(job.attempt),
                        "206 without X-Inngest-Req-Version: request version stored as 0 (as the real server does)",
                    );
                }
            }
        }
        run.empty_responses = 0;
        self.apply_ops(run, job, response, now, actions);
    }

    /// A 206 with no ops: discovery is driven again, a targeted step is retried, and too many
    /// in a row fail the run.
    fn apply_empty(&self, run: &mut Run, job: &Job, now: DateTime<Utc>, actions: &mut Actions) {
        let step = Some(job.step_id.as_str());
        run.empty_responses += 1;
        if run.empty_responses > run.max_attempts {
            let msg = format!(
                "the app answered 206 with an empty op array {} times in a row",
                run.empty_responses
            );
            run.log(
                now,
                HistoryKind::InvalidResponse,
                step,
                Some(job.attempt),
                &msg,
            );
            finish_run(
                run,
                RunStatus::Failed,
                None,
                Some(json!({"name": "Error", "message": msg})),
                msg.clone(),
                now,
                actions,
            );
        } else if job.is_discovery() {
            run.log(
                now,
                HistoryKind::InvalidResponse,
                step,
                Some(job.attempt),
                "206 with an empty op array: re-driving discovery",
            );
            actions.jobs.push((Job::new(&run.id, &job.step_id), None));
        } else {
            let msg = "206 with an empty op array for a targeted step".to_owned();
            run.log(
                now,
                HistoryKind::InvalidResponse,
                step,
                Some(job.attempt),
                &msg,
            );
            let retry = Retry {
                error: json!({"name": "Error", "message": msg}),
                retriable: true,
                retry_after: None,
            };
            self.retry_or_fail(run, job, retry, now, actions);
        }
    }

    /// Retries the job if allowed and attempts remain; otherwise fails the run.
    fn retry_or_fail(
        &self,
        run: &mut Run,
        job: &Job,
        retry: Retry,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let Retry {
            error,
            retriable,
            retry_after,
        } = retry;
        if !job.is_discovery() {
            if let Some(s) = run.find_step(&job.step_id) {
                s.attempts = job.attempt + 1;
                s.error = Some(error.clone());
            }
        }
        if retriable && job.attempt + 1 < run.max_attempts {
            self.schedule_retry(run, job, retry_after, now, actions);
            return;
        }
        let why = if retriable {
            format!(
                "attempts exhausted ({} of {})",
                job.attempt + 1,
                run.max_attempts
            )
        } else {
            "not retriable".to_owned()
        };
        if !job.is_discovery() {
            if let Some(s) = run.find_step(&job.step_id) {
                s.status = StepStatus::Failed;
                s.ended_at = Some(now);
            }
        }
        finish_run(
            run,
            RunStatus::Failed,
            None,
            Some(error),
            format!("function failed: {why}"),
            now,
            actions,
        );
    }

    /// Queues the next attempt of `job` after `Retry-After` or the backoff.
    fn schedule_retry(
        &self,
        run: &mut Run,
        job: &Job,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let delay = retry_after.unwrap_or_else(|| self.settings.backoff.delay(job.attempt));
        run.log(
            now,
            HistoryKind::RetryScheduled,
            Some(&job.step_id),
            Some(job.attempt + 1),
            format!(
                "attempt {} of {} in {}",
                job.attempt + 2,
                run.max_attempts,
                inngest_protocol::timestr::format_go(delay)
            ),
        );
        actions
            .jobs
            .push((job.retry(), Some(now + chrono_duration(delay))));
    }

    /// Applies the ops of a 206 in order (waits first), then asks for what follows: a retry
    /// of the request, or the next discovery.
    fn apply_ops(
        &self,
        run: &mut Run,
        job: &Job,
        response: OpsResponse,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let OpsResponse {
            mut ops,
            no_retry,
            retry_after,
            ..
        } = response;
        let discovery = job.is_discovery();
        if discovery {
            run.discovery_busy = false;
        }
        if ops.len() > 1 && !run.force_step_plan {
            run.force_step_plan = true;
        }
        // WaitForEvent ops go first, so `[WaitForEvent, sendEvent]` patterns cannot miss.
        ops.sort_by_key(|o| o.op.op != OpCode::WaitForEvent);
        let mut answer = Answer {
            job,
            no_retry,
            now,
            completed: false,
            retry: false,
        };
        for p in ops {
            if run.status != RunStatus::Running || self.apply_op(run, &mut answer, p, actions) {
                return;
            }
        }
        if answer.retry {
            if discovery {
                run.discovery_busy = true;
            }
            self.schedule_retry(run, job, retry_after, now, actions);
            return;
        }
        if answer.completed {
            if discovery {
                request_discovery(run, actions);
            } else if run.version >= 2 && !run.planned.is_empty() {
                // Version 2 coalescing: one discovery once the whole group has finished.
            } else {
                if run.version >= 2 {
                    run.force_step_plan = false;
                }
                request_discovery(run, actions);
            }
        }
        if discovery && run.discovery_again && !run.discovery_busy {
            request_discovery(run, actions);
        }
    }

    /// Applies one op. Returns true when the run ended and the remaining ops are moot.
    fn apply_op(
        &self,
        run: &mut Run,
        a: &mut Answer<'_>,
        p: ParsedOp,
        actions: &mut Actions,
    ) -> bool {
        let ParsedOp { op, name, action } = p;
        let (job, now) = (a.job, a.now);
        let label = step_label(&op);
        let duplicate = run.memo.contains_key(&op.id)
            || run.planned.contains(&op.id)
            || run.pending.contains_key(&op.id);
        match action {
            OpAction::Run(data) => {
                let memo = json!({ "data": data });
                a.completed |=
                    complete_step(run, job, &op.id, &label, memo, StepStatus::Completed, now);
            }
            OpAction::Error(err) => step_errored(run, a, &op, &label, err),
            OpAction::Failed(err) => {
                let memo = json!({ "error": err });
                a.completed |=
                    complete_step(run, job, &op.id, &label, memo, StepStatus::Failed, now);
            }
            OpAction::Planned
            | OpAction::Sleep(_)
            | OpAction::Wait { .. }
            | OpAction::Invoke { .. }
            | OpAction::Signal { .. }
            | OpAction::Gateway(_)
                if duplicate => {}
            OpAction::Gateway(call) => gateway_done(run, a, &op, &label, call),
            OpAction::Planned => plan_step(run, &op.id, &label, now, actions),
            action @ (OpAction::Sleep(_)
            | OpAction::Wait { .. }
            | OpAction::Invoke { .. }
            | OpAction::Signal { .. }) => {
                if let Some((pause, event)) = pause_of(run, &op, label, action, now) {
                    if matches!(pause.kind, PendingKind::Signal { .. }) {
                        actions.signal_waits.push((run.id.clone(), op.id.clone()));
                    }
                    self.pause(run, pause, now, actions);
                    actions.events.extend(event);
                }
            }
            OpAction::Complete(data) => {
                finish_run(
                    run,
                    RunStatus::Completed,
                    Some(data),
                    None,
                    "function completed (RunComplete)".into(),
                    now,
                    actions,
                );
                return true;
            }
            OpAction::Discovery => request_discovery(run, actions),
            OpAction::Nothing => {}
            OpAction::Unsupported => {
                let msg = format!("op `{name}` is not supported by the local executor");
                run.log(
                    now,
                    HistoryKind::UnsupportedOp,
                    Some(&op.id),
                    Some(job.attempt),
                    &msg,
                );
                finish_run(
                    run,
                    RunStatus::Failed,
                    None,
                    Some(json!({"name": "Error", "message": msg})),
                    msg.clone(),
                    now,
                    actions,
                );
                return true;
            }
        }
        false
    }

    /// Registers a pending async op and its timer.
    fn pause(&self, run: &mut Run, pause: Pause, now: DateTime<Utc>, actions: &mut Actions) {
        let Pause {
            step,
            label,
            op_name,
            kind,
            until,
            status,
            history,
            message,
        } = pause;
        let seq = self.next_seq();
        run.pending
            .insert(step.clone(), Pending { kind, seq, until });
        let s = run.step_mut(&step, &label, op_name, now);
        s.status = status;
        run.log(now, history, Some(&step), None, message);
        actions.timers.push(Timer {
            run_id: run.id.clone(),
            step,
            seq,
            at: until,
        });
    }
}

/// `StepPlanned`: the step gets its own targeted request.
fn plan_step(run: &mut Run, id: &str, label: &str, now: DateTime<Utc>, actions: &mut Actions) {
    run.planned.insert(id.to_owned());
    let s = run.step_mut(id, label, "StepRun", now);
    s.status = StepStatus::Planned;
    run.log(
        now,
        HistoryKind::StepPlanned,
        Some(id),
        None,
        format!("step `{label}` planned"),
    );
    actions.jobs.push((Job::new(&run.id, id), None));
}

/// The pending op a `Sleep`, `WaitForEvent` or `InvokeFunction` starts, and for an invoke the
/// `inngest/function.invoked` event to send. `None` for any other action.
fn pause_of(
    run: &Run,
    op: &Op,
    label: String,
    action: OpAction,
    now: DateTime<Utc>,
) -> Option<(Pause, Option<Value>)> {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    Some(match action {
        OpAction::Sleep(until) => {
            let pause = Pause {
                step: op.id.clone(),
                label,
                op_name: "Sleep",
                kind: PendingKind::Sleep,
                until,
                status: StepStatus::Sleeping,
                history: HistoryKind::Sleeping,
                message: format!("sleeping until {}", stamp(until)),
            };
            (pause, None)
        }
        OpAction::Wait { event, expr, until } => {
            let message = format!(
                "waiting for `{event}`{} until {}",
                expr.as_ref()
                    .map(|e| format!(" if `{e}`"))
                    .unwrap_or_default(),
                stamp(until)
            );
            let pause = Pause {
                step: op.id.clone(),
                label,
                op_name: "WaitForEvent",
                kind: PendingKind::Wait { event, expr },
                until,
                status: StepStatus::Waiting,
                history: HistoryKind::Waiting,
                message,
            };
            (pause, None)
        }
        OpAction::Signal {
            signal,
            replace,
            until,
        } => {
            let message = format!("waiting for signal `{signal}` until {}", stamp(until));
            let pause = Pause {
                step: op.id.clone(),
                label,
                op_name: "WaitForSignal",
                kind: PendingKind::Signal {
                    signal,
                    replace,
                    active: true,
                },
                until,
                status: StepStatus::Waiting,
                history: HistoryKind::Waiting,
                message,
            };
            (pause, None)
        }
        OpAction::Invoke {
            function_id,
            payload,
            until,
        } => {
            let correlation_id = format!("{}.{}", run.id, op.id);
            let ev = invoke_event(
                run,
                &correlation_id,
                &label,
                &function_id,
                &payload,
                until,
                now,
            );
            let pause = Pause {
                step: op.id.clone(),
                label,
                op_name: "InvokeFunction",
                kind: PendingKind::Invoke { correlation_id },
                until,
                status: StepStatus::Invoking,
                history: HistoryKind::Invoking,
                message: format!("invoking `{function_id}`"),
            };
            (pause, Some(ev))
        }
        _ => return None,
    })
}

/// `StepError`: on the final attempt (or with `X-Inngest-No-Retry`) the step fails for good;
/// otherwise it is recorded and the request retried.
fn step_errored(run: &mut Run, a: &mut Answer<'_>, op: &Op, label: &str, err: Value) {
    let (job, now) = (a.job, a.now);
    if a.no_retry || job.attempt + 1 >= run.max_attempts {
        run.log(
            now,
            HistoryKind::StepFailed,
            Some(&op.id),
            Some(job.attempt),
            format!("step `{label}` errored on its final attempt: treated as StepFailed"),
        );
        let memo = json!({ "error": err });
        a.completed |= complete_step(run, job, &op.id, label, memo, StepStatus::Failed, now);
    } else {
        let s = run.step_mut(&op.id, label, "StepRun", job.sent_at.unwrap_or(now));
        s.status = StepStatus::Running;
        s.attempts = job.attempt + 1;
        s.error = Some(err);
        run.log(
            now,
            HistoryKind::StepErrored,
            Some(&op.id),
            Some(job.attempt),
            format!("step `{label}` errored"),
        );
        a.retry = true;
    }
}

/// A `Gateway` / `AIGateway` call was made: its result is the step's memo, and a failed call
/// is retried like a step error (the next attempt asks for the call again).
fn gateway_done(run: &mut Run, a: &mut Answer<'_>, op: &Op, label: &str, call: GatewayCall) {
    let (job, now) = (a.job, a.now);
    let op_name = match call.kind {
        gateway::Kind::Fetch => "Gateway",
        gateway::Kind::Ai => "AIGateway",
    };
    run.step_mut(&op.id, label, op_name, job.sent_at.unwrap_or(now));
    match call.result {
        Some(Ok(memo)) => {
            a.completed |= complete_step(run, job, &op.id, label, memo, StepStatus::Completed, now);
        }
        Some(Err(err)) => step_errored(run, a, op, label, err),
        // Only a checkpoint could bring an unmade call, and checkpoints skip these ops.
        None => {}
    }
}

/// The `inngest/function.invoked` event an `InvokeFunction` op sends.
fn invoke_event(
    run: &Run,
    correlation_id: &str,
    label: &str,
    function_id: &str,
    payload: &Map<String, Value>,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Value {
    let mut data = payload
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    data.insert(
        "_inngest".into(),
        json!({
            "correlation_id": correlation_id,
            "expire": until.timestamp_millis(),
            "fn_id": function_id,
            "gid": random_uuid(),
            "name": label,
            "source_app_id": run.function.app_uuid,
            "source_fn_id": run.function.uuid,
            "source_fn_v": 1,
        }),
    );
    let mut ev = json!({
        "name": EVENT_INVOKED,
        "data": data,
        "id": new_ulid(now),
        "ts": now.timestamp_millis(),
        "user": payload.get("user").filter(|u| u.is_object()).cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(v) = payload.get("v").and_then(Value::as_str) {
        ev["v"] = Value::String(v.to_owned());
    }
    ev
}

/// A sleep, wait or invoke deadline passed: the sleep ends, the wait or invoke times out. A
/// stale timer (the op was resolved, or the run ended) does nothing and returns false.
pub(crate) fn on_timer(
    st: &mut State,
    t: &Timer,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> bool {
    let Some(run) = st.runs.get_mut(&t.run_id) else {
        return false;
    };
    if run.status != RunStatus::Running {
        return false;
    }
    let Some(p) = run.pending.get(&t.step) else {
        return false;
    };
    if p.seq != t.seq {
        return false;
    }
    let resolution = match p.kind {
        PendingKind::Sleep => Resolution {
            memo: Value::Null,
            status: StepStatus::Completed,
            kind: HistoryKind::Resumed,
            message: "sleep finished".into(),
        },
        PendingKind::Wait { .. } => Resolution {
            memo: Value::Null,
            status: StepStatus::TimedOut,
            kind: HistoryKind::TimedOut,
            message: "wait for event timed out".into(),
        },
        PendingKind::Signal { .. } => Resolution {
            memo: Value::Null,
            status: StepStatus::TimedOut,
            kind: HistoryKind::TimedOut,
            message: "wait for signal timed out".into(),
        },
        PendingKind::Invoke { .. } => Resolution {
            memo: json!({"error": {
                "error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete",
                "name": "InngestInvokeTimeoutError",
                "message": "Timed out waiting for invoked function to complete",
            }}),
            status: StepStatus::TimedOut,
            kind: HistoryKind::TimedOut,
            message: "invoked function did not finish in time".into(),
        },
    };
    resolve_pending(run, &t.step, resolution, now, actions);
    true
}
