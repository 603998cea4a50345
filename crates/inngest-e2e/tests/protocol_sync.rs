//! Sync and introspection over real HTTP: GET (unauthenticated / authenticated), PUT out-of-band
//! against a fake `/fn/register` that records what the SDK sends, and PUT in-band.

mod support;

use std::sync::Arc;

use inngest_sdk::Inngest;
use serde_json::{json, Value};
use support::{js_app, send, serve_app, FakeApi, Recorded, Resp, Server, SIGNING_KEY_BEARER};

/// Bearer of `signkey-prod-` + `fedcba9876543210`×4 (SHA-256 of the hex-decoded key, computed
/// with Python's hashlib).
const FALLBACK_KEY: &str =
    "signkey-prod-fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const FALLBACK_BEARER: &str =
    "Bearer signkey-prod-8d2e4d6374b604562a5d8c04a4dfc035fa499ec7ad373bd48bd2bd62ca75c3b5";

/// The body the Dev Server PUTs [capture: classic/exec-0001-PUT-_api_inngest.json].
const PING_BODY: &str = r#"{"url":"http://localhost:3939/api/inngest"}"#;

async fn put(server: &Server, query: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    let mut req = support::http()
        .put(server.endpoint(query))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req.body(body.to_owned())).await
}

async fn get(server: &Server, headers: &[(&str, &str)]) -> Resp {
    let mut req = support::http().get(server.endpoint(""));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req).await
}

fn register_requests(fake: &FakeApi) -> Vec<Recorded> {
    fake.requests_to("/fn/register")
}

// ------------------------------------------------------------------------------------------------
// GET

const UNAUTH_KEYS: [&str; 9] = [
    "authentication_succeeded",
    "capabilities",
    "extra",
    "function_count",
    "has_event_key",
    "has_signing_key",
    "has_signing_key_fallback",
    "mode",
    "schema_version",
];

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn get_unsigned_dev_is_the_unauthenticated_body() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let resp = get(&server, &[]).await;
    assert_eq!(resp.status, 200);
    resp.assert_sdk_headers();
    assert!(resp.header("x-inngest-signature").is_none());
    let body = resp.json();
    assert_eq!(keys(&body), UNAUTH_KEYS);
    assert_eq!(body["schema_version"], "2024-05-24");
    assert_eq!(body["authentication_succeeded"], Value::Null);
    assert_eq!(body["function_count"], 8);
    assert_eq!(body["mode"], "dev");
    assert_eq!(body["has_signing_key"], false);
    assert_eq!(body["has_event_key"], false);
    assert_eq!(
        body["capabilities"],
        json!({"trust_probe": "v1", "in_band_sync": "v1"})
    );
}

#[tokio::test]
async fn get_unsigned_cloud_is_200_unauthenticated_not_401() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let resp = get(&server, &[]).await;
    assert_eq!(resp.status, 200, "conformance doctor needs < 300");
    resp.assert_sdk_headers();
    let body = resp.json();
    assert_eq!(keys(&body), UNAUTH_KEYS);
    assert_eq!(body["authentication_succeeded"], Value::Null);
    assert_eq!(body["mode"], "cloud");
    assert_eq!(body["has_signing_key"], true);
    assert_eq!(body["has_event_key"], true);

    // A bad signature: still 200, unauthenticated body, `authentication_succeeded: false`.
    let resp = get(&server, &[("x-inngest-signature", "t=1&s=00")]).await;
    assert_eq!(resp.status, 200);
    let body = resp.json();
    assert_eq!(keys(&body), UNAUTH_KEYS);
    assert_eq!(body["authentication_succeeded"], false);
}

#[tokio::test]
async fn get_signed_cloud_is_the_authenticated_body_and_signed() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let sig = support::sign_now(b"");
    let resp = get(&server, &[("x-inngest-signature", &sig)]).await;
    assert_eq!(resp.status, 200);
    resp.assert_sdk_headers();
    support::assert_signed_response(&resp);
    let body = resp.json();
    assert_eq!(body["authentication_succeeded"], true);
    assert_eq!(body["app_id"], "js-capture-app");
    assert_eq!(body["mode"], "cloud");
    assert_eq!(body["sdk_language"], "rust");
    assert_eq!(body["framework"], "axum");
    assert_eq!(body["function_count"], 8);
    assert_eq!(body["api_origin"], fake.origin());
    assert_eq!(body["event_api_origin"], fake.origin());
    assert_eq!(
        body["signing_key_hash"],
        SIGNING_KEY_BEARER.trim_start_matches("Bearer ")
    );
    assert_eq!(body["signing_key_fallback_hash"], Value::Null);
    // sha256("test-event-key-123"), computed with Python's hashlib.
    assert_eq!(
        body["event_key_hash"],
        "489b0fa1ff46afec035a3e018cd11d260ba52b607e878064dd37e5c408bf0679"
    );
    for k in UNAUTH_KEYS {
        assert!(body.get(k).is_some(), "authenticated body lacks {k}");
    }
    // No key material in the body.
    assert!(!resp.text().contains(support::SIGNING_KEY_HEX));
}

