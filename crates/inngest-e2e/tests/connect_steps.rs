//! The step surface over connect: the app runs as a connect worker (`TestHarness::connect`)
//! that dials the executor's gateway, so every request of these runs goes over the WebSocket.
//! Each test checks the run as `executor_steps.rs` checks it over HTTP, and that the app really
//! is a connect app (its URL is `ws://connect?app_name=app`, so the executor cannot reach it over
//! HTTP).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_executor::{HistoryKind, RunStatus, StepStatus};
use inngest_sdk::connect::ConnectionState;
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{
    Cancel, Ctx, Error, Event, Function, FunctionFailed, Invoke, InvokeTarget, NonRetriable, Step,
    Trigger, WaitForEvent,
};
use serde_json::{json, Value};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

async fn harness(functions: Vec<Function>) -> TestHarness {
    let h = TestHarness::builder("app")
        .functions(functions)
        .connect(true)
        .start()
        .await
        .unwrap();
    assert_eq!(h.app_url(), "ws://connect?app_name=app");
    let app = h.resync().await.unwrap();
    assert_eq!(app.url, "ws://connect?app_name=app");
    for f in &app.functions {
        assert!(f.url.starts_with("wss://connect/?fnId=app-"), "{}", f.url);
    }
    let worker = h.connect_worker().unwrap();
    assert_eq!(worker.state(), ConnectionState::Active);
    let conns = h.executor().connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].instance_id, "test-harness");
    assert_eq!(conns[0].status, "READY");
    assert_eq!(conns[0].apps, ["app"]);
    assert!(conns[0].sdk.starts_with("rust:v"), "{}", conns[0].sdk);
    assert_eq!(Some(conns[0].id.clone()), worker.connection_id());
    h
}

#[tokio::test]
async fn steps_and_a_sleep_run_over_the_socket() {
    let f = Function::new("hello")
        .trigger(Trigger::event("test/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: Value = step
                .run("a", || async move { Ok(json!({"got": ctx.event.data})) })
                .await?;
            step.sleep("s", DAY).await;
            let b: String = step
                .run("b", || async move { Ok(format!("b saw {a}")) })
                .await?;
            Ok(json!({ "b": b }))
        });
    let h = harness(vec![f]).await;
    let id = h.send(Event::new("test/hello", json!({"x": 1}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    assert_eq!(run.step("s").unwrap().status, StepStatus::Sleeping);
    assert_eq!(run.step("a").unwrap().status, StepStatus::Completed);
    h.advance(DAY);
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"b": "b saw {\"got\":{\"x\":1}}"})));
    assert_eq!(run.requests, 4);
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "s", "b"]);
}

#[tokio::test]
async fn wait_for_event_matches_and_times_out() {
    let f = Function::new("waiter")
        .trigger(Trigger::event("test/wait.start"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let got: Option<Event<Value>> = step
                .wait_for_event(
                    "wait-for-done",
                    WaitForEvent::new("test/wait.done", HOUR).matching("data.id"),
                )
                .await?;
            Ok(json!({ "got": got.map(|e| e.data) }))
        });
    let h = harness(vec![f]).await;
    let matched = h
        .send(Event::new("test/wait.start", json!({"id": "x1"})))
        .await;
    let timed_out = h
        .send(Event::new("test/wait.start", json!({"id": "x2"})))
        .await;
    let run = h.wait_for_paused_run_of(&matched).await;
    let other = h.wait_for_paused_run_of(&timed_out).await;
    assert_eq!(
        run.step("wait-for-done").unwrap().status,
        StepStatus::Waiting
    );
    h.send(Event::new(
        "test/wait.done",
        json!({"id": "x1", "extra": 42}),
    ))
    .await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({"got": {"id": "x1", "extra": 42}})));
    h.advance(HOUR);
    let other = h.wait_for_run(&other.id).await;
    assert_eq!(other.output, Some(json!({"got": null})));
}

