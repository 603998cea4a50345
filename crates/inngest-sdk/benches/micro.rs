//! The per-call building blocks, each measured through the public API.
//!
//! * `step_id`: `step::hash_id` (hex SHA-1) of a first occurrence and of a repeat (`id:n`).
//! * `signature`: verification throughput (MB/s): a signed `POST ?probe=trust` through the
//!   `ServeHandler` (cloud mode) with bodies of 1 KB…16 MB — header parsing, the time window,
//!   HMAC-SHA256 over the body, constant-time compare, and the small signed reply. `hmac_sha256`
//!   is the bare `hmac` crate over the same bytes, the floor.
//! * `register`: the sync payload of an app with 100 functions. The `/fn/register` builder is
//!   crate-private, so this measures an in-band sync `PUT` through the `ServeHandler`, whose reply
//!   carries the same `functions` array: config → JSON for 100 functions, serialized.
//! * `send_events`: the request body of `Inngest::send_many` for 1 and 100 events. Its encoder
//!   (`client::encode_events`) is crate-private; `encode` re-does exactly its steps (to `Value`,
//!   default `data`, fill `ts`, `to_vec`) and `serde_json` is plain `serde_json::to_vec` of the
//!   events array, the floor.
//!
//! `cargo bench --bench micro`

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use hmac::Mac;
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{
    Cancel, Concurrency, Ctx, Debounce, Event, Function, Inngest, RateLimit, Step, Throttle,
    Trigger,
};
use serde_json::{json, Value};

#[path = "../examples/loadgen.rs"]
mod loadgen;

const KEY: &str = "signkey-test-8ee2262a15e8d3c42d6a840db7af3de2aab08ef632b32a37a687f24b34dba3ff";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn step_id(c: &mut Criterion) {
    let mut g = c.benchmark_group("step_id");
    g.bench_function("hash_id/s42", |b| {
        b.iter(|| inngest_sdk::step::hash_id(std::hint::black_box("s42")))
    });
    let long = "send-the-welcome-email-to-the-new-user";
    g.bench_function("hash_id/38-char id", |b| {
        b.iter(|| inngest_sdk::step::hash_id(std::hint::black_box(long)))
    });
    g.bench_function("hash_id/repeat (format id:n + hash)", |b| {
        let mut n = 0u32;
        b.iter(|| {
            n = n.wrapping_add(1);
            inngest_sdk::step::hash_id(&format!("{}:{n}", std::hint::black_box("s42")))
        })
    });
    g.finish();
}

fn noop_function(id: &str) -> Function {
    Function::new(id)
        .trigger(Trigger::event("bench/noop"))
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(()) })
}

fn signature(c: &mut Criterion) {
    let client = Inngest::builder("bench-app")
        .dev(false)
        .signing_key(KEY)
        .build()
        .unwrap();
    let handler = ServeHandler::new(&client, [noop_function("noop")]).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hmac_key = KEY.split_once("test-").unwrap().1.as_bytes().to_vec();
    let mut g = c.benchmark_group("signature");
    for (label, size) in [
        ("1KB", 1usize << 10),
        ("200KB", 200 << 10),
        ("1MB", 1 << 20),
        ("16MB", 16 << 20),
    ] {
        let body = Bytes::from(vec![b'x'; size]);
        let req = |body: &Bytes| {
            http::Request::builder()
                .method("POST")
                .uri("/api/inngest?probe=trust")
                .header("x-inngest-signature", loadgen::sign(KEY, body, now()))
                .body(body.clone())
                .unwrap()
        };
        let res = rt.block_on(handler.handle(req(&body)));
        assert_eq!(res.status(), 200, "{:?}", res.body());
        g.throughput(Throughput::Bytes(size as u64));
        if size > 1 << 20 {
            g.sample_size(10).measurement_time(Duration::from_secs(3));
        }
        g.bench_with_input(BenchmarkId::new("verify", label), &body, |b, body| {
            b.to_async(&rt)
                .iter_batched(|| req(body), |r| handler.handle(r), BatchSize::SmallInput)
        });
        g.bench_with_input(BenchmarkId::new("hmac_sha256", label), &body, |b, body| {
            b.iter(|| {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&hmac_key).unwrap();
                mac.update(body);
                mac.update(b"1718000000");
                mac.finalize().into_bytes()
            })
        });
    }
    g.finish();
}

