//! The demo through a separately started Inngest server, exactly as a user runs it:
//! `inngest-dev-server --port P` in one process (this workspace's stand-in for `inngest dev`),
//! then `INNGEST_DEV=http://127.0.0.1:P otakumori-app` (what `cargo run --example otakumori`
//! runs) in another. The demo syncs itself with the server, plays the scenario through it, follows
//! the runs over the server's REST API and must exit 0. The test then checks, independently of
//! the demo, what the server recorded (each event's one Completed run, the synced app) and what
//! the database holds.
//!
//! `inngest-dev-server` is the `inngest-executor` package's binary, built by the workspace test
//! command (`cargo test --workspace`) next to this test's own binary.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use otakumori::db::Db;
use otakumori::functions::FUNCTION_IDS;
use serde_json::Value;

mod app_support;
use app_support::TempDb;

/// A child process killed and reaped when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dev_server_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/inngest-dev-server
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join(format!(
            "inngest-dev-server{}",
            std::env::consts::EXE_SUFFIX
        ));
    assert!(
        bin.exists(),
        "{} is missing: run the workspace tests (`cargo test --workspace`), or build it first with \
         `cargo build -p inngest-executor --bin inngest-dev-server`",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn get(http: &reqwest::Client, url: &str) -> Value {
    let resp = http
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "GET {url}");
    let body: Value = resp.json().await.expect("JSON");
    body["data"].clone()
}

/// Starts the dev server on `port` and waits until its REST API answers.
async fn start_dev_server(http: &reqwest::Client, port: u16) -> Guard {
    let child = Command::new(dev_server_binary())
        .args([
            "--port",
            &port.to_string(),
            "--no-poll",
            "--retry-interval",
            "100ms",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start inngest-dev-server");
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    let url = format!("http://127.0.0.1:{port}/v1/apps");
    while http.get(&url).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "inngest-dev-server did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    guard
}

/// Runs the demo binary against the server; returns its output once it exits.
async fn run_demo(port: u16, db: &TempDb, cwd: &std::path::Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_otakumori-app"))
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("INNGEST_DEV", format!("http://127.0.0.1:{port}"))
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start otakumori-app");
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("demo output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_through_a_separately_started_dev_server() {
    let http = reqwest::Client::new();
    let port = free_port();
    let _server = start_dev_server(&http, port).await;
    let db = TempDb::new("demo-server");
    let cwd = std::env::temp_dir().join(format!("om-demo-server-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();

    let out = tokio::time::timeout(Duration::from_secs(180), run_demo(port, &db, &cwd))
        .await
        .expect("the demo finishes within 180 s");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status
    );
    for needle in [
        format!("the Inngest server at http://127.0.0.1:{port}/ (INNGEST_DEV)"),
        "Runs (through the Inngest server)".into(),
        "Steps of process-order".into(),
        "create-printify-order".into(),
        "status in_production".into(),
        "OK: 5 runs, all Completed".into(),
    ] {
        assert!(
            stdout.contains(&needle),
            "{needle:?} missing from\n{stdout}"
        );
    }
    // The demo used the server, not an embedded executor, and no SQLite file of its own.
    assert!(!stdout.contains("embedded local executor"), "{stdout}");
    assert!(!cwd.join("otakumori-demo.db").exists());

    // What the server recorded: the app synced itself (12 functions + their failure handlers) …
    let base = format!("http://127.0.0.1:{port}");
    let apps = get(&http, &format!("{base}/v1/apps")).await;
    let app = apps
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "otakumori-app"))
        .unwrap_or_else(|| panic!("otakumori-app not synced: {apps}"));
    assert!(
        app["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/api/inngest")),
        "{app}"
    );
    let functions: Vec<&str> = app["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    for id in FUNCTION_IDS {
        let composite = format!("otakumori-app-{id}");
        assert!(
            functions.contains(&composite.as_str()),
            "{composite}: {functions:?}"
        );
    }
    // … and each event of the scenario started exactly one run, which completed.
    let events = get(&http, &format!("{base}/v1/events")).await;
    let events = events.as_array().expect("events");
    for name in [
        "clerk/user.created",
        "printify/products.update",
        "stripe/webhook",
        "order/created",
        "order/confirmation.sent",
    ] {
        let matching: Vec<&Value> = events.iter().filter(|e| e["name"] == name).collect();
        assert_eq!(matching.len(), 1, "{name}: {events:?}");
        let id = matching[0]["internal_id"].as_str().expect("id");
        let runs = get(&http, &format!("{base}/v1/events/{id}/runs")).await;
        let runs = runs.as_array().expect("runs");
        assert_eq!(runs.len(), 1, "{name}: {runs:?}");
        assert_eq!(runs[0]["status"], "Completed", "{name}: {runs:?}");
    }

    // And the database: the customer, the order in production, one confirmation email.
    let rows = Db::connect(&db.url()).await.unwrap();
    let user = rows
        .get_user_by_clerk_id("user_2sandboxMikuHatsune")
        .await
        .unwrap()
        .expect("users row");
    assert_eq!(user.email, "miku.hatsune@otakumori.example");
    assert_eq!(rows.count_rows("orders").await.unwrap(), 1);
    assert_eq!(rows.count_rows("email_outbox").await.unwrap(), 1);
    assert_eq!(rows.count_rows("cart_items").await.unwrap(), 0);
    assert_eq!(rows.count_rows("printify_order_sync").await.unwrap(), 1);
    rows.close().await;
    let _ = std::fs::remove_dir_all(&cwd);
}
