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
    /// Local user id (primary key).
    pub id: Uuid,
    /// Clerk user id (`user_…`); unique, the key the Clerk webhooks upsert on.
    pub clerk_id: String,
    /// Primary email address from Clerk (empty if Clerk sent none).
    pub email: String,
    /// Unique username: Clerk's, or one derived from the email or name when Clerk sends none.
    pub username: Option<String>,
    /// Name shown in the shop (Clerk first and last name).
    pub display_name: Option<String>,
    /// Profile image URL from Clerk.
    pub avatar_url: Option<String>,
    /// `public` or `private`.
    pub visibility: String,
    /// When Clerk reported the user deleted (soft delete); `None` for an active user.
    pub deleted_at: Option<DateTime<Utc>>,
    /// When the row was inserted (UTC).
    pub created_at: DateTime<Utc>,
    /// When the row was last written (UTC).
    pub updated_at: DateTime<Utc>,
}

/// Fields written by the Clerk user functions (keyed by `clerk_id`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct UserProfile {
    /// Clerk user id the row is keyed by.
    pub clerk_id: String,
    /// Primary email address to store.
    pub email: String,
    /// `None` keeps the stored username (or leaves it NULL for a new user).
    pub username: Option<String>,
    /// Display name to store (first and last name; `None` stores NULL).
    pub display_name: Option<String>,
    /// Profile image URL to store (`None` stores NULL).
    pub avatar_url: Option<String>,
}

/// Result of [`crate::db::Db::update_user_profile`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProfileUpdate {
    /// The `users` row after the update.
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
    /// Local product id (primary key).
    pub id: Uuid,
    /// Printify product id; unique, `None` for products not from Printify.
    pub printify_product_id: Option<String>,
    /// Printify shop the product belongs to.
    pub shop_id: Option<String>,
    /// Product title.
    pub title: String,
    /// Product description (HTML, as Printify sends it).
    pub description: Option<String>,
    /// Shop category (`apparel`, `accessories`, `home-decor`, `drinkware`, `stickers`, `other`).
    pub category_slug: Option<String>,
    /// Printify tags, in Printify's order.
    pub tags: Vec<String>,
    /// URL of the default mockup image (else the first one).
    pub primary_image_url: Option<String>,
    /// Printify blueprint (product type) id.
    pub blueprint_id: Option<i32>,
    /// Printify print provider id.
    pub print_provider_id: Option<i32>,
    /// Whether the product can be sold.
    pub active: bool,
    /// Whether the product is listed in the shop.
    pub visible: bool,
    /// `admin` (kept inactive by syncs) or `sync` (hidden because it vanished from Printify).
    pub deactivated_by: Option<String>,
    /// When a Printify sync last wrote the product (UTC).
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the row was inserted (UTC).
    pub created_at: DateTime<Utc>,
    /// When the row was last written (UTC).
    pub updated_at: DateTime<Utc>,
}

/// `product_variants` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductVariant {
    /// Local variant id (primary key).
    pub id: Uuid,
    /// The product this variant belongs to.
    pub product_id: Uuid,
    /// Printify variant id; unique per product.
    pub printify_variant_id: i64,
    /// Stock keeping unit, if Printify has one.
    pub sku: Option<String>,
    /// Variant title (e.g. `Black / M`).
    pub title: Option<String>,
    /// Retail price in the smallest currency unit (cents).
    pub price_cents: Option<i64>,
    /// Printify's production cost in the smallest currency unit (cents).
    pub cost_cents: Option<i64>,
    /// Shipping weight in grams.
    pub grams: Option<i32>,
    /// Whether the variant is enabled for sale in Printify.
    pub is_enabled: bool,
    /// Whether the print provider can currently produce it.
    pub in_stock: bool,
    /// Whether this is the product's default variant.
    pub is_default: bool,
    /// Printify option value ids (JSON array, in the product's option order).
    pub option_values: Option<serde_json::Value>,
    /// URL of the first mockup image that shows this variant.
    pub preview_image_url: Option<String>,
    /// When a Printify sync last wrote the variant (UTC).
    pub last_synced_at: Option<DateTime<Utc>>,
}

/// `product_images` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProductImage {
    /// Local image id (primary key).
    pub id: Uuid,
    /// The product this image belongs to.
    pub product_id: Uuid,
    /// Image URL; unique per product.
    pub url: String,
    /// Printify mockup position (e.g. `front`, `back`).
    pub position: Option<String>,
    /// Printify variant ids the image shows.
    pub variant_ids: Vec<i64>,
    /// Whether this is the product's default image.
    pub is_default: bool,
}

