//! `/metrics` after the demo scenario: the SDK's call, step and state metrics in the Prometheus
//! text format, with exact counts checked against what the embedded executor recorded.
//!
//! One test in this binary: the metrics recorder is process-wide.

use std::collections::BTreeMap;

use inngest_executor::RunStatus;

mod app_support;
use app_support::scenario::{start_and_play, WAIT};
use app_support::TempDb;

/// The five functions of the demo scenario.
const DEMO_FUNCTIONS: [&str; 5] = [
    "sync-user-to-supabase",
    "update-printify-products",
    "process-payment-webhook",
    "process-order",
    "send-order-confirmation",
];

/// The samples of a Prometheus text exposition, by `name{labels}` as rendered.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (key, value) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                key.to_owned(),
                value.parse().unwrap_or_else(|_| panic!("bad value {l:?}")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_after_the_demo_scenario() {
    let db = TempDb::new("metrics");
    let (app, _) = start_and_play(&db).await;
    let res = reqwest::Client::new()
        .get(format!("{}/metrics", app.app_url()))
        .timeout(WAIT)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = res.text().await.unwrap();
    let s = samples(&text);
    let get = |key: &str| s.get(key).copied().unwrap_or(0.0);
    assert!(
        text.contains("# TYPE inngest_calls_total counter"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE inngest_step_duration_seconds histogram"),
        "{text}"
    );

    let ex = app.executor().expect("embedded executor");
    let runs = ex.runs();
    assert_eq!(runs.len(), 5);
    for f in DEMO_FUNCTIONS {
        let slug = app.function_id(f);
        let run = runs
            .iter()
            .find(|r| r.function_id == slug)
            .unwrap_or_else(|| panic!("no run of {f}"));
        assert_eq!(run.status, RunStatus::Completed, "{f}");
        // Every request the executor sent is one call, counted under its outcome.
        let calls: f64 = s
            .iter()
            .filter(|(k, _)| {
                k.starts_with("inngest_calls_total{") && k.contains(&format!("function=\"{slug}\""))
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(calls, f64::from(run.requests), "{f}: calls\n{text}");
        let completed = format!("inngest_calls_total{{function=\"{slug}\",outcome=\"completed\"}}");
        assert_eq!(get(&completed), 1.0, "{f}\n{text}");
        let state = format!("inngest_call_state_bytes_count{{function=\"{slug}\"}}");
        assert_eq!(get(&state), f64::from(run.requests), "{f}\n{text}");
    }
    // process-order ran its six steps once each, all succeeding, one per call.
    let order = app.function_id("process-order");
    assert_eq!(
        get(&format!(
            "inngest_calls_total{{function=\"{order}\",outcome=\"step_ran\"}}"
        )),
        6.0,
        "{text}"
    );
    assert_eq!(
        get(&format!(
            "inngest_step_duration_seconds_count{{function=\"{order}\",outcome=\"ok\"}}"
        )),
        6.0,
        "{text}"
    );
    // Nothing failed in the scenario.
    assert!(!text.contains("inngest_errors_total{"), "{text}");
    app.shutdown().await;
}
