//! [`Payload`]: a JSON value a hook may read or replace, parsed only when a hook asks for it.

use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::Error;

/// How the raw bytes of a [`Payload`] hold its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The bytes are the value.
    Bare,
    /// The bytes are a memoized step, `{"data": value}` or `{"error": …}`.
    Envelope,
}

/// A JSON value passing through a hook: an event's data, a step's output, the function's output.
///
/// It stays the raw bytes it arrived as until a hook calls [`Payload::get_mut`] (or
/// [`Payload::set`]), so middleware that does not look at a value costs nothing for it.
#[derive(Debug)]
pub struct Payload {
    raw: Bytes,
    shape: Shape,
    value: Option<Value>,
}

impl Payload {
    /// A payload whose bytes are the value itself.
    pub(crate) fn bare(raw: Bytes) -> Payload {
        Payload {
            raw,
            shape: Shape::Bare,
            value: None,
        }
    }

    /// A memoized step (`{"data": …}` / `{"error": …}`): hooks see the `data`.
    pub(crate) fn envelope(raw: Bytes) -> Payload {
        Payload {
            raw,
            shape: Shape::Envelope,
            value: None,
        }
    }

    /// A value serialized from `raw`.
    pub(crate) fn from_raw(raw: &RawValue) -> Payload {
        Payload::bare(Bytes::copy_from_slice(raw.get().as_bytes()))
    }

    /// A new payload holding `value` (for tests of your own hooks).
    pub fn new(value: Value) -> Payload {
        Payload {
            raw: Bytes::new(),
            shape: Shape::Bare,
            value: Some(value),
        }
    }

    /// The value, parsed on first use. `None` for a memoized step that failed (it has an
    /// `error`, no data). An error when the bytes are not JSON.
    pub fn get_mut(&mut self) -> Result<Option<&mut Value>, Error> {
        if self.value.is_none() {
            let parsed: Value = serde_json::from_slice(&self.raw).map_err(|e| {
                Error::msg(format!("a middleware could not read a JSON value: {e}")).non_retriable()
            })?;
            self.value = Some(parsed);
        }
        let value = self.value.as_mut().expect("parsed above");
        match self.shape {
            Shape::Bare => Ok(Some(value)),
            Shape::Envelope => match value {
                Value::Object(map) if map.contains_key("error") => Ok(None),
                Value::Object(map) => Ok(Some(map.entry("data").or_insert(Value::Null))),
                _ => Ok(None),
            },
        }
    }

    /// Replaces the value (for a memoized step: its `data`).
    pub fn set(&mut self, value: Value) {
        match self.shape {
            Shape::Bare => self.value = Some(value),
            Shape::Envelope => {
                let mut map = serde_json::Map::new();
                map.insert("data".to_owned(), value);
                self.value = Some(Value::Object(map));
            }
        }
    }

    /// Whether a hook has parsed or replaced the value.
    pub(crate) fn touched(&self) -> bool {
        self.value.is_some()
    }

    /// The bytes to go on with: the original ones when no hook touched the value.
    pub(crate) fn into_bytes(self) -> Bytes {
        match self.value {
            None => self.raw,
            Some(v) => Bytes::from(serde_json::to_vec(&v).unwrap_or_else(|_| b"null".to_vec())),
        }
    }

    /// The value as a `RawValue` (the output of a step or a function).
    pub(crate) fn into_raw(self) -> Result<Box<RawValue>, Error> {
        let bytes = self.into_bytes();
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::msg(format!("a middleware produced invalid UTF-8: {e}")))?;
        RawValue::from_string(text)
            .map_err(|e| Error::msg(format!("a middleware produced invalid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untouched_payloads_keep_their_bytes() {
        let p = Payload::envelope(Bytes::from_static(br#"{"data": 1}"#));
        assert!(!p.touched());
        assert_eq!(&p.into_bytes()[..], br#"{"data": 1}"#);
    }

    #[test]
    fn envelopes_expose_their_data_and_hide_errors() {
        let mut p = Payload::envelope(Bytes::from_static(br#"{"data":{"a":1}}"#));
        *p.get_mut().unwrap().unwrap() = json!("x");
        assert_eq!(&p.into_bytes()[..], br#"{"data":"x"}"#);
        let mut e = Payload::envelope(Bytes::from_static(br#"{"error":{"name":"E"}}"#));
        assert!(e.get_mut().unwrap().is_none());
        let mut bad = Payload::bare(Bytes::from_static(b"{"));
        assert!(!bad.get_mut().unwrap_err().is_retriable());
    }
}
