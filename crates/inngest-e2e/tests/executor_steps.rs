//! Every step tool through the local executor, over real HTTP, with the virtual clock.

mod executor_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use executor_support::{recording_router, Recorder};
use inngest_executor::{HistoryKind, RunStatus, StepStatus};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{
    Ctx, Error, Event, Function, Invoke, InvokeTarget, NonRetriable, Step, Trigger, WaitForEvent,
};
use serde_json::{json, Value};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn hello() -> Function {
    Function::new("hello")
        .trigger(Trigger::event("test/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: Value = step
                .run("a", || async move {
                    Ok(json!({"fromA": 1, "got": ctx.event.data}))
                })
                .await?;
            step.sleep("s", DAY).await;
            let b: String = step
                .run("b", || async move { Ok(format!("b saw {a}")) })
                .await?;
            Ok(json!({ "b": b }))
        })
}

#[tokio::test]
async fn sleep_pauses_until_the_clock_moves() {
    let h = TestHarness::start("app", [hello()]).await.unwrap();
    let id = h
        .send(Event::new("test/hello", json!({"hello": "world"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    let s = run.step("s").unwrap();
    assert_eq!(s.status, StepStatus::Sleeping);
    assert_eq!(s.op, "Sleep");
    assert_eq!(run.step("a").unwrap().status, StepStatus::Completed);
    assert_eq!(run.requests, 2);

    // Nothing happens until the clock reaches the deadline.
    h.advance(DAY - Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        h.executor().run(&run.id).unwrap().status,
        RunStatus::Running
    );

    h.advance(Duration::from_secs(1));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"b": "b saw {\"fromA\":1,\"got\":{\"hello\":\"world\"}}"}))
    );
    assert_eq!(run.requests, 4);
    let s = run.step("s").unwrap();
    assert_eq!(s.status, StepStatus::Completed);
    assert_eq!(s.output, Some(Value::Null));
    let slept = s.ended_at.unwrap() - s.started_at;
    assert_eq!(slept.num_seconds(), 86_400);
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "s", "b"]);
    assert_eq!(run.step("b").unwrap().attempts, 1);
    assert!(run.history_of(HistoryKind::Sleeping).count() == 1);
    assert!(run.history_of(HistoryKind::Resumed).count() == 1);
}

#[tokio::test]
async fn auto_advance_makes_long_sleeps_instant() {
    let h = TestHarness::builder("app")
        .function(hello())
        .auto_advance(true)
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/hello", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed);
}

#[tokio::test]
async fn sleep_until_an_instant() {
    let f = Function::new("until")
        .trigger(Trigger::event("test/until"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.sleep_until("wake", SystemTime::now() + 2 * HOUR).await;
            Ok("awake")
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/until", json!({}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    assert_eq!(run.step("wake").unwrap().status, StepStatus::Sleeping);
    h.advance(HOUR);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.executor().run(&run.id).unwrap().is_paused());
    h.advance(HOUR + Duration::from_secs(2));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!("awake")));
}

fn waiter() -> Function {
    Function::new("waiter")
        .trigger(Trigger::event("test/wait.start"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let got: Option<Event<Value>> = step
                .wait_for_event(
                    "wait-for-done",
                    WaitForEvent::new("test/wait.done", HOUR).matching("data.id"),
                )
                .await?;
            Ok(json!({ "got": got.map(|e| e.data) }))
        })
}

