//! Retention deletes (cleanup cron) and the monthly archive/audit.
//! Every method returns the number of rows it touched, so steps can report counts.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    with_db, ArchiveCounts, AuditReport, Db, DbError, DbResult, MaintenanceReport, RowExt,
};
use crate::config::RetentionConfig;

/// Counts of one full cleanup pass ([`Db::run_cleanup`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct CleanupCounts {
    /// Processed `webhook_events` rows deleted (older than the webhook retention).
    pub webhook_events: u64,
    /// `email_log` rows deleted (older than the email retention).
    pub email_logs: u64,
    /// `email_outbox` messages deleted (same window as the email log).
    pub outbox_messages: u64,
    /// `succeeded`/`dead` `failed_operations` rows purged.
    pub operations: u64,
    /// Items of abandoned carts deleted.
    pub cart_items: u64,
    /// Never-paid `pending` orders cancelled.
    pub expired_orders: u64,
}

/// `now - window`, saturating.
pub fn cutoff(now: DateTime<Utc>, window: std::time::Duration) -> DateTime<Utc> {
    let w = Duration::from_std(window).unwrap_or(Duration::MAX);
    now.checked_sub_signed(w)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

const ARCHIVE_ITEMS: &str = "INSERT INTO order_items_archive (id, order_id, variant_id, printify_product_id, printify_variant_id,
       name, sku, quantity, unit_amount_cents, archived_at)
     SELECT oi.id, oi.order_id, oi.variant_id, oi.printify_product_id, oi.printify_variant_id, oi.name, oi.sku,
       oi.quantity, oi.unit_amount_cents, $2
     FROM order_items oi JOIN orders o ON o.id = oi.order_id
     WHERE o.status IN ('shipped', 'delivered', 'cancelled') AND o.updated_at < $1
     ON CONFLICT (id) DO NOTHING";

const ARCHIVE_ORDERS: &str = "INSERT INTO orders_archive (id, display_number, user_id, stripe_session_id, payment_intent_id, status,
       subtotal_cents, total_cents, currency, ship_name, ship_email, ship_phone, ship_line1, ship_line2, ship_city,
       ship_region, ship_postal_code, ship_country, printify_order_id, tracking_number, tracking_url, paid_at,
       created_at, updated_at, archived_at)
     SELECT id, display_number, user_id, stripe_session_id, payment_intent_id, status,
       subtotal_cents, total_cents, currency, ship_name, ship_email, ship_phone, ship_line1, ship_line2, ship_city,
       ship_region, ship_postal_code, ship_country, printify_order_id, tracking_number, tracking_url, paid_at,
       created_at, updated_at, $2
     FROM orders WHERE status IN ('shipped', 'delivered', 'cancelled') AND updated_at < $1
     ON CONFLICT (id) DO NOTHING";

const AUDIT_SQL: &str = "SELECT
       (SELECT COUNT(*) FROM users) AS users_total,
       (SELECT COUNT(*) FROM users WHERE email = '') AS users_without_email,
       (SELECT COUNT(*) FROM orders) AS orders_total,
       (SELECT COUNT(*) FROM orders WHERE status = 'paid' AND COALESCE(paid_at, updated_at) < $1) AS paid_stuck,
       (SELECT COUNT(*) FROM orders WHERE status = 'pending_mapping') AS pending_mapping,
       (SELECT COUNT(*) FROM inventory_alerts WHERE resolved_at IS NULL) AS open_alerts,
       (SELECT COUNT(*) FROM failed_operations WHERE status = 'dead') AS dead_ops,
       (SELECT COUNT(*) FROM failed_operations WHERE status IN ('pending', 'retrying')) AS pending_ops,
       (SELECT COUNT(*) FROM email_log WHERE status = 'failed' AND created_at >= $2) AS failed_emails,
       (SELECT COUNT(*) FROM orders_archive) AS archived_total";

impl Db {
    /// Delete `webhook_events` processed before `before` (unprocessed rows are kept).
    pub async fn delete_processed_webhook_events(&self, before: DateTime<Utc>) -> DbResult<u64> {
        self.exec_cutoff(
            "DELETE FROM webhook_events WHERE processed_at IS NOT NULL AND processed_at < $1",
            before,
        )
        .await
    }

    /// Delete `email_log` rows created before `before`.
    pub async fn delete_email_logs_before(&self, before: DateTime<Utc>) -> DbResult<u64> {
        self.exec_cutoff("DELETE FROM email_log WHERE created_at < $1", before)
            .await
    }

    /// Delete `email_outbox` messages created before `before`.
    pub async fn delete_outbox_before(&self, before: DateTime<Utc>) -> DbResult<u64> {
        self.exec_cutoff("DELETE FROM email_outbox WHERE created_at < $1", before)
            .await
    }

    /// Delete `failed_operations` that are `succeeded`/`dead` and were last updated before `before`.
    pub async fn purge_resolved_operations(&self, before: DateTime<Utc>) -> DbResult<u64> {
        self.exec_cutoff(
            "DELETE FROM failed_operations WHERE status IN ('succeeded', 'dead') AND updated_at < $1",
            before,
        )
        .await
    }

    /// Delete the items of carts not updated since `before`.
    pub async fn delete_abandoned_cart_items(&self, before: DateTime<Utc>) -> DbResult<u64> {
        self.exec_cutoff(
            "DELETE FROM cart_items WHERE cart_id IN (SELECT id FROM carts WHERE updated_at < $1)",
            before,
        )
        .await
    }

