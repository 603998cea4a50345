//! Catalog sync (`update-printify-products`) and inventory (`sync-inventory`) through the local
//! executor against the fake Printify.

mod functions_support;

use std::time::Duration;

use functions_support::{matching, Opts, TestApp, ADMIN_EMAIL};
use inngest_executor::{HistoryKind, RunStatus, RunView, StepStatus};
use inngest_sdk::Event;
use otakumori::db::OperationStatus;
use otakumori::functions::{
    FunctionOptions, EVENT_INVENTORY_SYNC, EVENT_OPERATION_FAILED, EVENT_PRINTIFY_PRODUCTS_UPDATE,
    FN_UPDATE_PRINTIFY_PRODUCTS, OP_PRINTIFY_SYNC,
};
use otakumori::sandbox::fixtures::PRODUCT_IDS;
use otakumori::sandbox::Fault;
use serde_json::{json, Value};

const HOODIE: &str = PRODUCT_IDS[0];
const MUG: &str = PRODUCT_IDS[2];
const POSTER: &str = PRODUCT_IDS[3];
const TOTE: &str = PRODUCT_IDS[4];
const TEE: &str = PRODUCT_IDS[5];

/// Default sandbox catalog (6 products) in pages of 4: two pages.
async fn app() -> TestApp {
    TestApp::sqlite_with(Opts {
        functions: FunctionOptions {
            catalog_page_size: 4,
            ..FunctionOptions::default()
        },
        ..Opts::default()
    })
    .await
}

async fn sync(app: &TestApp, id: &str, data: Value) -> RunView {
    let id = app
        .h
        .send(Event::new(EVENT_PRINTIFY_PRODUCTS_UPDATE, data).with_id(id))
        .await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.function_id, app.fid(FN_UPDATE_PRINTIFY_PRODUCTS));
    run
}

fn listing_pages(app: &TestApp) -> Vec<(String, u16)> {
    app.printify_requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/products.json"))
        .map(|r| (r.query.clone().unwrap_or_default(), r.status))
        .collect()
}

#[tokio::test]
async fn full_sync_walks_two_pages_then_hides_and_disables_what_vanished() {
    let app = app().await;
    let run = sync(&app, "sync-1", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["mode"], "full");
    assert_eq!(out["pages"], 2);
    assert_eq!(out["productCount"], 6);
    assert_eq!(out["createdCount"], 6);
    assert_eq!(out["hiddenCount"], 0);
    assert_eq!(out["errors"], json!([]));
    for s in ["sync-page-1", "sync-page-2", "hide-missing"] {
        assert_eq!(run.step(s).unwrap().status, StepStatus::Completed, "{s}");
    }
    let page1 = run.step("sync-page-1").unwrap().output.clone().unwrap();
    assert_eq!(page1["data"]["lastPage"], 2);
    assert_eq!(page1["data"]["productIds"].as_array().unwrap().len(), 4);
    assert_eq!(
        listing_pages(&app),
        vec![
            ("page=1&limit=4".to_string(), 200),
            ("page=2&limit=4".to_string(), 200)
        ]
    );
    // Every request carried the bearer key.
    assert!(app
        .printify_requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer sandbox-printify-token")));

    assert_eq!(app.db.count_rows("products").await.unwrap(), 6);
    // 18 fixture variants, one disabled upstream (not stored)
    assert_eq!(app.db.count_rows("product_variants").await.unwrap(), 17);
    assert_eq!(app.db.count_rows("product_images").await.unwrap(), 12);
    let hoodie = app
        .db
        .get_product_by_printify_id(HOODIE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hoodie.title, "Sakura Petal Hoodie");
    assert_eq!(hoodie.category_slug.as_deref(), Some("apparel"));
    assert!(hoodie.active && hoodie.visible);
    let poster_big = app.variant(POSTER, 40_302).await;
    assert!(
        poster_big.is_enabled && !poster_big.in_stock,
        "unavailable upstream"
    );

    // Upstream: the tote is deleted, one hoodie variant removed, one tee variant disabled.
    assert!(app.printify().remove_product(TOTE));
    app.printify()
        .update_product(HOODIE, |p| p.variants.retain(|v| v.id != 40_002));
    app.printify().update_product(TEE, |p| {
        p.variants
            .iter_mut()
            .find(|v| v.id == 40_501)
            .unwrap()
            .is_enabled = false
    });
    app.printify().clear_requests();

    let run = sync(&app, "sync-2", json!({"reason": "manual"})).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["pages"], 2);
    assert_eq!(out["productCount"], 5);
    assert_eq!(out["createdCount"], 0);
    assert_eq!(out["hiddenCount"], 1);
    assert_eq!(out["variantsDisabled"], 2);
    assert_eq!(out["reason"], "manual");
    assert_eq!(listing_pages(&app).len(), 2);

    let tote = app
        .db
        .get_product_by_printify_id(TOTE)
        .await
        .unwrap()
        .unwrap();
    assert!(!tote.active && !tote.visible, "removed upstream → hidden");
    assert_eq!(tote.deactivated_by.as_deref(), Some("sync"));
    for (product, variant) in [(HOODIE, 40_002), (TEE, 40_501)] {
        let v = app.variant(product, variant).await;
        assert!(!v.is_enabled && !v.in_stock, "{product}/{variant} disabled");
    }
    assert!(app.variant(HOODIE, 40_001).await.is_enabled);
    // rows are kept (orders reference them), only flags change
    assert_eq!(app.db.count_rows("products").await.unwrap(), 6);
    assert_eq!(app.db.count_rows("product_variants").await.unwrap(), 17);
}

