//! The order flow through the Stripe webhook route, `process-payment-webhook`, `process-order`,
//! `send-order-confirmation` and the retry queue, against the fake Stripe/Printify/Resend
//! (the Printify-400 path also covers item 6's dead-letter).
//! The full flow runs on SQLite and on PostgreSQL (skipped with a printed reason only when no
//! server answers on 127.0.0.1:5432).

mod functions_support;

use std::time::Duration;

use functions_support::{checkout_completed, matching, pg_db, Opts, TestApp};
use inngest_executor::{RunStatus, StepStatus};
use inngest_sdk::Event;
use otakumori::db::{OperationStatus, Order, OrderStatus, PrintifySyncStatus};
use otakumori::functions::orders::{confirmation_event_id, order_created_event_id};
use otakumori::functions::{
    EVENT_OPERATION_FAILED, EVENT_ORDER_CONFIRMATION_SENT, EVENT_ORDER_CREATED,
    EVENT_STRIPE_WEBHOOK, FN_PROCESS_ORDER, FN_PROCESS_PAYMENT_WEBHOOK, FN_RETRY_FAILED_OPERATION,
    FN_SEND_ORDER_CONFIRMATION, OP_ORDER_PROCESS,
};
use otakumori::sandbox::fixtures::PRODUCT_IDS;
use otakumori::sandbox::Fault;
use serde_json::{json, Value};

const HOODIE: &str = PRODUCT_IDS[0];
const MUG: &str = PRODUCT_IDS[2];

fn session(app: &TestApp, id: &str) -> Value {
    app.stripe()
        .sessions()
        .into_iter()
        .find(|s| s["id"] == id)
        .expect("session fixture")
}

fn order_posts(app: &TestApp) -> Vec<otakumori::sandbox::RecordedRequest> {
    app.printify_requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/orders.json"))
        .collect()
}

fn stripe_gets(app: &TestApp, session_id: &str) -> usize {
    matching(
        &app.stripe().requests(),
        "GET",
        &format!("/v1/checkout/sessions/{session_id}"),
    )
    .len()
}

async fn order_row(app: &TestApp, order: &Order) -> Order {
    app.db.get_order(order.id).await.unwrap().unwrap()
}

