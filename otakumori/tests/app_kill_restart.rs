//! The example app killed mid-run and restarted (`kill -9`, then the same command again).
//!
//! The app binary (`otakumori-app serve`, the embedded local executor journaling its state in
//! `EXECUTOR_STATE_DIR`) runs as a child process on a temp SQLite file, fixed ports and loopback
//! fakes of Printify, Stripe and Resend that live in this test process, so they outlive every
//! kill and record every request. A small proxy in front of the fake Printify (and one in front
//! of the fake Resend) forwards the first order POST (email POST) and then *holds the answer*: the
//! provider did the work but the app never hears back. The test SIGKILLs the app right there,
//! starts it again with the same environment and ports, and checks that
//!
//! * the run resumes from its last memoized step (earlier steps are not run again) and completes;
//! * the side effects happen once: one Printify order although the app POSTed twice (same
//!   `external_id` — the order id — both times), one confirmation email although the app sent
//!   it twice (same `Idempotency-Key`), one `email_log` row, the order `in_production`;
//! * a further restart without new events re-runs nothing;
//! * a run *waiting* for its payment (`wait-for-payment`) survives a kill and resumes when the
//!   Stripe webhook arrives after the restart.
//!
//! On failure the app's log (stdout + stderr of each start) is printed. Every child process is
//! killed and reaped when its guard drops, on every path.

mod functions_support;

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use functions_support::{checkout_completed, matching, STRIPE_WEBHOOK_SECRET};
use otakumori::db::{
    now_utc, Db, NewOrder, NewOrderItem, Order, OrderStatus, PrintifySyncStatus, User, UserProfile,
};
use otakumori::functions::orders::{confirmation_email_key, order_created_event_id};
use otakumori::sandbox::fixtures::{self, PRODUCT_IDS};
use otakumori::sandbox::{
    FakePrintify, FakeResend, FakeStripe, SANDBOX_PRINTIFY_KEY, SANDBOX_RESEND_KEY,
    SANDBOX_SHOP_ID, SANDBOX_STRIPE_KEY,
};
use otakumori::services::email::templates::ORDER_CONFIRMATION;
use otakumori::webhooks::{self, stripe};
use serde_json::{json, Value};
use uuid::Uuid;

const HOODIE: &str = PRODUCT_IDS[0];
const MUG: &str = PRODUCT_IDS[2];
const CUSTOMER: &str = "miku@otakumori.example";
/// The process-order steps, in order, for a paid order that reaches Printify.
const ORDER_STEPS: [&str; 6] = [
    "validate-order",
    "process-payment",
    "check-inventory",
    "create-printify-order",
    "send-confirmation",
    "clear-cart",
];
/// How long a run may take to finish after a restart.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------------------------ proxy

/// One request that went through a [`HoldingProxy`].
#[derive(Debug, Clone)]
struct Proxied {
    method: String,
    path: String,
    body: Value,
    idempotency_key: Option<String>,
    /// The provider's status (`None` until it answered).
    upstream_status: Option<u16>,
    /// The provider's answer was withheld from the app.
    held: bool,
}

struct ProxyState {
    target: String,
    http: reqwest::Client,
    /// `(method, path suffix)` of the one request to hold; taken by the first match.
    hold: Mutex<Option<(&'static str, &'static str)>>,
    log: Mutex<Vec<Proxied>>,
}

