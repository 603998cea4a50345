//! Flow control at run time: what the executor does with a function's `idempotency`, `rateLimit`,
//! `throttle`, `concurrency`, `debounce`, `batchEvents`, `singleton`, `timeouts` and `priority`
//! (protocol.md §6.3.1; the settings are parsed by [`crate::flow`], the bookkeeping lives in
//! [`crate::flow_state`]). Every period is measured on the executor's [`Clock`](crate::clock::Clock), so tests on a
//! [`VirtualClock`](crate::clock::VirtualClock) see exact, deterministic times.
//!
//! The order an event goes through, per matching function (the real server's order):
//! 1. **rate limit / idempotency** — at most `limit` runs per `period` per evaluated `key`
//!    (idempotency is `rateLimit {limit: 1, period: 24h, key}` and replaces any `rateLimit`).
//!    Excess events are *skipped*: no run, a [`SkipView`](crate::SkipView) record
//!    ([`Executor::skipped`](crate::Executor::skipped), `GET /v1/events/{id}/skips`).
//!    Exact for `limit: 1` (idempotency); for larger limits the local executor counts runs in
//!    a sliding window of `period`, where the server uses GCRA: both allow at most `limit` per
//!    period, the server may refuse a few more right after a burst.
//! 2. **debounce** — the run starts `period` after the last event for the key, with that last
//!    event; `timeout` caps the delay from the first event. Superseded events are recorded as
//!    skipped (`Debounced`). Exact.
//! 3. **batchEvents** — events (per evaluated `key`) are collected until `maxSize` (a run
//!    starts at once) or until `timeout` after the first one; the run gets `events` = the batch
//!    and `event` = its first event, and is listed under every event of the batch. Events for
//!    which `if` is false start a run of their own at once (a batch of one).
//! 4. **singleton** — while a run for the key is `Running`: `skip` records the new event as
//!    skipped (`Singleton`), `cancel` cancels the running run and starts the new one. Exact.
//! 5. The run is created (`Running`). **throttle** then holds its first request, with the
//!    GCRA the server's throttle uses (in its compatibility form): emission interval
//!    `period / limit`, tolerance `period × max(burst, 1)`. So an idle key starts
//!    `limit × max(burst, 1)` runs at once, then one every `period / limit` (limit 2 per
//!    minute: starts at 0 s, 0 s, 30 s, 60 s, …). Held runs start later on the clock, never
//!    dropped, in priority order; their `started_at` is the time they really started (the
//!    `Scheduled` history entry keeps the time they were queued). Approximation: the
//!    server's newer GCRA variant admits `burst + 1` at once instead.
//! 6. **concurrency** — at most `limit` requests to the app (step executions) in flight per
//!    function (`scope: fn`, optionally per evaluated key) or per evaluated key shared by every
//!    function using it (`scope: env` / `account`; the local executor has one environment, so
//!    `env` and `account` only differ in name). Sleeping or waiting runs hold no slot. Excess
//!    requests queue; the queue is ordered by the run's creation time (older runs first, ties
//!    in arrival order — FIFO on a virtual clock where everything is created at once), like the
//!    server's queue, which scores step jobs by run start time. A function's own limit is
//!    checked against the shared count, so functions with different limits on one key each see
//!    their own limit.
//! 7. **priority** — `run` is evaluated on the triggering event (clamped to ±43 200 s, errors
//!    count as 0) and moves the run earlier in the throttle and concurrency queues by that many
//!    seconds, as the server's priority factor does. Approximation: the server also applies it
//!    across its whole partition queue; here it only orders starts queued by throttle and
//!    requests queued by concurrency.
//! 8. **timeouts** — `start`: a run whose first request has not been sent `start` after it was
//!    created (held by throttle or concurrency) is cancelled; `finish`: a run still running
//!    `finish` after its first request is cancelled. Both end as `Cancelled`.
//!
//! Runs started by `invoke` skip steps 1–4 (they are not events a user sent) but are subject
//! to throttle, concurrency, priority and timeouts. Cron runs go through every step.
//! A key whose expression cannot be evaluated (for example a missing field) counts as the
//! empty key.

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::expr::{Expr, Vars};
use crate::flow::SkipReason;
use crate::flow_state::{Batching, Debouncing, FlowTimer, RunFlow, TimerKind, Waiter};
use crate::lifecycle::{cancel_run, start_run, NewRun};
use crate::persist::HeldRecord;
use crate::registry::FunctionDef;
use crate::shared::{Actions, Inner, Job, State};
use crate::state::{HistoryKind, RunStatus};
use inngest_protocol::wire;

