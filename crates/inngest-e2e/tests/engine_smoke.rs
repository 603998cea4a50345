use std::time::Duration;

use bytes::Bytes;
use inngest_sdk::{serve::ServeHandler, Ctx, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};

fn client() -> Inngest {
    Inngest::builder("js-capture-app")
        .dev(true)
        .build()
        .unwrap()
}

fn hello() -> Function {
    Function::new("hello")
        .trigger(Trigger::event("test/hello"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let a: Value = step
                .run("a", || async {
                    Ok(json!({"fromA": 1, "got": ctx.event.data}))
                })
                .await?;
            step.sleep("s", Duration::from_secs(2)).await;
            let b: String = step
                .run("b", || async move { Ok(format!("b saw {a}")) })
                .await?;
            Ok(json!({ "b": b }))
        })
}

async fn call(h: &ServeHandler, query: &str, body: Value) -> (u16, Value, http::HeaderMap) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("/api/inngest?{query}"))
        .body(Bytes::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let res = h.handle(req).await;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let v = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
    (status, v, headers)
}

fn body(steps: Value, stack: &[&str]) -> Value {
    json!({
        "ctx": {"attempt": 0, "disable_immediate_execution": false, "run_id": "r1", "max_attempts": 5,
                 "stack": {"current": stack.len(), "stack": stack}, "step_id": "step"},
        "event": {"name": "test/hello", "data": {"hello": "world"}, "id": "e1", "ts": 1, "user": {}},
        "events": [{"name": "test/hello", "data": {"hello": "world"}, "id": "e1", "ts": 1, "user": {}}],
        "steps": steps, "version": -1
    })
}

#[tokio::test]
async fn hello_runs_step_by_step() {
    let h = ServeHandler::new(&client(), [hello()]).unwrap();
    let q = "fnId=js-capture-app-hello&stepId=step";
    let (s, v, hd) = call(&h, q, body(json!({}), &[])).await;
    assert_eq!(s, 206, "{v}");
    assert_eq!(v[0]["op"], "StepRun");
    assert_eq!(v[0]["id"], "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8");
    assert_eq!(v[0]["data"], json!({"fromA": 1, "got": {"hello": "world"}}));
    assert_eq!(hd["x-inngest-req-version"], "2");
    let a = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8";
    let (s, v, _) = call(&h, q, body(json!({a: {"data": {"fromA": 1}}}), &[a])).await;
    assert_eq!(s, 206);
    assert_eq!(
        v,
        json!([{"id":"a0f1490a20d0211c997b44bc357e1972deab8ae3","op":"Sleep","name":"s","displayName":"s","opts":{"duration":"2s"},"data":null,"userland":{"id":"s"}}])
    );
    let sl = "a0f1490a20d0211c997b44bc357e1972deab8ae3";
    let (s, v, _) = call(
        &h,
        q,
        body(json!({a: {"data": {"fromA": 1}}, sl: null}), &[a, sl]),
    )
    .await;
    assert_eq!(s, 206);
    assert_eq!(v[0]["op"], "StepRun");
    assert_eq!(v[0]["data"], "b saw {\"fromA\":1}");
    let b = "e9d71f5ee7c92d6dc9e92ffdad17b8bd49418f98";
    let (s, v, hd) = call(
        &h,
        q,
        body(
            json!({a: {"data": {"fromA": 1}}, sl: null, b: {"data": "x"}}),
            &[a, sl, b],
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(v, json!({"b": "x"}));
    assert!(hd.get("x-inngest-no-retry").is_none());
}

#[tokio::test]
async fn parallel_steps_are_planned_then_targeted() {
    let f = Function::new("par")
        .trigger(Trigger::event("t/par"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let futs = (0..10).map(|i| {
                let step = step.clone();
                async move { step.run(&format!("s{i}"), || async move { Ok(i) }).await }
            });
            let results: Vec<i32> = futures::future::try_join_all(futs).await?;
            Ok(results.iter().sum::<i32>())
        });
    let h = ServeHandler::new(&client(), [f]).unwrap();
    let (s, v, _) = call(
        &h,
        "fnId=js-capture-app-par&stepId=step",
        body(json!({}), &[]),
    )
    .await;
    assert_eq!(s, 206);
    let ops = v.as_array().unwrap();
    assert_eq!(ops.len(), 10);
    assert!(ops.iter().all(|o| o["op"] == "StepPlanned"));
    let target = inngest_sdk::step::hash_id("s3");
    let (s, v, _) = call(
        &h,
        &format!("fnId=js-capture-app-par&stepId={target}"),
        body(json!({}), &[]),
    )
    .await;
    assert_eq!(s, 206);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["op"], "StepRun");
    assert_eq!(v[0]["id"], target.as_str());
    assert_eq!(v[0]["data"], 3);
    // all memoized (in reverse completion order) -> 200 with the sum
    let mut steps = serde_json::Map::new();
    let mut stack = vec![];
    for i in (0..10).rev() {
        let hsh = inngest_sdk::step::hash_id(&format!("s{i}"));
        steps.insert(hsh.clone(), json!({"data": i}));
        stack.push(hsh);
    }
    let stack_refs: Vec<&str> = stack.iter().map(String::as_str).collect();
    let (s, v, _) = call(
        &h,
        "fnId=js-capture-app-par&stepId=step",
        body(Value::Object(steps), &stack_refs),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, json!(45));
}

#[tokio::test]
async fn targeted_call_for_a_memoized_step_never_reruns_it() {
    let f = Function::new("par2")
        .trigger(Trigger::event("t/par2"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let (a, b) = futures::try_join!(
                step.run("a", || async { Ok(1) }),
                step.run("b", || async { Ok(2) }),
            )?;
            Ok(a + b)
        });
    let h = ServeHandler::new(&client(), [f])
        .unwrap()
        .step_not_found_timeout(Duration::from_secs(30));
    let a = inngest_sdk::step::hash_id("a");
    let b = inngest_sdk::step::hash_id("b");
    let mut req = body(json!({ a.clone(): {"data": 1} }), &[a.as_str()]);
    req["ctx"]["disable_immediate_execution"] = json!(true);
    let started = std::time::Instant::now();
    let (s, v, _) = call(&h, &format!("fnId=js-capture-app-par2&stepId={a}"), req).await;
    // Answered at once (not after the 30 s not-found wait), reporting only what is left to do.
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(s, 206, "{v}");
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v[0]["op"], "StepPlanned");
    assert_eq!(v[0]["id"], b.as_str());
}
