//! Flow control applied by the local executor, through the TestHarness over real HTTP, on the
//! virtual clock: idempotency, rate limit, concurrency, debounce, batching, throttle,
//! singleton, timeouts and priority.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use inngest_executor::clock::Clock;
use inngest_executor::{RunStatus, RunView, SkipReason};
use inngest_sdk::function::FunctionBuilder;
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{
    BatchEvents, Concurrency, ConcurrencyScope, Ctx, Debounce, Event, Function, RateLimit,
    Singleton, SingletonMode, Step, Throttle, Timeouts, Trigger,
};
use serde_json::{json, Value};

const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);

/// A one-step function on `event` returning the event's `data.n` (and the batch's).
fn simple(id: &str, event: &str) -> FunctionBuilder {
    Function::new(id).trigger(Trigger::event(event))
}

fn echo(b: FunctionBuilder) -> Function {
    b.handler(|ctx: Ctx<Value>, step: Step| async move {
        let n = ctx.event.data["n"].clone();
        let all: Vec<Value> = ctx.events.iter().map(|e| e.data["n"].clone()).collect();
        let _: Value = step.run("work", || async { Ok(json!(1)) }).await?;
        Ok(json!({ "n": n, "all": all }))
    })
}

/// Sleeps an hour (so the run stays `Running`) then returns `data.n`.
fn sleeper(b: FunctionBuilder) -> Function {
    b.handler(|ctx: Ctx<Value>, step: Step| async move {
        step.sleep("nap", HOUR).await;
        Ok(ctx.event.data["n"].clone())
    })
}

fn ev(name: &str, data: Value) -> Event<Value> {
    Event::new(name, data)
}

fn offset(t0: chrono::DateTime<chrono::Utc>, run: &RunView) -> i64 {
    (run.started_at - t0).num_seconds()
}

