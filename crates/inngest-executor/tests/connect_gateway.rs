//! The executor's connect gateway driven by a bare protocol client (no SDK): the start call,
//! the handshake, a run executed over the socket, heartbeats, and the closes the gateway answers
//! bad workers with.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use inngest_executor::{Executor, RunStatus};
use inngest_protocol::connect::{
    frame, AppConfiguration, AuthData, ConnectMessage, GatewayConnectionReadyData,
    GatewayExecutorRequestData, GatewayMessageType as Kind, SdkResponse, SdkResponseStatus,
    StartRequest, StartResponse, WorkerConnectRequestData, WorkerReplyAckData,
    WorkerRequestAckData, WorkerRequestExtendLeaseAckData, WorkerRequestExtendLeaseData,
};
use prost::Message as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Ws;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(executor: &Executor) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = executor.clone();
    tokio::spawn(async move { server.serve(listener).await });
    format!("http://{addr}")
}

async fn start(api: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{api}/v0/connect/start"))
        .body(StartRequest::default().encode_to_vec());
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    req.send().await.unwrap()
}

async fn dial(endpoint: &str) -> Socket {
    let mut req = endpoint.into_client_request().unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v0.connect.inngest.com".parse().unwrap(),
    );
    let (ws, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        res.headers().get("sec-websocket-protocol").unwrap(),
        "v0.connect.inngest.com"
    );
    ws
}

async fn next(ws: &mut Socket) -> Ws {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a frame in time")
        .expect("socket open")
        .expect("no socket error")
}

