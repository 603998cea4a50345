//! Testing functions end to end, in-process: [`TestHarness`] starts a local [`Executor`] and your
//! app's serve `Router` on loopback ports, points an [`Inngest`] client at the executor (so
//! `client.send` and `step.send_event` reach it), syncs the app over HTTP exactly like the dev
//! server does, and gives you events in, runs out — with a [`VirtualClock`] for time skipping
//! and step mocks.
//!
//! ```
//! use std::time::Duration;
//! use inngest_sdk::testing::{RunStatus, TestHarness};
//! use inngest_sdk::{Ctx, Event, Function, Step, Trigger};
//! use serde_json::{json, Value};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let greet = Function::new("greet")
//!     .trigger(Trigger::event("demo/hello"))
//!     .handler(|ctx: Ctx<Value>, step: Step| async move {
//!         let name: String = step
//!             .run("lookup", || async { Ok("Ada".to_owned()) })
//!             .await?;
//!         step.sleep("pause", Duration::from_secs(86_400)).await;
//!         Ok(json!({ "hello": name, "n": ctx.event.data["n"] }))
//!     });
//! let h = TestHarness::start("demo", [greet]).await.unwrap();
//! h.mock_step("greet", "lookup", "Grace"); // the app never runs `lookup`
//! let id = h.send(Event::new("demo/hello", json!({"n": 1}))).await;
//! let run = h.wait_for_paused_run_of(&id).await; // sleeping for a day
//! h.advance(Duration::from_secs(86_400));
//! let run = h.wait_for_run(&run.id).await;
//! assert_eq!(run.status, RunStatus::Completed);
//! assert_eq!(run.output, Some(json!({"hello": "Grace", "n": 1})));
//! # }
//! ```
//!
//! With feature `connect`, [`TestHarnessBuilder::connect`] runs the app as a connect worker
//! instead: the worker dials the executor's connect gateway and the runs go over the socket, so
//! the same tests exercise the connect transport ([`TestHarness::connect_worker`]).
//!
//! The clock starts at the current time and does not move unless told to
//! ([`TestHarness::advance`], [`TestHarness::skip_to_next`]), or on its own with
//! [`TestHarnessBuilder::auto_advance`] (then every sleep, timeout and retry delay completes as
//! soon as it starts: convenient for long sleeps, but a `wait_for_event` then times out at once).
//! Retries happen immediately by default ([`TestHarnessBuilder::retry_interval`]). Waits on runs
//! use real time and panic after [`TestHarnessBuilder::timeout`] (10 s by default) with the run's
//! history, which is what a failing test should show.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::task::JoinHandle;

use inngest_executor::{AppView, Executor, ExecutorBuilder, ExecutorError, SyncError};

use crate::client::{Inngest, SendError};
use crate::config::ConfigError;
use crate::event::IntoEvent;
use crate::function::Function;
use crate::middleware::Middleware;
use crate::serve::ServeError;
/// The local executor crate, for what the harness does not wrap (its builder, REST router, …).
pub use inngest_executor as executor;
pub use inngest_executor::clock::VirtualClock;
pub use inngest_executor::{HistoryEntry, HistoryKind, RunStatus, RunView, StepStatus, StepView};

/// Event key the harness uses when a signing key is set but no event key is.
pub const TEST_EVENT_KEY: &str = "test-event-key";

/// Why a harness could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// Binding a loopback port failed.
    #[error("could not bind a loopback port: {0}")]
    Io(#[from] std::io::Error),
    /// The client configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The functions cannot be served.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The executor configuration is invalid.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// The app could not be synced.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The connect worker could not start (feature `connect`).
    #[cfg(feature = "connect")]
    #[error(transparent)]
    Connect(crate::connect::ConnectError),
}

type RouterFn = Box<dyn FnOnce(&Inngest, Vec<Function>) -> Result<Router, ServeError> + Send>;