#[tokio::test]
async fn wait_for_event_matches() {
    let h = TestHarness::start("app", [waiter()]).await.unwrap();
    let id = h
        .send(Event::new("test/wait.start", json!({"id": "x1"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    assert_eq!(
        run.step("wait-for-done").unwrap().status,
        StepStatus::Waiting
    );
    let done = h
        .send(Event::new(
            "test/wait.done",
            json!({"id": "x1", "extra": 42}),
        ))
        .await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({"got": {"id": "x1", "extra": 42}})));
    // The memo is the raw event, not wrapped in {"data": …}.
    let memo = run.step("wait-for-done").unwrap().output.clone().unwrap();
    assert_eq!(memo["name"], "test/wait.done");
    assert_eq!(memo["id"], done.as_str());
    assert_eq!(memo["data"], json!({"id": "x1", "extra": 42}));
}

#[tokio::test]
async fn wait_for_event_times_out_with_null() {
    let h = TestHarness::start("app", [waiter()]).await.unwrap();
    let id = h
        .send(Event::new("test/wait.start", json!({"id": "x1"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.advance(HOUR);
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!({"got": null})));
    let step = run.step("wait-for-done").unwrap();
    assert_eq!(step.status, StepStatus::TimedOut);
    assert_eq!(step.output, Some(Value::Null));
    assert_eq!(run.history_of(HistoryKind::TimedOut).count(), 1);
}

#[tokio::test]
async fn wait_for_event_ignores_events_whose_if_does_not_hold() {
    let h = TestHarness::start("app", [waiter()]).await.unwrap();
    let id = h
        .send(Event::new("test/wait.start", json!({"id": "x1"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.send(Event::new("test/wait.done", json!({"id": "other"})))
        .await;
    h.send(Event::new("test/wait.other", json!({"id": "x1"})))
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let still = h.executor().run(&run.id).unwrap();
    assert!(still.is_paused(), "{still:#?}");
    h.advance(HOUR);
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!({"got": null})));
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
            let target = ctx.event.data["target"]
                .as_str()
                .unwrap_or("child")
                .to_owned();
            let target = if target.contains('-') {
                InvokeTarget::id(target)
            } else {
                InvokeTarget::Local(target)
            };
            let res: Result<Value, _> = step
                .invoke_with("invoke-child", Invoke::new(target, json!({ "n": n })))
                .await;
            Ok(match res {
                Ok(v) => json!({ "invoked": v }),
                Err(e) => json!({ "caught": e.message }),
            })
        })
}

#[tokio::test]
async fn invoke_returns_the_child_output() {
    let h = TestHarness::start("app", [parent(), child()])
        .await
        .unwrap();
    let id = h.send(Event::new("test/parent", json!({"n": 41}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"invoked": {"nPlusOne": 42}})));
    let step = run.step("invoke-child").unwrap();
    assert_eq!(step.op, "InvokeFunction");
    assert_eq!(step.output, Some(json!({"data": {"nPlusOne": 42}})));

    let child = h
        .executor()
        .runs()
        .into_iter()
        .find(|r| r.function_id == "app-child")
        .unwrap();
    assert_eq!(child.status, RunStatus::Completed);
    let ev = child.event();
    assert_eq!(ev["name"], "inngest/function.invoked");
    assert_eq!(ev["data"]["n"], 41);
    let meta = &ev["data"]["_inngest"];
    assert_eq!(
        meta["correlation_id"],
        format!("{}.{}", run.id, inngest_sdk::step::hash_id("invoke-child"))
    );
    assert_eq!(meta["fn_id"], "app-child");
    assert_eq!(meta["name"], "invoke-child");
    let expire = meta["expire"].as_i64().unwrap();
    let ts = ev["ts"].as_i64().unwrap();
    assert_eq!(expire - ts, 365 * 86_400_000);
}

#[tokio::test]
async fn invoke_surfaces_the_child_failure() {
    let h = TestHarness::start("app", [parent(), child()])
        .await
        .unwrap();
    let id = h.send(Event::new("test/parent", json!({"n": -1}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.output, Some(json!({"caught": "negative"})), "{run:#?}");
    let step = run.step("invoke-child").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.output.as_ref().unwrap()["error"]["message"],
        "negative"
    );
    let child = h
        .executor()
        .runs()
        .into_iter()
        .find(|r| r.function_id == "app-child")
        .unwrap();
    assert_eq!(child.status, RunStatus::Failed);
}

#[tokio::test]
async fn invoke_of_an_unknown_function_fails_the_step() {
    let h = TestHarness::start("app", [parent()]).await.unwrap();
    let id = h
        .send(Event::new(
            "test/parent",
            json!({"n": 1, "target": "app-missing"}),
        ))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(
        run.output,
        Some(json!({"caught": "could not find function with ID: app-missing"}))
    );
}

#[tokio::test]
async fn send_event_is_not_repeated_on_replay() {
    let f = Function::new("sender")
        .trigger(Trigger::event("test/send"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let ids = step
                .send_event(
                    "send-it",
                    vec![Event::new("test/sent-by-step", json!({"x": 1}))],
                )
                .await?;
            step.sleep("nap", Duration::from_secs(60)).await;
            let after: u32 = step.run("after", || async { Ok(7) }).await?;
            step.sleep("nap2", Duration::from_secs(60)).await;
            Ok(json!({ "ids": ids, "after": after }))
        });
    let h = TestHarness::builder("app")
        .function(f)
        .auto_advance(true)
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/send", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert!(run.requests >= 5, "the function replayed several times");
    let sent: Vec<Value> = h
        .executor()
        .events()
        .into_iter()
        .filter(|e| e["name"] == "test/sent-by-step")
        .collect();
    assert_eq!(sent.len(), 1, "exactly one send across all replays");
    let ids = run.output.as_ref().unwrap()["ids"].clone();
    assert_eq!(ids.as_array().unwrap().len(), 1);
    let step = run.step("send-it").unwrap();
    assert_eq!(step.output, Some(json!({"data": {"ids": ids}})));
}

fn parallel(n: usize) -> Function {
    Function::new(format!("par{n}"))
        .trigger(Trigger::event(format!("test/par{n}")))
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
        })
}

async fn check_parallel(n: usize) {
    let rec = Recorder::default();
    let h = TestHarness::builder("app")
        .function(parallel(n))
        .app_router("/api/inngest", recording_router(rec.clone()))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new(format!("test/par{n}"), json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!((0..n).sum::<usize>())));
    assert_eq!(run.history_of(HistoryKind::StepPlanned).count(), n);

    let posts = rec.posts_for_run(&run.id);
    // discovery → n targeted → one coalesced discovery (runs `after` inline) → final discovery.
    assert_eq!(
        posts.len(),
        n + 3,
        "{:#?}",
        posts.iter().map(|p| p.query("stepId")).collect::<Vec<_>>()
    );
    assert_eq!(posts[0].query("stepId"), Some("step"));
    assert_eq!(posts[0].body["ctx"]["disable_immediate_execution"], false);
    let mut targeted: Vec<String> = posts[1..=n]
        .iter()
        .map(|p| {
            assert_eq!(p.body["ctx"]["disable_immediate_execution"], true);
            assert_eq!(p.header("x-inngest-step-id"), p.query("stepId"));
            p.query("stepId").unwrap().to_owned()
        })
        .collect();
    targeted.sort();
    let mut expected: Vec<String> = (0..n)
        .map(|i| inngest_sdk::step::hash_id(&format!("p{i}")))
        .collect();
    expected.sort();
    assert_eq!(targeted, expected);
    // Version 2: one discovery after the whole group, with immediate execution enabled again.
    let after = &posts[n + 1];
    assert_eq!(after.query("stepId"), Some("step"));
    assert_eq!(after.body["ctx"]["disable_immediate_execution"], false);
    assert_eq!(
        after.body["ctx"]["stack"]["stack"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
    assert_eq!(posts[n + 2].body["ctx"]["stack"]["current"], n + 1);
}

#[tokio::test]
async fn parallel_two_steps() {
    check_parallel(2).await;
}

#[tokio::test]
async fn parallel_ten_steps() {
    check_parallel(10).await;
}

#[tokio::test]
async fn retries_then_success() {
    let f = Function::new("flaky")
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
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/flaky", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"okOnAttempt": 2})));
    let step = run.step("flaky-step").unwrap();
    assert_eq!(step.attempts, 3);
    assert_eq!(step.status, StepStatus::Completed);
    assert_eq!(run.history_of(HistoryKind::StepErrored).count(), 2);
    assert_eq!(run.history_of(HistoryKind::RetryScheduled).count(), 2);
}

#[tokio::test]
async fn retry_backoff_uses_the_clock() {
    let f = Function::new("flaky")
        .trigger(Trigger::event("test/flaky"))
        .retries(1)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let attempt = ctx.attempt;
            let r: u32 = step
                .run("s", || async move {
                    if attempt == 0 {
                        return Err(Error::msg("first"));
                    }
                    Ok(attempt)
                })
                .await?;
            Ok(r)
        });
    let h = TestHarness::builder("app")
        .function(f)
        .retry_interval(Duration::from_secs(30))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/flaky", json!({}))).await;
    let run = h.first_run_of(&id).await;
    let run = h
        .wait_until(&run.id, "to schedule a retry", |r| {
            r.history_of(HistoryKind::RetryScheduled).count() == 1
        })
        .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.executor().run(&run.id).unwrap().requests, 1);
    h.advance(Duration::from_secs(30));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!(1)));
    assert_eq!(run.requests, 3);
}

