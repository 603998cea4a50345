//! The local executor: the server side of the Inngest serve protocol, for tests and local
//! development.
//!
//! **This is a development and test engine, not a production scheduler.** It runs in one
//! process and keeps its state in memory (optionally journaled to a directory, see
//! [`ExecutorBuilder::state_dir`], so a restarted process carries on); production runs on Inngest
//! (Cloud or self-hosted). What it does give you is the real protocol, end to end, with no other
//! process and no network:
//!
//! * It talks to apps only over HTTP through their serve endpoint (`/api/inngest`), with the
//!   headers, query parameters, body fields, request versions and signatures the real server
//!   uses, so it drives any SDK's app, not only this crate's.
//! * It syncs apps ([`Executor::register_app`] does what the dev server does: `PUT` the app, which
//!   then `POST`s `/fn/register` back to the executor; in-band sync too) and validates every
//!   expression and cron at sync time.
//! * It accepts events on the Event API (`POST /e/{key}`), matches triggers (names and `if`
//!   expressions), and runs functions: discovery and targeted requests, memoized state and stack,
//!   `StepRun`/`StepPlanned`/`Sleep`/`WaitForEvent`/`InvokeFunction`/`StepError`/`StepFailed`,
//!   retries with backoff (`Retry-After` and `X-Inngest-No-Retry` honoured), parallel groups
//!   (request version 2 coalescing), cancellation rules, crons, and the
//!   `inngest/function.finished` / `inngest/function.failed` events that `invoke` and
//!   `on_failure` rely on.
//! * It keeps a history of every run (status, output, error, steps with timings, every request and
//!   protocol violation) and serves it over HTTP in the dev server's REST shape
//!   (`GET /v1/events/{id}/runs`, `GET /v1/runs/{id}`), see [`Executor::router`].
//! * Time comes from a [`Clock`]: real by default, virtual in tests so
//!   `sleep("1d")` takes milliseconds ([`clock::VirtualClock`]).
//!
//! `inngest_sdk::testing::TestHarness` (feature `test-util` of
//! [`inngest-sdk`](https://docs.rs/inngest-sdk)) wires an executor and an app together in-process
//! for tests.
//!
//! ```no_run
//! use inngest_executor::Executor;
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let executor = Executor::builder().build()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8288").await?;
//! let server = executor.clone();
//! tokio::spawn(async move { server.serve(listener).await });
//! executor.register_app("http://127.0.0.1:3000/api/inngest").await?;
//! let id = executor.send(serde_json::json!({"name": "demo/hello", "data": {}})).await?;
//! for run in executor.runs_for_event(&id) {
//!     let run = executor.wait_for_run(&run.id, std::time::Duration::from_secs(10)).await?;
//!     println!("{} {:?} {:?}", run.function_id, run.status, run.output);
//! }
//! # Ok(()) }
//! ```
//!
//! # Modules
//!
//! Lower modules never import higher ones (`.ci/module-cycles.py` checks it). From the bottom:
//!
//! | module | what it holds |
//! |---|---|
//! | `clock`, `expr`, `cron` | time sources, the `if`/key expression evaluator, cron schedules |
//! | `flow` | a function's flow-control settings as registered, and skip records |
//! | `registry` | apps and functions parsed and validated from a `/fn/register` payload |
//! | `state` | runs (memo, stack, steps, history) and the public views ([`RunView`], …) |
//! | `connect` | the connect gateway's state: worker connections, sessions, forwarded requests and leases |
//! | `persist` | the optional state directory: a redb store, one fsynced transaction per save, row-by-row run state, migration from the old JSON layout |
//! | `event_log` | the events received, the newest in memory and the rest read back from the store by id |
//! | `response` | reading an app's answer: status, headers, op arrays checked up front |
//! | `flow_state` | flow-control bookkeeping (rate windows, buffers, queues, slots) |
//! | `shared` | `Inner` (settings, clients, the one lock), `State`, `Actions`, `Job` |
//! | `lifecycle` | creating, memoizing, resolving, finishing and cancelling a run |
//! | `flow_control` | the flow-control steps between an event and its run |
//! | `intake` | events in: normalization, dedup, routing to waits, cancellations, triggers |
//! | `dispatch` | requests to apps over HTTP: body, headers, signature, timeout |
//! | `ops` | applying an answer's ops (or failure) to its run; sleep/wait/invoke deadlines |
//! | `gateway` | `Gateway` (`step.fetch`) and `AIGateway` (`step.ai.infer`) ops: the requests the executor makes for an app |
//! | `realtime` | realtime channels and topics: published messages, subscription tokens, subscribers |
//! | `checkpoint` | `POST /v1/checkpoint/{run}/async`: steps an SDK ran inline |
//! | `restore` | resuming runs read from the state directory after a restart |
//! | `engine` | entry points that change state, and the loop that performs `Actions` |
//! | `crons` | one task per cron trigger, routing `inngest/scheduled.timer` events |
//! | `sync` | app registration: `/fn/register`, out-of-band and in-band sync |
//! | `dashboard` | the run dashboard: HTML pages at `/` (apps, runs, one run, events) |
//! | `connect_api` | the connect routes: start, flush, and the worker's WebSocket |
//! | `realtime_api` | the realtime routes: publish, token, and the subscriber's WebSocket |
//! | `http` | the HTTP API ([`Executor::router`]) |
//!
//! One event through them: `http` (`POST /e/{key}`) → `engine::ingest` → `intake` (stored,
//! matched against triggers) → `flow_control` (rate limit … throttle) → `lifecycle::start_run`
//! queues a discovery `Job` in `Actions` → `engine::perform` spawns it → `dispatch` sends the
//! request → `response::classify` reads the 206 → `ops` memoizes the steps and queues the next
//! job → `engine::perform` again, until a 200 (or the last failure) ends the run in
//! `lifecycle::finish_run`, whose `inngest/function.finished` event goes back through `intake`.
//!
//! # Flow control
//!
//! Applied per function in the server's order: rate limit / idempotency (excess events skipped
//! and recorded) → debounce → batching → singleton → the run is created → throttle (holds its
//! first request) → concurrency (at most `limit` requests to the app in flight per key, FIFO by
//! run age, adjusted by priority) → start and finish timeouts (the run is cancelled). Every
//! period uses the executor's [`Clock`], so on a [`clock::VirtualClock`] starts happen at exact
//! virtual times.
//!
//! # Known differences from the real server
//! * Flow control (idempotency, rate limit, debounce, batching, singleton, throttle,
//!   concurrency, priority, timeouts) is applied on the executor's clock, within a test
//!   engine's fidelity (see [Flow control](self#flow-control); the docs of `flow_control.rs` say
//!   what is exact and what is approximated). In short: rate limits count a sliding window (the server uses GCRA; exact
//!   for idempotency); throttle uses the server's compatibility GCRA; priority only orders
//!   starts queued by throttle and requests queued by concurrency; `env` and `account`
//!   concurrency scopes are one environment here; runs started by `invoke` bypass
//!   idempotency, rate limit, debounce, batching and singleton. Skipped events are listed by
//!   [`Executor::skipped`] and `GET /v1/events/{id}/skips` (the dev server has no such route).
//! * State is in memory unless [`ExecutorBuilder::state_dir`] is set; then events and runs
//!   survive a restart of the executor's process and unfinished runs resume from their last
//!   memoized step once their app syncs again (a request that was in flight counts as a failed
//!   attempt; a scheduled retry is sent at once with its attempt number). The store is a redb
//!   database: one fsynced transaction per save, a step result a few small rows (see the
//!   `persist` module). Each cron's last tick is kept, and ticks that fell due while the
//!   process was down fire on restart, in order, as on the server (see the `crons` module).
//!   Rate-limit windows, debounce and batch buffers (with their deadlines: one that passed
//!   while the process was down starts its run on restart), singleton keys and each throttle
//!   key's GCRA state are kept too; the throttle and concurrency queues are rebuilt from the
//!   unfinished runs (a run a throttle held stays held and starts on the key's schedule; the
//!   requests of restarted runs queue for their concurrency slots again, in the order of the
//!   runs' creation and priority, as they first did). One
//!   executor at a time holds a directory (an OS file lock; a second one fails at `build()`
//!   with [`ExecutorError::StateDirInUse`]), and the directory's `format.json` names its layout
//!   version ([`ExecutorError::StateVersion`] for one this executor does not read). An app
//!   that dies mid-step (with the executor alive) is handled like the server handles it: the
//!   request fails, is retried, and the run resumes from its last memoized step.
//!   Memory stays bounded with a state directory: unfinished runs, the newest finished runs
//!   ([`ExecutorBuilder::max_finished_runs_in_memory`], 1,000 by default) and the newest
//!   events (10,000) stay in memory, the rest only in the store, found by id. The dev server
//!   keeps everything (in memory, or in its SQLite/Postgres store) and Inngest Cloud keeps
//!   history for a plan's retention period; here the store keeps everything and never prunes,
//!   while listings (`GET /v1/runs`, `GET /v1/events`, [`Executor::runs`], the dashboard) show
//!   only what is in memory, and a batch run that left memory is found from its first event
//!   only (the store indexes runs by the event that started them).
//! * `Gateway` (`step.fetch`) and `AIGateway` (`step.ai.infer`) calls are made by the
//!   executor as the server makes them (see the `gateway` module for the rules and the two
//!   differences: a 2xx AI answer that is not JSON, and `publish`). `WaitForSignal` waits are
//!   resumed by `POST /v1/signals` (see the `signals` module). Realtime messages are forwarded
//!   to WebSocket subscribers and the last ones kept (see the `realtime` module for the token
//!   and the routes not served).
//! * Apps are reached over `http`/`https`, or over connect: a worker that dials the gateway
//!   (`POST /v0/connect/start`, then the WebSocket at `/v0/connect`, both on the executor's own
//!   listener) syncs its apps through the socket, and their requests go over it (see the
//!   `connect` module for routing, acks, leases and what a dropped socket does, and
//!   [`Executor::connections`]). The gateway runs on real time, whatever the clock.
//! * URLs are used as given: `127.0.0.1` is not rewritten to `localhost`.