async fn next_msg(ws: &mut Socket) -> ConnectMessage {
    match next(ws).await {
        Ws::Binary(b) => frame::decode(&b).unwrap(),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

/// Reads until a close frame and returns its code and reason.
async fn close_of(ws: &mut Socket) -> (u16, String) {
    loop {
        match next(ws).await {
            Ws::Close(Some(f)) => return (u16::from(f.code), f.reason.to_string()),
            Ws::Close(None) => return (0, String::new()),
            _ => {}
        }
    }
}

fn functions() -> Vec<u8> {
    serde_json::to_vec(&json!([{
        "id": "shop-greet",
        "name": "greet",
        "triggers": [{"event": "shop/greet"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "ws", "url": "wss://connect?fnId=shop-greet&stepId=step"}}}
    }]))
    .unwrap()
}

fn connect_request(start: &StartResponse, apps: Vec<AppConfiguration>) -> Vec<u8> {
    frame::encode(
        Kind::WorkerConnect,
        &WorkerConnectRequestData {
            connection_id: start.connection_id.clone(),
            instance_id: "test-instance".into(),
            auth_data: Some(AuthData {
                session_token: start.session_token.clone(),
                sync_token: start.sync_token.clone(),
            }),
            capabilities: br#"{"trust_probe":"v1","connect":"v1"}"#.to_vec(),
            apps,
            worker_manual_readiness_ack: true,
            framework: "connect".into(),
            sdk_version: "v0.0.0".into(),
            sdk_language: "test".into(),
            ..Default::default()
        },
    )
}

fn shop() -> Vec<AppConfiguration> {
    vec![AppConfiguration {
        app_name: "shop".into(),
        functions: functions(),
        ..Default::default()
    }]
}

/// Start, dial, hello, connect, ready (+ WORKER_READY): a socket that takes requests.
async fn connected(api: &str) -> (Socket, GatewayConnectionReadyData) {
    let res = start(api, None).await;
    assert_eq!(res.status(), 200);
    let start = StartResponse::decode(res.bytes().await.unwrap()).unwrap();
    assert_eq!(
        start.gateway_endpoint,
        format!("{}/v0/connect", api.replace("http", "ws"))
    );
    let mut ws = dial(&start.gateway_endpoint).await;
    assert_eq!(next_msg(&mut ws).await.kind(), Kind::GatewayHello);
    ws.send(Ws::Binary(connect_request(&start, shop()).into()))
        .await
        .unwrap();
    let ready = next_msg(&mut ws).await;
    assert_eq!(ready.kind(), Kind::GatewayConnectionReady);
    let ready: GatewayConnectionReadyData = frame::payload(&ready, "ready").unwrap();
    ws.send(Ws::Binary(frame::empty(Kind::WorkerReady).into()))
        .await
        .unwrap();
    (ws, ready)
}

#[tokio::test]
async fn a_run_executes_over_the_socket_with_ack_lease_and_reply() {
    let executor = Executor::builder()
        .connect_heartbeat(Duration::from_millis(300), 5)
        .connect_lease(Duration::from_secs(5), Duration::from_millis(500))
        .build()
        .unwrap();
    let api = serve(&executor).await;
    let (mut ws, ready) = connected(&api).await;
    assert_eq!(ready.heartbeat_interval, "300ms");
    assert_eq!(ready.extend_lease_interval, "500ms");
    assert_eq!(ready.status_interval, "0s");
    executor
        .wait_for_connect_worker("shop", Duration::from_secs(5))
        .await
        .unwrap();
    let app = executor
        .apps()
        .into_iter()
        .find(|a| a.id == "shop")
        .unwrap();
    assert_eq!(app.url, "ws://connect?app_name=shop");
    assert_eq!(app.sdk.as_deref(), Some("test:v0.0.0"));

    let event = executor
        .send(json!({"name": "shop/greet", "data": {"who": "Ann"}}))
        .await
        .unwrap();
    let msg = next_msg(&mut ws).await;
    assert_eq!(msg.kind(), Kind::GatewayExecutorRequest);
    let req: GatewayExecutorRequestData = frame::payload(&msg, "request").unwrap();
    assert_eq!(req.app_name, "shop");
    assert_eq!(req.function_slug, "shop-greet");
    assert_eq!(req.step_id.as_deref(), Some("step"));
    let body: serde_json::Value = serde_json::from_slice(&req.request_payload).unwrap();
    assert_eq!(body["event"]["data"], json!({"who": "Ann"}));
    assert_eq!(body["ctx"]["run_id"], json!(req.run_id));
    assert!(ulid::Ulid::from_string(&req.lease_id).is_ok());

    let ack = WorkerRequestAckData {
        request_id: req.request_id.clone(),
        run_id: req.run_id.clone(),
        ..Default::default()
    };
    ws.send(Ws::Binary(
        frame::encode(Kind::WorkerRequestAck, &ack).into(),
    ))
    .await
    .unwrap();
    let extend = WorkerRequestExtendLeaseData {
        request_id: req.request_id.clone(),
        lease_id: req.lease_id.clone(),
        ..Default::default()
    };
    ws.send(Ws::Binary(
        frame::encode(Kind::WorkerRequestExtendLease, &extend).into(),
    ))
    .await
    .unwrap();
    let lease = next_msg(&mut ws).await;
    assert_eq!(lease.kind(), Kind::WorkerRequestExtendLeaseAck);
    let lease: WorkerRequestExtendLeaseAckData = frame::payload(&lease, "lease").unwrap();
    let new_lease = lease.new_lease_id.expect("the current lease extends");
    assert_ne!(new_lease, req.lease_id);
    // The superseded lease id no longer extends anything.
    ws.send(Ws::Binary(
        frame::encode(Kind::WorkerRequestExtendLease, &extend).into(),
    ))
    .await
    .unwrap();
    let stale: WorkerRequestExtendLeaseAckData =
        frame::payload(&next_msg(&mut ws).await, "lease").unwrap();
    assert_eq!(stale.new_lease_id, None);

    let reply = SdkResponse {
        request_id: req.request_id.clone(),
        status: SdkResponseStatus::Done as i32,
        body: br#"{"greeting":"hi Ann"}"#.to_vec(),
        sdk_version: "test:v0.0.0".into(),
        request_version: 2,
        run_id: req.run_id.clone(),
        ..Default::default()
    };
    ws.send(Ws::Binary(frame::encode(Kind::WorkerReply, &reply).into()))
        .await
        .unwrap();
    let ack = next_msg(&mut ws).await;
    assert_eq!(ack.kind(), Kind::WorkerReplyAck);
    let ack: WorkerReplyAckData = frame::payload(&ack, "ack").unwrap();
    assert_eq!(ack.request_id, req.request_id);

    let run = executor.runs_for_event(&event).pop().unwrap();
    let run = executor
        .wait_for_run(&run.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({"greeting": "hi Ann"})));

    // Heartbeats are answered.
    ws.send(Ws::Binary(frame::empty(Kind::WorkerHeartbeat).into()))
        .await
        .unwrap();
    assert_eq!(next_msg(&mut ws).await.kind(), Kind::GatewayHeartbeat);
}

