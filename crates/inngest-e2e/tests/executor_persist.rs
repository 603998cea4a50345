//! The executor's state directory (`ExecutorBuilder::state_dir`): a process that hosts both the
//! executor and the app (the example app's embedded mode) is killed, a new one starts on the
//! same directory, and every unfinished run carries on from its last memoized step.
//!
//! Each "process" is a tokio runtime of its own; killing it (`shutdown_background`) drops every
//! task at once — the executor's timers and requests, the app's server and step bodies — with
//! no chance to save anything, like a `kill -9`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use inngest_executor::clock::VirtualClock;
use inngest_executor::{
    Executor, ExecutorBuilder, ExecutorError, HistoryKind, RunStatus, StepStatus,
};
use inngest_sdk::{Ctx, Event, Function, Inngest, Step, Trigger, WaitForEvent};
use serde_json::{json, Value};

mod executor_support;
use executor_support::checkout::{assert_charged_once, checkout, Probe, Provider};

const HOUR: Duration = Duration::from_secs(3600);
const WAIT: Duration = Duration::from_secs(10);

/// A fresh state directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "inngest-sdk-persist-{name}-{}-{}",
            std::process::id(),
            ulid::Ulid::new()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // A killed process's worker thread may still be finishing a write: retry briefly.
        for _ in 0..20 {
            let _ = std::fs::remove_dir_all(&self.0);
            if !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One process: an executor on `dir` and one app, each on its own loopback port.
struct Process {
    rt: tokio::runtime::Runtime,
    executor: Executor,
}

impl Process {
    fn start(dir: &Path, clock: Option<VirtualClock>, functions: Vec<Function>) -> Process {
        Process::start_with(dir, clock, functions, |b| b)
    }

    /// [`Process::start`], with `configure` applied to the executor's builder.
    fn start_with(
        dir: &Path,
        clock: Option<VirtualClock>,
        functions: Vec<Function>,
        configure: impl FnOnce(ExecutorBuilder) -> ExecutorBuilder,
    ) -> Process {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut builder = Executor::builder()
            .state_dir(dir)
            .retry_interval(Duration::ZERO);
        if let Some(c) = clock {
            builder = builder.clock(Arc::new(c));
        }
        let executor = configure(builder).build().unwrap();
        let ex = executor.clone();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let executor_url = format!("http://{}", listener.local_addr().unwrap());
            let server = ex.clone();
            tokio::spawn(async move { server.serve(listener).await });
            let client = Inngest::builder("shop")
                .base_url(&executor_url)
                .dev(true)
                .build()
                .unwrap();
            let router = inngest_sdk::serve::axum::router(&client, functions).unwrap();
            let app = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let app_url = format!("http://{}/api/inngest", app.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(app, router).await });
            ex.register_app(&app_url).await.unwrap();
        });
        Process { rt, executor }
    }

    /// `kill -9`: every task is dropped where it stands.
    fn kill(self) {
        self.rt.shutdown_background();
    }

    /// The first run of `function` (composite id), once it has ended.
    fn first_finished_run(&self, function: &str) -> inngest_executor::RunView {
        self.rt.block_on(async {
            let runs = self
                .executor
                .wait_for_runs_of_function(function, 1, WAIT)
                .await
                .unwrap();
            self.executor.wait_for_run(&runs[0].id, WAIT).await.unwrap()
        })
    }
}

/// What the store (`state.redb`) holds once its executor is gone (killed or dropped; an
/// executor dropped on another thread a moment ago is given two seconds to close it): each
/// run's core with its `stack` rows, and the events.
struct Stored {
    runs: Vec<Value>,
    events: Vec<Value>,
}

