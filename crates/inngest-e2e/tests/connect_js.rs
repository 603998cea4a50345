//! The official JS SDK's connect worker (`inngest/connect` of inngest 4.24.0, `js-connect.js`)
//! against the executor's connect gateway: it starts, hand-shakes, syncs its app through the
//! socket, runs steps, sleeps, waits, retries and failures over it, extends its lease through a
//! step longer than the lease, and drains on SIGTERM (`WORKER_PAUSE`, the step answered, close).
//!
//! Needs Node.js and an npm install, so it is ignored by default:
//!
//! ```text
//! mkdir /tmp/jsconnect && cp tests/fixtures/js-connect/* /tmp/jsconnect/
//! (cd /tmp/jsconnect && npm install)   # inngest 4.24.0; .ci/run does this
//! INNGEST_JS_CONNECT_DIR=/tmp/jsconnect cargo test --test connect_js -- --ignored
//! ```

use std::time::Duration;

use inngest_executor::{Executor, HistoryKind, RunStatus, RunView};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(30);
const APP: &str = "js-connect-app";

struct Js {
    executor: Executor,
    node: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    _server: tokio::task::JoinHandle<()>,
}

async fn start() -> Option<Js> {
    let Ok(dir) = std::env::var("INNGEST_JS_CONNECT_DIR") else {
        eprintln!("INNGEST_JS_CONNECT_DIR is not set: skipping");
        return None;
    };
    // A lease shorter than the `slow` step: the run completes only if the worker extends it.
    let executor = Executor::builder()
        .retry_interval(Duration::ZERO)
        .connect_heartbeat(Duration::from_millis(500), 5)
        .connect_lease(Duration::from_secs(1), Duration::from_millis(250))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let server = tokio::spawn(async move {
        let _ = server.serve(listener).await;
    });
    let mut node = tokio::process::Command::new("node");
    if node_major() < 22 {
        // Node 20 and 21 have the WebSocket client the JS SDK needs behind this flag.
        node.arg("--experimental-websocket");
    }
    let mut node = node
        .arg("js-connect.js")
        .current_dir(&dir)
        .env("INNGEST_BASE_URL", &base)
        .env("INNGEST_DEV", "1")
        .env("SLOW_MS", "2500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node is installed");
    let stdout = node.stdout.take().unwrap();
    let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            let _ = tx.send(line);
        }
    });
    Some(Js {
        executor,
        node,
        lines,
        _server: server,
    })
}

/// The major version of the installed Node.js.
fn node_major() -> u32 {
    let out = std::process::Command::new("node")
        .arg("--version")
        .output()
        .expect("node is installed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

impl Js {
    async fn line(&mut self, prefix: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv())
                .await
                .unwrap_or_else(|_| panic!("no `{prefix}` line from the JS worker"))
                .unwrap_or_else(|| panic!("the JS worker exited before `{prefix}`"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    async fn run(&self, name: &str, data: Value) -> RunView {
        let id = self
            .executor
            .send(json!({"name": name, "data": data}))
            .await
            .unwrap();
        let runs = self.executor.wait_for_runs_of(&id, 1, WAIT).await.unwrap();
        self.executor.wait_for_run(&runs[0].id, WAIT).await.unwrap()
    }
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs Node.js and INNGEST_JS_CONNECT_DIR (see the file docs)"]
async fn the_js_connect_worker_runs_against_our_gateway() {
    let Some(mut js) = start().await else { return };
    let ready = js.line("READY ").await;
    let connection_id = ready.trim_start_matches("READY ").to_owned();
    let conn = js
        .executor
        .wait_for_connect_worker(APP, WAIT)
        .await
        .unwrap();
    assert_eq!(conn.id, connection_id);
    assert_eq!(conn.instance_id, "js-worker");
    assert_eq!(conn.sdk, "typescript:v4.24.0");
    let app = js
        .executor
        .apps()
        .into_iter()
        .find(|a| a.id == APP)
        .unwrap();
    assert_eq!(app.url, format!("ws://connect?app_name={APP}"));
    assert_eq!(app.functions.len(), 5);
    for f in &app.functions {
        assert!(
            f.url.starts_with("wss://connect/?fnId=js-connect-app-"),
            "{}",
            f.url
        );
    }

    let run = js.run("test/hello", json!({"x": 1})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"a": {"got": {"x": 1}}, "b": "b saw {\"got\":{\"x\":1}}"}))
    );
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "s", "b"]);

    let run = js.run("test/flaky", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"okOnAttempt": 1})));
    assert_eq!(run.history_of(HistoryKind::StepErrored).count(), 1);

    // A JS quirk the gateway reproduces as the server does: the JS connect worker maps only
    // 200, 206 and 500 to reply statuses and everything else, here the 400 of a
    // NonRetriableError, to DONE, which the server reads as a 200. So over connect the run
    // completes with the serialized error as its output (over HTTP it fails; the Rust worker
    // maps 400 to ERROR).
    let run = js.run("test/fails-hard", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["name"], "NonRetriableError");
    assert_eq!(out["message"], "nope, never retry");
    assert_eq!(run.requests, 1);

    let start = js
        .executor
        .send(json!({"name": "test/wait.start", "data": {"id": "w1"}}))
        .await
        .unwrap();
    wait_until("the wait", || {
        js.executor
            .runs_for_event(&start)
            .first()
            .is_some_and(|r| r.is_paused())
    })
    .await;
    let run_id = js.executor.runs_for_event(&start)[0].id.clone();
    js.executor
        .send(json!({"name": "test/wait.done", "data": {"id": "w1", "v": 2}}))
        .await
        .unwrap();
    let run = js.executor.wait_for_run(&run_id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!({"got": {"id": "w1", "v": 2}})));

    // 2.5 s step, 1 s lease: completes only with lease extensions, and without a retry.
    let run = js.run("test/slow", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"v": "slow done"})));
    assert_eq!(
        run.history_of(HistoryKind::RequestFailed).count(),
        0,
        "{run:#?}"
    );
    assert_eq!(run.step("slow").unwrap().attempts, 1);
    js.line("SLOW STARTED").await; // that run's line

    // SIGTERM mid-step: the worker pauses, finishes the step, answers it and closes.
    let slow = js
        .executor
        .send(json!({"name": "test/slow", "data": {}}))
        .await
        .unwrap();
    js.line("SLOW STARTED").await;
    let pid = js.node.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // WORKER_PAUSE: the gateway stops routing to it while the step finishes.
    wait_until("the connection to drain", || {
        js.executor
            .connections()
            .first()
            .is_some_and(|c| c.status == "DRAINING")
    })
    .await;
    js.line("CLOSED").await;
    wait_until("the gateway to see the close", || {
        js.executor.connections().is_empty()
    })
    .await;
    // The JS worker closes its socket without a code or reason (`ws.close()`), which the
    // server, and so the gateway, records as UNEXPECTED.
    let closed = js.executor.connect_closed();
    assert_eq!(closed.last().unwrap().id, connection_id);
    assert_eq!(closed.last().unwrap().reason, "UNEXPECTED");
    wait_until("the in-flight step's reply to be applied", || {
        js.executor
            .runs_for_event(&slow)
            .first()
            .and_then(|r| r.step("slow").map(|s| s.output.clone()))
            == Some(Some(json!({"data": "slow done"})))
    })
    .await;
}
