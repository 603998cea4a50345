//! The benchmark workload: app `bench-app`, one function `chain` (trigger `bench/chain`) of `STEPS`
//! sequential `step.run("s{i}")`, each returning
//! `{"i": i, "label": "step output {i}", "payload": "xxx…"}` (120 × `x`).
//!
//! ```text
//! STEPS=1000 PORT=3000 cargo run --release --example bench_app
//! cargo run --release --example loadgen -- http://127.0.0.1:3000/api/inngest --n 100
//! ```
//!
//! Serves `/api/inngest` on `127.0.0.1:$PORT` (default 3000) in dev mode unless `INNGEST_DEV` is set
//! (`INNGEST_DEV=0 INNGEST_SIGNING_KEY=signkey-…` serves in cloud mode and verifies signatures).
//! A call with `s0`…`s{N-2}` memoized runs `s{N-1}` and answers one `206 StepRun`; steps after it are
//! never reached, so `STEPS` only has to be ≥ the largest N you drive (the loader's default is 10).
//! Set `RUST_LOG` to see the SDK's logs (off by default: logging is not what is measured).

use inngest_sdk::{serve, Ctx, Function, Inngest, Step, Trigger};
use serde::{Deserialize, Serialize};

/// What every step returns (≈ 170 bytes of JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutput {
    pub i: u32,
    pub label: String,
    pub payload: String,
}

impl StepOutput {
    pub fn new(i: u32) -> Self {
        StepOutput {
            i,
            label: format!("step output {i}"),
            payload: "x".repeat(120),
        }
    }
}

/// The `chain` function with `steps` sequential steps.
pub fn chain(steps: u32) -> Function {
    Function::new("chain")
        .trigger(Trigger::event("bench/chain"))
        .handler(move |_ctx: Ctx<serde_json::Value>, step: Step| async move {
            let mut last = 0;
            for i in 0..steps {
                let out: StepOutput = step
                    .run(&format!("s{i}"), || async move { Ok(StepOutput::new(i)) })
                    .await?;
                last = out.i;
            }
            Ok(serde_json::json!({ "steps": steps, "last": last }))
        })
}

/// The `bench-app` client: dev mode unless `INNGEST_DEV` says otherwise.
pub fn client() -> Result<Inngest, inngest_sdk::ConfigError> {
    let builder = Inngest::builder("bench-app").from_env();
    let builder = if std::env::var_os("INNGEST_DEV").is_none() {
        builder.dev(true)
    } else {
        builder
    };
    builder.build()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }
    let steps: u32 = env_or("STEPS", 10);
    let port: u16 = env_or("PORT", 3000);
    let client = client()?;
    let app = serve::axum::router(&client, [chain(steps)])?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!(
        "bench-app: fn `bench-app-chain` with {steps} steps, {} mode, http://{}/api/inngest",
        client.config().mode().as_str(),
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
