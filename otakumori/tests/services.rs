//! Service clients against the loopback fakes: exact request paths, auth headers and bodies,
//! pagination, 429 handling, error classification, order dedupe and email send-once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use otakumori::config::{Config, PrintifySettings, Secret};
use otakumori::context::AppContext;
use otakumori::db::{now_utc, Db, NewOrder, NewOrderItem, PaymentUpdate, ShippingAddress};
use otakumori::sandbox::{
    fixtures, FakePrintify, FakeResend, FakeStripe, Fault, SANDBOX_PRINTIFY_KEY, SANDBOX_SHOP_ID,
};
use otakumori::services::email::{
    templates, EmailProvider, EmailRequest, Mailer, OutgoingEmail, ResendProvider,
};
use otakumori::services::printify::{CreateOrderRequest, PrintifyClient};
use otakumori::services::stripe::StripeClient;
use otakumori::services::{ApiError, RateLimitPolicy};
use serde_json::json;

fn client(fake: &FakePrintify) -> PrintifyClient {
    PrintifyClient::new(&fake.settings())
        .unwrap()
        .with_page_delay(Duration::ZERO)
}

async fn sqlite() -> Db {
    let path = std::env::temp_dir().join(format!("otakumori-svc-{}.db", uuid::Uuid::new_v4()));
    Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn printify_paginates_across_two_pages_with_bearer_auth() {
    let fake = FakePrintify::start().await.unwrap();
    let products = client(&fake)
        .with_page_size(4)
        .list_all_products()
        .await
        .unwrap();
    assert_eq!(products.len(), 6);
    let ids: Vec<_> = products.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, fixtures::PRODUCT_IDS.to_vec());

    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, format!("/v1/shops/{SANDBOX_SHOP_ID}/products.json"));
        assert_eq!(r.query_param("page"), Some((i + 1).to_string()));
        assert_eq!(r.query_param("limit"), Some("4".into()));
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {SANDBOX_PRINTIFY_KEY}").as_str())
        );
        assert!(r.headers["user-agent"].starts_with("otakumori-rust/"));
        assert_eq!(r.status, 200);
    }

    // The envelope itself.
    let page2 = client(&fake).list_products_page(2, 4).await.unwrap();
    assert_eq!(
        (
            page2.current_page,
            page2.last_page,
            page2.total,
            page2.per_page
        ),
        (2, 2, 6, 4)
    );
    assert_eq!((page2.from, page2.to), (Some(5), Some(6)));
    assert!(page2.next_page_url.is_none());
    assert!(page2.prev_page_url.unwrap().contains("page=1"));
    // Default page size 50 → a single request.
    fake.clear_requests();
    assert_eq!(client(&fake).list_all_products().await.unwrap().len(), 6);
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(fake.requests()[0].query_param("limit"), Some("50".into()));
}

#[tokio::test]
async fn printify_large_catalog_uses_limit_50_pages() {
    let fake = FakePrintify::start_with("k", "1", fixtures::generated_products(120))
        .await
        .unwrap();
    let all = client(&fake).list_all_products().await.unwrap();
    assert_eq!(all.len(), 120);
    let pages: Vec<_> = fake
        .requests()
        .iter()
        .map(|r| r.query.clone().unwrap())
        .collect();
    assert_eq!(
        pages,
        vec!["page=1&limit=50", "page=2&limit=50", "page=3&limit=50"]
    );
}