/// Options of a [`TestHarness`].
#[must_use = "call .start().await"]
pub struct TestHarnessBuilder {
    app_id: String,
    functions: Vec<Function>,
    signing_key: Option<String>,
    event_key: Option<String>,
    retry_interval: Duration,
    start: Option<DateTime<Utc>>,
    auto_advance: bool,
    timeout: Duration,
    in_band: bool,
    checkpointing: bool,
    app_path: String,
    router: Option<RouterFn>,
    mocks: Vec<(String, String, Value)>,
    configure: Option<ConfigureFn>,
    middleware: Vec<Arc<dyn Middleware>>,
    #[cfg(feature = "connect")]
    connect: bool,
}

type ConfigureFn = Box<dyn FnOnce(ExecutorBuilder) -> ExecutorBuilder + Send>;

impl std::fmt::Debug for TestHarnessBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHarnessBuilder")
            .field("app_id", &self.app_id)
            .field("functions", &self.functions.len())
            .finish_non_exhaustive()
    }
}

impl TestHarnessBuilder {
    /// Adds a function to the app.
    pub fn function(mut self, f: impl Into<Function>) -> Self {
        self.functions.push(f.into());
        self
    }

    /// Registers a middleware on the harness's client, as
    /// [`InngestBuilder::middleware`](crate::client::InngestBuilder::middleware) does on yours:
    /// it runs for every function of the app and for [`TestHarness::client`]'s sends.
    pub fn middleware(mut self, m: impl Middleware) -> Self {
        self.middleware.push(Arc::new(m));
        self
    }

    /// Adds functions to the app.
    pub fn functions(mut self, fs: impl IntoIterator<Item: Into<Function>>) -> Self {
        self.functions.extend(fs.into_iter().map(Into::into));
        self
    }

    /// Runs signed: the executor signs its requests and checks bearer tokens, and the app runs
    /// in cloud mode with the same key (so it verifies every signature).
    pub fn signing_key(mut self, key: impl Into<String>) -> Self {
        self.signing_key = Some(key.into());
        self
    }

    /// The event key the executor requires and the client sends.
    pub fn event_key(mut self, key: impl Into<String>) -> Self {
        self.event_key = Some(key.into());
        self
    }

    /// Fixed delay before retries (default zero: retry at once).
    pub fn retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Where the virtual clock starts (default: now).
    pub fn start_time(mut self, t: DateTime<Utc>) -> Self {
        self.start = Some(t);
        self
    }

    /// Let the virtual clock jump to every deadline as soon as something waits for it.
    pub fn auto_advance(mut self, on: bool) -> Self {
        self.auto_advance = on;
        self
    }

    /// How long (real time) the `wait_*` helpers wait before panicking (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Serve the app with checkpointing on ([`crate::client::InngestBuilder::checkpointing`]).
    pub fn checkpointing(mut self, on: bool) -> Self {
        self.checkpointing = on;
        self
    }

    /// Sync in-band (`X-Inngest-Sync-Kind: in_band`) instead of out-of-band.
    pub fn in_band_sync(mut self, on: bool) -> Self {
        self.in_band = on;
        self
    }

    /// Serve the app with your own router (built from the harness's client and the functions),
    /// mounted at `path` (e.g. to wrap the serve router in middleware).
    pub fn app_router(
        mut self,
        path: impl Into<String>,
        f: impl FnOnce(&Inngest, Vec<Function>) -> Result<Router, ServeError> + Send + 'static,
    ) -> Self {
        self.app_path = path.into();
        self.router = Some(Box::new(f));
        self
    }

    /// Adjusts the executor's options (applied after the harness's own: clock, keys, retry
    /// interval), e.g. `|b| b.max_inline_state_bytes(1024)`.
    pub fn configure_executor(
        mut self,
        f: impl FnOnce(ExecutorBuilder) -> ExecutorBuilder + Send + 'static,
    ) -> Self {
        self.configure = Some(Box::new(f));
        self
    }

