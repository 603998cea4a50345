//! The demo scenario (`cargo run --example otakumori`) end to end, in-process, on a temp SQLite:
//! the embedded executor, the real webhook routes with real signatures, the sandbox fakes.
//! Asserts the facts the summary prints, then re-reads them from the database.

use inngest_executor::{RunStatus, StepStatus};
use otakumori::app::{run_demo, AppError, DemoOptions, DemoReport, Env};
use otakumori::db::{Db, OrderStatus};
use serde_json::Value;

mod app_support;
use app_support::TempDb;

async fn demo(db: &TempDb, env: Env) -> Result<DemoReport, AppError> {
    let mut opts = DemoOptions::new(env);
    opts.database_url = Some(db.url());
    opts.print = false;
    run_demo(opts).await
}

fn unwrap_report(r: Result<DemoReport, AppError>) -> DemoReport {
    match r {
        Ok(r) => r,
        Err(AppError::Demo { message, report }) => panic!(
            "demo failed: {message}\n{}",
            report.map(|r| r.render()).unwrap_or_default()
        ),
        Err(e) => panic!("demo did not start: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_the_main_job_end_to_end() {
    let db = TempDb::new("demo");
    let report = unwrap_report(demo(&db, Env::from_pairs([])).await);
    let rendered = report.render();

    // Runs: the five functions of the scenario, each once, all Completed.
    assert!(report.all_completed(), "{rendered}");
    for f in [
        "sync-user-to-supabase",
        "update-printify-products",
        "process-payment-webhook",
        "process-order",
        "send-order-confirmation",
    ] {
        let runs = report.runs_of(f);
        assert_eq!(runs.len(), 1, "runs of {f}\n{rendered}");
        assert_eq!(runs[0].status, RunStatus::Completed, "{f}\n{rendered}");
    }
    assert_eq!(report.runs.len(), 5, "no other runs\n{rendered}");

    // The order run went through its named steps, each completed.
    let order_run = report.order_run.as_ref().expect("process-order run");
    for step in [
        "validate-order",
        "check-inventory",
        "process-payment",
        "create-printify-order",
        "send-confirmation",
        "clear-cart",
    ] {
        let s = order_run
            .step(step)
            .unwrap_or_else(|| panic!("step {step} missing\n{rendered}"));
        assert_eq!(s.status, StepStatus::Completed, "{step}\n{rendered}");
    }
    let output = order_run.output.as_ref().expect("process-order output");
    assert_eq!(output["success"], Value::Bool(true), "{output}");

    // Sandbox side effects: one Printify order with Printify's line-item keys and a real
    // address; one confirmation email to the customer.
    assert_eq!(report.printify_orders.len(), 1, "{rendered}");
    let po = &report.printify_orders[0];
    assert_eq!(po.posts, 1);
    let order = report.order.as_ref().expect("order");
    assert_eq!(po.external_id, order.id.to_string());
    let items = po.request["line_items"].as_array().expect("line_items");
    assert_eq!(items.len(), 2);
    for it in items {
        assert!(
            it["product_id"].is_string() && it["variant_id"].is_number(),
            "{it}"
        );
        assert!(it["quantity"].as_i64().unwrap_or(0) >= 1, "{it}");
    }
    assert_eq!(po.request["address_to"]["country"], "JP");
    assert_eq!(report.emails.len(), 1, "{rendered}");
    assert_eq!(report.emails[0].to, vec!["miku.hatsune@otakumori.example"]);
    assert!(
        report.emails[0].subject.contains("Order Confirmation"),
        "{:?}",
        report.emails[0]
    );
    assert!(report
        .sandbox_calls
        .iter()
        .any(|(s, c)| s == "Stripe" && c.starts_with("GET /v1/checkout/sessions/")));

    // Rows: what the summary table shows.
    let after = |t: &str| report.rows_of(t).unwrap_or_else(|| panic!("{t}")).after;
    let before = |t: &str| report.rows_of(t).unwrap().before;
    assert_eq!(before("users"), 0);
    assert_eq!(after("users"), 1);
    assert_eq!(after("products"), 6);
    assert!(after("product_variants") >= 12, "{rendered}");
    assert_eq!(after("orders"), 1);
    assert_eq!(after("order_items"), 2);
    assert_eq!(after("printify_order_sync"), 1);
    assert_eq!(after("email_outbox"), 1);
    assert_eq!(after("email_log"), 1);
    assert_eq!(after("cart_items"), 0);
    assert_eq!(after("failed_operations"), 0);
    assert_eq!(report.cart_items_left, Some(0));
    assert_eq!(order.status, OrderStatus::InProduction);
    assert_eq!(order.printify_order_id.as_deref(), Some(po.id.as_str()));

    // The summary names all of it.
    for needle in [
        "process-order",
        "create-printify-order",
        "StepRun",
        "printify_order_sync",
        "email_outbox",
        "Order Confirmation",
        "OK: 5 runs, all Completed",
    ] {
        assert!(
            rendered.contains(needle),
            "{needle} missing from\n{rendered}"
        );
    }

    // And the database says the same after the app has shut down.
    let db2 = Db::connect(&db.url()).await.unwrap();
    let user = db2
        .get_user_by_clerk_id("user_2sandboxMikuHatsune")
        .await
        .unwrap()
        .expect("user row");
    assert_eq!(user.email, "miku.hatsune@otakumori.example");
    let stored = db2.get_order(order.id).await.unwrap().expect("order row");
    assert_eq!(stored.status, OrderStatus::InProduction);
    assert!(stored.paid_at.is_some());
    assert_eq!(stored.shipping.country.as_deref(), Some("JP"));
    let sync = db2
        .get_printify_order_sync(order.id)
        .await
        .unwrap()
        .expect("printify_order_sync row");
    assert_eq!(sync.printify_order_id.as_deref(), Some(po.id.as_str()));
    assert_eq!(db2.list_outbox().await.unwrap().len(), 1);
    db2.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_can_run_again_on_the_same_database() {
    let db = TempDb::new("rerun");
    let first = unwrap_report(demo(&db, Env::from_pairs([])).await);
    let second = unwrap_report(demo(&db, Env::from_pairs([])).await);
    assert!(first.all_completed() && second.all_completed());
    let rows = |r: &DemoReport, t: &str| {
        let c = r.rows_of(t).unwrap();
        (c.before, c.after)
    };
    // Same customer and catalogue (upserts), a second order and email.
    assert_eq!(rows(&second, "users"), (1, 1));
    assert_eq!(rows(&second, "products"), (6, 6));
    assert_eq!(rows(&second, "orders"), (1, 2));
    assert_eq!(rows(&second, "email_outbox"), (1, 2));
    assert_eq!(second.printify_orders.len(), 1, "a fresh sandbox per run");
}

/// The demo on PostgreSQL (`DATABASE_URL=postgres://…`), in a fresh schema of the local server's
/// `test` database. Skipped, with a printed reason, only when nothing answers on 127.0.0.1:5432.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_runs_on_postgres() {
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use otakumori::db::DbOptions;

    const HOST: &str = "127.0.0.1:5432";
    let addr: SocketAddr = HOST.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
        eprintln!("SKIP demo_runs_on_postgres: no PostgreSQL server answers on {HOST}");
        return;
    }
    let schema = format!(
        "om_app_demo_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut setup = None;
    for user in ["postgres", "root"] {
        let url = format!("postgres://{user}@{HOST}/test");
        let opts = DbOptions {
            pg_schema: Some(schema.clone()),
            max_connections: 1,
            ..DbOptions::new(url.clone())
        };
        if let Ok(db) = Db::connect_with(opts).await {
            setup = Some((db, url));
            break;
        }
    }
    let (admin, base) =
        setup.expect("PostgreSQL answers but neither postgres nor root can connect to test");
    let url = format!("{base}?options[search_path]={schema}");

    let mut opts = DemoOptions::new(Env::from_pairs([("DATABASE_URL", url.as_str())]));
    opts.print = false;
    let result = run_demo(opts).await;
    let counts = (
        admin.count_rows("users").await.unwrap(),
        admin.count_rows("orders").await.unwrap(),
        admin.count_rows("printify_order_sync").await.unwrap(),
        admin.count_rows("email_outbox").await.unwrap(),
    );
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(admin.pg_pool().unwrap())
    .await
    .unwrap();
    admin.close().await;

    let report = unwrap_report(result);
    assert!(report.all_completed(), "{}", report.render());
    assert!(
        report.database.starts_with("postgres://"),
        "{}",
        report.database
    );
    assert_eq!(report.printify_orders.len(), 1);
    assert_eq!(report.emails.len(), 1);
    assert_eq!(counts, (1, 1, 1, 1), "rows in the demo's schema");
}
