//! The cost of middleware on a replay: the `chain` workload (`examples/bench_app.rs`) at N = 100
//! (99 memoized steps replayed, the 100th executed, answered `206 StepRun`), through the axum
//! `Router` in-process, with no middleware and with three no-op middlewares on the client.
//!
//! `cargo bench --bench middleware`

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http_body_util::BodyExt;
use inngest_sdk::{serve, Inngest, Middleware};
use tower::ServiceExt;

#[allow(dead_code)]
#[path = "../examples/bench_app.rs"]
mod bench_app;
#[path = "../examples/loadgen.rs"]
mod loadgen;

const PATH: &str = "/api/inngest?fnId=bench-app-chain&stepId=step";
const STEPS: usize = 100;

/// A middleware that overrides nothing: every hook is the default no-op.
struct Noop;

impl Middleware for Noop {}

fn router(middleware: usize) -> axum::Router {
    let mut builder = Inngest::builder("bench-app").dev(true);
    for _ in 0..middleware {
        builder = builder.middleware(Noop);
    }
    let client = builder.build().expect("client");
    serve::axum::router(&client, [bench_app::chain(1000)]).expect("router")
}

fn request(body: &Bytes) -> http::Request<Body> {
    http::Request::builder()
        .method("POST")
        .uri(PATH)
        .header("content-type", "application/json")
        .body(Body::from(body.clone()))
        .expect("request")
}

async fn call(router: &axum::Router, body: &Bytes) -> (u16, Bytes) {
    let res = router
        .clone()
        .oneshot(request(body))
        .await
        .expect("infallible");
    let status = res.status().as_u16();
    (
        status,
        res.into_body().collect().await.expect("body").to_bytes(),
    )
}

fn replay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = Bytes::from(loadgen::build_body(STEPS, loadgen::Ids::Spec));
    let mut group = c.benchmark_group("middleware/replay100");
    for (label, count) in [("none", 0), ("three-noop", 3)] {
        let r = router(count);
        let (status, reply) = rt.block_on(call(&r, &body));
        let reply = loadgen::Reply {
            status,
            body: reply.to_vec(),
        };
        if let Err(e) = loadgen::check_step_run(&reply, STEPS, loadgen::Ids::Spec) {
            panic!("{label}: {e}");
        }
        group.bench_function(label, |b| {
            b.to_async(&rt).iter_batched(
                || body.clone(),
                |body| {
                    let r = &r;
                    async move { call(r, &body).await }
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    targets = replay
}
criterion_main!(benches);
