//! Events in: validation and normalization, storage (deduplicated by id), and routing. Routing
//! an event, in order: resumes the waits it matches, delivers the result of an invoked
//! function (`inngest/function.finished` with a `correlation_id`), applies cancellation rules,
//! then starts the functions it triggers (names and `if` expressions, or the function an
//! `inngest/function.invoked` event names) through [`crate::flow_control`].

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::event_log::sent_id;
use crate::expr::Vars;
use crate::flow_control::{admit, Trigger};
use crate::lifecycle::{cancel_run, resolve_pending, Resolution};
use crate::registry::FunctionDef;
use crate::shared::{new_ulid, Actions, State, EVENT_FINISHED, EVENT_INVOKED};
use crate::state::{HistoryKind, Pending, PendingKind, RunStatus, StepStatus, StoredEvent};
use crate::ExecutorError;

/// Validates and normalizes events from the outside world (the Event API, [`crate::Executor::send`]).
pub(crate) fn normalize_external(
    events: Vec<Value>,
    now: DateTime<Utc>,
) -> Result<Vec<Value>, ExecutorError> {
    let many = events.len() > 1;
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            normalize_event(e, now, true).map_err(|m| {
                ExecutorError::InvalidEvent(if many { format!("event #{i}: {m}") } else { m })
            })
        })
        .collect()
}

/// The internal id of the `index`-th event of a request: from the
/// `X-Inngest-Event-Id-Seed` when the SDK sent one, else a fresh ULID.
pub(crate) fn external_id(seed: Option<(u64, u128)>, index: usize, now: DateTime<Utc>) -> String {
    match seed {
        Some((ms, entropy)) => {
            // The real server adds the event's index + 1 to the entropy (the captured seed
            // `1795843709734,zohWT3KnyYgFjg==` gave `01M8GA0PS6ST45CKVJMZ4RG1CF` for the
            // first event).
            ulid::Ulid::from_parts(ms, entropy.wrapping_add(index as u128 + 1)).to_string()
        }
        None => new_ulid(now),
    }
}

/// Stores one event (unless its id was seen before) and routes it. Returns its id.
pub(crate) fn accept(
    st: &mut State,
    mut ev: Value,
    internal_id: String,
    now: DateTime<Utc>,
    actions: &mut Actions,
) -> String {
    if let Some(uid) = sent_id(&ev) {
        if let Some(seen) = st.event(uid) {
            tracing::debug!("duplicate event id: not triggering again");
            return seen.internal_id.clone();
        }
    }
    if let Some(seen) = st.event(&internal_id) {
        return seen.internal_id.clone();
    }
    if sent_id(&ev).is_none() {
        ev["id"] = Value::String(internal_id.clone());
    }
    let seq = st.events.push(StoredEvent {
        internal_id: internal_id.clone(),
        event: ev,
        received_at: now,
    });
    route(st, seq, now, actions);
    internal_id
}

/// An event being routed.
struct Incoming {
    event: Value,
    internal_id: String,
    name: String,
}

/// Applies an event: resumes waits and invokes, cancels runs, starts triggered runs.
fn route(st: &mut State, seq: u64, now: DateTime<Utc>, actions: &mut Actions) {
    let Some(stored) = st.events.get(seq) else {
        return;
    };
    let event = stored.event.clone();
    let name = event
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let ev = Incoming {
        internal_id: stored.internal_id.clone(),
        event,
        name,
    };
    tracing::debug!(event = %ev.name, id = %ev.internal_id, "event received");
    resume_waits(st, &ev, now, actions);
    if ev.name == EVENT_FINISHED {
        deliver_invoke_result(st, &ev.event, now, actions);
    }
    apply_cancellations(st, &ev, now, actions);
    if ev.name == EVENT_INVOKED {
        start_invoked(st, ev, now, actions);
    } else {
        let matching: Vec<Arc<FunctionDef>> = st
            .functions
            .values()
            .filter(|f| f.triggers.iter().any(|t| t.matches(&ev.name, &ev.event)))
            .cloned()
            .collect();
        for function in matching {
            let trigger = Trigger {
                function,
                event: ev.event.clone(),
                event_id: ev.internal_id.clone(),
                correlation: None,
                invoked: false,
            };
            admit(st, trigger, now, actions);
        }
    }
}

