//! Flow control: what the executor does with a function's `idempotency`, `rateLimit`,
//! `throttle`, `concurrency`, `debounce`, `batchEvents`, `singleton`, `timeouts` and `priority`
//! (protocol.md §6.3.1). Every period is measured on the executor's [`Clock`], so tests on a
//! [`VirtualClock`] see exact, deterministic times.
//!
//! The order an event goes through, per matching function (the real server's order):
//! 1. **rate limit / idempotency** — at most `limit` runs per `period` per evaluated `key`
//!    (idempotency is `rateLimit {limit: 1, period: 24h, key}` and replaces any `rateLimit`).
//!    Excess events are *skipped*: no run, a [`SkipView`] record
//!    ([`Executor::skipped`](super::Executor::skipped), `GET /v1/events/{id}/skips`).
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::engine::{cancel_run, Actions, Inner, Job, State};
use super::expr::{Expr, Vars};
use super::registry::FunctionDef;
use super::state::{HistoryKind, RunStatus};
use inngest_protocol::wire;

/// Priority factor bounds (seconds), as the server clamps them.
const PRIORITY_LIMIT: i64 = 43_200;

/// A concurrency limit of a function.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimit {
    pub limit: u32,
    pub key: Option<Expr>,
    /// `fn`, `env` or `account`.
    pub scope: String,
}

/// Parsed flow-control settings of a function.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowConfig {
    pub concurrency: Vec<ConcurrencyLimit>,
    /// `(limit, period, key, is idempotency)`.
    pub rate_limit: Option<(u32, Duration, Option<Expr>, bool)>,
    /// `(limit, period, burst, key)`.
    pub throttle: Option<(u32, Duration, u32, Option<Expr>)>,
    /// `(period, key, timeout)`.
    pub debounce: Option<(Duration, Option<Expr>, Option<Duration>)>,
    /// `(max size, timeout, key, if)`.
    pub batch: Option<(usize, Duration, Option<Expr>, Option<Expr>)>,
    /// `(cancel mode, key)`.
    pub singleton: Option<(bool, Option<Expr>)>,
    pub start_timeout: Option<Duration>,
    pub finish_timeout: Option<Duration>,
    pub priority: Option<Expr>,
}

impl FlowConfig {
    /// Whether every run of the function starts at once with no bookkeeping.
    pub fn is_empty(&self) -> bool {
        self.concurrency.is_empty()
            && self.rate_limit.is_none()
            && self.throttle.is_none()
            && self.debounce.is_none()
            && self.batch.is_none()
            && self.singleton.is_none()
            && self.start_timeout.is_none()
            && self.finish_timeout.is_none()
            && self.priority.is_none()
    }

    /// Parses the flow-control keys of a function object; returns every problem found.
    pub fn parse(obj: &Map<String, Value>) -> Result<FlowConfig, Vec<String>> {
        let mut errors = Vec::new();
        let mut cfg = FlowConfig::default();
        let expr = |what: &str, v: Option<&Value>, errors: &mut Vec<String>| -> Option<Expr> {
            let src = v.and_then(Value::as_str).map(str::trim)?;
            if src.is_empty() {
                return None;
            }
            Expr::compile(src)
                .map_err(|e| errors.push(format!("{what}: {e}")))
                .ok()
        };
        let dur = |what: &str, v: Option<&Value>, errors: &mut Vec<String>| -> Option<Duration> {
            let s = v.and_then(Value::as_str)?;
            inngest_protocol::timestr::parse(s)
                .map_err(|e| errors.push(format!("{what}: {e}")))
                .ok()
        };
        let int = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0).max(0) as u32;

