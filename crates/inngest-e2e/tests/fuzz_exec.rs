//! Fuzz: the execution request parser and memo decoding.
//!
//! Arbitrary bytes, arbitrary JSON, and structurally plausible execution requests with wrong
//! types, unknown steps, broken stacks, odd attempts and garbage memo values go into
//! `ServeHandler::handle` for an app whose functions use every step kind. Properties: the handler
//! never panics or hangs, always answers JSON with `X-Inngest-SDK` and `X-Inngest-Req-Version: 2`,
//! error statuses carry `X-Inngest-No-Retry`, `206` bodies are well-formed op arrays, and the same
//! request always gets the same answer. See `tests/fuzz_common/mod.rs` for `FUZZ_CASES` and
//! `FUZZ_SECONDS`.

mod fuzz_common;

use std::time::Duration;

use bytes::Bytes;
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::step::hash_id;
use inngest_sdk::{
    Ctx, Error, Event, Function, FunctionFailed, Inngest, Invoke, InvokeTarget, NonRetriable, Step,
    Trigger, WaitForEvent,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const APP: &str = "fz";
const CASE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
struct Order {
    id: String,
    qty: u32,
}

fn functions() -> Vec<Function> {
    let seq = Function::new("seq")
        .trigger(Trigger::event("fz/seq"))
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, step: Step| async move {
            let n: u64 = step.run("cleanup", || async { Ok(1u64) }).await?;
            Ok(json!({ "cleaned": n, "run": ctx.event.data.run_id }))
        })
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: u64 = step.run("a", || async { Ok(7u64) }).await?;
            step.sleep("s", Duration::from_secs(5)).await;
            let b: String = step.run("b", || async move { Ok(format!("b{a}")) }).await?;
            let w: Option<Event<Value>> = step
                .wait_for_event("w", WaitForEvent::new("fz/go", Duration::from_secs(60)))
                .await?;
            let inv: Value = step
                .invoke_with(
                    "inv",
                    Invoke::new(InvokeTarget::id("fz-par"), json!({ "x": 1 })),
                )
                .await?;
            Ok(json!({ "a": a, "b": b, "w": w.map(|e| e.name), "inv": inv, "e": ctx.event.name }))
        });
    let typed = Function::new("typed")
        .trigger(Trigger::event("fz/typed"))
        .handler(|ctx: Ctx<Order>, step: Step| async move {
            let order = ctx.event.data.clone();
            let saved: Order = step.run("a", || async move { Ok(order) }).await?;
            Ok(saved.qty)
        });
    let par = Function::new("par")
        .trigger(Trigger::event("fz/par"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let branches = (0..5u32).map(|i| {
                let step = step.clone();
                async move { step.run(&format!("p{i}"), || async move { Ok(i) }).await }
            });
            let all: Vec<u32> = futures::future::try_join_all(branches).await?;
            Ok(all.iter().sum::<u32>())
        });
    let repeat = Function::new("repeat")
        .trigger(Trigger::event("fz/repeat"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let mut total = 0u64;
            for i in 0..3u64 {
                total += step.run("a", || async move { Ok(i) }).await?;
            }
            Ok(total)
        });
    let fails = Function::new("fails")
        .trigger(Trigger::event("fz/fails"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let mode = ctx.event.data["mode"].as_u64().unwrap_or(0);
            let r: Result<u32, _> = step
                .run("a", || async move {
                    match mode % 3 {
                        0 => Err(Error::msg("flaky")),
                        1 => Err(NonRetriable::new("permanent").into()),
                        _ => Ok(1u32),
                    }
                })
                .await;
            match r {
                Ok(v) => Err::<(), Error>(Error::msg(format!("function failed after {v}"))),
                Err(e) => Err(e.into()),
            }
        });
    vec![seq, typed, par, repeat, fails]
}

fn handler() -> ServeHandler {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    handler_with(&closed, false)
}

/// With checkpointing on, against an API (on `rt`) that accepts every checkpoint: the path
/// where steps run one after another in the same call.
fn checkpointing_handler(rt: &tokio::runtime::Runtime) -> ServeHandler {
    let api = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let router = axum::Router::new().fallback(|| async { http::StatusCode::OK });
        tokio::spawn(async move { axum::serve(l, router).await });
        url
    });
    handler_with(&api, true)
}

