//! Connect under faults: the gateway drops the socket or drains it mid-step, the worker is
//! closed mid-step, the gateway sends a malformed frame, heartbeats go unanswered, and the
//! gateway holds the worker to its max concurrency. In each case the run completes, and its
//! step runs exactly once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use inngest_executor::{Executor, HistoryKind, RunStatus, StepStatus};
use inngest_sdk::connect::{ConnectionState, Worker};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Error, Event, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// A function whose one step blocks on `gate`, counting how often the step body runs.
fn gated(gate: Arc<Semaphore>, runs: Arc<AtomicUsize>) -> Function {
    Function::new("gated")
        .trigger(Trigger::event("test/gated"))
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let (gate, runs) = (gate.clone(), runs.clone());
            async move {
                let v: String = step
                    .run("slow", move || {
                        let (gate, runs) = (gate.clone(), runs.clone());
                        async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            let _permit = gate
                                .acquire()
                                .await
                                .map_err(|e| Error::msg(e.to_string()))?;
                            Ok("slow done".to_owned())
                        }
                    })
                    .await?;
                Ok(json!({ "slow": v, "n": ctx.event.data["n"] }))
            }
        })
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the worker is active on a connection not in `seen`; its id.
async fn new_connection(worker: &inngest_sdk::connect::WorkerHandle, seen: &[String]) -> String {
    until("a new connection", || {
        worker.connection_id().is_some_and(|c| !seen.contains(&c))
            && worker.state() == ConnectionState::Active
    })
    .await;
    worker.connection_id().unwrap()
}

async fn harness(gate: &Arc<Semaphore>, runs: &Arc<AtomicUsize>) -> TestHarness {
    TestHarness::builder("app")
        .function(gated(gate.clone(), runs.clone()))
        .connect(true)
        .configure_executor(|b| {
            b.connect_heartbeat(Duration::from_millis(200), 5)
                .connect_lease(Duration::from_secs(3), Duration::from_millis(200))
                .connect_waits(Duration::from_secs(10), Duration::from_millis(500))
        })
        .start()
        .await
        .unwrap()
}

/// Sends one gated event and waits until its step body runs; returns the event id.
async fn start_gated(h: &TestHarness, runs: &Arc<AtomicUsize>, n: usize) -> String {
    let id = h.send(Event::new("test/gated", json!({"n": n}))).await;
    let runs = runs.clone();
    until("the step to start", || runs.load(Ordering::SeqCst) >= n).await;
    id
}

async fn check_completed_once(h: &TestHarness, id: &str, runs: &Arc<AtomicUsize>) {
    let run = h.wait_for_run_of(id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"slow": "slow done", "n": 1})));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "the step body ran once");
    let step = run.step("slow").unwrap();
    assert_eq!(step.status, StepStatus::Completed);
    assert_eq!(step.attempts, 1);
    assert_eq!(
        run.history_of(HistoryKind::RequestFailed).count(),
        0,
        "{run:#?}"
    );
}

#[tokio::test]
async fn a_socket_dropped_mid_step_still_completes_the_run_once() {
    let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = harness(&gate, &runs).await;
    let worker = h.connect_worker().unwrap();
    let first = worker.connection_id().unwrap();
    let id = start_gated(&h, &runs, 1).await;
    assert_eq!(worker.in_flight().len(), 1);

    assert_eq!(h.executor().drop_connections(), 1);
    new_connection(worker, std::slice::from_ref(&first)).await;
    // The step kept running through the drop; its reply goes over the new connection.
    gate.add_permits(1);
    check_completed_once(&h, &id, &runs).await;
    let closed = h.executor().connect_closed();
    assert_eq!(closed[0].id, first);
    assert_eq!(closed[0].reason, "UNEXPECTED");
}

#[tokio::test]
async fn a_gateway_drain_moves_the_worker_and_the_run_completes_once() {
    let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = harness(&gate, &runs).await;
    let worker = h.connect_worker().unwrap();
    let first = worker.connection_id().unwrap();
    let id = start_gated(&h, &runs, 1).await;

    assert_eq!(h.executor().drain_connections(), 1);
    new_connection(worker, std::slice::from_ref(&first)).await;
    gate.add_permits(1);
    check_completed_once(&h, &id, &runs).await;
    // The worker closed the drained connection itself, naming the drain.
    let closed = h.executor().connect_closed();
    assert_eq!(closed[0].id, first);
    assert_eq!(closed[0].reason, "GATEWAY_DRAINING");
}

