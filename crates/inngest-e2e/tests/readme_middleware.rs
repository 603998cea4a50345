//! The "Middleware" example of the README (between the markers below, as in the README), kept
//! compiling here and run under the local executor: the injected value reaches the handler, the
//! input and output transforms change what the handler and the run see, step outputs are
//! redacted before they are memoized, sends are tagged, and failures reach one reporter.

use std::sync::{Arc, Mutex};

use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::Inngest;
use serde_json::json;

// ---- README "Middleware" example ----
use std::time::Instant;

use inngest_sdk::middleware::{
    done, Failure, HookFuture, Input, Middleware, Next, Payload, RunInfo, SendResult, StepFuture,
    StepInfo,
};
use inngest_sdk::{Ctx, Error, Event, Function, Step, Trigger};
use serde_json::Value;

/// Stands in for your database pool (`sqlx::PgPool` is `Clone` too).
#[derive(Clone)]
struct Db {
    url: String,
}

/// Input: attach values the handler reads by type (`ctx.get::<Db>()`), and rewrite the events
/// before the handler sees them.
struct Inject(Db);

impl Middleware for Inject {
    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        input.insert(self.0.clone());
        for event in input.events_mut()? {
            if let Some(Value::String(email)) = event.pointer_mut("/data/email") {
                *email = email.to_lowercase();
            }
        }
        Ok(())
    }
}

/// Execution and steps: when user code starts and ends, and how long each step takes.
struct Timing;

impl Middleware for Timing {
    fn before_execution<'a>(&'a self, run: &'a RunInfo) -> HookFuture<'a, ()> {
        tracing::debug!(run = %run.run_id, "replay over: new code runs from here");
        done()
    }

    fn wrap_step<'a>(&'a self, step: &'a StepInfo, next: Next<'a>) -> StepFuture<'a> {
        Box::pin(async move {
            let started = Instant::now();
            let out = next.run().await; // the step's body (and the inner middleware)
            tracing::info!(step = %step.id, ms = started.elapsed().as_millis() as u64, ok = out.is_ok());
            out
        })
    }

    fn after_execution<'a>(&'a self, run: &'a RunInfo) -> HookFuture<'a, ()> {
        tracing::debug!(run = %run.run_id, "user code ended for this call");
        done()
    }
}

/// Outputs: what is memoized for a step, what a replay hands back, what the run returns.
struct Redact;

impl Middleware for Redact {
    fn transform_step_output(&self, _step: &StepInfo, output: &mut Payload) -> Result<(), Error> {
        if let Some(Value::Object(map)) = output.get_mut()? {
            map.remove("card_number"); // never stored by Inngest
        }
        Ok(())
    }

    fn transform_step_input(&self, _step: &StepInfo, data: &mut Payload) -> Result<(), Error> {
        if let Some(Value::Object(map)) = data.get_mut()? {
            map.insert("replayed".into(), Value::Bool(true));
        }
        Ok(())
    }

    fn transform_output(&self, _run: &RunInfo, output: &mut Payload) -> Result<(), Error> {
        if let Some(value) = output.get_mut()? {
            *value = serde_json::json!({ "v": 1, "result": value.take() });
        }
        Ok(())
    }
}

/// Sends: change events before they leave (client `send` and `step.send_event`), see the ids.
struct TagSends;

impl Middleware for TagSends {
    fn before_send_events<'a>(&'a self, events: &'a mut Vec<Event>) -> HookFuture<'a, ()> {
        for event in events.iter_mut() {
            event.data["source"] = "billing".into();
        }
        done()
    }

    fn after_send_events<'a>(
        &'a self,
        events: &'a [Event],
        result: SendResult<'a>,
    ) -> HookFuture<'a, ()> {
        match result {
            Ok(ids) => tracing::info!(sent = ids.len(), "events sent"),
            Err(e) => tracing::warn!(events = events.len(), error = %e, "send failed"),
        }
        done()
    }
}

/// Errors and panics of every function, reported in one place.
struct Report;

impl Middleware for Report {
    fn on_error(&self, run: &RunInfo, failure: &Failure<'_>) {
        let step = failure.step.map(|s| s.id.as_str());
        tracing::warn!(function = %run.function_id, ?step, retry = failure.will_retry, "{}", failure.message);
    }