/// signed `checkout.session.completed` → paid → one Printify order → `in_production` →
/// one email + `email_log` → empty cart; replays are no-ops.
async fn full_order_flow(app: TestApp) {
    app.seed_catalog().await;
    let user = app
        .user("user_2sandboxMikuHatsune", "miku@otakumori.example")
        .await;
    let hoodie = app.variant(HOODIE, 40_001).await;
    let mug = app.variant(MUG, 40_201).await;
    let order = app
        .order(
            &user,
            "cs_test_flow_1",
            &[(Some(&hoodie), 1), (Some(&mug), 2)],
        )
        .await;
    assert_eq!(order.status, OrderStatus::Pending);
    assert_eq!(app.db.cart_items(user.id).await.unwrap().len(), 2);
    let hooks = app.webhooks().await;
    let evt = checkout_completed("evt_flow_1", &session(&app, "cs_test_flow_1"));

    let (status, body) = hooks.stripe(&evt).await;
    assert_eq!(status, 200, "{body}");

    // process-payment-webhook
    let pay = app.h.wait_for_run_of("evt_flow_1").await;
    assert_eq!(pay.function_id, app.fid(FN_PROCESS_PAYMENT_WEBHOOK));
    assert_eq!(pay.status, RunStatus::Completed, "{pay:#?}");
    let out = pay.output.clone().unwrap();
    assert_eq!(out["webhookType"], "checkout.session.completed");
    assert_eq!(out["orderId"], order.id.to_string());
    assert_eq!(out["duplicate"], false);
    assert_eq!(out["result"]["paid"], true);
    for s in [
        "record-event",
        "mark-order-paid",
        "emit-order-created",
        "mark-processed",
    ] {
        assert_eq!(pay.step(s).unwrap().status, StepStatus::Completed, "{s}");
    }

    // process-order, triggered by the emitted order/created
    let run = app
        .h
        .wait_for_run_of(&order_created_event_id(order.id))
        .await;
    assert_eq!(run.function_id, app.fid(FN_PROCESS_ORDER));
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["status"], "in_production");
    assert_eq!(out["cartItemsCleared"], 2);
    assert_eq!(out["steps"]["payment"]["verifiedBy"], "webhook");
    assert_eq!(out["steps"]["inventory"]["eligible"], true);
    assert_eq!(
        out["steps"]["validation"]["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let names: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "validate-order",
            "process-payment",
            "check-inventory",
            "create-printify-order",
            "send-confirmation",
            "clear-cart"
        ]
    );
    assert!(run.steps.iter().all(|s| s.attempts <= 1));

    // send-order-confirmation, triggered by order/confirmation.sent
    let mail = app
        .h
        .wait_for_run_of(&confirmation_event_id(order.id))
        .await;
    assert_eq!(mail.function_id, app.fid(FN_SEND_ORDER_CONFIRMATION));
    assert_eq!(mail.status, RunStatus::Completed, "{mail:#?}");
    assert_eq!(mail.output.as_ref().unwrap()["emailSent"], true);
    assert_eq!(mail.output.as_ref().unwrap()["alreadySent"], false);

    // Database
    let row = order_row(&app, &order).await;
    assert_eq!(row.status, OrderStatus::InProduction);
    assert!(row.paid_at.is_some());
    assert_eq!(row.payment_intent_id.as_deref(), Some("pi_cs_test_flow_1"));
    assert_eq!(row.currency, "USD");
    assert_eq!(row.total_cents, order.total_cents);
    assert_eq!(row.shipping.name.as_deref(), Some("Miku Hatsune"));
    assert_eq!(row.shipping.city.as_deref(), Some("Sapporo"));
    assert_eq!(
        row.shipping.email.as_deref(),
        Some("miku.hatsune@otakumori.example")
    );
    let fake_orders = app.printify().orders();
    assert_eq!(fake_orders.len(), 1);
    assert_eq!(fake_orders[0].posts, 1);
    assert_eq!(
        row.printify_order_id.as_deref(),
        Some(fake_orders[0].id.as_str())
    );
    assert_eq!(out["printifyOrderId"], fake_orders[0].id);
    let sync = app
        .db
        .get_printify_order_sync(order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::Synced);
    assert_eq!(sync.printify_order_id, row.printify_order_id);
    assert!(app.db.cart_items(user.id).await.unwrap().is_empty());

    // Exactly one Printify order POST, with Printify's line-item keys and the Stripe address.
    let posts = order_posts(&app);
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].status, 200);
    let body = &posts[0].body;
    assert_eq!(body["external_id"], order.id.to_string());
    assert_eq!(body["label"], format!("Order #{}", order.display_number));
    assert_eq!(body["shipping_method"], 1);
    assert_eq!(body["send_shipping_notification"], true);
    let mut lines = body["line_items"].as_array().unwrap().clone();
    lines.sort_by_key(|l| l["variant_id"].as_i64());
    assert_eq!(
        lines,
        vec![
            json!({"product_id": HOODIE, "variant_id": 40_001, "quantity": 1}),
            json!({"product_id": MUG, "variant_id": 40_201, "quantity": 2}),
        ]
    );
    assert_eq!(
        body["address_to"],
        json!({
            "first_name": "Miku",
            "last_name": "Hatsune",
            "email": "miku.hatsune@otakumori.example",
            "phone": "+15555550139",
            "country": "JP",
            "region": "HK",
            "address1": "39 Vocaloid Ave",
            "address2": "Apt 1",
            "city": "Sapporo",
            "zip": "060-0001"
        })
    );
    assert_eq!(stripe_gets(&app, "cs_test_flow_1"), 1, "verified once");

    // One email, one email_log row.
    let emails = app.resend().emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0].to,
        vec!["miku.hatsune@otakumori.example".to_string()]
    );
    assert_eq!(
        emails[0].subject,
        format!("Order Confirmation #{}", order.display_number)
    );
    assert!(emails[0]
        .text
        .as_deref()
        .unwrap()
        .contains("39 Vocaloid Ave"));
    assert!(emails[0]
        .text
        .as_deref()
        .unwrap()
        .contains("Chibi Neko Ramen Mug"));
    let log = app.db.list_email_log().await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].order_id, Some(order.id));
    assert_eq!(log[0].template, "order-confirmation");
    assert_eq!(log[0].status, "sent");
    assert_eq!(log[0].provider, "resend");
    assert_eq!(
        log[0].provider_message_id.as_deref(),
        Some(emails[0].id.as_str())
    );

    // --- Replays are no-ops --------------------------------------------------------------
    // 1. Stripe redelivers the same event: same Inngest event id → no second run.
    let (status, _) = hooks.stripe(&evt).await;
    assert_eq!(status, 200);
    // 2. The same Stripe event under a new Inngest event id (after the dedupe window):
    //    the function's own `webhook_events` check ends it. (Within the window the
    //    executor's idempotency — `event.data.id`, `event.data.orderId` — skips them.)
    app.h.advance(Duration::from_secs(86_400));
    let replay = app
        .h
        .send(
            Event::new(
                EVENT_STRIPE_WEBHOOK,
                json!({
                    "id": "evt_flow_1",
                    "type": "checkout.session.completed",
                    "created": evt["created"],
                    "livemode": false,
                    "object": evt["data"]["object"],
                }),
            )
            .with_id("evt_flow_1-replayed"),
        )
        .await;
    let replay = app.h.wait_for_run_of(&replay).await;
    assert_eq!(replay.status, RunStatus::Completed);
    assert_eq!(replay.output.as_ref().unwrap()["duplicate"], true);
    assert_eq!(replay.steps.len(), 1, "only record-event ran");
    // 3. A second order/created for the same order (e.g. from checkout) finds it processed.
    let again = app
        .h
        .send(Event::new(EVENT_ORDER_CREATED, json!({"orderId": order.id})).with_id("again"))
        .await;
    let again = app.h.wait_for_run_of(&again).await;
    assert_eq!(again.output.as_ref().unwrap()["alreadyProcessed"], true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.h.executor().runs_for_event("evt_flow_1").len(), 1);
    assert_eq!(app.runs_of(FN_PROCESS_PAYMENT_WEBHOOK).len(), 2);
    assert_eq!(app.runs_of(FN_PROCESS_ORDER).len(), 2);
    assert_eq!(app.runs_of(FN_SEND_ORDER_CONFIRMATION).len(), 1);
    assert_eq!(order_posts(&app).len(), 1, "no second Printify order");
    assert_eq!(app.printify().orders()[0].posts, 1);
    assert_eq!(app.resend().emails().len(), 1, "no second email");
    assert_eq!(app.db.list_email_log().await.unwrap().len(), 1);
    assert_eq!(stripe_gets(&app, "cs_test_flow_1"), 1);
    assert_eq!(app.events_named(EVENT_ORDER_CONFIRMATION_SENT).len(), 1);
    assert_eq!(app.db.count_rows("webhook_events").await.unwrap(), 1);
    assert_eq!(
        order_row(&app, &order).await.status,
        OrderStatus::InProduction
    );
    app.finish().await;
}

