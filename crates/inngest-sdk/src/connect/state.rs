//! What a worker keeps across its connections: the requests it is running (with their leases),
//! the replies the gateway has not acknowledged yet, the sender of the connection that is live
//! now, and whether it is shutting down.
//!
//! Executions belong to the worker, not to a connection: a socket that drops mid-step does not
//! stop the step, and its reply waits here until a connection takes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use tokio::sync::{mpsc, watch, Notify};

use inngest_protocol::connect::GatewayExecutorRequestData;

/// A request the worker acked and is running.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    /// The request as the gateway sent it (payload emptied), for lease extensions.
    pub(super) request: GatewayExecutorRequestData,
    /// The current lease; `None` once the gateway said the lease is gone.
    pub(super) lease_id: Option<String>,
}

#[derive(Default)]
struct Inner {
    in_flight: HashMap<String, InFlight>,
    /// Request id → the encoded `WORKER_REPLY` frame, until `WORKER_REPLY_ACK`.
    outbox: BTreeMap<String, Vec<u8>>,
    /// The live connection's outgoing frames.
    active: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

/// The worker's state, shared by its connections and executions.
pub(super) struct WorkerState {
    inner: Mutex<Inner>,
    /// `true` once shutdown was asked for.
    pub(super) shutdown: watch::Sender<bool>,
    /// Woken when an execution finishes or a reply is acknowledged.
    pub(super) settled: Notify,
}

impl WorkerState {
    pub(super) fn new() -> Self {
        WorkerState {
            inner: Mutex::default(),
            shutdown: watch::channel(false).0,
            settled: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Nothing running and every reply acknowledged.
    pub(super) fn idle(&self) -> bool {
        let st = self.lock();
        st.in_flight.is_empty() && st.outbox.is_empty()
    }

    /// Nothing running (replies may still wait for their ack).
    pub(super) fn nothing_running(&self) -> bool {
        self.lock().in_flight.is_empty()
    }

    /// What a new request id is to the worker.
    pub(super) fn lookup(&self, request_id: &str) -> Known {
        let st = self.lock();
        if st.in_flight.contains_key(request_id) {
            Known::Running
        } else if let Some(frame) = st.outbox.get(request_id) {
            Known::Answered(frame.clone())
        } else {
            Known::New
        }
    }

    pub(super) fn begin(&self, request: GatewayExecutorRequestData) {
        let mut request = request;
        request.request_payload = Vec::new();
        let lease_id = Some(request.lease_id.clone()).filter(|l| !l.is_empty());
        self.lock()
            .in_flight
            .insert(request.request_id.clone(), InFlight { request, lease_id });
    }

    /// Records a finished execution's reply and sends it on the live connection, if any.
    pub(super) fn finish(&self, request_id: &str, reply_frame: Vec<u8>) {
        let mut st = self.lock();
        st.in_flight.remove(request_id);
        st.outbox.insert(request_id.to_owned(), reply_frame.clone());
        if let Some(tx) = &st.active {
            let _ = tx.send(reply_frame);
        }
        drop(st);
        self.settled.notify_waiters();
    }

    /// Forgets an execution that produced no reply (it could not run).
    pub(super) fn abandon(&self, request_id: &str) {
        self.lock().in_flight.remove(request_id);
        self.settled.notify_waiters();
    }

    pub(super) fn reply_acked(&self, request_id: &str) {
        self.lock().outbox.remove(request_id);
        self.settled.notify_waiters();
    }

    /// Makes `tx` the live connection and hands it the replies still unacknowledged.
    pub(super) fn activate(&self, tx: mpsc::UnboundedSender<Vec<u8>>) {
        let mut st = self.lock();
        for frame in st.outbox.values() {
            let _ = tx.send(frame.clone());
        }
        st.active = Some(tx);
    }

    /// The live connection went away.
    pub(super) fn deactivate(&self) {
        self.lock().active = None;
    }

    /// The running requests whose leases are still held.
    pub(super) fn leases(&self) -> Vec<InFlight> {
        self.lock()
            .in_flight
            .values()
            .filter(|f| f.lease_id.is_some())
            .cloned()
            .collect()
    }

    /// The gateway's answer to an extension: the next lease, or `None` (lost). Returns
    /// `false` when the request is no longer running (a late ack).
    pub(super) fn lease_extended(&self, request_id: &str, new_lease: Option<String>) -> bool {
        let mut st = self.lock();
        match st.in_flight.get_mut(request_id) {
            Some(f) => {
                f.lease_id = new_lease;
                true
            }
            None => false,
        }
    }

    /// Ids of the requests running now.
    pub(super) fn in_flight_ids(&self) -> Vec<String> {
        self.lock().in_flight.keys().cloned().collect()
    }
}

/// What the worker knows of a request id.
pub(super) enum Known {
    New,
    Running,
    /// Already answered: the reply frame to send again.
    Answered(Vec<u8>),
}

/// What every connection and execution of a worker needs.
pub(super) struct Ctx {
    /// The serve engine the executions run on.
    pub(super) handler: crate::serve::ServeHandler,
    pub(super) state: WorkerState,
    /// The key the synthetic serve requests are signed with (cloud mode).
    pub(super) sign: Option<inngest_protocol::signature::SigningKey>,
    /// The app this worker serves (`app_name` of the requests it takes).
    pub(super) app_id: String,
}
