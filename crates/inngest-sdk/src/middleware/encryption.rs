//! End-to-end encryption of run data, wire-compatible with the JS SDK's
//! `@inngest/middleware-encryption` (2.x, its default `inngest/libsodium` strategy): data the
//! Rust SDK encrypts, a JS app decrypts, and the reverse.
//!
//! Encrypted, Inngest only ever stores and shows envelopes:
//! `{"__ENCRYPTED__":true,"__STRATEGY__":"inngest/libsodium","data":"<base64>"}`, where `data`
//! is the standard base64 (with padding) of a 24-byte random nonce followed by the libsodium
//! `crypto_secretbox_easy` box (XSalsa20-Poly1305: the 16-byte tag, then the ciphertext) of the
//! value's JSON. The 32-byte key is the unkeyed BLAKE2b-256 hash of the configured key string
//! (trimmed), like libsodium's `crypto_generichash(32, key)`.
//!
//! What [`Encryption`] encrypts: every step output (not `null`), the function's output (not
//! `null`), and in events sent with the client or `step.send_event`, the one field of `data`
//! named by [`Encryption::event_field`] (default `encrypted`). It decrypts every envelope it
//! meets: in the fields of incoming events' data and in memoized step outputs. Keys rotate with
//! [`Encryption::fallback_key`]: new values use the current key, old ones decrypt with any.
//!
//! A value that no key opens (a wrong key, or a tampered value) fails the call with a
//! non-retriable `DecryptionError`. Neither keys nor plaintext are ever logged or put into
//! errors.
//!
//! ```
//! use inngest_sdk::middleware::encryption::Encryption;
//! use serde_json::json;
//!
//! let enc = Encryption::new("current secret").unwrap().fallback_key("previous secret");
//! let envelope = enc.encrypt_value(&json!({ "card": "4242" })).unwrap();
//! assert_eq!(envelope["__STRATEGY__"], "inngest/libsodium");
//! assert_eq!(enc.decrypt_value(&envelope).unwrap(), json!({ "card": "4242" }));
//! let client = inngest_sdk::Inngest::builder("shop").dev(true).middleware(enc).build().unwrap();
//! # let _ = client;
//! ```

use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use rand::RngCore as _;
use serde_json::{Map, Value};

use super::{HookFuture, Input, Middleware, Payload, RunInfo, StepInfo};
use crate::error::Error;
use crate::event::Event;

/// The marker key of an encrypted value.
pub const ENCRYPTION_MARKER: &str = "__ENCRYPTED__";
/// The key naming the strategy of an encrypted value.
pub const STRATEGY_MARKER: &str = "__STRATEGY__";
/// The strategy this middleware encrypts with (libsodium's secretbox).
pub const LIBSODIUM_STRATEGY: &str = "inngest/libsodium";
/// The event `data` field encrypted by default.
pub const DEFAULT_EVENT_FIELD: &str = "encrypted";
/// Nonce length of XSalsa20-Poly1305.
pub const NONCE_BYTES: usize = 24;

/// Why a value could not be encrypted or decrypted. Messages never contain keys or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptionError {
    /// No key was given (or only blank ones).
    #[error("missing encryption key: give a non-empty key")]
    MissingKey,
    /// The envelope's `data` is not base64 of a nonce and a box.
    #[error("the encrypted value is malformed: {0}")]
    Malformed(&'static str),
    /// No key opened the box: a wrong key, or a value that was changed.
    #[error(
        "could not decrypt a value: no key opens it (wrong key, or the value was tampered with)"
    )]
    Decrypt,
    /// The value was encrypted with a strategy this middleware does not read.
    #[error("unsupported encryption strategy {0:?} (only \"inngest/libsodium\" is supported)")]
    UnsupportedStrategy(String),
    /// The decrypted bytes are not JSON (or a value could not be serialized).
    #[error("the decrypted value is not JSON")]
    NotJson,
}

impl EncryptionError {
    /// The non-retriable [`Error`] a hook fails with (`EncryptionError` / `DecryptionError`).
    pub fn into_error(self) -> Error {
        let e = self;
        let name = match e {
            EncryptionError::MissingKey => "EncryptionError",
            _ => "DecryptionError",
        };
        Error::msg(e.to_string()).with_name(name).non_retriable()
    }
}

/// The encryption middleware (see the [module docs](self)). Register it on the client, so it
/// runs outside every other middleware.
#[derive(Clone)]
pub struct Encryption {
    /// Derived keys: the current one first, then the fallbacks.
    keys: Vec<Key>,
    field: String,
    decrypt_only: bool,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption")
            .field("keys", &self.keys.len())
            .field("event_field", &self.field)
            .field("decrypt_only", &self.decrypt_only)
            .finish()
    }
}

