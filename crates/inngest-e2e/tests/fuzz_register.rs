//! Fuzz: the register payload round trip.
//!
//! Random valid apps are built with the public `Function` builder, served by `ServeHandler`, and
//! synced in-band (`PUT` with `X-Inngest-Sync-Kind: in_band`, dev mode); the returned function
//! objects must be valid JSON with the invariant keys, and every option must read back to what the
//! builder was given (ids, names, triggers, retries, flow control, durations via
//! `timestr::parse`, step URLs via a URL parser). A sample also syncs out-of-band against a
//! loopback fake API, whose `/fn/register` body must carry the same functions. A second campaign
//! feeds arbitrary (mostly invalid) options: serving never panics, and an error names the
//! function.

mod fuzz_common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use inngest_sdk::protocol::timestr;
use inngest_sdk::serve::ServeHandler;
use inngest_sdk::{
    BatchEvents, Cancel, Concurrency, ConcurrencyScope, Ctx, Debounce, Function, FunctionFailed,
    Inngest, RateLimit, Singleton, SingletonMode, Step, Throttle, Timeouts, Trigger,
};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_json::{json, Value};

const APP: &str = "reg-app";

const EXPRS: &[&str] = &[
    "event.data.user_id",
    "event.data.amount > 10",
    "event.data.tier == 'gold' ? 100 : 0",
    "size(event.data.items) > 0",
    "event.data.a + '-' + event.data.b",
];
const IF_EXPRS: &[&str] = &[
    "async.data.id == event.data.id",
    "async.data.order.id == event.data.order.id && async.data.ok",
];
const CRONS: &[&str] = &[
    "*/5 * * * *",
    "0 2 * * *",
    "TZ=Europe/Paris 0 9 * * 1",
    "30 4 1 * *",
];

#[derive(Debug, Clone, PartialEq)]
enum TriggerSpec {
    Event {
        name: String,
        expr: Option<&'static str>,
    },
    Cron {
        cron: &'static str,
        jitter: Option<u64>,
    },
}

