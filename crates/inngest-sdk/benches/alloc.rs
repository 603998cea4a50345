//! Memory per execution call, counted by a global allocator: bytes allocated, allocations, and
//! the peak of live heap above what was live before the call (the request body itself is
//! allocated before the call and not counted).
//!
//! * `chain` decodes every memoized output into its `StepOutput` (the user's own copy of the
//!   data, inherent to any SDK), so its allocations include ≈ 1× the state in user values.
//! * `skim` is the same chain with outputs decoded as `IgnoredAny`: what is left is the SDK's own
//!   overhead (the parsed request structures, step ids, ops, the response).
//!
//! Not a criterion benchmark: it prints a table. `cargo bench --bench alloc`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use axum::body::Body;
use bytes::Bytes;
use http_body_util::BodyExt;
use inngest_sdk::{serve, Ctx, Function, Inngest, Step, Trigger};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

#[allow(dead_code)]
#[path = "../examples/bench_app.rs"]
mod bench_app;
#[path = "../examples/loadgen.rs"]
mod loadgen;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Relaxed) + by;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            ALLOCATED.fetch_add(new_size, Relaxed);
            ALLOCS.fetch_add(1, Relaxed);
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const KEY: &str = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";

/// A step output that is never materialized.
struct Ignored;

impl Serialize for Ignored {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de> Deserialize<'de> for Ignored {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Ignored)
    }
}

fn skim(steps: u32) -> Function {
    Function::new("skim")
        .trigger(Trigger::event("bench/skim"))
        .handler(move |_ctx: Ctx<serde_json::Value>, step: Step| async move {
            for i in 0..steps {
                let _: Ignored = step.run(&format!("s{i}"), || async { Ok(Ignored) }).await?;
            }
            Ok(())
        })
}

fn router(signed: bool) -> axum::Router {
    let builder = Inngest::builder("bench-app");
    let builder = if signed {
        builder.dev(false).signing_key(KEY)
    } else {
        builder.dev(true)
    };
    let client = builder.build().expect("client");
    serve::axum::router(&client, [bench_app::chain(1000), skim(1000)]).expect("router")
}

fn large_body(n: usize, state_bytes: usize) -> Vec<u8> {
    let per_step = state_bytes / (n - 1);
    let payload = "x".repeat(per_step.saturating_sub(60));
    loadgen::build_body_with(
        n,
        loadgen::Ids::Spec,
        |i| serde_json::json!({ "data": { "i": i, "label": format!("step output {i}"), "payload": payload } }),
    )
}

struct Measured {
    allocated: usize,
    allocs: usize,
    peak_above_start: usize,
    status: u16,
}

async fn measure(router: &axum::Router, fn_id: &str, body: &Bytes, signed: bool) -> Measured {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("/api/inngest?fnId=bench-app-{fn_id}&stepId=step"));
    if signed {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        req = req.header("x-inngest-signature", loadgen::sign(KEY, body, t));
    }
    let req = req.body(Body::from(body.clone())).unwrap();
    let router = router.clone();
    let start_live = LIVE.load(Relaxed);
    PEAK.store(start_live, Relaxed);
    let a0 = ALLOCATED.load(Relaxed);
    let c0 = ALLOCS.load(Relaxed);
    let res = router.oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let out = res.into_body().collect().await.unwrap().to_bytes();
    drop(out);
    Measured {
        allocated: ALLOCATED.load(Relaxed) - a0,
        allocs: ALLOCS.load(Relaxed) - c0,
        peak_above_start: PEAK.load(Relaxed).saturating_sub(start_live),
        status,
    }
}

fn human(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.2} MB", bytes as f64 / (1 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut cases: Vec<(String, usize, Bytes)> = [1usize, 10, 100, 1000]
        .into_iter()
        .map(|n| {
            (
                format!("N={n}"),
                n,
                Bytes::from(loadgen::build_body(n, loadgen::Ids::Spec)),
            )
        })
        .collect();
    for (label, size) in [("1 MB", 1usize << 20), ("16 MB", 16 << 20)] {
        cases.push((
            format!("N=100, {label} state"),
            100,
            Bytes::from(large_body(100, size)),
        ));
    }
    println!("| call | fn | mode | body | allocated | allocations | peak live above start | peak / body |");
    println!("|---|---|---|---|---|---|---|---|");
    for signed in [false, true] {
        let r = router(signed);
        for (label, _n, body) in &cases {
            for fn_id in ["chain", "skim"] {
                // Warm up (lazy statics, connection-free router internals), then measure.
                rt.block_on(measure(&r, fn_id, body, signed));
                let m = rt.block_on(measure(&r, fn_id, body, signed));
                assert_eq!(m.status, 206, "{label} {fn_id}");
                println!(
                    "| {label} | {fn_id} | {} | {} | {} | {} | {} | {:.2} |",
                    if signed { "signed" } else { "dev" },
                    human(body.len()),
                    human(m.allocated),
                    m.allocs,
                    human(m.peak_above_start),
                    m.peak_above_start as f64 / body.len() as f64
                );
            }
        }
    }
}
