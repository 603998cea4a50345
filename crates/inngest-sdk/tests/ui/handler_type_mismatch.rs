// A handler expecting `PaymentSucceeded` on a trigger of type `OrderCreated` does not compile.
use inngest_sdk::{Ctx, Event, Function, Step};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/order.created")]
struct OrderCreated {
    order_id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "shop/payment.succeeded")]
struct PaymentSucceeded {
    cents: u64,
}

fn main() {
    let _f = Function::new("checkout")
        .on::<OrderCreated>()
        .handler(|ctx: Ctx<PaymentSucceeded>, _step: Step| async move { Ok(ctx.event.data.cents) });
}
