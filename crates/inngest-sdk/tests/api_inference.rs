//! The user API needs no type annotations on results: a handler or a step closure ending in a
//! plain `Ok(value)` infers `inngest_sdk::Error`, and `?` converts any error into it. Each form
//! is served through `serve::axum::router` and driven with hand-built execution requests.

mod support;

use axum::body::Body;
use inngest_sdk::step::hash_id;
use inngest_sdk::{serve, Ctx, Function, FunctionFailed, Inngest, NonRetriable, Step, Trigger};
use serde_json::{json, Value};
use support::Reply;

const APP: &str = "infer-app";

fn functions() -> Vec<Function> {
    vec![
        // The forms of the brief, verbatim: no turbofish anywhere.
        Function::new("plain")
            .trigger(Trigger::event("test/infer"))
            .handler(|ctx: Ctx<Value>, step: Step| async move {
                let a = step.run("a", || async { Ok(1) }).await?;
                Ok(json!({ "a": a, "n": ctx.event.data["n"] }))
            }),
        // `?` on a std error inside a step closure: an ordinary, retriable step error.
        Function::new("parse")
            .trigger(Trigger::event("test/infer"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let n: u32 = step
                    .run("parse", || async {
                        let n: u32 = "not a number".parse()?;
                        Ok(n)
                    })
                    .await?;
                Ok(n)
            }),
        // `?` on NonRetriable in the handler keeps its meaning; an on_failure handler infers too.
        Function::new("refuse")
            .trigger(Trigger::event("test/infer"))
            .on_failure(|ctx: Ctx<FunctionFailed<Value>>, _step: Step| async move {
                Ok(ctx.event.data.run_id)
            })
            .handler(|ctx: Ctx<Value>, _step: Step| async move {
                if ctx.event.data["n"] == 0 {
                    Err(NonRetriable::new("zero is not a quantity"))?;
                }
                Ok("accepted")
            }),
    ]
}

fn router() -> axum::Router {
    let client = Inngest::builder(APP).dev(true).build().expect("client");
    serve::axum::router(&client, functions()).expect("router")
}

/// An execution request for `fn_id` with these memoized steps (hashed id → memo).
fn request(fn_id: &str, steps: Value) -> http::Request<Body> {
    let event = json!({
        "data": { "n": 0 },
        "id": "01HZX9W9R1S2T3U4V5W6X7Y8Z9",
        "name": "test/infer",
        "ts": 1_718_000_000_000i64,
        "user": {}
    });
    support::exec_request(APP, fn_id, event, steps)
}

async fn call(req: http::Request<Body>) -> Reply {
    support::call(router(), req).await
}

/// The reply's ops with their (time-dependent) `timing` removed.
fn ops_without_timing(body: Value) -> Value {
    let mut ops = body;
    for op in ops.as_array_mut().expect("an array of ops") {
        let timing = op.as_object_mut().expect("op object").remove("timing");
        assert!(timing.is_some(), "an executed step reports its timing");
    }
    ops
}

#[tokio::test]
async fn plain_ok_step_runs_and_is_reported() {
    let reply = call(request("plain", json!({}))).await;
    assert_eq!(reply.status, 206);
    assert_eq!(
        ops_without_timing(reply.body),
        json!([{
            "id": hash_id("a"),
            "op": "StepRun",
            "name": "a",
            "displayName": "a",
            "userland": { "id": "a" },
            "data": 1
        }])
    );
}

#[tokio::test]
async fn plain_ok_handler_returns_its_value() {
    let steps = json!({ hash_id("a"): { "data": 1 } });
    let reply = call(request("plain", steps)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({ "a": 1, "n": 0 }));
}

#[tokio::test]
async fn question_mark_in_a_step_is_a_retriable_step_error() {
    let reply = call(request("parse", json!({}))).await;
    assert_eq!(reply.status, 206);
    assert_eq!(reply.no_retry.as_deref(), Some("false"));
    assert_eq!(
        ops_without_timing(reply.body),
        json!([{
            "id": hash_id("parse"),
            "op": "StepError",
            "name": "parse",
            "displayName": "parse",
            "userland": { "id": "parse" },
            "data": null,
            "error": { "name": "Error", "message": "invalid digit found in string" }
        }])
    );
}

#[tokio::test]
async fn question_mark_on_non_retriable_fails_without_retry() {
    let reply = call(request("refuse", json!({}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.no_retry.as_deref(), Some("true"));
    assert_eq!(
        reply.body,
        json!({ "name": "NonRetriableError", "message": "zero is not a quantity" })
    );
}
