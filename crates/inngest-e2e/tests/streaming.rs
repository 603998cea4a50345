//! Streaming keep-alive answers (`InngestBuilder::streaming`, protocol §8.6): a call still
//! running at the threshold is answered `201`, then spaces, then the whole answer as the JSON
//! envelope the server unwraps. Read here from the raw HTTP bytes; then end to end on the local
//! executor behind a proxy that cuts silent responses.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_sdk::testing::{HistoryKind, RunStatus, TestHarness};
use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use support::{event, hmac_hex, parse_sig, serve_app, sign_now, Call, FakeApi, SIGNING_KEY_HEX};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const APP: &str = "stream-app";

/// `step.run("wait")` sleeping `step_time`, then returning.
fn slow(step_time: Duration) -> Function {
    Function::new("slow")
        .trigger(Trigger::event("stream/slow"))
        .retries(0)
        .handler(move |_ctx: Ctx<Value>, step: Step| async move {
            let out: Value = step
                .run("wait", move || async move {
                    tokio::time::sleep(step_time).await;
                    Ok(json!({ "slept": true }))
                })
                .await?;
            Ok(json!({ "step": out }))
        })
}

fn fast() -> Vec<Function> {
    vec![
        Function::new("fast-step")
            .trigger(Trigger::event("stream/fast-step"))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                let n: u32 = step.run("quick", || async { Ok(7u32) }).await?;
                Ok(json!(n))
            }),
        Function::new("done")
            .trigger(Trigger::event("stream/done"))
            .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(json!({ "ok": 1 })) }),
    ]
}

fn sha1_hex(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

/// A dev client with streaming on, answering in full before `threshold`.
fn streaming_client(threshold: Duration, interval: Duration) -> Inngest {
    Inngest::builder(APP)
        .dev(true)
        .streaming(true)
        .streaming_threshold(threshold)
        .streaming_interval(interval)
        .build()
        .unwrap()
}

// ------------------------------------------------------------------------------------------------
// Raw HTTP/1.1

/// A response as it came off the socket.
#[derive(Debug)]
struct RawHttp {
    status: u16,
    /// Lower-case names, in order.
    headers: Vec<(String, String)>,
    /// The chunks of a chunked body, in order (`None`: not chunked).
    chunks: Option<Vec<Vec<u8>>>,
    /// The body (de-chunked).
    body: Vec<u8>,
}

impl RawHttp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn names(&self) -> Vec<&str> {
        self.headers.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
async fn raw_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> RawHttp {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    parse_http(&raw)
}

fn parse_http(raw: &[u8]) -> RawHttp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of the head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked");
    if !chunked {
        return RawHttp {
            status,
            headers,
            chunks: None,
            body: rest.to_vec(),
        };
    }
    let mut chunks = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            assert_eq!(rest, b"\r\n", "nothing after the last chunk");
            break;
        }
        chunks.push(rest[..size].to_vec());
        assert_eq!(&rest[size..size + 2], b"\r\n");
        rest = &rest[size + 2..];
    }
    let body = chunks.concat();
    RawHttp {
        status,
        headers,
        chunks: Some(chunks),
        body,
    }
}

/// POSTs an executor call (the headers the executor sends), signed when `signed`.
async fn post_call(addr: SocketAddr, call: &Call, signed: bool) -> RawHttp {
    let body = serde_json::to_vec(&call.body()).unwrap();
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-Inngest-Req-Version", call.version.to_string()),
        ("X-Inngest-Step-Id", "step".to_owned()),
    ];
    if signed {
        headers.push(("X-Inngest-Signature", sign_now(&body)));
    }
    raw_request(
        addr,
        "POST",
        &format!("/api/inngest?{}", call.query()),
        &headers,
        &body,
    )
    .await
}

