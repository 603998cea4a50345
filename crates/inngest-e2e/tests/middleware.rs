//! Middleware end to end under the local executor: the exact order of every hook across all the
//! calls of a run with a retry, a sleep, a parallel group and a sent event; dependency
//! injection; a failing hook; the client's send hooks; and the replay-quiet logger.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use inngest_sdk::middleware::{
    done, Failure, HookFuture, Input, Middleware, Next, Payload, RunInfo, SendResult, StepFuture,
    StepInfo,
};
use inngest_sdk::step::hash_id;
use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Concurrency, Ctx, Error, Event, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};

type Log = Arc<Mutex<Vec<String>>>;

/// Records every hook as `"<name> <hook> <detail>"`.
struct Recorder {
    name: &'static str,
    log: Log,
}

const STEPS: [&str; 5] = ["a", "nap", "p1", "p2", "notify"];

fn step_name(hash: &str) -> String {
    STEPS
        .iter()
        .find(|s| hash_id(s) == hash)
        .map_or_else(|| hash.to_owned(), |s| (*s).to_owned())
}

impl Recorder {
    fn push(&self, line: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} {line}", self.name));
    }
}

impl Middleware for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        let run = input.run();
        let target = run
            .targeted_step
            .as_deref()
            .map_or("-".to_owned(), step_name);
        self.push(format!("input attempt={} target={target}", run.attempt));
        Ok(())
    }

    fn transform_step_input(&self, step: &StepInfo, _data: &mut Payload) -> Result<(), Error> {
        self.push(format!("memo {}", step.id));
        Ok(())
    }

    fn before_execution<'a>(&'a self, _run: &'a RunInfo) -> HookFuture<'a, ()> {
        self.push("before".into());
        done()
    }

    fn wrap_step<'a>(&'a self, step: &'a StepInfo, next: Next<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            self.push(format!("wrap> {}", step.id));
            let out = next.run().await;
            self.push(format!(
                "wrap< {} {}",
                step.id,
                if out.is_ok() { "ok" } else { "err" }
            ));
            out
        })
    }

    fn transform_step_output(&self, step: &StepInfo, _output: &mut Payload) -> Result<(), Error> {
        self.push(format!("out {}", step.id));
        Ok(())
    }

    fn after_execution<'a>(&'a self, _run: &'a RunInfo) -> HookFuture<'a, ()> {
        self.push("after".into());
        done()
    }

    fn transform_output(&self, _run: &RunInfo, output: &mut Payload) -> Result<(), Error> {
        self.push(format!(
            "output {}",
            output.get_mut()?.cloned().unwrap_or_default()
        ));
        Ok(())
    }

    fn before_send_events<'a>(&'a self, events: &'a mut Vec<Event>) -> HookFuture<'a, ()> {
        self.push(format!("send> {}", events[0].name));
        done()
    }

    fn after_send_events<'a>(&'a self, _e: &'a [Event], r: SendResult<'a>) -> HookFuture<'a, ()> {
        self.push(format!("send< {}", r.map(<[String]>::len).unwrap_or(0)));
        done()
    }

    fn on_error(&self, _run: &RunInfo, failure: &Failure<'_>) {
        let step = failure.step.map_or("-", |s| s.id.as_str());
        self.push(format!(
            "error {step} {} retry={}",
            failure.message, failure.will_retry
        ));
    }

    fn on_panic(&self, _run: &RunInfo, message: &str) {
        self.push(format!("panic {message}"));
    }
}

fn recorded(name: &'static str, log: &Log) -> Recorder {
    Recorder {
        name,
        log: log.clone(),
    }
}

/// `flow`: `a` (fails on its first attempt), a sleep, `p1` ∥ `p2`, then `notify` (an event).
fn flow(log: &Log) -> Function {
    Function::new("flow")
        .trigger(Trigger::event("mw/flow"))
        .concurrency(Concurrency::new(1))
        .middleware(recorded("m1", log))
        .middleware(recorded("m2", log))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let attempt = step.attempt();
            let a: u32 = step
                .run("a", || async move {
                    if attempt == 0 {
                        return Err(Error::msg("flaky"));
                    }
                    Ok(1)
                })
                .await?;
            step.sleep("nap", Duration::from_secs(60)).await;
            let (p1, p2) = futures::join!(
                step.run("p1", || async { Ok(2u32) }),
                step.run("p2", || async { Ok(3u32) })
            );
            step.send_event("notify", Event::new("mw/notified", json!({})))
                .await?;
            Ok(json!({ "sum": a + p1? + p2? }))
        })
}

