//! The demo scenario: the shop's main job, end to end, in a few seconds.
//!
//! 1. **Clerk signup** — a svix-signed `user.created` delivery to `POST /webhooks/clerk`
//!    → `clerk/user.created` → `sync-user-to-supabase` → a `users` row.
//! 2. **Printify catalogue sync** — `printify/products.update` sent through the SDK client to the
//!    executor's event API → `update-printify-products` pages through the sandbox Printify
//!    → `products` / `product_variants` rows.
//! 3. **Checkout** — what the storefront does: a cart for the user, a `pending` order with its
//!    items, and a paid Checkout Session in the sandbox Stripe.
//! 4. **Payment** — a signed `checkout.session.completed` delivery to `POST /webhooks/stripe`
//!    → `stripe/webhook` → `process-payment-webhook` → `order/created` → `process-order`
//!    (validate, inventory, payment check with Stripe, Printify order, confirmation, cart)
//!    → `order/confirmation.sent` → `send-order-confirmation` → an email in the outbox.
//!
//! Everything runs through real HTTP: the webhook routes verify real signatures, the app is served
//! and synced like with the Dev Server, and the executor drives every step over `/api/inngest`.
//!
//! With `INNGEST_DEV=<url>` (or `1` for `http://localhost:8288`) the same scenario plays through
//! that Inngest server instead of the embedded executor — the real `inngest dev`, or this
//! workspace's `inngest-dev-server`: the app syncs itself with it (`PUT /api/inngest`, as
//! `inngest dev -u` users do), the webhooks go to the app's own routes, and the runs are
//! followed through the server's REST API ([`follow`](super::follow)).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use inngest_executor::{RunStatus, RunView};
use inngest_sdk::Event;
use serde_json::{json, Value};
use uuid::Uuid;

use super::follow::{short_fn, Expect, Follow, ServerRuns};
use super::server::{plan, InngestSetup, RunningApp, StartOptions};
use super::summary::Table;
use super::{start, AppError, Env};
use crate::config::{EmailTransport, ExecutorState};
use crate::db::{NewOrder, NewOrderItem, Order, User};
use crate::functions::orders::{confirmation_event_id, order_created_event_id};
use crate::functions::APP_ID;
use crate::sandbox::{fixtures, FakeOrder};
use crate::webhooks::clerk::{self, SvixSecret};
use crate::webhooks::stripe::{self, StripeSecret};
use crate::webhooks::{WebhookConfig, CLERK_PATH, STRIPE_PATH};

/// SQLite file the demo uses when `DATABASE_URL` is unset; recreated on every demo run.
pub(crate) const DEMO_DB_FILE: &str = "otakumori-demo.db";

/// Clerk id of the demo customer (the sandbox Stripe fixtures use the same id).
pub(crate) const DEMO_CLERK_ID: &str = "user_2sandboxMikuHatsune";
/// Email of the demo customer.
pub(crate) const DEMO_EMAIL: &str = "miku.hatsune@otakumori.example";

/// Tables whose row counts the summary shows, in display order.
pub(crate) const SUMMARY_TABLES: &[&str] = &[
    "users",
    "products",
    "product_variants",
    "product_images",
    "carts",
    "cart_items",
    "orders",
    "order_items",
    "printify_order_sync",
    "webhook_events",
    "email_log",
    "email_outbox",
    "failed_operations",
];

/// Options of [`run_demo`].
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Environment (service keys, `DATABASE_URL`, webhook secrets, `RUST_LOG`).
    pub env: Env,
    /// Database to use; default: `DATABASE_URL`, else a fresh `sqlite://otakumori-demo.db`.
    pub database_url: Option<String>,
    /// Print progress and the summary to stdout (default `true`).
    pub print: bool,
    /// How long each stage may take before the demo gives up (default 30 s).
    pub stage_timeout: Duration,
}

