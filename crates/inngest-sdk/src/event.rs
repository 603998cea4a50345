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

    /// The same event with its data mapped by `f` (which may refuse it).
    pub fn try_map<U, E>(self, f: impl FnOnce(&str, T) -> Result<U, E>) -> Result<Event<U>, E> {
        let data = f(&self.name, self.data)?;
        Ok(Event {
            name: self.name,
            data,
            id: self.id,
            ts: self.ts,
            user: self.user,
            v: self.v,
        })
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

/// A JSON value: what [`EventSet::from_parts`] receives as an event's `data`.
pub use serde_json::Value as JsonValue;

/// An event type: binds an event's name to the type of its `data`, in one place.
///
/// Derive it with `#[derive(Event)] #[event(name = "shop/order.created")]` (next to serde's
/// `Serialize` and `Deserialize`), or implement it by hand. Triggers
/// ([`FunctionBuilder::on`](crate::function::FunctionBuilder::on)), sends
/// ([`Inngest::send`](crate::Inngest::send)), waits ([`WaitFor`](crate::WaitFor)), cancels
/// ([`Cancel::on`](crate::Cancel::on)) and invokes then take the type and never repeat the name.
///
/// ```
/// use inngest_sdk::{Event, EventType};
///
/// #[derive(serde::Serialize, serde::Deserialize, Event)]
/// #[event(name = "shop/order.created")]
/// struct OrderCreated { order_id: String }
///
/// assert_eq!(OrderCreated::NAME, "shop/order.created");
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an event type: no event name is bound to it",
    label = "this type has no event name",
    note = "add `#[derive(inngest_sdk::Event)]` and `#[event(name = \"...\")]` to `{Self}`, or send an untyped `Event::new(name, data)`"
)]
pub trait EventType: Serialize + DeserializeOwned {
    /// The event's name, e.g. `shop/order.created`.
    const NAME: &'static str;
}

/// The events a function with several typed triggers receives, decoded by their name: an enum
/// with one newtype variant per event type, `#[derive(EventSet)]`. Every [`EventType`] is a set
/// of one (its data decodes whatever the name, so an invoked run decodes too).
///
/// ```
/// use inngest_sdk::{Event, EventSet};
///
/// #[derive(serde::Serialize, serde::Deserialize, Event)]
/// #[event(name = "shop/order.created")]
/// struct OrderCreated { order_id: String }
///
/// #[derive(serde::Serialize, serde::Deserialize, Event)]
/// #[event(name = "shop/order.paid")]
/// struct OrderPaid { order_id: String, cents: u64 }
///
/// #[derive(EventSet)]
/// enum ShopEvent { Created(OrderCreated), Paid(OrderPaid) }
///
/// assert_eq!(ShopEvent::names(), ["shop/order.created", "shop/order.paid"]);
/// let paid = ShopEvent::from_parts("shop/order.paid", serde_json::json!({ "order_id": "o1", "cents": 5 }));
/// assert!(matches!(paid, Ok(ShopEvent::Paid(OrderPaid { cents: 5, .. }))));
/// ```
pub trait EventSet: Sized {
    /// The names of the events in the set (one trigger each).
    fn names() -> Vec<&'static str>;

    /// Decodes the `data` of an event called `name`.
    fn from_parts(name: &str, data: JsonValue) -> Result<Self, DecodeError>;

    /// Decodes a whole event from its JSON. The default reads the envelope, then
    /// [`EventSet::from_parts`]; paths in errors start at the event (`data.order_id`).
    fn decode_event(raw: &[u8]) -> Result<Event<Self>, DecodeError> {
        let de = &mut serde_json::Deserializer::from_slice(raw);
        let event: Event<JsonValue> =
            serde_path_to_error::deserialize(de).map_err(DecodeError::from_path)?;
        event.try_map(|name, data| Self::from_parts(name, data).map_err(|e| e.under("data")))
    }
}

