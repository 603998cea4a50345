//! Repository scenarios shared by `db_sqlite.rs` and `db_postgres.rs`: each function gets a
//! freshly migrated, empty database and asserts real rows.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use otakumori::config::RetentionConfig;
use otakumori::db::*;
use otakumori::sandbox::fixtures;
use otakumori::services::email::{EmailRequest, Mailer, OutboxProvider};
use uuid::Uuid;

pub fn t0() -> DateTime<Utc> {
    // Fixed clock (microsecond precision, like both backends store).
    DateTime::parse_from_rfc3339("2026-03-15T10:00:00.123456Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn profile(clerk: &str, email: &str) -> UserProfile {
    UserProfile {
        clerk_id: clerk.into(),
        email: email.into(),
        username: None,
        display_name: Some("Rei Ayanami".into()),
        avatar_url: Some("https://img.clerk.example/rei.png".into()),
    }
}

/// Seed the default sandbox catalog; returns the upsert outcomes.
pub async fn seed_catalog(db: &Db) -> Vec<CatalogUpsert> {
    let mut out = Vec::new();
    for p in fixtures::default_products() {
        out.push(
            db.upsert_catalog_product(&p.to_catalog_input("8675309"), t0())
                .await
                .unwrap(),
        );
    }
    out
}

pub fn ship() -> ShippingAddress {
    ShippingAddress {
        name: Some("Asuka Langley".into()),
        email: Some("asuka@nerv.example".into()),
        phone: None,
        line1: Some("2 Eva Street".into()),
        line2: None,
        city: Some("Tokyo-3".into()),
        region: Some("Kanagawa".into()),
        postal_code: Some("250-0001".into()),
        country: Some("JP".into()),
    }
}

pub async fn users_upsert(db: &Db) {
    let now = t0();
    let a = db
        .upsert_user(&profile("user_2abc", "rei@nerv.example"), now)
        .await
        .unwrap();
    assert!(a.created);
    assert_eq!(a.row.clerk_id, "user_2abc");
    assert_eq!(a.row.visibility, "public");
    assert_eq!(a.row.created_at, now);

    let mut p = profile("user_2abc", "rei.ayanami@nerv.example");
    p.username = Some("rei".into());
    let b = db
        .upsert_user(&p, now + Duration::seconds(5))
        .await
        .unwrap();
    assert!(!b.created);
    assert_eq!(b.row.id, a.row.id);
    assert_eq!(b.row.email, "rei.ayanami@nerv.example");
    assert_eq!(b.row.username.as_deref(), Some("rei"));
    assert_eq!(b.row.created_at, now, "created_at kept");
    assert_eq!(b.row.updated_at, now + Duration::seconds(5));
    // A later upsert without username keeps the stored one.
    let c = db
        .upsert_user(&profile("user_2abc", "rei.ayanami@nerv.example"), now)
        .await
        .unwrap();
    assert_eq!(c.row.username.as_deref(), Some("rei"));
    assert_eq!(db.count_rows("users").await.unwrap(), 1);

    // update before create → upsert with all fields reported.
    let u = db
        .update_user_profile(&profile("user_late", "late@nerv.example"), now)
        .await
        .unwrap();
    assert!(u.created);
    assert_eq!(
        u.changed_fields,
        vec!["email", "display_name", "avatar_url"]
    );
    let mut p2 = profile("user_late", "late@nerv.example");
    p2.display_name = Some("Misato".into());
    let u2 = db.update_user_profile(&p2, now).await.unwrap();
    assert!(!u2.created);
    assert_eq!(u2.changed_fields, vec!["display_name"]);
    assert_eq!(db.count_rows("users").await.unwrap(), 2);

    let del = db
        .soft_delete_user("user_late", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(del.visibility, "private");
    assert_eq!(del.deleted_at, Some(now));
    assert!(db
        .soft_delete_user("user_nobody", now)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        db.get_user_by_clerk_id("user_2abc")
            .await
            .unwrap()
            .unwrap()
            .id,
        a.row.id
    );
    assert_eq!(
        db.get_user(a.row.id).await.unwrap().unwrap().clerk_id,
        "user_2abc"
    );

    // username unique constraint is enforced.
    let mut dup = profile("user_other", "x@nerv.example");
    dup.username = Some("rei".into());
    let err = db.upsert_user(&dup, now).await.unwrap_err();
    assert!(err.is_unique_violation(), "{err}");
    assert!(!err.is_retriable());
}

pub async fn catalog_sync(db: &Db) {
    let outcomes = seed_catalog(db).await;
    assert_eq!(outcomes.len(), 6);
    assert!(outcomes.iter().all(|o| o.created && o.active));
    assert_eq!(db.count_rows("products").await.unwrap(), 6);
    // 18 fixture variants, one disabled upstream → 17 stored.
    assert_eq!(db.count_rows("product_variants").await.unwrap(), 17);
    assert_eq!(db.count_rows("product_images").await.unwrap(), 12);

    let hoodie = db
        .get_product_by_printify_id(fixtures::PRODUCT_IDS[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hoodie.title, "Sakura Petal Hoodie");
    assert_eq!(hoodie.tags, vec!["Hoodies", "Anime", "Sakura", "Apparel"]);
    assert_eq!(hoodie.category_slug.as_deref(), Some("apparel"));
    assert_eq!(hoodie.shop_id.as_deref(), Some("8675309"));
    assert_eq!(hoodie.blueprint_id, Some(77));
    assert_eq!(hoodie.last_synced_at, Some(t0()));
    assert!(hoodie.primary_image_url.unwrap().ends_with("/front.jpg"));
    let variants = db.list_variants(hoodie.id).await.unwrap();
    assert_eq!(variants.len(), 7);
    assert!(variants.iter().all(|v| v.is_enabled && v.in_stock));
    assert_eq!(variants[0].price_cents, Some(5400));
    assert_eq!(
        variants[0].option_values,
        Some(serde_json::json!([501, 503]))
    );
    let poster = db
        .get_product_by_printify_id(fixtures::PRODUCT_IDS[3])
        .await
        .unwrap()
        .unwrap();
    let pv = db.list_variants(poster.id).await.unwrap();
    assert_eq!(
        pv.iter().filter(|v| !v.in_stock).count(),
        1,
        "big poster is unavailable"
    );
    let imgs = db.list_images(hoodie.id).await.unwrap();
    assert_eq!(imgs.len(), 2);
    assert_eq!(imgs[1].variant_ids.len(), 8);

    // Replay is idempotent.
    let again = seed_catalog(db).await;
    assert!(again
        .iter()
        .all(|o| !o.created && o.variants_disabled == 0 && o.images_deleted == 0));
    assert_eq!(db.count_rows("product_variants").await.unwrap(), 17);

    // A variant removed upstream and an image dropped.
    let mut p = fixtures::default_products().remove(0);
    let removed = p.variants.remove(0).id;
    p.images.pop();
    let o = db
        .upsert_catalog_product(&p.to_catalog_input("8675309"), t0())
        .await
        .unwrap();
    assert_eq!(
        (o.variants_upserted, o.variants_disabled, o.images_deleted),
        (6, 1, 1)
    );
    let v = db
        .get_variant_by_printify_ids(fixtures::PRODUCT_IDS[0], removed)
        .await
        .unwrap()
        .unwrap();
    assert!(!v.is_enabled && !v.in_stock);

    // Hide products missing from a full sync.
    let seen: Vec<String> = fixtures::PRODUCT_IDS[..5]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(db.hide_missing_products(&seen, t0()).await.unwrap(), 1);
    assert_eq!(
        db.hide_missing_products(&seen, t0()).await.unwrap(),
        0,
        "replay hides nothing"
    );
    let tee = db
        .get_product_by_printify_id(fixtures::PRODUCT_IDS[5])
        .await
        .unwrap()
        .unwrap();
    assert!(!tee.active && !tee.visible);
    assert_eq!(tee.deactivated_by.as_deref(), Some("sync"));
    assert_eq!(db.active_printify_product_ids().await.unwrap().len(), 5);
    assert_eq!(db.list_products(true).await.unwrap().len(), 5);
    assert_eq!(db.list_products(false).await.unwrap().len(), 6);
    // It reappears upstream → active again.
    let tee_p = fixtures::default_products().remove(5);
    let o = db
        .upsert_catalog_product(&tee_p.to_catalog_input("8675309"), t0())
        .await
        .unwrap();
    assert!(o.active && !o.created);

    // Admin deactivation survives syncs.
    assert!(db
        .admin_set_product_active(tee.id, false, t0())
        .await
        .unwrap());
    let o = db
        .upsert_catalog_product(&tee_p.to_catalog_input("8675309"), t0())
        .await
        .unwrap();
    assert!(!o.active);
    let tee = db
        .get_product_by_printify_id(fixtures::PRODUCT_IDS[5])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tee.deactivated_by.as_deref(), Some("admin"));
    // Targeted 404.
    assert!(db
        .hide_product(fixtures::PRODUCT_IDS[1], t0())
        .await
        .unwrap());
    assert!(!db
        .hide_product(fixtures::PRODUCT_IDS[1], t0())
        .await
        .unwrap());
}

pub async fn inventory_alerts(db: &Db) {
    seed_catalog(db).await;
    let mut mug = fixtures::default_products().remove(2);
    let vid = mug.variants[0].id;
    mug.variants[0].is_available = false;
    let upd = db
        .apply_variant_availability(&mug.id, &mug.availability(), t0())
        .await
        .unwrap();
    assert_eq!(upd.variants_checked, 2);
    assert_eq!(upd.changes.len(), 1);
    let change = upd.changes[0].clone();
    assert_eq!(
        (change.printify_variant_id, change.from, change.to),
        (vid, true, false)
    );
    // Replay: no change.
    let again = db
        .apply_variant_availability(&mug.id, &mug.availability(), t0())
        .await
        .unwrap();
    assert!(again.changes.is_empty());

    let s = db
        .record_availability_alerts(&upd.changes, t0())
        .await
        .unwrap();
    assert_eq!(s.created.len(), 1);
    let s2 = db
        .record_availability_alerts(&upd.changes, t0())
        .await
        .unwrap();
    assert!(s2.created.is_empty(), "one open alert per variant");
    assert_eq!(db.count_rows("inventory_alerts").await.unwrap(), 1);
    let open = db.list_open_alerts().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0].product_title.as_deref(),
        Some("Chibi Neko Ramen Mug")
    );
    assert_eq!(open[0].variant_title.as_deref(), Some("11oz"));
    assert_eq!(db.list_unnotified_alerts().await.unwrap().len(), 1);
    assert_eq!(db.mark_alerts_notified(&s.created, t0()).await.unwrap(), 1);
    assert_eq!(db.mark_alerts_notified(&s.created, t0()).await.unwrap(), 0);
    assert!(db.list_unnotified_alerts().await.unwrap().is_empty());

    // Back in stock → resolved; a new outage opens a new alert.
    mug.variants[0].is_available = true;
    let back = db
        .apply_variant_availability(&mug.id, &mug.availability(), t0())
        .await
        .unwrap();
    assert_eq!(back.changes.len(), 1);
    let s3 = db
        .record_availability_alerts(&back.changes, t0())
        .await
        .unwrap();
    assert_eq!(s3.resolved, 1);
    assert!(db.list_open_alerts().await.unwrap().is_empty());
    assert!(db
        .open_inventory_alert(change.variant_id, "out_of_stock", t0())
        .await
        .unwrap()
        .is_some());
    assert!(db
        .open_inventory_alert(change.variant_id, "out_of_stock", t0())
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.count_rows("inventory_alerts").await.unwrap(), 2);

    // A variant missing upstream counts as unavailable.
    let pin = fixtures::default_products().remove(1);
    let upd = db
        .apply_variant_availability(&pin.id, &[], t0())
        .await
        .unwrap();
    assert_eq!(upd.changes.len(), 1);
    assert!(!upd.changes[0].to);
}

