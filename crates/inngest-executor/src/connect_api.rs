//! The connect gateway's routes (the state is in [`crate::connect`]): `POST /v0/connect/start`
//! and `POST /v0/connect/flush` on the API (bearer-checked like the rest of it when a signing key
//! is set), and the worker's WebSocket at `GET /v0/connect` (subprotocol
//! `v0.connect.inngest.com`), authenticated by the session token the start call handed out.
//!
//! The socket speaks the server's protocol: `GATEWAY_HELLO`, then the worker's `WORKER_CONNECT`
//! (checked as the server checks it: a ULID connection id, an instance id, 1 to 100 apps, valid
//! function configs), the apps synced as a `/fn/register` would sync them (`url`
//! `ws://connect?app_name=<app>`, `deployType: "connect"`), `GATEWAY_CONNECTION_READY` with the
//! intervals, then heartbeats, acks, lease extensions and replies. A frame that is not a
//! `ConnectMessage` (or a text frame) closes the socket with 1008 and
//! `connect_run_invalid_message`; a bad ack or lease payload with the server's own syscodes.
//! Closing reasons are kept ([`crate::Executor::connect_closed`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prost::Message as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::connect::{Conn, Outbound, Phase};
use crate::shared::Inner;
use inngest_protocol::connect::{
    self as pc, frame, ConnectMessage, GatewayConnectionReadyData, GatewayMessageType as Kind,
    SdkResponse, StartRequest, StartResponse, SystemError, WorkerConnectRequestData,
    WorkerDisconnectReason, WorkerReplyAckData, WorkerRequestAckData,
    WorkerRequestExtendLeaseAckData, WorkerRequestExtendLeaseData,
};

type Shared = Arc<Inner>;

/// Largest number of apps one connection may carry (the server's maximum).
const MAX_APPS: usize = 100;
/// The gateway group this executor reports.
const GATEWAY_GROUP: &str = "gw-local";
/// WebSocket close codes.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_INTERNAL: u16 = 1011;

/// `POST /v0/connect/start` and `/flush` (bearer-checked by the caller).
pub(crate) fn api_routes() -> Router<Shared> {
    Router::new()
        .route(pc::START_PATH, post(start))
        .route(pc::FLUSH_PATH, post(flush))
}

/// `GET /v0/connect`, the worker's socket.
pub(crate) fn socket_routes() -> Router<Shared> {
    Router::new().route(pc::GATEWAY_PATH, get(upgrade))
}

fn protobuf(msg: &impl prost::Message) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        msg.encode_to_vec(),
    )
        .into_response()
}

fn public_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"status": status.as_u16(), "error": message})),
    )
        .into_response()
}

async fn start(State(inner): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let req = match StartRequest::decode(body.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            return public_error(
                StatusCode::BAD_REQUEST,
                &format!("could not unmarshal request: {e}"),
            )
        }
    };
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or("127.0.0.1:8288");
    let sync_token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .to_owned();
    let connection_id = ulid::Ulid::new().to_string();
    let session_token = inner.connect.issue_session(&connection_id);
    tracing::debug!(connection = %connection_id, excluded = ?req.exclude_gateways, "connect start");
    protobuf(&StartResponse {
        connection_id,
        gateway_endpoint: format!("ws://{host}{}", pc::GATEWAY_PATH),
        gateway_group: GATEWAY_GROUP.to_owned(),
        session_token,
        sync_token,
    })
}

async fn flush(State(inner): State<Shared>, body: Bytes) -> Response {
    if body.is_empty() {
        return public_error(StatusCode::BAD_REQUEST, "missing request body");
    }
    let reply = match SdkResponse::decode(body.as_ref()) {
        Ok(r) => r,
        Err(e) => {
            return public_error(
                StatusCode::BAD_REQUEST,
                &format!("could not unmarshal request: {e}"),
            )
        }
    };
    let request_id = reply.request_id.clone();
    if !inner.connect.reply(reply) {
        tracing::debug!(request = %request_id, "flushed connect reply for a request nobody waits on");
    }
    protobuf(&pc::FlushResponse { request_id })
}

async fn upgrade(State(inner): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.protocols([pc::GATEWAY_SUBPROTOCOL])
        .on_upgrade(move |socket| async move {
            Session::run(inner, socket).await;
        })
}

/// How a socket ended: a close to send (code, reason) or none, and the reason to record.
struct End {
    close: Option<(u16, String)>,
    reason: String,
}