fn derive(key: &str) -> Option<Key> {
    let key = key.trim();
    (!key.is_empty()).then(|| Blake2b::<U32>::digest(key.as_bytes()))
}

impl Encryption {
    /// Encrypts with `key` (and decrypts with it).
    pub fn new(key: impl AsRef<str>) -> Result<Encryption, EncryptionError> {
        let key = derive(key.as_ref()).ok_or(EncryptionError::MissingKey)?;
        Ok(Encryption {
            keys: vec![key],
            field: DEFAULT_EVENT_FIELD.to_owned(),
            decrypt_only: false,
        })
    }

    /// Also decrypts with `key` (a previous key, during a rotation). Blank keys are ignored.
    pub fn fallback_key(mut self, key: impl AsRef<str>) -> Encryption {
        self.keys.extend(derive(key.as_ref()));
        self
    }

    /// The field of event `data` to encrypt in sent events (default `encrypted`).
    pub fn event_field(mut self, field: impl Into<String>) -> Encryption {
        self.field = field.into();
        self
    }

    /// Only decrypt: encrypt nothing (e.g. while rolling the middleware out).
    pub fn decrypt_only(mut self, on: bool) -> Encryption {
        self.decrypt_only = on;
        self
    }

    /// Whether `value` is an envelope of an encrypted value (of any strategy).
    pub fn is_encrypted(value: &Value) -> bool {
        value.get(ENCRYPTION_MARKER) == Some(&Value::Bool(true))
            && value.get("data").is_some_and(Value::is_string)
    }

    /// The envelope of `value`, with a random nonce.
    pub fn encrypt_value(&self, value: &Value) -> Result<Value, EncryptionError> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        self.encrypt_value_with_nonce(value, &nonce)
    }

    /// The envelope of `value` with the given nonce: deterministic, for tests. Never reuse a
    /// nonce with the same key for real data.
    pub fn encrypt_value_with_nonce(
        &self,
        value: &Value,
        nonce: &[u8; NONCE_BYTES],
    ) -> Result<Value, EncryptionError> {
        let plaintext = serde_json::to_vec(value).map_err(|_| EncryptionError::NotJson)?;
        let sealed = XSalsa20Poly1305::new(&self.keys[0])
            .encrypt(Nonce::from_slice(nonce), plaintext.as_slice())
            .map_err(|_| EncryptionError::Decrypt)?;
        let mut combined = Vec::with_capacity(NONCE_BYTES + sealed.len());
        combined.extend_from_slice(nonce);
        combined.extend_from_slice(&sealed);
        let mut envelope = Map::new();
        envelope.insert(ENCRYPTION_MARKER.to_owned(), Value::Bool(true));
        envelope.insert(
            STRATEGY_MARKER.to_owned(),
            Value::String(LIBSODIUM_STRATEGY.to_owned()),
        );
        envelope.insert(
            "data".to_owned(),
            Value::String(base64::engine::general_purpose::STANDARD.encode(combined)),
        );
        Ok(Value::Object(envelope))
    }

    /// The value inside an envelope; any other value as it is.
    pub fn decrypt_value(&self, value: &Value) -> Result<Value, EncryptionError> {
        if !Encryption::is_encrypted(value) {
            return Ok(value.clone());
        }
        match value.get(STRATEGY_MARKER) {
            Some(Value::String(s)) if s == LIBSODIUM_STRATEGY => {}
            Some(Value::String(s)) => return Err(EncryptionError::UnsupportedStrategy(s.clone())),
            _ => return Err(EncryptionError::UnsupportedStrategy("v0 (AES)".to_owned())),
        }
        let data = value
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let combined = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| EncryptionError::Malformed("data is not base64"))?;
        if combined.len() < NONCE_BYTES + 16 {
            return Err(EncryptionError::Malformed("data is too short"));
        }
        let (nonce, sealed) = combined.split_at(NONCE_BYTES);
        let plaintext = self
            .keys
            .iter()
            .find_map(|k| {
                XSalsa20Poly1305::new(k)
                    .decrypt(Nonce::from_slice(nonce), sealed)
                    .ok()
            })
            .ok_or(EncryptionError::Decrypt)?;
        serde_json::from_slice(&plaintext).map_err(|_| EncryptionError::NotJson)
    }

    /// Decrypts every field of an event's `data` that is an envelope.
    fn decrypt_event_data(&self, event: &mut Value) -> Result<(), EncryptionError> {
        if let Some(Value::Object(data)) = event.get_mut("data") {
            for value in data.values_mut() {
                if Encryption::is_encrypted(value) {
                    *value = self.decrypt_value(value)?;
                }
            }
        }
        Ok(())
    }

    /// Encrypts a non-null output.
    fn encrypt_output(&self, output: &mut Payload) -> Result<(), Error> {
        if self.decrypt_only {
            return Ok(());
        }
        if let Some(value) = output.get_mut()? {
            if !value.is_null() {
                *value = self
                    .encrypt_value(value)
                    .map_err(EncryptionError::into_error)?;
            }
        }
        Ok(())
    }
}