/// Catalog input for one product, built from a Printify product
/// (see `crate::services::printify::PrintifyProduct::to_catalog_input`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogProduct {
    /// Printify product id (the upsert key).
    pub printify_product_id: String,
    /// Printify shop the product belongs to.
    pub shop_id: Option<String>,
    /// Product title.
    pub title: String,
    /// Product description; `None` when Printify's is empty.
    pub description: Option<String>,
    /// Shop category derived from the title and tags.
    pub category_slug: Option<String>,
    /// Printify tags.
    pub tags: Vec<String>,
    /// URL of the default mockup image (else the first one).
    pub primary_image_url: Option<String>,
    /// Printify blueprint (product type) id.
    pub blueprint_id: Option<i32>,
    /// Printify print provider id.
    pub print_provider_id: Option<i32>,
    /// Printify's `visible` flag.
    pub visible: bool,
    /// Every variant Printify returned (disabled ones are *not* stored and get disabled locally).
    pub variants: Vec<CatalogVariant>,
    /// Every mockup image Printify returned (others stored for the product are deleted).
    pub images: Vec<CatalogImage>,
}

/// One Printify variant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogVariant {
    /// Printify variant id.
    pub printify_variant_id: i64,
    /// Stock keeping unit; `None` when Printify's is empty.
    pub sku: Option<String>,
    /// Variant title; `None` when Printify's is empty.
    pub title: Option<String>,
    /// Retail price in the smallest currency unit (cents).
    pub price_cents: Option<i64>,
    /// Printify's production cost in the smallest currency unit (cents).
    pub cost_cents: Option<i64>,
    /// Shipping weight in grams.
    pub grams: Option<i32>,
    /// Printify's `is_enabled`: the variant is offered for sale.
    pub is_enabled: bool,
    /// Printify's `is_available`: the print provider can produce it (stored as `in_stock`).
    pub is_available: bool,
    /// Printify's `is_default`.
    pub is_default: bool,
    /// Printify option value ids (JSON array).
    pub option_values: Option<serde_json::Value>,
    /// URL of the first mockup image that shows this variant.
    pub preview_image_url: Option<String>,
}

/// One Printify image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct CatalogImage {
    /// Image URL (Printify's `src`).
    pub url: String,
    /// Mockup position (e.g. `front`); `None` when Printify's is empty.
    pub position: Option<String>,
    /// Printify variant ids the image shows.
    pub variant_ids: Vec<i64>,
    /// Printify's `is_default`.
    pub is_default: bool,
}

/// What [`crate::db::Db::upsert_catalog_product`] did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogUpsert {
    /// Local product id.
    pub product_id: Uuid,
    /// Printify product id.
    pub printify_product_id: String,
    /// `true` if the product row was newly inserted.
    pub created: bool,
    /// `false` if an admin deactivated it (the sync keeps it inactive).
    pub active: bool,
    /// Enabled variants inserted or updated.
    pub variants_upserted: u64,
    /// Local variants switched to `is_enabled=false, in_stock=false` (missing or disabled upstream).
    pub variants_disabled: u64,
    /// Images inserted or updated.
    pub images_upserted: u64,
    /// Stored images that Printify no longer returns, deleted.
    pub images_deleted: u64,
}

// ---------------------------------------------------------------- inventory

/// Availability of one Printify variant (input to the inventory sync).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct VariantAvailability {
    /// Printify variant id.
    pub printify_variant_id: i64,
    /// Printify's `is_enabled`.
    pub is_enabled: bool,
    /// Printify's `is_available`.
    pub is_available: bool,
}

/// A variant whose `in_stock` flag changed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AvailabilityChange {
    /// Local variant id.
    pub variant_id: Uuid,
    /// Local product id of the variant.
    pub product_id: Uuid,
    /// Printify variant id.
    pub printify_variant_id: i64,
    /// `in_stock` before the sync.
    pub from: bool,
    /// `in_stock` after the sync.
    pub to: bool,
}

/// Result of [`crate::db::Db::apply_variant_availability`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AvailabilityUpdate {
    /// Local variants checked.
    pub variants_checked: u64,
    /// Variants whose `in_stock` flag changed.
    pub changes: Vec<AvailabilityChange>,
}

/// `inventory_alerts` row, with titles for the alert email.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InventoryAlert {
    /// Alert id (primary key).
    pub id: Uuid,
    /// The variant the alert is about.
    pub variant_id: Uuid,
    /// Alert kind (`out_of_stock`); at most one open alert per variant and kind.
    pub kind: String,
    /// When the alert was opened (UTC).
    pub created_at: DateTime<Utc>,
    /// When the variant was back in stock (UTC); `None` while open.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When the alert was included in an inventory alert email (UTC).
    pub notified_at: Option<DateTime<Utc>>,
    /// Title of the variant's product (joined, for the email).
    pub product_title: Option<String>,
    /// Title of the variant (joined, for the email).
    pub variant_title: Option<String>,
    /// SKU of the variant (joined, for the email).
    pub sku: Option<String>,
}

