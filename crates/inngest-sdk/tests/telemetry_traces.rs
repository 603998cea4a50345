//! Feature `otel`: a run of three steps and a sleep is one trace across all its calls, each call
//! span parented from the executor's `traceparent`, each step span a child of its call, and a
//! send from inside a step carries the step's `traceparent`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::post;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{json, Value};
use tracing_subscriber::prelude::*;

use inngest_sdk::step::hash_id;
use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Ctx, Event, Function, Inngest, Step, Trigger};

/// A stand-in event API that records the `traceparent` of every send.
async fn fake_event_api() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/e/{key}",
        post(move |headers: HeaderMap| {
            let record = record.clone();
            async move {
                let tp = headers
                    .get("traceparent")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                record.lock().unwrap().push(tp);
                axum::Json(json!({ "ids": ["01M8GA0PS6ST45CKVJMZ4RG1C0"], "status": 200 }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// The attributes of a span as text, by key.
fn attrs(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_string()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_is_one_trace_with_call_and_step_spans() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("telemetry-test"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false);
    tracing_subscriber::registry().with(layer).init();

    let (api_url, seen) = fake_event_api().await;
    let other = Inngest::builder("other-app")
        .dev_url(api_url)
        .build()
        .unwrap();
    let traced = Function::new("traced")
        .trigger(Trigger::event("demo/traced"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let other = other.clone();
            async move {
                let n: u32 = step.run("fetch", || async { Ok(41) }).await?;
                step.sleep("pause", Duration::from_secs(3600)).await;
                step.run("notify", || async move {
                    other.send(Event::new("demo/notified", json!({}))).await?;
                    Ok(())
                })
                .await?;
                step.send_event("announce", Event::new("demo/announced", json!({})))
                    .await?;
                Ok(json!({ "n": n + 1 }))
            }
        });
    let h = TestHarness::start("tapp", [traced]).await.unwrap();
    let id = h.send(Event::new("demo/traced", json!({}))).await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.advance(Duration::from_secs(3600));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({ "n": 42 })));
    assert_eq!(run.requests, 5);

    let trace_id = format!(
        "{:032x}",
        inngest_sdk::testing::executor::run_trace_id(&run.id)
    );
    let mut spans: Vec<SpanData> = exporter
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .filter(|s| s.name.starts_with("inngest."))
        .collect();
    spans.sort_by_key(|s| s.start_time);
    let (calls, steps): (Vec<_>, Vec<_>) = spans.iter().partition(|s| s.name == "inngest.call");
    assert_eq!((calls.len(), steps.len()), (5, 3), "spans: {spans:#?}");

    // One trace: the run's, from the executor's `traceparent`.
    for s in &spans {
        assert_eq!(
            s.span_context.trace_id().to_string(),
            trace_id,
            "{}",
            s.name
        );
    }
    let outcomes = [
        "step_ran",
        "steps_reported",
        "step_ran",
        "step_ran",
        "completed",
    ];
    let mut parents = Vec::new();
    for (call, outcome) in calls.iter().zip(outcomes) {
        assert_eq!(call.span_kind, SpanKind::Server);
        assert!(
            call.parent_span_is_remote,
            "a call's parent is the executor's request"
        );
        parents.push(call.parent_span_id.to_string());
        assert_eq!(call.status, Status::Unset);
        assert_eq!(
            attrs(call),
            map(&[
                ("fn_id", "tapp-traced"),
                ("run_id", &run.id),
                ("attempt", "0"),
                ("step", "step"),
                ("outcome", outcome),
            ])
        );
    }
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), 5, "each request has its own parent span id");

    // Each executed step is a child of the call that ran it: calls 1, 3 and 4.
    let expected = [("fetch", 0), ("notify", 2), ("announce", 3)];
    for (step, (name, call)) in steps.iter().zip(expected) {
        assert_eq!(step.span_kind, SpanKind::Internal);
        assert!(!step.parent_span_is_remote);
        assert_eq!(
            step.parent_span_id,
            calls[call].span_context.span_id(),
            "{name}"
        );
        assert_eq!(
            attrs(step),
            map(&[
                ("step.name", name),
                ("step.id", &hash_id(name)),
                ("step.attempt", "0"),
                ("step.op", "StepRun"),
                ("step.outcome", "ok"),
            ])
        );
    }

    // The send from inside `notify` carried that step's span as parent.
    let notify = steps[1].span_context.span_id();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some(format!("00-{trace_id}-{notify}-01"))]
    );
}
