//! The four crons, each run directly (`POST /invoke/{fn}` on the executor) and by the
//! executor's virtual clock reaching its schedule.

mod functions_support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use functions_support::{at, Opts, TestApp, ADMIN_EMAIL};
use inngest_executor::{RunStatus, RunView};
use otakumori::db::{
    EmailStatus, NewEmailLog, NewFailedOperation, NewOrder, NewOrderItem, NewOutboxMessage, Order,
    OrderStatus, User, WebhookSource,
};
use otakumori::functions::{
    EVENT_INVENTORY_SYNC, EVENT_PRINTIFY_PRODUCTS_UPDATE, FN_CLEANUP_OLD_DATA,
    FN_DAILY_INVENTORY_SYNC, FN_MONTHLY_MAINTENANCE, FN_SYNC_INVENTORY,
    FN_UPDATE_PRINTIFY_PRODUCTS, FN_WEEKLY_PRODUCT_UPDATE,
};
use otakumori::sandbox::fixtures::PRODUCT_IDS;
use serde_json::json;

const DAY: i64 = 86_400;

async fn app_at(start: &str) -> TestApp {
    TestApp::sqlite_with(Opts {
        start: Some(at(start)),
        ..Opts::default()
    })
    .await
}

/// Jump the virtual clock to the next cron firing (after the four cron tasks registered).
async fn next_firing(app: &TestApp) -> DateTime<Utc> {
    for _ in 0..200 {
        if app.h.clock().pending_sleepers() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.h.skip_to_next().expect("a pending cron")
}

async fn invoke(app: &TestApp, function: &str) -> RunView {
    let id = app.invoke(function, json!({})).await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.function_id, app.fid(function));
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    run
}

/// Let any stray run start before counting.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(250)).await;
}

#[tokio::test]
async fn daily_inventory_sync_emits_exactly_one_inventory_sync() {
    let app = app_at("2030-01-01T01:59:00Z").await;

    // Directly.
    let run = invoke(&app, FN_DAILY_INVENTORY_SYNC).await;
    let out = run.output.clone().unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["timestamp"], "2030-01-01T01:59:00Z");
    assert_eq!(out["sentEventIds"].as_array().unwrap().len(), 1);
    assert_eq!(
        run.step("send-inventory-sync").unwrap().name,
        "send-inventory-sync"
    );
    let inv = app.wait_runs_of(FN_SYNC_INVENTORY, 1).await;
    assert_eq!(inv[0].status, RunStatus::Completed, "{:#?}", inv[0]);
    assert_eq!(inv[0].output.as_ref().unwrap()["mode"], "full");
    assert_eq!(app.events_named(EVENT_INVENTORY_SYNC).len(), 1);

    // By the clock: 02:00 UTC.
    assert_eq!(next_firing(&app).await, at("2030-01-01T02:00:00Z"));
    let runs = app.wait_runs_of(FN_DAILY_INVENTORY_SYNC, 2).await;
    let cron = &runs[1];
    assert_eq!(cron.status, RunStatus::Completed);
    assert_eq!(cron.event()["name"], "inngest/scheduled.timer");
    assert_eq!(cron.event()["data"]["cron"], "0 2 * * *");
    assert_eq!(
        cron.output.as_ref().unwrap()["timestamp"],
        "2030-01-01T02:00:00Z"
    );
    app.wait_runs_of(FN_SYNC_INVENTORY, 2).await;
    settle().await;
    assert_eq!(app.runs_of(FN_DAILY_INVENTORY_SYNC).len(), 2);
    let sent = app.events_named(EVENT_INVENTORY_SYNC);
    assert_eq!(sent.len(), 2, "one per run");
    assert_eq!(sent[1]["data"], json!({}));
    assert_eq!(app.runs_of(FN_SYNC_INVENTORY).len(), 2);
    // Nothing else fired.
    assert!(app.runs_of(FN_WEEKLY_PRODUCT_UPDATE).is_empty());
    assert!(app.runs_of(FN_CLEANUP_OLD_DATA).is_empty());
}

