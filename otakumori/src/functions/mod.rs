//! The Otakumori Inngest functions, built on `inngest-sdk`.
//!
//! [`all`] returns every function of the app (`APP_ID = "otakumori-app"`), ready to be served
//! with `inngest_sdk::serve::axum::router(&client, functions::all())` — `client` built with
//! [`middleware::install`] — or driven by the local executor. The original function ids are kept, so Inngest sees the same functions as the
//! TypeScript app; the Rust names follow the setup guide.
//!
//! | Rust fn | id | trigger |
//! |---|---|---|
//! | [`users::sync_user_to_supabase`] | `sync-user-to-supabase` | `clerk/user.created` |
//! | [`users::user_profile_update`] | `user-profile-update` | `clerk/user.updated`, `clerk/user.deleted` |
//! | [`catalog::update_printify_products`] | `update-printify-products` | `printify/products.update` |
//! | [`inventory::sync_inventory`] | `sync-inventory` | `inventory/sync` |
//! | [`crons::daily_inventory_sync`] | `daily-inventory-sync` | cron `0 2 * * *` |
//! | [`crons::weekly_product_update`] | `weekly-product-update` | cron `0 3 * * 1` |
//! | [`orders::process_order`] | `process-order` | `order/created` |
//! | [`orders::send_order_confirmation`] | `send-order-confirmation` | `order/confirmation.sent` |
//! | [`payments::handle_payment_webhook`] | `process-payment-webhook` | `stripe/webhook` |
//! | [`operations::retry_failed_operation`] | `retry-failed-operation` | `operation/failed` |
//! | [`maintenance::cleanup_old_data`] | `cleanup-old-data` | cron `0 4 * * 0` |
//! | [`maintenance::monthly_operations`] | `monthly-maintenance` | cron `0 5 1 * *` |
//!
//! Crons run in UTC (no `TZ=` prefix), like the original.
//!
//! # Conventions
//!
//! * **Every step is idempotent**: it writes through repository methods keyed by provider ids
//!   (upserts, `ON CONFLICT`, state-machine transitions that are no-ops on replay), checks
//!   `printify_order_sync` before creating a Printify order, and sends email through
//!   [`Mailer::send_once`](crate::services::email::Mailer::send_once). Fan-out uses
//!   `step.send_event` with deterministic event ids, so a retried run never emits twice.
//! * **Errors**: a bad event payload is [`NonRetriable`] naming the field (`data.orderId`, …); a
//!   provider 429 is [`RetryAfter`] with the provider's `Retry-After`; other permanent provider
//!   errors (4xx) are non-retriable; transport errors, 5xx and transient database errors are
//!   ordinary (retried) errors. See [`api_err`], [`db_err`], [`email_err`].
//! * **Failures feed the dead-letter table**: `process-order`, `send-order-confirmation` and
//!   `update-printify-products` have `on_failure` handlers that upsert a `failed_operations` row
//!   and emit `operation/failed`, which [`operations::retry_failed_operation`] retries with an
//!   explicit exponential backoff (`step.sleep`) before dead-lettering.
//! * **Time**: database writes use the wall clock ([`now_utc`]); cron jobs compute retention
//!   cutoffs from their triggering event's timestamp ([`event_time`]), so a retried step uses
//!   the same cutoff and tests can drive them with the executor's virtual clock.
//! * Logs (tracing) carry ids and counts only — never customer, address or payment data.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inngest_sdk::{Error, Event, EventType, Function, NonRetriable, RetryAfter};

use crate::context::AppContext;
use crate::db::DbError;
use crate::events;
use crate::services::email::EmailError;
use crate::services::printify::PrintifyClient;
use crate::services::{ApiError, RateLimitPolicy};

pub use crate::db::now_utc;

pub mod catalog;
pub mod crons;
mod dead_letter;
pub mod inventory;
pub mod maintenance;
pub mod middleware;
pub mod operations;
pub mod orders;
pub mod payments;
pub mod users;

/// The Inngest app id (the original's `inngest/client.ts`).
pub const APP_ID: &str = "otakumori-app";
/// The app's display name.
pub const APP_NAME: &str = "Otakumori";