fn stored(dir: &Path) -> Stored {
    use redb::{ReadableDatabase, ReadableTable, TableDefinition};
    const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("runs");
    const STACK: TableDefinition<(&str, u64), &str> = TableDefinition::new("stack");
    const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let db = loop {
        match redb::ReadOnlyDatabase::open(dir.join("state.redb")) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let txn = db.begin_read().unwrap();
    let mut runs = Vec::new();
    let stack = txn.open_table(STACK).unwrap();
    for row in txn.open_table(RUNS).unwrap().iter().unwrap() {
        let (id, core) = row.unwrap();
        let mut run: Value = serde_json::from_slice(core.value()).unwrap();
        let hashes: Vec<Value> = stack
            .iter()
            .unwrap()
            .map(|r| r.unwrap())
            .filter(|(k, _)| k.value().0 == id.value())
            .map(|(_, v)| Value::String(v.value().to_owned()))
            .collect();
        run["stack"] = Value::Array(hashes);
        runs.push(run);
    }
    let events = txn
        .open_table(EVENTS)
        .unwrap()
        .iter()
        .unwrap()
        .map(|r| serde_json::from_slice(r.unwrap().1.value()).unwrap())
        .collect();
    Stored { runs, events }
}

// -------------------------------------------------------------------------------------------
// Killed in the middle of a step
// -------------------------------------------------------------------------------------------

#[test]
fn a_process_killed_mid_step_resumes_from_the_last_memoized_step() {
    let dir = TempDir::new("mid-step");
    let provider = Arc::new(Provider::default());
    let probe = Arc::new(Probe::default());

    let first = Process::start(
        &dir.0,
        None,
        vec![checkout(provider.clone(), probe.clone(), true)],
    );
    let event = json!({"name": "shop/checkout", "id": "order-7", "data": {"cart": 7}});
    let event_id = first.rt.block_on(first.executor.send(&event)).unwrap();
    first
        .rt
        .block_on(async { tokio::time::timeout(WAIT, probe.entered.notified()).await })
        .expect("the charge step started");
    let run_id = first.executor.runs_for_event(&event_id)[0].id.clone();

    first.kill();
    // What survived the kill: the run with `reserve` memoized, and the event.
    let on_disk = stored(&dir.0);
    assert_eq!(on_disk.runs.len(), 1);
    assert_eq!(on_disk.runs[0]["id"], json!(run_id));
    assert_eq!(on_disk.runs[0]["status"], json!("Running"));
    assert_eq!(on_disk.runs[0]["stack"].as_array().unwrap().len(), 1);
    assert_eq!(on_disk.events.len(), 1);
    assert_eq!(on_disk.events[0]["event"]["id"], "order-7");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);

    let second = Process::start(
        &dir.0,
        None,
        vec![checkout(provider.clone(), probe.clone(), false)],
    );
    let run = second
        .rt
        .block_on(second.executor.wait_for_run(&run_id, WAIT))
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    // `charge` was in flight at the kill: it ran again, and its idempotency key kept it to one
    // charge; `reserve` was memoized before and never ran again.
    assert_charged_once(run.output.as_ref(), &provider, &probe);
    let resumed: Vec<_> = run
        .history_of(HistoryKind::Resumed)
        .filter(|h| h.message.contains("executor restarted"))
        .collect();
    assert_eq!(resumed.len(), 1);
    // The interrupted request counts as a failed attempt: the re-driven one is attempt 1.
    let interrupted: Vec<_> = run
        .history_of(HistoryKind::RequestFailed)
        .filter(|h| h.message.contains("interrupted by an executor restart"))
        .collect();
    assert_eq!(interrupted.len(), 1, "{:#?}", run.history);
    assert_eq!(interrupted[0].attempt, Some(0));
    let after_restart = run
        .history
        .iter()
        .skip_while(|h| h.kind != HistoryKind::Resumed)
        .find(|h| h.kind == HistoryKind::Request)
        .unwrap();
    assert_eq!(after_restart.attempt, Some(1));
    assert_eq!(run.step("charge").unwrap().attempts, 2);
    assert_eq!(run.step("reserve").unwrap().attempts, 1);
    // The history from before the kill is kept: scheduled once, `reserve` completed once.
    assert_eq!(run.history_of(HistoryKind::Scheduled).count(), 1);
    assert_eq!(
        run.history_of(HistoryKind::StepCompleted).count(),
        3,
        "{:#?}",
        run.history
    );
    assert_eq!(second.executor.runs().len(), 1);

    // The event is still known: the same id is deduplicated, no second run.
    let again = second.rt.block_on(second.executor.send(&event)).unwrap();
    assert_eq!(again, event_id);
    assert_eq!(second.executor.runs().len(), 1);
    assert_eq!(second.executor.runs_for_event("order-7").len(), 1);
    let requests = run.requests;
    second.kill();

    // A third start finds the finished run in the history and sends nothing for it.
    let third = Process::start(
        &dir.0,
        None,
        vec![checkout(provider.clone(), probe.clone(), false)],
    );
    let run = third
        .executor
        .run(&run_id)
        .expect("the run is in the history");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.requests, requests);
    third
        .rt
        .block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
    assert_eq!(probe.notifies.load(Ordering::SeqCst), 1);
    third.kill();
}

