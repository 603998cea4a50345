//! Connect: a worker that dials out to Inngest over a WebSocket and receives its executions over
//! it, so the app needs no public endpoint (feature `connect`).
//!
//! A [`Worker`] serves the same functions the same way as [`serve`](crate::serve): each
//! execution request is run by the serve engine ([`ServeHandler`]), so steps, memoized state,
//! checkpointing and errors behave exactly as over HTTP. What differs is the transport:
//!
//! 1. The worker asks the API for a gateway (`POST /v0/connect/start`, with the hashed signing
//!    key in cloud mode, nothing in dev mode) and dials it (`ws://` or `wss://` through rustls).
//! 2. It completes the handshake (`GATEWAY_HELLO`, `WORKER_CONNECT` carrying the app, its
//!    functions, capabilities, instance id and max concurrency, `GATEWAY_CONNECTION_READY`) and
//!    reports ready.
//! 3. Each `GATEWAY_EXECUTOR_REQUEST` is acked at once and run; its lease is extended every
//!    interval while it runs, and its reply (`WORKER_REPLY`) is kept until the gateway acks it.
//! 4. Heartbeats go out every interval; two unanswered ones mean the connection is dead.
//! 5. A lost connection (socket error, missed heartbeats, a bad frame, `GATEWAY_CLOSING`) is
//!    replaced: the worker reconnects with backoff and jitter. Running executions carry on and
//!    their replies go out on the next connection, so a drop loses nothing; the gateway runs a
//!    request again only when the worker's lease on it ran out.
//! 6. [`WorkerHandle::close`], Ctrl-C or SIGTERM drains the worker: `WORKER_PAUSE` (no new
//!    work), the running executions finish and are answered, then the socket closes with
//!    `WORKER_SHUTDOWN`.
//!
//! Choose connect when the worker cannot (or should not) accept inbound HTTP: behind NAT or a
//! firewall, long-running container workers, many instances sharing load; choose
//! [`serve`](crate::serve) for serverless platforms and apps that already expose HTTP.
//!
//! ```no_run
//! use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Inngest::new("shop")?;
//! let hello = Function::new("hello")
//!     .trigger(Trigger::event("shop/hello"))
//!     .handler(|_ctx: Ctx<serde_json::Value>, _step: Step| async move { Ok("hi") });
//! // Runs until Ctrl-C / SIGTERM, then drains.
//! client
//!     .connect([hello])?
//!     .instance_id("worker-1")
//!     .max_concurrency(10)
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

mod backoff;
mod execution;
mod session;
mod socket;
mod start;
mod state;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::client::Inngest;
use crate::config::Mode;
use crate::function::Function;
use crate::serve::{ServeError, ServeHandler};
use backoff::Backoff;
use inngest_protocol::connect::{
    AppConfiguration, AuthData, StartResponse, SystemAttributes, WorkerConnectRequestData,
    CAPABILITIES_JSON, FRAMEWORK,
};
use session::SessionEnd;
use state::{Ctx, WorkerState};

/// `INNGEST_CONNECT_MAX_WORKER_CONCURRENCY`: the default of [`Worker::max_concurrency`].
pub const ENV_MAX_CONCURRENCY: &str = "INNGEST_CONNECT_MAX_WORKER_CONCURRENCY";
/// `INNGEST_CONNECT_GATEWAY_URL`: the default of [`Worker::gateway_url`].
pub const ENV_GATEWAY_URL: &str = "INNGEST_CONNECT_GATEWAY_URL";

/// A connect worker could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The functions cannot be served (invalid or duplicate).
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The gateway URL override is not a `ws://` or `wss://` URL.
    #[error("invalid connect gateway URL {0:?}: expected ws:// or wss://")]
    InvalidGatewayUrl(String),
    /// The instance id is empty.
    #[error("the connect instance id must not be empty")]
    EmptyInstanceId,
}

/// Where a worker's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Setting up the first connection.
    Connecting,
    /// Connected and taking requests.
    Active,
    /// Setting up a connection again after losing one.
    Reconnecting,
    /// Draining: no new work, finishing what runs.
    Closing,
    /// Stopped.
    Closed,
}

