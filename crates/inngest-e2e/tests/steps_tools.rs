//! Step tools over real HTTP against the `Router`: sleep, sleep_until, wait_for_event, invoke and
//! send_event, each used first thing in a function body and inside a flow of other steps, with
//! the op shapes the server expects and each memo shape (`null`, the raw event, `{"data":…}`,
//! `{"error":…}`). Hashes are SHA-1 values computed with Python's hashlib.

mod support;

use std::time::{Duration, SystemTime};

use inngest_sdk::{
    Ctx, Error, Event, Function, Inngest, Invoke, InvokeTarget, Step, Trigger, WaitForEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::{event, op_core, serve_app, Call, FakeApi, Server, FAKE_EVENT_IDS};

const APP: &str = "steps-app";

const H_NAP: &str = "c2640f79b4ed481b838ce4ad75330aa3f825d4d9";
const H_BEFORE: &str = "51de2b835bd35a67eb32dbcd3d77d4b96e5aa39d";
const H_AFTER: &str = "405906c9d5be6ae5393ca65fb0e7c38e0d585ecb";
const H_UNTIL: &str = "b310f4d4d89b8570184b9777ad7d90fc1df20457";
const H_PAST: &str = "dc52f279269d00ddcc22b2e6bb47a812c140dfdc";
const H_AFTER_PAST: &str = "7b64414d1aca5bff7814caa14ce0bdfc06b96dda";
const H_PAID: &str = "9e1f1120d2eedc498808e1d855cfdbbd5564f22b";
const H_CALL_CHILD: &str = "93f72581df96e9a8f01f1481b3570b4e9370a0a6";
const H_SEND: &str = "37ed539c0cef13959abd980bebf30f4922f606e3";
const H_PREP: &str = "2916a72bc301eb3cb0d07ace92f345047a7a0696";

/// 2099-01-02T03:04:05Z.
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(4_071_006_245)
}

