//! Provider-neutral result of mapping a verified webhook payload.

use serde_json::Value;

/// One Inngest event to send, before it is turned into an SDK [`inngest_sdk::event::Event`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutEvent {
    /// Inngest event name, e.g. `clerk/user.created`.
    pub name: String,
    /// Inngest event id (the provider's delivery/event id), used by Inngest to deduplicate.
    pub id: String,
    /// Event `data`.
    pub data: Value,
}

/// What a verified payload maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum Mapped {
    /// Send these events to Inngest, then acknowledge.
    Forward(Vec<OutEvent>),
    /// A type/topic the app does not handle: acknowledge with `{"received":true,"ignored":<type>}`.
    Ignored(String),
}

/// A verified payload is not the JSON shape the provider documents (answered with 400).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    /// The body is not JSON.
    #[error("body is not valid JSON")]
    InvalidJson,
    /// A required field is missing or has the wrong type.
    #[error("payload field `{0}` is missing or has the wrong type")]
    MissingField(&'static str),
}
