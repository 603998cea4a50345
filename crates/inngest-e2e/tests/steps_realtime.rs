//! Realtime: `step.realtime().publish` on the wire (a `step.realtime.publish` step whose body
//! calls `POST /v1/realtime/publish`), `client.realtime()` publish and token, and the local
//! executor forwarding messages to a WebSocket subscriber scoped by its token.

mod support;

use std::time::Duration;

use futures::StreamExt;
use inngest_sdk::step::hash_id;
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, Event, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use support::{event, op_core, serve_app, Call, FakeApi};
use tokio_tungstenite::tungstenite::Message;

const APP: &str = "realtime-app";
const RUN_ID: &str = "01M8GA0PM60JRWWJY8ZEE4VE6V";

/// Publishes two progress messages to `order:<data.id>` and one log line.
fn tracker() -> Function {
    Function::new("tracker")
        .trigger(Trigger::event("test/track"))
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let channel = format!("order:{}", ctx.event.data["id"].as_str().unwrap_or(""));
            let rt = step.realtime();
            rt.publish("charged", &channel, "progress", json!({"step": "charged"}))
                .await?;
            rt.publish("log", &channel, "log", "charging done".to_owned())
                .await?;
            rt.publish("shipped", &channel, "progress", json!({"step": "shipped"}))
                .await?;
            Ok(json!("done"))
        })
}

#[tokio::test]
async fn publish_is_a_memoized_step_whose_body_calls_the_publish_api() {
    // The server's answer to a publish: 200 with an empty body.
    let fake = FakeApi::with(std::sync::Arc::new(|rec: &support::Recorded, i: usize| {
        if rec.path.starts_with("/v1/realtime/publish") {
            (200, String::new())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client: Inngest = support::dev_client(APP, &fake);
    let server = serve_app(&client, [tracker()]).await;
    let call = || {
        Call::new(
            &format!("{APP}-tracker"),
            event("test/track", json!({"id": "42"})),
        )
    };
    let ops = call().post(&server).await.ops();
    assert_eq!(
        op_core(&ops[0]),
        json!({"id": hash_id("charged"), "op": "StepRun", "name": "charged",
               "opts": {"type": "step.realtime.publish"}, "data": {"step": "charged"}})
    );
    let published = fake.requests_to("/v1/realtime/publish");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].method, "POST");
    assert_eq!(
        published[0].path,
        format!("/v1/realtime/publish?channel=order%3A42&run_id={RUN_ID}&topic=progress")
    );
    assert_eq!(published[0].json(), json!({"step": "charged"}));
    // Replayed with its memo, the step does not publish again.
    let resp = call()
        .memo(&hash_id("charged"), json!({"data": {"step": "charged"}}))
        .post(&server)
        .await;
    assert_eq!(resp.ops()[0]["name"], "log");
    assert_eq!(fake.requests_to("/v1/realtime/publish").len(), 2);
    assert_eq!(
        fake.requests_to("/v1/realtime/publish")[1].json(),
        json!("charging done")
    );
}

/// Connects to the executor's realtime WebSocket with a token for `topics` of `channel`.
async fn subscribe(
    h: &TestHarness,
    channel: &str,
    topics: &[&str],
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let token = h.client().realtime().token(channel, topics).await.unwrap();
    assert_eq!(token.channel, channel);
    let ws = format!(
        "{}/v1/realtime/connect?token={}",
        h.executor_url().replacen("http", "ws", 1),
        token.key
    );
    let (stream, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
    stream
}

async fn next_json(
    stream: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a frame within 10 s")
            .expect("the socket is open")
            .unwrap();
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn a_subscriber_receives_the_runs_messages_of_its_topics_in_order() {
    let h = TestHarness::start("app", [tracker()]).await.unwrap();
    let mut progress = subscribe(&h, "order:42", &["progress"]).await;
    let id = h.send(Event::new("test/track", json!({"id": "42"}))).await;
    let run = h.wait_for_run_of(&id).await;
    assert_eq!(run.output, Some(json!("done")), "{run:#?}");
    let slug = h.function_id("tracker");
    for step in ["charged", "shipped"] {
        let mut m = next_json(&mut progress).await;
        let created = m.as_object_mut().unwrap().remove("created_at").unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created.as_str().unwrap()).is_ok(),
            "{created}"
        );
        assert_eq!(
            m,
            json!({"kind": "data", "channel": "order:42", "topic": "progress",
                   "data": {"step": step}, "run_id": run.id, "fn_slug": slug})
        );
    }
    // The log line went to another topic: kept by the executor, not sent to this subscriber.
    let kept = h.executor().realtime_messages(Some("order:42"));
    let topics: Vec<_> = kept.iter().map(|m| m["topic"].clone()).collect();
    assert_eq!(topics, ["progress", "log", "progress"]);
    assert_eq!(kept[1]["data"], "charging done");
    // A publish from the client (no run) reaches the subscriber too.
    h.client()
        .realtime()
        .publish("order:42", "progress", &json!({"step": "delivered"}))
        .await
        .unwrap();
    let m = next_json(&mut progress).await;
    assert_eq!(m["data"], json!({"step": "delivered"}));
    assert_eq!(m.get("run_id"), None);
}

#[tokio::test]
async fn the_realtime_routes_refuse_bad_requests_as_the_server_does() {
    let h = TestHarness::start("app", [tracker()]).await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", h.executor_url());
    let res = http
        .post(url("/v1/realtime/token"))
        .body(r#"{"channel":"c"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.text().await.unwrap(),
        "Invalid request: must provide a list of topics"
    );
    let res = http
        .post(url("/v1/realtime/token"))
        .body(r#"[{"channel":"c","name":"t","kind":"run"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert!(res.json::<Value>().await.unwrap()["jwt"].is_string());
    let res = http
        .post(url("/v1/realtime/publish?channel=c"))
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Only the first topic counts; the answer is an empty 200.
    let res = http
        .post(url("/v1/realtime/publish?channel=c&topic=t&topic=u"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "");
    let kept = h.executor().realtime_messages(Some("c"));
    assert_eq!(kept.len(), 1);
    assert_eq!(
        (&kept[0]["topic"], &kept[0]["data"]),
        (&json!("t"), &json!("not json"))
    );
    let ws = format!(
        "{}/v1/realtime/connect?token=rt-forged",
        h.executor_url().replacen("http", "ws", 1)
    );
    let err = tokio_tungstenite::connect_async(ws).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(res) => assert_eq!(res.status(), 401),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn with_a_signing_key_publish_and_token_need_the_bearer() {
    let key = support::signing_key();
    let h = TestHarness::builder("app")
        .function(tracker())
        .signing_key(key)
        .start()
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/v1/realtime/publish?channel=c&topic=t",
            h.executor_url()
        ))
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // The client sends its key's bearer: the signed run publishes and completes.
    let id = h.send(Event::new("test/track", json!({"id": "7"}))).await;
    assert_eq!(h.wait_for_run_of(&id).await.output, Some(json!("done")));
    assert_eq!(h.executor().realtime_messages(Some("order:7")).len(), 3);
    let token = h
        .client()
        .realtime()
        .token("order:7", &["progress"])
        .await
        .unwrap();
    assert!(token.key.starts_with("rt-"), "{token:?}");
}