/// Create a user, catalog and a 2-line order (hoodie ×2, mug ×1); returns (user, order).
pub async fn seed_order(db: &Db, clerk: &str, session: &str) -> (User, Order) {
    if db.count_rows("products").await.unwrap() == 0 {
        seed_catalog(db).await;
    }
    let user = db
        .upsert_user(&profile(clerk, &format!("{clerk}@nerv.example")), t0())
        .await
        .unwrap()
        .row;
    let hoodie = db
        .get_variant_by_printify_ids(fixtures::PRODUCT_IDS[0], 40_001)
        .await
        .unwrap()
        .unwrap();
    let mug = db
        .get_variant_by_printify_ids(fixtures::PRODUCT_IDS[2], 40_201)
        .await
        .unwrap()
        .unwrap();
    let order = db
        .create_order(
            &NewOrder {
                user_id: user.id,
                stripe_session_id: Some(session.into()),
                subtotal_cents: 12_400,
                total_cents: 0,
                currency: "usd".into(),
                shipping: None,
                items: vec![
                    NewOrderItem {
                        variant_id: Some(hoodie.id),
                        printify_product_id: Some(fixtures::PRODUCT_IDS[0].into()),
                        printify_variant_id: Some(40_001),
                        name: "Sakura Petal Hoodie".into(),
                        sku: hoodie.sku.clone(),
                        quantity: 2,
                        unit_amount_cents: 5400,
                    },
                    NewOrderItem {
                        variant_id: Some(mug.id),
                        printify_product_id: None,
                        printify_variant_id: None,
                        name: "Chibi Neko Ramen Mug".into(),
                        sku: mug.sku.clone(),
                        quantity: 1,
                        unit_amount_cents: 1600,
                    },
                ],
            },
            t0(),
        )
        .await
        .unwrap();
    (user, order)
}