/// Asserts the head of a streamed answer, and splits its body into the number of leading
/// keep-alive spaces and the envelope bytes.
fn streamed(res: &RawHttp) -> (usize, Vec<u8>) {
    assert_eq!(res.status, 201, "{res:?}");
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(
        res.header("x-inngest-sdk"),
        Some(inngest_sdk::client::SDK_HEADER)
    );
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    // No signature, request version or length on the head: those belong to the final answer.
    assert_eq!(
        res.names(),
        [
            "content-type",
            "x-inngest-sdk",
            "connection",
            "transfer-encoding",
            "date"
        ],
        "{res:?}"
    );
    // Each keep-alive is its own chunk of one space; the envelope is the last chunk.
    let chunks = res.chunks.as_ref().unwrap();
    let (last, spaces) = chunks.split_last().unwrap();
    assert!(!spaces.is_empty(), "at least one keep-alive space");
    assert!(spaces.iter().all(|c| c == b" "), "{chunks:?}");
    assert_eq!(res.body, [spaces.concat(), last.clone()].concat());
    (spaces.len(), last.clone())
}

// ------------------------------------------------------------------------------------------------
// The answer on the wire

#[tokio::test]
async fn a_slow_call_is_streamed_byte_for_byte() {
    let step_time = Duration::from_millis(1000);
    let client = streaming_client(Duration::from_millis(200), Duration::from_millis(100));
    let app = serve_app(&client, [slow(step_time)]).await;
    let call = Call::new(&format!("{APP}-slow"), event("stream/slow", json!({})));
    let res = post_call(app.addr, &call, false).await;
    let (spaces, envelope) = streamed(&res);
    assert!(spaces >= 1);

    // The envelope, byte for byte: the answer's status, headers (in order) and version, and its
    // body as one JSON string.
    let text = String::from_utf8(envelope.clone()).unwrap();
    let parsed: Value = serde_json::from_str(&text).unwrap();
    let body = parsed["body"].as_str().unwrap();
    let expected = format!(
        r#"{{"status":206,"headers":{{"content-type":"application/json","x-inngest-sdk":"{}","x-inngest-req-version":"2"}},"body":{},"version":2}}"#,
        inngest_sdk::client::SDK_HEADER,
        serde_json::to_string(body).unwrap(),
    );
    assert_eq!(text, expected);

    // The body string is the op array with the StepRun (`timing` is when the step ran).
    let mut ops: Value = serde_json::from_str(body).unwrap();
    let timing = ops[0].as_object_mut().unwrap().remove("timing").unwrap();
    assert!(timing["a"].is_u64() && timing["b"].is_u64(), "{timing}");
    assert_eq!(
        ops,
        json!([{
            "id": sha1_hex("wait"),
            "op": "StepRun",
            "name": "wait",
            "displayName": "wait",
            "data": { "slept": true },
            "userland": { "id": "wait" }
        }])
    );

    // The same call without streaming answers the same op with the same headers.
    let plain = Inngest::builder(APP).dev(true).build().unwrap();
    let reference = serve_app(&plain, [slow(step_time)]).await;
    let normal = post_call(reference.addr, &call, false).await;
    assert_eq!(normal.status, 206);
    assert_eq!(normal.chunks, None);
    assert_eq!(
        normal.names(),
        [
            "content-type",
            "x-inngest-sdk",
            "x-inngest-req-version",
            "content-length",
            "connection",
            "date"
        ]
    );
    let mut normal_ops: Value = serde_json::from_slice(&normal.body).unwrap();
    normal_ops[0].as_object_mut().unwrap().remove("timing");
    assert_eq!(normal_ops, ops);
}

