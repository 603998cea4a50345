//! Error semantics over real HTTP: each error type raised inside a step and from the function
//! body, with the exact statuses and headers (`X-Inngest-No-Retry`, `Retry-After`), memoized step
//! errors handled or escaping, panics, typed-event mismatches and bad requests.

mod support;

use std::time::{Duration, SystemTime};

use inngest_sdk::{Ctx, Error, Function, FunctionFailed, NonRetriable, RetryAfter, Step, Trigger};
use serde_json::{json, Value};
use support::{event, op_core, serve_app, Call, FakeApi, Resp, Server};

const APP: &str = "errors-app";

const H_NR: &str = "a8643e0e26d5ead82e73aae64966ca144f152d8a";
const H_RA: &str = "fb2b9eca64fdf06848a11b0636ff4e92ac288d06";
const H_RA_AT: &str = "b56766fee69a2a86f4d7c5590b33b92ddbde1467";
const H_PLAIN: &str = "68c46e84d76d2e7e686e5158bf598909abd4e45b";
const H_BOOM: &str = "c53d2f1a9a8499bcb477be56c31caa5c76ae60f5";

/// 2099-01-02T03:04:05Z.
fn far_future() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(4_071_006_245)
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    sku: String,
    amount: u64,
}

fn f(id: &str) -> inngest_sdk::function::FunctionBuilder {
    Function::new(id).trigger(Trigger::event("app/t"))
}

fn functions() -> Vec<Function> {
    vec![
        // Inside a step.
        f("step-nr").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: u32 = step
                .run("nr", || async { Err(NonRetriable::new("bad input").into()) })
                .await?;
            Ok(v)
        }),
        f("step-ra").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: u32 = step
                .run("ra", || async {
                    Err(RetryAfter::delay("slow down", Duration::from_secs(30)).into())
                })
                .await?;
            Ok(v)
        }),
        f("step-ra-at").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: u32 = step
                .run("ra-at", || async { Err(RetryAfter::at("later", far_future()).into()) })
                .await?;
            Ok(v)
        }),
        f("step-plain").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: u32 = step
                .run("plain", || async { Err::<u32, _>(Error::msg("flaky db")) })
                .await?;
            Ok(v)
        }),
        f("step-handled").handler(|_c: Ctx<Value>, step: Step| async move {
            let r: Result<u32, _> = step
                .run("plain", || async { Err::<u32, _>(Error::msg("flaky db")) })
                .await;
            Ok(match r {
                Ok(v) => json!({ "ok": v }),
                Err(e) => json!({ "handled": e.message, "name": e.name }),
            })
        }),
        f("step-panics").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: u32 = step
                .run("boom", || async {
                    if std::hint::black_box(true) {
                        panic!("kaboom");
                    }
                    Ok(1)
                })
                .await?;
            Ok(v)
        }),
        // From the function body.
        f("fn-nr").handler(|_c: Ctx<Value>, _s: Step| async move {
            Err::<Value, Error>(NonRetriable::new("never again").into())
        }),
        f("fn-ra").handler(|_c: Ctx<Value>, _s: Step| async move {
            Err::<Value, Error>(RetryAfter::delay("busy", Duration::from_millis(2500)).into())
        }),
        f("fn-ra-at").handler(|_c: Ctx<Value>, _s: Step| async move {
            Err::<Value, Error>(RetryAfter::at("busy until", far_future()).into())
        }),
        f("fn-plain").handler(|_c: Ctx<Value>, _s: Step| async move {
            Err::<Value, Error>(Error::msg("broken func"))
        }),
        f("fn-io").handler(|_c: Ctx<Value>, _s: Step| async move {
            let n: u32 = "not a number".parse()?;
            Ok(n)
        }),
        f("fn-panics").handler(|_c: Ctx<Value>, _s: Step| async move {
            if std::hint::black_box(true) {
                panic!("fn kaboom");
            }
            Ok(0)
        }),
        f("typed").handler(|c: Ctx<Order>, _s: Step| async move { Ok(c.event.data.amount) }),
        f("with-failure")
            .retries(0)
            .on_failure(|c: Ctx<FunctionFailed<Order>>, step: Step| async move {
                let failed = c.event.data;
                let note: String = step
                    .run("notify", || async move {
                        Ok(format!("{} failed: {}", failed.event.data.sku, failed.error.message))
                    })
                    .await?;
                Ok(json!({ "note": note, "function_id": failed.function_id, "run_id": failed.run_id }))
            })
            .handler(|_c: Ctx<Order>, _s: Step| async move {
                Err::<Value, Error>(Error::msg("card declined"))
            }),
        f("attempts").handler(|c: Ctx<Value>, _s: Step| async move {
            Ok(json!({ "attempt": c.attempt, "max": c.max_attempts, "final": c.is_final_attempt() }))
        }),
    ]
}

