//! Apps and functions as the executor knows them: parsed and validated from a `/fn/register`
//! payload (or an in-band sync answer). Every expression is compiled and every cron parsed here,
//! so a function the executor could not evaluate is a sync error, never a silent mismatch.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
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
    pub fn matches(&self, name: &str, event: &Value) -> bool {
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
    pub fn view(&self) -> AppView {
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
    let mut errors = Vec::new();
    let Some(obj) = payload.as_object() else {
        return Err(vec!["the register payload must be a JSON object".into()]);
    };
    let name = obj
        .get("appName")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or("");
    if name.is_empty() {
        return Err(vec![
            "App ID required (`appName` is missing or empty)".into()
        ]);
    }
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let app_uuid = stable_uuid(&["app", name]);
    let functions_json = match obj.get("functions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err(vec!["`functions` must be an array".into()]),
    };
    let mut functions: Vec<Arc<FunctionDef>> = Vec::new();
    for (i, f) in functions_json.iter().enumerate() {
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
        "url": url,
        "functions": functions_json,
    }))
    .unwrap_or_default();
    Ok(AppDef {
        name: name.to_owned(),
        uuid: app_uuid,
        url,
        sdk: obj.get("sdk").and_then(Value::as_str).map(str::to_owned),
        framework: obj
            .get("framework")
            .and_then(Value::as_str)
            .map(str::to_owned),
        functions,
        checksum,
        synced_at: now,
    })
}