// ------------------------------------------------------------------------------------------------
// PUT, out-of-band

#[tokio::test]
async fn out_of_band_register_payload_matches_the_captured_one() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    // The Dev Server's ping, with its Host (`localhost:3939`) as in the capture.
    let resp = put(
        &server,
        "",
        &[("host", "localhost:3939"), ("x-inngest-server-kind", "dev")],
        PING_BODY,
    )
    .await;
    // The PUT's answer is the captured JS answer.
    let captured = support::fixture("classic/exec-0001-PUT-_api_inngest.json");
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.assert_sdk_headers();
    assert_eq!(resp.json(), captured["response"]["json"]);
    assert_eq!(resp.header("x-inngest-sync-kind"), Some("out_of_band"));
    assert_eq!(resp.header("x-inngest-expected-server-kind"), Some("dev"));

    let regs = register_requests(&fake);
    assert_eq!(regs.len(), 1);
    let reg = &regs[0];
    assert_eq!(reg.method, "POST");
    assert_eq!(reg.path, "/fn/register");
    assert_eq!(reg.header("content-type"), Some("application/json"));
    assert_eq!(
        reg.header("x-inngest-sdk"),
        Some(inngest_sdk::client::SDK_HEADER)
    );
    assert_eq!(reg.header("x-inngest-sync-kind"), Some("out_of_band"));
    assert_eq!(reg.header("x-inngest-expected-server-kind"), Some("dev"));
    assert_eq!(reg.header("x-inngest-framework"), Some("axum"));
    // Dev mode without a key: no Authorization header at all (JS sends "Bearer undefined").
    assert!(reg.header("authorization").is_none());

    let ours = reg.json();
    let theirs =
        support::fixture("classic/sdk-0001-POST-_fn_register.json")["request"]["json"].clone();
    // Identical: url, deployType, appName, v, and every function (composite ids, names, triggers,
    // step URLs, `retries` only where set: flaky 2, fails-hard 3, step-always-fails 1).
    for k in ["url", "deployType", "appName", "v", "functions"] {
        assert_eq!(ours[k], theirs[k], "register `{k}`");
    }
    // Deliberate differences: our framework, sdk and capabilities; no JS featureObservations.
    assert_eq!(ours["framework"], "axum");
    assert_eq!(ours["sdk"], concat!("rust:v", env!("CARGO_PKG_VERSION")));
    assert_eq!(
        ours["capabilities"],
        json!({"trust_probe": "v1", "in_band_sync": "v1"})
    );
    let mut expected_keys = vec![
        "appName",
        "capabilities",
        "deployType",
        "framework",
        "functions",
        "sdk",
        "url",
        "v",
    ];
    expected_keys.sort();
    assert_eq!(keys(&ours), expected_keys);
}

#[tokio::test]
async fn out_of_band_url_from_host_forwarded_headers_and_deploy_id() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;

    // Plain request: the Host reqwest sends (127.0.0.1:port).
    put(&server, "", &[], PING_BODY).await;
    // Proxy headers win over Host.
    put(
        &server,
        "",
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
        ],
        PING_BODY,
    )
    .await;
    // deployId is passed through to /fn/register and removed from the reported URL.
    let resp = put(
        &server,
        "deployId=d-42",
        &[("host", "localhost:3939")],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 200);

    let regs = register_requests(&fake);
    assert_eq!(regs.len(), 3);
    let urls: Vec<Value> = regs.iter().map(|r| r.json()["url"].clone()).collect();
    assert_eq!(urls[0], format!("{}/api/inngest", server.origin()));
    assert_eq!(urls[1], "https://app.example.com/api/inngest");
    assert_eq!(urls[2], "http://localhost:3939/api/inngest");
    assert_eq!(regs[0].path, "/fn/register");
    assert_eq!(regs[2].path, "/fn/register?deployId=d-42");
    // Step URLs follow the reported URL.
    assert_eq!(
        regs[1].json()["functions"][0]["steps"]["step"]["runtime"]["url"],
        "https://app.example.com/api/inngest?fnId=js-capture-app-hello&stepId=step"
    );
}

