//! Load: 10,000 signed execution calls at concurrency 256 against one app over loopback HTTP.
//!
//! A mix of discovery (`206` with a freshly run step), planned parallel steps (`206` with ten
//! `StepPlanned`), targeted parallel steps, and fully memoized runs (`200`). Every request carries
//! its own number, echoed in the answer, so a mixed-up response is caught, not just an error.
//! Prints the throughput and the process's peak RSS (`VmHWM`).
//!
//! `LOAD_CALLS` and `LOAD_CONCURRENCY` override the defaults.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hmac::{Hmac, Mac};
use inngest_sdk::serve::{self, ServeHandler};
use inngest_sdk::step::hash_id;
use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use sha2::Sha256;

const KEY_HEX: &str = "10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad10ad";
const PARALLEL: u64 = 10;
const WALL_LIMIT: Duration = Duration::from_secs(240);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn functions() -> Vec<Function> {
    let hello = Function::new("hello")
        .trigger(Trigger::event("load/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let i = ctx.event.data["i"].as_u64().unwrap_or(u64::MAX);
            let a: u64 = step.run("a", || async move { Ok(i * 2) }).await?;
            let b: String = step.run("b", || async move { Ok(format!("b{a}")) }).await?;
            Ok(json!({ "i": i, "a": a, "b": b }))
        });
    let par = Function::new("par")
        .trigger(Trigger::event("load/par"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let i = ctx.event.data["i"].as_u64().unwrap_or(u64::MAX);
            let branches = (0..PARALLEL).map(|n| {
                let step = step.clone();
                async move {
                    step.run(&format!("p{n}"), || async move { Ok(i + n) })
                        .await
                }
            });
            let all: Vec<u64> = futures::future::try_join_all(branches).await?;
            Ok(json!({ "i": i, "sum": all.iter().sum::<u64>() }))
        });
    vec![hello, par]
}

fn sign(body: &[u8]) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY_HEX.as_bytes()).unwrap();
    mac.update(body);
    mac.update(t.to_string().as_bytes());
    format!("t={t}&s={}", hex::encode(mac.finalize().into_bytes()))
}

fn body(i: u64, steps: Value, stack: &[String]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ctx": {
            "attempt": 0, "disable_immediate_execution": false, "run_id": format!("run-{i}"),
            "max_attempts": 4, "step_id": "step",
            "stack": { "current": stack.len(), "stack": stack },
        },
        "event": { "name": "load/x", "data": { "i": i }, "ts": 1 },
        "events": [{ "name": "load/x", "data": { "i": i }, "ts": 1 }],
        "steps": steps,
        "version": 2,
    }))
    .unwrap()
}

/// The four kinds of call, chosen by `i % 4`.
fn request(i: u64) -> (String, Vec<u8>) {
    let (a, b) = (hash_id("a"), hash_id("b"));
    match i % 4 {
        // Discovery, first step runs inline.
        0 => ("fnId=app-hello&stepId=step".into(), body(i, json!({}), &[])),
        // Fully memoized: the run completes.
        1 => (
            "fnId=app-hello&stepId=step".into(),
            body(
                i,
                json!({ &a: { "data": i * 2 }, &b: { "data": format!("b{}", i * 2) } }),
                &[a.clone(), b.clone()],
            ),
        ),
        // Parallel discovery: ten planned steps.
        2 => ("fnId=app-par&stepId=step".into(), body(i, json!({}), &[])),
        // Targeted parallel step.
        _ => (
            format!(
                "fnId=app-par&stepId={}",
                hash_id(&format!("p{}", i % PARALLEL))
            ),
            body(i, json!({}), &[]),
        ),
    }
}

fn check(
    i: u64,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    v: &Value,
) -> Result<(), String> {
    let sdk = headers.get("x-inngest-sdk").and_then(|h| h.to_str().ok());
    if sdk != Some(inngest_sdk::client::SDK_HEADER) || !headers.contains_key("x-inngest-signature")
    {
        return Err("missing SDK or signature header".into());
    }
    let ok = match i % 4 {
        0 => {
            status == 206
                && v.as_array().map(Vec::len) == Some(1)
                && v[0]["op"] == "StepRun"
                && v[0]["id"] == hash_id("a").as_str()
                && v[0]["data"] == json!(i * 2)
        }
        1 => status == 200 && *v == json!({ "i": i, "a": i * 2, "b": format!("b{}", i * 2) }),
        2 => {
            let want: BTreeSet<String> = (0..PARALLEL).map(|n| hash_id(&format!("p{n}"))).collect();
            let got: BTreeSet<String> = v
                .as_array()
                .map(|ops| {
                    ops.iter()
                        .filter(|o| o["op"] == "StepPlanned")
                        .filter_map(|o| o["id"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            status == 206 && v.as_array().map(Vec::len) == Some(PARALLEL as usize) && got == want
        }
        _ => {
            let n = i % PARALLEL;
            status == 206
                && v.as_array().map(Vec::len) == Some(1)
                && v[0]["op"] == "StepRun"
                && v[0]["id"] == hash_id(&format!("p{n}")).as_str()
                && v[0]["data"] == json!(i + n)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(format!("status {status}, body {v}"))
    }
}

fn proc_status(field: &str) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find(|l| l.starts_with(field))
        .map(|l| l[field.len()..].trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_at_concurrency_256() {
    let calls = env_usize("LOAD_CALLS", 10_000) as u64;
    let concurrency = env_usize("LOAD_CONCURRENCY", 256);
    let client = Inngest::builder("app")
        .signing_key(format!("signkey-test-{KEY_HEX}"))
        .api_base_url("http://127.0.0.1:9")
        .event_api_base_url("http://127.0.0.1:9")
        .build()
        .unwrap();
    let handler = ServeHandler::new(&client, functions()).unwrap();
    let router = serve::axum::router_from_handler(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/inngest", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let rss_before = proc_status("VmRSS:").unwrap_or_default();

    let started = Instant::now();
    let run = futures::stream::iter(0..calls)
        .map(|i| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let (query, body) = request(i);
                let sig = sign(&body);
                let res = http
                    .post(format!("{url}?{query}"))
                    .header("content-type", "application/json")
                    .header("x-inngest-signature", sig)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| format!("call {i}: {e}"))?;
                let status = res.status().as_u16();
                let headers = res.headers().clone();
                let bytes = res.bytes().await.map_err(|e| format!("call {i}: {e}"))?;
                let v: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("call {i}: body is not JSON: {e}"))?;
                check(i, status, &headers, &v).map_err(|e| format!("call {i}: {e}"))
            }
        })
        .buffer_unordered(concurrency)
        .fold((0u64, Vec::new()), |(mut ok, mut errors), r| async move {
            match r {
                Ok(()) => ok += 1,
                Err(e) => errors.push(e),
            }
            (ok, errors)
        });
    let (ok, errors) = tokio::time::timeout(WALL_LIMIT, run)
        .await
        .expect("the load run finished within its time bound");
    let elapsed = started.elapsed();
    server.abort();

    let peak = proc_status("VmHWM:").unwrap_or_else(|| "unknown".into());
    println!(
        "load: {calls} calls at concurrency {concurrency}: {ok} ok, {} errors in {elapsed:.2?} \
         ({:.0} calls/s); RSS before {rss_before}, peak RSS (VmHWM, client + server) {peak}",
        errors.len(),
        calls as f64 / elapsed.as_secs_f64(),
    );
    assert!(
        errors.is_empty(),
        "{} of {calls} calls failed; first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(ok, calls);
}