/// Priority factor bounds (seconds), as the server clamps them.
const PRIORITY_LIMIT: i64 = 43_200;

/// An event (or an invoke) routed to one function.
pub(crate) struct Trigger {
    pub(crate) function: Arc<FunctionDef>,
    pub(crate) event: Value,
    /// The event's internal id.
    pub(crate) event_id: String,
    /// `<parent run>.<hashed step>` for an invoked run.
    pub(crate) correlation: Option<String>,
    /// Started by `invoke`: skips the event-level steps (1–4).
    pub(crate) invoked: bool,
}

/// Routes one event to one matching function through flow control (steps 1–5 of the module
/// docs). `invoked` runs skip the event-level steps.
pub(crate) fn admit(st: &mut State, t: Trigger, now: DateTime<Utc>, actions: &mut Actions) {
    let Trigger {
        function: f,
        event: ev,
        event_id,
        correlation,
        invoked,
    } = t;
    if f.flow.is_empty() {
        let new = NewRun {
            function: f,
            event: ev,
            event_id,
            correlation_id: correlation,
        };
        start_run(st, new, now, actions);
        return;
    }
    if invoked {
        create_run(st, f, vec![(ev, event_id)], correlation, now, actions);
        return;
    }
    if rate_limited(st, &f, &ev, &event_id, now) || debounced(st, &f, &ev, &event_id, now, actions)
    {
        return;
    }
    let Some(ev) = batched(st, &f, ev, &event_id, now, actions) else {
        return;
    };
    schedule(st, f, vec![(ev, event_id)], now, actions);
}

/// Step 1, rate limit / idempotency: whether the event is skipped (and recorded).
fn rate_limited(
    st: &mut State,
    f: &Arc<FunctionDef>,
    ev: &Value,
    event_id: &str,
    now: DateTime<Utc>,
) -> bool {
    let Some((limit, period, key, idem)) = &f.flow.rate_limit else {
        return false;
    };
    let key = eval_key(key.as_ref(), ev);
    let slot = format!("{}\0{key}", f.slug);
    let since = now - chrono::Duration::from_std(*period).unwrap_or_default();
    let starts = st.flow.rate.entry(slot).or_default();
    starts.retain(|t| *t > since);
    if starts.len() >= *limit as usize {
        let reason = if *idem {
            SkipReason::Idempotency
        } else {
            SkipReason::RateLimit
        };
        st.flow.skip(event_id, f, reason, key, now);
        return true;
    }
    starts.push(now);
    false
}

