//! The executor's shared state and the vocabulary every other engine module speaks.
//!
//! State lives behind one mutex ([`Inner::lock`]) that is never held across an `.await`. A
//! mutation takes the lock, changes [`State`], and collects its follow-up work (requests to
//! send, timers to start, internal events to emit) in [`Actions`]; the engine runs them once the
//! lock is released ([`Inner::perform`](crate::engine)). One request to the app is one [`Job`]
//! (`stepId=step` for discovery, `stepId=<hash>` for a planned step); a retry resends the same
//! job with `attempt + 1` and the next generation id, like the real executor.
//!
//! This module depends only on the data modules below it (`state`, `registry`, `persist`,
//! `flow_state`, `clock`), never on the modules that drive runs.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock::Clock;
use crate::event_log::EventLog;
use crate::flow_state::{FlowState, FlowTimer};
use crate::persist::{Archive, FlowRecord, Loaded, RunRecord, Store};
use crate::registry::{AppDef, FunctionDef};
use crate::state::{Run, RunView, StoredEvent};
use inngest_protocol::signature::SigningKey;
use inngest_protocol::wire;

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

/// How long to wait before retrying a failed attempt.
#[derive(Clone)]
pub(crate) enum Backoff {
    /// Always the same delay.
    Fixed(Duration),
    /// `base * 2^attempt`, at most `max`.
    Exponential { base: Duration, max: Duration },
    /// `f(attempt)`.
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl Backoff {
    /// Delay after the failure of `attempt` (0-based).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
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

/// The hyper client used for plain `http` apps.
pub(crate) type PlainClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<Bytes>,
>;

/// Executor settings.
pub(crate) struct Settings {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) signing_key: Option<SigningKey>,
    pub(crate) event_key: Option<String>,
    pub(crate) backoff: Backoff,
    pub(crate) max_inline_state: usize,
    pub(crate) request_timeout: Duration,
    /// Timings of the connect gateway.
    pub(crate) connect: crate::connect::GatewayConfig,
}

/// Shared executor state.
pub(crate) struct Inner {
    pub(crate) settings: Settings,
    /// For `https` apps (adds `Accept: */*` to every request).
    pub(crate) http: reqwest::Client,
    /// For `http` apps: sends exactly the headers given (plus `Host` and `Content-Length`).
    pub(crate) plain: PlainClient,
    /// For `Gateway` / `AIGateway` calls (the `gateway` module).
    pub(crate) gateway: reqwest::Client,
    /// Realtime messages, subscribers and tokens.
    pub(crate) realtime: crate::realtime::Hub,
    /// Connect workers and the requests they hold.
    pub(crate) connect: crate::connect::Hub,
    state: Mutex<State>,
    changes: tokio::sync::watch::Sender<u64>,
    seq: AtomicU64,
    /// The state directory, when one is configured.
    store: Option<Store>,
}

/// An app and its cron tasks.
pub(crate) struct AppEntry {
    pub(crate) def: AppDef,
    pub(crate) crons: Vec<tokio::task::AbortHandle>,
}

/// One `/fn/register` call (or in-band sync) as seen by the executor.
#[derive(Debug, Clone)]
pub(crate) struct SyncRecord {
    pub(crate) app: Option<String>,
    pub(crate) url: String,
    pub(crate) error: Option<String>,
}

/// Everything the executor keeps.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) apps: BTreeMap<String, AppEntry>,
    pub(crate) functions: BTreeMap<String, Arc<FunctionDef>>,
    /// The events in memory (with a state directory, the newest ones; see [`EventLog`]).
    pub(crate) events: EventLog,
    /// The runs in memory (with a state directory, the unfinished and the newest finished
    /// ones; the others are read back from [`State::archive`]).
    pub(crate) runs: HashMap<String, Run>,
    pub(crate) run_order: Vec<String>,
    pub(crate) runs_by_event: HashMap<String, Vec<String>>,
    /// Step mocks: function slug → hashed step id → (user step id, memo).
    pub(crate) mocks: HashMap<String, BTreeMap<String, (String, Value)>>,
    pub(crate) syncs: Vec<SyncRecord>,
    /// Flow-control state (see [`crate::flow_control`]).
    pub(crate) flow: FlowState,
    /// Runs read from the state directory whose function has not been registered again yet.
    pub(crate) restored: Vec<RunRecord>,
    /// The last tick each cron fired, by `<function slug>\0<expression>` (kept in the state
    /// directory, so ticks missed while the process was down are fired on restart).
    pub(crate) cron_ticks: BTreeMap<String, DateTime<Utc>>,
    /// Debounce and batch buffers read from the state directory whose function has not been
    /// registered again yet ([`crate::flow_control::restore_held`]).
    pub(crate) held_flow: FlowRecord,
    /// With a state directory: lookups of the runs and events that left memory.
    pub(crate) archive: Option<Archive>,
    /// The last run id given out ([`State::new_run_id`]).
    last_run_id: Option<ulid::Ulid>,
}

