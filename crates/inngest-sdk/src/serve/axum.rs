//! The serve endpoint as an axum `Router`.
//!
//! ```no_run
//! use inngest_sdk::{serve, Ctx, Function, Inngest, Step, Trigger};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Inngest::new("my-app")?;
//! let hello = Function::new("hello")
//!     .trigger(Trigger::event("demo/hello"))
//!     .handler(|_ctx: Ctx<serde_json::Value>, _step: Step| async move { Ok("hi") });
//! let app = axum::Router::new().merge(serve::axum::router(&client, [hello])?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! With [streaming](crate::client::InngestBuilder::streaming) on, an execution call runs on its
//! own tokio task; if it has not answered within the
//! [threshold](crate::client::InngestBuilder::streaming_threshold), the router answers `201` with
//! the SDK headers, writes a space at once and one every
//! [interval](crate::client::InngestBuilder::streaming_interval), and ends with the answer as a
//! [`stream_envelope`](super::stream_envelope). If the client goes away meanwhile, the call still
//! runs to its end (its answer is dropped).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{error_response, ServeError, ServeHandler};
use crate::client::Inngest;
use crate::function::Function;

/// The default mount path.
pub const DEFAULT_PATH: &str = "/api/inngest";

/// A `Router` answering GET/PUT/POST at `/api/inngest` (or the client's `serve_path`).
///
/// Merge it into your app with `Router::merge`. Invalid or duplicate functions are an error here,
/// at startup, not at the first request.
pub fn router(
    client: &Inngest,
    functions: impl IntoIterator<Item: Into<Function>>,
) -> Result<Router, ServeError> {
    let handler = ServeHandler::new(client, functions)?;
    Ok(router_from_handler(handler))
}

/// A `Router` around an existing [`ServeHandler`].
pub fn router_from_handler(handler: ServeHandler) -> Router {
    let path = handler
        .client()
        .config()
        .serve_path()
        .map(str::to_owned)
        .filter(|p| p.starts_with('/'))
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    let limit = handler.client().config().max_body_bytes();
    Router::new()
        .route(&path, any(handle))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(handler)
}

async fn handle(
    State(handler): State<ServeHandler>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let limit = handler.client().config().max_body_bytes();
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return into_axum(error_response(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                &format!("request body is over the {limit}-byte limit"),
                true,
                None,
            ))
        }
    };
    let req = http::Request::from_parts(parts, bytes);
    if !handler.streams(&req) {
        return into_axum(handler.handle(req).await);
    }
    let head = handler.stream_head(&req);
    let config = handler.client().config();
    let (threshold, interval) = (config.streaming_threshold(), config.streaming_interval());
    let mut call =
        tokio::spawn(async move { handler.handle(req).await }.instrument(tracing::Span::current()));
    match tokio::time::timeout(threshold, &mut call).await {
        Ok(done) => into_axum(finished(done)),
        Err(_) => {
            tracing::debug!("execution call still running at the streaming threshold: streaming");
            let (parts, _) = head.into_parts();
            let body = Body::from_stream(KeepAlive::new(call, interval));
            (parts, body).into_response()
        }
    }
}

/// The answer of a call's task; a task that panicked outside the user's code (which is caught
/// in the call) is a retriable 500.
fn finished(done: Result<super::Response, tokio::task::JoinError>) -> super::Response {
    done.unwrap_or_else(|_| {
        tracing::error!("execution task failed");
        error_response(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "execution task failed",
            false,
            None,
        )
    })
}

/// The body of a streamed answer: [`KEEPALIVE`](super::KEEPALIVE) at once and at every tick
/// while the call runs, then its [`stream_envelope`](super::stream_envelope), then the end.
struct KeepAlive {
    call: Option<JoinHandle<super::Response>>,
    ticks: tokio::time::Interval,
}

impl KeepAlive {
    fn new(call: JoinHandle<super::Response>, interval: std::time::Duration) -> KeepAlive {
        // The first tick is immediate: a space goes out with the 201.
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        KeepAlive {
            call: Some(call),
            ticks,
        }
    }
}

impl futures_util::Stream for KeepAlive {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(call) = this.call.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(done) = Pin::new(call).poll(cx) {
            this.call = None;
            let envelope = super::stream_envelope(&finished(done));
            return Poll::Ready(Some(Ok(envelope)));
        }
        match this.ticks.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(super::KEEPALIVE)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        if self.call.is_some() {
            // Dropping the JoinHandle detaches the task: the call runs to its end.
            tracing::warn!(
                "the client closed a streamed answer before it was complete; \
                 the call runs on and its answer is dropped"
            );
        }
    }
}

fn into_axum(res: super::Response) -> axum::response::Response {
    let (parts, body) = res.into_parts();
    (parts, Body::from(body)).into_response()
}
