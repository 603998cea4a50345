//! Faults: panicking user code, event API outages, and a failing sync endpoint.
//!
//! Everything runs over loopback HTTP: the app behind `serve::axum::router`, the Inngest API and
//! event API as small recording fakes.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use inngest_sdk::client::SDK_HEADER;
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{Ctx, Event, Function, Inngest, SendError, Step, Trigger};
use serde_json::{json, Value};
use sha2::Sha256;
use support::closed_port_url;
use support::logs::logs;

const APP: &str = "app";
const KEY_HEX: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
const FALLBACK_HEX: &str = "beef0000beef0000beef0000beef0000beef0000beef0000beef0000beef0000";
const EVENT_KEY: &str = "evtkey-faults-NEVER-LOGGED";
const TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Log capture (event key and signing keys must never be logged, even while failing).

fn assert_logs_clean() {
    support::logs::assert_no_line_contains(&[KEY_HEX, FALLBACK_HEX, EVENT_KEY]);
}

// ---------------------------------------------------------------------------------------------
// A loopback fake server with a scripted responder.

#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Responder = Arc<dyn Fn(usize, &Seen) -> (u16, String) + Send + Sync>;

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: support::Server,
}

impl Fake {
    /// `respond(n, request)` answers the n-th request (0-based).
    async fn start(
        respond: impl Fn(usize, &Seen) -> (u16, String) + Send + Sync + 'static,
    ) -> Fake {
        let respond: Responder = Arc::new(respond);
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let counter = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().fallback(
            move |uri: http::Uri, headers: http::HeaderMap, body: bytes::Bytes| {
                let record = record.clone();
                let respond = respond.clone();
                let counter = counter.clone();
                async move {
                    let s = Seen {
                        at: Instant::now(),
                        path: uri.to_string(),
                        headers,
                        body: body.to_vec(),
                    };
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let (status, reply) = respond(n, &s);
                    record.lock().unwrap().push(s);
                    (http::StatusCode::from_u16(status).unwrap(), reply)
                }
            },
        );
        let server = support::serve(app).await;
        Fake {
            url: server.origin(),
            seen,
            _server: server,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// `{"ids": [...]}` with one id per event in the request body.
fn ids_reply(s: &Seen) -> (u16, String) {
    let n = serde_json::from_slice::<Value>(&s.body)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0);
    let ids: Vec<String> = (0..n).map(|i| format!("01EVENT{i:019}")).collect();
    (200, json!({ "ids": ids, "status": 200 }).to_string())
}

// ---------------------------------------------------------------------------------------------
// App helpers.

/// The app on a loopback port (stopped when the `Server` is dropped) and its `/api/inngest` URL.
async fn serve_app(client: &Inngest, functions: Vec<Function>) -> (support::Server, String) {
    let handler = ServeHandler::new(client, functions)
        .unwrap()
        .step_not_found_timeout(Duration::from_millis(200));
    let server = support::serve_handler(handler).await;
    let base = server.endpoint("");
    (server, base)
}

fn sign(key_hex: &str, body: &[u8]) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(key_hex.as_bytes()).unwrap();
    mac.update(body);
    mac.update(t.to_string().as_bytes());
    format!("t={t}&s={}", hex::encode(mac.finalize().into_bytes()))
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn text(&self) -> String {
        self.body.to_string()
    }
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
    signed: bool,
) -> Reply {
    let mut req = http.request(method, url).body(body.clone());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if signed {
        req = req.header("x-inngest-signature", sign(KEY_HEX, &body));
    }
    let fut = async {
        let res = req
            .send()
            .await
            .expect("a response, not a dropped connection");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    };
    let reply = tokio::time::timeout(TIMEOUT, fut).await.expect("no hang");
    assert_eq!(reply.header("x-inngest-sdk"), Some(SDK_HEADER));
    reply
}

fn exec_body(attempt: u32, max_attempts: u32, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ctx": {
            "attempt": attempt, "disable_immediate_execution": false, "run_id": "01RUN",
            "max_attempts": max_attempts, "step_id": "step",
            "stack": { "current": 0, "stack": [] },
        },
        "event": { "name": "test/e", "data": data, "ts": 1 },
        "events": [{ "name": "test/e", "data": data, "ts": 1 }],
        "steps": {},
        "version": 2,
    }))
    .unwrap()
}

async fn exec(http: &reqwest::Client, base: &str, fn_id: &str, body: Vec<u8>) -> Reply {
    let url = format!("{base}?fnId={APP}-{fn_id}&stepId=step");
    call(http, reqwest::Method::POST, &url, &[], body, true).await
}