impl DemoOptions {
    /// Defaults for `env`.
    pub fn new(env: Env) -> DemoOptions {
        DemoOptions {
            env,
            database_url: None,
            print: true,
            stage_timeout: Duration::from_secs(30),
        }
    }
}

/// Row count of one table before and after the scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    /// Table name.
    pub table: &'static str,
    /// Rows before the scenario.
    pub before: i64,
    /// Rows after it.
    pub after: i64,
}

/// One email the scenario produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSummary {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject line.
    pub subject: String,
    /// Where it went (`outbox` or `sandbox resend`).
    pub via: String,
}

/// What the demo did: runs, steps, rows, sandbox side effects.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Where the runs ran: `embedded executor` or `through the Inngest server`.
    pub inngest: &'static str,
    /// Database URL (password redacted).
    pub database: String,
    /// Every run the executor recorded, oldest first.
    pub runs: Vec<RunView>,
    /// The `process-order` run, if one started.
    pub order_run: Option<RunView>,
    /// Row counts before/after per table.
    pub rows: Vec<TableCount>,
    /// Orders the sandbox Printify accepted.
    pub printify_orders: Vec<FakeOrder>,
    /// Calls each sandbox received: (service, `METHOD path → status`).
    pub sandbox_calls: Vec<(String, String)>,
    /// Emails produced by this run.
    pub emails: Vec<EmailSummary>,
    /// The demo customer.
    pub user: Option<User>,
    /// The demo order as it ended up.
    pub order: Option<Order>,
    /// Items left in the customer's cart at the end.
    pub cart_items_left: Option<usize>,
    /// Wall-clock time of the whole demo.
    pub elapsed: Duration,
    /// Why the demo failed, if it did.
    pub failure: Option<String>,
}

impl DemoReport {
    fn empty(inngest: &'static str, database: String) -> DemoReport {
        DemoReport {
            inngest,
            database,
            runs: Vec::new(),
            order_run: None,
            rows: Vec::new(),
            printify_orders: Vec::new(),
            sandbox_calls: Vec::new(),
            emails: Vec::new(),
            user: None,
            order: None,
            cart_items_left: None,
            elapsed: Duration::ZERO,
            failure: None,
        }
    }

    /// Counts of one table.
    pub fn rows_of(&self, table: &str) -> Option<&TableCount> {
        self.rows.iter().find(|r| r.table == table)
    }

    /// Runs of one function (its id without the app prefix).
    pub fn runs_of(&self, function: &str) -> Vec<&RunView> {
        let id = format!("{APP_ID}-{function}");
        self.runs.iter().filter(|r| r.function_id == id).collect()
    }

    /// Whether every run completed.
    pub fn all_completed(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(|r| r.status == RunStatus::Completed)
    }

    /// The summary: runs, order steps, rows written, sandbox side effects.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!("\nRuns ({})\n", self.inngest));
        let mut t = Table::new(&[
            "#",
            "function",
            "triggered by",
            "status",
            ">steps",
            ">duration",
        ]);
        for (i, r) in self.runs.iter().enumerate() {
            t.row([
                (i + 1).to_string(),
                short_fn(&r.function_id).to_string(),
                r.event()
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_string(),
                r.status.as_str().to_string(),
                r.steps.len().to_string(),
                run_duration(r),
            ]);
        }
        out.push_str(&t.render());
        out.push('\n');

        if let Some(run) = &self.order_run {
            out.push_str(&format!("\nSteps of process-order (run {})\n", run.id));
            let mut t = Table::new(&["step", "op", "status", ">attempts", ">duration"]);
            for s in &run.steps {
                let d = s
                    .ended_at
                    .map(|e| fmt_ms((e - s.started_at).num_milliseconds()))
                    .unwrap_or_else(|| "-".into());
                t.row([
                    s.name.clone(),
                    s.op.clone(),
                    format!("{:?}", s.status),
                    s.attempts.to_string(),
                    d,
                ]);
            }
            out.push_str(&t.render());
            out.push('\n');
        }

