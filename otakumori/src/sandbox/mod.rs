//! Loopback fake servers for Printify, Stripe and Resend.
//!
//! They serve two purposes:
//!
//! 1. **Tests**: each fake records every API request (method, path, query, headers including
//!    `Authorization`, JSON body, response status) and supports fault injection.
//! 2. **Built-in sandbox stand-ins**: when a service has no API keys configured, the app starts the
//!    matching fake in-process (see `crate::context`) and talks to it over HTTP, so the demo runs
//!    end to end with realistic data and no network.
//!
//! Each fake binds `127.0.0.1:0` (a free port), runs on the current tokio runtime and stops when
//! its handle is dropped (or on [`FakePrintify::shutdown`] etc.).
//!
//! # Control API (`/__fake/*`, no auth, not recorded)
//!
//! Shared by all three fakes:
//!
//! | route | effect |
//! |---|---|
//! | `GET /__fake/requests` | the request log (JSON array of [`RecordedRequest`]) |
//! | `DELETE /__fake/requests` | clear the log |
//! | `POST /__fake/faults` | queue a [`Fault`] (or an array of them) |
//! | `DELETE /__fake/faults` | clear queued faults |
//! | `POST /__fake/reset` | fixtures back to defaults; log, faults and stored objects cleared |
//!
//! Per fake: Printify `GET|PUT /__fake/products`, `POST /__fake/products/{id}/variants/{vid}/availability`
//! (`{"is_available": false}`), `DELETE /__fake/products/{id}`, `GET /__fake/orders`; Stripe
//! `GET|PUT /__fake/sessions`; Resend `GET /__fake/emails`.
//!
//! The same operations are available as methods on the handles.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub mod fixtures;
mod printify;
mod resend;
mod stripe;

pub use printify::{FakeOrder, FakePrintify};
pub use resend::{FakeEmail, FakeResend};
pub use stripe::FakeStripe;

/// Default bearer token the sandbox Printify expects.
pub const SANDBOX_PRINTIFY_KEY: &str = "sandbox-printify-token";
/// Default shop id of the sandbox Printify.
pub const SANDBOX_SHOP_ID: &str = "8675309";
/// Default secret key of the sandbox Stripe.
pub const SANDBOX_STRIPE_KEY: &str = "sk_test_otakumori_sandbox";
/// Default API key of the sandbox Resend.
pub const SANDBOX_RESEND_KEY: &str = "re_sandbox_otakumori";

/// One request received by a fake's API (control routes are not recorded).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path without query, e.g. `/v1/shops/8675309/products.json`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// The `Authorization` header as received.
    pub authorization: Option<String>,
    /// All headers, lower-case names (last value wins).
    pub headers: BTreeMap<String, String>,
    /// JSON body, or the body as a string if it is not JSON, or `null` when empty.
    pub body: Value,
    /// Status the fake answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// Value of a query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref().and_then(|q| {
            q.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k == name).then(|| v.to_string())
            })
        })
    }
}

fn default_times() -> u32 {
    1
}

/// An injected failure: the next `times` matching API calls answer `status` (with
/// `Retry-After: retry_after` and a `{"message": …}`-style body) instead of being served.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status to answer (429, 500, 400, …).
    pub status: u16,
    /// How many calls it applies to (default 1).
    #[serde(default = "default_times")]
    pub times: u32,
    /// `Retry-After` seconds to send.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Error message for the body.
    #[serde(default)]
    pub message: Option<String>,
    /// Only requests whose path contains this (for the fake Printify: path and query, e.g.
    /// `page=2`).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Only requests with this method.
    #[serde(default)]
    pub method: Option<String>,
}

impl Fault {
    /// `times` calls answer `status`.
    pub fn status(status: u16, times: u32) -> Self {
        Fault {
            status,
            times,
            retry_after: None,
            message: None,
            path_contains: None,
            method: None,
        }
    }
    /// `times` calls answer 429 with `Retry-After: retry_after_secs`.
    pub fn rate_limit(times: u32, retry_after_secs: u64) -> Self {
        Fault {
            retry_after: Some(retry_after_secs),
            ..Fault::status(429, times)
        }
    }
    /// Restrict to paths containing `fragment`.
    pub fn on_path(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }
    /// Set the error message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        self.path_contains
            .as_deref()
            .is_none_or(|f| path.contains(f))
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
    }
}

