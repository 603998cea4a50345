//! The executor's run dashboard over its router (no browser: see
//! `otakumori/tests/dashboard_browser.rs` for that): the Cancel button, the events page's runs
//! and flow-control skips, the functions page's triggers, crons and statistics, pagination and
//! the live fragment, and the signing-key check.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use chrono::{Days, Utc};
use http_body_util::BodyExt;
use inngest_executor::{Executor, HistoryKind, RunStatus};
use serde_json::{json, Value};
use tower::ServiceExt;

const WAIT: Duration = Duration::from_secs(20);
/// Nothing listens here: every request to the app fails, and the retry is an hour away.
const APP: &str = "http://127.0.0.1:9/api/inngest";

fn function(id: &str, triggers: Value, extra: Value) -> Value {
    let mut f = json!({
        "id": id, "name": format!("Function {id}"), "triggers": triggers,
        "steps": {"step": {"id": "step", "name": "step",
            "runtime": {"type": "http", "url": format!("{APP}?fnId={id}&stepId=step")}}}
    });
    f.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    f
}

/// An executor with the `dash` app: `dash-work` (idempotent by `event.data.k`, concurrency 2)
/// and `dash-nightly` (a cron at midnight UTC).
fn executor(builder: inngest_executor::ExecutorBuilder) -> Executor {
    let ex = builder
        .retry_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    ex.register(&json!({"appName": "dash", "url": APP, "sdk": "rust:v0.1.0", "functions": [
        function("dash-work", json!([{"event": "dash/work", "expression": "event.data.k != 'never'"}]),
                 json!({"idempotency": "event.data.k", "concurrency": [{"limit": 2}]})),
        function("dash-nightly", json!([{"cron": "0 0 * * *"}]), json!({})),
    ]}))
    .unwrap();
    ex
}

/// Sends `dash/work` with key `k`; returns the event id.
async fn send(ex: &Executor, k: &str) -> String {
    ex.send(json!({"name": "dash/work", "data": {"k": k}}))
        .await
        .unwrap()
}

/// Waits until the event's run has had its first request fail.
async fn first_failure(ex: &Executor, event_id: &str) -> String {
    let run = ex.wait_for_first_run_of(event_id, WAIT).await.unwrap();
    ex.wait_for(&run.id, WAIT, |r| {
        r.history_of(HistoryKind::RequestFailed).next().is_some()
    })
    .await
    .unwrap();
    run.id
}

