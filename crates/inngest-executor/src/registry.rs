//! Apps and functions as the executor knows them: read from a `/fn/register` payload (or an
//! in-band sync answer) into the shared [`inngest_protocol::register`] types, then validated.
//! Every expression is compiled and every cron parsed here, so a function the executor could not
//! evaluate is a sync error, never a silent mismatch. A value of the wrong JSON type is refused
//! with its path; unknown keys are ignored and `null` counts as absent, as on the real server.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use inngest_protocol::register::{self as wire, FunctionConfig, RegisterRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha1::{Digest, Sha1};

use super::cron::CronSchedule;
use super::expr::{Expr, Policy, Vars};

/// Retries when a function registers none (the server's default).
pub(crate) const DEFAULT_RETRIES: u32 = 4;
/// Largest retry count the server accepts (larger values are clamped).
pub(crate) const MAX_RETRIES: u32 = 20;

/// An event trigger.
#[derive(Debug, Clone)]
pub(crate) struct EventTrigger {
    pub event: String,
    pub expr: Option<Expr>,
}

impl EventTrigger {
    /// Whether an event with this name (and body) triggers.
    pub(crate) fn matches(&self, name: &str, event: &Value) -> bool {
        if !name_matches(&self.event, name) {
            return false;
        }
        match &self.expr {
            None => true,
            Some(expr) => match expr.eval_bool(&Vars::new().with_event(event)) {
                Ok(b) => b,
                Err(_) => {
                    tracing::debug!(expression = %expr, "trigger expression could not be evaluated; no match");
                    false
                }
            },
        }
    }
}

/// Event names match exactly, or by a trailing `*` wildcard (`app/*`).
fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A cancellation rule.
#[derive(Debug, Clone)]
pub(crate) struct CancelRule {
    pub event: String,
    pub expr: Option<Expr>,
    /// Time string or RFC 3339 date, counted from the run's start.
    pub timeout: Option<String>,
}

/// A function as registered.
#[derive(Debug)]
pub(crate) struct FunctionDef {
    /// Composite id `<app>-<fn>`.
    pub slug: String,
    pub name: String,
    /// Stable UUID derived from app and slug (`ctx.fn_id`).
    pub uuid: String,
    pub app: String,
    pub app_uuid: String,
    /// The step URL (`runtime.url`).
    pub url: url::Url,
    pub triggers: Vec<EventTrigger>,
    pub crons: Vec<CronSchedule>,
    pub retries: u32,
    pub cancel: Vec<CancelRule>,
    /// Flow-control settings (applied by [`super::flow`]).
    pub flow: Arc<super::flow::FlowConfig>,
    /// The function object as registered.
    pub config: Value,
}

/// An app as registered.
#[derive(Debug, Clone)]
pub(crate) struct AppDef {
    pub name: String,
    pub uuid: String,
    pub url: String,
    pub sdk: Option<String>,
    pub framework: Option<String>,
    pub functions: Vec<Arc<FunctionDef>>,
    /// Canonical JSON of what matters for execution, to detect unchanged re-syncs.
    pub checksum: String,
    pub synced_at: DateTime<Utc>,
}

impl AppDef {
    pub(crate) fn view(&self) -> AppView {
        AppView {
            id: self.name.clone(),
            url: self.url.clone(),
            sdk: self.sdk.clone(),
            framework: self.framework.clone(),
            synced_at: self.synced_at,
            functions: self
                .functions
                .iter()
                .map(|f| FunctionView {
                    id: f.slug.clone(),
                    name: f.name.clone(),
                    uuid: f.uuid.clone(),
                    url: f.url.to_string(),
                    retries: f.retries,
                    triggers: f.config.get("triggers").cloned().unwrap_or(Value::Null),
                })
                .collect(),
        }
    }
}

