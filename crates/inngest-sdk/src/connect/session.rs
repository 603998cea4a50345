//! One live connection after its handshake: `WORKER_READY` (or `WORKER_PAUSE` when shutting
//! down), heartbeats with miss detection, executor requests acked and run, lease extensions for
//! the running ones, replies and their acks, and the gateway's `GATEWAY_CLOSING`.
//!
//! Anything unexpected (a frame that does not decode, an unknown or out-of-place kind, a socket
//! error) ends the session with a reason for the log line; the worker then reconnects. Nothing
//! here panics on what the gateway sends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame};
use tokio_tungstenite::tungstenite::Message;

use super::execution;
use super::socket::Ws;
use super::state::{Ctx, Known};
use inngest_protocol::connect::frame;
use inngest_protocol::connect::{
    ConnectMessage, GatewayExecutorRequestData, GatewayMessageType as Kind, ReadyIntervals,
    WorkerDisconnectReason, WorkerReplyAckData, WorkerRequestAckData,
    WorkerRequestExtendLeaseAckData, WorkerRequestExtendLeaseData, WORKER_HEARTBEAT_MISSES,
};

/// How long a shutting-down worker waits for the gateway to acknowledge its last replies.
const REPLY_ACK_WAIT: Duration = Duration::from_secs(5);

/// How a session ended.
#[derive(Debug)]
pub(super) enum SessionEnd {
    /// Shut down: everything ran and was answered; closed with `WORKER_SHUTDOWN`.
    Shutdown,
    /// The gateway is draining: connect again elsewhere.
    GatewayClosing,
    /// Lost, for this reason: reconnect.
    Lost(String),
}

/// Runs the session until it ends.
pub(super) async fn run(
    ctx: Arc<Ctx>,
    ws: Ws,
    intervals: ReadyIntervals,
    connection_id: &str,
) -> SessionEnd {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut paused = ctx.state.shutting_down();
    let first = if paused {
        Kind::WorkerPause
    } else {
        Kind::WorkerReady
    };
    if sink
        .send(Message::Binary(frame::empty(first).into()))
        .await
        .is_err()
    {
        return SessionEnd::Lost("could not write to the socket".to_owned());
    }
    ctx.state.activate(tx.clone());
    let mut heartbeat = tokio::time::interval(intervals.heartbeat);
    heartbeat.tick().await;
    let mut lease = tokio::time::interval(intervals.extend_lease);
    lease.tick().await;
    let mut pending_heartbeats = 0u32;
    let mut shutdown = ctx.state.shutdown.subscribe();
    let mut acks_deadline: Option<tokio::time::Instant> = None;
    let end = loop {
        if paused && ctx.state.nothing_running() {
            if ctx.state.idle() {
                break SessionEnd::Shutdown;
            }
            let deadline =
                *acks_deadline.get_or_insert_with(|| tokio::time::Instant::now() + REPLY_ACK_WAIT);
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(connection = %connection_id, "shutting down without the gateway's ack of every reply");
                break SessionEnd::Shutdown;
            }
        }
        tokio::select! {
            incoming = stream.next() => {
                let msg = match read(incoming) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(end) => break end,
                };
                if msg.kind() == Kind::GatewayHeartbeat {
                    pending_heartbeats = 0;
                    continue;
                }
                if let Some(end) = handle(&ctx, &tx, &msg, paused, connection_id) {
                    break end;
                }
            }
            out = rx.recv() => {
                if let Some(bytes) = out {
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        break SessionEnd::Lost("could not write to the socket".to_owned());
                    }
                }
            }
            _ = heartbeat.tick() => {
                if pending_heartbeats >= WORKER_HEARTBEAT_MISSES {
                    break SessionEnd::Lost(format!("{pending_heartbeats} heartbeats went unanswered"));
                }
                pending_heartbeats += 1;
                let _ = tx.send(frame::empty(Kind::WorkerHeartbeat));
            }
            _ = lease.tick() => extend_leases(&ctx, &tx),
            changed = shutdown.changed(), if !paused => {
                if changed.is_err() || *shutdown.borrow() {
                    paused = true;
                    tracing::info!(connection = %connection_id, in_flight = ctx.state.in_flight_ids().len(), "connect worker draining: no new work, finishing what runs");
                    let _ = tx.send(frame::empty(Kind::WorkerPause));
                }
            }
            () = ctx.state.settled.notified(), if paused => {}
        }
    };
    ctx.state.deactivate();
    // Send what is queued (replies, the pause) before closing.
    while let Ok(bytes) = rx.try_recv() {
        let _ = sink.send(Message::Binary(bytes.into())).await;
    }
    let (code, reason) = match &end {
        SessionEnd::Shutdown => (CloseCode::Normal, WorkerDisconnectReason::WorkerShutdown),
        SessionEnd::GatewayClosing => (CloseCode::Normal, WorkerDisconnectReason::GatewayDraining),
        SessionEnd::Lost(_) => (CloseCode::Library(4001), WorkerDisconnectReason::Unexpected),
    };
    let close = CloseFrame {
        code,
        reason: reason.as_str_name().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(close))),
    )
    .await;
    end
}

