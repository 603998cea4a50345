//! Starting the app: context, Inngest client (embedded executor, Dev Server or Cloud), one axum
//! server for the webhook routes and `/api/inngest`, and the sync.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use inngest_executor::{AppView, Executor};
use inngest_sdk::client::InngestBuilder;
use inngest_sdk::{serve, Inngest, Mode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{AppError, Env};
use crate::config::{Config, EmailTransport, ExecutorState};
use crate::context::AppContext;
use crate::functions::{self, Deps, FunctionOptions, APP_ID};
use crate::webhooks::{self, WebhookConfig, WebhookState};

/// Default port of the embedded executor in `serve` mode (the Dev Server's port).
pub const DEFAULT_EXECUTOR_PORT: u16 = 8288;

/// Where the Inngest side of the app lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InngestSetup {
    /// The embedded local executor ([`inngest_executor`]) on `127.0.0.1:port`
    /// (`0`: any free port). The app is synced with it at startup.
    Embedded {
        /// Loopback port of the executor's HTTP API (event API, run history).
        port: u16,
    },
    /// A Dev Server started separately (`inngest-cli dev`); `INNGEST_DEV=1` or `INNGEST_DEV=<url>`.
    DevServer,
    /// Inngest Cloud (or a self-hosted server): `INNGEST_SIGNING_KEY` + `INNGEST_EVENT_KEY`.
    Cloud,
}

impl InngestSetup {
    /// Decides from the environment:
    ///
    /// * `INNGEST_DEV` set to `1`/`true`/a URL → [`InngestSetup::DevServer`];
    /// * else any of `INNGEST_SIGNING_KEY`, `INNGEST_EVENT_KEY`, `INNGEST_BASE_URL` set, or
    ///   `INNGEST_DEV=0` → [`InngestSetup::Cloud`] (which needs both keys);
    /// * else → [`InngestSetup::Embedded`] on `EXECUTOR_PORT` (default 8288).
    pub fn from_env(env: &Env) -> Result<InngestSetup, AppError> {
        let dev = env.get("INNGEST_DEV");
        let explicit_cloud = matches!(
            dev.as_deref().map(str::to_ascii_lowercase).as_deref(),
            Some("0") | Some("false")
        );
        if dev.is_some() && !explicit_cloud {
            return Ok(InngestSetup::DevServer);
        }
        let cloud_vars = [
            "INNGEST_SIGNING_KEY",
            "INNGEST_EVENT_KEY",
            "INNGEST_BASE_URL",
        ];
        if explicit_cloud || cloud_vars.iter().any(|v| env.get(v).is_some()) {
            return Ok(InngestSetup::Cloud);
        }
        let port = match env.get("EXECUTOR_PORT") {
            None => DEFAULT_EXECUTOR_PORT,
            Some(p) => p.parse().map_err(|_| {
                AppError::Config(format!(
                    "EXECUTOR_PORT is invalid: {p:?} is not a port number"
                ))
            })?,
        };
        Ok(InngestSetup::Embedded { port })
    }

    /// Short description for logs.
    pub fn describe(&self) -> &'static str {
        match self {
            InngestSetup::Embedded { .. } => "embedded local executor",
            InngestSetup::DevServer => "Inngest Dev Server",
            InngestSetup::Cloud => "Inngest Cloud",
        }
    }
}

/// Overrides for [`start`]; the defaults read everything from the environment.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Listen here instead of `HOST:PORT`.
    pub listen: Option<SocketAddr>,
    /// Use this setup instead of [`InngestSetup::from_env`].
    pub inngest: Option<InngestSetup>,
    /// Use this database instead of `DATABASE_URL`.
    pub database_url: Option<String>,
    /// Use this webhook configuration instead of [`WebhookConfig::from_lookup`] on the env.
    pub webhooks: Option<WebhookConfig>,
    /// Embedded executor: retry failed attempts after this fixed delay (default: exponential
    /// backoff from 1 s, like Inngest).
    pub retry_interval: Option<Duration>,
    /// Embedded executor: keep its state this way instead of what `EXECUTOR_STATE_DIR` says
    /// (the demo passes [`ExecutorState::InMemory`]).
    pub executor_state: Option<ExecutorState>,
    /// Run the functions on a connect worker (`serve --connect`) that dials out to the
    /// embedded executor's gateway, the Dev Server or Inngest Cloud, instead of serving
    /// `/api/inngest`; the webhooks stay on HTTP. The worker's instance id is
    /// `INNGEST_CONNECT_INSTANCE_ID` (default: the host name), its max concurrency
    /// `INNGEST_CONNECT_MAX_WORKER_CONCURRENCY`.
    pub connect: bool,
}

