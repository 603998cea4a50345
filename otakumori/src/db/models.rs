//! Row types and inputs for the repository. All serialize with serde so Inngest steps can return
//! them (keep step outputs small: prefer ids and counts over whole rows where possible).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Result of an upsert: the row and whether it was newly inserted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Upserted<T> {
    /// The row after the write.
    pub row: T,
    /// `true` if the row did not exist before.
    pub created: bool,
}

// ---------------------------------------------------------------- users

/// `users` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub clerk_id: String,
    pub email: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    /// `public` or `private`.
    pub visibility: String,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fields written by the Clerk user functions (keyed by `clerk_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct UserProfile {
    pub clerk_id: String,
    pub email: String,
    /// `None` keeps the stored username (or leaves it NULL for a new user).
    pub username: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
}

/// Result of [`crate::db::Db::update_user_profile`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileUpdate {
    pub user: User,
    /// `true` if the row had to be inserted (update arrived before create).
    pub created: bool,
    /// Column names whose value changed (`email`, `username`, `display_name`, `avatar_url`).
    pub changed_fields: Vec<String>,
}

// ---------------------------------------------------------------- catalog

/// `products` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    pub id: Uuid,
    pub printify_product_id: Option<String>,
    pub shop_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category_slug: Option<String>,
    pub tags: Vec<String>,
    pub primary_image_url: Option<String>,
    pub blueprint_id: Option<i32>,
    pub print_provider_id: Option<i32>,
    pub active: bool,
    pub visible: bool,
    /// `admin` (kept inactive by syncs) or `sync` (hidden because it vanished from Printify).
    pub deactivated_by: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `product_variants` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductVariant {
    pub id: Uuid,
    pub product_id: Uuid,
    pub printify_variant_id: i64,
    pub sku: Option<String>,
    pub title: Option<String>,
    pub price_cents: Option<i64>,
    pub cost_cents: Option<i64>,
    pub grams: Option<i32>,
    pub is_enabled: bool,
    pub in_stock: bool,
    pub is_default: bool,
    pub option_values: Option<serde_json::Value>,
    pub preview_image_url: Option<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
}

/// `product_images` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductImage {
    pub id: Uuid,
    pub product_id: Uuid,
    pub url: String,
    pub position: Option<String>,
    pub variant_ids: Vec<i64>,
    pub is_default: bool,
}

/// Catalog input for one product, built from a Printify product
/// (see `crate::services::printify::PrintifyProduct::to_catalog_input`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogProduct {
    pub printify_product_id: String,
    pub shop_id: Option<String>,
    pub title: String,
    pub description: Option<String>,
    pub category_slug: Option<String>,
    pub tags: Vec<String>,
    pub primary_image_url: Option<String>,
    pub blueprint_id: Option<i32>,
    pub print_provider_id: Option<i32>,
    /// Printify's `visible` flag.
    pub visible: bool,
    /// Every variant Printify returned (disabled ones are *not* stored and get disabled locally).
    pub variants: Vec<CatalogVariant>,
    pub images: Vec<CatalogImage>,
}

/// One Printify variant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogVariant {
    pub printify_variant_id: i64,
    pub sku: Option<String>,
    pub title: Option<String>,
    pub price_cents: Option<i64>,
    pub cost_cents: Option<i64>,
    pub grams: Option<i32>,
    pub is_enabled: bool,
    pub is_available: bool,
    pub is_default: bool,
    pub option_values: Option<serde_json::Value>,
    pub preview_image_url: Option<String>,
}

/// One Printify image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogImage {
    pub url: String,
    pub position: Option<String>,
    pub variant_ids: Vec<i64>,
    pub is_default: bool,
}

/// What [`crate::db::Db::upsert_catalog_product`] did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogUpsert {
    pub product_id: Uuid,
    pub printify_product_id: String,
    pub created: bool,
    /// `false` if an admin deactivated it (the sync keeps it inactive).
    pub active: bool,
    pub variants_upserted: u64,
    /// Local variants switched to `is_enabled=false, in_stock=false` (missing or disabled upstream).
    pub variants_disabled: u64,
    pub images_upserted: u64,
    pub images_deleted: u64,
}

// ---------------------------------------------------------------- inventory

/// Availability of one Printify variant (input to the inventory sync).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct VariantAvailability {
    pub printify_variant_id: i64,
    pub is_enabled: bool,
    pub is_available: bool,
}

/// A variant whose `in_stock` flag changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailabilityChange {
    pub variant_id: Uuid,
    pub product_id: Uuid,
    pub printify_variant_id: i64,
    pub from: bool,
    pub to: bool,
}

/// Result of [`crate::db::Db::apply_variant_availability`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AvailabilityUpdate {
    /// Local variants checked.
    pub variants_checked: u64,
    pub changes: Vec<AvailabilityChange>,
}

/// `inventory_alerts` row, with titles for the alert email.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InventoryAlert {
    pub id: Uuid,
    pub variant_id: Uuid,
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
    pub product_title: Option<String>,
    pub variant_title: Option<String>,
    pub sku: Option<String>,
}

// ---------------------------------------------------------------- carts

/// `cart_items` row (with the cart's user).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CartItem {
    pub id: Uuid,
    pub cart_id: Uuid,
    pub variant_id: Uuid,
    pub quantity: i32,
}

// ---------------------------------------------------------------- orders

/// Order status (`orders.status` CHECK constraint) and its state machine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    PaymentFailed,
    PendingMapping,
    InProduction,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    /// All values, in lifecycle order.
    pub const ALL: [OrderStatus; 8] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::PaymentFailed,
        OrderStatus::PendingMapping,
        OrderStatus::InProduction,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// The stored string (snake case, as in the CHECK constraint).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Final states (eligible for archiving; no further transitions except none).
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// `true` once the order has been handed to Printify (`in_production` or later, not cancelled).
    pub fn is_fulfilled(self) -> bool {
        matches!(
            self,
            OrderStatus::InProduction | OrderStatus::Shipped | OrderStatus::Delivered
        )
    }

    /// Allowed transitions (same-status "transitions" are handled as no-ops by the repository):
    ///
    /// ```text
    /// pending         -> paid | payment_failed | pending_mapping | cancelled
    /// paid            -> pending_mapping | in_production | payment_failed | cancelled
    /// payment_failed  -> paid | cancelled
    /// pending_mapping -> paid | in_production | cancelled
    /// in_production   -> shipped | delivered | cancelled
    /// shipped         -> delivered
    /// delivered, cancelled: final
    /// ```
    pub fn can_transition_to(self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Paid | PaymentFailed | PendingMapping | Cancelled)
                | (
                    Paid,
                    PendingMapping | InProduction | PaymentFailed | Cancelled
                )
                | (PaymentFailed, Paid | Cancelled)
                | (PendingMapping, Paid | InProduction | Cancelled)
                | (InProduction, Shipped | Delivered | Cancelled)
                | (Shipped, Delivered)
        )
    }
}