        out.push_str(&format!("\nRows written ({})\n", self.database));
        let mut t = Table::new(&["table", ">before", ">after", ">change"]);
        for r in &self.rows {
            let change = r.after - r.before;
            t.row([
                r.table.to_string(),
                r.before.to_string(),
                r.after.to_string(),
                if change == 0 {
                    "0".to_string()
                } else {
                    format!("{change:+}")
                },
            ]);
        }
        out.push_str(&t.render());
        out.push('\n');

        out.push_str("\nSandbox side effects\n");
        let mut t = Table::new(&["service", "what"]);
        for o in &self.printify_orders {
            let lines = o.request["line_items"].as_array().map_or(0, Vec::len);
            let to = &o.request["address_to"];
            t.row([
                "Printify".to_string(),
                format!(
                    "order {} (external_id {}, {} line items, ship to {} {}, {}) — {} POST(s)",
                    o.id,
                    o.external_id,
                    lines,
                    to["first_name"].as_str().unwrap_or(""),
                    to["last_name"].as_str().unwrap_or(""),
                    to["country"].as_str().unwrap_or("?"),
                    o.posts
                ),
            ]);
        }
        for e in &self.emails {
            t.row([
                "Email".to_string(),
                format!("\"{}\" to {} via {}", e.subject, e.to.join(", "), e.via),
            ]);
        }
        for (service, call) in &self.sandbox_calls {
            t.row([format!("{service} API"), call.clone()]);
        }
        out.push_str(&t.render());
        out.push('\n');

        if let Some(o) = &self.order {
            out.push_str(&format!(
                "\nOrder #{} ({}): status {}, paid {}, Printify order {}, cart items left: {}\n",
                o.display_number,
                o.id,
                o.status.as_str(),
                money(o.total_cents, &o.currency),
                o.printify_order_id.as_deref().unwrap_or("none"),
                self.cart_items_left
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into())
            ));
        }
        let not_completed = self
            .runs
            .iter()
            .filter(|r| r.status != RunStatus::Completed)
            .count();
        let runs = if not_completed == 0 {
            format!("{} runs, all Completed", self.runs.len())
        } else {
            format!("{} runs, {not_completed} not Completed", self.runs.len())
        };
        let secs = self.elapsed.as_secs_f64();
        match &self.failure {
            None if not_completed == 0 => {
                out.push_str(&format!("\nOK: {runs}, in {secs:.1} s."));
            }
            None => out.push_str(&format!("\nFAILED: {runs}, in {secs:.1} s.")),
            Some(why) => {
                let first = why.lines().next().unwrap_or_default();
                out.push_str(&format!("\nFAILED: {first} ({runs}, {secs:.1} s)"));
            }
        }
        out
    }
}

fn run_duration(r: &RunView) -> String {
    r.ended_at
        .map(|e| fmt_ms((e - r.started_at).num_milliseconds()))
        .unwrap_or_else(|| "running".into())
}

fn fmt_ms(ms: i64) -> String {
    format!("{ms} ms")
}

fn money(cents: i64, currency: &str) -> String {
    format!(
        "{}.{:02} {}",
        cents / 100,
        cents % 100,
        currency.to_uppercase()
    )
}

/// Prints when asked to.
struct Say(bool);

impl Say {
    fn line(&self, s: impl AsRef<str>) {
        if self.0 {
            println!("{}", s.as_ref());
        }
    }
}