fn parse_function(f: &Value, app: &str, app_uuid: &str) -> Result<FunctionDef, Vec<String>> {
    let mut errors = Vec::new();
    let Some(obj) = f.as_object() else {
        return Err(vec!["a function must be a JSON object".into()]);
    };
    let slug = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if slug.is_empty() {
        errors.push("function `id` is required".into());
    }
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.trim().is_empty() {
        errors.push("A function name is required".into());
    }

    // Triggers.
    let mut triggers = Vec::new();
    let mut crons = Vec::new();
    let trigger_list = match obj.get("triggers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            errors.push("`triggers` must be an array".into());
            Vec::new()
        }
    };
    if trigger_list.len() > 10 {
        errors.push(format!(
            "at most 10 triggers are allowed, found {}",
            trigger_list.len()
        ));
    }
    for (i, t) in trigger_list.iter().enumerate() {
        if trigger_list[..i].contains(t) {
            errors.push(format!("trigger #{i} is a duplicate"));
            continue;
        }
        let event = t.get("event").and_then(Value::as_str);
        let cron = t.get("cron").and_then(Value::as_str);
        match (event, cron) {
            (Some(ev), None) => {
                if ev.is_empty() || ev.len() > 255 {
                    errors.push(format!(
                        "trigger #{i}: event name must be 1 to 255 characters"
                    ));
                }
                let expr = match t.get("expression").and_then(Value::as_str) {
                    Some(src) if !src.trim().is_empty() => {
                        match Expr::check(src, Policy::Default) {
                            Ok(e) => Some(e),
                            Err(e) => {
                                errors.push(format!(
                                "trigger #{i} expression: invalid trigger expression on '{ev}': {}",
                                e.server_message().unwrap_or_else(|| e.to_string())
                            ));
                                None
                            }
                        }
                    }
                    _ => None,
                };
                triggers.push(EventTrigger {
                    event: ev.to_owned(),
                    expr,
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

    // The one step and its URL.
    let mut url = None;
    let mut step_retries = None;
    match obj.get("steps").and_then(Value::as_object) {
        Some(steps) if steps.len() == 1 => {
            let step = steps.values().next().cloned().unwrap_or(Value::Null);
            let raw = step
                .pointer("/runtime/url")
                .and_then(Value::as_str)
                .unwrap_or("");
            match url::Url::parse(raw) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => url = Some(u),
                Ok(u) => errors.push(format!(
                    "step runtime URL scheme `{}` is not supported by the local executor (http or https only)",
                    u.scheme()
                )),
                Err(_) => errors.push(format!("step runtime URL `{raw}` is not a valid URL")),
            }
            step_retries = step.pointer("/retries/attempts").and_then(Value::as_i64);
        }
        _ => errors.push("Functions must contain one step".into()),
    }
    let retries = step_retries
        .or_else(|| obj.get("retries").and_then(Value::as_i64))
        .map(|r| r.clamp(0, i64::from(MAX_RETRIES)) as u32)
        .unwrap_or(DEFAULT_RETRIES);

    // Cancellation rules.
    let mut cancel = Vec::new();
    if let Some(list) = obj.get("cancel") {
        match list.as_array() {
            Some(list) => {
                if list.len() > 5 {
                    errors.push(format!(
                        "at most 5 cancellation rules are allowed, found {}",
                        list.len()
                    ));
                }
                for (i, c) in list.iter().enumerate() {
                    let Some(event) = c.get("event").and_then(Value::as_str) else {
                        errors.push(format!("cancel #{i}: `event` is required"));
                        continue;
                    };
                    let expr = match c.get("if").and_then(Value::as_str) {
                        Some(src) if !src.trim().is_empty() => {
                            match Expr::check(src, Policy::Restrictive) {
                                Ok(e) => Some(e),
                                Err(e) => {
                                    errors.push(format!(
                                        "cancel #{i} `if`: Cancellation expression is invalid: {}",
                                        e.server_message().unwrap_or_else(|| e.to_string())
                                    ));
                                    None
                                }
                            }
                        }
                        _ => None,
                    };
                    let timeout = c.get("timeout").and_then(Value::as_str).map(str::to_owned);
                    if let Some(t) = &timeout {
                        if let Err(e) =
                            inngest_protocol::timestr::parse_time_or_duration(t, Utc::now())
                        {
                            errors.push(format!("cancel #{i} timeout: {e}"));
                        }
                    }
                    cancel.push(CancelRule {
                        event: event.to_owned(),
                        expr,
                        timeout,
                    });
                }
            }
            None if list.is_null() => {}
            None => errors.push("`cancel` must be an array".into()),
        }
    }

    // Other expressions the server compiles; the executor does not apply these settings but
    // still refuses what the server would refuse.
    for (what, src) in other_expressions(obj) {
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
        uuid: stable_uuid(&["fn", app, &slug]),
        slug,
        name,
        app: app.to_owned(),
        app_uuid: app_uuid.to_owned(),
        url,
        triggers,
        crons,
        retries,
        cancel,
        flow: Arc::new(flow),
        config: f.clone(),
    })
}

/// `(what, expression)` for every CEL key of the flow-control settings.
fn other_expressions(obj: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |what: &str, v: Option<&Value>| {
        if let Some(s) = v.and_then(Value::as_str) {
            if !s.trim().is_empty() {
                out.push((what.to_owned(), s.to_owned()));
            }
        }
    };
    match obj.get("concurrency") {
        Some(Value::Array(list)) => {
            for (i, c) in list.iter().enumerate() {
                push(&format!("concurrency #{i} key"), c.get("key"));
            }
        }
        Some(c @ Value::Object(_)) => push("concurrency key", c.get("key")),
        _ => {}
    }
    for section in ["rateLimit", "throttle", "debounce", "singleton"] {
        if let Some(s) = obj.get(section) {
            push(&format!("{section} key"), s.get("key"));
        }
    }
    if let Some(b) = obj.get("batchEvents") {
        push("batchEvents key", b.get("key"));
        push("batchEvents if", b.get("if"));
    }
    if let Some(p) = obj.get("priority") {
        push("priority run", p.get("run"));
    }
    push("idempotency", obj.get("idempotency"));
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
    fn wildcard_event_names() {
        assert!(name_matches("app/*", "app/x"));
        assert!(!name_matches("app/*", "other/x"));
        assert!(name_matches("app/x", "app/x"));
    }
}
