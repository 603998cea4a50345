//! Parallel steps, planning and targeted execution over real HTTP: 2, 3 and 10 parallel runs, a
//! mix of run + sleep + wait, repeated ids (`:N` suffixes), `disable_immediate_execution`,
//! targeted calls (found and never found), races and stack-order replay. Hashes are SHA-1 values
//! computed with Python's hashlib.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{join_all, select, Either};
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{Ctx, Error, Function, Step, Trigger, WaitForEvent};
use serde_json::{json, Value};
use support::logs::capture_warnings;
use support::{event, op_core, Call, FakeApi, Resp, Server};

const APP: &str = "par-app";

const H_P: [&str; 10] = [
    "f187cebb22cb0444557b525de5b371e58e7199ef",
    "b78f576611ec06f96af3ca654c22172a5d746c40",
    "c5fd961c9f737a955a308050062e7a2c34ee67c3",
    "e4fbe62d887b8cdee986e6be781203d8d938bbd5",
    "1b9645e71bb4d1ce9c48520b78a3d94f3f9a6a62",
    "4197f5d83381787bd4639867c8997940a24a0832",
    "826f05c1f92a4f413892307852a72987f0e23bee",
    "e88b9eb4a293437625227c529460d0e00a216e9d",
    "0cb9b51e82cebfa79bea006140da6ea63c2543b0",
    "e0517ffd4cdecb9b0ae4a60a91a231034fca07b0",
];
const H_R: &str = "4dc7c9ec434ed06502767136789763ec11d2c4b7";
const H_Z: &str = "395df8f7c51f007019cb30201c49e884b46b92fa";
const H_W: &str = "aff024fe4ab0fece4091de044c58c9ae4233383a";
const H_LOOP: &str = "1df823e482339eb6067f4134408b0b8b28411a78";
const H_LOOP_1: &str = "a0cb75f0a464ed6731caadd18aa9932daf00bb50";
const H_LOOP_2: &str = "dd014976323740b5623326fd7169be3055c1b536";
const H_PLANNED_ALONE: &str = "0244b27835a04aea24382df487390ce4782d5aba";
const H_MISSING: &str = "5a013c49508291c6816ac388f93a2c11973086ed";
const H_FAST: &str = "0afde56699db99c43c6254d81ccc16fbb7096ad3";
const H_SLOW: &str = "57e8a7776d6892a83f2a49678f8141f4fb883e62";
const H_X: &str = "11f6ad8ec52a2984abaafd7c3b516503785c2072";
const H_Y: &str = "95cb0bfd2977c761298d9624e4b4d4c72a39974a";
const H_AFTER: &str = "405906c9d5be6ae5393ca65fb0e7c38e0d585ecb";

fn f(id: &str) -> inngest_sdk::function::FunctionBuilder {
    Function::new(id).trigger(Trigger::event("app/t"))
}

async fn run_p(step: &Step, i: usize) -> Result<String, inngest_sdk::StepError> {
    step.run(&format!("p{i}"), || async move { Ok(format!("v{i}")) })
        .await
}