// ------------------------------------------------------------------ event names

// The names live on the types of [`crate::events`]; these aliases keep string call sites short.

/// Clerk signup (webhook `user.created`); data = the Clerk user object, id = `svix-id`.
pub const EVENT_CLERK_USER_CREATED: &str = <events::ClerkUserCreated as EventType>::NAME;
/// Clerk profile change (webhook `user.updated`); same data shape.
pub const EVENT_CLERK_USER_UPDATED: &str = <events::ClerkUserUpdated as EventType>::NAME;
/// Clerk account deletion; data `{id, deleted: true}`.
pub const EVENT_CLERK_USER_DELETED: &str = <events::ClerkUserDeleted as EventType>::NAME;
/// Stripe webhook `{id, type, created, livemode, object}`; id = Stripe `evt_…` id.
pub const EVENT_STRIPE_WEBHOOK: &str = <events::StripeWebhook as EventType>::NAME;
/// Catalog sync request `{shopId?, productIds?, reason?}` (empty = full sync).
pub const EVENT_PRINTIFY_PRODUCTS_UPDATE: &str =
    <events::PrintifyProductsUpdate as EventType>::NAME;
/// Printify order webhook (`order:*` topics); recorded by the webhook route, no function.
pub const EVENT_PRINTIFY_ORDER_UPDATED: &str = <events::PrintifyOrderUpdated as EventType>::NAME;
/// Inventory check `{productIds?}`.
pub const EVENT_INVENTORY_SYNC: &str = <events::InventorySync as EventType>::NAME;
/// A paid (or checkout-created) order to fulfil: `{orderId, userId?, stripeSessionId?}`.
pub const EVENT_ORDER_CREATED: &str = <events::OrderCreated as EventType>::NAME;
/// Send the confirmation email: `{orderId, email?}` (name kept for parity with the original).
pub const EVENT_ORDER_CONFIRMATION_SENT: &str = <events::OrderConfirmationSent as EventType>::NAME;
/// A failed operation to retry: `{operationId, type, payload, retryCount, error}`.
pub const EVENT_OPERATION_FAILED: &str = <events::OperationFailed as EventType>::NAME;

// ------------------------------------------------------------------ function ids

/// Id of [`users::sync_user_to_supabase`].
pub const FN_SYNC_USER_TO_SUPABASE: &str = "sync-user-to-supabase";
/// Id of [`users::user_profile_update`].
pub const FN_USER_PROFILE_UPDATE: &str = "user-profile-update";
/// Id of [`catalog::update_printify_products`].
pub const FN_UPDATE_PRINTIFY_PRODUCTS: &str = "update-printify-products";
/// Id of [`inventory::sync_inventory`].
pub const FN_SYNC_INVENTORY: &str = "sync-inventory";
/// Id of [`crons::daily_inventory_sync`].
pub const FN_DAILY_INVENTORY_SYNC: &str = "daily-inventory-sync";
/// Id of [`crons::weekly_product_update`].
pub const FN_WEEKLY_PRODUCT_UPDATE: &str = "weekly-product-update";
/// Id of [`orders::process_order`].
pub const FN_PROCESS_ORDER: &str = "process-order";
/// Id of [`orders::send_order_confirmation`].
pub const FN_SEND_ORDER_CONFIRMATION: &str = "send-order-confirmation";
/// Id of [`payments::handle_payment_webhook`] (the guide calls it `handlePaymentWebhook`; the
/// original id is kept).
pub const FN_PROCESS_PAYMENT_WEBHOOK: &str = "process-payment-webhook";
/// Id of [`operations::retry_failed_operation`].
pub const FN_RETRY_FAILED_OPERATION: &str = "retry-failed-operation";
/// Id of [`maintenance::cleanup_old_data`].
pub const FN_CLEANUP_OLD_DATA: &str = "cleanup-old-data";
/// Id of [`maintenance::monthly_operations`].
pub const FN_MONTHLY_MAINTENANCE: &str = "monthly-maintenance";