/// A connect worker, before it starts. Build with [`Worker::new`] or [`Inngest::connect`].
#[must_use = "call .run() or .start()"]
pub struct Worker {
    handler: ServeHandler,
    instance_id: Option<String>,
    max_concurrency: Option<u32>,
    gateway_url: Option<String>,
    backoff: Backoff,
    handle_signals: bool,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("app_id", &self.handler.client().config().app_id())
            .field("instance_id", &self.instance_id)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl Inngest {
    /// A connect [`Worker`] for these functions (see [`crate::connect`]).
    pub fn connect(
        &self,
        functions: impl IntoIterator<Item: Into<Function>>,
    ) -> Result<Worker, ConnectError> {
        Worker::new(self, functions)
    }
}

impl Worker {
    /// A worker serving `functions` for `client`'s app. The defaults: the instance id is the
    /// host name, the max concurrency comes from [`ENV_MAX_CONCURRENCY`] (none: unlimited), the
    /// gateway is the one the start call names (or [`ENV_GATEWAY_URL`]), reconnects back off
    /// from 1 s to 5 min, and Ctrl-C / SIGTERM drain the worker.
    pub fn new(
        client: &Inngest,
        functions: impl IntoIterator<Item: Into<Function>>,
    ) -> Result<Worker, ConnectError> {
        let handler = ServeHandler::new(client, functions)?;
        let max_concurrency = std::env::var(ENV_MAX_CONCURRENCY)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&n| n > 0);
        Ok(Worker {
            handler,
            instance_id: None,
            max_concurrency,
            gateway_url: std::env::var(ENV_GATEWAY_URL)
                .ok()
                .filter(|u| !u.is_empty()),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(300),
            },
            handle_signals: true,
        })
    }

    /// The instance id the gateway knows this worker by (its capacity is per instance); keep it
    /// stable across restarts of the same worker.
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The most requests the gateway hands this instance at once (`0`: unlimited).
    pub fn max_concurrency(mut self, n: u32) -> Self {
        self.max_concurrency = Some(n).filter(|&n| n > 0);
        self
    }

    /// Dial this gateway instead of the one the start call names (`ws://` or `wss://`).
    pub fn gateway_url(mut self, url: impl Into<String>) -> Self {
        self.gateway_url = Some(url.into());
        self
    }

    /// Reconnect delays: doubling from `initial` up to `max`, each with jitter (a random point
    /// between half and all of it).
    pub fn reconnect_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff {
            initial: initial.max(Duration::from_millis(1)),
            max: max.max(initial),
        };
        self
    }

    /// Whether Ctrl-C and SIGTERM drain the worker (default `true`).
    pub fn handle_shutdown_signals(mut self, on: bool) -> Self {
        self.handle_signals = on;
        self
    }

    /// Starts the worker in the background (inside a tokio runtime) and returns its handle;
    /// [`WorkerHandle::ready`] waits for the first connection.
    pub fn start(self) -> Result<WorkerHandle, ConnectError> {
        if let Some(url) = &self.gateway_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(ConnectError::InvalidGatewayUrl(url.clone()));
            }
        }
        let instance_id = match self.instance_id.clone() {
            Some(id) if id.trim().is_empty() => return Err(ConnectError::EmptyInstanceId),
            Some(id) => id,
            None => default_instance_id(),
        };
        let config = self.handler.client().config();
        let sign = (config.mode() == Mode::Cloud)
            .then(|| config.signing_key().cloned())
            .flatten();
        let ctx = Arc::new(Ctx {
            app_id: config.app_id().to_owned(),
            handler: self.handler.clone(),
            state: WorkerState::new(),
            sign,
        });
        let (status, status_rx) = watch::channel(ConnectionState::Connecting);
        let connection_id = Arc::new(Mutex::new(None));
        if self.handle_signals {
            let ctx = ctx.clone();
            // Registered now, before the task first runs, so a SIGTERM right after `start`
            // already drains instead of killing the process.
            let signals = Signals::register();
            tokio::spawn(async move {
                signals.recv().await;
                tracing::info!("shutdown signal: draining the connect worker");
                ctx.state.shutdown.send_replace(true);
            });
        }
        let supervisor = Supervisor {
            ctx: ctx.clone(),
            instance_id: instance_id.clone(),
            max_concurrency: self.max_concurrency,
            gateway_url: self.gateway_url,
            backoff: self.backoff,
            status,
            connection_id: connection_id.clone(),
        };
        let task = tokio::spawn(supervisor.run());
        Ok(WorkerHandle {
            ctx,
            instance_id,
            status: status_rx,
            connection_id,
            task: Mutex::new(Some(task)),
        })
    }

    /// Runs the worker until it is drained by Ctrl-C or SIGTERM (with
    /// [`handle_shutdown_signals`](Self::handle_shutdown_signals) on); it reconnects for as long
    /// as it runs.
    pub async fn run(self) -> Result<(), ConnectError> {
        let handle = self.start()?;
        handle.closed().await;
        Ok(())
    }
}

