//! Every event of the app, one serde type each, its name bound by `#[derive(Event)]`.
//!
//! The field names are the wire JSON's, exactly as the webhook routes and the functions emit
//! them today (`orderId`, `productIds`, Clerk's snake_case user object, …). Strings are trimmed
//! and an empty optional string reads as absent, as the hand parsing it replaces did. Data that
//! does not decode fails the run without retries, naming the field (the SDK's typed decode).

use inngest_sdk::{Event, EventSet, EventType};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The Clerk user object (`data` of `clerk/user.created` and `clerk/user.updated`). Fields the
/// app does not read are kept in [`extra`](Self::extra), so the object round-trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClerkUserObject {
    /// Clerk id (`user_…`), required and non-empty.
    #[serde(deserialize_with = "trimmed")]
    pub id: String,
    /// The id of the primary `email_addresses` entry.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub primary_email_address_id: Option<String>,
    /// The user's email addresses (absent or `null` → empty).
    #[serde(default, deserialize_with = "null_as_default")]
    pub email_addresses: Vec<ClerkEmailAddress>,
    /// First name.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub last_name: Option<String>,
    /// Username, if set.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub username: Option<String>,
    /// Avatar URL.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub image_url: Option<String>,
    /// The rest of the Clerk object, untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One entry of a Clerk user's `email_addresses`; a non-string field reads as absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClerkEmailAddress {
    /// The entry's id (`idn_…`).
    #[serde(default, deserialize_with = "lenient_str")]
    pub id: Option<String>,
    /// The address.
    #[serde(default, deserialize_with = "lenient_str")]
    pub email_address: Option<String>,
    /// The rest of the entry, untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Clerk signup (webhook `user.created`); id = `svix-id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "clerk/user.created")]
#[serde(transparent)]
pub struct ClerkUserCreated(pub ClerkUserObject);

/// Clerk profile change (webhook `user.updated`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "clerk/user.updated")]
#[serde(transparent)]
pub struct ClerkUserUpdated(pub ClerkUserObject);

/// Clerk account deletion: `{id, deleted: true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "clerk/user.deleted")]
pub struct ClerkUserDeleted {
    /// Clerk id of the deleted user.
    #[serde(deserialize_with = "trimmed")]
    pub id: String,
    /// Always `true` from Clerk.
    #[serde(default)]
    pub deleted: bool,
}

/// The events of `user-profile-update`: a Clerk profile change or deletion.
#[derive(Debug, Clone, PartialEq, EventSet)]
pub enum ClerkUserChange {
    /// `clerk/user.updated`.
    Updated(ClerkUserUpdated),
    /// `clerk/user.deleted`.
    Deleted(ClerkUserDeleted),
}

/// A Stripe webhook `{id, type, created, livemode, object}`; id = Stripe `evt_…` id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "stripe/webhook")]
pub struct StripeWebhook {
    /// The Stripe event id (`evt_…`).
    #[serde(deserialize_with = "trimmed")]
    pub id: String,
    /// The Stripe event type (`checkout.session.completed`, …).
    #[serde(rename = "type", deserialize_with = "trimmed")]
    pub kind: String,
    /// Stripe's `created` (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
    /// Live or test mode.
    #[serde(default)]
    pub livemode: bool,
    /// The Stripe object the event is about (`data.object`).
    pub object: StripeObject,
}

/// The object of a Stripe event: its id and metadata; the rest is kept in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StripeObject {
    /// The object id (`cs_…`, `pi_…`).
    #[serde(
        default,
        deserialize_with = "opt_trimmed",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// The object's metadata (`order_id` set by the checkout); left out of the JSON when empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "StripeMetadata::is_empty"
    )]
    pub metadata: StripeMetadata,
    /// The rest of the object, untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Stripe metadata of an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StripeMetadata {
    /// The shop's order id, when the checkout set it.
    #[serde(default, deserialize_with = "opt_trimmed")]
    pub order_id: Option<String>,
    /// Other metadata, untouched.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl StripeMetadata {
    /// No `order_id` and nothing else.
    pub fn is_empty(&self) -> bool {
        self.order_id.is_none() && self.extra.is_empty()
    }
}

