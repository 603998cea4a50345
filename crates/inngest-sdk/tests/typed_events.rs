//! Typed events end to end through `serve::axum::router`: one definition binds each event's name
//! to its data type, and triggers, `if` expressions, cancels, waits, invokes and failure handlers
//! all take the type. Hand-built execution requests check the wire (names, expressions, data)
//! and the strict decoding of trigger data, matched events and invoke results.

mod support;

use std::time::Duration;

use axum::body::Body;
use inngest_sdk::step::hash_id;
use inngest_sdk::{
    serve, Cancel, Ctx, Event, EventSet, EventType, Function, FunctionFailed, Inngest, IntoEvent,
    IntoEvents, Step, TypedFunction, WaitFor,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use support::Reply;

const APP: &str = "typed-app";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
struct OrderCreated {
    order_id: String,
    total_cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "shop/payment.succeeded")]
struct PaymentSucceeded {
    order_id: String,
    cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "shop/order.voided")]
struct OrderVoided {
    order_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(name = "shop/tax.requested")]
struct TaxInput {
    cents: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TaxOutput {
    tax_cents: u64,
}

#[derive(Debug, EventSet)]
enum ShopEvent {
    Created(OrderCreated),
    Paid(PaymentSucceeded),
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
        .cancel_on(Cancel::on::<OrderVoided>().matching("data.order_id"))
        .on_failure(
            |ctx: Ctx<FunctionFailed<OrderCreated>>, _step: Step| async move {
                Ok(json!({ "failed_order": ctx.event.data.event.data.order_id }))
            },
        )
        .handler(move |ctx: Ctx<OrderCreated>, step: Step| {
            let tax = tax.clone();
            async move {
                let order = ctx.event.data;
                let input = TaxInput {
                    cents: order.total_cents,
                };
                let out: TaxOutput = step.invoke("tax", &tax, input).await?;
                let paid = step
                    .wait_for_event::<PaymentSucceeded>(
                        "wait-paid",
                        WaitFor::new(Duration::from_secs(3600)).matching("data.order_id"),
                    )
                    .await?;
                let paid: Option<Event<PaymentSucceeded>> = paid;
                Ok(json!({
                    "order": order.order_id,
                    "tax": out.tax_cents,
                    "paid": paid.map(|e| e.data.cents),
                }))
            }
        })
}

fn shop() -> TypedFunction<ShopEvent, Value> {
    Function::new("shop").on_any::<ShopEvent>().handler(
        |ctx: Ctx<ShopEvent>, _step: Step| async move {
            Ok(match ctx.event.data {
                ShopEvent::Created(c) => json!({ "created": c.order_id }),
                ShopEvent::Paid(p) => json!({ "paid": p.cents }),
            })
        },
    )
}

fn router() -> axum::Router {
    let client = Inngest::builder(APP).dev(true).build().expect("client");
    let tax = compute_tax();
    let functions: Vec<Function> = vec![tax.function(), checkout(tax).into(), shop().into()];
    serve::axum::router(&client, functions).expect("router")
}

/// An execution request for `fn_id` with this triggering event and memoized steps.
fn request(fn_id: &str, event: Value, steps: Value) -> http::Request<Body> {
    support::exec_request(APP, fn_id, event, steps)
}

fn event(name: &str, data: Value) -> Value {
    json!({
        "data": data,
        "id": "01HZX9W9R1S2T3U4V5W6X7Y8Z9",
        "name": name,
        "ts": 1_718_000_000_000i64,
        "user": {}
    })
}

fn order_created() -> Value {
    event(
        OrderCreated::NAME,
        json!({ "order_id": "ord_1", "total_cents": 1200 }),
    )
}

async fn call(req: http::Request<Body>) -> Reply {
    support::call(router(), req).await
}

/// The register payload of the app, from an in-band sync.
async fn register_payload() -> Value {
    let req = http::Request::builder()
        .method("PUT")
        .uri("/api/inngest")
        .header("content-type", "application/json")
        .header("x-inngest-sync-kind", "in_band")
        .body(Body::from(r#"{"url":"http://127.0.0.1:3000/api/inngest"}"#))
        .expect("request");
    let reply = call(req).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

fn function<'a>(payload: &'a Value, id: &str) -> &'a Value {
    let functions = payload["functions"].as_array().expect("functions");
    functions
        .iter()
        .find(|f| f["id"] == format!("{APP}-{id}"))
        .unwrap_or_else(|| panic!("no function {id} in {payload}"))
}

#[tokio::test]
async fn typed_triggers_register_their_names_if_and_cancel() {
    let payload = register_payload().await;
    let checkout = function(&payload, "checkout");
    assert_eq!(
        checkout["triggers"],
        json!([{ "event": "shop/order.created", "expression": "event.data.total_cents > 0" }])
    );
    assert_eq!(
        checkout["cancel"],
        json!([{ "event": "shop/order.voided", "if": "event.data.order_id == async.data.order_id" }])
    );
    assert_eq!(
        function(&payload, "shop")["triggers"],
        json!([{ "event": "shop/order.created" }, { "event": "shop/payment.succeeded" }])
    );
    assert_eq!(
        function(&payload, "compute-tax")["triggers"],
        json!([{ "event": "shop/tax.requested" }])
    );
}

#[tokio::test]
async fn typed_invoke_reports_the_function_and_typed_input() {
    let reply = call(request("checkout", order_created(), json!({}))).await;
    assert_eq!(reply.status, 206, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!([{
            "id": hash_id("tax"),
            "op": "InvokeFunction",
            "data": null,
            "name": "tax",
            "displayName": "tax",
            "userland": { "id": "tax" },
            "opts": {
                "function_id": "typed-app-compute-tax",
                "payload": { "data": { "cents": 1200 } }
            }
        }])
    );
}

#[tokio::test]
async fn typed_wait_reports_the_event_name_and_if() {
    let steps = json!({ hash_id("tax"): { "data": { "tax_cents": 120 } } });
    let reply = call(request("checkout", order_created(), steps)).await;
    assert_eq!(reply.status, 206, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!([{
            "id": hash_id("wait-paid"),
            "op": "WaitForEvent",
            "data": null,
            "name": "wait-paid",
            "displayName": "wait-paid",
            "userland": { "id": "wait-paid" },
            "opts": {
                "event": "shop/payment.succeeded",
                "if": "event.data.order_id == async.data.order_id",
                "timeout": "1h"
            }
        }])
    );
}

#[tokio::test]
async fn typed_wait_and_invoke_results_decode_into_their_types() {
    let paid = event(
        PaymentSucceeded::NAME,
        json!({ "order_id": "ord_1", "cents": 1320 }),
    );
    let steps = json!({
        hash_id("tax"): { "data": { "tax_cents": 120 } },
        hash_id("wait-paid"): paid,
    });
    let reply = call(request("checkout", order_created(), steps)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "order": "ord_1", "tax": 120, "paid": 1320 })
    );
    let steps = json!({
        hash_id("tax"): { "data": { "tax_cents": 120 } },
        hash_id("wait-paid"): null,
    });
    let reply = call(request("checkout", order_created(), steps)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "order": "ord_1", "tax": 120, "paid": null })
    );
}