    /// Mocks a step of a function (its own id, without the app prefix) for every run.
    pub fn mock_step(mut self, function: &str, step_id: &str, output: impl Serialize) -> Self {
        let v = serde_json::to_value(output).unwrap_or(Value::Null);
        self.mocks
            .push((function.to_owned(), step_id.to_owned(), v));
        self
    }

    /// Runs the app as a connect worker (instance id `test-harness`) that dials the
    /// executor's gateway, instead of serving it over HTTP (feature `connect`). The harness
    /// starts once the worker is connected and its app synced; [`TestHarness::app_url`] is then
    /// the app's connect URL (`ws://connect?app_name=<app>`).
    #[cfg(feature = "connect")]
    pub fn connect(mut self, on: bool) -> Self {
        self.connect = on;
        self
    }

    /// Starts the executor and the app, and syncs the app.
    pub async fn start(self) -> Result<TestHarness, HarnessError> {
        let clock = match self.start {
            Some(t) => VirtualClock::new(t),
            None => VirtualClock::default(),
        };
        clock.set_auto_advance(self.auto_advance);
        let event_key = match (&self.event_key, &self.signing_key) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(_)) => Some(TEST_EVENT_KEY.to_owned()),
            (None, None) => None,
        };
        let mut builder = Executor::builder()
            .clock(Arc::new(clock.clone()))
            .signing_key(self.signing_key.clone())
            .event_key(event_key.clone())
            .retry_interval(self.retry_interval);
        if let Some(f) = self.configure {
            builder = f(builder);
        }
        let executor = builder.build()?;
        let mut tasks = Vec::new();

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let executor_url = format!("http://{}", listener.local_addr()?);
        let server = executor.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.serve(listener).await {
                tracing::error!(error = %e, "test executor stopped");
            }
        }));

        let mut client = Inngest::builder(self.app_id.clone())
            .base_url(executor_url.clone())
            .checkpointing(self.checkpointing);
        for m in self.middleware {
            client = client.middleware_arc(m);
        }
        client = match &self.signing_key {
            Some(k) => client.dev(false).signing_key(k.clone()),
            None => client.dev(true),
        };
        if let Some(k) = &event_key {
            client = client.event_key(k.clone());
        }
        let client = client.build()?;

        for (function, step, value) in &self.mocks {
            executor.mock_step(&format!("{}-{function}", self.app_id), step, value.clone());
        }
        #[cfg(feature = "connect")]
        if self.connect {
            let worker = start_worker(&client, self.functions).await?;
            executor
                .wait_for_connect_worker(&self.app_id, self.timeout)
                .await?;
            let app_url = format!("ws://connect?app_name={}", self.app_id);
            return Ok(TestHarness {
                executor,
                client,
                clock,
                app_id: self.app_id,
                executor_url,
                app_url,
                timeout: self.timeout,
                in_band: self.in_band,
                tasks,
                worker: Some(worker),
            });
        }
        let router = match self.router {
            Some(f) => f(&client, self.functions)?,
            None => crate::serve::axum::router(&client, self.functions)?,
        };
        let app_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let app_url = format!("http://{}{}", app_listener.local_addr()?, self.app_path);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(app_listener, router).await {
                tracing::error!(error = %e, "test app stopped");
            }
        }));

        let harness = TestHarness {
            executor,
            client,
            clock,
            app_id: self.app_id,
            executor_url,
            app_url,
            timeout: self.timeout,
            in_band: self.in_band,
            tasks,
            #[cfg(feature = "connect")]
            worker: None,
        };
        harness.resync().await?;
        Ok(harness)
    }
}

/// The harness's connect worker, connected.
#[cfg(feature = "connect")]
async fn start_worker(
    client: &Inngest,
    functions: Vec<Function>,
) -> Result<crate::connect::WorkerHandle, HarnessError> {
    let worker = crate::connect::Worker::new(client, functions)
        .map_err(|e| match e {
            crate::connect::ConnectError::Serve(e) => HarnessError::Serve(e),
            other => HarnessError::Connect(other),
        })?
        .instance_id("test-harness")
        .handle_shutdown_signals(false)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .start()
        .map_err(HarnessError::Connect)?;
    worker.ready().await;
    Ok(worker)
}