pub async fn orders_flow(db: &Db) {
    let (user, order) = seed_order(db, "user_asuka", "cs_test_1").await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(order.currency, "USD");
    assert!(order.display_number >= 1);
    let (_, order2) = seed_order(db, "user_shinji", "cs_test_2").await;
    assert_eq!(order2.display_number, order.display_number + 1);

    // Cart with two lines, cleared later.
    let items = db.order_items(order.id).await.unwrap();
    assert_eq!(items.len(), 2);
    for it in &items {
        db.set_cart_item(user.id, it.variant_id.unwrap(), it.quantity, t0())
            .await
            .unwrap();
    }
    db.set_cart_item(user.id, items[0].variant_id.unwrap(), 5, t0())
        .await
        .unwrap();
    let cart = db.cart_items(user.id).await.unwrap();
    assert_eq!(cart.len(), 2);
    assert!(cart.iter().any(|c| c.quantity == 5));

    // Eligibility: ids come from the line or the variant.
    let elig = db.order_fulfillment_check(order.id).await.unwrap();
    assert!(elig.iter().all(|e| e.eligible), "{elig:?}");
    let mug = elig.iter().find(|e| e.name.contains("Mug")).unwrap();
    assert_eq!(
        mug.printify_product_id.as_deref(),
        Some(fixtures::PRODUCT_IDS[2])
    );
    assert_eq!(mug.printify_variant_id, Some(40_201));

    // Paid (with shipping), replay is a no-op.
    let pay = PaymentUpdate {
        payment_intent_id: Some("pi_123".into()),
        total_cents: Some(12_400),
        currency: Some("usd".into()),
        paid_at: Some(t0()),
        shipping: Some(ship()),
    };
    let t = db.mark_order_paid(order.id, &pay, t0()).await.unwrap();
    assert!(t.changed && t.from == OrderStatus::Pending && t.to == OrderStatus::Paid);
    let t = db
        .mark_order_paid(order.id, &pay, t0() + Duration::hours(1))
        .await
        .unwrap();
    assert!(!t.changed);
    let o = db.get_order(order.id).await.unwrap().unwrap();
    assert_eq!(o.paid_at, Some(t0()), "paid_at kept from the first call");
    assert_eq!(o.payment_intent_id.as_deref(), Some("pi_123"));
    assert_eq!(o.total_cents, 12_400);
    assert_eq!(o.shipping, ship());
    assert_eq!(
        db.find_order_by_payment_intent("pi_123")
            .await
            .unwrap()
            .unwrap()
            .id,
        order.id
    );
    assert_eq!(
        db.find_order_by_stripe_session("cs_test_1")
            .await
            .unwrap()
            .unwrap()
            .id,
        order.id
    );
    assert_eq!(db.mark_intent_succeeded("pi_123", t0()).await.unwrap(), 0);

    // Invalid transition.
    let err = db
        .transition_order(order.id, OrderStatus::Delivered, t0())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        DbError::InvalidTransition {
            from: OrderStatus::Paid,
            to: OrderStatus::Delivered,
            ..
        }
    ));
    assert!(matches!(
        db.transition_order(Uuid::new_v4(), OrderStatus::Paid, t0())
            .await,
        Err(DbError::NotFound { .. })
    ));

    // Printify order created → in_production + sync row; replay no-op.
    let t = db
        .record_printify_order_created(order.id, "pf_1", t0())
        .await
        .unwrap();
    assert_eq!(
        (t.from, t.to, t.changed),
        (OrderStatus::Paid, OrderStatus::InProduction, true)
    );
    let t = db
        .record_printify_order_created(order.id, "pf_1", t0())
        .await
        .unwrap();
    assert!(!t.changed);
    let sync = db.get_printify_order_sync(order.id).await.unwrap().unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::Synced);
    assert_eq!(sync.printify_order_id.as_deref(), Some("pf_1"));
    assert!(sync.error.is_none());
    let t = db.mark_order_paid(order.id, &pay, t0()).await.unwrap();
    assert!(
        !t.changed && t.to == OrderStatus::InProduction,
        "paid after fulfilment is a no-op"
    );

    // Shipment webhook.
    let t = db
        .apply_printify_shipment(
            "pf_1",
            OrderStatus::Shipped,
            Some("1Z999"),
            Some("https://track.example/1Z999"),
            t0(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.to, OrderStatus::Shipped);
    assert!(db
        .apply_printify_shipment("pf_unknown", OrderStatus::Shipped, None, None, t0())
        .await
        .unwrap()
        .is_none());
    let o = db.get_order(order.id).await.unwrap().unwrap();
    assert_eq!(o.tracking_number.as_deref(), Some("1Z999"));

    // Clear cart.
    assert_eq!(db.clear_cart(user.id, t0()).await.unwrap(), 2);
    assert_eq!(db.clear_cart(user.id, t0()).await.unwrap(), 0);
    assert_eq!(db.count_rows("cart_items").await.unwrap(), 0);

    // Order 2: a variant goes out of stock → pending_mapping with a capped error.
    let mut mug_p = fixtures::default_products().remove(2);
    mug_p.variants[0].is_available = false;
    db.apply_variant_availability(&mug_p.id, &mug_p.availability(), t0())
        .await
        .unwrap();
    let elig = db.order_fulfillment_check(order2.id).await.unwrap();
    let bad: Vec<_> = elig.iter().filter(|e| !e.eligible).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].reason.as_deref(), Some("out of stock"));
    let long = "x".repeat(800);
    let t = db
        .mark_order_pending_mapping(order2.id, &long, t0())
        .await
        .unwrap();
    assert_eq!(t.to, OrderStatus::PendingMapping);
    let sync = db
        .get_printify_order_sync(order2.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::MappingFailed);
    assert_eq!(sync.error.unwrap().chars().count(), 500);
    db.record_printify_order_failed(order2.id, "Validation failed.", t0())
        .await
        .unwrap();
    let sync = db
        .get_printify_order_sync(order2.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::Failed);
    assert_eq!(
        db.get_order(order2.id).await.unwrap().unwrap().status,
        OrderStatus::PendingMapping
    );

    let detail = db.get_order_detail(order2.id).await.unwrap().unwrap();
    assert_eq!(detail.user.clerk_id, "user_shinji");
    assert_eq!(detail.items.len(), 2);
    assert!(db.get_order_detail(Uuid::new_v4()).await.unwrap().is_none());
}