/// Request log + fault queue shared by all fakes.
#[derive(Debug, Default)]
pub(crate) struct Core {
    log: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Provider-specific error body for an injected fault.
#[derive(Clone, Copy)]
pub(crate) enum ErrorStyle {
    /// `{"message": …}` (Printify).
    Message,
    /// `{"error": {"message", "type"}}` (Stripe).
    Stripe,
    /// `{"statusCode", "name", "message"}` (Resend).
    Resend,
}

pub(crate) fn error_body(style: ErrorStyle, status: u16, message: &str) -> Value {
    match style {
        ErrorStyle::Message => json!({"status": "error", "message": message}),
        ErrorStyle::Stripe => {
            json!({"error": {"message": message, "type": if status == 429 { "rate_limit_error" } else if status >= 500 { "api_error" } else { "invalid_request_error" }}})
        }
        ErrorStyle::Resend => {
            json!({"statusCode": status, "name": if status == 429 { "rate_limit_exceeded" } else if status >= 500 { "internal_server_error" } else { "validation_error" }, "message": message})
        }
    }
}

pub(crate) fn json_response(status: u16, body: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

impl Core {
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }
    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }
    pub(crate) fn push_fault(&self, f: Fault) {
        if f.times > 0 {
            lock(&self.faults).push_back(f);
        }
    }
    pub(crate) fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Record the request (status filled in by [`Core::finish`]) and return its index.
    pub(crate) fn record(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> usize {
        let mut hs = BTreeMap::new();
        for (k, v) in headers {
            hs.insert(
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let mut log = lock(&self.log);
        log.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            authorization: hs.get("authorization").cloned(),
            headers: hs,
            body,
            status: 0,
        });
        log.len() - 1
    }

    pub(crate) fn finish(&self, idx: usize, resp: Response) -> Response {
        if let Some(r) = lock(&self.log).get_mut(idx) {
            r.status = resp.status().as_u16();
        }
        resp
    }

    /// Pop a matching queued fault and build its response.
    pub(crate) fn take_fault(
        &self,
        method: &Method,
        path: &str,
        style: ErrorStyle,
    ) -> Option<Response> {
        let mut faults = lock(&self.faults);
        let pos = faults.iter().position(|f| f.matches(method, path))?;
        let f = faults[pos].clone();
        if f.times <= 1 {
            faults.remove(pos);
        } else {
            faults[pos].times -= 1;
        }
        drop(faults);
        let msg = f.message.clone().unwrap_or_else(|| match f.status {
            429 => "Too many requests".to_string(),
            s if s >= 500 => "Internal server error (injected)".to_string(),
            _ => "Bad request (injected)".to_string(),
        });
        let mut resp = json_response(f.status, error_body(style, f.status, &msg));
        if let Some(secs) = f.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        Some(resp)
    }

    /// Handle the shared control routes; `None` if `path` is not one of them.
    pub(crate) fn control(&self, method: &Method, path: &str, body: &Bytes) -> Option<Response> {
        match (method.as_str(), path) {
            ("GET", "/__fake/requests") => Some(json_response(200, json!(self.requests()))),
            ("DELETE", "/__fake/requests") => {
                self.clear_requests();
                Some(json_response(200, json!({"cleared": true})))
            }
            ("POST", "/__fake/faults") => {
                let parsed: Result<Vec<Fault>, _> = serde_json::from_slice::<Vec<Fault>>(body)
                    .or_else(|_| serde_json::from_slice::<Fault>(body).map(|f| vec![f]));
                Some(match parsed {
                    Ok(fs) => {
                        let n = fs.len();
                        fs.into_iter().for_each(|f| self.push_fault(f));
                        json_response(200, json!({"queued": n}))
                    }
                    Err(e) => json_response(400, json!({"message": format!("bad fault: {e}")})),
                })
            }
            ("DELETE", "/__fake/faults") => {
                self.clear_faults();
                Some(json_response(200, json!({"cleared": true})))
            }
            _ => None,
        }
    }
}

/// `Authorization: Bearer <expected>` check.
pub(crate) fn bearer_ok(headers: &HeaderMap, expected: &str) -> bool {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| subtle::ConstantTimeEq::ct_eq(t.as_bytes(), expected.as_bytes()).into())
}

/// The handle methods every fake has, over its `inner.core` ([`Core`]) and `running`
/// ([`Running`]) fields: `push_fault`, `requests`, `clear_requests` and `shutdown`.
macro_rules! core_handle_methods {
    ($fake:ty) => {
        impl $fake {
            /// Queue a fault.
            pub fn push_fault(&self, fault: $crate::sandbox::Fault) {
                self.inner.core.push_fault(fault);
            }

            /// The request log.
            pub fn requests(&self) -> Vec<$crate::sandbox::RecordedRequest> {
                self.inner.core.requests()
            }

            /// Clear the request log.
            pub fn clear_requests(&self) {
                self.inner.core.clear_requests();
            }

            /// Stop the server now (also happens on drop).
            pub fn shutdown(&mut self) {
                self.running.stop();
            }
        }
    };
}
pub(crate) use core_handle_methods;

/// A running loopback server (shared by the fakes).
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Running {
    pub(crate) async fn spawn(router: axum::Router) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Running {
            addr,
            shutdown: Some(tx),
        })
    }

    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// All three fakes together (what `crate::context` starts for sandboxed services).
#[derive(Debug)]
pub struct SandboxServers {
    /// Fake Printify, if started.
    pub printify: Option<FakePrintify>,
    /// Fake Stripe, if started.
    pub stripe: Option<FakeStripe>,
    /// Fake Resend, if started.
    pub resend: Option<FakeResend>,
}

impl SandboxServers {
    /// Start all three with their default keys and fixtures.
    pub async fn start_all() -> std::io::Result<Self> {
        Ok(SandboxServers {
            printify: Some(FakePrintify::start().await?),
            stripe: Some(FakeStripe::start().await?),
            resend: Some(FakeResend::start().await?),
        })
    }
}
