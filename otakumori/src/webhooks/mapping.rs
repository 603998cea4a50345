//! Provider-neutral result of mapping a verified webhook payload.

use inngest_sdk::event::decode_data;
use inngest_sdk::EventType;
use serde::de::DeserializeOwned;
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

impl OutEvent {
    /// One of the app's typed events ([`crate::events`]) with its Inngest event id: the name is
    /// the type's, the data its JSON.
    pub fn typed<T: EventType>(id: &str, data: &T) -> Result<OutEvent, PayloadError> {
        let data = serde_json::to_value(data).map_err(|e| PayloadError::Invalid {
            field: ".".into(),
            reason: e.to_string(),
        })?;
        Ok(OutEvent {
            name: T::NAME.to_owned(),
            id: id.to_owned(),
            data,
        })
    }
}

/// A part of a provider payload (`at`, e.g. `data`) decoded into one of the app's types; what
/// does not match is [`PayloadError::Invalid`] naming the field under `at`.
pub fn decode_part<T: DeserializeOwned>(at: &str, part: &Value) -> Result<T, PayloadError> {
    decode_data(part.clone()).map_err(|e| match e {
        inngest_sdk::event::DecodeError::Data { path, message } => PayloadError::Invalid {
            field: if path == "." {
                at.to_owned()
            } else {
                format!("{at}.{path}")
            },
            reason: message,
        },
        other => PayloadError::Invalid {
            field: at.to_owned(),
            reason: other.to_string(),
        },
    })
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
    /// A field does not match the app's event type.
    #[error("payload field `{field}` is invalid: {reason}")]
    Invalid {
        /// Where (`data.email_addresses`).
        field: String,
        /// What serde reported.
        reason: String,
    },
}
