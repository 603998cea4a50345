//! `step.fetch` (the `Gateway` op) and `step.ai()` (`AIGateway`, and `step.ai.wrap`): the ops
//! and opts on the wire, and the local executor making the calls against loopback fakes (a
//! service and an AI provider that record every request), with the memos, retries and errors
//! the server gives.

mod support;

use inngest_executor::{RunStatus, StepStatus};
use inngest_sdk::ai::{anthropic, openai, Model};
use inngest_sdk::step::hash_id;
use inngest_sdk::testing::TestHarness;
use inngest_sdk::{Ctx, FetchRequest, FetchResponse, Function, Inngest, Step, Trigger};
use serde_json::{json, Value};
use std::sync::Arc;
use support::{event, op_core, serve_app, Call, FakeApi};

const APP: &str = "gateway-app";

/// Fetches `data.url` with `data.method`, `data.body` (text) and an `x-order` header.
fn fetcher() -> Function {
    Function::new("fetcher")
        .trigger(Trigger::event("test/fetch"))
        .retries(1)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let d = &ctx.event.data;
            let mut req = FetchRequest::new(
                d["method"].as_str().unwrap_or("GET"),
                d["url"].as_str().unwrap_or_default(),
            )
            .header("X-Order", "o-1");
            if let Some(body) = d["body"].as_str() {
                req = req.body(body);
            }
            match step.fetch("call-service", req).await {
                Ok(res) => Ok(json!({"status": res.status, "body": res.body,
                                     "type": res.header("content-type")})),
                Err(e) => Ok(json!({"error": e.name, "message": e.message})),
            }
        })
}

#[tokio::test]
async fn fetch_reports_a_gateway_op_and_decodes_both_memos() {
    let fake = FakeApi::start().await;
    let client: Inngest = support::dev_client(APP, &fake);
    let server = serve_app(&client, [fetcher()]).await;
    let call = || {
        Call::new(
            &format!("{APP}-fetcher"),
            event(
                "test/fetch",
                json!({"url": "http://svc.test/a", "method": "POST",
                                       "body": "{\"n\":1}"}),
            ),
        )
    };
    let ops = call().post(&server).await.ops();
    assert_eq!(ops.len(), 1, "{ops:?}");
    let hash = hash_id("call-service");
    assert_eq!(
        op_core(&ops[0]),
        json!({"id": hash, "op": "Gateway", "name": "call-service",
               "opts": {"url": "http://svc.test/a", "method": "POST",
                        "headers": {"x-order": "o-1"}, "body": "{\"n\":1}"},
               "data": null})
    );
    let memo = json!({"data": {"url": "http://svc.test/a", "status_code": 404, "body": "gone",
                               "headers": {"Content-Type": "text/plain"}}});
    let resp = call().memo(&hash, memo).post(&server).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"status": 404, "body": "gone", "type": "text/plain"})
    );
    let memo = json!({"error": {"name": "GatewayError", "message": "Error making gateway request: refused"}});
    let resp = call().memo(&hash, memo).post(&server).await;
    assert_eq!(
        resp.json(),
        json!({"error": "GatewayError", "message": "Error making gateway request: refused"})
    );
}

/// Runs `f` once on a fresh harness for one `name` event with `data`; the ended run.
async fn run_once(f: Function, name: &str, data: Value) -> inngest_executor::RunView {
    let h = TestHarness::start("app", [f]).await.unwrap();
    let id = h.send(inngest_sdk::Event::new(name, data)).await;
    h.wait_for_run_of(&id).await
}

fn service_reply(status: u16, body: &'static str) -> support::Responder {
    Arc::new(move |_, _| (status, body.to_owned()))
}

