//! Hostile and malformed input to the serve endpoint, over real HTTP.
//!
//! One table: each row is a request (method, query, headers, body, how it is signed) and the exact
//! answer expected (status, `X-Inngest-SDK`, `X-Inngest-No-Retry`, a message substring). Every row
//! runs against `serve::axum::router` bound on 127.0.0.1:0, under a timeout, and the whole run is
//! logged at TRACE into a buffer that must not contain a signing key, the event key or the event
//! payload marker.

mod support;

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use inngest_sdk::client::SDK_HEADER;
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use sha2::Sha256;
use support::logs::logs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const APP: &str = "app";
const KEY_HEX: &str = "5ec2e7a11ce0ffee5ec2e7a11ce0ffee5ec2e7a11ce0ffee5ec2e7a11ce0ffee";
const FALLBACK_HEX: &str = "fa11bacc0de0beeffa11bacc0de0beeffa11bacc0de0beeffa11bacc0de0beef";
const OTHER_HEX: &str = "0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad0bad";
const EVENT_KEY: &str = "evtkey-3e9b1c7d-DO-NOT-LOG";
/// Put in every event's data and every memoized value: must never reach a log line.
const MARKER: &str = "PAYLOAD-MARKER-71c4f0";
const MAX_BODY: usize = 64 * 1024;
const ROW_TIMEOUT: Duration = Duration::from_secs(15);

fn signing_key() -> String {
    format!("signkey-test-{KEY_HEX}")
}
fn fallback_key() -> String {
    format!("signkey-test-{FALLBACK_HEX}")
}

// ---------------------------------------------------------------------------------------------
// Log capture: one global TRACE subscriber writing into a buffer.

fn assert_logs_clean() {
    assert!(
        !logs().text().is_empty(),
        "the log capture recorded nothing"
    );
    support::logs::assert_no_line_contains(&[KEY_HEX, FALLBACK_HEX, EVENT_KEY, MARKER]);
}

// ---------------------------------------------------------------------------------------------
// A loopback fake of the Inngest API that records what it is sent.

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

struct FakeApi {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: support::Server,
}

