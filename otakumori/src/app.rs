//! Running the app: the end-to-end demo (`cargo run --example otakumori`) and `serve` mode
//! (`cargo run --example otakumori -- serve`).
//!
//! Both start the same pieces — [`AppContext`](crate::context::AppContext) (database, service
//! clients, sandbox fakes), the webhook routes and the Inngest serve endpoint on one axum server —
//! and differ in where the Inngest side lives and what happens next:
//!
//! | | Inngest side | then |
//! |---|---|---|
//! | demo | the embedded [`inngest_executor::Executor`] on a free loopback port, in memory | plays the scenario (`src/app/demo.rs`) and prints a summary |
//! | demo + `INNGEST_DEV=<url>` | that Inngest server (`inngest dev`, `inngest-dev-server`), started separately | syncs with it, plays the same scenario through it and follows the runs over its REST API |
//! | `serve` (default) | the embedded executor on `127.0.0.1:$EXECUTOR_PORT` (8288), its state journaled in `$EXECUTOR_STATE_DIR` (`otakumori-executor`) | serves until Ctrl-C |
//! | `serve` + `INNGEST_DEV=1` or a URL | `inngest-cli dev` (not started here) | serves `/api/inngest` for the Dev Server |
//! | `serve` + `INNGEST_SIGNING_KEY`/`INNGEST_EVENT_KEY` | Inngest Cloud | serves signed `/api/inngest` |
//!
//! Everything reads its environment through an [`Env`], so tests run the real code paths with a
//! map of variables instead of the process environment. Errors carry an exit code
//! ([`AppError::exit_code`]): `2` for configuration problems (the message names the variable),
//! `1` for everything else.

mod demo;
mod follow;
mod server;
mod summary;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use demo::{run_demo, DemoOptions, DemoReport, EmailSummary, TableCount};
pub use server::{start, InngestSetup, RunningApp, StartOptions, DEFAULT_EXECUTOR_PORT};
pub use summary::Table;

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Environment lookup (`name -> value`); empty values count as unset.
#[derive(Clone)]
pub struct Env(Lookup);

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(..)")
    }
}

impl Env {
    /// The process environment.
    pub fn process() -> Env {
        Env(Arc::new(|k| std::env::var(k).ok()))
    }

    /// A fixed set of variables (tests).
    pub fn from_map(vars: HashMap<String, String>) -> Env {
        Env(Arc::new(move |k| vars.get(k).cloned()))
    }

    /// A fixed set of variables from pairs (tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env::from_map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `name`, trimmed; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// The value of `name` exactly as set (not trimmed; `Some("")` when set to the empty
    /// string). For the few variables where "set but empty" means something, such as
    /// `EXECUTOR_STATE_DIR=` (executor state in memory).
    pub fn get_raw(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// This environment with `name` replaced by `value` (`None` unsets it).
    pub fn with(&self, name: &str, value: Option<&str>) -> Env {
        let inner = self.0.clone();
        let name = name.to_string();
        let value = value.map(str::to_string);
        Env(Arc::new(
            move |k| {
                if k == name {
                    value.clone()
                } else {
                    inner(k)
                }
            },
        ))
    }

    /// A plain lookup function, for the `from_lookup` constructors.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let me = self.clone();
        move |k| me.get(k)
    }

    /// A lookup function returning the raw values ([`Env::get_raw`]), for
    /// [`Config::from_lookup`](crate::config::Config::from_lookup), which trims and drops empty
    /// values itself except where the empty string is meaningful.
    pub fn raw_lookup(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
        let me = self.clone();
        move |k| me.get_raw(k)
    }
}

/// What to do, from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Run the end-to-end scenario and exit (no arguments).
    Demo,
    /// Serve until Ctrl-C (`serve`).
    Serve,
    /// Serve the webhooks until Ctrl-C, with the functions on a connect worker that dials out to
    /// Inngest instead of `/api/inngest` (`serve --connect`).
    ServeConnect,
    /// Print usage (`help`, `-h`, `--help`).
    Help,
}

/// Parses the arguments after the program name.
pub fn parse_args<I, S>(args: I) -> Result<Command, AppError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["demo"] => Ok(Command::Demo),
        ["serve"] => Ok(Command::Serve),
        ["serve", "--connect"] => Ok(Command::ServeConnect),
        ["help"] | ["-h"] | ["--help"] => Ok(Command::Help),
        other => Err(AppError::Usage(format!(
            "unexpected arguments {other:?}; expected nothing (demo), `serve` or `serve --connect`"
        ))),
    }
}