// ------------------------------------------------------------------------------------------
// Idempotency and rate limit
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn idempotency_one_run_per_key_per_day_and_skips_are_recorded() {
    let f = echo(simple("pay", "shop/paid").idempotency("event.data.orderId"));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let a1 = h
        .send(ev("shop/paid", json!({"orderId": "A", "n": 1})))
        .await;
    let a2 = h
        .send(ev("shop/paid", json!({"orderId": "A", "n": 2})))
        .await;
    let b1 = h
        .send(ev("shop/paid", json!({"orderId": "B", "n": 3})))
        .await;
    assert_eq!(h.wait_for_run_of(&a1).await.output.unwrap()["n"], 1);
    assert_eq!(h.wait_for_run_of(&b1).await.output.unwrap()["n"], 3);
    assert!(h.executor().runs_for_event(&a2).is_empty());
    assert_eq!(h.executor().runs().len(), 2);
    let skipped = h.executor().skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].event_id, a2);
    assert_eq!(skipped[0].function_id, "app-pay");
    assert_eq!(skipped[0].reason, SkipReason::Idempotency);
    assert_eq!(skipped[0].key, "A");

    // Over REST too.
    let url = format!("{}/v1/events/{a2}/skips", h.executor_url());
    let body: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(body["data"][0]["reason"], "Idempotency");
    assert_eq!(body["data"][0]["function_id"], "app-pay");
    let body: Value = reqwest::get(format!("{}/v1/events/{a1}/skips", h.executor_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"], json!([]));

    // Still skipped just before 24 h, allowed after.
    h.advance(Duration::from_secs(86_400 - 1));
    let a3 = h
        .send(ev("shop/paid", json!({"orderId": "A", "n": 4})))
        .await;
    assert!(h.executor().runs_for_event(&a3).is_empty());
    h.advance(SEC);
    let a4 = h
        .send(ev("shop/paid", json!({"orderId": "A", "n": 5})))
        .await;
    assert_eq!(h.wait_for_run_of(&a4).await.output.unwrap()["n"], 5);
    assert_eq!(h.executor().runs().len(), 3);
    assert_eq!(h.executor().skipped().len(), 2);
}

#[tokio::test]
async fn rate_limit_drops_excess_events_per_key_and_period() {
    let f = echo(
        simple("rl", "rl/go")
            .rate_limit(RateLimit::new(2, Duration::from_secs(60)).key("event.data.user")),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let mut ids = Vec::new();
    for (n, user) in ["a", "a", "a", "b", "a"].iter().enumerate() {
        ids.push(h.send(ev("rl/go", json!({"user": user, "n": n}))).await);
    }
    let ran: Vec<usize> = (0..5)
        .filter(|i| !h.executor().runs_for_event(&ids[*i]).is_empty())
        .collect();
    assert_eq!(ran, [0, 1, 3]);
    let skipped = h.executor().skipped();
    assert_eq!(skipped.len(), 2);
    assert!(skipped
        .iter()
        .all(|s| s.reason == SkipReason::RateLimit && s.key == "a"));
    assert_eq!(skipped[0].event_id, ids[2]);
    assert_eq!(skipped[1].event_id, ids[4]);
    for i in [0, 1, 3] {
        assert_eq!(
            h.wait_for_run_of(&ids[i]).await.status,
            RunStatus::Completed
        );
    }
    // The window slides: 59 s later still full, 60 s later open again.
    h.advance(Duration::from_secs(59));
    let x = h.send(ev("rl/go", json!({"user": "a", "n": 9}))).await;
    assert!(h.executor().runs_for_event(&x).is_empty());
    h.advance(SEC);
    let y = h.send(ev("rl/go", json!({"user": "a", "n": 10}))).await;
    assert_eq!(h.wait_for_run_of(&y).await.status, RunStatus::Completed);
    assert_eq!(h.executor().runs().len(), 4);
}

// ------------------------------------------------------------------------------------------
// Concurrency
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Gauge {
    now: Mutex<HashMap<String, usize>>,
    max: Mutex<HashMap<String, usize>>,
    total_max: AtomicUsize,
}

impl Gauge {
    async fn measure(&self, key: &str) {
        {
            let mut now = self.now.lock().unwrap();
            *now.entry(key.to_owned()).or_default() += 1;
            let total: usize = now.values().sum();
            self.total_max.fetch_max(total, Ordering::SeqCst);
            let v = now[key];
            let mut max = self.max.lock().unwrap();
            let m = max.entry(key.to_owned()).or_default();
            *m = (*m).max(v);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        *self.now.lock().unwrap().get_mut(key).unwrap() -= 1;
    }

    fn max(&self, key: &str) -> usize {
        self.max.lock().unwrap().get(key).copied().unwrap_or(0)
    }
}

fn measured(id: &str, event: &str, c: Concurrency, gauge: Arc<Gauge>) -> Function {
    Function::new(id)
        .trigger(Trigger::event(event))
        .concurrency(c)
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let gauge = gauge.clone();
            async move {
                let user = ctx.event.data["user"].as_str().unwrap_or("").to_owned();
                for s in ["one", "two"] {
                    let (g, u) = (gauge.clone(), user.clone());
                    let _: Value = step
                        .run(s, move || async move {
                            g.measure(&u).await;
                            Ok(json!(s))
                        })
                        .await?;
                }
                Ok(json!(user))
            }
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_limits_in_flight_calls_per_function() {
    for limit in [1usize, 2] {
        let gauge = Arc::new(Gauge::default());
        let f = measured("c", "c/go", Concurrency::new(limit as u32), gauge.clone());
        let h = TestHarness::start("app", [f]).await.unwrap();
        let mut ids = Vec::new();
        for n in 0..4 {
            ids.push(h.send(ev("c/go", json!({"user": "u", "n": n}))).await);
        }
        for id in &ids {
            let run = h.wait_for_run_of(id).await;
            assert_eq!(run.status, RunStatus::Completed);
            assert_eq!(run.requests, 3);
        }
        assert_eq!(gauge.max("u"), limit, "limit {limit}");
        assert_eq!(gauge.total_max.load(Ordering::SeqCst), limit);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_scoped_concurrency_key_is_shared_across_functions() {
    let gauge = Arc::new(Gauge::default());
    let c = || {
        Concurrency::new(1)
            .key("event.data.user")
            .scope(ConcurrencyScope::Env)
    };
    let f1 = measured("f1", "u/act", c(), gauge.clone());
    let f2 = measured("f2", "u/act", c(), gauge.clone());
    let h = TestHarness::start("app", [f1, f2]).await.unwrap();
    let mut ids = Vec::new();
    for user in ["a", "b", "a", "b"] {
        ids.push(h.send(ev("u/act", json!({"user": user}))).await);
    }
    for id in &ids {
        let runs = h.wait_for_runs_of(id, 2).await;
        assert!(runs.iter().all(|r| r.status == RunStatus::Completed));
    }
    assert_eq!(h.executor().runs().len(), 8);
    // One call at a time per user across both functions; users a and b in parallel.
    assert_eq!(gauge.max("a"), 1);
    assert_eq!(gauge.max("b"), 1);
    assert_eq!(gauge.total_max.load(Ordering::SeqCst), 2);
}

// ------------------------------------------------------------------------------------------
// Debounce
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn debounce_runs_once_after_the_last_event_with_that_event() {
    let f = echo(
        simple("d", "d/go").debounce(Debounce::new(Duration::from_secs(10)).key("event.data.k")),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    let e1 = h.send(ev("d/go", json!({"k": "a", "n": 1}))).await;
    let other = h.send(ev("d/go", json!({"k": "b", "n": 9}))).await;
    h.advance(Duration::from_secs(5));
    let e2 = h.send(ev("d/go", json!({"k": "a", "n": 2}))).await;
    // t0+10: `b` fires; `a` was pushed back to t0+15.
    h.advance(Duration::from_secs(5));
    let rb = h.wait_for_run_of(&other).await;
    assert_eq!(offset(t0, &rb), 10);
    assert_eq!(rb.output.unwrap()["n"], 9);
    h.advance(Duration::from_secs(4));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.executor().runs_for_event(&e2).is_empty());
    h.advance(SEC);
    let run = h.wait_for_run_of(&e2).await;
    assert_eq!(offset(t0, &run), 15);
    assert_eq!(run.output, Some(json!({"n": 2, "all": [2]})));
    assert!(h.executor().runs_for_event(&e1).is_empty());
    assert_eq!(h.executor().runs().len(), 2);
    let skipped = h.executor().skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].event_id, e1);
    assert_eq!(skipped[0].reason, SkipReason::Debounced);
}

#[tokio::test]
async fn debounce_timeout_caps_the_delay() {
    let f = echo(
        simple("d", "d/go")
            .debounce(Debounce::new(Duration::from_secs(10)).timeout(Duration::from_secs(15))),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    h.send(ev("d/go", json!({"n": 1}))).await;
    h.advance(Duration::from_secs(8));
    let e2 = h.send(ev("d/go", json!({"n": 2}))).await;
    h.advance(Duration::from_secs(7));
    let run = h.wait_for_run_of(&e2).await;
    assert_eq!(offset(t0, &run), 15);
    assert_eq!(run.output.unwrap()["n"], 2);
    assert_eq!(h.executor().runs().len(), 1);
}

// ------------------------------------------------------------------------------------------
// Batching
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn batches_flush_at_max_size_or_timeout() {
    let f = echo(simple("b", "b/go").batch_events(BatchEvents::new(3, Duration::from_secs(5))));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    let mut ids = Vec::new();
    for n in 1..=4 {
        ids.push(h.send(ev("b/go", json!({"n": n}))).await);
    }
    let first = h.wait_for_run_of(&ids[0]).await;
    assert_eq!(first.output, Some(json!({"n": 1, "all": [1, 2, 3]})));
    assert_eq!(first.events.len(), 3);
    assert_eq!(first.events[2]["data"]["n"], 3);
    assert_eq!(offset(t0, &first), 0);
    // Every event of the batch lists the run.
    assert_eq!(h.executor().runs_for_event(&ids[2])[0].id, first.id);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(h.executor().runs_for_event(&ids[3]).is_empty());
    h.advance(Duration::from_secs(5));
    let second = h.wait_for_run_of(&ids[3]).await;
    assert_eq!(second.output, Some(json!({"n": 4, "all": [4]})));
    assert_eq!(offset(t0, &second), 5);
    assert_eq!(h.executor().runs().len(), 2);
}

#[tokio::test]
async fn batches_by_key_and_if() {
    let f = echo(
        simple("b", "b/go").batch_events(
            BatchEvents::new(2, Duration::from_secs(5))
                .key("event.data.g")
                .if_expr("event.data.ok == true"),
        ),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let x1 = h
        .send(ev("b/go", json!({"g": "x", "ok": true, "n": 1})))
        .await;
    let y1 = h
        .send(ev("b/go", json!({"g": "y", "ok": true, "n": 2})))
        .await;
    let solo = h
        .send(ev("b/go", json!({"g": "x", "ok": false, "n": 3})))
        .await;
    let x2 = h
        .send(ev("b/go", json!({"g": "x", "ok": true, "n": 4})))
        .await;
    let rx = h.wait_for_run_of(&x1).await;
    assert_eq!(rx.output, Some(json!({"n": 1, "all": [1, 4]})));
    assert_eq!(h.executor().runs_for_event(&x2)[0].id, rx.id);
    let rs = h.wait_for_run_of(&solo).await;
    assert_eq!(rs.output, Some(json!({"n": 3, "all": [3]})));
    h.advance(Duration::from_secs(5));
    let ry = h.wait_for_run_of(&y1).await;
    assert_eq!(ry.output, Some(json!({"n": 2, "all": [2]})));
    assert_eq!(h.executor().runs().len(), 3);
}

// ------------------------------------------------------------------------------------------
// Throttle and priority
// ------------------------------------------------------------------------------------------

async fn started_offsets(
    h: &TestHarness,
    ids: &[String],
    t0: chrono::DateTime<chrono::Utc>,
) -> Vec<i64> {
    let mut out = Vec::new();
    for id in ids {
        let run = h.wait_for_run_of(id).await;
        assert_eq!(run.status, RunStatus::Completed);
        out.push(offset(t0, &run));
    }
    out
}

/// Advances the clock `step` at a time, `times` times, letting due starts happen.
async fn tick(h: &TestHarness, step: Duration, times: usize) {
    for _ in 0..times {
        h.advance(step);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[tokio::test]
async fn throttle_queues_excess_starts_and_spreads_them() {
    let f = echo(simple("t", "t/go").throttle(Throttle::new(2, Duration::from_secs(60))));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(h.send(ev("t/go", json!({"n": n}))).await);
    }
    // Every run exists at once (queued); `limit` of them have started.
    h.wait_for_run_of(&ids[1]).await;
    for id in &ids[2..] {
        let r = &h.executor().runs_for_event(id)[0];
        assert_eq!((r.status, r.requests), (RunStatus::Running, 0));
    }
    tick(&h, Duration::from_secs(30), 3).await;
    assert_eq!(started_offsets(&h, &ids, t0).await, [0, 0, 30, 60, 90]);
    assert_eq!(h.executor().runs().len(), 5);
}

#[tokio::test]
async fn throttle_burst_starts_extra_runs_at_once() {
    let f = echo(simple("t", "t/go").throttle(Throttle::new(2, Duration::from_secs(60)).burst(2)));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(h.send(ev("t/go", json!({"n": n}))).await);
    }
    h.wait_for_run_of(&ids[3]).await;
    assert_eq!(h.executor().runs_for_event(&ids[4])[0].requests, 0);
    tick(&h, Duration::from_secs(30), 1).await;
    assert_eq!(started_offsets(&h, &ids, t0).await, [0, 0, 0, 0, 30]);
}

#[tokio::test]
async fn priority_orders_queued_starts() {
    let f = echo(
        simple("p", "p/go")
            .throttle(Throttle::new(1, Duration::from_secs(60)))
            .priority("event.data.vip == true ? 120 : 0"),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let t0 = h.clock().now();
    let first = h.send(ev("p/go", json!({"n": 0}))).await;
    let normal = h.send(ev("p/go", json!({"n": 1}))).await;
    let vip = h.send(ev("p/go", json!({"n": 2, "vip": true}))).await;
    h.wait_for_run_of(&first).await;
    tick(&h, Duration::from_secs(60), 2).await;
    assert_eq!(
        started_offsets(&h, &[first, vip, normal], t0).await,
        [0, 60, 120]
    );
}

// ------------------------------------------------------------------------------------------
// Singleton and timeouts
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn singleton_skip_drops_new_runs_while_one_runs() {
    let f = sleeper(
        simple("s", "s/go").singleton(Singleton::new(SingletonMode::Skip).key("event.data.k")),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let e1 = h.send(ev("s/go", json!({"k": "a", "n": 1}))).await;
    let r1 = h.wait_for_paused_run_of(&e1).await;
    let e2 = h.send(ev("s/go", json!({"k": "a", "n": 2}))).await;
    let other = h.send(ev("s/go", json!({"k": "b", "n": 3}))).await;
    assert!(h.executor().runs_for_event(&e2).is_empty());
    let ro = h.wait_for_paused_run_of(&other).await;
    let skipped = h.executor().skipped();
    assert_eq!(skipped.len(), 1);
    assert_eq!(
        (skipped[0].event_id.as_str(), skipped[0].reason),
        (e2.as_str(), SkipReason::Singleton)
    );
    h.advance(HOUR);
    assert_eq!(h.wait_for_run(&r1.id).await.output, Some(json!(1)));
    assert_eq!(h.wait_for_run(&ro.id).await.status, RunStatus::Completed);
    // Once it has finished, a new run starts.
    let e3 = h.send(ev("s/go", json!({"k": "a", "n": 4}))).await;
    h.wait_for_paused_run_of(&e3).await;
    assert_eq!(h.executor().runs().len(), 3);
}

#[tokio::test]
async fn singleton_cancel_replaces_the_running_run() {
    let f = sleeper(simple("s", "s/go").singleton(Singleton::new(SingletonMode::Cancel)));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let e1 = h.send(ev("s/go", json!({"n": 1}))).await;
    let r1 = h.wait_for_paused_run_of(&e1).await;
    let e2 = h.send(ev("s/go", json!({"n": 2}))).await;
    let r1 = h.wait_for_run(&r1.id).await;
    assert_eq!(r1.status, RunStatus::Cancelled);
    let r2 = h.wait_for_paused_run_of(&e2).await;
    h.advance(HOUR);
    assert_eq!(h.wait_for_run(&r2.id).await.output, Some(json!(2)));
    assert!(h.executor().skipped().is_empty());
}

#[tokio::test]
async fn start_timeout_cancels_runs_queued_too_long() {
    let f = echo(
        simple("t", "t/go")
            .throttle(Throttle::new(1, Duration::from_secs(60)))
            .timeouts(Timeouts {
                start: Some(Duration::from_secs(30)),
                finish: None,
            }),
    );
    let h = TestHarness::start("app", [f]).await.unwrap();
    let e1 = h.send(ev("t/go", json!({"n": 1}))).await;
    let e2 = h.send(ev("t/go", json!({"n": 2}))).await;
    assert_eq!(h.wait_for_run_of(&e1).await.status, RunStatus::Completed);
    h.advance(Duration::from_secs(30));
    let r2 = h.wait_for_run_of(&e2).await;
    assert_eq!(r2.status, RunStatus::Cancelled);
    assert_eq!(r2.requests, 0);
    assert_eq!((r2.ended_at.unwrap() - r2.started_at).num_seconds(), 30);
}

#[tokio::test]
async fn finish_timeout_cancels_runs_still_running() {
    let f = sleeper(simple("s", "s/go").timeouts(Timeouts {
        start: None,
        finish: Some(Duration::from_secs(600)),
    }));
    let h = TestHarness::start("app", [f]).await.unwrap();
    let e1 = h.send(ev("s/go", json!({"n": 1}))).await;
    let r1 = h.wait_for_paused_run_of(&e1).await;
    h.advance(Duration::from_secs(599));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.executor().run(&r1.id).unwrap().status, RunStatus::Running);
    h.advance(SEC);
    let r1 = h.wait_for_run(&r1.id).await;
    assert_eq!(r1.status, RunStatus::Cancelled);
    assert_eq!((r1.ended_at.unwrap() - r1.started_at).num_seconds(), 600);
    assert_eq!(r1.requests, 1);
}