async fn app() -> Server {
    let fake = FakeApi::start().await;
    serve_app(&support::dev_client(APP, &fake), functions()).await
}

fn call(f: &str) -> Call {
    Call::new(&format!("{APP}-{f}"), event("app/t", json!({})))
}

fn only_op(resp: &Resp) -> Value {
    resp.assert_sdk_headers();
    let ops = resp.ops();
    assert_eq!(ops.len(), 1, "{ops:?}");
    ops[0].clone()
}

fn assert_error_response(resp: &Resp, status: u16, no_retry: &str, name: &str, message: &str) {
    assert_eq!(resp.status, status, "{}", resp.text());
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some(no_retry));
    let body = resp.json();
    assert_eq!(body["name"], name, "{body}");
    assert_eq!(body["message"], message, "{body}");
}

// ------------------------------------------------------------------------------------------------
// Inside a step

#[tokio::test]
async fn non_retriable_in_step_is_step_failed_at_once() {
    let server = app().await;
    let resp = call("step-nr").attempt(0, 5).post(&server).await;
    assert_eq!(
        op_core(&only_op(&resp)),
        json!({"id": H_NR, "op": "StepFailed", "name": "nr", "data": null,
               "error": {"name": "NonRetriableError", "message": "bad input"}})
    );
    resp.assert_no_retry(Some("true"));
    assert!(resp.header("retry-after").is_none());
}

#[tokio::test]
async fn retry_after_in_step_is_step_error_with_retry_after() {
    let server = app().await;
    let resp = call("step-ra").attempt(0, 5).post(&server).await;
    assert_eq!(
        op_core(&only_op(&resp)),
        json!({"id": H_RA, "op": "StepError", "name": "ra", "data": null,
               "error": {"name": "RetryAfterError", "message": "slow down"}})
    );
    resp.assert_no_retry(Some("false"));
    assert_eq!(resp.header("retry-after"), Some("30"));

    let resp = call("step-ra-at").post(&server).await;
    assert_eq!(only_op(&resp)["id"], H_RA_AT);
    assert_eq!(resp.header("retry-after"), Some("2099-01-02T03:04:05Z"));

    // On the last attempt there is nothing to retry: StepFailed, no Retry-After.
    let resp = call("step-ra").attempt(4, 5).post(&server).await;
    assert_eq!(only_op(&resp)["op"], "StepFailed");
    resp.assert_no_retry(Some("true"));
    assert!(resp.header("retry-after").is_none());
}

#[tokio::test]
async fn plain_step_error_until_the_last_attempt() {
    let server = app().await;
    for (attempt, max, expected_op, no_retry) in [
        (0, 3, "StepError", "false"),
        (1, 3, "StepError", "false"),
        (2, 3, "StepFailed", "true"),
        (0, 1, "StepFailed", "true"),
    ] {
        let resp = call("step-plain").attempt(attempt, max).post(&server).await;
        let op = only_op(&resp);
        assert_eq!(
            op_core(&op),
            json!({"id": H_PLAIN, "op": expected_op, "name": "plain", "data": null,
                   "error": {"name": "Error", "message": "flaky db"}}),
            "attempt {attempt} of {max}"
        );
        // Conformance shape: no opts on StepError/StepFailed.
        assert!(op.get("opts").is_none());
        resp.assert_no_retry(Some(no_retry));
    }
}

#[tokio::test]
async fn memoized_step_error_is_handled_or_escapes() {
    let server = app().await;
    let memo = json!({"error": {"name": "Error", "message": "flaky db", "stack": "at db.rs:1"}});
    // Handled by the function: a normal 200.
    let resp = call("step-handled")
        .memo(H_PLAIN, memo.clone())
        .post(&server)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.assert_no_retry(None);
    assert_eq!(resp.json(), json!({"handled": "flaky db", "name": "Error"}));
    // Escaping with `?`: the run fails without retries.
    let resp = call("step-plain").memo(H_PLAIN, memo).post(&server).await;
    assert_error_response(&resp, 400, "true", "Error", "flaky db");
}