        let conc: Vec<Value> = match obj.get("concurrency") {
            Some(Value::Array(a)) => a.clone(),
            Some(n @ Value::Number(_)) => vec![json!({ "limit": n })],
            Some(o @ Value::Object(_)) if o.get("limit").is_some() => vec![o.clone()],
            _ => Vec::new(),
        };
        for (i, c) in conc.iter().enumerate() {
            let limit = int(c.get("limit"));
            let key = expr(&format!("concurrency #{i} key"), c.get("key"), &mut errors);
            let scope = c
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("fn")
                .to_owned();
            if scope != "fn" && key.is_none() {
                errors.push(format!(
                    "concurrency #{i}: scope `{scope}` requires a `key`"
                ));
            }
            if limit > 0 {
                cfg.concurrency.push(ConcurrencyLimit { limit, key, scope });
            }
        }
        if let Some(src) = obj.get("idempotency").and_then(Value::as_str) {
            if let Some(key) = expr("idempotency", Some(&Value::from(src)), &mut errors) {
                cfg.rate_limit = Some((1, Duration::from_secs(86_400), Some(key), true));
            }
        }
        if let (None, Some(r)) = (&cfg.rate_limit, obj.get("rateLimit")) {
            let key = expr("rateLimit key", r.get("key"), &mut errors);
            if let Some(period) = dur("rateLimit period", r.get("period"), &mut errors) {
                let limit = int(r.get("limit"));
                if limit == 0 {
                    errors.push("rateLimit limit must be greater than 0".into());
                }
                cfg.rate_limit = Some((limit, period, key, false));
            }
        }
        if let Some(t) = obj.get("throttle") {
            let key = expr("throttle key", t.get("key"), &mut errors);
            if let Some(period) = dur("throttle period", t.get("period"), &mut errors) {
                let limit = int(t.get("limit")).max(1);
                cfg.throttle = Some((limit, period, int(t.get("burst")), key));
            }
        }
        if let Some(d) = obj.get("debounce") {
            let key = expr("debounce key", d.get("key"), &mut errors);
            let timeout = dur("debounce timeout", d.get("timeout"), &mut errors);
            if let Some(period) = dur("debounce period", d.get("period"), &mut errors) {
                cfg.debounce = Some((period, key, timeout));
            }
        }
        if let Some(b) = obj.get("batchEvents") {
            let key = expr("batchEvents key", b.get("key"), &mut errors);
            let cond = expr("batchEvents if", b.get("if"), &mut errors);
            if let Some(timeout) = dur("batchEvents timeout", b.get("timeout"), &mut errors) {
                let size = int(b.get("maxSize")).max(1) as usize;
                cfg.batch = Some((size, timeout, key, cond));
            }
        }
        if let Some(s) = obj.get("singleton") {
            let key = expr("singleton key", s.get("key"), &mut errors);
            let cancel = s.get("mode").and_then(Value::as_str) == Some("cancel");
            cfg.singleton = Some((cancel, key));
        }
        if let Some(t) = obj.get("timeouts") {
            cfg.start_timeout = dur("timeouts start", t.get("start"), &mut errors);
            cfg.finish_timeout = dur("timeouts finish", t.get("finish"), &mut errors);
        }
        if let Some(p) = obj.get("priority") {
            cfg.priority = expr("priority run", p.get("run"), &mut errors);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }
}

/// Why an event started no run of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// An earlier event with the same `idempotency` key started a run in the last 24 h.
    Idempotency,
    /// The function's `rateLimit` for the key was reached.
    RateLimit,
    /// A later event for the same `debounce` key replaced this one.
    Debounced,
    /// A `singleton` run for the key was running (`mode: skip`).
    Singleton,
}

/// An event that did not start a run of a function because of flow control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkipView {
    /// The event id (as returned by the Event API).
    pub event_id: String,
    /// The function's composite id.
    pub function_id: String,
    /// Why.
    pub reason: SkipReason,
    /// The evaluated key (empty when the setting has no key).
    pub key: String,
    /// When (executor clock).
    pub at: DateTime<Utc>,
}

/// A flow-control timer, spawned after the state lock is released.
pub(crate) struct FlowTimer {
    at: DateTime<Utc>,
    what: TimerKind,
}

