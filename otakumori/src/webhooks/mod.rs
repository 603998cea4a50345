//! Webhook ingress: Clerk (svix), Stripe and Printify deliveries → verified → Inngest events.
//!
//! # Routes ([`router`])
//!
//! | Route                     | Verifier            | Bad/missing/stale signature | Secret unset |
//! |---------------------------|---------------------|-----------------------------|--------------|
//! | `POST /webhooks/clerk`    | [`clerk::verify`]   | 400                         | 500          |
//! | `POST /webhooks/stripe`   | [`stripe::verify`]  | 400                         | 500          |
//! | `POST /webhooks/printify` | [`printify::verify`]| 401                         | 500          |
//!
//! Clerk and Stripe answer 400 as their originals did (and as svix/Stripe document); Printify
//! answers 401 like the original route. Every error body is `{"error": "<message>"}`.
//!
//! Each route, in order:
//! 1. resolves the client IP and enforces `WEBHOOK_IP_ALLOWLIST` (403), see [`allowlist`];
//! 2. rate-limits per client IP with `tower_governor` (429), see [`ratelimit`];
//! 3. reads the **raw** body bytes (over the limit → 413);
//! 4. verifies the signature over those bytes in constant time;
//! 5. parses the JSON (invalid → 400) and maps it to Inngest events (wrong shape → 400);
//!    unknown types → 200 `{"received":true,"ignored":"<type>"}`;
//! 6. sends the events through the [`EventSink`] with the provider's delivery id as the event
//!    `id`, so Inngest deduplicates redeliveries; 200 `{"received":true,"event_ids":[…]}`.
//!    If sending fails or times out the route answers **503** (the provider retries) and the
//!    failure goes to the optional [`FailureRecorder`] exactly once.
//!
//! # Serving
//!
//! The allowlist and rate limiter need the socket peer address, so the server **must** be started
//! with `into_make_service_with_connect_info::<SocketAddr>()` — use [`serve`] (also for a router
//! merged with others). Without it, requests are answered 500 when an allowlist or rate limit is
//! configured.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use otakumori::webhooks::{self, RecordingSink, WebhookConfig, WebhookState};
//! let config = WebhookConfig::from_env().expect("webhook config");
//! let state = WebhookState::new(Arc::new(RecordingSink::new()), config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! webhooks::serve(listener, webhooks::router(state)).await
//! # }
//! ```
//!
//! Logging goes through `tracing` only and records provider, delivery id, event names and
//! errors — never secrets, signatures or payloads.

pub mod allowlist;
pub mod clerk;
pub mod client_ip;
pub mod config;
pub mod db_recorder;
mod inngest_sink;
pub mod mapping;
pub mod printify;
pub mod ratelimit;
pub mod sink;
pub mod stripe;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use serde_json::{json, Value};

pub use allowlist::IpAllowlist;
pub use client_ip::{parse_cidr_list, ClientIp, ClientIpPolicy, InvalidCidr};
pub use config::{WebhookConfig, WebhookConfigError};
pub use db_recorder::{DbFailureRecorder, OP_WEBHOOK_FORWARD};
pub use inngest_sink::inngest_sink;
pub use mapping::{Mapped, OutEvent, PayloadError};
pub use ratelimit::RateLimit;
pub use sink::{
    to_sdk_event, EventSink, FailedEvent, FailureRecorder, IngressFailure, Provider, RecordedEvent,
    RecordingFailureRecorder, RecordingSink, SinkError,
};

/// Path of the Clerk route.
pub const CLERK_PATH: &str = "/webhooks/clerk";
/// Path of the Stripe route.
pub const STRIPE_PATH: &str = "/webhooks/stripe";
/// Path of the Printify route.
pub const PRINTIFY_PATH: &str = "/webhooks/printify";

/// Standard base64 that accepts input with or without padding.
pub(crate) const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Shared state of the webhook routes: configuration, event sink, failure hook, clock.
#[derive(Clone)]
pub struct WebhookState {
    config: Arc<WebhookConfig>,
    sink: Arc<dyn EventSink>,
    recorder: Option<Arc<dyn FailureRecorder>>,
    clock: Clock,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("config", &self.config)
            .field("failure_recorder", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookState {
    /// State sending to `sink` with `config` (see [`WebhookConfig::from_env`]).
    pub fn new(sink: Arc<dyn EventSink>, config: WebhookConfig) -> Self {
        Self {
            config: Arc::new(config),
            sink,
            recorder: None,
            clock: Arc::new(unix_now),
        }
    }

    /// Calls `recorder` once for every verified delivery whose events could not be sent.
    pub fn with_failure_recorder(mut self, recorder: Arc<dyn FailureRecorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Replaces the clock used for timestamp tolerance checks (unix seconds).
    pub fn with_clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }
}

/// The current unix time in seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The three webhook routes with body limit, rate limiting and allowlist applied. Merge it into
/// the app's router and serve with [`serve`] (it needs `ConnectInfo<SocketAddr>`).
pub fn router(state: WebhookState) -> Router {
    let policy = Arc::new(ClientIpPolicy::new(state.config.trusted_proxies.clone()));
    let gate = allowlist::IpGate {
        policy: policy.clone(),
        allowlist: state.config.allowlist.clone(),
    };
    let body_limit = state.config.body_limit;
    let rate_limit = state.config.rate_limit;
    let mut router = Router::new()
        .route(CLERK_PATH, post(clerk_route))
        .route(STRIPE_PATH, post(stripe_route))
        .route(PRINTIFY_PATH, post(printify_route))
        .with_state(state)
        .layer(DefaultBodyLimit::max(body_limit));
    if let Some(limit) = rate_limit {
        router = router.layer(ratelimit::layer(limit, policy));
    }
    router.layer(axum::middleware::from_fn_with_state(
        gate,
        allowlist::ip_gate,
    ))
}

/// Serves `app` on `listener` with `ConnectInfo<SocketAddr>` (required by [`router`]).
pub async fn serve(listener: tokio::net::TcpListener, app: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

/// [`serve`] with graceful shutdown when `signal` completes.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    app: Router,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(signal)
    .await
}

/// `{"error": message}` with `status`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(json!({ "error": message }))).into_response()
}

/// An early rejection: status plus the `{"error": ...}` message.
struct Reject {
    status: StatusCode,
    message: String,
}

impl Reject {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        error_response(self.status, self.message)
    }
}

