//! Signals: `step.wait_for_signal` on the wire (the `WaitForSignal` op, its opts and memos) and
//! through the local executor with `client.send_signal` (`POST /v1/signals`): delivery, a
//! timeout, a signal nobody waits for, and two waiters on one signal (`fail` and `replace`).

mod support;

use std::time::Duration;

use inngest_executor::{HistoryKind, RunStatus, StepStatus};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Event, Function, Inngest, Signal, Step, Trigger, WaitForSignal};
use serde_json::{json, Value};
use support::{event, op_core, serve_app, Call, FakeApi};

const APP: &str = "signals-app";
const HOUR: Duration = Duration::from_secs(3600);
/// SHA-1 of `approval` (Python's hashlib).
const H_APPROVAL: &str = "59494695a3172b5212f0a47857b0546e54320776";

/// Waits on `approve/<data.id>`; `data.replace` asks `conflict: "replace"`.
fn approver() -> Function {
    Function::new("approver")
        .trigger(Trigger::event("test/approval.start"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let signal = format!("approve/{}", ctx.event.data["id"].as_str().unwrap_or(""));
            let mut opts = WaitForSignal::new(signal, HOUR);
            if ctx.event.data["replace"] == json!(true) {
                opts = opts.replace_on_conflict();
            }
            let got: Option<Signal<Value>> = step.wait_for_signal("approval", opts).await?;
            Ok(json!({ "got": got.map(|s| json!({"signal": s.signal, "data": s.data})) }))
        })
}

#[tokio::test]
async fn the_op_carries_signal_timeout_and_conflict_and_both_memos_decode() {
    let fake = FakeApi::start().await;
    let client: Inngest = support::dev_client(APP, &fake);
    let server = serve_app(&client, [approver()]).await;
    let call = |data: Value| {
        Call::new(
            &format!("{APP}-approver"),
            event("test/approval.start", data),
        )
    };
    let resp = call(json!({"id": "o1"})).post(&server).await;
    let ops = resp.ops();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(
        op_core(&ops[0]),
        json!({"id": H_APPROVAL, "op": "WaitForSignal", "name": "approve/o1",
               "opts": {"signal": "approve/o1", "timeout": "1h", "conflict": "fail"}, "data": null})
    );
    let ops = call(json!({"id": "o1", "replace": true}))
        .post(&server)
        .await
        .ops();
    assert_eq!(ops[0]["opts"]["conflict"], "replace");
    let resp = call(json!({"id": "o1"}))
        .memo(
            H_APPROVAL,
            json!({"data": {"signal": "approve/o1", "data": {"ok": 1}}}),
        )
        .post(&server)
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"got": {"signal": "approve/o1", "data": {"ok": 1}}})
    );
    let resp = call(json!({"id": "o1"}))
        .memo(H_APPROVAL, Value::Null)
        .post(&server)
        .await;
    assert_eq!(resp.json(), json!({"got": null}));
}

async fn start_waiting(h: &TestHarness, data: Value) -> String {
    let id = h.send(Event::new("test/approval.start", data)).await;
    let run = h.wait_for_paused_run_of(&id).await;
    let step = run.step("approval").unwrap();
    assert_eq!(step.status, StepStatus::Waiting);
    assert_eq!(step.op, "WaitForSignal");
    run.id
}

#[tokio::test]
async fn send_signal_resumes_the_waiting_run_with_signal_and_data() {
    let h = TestHarness::start("app", [approver()]).await.unwrap();
    let run_id = start_waiting(&h, json!({"id": "o1"})).await;
    let resumed = h
        .client()
        .send_signal("approve/o1", json!({"by": "ann"}))
        .await
        .unwrap();
    assert_eq!(resumed.as_deref(), Some(run_id.as_str()));
    let run = h.wait_for_run(&run_id).await;
    assert_eq!(run.status, RunStatus::Completed);
    let got = json!({"signal": "approve/o1", "data": {"by": "ann"}});
    assert_eq!(run.output, Some(json!({ "got": got })));
    // Stored as the server stores it: `{"data": {"signal", "data"}}`.
    assert_eq!(
        run.step("approval").unwrap().output,
        Some(json!({ "data": got }))
    );
}

