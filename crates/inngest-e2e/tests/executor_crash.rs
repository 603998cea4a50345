//! Crash safety of the executor's state store: the executor runs as a real child process on a
//! state directory and is killed with SIGKILL at random moments, 50 times, while a multi-run,
//! multi-step workload (steps with side effects, a sleep, a wait for an event, a step that
//! fails once and is retried) is under way; it is restarted on the same directory each time.
//!
//! The app runs in this process (so its side-effect ledger outlives every kill) and is
//! idempotent the way the README prescribes: a side effect is applied once per idempotency key
//! (`<event id>:<step>`), however often a step body runs. Events are sent with ids and re-sent
//! after a kill, so a lost acknowledgement cannot start a second run.
//!
//! Checked: the store opens after every kill; at the end every event has exactly one run, it
//! completed, and every side effect was applied exactly once.
//!
//! The child is this test binary itself, running [`crash_child`] (a no-op unless
//! [`CHILD_DIR`] is set).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use inngest_executor::Executor;
use inngest_sdk::{Ctx, Error, Function, Inngest, Step, Trigger, WaitForEvent};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Set in the child: the state directory it opens.
const CHILD_DIR: &str = "INNGEST_CRASH_TEST_STATE_DIR";
/// Set in the child: the app's serve URL it syncs.
const CHILD_APP: &str = "INNGEST_CRASH_TEST_APP_URL";
const ITERATIONS: usize = 50;
/// New runs started in each iteration.
const RUNS_PER_ITERATION: usize = 2;

/// The child side: an executor on [`CHILD_DIR`], serving on a free loopback port, syncing the
/// app at [`CHILD_APP`], then saying `listening <port>`, until it is killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let app = std::env::var(CHILD_APP).expect("the app URL");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let executor = match Executor::builder()
            .state_dir(dir)
            .retry_interval(Duration::ZERO)
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                say(&format!("store failed to open: {e}"));
                return;
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = executor.clone();
        tokio::spawn(async move { server.serve(listener).await });
        // Sync in-band (the app answers with its configuration, whatever port this executor
        // has); restored runs wait for their function until then, and so do new events.
        while executor.register_app_in_band(&app).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        say(&format!("listening {port}"));
        std::future::pending::<()>().await;
    });
}

/// A line to the parent, straight to the process's stdout (the test harness's output
/// capture does not see it, and it is flushed at once).
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Side effects by idempotency key: how often each was asked for, and applied (once).
#[derive(Default)]
struct Ledger {
    asked: Mutex<BTreeMap<String, u32>>,
}

impl Ledger {
    /// Applies the effect named `key` unless it already was; true when applied now.
    fn apply(&self, key: String) -> bool {
        let mut asked = self.asked.lock().unwrap();
        let n = asked.entry(key).or_default();
        *n += 1;
        *n == 1
    }
}

/// A side effect that takes a while to report back (so kills land between the effect and its
/// memo): applied once per key.
async fn effect(ledger: Arc<Ledger>, key: String) -> Result<bool, Error> {
    let applied = ledger.apply(key);
    tokio::time::sleep(Duration::from_millis(150)).await;
    Ok(applied)
}

/// reserve → sleep 1 s → wait (≤ 2 s) for `test/crash.go` → flaky (fails on attempt 0) →
/// charge; each side-effecting step keyed by the event id.
fn workload(ledger: Arc<Ledger>) -> Function {
    Function::new("crash-workload")
        .trigger(Trigger::event("test/crash.start"))
        .retries(3)
        .handler(move |ctx: Ctx<Value>, step: Step| {
            let ledger = ledger.clone();
            async move {
                let id = ctx.event.id.clone().unwrap_or_default();
                let l = ledger.clone();
                let key = format!("{id}:reserve");
                step.run("reserve", || effect(l, key)).await?;
                step.sleep("cool-down", Duration::from_secs(1)).await;
                let go: Option<inngest_sdk::Event<Value>> = step
                    .wait_for_event(
                        "wait-go",
                        WaitForEvent::new("test/crash.go", Duration::from_secs(2))
                            .matching("data.n"),
                    )
                    .await?;
                let attempt = step.attempt();
                step.run("flaky", || async move {
                    if attempt == 0 {
                        return Err(Error::msg("first attempt fails"));
                    }
                    Ok(attempt)
                })
                .await?;
                let l = ledger.clone();
                let key = format!("{id}:charge");
                step.run("charge", || effect(l, key)).await?;
                Ok(json!({ "got_go": go.is_some() }))
            }
        })
}

/// A running child executor and its port.
struct ChildExecutor {
    child: Child,
    url: String,
}

