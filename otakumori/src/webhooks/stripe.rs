//! Stripe webhooks.
//!
//! # Verification (Stripe "verify manually" scheme)
//!
//! * Header `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…][,v0=<hex>]`: comma-separated
//!   `key=value` pairs. Several `v1` entries appear while a secret is being rolled; `v0` (test-mode
//!   legacy scheme) and unknown keys are ignored.
//! * Signed payload: `{t}.{raw body}`, HMAC-SHA256, lower-case hex.
//! * Key: the **whole** endpoint secret string (`whsec_…`) as raw ASCII bytes. Unlike svix,
//!   Stripe does not base64-decode it.
//! * Accepted when any `v1` matches (constant time, `hmac`'s `verify_slice`) and `|now - t|` is
//!   at most the tolerance ([`STRIPE_TOLERANCE_SECS`] by default).
//!
//! # Mapping to `stripe/webhook`
//!
//! The types handled by `process-payment-webhook` ([`HANDLED_TYPES`]: `checkout.session.completed`,
//! `payment_intent.succeeded`, `payment_intent.payment_failed`) become one `stripe/webhook` event
//! with data `{id, type, created, livemode, object}` (`object` = the payload's `data.object`) and
//! Inngest event id = the Stripe event id (`evt_…`). Other types are acknowledged and ignored.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::mapping::{decode_part, Mapped, OutEvent, PayloadError};
use crate::events::StripeWebhook;

type HmacSha256 = Hmac<Sha256>;

/// The signature header (`Stripe-Signature`; HTTP header names are case-insensitive).
pub const STRIPE_SIGNATURE_HEADER: &str = "stripe-signature";
/// Default tolerance between the signed timestamp and now (Stripe's libraries use 300 s).
pub const STRIPE_TOLERANCE_SECS: i64 = 300;
/// Inngest event name for every forwarded Stripe event.
pub const EVENT_STRIPE_WEBHOOK: &str =
    <crate::events::StripeWebhook as inngest_sdk::EventType>::NAME;
/// Stripe event types forwarded to Inngest; everything else is acknowledged and ignored.
pub const HANDLED_TYPES: [&str; 3] = [
    "checkout.session.completed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
];

/// A Stripe endpoint secret (`whsec_…`), used verbatim as the HMAC key. `Debug` is redacted.
#[derive(Clone)]
pub struct StripeSecret(Vec<u8>);

impl StripeSecret {
    /// Wraps the endpoint secret exactly as shown in the Stripe dashboard / CLI.
    pub fn new(secret: impl AsRef<str>) -> Self {
        Self(secret.as_ref().trim().as_bytes().to_vec())
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl std::fmt::Debug for StripeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeSecret(<redacted>)")
    }
}

/// Why a Stripe delivery was rejected. Messages never include the secret or the payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StripeError {
    /// No `Stripe-Signature` header (or not UTF-8 / empty).
    #[error("missing or unreadable `Stripe-Signature` header")]
    MissingHeader,
    /// The header has no usable `t=` timestamp.
    #[error("`Stripe-Signature` has no valid `t=` timestamp")]
    InvalidTimestamp,
    /// The header has no `v1=` entry.
    #[error("`Stripe-Signature` contains no `v1` signature")]
    NoV1Signature,
    /// The timestamp is more than the tolerance away from now.
    #[error("`Stripe-Signature` timestamp is outside the {tolerance_secs}s tolerance (off by {skew_secs}s)")]
    TimestampOutOfTolerance {
        /// `t - now`, in seconds (negative: in the past).
        skew_secs: i64,
        /// The tolerance that was applied.
        tolerance_secs: i64,
    },
    /// No `v1` entry matches the expected signature.
    #[error("no `Stripe-Signature` v1 entry matches")]
    SignatureMismatch,
}

/// Verifies a Stripe delivery over the raw body bytes with the default 300 s tolerance.
/// Returns the signed timestamp. Pure: the caller passes the current unix time.
pub fn verify(
    secret: &StripeSecret,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
) -> Result<i64, StripeError> {
    verify_with_tolerance(
        secret,
        signature_header,
        body,
        now_unix,
        STRIPE_TOLERANCE_SECS,
    )
}