/// A synced app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppView {
    /// The app id (`appName` of the register payload).
    pub id: String,
    /// The URL the app reported.
    pub url: String,
    /// The SDK it reported (`js:v4.24.0`, `rust:v0.1.0`, …).
    pub sdk: Option<String>,
    /// The framework it reported.
    pub framework: Option<String>,
    /// When it was last synced (executor clock).
    pub synced_at: DateTime<Utc>,
    /// Its functions.
    pub functions: Vec<FunctionView>,
}

/// A registered function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionView {
    /// Composite id (`<app id>-<function id>`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The UUID sent as `ctx.fn_id`.
    pub uuid: String,
    /// The step URL the executor calls.
    pub url: String,
    /// Retries after the first attempt.
    pub retries: u32,
    /// Triggers as registered.
    pub triggers: Value,
}

/// A deterministic UUID (name-based, SHA-1, RFC 4122 version 5 layout) for `parts`.
pub(crate) fn stable_uuid(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Parses and validates a register payload. On failure returns every problem found.
pub(crate) fn parse_app(payload: &Value, now: DateTime<Utc>) -> Result<AppDef, Vec<String>> {
    if !payload.is_object() {
        return Err(vec!["the register payload must be a JSON object".into()]);
    }
    if payload
        .get("functions")
        .is_some_and(|f| !f.is_null() && !f.is_array())
    {
        return Err(vec!["`functions` must be an array".into()]);
    }
    // Functions stay raw here: each is read (and reported) on its own, and the checksum and
    // `FunctionDef::config` keep exactly what was sent.
    let req: RegisterRequest<Value> = serde_path_to_error::deserialize(payload)
        .map_err(|e| vec![format!("invalid register payload: {}", type_error(&e))])?;
    let name = req.app_name.trim();
    if name.is_empty() {
        return Err(vec![
            "App ID required (`appName` is missing or empty)".into()
        ]);
    }
    let app_uuid = stable_uuid(&["app", name]);
    let mut errors = Vec::new();
    let mut functions: Vec<Arc<FunctionDef>> = Vec::new();
    for (i, f) in req.functions.iter().enumerate() {
        match parse_function(f, name, &app_uuid) {
            Ok(def) => {
                if functions.iter().any(|g| g.slug == def.slug) {
                    errors.push(format!("function `{}`: duplicate function id", def.slug));
                } else {
                    functions.push(Arc::new(def));
                }
            }
            Err(errs) => {
                let label = f
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|s| format!("function `{s}`"))
                    .unwrap_or_else(|| format!("function #{i}"));
                errors.extend(errs.into_iter().map(|e| format!("{label}: {e}")));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let checksum = serde_json_canonicalizer::to_string(&serde_json::json!({
        "url": req.url,
        "functions": req.functions,
    }))
    .unwrap_or_default();
    Ok(AppDef {
        name: name.to_owned(),
        uuid: app_uuid,
        url: req.url,
        sdk: req.sdk,
        framework: req.framework,
        functions,
        checksum,
        synced_at: now,
    })
}

/// A value of the wrong JSON type, named by its path (`triggers[0].event`).
fn type_error(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    format!("`{}`: {}", e.path(), e.inner())
}

/// Reads one function object into the shared [`FunctionConfig`], then validates it.
fn parse_function(raw: &Value, app: &str, app_uuid: &str) -> Result<FunctionDef, Vec<String>> {
    let Some(obj) = raw.as_object() else {
        return Err(vec!["a function must be a JSON object".into()]);
    };
    let f: FunctionConfig =
        serde_path_to_error::deserialize(raw).map_err(|e| vec![type_error(&e)])?;
    let mut errors = Vec::new();
    if f.id.is_empty() {
        errors.push("function `id` is required".into());
    }
    if f.name.trim().is_empty() {
        errors.push("A function name is required".into());
    }
    let (triggers, crons) = parse_triggers(&f.triggers, &mut errors);
    let url = step_url(&f, &mut errors);
    let cancel = parse_cancel(f.cancel.as_deref().unwrap_or_default(), &mut errors);
    // Other expressions the server compiles; the executor does not apply these settings but
    // still refuses what the server would refuse.
    for (what, src) in other_expressions(&f) {
        if let Err(e) = Expr::compile(&src) {
            errors.push(format!("{what}: {e}"));
        }
    }
    let flow = super::flow::FlowConfig::parse(obj).unwrap_or_else(|errs| {
        for e in errs {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        Default::default()
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(url) = url else {
        return Err(vec!["missing step URL".into()]);
    };
    Ok(FunctionDef {
        uuid: stable_uuid(&["fn", app, &f.id]),
        retries: retries(&f),
        slug: f.id,
        name: f.name,
        app: app.to_owned(),
        app_uuid: app_uuid.to_owned(),
        url,
        triggers,
        crons,
        cancel,
        flow: Arc::new(flow),
        config: raw.clone(),
    })
}

/// Compiles an expression unless it is blank (a blank one is absent); a failure is reported as
/// `<what>: <error>`.
/// Checks an optional expression with the server's policy for where it is used; a refusal is
/// reported in the server's words, after `what`.
fn check_opt(
    what: &str,
    src: Option<&str>,
    policy: Policy,
    errors: &mut Vec<String>,
) -> Option<Expr> {
    let src = src.filter(|s| !s.trim().is_empty())?;
    Expr::check(src, policy)
        .map_err(|e| {
            let message = e.server_message().unwrap_or_else(|| e.to_string());
            errors.push(format!("{what}: {message}"));
        })
        .ok()
}

/// Event triggers and cron schedules.
fn parse_triggers(
    list: &[wire::Trigger],
    errors: &mut Vec<String>,
) -> (Vec<EventTrigger>, Vec<CronSchedule>) {
    let mut triggers = Vec::new();
    let mut crons = Vec::new();
    if list.len() > 10 {
        errors.push(format!(
            "at most 10 triggers are allowed, found {}",
            list.len()
        ));
    }
    for (i, t) in list.iter().enumerate() {
        if list[..i].contains(t) {
            errors.push(format!("trigger #{i} is a duplicate"));
            continue;
        }
        match (&t.event, &t.cron) {
            (Some(ev), None) => {
                if ev.is_empty() || ev.len() > 255 {
                    errors.push(format!(
                        "trigger #{i}: event name must be 1 to 255 characters"
                    ));
                }
                let what = format!("trigger #{i} expression: invalid trigger expression on '{ev}'");
                triggers.push(EventTrigger {
                    event: ev.clone(),
                    expr: check_opt(&what, t.expression.as_deref(), Policy::Default, errors),
                });
            }
            (None, Some(src)) => match CronSchedule::parse(src) {
                Ok(s) => crons.push(s),
                Err(e) => errors.push(format!("trigger #{i}: {e}")),
            },
            _ => errors.push(format!(
                "trigger #{i} must have exactly one of `event` or `cron`"
            )),
        }
    }
    (triggers, crons)
}

/// The URL of the one step: http or https, or ws/wss for an app served over connect (its
/// requests go to a connected worker, see [`crate::connect`]).
fn step_url(f: &FunctionConfig, errors: &mut Vec<String>) -> Option<url::Url> {
    let Some(step) = f.step() else {
        errors.push("Functions must contain one step".into());
        return None;
    };
    let raw = step.runtime.url.as_str();
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https" | "ws" | "wss") => Some(u),
        Ok(u) => {
            errors.push(format!(
                "step runtime URL scheme `{}` is not supported by the local executor (http, https, or ws/wss over connect)",
                u.scheme()
            ));
            None
        }
        Err(_) => {
            errors.push(format!("step runtime URL `{raw}` is not a valid URL"));
            None
        }
    }
}

/// Retries: the step's `retries.attempts`, else the function-level `retries`, clamped to
/// [`MAX_RETRIES`]; [`DEFAULT_RETRIES`] when neither is set.
fn retries(f: &FunctionConfig) -> u32 {
    f.step()
        .and_then(|s| s.retries)
        .and_then(|r| r.attempts)
        .or(f.retries)
        .map(|r| r.clamp(0, i64::from(MAX_RETRIES)) as u32)
        .unwrap_or(DEFAULT_RETRIES)
}

/// Cancellation rules.
fn parse_cancel(list: &[wire::Cancel], errors: &mut Vec<String>) -> Vec<CancelRule> {
    if list.len() > 5 {
        errors.push(format!(
            "at most 5 cancellation rules are allowed, found {}",
            list.len()
        ));
    }
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        if c.event.is_empty() {
            errors.push(format!("cancel #{i}: `event` is required"));
            continue;
        }
        let what = format!("cancel #{i} `if`: Cancellation expression is invalid");
        let expr = check_opt(&what, c.if_expr.as_deref(), Policy::Restrictive, errors);
        if let Some(t) = &c.timeout {
            if let Err(e) = inngest_protocol::timestr::parse_time_or_duration(t, Utc::now()) {
                errors.push(format!("cancel #{i} timeout: {e}"));
            }
        }
        out.push(CancelRule {
            event: c.event.clone(),
            expr,
            timeout: c.timeout.clone(),
        });
    }
    out
}

/// `(what, expression)` for every CEL key of the flow-control settings.
fn other_expressions(f: &FunctionConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |what: &str, v: Option<&String>| {
        if let Some(s) = v.filter(|s| !s.trim().is_empty()) {
            out.push((what.to_owned(), s.clone()));
        }
    };
    match &f.concurrency {
        Some(wire::Concurrency::List(list)) => {
            for (i, c) in list.iter().enumerate() {
                push(&format!("concurrency #{i} key"), c.key.as_ref());
            }
        }
        Some(wire::Concurrency::One(c)) => push("concurrency key", c.key.as_ref()),
        Some(wire::Concurrency::Limit(_)) | None => {}
    }
    push(
        "rateLimit key",
        f.rate_limit.as_ref().and_then(|s| s.key.as_ref()),
    );
    push(
        "throttle key",
        f.throttle.as_ref().and_then(|s| s.key.as_ref()),
    );
    push(
        "debounce key",
        f.debounce.as_ref().and_then(|s| s.key.as_ref()),
    );
    push(
        "singleton key",
        f.singleton.as_ref().and_then(|s| s.key.as_ref()),
    );
    if let Some(b) = &f.batch_events {
        push("batchEvents key", b.key.as_ref());
        push("batchEvents if", b.if_expr.as_ref());
    }
    push(
        "priority run",
        f.priority.as_ref().and_then(|p| p.run.as_ref()),
    );
    push("idempotency", f.idempotency.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(functions: Value) -> Value {
        json!({"url": "http://127.0.0.1:3000/api/inngest", "appName": "app", "functions": functions, "sdk": "rust:v0.1.0"})
    }

    fn func(extra: Value) -> Value {
        let mut f = json!({
            "id": "app-f", "name": "f", "triggers": [{"event": "a/b"}],
            "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:3000/api/inngest?fnId=app-f&stepId=step"}}}
        });
        if let (Some(o), Some(e)) = (f.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        f
    }

    #[test]
    fn parses_a_valid_app_with_defaults() {
        let app = parse_app(&payload(json!([func(json!({}))])), Utc::now()).unwrap();
        assert_eq!(app.name, "app");
        let f = &app.functions[0];
        assert_eq!(f.slug, "app-f");
        assert_eq!(f.retries, DEFAULT_RETRIES);
        assert_eq!(f.uuid.len(), 36);
        assert_eq!(f.uuid, stable_uuid(&["fn", "app", "app-f"]));
        assert!(f.triggers[0].matches("a/b", &json!({})));
        assert!(!f.triggers[0].matches("a/c", &json!({})));
    }

    #[test]
    fn retries_come_from_the_step_and_are_clamped() {
        let f = func(
            json!({"steps": {"step": {"id": "step", "runtime": {"url": "http://x/api"}, "retries": {"attempts": 99}}}}),
        );
        let app = parse_app(&payload(json!([f])), Utc::now()).unwrap();
        assert_eq!(app.functions[0].retries, MAX_RETRIES);
        let f = func(json!({"retries": 2}));
        let app = parse_app(&payload(json!([f])), Utc::now()).unwrap();
        assert_eq!(app.functions[0].retries, 2);
    }

    #[test]
    fn invalid_expressions_and_crons_are_sync_errors() {
        let f = func(
            json!({"triggers": [{"event": "a/b", "expression": "event.data.x =="}, {"cron": "61 * * * *"}],
                             "cancel": [{"event": "c/d", "if": "nope.x == 1"}]}),
        );
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("trigger #0 expression"), "{errs:?}");
        assert!(errs[1].contains("trigger #1"), "{errs:?}");
        assert!(errs[2].contains("cancel #0"), "{errs:?}");
        assert!(errs.iter().all(|e| e.starts_with("function `app-f`")));
    }

    #[test]
    fn structural_errors() {
        let errs = parse_app(&json!({"appName": ""}), Utc::now()).unwrap_err();
        assert!(errs[0].contains("App ID required"));
        let f = func(json!({"name": "", "steps": {}}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("name is required")));
        assert!(errs.iter().any(|e| e.contains("one step")));
        let errs = parse_app(
            &payload(json!([func(json!({})), func(json!({}))])),
            Utc::now(),
        )
        .unwrap_err();
        assert!(errs[0].contains("duplicate"));
        let f = func(json!({"concurrency": [{"limit": 1, "key": "event.data.("}]}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert!(errs[0].contains("concurrency #0 key"));
    }

    #[test]
    fn wrongly_typed_values_are_refused_by_path() {
        let f = func(json!({"triggers": [{"event": 5}]}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert_eq!(
            errs,
            ["function `app-f`: `triggers[0].event`: invalid type: integer `5`, expected a string"]
        );
        let errs = parse_app(&payload(json!("nope")), Utc::now()).unwrap_err();
        assert_eq!(errs, ["`functions` must be an array"]);
        let errs = parse_app(&payload(json!([7])), Utc::now()).unwrap_err();
        assert_eq!(errs, ["function #0: a function must be a JSON object"]);
        let f = func(json!({"triggers": [{"event": "a", "cron": "* * * * *"}, {}]}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs
            .iter()
            .all(|e| e.contains("exactly one of `event` or `cron`")));
        let f = func(json!({"cancel": [{"if": "true"}]}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert_eq!(errs, ["function `app-f`: cancel #0: `event` is required"]);
    }

    #[test]
    fn accepts_the_captured_js_payload() {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../inngest-e2e/tests/fixtures/captures/classic/sdk-0001-POST-_fn_register.json"
        );
        let capture: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let app = parse_app(&capture["request"]["json"], Utc::now()).unwrap();
        assert_eq!(app.name, "js-capture-app");
        assert_eq!(app.sdk.as_deref(), Some("js:v4.24.0"));
        let retries: Vec<(&str, u32)> = app
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.retries))
            .collect();
        assert_eq!(
            retries,
            [
                ("hello", 4),
                ("waiter", 4),
                ("wait-timeout", 4),
                ("flaky", 2),
                ("fails-hard", 3),
                ("step-always-fails", 1),
                ("orchestrator", 4),
                ("child", 4)
            ]
        );
        assert_eq!(
            app.functions[0].url.as_str(),
            "http://localhost:3939/api/inngest?fnId=js-capture-app-hello&stepId=step"
        );
    }

    #[test]
    fn concurrency_may_be_a_number_or_one_object() {
        let f = func(json!({"concurrency": 3}));
        assert!(parse_app(&payload(json!([f])), Utc::now()).is_ok());
        let f = func(json!({"concurrency": {"limit": 1, "key": "event.data.("}}));
        let errs = parse_app(&payload(json!([f])), Utc::now()).unwrap_err();
        assert!(errs[0].contains("concurrency key"), "{errs:?}");
    }

    #[test]
    fn wildcard_event_names() {
        assert!(name_matches("app/*", "app/x"));
        assert!(!name_matches("app/*", "other/x"));
        assert!(name_matches("app/x", "app/x"));
    }
}
