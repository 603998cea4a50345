//! The run loop: events in, runs out.
//!
//! State lives behind one mutex that is never held across an `.await`. Every mutation collects
//! its follow-up work (requests to send, timers to start, internal events to emit) in
//! [`Actions`], which run after the lock is released. One request to the app is one *job*
//! (`stepId=step` for discovery, `stepId=<hash>` for a planned step); a retry resends the same job
//! with `attempt + 1` and the next generation id, like the real executor.
//!
//! Discovery requests are serialised per run (at most one queued, in flight or waiting for its
//! retry): a second request for discovery while one is busy is remembered and sent once the
//! first is answered, so a step is never executed inline twice by two concurrent discoveries.
//! Parallel groups follow request version 2: a 206 with more than one op sets
//! `disable_immediate_execution`, each planned step gets its own targeted request, and one
//! discovery follows when the last planned step of the group completes, with the flag reset.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, USER_AGENT};
use serde_json::{json, Map, Value};

use super::clock::Clock;
use super::cron::CronSchedule;
use super::expr::Vars;
use super::persist::{Loaded, PendingRecord, RunRecord, Store};
use super::registry::{self, AppDef, FunctionDef};
use super::response::{
    chrono_duration, classify, error_text, parse_ops, OpAction, Outcome, ParsedOp, RawResponse,
};
use super::state::{
    HistoryKind, Pending, PendingKind, Run, RunStatus, RunView, StepStatus, StoredEvent,
};
use super::{ExecutorError, SyncError};
use inngest_protocol::signature::{self, SigningKey};
use inngest_protocol::wire::{self, headers as h, CallCtx, ExecRequest, Op, OpCode, Stack};

/// Emitted when any run ends.
pub(crate) const EVENT_FINISHED: &str = "inngest/function.finished";
/// Emitted when a run fails.
pub(crate) const EVENT_FAILED: &str = "inngest/function.failed";
/// Emitted when a run is cancelled.
pub(crate) const EVENT_CANCELLED: &str = "inngest/function.cancelled";
/// The event an invoked run receives.
pub(crate) const EVENT_INVOKED: &str = "inngest/function.invoked";
/// The event a cron run receives.
pub(crate) const EVENT_CRON: &str = "inngest/scheduled.timer";

const ACCOUNT_ID: &str = "00000000-0000-4000-a000-000000000000";
/// Largest response body read from an app.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How long to wait before retrying a failed attempt.
#[derive(Clone)]
pub(crate) enum Backoff {
    Fixed(Duration),
    Exponential { base: Duration, max: Duration },
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl Backoff {
    /// Delay after the failure of `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        match self {
            Backoff::Fixed(d) => *d,
            Backoff::Exponential { base, max } => base
                .checked_mul(1u32 << attempt.min(20))
                .unwrap_or(*max)
                .min(*max),
            Backoff::Custom(f) => f(attempt),
        }
    }
}

impl std::fmt::Debug for Backoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backoff::Fixed(d) => write!(f, "Fixed({d:?})"),
            Backoff::Exponential { base, max } => write!(f, "Exponential({base:?}, max {max:?})"),
            Backoff::Custom(_) => f.write_str("Custom"),
        }
    }
}

type PlainClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

/// Executor settings.
pub(crate) struct Settings {
    pub clock: Arc<dyn Clock>,
    pub signing_key: Option<SigningKey>,
    pub event_key: Option<String>,
    pub backoff: Backoff,
    pub max_inline_state: usize,
    pub request_timeout: Duration,
}

/// Shared executor state.
pub(crate) struct Inner {
    pub settings: Settings,
    /// For `https` apps (adds `Accept: */*` to every request).
    pub http: reqwest::Client,
    /// For `http` apps: sends exactly the headers given (plus `Host` and `Content-Length`).
    plain: PlainClient,
    state: Mutex<State>,
    changes: tokio::sync::watch::Sender<u64>,
    seq: AtomicU64,
    /// The state directory, when one is configured.
    store: Option<Store>,
}

/// An app and its cron tasks.
pub(crate) struct AppEntry {
    pub def: AppDef,
    crons: Vec<tokio::task::AbortHandle>,
}

/// One `/fn/register` call (or in-band sync) as seen by the executor.
#[derive(Debug, Clone)]
pub(crate) struct SyncRecord {
    pub app: Option<String>,
    pub url: String,
    pub error: Option<String>,
}

/// Everything the executor keeps.
#[derive(Default)]
pub(crate) struct State {
    pub apps: BTreeMap<String, AppEntry>,
    pub functions: BTreeMap<String, Arc<FunctionDef>>,
    pub events: Vec<StoredEvent>,
    pub event_index: HashMap<String, usize>,
    pub runs: HashMap<String, Run>,
    pub run_order: Vec<String>,
    pub runs_by_event: HashMap<String, Vec<String>>,
    /// Step mocks: function slug → hashed step id → (user step id, memo).
    pub mocks: HashMap<String, BTreeMap<String, (String, Value)>>,
    pub syncs: Vec<SyncRecord>,
    /// Flow-control state (see [`super::flow`]).
    pub flow: super::flow::FlowState,
    /// Runs read from the state directory whose function has not been registered again yet.
    pub restored: Vec<RunRecord>,
}

impl State {
    /// Internal id of an event given either its internal id or the id it was sent with.
    pub fn resolve_event_id(&self, id: &str) -> Option<String> {
        self.event_index
            .get(id)
            .map(|&i| self.events[i].internal_id.clone())
    }

    /// Runs triggered by an event, in creation order.
    pub fn runs_of_event(&self, id: &str) -> Vec<&Run> {
        let internal = self.resolve_event_id(id).unwrap_or_else(|| id.to_owned());
        self.runs_by_event
            .get(&internal)
            .map(|ids| ids.iter().filter_map(|r| self.runs.get(r)).collect())
            .unwrap_or_default()
    }

    fn function(&self, id: &str) -> Option<Arc<FunctionDef>> {
        self.functions
            .get(id)
            .or_else(|| self.functions.values().find(|f| f.uuid == id))
            .cloned()
    }
}

/// Follow-up work collected under the lock.
#[derive(Default)]
pub(crate) struct Actions {
    pub(crate) jobs: Vec<(Job, Option<DateTime<Utc>>)>,
    timers: Vec<Timer>,
    events: Vec<Value>,
    pub(crate) flow_timers: Vec<super::flow::FlowTimer>,
}

struct Timer {
    run_id: String,
    step: String,
    seq: u64,
    at: DateTime<Utc>,
}

/// One request to the app (and its retries).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) run_id: String,
    step_id: String,
    attempt: u32,
    job_id: String,
    generation: u64,
    sent_at: Option<DateTime<Utc>>,
}