fn handler_with(api: &str, checkpointing: bool) -> ServeHandler {
    let client = Inngest::builder(APP)
        .dev(true)
        .dev_url(api)
        .send_retries(0)
        .max_body_bytes(1 << 20)
        .checkpointing(checkpointing)
        .build()
        .unwrap();
    ServeHandler::new(&client, functions())
        .unwrap()
        .step_not_found_timeout(Duration::from_millis(1))
}

// ---------------------------------------------------------------------------------------------
// Strategies.

fn known_step_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "a", "b", "s", "w", "inv", "cleanup", "p0", "p1", "p2", "p3", "p4", "a:1", "a:2",
    ]
    .iter()
    .map(|s| hash_id(s))
    .collect();
    ids.push("step".into());
    ids
}

fn arb_step_id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(known_step_ids()),
        1 => "[0-9a-f]{40}",
        1 => ".{0,16}",
    ]
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_]{1,8}",
        1 => proptest::sample::select(vec![
            "data", "error", "name", "message", "stack", "id", "ts", "qty", "mode", "ids",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,6}",
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        arb_step_id().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arb_u32ish() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u32..5).prop_map(Value::from),
        1 => Just(Value::from(u32::MAX)),
        1 => Just(Value::from(u32::MAX - 1)),
        1 => any::<u32>().prop_map(Value::from),
        1 => arb_json(),
    ]
}

fn arb_event() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        3 => Just(json!({ "id": "o-1", "qty": 2, "mode": 1 })),
        1 => (any::<u64>(), ".{0,8}").prop_map(|(q, id)| json!({ "id": id, "qty": q, "mode": q })),
        2 => arb_json(),
    ];
    prop_oneof![
        6 => (data, proptest::option::of(arb_json()))
            .prop_map(|(data, extra)| {
                let mut e = json!({ "name": "fz/any", "data": data, "id": "e1", "ts": 1 });
                if let Some(x) = extra {
                    e["user"] = x;
                }
                e
            }),
        1 => arb_json(),
    ]
}

fn arb_memo() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => arb_json().prop_map(|v| json!({ "data": v })),
        2 => (0u64..10).prop_map(|v| json!({ "data": v })),
        1 => Just(json!({ "data": { "id": "o", "qty": 1 } })),
        1 => (".{0,8}", proptest::option::of(".{0,8}"))
            .prop_map(|(m, s)| json!({ "error": { "name": "Error", "message": m, "stack": s } })),
        1 => arb_json().prop_map(|v| json!({ "error": v })),
        1 => Just(Value::Null),
        1 => arb_json(),
        1 => arb_event(),
    ]
}

fn arb_stack() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => vec(arb_step_id(), 0..10).prop_map(|ids| json!({ "current": ids.len(), "stack": ids })),
        1 => arb_json(),
    ]
}

/// Drops some keys of an object (bit `i` of `mask` drops key `i` in sorted order).
fn drop_keys(mut v: Value, mask: u16) -> Value {
    if let Value::Object(m) = &mut v {
        let keys: Vec<String> = m.keys().cloned().collect();
        for (i, k) in keys.iter().enumerate() {
            if mask & (1 << (i % 16)) != 0 {
                m.remove(k);
            }
        }
    }
    v
}