enum TimerKind {
    Debounce { key: String, seq: u64 },
    Batch { key: String, seq: u64 },
    Throttle { key: String },
    StartTimeout { run_id: String },
    FinishTimeout { run_id: String },
}

struct Debouncing {
    function: Arc<FunctionDef>,
    event: Value,
    event_id: String,
    first_at: DateTime<Utc>,
    seq: u64,
}

struct Batching {
    function: Arc<FunctionDef>,
    events: Vec<(Value, String)>,
    seq: u64,
}

#[derive(Default)]
struct ThrottleQueue {
    /// GCRA theoretical arrival time.
    tat: Option<DateTime<Utc>>,
    /// Queued run ids by (score, sequence).
    queue: BTreeMap<(i64, u64), String>,
    /// The wake-up already scheduled, if any.
    armed: Option<DateTime<Utc>>,
}

/// Per-run flow-control facts.
struct RunFlow {
    /// `(concurrency key, limit)`.
    slots: Arc<[(String, u32)]>,
    /// Queue score: creation time (ms) minus the priority factor.
    score: i64,
    started: bool,
    finish_timeout: Option<Duration>,
}

struct Waiter {
    slots: Arc<[(String, u32)]>,
    tx: tokio::sync::oneshot::Sender<()>,
}

/// Flow-control state, kept in the executor's [`State`].
#[derive(Default)]
pub(crate) struct FlowState {
    rate: HashMap<String, Vec<DateTime<Utc>>>,
    debounce: HashMap<String, Debouncing>,
    batches: HashMap<String, Batching>,
    singleton: HashMap<String, String>,
    throttle: HashMap<String, ThrottleQueue>,
    runs: HashMap<String, RunFlow>,
    in_flight: HashMap<String, u32>,
    waiting: BTreeMap<(i64, u64), Waiter>,
    skipped: Vec<SkipView>,
    seq: u64,
}

impl FlowState {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Skip records, oldest first.
    pub fn skipped(&self) -> &[SkipView] {
        &self.skipped
    }

    fn fits(&self, slots: &[(String, u32)]) -> bool {
        slots
            .iter()
            .all(|(k, l)| self.in_flight.get(k).copied().unwrap_or(0) < *l)
    }

    fn take(&mut self, slots: &[(String, u32)]) {
        for (k, _) in slots {
            *self.in_flight.entry(k.clone()).or_default() += 1;
        }
    }

    fn release(&mut self, slots: &[(String, u32)]) {
        for (k, _) in slots {
            if let Some(n) = self.in_flight.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.in_flight.remove(k);
                }
            }
        }
        self.grant();
    }

    /// Hands free slots to waiters in queue order; a waiter that does not fit blocks later
    /// waiters on its keys (no overtaking on a key).
    fn grant(&mut self) {
        let mut blocked: HashSet<String> = HashSet::new();
        let order: Vec<(i64, u64)> = self.waiting.keys().copied().collect();
        for k in order {
            let Some(w) = self.waiting.get(&k) else {
                continue;
            };
            let slots = w.slots.clone();
            if slots.iter().any(|(key, _)| blocked.contains(key)) || !self.fits(&slots) {
                blocked.extend(slots.iter().map(|(key, _)| key.clone()));
                continue;
            }
            let Some(w) = self.waiting.remove(&k) else {
                continue;
            };
            self.take(&slots);
            if w.tx.send(()).is_err() {
                // The waiting task is gone: give the slots back.
                for (key, _) in slots.iter() {
                    if let Some(n) = self.in_flight.get_mut(key) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
    }
}

/// A concurrency slot held for one request; released on drop.
pub(crate) struct Slot {
    inner: Weak<Inner>,
    slots: Arc<[(String, u32)]>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.lock().flow.release(&self.slots);
        }
    }
}

