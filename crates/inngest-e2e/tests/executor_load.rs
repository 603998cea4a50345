//! Issue 6 for the local executor: load (1,000 concurrent runs of a 5-step function, none lost)
//! and an app instance killed in the middle of a step, replaced by a new instance on the same
//! URL: the executor's retry re-drives the run from the last memoized step and the side effect
//! happens once thanks to an idempotency key.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use inngest_executor::clock::VirtualClock;
use inngest_executor::{Executor, HistoryKind, RunStatus, StepStatus};
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};

mod executor_support;
use executor_support::checkout::{assert_charged_once, checkout, Probe, Provider};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn five_steps() -> Function {
    Function::new("five")
        .trigger(Trigger::event("load/go"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let n = ctx.event.data["n"].as_i64().unwrap_or(-1);
            let mut total = 0i64;
            for i in 1..=5i64 {
                let v: i64 = step
                    .run(&format!("s{i}"), move || async move { Ok(n * i) })
                    .await?;
                total += v;
            }
            Ok(json!({ "n": n, "total": total }))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thousand_concurrent_runs_of_a_five_step_function_complete() {
    const RUNS: usize = 1000;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let h = TestHarness::builder("load")
        .function(five_steps())
        .timeout(Duration::from_secs(120))
        .app_router("/api/inngest", move |client, functions| {
            let router = inngest_sdk::serve::axum::router(client, functions)?;
            Ok(router.layer(axum::middleware::from_fn(
                move |req: Request, next: Next| {
                    let counter = counter.clone();
                    async move {
                        if req.method() == http::Method::POST {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        next.run(req).await
                    }
                },
            )))
        })
        .start()
        .await
        .unwrap();

    let started = Instant::now();
    let events: Vec<Value> = (0..RUNS)
        .map(|n| json!({"name": "load/go", "data": {"n": n}}))
        .collect();
    let ids = h.executor().send_many(events).await.unwrap();
    assert_eq!(ids.len(), RUNS);
    let runs = h
        .executor()
        .wait_for_runs_of_function(&h.function_id("five"), RUNS, Duration::from_secs(120))
        .await
        .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(runs.len(), RUNS, "no run lost, none duplicated");
    let mut seen = vec![false; RUNS];
    let mut transport_retries = 0;
    for r in &runs {
        assert_eq!(r.status, RunStatus::Completed, "{r:#?}");
        let n = r.event()["data"]["n"].as_i64().unwrap();
        assert_eq!(r.output, Some(json!({"n": n, "total": 15 * n})));
        assert!(!seen[n as usize], "two runs for event {n}");
        seen[n as usize] = true;
        // One discovery request per step (each executes inline and is reported as StepRun),
        // then one that returns: 6 answered requests, every step executed once. On 2 cores a
        // burst of 1,000 connects can overflow the app's accept backlog: such a connect fails
        // before reaching the app and is retried by the executor (counted, not an error).
        let failed = r.history_of(HistoryKind::RequestFailed).count();
        transport_retries += failed;
        assert_eq!(r.requests as usize, 6 + failed, "{r:#?}");
        assert_eq!(r.history_of(HistoryKind::RetryScheduled).count(), failed);
        assert_eq!(r.history_of(HistoryKind::FunctionError).count(), 0);
        assert_eq!(r.steps.len(), 5);
        assert!(r
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Completed && s.output.is_some()));
    }
    assert!(seen.iter().all(|s| *s));
    // The app received exactly what the protocol requires.
    assert_eq!(calls.load(Ordering::Relaxed), 6 * RUNS);
    println!(
        "executor load: {RUNS} runs x 5 steps, {} app calls in {:.2?} (wall), peak RSS {} KiB, \
         {transport_retries} connect retries",
        6 * RUNS,
        elapsed,
        peak_rss_kib()
    );
}

/// Serves one app instance on its own runtime (its "process"), on `listener`.
fn start_instance(
    listener: std::net::TcpListener,
    executor_url: &str,
    f: Function,
) -> tokio::runtime::Runtime {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let client = Inngest::builder("shop")
        .base_url(executor_url)
        .dev(true)
        .build()
        .unwrap();
    let router = inngest_sdk::serve::axum::router(&client, vec![f]).unwrap();
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = axum::serve(listener, router).await;
    });
    rt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_killed_mid_step_and_restarted_completes_with_one_effect() {
    let clock = VirtualClock::default();
    let executor = Executor::builder()
        .clock(Arc::new(clock.clone()))
        .retry_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let executor_url = format!("http://{}", listener.local_addr().unwrap());
    let server = executor.clone();
    let executor_task = tokio::spawn(async move { server.serve(listener).await });

    let provider = Arc::new(Provider::default());
    let probe = Arc::new(Probe::default());
    let app_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    app_listener.set_nonblocking(true).unwrap();
    let addr = app_listener.local_addr().unwrap();
    let app_url = format!("http://{addr}/api/inngest");
    let first = start_instance(
        app_listener,
        &executor_url,
        checkout(provider.clone(), probe.clone(), true),
    );
    executor.register_app(&app_url).await.unwrap();

    let id = executor
        .send(json!({"name": "shop/checkout", "data": {"cart": 7}}))
        .await
        .unwrap();
    // The `charge` body has charged and is still running when the app dies.
    tokio::time::timeout(Duration::from_secs(10), probe.entered.notified())
        .await
        .expect("the charge step started");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
    // Kill the instance: every task of its runtime (the server, the connection, the step
    // body) is dropped and its sockets closed.
    tokio::task::spawn_blocking(move || first.shutdown_timeout(Duration::from_secs(5)))
        .await
        .unwrap();

    let run = executor.runs_for_event(&id).remove(0);
    let run = executor
        .wait_for(&run.id, Duration::from_secs(10), |r| {
            r.history_of(HistoryKind::RetryScheduled).count() == 1
        })
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.history_of(HistoryKind::RequestFailed).count(), 1);
    assert_eq!(run.step("reserve").unwrap().status, StepStatus::Completed);
    assert!(run.step("charge").is_none(), "charge was never reported");

    // A new instance of the app on the same address; the retry is due 10 s later.
    let mut rebind = 0;
    let app_listener = loop {
        match std::net::TcpListener::bind(addr) {
            Ok(l) => break l,
            Err(e) if rebind < 50 => {
                rebind += 1;
                eprintln!("rebinding {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("could not rebind {addr}: {e}"),
        }
    };
    app_listener.set_nonblocking(true).unwrap();
    let second = start_instance(
        app_listener,
        &executor_url,
        checkout(provider.clone(), probe.clone(), false),
    );
    clock.advance(Duration::from_secs(10));
    let run = executor
        .wait_for_run(&run.id, Duration::from_secs(10))
        .await
        .unwrap();

    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_charged_once(run.output.as_ref(), &provider, &probe);
    // Requests: reserve (1), charge killed (2), retry re-driving charge (3), notify (4), return (5).
    assert_eq!(run.requests, 5);
    let failed = run.history_of(HistoryKind::RequestFailed).next().unwrap();
    let retry = run
        .history_of(HistoryKind::Request)
        .find(|h| h.attempt == Some(1))
        .unwrap();
    assert_eq!((retry.at - failed.at).num_seconds(), 10);
    tokio::task::spawn_blocking(move || second.shutdown_timeout(Duration::from_secs(5)))
        .await
        .unwrap();
    executor_task.abort();
}