#[tokio::test]
async fn a_429_on_page_two_is_retried_after_retry_after_and_the_sync_completes() {
    let app = app().await;
    app.printify()
        .push_fault(Fault::rate_limit(1, 2).on_path("page=2"));
    let id = app
        .h
        .send(Event::new(EVENT_PRINTIFY_PRODUCTS_UPDATE, json!({})).with_id("sync-429"))
        .await;
    let run = app.h.first_run_of(&id).await;
    let run = app
        .h
        .wait_until(&run.id, "to schedule a retry", |r| {
            r.history_of(HistoryKind::RetryScheduled).count() == 1
        })
        .await;
    assert_eq!(run.status, RunStatus::Running);
    let page2 = run.step("sync-page-2").unwrap();
    assert_eq!(page2.error.as_ref().unwrap()["name"], "RetryAfterError");
    // Not retried before Retry-After (virtual clock).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(listing_pages(&app).len(), 2);
    app.h.advance(Duration::from_secs(2));
    let run = app.h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output.as_ref().unwrap()["productCount"], 6);
    assert_eq!(run.step("sync-page-1").unwrap().attempts, 1);
    assert_eq!(run.step("sync-page-2").unwrap().attempts, 2);
    assert_eq!(
        listing_pages(&app),
        vec![
            ("page=1&limit=4".to_string(), 200),
            ("page=2&limit=4".to_string(), 429),
            ("page=2&limit=4".to_string(), 200)
        ]
    );
    assert_eq!(app.db.count_rows("products").await.unwrap(), 6);
    assert!(app.db.list_products(true).await.unwrap().len() == 6);
}

#[tokio::test]
async fn targeted_sync_touches_only_the_given_ids() {
    let app = app().await;
    let run = sync(&app, "seed", json!({})).await;
    assert_eq!(run.status, RunStatus::Completed);
    let before: Vec<_> = app.db.list_products(false).await.unwrap();

    app.printify()
        .update_product(MUG, |p| p.title = "Chibi Neko Ramen Mug (v2)".into());
    app.printify()
        .update_product(HOODIE, |p| p.title = "changed upstream".into());
    assert!(app.printify().remove_product(TOTE));
    app.printify().clear_requests();

    let run = sync(
        &app,
        "targeted",
        json!({"productIds": [MUG, TOTE], "reason": "webhook"}),
    )
    .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["mode"], "targeted");
    assert_eq!(out["productCount"], 1);
    assert_eq!(out["hiddenCount"], 1);
    assert!(run.step(&format!("sync-product-{MUG}")).is_some());
    assert!(run.step(&format!("sync-product-{TOTE}")).is_some());
    assert!(run.step("sync-page-1").is_none());

    let reqs = app.printify_requests();
    let paths: Vec<(&str, &str, u16)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.status))
        .collect();
    assert_eq!(
        paths,
        vec![
            (
                "GET",
                &*format!("/v1/shops/8675309/products/{MUG}.json"),
                200
            ),
            (
                "GET",
                &*format!("/v1/shops/8675309/products/{TOTE}.json"),
                404
            ),
        ]
    );
    let after = app.db.list_products(false).await.unwrap();
    assert_eq!(after.len(), before.len());
    for b in &before {
        let id = b.printify_product_id.as_deref().unwrap();
        let a = after
            .iter()
            .find(|a| a.printify_product_id.as_deref() == Some(id))
            .unwrap();
        if id == MUG {
            assert_eq!(a.title, "Chibi Neko Ramen Mug (v2)");
            assert!(a.last_synced_at > b.last_synced_at);
        } else if id == TOTE {
            assert!(!a.active && !a.visible);
        } else {
            assert_eq!(a, b, "{id} untouched");
        }
    }
}

