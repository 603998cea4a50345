//! `serve` mode (`cargo run --example otakumori -- serve`), in-process with a map of environment
//! variables: the embedded executor (default), the Dev Server setup (`INNGEST_DEV=1`) and Inngest
//! Cloud (`INNGEST_SIGNING_KEY` + `INNGEST_EVENT_KEY`). Each starts on free ports and a temp SQLite
//! file, answers `GET /api/inngest`, and shuts down gracefully.

use std::time::Duration;

use inngest_executor::RunStatus;
use otakumori::app::{start, Env, InngestSetup, RunningApp, StartOptions};
use otakumori::functions::FUNCTION_IDS;
use serde_json::{json, Value};

mod app_support;
use app_support::TempDb;

fn env(db: &TempDb, extra: &[(&str, &str)]) -> Env {
    let url = db.url();
    let state = db.state_dir().display().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![
        ("PORT", "0"),
        ("EXECUTOR_PORT", "0"),
        ("DATABASE_URL", url.as_str()),
        ("EXECUTOR_STATE_DIR", state.as_str()),
    ];
    pairs.extend_from_slice(extra);
    Env::from_pairs(pairs)
}

/// `GET /api/inngest`: status, `X-Inngest-SDK`, JSON body.
async fn introspect(app: &RunningApp) -> Value {
    let resp = reqwest::get(app.serve_url())
        .await
        .expect("GET /api/inngest");
    assert_eq!(resp.status(), 200);
    let sdk = resp
        .headers()
        .get("x-inngest-sdk")
        .expect("X-Inngest-SDK header")
        .to_str()
        .unwrap()
        .to_string();
    assert!(sdk.starts_with("inngest-rs-sdk:v"), "{sdk}");
    resp.json().await.expect("JSON body")
}