#[derive(Debug, Serialize, Deserialize)]
struct Paid {
    order_id: String,
    amount: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct ChildOut {
    #[serde(rename = "nPlusOne")]
    n_plus_one: i64,
}

async fn before(step: &Step) -> Result<String, Error> {
    Ok(step.run("before", || async { Ok("b".to_owned()) }).await?)
}

async fn after(step: &Step, v: Value) -> Result<Value, Error> {
    Ok(step
        .run("after", || async move { Ok(json!({ "after": v })) })
        .await?)
}

fn functions() -> Vec<Function> {
    let child = Function::new("child")
        .trigger(Trigger::event("app/child"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move {
            Ok(json!({ "nPlusOne": ctx.event.data["n"].as_i64().unwrap_or(0) + 1 }))
        });
    let child_for_invoke = child.clone();
    let child_for_flow = child.clone();
    vec![
        // sleep
        Function::new("sleep")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.sleep("nap", Duration::from_secs(90)).await;
                Ok("slept")
            }),
        Function::new("sleep-flow")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let b = before(&step).await?;
                step.sleep("nap", Duration::from_secs(5400)).await;
                after(&step, json!(b)).await
            }),
        // sleep_until
        Function::new("sleep-until")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.sleep_until("until", far_future()).await;
                Ok("woke")
            }),
        Function::new("sleep-until-flow")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let b = before(&step).await?;
                step.sleep_until("until", far_future()).await;
                after(&step, json!(b)).await
            }),
        Function::new("sleep-until-past")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.sleep_until(
                    "past",
                    SystemTime::UNIX_EPOCH + Duration::from_secs(978_307_200),
                )
                .await;
                let v: String = step
                    .run("after-past", || async { Ok("ran".to_owned()) })
                    .await?;
                Ok(v)
            }),
        // wait_for_event
        Function::new("wait")
            .trigger(Trigger::event("app/order"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let paid: Option<Event<Paid>> = step
                    .wait_for_event(
                        "paid",
                        WaitForEvent::new("app/paid", Duration::from_secs(7200))
                            .if_expr("async.data.order_id == event.data.order_id"),
                    )
                    .await?;
                Ok(match paid {
                    Some(e) => {
                        json!({ "amount": e.data.amount, "order": e.data.order_id, "name": e.name })
                    }
                    None => json!({ "timedOut": true }),
                })
            }),
        Function::new("wait-flow")
            .trigger(Trigger::event("app/order"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let b = before(&step).await?;
                let paid: Option<Event<Paid>> = step
                    .wait_for_event(
                        "paid",
                        WaitForEvent::new("app/paid", Duration::from_secs(86_400))
                            .matching("data.order_id"),
                    )
                    .await?;
                after(&step, json!([b, paid.map(|e| e.data.amount)])).await
            }),
        // invoke
        Function::new("invoke")
            .trigger(Trigger::event("app/t"))
            .handler(move |_ctx: Ctx<Value>, step: Step| {
                let child = child_for_invoke.clone();
                async move {
                    let out: Result<ChildOut, _> = step
                        .invoke_with(
                            "call-child",
                            Invoke::new(&child, json!({ "n": 1 }))
                                .timeout(Duration::from_secs(3600)),
                        )
                        .await;
                    Ok(match out {
                        Ok(o) => json!({ "got": o.n_plus_one }),
                        Err(e) => json!({ "invokeFailed": e.message, "errorName": e.name }),
                    })
                }
            }),
        Function::new("invoke-flow")
            .trigger(Trigger::event("app/t"))
            .handler(move |_ctx: Ctx<Value>, step: Step| {
                let child = child_for_flow.clone();
                async move {
                    let b = before(&step).await?;
                    // `?` lets a failed child escape: the run fails without retries.
                    let out: ChildOut = step
                        .invoke_with(
                            "call-child",
                            Invoke::new(&child, json!({ "n": 41, "b": b })),
                        )
                        .await?;
                    after(&step, json!(out.n_plus_one)).await
                }
            }),
        Function::new("invoke-other-app")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let v: Value = step
                    .invoke_with(
                        "call-child",
                        Invoke::new(InvokeTarget::id("billing-compute-tax"), json!({})),
                    )
                    .await?;
                Ok(v)
            }),
        // send_event
        Function::new("send")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let ids = step
                    .send_event(
                        "send",
                        vec![
                            Event::new("app/x", json!({ "k": 1 })),
                            Event::new("app/y", json!({ "k": 2 })).with_id("dedupe-y"),
                        ],
                    )
                    .await?;
                Ok(json!({ "ids": ids }))
            }),
        Function::new("send-flow")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let p: u32 = step.run("prep", || async { Ok(7u32) }).await?;
                let ids = step
                    .send_event("send", vec![Event::new("app/x", json!({ "prep": p }))])
                    .await?;
                Ok(json!({ "ids": ids }))
            }),
        // Outputs that are JSON null: unit and None.
        Function::new("nulls")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.run("before", || async { Ok(()) }).await?;
                let none: Option<u32> = step.run("after", || async { Ok(None) }).await?;
                Ok(json!({ "none": none }))
            }),
        // A memoized output larger than axum's default 2 MB body limit.
        Function::new("big")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let s: String = step
                    .run("before", || async { Ok("x".repeat(4 << 20)) })
                    .await?;
                Ok(s.len())
            }),
        // How big a `step.run` future is: it is moved into the function's own future at every
        // step, replayed or not, so it must stay small (it was 1,264 bytes before the executed
        // path moved to the heap).
        Function::new("future-size")
            .trigger(Trigger::event("app/t"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let fut = step.run("before", || async { Ok(json!({ "big": [1, 2, 3] })) });
                let size = std::mem::size_of_val(&fut);
                let out = fut.await?;
                Ok(json!({ "size": size, "out": out }))
            }),
        child,
    ]
}

async fn app() -> (Server, FakeApi) {
    let fake = FakeApi::start().await;
    let client: Inngest = support::dev_client(APP, &fake);
    (serve_app(&client, functions()).await, fake)
}

fn call(f: &str) -> Call {
    Call::new(
        &format!("{APP}-{f}"),
        event("app/t", json!({ "order_id": "o1" })),
    )
}

/// A 206 with exactly one op, no `X-Inngest-No-Retry`, whose core fields are `expected`.
fn assert_one_op(resp: &support::Resp, expected: Value) -> Value {
    resp.assert_sdk_headers();
    resp.assert_no_retry(None);
    let ops = resp.ops();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(op_core(&ops[0]), expected);
    ops[0].clone()
}

// ------------------------------------------------------------------------------------------------
// sleep

#[tokio::test]
async fn sleep_in_body_reports_sleep_then_resumes_on_null() {
    let (server, _) = app().await;
    let op = assert_one_op(
        &call("sleep").post(&server).await,
        json!({"id": H_NAP, "op": "Sleep", "name": "nap", "opts": {"duration": "1m30s"}, "data": null}),
    );
    assert_eq!(op["displayName"], "nap");
    assert!(op.get("timing").is_none());
    let resp = call("sleep").memo(H_NAP, Value::Null).post(&server).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!("slept"));
    resp.assert_no_retry(None);
}