// ---------------------------------------------------------------- carts

/// `cart_items` row (with the cart's user).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CartItem {
    /// Cart line id (primary key).
    pub id: Uuid,
    /// The cart (one per user) the line belongs to.
    pub cart_id: Uuid,
    /// The product variant in the cart.
    pub variant_id: Uuid,
    /// Number of units (at least 1).
    pub quantity: i32,
}

// ---------------------------------------------------------------- orders

/// Order status (`orders.status` CHECK constraint) and its state machine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    /// Created at checkout, not yet paid.
    Pending,
    /// Payment confirmed by Stripe, not yet sent to Printify.
    Paid,
    /// Stripe reported the payment failed.
    PaymentFailed,
    /// Paid, but some items have no Printify product/variant mapping or are unavailable.
    PendingMapping,
    /// Order created at Printify.
    InProduction,
    /// Printify reported the order shipped.
    Shipped,
    /// Printify reported the order delivered (final).
    Delivered,
    /// Cancelled (final).
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
    /// Recipient's full name.
    pub name: Option<String>,
    /// Recipient's email address.
    pub email: Option<String>,
    /// Recipient's phone number.
    pub phone: Option<String>,
    /// First address line (street and number).
    pub line1: Option<String>,
    /// Second address line (apartment, suite, …).
    pub line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State, province or region.
    pub region: Option<String>,
    /// Postal or ZIP code.
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
    /// Order id (primary key; Printify's `external_id`).
    pub id: Uuid,
    /// Sequential human-facing order number (`Order #<n>`).
    pub display_number: i64,
    /// The customer.
    pub user_id: Uuid,
    /// Stripe Checkout session id; unique.
    pub stripe_session_id: Option<String>,
    /// Stripe PaymentIntent id, once known.
    pub payment_intent_id: Option<String>,
    /// Lifecycle status.
    pub status: OrderStatus,
    /// Sum of the order lines, in the smallest currency unit (cents).
    pub subtotal_cents: i64,
    /// Amount charged, in the smallest currency unit (cents).
    pub total_cents: i64,
    /// ISO 4217 currency code, upper case (e.g. `USD`).
    pub currency: String,
    /// Shipping address (`ship_*` columns).
    pub shipping: ShippingAddress,
    /// Printify order id, once the order was created there.
    pub printify_order_id: Option<String>,
    /// Carrier tracking number from Printify's shipment.
    pub tracking_number: Option<String>,
    /// Carrier tracking URL from Printify's shipment.
    pub tracking_url: Option<String>,
    /// When the payment was confirmed (UTC).
    pub paid_at: Option<DateTime<Utc>>,
    /// When the order was created (UTC).
    pub created_at: DateTime<Utc>,
    /// When the row was last written (UTC).
    pub updated_at: DateTime<Utc>,
}

/// `order_items` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OrderItem {
    /// Order line id (primary key).
    pub id: Uuid,
    /// The order the line belongs to.
    pub order_id: Uuid,
    /// The local variant bought; `None` if it was deleted since.
    pub variant_id: Option<Uuid>,
    /// Printify product id recorded at checkout, if any.
    pub printify_product_id: Option<String>,
    /// Printify variant id recorded at checkout, if any.
    pub printify_variant_id: Option<i64>,
    /// Line name as shown to the customer.
    pub name: String,
    /// SKU at checkout time.
    pub sku: Option<String>,
    /// Number of units (at least 1).
    pub quantity: i32,
    /// Price of one unit in the smallest currency unit (cents).
    pub unit_amount_cents: i64,
}

/// Input for [`crate::db::Db::create_order`] (checkout / tests / seeding).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct NewOrder {
    /// The customer.
    pub user_id: Uuid,
    /// Stripe Checkout session id, if the order came from one.
    pub stripe_session_id: Option<String>,
    /// Sum of the lines, in the smallest currency unit (cents).
    pub subtotal_cents: i64,
    /// Amount to charge, in the smallest currency unit (cents).
    pub total_cents: i64,
    /// Defaults to `USD` when empty.
    pub currency: String,
    /// Shipping address, if already known.
    pub shipping: Option<ShippingAddress>,
    /// The order lines.
    pub items: Vec<NewOrderItem>,
}