impl FakeApi {
    async fn start() -> FakeApi {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |uri: http::Uri, headers: http::HeaderMap, body: bytes::Bytes| {
                let record = record.clone();
                async move {
                    let path = uri.to_string();
                    let reply = if path.starts_with("/fn/register") {
                        (200, r#"{"ok":true,"modified":true}"#.to_owned())
                    } else if path.ends_with("/actions") && path.contains("EMPTY") {
                        (200, "{}".to_owned())
                    } else if path.ends_with("/actions") {
                        // A truncated answer: the SDK must report it, not panic.
                        (200, r#"{"abc": {"data""#.to_owned())
                    } else if path.ends_with("/batch") && path.contains("EMPTY") {
                        (200, "[]".to_owned())
                    } else if path.ends_with("/batch") {
                        (200, r#"[{"name":"test/hello","data":{}}]"#.to_owned())
                    } else {
                        (404, format!(r#"{{"error":"not found: {path}"}}"#))
                    };
                    record.lock().unwrap().push(Seen {
                        path,
                        headers,
                        body: body.to_vec(),
                    });
                    (http::StatusCode::from_u16(reply.0).unwrap(), reply.1)
                }
            },
        );
        let server = support::serve(app).await;
        FakeApi {
            url: server.origin(),
            seen,
            _server: server,
        }
    }

    fn last_register(&self) -> Value {
        let seen = self.seen.lock().unwrap();
        let s = seen
            .iter()
            .rev()
            .find(|s| s.path.starts_with("/fn/register"))
            .expect("a register call");
        assert!(s.headers.contains_key("authorization"));
        serde_json::from_slice(&s.body).expect("register body is JSON")
    }
}

// ---------------------------------------------------------------------------------------------
// The apps under test.

#[derive(serde::Deserialize, Debug)]
#[allow(dead_code)]
struct Order {
    order_id: String,
    amount: u64,
}

fn functions() -> Vec<Function> {
    let hello = Function::new("hello")
        .trigger(Trigger::event("test/hello"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let a: Value = step.run("a", || async { Ok(json!({ "n": 1 })) }).await?;
            let b: u64 = step.run("b", || async { Ok(2u64) }).await?;
            Ok(json!({ "a": a, "b": b }))
        });
    let typed = Function::new("typed")
        .trigger(Trigger::event("shop/order"))
        .handler(|ctx: Ctx<Order>, _step: Step| async move {
            Ok(ctx.events.iter().map(|e| e.data.amount).sum::<u64>())
        });
    let par = Function::new("par")
        .trigger(Trigger::event("test/par"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let branches = (0..3).map(|i| {
                let step = step.clone();
                async move { step.run(&format!("p{i}"), || async move { Ok(i) }).await }
            });
            let all: Vec<u32> = futures::future::try_join_all(branches).await?;
            Ok(all.iter().sum::<u32>())
        });
    vec![hello, typed, par]
}

struct App {
    base: String,
    _server: support::Server,
}

async fn serve_app(client: Inngest) -> App {
    let handler = ServeHandler::new(&client, functions())
        .unwrap()
        .step_not_found_timeout(Duration::from_millis(200));
    let server = support::serve_handler(handler).await;
    App {
        base: server.origin(),
        _server: server,
    }
}

fn cloud_client(api: &str) -> inngest_sdk::client::InngestBuilder {
    Inngest::builder(APP)
        .signing_key(signing_key())
        .signing_key_fallback(fallback_key())
        .event_key(EVENT_KEY)
        .api_base_url(api)
        .event_api_base_url(api)
        .max_body_bytes(MAX_BODY)
}

struct Env {
    api: FakeApi,
    main: App,
    pinned: App,
    unreachable: App,
}

impl Env {
    async fn start() -> Env {
        let api = FakeApi::start().await;
        let main = serve_app(cloud_client(&api.url).build().unwrap()).await;
        let pinned = serve_app(
            cloud_client(&api.url)
                .serve_origin("https://shop.example.com")
                .build()
                .unwrap(),
        )
        .await;
        let closed = support::closed_port_url();
        let unreachable = serve_app(cloud_client(&closed).build().unwrap()).await;
        Env {
            api,
            main,
            pinned,
            unreachable,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signing (the test's own HMAC, independent of the SDK's).

fn hmac_hex(key_hex_text: &str, body: &[u8], t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key_hex_text.as_bytes()).unwrap();
    mac.update(body);
    mac.update(t.to_string().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sig_header(key_hex_text: &str, body: &[u8], t: i64) -> String {
    format!("t={t}&s={}", hmac_hex(key_hex_text, body, t))
}

#[derive(Clone)]
enum Sign {
    /// No signature header.
    Unsigned,
    /// Signed with `key` over the body, `offset` seconds from now.
    With { key: &'static str, offset: i64 },
    /// Signed over some other bytes.
    OtherBody(Vec<u8>),
    /// This exact header value.
    Raw(String),
}

const SIGNED: Sign = Sign::With {
    key: KEY_HEX,
    offset: 0,
};

// ---------------------------------------------------------------------------------------------
// Bodies.

fn event(data: Value) -> Value {
    json!({ "name": "test/hello", "data": data, "id": "e1", "ts": 1, "user": {} })
}

fn std_data() -> Value {
    json!({ "marker": MARKER, "order_id": "o-1", "amount": 3 })
}

fn exec(steps: Value, stack: &[&str]) -> Value {
    json!({
        "ctx": {
            "attempt": 0, "disable_immediate_execution": false, "env": "", "fn_id": "uuid",
            "run_id": "01RUN", "max_attempts": 3, "step_id": "step", "use_api": false,
            "stack": { "current": stack.len(), "stack": stack },
        },
        "event": event(std_data()),
        "events": [event(std_data())],
        "steps": steps,
        "version": 2,
    })
}

fn bytes_of(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn with(mut base: Value, path: &[&str], v: Value) -> Value {
    let mut cur = &mut base;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = v;
    base
}

fn ha() -> String {
    inngest_sdk::step::hash_id("a")
}
/// `body` as JSON with a first field `"zz"` whose string holds bytes that are not UTF-8:
/// `serde_json` does not check the UTF-8 of a string it skips, so the body is accepted though
/// it is not UTF-8 as a whole.
fn with_unread_non_utf8(body: &Value) -> Vec<u8> {
    let json = bytes_of(body);
    let mut out = b"{\"zz\":\"\xff\xfe\",".to_vec();
    out.extend_from_slice(&json[1..]);
    out
}

fn hb() -> String {
    inngest_sdk::step::hash_id("b")
}

/// A small valid JavaScript-style gzip stream (deflate "stored" block) of `data`.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    assert!(data.len() < 65_535);
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let len = data.len() as u16;
    out.push(1);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// The table.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Main,
    Pinned,
    Unreachable,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    /// reqwest, with Content-Length.
    Normal,
    /// Hand-written HTTP/1.1 with `Transfer-Encoding: chunked` (no Content-Length).
    Chunked,
}

type After = fn(&Env, &Reply);

struct Row {
    name: &'static str,
    target: Target,
    method: &'static str,
    query: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    sign: Sign,
    transport: Transport,
    status: u16,
    /// `None`: the header must be absent.
    no_retry: Option<&'static str>,
    message: &'static str,
    after: Option<After>,
}

fn row(name: &'static str, method: &'static str, query: &str) -> Row {
    Row {
        name,
        target: Target::Main,
        method,
        query: query.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
        sign: SIGNED,
        transport: Transport::Normal,
        status: 0,
        no_retry: None,
        message: "",
        after: None,
    }
}

impl Row {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    fn json(self, v: Value) -> Self {
        self.body(bytes_of(&v))
    }
    fn sign(mut self, sign: Sign) -> Self {
        self.sign = sign;
        self
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn target(mut self, t: Target) -> Self {
        self.target = t;
        self
    }
    fn chunked(mut self) -> Self {
        self.transport = Transport::Chunked;
        self
    }
    fn expect(
        mut self,
        status: u16,
        no_retry: Option<&'static str>,
        message: &'static str,
    ) -> Self {
        self.status = status;
        self.no_retry = no_retry;
        self.message = message;
        self
    }
    fn after(mut self, f: After) -> Self {
        self.after = Some(f);
        self
    }
}

const EXEC: &str = "fnId=app-hello&stepId=step";
const T: Option<&str> = Some("true");
const F: Option<&str> = Some("false");

fn rows() -> Vec<Row> {
    let (a, b) = (ha(), hb());
    let a_memo = json!({ &a: { "data": { "n": 1, "m": MARKER } } });
    let good = exec(json!({}), &[]);
    let t = now();
    vec![
        // --- baselines: the setup itself works -------------------------------------------------
        row("baseline: discovery runs the first step", "POST", EXEC)
            .json(good.clone())
            .expect(206, None, "\"op\":\"StepRun\""),
        row(
            "baseline: parallel steps are planned",
            "POST",
            "fnId=app-par&stepId=step",
        )
        .json(good.clone())
        .expect(206, None, "\"op\":\"StepPlanned\"")
        .after(|_, r| {
            let ops: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(ops.as_array().unwrap().len(), 3, "{ops}");
        }),
        // --- malformed JSON and wrong shapes ---------------------------------------------------
        row("malformed JSON", "POST", EXEC)
            .body(r#"{"ctx": {"#)
            .expect(400, T, "invalid execution request body"),
        row("JSON truncated inside a string", "POST", EXEC)
            .body(r#"{"event": {"name": "te"#)
            .expect(400, T, "invalid execution request body"),
        row("invalid UTF-8", "POST", EXEC)
            .body(b"{\"ctx\": \"\xff\xfe\"}".to_vec())
            .expect(400, T, "invalid execution request body"),
        row("deeply nested event data (recursion limit)", "POST", EXEC)
            .body(format!(
                "{{\"event\":{{\"name\":\"x\",\"data\":{{\"a\":{}{}}}}}}}",
                "[".repeat(20_000),
                "]".repeat(20_000)
            ))
            .expect(400, T, "recursion limit exceeded"),
        row("deeply nested array as the event", "POST", EXEC)
            .body(format!(
                "{{\"event\":{}{}}}",
                "[".repeat(20_000),
                "]".repeat(20_000)
            ))
            .expect(400, T, "does not match the function's event type"),
        row("a JSON array instead of an object", "POST", EXEC)
            .body("[1, 2, 3]")
            .expect(400, T, "invalid execution request body"),
        row("an empty JSON array", "POST", EXEC)
            .body("[]")
            .expect(400, T, "execution request"),
        row("a JSON string", "POST", EXEC)
            .body(r#""hello""#)
            .expect(400, T, "invalid execution request body"),
        row("JSON null", "POST", EXEC).body("null").expect(
            400,
            T,
            "invalid execution request body",
        ),
        row("`ctx` is a string", "POST", EXEC)
            .json(with(good.clone(), &["ctx"], json!("x")))
            .expect(400, T, "invalid execution request body"),
        row("negative `ctx.attempt`", "POST", EXEC)
            .json(with(good.clone(), &["ctx", "attempt"], json!(-1)))
            .expect(400, T, "invalid execution request body"),
        row("`version` is a string", "POST", EXEC)
            .json(with(good.clone(), &["version"], json!("2")))
            .expect(400, T, "invalid execution request body"),
        row("duplicate top-level key", "POST", EXEC)
            .body(r#"{"version": 2, "version": 2, "event": {"name": "x", "data": {}}}"#)
            .expect(400, T, "duplicate field"),
        row("no `event`", "POST", EXEC)
            .json(json!({ "ctx": { "run_id": "r" }, "steps": {}, "version": 2 }))
            .expect(400, T, "has no `event`"),
        row("`event` is a number", "POST", EXEC)
            .json(with(good.clone(), &["event"], json!(42)))
            .expect(400, T, "does not match the function's event type"),
        // --- function and step addressing ------------------------------------------------------
        row("unknown fnId", "POST", "fnId=app-nope&stepId=step")
            .json(good.clone())
            .expect(500, F, "could not find function with ID `app-nope`"),
        row("missing fnId", "POST", "stepId=step")
            .json(good.clone())
            .expect(400, T, "missing `fnId`"),
        row(
            "fnId is percent-encoded garbage",
            "POST",
            "fnId=%FF%FE%00&stepId=step",
        )
        .json(good.clone())
        .expect(500, F, "could not find function"),
        row(
            "failure handler of a function without one",
            "POST",
            "fnId=app-hello-failure",
        )
        .json(good.clone())
        .expect(500, F, "could not find function"),
        row(
            "unknown stepId in a targeted call",
            "POST",
            &format!("fnId=app-hello&stepId={}", "d".repeat(40)),
        )
        .json(good.clone())
        .expect(500, F, "could not find step"),
        row(
            "unknown stepId given only in X-Inngest-Step-Id",
            "POST",
            "fnId=app-hello",
        )
        .header("x-inngest-step-id", "0".repeat(40))
        .json(good.clone())
        .expect(500, F, "could not find step"),
        row("request version 0", "POST", EXEC)
            .json(with(good.clone(), &["version"], json!(0)))
            .expect(500, T, "request version 0 is not supported"),
        // --- memo (`steps`) and stack ----------------------------------------------------------
        row("`steps` is an array", "POST", EXEC)
            .json(with(good.clone(), &["steps"], json!([1, 2])))
            .expect(400, T, "invalid execution request body"),
        row("a memo entry is a bare number", "POST", EXEC)
            .json(exec(json!({ &a: 5 }), &[&a]))
            .expect(400, T, "memoized step does not match the expected type"),
        row("memo `data` of the wrong type for the step", "POST", EXEC)
            .json(exec(
                json!({ &a: { "data": {} }, &b: { "data": "not a number" } }),
                &[&a, &b],
            ))
            .expect(400, T, "step output does not match the expected type"),
        row("memo `error` of the wrong shape", "POST", EXEC)
            .json(exec(json!({ &a: { "error": 5 } }), &[&a]))
            .expect(400, T, "memoized step does not match the expected type"),
        row(
            "memo holding a step error escapes as a failed run",
            "POST",
            EXEC,
        )
        .json(exec(
            json!({ &a: { "error": { "name": "Error", "message": "card declined" } } }),
            &[&a],
        ))
        .expect(400, T, "card declined"),
        row("stack naming a step not in `steps`", "POST", EXEC)
            .json(exec(a_memo.clone(), &[&"0".repeat(40), &a]))
            .expect(206, None, "\"op\":\"StepRun\""),
        row("stack repeating one id", "POST", EXEC)
            .json(exec(a_memo.clone(), &[&a, &a, &a]))
            .expect(206, None, "\"op\":\"StepRun\""),
        row("memo ids nobody asks for are ignored", "POST", EXEC)
            .json(exec(
                json!({ "zzz": [1, { "x": null }], &a: { "data": MARKER } }),
                &[&a],
            ))
            .expect(206, None, "\"op\":\"StepRun\"")
            .after(|_, r| assert!(String::from_utf8_lossy(&r.body).contains(&hb()))),
        row(
            "bytes that are not UTF-8 in a field nobody reads (memo still replays)",
            "POST",
            EXEC,
        )
        .body(with_unread_non_utf8(&exec(a_memo.clone(), &[&a])))
        .expect(206, None, "\"op\":\"StepRun\"")
        .after(|_, r| assert!(String::from_utf8_lossy(&r.body).contains(&hb()))),
        // --- signatures ------------------------------------------------------------------------
        row("missing signature", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::Unsigned)
            .expect(401, F, "missing X-Inngest-Signature"),
        row("garbled signature", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::Raw("t=abc&s=zz".into()))
            .expect(401, F, "malformed X-Inngest-Signature"),
        row("signature with two timestamps", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::Raw(format!("t={t}&t={t}&s={}", "0".repeat(64))))
            .expect(401, F, "duplicate"),
        row("signature header that is not ASCII", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::Raw(format!("t={t}&s=é{}", "0".repeat(62))))
            .expect(401, F, "Unauthorized"),
        row("expired signature", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::With {
                key: KEY_HEX,
                offset: -400,
            })
            .expect(401, F, "expired"),
        row("signature from the future", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::With {
                key: KEY_HEX,
                offset: 400,
            })
            .expect(401, F, "in the future"),
        row("forged signature (unknown key)", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::With {
                key: OTHER_HEX,
                offset: 0,
            })
            .expect(401, F, "does not match"),
        row("signature over a different body", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::OtherBody(bytes_of(&exec(json!({}), &["x"]))))
            .expect(401, F, "does not match"),
        row("signature from the fallback key is accepted", "POST", EXEC)
            .json(good.clone())
            .sign(Sign::With {
                key: FALLBACK_HEX,
                offset: 0,
            })
            .expect(206, None, "\"op\":\"StepRun\"")
            .after(|_, r| assert_response_signed(r, FALLBACK_HEX)),
        row("signed canonical form, sent re-formatted", "POST", EXEC)
            .body(
                b"{ \"version\" : 2, \"event\": {\"name\": \"test/hello\", \"data\": {}} }"
                    .to_vec(),
            )
            .sign(Sign::OtherBody(
                br#"{"event":{"data":{},"name":"test/hello"},"version":2}"#.to_vec(),
            ))
            .expect(206, None, "\"op\":\"StepRun\""),
        // --- bodies ----------------------------------------------------------------------------
        row("empty body, signed", "POST", EXEC).expect(400, T, "invalid execution request body"),
        row("empty body, unsigned", "POST", EXEC)
            .sign(Sign::Unsigned)
            .expect(401, F, "missing X-Inngest-Signature"),
        row(
            "body one byte over the limit (Content-Length)",
            "POST",
            EXEC,
        )
        .body(vec![b' '; MAX_BODY + 1])
        .sign(Sign::Unsigned)
        .expect(413, T, "65536-byte limit"),
        row(
            "body far over the limit, chunked (no Content-Length)",
            "POST",
            EXEC,
        )
        .body(vec![b'['; MAX_BODY * 2])
        .sign(Sign::Unsigned)
        .chunked()
        .expect(413, T, "65536-byte limit"),
        row("body exactly at the limit is accepted", "POST", EXEC)
            .body({
                let mut b = bytes_of(&good);
                b.resize(MAX_BODY, b' ');
                b
            })
            .expect(206, None, "\"op\":\"StepRun\""),
        row("gzip-encoded body", "POST", EXEC)
            .body(gzip_stored(&bytes_of(&good)))
            .header("content-encoding", "gzip")
            .expect(415, T, "Content-Encoding `gzip` is not supported"),
        row("chunked body within the limit works", "POST", EXEC)
            .json(good.clone())
            .chunked()
            .expect(206, None, "\"op\":\"StepRun\""),
        // --- methods ---------------------------------------------------------------------------
        row("wrong method: DELETE", "DELETE", EXEC)
            .json(good.clone())
            .expect(405, T, "Method not allowed")
            .after(|_, r| assert_eq!(r.header("allow"), Some("GET, PUT, POST"))),
        row("wrong method: PATCH", "PATCH", EXEC)
            .json(good.clone())
            .expect(405, T, "Method not allowed"),
        // --- typed event data ------------------------------------------------------------------
        row(
            "typed event: a field of the wrong type",
            "POST",
            "fnId=app-typed&stepId=step",
        )
        .json(with(
            good.clone(),
            &["event", "data", "amount"],
            json!("lots"),
        ))
        .expect(400, T, "at `data.amount`: invalid type: string"),
        row(
            "typed event: a missing field",
            "POST",
            "fnId=app-typed&stepId=step",
        )
        .json(with(
            good.clone(),
            &["event", "data"],
            json!({ "amount": 1, "m": MARKER }),
        ))
        .expect(400, T, "missing field `order_id`"),
        row(
            "typed batch: one bad event in `events`",
            "POST",
            "fnId=app-typed&stepId=step",
        )
        .json(with(
            good.clone(),
            &["events"],
            json!([
                event(std_data()),
                event(json!({"order_id": "o", "amount": -1}))
            ]),
        ))
        .expect(400, T, "at `[1].data.amount`"),
        row(
            "typed event: well-formed",
            "POST",
            "fnId=app-typed&stepId=step",
        )
        .json(good.clone())
        .expect(200, None, "3"),
        // --- use_api ---------------------------------------------------------------------------
        row("use_api with the API unreachable", "POST", EXEC)
            .target(Target::Unreachable)
            .json(with(good.clone(), &["ctx", "use_api"], json!(true)))
            .expect(500, F, "could not load run state from the Inngest API"),
        row("use_api with a truncated API answer", "POST", EXEC)
            .json(with(good.clone(), &["use_api"], json!(true)))
            .expect(500, F, "invalid run actions from the Inngest API"),
        row("use_api for a run the API has no events for", "POST", EXEC)
            .json(with(
                with(good.clone(), &["use_api"], json!(true)),
                &["ctx", "run_id"],
                json!("EMPTY"),
            ))
            .expect(500, F, "returned no events"),
        row("use_api with a run id that is a path", "POST", EXEC)
            .json(with(
                with(good.clone(), &["use_api"], json!(true)),
                &["ctx", "run_id"],
                json!("../../fn/register"),
            ))
            .expect(400, T, "`ctx.run_id` must be a run id"),
        // --- probes ----------------------------------------------------------------------------
        row("trust probe, signed", "POST", "probe=trust")
            .expect(200, None, "{}")
            .after(|_, r| assert_response_signed(r, KEY_HEX)),
        row("trust probe, unsigned", "POST", "probe=trust")
            .sign(Sign::Unsigned)
            .expect(401, F, "missing X-Inngest-Signature"),
        row("trust probe, forged", "POST", "probe=trust")
            .sign(Sign::With {
                key: OTHER_HEX,
                offset: 0,
            })
            .expect(401, F, "does not match"),
        row("unknown probe", "POST", "probe=nope").expect(400, T, "unknown probe `nope`"),
        // --- GET -------------------------------------------------------------------------------
        row("introspection, unsigned", "GET", "")
            .sign(Sign::Unsigned)
            .expect(200, None, "\"authentication_succeeded\":null")
            .after(|_, r| assert!(!String::from_utf8_lossy(&r.body).contains("signing_key_hash"))),
        row("introspection with a forged signature", "GET", "")
            .sign(Sign::With {
                key: OTHER_HEX,
                offset: 0,
            })
            .expect(200, None, "\"authentication_succeeded\":false")
            .after(|_, r| assert!(r.header("x-inngest-signature").is_none())),
        // --- PUT -------------------------------------------------------------------------------
        row(
            "PUT with a hostile `url` (out-of-band ignores it)",
            "PUT",
            "",
        )
        .json(json!({ "url": "http://evil.example/steal" }))
        .sign(Sign::Unsigned)
        .expect(200, None, "Successfully registered")
        .after(|env, _| {
            let payload = env.api.last_register();
            let own = format!("{}/api/inngest", env.main.base);
            assert_register_url(&payload, &own);
        }),
        row(
            "PUT with hostile url and X-Forwarded-Host, serve_origin pinned",
            "PUT",
            "",
        )
        .target(Target::Pinned)
        .json(json!({ "url": "http://evil.example/steal" }))
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "http")
        .sign(Sign::Unsigned)
        .expect(200, None, "Successfully registered")
        .after(|env, _| {
            let payload = env.api.last_register();
            assert_register_url(&payload, "https://shop.example.com/api/inngest");
        }),
        row("PUT out-of-band with a forged signature", "PUT", "")
            .json(json!({ "url": "http://evil.example/steal" }))
            .sign(Sign::With {
                key: OTHER_HEX,
                offset: 0,
            })
            .expect(401, F, "does not match"),
        row("PUT in-band, unsigned", "PUT", "")
            .header("x-inngest-sync-kind", "in_band")
            .json(json!({ "url": "http://evil.example/steal" }))
            .sign(Sign::Unsigned)
            .expect(401, F, "missing X-Inngest-Signature"),
        row("PUT in-band with extra fields", "PUT", "")
            .header("x-inngest-sync-kind", "in_band")
            .json(json!({ "url": "http://127.0.0.1/api/inngest", "functions": [] }))
            .expect(400, T, "in-band sync body must be exactly"),
        row("PUT in-band with a non-http url", "PUT", "")
            .header("x-inngest-sync-kind", "in_band")
            .json(json!({ "url": "file:///etc/passwd" }))
            .expect(400, T, "must be an absolute http(s) URL"),
        row("PUT in-band, signed (baseline)", "PUT", "")
            .header("x-inngest-sync-kind", "in_band")
            .json(json!({ "url": "https://app.example.com/api/inngest" }))
            .expect(
                200,
                None,
                "https://app.example.com/api/inngest?fnId=app-hello&stepId=step",
            )
            .after(|_, r| assert_response_signed(r, KEY_HEX)),
    ]
}

fn assert_register_url(payload: &Value, own: &str) {
    assert_eq!(payload["url"], own, "{payload}");
    let text = payload.to_string();
    assert!(!text.contains("evil"), "{text}");
    for f in payload["functions"].as_array().unwrap() {
        let url = f["steps"]["step"]["runtime"]["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("{own}?fnId=")), "{url}");
    }
}

fn assert_response_signed(r: &Reply, key_hex_text: &str) {
    let sig = r.header("x-inngest-signature").expect("signed response");
    let t: i64 = sig
        .strip_prefix("t=")
        .and_then(|s| s.split('&').next())
        .and_then(|s| s.parse().ok())
        .expect("t=");
    assert_eq!(sig, sig_header(key_hex_text, &r.body, t));
}

// ---------------------------------------------------------------------------------------------
// Running a row.

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name));
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "header {name} repeated");
        first
    }
}

fn signature_for(row: &Row) -> Option<String> {
    match &row.sign {
        Sign::Unsigned => None,
        Sign::With { key, offset } => Some(sig_header(key, &row.body, now() + offset)),
        Sign::OtherBody(other) => Some(sig_header(KEY_HEX, other, now())),
        Sign::Raw(h) => Some(h.clone()),
    }
}

async fn send(http: &reqwest::Client, base: &str, row: &Row) -> Reply {
    let url = if row.query.is_empty() {
        format!("{base}/api/inngest")
    } else {
        format!("{base}/api/inngest?{}", row.query)
    };
    let mut headers: Vec<(String, String)> = row
        .headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    if let Some(sig) = signature_for(row) {
        headers.push(("x-inngest-signature".into(), sig));
    }
    if !headers.iter().any(|(k, _)| k == "content-type") && !row.body.is_empty() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    match row.transport {
        Transport::Normal => {
            let method = reqwest::Method::from_bytes(row.method.as_bytes()).unwrap();
            let mut req = http.request(method, &url).body(row.body.clone());
            for (k, v) in &headers {
                req = req.header(
                    k.as_str(),
                    reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                );
            }
            let res = req
                .send()
                .await
                .expect("a response, not a dropped connection");
            let status = res.status().as_u16();
            let headers = res
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = res.bytes().await.unwrap().to_vec();
            Reply {
                status,
                headers,
                body,
            }
        }
        Transport::Chunked => raw_chunked(base, row.method, &url, &headers, &row.body).await,
    }
}

/// HTTP/1.1 by hand: the body goes out in 8 KiB chunks with no Content-Length. The server may
/// answer (413) before reading everything; the reply is read until the connection closes.
async fn raw_chunked(
    base: &str,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    let authority = base.trim_start_matches("http://");
    let path = &url[base.len()..];
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n"
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let (mut rd, mut wr) = stream.split();
    let writer = async {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body.chunks(8192) {
            let mut framed = Vec::with_capacity(chunk.len() + 16);
            write!(framed, "{:x}\r\n", chunk.len()).unwrap();
            framed.extend_from_slice(chunk);
            framed.extend_from_slice(b"\r\n");
            wr.write_all(&framed).await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        Ok::<_, std::io::Error>(())
    };
    // The server may close (even reset) the connection after answering early: keep whatever
    // arrived before that.
    let reader = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf
    };
    let (_written, raw) = tokio::join!(writer, reader);
    parse_http_reply(&raw)
}

fn parse_http_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete reply head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut rest = rest;
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16)
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        out
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn check(row: &Row, reply: &Reply) -> Result<(), String> {
    let body = String::from_utf8_lossy(&reply.body);
    let mut problems = Vec::new();
    if reply.status != row.status {
        problems.push(format!("status {} (wanted {})", reply.status, row.status));
    }
    if reply.header("x-inngest-sdk") != Some(SDK_HEADER) {
        problems.push(format!(
            "X-Inngest-SDK = {:?}",
            reply.header("x-inngest-sdk")
        ));
    }
    if reply.header("x-inngest-req-version") != Some("2") {
        problems.push("X-Inngest-Req-Version is not 2".into());
    }
    if reply.header("content-type") != Some("application/json") {
        problems.push(format!("Content-Type = {:?}", reply.header("content-type")));
    }
    if reply.header("x-inngest-no-retry") != row.no_retry {
        problems.push(format!(
            "X-Inngest-No-Retry = {:?} (wanted {:?})",
            reply.header("x-inngest-no-retry"),
            row.no_retry
        ));
    }
    if serde_json::from_slice::<Value>(&reply.body).is_err() {
        problems.push("body is not JSON".into());
    }
    if !body.contains(row.message) {
        problems.push(format!("body lacks {:?}", row.message));
    }
    if row.status >= 400 && !body.contains("\"message\"") {
        problems.push("error body has no `message`".into());
    }
    for secret in [KEY_HEX, FALLBACK_HEX, EVENT_KEY] {
        if body.contains(secret) {
            problems.push(format!("body leaks `{secret}`"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}; body: {}",
            problems.join("; "),
            truncate(&body)
        ))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(400).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_table() {
    logs();
    let env = Env::start().await;
    let http = reqwest::Client::builder()
        .timeout(ROW_TIMEOUT)
        .build()
        .unwrap();
    let rows = rows();
    assert!(rows.len() >= 30, "{} rows", rows.len());
    let mut failures = VecDeque::new();
    for row in &rows {
        let base = match row.target {
            Target::Main => &env.main.base,
            Target::Pinned => &env.pinned.base,
            Target::Unreachable => &env.unreachable.base,
        };
        let reply = match tokio::time::timeout(ROW_TIMEOUT, send(&http, base, row)).await {
            Ok(r) => r,
            Err(_) => {
                failures.push_back(format!("{}: no answer within {ROW_TIMEOUT:?}", row.name));
                continue;
            }
        };
        if let Err(why) = check(row, &reply) {
            failures.push_back(format!("{}: {why}", row.name));
            continue;
        }
        if let Some(after) = row.after {
            let name = row.name;
            let res =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| after(&env, &reply)));
            if res.is_err() {
                failures.push_back(format!("{name}: post-check failed"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        Vec::from(failures).join("\n")
    );
    // The app is still up and answering after all of that.
    let reply = send(
        &http,
        &env.main.base,
        &row("after", "POST", EXEC).json(exec(json!({}), &[])),
    )
    .await;
    assert_eq!(reply.status, 206);
    assert_logs_clean();
}
