//! The official JS SDK's capture app (`js-app.js`, inngest 4.24.0) driven by the local executor:
//! every run must end as it did under the real dev server (see the classic and checkpointing
//! captures), with the same number of executor requests.
//!
//! Needs Node.js and an npm install, so it is ignored by default:
//!
//! ```text
//! mkdir /tmp/jsapp && cp tests/fixtures/js-app/* /tmp/jsapp/
//! (cd /tmp/jsapp && npm install)   # inngest 4.24.0; .ci/run does this
//! INNGEST_JS_APP_DIR=/tmp/jsapp cargo test --test executor_js -- --ignored
//! ```

use std::sync::Arc;
use std::time::Duration;

use inngest_executor::clock::VirtualClock;
use inngest_executor::{Executor, HistoryKind, RunStatus, RunView};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

struct Js {
    executor: Executor,
    clock: VirtualClock,
    _node: tokio::process::Child,
    _server: tokio::task::JoinHandle<()>,
}

async fn start(checkpointing: bool) -> Option<Js> {
    let Ok(dir) = std::env::var("INNGEST_JS_APP_DIR") else {
        eprintln!("INNGEST_JS_APP_DIR is not set: skipping");
        return None;
    };
    let clock = VirtualClock::default();
    let executor = Executor::builder()
        .clock(Arc::new(clock.clone()))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let server = tokio::spawn(async move {
        let _ = server.serve(listener).await;
    });
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let node = tokio::process::Command::new("node")
        .arg("js-app.js")
        .current_dir(&dir)
        .env("PORT", port.to_string())
        .env("INNGEST_DEV", "1")
        .env("INNGEST_BASE_URL", &base)
        .env("CHECKPOINTING", if checkpointing { "1" } else { "0" })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node is installed");
    let url = format!("http://127.0.0.1:{port}/api/inngest");
    let mut synced = false;
    for _ in 0..100 {
        if executor.register_app(&url).await.is_ok() {
            synced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(synced, "the JS app did not sync");
    Some(Js {
        executor,
        clock,
        _node: node,
        _server: server,
    })
}

impl Js {
    async fn send(&self, name: &str, data: Value) -> String {
        self.executor
            .send(json!({"name": name, "data": data}))
            .await
            .unwrap()
    }

    async fn first_run(&self, event: &str) -> RunView {
        for _ in 0..200 {
            if let Some(r) = self.executor.runs_for_event(event).into_iter().next() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no run for {event}");
    }

    async fn finish(&self, event: &str) -> RunView {
        let run = self.first_run(event).await;
        self.executor.wait_for_run(&run.id, WAIT).await.unwrap()
    }

    async fn paused(&self, event: &str) -> RunView {
        let run = self.first_run(event).await;
        self.executor
            .wait_for(&run.id, WAIT, RunView::is_paused)
            .await
            .unwrap()
    }
}

fn requests(run: &RunView) -> usize {
    run.history_of(HistoryKind::Request).count()
}

async fn scenario(checkpointing: bool) {
    let Some(js) = start(checkpointing).await else {
        return;
    };
    // Request counts per run as captured (classic / checkpointing).
    let n = |classic: usize, cp: usize| if checkpointing { cp } else { classic };

    let id = js.send("test/hello", json!({"hello": "world"})).await;
    js.paused(&id).await;
    js.clock.advance(Duration::from_secs(2));
    let run = js.finish(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output,
        Some(
            json!({"a": {"fromA": 1, "got": {"hello": "world"}}, "attempt": 0, "b": "b saw {\"fromA\":1,\"got\":{\"hello\":\"world\"}}"})
        )
    );
    assert_eq!(requests(&run), n(4, 2));

    let id = js.send("test/wait.start", json!({"id": "x1"})).await;
    js.paused(&id).await;
    let done = js
        .send("test/wait.done", json!({"id": "x1", "extra": 42}))
        .await;
    let run = js.finish(&id).await;
    let out = run.output.clone().unwrap();
    assert_eq!(
        out["after"],
        json!({"matched": true, "gotName": "test/wait.done"})
    );
    assert_eq!(out["got"]["id"], done.as_str());
    assert_eq!(out["got"]["data"], json!({"id": "x1", "extra": 42}));
    assert_eq!(requests(&run), n(3, 2));

    let id = js.send("test/wait-timeout.start", json!({})).await;
    js.paused(&id).await;
    js.clock.advance(Duration::from_secs(3));
    let run = js.finish(&id).await;
    assert_eq!(run.output, Some(json!({"got": null})));
    assert_eq!(requests(&run), 2);

    let id = js.send("test/flaky", json!({})).await;
    let run = js.finish(&id).await;
    assert_eq!(run.output, Some(json!({"okOnAttempt": 1})));
    assert_eq!(requests(&run), 3);

    let id = js.send("test/fails-hard", json!({})).await;
    let run = js.finish(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_ref().unwrap().name, "NonRetriableError");
    assert_eq!(run.error.as_ref().unwrap().message, "nope, never retry");
    assert_eq!(requests(&run), 1);

    let id = js.send("test/step-always-fails", json!({})).await;
    let run = js.finish(&id).await;
    assert_eq!(run.output, Some(json!({"caught": "always"})));
    assert_eq!(requests(&run), 3);

    let id = js.send("test/orchestrate", json!({})).await;
    let run = js.finish(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["invoked"], json!({"nPlusOne": 42}));
    assert_eq!(out["sent"]["ids"].as_array().unwrap().len(), 1);
    assert_eq!(requests(&run), n(3, 2));
    let sent = js
        .executor
        .events()
        .into_iter()
        .filter(|e| e["name"] == "test/sent-by-step")
        .count();
    assert_eq!(sent, 1);
}

#[tokio::test]
#[ignore = "needs Node.js and INNGEST_JS_APP_DIR (see the file docs)"]
async fn js_app_classic() {
    scenario(false).await;
}

#[tokio::test]
#[ignore = "needs Node.js and INNGEST_JS_APP_DIR (see the file docs)"]
async fn js_app_checkpointing() {
    scenario(true).await;
}
