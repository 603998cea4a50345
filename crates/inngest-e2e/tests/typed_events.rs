//! Typed events through the local executor: typed sends trigger typed functions, a typed wait
//! resumes on a typed send matched by its `if`, a typed cancel stops the run, a typed invoke
//! runs the other function with its typed input, and data of the wrong shape fails the run
//! without retries, naming the field.

use std::time::Duration;

use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Cancel, Ctx, Event, EventType, Function, Step, TypedFunction, WaitFor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
struct OrderCreated {
    order_id: String,
    total_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/payment.succeeded")]
struct PaymentSucceeded {
    order_id: String,
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/order.voided")]
struct OrderVoided {
    order_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/receipt.requested")]
struct ReceiptRequested {
    order_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Event)]
#[event(name = "shop/tax.requested")]
struct TaxInput {
    cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TaxOutput {
    tax_cents: u64,
}

fn compute_tax() -> TypedFunction<TaxInput, TaxOutput> {
    Function::new("compute-tax").on::<TaxInput>().handler(
        |ctx: Ctx<TaxInput>, _step: Step| async move {
            Ok(TaxOutput {
                tax_cents: ctx.event.data.cents / 10,
            })
        },
    )
}

fn checkout(tax: TypedFunction<TaxInput, TaxOutput>) -> TypedFunction<OrderCreated, Value> {
    Function::new("checkout")
        .on::<OrderCreated>()
        .when("event.data.total_cents > 0")
        .retries(3)
        .cancel_on(Cancel::on::<OrderVoided>().matching("data.order_id"))
        .handler(move |ctx: Ctx<OrderCreated>, step: Step| {
            let tax = tax.clone();
            async move {
                let order = ctx.event.data;
                let input = TaxInput {
                    cents: order.total_cents,
                };
                let out = step.invoke("tax", &tax, input).await?;
                let paid = step
                    .wait_for_event::<PaymentSucceeded>(
                        "wait-paid",
                        WaitFor::new(Duration::from_secs(3600)).matching("data.order_id"),
                    )
                    .await?;
                let receipt = ReceiptRequested {
                    order_id: order.order_id.clone(),
                };
                let ids = step.send_event("receipt", receipt).await?;
                Ok(json!({
                    "order": order.order_id,
                    "tax": out.tax_cents,
                    "paid": paid.map(|e| e.data.cents),
                    "receipt": ids,
                }))
            }
        })
}

fn receipt() -> TypedFunction<ReceiptRequested, String> {
    Function::new("receipt").on::<ReceiptRequested>().handler(
        |ctx: Ctx<ReceiptRequested>, _step: Step| async move {
            Ok(format!("receipt for {}", ctx.event.data.order_id))
        },
    )
}

async fn harness() -> TestHarness {
    let tax = compute_tax();
    let functions: Vec<Function> = vec![tax.function(), checkout(tax).into(), receipt().into()];
    TestHarness::builder("typed-shop")
        .functions(functions)
        .start()
        .await
        .expect("harness")
}

/// The checkout run of `event_id`, once it waits for the payment (past the invoke).
async fn waiting_for_payment(h: &TestHarness, event_id: &str) -> String {
    let run = h.first_run_of(event_id).await;
    h.wait_until(&run.id, "to wait for the payment", |r| {
        r.is_paused() && r.steps.iter().any(|s| s.name == "wait-paid")
    })
    .await;
    run.id
}

fn order(id: &str) -> OrderCreated {
    OrderCreated {
        order_id: id.into(),
        total_cents: 1200,
    }
}

#[tokio::test]
async fn a_typed_order_runs_through_invoke_wait_and_send() {
    let h = harness().await;
    let event_id = h.send(order("ord_1")).await;
    let waiting = waiting_for_payment(&h, &event_id).await;
    // Another order's payment does not match the wait's `if`.
    h.send(PaymentSucceeded {
        order_id: "ord_2".into(),
        cents: 1,
    })
    .await;
    h.send(PaymentSucceeded {
        order_id: "ord_1".into(),
        cents: 1320,
    })
    .await;
    let run = h.wait_for_run(&waiting).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.error);
    let output = run.output.expect("output");
    assert_eq!(output["order"], "ord_1");
    assert_eq!(output["tax"], 120);
    assert_eq!(output["paid"], 1320);
    let receipt_id = output["receipt"][0].as_str().expect("a sent event id");
    let receipt = h.wait_for_run_of(receipt_id).await;
    assert_eq!(receipt.status, RunStatus::Completed);
    assert_eq!(receipt.output, Some(json!("receipt for ord_1")));
    assert_eq!(receipt.events[0]["name"], "shop/receipt.requested");
    assert_eq!(receipt.events[0]["data"], json!({ "order_id": "ord_1" }));
}

#[tokio::test]
async fn a_typed_cancel_stops_the_matching_run() {
    let h = harness().await;
    let event_id = h.send(order("ord_3")).await;
    let waiting = waiting_for_payment(&h, &event_id).await;
    h.send(OrderVoided {
        order_id: "ord_3".into(),
    })
    .await;
    let run = h.wait_for_run(&waiting).await;
    assert_eq!(run.status, RunStatus::Cancelled);
}

#[tokio::test]
async fn a_matched_event_of_the_wrong_shape_fails_the_run_without_retries() {
    let h = harness().await;
    let event_id = h.send(order("ord_4")).await;
    let waiting = waiting_for_payment(&h, &event_id).await;
    let bad = json!({ "order_id": "ord_4", "cents": "lots" });
    h.send(Event::new(PaymentSucceeded::NAME, bad)).await;
    let run = h.wait_for_run(&waiting).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.expect("error");
    assert_eq!(error.name, "DeserializationError");
    assert!(
        error.message.starts_with(
            "the awaited event does not match the expected type at `data.cents`: invalid type: string \"lots\", expected u64"
        ),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn trigger_data_of_the_wrong_shape_fails_the_run_without_retries() {
    let h = harness().await;
    let bad = json!({ "order_id": 7, "total_cents": 1200 });
    let event_id = h.send(Event::new(OrderCreated::NAME, bad)).await;
    let run = h.wait_for_run_of(&event_id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.requests, 1, "no retries");
    let error = run.error.expect("error");
    assert_eq!(error.name, "EventDecodeError");
    assert!(
        error
            .message
            .contains("at `data.order_id`: invalid type: integer `7`, expected a string"),
        "{}",
        error.message
    );
}