// -------------------------------------------------------------------------------------------
// Sleeps and waits across restarts
// -------------------------------------------------------------------------------------------

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// Sleeps an hour, waits a day for `shop/approved` of the same order, then ships.
fn approval(ships: Arc<AtomicUsize>) -> Function {
    Function::new("approval")
        .trigger(Trigger::event("shop/ordered"))
        .handler(move |_ctx: Ctx<Value>, step: Step| {
            let ships = ships.clone();
            async move {
                step.sleep("cool-off", HOUR).await;
                let approved: Option<Event<Value>> = step
                    .wait_for_event(
                        "approval",
                        WaitForEvent::new("shop/approved", 24 * HOUR).matching("data.order"),
                    )
                    .await?;
                let by = approved.map(|e| e.data["by"].clone());
                step.run("ship", move || async move {
                    ships.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
                .await?;
                Ok(json!({ "approved_by": by }))
            }
        })
}

#[test]
fn sleeps_and_waits_keep_their_deadlines_across_restarts() {
    let dir = TempDir::new("sleep-wait");
    let ships = Arc::new(AtomicUsize::new(0));

    // 1. Killed while sleeping.
    let first = Process::start(
        &dir.0,
        Some(VirtualClock::new(start_time())),
        vec![approval(ships.clone())],
    );
    let id = first
        .rt
        .block_on(
            first
                .executor
                .send(json!({"name": "shop/ordered", "data": {"order": 7}})),
        )
        .unwrap();
    let run_id = first.executor.runs_for_event(&id)[0].id.clone();
    let run = first
        .rt
        .block_on(first.executor.wait_for(&run_id, WAIT, |r| {
            r.step("cool-off")
                .is_some_and(|s| s.status == StepStatus::Sleeping)
        }))
        .unwrap();
    assert!(run.is_paused());
    first.kill();

    // 2. Back 10 minutes later: still sleeping until 13:00; 50 minutes on, it waits.
    let clock = VirtualClock::new(start_time() + chrono::Duration::minutes(10));
    let second = Process::start(&dir.0, Some(clock.clone()), vec![approval(ships.clone())]);
    let run = second.executor.run(&run_id).unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.step("cool-off").unwrap().status, StepStatus::Sleeping);
    clock.advance(Duration::from_secs(49 * 60));
    second
        .rt
        .block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });
    assert_eq!(
        second
            .executor
            .run(&run_id)
            .unwrap()
            .step("cool-off")
            .unwrap()
            .status,
        StepStatus::Sleeping,
        "the sleep ends at 13:00, not earlier"
    );
    clock.advance(Duration::from_secs(2 * 60));
    let run = second
        .rt
        .block_on(second.executor.wait_for(&run_id, WAIT, |r| {
            r.step("approval")
                .is_some_and(|s| s.status == StepStatus::Waiting)
        }))
        .unwrap();
    assert_eq!(run.step("cool-off").unwrap().status, StepStatus::Completed);
    second.kill();

    // 3. Killed while waiting; the wait still matches by order after the restart.
    let third = Process::start(
        &dir.0,
        Some(VirtualClock::new(start_time() + chrono::Duration::hours(2))),
        vec![approval(ships.clone())],
    );
    let ex = third.executor.clone();
    third
        .rt
        .block_on(ex.send(json!({"name": "shop/approved", "data": {"order": 8, "by": "eve"}})))
        .unwrap();
    assert_eq!(
        ex.run(&run_id).unwrap().step("approval").unwrap().status,
        StepStatus::Waiting,
        "another order's approval does not resume the wait"
    );
    third
        .rt
        .block_on(ex.send(json!({"name": "shop/approved", "data": {"order": 7, "by": "ann"}})))
        .unwrap();
    let run = third.rt.block_on(ex.wait_for_run(&run_id, WAIT)).unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(run.output, Some(json!({"approved_by": "ann"})));
    assert_eq!(ships.load(Ordering::SeqCst), 1);
    assert_eq!(run.history_of(HistoryKind::Sleeping).count(), 1);
    assert_eq!(run.history_of(HistoryKind::Waiting).count(), 1);
    assert_eq!(
        run.history
            .iter()
            .filter(|h| h.message.contains("executor restarted"))
            .count(),
        2
    );
    third.kill();
}

