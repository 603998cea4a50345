// Invoking a typed function with another input type does not compile.
use inngest_sdk::{Ctx, Event, Function, Step, TypedFunction};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/tax.requested")]
struct TaxInput {
    cents: u64,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
struct OrderCreated {
    order_id: String,
}

fn tax() -> TypedFunction<TaxInput, u64> {
    Function::new("tax")
        .on::<TaxInput>()
        .handler(|ctx: Ctx<TaxInput>, _step: Step| async move { Ok(ctx.event.data.cents / 10) })
}

async fn checkout(step: Step) -> Result<u64, inngest_sdk::StepError> {
    let order = OrderCreated { order_id: "o1".into() };
    step.invoke("tax", &tax(), order).await
}

fn main() {
    let _ = checkout;
}