#[tokio::test]
async fn out_of_band_url_with_serve_origin_and_path_overrides() {
    let fake = FakeApi::start().await;
    let client = Inngest::builder(js_app::APP_ID)
        .dev(true)
        .api_base_url(fake.origin())
        .serve_origin("https://fns.example.com")
        .build()
        .unwrap();
    let server = serve_app(&client, js_app::functions()).await;
    put(&server, "", &[("host", "localhost:3939")], PING_BODY).await;

    let client = Inngest::builder(js_app::APP_ID)
        .dev(true)
        .api_base_url(fake.origin())
        .serve_path("/custom/inngest")
        .build()
        .unwrap();
    let custom = serve_app(&client, js_app::functions()).await;
    // The router is mounted at the serve path.
    let resp = send(
        support::http()
            .put(custom.url("/custom/inngest"))
            .header("host", "localhost:3939")
            .body(PING_BODY),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    let regs = register_requests(&fake);
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0].json()["url"], "https://fns.example.com/api/inngest");
    assert_eq!(
        regs[1].json()["url"],
        "http://localhost:3939/custom/inngest"
    );
    assert_eq!(
        regs[1].json()["functions"][3]["steps"]["step"]["runtime"]["url"],
        "http://localhost:3939/custom/inngest?fnId=js-capture-app-flaky&stepId=step"
    );
}

#[tokio::test]
async fn out_of_band_cloud_bearer_and_fallback_after_401() {
    // The primary bearer is refused with 401; the fallback's is accepted.
    let fake = FakeApi::with(Arc::new(|rec: &Recorded, i| {
        if rec.header("authorization") == Some(SIGNING_KEY_BEARER) {
            (401, "Authentication failed".to_owned())
        } else {
            support::default_reply(rec, i)
        }
    }))
    .await;
    let client = Inngest::builder(js_app::APP_ID)
        .dev(false)
        .signing_key(support::signing_key())
        .signing_key_fallback(FALLBACK_KEY)
        .api_base_url(fake.origin())
        .build()
        .unwrap();
    let server = serve_app(&client, js_app::functions()).await;
    // The signed capture's PUT, re-signed now (`inngest start` sends X-Inngest-Server-Kind: cloud).
    let sig = support::sign_now(PING_BODY.as_bytes());
    let resp = put(
        &server,
        "",
        &[
            ("host", "localhost:3939"),
            ("x-inngest-server-kind", "cloud"),
            ("x-inngest-signature", &sig),
        ],
        PING_BODY,
    )
    .await;
    let captured = support::fixture("signed/exec-0001-PUT-_api_inngest.json");
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), captured["response"]["json"]);
    assert_eq!(resp.header("x-inngest-expected-server-kind"), Some("cloud"));
    support::assert_signed_response(&resp);

    let regs = register_requests(&fake);
    assert_eq!(regs.len(), 2);
    // Primary first: the exact bearer of the signed capture.
    let captured_reg = support::fixture("signed/sdk-0001-POST-_fn_register.json");
    assert_eq!(
        regs[0].header("authorization"),
        captured_reg["request"]["headers"]["authorization"].as_str()
    );
    assert_eq!(regs[0].header("authorization"), Some(SIGNING_KEY_BEARER));
    assert_eq!(regs[1].header("authorization"), Some(FALLBACK_BEARER));
    assert_eq!(regs[0].body, regs[1].body);
    assert_eq!(
        regs[1].header("x-inngest-expected-server-kind"),
        Some("cloud")
    );
}

#[tokio::test]
async fn out_of_band_reply_mapping() {
    // 1st register: modified false; 2nd: server-kind refusal.
    let fake = FakeApi::with(Arc::new(|_rec: &Recorded, i| match i {
        0 => (
            200,
            json!({"ok": true, "modified": false, "sync_id": "s", "app_id": "a"}).to_string(),
        ),
        _ => (
            400,
            json!({"error": "Expected server kind dev, got cloud"}).to_string(),
        ),
    }))
    .await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let resp = put(&server, "", &[("x-inngest-server-kind", "dev")], PING_BODY).await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json(),
        json!({"message": "Successfully registered", "modified": false})
    );

    let resp = put(
        &server,
        "",
        &[("x-inngest-server-kind", "cloud")],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    resp.assert_sdk_headers();
    assert_eq!(resp.header("x-inngest-sync-kind"), Some("out_of_band"));
    // The server's message, as is: the Dev Server shows it as the app's sync error.
    assert_eq!(
        resp.json(),
        json!({"message": "Expected server kind dev, got cloud", "modified": false})
    );
}

#[tokio::test]
async fn out_of_band_signed_put_with_a_bad_signature_is_401() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let captured = support::fixture("signed/exec-0001-PUT-_api_inngest.json");
    // The captured (expired) signature.
    let sig = captured["request"]["headers"]["x-inngest-signature"]
        .as_str()
        .unwrap();
    let resp = put(&server, "", &[("x-inngest-signature", sig)], PING_BODY).await;
    assert_eq!(resp.status, 401);
    assert!(register_requests(&fake).is_empty());
    // Unsigned out-of-band PUTs are allowed (the SDK only calls its own API origin).
    let resp = put(&server, "", &[], PING_BODY).await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("x-inngest-signature").is_none());
    assert_eq!(register_requests(&fake).len(), 1);
}

