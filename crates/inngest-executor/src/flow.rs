//! Flow-control settings of a function as registered (`idempotency`, `rateLimit`, `throttle`,
//! `concurrency`, `debounce`, `batchEvents`, `singleton`, `timeouts`, `priority`; protocol.md
//! §6.3.1), parsed and checked at sync time, and the records of events they skipped
//! ([`SkipView`]). How they are applied is described and implemented in
//! [`crate::flow_control`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::expr::{Expr, Policy};

/// A concurrency limit of a function.
#[derive(Debug, Clone)]
pub(crate) struct ConcurrencyLimit {
    pub(crate) limit: u32,
    pub(crate) key: Option<Expr>,
    /// `fn`, `env` or `account`.
    pub(crate) scope: String,
}

/// Parsed flow-control settings of a function.
#[derive(Debug, Clone, Default)]
pub(crate) struct FlowConfig {
    pub(crate) concurrency: Vec<ConcurrencyLimit>,
    /// `(limit, period, key, is idempotency)`.
    pub(crate) rate_limit: Option<(u32, Duration, Option<Expr>, bool)>,
    /// `(limit, period, burst, key)`.
    pub(crate) throttle: Option<(u32, Duration, u32, Option<Expr>)>,
    /// `(period, key, timeout)`.
    pub(crate) debounce: Option<(Duration, Option<Expr>, Option<Duration>)>,
    /// `(max size, timeout, key, if)`.
    pub(crate) batch: Option<(usize, Duration, Option<Expr>, Option<Expr>)>,
    /// `(cancel mode, key)`.
    pub(crate) singleton: Option<(bool, Option<Expr>)>,
    pub(crate) start_timeout: Option<Duration>,
    pub(crate) finish_timeout: Option<Duration>,
    pub(crate) priority: Option<Expr>,
}

/// The server's sync-time check for a flow-control expression: it type-checks rate-limit,
/// debounce and batch expressions; concurrency, throttle, idempotency and priority expressions
/// are only parsed there.
fn key_policy(what: &str) -> Policy {
    match what {
        "rateLimit key" | "debounce key" | "batchEvents key" | "batchEvents if" => Policy::Default,
        _ => Policy::Parse,
    }
}

impl FlowConfig {
    /// Whether every run of the function starts at once with no bookkeeping.
    pub(crate) fn is_empty(&self) -> bool {
        self.concurrency.is_empty()
            && self.rate_limit.is_none()
            && self.throttle.is_none()
            && self.debounce.is_none()
            && self.batch.is_none()
            && self.singleton.is_none()
            && self.start_timeout.is_none()
            && self.finish_timeout.is_none()
            && self.priority.is_none()
    }

