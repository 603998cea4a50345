//! `orders`, `order_items`, `printify_order_sync`.
//!
//! Status changes go through the state machine in [`OrderStatus::can_transition_to`] with an
//! optimistic `UPDATE … WHERE status = <expected>`; asking for the status the order already has
//! is a no-op (`changed: false`), so replayed steps are safe.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::users::map_user;
use super::{
    truncate_chars, with_db, Db, DbError, DbResult, ItemEligibility, NewOrder, Order, OrderDetail,
    OrderItem, OrderStatus, PaymentUpdate, PrintifyOrderSync, PrintifySyncStatus, RowExt,
    ShippingAddress, Transition,
};

/// Maximum stored length of `printify_order_sync.error` (characters).
pub const SYNC_ERROR_MAX: usize = 500;

pub(crate) fn map_order<R: RowExt>(r: &R) -> Result<Order, sqlx::Error> {
    Ok(Order {
        id: r.id("id")?,
        display_number: r.i64("display_number")?,
        user_id: r.id("user_id")?,
        stripe_session_id: r.opt_text("stripe_session_id")?,
        payment_intent_id: r.opt_text("payment_intent_id")?,
        status: r.parsed("status")?,
        subtotal_cents: r.i64("subtotal_cents")?,
        total_cents: r.i64("total_cents")?,
        currency: r.text("currency")?,
        shipping: ShippingAddress {
            name: r.opt_text("ship_name")?,
            email: r.opt_text("ship_email")?,
            phone: r.opt_text("ship_phone")?,
            line1: r.opt_text("ship_line1")?,
            line2: r.opt_text("ship_line2")?,
            city: r.opt_text("ship_city")?,
            region: r.opt_text("ship_region")?,
            postal_code: r.opt_text("ship_postal_code")?,
            country: r.opt_text("ship_country")?,
        },
        printify_order_id: r.opt_text("printify_order_id")?,
        tracking_number: r.opt_text("tracking_number")?,
        tracking_url: r.opt_text("tracking_url")?,
        paid_at: r.opt_ts("paid_at")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) fn map_item<R: RowExt>(r: &R) -> Result<OrderItem, sqlx::Error> {
    Ok(OrderItem {
        id: r.id("id")?,
        order_id: r.id("order_id")?,
        variant_id: r.opt_id("variant_id")?,
        printify_product_id: r.opt_text("printify_product_id")?,
        printify_variant_id: r.opt_i64("printify_variant_id")?,
        name: r.text("name")?,
        sku: r.opt_text("sku")?,
        quantity: r.i32("quantity")?,
        unit_amount_cents: r.i64("unit_amount_cents")?,
    })
}

fn map_sync<R: RowExt>(r: &R) -> Result<PrintifyOrderSync, sqlx::Error> {
    Ok(PrintifyOrderSync {
        order_id: r.id("order_id")?,
        printify_order_id: r.opt_text("printify_order_id")?,
        status: r.parsed("status")?,
        error: r.opt_text("error")?,
        last_sync_at: r.ts("last_sync_at")?,
    })
}

const UPSERT_SYNC: &str = "INSERT INTO printify_order_sync (order_id, printify_order_id, status, error, last_sync_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (order_id) DO UPDATE SET
       printify_order_id = COALESCE(excluded.printify_order_id, printify_order_sync.printify_order_id),
       status = excluded.status, error = excluded.error, last_sync_at = excluded.last_sync_at";

const SET_SHIPPING: &str = "UPDATE orders SET ship_name = $2, ship_email = $3, ship_phone = $4, ship_line1 = $5,
       ship_line2 = $6, ship_city = $7, ship_region = $8, ship_postal_code = $9, ship_country = $10, updated_at = $11
     WHERE id = $1";

impl Db {
    /// Create a `pending` order with its items (checkout, tests, seeding). `display_number` is
    /// assigned by the database.
    pub async fn create_order(&self, new: &NewOrder, now: DateTime<Utc>) -> DbResult<Order> {
        let id = Uuid::new_v4();
        let currency = if new.currency.trim().is_empty() {
            "USD".to_string()
        } else {
            new.currency.trim().to_ascii_uppercase()
        };
        let ship = new.shipping.clone().unwrap_or_default();
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            sqlx::query(
                "INSERT INTO orders (id, user_id, stripe_session_id, status, subtotal_cents, total_cents, currency,
                   ship_name, ship_email, ship_phone, ship_line1, ship_line2, ship_city, ship_region, ship_postal_code,
                   ship_country, created_at, updated_at)
                 VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)",
            )
            .bind(d::id(id))
            .bind(d::id(new.user_id))
            .bind(&new.stripe_session_id)
            .bind(new.subtotal_cents)
            .bind(new.total_cents)
            .bind(&currency)
            .bind(&ship.name)
            .bind(&ship.email)
            .bind(&ship.phone)
            .bind(&ship.line1)
            .bind(&ship.line2)
            .bind(&ship.city)
            .bind(&ship.region)
            .bind(&ship.postal_code)
            .bind(&ship.country)
            .bind(d::ts(now))
            .execute(&mut *tx)
            .await?;
            for it in &new.items {
                sqlx::query(
                    "INSERT INTO order_items (id, order_id, variant_id, printify_product_id, printify_variant_id, name, sku,
                       quantity, unit_amount_cents)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(d::id(Uuid::new_v4()))
                .bind(d::id(id))
                .bind(d::opt_id(it.variant_id))
                .bind(&it.printify_product_id)
                .bind(it.printify_variant_id)
                .bind(&it.name)
                .bind(&it.sku)
                .bind(it.quantity)
                .bind(it.unit_amount_cents)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<(), DbError>(())
        })?;
        self.get_order(id).await?.ok_or(DbError::NotFound {
            entity: "order",
            id: id.to_string(),
        })
    }

    /// One order.
    pub async fn get_order(&self, id: Uuid) -> DbResult<Option<Order>> {
        with_db!(self, |p, d| {
            let row = sqlx::query("SELECT * FROM orders WHERE id = $1")
                .bind(d::id(id))
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_order).transpose()?)
        })
    }

    /// Items of an order, in insertion order of their ids.
    pub async fn order_items(&self, order_id: Uuid) -> DbResult<Vec<OrderItem>> {
        with_db!(self, |p, d| {
            let rows =
                sqlx::query("SELECT * FROM order_items WHERE order_id = $1 ORDER BY name, id")
                    .bind(d::id(order_id))
                    .fetch_all(p)
                    .await?;
            Ok(rows.iter().map(map_item).collect::<Result<_, _>>()?)
        })
    }

    /// Order + items + user (steps `validate-order`, `load-order`). `None` if the order is missing.
    pub async fn get_order_detail(&self, id: Uuid) -> DbResult<Option<OrderDetail>> {
        let Some(order) = self.get_order(id).await? else {
            return Ok(None);
        };
        let items = self.order_items(id).await?;
        let user = with_db!(self, |p, d| {
            let row = sqlx::query("SELECT * FROM users WHERE id = $1")
                .bind(d::id(order.user_id))
                .fetch_one(p)
                .await?;
            map_user(&row)
        })?;
        Ok(Some(OrderDetail { order, items, user }))
    }

    /// Order by Stripe Checkout Session id.
    pub async fn find_order_by_stripe_session(&self, session_id: &str) -> DbResult<Option<Order>> {
        self.find_order_by("stripe_session_id", session_id).await
    }

    /// Order by PaymentIntent id.
    pub async fn find_order_by_payment_intent(
        &self,
        payment_intent_id: &str,
    ) -> DbResult<Option<Order>> {
        self.find_order_by("payment_intent_id", payment_intent_id)
            .await
    }

    /// Order by Printify order id.
    pub async fn find_order_by_printify_order_id(
        &self,
        printify_order_id: &str,
    ) -> DbResult<Option<Order>> {
        self.find_order_by("printify_order_id", printify_order_id)
            .await
    }

    async fn find_order_by(&self, column: &'static str, value: &str) -> DbResult<Option<Order>> {
        let sql = match column {
            "stripe_session_id" => {
                "SELECT * FROM orders WHERE stripe_session_id = $1 ORDER BY created_at LIMIT 1"
            }
            "payment_intent_id" => {
                "SELECT * FROM orders WHERE payment_intent_id = $1 ORDER BY created_at LIMIT 1"
            }
            _ => "SELECT * FROM orders WHERE printify_order_id = $1 ORDER BY created_at LIMIT 1",
        };
        with_db!(self, |p, _d| {
            let row = sqlx::query(sql).bind(value).fetch_optional(p).await?;
            Ok(row.as_ref().map(map_order).transpose()?)
        })
    }

    /// Move an order to `to` following the state machine. Same status = no-op (`changed:false`);
    /// a disallowed move is [`DbError::InvalidTransition`]; a missing order is [`DbError::NotFound`].
    pub async fn transition_order(
        &self,
        order_id: Uuid,
        to: OrderStatus,
        now: DateTime<Utc>,
    ) -> DbResult<Transition> {
        self.transition_unless(order_id, to, now, |_| false).await
    }

    /// Like [`Db::transition_order`], but also a no-op when `noop(current)` holds.
    async fn transition_unless(
        &self,
        order_id: Uuid,
        to: OrderStatus,
        now: DateTime<Utc>,
        noop: impl Fn(OrderStatus) -> bool,
    ) -> DbResult<Transition> {
        for _ in 0..5 {
            let from = self
                .get_order(order_id)
                .await?
                .ok_or(DbError::NotFound {
                    entity: "order",
                    id: order_id.to_string(),
                })?
                .status;
            if from == to || noop(from) {
                return Ok(Transition {
                    order_id,
                    from,
                    to: from,
                    changed: false,
                });
            }
            if !from.can_transition_to(to) {
                return Err(DbError::InvalidTransition { order_id, from, to });
            }
            let n = with_db!(self, |p, d| {
                sqlx::query(
                    "UPDATE orders SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
                )
                .bind(d::id(order_id))
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(d::ts(now))
                .execute(p)
                .await?
                .rows_affected()
            });
            if n == 1 {
                tracing::debug!(%order_id, %from, %to, "order status changed");
                return Ok(Transition {
                    order_id,
                    from,
                    to,
                    changed: true,
                });
            }
            // Lost a race with another writer: re-read and re-check.
        }
        Err(DbError::Invalid(format!(
            "order {order_id}: status kept changing concurrently"
        )))
    }

    /// Confirm payment (webhook `mark-order-paid`, processOrder `process-payment`): status
    /// `paid` (no-op if already `paid` or fulfilled), then write `payment_intent_id`,
    /// `total_cents`/`currency` when given, `paid_at` if not yet set, and the shipping columns
    /// when `shipping` is given.
    pub async fn mark_order_paid(
        &self,
        order_id: Uuid,
        pay: &PaymentUpdate,
        now: DateTime<Utc>,
    ) -> DbResult<Transition> {
        let t = self
            .transition_unless(order_id, OrderStatus::Paid, now, |s| s.is_fulfilled())
            .await?;
        let currency = pay.currency.as_ref().map(|c| c.trim().to_ascii_uppercase());
        let paid_at = pay.paid_at.unwrap_or(now);
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            sqlx::query(
                "UPDATE orders SET payment_intent_id = COALESCE($2, payment_intent_id),
                   total_cents = COALESCE($3, total_cents), currency = COALESCE($4, currency),
                   paid_at = COALESCE(paid_at, $5), updated_at = $6
                 WHERE id = $1",
            )
            .bind(d::id(order_id))
            .bind(&pay.payment_intent_id)
            .bind(pay.total_cents)
            .bind(&currency)
            .bind(d::ts(paid_at))
            .bind(d::ts(now))
            .execute(&mut *tx)
            .await?;
            if let Some(s) = &pay.shipping {
                sqlx::query(SET_SHIPPING)
                    .bind(d::id(order_id))
                    .bind(&s.name)
                    .bind(&s.email)
                    .bind(&s.phone)
                    .bind(&s.line1)
                    .bind(&s.line2)
                    .bind(&s.city)
                    .bind(&s.region)
                    .bind(&s.postal_code)
                    .bind(&s.country)
                    .bind(d::ts(now))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<(), DbError>(())
        })?;
        Ok(t)
    }

    /// Mark the order `payment_failed` (unpaid Checkout Session).
    pub async fn mark_order_payment_failed(
        &self,
        order_id: Uuid,
        now: DateTime<Utc>,
    ) -> DbResult<Transition> {
        self.transition_order(order_id, OrderStatus::PaymentFailed, now)
            .await
    }

    /// `payment_intent.payment_failed`: mark the order with that PaymentIntent `payment_failed`.
    /// `None` if no order has it. Orders already fulfilled are left alone (no-op).
    pub async fn mark_payment_failed_by_intent(
        &self,
        payment_intent_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Transition>> {
        let Some(order) = self.find_order_by_payment_intent(payment_intent_id).await? else {
            return Ok(None);
        };
        let t = self
            .transition_unless(order.id, OrderStatus::PaymentFailed, now, |s| {
                s.is_fulfilled() || s.is_final()
            })
            .await?;
        Ok(Some(t))
    }

    /// `payment_intent.succeeded`: set `paid_at` (if unset) on the order with that PaymentIntent.
    /// Returns rows changed (0 if unknown or already set).
    pub async fn mark_intent_succeeded(
        &self,
        payment_intent_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query("UPDATE orders SET paid_at = $2, updated_at = $2 WHERE payment_intent_id = $1 AND paid_at IS NULL")
                .bind(payment_intent_id)
                .bind(d::ts(now))
                .execute(p)
                .await?
                .rows_affected();
            Ok(n)
        })
    }

    /// Step `check-inventory`: eligibility of each order line (`is_enabled AND in_stock AND
    /// printify ids not null`), with Printify ids taken from the line or else from its variant.
    pub async fn order_fulfillment_check(&self, order_id: Uuid) -> DbResult<Vec<ItemEligibility>> {
        with_db!(self, |p, d| {
            let rows = sqlx::query(
                "SELECT oi.id, oi.name, oi.variant_id, oi.quantity,
                        oi.printify_product_id AS item_pp, oi.printify_variant_id AS item_pv,
                        v.id AS v_id, v.is_enabled AS v_enabled, v.in_stock AS v_in_stock,
                        v.printify_variant_id AS v_pv, pr.printify_product_id AS v_pp
                 FROM order_items oi
                 LEFT JOIN product_variants v ON v.id = oi.variant_id
                 LEFT JOIN products pr ON pr.id = v.product_id
                 WHERE oi.order_id = $1 ORDER BY oi.name, oi.id",
            )
            .bind(d::id(order_id))
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let has_variant = r.opt_id("v_id")?.is_some();
                let enabled = r.opt_boolean("v_enabled")?.unwrap_or(false);
                let in_stock = r.opt_boolean("v_in_stock")?.unwrap_or(false);
                let pp = r.opt_text("item_pp")?.or(r.opt_text("v_pp")?);
                let pv = r.opt_i64("item_pv")?.or(r.opt_i64("v_pv")?);
                let reason = if !has_variant {
                    Some("missing variant")
                } else if !enabled {
                    Some("variant disabled")
                } else if !in_stock {
                    Some("out of stock")
                } else if pp.is_none() || pv.is_none() {
                    Some("unmapped")
                } else {
                    None
                };
                out.push(ItemEligibility {
                    item_id: r.id("id")?,
                    name: r.text("name")?,
                    variant_id: r.opt_id("variant_id")?,
                    quantity: r.i32("quantity")?,
                    printify_product_id: pp,
                    printify_variant_id: pv,
                    variant_enabled: enabled,
                    variant_in_stock: in_stock,
                    eligible: reason.is_none(),
                    reason: reason.map(String::from),
                });
            }
            Ok(out)
        })
    }

    /// Current `printify_order_sync` row of an order.
    pub async fn get_printify_order_sync(
        &self,
        order_id: Uuid,
    ) -> DbResult<Option<PrintifyOrderSync>> {
        with_db!(self, |p, d| {
            let row = sqlx::query("SELECT * FROM printify_order_sync WHERE order_id = $1")
                .bind(d::id(order_id))
                .fetch_optional(p)
                .await?;
            Ok(row.as_ref().map(map_sync).transpose()?)
        })
    }

    async fn upsert_printify_sync(
        &self,
        order_id: Uuid,
        printify_order_id: Option<&str>,
        status: PrintifySyncStatus,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        let error = error.map(|e| truncate_chars(e, SYNC_ERROR_MAX));
        with_db!(self, |p, d| {
            sqlx::query(UPSERT_SYNC)
                .bind(d::id(order_id))
                .bind(printify_order_id)
                .bind(status.as_str())
                .bind(&error)
                .bind(d::ts(now))
                .execute(p)
                .await?;
            Ok(())
        })
    }

    /// Step `check-inventory` failed: order → `pending_mapping` and sync row `mapping_failed`
    /// with `error` (cut to 500 characters).
    pub async fn mark_order_pending_mapping(
        &self,
        order_id: Uuid,
        error: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Transition> {
        let t = self
            .transition_unless(order_id, OrderStatus::PendingMapping, now, |s| {
                s.is_fulfilled()
            })
            .await?;
        self.upsert_printify_sync(
            order_id,
            None,
            PrintifySyncStatus::MappingFailed,
            Some(error),
            now,
        )
        .await?;
        Ok(t)
    }

    /// Printify accepted the order: set `orders.printify_order_id`, status `in_production`
    /// and sync row `synced` (error cleared). Idempotent.
    pub async fn record_printify_order_created(
        &self,
        order_id: Uuid,
        printify_order_id: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Transition> {
        with_db!(self, |p, d| {
            sqlx::query("UPDATE orders SET printify_order_id = $2, updated_at = $3 WHERE id = $1")
                .bind(d::id(order_id))
                .bind(printify_order_id)
                .bind(d::ts(now))
                .execute(p)
                .await?;
            Ok::<(), DbError>(())
        })?;
        self.upsert_printify_sync(
            order_id,
            Some(printify_order_id),
            PrintifySyncStatus::Synced,
            None,
            now,
        )
        .await?;
        self.transition_unless(order_id, OrderStatus::InProduction, now, |s| {
            s.is_fulfilled()
        })
        .await
    }

    /// Printify rejected the order (4xx) or it failed for good: sync row `failed` with the error
    /// (cut to 500 characters). The order status is left unchanged.
    pub async fn record_printify_order_failed(
        &self,
        order_id: Uuid,
        error: &str,
        now: DateTime<Utc>,
    ) -> DbResult<()> {
        self.upsert_printify_sync(order_id, None, PrintifySyncStatus::Failed, Some(error), now)
            .await
    }

    /// Printify `order:shipment:*` webhook: move the order with that Printify id to
    /// `shipped`/`delivered` and store tracking info when given. `None` if unknown.
    pub async fn apply_printify_shipment(
        &self,
        printify_order_id: &str,
        to: OrderStatus,
        tracking_number: Option<&str>,
        tracking_url: Option<&str>,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Transition>> {
        if !matches!(to, OrderStatus::Shipped | OrderStatus::Delivered) {
            return Err(DbError::Invalid(format!(
                "shipment status must be shipped or delivered, not {to}"
            )));
        }
        let Some(order) = self
            .find_order_by_printify_order_id(printify_order_id)
            .await?
        else {
            return Ok(None);
        };
        let t = self
            .transition_unless(order.id, to, now, |s| s == OrderStatus::Delivered)
            .await?;
        with_db!(self, |p, d| {
            sqlx::query(
                "UPDATE orders SET tracking_number = COALESCE($2, tracking_number),
                   tracking_url = COALESCE($3, tracking_url), updated_at = $4 WHERE id = $1",
            )
            .bind(d::id(order.id))
            .bind(tracking_number)
            .bind(tracking_url)
            .bind(d::ts(now))
            .execute(p)
            .await?;
            Ok::<(), DbError>(())
        })?;
        Ok(Some(t))
    }
}
