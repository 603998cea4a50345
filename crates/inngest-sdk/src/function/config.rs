//! Function configuration: triggers and flow control, their validation, and their exact
//! `/fn/register` JSON (protocol §6.3).

use std::time::Duration;

use inngest_protocol::expr::Policy;
use inngest_protocol::register as wire;
use inngest_protocol::timestr;

/// What starts a run: an event (optionally filtered by an expression) or a cron schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An event by name, with an optional CEL filter over `event`.
    Event {
        /// Event name, e.g. `shop/order.created`.
        name: String,
        /// Optional expression, e.g. `event.data.amount > 0`.
        expression: Option<String>,
    },
    /// A cron schedule (5 fields, optional `TZ=Area/City ` prefix) with optional jitter.
    Cron {
        /// The cron expression.
        cron: String,
        /// Random delay added to each firing (0 or 1 s–5 min).
        jitter: Option<Duration>,
    },
}

impl Trigger {
    /// Trigger on an event name.
    pub fn event(name: impl Into<String>) -> Self {
        Trigger::Event {
            name: name.into(),
            expression: None,
        }
    }

    /// Trigger on a cron schedule, e.g. `"0 2 * * *"` or `"TZ=Europe/Paris 0 9 * * 1"`.
    pub fn cron(cron: impl Into<String>) -> Self {
        Trigger::Cron {
            cron: cron.into(),
            jitter: None,
        }
    }

    /// Adds a filter expression to an event trigger (ignored on cron triggers).
    pub fn when(self, expr: impl Into<String>) -> Self {
        match self {
            Trigger::Event { name, .. } => Trigger::Event {
                name,
                expression: Some(expr.into()),
            },
            other => other,
        }
    }

    /// Adds jitter to a cron trigger (ignored on event triggers).
    pub fn jitter(self, jitter: Duration) -> Self {
        match self {
            Trigger::Cron { cron, .. } => Trigger::Cron {
                cron,
                jitter: Some(jitter),
            },
            other => other,
        }
    }

    fn to_wire(&self) -> wire::Trigger {
        match self {
            Trigger::Event { name, expression } => {
                let t = wire::Trigger::event(name.clone());
                match expression {
                    Some(e) => t.with_expression(e.clone()),
                    None => t,
                }
            }
            Trigger::Cron { cron, jitter } => {
                let t = wire::Trigger::cron(cron.clone());
                match jitter {
                    Some(j) => t.with_jitter(timestr::format(*j)),
                    None => t,
                }
            }
        }
    }
}

/// Scope of a concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConcurrencyScope {
    /// This function only (default).
    Function,
    /// Every function in the environment sharing the key.
    Env,
    /// Every function in the account sharing the key.
    Account,
}

/// A concurrency limit: at most `limit` steps running at once, optionally per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    limit: u32,
    key: Option<String>,
    scope: Option<ConcurrencyScope>,
}

impl Concurrency {
    /// At most `limit` concurrent steps.
    pub fn new(limit: u32) -> Self {
        Concurrency {
            limit,
            key: None,
            scope: None,
        }
    }
    /// Per-key limit (CEL expression, e.g. `event.data.user_id`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Scope of the limit (`Env` and `Account` require a key).
    pub fn scope(mut self, scope: ConcurrencyScope) -> Self {
        self.scope = Some(scope);
        self
    }
}

/// Hard rate limit: at most `limit` runs per `period` (≤ 24 h), optionally per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    limit: u32,
    period: Duration,
    key: Option<String>,
}

impl RateLimit {
    /// `limit` runs per `period`.
    pub fn new(limit: u32, period: Duration) -> Self {
        RateLimit {
            limit,
            period,
            key: None,
        }
    }
    /// Per-key limit.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Throttle: at most `limit` run starts per `period`, queuing the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    limit: u32,
    period: Duration,
    burst: Option<u32>,
    key: Option<String>,
}

impl Throttle {
    /// `limit` starts per `period`.
    pub fn new(limit: u32, period: Duration) -> Self {
        Throttle {
            limit,
            period,
            burst: None,
            key: None,
        }
    }
    /// Extra starts allowed in a burst.
    pub fn burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }
    /// Per-key throttle.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Debounce: run once `period` after the last event (1 s–7 d), optionally per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Debounce {
    period: Duration,
    key: Option<String>,
    timeout: Option<Duration>,
}

