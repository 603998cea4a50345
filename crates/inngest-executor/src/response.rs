//! Reading an app's answer the way the real executor does (protocol §8, §13.2): status codes,
//! the `X-Inngest-SDK` check, streamed (201) envelopes, and op arrays parsed and checked up front
//! (unknown op names, missing `error` objects, unparsable durations, timeouts and expressions), so
//! a bad answer is rejected whole and never half applied.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};

use crate::expr::{Expr, Policy};
use crate::gateway::{self, GatewayCall};
use crate::state::HistoryKind;
use inngest_protocol::wire::ErrorObject;
use inngest_protocol::wire::{headers as h, Op, OpCode};

/// Default invoke timeout (the real server's one year, as captured: 365 days).
pub(crate) const INVOKE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);
/// Bounds applied to `Retry-After`, like the real server.
const MIN_RETRY_AFTER: Duration = Duration::from_secs(1);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The raw answer of an app.
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// What an answer means for the run.
pub(crate) enum Outcome {
    /// A 206 with ops.
    Ops(OpsResponse),
    /// A 206 with an empty op array.
    Empty,
    /// A 200: the function returned this value.
    Done(Value),
    /// An error, a failed request or a protocol violation.
    Failure(Failure),
}

/// A 206 answer with at least one op.
pub(crate) struct OpsResponse {
    pub(crate) ops: Vec<ParsedOp>,
    /// `X-Inngest-Req-Version`, when sent.
    pub(crate) version: Option<i64>,
    /// `X-Inngest-No-Retry: true`.
    pub(crate) no_retry: bool,
    /// `Retry-After`, clamped.
    pub(crate) retry_after: Option<Duration>,
}

/// An attempt that failed.
pub(crate) struct Failure {
    /// The error object (the run's error if no retry follows).
    pub(crate) error: Value,
    pub(crate) retriable: bool,
    pub(crate) retry_after: Option<Duration>,
    /// The history line's kind.
    pub(crate) kind: HistoryKind,
    /// The history line's text.
    pub(crate) reason: String,
}

/// An op with everything the executor needs already parsed and checked.
pub(crate) struct ParsedOp {
    pub(crate) op: Op,
    pub(crate) name: String,
    pub(crate) action: OpAction,
}

pub(crate) enum OpAction {
    Run(Value),
    Error(Value),
    Failed(Value),
    Planned,
    Sleep(DateTime<Utc>),
    Wait {
        event: String,
        expr: Option<Expr>,
        until: DateTime<Utc>,
    },
    Invoke {
        function_id: String,
        payload: Map<String, Value>,
        until: DateTime<Utc>,
    },
    Signal {
        signal: String,
        replace: bool,
        until: DateTime<Utc>,
    },
    /// A `Gateway` or `AIGateway` call, made before the answer is applied.
    Gateway(GatewayCall),
    Complete(Value),
    Discovery,
    Nothing,
    Unsupported,
}

// -------------------------------------------------------------------------------------------
// Response classification
// -------------------------------------------------------------------------------------------

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Reads an app's answer the way the real executor does.
pub(crate) fn classify(mut raw: RawResponse, now: DateTime<Utc>) -> Outcome {
    if raw.status == 201 {
        match unwrap_stream(&raw) {
            Ok(inner) => raw = inner,
            Err(reason) => return invalid(reason),
        }
    }
    let has_sdk = raw.headers.contains_key(h::SDK);
    let no_retry =
        header(&raw.headers, h::NO_RETRY).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let retry_after = header(&raw.headers, h::RETRY_AFTER).and_then(|v| parse_retry_after(v, now));
    if (200..300).contains(&raw.status) {
        if !has_sdk {
            return invalid(format!(
                "HTTP {} without X-Inngest-SDK: the response did not come from an Inngest SDK",
                raw.status
            ));
        }
        if raw.status == 206 {
            return match parse_ops(&raw.body, now) {
                Ok(ops) if ops.is_empty() => Outcome::Empty,
                Ok(ops) => Outcome::Ops(OpsResponse {
                    ops,
                    version: header(&raw.headers, h::REQ_VERSION).and_then(|v| v.parse().ok()),
                    no_retry,
                    retry_after,
                }),
                Err(reason) => invalid(reason),
            };
        }
        return Outcome::Done(parse_output(&raw.body));
    }
    let error = if has_sdk {
        match serde_json::from_slice::<Value>(&raw.body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(Value::String(s)) => json!({"name": "Error", "message": s}),
            _ => {
                json!({"name": "Error", "message": format!("HTTP {}: {}", raw.status, snippet(&raw.body))})
            }
        }
    } else {
        json!({"name": "Error", "message": format!("upstream error: HTTP {} from the app (not an SDK response)", raw.status)})
    };
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Outcome::Failure(Failure {
        error,
        retriable: !no_retry,
        retry_after,
        kind: HistoryKind::FunctionError,
        reason: format!(
            "HTTP {}{}: {message}",
            raw.status,
            if no_retry { " (no retry)" } else { "" }
        ),
    })
}

