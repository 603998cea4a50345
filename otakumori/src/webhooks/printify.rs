//! Printify webhooks.
//!
//! # Verification
//!
//! * Header `X-Pfy-Signature: sha256=<hex>`; the `sha256=` prefix is optional (both forms are
//!   accepted), hex is case-insensitive.
//! * Signature: HMAC-SHA256 over the raw body, keyed with the webhook secret's bytes, hex encoded.
//! * Constant-time comparison (`hmac`'s `verify_slice`). There is no timestamp, so replay
//!   protection relies on the delivery `id` being the Inngest event id.
//!
//! The header name and body shape follow public integrations; they are not verified against
//! Printify's official documentation.
//!
//! # Mapping
//!
//! Body: `{id, type, created_at, resource: {id, type, data}}`; the topic is `type`.
//!
//! | Topic        | Inngest event              | `data`                                                        |
//! |--------------|----------------------------|---------------------------------------------------------------|
//! | `product:*`  | `printify/products.update` | `{productIds: [resource.id], reason: "webhook", shopId?}`     |
//! | `order:*`    | `printify/order.updated`   | `{printifyOrderId, topic, status, shopId?, resource}`         |
//!
//! `printify/order.updated` is a PORT extension ("order topics … record them /
//! optionally update orders.status"): `status` is `"shipped"` for `order:shipment:created`,
//! `"delivered"` for `order:shipment:delivered`, otherwise `null`. `shopId` is copied from
//! `resource.data.shop_id` when present. The Inngest event id is the delivery `id`. Other topics
//! are acknowledged and ignored.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::mapping::{Mapped, OutEvent, PayloadError};
use crate::events::{PrintifyOrderUpdated, PrintifyProductsUpdate, ShopId};

type HmacSha256 = Hmac<Sha256>;

/// The signature header (`X-Pfy-Signature`).
pub const PRINTIFY_SIGNATURE_HEADER: &str = "x-pfy-signature";
/// Inngest event for `product:*` topics (folded into the catalog sync).
pub const EVENT_PRODUCTS_UPDATE: &str =
    <crate::events::PrintifyProductsUpdate as inngest_sdk::EventType>::NAME;
/// Inngest event for `order:*` topics (PORT extension, see the module docs).
pub const EVENT_ORDER_UPDATED: &str =
    <crate::events::PrintifyOrderUpdated as inngest_sdk::EventType>::NAME;

/// The Printify webhook secret (raw bytes as configured). `Debug` is redacted.
#[derive(Clone)]
pub struct PrintifySecret(Vec<u8>);

impl PrintifySecret {
    /// Wraps the secret exactly as registered with Printify.
    pub fn new(secret: impl AsRef<[u8]>) -> Self {
        Self(secret.as_ref().to_vec())
    }

    fn mac(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(body);
        mac
    }
}

impl std::fmt::Debug for PrintifySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrintifySecret(<redacted>)")
    }
}

/// Why a Printify delivery was rejected. Messages never include the secret or the payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrintifyError {
    /// No `X-Pfy-Signature` header (or not UTF-8 / empty).
    #[error("missing or unreadable `X-Pfy-Signature` header")]
    MissingHeader,
    /// The header value is not (optionally `sha256=`-prefixed) hex.
    #[error("`X-Pfy-Signature` is not `sha256=<hex>`")]
    MalformedSignature,
    /// The signature does not match the body.
    #[error("`X-Pfy-Signature` does not match")]
    SignatureMismatch,
}

/// Verifies a Printify delivery: `signature_header` is `sha256=<hex>` or bare `<hex>`. Pure.
pub fn verify(
    secret: &PrintifySecret,
    signature_header: &str,
    body: &[u8],
) -> Result<(), PrintifyError> {
    let value = signature_header.trim();
    if value.is_empty() {
        return Err(PrintifyError::MissingHeader);
    }
    let hex_part = match value.split_once('=') {
        Some((algo, rest)) if algo.trim().eq_ignore_ascii_case("sha256") => rest.trim(),
        Some(_) => return Err(PrintifyError::MalformedSignature),
        None => value,
    };
    let sig = hex::decode(hex_part).map_err(|_| PrintifyError::MalformedSignature)?;
    secret
        .mac(body)
        .verify_slice(&sig)
        .map_err(|_| PrintifyError::SignatureMismatch)
}