#[tokio::test]
async fn sleep_in_a_flow() {
    let (server, _) = app().await;
    // before runs inline first.
    assert_one_op(
        &call("sleep-flow").post(&server).await,
        json!({"id": H_BEFORE, "op": "StepRun", "name": "before", "data": "b"}),
    );
    assert_one_op(
        &call("sleep-flow")
            .memo(H_BEFORE, json!({"data": "b"}))
            .post(&server)
            .await,
        json!({"id": H_NAP, "op": "Sleep", "name": "nap", "opts": {"duration": "1h30m"}, "data": null}),
    );
    assert_one_op(
        &call("sleep-flow")
            .memo(H_BEFORE, json!({"data": "b"}))
            .memo(H_NAP, Value::Null)
            .post(&server)
            .await,
        json!({"id": H_AFTER, "op": "StepRun", "name": "after", "data": {"after": "b"}}),
    );
}

// ------------------------------------------------------------------------------------------------
// sleep_until

#[tokio::test]
async fn sleep_until_future_in_body_reports_an_rfc3339_duration() {
    let (server, _) = app().await;
    assert_one_op(
        &call("sleep-until").post(&server).await,
        json!({"id": H_UNTIL, "op": "Sleep", "name": "until",
               "opts": {"duration": "2099-01-02T03:04:05Z"}, "data": null}),
    );
    let resp = call("sleep-until")
        .memo(H_UNTIL, Value::Null)
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!("woke")));
}

#[tokio::test]
async fn sleep_until_future_in_a_flow() {
    let (server, _) = app().await;
    assert_one_op(
        &call("sleep-until-flow")
            .memo(H_BEFORE, json!({"data": "b"}))
            .post(&server)
            .await,
        json!({"id": H_UNTIL, "op": "Sleep", "name": "until",
               "opts": {"duration": "2099-01-02T03:04:05Z"}, "data": null}),
    );
    let resp = call("sleep-until-flow")
        .memo(H_BEFORE, json!({"data": "b"}))
        .memo(H_UNTIL, Value::Null)
        .post(&server)
        .await;
    assert_eq!(op_core(&resp.ops()[0])["id"], H_AFTER);
}

#[tokio::test]
async fn sleep_until_past_resolves_without_an_op() {
    let (server, _) = app().await;
    // No Sleep op for a past instant: the next step runs in the same call.
    let op = assert_one_op(
        &call("sleep-until-past").post(&server).await,
        json!({"id": H_AFTER_PAST, "op": "StepRun", "name": "after-past", "data": "ran"}),
    );
    assert_ne!(op["id"], H_PAST);
    let resp = call("sleep-until-past")
        .memo(H_AFTER_PAST, json!({"data": "ran"}))
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!("ran")));
}

// ------------------------------------------------------------------------------------------------
// wait_for_event

fn paid_event(amount: u64) -> Value {
    json!({"data": {"amount": amount, "order_id": "o1"}, "id": "01M8GA0TG3FXW6037EWS41R8A9",
           "name": "app/paid", "ts": 1795843713539i64, "user": {}})
}

#[tokio::test]
async fn wait_for_event_in_body_op_event_and_timeout() {
    let (server, _) = app().await;
    let c = Call::new(
        &format!("{APP}-wait"),
        event("app/order", json!({"order_id": "o1"})),
    );
    // Op: name = step id, opts exactly {event, if, timeout}, data null.
    assert_one_op(
        &c.post(&server).await,
        json!({"id": H_PAID, "op": "WaitForEvent", "name": "paid",
               "opts": {"event": "app/paid", "if": "async.data.order_id == event.data.order_id",
                        "timeout": "2h"},
               "data": null}),
    );
    // Memo = the raw event (not wrapped) → Some(typed event).
    let resp = c.clone().memo(H_PAID, paid_event(42)).post(&server).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"amount": 42, "order": "o1", "name": "app/paid"})
    );
    // Memo null = timed out → None.
    let resp = c.clone().memo(H_PAID, Value::Null).post(&server).await;
    assert_eq!(resp.json(), json!({"timedOut": true}));
    // An event whose data does not fit the type: the typed error escapes with `?` → 400.
    let resp = c
        .memo(
            H_PAID,
            json!({"data": {"amount": "lots"}, "id": "x", "name": "app/paid", "ts": 1, "user": {}}),
        )
        .post(&server)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_no_retry(Some("true"));
}

