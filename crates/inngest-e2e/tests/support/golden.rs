//! Replays the captured executor requests of one run against our port of the JS app and checks
//! our answers against the JS SDK's captured answers.
//!
//! Our ops deliberately differ from JS 4.24 where the official conformance runner (which compares
//! `op`, `id`, `name`, `opts`, `data`) expects the Go SDK's form (protocol.md §8.3, §13.3); every
//! difference is encoded in [`expected_core`] and checked, none is skipped:
//! * `StepRun`/`StepError`/`StepFailed`: no `opts` key (JS sends `"opts":{}`); sendEvent keeps
//!   `{"type":"step.sendEvent"}`.
//! * `Sleep`: `name` = the step id and `opts.duration` = the duration (JS: `name` = duration,
//!   `opts` = `{}`).
//! * `WaitForEvent`: `name` = the step id, `opts` = `{event, if?, timeout}` (JS: `name` = event,
//!   `opts` = `{timeout, if?}`).
//! * `InvokeFunction`: `name` = the step id (JS sends no `name`).
//! * `StepFailed`: `data` is `null` (JS repeats the serialized error in `data`).
//! * Error objects: `{name, message}` only (JS adds `stack` and `__serialized`).
//! * `RunComplete` (checkpointing): identical, `{op, id, data}`.

use serde_json::{json, Map, Value};

use super::{op_core, replay, send, Resp, Server, Signature};

/// The core fields we must answer for a captured JS op (see the module docs).
pub fn expected_core(js: &Value) -> Value {
    let user_id = js["userland"]["id"].clone();
    let mut e = Map::new();
    e.insert("id".into(), js["id"].clone());
    e.insert("op".into(), js["op"].clone());
    match js["op"].as_str().unwrap() {
        "StepRun" => {
            e.insert("name".into(), js["name"].clone());
            if js["opts"] != json!({}) {
                e.insert("opts".into(), js["opts"].clone());
            }
            e.insert("data".into(), js["data"].clone());
        }
        "Sleep" => {
            assert_eq!(js["opts"], json!({}), "JS Sleep opts");
            e.insert("name".into(), user_id);
            e.insert("opts".into(), json!({ "duration": js["name"] }));
            e.insert("data".into(), Value::Null);
        }
        "WaitForEvent" => {
            let mut opts = js["opts"].as_object().unwrap().clone();
            opts.insert("event".into(), js["name"].clone());
            e.insert("name".into(), user_id);
            e.insert("opts".into(), Value::Object(opts));
            e.insert("data".into(), Value::Null);
        }
        "InvokeFunction" => {
            assert!(js.get("name").is_none(), "JS InvokeFunction has no name");
            e.insert("name".into(), user_id);
            e.insert("opts".into(), js["opts"].clone());
            e.insert("data".into(), Value::Null);
        }
        "RunComplete" => {
            // Checkpointing: exactly `{op, id, data}`.
            let mut keys: Vec<&String> = js.as_object().unwrap().keys().collect();
            keys.sort();
            assert_eq!(keys, ["data", "id", "op"], "JS RunComplete keys");
            e.insert("data".into(), js["data"].clone());
        }
        "StepError" | "StepFailed" => {
            e.insert("name".into(), js["name"].clone());
            e.insert("data".into(), Value::Null);
            e.insert(
                "error".into(),
                json!({ "name": js["error"]["name"], "message": js["error"]["message"] }),
            );
        }
        other => panic!("unexpected captured op {other}"),
    }
    Value::Object(e)
}

/// Replays every executor exchange of the captured run of `function` and checks each answer.
/// Returns our responses in order.
pub async fn replay_run(
    dir: &str,
    function: &str,
    server: &Server,
    signature: Signature,
) -> Vec<Resp> {
    let http = super::http();
    let mut out = Vec::new();
    for exchange in super::run_exchanges(dir, function) {
        let file = exchange["file"].as_str().unwrap().to_owned();
        let resp = send(replay(&http, server, &exchange, signature)).await;
        check(&file, &exchange, &resp);
        if signature != Signature::None {
            super::assert_signed_response(&resp);
        } else {
            assert!(resp.header("x-inngest-signature").is_none(), "{file}");
        }
        out.push(resp);
    }
    out
}

/// Compares one of our responses with the captured JS response.
pub fn check(file: &str, exchange: &Value, ours: &Resp) {
    let theirs = &exchange["response"];
    let status = theirs["status"].as_u64().unwrap() as u16;
    assert_eq!(ours.status, status, "{file}: status; body {}", ours.text());
    ours.assert_sdk_headers();
    // X-Inngest-No-Retry exactly where the JS SDK sent it, with the same value.
    assert_eq!(
        ours.header("x-inngest-no-retry"),
        theirs["headers"]["x-inngest-no-retry"].as_str(),
        "{file}: X-Inngest-No-Retry"
    );
    assert!(ours.header("retry-after").is_none(), "{file}: Retry-After");
    // Trace context is echoed like JS does.
    for h in ["traceparent", "tracestate"] {
        assert_eq!(
            ours.header(h),
            theirs["headers"][h].as_str(),
            "{file}: {h} echoed"
        );
    }
    let captured: Value = serde_json::from_str(theirs["body"].as_str().unwrap()).unwrap();
    match status {
        206 => {
            let ops = ours.ops();
            let js_ops = captured.as_array().unwrap();
            assert_eq!(ops.len(), js_ops.len(), "{file}: op count");
            for (op, js) in ops.iter().zip(js_ops) {
                assert_eq!(op_core(op), expected_core(js), "{file}: op fields");
                assert_eq!(op["displayName"], js["displayName"], "{file}: displayName");
                assert_eq!(op["userland"], js["userland"], "{file}: userland");
                // Errors carry exactly name and message (no JS stack, no `__serialized`).
                if let Some(err) = op.get("error") {
                    let mut keys: Vec<&String> = err.as_object().unwrap().keys().collect();
                    keys.sort();
                    assert_eq!(keys, ["message", "name"], "{file}: error keys");
                }
            }
        }
        200 => assert_eq!(ours.json(), captured, "{file}: return value"),
        400 => {
            // Function-level NonRetriable: same name and message; no JS stack/`__serialized`.
            let body = ours.json();
            assert_eq!(body["name"], captured["name"], "{file}");
            assert_eq!(body["message"], captured["message"], "{file}");
            assert!(body.get("__serialized").is_none(), "{file}");
        }
        other => panic!("{file}: unexpected captured status {other}"),
    }
}
