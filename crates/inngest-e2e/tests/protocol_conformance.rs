//! The conformance fixture (`examples/conformance.rs`, included below) driven over real HTTP with
//! the request sequences of the official serve conformance runner (protocol.md §13.3), checking
//! what the runner checks: status codes, and ops compared on `op`, `id`, `name`, `opts`, `data`
//! and the error message, after the runner's normalisation (Sleep: `opts.duration` replaces
//! `name`; `displayName`, `userland`, `timing` and error name/stack ignored).

#[path = "../../inngest-sdk/examples/conformance.rs"]
#[allow(dead_code)]
mod conformance;
mod support;

use serde_json::{json, Map, Value};
use support::{send, Call, Resp, Server};

const H_FIRST: &str = "98bf98df193bcce7c33e6bc50927cf2ac21206cb";
const H_SLEEP: &str = "c3ca5f787365eae0dea86250e27d476406956478";
const H_SECOND: &str = "764e20ec975d4ef820d0f42e6a5833384bd7ee36";
const H_WAIT: &str = "daaad336276d15594d0e765f96c17cd746bf4971";

/// The fixture with its default environment only (dev mode, key, event key, in-band allowed).
async fn fixture() -> Server {
    let client = conformance::client_with_env(|_| None).expect("fixture client");
    assert!(client.config().is_dev());
    assert!(client.config().allow_in_band_sync());
    support::serve(conformance::router(&client).unwrap()).await
}

fn slug(id: &str) -> String {
    format!("{}-{id}", conformance::APP_ID)
}

/// What the runner compares of an op (its `normalizeGeneratorOpcodes` + field comparison).
fn normalized(op: &Value) -> Value {
    let mut out = Map::new();
    for key in ["op", "id", "name", "opts", "data"] {
        if let Some(v) = op.get(key) {
            if !v.is_null() || key == "data" {
                out.insert(key.to_owned(), v.clone());
            }
        }
    }
    if op["op"] == "Sleep" {
        if let Some(d) = op["opts"]["duration"].as_str().filter(|d| !d.is_empty()) {
            out.insert("name".into(), json!(d));
            out.remove("opts");
        }
    }
    if let Some(err) = op.get("error").filter(|e| !e.is_null()) {
        out.insert("error".into(), json!({ "message": err["message"] }));
    }
    Value::Object(out)
}

fn assert_ops(resp: &Resp, expected: Value) {
    assert_eq!(resp.status, 206, "{}", resp.text());
    resp.assert_sdk_headers();
    let ops: Vec<Value> = resp.ops().iter().map(normalized).collect();
    assert_eq!(Value::Array(ops), expected);
}

#[tokio::test]
async fn doctor_get_and_in_band_sync() {
    let server = fixture().await;
    // Unsigned GET: status < 300.
    let resp = send(support::http().get(server.endpoint(""))).await;
    assert_eq!(resp.status, 200);
    resp.assert_sdk_headers();
    // The extra routes of the Go fixture.
    let resp = send(support::http().get(server.url("/api/introspect"))).await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("x-inngest-sdk").is_some());
    let resp = send(support::http().get(server.url("/health"))).await;
    assert_eq!((resp.status, resp.text().as_str()), (200, "ok"));

    // Signed in-band PUT as the runner sends it (inngestgo.Sign with the fixture key).
    let body = r#"{"url":"http://127.0.0.1:40000"}"#;
    let t = support::now().to_string();
    let sig = format!(
        "t={t}&s={}",
        support::hmac_hex("7468697320697320612074657374206b6579", body.as_bytes(), &t)
    );
    let resp = send(
        support::http()
            .put(server.endpoint(""))
            .header("content-type", "application/json")
            .header("x-inngest-sync-kind", "in_band")
            .header("X-Inngest-Server-Kind", "dev")
            .header("X-Inngest-Signature", sig)
            .body(body),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let sync = resp.json();
    assert_eq!(sync["app_id"], "conformance-golang");
    // The URL comes back normalised with the root path (the runner replaces it with its proxy
    // URL and keeps only the step URLs' query strings).
    assert_eq!(sync["url"], "http://127.0.0.1:40000/");
    assert_eq!(sync["sdk_language"], "rust");
    assert!(sync["sdk_version"].as_str().is_some());
    let functions = sync["functions"].as_array().unwrap();
    let slugs: Vec<&str> = functions
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    for id in [
        "test-suite-simple-fn",
        "test-suite-step-test",
        "test-suite-retry-test",
        "test-suite-cancel-test",
        "test-suite-wait-for-event",
    ] {
        assert!(
            slugs.iter().any(|s| s.ends_with(&format!("-{id}"))),
            "{id} missing from {slugs:?}"
        );
    }
    // Step URLs keep their query (the runner swaps the origin for its proxy).
    assert_eq!(
        functions[0]["steps"]["step"]["runtime"]["url"],
        "http://127.0.0.1:40000/?fnId=conformance-golang-test-suite-simple-fn&stepId=step"
    );
    // Cancellation wired into the config.
    let cancel = functions
        .iter()
        .find(|f| f["id"] == slug("test-suite-cancel-test"))
        .unwrap();
    assert_eq!(
        cancel["cancel"],
        json!([{"event": "cancel/please", "if": "async.data.request_id == event.data.request_id"}])
    );
    assert_eq!(cancel["triggers"], json!([{"event": "tests/cancel.test"}]));
}

#[tokio::test]
async fn basic_invoke() {
    let server = fixture().await;
    let ev = json!({"data": {"test": true}, "id": "e1", "name": "tests/function.test", "ts": 1, "user": {}});
    let resp = Call::new(&slug("test-suite-simple-fn"), ev)
        .post(&server)
        .await;
    assert_eq!(resp.status, 200);
    resp.assert_sdk_headers();
    assert_eq!(
        resp.json(),
        json!({"name": "tests/function.test", "body": "ok"})
    );
}

