//! How fast the run dashboard's pages answer with 10,000 runs in the executor.
//!
//! Setup: a minimal app (a few lines of the serve protocol over real HTTP) with a function of
//! one step; 10,000 events start 10,000 runs (three in four complete after their step, one in
//! four fails without retry), plus an idempotent function whose repeated keys leave skip
//! records. Each page is then requested through the executor's router (the handler, rendering
//! and body, without the TCP hop).
//!
//! ```text
//! cargo bench -p inngest-executor --bench dashboard
//! ```

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use inngest_executor::{Executor, RunStatus};
use serde_json::{json, Value};
use tower::ServiceExt;

/// Runs put in the executor before measuring.
const RUNS: usize = 10_000;

/// The bench app's answer to one executor request.
async fn app(Json(body): Json<Value>) -> Response {
    let i = body
        .pointer("/event/data/i")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let mut headers = HeaderMap::new();
    headers.insert("x-inngest-sdk", "rust:v0.1.0".parse().unwrap());
    headers.insert("x-inngest-req-version", "1".parse().unwrap());
    if i % 4 == 3 {
        headers.insert("x-inngest-no-retry", "true".parse().unwrap());
        let err = json!({"name": "Error", "message": format!("boom #{i}")});
        return (StatusCode::INTERNAL_SERVER_ERROR, headers, Json(err)).into_response();
    }
    let memo_empty = body
        .get("steps")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    if memo_empty && body.pointer("/event/name") == Some(&json!("bench/work")) {
        let id = inngest_protocol::step_id::hash_id("work");
        let ops = json!([{"op": "StepRun", "id": id, "name": "work", "displayName": "work", "data": {"i": i}}]);
        return (StatusCode::PARTIAL_CONTENT, headers, Json(ops)).into_response();
    }
    (StatusCode::OK, headers, Json(json!({"ok": true, "i": i}))).into_response()
}

/// A function object of the register payload.
fn function(base: &str, id: &str, triggers: Value, extra: Value) -> Value {
    let mut f = json!({
        "id": id, "name": id, "triggers": triggers,
        "steps": {"step": {"id": "step", "name": "step",
            "runtime": {"type": "http", "url": format!("{base}?fnId={id}&stepId=step")}}}
    });
    if let (Some(o), Some(e)) = (f.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    f
}

/// An executor holding `RUNS` ended runs, and the id of one completed run.
async fn populated() -> (Executor, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/inngest", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/api/inngest", post(app))).await
    });
    let executor = Executor::builder().build().unwrap();
    executor
        .register(&json!({"appName": "bench", "url": base, "sdk": "rust:v0.1.0", "functions": [
            function(&base, "bench-work", json!([{"event": "bench/work"}]), json!({"concurrency": [{"limit": 50}]})),
            function(&base, "bench-once", json!([{"event": "bench/once"}]), json!({"idempotency": "event.data.k"})),
            function(&base, "bench-nightly", json!([{"cron": "TZ=Asia/Tokyo 0 3 * * *"}]), json!({})),
        ]}))
        .unwrap();
    for chunk in (0..RUNS).collect::<Vec<_>>().chunks(500) {
        let events = chunk
            .iter()
            .map(|i| json!({"name": "bench/work", "data": {"i": i}}));
        executor.send_many(events).await.unwrap();
        let done = chunk[chunk.len() - 1] + 1;
        executor
            .wait_for_runs_of_function("bench-work", done, Duration::from_secs(300))
            .await
            .unwrap();
    }
    let once = (0..200).map(|i| json!({"name": "bench/once", "data": {"k": i % 10}}));
    executor.send_many(once).await.unwrap();
    executor
        .wait_for_runs_of_function("bench-once", 10, Duration::from_secs(60))
        .await
        .unwrap();
    let run = executor
        .runs()
        .into_iter()
        .rev()
        .find(|r| r.status == RunStatus::Completed && r.function_id == "bench-work")
        .unwrap();
    (executor, run.id)
}

/// GETs `path` through the router; panics unless it answers 200 with a body.
async fn get(router: &Router, path: &str) -> usize {
    let req = Request::get(path).body(Body::empty()).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{path}");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty(), "{path}");
    body.len()
}

fn pages(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (executor, run_id) = rt.block_on(populated());
    let router = executor.router();
    let run_page = format!("/runs/{run_id}");
    let paths = [
        ("functions /", "/"),
        ("runs /runs", "/runs"),
        ("runs filtered by status", "/runs?status=Failed"),
        (
            "runs filtered, page 50",
            "/runs?function=bench-work&status=Completed&page=50",
        ),
        ("runs live fragment", "/fragments/runs"),
        ("one run /runs/{id}", run_page.as_str()),
        ("events /events", "/events"),
        ("events page 100", "/events?page=100"),
    ];
    let mut group = c.benchmark_group("dashboard (10,000 runs)");
    group.sample_size(30);
    for (name, path) in paths {
        let bytes = rt.block_on(get(&router, path));
        println!("{name}: {path} answers {bytes} bytes");
        group.bench_function(name, |b| b.iter(|| rt.block_on(get(&router, path))));
    }
    group.finish();
    executor.shutdown();
}

criterion_group!(benches, pages);
criterion_main!(benches);