fn child() -> Function {
    Function::new("child")
        .trigger(Trigger::event("test/child"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move {
            let n = ctx.event.data["n"].as_i64().unwrap_or(0);
            if n < 0 {
                return Err(NonRetriable::new("negative").into());
            }
            Ok(json!({ "nPlusOne": n + 1 }))
        })
}

fn parent() -> Function {
    Function::new("parent")
        .trigger(Trigger::event("test/parent"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let n = ctx.event.data["n"].clone();
            let res: Result<Value, _> = step
                .invoke_with(
                    "invoke-child",
                    Invoke::new(InvokeTarget::Local("child".into()), json!({ "n": n })),
                )
                .await;
            Ok(match res {
                Ok(v) => json!({ "invoked": v }),
                Err(e) => json!({ "caught": e.message }),
            })
        })
}

#[tokio::test]
async fn invoke_returns_the_child_output_and_surfaces_its_failure() {
    let h = harness(vec![parent(), child()]).await;
    let ok = h.send(Event::new("test/parent", json!({"n": 41}))).await;
    let run = h.wait_for_run_of(&ok).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"invoked": {"nPlusOne": 42}})));
    let step = run.step("invoke-child").unwrap();
    assert_eq!(step.op, "InvokeFunction");
    assert_eq!(step.output, Some(json!({"data": {"nPlusOne": 42}})));

    let bad = h.send(Event::new("test/parent", json!({"n": -1}))).await;
    let run = h.wait_for_run_of(&bad).await;
    assert_eq!(run.output, Some(json!({"caught": "negative"})), "{run:#?}");
    assert_eq!(run.step("invoke-child").unwrap().status, StepStatus::Failed);
    let children: Vec<RunStatus> = h
        .executor()
        .runs()
        .into_iter()
        .filter(|r| r.function_id == "app-child")
        .map(|r| r.status)
        .collect();
    assert_eq!(children.len(), 2);
    assert!(children.contains(&RunStatus::Completed) && children.contains(&RunStatus::Failed));
}

#[tokio::test]
async fn parallel_steps_are_planned_and_run_one_request_each() {
    let n = 4;
    let f = Function::new("par")
        .trigger(Trigger::event("test/par"))
        .handler(move |_ctx: Ctx<Value>, step: Step| async move {
            let futs = (0..n).map(|i| {
                let step = step.clone();
                async move { step.run(&format!("p{i}"), || async move { Ok(i) }).await }
            });
            let results: Vec<usize> = futures::future::try_join_all(futs).await?;
            let total: usize = step
                .run("after", || async move { Ok(results.iter().sum::<usize>()) })
                .await?;
            Ok(total)
        });
    let h = harness(vec![f]).await;
    let id = h.send(Event::new("test/par", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!(6)));
    assert_eq!(run.history_of(HistoryKind::StepPlanned).count(), n);
    // discovery → n targeted → one coalesced discovery (runs `after` inline) → final discovery.
    assert_eq!(run.requests, n as u32 + 3);
}

