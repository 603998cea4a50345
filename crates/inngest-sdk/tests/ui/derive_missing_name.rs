// `#[derive(Event)]` without a name, or with a malformed one, is a compile error at the spot.
use inngest_sdk::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
struct NoName {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = 42)]
struct NotAString {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(name = "inngest/function.failed")]
struct Reserved {
    id: String,
}

#[derive(Serialize, Deserialize, Event)]
#[event(nme = "a/b")]
struct Typo {
    id: String,
}

fn main() {}