/// A socket message as a frame: `Ok(None)` for pings and pongs, `Err` when the session ends.
fn read(
    incoming: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<ConnectMessage>, SessionEnd> {
    let lost = |why: String| SessionEnd::Lost(why);
    match incoming {
        None => Err(lost("the gateway closed the connection".to_owned())),
        Some(Err(e)) => Err(lost(format!("socket error: {e}"))),
        Some(Ok(Message::Binary(bytes))) => frame::decode(&bytes)
            .map(Some)
            .map_err(|e| lost(format!("bad frame from the gateway: {e}"))),
        Some(Ok(Message::Close(close))) => {
            let why = close
                .map(|c| format!(" ({} {})", u16::from(c.code), c.reason))
                .unwrap_or_default();
            Err(lost(format!("the gateway closed the connection{why}")))
        }
        Some(Ok(Message::Text(_))) => Err(lost("the gateway sent a text frame".to_owned())),
        Some(Ok(_)) => Ok(None),
    }
}

/// One `WORKER_REQUEST_EXTEND_LEASE` per running request whose lease is still held.
fn extend_leases(ctx: &Ctx, tx: &mpsc::UnboundedSender<Vec<u8>>) {
    for f in ctx.state.leases() {
        let r = &f.request;
        let ext = WorkerRequestExtendLeaseData {
            request_id: r.request_id.clone(),
            account_id: r.account_id.clone(),
            env_id: r.env_id.clone(),
            app_id: r.app_id.clone(),
            function_slug: r.function_slug.clone(),
            step_id: r.step_id.clone(),
            system_trace_ctx: r.system_trace_ctx.clone(),
            user_trace_ctx: r.user_trace_ctx.clone(),
            run_id: r.run_id.clone(),
            lease_id: f.lease_id.clone().unwrap_or_default(),
        };
        let _ = tx.send(frame::encode(Kind::WorkerRequestExtendLease, &ext));
    }
}

/// One frame from the gateway (heartbeats are handled by the caller). `Some`: the session ends.
fn handle(
    ctx: &Arc<Ctx>,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
    msg: &ConnectMessage,
    paused: bool,
    connection_id: &str,
) -> Option<SessionEnd> {
    match msg.kind() {
        Kind::GatewayExecutorRequest => {
            let req: GatewayExecutorRequestData =
                match frame::payload(msg, "GatewayExecutorRequestData") {
                    Ok(r) => r,
                    Err(e) => return Some(SessionEnd::Lost(e.to_string())),
                };
            take_request(ctx, tx, req, paused, connection_id);
            None
        }
        Kind::WorkerReplyAck => {
            match frame::payload::<WorkerReplyAckData>(msg, "WorkerReplyAckData") {
                Ok(ack) => ctx.state.reply_acked(&ack.request_id),
                Err(e) => return Some(SessionEnd::Lost(e.to_string())),
            }
            None
        }
        Kind::WorkerRequestExtendLeaseAck => {
            let ack: WorkerRequestExtendLeaseAckData =
                match frame::payload(msg, "WorkerRequestExtendLeaseAckData") {
                    Ok(a) => a,
                    Err(e) => return Some(SessionEnd::Lost(e.to_string())),
                };
            let lost = ack.new_lease_id.is_none();
            if ctx.state.lease_extended(&ack.request_id, ack.new_lease_id) && lost {
                tracing::warn!(request = %ack.request_id, "lease lost: the gateway did not renew it (another worker may have the request); the execution goes on but its reply may be discarded");
            }
            None
        }
        Kind::GatewayClosing => Some(SessionEnd::GatewayClosing),
        Kind::SyncFailed => Some(SessionEnd::Lost(
            "the gateway reported SYNC_FAILED after the handshake".to_owned(),
        )),
        other => Some(SessionEnd::Lost(format!(
            "unexpected {} from the gateway",
            other.as_str_name()
        ))),
    }
}

/// Acks and starts an executor request (or answers a duplicate from what the worker has).
fn take_request(
    ctx: &Arc<Ctx>,
    tx: &mpsc::UnboundedSender<Vec<u8>>,
    req: GatewayExecutorRequestData,
    paused: bool,
    connection_id: &str,
) {
    if paused {
        tracing::warn!(connection = %connection_id, request = %req.request_id, "executor request while draining: not taken");
        return;
    }
    if req.app_name != ctx.app_id {
        tracing::warn!(connection = %connection_id, request = %req.request_id, app = %req.app_name, "executor request for an app this worker does not serve: not taken");
        return;
    }
    let ack = WorkerRequestAckData {
        request_id: req.request_id.clone(),
        account_id: req.account_id.clone(),
        env_id: req.env_id.clone(),
        app_id: req.app_id.clone(),
        function_slug: req.function_slug.clone(),
        step_id: req.step_id.clone(),
        system_trace_ctx: req.system_trace_ctx.clone(),
        user_trace_ctx: req.user_trace_ctx.clone(),
        run_id: req.run_id.clone(),
    };
    let _ = tx.send(frame::encode(Kind::WorkerRequestAck, &ack));
    match ctx.state.lookup(&req.request_id) {
        Known::Running => {
            tracing::debug!(request = %req.request_id, "executor request already running: acked again");
        }
        Known::Answered(reply) => {
            tracing::debug!(request = %req.request_id, "executor request already answered: reply sent again");
            let _ = tx.send(reply);
        }
        Known::New => {
            tracing::debug!(request = %req.request_id, run = %req.run_id, function = %req.function_slug, "executor request acked");
            ctx.state.begin(req.clone());
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let id = req.request_id.clone();
                match execution::run(&ctx.handler, &req, ctx.sign.as_ref()).await {
                    Ok(reply) => ctx
                        .state
                        .finish(&id, frame::encode(Kind::WorkerReply, &reply)),
                    Err(e) => {
                        tracing::error!(request = %id, error = %e, "connect execution could not run");
                        ctx.state.abandon(&id);
                    }
                }
            });
        }
    }
}