/// Usage text.
pub const USAGE: &str = "\
Otakumori: the anime shop's background jobs on inngest-sdk.

USAGE:
    cargo run --example otakumori             run the demo scenario end to end and exit
    cargo run --example otakumori -- serve    serve webhooks and /api/inngest on $PORT (default 3000)
    cargo run --example otakumori -- serve --connect
                                              serve webhooks on $PORT; the functions run on a connect
                                              worker that dials out to Inngest (no /api/inngest)

SERVE MODES (chosen from the environment):
    (nothing set)                          embedded local executor on 127.0.0.1:$EXECUTOR_PORT (8288),
                                           runs journaled in $EXECUTOR_STATE_DIR (./otakumori-executor;
                                           EXECUTOR_STATE_DIR= keeps them in memory)
    INNGEST_DEV=1 | INNGEST_DEV=<url>      use `npx inngest-cli@latest dev -u http://localhost:3000/api/inngest`
    INNGEST_SIGNING_KEY + INNGEST_EVENT_KEY    Inngest Cloud

See otakumori/README.md for every variable.";

/// Why the app stopped. [`AppError::exit_code`] is the process exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad command line (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Missing, half-set or invalid configuration (exit 2). The message names the variable.
    #[error("configuration error: {0}")]
    Config(String),
    /// Startup failed: database, ports, sync (exit 1).
    #[error("startup failed: {0}")]
    Startup(String),
    /// The demo scenario failed: a run failed or timed out, or an expected row is missing (exit 1).
    #[error("demo failed: {message}")]
    Demo {
        /// What went wrong, naming the function and run.
        message: String,
        /// What had happened up to then (printed before the error).
        report: Option<Box<DemoReport>>,
    },
}

impl AppError {
    /// `2` for usage/configuration errors, `1` otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) | AppError::Config(_) => 2,
            AppError::Startup(_) | AppError::Demo { .. } => 1,
        }
    }
}

/// Installs a `tracing` subscriber: logs filtered by `RUST_LOG` (e.g. `info`,
/// `otakumori=debug,warn`) or `default_filter`, and OTLP trace export when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`crate::telemetry::otlp_layer`]). Does nothing if a
/// subscriber is already installed.
pub fn init_tracing(env: &Env, default_filter: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter: Targets = env
        .get("RUST_LOG")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default_filter.parse().unwrap_or_default());
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_target(true)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_filter(filter),
        )
        .with(crate::telemetry::otlp_layer(env.lookup()))
        .try_init();
}

/// The whole program: parse `args`, run the command with `env`, print errors; returns the exit
/// code. `serve` runs until Ctrl-C.
pub async fn main_with<I, S>(args: I, env: Env) -> i32
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let result = match parse_args(args) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            Ok(())
        }
        Ok(Command::Demo) => {
            init_tracing(&env, "warn");
            run_demo(DemoOptions::new(env)).await.map(|_| ())
        }
        Ok(Command::Serve) => {
            init_tracing(&env, "info");
            serve_until_ctrl_c(env, StartOptions::default()).await
        }
        Ok(Command::ServeConnect) => {
            init_tracing(&env, "info");
            let opts = StartOptions {
                connect: true,
                ..StartOptions::default()
            };
            serve_until_ctrl_c(env, opts).await
        }
        Err(e) => Err(e),
    };
    crate::telemetry::flush_traces().await;
    match result {
        Ok(()) => 0,
        Err(e) => {
            if let AppError::Demo {
                report: Some(report),
                ..
            } = &e
            {
                println!("{}", report.render());
            }
            eprintln!("error: {e}");
            if let AppError::Usage(_) = e {
                eprintln!("\n{USAGE}");
            }
            e.exit_code()
        }
    }
}

/// `serve`: start from `env` with `opts`, print where everything is, wait for Ctrl-C, shut down
/// gracefully (a connect worker drains first: its in-flight steps finish and are answered).
pub async fn serve_until_ctrl_c(env: Env, opts: StartOptions) -> Result<(), AppError> {
    let app = start(&env, opts).await?;
    println!("{}", app.banner());
    match tokio::signal::ctrl_c().await {
        Ok(()) => println!("\nCtrl-C received: shutting down (in-flight requests finish first)"),
        Err(e) => eprintln!("cannot listen for Ctrl-C ({e}); shutting down"),
    }
    app.shutdown().await;
    println!("bye");
    Ok(())
}