#[tokio::test]
async fn a_silent_worker_is_closed_for_missed_heartbeats() {
    let executor = Executor::builder()
        .connect_heartbeat(Duration::from_millis(100), 3)
        .build()
        .unwrap();
    let api = serve(&executor).await;
    let (mut ws, _) = connected(&api).await;
    assert_eq!(
        close_of(&mut ws).await,
        (1008, "CONSECUTIVE_HEARTBEATS_MISSED".to_owned())
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        executor.connect_closed().last().unwrap().reason,
        "CONSECUTIVE_HEARTBEATS_MISSED"
    );
    assert!(executor.connections().is_empty());
}

#[tokio::test]
async fn a_malformed_frame_closes_the_socket_with_a_policy_violation() {
    let executor = Executor::default();
    let api = serve(&executor).await;
    let (mut ws, _) = connected(&api).await;
    ws.send(Ws::Binary(vec![0x08].into())).await.unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1008, "connect_run_invalid_message".to_owned())
    );
}

#[tokio::test]
async fn the_handshake_refuses_bad_sessions_payloads_and_functions() {
    let executor = Executor::default();
    let api = serve(&executor).await;
    let start_response =
        || async { StartResponse::decode(start(&api, None).await.bytes().await.unwrap()).unwrap() };

    // A session token issued for another connection id.
    let a = start_response().await;
    let b = start_response().await;
    let mut ws = dial(&a.gateway_endpoint).await;
    next_msg(&mut ws).await;
    let mut forged = a.clone();
    forged.session_token = b.session_token.clone();
    ws.send(Ws::Binary(connect_request(&forged, shop()).into()))
        .await
        .unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1008, "connect_authentication_failed".to_owned())
    );

    // A first message that is not WORKER_CONNECT.
    let mut ws = dial(&b.gateway_endpoint).await;
    next_msg(&mut ws).await;
    ws.send(Ws::Binary(frame::empty(Kind::WorkerHeartbeat).into()))
        .await
        .unwrap();
    assert_eq!(
        close_of(&mut ws).await,
        (1008, "connect_worker_hello_invalid_msg".to_owned())
    );

    // Functions that /fn/register refuses: SYNC_FAILED, then the close.
    let c = start_response().await;
    let mut ws = dial(&c.gateway_endpoint).await;
    next_msg(&mut ws).await;
    let bad = vec![AppConfiguration {
        app_name: "shop".into(),
        functions: br#"[{"id":"shop-x","name":"x","triggers":[{"event":"a","expression":"event.data.x =="}],"steps":{"step":{"id":"step","name":"step","runtime":{"type":"ws","url":"wss://connect?fnId=shop-x&stepId=step"}}}}]"#.to_vec(),
        ..Default::default()
    }];
    ws.send(Ws::Binary(connect_request(&c, bad).into()))
        .await
        .unwrap();
    let failed = next_msg(&mut ws).await;
    assert_eq!(failed.kind(), Kind::SyncFailed);
    let err: inngest_protocol::connect::SystemError = frame::payload(&failed, "err").unwrap();
    assert_eq!(err.code, "connect_invalid_function_config");
    assert!(
        err.message.starts_with("function `shop-x`"),
        "{}",
        err.message
    );
    assert_eq!(
        close_of(&mut ws).await,
        (1008, "connect_invalid_function_config".to_owned())
    );
}