#[test]
fn a_wait_whose_deadline_passed_while_down_times_out_on_restart() {
    let dir = TempDir::new("deadline");
    let ships = Arc::new(AtomicUsize::new(0));
    let clock = VirtualClock::new(start_time());
    let first = Process::start(&dir.0, Some(clock.clone()), vec![approval(ships.clone())]);
    let id = first
        .rt
        .block_on(
            first
                .executor
                .send(json!({"name": "shop/ordered", "data": {"order": 1}})),
        )
        .unwrap();
    let run_id = first.executor.runs_for_event(&id)[0].id.clone();
    first
        .rt
        .block_on(first.executor.wait_for(&run_id, WAIT, |r| r.is_paused()))
        .unwrap();
    clock.advance(HOUR + Duration::from_secs(1));
    first
        .rt
        .block_on(first.executor.wait_for(&run_id, WAIT, |r| {
            r.step("approval")
                .is_some_and(|s| s.status == StepStatus::Waiting)
        }))
        .unwrap();
    first.kill();

    // Two days later: the one-day wait is over.
    let second = Process::start(
        &dir.0,
        Some(VirtualClock::new(start_time() + chrono::Duration::days(2))),
        vec![approval(ships.clone())],
    );
    let run = second
        .rt
        .block_on(second.executor.wait_for_run(&run_id, WAIT))
        .unwrap_or_else(|e| panic!("{e}: {:#?}", second.executor.run(&run_id)));
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.output, Some(json!({"approved_by": null})));
    assert_eq!(run.step("approval").unwrap().status, StepStatus::TimedOut);
    assert_eq!(ships.load(Ordering::SeqCst), 1);
    second.kill();
}

// -------------------------------------------------------------------------------------------
// Damaged files
// -------------------------------------------------------------------------------------------

#[test]
fn a_corrupt_version_1_run_file_or_store_is_a_clear_error() {
    let dir = TempDir::new("damaged");
    std::fs::create_dir_all(dir.0.join("runs")).unwrap();
    std::fs::write(dir.0.join("runs").join("01JX.json"), b"{\"id\": 3").unwrap();
    let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
    match &err {
        ExecutorError::State(msg) => {
            assert!(msg.contains("01JX.json"), "{msg}");
            assert!(msg.contains("not a run record"), "{msg}");
        }
        other => panic!("unexpected error: {other:?}"),
    }
    // Nothing was moved: the version 1 files are as they were.
    assert!(dir.0.join("runs").join("01JX.json").exists());
    assert!(!dir.0.join("format.json").exists());

    let store = TempDir::new("damaged-store");
    std::fs::write(
        store.0.join("format.json"),
        r#"{"format":"inngest-executor-state","version":2}"#,
    )
    .unwrap();
    std::fs::write(store.0.join("state.redb"), b"not a database at all").unwrap();
    let err = Executor::builder().state_dir(&store.0).build().unwrap_err();
    assert!(
        matches!(&err, ExecutorError::State(m) if m.starts_with("state.redb: cannot open")),
        "{err:?}"
    );

    // A directory that cannot be created (a file is in the way).
    let file = dir.0.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = Executor::builder().state_dir(&file).build().unwrap_err();
    assert!(
        matches!(&err, ExecutorError::State(m) if m.contains("cannot create")),
        "{err:?}"
    );
}

// -------------------------------------------------------------------------------------------
// What a finished save leaves in the directory
// -------------------------------------------------------------------------------------------

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn saves_leave_only_the_store_the_format_file_and_the_lock() {
    let dir = TempDir::new("no-tmp");
    let provider = Arc::new(Provider::default());
    let probe = Arc::new(Probe::default());
    let process = Process::start(
        &dir.0,
        None,
        vec![checkout(provider.clone(), probe.clone(), false)],
    );
    let event = json!({"name": "shop/checkout", "id": "order-9", "data": {"cart": 9}});
    let event_id = process.rt.block_on(process.executor.send(&event)).unwrap();
    let run_id = process.executor.runs_for_event(&event_id)[0].id.clone();
    let run = process
        .rt
        .block_on(process.executor.wait_for_run(&run_id, WAIT))
        .unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    // The save with the run's end commits before the `inngest/function.finished` event it
    // emits is stored: once that event is there, the final state is on disk.
    let deadline = std::time::Instant::now() + WAIT;
    while !process
        .executor
        .events()
        .iter()
        .any(|e| e["name"] == "inngest/function.finished")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no function.finished event"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    process.kill();
    let on_disk = stored(&dir.0);
    assert_eq!(on_disk.runs.len(), 1);
    assert_eq!(on_disk.runs[0]["id"], json!(run_id));
    assert_eq!(
        on_disk.runs[0]["status"],
        serde_json::to_value(RunStatus::Completed).unwrap()
    );
    assert_eq!(names(&dir.0), vec!["format.json", "lock", "state.redb"]);
}