#![warn(missing_docs, unreachable_pub, clippy::too_many_lines)]

pub mod clock;
pub(crate) mod cron;
pub mod expr;

mod checkpoint;
mod connect;
mod connect_api;
mod crons;
mod dashboard;
mod dispatch;
mod engine;
mod event_log;
mod flow;
mod flow_control;
mod flow_state;
mod gateway;
mod http;
mod intake;
mod lifecycle;
mod ops;
mod persist;
mod realtime;
mod realtime_api;
mod registry;
mod response;
mod restore;
mod shared;
mod signals;
mod state;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

/// The error of a failed or cancelled run ([`RunView::error`]).
pub use inngest_protocol::wire::ErrorObject;

pub use connect::{ClosedConnection, ConnectionView};
pub use dispatch::run_trace_id;
pub use flow::{SkipReason, SkipView};
pub use registry::{AppView, FunctionView};
pub use state::{HistoryEntry, HistoryKind, RunStatus, RunView, StepStatus, StepView};

use clock::{Clock, SystemClock};
use shared::{Backoff, Inner, Settings};

/// Default largest request body sent inline before `use_api` is set (the real server's 4 MB).
pub const DEFAULT_MAX_INLINE_STATE: usize = 4 * 1024 * 1024;
/// Default timeout of one request to an app.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors of the executor's Rust API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The configured signing key is not `signkey-<env>-<hex>` or bare hex.
    #[error("invalid signing key: {0}")]
    InvalidSigningKey(String),
    /// An event was refused (no name, a reserved `inngest/` name, non-object data, …).
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// The state directory ([`ExecutorBuilder::state_dir`]) could not be created or read.
    #[error("executor state directory: {0}")]
    State(String),
    /// The state directory is held by another executor, in this process or another: only one
    /// executor at a time may use a directory. The hold ends when that executor is dropped (or
    /// its process exits).
    #[error("executor state directory {dir}: held by another executor (in this or another process); only one executor at a time may use a state directory")]
    StateDirInUse {
        /// The directory.
        dir: String,
    },
    /// The state directory's `format.json` names a format version this executor cannot read
    /// (a newer executor wrote it).
    #[error("executor state directory {dir}: format version {found} is not supported (this executor reads versions {supported})")]
    StateVersion {
        /// The directory.
        dir: String,
        /// The version found in `format.json`.
        found: u64,
        /// The versions this executor reads, comma-separated.
        supported: String,
    },
    /// No run has this id.
    #[error("run `{0}` not found")]
    RunNotFound(String),
    /// A wait did not finish in time.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        timeout: Duration,
    },
}

