//! Shared helpers of the protocol and step tests: serve a `Router` on a loopback port, talk to it
//! with reqwest, fake the Inngest API, sign/verify with an HMAC computed here (independently of
//! the SDK's signature module), and read the wire captures under `tests/fixtures/captures/`.
#![allow(dead_code)]

pub mod golden;
pub mod js_app;
pub mod logs;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::Router;
use hmac::{Hmac, Mac};
use inngest_sdk::{Function, Inngest};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// The hex signing key of the signed captures (`inngest start --signing-key …`).
pub const SIGNING_KEY_HEX: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The same key as the SDK is configured with in cloud mode.
pub fn signing_key() -> String {
    format!("signkey-prod-{SIGNING_KEY_HEX}")
}

/// `Authorization` bearer for [`signing_key`]: prefix + hex(SHA-256(hex-decoded key)), the value
/// recorded in `signed/sdk-0001-POST-_fn_register.json`.
pub const SIGNING_KEY_BEARER: &str =
    "Bearer signkey-prod-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837";

// ------------------------------------------------------------------------------------------------
// Servers

/// A server on a loopback port, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:<port>`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:<port><path_and_query>`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.origin())
    }

    /// The serve endpoint `/api/inngest` plus `query` (without `?`; may be empty).
    pub fn endpoint(&self, query: &str) -> String {
        if query.is_empty() {
            self.url("/api/inngest")
        } else {
            self.url(&format!("/api/inngest?{query}"))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1:0 and serves `router` with `axum::serve`.
pub async fn serve(router: Router) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.expect("axum::serve");
    });
    Server { addr, task }
}

/// Serves `functions` with `client` through `inngest_sdk::serve::axum::router`.
pub async fn serve_app(client: &Inngest, functions: impl IntoIterator<Item = Function>) -> Server {
    let router = inngest_sdk::serve::axum::router(client, functions).expect("valid app");
    serve(router).await
}

/// Serves an existing handler (e.g. one with a short `step_not_found_timeout`).
pub async fn serve_handler(handler: inngest_sdk::serve::ServeHandler) -> Server {
    serve(inngest_sdk::serve::axum::router_from_handler(handler)).await
}

/// `http://127.0.0.1:<port>` of a port that was free a moment ago and has nothing listening:
/// connections to it are refused.
pub fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    format!("http://{}", l.local_addr().expect("local addr"))
}

/// A plain reqwest client (no proxy, no automatic decompression surprises).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The 206 op array.
    pub fn ops(&self) -> Vec<Value> {
        assert_eq!(
            self.status,
            206,
            "expected a 206, got {}: {}",
            self.status,
            self.text()
        );
        match self.json() {
            Value::Array(ops) => ops,
            other => panic!("206 body is not an array: {other}"),
        }
    }

    /// Headers every SDK response carries (protocol §3.2, §13.2).
    pub fn assert_sdk_headers(&self) {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{self:?}"
        );
        assert_eq!(
            self.header("x-inngest-sdk"),
            Some(inngest_sdk::client::SDK_HEADER),
            "{self:?}"
        );
        assert_eq!(self.header("x-inngest-req-version"), Some("2"), "{self:?}");
    }

    /// `X-Inngest-No-Retry` is exactly `expected` (`None` = absent).
    pub fn assert_no_retry(&self, expected: Option<&str>) {
        assert_eq!(
            self.header("x-inngest-no-retry"),
            expected,
            "X-Inngest-No-Retry of {} {}",
            self.status,
            self.text()
        );
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await.expect("response body");
    Resp {
        status,
        headers,
        body,
    }
}

// ------------------------------------------------------------------------------------------------
// A fake Inngest API (`/fn/register`, `/e/{key}`, anything else) that records requests.

/// One request received by [`FakeApi`].
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, e.g. `/fn/register?deployId=d1`.
    pub path: String,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("recorded body is JSON")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header"))
    }
}

/// Decides the fake API's answer: status and body.
pub type Responder = Arc<dyn Fn(&Recorded, usize) -> (u16, String) + Send + Sync>;

pub struct FakeApi {
    server: Server,
    log: Arc<Mutex<Vec<Recorded>>>,
}

/// Event ids the default responder hands out, in order.
pub const FAKE_EVENT_IDS: [&str; 3] = [
    "01M8GA0PS6ST45CKVJMZ4RG1CF",
    "01M8GA0PS6ST45CKVJMZ4RG1CG",
    "01M8GA0PS6ST45CKVJMZ4RG1CH",
];

impl FakeApi {
    /// Register answers `200 {"ok":true,"modified":true,…}`; the event API answers
    /// `200 {"ids":[…],"status":200}` with one of [`FAKE_EVENT_IDS`] per event.
    pub async fn start() -> FakeApi {
        FakeApi::with(Arc::new(default_reply)).await
    }