#[tokio::test]
async fn wait_for_event_in_a_flow_with_the_matching_helper() {
    let (server, _) = app().await;
    let c = Call::new(
        &format!("{APP}-wait-flow"),
        event("app/order", json!({"order_id": "o1"})),
    )
    .memo(H_BEFORE, json!({"data": "b"}));
    assert_one_op(
        &c.post(&server).await,
        json!({"id": H_PAID, "op": "WaitForEvent", "name": "paid",
               "opts": {"event": "app/paid", "if": "event.data.order_id == async.data.order_id",
                        "timeout": "1d"},
               "data": null}),
    );
    assert_one_op(
        &c.clone().memo(H_PAID, paid_event(7)).post(&server).await,
        json!({"id": H_AFTER, "op": "StepRun", "name": "after", "data": {"after": ["b", 7]}}),
    );
    assert_one_op(
        &c.memo(H_PAID, Value::Null).post(&server).await,
        json!({"id": H_AFTER, "op": "StepRun", "name": "after", "data": {"after": ["b", null]}}),
    );
}

// ------------------------------------------------------------------------------------------------
// invoke

#[tokio::test]
async fn invoke_in_body_op_data_and_error() {
    let (server, _) = app().await;
    // Composite `<app>-<fn>` computed from the Function handle; timeout as a time string.
    assert_one_op(
        &call("invoke").post(&server).await,
        json!({"id": H_CALL_CHILD, "op": "InvokeFunction", "name": "call-child",
               "opts": {"function_id": "steps-app-child", "payload": {"data": {"n": 1}}, "timeout": "1h"},
               "data": null}),
    );
    let resp = call("invoke")
        .memo(H_CALL_CHILD, json!({"data": {"nPlusOne": 2}}))
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!({"got": 2})));
    // {"error": …} (the server's invoke-timeout shape, with its extra `error` key) → StepError.
    let resp = call("invoke")
        .memo(
            H_CALL_CHILD,
            json!({"error": {"error": "InngestInvokeTimeoutError: Timed out waiting for invoked function to complete",
                             "name": "InngestInvokeTimeoutError",
                             "message": "Timed out waiting for invoked function to complete"}}),
        )
        .post(&server)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"invokeFailed": "Timed out waiting for invoked function to complete",
               "errorName": "InngestInvokeTimeoutError"})
    );
}

#[tokio::test]
async fn invoke_in_a_flow_and_an_escaping_child_error() {
    let (server, _) = app().await;
    let c = call("invoke-flow").memo(H_BEFORE, json!({"data": "b"}));
    // No timeout given → no opts.timeout (the server then applies its 1-year default).
    assert_one_op(
        &c.post(&server).await,
        json!({"id": H_CALL_CHILD, "op": "InvokeFunction", "name": "call-child",
               "opts": {"function_id": "steps-app-child", "payload": {"data": {"n": 41, "b": "b"}}},
               "data": null}),
    );
    assert_one_op(
        &c.clone()
            .memo(H_CALL_CHILD, json!({"data": {"nPlusOne": 42}}))
            .post(&server)
            .await,
        json!({"id": H_AFTER, "op": "StepRun", "name": "after", "data": {"after": 42}}),
    );
    let resp = c
        .memo(
            H_CALL_CHILD,
            json!({"error": {"name": "Error", "message": "could not find function with ID: steps-app-child"}}),
        )
        .post(&server)
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_no_retry(Some("true"));
    assert_eq!(
        resp.json()["message"],
        "could not find function with ID: steps-app-child"
    );
}

#[tokio::test]
async fn invoke_by_composite_id_of_another_app() {
    let (server, _) = app().await;
    let op = call("invoke-other-app").post(&server).await.ops()[0].clone();
    assert_eq!(
        op["opts"],
        json!({"function_id": "billing-compute-tax", "payload": {"data": {}}})
    );
}

// ------------------------------------------------------------------------------------------------
// send_event