/// [`verify`] with an explicit tolerance in seconds.
pub fn verify_with_tolerance(
    secret: &StripeSecret,
    signature_header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, StripeError> {
    if signature_header.trim().is_empty() {
        return Err(StripeError::MissingHeader);
    }
    let mut timestamp: Option<&str> = None;
    let mut v1: Vec<&str> = Vec::new();
    for pair in signature_header.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        match k.trim() {
            "t" => timestamp = Some(v.trim()),
            "v1" => v1.push(v.trim()),
            _ => {}
        }
    }
    let t_str = timestamp.ok_or(StripeError::InvalidTimestamp)?;
    let t: i64 = t_str.parse().map_err(|_| StripeError::InvalidTimestamp)?;
    if v1.is_empty() {
        return Err(StripeError::NoV1Signature);
    }
    let skew = t.saturating_sub(now_unix);
    if skew.saturating_abs() > tolerance_secs {
        return Err(StripeError::TimestampOutOfTolerance {
            skew_secs: skew,
            tolerance_secs,
        });
    }
    let mac = secret.mac(t_str, body);
    let mut matched = false;
    for sig in v1 {
        let Ok(sig) = hex::decode(sig) else {
            continue;
        };
        // No early exit: every entry is checked.
        if mac.clone().verify_slice(&sig).is_ok() {
            matched = true;
        }
    }
    if matched {
        Ok(t)
    } else {
        Err(StripeError::SignatureMismatch)
    }
}

/// [`verify_with_tolerance`] reading `Stripe-Signature` from a header map.
pub fn verify_headers(
    secret: &StripeSecret,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<i64, StripeError> {
    let header = headers
        .get(STRIPE_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(StripeError::MissingHeader)?;
    verify_with_tolerance(secret, header, body, now_unix, tolerance_secs)
}

/// **Test/demo helper.** Lower-case hex HMAC-SHA256 of `{timestamp}.{body}` keyed with the secret.
pub fn signature(secret: &StripeSecret, timestamp: i64, body: &[u8]) -> String {
    hex::encode(
        secret
            .mac(&timestamp.to_string(), body)
            .finalize()
            .into_bytes(),
    )
}

/// **Test/demo helper.** A complete `Stripe-Signature` header value: `t=<timestamp>,v1=<hex>`.
pub fn sign(secret: &StripeSecret, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// Maps a verified Stripe event object to Inngest events. Pure.
pub fn map_event(payload: &Value) -> Result<Mapped, PayloadError> {
    let kind = payload
        .get("type")
        .and_then(Value::as_str)
        .ok_or(PayloadError::MissingField("type"))?;
    let id = payload
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(PayloadError::MissingField("id"))?;
    if !HANDLED_TYPES.contains(&kind) {
        return Ok(Mapped::Ignored(kind.to_string()));
    }
    let object = payload
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or(PayloadError::MissingField("data.object"))?;
    let created = payload
        .get("created")
        .and_then(Value::as_i64)
        .ok_or(PayloadError::MissingField("created"))?;
    let livemode = payload
        .get("livemode")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let event = StripeWebhook {
        id: id.to_owned(),
        kind: kind.to_owned(),
        created: Some(created),
        livemode,
        object: decode_part("data.object", object)?,
    };
    Ok(Mapped::Forward(vec![OutEvent::typed(id, &event)?]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roundtrip_and_header_parsing() {
        let s = StripeSecret::new("whsec_test");
        let h = sign(&s, 1000, b"{}");
        assert_eq!(verify(&s, &h, b"{}", 1000), Ok(1000));
        // whitespace and v0/unknown keys are tolerated
        let h2 = format!(
            " t=1000 , v0=00, scheme=x, v1={}",
            signature(&s, 1000, b"{}")
        );
        assert_eq!(verify(&s, &h2, b"{}", 1000), Ok(1000));
        assert_eq!(
            verify(&s, "v1=00", b"{}", 1000),
            Err(StripeError::InvalidTimestamp)
        );
        assert_eq!(
            verify(&s, "t=abc,v1=00", b"{}", 1000),
            Err(StripeError::InvalidTimestamp)
        );
        assert_eq!(
            verify(&s, "t=1000,v0=00", b"{}", 1000),
            Err(StripeError::NoV1Signature)
        );
        assert_eq!(
            verify(&s, "t=1000,v1=zz", b"{}", 1000),
            Err(StripeError::SignatureMismatch)
        );
        assert_eq!(
            verify(&s, "garbage", b"{}", 1000),
            Err(StripeError::InvalidTimestamp)
        );
    }

    #[test]
    fn mapping() {
        let p = json!({"id": "evt_1", "type": "customer.created", "data": {"object": {}}});
        assert_eq!(
            map_event(&p).unwrap(),
            Mapped::Ignored("customer.created".into())
        );
        let p = json!({"id": "evt_1", "type": "payment_intent.succeeded", "created": 5});
        assert_eq!(
            map_event(&p).unwrap_err(),
            PayloadError::MissingField("data.object")
        );
    }
}
