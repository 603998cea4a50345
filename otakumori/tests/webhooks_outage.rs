//! Inngest unreachable while a verified webhook arrives: the route answers 503 (so the provider
//! redelivers) and the delivery is recorded in `failed_operations` — nothing is silently dropped.

use std::sync::Arc;
use std::time::Duration;

use otakumori::db::{Db, OperationStatus};
use otakumori::webhooks::{
    self, clerk, DbFailureRecorder, WebhookConfig, WebhookState, OP_WEBHOOK_FORWARD,
};
use serde_json::json;

const SVIX_SECRET: &str = "whsec_b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ==";

#[tokio::test]
async fn a_delivery_that_cannot_reach_inngest_is_recorded_once() {
    let path = std::env::temp_dir().join(format!("otakumori-outage-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();

    // An event API on a loopback port nobody listens on: every send fails at connect.
    let client = inngest_sdk::Inngest::builder("otakumori-app")
        .dev(true)
        .event_api_base_url("http://127.0.0.1:1")
        .send_retries(1)
        .send_backoff(Duration::from_millis(1))
        .build()
        .unwrap();
    let secret = clerk::SvixSecret::parse(SVIX_SECRET).unwrap();
    let config = WebhookConfig::default()
        .with_clerk_secret(secret.clone())
        .with_rate_limit(None);
    let state = WebhookState::new(webhooks::inngest_sink(client), config)
        .with_failure_recorder(Arc::new(DbFailureRecorder::new(db.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(webhooks::serve(listener, webhooks::router(state)));

    let body = serde_json::to_vec(&json!({
        "type": "user.created",
        "data": { "id": "user_outage", "email_addresses": [] }
    }))
    .unwrap();
    let http = reqwest::Client::new();
    for attempt in 0..2 {
        let now = chrono::Utc::now().timestamp();
        let mut req = http.post(format!("{base}/webhooks/clerk"));
        for (k, v) in clerk::signed_headers(&secret, "msg_outage_1", now, &body) {
            req = req.header(k, v);
        }
        let resp = req.body(body.clone()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 503, "delivery {attempt}");
    }

    // Two failed deliveries of the same message: one row, keyed by provider and delivery id.
    let ops = db.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1, "{ops:?}");
    let op = &ops[0];
    assert_eq!(op.op_type, OP_WEBHOOK_FORWARD);
    assert_eq!(op.dedupe_key.as_deref(), Some("clerk:msg_outage_1"));
    assert_eq!(op.status, OperationStatus::Pending);
    assert_eq!(op.payload["provider"], "clerk");
    assert_eq!(op.payload["delivery_id"], "msg_outage_1");
    assert_eq!(op.payload["events"][0]["name"], "clerk/user.created");
    assert_eq!(op.payload["events"][0]["id"], "msg_outage_1");
    assert_eq!(op.payload["events"][0]["data"]["id"], "user_outage");
    assert!(
        op.last_error
            .as_deref()
            .is_some_and(|e| e.contains("event API")),
        "{:?}",
        op.last_error
    );
    let _ = std::fs::remove_file(&path);
}