#[tokio::test]
async fn send_event_in_body_posts_once_and_replays_from_memo() {
    let (server, fake) = app().await;
    let op = assert_one_op(
        &call("send").post(&server).await,
        json!({"id": H_SEND, "op": "StepRun", "name": "sendEvent",
               "opts": {"type": "step.sendEvent"},
               "data": {"ids": [FAKE_EVENT_IDS[0], FAKE_EVENT_IDS[1]]}}),
    );
    assert_eq!(op["displayName"], "send");
    assert_eq!(op["userland"], json!({"id": "send"}));
    let sent = fake.requests_to("/e/");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/e/NO_EVENT_KEY_SET");
    let body = sent[0].json();
    assert_eq!(body.as_array().unwrap().len(), 2);
    assert_eq!(body[0]["name"], "app/x");
    assert_eq!(body[0]["data"], json!({"k": 1}));
    assert_eq!(body[1]["id"], "dedupe-y");

    // Replay with the memo: no second POST, the function gets the ids.
    let resp = call("send")
        .memo(H_SEND, json!({"data": {"ids": ["id-1", "id-2"]}}))
        .post(&server)
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!({"ids": ["id-1", "id-2"]}))
    );
    assert_eq!(fake.requests_to("/e/").len(), 1, "no second send on replay");
}

#[tokio::test]
async fn send_event_in_a_flow() {
    let (server, fake) = app().await;
    assert_one_op(
        &call("send-flow").post(&server).await,
        json!({"id": H_PREP, "op": "StepRun", "name": "prep", "data": 7}),
    );
    assert!(fake.requests_to("/e/").is_empty());
    let c = call("send-flow").memo(H_PREP, json!({"data": 7}));
    assert_one_op(
        &c.post(&server).await,
        json!({"id": H_SEND, "op": "StepRun", "name": "sendEvent",
               "opts": {"type": "step.sendEvent"}, "data": {"ids": [FAKE_EVENT_IDS[0]]}}),
    );
    assert_eq!(
        fake.requests_to("/e/")[0].json()[0]["data"],
        json!({"prep": 7})
    );
    let resp = c
        .memo(H_SEND, json!({"data": {"ids": [FAKE_EVENT_IDS[0]]}}))
        .post(&server)
        .await;
    assert_eq!(resp.json(), json!({"ids": [FAKE_EVENT_IDS[0]]}));
    assert_eq!(fake.requests_to("/e/").len(), 1);
}

#[tokio::test]
async fn send_event_failure_is_a_step_error() {
    // The event API refuses (400): a retriable step error while attempts remain.
    let fake = FakeApi::with(std::sync::Arc::new(|_r: &support::Recorded, _i| {
        (400, json!({"error": "event name is reserved"}).to_string())
    }))
    .await;
    let server = serve_app(&support::dev_client(APP, &fake), functions()).await;
    let resp = call("send").post(&server).await;
    let ops = resp.ops();
    assert_eq!(ops[0]["op"], "StepError", "{ops:?}");
    assert_eq!(ops[0]["name"], "sendEvent");
    assert!(
        ops[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event name is reserved"),
        "{ops:?}"
    );
    resp.assert_no_retry(Some("false"));
}

#[tokio::test]
async fn null_outputs_round_trip() {
    let (server, _) = app().await;
    assert_one_op(
        &call("nulls").post(&server).await,
        json!({"id": H_BEFORE, "op": "StepRun", "name": "before", "data": null}),
    );
    let c = call("nulls").memo(H_BEFORE, json!({"data": null}));
    assert_one_op(
        &c.post(&server).await,
        json!({"id": H_AFTER, "op": "StepRun", "name": "after", "data": null}),
    );
    let resp = c.memo(H_AFTER, json!({"data": null})).post(&server).await;
    assert_eq!((resp.status, resp.json()), (200, json!({"none": null})));
}

#[tokio::test]
async fn four_megabyte_step_output_and_memo() {
    let (server, _) = app().await;
    // The step's 4 MiB output goes out in a 206…
    let resp = call("big").post(&server).await;
    assert_eq!(resp.ops()[0]["data"].as_str().unwrap().len(), 4 << 20);
    // …and comes back as a memo in a request body well over 2 MB.
    let big = "x".repeat(4 << 20);
    let resp = call("big")
        .memo(H_BEFORE, json!({ "data": big }))
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!(4 << 20)));
}

#[tokio::test]
async fn a_step_run_future_stays_small() {
    let (server, _) = app().await;
    let resp = call("future-size")
        .memo(H_BEFORE, json!({ "data": { "big": [1, 2, 3] } }))
        .post(&server)
        .await;
    assert_eq!(resp.status, 200);
    let out = resp.json();
    assert_eq!(out["out"], json!({ "big": [1, 2, 3] }));
    let size = out["size"].as_u64().unwrap();
    assert!(size <= 384, "a step.run future is {size} bytes");
}
