//! Checkpointing (`ConfigBuilder::checkpointing`): a discovery call runs `step.run`s inline,
//! records each with `POST /v1/checkpoint/{run_id}/async` (the shape JS 4.24 sends, see
//! `shared/wire-captures/checkpointing/sdk-0002-…`), and keeps going until the function returns
//! (`206 [RunComplete]`) or reaches something that needs the server (sleep, wait, parallel steps,
//! a failed attempt). Checked on the wire against a fake API, and end to end on the executor.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_executor::{HistoryKind, RunStatus, StepStatus};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Error, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use support::{event, serve_app, Call, FakeApi, Recorded, Server};

const APP: &str = "cp-app";
const H_A: &str = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8";
const H_B: &str = "e9d71f5ee7c92d6dc9e92ffdad17b8bd49418f98";
const H_C: &str = "84a516841ba77a5b4648de2cd0dfcb30ea46dbb4";
const H_S: &str = "a0f1490a20d0211c997b44bc357e1972deab8ae3";
const H_COMPLETE: &str = "0737c22d3bfae812339732d14d8c7dbd6dc4e09c";

fn functions() -> Vec<Function> {
    vec![
        // Three steps in a row.
        Function::new("three")
            .trigger(Trigger::event("cp/three"))
            .handler(|ctx: Ctx<Value>, step: Step| async move {
                let a: u32 = step.run("a", || async { Ok(1u32) }).await?;
                let b: u32 = step.run("b", move || async move { Ok(a + 1) }).await?;
                let c: String = step
                    .run("c", move || async move { Ok(format!("c after {b}")) })
                    .await?;
                Ok(json!({ "a": a, "b": b, "c": c, "attempt": ctx.attempt }))
            }),
        // The captured JS `hello`: a step, a sleep, a step.
        Function::new("hello")
            .trigger(Trigger::event("cp/hello"))
            .handler(|ctx: Ctx<Value>, step: Step| async move {
                let data = ctx.event.data.clone();
                let a: Value = step
                    .run(
                        "a",
                        move || async move { Ok(json!({"fromA": 1, "got": data})) },
                    )
                    .await?;
                step.sleep("s", Duration::from_secs(2)).await;
                let b: String = step
                    .run("b", move || async move { Ok(format!("b saw {a}")) })
                    .await?;
                Ok(json!({ "b": b }))
            }),
        // A step, then one that fails.
        Function::new("fails")
            .trigger(Trigger::event("cp/fails"))
            .retries(2)
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.run("a", || async { Ok(1u32) }).await?;
                step.run("b", || async { Err::<u32, _>(Error::msg("boom")) })
                    .await?;
                Ok(json!(null))
            }),
        // A step, then two in parallel.
        Function::new("fan")
            .trigger(Trigger::event("cp/fan"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.run("a", || async { Ok(1u32) }).await?;
                let (b, c) = futures::try_join!(
                    step.run("b", || async { Ok(2u32) }),
                    step.run("c", || async { Ok(3u32) }),
                )?;
                Ok(json!(b + c))
            }),
    ]
}