#[tokio::test]
async fn steps_serial() {
    let server = fixture().await;
    let ev = json!({"data": {"steps": {"ok": "yes"}}, "id": "e1", "name": "tests/step.test",
                    "ts": 1, "user": {"email": "test@example.com"}});
    let c = Call::new(&slug("test-suite-step-test"), ev);
    assert_ops(
        &c.post(&server).await,
        json!([{"op": "StepRun", "id": H_FIRST, "name": "first step", "data": "first step"}]),
    );
    let c = c.memo(H_FIRST, json!({"data": "first step"}));
    let resp = c.post(&server).await;
    assert_ops(
        &resp,
        json!([{"op": "Sleep", "id": H_SLEEP, "name": "2s", "data": null}]),
    );
    // Before normalisation: Go form.
    assert_eq!(resp.ops()[0]["name"], "sleep");
    assert_eq!(resp.ops()[0]["opts"], json!({"duration": "2s"}));
    let c = c.memo(H_SLEEP, Value::Null);
    assert_ops(
        &c.post(&server).await,
        json!([{"op": "StepRun", "id": H_SECOND, "name": "second step",
                "data": {"first": "first step", "second": true}}]),
    );
    let c = c.memo(
        H_SECOND,
        json!({"data": {"first": "first step", "second": true}}),
    );
    let resp = c.post(&server).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({"body": "ok", "name": "tests/step.test"})
    );
}

#[tokio::test]
async fn retry_basic() {
    let server = fixture().await;
    let ev = json!({"data": {"steps": {"ok": "yes"}}, "id": "e1", "name": "tests/retry.test",
                    "ts": 1, "user": {"email": "test@example.com"}});
    let c = Call::new(&slug("test-suite-retry-test"), ev);
    // 1. The step fails: StepError "broken", data null, no opts, retriable.
    let resp = c.clone().attempt(0, 5).post(&server).await;
    assert_ops(
        &resp,
        json!([{"op": "StepError", "id": H_FIRST, "name": "first step", "data": null,
                "error": {"message": "broken"}}]),
    );
    assert!(resp.ops()[0].get("opts").is_none());
    resp.assert_no_retry(Some("false"));
    // 2. The retry (attempt 1) runs it again: StepRun "yes: 2".
    assert_ops(
        &c.clone().attempt(1, 5).post(&server).await,
        json!([{"op": "StepRun", "id": H_FIRST, "name": "first step", "data": "yes: 2"}]),
    );
    // 3. Next discovery (attempt 0): the function body fails → 500 with the user's message.
    let c = c.memo(H_FIRST, json!({"data": "yes: 2"}));
    let resp = c.clone().attempt(0, 5).post(&server).await;
    assert_eq!(resp.status, 500, "{}", resp.text());
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some("false"));
    let body = resp.json();
    assert_eq!(body["message"], "broken func");
    assert!(matches!(
        body.get("name").and_then(Value::as_str),
        None | Some("") | Some("Error")
    ));
    // 4. The function retry (attempt 1) → 200.
    let resp = c.attempt(1, 5).post(&server).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({"body": "ok", "name": "tests/retry.test"})
    );
}

#[tokio::test]
async fn cancel_basic() {
    let server = fixture().await;
    let ev = json!({"data": {"request_id": "123", "whatever": "this doesn't matter my friend"},
                    "id": "e1", "name": "tests/cancel.test", "ts": 1, "user": {}});
    let c = Call::new(&slug("test-suite-cancel-test"), ev);
    assert_ops(
        &c.post(&server).await,
        json!([{"op": "Sleep", "id": H_SLEEP, "name": "10s", "data": null}]),
    );
    // (If the run is not cancelled) the step after the sleep runs.
    let resp = c.memo(H_SLEEP, Value::Null).post(&server).await;
    assert_eq!(resp.ops()[0]["name"], "After the sleep");
}

#[tokio::test]
async fn wait_for_event_basic() {
    let server = fixture().await;
    let ev =
        json!({"data": {"id": "123"}, "id": "e1", "name": "tests/wait.test", "ts": 1, "user": {}});
    let c = Call::new(&slug("test-suite-wait-for-event"), ev);
    assert_ops(
        &c.post(&server).await,
        json!([{"op": "WaitForEvent", "id": H_WAIT, "name": "wait", "data": null,
                "opts": {"event": "test/resume",
                         "if": "async.data.resume == true && async.data.id == event.data.id",
                         "timeout": "10s"}}]),
    );
    // The resume event as the executor stores it (Event.Map()).
    let resume = json!({"data": {"id": "123", "resume": true}, "id": "resume",
                        "name": "test/resume", "ts": 1795843713539i64, "user": {}});
    let resp = c.clone().memo(H_WAIT, resume).post(&server).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"result": {"id": "123", "resume": true}})
    );
    // Timed out.
    let resp = c.memo(H_WAIT, Value::Null).post(&server).await;
    assert_eq!((resp.status, resp.json()), (200, json!({})));
}

#[tokio::test]
async fn environment_overrides_the_defaults() {
    let client = conformance::client_with_env(|name| match name {
        "INNGEST_DEV" => Some("0".into()),
        "INNGEST_ALLOW_IN_BAND_SYNC" => Some("false".into()),
        _ => None,
    })
    .unwrap();
    assert!(!client.config().is_dev());
    assert!(!client.config().allow_in_band_sync());
    assert_eq!(client.config().event_key(), Some("test"));
    assert!(client.config().signing_key().is_some());
}