/// Catalog sync request `{shopId?, productIds?, reason?}` (no ids = full sync).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "printify/products.update")]
#[serde(rename_all = "camelCase")]
pub struct PrintifyProductsUpdate {
    /// Printify shop id, as the webhook carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<ShopId>,
    /// The products to sync (strings or numbers on the wire).
    #[serde(
        default,
        deserialize_with = "opt_id_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub product_ids: Option<Vec<String>>,
    /// Why (`webhook`, `cron`, …).
    #[serde(
        default,
        deserialize_with = "opt_trimmed",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<String>,
}

/// A Printify shop id: a number in Printify's payloads, a string in some callers'; kept as it
/// came so the event's JSON is unchanged, compared by its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ShopId {
    /// `815256`.
    Number(i64),
    /// `"815256"`.
    Text(String),
}

impl std::fmt::Display for ShopId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShopId::Number(n) => write!(f, "{n}"),
            ShopId::Text(s) => f.write_str(s.trim()),
        }
    }
}

/// A Printify order webhook (`order:*` topics); recorded by the webhook route, no function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "printify/order.updated")]
#[serde(rename_all = "camelCase")]
pub struct PrintifyOrderUpdated {
    /// The Printify order id.
    pub printify_order_id: String,
    /// The webhook topic.
    pub topic: String,
    /// `shipped` / `delivered` for shipment topics, else `null`.
    pub status: Option<String>,
    /// The webhook's `resource.data`, untouched.
    pub resource: Value,
    /// Printify shop id, when the webhook carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_id: Option<ShopId>,
}

/// Inventory check `{productIds?}` (no ids = every product).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "inventory/sync")]
#[serde(rename_all = "camelCase")]
pub struct InventorySync {
    /// The products to check.
    #[serde(
        default,
        deserialize_with = "opt_id_list",
        skip_serializing_if = "Option::is_none"
    )]
    pub product_ids: Option<Vec<String>>,
}

/// A paid (or checkout-created) order to fulfil: `{orderId, userId?, stripeSessionId?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "order/created")]
#[serde(rename_all = "camelCase")]
pub struct OrderCreated {
    /// The order.
    pub order_id: Uuid,
    /// The user the sender claims owns the order (checked against the row).
    #[serde(
        default,
        deserialize_with = "opt_trimmed",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
    /// The Stripe checkout session, when known.
    #[serde(
        default,
        deserialize_with = "opt_trimmed",
        skip_serializing_if = "Option::is_none"
    )]
    pub stripe_session_id: Option<String>,
}

/// Send the confirmation email: `{orderId, email?}` (name kept for parity with the original).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "order/confirmation.sent")]
#[serde(rename_all = "camelCase")]
pub struct OrderConfirmationSent {
    /// The order.
    pub order_id: Uuid,
    /// Override of the recipient.
    #[serde(
        default,
        deserialize_with = "opt_trimmed",
        skip_serializing_if = "Option::is_none"
    )]
    pub email: Option<String>,
}

/// A failed operation to retry: `{operationId, type, payload, retryCount, error}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "operation/failed")]
#[serde(rename_all = "camelCase")]
pub struct OperationFailed {
    /// The `failed_operations` row.
    pub operation_id: Uuid,
    /// `failed_operations.type` (`order.process`, …).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The failed run's original event data.
    #[serde(default)]
    pub payload: Value,
    /// Retries so far.
    #[serde(default)]
    pub retry_count: Option<i32>,
    /// The failure message.
    #[serde(default)]
    pub error: Value,
}

/// A typed event with a deterministic event id (the SDK has no typed constructor taking an id,
/// so this names the type's [`EventType::NAME`] once, here).
pub fn with_id<T: EventType>(data: T, id: impl Into<String>) -> Event<T> {
    Event::new(T::NAME, data).with_id(id)
}

// ------------------------------------------------------------------ deserializers

/// A required string, trimmed; empty is an error.
fn trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    let t = s.trim();
    if t.is_empty() {
        return Err(serde::de::Error::custom("is empty"));
    }
    Ok(t.to_string())
}

/// An optional string, trimmed; `null` or empty → `None`; another type is an error.
fn opt_trimmed<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty()))
}

/// A string when it is one (trimmed, non-empty), else `None`.
fn lenient_str<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    })
}

