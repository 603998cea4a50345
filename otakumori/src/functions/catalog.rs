//! The Printify catalog sync (updatePrintifyProducts).

use std::collections::BTreeSet;
use std::time::Duration;

use inngest_sdk::{Concurrency, Ctx, Error, EventType, Function, FunctionFailed, Step, Throttle};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::dead_letter::record_failure;
use super::{
    api_err, bad_payload, db_err, event_time, now_utc, rfc3339, Deps, FN_UPDATE_PRINTIFY_PRODUCTS,
    OP_PRINTIFY_SYNC,
};
use crate::events::PrintifyProductsUpdate;

/// Most product ids one targeted sync accepts.
pub const MAX_TARGETED_PRODUCTS: usize = 100;
/// Safety bound on the number of pages of a full sync.
pub const MAX_PAGES: u32 = 1000;

/// Output of one `sync-page-{n}` step (ids and counts only: step outputs stay small).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PageSync {
    /// The page number synced (1-based).
    pub page: u32,
    /// Printify's last page number (clamped to `1..=MAX_PAGES`).
    pub last_page: u32,
    /// Products on the page written to the catalog.
    pub upserted: u64,
    /// Of those, products that were new.
    pub created: u64,
    /// Local variants disabled because Printify no longer offers them.
    pub variants_disabled: u64,
    /// Every product id Printify listed on this page.
    pub product_ids: Vec<String>,
    /// Products whose upsert failed permanently, as `<printify id>: <error>`.
    pub errors: Vec<String>,
}

/// Output of one `sync-product-{id}` step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ProductSync {
    /// The Printify product id synced.
    pub printify_product_id: String,
    /// Printify still has it (else it was hidden locally).
    pub found: bool,
    /// The product was written to the catalog.
    pub upserted: bool,
    /// The product was new.
    pub created: bool,
    /// The product was missing at Printify and has been hidden locally.
    pub hidden: bool,
    /// Local variants disabled because Printify no longer offers them.
    pub variants_disabled: u64,
    /// Why the upsert failed permanently, if it did.
    pub error: Option<String>,
}

/// Fetch one page of the listing and upsert every product on it. A product whose upsert fails
/// permanently is reported in `errors` (the page still succeeds); transient database errors and
/// provider errors fail the step (429 → retry-after).
pub async fn sync_page(d: &Deps, page: u32) -> Result<PageSync, Error> {
    let listing = d
        .printify
        .list_products_page(page, d.options.catalog_page_size)
        .await
        .map_err(api_err)?;
    let shop = d.printify.shop_id().to_string();
    let mut out = PageSync {
        page,
        last_page: listing.last_page.clamp(1, MAX_PAGES),
        upserted: 0,
        created: 0,
        variants_disabled: 0,
        product_ids: Vec::with_capacity(listing.data.len()),
        errors: Vec::new(),
    };
    for product in &listing.data {
        out.product_ids.push(product.id.clone());
        match d
            .app
            .db
            .upsert_catalog_product(&product.to_catalog_input(&shop), now_utc())
            .await
        {
            Ok(u) => {
                out.upserted += 1;
                out.created += u64::from(u.created);
                out.variants_disabled += u.variants_disabled;
            }
            Err(e) if e.is_retriable() => return Err(db_err(e)),
            Err(e) => out.errors.push(format!("{}: {e}", product.id)),
        }
    }
    tracing::info!(
        page,
        last_page = out.last_page,
        upserted = out.upserted,
        errors = out.errors.len(),
        "catalog page synced"
    );
    Ok(out)
}

/// Fetch one product and upsert it; a 404 hides it locally.
pub async fn sync_product(d: &Deps, printify_product_id: &str) -> Result<ProductSync, Error> {
    let db = &d.app.db;
    let mut out = ProductSync {
        printify_product_id: printify_product_id.to_string(),
        found: false,
        upserted: false,
        created: false,
        hidden: false,
        variants_disabled: 0,
        error: None,
    };
    match d
        .printify
        .get_product(printify_product_id)
        .await
        .map_err(api_err)?
    {
        Some(p) => {
            out.found = true;
            match db
                .upsert_catalog_product(&p.to_catalog_input(d.printify.shop_id()), now_utc())
                .await
            {
                Ok(u) => {
                    out.upserted = true;
                    out.created = u.created;
                    out.variants_disabled = u.variants_disabled;
                }
                Err(e) if e.is_retriable() => return Err(db_err(e)),
                Err(e) => out.error = Some(e.to_string()),
            }
        }
        None => {
            out.hidden = db
                .hide_product(printify_product_id, now_utc())
                .await
                .map_err(db_err)?;
        }
    }
    Ok(out)
}

