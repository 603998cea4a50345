//! A local stand-in for `inngest dev -u <app url>`, built on the crate's local executor: Event
//! API, app sync (re-synced every few seconds like the dev server's poll), runs, and run history
//! over the dev server's REST API. It speaks only the serve protocol, so it drives any SDK's app.
//! It is a development tool, not a production server: state lives in memory, or in a state
//! directory with `--state-dir` (runs, events and their progress survive a restart).
//! Installed with `cargo install inngest-executor`.
//!
//! ```text
//! inngest-dev-server --port 8288 -u http://127.0.0.1:3000/api/inngest   (or: cargo run -p inngest-executor -- …)
//!
//! options:
//!   -p, --port <port>            port to listen on (default 8288)
//!       --host <addr>            address to bind (default 127.0.0.1: loopback only)
//!   -u, --sdk-url <url>          an app's serve URL to sync (repeatable)
//!       --poll-interval <dur>    re-sync apps this often (default 5s; `1s`, `500ms` or seconds)
//!       --no-poll                sync once at startup only
//!       --retry-interval <dur>   fixed delay between retries (default: exponential from 1s)
//!       --signing-key <key>      sign requests and require the key on /fn/register, /v0, /v1
//!       --event-key <key>        accept events only at /e/<key>
//!       --state-dir <dir>        keep state in <dir> (a transactional store; one server per dir)
//!       --keep-runs <n>          with --state-dir: finished runs kept in memory (default 1000)
//!       --keep-events <n>        with --state-dir: events kept in memory (default 10000)
//! ```
//!
//! Point apps at it with `INNGEST_DEV=1 INNGEST_BASE_URL=http://127.0.0.1:8288`. Then:
//!
//! ```text
//! curl -s localhost:8288/e/dev -d '{"name":"demo/hello","data":{}}'   # {"ids":["01…"],"status":200}
//! curl -s localhost:8288/v1/events/<id>/runs                           # runs of that event
//! curl -s localhost:8288/v1/runs/<run id>/steps                        # its steps with timings
//! ```
//!
//! Connect workers need no `-u`: they dial the connect gateway on the same port
//! (`POST /v0/connect/start`, then the WebSocket at `/v0/connect`) and sync through it.
//!
//! At startup it prints the URL of the run dashboard (`http://127.0.0.1:8288/`): apps and
//! functions, runs (filterable, live), one run's steps, events.
//!
//! `RUST_LOG` controls logging (default `info`); payloads and keys are never logged.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use inngest_executor::Executor;

#[derive(Debug)]
struct Args {
    host: String,
    port: u16,
    urls: Vec<String>,
    poll: Option<Duration>,
    retry_interval: Option<Duration>,
    signing_key: Option<String>,
    event_key: Option<String>,
    state_dir: Option<String>,
    keep_runs: Option<usize>,
    keep_events: Option<usize>,
}

const USAGE: &str =
    "usage: inngest-dev-server [-p PORT] [--host ADDR] [-u URL]... [--poll-interval DUR | --no-poll] \
[--retry-interval DUR] [--signing-key KEY] [--event-key KEY] [--state-dir DIR] [--keep-runs N] \
[--keep-events N]";

fn parse_count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("{flag} must be a whole number, not `{v}`"))
}

fn parse_duration(flag: &str, v: &str) -> Result<Duration, String> {
    if let Ok(secs) = v.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    inngest_protocol::timestr::parse(v).map_err(|e| format!("{flag}: {e}"))
}

fn parse_args(raw: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        host: "127.0.0.1".into(),
        port: 8288,
        urls: Vec::new(),
        poll: Some(Duration::from_secs(5)),
        retry_interval: None,
        signing_key: None,
        event_key: None,
        state_dir: None,
        keep_runs: None,
        keep_events: None,
    };
    let mut it = raw.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-p" | "--port" => {
                args.port = value()?
                    .parse()
                    .map_err(|_| "--port must be a port number".to_owned())?
            }
            "--host" => args.host = value()?,
            "-u" | "--sdk-url" => args.urls.push(value()?),
            "--poll-interval" => args.poll = Some(parse_duration(&flag, &value()?)?),
            "--no-poll" => args.poll = None,
            "--retry-interval" => args.retry_interval = Some(parse_duration(&flag, &value()?)?),
            "--signing-key" => args.signing_key = Some(value()?),
            "--event-key" => args.event_key = Some(value()?),
            "--state-dir" => args.state_dir = Some(value()?),
            "--keep-runs" => args.keep_runs = Some(parse_count(&flag, &value()?)?),
            "--keep-events" => args.keep_events = Some(parse_count(&flag, &value()?)?),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(args)
}