fn functions() -> Vec<Function> {
    vec![
        // futures::join! of two runs.
        f("par2").handler(|_c: Ctx<Value>, step: Step| async move {
            let (a, b) = futures::join!(run_p(&step, 0), run_p(&step, 1));
            Ok(json!([a?, b?]))
        }),
        // try_join! of three runs.
        f("par3").handler(|_c: Ctx<Value>, step: Step| async move {
            let (a, b, c) = futures::try_join!(run_p(&step, 0), run_p(&step, 1), run_p(&step, 2))?;
            Ok(json!([a, b, c]))
        }),
        // join_all of ten runs.
        f("par10").handler(|_c: Ctx<Value>, step: Step| async move {
            let all = join_all((0..10).map(|i| run_p(&step, i))).await;
            let values = all.into_iter().collect::<Result<Vec<_>, _>>()?;
            Ok(json!(values))
        }),
        // A run, a sleep and a wait in parallel.
        f("mix").handler(|_c: Ctx<Value>, step: Step| async move {
            let (r, (), w) = futures::join!(
                step.run("r", || async { Ok(1) }),
                step.sleep("z", Duration::from_secs(5)),
                step.wait_for_event::<Value>(
                    "w",
                    WaitForEvent::new("app/go", Duration::from_secs(3600))
                ),
            );
            let r: u32 = r?;
            Ok(json!({ "r": r, "w": w?.map(|e| e.name) }))
        }),
        // The same id three times in a loop, sequentially and in parallel.
        f("loop").handler(|_c: Ctx<Value>, step: Step| async move {
            let mut out = Vec::new();
            for i in 0..3u32 {
                let v: u32 = step.run("loop", || async move { Ok(i * 10) }).await?;
                out.push(v);
            }
            Ok(json!(out))
        }),
        f("loop-par").handler(|_c: Ctx<Value>, step: Step| async move {
            let all = join_all((0..3u32).map(|i| {
                let step = step.clone();
                async move { step.run("loop", || async move { Ok(i * 10) }).await }
            }))
            .await;
            let values = all.into_iter().collect::<Result<Vec<u32>, _>>()?;
            Ok(json!(values))
        }),
        f("planned-alone").handler(|_c: Ctx<Value>, step: Step| async move {
            let v: String = step
                .run("planned-alone", || async { Ok("done".to_owned()) })
                .await?;
            Ok(v)
        }),
        // Two runs in parallel, the second fails.
        f("par-fail").handler(|_c: Ctx<Value>, step: Step| async move {
            let (a, b) = futures::join!(
                run_p(&step, 0),
                step.run("p1", || async { Err::<String, _>(Error::msg("p1 broke")) })
            );
            Ok(json!([a?, b?]))
        }),
        // A race: whichever step finishes first wins.
        f("race").handler(|_c: Ctx<Value>, step: Step| async move {
            let fast = step.run("fast", || async { Ok("fast".to_owned()) });
            let slow = step.run("slow", || async { Ok("slow".to_owned()) });
            let winner = match select(Box::pin(fast), Box::pin(slow)).await {
                Either::Left((v, _)) | Either::Right((v, _)) => v?,
            };
            Ok(json!({ "winner": winner }))
        }),
        // A race, then a step that uses the winner.
        f("race-then").handler(|_c: Ctx<Value>, step: Step| async move {
            let fast = step.run("fast", || async { Ok("fast".to_owned()) });
            let slow = step.run("slow", || async { Ok("slow".to_owned()) });
            let winner = match select(Box::pin(fast), Box::pin(slow)).await {
                Either::Left((v, _)) | Either::Right((v, _)) => v?,
            };
            let after: String = step
                .run("after", || async move { Ok(format!("after {winner}")) })
                .await?;
            Ok(json!({ "after": after }))
        }),
        // Two steps with one id, created in one order and awaited in the other.
        f("created-order").handler(|_c: Ctx<Value>, step: Step| async move {
            let first = step.run("x", || async { Ok("first".to_owned()) });
            let second = step.run("x", || async { Ok("second".to_owned()) });
            let b: String = second.await?;
            let a: String = first.await?;
            Ok(json!([a, b]))
        }),
        // Two sequential steps.
        f("seq").handler(|_c: Ctx<Value>, step: Step| async move {
            let x: String = step.run("x", || async { Ok("x".to_owned()) }).await?;
            let y: String = step.run("y", || async { Ok("y".to_owned()) }).await?;
            Ok(json!([x, y]))
        }),
        // Real (non-step) I/O before a step and inside its body.
        f("io").handler(|_c: Ctx<Value>, step: Step| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let x: String = step
                .run("x", || async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok("x".to_owned())
                })
                .await?;
            Ok(x)
        }),
        // A step called inside another step's body (not supported).
        f("nested").handler(|_c: Ctx<Value>, step: Step| async move {
            let inner = step.clone();
            let v: String = step
                .run("x", || async move {
                    let y: String = inner.run("y", || async { Ok("y".to_owned()) }).await?;
                    Ok(y)
                })
                .await?;
            Ok(v)
        }),
        // A step future driven by another tokio task.
        f("spawned").handler(|_c: Ctx<Value>, step: Step| async move {
            let s = step.clone();
            let handle = tokio::spawn(async move { s.run("x", || async { Ok(1u32) }).await });
            let v: u32 = handle.await.map_err(Error::msg)??;
            Ok(v)
        }),
        // The order in which three parallel memoized steps resolve, then one more step.
        f("order").handler(|_c: Ctx<Value>, step: Step| async move {
            let seen = Arc::new(Mutex::new(Vec::<String>::new()));
            let branch = |id: &'static str| {
                let (step, seen) = (step.clone(), seen.clone());
                async move {
                    step.run(id, || async move { Ok(id.to_owned()) })
                        .await
                        .map(|v: String| seen.lock().unwrap().push(v))
                }
            };
            futures::try_join!(branch("x"), branch("y"), branch("z"))?;
            let seen = seen.lock().unwrap().clone();
            let after: Vec<String> = step.run("after", || async move { Ok(seen) }).await?;
            Ok(json!(after))
        }),
    ]
}