fn cloud(api: &str, event_api: &str) -> inngest_sdk::client::InngestBuilder {
    Inngest::builder(APP)
        .signing_key(format!("signkey-test-{KEY_HEX}"))
        .signing_key_fallback(format!("signkey-test-{FALLBACK_HEX}"))
        .event_key(EVENT_KEY)
        .api_base_url(api)
        .event_api_base_url(event_api)
}

// ---------------------------------------------------------------------------------------------
// Panics.

/// Event data whose deserializer panics (a bug in user code, reached before the first await).
#[derive(Debug)]
struct PanickyData;

impl<'de> serde::Deserialize<'de> for PanickyData {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("deserializer exploded")
    }
}

fn panicky_functions() -> Vec<Function> {
    vec![
        Function::new("ok")
            .trigger(Trigger::event("test/e"))
            .handler(|ctx: Ctx<Value>, step: Step| async move {
                let n: i64 = step.run("n", || async { Ok(41i64) }).await?;
                Ok(json!({ "n": n + 1, "echo": ctx.event.data }))
            }),
        Function::new("async-panic")
            .trigger(Trigger::event("test/e"))
            .handler(|_ctx: Ctx<Value>, _step: Step| async move {
                tokio::task::yield_now().await;
                if std::hint::black_box(true) {
                    panic!("async kaboom");
                }
                Ok(())
            }),
        Function::new("sync-panic")
            .trigger(Trigger::event("test/e"))
            .handler(|_ctx: Ctx<Value>, _step: Step| {
                if std::hint::black_box(true) {
                    panic!("sync kaboom");
                }
                async move { Ok(()) }
            }),
        Function::new("decode-panic")
            .trigger(Trigger::event("test/e"))
            .handler(|_ctx: Ctx<PanickyData>, _step: Step| async move { Ok(()) }),
        Function::new("step-panic")
            .trigger(Trigger::event("test/e"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let v: u32 = step
                    .run("explodes", || async {
                        if std::hint::black_box(true) {
                            panic!("step kaboom");
                        }
                        Ok(1u32)
                    })
                    .await?;
                Ok(v)
            }),
        Function::new("branch-panic")
            .trigger(Trigger::event("test/e"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let quiet = step.run("quiet", || async { Ok(1u32) });
                let loud = async {
                    tokio::task::yield_now().await;
                    if std::hint::black_box(true) {
                        panic!("branch kaboom");
                    }
                    Ok(2)
                };
                let (a, b) = futures::try_join!(quiet, loud)?;
                Ok(a + b)
            }),
    ]
}

fn assert_healthy(r: &Reply) {
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body[0]["op"], "StepRun", "{}", r.text());
    assert_eq!(r.body[0]["data"], 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_give_spec_shaped_errors_and_the_app_keeps_serving() {
    logs();
    let client = cloud(&closed_port_url(), &closed_port_url())
        .build()
        .unwrap();
    let (_app, base) = serve_app(&client, panicky_functions()).await;
    let http = reqwest::Client::new();
    let body = || exec_body(0, 3, json!({ "k": 1 }));

    for (fn_id, message) in [
        ("async-panic", "function panicked: async kaboom"),
        ("sync-panic", "function panicked: sync kaboom"),
        ("decode-panic", "function panicked: deserializer exploded"),
        ("branch-panic", "function panicked: branch kaboom"),
    ] {
        let r = exec(&http, &base, fn_id, body()).await;
        assert_eq!(r.status, 500, "{fn_id}: {}", r.text());
        assert_eq!(r.header("x-inngest-no-retry"), Some("false"), "{fn_id}");
        assert_eq!(r.body["message"], message, "{fn_id}");
        assert_eq!(r.body["name"], "Error", "{fn_id}");
        assert!(r.header("x-inngest-signature").is_some(), "{fn_id}");
        // The process keeps serving.
        assert_healthy(&exec(&http, &base, "ok", body()).await);
    }

    // A panicking step is a step error: retried while attempts remain, then failed for good.
    let r = exec(&http, &base, "step-panic", exec_body(0, 3, json!({}))).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.header("x-inngest-no-retry"), Some("false"));
    assert_eq!(r.body[0]["op"], "StepError");
    assert_eq!(r.body[0]["error"]["message"], "step panicked: step kaboom");
    assert_eq!(r.body[0]["data"], Value::Null);
    let r = exec(&http, &base, "step-panic", exec_body(2, 3, json!({}))).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.header("x-inngest-no-retry"), Some("true"));
    assert_eq!(r.body[0]["op"], "StepFailed");
    assert_healthy(&exec(&http, &base, "ok", body()).await);

    // Panics and healthy calls interleaved concurrently: every answer is the right one.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let http = http.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let fn_id = ["ok", "async-panic", "sync-panic", "step-panic"][i % 4];
            let r = exec(&http, &base, fn_id, exec_body(0, 3, json!({ "i": i }))).await;
            (fn_id, r)
        }));
    }
    for t in tasks {
        let (fn_id, r) = t.await.unwrap();
        match fn_id {
            "ok" => assert_healthy(&r),
            "step-panic" => assert_eq!(r.body[0]["op"], "StepError"),
            _ => assert_eq!(r.status, 500, "{fn_id}"),
        }
    }
    assert_logs_clean();
}