// ------------------------------------------------------------------------------------------------
// PUT, in-band

#[tokio::test]
async fn in_band_signed_returns_the_config_signed() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let body = r#"{"url":"http://127.0.0.1:9999/proxy"}"#;
    let sig = support::sign_now(body.as_bytes());
    let resp = put(
        &server,
        "",
        &[
            ("x-inngest-sync-kind", "in_band"),
            ("x-inngest-server-kind", "cloud"),
            ("x-inngest-signature", &sig),
        ],
        body,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.assert_sdk_headers();
    assert_eq!(resp.header("x-inngest-sync-kind"), Some("in_band"));
    support::assert_signed_response(&resp);
    assert!(
        register_requests(&fake).is_empty(),
        "in-band never calls /fn/register"
    );

    let config = resp.json();
    // What the conformance runner reads.
    assert_eq!(config["app_id"], "js-capture-app");
    assert_eq!(config["url"], "http://127.0.0.1:9999/proxy");
    assert_eq!(config["sdk_language"], "rust");
    assert_eq!(config["sdk_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(config["platform"], Value::Null);
    assert_eq!(config["inspection"]["authentication_succeeded"], true);
    let functions = config["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 8);
    assert_eq!(functions[0]["id"], "js-capture-app-hello");
    assert_eq!(
        functions[0]["steps"]["step"]["runtime"]["url"],
        "http://127.0.0.1:9999/proxy?fnId=js-capture-app-hello&stepId=step"
    );
    assert_eq!(
        functions[3]["steps"]["step"]["retries"],
        json!({"attempts": 2})
    );
}

#[tokio::test]
async fn in_band_unsigned_in_cloud_is_401() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::cloud_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let resp = put(
        &server,
        "",
        &[("x-inngest-sync-kind", "in_band")],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 401);
    resp.assert_sdk_headers();
    assert!(register_requests(&fake).is_empty());
}

#[tokio::test]
async fn in_band_disallowed_falls_back_to_out_of_band() {
    let fake = FakeApi::start().await;
    let client = Inngest::builder(js_app::APP_ID)
        .dev(true)
        .api_base_url(fake.origin())
        .allow_in_band_sync(false)
        .build()
        .unwrap();
    let server = serve_app(&client, js_app::functions()).await;
    let resp = put(
        &server,
        "",
        &[("x-inngest-sync-kind", "in_band")],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-inngest-sync-kind"), Some("out_of_band"));
    assert_eq!(
        resp.json(),
        json!({"message": "Successfully registered", "modified": true})
    );
    assert_eq!(register_requests(&fake).len(), 1);
}

#[tokio::test]
async fn in_band_dev_mode_answers_and_rejects_bad_bodies() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    // The conformance runner signs with its key; dev mode ignores the signature.
    let resp = put(
        &server,
        "",
        &[
            ("x-inngest-sync-kind", "in_band"),
            ("x-inngest-server-kind", "dev"),
            ("x-inngest-signature", "t=1&s=00"),
        ],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-inngest-sync-kind"), Some("in_band"));
    assert_eq!(resp.json()["url"], "http://localhost:3939/api/inngest");

    // The body must be exactly {"url": …}.
    let resp = put(
        &server,
        "",
        &[("x-inngest-sync-kind", "in_band")],
        r#"{"url":"http://localhost:3939/api/inngest","extra":1}"#,
    )
    .await;
    assert_eq!(resp.status, 400);
    resp.assert_no_retry(Some("true"));
    assert!(register_requests(&fake).is_empty());
}

#[tokio::test]
async fn other_methods_are_405_with_sdk_headers() {
    let fake = FakeApi::start().await;
    let server = serve_app(
        &support::dev_client(js_app::APP_ID, &fake),
        js_app::functions(),
    )
    .await;
    let resp = send(support::http().delete(server.endpoint(""))).await;
    assert_eq!(resp.status, 405);
    resp.assert_sdk_headers();
}

#[tokio::test]
async fn in_band_url_honours_the_serve_origin_override() {
    let fake = FakeApi::start().await;
    let client = Inngest::builder(js_app::APP_ID)
        .dev(true)
        .api_base_url(fake.origin())
        .serve_origin("https://fns.example.com")
        .build()
        .unwrap();
    let server = serve_app(&client, js_app::functions()).await;
    let resp = put(
        &server,
        "",
        &[("x-inngest-sync-kind", "in_band")],
        PING_BODY,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let config = resp.json();
    assert_eq!(config["url"], "https://fns.example.com/api/inngest");
    assert_eq!(
        config["functions"][0]["steps"]["step"]["runtime"]["url"],
        "https://fns.example.com/api/inngest?fnId=js-capture-app-hello&stepId=step"
    );
}