#[tokio::test]
async fn the_wait_times_out_with_null() {
    let h = TestHarness::start("app", [approver()]).await.unwrap();
    let run_id = start_waiting(&h, json!({"id": "o1"})).await;
    h.advance(HOUR);
    let run = h.wait_for_run(&run_id).await;
    assert_eq!(run.output, Some(json!({"got": null})));
    assert_eq!(run.step("approval").unwrap().status, StepStatus::TimedOut);
    assert_eq!(run.history_of(HistoryKind::TimedOut).count(), 1);
}

#[tokio::test]
async fn a_signal_nobody_waits_for_is_a_404_and_is_not_kept() {
    let h = TestHarness::start("app", [approver()]).await.unwrap();
    // The server's answer, byte for byte in shape (`pkg/api/apiv1/signals.go`).
    let url = format!("{}/v1/signals", h.executor_url());
    let http = reqwest::Client::new();
    let res = http
        .post(&url)
        .body(r#"{"signal":"approve/o1","data":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "No signal found", "data": null, "status": 404})
    );
    let res = http.post(&url).body("not json").send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"error": "Invalid signal data", "data": null, "status": 400})
    );
    let res = http.post(&url).body(r#"{"data":1}"#).send().await.unwrap();
    assert_eq!(res.status(), 500);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "Failed to receive signal"
    );
    // The client reads the 404 as "nobody resumed", like the JS SDK.
    let resumed = h
        .client()
        .send_signal("approve/o1", json!(1))
        .await
        .unwrap();
    assert_eq!(resumed, None);
    // A wait started afterwards does not see it: it times out.
    let run_id = start_waiting(&h, json!({"id": "o1"})).await;
    h.advance(HOUR);
    assert_eq!(
        h.wait_for_run(&run_id).await.output,
        Some(json!({"got": null}))
    );
}

#[tokio::test]
async fn a_second_waiter_fails_its_step_with_a_signal_conflict() {
    let h = TestHarness::start("app", [approver()]).await.unwrap();
    let first = start_waiting(&h, json!({"id": "o1"})).await;
    let id = h
        .send(Event::new("test/approval.start", json!({"id": "o1"})))
        .await;
    let second = h.wait_for_run_of(&id).await;
    assert_eq!(second.status, RunStatus::Failed, "{second:#?}");
    let step = second.step("approval").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.error.as_ref().unwrap()["message"],
        "Signal conflict: signal `approve/o1` already has a waiter"
    );
    // The first waiter keeps the signal.
    let resumed = h
        .client()
        .send_signal("approve/o1", json!("yes"))
        .await
        .unwrap();
    assert_eq!(resumed.as_deref(), Some(first.as_str()));
    assert_eq!(h.wait_for_run(&first).await.status, RunStatus::Completed);
}

#[tokio::test]
async fn replace_takes_the_signal_over_and_the_first_wait_times_out() {
    let h = TestHarness::start("app", [approver()]).await.unwrap();
    let first = start_waiting(&h, json!({"id": "o1"})).await;
    let second = start_waiting(&h, json!({"id": "o1", "replace": true})).await;
    let resumed = h
        .client()
        .send_signal("approve/o1", json!("yes"))
        .await
        .unwrap();
    assert_eq!(resumed.as_deref(), Some(second.as_str()));
    let run = h.wait_for_run(&second).await;
    assert_eq!(
        run.output,
        Some(json!({"got": {"signal": "approve/o1", "data": "yes"}}))
    );
    // The replaced wait no longer receives anything: a second send finds nobody.
    let resumed = h
        .client()
        .send_signal("approve/o1", json!("again"))
        .await
        .unwrap();
    assert_eq!(resumed, None);
    h.advance(HOUR);
    assert_eq!(
        h.wait_for_run(&first).await.output,
        Some(json!({"got": null}))
    );
}