impl Job {
    pub(crate) fn new(run_id: &str, step_id: &str) -> Job {
        Job {
            run_id: run_id.to_owned(),
            step_id: step_id.to_owned(),
            attempt: 0,
            job_id: new_job_id(),
            generation: 1,
            sent_at: None,
        }
    }

    /// A job re-created after an executor restart, as attempt `attempt`.
    fn resumed(run_id: &str, step_id: &str, attempt: u32) -> Job {
        Job {
            attempt,
            generation: u64::from(attempt) + 1,
            ..Job::new(run_id, step_id)
        }
    }

    fn retry(&self) -> Job {
        Job {
            attempt: self.attempt + 1,
            generation: self.generation + 1,
            sent_at: None,
            ..self.clone()
        }
    }

    fn is_discovery(&self) -> bool {
        self.step_id == wire::DISCOVERY_STEP_ID
    }
}

/// A request ready to send.
struct Prepared {
    url: url::Url,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Inner {
    pub fn new(settings: Settings, http: reqwest::Client, store: Option<(Store, Loaded)>) -> Inner {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        let plain =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        let mut state = State::default();
        let store = store.map(|(store, loaded)| {
            for ev in loaded.events {
                let idx = state.events.len();
                if let Some(uid) = ev.event.get("id").and_then(Value::as_str) {
                    state.event_index.insert(uid.to_owned(), idx);
                }
                state.event_index.insert(ev.internal_id.clone(), idx);
                state.events.push(ev);
            }
            state.restored = loaded.runs;
            store
        });
        Inner {
            settings,
            http,
            plain,
            state: Mutex::new(state),
            changes: tokio::sync::watch::channel(0).0,
            seq: AtomicU64::new(1),
            store,
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.settings.clock.now()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves what changed (with a state directory) and wakes the waiters.
    fn notify(&self) {
        self.save();
        self.signal();
    }

    /// Wakes the waiters of [`Inner::wait_until`].
    fn signal(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Writes the snapshots of runs that changed and the new events to the state directory.
    fn save(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let pass = {
            let st = self.lock();
            store.collect(&st.runs, &st.events)
        };
        pass.write();
    }

    /// Waits (real time) until `check` returns something.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let mut rx = self.changes.subscribe();
        let fut = async {
            loop {
                if let Some(t) = check(&self.lock()) {
                    return t;
                }
                if rx.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, fut).await.ok()
    }

    // ---------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------

    /// Validates, stores and routes events from the outside world; returns their ids.
    pub fn ingest(
        self: &Arc<Self>,
        events: Vec<Value>,
        seed: Option<&str>,
    ) -> Result<Vec<String>, ExecutorError> {
        let now = self.now();
        let many = events.len() > 1;
        let mut normalized = Vec::with_capacity(events.len());
        for (i, e) in events.into_iter().enumerate() {
            let ev = normalize_event(e, now, true).map_err(|m| {
                ExecutorError::InvalidEvent(if many { format!("event #{i}: {m}") } else { m })
            })?;
            normalized.push(ev);
        }
        let seed = seed.and_then(parse_seed);
        let mut actions = Actions::default();
        let ids = {
            let mut st = self.lock();
            normalized
                .into_iter()
                .enumerate()
                .map(|(i, ev)| {
                    let id = match seed {
                        Some((ms, entropy)) => {
                            // The real server adds the event's index + 1 to the entropy (the
                            // captured seed `1795843709734,zohWT3KnyYgFjg==` gave
                            // `01M8GA0PS6ST45CKVJMZ4RG1CF` for the first event).
                            ulid::Ulid::from_parts(ms, entropy.wrapping_add(i as u128 + 1))
                                .to_string()
                        }
                        None => new_ulid(now),
                    };
                    self.accept(&mut st, ev, id, now, &mut actions)
                })
                .collect()
        };
        self.perform(actions);
        Ok(ids)
    }

    /// Accepts an `inngest/function.invoked` event built by the REST API; returns its id.
    pub fn ingest_invoke(self: &Arc<Self>, ev: Value) -> Result<String, ExecutorError> {
        let now = self.now();
        let ev = normalize_event(ev, now, false).map_err(ExecutorError::InvalidEvent)?;
        let mut actions = Actions::default();
        let id = {
            let mut st = self.lock();
            self.accept(&mut st, ev, new_ulid(now), now, &mut actions)
        };
        self.perform(actions);
        Ok(id)
    }

    /// Stores and routes events the executor emits itself (finished, failed, invoked, …).
    fn ingest_internal(self: &Arc<Self>, events: Vec<Value>) {
        let now = self.now();
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            for e in events {
                match normalize_event(e, now, false) {
                    Ok(ev) => {
                        let id = new_ulid(now);
                        self.accept(&mut st, ev, id, now, &mut actions);
                    }
                    Err(m) => tracing::warn!(error = %m, "dropping an invalid internal event"),
                }
            }
        }
        self.perform(actions);
    }

    /// Stores one event (unless its id was seen before) and routes it. Returns its id.
    fn accept(
        &self,
        st: &mut State,
        mut ev: Value,
        internal_id: String,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) -> String {
        if let Some(uid) = ev.get("id").and_then(Value::as_str) {
            if let Some(&i) = st.event_index.get(uid) {
                tracing::debug!("duplicate event id: not triggering again");
                return st.events[i].internal_id.clone();
            }
        }
        if let Some(&i) = st.event_index.get(&internal_id) {
            return st.events[i].internal_id.clone();
        }
        if ev.get("id").and_then(Value::as_str).is_none() {
            ev["id"] = Value::String(internal_id.clone());
        }
        let idx = st.events.len();
        if let Some(uid) = ev.get("id").and_then(Value::as_str) {
            st.event_index.insert(uid.to_owned(), idx);
        }
        st.event_index.insert(internal_id.clone(), idx);
        st.events.push(StoredEvent {
            internal_id: internal_id.clone(),
            event: ev,
            received_at: now,
        });
        self.route(st, idx, now, actions);
        internal_id
    }

    /// Applies an event: resumes waits and invokes, cancels runs, starts triggered runs.
    fn route(&self, st: &mut State, idx: usize, now: DateTime<Utc>, actions: &mut Actions) {
        let ev = st.events[idx].event.clone();
        let internal_id = st.events[idx].internal_id.clone();
        let name = ev
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        tracing::debug!(event = %name, id = %internal_id, "event received");

        // 1. Waits for this event.
        let mut resumes = Vec::new();
        for run_id in &st.run_order {
            let Some(run) = st.runs.get(run_id) else {
                continue;
            };
            if run.status != RunStatus::Running {
                continue;
            }
            for (step, p) in &run.pending {
                if let PendingKind::Wait { event, expr } = &p.kind {
                    if *event != name {
                        continue;
                    }
                    let ok = match expr {
                        None => true,
                        Some(expr) => {
                            let vars = Vars::new().with_event(&run.event).with_async(&ev);
                            expr.eval_bool(&vars).unwrap_or_else(|_| {
                                tracing::debug!(expression = %expr, "wait expression could not be evaluated; no match");
                                false
                            })
                        }
                    };
                    if ok {
                        resumes.push((run_id.clone(), step.clone()));
                    }
                }
            }
        }
        for (run_id, step) in resumes {
            if let Some(run) = st.runs.get_mut(&run_id) {
                let msg = format!("event `{name}` ({internal_id}) matched the wait");
                resolve_pending(
                    run,
                    &step,
                    ev.clone(),
                    StepStatus::Completed,
                    HistoryKind::Resumed,
                    msg,
                    now,
                    actions,
                );
            }
        }

        // 2. Results of invoked functions.
        if name == EVENT_FINISHED {
            let data = ev.get("data").cloned().unwrap_or(Value::Null);
            if let Some(cid) = data.get("correlation_id").and_then(Value::as_str) {
                if let Some((run_id, step)) = cid.split_once('.') {
                    if let Some(run) = st.runs.get_mut(run_id) {
                        let waiting = run.status == RunStatus::Running
                            && matches!(run.pending.get(step), Some(Pending { kind: PendingKind::Invoke { correlation_id }, .. }) if correlation_id == cid);
                        if waiting {
                            let (memo, status) = match data.get("error") {
                                Some(err) if !err.is_null() => {
                                    (json!({ "error": err }), StepStatus::Failed)
                                }
                                _ => (
                                    json!({ "data": data.get("result").cloned().unwrap_or(Value::Null) }),
                                    StepStatus::Completed,
                                ),
                            };
                            let step = step.to_owned();
                            resolve_pending(
                                run,
                                &step,
                                memo,
                                status,
                                HistoryKind::Resumed,
                                "the invoked function finished",
                                now,
                                actions,
                            );
                        }
                    }
                }
            }
        }

        // 3. Cancellations.
        let mut cancels = Vec::new();
        for run_id in &st.run_order {
            let Some(run) = st.runs.get(run_id) else {
                continue;
            };
            if run.status != RunStatus::Running {
                continue;
            }
            for rule in run.cancel_rules() {
                if rule.event != name {
                    continue;
                }
                if let Some(t) = &rule.timeout {
                    match inngest_protocol::timestr::parse_time_or_duration(t, run.started_at) {
                        Ok(deadline) if now > deadline => continue,
                        Err(_) => continue,
                        _ => {}
                    }
                }
                let ok = match &rule.expr {
                    None => true,
                    Some(expr) => expr
                        .eval_bool(&Vars::new().with_event(&run.event).with_async(&ev))
                        .unwrap_or(false),
                };
                if ok {
                    cancels.push(run_id.clone());
                    break;
                }
            }
        }
        for run_id in cancels {
            if let Some(run) = st.runs.get_mut(&run_id) {
                cancel_run(
                    run,
                    format!("function cancelled by event `{name}`"),
                    format!("cancelled by event `{name}` ({internal_id})"),
                    now,
                    actions,
                );
            }
        }

        // 4. New runs.
        if name == EVENT_INVOKED {
            let meta = ev.pointer("/data/_inngest").cloned().unwrap_or(Value::Null);
            let fn_id = meta
                .get("fn_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let correlation = meta
                .get("correlation_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match st.function(&fn_id) {
                Some(f) => {
                    self.admit(st, f, ev, &internal_id, correlation, true, now, actions);
                }
                None => {
                    tracing::warn!(function = %fn_id, "invoke of an unknown function");
                    let mut data = json!({
                        "function_id": fn_id,
                        "error": {"name": "Error", "message": format!("could not find function with ID: {fn_id}")},
                        "event": ev,
                        "events": [ev],
                        "_inngest": {"status": "Failed"},
                    });
                    if let Some(cid) = correlation {
                        data["correlation_id"] = Value::String(cid);
                    }
                    actions.events.push(json!({
                        "name": EVENT_FINISHED,
                        "data": data,
                        "ts": now.timestamp_millis(),
                    }));
                }
            }
        } else {
            let matching: Vec<Arc<FunctionDef>> = st
                .functions
                .values()
                .filter(|f| f.triggers.iter().any(|t| t.matches(&name, &ev)))
                .cloned()
                .collect();
            for f in matching {
                self.admit(st, f, ev.clone(), &internal_id, None, false, now, actions);
            }
        }
    }

    /// Creates a run and queues its first discovery request.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_run(
        &self,
        st: &mut State,
        function: Arc<FunctionDef>,
        event: Value,
        event_id: &str,
        correlation_id: Option<String>,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) -> String {
        let id = new_ulid(now);
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
            event_id: event_id.to_owned(),
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
            .entry(event_id.to_owned())
            .or_default()
            .push(id.clone());
        id
    }

    /// Runs the follow-up work of a mutation.
    pub(crate) fn perform(self: &Arc<Self>, actions: Actions) {
        let Actions {
            jobs,
            timers,
            events,
            flow_timers,
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

    fn spawn_job(self: &Arc<Self>, job: Job, at: Option<DateTime<Utc>>) {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        let due = at.filter(|t| *t > clock.now());
        tokio::spawn(async move {
            if let Some(t) = due {
                clock.sleep_until(t).await;
            }
            // Concurrency: wait for a slot (released when the exchange is over).
            let Some(slot) = Inner::acquire_slot(&weak, &job.run_id).await else {
                return;
            };
            if let Some(inner) = weak.upgrade() {
                inner.run_job(job).await;
            }
            drop(slot);
        });
    }

    fn spawn_timer(self: &Arc<Self>, t: Timer) {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        tokio::spawn(async move {
            clock.sleep_until(t.at).await;
            if let Some(inner) = weak.upgrade() {
                inner.fire_timer(t);
            }
        });
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    // ---------------------------------------------------------------------------------------
    // Requests
    // ---------------------------------------------------------------------------------------

    async fn run_job(self: Arc<Self>, mut job: Job) {
        let now = self.now();
        let prepared = {
            let mut st = self.lock();
            // A re-synced app may have moved (e.g. restarted on another port): call the current
            // registration of the function when there is one.
            let current = st
                .runs
                .get(&job.run_id)
                .and_then(|r| st.functions.get(&r.function.slug))
                .cloned();
            let Some(run) = st.runs.get_mut(&job.run_id) else {
                return;
            };
            if run.status != RunStatus::Running {
                return;
            }
            if let Some(f) = current {
                if !Arc::ptr_eq(&f, &run.function) {
                    run.function = f;
                }
            }
            job.sent_at = Some(now);
            self.prepare(run, &job, now)
        };
        self.notify();
        let result = self.send(prepared).await;
        let now = self.now();
        let outcome = match result {
            Ok(raw) => classify(raw, now),
            Err(message) => Outcome::Failure {
                error: json!({"name": "Error", "message": message}),
                retriable: true,
                retry_after: None,
                kind: HistoryKind::RequestFailed,
                reason: message,
            },
        };
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            if let Some(run) = st.runs.get_mut(&job.run_id) {
                self.apply(run, &job, outcome, now, &mut actions);
            }
        }
        self.perform(actions);
    }

    fn prepare(&self, run: &mut Run, job: &Job, now: DateTime<Utc>) -> Prepared {
        run.requests += 1;
        if !job.is_discovery() {
            if let Some(s) = run.find_step(&job.step_id) {
                if s.status == StepStatus::Planned {
                    s.status = StepStatus::Running;
                    s.started_at = now;
                }
            }
        }
        let request_id = new_ulid(now);
        let ctx = CallCtx {
            attempt: job.attempt,
            disable_immediate_execution: run.force_step_plan,
            env: String::new(),
            fn_id: run.function.uuid.clone(),
            generation_id: job.generation,
            job_id: job.job_id.clone(),
            max_attempts: Some(run.max_attempts),
            qi_id: base64::engine::general_purpose::STANDARD
                .encode(format!("{}::default", job.job_id)),
            request_id: request_id.clone(),
            run_id: run.id.clone(),
            stack: Stack {
                current: run.stack.len() as u32,
                stack: run.stack.clone(),
            },
            step_id: wire::DISCOVERY_STEP_ID.to_owned(),
            use_api: false,
        };
        let mut req = ExecRequest {
            ctx,
            defers: Map::new(),
            event: run.event.clone(),
            events: run.events.clone(),
            steps: run.steps_for_request(),
            use_api: false,
            version: run.version,
        };
        let mut body = canonical(&req);
        if body.len() > self.settings.max_inline_state {
            req.ctx.use_api = true;
            req.use_api = true;
            req.steps = BTreeMap::new();
            req.events = Vec::new();
            body = canonical(&req);
            run.log(
                now,
                HistoryKind::Request,
                Some(&job.step_id),
                Some(job.attempt),
                "state too large to send inline: use_api set, the app fetches it from /v0/runs",
            );
        }
        let url = step_url(&run.function.url, &run.function.slug, &job.step_id);
        let mut headers = HeaderMap::new();
        let mut put = |name: &str, value: &str| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        };
        put(USER_AGENT.as_str(), "Inngest");
        put(CONNECTION.as_str(), "close");
        put("account-id", ACCOUNT_ID);
        put(CONTENT_TYPE.as_str(), "application/json");
        put(
            h::TRACEPARENT,
            &format!(
                "00-{:032x}-{:016x}-01",
                rand::random::<u128>(),
                rand::random::<u64>()
            ),
        );
        put(
            h::TRACESTATE,
            &format!(
                "inngest@fn={},inngest@app={}",
                run.function.uuid, run.function.app_uuid
            ),
        );
        put("x-inngest-generation-id", &job.generation.to_string());
        put("x-inngest-job-id", &job.job_id);
        put(h::REQ_VERSION, &run.version.to_string());
        put(h::STEP_ID, &job.step_id);
        put("x-request-id", &request_id);
        put(h::RUN_ID, &run.id);
        if let Some(key) = &self.settings.signing_key {
            put(h::SIGNATURE, &signature::sign_now(key, &body));
        }
        run.log(
            now,
            HistoryKind::Request,
            Some(&job.step_id),
            Some(job.attempt),
            format!(
                "POST stepId={} attempt={} version={}",
                job.step_id, job.attempt, run.version
            ),
        );
        Prepared { url, headers, body }
    }

    async fn send(&self, p: Prepared) -> Result<RawResponse, String> {
        self.call(http::Method::POST, p.url, p.headers, p.body)
            .await
            .map_err(|e| format!("request to the app failed: {e}"))
    }

    /// One HTTP exchange with an app. Plain `http` goes through hyper so the request carries
    /// exactly `headers` (plus `Host`, `Content-Length` and `Accept-Encoding: gzip`, like the
    /// real server's Go client); `https` goes through reqwest.
    async fn call(
        &self,
        method: http::Method,
        url: url::Url,
        mut headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<RawResponse, String> {
        let timeout = self.settings.request_timeout;
        let too_big = || format!("response body over the {MAX_RESPONSE_BYTES}-byte limit");
        if url.scheme() != "http" {
            let res = self
                .http
                .request(method, url)
                .headers(headers)
                .body(body)
                .timeout(timeout)
                .send()
                .await
                .map_err(|e| describe_error(&e))?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            if res
                .content_length()
                .is_some_and(|n| n as usize > MAX_RESPONSE_BYTES)
            {
                return Err(too_big());
            }
            let body = res.bytes().await.map_err(|e| describe_error(&e))?;
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(too_big());
            }
            return Ok(RawResponse {
                status,
                headers,
                body,
            });
        }
        use http_body_util::BodyExt as _;
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|e| format!("invalid URL `{url}`: {e}"))?;
        headers.insert(
            http::header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
        let mut req = http::Request::new(http_body_util::Full::new(Bytes::from(body)));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        let exchange = async {
            let res = self
                .plain
                .request(req)
                .await
                .map_err(|e| describe_error(&e))?;
            let (parts, body) = res.into_parts();
            let collected = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        too_big()
                    } else {
                        format!("could not read the response: {e}")
                    }
                })?;
            let mut body = collected.to_bytes();
            let gzipped = parts
                .headers
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
            if gzipped {
                body = gunzip(&body)?;
            }
            Ok(RawResponse {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            format!(
                "no response within {}",
                inngest_protocol::timestr::format_go(timeout)
            )
        })?
    }

    /// Applies an answer to its run.
    fn apply(
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
            Outcome::Ops {
                ops,
                version,
                no_retry,
                retry_after,
            } => {
                let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
                run.log(
                    now,
                    HistoryKind::Response,
                    step,
                    Some(job.attempt),
                    format!("206 [{}]", names.join(", ")),
                );
                if run.version == -1 {
                    match version {
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
                self.apply_ops(run, job, ops, no_retry, retry_after, now, actions);
            }
            Outcome::Empty => {
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
                    let error = json!({"name": "Error", "message": msg});
                    self.retry_or_fail(run, job, error, true, None, now, actions);
                }
            }
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
            Outcome::Failure {
                error,
                retriable,
                retry_after,
                kind,
                reason,
            } => {
                run.log(now, kind, step, Some(job.attempt), reason);
                self.retry_or_fail(run, job, error, retriable, retry_after, now, actions);
            }
        }
    }

    /// Retries the job if allowed and attempts remain; otherwise fails the run.
    #[allow(clippy::too_many_arguments)]
    fn retry_or_fail(
        &self,
        run: &mut Run,
        job: &Job,
        error: Value,
        retriable: bool,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        if !job.is_discovery() {
            if let Some(s) = run.find_step(&job.step_id) {
                s.attempts = job.attempt + 1;
                s.error = Some(error.clone());
            }
        }
        if retriable && job.attempt + 1 < run.max_attempts {
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
        } else {
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
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_ops(
        &self,
        run: &mut Run,
        job: &Job,
        mut ops: Vec<ParsedOp>,
        no_retry: bool,
        retry_after: Option<Duration>,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let discovery = job.is_discovery();
        if discovery {
            run.discovery_busy = false;
        }
        if ops.len() > 1 && !run.force_step_plan {
            run.force_step_plan = true;
        }
        // WaitForEvent ops go first, so `[WaitForEvent, sendEvent]` patterns cannot miss.
        ops.sort_by_key(|o| o.op.op != OpCode::WaitForEvent);
        let mut completed = false;
        let mut retry = false;
        for p in ops {
            if run.status != RunStatus::Running {
                return;
            }
            let ParsedOp { op, name, action } = p;
            let label = step_label(&op);
            let duplicate = run.memo.contains_key(&op.id)
                || run.planned.contains(&op.id)
                || run.pending.contains_key(&op.id);
            match action {
                OpAction::Run(data) => {
                    completed |= complete_step(
                        run,
                        job,
                        &op.id,
                        &label,
                        json!({ "data": data }),
                        StepStatus::Completed,
                        now,
                    );
                }
                OpAction::Error(err) => {
                    if no_retry || job.attempt + 1 >= run.max_attempts {
                        run.log(
                            now,
                            HistoryKind::StepFailed,
                            Some(&op.id),
                            Some(job.attempt),
                            format!("step `{label}` errored on its final attempt: treated as StepFailed"),
                        );
                        completed |= complete_step(
                            run,
                            job,
                            &op.id,
                            &label,
                            json!({ "error": err }),
                            StepStatus::Failed,
                            now,
                        );
                    } else {
                        let s = run.step_mut(&op.id, &label, "StepRun", job.sent_at.unwrap_or(now));
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
                        retry = true;
                    }
                }
                OpAction::Failed(err) => {
                    completed |= complete_step(
                        run,
                        job,
                        &op.id,
                        &label,
                        json!({ "error": err }),
                        StepStatus::Failed,
                        now,
                    );
                }
                OpAction::Planned => {
                    if duplicate {
                        continue;
                    }
                    run.planned.insert(op.id.clone());
                    let s = run.step_mut(&op.id, &label, "StepRun", now);
                    s.status = StepStatus::Planned;
                    run.log(
                        now,
                        HistoryKind::StepPlanned,
                        Some(&op.id),
                        None,
                        format!("step `{label}` planned"),
                    );
                    actions.jobs.push((Job::new(&run.id, &op.id), None));
                }
                OpAction::Sleep(until) => {
                    if duplicate {
                        continue;
                    }
                    let msg = format!(
                        "sleeping until {}",
                        until.to_rfc3339_opts(SecondsFormat::Millis, true)
                    );
                    self.pause(
                        run,
                        &op,
                        &label,
                        "Sleep",
                        PendingKind::Sleep,
                        until,
                        StepStatus::Sleeping,
                        HistoryKind::Sleeping,
                        msg,
                        now,
                        actions,
                    );
                }
                OpAction::Wait { event, expr, until } => {
                    if duplicate {
                        continue;
                    }
                    let msg = format!(
                        "waiting for `{event}`{} until {}",
                        expr.as_ref()
                            .map(|e| format!(" if `{e}`"))
                            .unwrap_or_default(),
                        until.to_rfc3339_opts(SecondsFormat::Millis, true)
                    );
                    self.pause(
                        run,
                        &op,
                        &label,
                        "WaitForEvent",
                        PendingKind::Wait { event, expr },
                        until,
                        StepStatus::Waiting,
                        HistoryKind::Waiting,
                        msg,
                        now,
                        actions,
                    );
                }
                OpAction::Invoke {
                    function_id,
                    payload,
                    until,
                } => {
                    if duplicate {
                        continue;
                    }
                    let correlation_id = format!("{}.{}", run.id, op.id);
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
                    let msg = format!("invoking `{function_id}`");
                    self.pause(
                        run,
                        &op,
                        &label,
                        "InvokeFunction",
                        PendingKind::Invoke { correlation_id },
                        until,
                        StepStatus::Invoking,
                        HistoryKind::Invoking,
                        msg,
                        now,
                        actions,
                    );
                    actions.events.push(ev);
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
                    return;
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
                    return;
                }
            }
        }
        if retry {
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
            if discovery {
                run.discovery_busy = true;
            }
            actions
                .jobs
                .push((job.retry(), Some(now + chrono_duration(delay))));
            return;
        }
        if completed {
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

    /// Registers a pending async op and its timer.
    #[allow(clippy::too_many_arguments)]
    fn pause(
        &self,
        run: &mut Run,
        op: &Op,
        label: &str,
        op_name: &str,
        kind: PendingKind,
        until: DateTime<Utc>,
        status: StepStatus,
        hkind: HistoryKind,
        msg: String,
        now: DateTime<Utc>,
        actions: &mut Actions,
    ) {
        let seq = self.next_seq();
        run.pending
            .insert(op.id.clone(), Pending { kind, seq, until });
        let s = run.step_mut(&op.id, label, op_name, now);
        s.status = status;
        run.log(now, hkind, Some(&op.id), None, msg);
        actions.timers.push(Timer {
            run_id: run.id.clone(),
            step: op.id.clone(),
            seq,
            at: until,
        });
    }

    fn fire_timer(self: &Arc<Self>, t: Timer) {
        let now = self.now();
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            let Some(run) = st.runs.get_mut(&t.run_id) else {
                return;
            };
            if run.status != RunStatus::Running {
                return;
            }
            let Some(p) = run.pending.get(&t.step) else {
                return;
            };
            if p.seq != t.seq {
                return;
            }
            match p.kind {
                PendingKind::Sleep => resolve_pending(
                    run,
                    &t.step,
                    Value::Null,
                    StepStatus::Completed,
                    HistoryKind::Resumed,
                    "sleep finished",
                    now,
                    &mut actions,
                ),
                PendingKind::Wait { .. } => resolve_pending(
                    run,
                    &t.step,
                    Value::Null,
                    StepStatus::TimedOut,
                    HistoryKind::TimedOut,
                    "wait for event timed out",
                    now,
                    &mut actions,
                ),
                PendingKind::Invoke { .. } => resolve_pending(
                    run,
                    &t.step,
                    json!({"error": {
                        "error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete",
                        "name": "InngestInvokeTimeoutError",
                        "message": "Timed out waiting for invoked function to complete",
                    }}),
                    StepStatus::TimedOut,
                    HistoryKind::TimedOut,
                    "invoked function did not finish in time",
                    now,
                    &mut actions,
                ),
            }
        }
        self.perform(actions);
    }

    /// Applies a checkpoint (`POST /v1/checkpoint/{run_id}/async`): steps an SDK ran inline and
    /// reports before answering its request. They are memoized and stacked exactly as if a `206`
    /// had reported them, without asking for discovery (the SDK is still running the function).
    pub fn checkpoint(self: &Arc<Self>, run_id: &str, body: &Value) -> Result<usize, String> {
        let now = self.now();
        let steps = body
            .get("steps")
            .and_then(Value::as_array)
            .ok_or("checkpoint body has no `steps` array")?;
        let raw = serde_json::to_vec(steps).map_err(|e| e.to_string())?;
        let ops = parse_ops(&raw, now)?;
        let mut st = self.lock();
        let run = st.runs.get_mut(run_id).ok_or("run not found")?;
        if run.status != RunStatus::Running {
            return Err(format!("run is {}", run.status.as_str()));
        }
        let job = Job {
            sent_at: Some(now),
            ..Job::new(run_id, wire::DISCOVERY_STEP_ID)
        };
        let mut applied = 0;
        for p in ops {
            let label = step_label(&p.op);
            let (memo, status) = match p.action {
                OpAction::Run(data) => (json!({ "data": data }), StepStatus::Completed),
                OpAction::Failed(err) => (json!({ "error": err }), StepStatus::Failed),
                _ => {
                    run.log(
                        now,
                        HistoryKind::InvalidResponse,
                        Some(&p.op.id),
                        None,
                        format!(
                            "checkpointed op `{}` ignored (only StepRun/StepFailed)",
                            p.name
                        ),
                    );
                    continue;
                }
            };
            if complete_step(run, &job, &p.op.id, &label, memo, status, now) {
                applied += 1;
            }
        }
        run.log(
            now,
            HistoryKind::Response,
            None,
            None,
            format!("checkpoint with {applied} step(s)"),
        );
        drop(st);
        self.notify();
        Ok(applied)
    }

    /// Cancels a running run. Returns whether it was running.
    pub fn cancel(self: &Arc<Self>, run_id: &str, reason: &str) -> bool {
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

    // ---------------------------------------------------------------------------------------
    // Sync
    // ---------------------------------------------------------------------------------------

    /// Validates and stores an app's functions (the `/fn/register` logic).
    pub fn register(self: &Arc<Self>, payload: &Value) -> Result<(AppDef, bool), Vec<String>> {
        let now = self.now();
        let url = payload
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let parsed = registry::parse_app(payload, now);
        let mut actions = Actions::default();
        let result = {
            let mut st = self.lock();
            match parsed {
                Err(errors) => {
                    st.syncs.push(SyncRecord {
                        app: payload
                            .get("appName")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        url,
                        error: Some(errors.join("; ")),
                    });
                    Err(errors)
                }
                Ok(def) => {
                    let modified = st
                        .apps
                        .get(&def.name)
                        .is_none_or(|a| a.def.checksum != def.checksum);
                    if modified {
                        if let Some(old) = st.apps.remove(&def.name) {
                            for c in old.crons {
                                c.abort();
                            }
                            for f in &old.def.functions {
                                st.functions.remove(&f.slug);
                            }
                        }
                        let mut crons = Vec::new();
                        for f in &def.functions {
                            st.functions.insert(f.slug.clone(), f.clone());
                            for sched in &f.crons {
                                crons.push(self.spawn_cron(f.clone(), sched.clone(), now));
                            }
                        }
                        st.apps.insert(
                            def.name.clone(),
                            AppEntry {
                                def: def.clone(),
                                crons,
                            },
                        );
                        tracing::info!(app = %def.name, functions = def.functions.len(), "app synced");
                    } else if let Some(a) = st.apps.get_mut(&def.name) {
                        a.def.synced_at = now;
                    }
                    st.syncs.push(SyncRecord {
                        app: Some(def.name.clone()),
                        url,
                        error: None,
                    });
                    self.restore_runs(&mut st, now, &mut actions);
                    Ok((def, modified))
                }
            }
        };
        self.perform(actions);
        result
    }

    /// Brings back the runs read from the state directory whose function is registered now:
    /// they join the history, and each unfinished one is driven again from its last memoized
    /// step — pending sleeps, waits and invokes keep their deadlines, planned steps get their
    /// targeted request again, and a run whose request was in flight gets a new discovery.
    fn restore_runs(&self, st: &mut State, now: DateTime<Utc>, actions: &mut Actions) {
        if st.restored.is_empty() {
            return;
        }
        let mut restored_any = false;
        for rec in std::mem::take(&mut st.restored) {
            let Some(function) = st.functions.get(&rec.function).cloned() else {
                st.restored.push(rec);
                continue;
            };
            if st.runs.contains_key(&rec.id) {
                continue;
            }
            restored_any = true;
            let mut run = Run {
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
            };
            if run.status == RunStatus::Running {
                run.log(
                    now,
                    HistoryKind::Resumed,
                    None,
                    None,
                    "executor restarted: resuming from the last memoized step",
                );
                for p in rec.pending {
                    let seq = self.next_seq();
                    let (step, until, kind) = match p {
                        PendingRecord::Sleep { step, until } => (step, until, PendingKind::Sleep),
                        PendingRecord::Wait {
                            step,
                            until,
                            event,
                            expr,
                        } => {
                            // It compiled when the wait started; the evaluator is the same.
                            let expr = match expr.as_deref().map(super::expr::Expr::compile) {
                                Some(Ok(e)) => Some(e),
                                Some(Err(e)) => {
                                    tracing::error!(run_id = %run.id, error = %e, "a restored wait's expression no longer compiles: the wait will only time out");
                                    continue;
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
                    };
                    actions.timers.push(Timer {
                        run_id: run.id.clone(),
                        step: step.clone(),
                        seq,
                        at: until,
                    });
                    run.pending.insert(step, Pending { kind, seq, until });
                }
                let mut jobs: Vec<&str> = rec.planned.iter().map(String::as_str).collect();
                if rec.discovery_busy || (run.pending.is_empty() && run.planned.is_empty()) {
                    run.discovery_busy = true;
                    jobs.push(wire::DISCOVERY_STEP_ID);
                }
                for step in jobs {
                    let attempt = resumed_attempt(&mut run, step, now);
                    actions
                        .jobs
                        .push((Job::resumed(&run.id, step, attempt), None));
                }
                tracing::info!(run_id = %run.id, function = %run.function.slug, "run resumed after an executor restart");
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
    }

    fn spawn_cron(
        self: &Arc<Self>,
        f: Arc<FunctionDef>,
        sched: CronSchedule,
        now: DateTime<Utc>,
    ) -> tokio::task::AbortHandle {
        let weak = Arc::downgrade(self);
        let clock = self.settings.clock.clone();
        let first = sched.next_after(now);
        tokio::spawn(async move {
            let mut next = first;
            while let Some(at) = next {
                clock.sleep_until(at).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                inner.fire_cron(&f, &sched, at);
                next = sched.next_after(inner.now().max(at));
            }
        })
        .abort_handle()
    }

    fn fire_cron(self: &Arc<Self>, f: &Arc<FunctionDef>, sched: &CronSchedule, at: DateTime<Utc>) {
        let now = self.now();
        let stamp = at.to_rfc3339_opts(SecondsFormat::Secs, true);
        let ev = json!({
            "name": EVENT_CRON,
            "data": {"cron": sched.source(), "scheduledAt": stamp, "fireAt": now.to_rfc3339_opts(SecondsFormat::Secs, true)},
            "id": stamp,
            "ts": at.timestamp_millis(),
            "user": {},
        });
        let mut actions = Actions::default();
        {
            let mut st = self.lock();
            if !st.functions.get(&f.slug).is_some_and(|g| Arc::ptr_eq(g, f)) {
                return;
            }
            let internal_id = new_ulid(now);
            let idx = st.events.len();
            st.event_index.insert(internal_id.clone(), idx);
            st.events.push(StoredEvent {
                internal_id: internal_id.clone(),
                event: ev.clone(),
                received_at: now,
            });
            tracing::info!(function = %f.slug, at = %stamp, "cron fired");
            self.admit(
                &mut st,
                f.clone(),
                ev,
                &internal_id,
                None,
                false,
                now,
                &mut actions,
            );
        }
        self.perform(actions);
    }

    /// Syncs an app over HTTP: out-of-band (the app POSTs `/fn/register` back) or in-band.
    pub async fn sync_app(self: &Arc<Self>, url: &str, in_band: bool) -> Result<AppDef, SyncError> {
        let body = serde_json::to_vec(&json!({ "url": url })).unwrap_or_default();
        let target = url::Url::parse(url).map_err(|e| SyncError::Unreachable {
            url: url.to_owned(),
            message: format!("invalid URL: {e}"),
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(h::SERVER_KIND, HeaderValue::from_static("dev"));
        if in_band {
            headers.insert(h::SYNC_KIND, HeaderValue::from_static("in_band"));
        }
        if let Some(key) = &self.settings.signing_key {
            if let Ok(v) = HeaderValue::from_str(&signature::sign_now(key, &body)) {
                headers.insert(h::SIGNATURE, v);
            }
        }
        let before = self.lock().syncs.len();
        let res = self
            .call(http::Method::PUT, target, headers, body)
            .await
            .map_err(|message| SyncError::Unreachable {
                url: url.to_owned(),
                message,
            })?;
        let status = http::StatusCode::from_u16(res.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        let headers = res.headers;
        let bytes = res.body;
        if !status.is_success() {
            return Err(SyncError::Rejected {
                status: status.as_u16(),
                message: error_text(&bytes),
            });
        }
        if in_band {
            if let Some(key) = &self.settings.signing_key {
                let sig = headers.get(h::SIGNATURE).and_then(|v| v.to_str().ok());
                signature::verify(sig, &bytes, Some(key), None, Utc::now().timestamp())
                    .map_err(|e| SyncError::InvalidResponse(format!("response signature: {e}")))?;
            }
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| SyncError::InvalidResponse(format!("body is not JSON: {e}")))?;
            let payload = json!({
                "appName": v.get("app_id").cloned().unwrap_or(Value::Null),
                "url": v.get("url").cloned().unwrap_or_else(|| Value::String(url.to_owned())),
                "functions": v.get("functions").cloned().unwrap_or_else(|| json!([])),
                "sdk": v.get("sdk").cloned().unwrap_or(Value::Null),
                "framework": v.get("framework").cloned().unwrap_or(Value::Null),
            });
            return self
                .register(&payload)
                .map(|(def, _)| def)
                .map_err(|errors| SyncError::Invalid(errors.join("; ")));
        }
        let st = self.lock();
        let recent = st.syncs.get(before..).unwrap_or_default();
        let record = recent
            .iter()
            .rev()
            .find(|r| same_app_url(&r.url, url))
            .or_else(|| recent.last())
            .cloned()
            .ok_or(SyncError::NotRegistered)?;
        if let Some(err) = record.error {
            return Err(SyncError::Invalid(err));
        }
        record
            .app
            .and_then(|a| st.apps.get(&a).map(|e| e.def.clone()))
            .ok_or(SyncError::NotRegistered)
    }

    /// Aborts cron tasks.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        for app in st.apps.values_mut() {
            for c in app.crons.drain(..) {
                c.abort();
            }
        }
    }

    /// Views of every run, oldest first.
    pub fn run_views(&self) -> Vec<RunView> {
        let st = self.lock();
        st.run_order
            .iter()
            .filter_map(|id| st.runs.get(id).map(Run::view))
            .collect()
    }
}

// -------------------------------------------------------------------------------------------
// Run mutations that need no executor state
// -------------------------------------------------------------------------------------------

fn request_discovery(run: &mut Run, actions: &mut Actions) {
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

/// Memoizes a run step's result. Returns false for a step that was already memoized.
fn complete_step(
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

/// Resolves a pending async op with its memo and asks for discovery.
#[allow(clippy::too_many_arguments)]
fn resolve_pending(
    run: &mut Run,
    step: &str,
    memo: Value,
    status: StepStatus,
    kind: HistoryKind,
    message: impl Into<String>,
    now: DateTime<Utc>,
    actions: &mut Actions,
) {
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

// -------------------------------------------------------------------------------------------
// Helpers
// -------------------------------------------------------------------------------------------

/// Validates and normalizes an event: `name`, `data` (object), `ts`, `user`, optional `id`/`v`.
fn normalize_event(e: Value, now: DateTime<Utc>, external: bool) -> Result<Value, String> {
    let Value::Object(mut obj) = e else {
        return Err("an event must be a JSON object".into());
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err("event `name` is required".into()),
    };
    if external && name.starts_with(inngest_protocol::wire::RESERVED_EVENT_PREFIX) {
        return Err(format!(
            "event name `{name}` is reserved: names starting with `inngest/` cannot be sent"
        ));
    }
    let mut data = match obj.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("event `data` must be an object".into()),
    };
    if external {
        data.remove("_inngest");
    }
    let ts = match obj.get("ts") {
        None | Some(Value::Null) => now.timestamp_millis(),
        Some(v) => v
            .as_i64()
            .filter(|t| *t > 0)
            .ok_or("event `ts` must be a positive integer (unix milliseconds)")?,
    };
    let mut out = Map::new();
    out.insert("name".into(), Value::String(name));
    out.insert("data".into(), Value::Object(data));
    out.insert("ts".into(), ts.into());
    match obj.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            out.insert("id".into(), Value::String(s.clone()));
        }
        Some(_) => return Err("event `id` must be a string".into()),
    }
    out.insert(
        "user".into(),
        obj.get("user")
            .filter(|u| u.is_object())
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    if let Some(Value::String(v)) = obj.get("v") {
        out.insert("v".into(), Value::String(v.clone()));
    }
    Ok(Value::Object(out))
}

/// `X-Inngest-Event-Id-Seed: <ms>,<base64 of 10 bytes>` → (ms, 80-bit entropy).
fn parse_seed(seed: &str) -> Option<(u64, u128)> {
    let (ms, b64) = seed.split_once(',')?;
    let ms: u64 = ms.trim().parse().ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    if bytes.len() != 10 {
        return None;
    }
    let mut entropy = 0u128;
    for b in bytes {
        entropy = (entropy << 8) | u128::from(b);
    }
    Some((ms, entropy))
}

/// A ULID with the given time.
pub(crate) fn new_ulid(now: DateTime<Utc>) -> String {
    let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    ulid::Ulid::from_parts(ms, rand::random::<u128>()).to_string()
}

/// A random UUID (version 4 layout).
pub(crate) fn random_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// A short base-36 job id like the real queue's.
fn new_job_id() -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = rand::random::<u64>();
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_else(|_| "0".into())
}

/// The body bytes, keys sorted (RFC 8785), as the real executor sends them.
fn canonical<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(v)
        .or_else(|_| serde_json::to_vec(v))
        .unwrap_or_default()
}

/// The registered step URL with `fnId` and `stepId` set.
fn step_url(base: &url::Url, slug: &str, step_id: &str) -> url::Url {
    let mut url = base.clone();
    let mut pairs: Vec<(String, String)> = base
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (key, value) in [(wire::QUERY_FN_ID, slug), (wire::QUERY_STEP_ID, step_id)] {
        match pairs.iter_mut().find(|(k, _)| k == key) {
            Some(p) => p.1 = value.to_owned(),
            None => pairs.push((key.to_owned(), value.to_owned())),
        }
    }
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url
}

fn step_label(op: &Op) -> String {
    op.userland
        .as_ref()
        .map(|u| u.id.clone())
        .or_else(|| op.display_name.clone())
        .or_else(|| op.name.clone())
        .unwrap_or_else(|| op.id.clone())
}

/// Decompresses a gzip body.
fn gunzip(body: &[u8]) -> Result<Bytes, String> {
    use std::io::Read as _;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(MAX_RESPONSE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("invalid gzip body: {e}"))?;
    if out.len() > MAX_RESPONSE_BYTES {
        return Err(format!(
            "response body over the {MAX_RESPONSE_BYTES}-byte limit"
        ));
    }
    Ok(Bytes::from(out))
}

/// An error and its sources, on one line.
fn describe_error(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

/// Whether two app URLs name the same endpoint (loopback host spellings are equal).
fn same_app_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        url::Url::parse(s).ok().map(|u| {
            let host = match u.host_str().unwrap_or("") {
                "localhost" | "127.0.0.1" | "[::1]" | "::1" => "loopback".to_owned(),
                other => other.to_owned(),
            };
            (host, u.port_or_known_default(), u.path().to_owned())
        })
    };
    match (norm(a), norm(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_ids() {
        let (ms, e) = parse_seed("1795843709734,zohWT3KnyYgFjg==").unwrap();
        assert_eq!(ms, 1795843709734);
        let id = ulid::Ulid::from_parts(ms, e);
        assert_eq!(id.timestamp_ms(), ms);
        assert!(parse_seed("x,y").is_none());
        assert_eq!(random_uuid().len(), 36);
        assert!(!new_job_id().is_empty());
    }

    #[test]
    fn step_urls_keep_other_params() {
        let base = url::Url::parse("http://h/api/inngest?fnId=app-f&stepId=step&x=1").unwrap();
        assert_eq!(
            step_url(&base, "app-f", "abc").as_str(),
            "http://h/api/inngest?fnId=app-f&stepId=abc&x=1"
        );
        let base = url::Url::parse("http://h/api/inngest").unwrap();
        assert_eq!(
            step_url(&base, "app-f", "step").as_str(),
            "http://h/api/inngest?fnId=app-f&stepId=step"
        );
    }

    #[test]
    fn events_are_normalized() {
        let now = Utc::now();
        let e = normalize_event(
            json!({"name": "a/b", "data": {"_inngest": 1, "x": 2}}),
            now,
            true,
        )
        .unwrap();
        assert_eq!(e["data"], json!({"x": 2}));
        assert_eq!(e["user"], json!({}));
        assert_eq!(e["ts"], now.timestamp_millis());
        assert!(normalize_event(json!({"name": "inngest/function.failed"}), now, true).is_err());
        assert!(normalize_event(json!({"name": "inngest/function.failed"}), now, false).is_ok());
        assert!(normalize_event(json!({"name": ""}), now, true).is_err());
        assert!(normalize_event(json!({"name": "a", "data": 1}), now, true).is_err());
    }

    #[test]
    fn backoff_kinds() {
        assert_eq!(
            Backoff::Fixed(Duration::from_secs(1)).delay(7),
            Duration::from_secs(1)
        );
        let e = Backoff::Exponential {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        assert_eq!(e.delay(0), Duration::from_secs(1));
        assert_eq!(e.delay(2), Duration::from_secs(4));
        assert_eq!(e.delay(30), Duration::from_secs(10));
    }
}