#[tokio::test]
async fn printify_429_then_success_honours_retry_after() {
    let fake = FakePrintify::start().await.unwrap();
    fake.push_fault(Fault::rate_limit(1, 1).on_path("products.json"));
    let c = client(&fake).with_page_size(4);
    let started = Instant::now();
    let products = c.list_all_products().await.unwrap();
    assert_eq!(products.len(), 6);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "slept for Retry-After"
    );
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 200, 200]);

    // With in-process retries disabled the 429 surfaces as a typed, retriable error.
    fake.push_fault(Fault::rate_limit(1, 7));
    let err = client(&fake)
        .with_rate_limit_policy(RateLimitPolicy {
            max_retries: 0,
            ..Default::default()
        })
        .list_products_page(1, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7))
    );
    assert!(err.is_retriable());
    // A Retry-After longer than max_wait is not slept on.
    fake.push_fault(Fault::rate_limit(1, 3600));
    let started = Instant::now();
    let err = client(&fake).list_products_page(1, 10).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3600)));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Bounded: 4 consecutive 429s exhaust the default 3 retries.
    fake.clear_requests();
    fake.push_fault(Fault::rate_limit(4, 0));
    let err = client(&fake).list_products_page(1, 10).await.unwrap_err();
    assert!(matches!(err, ApiError::RateLimited { .. }));
    assert_eq!(fake.requests().len(), 4);
}

#[tokio::test]
async fn printify_errors_are_classified() {
    let fake = FakePrintify::start().await.unwrap();
    let c = client(&fake);

    fake.push_fault(Fault::status(500, 1));
    let err = c.list_products_page(1, 10).await.unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500, .. }) && err.is_retriable());

    fake.push_fault(Fault::status(400, 1).with_message("Shop is disconnected"));
    let err = c.list_products_page(1, 10).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("Shop is disconnected"), "{err}");

    // Wrong key → 401, permanent, with Printify's message.
    let bad = PrintifyClient::new(&PrintifySettings {
        api_key: Secret::new("wrong"),
        ..fake.settings()
    })
    .unwrap();
    let err = bad.list_products_page(1, 10).await.unwrap_err();
    assert_eq!(
        err,
        ApiError::Permanent {
            service: "printify",
            status: 401,
            message: "Unauthenticated.".into()
        }
    );
    // No bearer at all → 401 too.
    let raw = reqwest::get(format!(
        "{}/shops/{SANDBOX_SHOP_ID}/products.json",
        fake.base_url()
    ))
    .await
    .unwrap();
    assert_eq!(raw.status(), 401);
    let last = fake.requests().pop().unwrap();
    assert_eq!((last.authorization, last.status), (None, 401));
    // limit > 50 is a validation 400 on the fake (the client clamps, so use raw HTTP).
    let raw = reqwest::Client::new()
        .get(format!(
            "{}/shops/{SANDBOX_SHOP_ID}/products.json?page=1&limit=51",
            fake.base_url()
        ))
        .bearer_auth(SANDBOX_PRINTIFY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // Unknown product → None; transport error → retriable.
    assert!(c
        .get_product("000000000000000000000000")
        .await
        .unwrap()
        .is_none());
    let p = c
        .get_product(fixtures::PRODUCT_IDS[2])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.title, "Chibi Neko Ramen Mug");
    assert_eq!(
        fake.requests().last().unwrap().path,
        format!(
            "/v1/shops/{SANDBOX_SHOP_ID}/products/{}.json",
            fixtures::PRODUCT_IDS[2]
        )
    );
    assert!(c.get_product("../orders").await.unwrap_err().is_permanent());
    let dead = PrintifyClient::new(&PrintifySettings {
        api_url: "http://127.0.0.1:9/v1".into(),
        ..fake.settings()
    })
    .unwrap();
    let err = dead.list_products_page(1, 1).await.unwrap_err();
    assert!(matches!(err, ApiError::Transport { .. }) && err.is_retriable());
}

fn order_request(external_id: &str) -> CreateOrderRequest {
    serde_json::from_value(json!({
        "external_id": external_id,
        "label": "Order #42",
        "line_items": [{"product_id": fixtures::PRODUCT_IDS[0], "variant_id": 40001, "quantity": 2}],
        "shipping_method": 1,
        "send_shipping_notification": true,
        "address_to": {"first_name": "Asuka", "last_name": "Langley", "email": "asuka@nerv.example",
                       "country": "JP", "region": "Kanagawa", "address1": "2 Eva Street", "address2": "",
                       "city": "Tokyo-3", "zip": "250-0001"}
    }))
    .unwrap()
}

