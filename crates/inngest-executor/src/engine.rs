//! The engine: the executor's entry points that change state, and the loop that runs the
//! follow-up work of every change.
//!
//! Every mutation follows one pattern: take the lock, change the [`State`](crate::shared::State)
//! through one of the modules below (which only collect [`Actions`], never spawn), release the
//! lock, then [`Inner::perform`] the actions: save the state directory, start flow-control
//! timers, spawn the requests ([`Job`]s) and the sleep/wait/invoke timers, wake the waiters, and
//! route the internal events the change emitted. Each spawned task comes back here when it
//! fires, so this module is the only one that spawns tasks for runs (crons are spawned by
//! [`crate::crons`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::flow_control;
use crate::flow_state::{FlowTimer, TimerKind};
use crate::intake;
use crate::lifecycle::cancel_run;
use crate::ops;
use crate::response::{OpAction, Outcome};
use crate::shared::{new_ulid, Actions, Inner, Job, Timer};
use crate::state::RunStatus;
use crate::ExecutorError;

impl Inner {
    /// Validates, stores and routes events from the outside world; returns their ids.
    pub(crate) fn ingest(
        self: &Arc<Self>,
        events: Vec<Value>,
        seed: Option<&str>,
    ) -> Result<Vec<String>, ExecutorError> {
        let now = self.now();
        let normalized = intake::normalize_external(events, now)?;
        let seed = seed.and_then(intake::parse_seed);
        let mut actions = Actions::default();
        let ids = {
            let mut st = self.lock();
            normalized
                .into_iter()
                .enumerate()
                .map(|(i, ev)| {
                    let id = intake::external_id(seed, i, now);
                    intake::accept(&mut st, ev, id, now, &mut actions)
                })
                .collect()
        };
        self.perform(actions);
        Ok(ids)
    }

    /// Accepts an `inngest/function.invoked` event built by the REST API; returns its id.
    pub(crate) fn ingest_invoke(self: &Arc<Self>, ev: Value) -> Result<String, ExecutorError> {
        let now = self.now();
        let ev = intake::normalize_event(ev, now, false).map_err(ExecutorError::InvalidEvent)?;
        let mut actions = Actions::default();
        let id = {
            let mut st = self.lock();
            intake::accept(&mut st, ev, new_ulid(now), now, &mut actions)
        };
        self.perform(actions);
        Ok(id)
    }

    /// Delivers a signal to the run waiting on it; that run's id, or `None` when nobody waits.
    pub(crate) fn send_signal(self: &Arc<Self>, signal: &str, data: Value) -> Option<String> {
        let now = self.now();
        let mut actions = Actions::default();
        let run = crate::signals::deliver(&mut self.lock(), signal, data, now, &mut actions);
        self.perform(actions);
        run
    }

    /// Stores and routes events the executor emits itself (finished, failed, invoked, …).
    fn ingest_internal(self: &Arc<Self>, events: Vec<Value>) {
        let now = self.now();
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            for e in events {
                match intake::normalize_event(e, now, false) {
                    Ok(ev) => {
                        let id = new_ulid(now);
                        intake::accept(&mut st, ev, id, now, &mut actions);
                    }
                    Err(m) => tracing::warn!(error = %m, "dropping an invalid internal event"),
                }
            }
        }
        self.perform(actions);
    }

    /// Cancels a running run. Returns whether it was running.
    pub(crate) fn cancel(self: &Arc<Self>, run_id: &str, reason: &str) -> bool {
        let now = self.now();
        let mut actions = Actions::default();
        let cancelled = {
            let mut st = self.lock();
            match st.runs.get_mut(run_id) {
                Some(run) if run.status == RunStatus::Running => {
                    cancel_run(
                        run,
                        format!("function cancelled: {reason}"),
                        format!("cancelled: {reason}"),
                        now,
                        &mut actions,
                    );
                    true
                }
                _ => false,
            }
        };
        self.perform(actions);
        cancelled
    }

    /// Runs the follow-up work of a mutation.
    pub(crate) fn perform(self: &Arc<Self>, actions: Actions) {
        let Actions {
            jobs,
            timers,
            events,
            flow_timers,
            // Checked right after the answer that started them (`signals::claim`).
            signal_waits: _,
        } = actions;
        // The state the follow-up work starts from is on disk before any of it runs.
        self.save();
        self.spawn_flow_timers(flow_timers);
        for (job, at) in jobs {
            self.spawn_job(job, at);
        }
        for t in timers {
            self.spawn_timer(t);
        }
        self.signal();
        if !events.is_empty() {
            self.ingest_internal(events);
        }
    }

    /// Sends a request at `at` (now when `None`), once its concurrency slots are free.
    fn spawn_job(self: &Arc<Self>, job: Job, at: Option<DateTime<Utc>>) {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        let due = at.filter(|t| *t > clock.now());
        tokio::spawn(async move {
            if let Some(t) = due {
                clock.sleep_until(t).await;
            }
            // Concurrency: wait for a slot (released when the exchange is over).
            let reservation = {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let (reservation, finish) = flow_control::reserve_slot(&inner, &job.run_id);
                if let Some(t) = finish {
                    inner.spawn_flow_timers(vec![t]);
                }
                reservation
            };
            let Some(slot) = reservation.granted().await else {
                return;
            };
            if let Some(inner) = weak.upgrade() {
                inner.run_job(job).await;
            }
            drop(slot);
        });
    }

    /// One request and the application of its answer.
    async fn run_job(self: Arc<Self>, job: Job) {
        let Some((job, mut outcome, mut now)) = self.exchange(job).await else {
            return;
        };
        // The server makes `Gateway` / `AIGateway` calls while it handles the answer.
        if let Outcome::Ops(response) = &mut outcome {
            let calls = response.ops.iter_mut().filter_map(|p| match &mut p.action {
                OpAction::Gateway(call) => Some(self.perform_gateway(call)),
                _ => None,
            });
            let calls: Vec<_> = calls.collect();
            if !calls.is_empty() {
                futures_util::future::join_all(calls).await;
                now = self.now();
            }
        }
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            if let Some(run) = st.runs.get_mut(&job.run_id) {
                self.apply(run, &job, outcome, now, &mut actions);
            }
            crate::signals::claim(&mut st, now, &mut actions);
        }
        self.perform(actions);
    }

    fn spawn_timer(self: &Arc<Self>, t: Timer) {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        tokio::spawn(async move {
            clock.sleep_until(t.at).await;
            if let Some(inner) = weak.upgrade() {
                inner.fire_timer(&t);
            }
        });
    }

    fn fire_timer(self: &Arc<Self>, t: &Timer) {
        let now = self.now();
        let mut actions = Actions::default();
        let fired = ops::on_timer(&mut self.lock(), t, now, &mut actions);
        if fired {
            self.perform(actions);
        }
    }

    /// Spawns flow-control timers.
    fn spawn_flow_timers(self: &Arc<Self>, timers: Vec<FlowTimer>) {
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
        flow_control::on_timer(&mut self.lock(), what, now, &mut actions);
        self.perform(actions);
    }
}