#[tokio::test]
async fn the_executor_makes_the_request_and_memoizes_the_response() {
    let service = FakeApi::with(service_reply(201, r#"{"ok":true}"#)).await;
    let url = format!("{}/orders?x=1", service.origin());
    let run = run_once(
        fetcher(),
        "test/fetch",
        json!({"url": url, "method": "POST", "body": "{\"sku\":\"plush-01\"}"}),
    )
    .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    assert_eq!(
        run.output,
        Some(json!({"status": 201, "body": "{\"ok\":true}", "type": "application/json"}))
    );
    // One request, as the app asked for it, plus the server's user agent.
    let reqs = service.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/orders?x=1");
    assert_eq!(reqs[0].header("x-order"), Some("o-1"));
    assert_eq!(reqs[0].header("user-agent"), Some("Inngest"));
    assert_eq!(&reqs[0].body[..], br#"{"sku":"plush-01"}"#);
    // The memo is the server's: canonical header names, the body as text.
    let step = run.step("call-service").unwrap();
    assert_eq!(step.op, "Gateway");
    assert_eq!(step.status, StepStatus::Completed);
    let data = &step.output.as_ref().unwrap()["data"];
    assert_eq!(data["status_code"], 201);
    assert_eq!(data["url"], url);
    assert_eq!(data["body"], "{\"ok\":true}");
    assert_eq!(data["headers"]["Content-Type"], "application/json");
    assert_eq!(data["headers"]["Content-Length"], "11");
}

#[tokio::test]
async fn any_status_is_a_response_and_text_bodies_go_out_json_encoded() {
    let service = FakeApi::with(service_reply(404, r#"{"error":"no such order"}"#)).await;
    let run = run_once(
        fetcher(),
        "test/fetch",
        json!({"url": format!("{}/o/9", service.origin()), "method": "PUT", "body": "hello"}),
    )
    .await;
    assert_eq!(
        run.output,
        Some(
            json!({"status": 404, "body": "{\"error\":\"no such order\"}",
                    "type": "application/json"})
        )
    );
    let reqs = service.requests();
    assert_eq!(reqs.len(), 1, "a 404 is not retried");
    assert_eq!(reqs[0].method, "PUT");
    assert_eq!(&reqs[0].body[..], b"\"hello\"");
}

#[tokio::test]
async fn a_request_that_cannot_be_made_is_retried_then_is_a_gateway_error() {
    let run = run_once(
        fetcher(),
        "test/fetch",
        json!({"url": support::closed_port_url(), "method": "GET"}),
    )
    .await;
    assert_eq!(run.status, RunStatus::Completed, "{run:#?}");
    let out = run.output.clone().unwrap();
    assert_eq!(out["error"], "GatewayError");
    let message = out["message"].as_str().unwrap();
    assert!(
        message.starts_with("Error making gateway request: "),
        "{message}"
    );
    let step = run.step("call-service").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    // retries(1): the first attempt and one retry, each asking for the call again.
    assert_eq!(step.attempts, 2);
    assert_eq!(
        run.requests, 3,
        "two attempts and the discovery after the error memo"
    );
}

#[tokio::test]
async fn a_bad_gateway_op_fails_the_request_with_the_reason() {
    let run = run_once(
        fetcher(),
        "test/fetch",
        json!({"url": "ftp://files.test/x", "method": "GET"}),
    )
    .await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let err = run.error.unwrap();
    assert!(
        err.message.contains("only http and https can be called"),
        "{err:?}"
    );
}

/// Asks `model` (OpenAI or Anthropic per `data.provider`) for a plush name at `data.url`.
fn namer() -> Function {
    Function::new("namer")
        .trigger(Trigger::event("test/name"))
        .retries(1)
        .handler(|ctx: Ctx<Value>, step: Step| async move {
            let url = ctx.event.data["url"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if ctx.event.data["provider"] == "anthropic" {
                let model = Model::anthropic("claude-3-5-haiku-latest")
                    .url(url)
                    .api_key("sk-ant-secret");
                let body = anthropic::MessagesRequest::new(
                    64,
                    vec![anthropic::Message::user("A fox in a kimono")],
                )
                .system("You name plush toys.");
                let r: anthropic::MessagesResponse = step.ai().infer("name", &model, body).await?;
                return Ok(json!({ "name": r.text() }));
            }
            let model = Model::openai("gpt-4o-mini").url(url).api_key("sk-secret-1");
            let body = openai::ChatRequest::new(vec![openai::ChatMessage::user("A fox")]);
            match step
                .ai()
                .infer::<_, openai::ChatResponse>("name", &model, body)
                .await
            {
                Ok(r) => Ok(json!({ "name": r.text() })),
                Err(e) => Ok(json!({"error": e.name, "message": e.message, "stack": e.stack})),
            }
        })
}

const CHAT: &str = r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Kitsune"},"finish_reason":"stop"}]}"#;

#[tokio::test]
async fn infer_sends_the_ai_gateway_op_with_model_key_and_body() {
    let fake = FakeApi::start().await;
    let client: Inngest = support::dev_client(APP, &fake);
    let server = serve_app(&client, [namer()]).await;
    let call = Call::new(
        &format!("{APP}-namer"),
        event(
            "test/name",
            json!({"url": "http://ai.test/v1/chat/completions"}),
        ),
    );
    let ops = call.clone().post(&server).await.ops();
    assert_eq!(
        op_core(&ops[0]),
        json!({"id": hash_id("name"), "op": "AIGateway", "name": "name",
               "opts": {"type": "step.ai.infer", "url": "http://ai.test/v1/chat/completions",
                        "headers": {}, "auth_key": "sk-secret-1", "format": "openai-chat",
                        "body": {"model": "gpt-4o-mini",
                                 "messages": [{"role": "user", "content": "A fox"}]}},
               "data": null})
    );
    let chat: Value = serde_json::from_str(CHAT).unwrap();
    let resp = call
        .memo(&hash_id("name"), json!({ "data": chat }))
        .post(&server)
        .await;
    assert_eq!(resp.json(), json!({"name": "Kitsune"}));
}

#[tokio::test]
async fn the_executor_calls_an_openai_provider_with_a_bearer_key_and_no_key_in_logs() {
    let logs = support::logs::logs();
    let provider = FakeApi::with(service_reply(200, CHAT)).await;
    let run = run_once(
        namer(),
        "test/name",
        json!({"url": format!("{}/v1/chat/completions", provider.origin())}),
    )
    .await;
    assert_eq!(run.output, Some(json!({"name": "Kitsune"})), "{run:#?}");
    let reqs = provider.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].header("authorization"), Some("Bearer sk-secret-1"));
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(
        reqs[0].json(),
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "A fox"}]})
    );
    let step = run.step("name").unwrap();
    assert_eq!(step.op, "AIGateway");
    let chat: Value = serde_json::from_str(CHAT).unwrap();
    assert_eq!(step.output, Some(json!({ "data": chat })));
    assert!(
        logs.text().contains("gateway call made"),
        "the capture is live"
    );
    support::logs::assert_no_line_contains(&["sk-secret-1"]);
}