// -------------------------------------------------------------------------------------------
// Cron ticks across a restart
// -------------------------------------------------------------------------------------------

fn ticker() -> Function {
    Function::new("ticker")
        .trigger(Trigger::cron("* * * * *"))
        .handler(
            |ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data["scheduledAt"].clone()) },
        )
}

/// The `scheduledAt` of every cron run, in start order.
fn ticks(executor: &Executor) -> Vec<String> {
    let mut runs = executor.runs();
    runs.sort_by_key(|r| r.started_at);
    runs.iter()
        .filter(|r| r.function_id == "shop-ticker")
        .map(|r| {
            r.events[0]["data"]["scheduledAt"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[test]
fn cron_ticks_missed_while_down_fire_in_order_on_restart_and_none_twice() {
    let dir = TempDir::new("cron");
    let t = |h: u32, m: u32, s: u32| Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap();
    let clock = VirtualClock::new(t(12, 0, 30));
    let first = Process::start(&dir.0, Some(clock.clone()), vec![ticker()]);
    clock.advance(Duration::from_secs(30));
    first.first_finished_run("shop-ticker");
    assert_eq!(ticks(&first.executor), ["2026-03-01T12:01:00Z"]);
    first.kill();

    // Down from 12:01 to 12:03:30: the 12:02 and 12:03 ticks fire on restart, in order, each
    // with its own time; 12:01 is not fired again.
    let clock = VirtualClock::new(t(12, 3, 30));
    let second = Process::start(&dir.0, Some(clock.clone()), vec![ticker()]);
    second
        .rt
        .block_on(
            second
                .executor
                .wait_for_runs_of_function("shop-ticker", 3, WAIT),
        )
        .unwrap();
    assert_eq!(
        ticks(&second.executor),
        [
            "2026-03-01T12:01:00Z",
            "2026-03-01T12:02:00Z",
            "2026-03-01T12:03:00Z"
        ]
    );
    // Then the schedule goes on from now.
    clock.advance(Duration::from_secs(30));
    second
        .rt
        .block_on(
            second
                .executor
                .wait_for_runs_of_function("shop-ticker", 4, WAIT),
        )
        .unwrap();
    assert_eq!(ticks(&second.executor)[3], "2026-03-01T12:04:00Z");
    second.kill();
}

// -------------------------------------------------------------------------------------------
// Flow-control state across a restart
// -------------------------------------------------------------------------------------------

/// Debounced (1 minute) and rate-limited (one run an hour) functions on `shop/pinged`.
fn flow_functions() -> Vec<Function> {
    let debounced = Function::new("debounced")
        .trigger(Trigger::event("shop/pinged"))
        .debounce(inngest_sdk::Debounce::new(Duration::from_secs(60)))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data["n"].clone()) });
    let limited = Function::new("limited")
        .trigger(Trigger::event("shop/pinged"))
        .rate_limit(inngest_sdk::RateLimit::new(1, HOUR))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data["n"].clone()) });
    vec![debounced, limited]
}

#[test]
fn debounce_buffers_and_rate_limit_windows_survive_a_restart() {
    let dir = TempDir::new("flow");
    let t = |m: u32, s: u32| Utc.with_ymd_and_hms(2026, 3, 1, 12, m, s).unwrap();
    let clock = VirtualClock::new(t(0, 0));
    let first = Process::start(&dir.0, Some(clock.clone()), flow_functions());
    let ping = |n: u32| json!({"name": "shop/pinged", "id": format!("ping-{n}"), "data": {"n": n}});
    first.rt.block_on(first.executor.send(ping(1))).unwrap();
    first.first_finished_run("shop-limited");
    clock.advance(Duration::from_secs(20));
    first.rt.block_on(first.executor.send(ping(2))).unwrap();
    // The debounce holds ping 2 until 12:01:20; the rate limit window holds ping 1's start.
    assert!(first
        .executor
        .runs()
        .iter()
        .all(|r| r.function_id != "shop-debounced"));
    first.kill();

    let clock = VirtualClock::new(t(0, 40));
    let second = Process::start(&dir.0, Some(clock.clone()), flow_functions());
    // Still within the hour: ping 3 is rate limited, as before the restart.
    second.rt.block_on(second.executor.send(ping(3))).unwrap();
    let skipped: Vec<_> = second
        .executor
        .skipped()
        .into_iter()
        .filter(|s| s.function_id == "shop-limited")
        .map(|s| s.reason)
        .collect();
    assert_eq!(skipped, [inngest_executor::SkipReason::RateLimit]);
    // Ping 3 replaced ping 2 in the restored debounce: one run, with ping 3, a minute after it.
    clock.advance(Duration::from_secs(61));
    let run = second.first_finished_run("shop-debounced");
    assert_eq!(run.output, Some(json!(3)));
    assert_eq!(
        second
            .executor
            .runs()
            .iter()
            .filter(|r| r.function_id == "shop-debounced")
            .count(),
        1
    );
    second.kill();
}

