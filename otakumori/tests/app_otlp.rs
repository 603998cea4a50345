//! OTLP traces when `OTEL_EXPORTER_OTLP_ENDPOINT` is set: the demo scenario's calls and steps
//! reach a loopback fake collector as OTLP http/protobuf, one trace per run, each step span a
//! child of the call span that ran it.
//!
//! One test in this binary: the `tracing` subscriber is process-wide.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use inngest_executor::RunStatus;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use otakumori::app::{init_tracing, Env};
use prost::Message;

mod app_support;
use app_support::scenario::start_and_play;
use app_support::TempDb;

type Seen = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

/// A collector that records every export request (content type, body) and accepts it.
async fn fake_collector() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                record.lock().unwrap().push((ct, body));
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        AnyValue::StringValue(s) => s.clone(),
        AnyValue::IntValue(i) => i.to_string(),
        other => format!("{other:?}"),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_traces_reach_an_otlp_collector() {
    let (collector, seen) = fake_collector().await;
    let env = Env::from_pairs([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("OTEL_SERVICE_NAME", "otakumori-otlp-test"),
    ]);
    init_tracing(&env, "warn");
    let db = TempDb::new("otlp");
    let (app, _) = start_and_play(&db).await;
    otakumori::telemetry::flush_traces().await;

    let mut calls: Vec<Span> = Vec::new();
    let mut steps: Vec<Span> = Vec::new();
    for (ct, body) in seen.lock().unwrap().iter() {
        assert_eq!(ct.as_deref(), Some("application/x-protobuf"));
        let req = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let resource = rs.resource.expect("resource");
            assert_eq!(
                attr(&resource.attributes, "service.name").as_deref(),
                Some("otakumori-otlp-test")
            );
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                match span.name.as_str() {
                    "inngest.call" => calls.push(span),
                    "inngest.step" => steps.push(span),
                    _ => {}
                }
            }
        }
    }

    let runs = app.executor().expect("embedded executor").runs();
    assert_eq!(runs.len(), 5);
    let requests: u32 = runs.iter().map(|r| r.requests).sum();
    assert_eq!(calls.len(), requests as usize, "one call span per request");
    let mut call_ids = BTreeMap::new();
    for run in &runs {
        assert_eq!(run.status, RunStatus::Completed);
        let trace_id = inngest_executor::run_trace_id(&run.id)
            .to_be_bytes()
            .to_vec();
        let of_run: Vec<&Span> = calls
            .iter()
            .filter(|s| attr(&s.attributes, "run_id").as_deref() == Some(run.id.as_str()))
            .collect();
        assert_eq!(of_run.len(), run.requests as usize, "{}", run.function_id);
        for call in of_run {
            assert_eq!(
                call.trace_id, trace_id,
                "{}: one trace per run",
                run.function_id
            );
            assert_eq!(
                attr(&call.attributes, "fn_id").as_deref(),
                Some(run.function_id.as_str())
            );
            assert_eq!(
                call.parent_span_id.len(),
                8,
                "parented from the executor's request"
            );
            call_ids.insert(call.span_id.clone(), run.function_id.clone());
        }
    }
    // The order run's six steps, each under a call of that run.
    let order = app.function_id("process-order");
    let order_steps: BTreeSet<String> = steps
        .iter()
        .filter(|s| call_ids.get(&s.parent_span_id) == Some(&order))
        .map(|s| attr(&s.attributes, "step.name").unwrap())
        .collect();
    let expected: BTreeSet<String> = [
        "validate-order",
        "process-payment",
        "check-inventory",
        "create-printify-order",
        "send-confirmation",
        "clear-cart",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(order_steps, expected);
    assert!(
        steps
            .iter()
            .all(|s| call_ids.contains_key(&s.parent_span_id)),
        "every step span is a child of a call span"
    );
    app.shutdown().await;
}
