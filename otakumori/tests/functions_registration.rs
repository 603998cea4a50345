//! What `functions::all` registers with the executor (synced over HTTP, read back through the
//! executor's REST API): the original function ids, triggers and crons, and the flow control the
//! app configures — concurrency keys, idempotency keys, throttle, retries and the `on_failure`
//! companions that feed the dead-letter table.
//!
//! The local executor validates these settings at sync but does not enforce concurrency,
//! throttle or idempotency (Inngest does); the other tests show each function is idempotent on
//! its own.

mod functions_support;

use functions_support::TestApp;
use otakumori::functions::{APP_ID, FUNCTION_IDS};
use serde_json::{json, Value};

#[tokio::test]
async fn every_function_is_registered_with_its_triggers_and_flow_control() {
    let app = TestApp::sqlite().await;
    let v: Value = reqwest::get(format!(
        "{}/v1/apps/{APP_ID}/functions",
        app.h.executor_url()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut got: Vec<(String, Value)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut c = f["config"].clone();
            let obj = c.as_object_mut().unwrap();
            obj.remove("id");
            obj.remove("name");
            let retries = obj
                .remove("steps")
                .and_then(|s| s["step"]["retries"]["attempts"].as_u64());
            if let Some(r) = retries {
                obj.insert("retries".into(), json!(r));
            }
            (f["id"].as_str().unwrap().to_string(), c)
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));

    let failure = |of: &str| {
        json!({"retries": 1, "triggers": [{"event": "inngest/function.failed",
            "expression": format!("event.data.function_id == \"{APP_ID}-{of}\"")}]})
    };
    let mut want: Vec<(String, Value)> = vec![
        (
            "sync-user-to-supabase",
            json!({"triggers": [{"event": "clerk/user.created"}],
            "concurrency": [{"key": "'clerk-user:' + event.data.id", "limit": 1, "scope": "env"}],
            "idempotency": "event.id"}),
        ),
        (
            "user-profile-update",
            json!({"triggers": [{"event": "clerk/user.updated"}, {"event": "clerk/user.deleted"}],
            "concurrency": [{"key": "'clerk-user:' + event.data.id", "limit": 1, "scope": "env"}],
            "idempotency": "event.id"}),
        ),
        (
            "update-printify-products",
            json!({"triggers": [{"event": "printify/products.update"}],
            "concurrency": [{"limit": 1}], "throttle": {"limit": 10, "period": "1m"}}),
        ),
        (
            "update-printify-products-failure",
            failure("update-printify-products"),
        ),
        (
            "sync-inventory",
            json!({"triggers": [{"event": "inventory/sync"}], "concurrency": [{"limit": 1}]}),
        ),
        (
            "daily-inventory-sync",
            json!({"triggers": [{"cron": "0 2 * * *"}]}),
        ),
        (
            "weekly-product-update",
            json!({"triggers": [{"cron": "0 3 * * 1"}]}),
        ),
        (
            "process-order",
            json!({"triggers": [{"event": "order/created"}],
            "concurrency": [{"key": "event.data.orderId", "limit": 1}],
            "idempotency": "event.data.orderId", "retries": 3}),
        ),
        ("process-order-failure", failure("process-order")),
        (
            "send-order-confirmation",
            json!({"triggers": [{"event": "order/confirmation.sent"}],
            "idempotency": "event.data.orderId"}),
        ),
        (
            "send-order-confirmation-failure",
            failure("send-order-confirmation"),
        ),
        (
            "process-payment-webhook",
            json!({"triggers": [{"event": "stripe/webhook"}],
            "idempotency": "event.data.id"}),
        ),
        (
            "retry-failed-operation",
            json!({"triggers": [{"event": "operation/failed"}],
            "concurrency": [{"key": "event.data.operationId", "limit": 1}], "retries": 3}),
        ),
        (
            "retry-failed-operation-failure",
            failure("retry-failed-operation"),
        ),
        (
            "cleanup-old-data",
            json!({"triggers": [{"cron": "0 4 * * 0"}]}),
        ),
        (
            "monthly-maintenance",
            json!({"triggers": [{"cron": "0 5 1 * *"}]}),
        ),
    ]
    .into_iter()
    .map(|(id, c)| (format!("{APP_ID}-{id}"), c))
    .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);

    // Every id of FUNCTION_IDS is served (plus the four on_failure companions).
    for id in FUNCTION_IDS {
        assert!(
            got.iter().any(|(g, _)| *g == format!("{APP_ID}-{id}")),
            "{id}"
        );
    }
    assert_eq!(got.len(), FUNCTION_IDS.len() + 4);
}