#[tokio::test]
async fn a_signed_streamed_answer_carries_the_signature_inside() {
    let client = Inngest::builder(APP)
        .dev(false)
        .signing_key(support::signing_key())
        .streaming(true)
        .streaming_threshold(Duration::from_millis(200))
        .streaming_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let app = serve_app(&client, [slow(Duration::from_millis(1000))]).await;
    let call = Call::new(&format!("{APP}-slow"), event("stream/slow", json!({})));
    let res = post_call(app.addr, &call, true).await;
    let (_, envelope) = streamed(&res);
    assert_eq!(res.header("x-inngest-signature"), None);
    let envelope: Value = serde_json::from_slice(&envelope).unwrap();
    assert_eq!(envelope["status"], 206);
    assert_eq!(envelope["version"], 2);
    let headers = envelope["headers"].as_object().unwrap();
    assert_eq!(
        headers.keys().collect::<Vec<_>>(),
        [
            "content-type",
            "x-inngest-req-version",
            "x-inngest-sdk",
            "x-inngest-signature"
        ]
    );
    assert_eq!(headers["x-inngest-req-version"], "2");
    assert_eq!(headers["x-inngest-sdk"], inngest_sdk::client::SDK_HEADER);
    // The signature is over the inner body, as the server sees it once unquoted.
    let body = envelope["body"].as_str().unwrap();
    let (t, s) = parse_sig(headers["x-inngest-signature"].as_str().unwrap());
    assert_eq!(s, hmac_hex(SIGNING_KEY_HEX, body.as_bytes(), &t));
    let t: i64 = t.parse().unwrap();
    assert!((support::now() - t).abs() <= 5, "fresh signature time");
    let ops: Value = serde_json::from_str(body).unwrap();
    assert_eq!(ops[0]["op"], "StepRun");
    assert_eq!(ops[0]["id"], sha1_hex("wait"));
}

#[tokio::test]
async fn fast_calls_are_answered_in_full() {
    let client = streaming_client(Duration::from_secs(5), Duration::from_millis(100));
    let app = serve_app(&client, fast()).await;
    let step = post_call(
        app.addr,
        &Call::new(
            &format!("{APP}-fast-step"),
            event("stream/fast-step", json!({})),
        ),
        false,
    )
    .await;
    assert_eq!(step.status, 206, "{step:?}");
    assert_eq!(step.chunks, None);
    assert_eq!(step.header("x-inngest-req-version"), Some("2"));
    assert_eq!(
        step.header("content-length"),
        Some(step.body.len().to_string().as_str())
    );
    let ops: Value = serde_json::from_slice(&step.body).unwrap();
    assert_eq!(ops[0]["op"], "StepRun");
    assert_eq!(ops[0]["id"], sha1_hex("quick"));
    assert_eq!(ops[0]["data"], 7);

    let done = post_call(
        app.addr,
        &Call::new(&format!("{APP}-done"), event("stream/done", json!({}))),
        false,
    )
    .await;
    assert_eq!(done.status, 200, "{done:?}");
    assert_eq!(done.chunks, None);
    assert_eq!(done.body, br#"{"ok":1}"#);
}

#[tokio::test]
async fn introspection_sync_and_probes_are_never_streamed() {
    // A zero threshold streams any execution call that is not answered at its first poll.
    let api = FakeApi::start().await;
    let client = Inngest::builder(APP)
        .dev(true)
        .api_base_url(api.origin())
        .streaming(true)
        .streaming_threshold(Duration::ZERO)
        .streaming_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let app = serve_app(&client, [slow(Duration::from_millis(300))]).await;

    let get = raw_request(app.addr, "GET", "/api/inngest", &[], b"").await;
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.chunks, None);
    assert_eq!(
        serde_json::from_slice::<Value>(&get.body).unwrap()["function_count"],
        1
    );

    // The sync waits on the API (an await), and is still answered in full.
    let put = raw_request(app.addr, "PUT", "/api/inngest", &[], b"").await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.chunks, None);
    assert_eq!(api.requests_to("/fn/register").len(), 1);

    let probe = raw_request(app.addr, "POST", "/api/inngest?probe=trust", &[], b"").await;
    assert_eq!(probe.status, 200, "{probe:?}");
    assert_eq!(probe.chunks, None);
    assert_eq!(probe.body, b"{}");
    let bad_probe = raw_request(app.addr, "POST", "/api/inngest?probe=nope", &[], b"").await;
    assert_eq!(bad_probe.status, 400, "{bad_probe:?}");
    assert_eq!(bad_probe.chunks, None);

    // The same app streams an execution call.
    let call = Call::new(&format!("{APP}-slow"), event("stream/slow", json!({})));
    let (_, envelope) = streamed(&post_call(app.addr, &call, false).await);
    let envelope: Value = serde_json::from_slice(&envelope).unwrap();
    assert_eq!(envelope["status"], 206);
}