#[tokio::test]
async fn the_start_call_needs_the_hashed_key_when_the_executor_is_keyed() {
    let key = "signkey-test-12345678";
    let executor = Executor::builder()
        .signing_key(Some(key.into()))
        .build()
        .unwrap();
    let api = serve(&executor).await;
    assert_eq!(start(&api, None).await.status(), 401);
    assert_eq!(start(&api, Some("signkey-test-00")).await.status(), 401);
    let hashed = inngest_protocol::signature::SigningKey::parse(key)
        .unwrap()
        .bearer()
        .to_owned();
    let res = start(&api, Some(&hashed)).await;
    assert_eq!(res.status(), 200);
    let start = StartResponse::decode(res.bytes().await.unwrap()).unwrap();
    assert_eq!(start.sync_token, hashed);
    assert_eq!(start.gateway_group, "gw-local");
    assert!(ulid::Ulid::from_string(&start.connection_id).is_ok());
}

#[tokio::test]
async fn a_drained_connection_gets_gateway_closing_and_then_a_going_away_close() {
    let executor = Executor::builder()
        .connect_waits(Duration::from_secs(1), Duration::from_millis(200))
        .build()
        .unwrap();
    let api = serve(&executor).await;
    let (mut ws, _) = connected(&api).await;
    executor
        .wait_for_connect_worker("shop", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(executor.drain_connections(), 1);
    assert_eq!(next_msg(&mut ws).await.kind(), Kind::GatewayClosing);
    assert_eq!(executor.connections()[0].status, "DRAINING");
    assert_eq!(
        close_of(&mut ws).await,
        (1001, "connect_gateway_closing".to_owned())
    );
}

#[tokio::test]
async fn a_reply_flushed_over_http_answers_the_request() {
    let executor = Executor::default();
    let api = serve(&executor).await;
    let http = reqwest::Client::new();
    let flush = |body: Vec<u8>| {
        http.post(format!("{api}/v0/connect/flush"))
            .body(body)
            .send()
    };
    assert_eq!(flush(Vec::new()).await.unwrap().status(), 400);
    assert_eq!(flush(vec![0x08]).await.unwrap().status(), 400);

    let (mut ws, _) = connected(&api).await;
    executor
        .wait_for_connect_worker("shop", Duration::from_secs(5))
        .await
        .unwrap();
    let event = executor
        .send(json!({"name": "shop/greet", "data": {}}))
        .await
        .unwrap();
    let req: GatewayExecutorRequestData = frame::payload(&next_msg(&mut ws).await, "req").unwrap();
    let ack = WorkerRequestAckData {
        request_id: req.request_id.clone(),
        ..Default::default()
    };
    ws.send(Ws::Binary(
        frame::encode(Kind::WorkerRequestAck, &ack).into(),
    ))
    .await
    .unwrap();
    // The worker lost its socket: it flushes the reply over HTTP instead.
    drop(ws);
    let reply = SdkResponse {
        request_id: req.request_id.clone(),
        status: SdkResponseStatus::Done as i32,
        body: br#""flushed""#.to_vec(),
        sdk_version: "test:v0.0.0".into(),
        request_version: 2,
        ..Default::default()
    };
    let res = flush(reply.encode_to_vec()).await.unwrap();
    assert_eq!(res.status(), 200);
    let answer =
        inngest_protocol::connect::FlushResponse::decode(res.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.request_id, req.request_id);
    let run = executor.runs_for_event(&event).pop().unwrap();
    let run = executor
        .wait_for_run(&run.id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!("flushed")));
}