#[tokio::test]
async fn order_flow_sqlite() {
    full_order_flow(TestApp::sqlite().await).await;
}

#[tokio::test]
async fn order_flow_postgres() {
    let Some((db, t)) = pg_db("order_flow").await else {
        return;
    };
    full_order_flow(TestApp::start(db, t, Opts::default()).await).await;
}

#[tokio::test]
async fn an_unmapped_variant_parks_the_order_in_pending_mapping_without_calling_printify() {
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;
    let user = app.user("user_unmapped", "kaworu@nerv.example").await;
    let hoodie = app.variant(HOODIE, 40_001).await;
    let order = app
        .order(&user, "cs_test_unmapped", &[(Some(&hoodie), 1), (None, 1)])
        .await;
    let hooks = app.webhooks().await;
    let (status, _) = hooks
        .stripe(&checkout_completed(
            "evt_unmapped",
            &session(&app, "cs_test_unmapped"),
        ))
        .await;
    assert_eq!(status, 200);
    let run = app
        .h
        .wait_for_run_of(&order_created_event_id(order.id))
        .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["success"], false);
    assert_eq!(out["status"], "pending_mapping");
    assert_eq!(
        out["steps"]["inventory"]["problems"],
        json!(["Custom commission #1 (missing variant)"])
    );
    assert!(run.step("create-printify-order").is_none());

    let row = order_row(&app, &order).await;
    assert_eq!(row.status, OrderStatus::PendingMapping);
    assert!(row.paid_at.is_some(), "payment recorded before parking");
    let sync = app
        .db
        .get_printify_order_sync(order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::MappingFailed);
    assert!(sync
        .error
        .unwrap()
        .contains("Custom commission #1 (missing variant)"));
    assert!(order_posts(&app).is_empty(), "no Printify call");
    assert!(app.printify().orders().is_empty());
    assert!(app.resend().emails().is_empty());
    assert!(app.events_named(EVENT_ORDER_CONFIRMATION_SENT).is_empty());
    assert_eq!(
        app.db.cart_items(user.id).await.unwrap().len(),
        1,
        "cart kept"
    );
}

