//! The executor's side of the protocol: bad app answers (§13.2), the Event API, `/fn/register`,
//! sync errors, signatures, in-band sync, `use_api`, and the REST history API.

mod executor_support;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use executor_support::{recording_router, Recorder};
use inngest_executor::clock::VirtualClock;
use inngest_executor::{ErrorObject, Executor, HistoryKind, RunStatus, RunView, SyncError};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Error, Event, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// A hand-written app: what it answers depends on `fnId`.
#[derive(Clone, Default)]
struct BadApp {
    calls: Arc<Mutex<HashMap<String, usize>>>,
    versions: Arc<Mutex<Vec<(String, String, i64)>>>,
}

impl BadApp {
    fn calls(&self, f: &str) -> usize {
        self.calls.lock().unwrap().get(f).copied().unwrap_or(0)
    }
}

fn sdk(status: u16, body: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        [
            ("content-type", "application/json"),
            ("x-inngest-sdk", "test-app:v0.0.1"),
            ("x-inngest-req-version", "2"),
        ],
        body.to_owned(),
    )
        .into_response()
}

async fn bad_app(
    State(app): State<BadApp>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = q.get("fnId").cloned().unwrap_or_default();
    let n = {
        let mut calls = app.calls.lock().unwrap();
        let c = calls.entry(f.clone()).or_default();
        *c += 1;
        *c
    };
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    app.versions.lock().unwrap().push((
        f.clone(),
        headers
            .get("x-inngest-req-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        req["version"].as_i64().unwrap_or(99),
    ));
    match f.as_str() {
        "bad-malformed" => sdk(206, "this is not json"),
        "bad-unknown-op" => sdk(206, r#"[{"op":"Teleport","id":"abc","name":"x"}]"#),
        "bad-empty" => sdk(206, "[]"),
        "bad-no-sdk" => (StatusCode::OK, "{\"ok\":true}").into_response(),
        "bad-error-without-error" => sdk(
            206,
            r#"[{"op":"StepError","id":"abc","name":"x","data":null}]"#,
        ),
        "bad-upstream" => (StatusCode::BAD_GATEWAY, "bad gateway").into_response(),
        "bad-unsupported" => sdk(
            206,
            r#"[{"op":"SyncRunComplete","id":"abc","name":"done","data":null}]"#,
        ),
        "ok-after-empty" if n == 1 => sdk(206, "[]"),
        "ok-after-empty" => sdk(200, r#"{"fine":true}"#),
        "missing-version" if n == 1 => (
            StatusCode::PARTIAL_CONTENT,
            [("x-inngest-sdk", "test-app:v0.0.1")],
            r#"[{"op":"StepRun","id":"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8","name":"a","data":1}]"#,
        )
            .into_response(),
        "missing-version" => sdk(200, "\"v0\""),
        "retry-after" if n == 1 => {
            let mut res = sdk(500, r#"{"name":"Error","message":"slow down"}"#);
            res.headers_mut()
                .insert("x-inngest-no-retry", "false".parse().unwrap());
            res.headers_mut().insert("retry-after", "5".parse().unwrap());
            res
        }
        "retry-after" => sdk(200, "\"ok\""),
        "no-retry-500" => {
            let mut res = sdk(500, r#"{"name":"Error","message":"final"}"#);
            res.headers_mut()
                .insert("x-inngest-no-retry", "true".parse().unwrap());
            res
        }
        "streamed" => (
            StatusCode::CREATED,
            [("x-inngest-sdk", "test-app:v0.0.1")],
            "  \n {\"status\":200,\"headers\":{\"x-inngest-req-version\":\"2\"},\"body\":\"\\\"done\\\"\"}",
        )
            .into_response(),
        _ => (StatusCode::NOT_FOUND, "no such function").into_response(),
    }
}

fn function_json(url: &str, id: &str) -> Value {
    json!({
        "id": id,
        "name": id,
        "triggers": [{"event": format!("bad/{id}")}],
        "steps": {"step": {"id": "step", "name": "step",
            "runtime": {"type": "http", "url": format!("{url}?fnId={id}&stepId=step")},
            "retries": {"attempts": 1}}},
    })
}

const BAD_FUNCTIONS: &[&str] = &[
    "bad-malformed",
    "bad-unknown-op",
    "bad-empty",
    "bad-no-sdk",
    "bad-error-without-error",
    "bad-upstream",
    "bad-unsupported",
    "ok-after-empty",
    "missing-version",
    "retry-after",
    "no-retry-500",
    "streamed",
];

struct BadSetup {
    executor: Executor,
    clock: VirtualClock,
    app: BadApp,
    _server: tokio::task::JoinHandle<()>,
}

async fn bad_setup() -> BadSetup {
    let app = BadApp::default();
    let router = Router::new()
        .route("/api/inngest", any(bad_app))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/inngest", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    let clock = VirtualClock::default();
    let executor = Executor::builder()
        .clock(Arc::new(clock.clone()))
        .retry_interval(Duration::ZERO)
        .build()
        .unwrap();
    let functions: Vec<Value> = BAD_FUNCTIONS
        .iter()
        .map(|f| function_json(&url, f))
        .collect();
    executor
        .register(&json!({"appName": "bad", "url": url, "functions": functions}))
        .unwrap();
    BadSetup {
        executor,
        clock,
        app,
        _server: server,
    }
}

async fn run_bad(s: &BadSetup, f: &str) -> RunView {
    let id = s
        .executor
        .send(json!({"name": format!("bad/{f}"), "data": {}}))
        .await
        .unwrap();
    let run = s.executor.runs_for_event(&id).remove(0);
    s.executor.wait_for_run(&run.id, WAIT).await.unwrap()
}

fn invalid_messages(run: &RunView) -> Vec<String> {
    run.history_of(HistoryKind::InvalidResponse)
        .map(|h| h.message.clone())
        .collect()
}

#[tokio::test]
async fn malformed_op_arrays_are_retried_then_fail_with_history() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-malformed").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(s.app.calls("bad-malformed"), 2, "retried once (retries: 1)");
    let msgs = invalid_messages(&run);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert!(msgs[0].contains("malformed op array"), "{msgs:?}");
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("malformed op array"));
}

#[tokio::test]
async fn unknown_op_names_are_rejected() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-unknown-op").await;
    assert_eq!(run.status, RunStatus::Failed);
    let msgs = invalid_messages(&run);
    assert!(msgs[0].contains("unknown op name `Teleport`"), "{msgs:?}");
    assert!(
        run.steps.is_empty(),
        "nothing of the bad answer was applied"
    );
}

#[tokio::test]
async fn an_empty_op_array_re_drives_discovery() {
    let s = bad_setup().await;
    let run = run_bad(&s, "ok-after-empty").await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({"fine": true})));
    assert_eq!(s.app.calls("ok-after-empty"), 2);
    let msgs = invalid_messages(&run);
    assert!(msgs[0].contains("empty op array"), "{msgs:?}");

    let run = run_bad(&s, "bad-empty").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("empty op array 3 times"));
    assert_eq!(s.app.calls("bad-empty"), 3);
}