#[tokio::test]
async fn weekly_product_update_emits_exactly_one_catalog_sync() {
    // 2030-01-07 is a Monday.
    let app = app_at("2030-01-07T02:59:00Z").await;

    let run = invoke(&app, FN_WEEKLY_PRODUCT_UPDATE).await;
    assert_eq!(
        run.output.as_ref().unwrap()["sentEventIds"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let sync = app.wait_runs_of(FN_UPDATE_PRINTIFY_PRODUCTS, 1).await;
    assert_eq!(sync[0].status, RunStatus::Completed, "{:#?}", sync[0]);
    assert_eq!(sync[0].output.as_ref().unwrap()["reason"], "cron");
    assert_eq!(sync[0].output.as_ref().unwrap()["productCount"], 6);
    assert_eq!(app.db.count_rows("products").await.unwrap(), 6);

    assert_eq!(next_firing(&app).await, at("2030-01-07T03:00:00Z"));
    let runs = app.wait_runs_of(FN_WEEKLY_PRODUCT_UPDATE, 2).await;
    assert_eq!(runs[1].event()["data"]["cron"], "0 3 * * 1");
    let syncs = app.wait_runs_of(FN_UPDATE_PRINTIFY_PRODUCTS, 2).await;
    assert_eq!(syncs[1].status, RunStatus::Completed);
    assert_eq!(syncs[1].output.as_ref().unwrap()["createdCount"], 0);
    settle().await;
    assert_eq!(app.runs_of(FN_WEEKLY_PRODUCT_UPDATE).len(), 2);
    let sent = app.events_named(EVENT_PRINTIFY_PRODUCTS_UPDATE);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["data"], json!({"reason": "cron"}));
    assert!(app.runs_of(FN_DAILY_INVENTORY_SYNC).is_empty());
}

fn ago(t: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    t - chrono::Duration::seconds(days * DAY)
}

async fn order_at(app: &TestApp, user: &User, when: DateTime<Utc>, status: OrderStatus) -> Order {
    let o = app
        .db
        .create_order(
            &NewOrder {
                user_id: user.id,
                stripe_session_id: None,
                subtotal_cents: 1200,
                total_cents: 1200,
                currency: "usd".into(),
                shipping: None,
                items: vec![NewOrderItem {
                    name: "Kitsune Mask Enamel Pin".into(),
                    quantity: 1,
                    unit_amount_cents: 1200,
                    ..NewOrderItem::default()
                }],
            },
            when,
        )
        .await
        .unwrap();
    let path: &[OrderStatus] = match status {
        OrderStatus::Pending => &[],
        OrderStatus::Paid => &[OrderStatus::Paid],
        OrderStatus::InProduction => &[OrderStatus::Paid, OrderStatus::InProduction],
        OrderStatus::Delivered => &[
            OrderStatus::Paid,
            OrderStatus::InProduction,
            OrderStatus::Delivered,
        ],
        OrderStatus::Cancelled => &[OrderStatus::Cancelled],
        other => panic!("unsupported {other}"),
    };
    for s in path {
        app.db.transition_order(o.id, *s, when).await.unwrap();
    }
    o
}

fn email_log(key: &str) -> NewEmailLog {
    NewEmailLog {
        idempotency_key: Some(key.into()),
        user_id: None,
        order_id: None,
        to_address: "someone@otakumori.example".into(),
        provider: "log".into(),
        template: "order-confirmation".into(),
        subject: Some("s".into()),
        status: EmailStatus::Sent,
        provider_message_id: None,
        error: None,
    }
}

#[tokio::test]
async fn cleanup_deletes_only_rows_past_retention_and_reports_counts() {
    // 2030-01-06 is a Sunday; the cleanup cron fires at 04:00.
    let t = at("2030-01-06T03:00:00Z");
    let app = app_at("2030-01-06T03:00:00Z").await;
    app.seed_catalog().await;
    let db = &app.db;
    let payload = json!({"k": 1});

    // webhook_events: processed 40 d ago (deleted), 5 d ago (kept), unprocessed old (kept)
    for (id, days, processed) in [
        ("evt_old", 40, true),
        ("evt_new", 5, true),
        ("evt_open", 90, false),
    ] {
        db.record_webhook_event(WebhookSource::Stripe, id, "x", &payload, ago(t, days))
            .await
            .unwrap();
        if processed {
            db.mark_webhook_processed(WebhookSource::Stripe, id, ago(t, days))
                .await
                .unwrap();
        }
    }
    // email_log 200 d (deleted) / 10 d (kept); outbox the same
    db.insert_email_log(&email_log("old"), ago(t, 200))
        .await
        .unwrap();
    db.insert_email_log(&email_log("new"), ago(t, 10))
        .await
        .unwrap();
    let to = vec!["a@otakumori.example".to_string()];
    let msg = NewOutboxMessage {
        idempotency_key: "old",
        from: "f@x.example",
        to: &to,
        subject: "s",
        html: None,
        text: Some("t"),
    };
    db.insert_outbox(&msg, ago(t, 200)).await.unwrap();
    let msg = NewOutboxMessage {
        idempotency_key: "new",
        from: "f@x.example",
        to: &to,
        subject: "s",
        html: None,
        text: Some("t"),
    };
    db.insert_outbox(&msg, ago(t, 10)).await.unwrap();
    // failed_operations: dead 40 d (purged), succeeded 3 d (kept), pending 40 d (kept)
    for (key, days, end) in [
        ("a", 40, Some(true)),
        ("b", 3, Some(false)),
        ("c", 40, None),
    ] {
        let op = db
            .record_failed_operation(
                &NewFailedOperation {
                    op_type: "email.order_confirmation".into(),
                    dedupe_key: Some(key.into()),
                    payload: payload.clone(),
                    error: "boom".into(),
                },
                ago(t, days),
            )
            .await
            .unwrap();
        match end {
            Some(true) => {
                db.mark_operation_dead(op.id, None, ago(t, days))
                    .await
                    .unwrap();
            }
            Some(false) => {
                db.mark_operation_succeeded(op.id, ago(t, days))
                    .await
                    .unwrap();
            }
            None => {}
        }
    }
    // carts: idle 40 d (items deleted), touched 1 d ago (kept)
    let idle = app.user("user_idle", "idle@otakumori.example").await;
    let busy = app.user("user_busy", "busy@otakumori.example").await;
    let pin = app.variant(PRODUCT_IDS[1], 40_101).await;
    let mug = app.variant(PRODUCT_IDS[2], 40_201).await;
    for v in [&pin, &mug] {
        db.set_cart_item(idle.id, v.id, 1, ago(t, 40))
            .await
            .unwrap();
    }
    db.set_cart_item(busy.id, pin.id, 3, ago(t, 1))
        .await
        .unwrap();
    // orders: pending 10 d (→ cancelled), pending 1 d (kept), paid 30 d (kept)
    let stale = order_at(&app, &busy, ago(t, 10), OrderStatus::Pending).await;
    let fresh = order_at(&app, &busy, ago(t, 1), OrderStatus::Pending).await;
    let paid = order_at(&app, &busy, ago(t, 30), OrderStatus::Paid).await;

    let run = invoke(&app, FN_CLEANUP_OLD_DATA).await;
    let out = run.output.clone().unwrap();
    assert_eq!(
        out["deleted"],
        json!({"webhookEvents": 1, "emailLogs": 1, "outboxMessages": 1, "operations": 1, "cartItems": 2})
    );
    assert_eq!(out["expiredOrders"], 1);
    assert_eq!(out["timestamp"], "2030-01-06T03:00:00Z");
    for (step, n) in [
        ("delete-old-webhook-events", 1),
        ("delete-old-email-logs", 1),
        ("delete-old-outbox-messages", 1),
        ("purge-resolved-operations", 1),
        ("delete-abandoned-carts", 2),
        ("expire-stale-pending-orders", 1),
    ] {
        assert_eq!(
            run.step(step).unwrap().output.as_ref().unwrap()["data"],
            n,
            "{step}"
        );
    }
    assert_eq!(db.count_rows("webhook_events").await.unwrap(), 2);
    assert_eq!(db.count_rows("email_log").await.unwrap(), 1);
    assert_eq!(db.count_rows("email_outbox").await.unwrap(), 1);
    assert_eq!(db.count_rows("failed_operations").await.unwrap(), 2);
    assert!(db.cart_items(idle.id).await.unwrap().is_empty());
    assert_eq!(db.cart_items(busy.id).await.unwrap().len(), 1);
    let status = |o: Order| async move { db.get_order(o.id).await.unwrap().unwrap().status };
    assert_eq!(status(stale).await, OrderStatus::Cancelled);
    assert_eq!(status(fresh.clone()).await, OrderStatus::Pending);
    assert_eq!(status(paid).await, OrderStatus::Paid);

    // By the clock (Sunday 04:00): one more run; only a row that aged past its window since.
    db.record_webhook_event(WebhookSource::Clerk, "msg_aged", "x", &payload, ago(t, 31))
        .await
        .unwrap();
    db.mark_webhook_processed(WebhookSource::Clerk, "msg_aged", ago(t, 31))
        .await
        .unwrap();
    assert_eq!(next_firing(&app).await, at("2030-01-06T04:00:00Z"));
    let runs = app.wait_runs_of(FN_CLEANUP_OLD_DATA, 2).await;
    let cron = &runs[1];
    assert_eq!(cron.status, RunStatus::Completed);
    assert_eq!(cron.event()["data"]["cron"], "0 4 * * 0");
    let out = cron.output.as_ref().unwrap();
    assert_eq!(
        out["deleted"],
        json!({"webhookEvents": 1, "emailLogs": 0, "outboxMessages": 0, "operations": 0, "cartItems": 0})
    );
    assert_eq!(out["expiredOrders"], 0);
    settle().await;
    assert_eq!(app.runs_of(FN_CLEANUP_OLD_DATA).len(), 2);
    assert_eq!(status(fresh).await, OrderStatus::Pending);
}

#[tokio::test]
async fn monthly_maintenance_archives_final_orders_and_reports_once_a_month() {
    // 2030-02-01 05:00 UTC is a firing of `0 5 1 * *`.
    let t = at("2030-02-01T04:59:00Z");
    let app = app_at("2030-02-01T04:59:00Z").await;
    let user = app.user("user_monthly", "monthly@otakumori.example").await;
    let old_delivered = order_at(&app, &user, ago(t, 400), OrderStatus::Delivered).await;
    let old_cancelled = order_at(&app, &user, ago(t, 370), OrderStatus::Cancelled).await;
    let recent_delivered = order_at(&app, &user, ago(t, 20), OrderStatus::Delivered).await;
    let old_in_production = order_at(&app, &user, ago(t, 400), OrderStatus::InProduction).await;
    let _stuck_paid = order_at(&app, &user, ago(t, 3), OrderStatus::Paid).await;
    let op = app
        .db
        .record_failed_operation(
            &NewFailedOperation {
                op_type: "order.process".into(),
                dedupe_key: Some("x".into()),
                payload: json!({}),
                error: "boom".into(),
            },
            ago(t, 2),
        )
        .await
        .unwrap();
    app.db
        .mark_operation_dead(op.id, None, ago(t, 2))
        .await
        .unwrap();

    let run = invoke(&app, FN_MONTHLY_MAINTENANCE).await;
    let out = run.output.clone().unwrap();
    assert_eq!(out["archivedOrders"], 2);
    assert_eq!(out["archivedItems"], 2);
    assert_eq!(out["emailed"], true);
    let audit = &out["audit"];
    assert_eq!(audit["orders_total"], 3);
    assert_eq!(audit["orders_paid_not_in_production"], 1);
    assert_eq!(audit["dead_operations"], 1);
    assert_eq!(audit["archived_orders_total"], 2);
    assert_eq!(audit["users_total"], 1);
    for s in [
        "archive-orders",
        "analyze-tables",
        "audit-report",
        "email-audit-report",
    ] {
        assert!(run.step(s).is_some(), "{s}");
    }
    assert_eq!(app.db.count_rows("orders_archive").await.unwrap(), 2);
    assert_eq!(app.db.count_rows("order_items_archive").await.unwrap(), 2);
    for (o, kept) in [
        (&old_delivered, false),
        (&old_cancelled, false),
        (&recent_delivered, true),
        (&old_in_production, true),
    ] {
        assert_eq!(
            app.db.get_order(o.id).await.unwrap().is_some(),
            kept,
            "{}",
            o.id
        );
    }
    let reports = app
        .db
        .list_maintenance_reports("monthly-audit")
        .await
        .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].id.to_string(), out["reportId"]);
    assert_eq!(reports[0].report["archivedOrders"], 2);
    let emails = app.resend().emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, vec![ADMIN_EMAIL.to_string()]);
    assert_eq!(emails[0].subject, "[Otaku-mori] Monthly maintenance report");
    assert!(emails[0]
        .text
        .as_deref()
        .unwrap()
        .contains("Orders archived this run: 2"));

    // By the clock (05:00 on the 1st): one run, nothing left to archive, a second report, and
    // no second email this month.
    assert_eq!(next_firing(&app).await, at("2030-02-01T05:00:00Z"));
    let runs = app.wait_runs_of(FN_MONTHLY_MAINTENANCE, 2).await;
    let cron = &runs[1];
    assert_eq!(cron.status, RunStatus::Completed, "{cron:#?}");
    assert_eq!(cron.event()["data"]["cron"], "0 5 1 * *");
    let out = cron.output.as_ref().unwrap();
    assert_eq!(out["archivedOrders"], 0);
    assert_eq!(out["email"]["alreadySent"], true);
    settle().await;
    assert_eq!(app.runs_of(FN_MONTHLY_MAINTENANCE).len(), 2);
    assert_eq!(
        app.db
            .list_maintenance_reports("monthly-audit")
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.resend().emails().len(), 1);
    assert_eq!(app.db.count_rows("orders_archive").await.unwrap(), 2);
}