    pub async fn with(responder: Responder) -> FakeApi {
        let log: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let state = (log.clone(), responder);
        let router = Router::new().fallback(move |req: axum::extract::Request| {
            let (log, responder) = state.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let rec = Recorded {
                    method: parts.method.to_string(),
                    path: parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    headers: parts.headers,
                    body,
                };
                let index = {
                    let mut log = log.lock().unwrap();
                    log.push(rec.clone());
                    log.len() - 1
                };
                let (status, body) = responder(&rec, index);
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(body))
                    .unwrap()
            }
        });
        FakeApi {
            server: serve(router).await,
            log,
        }
    }

    pub fn origin(&self) -> String {
        self.server.origin()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }
}

pub fn default_reply(rec: &Recorded, _index: usize) -> (u16, String) {
    if rec.path.starts_with("/fn/register") {
        return (
            200,
            json!({"ok": true, "modified": true, "sync_id": "6471b2a3-fb92-444e-a85d-c6f43c157491",
                   "app_id": "1c4e76b7-e691-5537-b675-cba89dfecabd"})
            .to_string(),
        );
    }
    if rec.path.starts_with("/e/") {
        let n = serde_json::from_slice::<Vec<Value>>(&rec.body)
            .map(|v| v.len())
            .unwrap_or(1);
        let ids: Vec<&str> = FAKE_EVENT_IDS.iter().copied().cycle().take(n).collect();
        return (200, json!({"ids": ids, "status": 200}).to_string());
    }
    (404, json!({"error": "not found"}).to_string())
}

/// A dev-mode client for `app_id` whose API and event API are `api`.
pub fn dev_client(app_id: &str, api: &FakeApi) -> Inngest {
    Inngest::builder(app_id)
        .dev(true)
        .api_base_url(api.origin())
        .event_api_base_url(api.origin())
        .send_retries(0)
        .build()
        .expect("dev client")
}

/// A cloud-mode client with [`signing_key`] whose API and event API are `api`.
pub fn cloud_client(app_id: &str, api: &FakeApi) -> Inngest {
    Inngest::builder(app_id)
        .dev(false)
        .signing_key(signing_key())
        .event_key("test-event-key-123")
        .api_base_url(api.origin())
        .event_api_base_url(api.origin())
        .send_retries(0)
        .build()
        .expect("cloud client")
}

// ------------------------------------------------------------------------------------------------
// Signatures, computed here with the hmac crate (not the SDK's signature module).