/// Step 2, debounce: whether the event was taken (it replaces the key's earlier event, which
/// is recorded as skipped, and the run starts when the debounce period ends).
fn debounced(
    st: &mut State,
    f: &Arc<FunctionDef>,
    ev: &Value,
    event_id: &str,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> bool {
    let Some((period, key, timeout)) = &f.flow.debounce else {
        return false;
    };
    let key = eval_key(key.as_ref(), ev);
    let slot = format!("{}\0{key}", f.slug);
    let seq = st.flow.next_seq();
    let first_at = match st.flow.debounce.remove(&slot) {
        Some(prev) => {
            st.flow
                .skip(&prev.event_id, f, SkipReason::Debounced, key, now);
            prev.first_at
        }
        None => now,
    };
    let mut at = add(now, *period);
    if let Some(t) = timeout {
        at = at.min(add(first_at, *t));
    }
    let deadline = at;
    st.flow.debounce.insert(
        slot.clone(),
        Debouncing {
            function: f.clone(),
            event: ev.clone(),
            event_id: event_id.to_owned(),
            first_at,
            deadline,
            seq,
        },
    );
    actions.flow_timers.push(FlowTimer {
        at,
        what: TimerKind::Debounce { key: slot, seq },
    });
    true
}

/// Step 3, batching: `None` when the event joined a batch (which starts a run once full),
/// the event back when it is not batched.
fn batched(
    st: &mut State,
    f: &Arc<FunctionDef>,
    ev: Value,
    event_id: &str,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> Option<Value> {
    let Some((max, timeout, key, cond)) = &f.flow.batch else {
        return Some(ev);
    };
    let batched = cond
        .as_ref()
        .is_none_or(|c| c.eval_bool(&Vars::new().with_event(&ev)).unwrap_or(false));
    if !batched {
        return Some(ev);
    }
    let key = eval_key(key.as_ref(), &ev);
    let slot = format!("{}\0{key}", f.slug);
    let b = match st.flow.batches.get_mut(&slot) {
        Some(b) => b,
        None => {
            let seq = st.flow.next_seq();
            let deadline = add(now, *timeout);
            actions.flow_timers.push(FlowTimer {
                at: deadline,
                what: TimerKind::Batch {
                    key: slot.clone(),
                    seq,
                },
            });
            st.flow.batches.entry(slot.clone()).or_insert(Batching {
                function: f.clone(),
                events: Vec::new(),
                first_at: now,
                deadline,
                seq,
            })
        }
    };
    b.events.push((ev, event_id.to_owned()));
    if b.events.len() >= *max {
        if let Some(b) = st.flow.batches.remove(&slot) {
            schedule(st, b.function, b.events, now, actions);
        }
    }
    None
}

/// Singleton, then run creation.
fn schedule(
    st: &mut State,
    f: Arc<FunctionDef>,
    events: Vec<(Value, String)>,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    let Some((first, first_id)) = events.first().cloned() else {
        return;
    };
    let mut singleton_slot = None;
    if let Some((cancel, key)) = &f.flow.singleton {
        let key = eval_key(key.as_ref(), &first);
        let slot = format!("{}\0{key}", f.slug);
        let running = st
            .flow
            .singleton
            .get(&slot)
            .filter(|id| {
                st.runs
                    .get(*id)
                    .is_some_and(|r| r.status == RunStatus::Running)
            })
            .cloned();
        if let Some(run_id) = running {
            if !cancel {
                st.flow.skip(&first_id, &f, SkipReason::Singleton, key, now);
                return;
            }
            if let Some(run) = st.runs.get_mut(&run_id) {
                cancel_run(
                    run,
                    "function cancelled: replaced by a new singleton run".into(),
                    format!("cancelled by singleton: event {first_id} started a new run"),
                    now,
                    actions,
                );
            }
        }
        singleton_slot = Some(slot);
    }
    let id = create_run(st, f, events, None, now, actions);
    if let Some(slot) = singleton_slot {
        st.flow.singleton.insert(slot, id);
    }
}

/// Creates the run (with its batch), registers its concurrency slots, priority and
/// timeouts, and holds its first request when a throttle applies.
fn create_run(
    st: &mut State,
    f: Arc<FunctionDef>,
    events: Vec<(Value, String)>,
    correlation: Option<String>,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> String {
    let (first, first_id) = events[0].clone();
    let new = NewRun {
        function: f.clone(),
        event: first.clone(),
        event_id: first_id,
        correlation_id: correlation,
    };
    let id = start_run(st, new, now, actions);
    if events.len() > 1 {
        if let Some(run) = st.runs.get_mut(&id) {
            run.events = events.iter().map(|(e, _)| e.clone()).collect();
            run.log(
                now,
                HistoryKind::Scheduled,
                None,
                None,
                format!("batch of {} events", events.len()),
            );
        }
        for (_, eid) in &events[1..] {
            st.runs_by_event
                .entry(eid.clone())
                .or_default()
                .push(id.clone());
        }
    }
    let flow = &f.flow;
    let priority = priority_of(&f, &first);
    let score = now.timestamp_millis() - priority * 1000;
    st.flow.runs.insert(
        id.clone(),
        RunFlow {
            slots: concurrency_slots(&f, &first).into(),
            score,
            started: false,
            finish_timeout: flow.finish_timeout,
        },
    );
    if let Some(t) = flow.start_timeout {
        actions.flow_timers.push(FlowTimer {
            at: add(now, t),
            what: TimerKind::StartTimeout { run_id: id.clone() },
        });
    }
    if let Some((_, _, _, key)) = &flow.throttle {
        let slot = format!("{}\0{}", f.slug, eval_key(key.as_ref(), &first));
        hold_for_throttle(st, slot, &id, score, now, actions);
    }
    id
}

/// Holds the run's first request (taken out of `actions`) in the throttle queue of `slot`, at
/// `score`, and starts what the key's GCRA allows now.
fn hold_for_throttle(
    st: &mut State,
    slot: String,
    id: &str,
    score: i64,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    actions.jobs.retain(|(j, _)| j.run_id != id);
    let seq = st.flow.next_seq();
    st.flow
        .throttle
        .entry(slot.clone())
        .or_default()
        .queue
        .insert((score, seq), id.to_owned());
    drain_throttle(st, &slot, now, actions);
}

/// The `(concurrency key, limit)` pairs a run of `f` triggered by `first` holds per request.
fn concurrency_slots(f: &FunctionDef, first: &Value) -> Vec<(String, u32)> {
    f.flow
        .concurrency
        .iter()
        .map(|c| {
            let key = eval_key(c.key.as_ref(), first);
            let name = match (c.scope.as_str(), &c.key) {
                ("fn", None) => format!("fn\0{}", f.slug),
                ("fn", Some(_)) => format!("fn\0{}\0{key}", f.slug),
                (scope, _) => format!("{scope}\0{key}"),
            };
            (name, c.limit)
        })
        .collect()
}

/// Starts the queued runs of a throttle key that GCRA allows now; arms a wake-up for the
/// next one.
fn drain_throttle(st: &mut State, slot: &str, now: DateTime<Utc>, actions: &mut Actions) {
    let Some(q) = st.flow.throttle.get_mut(slot) else {
        return;
    };
    let mut started = Vec::new();
    let mut wake = None;
    while let Some((k, run_id)) = q.queue.iter().next().map(|(k, v)| (*k, v.clone())) {
        let Some(f) = st.runs.get(&run_id).map(|r| r.function.clone()) else {
            q.queue.remove(&k);
            continue;
        };
        let Some((limit, period, burst, _)) = f.flow.throttle.clone() else {
            q.queue.remove(&k);
            started.push(run_id);
            continue;
        };
        // GCRA as the server's (compatibility) throttle runs it: one start every
        // `period / limit`, with a tolerance of `period * max(burst, 1)`.
        let emission = period / limit;
        let tau = (period * burst.max(1)).saturating_sub(emission);
        let tat = q.tat.unwrap_or(now).max(now);
        let allowed_at = tat - chrono::Duration::from_std(tau).unwrap_or_default();
        if allowed_at > now {
            wake = Some(allowed_at);
            break;
        }
        q.tat = Some(add(tat, emission));
        q.queue.remove(&k);
        started.push(run_id);
    }
    if let Some(at) = wake {
        if q.armed != Some(at) {
            q.armed = Some(at);
            actions.flow_timers.push(FlowTimer {
                at,
                what: TimerKind::Throttle {
                    key: slot.to_owned(),
                },
            });
        }
    }
    for id in started {
        start_throttled(st, &id, now, actions);
    }
}

/// Sends the first request of a run the throttle held.
fn start_throttled(st: &mut State, id: &str, now: DateTime<Utc>, actions: &mut Actions) {
    let Some(run) = st.runs.get_mut(id) else {
        return;
    };
    if run.status != RunStatus::Running {
        return;
    }
    if run.started_at != now {
        let queued = (now - run.started_at).to_std().unwrap_or_default();
        run.log(
            now,
            HistoryKind::Scheduled,
            None,
            None,
            format!(
                "throttle: started after {} in the queue",
                inngest_protocol::timestr::format_go(queued)
            ),
        );
    }
    run.started_at = now;
    actions
        .jobs
        .push((Job::new(id, wire::DISCOVERY_STEP_ID), None));
}

/// Gives an unfinished run read back after a restart its flow control again, as
/// [`create_run`] gave it when it was created: its concurrency slots and queue score (so its
/// requests queue behind the limit again, in the same order), its timeouts, and, when a
/// throttle still held it (no request sent yet), its place in the throttle queue, whose GCRA
/// state was kept ([`crate::persist::FlowRecord::throttle`]). Call once the run is in
/// `st.runs`, after its resumed requests were queued in `actions`.
pub(crate) fn restore_run_flow(
    st: &mut State,
    id: &str,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
    let Some(run) = st.runs.get(id) else {
        return;
    };
    let f = run.function.clone();
    let flow = &f.flow;
    let started = run.requests > 0;
    let created = run.started_at;
    let first_request = run
        .history
        .iter()
        .find(|h| h.kind == HistoryKind::Request)
        .map(|h| h.at);
    let score = created.timestamp_millis() - priority_of(&f, &run.event) * 1000;
    let slots = concurrency_slots(&f, &run.event);
    st.flow.runs.insert(
        id.to_owned(),
        RunFlow {
            slots: slots.into(),
            score,
            started,
            finish_timeout: flow.finish_timeout.filter(|_| !started),
        },
    );
    let timer = match (started, flow.start_timeout, flow.finish_timeout) {
        (false, Some(t), _) => Some((
            created,
            t,
            TimerKind::StartTimeout {
                run_id: id.to_owned(),
            },
        )),
        (true, _, Some(t)) => first_request.map(|at| {
            (
                at,
                t,
                TimerKind::FinishTimeout {
                    run_id: id.to_owned(),
                },
            )
        }),
        _ => None,
    };
    if let Some((from, d, what)) = timer {
        actions.flow_timers.push(FlowTimer {
            at: add(from, d),
            what,
        });
    }
    if let (false, Some((_, _, _, key))) = (started, &flow.throttle) {
        let slot = format!("{}\0{}", f.slug, eval_key(key.as_ref(), &st.runs[id].event));
        hold_for_throttle(st, slot, id, score, now, actions);
    }
}

/// Brings back the debounce and batch buffers kept across a restart whose function is
/// registered now; a deadline that passed while the process was down fires at once.
pub(crate) fn restore_held(st: &mut State, actions: &mut Actions) {
    let held = std::mem::take(&mut st.held_flow);
    for (key, h) in held.debounce {
        let Some((function, seq)) = rearm(st, &h, actions, |seq| TimerKind::Debounce {
            key: key.clone(),
            seq,
        }) else {
            st.held_flow.debounce.insert(key, h);
            continue;
        };
        let Some((event, event_id)) = h.events.into_iter().next() else {
            continue;
        };
        let d = Debouncing {
            function,
            event,
            event_id,
            first_at: h.first_at,
            deadline: h.deadline,
            seq,
        };
        st.flow.debounce.insert(key, d);
    }
    for (key, h) in held.batches {
        let Some((function, seq)) = rearm(st, &h, actions, |seq| TimerKind::Batch {
            key: key.clone(),
            seq,
        }) else {
            st.held_flow.batches.insert(key, h);
            continue;
        };
        let b = Batching {
            function,
            events: h.events,
            first_at: h.first_at,
            deadline: h.deadline,
            seq,
        };
        st.flow.batches.insert(key, b);
    }
}

/// The function of a held buffer (`None` while it is not registered) and the sequence number
/// of the timer armed for its deadline.
fn rearm(
    st: &mut State,
    h: &HeldRecord,
    actions: &mut Actions,
    what: impl FnOnce(u64) -> TimerKind,
) -> Option<(Arc<FunctionDef>, u64)> {
    let function = st.functions.get(&h.function).cloned()?;
    let seq = st.flow.next_seq();
    actions.flow_timers.push(FlowTimer {
        at: h.deadline,
        what: what(seq),
    });
    Some((function, seq))
}

/// A flow-control deadline passed: starts a debounced run or a batch, drains a throttle key,
/// or cancels a run that missed its `timeouts`.
pub(crate) fn on_timer(st: &mut State, what: TimerKind, now: DateTime<Utc>, actions: &mut Actions) {
    match what {
        TimerKind::Debounce { key, seq } => {
            if st.flow.debounce.get(&key).is_some_and(|d| d.seq == seq) {
                if let Some(d) = st.flow.debounce.remove(&key) {
                    let events = vec![(d.event, d.event_id)];
                    schedule(st, d.function, events, now, actions);
                }
            }
        }
        TimerKind::Batch { key, seq } => {
            if st.flow.batches.get(&key).is_some_and(|b| b.seq == seq) {
                if let Some(b) = st.flow.batches.remove(&key) {
                    schedule(st, b.function, b.events, now, actions);
                }
            }
        }
        TimerKind::Throttle { key } => {
            if let Some(q) = st.flow.throttle.get_mut(&key) {
                q.armed = None;
            }
            drain_throttle(st, &key, now, actions);
        }
        TimerKind::StartTimeout { run_id } => {
            let waiting = st.flow.runs.get(&run_id).is_some_and(|r| !r.started);
            if let Some(run) = st.runs.get_mut(&run_id).filter(|_| waiting) {
                cancel_run(
                    run,
                    "function cancelled: not started within timeouts.start".into(),
                    "cancelled: timeouts.start passed before the run started".into(),
                    now,
                    actions,
                );
            }
        }
        TimerKind::FinishTimeout { run_id } => {
            if let Some(run) = st.runs.get_mut(&run_id) {
                cancel_run(
                    run,
                    "function cancelled: not finished within timeouts.finish".into(),
                    "cancelled: timeouts.finish passed".into(),
                    now,
                    actions,
                );
            }
        }
    }
}

/// The `(concurrency key, limit)` pairs a request of a run holds.
type Slots = Arc<[(String, u32)]>;

/// A concurrency slot held for one request; released on drop.
pub(crate) struct Slot {
    inner: Weak<Inner>,
    slots: Slots,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.lock().flow.release(&self.slots);
        }
    }
}

/// A request's place in the concurrency queue ([`reserve_slot`]).
pub(crate) struct Reservation {
    inner: Weak<Inner>,
    /// The grant to wait for, and the slots it is for.
    wait: Option<(tokio::sync::oneshot::Receiver<()>, Slots)>,
}

impl Reservation {
    /// Waits until the slots are granted. `None` when the executor is gone; `Some(None)` when
    /// the run holds no slots.
    pub(crate) async fn granted(self) -> Option<Option<Slot>> {
        match self.wait {
            None => Some(None),
            Some((rx, slots)) => {
                rx.await.ok()?;
                Some(Some(Slot {
                    inner: self.inner,
                    slots,
                }))
            }
        }
    }
}

/// Queues a request of the run for its concurrency slots (if any) and marks the run started.
/// The timer is the run's finish timeout, armed by its first request.
pub(crate) fn reserve_slot(inner: &Arc<Inner>, run_id: &str) -> (Reservation, Option<FlowTimer>) {
    let now = inner.now();
    let mut guard = inner.lock();
    let st = &mut *guard;
    let mut reservation = Reservation {
        inner: Arc::downgrade(inner),
        wait: None,
    };
    let Some(rf) = st.flow.runs.get_mut(run_id) else {
        return (reservation, None);
    };
    let mut finish = None;
    if !rf.started {
        rf.started = true;
        finish = rf.finish_timeout.map(|d| FlowTimer {
            at: add(now, d),
            what: TimerKind::FinishTimeout {
                run_id: run_id.to_owned(),
            },
        });
    }
    let slots = rf.slots.clone();
    let score = rf.score;
    if !slots.is_empty() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let seq = st.flow.next_seq();
        st.flow.waiting.insert(
            (score, seq),
            Waiter {
                slots: slots.clone(),
                tx,
            },
        );
        st.flow.grant();
        reservation.wait = Some((rx, slots));
    }
    (reservation, finish)
}