fn invalid(reason: String) -> Outcome {
    Outcome::Failure(Failure {
        error: json!({"name": "Error", "message": reason}),
        retriable: true,
        retry_after: None,
        kind: HistoryKind::InvalidResponse,
        reason,
    })
}

/// The final chunk of a streamed (201) answer, as the real server reads it
/// (`httpdriver.StreamResponse`): header values must be strings, `body` is kept as raw JSON.
#[derive(serde::Deserialize)]
struct StreamEnvelope<'a> {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    /// `None` only when absent: a `null` body is kept as the JSON `null`, like Go's
    /// `json.RawMessage`.
    #[serde(default, borrow, deserialize_with = "present_raw")]
    body: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    headers: Option<std::collections::HashMap<String, String>>,
}

fn present_raw<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<&'de serde_json::value::RawValue>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// A streamed (201) answer: keep-alive bytes, then `{"status", "headers", "body"}`, unwrapped
/// like the real server's `ParseStream`: the whole body is one JSON value (the keep-alive spaces
/// before it and any whitespace after it are skipped as JSON whitespace), a non-null `error` fails
/// the attempt, a `body` that is a JSON string is unquoted once (any other JSON is the body as
/// sent), and the inner `headers` are set over the outer ones, so `X-Inngest-No-Retry`,
/// `Retry-After` and `X-Inngest-Req-Version` are read from them.
fn unwrap_stream(raw: &RawResponse) -> Result<RawResponse, String> {
    let text = String::from_utf8_lossy(&raw.body);
    let envelope: StreamEnvelope<'_> = serde_json::from_str(&text)
        .map_err(|e| format!("streamed (201) response is not a JSON envelope: {e}"))?;
    if let Some(error) = envelope.error {
        return Err(format!("streamed (201) response reports an error: {error}"));
    }
    let status = envelope
        .status
        .ok_or("streamed (201) response has no `status`")?;
    let mut headers = raw.headers.clone();
    for (k, val) in envelope.headers.unwrap_or_default() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&val),
        ) {
            headers.insert(n, v);
        }
    }
    let body = match envelope.body.map(serde_json::value::RawValue::get) {
        None => Bytes::new(),
        Some(json) if json.starts_with('"') => match serde_json::from_str::<String>(json) {
            Ok(unquoted) => Bytes::from(unquoted),
            Err(_) => Bytes::from(json.to_owned()),
        },
        Some(json) => Bytes::from(json.to_owned()),
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// The function's output from a 200 body (a JSON string holding JSON is unwrapped).
fn parse_output(body: &[u8]) -> Value {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => inner,
            _ => Value::String(s),
        },
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
    }
}

const OP_NAMES: &[&str] = &[
    "StepRun",
    "StepError",
    "StepFailed",
    "StepPlanned",
    "Sleep",
    "WaitForEvent",
    "InvokeFunction",
    "RunComplete",
    "Step",
    "AIGateway",
    "Gateway",
    "WaitForSignal",
    "DiscoveryRequest",
    "None",
];

