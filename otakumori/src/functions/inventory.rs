//! Variant availability and out-of-stock alerts (syncInventory).

use std::collections::BTreeSet;

use inngest_sdk::{Concurrency, Ctx, Error, EventType, Function, Step};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{api_err, bad_payload, db_err, event_time, now_utc, rfc3339, Deps, FN_SYNC_INVENTORY};
use crate::db::inventory::AlertSummary;
use crate::db::AvailabilityChange;
use crate::events::InventorySync;
use crate::services::email::{templates, EmailRequest};

/// Output of `load-targets`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Targets {
    /// `targeted` (ids from the event) or `full` (every active product).
    mode: String,
    product_ids: Vec<String>,
}

/// Output of one check step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Checked {
    /// Local products whose availability was applied.
    pub products_checked: u64,
    /// Local variants looked at.
    pub variants_checked: u64,
    /// Variants whose `in_stock` flipped (`{variantId, productId, printifyVariantId, from, to}`).
    pub changes: Vec<AvailabilityChange>,
    /// Products Printify listed on this page (full mode).
    pub seen: Vec<String>,
    /// Last page of the listing (full mode).
    pub last_page: u32,
    /// Products Printify no longer has (all their variants became unavailable).
    pub missing: Vec<String>,
}

impl Checked {
    fn absorb(&mut self, other: Checked) {
        self.products_checked += other.products_checked;
        self.variants_checked += other.variants_checked;
        self.changes.extend(other.changes);
        self.missing.extend(other.missing);
    }
}

/// Output of `notify-low-stock`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Notified {
    emailed: bool,
    alert_ids: Vec<Uuid>,
    email_log_id: Option<Uuid>,
    already_sent: bool,
}

/// Apply one product's upstream availability (`None` = Printify has no such product: every
/// local variant counts as unavailable).
async fn apply(
    d: &Deps,
    printify_product_id: &str,
    product: Option<&crate::services::printify::PrintifyProduct>,
) -> Result<Checked, Error> {
    let upstream = product.map(|p| p.availability()).unwrap_or_default();
    let up = d
        .app
        .db
        .apply_variant_availability(printify_product_id, &upstream, now_utc())
        .await
        .map_err(db_err)?;
    Ok(Checked {
        products_checked: 1,
        variants_checked: up.variants_checked,
        changes: up.changes,
        missing: if product.is_none() {
            vec![printify_product_id.to_string()]
        } else {
            Vec::new()
        },
        ..Checked::default()
    })
}

/// Targeted check of one product (`GET /products/{id}.json`).
async fn check_product(d: &Deps, printify_product_id: &str) -> Result<Checked, Error> {
    let product = d
        .printify
        .get_product(printify_product_id)
        .await
        .map_err(api_err)?;
    apply(d, printify_product_id, product.as_ref()).await
}

/// Full check of one page of the listing, for the targets on it.
async fn check_page(d: &Deps, page: u32, targets: &BTreeSet<String>) -> Result<Checked, Error> {
    let listing = d
        .printify
        .list_products_page(page, d.options.catalog_page_size)
        .await
        .map_err(api_err)?;
    let mut out = Checked {
        last_page: listing.last_page.clamp(1, super::catalog::MAX_PAGES),
        ..Checked::default()
    };
    for p in &listing.data {
        out.seen.push(p.id.clone());
        if targets.contains(&p.id) {
            out.absorb(apply(d, &p.id, Some(p)).await?);
        }
    }
    Ok(out)
}

/// Send-once key of an alert email: the sorted alert ids, hashed.
fn alert_email_key(ids: &[Uuid]) -> String {
    let mut ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    ids.sort();
    let digest = Sha256::digest(ids.join(",").as_bytes());
    format!("inventory-alert:{}", hex::encode(&digest[..12]))
}