fn read_body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, Reject> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            Reject::new(status, format!("request body exceeds {limit} bytes"))
        } else {
            Reject::new(status, "failed to read request body")
        }
    })
}

fn not_configured(provider: Provider) -> Reject {
    tracing::error!(%provider, "webhook secret not configured; rejecting delivery");
    Reject::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{provider} webhook secret not configured"),
    )
}

fn rejected(provider: Provider, status: StatusCode, err: &dyn std::error::Error) -> Reject {
    tracing::warn!(%provider, error = %err, "webhook signature rejected");
    Reject::new(status, err.to_string())
}

fn parse_json(provider: Provider, body: &[u8]) -> Result<Value, Reject> {
    serde_json::from_slice(body).map_err(|_| {
        tracing::warn!(%provider, "verified webhook body is not JSON");
        Reject::new(
            StatusCode::BAD_REQUEST,
            PayloadError::InvalidJson.to_string(),
        )
    })
}

async fn forward(
    state: &WebhookState,
    provider: Provider,
    delivery_id: &str,
    mapped: Result<Mapped, PayloadError>,
) -> Response {
    let events = match mapped {
        Err(e) => {
            tracing::warn!(%provider, delivery_id, error = %e, "webhook payload has an unexpected shape");
            return error_response(StatusCode::BAD_REQUEST, e.to_string());
        }
        Ok(Mapped::Ignored(kind)) => {
            tracing::debug!(%provider, delivery_id, kind, "webhook type ignored");
            return (
                StatusCode::OK,
                Json(json!({ "received": true, "ignored": kind })),
            )
                .into_response();
        }
        Ok(Mapped::Forward(events)) => events,
    };
    let sdk_events = events.iter().map(to_sdk_event).collect();
    let timeout = state.config.send_timeout;
    let result = match tokio::time::timeout(timeout, state.sink.send(sdk_events)).await {
        Ok(r) => r,
        Err(_) => Err(SinkError::new(format!(
            "timed out after {}",
            fmt_duration(timeout)
        ))),
    };
    match result {
        Ok(ids) => {
            for e in &events {
                tracing::info!(%provider, delivery_id, event = %e.name, "webhook forwarded to Inngest");
            }
            (
                StatusCode::OK,
                Json(json!({ "received": true, "event_ids": ids })),
            )
                .into_response()
        }
        Err(err) => {
            tracing::error!(%provider, delivery_id, error = %err, "failed to forward webhook to Inngest; asking provider to retry");
            if let Some(recorder) = &state.recorder {
                recorder
                    .record(IngressFailure {
                        provider,
                        delivery_id: delivery_id.to_string(),
                        events: events.iter().map(FailedEvent::from).collect(),
                        error: err.to_string(),
                    })
                    .await;
            }
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not forward the event to Inngest; retry later",
            )
        }
    }
}

fn fmt_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

async fn clerk_route(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    clerk_delivery(&state, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn clerk_delivery(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Reject> {
    let provider = Provider::Clerk;
    let body = read_body(body, state.config.body_limit)?;
    let secret = state
        .config
        .clerk_secret
        .as_ref()
        .ok_or_else(|| not_configured(provider))?;
    let now = (state.clock)();
    clerk::verify_headers(
        secret,
        headers,
        &body,
        now,
        state.config.svix_tolerance_secs,
    )
    .map_err(|e| rejected(provider, StatusCode::BAD_REQUEST, &e))?;
    let svix_id = headers
        .get(clerk::SVIX_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim();
    let payload = parse_json(provider, &body)?;
    let mapped = clerk::map_event(svix_id, &payload);
    Ok(forward(state, provider, svix_id, mapped).await)
}

async fn stripe_route(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    stripe_delivery(&state, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn stripe_delivery(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Reject> {
    let provider = Provider::Stripe;
    let body = read_body(body, state.config.body_limit)?;
    let secret = state
        .config
        .stripe_secret
        .as_ref()
        .ok_or_else(|| not_configured(provider))?;
    let now = (state.clock)();
    stripe::verify_headers(
        secret,
        headers,
        &body,
        now,
        state.config.stripe_tolerance_secs,
    )
    .map_err(|e| rejected(provider, StatusCode::BAD_REQUEST, &e))?;
    let payload = parse_json(provider, &body)?;
    let event_id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mapped = stripe::map_event(&payload);
    Ok(forward(state, provider, event_id, mapped).await)
}

async fn printify_route(
    State(state): State<WebhookState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    printify_delivery(&state, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn printify_delivery(
    state: &WebhookState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Reject> {
    let provider = Provider::Printify;
    let body = read_body(body, state.config.body_limit)?;
    let secret = state
        .config
        .printify_secret
        .as_ref()
        .ok_or_else(|| not_configured(provider))?;
    printify::verify_headers(secret, headers, &body)
        .map_err(|e| rejected(provider, StatusCode::UNAUTHORIZED, &e))?;
    let payload = parse_json(provider, &body)?;
    let delivery_id = payload
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mapped = printify::map_event(&payload);
    Ok(forward(state, provider, delivery_id, mapped).await)
}