fn start_child(dir: &std::path::Path, app_url: &str) -> ChildExecutor {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_APP, app_url)
        .env("RUST_LOG", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut port = None;
    // The harness may print `test crash_child ... ` in front of the child's line.
    for line in stdout.lines().map_while(Result::ok) {
        assert!(
            !line.contains("store failed to open"),
            "after a kill: {line}"
        );
        if let Some((_, p)) = line.split_once("listening ") {
            port = Some(p.trim().to_owned());
            break;
        }
    }
    let port = port.expect("the child executor started");
    ChildExecutor {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// Sends an event; false when the executor did not acknowledge it (it may be dying).
async fn send(http: &reqwest::Client, url: &str, event: &Value) -> bool {
    let res = http
        .post(format!("{url}/e/test"))
        .json(event)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    matches!(res, Ok(r) if r.status().is_success())
}

/// The runs of event `id`, from the REST API.
async fn runs_of(http: &reqwest::Client, url: &str, id: &str) -> Option<Vec<Value>> {
    let res = http
        .get(format!("{url}/v1/events/{id}/runs"))
        .send()
        .await
        .ok()?;
    let body: Value = res.json().await.ok()?;
    body["data"].as_array().cloned()
}

#[test]
fn an_executor_killed_at_random_50_times_completes_every_run_once() {
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("crash test seed: {seed} (CRASH_SEED={seed} replays it)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = std::env::temp_dir().join(format!("inngest-crash-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = Arc::new(Ledger::default());

    // The app, in this process; its client's event API is unused (no send_event step).
    let app_url = rt.block_on(async {
        let client = Inngest::builder("crash-app").dev(true).build().unwrap();
        let router = inngest_sdk::serve::axum::router(&client, [workload(ledger.clone())]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/inngest", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    });
    let http = reqwest::Client::new();
    // Every event sent so far (by id), and whether the executor acknowledged it.
    let mut events: Vec<(Value, bool)> = Vec::new();
    let mut n = 0;
    for _ in 0..ITERATIONS {
        let mut ex = start_child(&dir, &app_url);
        rt.block_on(async {
            for _ in 0..RUNS_PER_ITERATION {
                n += 1;
                let start = json!({"name": "test/crash.start", "id": format!("start-{n}"),
                                   "data": {"n": n}});
                events.push((start, false));
                // Half the runs get their `go` event, the other half time out.
                if n % 2 == 0 {
                    let go = json!({"name": "test/crash.go", "id": format!("go-{n}"),
                                    "data": {"n": n}});
                    events.push((go, false));
                }
            }
            for (event, acked) in events.iter_mut().filter(|(_, acked)| !*acked) {
                *acked = send(&http, &ex.url, event).await;
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(0..600))).await;
        });
        ex.child.kill().unwrap();
        ex.child.wait().unwrap();
    }

    // A last start, left running: everything must finish.
    let mut ex = start_child(&dir, &app_url);
    let starts: Vec<String> = events
        .iter()
        .filter(|(e, _)| e["name"] == "test/crash.start")
        .map(|(e, _)| e["id"].as_str().unwrap().to_owned())
        .collect();
    let runs: HashMap<String, Vec<Value>> = rt.block_on(async {
        // Re-send everything: events already stored are deduplicated by id.
        for (event, _) in &events {
            assert!(send(&http, &ex.url, event).await, "the executor is up");
        }
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut all = HashMap::new();
            for id in &starts {
                all.insert(
                    id.clone(),
                    runs_of(&http, &ex.url, id).await.unwrap_or_default(),
                );
            }
            let done = all
                .values()
                .all(|rs| !rs.is_empty() && rs.iter().all(|r| r["status"] != "Running"));
            if done || Instant::now() > deadline {
                break all;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    ex.child.kill().unwrap();
    ex.child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(starts.len(), ITERATIONS * RUNS_PER_ITERATION);
    for id in &starts {
        let rs = &runs[id];
        assert_eq!(rs.len(), 1, "event {id} started {} runs: {rs:#?}", rs.len());
        assert_eq!(rs[0]["status"], "Completed", "event {id}: {:#?}", rs[0]);
    }
    let asked = ledger.asked.lock().unwrap();
    for id in &starts {
        for step in ["reserve", "charge"] {
            let key = format!("{id}:{step}");
            assert!(
                asked.get(&key).copied().unwrap_or(0) >= 1,
                "{key} never ran"
            );
        }
    }
    // Each key was applied once (the first ask); later asks were absorbed by idempotency.
    assert_eq!(asked.len(), starts.len() * 2);
    let repeats: u32 = asked.values().map(|n| n - 1).sum();
    println!(
        "side effects: {} applied once each, {repeats} repeats absorbed",
        asked.len()
    );
}
