//! The parse-once floor of an execution call, for an instruction counter: the same request body
//! as `profile_call` (N steps, N−1 memoized), read a fixed number of times by `serde_json` alone,
//! with nothing of the SDK around it. The difference between this and `profile_call` per call is
//! what the SDK costs on top of reading its input once.
//!
//! ```text
//! cargo build --release --example parse_floor
//! valgrind --tool=callgrind target/release/examples/parse_floor 100 110 skip    # validate only
//! valgrind --tool=callgrind target/release/examples/parse_floor 100 110 value   # into a Value
//! ```
//!
//! Arguments: N (default 100), the number of reads (default 200), and the mode: `skip` (validate
//! the body, `IgnoredAny`), `value` (a `serde_json::Value` tree) or `typed` (the body's `steps`
//! decoded straight into the workload's output type, the least a typed SDK must do).

use std::collections::HashMap;

use serde::Deserialize;

#[allow(dead_code)]
#[path = "bench_app.rs"]
mod bench_app;
#[path = "loadgen.rs"]
mod loadgen;

/// One memoized step as the typed reading sees it.
#[derive(Deserialize)]
struct Memoized {
    data: bench_app::StepOutput,
}

/// The request body, typed: what a typed SDK must decode at the least (the event and `ctx` are
/// only validated).
#[derive(Deserialize)]
struct Body {
    steps: HashMap<String, Memoized>,
    #[serde(rename = "event")]
    _event: serde::de::IgnoredAny,
    #[serde(rename = "ctx")]
    _ctx: serde::de::IgnoredAny,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let reads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let mode = args.next().unwrap_or_else(|| "skip".to_owned());
    if !["skip", "value", "typed"].contains(&mode.as_str()) {
        eprintln!("usage: parse_floor [N] [reads] [skip|value|typed]; got mode {mode:?}");
        std::process::exit(2);
    }
    let body = loadgen::build_body(n, loadgen::Ids::Spec);
    let mut kept = 0usize;
    for _ in 0..reads {
        let text = std::str::from_utf8(std::hint::black_box(&body)).expect("utf-8");
        kept += match mode.as_str() {
            "skip" => serde_json::from_str::<serde::de::IgnoredAny>(text).map(|_| 1),
            "value" => serde_json::from_str::<serde_json::Value>(text)
                .map(|v| v.as_object().map_or(0, |o| o.len())),
            _ => serde_json::from_str::<Body>(text)
                .map(|b| b.steps.values().map(|m| m.data.i as usize).sum()),
        }
        .expect("the body parses");
    }
    println!("{} bytes, {reads} reads ({mode}), {kept}", body.len());
}
