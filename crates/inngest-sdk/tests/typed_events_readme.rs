//! The "Typed events" example of the README, copied below, kept compiling here; the test
//! serves it and checks the triggers it registers and one typed call.

use axum::body::Body;
use http_body_util::BodyExt;
use inngest_sdk::{serve, Inngest};
use serde_json::{json, Value};
use tower::ServiceExt;

// ---- README "Typed events" example (as in the README, formatted by rustfmt) ----
use inngest_sdk::{
    Cancel, Ctx, Event, EventSet, Function, FunctionFailed, Step, TypedFunction, WaitFor,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
struct OrderCreated {
    order_id: String,
    total_cents: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/payment.succeeded")]
struct PaymentSucceeded {
    order_id: String,
    cents: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/order.voided")]
struct OrderVoided {
    order_id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/tax.requested")]
struct TaxInput {
    cents: u64,
}

#[derive(Serialize, Deserialize)]
struct TaxOutput {
    tax_cents: u64,
}

/// Several typed triggers: one enum, decoded by the event's name.
#[derive(EventSet)]
enum ShopEvent {
    Created(OrderCreated),
    Paid(PaymentSucceeded),
}

/// A typed function handle knows its input and output: `TypedFunction<TaxInput, TaxOutput>`.
fn compute_tax() -> TypedFunction<TaxInput, TaxOutput> {
    Function::new("compute-tax").on::<TaxInput>().handler(
        |ctx: Ctx<TaxInput>, _step: Step| async move {
            Ok(TaxOutput {
                tax_cents: ctx.event.data.cents / 10,
            })
        },
    )
}

fn checkout(compute_tax: TypedFunction<TaxInput, TaxOutput>) -> TypedFunction<OrderCreated, u64> {
    Function::new("checkout")
        .on::<OrderCreated>() // the handler must take Ctx<OrderCreated>
        .when("event.data.total_cents > 0") // the trigger's `if`
        .cancel_on(Cancel::on::<OrderVoided>().matching("data.order_id"))
        .on_failure(
            |ctx: Ctx<FunctionFailed<OrderCreated>>, _step: Step| async move {
                Ok(ctx.event.data.event.data.order_id) // the original, typed event
            },
        )
        .handler(move |ctx: Ctx<OrderCreated>, step: Step| {
            let compute_tax = compute_tax.clone();
            async move {
                let order = ctx.event.data;
                // Input and output types come from the handle: a wrong input does not compile.
                let tax: TaxOutput = step
                    .invoke(
                        "tax",
                        &compute_tax,
                        TaxInput {
                            cents: order.total_cents,
                        },
                    )
                    .await?;
                let paid: Option<Event<PaymentSucceeded>> = step
                    .wait_for_event::<PaymentSucceeded>(
                        "wait-paid",
                        WaitFor::new(Duration::from_secs(3600)).matching("data.order_id"),
                    )
                    .await?;
                step.send_event(
                    "receipt",
                    OrderVoided {
                        order_id: order.order_id,
                    },
                )
                .await?;
                Ok(tax.tax_cents + paid.map_or(0, |e| e.data.cents))
            }
        })
}

fn shop() -> TypedFunction<ShopEvent, String> {
    Function::new("shop")
        .on_any::<ShopEvent>() // one trigger per variant
        .handler(|ctx: Ctx<ShopEvent>, _step: Step| async move {
            Ok(match ctx.event.data {
                ShopEvent::Created(c) => c.order_id,
                ShopEvent::Paid(p) => p.order_id,
            })
        })
}
// ---- end of the README example ----

async fn call(router: axum::Router, req: http::Request<Body>) -> (u16, Value) {
    let res = router.oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).expect("JSON"))
}

#[tokio::test]
async fn the_readme_typed_example_serves_and_dispatches() {
    let client = Inngest::builder("readme")
        .dev(true)
        .build()
        .expect("client");
    let tax = compute_tax();
    let functions: Vec<inngest_sdk::Function> =
        vec![tax.function(), checkout(tax).into(), shop().into()];
    let router = serve::axum::router(&client, functions).expect("router");
    let sync = http::Request::builder()
        .method("PUT")
        .uri("/api/inngest")
        .header("x-inngest-sync-kind", "in_band")
        .body(Body::from(r#"{"url":"http://127.0.0.1:3000/api/inngest"}"#))
        .expect("request");
    let (status, payload) = call(router.clone(), sync).await;
    assert_eq!(status, 200, "{payload}");
    let triggers: Vec<Value> = payload["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .map(|f| json!([f["id"], f["triggers"]]))
        .collect();
    assert_eq!(
        triggers,
        [
            json!(["readme-compute-tax", [{ "event": "shop/tax.requested" }]]),
            json!(["readme-checkout", [{ "event": "shop/order.created", "expression": "event.data.total_cents > 0" }]]),
            json!(["readme-checkout-failure", [{ "event": "inngest/function.failed", "expression": "event.data.function_id == \"readme-checkout\"" }]]),
            json!(["readme-shop", [{ "event": "shop/order.created" }, { "event": "shop/payment.succeeded" }]]),
        ]
    );
    let event = json!({ "name": "shop/payment.succeeded", "data": { "order_id": "o1", "cents": 5 }, "ts": 1 });
    let body = json!({
        "ctx": { "attempt": 0, "run_id": "r1", "fn_id": "f", "step_id": "step",
                 "stack": { "current": 0, "stack": [] }, "disable_immediate_execution": false, "use_api": false },
        "event": event, "events": [event], "steps": {}, "use_api": false, "version": 2
    });
    let exec = http::Request::builder()
        .method("POST")
        .uri("/api/inngest?fnId=readme-shop&stepId=step")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    assert_eq!(call(router, exec).await, (200, json!("o1")));
}
