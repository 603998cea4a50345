//! The Inngest client: sends events and makes authenticated calls to the Inngest API.
//!
//! ```no_run
//! use inngest_sdk::client::Inngest;
//! use inngest_sdk::event::Event;
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let inngest = Inngest::new("billing")?; // reads INNGEST_* from the environment
//! let ids = inngest
//!     .send(&Event::new("billing/invoice.created", json!({ "invoice_id": "inv_42" })))
//!     .await?;
//! println!("sent as {ids:?}");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::StatusCode;
use rand::Rng as _;
use serde::Serialize;
use url::Url;

use crate::config::{Config, ConfigError, Mode};
use crate::event::{validate_name, EncodeError, Event, IntoEvent};
use crate::middleware::Stack;
use inngest_protocol::wire::headers as h;

mod builder;
mod realtime;

pub use builder::InngestBuilder;
pub use realtime::{Realtime, SubscriptionToken};

/// Value of `X-Inngest-SDK` and `User-Agent` on every request and response of this SDK.
pub const SDK_HEADER: &str = concat!("inngest-rs-sdk:v", env!("CARGO_PKG_VERSION"));

/// Event key used in dev mode when none is configured (the Dev Server accepts any key).
pub const DEV_EVENT_KEY: &str = "NO_EVENT_KEY_SET";

/// Default number of attempts for an event send (first try included).
pub const DEFAULT_SEND_ATTEMPTS: u32 = 5;

/// Default base delay of the exponential backoff between event send attempts.
pub const DEFAULT_SEND_BACKOFF: Duration = Duration::from_millis(100);

/// Default time limit of a whole HTTP request ([`InngestBuilder::timeout`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Default time limit of connecting ([`InngestBuilder::connect_timeout`]).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest server error message kept in an error, in bytes.
const MAX_ERROR_MESSAGE: usize = 512;

/// Why sending events failed. Messages never contain the event key or payloads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Cloud mode needs an event key to send events.
    #[error("no event key: set INNGEST_EVENT_KEY (or use dev mode with INNGEST_DEV=1)")]
    MissingEventKey,
    /// An event failed validation before anything was sent.
    #[error("invalid event: {0}")]
    InvalidEvent(String),
    /// An event could not be serialized to JSON.
    #[error("could not serialize event: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The event API refused the events.
    #[error("event API rejected the events (HTTP {status}): {message}")]
    Rejected {
        /// HTTP status code.
        status: u16,
        /// The server's `error` (or `message`) field, or the response text.
        message: String,
    },
    /// The event API could not be reached.
    #[error("could not reach the event API after {attempts} attempt(s): {source}")]
    Transport {
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: TransportError,
    },
    /// The event API answered success with a body that is not `{"ids": [...]}` for every event.
    #[error("invalid response from the event API: {0}")]
    InvalidResponse(String),
    /// A middleware's send hook failed (nothing was sent when it was `before_send_events`).
    #[error("{0}")]
    Middleware(String),
}

/// Why a call to the Inngest API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request could not be sent or its response read.
    #[error("could not reach the Inngest API: {0}")]
    Transport(#[source] TransportError),
    /// The API answered with a non-2xx status.
    #[error("Inngest API returned HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: StatusCode,
        /// The server's `error`/`message` field, or the response text.
        message: String,
    },
    /// The path could not be joined to the API origin.
    #[error("invalid API URL: {0}")]
    InvalidUrl(String),
    /// The request body could not be serialized (e.g. signal data).
    #[error("could not serialize the request body: {0}")]
    Serialize(#[source] serde_json::Error),
}

/// A request to Inngest that could not be sent, or whose response could not be read: no
/// connection, a timeout, a TLS failure, a broken body…
///
/// It reads (and its [`source`](std::error::Error::source) chain goes on) like the HTTP
/// library's error it stands for. In a [`SendError`] it leaves out the URL, which holds the
/// event key.
#[derive(Debug)]
pub struct TransportError {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
    timeout: bool,
    connect: bool,
}

impl TransportError {
    fn from_http(e: reqwest::Error) -> TransportError {
        TransportError {
            timeout: e.is_timeout(),
            connect: e.is_connect(),
            inner: Box::new(e),
        }
    }