/// A loopback proxy in front of a fake provider. Every request is forwarded; the first one
/// matching the armed rule is forwarded too (the provider acts on it) but its answer is never
/// sent back: the app hangs in that step until it is killed.
struct HoldingProxy {
    state: Arc<ProxyState>,
    addr: std::net::SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

impl HoldingProxy {
    async fn start(target: String, hold: Option<(&'static str, &'static str)>) -> HoldingProxy {
        let state = Arc::new(ProxyState {
            target,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            hold: Mutex::new(hold),
            log: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = axum::Router::new()
            .fallback(proxy)
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        HoldingProxy {
            state,
            addr,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> Vec<Proxied> {
        lock(&self.state.log).clone()
    }

    fn requests(&self, method: &str, path_suffix: &str) -> Vec<Proxied> {
        self.log()
            .into_iter()
            .filter(|r| r.method == method && r.path.ends_with(path_suffix))
            .collect()
    }

    /// The held request, once the provider has answered it.
    fn held(&self) -> Option<Proxied> {
        self.log()
            .into_iter()
            .find(|r| r.held && r.upstream_status.is_some())
    }
}

async fn proxy(
    State(st): State<Arc<ProxyState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let hold = {
        let mut rule = lock(&st.hold);
        let hit = rule.is_some_and(|(m, suffix)| m == method.as_str() && path.ends_with(suffix));
        if hit {
            *rule = None;
        }
        hit
    };
    let idx = {
        let mut log = lock(&st.log);
        log.push(Proxied {
            method: method.to_string(),
            path: path.clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            upstream_status: None,
            held: hold,
        });
        log.len() - 1
    };
    let url = format!(
        "{}{}",
        st.target,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut req = st.http.request(method, url).body(body.to_vec());
    for (k, v) in &headers {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            req = req.header(k, v);
        }
    }
    let (status, content_type, bytes) = match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
            (status, ct, resp.bytes().await.unwrap_or_default())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, None, Bytes::from(e.to_string())),
    };
    lock(&st.log)[idx].upstream_status = Some(status.as_u16());
    if hold {
        // The provider has done the work; the app never learns. It is killed while waiting.
        std::future::pending::<()>().await;
    }
    let mut resp = (status, bytes).into_response();
    if let Some(ct) = content_type {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    resp
}

// ------------------------------------------------------------------------------ app process

/// One start of the app binary. Dropping it kills (SIGKILL) and reaps the process; when the test
/// is failing it also prints the process's output.
struct AppProcess {
    child: Child,
    log: PathBuf,
    label: String,
    reaped: bool,
}

impl AppProcess {
    /// `kill -9` and wait for the process to be gone.
    fn kill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        let status = self.child.wait().expect("wait for the killed app");
        self.reaped = true;
        status
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self, lines: usize) -> String {
        let out = self.output();
        let all: Vec<&str> = out.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.reaped = true;
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.label,
                self.tail(80)
            );
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- {} output (last 120 lines) ----\n{}\n---- end of {} ----",
                self.label,
                self.tail(120),
                self.label
            );
        }
    }
}

// ------------------------------------------------------------------------------------ world

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two free ports for `PORT` and `EXECUTOR_PORT`, kept for every start. Picked below Linux's
/// default ephemeral range (32768+), so that while the app is down no `bind(0)` or outgoing
/// connection of this process grabs them.
fn free_ports() -> (u16, u16) {
    let pick = || {
        for _ in 0..200 {
            let r = Uuid::new_v4().as_u128();
            let port = 20_000 + (r % 12_000) as u16;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                return l;
            }
        }
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    };
    let (a, b) = (pick(), pick()); // distinct: both are bound until they drop
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Everything that outlives the app process: the fakes, the proxies, the database file, the
/// executor's state directory and the ports.
struct World {
    printify: FakePrintify,
    printify_proxy: HoldingProxy,
    stripe: FakeStripe,
    resend: FakeResend,
    resend_proxy: HoldingProxy,
    db: Db,
    db_url: String,
    state_dir: PathBuf,
    app_port: u16,
    executor_port: u16,
    http: reqwest::Client,
    starts: usize,
    dir: TempDir,
}

struct Hold {
    printify_order: bool,
    email: bool,
}

