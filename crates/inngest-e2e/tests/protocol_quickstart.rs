//! Smoke test of `examples/quickstart.rs` (included below): its functions build into a valid app
//! that answers introspection and a first execution request over HTTP.

#[path = "../../inngest-sdk/examples/quickstart.rs"]
#[allow(dead_code)]
mod quickstart;
mod support;

use serde_json::json;
use support::{event, send, Call, FakeApi};

#[tokio::test]
async fn quickstart_app_serves() {
    let fake = FakeApi::start().await;
    let client = support::dev_client(quickstart::APP_ID, &fake);
    let server = support::serve_app(&client, quickstart::functions()).await;

    let resp = send(support::http().get(server.endpoint(""))).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["function_count"], 3);

    let resp = Call::new(
        "rust-quickstart-hello-world",
        event("demo/hello", json!({"name": "Ada"})),
    )
    .post(&server)
    .await;
    assert_eq!(resp.ops()[0]["data"], "Hello, Ada!");

    // A zero-amount order is refused for good.
    let resp = Call::new(
        "rust-quickstart-process-order",
        event(
            "shop/order.created",
            json!({"order_id": "o1", "amount_cents": 0}),
        ),
    )
    .post(&server)
    .await;
    assert_eq!(resp.status, 400);
    resp.assert_no_retry(Some("true"));
}

#[test]
fn quickstart_needs_a_signing_key_in_cloud_mode() {
    // Cloud mode (no INNGEST_DEV) without INNGEST_SIGNING_KEY is a startup error.
    let err = inngest_sdk::Inngest::builder(quickstart::APP_ID)
        .env_source(|_| None)
        .build()
        .unwrap_err();
    assert!(
        err.to_string().to_lowercase().contains("signing key"),
        "{err}"
    );
}