/// A whole sync in one go (no steps): what `retry-failed-operation` runs for `printify.sync`.
pub async fn sync_now(d: &Deps, product_ids: Option<Vec<String>>) -> Result<Value, Error> {
    if let Some(ids) = product_ids {
        let mut upserted = 0u64;
        let mut hidden = 0u64;
        let mut errors = Vec::new();
        for id in &ids {
            let p = sync_product(d, id).await?;
            upserted += u64::from(p.upserted);
            hidden += u64::from(p.hidden);
            errors.extend(p.error.map(|e| format!("{id}: {e}")));
        }
        return Ok(
            json!({"mode": "targeted", "productCount": upserted, "hiddenCount": hidden, "errors": errors}),
        );
    }
    let first = sync_page(d, 1).await?;
    let mut pages = vec![first.clone()];
    for n in 2..=first.last_page {
        pages.push(sync_page(d, n).await?);
    }
    let (seen, upserted, errors) = summarize(&pages);
    let hidden = if errors.is_empty() && !seen.is_empty() {
        d.app
            .db
            .hide_missing_products(&seen, now_utc())
            .await
            .map_err(db_err)?
    } else {
        0
    };
    Ok(json!({"mode": "full", "productCount": upserted, "hiddenCount": hidden, "errors": errors}))
}

fn summarize(pages: &[PageSync]) -> (Vec<String>, u64, Vec<String>) {
    let seen: BTreeSet<String> = pages
        .iter()
        .flat_map(|p| p.product_ids.iter().cloned())
        .collect();
    let upserted = pages.iter().map(|p| p.upserted).sum();
    let errors = pages.iter().flat_map(|p| p.errors.clone()).collect();
    (seen.into_iter().collect(), upserted, errors)
}

/// The targets of a `printify/products.update` event: `None` = full sync.
fn targets(data: &PrintifyProductsUpdate) -> Result<Option<Vec<String>>, Error> {
    let ev = PrintifyProductsUpdate::NAME;
    let Some(ids) = data.product_ids.clone() else {
        return Ok(None);
    };
    let mut uniq = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let safe = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !safe {
            return Err(bad_payload(
                ev,
                &format!("productIds[{i}]"),
                "is not a Printify product id",
            ));
        }
        if !uniq.contains(&id) {
            uniq.push(id);
        }
    }
    if uniq.len() > MAX_TARGETED_PRODUCTS {
        return Err(bad_payload(
            ev,
            "productIds",
            &format!("has more than {MAX_TARGETED_PRODUCTS} ids"),
        ));
    }
    Ok((!uniq.is_empty()).then_some(uniq))
}

/// The dead-letter key of a failed sync; the failed run's data is raw JSON (it may be what
/// failed to decode), so an undecodable one keys as a full sync.
fn catalog_dedupe_key(data: &Value) -> String {
    let decoded = serde_json::from_value::<PrintifyProductsUpdate>(data.clone());
    match decoded.ok().as_ref().map(targets) {
        Some(Ok(Some(ids))) => format!("products:{}", ids.join(",")),
        _ => "full".to_string(),
    }
}