    /// Whether a time limit ([`InngestBuilder::timeout`] or
    /// [`InngestBuilder::connect_timeout`]) ran out.
    pub fn is_timeout(&self) -> bool {
        self.timeout
    }

    /// Whether connecting failed.
    pub fn is_connect(&self) -> bool {
        self.connect
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

/// Retry settings for event sends.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    attempts: u32,
    backoff_base: Duration,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`: `base * 2^(attempt-1)` plus up to `base` of jitter.
    fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let base_ms = u64::try_from(self.backoff_base.as_millis()).unwrap_or(u64::MAX);
        let jitter = rand::rng().random_range(0..=base_ms);
        exp.saturating_add(Duration::from_millis(jitter))
    }
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    retry: RetryPolicy,
    middleware: Stack,
}

/// The Inngest client. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone)]
pub struct Inngest {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Inngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inngest")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Inngest {
    /// A client for `app_id` configured from `INNGEST_*` environment variables.
    pub fn new(app_id: impl Into<String>) -> Result<Inngest, ConfigError> {
        Inngest::builder(app_id).from_env().build()
    }

    /// Starts the builder of a client for `app_id`: every setting of the client, in code. It
    /// reads the environment only when asked ([`InngestBuilder::from_env`]).
    pub fn builder(app_id: impl Into<String>) -> InngestBuilder {
        InngestBuilder::new(app_id.into())
    }

    fn from_parts(
        config: Config,
        http: &HttpSettings,
        retry: RetryPolicy,
        middleware: Stack,
    ) -> Inngest {
        Inngest {
            inner: Arc::new(Inner {
                config,
                http: http.client(),
                retry,
                middleware,
            }),
        }
    }

    /// The resolved configuration (read-only: it is set with [`Inngest::builder`]).
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The client's middleware.
    pub(crate) fn middleware(&self) -> &Stack {
        &self.inner.middleware
    }

    /// The shared HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Sends one event; returns its id. `event` is a typed event (`OrderCreated { .. }`, named
    /// by its [`EventType`](crate::EventType)) or an untyped [`Event`] (or `&Event`).
    pub async fn send(&self, event: impl IntoEvent) -> Result<Vec<String>, SendError> {
        self.send_many([event]).await
    }

    /// Sends events in one request; returns their ids in order.
    ///
    /// Events without `ts` get the current time; `data` that serializes to `null` becomes `{}`.
    /// Retries on 5xx, 429 and transport errors with exponential backoff, reusing one
    /// `X-Inngest-Event-Id-Seed` so retried events keep the same ids.
    ///
    /// `events` is any collection of [`IntoEvent`]: `&[Event]`, `&Vec<Event<T>>`,
    /// `vec![OrderCreated { .. }, ..]`.
    pub async fn send_many<I>(&self, events: I) -> Result<Vec<String>, SendError>
    where
        I: IntoIterator,
        I::Item: IntoEvent,
    {
        let events = events
            .into_iter()
            .map(|e| {
                e.into_event()
                    .map_err(|EncodeError::Serialize(e)| SendError::Serialize(e))
            })
            .collect::<Result<Vec<Event>, SendError>>()?;
        self.send_through(self.middleware(), events).await
    }

    /// Sends `events` through the send hooks of `stack` (the client's, or a call's).
    pub(crate) async fn send_through(
        &self,
        stack: &Stack,
        mut events: Vec<Event>,
    ) -> Result<Vec<String>, SendError> {
        if stack.is_empty() {
            return self.send_events(events).await;
        }
        let hook = |e: crate::Error| SendError::Middleware(e.message().to_owned());
        stack.before_send(&mut events).await.map_err(hook)?;
        let result = self.send_events(events.clone()).await;
        let seen = match &result {
            Ok(ids) => Ok(ids.as_slice()),
            Err(e) => Err(e as &(dyn std::error::Error + Send + Sync)),
        };
        stack.after_send(&events, seen).await.map_err(hook)?;
        result
    }

    async fn send_events(&self, events: Vec<Event>) -> Result<Vec<String>, SendError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let url = self.event_url()?;
        let now_ms = chrono::Utc::now().timestamp_millis();
        let body = Bytes::from(encode_events(&events, now_ms)?);
        let headers = self.send_headers(&event_id_seed(now_ms));
        let ids = self.post_events(url, headers, body, events.len()).await?;
        tracing::debug!(events = events.len(), "inngest: events sent");
        Ok(ids)
    }

    /// `{event_api_origin}/e/{key}`; dev mode without a key uses [`DEV_EVENT_KEY`].
    fn event_url(&self) -> Result<Url, SendError> {
        let config = self.config();
        let key = match (config.event_key(), config.mode()) {
            (Some(key), _) => key,
            (None, Mode::Dev) => DEV_EVENT_KEY,
            (None, Mode::Cloud) => return Err(SendError::MissingEventKey),
        };
        let mut url = config.event_api_origin().clone();
        url.path_segments_mut()
            .map_err(|_| SendError::InvalidEvent("event API origin cannot take a path".into()))?
            .pop_if_empty()
            .extend(["e", key]);
        Ok(url)
    }

    fn send_headers(&self, seed: &str) -> HeaderMap {
        let mut headers = self.common_headers();
        if let Ok(value) = HeaderValue::from_str(seed) {
            headers.insert(h::EVENT_ID_SEED, value);
        }
        crate::telemetry::inject(&mut headers);
        headers
    }

    async fn post_events(
        &self,
        url: Url,
        headers: HeaderMap,
        body: Bytes,
        count: usize,
    ) -> Result<Vec<String>, SendError> {
        let policy = self.inner.retry;
        let mut attempt = 1;
        loop {
            let request = self
                .http()
                .post(url.clone())
                .headers(headers.clone())
                .body(body.clone());
            let outcome = read_response(request.send().await).await;
            match classify(outcome, attempt, policy.attempts) {
                Step::Done(result) => return result.and_then(|b| parse_ids(&b, count)),
                Step::Retry(why) => {
                    tracing::warn!(attempt, max = policy.attempts, %why, "inngest: retrying event send");
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Sends `signal` with `data` to the run waiting on it (`POST {api}/v1/signals`
    /// `{"signal", "data"}` with the signing key, as the JS SDK's `sendSignal`); returns the id
    /// of the resumed run, or `None` when nobody waits (the server's 404 "No signal found", which
    /// the JS SDK also reads as "sent, nobody resumed"): the signal is not kept for a later wait.
    pub async fn send_signal(
        &self,
        signal: &str,
        data: impl Serialize,
    ) -> Result<Option<String>, ApiError> {
        let body = serde_json::to_vec(&serde_json::json!({"signal": signal, "data": data}))
            .map_err(ApiError::Serialize)?;
        let sent = self
            .api_request(
                http::Method::POST,
                "/v1/signals",
                Some(Bytes::from(body)),
                &[],
            )
            .await;
        let bytes = match sent {
            Ok((_, bytes)) => bytes,
            // The server's "No signal found": nobody waits, and the signal is not kept.
            Err(ApiError::Status { status, .. }) if status == StatusCode::NOT_FOUND => {
                tracing::debug!(resumed = false, "inngest: signal sent");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let run_id = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.pointer("/data/run_id")
                    .and_then(|r| r.as_str().map(str::to_owned))
            });
        tracing::debug!(resumed = run_id.is_some(), "inngest: signal sent");
        Ok(run_id)
    }

    /// Calls the Inngest API at `api_origin` + `path_and_query` with the bearer token.
    ///
    /// On 401/403 the request is retried once with the fallback key's token. Returns the status
    /// and body of a 2xx answer; other statuses become [`ApiError::Status`].
    pub(crate) async fn api_request(
        &self,
        method: http::Method,
        path_and_query: &str,
        body: Option<Bytes>,
        extra_headers: &[(&str, String)],
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let url = join_url(self.config().api_origin(), path_and_query)?;
        let config = self.config();
        let bearers: Vec<&str> = [config.signing_key(), config.signing_key_fallback()]
            .into_iter()
            .flatten()
            .map(|k| k.bearer())
            .collect();
        let mut bearer_iter = bearers.iter().copied();
        let mut bearer = bearer_iter.next();
        loop {
            let mut headers = self.common_headers();
            if let Some(token) = bearer {
                insert_header(
                    &mut headers,
                    AUTHORIZATION.as_str(),
                    &format!("Bearer {token}"),
                );
            }
            for (name, value) in extra_headers {
                insert_header(&mut headers, name, value);
            }
            let mut request = self
                .http()
                .request(method.clone(), url.clone())
                .headers(headers);
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let (status, bytes) = read_response(request.send().await)
                .await
                .map_err(|e| ApiError::Transport(TransportError::from_http(e)))?;
            tracing::debug!(%method, status = status.as_u16(), "inngest: API call");
            let auth_failed = matches!(status.as_u16(), 401 | 403);
            if auth_failed {
                if let Some(next) = bearer_iter.next() {
                    tracing::debug!("inngest: API auth failed, retrying with the fallback key");
                    bearer = Some(next);
                    continue;
                }
            }
            if !status.is_success() {
                let message = error_message(status, &bytes);
                return Err(ApiError::Status { status, message });
            }
            return Ok((status, bytes));
        }
    }

    /// Content-Type, X-Inngest-SDK, User-Agent and X-Inngest-Env (when set).
    fn common_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(h::SDK, HeaderValue::from_static(SDK_HEADER));
        headers.insert(USER_AGENT, HeaderValue::from_static(SDK_HEADER));
        if let Some(env) = self.config().env() {
            insert_header(&mut headers, h::ENV, env);
        }
        headers
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: DEFAULT_SEND_ATTEMPTS,
            backoff_base: DEFAULT_SEND_BACKOFF,
        }
    }
}

/// HTTP settings of the client's connection pool.
#[derive(Debug, Clone, Copy)]
struct HttpSettings {
    timeout: Duration,
    connect_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }
}

impl HttpSettings {
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .build()
            .unwrap_or_default()
    }
}

fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) {
    match (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
        }
        _ => tracing::warn!(header = name, "inngest: skipping invalid header"),
    }
}

/// `X-Inngest-Event-Id-Seed`: `<unix ms>,<base64 of 10 random bytes>`.
fn event_id_seed(now_ms: i64) -> String {
    let entropy: [u8; 10] = rand::rng().random();
    let encoded = base64::engine::general_purpose::STANDARD.encode(entropy);
    format!("{now_ms},{encoded}")
}

/// Validates events and encodes them as a JSON array, filling `ts` and defaulting `data` to `{}`.
fn encode_events<T: Serialize>(events: &[Event<T>], now_ms: i64) -> Result<Vec<u8>, SendError> {
    let mut array = Vec::with_capacity(events.len());
    for event in events {
        validate_name(&event.name).map_err(SendError::InvalidEvent)?;
        let mut value = serde_json::to_value(event).map_err(SendError::Serialize)?;
        let object = value
            .as_object_mut()
            .ok_or_else(|| SendError::InvalidEvent("event is not a JSON object".into()))?;
        match object.get("data") {
            None | Some(serde_json::Value::Null) => {
                object.insert("data".into(), serde_json::json!({}));
            }
            Some(serde_json::Value::Object(_)) => {}
            Some(_) => {
                let msg = format!("data of event {:?} must be a JSON object", event.name);
                return Err(SendError::InvalidEvent(msg));
            }
        }
        object.entry("ts").or_insert_with(|| now_ms.into());
        array.push(value);
    }
    serde_json::to_vec(&array).map_err(SendError::Serialize)
}

async fn read_response(
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<(StatusCode, Bytes), reqwest::Error> {
    let response = sent?;
    let status = response.status();
    let body = response.bytes().await?;
    Ok((status, body))
}

/// What to do after one send attempt.
enum Step {
    Done(Result<Bytes, SendError>),
    Retry(String),
}

fn classify(
    outcome: Result<(StatusCode, Bytes), reqwest::Error>,
    attempt: u32,
    max_attempts: u32,
) -> Step {
    let last = attempt >= max_attempts;
    match outcome {
        Ok((status, body)) if status.is_success() => {
            tracing::debug!(
                status = status.as_u16(),
                attempt,
                "inngest: event API answered"
            );
            Step::Done(Ok(body))
        }
        Ok((status, body)) => {
            let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
            tracing::debug!(
                status = status.as_u16(),
                attempt,
                "inngest: event API refused"
            );
            if retryable && !last {
                return Step::Retry(format!("HTTP {}", status.as_u16()));
            }
            let message = error_message(status, &body);
            Step::Done(Err(SendError::Rejected {
                status: status.as_u16(),
                message,
            }))
        }
        Err(e) if e.is_builder() || last => Step::Done(Err(SendError::Transport {
            attempts: attempt,
            source: TransportError::from_http(e.without_url()),
        })),
        Err(e) => Step::Retry(e.without_url().to_string()),
    }
}

/// Extracts `{"ids": [...]}` from a success body (parsed as JSON whatever its Content-Type).
fn parse_ids(body: &[u8], expected: usize) -> Result<Vec<String>, SendError> {
    #[derive(serde::Deserialize)]
    struct Reply {
        ids: Vec<String>,
    }
    let reply: Reply = serde_json::from_slice(body)
        .map_err(|e| SendError::InvalidResponse(format!("expected {{\"ids\": [...]}}: {e}")))?;
    if reply.ids.len() != expected {
        return Err(SendError::InvalidResponse(format!(
            "sent {expected} event(s) but got {} id(s)",
            reply.ids.len()
        )));
    }
    Ok(reply.ids)
}

/// The server's `error` or `message` field, else the (truncated) body text, else the reason.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["error", "message"].iter().find_map(|field| {
                v.get(field)
                    .and_then(|m| m.as_str())
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
            })
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no message").to_owned();
    }
    truncate(text, MAX_ERROR_MESSAGE)
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `origin` (path ending in `/`) joined with `path_and_query` (leading `/` optional).
fn join_url(origin: &Url, path_and_query: &str) -> Result<Url, ApiError> {
    let joined = format!(
        "{}/{}",
        origin.as_str().trim_end_matches('/'),
        path_and_query.trim_start_matches('/')
    );
    Url::parse(&joined).map_err(|e| ApiError::InvalidUrl(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes as AxumBytes;
    use axum::http::{HeaderMap as AxumHeaders, Method, Uri};
    use serde_json::{json, Value};
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// One request seen by the fake server.
    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        headers: AxumHeaders,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).and_then(|v| v.to_str().ok())
        }
        fn json(&self) -> Value {
            serde_json::from_slice(&self.body).unwrap()
        }
    }

    type Responder = Box<dyn Fn(&Seen) -> (u16, String) + Send + Sync>;

    /// A loopback fake of the event API / Inngest API that records requests.
    struct Fake {
        url: String,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Fake {
        /// Replies with the scripted (status, body) pairs in order, then with `fallback`.
        async fn scripted(script: Vec<(u16, &str)>) -> Fake {
            let queue: VecDeque<(u16, String)> =
                script.into_iter().map(|(s, b)| (s, b.to_owned())).collect();
            let queue = Mutex::new(queue);
            Fake::start(Box::new(move |seen| {
                queue
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| ids_for(seen))
            }))
            .await
        }

        async fn start(responder: Responder) -> Fake {
            let seen = Arc::new(Mutex::new(Vec::new()));
            let record = seen.clone();
            let responder = Arc::new(responder);
            let handler = move |method: Method, uri: Uri, headers: AxumHeaders, body: AxumBytes| {
                let record = record.clone();
                let responder = responder.clone();
                async move {
                    let s = Seen {
                        method,
                        path: uri.to_string(),
                        headers,
                        body: body.to_vec(),
                    };
                    let (status, reply) = responder(&s);
                    record.lock().unwrap().push(s);
                    let status = axum::http::StatusCode::from_u16(status).unwrap();
                    // The real event API labels its JSON replies text/plain.
                    (
                        status,
                        [("content-type", "text/plain; charset=utf-8")],
                        reply,
                    )
                }
            };
            let app = axum::Router::new().fallback(handler);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            Fake { url, seen }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    /// A success reply with one ULID-like id per event in the request.
    fn ids_for(seen: &Seen) -> (u16, String) {
        let count = serde_json::from_slice::<Value>(&seen.body)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0);
        let ids: Vec<String> = (0..count)
            .map(|i| format!("01M8GA0PS6ST45CKVJMZ4RG1C{i}"))
            .collect();
        (200, json!({ "ids": ids, "status": 200 }).to_string())
    }

    fn dev_client(fake: &Fake) -> InngestBuilder {
        Inngest::builder("test-app")
            .dev_url(fake.url.clone())
            .send_backoff(Duration::from_millis(1))
    }

    fn seed_ok(seed: &str) -> bool {
        let Some((ms, b64)) = seed.split_once(',') else {
            return false;
        };
        !ms.is_empty()
            && ms.bytes().all(|b| b.is_ascii_digit())
            && b64.len() == 16
            && b64.ends_with("==")
            && b64[..14]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    }

    #[tokio::test]
    async fn dev_send_without_key_uses_placeholder_and_headers() {
        let fake = Fake::scripted(vec![]).await;
        let client = dev_client(&fake).env("feature-1").build().unwrap();
        let ids = client
            .send(&Event::new("test/sent", json!({"x": 1})))
            .await
            .unwrap();
        assert_eq!(ids, vec!["01M8GA0PS6ST45CKVJMZ4RG1C0"]);

        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        let req = &seen[0];
        assert_eq!(req.method, Method::POST);
        assert_eq!(req.path, "/e/NO_EVENT_KEY_SET");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("x-inngest-sdk"), Some(SDK_HEADER));
        assert_eq!(req.header("user-agent"), Some(SDK_HEADER));
        assert_eq!(req.header("x-inngest-env"), Some("feature-1"));
        assert!(req.header("authorization").is_none());
        let seed = req.header("x-inngest-event-id-seed").unwrap();
        assert!(seed_ok(seed), "{seed}");

        let body = req.json();
        let events = body.as_array().expect("body is an array");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["name"], "test/sent");
        assert_eq!(events[0]["data"], json!({"x": 1}));
        let ts = events[0]["ts"].as_i64().unwrap();
        assert_eq!(seed.split_once(',').unwrap().0, ts.to_string());
    }

    #[tokio::test]
    async fn send_many_uses_key_path_keeps_order_and_explicit_fields() {
        let fake = Fake::scripted(vec![]).await;
        let client = dev_client(&fake)
            .event_key("test-event-key-123")
            .build()
            .unwrap();
        let events = vec![
            Event::new("a/one", Value::Null),
            Event::new("a/two", json!({"n": 2}))
                .with_id("idem")
                .with_ts(42),
        ];
        let ids = client.send_many(&events).await.unwrap();
        assert_eq!(ids.len(), 2);
        let req = &fake.seen()[0];
        assert_eq!(req.path, "/e/test-event-key-123");
        assert!(req.header("x-inngest-env").is_none());
        let body = req.json();
        assert_eq!(body[0]["data"], json!({}));
        assert!(body[0]["ts"].is_i64());
        assert_eq!(body[1]["id"], "idem");
        assert_eq!(body[1]["ts"], 42);
        assert!(body[0].get("id").is_none());
    }

    #[tokio::test]
    async fn empty_send_makes_no_request() {
        let fake = Fake::scripted(vec![]).await;
        let client = dev_client(&fake).build().unwrap();
        let none: [Event; 0] = [];
        assert!(client.send_many(&none).await.unwrap().is_empty());
        assert!(fake.seen().is_empty());
    }

    #[tokio::test]
    async fn retries_5xx_with_the_same_seed() {
        let fake = Fake::scripted(vec![(500, "boom"), (503, "")]).await;
        let client = dev_client(&fake).build().unwrap();
        let ids = client.send(&Event::new("a/b", json!({}))).await.unwrap();
        assert_eq!(ids.len(), 1);
        let seen = fake.seen();
        assert_eq!(seen.len(), 3);
        let seeds: Vec<_> = seen
            .iter()
            .map(|s| s.header("x-inngest-event-id-seed"))
            .collect();
        assert!(seeds.iter().all(|s| *s == seeds[0]), "{seeds:?}");
        assert!(seen.iter().all(|s| s.body == seen[0].body));
    }

    #[tokio::test]
    async fn retries_429_then_gives_up_with_rejected() {
        let fake = Fake::scripted(vec![(429, r#"{"error":"slow down"}"#); 3]).await;
        let client = dev_client(&fake).send_retries(2).build().unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SendError::Rejected { status: 429, ref message } if message == "slow down"),
            "{err:?}"
        );
        assert_eq!(fake.seen().len(), 3);
    }

    #[tokio::test]
    async fn bad_request_is_not_retried() {
        let body = r#"{"ids":[],"status":400,"error":"event name is invalid"}"#;
        let fake = Fake::scripted(vec![(400, body)]).await;
        let client = dev_client(&fake).build().unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        match err {
            SendError::Rejected { status, message } => {
                assert_eq!(status, 400);
                assert_eq!(message, "event name is invalid");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.seen().len(), 1);
    }

    #[tokio::test]
    async fn unknown_event_key_message_from_error_field() {
        let body = r#"{"status":401,"message":"","error":"Event key not found"}"#;
        let fake = Fake::scripted(vec![(401, body)]).await;
        let client = dev_client(&fake).event_key("wrong").build().unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SendError::Rejected { status: 401, ref message } if message == "Event key not found"),
            "{err:?}"
        );
        assert!(!err.to_string().contains("wrong"));
        assert_eq!(fake.seen().len(), 1);
    }

    #[tokio::test]
    async fn invalid_success_body() {
        let fake = Fake::scripted(vec![(200, "not json")]).await;
        let client = dev_client(&fake).build().unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::InvalidResponse(_)), "{err:?}");
    }

    #[tokio::test]
    async fn connection_refused_is_transport_after_all_attempts() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = Inngest::builder("app")
            .dev_url(url)
            .send_retries(2)
            .send_backoff(Duration::from_millis(1))
            .build()
            .unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SendError::Transport { attempts: 3, ref source } if source.is_connect()),
            "{err:?}"
        );
        assert!(!err.to_string().contains("127.0.0.1"), "{err}");
    }

    #[tokio::test]
    async fn timeout_setting_bounds_a_send() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                open.push(socket);
            }
        });
        let client = Inngest::builder("app")
            .dev_url(url)
            .send_retries(0)
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let started = std::time::Instant::now();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SendError::Transport { attempts: 1, ref source } if source.is_timeout()),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn validation_happens_before_any_request() {
        let fake = Fake::scripted(vec![]).await;
        let client = dev_client(&fake).build().unwrap();
        for name in ["", "inngest/function.finished"] {
            let err = client.send(&Event::new(name, json!({}))).await.unwrap_err();
            assert!(matches!(err, SendError::InvalidEvent(_)), "{err:?}");
        }
        let err = client.send(&Event::new("a/b", json!(5))).await.unwrap_err();
        assert!(matches!(err, SendError::InvalidEvent(_)), "{err:?}");
        assert!(fake.seen().is_empty());
    }

    #[tokio::test]
    async fn cloud_without_event_key_fails_before_sending() {
        let fake = Fake::scripted(vec![]).await;
        let client = Inngest::builder("app")
            .signing_key("signkey-prod-12345678")
            .base_url(fake.url.clone())
            .build()
            .unwrap();
        let err = client
            .send(&Event::new("a/b", json!({})))
            .await
            .unwrap_err();
        assert!(matches!(err, SendError::MissingEventKey));
        assert!(fake.seen().is_empty());
    }

    const PRIMARY: &str = "signkey-prod-12345678";
    const PRIMARY_BEARER: &str =
        "Bearer signkey-prod-b2ed992186a5cb19f6668aade821f502c1d00970dfd0e35128d51bac4649916c";
    const FALLBACK: &str =
        "signkey-prod-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const FALLBACK_BEARER: &str =
        "Bearer signkey-prod-4884fdaafea47c29fea7159d0daddd9c085d6200e1359e85bb81736af6b7c837";

    /// Accepts only the fallback key's bearer token.
    async fn fallback_only_api() -> Fake {
        Fake::start(Box::new(|seen| match seen.header("authorization") {
            Some(FALLBACK_BEARER) => (200, r#"{"ok":true}"#.to_owned()),
            _ => (401, "Authentication failed".to_owned()),
        }))
        .await
    }

    #[tokio::test]
    async fn api_request_falls_back_on_401() {
        let fake = fallback_only_api().await;
        let client = Inngest::builder("app")
            .signing_key(PRIMARY)
            .signing_key_fallback(FALLBACK)
            .base_url(fake.url.clone())
            .env("branch")
            .build()
            .unwrap();
        let extra = [("x-inngest-sync-kind", "out_of_band".to_owned())];
        let (status, body) = client
            .api_request(
                http::Method::POST,
                "/fn/register?x=1",
                Some(Bytes::from_static(b"{}")),
                &extra,
            )
            .await
            .unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], br#"{"ok":true}"#);
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].header("authorization"), Some(PRIMARY_BEARER));
        assert_eq!(seen[1].header("authorization"), Some(FALLBACK_BEARER));
        for s in &seen {
            assert_eq!(s.path, "/fn/register?x=1");
            assert_eq!(s.body, b"{}");
            assert_eq!(s.header("x-inngest-sync-kind"), Some("out_of_band"));
            assert_eq!(s.header("x-inngest-sdk"), Some(SDK_HEADER));
            assert_eq!(s.header("x-inngest-env"), Some("branch"));
        }
    }

    #[tokio::test]
    async fn api_request_without_fallback_reports_status() {
        let fake = fallback_only_api().await;
        let client = Inngest::builder("app")
            .signing_key(PRIMARY)
            .base_url(fake.url.clone())
            .build()
            .unwrap();
        let err = client
            .api_request(http::Method::GET, "v1/events", None, &[])
            .await
            .unwrap_err();
        match err {
            ApiError::Status { status, message } => {
                assert_eq!(status, StatusCode::UNAUTHORIZED);
                assert_eq!(message, "Authentication failed");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fake.seen().len(), 1);
        assert_eq!(fake.seen()[0].path, "/v1/events");
    }

    #[tokio::test]
    async fn api_request_in_dev_without_key_omits_authorization() {
        let fake = Fake::start(Box::new(|_| (200, "{}".to_owned()))).await;
        let client = dev_client(&fake).build().unwrap();
        client
            .api_request(http::Method::GET, "/v0/runs/1", None, &[])
            .await
            .unwrap();
        assert!(fake.seen()[0].header("authorization").is_none());
    }

    #[test]
    fn sdk_header_format() {
        assert!(SDK_HEADER.starts_with("inngest-rs-sdk:v"));
        assert_eq!(SDK_HEADER.matches(':').count(), 1);
    }

    #[test]
    fn seed_format() {
        for _ in 0..20 {
            let seed = event_id_seed(1_795_843_709_734);
            assert!(seed_ok(&seed), "{seed}");
            assert!(seed.starts_with("1795843709734,"));
        }
    }

    #[test]
    fn backoff_grows_with_jitter() {
        let p = RetryPolicy {
            attempts: 5,
            backoff_base: Duration::from_millis(100),
        };
        for attempt in 1..=4u32 {
            let d = p.delay(attempt).as_millis();
            let floor = 100u128 << (attempt - 1);
            assert!(d >= floor && d <= floor + 100, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn error_message_sources() {
        let s = StatusCode::BAD_REQUEST;
        assert_eq!(error_message(s, br#"{"message":"m"}"#), "m");
        assert_eq!(error_message(s, br#"{"error":"e","message":"m"}"#), "e");
        assert_eq!(error_message(s, b"plain"), "plain");
        assert_eq!(error_message(s, b""), "Bad Request");
        assert!(error_message(s, "é".repeat(600).as_bytes()).len() <= MAX_ERROR_MESSAGE + 3);
    }

    #[test]
    fn debug_does_not_leak_keys() {
        let client = Inngest::builder("app")
            .signing_key(PRIMARY)
            .event_key("very-secret")
            .build()
            .unwrap();
        let dbg = format!("{client:?}");
        assert!(
            !dbg.contains("12345678") && !dbg.contains("very-secret"),
            "{dbg}"
        );
    }
}
