//! The SDK conformance fixture: the same functions as the official Go fixture of the Inngest
//! conformance runner (`tests/conformance/golang` in inngest/inngest) — ids, events, step names
//! and behaviour — so `inngest alpha conformance` (serve transport) can drive this SDK.
//!
//! ```text
//! cargo run --example conformance            # http://127.0.0.1:3000/api/inngest
//! PORT=3100 cargo run --example conformance
//! ```
//!
//! Defaults, as in the Go fixture: dev mode (`INNGEST_DEV=1`), in-band sync allowed,
//! `INNGEST_SIGNING_KEY=7468697320697320612074657374206b6579`, `INNGEST_EVENT_KEY=test`; any of
//! these environment variables, when set, wins. Also serves `GET /api/introspect` (same handler)
//! and `GET /health` like the Go fixture. `RUST_LOG` controls logging (default `info`).
//!
//! `tests/protocol_conformance.rs` includes this file and drives [`functions`] with the request
//! sequences the conformance runner checks.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{
    serve, Cancel, ConfigError, Ctx, Error, Event, Function, Inngest, Step, Trigger, WaitForEvent,
};
use serde_json::{json, Value};

/// The Go fixture's app id.
pub const APP_ID: &str = "conformance-golang";

/// Environment defaults of the Go fixture.
pub fn env_default(name: &str) -> Option<&'static str> {
    match name {
        "INNGEST_DEV" => Some("1"),
        "INNGEST_SIGNING_KEY" => Some("7468697320697320612074657374206b6579"),
        "INNGEST_EVENT_KEY" => Some("test"),
        "INNGEST_ALLOW_IN_BAND_SYNC" => Some("true"),
        _ => None,
    }
}

/// The client: the process environment, then the fixture's defaults.
pub fn client_from_env() -> Result<Inngest, ConfigError> {
    client_with_env(|name| std::env::var(name).ok())
}

/// The client configured from `lookup` (an environment), then the fixture's defaults.
pub fn client_with_env(
    lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> Result<Inngest, ConfigError> {
    Inngest::builder(APP_ID)
        .env_source(move |name| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| env_default(name).map(str::to_owned))
        })
        .build()
}

/// `{"name": <event name>, "body": "ok"}`, what most fixture functions return.
fn ok_body(event: &Event<Value>) -> Value {
    json!({ "name": event.name, "body": "ok" })
}

/// The fixture's functions. Each call builds fresh retry counters (the Go fixture keeps them per
/// process), so every app instance starts at "first attempt fails".
pub fn functions() -> Vec<Function> {
    let step_attempts = Arc::new(AtomicU32::new(0));
    let function_attempts = Arc::new(AtomicU32::new(0));

    let simple = Function::new("test-suite-simple-fn")
        .trigger(Trigger::event("tests/function.test"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ok_body(&ctx.event)) });

    let steps = Function::new("test-suite-step-test")
        .trigger(Trigger::event("tests/step.test"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let first: String = step
                .run("first step", || async { Ok("first step".to_owned()) })
                .await?;
            step.sleep("sleep", Duration::from_secs(2)).await;
            let _second: Value = step
                .run("second step", || async move {
                    Ok(json!({ "first": first, "second": true }))
                })
                .await?;
            Ok(ok_body(&ctx.event))
        });

    // The step fails on its first execution and succeeds on the retry; then the function body
    // fails once and succeeds on its retry.
    let retry = Function::new("test-suite-retry-test")
        .trigger(Trigger::event("tests/retry.test"))
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let step_attempts = step_attempts.clone();
            let function_attempts = function_attempts.clone();
            async move {
                let _first: String = step
                    .run("first step", || async move {
                        match step_attempts.fetch_add(1, Ordering::SeqCst) + 1 {
                            1 => Err(Error::msg("broken")),
                            _ => Ok("yes: 2".to_owned()),
                        }
                    })
                    .await?;
                if function_attempts.fetch_add(1, Ordering::SeqCst) + 1 == 1 {
                    return Err(Error::msg("broken func"));
                }
                Ok(ok_body(&ctx.event))
            }
        });

    let cancel = Function::new("test-suite-cancel-test")
        .trigger(Trigger::event("tests/cancel.test"))
        .cancel_on(
            Cancel::new("cancel/please").if_expr("async.data.request_id == event.data.request_id"),
        )
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            step.sleep("sleep", Duration::from_secs(10)).await;
            let _after: String = step
                .run("After the sleep", || async {
                    Ok(
                        "This should be cancelled if a matching cancel event is received"
                            .to_owned(),
                    )
                })
                .await?;
            Ok(ok_body(&ctx.event))
        });

    let wait = Function::new("test-suite-wait-for-event")
        .trigger(Trigger::event("tests/wait.test"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let resumed: Option<Event<Value>> = step
                .wait_for_event(
                    "wait",
                    WaitForEvent::new("test/resume", Duration::from_secs(10))
                        .if_expr("async.data.resume == true && async.data.id == event.data.id"),
                )
                .await?;
            Ok(match resumed {
                // The runner expects the resume event's payload under `result`.
                Some(event) => json!({ "result": event.data }),
                None => json!({}),
            })
        });

    vec![simple, steps, retry, cancel, wait]
}

/// The fixture's routes: the serve endpoint at `/api/inngest`, the same handler at
/// `/api/introspect`, and `GET /health` answering `ok`.
pub fn router(client: &Inngest) -> Result<axum::Router, inngest_sdk::ServeError> {
    let handler = ServeHandler::new(client, functions())?;
    let introspect = handler.clone();
    let extra = axum::Router::new()
        .route(
            "/api/introspect",
            axum::routing::any(move |req: axum::extract::Request| {
                let handler = introspect.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let limit = handler.client().config().max_body_bytes();
                    let bytes = axum::body::to_bytes(body, limit).await.unwrap_or_default();
                    let res = handler
                        .handle(http::Request::from_parts(parts, bytes))
                        .await;
                    let (parts, body) = res.into_parts();
                    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
                }
            }),
        )
        .route("/health", axum::routing::get(|| async { "ok" }));
    Ok(serve::axum::router_from_handler(handler).merge(extra))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let client = client_from_env()?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        app_id = APP_ID,
        mode = client.config().mode().as_str(),
        url = %format!("http://{}/api/inngest", listener.local_addr()?),
        "starting the conformance fixture"
    );
    axum::serve(listener, router(&client)?).await?;
    Ok(())
}