/// **updatePrintifyProducts** (`update-printify-products`): the catalog sync from
/// Printify into `products` / `product_variants` / `product_images`.
///
/// * Trigger `printify/products.update {shopId?, productIds?, reason?}` — empty data (or an
///   empty `productIds`) is a **full sync**, `productIds` a **targeted sync** (this absorbs the
///   original's unserved `syncOnProductChange`/`manualPrintifySync`). A `shopId` for another
///   shop is skipped.
/// * Concurrency 1 (function-wide: syncs never overlap); throttle 10 starts/minute (webhook
///   bursts queue up); retries default; `on_failure` → `failed_operations` (`printify.sync`) +
///   `operation/failed`.
/// * Full sync: steps `sync-page-1` … `sync-page-{lastPage}` each fetch one page
///   (`limit` 50) and upsert it (`{page, lastPage, upserted, productIds, errors}`), then
///   `hide-missing` (only when every page succeeded without product errors, and Printify listed
///   at least one product) sets `active=false, visible=false` on products no longer listed.
///   Upserts disable variants that vanished or were disabled upstream.
/// * Targeted: one step `sync-product-{id}` per id: fetch and upsert, or hide on 404. Nothing
///   else is touched.
/// * A Printify 429 becomes a retry-after error with the provider's `Retry-After`; a permanent
///   4xx is non-retriable.
/// * Returns `{success, mode, productCount, hiddenCount, errors, timestamp}` (+ `pages`).
pub fn update_printify_products() -> Function {
    Function::new(FN_UPDATE_PRINTIFY_PRODUCTS)
        .name("Sync Printify catalog")
        // Untyped on purpose, and so registered before `.on`: it records runs whose event
        // did not decode too.
        .on_failure(|ctx: Ctx<FunctionFailed<Value>>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let key = catalog_dedupe_key(&ctx.event.data.event.data);
            record_failure(d, &step, &ctx.event.data, OP_PRINTIFY_SYNC, Some(key)).await
        })
        .on::<PrintifyProductsUpdate>()
        .concurrency(Concurrency::new(1))
        .throttle(Throttle::new(10, Duration::from_secs(60)))
        .handler(|ctx: Ctx<PrintifyProductsUpdate>, step: Step| async move {
            let d: &Deps = ctx.get()?;
            let data = &ctx.event.data;
            let started = event_time(&ctx.event);
            let reason = data.reason.clone();
            if let Some(shop) = data.shop_id.as_ref().map(ToString::to_string) {
                if shop != d.printify.shop_id() {
                    tracing::info!("products.update for another shop; skipped");
                    return Ok(json!({
                        "success": true,
                        "mode": "skipped",
                        "reason": "shopId is not this shop",
                        "productCount": 0,
                        "hiddenCount": 0,
                        "errors": [],
                        "timestamp": rfc3339(started),
                    }));
                }
            }

            if let Some(ids) = targets(data)? {
                let mut results = Vec::with_capacity(ids.len());
                for id in &ids {
                    let r: ProductSync = step
                        .run(&format!("sync-product-{id}"), || sync_product(d, id))
                        .await?;
                    results.push(r);
                }
                let upserted = results.iter().filter(|r| r.upserted).count();
                let hidden = results.iter().filter(|r| r.hidden).count();
                let errors: Vec<String> = results
                    .iter()
                    .filter_map(|r| {
                        r.error
                            .as_ref()
                            .map(|e| format!("{}: {e}", r.printify_product_id))
                    })
                    .collect();
                tracing::info!(
                    products = ids.len(),
                    upserted,
                    hidden,
                    "targeted catalog sync done"
                );
                return Ok(json!({
                    "success": errors.is_empty(),
                    "mode": "targeted",
                    "reason": reason,
                    "productCount": upserted,
                    "hiddenCount": hidden,
                    "products": results,
                    "errors": errors,
                    "timestamp": rfc3339(started),
                }));
            }

            let first: PageSync = step.run("sync-page-1", || sync_page(d, 1)).await?;
            let last_page = first.last_page;
            let mut pages = vec![first];
            for n in 2..=last_page {
                let p: PageSync = step
                    .run(&format!("sync-page-{n}"), || sync_page(d, n))
                    .await?;
                pages.push(p);
            }
            let (seen, upserted, errors) = summarize(&pages);
            let hidden: u64 = if errors.is_empty() && !seen.is_empty() {
                step.run("hide-missing", || async {
                    d.app
                        .db
                        .hide_missing_products(&seen, now_utc())
                        .await
                        .map_err(db_err)
                })
                .await?
            } else {
                tracing::warn!(
                    errors = errors.len(),
                    listed = seen.len(),
                    "hide-missing skipped"
                );
                0
            };
            let variants_disabled: u64 = pages.iter().map(|p| p.variants_disabled).sum();
            tracing::info!(
                pages = pages.len(),
                upserted,
                hidden,
                "full catalog sync done"
            );
            Ok(json!({
                "success": errors.is_empty(),
                "mode": "full",
                "reason": reason,
                "pages": pages.len(),
                "productCount": upserted,
                "createdCount": pages.iter().map(|p| p.created).sum::<u64>(),
                "hiddenCount": hidden,
                "variantsDisabled": variants_disabled,
                "errors": errors,
                "timestamp": rfc3339(started),
            }))
        })
        .into()
}