/// The evaluated key of `expr` for `event` (`""` without an expression or when it fails).
fn eval_key(expr: Option<&Expr>, event: &Value) -> String {
    let Some(expr) = expr else {
        return String::new();
    };
    match expr.eval(&Vars::new().with_event(event)) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => String::new(),
        Ok(v) => crate::expr::key_string(&v),
        Err(_) => {
            tracing::debug!(expression = %expr, "flow-control key could not be evaluated; empty key");
            String::new()
        }
    }
}

fn priority_of(f: &FunctionDef, event: &Value) -> i64 {
    let Some(expr) = &f.flow.priority else {
        return 0;
    };
    match expr.eval(&Vars::new().with_event(event)) {
        Ok(v) => v
            .as_i64()
            .or_else(|| v.as_f64().map(|x| x as i64))
            .unwrap_or(0)
            .clamp(-PRIORITY_LIMIT, PRIORITY_LIMIT),
        Err(_) => 0,
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_priorities() {
        let e = json!({"data": {"s": "a", "n": 3}});
        assert_eq!(
            eval_key(Some(&Expr::compile("event.data.s").unwrap()), &e),
            "a"
        );
        assert_eq!(
            eval_key(Some(&Expr::compile("event.data.n").unwrap()), &e),
            "3"
        );
        assert_eq!(
            eval_key(Some(&Expr::compile("event.data.x").unwrap()), &e),
            "false"
        );
        assert_eq!(eval_key(None, &e), "");
    }
}