impl Middleware for Encryption {
    fn name(&self) -> &str {
        "inngest:encryption"
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        for event in input.events_mut()? {
            self.decrypt_event_data(event)
                .map_err(EncryptionError::into_error)?;
        }
        Ok(())
    }

    fn transform_step_input(&self, _step: &StepInfo, data: &mut Payload) -> Result<(), Error> {
        if let Some(value) = data.get_mut()? {
            if Encryption::is_encrypted(value) {
                *value = self
                    .decrypt_value(value)
                    .map_err(EncryptionError::into_error)?;
            }
        }
        Ok(())
    }

    fn transform_step_output(&self, _step: &StepInfo, output: &mut Payload) -> Result<(), Error> {
        self.encrypt_output(output)
    }

    fn transform_output(&self, _run: &RunInfo, output: &mut Payload) -> Result<(), Error> {
        self.encrypt_output(output)
    }

    fn before_send_events<'a>(&'a self, events: &'a mut Vec<Event>) -> HookFuture<'a, ()> {
        let result = (|| {
            if self.decrypt_only {
                return Ok(());
            }
            for event in events.iter_mut() {
                if let Some(field) = event.data.get_mut(self.field.as_str()) {
                    *field = self.encrypt_value(field)?;
                }
            }
            Ok::<(), EncryptionError>(())
        })();
        Box::pin(std::future::ready(
            result.map_err(EncryptionError::into_error),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip_and_rotate() {
        let old = Encryption::new("old").unwrap();
        let new = Encryption::new(" new ").unwrap().fallback_key("old");
        let sealed = old.encrypt_value(&json!({"a": [1, "x"]})).unwrap();
        assert_eq!(new.decrypt_value(&sealed).unwrap(), json!({"a": [1, "x"]}));
        let resealed = new.encrypt_value(&json!(5)).unwrap();
        assert_eq!(old.decrypt_value(&resealed), Err(EncryptionError::Decrypt));
        assert_eq!(
            Encryption::new("new")
                .unwrap()
                .decrypt_value(&resealed)
                .unwrap(),
            json!(5)
        );
        assert_eq!(
            new.decrypt_value(&json!({"plain": 1})).unwrap(),
            json!({"plain": 1})
        );
        assert_eq!(
            Encryption::new("  ").unwrap_err(),
            EncryptionError::MissingKey
        );
    }

    #[test]
    fn tampered_values_fail_without_leaking() {
        let enc = Encryption::new("secret-key").unwrap();
        let mut sealed = enc.encrypt_value(&json!("card 4242")).unwrap();
        let data = sealed["data"].as_str().unwrap().to_owned();
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(&data)
            .unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        sealed["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&bytes));
        let err = enc.decrypt_value(&sealed).unwrap_err();
        assert_eq!(err, EncryptionError::Decrypt);
        let err = err.into_error();
        assert_eq!(err.name(), "DecryptionError");
        assert!(!err.is_retriable());
        assert!(!err.message().contains("4242") && !err.message().contains("secret-key"));
        sealed["data"] = json!("***");
        assert!(matches!(
            enc.decrypt_value(&sealed),
            Err(EncryptionError::Malformed(_))
        ));
        sealed[STRATEGY_MARKER] = json!("inngest/aes");
        assert_eq!(
            enc.decrypt_value(&sealed),
            Err(EncryptionError::UnsupportedStrategy("inngest/aes".into()))
        );
    }

    #[test]
    fn the_envelope_has_the_js_shape() {
        let enc = Encryption::new("k").unwrap();
        let sealed = enc
            .encrypt_value_with_nonce(&json!({}), &[7; NONCE_BYTES])
            .unwrap();
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(
            text.starts_with(
                r#"{"__ENCRYPTED__":true,"__STRATEGY__":"inngest/libsodium","data":""#
            ),
            "{text}"
        );
        // nonce (24) + tag (16) + "{}" (2) bytes.
        let data = base64::engine::general_purpose::STANDARD
            .decode(sealed["data"].as_str().unwrap())
            .unwrap();
        assert_eq!((data.len(), &data[..24]), (42, &[7u8; 24][..]));
    }
}
