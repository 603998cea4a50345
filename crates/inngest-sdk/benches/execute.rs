//! Execution calls of the `chain` workload (`examples/bench_app.rs`): N−1 steps memoized, the Nth
//! executed, answered with one `206 StepRun`.
//!
//! * `execute/oneshot/{dev,signed}/N`: through the axum `Router` in-process (`tower::ServiceExt::oneshot`).
//! * `execute/loopback/{dev,signed}/N`: over HTTP/1.1 on 127.0.0.1 (one keep-alive connection).
//! * `execute_large/{oneshot,loopback}/{dev,signed}/{1MB,16MB}`: N = 100 with 1 MB / 16 MB of memoized
//!   state (large `payload` strings in each step's output).
//!
//! `signed` serves in cloud mode with a signing key: every request is signed with a fresh `t`
//! (outside the timed section) and verified by the SDK (HMAC-SHA256 over the whole body); the
//! response is signed too. `dev` checks nothing.
//!
//! `cargo bench --bench execute`

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use http_body_util::BodyExt;
use inngest_sdk::{serve, Inngest};
use tower::ServiceExt;

#[allow(dead_code)]
#[path = "../examples/bench_app.rs"]
mod bench_app;
#[path = "../examples/loadgen.rs"]
mod loadgen;

const KEY: &str = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";
const PATH: &str = "/api/inngest?fnId=bench-app-chain&stepId=step";

fn router(signed: bool) -> axum::Router {
    let builder = Inngest::builder("bench-app");
    let builder = if signed {
        builder.dev(false).signing_key(KEY)
    } else {
        builder.dev(true)
    };
    let client = builder.build().expect("client");
    serve::axum::router(&client, [bench_app::chain(1000)]).expect("router")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn request(body: &Bytes, signed: bool) -> http::Request<Body> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(PATH)
        .header("content-type", "application/json");
    if signed {
        req = req.header("x-inngest-signature", loadgen::sign(KEY, body, now()));
    }
    req.body(Body::from(body.clone())).expect("request")
}

async fn call(router: &axum::Router, req: http::Request<Body>) -> (u16, Bytes) {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, body)
}

/// A body of `n` steps whose memoized outputs total about `state_bytes`.
fn large_body(n: usize, state_bytes: usize) -> Vec<u8> {
    let per_step = state_bytes / (n - 1);
    let payload = "x".repeat(per_step.saturating_sub(60));
    loadgen::build_body_with(
        n,
        loadgen::Ids::Spec,
        |i| serde_json::json!({ "data": { "i": i, "label": format!("step output {i}"), "payload": payload } }),
    )
}

fn check(reply: (u16, Bytes), n: usize) {
    let reply = loadgen::Reply {
        status: reply.0,
        body: reply.1.to_vec(),
    };
    if let Err(e) = loadgen::check_step_run(&reply, n, loadgen::Ids::Spec) {
        panic!("N={n}: {e}");
    }
}

struct Server {
    target: Arc<loadgen::Target>,
}

fn serve_loopback(rt: &tokio::runtime::Runtime, signed: bool) -> Server {
    let app = router(signed);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move { axum::serve(listener, app).await });
    let target = loadgen::Target::new(&format!("http://{addr}/api/inngest"), "bench-app-chain")
        .expect("target");
    Server {
        target: Arc::new(target),
    }
}

fn bench_oneshot(c: &mut Criterion, group_name: &str, cases: &[(String, usize, Bytes)]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(group_name);
    for signed in [false, true] {
        let r = router(signed);
        let mode = if signed { "signed" } else { "dev" };
        for (label, n, body) in cases {
            check(rt.block_on(call(&r, request(body, signed))), *n);
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::new(mode, label), body, |b, body| {
                b.to_async(&rt).iter_batched(
                    || request(body, signed),
                    |req| call(&r, req),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

fn bench_loopback(c: &mut Criterion, group_name: &str, cases: &[(String, usize, Bytes)]) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group(group_name);
    for signed in [false, true] {
        let server = serve_loopback(&rt, signed);
        let mode = if signed { "signed" } else { "dev" };
        for (label, n, body) in cases {
            let key = signed.then_some(KEY);
            let reply = rt
                .block_on(loadgen::probe(server.target.clone(), body, key))
                .expect("loopback call");
            check((reply.status, Bytes::from(reply.body)), *n);
            // One keep-alive connection, taken out for each call (criterion runs one at a time).
            let conn = std::cell::Cell::new(Some(loadgen::Conn::new(server.target.clone())));
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::new(mode, label), body, |b, body| {
                b.to_async(&rt).iter_batched(
                    || key.map(|k| loadgen::sign(k, body, now())),
                    |sig| {
                        let conn = &conn;
                        async move {
                            let mut c = conn.take().expect("connection");
                            let reply = c.post(body, sig.as_deref()).await.expect("loopback call");
                            conn.set(Some(c));
                            reply.status
                        }
                    },
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

fn chain_cases() -> Vec<(String, usize, Bytes)> {
    [1usize, 10, 100, 1000]
        .into_iter()
        .map(|n| {
            (
                n.to_string(),
                n,
                Bytes::from(loadgen::build_body(n, loadgen::Ids::Spec)),
            )
        })
        .collect()
}

fn large_cases() -> Vec<(String, usize, Bytes)> {
    [("1MB", 1usize << 20), ("16MB", 16 << 20)]
        .into_iter()
        .map(|(label, size)| (label.to_owned(), 100, Bytes::from(large_body(100, size))))
        .collect()
}

fn execute(c: &mut Criterion) {
    let cases = chain_cases();
    bench_oneshot(c, "execute/oneshot", &cases);
    bench_loopback(c, "execute/loopback", &cases);
}

fn execute_large(c: &mut Criterion) {
    let cases = large_cases();
    bench_oneshot(c, "execute_large/oneshot", &cases);
    bench_loopback(c, "execute_large/loopback", &cases);
}

criterion_group! {
    name = small;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = execute
}
criterion_group! {
    name = large;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    targets = execute_large
}
criterion_main!(small, large);