/// `hex(HMAC-SHA256(key_text, body || t))`.
pub fn hmac_hex(key_text: &str, body: &[u8], t: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key_text.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(t.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// `t=<t>&s=<hmac>` with the capture key.
pub fn sign_at(body: &[u8], t: i64) -> String {
    let t = t.to_string();
    format!("t={t}&s={}", hmac_hex(SIGNING_KEY_HEX, body, &t))
}

/// [`sign_at`] with the current time.
pub fn sign_now(body: &[u8]) -> String {
    sign_at(body, now())
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Splits `t=…&s=…`.
pub fn parse_sig(header: &str) -> (String, String) {
    let mut t = None;
    let mut s = None;
    for part in header.split('&') {
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v.to_owned());
        } else if let Some(v) = part.strip_prefix("s=") {
            s = Some(v.to_owned());
        }
    }
    (t.expect("t in signature"), s.expect("s in signature"))
}

/// Asserts `resp` carries a signature over its exact body bytes, made with the capture key, with a
/// fresh timestamp.
pub fn assert_signed_response(resp: &Resp) {
    let header = resp
        .header("x-inngest-signature")
        .unwrap_or_else(|| panic!("response to a signed request is not signed: {resp:?}"));
    let (t, s) = parse_sig(header);
    assert_eq!(
        s,
        hmac_hex(SIGNING_KEY_HEX, &resp.body, &t),
        "response signature does not verify over the body bytes"
    );
    let t: i64 = t.parse().expect("numeric t");
    assert!((now() - t).abs() <= 5, "response t {t} is not now");
}

// ------------------------------------------------------------------------------------------------
// Captures

/// A JSON file under `tests/fixtures/captures/`.
pub fn fixture(rel: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/captures/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The exchanges of the captured run of `function` in `dir` (`classic` or `signed`), in order.
pub fn run_exchanges(dir: &str, function: &str) -> Vec<Value> {
    let runs = format!(
        "{}/tests/fixtures/captures/{dir}/runs",
        env!("CARGO_MANIFEST_DIR")
    );
    let prefix = format!("{function}-01");
    let mut names: Vec<String> = std::fs::read_dir(&runs)
        .unwrap_or_else(|e| panic!("{runs}: {e}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    assert_eq!(names.len(), 1, "one run file for {function} in {dir}");
    let run = fixture(&format!("{dir}/runs/{}", names[0]));
    run["exchanges"].as_array().expect("exchanges").clone()
}

/// Request headers not replayed: hop-by-hop and length headers the client sets itself.
const SKIP_HEADERS: [&str; 5] = [
    "host",
    "content-length",
    "connection",
    "accept-encoding",
    "transfer-encoding",
];

/// The captured executor request as a reqwest request to `server`: same method, path and query,
/// headers (optionally with the signature replaced) and the exact body bytes.
pub fn replay(
    http: &reqwest::Client,
    server: &Server,
    exchange: &Value,
    signature: Signature,
) -> reqwest::RequestBuilder {
    let req = &exchange["request"];
    let method = reqwest::Method::from_bytes(req["method"].as_str().unwrap().as_bytes()).unwrap();
    let body = req["body"].as_str().unwrap().as_bytes().to_vec();
    let mut builder = http.request(method, server.url(req["url"].as_str().unwrap()));
    for (name, value) in req["headers"].as_object().unwrap() {
        let name = name.as_str();
        if SKIP_HEADERS.contains(&name) || name == "x-inngest-signature" {
            continue;
        }
        builder = builder.header(name, value.as_str().unwrap());
    }
    let sig = match signature {
        Signature::Captured => req["headers"]["x-inngest-signature"]
            .as_str()
            .map(str::to_owned),
        Signature::Fresh => Some(sign_now(&body)),
        Signature::None => None,
    };
    if let Some(sig) = sig {
        builder = builder.header("x-inngest-signature", sig);
    }
    builder.body(body)
}

/// Which signature a replayed request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// The captured header (old `t`).
    Captured,
    /// The captured body re-signed now with the capture key.
    Fresh,
    /// No signature.
    None,
}

/// The fields the conformance runner compares (`id`, `op`, `name`, `opts`, `data`) plus the
/// error's `name`/`message`, keeping the difference between an absent key and `null`.
pub fn op_core(op: &Value) -> Value {
    let mut out = Map::new();
    for key in ["id", "op", "name", "opts", "data"] {
        if let Some(v) = op.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(err) = op.get("error") {
        out.insert(
            "error".to_owned(),
            json!({ "name": err["name"], "message": err["message"] }),
        );
    }
    Value::Object(out)
}

// ------------------------------------------------------------------------------------------------
// Synthetic executor requests

/// An executor call built by hand, with the body shape of the captures (keys sorted).
#[derive(Debug, Clone)]
pub struct Call {
    pub fn_slug: String,
    pub step_id: String,
    pub event: Value,
    pub steps: Map<String, Value>,
    pub stack: Vec<String>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub disable_immediate_execution: bool,
    pub version: i64,
}

impl Call {
    /// A discovery call (`stepId=step`) of `<app>-<fn>` with `event`.
    pub fn new(fn_slug: &str, event: Value) -> Call {
        Call {
            fn_slug: fn_slug.to_owned(),
            step_id: "step".to_owned(),
            event,
            steps: Map::new(),
            stack: Vec::new(),
            attempt: 0,
            max_attempts: 5,
            disable_immediate_execution: false,
            version: -1,
        }
    }

    /// Adds a memoized step (appended to the stack).
    pub fn memo(mut self, hash: &str, value: Value) -> Call {
        self.steps.insert(hash.to_owned(), value);
        self.stack.push(hash.to_owned());
        self.version = 2;
        self
    }

    pub fn target(mut self, hash: &str) -> Call {
        self.step_id = hash.to_owned();
        self
    }

    pub fn attempt(mut self, attempt: u32, max_attempts: u32) -> Call {
        self.attempt = attempt;
        self.max_attempts = max_attempts;
        self
    }

    pub fn disable_immediate_execution(mut self) -> Call {
        self.disable_immediate_execution = true;
        self
    }

    pub fn version(mut self, version: i64) -> Call {
        self.version = version;
        self
    }

    pub fn body(&self) -> Value {
        json!({
            "ctx": {
                "attempt": self.attempt,
                "disable_immediate_execution": self.disable_immediate_execution,
                "env": "",
                "fn_id": "996347b3-84f3-57c9-a16a-c5af6848ea4d",
                "generation_id": 1,
                "job_id": "34rm2lx6kdvb7",
                "max_attempts": self.max_attempts,
                "qi_id": "MzRybTJseDZrZHZiNzo6ZGVmYXVsdA==",
                "request_id": "01M8GA0PQA0QD0EZ0E9KMXEXC5",
                "run_id": "01M8GA0PM60JRWWJY8ZEE4VE6V",
                "stack": { "current": self.stack.len(), "stack": self.stack },
                "step_id": "step",
                "use_api": false
            },
            "defers": {},
            "event": self.event,
            "events": [self.event],
            "steps": self.steps,
            "use_api": false,
            "version": self.version
        })
    }

    pub fn query(&self) -> String {
        format!("fnId={}&stepId={}", self.fn_slug, self.step_id)
    }

    /// POSTs the call to `server` the way the executor does.
    pub async fn post(&self, server: &Server) -> Resp {
        let body = serde_json::to_vec(&self.body()).unwrap();
        send(
            http()
                .post(server.endpoint(&self.query()))
                .header("content-type", "application/json")
                .header("user-agent", "Inngest")
                .header("x-inngest-req-version", self.version.to_string())
                .header("x-inngest-step-id", "step")
                .header("x-run-id", "01M8GA0PM60JRWWJY8ZEE4VE6V")
                .body(body),
        )
        .await
    }
}

/// An event as the executor sends it.
pub fn event(name: &str, data: Value) -> Value {
    json!({ "data": data, "id": "01M8GA0PH905RK0NEW8SAPH6DF", "name": name, "ts": 1795843709481i64, "user": {} })
}