#[tokio::test]
async fn a_printify_400_fails_the_order_into_the_dead_letter_path() {
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;
    let user = app.user("user_rejected", "misato@nerv.example").await;
    let mug = app.variant(MUG, 40_202).await;
    let order = app
        .order(&user, "cs_test_rejected", &[(Some(&mug), 1)])
        .await;
    app.printify().push_fault(
        Fault::status(400, 10)
            .on_path("orders.json")
            .with_message("Validation failed."),
    );
    let hooks = app.webhooks().await;
    hooks
        .stripe(&checkout_completed(
            "evt_rejected",
            &session(&app, "cs_test_rejected"),
        ))
        .await;

    let run = app
        .h
        .wait_for_run_of(&order_created_event_id(order.id))
        .await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let step = run.step("create-printify-order").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(step.attempts, 1, "a 400 is not retried");
    assert_eq!(step.error.as_ref().unwrap()["name"], "NonRetriableError");
    assert!(run
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("Validation failed."));
    assert!(run.step("send-confirmation").is_none());

    // printify_order_sync.failed, order still paid, nothing sent, cart kept
    let sync = app
        .db
        .get_printify_order_sync(order.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.status, PrintifySyncStatus::Failed);
    assert!(sync.error.as_deref().unwrap().contains("400"));
    assert_eq!(order_row(&app, &order).await.status, OrderStatus::Paid);
    assert!(app.resend().emails().is_empty());
    assert_eq!(app.db.cart_items(user.id).await.unwrap().len(), 1);

    // on_failure: failed_operations row + operation/failed
    let failure = app
        .wait_runs_of(&format!("{FN_PROCESS_ORDER}-failure"), 1)
        .await;
    assert_eq!(failure[0].status, RunStatus::Completed, "{:#?}", failure[0]);
    let ops = app.db.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    let op = &ops[0];
    assert_eq!(op.op_type, OP_ORDER_PROCESS);
    assert_eq!(
        op.dedupe_key.as_deref(),
        Some(order.id.to_string().as_str())
    );
    assert_eq!(op.payload["orderId"], order.id.to_string());
    assert!(op
        .last_error
        .as_deref()
        .unwrap()
        .contains("Validation failed."));
    let emitted = app.events_named(EVENT_OPERATION_FAILED);
    assert_eq!(emitted.len(), 1);
    assert_eq!(
        emitted[0]["data"],
        json!({
            "operationId": op.id,
            "type": OP_ORDER_PROCESS,
            "payload": op.payload,
            "retryCount": 0,
            "error": op.last_error,
        })
    );

    // retry-failed-operation: 30 s, 60 s, 120 s of backoff (virtual clock), each retry is
    // refused again, then the row is dead.
    let retry = app.h.first_run_of(emitted[0]["id"].as_str().unwrap()).await;
    assert_eq!(retry.function_id, app.fid(FN_RETRY_FAILED_OPERATION));
    for (n, secs) in [(0, 30u64), (1, 60), (2, 120)] {
        let name = format!("backoff-{n}");
        app.h
            .wait_until(&retry.id, "to sleep", |r| {
                r.step(&name)
                    .is_some_and(|s| s.status == StepStatus::Sleeping)
            })
            .await;
        assert_eq!(
            order_posts(&app).len(),
            1 + n as usize,
            "no retry before the backoff"
        );
        app.h.advance(Duration::from_secs(secs));
    }
    let retry = app.h.wait_for_run(&retry.id).await;
    assert_eq!(retry.status, RunStatus::Completed, "{retry:#?}");
    let out = retry.output.clone().unwrap();
    assert_eq!(out["deadLettered"], true);
    assert_eq!(out["retryCount"], 3);
    for (n, secs) in [(0, 30), (1, 60), (2, 120)] {
        let s = retry.step(&format!("backoff-{n}")).unwrap();
        assert_eq!(s.op, "Sleep");
        assert_eq!((s.ended_at.unwrap() - s.started_at).num_seconds(), secs);
        let r = retry.step(&format!("retry-operation-{n}")).unwrap();
        assert_eq!(r.output.as_ref().unwrap()["data"]["ok"], false);
    }
    let op = app.db.get_failed_operation(op.id).await.unwrap().unwrap();
    assert_eq!(op.status, OperationStatus::Dead);
    assert_eq!(op.retry_count, 3);
    let posts = order_posts(&app);
    assert_eq!(posts.len(), 4);
    assert!(posts.iter().all(|p| p.status == 400));
    assert!(app.printify().orders().is_empty());
    assert!(app.resend().emails().is_empty());
}