/// Parses a 206 body into ops, checking each one as the real executor would.
pub(crate) fn parse_ops(body: &[u8], now: DateTime<Utc>) -> Result<Vec<ParsedOp>, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("malformed op array: the 206 body is not JSON ({e})"))?;
    let items = match v {
        Value::Array(a) => a,
        obj @ Value::Object(_) => vec![obj],
        _ => return Err("malformed op array: the 206 body must be a JSON array of ops".into()),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_op(i, item, now))
        .collect()
}

/// Parses op `#i`: its name (case-insensitive; `DeferAdd`/`DeferAbort` are ignored,
/// `SyncRunComplete` is unsupported), its shape, and what it asks for.
fn parse_op(i: usize, mut item: Value, now: DateTime<Utc>) -> Result<ParsedOp, String> {
    let Some(obj) = item.as_object_mut() else {
        return Err(format!("malformed op array: op #{i} is not an object"));
    };
    let Some(given) = obj.get("op").and_then(Value::as_str).map(str::to_owned) else {
        return Err(format!("malformed op array: op #{i} has no `op` name"));
    };
    let canonical = OP_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(&given))
        .copied();
    let ignored = ["DeferAdd", "DeferAbort"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&given));
    let unsupported = ["SyncRunComplete"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&given));
    let name = match canonical {
        Some(n) => n,
        None if ignored || unsupported => "None",
        None => return Err(format!("unknown op name `{given}` (op #{i})")),
    };
    obj.insert("op".into(), Value::String(name.to_owned()));
    if !obj.contains_key("id") {
        obj.insert("id".into(), Value::String(String::new()));
    }
    let op: Op =
        serde_json::from_value(item).map_err(|e| format!("malformed op #{i} (`{given}`): {e}"))?;
    if op.id.is_empty() && name != "None" {
        return Err(format!("malformed op #{i} (`{given}`): missing `id`"));
    }
    let action = if unsupported {
        OpAction::Unsupported
    } else if ignored {
        OpAction::Nothing
    } else {
        op_action(i, &given, &op, now)?
    };
    Ok(ParsedOp {
        op,
        name: if ignored || unsupported {
            given
        } else {
            name.to_owned()
        },
        action,
    })
}

/// What a known op asks for, with its options parsed.
fn op_action(i: usize, given: &str, op: &Op, now: DateTime<Utc>) -> Result<OpAction, String> {
    let opts = op.opts.clone().unwrap_or(Value::Null);
    let data = op
        .data
        .as_ref()
        .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
        .unwrap_or(Value::Null);
    let error = |op: &Op| -> Result<Value, String> {
        op.error
            .as_ref()
            .map(error_memo)
            .ok_or_else(|| format!("op #{i} `{given}` has no `error` object"))
    };
    Ok(match op.op {
        OpCode::StepRun | OpCode::Step => OpAction::Run(data),
        OpCode::StepError => OpAction::Error(error(op)?),
        OpCode::StepFailed => OpAction::Failed(error(op)?),
        OpCode::StepPlanned => OpAction::Planned,
        OpCode::Sleep => sleep_action(i, op, &opts, now)?,
        OpCode::WaitForEvent => wait_action(i, op, &opts, now)?,
        OpCode::InvokeFunction => invoke_action(i, &opts, now)?,
        OpCode::WaitForSignal => signal_action(i, op, &opts, now)?,
        OpCode::Gateway => OpAction::Gateway(gateway::fetch_call(i, &opts)?),
        OpCode::AiGateway => OpAction::Gateway(gateway::ai_call(i, &opts)?),
        OpCode::RunComplete => OpAction::Complete(data),
        OpCode::DiscoveryRequest => OpAction::Discovery,
        OpCode::None => OpAction::Nothing,
        _ => OpAction::Unsupported,
    })
}