pub async fn webhook_dedupe(db: &Db) {
    let payload = serde_json::json!({"id": "evt_1", "type": "checkout.session.completed"});
    let r = db
        .record_webhook_event(
            WebhookSource::Stripe,
            "evt_1",
            "checkout.session.completed",
            &payload,
            t0(),
        )
        .await
        .unwrap();
    assert!(r.inserted && !r.is_duplicate());
    let r = db
        .record_webhook_event(
            WebhookSource::Stripe,
            "evt_1",
            "checkout.session.completed",
            &payload,
            t0(),
        )
        .await
        .unwrap();
    assert!(
        !r.inserted && !r.is_duplicate(),
        "redelivery before processing finishes is not a duplicate"
    );
    // Same id from another provider is a different event.
    let r = db
        .record_webhook_event(
            WebhookSource::Clerk,
            "evt_1",
            "user.created",
            &payload,
            t0(),
        )
        .await
        .unwrap();
    assert!(r.inserted);
    assert!(db
        .mark_webhook_processed(WebhookSource::Stripe, "evt_1", t0())
        .await
        .unwrap());
    assert!(!db
        .mark_webhook_processed(WebhookSource::Stripe, "evt_1", t0())
        .await
        .unwrap());
    let r = db
        .record_webhook_event(
            WebhookSource::Stripe,
            "evt_1",
            "checkout.session.completed",
            &payload,
            t0(),
        )
        .await
        .unwrap();
    assert!(r.is_duplicate());
    assert_eq!(r.processed_at, Some(t0()));
    assert_eq!(db.count_rows("webhook_events").await.unwrap(), 2);
}

