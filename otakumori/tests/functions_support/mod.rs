//! Shared setup for the `functions_*` integration tests: a real database (SQLite file, or
//! PostgreSQL in its own schema), an `AppContext` whose Printify/Stripe/Resend are the loopback
//! sandbox fakes, the local executor `TestHarness` serving `functions::all` (with the app's middleware) over HTTP, the
//! webhook routes wired to the harness's Inngest client, and seeding helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use inngest_executor::RunView;
use inngest_sdk::testing::TestHarness;
use otakumori::config::Config;
use otakumori::context::AppContext;
use otakumori::db::{
    now_utc, Backend, Db, DbOptions, NewOrder, NewOrderItem, Order, ProductVariant, User,
    UserProfile,
};
use otakumori::functions::middleware::{FailureReporter, Services};
use otakumori::functions::{self, Deps, FunctionOptions, APP_ID};
use otakumori::sandbox::{FakePrintify, FakeResend, FakeStripe, RecordedRequest};
use otakumori::webhooks::{self, clerk, stripe, WebhookConfig, WebhookState};
use serde_json::{json, Value};
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "ops@otakumori.example";
pub const SVIX_SECRET: &str = "whsec_b3Rha3Vtb3JpLWZ1bmN0aW9ucy1zdml4LWtleQ==";
pub const STRIPE_WEBHOOK_SECRET: &str = "whsec_otakumori_functions_test";
pub const PG_HOST: &str = "127.0.0.1:5432";

/// Which database a test runs on.
pub enum TestDb {
    /// A fresh SQLite file (removed on drop).
    Sqlite(PathBuf),
    /// A fresh PostgreSQL schema (dropped by [`TestApp::finish`]).
    Postgres(String),
}

/// A fresh SQLite file database, migrated.
pub async fn sqlite_db() -> (Db, TestDb) {
    let path = std::env::temp_dir().join(format!("otakumori-fn-{}.db", Uuid::new_v4().simple()));
    let db = Db::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .expect("sqlite database");
    assert_eq!(db.backend(), Backend::Sqlite);
    (db, TestDb::Sqlite(path))
}

/// A fresh PostgreSQL schema on 127.0.0.1:5432 (database `test`), or `None` — with the reason
/// printed — when no server answers there.
pub async fn pg_db(name: &str) -> Option<(Db, TestDb)> {
    let addr: SocketAddr = PG_HOST.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        eprintln!("SKIP {name}: no PostgreSQL server answers on {PG_HOST}");
        return None;
    }
    let schema = format!(
        "omfn_{}_{}",
        name,
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let mut last = None;
    for user in ["postgres", "root"] {
        let opts = DbOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 5,
            ..DbOptions::new(format!("postgres://{user}@{PG_HOST}/test"))
        };
        match Db::connect_with(opts).await {
            Ok(db) => {
                assert_eq!(db.backend(), Backend::Postgres);
                return Some((db, TestDb::Postgres(schema)));
            }
            Err(e) => last = Some(e),
        }
    }
    panic!("PostgreSQL answers on {PG_HOST} but database `test` is not reachable: {last:?}");
}

/// Sandbox config: every service on its loopback fake (email through the fake Resend, so the
/// request log shows each message), an admin alert address, default retention.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("EMAIL_PROVIDER".into(), "sandbox".into());
    vars.insert("ADMIN_ALERT_EMAIL".into(), ADMIN_EMAIL.into());
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("test config")
}

/// Harness options.
#[derive(Default)]
pub struct Opts {
    pub start: Option<DateTime<Utc>>,
    pub auto_advance: bool,
    pub functions: FunctionOptions,
    pub env: Vec<(&'static str, &'static str)>,
}

/// One app under test.
pub struct TestApp {
    pub ctx: Arc<AppContext>,
    pub h: TestHarness,
    pub db: Db,
    test_db: Option<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(TestDb::Sqlite(path)) = &self.test_db {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
    }
}

impl TestApp {
    /// SQLite app with default options.
    pub async fn sqlite() -> TestApp {
        Self::sqlite_with(Opts::default()).await
    }

    /// SQLite app with options.
    pub async fn sqlite_with(opts: Opts) -> TestApp {
        let (db, t) = sqlite_db().await;
        Self::start(db, t, opts).await
    }

    /// Start the context, the harness and sync the app.
    pub async fn start(db: Db, test_db: TestDb, opts: Opts) -> TestApp {
        if std::env::var_os("OTAKUMORI_TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_test_writer()
                .try_init();
        }
        let ctx = AppContext::init_with_db(config(&opts.env), db.clone())
            .await
            .expect("app context");
        let mut b = TestHarness::builder(APP_ID)
            .functions(functions::all())
            .middleware(Services::new(Deps::new(ctx.clone(), opts.functions)))
            .middleware(FailureReporter)
            .auto_advance(opts.auto_advance)
            .timeout(Duration::from_secs(20));
        if let Some(t) = opts.start {
            b = b.start_time(t);
        }
        let h = b.start().await.expect("harness");
        TestApp {
            ctx,
            h,
            db,
            test_db: Some(test_db),
        }
    }