/// Runs the scenario on a freshly started app (embedded executor on a free port, or the Inngest
/// server `INNGEST_DEV` names; app on a free port) and shuts it down. `Ok` only if every run completed and the order reached Printify and
/// the outbox; otherwise [`AppError::Demo`] with the report so far.
pub async fn run_demo(opts: DemoOptions) -> Result<DemoReport, AppError> {
    let started = Instant::now();
    let since = Utc::now();
    let say = Say(opts.print);
    let env = &opts.env;

    // Configuration first: half-configured services are errors, live services are refused.
    let base = plan(env, &StartOptions::default())?;
    refuse_live_services(&base.config)?;
    let (database_url, db_note) = match (&opts.database_url, env.get("DATABASE_URL")) {
        (Some(url), _) => (url.clone(), "given by the caller".to_string()),
        (None, Some(url)) => (url, "DATABASE_URL".to_string()),
        (None, None) => {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{DEMO_DB_FILE}{suffix}"));
            }
            (
                format!("sqlite://{DEMO_DB_FILE}?mode=rwc"),
                format!(
                    "a fresh SQLite file ./{DEMO_DB_FILE}, recreated on every demo run; \
                     `serve` uses DATABASE_URL or ./otakumori.db"
                ),
            )
        }
    };
    let (webhooks, clerk_secret, stripe_secret, generated) = demo_webhooks(base.webhooks);
    let setup = if through_server(env) {
        InngestSetup::DevServer
    } else {
        InngestSetup::Embedded { port: 0 }
    };

    let app = start(
        env,
        StartOptions {
            listen: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            inngest: Some(setup),
            database_url: Some(database_url),
            webhooks: Some(webhooks),
            retry_interval: Some(Duration::from_millis(100)),
            // One-shot scenario on a fresh database: never resume runs of an earlier demo.
            executor_state: Some(ExecutorState::InMemory),
            connect: false,
        },
    )
    .await?;
    let mut follow = match app.executor() {
        Some(executor) => Follow::Embedded(executor),
        None => Follow::Server(ServerRuns::new(app.client().config().api_origin().as_str())),
    };
    let mut report =
        DemoReport::empty(follow.label(), app.context().config.database_url_redacted());

    say.line("Otakumori demo: the shop's main job, end to end");
    match app.executor_url() {
        Some(url) => say.line(format!(
            "  {:<10} embedded local executor at {url}; synced {} from {}",
            "Inngest",
            app.synced_summary(),
            app.serve_url()
        )),
        None => {
            let origin = app.client().config().api_origin().to_string();
            if let Err(e) = sync_with_server(&app).await {
                app.shutdown().await;
                return Err(AppError::Startup(format!(
                    "syncing the app with the Inngest server at {origin} (INNGEST_DEV) failed: {e}"
                )));
            }
            say.line(format!(
                "  {:<10} the Inngest server at {origin} (INNGEST_DEV); synced {} from {}",
                "Inngest",
                app.synced_summary(),
                app.serve_url()
            ));
        }
    }
    say.line(format!(
        "  {:<10} {} (webhook routes + /api/inngest)",
        "App",
        app.app_url()
    ));
    for (k, v) in app.service_lines() {
        let v = if k == "Database" {
            format!("{v} ({db_note})")
        } else {
            v
        };
        say.line(format!("  {k:<10} {v}"));
    }
    say.line(format!(
        "  {:<10} {}",
        "Webhooks",
        if generated.is_empty() {
            "signed with CLERK_WEBHOOK_SECRET / STRIPE_WEBHOOK_SECRET".to_string()
        } else {
            format!(
                "{} not set: signing with a secret generated for this run",
                generated.join(", ")
            )
        }
    ));
    say.line("");

    let result = scenario(
        &app,
        &mut follow,
        &say,
        &clerk_secret,
        &stripe_secret,
        opts.stage_timeout,
        &mut report,
    )
    .await;
    collect(&app, &follow, &mut report, since).await;
    report.elapsed = started.elapsed();
    app.shutdown().await;

    let failure = match result {
        Err(message) => Some(message),
        Ok(()) => verify(&report).err(),
    };
    match failure {
        Some(message) => {
            report.failure = Some(message.clone());
            Err(AppError::Demo {
                message,
                report: Some(Box::new(report)),
            })
        }
        None => {
            say.line(report.render());
            say.line(
                "\nNext: `cargo run --example otakumori -- serve` keeps the app running \
                 (see otakumori/README.md).",
            );
            Ok(report)
        }
    }
}