    /// Parses the flow-control keys of a function object; returns every problem found.
    pub(crate) fn parse(obj: &Map<String, Value>) -> Result<FlowConfig, Vec<String>> {
        let mut errors = Vec::new();
        let mut cfg = FlowConfig::default();
        let expr = |what: &str, v: Option<&Value>, errors: &mut Vec<String>| -> Option<Expr> {
            let src = v.and_then(Value::as_str).map(str::trim)?;
            if src.is_empty() {
                return None;
            }
            Expr::check(src, key_policy(what))
                .map_err(|e| {
                    let msg = e.server_message().unwrap_or_else(|| e.to_string());
                    errors.push(format!("{what}: {msg}"));
                })
                .ok()
        };
        let dur = |what: &str, v: Option<&Value>, errors: &mut Vec<String>| -> Option<Duration> {
            let s = v.and_then(Value::as_str)?;
            inngest_protocol::timestr::parse(s)
                .map_err(|e| errors.push(format!("{what}: {e}")))
                .ok()
        };
        let int = |v: Option<&Value>| v.and_then(Value::as_i64).unwrap_or(0).max(0) as u32;

        let conc: Vec<Value> = match obj.get("concurrency") {
            Some(Value::Array(a)) => a.clone(),
            Some(n @ Value::Number(_)) => vec![json!({ "limit": n })],
            Some(o @ Value::Object(_)) if o.get("limit").is_some() => vec![o.clone()],
            _ => Vec::new(),
        };
        for (i, c) in conc.iter().enumerate() {
            let limit = int(c.get("limit"));
            let key = expr(&format!("concurrency #{i} key"), c.get("key"), &mut errors);
            let scope = c
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("fn")
                .to_owned();
            if scope != "fn" && key.is_none() {
                errors.push(format!(
                    "concurrency #{i}: scope `{scope}` requires a `key`"
                ));
            }
            if limit > 0 {
                cfg.concurrency.push(ConcurrencyLimit { limit, key, scope });
            }
        }
        if let Some(src) = obj.get("idempotency").and_then(Value::as_str) {
            if let Some(key) = expr("idempotency", Some(&Value::from(src)), &mut errors) {
                cfg.rate_limit = Some((1, Duration::from_secs(86_400), Some(key), true));
            }
        }
        if let (None, Some(r)) = (&cfg.rate_limit, obj.get("rateLimit")) {
            let key = expr("rateLimit key", r.get("key"), &mut errors);
            if let Some(period) = dur("rateLimit period", r.get("period"), &mut errors) {
                let limit = int(r.get("limit"));
                if limit == 0 {
                    errors.push("rateLimit limit must be greater than 0".into());
                }
                cfg.rate_limit = Some((limit, period, key, false));
            }
        }
        if let Some(t) = obj.get("throttle") {
            let key = expr("throttle key", t.get("key"), &mut errors);
            if let Some(period) = dur("throttle period", t.get("period"), &mut errors) {
                let limit = int(t.get("limit")).max(1);
                cfg.throttle = Some((limit, period, int(t.get("burst")), key));
            }
        }
        if let Some(d) = obj.get("debounce") {
            let key = expr("debounce key", d.get("key"), &mut errors);
            let timeout = dur("debounce timeout", d.get("timeout"), &mut errors);
            if let Some(period) = dur("debounce period", d.get("period"), &mut errors) {
                cfg.debounce = Some((period, key, timeout));
            }
        }
        if let Some(b) = obj.get("batchEvents") {
            let key = expr("batchEvents key", b.get("key"), &mut errors);
            let cond = expr("batchEvents if", b.get("if"), &mut errors);
            if let Some(timeout) = dur("batchEvents timeout", b.get("timeout"), &mut errors) {
                let size = int(b.get("maxSize")).max(1) as usize;
                cfg.batch = Some((size, timeout, key, cond));
            }
        }
        if let Some(s) = obj.get("singleton") {
            let key = expr("singleton key", s.get("key"), &mut errors);
            let cancel = s.get("mode").and_then(Value::as_str) == Some("cancel");
            cfg.singleton = Some((cancel, key));
        }
        if let Some(t) = obj.get("timeouts") {
            cfg.start_timeout = dur("timeouts start", t.get("start"), &mut errors);
            cfg.finish_timeout = dur("timeouts finish", t.get("finish"), &mut errors);
        }
        if let Some(p) = obj.get("priority") {
            cfg.priority = expr("priority run", p.get("run"), &mut errors);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }
}

/// Why an event started no run of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SkipReason {
    /// An earlier event with the same `idempotency` key started a run in the last 24 h.
    Idempotency,
    /// The function's `rateLimit` for the key was reached.
    RateLimit,
    /// A later event for the same `debounce` key replaced this one.
    Debounced,
    /// A `singleton` run for the key was running (`mode: skip`).
    Singleton,
}

/// An event that did not start a run of a function because of flow control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SkipView {
    /// The event id (as returned by the Event API).
    pub event_id: String,
    /// The function's composite id.
    pub function_id: String,
    /// Why.
    pub reason: SkipReason,
    /// The evaluated key (empty when the setting has no key).
    pub key: String,
    /// When (executor clock).
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_setting() {
        let f = json!({
            "concurrency": [{"limit": 2}, {"limit": 1, "key": "event.data.u", "scope": "env"}],
            "rateLimit": {"limit": 3, "period": "1m"},
            "idempotency": "event.data.id",
            "throttle": {"limit": 0, "period": "10s", "burst": 2},
            "debounce": {"period": "5s", "timeout": "1m"},
            "batchEvents": {"maxSize": 10, "timeout": "5s", "if": "event.data.ok == true"},
            "singleton": {"mode": "cancel"},
            "timeouts": {"start": "1m", "finish": "1h"},
            "priority": {"run": "event.data.vip ? 120 : 0"},
        });
        let cfg = FlowConfig::parse(f.as_object().unwrap()).unwrap();
        assert_eq!(cfg.concurrency.len(), 2);
        assert_eq!(cfg.concurrency[1].scope, "env");
        let (limit, period, _, idem) = cfg.rate_limit.clone().unwrap();
        assert_eq!(
            (limit, period, idem),
            (1, Duration::from_secs(86_400), true)
        );
        let (limit, period, burst, _) = cfg.throttle.clone().unwrap();
        assert_eq!((limit, period, burst), (1, Duration::from_secs(10), 2));
        assert_eq!(cfg.batch.as_ref().unwrap().0, 10);
        assert!(cfg.singleton.as_ref().unwrap().0);
        assert_eq!(cfg.finish_timeout, Some(Duration::from_secs(3600)));
        assert!(!cfg.is_empty());
        assert!(FlowConfig::parse(&Map::new()).unwrap().is_empty());
        let n = json!({"concurrency": 4});
        assert_eq!(
            FlowConfig::parse(n.as_object().unwrap())
                .unwrap()
                .concurrency[0]
                .limit,
            4
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        let f = json!({
            "concurrency": [{"limit": 1, "scope": "env"}],
            "throttle": {"limit": 1, "period": "soon"},
            "rateLimit": {"limit": 0, "period": "1m"},
        });
        let errs = FlowConfig::parse(f.as_object().unwrap()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