    fn on_panic(&self, run: &RunInfo, message: &str) {
        tracing::error!(function = %run.function_id, "panicked: {message}");
    }
}

fn charge() -> Function {
    Function::new("charge")
        .trigger(Trigger::event("billing/charge"))
        .middleware(Redact) // this function only, inside the client's middleware
        .middleware(TagSends)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let db = ctx.get::<Db>()?; // a missing value is an error naming the type
            ctx.log().info("charging"); // once per run, not again on replays
            let email = ctx.event.data["email"].clone();
            let card: Value = step
                .run("charge-card", || async {
                    Ok(serde_json::json!({ "charge_id": "ch_1", "card_number": "4242" }))
                })
                .await?;
            step.send_event(
                "receipt",
                Event::new("billing/receipt", serde_json::json!({ "email": email })),
            )
            .await?;
            Ok(serde_json::json!({ "db": db.url, "email": email, "card": card }))
        })
}
// ---- end of the README example ----

/// Lines the `Report` middleware would log, captured by a test-only twin of it.
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<String>>>);

impl Middleware for Reports {
    fn on_error(&self, run: &RunInfo, failure: &Failure<'_>) {
        let step = failure.step.map_or("-", |s| s.id.as_str());
        let line = format!(
            "{} {step} {} retry={} from_step={}",
            run.function_id, failure.message, failure.will_retry, failure.from_step
        );
        self.0.lock().unwrap().push(line);
    }
}

fn client_with(client: &Inngest, reports: &Reports) -> Inngest {
    Inngest::builder(client.config().app_id())
        .dev_url(client.config().api_origin().as_str())
        .middleware(Inject(Db {
            url: "postgres://shop".into(),
        }))
        .middleware(Timing)
        .middleware(Report)
        .middleware(reports.clone())
        .build()
        .expect("client")
}

#[tokio::test]
async fn the_readme_middleware_shape_the_run() {
    let reports = Reports::default();
    let for_router = reports.clone();
    let flaky = Function::new("flaky")
        .trigger(Trigger::event("billing/flaky"))
        .retries(1)
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            step.run("fail", || async {
                Err::<(), _>(Error::msg("card declined"))
            })
            .await?;
            Ok(json!(null))
        });
    let h = TestHarness::builder("billing")
        .functions([charge(), flaky])
        .app_router("/api/inngest", move |client, functions| {
            inngest_sdk::serve::axum::router(&client_with(client, &for_router), functions)
        })
        .start()
        .await
        .unwrap();

    let id = h
        .send(Event::new(
            "billing/charge",
            json!({ "email": "Ann@Shop.Example" }),
        ))
        .await;
    let run = h.wait_for_run_of(&id).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed, "{run:?}");
    // The handler saw the injected pool and the lowercased email; on the final call the card
    // came back from memoized state (redacted, then marked by transform_step_input); the
    // output is wrapped by transform_output.
    assert_eq!(
        run.output,
        Some(json!({ "v": 1, "result": {
            "db": "postgres://shop",
            "email": "ann@shop.example",
            "card": { "charge_id": "ch_1", "replayed": true },
        }}))
    );
    // What Inngest memoized for the step has no card number.
    let memo = run
        .step("charge-card")
        .and_then(|s| s.output.clone())
        .unwrap();
    assert_eq!(
        memo.get("data").unwrap_or(&memo),
        &json!({ "charge_id": "ch_1" })
    );
    // The sent event was tagged on its way out.
    let sent = run.step("receipt").and_then(|s| s.output.clone()).unwrap();
    let receipt_id = sent.get("data").unwrap_or(&sent)["ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    let receipt = h
        .executor()
        .events()
        .into_iter()
        .find(|e| e["id"] == receipt_id.as_str())
        .expect("the receipt event");
    assert_eq!(
        receipt["data"],
        json!({ "email": "ann@shop.example", "source": "billing" })
    );
    assert!(reports.0.lock().unwrap().is_empty());

    // A failing step: one report per failed attempt, the last one not retried; then the call
    // that replays the step's final error has the function return it (no step named).
    let id = h.send(Event::new("billing/flaky", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let lines = reports.0.lock().unwrap().clone();
    assert_eq!(
        lines,
        [
            "flaky fail card declined retry=true from_step=false",
            "flaky fail card declined retry=false from_step=false",
            "flaky - card declined retry=false from_step=true",
        ]
    );
}