/// Whether `INNGEST_DEV` names an Inngest server to play the scenario through (`1`/`true` or a
/// URL; `0`/`false` do not).
fn through_server(env: &Env) -> bool {
    env.get("INNGEST_DEV")
        .is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

/// Syncs the app with the server the way `inngest dev -u` users do: `PUT /api/inngest` on the
/// app, which registers its functions with the server.
async fn sync_with_server(app: &RunningApp) -> Result<(), String> {
    let url = app.serve_url();
    let resp = reqwest::Client::new()
        .put(&url)
        .send()
        .await
        .map_err(|e| format!("PUT {url}: {e}"))?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("PUT {url} answered {status}: {body}"))
    }
}

/// The demo must not place real Printify orders, charge-check real Stripe sessions or email
/// real people.
fn refuse_live_services(config: &crate::config::Config) -> Result<(), AppError> {
    let mut live = Vec::new();
    if !config.printify.is_sandbox() {
        live.push("Printify (PRINTIFY_API_KEY/PRINTIFY_SHOP_ID)");
    }
    if !config.stripe.is_sandbox() {
        live.push("Stripe (STRIPE_SECRET_KEY)");
    }
    if !matches!(
        config.email.transport,
        EmailTransport::Log | EmailTransport::Sandbox
    ) {
        live.push("email (RESEND_API_KEY/SMTP_URL/EMAIL_PROVIDER)");
    }
    if live.is_empty() {
        Ok(())
    } else {
        Err(AppError::Config(format!(
            "the demo places an order and sends a confirmation email, so it only runs against the \
             built-in sandboxes, but these services are configured live: {}. Unset those \
             variables for the demo, or use `serve` to work with the real services",
            live.join(", ")
        )))
    }
}

/// The webhook configuration for the demo: the env's, with a generated secret for each of the
/// Clerk/Stripe routes that has none (named in the returned list).
fn demo_webhooks(
    mut config: WebhookConfig,
) -> (WebhookConfig, SvixSecret, StripeSecret, Vec<&'static str>) {
    let mut generated = Vec::new();
    let clerk_secret = match &config.clerk_secret {
        Some(s) => s.clone(),
        None => {
            generated.push("CLERK_WEBHOOK_SECRET");
            let key: Vec<u8> = Uuid::new_v4()
                .as_bytes()
                .iter()
                .chain(Uuid::new_v4().as_bytes())
                .copied()
                .collect();
            SvixSecret::from_key(key)
        }
    };
    let stripe_secret = match &config.stripe_secret {
        Some(s) => s.clone(),
        None => {
            generated.push("STRIPE_WEBHOOK_SECRET");
            StripeSecret::new(format!("whsec_demo{}", Uuid::new_v4().simple()))
        }
    };
    config.clerk_secret = Some(clerk_secret.clone());
    config.stripe_secret = Some(stripe_secret.clone());
    (config, clerk_secret, stripe_secret, generated)
}