impl State {
    /// A new run's id: a ULID with the run's creation time whose order is the order runs were
    /// created in, within one millisecond too (the random part of the previous id plus one),
    /// so that runs read back after a restart queue up again in the order they were created.
    pub(crate) fn new_run_id(&mut self, now: DateTime<Utc>) -> String {
        let ms = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let next = self
            .last_run_id
            .filter(|last| last.timestamp_ms() == ms)
            .and_then(|last| last.increment());
        // A fresh random part leaves its top bit clear: room for 2^79 increments.
        let id = next.unwrap_or_else(|| ulid::Ulid::from_parts(ms, rand::random::<u128>() >> 49));
        self.last_run_id = Some(id);
        id.to_string()
    }

    /// An event by its internal id or the id it was sent with: from memory, else from the
    /// store.
    pub(crate) fn event(&self, id: &str) -> Option<Cow<'_, StoredEvent>> {
        if let Some(ev) = self.events.find(id) {
            return Some(Cow::Borrowed(ev));
        }
        if self.events.holds_all() {
            return None;
        }
        self.archive.as_ref()?.event(id).map(Cow::Owned)
    }

    /// Internal id of an event given either its internal id or the id it was sent with.
    pub(crate) fn resolve_event_id(&self, id: &str) -> Option<String> {
        self.event(id).map(|e| e.internal_id.clone())
    }

    /// Runs in memory triggered by an event, in creation order.
    pub(crate) fn runs_of_event(&self, id: &str) -> Vec<&Run> {
        let internal = self.resolve_event_id(id).unwrap_or_else(|| id.to_owned());
        self.runs_by_event
            .get(&internal)
            .map(|ids| ids.iter().filter_map(|r| self.runs.get(r)).collect())
            .unwrap_or_default()
    }

    /// A run that is only in the store (it left memory), read back whole.
    pub(crate) fn archived_run(&self, id: &str) -> Option<RunRecord> {
        if self.runs.contains_key(id) {
            return None;
        }
        self.archive.as_ref()?.run(id)
    }

    /// A run's view: from memory, else from the store.
    pub(crate) fn run_view(&self, id: &str) -> Option<RunView> {
        if let Some(run) = self.runs.get(id) {
            return Some(run.view());
        }
        self.archived_run(id).map(|r| self.view_of(r))
    }

    /// The view of a run read back from the store.
    pub(crate) fn view_of(&self, rec: RunRecord) -> RunView {
        let slug = rec.function.clone();
        rec.into_view(|| self.app_of(&slug))
    }

    /// The app id of a function slug, when the function is registered (else empty).
    pub(crate) fn app_of(&self, slug: &str) -> String {
        self.functions
            .get(slug)
            .map(|f| f.app.clone())
            .unwrap_or_default()
    }

    /// The runs an event triggered that are only in the store, read back whole.
    pub(crate) fn archived_runs_of_event(&self, id: &str) -> Vec<RunRecord> {
        let Some(archive) = &self.archive else {
            return Vec::new();
        };
        let internal = self.resolve_event_id(id).unwrap_or_else(|| id.to_owned());
        archive
            .runs_of_event(&internal)
            .iter()
            .filter(|run_id| !self.runs.contains_key(*run_id))
            .filter_map(|run_id| archive.run(run_id))
            .collect()
    }

    /// Views of the runs an event triggered, in memory or in the store, oldest first.
    pub(crate) fn run_views_of_event(&self, id: &str) -> Vec<RunView> {
        let mut views: Vec<RunView> = self.runs_of_event(id).iter().map(|r| r.view()).collect();
        let archived = self.archived_runs_of_event(id);
        if !archived.is_empty() {
            views.extend(archived.into_iter().map(|r| self.view_of(r)));
            views.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        }
        views
    }

    /// A registered function by composite id or UUID.
    pub(crate) fn function(&self, id: &str) -> Option<Arc<FunctionDef>> {
        self.functions
            .get(id)
            .or_else(|| self.functions.values().find(|f| f.uuid == id))
            .cloned()
    }
}