async fn app() -> Server {
    let fake = FakeApi::start().await;
    support::serve_app(&support::dev_client(APP, &fake), functions()).await
}

fn call(f: &str) -> Call {
    Call::new(&format!("{APP}-{f}"), event("app/t", json!({})))
}

fn planned(hash: &str, name: &str) -> Value {
    json!({"id": hash, "op": "StepPlanned", "name": name, "data": null})
}

fn step_run(hash: &str, name: &str, data: Value) -> Value {
    json!({"id": hash, "op": "StepRun", "name": name, "data": data})
}

fn cores(resp: &Resp) -> Vec<Value> {
    resp.assert_sdk_headers();
    resp.assert_no_retry(None);
    resp.ops().iter().map(op_core).collect()
}

// ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn two_parallel_runs_planned_then_targeted() {
    let server = app().await;
    // 1. Discovery finds both: StepPlanned ×2 (not run inline).
    let resp = call("par2").post(&server).await;
    assert_eq!(cores(&resp), [planned(H_P[0], "p0"), planned(H_P[1], "p1")]);
    for op in resp.ops() {
        assert_eq!(op["displayName"], op["name"]);
        assert!(
            op.get("timing").is_none() && op.get("opts").is_none(),
            "{op}"
        );
    }
    // 2. Targeted at p0 (ForceStepPlan set by the executor): exactly p0's StepRun.
    let resp = call("par2")
        .target(H_P[0])
        .disable_immediate_execution()
        .version(2)
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_P[0], "p0", json!("v0"))]);
    // 3. Targeted at p1, with p0 already done.
    let resp = call("par2")
        .memo(H_P[0], json!({"data": "v0"}))
        .target(H_P[1])
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_P[1], "p1", json!("v1"))]);
    // 4. Discovery with both memoized (completion order p1, p0) → the join resolves.
    let resp = call("par2")
        .memo(H_P[1], json!({"data": "v1"}))
        .memo(H_P[0], json!({"data": "v0"}))
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!(["v0", "v1"])));
}

#[tokio::test]
async fn three_parallel_runs_and_partial_memos() {
    let server = app().await;
    let resp = call("par3").post(&server).await;
    assert_eq!(
        cores(&resp),
        [
            planned(H_P[0], "p0"),
            planned(H_P[1], "p1"),
            planned(H_P[2], "p2")
        ]
    );
    // p0 done: the two others are planned again, p0 is not re-reported.
    let c = call("par3").memo(H_P[0], json!({"data": "v0"}));
    assert_eq!(
        cores(&c.post(&server).await),
        [planned(H_P[1], "p1"), planned(H_P[2], "p2")]
    );
    // Targeted at p2 among them.
    let resp = c
        .clone()
        .target(H_P[2])
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_P[2], "p2", json!("v2"))]);
    // Two done: one new run step found; immediate execution runs it (v2 discovery)…
    let c = c.memo(H_P[2], json!({"data": "v2"}));
    assert_eq!(
        cores(&c.post(&server).await),
        [step_run(H_P[1], "p1", json!("v1"))]
    );
    // …but with ForceStepPlan it is planned.
    assert_eq!(
        cores(&c.clone().disable_immediate_execution().post(&server).await),
        [planned(H_P[1], "p1")]
    );
    let resp = c.memo(H_P[1], json!({"data": "v1"})).post(&server).await;
    assert_eq!(resp.json(), json!(["v0", "v1", "v2"]));
}