    /// Cancel orders still `pending` (never paid) that were created before `before`.
    pub async fn expire_stale_pending_orders(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query(
                "UPDATE orders SET status = 'cancelled', updated_at = $2 WHERE status = 'pending' AND created_at < $1",
            )
            .bind(d::ts(before))
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n)
        })
    }

    async fn exec_cutoff(&self, sql: &'static str, before: DateTime<Utc>) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query(sql)
                .bind(d::ts(before))
                .execute(p)
                .await?
                .rows_affected();
            Ok(n)
        })
    }

    /// Run every retention delete with the configured windows.
    pub async fn run_cleanup(
        &self,
        retention: &RetentionConfig,
        now: DateTime<Utc>,
    ) -> DbResult<CleanupCounts> {
        Ok(CleanupCounts {
            webhook_events: self
                .delete_processed_webhook_events(cutoff(now, retention.webhook_events))
                .await?,
            email_logs: self
                .delete_email_logs_before(cutoff(now, retention.email_logs))
                .await?,
            outbox_messages: self
                .delete_outbox_before(cutoff(now, retention.email_logs))
                .await?,
            operations: self
                .purge_resolved_operations(cutoff(now, retention.operations))
                .await?,
            cart_items: self
                .delete_abandoned_cart_items(cutoff(now, retention.carts))
                .await?,
            expired_orders: self
                .expire_stale_pending_orders(cutoff(now, retention.pending_orders), now)
                .await?,
        })
    }

    /// Monthly `archive-orders`: in one transaction, copy orders in a final state
    /// (`shipped`/`delivered`/`cancelled`) last updated before `before`, and their items, into
    /// the archive tables, then delete them. Replay-safe (archive inserts ignore existing ids).
    pub async fn archive_final_orders(
        &self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> DbResult<ArchiveCounts> {
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            let items = sqlx::query(ARCHIVE_ITEMS)
                .bind(d::ts(before))
                .bind(d::ts(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(ARCHIVE_ORDERS)
                .bind(d::ts(before))
                .bind(d::ts(now))
                .execute(&mut *tx)
                .await?;
            let orders = sqlx::query(
                "DELETE FROM orders WHERE status IN ('shipped', 'delivered', 'cancelled') AND updated_at < $1",
            )
            .bind(d::ts(before))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(ArchiveCounts {
                orders,
                order_items: items,
            })
        })
    }

    /// Monthly `analyze-tables`: refresh planner statistics (`ANALYZE`).
    pub async fn analyze_tables(&self) -> DbResult<()> {
        with_db!(self, |p, d| {
            sqlx::query(d::pick(
                "ANALYZE users, products, product_variants, orders, order_items, email_log, webhook_events, failed_operations",
                "ANALYZE",
            ))
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// Monthly `audit-report`: health counts as of `now`.
    pub async fn audit_report(&self, now: DateTime<Utc>) -> DbResult<AuditReport> {
        let stuck_before = now - Duration::hours(24);
        let failed_since = now - Duration::days(30);
        with_db!(self, |p, d| {
            let r = sqlx::query(AUDIT_SQL)
                .bind(d::ts(stuck_before))
                .bind(d::ts(failed_since))
                .fetch_one(p)
                .await?;
            Ok(AuditReport {
                users_total: r.i64("users_total")?,
                users_without_email: r.i64("users_without_email")?,
                orders_total: r.i64("orders_total")?,
                orders_paid_not_in_production: r.i64("paid_stuck")?,
                orders_pending_mapping: r.i64("pending_mapping")?,
                open_inventory_alerts: r.i64("open_alerts")?,
                dead_operations: r.i64("dead_ops")?,
                pending_operations: r.i64("pending_ops")?,
                failed_emails_30d: r.i64("failed_emails")?,
                archived_orders_total: r.i64("archived_total")?,
            })
        })
    }

    /// Store a maintenance report (e.g. kind `monthly-audit`).
    pub async fn save_maintenance_report(
        &self,
        kind: &str,
        report: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> DbResult<MaintenanceReport> {
        with_db!(self, |p, d| {
            let r = sqlx::query(
                "INSERT INTO maintenance_reports (id, kind, report, created_at) VALUES ($1, $2, $3, $4) RETURNING *",
            )
            .bind(d::id(Uuid::new_v4()))
            .bind(kind)
            .bind(d::json(report))
            .bind(d::ts(now))
            .fetch_one(p)
            .await?;
            Ok(MaintenanceReport {
                id: r.id("id")?,
                kind: r.text("kind")?,
                report: r.json("report")?,
                created_at: r.ts("created_at")?,
            })
        })
    }

    /// Stored reports of a kind, newest first.
    pub async fn list_maintenance_reports(&self, kind: &str) -> DbResult<Vec<MaintenanceReport>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query(
                "SELECT * FROM maintenance_reports WHERE kind = $1 ORDER BY created_at DESC, id",
            )
            .bind(kind)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(MaintenanceReport {
                        id: r.id("id")?,
                        kind: r.text("kind")?,
                        report: r.json("report")?,
                        created_at: r.ts("created_at")?,
                    })
                })
                .collect::<Result<Vec<_>, DbError>>()
        })
    }
}