/// The configuration [`start`] would use, without starting anything (config errors only).
pub(crate) struct Plan {
    pub config: Config,
    pub webhooks: WebhookConfig,
    pub setup: InngestSetup,
}

pub(crate) fn plan(env: &Env, opts: &StartOptions) -> Result<Plan, AppError> {
    // Raw values: `EXECUTOR_STATE_DIR=` (empty) means "in memory", not "unset".
    let mut config =
        Config::from_lookup(env.raw_lookup()).map_err(|e| AppError::Config(e.to_string()))?;
    if let Some(url) = &opts.database_url {
        config.database_url = url.clone();
    }
    if let Some(addr) = opts.listen {
        config.listen_addr = addr;
    }
    if let Some(state) = &opts.executor_state {
        config.executor_state = state.clone();
    }
    let webhooks = match &opts.webhooks {
        Some(w) => w.clone(),
        None => {
            WebhookConfig::from_lookup(env.lookup()).map_err(|e| AppError::Config(e.to_string()))?
        }
    };
    let setup = match opts.inngest {
        Some(s) => s,
        None => InngestSetup::from_env(env)?,
    };
    Ok(Plan {
        config,
        webhooks,
        setup,
    })
}

/// Client for the Dev Server or Cloud, from the `INNGEST_*` variables, checked now and built
/// once the app's middleware is added.
fn external_client(env: &Env, setup: InngestSetup) -> Result<InngestBuilder, AppError> {
    let builder = Inngest::builder(APP_ID).env_source(env.lookup());
    let client = builder
        .clone()
        .build()
        .map_err(|e| AppError::Config(e.to_string()))?;
    if setup == InngestSetup::Cloud {
        debug_assert_eq!(client.config().mode(), Mode::Cloud);
        if client.config().event_key().is_none() {
            return Err(AppError::Config(
                "INNGEST_EVENT_KEY must be set when INNGEST_SIGNING_KEY is set: the webhook routes \
                 send their events to Inngest Cloud (or set INNGEST_DEV=1 for the Dev Server, or \
                 unset both to use the embedded executor)"
                    .into(),
            ));
        }
    }
    Ok(builder)
}

/// Host to reach a socket bound on `ip` from this machine (`0.0.0.0` → `127.0.0.1`).
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

async fn bind(addr: SocketAddr, what: &str, hint: &str) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr).await.map_err(|e| {
        AppError::Startup(format!("cannot listen on {addr} for the {what}: {e}{hint}"))
    })
}