#[derive(Debug, Clone)]
struct Spec {
    id: String,
    name: Option<String>,
    triggers: Vec<TriggerSpec>,
    retries: Option<u32>,
    concurrency: Vec<(u32, Option<&'static str>, Option<u8>)>,
    rate_limit: Option<(u32, u64, Option<&'static str>)>,
    throttle: Option<(u32, u64, Option<u32>, Option<&'static str>)>,
    debounce: Option<(u64, Option<&'static str>, Option<u64>)>,
    batch: Option<(u32, u64, Option<&'static str>)>,
    cancel: Vec<(String, Option<&'static str>, Option<u64>)>,
    priority: Option<&'static str>,
    idempotency: Option<&'static str>,
    timeouts: Option<(Option<u64>, Option<u64>)>,
    singleton: Option<(bool, Option<&'static str>)>,
    on_failure: bool,
}

fn expr() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(EXPRS)
}

fn arb_trigger() -> impl Strategy<Value = TriggerSpec> {
    prop_oneof![
        3 => ("[a-z]{1,8}/[a-z.]{1,12}", proptest::option::of(expr()))
            .prop_map(|(name, expr)| TriggerSpec::Event { name, expr }),
        1 => (
            proptest::sample::select(CRONS),
            proptest::option::of(prop_oneof![Just(0u64), 1u64..=300]),
        )
            .prop_map(|(cron, jitter)| TriggerSpec::Cron { cron, jitter }),
    ]
}

fn secs(lo: u64, hi: u64) -> impl Strategy<Value = u64> {
    prop_oneof![Just(lo), Just(hi), lo..=hi]
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    let head = (
        prop_oneof![
            4 => "[a-z][a-z0-9-]{0,20}",
            1 => "[a-zA-Z0-9 _./&?=#%+é-]{1,16}".prop_filter("non-blank", |s| !s.trim().is_empty()),
        ],
        proptest::option::of("\\PC{0,20}"),
        vec(arb_trigger(), 1..5),
        proptest::option::of(0u32..=20),
        vec(
            (
                1u32..=1000,
                proptest::option::of(expr()),
                proptest::option::of(0u8..3),
            ),
            0..=2,
        ),
        any::<bool>(),
    );
    let flow = (
        proptest::option::of((1u32..=100, secs(1, 86_400), proptest::option::of(expr()))),
        proptest::option::of((
            1u32..=100,
            secs(1, 7 * 86_400),
            proptest::option::of(1u32..10),
            proptest::option::of(expr()),
        )),
        proptest::option::of((
            secs(1, 7 * 86_400),
            proptest::option::of(expr()),
            proptest::option::of(secs(1, 7 * 86_400)),
        )),
        proptest::option::of((2u32..=100, secs(1, 60), proptest::option::of(expr()))),
        vec(
            (
                "[a-z]{1,6}/[a-z]{1,6}",
                proptest::option::of(proptest::sample::select(IF_EXPRS)),
                proptest::option::of(secs(1, 86_400)),
            ),
            0..=5,
        ),
    );
    let tail = (
        proptest::option::of(expr()),
        proptest::option::of(expr()),
        proptest::option::of((
            proptest::option::of(secs(1, 86_400)),
            proptest::option::of(secs(1, 86_400)),
        )),
        proptest::option::of((any::<bool>(), proptest::option::of(expr()))),
    );
    (head, flow, tail).prop_map(
        |(
            (id, name, mut triggers, retries, mut concurrency, on_failure),
            (rate_limit, throttle, debounce, batch, cancel),
            (priority, idempotency, timeouts, singleton),
        )| {
            // Keep the options the server rejects out of a *valid* spec.
            let mut seen = Vec::new();
            triggers.retain(|t| {
                let dup = seen.contains(t);
                seen.push(t.clone());
                !dup
            });
            for c in &mut concurrency {
                if c.2.unwrap_or(0) > 0 && c.1.is_none() {
                    c.1 = Some(EXPRS[0]);
                }
            }
            let mut spec = Spec {
                id,
                name,
                triggers,
                retries,
                concurrency,
                rate_limit,
                throttle,
                debounce,
                batch,
                cancel,
                priority,
                idempotency,
                timeouts,
                singleton,
                on_failure,
            };
            if spec.batch.is_some() {
                spec.cancel.clear();
                spec.debounce = None;
                spec.singleton = None;
                spec.priority = None;
            }
            spec
        },
    )
}

fn arb_app() -> impl Strategy<Value = Vec<Spec>> {
    vec(arb_spec(), 1..5).prop_map(|mut specs| {
        // Unique ids within the app (also against `<id>-failure` companions).
        let mut ids = BTreeSet::new();
        for (i, s) in specs.iter_mut().enumerate() {
            if !ids.insert(s.id.clone()) || s.id.ends_with("-failure") {
                s.id = format!("{}-{i}", s.id);
                ids.insert(s.id.clone());
            }
        }
        let all: Vec<String> = specs.iter().map(|s| s.id.clone()).collect();
        for s in &mut specs {
            if all.contains(&format!("{}-failure", s.id)) {
                s.on_failure = false;
            }
        }
        specs
    })
}

fn scope(n: u8) -> ConcurrencyScope {
    match n {
        0 => ConcurrencyScope::Function,
        1 => ConcurrencyScope::Env,
        _ => ConcurrencyScope::Account,
    }
}

fn build(spec: &Spec) -> Function {
    let d = Duration::from_secs;
    let mut f = Function::new(spec.id.clone());
    if let Some(n) = &spec.name {
        f = f.name(n.clone());
    }
    for t in &spec.triggers {
        f = f.trigger(match t {
            TriggerSpec::Event { name, expr } => {
                let t = Trigger::event(name.clone());
                match expr {
                    Some(e) => t.when(*e),
                    None => t,
                }
            }
            TriggerSpec::Cron { cron, jitter } => {
                let t = Trigger::cron(*cron);
                match jitter {
                    Some(j) => t.jitter(d(*j)),
                    None => t,
                }
            }
        });
    }
    if let Some(r) = spec.retries {
        f = f.retries(r);
    }
    for (limit, key, sc) in &spec.concurrency {
        let mut c = Concurrency::new(*limit);
        if let Some(k) = key {
            c = c.key(*k);
        }
        if let Some(s) = sc {
            c = c.scope(scope(*s));
        }
        f = f.concurrency(c);
    }
    if let Some((limit, period, key)) = &spec.rate_limit {
        let mut r = RateLimit::new(*limit, d(*period));
        if let Some(k) = key {
            r = r.key(*k);
        }
        f = f.rate_limit(r);
    }
    if let Some((limit, period, burst, key)) = &spec.throttle {
        let mut t = Throttle::new(*limit, d(*period));
        if let Some(b) = burst {
            t = t.burst(*b);
        }
        if let Some(k) = key {
            t = t.key(*k);
        }
        f = f.throttle(t);
    }
    if let Some((period, key, timeout)) = &spec.debounce {
        let mut x = Debounce::new(d(*period));
        if let Some(k) = key {
            x = x.key(*k);
        }
        if let Some(t) = timeout {
            x = x.timeout(d(*t));
        }
        f = f.debounce(x);
    }
    if let Some((max, timeout, key)) = &spec.batch {
        let mut b = BatchEvents::new(*max, d(*timeout));
        if let Some(k) = key {
            b = b.key(*k);
        }
        f = f.batch_events(b);
    }
    for (event, if_expr, timeout) in &spec.cancel {
        let mut c = Cancel::new(event.clone());
        if let Some(e) = if_expr {
            c = c.if_expr(*e);
        }
        if let Some(t) = timeout {
            c = c.timeout(d(*t));
        }
        f = f.cancel_on(c);
    }
    if let Some(p) = spec.priority {
        f = f.priority(p);
    }
    if let Some(i) = spec.idempotency {
        f = f.idempotency(i);
    }
    if let Some((start, finish)) = spec.timeouts {
        f = f.timeouts(Timeouts {
            start: start.map(d),
            finish: finish.map(d),
        });
    }
    if let Some((skip, key)) = &spec.singleton {
        let mut s = Singleton::new(if *skip {
            SingletonMode::Skip
        } else {
            SingletonMode::Cancel
        });
        if let Some(k) = key {
            s = s.key(*k);
        }
        f = f.singleton(s);
    }
    if spec.on_failure {
        f = f.on_failure(|_ctx: Ctx<FunctionFailed<Value>>, _step: Step| async move { Ok(()) });
    }
    f.handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(()) })
}

fn arb_app_url() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("http"), Just("https")],
        prop_oneof![
            Just("localhost:3000".to_owned()),
            "[a-z]{1,10}\\.example\\.com",
            (1024u16..).prop_map(|p| format!("127.0.0.1:{p}")),
        ],
        prop_oneof![Just("/api/inngest".to_owned()), "(/[a-z0-9_-]{1,8}){1,3}",],
        proptest::option::of("[a-z]{1,5}=[a-z0-9]{0,5}"),
    )
        .prop_map(|(scheme, host, path, query)| match query {
            Some(q) => format!("{scheme}://{host}{path}?{q}"),
            None => format!("{scheme}://{host}{path}"),
        })
}

// ---------------------------------------------------------------------------------------------
// Invariants.

type R = Result<(), TestCaseError>;

const FUNCTION_KEYS: &[&str] = &[
    "id",
    "name",
    "triggers",
    "steps",
    "concurrency",
    "rateLimit",
    "throttle",
    "debounce",
    "batchEvents",
    "cancel",
    "priority",
    "idempotency",
    "timeouts",
    "singleton",
];

fn duration_of(v: &Value) -> Result<u64, TestCaseError> {
    let s = v
        .as_str()
        .ok_or_else(|| TestCaseError::fail(format!("not a time string: {v}")))?;
    timestr::parse(s)
        .map(|d| d.as_secs())
        .map_err(|e| TestCaseError::fail(format!("{s:?} does not parse back: {e}")))
}

fn check_step_url(f: &Value, app_url: &str, slug: &str) -> R {
    let step = &f["steps"]["step"];
    ensure!(
        step["id"] == "step" && step["name"] == "step",
        "step object {step}"
    );
    ensure!(step["runtime"]["type"] == "http", "runtime {step}");
    let url = step["runtime"]["url"].as_str().unwrap_or("");
    ensure!(
        url.starts_with(app_url),
        "{url} does not start with {app_url}"
    );
    let parsed = url::Url::parse(url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
    ensure!(
        matches!(parsed.scheme(), "http" | "https"),
        "scheme of {url}"
    );
    let fn_ids: Vec<String> = parsed
        .query_pairs()
        .filter(|(k, _)| k == "fnId")
        .map(|(_, v)| v.into_owned())
        .collect();
    ensure!(
        fn_ids == [slug.to_owned()],
        "fnId of {url} is {fn_ids:?}, wanted {slug}"
    );
    let step_ids: Vec<String> = parsed
        .query_pairs()
        .filter(|(k, _)| k == "stepId")
        .map(|(_, v)| v.into_owned())
        .collect();
    ensure!(step_ids == ["step"], "stepId of {url}");
    Ok(())
}

fn check_function(f: &Value, spec: &Spec, app_url: &str) -> R {
    let obj = f
        .as_object()
        .ok_or_else(|| TestCaseError::fail("function is not an object"))?;
    for k in obj.keys() {
        ensure!(FUNCTION_KEYS.contains(&k.as_str()), "unexpected key `{k}`");
    }
    let slug = format!("{APP}-{}", spec.id);
    ensure!(f["id"] == slug.as_str(), "id {} != {slug}", f["id"]);
    // The Dev Server refuses a function without a name: a blank name falls back to the id.
    let name = spec
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| spec.id.clone());
    ensure!(
        f["name"] == name.as_str(),
        "name {} (wanted {name:?})",
        f["name"]
    );
    check_step_url(f, app_url, &slug)?;

    let triggers = f["triggers"].as_array().cloned().unwrap_or_default();
    ensure!(triggers.len() == spec.triggers.len(), "trigger count");
    for (t, s) in triggers.iter().zip(&spec.triggers) {
        match s {
            TriggerSpec::Event { name, expr } => {
                ensure!(t["event"] == name.as_str(), "event trigger {t}");
                ensure!(
                    t.get("expression").and_then(Value::as_str) == *expr,
                    "expression of {t}"
                );
                ensure!(t.get("cron").is_none(), "event trigger with cron");
            }
            TriggerSpec::Cron { cron, jitter } => {
                ensure!(t["cron"] == *cron, "cron trigger {t}");
                match jitter {
                    Some(j) => ensure!(duration_of(&t["jitter"])? == *j, "jitter of {t}"),
                    None => ensure!(t.get("jitter").is_none(), "jitter present"),
                }
            }
        }
    }
    match spec.retries {
        Some(r) => ensure!(
            f["steps"]["step"]["retries"]["attempts"] == r,
            "retries {}",
            f["steps"]["step"]
        ),
        None => ensure!(
            f["steps"]["step"].get("retries").is_none(),
            "retries present"
        ),
    }
    let conc = f
        .get("concurrency")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ensure!(conc.len() == spec.concurrency.len(), "concurrency count");
    for (c, (limit, key, sc)) in conc.iter().zip(&spec.concurrency) {
        ensure!(c["limit"] == *limit, "limit {c}");
        ensure!(c.get("key").and_then(Value::as_str) == *key, "key {c}");
        let want = sc.map(|s| ["fn", "env", "account"][usize::from(s.min(2))]);
        ensure!(c.get("scope").and_then(Value::as_str) == want, "scope {c}");
    }
    match &spec.rate_limit {
        Some((limit, period, key)) => {
            let r = &f["rateLimit"];
            ensure!(r["limit"] == *limit, "rateLimit {r}");
            ensure!(
                duration_of(&r["period"])? == *period,
                "rateLimit period {r}"
            );
            ensure!(
                r.get("key").and_then(Value::as_str) == *key,
                "rateLimit key"
            );
        }
        None => ensure!(f.get("rateLimit").is_none(), "rateLimit present"),
    }
    match &spec.throttle {
        Some((limit, period, burst, key)) => {
            let t = &f["throttle"];
            ensure!(t["limit"] == *limit, "throttle {t}");
            ensure!(duration_of(&t["period"])? == *period, "throttle period {t}");
            ensure!(
                t.get("burst").and_then(Value::as_u64) == burst.map(u64::from),
                "burst"
            );
            ensure!(t.get("key").and_then(Value::as_str) == *key, "throttle key");
        }
        None => ensure!(f.get("throttle").is_none(), "throttle present"),
    }
    match &spec.debounce {
        Some((period, key, timeout)) => {
            let x = &f["debounce"];
            ensure!(duration_of(&x["period"])? == *period, "debounce {x}");
            ensure!(x.get("key").and_then(Value::as_str) == *key, "debounce key");
            match timeout {
                Some(t) => ensure!(duration_of(&x["timeout"])? == *t, "debounce timeout"),
                None => ensure!(x.get("timeout").is_none(), "debounce timeout present"),
            }
        }
        None => ensure!(f.get("debounce").is_none(), "debounce present"),
    }
    match &spec.batch {
        Some((max, timeout, key)) => {
            let b = &f["batchEvents"];
            ensure!(b["maxSize"] == *max, "batch {b}");
            let t = b["timeout"].as_str().unwrap_or("");
            ensure!(
                !t.contains('d'),
                "batch timeout {t} uses days (Go has none)"
            );
            ensure!(duration_of(&b["timeout"])? == *timeout, "batch timeout {b}");
            ensure!(b.get("key").and_then(Value::as_str) == *key, "batch key");
        }
        None => ensure!(f.get("batchEvents").is_none(), "batch present"),
    }
    let cancel = f
        .get("cancel")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    ensure!(cancel.len() == spec.cancel.len(), "cancel count");
    for (c, (event, if_expr, timeout)) in cancel.iter().zip(&spec.cancel) {
        ensure!(c["event"] == event.as_str(), "cancel {c}");
        ensure!(c.get("if").and_then(Value::as_str) == *if_expr, "cancel if");
        match timeout {
            Some(t) => ensure!(duration_of(&c["timeout"])? == *t, "cancel timeout"),
            None => ensure!(c.get("timeout").is_none(), "cancel timeout present"),
        }
    }
    ensure!(
        f.get("priority").map(|p| &p["run"]).and_then(Value::as_str) == spec.priority,
        "priority"
    );
    ensure!(
        f.get("idempotency").and_then(Value::as_str) == spec.idempotency,
        "idempotency"
    );
    match spec.timeouts {
        Some((start, finish)) => {
            let t = &f["timeouts"];
            match start {
                Some(s) => ensure!(duration_of(&t["start"])? == s, "timeouts.start"),
                None => ensure!(t.get("start").is_none(), "start present"),
            }
            match finish {
                Some(s) => ensure!(duration_of(&t["finish"])? == s, "timeouts.finish"),
                None => ensure!(t.get("finish").is_none(), "finish present"),
            }
        }
        None => ensure!(f.get("timeouts").is_none(), "timeouts present"),
    }
    match &spec.singleton {
        Some((skip, key)) => {
            let s = &f["singleton"];
            ensure!(
                s["mode"] == if *skip { "skip" } else { "cancel" },
                "singleton {s}"
            );
            ensure!(
                s.get("key").and_then(Value::as_str) == *key,
                "singleton key"
            );
        }
        None => ensure!(f.get("singleton").is_none(), "singleton present"),
    }
    Ok(())
}

fn check_failure_function(f: &Value, spec: &Spec, app_url: &str) -> R {
    let main = format!("{APP}-{}", spec.id);
    let slug = format!("{main}-failure");
    ensure!(f["id"] == slug.as_str(), "failure id {}", f["id"]);
    check_step_url(f, app_url, &slug)?;
    ensure!(
        f["steps"]["step"]["retries"]["attempts"] == 1,
        "failure retries"
    );
    let t = &f["triggers"][0];
    ensure!(
        t["event"] == "inngest/function.failed",
        "failure trigger {t}"
    );
    let expr = t["expression"].as_str().unwrap_or("");
    // The expression must select exactly this function: evaluate it.
    let compiled = inngest_executor::expr::Expr::compile(expr)
        .map_err(|e| TestCaseError::fail(format!("failure expression: {e}")))?;
    let mine = json!({ "name": "inngest/function.failed", "data": { "function_id": main } });
    let other =
        json!({ "name": "inngest/function.failed", "data": { "function_id": format!("{main}x") } });
    let vars = |e| inngest_executor::expr::Vars::new().with_event(e);
    ensure!(
        compiled.eval_bool(&vars(&mine)) == Ok(true),
        "{expr} misses its function"
    );
    ensure!(
        compiled.eval_bool(&vars(&other)) == Ok(false),
        "{expr} matches another function"
    );
    Ok(())
}

fn check_functions(functions: &[Value], specs: &[Spec], app_url: &str) -> R {
    let want = specs.len() + specs.iter().filter(|s| s.on_failure).count();
    ensure!(
        functions.len() == want,
        "{} functions, wanted {want}",
        functions.len()
    );
    let mut it = functions.iter();
    for spec in specs {
        let f = it.next().unwrap();
        check_function(f, spec, app_url)
            .map_err(|e| TestCaseError::fail(format!("function `{}`: {e}\n{f:#}", spec.id)))?;
        if spec.on_failure {
            check_failure_function(it.next().unwrap(), spec, app_url)?;
        }
    }
    let ids: BTreeSet<&str> = functions.iter().filter_map(|f| f["id"].as_str()).collect();
    ensure!(ids.len() == functions.len(), "duplicate ids in the payload");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Sync calls.

fn dev_client(api: &str) -> Inngest {
    Inngest::builder(APP)
        .dev(true)
        .dev_url(api)
        .allow_in_band_sync(true)
        .build()
        .unwrap()
}

fn in_band(
    rt: &tokio::runtime::Runtime,
    h: &ServeHandler,
    url: &str,
) -> Result<Value, TestCaseError> {
    let body = serde_json::to_vec(&json!({ "url": url })).unwrap();
    let req = http::Request::builder()
        .method("PUT")
        .uri("/api/inngest")
        .header("x-inngest-sync-kind", "in_band")
        .body(Bytes::from(body))
        .unwrap();
    let res = rt.block_on(h.handle(req));
    ensure!(
        res.status() == 200,
        "in-band sync answered {}",
        res.status()
    );
    serde_json::from_slice(res.body())
        .map_err(|e| TestCaseError::fail(format!("in-band body is not JSON: {e}")))
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Value>>>);

async fn fake_api(rec: Recorder) -> String {
    let app = axum::Router::new().fallback(move |body: Bytes| {
        let rec = rec.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                rec.0.lock().unwrap().push(v);
            }
            r#"{"ok":true,"modified":true}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

// ---------------------------------------------------------------------------------------------

#[test]
fn fuzz_register_payload_round_trip() {
    let rt = fuzz_common::runtime();
    let rec = Recorder::default();
    let api = rt.block_on(fake_api(rec.clone()));
    let counter = std::sync::atomic::AtomicU64::new(0);
    fuzz_common::campaign(
        "register_round_trip",
        256,
        (arb_app(), arb_app_url()),
        |(specs, app_url)| {
            let client = dev_client(&api);
            let functions: Vec<Function> = specs.iter().map(build).collect();
            let h = ServeHandler::new(&client, functions)
                .map_err(|e| TestCaseError::fail(format!("a valid app was refused: {e}")))?;
            let reply = in_band(&rt, &h, &app_url)?;
            let expected_url = {
                // `deployId` is never part of the app URL; nothing else changes in dev mode.
                let u = url::Url::parse(&app_url).unwrap();
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .filter(|(k, _)| k != "deployId")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let mut u = u.clone();
                if pairs.is_empty() {
                    u.set_query(None);
                }
                u.to_string()
            };
            ensure!(
                reply["url"] == expected_url.as_str(),
                "url {}",
                reply["url"]
            );
            for k in ["app_id", "framework", "functions", "sdk", "capabilities"] {
                ensure!(reply.get(k).is_some(), "in-band reply lacks `{k}`");
            }
            ensure!(reply["app_id"] == APP, "app_id");
            let functions = reply["functions"].as_array().cloned().unwrap_or_default();
            check_functions(&functions, &specs, &expected_url)?;

            // Every 8th case also syncs out-of-band through the fake API.
            if counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .is_multiple_of(8)
            {
                let u = url::Url::parse(&expected_url).unwrap();
                let req = http::Request::builder()
                    .method("PUT")
                    .uri(format!("{}?deployId=d-1", u.path()))
                    .header(
                        "host",
                        u.host_str().unwrap().to_owned()
                            + &u.port().map(|p| format!(":{p}")).unwrap_or_default(),
                    )
                    .header("x-forwarded-proto", u.scheme())
                    .body(Bytes::new())
                    .unwrap();
                let before = rec.0.lock().unwrap().len();
                let res = rt.block_on(h.handle(req));
                ensure!(
                    res.status() == 200,
                    "out-of-band sync answered {}",
                    res.status()
                );
                let payload = rec.0.lock().unwrap().get(before).cloned();
                let payload = payload.ok_or_else(|| TestCaseError::fail("no register call"))?;
                let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
                let own = format!(
                    "{}://{}{port}{}",
                    u.scheme(),
                    u.host_str().unwrap(),
                    u.path()
                );
                ensure!(
                    payload["url"] == own.as_str(),
                    "register url {}",
                    payload["url"]
                );
                for k in [
                    "url",
                    "deployType",
                    "appName",
                    "framework",
                    "functions",
                    "sdk",
                    "v",
                    "capabilities",
                ] {
                    ensure!(payload.get(k).is_some(), "register payload lacks `{k}`");
                }
                ensure!(
                    payload["v"] == "0.1" && payload["deployType"] == "ping",
                    "v/deployType"
                );
                ensure!(payload["appName"] == APP, "appName");
                let sdk = payload["sdk"].as_str().unwrap_or("");
                ensure!(
                    sdk.split(':').count() == 2 && sdk.contains(":v"),
                    "sdk {sdk}"
                );
                let functions = payload["functions"].as_array().cloned().unwrap_or_default();
                check_functions(&functions, &specs, &own)?;
            }
            Ok(())
        },
    );
}

/// Arbitrary (mostly invalid) options: serving never panics; errors name the function.
#[derive(Debug, Clone)]
struct Wild {
    id: String,
    event: String,
    when: Option<String>,
    cron: Option<String>,
    jitter: Option<Duration>,
    retries: Option<u32>,
    concurrency: Vec<(u32, Option<String>, u8)>,
    period: Duration,
    batch: Option<(u32, Duration)>,
    cancel: Vec<(String, Option<String>)>,
    priority: Option<String>,
}

fn arb_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        (0u64..1_000_000).prop_map(Duration::from_secs),
        any::<u64>().prop_map(Duration::from_nanos),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        ".{0,8}",
        proptest::sample::select(EXPRS).prop_map(str::to_owned),
        "[a-z.() =<>!&|'0-9]{0,20}",
    ]
}

fn arb_wild() -> impl Strategy<Value = Wild> {
    (
        (
            "\\PC{0,12}",
            "\\PC{0,300}",
            proptest::option::of(arb_text()),
            proptest::option::of(prop_oneof![
                "[0-9*/, -]{0,20}",
                "TZ=\\PC{0,10} [0-9* ]{0,12}",
                proptest::sample::select(CRONS).prop_map(str::to_owned),
            ]),
            proptest::option::of(arb_duration()),
            proptest::option::of(any::<u32>()),
        ),
        (
            vec(
                (any::<u32>(), proptest::option::of(arb_text()), any::<u8>()),
                0..4,
            ),
            arb_duration(),
            proptest::option::of((any::<u32>(), arb_duration())),
            vec(("\\PC{0,6}", proptest::option::of(arb_text())), 0..7),
            proptest::option::of(arb_text()),
        ),
    )
        .prop_map(
            |(
                (id, event, when, cron, jitter, retries),
                (concurrency, period, batch, cancel, priority),
            )| Wild {
                id,
                event,
                when,
                cron,
                jitter,
                retries,
                concurrency,
                period,
                batch,
                cancel,
                priority,
            },
        )
}

fn build_wild(w: &Wild) -> Function {
    let mut t = Trigger::event(w.event.clone());
    if let Some(e) = &w.when {
        t = t.when(e.clone());
    }
    let mut f = Function::new(w.id.clone()).trigger(t);
    if let Some(c) = &w.cron {
        let mut t = Trigger::cron(c.clone());
        if let Some(j) = w.jitter {
            t = t.jitter(j);
        }
        f = f.trigger(t);
    }
    if let Some(r) = w.retries {
        f = f.retries(r);
    }
    for (limit, key, sc) in &w.concurrency {
        let mut c = Concurrency::new(*limit).scope(scope(*sc % 3));
        if let Some(k) = key {
            c = c.key(k.clone());
        }
        f = f.concurrency(c);
    }
    f = f
        .rate_limit(RateLimit::new(1, w.period))
        .throttle(Throttle::new(1, w.period))
        .debounce(Debounce::new(w.period).timeout(w.period))
        .timeouts(Timeouts {
            start: Some(w.period),
            finish: Some(w.period),
        });
    if let Some((max, timeout)) = w.batch {
        f = f.batch_events(BatchEvents::new(max, timeout));
    }
    for (event, if_expr) in &w.cancel {
        let mut c = Cancel::new(event.clone()).timeout(w.period);
        if let Some(e) = if_expr {
            c = c.if_expr(e.clone());
        }
        f = f.cancel_on(c);
    }
    if let Some(p) = &w.priority {
        f = f.priority(p.clone());
    }
    f.handler(|_ctx: Ctx<Value>, _step: Step| async move { Ok(()) })
}

#[test]
fn fuzz_arbitrary_options_never_panic() {
    let rt = fuzz_common::runtime();
    let api = "http://127.0.0.1:9";
    fuzz_common::campaign("register_wild", 512, arb_wild(), |w| {
        let client = dev_client(api);
        match ServeHandler::new(&client, [build_wild(&w)]) {
            Ok(h) => {
                let reply = in_band(&rt, &h, "http://localhost:3000/api/inngest")?;
                let f = &reply["functions"][0];
                ensure!(
                    f["id"] == format!("{APP}-{}", w.id).as_str(),
                    "id {}",
                    f["id"]
                );
                check_step_url(
                    f,
                    "http://localhost:3000/api/inngest",
                    &format!("{APP}-{}", w.id),
                )?;
                // Every duration that was accepted reads back.
                for path in [
                    &f["rateLimit"]["period"],
                    &f["throttle"]["period"],
                    &f["debounce"]["period"],
                    &f["timeouts"]["start"],
                ] {
                    duration_of(path)?;
                }
            }
            Err(e) => {
                let msg = e.to_string();
                ensure!(
                    msg.contains(&format!("`{}`", w.id)),
                    "error does not name the function: {msg}"
                );
            }
        }
        Ok(())
    });
}