#[tokio::test]
async fn ten_parallel_runs() {
    let server = app().await;
    let resp = call("par10").post(&server).await;
    let expected: Vec<Value> = (0..10).map(|i| planned(H_P[i], &format!("p{i}"))).collect();
    assert_eq!(cores(&resp), expected);
    // Targeted execution of one of them returns exactly that StepRun.
    let resp = call("par10")
        .target(H_P[7])
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_P[7], "p7", json!("v7"))]);
    // All done, in a scrambled completion order.
    let mut c = call("par10");
    for i in [3, 9, 0, 7, 1, 8, 2, 6, 5, 4] {
        c = c.memo(H_P[i], json!({ "data": format!("v{i}") }));
    }
    let resp = c.post(&server).await;
    let want: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    assert_eq!((resp.status, resp.json()), (200, json!(want)));
}

#[tokio::test]
async fn parallel_mix_of_run_sleep_and_wait() {
    let server = app().await;
    let resp = call("mix").post(&server).await;
    assert_eq!(
        cores(&resp),
        [
            planned(H_R, "r"),
            json!({"id": H_Z, "op": "Sleep", "name": "z", "opts": {"duration": "5s"}, "data": null}),
            json!({"id": H_W, "op": "WaitForEvent", "name": "w",
                   "opts": {"event": "app/go", "timeout": "1h"}, "data": null}),
        ]
    );
    // Targeted at the run step: only its StepRun, the async ops are not reported again.
    let resp = call("mix")
        .target(H_R)
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_R, "r", json!(1))]);
    // Sleep done and wait timed out, run still pending → only the run is left (planned).
    let resp = call("mix")
        .memo(H_Z, Value::Null)
        .memo(H_W, Value::Null)
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [planned(H_R, "r")]);
    let resp = call("mix")
        .memo(H_Z, Value::Null)
        .memo(H_R, json!({"data": 1}))
        .memo(
            H_W,
            json!({"data": {}, "id": "e", "name": "app/go", "ts": 1, "user": {}}),
        )
        .post(&server)
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!({"r": 1, "w": "app/go"}))
    );
}

#[tokio::test]
async fn repeated_id_in_a_loop_gets_index_suffixes() {
    let server = app().await;
    let resp = call("loop").post(&server).await;
    assert_eq!(cores(&resp), [step_run(H_LOOP, "loop", json!(0))]);
    assert_eq!(resp.ops()[0]["userland"], json!({"id": "loop"}));

    let c = call("loop").memo(H_LOOP, json!({"data": 0}));
    let resp = c.post(&server).await;
    // `loop:1`: same name and display name, hashed with the suffix, index in userland.
    assert_eq!(cores(&resp), [step_run(H_LOOP_1, "loop", json!(10))]);
    assert_eq!(resp.ops()[0]["userland"], json!({"id": "loop", "index": 1}));
    assert_eq!(resp.ops()[0]["displayName"], "loop");

    let c = c.memo(H_LOOP_1, json!({"data": 10}));
    let resp = c.post(&server).await;
    assert_eq!(cores(&resp), [step_run(H_LOOP_2, "loop", json!(20))]);
    assert_eq!(resp.ops()[0]["userland"], json!({"id": "loop", "index": 2}));

    let resp = c.memo(H_LOOP_2, json!({"data": 20})).post(&server).await;
    assert_eq!((resp.status, resp.json()), (200, json!([0, 10, 20])));
}

#[tokio::test]
async fn repeated_id_in_parallel() {
    let server = app().await;
    let resp = call("loop-par").post(&server).await;
    assert_eq!(
        cores(&resp),
        [
            planned(H_LOOP, "loop"),
            planned(H_LOOP_1, "loop"),
            planned(H_LOOP_2, "loop")
        ]
    );
    let resp = call("loop-par")
        .target(H_LOOP_2)
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_LOOP_2, "loop", json!(20))]);
}