/// Starts the app: database, sandbox fakes, clients, Inngest side, HTTP server, sync.
///
/// Configuration problems (half-configured services, `INNGEST_SIGNING_KEY` without
/// `INNGEST_EVENT_KEY`, bad values) are [`AppError::Config`] and nothing is started.
pub async fn start(env: &Env, opts: StartOptions) -> Result<RunningApp, AppError> {
    let Plan {
        config,
        webhooks: webhook_config,
        setup,
    } = plan(env, &opts)?;
    let external = match setup {
        InngestSetup::Embedded { .. } => None,
        s => Some(external_client(env, s)?),
    };

    let listener = bind(
        config.listen_addr,
        "app",
        " (set PORT to another port, or HOST)",
    )
    .await?;
    let app_addr = listener
        .local_addr()
        .map_err(|e| AppError::Startup(e.to_string()))?;

    let mut executor = None;
    let mut executor_addr = None;
    let mut executor_task = None;
    let mut executor_state_dir = None;
    let client = match (setup, external) {
        (_, Some(client)) => client,
        (InngestSetup::Embedded { port }, None) => {
            let hint = if port == DEFAULT_EXECUTOR_PORT {
                " (is `inngest-cli dev` already running there? then set INNGEST_DEV=1 to use it, \
                 or set EXECUTOR_PORT to another port)"
            } else {
                " (set EXECUTOR_PORT to another port)"
            };
            let ex_listener = bind(
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                "embedded executor",
                hint,
            )
            .await?;
            let addr = ex_listener
                .local_addr()
                .map_err(|e| AppError::Startup(e.to_string()))?;
            let mut builder = Executor::builder();
            if let Some(d) = opts.retry_interval {
                builder = builder.retry_interval(d);
            }
            let state_dir = config.executor_state.serve_dir().map(Path::to_path_buf);
            match &state_dir {
                Some(dir) => {
                    tracing::info!(
                        state_dir = %absolute(dir).display(),
                        "embedded executor journals its events and runs on disk: unfinished runs \
                         resume after a restart (EXECUTOR_STATE_DIR)"
                    );
                    builder = builder.state_dir(dir.clone());
                }
                None => tracing::info!(
                    reason = if opts.executor_state.is_some() {
                        "set by the caller (the demo starts fresh every run)"
                    } else {
                        "EXECUTOR_STATE_DIR is set to the empty string"
                    },
                    "embedded executor keeps its events and runs in memory: runs in flight are \
                     lost when the process stops"
                ),
            }
            let ex = builder.build().map_err(|e| {
                AppError::Startup(format!(
                    "embedded executor: {e}{}",
                    match &state_dir {
                        Some(dir) => format!(
                            " (state directory {}; set EXECUTOR_STATE_DIR to another directory, \
                             or to the empty string to keep the state in memory)",
                            dir.display()
                        ),
                        None => String::new(),
                    }
                ))
            })?;
            executor_state_dir = state_dir;
            let router = ex.router();
            executor_task = Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(ex_listener, router).await {
                    tracing::error!(error = %e, "embedded executor stopped");
                }
            }));
            executor = Some(ex);
            executor_addr = Some(addr);
            Inngest::builder(APP_ID)
                .dev(true)
                .base_url(format!("http://{addr}"))
        }
        (_, None) => unreachable!("external setups always build a client"),
    };

    let webhook_flags = WebhookFlags {
        clerk: webhook_config.clerk_secret.is_some(),
        stripe: webhook_config.stripe_secret.is_some(),
        printify: webhook_config.printify_secret.is_some(),
    };
    let ctx = AppContext::init(config)
        .await
        .map_err(|e| AppError::Startup(e.to_string()))?;
    let deps = Deps::new(ctx.clone(), FunctionOptions::default());
    let client = functions::middleware::install(client, deps)
        .build()
        .map_err(|e| AppError::Startup(format!("Inngest client: {e}")))?;
    let functions = functions::all();
    let function_ids: Vec<String> = functions.iter().map(|f| f.id().to_string()).collect();
    let (inngest_routes, worker) = if opts.connect {
        let mut worker = client
            .connect(functions)
            .map_err(|e| AppError::Startup(e.to_string()))?
            // `serve` handles Ctrl-C itself and drains the worker in `RunningApp::shutdown`.
            .handle_shutdown_signals(false);
        if let Some(id) = env.get("INNGEST_CONNECT_INSTANCE_ID") {
            worker = worker.instance_id(id);
        }
        let worker = worker
            .start()
            .map_err(|e| AppError::Startup(format!("connect worker: {e}")))?;
        (Router::new(), Some(worker))
    } else {
        let routes = serve::axum::router(&client, functions)
            .map_err(|e| AppError::Startup(e.to_string()))?;
        (routes, None)
    };
    let serve_line = if opts.connect {
        "(functions on a connect worker: no serve endpoint)".to_owned()
    } else {
        format!(
            "GET|PUT|POST /api/inngest  Inngest serve endpoint ({})",
            setup.describe()
        )
    };
    let index = format!(
        "Otakumori ({APP_ID}) on inngest-sdk\n\
         POST /webhooks/clerk     Clerk (svix) user events\n\
         POST /webhooks/stripe    Stripe events\n\
         POST /webhooks/printify  Printify events\n\
         {serve_line}\n\
         GET /metrics             Prometheus metrics\n"
    );
    let router = Router::new()
        .route(
            "/",
            get(move || {
                let index = index.clone();
                async move { index }
            }),
        )
        .merge(webhooks::router(
            WebhookState::new(webhooks::inngest_sink(client.clone()), webhook_config)
                .with_failure_recorder(Arc::new(webhooks::DbFailureRecorder::new(ctx.db.clone()))),
        ))
        .merge(inngest_routes)
        .merge(crate::telemetry::metrics_router());

    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(webhooks::serve_with_shutdown(listener, router, async {
        let _ = rx.await;
    }));

    let mut app = RunningApp {
        ctx,
        client,
        setup,
        executor,
        executor_addr,
        executor_state_dir,
        app_addr,
        function_ids,
        synced: None,
        webhook_flags,
        shutdown: Some(tx),
        server: Some(server),
        executor_task,
        worker,
    };
    if let (Some(ex), Some(_)) = (&app.executor, &app.worker) {
        // The worker syncs the app through its connection.
        match ex
            .wait_for_connect_worker(APP_ID, Duration::from_secs(30))
            .await
        {
            Ok(_) => app.synced = ex.apps().into_iter().find(|a| a.id == APP_ID),
            Err(e) => {
                let err = AppError::Startup(format!(
                    "the connect worker did not connect to the embedded executor: {e}"
                ));
                app.shutdown().await;
                return Err(err);
            }
        }
    } else if let Some(ex) = &app.executor {
        match ex.register_app(&app.serve_url()).await {
            Ok(view) => app.synced = Some(view),
            Err(e) => {
                let err = AppError::Startup(format!(
                    "syncing the app with the embedded executor failed: {e}"
                ));
                app.shutdown().await;
                return Err(err);
            }
        }
    }
    Ok(app)
}

