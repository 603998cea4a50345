//! Events: what is sent to the event API and what triggers functions.
//!
//! ```
//! use inngest_sdk::event::Event;
//! use serde_json::json;
//!
//! let event = Event::new("billing/invoice.created", json!({ "invoice_id": "inv_42" }))
//!     .with_id("inv_42-created")
//!     .with_ts(1_718_000_000_000);
//! let wire = serde_json::to_value(&event).unwrap();
//! assert_eq!(
//!     wire,
//!     json!({
//!         "name": "billing/invoice.created",
//!         "data": { "invoice_id": "inv_42" },
//!         "id": "inv_42-created",
//!         "ts": 1_718_000_000_000i64
//!     })
//! );
//!
//! // Events received from Inngest may omit `data` and carry extra fields.
//! let received: Event = serde_json::from_str(r#"{"name":"a/b","ts":1,"extra":true}"#).unwrap();
//! assert_eq!(received.data, json!({}));
//! ```

use serde::de::{DeserializeOwned, Deserializer, Error as _};
use serde::{Deserialize, Serialize};

/// Prefix reserved for Inngest's own events (`inngest/function.finished`, …).
pub use inngest_protocol::wire::RESERVED_EVENT_PREFIX as RESERVED_NAME_PREFIX;

/// An Inngest event. `T` is the type of its `data` payload (a JSON object on the wire).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Event<T = serde_json::Value> {
    /// Event name, e.g. `billing/invoice.created`.
    pub name: String,
    /// Payload. Missing or `null` on input becomes `{}` when `T` accepts it.
    pub data: T,
    /// Optional idempotency key: a second event with the same id does not trigger functions again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Timestamp in unix milliseconds; the SDK fills in "now" when sending if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// Deprecated user object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<serde_json::Value>,
    /// Event schema version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v: Option<String>,
}

impl<T> Event<T> {
    /// A new event with `name` and `data`, no id and no timestamp.
    pub fn new(name: impl Into<String>, data: T) -> Event<T> {
        Event {
            name: name.into(),
            data,
            id: None,
            ts: None,
            user: None,
            v: None,
        }
    }

    /// Sets the idempotency id.
    pub fn with_id(mut self, id: impl Into<String>) -> Event<T> {
        self.id = Some(id.into());
        self
    }

    /// Sets the timestamp (unix milliseconds).
    pub fn with_ts(mut self, ts_ms: i64) -> Event<T> {
        self.ts = Some(ts_ms);
        self
    }

    /// Sets the (deprecated) user object.
    pub fn with_user(mut self, user: serde_json::Value) -> Event<T> {
        self.user = Some(user);
        self
    }

    /// Sets the event schema version.
    pub fn with_version(mut self, v: impl Into<String>) -> Event<T> {
        self.v = Some(v.into());
        self
    }
}

/// Wire shape used for deserialization; unknown fields are ignored.
#[derive(Deserialize)]
struct WireEvent<T> {
    name: String,
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ts: Option<i64>,
    #[serde(default)]
    user: Option<serde_json::Value>,
    #[serde(default)]
    v: Option<String>,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Event<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireEvent::<T>::deserialize(deserializer)?;
        let data = match wire.data {
            Some(data) => data,
            None => empty_data().map_err(D::Error::custom)?,
        };
        Ok(Event {
            name: wire.name,
            data,
            id: wire.id,
            ts: wire.ts,
            user: wire.user,
            v: wire.v,
        })
    }
}

/// `T` built from `{}` (or, failing that, from `null`) for events without `data`.
fn empty_data<T: DeserializeOwned>() -> Result<T, String> {
    let empty = serde_json::Value::Object(serde_json::Map::new());
    serde_json::from_value(empty)
        .or_else(|_| serde_json::from_value(serde_json::Value::Null))
        .map_err(|_| "missing field `data`".to_owned())
}

/// Checks an event name before sending: non-empty and not in the reserved `inngest/` namespace.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("event name must not be empty".to_owned());
    }
    if name.starts_with(RESERVED_NAME_PREFIX) {
        return Err(format!(
            "event name {name:?} uses the reserved `{RESERVED_NAME_PREFIX}` prefix"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Invoice {
        id: String,
    }

    #[test]
    fn serializes_minimal_event_without_optional_fields() {
        let e = Event::new("a/b", json!({"x": 1}));
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"name":"a/b","data":{"x":1}}"#
        );
    }

    #[test]
    fn serializes_all_fields() {
        let e = Event::new("a/b", json!({}))
            .with_id("i")
            .with_ts(5)
            .with_user(json!({"email": "a@b.c"}))
            .with_version("2024-06-01");
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"name":"a/b","data":{},"id":"i","ts":5,"user":{"email":"a@b.c"},"v":"2024-06-01"})
        );
    }

    #[test]
    fn deserializes_captured_event_with_unknown_fields() {
        // Shape of an event as the executor sends it (from the wire captures).
        let raw = r#"{"data":{"n":41},"id":"01M8GA0PS6ST45CKVJMZ4RG1CF","name":"test/hello","ts":1795843709734,"user":{},"meta":{"x":1}}"#;
        let e: Event = serde_json::from_str(raw).unwrap();
        assert_eq!(e.name, "test/hello");
        assert_eq!(e.data, json!({"n": 41}));
        assert_eq!(e.id.as_deref(), Some("01M8GA0PS6ST45CKVJMZ4RG1CF"));
        assert_eq!(e.ts, Some(1_795_843_709_734));
        assert_eq!(e.user, Some(json!({})));
    }

    #[test]
    fn missing_or_null_data_defaults() {
        let e: Event = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(e.data, json!({}));
        let e: Event = serde_json::from_str(r#"{"name":"a","data":null}"#).unwrap();
        assert_eq!(e.data, json!({}));
        let e: Event<Option<Invoice>> = serde_json::from_str(r#"{"name":"a"}"#).unwrap();
        assert_eq!(e.data, None);
    }

    #[test]
    fn typed_data() {
        let e: Event<Invoice> = serde_json::from_str(r#"{"name":"a","data":{"id":"x"}}"#).unwrap();
        assert_eq!(e.data, Invoice { id: "x".into() });
        let err = serde_json::from_str::<Event<Invoice>>(r#"{"name":"a"}"#).unwrap_err();
        assert!(err.to_string().contains("data"), "{err}");
        assert!(serde_json::from_str::<Event>(r#"{"data":{}}"#).is_err());
    }

    #[test]
    fn name_validation() {
        assert!(validate_name("app/thing").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("  ").is_err());
        assert!(validate_name("inngest/function.finished").is_err());
    }
}