#[tokio::test]
async fn trigger_data_of_the_wrong_shape_fails_without_retry_naming_the_field() {
    let bad = event(
        OrderCreated::NAME,
        json!({ "order_id": 7, "total_cents": 1200 }),
    );
    let reply = call(request("checkout", bad, json!({}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.no_retry.as_deref(), Some("true"));
    assert_eq!(
        reply.body,
        json!({
            "name": "EventDecodeError",
            "message": "the event does not match the function's event type at `data.order_id`: invalid type: integer `7`, expected a string at line 1 column 21"
        })
    );
}

#[tokio::test]
async fn a_matched_event_of_the_wrong_shape_fails_without_retry_naming_the_field() {
    let paid = event(
        PaymentSucceeded::NAME,
        json!({ "order_id": "ord_1", "cents": "lots" }),
    );
    let steps = json!({
        hash_id("tax"): { "data": { "tax_cents": 120 } },
        hash_id("wait-paid"): paid,
    });
    let reply = call(request("checkout", order_created(), steps)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.no_retry.as_deref(), Some("true"));
    assert_eq!(
        reply.body,
        json!({
            "name": "DeserializationError",
            "message": "the awaited event does not match the expected type at `data.cents`: invalid type: string \"lots\", expected u64 at line 1 column 23"
        })
    );
}

#[tokio::test]
async fn an_invoke_result_of_the_wrong_shape_fails_without_retry_naming_the_field() {
    let steps = json!({ hash_id("tax"): { "data": { "tax_cents": "ten" } } });
    let reply = call(request("checkout", order_created(), steps)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.no_retry.as_deref(), Some("true"));
    assert_eq!(
        reply.body,
        json!({
            "name": "DeserializationError",
            "message": "step output does not match the expected type at `tax_cents`: invalid type: string \"ten\", expected u64 at line 1 column 18"
        })
    );
}

#[tokio::test]
async fn an_invoked_typed_function_decodes_its_input() {
    let invoked = event(
        "inngest/function.invoked",
        json!({ "cents": 1200, "_inngest": { "source_fn_id": "x" } }),
    );
    let reply = call(request("compute-tax", invoked, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({ "tax_cents": 120 }));
}

#[tokio::test]
async fn an_event_set_dispatches_on_the_event_name() {
    let reply = call(request("shop", order_created(), json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({ "created": "ord_1" }));
    let paid = event(
        PaymentSucceeded::NAME,
        json!({ "order_id": "ord_1", "cents": 5 }),
    );
    let reply = call(request("shop", paid, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({ "paid": 5 }));
}

#[tokio::test]
async fn an_event_set_refuses_unknown_names_and_names_bad_fields() {
    let other = event("shop/other", json!({}));
    let reply = call(request("shop", other, json!({}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.no_retry.as_deref(), Some("true"));
    assert_eq!(
        reply.body,
        json!({
            "name": "EventDecodeError",
            "message": "the event does not match the function's event types: event \"shop/other\" is none of [\"shop/order.created\", \"shop/payment.succeeded\"]"
        })
    );
    let bad = event(PaymentSucceeded::NAME, json!({ "order_id": "o" }));
    let reply = call(request("shop", bad, json!({}))).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        json!({
            "name": "EventDecodeError",
            "message": "the event does not match the function's event type at `data`: missing field `cents`"
        })
    );
}

#[tokio::test]
async fn on_failure_receives_the_original_typed_event() {
    let failed = event(
        "inngest/function.failed",
        json!({
            "function_id": "typed-app-checkout",
            "run_id": "01HZX9WB6E8KQ3N2A7C5D4F1GH",
            "error": { "name": "Error", "message": "boom" },
            "event": order_created(),
        }),
    );
    let reply = call(request("checkout-failure", failed, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, json!({ "failed_order": "ord_1" }));
}

#[test]
fn typed_events_encode_with_their_bound_names() {
    let created = OrderCreated {
        order_id: "ord_1".into(),
        total_cents: 1200,
    };
    let expected = Event::new(
        "shop/order.created",
        json!({ "order_id": "ord_1", "total_cents": 1200 }),
    );
    assert_eq!(created.clone().into_event().unwrap(), expected);
    let paid = PaymentSucceeded {
        order_id: "ord_1".into(),
        cents: 5,
    };
    let set = ShopEvent::Paid(paid.clone()).into_event().unwrap();
    assert_eq!(set, paid.into_event().unwrap());
    // Untyped events keep their explicit name and fields.
    let untyped = Event::new("a/b", json!({ "x": 1 })).with_id("i");
    assert_eq!((&untyped).into_event().unwrap(), untyped);
    let many = vec![created.clone(), created].into_events().unwrap();
    assert_eq!(many, vec![expected.clone(), expected]);
}

/// A hand-written binding, and the derive's `crate` option for a renamed SDK dependency.
mod bindings {
    extern crate inngest_sdk as sdk_alias;

    use inngest_sdk::{Event, EventType, IntoEvent};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Serialize, Deserialize)]
    struct ByHand {
        n: u32,
    }

    impl EventType for ByHand {
        const NAME: &'static str = "app/by-hand";
    }

    #[derive(Serialize, Deserialize, Event)]
    #[event(name = "app/renamed", crate = "sdk_alias")]
    struct Renamed {
        n: u32,
    }

    #[test]
    fn hand_written_and_renamed_crate_bindings_work() {
        let e = ByHand { n: 1 }.into_event().unwrap();
        assert_eq!(e, inngest_sdk::Event::new("app/by-hand", json!({ "n": 1 })));
        assert_eq!(<Renamed as sdk_alias::EventType>::NAME, "app/renamed");
    }
}