/// Follow-up work collected under the lock, run by the engine once it is released.
#[derive(Default)]
pub(crate) struct Actions {
    /// Requests to send, each at a time (`None`: now).
    pub(crate) jobs: Vec<(Job, Option<DateTime<Utc>>)>,
    /// Deadlines of sleeps, waits and invokes.
    pub(crate) timers: Vec<Timer>,
    /// Internal events to store and route (`inngest/function.finished`, …).
    pub(crate) events: Vec<Value>,
    /// Flow-control deadlines (debounce, batch, throttle, timeouts).
    pub(crate) flow_timers: Vec<FlowTimer>,
    /// `(run, step)` of signal waits started by this answer, checked for conflicts
    /// ([`crate::signals::claim`]).
    pub(crate) signal_waits: Vec<(String, String)>,
}

/// The deadline of a pending sleep, wait or invoke. `seq` tells a live timer from a stale one.
pub(crate) struct Timer {
    pub(crate) run_id: String,
    pub(crate) step: String,
    pub(crate) seq: u64,
    pub(crate) at: DateTime<Utc>,
}

/// One request to the app (and its retries).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) run_id: String,
    pub(crate) step_id: String,
    pub(crate) attempt: u32,
    pub(crate) job_id: String,
    pub(crate) generation: u64,
    pub(crate) sent_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The first attempt of a request for `step_id` of a run.
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
    pub(crate) fn resumed(run_id: &str, step_id: &str, attempt: u32) -> Job {
        Job {
            attempt,
            generation: u64::from(attempt) + 1,
            ..Job::new(run_id, step_id)
        }
    }

    /// The next attempt of this job.
    pub(crate) fn retry(&self) -> Job {
        Job {
            attempt: self.attempt + 1,
            generation: self.generation + 1,
            sent_at: None,
            ..self.clone()
        }
    }

    /// Whether this is a discovery request (`stepId=step`).
    pub(crate) fn is_discovery(&self) -> bool {
        self.step_id == wire::DISCOVERY_STEP_ID
    }
}

