//! The executor's run dashboard in a real browser: the demo scenario (Clerk signup, catalogue
//! sync, checkout, Stripe payment) runs in-process against a temp SQLite with the embedded
//! executor, then headless Chromium loads the dashboard pages (`--dump-dom`, `--screenshot`)
//! and the test asserts on the DOM: the runs, the order run's steps, a failed run's error, the
//! filters, and the runs list updating live (a run started after the page was rendered shows up
//! without a reload). Screenshots go to `target/dashboard-screenshots/`.
//!
//! Needs `chromium` (Debian package `chromium`; `.ci/run` installs it). Without it the test
//! prints why and passes without checking anything.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use inngest_executor::{Executor, RunStatus, RunView};
use otakumori::app::RunningApp;
use serde_json::json;
use uuid::Uuid;

mod app_support;
use app_support::scenario::{settle, start_and_play, WAIT};
use app_support::TempDb;

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

/// Serves `page` (the runs page as it was) at `/runs` and forwards every other GET to the
/// executor at `base`: a browser on it shows stale HTML unless the page's script updates it.
async fn stale_page_proxy(base: &str, page: String) -> (String, Arc<AtomicUsize>) {
    use axum::http::{header::CONTENT_TYPE, StatusCode, Uri};
    let page_loads = Arc::new(AtomicUsize::new(0));
    let loads = page_loads.clone();
    let base = base.to_owned();
    let app = axum::Router::new()
        .route(
            "/runs",
            axum::routing::get(move || {
                loads.fetch_add(1, Ordering::SeqCst);
                let page = page.clone();
                async move { ([(CONTENT_TYPE, "text/html; charset=utf-8")], page) }
            }),
        )
        .fallback(move |uri: Uri| {
            let url = format!("{base}{uri}");
            async move {
                let res = reqwest::get(&url).await.expect("executor answers");
                let status = StatusCode::from_u16(res.status().as_u16()).unwrap();
                let mut headers = axum::http::HeaderMap::new();
                if let Some(ct) = res.headers().get(CONTENT_TYPE.as_str()) {
                    headers.insert(CONTENT_TYPE, ct.to_str().unwrap().parse().unwrap());
                }
                (status, headers, res.bytes().await.unwrap())
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, page_loads)
}

/// The runs list updates live: a run that starts after the page was rendered appears at the top
/// without a reload. The browser gets the page as it was before the run (through a proxy that
/// serves that HTML at `/runs` and forwards the rest, fragments included, to the executor), and
/// Chromium's virtual time (`--virtual-time-budget`, which also waits for pending fetches)
/// lets the page's 2-second poll run: the new run can only come from the live fragment.
async fn check_live_update(chromium: &PathBuf, app: &RunningApp, base: &str) {
    let ex = app.executor().unwrap();
    let before = reqwest::get(format!("{base}/runs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let old = run_ids(&before);
    assert_eq!(old, newest_first(ex, |_| true));
    ex.send(json!({"name": "printify/products.update", "data": {"reason": "live"}}))
        .await
        .unwrap();
    settle(app, "update-printify-products", 2).await;
    let new_run = newest_first(ex, |_| true)[0].clone();
    assert!(!before.contains(&new_run));

    let (proxy, page_loads) = stale_page_proxy(base, before).await;
    let dom = browse(
        chromium,
        &format!("{proxy}/runs"),
        &[
            "--virtual-time-budget=5000".to_string(),
            "--dump-dom".to_string(),
        ],
    )
    .await;
    let mut expected = vec![new_run];
    expected.extend(old);
    assert_eq!(run_ids(&dom), expected, "{dom}");
    assert_eq!(
        page_loads.load(Ordering::SeqCst),
        1,
        "the page was not reloaded"
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
    let (app, _) = start_and_play(&db).await;
    let base = app.executor_url().expect("executor URL");
    let banner = app.banner();
    assert!(
        banner.contains(&format!("dashboard:     {base}/ ")),
        "{banner}"
    );

    check_runs_after_the_demo(&chromium, &app, &base).await;
    check_order_run(&chromium, &app, &base).await;
    check_failed_run(&chromium, &app, &base).await;
    check_live_update(&chromium, &app, &base).await;
    app.shutdown().await;
}