/// The evaluated key of `expr` for `event` (`""` without an expression or when it fails).
fn eval_key(expr: Option<&Expr>, event: &Value) -> String {
    let Some(expr) = expr else {
        return String::new();
    };
    match expr.eval(&Vars::new().with_event(event)) {
        Ok(Value::String(s)) => s,
        Ok(Value::Null) => String::new(),
        Ok(v) => v.to_string(),
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

impl Inner {
    /// Routes one event to one matching function through flow control (steps 1–5 of the
    /// module docs). `invoked` runs skip the event-level steps.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &self,
        st: &mut State,
        f: Arc<FunctionDef>,
        ev: Value,
        event_id: &str,
        correlation: Option<String>,
        invoked: bool,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        if f.flow.is_empty() || invoked {
            if f.flow.is_empty() {
                self.start_run(st, f, ev, event_id, correlation, now, actions);
            } else {
                self.create_run(
                    st,
                    f,
                    vec![(ev, event_id.to_owned())],
                    correlation,
                    now,
                    actions,
                );
            }
            return;
        }
        let flow = f.flow.clone();
        // 1. Rate limit / idempotency.
        if let Some((limit, period, key, idem)) = &flow.rate_limit {
            let key = eval_key(key.as_ref(), &ev);
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
                skip(st, event_id, &f, reason, key, now);
                return;
            }
            starts.push(now);
        }
        // 2. Debounce.
        if let Some((period, key, timeout)) = &flow.debounce {
            let key = eval_key(key.as_ref(), &ev);
            let slot = format!("{}\0{key}", f.slug);
            let seq = st.flow.next_seq();
            let first_at = match st.flow.debounce.remove(&slot) {
                Some(prev) => {
                    skip(st, &prev.event_id, &f, SkipReason::Debounced, key, now);
                    prev.first_at
                }
                None => now,
            };
            let mut at = add(now, *period);
            if let Some(t) = timeout {
                at = at.min(add(first_at, *t));
            }
            st.flow.debounce.insert(
                slot.clone(),
                Debouncing {
                    function: f,
                    event: ev,
                    event_id: event_id.to_owned(),
                    first_at,
                    seq,
                },
            );
            actions.flow_timers.push(FlowTimer {
                at,
                what: TimerKind::Debounce { key: slot, seq },
            });
            return;
        }
        // 3. Batching.
        if let Some((max, timeout, key, cond)) = &flow.batch {
            let batched = cond
                .as_ref()
                .is_none_or(|c| c.eval_bool(&Vars::new().with_event(&ev)).unwrap_or(false));
            if batched {
                let key = eval_key(key.as_ref(), &ev);
                let slot = format!("{}\0{key}", f.slug);
                let b = match st.flow.batches.get_mut(&slot) {
                    Some(b) => b,
                    None => {
                        let seq = st.flow.next_seq();
                        actions.flow_timers.push(FlowTimer {
                            at: add(now, *timeout),
                            what: TimerKind::Batch {
                                key: slot.clone(),
                                seq,
                            },
                        });
                        st.flow.batches.entry(slot.clone()).or_insert(Batching {
                            function: f.clone(),
                            events: Vec::new(),
                            seq,
                        })
                    }
                };
                b.events.push((ev, event_id.to_owned()));
                if b.events.len() >= *max {
                    if let Some(b) = st.flow.batches.remove(&slot) {
                        self.schedule(st, b.function, b.events, now, actions);
                    }
                }
                return;
            }
        }
        self.schedule(st, f, vec![(ev, event_id.to_owned())], now, actions);
    }

    /// Singleton, then run creation.
    fn schedule(
        &self,
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
                    skip(st, &first_id, &f, SkipReason::Singleton, key, now);
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
        let id = self.create_run(st, f, events, None, now, actions);
        if let Some(slot) = singleton_slot {
            st.flow.singleton.insert(slot, id);
        }
    }

    /// Creates the run (with its batch), registers its concurrency slots, priority and
    /// timeouts, and holds its first request when a throttle applies.
    fn create_run(
        &self,
        st: &mut State,
        f: Arc<FunctionDef>,
        events: Vec<(Value, String)>,
        correlation: Option<String>,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) -> String {
        let (first, first_id) = events[0].clone();
        let id = self.start_run(
            st,
            f.clone(),
            first.clone(),
            &first_id,
            correlation,
            now,
            actions,
        );
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
        let slots: Vec<(String, u32)> = flow
            .concurrency
            .iter()
            .map(|c| {
                let key = eval_key(c.key.as_ref(), &first);
                let name = match (c.scope.as_str(), &c.key) {
                    ("fn", None) => format!("fn\0{}", f.slug),
                    ("fn", Some(_)) => format!("fn\0{}\0{key}", f.slug),
                    (scope, _) => format!("{scope}\0{key}"),
                };
                (name, c.limit)
            })
            .collect();
        st.flow.runs.insert(
            id.clone(),
            RunFlow {
                slots: slots.into(),
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
            let key = eval_key(key.as_ref(), &first);
            let slot = format!("{}\0{key}", f.slug);
            // Hold the run's first request.
            actions.jobs.retain(|(j, _)| j.run_id != id);
            let seq = st.flow.next_seq();
            st.flow
                .throttle
                .entry(slot.clone())
                .or_default()
                .queue
                .insert((score, seq), id.clone());
            self.drain_throttle(st, &slot, now, actions);
        }
        id
    }

    /// Starts the queued runs of a throttle key that GCRA allows now; arms a wake-up for the
    /// next one.
    fn drain_throttle(
        &self,
        st: &mut State,
        slot: &str,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
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
            if let Some(run) = st.runs.get_mut(&id) {
                if run.status != RunStatus::Running {
                    continue;
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
                    .push((Job::new(&id, wire::DISCOVERY_STEP_ID), None));
            }
        }
    }

    /// Spawns flow-control timers.
    pub(crate) fn spawn_flow_timers(self: &Arc<Self>, timers: Vec<FlowTimer>) {
        for t in timers {
            let weak = Arc::downgrade(self);
            let clock = self.settings.clock.clone();
            tokio::spawn(async move {
                clock.sleep_until(t.at).await;
                if let Some(inner) = weak.upgrade() {
                    inner.fire_flow_timer(t.what);
                }
            });
        }
    }

    fn fire_flow_timer(self: &Arc<Self>, what: TimerKind) {
        let now = self.now();
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            let st = &mut *st;
            match what {
                TimerKind::Debounce { key, seq } => {
                    if st.flow.debounce.get(&key).is_some_and(|d| d.seq == seq) {
                        if let Some(d) = st.flow.debounce.remove(&key) {
                            let events = vec![(d.event, d.event_id)];
                            self.schedule(st, d.function, events, now, &mut actions);
                        }
                    }
                }
                TimerKind::Batch { key, seq } => {
                    if st.flow.batches.get(&key).is_some_and(|b| b.seq == seq) {
                        if let Some(b) = st.flow.batches.remove(&key) {
                            self.schedule(st, b.function, b.events, now, &mut actions);
                        }
                    }
                }
                TimerKind::Throttle { key } => {
                    if let Some(q) = st.flow.throttle.get_mut(&key) {
                        q.armed = None;
                    }
                    self.drain_throttle(st, &key, now, &mut actions);
                }
                TimerKind::StartTimeout { run_id } => {
                    let waiting = st.flow.runs.get(&run_id).is_some_and(|r| !r.started);
                    if let Some(run) = st.runs.get_mut(&run_id).filter(|_| waiting) {
                        cancel_run(
                            run,
                            "function cancelled: not started within timeouts.start".into(),
                            "cancelled: timeouts.start passed before the run started".into(),
                            now,
                            &mut actions,
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
                            &mut actions,
                        );
                    }
                }
            }
        }
        self.perform(actions);
    }

    /// Waits for the run's concurrency slots (if any) before a request; marks the run started
    /// (arming its finish timeout). `None` when the executor is gone.
    pub(crate) async fn acquire_slot(weak: &Weak<Inner>, run_id: &str) -> Option<Option<Slot>> {
        let rx = {
            let inner = weak.upgrade()?;
            let now = inner.now();
            let mut guard = inner.lock();
            let st = &mut *guard;
            let Some(rf) = st.flow.runs.get_mut(run_id) else {
                return Some(None);
            };
            let mut finish = None;
            if !rf.started {
                rf.started = true;
                finish = rf.finish_timeout;
            }
            let slots = rf.slots.clone();
            let score = rf.score;
            let rx = if slots.is_empty() {
                None
            } else {
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
                Some((rx, slots))
            };
            drop(guard);
            if let Some(d) = finish {
                inner.spawn_flow_timers(vec![FlowTimer {
                    at: add(now, d),
                    what: TimerKind::FinishTimeout {
                        run_id: run_id.to_owned(),
                    },
                }]);
            }
            rx
        };
        match rx {
            None => Some(None),
            Some((rx, slots)) => {
                rx.await.ok()?;
                Some(Some(Slot {
                    inner: weak.clone(),
                    slots,
                }))
            }
        }
    }
}