#[tokio::test]
async fn an_order_created_at_checkout_waits_for_its_payment() {
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;
    let user = app.user("user_waiting", "pen@pen.example").await;
    let hoodie = app.variant(HOODIE, 40_003).await;
    let order = app
        .order(&user, "cs_test_wait", &[(Some(&hoodie), 1)])
        .await;

    // The checkout emits order/created before payment.
    let id = app
        .h
        .send(
            Event::new(
                EVENT_ORDER_CREATED,
                json!({"orderId": order.id, "userId": user.clerk_id, "stripeSessionId": "cs_test_wait"}),
            )
            .with_id(order_created_event_id(order.id)),
        )
        .await;
    let run = app.h.wait_for_paused_run_of(&id).await;
    let wait = run.step("wait-for-payment").unwrap();
    assert_eq!(wait.status, StepStatus::Waiting);
    assert_eq!(order_row(&app, &order).await.status, OrderStatus::Pending);

    // The payment arrives through the webhook route.
    let hooks = app.webhooks().await;
    hooks
        .stripe(&checkout_completed(
            "evt_wait",
            &session(&app, "cs_test_wait"),
        ))
        .await;
    let run = app.h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.step("wait-for-payment").unwrap().status,
        StepStatus::Completed
    );
    assert_eq!(
        run.step("wait-for-payment")
            .unwrap()
            .output
            .as_ref()
            .unwrap()["data"]["id"],
        "evt_wait"
    );
    assert_eq!(run.output.as_ref().unwrap()["status"], "in_production");
    let pay = app.h.wait_for_run_of("evt_wait").await;
    assert_eq!(pay.status, RunStatus::Completed);
    // The webhook's order/created had the same id: still one process-order run.
    assert_eq!(app.runs_of(FN_PROCESS_ORDER).len(), 1);
    assert_eq!(
        order_row(&app, &order).await.status,
        OrderStatus::InProduction
    );
    assert_eq!(order_posts(&app).len(), 1);
    app.h
        .wait_for_run_of(&confirmation_event_id(order.id))
        .await;
    assert_eq!(app.resend().emails().len(), 1);
}