/// Step 1: Resumes the waits for this event whose `if` holds.
fn resume_waits(st: &mut State, ev: &Incoming, now: DateTime<Utc>, actions: &mut Actions) {
    let mut resumes = Vec::new();
    for run_id in &st.run_order {
        let Some(run) = st.runs.get(run_id) else {
            continue;
        };
        if run.status != RunStatus::Running {
            continue;
        }
        for (step, p) in &run.pending {
            let PendingKind::Wait { event, expr } = &p.kind else {
                continue;
            };
            if *event != ev.name {
                continue;
            }
            let ok = match expr {
                None => true,
                Some(expr) => {
                    let vars = Vars::new().with_event(&run.event).with_async(&ev.event);
                    expr.eval_bool(&vars).unwrap_or_else(|_| {
                        tracing::debug!(expression = %expr, "wait expression could not be evaluated; no match");
                        false
                    })
                }
            };
            if ok {
                resumes.push((run_id.clone(), step.clone()));
            }
        }
    }
    for (run_id, step) in resumes {
        if let Some(run) = st.runs.get_mut(&run_id) {
            let resolution = Resolution {
                memo: ev.event.clone(),
                status: StepStatus::Completed,
                kind: HistoryKind::Resumed,
                message: format!("event `{}` ({}) matched the wait", ev.name, ev.internal_id),
            };
            resolve_pending(run, &step, resolution, now, actions);
        }
    }
}

/// Step 2: Hands the result of an invoked function to the run waiting for it.
fn deliver_invoke_result(st: &mut State, ev: &Value, now: DateTime<Utc>, actions: &mut Actions) {
    let data = ev.get("data").cloned().unwrap_or(Value::Null);
    let Some(cid) = data.get("correlation_id").and_then(Value::as_str) else {
        return;
    };
    let Some((run_id, step)) = cid.split_once('.') else {
        return;
    };
    let Some(run) = st.runs.get_mut(run_id) else {
        return;
    };
    let waiting = run.status == RunStatus::Running
        && matches!(run.pending.get(step), Some(Pending { kind: PendingKind::Invoke { correlation_id }, .. }) if correlation_id == cid);
    if !waiting {
        return;
    }
    let (memo, status) = match data.get("error") {
        Some(err) if !err.is_null() => (json!({ "error": err }), StepStatus::Failed),
        _ => (
            json!({ "data": data.get("result").cloned().unwrap_or(Value::Null) }),
            StepStatus::Completed,
        ),
    };
    let resolution = Resolution {
        memo,
        status,
        kind: HistoryKind::Resumed,
        message: "the invoked function finished".into(),
    };
    let step = step.to_owned();
    resolve_pending(run, &step, resolution, now, actions);
}

/// Step 3: Cancels the running runs one of whose cancellation rules the event matches.
fn apply_cancellations(st: &mut State, ev: &Incoming, now: DateTime<Utc>, actions: &mut Actions) {
    let mut cancels = Vec::new();
    for run_id in &st.run_order {
        let Some(run) = st.runs.get(run_id) else {
            continue;
        };
        if run.status != RunStatus::Running {
            continue;
        }
        for rule in run.cancel_rules() {
            if rule.event != ev.name {
                continue;
            }
            if let Some(t) = &rule.timeout {
                match inngest_protocol::timestr::parse_time_or_duration(t, run.started_at) {
                    Ok(deadline) if now > deadline => continue,
                    Err(_) => continue,
                    _ => {}
                }
            }
            let ok = match &rule.expr {
                None => true,
                Some(expr) => expr
                    .eval_bool(&Vars::new().with_event(&run.event).with_async(&ev.event))
                    .unwrap_or(false),
            };
            if ok {
                cancels.push(run_id.clone());
                break;
            }
        }
    }
    let name = &ev.name;
    for run_id in cancels {
        if let Some(run) = st.runs.get_mut(&run_id) {
            cancel_run(
                run,
                format!("function cancelled by event `{name}`"),
                format!("cancelled by event `{name}` ({})", ev.internal_id),
                now,
                actions,
            );
        }
    }
}