fn opt_str(opts: &Value, key: &str) -> Option<String> {
    opts.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// `Sleep`: until `opts.duration` (or `name`), a duration or a date.
fn sleep_action(i: usize, op: &Op, opts: &Value, now: DateTime<Utc>) -> Result<OpAction, String> {
    let spec = opt_str(opts, "duration")
        .or_else(|| op.name.clone())
        .ok_or_else(|| format!("op #{i} `Sleep` has no duration (`opts.duration` or `name`)"))?;
    let until = inngest_protocol::timestr::parse_time_or_duration(&spec, now)
        .map_err(|e| format!("op #{i} `Sleep` duration `{spec}`: {e}"))?;
    Ok(OpAction::Sleep(until))
}

/// `WaitForEvent`: the event (`opts.event` or `name`), its timeout and `if` expression.
fn wait_action(i: usize, op: &Op, opts: &Value, now: DateTime<Utc>) -> Result<OpAction, String> {
    let event = opt_str(opts, "event")
        .or_else(|| op.name.clone())
        .ok_or_else(|| {
            format!("op #{i} `WaitForEvent` has no event name (`opts.event` or `name`)")
        })?;
    let timeout = opt_str(opts, "timeout").unwrap_or_default();
    let until = if timeout.is_empty() {
        now
    } else {
        inngest_protocol::timestr::parse_time_or_duration(&timeout, now)
            .map_err(|e| format!("op #{i} `WaitForEvent` timeout `{timeout}`: {e}"))?
    };
    let expr = match opt_str(opts, "if").filter(|s| !s.trim().is_empty()) {
        Some(src) => Some(
            // The server fails the run when the expression does not compile (type-check
            // included); restrictive-policy violations are only logged there.
            Expr::check(&src, Policy::Default)
                .map_err(|e| format!("op #{i} `WaitForEvent` `if` expression: {e}"))?,
        ),
        None => None,
    };
    Ok(OpAction::Wait { event, expr, until })
}

/// `WaitForSignal`: the signal (`opts.signal` or `name`), its timeout and `opts.conflict`
/// (`"fail"`, the default, or `"replace"`).
fn signal_action(i: usize, op: &Op, opts: &Value, now: DateTime<Utc>) -> Result<OpAction, String> {
    let signal = opt_str(opts, "signal")
        .or_else(|| op.name.clone())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            format!("op #{i} `WaitForSignal` has no signal (`opts.signal` or `name`)")
        })?;
    let timeout = opt_str(opts, "timeout")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("op #{i} `WaitForSignal` has no `opts.timeout`"))?;
    let until = inngest_protocol::timestr::parse_time_or_duration(&timeout, now)
        .map_err(|e| format!("op #{i} `WaitForSignal` timeout `{timeout}`: {e}"))?;
    let replace = match opts.get("conflict").and_then(Value::as_str) {
        None | Some("fail") => false,
        Some("replace") => true,
        Some(other) => {
            return Err(format!(
                "op #{i} `WaitForSignal` conflict `{other}`: expected \"fail\" or \"replace\""
            ))
        }
    };
    Ok(OpAction::Signal {
        signal,
        replace,
        until,
    })
}

/// `InvokeFunction`: the function, its payload and timeout (default one year).
fn invoke_action(i: usize, opts: &Value, now: DateTime<Utc>) -> Result<OpAction, String> {
    let function_id = opt_str(opts, "function_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("op #{i} `InvokeFunction` has no `opts.function_id`"))?;
    let payload = match opts.get("payload") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => {
            return Err(format!(
                "op #{i} `InvokeFunction` `opts.payload` must be an object"
            ))
        }
    };
    let until = match opt_str(opts, "timeout").filter(|s| !s.is_empty()) {
        Some(t) => inngest_protocol::timestr::parse_time_or_duration(&t, now)
            .map_err(|e| format!("op #{i} `InvokeFunction` timeout `{t}`: {e}"))?,
        None => now + chrono_duration(INVOKE_DEFAULT_TIMEOUT),
    };
    Ok(OpAction::Invoke {
        function_id,
        payload,
        until,
    })
}