#[tokio::test]
async fn closing_the_worker_finishes_in_flight_work_and_takes_no_new_work() {
    let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = harness(&gate, &runs).await;
    let worker = h.connect_worker().unwrap();
    let first = start_gated(&h, &runs, 1).await;

    worker.close();
    until("the connection to drain", || {
        h.executor()
            .connections()
            .first()
            .is_some_and(|c| c.status == "DRAINING")
    })
    .await;
    assert_eq!(worker.state(), ConnectionState::Closing);
    // A new run is not handed to the draining worker.
    let second = h.send(Event::new("test/gated", json!({"n": 2}))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(worker.in_flight().len(), 1);

    gate.add_permits(1);
    worker.closed().await;
    assert_eq!(worker.state(), ConnectionState::Closed);
    until("the gateway to see the close", || {
        h.executor().connections().is_empty()
    })
    .await;
    assert_eq!(h.executor().connect_closed()[0].reason, "WORKER_SHUTDOWN");
    // The in-flight step was answered before the close.
    let run_id = h.first_run_of(&first).await.id;
    until("the step's reply to be applied", || {
        h.executor()
            .run(&run_id)
            .and_then(|r| r.step("slow").map(|s| s.status))
            == Some(StepStatus::Completed)
    })
    .await;
    let run = h.executor().run(&run_id).unwrap();
    assert_eq!(run.step("slow").unwrap().status, StepStatus::Completed);
    assert_eq!(
        run.step("slow").unwrap().output,
        Some(json!({"data": "slow done"}))
    );

    // Another worker picks up what is left: the first run's last request and the second run.
    gate.add_permits(10);
    let next = Worker::new(h.client(), [gated(gate.clone(), runs.clone())])
        .unwrap()
        .instance_id("second")
        .handle_shutdown_signals(false)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .start()
        .unwrap();
    assert!(next.ready().await);
    let run = h.wait_for_run_of(&first).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let run = h.wait_for_run_of(&second).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"slow": "slow done", "n": 2})));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "each step body ran once");
    next.shutdown().await;
}

#[tokio::test]
async fn a_step_longer_than_the_lease_completes_because_the_worker_extends_it() {
    let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = TestHarness::builder("app")
        .function(gated(gate.clone(), runs.clone()))
        .connect(true)
        .configure_executor(|b| {
            b.connect_lease(Duration::from_millis(400), Duration::from_millis(100))
        })
        .start()
        .await
        .unwrap();
    let id = start_gated(&h, &runs, 1).await;
    // Four leases long.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    gate.add_permits(1);
    check_completed_once(&h, &id, &runs).await;
}

#[tokio::test]
async fn a_worker_that_dies_mid_step_loses_its_lease_and_another_worker_runs_the_step_again() {
    let (gate, runs) = (Arc::new(Semaphore::new(0)), Arc::new(AtomicUsize::new(0)));
    let h = TestHarness::builder("app")
        .function(gated(gate.clone(), runs.clone()))
        .connect(true)
        .configure_executor(|b| {
            b.connect_lease(Duration::from_millis(500), Duration::from_millis(100))
        })
        .start()
        .await
        .unwrap();
    let id = start_gated(&h, &runs, 1).await;
    // The worker dies: no reply, no more lease extensions.
    h.connect_worker().unwrap().abort();
    let next = Worker::new(h.client(), [gated(gate.clone(), runs.clone())])
        .unwrap()
        .instance_id("second")
        .handle_shutdown_signals(false)
        .reconnect_backoff(Duration::from_millis(50), Duration::from_secs(1))
        .start()
        .unwrap();
    assert!(next.ready().await);
    let runs_now = runs.clone();
    until("the retry on the second worker", || {
        runs_now.load(Ordering::SeqCst) == 2
    })
    .await;
    gate.add_permits(2);
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"slow": "slow done", "n": 1})));
    let failed: Vec<_> = run.history_of(HistoryKind::RequestFailed).collect();
    assert_eq!(failed.len(), 1, "{run:#?}");
    assert!(
        failed[0]
            .message
            .contains("the worker's lease on the request expired"),
        "{:?}",
        failed[0]
    );
    assert_eq!(run.step("slow").unwrap().attempts, 2);
    next.shutdown().await;
}

#[tokio::test]
async fn a_malformed_frame_from_the_gateway_makes_the_worker_reconnect() {
    let (gate, runs) = (Arc::new(Semaphore::new(10)), Arc::new(AtomicUsize::new(0)));
    let h = harness(&gate, &runs).await;
    let worker = h.connect_worker().unwrap();
    let mut seen = vec![worker.connection_id().unwrap()];
    // Not a ConnectMessage; then a ConnectMessage of a kind that does not exist.
    let unknown_kind = {
        use prost::Message as _;
        inngest_sdk::protocol::connect::ConnectMessage {
            kind: 99,
            payload: vec![],
        }
        .encode_to_vec()
    };
    for bad in [vec![0x08], unknown_kind] {
        let current = seen.last().unwrap().clone();
        assert!(h.executor().send_connect_frame(&current, bad));
        seen.push(new_connection(worker, &seen).await);
    }
    let closed = h.executor().connect_closed();
    assert_eq!(closed.len(), 2);
    assert!(
        closed.iter().all(|c| c.reason == "UNEXPECTED"),
        "{closed:?}"
    );
    // The worker still serves.
    let id = h.send(Event::new("test/gated", json!({"n": 1}))).await;
    check_completed_once(&h, &id, &runs).await;
}