#[tokio::test]
async fn retries_then_success_and_non_retriable_errors() {
    let flaky = Function::new("flaky")
        .trigger(Trigger::event("test/flaky"))
        .retries(2)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let attempt = ctx.attempt;
            let r: Value = step
                .run("flaky-step", || async move {
                    if attempt < 2 {
                        return Err(Error::msg(format!("boom on attempt {attempt}")));
                    }
                    Ok(json!({ "okOnAttempt": attempt }))
                })
                .await?;
            Ok(r)
        });
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let hard = Function::new("fails-hard")
        .trigger(Trigger::event("test/fails-hard"))
        .retries(3)
        .handler(move |_ctx: Ctx<Value>, _step: Step| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Err::<(), Error>(NonRetriable::new("nope, never retry").into())
            }
        });
    let h = harness(vec![flaky, hard]).await;
    let id = h.send(Event::new("test/flaky", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"okOnAttempt": 2})));
    let step = run.step("flaky-step").unwrap();
    assert_eq!(step.attempts, 3);
    assert_eq!(run.history_of(HistoryKind::StepErrored).count(), 2);
    assert_eq!(run.history_of(HistoryKind::RetryScheduled).count(), 2);

    let id = h.send(Event::new("test/fails-hard", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(run.error.as_ref().unwrap().message, "nope, never retry");
    assert_eq!(run.history_of(HistoryKind::RetryScheduled).count(), 0);
}

#[tokio::test]
async fn exhausted_retries_fail_the_run_and_run_the_failure_handler() {
    let f = Function::new("always")
        .trigger(Trigger::event("test/always"))
        .retries(1)
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, _step: Step| async move {
            Ok(json!({
                "handled": ctx.event.data.error.message,
                "function": ctx.event.data.function_id,
            }))
        })
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.run("always-fails", || async {
                Err::<u32, _>(Error::msg("always"))
            })
            .await?;
            Ok("unreachable")
        });
    let h = harness(vec![f]).await;
    let id = h.send(Event::new("test/always", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(run.error.as_ref().unwrap().message, "always");
    assert_eq!(run.step("always-fails").unwrap().attempts, 2);
    let failure = h
        .executor()
        .wait_for_runs_of_function("app-always-failure", 1, Duration::from_secs(10))
        .await
        .unwrap()
        .remove(0);
    let failure = h.wait_for_run(&failure.id).await;
    assert_eq!(failure.status, RunStatus::Completed, "{failure:#?}");
    assert_eq!(
        failure.output,
        Some(json!({"handled": "always", "function": "app-always"}))
    );
}

#[tokio::test]
async fn cancel_on_a_matching_event() {
    let f = Function::new("cancellable")
        .trigger(Trigger::event("test/start"))
        .cancel_on(Cancel::new("test/cancel").matching("data.id"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.sleep("long", HOUR).await;
            let _: u8 = step.run("never", || async { Ok(1) }).await?;
            Ok("done")
        });
    let h = harness(vec![f]).await;
    let a = h.send(Event::new("test/start", json!({"id": "a"}))).await;
    let b = h.send(Event::new("test/start", json!({"id": "b"}))).await;
    let run_a = h.wait_for_paused_run_of(&a).await;
    let run_b = h.wait_for_paused_run_of(&b).await;
    h.send(Event::new("test/cancel", json!({"id": "a"}))).await;
    let run_a = h.wait_for_run(&run_a.id).await;
    assert_eq!(run_a.status, RunStatus::Cancelled);
    assert_eq!(run_a.step("long").unwrap().status, StepStatus::Cancelled);
    h.advance(HOUR);
    let run_b = h.wait_for_run(&run_b.id).await;
    assert_eq!(run_b.status, RunStatus::Completed);
    assert_eq!(run_b.output, Some(json!("done")));
}

#[tokio::test]
async fn a_cloud_mode_worker_starts_with_the_hashed_key_and_runs_signed_requests() {
    let f = Function::new("keyed")
        .trigger(Trigger::event("test/keyed"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let v: u32 = step.run("one", || async { Ok(1) }).await?;
            Ok(json!({ "v": v }))
        });
    let h = TestHarness::builder("app")
        .function(f)
        .signing_key("signkey-test-0123456789abcdef")
        .connect(true)
        .start()
        .await
        .unwrap();
    assert_eq!(h.client().config().mode(), inngest_sdk::Mode::Cloud);
    assert_eq!(h.executor().connections().len(), 1);
    let id = h.send(Event::new("test/keyed", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"v": 1})));
}

#[tokio::test]
async fn a_worker_with_the_wrong_key_is_refused_at_the_start_call_and_keeps_retrying() {
    let executor = inngest_executor::Executor::builder()
        .signing_key(Some("signkey-test-0123456789abcdef".into()))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    tokio::spawn(async move { server.serve(listener).await });
    let client = inngest_sdk::Inngest::builder("app")
        .base_url(url)
        .dev(false)
        .signing_key("signkey-test-ffffffffffffffff")
        .build()
        .unwrap();
    let f = Function::new("f")
        .trigger(Trigger::event("test/f"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(1) });
    let worker = client
        .connect([f])
        .unwrap()
        .handle_shutdown_signals(false)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(50))
        .start()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(worker.state(), ConnectionState::Connecting);
    assert!(executor.connections().is_empty());
    assert!(executor.apps().is_empty());
    worker.abort();
}