async fn scenario(
    app: &RunningApp,
    follow: &mut Follow<'_>,
    say: &Say,
    clerk_secret: &SvixSecret,
    stripe_secret: &StripeSecret,
    timeout: Duration,
    report: &mut DemoReport,
) -> Result<(), String> {
    let ctx = app.context();
    let db = &ctx.db;
    let http = reqwest::Client::new();
    report.rows = count_tables(db, None).await?;

    // 1. Clerk signup through the real webhook route.
    let now = Utc::now();
    let svix_id = format!("msg_demo{}", Uuid::new_v4().simple());
    let clerk_body = json!({
        "type": "user.created",
        "object": "event",
        "timestamp": now.timestamp_millis(),
        "data": {
            "id": DEMO_CLERK_ID,
            "object": "user",
            "username": "miku",
            "first_name": "Miku",
            "last_name": "Hatsune",
            "image_url": "https://img.otakumori.example/avatars/miku.png",
            "primary_email_address_id": "idn_demo_miku",
            "email_addresses": [
                {"id": "idn_demo_miku", "object": "email_address", "email_address": DEMO_EMAIL}
            ],
            "created_at": now.timestamp_millis(),
            "updated_at": now.timestamp_millis(),
        }
    })
    .to_string();
    let headers = clerk::signed_headers(
        clerk_secret,
        &svix_id,
        now.timestamp(),
        clerk_body.as_bytes(),
    );
    let (status, clerk_ids) = post(
        &http,
        &format!("{}{CLERK_PATH}", app.app_url()),
        &headers,
        clerk_body,
    )
    .await?;
    say.line(format!(
        "[1/4] Clerk signup: POST {CLERK_PATH} (svix-signed user.created for {DEMO_CLERK_ID}) → {status}"
    ));
    let expect = |event_id, function, event_name| Expect {
        event_id,
        function,
        event_name,
    };
    let clerk_id = clerk_ids.first().map_or("", String::as_str);
    follow
        .settle(
            &[expect(
                clerk_id,
                "sync-user-to-supabase",
                "clerk/user.created",
            )],
            timeout,
        )
        .await?;
    let user = db
        .get_user_by_clerk_id(DEMO_CLERK_ID)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("sync-user-to-supabase completed but there is no users row for {DEMO_CLERK_ID}")
        })?;
    say.line(format!(
        "      → sync-user-to-supabase: users row {} <{}> (username {})",
        user.display_name.as_deref().unwrap_or("-"),
        user.email,
        user.username.as_deref().unwrap_or("-")
    ));
    report.user = Some(user.clone());

    // 2. Catalogue sync, sent through the SDK client to the executor's event API.
    let ids = app
        .client()
        .send(&Event::new(
            "printify/products.update",
            json!({"reason": "manual"}),
        ))
        .await
        .map_err(|e| format!("sending printify/products.update: {e}"))?;
    say.line(format!(
        "[2/4] Printify catalogue sync: event printify/products.update {{\"reason\":\"manual\"}} (id {})",
        ids.first().map(String::as_str).unwrap_or("?")
    ));
    let sync_id = ids.first().map_or("", String::as_str);
    follow
        .settle(
            &[expect(
                sync_id,
                "update-printify-products",
                "printify/products.update",
            )],
            timeout,
        )
        .await?;
    let products = db.list_products(true).await.map_err(|e| e.to_string())?;
    let variants = db
        .count_rows("product_variants")
        .await
        .map_err(|e| e.to_string())?;
    say.line(format!(
        "      → update-printify-products: {} active products, {} variants from the sandbox catalogue",
        products.len(),
        variants
    ));

    // 3. Checkout: cart, pending order, paid Checkout Session (what the storefront does).
    // Deterministic picks: the first two purchasable products in Printify id order.
    let mut products = products;
    products.sort_by(|a, b| a.printify_product_id.cmp(&b.printify_product_id));
    let mut lines = Vec::new();
    for p in &products {
        if lines.len() == 2 {
            break;
        }
        let vs = db.list_variants(p.id).await.map_err(|e| e.to_string())?;
        if let Some(v) = vs
            .into_iter()
            .find(|v| v.is_enabled && v.in_stock && v.price_cents.is_some())
        {
            lines.push((p.clone(), v, lines.len() as i32 + 1));
        }
    }
    if lines.len() < 2 {
        return Err(format!(
            "the catalogue sync left only {} purchasable products; the demo needs 2",
            lines.len()
        ));
    }
    let now = Utc::now();
    for (_, v, qty) in &lines {
        db.set_cart_item(user.id, v.id, *qty, now)
            .await
            .map_err(|e| e.to_string())?;
    }
    let items: Vec<NewOrderItem> = lines
        .iter()
        .map(|(p, v, qty)| NewOrderItem {
            variant_id: Some(v.id),
            printify_product_id: p.printify_product_id.clone(),
            printify_variant_id: Some(v.printify_variant_id),
            name: match &v.title {
                Some(t) => format!("{} ({t})", p.title),
                None => p.title.clone(),
            },
            sku: v.sku.clone(),
            quantity: *qty,
            unit_amount_cents: v.price_cents.unwrap_or(0),
        })
        .collect();
    let total: i64 = items
        .iter()
        .map(|i| i.unit_amount_cents * i64::from(i.quantity))
        .sum();
    let session_id = format!("cs_test_demo{}", Uuid::new_v4().simple());
    let order = db
        .create_order(
            &NewOrder {
                user_id: user.id,
                stripe_session_id: Some(session_id.clone()),
                subtotal_cents: total,
                total_cents: total,
                currency: "USD".into(),
                shipping: None,
                items,
            },
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut session = fixtures::paid_session(
        &session_id,
        total,
        &format!("pi_demo{}", Uuid::new_v4().simple()),
    );
    session["client_reference_id"] = json!(DEMO_CLERK_ID);
    session["customer_details"]["email"] = json!(user.email);
    session["metadata"]["order_id"] = json!(order.id.to_string());
    let fake_stripe = ctx
        .sandbox
        .stripe
        .as_ref()
        .ok_or("the demo needs the sandbox Stripe")?;
    fake_stripe.put_session(session.clone());
    let cart: Vec<String> = lines
        .iter()
        .map(|(p, _, qty)| format!("{qty}× {}", p.title))
        .collect();
    say.line(format!(
        "[3/4] Checkout: cart [{}], pending order #{} for {}, paid Stripe Checkout Session {}",
        cart.join(", "),
        order.display_number,
        money(total, "USD"),
        session_id
    ));

    // 4. Payment: signed checkout.session.completed through the real Stripe route.
    let now = Utc::now();
    let evt_id = format!("evt_demo{}", Uuid::new_v4().simple());
    let stripe_body = json!({
        "id": evt_id,
        "object": "event",
        "api_version": "2025-10-29.clover",
        "created": now.timestamp(),
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "type": "checkout.session.completed",
        "data": {"object": session},
    })
    .to_string();
    let sig = stripe::sign(stripe_secret, now.timestamp(), stripe_body.as_bytes());
    let (status, stripe_ids) = post(
        &http,
        &format!("{}{STRIPE_PATH}", app.app_url()),
        &[(stripe::STRIPE_SIGNATURE_HEADER, sig)],
        stripe_body,
    )
    .await?;
    say.line(format!(
        "[4/4] Stripe payment: POST {STRIPE_PATH} (signed checkout.session.completed {evt_id}) → {status}"
    ));
    let (created, confirmation) = (
        order_created_event_id(order.id),
        confirmation_event_id(order.id),
    );
    follow
        .settle(
            &[
                expect(
                    stripe_ids.first().map_or("", String::as_str),
                    "process-payment-webhook",
                    "stripe/webhook",
                ),
                expect(&created, "process-order", "order/created"),
                expect(
                    &confirmation,
                    "send-order-confirmation",
                    "order/confirmation.sent",
                ),
            ],
            timeout,
        )
        .await?;
    let order = db
        .get_order(order.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the demo order disappeared")?;
    say.line(format!(
        "      → process-payment-webhook → process-order → send-order-confirmation: order #{} {}, Printify order {}",
        order.display_number,
        order.status.as_str(),
        order.printify_order_id.as_deref().unwrap_or("none")
    ));
    report.order = Some(order);
    Ok(())
}

/// POSTs a webhook delivery: the status and the ids of the events the route sent
/// (`{"received":true,"event_ids":[…]}`). Anything but 2xx is an error carrying the answer.
async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<(String, Vec<String>), String> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("POST {url} failed: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if status.is_success() {
        let ids = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| serde_json::from_value(v["event_ids"].clone()).ok())
            .unwrap_or_default();
        Ok((format!("{}", status.as_u16()), ids))
    } else {
        Err(format!("POST {url} answered {status}: {text}"))
    }
}

