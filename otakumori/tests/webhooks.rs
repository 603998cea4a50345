//! Webhook routes over real HTTP (127.0.0.1:0, served with `ConnectInfo<SocketAddr>`), with a
//! `RecordingSink` in place of Inngest.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use inngest_sdk::event::Event;
use otakumori::webhooks::{
    self, clerk, parse_cidr_list, printify, stripe, EventSink, FailedEvent, IngressFailure,
    Provider, RateLimit, RecordedEvent, RecordingFailureRecorder, RecordingSink, SinkError,
    WebhookConfig, WebhookState,
};
use serde_json::{json, Value};

const NOW: i64 = 1_735_689_600;
const SVIX_SECRET: &str = "whsec_b3Rha3Vtb3JpLXRlc3Qtc3ZpeC1rZXktMDEyMzQ1Njc4OQ==";
const STRIPE_SECRET: &str = "whsec_test_otakumori_stripe";
const PRINTIFY_SECRET: &str = "otakumori-printify-secret";

fn svix() -> clerk::SvixSecret {
    clerk::SvixSecret::parse(SVIX_SECRET).unwrap()
}
fn stripe_secret() -> stripe::StripeSecret {
    stripe::StripeSecret::new(STRIPE_SECRET)
}
fn printify_secret() -> printify::PrintifySecret {
    printify::PrintifySecret::new(PRINTIFY_SECRET)
}

/// All three secrets, no rate limit, no allowlist.
fn base_config() -> WebhookConfig {
    WebhookConfig::default()
        .with_clerk_secret(svix())
        .with_stripe_secret(stripe_secret())
        .with_printify_secret(printify_secret())
        .with_rate_limit(None)
}

struct App {
    base: String,
    sink: RecordingSink,
    failures: RecordingFailureRecorder,
    http: reqwest::Client,
}

impl App {
    async fn start(config: WebhookConfig) -> App {
        let sink = RecordingSink::new();
        let failures = RecordingFailureRecorder::new();
        let state = WebhookState::new(Arc::new(sink.clone()), config)
            .with_failure_recorder(Arc::new(failures.clone()))
            .with_clock(|| NOW);
        let base = spawn(webhooks::router(state)).await;
        App {
            base,
            sink,
            failures,
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let resp = req.body(body.to_vec()).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON response ({status}): {text}"));
        (status, json)
    }

    async fn clerk(&self, msg_id: &str, ts: i64, body: &[u8]) -> (u16, Value) {
        let headers = clerk::signed_headers(&svix(), msg_id, ts, body);
        self.post("/webhooks/clerk", &headers, body).await
    }

    async fn stripe(&self, ts: i64, body: &[u8]) -> (u16, Value) {
        let sig = stripe::sign(&stripe_secret(), ts, body);
        self.post("/webhooks/stripe", &[("Stripe-Signature", sig)], body)
            .await
    }

    async fn printify(&self, sig: String, body: &[u8]) -> (u16, Value) {
        self.post("/webhooks/printify", &[("X-Pfy-Signature", sig)], body)
            .await
    }
}

async fn spawn(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(webhooks::serve(listener, router));
    format!("http://{addr}")
}

fn ev(name: &str, id: &str, data: Value) -> RecordedEvent {
    RecordedEvent {
        name: name.into(),
        id: Some(id.into()),
        data,
    }
}

fn clerk_user() -> Value {
    json!({
        "id": "user_29w83sxmDNGwOuEthce5gg56FcC",
        "object": "user",
        "email_addresses": [{"id": "idn_1", "email_address": "rin@example.com"}],
        "primary_email_address_id": "idn_1",
        "username": "rin",
        "first_name": "Rin",
        "last_name": "Tohsaka",
        "image_url": "https://img.example.com/rin.png",
        "created_at": 1_654_012_591_514i64,
        "updated_at": 1_654_012_591_835i64
    })
}

fn clerk_body(kind: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": kind, "object": "event", "data": data})).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Clerk
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn clerk_user_created_is_forwarded_with_svix_id() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let (status, json) = app.clerk("msg_created_1", NOW, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        json!({"received": true, "event_ids": ["msg_created_1"]})
    );
    assert_eq!(
        app.sink.recorded(),
        vec![ev("clerk/user.created", "msg_created_1", clerk_user())]
    );
}

#[tokio::test]
async fn clerk_user_updated_and_deleted() {
    let app = App::start(base_config()).await;
    let (s1, _) = app
        .clerk("msg_upd", NOW, &clerk_body("user.updated", clerk_user()))
        .await;
    let deleted =
        json!({"id": "user_29w83sxmDNGwOuEthce5gg56FcC", "object": "user", "deleted": true});
    let (s2, j2) = app
        .clerk("msg_del", NOW, &clerk_body("user.deleted", deleted))
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(j2, json!({"received": true, "event_ids": ["msg_del"]}));
    assert_eq!(
        app.sink.recorded(),
        vec![
            ev("clerk/user.updated", "msg_upd", clerk_user()),
            ev(
                "clerk/user.deleted",
                "msg_del",
                json!({"id": "user_29w83sxmDNGwOuEthce5gg56FcC", "deleted": true})
            ),
        ]
    );
}

#[tokio::test]
async fn clerk_duplicate_delivery_keeps_the_same_event_id() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let first = app.clerk("msg_dup", NOW, &body).await;
    // svix redelivers the same message id with a fresh timestamp and signature
    let second = app.clerk("msg_dup", NOW + 30, &body).await;
    assert_eq!(
        first,
        (200, json!({"received": true, "event_ids": ["msg_dup"]}))
    );
    assert_eq!(second, first);
    let rec = app.sink.recorded();
    assert_eq!(
        rec.len(),
        2,
        "dedupe is Inngest's job; both sends carry the id"
    );
    assert!(rec.iter().all(|e| e.id.as_deref() == Some("msg_dup")));
    assert_eq!(rec[0], rec[1]);
}

