//! Variant availability and `inventory_alerts`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    with_db, AvailabilityChange, AvailabilityUpdate, Db, DbResult, InventoryAlert, RowExt,
    VariantAvailability,
};

/// Default alert kind.
pub const OUT_OF_STOCK: &str = "out_of_stock";

/// Result of [`Db::record_availability_alerts`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct AlertSummary {
    /// Ids of alerts opened by this call (none on replay: at most one open alert per variant).
    pub created: Vec<Uuid>,
    /// Open alerts resolved because their variant came back.
    pub resolved: u64,
}

fn map_alert<R: RowExt>(r: &R) -> Result<InventoryAlert, sqlx::Error> {
    Ok(InventoryAlert {
        id: r.id("id")?,
        variant_id: r.id("variant_id")?,
        kind: r.text("kind")?,
        created_at: r.ts("created_at")?,
        resolved_at: r.opt_ts("resolved_at")?,
        notified_at: r.opt_ts("notified_at")?,
        product_title: r.opt_text("product_title")?,
        variant_title: r.opt_text("variant_title")?,
        sku: r.opt_text("sku")?,
    })
}

const ALERT_SELECT: &str =
    "SELECT a.*, pr.title AS product_title, v.title AS variant_title, v.sku AS sku
     FROM inventory_alerts a
     JOIN product_variants v ON v.id = a.variant_id
     JOIN products pr ON pr.id = v.product_id";

impl Db {
    /// Inventory check for one product: set `in_stock = is_enabled AND is_available` on the
    /// product's locally enabled variants (a variant missing from `upstream` counts as
    /// unavailable) and return the variants whose flag flipped. Replaying returns no changes.
    pub async fn apply_variant_availability(
        &self,
        printify_product_id: &str,
        upstream: &[VariantAvailability],
        now: DateTime<Utc>,
    ) -> DbResult<AvailabilityUpdate> {
        let by_id: HashMap<i64, &VariantAvailability> = upstream
            .iter()
            .map(|v| (v.printify_variant_id, v))
            .collect();
        with_db!(self, |p, d| {
            let mut tx = d::begin(p).await?;
            let rows = sqlx::query(
                "SELECT v.id, v.product_id, v.printify_variant_id, v.in_stock
                 FROM product_variants v JOIN products pr ON pr.id = v.product_id
                 WHERE pr.printify_product_id = $1 AND v.is_enabled
                 ORDER BY v.printify_variant_id",
            )
            .bind(printify_product_id)
            .fetch_all(&mut *tx)
            .await?;
            let mut out = AvailabilityUpdate::default();
            for r in &rows {
                let variant_id = r.id("id")?;
                let pv = r.i64("printify_variant_id")?;
                let from = r.boolean("in_stock")?;
                let to = by_id
                    .get(&pv)
                    .map(|a| a.is_enabled && a.is_available)
                    .unwrap_or(false);
                out.variants_checked += 1;
                sqlx::query(
                    "UPDATE product_variants SET in_stock = $2, last_synced_at = $3 WHERE id = $1",
                )
                .bind(d::id(variant_id))
                .bind(to)
                .bind(d::ts(now))
                .execute(&mut *tx)
                .await?;
                if from != to {
                    out.changes.push(AvailabilityChange {
                        variant_id,
                        product_id: r.id("product_id")?,
                        printify_variant_id: pv,
                        from,
                        to,
                    });
                }
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Open an alert for a variant unless one of the same kind is already open.
    /// Returns the new alert id, or `None` if one was open (idempotent).
    pub async fn open_inventory_alert(
        &self,
        variant_id: Uuid,
        kind: &str,
        now: DateTime<Utc>,
    ) -> DbResult<Option<Uuid>> {
        with_db!(self, |p, d| {
            let row = sqlx::query(
                "INSERT INTO inventory_alerts (id, variant_id, kind, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (variant_id, kind) WHERE resolved_at IS NULL DO NOTHING
                 RETURNING id",
            )
            .bind(d::id(Uuid::new_v4()))
            .bind(d::id(variant_id))
            .bind(kind)
            .bind(d::ts(now))
            .fetch_optional(p)
            .await?;
            Ok(row.map(|r| r.id("id")).transpose()?)
        })
    }

    /// Resolve the variant's open alerts (all kinds). Returns how many were resolved.
    pub async fn resolve_inventory_alerts(
        &self,
        variant_id: Uuid,
        now: DateTime<Utc>,
    ) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query("UPDATE inventory_alerts SET resolved_at = $2 WHERE variant_id = $1 AND resolved_at IS NULL")
                .bind(d::id(variant_id))
                .bind(d::ts(now))
                .execute(p)
                .await?
                .rows_affected();
            Ok(n)
        })
    }

    /// Step `record-alerts`: open an `out_of_stock` alert for each change to unavailable and
    /// resolve alerts for each change back to available.
    pub async fn record_availability_alerts(
        &self,
        changes: &[AvailabilityChange],
        now: DateTime<Utc>,
    ) -> DbResult<AlertSummary> {
        let mut summary = AlertSummary::default();
        for c in changes {
            if c.from && !c.to {
                if let Some(id) = self
                    .open_inventory_alert(c.variant_id, OUT_OF_STOCK, now)
                    .await?
                {
                    summary.created.push(id);
                }
            } else if !c.from && c.to {
                summary.resolved += self.resolve_inventory_alerts(c.variant_id, now).await?;
            }
        }
        Ok(summary)
    }

    /// Open alerts (with product/variant titles), oldest first.
    pub async fn list_open_alerts(&self) -> DbResult<Vec<InventoryAlert>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{ALERT_SELECT} WHERE a.resolved_at IS NULL ORDER BY a.created_at, a.id"
            )))
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_alert).collect::<Result<_, _>>()?)
        })
    }

    /// Open alerts not yet emailed (`notified_at IS NULL`), oldest first.
    pub async fn list_unnotified_alerts(&self) -> DbResult<Vec<InventoryAlert>> {
        with_db!(self, |p, _d| {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "{ALERT_SELECT} WHERE a.resolved_at IS NULL AND a.notified_at IS NULL ORDER BY a.created_at, a.id"
            )))
            .fetch_all(p)
            .await?;
            Ok(rows.iter().map(map_alert).collect::<Result<_, _>>()?)
        })
    }

    /// Set `notified_at` on the given alerts (those not yet notified). Returns rows changed.
    pub async fn mark_alerts_notified(
        &self,
        alert_ids: &[Uuid],
        now: DateTime<Utc>,
    ) -> DbResult<u64> {
        with_db!(self, |p, d| {
            let n = sqlx::query(d::pick(
                "UPDATE inventory_alerts SET notified_at = $2 WHERE notified_at IS NULL AND id = ANY($1)",
                "UPDATE inventory_alerts SET notified_at = $2 WHERE notified_at IS NULL AND id IN (SELECT value FROM json_each($1))",
            ))
            .bind(d::id_array(alert_ids))
            .bind(d::ts(now))
            .execute(p)
            .await?
            .rows_affected();
            Ok(n)
        })
    }
}