/// Shipping address columns of `orders` (`ship_*`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ShippingAddress {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

impl ShippingAddress {
    /// Names of the fields Printify requires that are missing (`name`, `line1`, `city`,
    /// `postal_code`, `country`). Empty = usable.
    pub fn missing_required(&self) -> Vec<&'static str> {
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).unwrap_or("").is_empty();
        let mut out = Vec::new();
        for (name, v) in [
            ("name", &self.name),
            ("line1", &self.line1),
            ("city", &self.city),
            ("postal_code", &self.postal_code),
            ("country", &self.country),
        ] {
            if blank(v) {
                out.push(name);
            }
        }
        out
    }
}

/// `orders` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: Uuid,
    pub display_number: i64,
    pub user_id: Uuid,
    pub stripe_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub status: OrderStatus,
    pub subtotal_cents: i64,
    pub total_cents: i64,
    pub currency: String,
    pub shipping: ShippingAddress,
    pub printify_order_id: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `order_items` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderItem {
    pub id: Uuid,
    pub order_id: Uuid,
    pub variant_id: Option<Uuid>,
    pub printify_product_id: Option<String>,
    pub printify_variant_id: Option<i64>,
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub unit_amount_cents: i64,
}

/// Input for [`crate::db::Db::create_order`] (checkout / tests / seeding).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NewOrder {
    pub user_id: Uuid,
    pub stripe_session_id: Option<String>,
    pub subtotal_cents: i64,
    pub total_cents: i64,
    /// Defaults to `USD` when empty.
    pub currency: String,
    pub shipping: Option<ShippingAddress>,
    pub items: Vec<NewOrderItem>,
}