#[tokio::test]
async fn clerk_tampered_body_is_rejected() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let headers = clerk::signed_headers(&svix(), "msg_t", NOW, &body);
    let tampered = clerk_body("user.created", json!({"id": "user_evil"}));
    let (status, json) = app.post("/webhooks/clerk", &headers, &tampered).await;
    assert_eq!(status, 400);
    assert_eq!(json, json!({"error": "no `svix-signature` entry matches"}));
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn clerk_wrong_secret_is_rejected() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let wrong = clerk::SvixSecret::parse("whsec_d3Jvbmcta2V5").unwrap();
    let headers = clerk::signed_headers(&wrong, "msg_w", NOW, &body);
    let (status, json) = app.post("/webhooks/clerk", &headers, &body).await;
    assert_eq!(status, 400);
    assert_eq!(json, json!({"error": "no `svix-signature` entry matches"}));
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn clerk_missing_headers_are_rejected() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let all = clerk::signed_headers(&svix(), "msg_m", NOW, &body);
    for (i, name) in ["svix-id", "svix-timestamp", "svix-signature"]
        .iter()
        .enumerate()
    {
        let headers: Vec<(&str, String)> = all
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, h)| h.clone())
            .collect();
        let (status, json) = app.post("/webhooks/clerk", &headers, &body).await;
        assert_eq!(status, 400, "without {name}");
        assert_eq!(
            json,
            json!({"error": format!("missing or unreadable `{name}` header")})
        );
    }
    let (status, _) = app.post("/webhooks/clerk", &[], &body).await;
    assert_eq!(status, 400);
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn clerk_stale_or_future_timestamp_is_rejected() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let (status, json) = app.clerk("msg_old", NOW - 301, &body).await;
    assert_eq!(status, 400);
    assert_eq!(
        json,
        json!({"error": "`svix-timestamp` is outside the 300s tolerance (off by -301s)"})
    );
    let (status, json) = app.clerk("msg_future", NOW + 600, &body).await;
    assert_eq!(status, 400);
    assert_eq!(
        json,
        json!({"error": "`svix-timestamp` is outside the 300s tolerance (off by 600s)"})
    );
    let (status, _) = app.clerk("msg_edge", NOW - 300, &body).await;
    assert_eq!(status, 200);
    assert_eq!(app.sink.recorded().len(), 1);
}