async fn count_tables(
    db: &crate::db::Db,
    before: Option<&[TableCount]>,
) -> Result<Vec<TableCount>, String> {
    let mut out = Vec::new();
    for table in SUMMARY_TABLES {
        let n = db.count_rows(table).await.map_err(|e| e.to_string())?;
        let prev = before
            .and_then(|b| b.iter().find(|c| c.table == *table))
            .map_or(n, |c| c.before);
        out.push(TableCount {
            table,
            before: prev,
            after: n,
        });
    }
    Ok(out)
}

/// Fills the report from the executor, the database and the sandboxes (best effort).
async fn collect(
    app: &RunningApp,
    follow: &Follow<'_>,
    report: &mut DemoReport,
    since: DateTime<Utc>,
) {
    let ctx = app.context();
    report.runs = follow.runs();
    report.order_run = report
        .runs
        .iter()
        .find(|r| r.function_id == app.function_id("process-order"))
        .cloned();
    if !report.rows.is_empty() {
        if let Ok(rows) = count_tables(&ctx.db, Some(&report.rows)).await {
            report.rows = rows;
        }
    }
    if let Some(p) = &ctx.sandbox.printify {
        report.printify_orders = p.orders();
        for r in p.requests() {
            report.sandbox_calls.push((
                "Printify".into(),
                format!("{} {} → {}", r.method, r.path, r.status),
            ));
        }
    }
    if let Some(s) = &ctx.sandbox.stripe {
        for r in s.requests() {
            report.sandbox_calls.push((
                "Stripe".into(),
                format!("{} {} → {}", r.method, r.path, r.status),
            ));
        }
    }
    match &ctx.config.email.transport {
        EmailTransport::Log => {
            if let Ok(msgs) = ctx.db.list_outbox().await {
                report.emails = msgs
                    .into_iter()
                    .filter(|m| m.created_at >= since)
                    .map(|m| EmailSummary {
                        to: m.to_addresses,
                        subject: m.subject,
                        via: "the local outbox (email_outbox table)".into(),
                    })
                    .collect();
            }
        }
        _ => {
            if let Some(r) = &ctx.sandbox.resend {
                report.emails = r
                    .emails()
                    .into_iter()
                    .map(|e| EmailSummary {
                        to: e.to,
                        subject: e.subject,
                        via: "the sandbox Resend".into(),
                    })
                    .collect();
            }
        }
    }
    if let Some(user) = &report.user {
        report.cart_items_left = ctx.db.cart_items(user.id).await.ok().map(|v| v.len());
    }
}

/// The facts the demo promises: all runs completed, the order went to Printify once and is in
/// production, one confirmation email, the cart is empty.
fn verify(report: &DemoReport) -> Result<(), String> {
    if let Some(bad) = report
        .runs
        .iter()
        .find(|r| r.status != RunStatus::Completed)
    {
        return Err(format!(
            "run {} of {} ended {}",
            bad.id,
            short_fn(&bad.function_id),
            bad.status.as_str()
        ));
    }
    let order = report.order.as_ref().ok_or("no order was recorded")?;
    if order.status.as_str() != "in_production" {
        return Err(format!(
            "order #{} ended in status {} instead of in_production",
            order.display_number,
            order.status.as_str()
        ));
    }
    if report.printify_orders.len() != 1 {
        return Err(format!(
            "the sandbox Printify received {} orders instead of 1",
            report.printify_orders.len()
        ));
    }
    if report.emails.len() != 1 {
        return Err(format!(
            "{} confirmation emails were produced instead of 1",
            report.emails.len()
        ));
    }
    if report.cart_items_left != Some(0) {
        return Err(format!(
            "the cart still holds {:?} items after the order",
            report.cart_items_left
        ));
    }
    Ok(())
}