#[tokio::test]
async fn the_executor_calls_anthropic_with_x_api_key_and_its_version() {
    let reply = r#"{"id":"m1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"Kitsune"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":2}}"#;
    let provider = FakeApi::with(service_reply(200, reply)).await;
    let run = run_once(
        namer(),
        "test/name",
        json!({"provider": "anthropic", "url": format!("{}/v1/messages", provider.origin())}),
    )
    .await;
    assert_eq!(run.output, Some(json!({"name": "Kitsune"})), "{run:#?}");
    let reqs = provider.requests();
    assert_eq!(reqs[0].header("x-api-key"), Some("sk-ant-secret"));
    assert_eq!(reqs[0].header("authorization"), None);
    assert_eq!(reqs[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        reqs[0].json(),
        json!({"model": "claude-3-5-haiku-latest", "max_tokens": 64,
               "system": "You name plush toys.",
               "messages": [{"role": "user", "content": "A fox in a kimono"}]})
    );
}

#[tokio::test]
async fn a_provider_error_is_retried_then_an_ai_gateway_error_with_its_body() {
    let provider = FakeApi::with(service_reply(429, r#"{"error":"slow down"}"#)).await;
    let run = run_once(
        namer(),
        "test/name",
        json!({"url": format!("{}/v1/chat/completions", provider.origin())}),
    )
    .await;
    assert_eq!(
        run.output,
        Some(json!({"error": "AIGatewayError",
                    "message": "Error making AI request: unsuccessful status code: 429",
                    "stack": "{\"error\":\"slow down\"}"}))
    );
    assert_eq!(provider.requests().len(), 2, "retries(1): two calls");
    let step = run.step("name").unwrap();
    assert_eq!(step.status, StepStatus::Failed);
    assert_eq!(
        step.error.as_ref().unwrap()["data"],
        json!({"error": "slow down"})
    );
}

#[tokio::test]
async fn wrap_is_a_step_run_recording_its_input() {
    let wrapped = Function::new("wrapped")
        .trigger(Trigger::event("test/wrap"))
        .handler(|_ctx: Ctx<Value>, step: Step| async move {
            let name: String = step
                .ai()
                .wrap("name", json!({"prompt": "fox"}), |input| async move {
                    Ok(format!(
                        "{}: Kitsune",
                        input["prompt"].as_str().unwrap_or("")
                    ))
                })
                .await?;
            Ok(json!({ "name": name }))
        });
    let fake = FakeApi::start().await;
    let client: Inngest = support::dev_client(APP, &fake);
    let server = serve_app(&client, [wrapped.clone()]).await;
    let ops = Call::new(&format!("{APP}-wrapped"), event("test/wrap", json!({})))
        .post(&server)
        .await
        .ops();
    assert_eq!(
        op_core(&ops[0]),
        json!({"id": hash_id("name"), "op": "StepRun", "name": "name",
               "opts": {"type": "step.ai.wrap", "input": [{"prompt": "fox"}]},
               "data": "fox: Kitsune"})
    );
    let h = TestHarness::start("app", [wrapped]).await.unwrap();
    let run = h
        .wait_for_run_of(
            &h.send(inngest_sdk::Event::new("test/wrap", json!({})))
                .await,
        )
        .await;
    assert_eq!(run.output, Some(json!({"name": "fox: Kitsune"})));
}

#[test]
fn fetch_responses_read_headers_case_insensitively_and_decode_json() {
    let res: FetchResponse = serde_json::from_value(json!({
        "status_code": 200, "body": "{\"n\":1}", "headers": {"Content-Type": "application/json"}
    }))
    .unwrap();
    assert!(res.is_success());
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json::<Value>().unwrap(), json!({"n": 1}));
    assert_eq!(res.url, None);
}