/// Why syncing an app failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The app could not be reached.
    #[error("could not reach the app at {url}: {message}")]
    Unreachable {
        /// The app URL.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The app answered the sync `PUT` with an error (for example because `/fn/register` refused
    /// its configuration: the message then names every invalid function).
    #[error("the app rejected the sync (HTTP {status}): {message}")]
    Rejected {
        /// HTTP status of the app's answer.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The app's configuration is invalid (in-band sync, or direct registration).
    #[error("invalid app configuration: {0}")]
    Invalid(String),
    /// The app answered the `PUT` but never called `/fn/register` on this executor.
    #[error(
        "the app answered the sync but never registered with this executor: point its API base URL (INNGEST_BASE_URL / INNGEST_DEV) at the executor"
    )]
    NotRegistered,
    /// An in-band sync answer could not be used.
    #[error("invalid in-band sync response: {0}")]
    InvalidResponse(String),
}

/// The local executor. Cheap to clone: clones share one state.
///
/// Methods that start work (sending events, syncing) must be called inside a tokio runtime.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("clock", &self.inner.settings.clock)
            .field("backoff", &self.inner.settings.backoff)
            .field("signed", &self.inner.settings.signing_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Executor {
    /// An executor on real time, unsigned, accepting any event key.
    fn default() -> Self {
        Executor::builder()
            .build()
            .expect("the default configuration is valid")
    }
}

/// Builder of an [`Executor`].
#[must_use = "call .build()"]
pub struct ExecutorBuilder {
    clock: Option<Arc<dyn Clock>>,
    signing_key: Option<String>,
    event_key: Option<String>,
    backoff: Backoff,
    max_inline_state: usize,
    request_timeout: Duration,
    state_dir: Option<std::path::PathBuf>,
    window: persist::Window,
    connect: connect::GatewayConfig,
}

/// Finished runs a state directory's executor keeps in memory by default
/// ([`ExecutorBuilder::max_finished_runs_in_memory`]).
pub const DEFAULT_FINISHED_RUNS_IN_MEMORY: usize = 1_000;
/// Events a state directory's executor keeps in memory by default
/// ([`ExecutorBuilder::max_events_in_memory`]).
pub const DEFAULT_EVENTS_IN_MEMORY: usize = 10_000;

impl std::fmt::Debug for ExecutorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecutorBuilder")
            .field("backoff", &self.backoff)
            .field("signed", &self.signing_key.is_some())
            .finish_non_exhaustive()
    }
}