#[tokio::test]
async fn the_gateway_holds_a_worker_to_its_max_concurrency() {
    let executor = Executor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    tokio::spawn(async move { server.serve(listener).await });
    let client = Inngest::builder("cap")
        .base_url(url)
        .dev(true)
        .build()
        .unwrap();
    let (current, max) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (c, m) = (current.clone(), max.clone());
    let f = Function::new("busy")
        .trigger(Trigger::event("test/busy"))
        .handler(move |_ctx: Ctx<Value>, _step: Step| {
            let (c, m) = (c.clone(), m.clone());
            async move {
                let now = c.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                c.fetch_sub(1, Ordering::SeqCst);
                Ok("done")
            }
        });
    let worker = client
        .connect([f])
        .unwrap()
        .instance_id("capped")
        .max_concurrency(1)
        .handle_shutdown_signals(false)
        .start()
        .unwrap();
    assert!(worker.ready().await);
    assert_eq!(worker.instance_id(), "capped");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            executor
                .send(json!({"name": "test/busy", "data": {}}))
                .await
                .unwrap(),
        );
    }
    for id in &ids {
        let runs = executor
            .wait_for_runs_of(id, 1, Duration::from_secs(10))
            .await
            .unwrap();
        let run = executor
            .wait_for_run(&runs[0].id, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(run.status, RunStatus::Completed);
    }
    assert_eq!(max.load(Ordering::SeqCst), 1, "never two requests at once");
    worker.shutdown().await;
}

/// A gateway that completes the handshake and then never answers a heartbeat.
mod silent_gateway {
    use std::sync::{Arc, Mutex};

    use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
    use axum::extract::State;
    use axum::response::IntoResponse;
    use axum::routing::{get, post};
    use inngest_sdk::protocol::connect::{
        frame, GatewayConnectionReadyData, GatewayMessageType as Kind, StartResponse,
    };
    use prost::Message as _;

    /// One connection: heartbeats received, and the close frame's code and reason.
    pub(super) type Conn = (usize, Option<(u16, String)>);

    /// Every connection the gateway saw.
    #[derive(Default, Clone)]
    pub(super) struct Seen(pub(super) Arc<Mutex<Vec<Conn>>>);

    pub(super) async fn serve() -> (String, Seen) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Seen::default();
        let app = axum::Router::new()
            .route(
                "/v0/connect/start",
                post(move || async move {
                    StartResponse {
                        connection_id: ulid::Ulid::new().to_string(),
                        gateway_endpoint: format!("ws://{addr}/v0/connect"),
                        gateway_group: "silent".into(),
                        session_token: "t".into(),
                        sync_token: String::new(),
                    }
                    .encode_to_vec()
                }),
            )
            .route("/v0/connect", get(upgrade))
            .with_state(seen.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), seen)
    }

    async fn upgrade(State(seen): State<Seen>, ws: WebSocketUpgrade) -> impl IntoResponse {
        ws.protocols(["v0.connect.inngest.com"])
            .on_upgrade(move |socket| session(socket, seen))
    }

    async fn session(mut ws: WebSocket, seen: Seen) {
        let index = {
            let mut s = seen.0.lock().unwrap();
            s.push((0, None));
            s.len() - 1
        };
        let _ = ws
            .send(Message::Binary(frame::empty(Kind::GatewayHello).into()))
            .await;
        let _connect = ws.recv().await;
        let ready = GatewayConnectionReadyData {
            heartbeat_interval: "100ms".into(),
            extend_lease_interval: "1s".into(),
            status_interval: "0s".into(),
        };
        let _ = ws
            .send(Message::Binary(
                frame::encode(Kind::GatewayConnectionReady, &ready).into(),
            ))
            .await;
        while let Some(Ok(msg)) = ws.recv().await {
            match msg {
                Message::Binary(b)
                    if frame::decode(&b).is_ok_and(|m| m.kind() == Kind::WorkerHeartbeat) =>
                {
                    seen.0.lock().unwrap()[index].0 += 1;
                }
                Message::Close(c) => {
                    seen.0.lock().unwrap()[index].1 = c.map(|c| (c.code, c.reason.to_string()));
                    break;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn unanswered_heartbeats_make_the_worker_reconnect() {
    let (url, seen) = silent_gateway::serve().await;
    let client = Inngest::builder("silent")
        .base_url(url)
        .dev(true)
        .build()
        .unwrap();
    let f = Function::new("noop")
        .trigger(Trigger::event("test/noop"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(1) });
    let worker = client
        .connect([f])
        .unwrap()
        .handle_shutdown_signals(false)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .start()
        .unwrap();
    until("a second connection after the first one closed", || {
        let s = seen.0.lock().unwrap();
        s.len() >= 2 && s[0].1.is_some()
    })
    .await;
    let first = seen.0.lock().unwrap()[0].clone();
    // Two heartbeats went unanswered; at the third interval the worker gave the connection up.
    assert_eq!(first.0, 2);
    assert_eq!(first.1, Some((4001, "UNEXPECTED".to_owned())));
    drop(worker);
}
