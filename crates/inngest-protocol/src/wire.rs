//! Wire types of the serve protocol, shared by the serve handler and the local executor.
//!
//! One definition of each shape: the execution request the executor POSTs and the ops an SDK
//! answers with in a `206` (the sync and introspection bodies are in [`crate::register`]). Field
//! names and the presence of keys follow what the real server sends and checks (see the module
//! tests and `tests/protocol_*.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Query parameter naming the function (`<appId>-<fnId>`).
pub const QUERY_FN_ID: &str = "fnId";
/// Query parameter naming the step: `step` for discovery, a hashed id for a targeted call.
pub const QUERY_STEP_ID: &str = "stepId";
/// Query parameter of the trust probe (`probe=trust`).
pub const QUERY_PROBE: &str = "probe";
/// Query parameter passed through from a sync PUT to `/fn/register`.
pub const QUERY_DEPLOY_ID: &str = "deployId";
/// The registered step id; a `stepId` with this value is a discovery request.
pub const DISCOVERY_STEP_ID: &str = "step";

/// Header names used on the wire (matched case-insensitively).
pub mod headers {
    /// SDK identification, on every SDK request and response.
    pub const SDK: &str = "x-inngest-sdk";
    /// Request signature `t=<secs>&s=<hex>`.
    pub const SIGNATURE: &str = "x-inngest-signature";
    /// Execution version; always `2` from this SDK.
    pub const REQ_VERSION: &str = "x-inngest-req-version";
    /// `true`/`false` on error responses.
    pub const NO_RETRY: &str = "x-inngest-no-retry";
    /// Retry delay in seconds or an RFC 3339 date.
    pub const RETRY_AFTER: &str = "retry-after";
    /// `in_band` / `out_of_band`.
    pub const SYNC_KIND: &str = "x-inngest-sync-kind";
    /// `dev` / `cloud`, sent by the server on sync PUTs.
    pub const SERVER_KIND: &str = "x-inngest-server-kind";
    /// Copy of the PUT's server kind, sent to `/fn/register`.
    pub const EXPECTED_SERVER_KIND: &str = "x-inngest-expected-server-kind";
    /// Framework name.
    pub const FRAMEWORK: &str = "x-inngest-framework";
    /// Branch environment name.
    pub const ENV: &str = "x-inngest-env";
    /// Seed for deterministic event ids on the event API.
    pub const EVENT_ID_SEED: &str = "x-inngest-event-id-seed";
    /// Run id sent by the executor.
    pub const RUN_ID: &str = "x-run-id";
    /// Step id sent by the executor (same as the `stepId` query parameter).
    pub const STEP_ID: &str = "x-inngest-step-id";
    /// W3C trace context, echoed on responses.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state, echoed on responses.
    pub const TRACESTATE: &str = "tracestate";
    /// Forwarded protocol, honoured when building the sync URL.
    pub const FORWARDED_PROTO: &str = "x-forwarded-proto";
    /// Forwarded host, honoured when building the sync URL.
    pub const FORWARDED_HOST: &str = "x-forwarded-host";
}

/// Event names starting with this prefix are reserved for Inngest's own events
/// (`inngest/function.finished`, `inngest/scheduled.timer`, …): apps may not send them.
pub const RESERVED_EVENT_PREFIX: &str = "inngest/";

/// The execution version this SDK speaks.
pub const REQ_VERSION: &str = "2";

/// `ctx.stack` of an execution request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stack {
    /// 1-based position of the step whose completion scheduled this request (0 at first).
    #[serde(default)]
    pub current: u32,
    /// Hashed ids of completed steps, in completion order.
    #[serde(default)]
    pub stack: Vec<String>,
}

/// `ctx` of an execution request. Fields are declared in key order, so serializing gives the
/// JCS-sorted form the real executor sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallCtx {
    /// 0-based attempt of the current step (resets after each completed step).
    #[serde(default)]
    pub attempt: u32,
    /// When true, new run steps must be planned, never executed inline.
    #[serde(default)]
    pub disable_immediate_execution: bool,
    /// Environment name (may be empty).
    #[serde(default)]
    pub env: String,
    /// The server's function UUID (not the slug).
    #[serde(default)]
    pub fn_id: String,
    /// Dispatch generation (opaque).
    #[serde(default)]
    pub generation_id: u64,
    /// Queue job id (opaque).
    #[serde(default)]
    pub job_id: String,
    /// Retries + 1.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Queue item id (opaque).
    #[serde(default)]
    pub qi_id: String,
    /// Request id (opaque).
    #[serde(default)]
    pub request_id: String,
    /// Run ULID.
    #[serde(default)]
    pub run_id: String,
    /// Completed steps in order.
    #[serde(default)]
    pub stack: Stack,
    /// Registered step id, `"step"`.
    #[serde(default)]
    pub step_id: String,
    /// When true the state must be fetched from the API.
    #[serde(default)]
    pub use_api: bool,
}