#[tokio::test]
async fn exhausted_retries_fail_the_run_and_run_on_failure() {
    let f = Function::new("always")
        .trigger(Trigger::event("test/always"))
        .retries(1)
        .on_failure(
            |ctx: Ctx<inngest_sdk::FunctionFailed<Value>>, _step: Step| async move {
                Ok(json!({
                    "handled": ctx.event.data.error.message,
                    "original": ctx.event.data.event.name,
                    "function": ctx.event.data.function_id,
                }))
            },
        )
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.run("always-fails", || async {
                Err::<u32, _>(Error::msg("always"))
            })
            .await?;
            Ok("unreachable")
        });
    let rec = Recorder::default();
    let h = TestHarness::builder("app")
        .function(f)
        .app_router("/api/inngest", recording_router(rec.clone()))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/always", json!({"k": 1}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(run.error.as_ref().unwrap().message, "always");
    let step = run.step("always-fails").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.attempts, 2);
    // attempt 0 (StepError) → attempt 1 (StepFailed) → discovery (function lets it escape → 400).
    let posts = rec.posts_for_run(&run.id);
    let attempts: Vec<u64> = posts
        .iter()
        .map(|p| p.body["ctx"]["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, [0, 1, 0]);
    assert_eq!(
        posts[2].body["steps"][inngest_sdk::step::hash_id("always-fails")]["error"]["message"],
        "always"
    );

    let failure = h
        .executor()
        .runs()
        .into_iter()
        .find(|r| r.function_id == "app-always-failure")
        .expect("the on_failure handler ran");
    let failure = h.wait_for_run(&failure.id).await;
    assert_eq!(failure.status, RunStatus::Completed, "{failure:#?}");
    assert_eq!(
        failure.output,
        Some(json!({"handled": "always", "original": "test/always", "function": "app-always"}))
    );
    assert_eq!(failure.event()["name"], "inngest/function.failed");
    assert_eq!(failure.event()["data"]["run_id"], run.id.as_str());
}

#[tokio::test]
async fn non_retriable_errors_are_not_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let f = Function::new("fails-hard")
        .trigger(Trigger::event("test/fails-hard"))
        .retries(3)
        .handler(move |_ctx: Ctx<Value>, _step: Step| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Err::<(), Error>(NonRetriable::new("nope, never retry").into())
            }
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/fails-hard", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(run.error.as_ref().unwrap().message, "nope, never retry");
    assert_eq!(run.history_of(HistoryKind::RetryScheduled).count(), 0);
}