#[tokio::test]
async fn an_unpaid_order_is_cancelled_when_the_payment_wait_times_out() {
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;
    let user = app.user("user_never_pays", "toji@nerv.example").await;
    let mug = app.variant(MUG, 40_201).await;
    let order = app.order(&user, "cs_test_unpaid", &[(Some(&mug), 1)]).await;
    let mut s = session(&app, "cs_test_unpaid");
    s["payment_status"] = json!("unpaid");
    s["status"] = json!("open");
    app.stripe().put_session(s);

    let id = app
        .h
        .send(
            Event::new(EVENT_ORDER_CREATED, json!({"orderId": order.id}))
                .with_id("checkout-unpaid"),
        )
        .await;
    let run = app.h.wait_for_paused_run_of(&id).await;
    app.h.advance(Duration::from_secs(3600));
    let run = app.h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.step("wait-for-payment").unwrap().status,
        StepStatus::TimedOut
    );
    let out = run.output.unwrap();
    assert_eq!(out["success"], false);
    assert_eq!(out["status"], "cancelled");
    assert_eq!(out["steps"]["payment"]["paymentStatus"], "unpaid");
    assert_eq!(
        stripe_gets(&app, "cs_test_unpaid"),
        1,
        "verified with Stripe after the timeout"
    );
    assert_eq!(order_row(&app, &order).await.status, OrderStatus::Cancelled);
    assert!(order_posts(&app).is_empty());
    assert!(app.resend().emails().is_empty());
}

#[tokio::test]
async fn a_bad_order_event_fails_without_retry_naming_the_field() {
    let app = TestApp::sqlite().await;
    let id = app
        .h
        .send(Event::new(EVENT_ORDER_CREATED, json!({"orderId": "ord_42"})).with_id("bad-order"))
        .await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1);
    let msg = run.error.unwrap().message;
    assert!(
        msg.contains("at `data.orderId`") && msg.contains("UUID"),
        "{msg}"
    );
    // Its on_failure still records it (for an operator to look at) and the retry dead-letters it.
    let failure = app
        .wait_runs_of(&format!("{FN_PROCESS_ORDER}-failure"), 1)
        .await;
    assert_eq!(failure[0].status, RunStatus::Completed);
    assert_eq!(app.db.list_operations(None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn payment_intent_events_mark_failures_and_are_recorded() {
    let app = TestApp::sqlite().await;
    app.seed_catalog().await;
    let user = app.user("user_declined", "gendo@nerv.example").await;
    let mug = app.variant(MUG, 40_201).await;
    let order = app
        .order(&user, "cs_test_declined", &[(Some(&mug), 1)])
        .await;
    let hooks = app.webhooks().await;
    let pi_event = |id: &str, kind: &str, pi: &str| {
        json!({
            "id": id, "object": "event", "type": kind, "livemode": false,
            "created": otakumori::webhooks::unix_now(),
            "data": {"object": {"id": pi, "object": "payment_intent",
                                "metadata": {"order_id": order.id.to_string()}}}
        })
    };

    let (status, _) = hooks
        .stripe(&pi_event(
            "evt_pi_failed",
            "payment_intent.payment_failed",
            "pi_declined_1",
        ))
        .await;
    assert_eq!(status, 200);
    let run = app.h.wait_for_run_of("evt_pi_failed").await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["webhookType"], "payment_intent.payment_failed");
    assert_eq!(out["orderId"], order.id.to_string());
    assert_eq!(out["result"]["changed"], true);
    assert!(run.step("mark-order-failed").is_some());
    assert_eq!(
        order_row(&app, &order).await.status,
        OrderStatus::PaymentFailed
    );
    assert!(app.events_named(EVENT_ORDER_CREATED).is_empty());

    // An intent the shop does not know: recorded and processed, nothing changes.
    hooks
        .stripe(&pi_event(
            "evt_pi_ok",
            "payment_intent.succeeded",
            "pi_unknown_2",
        ))
        .await;
    let run = app.h.wait_for_run_of("evt_pi_ok").await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output.as_ref().unwrap()["result"]["ordersUpdated"], 0);
    assert_eq!(app.db.count_rows("webhook_events").await.unwrap(), 2);
    // Neither needed the Stripe API nor Printify.
    assert!(app.stripe().requests().is_empty());
    assert!(order_posts(&app).is_empty());
}
