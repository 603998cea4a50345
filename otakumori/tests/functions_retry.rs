//! `retry-failed-operation` for a failing confirmation email :
//! explicit exponential backoff (durable sleeps on the virtual clock), dead after 3 retries;
//! and a recovery that marks the row `succeeded`.

mod functions_support;

use std::time::Duration;

use functions_support::TestApp;
use inngest_executor::clock::Clock;
use inngest_executor::{RunStatus, SkipReason, SkipView, StepStatus};
use inngest_sdk::Event;
use otakumori::db::{
    now_utc, NewFailedOperation, NewOrder, NewOrderItem, OperationStatus, Order, User,
};
use otakumori::functions::{
    EVENT_OPERATION_FAILED, EVENT_ORDER_CONFIRMATION_SENT, FN_RETRY_FAILED_OPERATION,
    FN_SEND_ORDER_CONFIRMATION, OP_EMAIL_ORDER_CONFIRMATION,
};
use otakumori::sandbox::Fault;
use serde_json::json;

async fn order(app: &TestApp) -> (User, Order) {
    let user = app.user("user_retry", "ritsuko@nerv.example").await;
    let order = app
        .db
        .create_order(
            &NewOrder {
                user_id: user.id,
                stripe_session_id: Some("cs_test_retry".into()),
                subtotal_cents: 2400,
                total_cents: 2400,
                currency: "usd".into(),
                shipping: None,
                items: vec![NewOrderItem {
                    name: "Shrine Maiden Tote Bag".into(),
                    quantity: 1,
                    unit_amount_cents: 2400,
                    ..NewOrderItem::default()
                }],
            },
            now_utc(),
        )
        .await
        .unwrap();
    (user, order)
}

fn resend_posts(app: &TestApp) -> Vec<u16> {
    app.resend()
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/emails")
        .map(|r| r.status)
        .collect()
}

#[tokio::test]
async fn a_failing_email_is_retried_with_backoff_then_dead_lettered_after_three() {
    let app = TestApp::sqlite().await;
    let (_user, order) = order(&app).await;
    let op = app
        .db
        .record_failed_operation(
            &NewFailedOperation {
                op_type: OP_EMAIL_ORDER_CONFIRMATION.into(),
                dedupe_key: Some(order.id.to_string()),
                payload: json!({"orderId": order.id}),
                error: "resend: server error 500".into(),
            },
            now_utc(),
        )
        .await
        .unwrap();
    app.resend()
        .push_fault(Fault::status(500, 10).on_path("/emails"));

    let id = app
        .h
        .send(
            Event::new(
                EVENT_OPERATION_FAILED,
                json!({"operationId": op.id, "type": OP_EMAIL_ORDER_CONFIRMATION,
                       "payload": {"orderId": order.id}, "retryCount": 0, "error": "resend: server error 500"}),
            )
            .with_id("op-failed-1"),
        )
        .await;
    let run = app.h.first_run_of(&id).await;
    assert_eq!(run.function_id, app.fid(FN_RETRY_FAILED_OPERATION));
    let start = app.h.clock().now();
    for (n, secs) in [(0, 30i64), (1, 60), (2, 120)] {
        let name = format!("backoff-{n}");
        let r = app
            .h
            .wait_until(&run.id, "to sleep", |r| {
                r.step(&name)
                    .is_some_and(|s| s.status == StepStatus::Sleeping)
            })
            .await;
        assert_eq!(resend_posts(&app).len(), n, "no attempt before its backoff");
        let row = app.db.get_failed_operation(op.id).await.unwrap().unwrap();
        assert_eq!(row.retry_count, n as i32);
        assert_eq!(row.status, OperationStatus::Pending);
        let sleeping_since = r.step(&name).unwrap().started_at;
        let due = app.h.skip_to_next().expect("the backoff deadline");
        assert_eq!((due - sleeping_since).num_seconds(), secs, "{name}");
    }
    let run = app.h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["success"], false);
    assert_eq!(out["deadLettered"], true);
    assert_eq!(out["retryCount"], 3);
    assert_eq!(out["operationType"], OP_EMAIL_ORDER_CONFIRMATION);
    assert!(out["lastError"].as_str().unwrap().contains("500"));
    // The run's steps: load, 3 × (sleep, attempt), dead-letter.
    let names: Vec<(&str, &str)> = run
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.op.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("load-operation", "StepRun"),
            ("backoff-0", "Sleep"),
            ("retry-operation-0", "StepRun"),
            ("backoff-1", "Sleep"),
            ("retry-operation-1", "StepRun"),
            ("backoff-2", "Sleep"),
            ("retry-operation-2", "StepRun"),
            ("dead-letter", "StepRun"),
        ]
    );
    // 30 + 60 + 120 s of virtual time.
    assert_eq!((app.h.clock().now() - start).num_seconds(), 210);

    let row = app.db.get_failed_operation(op.id).await.unwrap().unwrap();
    assert_eq!(row.status, OperationStatus::Dead);
    assert_eq!(row.retry_count, 3);
    assert!(row.last_error.unwrap().contains("500"));
    assert_eq!(resend_posts(&app), vec![500, 500, 500]);
    assert!(app.resend().emails().is_empty());
    let log = app.db.list_email_log().await.unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|l| l.status == "failed"));
}

