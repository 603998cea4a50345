//! Clerk webhooks, delivered through svix.
//!
//! # Verification (svix scheme)
//!
//! * Headers: `svix-id`, `svix-timestamp` (unix seconds), `svix-signature`.
//! * Secret: `whsec_<base64>`; the HMAC key is the base64-decoded part after `whsec_`
//!   (a secret without the prefix is accepted and decoded the same way).
//! * Signed content: `{svix-id}.{svix-timestamp}.{raw body}`, HMAC-SHA256, base64 encoded.
//! * `svix-signature` is a space-separated list of `<version>,<base64>` entries; the delivery is
//!   accepted when any `v1` entry matches (svix sends several during secret rotation). Entries of
//!   other versions are ignored.
//! * The timestamp must be within [`SVIX_TOLERANCE_SECS`] of now, in either direction.
//!
//! Every comparison goes through `hmac`'s constant-time `verify_slice`.
//!
//! # Mapping
//!
//! | Clerk `type`   | Inngest event        | `data`                        |
//! |----------------|----------------------|-------------------------------|
//! | `user.created` | `clerk/user.created` | the payload's `data` as-is    |
//! | `user.updated` | `clerk/user.updated` | the payload's `data` as-is    |
//! | `user.deleted` | `clerk/user.deleted` | `{id, deleted: true}`         |
//!
//! The Inngest event id is the `svix-id`, so a redelivery of the same message is deduplicated by
//! Inngest. Any other type is acknowledged and ignored.

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::mapping::{decode_part, Mapped, OutEvent, PayloadError};
use super::B64;
use crate::events::{ClerkUserCreated, ClerkUserDeleted, ClerkUserObject, ClerkUserUpdated};

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the message id (also the Inngest event id).
pub const SVIX_ID_HEADER: &str = "svix-id";
/// Header carrying the unix timestamp (seconds) the message was signed at.
pub const SVIX_TIMESTAMP_HEADER: &str = "svix-timestamp";
/// Header carrying the space-separated `v1,<base64>` signatures.
pub const SVIX_SIGNATURE_HEADER: &str = "svix-signature";
/// Allowed clock skew between the signature timestamp and now, in both directions (5 minutes).
pub const SVIX_TOLERANCE_SECS: i64 = 5 * 60;

/// Inngest event name for Clerk `user.created`.
pub const EVENT_USER_CREATED: &str =
    <crate::events::ClerkUserCreated as inngest_sdk::EventType>::NAME;
/// Inngest event name for Clerk `user.updated`.
pub const EVENT_USER_UPDATED: &str =
    <crate::events::ClerkUserUpdated as inngest_sdk::EventType>::NAME;
/// Inngest event name for Clerk `user.deleted`.
pub const EVENT_USER_DELETED: &str =
    <crate::events::ClerkUserDeleted as inngest_sdk::EventType>::NAME;

/// A parsed svix signing secret (the decoded HMAC key). `Debug` never prints the key.
#[derive(Clone)]
pub struct SvixSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for SvixSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SvixSecret(<redacted>)")
    }
}

/// The configured svix secret is not `whsec_<base64>`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid svix webhook secret: expected `whsec_<base64>`")]
pub struct InvalidSvixSecret;

