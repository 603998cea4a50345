//! The app's middleware (`otakumori::functions::middleware`): the handlers get their `Deps` from
//! `Services` and fail clearly without it, and `FailureReporter` reports each failed attempt
//! exactly once — `warn` while Inngest retries, `error` on the last — with ids and no data.

mod functions_support;

use std::sync::{Arc, Mutex};

use functions_support::{checkout_completed, TestApp};
use inngest_executor::{RunStatus, StepStatus};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::Event;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use otakumori::functions::middleware::{FAILURES_TOTAL, FAILURE_TARGET};
use otakumori::functions::orders::order_created_event_id;
use otakumori::functions::{self, APP_ID, EVENT_ORDER_CREATED};
use otakumori::sandbox::fixtures::PRODUCT_IDS;
use otakumori::sandbox::Fault;
use serde_json::json;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// One failure report: its level and fields, as `name=value` strings.
#[derive(Debug, Clone)]
struct Report {
    level: tracing::Level,
    fields: Vec<(String, String)>,
}

impl Report {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Collects the events of [`FAILURE_TARGET`].
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<Report>>>);

impl Reports {
    fn of(&self, function: &str) -> Vec<Report> {
        let all = self.0.lock().unwrap().clone();
        all.into_iter()
            .filter(|r| r.get("function") == Some(function))
            .collect()
    }
}

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Reports {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != FAILURE_TARGET {
            return;
        }
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push(Report {
            level: *event.metadata().level(),
            fields: fields.0,
        });
    }
}

/// The failure counters since the last snapshot (a snapshot resets counters):
/// `(function, final) → count`.
fn failure_counts(snapshotter: &Snapshotter) -> Vec<((String, String), u64)> {
    let mut out = Vec::new();
    for (ck, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = ck.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
                .unwrap_or_default()
        };
        if let (FAILURES_TOTAL, DebugValue::Counter(n)) = (key.name(), value) {
            out.push(((label("function"), label("final")), n));
        }
    }
    out.sort();
    out
}

/// An order whose Printify POST fails `fault` first, driven from its Stripe webhook to the end
/// of its `process-order` run.
async fn order_run(app: &TestApp, name: &str, fault: Fault) -> inngest_executor::RunView {
    let user = app
        .user(&format!("user_{name}"), &format!("{name}@nerv.example"))
        .await;
    let mug = app.variant(PRODUCT_IDS[2], 40_202).await;
    let session_id = format!("cs_test_{name}");
    let order = app.order(&user, &session_id, &[(Some(&mug), 1)]).await;
    app.printify().push_fault(fault.on_path("orders.json"));
    let session = app
        .stripe()
        .sessions()
        .into_iter()
        .find(|s| s["id"] == session_id.as_str())
        .expect("session fixture");
    app.webhooks()
        .await
        .stripe(&checkout_completed(&format!("evt_{name}"), &session))
        .await;
    let run = app
        .h
        .wait_for_run_of(&order_created_event_id(order.id))
        .await;
    app.h.wait_for_run(&run.id).await
}

// A current-thread runtime: the executor, the app and every hook run on this thread, so the
// thread's default subscriber sees each report.
#[tokio::test(flavor = "current_thread")]
async fn each_failed_attempt_is_reported_once_with_ids_and_no_data() {
    let reports = Reports::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(reports.clone()));
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _metrics = metrics::set_default_local_recorder(&recorder);
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;

    // A 500 once: the step is retried and the run completes; one warn report.
    let run = order_run(&app, "flaky", Fault::status(500, 1)).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let step = run.step("create-printify-order").unwrap();
    assert_eq!(step.attempts, 2);
    let got = reports.of(functions::FN_PROCESS_ORDER);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].level, tracing::Level::WARN);
    assert_eq!(got[0].get("step"), Some("create-printify-order"));
    assert_eq!(got[0].get("attempt"), Some("1"));
    assert_eq!(got[0].get("max_attempts"), Some("4"));
    assert_eq!(got[0].get("run_id"), Some(run.id.as_str()));
    assert!(got[0].get("reason").unwrap().contains("500"), "{got:#?}");

    // A 400: non-retriable, so the first failure is the final one; one error report more.
    let run = order_run(
        &app,
        "rejected",
        Fault::status(400, 10).with_message("Validation failed."),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(
        run.step("create-printify-order").unwrap().status,
        StepStatus::Failed
    );
    let got = reports.of(functions::FN_PROCESS_ORDER);
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[1].level, tracing::Level::ERROR);
    assert_eq!(got[1].get("run_id"), Some(run.id.as_str()));
    assert_eq!(got[1].get("error"), Some("NonRetriableError"));
    assert!(got[1].get("reason").unwrap().contains("Validation failed."));

    // The same two failures, counted.
    let order = functions::FN_PROCESS_ORDER.to_owned();
    assert_eq!(
        failure_counts(&snapshotter),
        [
            ((order.clone(), "false".to_owned()), 1),
            ((order, "true".to_owned()), 1)
        ]
    );

    // No report carries event data or an address: only these fields.
    let allowed = [
        "message",
        "function",
        "run_id",
        "step",
        "attempt",
        "max_attempts",
        "error",
        "reason",
    ];
    for r in reports.0.lock().unwrap().iter() {
        for (name, _) in &r.fields {
            assert!(
                allowed.contains(&name.as_str()),
                "unexpected field {name}: {r:?}"
            );
        }
        assert!(
            !format!("{r:?}").contains("nerv.example"),
            "an email leaked: {r:?}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn a_client_without_the_services_middleware_fails_naming_the_missing_type() {
    let h = TestHarness::builder(APP_ID)
        .functions(functions::all())
        .start()
        .await
        .unwrap();
    let id = h
        .send(Event::new(
            EVENT_ORDER_CREATED,
            json!({"orderId": "6f1c2a4e-8d1b-4c7e-9f2a-1b3c4d5e6f70"}),
        ))
        .await;
    let run = h.wait_for_run_of(&id).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1, "a missing dependency is not retried");
    let error = run.error.unwrap();
    assert_eq!(error.name, "MissingDependency");
    assert!(
        error.message.contains("`otakumori::functions::Deps`"),
        "{}",
        error.message
    );
}