#[tokio::test]
async fn retriable_function_errors_use_every_attempt() {
    let f = Function::new("fn-error")
        .trigger(Trigger::event("test/fn-error"))
        .retries(2)
        .handler(
            |_ctx: Ctx<Value>, _step: Step| async move { Err::<(), _>(Error::msg("broken func")) },
        );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/fn-error", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 3);
    assert_eq!(run.error.as_ref().unwrap().message, "broken func");
    assert_eq!(run.history_of(HistoryKind::FunctionError).count(), 3);
}

#[tokio::test]
async fn cancel_on_a_matching_event() {
    let f = Function::new("cancellable")
        .trigger(Trigger::event("test/start"))
        .cancel_on(inngest_sdk::Cancel::new("test/cancel").matching("data.id"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.sleep("long", HOUR).await;
            let _: u8 = step.run("never", || async { Ok(1) }).await?;
            Ok("done")
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    let a = h.send(Event::new("test/start", json!({"id": "a"}))).await;
    let b = h.send(Event::new("test/start", json!({"id": "b"}))).await;
    let run_a = h.wait_for_paused_run_of(&a).await;
    let run_b = h.wait_for_paused_run_of(&b).await;
    h.send(Event::new("test/cancel", json!({"id": "a"}))).await;
    let run_a = h.wait_for_run(&run_a.id).await;
    assert_eq!(run_a.status, RunStatus::Cancelled);
    assert_eq!(run_a.step("long").unwrap().status, StepStatus::Cancelled);
    assert_eq!(run_a.history_of(HistoryKind::Cancelled).count(), 1);
    h.advance(HOUR);
    let run_b = h.wait_for_run(&run_b.id).await;
    assert_eq!(run_b.status, RunStatus::Completed);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = h.executor().run(&run_a.id).unwrap();
    assert_eq!(
        after.requests, run_a.requests,
        "no request after cancellation"
    );
    assert!(h
        .executor()
        .events()
        .iter()
        .any(|e| e["name"] == "inngest/function.cancelled"
            && e["data"]["run_id"] == run_a.id.as_str()));
}

#[tokio::test]
async fn cron_fires_under_the_virtual_clock() {
    let f = Function::new("tick")
        .trigger(Trigger::cron("*/5 * * * *"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move {
            Ok(json!({ "cron": ctx.event.data["cron"], "name": ctx.event.name }))
        });
    let start = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:03:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let h = TestHarness::builder("app")
        .function(f)
        .start_time(start)
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.executor().runs().is_empty());
    h.advance(Duration::from_secs(120));
    let runs = h
        .executor()
        .wait_for_runs_of_function("app-tick", 1, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(
        runs[0].output,
        Some(json!({"cron": "*/5 * * * *", "name": "inngest/scheduled.timer"}))
    );
    assert_eq!(
        runs[0].event()["data"]["scheduledAt"],
        "2030-01-01T00:05:00Z"
    );
    h.advance(Duration::from_secs(300));
    let runs = h
        .executor()
        .wait_for_runs_of_function("app-tick", 2, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        runs[1].event()["data"]["scheduledAt"],
        "2030-01-01T00:10:00Z"
    );
}

#[tokio::test]
async fn step_mocks_replace_a_step() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let f = Function::new("mocked")
        .trigger(Trigger::event("test/mocked"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let counter = counter.clone();
            async move {
                let price: u32 = step
                    .run("fetch-price", || async move {
                        counter.fetch_add(1, Ordering::SeqCst);
                        Ok(100)
                    })
                    .await?;
                let doubled: u32 = step.run("double", || async move { Ok(price * 2) }).await?;
                Ok(doubled)
            }
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    h.mock_step("mocked", "fetch-price", 21);
    let id = h.send(Event::new("test/mocked", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.output, Some(json!(42)));
    assert_eq!(calls.load(Ordering::SeqCst), 0, "the mocked step never ran");
    assert_eq!(run.step("fetch-price").unwrap().status, StepStatus::Mocked);
}

#[tokio::test]
async fn a_run_step_and_a_sleep_in_parallel() {
    let f = Function::new("mixed")
        .trigger(Trigger::event("test/mixed"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let (a, ()) = futures::join!(step.run("a", || async { Ok(1) }), step.sleep("s", HOUR));
            let a: u32 = a?;
            Ok(a)
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/mixed", json!({}))).await;
    let run = h
        .wait_until(&h.first_run_of(&id).await.id, "to run `a` and sleep", |r| {
            r.is_paused()
                && r.step("a")
                    .is_some_and(|s| s.status == StepStatus::Completed)
        })
        .await;
    h.advance(HOUR);
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!(1)));
    assert_eq!(
        run.history_of(HistoryKind::Sleeping).count(),
        1,
        "the re-reported sleep is not restarted"
    );
}

#[tokio::test]
async fn a_race_between_an_event_and_a_sleep() {
    let f = Function::new("race")
        .trigger(Trigger::event("test/race"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let wait = step.wait_for_event::<Value>(
                "approval",
                WaitForEvent::new("test/approved", DAY).matching("data.id"),
            );
            let nap = step.sleep("deadline", HOUR);
            futures::pin_mut!(wait, nap);
            let winner = match futures::future::select(wait, nap).await {
                futures::future::Either::Left((ev, _)) => json!({"approved": ev?.is_some()}),
                futures::future::Either::Right(((), _)) => {
                    json!({"approved": false, "timeout": true})
                }
            };
            Ok(winner)
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    // The event wins.
    let id = h.send(Event::new("test/race", json!({"id": 1}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.send(Event::new("test/approved", json!({"id": 1}))).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!({"approved": true})), "{run:#?}");
    assert_eq!(run.step("deadline").unwrap().status, StepStatus::Cancelled);
    // The sleep wins.
    let id = h.send(Event::new("test/race", json!({"id": 2}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.advance(HOUR);
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(
        run.output,
        Some(json!({"approved": false, "timeout": true}))
    );
}

#[tokio::test]
async fn invoke_times_out() {
    let slow = Function::new("slow")
        .trigger(Trigger::event("test/slow"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.sleep("forever", DAY).await;
            Ok("late")
        });
    let caller = Function::new("caller")
        .trigger(Trigger::event("test/caller"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let r: Result<Value, _> = step
                .invoke_with(
                    "call-slow",
                    Invoke::new(InvokeTarget::Local("slow".into()), json!({}))
                        .timeout(Duration::from_secs(60)),
                )
                .await;
            Ok(match r {
                Ok(v) => json!({"ok": v}),
                Err(e) => json!({"name": e.name, "message": e.message}),
            })
        });
    let h = TestHarness::start("app", [caller, slow]).await.unwrap();
    let id = h.send(Event::new("test/caller", json!({}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    assert_eq!(run.step("call-slow").unwrap().status, StepStatus::Invoking);
    h.advance(Duration::from_secs(60));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(
        run.output,
        Some(
            json!({"name": "InngestInvokeTimeoutError", "message": "Timed out waiting for invoked function to complete"})
        )
    );
    assert_eq!(run.step("call-slow").unwrap().status, StepStatus::TimedOut);
}