async fn call(ex: &Executor, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = ex.router().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn get(ex: &Executor, path: &str) -> String {
    let (status, headers, body) = call(ex, Request::get(path).body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    body
}

/// The values of `attr="…"` in page order.
fn attrs(html: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    html.match_indices(&needle)
        .map(|(i, _)| {
            let from = i + needle.len();
            html[from..from + html[from..].find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_cancel_button_cancels_a_running_run() {
    let ex = executor(Executor::builder());
    let run_id = first_failure(&ex, &send(&ex, "a").await).await;
    let page = get(&ex, &format!("/runs/{run_id}")).await;
    assert!(
        page.contains(&format!(
            "<form id=\"cancel\" method=\"post\" action=\"/runs/{run_id}/cancel\">"
        )),
        "{page}"
    );
    assert!(
        page.contains(&format!("data-live=\"/fragments/runs/{run_id}\"")),
        "{page}"
    );
    assert!(
        page.contains("<tr data-kind=\"RequestFailed\">"),
        "the failed attempt is listed: {page}"
    );
    assert!(page.contains("<tr data-kind=\"RetryScheduled\">"), "{page}");

    let post = |origin: &str| {
        Request::post(format!("/runs/{run_id}/cancel"))
            .header(header::HOST, "127.0.0.1:8288")
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let (status, _, _) = call(&ex, post("https://elsewhere.example")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ex.run(&run_id).unwrap().status, RunStatus::Running);

    let (status, headers, _) = call(&ex, post("http://127.0.0.1:8288")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], format!("/runs/{run_id}"));
    let run = ex.run(&run_id).unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let page = get(&ex, &format!("/runs/{run_id}")).await;
    assert!(!page.contains("id=\"cancel\""), "{page}");
    assert!(page.contains("<span class=\"status status-Cancelled\">Cancelled</span>"));
    assert!(page.contains(&format!(
        "<span id=\"run-error-message\">{}</span>",
        run.error.unwrap().message
    )));
    assert!(page.contains("cancelled from the dashboard"));

    let (status, _, body) =
        call(&ex, Request::get("/runs/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("No run has the id <code>nope</code>"),
        "{body}"
    );
    ex.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_events_page_lists_runs_and_flow_control_skips() {
    let ex = executor(Executor::builder());
    let first = send(&ex, "same").await;
    let run_id = first_failure(&ex, &first).await;
    let second = send(&ex, "same").await;
    let page = get(&ex, "/events").await;
    // Newest first: the skipped event, then the one that started the run.
    assert_eq!(
        attrs(&page, "data-event-id"),
        vec![second.clone(), first.clone()]
    );
    let rows: Vec<&str> = page.split("<tr class=\"event\"").skip(1).collect();
    assert!(
        rows[0].contains(
            "<li class=\"skip\" data-function=\"dash-work\">dash-work — Idempotency (key <code>"
        ),
        "{}",
        rows[0]
    );
    assert!(!rows[0].contains("data-run-id"), "{}", rows[0]);
    assert!(rows[1].contains(&format!("<li class=\"event-run\" data-run-id=\"{run_id}\"><a href=\"/runs/{run_id}\">dash-work</a>")), "{}", rows[1]);
    assert!(!rows[1].contains("class=\"skip\""));
    assert!(
        page.contains("&quot;k&quot;: &quot;same&quot;"),
        "the payload is shown"
    );
    ex.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_functions_page_shows_triggers_crons_flow_control_and_stats() {
    let ex = executor(Executor::builder());
    let run_id = first_failure(&ex, &send(&ex, "a").await).await;
    assert!(ex.cancel_run(&run_id));
    let page = get(&ex, "/").await;
    assert_eq!(attrs(&page, "data-function"), ["dash-work", "dash-nightly"]);
    assert!(
        page.contains("event <code>dash/work</code> if <code>event.data.k != 'never'</code>"),
        "{page}"
    );
    let midnight = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(1))
        .unwrap();
    let next = format!("next <span class=\"next-fire\"><time datetime=\"{}T00:00:00+00:00\">{} 00:00:00.000 UTC</time>", midnight, midnight);
    assert!(page.contains(&next), "{next}\n{page}");
    assert!(page.contains("<dt><code>idempotency</code></dt><dd><code>event.data.k</code></dd>"));
    assert!(page.contains(
        "<dt><code>concurrency</code></dt><dd><code>[{&quot;limit&quot;:2}]</code></dd>"
    ));
    let work = page
        .split("<tr class=\"function\" data-function=\"dash-work\">")
        .nth(1)
        .unwrap();
    assert!(
        work.contains("<td class=\"ended\">1</td><td class=\"error-rate\">0.0%</td>"),
        "{work}"
    );
    let nightly = page.split("data-function=\"dash-nightly\"").nth(1).unwrap();
    assert!(nightly.contains("<td class=\"ended\">0</td>"), "{nightly}");
    assert!(
        nightly.contains("<span class=\"muted\">none</span>"),
        "no flow control"
    );
    ex.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_runs_paginate_newest_first_and_the_fragment_matches() {
    let ex = executor(Executor::builder());
    let events: Vec<Value> = (0..120)
        .map(|i| json!({"name": "dash/work", "data": {"k": i.to_string()}}))
        .collect();
    ex.send_many(events).await.unwrap();
    let all: Vec<String> = ex.runs().iter().rev().map(|r| r.id.clone()).collect();
    assert_eq!(all.len(), 120);
    let page1 = get(&ex, "/runs").await;
    assert_eq!(attrs(&page1, "data-run-id"), all[..50]);
    assert!(page1.contains("<a id=\"next-page\" href=\"/runs?page=2\">"));
    assert!(!page1.contains("prev-page"));
    let page3 = get(&ex, "/runs?function=dash-work&page=3").await;
    assert_eq!(attrs(&page3, "data-run-id"), all[100..]);
    assert!(page3.contains("<a id=\"prev-page\" href=\"/runs?function=dash-work&amp;page=2\">"));
    assert!(!page3.contains("next-page"));
    let fragment = get(&ex, "/fragments/runs?function=dash-work&page=3").await;
    assert_eq!(attrs(&fragment, "data-run-id"), all[100..]);
    assert!(!fragment.contains("<html"), "a fragment is rows only");
    let none = get(&ex, "/runs?status=Completed").await;
    assert!(none.contains("<tr id=\"no-runs\"><td colspan=\"6\">No runs match.</td></tr>"));
    assert!(none.contains("<option value=\"Completed\" selected>Completed</option>"));
    ex.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_is_keyed_like_the_api_and_never_shows_keys() {
    let signing = format!("signkey-test-{}", "ab".repeat(32));
    let builder = Executor::builder()
        .signing_key(Some(signing.clone()))
        .event_key(Some("evkey-secret-123".into()));
    let ex = executor(builder);
    for path in ["/", "/runs", "/events"] {
        let (status, _, _) = call(&ex, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in ["/", "/runs", "/events"] {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {signing}"))
            .body(Body::empty())
            .unwrap();
        let (status, _, body) = call(&ex, req).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            !body.contains("abababab") && !body.contains("evkey-secret"),
            "{path}: {body}"
        );
        assert!(
            body.contains("This is a local development server"),
            "{path}"
        );
    }
    ex.shutdown();
}