#[tokio::test]
async fn a_client_that_goes_away_leaves_the_call_running() {
    let finished = Arc::new(tokio::sync::Notify::new());
    let signal = finished.clone();
    let f = Function::new("slow")
        .trigger(Trigger::event("stream/slow"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let signal = signal.clone();
            async move {
                step.run("wait", move || async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    signal.notify_one();
                    Ok(1u32)
                })
                .await?;
                Ok(json!(null))
            }
        });
    let client = streaming_client(Duration::from_millis(100), Duration::from_millis(50));
    let app = serve_app(&client, [f]).await;
    let call = Call::new(&format!("{APP}-slow"), event("stream/slow", json!({})));
    let body = serde_json::to_vec(&call.body()).unwrap();
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/inngest?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        call.query(),
        app.addr,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body).await.unwrap();
    let mut first = [0u8; 12];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 201");
    drop(conn);
    // The step still runs to its end, and the app goes on answering.
    tokio::time::timeout(Duration::from_secs(10), finished.notified())
        .await
        .expect("the call ran on after the client left");
    let get = raw_request(app.addr, "GET", "/api/inngest", &[], b"").await;
    assert_eq!(get.status, 200);
}

// ------------------------------------------------------------------------------------------------
// End to end behind a proxy with a short response timeout

/// A loopback TCP proxy to `upstream` that closes a connection once a request has been forwarded
/// and then no byte has passed for `idle` (any byte, either way, resets the timer), like a load
/// balancer's idle timeout. Counts the connections it cut.
struct CuttingProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn cutting_proxy(upstream: SocketAddr, idle: Duration) -> CuttingProxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cuts = Arc::new(AtomicUsize::new(0));
    let counter = cuts.clone();
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(relay(conn, upstream, idle, counter.clone()));
        }
    });
    CuttingProxy { addr, cuts, task }
}

async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    idle: Duration,
    cuts: Arc<AtomicUsize>,
) {
    let Ok(mut app) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut from_client, mut from_app) = ([0u8; 16 * 1024], [0u8; 16 * 1024]);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = client.read(&mut from_client) => match n {
                Ok(n) if n > 0 && app.write_all(&from_client[..n]).await.is_ok() => {}
                _ => return,
            },
            n = app.read(&mut from_app) => match n {
                Ok(n) if n > 0 && client.write_all(&from_app[..n]).await.is_ok() => {}
                _ => return,
            },
            () = timer => {
                cuts.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
        deadline = Some(tokio::time::Instant::now() + idle);
    }
}

/// Serves `function` through the harness (with `checkpointing`), with a client built by
/// `client`, and syncs it again at a proxy that cuts after `idle` of silence.
async fn behind_proxy(
    function: Function,
    checkpointing: bool,
    idle: Duration,
    client: impl FnOnce(&Inngest) -> Inngest + Send + 'static,
) -> (TestHarness, CuttingProxy) {
    let h = TestHarness::builder(APP)
        .timeout(Duration::from_secs(20))
        .checkpointing(checkpointing)
        .app_router("/api/inngest", move |harness_client, functions| {
            inngest_sdk::serve::axum::router(&client(harness_client), functions)
        })
        .function(function)
        .start()
        .await
        .unwrap();
    let app: SocketAddr = h
        .app_url()
        .trim_start_matches("http://")
        .trim_end_matches("/api/inngest")
        .parse()
        .unwrap();
    let proxy = cutting_proxy(app, idle).await;
    let view = h
        .executor()
        .register_app(&format!("http://{}/api/inngest", proxy.addr))
        .await
        .unwrap();
    assert_eq!(view.functions.len(), 1);
    (h, proxy)
}

/// The harness client's settings, plus `streaming`.
fn same_client(harness: &Inngest, streaming: Option<(Duration, Duration)>) -> Inngest {
    let mut b = Inngest::builder(APP)
        .dev(true)
        .checkpointing(harness.config().checkpointing())
        .base_url(harness.config().api_origin().as_str());
    if let Some((threshold, interval)) = streaming {
        b = b
            .streaming(true)
            .streaming_threshold(threshold)
            .streaming_interval(interval);
    }
    b.build().unwrap()
}

