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

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::IntoResponse;
use axum::routing::any;
use axum::Router;

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
    let res = handler
        .handle(http::Request::from_parts(parts, bytes))
        .await;
    into_axum(res)
}

fn into_axum(res: super::Response) -> axum::response::Response {
    let (parts, body) = res.into_parts();
    (parts, Body::from(body)).into_response()
}
