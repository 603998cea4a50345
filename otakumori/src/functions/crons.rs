//! The fan-out crons (dailyInventorySync, weeklyProductUpdate).

//!
//! A cron run's context is the scheduler's `inngest/scheduled.timer` event, not an app event:
//! its handlers keep `Ctx<Value>` and read only the firing time from it.

use inngest_sdk::{Ctx, Function, Step, Trigger};
use serde_json::{json, Value};

use super::{
    event_time, rfc3339, CRON_DAILY_INVENTORY_SYNC, CRON_WEEKLY_PRODUCT_UPDATE,
    FN_DAILY_INVENTORY_SYNC, FN_WEEKLY_PRODUCT_UPDATE,
};
use crate::events::{self, InventorySync, PrintifyProductsUpdate};

/// **dailyInventorySync** (`daily-inventory-sync`): every day at 02:00 UTC
/// (`0 2 * * *`), one `step.send_event` (`send-inventory-sync`) of `inventory/sync {}` — a
/// send-event step, so a retry never sends twice; the event id is derived from the firing time,
/// so a duplicate firing is deduplicated too. `sync-inventory` does the work.
/// Returns `{success, timestamp, sentEventIds}`.
pub fn daily_inventory_sync() -> Function {
    Function::new(FN_DAILY_INVENTORY_SYNC)
        .name("Daily inventory sync")
        .trigger(Trigger::cron(CRON_DAILY_INVENTORY_SYNC))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let at = event_time(&ctx.event);
            let ids = step
                .send_event(
                    "send-inventory-sync",
                    events::with_id(
                        InventorySync::default(),
                        format!("inventory-sync-{}", at.timestamp_millis()),
                    ),
                )
                .await?;
            tracing::info!(events = ids.len(), "daily inventory sync requested");
            Ok(json!({
                "success": true,
                "timestamp": rfc3339(at),
                "sentEventIds": ids,
            }))
        })
}

/// **weeklyProductUpdate** (`weekly-product-update`): Mondays at 03:00 UTC
/// (`0 3 * * 1`), one `step.send_event` (`send-products-update`) of
/// `printify/products.update {reason: "cron"}` — a full catalog sync by
/// `update-printify-products`. Returns `{success, timestamp, sentEventIds}`.
pub fn weekly_product_update() -> Function {
    Function::new(FN_WEEKLY_PRODUCT_UPDATE)
        .name("Weekly product update")
        .trigger(Trigger::cron(CRON_WEEKLY_PRODUCT_UPDATE))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let at = event_time(&ctx.event);
            let ids = step
                .send_event(
                    "send-products-update",
                    events::with_id(
                        PrintifyProductsUpdate {
                            reason: Some("cron".into()),
                            ..PrintifyProductsUpdate::default()
                        },
                        format!("products-update-{}", at.timestamp_millis()),
                    ),
                )
                .await?;
            tracing::info!(events = ids.len(), "weekly catalog sync requested");
            Ok(json!({
                "success": true,
                "timestamp": rfc3339(at),
                "sentEventIds": ids,
            }))
        })
}
