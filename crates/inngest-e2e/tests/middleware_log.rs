//! The replay-quiet logger: a function of three steps is called four times (once per step, then
//! to finish), and each of its log lines is emitted exactly once across those calls.

mod support;

use inngest_sdk::testing::{RunStatus, TestHarness};
use inngest_sdk::{Ctx, Event, Function, Step, Trigger};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_step_run_logs_each_line_once() {
    let logs = support::logs::logs();
    let f = Function::new("three")
        .trigger(Trigger::event("log/three"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            ctx.log().info("user-line start");
            let a: u32 = step.run("a", || async { Ok(1) }).await?;
            ctx.log().info(format_args!("user-line after a={a}"));
            let b: u32 = step.run("b", || async { Ok(2) }).await?;
            ctx.log().warn(format_args!("user-line after b={b}"));
            let c: u32 = step.run("c", || async { Ok(3) }).await?;
            ctx.log()
                .error(format_args!("user-line done sum={}", a + b + c));
            Ok(json!(a + b + c))
        });
    let h = TestHarness::start("log-app", [f]).await.unwrap();
    let id = h.send(Event::new("log/three", json!({}))).await;
    let run = h.wait_for_run_of(&id).await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(
        (run.status, run.output),
        (RunStatus::Completed, Some(json!(6)))
    );
    assert_eq!(run.requests, 4, "one call per step, then one to finish");
    let text = logs.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("inngest::user"))
        .map(|l| l.split("inngest::user: ").nth(1).unwrap_or(l))
        .collect();
    assert_eq!(
        lines,
        [
            "user-line start",
            "user-line after a=1",
            "user-line after b=2",
            "user-line done sum=6"
        ],
        "{text}"
    );
    for (line, level) in text
        .lines()
        .filter(|l| l.contains("inngest::user"))
        .zip(["INFO", "INFO", "WARN", "ERROR"])
    {
        assert!(line.contains(level), "{line}");
    }
}
