//! The state store at scale: an executor on a state directory holding N finished runs is
//! restarted; reported are the restart time (open the store and load what stays in memory, then
//! the app's sync, which brings those runs back), the restarted process's peak RSS, and the
//! latency of `GET /v1/runs/{id}` through the router, apart for runs still in memory (the newest
//! 1,000, the default window) and runs read back from the store (first read, then the same runs
//! again with the store's cache warm). Each figure is measured in a
//! fresh child process, for N = 1,000 and N = 100,000 in the same run, so the two can be
//! compared.
//!
//! ```text
//! cargo bench -p inngest-executor --bench store_scale            # N = 1,000 and 100,000
//! STORE_SCALE_RUNS=20000 cargo bench -p inngest-executor --bench store_scale
//! ```
//!
//! A bench program, not a test: it asserts only that every run completed and every lookup
//! answered 200 with a completed run.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use inngest_executor::{Executor, RunStatus};
use serde_json::{json, Value};
use tower::ServiceExt;

/// The app: one step, then done.
async fn app(Json(body): Json<Value>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("x-inngest-sdk", "rust:v0.1.0".parse().unwrap());
    headers.insert("x-inngest-req-version", "2".parse().unwrap());
    let memo_empty = body
        .get("steps")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    if memo_empty {
        let id = inngest_protocol::step_id::hash_id("work");
        let ops = json!([{"op": "StepRun", "id": id, "name": "work", "data": {"ok": true}}]);
        return (StatusCode::PARTIAL_CONTENT, headers, Json(ops)).into_response();
    }
    (StatusCode::OK, headers, Json(json!("done"))).into_response()
}

async fn start_app() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api/inngest", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/api/inngest", post(app))).await
    });
    base
}

fn register(executor: &Executor, base: &str) {
    executor
        .register(&json!({"appName": "scale", "url": base, "sdk": "rust:v0.1.0", "functions": [{
            "id": "scale-work", "name": "work", "triggers": [{"event": "scale/work"}],
            "steps": {"step": {"id": "step", "name": "step",
                "runtime": {"type": "http", "url": format!("{base}?fnId=scale-work&stepId=step")}}}
        }]}))
        .unwrap();
}

/// Fills `dir` with `n` finished runs; returns their ids and the seconds it took.
async fn seed(dir: &std::path::Path, n: usize) -> (Vec<String>, f64) {
    let started = Instant::now();
    let base = start_app().await;
    let executor = Executor::builder().state_dir(dir).build().unwrap();
    register(&executor, &base);
    let mut run_ids = Vec::with_capacity(n);
    for from in (0..n).step_by(1000) {
        let to = (from + 1000).min(n);
        let events = (from..to).map(|i| json!({"name": "scale/work", "data": {"i": i}}));
        let ids = executor.send_many(events).await.unwrap();
        // Wait for the chunk to finish (per event: the checks stay O(1) as the store grows),
        // so at most 1,000 runs are in flight.
        for id in &ids {
            let run = executor
                .wait_for_first_run_of(id, Duration::from_secs(600))
                .await
                .unwrap();
            executor
                .wait_for_run(&run.id, Duration::from_secs(600))
                .await
                .unwrap();
            run_ids.push(run.id);
        }
    }
    drop(executor);
    (run_ids, started.elapsed().as_secs_f64())
}

/// Median and 99th percentile of `GET /v1/runs/{id}` for each id (µs); every answer must be a
/// 200 for a completed run.
async fn lookups(router: &Router, ids: &[String]) -> (f64, f64) {
    let mut lat = Vec::with_capacity(ids.len());
    for id in ids {
        let t = Instant::now();
        let req = Request::get(format!("/v1/runs/{id}"))
            .body(Body::empty())
            .unwrap();
        let res = router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        lat.push(t.elapsed().as_secs_f64() * 1e6);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["data"]["status"], "Completed", "run {id}");
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    (lat[lat.len() / 2], lat[lat.len() * 99 / 100])
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The child: restart on `dir`, measure, print one line of figures. `ids` holds the ids of
/// every run, oldest first.
async fn measure(dir: &str, ids_file: &str) {
    let ids: Vec<String> = std::fs::read_to_string(ids_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let n = ids.len();
    let started = Instant::now();
    let executor = Executor::builder().state_dir(dir).build().unwrap();
    let opened = started.elapsed();
    let base = start_app().await;
    register(&executor, &base);
    let restarted = started.elapsed();
    let runs = executor.runs();
    let in_memory = runs.len();
    assert!(runs.iter().all(|r| r.status == RunStatus::Completed));
    let router = executor.router();
    // Up to 1,000 runs in memory, and up to 1,000 spread over the rest (from the store).
    let memory: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let older = &ids[..n - in_memory.min(n)];
    let step = (older.len() / 1000).max(1);
    let stored: Vec<String> = older.iter().step_by(step).cloned().collect();
    let (mem_median, mem_p99) = lookups(&router, &memory).await;
    let stored_figures = if stored.is_empty() {
        "lookup_store: none".to_owned()
    } else {
        let (median, p99) = lookups(&router, &stored).await;
        // The same runs again: the store's pages they need are in its cache now.
        let (warm, warm_p99) = lookups(&router, &stored).await;
        format!(
            "lookup_store_median_us={median:.1} lookup_store_p99_us={p99:.1} \
             lookup_store_warm_median_us={warm:.1} lookup_store_warm_p99_us={warm_p99:.1}"
        )
    };
    println!(
        "runs={n} in_memory={in_memory} open_ms={:.0} restart_ms={:.0} peak_rss_mib={:.1} \
         lookup_memory_median_us={mem_median:.1} lookup_memory_p99_us={mem_p99:.1} {stored_figures}",
        opened.as_secs_f64() * 1e3,
        restarted.as_secs_f64() * 1e3,
        peak_rss_kib() as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    if let Some(pos) = args.iter().position(|a| a == "--measure") {
        rt.block_on(measure(&args[pos + 1], &args[pos + 2]));
        return;
    }
    let sizes: Vec<usize> = match std::env::var("STORE_SCALE_RUNS") {
        Ok(v) => v.split(',').filter_map(|s| s.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 100_000],
    };
    for n in sizes {
        let dir =
            std::env::temp_dir().join(format!("inngest-store-scale-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (ids, secs) = rt.block_on(seed(&dir, n));
        println!(
            "seeded {n} runs in {secs:.1} s ({:.0} runs/s)",
            n as f64 / secs
        );
        let ids_file = dir.with_extension("ids");
        std::fs::write(&ids_file, ids.join("\n")).unwrap();
        // Let the seeding executor's last tasks let go of the directory.
        std::thread::sleep(Duration::from_secs(2));
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--measure",
                dir.to_str().unwrap(),
                ids_file.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&ids_file);
    }
}
