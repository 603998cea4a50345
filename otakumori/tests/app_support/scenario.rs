//! The demo scenario, step by step, on an app started like the demo (embedded executor,
//! sandboxes, in-memory executor state): for the tests that look at a running app afterwards
//! (the dashboard in a browser, `/metrics`).

use std::time::Duration;

use chrono::Utc;
use otakumori::app::{start, Env, InngestSetup, RunningApp, StartOptions};
use otakumori::config::ExecutorState;
use otakumori::db::{NewOrder, NewOrderItem};
use otakumori::sandbox::fixtures;
use otakumori::webhooks::clerk::{self, SvixSecret};
use otakumori::webhooks::stripe::{self, StripeSecret, STRIPE_SIGNATURE_HEADER};
use otakumori::webhooks::{CLERK_PATH, STRIPE_PATH};
use serde_json::json;
use uuid::Uuid;

use super::TempDb;

/// How long a stage of the scenario may take.
pub const WAIT: Duration = Duration::from_secs(60);
/// The Clerk user of the scenario.
pub const CLERK_ID: &str = "user_2sandboxMikuHatsune";
/// The Stripe webhook secret the app is started with.
pub const STRIPE_SECRET: &str = "whsec_dashboard_browser_test";

/// POSTs a webhook delivery to the app; asserts a 2xx.
pub async fn deliver(app: &RunningApp, path: &str, headers: &[(&str, String)], body: String) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.app_url()))
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.expect("webhook delivery");
    assert!(res.status().is_success(), "{path}: {}", res.status());
}

/// Waits until `function` has `count` ended runs.
pub async fn settle(app: &RunningApp, function: &str, count: usize) {
    let ex = app.executor().expect("embedded executor");
    ex.wait_for_runs_of_function(&app.function_id(function), count, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{function}: {e}"));
}

/// Steps 1 and 2 of the demo: the Clerk signup and the catalogue sync.
pub async fn signup_and_catalogue(app: &RunningApp, clerk_secret: &SvixSecret) {
    let now = Utc::now();
    let body = json!({
        "type": "user.created", "object": "event", "timestamp": now.timestamp_millis(),
        "data": {
            "id": CLERK_ID, "object": "user", "username": "miku", "first_name": "Miku",
            "last_name": "Hatsune", "primary_email_address_id": "idn_demo_miku",
            "email_addresses": [{"id": "idn_demo_miku", "object": "email_address",
                                 "email_address": "miku.hatsune@otakumori.example"}],
            "created_at": now.timestamp_millis(), "updated_at": now.timestamp_millis(),
        }
    })
    .to_string();
    let id = format!("msg_dash{}", Uuid::new_v4().simple());
    let headers = clerk::signed_headers(clerk_secret, &id, now.timestamp(), body.as_bytes());
    deliver(app, CLERK_PATH, &headers, body).await;
    settle(app, "sync-user-to-supabase", 1).await;
    let ex = app.executor().unwrap();
    ex.send(json!({"name": "printify/products.update", "data": {"reason": "manual"}}))
        .await
        .unwrap();
    settle(app, "update-printify-products", 1).await;
}

/// Steps 3 and 4 of the demo: a pending order for two products, paid through Stripe.
pub async fn checkout_and_pay(app: &RunningApp) {
    let db = &app.context().db;
    let user = db
        .get_user_by_clerk_id(CLERK_ID)
        .await
        .unwrap()
        .expect("user row");
    let mut products = db.list_products(true).await.unwrap();
    products.sort_by(|a, b| a.printify_product_id.cmp(&b.printify_product_id));
    let mut items = Vec::new();
    for p in &products {
        let vs = db.list_variants(p.id).await.unwrap();
        if let Some(v) = vs
            .into_iter()
            .find(|v| v.is_enabled && v.in_stock && v.price_cents.is_some())
        {
            items.push(NewOrderItem {
                variant_id: Some(v.id),
                printify_product_id: p.printify_product_id.clone(),
                printify_variant_id: Some(v.printify_variant_id),
                name: p.title.clone(),
                sku: v.sku.clone(),
                quantity: 1,
                unit_amount_cents: v.price_cents.unwrap_or(0),
            });
        }
        if items.len() == 2 {
            break;
        }
    }
    let total: i64 = items.iter().map(|i| i.unit_amount_cents).sum();
    let session_id = format!("cs_test_dash{}", Uuid::new_v4().simple());
    let new = NewOrder {
        user_id: user.id,
        stripe_session_id: Some(session_id.clone()),
        subtotal_cents: total,
        total_cents: total,
        currency: "USD".into(),
        shipping: None,
        items,
    };
    let order = db.create_order(&new, Utc::now()).await.unwrap();
    let mut session = fixtures::paid_session(
        &session_id,
        total,
        &format!("pi_dash{}", Uuid::new_v4().simple()),
    );
    session["client_reference_id"] = json!(CLERK_ID);
    session["customer_details"]["email"] = json!(user.email);
    session["metadata"]["order_id"] = json!(order.id.to_string());
    app.context()
        .sandbox
        .stripe
        .as_ref()
        .expect("sandbox Stripe")
        .put_session(session.clone());
    let now = Utc::now();
    let body = json!({
        "id": format!("evt_dash{}", Uuid::new_v4().simple()), "object": "event",
        "api_version": "2025-10-29.clover", "created": now.timestamp(), "livemode": false,
        "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed", "data": {"object": session},
    })
    .to_string();
    let sig = stripe::sign(
        &StripeSecret::new(STRIPE_SECRET),
        now.timestamp(),
        body.as_bytes(),
    );
    deliver(app, STRIPE_PATH, &[(STRIPE_SIGNATURE_HEADER, sig)], body).await;
    for f in [
        "process-payment-webhook",
        "process-order",
        "send-order-confirmation",
    ] {
        settle(app, f, 1).await;
    }
}

/// The app as the demo starts it: embedded executor, sandboxes, in-memory executor state.
pub async fn start_demo_app(db: &TempDb, clerk_secret: &str) -> RunningApp {
    let url = db.url();
    let env = Env::from_pairs([
        ("DATABASE_URL", url.as_str()),
        ("CLERK_WEBHOOK_SECRET", clerk_secret),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_SECRET),
    ]);
    let opts = StartOptions {
        listen: Some(([127, 0, 0, 1], 0).into()),
        inngest: Some(InngestSetup::Embedded { port: 0 }),
        retry_interval: Some(Duration::from_millis(100)),
        executor_state: Some(ExecutorState::InMemory),
        ..StartOptions::default()
    };
    start(&env, opts).await.expect("app starts")
}

/// A Clerk (svix) webhook secret: `whsec_` and base64 of 32 bytes.
pub fn clerk_secret() -> String {
    use base64::Engine;
    let key: Vec<u8> = (0u8..32).collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    )
}

/// Starts the app on `db` and plays the whole scenario: signup, catalogue, checkout, payment.
pub async fn start_and_play(db: &TempDb) -> (RunningApp, String) {
    let secret = clerk_secret();
    let app = start_demo_app(db, &secret).await;
    signup_and_catalogue(&app, &SvixSecret::parse(&secret).unwrap()).await;
    checkout_and_pay(&app).await;
    (app, secret)
}
