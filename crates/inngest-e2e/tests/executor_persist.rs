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
use inngest_executor::{Executor, ExecutorError, HistoryKind, RunStatus, StepStatus};
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
        let executor = builder.build().unwrap();
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
}

fn run_files(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir.join("runs")).unwrap() {
        let path = entry.unwrap().path();
        out.push(serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap());
    }
    out
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

    // On disk: the run with `reserve` memoized, and the event.
    let files = run_files(&dir.0);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["id"], json!(run_id));
    assert_eq!(files[0]["status"], json!("Running"));
    assert_eq!(files[0]["stack"].as_array().unwrap().len(), 1);
    let events = std::fs::read_to_string(dir.0.join("events.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 1);
    assert!(events.contains("\"order-7\""));

    first.kill();
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
fn a_torn_last_event_line_is_dropped_and_a_corrupt_run_file_is_a_clear_error() {
    let dir = TempDir::new("damaged");
    let line = json!({
        "internal_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "received_at": "2026-03-01T12:00:00Z",
        "event": {"name": "shop/ordered", "id": "ord-1", "data": {}, "ts": 1}
    });
    std::fs::write(
        dir.0.join("events.jsonl"),
        format!("{line}\n{{\"internal_id\":\"01JB"),
    )
    .unwrap();
    let executor = Executor::builder().state_dir(&dir.0).build().unwrap();
    let events = executor.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], json!("ord-1"));
    // The torn line is cut off, so the next append starts on a line of its own.
    assert_eq!(
        std::fs::read_to_string(dir.0.join("events.jsonl")).unwrap(),
        format!("{line}\n")
    );
    drop(executor);

    std::fs::write(dir.0.join("runs").join("01JX.json"), b"{\"id\": 3").unwrap();
    let err = Executor::builder().state_dir(&dir.0).build().unwrap_err();
    match &err {
        ExecutorError::State(msg) => {
            assert!(msg.contains("01JX.json"), "{msg}");
            assert!(msg.contains("not a run record"), "{msg}");
        }
        other => panic!("unexpected error: {other:?}"),
    }

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
fn saves_leave_no_temporary_files_behind() {
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
    // The final snapshot is written right after the run finishes: wait for it.
    let completed = serde_json::to_value(RunStatus::Completed).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while run_files(&dir.0).iter().all(|r| r["status"] != completed) {
        assert!(std::time::Instant::now() < deadline, "no final snapshot");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(names(&dir.0.join("runs")), vec![format!("{run_id}.json")]);
    assert_eq!(
        names(&dir.0),
        vec!["events.jsonl", "format.json", "lock", "runs"]
    );
    process.kill();
}