    /// Drop a PostgreSQL schema (no-op for SQLite, whose file goes on drop).
    pub async fn finish(mut self) {
        if let Some(TestDb::Postgres(schema)) = self.test_db.take() {
            let pool = self.db.pg_pool().unwrap().clone();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
            )))
            .execute(&pool)
            .await
            .unwrap();
        }
    }

    pub fn printify(&self) -> &FakePrintify {
        self.ctx
            .sandbox
            .printify
            .as_ref()
            .expect("sandbox printify")
    }

    pub fn stripe(&self) -> &FakeStripe {
        self.ctx.sandbox.stripe.as_ref().expect("sandbox stripe")
    }

    pub fn resend(&self) -> &FakeResend {
        self.ctx.sandbox.resend.as_ref().expect("sandbox resend")
    }

    /// Composite id of a function.
    pub fn fid(&self, function: &str) -> String {
        self.h.function_id(function)
    }

    /// All runs of a function (composite id), oldest first.
    pub fn runs_of(&self, function: &str) -> Vec<RunView> {
        let id = self.fid(function);
        self.h
            .executor()
            .runs()
            .into_iter()
            .filter(|r| r.function_id == id)
            .collect()
    }

    /// Wait until `count` runs of a function exist and have ended.
    pub async fn wait_runs_of(&self, function: &str, count: usize) -> Vec<RunView> {
        self.h
            .executor()
            .wait_for_runs_of_function(&self.fid(function), count, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{e}; runs: {:#?}",
                    self.h
                        .executor()
                        .runs()
                        .iter()
                        .map(|r| (r.function_id.clone(), r.status, r.error.clone()))
                        .collect::<Vec<_>>()
                )
            })
    }

    /// Events with this name the executor received or emitted.
    pub fn events_named(&self, name: &str) -> Vec<Value> {
        self.h
            .executor()
            .events()
            .into_iter()
            .filter(|e| e["name"] == name)
            .collect()
    }

    /// Invoke a function directly through the executor's REST API (`POST /invoke/{fn}`), the
    /// way a cron job is run by hand; returns the invocation event id.
    pub async fn invoke(&self, function: &str, data: Value) -> String {
        let resp = reqwest::Client::new()
            .post(format!(
                "{}/invoke/{}",
                self.h.executor_url(),
                self.fid(function)
            ))
            .json(&json!({ "data": data }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["id"].as_str().expect("invocation id").to_string()
    }

    /// Printify API requests (method, path+query, status), excluding nothing.
    pub fn printify_requests(&self) -> Vec<RecordedRequest> {
        self.printify().requests()
    }

    /// Seed the local catalog from the fake's products (as a full sync would).
    pub async fn seed_catalog(&self) {
        let shop = self.ctx.printify.shop_id().to_string();
        for p in self.printify().products() {
            self.db
                .upsert_catalog_product(&p.to_catalog_input(&shop), now_utc())
                .await
                .unwrap();
        }
    }

    /// A local variant by Printify ids.
    pub async fn variant(&self, product: &str, variant: i64) -> ProductVariant {
        self.db
            .get_variant_by_printify_ids(product, variant)
            .await
            .unwrap()
            .expect("variant in the local catalog")
    }

    /// A user row.
    pub async fn user(&self, clerk_id: &str, email: &str) -> User {
        self.db
            .upsert_user(
                &UserProfile {
                    clerk_id: clerk_id.into(),
                    email: email.into(),
                    username: None,
                    display_name: Some("Miku Hatsune".into()),
                    avatar_url: None,
                },
                now_utc(),
            )
            .await
            .unwrap()
            .row
    }

    /// A pending order for `session_id` with the given lines (`(variant, quantity)`; a `None`
    /// variant is an unmapped line), the same lines in the user's cart, and a paid Stripe
    /// session fixture for it.
    pub async fn order(
        &self,
        user: &User,
        session_id: &str,
        lines: &[(Option<&ProductVariant>, i32)],
    ) -> Order {
        let mut items = Vec::new();
        let mut total = 0;
        for (i, (v, q)) in lines.iter().enumerate() {
            let (pp, pv, name, price) = match v {
                Some(v) => {
                    let product = self
                        .db
                        .list_products(false)
                        .await
                        .unwrap()
                        .into_iter()
                        .find(|p| p.id == v.product_id)
                        .unwrap();
                    (
                        product.printify_product_id.clone(),
                        Some(v.printify_variant_id),
                        format!(
                            "{} — {}",
                            product.title,
                            v.title.clone().unwrap_or_default()
                        ),
                        v.price_cents.unwrap_or(1000),
                    )
                }
                None => (None, None, format!("Custom commission #{i}"), 9900),
            };
            total += price * i64::from(*q);
            items.push(NewOrderItem {
                variant_id: v.map(|v| v.id),
                printify_product_id: if v.is_some() { pp } else { None },
                printify_variant_id: pv,
                name,
                sku: v.and_then(|v| v.sku.clone()),
                quantity: *q,
                unit_amount_cents: price,
            });
            if let Some(v) = v {
                self.db
                    .set_cart_item(user.id, v.id, *q, now_utc())
                    .await
                    .unwrap();
            }
        }
        self.stripe()
            .put_session(otakumori::sandbox::fixtures::paid_session(
                session_id,
                total,
                &format!("pi_{session_id}"),
            ));
        self.db
            .create_order(
                &NewOrder {
                    user_id: user.id,
                    stripe_session_id: Some(session_id.into()),
                    subtotal_cents: total,
                    total_cents: total,
                    currency: "usd".into(),
                    shipping: None,
                    items,
                },
                now_utc(),
            )
            .await
            .unwrap()
    }

    /// The webhook routes, sending through the harness's Inngest client.
    pub async fn webhooks(&self) -> Webhooks {
        let config = WebhookConfig::default()
            .with_clerk_secret(clerk::SvixSecret::parse(SVIX_SECRET).unwrap())
            .with_stripe_secret(stripe::StripeSecret::new(STRIPE_WEBHOOK_SECRET))
            .with_rate_limit(None);
        let state = WebhookState::new(webhooks::inngest_sink(self.h.client().clone()), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(webhooks::serve(listener, webhooks::router(state)));
        Webhooks {
            base,
            http: reqwest::Client::new(),
        }
    }
}

/// The webhook routes of a [`TestApp`], over HTTP, with signing helpers.
pub struct Webhooks {
    base: String,
    http: reqwest::Client,
}

impl Webhooks {
    async fn post(
        &self,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: &[u8],
    ) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.body(body.to_vec()).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// A signed Clerk (svix) delivery of `{type, data}`.
    pub async fn clerk(&self, msg_id: &str, kind: &str, data: Value) -> (u16, Value) {
        let body =
            serde_json::to_vec(&json!({"type": kind, "object": "event", "data": data})).unwrap();
        let secret = clerk::SvixSecret::parse(SVIX_SECRET).unwrap();
        let headers = clerk::signed_headers(&secret, msg_id, webhooks::unix_now(), &body)
            .into_iter()
            .collect();
        self.post(webhooks::CLERK_PATH, headers, &body).await
    }

    /// A signed Stripe delivery of an event object.
    pub async fn stripe(&self, event: &Value) -> (u16, Value) {
        let body = serde_json::to_vec(event).unwrap();
        let sig = stripe::sign(
            &stripe::StripeSecret::new(STRIPE_WEBHOOK_SECRET),
            webhooks::unix_now(),
            &body,
        );
        self.post(
            webhooks::STRIPE_PATH,
            vec![("stripe-signature", sig)],
            &body,
        )
        .await
    }
}

/// A Clerk user object.
pub fn clerk_user(id: &str, email: &str, first: &str, last: &str) -> Value {
    json!({
        "id": id,
        "object": "user",
        "username": null,
        "first_name": first,
        "last_name": last,
        "image_url": format!("https://img.clerk.example/{id}.png"),
        "primary_email_address_id": "idn_primary",
        "email_addresses": [
            {"id": "idn_other", "email_address": format!("old.{email}")},
            {"id": "idn_primary", "email_address": email}
        ],
        "created_at": 1_735_689_000_000i64,
        "updated_at": 1_735_689_000_000i64
    })
}

/// A Stripe `checkout.session.completed` event for a session fixture of the fake Stripe.
pub fn checkout_completed(evt_id: &str, session: &Value) -> Value {
    json!({
        "id": evt_id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": webhooks::unix_now(),
        "livemode": false,
        "type": "checkout.session.completed",
        "data": {"object": session}
    })
}

/// Requests of a fake's log matching a method and a path fragment.
pub fn matching<'a>(
    reqs: &'a [RecordedRequest],
    method: &str,
    path: &str,
) -> Vec<&'a RecordedRequest> {
    reqs.iter()
        .filter(|r| r.method == method && r.path.contains(path))
        .collect()
}

/// `2030-01-01T00:00:00Z`-style parsing.
pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .with_timezone(&Utc)
}