impl Debounce {
    /// Debounce over `period`.
    pub fn new(period: Duration) -> Self {
        Debounce {
            period,
            key: None,
            timeout: None,
        }
    }
    /// Per-key debounce.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Run anyway after this long, even if events keep arriving.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Batch up to `max_size` events (2–100) or wait `timeout` (1–60 s), optionally per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvents {
    max_size: u32,
    timeout: Duration,
    key: Option<String>,
    if_expr: Option<String>,
}

impl BatchEvents {
    /// Batches of at most `max_size`, flushed after `timeout`.
    pub fn new(max_size: u32, timeout: Duration) -> Self {
        BatchEvents {
            max_size,
            timeout,
            key: None,
            if_expr: None,
        }
    }
    /// One batch per key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Only batch events matching this expression.
    pub fn if_expr(mut self, expr: impl Into<String>) -> Self {
        self.if_expr = Some(expr.into());
        self
    }
}

/// Cancel running runs when `event` arrives and `if` holds (`event` = the run's trigger,
/// `async` = the cancelling event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancel {
    event: String,
    if_expr: Option<String>,
    timeout: Option<Duration>,
}

impl Cancel {
    /// Cancel on this event name.
    pub fn new(event: impl Into<String>) -> Self {
        Cancel {
            event: event.into(),
            if_expr: None,
            timeout: None,
        }
    }
    /// Cancel on the event type `E`, named by its [`EventType::NAME`](crate::EventType::NAME).
    pub fn on<E: crate::EventType>() -> Self {
        Cancel::new(E::NAME)
    }
    /// Only when this expression holds, e.g. `async.data.order_id == event.data.order_id`.
    pub fn if_expr(mut self, expr: impl Into<String>) -> Self {
        self.if_expr = Some(expr.into());
        self
    }
    /// Cancel when `field` of the cancelling event equals the same field of the trigger.
    pub fn matching(self, field: &str) -> Self {
        let expr = inngest_protocol::quote::fields_equal(field, field);
        self.if_expr(expr)
    }
    /// Stop listening for the cancel event after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// Start and finish timeouts of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Cancel if the run has not started within this long.
    pub start: Option<Duration>,
    /// Cancel if the run has not finished within this long after starting.
    pub finish: Option<Duration>,
}

/// What a singleton does with a new run while one is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingletonMode {
    /// Skip the new run.
    Skip,
    /// Cancel the running one and start the new one.
    Cancel,
}

/// One run at a time (per key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Singleton {
    mode: SingletonMode,
    key: Option<String>,
}

impl Singleton {
    /// Singleton with this mode.
    pub fn new(mode: SingletonMode) -> Self {
        Singleton { mode, key: None }
    }
    /// Per-key singleton.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// A function configuration is invalid; names the function and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("function `{function}`: invalid `{field}`: {reason}")]
pub struct InvalidFunction {
    /// Function id.
    pub function: String,
    /// Field name as in the register payload.
    pub field: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// Everything the register payload says about one function.
#[derive(Debug, Clone)]
pub(crate) struct FunctionConfig {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub triggers: Vec<Trigger>,
    pub retries: Option<u32>,
    pub concurrency: Vec<Concurrency>,
    pub rate_limit: Option<RateLimit>,
    pub throttle: Option<Throttle>,
    pub debounce: Option<Debounce>,
    pub batch_events: Option<BatchEvents>,
    pub cancel: Vec<Cancel>,
    pub priority: Option<String>,
    pub idempotency: Option<String>,
    pub timeouts: Option<Timeouts>,
    pub singleton: Option<Singleton>,
}

const MAX_RETRIES: u32 = 20;

impl FunctionConfig {
    pub(crate) fn new(id: String) -> Self {
        FunctionConfig {
            id,
            name: None,
            description: None,
            triggers: Vec::new(),
            retries: None,
            concurrency: Vec::new(),
            rate_limit: None,
            throttle: None,
            debounce: None,
            batch_events: None,
            cancel: Vec::new(),
            priority: None,
            idempotency: None,
            timeouts: None,
            singleton: None,
        }
    }

