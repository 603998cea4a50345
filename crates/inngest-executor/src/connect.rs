//! The connect gateway's bookkeeping: workers connected over a WebSocket (`connect_api` runs the
//! sockets), the session tokens handed out by the start call, and every request forwarded to a
//! worker until its reply, with the worker's lease on it.
//!
//! A request for a connect app ([`Hub::forward`]) goes to a ready, non-draining connection that
//! serves the app and whose instance is below its `max_worker_concurrency`; it waits up to
//! [`GatewayConfig::worker_wait`] for one. Until the worker acks it, a closed connection sends
//! it elsewhere (at most three times, as the server does). Once acked it belongs to the worker:
//! the reply may come over any of the worker's connections (or `POST /v0/connect/flush`), and
//! the request fails (and is retried like any failed request) only when the worker stops
//! extending its lease. So a socket that drops mid-step loses nothing: the worker reconnects and
//! sends the reply it kept.
//!
//! The gateway runs on real time, not the executor's clock: heartbeats and leases are socket
//! concerns.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use inngest_protocol::connect::{
    frame, GatewayExecutorRequestData, GatewayMessageType, SdkResponse,
};

/// How long a forwarded request waits for its ack beyond the lease (the server's grace).
const ACK_GRACE: Duration = Duration::from_secs(5);
/// How often a waiting forward looks at its request's state.
const POLL: Duration = Duration::from_millis(50);
/// Forward attempts before a request that no worker acked fails.
const MAX_FORWARDS: usize = 3;
/// How long a session token from a start call stays good for its handshake.
const SESSION_TTL: Duration = Duration::from_secs(600);

/// Timings of the gateway.
#[derive(Debug, Clone)]
pub(crate) struct GatewayConfig {
    /// Sent as `heartbeat_interval`; the gateway closes a connection silent for
    /// `heartbeat_misses` of them.
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_misses: u32,
    /// How long a worker holds a request without extending its lease.
    pub(crate) lease_duration: Duration,
    /// Sent as `extend_lease_interval`.
    pub(crate) extend_lease_interval: Duration,
    /// How long the gateway waits for `WORKER_CONNECT`.
    pub(crate) handshake_timeout: Duration,
    /// How long a draining connection has to close after `GATEWAY_CLOSING`.
    pub(crate) drain_ack_timeout: Duration,
    /// How long a request waits for a worker that can take it.
    pub(crate) worker_wait: Duration,
}

impl Default for GatewayConfig {
    /// The server's defaults (10 s heartbeats, 5 misses, 2 min leases extended every 30 s, 5 s
    /// handshake and drain), and 10 s for a worker to show up.
    fn default() -> Self {
        GatewayConfig {
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_misses: 5,
            lease_duration: Duration::from_secs(120),
            extend_lease_interval: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(5),
            drain_ack_timeout: Duration::from_secs(5),
            worker_wait: Duration::from_secs(10),
        }
    }
}

/// What the hub asks a connection's socket task to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send this binary frame.
    Frame(Vec<u8>),
    /// End without a close frame (a dropped network connection, for tests).
    Drop,
    /// Send `GATEWAY_CLOSING` and close after the drain timeout unless the worker does first.
    Drain,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Handshake done, waiting for `WORKER_READY`.
    Connected,
    /// Takes requests.
    Ready,
    /// Paused by the worker or drained by the gateway: finishes what it has, takes nothing new.
    Draining,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Connected => "CONNECTED",
            Phase::Ready => "READY",
            Phase::Draining => "DRAINING",
        }
    }
}

/// A worker's connection.
pub(crate) struct Conn {
    pub(crate) id: String,
    pub(crate) instance_id: String,
    pub(crate) apps: Vec<String>,
    pub(crate) sdk: String,
    pub(crate) phase: Phase,
    pub(crate) tx: mpsc::UnboundedSender<Outbound>,
    pub(crate) connected_at: chrono::DateTime<chrono::Utc>,
}

/// One request handed to a worker.
struct Forwarded {
    conn_id: String,
    instance_id: String,
    lease_id: String,
    lease_until: Instant,
    ack_until: Instant,
    acked: bool,
    reply: Option<oneshot::Sender<SdkResponse>>,
}

#[derive(Default)]
struct HubState {
    /// Session token → the connection id it was issued with, and when.
    sessions: HashMap<String, (String, Instant)>,
    conns: BTreeMap<String, Conn>,
    requests: HashMap<String, Forwarded>,
    /// Instance id → its `max_worker_concurrency` (absent or 0: no limit).
    capacity: HashMap<String, u64>,
    /// Round-robin cursor over eligible connections.
    cursor: usize,
    closed: Vec<ClosedConnection>,
}