fn arb_exec_body() -> impl Strategy<Value = Value> {
    let ctx = (
        arb_u32ish(),
        arb_u32ish(),
        prop_oneof![4 => any::<bool>().prop_map(Value::from), 1 => arb_json()],
        prop_oneof![4 => Just(Value::from("run-1")), 1 => arb_json()],
        arb_stack(),
        prop_oneof![8 => Just(Value::from(false)), 1 => any::<bool>().prop_map(Value::from)],
        prop_oneof![8 => Just(0u16), 1 => any::<u16>()],
    )
        .prop_map(|(attempt, max, die, run_id, stack, use_api, mask)| {
            drop_keys(
                json!({
                    "attempt": attempt, "max_attempts": max, "disable_immediate_execution": die,
                    "run_id": run_id, "stack": stack, "use_api": use_api, "step_id": "step",
                }),
                mask,
            )
        });
    let steps = prop_oneof![
        6 => btree_map(arb_step_id(), arb_memo(), 0..10)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => arb_json(),
    ];
    let version = prop_oneof![
        4 => Just(json!(2)),
        2 => Just(json!(-1)),
        1 => Just(json!(1)),
        1 => Just(json!(0)),
        1 => arb_json(),
    ];
    (
        ctx,
        arb_event(),
        prop_oneof![3 => arb_event().prop_map(|e| json!([e])), 1 => vec(arb_event(), 0..3).prop_map(Value::Array), 1 => arb_json()],
        steps,
        version,
        prop_oneof![8 => Just(0u16), 1 => any::<u16>()],
        proptest::option::of((arb_key(), arb_json())),
    )
        .prop_map(|(ctx, event, events, steps, version, mask, extra)| {
            let mut body = json!({
                "ctx": ctx, "event": event, "events": events, "steps": steps, "version": version,
                "defers": {},
            });
            if let Some((k, v)) = extra {
                body[k] = v;
            }
            drop_keys(body, mask)
        })
}

fn arb_fn_id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => proptest::sample::select(vec![
            "fz-seq", "fz-typed", "fz-par", "fz-repeat", "fz-fails", "fz-seq-failure",
        ])
        .prop_map(str::to_owned),
        1 => ".{0,10}",
    ]
}