    /// Validates everything the server would reject, plus what cannot work.
    pub(crate) fn validate(&self) -> Result<(), InvalidFunction> {
        let bad = |field: &'static str, reason: String| InvalidFunction {
            function: self.id.clone(),
            field,
            reason,
        };
        if self.id.trim().is_empty() {
            return Err(bad("id", "must not be empty".into()));
        }
        self.validate_triggers().map_err(|r| bad("triggers", r))?;
        if let Some(r) = self.retries {
            if r > MAX_RETRIES {
                return Err(bad("retries", format!("{r} is over the maximum of 20")));
            }
        }
        self.validate_concurrency()
            .map_err(|r| bad("concurrency", r))?;
        self.validate_limits().map_err(|(field, r)| bad(field, r))?;
        self.validate_batch().map_err(|r| bad("batchEvents", r))?;
        self.validate_cancel().map_err(|r| bad("cancel", r))?;
        if let Some(p) = &self.priority {
            check_expr_with(p, Policy::Parse).map_err(|r| bad("priority", r))?;
        }
        if let Some(i) = &self.idempotency {
            check_expr(i).map_err(|r| bad("idempotency", r))?;
        }
        Ok(())
    }

    fn validate_triggers(&self) -> Result<(), String> {
        if self.triggers.len() > 10 {
            return Err("at most 10 triggers".into());
        }
        for (i, t) in self.triggers.iter().enumerate() {
            if self.triggers[..i].contains(t) {
                return Err(format!("duplicate trigger {t:?}"));
            }
            match t {
                Trigger::Event { name, expression } => {
                    if name.is_empty() || name.len() > 255 {
                        return Err("event name must be 1–255 chars".into());
                    }
                    if let Some(e) = expression {
                        check_expr(e)?;
                    }
                }
                Trigger::Cron { cron, jitter } => {
                    check_cron(cron)?;
                    if let Some(j) = jitter {
                        if !j.is_zero()
                            && (*j < Duration::from_secs(1) || *j > Duration::from_secs(300))
                        {
                            return Err("cron jitter must be 0 or 1s–5m".into());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_concurrency(&self) -> Result<(), String> {
        if self.concurrency.len() > 2 {
            return Err("at most 2 limits".into());
        }
        for c in &self.concurrency {
            if c.limit == 0 {
                return Err("limit must be at least 1".into());
            }
            if matches!(
                c.scope,
                Some(ConcurrencyScope::Env | ConcurrencyScope::Account)
            ) && c.key.is_none()
            {
                return Err("env/account scope requires a key".into());
            }
            if let Some(k) = &c.key {
                check_expr_with(k, Policy::Parse)?;
            }
        }
        Ok(())
    }

    /// `rateLimit`, `throttle` and `debounce`: `(field, reason)` of the first problem.
    fn validate_limits(&self) -> Result<(), (&'static str, String)> {
        if let Some(r) = &self.rate_limit {
            if r.limit == 0 {
                return Err(("rateLimit", "limit must be at least 1".into()));
            }
            if r.period.is_zero() || r.period > Duration::from_secs(24 * 3600) {
                return Err(("rateLimit", "period must be 1s–24h".into()));
            }
        }
        if let Some(t) = &self.throttle {
            if t.limit == 0 {
                return Err(("throttle", "limit must be at least 1".into()));
            }
            if t.period < Duration::from_secs(1) || t.period > Duration::from_secs(7 * 86400) {
                return Err(("throttle", "period must be 1s–7d".into()));
            }
        }
        if let Some(d) = &self.debounce {
            if d.period < Duration::from_secs(1) || d.period > Duration::from_secs(7 * 86400) {
                return Err(("debounce", "period must be 1s–7d".into()));
            }
        }
        Ok(())
    }

    fn validate_batch(&self) -> Result<(), String> {
        let Some(b) = &self.batch_events else {
            return Ok(());
        };
        if !(2..=100).contains(&b.max_size) {
            return Err("maxSize must be 2–100".into());
        }
        if b.timeout < Duration::from_secs(1) || b.timeout > Duration::from_secs(60) {
            return Err("timeout must be 1s–60s".into());
        }
        let conflicts = [
            (!self.cancel.is_empty(), "cancel"),
            (self.debounce.is_some(), "debounce"),
            (self.singleton.is_some(), "singleton"),
            (self.priority.is_some(), "priority"),
        ];
        if let Some((_, other)) = conflicts.iter().find(|(on, _)| *on) {
            return Err(format!("cannot be combined with `{other}`"));
        }
        if let Some(e) = &b.if_expr {
            check_expr(e)?;
        }
        Ok(())
    }

    fn validate_cancel(&self) -> Result<(), String> {
        if self.cancel.len() > 5 {
            return Err("at most 5 cancellation rules".into());
        }
        for c in &self.cancel {
            if c.event.is_empty() {
                return Err("event name must not be empty".into());
            }
            if let Some(e) = &c.if_expr {
                check_expr_with(e, Policy::Restrictive)?;
            }
        }
        Ok(())
    }

    /// The registered name: the configured one unless blank (the server refuses an empty
    /// name), else the id.
    fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or(&self.id)
    }

    /// The function object of the register payload.
    pub(crate) fn to_register(&self, app_id: &str, app_url: &str) -> wire::FunctionConfig {
        let slug = format!("{app_id}-{}", self.id);
        let mut f = registered(&slug, self.display_name(), app_url, self.retries);
        f.triggers = self.triggers.iter().map(Trigger::to_wire).collect();
        if !self.concurrency.is_empty() {
            let list = self.concurrency.iter().map(Concurrency::to_wire).collect();
            f.concurrency = Some(wire::Concurrency::List(list));
        }
        f.rate_limit = self.rate_limit.as_ref().map(RateLimit::to_wire);
        f.throttle = self.throttle.as_ref().map(Throttle::to_wire);
        f.debounce = self.debounce.as_ref().map(Debounce::to_wire);
        f.batch_events = self.batch_events.as_ref().map(BatchEvents::to_wire);
        if !self.cancel.is_empty() {
            f.cancel = Some(self.cancel.iter().map(Cancel::to_wire).collect());
        }
        f.priority = self.priority.as_ref().map(wire::Priority::run);
        f.idempotency = self.idempotency.clone();
        f.timeouts = self.timeouts.as_ref().map(Timeouts::to_wire);
        f.singleton = self.singleton.as_ref().map(Singleton::to_wire);
        f
    }

    /// The companion `-failure` function object for an `on_failure` handler.
    pub(crate) fn failure_register(&self, app_id: &str, app_url: &str) -> wire::FunctionConfig {
        let main_slug = format!("{app_id}-{}", self.id);
        let slug = format!("{main_slug}-failure");
        let name = format!("{} (failure)", self.display_name());
        let expression = format!(
            "event.data.function_id == {}",
            inngest_protocol::quote::literal(&serde_json::Value::String(main_slug))
        );
        let mut f = registered(&slug, &name, app_url, Some(1));
        f.triggers =
            vec![wire::Trigger::event("inngest/function.failed").with_expression(expression)];
        f
    }
}

/// A function object with its one step at `app_url` + `fnId=<slug>&stepId=step`.
fn registered(slug: &str, name: &str, app_url: &str, retries: Option<u32>) -> wire::FunctionConfig {
    let sep = if app_url.contains('?') { '&' } else { '?' };
    let url = format!("{app_url}{sep}fnId={}&stepId=step", urlencode(slug));
    let mut f = wire::FunctionConfig::new(slug, name, url);
    if let (Some(r), Some(step)) = (retries, f.step_mut()) {
        step.retries = Some(wire::StepRetries {
            attempts: Some(i64::from(r)),
        });
    }
    f
}

impl Concurrency {
    fn to_wire(&self) -> wire::ConcurrencyLimit {
        let mut c = wire::ConcurrencyLimit::new(i64::from(self.limit));
        c.key = self.key.clone();
        c.scope = self.scope.map(|s| match s {
            ConcurrencyScope::Function => wire::ConcurrencyScope::Fn,
            ConcurrencyScope::Env => wire::ConcurrencyScope::Env,
            ConcurrencyScope::Account => wire::ConcurrencyScope::Account,
        });
        c
    }
}

impl RateLimit {
    fn to_wire(&self) -> wire::RateLimit {
        let mut r = wire::RateLimit::new(i64::from(self.limit), timestr::format(self.period));
        r.key = self.key.clone();
        r
    }
}

impl Throttle {
    fn to_wire(&self) -> wire::Throttle {
        let mut t = wire::Throttle::new(i64::from(self.limit), timestr::format(self.period));
        t.burst = self.burst.map(i64::from);
        t.key = self.key.clone();
        t
    }
}

impl Debounce {
    fn to_wire(&self) -> wire::Debounce {
        let mut d = wire::Debounce::new(timestr::format(self.period));
        d.key = self.key.clone();
        d.timeout = self.timeout.map(timestr::format);
        d
    }
}

impl BatchEvents {
    fn to_wire(&self) -> wire::BatchEvents {
        let mut b =
            wire::BatchEvents::new(i64::from(self.max_size), timestr::format_go(self.timeout));
        b.key = self.key.clone();
        b.if_expr = self.if_expr.clone();
        b
    }
}

impl Cancel {
    fn to_wire(&self) -> wire::Cancel {
        let mut c = wire::Cancel::new(self.event.clone());
        c.if_expr = self.if_expr.clone();
        c.timeout = self.timeout.map(timestr::format);
        c
    }
}

impl Timeouts {
    fn to_wire(&self) -> wire::Timeouts {
        let mut t = wire::Timeouts::default();
        t.start = self.start.map(timestr::format);
        t.finish = self.finish.map(timestr::format);
        t
    }
}

impl Singleton {
    fn to_wire(&self) -> wire::Singleton {
        let mut s = wire::Singleton::new(match self.mode {
            SingletonMode::Skip => wire::SingletonMode::Skip,
            SingletonMode::Cancel => wire::SingletonMode::Cancel,
        });
        s.key = self.key.clone();
        s
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn check_cron(cron: &str) -> Result<(), String> {
    inngest_protocol::cron::validate(cron).map_err(|e| e.to_string())
}

/// Checks an expression the way the server does for a trigger `if`, a batch `if` and the
/// debounce, rate-limit, idempotency and singleton keys (parse and type-check).
fn check_expr(expr: &str) -> Result<(), String> {
    check_expr_with(expr, Policy::Default)
}

/// Checks an expression with the server's policy for where it is used: concurrency keys and
/// `priority.run` are only parsed, `cancel[].if` is checked restrictively.
fn check_expr_with(expr: &str, policy: Policy) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("expression must not be empty".into());
    }
    inngest_protocol::expr::validate_with(expr, policy).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> FunctionConfig {
        let mut c = FunctionConfig::new("charge-card".into());
        c.name = Some("Charge card".into());
        c.triggers = vec![
            Trigger::event("billing/invoice.created").when("event.data.amount > 0"),
            Trigger::cron("TZ=Europe/Paris 0 9 * * 1").jitter(Duration::from_secs(30)),
        ];
        c.retries = Some(5);
        c.concurrency = vec![
            Concurrency::new(10),
            Concurrency::new(1)
                .key("event.data.customer_id")
                .scope(ConcurrencyScope::Env),
        ];
        c.throttle = Some(
            Throttle::new(100, Duration::from_secs(60))
                .burst(10)
                .key("event.data.customer_id"),
        );
        c.debounce = Some(
            Debounce::new(Duration::from_secs(30))
                .key("event.data.invoice_id")
                .timeout(Duration::from_secs(300)),
        );
        c.cancel = vec![Cancel::new("billing/invoice.voided")
            .matching("data.invoice_id")
            .timeout(Duration::from_secs(7 * 86400))];
        c.priority = Some("event.data.vip ? 120 : 0".into());
        c.idempotency = Some("event.data.invoice_id".into());
        c.timeouts = Some(Timeouts {
            start: Some(Duration::from_secs(600)),
            finish: Some(Duration::from_secs(3600)),
        });
        c.singleton = Some(Singleton::new(SingletonMode::Skip).key("event.data.customer_id"));
        c
    }

    #[test]
    fn register_json_matches_the_protocol_example() {
        let registered = full().to_register("billing", "https://billing.example.com/api/inngest");
        let got = serde_json::to_value(&registered).unwrap();
        let want = json!({
          "id": "billing-charge-card",
          "name": "Charge card",
          "triggers": [
            { "event": "billing/invoice.created", "expression": "event.data.amount > 0" },
            { "cron": "TZ=Europe/Paris 0 9 * * 1", "jitter": "30s" }
          ],
          "steps": { "step": {
              "id": "step", "name": "step",
              "runtime": { "type": "http", "url": "https://billing.example.com/api/inngest?fnId=billing-charge-card&stepId=step" },
              "retries": { "attempts": 5 } } },
          "concurrency": [ { "limit": 10 }, { "limit": 1, "key": "event.data.customer_id", "scope": "env" } ],
          "throttle": { "limit": 100, "period": "1m", "burst": 10, "key": "event.data.customer_id" },
          "debounce": { "period": "30s", "key": "event.data.invoice_id", "timeout": "5m" },
          "cancel": [ { "event": "billing/invoice.voided", "if": "event.data.invoice_id == async.data.invoice_id", "timeout": "7d" } ],
          "priority": { "run": "event.data.vip ? 120 : 0" },
          "idempotency": "event.data.invoice_id",
          "timeouts": { "start": "10m", "finish": "1h" },
          "singleton": { "key": "event.data.customer_id", "mode": "skip" }
        });
        assert_eq!(got, want);
        // Byte for byte what the JSON value (sorted keys) serializes to.
        assert_eq!(
            serde_json::to_string(&registered).unwrap(),
            serde_json::to_string(&want).unwrap()
        );
        full().validate().unwrap();
    }

    #[test]
    fn failure_companion_function() {
        let got = full().failure_register("billing", "http://h/api/inngest");
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            json!({
              "id": "billing-charge-card-failure",
              "name": "Charge card (failure)",
              "triggers": [ { "event": "inngest/function.failed",
                              "expression": "event.data.function_id == \"billing-charge-card\"" } ],
              "steps": { "step": { "id": "step", "name": "step",
                  "runtime": { "type": "http", "url": "http://h/api/inngest?fnId=billing-charge-card-failure&stepId=step" },
                  "retries": { "attempts": 1 } } }
            })
        );
    }

    #[test]
    fn built_json_reads_back_into_the_shared_types() {
        let url = "https://billing.example.com/api/inngest?x=1";
        let mut req = wire::RegisterRequest::new("billing", url, "rust:v0.1.0");
        req.functions = vec![
            full().to_register("billing", url),
            full().failure_register("billing", url),
        ];
        let mut batched = FunctionConfig::new("batched".into());
        batched.triggers.push(Trigger::event("a/b"));
        batched.rate_limit = Some(RateLimit::new(2, Duration::from_secs(3600)).key("event.data.k"));
        batched.batch_events = Some(
            BatchEvents::new(10, Duration::from_secs(5))
                .key("event.data.k")
                .if_expr("event.data.ok"),
        );
        req.functions.push(batched.to_register("billing", url));
        let bytes = serde_json::to_vec(&req).unwrap();
        // Whole, as an SDK reads it back.
        let back: wire::RegisterRequest = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, req);
        // As the executor reads it: the app with raw functions, then each function.
        let app: wire::RegisterRequest<serde_json::Value> = serde_json::from_slice(&bytes).unwrap();
        for (raw, built) in app.functions.iter().zip(&req.functions) {
            let f: wire::FunctionConfig = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(&f, built);
        }
    }

    #[test]
    fn retries_absent_means_no_retries_object() {
        let mut c = FunctionConfig::new("x".into());
        c.triggers.push(Trigger::event("a/b"));
        let j = serde_json::to_value(c.to_register("app", "http://h/api/inngest")).unwrap();
        assert!(j["steps"]["step"].get("retries").is_none());
        assert_eq!(j["name"], "x");
    }

    #[test]
    fn invalid_configs_name_function_and_field() {
        type Mutation = Box<dyn Fn(&mut FunctionConfig)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|c| c.retries = Some(21)), "retries"),
            (
                Box::new(|c| {
                    c.concurrency = vec![
                        Concurrency::new(1),
                        Concurrency::new(2),
                        Concurrency::new(3),
                    ]
                }),
                "concurrency",
            ),
            (
                Box::new(|c| {
                    c.concurrency = vec![Concurrency::new(1).scope(ConcurrencyScope::Env)]
                }),
                "concurrency",
            ),
            (
                Box::new(|c| {
                    c.rate_limit = Some(RateLimit::new(1, Duration::from_secs(25 * 3600)))
                }),
                "rateLimit",
            ),
            (
                Box::new(|c| c.debounce = Some(Debounce::new(Duration::from_millis(500)))),
                "debounce",
            ),
            (
                Box::new(|c| c.batch_events = Some(BatchEvents::new(1, Duration::from_secs(5)))),
                "batchEvents",
            ),
            (
                Box::new(|c| {
                    c.batch_events = Some(BatchEvents::new(10, Duration::from_secs(5)));
                    c.cancel = vec![Cancel::new("x")];
                }),
                "batchEvents",
            ),
            (
                Box::new(|c| c.cancel = (0..6).map(|i| Cancel::new(format!("e{i}"))).collect()),
                "cancel",
            ),
            (
                Box::new(|c| c.triggers.push(Trigger::cron("not a cron"))),
                "triggers",
            ),
            (
                Box::new(|c| c.triggers.push(Trigger::event("a/b"))),
                "triggers", // duplicate of the base trigger
            ),
        ];
        for (mutate, field) in cases {
            let mut c = FunctionConfig::new("my-fn".into());
            c.triggers.push(Trigger::event("a/b"));
            mutate(&mut c);
            let err = c.validate().unwrap_err();
            assert_eq!(err.function, "my-fn");
            assert_eq!(err.field, field, "{err}");
            assert!(err.to_string().starts_with("function `my-fn`: invalid"));
        }
    }
}
