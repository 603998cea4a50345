//! A Rust port of the functions of the JS app the wire captures were recorded with
//! (`shared/wire-captures/js-app.js`, app id `js-capture-app`): same ids, triggers, retries, step
//! ids and return values, so the captured executor requests can be replayed against it.

use std::time::Duration;

use inngest_sdk::{Ctx, Error, Event, Function, Invoke, NonRetriable, Step, Trigger, WaitForEvent};
use serde_json::{json, Value};

pub const APP_ID: &str = "js-capture-app";

#[derive(serde::Deserialize)]
struct ChildData {
    n: i64,
}

pub fn functions() -> Vec<Function> {
    // `child` returns `{ nPlusOne: event.data.n + 1 }`.
    let child = Function::new("child")
        .trigger(Trigger::event("test/child"))
        .handler(|ctx: Ctx<ChildData>, _step: Step| async move {
            Ok(json!({ "nPlusOne": ctx.event.data.n + 1 }))
        });

    // step.run a, step.sleep s 2s, step.run b; returns { a, b, attempt }.
    let hello = Function::new("hello")
        .trigger(Trigger::event("test/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let got = ctx.event.data.clone();
            let a: Value = step
                .run("a", || async move { Ok(json!({ "fromA": 1, "got": got })) })
                .await?;
            step.sleep("s", Duration::from_secs(2)).await;
            let a_text = serde_json::to_string(&a)?;
            let b: String = step
                .run("b", || async move { Ok(format!("b saw {a_text}")) })
                .await?;
            Ok(json!({ "a": a, "b": b, "attempt": ctx.attempt }))
        });

    // waitForEvent test/wait.done (1m, if) then step.run after-wait; returns { after, got }.
    let waiter = Function::new("waiter")
        .trigger(Trigger::event("test/wait.start"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let got: Option<Event<Value>> = step
                .wait_for_event(
                    "wait-for-done",
                    WaitForEvent::new("test/wait.done", Duration::from_secs(60))
                        .if_expr("async.data.id == event.data.id"),
                )
                .await?;
            let (matched, name) = (got.is_some(), got.as_ref().map(|e| e.name.clone()));
            let after: Value = step
                .run("after-wait", || async move {
                    Ok(json!({ "matched": matched, "gotName": name }))
                })
                .await?;
            Ok(json!({ "after": after, "got": got }))
        });

    // waitForEvent that times out (3s) => { got: null }.
    let wait_timeout = Function::new("wait-timeout")
        .trigger(Trigger::event("test/wait-timeout.start"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let got: Option<Event<Value>> = step
                .wait_for_event(
                    "never",
                    WaitForEvent::new("test/never", Duration::from_secs(3)),
                )
                .await?;
            Ok(json!({ "got": got }))
        });

    // A step that throws on attempt 0 and succeeds on the retry (retries 2).
    let flaky = Function::new("flaky")
        .trigger(Trigger::event("test/flaky"))
        .retries(2)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let attempt = ctx.attempt;
            let r: Value = step
                .run("flaky-step", || async move {
                    if attempt == 0 {
                        return Err(Error::msg(format!("boom on attempt {attempt}")));
                    }
                    Ok(json!({ "okOnAttempt": attempt }))
                })
                .await?;
            Ok(r)
        });

    // Function-level NonRetriable (retries 3).
    let fails_hard = Function::new("fails-hard")
        .trigger(Trigger::event("test/fails-hard"))
        .retries(3)
        .handler(|_ctx: Ctx<Value>, _step: Step| async move {
            Err::<Value, Error>(NonRetriable::new("nope, never retry").into())
        });

    // A step that always throws (retries 1); the function catches the StepError.
    let step_always_fails = Function::new("step-always-fails")
        .trigger(Trigger::event("test/step-always-fails"))
        .retries(1)
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let result: Result<Value, _> = step
                .run("always-fails", || async {
                    Err::<Value, _>(Error::msg("always"))
                })
                .await;
            match result {
                Ok(_) => Ok(Value::Null),
                Err(e) => Ok(json!({ "caught": e.message })),
            }
        });

    // step.sendEvent + step.invoke(child).
    let child_ref = child.clone();
    let orchestrator = Function::new("orchestrator")
        .trigger(Trigger::event("test/orchestrate"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let child = child_ref.clone();
            async move {
                let ids = step
                    .send_event(
                        "send-it",
                        vec![Event::new("test/sent-by-step", json!({ "x": 1 }))],
                    )
                    .await?;
                let invoked: Value = step
                    .invoke_with("invoke-child", Invoke::new(&child, json!({ "n": 41 })))
                    .await?;
                Ok(json!({ "sent": { "ids": ids }, "invoked": invoked }))
            }
        });

    vec![
        hello,
        waiter,
        wait_timeout,
        flaky,
        fails_hard,
        step_always_fails,
        orchestrator,
        child,
    ]
}