/// The fake API answers checkpoints with `checkpoint_status` (the dev server: 200, empty body).
async fn app(checkpoint_status: u16) -> (Server, FakeApi) {
    let api = FakeApi::with(Arc::new(move |rec: &Recorded, i| {
        if rec.path.starts_with("/v1/checkpoint/") {
            (checkpoint_status, String::new())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client = Inngest::builder(APP)
        .dev(true)
        .api_base_url(api.origin())
        .event_api_base_url(api.origin())
        .checkpointing(true)
        .build()
        .unwrap();
    (serve_app(&client, functions()).await, api)
}

fn call(f: &str, name: &str) -> Call {
    Call::new(
        &format!("{APP}-{f}"),
        event(name, json!({"hello": "world"})),
    )
}

/// The steps sent to `/v1/checkpoint`, checking each body's call fields (copied from `ctx` of
/// [`Call::body`]) and headers on the way.
fn checkpointed_steps(api: &FakeApi) -> Vec<Value> {
    let mut steps = Vec::new();
    for rec in api.requests_to("/v1/checkpoint/") {
        assert_eq!(rec.method, "POST");
        assert_eq!(rec.path, "/v1/checkpoint/01M8GA0PM60JRWWJY8ZEE4VE6V/async");
        assert_eq!(rec.header("content-type"), Some("application/json"));
        assert!(rec
            .header("x-inngest-sdk")
            .is_some_and(|v| v.starts_with("inngest-rs-sdk:v")));
        let body = rec.json();
        assert_eq!(body["run_id"], "01M8GA0PM60JRWWJY8ZEE4VE6V");
        assert_eq!(body["fn_id"], "996347b3-84f3-57c9-a16a-c5af6848ea4d");
        assert_eq!(body["qi_id"], "MzRybTJseDZrZHZiNzo6ZGVmYXVsdA==");
        assert_eq!(body["request_id"], "01M8GA0PQA0QD0EZ0E9KMXEXC5");
        assert_eq!(body["generation_id"], 1);
        assert!(body["request_started_at"].as_i64().unwrap() > 1_700_000_000_000);
        assert!(body["ts"].as_i64().unwrap() >= body["request_started_at"].as_i64().unwrap());
        let list = body["steps"].as_array().unwrap();
        assert_eq!(list.len(), 1, "one step per checkpoint: {body}");
        assert!(list[0]["timing"].is_object(), "{body}");
        steps.push(list[0].clone());
    }
    steps
}

fn core(step: &Value) -> Value {
    json!({"id": step["id"], "op": step["op"], "name": step["name"], "data": step["data"]})
}

#[tokio::test]
async fn consecutive_steps_run_in_one_call_and_end_with_run_complete() {
    let (server, api) = app(200).await;
    let resp = call("three", "cp/three").post(&server).await;
    resp.assert_sdk_headers();
    resp.assert_no_retry(None);
    assert_eq!(resp.status, 206);
    // Exactly the op JS 4.24 answers (three keys, in this order).
    assert_eq!(
        resp.text(),
        format!(
            r#"[{{"op":"RunComplete","id":"{H_COMPLETE}","data":{{"a":1,"attempt":0,"b":2,"c":"c after 2"}}}}]"#
        )
    );
    let steps = checkpointed_steps(&api);
    assert_eq!(
        steps.iter().map(core).collect::<Vec<_>>(),
        [
            json!({"id": H_A, "op": "StepRun", "name": "a", "data": 1}),
            json!({"id": H_B, "op": "StepRun", "name": "b", "data": 2}),
            json!({"id": H_C, "op": "StepRun", "name": "c", "data": "c after 2"}),
        ]
    );
    assert_eq!(steps[0]["userland"], json!({"id": "a"}));
    assert_eq!(steps[0]["displayName"], "a");
}

#[tokio::test]
async fn a_sleep_ends_the_call_after_the_checkpointed_step_like_the_js_capture() {
    let (server, api) = app(200).await;
    // Request 1 of the captured run: `a` checkpointed, then 206 [Sleep].
    let resp = call("hello", "cp/hello").post(&server).await;
    let ops = resp.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["op"], "Sleep");
    assert_eq!(ops[0]["id"], H_S);
    assert_eq!(
        checkpointed_steps(&api)
            .iter()
            .map(core)
            .collect::<Vec<_>>(),
        [
            json!({"id": H_A, "op": "StepRun", "name": "a", "data": {"fromA": 1, "got": {"hello": "world"}}})
        ]
    );
    // Request 2: `a` and the sleep memoized; `b` checkpointed, then RunComplete.
    let resp = call("hello", "cp/hello")
        .memo(
            H_A,
            json!({"data": {"fromA": 1, "got": {"hello": "world"}}}),
        )
        .memo(H_S, Value::Null)
        .post(&server)
        .await;
    assert_eq!(resp.status, 206);
    let ops = resp.ops();
    assert_eq!(
        ops,
        [json!({"op": "RunComplete", "id": H_COMPLETE,
                "data": {"b": "b saw {\"fromA\":1,\"got\":{\"hello\":\"world\"}}"}})]
    );
    let steps = checkpointed_steps(&api);
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1]["id"], H_B);
}

#[tokio::test]
async fn a_failed_attempt_is_answered_as_usual_after_the_earlier_checkpoint() {
    let (server, api) = app(200).await;
    let resp = call("fails", "cp/fails").attempt(0, 3).post(&server).await;
    let ops = resp.ops();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0]["op"], "StepError");
    assert_eq!(ops[0]["id"], H_B);
    assert_eq!(ops[0]["error"]["message"], "boom");
    resp.assert_no_retry(Some("false"));
    let steps = checkpointed_steps(&api);
    assert_eq!(
        steps.iter().map(core).collect::<Vec<_>>(),
        [json!({"id": H_A, "op": "StepRun", "name": "a", "data": 1})]
    );
}

#[tokio::test]
async fn a_retry_attempt_answers_its_step_plainly_then_the_run_completes_like_the_js_capture() {
    // The captured JS `flaky` run: attempt 1 of the step is answered as a plain StepRun (no
    // checkpoint); the next discovery call, with the step memoized, answers RunComplete.
    let (server, api) = app(200).await;
    let resp = call("three", "cp/three").attempt(1, 3).post(&server).await;
    let ops = resp.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        core(&ops[0]),
        json!({"id": H_A, "op": "StepRun", "name": "a", "data": 1})
    );
    assert!(api.requests_to("/v1/checkpoint/").is_empty());
    let resp = call("three", "cp/three")
        .memo(H_A, json!({"data": 1}))
        .memo(H_B, json!({"data": 2}))
        .memo(H_C, json!({"data": "c after 2"}))
        .post(&server)
        .await;
    assert_eq!(resp.status, 206);
    assert_eq!(
        resp.ops(),
        [json!({"op": "RunComplete", "id": H_COMPLETE,
                "data": {"a": 1, "attempt": 0, "b": 2, "c": "c after 2"}})]
    );
    assert!(api.requests_to("/v1/checkpoint/").is_empty());
}