/// An execution request as parsed by the SDK: borrowed from the body, so memoized step values,
/// step ids and strings are never copied (see [`crate::step_id`]).
#[derive(Debug, Deserialize)]
pub struct ExecRequestRef<'a> {
    /// Call context.
    #[serde(borrow, default)]
    pub ctx: CallCtxRef<'a>,
    /// Triggering event (first of a batch).
    #[serde(borrow, default)]
    pub event: Option<&'a RawValue>,
    /// All events.
    #[serde(borrow, default)]
    pub events: Option<&'a RawValue>,
    /// Memoized step values keyed by hashed id, in body order (a repeated key appears twice; the
    /// later one wins).
    #[serde(borrow, default, deserialize_with = "steps_in_order")]
    pub steps: Option<StepsRef<'a>>,
    /// Request version (`-1`, `1`, `2`; `0` is rejected).
    #[serde(default)]
    pub version: Option<i64>,
    /// Deprecated duplicate of `ctx.use_api`.
    #[serde(default)]
    pub use_api: Option<bool>,
}

/// Memoized steps as `(hashed id, raw value)` pairs in body order.
pub type StepsRef<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// [`CallCtx`] borrowed from the body: same fields, same types, strings not copied.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CallCtxRef<'a> {
    /// 0-based attempt of the current step (resets after each completed step).
    #[serde(default)]
    pub attempt: u32,
    /// When true, new run steps must be planned, never executed inline.
    #[serde(default)]
    pub disable_immediate_execution: bool,
    /// Environment name (may be empty).
    #[serde(borrow, default)]
    pub env: Cow<'a, str>,
    /// The server's function UUID (not the slug).
    #[serde(borrow, default)]
    pub fn_id: Cow<'a, str>,
    /// Dispatch generation (opaque).
    #[serde(default)]
    pub generation_id: u64,
    /// Queue job id (opaque).
    #[serde(borrow, default)]
    pub job_id: Cow<'a, str>,
    /// Retries + 1.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Queue item id (opaque).
    #[serde(borrow, default)]
    pub qi_id: Cow<'a, str>,
    /// Request id (opaque).
    #[serde(borrow, default)]
    pub request_id: Cow<'a, str>,
    /// Run ULID.
    #[serde(borrow, default)]
    pub run_id: Cow<'a, str>,
    /// Completed steps in order.
    #[serde(borrow, default)]
    pub stack: StackRef<'a>,
    /// Registered step id, `"step"`.
    #[serde(borrow, default)]
    pub step_id: Cow<'a, str>,
    /// When true the state must be fetched from the API.
    #[serde(default)]
    pub use_api: bool,
}

/// [`Stack`] borrowed from the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct StackRef<'a> {
    /// 1-based position of the step whose completion scheduled this request (0 at first).
    #[serde(default)]
    pub current: u32,
    /// Hashed ids of completed steps, in completion order.
    #[serde(borrow, default)]
    pub stack: Vec<Cow<'a, str>>,
}

/// Reads a JSON object (or `null`) as its `(key, raw value)` pairs in order, without building a map.
fn steps_in_order<'de, D>(de: D) -> Result<Option<StepsRef<'de>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct Pairs;
    impl<'de> serde::de::Visitor<'de> for Pairs {
        type Value = Option<StepsRef<'de>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(
            self,
            de: D2,
        ) -> Result<Self::Value, D2::Error> {
            de.deserialize_map(Pairs)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(key) = map.next_key::<BorrowedKey<'de>>()? {
                out.push((key.0, map.next_value()?));
            }
            Ok(Some(out))
        }
    }
    de.deserialize_option(Pairs)
}

/// A map key borrowed from the body when it has no escapes.
struct BorrowedKey<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for BorrowedKey<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = BorrowedKey<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(BorrowedKey(Cow::Owned(v)))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

/// An execution request as built by the executor (owned; serializes with sorted keys).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    /// Call context.
    pub ctx: CallCtx,
    /// Defer entries (unused, always `{}`).
    #[serde(default)]
    pub defers: serde_json::Map<String, serde_json::Value>,
    /// Triggering event.
    pub event: serde_json::Value,
    /// All events.
    pub events: Vec<serde_json::Value>,
    /// Memoized step values keyed by hashed id.
    pub steps: BTreeMap<String, serde_json::Value>,
    /// Deprecated duplicate of `ctx.use_api`.
    pub use_api: bool,
    /// Request version.
    pub version: i64,
}