#[derive(Debug, Clone, Copy)]
struct WebhookFlags {
    clerk: bool,
    stripe: bool,
    printify: bool,
}

/// A started app. Call [`RunningApp::shutdown`] to stop it gracefully (dropping it aborts).
pub struct RunningApp {
    ctx: Arc<AppContext>,
    client: Inngest,
    setup: InngestSetup,
    executor: Option<Executor>,
    executor_addr: Option<SocketAddr>,
    executor_state_dir: Option<PathBuf>,
    app_addr: SocketAddr,
    function_ids: Vec<String>,
    synced: Option<AppView>,
    webhook_flags: WebhookFlags,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    executor_task: Option<JoinHandle<()>>,
    /// The connect worker (`serve --connect`).
    worker: Option<inngest_sdk::connect::WorkerHandle>,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("setup", &self.setup)
            .field("app_addr", &self.app_addr)
            .field("executor_addr", &self.executor_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(t) = &self.server {
            t.abort();
        }
        if let Some(t) = &self.executor_task {
            t.abort();
        }
        if let Some(w) = &self.worker {
            w.abort();
        }
        if let Some(ex) = &self.executor {
            ex.shutdown();
        }
    }
}

impl RunningApp {
    /// The shared context (database, clients, sandbox fakes).
    pub fn context(&self) -> &Arc<AppContext> {
        &self.ctx
    }

    /// The Inngest client the app sends with.
    pub fn client(&self) -> &Inngest {
        &self.client
    }

    /// The Inngest setup in use.
    pub fn setup(&self) -> InngestSetup {
        self.setup
    }

    /// The connect worker, when the functions run over connect (`serve --connect`).
    pub fn connect_worker(&self) -> Option<&inngest_sdk::connect::WorkerHandle> {
        self.worker.as_ref()
    }

    /// The embedded executor, if any.
    pub fn executor(&self) -> Option<&Executor> {
        self.executor.as_ref()
    }

    /// The address the app listens on.
    pub fn app_addr(&self) -> SocketAddr {
        self.app_addr
    }

    /// `http://<host>:<port>` of the app, reachable from this machine.
    pub fn app_url(&self) -> String {
        format!("http://{}", reachable(self.app_addr))
    }

    /// The serve endpoint, `http://<host>:<port>/api/inngest`.
    pub fn serve_url(&self) -> String {
        format!("{}{}", self.app_url(), serve::axum::DEFAULT_PATH)
    }

    /// Where the embedded executor journals its state (`None`: in memory, or no embedded
    /// executor).
    pub fn executor_state_dir(&self) -> Option<&Path> {
        self.executor_state_dir.as_deref()
    }

    /// `http://127.0.0.1:<port>` of the embedded executor, if any.
    pub fn executor_url(&self) -> Option<String> {
        self.executor_addr.map(|a| format!("http://{a}"))
    }

    /// Ids of the served functions (without the app prefix).
    pub fn function_ids(&self) -> &[String] {
        &self.function_ids
    }

    /// What the embedded executor registered at startup.
    pub fn synced(&self) -> Option<&AppView> {
        self.synced.as_ref()
    }

    /// `12 functions (+4 on_failure handlers)`: what the executor registered.
    pub fn synced_summary(&self) -> String {
        let n = self.function_ids.len();
        match &self.synced {
            None => format!("{n} functions"),
            Some(s) if s.functions.len() > n => format!(
                "{n} functions (+{} on_failure handlers)",
                s.functions.len() - n
            ),
            Some(s) => format!("{} functions", s.functions.len()),
        }
    }