fn skip(
    st: &mut State,
    event_id: &str,
    f: &FunctionDef,
    reason: SkipReason,
    key: String,
    now: DateTime<Utc>,
) {
    tracing::debug!(function = %f.slug, ?reason, "event skipped by flow control");
    st.flow.skipped.push(SkipView {
        event_id: event_id.to_owned(),
        function_id: f.slug.clone(),
        reason,
        key,
        at: now,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_setting() {
        let f = json!({
            "concurrency": [{"limit": 2}, {"limit": 1, "key": "event.data.u", "scope": "env"}],
            "rateLimit": {"limit": 3, "period": "1m"},
            "idempotency": "event.data.id",
            "throttle": {"limit": 0, "period": "10s", "burst": 2},
            "debounce": {"period": "5s", "timeout": "1m"},
            "batchEvents": {"maxSize": 10, "timeout": "5s", "if": "event.data.ok == true"},
            "singleton": {"mode": "cancel"},
            "timeouts": {"start": "1m", "finish": "1h"},
            "priority": {"run": "event.data.vip ? 120 : 0"},
        });
        let cfg = FlowConfig::parse(f.as_object().unwrap()).unwrap();
        assert_eq!(cfg.concurrency.len(), 2);
        assert_eq!(cfg.concurrency[1].scope, "env");
        let (limit, period, _, idem) = cfg.rate_limit.clone().unwrap();
        assert_eq!(
            (limit, period, idem),
            (1, Duration::from_secs(86_400), true)
        );
        let (limit, period, burst, _) = cfg.throttle.clone().unwrap();
        assert_eq!((limit, period, burst), (1, Duration::from_secs(10), 2));
        assert_eq!(cfg.batch.as_ref().unwrap().0, 10);
        assert!(cfg.singleton.as_ref().unwrap().0);
        assert_eq!(cfg.finish_timeout, Some(Duration::from_secs(3600)));
        assert!(!cfg.is_empty());
        assert!(FlowConfig::parse(&Map::new()).unwrap().is_empty());
        let n = json!({"concurrency": 4});
        assert_eq!(
            FlowConfig::parse(n.as_object().unwrap())
                .unwrap()
                .concurrency[0]
                .limit,
            4
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let f = json!({
            "concurrency": [{"limit": 1, "scope": "env"}],
            "throttle": {"limit": 1, "period": "soon"},
            "rateLimit": {"limit": 0, "period": "1m"},
        });
        let errs = FlowConfig::parse(f.as_object().unwrap()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

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
            ""
        );
        assert_eq!(eval_key(None, &e), "");
    }
}
