//! The executor's run dashboard in a real browser: the demo scenario (Clerk signup, catalogue
//! sync, checkout, Stripe payment) runs in-process against a temp SQLite with the embedded
//! executor, then headless Chromium loads the dashboard pages (`--dump-dom`, `--screenshot`)
//! and the test asserts on the DOM: the runs, the order run's steps, a failed run's error and
//! the filters. Screenshots go to `target/dashboard-screenshots/`.
//!
//! Needs `chromium` (Debian package `chromium`; `.ci/run` installs it). Without it the test
//! prints why and passes without checking anything.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use inngest_executor::{Executor, RunStatus, RunView};
use otakumori::app::{start, Env, InngestSetup, RunningApp, StartOptions};
use otakumori::config::ExecutorState;
use otakumori::db::{NewOrder, NewOrderItem};
use otakumori::sandbox::fixtures;
use otakumori::webhooks::clerk::{self, SvixSecret};
use otakumori::webhooks::stripe::{self, StripeSecret, STRIPE_SIGNATURE_HEADER};
use otakumori::webhooks::{CLERK_PATH, STRIPE_PATH};
use serde_json::json;
use uuid::Uuid;

mod app_support;
use app_support::TempDb;

const WAIT: Duration = Duration::from_secs(60);
const CLERK_ID: &str = "user_2sandboxMikuHatsune";
const STRIPE_SECRET: &str = "whsec_dashboard_browser_test";

/// The five functions of the demo scenario, in the order their runs start.
const DEMO_FUNCTIONS: [&str; 5] = [
    "sync-user-to-supabase",
    "update-printify-products",
    "process-payment-webhook",
    "process-order",
    "send-order-confirmation",
];

/// The steps of the process-order run, in order.
const ORDER_STEPS: [&str; 6] = [
    "validate-order",
    "process-payment",
    "check-inventory",
    "create-printify-order",
    "send-confirmation",
    "clear-cart",
];