    /// Composite id of a function (`otakumori-app-<id>`), as the executor reports it.
    pub fn function_id(&self, id: &str) -> String {
        format!("{APP_ID}-{id}")
    }

    /// One line per external service saying whether it is a sandbox stand-in or live.
    pub fn service_lines(&self) -> Vec<(&'static str, String)> {
        let c = &self.ctx.config;
        let sb = &self.ctx.sandbox;
        let printify = match (&sb.printify, c.printify.live()) {
            (Some(fake), _) => format!(
                "SANDBOX — in-process fake Printify at {} ({} fixture products, shop {}); \
                 set PRINTIFY_API_KEY + PRINTIFY_SHOP_ID for the real API",
                fake.base_url(),
                fake.products().len(),
                fake.settings().shop_id
            ),
            (None, Some(live)) => format!("live — {} (shop {})", live.api_url, live.shop_id),
            (None, None) => "unknown".into(),
        };
        let stripe = match (&sb.stripe, c.stripe.live()) {
            (Some(fake), _) => format!(
                "SANDBOX — in-process fake Stripe at {} (test-mode Checkout Sessions); \
                 set STRIPE_SECRET_KEY for the real API",
                fake.base_url()
            ),
            (None, Some(live)) => format!("live — {}", live.api_base),
            (None, None) => "unknown".into(),
        };
        let email = match &c.email.transport {
            EmailTransport::Log => "SANDBOX — local outbox (email_outbox table + log, nothing is \
                                    sent); set RESEND_API_KEY or SMTP_URL to send mail"
                .to_string(),
            EmailTransport::Sandbox => format!(
                "SANDBOX — in-process fake Resend at {}",
                sb.resend.as_ref().map(|r| r.base_url()).unwrap_or_default()
            ),
            EmailTransport::Resend(r) => format!("live — Resend at {}", r.base_url),
            EmailTransport::Smtp { .. } => "live — SMTP (SMTP_URL)".to_string(),
        };
        vec![
            ("Database", self.ctx.config.database_url_redacted()),
            ("Printify", printify),
            ("Stripe", stripe),
            ("Email", email),
        ]
    }

    /// The `serve` startup text: URLs, services, webhooks, how to send an event.
    pub fn banner(&self) -> String {
        let app = display_url(self.app_addr);
        let mut out = format!("Otakumori ({APP_ID}) serving on {app}\n");
        let line = |out: &mut String, k: &str, v: &str| {
            out.push_str(&format!("  {k:<10} {v}\n"));
        };
        match self.setup {
            InngestSetup::Embedded { .. } => {
                let ex = self.executor_url().unwrap_or_default();
                line(
                    &mut out,
                    "Inngest",
                    &format!(
                        "embedded local executor at {ex} (app synced: {})",
                        self.synced_summary()
                    ),
                );
                line(
                    &mut out,
                    "",
                    &format!(
                        "send an event: curl -X POST {ex}/e/dev -d '{{\"name\":\"printify/products.update\",\"data\":{{\"reason\":\"manual\"}}}}'"
                    ),
                );
                line(
                    &mut out,
                    "",
                    &format!("dashboard:     {ex}/   (runs, steps, events; open it in a browser)"),
                );
                line(&mut out, "", &format!("runs:          curl {ex}/v1/runs"));
                line(
                    &mut out,
                    "",
                    &format!("one run:       curl {ex}/v1/runs/<run id>   (steps: /v1/runs/<run id>/steps)"),
                );
                line(
                    &mut out,
                    "",
                    &format!("functions:     curl {ex}/v1/apps/{APP_ID}/functions"),
                );
                let state = match &self.executor_state_dir {
                    Some(dir) => format!(
                        "state:         {} (EXECUTOR_STATE_DIR; unfinished runs resume after a restart)",
                        absolute(dir).display()
                    ),
                    None => "state:         in memory (EXECUTOR_STATE_DIR is empty; runs in flight are lost on exit)"
                        .to_string(),
                };
                line(&mut out, "", &state);
            }
            InngestSetup::DevServer => {
                let origin = self.client.config().api_origin().to_string();
                line(
                    &mut out,
                    "Inngest",
                    &format!("Dev Server at {origin} (not started by this app); start it with:"),
                );
                line(
                    &mut out,
                    "",
                    &format!("npx inngest-cli@latest dev -u {}/api/inngest", app),
                );
                line(
                    &mut out,
                    "",
                    &format!("then open {origin} and send events from its UI, or: curl -X POST {origin}e/dev -d '{{\"name\":\"printify/products.update\",\"data\":{{}}}}'"),
                );
            }
            InngestSetup::Cloud => {
                line(
                    &mut out,
                    "Inngest",
                    &format!(
                        "Inngest Cloud at {} (requests to /api/inngest must be signed)",
                        self.client.config().api_origin()
                    ),
                );
                line(
                    &mut out,
                    "",
                    &format!("sync: from the Inngest dashboard (app URL https://<your host>/api/inngest), or curl -X PUT {app}/api/inngest"),
                );
            }
        }
        for (k, v) in self.service_lines() {
            line(&mut out, k, &v);
        }
        let wf = self.webhook_flags;
        for (i, (path, var, set)) in [
            ("/webhooks/clerk", "CLERK_WEBHOOK_SECRET", wf.clerk),
            ("/webhooks/stripe", "STRIPE_WEBHOOK_SECRET", wf.stripe),
            ("/webhooks/printify", "PRINTIFY_WEBHOOK_SECRET", wf.printify),
        ]
        .into_iter()
        .enumerate()
        {
            let state = if set {
                format!("{var} set")
            } else {
                format!("{var} not set: answers 500 until it is")
            };
            line(
                &mut out,
                if i == 0 { "Webhooks" } else { "" },
                &format!("POST {app}{path:<20} {state}"),
            );
        }
        if let Some(w) = &self.worker {
            line(
                &mut out,
                "Connect",
                &format!(
                    "functions on a connect worker (instance {}): it dials out to Inngest, no /api/inngest is served",
                    w.instance_id()
                ),
            );
        }
        line(&mut out, "Functions", &self.function_ids.join(", "));
        out.push_str("Press Ctrl-C to stop.");
        out
    }

