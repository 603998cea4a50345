//! SIGTERM drains a connect worker: `WORKER_PAUSE`, the running step finishes and is answered,
//! then the socket closes with `WORKER_SHUTDOWN`. Alone in its test binary, since the signal goes
//! to the whole process.

#![cfg(unix)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_executor::{Executor, StepStatus};
use inngest_sdk::connect::ConnectionState;
use inngest_sdk::{Ctx, Error, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn sigterm_drains_the_worker() {
    let executor = Executor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    tokio::spawn(async move { server.serve(listener).await });
    let client = Inngest::builder("sig")
        .base_url(url)
        .dev(true)
        .build()
        .unwrap();

    let gate = Arc::new(Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let f = Function::new("slow")
        .trigger(Trigger::event("test/slow"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let (g, s) = (g.clone(), s.clone());
            async move {
                let v: u32 = step
                    .run("wait", move || {
                        let (g, s) = (g.clone(), s.clone());
                        async move {
                            s.fetch_add(1, Ordering::SeqCst);
                            let _p = g.acquire().await.map_err(|e| Error::msg(e.to_string()))?;
                            Ok(7)
                        }
                    })
                    .await?;
                Ok(v)
            }
        });
    let worker = client
        .connect([f])
        .unwrap()
        .instance_id("sig-1")
        .start()
        .unwrap();
    assert!(worker.ready().await);
    let event = executor
        .send(json!({"name": "test/slow", "data": {}}))
        .await
        .unwrap();
    until("the step to start", || started.load(Ordering::SeqCst) == 1).await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    until("the connection to drain", || {
        executor
            .connections()
            .first()
            .is_some_and(|c| c.status == "DRAINING")
    })
    .await;
    assert_eq!(worker.state(), ConnectionState::Closing);
    gate.add_permits(1);
    worker.closed().await;
    assert_eq!(worker.state(), ConnectionState::Closed);
    until("the gateway to see the close", || {
        executor.connections().is_empty()
    })
    .await;
    assert_eq!(executor.connect_closed()[0].reason, "WORKER_SHUTDOWN");
    until("the step's reply to be applied", || {
        executor
            .runs_for_event(&event)
            .pop()
            .and_then(|r| r.step("wait").map(|s| s.status))
            == Some(StepStatus::Completed)
    })
    .await;
    let run = executor.runs_for_event(&event).pop().unwrap();
    assert_eq!(run.step("wait").unwrap().output, Some(json!({"data": 7})));
}
