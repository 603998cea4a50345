//! The realtime routes (see [`crate::realtime`] for the semantics): publish and token behind
//! the API's bearer check, and the subscriber's WebSocket, which carries its token in the query.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::realtime::{Grant, Publish};
use crate::shared::Inner;

/// How often a subscriber's socket is pinged.
const PING_EVERY: Duration = Duration::from_secs(30);

type Shared = Arc<Inner>;

/// `POST /v1/realtime/publish` and `POST /v1/realtime/token` (bearer-checked by the caller).
pub(crate) fn api_routes() -> Router<Shared> {
    Router::new()
        .route("/v1/realtime/publish", post(publish))
        .route("/v1/realtime/token", post(token))
}

/// `GET /v1/realtime/connect?token=…`.
pub(crate) fn subscriber_routes() -> Router<Shared> {
    Router::new().route("/v1/realtime/connect", get(connect))
}

/// The first value of each query parameter named in `names`.
fn query_values<const N: usize>(query: Option<&str>, names: [&str; N]) -> [Option<String>; N] {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if let Some(i) = names.iter().position(|n| *n == k) {
            out[i].get_or_insert_with(|| v.into_owned());
        }
    }
    out
}

async fn publish(State(inner): State<Shared>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let [channel, topic, run_id] = query_values(query.as_deref(), ["channel", "topic", "run_id"]);
    let (Some(channel), Some(topic)) = (
        channel.filter(|c| !c.is_empty()),
        topic.filter(|t| !t.is_empty()),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            "a publish needs `channel` and `topic` query parameters",
        )
            .into_response();
    };
    let fn_slug = run_id.as_deref().and_then(|id| {
        let st = inner.lock();
        st.runs.get(id).map(|r| r.function.slug.clone())
    });
    let p = Publish {
        channel: &channel,
        topic: &topic,
        run_id: run_id.as_deref(),
        fn_slug: fn_slug.as_deref(),
    };
    inner.realtime.publish(&p, &body, inner.now());
    tracing::debug!(channel = %channel, topic = %topic, "realtime message published");
    StatusCode::OK.into_response()
}

async fn token(State(inner): State<Shared>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Topic {
        channel: String,
        name: String,
    }
    let Ok(topics) = serde_json::from_slice::<Vec<Topic>>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            "Invalid request: must provide a list of topics",
        )
            .into_response();
    };
    let topics = topics.into_iter().map(|t| (t.channel, t.name)).collect();
    let jwt = inner.realtime.grant(topics, inner.now());
    (StatusCode::CREATED, axum::Json(json!({ "jwt": jwt }))).into_response()
}

async fn connect(
    State(inner): State<Shared>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let [token] = query_values(query.as_deref(), ["token"]);
    let Some(grant) = token.and_then(|t| inner.realtime.redeem(&t, inner.now())) else {
        return (StatusCode::UNAUTHORIZED, "a valid `token` is required").into_response();
    };
    let feed = inner.realtime.subscribe();
    ws.on_upgrade(move |socket| forward(socket, grant, feed))
}

/// Sends the subscriber each message its grant allows, pings it, and stops when it leaves.
async fn forward(
    mut socket: WebSocket,
    grant: Grant,
    mut feed: tokio::sync::broadcast::Receiver<crate::realtime::Message>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = feed.recv() => match message {
                Ok(m) if grant.allows(&m) => {
                    if socket.send(Frame::Text(m.json.as_ref().into())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "a realtime subscriber fell behind; messages dropped");
                }
                Err(RecvError::Closed) => break,
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Frame::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if socket.send(Frame::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
}
