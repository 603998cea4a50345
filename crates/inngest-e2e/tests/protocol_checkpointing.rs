//! Golden protocol tests for checkpointing (captures of JS 4.24 in its default checkpointing mode
//! against `inngest dev` v1.43): every captured executor request is replayed against our port of
//! the capture app with `checkpointing(true)`, our answers are compared with the JS SDK's
//! (`support::golden::check`: status, headers, ops field by field, `RunComplete` included), and
//! the checkpoints we POST to the API are compared with the ones JS sent: same run, function,
//! queue item, request and generation ids, same steps (id, op, name, data), one step each.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::golden::replay_run;
use support::{js_app, serve_app, FakeApi, Recorded, Server, Signature};

/// The app with checkpointing on; the fake API answers checkpoints like the dev server (200,
/// empty body) and events like the captured event API.
async fn app() -> (Server, FakeApi) {
    let captured = support::fixture("checkpointing/sdk-0003-POST-_e_NO_EVENT_KEY_SET.json");
    let reply = captured["response"]["body"].as_str().unwrap().to_owned();
    let fake = FakeApi::with(Arc::new(move |rec: &Recorded, i| {
        if rec.path.starts_with("/v1/checkpoint/") {
            (200, String::new())
        } else if rec.path.starts_with("/e/") {
            (200, reply.clone())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client = inngest_sdk::Inngest::builder(js_app::APP_ID)
        .dev(true)
        .api_base_url(fake.origin())
        .event_api_base_url(fake.origin())
        .send_retries(0)
        .checkpointing(true)
        .build()
        .unwrap();
    (serve_app(&client, js_app::functions()).await, fake)
}

/// The captured checkpoint bodies JS sent for `run_id`, in order.
fn captured_checkpoints(run_id: &str) -> Vec<Value> {
    let dir = format!(
        "{}/tests/fixtures/captures/checkpointing",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&format!("_v1_checkpoint_{run_id}_")))
        .collect();
    names.sort();
    names
        .iter()
        .map(|n| support::fixture(&format!("checkpointing/{n}"))["request"]["json"].clone())
        .collect()
}

/// The fields both SDKs must agree on.
fn checkpoint_core(body: &Value) -> Value {
    let steps: Vec<Value> = body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            json!({"id": s["id"], "op": s["op"], "name": s["name"],
                   "displayName": s["displayName"], "userland": s["userland"], "data": s["data"]})
        })
        .collect();
    json!({
        "run_id": body["run_id"], "fn_id": body["fn_id"], "qi_id": body["qi_id"],
        "request_id": body["request_id"], "generation_id": body["generation_id"], "steps": steps,
    })
}

/// Replays the captured run of `function` (whose run id is `run_id`) and compares the
/// checkpoints. Returns the number of checkpoints.
async fn replay_and_compare(function: &str, run_id: &str) -> usize {
    let (server, fake) = app().await;
    replay_run("checkpointing", function, &server, Signature::None).await;
    let ours: Vec<Value> = fake
        .requests_to("/v1/checkpoint/")
        .iter()
        .map(|r| {
            assert_eq!(r.path, format!("/v1/checkpoint/{run_id}/async"));
            assert_eq!(r.header("content-type"), Some("application/json"));
            r.json()
        })
        .collect();
    let theirs = captured_checkpoints(run_id);
    assert_eq!(
        ours.iter().map(checkpoint_core).collect::<Vec<_>>(),
        theirs.iter().map(checkpoint_core).collect::<Vec<_>>(),
        "{function}: checkpoints"
    );
    for body in &ours {
        let t = body["steps"][0]["timing"].clone();
        assert!(
            t["a"].as_u64().is_some_and(|a| a > 0),
            "{function}: timing {t}"
        );
    }
    ours.len()
}

#[tokio::test]
async fn hello_checkpoints_a_then_b_and_completes() {
    assert_eq!(
        replay_and_compare("hello", "01M8GA1TFR14A3DP7NHMSP725A").await,
        2
    );
}

#[tokio::test]
async fn orchestrator_checkpoints_like_js() {
    assert_eq!(
        replay_and_compare("orchestrator", "01M8GA1TFS39AHVTFSWYGY0613").await,
        1
    );
}

#[tokio::test]
async fn waiter_checkpoints_like_js() {
    assert_eq!(
        replay_and_compare("waiter", "01M8GA1TFSQBZ9Y5TT9W0CFZMB").await,
        1
    );
}

#[tokio::test]
async fn runs_without_checkpoints_answer_like_js() {
    for (function, run_id) in [
        ("flaky", "01M8GA1TFPWAPJS0DFEWWYG0P3"),
        ("wait-timeout", "01M8GA1TFQGGHQH6DC5V5B266P"),
        ("child", "01M8GA1TZHPKGVAMW5QWH4BAKP"),
        ("fails-hard", "01M8GA1TFQ8WY5XZ2DCH1VNT98"),
        ("step-always-fails", "01M8GA1TFRCK5Y5JW2A3MQ33G9"),
    ] {
        assert_eq!(replay_and_compare(function, run_id).await, 0, "{function}");
    }
}