#[tokio::test]
async fn a_permanent_printify_error_is_not_retried_and_is_recorded_for_the_retry_queue() {
    let app = app().await;
    app.printify().push_fault(
        Fault::status(403, 5)
            .on_path("products.json")
            .with_message("This shop is disconnected"),
    );
    let run = sync(&app, "sync-403", json!({})).await;
    assert_eq!(run.status, RunStatus::Failed);
    let step = run.step("sync-page-1").unwrap();
    assert_eq!(step.attempts, 1, "non-retriable");
    assert_eq!(step.error.as_ref().unwrap()["name"], "NonRetriableError");
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("This shop is disconnected"));
    assert_eq!(
        listing_pages(&app),
        vec![("page=1&limit=4".to_string(), 403)]
    );

    // on_failure → failed_operations + operation/failed
    let failure = app
        .wait_runs_of(&format!("{FN_UPDATE_PRINTIFY_PRODUCTS}-failure"), 1)
        .await;
    assert_eq!(failure[0].status, RunStatus::Completed, "{:#?}", failure[0]);
    let ops = app.db.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].op_type, OP_PRINTIFY_SYNC);
    assert_eq!(ops[0].dedupe_key.as_deref(), Some("full"));
    assert_eq!(ops[0].status, OperationStatus::Pending);
    assert!(ops[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("disconnected"));
    let emitted = app.events_named(EVENT_OPERATION_FAILED);
    assert_eq!(emitted.len(), 1);
    assert_eq!(emitted[0]["data"]["operationId"], ops[0].id.to_string());
    assert_eq!(emitted[0]["data"]["type"], OP_PRINTIFY_SYNC);
    assert_eq!(app.db.count_rows("products").await.unwrap(), 0);
}

async fn inventory(app: &TestApp, id: &str, data: Value) -> RunView {
    let id = app
        .h
        .send(Event::new(EVENT_INVENTORY_SYNC, data).with_id(id))
        .await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    run
}

/// Flip a variant through the fake's HTTP control API.
async fn set_available(app: &TestApp, product: &str, variant: i64, available: bool) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{}/__fake/products/{product}/variants/{variant}/availability",
            app.printify().root_url()
        ))
        .json(&json!({ "is_available": available }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn inventory_flip_opens_one_alert_sends_one_email_then_resolves() {
    let app = app().await;
    assert_eq!(
        sync(&app, "seed", json!({})).await.status,
        RunStatus::Completed
    );
    assert!(app.variant(HOODIE, 40_001).await.in_stock);

    set_available(&app, HOODIE, 40_001, false).await;
    let run = inventory(&app, "inv-1", json!({})).await;
    let out = run.output.clone().unwrap();
    assert_eq!(out["mode"], "full");
    assert_eq!(out["productsChecked"], 6);
    assert_eq!(out["variantsChecked"], 17);
    assert_eq!(out["becameUnavailable"], 1);
    assert_eq!(out["becameAvailable"], 0);
    assert_eq!(out["alertsCreated"], 1);
    assert_eq!(out["emailSent"], true);
    for s in [
        "load-targets",
        "check-page-1",
        "check-page-2",
        "record-alerts",
        "notify-low-stock",
    ] {
        assert_eq!(run.step(s).unwrap().status, StepStatus::Completed, "{s}");
    }
    let v = app.variant(HOODIE, 40_001).await;
    assert!(!v.in_stock && v.is_enabled);
    let open = app.db.list_open_alerts().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].variant_id, v.id);
    assert_eq!(open[0].kind, "out_of_stock");
    assert!(open[0].notified_at.is_some());

    let emails = app.resend().emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, vec![ADMIN_EMAIL.to_string()]);
    assert_eq!(emails[0].subject, "[Otaku-mori] 1 variant(s) out of stock");
    assert!(emails[0]
        .text
        .as_deref()
        .unwrap()
        .contains("Sakura Petal Hoodie"));
    let log = app.db.list_email_log().await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].template, "inventory-alert");
    assert_eq!(log[0].status, "sent");

    // Nothing changed: no new alert, no second email.
    let run = inventory(&app, "inv-2", json!({})).await;
    let out = run.output.clone().unwrap();
    assert_eq!(out["becameUnavailable"], 0);
    assert_eq!(out["alertsCreated"], 0);
    assert_eq!(out["emailSent"], false);
    assert_eq!(app.db.list_open_alerts().await.unwrap().len(), 1);
    assert_eq!(app.resend().emails().len(), 1);

    // Back in stock (targeted check): the alert is resolved, no email.
    set_available(&app, HOODIE, 40_001, true).await;
    app.printify().clear_requests();
    let run = inventory(&app, "inv-3", json!({"productIds": [HOODIE]})).await;
    let out = run.output.clone().unwrap();
    assert_eq!(out["mode"], "targeted");
    assert_eq!(out["productsChecked"], 1);
    assert_eq!(out["becameAvailable"], 1);
    assert_eq!(out["alertsResolved"], 1);
    assert_eq!(out["emailSent"], false);
    assert!(run.step(&format!("check-{HOODIE}")).is_some());
    assert_eq!(
        matching(&app.printify_requests(), "GET", "/products").len(),
        1,
        "one product fetched"
    );
    assert!(app.variant(HOODIE, 40_001).await.in_stock);
    assert!(app.db.list_open_alerts().await.unwrap().is_empty());
    assert_eq!(app.db.count_rows("inventory_alerts").await.unwrap(), 1);
    assert_eq!(app.resend().emails().len(), 1);
}