/// The `chromium` binary on `PATH`, if any.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `args`; returns its standard output.
async fn browse(chromium: &PathBuf, url: &str, args: &[String]) -> String {
    let profile = std::env::temp_dir().join(format!("otakumori-chromium-{}", Uuid::new_v4()));
    let out = tokio::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("chromium timed out")
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

/// The DOM of `url` after loading, and a screenshot of it as `<name>.png`.
async fn page(chromium: &PathBuf, url: &str, name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = dir.join(format!("{name}.png"));
    browse(chromium, url, &[format!("--screenshot={}", shot.display())]).await;
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
    let dom = browse(chromium, url, &["--dump-dom".to_string()]).await;
    assert!(dom.contains("</html>"), "{url}: {dom}");
    dom
}

/// The attributes of every start tag that begins with `prefix` (e.g. `<tr class="run"`).
fn tags(dom: &str, prefix: &str) -> Vec<HashMap<String, String>> {
    dom.match_indices(prefix)
        .map(|(i, _)| {
            let tag = &dom[i..i + dom[i..].find('>').expect("tag end")];
            let mut attrs = HashMap::new();
            let mut rest = tag;
            while let Some(eq) = rest.find("=\"") {
                let name = rest[..eq].rsplit(' ').next().unwrap_or("").to_string();
                let after = &rest[eq + 2..];
                let end = after.find('"').expect("closing quote");
                attrs.insert(name, after[..end].replace("&amp;", "&"));
                rest = &after[end + 1..];
            }
            attrs
        })
        .collect()
}

/// The text of the element with this id (up to its first child tag).
fn text_of(dom: &str, id: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {dom}"));
    let from = start + dom[start..].find('>').unwrap() + 1;
    let to = from + dom[from..].find('<').unwrap();
    dom[from..to]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// `data-run-id` of the run rows, in page order.
fn run_ids(dom: &str) -> Vec<String> {
    tags(dom, "<tr class=\"run\"")
        .into_iter()
        .map(|t| t["data-run-id"].clone())
        .collect()
}

/// Run ids newest first, of the runs matching `keep`.
fn newest_first(executor: &Executor, keep: impl Fn(&RunView) -> bool) -> Vec<String> {
    executor
        .runs()
        .iter()
        .rev()
        .filter(|r| keep(r))
        .map(|r| r.id.clone())
        .collect()
}

/// POSTs a webhook delivery to the app; asserts a 2xx.
async fn deliver(app: &RunningApp, path: &str, headers: &[(&str, String)], body: String) {
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
async fn settle(app: &RunningApp, function: &str, count: usize) {
    let ex = app.executor().expect("embedded executor");
    ex.wait_for_runs_of_function(&app.function_id(function), count, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{function}: {e}"));
}

/// Steps 1 and 2 of the demo: the Clerk signup and the catalogue sync.
async fn signup_and_catalogue(app: &RunningApp, clerk_secret: &SvixSecret) {
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
async fn checkout_and_pay(app: &RunningApp) {
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
async fn start_demo_app(db: &TempDb, clerk_secret: &str) -> RunningApp {
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

/// `/runs`: the five demo runs, newest first, all Completed; the functions page lists every
/// function with the footer's notice.
async fn check_runs_after_the_demo(chromium: &PathBuf, app: &RunningApp, base: &str) {
    let ex = app.executor().unwrap();
    let dom = page(chromium, &format!("{base}/runs"), "runs").await;
    let rows = tags(&dom, "<tr class=\"run\"");
    assert_eq!(rows.len(), 5, "{dom}");
    assert_eq!(run_ids(&dom), newest_first(ex, |_| true));
    let mut functions: Vec<&str> = rows.iter().map(|r| r["data-function"].as_str()).collect();
    functions.reverse();
    let expected: Vec<String> = DEMO_FUNCTIONS.iter().map(|f| app.function_id(f)).collect();
    assert_eq!(functions, expected);
    assert!(
        rows.iter().all(|r| r["data-status"] == "Completed"),
        "{rows:?}"
    );
    assert_eq!(dom.matches("class=\"status status-Completed\"").count(), 5);
    let footer = text_of(&dom, "footer");
    assert!(
        footer.contains("This is a local development server"),
        "{footer}"
    );
    assert!(footer.contains("show event data"), "{footer}");

    let dom = page(chromium, &format!("{base}/"), "functions").await;
    let listed: Vec<String> = tags(&dom, "<tr class=\"function\"")
        .into_iter()
        .map(|t| t["data-function"].clone())
        .collect();
    let registered: Vec<String> = ex.apps()[0]
        .functions
        .iter()
        .map(|f| f.id.clone())
        .collect();
    assert_eq!(listed, registered);
    let crons = tags(&dom, "<li class=\"cron-trigger\"");
    assert!(!crons.is_empty(), "the shop has cron functions\n{dom}");
    assert_eq!(
        dom.matches("<span class=\"next-fire\"><time").count(),
        crons.len()
    );
}

/// `/runs/{id}` of the process-order run: its six steps in order, each with its duration and
/// one attempt, and the output.
async fn check_order_run(chromium: &PathBuf, app: &RunningApp, base: &str) {
    let ex = app.executor().unwrap();
    let order_fn = app.function_id("process-order");
    let run = ex
        .runs()
        .into_iter()
        .find(|r| r.function_id == order_fn)
        .expect("order run");
    let dom = page(
        chromium,
        &format!("{base}/runs/{}", run.id),
        "process-order-run",
    )
    .await;
    let steps = tags(&dom, "<li class=\"step\"");
    let names: Vec<&str> = steps.iter().map(|s| s["data-step"].as_str()).collect();
    assert_eq!(names, ORDER_STEPS, "{dom}");
    for (li, step) in steps.iter().zip(&run.steps) {
        let ms = (step.ended_at.unwrap() - step.started_at).num_milliseconds();
        assert_eq!(li["data-duration-ms"], ms.to_string(), "{}", step.name);
        assert_eq!(li["data-status"], "Completed");
        assert_eq!(li["data-attempts"], "1");
    }
    let durations: Vec<&str> = dom
        .match_indices("<span class=\"step-duration\">")
        .map(|(i, _)| {
            let from = i + "<span class=\"step-duration\">".len();
            &dom[from..from + dom[from..].find('<').unwrap()]
        })
        .collect();
    assert_eq!(durations.len(), 6);
    assert!(
        durations
            .iter()
            .all(|d| d.ends_with(" ms") || d.ends_with(" s")),
        "{durations:?}"
    );
    assert_eq!(text_of(&dom, "run-id"), run.id);
    assert_eq!(
        text_of(&dom, "no-retries"),
        "None: every attempt succeeded."
    );
    assert!(
        text_of(&dom, "run-output").contains("\"success\": true"),
        "{dom}"
    );
    assert!(
        !dom.contains("id=\"cancel\""),
        "no Cancel button on an ended run"
    );
}

/// A failed run (an order that does not exist): its page shows the error, the filters narrow
/// the list to it, and the events page lists it under its event.
async fn check_failed_run(chromium: &PathBuf, app: &RunningApp, base: &str) {
    let ex = app.executor().unwrap();
    let missing = Uuid::new_v4();
    let event_id = ex
        .send(json!({"name": "order/created", "data": {"orderId": missing.to_string()}}))
        .await
        .unwrap();
    let failed = ex
        .wait_for_runs_of(&event_id, 1, WAIT)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(failed.status, RunStatus::Failed, "{}", failed.describe());
    let message = failed.error.as_ref().unwrap().message.clone();
    assert!(
        message.contains(&format!("order {missing} not found")),
        "{message}"
    );

    let dom = page(
        chromium,
        &format!("{base}/runs/{}", failed.id),
        "failed-run",
    )
    .await;
    assert_eq!(text_of(&dom, "run-error-message"), message);
    assert!(dom.contains("id=\"run-status\"><span class=\"status status-Failed\">Failed"));
    let steps = tags(&dom, "<li class=\"step\"");
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["data-step"], "validate-order");
    assert_eq!(steps[0]["data-status"], "Failed");

    let dom = page(
        chromium,
        &format!("{base}/runs?status=Failed"),
        "runs-failed",
    )
    .await;
    assert_eq!(run_ids(&dom), vec![failed.id.clone()]);
    let order_fn = app.function_id("process-order");
    let url = format!("{base}/runs?function={order_fn}");
    let dom = page(chromium, &url, "runs-process-order").await;
    assert_eq!(
        run_ids(&dom),
        newest_first(ex, |r| r.function_id == order_fn)
    );
    assert_eq!(run_ids(&dom).len(), 2);
    assert_eq!(run_ids(&dom)[0], failed.id);
    let url = format!("{base}/runs?function={order_fn}&status=Completed");
    let dom = page(chromium, &url, "runs-process-order-completed").await;
    assert_eq!(
        run_ids(&dom),
        newest_first(ex, |r| r.function_id == order_fn
            && r.status == RunStatus::Completed)
    );
    assert_eq!(run_ids(&dom).len(), 1);

    let dom = page(chromium, &format!("{base}/events"), "events").await;
    let event = tags(&dom, "<tr class=\"event\"")
        .into_iter()
        .position(|t| t["data-event-id"] == event_id)
        .expect("the event is listed");
    let row = dom.split("<tr class=\"event\"").nth(event + 1).unwrap();
    assert!(
        row.contains(&format!("data-run-id=\"{}\"", failed.id)),
        "{row}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dashboard_shows_the_demo_runs_in_a_browser() {
    let Some(chromium) = chromium() else {
        println!(
            "skipping dashboard_browser: `chromium` is not installed (apt-get install chromium)"
        );
        return;
    };
    let db = TempDb::new("dashboard");
    let key: Vec<u8> = (0u8..32).collect();
    let clerk_secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let app = start_demo_app(&db, &clerk_secret).await;
    signup_and_catalogue(&app, &SvixSecret::parse(&clerk_secret).unwrap()).await;
    checkout_and_pay(&app).await;
    let base = app.executor_url().expect("executor URL");
    let banner = app.banner();
    assert!(
        banner.contains(&format!("dashboard:     {base}/ ")),
        "{banner}"
    );

    check_runs_after_the_demo(&chromium, &app, &base).await;
    check_order_run(&chromium, &app, &base).await;
    check_failed_run(&chromium, &app, &base).await;
    app.shutdown().await;
}