pub async fn failed_operations(db: &Db) {
    let op = NewFailedOperation {
        op_type: "email.order_confirmation".into(),
        dedupe_key: Some("order-1".into()),
        payload: serde_json::json!({"orderId": "order-1"}),
        error: "resend: server error 500".into(),
    };
    let a = db.record_failed_operation(&op, t0()).await.unwrap();
    assert_eq!((a.status, a.retry_count), (OperationStatus::Pending, 0));
    let b = db
        .record_failed_operation(
            &NewFailedOperation {
                error: "again".into(),
                ..op.clone()
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(a.id, b.id, "deduped by (type, dedupe_key)");
    assert_eq!(b.last_error.as_deref(), Some("again"));
    assert_eq!(db.count_rows("failed_operations").await.unwrap(), 1);

    let next = t0() + Duration::seconds(30);
    let r = db
        .mark_operation_retrying(a.id, Some(next), t0())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.next_retry_at),
        (OperationStatus::Retrying, Some(next))
    );
    let f1 = db
        .record_operation_attempt_failed(a.id, "boom 1", 3, Some(next), t0())
        .await
        .unwrap();
    assert_eq!((f1.status, f1.retry_count), (OperationStatus::Pending, 1));
    assert!(
        db.list_due_operations(t0(), 10).await.unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(db.list_due_operations(next, 10).await.unwrap().len(), 1);
    db.record_operation_attempt_failed(a.id, "boom 2", 3, Some(next), t0())
        .await
        .unwrap();
    let f3 = db
        .record_operation_attempt_failed(a.id, "boom 3", 3, Some(next), t0())
        .await
        .unwrap();
    assert_eq!((f3.status, f3.retry_count), (OperationStatus::Dead, 3));
    assert_eq!(f3.last_error.as_deref(), Some("boom 3"));
    assert!(f3.next_retry_at.is_none());
    // Dead is terminal.
    let s = db.mark_operation_succeeded(a.id, t0()).await.unwrap();
    assert_eq!(s.status, OperationStatus::Dead);
    assert_eq!(
        db.list_operations(Some(OperationStatus::Dead))
            .await
            .unwrap()
            .len(),
        1
    );

    // Another op succeeds on its first retry.
    let c = db
        .record_failed_operation(
            &NewFailedOperation {
                op_type: "order.process".into(),
                dedupe_key: None,
                payload: serde_json::json!({"orderId": "o2"}),
                error: "printify 503".into(),
            },
            t0(),
        )
        .await
        .unwrap();
    let s = db.mark_operation_succeeded(c.id, t0()).await.unwrap();
    assert_eq!((s.status, s.retry_count), (OperationStatus::Succeeded, 1));
    let s = db.mark_operation_succeeded(c.id, t0()).await.unwrap();
    assert_eq!(s.retry_count, 1, "idempotent");
    let d = db
        .mark_operation_dead(c.id, Some("manual"), t0())
        .await
        .unwrap();
    assert_eq!(d.status, OperationStatus::Dead);
    assert_eq!(db.list_operations(None).await.unwrap().len(), 2);
    assert!(matches!(
        db.mark_operation_dead(Uuid::new_v4(), None, t0()).await,
        Err(DbError::NotFound { .. })
    ));
}

pub async fn email_outbox(db: &Db) {
    let (user, order) = seed_order(db, "user_mail", "cs_mail").await;
    let mailer = Mailer::new(
        Arc::new(OutboxProvider::new(db.clone())),
        db.clone(),
        "Otaku-mori <orders@otaku-mori.example>",
        None,
    );
    let req = EmailRequest {
        idempotency_key: format!("order-confirmation:{}", order.id),
        template: "order-confirmation".into(),
        to: vec!["asuka@nerv.example".into()],
        subject: format!("Order Confirmation #{}", order.display_number),
        html: Some("<p>Thanks!</p>".into()),
        text: Some("Thanks!".into()),
        order_id: Some(order.id),
        user_id: Some(user.id),
    };
    let first = mailer.send_once(&req).await.unwrap();
    assert!(!first.already_sent);
    assert_eq!(first.provider, "log");
    let second = mailer.send_once(&req).await.unwrap();
    assert!(second.already_sent);
    assert_eq!(second.log_id, first.log_id);
    // Same order+template under another key: still not sent twice.
    let third = mailer
        .send_once(&EmailRequest {
            idempotency_key: "other-key".into(),
            ..req.clone()
        })
        .await
        .unwrap();
    assert!(third.already_sent);

    let outbox = db.list_outbox().await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].to_addresses, vec!["asuka@nerv.example"]);
    assert_eq!(
        outbox[0].from_address,
        "Otaku-mori <orders@otaku-mori.example>"
    );
    assert_eq!(outbox[0].html.as_deref(), Some("<p>Thanks!</p>"));
    assert_eq!(
        first.provider_message_id,
        Some(format!("outbox_{}", outbox[0].id))
    );
    let log = db.list_email_log().await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, "sent");
    assert_eq!(log[0].order_id, Some(order.id));
    assert_eq!(log[0].template, "order-confirmation");
    assert!(log[0].sent_at.is_some());

    // Direct duplicate insert of a sent row returns the existing row.
    let dup = db
        .insert_email_log(
            &NewEmailLog {
                idempotency_key: Some(req.idempotency_key.clone()),
                user_id: None,
                order_id: Some(order.id),
                to_address: "asuka@nerv.example".into(),
                provider: "log".into(),
                template: "order-confirmation".into(),
                subject: None,
                status: EmailStatus::Sent,
                provider_message_id: None,
                error: None,
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(dup.id, first.log_id);
    assert_eq!(db.count_rows("email_log").await.unwrap(), 1);
    assert!(db
        .find_sent_order_email(order.id, "order-confirmation")
        .await
        .unwrap()
        .is_some());
}

/// Backdate a row's timestamp column with raw SQL on either backend.
async fn set_ts(db: &Db, table: &str, column: &str, id_col: &str, id: &str, ts: DateTime<Utc>) {
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE {id_col} = $2");
    if let Some(p) = db.sqlite_pool() {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .bind(id)
            .execute(p)
            .await
            .unwrap();
    } else {
        let p = db.pg_pool().unwrap();
        let sql = sql.replace(
            "$2",
            &format!(
                "$2::{}",
                if id_col == "id" && table != "webhook_events" {
                    "uuid"
                } else {
                    "text"
                }
            ),
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ts)
            .bind(id)
            .execute(p)
            .await
            .unwrap();
    }
}

pub async fn retention(db: &Db) {
    let now = t0();
    let old = now - Duration::days(400);
    let ret = RetentionConfig::default();

    // webhook events: old processed, old unprocessed, fresh processed.
    for (id, processed) in [
        ("evt_old", Some(old)),
        ("evt_old_unprocessed", None),
        ("evt_new", Some(now)),
    ] {
        db.record_webhook_event(WebhookSource::Stripe, id, "t", &serde_json::json!({}), old)
            .await
            .unwrap();
        if let Some(ts) = processed {
            db.mark_webhook_processed(WebhookSource::Stripe, id, ts)
                .await
                .unwrap();
        }
    }
    // email log: one old, one new.
    for (i, at) in [old, now].into_iter().enumerate() {
        db.insert_email_log(
            &NewEmailLog {
                idempotency_key: Some(format!("k{i}")),
                user_id: None,
                order_id: None,
                to_address: "ops@otakumori.example".into(),
                provider: "log".into(),
                template: "inventory-alert".into(),
                subject: None,
                status: EmailStatus::Failed,
                provider_message_id: None,
                error: Some("x".into()),
            },
            at,
        )
        .await
        .unwrap();
    }
    // operations: old succeeded, old pending, new dead.
    for (key, status, at) in [
        ("a", "succeeded", old),
        ("b", "pending", old),
        ("c", "dead", now),
    ] {
        let op = db
            .record_failed_operation(
                &NewFailedOperation {
                    op_type: "printify.sync".into(),
                    dedupe_key: Some(key.into()),
                    payload: serde_json::json!({}),
                    error: "e".into(),
                },
                at,
            )
            .await
            .unwrap();
        match status {
            "succeeded" => drop(db.mark_operation_succeeded(op.id, at).await.unwrap()),
            "dead" => drop(db.mark_operation_dead(op.id, None, at).await.unwrap()),
            _ => {}
        }
    }
    // carts: an abandoned one (2 items) and a fresh one (2 items); orders: one stale pending,
    // one old delivered (archived), one paid.
    let (u1, stale) = seed_order(db, "user_r1", "cs_r1").await;
    let (u2, delivered) = seed_order(db, "user_r2", "cs_r2").await;
    let (_u3, paid) = seed_order(db, "user_r3", "cs_r3").await;
    for (u, at) in [(&u1, old), (&u2, now)] {
        for it in db.order_items(stale.id).await.unwrap() {
            db.set_cart_item(u.id, it.variant_id.unwrap(), 1, at)
                .await
                .unwrap();
        }
    }
    set_ts(db, "orders", "created_at", "id", &stale.id.to_string(), old).await;
    db.mark_order_paid(paid.id, &PaymentUpdate::default(), now)
        .await
        .unwrap();
    db.mark_order_paid(delivered.id, &PaymentUpdate::default(), old)
        .await
        .unwrap();
    db.record_printify_order_created(delivered.id, "pf_old", old)
        .await
        .unwrap();
    db.transition_order(delivered.id, OrderStatus::Delivered, old)
        .await
        .unwrap();

    let counts = db.run_cleanup(&ret, now).await.unwrap();
    assert_eq!(counts.webhook_events, 1);
    assert_eq!(counts.email_logs, 1);
    assert_eq!(counts.operations, 1);
    assert_eq!(counts.cart_items, 2);
    assert_eq!(counts.expired_orders, 1);
    assert_eq!(counts.outbox_messages, 0);
    assert_eq!(
        db.get_order(stale.id).await.unwrap().unwrap().status,
        OrderStatus::Cancelled
    );
    assert_eq!(db.count_rows("webhook_events").await.unwrap(), 2);
    assert_eq!(db.count_rows("email_log").await.unwrap(), 1);
    assert_eq!(db.count_rows("failed_operations").await.unwrap(), 2);
    assert_eq!(db.count_rows("cart_items").await.unwrap(), 2);
    // Second pass deletes nothing.
    assert_eq!(db.run_cleanup(&ret, now).await.unwrap(), Default::default());

    // Monthly: archive the old delivered order (the stale one was cancelled just now → kept).
    let before = otakumori::db::maintenance::cutoff(now, ret.archive_orders);
    let a = db.archive_final_orders(before, now).await.unwrap();
    assert_eq!(
        a,
        ArchiveCounts {
            orders: 1,
            order_items: 2
        }
    );
    assert!(db.get_order(delivered.id).await.unwrap().is_none());
    assert_eq!(db.count_rows("orders_archive").await.unwrap(), 1);
    assert_eq!(db.count_rows("order_items_archive").await.unwrap(), 2);
    assert_eq!(
        db.archive_final_orders(before, now).await.unwrap(),
        ArchiveCounts::default()
    );
    db.analyze_tables().await.unwrap();

    let report = db.audit_report(now + Duration::days(2)).await.unwrap();
    assert_eq!(report.users_total, 3);
    assert_eq!(report.orders_total, 2);
    assert_eq!(report.orders_paid_not_in_production, 1);
    assert_eq!(report.dead_operations, 1);
    assert_eq!(report.pending_operations, 1);
    assert_eq!(report.archived_orders_total, 1);
    let saved = db
        .save_maintenance_report(
            "monthly-audit",
            &serde_json::to_value(&report).unwrap(),
            now,
        )
        .await
        .unwrap();
    let listed = db.list_maintenance_reports("monthly-audit").await.unwrap();
    assert_eq!(listed, vec![saved.clone()]);
    assert_eq!(saved.report["archived_orders_total"], 1);
}

pub async fn constraints(db: &Db) {
    // The status CHECK constraint rejects unknown statuses at the database level.
    let (_u, order) = seed_order(db, "user_check", "cs_check").await;
    let res = if let Some(p) = db.sqlite_pool() {
        sqlx::query("UPDATE orders SET status = 'pending_fulfillment' WHERE id = $1")
            .bind(order.id.to_string())
            .execute(p)
            .await
            .map(|_| ())
    } else {
        sqlx::query("UPDATE orders SET status = 'pending_fulfillment' WHERE id = $1")
            .bind(order.id)
            .execute(db.pg_pool().unwrap())
            .await
            .map(|_| ())
    };
    let err = res.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("check"), "{err}");
    // Migrations are idempotent.
    db.migrate().await.unwrap();
    for t in TABLES {
        db.count_rows(t).await.unwrap();
    }
}