impl<T: EventType> EventSet for T {
    fn names() -> Vec<&'static str> {
        vec![T::NAME]
    }

    fn from_parts(_name: &str, data: JsonValue) -> Result<Self, DecodeError> {
        decode_data(data)
    }

    fn decode_event(raw: &[u8]) -> Result<Event<Self>, DecodeError> {
        let de = &mut serde_json::Deserializer::from_slice(raw);
        serde_path_to_error::deserialize(de).map_err(DecodeError::from_path)
    }
}

/// Decodes event data into `T`, naming the field that does not match.
pub fn decode_data<T: DeserializeOwned>(data: JsonValue) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(data).map_err(|e| DecodeError::Data {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

/// An event (or its `data`) that does not match its Rust type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field does not match; `path` is where (`order_id`, `data.items[0].sku`, or `.`).
    #[error("at `{path}`: {message}")]
    Data {
        /// Where in the JSON the mismatch is.
        path: String,
        /// What serde reported.
        message: String,
    },
    /// The event's name is none of the set's.
    #[error("event {name:?} is none of {expected:?}")]
    UnknownName {
        /// The event's name.
        name: String,
        /// The names the set decodes.
        expected: Vec<String>,
    },
}

impl DecodeError {
    /// The error for an event whose name is none of `expected`.
    pub fn unknown_name(name: &str, expected: &[&str]) -> DecodeError {
        DecodeError::UnknownName {
            name: name.to_owned(),
            expected: expected.iter().map(|n| (*n).to_owned()).collect(),
        }
    }

    pub(crate) fn from_path(e: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
        DecodeError::Data {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        }
    }

    /// The same error with its path below `prefix` (`data` + `order_id` → `data.order_id`).
    pub(crate) fn under(self, prefix: &str) -> DecodeError {
        match self {
            DecodeError::Data { path, message } => DecodeError::Data {
                path: if path == "." {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{path}")
                },
                message,
            },
            other => other,
        }
    }
}

/// Event data that could not be serialized into JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// serde_json refused the data.
    #[error("event data could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Anything that can be sent as one event: every [`EventType`] (named by its type), an
/// [`Event<T>`] or `&Event<T>` (named explicitly), and `#[derive(EventSet)]` enums.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent as an event: no event name is bound to it",
    label = "not an event",
    note = "derive `inngest_sdk::Event` with `#[event(name = \"...\")]` on the data type, or wrap the data: `Event::new(name, data)`"
)]
pub trait IntoEvent {
    /// The event with its name and its data as JSON.
    fn into_event(self) -> Result<Event, EncodeError>;
}

impl<T: EventType> IntoEvent for T {
    fn into_event(self) -> Result<Event, EncodeError> {
        Ok(Event::new(T::NAME, serde_json::to_value(self)?))
    }
}

impl<D: Serialize> IntoEvent for Event<D> {
    fn into_event(self) -> Result<Event, EncodeError> {
        (&self).into_event()
    }
}

impl<D: Serialize> IntoEvent for &Event<D> {
    fn into_event(self) -> Result<Event, EncodeError> {
        Ok(Event {
            name: self.name.clone(),
            data: serde_json::to_value(&self.data)?,
            id: self.id.clone(),
            ts: self.ts,
            user: self.user.clone(),
            v: self.v.clone(),
        })
    }
}

/// One event or several, for [`Step::send_event`](crate::Step::send_event): anything
/// [`IntoEvent`], or a `Vec` or array of them.
pub trait IntoEvents {
    /// The events, encoded.
    fn into_events(self) -> Result<Vec<Event>, EncodeError>;
}

impl<E: IntoEvent> IntoEvents for E {
    fn into_events(self) -> Result<Vec<Event>, EncodeError> {
        Ok(vec![self.into_event()?])
    }
}

impl<E: IntoEvent> IntoEvents for Vec<E> {
    fn into_events(self) -> Result<Vec<Event>, EncodeError> {
        self.into_iter().map(IntoEvent::into_event).collect()
    }
}

impl<E: IntoEvent, const N: usize> IntoEvents for [E; N] {
    fn into_events(self) -> Result<Vec<Event>, EncodeError> {
        self.into_iter().map(IntoEvent::into_event).collect()
    }
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