#[test]
fn a_debounce_whose_period_ended_while_down_starts_its_run_on_restart() {
    let dir = TempDir::new("flow-late");
    let t = |m: u32| Utc.with_ymd_and_hms(2026, 3, 1, 12, m, 0).unwrap();
    let first = Process::start(&dir.0, Some(VirtualClock::new(t(0))), flow_functions());
    let ev = json!({"name": "shop/pinged", "id": "ping-9", "data": {"n": 9}});
    first.rt.block_on(first.executor.send(ev)).unwrap();
    first.first_finished_run("shop-limited");
    first.kill();
    let second = Process::start(&dir.0, Some(VirtualClock::new(t(5))), flow_functions());
    let run = second.first_finished_run("shop-debounced");
    assert_eq!(run.output, Some(json!(9)));
    second.kill();
}

// -------------------------------------------------------------------------------------------
// Bounded memory: finished runs and events leave memory, and are still found by id
// -------------------------------------------------------------------------------------------

/// `noted` returns its event's `n` after one step; `held` waits an hour for `shop/released`;
/// `once` runs for the first `shop/pinged` only (idempotency on a constant key).
fn window_functions() -> Vec<Function> {
    let once = Function::new("once")
        .trigger(Trigger::event("shop/pinged"))
        .idempotency("'all'")
        .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(json!(true)) });
    let noted = Function::new("noted")
        .trigger(Trigger::event("shop/noted"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let n = ctx.event.data["n"].clone();
            let m = n.clone();
            step.run("note", move || async move { Ok(m) }).await?;
            Ok(n)
        });
    let held = Function::new("held")
        .trigger(Trigger::event("shop/held"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let ev: Option<Event<Value>> = step
                .wait_for_event("release", WaitForEvent::new("shop/released", HOUR))
                .await?;
            Ok(json!(ev.is_some()))
        });
    vec![noted, held, once]
}