/// `null` reads as the type's default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An optional list of ids: non-empty strings (trimmed) or numbers; anything else is an error
/// naming the index.
fn opt_id_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let Some(items) = Option::<Vec<Value>>::deserialize(d)? else {
        return Ok(None);
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(serde::de::Error::custom(format!(
                "[{i}] must be a non-empty string"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_the_wire_names() {
        assert_eq!(ClerkUserCreated::NAME, "clerk/user.created");
        assert_eq!(ClerkUserUpdated::NAME, "clerk/user.updated");
        assert_eq!(ClerkUserDeleted::NAME, "clerk/user.deleted");
        assert_eq!(StripeWebhook::NAME, "stripe/webhook");
        assert_eq!(PrintifyProductsUpdate::NAME, "printify/products.update");
        assert_eq!(PrintifyOrderUpdated::NAME, "printify/order.updated");
        assert_eq!(InventorySync::NAME, "inventory/sync");
        assert_eq!(OrderCreated::NAME, "order/created");
        assert_eq!(OrderConfirmationSent::NAME, "order/confirmation.sent");
        assert_eq!(OperationFailed::NAME, "operation/failed");
    }

    #[test]
    fn order_events_use_the_camel_case_wire_fields() {
        let id = Uuid::new_v4();
        let wire = json!({"orderId": id, "userId": " u1 ", "stripeSessionId": ""});
        let e: OrderCreated = serde_json::from_value(wire).unwrap();
        assert_eq!(e.order_id, id);
        assert_eq!(e.user_id.as_deref(), Some("u1"));
        assert_eq!(e.stripe_session_id, None);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"orderId": id, "userId": "u1"})
        );
        let e = OrderConfirmationSent {
            order_id: id,
            email: None,
        };
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"orderId": id}));
        let err = serde_json::from_value::<OrderCreated>(json!({"orderId": "nope"})).unwrap_err();
        assert!(
            err.to_string().contains("UUID") || err.to_string().contains("uuid"),
            "{err}"
        );
    }

    #[test]
    fn catalog_and_inventory_ids_accept_strings_and_numbers() {
        let e: PrintifyProductsUpdate =
            serde_json::from_value(json!({"productIds": ["a", 7], "reason": "cron", "shopId": 9}))
                .unwrap();
        assert_eq!(e.product_ids, Some(vec!["a".to_string(), "7".to_string()]));
        assert_eq!(e.shop_id, Some(ShopId::Number(9)));
        assert_eq!(e.shop_id.as_ref().unwrap().to_string(), "9");
        let e: PrintifyProductsUpdate = serde_json::from_value(json!({"shopId": "77"})).unwrap();
        assert_eq!(e.shop_id, Some(ShopId::Text("77".into())));
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"shopId": "77"}));
        let err = inngest_sdk::event::decode_data::<PrintifyProductsUpdate>(json!({"shopId": [1]}))
            .unwrap_err();
        assert!(err.to_string().contains("`shopId`"), "{err}");
        let err =
            serde_json::from_value::<InventorySync>(json!({"productIds": ["a", ""]})).unwrap_err();
        assert!(
            err.to_string().contains("[1] must be a non-empty string"),
            "{err}"
        );
        assert_eq!(
            serde_json::to_value(InventorySync::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn clerk_and_stripe_objects_round_trip() {
        let user = json!({
            "id": "user_1", "primary_email_address_id": "e1", "first_name": "Ann",
            "last_name": null, "email_addresses": [{"id": "e1", "email_address": "a@b.example"}],
            "created_at": 5
        });
        let e: ClerkUserCreated = serde_json::from_value(user.clone()).unwrap();
        assert_eq!(e.0.id, "user_1");
        assert_eq!(
            e.0.email_addresses[0].email_address.as_deref(),
            Some("a@b.example")
        );
        assert_eq!(e.0.extra.get("created_at"), Some(&json!(5)));
        let err = serde_json::from_value::<ClerkUserUpdated>(json!({"id": ""})).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let wire = json!({"id": "evt_1", "type": "checkout.session.completed", "created": 1,
            "livemode": false, "object": {"id": "cs_1", "metadata": {"order_id": "o"}, "amount_total": 5}});
        let e: StripeWebhook = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(e.object.metadata.order_id.as_deref(), Some("o"));
        assert_eq!(serde_json::to_value(&e).unwrap(), wire);
    }
}