/// Opcode names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OpCode {
    /// A run step executed in this request; `data` is its output.
    StepRun,
    /// A run step threw and may be retried.
    StepError,
    /// A run step threw for good.
    StepFailed,
    /// A run step found but not executed (parallel or planned).
    StepPlanned,
    /// Durable sleep.
    Sleep,
    /// Wait for a matching event.
    WaitForEvent,
    /// Invoke another function and wait for its result.
    InvokeFunction,
    /// The function finished (checkpointing form).
    RunComplete,
    /// Legacy step op.
    Step,
    /// AI inference through the gateway.
    #[serde(rename = "AIGateway", alias = "AiGateway")]
    AiGateway,
    /// HTTP fetch through the gateway.
    Gateway,
    /// Wait for a signal.
    WaitForSignal,
    /// Ask for a new discovery request.
    DiscoveryRequest,
    /// No-op.
    None,
}

/// `userland` of an op: the user's own step id and its repeat index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Userland {
    /// The step id as written by the user.
    pub id: String,
    /// Repeat index (`n` in `id:n`), absent for the first occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// Timing of an executed step: start (unix ns) and duration (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    /// Start, unix nanoseconds.
    pub a: u64,
    /// Duration, nanoseconds.
    pub b: u64,
}

/// One element of a `206` op array.
///
/// `data` is always serialized (as `null` when absent): the conformance runner distinguishes a
/// missing `data` from `null`. `opts` is omitted when `None` (never `{}` on `StepRun`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// Hashed step id.
    pub id: String,
    /// Opcode.
    pub op: OpCode,
    /// Legacy name: the user step id (or the sleep duration / event name for old SDKs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human-readable name.
    #[serde(
        rename = "displayName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub display_name: Option<String>,
    /// Op-specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opts: Option<serde_json::Value>,
    /// Step output for `StepRun`, `null` otherwise.
    #[serde(default, deserialize_with = "raw_or_null")]
    pub data: Option<Box<RawValue>>,
    /// Error for `StepError`/`StepFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
    /// The user's step id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userland: Option<Userland>,
    /// Execution timing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
}

fn raw_or_null<'de, D>(de: D) -> Result<Option<Box<RawValue>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Box<RawValue> = Deserialize::deserialize(de)?;
    Ok(if raw.get() == "null" { None } else { Some(raw) })
}

/// The serialized error shape on the wire: `{"name", "message", "stack"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// Error name.
    #[serde(default = "default_error_name")]
    pub name: String,
    /// Error message.
    #[serde(default)]
    pub message: String,
    /// Optional stack text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

fn default_error_name() -> String {
    "Error".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_serialize_in_the_conformance_shape() {
        let op = Op {
            id: "98bf98df193bcce7c33e6bc50927cf2ac21206cb".into(),
            op: OpCode::StepError,
            name: Some("first step".into()),
            display_name: Some("first step".into()),
            opts: None,
            data: None,
            error: Some(ErrorObject {
                name: "Error".into(),
                message: "broken".into(),
                stack: None,
            }),
            userland: None,
            timing: None,
        };
        assert_eq!(
            serde_json::to_string(&op).unwrap(),
            r#"{"id":"98bf98df193bcce7c33e6bc50927cf2ac21206cb","op":"StepError","name":"first step","displayName":"first step","data":null,"error":{"name":"Error","message":"broken"}}"#
        );
    }

    #[test]
    fn aigateway_spelling() {
        assert_eq!(
            serde_json::to_string(&OpCode::AiGateway).unwrap(),
            "\"AIGateway\""
        );
        let parsed: OpCode = serde_json::from_str("\"AiGateway\"").unwrap();
        assert_eq!(parsed, OpCode::AiGateway);
    }

    #[test]
    fn exec_request_serializes_with_sorted_keys() {
        let req = ExecRequest {
            ctx: CallCtx {
                run_id: "r".into(),
                step_id: "step".into(),
                max_attempts: Some(5),
                ..Default::default()
            },
            defers: Default::default(),
            event: serde_json::json!({"name": "a", "data": {}}),
            events: vec![],
            steps: Default::default(),
            use_api: false,
            version: -1,
        };
        let s = serde_json::to_string(&req).unwrap();
        assert!(s.starts_with(r#"{"ctx":{"attempt":0,"disable_immediate_execution":false,"env":"","fn_id":"","generation_id":0,"job_id":"","max_attempts":5,"qi_id":"","request_id":"","run_id":"r","stack":{"current":0,"stack":[]},"step_id":"step","use_api":false},"defers":{},"event":{"data":{},"name":"a"}"#), "{s}");
    }
}