#[tokio::test]
async fn a_2xx_without_the_sdk_header_is_a_failure() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-no-sdk").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.output, None);
    let msgs = invalid_messages(&run);
    assert!(msgs[0].contains("without X-Inngest-SDK"), "{msgs:?}");
    assert_eq!(s.app.calls("bad-no-sdk"), 2);
}

#[tokio::test]
async fn step_errors_need_an_error_object() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-error-without-error").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(invalid_messages(&run)[0].contains("no `error` object"));
}

#[tokio::test]
async fn non_sdk_errors_become_upstream_errors() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-upstream").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(s.app.calls("bad-upstream"), 2);
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("upstream error: HTTP 502"));
}

#[tokio::test]
async fn unsupported_ops_fail_clearly() {
    let s = bad_setup().await;
    let run = run_bad(&s, "bad-unsupported").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.history_of(HistoryKind::UnsupportedOp).count(), 1);
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("`SyncRunComplete` is not supported"));
}

#[tokio::test]
async fn a_missing_request_version_is_stored_as_zero() {
    let s = bad_setup().await;
    let run = run_bad(&s, "missing-version").await;
    assert_eq!(run.status, RunStatus::Completed);
    let versions: Vec<(String, i64)> = s
        .app
        .versions
        .lock()
        .unwrap()
        .iter()
        .filter(|(f, _, _)| f == "missing-version")
        .map(|(_, h, b)| (h.clone(), *b))
        .collect();
    assert_eq!(versions, [("-1".to_owned(), -1), ("0".to_owned(), 0)]);
    assert!(invalid_messages(&run)[0].contains("X-Inngest-Req-Version"));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = bad_setup().await;
    let id = s
        .executor
        .send(json!({"name": "bad/retry-after"}))
        .await
        .unwrap();
    let run = s.executor.runs_for_event(&id).remove(0);
    let run = s
        .executor
        .wait_for(&run.id, WAIT, |r| {
            r.history_of(HistoryKind::RetryScheduled).count() == 1
        })
        .await
        .unwrap();
    let retry = run.history_of(HistoryKind::RetryScheduled).next().unwrap();
    assert!(retry.message.contains("in 5s"), "{}", retry.message);
    s.clock.advance(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.app.calls("retry-after"), 1);
    s.clock.advance(Duration::from_secs(1));
    let run = s.executor.wait_for_run(&run.id, WAIT).await.unwrap();
    assert_eq!(run.output, Some(json!("ok")));
    assert_eq!(s.app.calls("retry-after"), 2);
}