/// A running worker.
pub struct WorkerHandle {
    ctx: Arc<Ctx>,
    instance_id: String,
    status: watch::Receiver<ConnectionState>,
    connection_id: Arc<Mutex<Option<String>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for WorkerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHandle")
            .field("instance_id", &self.instance_id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl WorkerHandle {
    /// The instance id the worker connects with.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// The id of the current (or last) connection.
    pub fn connection_id(&self) -> Option<String> {
        self.connection_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where the connection is now.
    pub fn state(&self) -> ConnectionState {
        match *self.status.borrow() {
            ConnectionState::Active if self.ctx.state.shutting_down() => ConnectionState::Closing,
            s => s,
        }
    }

    /// Ids of the requests running now.
    pub fn in_flight(&self) -> Vec<String> {
        self.ctx.state.in_flight_ids()
    }

    /// Waits until the worker is connected and taking requests (`false`: it closed first).
    pub async fn ready(&self) -> bool {
        let mut rx = self.status.clone();
        rx.wait_for(|s| matches!(s, ConnectionState::Active | ConnectionState::Closed))
            .await
            .map(|s| *s == ConnectionState::Active)
            .unwrap_or(false)
    }

    /// Starts draining: no new work, the running executions finish and are answered, then the
    /// connection closes. Returns at once; [`closed`](Self::closed) waits for the end.
    pub fn close(&self) {
        self.ctx.state.shutdown.send_replace(true);
    }

    /// Waits until the worker has stopped.
    pub async fn closed(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        match task {
            Some(task) => {
                let _ = task.await;
            }
            None => {
                let mut rx = self.status.clone();
                let _ = rx.wait_for(|s| *s == ConnectionState::Closed).await;
            }
        }
    }

    /// Stops the worker at once, without draining: the socket drops, and requests it holds go
    /// to another worker once their leases run out. Prefer [`shutdown`](Self::shutdown).
    pub fn abort(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            task.abort();
        }
    }

    /// [`close`](Self::close), then [`closed`](Self::closed).
    pub async fn shutdown(&self) {
        self.close();
        self.closed().await;
    }
}

/// The reconnect loop.
struct Supervisor {
    ctx: Arc<Ctx>,
    instance_id: String,
    max_concurrency: Option<u32>,
    gateway_url: Option<String>,
    backoff: Backoff,
    status: watch::Sender<ConnectionState>,
    connection_id: Arc<Mutex<Option<String>>>,
}

impl Supervisor {
    async fn run(self) {
        let mut attempt = 0u32;
        let mut exclude: Vec<String> = Vec::new();
        let mut use_fallback = false;
        let mut connected_before = false;
        loop {
            if self.ctx.state.shutting_down() && self.ctx.state.idle() {
                break;
            }
            let state = if self.ctx.state.shutting_down() {
                ConnectionState::Closing
            } else if connected_before {
                ConnectionState::Reconnecting
            } else {
                ConnectionState::Connecting
            };
            self.status.send_replace(state);
            let mut delay = None;
            match self.connect(&exclude, use_fallback).await {
                Ok((ws, intervals, start)) => {
                    attempt = 0;
                    connected_before = true;
                    exclude.retain(|g| g != &start.gateway_group);
                    *self.connection_id.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(start.connection_id.clone());
                    self.status.send_replace(if self.ctx.state.shutting_down() {
                        ConnectionState::Closing
                    } else {
                        ConnectionState::Active
                    });
                    tracing::info!(connection = %start.connection_id, instance = %self.instance_id, "connect worker connected");
                    let end =
                        session::run(self.ctx.clone(), ws, intervals, &start.connection_id).await;
                    match end {
                        SessionEnd::Shutdown => break,
                        SessionEnd::GatewayClosing => {
                            tracing::info!(connection = %start.connection_id, "gateway draining: moving to another connection");
                            exclude.push(start.gateway_group);
                            delay = Some(self.backoff.after_drain());
                        }
                        SessionEnd::Lost(reason) => {
                            tracing::warn!(connection = %start.connection_id, reason = %reason, "connect connection lost: reconnecting");
                            attempt = 1;
                        }
                    }
                }
                Err(e) => {
                    attempt = attempt.saturating_add(1);
                    if matches!(e, ConnectFailure::Start(start::StartError::Auth(_))) {
                        use_fallback = !use_fallback;
                    }
                    tracing::warn!(error = %e, attempt, "could not connect to the Inngest gateway");
                }
            }
            let delay = delay.unwrap_or_else(|| self.backoff.delay(attempt.max(1)));
            self.wait(delay).await;
        }
        tracing::info!(instance = %self.instance_id, "connect worker closed");
        self.status.send_replace(ConnectionState::Closed);
    }

    /// Sleeps `delay`, or less once a shutdown leaves nothing to deliver.
    async fn wait(&self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        let mut shutdown = self.ctx.state.shutdown.subscribe();
        loop {
            if self.ctx.state.shutting_down() && self.ctx.state.idle() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                _ = shutdown.changed() => {}
                () = self.ctx.state.settled.notified() => {}
            }
        }
    }

    /// Start call, dial, handshake.
    async fn connect(
        &self,
        exclude: &[String],
        use_fallback: bool,
    ) -> Result<
        (
            socket::Ws,
            inngest_protocol::connect::ReadyIntervals,
            StartResponse,
        ),
        ConnectFailure,
    > {
        let client = self.ctx.handler.client();
        let config = client.config();
        let key = if use_fallback {
            config.signing_key_fallback().or(config.signing_key())
        } else {
            config.signing_key()
        };
        let start = start::start(
            client.http(),
            config.api_origin(),
            key.map(|k| k.bearer()),
            config.env(),
            exclude,
        )
        .await
        .map_err(ConnectFailure::Start)?;
        let endpoint = self
            .gateway_url
            .clone()
            .unwrap_or_else(|| start.gateway_endpoint.clone());
        let mut ws = socket::dial(&endpoint)
            .await
            .map_err(ConnectFailure::Socket)?;
        let request = self.connect_request(&start);
        let intervals = socket::handshake(&mut ws, &request)
            .await
            .map_err(ConnectFailure::Socket)?;
        Ok((ws, intervals, start))
    }

    /// The `WORKER_CONNECT` payload.
    fn connect_request(&self, start: &StartResponse) -> WorkerConnectRequestData {
        let config = self.ctx.handler.client().config();
        let functions =
            serde_json::to_vec(&self.ctx.handler.connect_functions()).unwrap_or_default();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        WorkerConnectRequestData {
            connection_id: start.connection_id.clone(),
            instance_id: self.instance_id.clone(),
            auth_data: Some(AuthData {
                session_token: start.session_token.clone(),
                sync_token: start.sync_token.clone(),
            }),
            capabilities: CAPABILITIES_JSON.as_bytes().to_vec(),
            apps: vec![AppConfiguration {
                app_name: config.app_id().to_owned(),
                app_version: config.app_version().map(str::to_owned),
                functions,
                feature_observations: None,
            }],
            worker_manual_readiness_ack: true,
            system_attributes: Some(SystemAttributes {
                cpu_cores: std::thread::available_parallelism()
                    .map(|n| i32::try_from(n.get()).unwrap_or(i32::MAX))
                    .unwrap_or(1),
                mem_bytes: 0,
                os: std::env::consts::OS.to_owned(),
            }),
            environment: config.env().map(str::to_owned),
            framework: FRAMEWORK.to_owned(),
            platform: None,
            sdk_version: concat!("v", env!("CARGO_PKG_VERSION")).to_owned(),
            sdk_language: "rust".to_owned(),
            started_at: Some(prost_types_timestamp(now)),
            max_worker_concurrency: self.max_concurrency.map(i64::from),
        }
    }
}

/// One failed connection attempt.
#[derive(Debug, thiserror::Error)]
enum ConnectFailure {
    #[error(transparent)]
    Start(start::StartError),
    #[error(transparent)]
    Socket(socket::HandshakeError),
}

fn prost_types_timestamp(since_epoch: Duration) -> inngest_protocol::connect::Timestamp {
    inngest_protocol::connect::Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// The host name (`HOSTNAME`, then `/etc/hostname`), else a random id.
fn default_instance_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("rust-worker-{}", hex::encode(rand::random::<[u8; 6]>())))
}

/// Ctrl-C, and SIGTERM on Unix.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Self {
        #[cfg(unix)]
        {
            let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGTERM"))
                .ok();
            Signals { term }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    async fn recv(self) {
        #[cfg(unix)]
        {
            let term = async {
                match self.term {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = term => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
