//! [`EventSink`] for the SDK client, [`inngest_sdk::client::Inngest`].

use std::sync::Arc;

use async_trait::async_trait;
use inngest_sdk::client::Inngest;
use inngest_sdk::event::Event;
use serde_json::Value;

use super::sink::{EventSink, SinkError};

/// Sends through [`Inngest::send_many`] (which retries transient failures itself); any
/// remaining error becomes a [`SinkError`] and the webhook route answers 503.
#[async_trait]
impl EventSink for Inngest {
    async fn send(&self, events: Vec<Event<Value>>) -> Result<Vec<String>, SinkError> {
        self.send_many(&events)
            .await
            .map_err(|e| SinkError::new(e.to_string()))
    }
}

/// The SDK client as a shareable sink, for [`WebhookState::new`](super::WebhookState::new).
pub fn inngest_sink(client: Inngest) -> Arc<dyn EventSink> {
    Arc::new(client)
}
