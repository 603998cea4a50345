//! Signed mode (captures from `inngest start --signing-key 0123…cdef`): the SDK runs in cloud mode
//! with `signkey-prod-` + that key. Signatures are computed in `support` with the hmac crate,
//! independently of the SDK's signature module.
//!
//! The captured requests are more than 5 minutes old, so the golden replays re-sign each captured
//! body (byte for byte) with a fresh `t`; the captured headers themselves are checked as HMAC
//! vectors and must be rejected by the SDK as expired. Five captured bodies hold shortened JS
//! stack traces (SUMMARY.md) and are not used as vectors; re-signed, their requests replay fine.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::golden::replay_run;
use support::{
    hmac_hex, js_app, send, serve_app, sign_at, FakeApi, Resp, Server, Signature, SIGNING_KEY_HEX,
};

const RUNS: [&str; 8] = [
    "hello",
    "waiter",
    "wait-timeout",
    "flaky",
    "fails-hard",
    "step-always-fails",
    "orchestrator",
    "child",
];

async fn cloud_app() -> (Server, FakeApi) {
    let captured = support::fixture("signed/sdk-0002-POST-_e_test-event-key-123.json");
    let reply = captured["response"]["body"].as_str().unwrap().to_owned();
    let fake = FakeApi::with(Arc::new(move |rec, i| {
        if rec.path.starts_with("/e/") {
            (200, reply.clone())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client = support::cloud_client(js_app::APP_ID, &fake);
    (serve_app(&client, js_app::functions()).await, fake)
}

#[tokio::test]
async fn signed_runs_replay_resigned_and_responses_are_signed() {
    let (server, fake) = cloud_app().await;
    let mut total = 0;
    for function in RUNS {
        // Checks status, headers, ops, and that each response is signed over its exact bytes.
        let resps = replay_run("signed", function, &server, Signature::Fresh).await;
        total += resps.len();
    }
    assert_eq!(total, 20);
    // The orchestrator's event went to the event API with the event key, once.
    let sent = fake.requests_to("/e/");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/e/test-event-key-123");
    assert_eq!(
        sent[0].json()[0]["name"],
        json!("test/sent-by-step"),
        "{:?}",
        sent[0]
    );
}

/// Every captured signature except the five over altered stack-trace bodies recomputes with the
/// independent HMAC: key = ASCII hex text, message = raw body bytes || decimal t.
#[tokio::test]
async fn captured_signatures_are_hmac_vectors() {
    let mut exchanges: Vec<Value> = RUNS
        .iter()
        .flat_map(|f| support::run_exchanges("signed", f))
        .collect();
    exchanges.push(support::fixture("signed/exec-0001-PUT-_api_inngest.json"));
    let mut checked = 0;
    let mut skipped = Vec::new();
    for ex in &exchanges {
        for side in ["request", "response"] {
            let Some(header) = ex[side]["headers"]["x-inngest-signature"].as_str() else {
                continue;
            };
            let body = ex[side]["body"].as_str().unwrap();
            // A JS stack trace ("    at …") in the body: shortened after capture, not a vector.
            if body.contains("    at ") {
                skipped.push(format!("{} {side}", ex["file"].as_str().unwrap_or("PUT")));
                continue;
            }
            let (t, s) = support::parse_sig(header);
            assert_eq!(s, hmac_hex(SIGNING_KEY_HEX, body.as_bytes(), &t), "{side}");
            checked += 1;
        }
    }
    assert_eq!(checked, 37);
    assert_eq!(skipped.len(), 5, "{skipped:?}");
    // The fact sheet's published vector.
    assert_eq!(
        hmac_hex(
            SIGNING_KEY_HEX,
            br#"{"url":"http://localhost:3939/api/inngest"}"#,
            "1795843782"
        ),
        "5d11133814c22118d6a389379749454e190e15d84007ec4145ebe20343a716f8"
    );
}

async fn post_hello(server: &Server, sig: Option<String>, body: &[u8]) -> Resp {
    let mut req = support::http()
        .post(server.endpoint("fnId=js-capture-app-hello&stepId=step"))
        .header("content-type", "application/json")
        .header("x-inngest-req-version", "-1");
    if let Some(sig) = sig {
        req = req.header("x-inngest-signature", sig);
    }
    send(req.body(body.to_vec())).await
}

fn hello_first_request() -> Value {
    support::run_exchanges("signed", "hello")[0].clone()
}

fn hello_body() -> Vec<u8> {
    hello_first_request()["request"]["body"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn assert_unauthorized(resp: &Resp, needle: &str) {
    assert_eq!(resp.status, 401, "{}", resp.text());
    resp.assert_sdk_headers();
    assert!(resp.header("x-inngest-no-retry").is_some());
    assert!(resp.header("x-inngest-signature").is_none());
    let msg = resp.json()["message"].as_str().unwrap().to_owned();
    assert!(msg.contains(needle), "{msg}");
}

#[tokio::test]
async fn captured_signature_is_rejected_as_expired() {
    let (server, _fake) = cloud_app().await;
    let ex = hello_first_request();
    let resp = send(support::replay(
        &support::http(),
        &server,
        &ex,
        Signature::Captured,
    ))
    .await;
    assert_unauthorized(&resp, "expired");
}

#[tokio::test]
async fn unsigned_and_tampered_requests_are_401_in_cloud_mode() {
    let (server, _fake) = cloud_app().await;
    let body = hello_body();
    assert_unauthorized(&post_hello(&server, None, &body).await, "missing");

    // Signature over the exact bytes, then one byte of the body changed.
    let sig = support::sign_now(&body);
    let mut tampered = body.clone();
    let pos = tampered.windows(5).position(|w| w == b"world").unwrap();
    tampered[pos] = b'W';
    assert_unauthorized(&post_hello(&server, Some(sig), &tampered).await, "match");

    // Signed with another key.
    let t = support::now().to_string();
    let other = format!("t={t}&s={}", hmac_hex("not-the-key", &body, &t));
    assert_unauthorized(&post_hello(&server, Some(other), &body).await, "match");

    // Malformed header.
    assert_unauthorized(
        &post_hello(&server, Some("s=abc".into()), &body).await,
        "malformed",
    );
}

#[tokio::test]
async fn freshness_window_is_five_minutes_both_ways() {
    let (server, _fake) = cloud_app().await;
    let body = hello_body();
    let now = support::now();
    for (t, ok) in [
        (now - 290, true),
        (now + 290, true),
        (now - 310, false),
        (now + 310, false),
    ] {
        let resp = post_hello(&server, Some(sign_at(&body, t)), &body).await;
        if ok {
            assert_eq!(resp.status, 206, "t = now {:+}: {}", t - now, resp.text());
            support::assert_signed_response(&resp);
        } else {
            assert_eq!(resp.status, 401, "t = now {:+}", t - now);
        }
    }
}

#[tokio::test]
async fn fallback_key_verifies_and_signs_the_response() {
    let fake = FakeApi::start().await;
    let client = inngest_sdk::Inngest::builder(js_app::APP_ID)
        .dev(false)
        .signing_key(
            "signkey-prod-ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        )
        .signing_key_fallback(support::signing_key())
        .api_base_url(fake.origin())
        .event_api_base_url(fake.origin())
        .build()
        .unwrap();
    let server = serve_app(&client, js_app::functions()).await;
    let body = hello_body();
    let resp = post_hello(&server, Some(support::sign_now(&body)), &body).await;
    assert_eq!(resp.status, 206, "{}", resp.text());
    // Signed with the key that verified the request (the fallback = capture key).
    support::assert_signed_response(&resp);
}

#[tokio::test]
async fn dev_mode_ignores_signatures() {
    let fake = FakeApi::start().await;
    let client = support::dev_client(js_app::APP_ID, &fake);
    let server = serve_app(&client, js_app::functions()).await;
    let ex = hello_first_request();
    // The stale captured signature, and a garbage one: both ignored in dev mode.
    let resp = send(support::replay(
        &support::http(),
        &server,
        &ex,
        Signature::Captured,
    ))
    .await;
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert!(resp.header("x-inngest-signature").is_none());
    let resp = post_hello(&server, Some("t=1&s=00".into()), &hello_body()).await;
    assert_eq!(resp.status, 206);
}

#[tokio::test]
async fn trust_probe_is_signed_in_cloud_and_401_unsigned() {
    let (server, _fake) = cloud_app().await;
    let url = server.endpoint("probe=trust");
    let resp = send(
        support::http()
            .post(&url)
            .header("x-inngest-signature", support::sign_now(b""))
            .body(""),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.assert_sdk_headers();
    support::assert_signed_response(&resp);
    let resp = send(support::http().post(&url).body("")).await;
    assert_eq!(resp.status, 401);
}

/// `use_api: true`: the state was too big to send inline, the SDK loads it from
/// `/v0/runs/{run_id}/actions` and `/batch` with its bearer token.
#[tokio::test]
async fn use_api_loads_memos_and_events_from_the_api() {
    // The second request of the captured hello run, with its state moved to the fake API.
    let ex = support::run_exchanges("signed", "hello")[1].clone();
    let mut body = ex["request"]["json"].clone();
    let run_id = body["ctx"]["run_id"].as_str().unwrap().to_owned();
    let steps = body["steps"].clone();
    let events = body["events"].clone();
    body["steps"] = json!({});
    body["events"] = json!([]);
    body["use_api"] = json!(true);
    body["ctx"]["use_api"] = json!(true);
    let (actions_path, batch_path) = (
        format!("/v0/runs/{run_id}/actions"),
        format!("/v0/runs/{run_id}/batch"),
    );
    let (a, b) = (actions_path.clone(), batch_path.clone());
    let fake = FakeApi::with(Arc::new(move |rec: &support::Recorded, i| {
        if rec.path == a {
            (200, steps.to_string())
        } else if rec.path == b {
            (200, events.to_string())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let bytes = serde_json::to_vec(&body).unwrap();
    let resp = send(
        support::http()
            .post(server.endpoint("fnId=js-capture-app-hello&stepId=step"))
            .header("x-inngest-signature", support::sign_now(&bytes))
            .body(bytes),
    )
    .await;
    // Same answer as with inline state: the Sleep after the memoized step `a`.
    assert_eq!(resp.status, 206, "{}", resp.text());
    assert_eq!(resp.ops()[0]["op"], "Sleep");
    support::assert_signed_response(&resp);
    for path in [&actions_path, &batch_path] {
        let reqs = fake.requests_to(path);
        assert_eq!(reqs.len(), 1, "{path}");
        assert_eq!(reqs[0].method, "GET");
        assert_eq!(
            reqs[0].header("authorization"),
            Some(support::SIGNING_KEY_BEARER)
        );
    }
}

#[tokio::test]
async fn use_api_failure_is_a_retriable_500() {
    let ex = support::run_exchanges("signed", "hello")[1].clone();
    let mut body = ex["request"]["json"].clone();
    body["steps"] = json!({});
    body["use_api"] = json!(true);
    body["ctx"]["use_api"] = json!(true);
    // The Dev Server answers 410 when the state is gone.
    let fake = FakeApi::with(Arc::new(|_r: &support::Recorded, _i| {
        (
            410,
            json!({"error": "run state not found", "status": 410}).to_string(),
        )
    }))
    .await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let bytes = serde_json::to_vec(&body).unwrap();
    let resp = send(
        support::http()
            .post(server.endpoint("fnId=js-capture-app-hello&stepId=step"))
            .header("x-inngest-signature", support::sign_now(&bytes))
            .body(bytes),
    )
    .await;
    assert_eq!(resp.status, 500, "{}", resp.text());
    resp.assert_sdk_headers();
    resp.assert_no_retry(Some("false"));
    assert!(resp.json()["message"]
        .as_str()
        .unwrap()
        .contains("run state not found"));
}