#[tokio::test]
async fn no_retry_header_stops_retries() {
    let s = bad_setup().await;
    let run = run_bad(&s, "no-retry-500").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(s.app.calls("no-retry-500"), 1);
    assert_eq!(
        run.error,
        Some(ErrorObject {
            name: "Error".into(),
            message: "final".into(),
            stack: None,
        })
    );
}

#[tokio::test]
async fn streamed_answers_are_unwrapped() {
    let s = bad_setup().await;
    let run = run_bad(&s, "streamed").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!("done")));
}

// ---------------------------------------------------------------------------------------------
// Event API, /fn/register, REST
// ---------------------------------------------------------------------------------------------

fn echo() -> Function {
    Function::new("echo")
        .trigger(Trigger::event("test/echo"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data) })
}

#[tokio::test]
async fn event_api_shapes_and_idempotency() {
    let h = TestHarness::start("app", [echo()]).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/e/anything", h.executor_url());
    let res = http
        .post(&url)
        .json(&json!({"name": "test/echo", "data": {"n": 1}, "id": "dedupe-me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-inngest-server-kind"], "dev");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 200);
    let first = body["ids"][0].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 26, "a ULID");

    // Same id again: same answer, no new run.
    let body: Value = http
        .post(&url)
        .json(&json!([{"name": "test/echo", "data": {"n": 2}, "id": "dedupe-me"}, {"name": "test/echo", "data": {"n": 3}}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["ids"][0], first.as_str());
    assert_eq!(body["ids"].as_array().unwrap().len(), 2);
    let runs = h.wait_for_runs_of(&first, 1).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].output, Some(json!({"n": 1})));
    assert_eq!(h.executor().runs_for_event("dedupe-me").len(), 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.executor().runs().len(), 2);

    // The seed header makes retried sends idempotent.
    let seeded = |body: Value| {
        http.post(&url)
            .header("x-inngest-event-id-seed", "1795843709734,zohWT3KnyYgFjg==")
            .json(&body)
            .send()
    };
    let a: Value = seeded(json!([{"name": "test/echo", "data": {"s": 1}}]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = seeded(json!([{"name": "test/echo", "data": {"s": 1}}]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["ids"], b["ids"]);
    // Same id as the real server gave for this seed (classic/sdk-0002-POST-_e_NO_EVENT_KEY_SET).
    assert_eq!(a["ids"][0], "01M8GA0PS6ST45CKVJMZ4RG1CF");
    assert_eq!(
        h.executor()
            .runs_for_event(a["ids"][0].as_str().unwrap())
            .len(),
        1
    );

    // Refusals.
    let res = http
        .post(&url)
        .json(&json!({"name": "inngest/function.failed", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], 400);
    assert!(body["error"].as_str().unwrap().contains("reserved"));
    let res = http.post(&url).body("nope").send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn event_keys_are_checked_when_configured() {
    let h = TestHarness::builder("app")
        .function(echo())
        .event_key("secret-key")
        .start()
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/e/wrong", h.executor_url()))
        .json(&json!({"name": "test/echo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": 401, "message": "", "error": "Event key not found"})
    );
    // The client is configured with the key, so sending works.
    let id = h.send(Event::new("test/echo", json!({"k": 1}))).await;
    assert_eq!(h.wait_for_run_of(&id).await.output, Some(json!({"k": 1})));
}

#[tokio::test]
async fn fn_register_validates_and_reports_every_error() {
    let executor = Executor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let _task = tokio::spawn(async move { server.serve(listener).await });
    let http = reqwest::Client::new();
    let payload = json!({
        "url": "http://127.0.0.1:1/api/inngest", "appName": "app", "sdk": "rust:v0.1.0", "v": "0.1",
        "functions": [{
            "id": "app-f", "name": "f",
            "triggers": [{"event": "a/b", "expression": "event.data.x =="}, {"cron": "TZ=Mars/Olympus 0 * * * *"}],
            "cancel": [{"event": "c/d", "if": "async.data.id == nope.id"}],
            "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:1/api/inngest?fnId=app-f&stepId=step"}}},
        }],
    });
    let res = http
        .post(format!("{base}/fn/register"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("At least one function is invalid"),
        "{error}"
    );
    assert!(error.contains("trigger #0 expression"), "{error}");
    assert!(error.contains("unknown time zone"), "{error}");
    assert!(error.contains("cancel #0"), "{error}");
    assert_eq!(body["data"]["errors"].as_array().unwrap().len(), 3);
    assert!(executor.apps().is_empty());

    let res = http
        .post(format!("{base}/fn/register"))
        .header("x-inngest-expected-server-kind", "cloud")
        .json(&payload)
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "Expected server kind dev, got cloud");

    // A valid payload registers; the same payload again is not a modification.
    let mut ok = payload.clone();
    ok["functions"][0]["triggers"] = json!([{"event": "a/b", "expression": "event.data.x == 1"}]);
    ok["functions"][0]["cancel"] = json!([]);
    for modified in [true, false] {
        let body: Value = http
            .post(format!("{base}/fn/register"))
            .json(&ok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["ok"], true);
        assert_eq!(body["modified"], modified);
        assert_eq!(body["app_id"].as_str().unwrap().len(), 36);
    }
    assert_eq!(executor.apps()[0].functions[0].id, "app-f");
}

#[tokio::test]
async fn sync_errors_reach_register_app() {
    // An app whose sync handler registers an invalid configuration and relays the answer, as
    // SDKs do.
    let executor = Executor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let _task = tokio::spawn(async move { server.serve(listener).await });

    let register_url = format!("{base}/fn/register");
    let relay = Router::new().route(
        "/api/inngest",
        any(move |headers: HeaderMap| {
            let register_url = register_url.clone();
            async move {
                assert_eq!(headers["x-inngest-server-kind"], "dev");
                let res = reqwest::Client::new()
                    .post(&register_url)
                    .json(&json!({"appName": "relay", "url": "http://127.0.0.1:9/api/inngest", "functions": [{
                        "id": "relay-f", "name": "f", "triggers": [{"event": "a", "expression": "event.data.("}],
                        "steps": {"step": {"id": "step", "runtime": {"url": "http://127.0.0.1:9/api/inngest?fnId=relay-f&stepId=step"}}}}]}))
                    .send()
                    .await
                    .unwrap();
                let status = res.status().as_u16();
                let body: Value = res.json().await.unwrap();
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("x-inngest-sdk", "relay:v1")],
                    axum::Json(json!({"message": body["error"], "modified": false})),
                )
            }
        }),
    );
    let relay_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let relay_url = format!(
        "http://{}/api/inngest",
        relay_listener.local_addr().unwrap()
    );
    let _relay = tokio::spawn(async move { axum::serve(relay_listener, relay).await });
    match executor.register_app(&relay_url).await {
        Err(SyncError::Rejected { status, message }) => {
            assert_eq!(status, 400);
            assert!(message.contains("trigger #0 expression"), "{message}");
        }
        other => panic!("expected a rejected sync, got {other:?}"),
    }

    // An app that answers the PUT without registering.
    let silent = Router::new().route("/api/inngest", any(|| async { "{}" }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/api/inngest", l.local_addr().unwrap());
    let _silent = tokio::spawn(async move { axum::serve(l, silent).await });
    assert_eq!(
        executor.register_app(&silent_url).await.unwrap_err(),
        SyncError::NotRegistered
    );
    assert!(matches!(
        executor
            .register_app("http://127.0.0.1:9/api/inngest")
            .await,
        Err(SyncError::Unreachable { .. })
    ));
}

#[tokio::test]
async fn register_requires_the_signing_key_when_keyed() {
    const KEY: &str =
        "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let executor = Executor::builder()
        .signing_key(Some(KEY.into()))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let _task = tokio::spawn(async move { server.serve(listener).await });
    let http = reqwest::Client::new();
    let payload =
        json!({"appName": "app", "url": "http://127.0.0.1:1/api/inngest", "functions": []});
    let res = http
        .post(format!("{base}/fn/register"))
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.text().await.unwrap(), "Authentication failed");
    let hashed = "signkey-test-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837";
    for bearer in [hashed, KEY] {
        let res = http
            .post(format!("{base}/fn/register"))
            .bearer_auth(bearer)
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let res = http.get(format!("{base}/v1/runs")).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // An app without the key cannot register: the sync fails with the server's answer.
    let client = Inngest::builder("keyless")
        .dev(true)
        .base_url(base.clone())
        .build()
        .unwrap();
    let router = inngest_sdk::serve::axum::router(&client, [echo()]).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app_url = format!("http://{}/api/inngest", l.local_addr().unwrap());
    let _app = tokio::spawn(async move { axum::serve(l, router).await });
    match executor.register_app(&app_url).await {
        Err(SyncError::Rejected { status, message }) => {
            assert_eq!(status, 401);
            assert!(message.contains("Authentication failed"), "{message}");
        }
        other => panic!("expected a rejected sync, got {other:?}"),
    }
}

fn steps_fn() -> Function {
    Function::new("steps")
        .trigger(Trigger::event("test/steps"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: String = step.run("a", || async { Ok("x".repeat(300)) }).await?;
            step.sleep("s", Duration::from_secs(1)).await;
            let b: usize = step.run("b", || async move { Ok(a.len()) }).await?;
            Ok(json!({"b": b, "data": ctx.event.data}))
        })
}

#[tokio::test]
async fn signed_runs_verify_end_to_end() {
    const KEY: &str =
        "signkey-test-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let rec = Recorder::default();
    let h = TestHarness::builder("app")
        .function(steps_fn())
        .signing_key(KEY)
        .auto_advance(true)
        .app_router("/api/inngest", recording_router(rec.clone()))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/steps", json!({"k": 1}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"b": 300, "data": {"k": 1}})));
    let all = rec.all();
    assert!(all
        .iter()
        .all(|r| r.header("x-inngest-signature").is_some()));
    let put = all.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.header("x-inngest-server-kind"), Some("dev"));
}