#[tokio::test]
async fn printify_order_post_is_deduped_by_external_id() {
    let fake = FakePrintify::start().await.unwrap();
    let c = client(&fake);
    let a = c.create_order(&order_request("order-a")).await.unwrap();
    let again = c.create_order(&order_request("order-a")).await.unwrap();
    assert_eq!(a.id, again.id);
    let b = c.create_order(&order_request("order-b")).await.unwrap();
    assert_ne!(a.id, b.id);
    let orders = fake.orders();
    assert_eq!(orders.len(), 2);
    assert_eq!(
        (orders[0].external_id.as_str(), orders[0].posts),
        ("order-a", 2)
    );

    let r = &fake.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/shops/8675309/orders.json")
    );
    assert_eq!(r.headers["content-type"], "application/json");
    assert_eq!(
        r.authorization.as_deref(),
        Some("Bearer sandbox-printify-token")
    );
    assert_eq!(
        r.body,
        serde_json::to_value(order_request("order-a")).unwrap()
    );
    assert_eq!(
        r.body["line_items"][0],
        json!({"product_id": fixtures::PRODUCT_IDS[0], "variant_id": 40001, "quantity": 2})
    );

    // Validation 400s are permanent, with Printify's message and reason.
    let mut bad = order_request("order-c");
    bad.address_to.country = String::new();
    let err = c.create_order(&bad).await.unwrap_err();
    assert!(err.is_permanent());
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string()
            .contains("Validation failed. (address_to.country is required)"),
        "{err}"
    );
    // The original's wrong line-item keys are rejected.
    let raw = reqwest::Client::new()
        .post(format!("{}/shops/8675309/orders.json", fake.base_url()))
        .bearer_auth(SANDBOX_PRINTIFY_KEY)
        .json(&json!({"external_id": "x", "line_items": [{"printify_product_id": "p", "printify_variant_id": 1, "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(fake.orders().len(), 2);
}

#[tokio::test]
async fn order_request_built_from_db_rows_and_sent_once() {
    let fake = FakePrintify::start().await.unwrap();
    let c = client(&fake);
    let db = sqlite().await;
    let now = now_utc();
    for p in c.list_all_products().await.unwrap() {
        db.upsert_catalog_product(&p.to_catalog_input(c.shop_id()), now)
            .await
            .unwrap();
    }
    let user = db
        .upsert_user(
            &otakumori::db::UserProfile {
                clerk_id: "user_x".into(),
                email: "x@nerv.example".into(),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap()
        .row;
    let v = db
        .get_variant_by_printify_ids(fixtures::PRODUCT_IDS[4], 40_401)
        .await
        .unwrap()
        .unwrap();
    let order = db
        .create_order(
            &NewOrder {
                user_id: user.id,
                stripe_session_id: Some("cs_x".into()),
                subtotal_cents: 2400,
                total_cents: 2400,
                currency: "USD".into(),
                shipping: None,
                items: vec![NewOrderItem {
                    variant_id: Some(v.id),
                    name: "Shrine Maiden Tote Bag".into(),
                    quantity: 1,
                    unit_amount_cents: 2400,
                    ..Default::default()
                }],
            },
            now,
        )
        .await
        .unwrap();
    let items = db.order_fulfillment_check(order.id).await.unwrap();
    // No address yet → permanent, no placeholders.
    let err = CreateOrderRequest::for_order(&order, &items).unwrap_err();
    assert!(
        err.contains("missing name, line1, city, postal_code, country"),
        "{err}"
    );
    let ship = ShippingAddress {
        name: Some("Rei Ayanami".into()),
        line1: Some("1 Geofront".into()),
        city: Some("Tokyo-3".into()),
        postal_code: Some("250-0002".into()),
        country: Some("jp".into()),
        ..Default::default()
    };
    db.mark_order_paid(
        order.id,
        &PaymentUpdate {
            shipping: Some(ship),
            ..Default::default()
        },
        now,
    )
    .await
    .unwrap();
    let order = db.get_order(order.id).await.unwrap().unwrap();
    let req = CreateOrderRequest::for_order(&order, &items).unwrap();
    assert_eq!(req.external_id, order.id.to_string());
    assert_eq!(
        req.label.as_deref(),
        Some(format!("Order #{}", order.display_number).as_str())
    );
    assert_eq!(
        (
            req.address_to.first_name.as_str(),
            req.address_to.last_name.as_str()
        ),
        ("Rei", "Ayanami")
    );
    assert_eq!(req.address_to.country, "JP");
    let created = c.create_order(&req).await.unwrap();
    db.record_printify_order_created(order.id, &created.id, now)
        .await
        .unwrap();
    let sent = &fake.orders()[0];
    assert_eq!(
        sent.request["line_items"],
        json!([{"product_id": fixtures::PRODUCT_IDS[4], "variant_id": 40401, "quantity": 1}])
    );
    assert_eq!(sent.request["shipping_method"], 1);
    assert_eq!(sent.request["send_shipping_notification"], true);
    assert_eq!(
        db.get_order(order.id)
            .await
            .unwrap()
            .unwrap()
            .printify_order_id,
        Some(created.id)
    );
}

#[tokio::test]
async fn fake_printify_control_api_over_http() {
    let fake = FakePrintify::start().await.unwrap();
    let http = reqwest::Client::new();
    let root = fake.root_url();
    // Flip availability.
    let r = http
        .post(format!(
            "{root}/__fake/products/{}/variants/40201/availability",
            fixtures::PRODUCT_IDS[2]
        ))
        .json(&json!({"is_available": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mug = client(&fake)
        .get_product(fixtures::PRODUCT_IDS[2])
        .await
        .unwrap()
        .unwrap();
    assert!(!mug.variants[0].is_available);
    // Queue faults over HTTP.
    let r = http
        .post(format!("{root}/__fake/faults"))
        .json(&json!([{"status": 503, "times": 2}]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        json!({"queued": 1})
    );
    assert!(client(&fake)
        .list_products_page(1, 5)
        .await
        .unwrap_err()
        .is_retriable());
    assert!(client(&fake)
        .list_products_page(1, 5)
        .await
        .unwrap_err()
        .is_retriable());
    assert!(client(&fake).list_products_page(1, 5).await.is_ok());
    // Replace fixtures, read the log (control calls are not logged).
    let r = http
        .put(format!("{root}/__fake/products"))
        .json(&fixtures::generated_products(3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(client(&fake).list_all_products().await.unwrap().len(), 3);
    let log: Vec<serde_json::Value> = http
        .get(format!("{root}/__fake/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<_> = log.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![200, 503, 503, 200, 200]);
    assert!(log
        .iter()
        .all(|r| !r["path"].as_str().unwrap().starts_with("/__fake")));
    // Reset restores the default fixtures.
    http.post(format!("{root}/__fake/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(fake.products().len(), 6);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn stripe_session_fixture_bearer_and_404() {
    let fake = FakeStripe::start().await.unwrap();
    let c = StripeClient::new(&fake.settings()).unwrap();
    let s = c
        .retrieve_checkout_session(fixtures::PAID_SESSION_ID)
        .await
        .unwrap();
    assert!(s.is_paid());
    assert_eq!(s.payment_intent.as_deref(), Some("pi_test_otakumori_0001"));
    let pay = s.payment_update();
    assert_eq!(
        (pay.total_cents, pay.currency.as_deref()),
        (Some(6600), Some("usd"))
    );
    let ship = pay.shipping.unwrap();
    assert_eq!(ship.name.as_deref(), Some("Miku Hatsune"));
    assert_eq!(ship.country.as_deref(), Some("JP"));
    assert_eq!(
        ship.email.as_deref(),
        Some("miku.hatsune@otakumori.example")
    );
    let r = &fake.requests()[0];
    assert_eq!(
        r.path,
        format!("/v1/checkout/sessions/{}", fixtures::PAID_SESSION_ID)
    );
    assert_eq!(
        r.authorization.as_deref(),
        Some("Bearer sk_test_otakumori_sandbox")
    );
    assert_eq!(
        r.headers["stripe-version"],
        otakumori::services::stripe::STRIPE_API_VERSION
    );

    let unpaid = c
        .retrieve_checkout_session(fixtures::UNPAID_SESSION_ID)
        .await
        .unwrap();
    assert!(!unpaid.is_paid() && unpaid.payment_intent.is_none());

    let err = c
        .retrieve_checkout_session("cs_test_missing")
        .await
        .unwrap_err();
    assert!(err.is_permanent() && err.is_not_found());
    assert!(
        err.to_string()
            .contains("No such checkout.session: 'cs_test_missing'"),
        "{err}"
    );

    // Custom fixture with an expanded payment_intent object and legacy shipping_details.
    let mut custom = fixtures::paid_session("cs_test_custom", 1234, "pi_x");
    custom["payment_intent"] = json!({"id": "pi_expanded", "object": "payment_intent"});
    custom["shipping_details"] = custom["collected_information"]["shipping_details"].take();
    custom["collected_information"] = serde_json::Value::Null;
    fake.put_session(custom);
    let s = c.retrieve_checkout_session("cs_test_custom").await.unwrap();
    assert_eq!(s.payment_intent.as_deref(), Some("pi_expanded"));
    assert_eq!(s.amount_total, Some(1234));
    assert_eq!(
        s.shipping_address().unwrap().city.as_deref(),
        Some("Sapporo")
    );

    let bad = StripeClient::new(&otakumori::config::StripeSettings {
        secret_key: Secret::new("sk_test_wrong"),
        ..fake.settings()
    })
    .unwrap();
    let err = bad
        .retrieve_checkout_session(fixtures::PAID_SESSION_ID)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(err.is_permanent());
    fake.push_fault(Fault::status(502, 1));
    assert!(c
        .retrieve_checkout_session(fixtures::PAID_SESSION_ID)
        .await
        .unwrap_err()
        .is_retriable());
}

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        from: "Otaku-mori <orders@otaku-mori.example>".into(),
        to: vec![to.into()],
        subject: "Order Confirmation #7".into(),
        html: Some("<p>hi</p>".into()),
        text: Some("hi".into()),
    }
}

#[tokio::test]
async fn resend_provider_posts_validated_email() {
    let fake = FakeResend::start().await.unwrap();
    let p = ResendProvider::new(&fake.settings()).unwrap();
    let receipt = p
        .send(&email("misato@nerv.example"), "key-1")
        .await
        .unwrap();
    let sent = fake.emails();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].id, receipt.message_id);
    assert_eq!(sent[0].to, vec!["misato@nerv.example"]);
    let r = &fake.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/emails"));
    assert_eq!(
        r.authorization.as_deref(),
        Some("Bearer re_sandbox_otakumori")
    );
    assert_eq!(r.headers["idempotency-key"], "key-1");
    assert_eq!(
        r.body,
        json!({"from": "Otaku-mori <orders@otaku-mori.example>", "to": ["misato@nerv.example"],
               "subject": "Order Confirmation #7", "html": "<p>hi</p>", "text": "hi"})
    );
    // Same idempotency key → same id, nothing new recorded.
    let again = p
        .send(&email("misato@nerv.example"), "key-1")
        .await
        .unwrap();
    assert_eq!(again.message_id, receipt.message_id);
    assert_eq!(fake.emails().len(), 1);

    // Client-side validation (permanent) and the fake's own 422.
    let mut no_subject = email("misato@nerv.example");
    no_subject.subject.clear();
    assert!(p.send(&no_subject, "k2").await.unwrap_err().is_permanent());
    let raw = reqwest::Client::new()
        .post(format!("{}/emails", fake.base_url()))
        .bearer_auth("re_sandbox_otakumori")
        .json(&json!({"from": "a@b.example", "to": ["c@d.example"], "html": "<p/>"}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 422);
    assert_eq!(
        raw.json::<serde_json::Value>().await.unwrap()["name"],
        "validation_error"
    );
    let raw = reqwest::Client::new()
        .post(format!("{}/emails", fake.base_url()))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
}

#[tokio::test]
async fn mailer_sends_once_and_logs_failures() {
    let fake = FakeResend::start().await.unwrap();
    let db = sqlite().await;
    let mailer = Mailer::new(
        Arc::new(ResendProvider::new(&fake.settings()).unwrap()),
        db.clone(),
        "Otaku-mori <orders@otaku-mori.example>",
        Some("ops@otakumori.example".into()),
    );
    assert_eq!(mailer.admin_alert_email(), Some("ops@otakumori.example"));
    let req = EmailRequest {
        idempotency_key: "inventory-alert:abc".into(),
        template: templates::INVENTORY_ALERT.into(),
        to: vec!["ops@otakumori.example".into()],
        subject: "[Otaku-mori] 1 variant(s) out of stock".into(),
        html: Some("<p>x</p>".into()),
        text: Some("x".into()),
        order_id: None,
        user_id: None,
    };
    // First attempt: provider 500 → retriable error, failed row logged, nothing delivered.
    fake.push_fault(Fault::status(500, 1));
    let err = mailer.send_once(&req).await.unwrap_err();
    assert!(err.is_retriable(), "{err}");
    assert!(fake.emails().is_empty());
    // Retry succeeds; a replay afterwards sends nothing.
    let ok = mailer.send_once(&req).await.unwrap();
    assert!(!ok.already_sent);
    assert_eq!(ok.provider, "resend");
    let replay = mailer.send_once(&req).await.unwrap();
    assert!(replay.already_sent);
    assert_eq!(fake.emails().len(), 1);
    assert_eq!(
        fake.requests()
            .iter()
            .filter(|r| r.path == "/emails")
            .count(),
        2,
        "500 + one real send"
    );
    let log = db.list_email_log().await.unwrap();
    let statuses: Vec<_> = log.iter().map(|l| l.status.as_str()).collect();
    assert_eq!(statuses, vec!["failed", "sent"]);
    assert!(log[0].error.as_deref().unwrap().contains("500"));
    assert_eq!(
        log[1].provider_message_id.as_deref(),
        Some(fake.emails()[0].id.as_str())
    );

    // A permanent provider error (403 bad key) is not retriable.
    let bad = Mailer::new(
        Arc::new(
            ResendProvider::new(&otakumori::config::ResendSettings {
                api_key: Secret::new("re_wrong"),
                ..fake.settings()
            })
            .unwrap(),
        ),
        db.clone(),
        "Otaku-mori <orders@otaku-mori.example>",
        None,
    );
    let err = bad
        .send_once(&EmailRequest {
            idempotency_key: "other".into(),
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert!(!err.is_retriable());
}

#[tokio::test]
async fn templates_render_real_order_data() {
    let db = sqlite().await;
    let now = now_utc();
    let user = db
        .upsert_user(
            &otakumori::db::UserProfile {
                clerk_id: "user_t".into(),
                email: "user@nerv.example".into(),
                display_name: Some("Shinji".into()),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap()
        .row;
    let order = db
        .create_order(
            &NewOrder {
                user_id: user.id,
                subtotal_cents: 0,
                total_cents: 3400,
                currency: "usd".into(),
                shipping: Some(ShippingAddress {
                    name: Some("Shinji <Ikari>".into()),
                    line1: Some("3 Misato Apt".into()),
                    city: Some("Tokyo-3".into()),
                    country: Some("JP".into()),
                    ..Default::default()
                }),
                items: vec![NewOrderItem {
                    name: "Oni Graffiti Tee".into(),
                    quantity: 1,
                    unit_amount_cents: 2900,
                    ..Default::default()
                }],
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap();
    let view = templates::OrderEmailView::from_detail(
        &db.get_order_detail(order.id).await.unwrap().unwrap(),
    );
    assert_eq!(
        view.recipient, "user@nerv.example",
        "falls back to users.email, never a placeholder"
    );
    assert_eq!(
        (view.subtotal_cents, view.shipping_cents, view.total_cents),
        (2900, 500, 3400)
    );
    let r = templates::order_confirmation(&view);
    assert_eq!(
        r.subject,
        format!("Order Confirmation #{}", order.display_number)
    );
    assert!(r.text.contains("Oni Graffiti Tee x1  $29.00"));
    assert!(r.text.contains("Total: $34.00"));
    assert!(r.html.contains("Shinji &lt;Ikari&gt;"));
    assert!(!r.html.contains("Address information"));
}

#[tokio::test]
async fn app_context_starts_sandbox_stand_ins_when_no_keys_are_set() {
    let path = std::env::temp_dir().join(format!("otakumori-ctx-{}.db", uuid::Uuid::new_v4()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let cfg = Config::from_lookup(|k| match k {
        "DATABASE_URL" => Some(url.clone()),
        "EMAIL_PROVIDER" => Some("sandbox".into()),
        _ => None,
    })
    .unwrap();
    assert!(cfg.uses_sandbox());
    let ctx = AppContext::init(cfg).await.unwrap();
    let products = ctx.printify.list_all_products().await.unwrap();
    assert_eq!(products.len(), 6);
    assert!(ctx.printify.base_url().starts_with("http://127.0.0.1:"));
    let s = ctx
        .stripe
        .retrieve_checkout_session(fixtures::PAID_SESSION_ID)
        .await
        .unwrap();
    assert!(s.is_paid());
    let out = ctx
        .mailer
        .send_once(&EmailRequest {
            idempotency_key: "ctx-1".into(),
            template: "monthly-audit".into(),
            to: vec!["ops@otakumori.example".into()],
            subject: "report".into(),
            html: None,
            text: Some("ok".into()),
            order_id: None,
            user_id: None,
        })
        .await
        .unwrap();
    assert_eq!(out.provider, "resend");
    assert_eq!(ctx.sandbox.resend.as_ref().unwrap().emails().len(), 1);
    assert_eq!(ctx.sandbox.printify.as_ref().unwrap().requests().len(), 1);

    // Default transport is the local outbox (no network).
    let cfg = Config::from_lookup(|k| (k == "DATABASE_URL").then(|| "sqlite::memory:".to_string()))
        .unwrap();
    let ctx = AppContext::init(cfg).await.unwrap();
    assert_eq!(ctx.mailer.provider_name(), "log");
    assert!(ctx.sandbox.resend.is_none());
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn smtp_provider_parses_url_and_classifies_connection_failures() {
    use otakumori::services::email::SmtpProvider;
    assert!(SmtpProvider::from_url(&Secret::new("definitely not a url"))
        .unwrap_err()
        .is_permanent());
    // Nothing listens on the discard port: the send fails as a retriable transport error
    // (after the message itself was built successfully).
    let p = SmtpProvider::from_url(&Secret::new("smtp://127.0.0.1:9")).unwrap();
    assert_eq!(p.name(), "smtp");
    let err = p
        .send(&email("misato@nerv.example"), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ApiError::Transport {
                service: "smtp",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retriable());
    // Invalid addresses are caught before any connection.
    let mut bad = email("misato@nerv.example");
    bad.from = "not an address".into();
    assert!(p.send(&bad, "k").await.unwrap_err().is_permanent());
}