/// A connection that ended, and why (for tests and the API).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ClosedConnection {
    /// The connection id.
    pub id: String,
    /// The worker's instance id.
    pub instance_id: String,
    /// Why it ended: a `WorkerDisconnectReason` name (`WORKER_SHUTDOWN`,
    /// `CONSECUTIVE_HEARTBEATS_MISSED`, `GATEWAY_DRAINING`, `UNEXPECTED`, …) or the syscode the
    /// gateway closed it with (`connect_worker_hello_invalid_payload`, …).
    pub reason: String,
}

/// A live worker connection.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct ConnectionView {
    /// The connection id (a ULID from the start call).
    pub id: String,
    /// The worker's instance id.
    pub instance_id: String,
    /// The apps it serves.
    pub apps: Vec<String>,
    /// `<sdk language>:<sdk version>`.
    pub sdk: String,
    /// `CONNECTED`, `READY` or `DRAINING`.
    pub status: String,
    /// Requests it holds (acked or not, not yet answered).
    pub in_flight: usize,
    /// When the handshake completed.
    pub connected_at: chrono::DateTime<chrono::Utc>,
}

/// Why a request could not be run over connect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("connect_no_healthy_connection: no connected worker serves app `{0}`")]
    NoWorker(String),
    #[error(
        "connect_all_workers_at_capacity: every worker of app `{0}` is at its max concurrency"
    )]
    AtCapacity(String),
    #[error("connect_worker_stopped_responding: the worker did not acknowledge the request")]
    NotAcked,
    #[error("connect_worker_stopped_responding: the worker's lease on the request expired")]
    LeaseExpired,
}

/// The gateway's shared state.
#[derive(Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// Woken when a connection becomes routable or capacity frees up.
    changed: Notify,
}