// ---------------------------------------------------------------------------------------------
// Event sends during an outage.

#[tokio::test]
async fn event_send_survives_a_transient_outage_with_one_seed() {
    logs();
    let fake = Fake::start(|n, s| {
        if n == 0 {
            (500, "boom".into())
        } else {
            ids_reply(s)
        }
    })
    .await;
    let client = cloud(&closed_port_url(), &fake.url)
        .send_backoff(Duration::from_millis(5))
        .build()
        .unwrap();
    let ids = client
        .send(&Event::new("shop/order.paid", json!({ "order": 1 })))
        .await
        .expect("second attempt succeeds");
    assert_eq!(ids.len(), 1);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    let seed = seen[0].header("x-inngest-event-id-seed").expect("seed");
    assert_eq!(seen[1].header("x-inngest-event-id-seed"), Some(seed));
    assert_eq!(seen[0].body, seen[1].body);
    assert_eq!(seen[0].path, format!("/e/{EVENT_KEY}"));
    assert_logs_clean();
}

#[tokio::test]
async fn event_send_permanent_5xx_is_a_typed_error_after_bounded_backoff() {
    logs();
    let fake = Fake::start(|_, _| (500, r#"{"error":"ingest is down"}"#.into())).await;
    let base = Duration::from_millis(20);
    let client = cloud(&closed_port_url(), &fake.url)
        .send_backoff(base)
        .build()
        .unwrap();
    let started = Instant::now();
    let err = client
        .send(&Event::new("shop/order.paid", json!({})))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match &err {
        SendError::Rejected { status, message } => {
            assert_eq!(*status, 500);
            assert_eq!(message, "ingest is down");
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.to_string().contains(EVENT_KEY));
    let seen = fake.seen();
    // Default policy: 5 attempts, exponential backoff (base, 2·base, 4·base, 8·base + jitter).
    assert_eq!(
        seen.len(),
        inngest_sdk::client::DEFAULT_SEND_ATTEMPTS as usize
    );
    let seed = seen[0]
        .header("x-inngest-event-id-seed")
        .unwrap()
        .to_owned();
    for (i, pair) in seen.windows(2).enumerate() {
        assert_eq!(
            pair[1].header("x-inngest-event-id-seed"),
            Some(seed.as_str())
        );
        let gap = pair[1].at - pair[0].at;
        let floor = base * (1 << i);
        assert!(
            gap >= floor,
            "gap {i} = {gap:?}, expected at least {floor:?}"
        );
    }
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    println!(
        "event API always 500: {} attempts in {elapsed:?}, gaps {:?}",
        seen.len(),
        seen.windows(2)
            .map(|p| p[1].at - p[0].at)
            .collect::<Vec<_>>()
    );
    assert_logs_clean();
}

#[tokio::test]
async fn event_send_unreachable_is_a_transport_error() {
    logs();
    let client = cloud(&closed_port_url(), &closed_port_url())
        .send_retries(3)
        .send_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client
        .send(&Event::new("shop/order.paid", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(!format!("{err:?}").contains(EVENT_KEY), "{err:?}");
    assert!(!err.to_string().contains(EVENT_KEY), "{err}");
    assert_logs_clean();
}

#[tokio::test]
async fn event_send_client_errors_are_not_retried() {
    let fake = Fake::start(|_, _| (400, r#"{"error":"bad event"}"#.into())).await;
    let client = cloud(&closed_port_url(), &fake.url)
        .send_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let err = client
        .send(&Event::new("shop/order.paid", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SendError::Rejected { status: 400, ref message } if message == "bad event"),
        "{err:?}"
    );
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_step_during_an_outage_is_retried_by_inngest_not_dropped() {
    logs();
    // Down for the first 5 requests (one full client-side retry cycle), then up.
    let fake = Fake::start(|n, s| {
        if n < 5 {
            (503, "unavailable".into())
        } else {
            ids_reply(s)
        }
    })
    .await;
    let client = cloud(&closed_port_url(), &fake.url)
        .send_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let f = Function::new("notify")
        .trigger(Trigger::event("test/e"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let ids = step
                .send_event("emit", vec![Event::new("shop/shipped", json!({ "o": 1 }))])
                .await?;
            Ok(ids)
        });
    let (_app, base) = serve_app(&client, vec![f]).await;
    let http = reqwest::Client::new();

    let r = exec(&http, &base, "notify", exec_body(0, 3, json!({}))).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.header("x-inngest-no-retry"), Some("false"));
    assert_eq!(r.body[0]["op"], "StepError");
    let message = r.body[0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("503"), "{message}");
    assert!(!message.contains(EVENT_KEY), "{message}");
    assert_eq!(fake.seen().len(), 5);

    // Inngest retries the step (attempt 1): the API is back and the event goes out.
    let r = exec(&http, &base, "notify", exec_body(1, 3, json!({}))).await;
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body[0]["op"], "StepRun");
    assert_eq!(r.body[0]["data"]["ids"][0], "01EVENT0000000000000000000");
    assert_logs_clean();
}

// ---------------------------------------------------------------------------------------------
// Out-of-band sync failures; in-band sync unaffected.

fn sync_functions() -> Vec<Function> {
    vec![Function::new("ok")
        .trigger(Trigger::event("test/e"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(1) })]
}

async fn assert_in_band_works(http: &reqwest::Client, base: &str) {
    let body =
        serde_json::to_vec(&json!({ "url": "https://app.example.com/api/inngest" })).unwrap();
    let r = call(
        http,
        reqwest::Method::PUT,
        base,
        &[("x-inngest-sync-kind", "in_band")],
        body,
        true,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-inngest-sync-kind"), Some("in_band"));
    assert_eq!(r.body["functions"][0]["id"], "app-ok");
    assert!(r.header("x-inngest-signature").is_some());
}

async fn put_out_of_band(http: &reqwest::Client, base: &str) -> Reply {
    call(
        http,
        reqwest::Method::PUT,
        base,
        &[("x-inngest-server-kind", "cloud")],
        Vec::new(),
        false,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_with_the_api_down() {
    logs();
    let client = cloud(&closed_port_url(), &closed_port_url())
        .build()
        .unwrap();
    let (_app, base) = serve_app(&client, sync_functions()).await;
    let http = reqwest::Client::new();
    let r = put_out_of_band(&http, &base).await;
    assert_eq!(r.status, 500, "{}", r.text());
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("could not reach the Inngest API"),
        "{message}"
    );
    assert_eq!(r.body["modified"], false);
    assert_eq!(r.header("x-inngest-sync-kind"), Some("out_of_band"));
    assert_in_band_works(&http, &base).await;
    assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_unauthorized_tries_the_fallback_key_then_reports_the_server_message() {
    logs();
    let api = Fake::start(|_, _| (401, r#"{"error":"invalid signing key"}"#.into())).await;
    let client = cloud(&api.url, &closed_port_url()).build().unwrap();
    let (_app, base) = serve_app(&client, sync_functions()).await;
    let http = reqwest::Client::new();
    let r = put_out_of_band(&http, &base).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.body["message"], "invalid signing key");
    let seen = api.seen();
    assert_eq!(seen.len(), 2, "primary, then fallback");
    let bearers: Vec<&str> = seen
        .iter()
        .map(|s| s.header("authorization").unwrap())
        .collect();
    assert_ne!(bearers[0], bearers[1]);
    for (s, key) in seen.iter().zip([KEY_HEX, FALLBACK_HEX]) {
        assert!(s.path.starts_with("/fn/register"), "{}", s.path);
        assert_eq!(s.header("x-inngest-expected-server-kind"), Some("cloud"));
        let auth = s.header("authorization").unwrap();
        assert!(!auth.contains(key), "bearer must be the hashed key");
    }
    assert_in_band_works(&http, &base).await;
    assert_logs_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_server_error_reports_the_server_message() {
    logs();
    let api = Fake::start(|_, _| (500, r#"{"error":"database is down"}"#.into())).await;
    let client = cloud(&api.url, &closed_port_url()).build().unwrap();
    let (_app, base) = serve_app(&client, sync_functions()).await;
    let http = reqwest::Client::new();
    let r = put_out_of_band(&http, &base).await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.body["message"], "database is down");
    assert_eq!(
        api.seen().len(),
        1,
        "a 500 is not an auth failure: no fallback retry"
    );
    assert_in_band_works(&http, &base).await;

    // A non-JSON error page is reported as text, truncated, never panicking.
    let api = Fake::start(|_, _| (502, "<html>".repeat(1000))).await;
    let client = cloud(&api.url, &closed_port_url()).build().unwrap();
    let (_app, base) = serve_app(&client, sync_functions()).await;
    let r = put_out_of_band(&http, &base).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let message = r.body["message"].as_str().unwrap();
    assert!(message.starts_with("<html>"), "{message}");
    assert!(message.len() < 700, "{}", message.len());
    assert_logs_clean();
}