/// One line of a [`NewOrder`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct NewOrderItem {
    pub variant_id: Option<Uuid>,
    pub printify_product_id: Option<String>,
    pub printify_variant_id: Option<i64>,
    pub name: String,
    pub sku: Option<String>,
    pub quantity: i32,
    pub unit_amount_cents: i64,
}

/// Order + items + user, for the validate/load steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderDetail {
    pub order: Order,
    pub items: Vec<OrderItem>,
    pub user: User,
}

/// Fulfilment eligibility of one order line (spec §4.7 step 2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemEligibility {
    pub item_id: Uuid,
    pub name: String,
    pub variant_id: Option<Uuid>,
    pub quantity: i32,
    /// From the order line, else from the variant's product.
    pub printify_product_id: Option<String>,
    /// From the order line, else from the variant.
    pub printify_variant_id: Option<i64>,
    pub variant_enabled: bool,
    pub variant_in_stock: bool,
    /// `is_enabled AND in_stock AND printify ids not null`.
    pub eligible: bool,
    /// Why not eligible (`missing variant`, `variant disabled`, `out of stock`, `unmapped`).
    pub reason: Option<String>,
}

/// Payment facts written when an order is confirmed paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PaymentUpdate {
    pub payment_intent_id: Option<String>,
    /// `None` keeps the stored total.
    pub total_cents: Option<i64>,
    /// Stored upper-cased; `None` keeps the stored currency.
    pub currency: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    /// Overwrites the shipping columns when given.
    pub shipping: Option<ShippingAddress>,
}

/// Outcome of a status change.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transition {
    pub order_id: Uuid,
    pub from: OrderStatus,
    pub to: OrderStatus,
    /// `false` when the order already had the target status (idempotent replay) or a later one.
    pub changed: bool,
}

/// `printify_order_sync.status`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum PrintifySyncStatus {
    Synced,
    Failed,
    MappingFailed,
}

impl PrintifySyncStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `printify_order_sync` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrintifyOrderSync {
    pub order_id: Uuid,
    pub printify_order_id: Option<String>,
    pub status: PrintifySyncStatus,
    pub error: Option<String>,
    pub last_sync_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- email

/// `email_log.status`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum EmailStatus {
    Sent,
    Failed,
}

impl EmailStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Input for [`crate::db::Db::insert_email_log`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewEmailLog {
    pub idempotency_key: Option<String>,
    pub user_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub to_address: String,
    pub provider: String,
    pub template: String,
    pub subject: Option<String>,
    pub status: EmailStatus,
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
}

/// `email_log` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailLogEntry {
    pub id: Uuid,
    pub idempotency_key: Option<String>,
    pub user_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub to_address: String,
    pub provider: String,
    pub template: String,
    pub subject: Option<String>,
    pub status: String,
    pub provider_message_id: Option<String>,
    pub error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// `email_outbox` row (the local `log` provider's "sent" mail).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub idempotency_key: String,
    pub from_address: String,
    pub to_addresses: Vec<String>,
    pub subject: String,
    pub html: Option<String>,
    pub text_body: Option<String>,
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- webhooks

/// Webhook provider (`webhook_events.source`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum WebhookSource {
    Stripe,
    Clerk,
    Printify,
}

