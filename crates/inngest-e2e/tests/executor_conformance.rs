//! The executor against the real server: for each captured classic run (inngest dev v1.43
//! driving the JS SDK, `tests/fixtures/captures/classic/runs/`), the Rust port of that app
//! (`support::js_app`) is driven by the local executor, and the sequence of requests the
//! executor sends (method, query, header names and key header values, body keys, ctx fields,
//! memo, stack, version, event) must match the captured sequence.

mod executor_support;
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine as _;
use executor_support::{recording_router, Recorded, Recorder};
use inngest_executor::RunStatus;
use inngest_sdk::testing::TestHarness;
use inngest_sdk::Event;
use serde_json::{json, Value};
use support::js_app;

/// A JSON file under `tests/fixtures/captures/classic/`.
fn capture(file: &str) -> Value {
    support::fixture(&format!("classic/{file}"))
}

/// The captured executor requests of one run, in order.
fn captured_requests(name: &str) -> Vec<Value> {
    support::run_exchanges("classic", name)
        .iter()
        .filter(|e| e["label"] == "exec")
        .map(|e| e["request"].clone())
        .collect()
}

async fn harness(rec: &Recorder) -> TestHarness {
    TestHarness::builder(js_app::APP_ID)
        .functions(js_app::functions())
        .app_router("/api/inngest", recording_router(rec.clone()))
        .start()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

fn header_names(headers: &Value) -> BTreeSet<String> {
    headers
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.to_ascii_lowercase())
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Memo values with run-specific parts (event ids and times, error stacks, sent ids) blanked.
fn normalize_memo(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(err) = v.get_mut("error").and_then(Value::as_object_mut) {
        err.remove("stack");
        err.remove("__serialized");
    }
    if v.get("name").is_some() && v.get("ts").is_some() {
        v["id"] = json!("<event id>");
        v["ts"] = json!("<ts>");
    }
    if let Some(ids) = v.pointer_mut("/data/ids").and_then(Value::as_array_mut) {
        for id in ids {
            *id = json!("<event id>");
        }
    }
    v
}

fn normalize_event(ev: &Value) -> Value {
    let mut ev = ev.clone();
    ev["id"] = json!("<event id>");
    ev["ts"] = json!("<ts>");
    if let Some(meta) = ev
        .pointer_mut("/data/_inngest")
        .and_then(Value::as_object_mut)
    {
        // Trace context keys (`isr`, `tc`) are not part of the protocol; ids and times differ.
        meta.remove("isr");
        meta.remove("tc");
        for k in ["gid", "source_app_id", "source_fn_id", "expire"] {
            if meta.contains_key(k) {
                meta.insert(k.into(), json!(format!("<{k}>")));
            }
        }
        if let Some(cid) = meta.get("correlation_id").and_then(Value::as_str) {
            let hash = cid.split_once('.').map(|(_, h)| h).unwrap_or("");
            meta.insert("correlation_id".into(), json!(format!("<run id>.{hash}")));
        }
    }
    ev
}

/// Every difference between a captured request and ours.
fn diff(i: usize, cap: &Value, ours: &Recorded) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |what: &str, a: Value, b: Value| {
        if a != b {
            out.push(format!("request #{i} {what}: captured {a} / ours {b}"));
        }
    };
    check("method", cap["method"].clone(), json!(ours.method));
    check("path", cap["path"].clone(), json!(ours.path));
    let cap_query: Vec<(String, String)> = cap["query"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    check("query", json!(cap_query), json!(ours.query));
    let our_headers: BTreeSet<String> =
        ours.headers.keys().map(|k| k.as_str().to_owned()).collect();
    check(
        "header names",
        json!(header_names(&cap["headers"])),
        json!(our_headers),
    );
    let body = &ours.body;
    let cb = &cap["json"];
    // Header values that are fixed, or tied to the body.
    let ch = &cap["headers"];
    for name in ["user-agent", "content-type", "connection", "account-id"] {
        check(
            &format!("header {name}"),
            ch[name].clone(),
            json!(ours.header(name)),
        );
    }
    for (name, field, b) in [
        ("x-inngest-req-version", "version", &body["version"]),
        ("x-inngest-step-id", "stepId", &json!(ours.query("stepId"))),
        ("x-run-id", "ctx.run_id", &body["ctx"]["run_id"]),
        ("x-request-id", "ctx.request_id", &body["ctx"]["request_id"]),
        ("x-inngest-job-id", "ctx.job_id", &body["ctx"]["job_id"]),
        (
            "x-inngest-generation-id",
            "ctx.generation_id",
            &body["ctx"]["generation_id"],
        ),
    ] {
        let ours_h = ours.header(name).unwrap_or("");
        let expected = match b {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        check(
            &format!("header {name} == {field}"),
            json!(expected),
            json!(ours_h),
        );
    }
    // qi_id is base64 of "<job_id>::default" in both.
    let qi = |b: &Value| {
        let job = b["ctx"]["job_id"].as_str().unwrap_or("");
        base64::engine::general_purpose::STANDARD.encode(format!("{job}::default"))
            == b["ctx"]["qi_id"]
    };
    check("qi_id derivation", json!(qi(cb)), json!(qi(body)));
    // Body shape and ctx fields.
    check("body keys", json!(keys(cb)), json!(keys(body)));
    check(
        "ctx keys",
        json!(keys(&cb["ctx"])),
        json!(keys(&body["ctx"])),
    );
    for f in [
        "attempt",
        "disable_immediate_execution",
        "env",
        "max_attempts",
        "stack",
        "step_id",
        "use_api",
    ] {
        check(
            &format!("ctx.{f}"),
            cb["ctx"][f].clone(),
            body["ctx"][f].clone(),
        );
    }
    for f in ["version", "use_api", "defers"] {
        check(f, cb[f].clone(), body[f].clone());
    }
    check(
        "fn_id is a UUID",
        json!(cb["ctx"]["fn_id"].as_str().map(str::len)),
        json!(body["ctx"]["fn_id"].as_str().map(str::len)),
    );
    // Memo.
    check(
        "steps keys",
        json!(keys(&cb["steps"])),
        json!(keys(&body["steps"])),
    );
    for (k, v) in cb["steps"].as_object().unwrap() {
        check(
            &format!("memo {}", &k[..8]),
            normalize_memo(v),
            normalize_memo(&body["steps"][k]),
        );
    }
    // Event(s).
    check(
        "event",
        normalize_event(&cb["event"]),
        normalize_event(&body["event"]),
    );
    check(
        "events.len",
        json!(cb["events"].as_array().map(Vec::len)),
        json!(body["events"].as_array().map(Vec::len)),
    );
    check(
        "events[0] == event",
        json!(cb["events"][0] == cb["event"]),
        json!(body["events"][0] == body["event"]),
    );
    out
}

/// Checks ours against the capture, and the relations between consecutive requests (same job id
/// and the next generation on a retry, a new job id otherwise).
fn compare(name: &str, ours: &[Recorded]) {
    let cap = captured_requests(name);
    let mut problems = Vec::new();
    if cap.len() != ours.len() {
        problems.push(format!(
            "{} requests captured, {} sent: ours {:?}",
            cap.len(),
            ours.len(),
            ours.iter()
                .map(|r| (
                    r.body["ctx"]["attempt"].clone(),
                    r.body["ctx"]["stack"]["current"].clone()
                ))
                .collect::<Vec<_>>()
        ));
    }
    for (i, (c, o)) in cap.iter().zip(ours).enumerate() {
        problems.extend(diff(i, c, o));
        if i > 0 {
            let same_job = |a: &Value, b: &Value| a["ctx"]["job_id"] == b["ctx"]["job_id"];
            let gen = |b: &Value| b["ctx"]["generation_id"].as_u64().unwrap_or(0);
            let cap_same = same_job(&cap[i - 1]["json"], &c["json"]);
            let our_same = same_job(&ours[i - 1].body, &o.body);
            if cap_same != our_same {
                problems.push(format!(
                    "request #{i}: same job id as previous: captured {cap_same} / ours {our_same}"
                ));
            }
            if gen(&c["json"]) != gen(&o.body) {
                problems.push(format!(
                    "request #{i}: generation id captured {} / ours {}",
                    gen(&c["json"]),
                    gen(&o.body)
                ));
            }
            if o.body["ctx"]["request_id"] == ours[i - 1].body["ctx"]["request_id"] {
                problems.push(format!("request #{i}: request id reused"));
            }
        }
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

async fn run_of(
    h: &TestHarness,
    rec: &Recorder,
    event: &str,
    data: Value,
) -> (String, Vec<Recorded>) {
    let id = h.send(Event::new(event, data)).await;
    let run = h.wait_for_run_of(&id).await;
    (run.id.clone(), rec.posts_for_run(&run.id))
}

// ---------------------------------------------------------------------------------------------
// One test per captured run
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sync_put_matches() {
    let rec = Recorder::default();
    let _h = harness(&rec).await;
    let cap = capture("exec-0001-PUT-_api_inngest.json")["request"].clone();
    let put = rec.all().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, cap["path"]);
    assert!(put.query.is_empty());
    let mut names = header_names(&cap["headers"]);
    names.remove("user-agent"); // Go's default client name
    let ours: BTreeSet<String> = put.headers.keys().map(|k| k.as_str().to_owned()).collect();
    assert_eq!(ours, names);
    assert_eq!(put.header("x-inngest-server-kind"), Some("dev"));
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(keys(&put.body), keys(&cap["json"]));
}

#[tokio::test]
async fn hello_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let id = h
        .send(Event::new("test/hello", json!({"hello": "world"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.advance(Duration::from_secs(2));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(
        run.output,
        Some(
            json!({"a": {"fromA": 1, "got": {"hello": "world"}}, "attempt": 0, "b": "b saw {\"fromA\":1,\"got\":{\"hello\":\"world\"}}"})
        )
    );
    compare("hello", &rec.posts_for_run(&run.id));
}

#[tokio::test]
async fn flaky_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let (_, posts) = run_of(&h, &rec, "test/flaky", json!({})).await;
    compare("flaky", &posts);
}

#[tokio::test]
async fn step_always_fails_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let (run, posts) = run_of(&h, &rec, "test/step-always-fails", json!({})).await;
    assert_eq!(
        h.executor().run(&run).unwrap().output,
        Some(json!({"caught": "always"}))
    );
    compare("step-always-fails", &posts);
}

#[tokio::test]
async fn fails_hard_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let (run, posts) = run_of(&h, &rec, "test/fails-hard", json!({})).await;
    assert_eq!(h.executor().run(&run).unwrap().status, RunStatus::Failed);
    compare("fails-hard", &posts);
}

#[tokio::test]
async fn waiter_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let id = h
        .send(Event::new("test/wait.start", json!({"id": "x1"})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.send(Event::new(
        "test/wait.done",
        json!({"id": "x1", "extra": 42}),
    ))
    .await;
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.status, RunStatus::Completed);
    compare("waiter", &rec.posts_for_run(&run.id));
}

#[tokio::test]
async fn wait_timeout_matches() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let id = h
        .send(Event::new("test/wait-timeout.start", json!({})))
        .await;
    let run = h.wait_for_paused_run_of(&id).await;
    h.advance(Duration::from_secs(3));
    let run = h.wait_for_run(&run.id).await;
    assert_eq!(run.output, Some(json!({"got": null})));
    compare("wait-timeout", &rec.posts_for_run(&run.id));
}

#[tokio::test]
async fn orchestrator_and_child_match() {
    let rec = Recorder::default();
    let h = harness(&rec).await;
    let (run, posts) = run_of(&h, &rec, "test/orchestrate", json!({})).await;
    let run = h.executor().run(&run).unwrap();
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output.as_ref().unwrap()["invoked"],
        json!({"nPlusOne": 42})
    );
    compare("orchestrator", &posts);
    let child = h
        .executor()
        .runs()
        .into_iter()
        .find(|r| r.function_id == "js-capture-app-child")
        .unwrap();
    let child_posts = rec.posts_for_run(&child.id);
    compare("child", &child_posts);
    assert_eq!(
        child_posts[0].body["event"]["data"]["_inngest"]["correlation_id"],
        format!("{}.7ff123e6431be676220df2842b3ee0fd2b288a86", run.id)
    );
    // The event the step sent reached the event API once, at the dev key path.
    let sent: Vec<Value> = h
        .executor()
        .events()
        .into_iter()
        .filter(|e| e["name"] == "test/sent-by-step")
        .collect();
    assert_eq!(sent.len(), 1);
}