/// An executor and an app running in-process, synced. Dropping it stops both.
pub struct TestHarness {
    executor: Executor,
    client: Inngest,
    clock: VirtualClock,
    app_id: String,
    executor_url: String,
    app_url: String,
    timeout: Duration,
    in_band: bool,
    tasks: Vec<JoinHandle<()>>,
    #[cfg(feature = "connect")]
    worker: Option<crate::connect::WorkerHandle>,
}

impl std::fmt::Debug for TestHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHarness")
            .field("app_id", &self.app_id)
            .field("executor_url", &self.executor_url)
            .field("app_url", &self.app_url)
            .finish_non_exhaustive()
    }
}

impl Drop for TestHarness {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        #[cfg(feature = "connect")]
        if let Some(w) = &self.worker {
            w.abort();
        }
        self.executor.shutdown();
    }
}

impl TestHarness {
    /// Options; finish with [`TestHarnessBuilder::start`].
    pub fn builder(app_id: impl Into<String>) -> TestHarnessBuilder {
        TestHarnessBuilder {
            app_id: app_id.into(),
            functions: Vec::new(),
            signing_key: None,
            event_key: None,
            retry_interval: Duration::ZERO,
            start: None,
            auto_advance: false,
            timeout: Duration::from_secs(10),
            in_band: false,
            checkpointing: false,
            app_path: crate::serve::axum::DEFAULT_PATH.to_owned(),
            router: None,
            mocks: Vec::new(),
            configure: None,
            middleware: Vec::new(),
            #[cfg(feature = "connect")]
            connect: false,
        }
    }

    /// Starts an app `app_id` serving `functions`, with the defaults.
    pub async fn start(
        app_id: impl Into<String>,
        functions: impl IntoIterator<Item: Into<Function>>,
    ) -> Result<TestHarness, HarnessError> {
        TestHarness::builder(app_id)
            .functions(functions)
            .start()
            .await
    }

    /// The executor.
    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// The client wired to the executor (dev mode, or cloud mode with the signing key).
    pub fn client(&self) -> &Inngest {
        &self.client
    }

    /// The virtual clock.
    pub fn clock(&self) -> &VirtualClock {
        &self.clock
    }

    /// The executor's base URL (`http://127.0.0.1:<port>`).
    pub fn executor_url(&self) -> &str {
        &self.executor_url
    }

    /// The app's serve URL (`http://127.0.0.1:<port>/api/inngest`).
    pub fn app_url(&self) -> &str {
        &self.app_url
    }

    /// The composite id of one of the app's functions.
    pub fn function_id(&self, function: &str) -> String {
        format!("{}-{function}", self.app_id)
    }

    /// The connect worker, when the app runs over connect ([`TestHarnessBuilder::connect`]).
    #[cfg(feature = "connect")]
    pub fn connect_worker(&self) -> Option<&crate::connect::WorkerHandle> {
        self.worker.as_ref()
    }

    /// Syncs the app again (over connect: the app as the worker's connection synced it).
    pub async fn resync(&self) -> Result<AppView, SyncError> {
        #[cfg(feature = "connect")]
        if self.worker.is_some() {
            return self
                .executor
                .apps()
                .into_iter()
                .find(|a| a.id == self.app_id)
                .ok_or(SyncError::NotRegistered);
        }
        if self.in_band {
            self.executor.register_app_in_band(&self.app_url).await
        } else {
            self.executor.register_app(&self.app_url).await
        }
    }

    /// Sends an event through the client (over HTTP, to the Event API); returns its id.
    ///
    /// # Panics
    /// If the event API refuses it; use [`TestHarness::try_send`] to see the error.
    /// `event` is typed (`OrderCreated { .. }`) or an untyped [`Event`](struct@crate::Event).
    pub async fn send(&self, event: impl IntoEvent) -> String {
        match self.try_send(event).await {
            Ok(id) => id,
            Err(e) => panic!("sending the event failed: {e}"),
        }
    }