/// One line of a [`NewOrder`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct NewOrderItem {
    /// The local variant bought, if known.
    pub variant_id: Option<Uuid>,
    /// Printify product id, if known at checkout.
    pub printify_product_id: Option<String>,
    /// Printify variant id, if known at checkout.
    pub printify_variant_id: Option<i64>,
    /// Line name as shown to the customer.
    pub name: String,
    /// SKU at checkout time.
    pub sku: Option<String>,
    /// Number of units (at least 1).
    pub quantity: i32,
    /// Price of one unit in the smallest currency unit (cents).
    pub unit_amount_cents: i64,
}

/// Order + items + user, for the validate/load steps.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderDetail {
    /// The `orders` row.
    pub order: Order,
    /// Its lines.
    pub items: Vec<OrderItem>,
    /// The customer's `users` row.
    pub user: User,
}

/// Fulfilment eligibility of one order line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemEligibility {
    /// Order line id.
    pub item_id: Uuid,
    /// Line name.
    pub name: String,
    /// Local variant of the line, if any.
    pub variant_id: Option<Uuid>,
    /// Number of units.
    pub quantity: i32,
    /// From the order line, else from the variant's product.
    pub printify_product_id: Option<String>,
    /// From the order line, else from the variant.
    pub printify_variant_id: Option<i64>,
    /// The variant's `is_enabled` (`false` if there is no variant).
    pub variant_enabled: bool,
    /// The variant's `in_stock` (`false` if there is no variant).
    pub variant_in_stock: bool,
    /// `is_enabled AND in_stock AND printify ids not null`.
    pub eligible: bool,
    /// Why not eligible (`missing variant`, `variant disabled`, `out of stock`, `unmapped`).
    pub reason: Option<String>,
}

impl ItemEligibility {
    /// The line as a fulfilment problem: `<name> (<reason>)`, `ineligible` when no reason is
    /// recorded.
    pub fn problem(&self) -> String {
        format!(
            "{} ({})",
            self.name,
            self.reason.as_deref().unwrap_or("ineligible")
        )
    }
}

/// Payment facts written when an order is confirmed paid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PaymentUpdate {
    /// Stripe PaymentIntent id (`None` keeps the stored one).
    pub payment_intent_id: Option<String>,
    /// `None` keeps the stored total.
    pub total_cents: Option<i64>,
    /// Stored upper-cased; `None` keeps the stored currency.
    pub currency: Option<String>,
    /// When the payment succeeded (`None` keeps the stored time).
    pub paid_at: Option<DateTime<Utc>>,
    /// Overwrites the shipping columns when given.
    pub shipping: Option<ShippingAddress>,
}

/// Outcome of a status change.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transition {
    /// The order.
    pub order_id: Uuid,
    /// Status before the call.
    pub from: OrderStatus,
    /// Status after the call.
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
    /// The order was created at Printify.
    Synced,
    /// Creating the Printify order failed.
    Failed,
    /// Some items could not be mapped to Printify products/variants.
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
    /// The order (primary key).
    pub order_id: Uuid,
    /// Printify order id, once created.
    pub printify_order_id: Option<String>,
    /// Outcome of the last attempt.
    pub status: PrintifySyncStatus,
    /// Error of the last failed attempt (at most 500 characters).
    pub error: Option<String>,
    /// When the last attempt was recorded (UTC).
    pub last_sync_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- email

/// `email_log.status`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum EmailStatus {
    /// The provider accepted the message.
    Sent,
    /// The provider rejected it or could not be reached.
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
    /// Dedupe key of the send; at most one `sent` row per key.
    pub idempotency_key: Option<String>,
    /// Recipient user, if any.
    pub user_id: Option<Uuid>,
    /// Order the email is about, if any; at most one `sent` row per order and template.
    pub order_id: Option<Uuid>,
    /// Recipient addresses, comma-separated.
    pub to_address: String,
    /// Provider that handled it (`resend`, `smtp`, `log`).
    pub provider: String,
    /// Template name (e.g. `order-confirmation`).
    pub template: String,
    /// Subject line.
    pub subject: Option<String>,
    /// Whether the send succeeded.
    pub status: EmailStatus,
    /// Message id returned by the provider.
    pub provider_message_id: Option<String>,
    /// Provider error of a failed send.
    pub error: Option<String>,
}

/// Input for [`crate::db::Db::insert_outbox`]: one message for the local outbox.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewOutboxMessage<'a> {
    /// Dedupe key: a second insert with the same key keeps the first message.
    pub idempotency_key: &'a str,
    /// Sender address.
    pub from: &'a str,
    /// Recipient addresses.
    pub to: &'a [String],
    /// Subject line.
    pub subject: &'a str,
    /// HTML body, if any.
    pub html: Option<&'a str>,
    /// Plain-text body, if any.
    pub text: Option<&'a str>,
}