/// Function `i` of the register benchmark: a mix of the options real apps use.
fn configured_function(i: usize) -> Function {
    let mut f = Function::new(format!("fn-{i}"))
        .name(format!("Function number {i}"))
        .trigger(Trigger::event(format!("bench/event.{i}")))
        .retries((i % 10) as u32);
    if i.is_multiple_of(2) {
        f = f.concurrency(Concurrency::new(5).key("event.data.user_id"));
    }
    if i.is_multiple_of(3) {
        f = f.trigger(Trigger::cron("0 */2 * * *"));
    }
    if i.is_multiple_of(4) {
        f = f.throttle(Throttle::new(10, Duration::from_secs(60)).burst(2));
    }
    if i.is_multiple_of(5) {
        f = f.rate_limit(RateLimit::new(100, Duration::from_secs(3600)).key("event.data.org"));
    }
    if i.is_multiple_of(6) {
        f = f.debounce(Debounce::new(Duration::from_secs(30)).key("event.data.id"));
    }
    if i.is_multiple_of(7) {
        f = f.cancel_on(Cancel::new("bench/cancelled").matching("data.id"));
    }
    f.handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(()) })
}

fn register(c: &mut Criterion) {
    let client = Inngest::builder("bench-app")
        .dev(true)
        .allow_in_band_sync(true)
        .build()
        .unwrap();
    let handler = ServeHandler::new(&client, (0..100).map(configured_function)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = Bytes::from_static(br#"{"url":"http://127.0.0.1:3000/api/inngest"}"#);
    let req = || {
        http::Request::builder()
            .method("PUT")
            .uri("/api/inngest")
            .header("x-inngest-sync-kind", "in_band")
            .body(body.clone())
            .unwrap()
    };
    let res = rt.block_on(handler.handle(req()));
    let v: Value = serde_json::from_slice(res.body()).unwrap();
    assert_eq!(res.status(), 200, "{v}");
    assert_eq!(v["functions"].as_array().map(Vec::len), Some(100), "{v}");
    let mut g = c.benchmark_group("register");
    g.throughput(Throughput::Bytes(res.body().len() as u64));
    g.bench_function("in_band_sync/100 functions", |b| {
        b.to_async(&rt)
            .iter_batched(req, |r| handler.handle(r), BatchSize::SmallInput)
    });
    g.finish();
}

/// The same steps as the client's private encoder: validate, to `Value`, default `data`, fill
/// `ts`, serialize the array.
fn encode(events: &[Event<Value>], now_ms: i64) -> Vec<u8> {
    let mut array = Vec::with_capacity(events.len());
    for event in events {
        assert!(!event.name.is_empty());
        let mut value = serde_json::to_value(event).unwrap();
        let object = value.as_object_mut().unwrap();
        match object.get("data") {
            None | Some(Value::Null) => {
                object.insert("data".into(), json!({}));
            }
            _ => {}
        }
        object.entry("ts").or_insert_with(|| now_ms.into());
        array.push(value);
    }
    serde_json::to_vec(&array).unwrap()
}

fn send_events(c: &mut Criterion) {
    let event = |i: usize| {
        Event::new(
            "shop/order.created",
            json!({ "order_id": format!("ord_{i}"), "amount": 1200 + i, "currency": "EUR",
                    "items": [{ "sku": "tee-black-m", "qty": 2 }, { "sku": "mug", "qty": 1 }],
                    "customer": { "id": format!("cus_{i}"), "email": "someone@example.com" } }),
        )
        .with_id(format!("ord_{i}-created"))
    };
    let mut g = c.benchmark_group("send_events");
    for count in [1usize, 100] {
        let events: Vec<Event<Value>> = (0..count).map(event).collect();
        g.throughput(Throughput::Elements(count as u64));
        g.bench_with_input(BenchmarkId::new("encode", count), &events, |b, events| {
            b.iter(|| encode(events, 1_718_000_000_000))
        });
        g.bench_with_input(
            BenchmarkId::new("serde_json", count),
            &events,
            |b, events| b.iter(|| serde_json::to_vec(events).unwrap()),
        );
    }
    g.finish();
}

criterion_group! {
    name = micro;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = step_id, signature, register, send_events
}
criterion_main!(micro);
