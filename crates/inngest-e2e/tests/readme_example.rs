//! The "Testing your functions" example of the README, kept compiling and passing here.

use std::time::Duration;

use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Ctx, Event, Function, Step, Trigger};
use serde_json::json;

#[derive(serde::Deserialize)]
struct Signup {
    user_id: String,
    email: String,
}

fn welcome() -> Function {
    Function::new("send-welcome")
        .trigger(Trigger::event("app/user.created"))
        .retries(3)
        .handler(|ctx: Ctx<Signup>, step: Step| async move {
            let email = ctx.event.data.email.clone();
            let id: String = step
                .run(
                    "send-email",
                    || async move { Ok(format!("sent to {email}")) },
                )
                .await?;
            step.sleep("wait-a-day", Duration::from_secs(86_400)).await;
            step.run("follow-up", || async { Ok(()) }).await?;
            Ok(json!({ "user": ctx.event.data.user_id, "email": id }))
        })
}

#[tokio::test]
async fn welcome_email_is_sent_after_a_day() {
    let harness = TestHarness::builder("my-app")
        .functions([welcome()])
        .auto_advance(true) // virtual clock: a 1-day sleep takes milliseconds
        .mock_step("send-welcome", "follow-up", json!(null)) // skip a step, use this output
        .start()
        .await
        .unwrap();
    let event_id = harness
        .send(Event::new(
            "app/user.created",
            json!({"user_id": "u1", "email": "a@b.c"}),
        ))
        .await;
    let run = harness.wait_for_run_of(&event_id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output,
        Some(json!({ "user": "u1", "email": "sent to a@b.c" }))
    );
    // The mocked step is recorded when the run starts (its result is known up front).
    let steps: Vec<&str> = run.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["follow-up", "send-email", "wait-a-day"]);
    // The sleep took a virtual day, not a real one.
    let sleep = &run.steps[2];
    let slept = sleep.ended_at.unwrap() - sleep.started_at;
    assert!(slept >= chrono::Duration::days(1), "{slept}");
}