/// Each call of the run, as its hook lines (m1 is outer, m2 inner). The executor sends the two
/// planned steps in either order: `first` is the one targeted first.
fn expected_calls(first: &'static str, second: &'static str) -> Vec<Vec<&'static str>> {
    let head = |target: &'static str| -> Vec<&'static str> {
        match target {
            "a0" => vec!["m1 input attempt=0 target=-", "m2 input attempt=0 target=-"],
            "a1" => vec!["m1 input attempt=1 target=-", "m2 input attempt=1 target=-"],
            "p1" => vec![
                "m1 input attempt=0 target=p1",
                "m2 input attempt=0 target=p1",
            ],
            "p2" => vec![
                "m1 input attempt=0 target=p2",
                "m2 input attempt=0 target=p2",
            ],
            _ => vec!["m1 input attempt=0 target=-", "m2 input attempt=0 target=-"],
        }
    };
    let memo = |steps: &[&'static str]| -> Vec<&'static str> {
        steps
            .iter()
            .flat_map(|s| match *s {
                "a" => ["m1 memo a", "m2 memo a"],
                "nap" => ["m1 memo nap", "m2 memo nap"],
                "p1" => ["m1 memo p1", "m2 memo p1"],
                "p2" => ["m1 memo p2", "m2 memo p2"],
                _ => ["m1 memo notify", "m2 memo notify"],
            })
            .collect()
    };
    let before = vec!["m1 before", "m2 before"];
    let after = vec!["m2 after", "m1 after"];
    let ran = |s: &'static str| -> Vec<&'static str> {
        match s {
            "p1" => vec![
                "m1 wrap> p1",
                "m2 wrap> p1",
                "m2 wrap< p1 ok",
                "m1 wrap< p1 ok",
                "m2 out p1",
                "m1 out p1",
            ],
            "p2" => vec![
                "m1 wrap> p2",
                "m2 wrap> p2",
                "m2 wrap< p2 ok",
                "m1 wrap< p2 ok",
                "m2 out p2",
                "m1 out p2",
            ],
            _ => vec![
                "m1 wrap> a",
                "m2 wrap> a",
                "m2 wrap< a ok",
                "m1 wrap< a ok",
                "m2 out a",
                "m1 out a",
            ],
        }
    };
    let cat = |parts: Vec<Vec<&'static str>>| parts.concat();
    vec![
        // 1. discovery: `a` runs inline and fails (retriable).
        cat(vec![
            head("a0"),
            before.clone(),
            vec![
                "m1 wrap> a",
                "m2 wrap> a",
                "m2 wrap< a err",
                "m1 wrap< a err",
            ],
            after.clone(),
            vec!["m2 error a flaky retry=true", "m1 error a flaky retry=true"],
        ]),
        // 2. the retry of `a`: a discovery call again, attempt 1, `a` runs inline.
        cat(vec![head("a1"), before.clone(), ran("a"), after.clone()]),
        // 3. `a` replays, the sleep is found.
        cat(vec![head("d"), memo(&["a"]), before.clone(), after.clone()]),
        // 4. after the sleep: `p1` and `p2` are planned.
        cat(vec![
            head("d"),
            memo(&["a", "nap"]),
            before.clone(),
            after.clone(),
        ]),
        // 5. the first planned step, targeted.
        cat(vec![
            head(first),
            memo(&["a", "nap"]),
            before.clone(),
            ran(first),
            after.clone(),
        ]),
        // 6. the second: `join!` polls `p1` first, so `p1` replays before `p2` runs, or runs
        // before `p2` replays.
        if second == "p2" {
            cat(vec![
                head("p2"),
                memo(&["a", "nap", "p1"]),
                before.clone(),
                ran("p2"),
                after.clone(),
            ])
        } else {
            cat(vec![
                head("p1"),
                memo(&["a", "nap"]),
                before.clone(),
                ran("p1"),
                memo(&["p2"]),
                after.clone(),
            ])
        },
        // 7. memoized steps replay in the order they completed; `notify` runs inline: the send hooks run inner first, then outer first.
        cat(vec![
            head("d"),
            memo(&["a", "nap", first, second]),
            before.clone(),
            vec![
                "m1 wrap> notify",
                "m2 wrap> notify",
                "m2 send> mw/notified",
                "m1 send> mw/notified",
                "m1 send< 1",
                "m2 send< 1",
                "m2 wrap< notify ok",
                "m1 wrap< notify ok",
                "m2 out notify",
                "m1 out notify",
            ],
            after.clone(),
        ]),
        // 8. everything replays and the function returns.
        cat(vec![
            head("d"),
            memo(&["a", "nap", first, second, "notify"]),
            before.clone(),
            after.clone(),
            vec![r#"m2 output {"sum":6}"#, r#"m1 output {"sum":6}"#],
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hook_runs_once_per_call_in_the_documented_order() {
    let log: Log = Arc::default();
    let h = TestHarness::builder("mw-app")
        .function(flow(&log))
        .auto_advance(true)
        .start()
        .await
        .unwrap();
    let id = h.send(Event::new("mw/flow", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{:?}", run.history);
    assert_eq!(run.output, Some(json!({ "sum": 6 })));
    let got = log.lock().unwrap().clone();
    let (first, second) = if got.iter().position(|l| l.ends_with("target=p1"))
        < got.iter().position(|l| l.ends_with("target=p2"))
    {
        ("p1", "p2")
    } else {
        ("p2", "p1")
    };
    let expected: Vec<String> = expected_calls(first, second)
        .concat()
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, expected, "\ngot:\n{}", got.join("\n"));
}

/// A database handle a middleware injects.
#[derive(Debug)]
struct Db {
    url: &'static str,
}

/// Injects `Db` into every call; fails `before_execution` as told.
struct Inject {
    fail: Option<Error>,
    panics: Log,
}

impl Middleware for Inject {
    fn name(&self) -> &str {
        "inject"
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        input.insert(Db {
            url: "postgres://shop",
        });
        Ok(())
    }

    fn before_execution<'a>(&'a self, run: &'a RunInfo) -> HookFuture<'a, ()> {
        let result = match &self.fail {
            Some(e) if run.attempt == 0 && e.is_retriable() => Err(Error::msg(e.message())),
            Some(e) if !e.is_retriable() => Err(Error::msg(e.message()).non_retriable()),
            _ => Ok(()),
        };
        Box::pin(std::future::ready(result))
    }

    fn on_panic(&self, _run: &RunInfo, message: &str) {
        self.panics.lock().unwrap().push(message.to_owned());
    }
}

fn inject(fail: Option<Error>, panics: &Log) -> Inject {
    Inject {
        fail,
        panics: panics.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_values_hook_errors_and_panics() {
    let panics: Log = Arc::default();
    let reads_db = |id: &str| Function::new(id).trigger(Trigger::event(format!("mw/{id}")));
    let functions = vec![
        reads_db("uses-db")
            .middleware(inject(None, &panics))
            .handler(|ctx: Ctx<Value>, _step: Step| async move {
                Ok(json!({ "db": ctx.get::<Db>()?.url }))
            }),
        reads_db("no-db").handler(|ctx: Ctx<Value>, _step: Step| async move {
            Ok(json!({ "db": ctx.get::<Db>()?.url }))
        }),
        reads_db("flaky-hook")
            .retries(2)
            .middleware(inject(Some(Error::msg("pool busy")), &panics))
            .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(json!("ran")) }),
        reads_db("broken-hook")
            .retries(2)
            .middleware(inject(Some(Error::msg("no pool").non_retriable()), &panics))
            .handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(json!("ran")) }),
        reads_db("panics")
            .retries(0)
            .middleware(inject(None, &panics))
            .handler(|_ctx: Ctx<Value>, step: Step| async move {
                step.run("boom", || async {
                    if "x".len() == 1 {
                        panic!("kaboom");
                    }
                    Ok(())
                })
                .await?;
                Ok(json!(null))
            }),
    ];
    let h = TestHarness::start("mw-di", functions).await.unwrap();
    let run_of = |name: &'static str| {
        let h = &h;
        async move {
            let id = h.send(Event::new(format!("mw/{name}"), json!({}))).await;
            let run = h.wait_for_run_of(&id).await;
            h.wait_for_run(&run.id).await
        }
    };

    let run = run_of("uses-db").await;
    assert_eq!(run.output, Some(json!({ "db": "postgres://shop" })));

    let run = run_of("no-db").await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(err.name, "MissingDependency");
    assert!(err.message.contains("`middleware::Db`"), "{}", err.message);
    assert_eq!(run.requests, 1, "a missing value is not retried");

    let run = run_of("flaky-hook").await;
    assert_eq!(
        (run.status, run.output, run.requests),
        (RunStatus::Completed, Some(json!("ran")), 2)
    );

    let run = run_of("broken-hook").await;
    assert_eq!(run.status, RunStatus::Failed);
    let err = run.error.unwrap();
    assert_eq!(
        (err.name.as_str(), err.message.as_str()),
        (
            "MiddlewareError",
            "middleware `inject` failed in `before_execution`: no pool"
        )
    );
    assert_eq!(run.requests, 1, "a non-retriable hook error is not retried");

    let run = run_of("panics").await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(*panics.lock().unwrap(), ["kaboom"]);
}

/// Tags sent events' data with its name, to show the order of `before_send_events`.
struct Tag(&'static str);

impl Middleware for Tag {
    fn name(&self) -> &str {
        self.0
    }

    fn before_send_events<'a>(&'a self, events: &'a mut Vec<Event>) -> HookFuture<'a, ()> {
        for e in events.iter_mut() {
            let mut tags = e.data["tags"].as_array().cloned().unwrap_or_default();
            tags.push(json!(self.0));
            e.data["tags"] = Value::Array(tags);
        }
        done()
    }

    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        for e in input.events_mut()? {
            let mut seen = e["data"]["seen"].as_array().cloned().unwrap_or_default();
            seen.push(json!(self.0));
            e["data"]["seen"] = Value::Array(seen);
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_middleware_is_outer_and_runs_for_client_sends() {
    let echo = Function::new("echo")
        .trigger(Trigger::event("mw/echo"))
        .middleware(Tag("function"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            if ctx.event.data["resend"] == json!(true) {
                step.send_event("again", Event::new("mw/echo", json!({})))
                    .await?;
            }
            Ok(ctx.event.data)
        });
    let h = TestHarness::builder("mw-client")
        .function(echo)
        .app_router("/api/inngest", |client, functions| {
            let with_mw = Inngest::builder(client.config().app_id())
                .dev_url(client.config().api_origin().as_str())
                .middleware(Tag("client"))
                .build()
                .expect("client");
            inngest_sdk::serve::axum::router(&with_mw, functions)
        })
        .start()
        .await
        .unwrap();
    // Sent by step.send_event: the function's hook runs first (inner), then the client's.
    let id = h
        .send(Event::new("mw/echo", json!({ "resend": true })))
        .await;
    let first = h.wait_for_run_of(&id).await;
    let first = h.wait_for_run(&first.id).await;
    assert_eq!(
        first.output,
        Some(json!({ "resend": true, "seen": ["client", "function"] }))
    );
    let sent = first
        .step("again")
        .and_then(|s| s.output.clone())
        .expect("sent ids");
    let ids = sent.get("data").unwrap_or(&sent)["ids"].clone();
    let second = h.wait_for_run_of(ids[0].as_str().expect("an id")).await;
    let second = h.wait_for_run(&second.id).await;
    assert_eq!(
        second.output,
        Some(json!({ "tags": ["function", "client"], "seen": ["client", "function"] }))
    );
    // Sent by a client: only its own middleware.
    let sender = Inngest::builder("mw-client")
        .dev_url(h.executor_url())
        .middleware(Tag("sender"))
        .build()
        .unwrap();
    let ids = sender.send(Event::new("mw/echo", json!({}))).await.unwrap();
    let third = h.wait_for_run_of(&ids[0]).await;
    let third = h.wait_for_run(&third.id).await;
    assert_eq!(
        third.output,
        Some(json!({ "tags": ["sender"], "seen": ["client", "function"] }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harness_middleware_is_the_clients() {
    let echo = Function::new("echo")
        .trigger(Trigger::event("mw/echo"))
        .middleware(Tag("function"))
        .handler(|ctx: Ctx<Value>, _step: Step| async move { Ok(ctx.event.data) });
    let h = TestHarness::builder("mw-harness")
        .function(echo)
        .middleware(Tag("harness"))
        .start()
        .await
        .unwrap();
    // The harness's client serves the app (outer hook) and sends the event (its send hook).
    let ids = h
        .client()
        .send(Event::new("mw/echo", json!({})))
        .await
        .unwrap();
    let run = h.wait_for_run_of(&ids[0]).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(
        run.output,
        Some(json!({ "tags": ["harness"], "seen": ["harness", "function"] }))
    );
}