impl World {
    async fn new(name: &str, hold: Hold) -> World {
        let dir = TempDir(
            std::env::temp_dir().join(format!("otakumori-kill-{name}-{}", Uuid::new_v4().simple())),
        );
        std::fs::create_dir_all(&dir.0).unwrap();
        let printify = FakePrintify::start().await.unwrap();
        let stripe = FakeStripe::start().await.unwrap();
        let resend = FakeResend::start().await.unwrap();
        let printify_proxy = HoldingProxy::start(
            printify.root_url(),
            hold.printify_order.then_some(("POST", "/orders.json")),
        )
        .await;
        let resend_proxy =
            HoldingProxy::start(resend.base_url(), hold.email.then_some(("POST", "/emails"))).await;
        let db_url = format!("sqlite://{}?mode=rwc", dir.0.join("shop.db").display());
        let db = Db::connect(&db_url).await.expect("database");
        let (app_port, executor_port) = free_ports();
        World {
            printify,
            printify_proxy,
            stripe,
            resend,
            resend_proxy,
            db,
            db_url,
            state_dir: dir.0.join("executor"),
            app_port,
            executor_port,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            starts: 0,
            dir,
        }
    }

    /// The app's environment: the same for every start.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", self.app_port.to_string()),
            ("EXECUTOR_PORT", self.executor_port.to_string()),
            ("DATABASE_URL", self.db_url.clone()),
            ("EXECUTOR_STATE_DIR", self.state_dir.display().to_string()),
            (
                "PRINTIFY_API_URL",
                format!("{}/v1", self.printify_proxy.url()),
            ),
            ("PRINTIFY_API_KEY", SANDBOX_PRINTIFY_KEY.into()),
            ("PRINTIFY_SHOP_ID", SANDBOX_SHOP_ID.into()),
            ("STRIPE_API_BASE", self.stripe.base_url()),
            ("STRIPE_SECRET_KEY", SANDBOX_STRIPE_KEY.into()),
            ("RESEND_BASE_URL", self.resend_proxy.url()),
            ("RESEND_API_KEY", SANDBOX_RESEND_KEY.into()),
            ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET.into()),
            ("WEBHOOK_RATE_PER_SEC", "off".into()),
            ("RUST_LOG", "info,inngest_sdk=debug".into()),
        ]
    }

    /// Start `otakumori-app serve` and wait until it has synced with its executor (the banner,
    /// printed once `start` returned, ends with "Press Ctrl-C to stop.").
    fn start_app(&mut self) -> AppProcess {
        self.starts += 1;
        let label = format!("app start #{}", self.starts);
        let log = self.dir.0.join(format!("app-{}.log", self.starts));
        let out = File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_otakumori-app"));
        cmd.arg("serve")
            .current_dir(&self.dir.0)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out));
        for keep in ["PATH", "HOME", "TMPDIR"] {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        let mut app = AppProcess {
            child: cmd.spawn().expect("spawn otakumori-app"),
            log,
            label,
            reaped: false,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !app.output().contains("Press Ctrl-C to stop.") {
            app.check_alive();
            assert!(
                Instant::now() < deadline,
                "{} did not become ready in 60 s",
                app.label
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        app
    }

    fn executor(&self) -> String {
        format!("http://127.0.0.1:{}", self.executor_port)
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(format!("{}{path}", self.executor()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "GET {path} → {status}: {body}");
        body
    }

    async fn runs_of_event(&self, event_id: &str) -> Vec<Value> {
        let body = self.get(&format!("/v1/events/{event_id}/runs")).await;
        body["data"].as_array().cloned().unwrap_or_default()
    }

    /// Every run except cron runs (a cron could fire if the test runs across its minute, e.g.
    /// 02:00 UTC): those are triggered by `inngest/scheduled.timer` events.
    async fn all_runs(&self) -> Vec<Value> {
        let timers: Vec<Value> = self.get("/v1/events").await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["name"] == "inngest/scheduled.timer")
            .map(|e| e["internal_id"].clone())
            .collect();
        let mut runs = self.get("/v1/runs").await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        runs.retain(|r| !timers.contains(&r["event_id"]));
        runs
    }

    async fn steps(&self, run_id: &str) -> Vec<Value> {
        self.get(&format!("/v1/runs/{run_id}/steps")).await["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every run with its steps and history, for failure messages.
    async fn dump(&self) -> String {
        let mut out = String::new();
        let Ok(resp) = self
            .http
            .get(format!("{}/v1/runs", self.executor()))
            .send()
            .await
        else {
            return "executor unreachable".into();
        };
        let runs: Value = resp.json().await.unwrap_or(Value::Null);
        for run in runs["data"].as_array().cloned().unwrap_or_default() {
            let id = run["run_id"].as_str().unwrap_or_default().to_string();
            out.push_str(&format!("run {run}\n"));
            for kind in ["steps", "history"] {
                if let Ok(r) = self
                    .http
                    .get(format!("{}/v1/runs/{id}/{kind}", self.executor()))
                    .send()
                    .await
                {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    out.push_str(&format!("  {kind}: {}\n", v["data"]));
                }
            }
        }
        if out.is_empty() {
            out.push_str("(no runs)");
        }
        out
    }

    /// Wait until the event has exactly one run and that run has ended; returns it.
    async fn wait_run_of_event(&self, app: &mut AppProcess, event_id: &str) -> Value {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            app.check_alive();
            let runs = self.runs_of_event(event_id).await;
            assert!(
                runs.len() <= 1,
                "more than one run of {event_id}: {runs:#?}"
            );
            if let Some(run) = runs.first() {
                if run["status"] != "Running" {
                    return run.clone();
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no finished run of event {event_id} {RUN_TIMEOUT:?} after {}; runs:\n{}",
                    app.label,
                    self.dump().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until `proxy` holds a request the provider has answered.
    async fn wait_held(&self, app: &mut AppProcess, proxy: &HoldingProxy, what: &str) -> Proxied {
        let deadline = Instant::now() + RUN_TIMEOUT;
        loop {
            app.check_alive();
            if let Some(p) = proxy.held() {
                return p;
            }
            if Instant::now() > deadline {
                panic!(
                    "the {what} request never arrived; runs:\n{}",
                    self.dump().await
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A customer, the catalogue, a cart and a `pending` order of a hoodie and two mugs, and a
    /// paid Checkout Session for it in the fake Stripe (what the storefront does at checkout).
    async fn seed_order(&self, session_id: &str) -> (User, Order) {
        for p in self.printify.products() {
            self.db
                .upsert_catalog_product(&p.to_catalog_input(SANDBOX_SHOP_ID), now_utc())
                .await
                .unwrap();
        }
        let user = self
            .db
            .upsert_user(
                &UserProfile {
                    clerk_id: "user_2sandboxMikuHatsune".into(),
                    email: CUSTOMER.into(),
                    username: None,
                    display_name: Some("Miku Hatsune".into()),
                    avatar_url: None,
                },
                now_utc(),
            )
            .await
            .unwrap()
            .row;
        let mut items = Vec::new();
        let mut total = 0;
        for (product, variant, qty) in [(HOODIE, 40_001, 1), (MUG, 40_201, 2)] {
            let v = self
                .db
                .get_variant_by_printify_ids(product, variant)
                .await
                .unwrap()
                .expect("variant in the catalogue");
            let price = v.price_cents.unwrap_or(1000);
            total += price * i64::from(qty);
            items.push(NewOrderItem {
                variant_id: Some(v.id),
                printify_product_id: Some(product.to_string()),
                printify_variant_id: Some(variant),
                name: v.title.clone().unwrap_or_default(),
                sku: v.sku.clone(),
                quantity: qty,
                unit_amount_cents: price,
            });
            self.db
                .set_cart_item(user.id, v.id, qty, now_utc())
                .await
                .unwrap();
        }
        self.stripe.put_session(fixtures::paid_session(
            session_id,
            total,
            &format!("pi_{session_id}"),
        ));
        let order = self
            .db
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
            .unwrap();
        assert_eq!(order.status, OrderStatus::Pending);
        (user, order)
    }

    /// A signed `checkout.session.completed` delivery to the app's `POST /webhooks/stripe`.
    async fn stripe_checkout_webhook(&self, evt_id: &str, session_id: &str) {
        let session = self
            .stripe
            .sessions()
            .into_iter()
            .find(|s| s["id"] == session_id)
            .expect("session fixture");
        let body = serde_json::to_vec(&checkout_completed(evt_id, &session)).unwrap();
        let sig = stripe::sign(
            &stripe::StripeSecret::new(STRIPE_WEBHOOK_SECRET),
            webhooks::unix_now(),
            &body,
        );
        let resp = self
            .http
            .post(format!(
                "http://127.0.0.1:{}{}",
                self.app_port,
                webhooks::STRIPE_PATH
            ))
            .header("stripe-signature", sig)
            .body(body)
            .send()
            .await
            .expect("POST /webhooks/stripe");
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
    }

    async fn order(&self, id: Uuid) -> Order {
        self.db.get_order(id).await.unwrap().expect("order row")
    }

    fn stripe_session_gets(&self, session_id: &str) -> usize {
        matching(
            &self.stripe.requests(),
            "GET",
            &format!("/v1/checkout/sessions/{session_id}"),
        )
        .len()
    }

    /// What must not change when nothing runs: runs (id, status, output) with their steps
    /// (name, status, attempts), and every provider request.
    async fn snapshot(&self) -> Value {
        let mut runs = Vec::new();
        for run in self.all_runs().await {
            let id = run["run_id"].as_str().unwrap().to_string();
            let steps: Vec<Value> = self
                .steps(&id)
                .await
                .iter()
                .map(|s| json!([s["name"], s["status"], s["attempts"]]))
                .collect();
            runs.push(json!({
                "run_id": id,
                "event_id": run["event_id"],
                "status": run["status"],
                "output": run["output"],
                "steps": steps,
            }));
        }
        json!({
            "runs": runs,
            "printify_requests": self.printify_proxy.log().len(),
            "printify_orders": self.printify.orders().iter().map(|o| json!([o.id, o.posts])).collect::<Vec<_>>(),
            "stripe_requests": self.stripe.requests().len(),
            "resend_requests": self.resend_proxy.log().len(),
            "emails": self.resend.emails().len(),
            "email_log_rows": self.db.count_rows("email_log").await.unwrap(),
            "webhook_events_rows": self.db.count_rows("webhook_events").await.unwrap(),
            "printify_order_sync_rows": self.db.count_rows("printify_order_sync").await.unwrap(),
        })
    }
}

fn step_names(steps: &[Value]) -> Vec<&str> {
    steps.iter().filter_map(|s| s["name"].as_str()).collect()
}

fn step<'a>(steps: &'a [Value], name: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {steps:#?}"))
}

// ------------------------------------------------------------------------------------ tests

/// Killed while Printify is creating the order, restarted, killed again while the confirmation
/// email is being sent, restarted: one Printify order, one email, the order `in_production`,
/// and a third start with no new events runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_mid_step_twice_the_order_completes_with_one_printify_order_and_one_email() {
    let t0 = Instant::now();
    let mut w = World::new(
        "mid-step",
        Hold {
            printify_order: true,
            email: true,
        },
    )
    .await;
    let session_id = "cs_test_kill_restart_1";
    let (user, order) = w.seed_order(session_id).await;
    let order_event = order_created_event_id(order.id);
    let confirmation_event = format!("order-confirmation-{}", order.id);
    let evt = "evt_kill_restart_1";

    // Start 1: the payment webhook → process-payment-webhook → process-order, which hangs in
    // create-printify-order: Printify created the order, the app never got the answer.
    let mut app = w.start_app();
    w.stripe_checkout_webhook(evt, session_id).await;
    let held = w
        .wait_held(&mut app, &w.printify_proxy, "Printify order POST")
        .await;
    assert_eq!(held.upstream_status, Some(200), "Printify accepted it");
    assert_eq!(held.body["external_id"], order.id.to_string());
    let before_kill = w.runs_of_event(&order_event).await;
    assert_eq!(before_kill.len(), 1, "{before_kill:#?}");
    assert_eq!(before_kill[0]["status"], "Running");
    let order_run_id = before_kill[0]["run_id"].as_str().unwrap().to_string();
    // Memoized so far: the first three steps. create-printify-order runs inline in the request
    // the executor is waiting on, so the executor only learns its name from the answer.
    let steps = w.steps(&order_run_id).await;
    assert_eq!(step_names(&steps), ORDER_STEPS[..3], "{steps:#?}");
    assert!(
        steps.iter().all(|s| s["status"] == "Completed"),
        "{steps:#?}"
    );
    let status = app.kill();
    assert!(!status.success(), "killed: {status}");

    // The crash window: Printify has the order, the database does not know it yet.
    let fake = w.printify.orders();
    assert_eq!(fake.len(), 1);
    assert_eq!(fake[0].posts, 1);
    let row = w.order(order.id).await;
    assert_eq!(row.status, OrderStatus::Paid);
    assert_eq!(row.printify_order_id, None);
    let sync = w.db.get_printify_order_sync(order.id).await.unwrap();
    assert!(
        sync.as_ref()
            .is_none_or(|s| s.status != PrintifySyncStatus::Synced),
        "{sync:?}"
    );
    assert!(w.resend_proxy.log().is_empty(), "no email yet");
    assert_eq!(w.db.cart_items(user.id).await.unwrap().len(), 2);

    // Start 2: the run resumes at create-printify-order (POSTed again, same external_id),
    // then hangs in send-order-confirmation: the email went out, the app never got the answer.
    let t_restart = Instant::now();
    let mut app = w.start_app();
    let run = w.wait_run_of_event(&mut app, &order_event).await;
    println!(
        "process-order finished {:?} after the first restart",
        t_restart.elapsed()
    );
    assert_eq!(run["run_id"], order_run_id.as_str(), "the same run resumed");
    assert_eq!(run["status"], "Completed", "{}", w.dump().await);
    let held_mail = w
        .wait_held(&mut app, &w.resend_proxy, "confirmation email POST")
        .await;
    assert_eq!(held_mail.upstream_status, Some(200), "Resend accepted it");
    let mail_runs = w.runs_of_event(&confirmation_event).await;
    assert_eq!(mail_runs.len(), 1, "{mail_runs:#?}");
    let mail_run_id = mail_runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(mail_runs[0]["status"], "Running");
    app.kill();
    assert_eq!(w.resend.emails().len(), 1, "Resend has the email");
    assert_eq!(
        w.db.count_rows("email_log").await.unwrap(),
        0,
        "the app died before logging it"
    );

    // Start 3: send-email runs again with the same Idempotency-Key; the run completes.
    let mut app = w.start_app();
    let mail = w.wait_run_of_event(&mut app, &confirmation_event).await;
    assert_eq!(mail["run_id"], mail_run_id.as_str(), "the same run resumed");
    assert_eq!(mail["status"], "Completed", "{}", w.dump().await);
    let out = &mail["output"];
    assert_eq!(out["emailSent"], true, "{out}");

    // ---- Exactly once, where it matters.
    // Printify: two POSTs (before and after the kill), one external_id, one order.
    let posts = w.printify_proxy.requests("POST", "/orders.json");
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert!(posts[0].held && !posts[1].held);
    assert_eq!(posts[1].upstream_status, Some(200));
    for p in &posts {
        assert_eq!(p.body["external_id"], order.id.to_string());
    }
    assert_eq!(
        posts[0].body, posts[1].body,
        "the same order body both times"
    );
    let fake = w.printify.orders();
    assert_eq!(fake.len(), 1, "one Printify order: {fake:#?}");
    assert_eq!(fake[0].posts, 2);
    assert_eq!(fake[0].external_id, order.id.to_string());
    // Email: two POSTs with one Idempotency-Key, one message, one email_log row.
    let mails = w.resend_proxy.requests("POST", "/emails");
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let key = confirmation_email_key(order.id);
    for m in &mails {
        assert_eq!(m.idempotency_key.as_deref(), Some(key.as_str()));
    }
    let emails = w.resend.emails();
    assert_eq!(emails.len(), 1, "one email: {emails:#?}");
    // To the address Stripe collected at checkout (stored on the order by the webhook).
    let recipient = w
        .order(order.id)
        .await
        .shipping
        .email
        .expect("shipping email");
    assert_eq!(emails[0].to, vec![recipient]);
    assert_eq!(w.db.count_rows("email_log").await.unwrap(), 1);
    let logged =
        w.db.find_sent_order_email(order.id, ORDER_CONFIRMATION)
            .await
            .unwrap()
            .expect("email_log row");
    assert_eq!(
        logged.provider_message_id.as_deref(),
        Some(emails[0].id.as_str())
    );
    assert_eq!(out["emailId"], emails[0].id.as_str());
    // Stripe: the webhook's verification only; nothing ran twice.
    assert_eq!(w.stripe_session_gets(session_id), 1);
    // Database.
    let row = w.order(order.id).await;
    assert_eq!(row.status, OrderStatus::InProduction);
    assert_eq!(row.printify_order_id.as_deref(), Some(fake[0].id.as_str()));
    let sync =
        w.db.get_printify_order_sync(order.id)
            .await
            .unwrap()
            .expect("sync row");
    assert_eq!(sync.status, PrintifySyncStatus::Synced);
    assert_eq!(sync.printify_order_id, row.printify_order_id);
    assert!(w.db.cart_items(user.id).await.unwrap().is_empty());
    assert_eq!(w.db.count_rows("webhook_events").await.unwrap(), 1);

    // ---- The runs: one per function, all Completed, the order run resumed where it stopped.
    let runs = w.all_runs().await;
    assert_eq!(runs.len(), 3, "{}", w.dump().await);
    assert!(runs.iter().all(|r| r["status"] == "Completed"), "{runs:#?}");
    let pay = w.runs_of_event(evt).await;
    assert_eq!(pay.len(), 1);
    assert_eq!(pay[0]["output"]["orderId"], order.id.to_string());
    let run = w.runs_of_event(&order_event).await.remove(0);
    let out = &run["output"];
    assert_eq!(out["success"], true, "{out}");
    assert_eq!(out["status"], "in_production");
    assert_eq!(out["printifyOrderId"], fake[0].id.as_str());
    assert_eq!(out["cartItemsCleared"], 2);
    let steps = w.steps(&order_run_id).await;
    assert_eq!(step_names(&steps), ORDER_STEPS, "{steps:#?}");
    assert!(
        steps.iter().all(|s| s["status"] == "Completed"),
        "{steps:#?}"
    );
    // Memoized before the kill: never run again.
    for name in ["validate-order", "process-payment", "check-inventory"] {
        assert_eq!(step(&steps, name)["attempts"], 1, "{name}: {steps:#?}");
    }
    // In flight at the kill: the interrupted request counts as a failed attempt, so the run's
    // history shows the step ran twice (as the provider logs do).
    assert_eq!(
        step(&steps, "create-printify-order")["attempts"],
        2,
        "{steps:#?}"
    );
    for s in &steps {
        println!(
            "process-order step {:<22} {} attempts={}",
            s["name"].as_str().unwrap_or("?"),
            s["status"],
            s["attempts"]
        );
    }

    // ---- Start 4, no new events: nothing runs again, the history is still there.
    let before = w.snapshot().await;
    app.kill();
    let mut app = w.start_app();
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.check_alive();
    let after = w.snapshot().await;
    assert_eq!(before, after, "a restart without events changed something");
    assert_eq!(after["runs"].as_array().unwrap().len(), 3);
    drop(app);
    println!("mid-step kill/restart test took {:?}", t0.elapsed());
}

/// Killed while `process-order` waits for the payment (`wait-for-payment`): after the restart the
/// same run is still waiting, and the Stripe webhook resumes it to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_while_waiting_for_payment_the_wait_survives_the_restart() {
    let t0 = Instant::now();
    let mut w = World::new(
        "waiting",
        Hold {
            printify_order: false,
            email: false,
        },
    )
    .await;
    let session_id = "cs_test_kill_restart_wait";
    let (user, order) = w.seed_order(session_id).await;
    let order_event = order_created_event_id(order.id);

    // Start 1: the checkout emits order/created before the payment; the run waits for it.
    let mut app = w.start_app();
    let resp: Value = w
        .http
        .post(format!("{}/e/dev", w.executor()))
        .json(&json!({
            "id": order_event,
            "name": "order/created",
            "data": {"orderId": order.id, "userId": user.id, "stripeSessionId": session_id},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], 200, "{resp}");
    let deadline = Instant::now() + RUN_TIMEOUT;
    let run_id = loop {
        app.check_alive();
        if let Some(run) = w.runs_of_event(&order_event).await.first() {
            let id = run["run_id"].as_str().unwrap().to_string();
            let steps = w.steps(&id).await;
            if steps
                .iter()
                .any(|s| s["name"] == "wait-for-payment" && s["status"] == "Waiting")
            {
                break id;
            }
        }
        assert!(
            Instant::now() < deadline,
            "process-order never started waiting; runs:\n{}",
            w.dump().await
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    app.kill();
    assert_eq!(w.order(order.id).await.status, OrderStatus::Pending);
    assert!(w.printify_proxy.log().is_empty());

    // Start 2: the same run is still there, still waiting.
    let mut app = w.start_app();
    let run = w.get(&format!("/v1/runs/{run_id}")).await;
    assert_eq!(run["data"]["status"], "Running", "{run}");
    let steps = w.steps(&run_id).await;
    assert_eq!(
        step_names(&steps),
        ["validate-order", "wait-for-payment"],
        "{steps:#?}"
    );
    assert_eq!(step(&steps, "validate-order")["status"], "Completed");
    assert_eq!(step(&steps, "wait-for-payment")["status"], "Waiting");

    // The payment arrives after the restart and resumes the wait.
    let t_pay = Instant::now();
    w.stripe_checkout_webhook("evt_kill_restart_wait", session_id)
        .await;
    let run = w.wait_run_of_event(&mut app, &order_event).await;
    println!(
        "the waiting run finished {:?} after the payment",
        t_pay.elapsed()
    );
    assert_eq!(run["run_id"], run_id.as_str(), "the same run resumed");
    assert_eq!(run["status"], "Completed", "{}", w.dump().await);
    assert_eq!(run["output"]["success"], true, "{}", run["output"]);
    assert_eq!(run["output"]["status"], "in_production");
    let steps = w.steps(&run_id).await;
    let mut expected = vec!["validate-order", "wait-for-payment"];
    expected.extend_from_slice(&ORDER_STEPS[1..]);
    assert_eq!(step_names(&steps), expected, "{steps:#?}");
    assert!(
        steps.iter().all(|s| s["status"] == "Completed"),
        "{steps:#?}"
    );
    assert_eq!(step(&steps, "validate-order")["attempts"], 1);
    let waited = step(&steps, "wait-for-payment");
    assert_eq!(waited["op"], "WaitForEvent");
    assert!(
        waited["output"].to_string().contains(session_id),
        "the wait got the payment event: {waited}"
    );

    let mail = w
        .wait_run_of_event(&mut app, &format!("order-confirmation-{}", order.id))
        .await;
    assert_eq!(mail["status"], "Completed", "{}", w.dump().await);
    // One run per function (the webhook's order/created was the same event id: no second
    // process-order run), one Printify order with one POST, one email.
    let runs = w.all_runs().await;
    assert_eq!(runs.len(), 3, "{}", w.dump().await);
    assert_eq!(w.runs_of_event(&order_event).await.len(), 1);
    let fake = w.printify.orders();
    assert_eq!(fake.len(), 1);
    assert_eq!(fake[0].posts, 1);
    assert_eq!(w.resend.emails().len(), 1);
    assert_eq!(w.db.count_rows("email_log").await.unwrap(), 1);
    let row = w.order(order.id).await;
    assert_eq!(row.status, OrderStatus::InProduction);
    assert_eq!(row.printify_order_id.as_deref(), Some(fake[0].id.as_str()));
    assert!(w.db.cart_items(user.id).await.unwrap().is_empty());
    drop(app);
    println!("waiting kill/restart test took {:?}", t0.elapsed());
}