    /// Sends an event through the client; returns its id or the error.
    pub async fn try_send(&self, event: impl IntoEvent) -> Result<String, SendError> {
        let mut ids = self.client.send(event).await?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// Mocks a step of a function (its own id, without the app prefix) for runs started from now
    /// on: the executor memoizes `{"data": output}` for it, so the app never runs it.
    pub fn mock_step(&self, function: &str, step_id: &str, output: impl Serialize) {
        self.executor
            .mock_step(&self.function_id(function), step_id, output);
    }

    /// Moves the virtual clock forward, firing due sleeps, timeouts, retries and crons.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Jumps the virtual clock to the next pending deadline.
    pub fn skip_to_next(&self) -> Option<DateTime<Utc>> {
        self.clock.skip_to_next()
    }

    /// Waits for the first run of an event to exist (in any state).
    ///
    /// # Panics
    /// After the harness timeout.
    pub async fn first_run_of(&self, event_id: &str) -> RunView {
        let found = self
            .executor
            .wait_for_first_run_of(event_id, self.timeout)
            .await;
        match found {
            Ok(r) => r,
            Err(_) => panic!(
                "no run was started for event `{event_id}` within {:?}; runs: {}",
                self.timeout,
                summary(&self.executor.runs())
            ),
        }
    }

    /// Waits for the first run of an event to end.
    ///
    /// # Panics
    /// After the harness timeout, showing the run's history.
    pub async fn wait_for_run_of(&self, event_id: &str) -> RunView {
        let run = self.first_run_of(event_id).await;
        self.wait_for_run(&run.id).await
    }

    /// Waits for `count` runs of an event to end.
    ///
    /// # Panics
    /// After the harness timeout.
    pub async fn wait_for_runs_of(&self, event_id: &str, count: usize) -> Vec<RunView> {
        match self
            .executor
            .wait_for_runs_of(event_id, count, self.timeout)
            .await
        {
            Ok(r) => r,
            Err(e) => panic!("{e}; runs: {}", summary(&self.executor.runs())),
        }
    }

    /// Waits for a run to end.
    ///
    /// # Panics
    /// After the harness timeout, showing the run's history.
    pub async fn wait_for_run(&self, run_id: &str) -> RunView {
        self.wait_until(run_id, "to end", |r| r.status.is_terminal())
            .await
    }

    /// Waits for a run to be sleeping or waiting (for an event or an invoked function), so that
    /// moving the clock now affects that pause.
    ///
    /// # Panics
    /// After the harness timeout.
    pub async fn wait_for_paused(&self, run_id: &str) -> RunView {
        self.wait_until(run_id, "to pause", RunView::is_paused)
            .await
    }

    /// [`TestHarness::wait_for_paused`] for the first run of an event.
    pub async fn wait_for_paused_run_of(&self, event_id: &str) -> RunView {
        let run = self.first_run_of(event_id).await;
        self.wait_for_paused(&run.id).await
    }

    /// Waits until `predicate` holds for the run.
    ///
    /// # Panics
    /// After the harness timeout, showing the run's history.
    pub async fn wait_until(
        &self,
        run_id: &str,
        what: &str,
        predicate: impl FnMut(&RunView) -> bool,
    ) -> RunView {
        match self
            .executor
            .wait_for(run_id, self.timeout, predicate)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                let detail = self
                    .executor
                    .run(run_id)
                    .map(|r| RunView::describe(&r))
                    .unwrap_or_default();
                panic!("waiting for run `{run_id}` {what}: {e}\n{detail}")
            }
        }
    }
}

fn summary(runs: &[RunView]) -> String {
    let parts: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {} {:?}", r.id, r.function_id, r.status))
        .collect();
    format!("[{}]", parts.join(", "))
}