impl WebhookSource {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Result of [`crate::db::Db::record_webhook_event`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebhookRecord {
    /// `true` if this call inserted the row (first delivery).
    pub inserted: bool,
    /// Set once [`crate::db::Db::mark_webhook_processed`] ran: the event is a duplicate.
    pub processed_at: Option<DateTime<Utc>>,
}

impl WebhookRecord {
    /// Already fully processed: the caller should stop (`{duplicate:true}`).
    pub fn is_duplicate(&self) -> bool {
        self.processed_at.is_some()
    }
}

// ---------------------------------------------------------------- failed operations

/// `failed_operations.status`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum OperationStatus {
    Pending,
    Retrying,
    Succeeded,
    Dead,
}

impl OperationStatus {
    /// The stored string.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Input for [`crate::db::Db::record_failed_operation`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NewFailedOperation {
    /// `order.process`, `email.order_confirmation`, `printify.sync`, …
    pub op_type: String,
    /// Business key (e.g. the order id): one row per `(op_type, dedupe_key)`, so a replayed
    /// `onFailure` handler updates instead of duplicating. `None` always inserts.
    pub dedupe_key: Option<String>,
    /// The original event data.
    pub payload: serde_json::Value,
    pub error: String,
}

/// `failed_operations` row (the dead-letter queue).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailedOperation {
    pub id: Uuid,
    pub op_type: String,
    pub dedupe_key: Option<String>,
    pub payload: serde_json::Value,
    /// Retry attempts made so far.
    pub retry_count: i32,
    pub last_error: Option<String>,
    pub status: OperationStatus,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- maintenance

/// Counts from [`crate::db::Db::archive_final_orders`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ArchiveCounts {
    pub orders: u64,
    pub order_items: u64,
}

/// Health counts for the monthly audit (spec §4.12).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuditReport {
    pub users_total: i64,
    pub users_without_email: i64,
    pub orders_total: i64,
    /// `paid` but not yet `in_production` for more than 24 h.
    pub orders_paid_not_in_production: i64,
    pub orders_pending_mapping: i64,
    pub open_inventory_alerts: i64,
    pub dead_operations: i64,
    pub pending_operations: i64,
    pub failed_emails_30d: i64,
    pub archived_orders_total: i64,
}

/// `maintenance_reports` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaintenanceReport {
    pub id: Uuid,
    pub kind: String,
    pub report: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strum names are the serde names are the stored (CHECK-constrained) strings.
    #[test]
    fn status_strings_round_trip_and_match_serde() {
        fn check<T>(values: &[T], expected: &[&str])
        where
            T: Copy
                + Serialize
                + std::str::FromStr
                + PartialEq
                + std::fmt::Debug
                + std::fmt::Display,
            &'static str: From<T>,
        {
            let names: Vec<&str> = values.iter().map(|v| <&'static str>::from(*v)).collect();
            assert_eq!(names, expected);
            for v in values {
                let name = <&'static str>::from(*v);
                assert_eq!(v.to_string(), name);
                assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
                assert_eq!(name.parse::<T>().ok(), Some(*v));
            }
            assert!("Pending".parse::<T>().is_err(), "names are case-sensitive");
            assert!("".parse::<T>().is_err());
        }
        check(
            &OrderStatus::ALL,
            &[
                "pending",
                "paid",
                "payment_failed",
                "pending_mapping",
                "in_production",
                "shipped",
                "delivered",
                "cancelled",
            ],
        );
        check(
            &[
                PrintifySyncStatus::Synced,
                PrintifySyncStatus::Failed,
                PrintifySyncStatus::MappingFailed,
            ],
            &["synced", "failed", "mapping_failed"],
        );
        check(
            &[EmailStatus::Sent, EmailStatus::Failed],
            &["sent", "failed"],
        );
        check(
            &[
                WebhookSource::Stripe,
                WebhookSource::Clerk,
                WebhookSource::Printify,
            ],
            &["stripe", "clerk", "printify"],
        );
        check(
            &[
                OperationStatus::Pending,
                OperationStatus::Retrying,
                OperationStatus::Succeeded,
                OperationStatus::Dead,
            ],
            &["pending", "retrying", "succeeded", "dead"],
        );
    }
}