#[tokio::test]
async fn clerk_multi_signature_with_only_the_second_valid() {
    let app = App::start(base_config()).await;
    let body = clerk_body("user.created", clerk_user());
    let old = clerk::SvixSecret::parse("whsec_b2xkLXJvdGF0ZWQta2V5").unwrap();
    let header = format!(
        "{} {}",
        clerk::sign(&old, "msg_rot", NOW, &body),
        clerk::sign(&svix(), "msg_rot", NOW, &body)
    );
    let headers = [
        ("svix-id", "msg_rot".to_string()),
        ("svix-timestamp", NOW.to_string()),
        ("svix-signature", header),
    ];
    let (status, json) = app.post("/webhooks/clerk", &headers, &body).await;
    assert_eq!(status, 200);
    assert_eq!(json, json!({"received": true, "event_ids": ["msg_rot"]}));
}

#[tokio::test]
async fn clerk_unknown_type_is_ignored() {
    let app = App::start(base_config()).await;
    let body = clerk_body("session.created", json!({"id": "sess_1"}));
    let (status, json) = app.clerk("msg_s", NOW, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        json!({"received": true, "ignored": "session.created"})
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn clerk_garbage_json_with_valid_signature_is_400() {
    let app = App::start(base_config()).await;
    let (status, json) = app.clerk("msg_g", NOW, b"{not json").await;
    assert_eq!(status, 400);
    assert_eq!(json, json!({"error": "body is not valid JSON"}));
    // valid JSON, wrong shape
    let (status, json) = app
        .clerk("msg_g2", NOW, &clerk_body("user.created", json!("nope")))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        json,
        json!({"error": "payload field `data` is missing or has the wrong type"})
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn clerk_secret_unset_is_500() {
    let config = WebhookConfig::default().with_rate_limit(None);
    let app = App::start(config).await;
    let body = clerk_body("user.created", clerk_user());
    let (status, json) = app.clerk("msg_x", NOW, &body).await;
    assert_eq!(status, 500);
    assert_eq!(
        json,
        json!({"error": "clerk webhook secret not configured"})
    );
}

#[tokio::test]
async fn clerk_with_the_real_clock() {
    let sink = RecordingSink::new();
    let config = base_config();
    let state = WebhookState::new(Arc::new(sink.clone()), config); // default clock
    let base = spawn(webhooks::router(state)).await;
    let body = clerk_body("user.created", clerk_user());
    let now = webhooks::unix_now();
    let mut req = reqwest::Client::new().post(format!("{base}/webhooks/clerk"));
    for (k, v) in clerk::signed_headers(&svix(), "msg_now", now, &body) {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(sink.recorded()[0].id.as_deref(), Some("msg_now"));
}

// ---------------------------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------------------------

fn checkout_completed() -> Value {
    json!({
        "id": "evt_1QcheckoutAbc",
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": 1_735_689_590,
        "livemode": false,
        "type": "checkout.session.completed",
        "data": {"object": {
            "id": "cs_test_a1b2",
            "object": "checkout.session",
            "amount_total": 4599,
            "currency": "usd",
            "client_reference_id": "user_29w83sxmDNGwOuEthce5gg56FcC",
            "payment_intent": "pi_3Q1",
            "metadata": {"order_id": "ord_42"}
        }}
    })
}

#[tokio::test]
async fn stripe_checkout_completed_is_forwarded() {
    let app = App::start(base_config()).await;
    let body = serde_json::to_vec(&checkout_completed()).unwrap();
    let (status, json) = app.stripe(NOW, &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        json!({"received": true, "event_ids": ["evt_1QcheckoutAbc"]})
    );
    assert_eq!(
        app.sink.recorded(),
        vec![ev(
            "stripe/webhook",
            "evt_1QcheckoutAbc",
            json!({
                "id": "evt_1QcheckoutAbc",
                "type": "checkout.session.completed",
                "created": 1_735_689_590,
                "livemode": false,
                "object": checkout_completed()["data"]["object"],
            })
        )]
    );
}

#[tokio::test]
async fn stripe_payment_intent_events_are_forwarded() {
    let app = App::start(base_config()).await;
    for (id, kind) in [
        ("evt_pi_ok", "payment_intent.succeeded"),
        ("evt_pi_fail", "payment_intent.payment_failed"),
    ] {
        let body = serde_json::to_vec(&json!({
            "id": id, "type": kind, "created": 1, "livemode": true,
            "data": {"object": {"id": "pi_3Q1", "object": "payment_intent"}}
        }))
        .unwrap();
        let (status, json) = app.stripe(NOW, &body).await;
        assert_eq!(status, 200);
        assert_eq!(json, json!({"received": true, "event_ids": [id]}));
    }
    let rec = app.sink.recorded();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[1].name, "stripe/webhook");
    assert_eq!(rec[1].id.as_deref(), Some("evt_pi_fail"));
    assert_eq!(
        rec[1].data,
        json!({"id": "evt_pi_fail", "type": "payment_intent.payment_failed", "created": 1,
               "livemode": true, "object": {"id": "pi_3Q1", "object": "payment_intent"}})
    );
}

#[tokio::test]
async fn stripe_unhandled_type_is_ignored() {
    let app = App::start(base_config()).await;
    let body = br#"{"id":"evt_c","type":"customer.created","created":1,"livemode":false,"data":{"object":{}}}"#;
    let (status, json) = app.stripe(NOW, body).await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        json!({"received": true, "ignored": "customer.created"})
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn stripe_bad_signatures_are_rejected() {
    let app = App::start(base_config()).await;
    let body = serde_json::to_vec(&checkout_completed()).unwrap();

    // tampered body
    let sig = stripe::sign(&stripe_secret(), NOW, &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let r = app
        .post("/webhooks/stripe", &[("Stripe-Signature", sig)], &tampered)
        .await;
    assert_eq!(
        r,
        (
            400,
            json!({"error": "no `Stripe-Signature` v1 entry matches"})
        )
    );

    // wrong secret
    let sig = stripe::sign(&stripe::StripeSecret::new("whsec_other"), NOW, &body);
    let r = app
        .post("/webhooks/stripe", &[("Stripe-Signature", sig)], &body)
        .await;
    assert_eq!(
        r,
        (
            400,
            json!({"error": "no `Stripe-Signature` v1 entry matches"})
        )
    );

    // missing header
    let r = app.post("/webhooks/stripe", &[], &body).await;
    assert_eq!(
        r,
        (
            400,
            json!({"error": "missing or unreadable `Stripe-Signature` header"})
        )
    );

    // header without timestamp
    let sig = format!("v1={}", stripe::signature(&stripe_secret(), NOW, &body));
    let r = app
        .post("/webhooks/stripe", &[("Stripe-Signature", sig)], &body)
        .await;
    assert_eq!(
        r,
        (
            400,
            json!({"error": "`Stripe-Signature` has no valid `t=` timestamp"})
        )
    );

    // stale
    let r = app.stripe(NOW - 301, &body).await;
    assert_eq!(
        r,
        (
            400,
            json!({"error": "`Stripe-Signature` timestamp is outside the 300s tolerance (off by -301s)"})
        )
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn stripe_multi_signature_with_only_the_second_valid() {
    let app = App::start(base_config()).await;
    let body = serde_json::to_vec(&checkout_completed()).unwrap();
    let old = stripe::signature(&stripe::StripeSecret::new("whsec_rolled"), NOW, &body);
    let good = stripe::signature(&stripe_secret(), NOW, &body);
    let header = format!("t={NOW},v1={old},v1={good},v0={old}");
    let (status, json) = app
        .post("/webhooks/stripe", &[("Stripe-Signature", header)], &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        json,
        json!({"received": true, "event_ids": ["evt_1QcheckoutAbc"]})
    );
}

#[tokio::test]
async fn stripe_garbage_json_with_valid_signature_is_400() {
    let app = App::start(base_config()).await;
    let (status, json) = app.stripe(NOW, b"\xff\xfe not json").await;
    assert_eq!(
        (status, json),
        (400, json!({"error": "body is not valid JSON"}))
    );
    let (status, json) = app
        .stripe(NOW, br#"{"type":"checkout.session.completed"}"#)
        .await;
    assert_eq!(
        (status, json),
        (
            400,
            json!({"error": "payload field `id` is missing or has the wrong type"})
        )
    );
    assert!(app.sink.recorded().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Printify
// ---------------------------------------------------------------------------------------------

fn printify_product_updated() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": "653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff",
        "type": "product:publish:started",
        "created_at": "2025-01-01 00:00:00+00:00",
        "resource": {"id": "5d39b159e7c48c000728c89f", "type": "product",
                     "data": {"shop_id": 815256, "action": "create"}}
    }))
    .unwrap()
}

#[tokio::test]
async fn printify_product_topic_with_and_without_prefix() {
    let app = App::start(base_config()).await;
    let body = printify_product_updated();
    let with_prefix = printify::sign(&printify_secret(), &body);
    assert!(with_prefix.starts_with("sha256="));
    let bare = printify::signature(&printify_secret(), &body);
    for sig in [with_prefix, bare] {
        let (status, json) = app.printify(sig, &body).await;
        assert_eq!(status, 200);
        assert_eq!(
            json,
            json!({"received": true, "event_ids": ["653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff"]})
        );
    }
    let expected = ev(
        "printify/products.update",
        "653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff",
        json!({"productIds": ["5d39b159e7c48c000728c89f"], "reason": "webhook", "shopId": 815256}),
    );
    assert_eq!(app.sink.recorded(), vec![expected.clone(), expected]);
}

#[tokio::test]
async fn printify_order_topic_maps_to_order_updated() {
    let app = App::start(base_config()).await;
    let body = serde_json::to_vec(&json!({
        "id": "d-ship-1", "type": "order:shipment:delivered", "created_at": "2025-01-01",
        "resource": {"id": "5a96f649b2439217d070f507", "type": "order",
                     "data": {"shop_id": 815256, "carrier": {"code": "usps"}}}
    }))
    .unwrap();
    let (status, json) = app
        .printify(printify::sign(&printify_secret(), &body), &body)
        .await;
    assert_eq!(status, 200);
    assert_eq!(json, json!({"received": true, "event_ids": ["d-ship-1"]}));
    assert_eq!(
        app.sink.recorded(),
        vec![ev(
            "printify/order.updated",
            "d-ship-1",
            json!({
                "printifyOrderId": "5a96f649b2439217d070f507",
                "topic": "order:shipment:delivered",
                "status": "delivered",
                "shopId": 815256,
                "resource": {"shop_id": 815256, "carrier": {"code": "usps"}}
            })
        )]
    );
}

#[tokio::test]
async fn printify_bad_signatures_are_401() {
    let app = App::start(base_config()).await;
    let body = printify_product_updated();

    let sig = printify::sign(&printify_secret(), b"something else");
    assert_eq!(
        app.printify(sig, &body).await,
        (401, json!({"error": "`X-Pfy-Signature` does not match"}))
    );
    let sig = printify::sign(&printify::PrintifySecret::new("wrong"), &body);
    assert_eq!(
        app.printify(sig, &body).await,
        (401, json!({"error": "`X-Pfy-Signature` does not match"}))
    );
    assert_eq!(
        app.post("/webhooks/printify", &[], &body).await,
        (
            401,
            json!({"error": "missing or unreadable `X-Pfy-Signature` header"})
        )
    );
    assert_eq!(
        app.printify("sha256=zz".into(), &body).await,
        (
            401,
            json!({"error": "`X-Pfy-Signature` is not `sha256=<hex>`"})
        )
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn printify_unknown_topic_and_garbage() {
    let app = App::start(base_config()).await;
    let body = br#"{"id":"d2","type":"shop:disconnected","resource":{"id":"1"}}"#;
    assert_eq!(
        app.printify(printify::sign(&printify_secret(), body), body)
            .await,
        (
            200,
            json!({"received": true, "ignored": "shop:disconnected"})
        )
    );
    let garbage = b"<xml/>";
    assert_eq!(
        app.printify(printify::sign(&printify_secret(), garbage), garbage)
            .await,
        (400, json!({"error": "body is not valid JSON"}))
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn printify_fails_closed_without_secret() {
    let app = App::start(WebhookConfig::default().with_rate_limit(None)).await;
    let body = printify_product_updated();
    assert_eq!(
        app.printify(printify::sign(&printify_secret(), &body), &body)
            .await,
        (
            500,
            json!({"error": "printify webhook secret not configured"})
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Sink failure, limits, garbage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sink_failure_is_503_and_recorded_once() {
    let app = App::start(base_config()).await;
    app.sink.fail_with("connection refused");
    let body = serde_json::to_vec(&checkout_completed()).unwrap();
    let (status, json) = app.stripe(NOW, &body).await;
    assert_eq!(status, 503);
    assert_eq!(
        json,
        json!({"error": "could not forward the event to Inngest; retry later"})
    );
    assert!(app.sink.recorded().is_empty());
    let failures = app.failures.failures();
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0],
        IngressFailure {
            provider: Provider::Stripe,
            delivery_id: "evt_1QcheckoutAbc".into(),
            events: vec![FailedEvent {
                name: "stripe/webhook".into(),
                id: "evt_1QcheckoutAbc".into(),
                data: json!({
                    "id": "evt_1QcheckoutAbc",
                    "type": "checkout.session.completed",
                    "created": 1_735_689_590,
                    "livemode": false,
                    "object": checkout_completed()["data"]["object"],
                }),
            }],
            error: "sending events to Inngest failed: connection refused".into(),
        }
    );

    // Stripe retries after Inngest is back: forwarded, no new failure.
    app.sink.succeed();
    let (status, _) = app.stripe(NOW + 60, &body).await;
    assert_eq!(status, 200);
    assert_eq!(app.sink.recorded().len(), 1);
    assert_eq!(app.failures.failures().len(), 1);
}

#[tokio::test]
async fn sink_failure_for_clerk_and_printify_is_recorded() {
    let app = App::start(base_config()).await;
    app.sink.fail_with("boom");
    let (s1, _) = app
        .clerk("msg_f", NOW, &clerk_body("user.created", clerk_user()))
        .await;
    let body = printify_product_updated();
    let (s2, _) = app
        .printify(printify::sign(&printify_secret(), &body), &body)
        .await;
    assert_eq!((s1, s2), (503, 503));
    let f = app.failures.failures();
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].provider, f[0].delivery_id.as_str()),
        (Provider::Clerk, "msg_f")
    );
    assert_eq!(f[0].events[0].name, "clerk/user.created");
    assert_eq!(
        (f[1].provider, f[1].delivery_id.as_str()),
        (Provider::Printify, "653b6be8-2ff7-4ab5-a7a6-6889a8b3d8ff")
    );
}

struct SlowSink;

#[async_trait]
impl EventSink for SlowSink {
    async fn send(&self, _events: Vec<Event<Value>>) -> Result<Vec<String>, SinkError> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(vec![])
    }
}

#[tokio::test]
async fn slow_sink_times_out_with_503() {
    let failures = RecordingFailureRecorder::new();
    let state = WebhookState::new(
        Arc::new(SlowSink),
        base_config().with_send_timeout(Duration::from_millis(50)),
    )
    .with_failure_recorder(Arc::new(failures.clone()))
    .with_clock(|| NOW);
    let base = spawn(webhooks::router(state)).await;
    let body = clerk_body("user.created", clerk_user());
    let mut req = reqwest::Client::new().post(format!("{base}/webhooks/clerk"));
    for (k, v) in clerk::signed_headers(&svix(), "msg_slow", NOW, &body) {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let f = failures.failures();
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].error,
        "sending events to Inngest failed: timed out after 50ms"
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = App::start(base_config().with_body_limit(64)).await;
    let body = vec![b' '; 65];
    let (status, json) = app.clerk("msg_big", NOW, &body).await;
    assert_eq!(status, 413);
    assert_eq!(json, json!({"error": "request body exceeds 64 bytes"}));
}

#[tokio::test]
async fn garbage_requests_never_panic() {
    let app = App::start(base_config()).await;
    let junk: &[u8] = b"\x00\x01\x02\xff";
    for path in ["/webhooks/clerk", "/webhooks/stripe", "/webhooks/printify"] {
        let (status, json) = app.post(path, &[], junk).await;
        assert!(status == 400 || status == 401, "{path}: {status}");
        assert!(json["error"].is_string());
        let headers = [
            ("svix-id", "x".to_string()),
            ("svix-timestamp", "not-a-number".to_string()),
            ("svix-signature", "v1,".to_string()),
            ("Stripe-Signature", "t=,v1=,=,,".to_string()),
            ("X-Pfy-Signature", "sha256=".to_string()),
        ];
        let (status, _) = app.post(path, &headers, junk).await;
        assert!(status == 400 || status == 401, "{path}: {status}");
    }
    // non-UTF-8 header value
    let resp = app
        .http
        .post(format!("{}/webhooks/stripe", app.base))
        .header(
            "Stripe-Signature",
            reqwest::header::HeaderValue::from_bytes(b"t=1,v1=\xe9").unwrap(),
        )
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // wrong method
    let resp = app
        .http
        .get(format!("{}/webhooks/clerk", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(app.sink.recorded().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Rate limiting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_429_after_the_burst() {
    // 3 requests at once, then one every ~17 minutes
    let config = base_config().with_rate_limit(Some(RateLimit::new(0.001, 3).unwrap()));
    let app = App::start(config).await;
    let body = clerk_body("user.created", clerk_user());
    for i in 0..3 {
        let (status, _) = app.clerk(&format!("msg_rl_{i}"), NOW, &body).await;
        assert_eq!(status, 200, "request {i}");
    }
    let resp = app
        .http
        .post(format!("{}/webhooks/clerk", app.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 900, "retry-after {retry_after}");
    let json: Value = resp.json().await.unwrap();
    assert_eq!(
        json,
        json!({"error": format!("rate limit exceeded; retry after {retry_after}s")})
    );
    assert_eq!(app.sink.recorded().len(), 3);
}

#[tokio::test]
async fn rate_limit_is_keyed_by_forwarded_client_behind_trusted_proxy() {
    let config = base_config()
        .with_rate_limit(Some(RateLimit::new(0.001, 1).unwrap()))
        .with_trusted_proxies(parse_cidr_list("127.0.0.1/32").unwrap());
    let app = App::start(config).await;
    let xff = |ip: &str| [("X-Forwarded-For", ip.to_string())];
    assert_eq!(
        app.post("/webhooks/printify", &xff("203.0.113.7"), b"{}")
            .await
            .0,
        401
    );
    assert_eq!(
        app.post("/webhooks/printify", &xff("203.0.113.7"), b"{}")
            .await
            .0,
        429
    );
    assert_eq!(
        app.post("/webhooks/printify", &xff("203.0.113.8"), b"{}")
            .await
            .0,
        401
    );
    // a forged left-most entry does not buy a new bucket: the proxy appended the real client
    assert_eq!(
        app.post(
            "/webhooks/printify",
            &xff("198.51.100.1, 203.0.113.8"),
            b"{}"
        )
        .await
        .0,
        429
    );
}

#[tokio::test]
async fn rate_limit_ignores_spoofed_forwarded_for_from_untrusted_peer() {
    let config = base_config()
        .with_rate_limit(Some(RateLimit::new(0.001, 1).unwrap()))
        .with_trusted_proxies(parse_cidr_list("10.0.0.0/8").unwrap());
    let app = App::start(config).await;
    let xff = |ip: &str| [("X-Forwarded-For", ip.to_string())];
    assert_eq!(
        app.post("/webhooks/stripe", &xff("203.0.113.7"), b"{}")
            .await
            .0,
        400
    );
    assert_eq!(
        app.post("/webhooks/stripe", &xff("203.0.113.8"), b"{}")
            .await
            .0,
        429
    );
}

// ---------------------------------------------------------------------------------------------
// IP allowlist
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowlist_allows_and_denies_the_peer() {
    let allowed =
        App::start(base_config().with_allowlist(parse_cidr_list("127.0.0.0/8").unwrap())).await;
    let body = clerk_body("user.created", clerk_user());
    assert_eq!(allowed.clerk("msg_a", NOW, &body).await.0, 200);

    let denied = App::start(
        base_config().with_allowlist(parse_cidr_list("10.0.0.0/8, 2001:db8::/32").unwrap()),
    )
    .await;
    assert_eq!(
        denied.clerk("msg_d", NOW, &body).await,
        (403, json!({"error": "client address not allowed"}))
    );
    assert!(denied.sink.recorded().is_empty());
}

#[tokio::test]
async fn allowlist_uses_forwarded_for_only_from_trusted_proxy() {
    let body = clerk_body("user.created", clerk_user());
    let signed = |id: &str, xff: &str| {
        let mut h = clerk::signed_headers(&svix(), id, NOW, &body).to_vec();
        h.push(("X-Forwarded-For", xff.to_string()));
        h
    };

    // peer 127.0.0.1 is a trusted proxy: the forwarded client decides
    let app = App::start(
        base_config()
            .with_trusted_proxies(parse_cidr_list("127.0.0.1/32, 10.0.0.0/8").unwrap())
            .with_allowlist(parse_cidr_list("203.0.113.0/24").unwrap()),
    )
    .await;
    let ok = app
        .post("/webhooks/clerk", &signed("msg_x1", "203.0.113.7"), &body)
        .await;
    assert_eq!(ok.0, 200);
    let ok = app
        .post(
            "/webhooks/clerk",
            &signed("msg_x2", "198.51.100.1, 203.0.113.7, 10.1.1.1"),
            &body,
        )
        .await;
    assert_eq!(ok.0, 200, "right-most untrusted entry is the client");
    let denied = app
        .post("/webhooks/clerk", &signed("msg_x3", "198.51.100.1"), &body)
        .await;
    assert_eq!(
        denied,
        (403, json!({"error": "client address not allowed"}))
    );
    let spoofed_left = app
        .post(
            "/webhooks/clerk",
            &signed("msg_x4", "203.0.113.7, 198.51.100.1"),
            &body,
        )
        .await;
    assert_eq!(
        spoofed_left.0, 403,
        "a forged left-most entry is not trusted"
    );
    let no_header = app.clerk("msg_x5", NOW, &body).await;
    assert_eq!(
        no_header.0, 403,
        "without XFF the proxy itself is the client"
    );
    assert_eq!(
        app.sink
            .recorded()
            .iter()
            .map(|e| e.id.clone().unwrap())
            .collect::<Vec<_>>(),
        vec!["msg_x1", "msg_x2"]
    );

    // peer 127.0.0.1 is NOT trusted: a spoofed XFF is ignored
    let app = App::start(
        base_config()
            .with_trusted_proxies(parse_cidr_list("10.0.0.0/8").unwrap())
            .with_allowlist(parse_cidr_list("203.0.113.0/24").unwrap()),
    )
    .await;
    let spoofed = app
        .post("/webhooks/clerk", &signed("msg_y", "203.0.113.7"), &body)
        .await;
    assert_eq!(
        spoofed,
        (403, json!({"error": "client address not allowed"}))
    );
    assert!(app.sink.recorded().is_empty());
}

#[tokio::test]
async fn without_connect_info_the_gate_fails_closed() {
    let state = WebhookState::new(
        Arc::new(RecordingSink::new()),
        base_config().with_allowlist(parse_cidr_list("127.0.0.0/8").unwrap()),
    )
    .with_clock(|| NOW);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // deliberately served WITHOUT into_make_service_with_connect_info
    tokio::spawn(async move { axum::serve(listener, webhooks::router(state)).await });
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/webhooks/clerk"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json, json!({"error": "client address unavailable"}));
}

#[tokio::test]
async fn config_from_env_lookup_drives_the_router() {
    let vars = [
        ("CLERK_WEBHOOK_SECRET", SVIX_SECRET),
        ("WEBHOOK_RATE_PER_SEC", "0.001"),
        ("WEBHOOK_RATE_BURST", "1"),
        ("WEBHOOK_IP_ALLOWLIST", "127.0.0.1"),
    ];
    let config = WebhookConfig::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let app = App::start(config).await;
    let body = clerk_body("user.created", clerk_user());
    assert_eq!(app.clerk("msg_e1", NOW, &body).await.0, 200);
    assert_eq!(app.clerk("msg_e2", NOW, &body).await.0, 429);
    // Stripe secret not set in this environment
    assert_eq!(
        app.post("/webhooks/stripe", &[], b"{}").await.0,
        429,
        "rate limit applies before the handler"
    );
}