#[tokio::test]
async fn in_band_sync() {
    let h = TestHarness::builder("app")
        .function(steps_fn())
        .in_band_sync(true)
        .auto_advance(true)
        .start()
        .await
        .unwrap();
    assert_eq!(h.executor().apps()[0].id, "app");
    let id = h.send(Event::new("test/steps", json!({}))).await;
    assert_eq!(h.wait_for_run_of(&id).await.status, RunStatus::Completed);
}

#[tokio::test]
async fn large_state_is_fetched_through_the_api() {
    let rec = Recorder::default();
    let h = TestHarness::builder("app")
        .function(steps_fn())
        .auto_advance(true)
        .configure_executor(|b| b.max_inline_state_bytes(900))
        .app_router("/api/inngest", recording_router(rec.clone()))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/steps", json!({"k": 2}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"b": 300, "data": {"k": 2}})));
    let posts = rec.posts_for_run(&run.id);
    let big: Vec<&executor_support::Recorded> =
        posts.iter().filter(|p| p.body["use_api"] == true).collect();
    assert!(!big.is_empty());
    for p in big {
        assert_eq!(p.body["ctx"]["use_api"], true);
        assert_eq!(p.body["steps"], json!({}));
    }
    // The same state is served by /v0.
    let actions: Value = reqwest::get(format!("{}/v0/runs/{}/actions", h.executor_url(), run.id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(actions.as_object().unwrap().len(), 3);
    let batch: Value = reqwest::get(format!("{}/v0/runs/{}/batch", h.executor_url(), run.id))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(batch[0]["data"], json!({"k": 2}));
}

fn fixture(path: &str) -> Value {
    let p = format!(
        "{}/tests/fixtures/captures/classic/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn rest_history_api_matches_the_dev_server_shape() {
    let failing = Function::new("fails")
        .trigger(Trigger::event("test/fails"))
        .retries(0)
        .handler(|_ctx: Ctx<Value>, _step: Step| async move {
            Err::<(), Error>(inngest_sdk::NonRetriable::new("nope").into())
        });
    let h = TestHarness::builder("app")
        .functions([steps_fn(), failing])
        .auto_advance(true)
        .start()
        .await
        .unwrap();
    let ok_id = h.send(Event::new("test/steps", json!({}))).await;
    let ok = h.wait_for_run_of(&ok_id).await;
    let bad_id = h.send(Event::new("test/fails", json!({}))).await;
    let bad = h.wait_for_run_of(&bad_id).await;
    let base = h.executor_url();
    let get = |path: String| async move {
        let res = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.json::<Value>().await.unwrap()
    };

    let captured_ok = fixture("api-examples/v1-runs-01M8GA0PM60JRWWJY8ZEE4VE6V.json");
    let captured_failed = fixture("api-examples/v1-runs-01M8GA0PM5B0S4DA5NA9W98D1B.json");
    let captured_list = fixture("api-examples/v1-events-01M8GA0PH905RK0NEW8SAPH6DF-runs.json");

    let body = get(format!("/v1/runs/{}", ok.id)).await;
    assert_eq!(keys(&body), keys(&captured_ok));
    assert_eq!(keys(&body["data"]), keys(&captured_ok["data"]));
    assert_eq!(keys(&body["metadata"]), keys(&captured_ok["metadata"]));
    assert_eq!(body["data"]["status"], "Completed");
    assert_eq!(body["data"]["run_id"], ok.id.as_str());
    assert_eq!(body["data"]["event_id"], ok_id.as_str());
    assert_eq!(body["data"]["output"], ok.output.clone().unwrap());

    let body = get(format!("/v1/runs/{}", bad.id)).await;
    assert_eq!(keys(&body["data"]), keys(&captured_failed["data"]));
    assert_eq!(body["data"]["status"], captured_failed["data"]["status"]);
    assert_eq!(body["data"]["output"]["message"], "nope");

    let body = get(format!("/v1/events/{ok_id}/runs")).await;
    assert_eq!(keys(&body), keys(&captured_list));
    assert_eq!(keys(&body["data"][0]), keys(&captured_list["data"][0]));
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    let steps = get(format!("/v1/runs/{}/steps", ok.id)).await;
    let names: Vec<&str> = steps["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "s", "b"]);
    assert!(steps["data"][1]["ended_at"].is_string());
    let history = get(format!("/v1/runs/{}/history", ok.id)).await;
    assert!(history["data"].as_array().unwrap().len() > 5);
    let list = get("/v1/runs".to_owned()).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["run_id"], bad.id.as_str(), "newest first");
    let events = get("/v1/events".to_owned()).await;
    assert!(events["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["name"] == "inngest/function.finished"));
    assert_eq!(
        get("/health".to_owned()).await,
        json!({"status": 200, "message": "OK"})
    );
    let apps = get("/v1/apps".to_owned()).await;
    assert_eq!(apps["data"][0]["id"], "app");
    let fns = get("/v1/apps/app/functions".to_owned()).await;
    assert_eq!(fns.as_array().unwrap().len(), 2);

    let res = reqwest::get(format!("{base}/v1/runs/nope")).await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn runs_can_be_cancelled_over_rest() {
    let f = Function::new("sleepy")
        .trigger(Trigger::event("test/sleepy"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.sleep("zz", Duration::from_secs(3600)).await;
            Ok(())
        });
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(Event::new("test/sleepy", json!({}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    let res = reqwest::Client::new()
        .delete(format!("{}/v1/runs/{}", h.executor_url(), run.id))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"]["status"], "Cancelled");
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn invoke_over_rest() {
    let h = TestHarness::start("app", [echo()]).await.unwrap();
    let body: Value = reqwest::Client::new()
        .post(format!("{}/invoke/app-echo", h.executor_url()))
        .json(&json!({"data": {"direct": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = body["id"].as_str().unwrap();
    let run = h.wait_for_run_of(id).await;
    assert_eq!(run.output.as_ref().unwrap()["direct"], true);
}

#[tokio::test]
async fn functions_run_once_per_trigger_match_and_expressions_filter() {
    let counter = Arc::new(AtomicUsize::new(0));
    let c = counter.clone();
    let f = Function::new("filtered")
        .trigger(Trigger::event("test/f").when("event.data.amount > 10"))
        .trigger(Trigger::event("test/*"))
        .handler(move |ctx: Ctx<Value>, _step: Step| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Ok(ctx.event.name)
            }
        });
    let g = Function::new("only-big")
        .trigger(Trigger::event("test/f").when("event.data.amount > 10"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok("big") });
    let h = TestHarness::start("app", [f, g]).await.unwrap();
    let small = h.send(Event::new("test/f", json!({"amount": 5}))).await;
    let big = h.send(Event::new("test/f", json!({"amount": 50}))).await;
    let small_runs = h.wait_for_runs_of(&small, 1).await;
    assert_eq!(small_runs.len(), 1, "only the wildcard trigger matched");
    let big_runs = h.wait_for_runs_of(&big, 2).await;
    assert_eq!(
        big_runs.len(),
        2,
        "one run per function, not per matching trigger"
    );
    assert_eq!(counter.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn checkpointed_steps_are_memoized() {
    // An app in checkpointing mode: it runs step `a` inline, reports it to
    // `/v1/checkpoint/{run}/async`, then answers the request with `RunComplete`.
    let executor = Executor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let _task = tokio::spawn(async move { server.serve(listener).await });
    let checkpoint_base = base.clone();
    let app = Router::new().route(
        "/api/inngest",
        any(move |body: Bytes| {
            let base = checkpoint_base.clone();
            async move {
                let req: Value = serde_json::from_slice(&body).unwrap();
                let run_id = req["ctx"]["run_id"].as_str().unwrap().to_owned();
                let res = reqwest::Client::new()
                    .post(format!("{base}/v1/checkpoint/{run_id}/async"))
                    .json(&json!({"run_id": run_id, "fn_id": req["ctx"]["fn_id"], "steps": [
                        {"id": "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8", "op": "StepRun", "name": "a",
                         "displayName": "a", "userland": {"id": "a"}, "mode": "sync", "data": {"fromA": 1}}
                    ], "ts": 1}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                sdk(
                    206,
                    r#"[{"op":"RunComplete","id":"0737c22d3bfae812339732d14d8c7dbd6dc4e09c","data":{"done":true}}]"#,
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/inngest", l.local_addr().unwrap());
    let _app = tokio::spawn(async move { axum::serve(l, app).await });
    executor
        .register(&json!({"appName": "cp", "url": url, "functions": [function_json(&url, "cp")]}))
        .unwrap();
    let id = executor.send(json!({"name": "bad/cp"})).await.unwrap();
    let run = executor.runs_for_event(&id).remove(0);
    let run = executor.wait_for_run(&run.id, WAIT).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"done": true})));
    let a = run.step("a").unwrap();
    assert_eq!(a.output, Some(json!({"data": {"fromA": 1}})));
    assert_eq!(run.requests, 1);
    let res = reqwest::Client::new()
        .post(format!("{base}/v1/checkpoint/nope/async"))
        .json(&json!({"steps": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn runs_follow_an_app_that_moved() {
    let before = Recorder::default();
    let h = TestHarness::builder("app")
        .function(steps_fn())
        .app_router("/api/inngest", recording_router(before.clone()))
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("test/steps", json!({}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    // The same app restarts on another port and syncs again.
    let after = Recorder::default();
    let router = recording_router(after.clone())(h.client(), vec![steps_fn()]).unwrap();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/inngest", l.local_addr().unwrap());
    let _app = tokio::spawn(async move { axum::serve(l, router).await });
    let app = h.executor().register_app(&url).await.unwrap();
    assert!(app.functions[0].url.starts_with(&url));
    h.advance(Duration::from_secs(1));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(before.posts_for_run(&run.id).len(), 2);
    assert_eq!(after.posts_for_run(&run.id).len(), 2);
}