impl Inner {
    /// The shared state, with what was loaded from the state directory (if any).
    pub(crate) fn new(
        settings: Settings,
        http: reqwest::Client,
        gateway: reqwest::Client,
        store: Option<(Store, Loaded)>,
    ) -> Inner {
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        let plain =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector);
        let mut state = State::default();
        let store = store.map(|(store, loaded)| {
            state.events = loaded.events;
            state.archive = Some(store.archive());
            state.restored = loaded.runs;
            state.cron_ticks = loaded.crons;
            let mut flow = loaded.flow;
            state.flow.rate = std::mem::take(&mut flow.rate).into_iter().collect();
            state.flow.singleton = std::mem::take(&mut flow.singleton).into_iter().collect();
            state.flow.throttle = std::mem::take(&mut flow.throttle)
                .into_iter()
                .map(|(k, tat)| (k, crate::flow_state::ThrottleQueue::resumed(tat)))
                .collect();
            state.held_flow = flow;
            store
        });
        Inner {
            settings,
            http,
            plain,
            gateway,
            realtime: crate::realtime::Hub::default(),
            connect: crate::connect::Hub::default(),
            state: Mutex::new(state),
            changes: tokio::sync::watch::channel(0).0,
            seq: AtomicU64::new(1),
            store,
        }
    }

    /// The executor clock's time.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.settings.clock.now()
    }

    /// Locks the state (never held across an `.await`).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Saves what changed (with a state directory) and wakes the waiters.
    pub(crate) fn notify(&self) {
        self.save();
        self.signal();
    }

    /// With a state directory: lets the oldest finished runs and events that are in the store
    /// leave memory once more than the window's are there ([`crate::persist::Window`]).
    fn trim(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let mut st = self.lock();
        let gone = store.trim_runs(&st.run_order);
        if !gone.is_empty() {
            st.run_order.retain(|id| !gone.contains(id));
            for id in &gone {
                st.runs.remove(id);
                st.flow.runs.remove(id);
            }
            st.runs_by_event.retain(|_, ids| {
                ids.retain(|id| !gone.contains(id));
                !ids.is_empty()
            });
            tracing::debug!(
                runs = gone.len(),
                "finished runs left memory (kept in the store)"
            );
        }
        let st = &mut *st;
        st.flow.trim_skipped(store.window().events);
        let events = store.trim_events(&mut st.events);
        if events > 0 {
            tracing::debug!(events, "events left memory (kept in the store)");
        }
    }

    /// Wakes the waiters of [`Inner::wait_until`].
    pub(crate) fn signal(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Writes the snapshots of runs that changed and the new events to the state directory,
    /// then lets what is saved and beyond the memory window leave memory.
    pub(crate) fn save(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let pass = {
            let st = self.lock();
            let mut flow = st.flow.record();
            flow.merge(&st.held_flow);
            store.collect(&st.runs, &st.events, &st.cron_ticks, flow)
        };
        pass.write();
        self.trim();
    }

    /// A fresh sequence number for pending-op timers.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits (real time) until `check` returns something.
    pub(crate) async fn wait_until<T>(
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

    /// Views of every run, oldest first.
    pub(crate) fn run_views(&self) -> Vec<RunView> {
        let st = self.lock();
        st.run_order
            .iter()
            .filter_map(|id| st.runs.get(id).map(Run::view))
            .collect()
    }
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

/// An error and its sources, on one line.
pub(crate) fn describe_error(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(random_uuid().len(), 36);
        assert!(!new_job_id().is_empty());
    }

    #[test]
    fn run_ids_carry_the_creation_time_and_sort_in_creation_order_within_a_millisecond() {
        let mut st = State::default();
        let t = DateTime::from_timestamp_millis(1_772_366_400_000).unwrap();
        let later = DateTime::from_timestamp_millis(1_772_366_400_001).unwrap();
        let ids: Vec<String> = (0..200).map(|_| st.new_run_id(t)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, ids, "strictly increasing at one instant");
        let parse = |id: &str| ulid::Ulid::from_string(id).unwrap();
        assert!(ids
            .iter()
            .all(|id| parse(id).timestamp_ms() == 1_772_366_400_000));
        let next = st.new_run_id(later);
        assert_eq!(parse(&next).timestamp_ms(), 1_772_366_400_001);
        assert!(next > ids[199]);
        // The clock moved back (a virtual clock may): the id keeps the time it was given.
        assert_eq!(parse(&st.new_run_id(t)).timestamp_ms(), 1_772_366_400_000);
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