#[tokio::test]
async fn panic_in_step_is_a_step_error_not_a_crash() {
    let server = app().await;
    let resp = call("step-panics").attempt(0, 5).post(&server).await;
    let op = only_op(&resp);
    assert_eq!(op["op"], "StepError");
    assert_eq!(op["id"], H_BOOM);
    assert!(
        op["error"]["message"].as_str().unwrap().contains("kaboom"),
        "{op}"
    );
    resp.assert_no_retry(Some("false"));
    let resp = call("step-panics").attempt(4, 5).post(&server).await;
    assert_eq!(only_op(&resp)["op"], "StepFailed");
    // Still serving.
    let resp = call("attempts").post(&server).await;
    assert_eq!(resp.status, 200);
}

// ------------------------------------------------------------------------------------------------
// From the function body

#[tokio::test]
async fn function_non_retriable_is_400_no_retry() {
    let server = app().await;
    let resp = call("fn-nr").post(&server).await;
    assert_error_response(&resp, 400, "true", "NonRetriableError", "never again");
}

#[tokio::test]
async fn function_retry_after_is_500_with_retry_after() {
    let server = app().await;
    let resp = call("fn-ra").post(&server).await;
    assert_error_response(&resp, 500, "false", "RetryAfterError", "busy");
    // 2.5 s rounds up to whole seconds.
    assert_eq!(resp.header("retry-after"), Some("3"));
    let resp = call("fn-ra-at").post(&server).await;
    assert_eq!(resp.status, 500);
    assert_eq!(resp.header("retry-after"), Some("2099-01-02T03:04:05Z"));
}

#[tokio::test]
async fn function_plain_error_is_500_retriable_with_the_user_message() {
    let server = app().await;
    // Conformance: status 500, `message` exactly the user's, `name` absent/""/"Error".
    let resp = call("fn-plain").post(&server).await;
    assert_error_response(&resp, 500, "false", "Error", "broken func");
    assert!(resp.header("retry-after").is_none());
    // Any std error converted with `?` is an ordinary retriable error.
    let resp = call("fn-io").post(&server).await;
    assert_error_response(
        &resp,
        500,
        "false",
        "Error",
        "invalid digit found in string",
    );
    // Even on the final attempt the status is the ordinary one (the executor counts attempts).
    let resp = call("fn-plain").attempt(4, 5).post(&server).await;
    assert_eq!(resp.status, 500);
}

#[tokio::test]
async fn panic_in_function_is_500_and_the_server_keeps_serving() {
    let server = app().await;
    let resp = call("fn-panics").post(&server).await;
    assert_eq!(resp.status, 500, "{}", resp.text());
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some("false"));
    assert!(resp.json()["message"]
        .as_str()
        .unwrap()
        .contains("fn kaboom"));
    // The next requests are served normally.
    for _ in 0..2 {
        let resp = call("attempts").post(&server).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let resp = support::send(support::http().get(server.endpoint(""))).await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn typed_event_mismatch_is_400_naming_the_field() {
    let server = app().await;
    let resp = Call::new(
        &format!("{APP}-typed"),
        event("app/t", json!({"sku": "x", "amount": "ten"})),
    )
    .post(&server)
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_no_retry(Some("true"));
    let message = resp.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("data.amount"), "{message}");
    // The matching payload works.
    let resp = Call::new(
        &format!("{APP}-typed"),
        event("app/t", json!({"sku": "x", "amount": 10})),
    )
    .post(&server)
    .await;
    assert_eq!((resp.status, resp.json()), (200, json!(10)));
}

#[tokio::test]
async fn attempt_and_max_attempts_reach_the_context() {
    let server = app().await;
    let resp = call("attempts").attempt(2, 3).post(&server).await;
    assert_eq!(resp.json(), json!({"attempt": 2, "max": 3, "final": true}));
    let resp = call("attempts").attempt(0, 3).post(&server).await;
    assert_eq!(resp.json(), json!({"attempt": 0, "max": 3, "final": false}));
}

// ------------------------------------------------------------------------------------------------
// Bad requests

