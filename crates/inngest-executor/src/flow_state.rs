//! Flow-control bookkeeping kept in the executor's [`State`](crate::shared::State): rate-limit
//! windows, debounce and batch buffers, singleton keys, throttle queues, concurrency counters
//! and their waiters, and the skip records. The rules that read and change it are in
//! [`crate::flow_control`]; the settings they apply are in [`crate::flow`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::flow::{SkipReason, SkipView};
use crate::persist::{FlowRecord, HeldRecord};
use crate::registry::FunctionDef;

/// A flow-control timer, spawned after the state lock is released.
pub(crate) struct FlowTimer {
    pub(crate) at: DateTime<Utc>,
    pub(crate) what: TimerKind,
}

/// What a [`FlowTimer`] does when it fires (`seq` tells a live buffer from a replaced one).
pub(crate) enum TimerKind {
    /// The debounce period of a key ended: its last event starts a run.
    Debounce { key: String, seq: u64 },
    /// A batch's timeout passed: the batch starts a run.
    Batch { key: String, seq: u64 },
    /// The throttle of a key may start its next queued run.
    Throttle { key: String },
    /// `timeouts.start` of a run passed.
    StartTimeout { run_id: String },
    /// `timeouts.finish` of a run passed.
    FinishTimeout { run_id: String },
}

/// The event a debounce key holds.
pub(crate) struct Debouncing {
    pub(crate) function: Arc<FunctionDef>,
    pub(crate) event: Value,
    pub(crate) event_id: String,
    pub(crate) first_at: DateTime<Utc>,
    /// When the run starts unless another event replaces this one.
    pub(crate) deadline: DateTime<Utc>,
    pub(crate) seq: u64,
}

/// The events a batch key collected.
pub(crate) struct Batching {
    pub(crate) function: Arc<FunctionDef>,
    pub(crate) events: Vec<(Value, String)>,
    /// When the batch started.
    pub(crate) first_at: DateTime<Utc>,
    /// When the batch starts its run unless it fills up first.
    pub(crate) deadline: DateTime<Utc>,
    pub(crate) seq: u64,
}

/// The runs a throttle key holds, and its GCRA state.
#[derive(Default)]
pub(crate) struct ThrottleQueue {
    /// GCRA theoretical arrival time.
    pub(crate) tat: Option<DateTime<Utc>>,
    /// Queued run ids by (score, sequence).
    pub(crate) queue: BTreeMap<(i64, u64), String>,
    /// The wake-up already scheduled, if any.
    pub(crate) armed: Option<DateTime<Utc>>,
}

impl ThrottleQueue {
    /// The queue of a key after a restart: its GCRA state, nobody queued yet.
    pub(crate) fn resumed(tat: DateTime<Utc>) -> ThrottleQueue {
        ThrottleQueue {
            tat: Some(tat),
            queue: BTreeMap::new(),
            armed: None,
        }
    }
}

/// Per-run flow-control facts.
pub(crate) struct RunFlow {
    /// `(concurrency key, limit)`.
    pub(crate) slots: Arc<[(String, u32)]>,
    /// Queue score: creation time (ms) minus the priority factor.
    pub(crate) score: i64,
    pub(crate) started: bool,
    pub(crate) finish_timeout: Option<Duration>,
}

/// A request waiting for concurrency slots; granted through `tx`.
pub(crate) struct Waiter {
    pub(crate) slots: Arc<[(String, u32)]>,
    pub(crate) tx: tokio::sync::oneshot::Sender<()>,
}

/// Flow-control state, kept in the executor's [`State`](crate::shared::State). Keys are
/// `<function>\0<evaluated key>` (concurrency: `<scope>\0…`).
#[derive(Default)]
pub(crate) struct FlowState {
    /// Start times in the current rate-limit window, per key.
    pub(crate) rate: HashMap<String, Vec<DateTime<Utc>>>,
    pub(crate) debounce: HashMap<String, Debouncing>,
    pub(crate) batches: HashMap<String, Batching>,
    /// The running singleton run of each key.
    pub(crate) singleton: HashMap<String, String>,
    pub(crate) throttle: HashMap<String, ThrottleQueue>,
    /// Per-run facts, for runs of functions with flow control.
    pub(crate) runs: HashMap<String, RunFlow>,
    /// Requests in flight per concurrency key.
    in_flight: HashMap<String, u32>,
    /// Requests waiting for slots, by (score, sequence).
    pub(crate) waiting: BTreeMap<(i64, u64), Waiter>,
    skipped: Vec<SkipView>,
    seq: u64,
}

impl FlowState {
    /// What of this state is kept across a restart (`persist`).
    pub(crate) fn record(&self) -> FlowRecord {
        let held = |function: &FunctionDef, events, first_at, deadline| HeldRecord {
            function: function.slug.clone(),
            events,
            first_at,
            deadline,
        };
        FlowRecord {
            rate: self
                .rate
                .iter()
                .filter(|(_, starts)| !starts.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            debounce: self
                .debounce
                .iter()
                .map(|(k, d)| {
                    let events = vec![(d.event.clone(), d.event_id.clone())];
                    (k.clone(), held(&d.function, events, d.first_at, d.deadline))
                })
                .collect(),
            batches: self
                .batches
                .iter()
                .map(|(k, b)| {
                    (
                        k.clone(),
                        held(&b.function, b.events.clone(), b.first_at, b.deadline),
                    )
                })
                .collect(),
            singleton: self
                .singleton
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            throttle: self
                .throttle
                .iter()
                .filter_map(|(k, q)| Some((k.clone(), q.tat?)))
                .collect(),
        }
    }

    /// The next sequence number (debounce and batch generations, queue ties).
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Skip records, oldest first.
    pub(crate) fn skipped(&self) -> &[SkipView] {
        &self.skipped
    }

    /// Keeps the newest `keep` skip records once an eighth more are there (with a state
    /// directory, skips are kept for as many events as stay in memory).
    pub(crate) fn trim_skipped(&mut self, keep: usize) {
        if self.skipped.len() > keep + keep / 8 {
            let excess = self.skipped.len() - keep;
            self.skipped.drain(..excess);
        }
    }

    /// Whether every slot has room.
    pub(crate) fn fits(&self, slots: &[(String, u32)]) -> bool {
        slots
            .iter()
            .all(|(k, l)| self.in_flight.get(k).copied().unwrap_or(0) < *l)
    }

    /// Takes one unit of every slot.
    pub(crate) fn take(&mut self, slots: &[(String, u32)]) {
        for (k, _) in slots {
            *self.in_flight.entry(k.clone()).or_default() += 1;
        }
    }

    /// Gives the slots back and wakes the waiters that fit now.
    pub(crate) fn release(&mut self, slots: &[(String, u32)]) {
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
    pub(crate) fn grant(&mut self) {
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

    /// Records that an event started no run of `f`.
    pub(crate) fn skip(
        &mut self,
        event_id: &str,
        f: &FunctionDef,
        reason: SkipReason,
        key: String,
        now: DateTime<Utc>,
    ) {
        tracing::debug!(function = %f.slug, ?reason, "event skipped by flow control");
        self.skipped.push(SkipView {
            event_id: event_id.to_owned(),
            function_id: f.slug.clone(),
            reason,
            key,
            at: now,
        });
    }
}