/// `email_log` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmailLogEntry {
    /// Log entry id (primary key).
    pub id: Uuid,
    /// Dedupe key of the send.
    pub idempotency_key: Option<String>,
    /// Recipient user, if any.
    pub user_id: Option<Uuid>,
    /// Order the email is about, if any.
    pub order_id: Option<Uuid>,
    /// Recipient addresses, comma-separated.
    pub to_address: String,
    /// Provider that handled it (`resend`, `smtp`, `log`).
    pub provider: String,
    /// Template name (e.g. `order-confirmation`).
    pub template: String,
    /// Subject line.
    pub subject: Option<String>,
    /// `sent` or `failed`.
    pub status: String,
    /// Message id returned by the provider.
    pub provider_message_id: Option<String>,
    /// Provider error of a failed send.
    pub error: Option<String>,
    /// When the provider accepted the message (UTC); `None` if it failed.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the row was inserted (UTC).
    pub created_at: DateTime<Utc>,
}

/// `email_outbox` row (the local `log` provider's "sent" mail).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxMessage {
    /// Message id (primary key; the provider message id is `outbox_<id>`).
    pub id: Uuid,
    /// Dedupe key of the send; unique.
    pub idempotency_key: String,
    /// Sender address.
    pub from_address: String,
    /// Recipient addresses.
    pub to_addresses: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// HTML body, if any.
    pub html: Option<String>,
    /// Plain-text body, if any.
    pub text_body: Option<String>,
    /// When the message was stored (UTC).
    pub created_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- webhooks

/// Webhook provider (`webhook_events.source`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[derive(strum::IntoStaticStr, strum::EnumString, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum WebhookSource {
    /// Stripe (payments).
    Stripe,
    /// Clerk (users), delivered via Svix.
    Clerk,
    /// Printify (orders and products).
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
    /// Recorded, waiting for a retry.
    Pending,
    /// A retry attempt is running.
    Retrying,
    /// A retry succeeded.
    Succeeded,
    /// Retries exhausted (dead-lettered).
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
    /// Error message of the failed run.
    pub error: String,
}

/// `failed_operations` row (the dead-letter queue).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailedOperation {
    /// Operation id (primary key; `operationId` in `operation/failed`).
    pub id: Uuid,
    /// Operation type (`failed_operations.type`, e.g. `order.process`).
    pub op_type: String,
    /// Business key (e.g. the order id); unique together with `op_type`.
    pub dedupe_key: Option<String>,
    /// The failed run's event data, used to re-run the operation.
    pub payload: serde_json::Value,
    /// Retry attempts made so far.
    pub retry_count: i32,
    /// Error message of the last failure.
    pub last_error: Option<String>,
    /// Where the operation is in the retry ledger.
    pub status: OperationStatus,
    /// When the next retry is due (UTC); `None` = now.
    pub next_retry_at: Option<DateTime<Utc>>,
    /// When the operation was first recorded (UTC).
    pub created_at: DateTime<Utc>,
    /// When the row was last written (UTC).
    pub updated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------- maintenance

/// Counts from [`crate::db::Db::archive_final_orders`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct ArchiveCounts {
    /// Orders copied to `orders_archive`.
    pub orders: u64,
    /// Order lines copied to `order_items_archive`.
    pub order_items: u64,
}

/// Health counts for the monthly audit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AuditReport {
    /// Number of users.
    pub users_total: i64,
    /// Users whose email is empty.
    pub users_without_email: i64,
    /// Number of (live, unarchived) orders.
    pub orders_total: i64,
    /// `paid` but not yet `in_production` for more than 24 h.
    pub orders_paid_not_in_production: i64,
    /// Orders in `pending_mapping`.
    pub orders_pending_mapping: i64,
    /// Inventory alerts not yet resolved.
    pub open_inventory_alerts: i64,
    /// Dead-lettered failed operations.
    pub dead_operations: i64,
    /// Failed operations still `pending` or `retrying`.
    pub pending_operations: i64,
    /// Emails that failed in the last 30 days.
    pub failed_emails_30d: i64,
    /// Orders in `orders_archive`.
    pub archived_orders_total: i64,
}

/// `maintenance_reports` row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaintenanceReport {
    /// Report id (primary key).
    pub id: Uuid,
    /// Report kind (e.g. `monthly-audit`).
    pub kind: String,
    /// The report itself (JSON).
    pub report: serde_json::Value,
    /// When the report was stored (UTC).
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