#[tokio::test]
async fn disable_immediate_execution_plans_a_lone_run_step() {
    let server = app().await;
    let resp = call("planned-alone")
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [planned(H_PLANNED_ALONE, "planned-alone")]);
    // Without the flag it runs inline.
    let resp = call("planned-alone").post(&server).await;
    assert_eq!(
        cores(&resp),
        [step_run(H_PLANNED_ALONE, "planned-alone", json!("done"))]
    );
    // And the planned step runs when targeted.
    let resp = call("planned-alone")
        .target(H_PLANNED_ALONE)
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert_eq!(
        cores(&resp),
        [step_run(H_PLANNED_ALONE, "planned-alone", json!("done"))]
    );
}

#[tokio::test]
async fn targeted_step_that_fails_is_a_step_error() {
    let server = app().await;
    let resp = call("par-fail")
        .target(H_P[1])
        .disable_immediate_execution()
        .attempt(0, 3)
        .post(&server)
        .await;
    let ops = resp.ops();
    assert_eq!(
        ops.iter().map(op_core).collect::<Vec<_>>(),
        [
            json!({"id": H_P[1], "op": "StepError", "name": "p1", "data": null,
                "error": {"name": "Error", "message": "p1 broke"}})
        ]
    );
    resp.assert_no_retry(Some("false"));
}

#[tokio::test]
async fn targeted_step_never_found_is_500_retriable() {
    let fake = FakeApi::start().await;
    let handler = ServeHandler::new(&support::dev_client(APP, &fake), functions())
        .unwrap()
        .step_not_found_timeout(Duration::from_millis(200));
    let server = support::serve_handler(handler).await;
    let started = Instant::now();
    let resp = call("planned-alone")
        .target(H_MISSING)
        .disable_immediate_execution()
        .post(&server)
        .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(resp.status, 500, "{}", resp.text());
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some("false"));
    let body = resp.json();
    assert_eq!(body["requestedStep"], H_MISSING);
    assert_eq!(body["totalFoundSteps"], 1);
    assert_eq!(body["foundSteps"][0]["id"], H_PLANNED_ALONE);
    // The found step was not executed (nothing but the 500 came back).
    assert!(body.get("data").is_none());
}

#[tokio::test]
async fn race_replays_the_recorded_winner_in_stack_order() {
    let server = app().await;
    let resp = call("race").post(&server).await;
    assert_eq!(
        cores(&resp),
        [planned(H_FAST, "fast"), planned(H_SLOW, "slow")]
    );
    // Both memoized: the one earlier in the stack wins, whatever the poll order.
    let resp = call("race")
        .memo(H_SLOW, json!({"data": "slow"}))
        .memo(H_FAST, json!({"data": "fast"}))
        .post(&server)
        .await;
    assert_eq!(resp.json(), json!({"winner": "slow"}));
    let resp = call("race")
        .memo(H_FAST, json!({"data": "fast"}))
        .memo(H_SLOW, json!({"data": "slow"}))
        .post(&server)
        .await;
    assert_eq!(resp.json(), json!({"winner": "fast"}));
    // Only one finished so far: it wins.
    let resp = call("race")
        .memo(H_SLOW, json!({"data": "slow"}))
        .post(&server)
        .await;
    assert_eq!((resp.status, resp.json()), (200, json!({"winner": "slow"})));
}

#[tokio::test]
async fn a_dropped_race_branch_does_not_hold_up_later_memoized_steps() {
    // Both racers completed (the loser after the winner), then `after` ran: the stack is
    // [fast, slow, after]. On replay the losing branch is dropped by `select` before its turn;
    // `after` must still resolve from its memo, in order, with no determinism warning.
    let (logs, _guard) = capture_warnings();
    let server = app().await;
    let resp = call("race-then")
        .memo(H_FAST, json!({"data": "fast"}))
        .memo(H_SLOW, json!({"data": "slow"}))
        .memo(H_AFTER, json!({"data": "after fast"}))
        .post(&server)
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!({"after": "after fast"}))
    );
    // The same with the winner's memo alone: `after` runs now.
    let resp = call("race-then")
        .memo(H_FAST, json!({"data": "fast"}))
        .post(&server)
        .await;
    assert_eq!(
        cores(&resp),
        [step_run(H_AFTER, "after", json!("after fast"))]
    );
    let logs = logs.text();
    assert!(!logs.contains("WARN"), "{logs}");
}