impl ExecutorBuilder {
    /// The time source (default: [`SystemClock`]). Pass a [`clock::VirtualClock`] to skip time.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sign requests to apps and sync `PUT`s with this key (`signkey-<env>-<hex>` or bare hex),
    /// and require it (as a bearer token) on `/fn/register`, `/v0` and `/v1`. `None` (the
    /// default) behaves like `inngest dev`: nothing is signed or checked.
    pub fn signing_key(mut self, key: Option<String>) -> Self {
        self.signing_key = key;
        self
    }

    /// Accept events only at `/e/<this key>` (`401 Event key not found` otherwise). `None` (the
    /// default) accepts any key, like `inngest dev`.
    pub fn event_key(mut self, key: Option<String>) -> Self {
        self.event_key = key;
        self
    }

    /// Retry failed attempts after this fixed delay (the dev server's `--retry-interval`; use
    /// `Duration::ZERO` for fast tests). `Retry-After` from the app still wins.
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.backoff = Backoff::Fixed(interval);
        self
    }

    /// Retry after `base * 2^attempt`, at most `max` (the default: 1 s doubling up to 10 min).
    pub fn exponential_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff = Backoff::Exponential { base, max };
        self
    }

    /// Retry after `f(attempt)`, where `attempt` is the 0-based attempt that just failed.
    pub fn retry_backoff(mut self, f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        self.backoff = Backoff::Custom(Arc::new(f));
        self
    }

    /// Largest request body sent inline; above it the executor sets `use_api` and the app loads
    /// its state from `/v0/runs/{id}/actions` and `/batch` (default 4 MiB).
    pub fn max_inline_state_bytes(mut self, bytes: usize) -> Self {
        self.max_inline_state = bytes;
        self
    }

    /// Timeout of one request to an app (default 2 minutes).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The connect gateway's heartbeat interval (sent to workers in `GATEWAY_CONNECTION_READY`)
    /// and how many of them a worker may miss before its connection is closed with
    /// `CONSECUTIVE_HEARTBEATS_MISSED` (default: 10 s and 5, the server's).
    pub fn connect_heartbeat(mut self, interval: Duration, misses: u32) -> Self {
        self.connect.heartbeat_interval = interval.max(Duration::from_millis(1));
        self.connect.heartbeat_misses = misses.max(1);
        self
    }

    /// How long a connect worker holds a request without extending its lease, and the
    /// extension interval sent to workers (default: 2 min and 30 s, the server's). A request
    /// whose lease runs out fails and is retried like any failed request.
    pub fn connect_lease(mut self, duration: Duration, extend_interval: Duration) -> Self {
        self.connect.lease_duration = duration;
        self.connect.extend_lease_interval = extend_interval.max(Duration::from_millis(1));
        self
    }

    /// How long a request for a connect app waits for a ready worker before that attempt
    /// fails with `connect_no_healthy_connection` (default 10 s), and how long a drained
    /// connection has to close after `GATEWAY_CLOSING` (default 5 s).
    pub fn connect_waits(mut self, worker_wait: Duration, drain_timeout: Duration) -> Self {
        self.connect.worker_wait = worker_wait;
        self.connect.drain_ack_timeout = drain_timeout;
        self
    }

    /// Keep events and runs in this directory (created if missing) so that a restarted
    /// executor carries on where the last one stopped: received events still deduplicate by id,
    /// finished runs stay in the history, and every unfinished run resumes from its last
    /// memoized step as soon as its app syncs again (sleeps and waits keep their deadlines).
    /// A step that was in flight when the process died runs again, as it would after a lost
    /// request on the real server, so its side effects need an idempotency key.
    ///
    /// The executor holds the directory exclusively until it (its last clone) is dropped:
    /// [`build`](Self::build) fails with [`ExecutorError::StateDirInUse`] while another
    /// executor, in this process or another, has it, and with [`ExecutorError::StateVersion`]
    /// if a newer executor wrote it.
    ///
    /// Memory stays bounded however many runs the directory holds: only unfinished runs, the
    /// newest finished ones and the newest events stay in memory
    /// ([`max_finished_runs_in_memory`](Self::max_finished_runs_in_memory),
    /// [`max_events_in_memory`](Self::max_events_in_memory)); older ones are read back from
    /// the store when asked for by id ([`Executor::run`], `GET /v1/runs/{id}`,
    /// `GET /v1/events/{id}` and `/runs`, the dashboard's run page). Listings
    /// ([`Executor::runs`], [`Executor::events`], `GET /v1/runs`, the dashboard's lists and
    /// figures) show what is in memory.
    ///
    /// Default: none, everything stays in memory.
    pub fn state_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// With a [`state_dir`](Self::state_dir): how many finished runs stay in memory (the
    /// newest; a few more are let in before the oldest leave, so memory is trimmed now and then,
    /// not after every run). Unfinished runs always stay. Without a state directory nothing
    /// leaves memory and this has no effect.
    ///
    /// Default: [`DEFAULT_FINISHED_RUNS_IN_MEMORY`].
    ///
    /// ```
    /// # fn main() -> Result<(), inngest_executor::ExecutorError> {
    /// let dir = std::env::temp_dir().join(format!("doc-window-{}", std::process::id()));
    /// let executor = inngest_executor::Executor::builder()
    ///     .state_dir(&dir)
    ///     .max_finished_runs_in_memory(100)
    ///     .max_events_in_memory(500)
    ///     .build()?;
    /// # drop(executor);
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_finished_runs_in_memory(mut self, n: usize) -> Self {
        self.window.finished_runs = n;
        self
    }

    /// With a [`state_dir`](Self::state_dir): how many events stay in memory (the newest).
    /// An older event's id still deduplicates (the store is asked). Without a state directory
    /// nothing leaves memory and this has no effect.
    ///
    /// Default: [`DEFAULT_EVENTS_IN_MEMORY`].
    pub fn max_events_in_memory(mut self, n: usize) -> Self {
        self.window.events = n;
        self
    }

    /// Builds the executor.
    pub fn build(self) -> Result<Executor, ExecutorError> {
        let signing_key = match self.signing_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => Some(
                inngest_protocol::signature::SigningKey::parse(k)
                    .map_err(|e| ExecutorError::InvalidSigningKey(e.to_string()))?,
            ),
            _ => None,
        };
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let store = match &self.state_dir {
            Some(dir) => Some(persist::Store::open(dir, self.window)?),
            None => None,
        };
        let settings = Settings {
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            signing_key,
            event_key: self.event_key.filter(|k| !k.is_empty()),
            backoff: self.backoff,
            max_inline_state: self.max_inline_state,
            request_timeout: self.request_timeout,
            connect: self.connect,
        };
        Ok(Executor {
            inner: Arc::new(Inner::new(settings, http, gateway::client(), store)),
        })
    }
}