fn ulid() -> String {
    ulid::Ulid::new().to_string()
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A session token for the connection id a start call handed out.
    pub(crate) fn issue_session(&self, connection_id: &str) -> String {
        let token = hex::encode(rand::random::<[u8; 24]>());
        let now = Instant::now();
        let mut st = self.lock();
        // Start calls that never dialed: forget them.
        st.sessions
            .retain(|_, (_, issued)| now.duration_since(*issued) < SESSION_TTL);
        st.sessions
            .insert(token.clone(), (connection_id.to_owned(), now));
        token
    }

    /// Whether `token` was issued for `connection_id` (each token is good for one handshake).
    pub(crate) fn claim_session(&self, token: &str, connection_id: &str) -> bool {
        let mut st = self.lock();
        match st.sessions.get(token) {
            Some((id, issued)) if id == connection_id && issued.elapsed() < SESSION_TTL => {
                st.sessions.remove(token);
                true
            }
            _ => false,
        }
    }

    /// Adds a connection after its handshake; `capacity` is its instance's
    /// `max_worker_concurrency`.
    pub(crate) fn add(&self, conn: Conn, capacity: Option<i64>) {
        let mut st = self.lock();
        match capacity
            .and_then(|c| u64::try_from(c).ok())
            .filter(|&c| c > 0)
        {
            Some(c) => st.capacity.insert(conn.instance_id.clone(), c),
            None => st.capacity.remove(&conn.instance_id),
        };
        st.conns.insert(conn.id.clone(), conn);
        drop(st);
        self.changed.notify_waiters();
    }

    /// Moves a connection to `phase` (a draining connection never becomes ready again).
    pub(crate) fn set_phase(&self, id: &str, phase: Phase) {
        let mut st = self.lock();
        if let Some(c) = st.conns.get_mut(id) {
            if c.phase != Phase::Draining {
                c.phase = phase;
            }
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// The phase of a connection.
    pub(crate) fn phase(&self, id: &str) -> Option<Phase> {
        self.lock().conns.get(id).map(|c| c.phase)
    }

    /// Removes a connection that ended, recording why.
    pub(crate) fn remove(&self, id: &str, reason: &str) {
        let mut st = self.lock();
        if let Some(c) = st.conns.remove(id) {
            tracing::debug!(connection = %id, instance = %c.instance_id, reason, "connect worker disconnected");
            st.closed.push(ClosedConnection {
                id: c.id,
                instance_id: c.instance_id,
                reason: reason.to_owned(),
            });
        }
        drop(st);
        self.changed.notify_waiters();
    }

    /// Live connections.
    pub(crate) fn connections(&self) -> Vec<ConnectionView> {
        let st = self.lock();
        st.conns
            .values()
            .map(|c| ConnectionView {
                id: c.id.clone(),
                instance_id: c.instance_id.clone(),
                apps: c.apps.clone(),
                sdk: c.sdk.clone(),
                status: c.phase.as_str().to_owned(),
                in_flight: st.requests.values().filter(|r| r.conn_id == c.id).count(),
                connected_at: c.connected_at,
            })
            .collect()
    }

    /// Connections that ended, oldest first.
    pub(crate) fn closed(&self) -> Vec<ClosedConnection> {
        self.lock().closed.clone()
    }

    /// Sends `what` to every live connection (drain, drop); returns how many.
    pub(crate) fn broadcast(&self, what: impl Fn() -> Outbound) -> usize {
        let st = self.lock();
        st.conns
            .values()
            .filter(|c| c.tx.send(what()).is_ok())
            .count()
    }

    /// Sends `what` to one connection.
    pub(crate) fn send_to(&self, id: &str, what: Outbound) -> bool {
        self.lock()
            .conns
            .get(id)
            .is_some_and(|c| c.tx.send(what).is_ok())
    }

    /// Records a worker's ack of `request_id` on connection `conn_id`. `false`: not a request
    /// the gateway is waiting on an ack for.
    pub(crate) fn ack(&self, conn_id: &str, request_id: &str) -> bool {
        let mut st = self.lock();
        match st.requests.get_mut(request_id) {
            Some(r) if r.conn_id == conn_id && !r.acked => {
                r.acked = true;
                true
            }
            _ => false,
        }
    }

    /// Extends the lease on a request when `lease_id` is its current one: the new lease id.
    /// `None`: expired, taken over, or unknown (the worker should stop extending).
    pub(crate) fn extend_lease(
        &self,
        request_id: &str,
        lease_id: &str,
        lease: Duration,
    ) -> Option<String> {
        let mut st = self.lock();
        let r = st.requests.get_mut(request_id)?;
        let now = Instant::now();
        if r.lease_id != lease_id || r.lease_until <= now {
            return None;
        }
        r.lease_id = ulid();
        r.lease_until = now + lease;
        Some(r.lease_id.clone())
    }

    /// Hands a worker's reply to the waiting forward. `false`: nobody waits for it any more (a
    /// duplicate, or a request whose lease expired); it is dropped.
    pub(crate) fn reply(&self, reply: SdkResponse) -> bool {
        let mut st = self.lock();
        let Some(r) = st.requests.get_mut(&reply.request_id) else {
            return false;
        };
        match r.reply.take() {
            Some(tx) => tx.send(reply).is_ok(),
            None => false,
        }
    }

    /// Picks a connection for `app` and hands it the request; `Err` while none can take it.
    fn route(
        &self,
        app: &str,
        request: &GatewayExecutorRequestData,
        lease: Duration,
        reply: oneshot::Sender<SdkResponse>,
    ) -> Result<String, (ForwardError, oneshot::Sender<SdkResponse>)> {
        let mut st = self.lock();
        let serving: Vec<&Conn> = st
            .conns
            .values()
            .filter(|c| {
                c.phase == Phase::Ready && !c.tx.is_closed() && c.apps.iter().any(|a| a == app)
            })
            .collect();
        if serving.is_empty() {
            return Err((ForwardError::NoWorker(app.to_owned()), reply));
        }
        let in_flight = |instance: &str| {
            st.requests
                .values()
                .filter(|r| r.instance_id == instance)
                .count()
        };
        let eligible: Vec<(String, String)> = serving
            .iter()
            .filter(|c| {
                st.capacity
                    .get(&c.instance_id)
                    .is_none_or(|&cap| (in_flight(&c.instance_id) as u64) < cap)
            })
            .map(|c| (c.id.clone(), c.instance_id.clone()))
            .collect();
        if eligible.is_empty() {
            return Err((ForwardError::AtCapacity(app.to_owned()), reply));
        }
        st.cursor = st.cursor.wrapping_add(1);
        let (conn_id, instance_id) = eligible[st.cursor % eligible.len()].clone();
        let now = Instant::now();
        let mut request = request.clone();
        request.lease_id = ulid();
        st.requests.insert(
            request.request_id.clone(),
            Forwarded {
                conn_id: conn_id.clone(),
                instance_id,
                lease_id: request.lease_id.clone(),
                lease_until: now + lease,
                ack_until: now + lease + ACK_GRACE,
                acked: false,
                reply: Some(reply),
            },
        );
        let frame = frame::encode(GatewayMessageType::GatewayExecutorRequest, &request);
        if let Some(c) = st.conns.get(&conn_id) {
            // A failed send means the socket task just ended: it removes the connection, and
            // the waiting forward then routes the (unacked) request again.
            let _ = c.tx.send(Outbound::Frame(frame));
        }
        Ok(conn_id)
    }

    /// Forgets a request (answered, failed or re-routed) and frees its capacity.
    fn finish(&self, request_id: &str) {
        self.lock().requests.remove(request_id);
        self.changed.notify_waiters();
    }

    /// Runs one request on a worker of `app` and returns its reply.
    pub(crate) async fn forward(
        &self,
        app: &str,
        request: GatewayExecutorRequestData,
        config: &GatewayConfig,
    ) -> Result<SdkResponse, ForwardError> {
        let request_id = request.request_id.clone();
        let result = self.forward_inner(app, &request, config).await;
        self.finish(&request_id);
        result
    }

    async fn forward_inner(
        &self,
        app: &str,
        request: &GatewayExecutorRequestData,
        config: &GatewayConfig,
    ) -> Result<SdkResponse, ForwardError> {
        let give_up = Instant::now() + config.worker_wait;
        let mut forwards = 0;
        'route: loop {
            let (mut tx, mut rx) = oneshot::channel();
            let conn_id = loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                match self.route(app, request, config.lease_duration, tx) {
                    Ok(id) => break id,
                    Err((err, back)) => {
                        tx = back;
                        // Waiting for capacity is not bounded: busy workers free it, and dead
                        // ones lose their leases.
                        let at_capacity = matches!(err, ForwardError::AtCapacity(_));
                        if !at_capacity && Instant::now() >= give_up {
                            return Err(err);
                        }
                        let _ = tokio::time::timeout(POLL * 4, notified).await;
                    }
                }
            };
            forwards += 1;
            tracing::debug!(request = %request.request_id, connection = %conn_id, run = %request.run_id, "forwarded request to connect worker");
            loop {
                tokio::select! {
                    reply = &mut rx => match reply {
                        Ok(reply) => return Ok(reply),
                        // The entry was dropped: treat as an expired lease.
                        Err(_) => return Err(ForwardError::LeaseExpired),
                    },
                    () = tokio::time::sleep(POLL) => {}
                }
                let now = Instant::now();
                let (acked, ack_until, lease_until, conn_alive) = {
                    let st = self.lock();
                    let Some(r) = st.requests.get(&request.request_id) else {
                        return Err(ForwardError::LeaseExpired);
                    };
                    (
                        r.acked,
                        r.ack_until,
                        r.lease_until,
                        st.conns.contains_key(&r.conn_id),
                    )
                };
                if !acked && (!conn_alive || now >= ack_until) {
                    // Never taken: route it again (or give up after three forwards).
                    self.finish(&request.request_id);
                    if forwards >= MAX_FORWARDS || now >= ack_until {
                        return Err(ForwardError::NotAcked);
                    }
                    continue 'route;
                }
                if acked && now >= lease_until {
                    return Err(ForwardError::LeaseExpired);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(
        hub: &Hub,
        id: &str,
        instance: &str,
        cap: Option<i64>,
    ) -> mpsc::UnboundedReceiver<Outbound> {
        let (tx, rx) = mpsc::unbounded_channel();
        hub.add(
            Conn {
                id: id.into(),
                instance_id: instance.into(),
                apps: vec!["app".into()],
                sdk: "rust:v0".into(),
                phase: Phase::Ready,
                tx,
                connected_at: chrono::Utc::now(),
            },
            cap,
        );
        rx
    }

    fn request(id: &str) -> GatewayExecutorRequestData {
        GatewayExecutorRequestData {
            request_id: id.into(),
            app_name: "app".into(),
            ..Default::default()
        }
    }

    fn received(rx: &mut mpsc::UnboundedReceiver<Outbound>) -> GatewayExecutorRequestData {
        match rx.try_recv() {
            Ok(Outbound::Frame(bytes)) => {
                let msg = frame::decode(&bytes).unwrap();
                assert_eq!(msg.kind(), GatewayMessageType::GatewayExecutorRequest);
                frame::payload(&msg, "GatewayExecutorRequestData").unwrap()
            }
            other => panic!("expected a request frame, got {other:?}"),
        }
    }

    #[test]
    fn sessions_are_single_use_and_bound_to_their_connection() {
        let hub = Hub::default();
        let token = hub.issue_session("C1");
        assert!(!hub.claim_session(&token, "C2"));
        assert!(hub.claim_session(&token, "C1"));
        assert!(!hub.claim_session(&token, "C1"));
    }

    #[tokio::test]
    async fn a_reply_answers_the_forward_and_leases_extend_only_with_the_current_id() {
        let hub = std::sync::Arc::new(Hub::default());
        let mut rx = conn(&hub, "C1", "i1", None);
        let config = GatewayConfig::default();
        let h = hub.clone();
        let task = tokio::spawn(async move { h.forward("app", request("R1"), &config).await });
        tokio::time::sleep(POLL * 2).await;
        let sent = received(&mut rx);
        assert_eq!(sent.request_id, "R1");
        assert!(hub.ack("C1", "R1"));
        assert!(!hub.ack("C1", "R1"), "a second ack is not news");
        assert_eq!(
            hub.extend_lease("R1", "not-the-lease", Duration::from_secs(1)),
            None
        );
        let next = hub
            .extend_lease("R1", &sent.lease_id, Duration::from_secs(1))
            .unwrap();
        assert_ne!(next, sent.lease_id);
        assert_eq!(
            hub.extend_lease("R1", &sent.lease_id, Duration::from_secs(1)),
            None
        );
        assert!(hub.reply(SdkResponse {
            request_id: "R1".into(),
            body: b"\"ok\"".to_vec(),
            ..Default::default()
        }));
        let reply = task.await.unwrap().unwrap();
        assert_eq!(reply.body, b"\"ok\"");
        assert!(!hub.reply(SdkResponse {
            request_id: "R1".into(),
            ..Default::default()
        }));
        assert_eq!(hub.connections()[0].in_flight, 0);
    }

    #[tokio::test]
    async fn an_unacked_request_moves_to_another_connection_when_its_socket_closes() {
        let hub = std::sync::Arc::new(Hub::default());
        let mut first = conn(&hub, "C1", "i1", None);
        let config = GatewayConfig::default();
        let h = hub.clone();
        let task = tokio::spawn(async move { h.forward("app", request("R1"), &config).await });
        tokio::time::sleep(POLL * 2).await;
        let _ = received(&mut first);
        let mut second = conn(&hub, "C2", "i2", None);
        hub.remove("C1", "UNEXPECTED");
        tokio::time::sleep(POLL * 4).await;
        assert_eq!(received(&mut second).request_id, "R1");
        assert!(hub.ack("C2", "R1"));
        hub.reply(SdkResponse {
            request_id: "R1".into(),
            ..Default::default()
        });
        assert!(task.await.unwrap().is_ok());
        assert_eq!(hub.closed()[0].reason, "UNEXPECTED");
    }

    #[tokio::test]
    async fn an_acked_request_fails_when_the_lease_runs_out() {
        let hub = std::sync::Arc::new(Hub::default());
        let mut rx = conn(&hub, "C1", "i1", None);
        let config = GatewayConfig {
            lease_duration: Duration::from_millis(200),
            ..GatewayConfig::default()
        };
        let h = hub.clone();
        let task = tokio::spawn(async move { h.forward("app", request("R1"), &config).await });
        tokio::time::sleep(POLL * 2).await;
        let _ = received(&mut rx);
        hub.ack("C1", "R1");
        hub.remove("C1", "UNEXPECTED");
        assert_eq!(task.await.unwrap(), Err(ForwardError::LeaseExpired));
    }

    #[tokio::test]
    async fn no_worker_fails_after_the_wait_and_capacity_is_respected() {
        let hub = std::sync::Arc::new(Hub::default());
        let config = GatewayConfig {
            worker_wait: Duration::from_millis(100),
            ..GatewayConfig::default()
        };
        assert_eq!(
            hub.forward("app", request("R0"), &config).await,
            Err(ForwardError::NoWorker("app".into()))
        );
        let mut rx = conn(&hub, "C1", "i1", Some(1));
        let (h1, h2) = (hub.clone(), hub.clone());
        let (c1, c2) = (config.clone(), config.clone());
        let t1 = tokio::spawn(async move { h1.forward("app", request("R1"), &c1).await });
        tokio::time::sleep(POLL * 2).await;
        let t2 = tokio::spawn(async move { h2.forward("app", request("R2"), &c2).await });
        tokio::time::sleep(POLL * 4).await;
        assert_eq!(received(&mut rx).request_id, "R1");
        assert!(
            rx.try_recv().is_err(),
            "R2 waits while the instance is at capacity"
        );
        hub.ack("C1", "R1");
        hub.reply(SdkResponse {
            request_id: "R1".into(),
            ..Default::default()
        });
        t1.await.unwrap().unwrap();
        tokio::time::sleep(POLL * 4).await;
        assert_eq!(received(&mut rx).request_id, "R2");
        hub.ack("C1", "R2");
        hub.reply(SdkResponse {
            request_id: "R2".into(),
            ..Default::default()
        });
        t2.await.unwrap().unwrap();
    }
}