#[tokio::test]
async fn an_email_that_exhausted_its_retries_is_recovered_by_the_retry_queue() {
    let app = TestApp::sqlite().await;
    let (user, order) = order(&app).await;
    // The provider is down for the function's 5 attempts (retries default 4), then recovers.
    app.resend()
        .push_fault(Fault::status(500, 5).on_path("/emails"));
    let id = app
        .h
        .send(
            Event::new(EVENT_ORDER_CONFIRMATION_SENT, json!({"orderId": order.id}))
                .with_id("confirm-retry"),
        )
        .await;
    let run = app.h.wait_for_run_of(&id).await;
    assert_eq!(run.function_id, app.fid(FN_SEND_ORDER_CONFIRMATION));
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    assert_eq!(run.step("send-email").unwrap().attempts, 5);
    assert_eq!(resend_posts(&app), vec![500; 5]);

    // on_failure: row + operation/failed
    let failure = app
        .wait_runs_of(&format!("{FN_SEND_ORDER_CONFIRMATION}-failure"), 1)
        .await;
    assert_eq!(failure[0].status, RunStatus::Completed, "{:#?}", failure[0]);
    let ops = app.db.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].op_type, OP_EMAIL_ORDER_CONFIRMATION);
    assert_eq!(ops[0].payload, json!({"orderId": order.id}));
    let emitted = app.events_named(EVENT_OPERATION_FAILED);
    assert_eq!(emitted.len(), 1);

    let retry = app.h.first_run_of(emitted[0]["id"].as_str().unwrap()).await;
    let r = app
        .h
        .wait_until(&retry.id, "to back off", |r| {
            r.step("backoff-0")
                .is_some_and(|s| s.status == StepStatus::Sleeping)
        })
        .await;
    assert_eq!(r.steps.len(), 2);
    app.h.advance(Duration::from_secs(30));
    let retry = app.h.wait_for_run(&retry.id).await;
    assert_eq!(retry.status, RunStatus::Completed, "{retry:#?}");
    let out = retry.output.clone().unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["deadLettered"], false);
    assert_eq!(out["retryCount"], 1);
    assert!(retry.step("mark-succeeded").is_some());
    assert!(retry.step("backoff-1").is_none());

    let row = app
        .db
        .get_failed_operation(ops[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, OperationStatus::Succeeded);
    assert_eq!(row.retry_count, 1);
    let emails = app.resend().emails();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].to, vec![user.email.clone()]);
    assert_eq!(
        emails[0].subject,
        format!("Order Confirmation #{}", order.display_number)
    );
    assert_eq!(resend_posts(&app), [vec![500; 5], vec![200]].concat());
    let log = app.db.list_email_log().await.unwrap();
    assert_eq!(log.iter().filter(|l| l.status == "failed").count(), 5);
    let sent: Vec<_> = log.iter().filter(|l| l.status == "sent").collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].order_id, Some(order.id));

    // A late duplicate of the confirmation event within 24 h is skipped by the function's
    // idempotency key (the order id): no run, no email.
    let dup = app
        .h
        .send(
            Event::new(EVENT_ORDER_CONFIRMATION_SENT, json!({"orderId": order.id}))
                .with_id("confirm-again"),
        )
        .await;
    let skip = wait_for_skip(&app, &dup).await;
    assert_eq!(skip.reason, SkipReason::Idempotency);
    assert_eq!(skip.function_id, app.fid(FN_SEND_ORDER_CONFIRMATION));
    assert!(app.h.executor().runs_for_event(&dup).is_empty());

    // After the idempotency window, a new confirmation event runs and finds the email sent.
    app.h.advance(Duration::from_secs(24 * 3600 + 1));
    let again = app
        .h
        .send(
            Event::new(EVENT_ORDER_CONFIRMATION_SENT, json!({"orderId": order.id}))
                .with_id("confirm-next-day"),
        )
        .await;
    let again = app.h.wait_for_run_of(&again).await;
    assert_eq!(again.output.as_ref().unwrap()["alreadySent"], true);
    assert_eq!(app.resend().emails().len(), 1);
}

/// The flow-control skip recorded for `event_id` (waits briefly: skips are recorded on ingestion).
async fn wait_for_skip(app: &TestApp, event_id: &str) -> SkipView {
    for _ in 0..200 {
        if let Some(skip) = app
            .h
            .executor()
            .skipped()
            .into_iter()
            .find(|s| s.event_id == event_id)
        {
            return skip;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no skip recorded for event {event_id}: {:?}",
        app.h.executor().skipped()
    );
}