/// Every function id returned by [`all`], in order.
pub const FUNCTION_IDS: [&str; 12] = [
    FN_SYNC_USER_TO_SUPABASE,
    FN_USER_PROFILE_UPDATE,
    FN_UPDATE_PRINTIFY_PRODUCTS,
    FN_SYNC_INVENTORY,
    FN_DAILY_INVENTORY_SYNC,
    FN_WEEKLY_PRODUCT_UPDATE,
    FN_PROCESS_ORDER,
    FN_SEND_ORDER_CONFIRMATION,
    FN_PROCESS_PAYMENT_WEBHOOK,
    FN_RETRY_FAILED_OPERATION,
    FN_CLEANUP_OLD_DATA,
    FN_MONTHLY_MAINTENANCE,
];

/// Cron schedules (UTC).
pub const CRON_DAILY_INVENTORY_SYNC: &str = "0 2 * * *";
/// Mondays 03:00 UTC.
pub const CRON_WEEKLY_PRODUCT_UPDATE: &str = "0 3 * * 1";
/// Sundays 04:00 UTC.
pub const CRON_CLEANUP_OLD_DATA: &str = "0 4 * * 0";
/// The 1st of each month, 05:00 UTC.
pub const CRON_MONTHLY_MAINTENANCE: &str = "0 5 1 * *";

/// `failed_operations.type` of a failed `process-order` run.
pub const OP_ORDER_PROCESS: &str = "order.process";
/// `failed_operations.type` of a failed `send-order-confirmation` run.
pub const OP_EMAIL_ORDER_CONFIRMATION: &str = "email.order_confirmation";
/// `failed_operations.type` of a failed `update-printify-products` run.
pub const OP_PRINTIFY_SYNC: &str = "printify.sync";

/// Tunables of the functions (defaults as in the original app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionOptions {
    /// Page size of the Printify product listing (1–50; default 50, Printify's maximum).
    pub catalog_page_size: u32,
    /// How long `process-order` waits for the Stripe payment of an unpaid order (default 1 h).
    pub payment_wait_timeout: Duration,
    /// `retry-failed-operation`: first backoff (default 30 s), doubled per retry …
    pub retry_base_delay: Duration,
    /// … up to this (default 1 h).
    pub retry_max_delay: Duration,
    /// `retry-failed-operation`: attempts before the row is dead-lettered (default 3).
    pub max_operation_retries: i32,
}

impl Default for FunctionOptions {
    fn default() -> Self {
        Self {
            catalog_page_size: crate::services::printify::MAX_PAGE_LIMIT,
            payment_wait_timeout: Duration::from_secs(3600),
            retry_base_delay: Duration::from_secs(30),
            retry_max_delay: Duration::from_secs(3600),
            max_operation_retries: 3,
        }
    }
}

impl FunctionOptions {
    /// Backoff before retry `n` (0-based): `min(base · 2^n, max)`.
    pub fn backoff(&self, n: i32) -> Duration {
        let factor = 2u32.saturating_pow(n.clamp(0, 30) as u32);
        self.retry_base_delay
            .saturating_mul(factor)
            .min(self.retry_max_delay)
    }
}

/// What the functions share: the app context, a Printify client that hands every 429 to
/// Inngest (no in-process sleeping), and the [`FunctionOptions`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Deps {
    /// Database, clients, mailer, config.
    pub app: Arc<AppContext>,
    /// `app.printify` with in-process 429 retries disabled: a rate limit becomes
    /// [`RetryAfter`] and Inngest schedules the retry.
    pub printify: PrintifyClient,
    /// Tunables.
    pub options: FunctionOptions,
}

impl Deps {
    /// Build from a context and options.
    pub fn new(app: Arc<AppContext>, options: FunctionOptions) -> Self {
        let printify = app
            .printify
            .clone()
            .with_rate_limit_policy(RateLimitPolicy {
                max_retries: 0,
                ..RateLimitPolicy::default()
            })
            .with_page_size(options.catalog_page_size);
        Self {
            app,
            printify,
            options,
        }
    }
}