impl Executor {
    /// Starts a builder with the defaults: real time, no keys, exponential backoff from 1 s.
    pub fn builder() -> ExecutorBuilder {
        ExecutorBuilder {
            clock: None,
            signing_key: None,
            event_key: None,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                max: Duration::from_secs(600),
            },
            max_inline_state: DEFAULT_MAX_INLINE_STATE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            state_dir: None,
            window: persist::Window {
                finished_runs: DEFAULT_FINISHED_RUNS_IN_MEMORY,
                events: DEFAULT_EVENTS_IN_MEMORY,
            },
            connect: connect::GatewayConfig::default(),
        }
    }

    /// The executor's clock.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.settings.clock.clone()
    }

    /// The HTTP API: the Event API, `/fn/register`, `/v0/runs/…` and the run history.
    ///
    /// | route | purpose |
    /// |---|---|
    /// | `POST /e/{key}` | Event API: one event or an array; `{"ids": […], "status": 200}` |
    /// | `POST /fn/register` | out-of-band sync from an SDK |
    /// | `GET /v0/runs/{id}/actions`, `GET /v0/runs/{id}/batch` | run state for `use_api` |
    /// | `GET /v1/events`, `GET /v1/events/{id}` | received events |
    /// | `GET /v1/events/{id}/runs` | runs of an event (dev server shape) |
    /// | `GET /v1/runs`, `GET /v1/runs/{id}` | runs (dev server shape) |
    /// | `DELETE /v1/runs/{id}` | cancel a run |
    /// | `GET /v1/runs/{id}/steps`, `GET /v1/runs/{id}/history` | steps with timings, history |
    /// | `GET /v1/apps`, `GET /v1/apps/{app}/functions` | synced apps and functions |
    /// | `POST /invoke/{function id}` | invoke a function directly |
    /// | `POST /v1/checkpoint/{run id}/async` | steps an SDK ran inline (checkpointing) |
    /// | `GET /health` | health check |
    /// | `GET /`, `/runs`, `/runs/{id}`, `/events` | the run dashboard (HTML, see below) |
    ///
    /// The dashboard is a local development UI like the one of `inngest dev`: `/` lists the
    /// synced apps and functions (triggers, crons with their next firing time, flow control,
    /// error rate and p50/p95 duration of the runs that ended in the last hour), `/runs` the
    /// runs newest first (`?function=<id>&status=<status>&page=<n>`, updating live), `/runs/{id}`
    /// one run (event payload, step waterfall, retries, output or error, a Cancel button) and
    /// `/events` the events with the runs they started and the flow-control skips. With a
    /// signing key set it is behind the same bearer check as `/v1`.
    pub fn router(&self) -> axum::Router {
        http::router(self.inner.clone())
    }

    /// Serves [`Executor::router`] on `listener` until the task is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Syncs the app at `url` like the dev server: `PUT url` with `{"url": url}` and
    /// `X-Inngest-Server-Kind: dev` (signed when a key is set); the app then registers its
    /// functions with `POST /fn/register` on this executor, so the app's API base URL must point
    /// here.
    pub async fn register_app(&self, url: &str) -> Result<AppView, SyncError> {
        self.inner.sync_app(url, false).await.map(|d| d.view())
    }

    /// Syncs the app at `url` in-band: `PUT` with `X-Inngest-Sync-Kind: in_band`; the functions
    /// are read from the (signature-checked, when keyed) answer.
    pub async fn register_app_in_band(&self, url: &str) -> Result<AppView, SyncError> {
        self.inner.sync_app(url, true).await.map(|d| d.view())
    }

    /// Registers an app from a `/fn/register` payload directly, without HTTP.
    pub fn register(&self, payload: &Value) -> Result<AppView, SyncError> {
        self.inner
            .register(payload)
            .map(|(d, _)| d.view())
            .map_err(|e| SyncError::Invalid(e.join("; ")))
    }

    /// The synced apps.
    pub fn apps(&self) -> Vec<AppView> {
        self.inner
            .lock()
            .apps
            .values()
            .map(|a| a.def.view())
            .collect()
    }

    /// Accepts one event as the Event API would; returns its id.
    pub async fn send(&self, event: impl Serialize) -> Result<String, ExecutorError> {
        let v =
            serde_json::to_value(event).map_err(|e| ExecutorError::InvalidEvent(e.to_string()))?;
        let mut ids = self.inner.ingest(vec![v], None)?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Accepts several events; returns their ids in order.
    pub async fn send_many<T: Serialize>(
        &self,
        events: impl IntoIterator<Item = T>,
    ) -> Result<Vec<String>, ExecutorError> {
        let values = events
            .into_iter()
            .map(|e| {
                serde_json::to_value(e).map_err(|e| ExecutorError::InvalidEvent(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.inner.ingest(values, None)
    }

    /// A snapshot of one run.
    pub fn run(&self, run_id: &str) -> Option<RunView> {
        self.inner.lock().run_view(run_id)
    }

    /// Snapshots of every run in memory, oldest first: every run, unless a
    /// [`state_dir`](ExecutorBuilder::state_dir) lets the oldest finished ones leave memory
    /// ([`ExecutorBuilder::max_finished_runs_in_memory`]; [`Executor::run`] still finds them).
    pub fn runs(&self) -> Vec<RunView> {
        self.inner.run_views()
    }

    /// Runs triggered by an event (its id as returned by the Event API, or the `id` it was sent
    /// with), oldest first.
    pub fn runs_for_event(&self, event_id: &str) -> Vec<RunView> {
        self.inner.lock().run_views_of_event(event_id)
    }

    /// Every event received or emitted, in order (including `inngest/…` internal events); with a
    /// [`state_dir`](ExecutorBuilder::state_dir), the newest ones
    /// ([`ExecutorBuilder::max_events_in_memory`]).
    pub fn events(&self) -> Vec<Value> {
        self.inner
            .lock()
            .events
            .iter()
            .map(|e| e.event.clone())
            .collect()
    }

    /// Events that started no run of a function because of flow control (idempotency, rate
    /// limit, debounce, singleton `skip`), oldest first. Also served as
    /// `GET /v1/events/{id}/skips`.
    pub fn skipped(&self) -> Vec<SkipView> {
        self.inner.lock().flow.skipped().to_vec()
    }

    /// Waits (real time) until the run has ended.
    pub async fn wait_for_run(
        &self,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunView, ExecutorError> {
        self.wait_for(run_id, timeout, |r| r.status.is_terminal())
            .await
    }

    /// Waits (real time) until `predicate` holds for the run.
    pub async fn wait_for(
        &self,
        run_id: &str,
        timeout: Duration,
        mut predicate: impl FnMut(&RunView) -> bool,
    ) -> Result<RunView, ExecutorError> {
        if self.run(run_id).is_none() {
            return Err(ExecutorError::RunNotFound(run_id.to_owned()));
        }
        self.inner
            .wait_until(timeout, |st| st.run_view(run_id).filter(|v| predicate(v)))
            .await
            .ok_or_else(|| ExecutorError::Timeout {
                what: format!("run `{run_id}`"),
                timeout,
            })
    }

    /// Waits (real time) until the event has started a run (in any state); returns its first run.
    pub async fn wait_for_first_run_of(
        &self,
        event_id: &str,
        timeout: Duration,
    ) -> Result<RunView, ExecutorError> {
        self.inner
            .wait_until(timeout, |st| match st.runs_of_event(event_id).first() {
                Some(run) => Some(run.view()),
                None => st.run_views_of_event(event_id).into_iter().next(),
            })
            .await
            .ok_or_else(|| ExecutorError::Timeout {
                what: format!("a run of event `{event_id}`"),
                timeout,
            })
    }

    /// Waits (real time) until `count` runs of the event exist and have all ended.
    pub async fn wait_for_runs_of(
        &self,
        event_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RunView>, ExecutorError> {
        self.inner
            .wait_until(timeout, |st| {
                let in_memory = st.runs_of_event(event_id);
                if st.archive.is_none() {
                    // Nothing is elsewhere: decide on the runs themselves, copy only when done.
                    return (in_memory.len() >= count
                        && in_memory.iter().all(|r| r.status.is_terminal()))
                    .then(|| in_memory.into_iter().map(|r| r.view()).collect());
                }
                let runs = st.run_views_of_event(event_id);
                (runs.len() >= count && runs.iter().all(|r| r.status.is_terminal())).then_some(runs)
            })
            .await
            .ok_or_else(|| ExecutorError::Timeout {
                what: format!("{count} run(s) of event `{event_id}`"),
                timeout,
            })
    }

    /// Waits (real time) until at least `count` runs of a function (composite id) exist and have
    /// all ended; returns them oldest first. Handy for cron and `on_failure` runs.
    pub async fn wait_for_runs_of_function(
        &self,
        function_id: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<RunView>, ExecutorError> {
        self.inner
            .wait_until(timeout, |st| {
                let runs: Vec<_> = st
                    .run_order
                    .iter()
                    .filter_map(|id| st.runs.get(id))
                    .filter(|r| r.function.slug == function_id)
                    .collect();
                (runs.len() >= count && runs.iter().all(|r| r.status.is_terminal()))
                    .then(|| runs.into_iter().map(|r| r.view()).collect())
            })
            .await
            .ok_or_else(|| ExecutorError::Timeout {
                what: format!("{count} run(s) of function `{function_id}`"),
                timeout,
            })
    }

    /// The connect workers connected now.
    pub fn connections(&self) -> Vec<ConnectionView> {
        self.inner.connect.connections()
    }

    /// Connect connections that ended, oldest first, with the reason each ended.
    pub fn connect_closed(&self) -> Vec<ClosedConnection> {
        self.inner.connect.closed()
    }

    /// Waits until a connect worker serving `app` is ready to take requests.
    pub async fn wait_for_connect_worker(
        &self,
        app: &str,
        timeout: Duration,
    ) -> Result<ConnectionView, ExecutorError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ready = self
                .inner
                .connect
                .connections()
                .into_iter()
                .find(|c| c.status == "READY" && c.apps.iter().any(|a| a == app));
            if let Some(c) = ready {
                return Ok(c);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ExecutorError::Timeout {
                    what: format!("a connect worker for app `{app}`"),
                    timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Drains the connect gateway's connections as a gateway being redeployed does: each gets
    /// `GATEWAY_CLOSING`, takes no new requests, and is closed (1001,
    /// `connect_gateway_closing`) unless its worker closes it within the drain timeout.
    /// The gateway keeps accepting connections, so workers reconnect to it. Returns how many
    /// connections were drained.
    pub fn drain_connections(&self) -> usize {
        self.inner.connect.broadcast(|| connect::Outbound::Drain)
    }

    /// Drops every connect socket without a close frame, as a broken network would (for
    /// tests). Requests the workers acked stay theirs until their leases run out.
    pub fn drop_connections(&self) -> usize {
        self.inner.connect.broadcast(|| connect::Outbound::Drop)
    }

    /// Sends raw bytes as one binary frame on a connect connection (for tests of how workers
    /// treat bad frames). `false`: no such connection.
    pub fn send_connect_frame(&self, connection_id: &str, bytes: Vec<u8>) -> bool {
        self.inner
            .connect
            .send_to(connection_id, connect::Outbound::Frame(bytes))
    }

    /// The realtime messages published to `channel` (every channel when `None`), oldest
    /// first, each as subscribers receive it (`{"kind": "data", "channel", "topic", "data",
    /// "run_id"?, "fn_slug"?, "created_at"}`). The last 10,000 are kept.
    pub fn realtime_messages(&self, channel: Option<&str>) -> Vec<Value> {
        self.inner.realtime.messages(channel)
    }

    /// Cancels a running run. Returns whether it was running.
    pub fn cancel_run(&self, run_id: &str) -> bool {
        self.inner.cancel(run_id, "cancelled through the API")
    }

    /// Mocks a step: runs of `function_id` (composite id `<app id>-<function id>`) created from
    /// now on start with `{"data": output}` memoized for the step `step_id` (the user's id; use
    /// `id:n` for the n-th repeat), so the app never runs it.
    pub fn mock_step(&self, function_id: &str, step_id: &str, output: impl Serialize) {
        let value = serde_json::to_value(output).unwrap_or(Value::Null);
        let hash = inngest_protocol::step_id::hash_id(step_id);
        self.inner
            .lock()
            .mocks
            .entry(function_id.to_owned())
            .or_default()
            .insert(
                hash,
                (step_id.to_owned(), serde_json::json!({ "data": value })),
            );
    }

    /// Removes every step mock.
    pub fn clear_mocks(&self) {
        self.inner.lock().mocks.clear();
    }

    /// Stops cron schedules. Runs in progress continue; dropping every clone of the executor
    /// stops the rest.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }
}

/// The crate README's examples, compiled as doc tests so the crates.io page cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
