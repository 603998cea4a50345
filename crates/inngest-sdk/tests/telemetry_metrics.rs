//! Feature `metrics`: calls by function and outcome, errors by kind, step durations and state
//! sizes, recorded through the `metrics` facade (here into `metrics-util`'s debugging recorder).

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;
use serde_json::{json, Value};

use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Ctx, Error, Event, Function, NonRetriable, Step, Trigger};

/// `(kind, name, sorted labels)` of one metric.
type Key = (MetricKind, String, Vec<(String, String)>);

fn snapshot(snapshotter: &metrics_util::debugging::Snapshotter) -> BTreeMap<Key, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(ck, _, _, value)| {
            let (kind, key) = ck.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            labels.sort();
            ((kind, key.name().to_owned(), labels), value)
        })
        .collect()
}

fn key(kind: MetricKind, name: &str, labels: &[(&str, &str)]) -> Key {
    let mut labels: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.sort();
    (kind, name.to_owned(), labels)
}

fn histogram(values: &BTreeMap<Key, DebugValue>, k: &Key) -> Vec<f64> {
    match values.get(k) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|f| f.into_inner()).collect(),
        other => panic!("{k:?}: not a histogram: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_errors_durations_and_state_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();
    inngest_sdk::telemetry::describe_metrics();

    let metered = Function::new("metered")
        .trigger(Trigger::event("demo/metered"))
        .retries(2)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: String = step.run("a", || async { Ok("abcdef".to_owned()) }).await?;
            let attempt = ctx.attempt;
            step.run("flaky", move || async move {
                if attempt == 0 {
                    return Err(Error::msg("not yet"));
                }
                Ok(())
            })
            .await?;
            Ok(json!({ "a": a }))
        });
    let doomed = Function::new("doomed")
        .trigger(Trigger::event("demo/doomed"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move {
            Err::<Value, _>(NonRetriable::new("no way").into())
        });
    let h = TestHarness::start("mapp", [metered, doomed]).await.unwrap();
    let one = h.send(Event::new("demo/metered", json!({}))).await;
    let two = h.send(Event::new("demo/doomed", json!({}))).await;
    assert_eq!(h.wait_for_run_of(&one).await.status, RunStatus::Completed);
    assert_eq!(h.wait_for_run_of(&two).await.status, RunStatus::Failed);

    let values = snapshot(&snapshotter);
    use MetricKind::{Counter, Histogram};
    let calls = "inngest_calls_total";
    let errors = "inngest_errors_total";
    let counters: BTreeMap<&Key, u64> = values
        .iter()
        .filter_map(|(k, v)| match v {
            DebugValue::Counter(n) => Some((k, *n)),
            _ => None,
        })
        .collect();
    let expected: BTreeMap<Key, u64> = [
        (
            key(
                Counter,
                calls,
                &[("function", "mapp-metered"), ("outcome", "step_ran")],
            ),
            2,
        ),
        (
            key(
                Counter,
                calls,
                &[("function", "mapp-metered"), ("outcome", "step_error")],
            ),
            1,
        ),
        (
            key(
                Counter,
                calls,
                &[("function", "mapp-metered"), ("outcome", "completed")],
            ),
            1,
        ),
        (
            key(
                Counter,
                calls,
                &[("function", "mapp-doomed"), ("outcome", "function_failed")],
            ),
            1,
        ),
        (
            key(
                Counter,
                errors,
                &[("function", "mapp-metered"), ("kind", "step_error")],
            ),
            1,
        ),
        (
            key(
                Counter,
                errors,
                &[("function", "mapp-doomed"), ("kind", "function_failed")],
            ),
            1,
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        counters
            .into_iter()
            .map(|(k, n)| (k.clone(), n))
            .collect::<BTreeMap<_, _>>(),
        expected
    );

    let durations = "inngest_step_duration_seconds";
    let ok = histogram(
        &values,
        &key(
            Histogram,
            durations,
            &[("function", "mapp-metered"), ("outcome", "ok")],
        ),
    );
    let failed = histogram(
        &values,
        &key(
            Histogram,
            durations,
            &[("function", "mapp-metered"), ("outcome", "error")],
        ),
    );
    assert_eq!((ok.len(), failed.len()), (2, 1));
    assert!(ok.iter().chain(&failed).all(|s| (0.0..10.0).contains(s)));

    // The memoized state each call received: nothing, then `a`'s result, then `a` and `flaky`.
    let state = "inngest_call_state_bytes";
    let metered_state = histogram(
        &values,
        &key(Histogram, state, &[("function", "mapp-metered")]),
    );
    let a = r#"{"data":"abcdef"}"#.len() as f64;
    let flaky = r#"{"data":null}"#.len() as f64;
    assert_eq!(metered_state, vec![0.0, a, a, a + flaky]);
    let doomed_state = histogram(
        &values,
        &key(Histogram, state, &[("function", "mapp-doomed")]),
    );
    assert_eq!(doomed_state, vec![0.0]);
    let histograms = values.keys().filter(|k| k.0 == Histogram).count();
    assert_eq!(histograms, 4, "{:#?}", values.keys().collect::<Vec<_>>());
}
