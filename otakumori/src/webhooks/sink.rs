//! Where verified webhook events go ([`EventSink`]) and what happens when that fails
//! ([`FailureRecorder`]).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::mapping::OutEvent;
use inngest_sdk::event::Event;

/// Sends events to Inngest. Implemented for the SDK client (see [`super::inngest_sink`]) and by
/// [`RecordingSink`] for tests, so the routes can be exercised without an Inngest server.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Sends all `events` in one batch; returns the ids Inngest assigned, in order.
    async fn send(&self, events: Vec<Event<Value>>) -> Result<Vec<String>, SinkError>;
}

/// Sending to Inngest failed (unreachable, timed out, rejected). The webhook route answers 503
/// so the provider redelivers, and hands the failure to the [`FailureRecorder`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("sending events to Inngest failed: {message}")]
pub struct SinkError {
    /// Human-readable cause (never contains event payloads).
    pub message: String,
}

impl SinkError {
    /// A sink error with the given cause.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The webhook provider a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Clerk (svix).
    Clerk,
    /// Stripe.
    Stripe,
    /// Printify.
    Printify,
}

impl Provider {
    /// `"clerk"`, `"stripe"` or `"printify"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Clerk => "clerk",
            Provider::Stripe => "stripe",
            Provider::Printify => "printify",
        }
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event that could not be forwarded, as plain data (for a `failed_operations.payload`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedEvent {
    /// Inngest event name.
    pub name: String,
    /// Inngest event id (provider delivery id).
    pub id: String,
    /// Event data.
    pub data: Value,
}

impl From<&OutEvent> for FailedEvent {
    fn from(e: &OutEvent) -> Self {
        Self {
            name: e.name.clone(),
            id: e.id.clone(),
            data: e.data.clone(),
        }
    }
}

/// A verified delivery whose events could not be sent to Inngest. The provider has been told to
/// retry (5xx), and this record lets the app keep a durable trace (e.g. a `failed_operations` row).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngressFailure {
    /// Which route received it.
    pub provider: Provider,
    /// The provider's delivery / event id (svix-id, `evt_…`, Printify delivery id).
    pub delivery_id: String,
    /// The events that were not sent.
    pub events: Vec<FailedEvent>,
    /// The sink's error message.
    pub error: String,
}

/// Hook called once per failed forward, before the route answers 5xx. Implementations should
/// handle (and log) their own errors; the route's answer does not depend on them.
#[async_trait]
pub trait FailureRecorder: Send + Sync {
    /// Records one failure.
    async fn record(&self, failure: IngressFailure);
}

/// Test sink: records every batch; can be switched to fail. Returns the events' own ids (the
/// provider ids) as the "Inngest ids", or `rec-<n>` for events without one.
#[derive(Debug, Clone, Default)]
pub struct RecordingSink {
    inner: Arc<Mutex<RecordingInner>>,
}

#[derive(Debug, Default)]
struct RecordingInner {
    events: Vec<Event<Value>>,
    batches: usize,
    fail_with: Option<String>,
}

/// One event as the [`RecordingSink`] saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// `name`.
    pub name: String,
    /// `id` (`None` if unset).
    pub id: Option<String>,
    /// `data`.
    pub data: Value,
}

impl RecordingSink {
    /// An empty, succeeding sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on every `send` fails with `message` (and records nothing).
    pub fn fail_with(&self, message: impl Into<String>) {
        self.lock().fail_with = Some(message.into());
    }

    /// From now on `send` succeeds again.
    pub fn succeed(&self) {
        self.lock().fail_with = None;
    }

    /// The SDK events received so far, in order.
    pub fn events(&self) -> Vec<Event<Value>> {
        self.lock().events.clone()
    }

    /// The events received so far as plain `name`, `id`, `data`.
    pub fn recorded(&self) -> Vec<RecordedEvent> {
        self.lock().events.iter().map(recorded).collect()
    }

    /// Number of successful `send` calls.
    pub fn batches(&self) -> usize {
        self.lock().batches
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RecordingInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn recorded(event: &Event<Value>) -> RecordedEvent {
    RecordedEvent {
        name: event.name.clone(),
        id: event.id.clone(),
        data: event.data.clone(),
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn send(&self, events: Vec<Event<Value>>) -> Result<Vec<String>, SinkError> {
        let mut inner = self.lock();
        if let Some(msg) = &inner.fail_with {
            return Err(SinkError::new(msg.clone()));
        }
        let start = inner.events.len();
        let ids = events
            .iter()
            .enumerate()
            .map(|(i, e)| e.id.clone().unwrap_or_else(|| format!("rec-{}", start + i)))
            .collect();
        inner.events.extend(events);
        inner.batches += 1;
        Ok(ids)
    }
}

/// Test recorder: keeps every [`IngressFailure`] it is given.
#[derive(Debug, Clone, Default)]
pub struct RecordingFailureRecorder {
    failures: Arc<Mutex<Vec<IngressFailure>>>,
}

impl RecordingFailureRecorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The failures recorded so far.
    pub fn failures(&self) -> Vec<IngressFailure> {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl FailureRecorder for RecordingFailureRecorder {
    async fn record(&self, failure: IngressFailure) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(failure);
    }
}

/// Builds the SDK event for a mapped webhook event: `Event::new(name, data).with_id(id)`.
pub fn to_sdk_event(event: &OutEvent) -> Event<Value> {
    Event::new(event.name.clone(), event.data.clone()).with_id(event.id.clone())
}