#[tokio::test]
async fn parallel_steps_are_planned_not_checkpointed() {
    let (server, api) = app(200).await;
    let resp = call("fan", "cp/fan").post(&server).await;
    let ops = resp.ops();
    assert_eq!(
        ops.iter()
            .map(|o| (
                o["op"].as_str().unwrap().to_owned(),
                o["id"].as_str().unwrap().to_owned()
            ))
            .collect::<Vec<_>>(),
        [
            ("StepPlanned".to_owned(), H_B.to_owned()),
            ("StepPlanned".to_owned(), H_C.to_owned())
        ]
    );
    assert_eq!(checkpointed_steps(&api).len(), 1, "only `a`");
    // A targeted call runs its one step the classic way.
    let resp = call("fan", "cp/fan")
        .memo(H_A, json!({"data": 1}))
        .target(H_B)
        .post(&server)
        .await;
    assert_eq!(resp.ops()[0]["op"], "StepRun");
    assert_eq!(resp.ops()[0]["data"], 2);
    assert_eq!(checkpointed_steps(&api).len(), 1);
}

#[tokio::test]
async fn disable_immediate_execution_plans_instead_of_checkpointing() {
    let (server, api) = app(200).await;
    let resp = call("three", "cp/three")
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(resp.ops()[0]["op"], "StepPlanned");
    assert!(api.requests_to("/v1/checkpoint/").is_empty());
}

#[tokio::test]
async fn a_refused_checkpoint_falls_back_to_answering_with_the_step() {
    let (server, api) = app(500).await;
    let resp = call("three", "cp/three").post(&server).await;
    assert_eq!(resp.status, 206);
    let ops = resp.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        core(&ops[0]),
        json!({"id": H_A, "op": "StepRun", "name": "a", "data": 1})
    );
    // One attempt, then the classic answer: the executor memoizes `a` from this response.
    assert_eq!(api.requests_to("/v1/checkpoint/").len(), 1);
}

// ------------------------------------------------------------------------------------------------
// End to end on the local executor (which serves /v1/checkpoint like the dev server).

#[tokio::test]
async fn on_the_executor_a_step_sleep_step_run_takes_two_requests() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let counted = Function::new("counted")
        .trigger(Trigger::event("cp/counted"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let counter = counter.clone();
            async move {
                for i in 0..5u32 {
                    let c = counter.clone();
                    step.run(&format!("s{i}"), move || async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        Ok(i)
                    })
                    .await?;
                }
                Ok(json!("done"))
            }
        });
    let h = TestHarness::builder(APP)
        .functions(functions().into_iter().chain([counted]))
        .checkpointing(true)
        .auto_advance(true)
        .start()
        .await
        .unwrap();

    // hello: request 1 runs `a` and reports the sleep; request 2 runs `b` and completes — the
    // same two requests as the captured JS run under the real dev server.
    let id = h
        .send(inngest_sdk::Event::new(
            "cp/hello",
            json!({"hello": "world"}),
        ))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"b": "b saw {\"fromA\":1,\"got\":{\"hello\":\"world\"}}"}))
    );
    assert_eq!(run.requests, 2, "{:#?}", run.history);
    let names: Vec<(&str, StepStatus)> = run
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.status))
        .collect();
    assert_eq!(
        names,
        [
            ("a", StepStatus::Completed),
            ("s", StepStatus::Completed),
            ("b", StepStatus::Completed)
        ]
    );

    // Five steps in a row: one request, each step once.
    let id = h
        .send(inngest_sdk::Event::new("cp/counted", json!({})))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!("done")));
    assert_eq!(run.requests, 1);
    assert_eq!(run.steps.len(), 5);
    assert_eq!(runs.load(Ordering::SeqCst), 5);
    assert_eq!(run.history_of(HistoryKind::FunctionError).count(), 0);

    // A failing step after a checkpointed one: retried as usual, then the run fails; `a` never
    // runs again.
    let id = h.send(inngest_sdk::Event::new("cp/fails", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.step("a").unwrap().attempts, 1);
    assert_eq!(run.step("b").unwrap().attempts, 3);
}

#[tokio::test]
async fn a_run_id_that_is_not_an_id_is_never_put_in_a_checkpoint_path() {
    let (server, api) = app(200).await;
    let c = call("three", "cp/three");
    let mut body = c.body();
    body["ctx"]["run_id"] = json!("../../fn/register");
    let resp = support::send(
        support::http()
            .post(server.endpoint(&c.query()))
            .header("content-type", "application/json")
            .header("x-inngest-req-version", "-1")
            .body(serde_json::to_vec(&body).unwrap()),
    )
    .await;
    // The classic answer: the step, no API call at all.
    assert_eq!(resp.status, 206);
    assert_eq!(
        core(&resp.ops()[0]),
        json!({"id": H_A, "op": "StepRun", "name": "a", "data": 1})
    );
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}
