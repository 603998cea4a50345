//! Dialing the gateway (plain `ws://` or `wss://` through rustls with the webpki roots, the
//! `v0.connect.inngest.com` subprotocol) and the handshake: `GATEWAY_HELLO`, our
//! `WORKER_CONNECT`, then `GATEWAY_CONNECTION_READY` with the intervals (or `SYNC_FAILED`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use inngest_protocol::connect::frame::{self, FrameError};
use inngest_protocol::connect::{
    GatewayConnectionReadyData, GatewayMessageType as Kind, IntervalError, ReadyIntervals,
    SystemError, WorkerConnectRequestData, GATEWAY_SUBPROTOCOL,
};

/// The socket to the gateway.
pub(super) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long the worker waits for the gateway during the handshake (the JS SDK's 10 s).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    #[error("could not open the WebSocket to {endpoint}: {message}")]
    Dial { endpoint: String, message: String },
    #[error("the gateway closed the socket during the handshake{0}")]
    Closed(String),
    #[error("expected {expected} during the handshake, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("bad frame during the handshake: {0}")]
    BadFrame(#[from] FrameError),
    #[error("the gateway could not sync the app ({code}): {message}")]
    SyncFailed { code: String, message: String },
    #[error("no answer from the gateway within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    BadReady(#[from] IntervalError),
}

fn tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the socket.
pub(super) async fn dial(endpoint: &str) -> Result<Ws, HandshakeError> {
    let fail = |message: String| HandshakeError::Dial {
        endpoint: endpoint.to_owned(),
        message,
    };
    let mut req = endpoint
        .into_client_request()
        .map_err(|e| fail(e.to_string()))?;
    req.headers_mut().insert(
        http::header::SEC_WEBSOCKET_PROTOCOL,
        http::HeaderValue::from_static(GATEWAY_SUBPROTOCOL),
    );
    let connector = if endpoint.starts_with("wss:") {
        tokio_tungstenite::Connector::Rustls(tls().map_err(fail)?)
    } else {
        tokio_tungstenite::Connector::Plain
    };
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector));
    let (ws, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| fail(format!("no answer within {HANDSHAKE_TIMEOUT:?}")))?
        .map_err(|e| fail(e.to_string()))?;
    Ok(ws)
}

/// The next binary frame, decoded.
async fn next_frame(
    ws: &mut Ws,
) -> Result<inngest_protocol::connect::ConnectMessage, HandshakeError> {
    loop {
        let msg = tokio::time::timeout(HANDSHAKE_TIMEOUT, ws.next())
            .await
            .map_err(|_| HandshakeError::Timeout(HANDSHAKE_TIMEOUT))?;
        match msg {
            None => return Err(HandshakeError::Closed(String::new())),
            Some(Err(e)) => return Err(HandshakeError::Closed(format!(": {e}"))),
            Some(Ok(Message::Binary(bytes))) => return Ok(frame::decode(&bytes)?),
            Some(Ok(Message::Close(close))) => {
                let why = close
                    .map(|c| format!(" ({} {})", u16::from(c.code), c.reason))
                    .unwrap_or_default();
                return Err(HandshakeError::Closed(why));
            }
            Some(Ok(Message::Text(_))) => {
                return Err(HandshakeError::Unexpected {
                    expected: "a binary frame",
                    got: "a text frame".to_owned(),
                })
            }
            Some(Ok(_)) => {}
        }
    }
}

/// Runs the handshake on a fresh socket.
pub(super) async fn handshake(
    ws: &mut Ws,
    connect: &WorkerConnectRequestData,
) -> Result<ReadyIntervals, HandshakeError> {
    let hello = next_frame(ws).await?;
    if hello.kind() != Kind::GatewayHello {
        return Err(HandshakeError::Unexpected {
            expected: "GATEWAY_HELLO",
            got: hello.kind().as_str_name().to_owned(),
        });
    }
    ws.send(Message::Binary(
        frame::encode(Kind::WorkerConnect, connect).into(),
    ))
    .await
    .map_err(|e| HandshakeError::Closed(format!(": {e}")))?;
    let ready = next_frame(ws).await?;
    match ready.kind() {
        Kind::GatewayConnectionReady => {
            let data: GatewayConnectionReadyData =
                frame::payload(&ready, "GatewayConnectionReadyData")?;
            Ok(ReadyIntervals::parse(&data)?)
        }
        Kind::SyncFailed => {
            let err: SystemError = frame::payload(&ready, "SystemError")?;
            Err(HandshakeError::SyncFailed {
                code: err.code,
                message: err.message,
            })
        }
        other => Err(HandshakeError::Unexpected {
            expected: "GATEWAY_CONNECTION_READY",
            got: other.as_str_name().to_owned(),
        }),
    }
}