/// The user's label of a step: `userland.id`, else `displayName`, else `name`, else its id.
pub(crate) fn step_label(op: &Op) -> String {
    op.userland
        .as_ref()
        .map(|u| u.id.clone())
        .or_else(|| op.display_name.clone())
        .or_else(|| op.name.clone())
        .unwrap_or_else(|| op.id.clone())
}

/// The memoized form of a step error: `name`, `message` and `stack` only.
fn error_memo(e: &ErrorObject) -> Value {
    serde_json::to_value(e).unwrap_or_else(|_| json!({"name": "Error", "message": ""}))
}

/// `Retry-After`: seconds (≤ 7 characters) or a date; clamped to [1 s, 24 h].
pub(crate) fn parse_retry_after(v: &str, now: DateTime<Utc>) -> Option<Duration> {
    let d = if v.len() <= 7 {
        Duration::from_secs(v.parse::<u64>().ok()?)
    } else {
        let t = DateTime::parse_from_rfc3339(v)
            .or_else(|_| DateTime::parse_from_rfc2822(v))
            .ok()?
            .with_timezone(&Utc);
        (t - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER))
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_owned()
    }
}

/// The message of an error body (`message`, else `error`, else the text).
pub(crate) fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v
            .get("message")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| v.get("error").and_then(Value::as_str))
            .map(str::to_owned)
            .unwrap_or_else(|| snippet(body)),
        Err(_) => snippet(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(status: u16, headers: &[(&str, &str)], body: &str) -> RawResponse {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        RawResponse {
            status,
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    const SDK: (&str, &str) = ("x-inngest-sdk", "inngest-js:v4.24.0");

    #[test]
    fn classifies_like_the_real_executor() {
        let now = Utc::now();
        assert!(matches!(
            classify(raw(200, &[], "{}"), now),
            Outcome::Failure(Failure {
                kind: HistoryKind::InvalidResponse,
                retriable: true,
                ..
            })
        ));
        assert!(matches!(
            classify(raw(206, &[SDK], "[]"), now),
            Outcome::Empty
        ));
        match classify(raw(206, &[SDK], r#"[{"op":"Bogus","id":"x"}]"#), now) {
            Outcome::Failure(Failure { reason, .. }) => {
                assert!(reason.contains("unknown op name `Bogus`"), "{reason}")
            }
            _ => panic!("expected failure"),
        }
        match classify(raw(206, &[SDK], r#"{"nope": 1"#), now) {
            Outcome::Failure(Failure { reason, .. }) => {
                assert!(reason.contains("malformed op array"), "{reason}")
            }
            _ => panic!("expected failure"),
        }
        match classify(
            raw(206, &[SDK], r#"[{"op":"StepError","id":"x","data":null}]"#),
            now,
        ) {
            Outcome::Failure(Failure { reason, .. }) => {
                assert!(reason.contains("no `error`"), "{reason}")
            }
            _ => panic!("expected failure"),
        }
        match classify(
            raw(
                206,
                &[SDK, ("x-inngest-req-version", "2")],
                r#"[{"op":"steprun","id":"x","data":{"a":1}}]"#,
            ),
            now,
        ) {
            Outcome::Ops(OpsResponse { ops, version, .. }) => {
                assert_eq!(version, Some(2));
                assert!(matches!(&ops[0].action, OpAction::Run(v) if v == &json!({"a": 1})));
            }
            _ => panic!("expected ops"),
        }
        match classify(raw(200, &[SDK], r#""{\"a\":1}""#), now) {
            Outcome::Done(v) => assert_eq!(v, json!({"a": 1})),
            _ => panic!("expected done"),
        }
        match classify(
            raw(
                400,
                &[SDK, ("x-inngest-no-retry", "true")],
                r#"{"name":"NonRetriableError","message":"no"}"#,
            ),
            now,
        ) {
            Outcome::Failure(Failure {
                retriable, error, ..
            }) => {
                assert!(!retriable);
                assert_eq!(error["message"], "no");
            }
            _ => panic!("expected failure"),
        }
        match classify(raw(502, &[], "bad gateway"), now) {
            Outcome::Failure(Failure {
                retriable, error, ..
            }) => {
                assert!(retriable);
                assert!(error["message"]
                    .as_str()
                    .unwrap()
                    .contains("upstream error"));
            }
            _ => panic!("expected failure"),
        }
    }

    #[test]
    fn streamed_responses_are_unwrapped() {
        let now = Utc::now();
        let body = r#"   {"status":206,"headers":{"x-inngest-req-version":"2"},"body":"[{\"op\":\"StepRun\",\"id\":\"a\",\"data\":1}]"}"#;
        match classify(raw(201, &[SDK], body), now) {
            Outcome::Ops(OpsResponse { ops, version, .. }) => {
                assert_eq!(version, Some(2));
                assert_eq!(ops.len(), 1);
            }
            _ => panic!("expected ops"),
        }
    }

    #[test]
    fn streamed_envelopes_follow_the_server() {
        let now = Utc::now();
        let unwrap = |body: &str| unwrap_stream(&raw(201, &[SDK], body));
        // Keep-alive spaces before, JSON whitespace after; inner headers set over the outer ones.
        let inner = unwrap(
            "  \n {\"status\":500,\"headers\":{\"X-Inngest-No-Retry\":\"true\",\"retry-after\":\"30\",\"x-inngest-sdk\":\"inner\"},\"body\":\"{\\\"message\\\":\\\"boom\\\"}\",\"version\":2}\r\n\t",
        )
        .unwrap();
        assert_eq!(inner.status, 500);
        assert_eq!(inner.body.as_ref(), br#"{"message":"boom"}"#);
        assert_eq!(inner.headers["x-inngest-no-retry"], "true");
        assert_eq!(inner.headers["retry-after"], "30");
        assert_eq!(inner.headers["x-inngest-sdk"], "inner");
        // Headers from the envelope decide retries and the retry time.
        match classify(
            raw(
                201,
                &[SDK],
                r#" {"status":500,"headers":{"x-inngest-no-retry":"false","retry-after":"30"},"body":"{\"name\":\"Error\",\"message\":\"later\"}"}"#,
            ),
            now,
        ) {
            Outcome::Failure(f) => {
                assert!(f.retriable);
                assert_eq!(f.retry_after, Some(Duration::from_secs(30)));
                assert_eq!(f.error["message"], "later");
            }
            _ => panic!("expected failure"),
        }
        match classify(
            raw(
                201,
                &[SDK],
                r#"{"status":400,"headers":{"X-Inngest-No-Retry":"true"},"body":"{}"}"#,
            ),
            now,
        ) {
            Outcome::Failure(f) => assert!(!f.retriable),
            _ => panic!("expected failure"),
        }
        // A body that is not a JSON string is used as sent, byte for byte.
        let inner = unwrap(r#"{"status":200,"body":{"b":1,  "a":2.50}}"#).unwrap();
        assert_eq!(inner.body.as_ref(), br#"{"b":1,  "a":2.50}"#);
        let inner = unwrap(r#"{"status":200,"body":null,"headers":null,"error":null}"#).unwrap();
        assert_eq!(inner.body.as_ref(), b"null");
        let inner = unwrap(r#"{"status":200}"#).unwrap();
        assert!(inner.body.is_empty());
        // A string body is unquoted once only.
        let inner = unwrap(r#"{"status":200,"body":"\"hi\""}"#).unwrap();
        assert_eq!(inner.body.as_ref(), br#""hi""#);
        // A non-null `error` fails the attempt, whatever else the envelope says.
        assert_eq!(
            unwrap(r#"{"status":200,"body":"1","error":"stream broke"}"#).err(),
            Some("streamed (201) response reports an error: stream broke".to_owned())
        );
        match classify(raw(201, &[SDK], r#"{"error":"x","status":200}"#), now) {
            Outcome::Failure(f) => {
                assert!(f.retriable);
                assert_eq!(f.kind, HistoryKind::InvalidResponse);
            }
            _ => panic!("expected failure"),
        }
        // Like Go's `map[string]string`: a header value that is not a string is a parse error.
        assert!(
            unwrap(r#"{"status":206,"headers":{"x-inngest-req-version":2},"body":"[]"}"#)
                .err()
                .unwrap()
                .starts_with("streamed (201) response is not a JSON envelope")
        );
        assert!(unwrap("   ").is_err());
        assert!(unwrap(r#"{"status":206} trailing"#).is_err());
        assert_eq!(
            unwrap(r#"{"body":"[]"}"#).err(),
            Some("streamed (201) response has no `status`".to_owned())
        );
    }

    #[test]
    fn wait_for_signal_options_are_checked() {
        let now = Utc::now();
        let ops = parse_ops(
            br#"[{"op":"WaitForSignal","id":"a","name":"s","opts":{"signal":"s","timeout":"1h","conflict":"replace"}}]"#,
            now,
        )
        .unwrap();
        match &ops[0].action {
            OpAction::Signal {
                signal,
                replace,
                until,
            } => {
                assert_eq!(signal, "s");
                assert!(*replace);
                assert_eq!(*until, now + chrono::Duration::hours(1));
            }
            _ => panic!("expected a signal wait"),
        }
        let bad = |body: &[u8]| parse_ops(body, now).err().unwrap();
        assert_eq!(
            bad(br#"[{"op":"WaitForSignal","id":"a","opts":{"signal":"s","timeout":"1h","conflict":"keep"}}]"#),
            "op #0 `WaitForSignal` conflict `keep`: expected \"fail\" or \"replace\""
        );
        assert_eq!(
            bad(br#"[{"op":"WaitForSignal","id":"a","opts":{"signal":"s"}}]"#),
            "op #0 `WaitForSignal` has no `opts.timeout`"
        );
    }

    #[test]
    fn op_options_are_parsed_up_front() {
        let now = Utc::now();
        let ops = parse_ops(
            br#"[{"op":"Sleep","id":"a","name":"2s","opts":{}},
                 {"op":"Sleep","id":"b","name":"b","opts":{"duration":"2024-06-10T09:00:00Z"}},
                 {"op":"WaitForEvent","id":"c","name":"x/y","opts":{"timeout":"1m","if":"async.data.id == event.data.id"}},
                 {"op":"InvokeFunction","id":"d","opts":{"function_id":"app-child","payload":{"data":{"n":1}}}}]"#,
            now,
        )
        .unwrap();
        assert!(
            matches!(ops[0].action, OpAction::Sleep(t) if t == now + chrono::Duration::seconds(2))
        );
        assert!(
            matches!(ops[1].action, OpAction::Sleep(t) if t.to_rfc3339() == "2024-06-10T09:00:00+00:00")
        );
        assert!(
            matches!(&ops[2].action, OpAction::Wait { event, expr: Some(_), until } if event == "x/y" && *until == now + chrono::Duration::minutes(1))
        );
        assert!(
            matches!(&ops[3].action, OpAction::Invoke { function_id, .. } if function_id == "app-child")
        );
        let err = parse_ops(br#"[{"op":"WaitForEvent","id":"c","name":"x","opts":{"timeout":"1m","if":"async.data.id =="}}]"#, now).err().unwrap();
        assert!(err.contains("`if` expression"), "{err}");
        let err = parse_ops(br#"[{"op":"Sleep","id":"a","name":"soon"}]"#, now)
            .err()
            .unwrap();
        assert!(err.contains("Sleep"), "{err}");
    }

    #[test]
    fn retry_after_values() {
        let now = Utc::now();
        assert_eq!(parse_retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("9999999", now), Some(MAX_RETRY_AFTER));
        let later = (now + chrono::Duration::seconds(30)).to_rfc3339();
        let d = parse_retry_after(&later, now).unwrap();
        assert!(d <= Duration::from_secs(30) && d >= Duration::from_secs(29));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
