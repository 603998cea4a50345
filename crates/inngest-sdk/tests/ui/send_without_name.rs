// Sending a type with no event name bound to it does not compile.
use inngest_sdk::Inngest;
use serde::Serialize;

#[derive(Serialize)]
struct Untagged {
    order_id: String,
}

async fn send(client: &Inngest) {
    let _ = client.send(Untagged { order_id: "o1".into() }).await;
}

fn main() {
    let _ = send;
}