impl End {
    fn close(code: u16, reason: &str) -> Self {
        End {
            close: Some((code, reason.to_owned())),
            reason: reason.to_owned(),
        }
    }
    fn silent(reason: &str) -> Self {
        End {
            close: None,
            reason: reason.to_owned(),
        }
    }
}

/// One worker socket.
struct Session {
    inner: Shared,
    socket: WebSocket,
    conn_id: String,
}

impl Session {
    async fn run(inner: Shared, socket: WebSocket) {
        let mut session = Session {
            inner,
            socket,
            conn_id: String::new(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let end = match session.handshake(tx).await {
            Ok(()) => session.serve(rx).await,
            Err(end) => end,
        };
        if let Some((code, reason)) = &end.close {
            let _ = session
                .socket
                .send(WsMessage::Close(Some(CloseFrame {
                    code: *code,
                    reason: reason.clone().into(),
                })))
                .await;
        }
        if !session.conn_id.is_empty() {
            session.inner.connect.remove(&session.conn_id, &end.reason);
        }
    }

    async fn send(&mut self, bytes: Vec<u8>) -> bool {
        self.socket
            .send(WsMessage::Binary(bytes.into()))
            .await
            .is_ok()
    }

    /// `GATEWAY_HELLO`, `WORKER_CONNECT`, the sync, `GATEWAY_CONNECTION_READY`.
    async fn handshake(&mut self, tx: mpsc::UnboundedSender<Outbound>) -> Result<(), End> {
        if !self.send(frame::empty(Kind::GatewayHello)).await {
            return Err(End::silent("UNEXPECTED"));
        }
        let config = self.inner.settings.connect.clone();
        let first = match tokio::time::timeout(config.handshake_timeout, self.socket.recv()).await {
            Err(_) => return Err(End::close(CLOSE_POLICY, "connect_worker_hello_timeout")),
            Ok(None | Some(Err(_))) => return Err(End::silent("UNEXPECTED")),
            Ok(Some(Ok(m))) => m,
        };
        let invalid_payload = || End::close(CLOSE_POLICY, "connect_worker_hello_invalid_payload");
        let WsMessage::Binary(bytes) = first else {
            return Err(End::close(CLOSE_POLICY, "connect_worker_hello_invalid_msg"));
        };
        let msg = frame::decode(&bytes)
            .map_err(|_| End::close(CLOSE_POLICY, "connect_worker_hello_invalid_msg"))?;
        if msg.kind() != Kind::WorkerConnect {
            return Err(End::close(CLOSE_POLICY, "connect_worker_hello_invalid_msg"));
        }
        let data: WorkerConnectRequestData =
            frame::payload(&msg, "WorkerConnectRequestData").map_err(|_| invalid_payload())?;
        if ulid::Ulid::from_string(&data.connection_id).is_err() || data.instance_id.is_empty() {
            return Err(invalid_payload());
        }
        let token = data
            .auth_data
            .as_ref()
            .map(|a| a.session_token.as_str())
            .unwrap_or("");
        if !self.inner.connect.claim_session(token, &data.connection_id) {
            return Err(End::close(CLOSE_POLICY, "connect_authentication_failed"));
        }
        if data.apps.is_empty() {
            return Err(invalid_payload());
        }
        if data.apps.len() > MAX_APPS {
            return Err(End::close(
                CLOSE_POLICY,
                "connect_too_many_apps_per_connection",
            ));
        }
        let apps = self.sync(&data).await?;
        self.conn_id = data.connection_id.clone();
        let phase = if data.worker_manual_readiness_ack {
            Phase::Connected
        } else {
            Phase::Ready
        };
        self.inner.connect.add(
            Conn {
                id: data.connection_id.clone(),
                instance_id: data.instance_id.clone(),
                apps,
                sdk: format!("{}:{}", data.sdk_language, data.sdk_version),
                phase: Phase::Connected,
                tx,
                connected_at: chrono::Utc::now(),
            },
            data.max_worker_concurrency,
        );
        let ready = GatewayConnectionReadyData {
            heartbeat_interval: go_duration(config.heartbeat_interval),
            extend_lease_interval: go_duration(config.extend_lease_interval),
            status_interval: "0s".to_owned(),
        };
        if !self
            .send(frame::encode(Kind::GatewayConnectionReady, &ready))
            .await
        {
            return Err(End::silent("UNEXPECTED"));
        }
        if phase == Phase::Ready {
            self.inner.connect.set_phase(&self.conn_id, Phase::Ready);
        }
        tracing::info!(connection = %self.conn_id, instance = %data.instance_id, "connect worker connected");
        Ok(())
    }

    /// Registers each app of the connect request; a refused one ends the handshake with
    /// `SYNC_FAILED`.
    async fn sync(&mut self, data: &WorkerConnectRequestData) -> Result<Vec<String>, End> {
        let capabilities: Value = serde_json::from_slice(&data.capabilities).unwrap_or(json!({}));
        let mut names = Vec::new();
        for app in &data.apps {
            let functions: Value = match serde_json::from_slice(&app.functions) {
                Ok(v @ Value::Array(_)) => v,
                _ => {
                    return Err(self
                        .sync_failed(
                            "connect_invalid_function_config",
                            &format!("app `{}`: functions are not a JSON array", app.app_name),
                        )
                        .await)
                }
            };
            let payload = json!({
                "url": format!("ws://connect?app_name={}", urlencode(&app.app_name)),
                "appName": app.app_name,
                "appVersion": app.app_version,
                "deployType": "connect",
                "sdk": format!("{}:{}", data.sdk_language, data.sdk_version),
                "framework": data.framework,
                "capabilities": capabilities,
                "functions": functions,
                "v": "1",
            });
            if let Err(errors) = self.inner.register(&payload) {
                return Err(self
                    .sync_failed("connect_invalid_function_config", &errors.join("; "))
                    .await);
            }
            names.push(app.app_name.clone());
        }
        Ok(names)
    }

    async fn sync_failed(&mut self, code: &str, message: &str) -> End {
        tracing::warn!(code, message, "connect worker's apps could not be synced");
        let err = SystemError {
            code: code.to_owned(),
            data: None,
            message: message.to_owned(),
        };
        let _ = self.send(frame::encode(Kind::SyncFailed, &err)).await;
        End::close(CLOSE_POLICY, code)
    }

    /// The run loop after the handshake.
    async fn serve(&mut self, mut rx: mpsc::UnboundedReceiver<Outbound>) -> End {
        let config = self.inner.settings.connect.clone();
        let silence_limit = config.heartbeat_interval * config.heartbeat_misses.max(1);
        let mut last_heartbeat = Instant::now();
        let mut check = tokio::time::interval(config.heartbeat_interval);
        check.tick().await;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let drain_sleep = async {
                match drain_deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                incoming = self.socket.recv() => {
                    let msg = match incoming {
                        None | Some(Err(_)) => return End::silent(if drain_deadline.is_some() { "GATEWAY_DRAINING" } else { "UNEXPECTED" }),
                        Some(Ok(m)) => m,
                    };
                    match msg {
                        WsMessage::Binary(bytes) => {
                            let Ok(msg) = frame::decode(&bytes) else {
                                tracing::warn!(connection = %self.conn_id, "connect worker sent a frame that is not a ConnectMessage");
                                return End::close(CLOSE_POLICY, "connect_run_invalid_message");
                            };
                            if msg.kind() == Kind::WorkerHeartbeat {
                                last_heartbeat = Instant::now();
                            }
                            if let Err(end) = self.handle(&msg, &config).await {
                                return end;
                            }
                        }
                        WsMessage::Close(frame) => {
                            let reason = frame
                                .map(|f| f.reason.to_string())
                                .filter(|r| !r.is_empty())
                                .unwrap_or_else(|| if drain_deadline.is_some() { "GATEWAY_DRAINING".to_owned() } else { "UNEXPECTED".to_owned() });
                            return End::silent(&reason);
                        }
                        WsMessage::Text(_) => {
                            tracing::warn!(connection = %self.conn_id, "connect worker sent a text frame");
                            return End::close(CLOSE_POLICY, "connect_run_invalid_message");
                        }
                        WsMessage::Ping(_) | WsMessage::Pong(_) => {}
                    }
                }
                out = rx.recv() => match out {
                    Some(Outbound::Frame(bytes)) => {
                        if !self.send(bytes).await {
                            return End::silent("UNEXPECTED");
                        }
                    }
                    Some(Outbound::Drop) | None => return End::silent("UNEXPECTED"),
                    Some(Outbound::Drain) => {
                        if drain_deadline.is_none() {
                            self.inner.connect.set_phase(&self.conn_id, Phase::Draining);
                            if !self.send(frame::empty(Kind::GatewayClosing)).await {
                                return End::silent("GATEWAY_DRAINING");
                            }
                            drain_deadline = Some(Instant::now() + config.drain_ack_timeout);
                        }
                    }
                },
                _ = check.tick() => {
                    if last_heartbeat.elapsed() > silence_limit {
                        tracing::info!(connection = %self.conn_id, "connect worker missed consecutive heartbeats");
                        let reason = WorkerDisconnectReason::ConsecutiveHeartbeatsMissed.as_str_name();
                        return End::close(CLOSE_POLICY, reason);
                    }
                }
                () = drain_sleep => {
                    return End::close(CLOSE_GOING_AWAY, pc::CLOSE_REASON_GATEWAY_CLOSING);
                }
            }
        }
    }

    /// One frame from the worker.
    async fn handle(
        &mut self,
        msg: &ConnectMessage,
        config: &crate::connect::GatewayConfig,
    ) -> Result<(), End> {
        let hub = &self.inner.connect;
        match msg.kind() {
            Kind::WorkerReady => {
                if hub.phase(&self.conn_id) == Some(Phase::Connected) {
                    hub.set_phase(&self.conn_id, Phase::Ready);
                }
            }
            Kind::WorkerHeartbeat => {
                if !self.send(frame::empty(Kind::GatewayHeartbeat)).await {
                    return Err(End::silent("UNEXPECTED"));
                }
            }
            Kind::WorkerPause => {
                tracing::info!(connection = %self.conn_id, "connect worker paused (draining)");
                hub.set_phase(&self.conn_id, Phase::Draining);
            }
            Kind::WorkerRequestAck => {
                let ack: WorkerRequestAckData = frame::payload(msg, "WorkerRequestAckData")
                    .map_err(|_| {
                        End::close(CLOSE_POLICY, "connect_worker_request_ack_invalid_payload")
                    })?;
                if !hub.ack(&self.conn_id, &ack.request_id) {
                    tracing::warn!(connection = %self.conn_id, request = %ack.request_id, "worker request ack received for unknown request ID");
                }
            }
            Kind::WorkerRequestExtendLease => {
                let ext: WorkerRequestExtendLeaseData =
                    frame::payload(msg, "WorkerRequestExtendLeaseData").map_err(|_| {
                        End::close(
                            CLOSE_POLICY,
                            "connect_worker_request_extend_lease_invalid_payload",
                        )
                    })?;
                if ulid::Ulid::from_string(&ext.lease_id).is_err() {
                    return Err(End::close(
                        CLOSE_POLICY,
                        "connect_worker_request_extend_lease_invalid_payload",
                    ));
                }
                let new_lease_id =
                    hub.extend_lease(&ext.request_id, &ext.lease_id, config.lease_duration);
                if new_lease_id.is_none() {
                    tracing::warn!(request = %ext.request_id, "lease was claimed by other worker, expired, or worker does not exist");
                }
                let ack = WorkerRequestExtendLeaseAckData {
                    request_id: ext.request_id,
                    account_id: ext.account_id,
                    env_id: ext.env_id,
                    app_id: ext.app_id,
                    function_slug: ext.function_slug,
                    new_lease_id,
                };
                if !self
                    .send(frame::encode(Kind::WorkerRequestExtendLeaseAck, &ack))
                    .await
                {
                    return Err(End::silent("UNEXPECTED"));
                }
            }
            Kind::WorkerReply => {
                let reply: SdkResponse = frame::payload(msg, "SDKResponse")
                    .map_err(|_| End::close(CLOSE_INTERNAL, "connect_internal_error"))?;
                let request_id = reply.request_id.clone();
                if !hub.reply(reply) {
                    tracing::debug!(request = %request_id, "connect reply for a request nobody waits on (duplicate or expired)");
                }
                let ack = WorkerReplyAckData { request_id };
                if !self.send(frame::encode(Kind::WorkerReplyAck, &ack)).await {
                    return Err(End::silent("UNEXPECTED"));
                }
            }
            Kind::WorkerStatus => {
                tracing::debug!(connection = %self.conn_id, "connect worker status");
            }
            other => {
                tracing::warn!(connection = %self.conn_id, kind = other.as_str_name(), "unexpected message kind received");
            }
        }
        Ok(())
    }
}

/// A Go duration string (`10s`, `250ms`, `1m30s`) as the server sends them.
fn go_duration(d: Duration) -> String {
    if d.subsec_millis() > 0 && d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    if d.subsec_nanos() > 0 {
        return format!("{}ms", d.as_millis());
    }
    inngest_protocol::timestr::format_go(d)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_go_strings() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(go_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1500ms");
    }
}