const PROXY_IDLE: Duration = Duration::from_millis(500);
const LONG_STEP: Duration = Duration::from_millis(1500);

#[tokio::test]
async fn without_streaming_the_proxy_cuts_the_attempt() {
    let (h, proxy) =
        behind_proxy(slow(LONG_STEP), false, PROXY_IDLE, |c| same_client(c, None)).await;
    let id = h
        .send(inngest_sdk::Event::new("stream/slow", json!({})))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed, "{:#?}", run.history);
    let failed: Vec<_> = run
        .history
        .iter()
        .filter(|e| e.kind == HistoryKind::RequestFailed)
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", run.history);
    assert_eq!(failed[0].attempt, Some(0));
    assert!(run.steps.is_empty(), "{:#?}", run.steps);
    assert!(proxy.cuts.load(Ordering::SeqCst) >= 1);
}

#[tokio::test]
async fn with_streaming_the_run_completes_behind_the_proxy() {
    let timing = (Duration::from_millis(200), Duration::from_millis(200));
    let (h, _proxy) = behind_proxy(slow(LONG_STEP), false, PROXY_IDLE, move |c| {
        same_client(c, Some(timing))
    })
    .await;
    let id = h
        .send(inngest_sdk::Event::new("stream/slow", json!({})))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:#?}", run.history);
    assert_eq!(run.output, Some(json!({ "step": { "slept": true } })));
    assert!(
        !run.history.iter().any(|e| matches!(
            e.kind,
            HistoryKind::RequestFailed | HistoryKind::InvalidResponse
        )),
        "{:#?}",
        run.history
    );
    assert_eq!(run.requests, 2, "{:#?}", run.history);
}

#[tokio::test]
async fn streaming_and_checkpointing_together() {
    // Checkpointing runs both steps in one request (about 1.4 s of silence without streaming).
    let two = Function::new("two")
        .trigger(Trigger::event("stream/two"))
        .retries(0)
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let mut out = Vec::new();
            for id in ["first", "second"] {
                let v: String = step
                    .run(id, move || async move {
                        tokio::time::sleep(Duration::from_millis(700)).await;
                        Ok(id.to_owned())
                    })
                    .await?;
                out.push(v);
            }
            Ok(json!(out))
        });
    let timing = (Duration::from_millis(200), Duration::from_millis(200));
    let (h, _proxy) =
        behind_proxy(two, true, PROXY_IDLE, move |c| same_client(c, Some(timing))).await;
    let id = h
        .send(inngest_sdk::Event::new("stream/two", json!({})))
        .await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:#?}", run.history);
    assert_eq!(run.output, Some(json!(["first", "second"])));
    assert_eq!(run.requests, 1, "{:#?}", run.history);
}

/// The README's "Streaming" example, kept compiling here (without binding a port); its
/// `from_env` reads the process environment, so this builds in dev mode through `env_map`.
#[tokio::test]
async fn readme_streaming_example_builds() {
    let client = Inngest::builder("reports")
        .env_map([("INNGEST_DEV".to_owned(), "1".to_owned())].into())
        .streaming(true)
        .streaming_threshold(Duration::from_secs(5))
        .streaming_interval(Duration::from_secs(3))
        .build()
        .unwrap();
    let render = Function::new("render-report")
        .trigger(Trigger::event("reports/requested"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let pages: u32 = step
                .run("render", || async { Ok(render_pages().await) })
                .await?;
            Ok(json!({ "pages": pages }))
        });
    let _app =
        axum::Router::new().merge(inngest_sdk::serve::axum::router(&client, [render]).unwrap());
    assert!(client.config().streaming());
    assert_eq!(
        client.config().streaming_threshold(),
        Duration::from_secs(5)
    );
    assert_eq!(render_pages().await, 12);
}

async fn render_pages() -> u32 {
    12
}