impl SvixSecret {
    /// Parses `whsec_<base64>` (the `whsec_` prefix is optional); the key is the decoded bytes.
    pub fn parse(secret: &str) -> Result<Self, InvalidSvixSecret> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        if encoded.is_empty() {
            return Err(InvalidSvixSecret);
        }
        let key = B64.decode(encoded).map_err(|_| InvalidSvixSecret)?;
        if key.is_empty() {
            return Err(InvalidSvixSecret);
        }
        Ok(Self { key })
    }

    /// Uses `key` directly as the HMAC key (no base64 step).
    pub fn from_key(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    fn mac(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.key).expect("HMAC accepts keys of any length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl std::str::FromStr for SvixSecret {
    type Err = InvalidSvixSecret;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Why a svix delivery was rejected. Messages never include the secret or the payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SvixError {
    /// A required header is absent (or not valid UTF-8 / empty).
    #[error("missing or unreadable `{0}` header")]
    MissingHeader(&'static str),
    /// `svix-timestamp` is not an integer number of seconds.
    #[error("`svix-timestamp` is not a unix timestamp")]
    InvalidTimestamp,
    /// The timestamp is more than the tolerance away from now.
    #[error("`svix-timestamp` is outside the {tolerance_secs}s tolerance (off by {skew_secs}s)")]
    TimestampOutOfTolerance {
        /// `timestamp - now`, in seconds (negative: in the past).
        skew_secs: i64,
        /// The tolerance that was applied.
        tolerance_secs: i64,
    },
    /// `svix-signature` holds no `v1,<base64>` entry.
    #[error("`svix-signature` contains no `v1` signature")]
    NoV1Signature,
    /// No `v1` entry matches the expected signature.
    #[error("no `svix-signature` entry matches")]
    SignatureMismatch,
}

/// Verifies a svix delivery over the raw body bytes, given the three header values and the
/// current unix time in seconds. Pure: no clock, no I/O.
pub fn verify(
    secret: &SvixSecret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SvixError> {
    verify_with_tolerance(
        secret,
        msg_id,
        timestamp,
        signature_header,
        body,
        now_unix,
        SVIX_TOLERANCE_SECS,
    )
}

/// [`verify`] with an explicit tolerance in seconds.
pub fn verify_with_tolerance(
    secret: &SvixSecret,
    msg_id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SvixError> {
    if msg_id.is_empty() {
        return Err(SvixError::MissingHeader(SVIX_ID_HEADER));
    }
    if timestamp.is_empty() {
        return Err(SvixError::MissingHeader(SVIX_TIMESTAMP_HEADER));
    }
    if signature_header.trim().is_empty() {
        return Err(SvixError::MissingHeader(SVIX_SIGNATURE_HEADER));
    }
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SvixError::InvalidTimestamp)?;
    let skew = ts.saturating_sub(now_unix);
    if skew.saturating_abs() > tolerance_secs {
        return Err(SvixError::TimestampOutOfTolerance {
            skew_secs: skew,
            tolerance_secs,
        });
    }

    let mac = secret.mac(msg_id, timestamp, body);
    let mut saw_v1 = false;
    let mut matched = false;
    for entry in signature_header.split_whitespace() {
        let Some((version, sig)) = entry.split_once(',') else {
            continue;
        };
        if version != "v1" {
            continue;
        }
        saw_v1 = true;
        let Ok(sig) = B64.decode(sig) else {
            continue;
        };
        // Check every entry (no early exit) so timing does not reveal which one matched.
        if mac.clone().verify_slice(&sig).is_ok() {
            matched = true;
        }
    }
    match (saw_v1, matched) {
        (_, true) => Ok(()),
        (false, false) => Err(SvixError::NoV1Signature),
        (true, false) => Err(SvixError::SignatureMismatch),
    }
}

/// [`verify`] reading the three `svix-*` headers from a header map.
pub fn verify_headers(
    secret: &SvixSecret,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SvixError> {
    let id = header_str(headers, SVIX_ID_HEADER)?;
    let ts = header_str(headers, SVIX_TIMESTAMP_HEADER)?;
    let sig = header_str(headers, SVIX_SIGNATURE_HEADER)?;
    verify_with_tolerance(secret, id, ts, sig, body, now_unix, tolerance_secs)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SvixError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(SvixError::MissingHeader(name))
}

/// **Test/demo helper.** Computes the base64 svix signature of `{msg_id}.{timestamp}.{body}`
/// (without the `v1,` prefix).
pub fn signature(secret: &SvixSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = secret.mac(msg_id, &timestamp.to_string(), body);
    B64.encode(mac.finalize().into_bytes())
}

/// **Test/demo helper.** Returns the `svix-signature` header value (`v1,<base64>`) for a
/// delivery, exactly as svix would sign it.
pub fn sign(secret: &SvixSecret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    format!("v1,{}", signature(secret, msg_id, timestamp, body))
}

/// **Test/demo helper.** All three headers of a signed svix delivery, as `(name, value)` pairs.
pub fn signed_headers(
    secret: &SvixSecret,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> [(&'static str, String); 3] {
    [
        (SVIX_ID_HEADER, msg_id.to_string()),
        (SVIX_TIMESTAMP_HEADER, timestamp.to_string()),
        (SVIX_SIGNATURE_HEADER, sign(secret, msg_id, timestamp, body)),
    ]
}

/// Maps a verified Clerk payload (`{type, data, ...}`) to Inngest events. Pure.
pub fn map_event(svix_id: &str, payload: &Value) -> Result<Mapped, PayloadError> {
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .ok_or(PayloadError::MissingField("type"))?;
    let name = match kind {
        "user.created" => EVENT_USER_CREATED,
        "user.updated" => EVENT_USER_UPDATED,
        "user.deleted" => EVENT_USER_DELETED,
        other => return Ok(Mapped::Ignored(other.to_string())),
    };
    let data = payload
        .get("data")
        .filter(|d| d.is_object())
        .ok_or(PayloadError::MissingField("data"))?;
    let user_id = data
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(PayloadError::MissingField("data.id"))?;
    let event = match name {
        EVENT_USER_DELETED => OutEvent::typed(
            svix_id,
            &ClerkUserDeleted {
                id: user_id.to_owned(),
                deleted: true,
            },
        )?,
        EVENT_USER_CREATED => OutEvent::typed(svix_id, &ClerkUserCreated(user_object(data)?))?,
        _ => OutEvent::typed(svix_id, &ClerkUserUpdated(user_object(data)?))?,
    };
    Ok(Mapped::Forward(vec![event]))
}

/// The Clerk user object of a `user.*` payload.
fn user_object(data: &Value) -> Result<ClerkUserObject, PayloadError> {
    decode_part("data", data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_debug_is_redacted() {
        let s = SvixSecret::parse("whsec_c2VjcmV0").unwrap();
        assert_eq!(format!("{s:?}"), "SvixSecret(<redacted>)");
    }

    #[test]
    fn secret_rejects_garbage() {
        assert_eq!(
            SvixSecret::parse("whsec_!!!").unwrap_err(),
            InvalidSvixSecret
        );
        assert_eq!(SvixSecret::parse("whsec_").unwrap_err(), InvalidSvixSecret);
        assert_eq!(SvixSecret::parse("").unwrap_err(), InvalidSvixSecret);
    }

    #[test]
    fn sign_then_verify_roundtrip() {
        let s = SvixSecret::parse("whsec_c2VjcmV0").unwrap();
        let sig = sign(&s, "msg_1", 1000, b"{}");
        assert_eq!(verify(&s, "msg_1", "1000", &sig, b"{}", 1000), Ok(()));
        assert_eq!(
            verify(&s, "msg_1", "1000", "v2,abc", b"{}", 1000),
            Err(SvixError::NoV1Signature)
        );
        assert_eq!(
            verify(&s, "msg_1", "1000", "v1,not-base64!", b"{}", 1000),
            Err(SvixError::SignatureMismatch)
        );
        assert_eq!(
            verify(&s, "msg_1", "soon", &sig, b"{}", 1000),
            Err(SvixError::InvalidTimestamp)
        );
    }

    #[test]
    fn ignores_other_types_and_requires_user_id() {
        let m = map_event("m", &json!({"type": "session.created", "data": {}})).unwrap();
        assert_eq!(m, Mapped::Ignored("session.created".into()));
        assert_eq!(
            map_event("m", &json!({"type": "user.created", "data": {}})).unwrap_err(),
            PayloadError::MissingField("data.id")
        );
        assert_eq!(
            map_event("m", &json!([1, 2])).unwrap_err(),
            PayloadError::MissingField("type")
        );
        // A field that does not fit the typed event is named.
        let bad = json!({"type": "user.created", "data": {"id": "user_1", "email_addresses": "x"}});
        match map_event("m", &bad).unwrap_err() {
            PayloadError::Invalid { field, .. } => assert_eq!(field, "data.email_addresses"),
            other => panic!("{other:?}"),
        }
        // A good one is the typed event's JSON, named by its type.
        let ok = json!({"type": "user.deleted", "data": {"id": "user_1", "object": "user"}});
        let Mapped::Forward(ev) = map_event("m", &ok).unwrap() else {
            panic!("expected forward")
        };
        assert_eq!(ev[0].name, "clerk/user.deleted");
        assert_eq!(ev[0].data, json!({"id": "user_1", "deleted": true}));
    }
}