#[derive(Clone)]
struct Case {
    fn_id: Option<String>,
    step_id: Option<String>,
    header_step_id: Option<String>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("fn_id", &self.fn_id)
            .field("step_id", &self.step_id)
            .field("header_step_id", &self.header_step_id)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

fn arb_addressing() -> impl Strategy<Value = (Option<String>, Option<String>, Option<String>)> {
    (
        prop_oneof![10 => arb_fn_id().prop_map(Some), 1 => Just(None)],
        prop_oneof![
            4 => Just(Some("step".to_owned())),
            3 => arb_step_id().prop_map(Some),
            1 => Just(None),
        ],
        prop_oneof![8 => Just(None), 1 => arb_step_id().prop_map(Some)],
    )
}

fn arb_case() -> impl Strategy<Value = Case> {
    let body = prop_oneof![
        6 => arb_exec_body().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => vec(any::<u8>(), 0..512),
        1 => (arb_exec_body(), any::<usize>(), any::<u8>()).prop_map(|(v, at, byte)| {
            // One corrupted byte in an otherwise plausible body.
            let mut b = serde_json::to_vec(&v).unwrap();
            let at = at % b.len();
            b[at] = byte;
            b
        }),
    ];
    (arb_addressing(), body).prop_map(|((fn_id, step_id, header_step_id), body)| Case {
        fn_id,
        step_id,
        header_step_id,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// The property.

fn request(case: &Case) -> http::Request<Bytes> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if let Some(f) = &case.fn_id {
        query.append_pair("fnId", f);
    }
    if let Some(s) = &case.step_id {
        query.append_pair("stepId", s);
    }
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("/api/inngest?{}", query.finish()))
        .header("content-type", "application/json");
    if let Some(s) = &case.header_step_id {
        if let Ok(v) = http::HeaderValue::from_str(s) {
            req = req.header("x-inngest-step-id", v);
        }
    }
    req.body(Bytes::from(case.body.clone())).unwrap()
}

const OPS: &[&str] = &[
    "RunComplete",
    "StepRun",
    "StepError",
    "StepFailed",
    "StepPlanned",
    "Sleep",
    "WaitForEvent",
    "InvokeFunction",
];

/// The answer with volatile fields (`timing`) removed, for the determinism check.
fn stable(status: u16, body: &Value) -> (u16, Value) {
    let mut body = body.clone();
    if let Value::Array(ops) = &mut body {
        for op in ops {
            if let Value::Object(m) = op {
                m.remove("timing");
            }
        }
    }
    (status, body)
}

fn check(case: &Case, res: &http::Response<Bytes>) -> Result<(u16, Value), TestCaseError> {
    let status = res.status().as_u16();
    let header = |n: &str| res.headers().get(n).and_then(|v| v.to_str().ok());
    ensure!(
        header("x-inngest-sdk") == Some(inngest_sdk::client::SDK_HEADER),
        "no X-Inngest-SDK on {status}"
    );
    ensure!(header("x-inngest-req-version") == Some("2"), "req version");
    ensure!(
        header("content-type") == Some("application/json"),
        "content type"
    );
    ensure!(
        [200, 206, 400, 500].contains(&status),
        "unexpected status {status}: {}",
        String::from_utf8_lossy(res.body())
    );
    let body: Value = serde_json::from_slice(res.body())
        .map_err(|e| TestCaseError::fail(format!("body is not JSON ({e}) for {case:?}")))?;
    let no_retry = header("x-inngest-no-retry");
    if status >= 400 {
        ensure!(
            matches!(no_retry, Some("true") | Some("false")),
            "error {status} without X-Inngest-No-Retry"
        );
        ensure!(
            body["message"].is_string(),
            "error body without message: {body}"
        );
        // None of these functions panics: a panic here is the SDK's own.
        ensure!(
            !body["message"].as_str().unwrap_or("").contains("panicked"),
            "the SDK panicked: {body}"
        );
    }
    if status == 206 {
        let ops = body
            .as_array()
            .ok_or_else(|| TestCaseError::fail(format!("206 body is not an array: {body}")))?;
        ensure!(!ops.is_empty(), "206 with an empty op array");
        for op in ops {
            let code = op["op"].as_str().unwrap_or("");
            ensure!(OPS.contains(&code), "unknown op {op}");
            let id = op["id"].as_str().unwrap_or("");
            ensure!(
                id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "bad op id {op}"
            );
            ensure!(op.get("data").is_some(), "op without `data`: {op}");
            if code == "StepError" || code == "StepFailed" {
                ensure!(
                    op["error"]["message"].is_string(),
                    "error op without error: {op}"
                );
                ensure!(ops.len() == 1, "an error op must be alone");
                let want = if code == "StepError" { "false" } else { "true" };
                ensure!(no_retry == Some(want), "{code} with no-retry {no_retry:?}");
            }
        }
        if !ops
            .iter()
            .any(|o| o["op"] == "StepError" || o["op"] == "StepFailed")
        {
            ensure!(no_retry.is_none(), "plain 206 with no-retry {no_retry:?}");
        }
    }
    if status == 200 {
        ensure!(no_retry.is_none(), "200 with no-retry");
    }
    Ok(stable(status, &body))
}

fn run_case(
    rt: &tokio::runtime::Runtime,
    h: &ServeHandler,
    case: &Case,
) -> Result<(u16, Value), TestCaseError> {
    let res = rt
        .block_on(async { tokio::time::timeout(CASE_TIMEOUT, h.handle(request(case))).await })
        .map_err(|_| TestCaseError::fail(format!("no answer within {CASE_TIMEOUT:?}")))?;
    check(case, &res)
}

/// Runs the campaign `name`: every case is checked, twice, and must get the same answer.
fn campaign(
    name: &'static str,
    default_cases: u32,
    rt: &tokio::runtime::Runtime,
    h: &ServeHandler,
) {
    fuzz_common::campaign(name, default_cases, arb_case(), |case| {
        let first = run_case(rt, h, &case)?;
        let second = run_case(rt, h, &case)?;
        ensure!(
            first == second,
            "same request, different answers:\n{first:?}\n{second:?}"
        );
        Ok(())
    });
}

#[test]
fn fuzz_exec_requests() {
    let rt = fuzz_common::runtime();
    campaign("exec_request", 512, &rt, &handler());
}

#[test]
fn fuzz_exec_requests_checkpointing() {
    let rt = fuzz_common::runtime();
    let h = checkpointing_handler(&rt);
    campaign("exec_request_checkpointing", 256, &rt, &h);
}

/// Regression inputs found by the campaigns (kept even after the fix).
#[test]
fn exec_regressions() {
    let rt = fuzz_common::runtime();
    let h = handler();
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz-regressions/exec"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        // `<query>\n<body>`
        let (query, body) = text.split_once('\n').unwrap_or((&text, ""));
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.trim().as_bytes())
            .into_owned()
            .collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let case = Case {
            fn_id: get("fnId"),
            step_id: get("stepId"),
            header_step_id: None,
            body: body.as_bytes().to_vec(),
        };
        if let Err(e) = run_case(&rt, &h, &case) {
            panic!("{}: {e}", path.display());
        }
    }
}