async fn assert_stopped(app: RunningApp) {
    let addr = app.app_addr();
    let executor = app.executor_url();
    app.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "app still listening on {addr}"
    );
    if let Some(url) = executor {
        let addr = url.trim_start_matches("http://").to_string();
        // The executor task is aborted; give the runtime a moment to drop its listener.
        let mut closed = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(&addr).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(closed, "executor still listening on {addr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_with_the_embedded_executor() {
    let db = TempDb::new("serve-embedded");
    let app = start(&env(&db, &[]), StartOptions::default())
        .await
        .expect("start");
    assert!(matches!(app.setup(), InngestSetup::Embedded { .. }));
    let synced = app.synced().expect("synced at startup").clone();
    assert_eq!(synced.id, "otakumori-app");
    assert_eq!(app.executor_state_dir(), Some(db.state_dir().as_path()));

    let body = introspect(&app).await;
    assert_eq!(body["mode"], "dev");
    let count = body["function_count"].as_u64().expect("function_count") as usize;
    assert_eq!(count, synced.functions.len(), "{body}");
    assert!(count >= FUNCTION_IDS.len(), "{body}");
    for id in FUNCTION_IDS {
        assert!(
            synced
                .functions
                .iter()
                .any(|f| f.id == format!("otakumori-app-{id}")),
            "{id} not registered"
        );
    }

    // The executor's event API and run history are reachable over HTTP: send an event the way
    // the README's curl does and follow its run.
    let ex_url = app.executor_url().expect("executor url");
    let http = reqwest::Client::new();
    let sent: Value = http
        .post(format!("{ex_url}/e/dev"))
        .json(&json!({"name": "printify/products.update", "data": {"reason": "manual"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_id = sent["ids"][0].as_str().expect("event id").to_string();
    let runs = app
        .executor()
        .unwrap()
        .wait_for_runs_of(&event_id, 1, Duration::from_secs(20))
        .await
        .expect("catalogue sync run");
    assert_eq!(runs[0].status, RunStatus::Completed, "{:?}", runs[0]);
    assert_eq!(app.context().db.count_rows("products").await.unwrap(), 6);
    let history: Value = http
        .get(format!("{ex_url}/v1/events/{event_id}/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(history.to_string().contains("Completed"), "{history}");

    // Webhook routes without secrets answer 500 naming the provider, as the banner says.
    let resp = http
        .post(format!("{}/webhooks/clerk", app.app_url()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    assert!(resp
        .text()
        .await
        .unwrap()
        .contains("clerk webhook secret not configured"));

    let banner = app.banner();
    for needle in [
        "embedded local executor",
        ex_url.as_str(),
        "/v1/runs",
        "EXECUTOR_STATE_DIR; unfinished runs resume after a restart",
        "SANDBOX",
        "CLERK_WEBHOOK_SECRET not set",
        "process-order",
    ] {
        assert!(banner.contains(needle), "{needle} missing from\n{banner}");
    }
    assert_stopped(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_for_the_dev_server_starts_no_executor() {
    let db = TempDb::new("serve-dev");
    let app = start(&env(&db, &[("INNGEST_DEV", "1")]), StartOptions::default())
        .await
        .expect("start");
    assert_eq!(app.setup(), InngestSetup::DevServer);
    assert!(app.executor().is_none() && app.executor_url().is_none());
    assert_eq!(
        app.client().config().api_origin().as_str(),
        "http://localhost:8288/"
    );
    let body = introspect(&app).await;
    assert_eq!(body["mode"], "dev");
    assert!(body["function_count"].as_u64().unwrap() as usize >= FUNCTION_IDS.len());
    let banner = app.banner();
    assert!(
        banner.contains("npx inngest-cli@latest dev -u http://localhost:"),
        "{banner}"
    );
    assert_stopped(app).await;

    // A Dev Server URL in INNGEST_DEV is where events go.
    let db = TempDb::new("serve-dev-url");
    let app = start(
        &env(&db, &[("INNGEST_DEV", "http://127.0.0.1:9")]),
        StartOptions::default(),
    )
    .await
    .expect("start");
    assert_eq!(
        app.client().config().event_api_origin().as_str(),
        "http://127.0.0.1:9/"
    );
    assert_stopped(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_for_inngest_cloud_requires_signatures() {
    let db = TempDb::new("serve-cloud");
    let key = format!("signkey-test-{}", "ab".repeat(32));
    let app = start(
        &env(
            &db,
            &[
                ("INNGEST_SIGNING_KEY", key.as_str()),
                ("INNGEST_EVENT_KEY", "test-event-key"),
            ],
        ),
        StartOptions::default(),
    )
    .await
    .expect("start");
    assert_eq!(app.setup(), InngestSetup::Cloud);
    assert!(app.executor().is_none());
    let body = introspect(&app).await;
    assert_eq!(body["mode"], "cloud");
    assert_eq!(body["has_signing_key"], true);
    assert_eq!(body["has_event_key"], true);
    // An unsigned call is refused in cloud mode.
    let resp = reqwest::Client::new()
        .post(format!(
            "{}?fnId=otakumori-app-process-order&stepId=step",
            app.serve_url()
        ))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_stopped(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_connect_runs_the_functions_on_a_connect_worker() {
    let db = TempDb::new("serve-connect");
    let opts = StartOptions {
        connect: true,
        ..StartOptions::default()
    };
    let app = start(
        &env(&db, &[("INNGEST_CONNECT_INSTANCE_ID", "shop-worker-1")]),
        opts,
    )
    .await
    .expect("start");
    let worker = app.connect_worker().expect("a connect worker");
    assert_eq!(worker.instance_id(), "shop-worker-1");
    let synced = app.synced().expect("synced through the connection").clone();
    assert_eq!(synced.url, "ws://connect?app_name=otakumori-app");
    for id in FUNCTION_IDS {
        assert!(
            synced
                .functions
                .iter()
                .any(|f| f.id == format!("otakumori-app-{id}")),
            "{id} not registered"
        );
    }
    let ex = app.executor().unwrap();
    let conns = ex.connections();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].instance_id, "shop-worker-1");

    // No serve endpoint: the executor can only reach the functions over the socket.
    let resp = reqwest::get(app.serve_url()).await.unwrap();
    assert_eq!(resp.status(), 404);

    let event_id = ex
        .send(json!({"name": "printify/products.update", "data": {"reason": "manual"}}))
        .await
        .unwrap();
    let runs = ex
        .wait_for_runs_of(&event_id, 1, Duration::from_secs(20))
        .await
        .expect("catalogue sync run");
    assert_eq!(runs[0].status, RunStatus::Completed, "{:?}", runs[0]);
    assert_eq!(app.context().db.count_rows("products").await.unwrap(), 6);

    let banner = app.banner();
    assert!(
        banner.contains("functions on a connect worker (instance shop-worker-1)"),
        "{banner}"
    );
    let ex = ex.clone();
    assert_stopped(app).await;
    // The worker drained and closed its connection as a shutdown.
    assert_eq!(
        ex.connect_closed().last().unwrap().reason,
        "WORKER_SHUTDOWN"
    );
}
