//! Golden protocol tests (classic captures, `inngest dev`): every captured executor request of the
//! JS capture app is replayed over real HTTP (same method, URL and query, headers including
//! `X-Inngest-Req-Version: -1|2`, exact body bytes) against our port of the app, and our answer is
//! compared with the JS SDK's: status, headers, and ops field by field (`support::golden`
//! documents the deliberate differences from JS 4.24).

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::golden::replay_run;
use support::{js_app, serve_app, FakeApi, Resp, Server, Signature};

/// The app in dev mode with a fake event API that answers like the captured one.
async fn app() -> (Server, FakeApi) {
    let captured = support::fixture("classic/sdk-0002-POST-_e_NO_EVENT_KEY_SET.json");
    let reply = captured["response"]["body"].as_str().unwrap().to_owned();
    let fake = FakeApi::with(Arc::new(move |rec, i| {
        if rec.path.starts_with("/e/") {
            (200, reply.clone())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client = support::dev_client(js_app::APP_ID, &fake);
    (serve_app(&client, js_app::functions()).await, fake)
}

async fn replay(function: &str) -> (Vec<Resp>, FakeApi) {
    let (server, fake) = app().await;
    let resps = replay_run("classic", function, &server, Signature::None).await;
    (resps, fake)
}

#[tokio::test]
async fn hello_run_a_sleep_b() {
    let (resps, _) = replay("hello").await;
    assert_eq!(resps.len(), 4);
    // Deliberate difference, asserted explicitly: Go-form Sleep (JS: name "2s", opts {}).
    assert_eq!(
        resps[1].json(),
        json!([{
            "id": "a0f1490a20d0211c997b44bc357e1972deab8ae3", "op": "Sleep", "name": "s",
            "displayName": "s", "opts": {"duration": "2s"}, "userland": {"id": "s"}, "data": null
        }])
    );
    // No `opts` on StepRun (JS sends `"opts":{}`); `data` is the raw output.
    let a = &resps[0].ops()[0];
    assert!(a.get("opts").is_none(), "{a}");
    assert_eq!(a["data"], json!({"fromA": 1, "got": {"hello": "world"}}));
    assert!(a["timing"]["a"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn waiter_wait_for_event_matched() {
    let (resps, _) = replay("waiter").await;
    assert_eq!(resps.len(), 3);
    // Go form: name = step id, opts {event, if, timeout} (JS: name = event, opts {timeout, if}).
    assert_eq!(
        resps[0].json(),
        json!([{
            "id": "9cf7dcc13549fc1013529f4d8c3f5bc0ee97cb93", "op": "WaitForEvent",
            "name": "wait-for-done", "displayName": "wait-for-done",
            "opts": {"event": "test/wait.done", "if": "async.data.id == event.data.id", "timeout": "1m"},
            "userland": {"id": "wait-for-done"}, "data": null
        }])
    );
    // The memoized event (unwrapped) reached the function: it returned it as `got`.
    assert_eq!(
        resps[2].json()["got"]["data"],
        json!({"extra": 42, "id": "x1"})
    );
}

#[tokio::test]
async fn wait_timeout_null_memo() {
    let (resps, _) = replay("wait-timeout").await;
    assert_eq!(resps.len(), 2);
    // No `if` → opts is exactly {event, timeout}.
    assert_eq!(
        resps[0].ops()[0]["opts"],
        json!({"event": "test/never", "timeout": "3s"})
    );
    assert_eq!(resps[1].json(), json!({"got": null}));
}

#[tokio::test]
async fn flaky_step_error_then_retry_succeeds() {
    let (resps, _) = replay("flaky").await;
    assert_eq!(resps.len(), 3);
    // attempt 0 of 3: StepError, retriable.
    resps[0].assert_no_retry(Some("false"));
    assert_eq!(
        resps[0].json(),
        json!([{
            "id": "89eb82ebf637b47026f61e0cd02e76a1fdb88aae", "op": "StepError", "name": "flaky-step",
            "displayName": "flaky-step", "userland": {"id": "flaky-step"}, "data": null,
            "error": {"name": "Error", "message": "boom on attempt 0"},
            "timing": resps[0].ops()[0]["timing"]
        }])
    );
    // the retry (version 2 header and body, attempt 1) runs the step: plain 206, no header.
    resps[1].assert_no_retry(None);
    assert_eq!(resps[1].ops()[0]["data"], json!({"okOnAttempt": 1}));
    assert_eq!(resps[2].json(), json!({"okOnAttempt": 1}));
}

#[tokio::test]
async fn fails_hard_non_retriable_400() {
    let (resps, _) = replay("fails-hard").await;
    assert_eq!(resps.len(), 1);
    resps[0].assert_no_retry(Some("true"));
    assert_eq!(
        resps[0].json(),
        json!({"name": "NonRetriableError", "message": "nope, never retry"})
    );
}

#[tokio::test]
async fn step_always_fails_step_failed_then_caught() {
    let (resps, _) = replay("step-always-fails").await;
    assert_eq!(resps.len(), 3);
    assert_eq!(resps[0].ops()[0]["op"], "StepError");
    resps[0].assert_no_retry(Some("false"));
    // attempt 1 of max 2 is the last: StepFailed, no retry; `data` null (JS repeats the error).
    let failed = &resps[1].ops()[0];
    assert_eq!(failed["op"], "StepFailed");
    assert_eq!(failed["data"], Value::Null);
    assert!(failed.get("opts").is_none());
    resps[1].assert_no_retry(Some("true"));
    // The memoized {"error":…} reaches the function as a StepError it handles: 200.
    assert_eq!(resps[2].json(), json!({"caught": "always"}));
    resps[2].assert_no_retry(None);
}

#[tokio::test]
async fn orchestrator_send_event_and_invoke() {
    let (resps, fake) = replay("orchestrator").await;
    assert_eq!(resps.len(), 3);
    // sendEvent = a StepRun named "sendEvent" with opts {"type":"step.sendEvent"}; data = API ids.
    assert_eq!(
        support::op_core(&resps[0].ops()[0]),
        json!({
            "id": "5cebd8c5d37b62f215b8c2df6df03b6d391aabda", "op": "StepRun", "name": "sendEvent",
            "opts": {"type": "step.sendEvent"}, "data": {"ids": ["01M8GA0PS6ST45CKVJMZ4RG1CF"]}
        })
    );
    // Invoke: composite id from the Function handle; Go form adds name = step id.
    assert_eq!(
        resps[1].json(),
        json!([{
            "id": "7ff123e6431be676220df2842b3ee0fd2b288a86", "op": "InvokeFunction",
            "name": "invoke-child", "displayName": "invoke-child",
            "opts": {"function_id": "js-capture-app-child", "payload": {"data": {"n": 41}}},
            "userland": {"id": "invoke-child"}, "data": null
        }])
    );
    // The event was POSTed once (during the first call only), like the captured SDK request.
    let sent = fake.requests_to("/e/");
    assert_eq!(sent.len(), 1, "one event API call across the three replays");
    let captured = support::fixture("classic/sdk-0002-POST-_e_NO_EVENT_KEY_SET.json");
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, captured["request"]["url"].as_str().unwrap());
    let mut body = sent[0].json();
    let mut theirs = captured["request"]["json"].clone();
    assert!(body[0]["ts"].as_i64().unwrap() > 1_700_000_000_000);
    body[0].as_object_mut().unwrap().remove("ts");
    theirs[0].as_object_mut().unwrap().remove("ts");
    assert_eq!(body, theirs);
    let seed = sent[0].header("x-inngest-event-id-seed").unwrap();
    let (ms, rand) = seed.split_once(',').unwrap();
    assert!(ms.parse::<i64>().is_ok() && rand.len() == 16, "{seed}");
    assert_eq!(
        sent[0].header("x-inngest-sdk"),
        Some(inngest_sdk::client::SDK_HEADER)
    );
}

#[tokio::test]
async fn child_invoked_event() {
    // The invoked event carries `_inngest` next to `n`; the typed event ignores it.
    let (resps, _) = replay("child").await;
    assert_eq!(resps[0].json(), json!({"nPlusOne": 42}));
}

#[tokio::test]
async fn all_runs_replay_concurrently_on_one_server() {
    let (server, _fake) = app().await;
    let runs = [
        "hello",
        "waiter",
        "wait-timeout",
        "flaky",
        "fails-hard",
        "step-always-fails",
        "orchestrator",
        "child",
    ];
    let futs = runs
        .iter()
        .map(|f| replay_run("classic", f, &server, Signature::None));
    let all = futures::future::join_all(futs).await;
    assert_eq!(all.iter().map(Vec::len).sum::<usize>(), 20);
}