/// The startup line naming the run dashboard's URL (a wildcard bind address is shown as
/// loopback, where a browser on this machine reaches it).
fn dashboard_line(addr: SocketAddr) -> String {
    let mut shown = addr;
    if shown.ip().is_unspecified() {
        shown.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("Dashboard: http://{shown}/ (runs, steps and events of this local dev server)")
}

/// Syncs every app, logging only changes (first success, errors, recoveries).
async fn sync_all(executor: &Executor, urls: &[String], last: &mut [Option<String>]) {
    for (url, last) in urls.iter().zip(last.iter_mut()) {
        let outcome = executor.register_app(url).await;
        let now = match &outcome {
            Ok(app) => format!("ok:{}:{}", app.id, app.functions.len()),
            Err(e) => format!("err:{e}"),
        };
        if last.as_deref() != Some(now.as_str()) {
            match &outcome {
                Ok(app) => {
                    let names: Vec<&str> = app.functions.iter().map(|f| f.id.as_str()).collect();
                    tracing::info!(%url, app = %app.id, functions = ?names, "app synced");
                }
                Err(e) => tracing::warn!(%url, error = %e, "app sync failed"),
            }
            *last = Some(now);
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let mut builder = Executor::builder()
        .signing_key(args.signing_key.clone())
        .event_key(args.event_key.clone());
    if let Some(d) = args.retry_interval {
        builder = builder.retry_interval(d);
    }
    if let Some(dir) = &args.state_dir {
        builder = builder.state_dir(dir);
    }
    if let Some(n) = args.keep_runs {
        builder = builder.max_finished_runs_in_memory(n);
    }
    if let Some(n) = args.keep_events {
        builder = builder.max_events_in_memory(n);
    }
    let executor = match builder.build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let addr: SocketAddr = match format!("{}:{}", args.host, args.port).parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("invalid --host/--port: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("could not listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        %addr,
        signed = args.signing_key.is_some(),
        event_key = args.event_key.is_some(),
        "local executor listening; point apps at it with INNGEST_DEV=1 INNGEST_BASE_URL=http://{addr}"
    );
    println!("{}", dashboard_line(addr));

    let syncer = executor.clone();
    let urls = args.urls.clone();
    let poll = args.poll;
    tokio::spawn(async move {
        let mut last = vec![None; urls.len()];
        // Give the server a moment to accept the apps' /fn/register calls.
        tokio::time::sleep(Duration::from_millis(100)).await;
        loop {
            sync_all(&syncer, &urls, &mut last).await;
            match poll {
                Some(every) => tokio::time::sleep(every).await,
                None => break,
            }
        }
    });

    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    if let Err(e) = axum::serve(listener, executor.router())
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("server error: {e}");
        return ExitCode::FAILURE;
    }
    executor.shutdown();
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "--port",
            "9000",
            "-u",
            "http://a/api/inngest",
            "--sdk-url=http://b/api/inngest",
            "--retry-interval",
            "1",
            "--poll-interval",
            "500ms",
            "--event-key",
            "k",
            "--state-dir",
            "/tmp/s",
            "--keep-runs",
            "50",
            "--keep-events=70",
        ])
        .unwrap();
        assert_eq!(a.state_dir.as_deref(), Some("/tmp/s"));
        assert_eq!((a.keep_runs, a.keep_events), (Some(50), Some(70)));
        assert_eq!(
            parse(&["--keep-runs", "many"]).unwrap_err(),
            "--keep-runs must be a whole number, not `many`"
        );
        assert_eq!(a.port, 9000);
        assert_eq!(a.host, "127.0.0.1");
        assert_eq!(a.urls, ["http://a/api/inngest", "http://b/api/inngest"]);
        assert_eq!(a.retry_interval, Some(Duration::from_secs(1)));
        assert_eq!(a.poll, Some(Duration::from_millis(500)));
        assert_eq!(a.event_key.as_deref(), Some("k"));
        assert!(parse(&["--no-poll"]).unwrap().poll.is_none());
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--port"]).is_err());
    }

    #[test]
    fn the_dashboard_url_is_printed_for_a_browser() {
        let line = dashboard_line("0.0.0.0:8288".parse().unwrap());
        assert_eq!(
            line,
            "Dashboard: http://127.0.0.1:8288/ (runs, steps and events of this local dev server)"
        );
        assert!(
            dashboard_line("127.0.0.1:9000".parse().unwrap()).contains("http://127.0.0.1:9000/")
        );
    }
}