/// `GET path` on the executor's REST API: status and JSON body.
async fn rest(executor: &Executor, path: &str) -> (u16, Value) {
    use tower::ServiceExt;
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let res = executor.router().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[test]
fn finished_runs_and_events_leave_memory_yet_are_found_by_id_before_and_after_a_restart() {
    let dir = TempDir::new("window");
    // Two finished runs and four events in memory; memory is trimmed once 16 more are there.
    let window = |b: ExecutorBuilder| b.max_finished_runs_in_memory(2).max_events_in_memory(4);
    let first = Process::start_with(&dir.0, None, window_functions(), window);
    let ex = first.executor.clone();
    let (held_id, noted) = first.rt.block_on(async {
        ex.send(json!({"name": "shop/held", "id": "held-1", "data": {}}))
            .await
            .unwrap();
        let held = ex.wait_for_first_run_of("held-1", WAIT).await.unwrap();
        let mut noted = Vec::new();
        for n in 0..40 {
            let id = format!("note-{n}");
            ex.send(json!({"name": "shop/noted", "id": id, "data": {"n": n}}))
                .await
                .unwrap();
            let run = ex.wait_for_first_run_of(&id, WAIT).await.unwrap();
            noted.push(ex.wait_for_run(&run.id, WAIT).await.unwrap());
        }
        for _ in 0..10 {
            ex.send(json!({"name": "shop/pinged", "data": {}}))
                .await
                .unwrap();
        }
        (held.id, noted)
    });
    assert!(noted.iter().all(|r| r.status == RunStatus::Completed));

    // In memory: the waiting run and at most 2 + 16 finished ones; at most 4 + 16 events.
    let in_memory = ex.runs();
    let finished = in_memory.iter().filter(|r| r.status.is_terminal()).count();
    assert!(
        (2..=18).contains(&finished),
        "{finished} finished runs in memory"
    );
    assert!(in_memory
        .iter()
        .any(|r| r.id == held_id && r.status == RunStatus::Running));
    let events = ex.events().len();
    assert!(
        (4..=20).contains(&events),
        "{events} events in memory of 51"
    );
    // Skip records are kept for as many events as stay in memory: 4 of the 9 pings skipped.
    let skipped = ex.skipped();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped.iter().all(|s| s.function_id == "shop-once"));

    // Every run is found by id, the oldest from the store.
    for (n, run) in noted.iter().enumerate() {
        let found = ex.run(&run.id).unwrap();
        assert_eq!(found.status, RunStatus::Completed);
        assert_eq!(found.output, Some(json!(n)));
        assert_eq!(
            (found.function_id.as_str(), found.app_id.as_str()),
            ("shop-noted", "shop")
        );
        assert_eq!(found.step("note").unwrap().output, Some(json!({"data": n})));
    }
    assert!(
        ex.runs().iter().all(|r| r.id != noted[0].id),
        "run 0 left memory"
    );
    let newest = noted.last().unwrap();
    first.rt.block_on(async {
        let (_, live) = rest(&ex, &format!("/v1/runs/{}", newest.id)).await;
        let (status, old) = rest(&ex, &format!("/v1/runs/{}", noted[0].id)).await;
        assert_eq!(status, 200);
        assert_eq!(old["data"]["status"], "Completed");
        assert_eq!(old["data"]["output"], json!(0));
        assert_eq!(old["data"]["event_id"], json!(noted[0].event_id));
        assert_eq!(old["data"]["function_id"], live["data"]["function_id"]);
        let (status, event) = rest(&ex, "/v1/events/note-0").await;
        assert_eq!(status, 200);
        assert_eq!(event["data"]["internal_id"], json!(noted[0].event_id));
        assert_eq!(event["data"]["data"], json!({"n": 0}));
        let (_, runs) = rest(&ex, "/v1/events/note-0/runs").await;
        assert_eq!(runs["data"][0]["run_id"], json!(noted[0].id));
        assert_eq!(runs["data"].as_array().unwrap().len(), 1);
        assert_eq!(rest(&ex, "/v1/runs/01JNOSUCHRUN").await.0, 404);
        // An event id seen before, whose event left memory, still starts nothing.
        let again = ex
            .send(json!({"name": "shop/noted", "id": "note-0", "data": {"n": 99}}))
            .await
            .unwrap();
        assert_eq!(again, noted[0].event_id);
        assert_eq!(ex.runs_for_event("note-0").len(), 1);
    });
    drop(ex);
    first.kill();

    // Restarted: only the unfinished run and the newest finished ones are loaded; the rest
    // is still found by id, and the unfinished run carries on.
    let second = Process::start_with(&dir.0, None, window_functions(), window);
    let ex = second.executor.clone();
    let loaded = ex.runs();
    assert!(loaded.len() <= 3, "{} runs loaded", loaded.len());
    assert!(loaded.iter().any(|r| r.id == held_id));
    assert_eq!(ex.run(&noted[0].id).unwrap().output, Some(json!(0)));
    assert_eq!(ex.runs_for_event("note-3")[0].id, noted[3].id);
    second.rt.block_on(async {
        ex.send(json!({"name": "shop/released", "data": {}}))
            .await
            .unwrap();
        let held = ex.wait_for_run(&held_id, WAIT).await.unwrap();
        assert_eq!(held.output, Some(json!(true)));
    });
    drop(ex);
    second.kill();
}

// -------------------------------------------------------------------------------------------
// Concurrency and throttle queues across a restart
// -------------------------------------------------------------------------------------------

/// How many `serial` steps are running at once, and the most seen; while `hang` is set a step
/// never ends (the process dies with it running).
#[derive(Default)]
struct Gate {
    inside: AtomicUsize,
    most: AtomicUsize,
    hang: std::sync::atomic::AtomicBool,
}

/// `serial`: concurrency 1, one step that holds the slot for 50 ms.
fn serial(gate: Arc<Gate>) -> Function {
    Function::new("serial")
        .trigger(Trigger::event("shop/queued"))
        .concurrency(inngest_sdk::Concurrency::new(1))
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let gate = gate.clone();
            async move {
                let n = ctx.event.data["n"].clone();
                step.run("work", move || async move {
                    let now = gate.inside.fetch_add(1, Ordering::SeqCst) + 1;
                    gate.most.fetch_max(now, Ordering::SeqCst);
                    if gate.hang.load(Ordering::SeqCst) {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    gate.inside.fetch_sub(1, Ordering::SeqCst);
                    Ok(())
                })
                .await?;
                Ok(n)
            }
        })
}

