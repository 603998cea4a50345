//! Quickstart: a small Inngest app served from axum at `http://127.0.0.1:$PORT/api/inngest`.
//!
//! Configured only from the standard environment variables:
//!
//! ```text
//! # against a local Dev Server (npx inngest-cli@latest dev -u http://127.0.0.1:3000/api/inngest)
//! INNGEST_DEV=1 cargo run --example quickstart
//!
//! # cloud mode: every request must carry a valid signature
//! INNGEST_SIGNING_KEY=signkey-prod-… INNGEST_EVENT_KEY=… cargo run --example quickstart
//! ```
//!
//! `PORT` defaults to 3000. `RUST_LOG` controls logging (default `info`). Without `INNGEST_DEV`
//! the SDK runs in cloud mode, which needs `INNGEST_SIGNING_KEY`: a missing key is an error at
//! startup, not at the first request.

use std::time::Duration;

use inngest_sdk::{
    serve, Concurrency, Ctx, Event, Function, Inngest, NonRetriable, Step, Trigger, WaitFor,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The app id shown in the Inngest UI.
pub const APP_ID: &str = "rust-quickstart";

/// `shop/order.created`: the event's name and its data type, bound in one place.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
pub struct OrderCreated {
    pub order_id: String,
    pub amount_cents: u64,
}

/// `shop/order.shipped`.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/order.shipped")]
pub struct OrderShipped {
    pub order_id: String,
}

/// `shop/receipt.requested`.
#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/receipt.requested")]
pub struct ReceiptRequested {
    pub order_id: String,
    pub shipped: bool,
}

/// The app's functions.
pub fn functions() -> Vec<Function> {
    // 1. Steps, a durable sleep, and a return value.
    let hello = Function::new("hello-world")
        .name("Hello world")
        .trigger(Trigger::event("demo/hello"))
        .handler(|ctx: Ctx<serde_json::Value>, step: Step| async move {
            let name = ctx.event.data["name"]
                .as_str()
                .unwrap_or("world")
                .to_owned();
            let greeting: String = step
                .run("greet", || async move { Ok(format!("Hello, {name}!")) })
                .await?;
            step.sleep("pause", Duration::from_secs(1)).await;
            Ok(json!({ "greeting": greeting }))
        });

    // 2. A typed event (trigger, wait and send name no event by hand), retries, a concurrency key, waiting for another event, sending one.
    let process_order = Function::new("process-order")
        .on::<OrderCreated>()
        .retries(3)
        .concurrency(Concurrency::new(5).key("event.data.order_id"))
        .handler(|ctx: Ctx<OrderCreated>, step: Step| async move {
            let order = ctx.event.data.clone();
            if order.amount_cents == 0 {
                return Err(NonRetriable::new("an order of 0 cents cannot be charged").into());
            }
            let charge_id: String = step
                .run("charge-card", || async move {
                    // Call your payment provider here; an Err is retried with backoff.
                    Ok(format!("ch_{}", order.order_id))
                })
                .await?;
            let shipped: Option<Event<OrderShipped>> = step
                .wait_for_event::<OrderShipped>(
                    "wait-for-shipment",
                    WaitFor::new(Duration::from_secs(3 * 86_400)).matching("data.order_id"),
                )
                .await?;
            let receipt = ReceiptRequested {
                order_id: ctx.event.data.order_id,
                shipped: shipped.is_some(),
            };
            let ids = step.send_event("send-receipt", receipt).await?;
            Ok(json!({ "charge_id": charge_id, "receipt_events": ids }))
        });

    // 3. A cron function.
    let nightly = Function::new("nightly-report")
        .trigger(Trigger::cron("TZ=Europe/Paris 0 2 * * *"))
        .handler(|_ctx: Ctx<serde_json::Value>, step: Step| async move {
            let rows: u64 = step.run("count-orders", || async { Ok(42u64) }).await?;
            Ok(json!({ "orders": rows }))
        });

    vec![hello, process_order.into(), nightly]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    // Cloud mode without INNGEST_SIGNING_KEY fails here, with a message saying what to set.
    let client = Inngest::new(APP_ID)?;
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|_| format!("PORT={p:?} is not a port number"))?,
        Err(_) => 3000,
    };
    let app = serve::axum::router(&client, functions())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(
        mode = client.config().mode().as_str(),
        url = %format!(
            "http://{}{}",
            listener.local_addr()?,
            client.config().serve_path().unwrap_or(serve::axum::DEFAULT_PATH)
        ),
        "serving Inngest functions"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