#[tokio::test]
async fn request_versions() {
    let server = app().await;
    for v in [-1, 1, 2] {
        let resp = call("attempts").version(v).post(&server).await;
        assert_eq!(resp.status, 200, "version {v}");
        resp.assert_sdk_headers();
    }
    let resp = call("attempts").version(0).post(&server).await;
    assert!(
        resp.status >= 400,
        "version 0 must be refused: {}",
        resp.status
    );
    resp.assert_sdk_headers();
    assert!(resp.header("x-inngest-no-retry").is_some());
    assert!(resp.json()["message"]
        .as_str()
        .unwrap()
        .contains("version 0"));
}

#[tokio::test]
async fn unknown_and_missing_function_ids() {
    let server = app().await;
    let resp = Call::new("errors-app-nope", event("app/t", json!({})))
        .post(&server)
        .await;
    assert_eq!(resp.status, 500);
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some("false"));
    // The un-prefixed id is not a composite id either.
    let resp = Call::new("fn-plain", event("app/t", json!({})))
        .post(&server)
        .await;
    assert_eq!(resp.status, 500);

    let resp = support::send(
        support::http()
            .post(server.endpoint("stepId=step"))
            .body(serde_json::to_vec(&call("attempts").body()).unwrap()),
    )
    .await;
    assert_eq!(resp.status, 400);
    resp.assert_sdk_headers();
    assert!(resp.header("x-inngest-no-retry").is_some());

    let resp = support::send(
        support::http()
            .post(server.endpoint("fnId=errors-app-attempts&stepId=step"))
            .body("{not json"),
    )
    .await;
    assert_eq!(resp.status, 400);
    resp.assert_sdk_headers();
}

// ------------------------------------------------------------------------------------------------
// on_failure

#[tokio::test]
async fn on_failure_is_registered_and_receives_the_failure() {
    let server = app().await;
    // Registered as the companion function `<slug>-failure`.
    let resp = support::send(
        support::http()
            .put(server.endpoint(""))
            .header("x-inngest-sync-kind", "in_band")
            .body(r#"{"url":"http://localhost:3939/api/inngest"}"#),
    )
    .await;
    let functions = resp.json()["functions"].as_array().unwrap().clone();
    let main = functions
        .iter()
        .find(|f| f["id"] == "errors-app-with-failure")
        .unwrap();
    assert_eq!(main["steps"]["step"]["retries"], json!({"attempts": 0}));
    let failure = functions
        .iter()
        .find(|f| f["id"] == "errors-app-with-failure-failure")
        .expect("failure companion registered");
    assert_eq!(failure["name"], "with-failure (failure)");
    let trigger = &failure["triggers"][0];
    assert_eq!(trigger["event"], "inngest/function.failed");
    let expr = trigger["expression"].as_str().unwrap();
    assert!(
        expr.starts_with("event.data.function_id == ")
            && expr.contains("'errors-app-with-failure'")
            || expr.contains("\"errors-app-with-failure\""),
        "{expr}"
    );
    assert_eq!(
        failure["steps"]["step"]["runtime"]["url"],
        "http://localhost:3939/api/inngest?fnId=errors-app-with-failure-failure&stepId=step"
    );

    // The main function fails (no retries configured: the executor fails the run).
    let order = json!({"sku": "sku-1", "amount": 5});
    let resp = Call::new("errors-app-with-failure", event("app/t", order.clone()))
        .attempt(0, 1)
        .post(&server)
        .await;
    assert_error_response(&resp, 500, "false", "Error", "card declined");

    // The executor then calls the companion with `inngest/function.failed`.
    let failed = json!({
        "data": {
            "function_id": "errors-app-with-failure",
            "run_id": "01M8GA0PM60JRWWJY8ZEE4VE6V",
            "error": {"name": "Error", "message": "card declined", "stack": ""},
            "event": event("app/t", order),
            "events": [],
            "_inngest": {"status": "Failed"}
        },
        "id": "01M8GA0PM60JRWWJY8ZEE4VE6V",
        "name": "inngest/function.failed",
        "ts": 1795843719481i64,
        "user": {}
    });
    let c = Call::new("errors-app-with-failure-failure", failed);
    let resp = c.post(&server).await;
    let note = "sku-1 failed: card declined";
    assert_eq!(only_op(&resp)["data"], note);
    // sha1("notify"), computed with Python's hashlib.
    let resp = c
        .memo(
            "4f08301dcb7bf7ec8486798a9d2a1d43f508c8aa",
            json!({"data": note}),
        )
        .post(&server)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"note": note, "function_id": "errors-app-with-failure",
               "run_id": "01M8GA0PM60JRWWJY8ZEE4VE6V"})
    );
}