#[test]
fn runs_queued_on_a_concurrency_limit_stay_queued_after_a_restart() {
    let dir = TempDir::new("concurrency");
    let gate = Arc::new(Gate::default());
    gate.hang.store(true, Ordering::SeqCst);
    let first = Process::start(&dir.0, None, vec![serial(gate.clone())]);
    let ex = first.executor.clone();
    first.rt.block_on(async {
        for n in 0..3 {
            ex.send(json!({"name": "shop/queued", "id": format!("q-{n}"), "data": {"n": n}}))
                .await
                .unwrap();
        }
        // One run is in its step; the two others wait for the slot.
        while gate.inside.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent: Vec<u32> = ex.runs().iter().map(|r| r.requests).collect();
        assert_eq!(sent.iter().filter(|n| **n == 0).count(), 2, "{sent:?}");
    });
    assert_eq!(gate.most.load(Ordering::SeqCst), 1);
    drop(ex);
    first.kill();

    // Restarted: the step that was in flight runs again, and the runs still take turns.
    gate.hang.store(false, Ordering::SeqCst);
    gate.inside.store(0, Ordering::SeqCst);
    gate.most.store(0, Ordering::SeqCst);
    let second = Process::start(&dir.0, None, vec![serial(gate.clone())]);
    let ex = second.executor.clone();
    second.rt.block_on(async {
        let runs = ex
            .wait_for_runs_of_function("shop-serial", 3, WAIT)
            .await
            .unwrap();
        let outputs: Vec<Value> = runs.iter().map(|r| r.output.clone().unwrap()).collect();
        assert_eq!(outputs.len(), 3);
        assert!(runs.iter().all(|r| r.status == RunStatus::Completed));
    });
    assert_eq!(
        gate.most.load(Ordering::SeqCst),
        1,
        "one step at a time after the restart"
    );
    drop(ex);
    second.kill();
}

/// `metered`: one start an hour (throttle), no steps.
fn metered() -> Function {
    Function::new("metered")
        .trigger(Trigger::event("shop/metered"))
        .throttle(inngest_sdk::Throttle::new(1, HOUR))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data["n"].clone()) })
}

#[test]
fn runs_held_by_a_throttle_stay_held_after_a_restart_and_start_on_its_schedule() {
    let dir = TempDir::new("throttle");
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).unwrap();
    let clock = VirtualClock::new(t(12, 0));
    let first = Process::start(&dir.0, Some(clock.clone()), vec![metered()]);
    let ex = first.executor.clone();
    let ids: Vec<String> = first.rt.block_on(async {
        let mut ids = Vec::new();
        for n in 0..3 {
            ex.send(json!({"name": "shop/metered", "id": format!("m-{n}"), "data": {"n": n}}))
                .await
                .unwrap();
            ids.push(
                ex.wait_for_first_run_of(&format!("m-{n}"), WAIT)
                    .await
                    .unwrap()
                    .id,
            );
        }
        ex.wait_for_run(&ids[0], WAIT).await.unwrap();
        ids
    });
    assert_eq!(ex.run(&ids[1]).unwrap().requests, 0, "held by the throttle");
    drop(ex);
    first.kill();

    // Restarted 30 minutes later: the two held runs are still held (the key's GCRA state was
    // kept), then start one an hour, at 13:00 and 14:00.
    let clock = VirtualClock::new(t(12, 30));
    let second = Process::start(&dir.0, Some(clock.clone()), vec![metered()]);
    let ex = second.executor.clone();
    let requests = |id: &str| ex.run(id).unwrap().requests;
    second.rt.block_on(async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!((requests(&ids[1]), requests(&ids[2])), (0, 0));
        clock.advance(Duration::from_secs(30 * 60));
        let run = ex.wait_for_run(&ids[1], WAIT).await.unwrap();
        assert_eq!(run.output, Some(json!(1)));
        assert_eq!(run.started_at, t(13, 0));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(requests(&ids[2]), 0);
        clock.advance(HOUR);
        let run = ex.wait_for_run(&ids[2], WAIT).await.unwrap();
        assert_eq!((run.output, run.started_at), (Some(json!(2)), t(14, 0)));
    });
    drop(ex);
    second.kill();
}