/// Step 4: Starts the function an `inngest/function.invoked` event names, or answers the invoker
/// with a failure when there is no such function.
fn start_invoked(st: &mut State, ev: Incoming, now: DateTime<Utc>, actions: &mut Actions) {
    let meta = ev
        .event
        .pointer("/data/_inngest")
        .cloned()
        .unwrap_or(Value::Null);
    let fn_id = meta
        .get("fn_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let correlation = meta
        .get("correlation_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(function) = st.function(&fn_id) {
        let trigger = Trigger {
            function,
            event: ev.event,
            event_id: ev.internal_id,
            correlation,
            invoked: true,
        };
        admit(st, trigger, now, actions);
        return;
    }
    tracing::warn!(function = %fn_id, "invoke of an unknown function");
    let mut data = json!({
        "function_id": fn_id,
        "error": {"name": "Error", "message": format!("could not find function with ID: {fn_id}")},
        "event": ev.event,
        "events": [ev.event],
        "_inngest": {"status": "Failed"},
    });
    if let Some(cid) = correlation {
        data["correlation_id"] = Value::String(cid);
    }
    actions.events.push(json!({
        "name": EVENT_FINISHED,
        "data": data,
        "ts": now.timestamp_millis(),
    }));
}

/// Validates and normalizes an event: `name`, `data` (object), `ts`, `user`, optional `id`/`v`.
pub(crate) fn normalize_event(
    e: Value,
    now: DateTime<Utc>,
    external: bool,
) -> Result<Value, String> {
    let Value::Object(mut obj) = e else {
        return Err("an event must be a JSON object".into());
    };
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err("event `name` is required".into()),
    };
    if external && name.starts_with(inngest_protocol::wire::RESERVED_EVENT_PREFIX) {
        return Err(format!(
            "event name `{name}` is reserved: names starting with `inngest/` cannot be sent"
        ));
    }
    let mut data = match obj.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err("event `data` must be an object".into()),
    };
    if external {
        data.remove("_inngest");
    }
    let ts = match obj.get("ts") {
        None | Some(Value::Null) => now.timestamp_millis(),
        Some(v) => v
            .as_i64()
            .filter(|t| *t > 0)
            .ok_or("event `ts` must be a positive integer (unix milliseconds)")?,
    };
    let mut out = Map::new();
    out.insert("name".into(), Value::String(name));
    out.insert("data".into(), Value::Object(data));
    out.insert("ts".into(), ts.into());
    match obj.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => {
            out.insert("id".into(), Value::String(s.clone()));
        }
        Some(_) => return Err("event `id` must be a string".into()),
    }
    out.insert(
        "user".into(),
        obj.get("user")
            .filter(|u| u.is_object())
            .cloned()
            .unwrap_or_else(|| json!({})),
    );
    if let Some(Value::String(v)) = obj.get("v") {
        out.insert("v".into(), Value::String(v.clone()));
    }
    Ok(Value::Object(out))
}

/// `X-Inngest-Event-Id-Seed: <ms>,<base64 of 10 bytes>` → (ms, 80-bit entropy).
pub(crate) fn parse_seed(seed: &str) -> Option<(u64, u128)> {
    let (ms, b64) = seed.split_once(',')?;
    let ms: u64 = ms.trim().parse().ok()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    if bytes.len() != 10 {
        return None;
    }
    let mut entropy = 0u128;
    for b in bytes {
        entropy = (entropy << 8) | u128::from(b);
    }
    Some((ms, entropy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        let (ms, e) = parse_seed("1795843709734,zohWT3KnyYgFjg==").unwrap();
        assert_eq!(ms, 1795843709734);
        let id = ulid::Ulid::from_parts(ms, e);
        assert_eq!(id.timestamp_ms(), ms);
        assert!(parse_seed("x,y").is_none());
    }

    #[test]
    fn events_are_normalized() {
        let now = Utc::now();
        let e = normalize_event(
            json!({"name": "a/b", "data": {"_inngest": 1, "x": 2}}),
            now,
            true,
        )
        .unwrap();
        assert_eq!(e["data"], json!({"x": 2}));
        assert_eq!(e["user"], json!({}));
        assert_eq!(e["ts"], now.timestamp_millis());
        assert!(normalize_event(json!({"name": "inngest/function.failed"}), now, true).is_err());
        assert!(normalize_event(json!({"name": "inngest/function.failed"}), now, false).is_ok());
        assert!(normalize_event(json!({"name": ""}), now, true).is_err());
        assert!(normalize_event(json!({"name": "a", "data": 1}), now, true).is_err());
    }
}