#[tokio::test]
async fn step_ids_are_taken_when_the_tool_is_called() {
    // Like the JS SDK: the second call of `x` is `x:1` (index 1) even though it is awaited
    // first.
    const H_X_1: &str = "825b938e1bf063c8ae74c6b0689861a0c2c0ae63";
    let server = app().await;
    let resp = call("created-order").post(&server).await;
    assert_eq!(resp.status, 206);
    assert_eq!(cores(&resp), [step_run(H_X_1, "x", json!("second"))]);
    assert_eq!(resp.json()[0]["userland"], json!({"id": "x", "index": 1}));
    let resp = call("created-order")
        .memo(H_X_1, json!({"data": "second"}))
        .post(&server)
        .await;
    assert_eq!(cores(&resp), [step_run(H_X, "x", json!("first"))]);
    let resp = call("created-order")
        .memo(H_X_1, json!({"data": "second"}))
        .memo(H_X, json!({"data": "first"}))
        .post(&server)
        .await;
    assert_eq!(
        (resp.status, resp.json()),
        (200, json!(["first", "second"]))
    );
}

#[tokio::test]
async fn parallel_memos_resolve_in_stack_order() {
    let server = app().await;
    for order in [["y", "x", "z"], ["z", "y", "x"], ["x", "y", "z"]] {
        let mut c = call("order");
        for id in order {
            let hash = match id {
                "x" => H_X,
                "y" => H_Y,
                _ => "395df8f7c51f007019cb30201c49e884b46b92fa",
            };
            c = c.memo(hash, json!({ "data": id }));
        }
        // The next step records the order the branches resolved in.
        let resp = c.post(&server).await;
        assert_eq!(
            cores(&resp),
            [step_run(H_AFTER, "after", json!(order))],
            "stack {order:?}"
        );
    }
}

#[tokio::test]
async fn memos_out_of_stack_order_do_not_deadlock() {
    // The stack says y completed before x although the code runs x first (changed or
    // non-deterministic code): the SDK warns and resolves in code order instead of hanging.
    let (logs, _guard) = capture_warnings();
    let server = app().await;
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        call("seq")
            .memo(H_Y, json!({"data": "y"}))
            .memo(H_X, json!({"data": "x"}))
            .post(&server),
    )
    .await
    .expect("no deadlock");
    assert_eq!((resp.status, resp.json()), (200, json!(["x", "y"])));
    // A warning names the step the stack expected next.
    let logs = logs.text();
    assert!(logs.contains("WARN") && logs.contains(H_Y), "{logs}");
}

#[tokio::test]
async fn non_step_io_before_and_inside_a_step() {
    let server = app().await;
    let resp = call("io").post(&server).await;
    assert_eq!(cores(&resp), [step_run(H_X, "x", json!("x"))]);
    assert!(resp.ops()[0]["timing"]["b"].as_u64().unwrap() >= 20_000_000);
}

/// A step called inside another step's body fails the outer step for good with a clear error
/// (it used to hang the request).
#[tokio::test]
async fn nested_step_fails_clearly_instead_of_hanging() {
    let server = app().await;
    let resp = tokio::time::timeout(Duration::from_secs(5), call("nested").post(&server))
        .await
        .expect("a nested step must not hang the request");
    assert_eq!(resp.status, 206);
    resp.assert_no_retry(Some("true"));
    let ops = resp.json();
    assert_eq!(ops.as_array().map(Vec::len), Some(1), "{ops}");
    assert_eq!(ops[0]["op"], "StepFailed");
    assert_eq!(ops[0]["name"], "x");
    assert_eq!(ops[0]["error"]["name"], "NestedStepError");
    let msg = ops[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("step `y`") && msg.contains("cannot be nested"),
        "{msg}"
    );
}

/// A step future polled by another tokio task wakes the call when it registers (it used to be
/// found after the handler's quiescence check, hanging the request).
#[tokio::test]
async fn step_on_a_spawned_task_is_reported() {
    let server = app().await;
    let resp = tokio::time::timeout(Duration::from_secs(5), call("spawned").post(&server))
        .await
        .expect("a step on a spawned task must not hang the request");
    assert_eq!(resp.status, 206);
}