/// Every function of the app. Their handlers read the [`Deps`] that [`middleware::Services`]
/// attaches to each call, so serve them with a client that has the app's middleware
/// ([`middleware::install`]).
pub fn all() -> Vec<Function> {
    vec![
        users::sync_user_to_supabase(),
        users::user_profile_update(),
        catalog::update_printify_products(),
        inventory::sync_inventory(),
        crons::daily_inventory_sync(),
        crons::weekly_product_update(),
        orders::process_order(),
        orders::send_order_confirmation(),
        payments::handle_payment_webhook(),
        operations::retry_failed_operation(),
        maintenance::cleanup_old_data(),
        maintenance::monthly_operations(),
    ]
}

// ------------------------------------------------------------------ error mapping

/// A database error as an Inngest error: transient ones (connection, lock, serialization) are
/// retried; constraint violations, missing rows and invalid transitions are non-retriable.
pub fn db_err(e: DbError) -> Error {
    if e.is_retriable() {
        Error::from(e)
    } else {
        NonRetriable::new(e.to_string()).into()
    }
}

/// A provider error as an Inngest error: 429 → [`RetryAfter`] (the provider's `Retry-After`,
/// else 60 s); other permanent errors (4xx, bad input) → [`NonRetriable`]; the rest is retried.
pub fn api_err(e: ApiError) -> Error {
    match &e {
        ApiError::RateLimited { retry_after, .. } => RetryAfter::delay(
            e.to_string(),
            retry_after
                .unwrap_or(Duration::from_secs(60))
                .max(Duration::from_secs(1)),
        )
        .into(),
        _ if e.is_permanent() => NonRetriable::new(e.to_string()).into(),
        _ => Error::from(e),
    }
}

/// A mailer error as an Inngest error (see [`api_err`] and [`db_err`]).
pub fn email_err(e: EmailError) -> Error {
    match e {
        EmailError::Provider(api) => api_err(api),
        EmailError::Db(db) => db_err(db),
    }
}

// ------------------------------------------------------------------ payload helpers

/// Non-retriable "bad payload" error naming the event and the field.
pub(crate) fn bad_payload(event: &str, path: &str, what: &str) -> Error {
    NonRetriable::new(format!("invalid `{event}` payload: `data.{path}` {what}")).into()
}

/// The triggering event's timestamp (`ts`, ms), microsecond precision; now if absent. Cron jobs
/// use it as their reference time.
pub fn event_time<T>(event: &Event<T>) -> DateTime<Utc> {
    event
        .ts
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or_else(now_utc)
}

/// RFC 3339 (seconds) for the `timestamp` fields of function results.
pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_payload_names_the_event_and_the_field() {
        let e = bad_payload("stripe/webhook", "object.id", "is missing");
        assert_eq!(e.kind(), &inngest_sdk::ErrorKind::NonRetriable);
        assert_eq!(
            e.message(),
            "invalid `stripe/webhook` payload: `data.object.id` is missing"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let o = FunctionOptions::default();
        assert_eq!(o.backoff(0), Duration::from_secs(30));
        assert_eq!(o.backoff(1), Duration::from_secs(60));
        assert_eq!(o.backoff(2), Duration::from_secs(120));
        assert_eq!(o.backoff(10), Duration::from_secs(3600));
        assert_eq!(o.backoff(100), Duration::from_secs(3600));
    }

    #[test]
    fn api_errors_map_to_retry_classes() {
        let e = api_err(ApiError::RateLimited {
            service: "printify",
            retry_after: Some(Duration::from_secs(7)),
        });
        assert!(matches!(e.kind(), inngest_sdk::ErrorKind::RetryAfter(_)));
        let e = api_err(ApiError::Permanent {
            service: "printify",
            status: 400,
            message: "Validation failed.".into(),
        });
        assert_eq!(e.kind(), &inngest_sdk::ErrorKind::NonRetriable);
        let e = api_err(ApiError::Server {
            service: "printify",
            status: 503,
            message: "down".into(),
        });
        assert_eq!(e.kind(), &inngest_sdk::ErrorKind::Retriable);
    }
}