/// **syncInventory** (`sync-inventory`): Printify availability → `in_stock`, with
/// out-of-stock alerts.
///
/// * Trigger `inventory/sync {productIds?}` (the daily cron sends `{}`); concurrency 1.
/// * Step `load-targets`: the given ids, or every active product with a Printify id.
/// * Checks: targeted → one `check-{id}` step per product (`GET` the product); full → one
///   `check-page-{n}` step per listing page, then `check-missing` for active products Printify
///   no longer lists. Each sets `product_variants.in_stock = is_enabled AND is_available` and
///   returns the variants that flipped.
/// * Step `record-alerts`: opens one `out_of_stock` alert per variant that became unavailable
///   (never a second open one) and resolves the alerts of variants that came back.
/// * Step `notify-low-stock` (when `ADMIN_ALERT_EMAIL` is set and un-notified open alerts exist):
///   one summary email through `Mailer::send_once` (keyed by the alert ids), then `notified_at`.
/// * Returns `{success, mode, productsChecked, variantsChecked, becameUnavailable,
///   becameAvailable, alertsCreated, alertsResolved, emailSent, timestamp}`.
pub fn sync_inventory() -> Function {
    Function::new(FN_SYNC_INVENTORY)
        .name("Sync inventory from Printify")
        .on::<InventorySync>()
        .concurrency(Concurrency::new(1))
        .handler(|ctx: Ctx<InventorySync>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let ev = InventorySync::NAME;
            let started = event_time(&ctx.event);
            let given = ctx.event.data.product_ids.clone();
            if let Some(ids) = &given {
                if let Some(i) = ids.iter().position(|id| {
                    id.len() > 64
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                }) {
                    return Err(bad_payload(
                        ev,
                        &format!("productIds[{i}]"),
                        "is not a Printify product id",
                    ));
                }
            }
            let targets: Targets = step
                .run("load-targets", || async {
                    match given.clone().filter(|v| !v.is_empty()) {
                        Some(all) => {
                            let mut ids: Vec<String> = Vec::with_capacity(all.len());
                            for id in all {
                                if !ids.contains(&id) {
                                    ids.push(id);
                                }
                            }
                            Ok(Targets {
                                mode: "targeted".into(),
                                product_ids: ids,
                            })
                        }
                        None => Ok(Targets {
                            mode: "full".into(),
                            product_ids: d
                                .app
                                .db
                                .active_printify_product_ids()
                                .await
                                .map_err(db_err)?,
                        }),
                    }
                })
                .await?;

            let mut total = Checked::default();
            if targets.mode == "targeted" {
                for id in &targets.product_ids {
                    let c: Checked = step
                        .run(&format!("check-{id}"), || check_product(d, id))
                        .await?;
                    total.absorb(c);
                }
            } else if !targets.product_ids.is_empty() {
                let wanted: BTreeSet<String> = targets.product_ids.iter().cloned().collect();
                let first: Checked = step
                    .run("check-page-1", || check_page(d, 1, &wanted))
                    .await?;
                let last_page = first.last_page;
                let mut seen: BTreeSet<String> = first.seen.iter().cloned().collect();
                total.absorb(first);
                for n in 2..=last_page {
                    let c: Checked = step
                        .run(&format!("check-page-{n}"), || check_page(d, n, &wanted))
                        .await?;
                    seen.extend(c.seen.iter().cloned());
                    total.absorb(c);
                }
                let gone: Vec<String> = wanted.difference(&seen).cloned().collect();
                if !gone.is_empty() {
                    let c: Checked = step
                        .run("check-missing", || async {
                            let mut out = Checked::default();
                            for id in &gone {
                                out.absorb(apply(d, id, None).await?);
                            }
                            Ok(out)
                        })
                        .await?;
                    total.absorb(c);
                }
            }

            let alerts: AlertSummary = step
                .run("record-alerts", || async {
                    d.app
                        .db
                        .record_availability_alerts(&total.changes, now_utc())
                        .await
                        .map_err(db_err)
                })
                .await?;

            let mut notified: Option<Notified> = None;
            if let Some(admin) = d.app.mailer.admin_alert_email().map(str::to_string) {
                let n: Notified = step
                    .run("notify-low-stock", || async {
                        let db = &d.app.db;
                        let open = db.list_unnotified_alerts().await.map_err(db_err)?;
                        if open.is_empty() {
                            return Ok(Notified {
                                emailed: false,
                                alert_ids: Vec::new(),
                                email_log_id: None,
                                already_sent: false,
                            });
                        }
                        let ids: Vec<Uuid> = open.iter().map(|a| a.id).collect();
                        let r = templates::inventory_alert(&open);
                        let sent = d
                            .app
                            .mailer
                            .send_once(&EmailRequest::rendered(
                                alert_email_key(&ids),
                                templates::INVENTORY_ALERT,
                                admin.clone(),
                                r,
                            ))
                            .await
                            .map_err(super::email_err)?;
                        db.mark_alerts_notified(&ids, now_utc())
                            .await
                            .map_err(db_err)?;
                        tracing::info!(alerts = ids.len(), "inventory alert email sent");
                        Ok(Notified {
                            emailed: true,
                            alert_ids: ids,
                            email_log_id: Some(sent.log_id),
                            already_sent: sent.already_sent,
                        })
                    })
                    .await?;
                notified = Some(n);
            }

            let became_unavailable = total.changes.iter().filter(|c| c.from && !c.to).count();
            let became_available = total.changes.iter().filter(|c| !c.from && c.to).count();
            tracing::info!(
                products = total.products_checked,
                variants = total.variants_checked,
                became_unavailable,
                became_available,
                alerts = alerts.created.len(),
                "inventory sync done"
            );
            Ok(json!({
                "success": true,
                "mode": targets.mode,
                "productsChecked": total.products_checked,
                "variantsChecked": total.variants_checked,
                "becameUnavailable": became_unavailable,
                "becameAvailable": became_available,
                "missingProducts": total.missing,
                "alertsCreated": alerts.created.len(),
                "alertsResolved": alerts.resolved,
                "emailSent": notified.as_ref().is_some_and(|n| n.emailed && !n.already_sent),
                "alertEmail": notified,
                "timestamp": rfc3339(started),
            }))
        })
        .into()
}