    /// Graceful shutdown: drain the connect worker (its in-flight steps finish and are answered,
    /// at most 30 s), stop accepting, let in-flight requests finish (at most 10 s), stop the
    /// executor, close the database.
    pub async fn shutdown(mut self) {
        if let Some(worker) = self.worker.take() {
            if tokio::time::timeout(Duration::from_secs(30), worker.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("the connect worker did not drain within 30 s");
            }
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            match tokio::time::timeout(Duration::from_secs(10), server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server stopped with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
                Err(_) => tracing::warn!("server did not stop within 10 s"),
            }
        }
        if let Some(ex) = &self.executor {
            ex.shutdown();
        }
        if let Some(t) = self.executor_task.take() {
            t.abort();
        }
        self.ctx.db.close().await;
    }
}

/// `dir` joined to the working directory when it is relative (for logs and the banner).
fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        return dir.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// `http://localhost:<port>` for loopback/unspecified binds, else `http://<ip>:<port>`.
fn display_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    if ip.is_unspecified() || ip.is_loopback() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_of(pairs: &[(&str, &str)], opts: &StartOptions) -> ExecutorState {
        match plan(&Env::from_pairs(pairs.iter().copied()), opts) {
            Ok(p) => p.config.executor_state,
            Err(e) => panic!("{pairs:?}: {e}"),
        }
    }

    #[test]
    fn executor_state_dir_from_the_env_and_the_demo_override() {
        let serve = StartOptions::default();
        assert_eq!(state_of(&[], &serve), ExecutorState::Default);
        assert_eq!(
            state_of(&[], &serve).serve_dir(),
            Some(Path::new(crate::config::DEFAULT_EXECUTOR_STATE_DIR))
        );
        assert_eq!(
            state_of(&[("EXECUTOR_STATE_DIR", "/tmp/om-state")], &serve),
            ExecutorState::Dir(PathBuf::from("/tmp/om-state"))
        );
        // The empty string reaches the config through `Env` (which otherwise treats empty values
        // as unset) and turns persistence off.
        assert_eq!(
            state_of(&[("EXECUTOR_STATE_DIR", "")], &serve),
            ExecutorState::InMemory
        );
        // The demo's override wins over the environment.
        let demo = StartOptions {
            executor_state: Some(ExecutorState::InMemory),
            ..StartOptions::default()
        };
        assert_eq!(
            state_of(&[("EXECUTOR_STATE_DIR", "/tmp/om-state")], &demo),
            ExecutorState::InMemory
        );
        assert_eq!(state_of(&[], &demo).serve_dir(), None);
    }
}