/// [`verify`] reading `X-Pfy-Signature` from a header map.
pub fn verify_headers(
    secret: &PrintifySecret,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), PrintifyError> {
    let header = headers
        .get(PRINTIFY_SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(PrintifyError::MissingHeader)?;
    verify(secret, header, body)
}

/// **Test/demo helper.** Lower-case hex HMAC-SHA256 of the body (no prefix).
pub fn signature(secret: &PrintifySecret, body: &[u8]) -> String {
    hex::encode(secret.mac(body).finalize().into_bytes())
}

/// **Test/demo helper.** A complete `X-Pfy-Signature` header value: `sha256=<hex>`.
pub fn sign(secret: &PrintifySecret, body: &[u8]) -> String {
    format!("sha256={}", signature(secret, body))
}

/// Maps a verified Printify payload to Inngest events. Pure.
pub fn map_event(payload: &Value) -> Result<Mapped, PayloadError> {
    let topic = payload
        .get("type")
        .and_then(Value::as_str)
        .ok_or(PayloadError::MissingField("type"))?;
    let is_product = topic.starts_with("product:");
    let is_order = topic.starts_with("order:");
    if !is_product && !is_order {
        return Ok(Mapped::Ignored(topic.to_string()));
    }
    let delivery_id = payload
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(PayloadError::MissingField("id"))?;
    let resource = payload
        .get("resource")
        .filter(|r| r.is_object())
        .ok_or(PayloadError::MissingField("resource"))?;
    let resource_id = resource
        .get("id")
        .and_then(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or(PayloadError::MissingField("resource.id"))?;
    let shop_id = resource
        .get("data")
        .and_then(|d| d.get("shop_id"))
        .and_then(|v| serde_json::from_value::<ShopId>(v.clone()).ok());

    let event = if is_product {
        let update = PrintifyProductsUpdate {
            shop_id,
            product_ids: Some(vec![resource_id]),
            reason: Some("webhook".into()),
        };
        OutEvent::typed(delivery_id, &update)?
    } else {
        let status = match topic {
            "order:shipment:created" | "order:shipment_created" => Some("shipped"),
            "order:shipment:delivered" | "order:shipment_delivered" => Some("delivered"),
            _ => None,
        };
        let update = PrintifyOrderUpdated {
            printify_order_id: resource_id,
            topic: topic.to_owned(),
            status: status.map(str::to_owned),
            resource: resource.get("data").cloned().unwrap_or(Value::Null),
            shop_id,
        };
        OutEvent::typed(delivery_id, &update)?
    };
    Ok(Mapped::Forward(vec![event]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefix_variants() {
        let s = PrintifySecret::new("k");
        let hex = signature(&s, b"x");
        assert_eq!(verify(&s, &hex, b"x"), Ok(()));
        assert_eq!(verify(&s, &format!("sha256={hex}"), b"x"), Ok(()));
        assert_eq!(
            verify(&s, &format!("SHA256={}", hex.to_uppercase()), b"x"),
            Ok(())
        );
        assert_eq!(
            verify(&s, &format!("md5={hex}"), b"x"),
            Err(PrintifyError::MalformedSignature)
        );
        assert_eq!(
            verify(&s, "sha256=nothex", b"x"),
            Err(PrintifyError::MalformedSignature)
        );
        assert_eq!(verify(&s, "  ", b"x"), Err(PrintifyError::MissingHeader));
        assert_eq!(
            verify(&s, &signature(&s, b"y"), b"x"),
            Err(PrintifyError::SignatureMismatch)
        );
    }

    #[test]
    fn mapping() {
        let p = json!({"id": "d1", "type": "shop:disconnected", "resource": {"id": "s"}});
        assert_eq!(
            map_event(&p).unwrap(),
            Mapped::Ignored("shop:disconnected".into())
        );
        let p = json!({"id": "d1", "type": "order:shipment:created",
                       "resource": {"id": 77, "type": "order", "data": {"shop_id": 5}}});
        let Mapped::Forward(ev) = map_event(&p).unwrap() else {
            panic!("expected forward")
        };
        assert_eq!(ev[0].name, EVENT_ORDER_UPDATED);
        assert_eq!(ev[0].id, "d1");
        assert_eq!(
            ev[0].data,
            json!({"printifyOrderId": "77", "topic": "order:shipment:created",
                   "status": "shipped", "resource": {"shop_id": 5}, "shopId": 5})
        );
        let p = json!({"id": "d1", "type": "product:updated", "resource": {}});
        assert_eq!(
            map_event(&p).unwrap_err(),
            PayloadError::MissingField("resource.id")
        );
    }
}
