//! A connect worker: the functions run on an outbound WebSocket to Inngest, the app needs no
//! public endpoint. Against the local dev server (its connect gateway is on the same port):
//!
//! ```text
//! cargo run -p inngest-executor -- --port 8288 &
//! INNGEST_DEV=1 cargo run -p inngest-sdk --features connect --example connect
//! curl -X POST localhost:8288/e/dev -d '{"name":"demo/hello","data":{"name":"Ada"}}'
//! curl localhost:8288/v1/runs
//! ```
//!
//! Against Inngest Cloud set `INNGEST_SIGNING_KEY` (and `INNGEST_EVENT_KEY` to send events).
//! Ctrl-C or SIGTERM drains the worker: it takes no new work, finishes what runs, then closes.

use std::time::Duration;

use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let client = Inngest::new("connect-demo")?;
    let hello = Function::new("hello")
        .trigger(Trigger::event("demo/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let name = ctx.event.data["name"].as_str().unwrap_or("you").to_owned();
            let greeting: String = step
                .run("greet", || async move { Ok(format!("Hello, {name}!")) })
                .await?;
            step.sleep("pause", Duration::from_secs(1)).await;
            Ok(json!({ "greeting": greeting }))
        });
    client
        .connect([hello])?
        .instance_id("connect-demo-1")
        .max_concurrency(10)
        .run()
        .await?;
    Ok(())
}
