//! The sync payloads as data: the PUT body, the `/fn/register` body an SDK POSTs (or returns in an
//! in-band sync) with each function configuration in it, the reply, and the GET introspection
//! bodies.
//!
//! The SDK builds these values and serializes them; the executor deserializes the same types and
//! validates them. Field names are the exact wire keys (camelCase where the server reads camelCase);
//! an absent option is omitted, never sent as `null`. Fields are declared in key order, so
//! serializing gives sorted keys, the same bytes as serializing through a [`serde_json::Value`].
//!
//! Deserializing is as lenient as the real server: unknown keys are ignored (other SDKs send
//! `featureObservations`, `deployId`, …), `null` counts as absent, and `concurrency` may be a
//! number, one object or a list. Limits and expressions are not checked here: that is validation
//! (the SDK's builder, the executor's registry).
//!
//! ```
//! use inngest_protocol::register::{FunctionConfig, RegisterRequest, Trigger};
//!
//! let mut f = FunctionConfig::new(
//!     "shop-send-receipt",
//!     "Send receipt",
//!     "https://shop.example.com/api/inngest?fnId=shop-send-receipt&stepId=step",
//! );
//! f.triggers.push(Trigger::event("shop/order.paid").with_expression("event.data.total > 0"));
//! let mut req = RegisterRequest::new("shop", "https://shop.example.com/api/inngest", "rust:v0.1.0");
//! req.functions.push(f);
//!
//! let json = serde_json::to_string(&req).unwrap();
//! assert!(json.starts_with(r#"{"appName":"shop","deployType":"ping","functions":[{"id":"shop-send-receipt","name":"Send receipt","steps":{"step":{"id":"step","name":"step","runtime":{"type":"http","url":"#));
//! let back: RegisterRequest = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, req);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The key of the one step of a function (`steps.step`), also its `id` and `name`.
pub const STEP_KEY: &str = "step";

/// `deployType` of an HTTP app.
pub const DEPLOY_TYPE_PING: &str = "ping";

/// `v`, the register payload version the SDKs send.
pub const REGISTER_VERSION: &str = "0.1";

/// `schema_version` of the introspection bodies.
pub const INTROSPECTION_SCHEMA_VERSION: &str = "2024-05-24";

/// A value that may be `null` on the wire: `null` reads as the default, like an absent key.
fn null_default<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Option::unwrap_or_default)
}

/// The `/fn/register` body (protocol §6.3).
///
/// `F` is the function type: [`FunctionConfig`] for building and reading whole payloads; a reader
/// that wants one error list per function (the executor) reads `RegisterRequest<serde_json::Value>`
/// and each function on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "F: Deserialize<'de>"))]
#[non_exhaustive]
pub struct RegisterRequest<F = FunctionConfig> {
    /// The app id (required non-empty by the server).
    #[serde(rename = "appName", default, deserialize_with = "null_default")]
    pub app_name: String,
    /// The user's app version.
    #[serde(
        rename = "appVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub app_version: Option<String>,
    /// What the SDK implements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Deploy id (JS also sends the PUT's `deployId` here; the server ignores it).
    #[serde(rename = "deployId", default, skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
    /// `"ping"` for HTTP apps (`"connect"` for Connect).
    #[serde(rename = "deployType", default, deserialize_with = "null_default")]
    pub deploy_type: String,
    /// JS telemetry, opaque (excluded from the server's checksum).
    #[serde(
        rename = "featureObservations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub feature_observations: Option<Value>,
    /// Framework name, e.g. `axum`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub framework: Option<String>,
    /// The functions (an empty list is accepted).
    #[serde(default = "Vec::new", deserialize_with = "null_default")]
    pub functions: Vec<F>,
    /// `env`/`platform` (Go SDK); the server overwrites them from request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<RegisterHeaders>,
    /// Deduplicates syncs.
    #[serde(
        rename = "idempotencyKey",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idempotency_key: Option<String>,
    /// `<language>:v<version>`, from which the server reads the SDK language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdk: Option<String>,
    /// The absolute serve URL, without `deployId`.
    #[serde(default, deserialize_with = "null_default")]
    pub url: String,
    /// Payload version, `"0.1"` (Go sends `"1"`; not validated).
    #[serde(default, deserialize_with = "null_default")]
    pub v: String,
}

impl<F> RegisterRequest<F> {
    /// A `ping` payload of version `0.1` for `app_name` served at `url`, with no functions.
    pub fn new(
        app_name: impl Into<String>,
        url: impl Into<String>,
        sdk: impl Into<String>,
    ) -> Self {
        RegisterRequest {
            app_name: app_name.into(),
            app_version: None,
            capabilities: None,
            deploy_id: None,
            deploy_type: DEPLOY_TYPE_PING.to_owned(),
            feature_observations: None,
            framework: None,
            functions: Vec::new(),
            headers: None,
            idempotency_key: None,
            sdk: Some(sdk.into()),
            url: url.into(),
            v: REGISTER_VERSION.to_owned(),
        }
    }
}

/// `{"url": …}`, the body of a sync PUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// The app URL as the server sees it.
    pub url: String,
}

/// Reply of `/fn/register`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RegisterReply {
    /// Success flag.
    #[serde(default)]
    pub ok: bool,
    /// Whether the app's config changed.
    #[serde(default)]
    pub modified: bool,
    /// Error message on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sync id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<String>,
    /// Server-side app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// `capabilities`: protocol features an SDK advertises, each with its version (`"v1"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Connect (WebSocket) workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<String>,
    /// In-band sync (the config in the signed PUT response).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_band_sync: Option<String>,
    /// The `probe=trust` POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_probe: Option<String>,
}

/// `headers` of a register payload (Go SDK).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RegisterHeaders {
    /// Branch environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Hosting platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// One function of a register payload (protocol §6.3.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionConfig {
    /// Batch events into one run.
    #[serde(
        rename = "batchEvents",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_events: Option<BatchEvents>,
    /// Cancellation rules (≤ 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<Vec<Cancel>>,
    /// Checkpointing settings, informational (opaque).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Value>,
    /// Concurrency limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Debounce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debounce: Option<Debounce>,
    /// The function slug, `<app id>-<function id>`; the executor calls back with `fnId=<id>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// Idempotency key expression (the server turns it into a 24 h rate limit of 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<String>,
    /// Display name (required non-empty by the server).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Run priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Hard rate limit.
    #[serde(rename = "rateLimit", default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Function-level retries (Go SDK), used when `steps.step.retries` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
    /// One run at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub singleton: Option<Singleton>,
    /// Exactly one entry, keyed [`STEP_KEY`].
    #[serde(default, deserialize_with = "null_default")]
    pub steps: BTreeMap<String, Step>,
    /// Throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Start and finish timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
    /// What starts a run (≤ 10, no duplicates).
    #[serde(default, deserialize_with = "null_default")]
    pub triggers: Vec<Trigger>,
}

impl FunctionConfig {
    /// A function with this slug and name whose one step is called at `step_url`; no triggers.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        step_url: impl Into<String>,
    ) -> Self {
        FunctionConfig {
            id: id.into(),
            name: name.into(),
            steps: BTreeMap::from([(STEP_KEY.to_owned(), Step::http(step_url))]),
            ..FunctionConfig::default()
        }
    }

    /// The one step: the single entry of `steps` (`None` when there are none or several).
    pub fn step(&self) -> Option<&Step> {
        match self.steps.len() {
            1 => self.steps.values().next(),
            _ => None,
        }
    }

    /// Mutable access to the entry [`STEP_KEY`] of `steps`.
    pub fn step_mut(&mut self) -> Option<&mut Step> {
        self.steps.get_mut(STEP_KEY)
    }
}

/// A trigger: `{"event", "expression"?}` or `{"cron", "jitter"?}`. A struct rather than an enum,
/// as on the server, so a reader can report a trigger with both or neither.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Trigger {
    /// Cron schedule (5 fields, optional `TZ=Area/City ` prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Event name (a trailing `*` matches a prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// CEL filter over `event`, for an event trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    /// Time string, random delay of a cron firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
}

impl Trigger {
    /// An event trigger.
    pub fn event(name: impl Into<String>) -> Self {
        Trigger {
            event: Some(name.into()),
            ..Trigger::default()
        }
    }

    /// A cron trigger.
    pub fn cron(cron: impl Into<String>) -> Self {
        Trigger {
            cron: Some(cron.into()),
            ..Trigger::default()
        }
    }

    /// With a filter expression.
    pub fn with_expression(mut self, expression: impl Into<String>) -> Self {
        self.expression = Some(expression.into());
        self
    }

    /// With jitter (a time string).
    pub fn with_jitter(mut self, jitter: impl Into<String>) -> Self {
        self.jitter = Some(jitter.into());
        self
    }
}

/// `steps.step` (protocol §6.3.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Step {
    /// `"step"`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// `"step"`.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// Retries of the step, absent for the server's default (4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<StepRetries>,
    /// Where the step is called.
    #[serde(default, deserialize_with = "null_default")]
    pub runtime: StepRuntime,
}

impl Step {
    /// The step `"step"` called over HTTP at `url`.
    pub fn http(url: impl Into<String>) -> Self {
        Step {
            id: STEP_KEY.to_owned(),
            name: STEP_KEY.to_owned(),
            retries: None,
            runtime: StepRuntime {
                kind: "http".to_owned(),
                url: url.into(),
            },
        }
    }

    /// With this many retries.
    pub fn with_retries(mut self, attempts: i64) -> Self {
        self.retries = Some(StepRetries {
            attempts: Some(attempts),
        });
        self
    }
}

/// `steps.step.runtime`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StepRuntime {
    /// `"http"` (`"ws"` for Connect).
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub kind: String,
    /// The step URL: app URL + `fnId=<function id>&stepId=step`.
    #[serde(default, deserialize_with = "null_default")]
    pub url: String,
}

/// `steps.step.retries`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRetries {
    /// Number of *retries* (not attempts), clamped to 20 by the server; absent for the
    /// function-level `retries` or the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<i64>,
}

/// `concurrency`: a bare limit, one limit object, or a list of them (≤ 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Concurrency {
    /// A bare number: a function-scoped limit.
    Limit(i64),
    /// One limit object.
    One(ConcurrencyLimit),
    /// A list of limit objects.
    List(Vec<ConcurrencyLimit>),
}

impl Concurrency {
    /// The limits as a list (a bare number is a function-scoped limit without key).
    pub fn limits(&self) -> Vec<ConcurrencyLimit> {
        match self {
            Concurrency::Limit(limit) => vec![ConcurrencyLimit::new(*limit)],
            Concurrency::One(one) => vec![one.clone()],
            Concurrency::List(list) => list.clone(),
        }
    }
}

/// One concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConcurrencyLimit {
    /// CEL expression: one limit per value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// At most this many steps running at once.
    #[serde(default, deserialize_with = "null_default")]
    pub limit: i64,
    /// Scope (`fn` when absent); `env` and `account` need a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ConcurrencyScope>,
}

impl ConcurrencyLimit {
    /// A limit without key or scope.
    pub fn new(limit: i64) -> Self {
        ConcurrencyLimit {
            key: None,
            limit,
            scope: None,
        }
    }
}

/// Scope of a concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConcurrencyScope {
    /// This function (`"fn"`).
    Fn,
    /// Every function of the environment sharing the key (`"env"`).
    Env,
    /// Every function of the account sharing the key (`"account"`).
    Account,
}

/// `rateLimit`: at most `limit` runs per `period`, excess dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimit {
    /// Per-key limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Runs per period (> 0).
    #[serde(default, deserialize_with = "null_default")]
    pub limit: i64,
    /// Time string (≤ 24 h).
    #[serde(default, deserialize_with = "null_default")]
    pub period: String,
}

impl RateLimit {
    /// `limit` runs per `period` (a time string).
    pub fn new(limit: i64, period: impl Into<String>) -> Self {
        RateLimit {
            key: None,
            limit,
            period: period.into(),
        }
    }
}

/// `throttle`: at most `limit` starts per `period`, excess queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Throttle {
    /// Extra starts allowed in a burst.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<i64>,
    /// Per-key throttle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Starts per period.
    #[serde(default, deserialize_with = "null_default")]
    pub limit: i64,
    /// Time string.
    #[serde(default, deserialize_with = "null_default")]
    pub period: String,
}

impl Throttle {
    /// `limit` starts per `period` (a time string).
    pub fn new(limit: i64, period: impl Into<String>) -> Self {
        Throttle {
            burst: None,
            key: None,
            limit,
            period: period.into(),
        }
    }
}

/// `debounce`: one run `period` after the last event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Debounce {
    /// Per-key debounce (empty counts as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Time string (1 s–7 d).
    #[serde(default, deserialize_with = "null_default")]
    pub period: String,
    /// Time string: run anyway after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Debounce {
    /// Debounce over `period` (a time string).
    pub fn new(period: impl Into<String>) -> Self {
        Debounce {
            key: None,
            period: period.into(),
            timeout: None,
        }
    }
}

/// `batchEvents`: up to `maxSize` events per run, or what arrived within `timeout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BatchEvents {
    /// Only batch events matching this expression.
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub if_expr: Option<String>,
    /// One batch per key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Largest batch (2–100).
    #[serde(rename = "maxSize", default, deserialize_with = "null_default")]
    pub max_size: i64,
    /// Go duration string (no `d`/`w` units), 1 s–60 s.
    #[serde(default, deserialize_with = "null_default")]
    pub timeout: String,
}

impl BatchEvents {
    /// Batches of at most `max_size`, flushed after `timeout` (a Go duration string).
    pub fn new(max_size: i64, timeout: impl Into<String>) -> Self {
        BatchEvents {
            if_expr: None,
            key: None,
            max_size,
            timeout: timeout.into(),
        }
    }
}

/// A cancellation rule: cancel running runs when `event` arrives and `if` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cancel {
    /// The cancelling event's name.
    #[serde(default, deserialize_with = "null_default")]
    pub event: String,
    /// CEL over `event` (the run's trigger) and `async` (the cancelling event).
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub if_expr: Option<String>,
    /// Time string or RFC 3339 date: stop listening after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl Cancel {
    /// Cancel on this event.
    pub fn new(event: impl Into<String>) -> Self {
        Cancel {
            event: event.into(),
            if_expr: None,
            timeout: None,
        }
    }
}

/// `priority`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Priority {
    /// CEL returning the priority factor in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
}

impl Priority {
    /// Priority from this expression.
    pub fn run(expr: impl Into<String>) -> Self {
        Priority {
            run: Some(expr.into()),
        }
    }
}

/// `timeouts`: time strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timeouts {
    /// Cancel if not finished this long after starting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish: Option<String>,
    /// Cancel if not started within this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
}

/// `singleton`: one run at a time (per key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Singleton {
    /// Per-key singleton.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What to do with a new run while one is running.
    pub mode: SingletonMode,
}

impl Singleton {
    /// A singleton with this mode.
    pub fn new(mode: SingletonMode) -> Self {
        Singleton { key: None, mode }
    }
}

/// `singleton.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SingletonMode {
    /// Skip the new run.
    Skip,
    /// Cancel the running one.
    Cancel,
}

/// The GET introspection body (protocol §5). Serialize it through a [`serde_json::Value`] for
/// sorted keys (the authenticated fields are interleaved). [`Default`] is an unauthenticated
/// body (no keys, no functions, empty `mode`) in the current schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    /// `null` unsigned, `false` signed but invalid, `true` in the authenticated body.
    pub authentication_succeeded: Option<bool>,
    /// What the SDK implements.
    pub capabilities: Capabilities,
    /// Free-form data (always `{}` from this SDK).
    #[serde(default)]
    pub extra: Map<String, Value>,
    /// Functions registered, `-failure` companions included.
    pub function_count: usize,
    /// Whether an event key is configured.
    pub has_event_key: bool,
    /// Whether a signing key is configured.
    pub has_signing_key: bool,
    /// Whether a fallback signing key is configured.
    pub has_signing_key_fallback: bool,
    /// `dev` or `cloud`.
    pub mode: String,
    /// [`INTROSPECTION_SCHEMA_VERSION`].
    pub schema_version: String,
    /// The authenticated fields, only in an authenticated body.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub authenticated: Option<AuthenticatedIntrospection>,
}

impl Default for Introspection {
    fn default() -> Self {
        Introspection {
            authentication_succeeded: None,
            capabilities: Capabilities::default(),
            extra: Map::new(),
            function_count: 0,
            has_event_key: false,
            has_signing_key: false,
            has_signing_key_fallback: false,
            mode: String::new(),
            schema_version: INTROSPECTION_SCHEMA_VERSION.to_owned(),
            authenticated: None,
        }
    }
}

/// The fields only an authenticated introspection body has (absent values are `null`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuthenticatedIntrospection {
    /// API origin, without trailing `/`.
    pub api_origin: String,
    /// App id.
    pub app_id: String,
    /// Branch environment.
    pub env: Option<String>,
    /// Event API origin, without trailing `/`.
    pub event_api_origin: String,
    /// `hex(SHA-256(event key))`.
    pub event_key_hash: Option<String>,
    /// Framework name.
    pub framework: String,
    /// `rust`, `js`, …
    pub sdk_language: String,
    /// SDK version.
    pub sdk_version: String,
    /// Serve origin override.
    pub serve_origin: Option<String>,
    /// Serve path override.
    pub serve_path: Option<String>,
    /// Hashed fallback signing key.
    pub signing_key_fallback_hash: Option<String>,
    /// Hashed signing key.
    pub signing_key_hash: Option<String>,
}

/// The body of an in-band sync answer (protocol §6.4).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InBandSyncResponse {
    /// User app version (`null` when unset).
    #[serde(rename = "appVersion")]
    pub app_version: Option<String>,
    /// App id.
    pub app_id: String,
    /// What the SDK implements.
    pub capabilities: Capabilities,
    /// Branch environment.
    pub env: Option<String>,
    /// Framework name.
    pub framework: String,
    /// The functions, as in a register payload.
    pub functions: Vec<FunctionConfig>,
    /// A short introspection.
    pub inspection: InBandInspection,
    /// Hosting platform.
    pub platform: Option<String>,
    /// SDK identification (the `X-Inngest-SDK` value).
    pub sdk: String,
    /// SDK author.
    pub sdk_author: String,
    /// `rust`, `js`, …
    pub sdk_language: String,
    /// SDK version.
    pub sdk_version: String,
    /// The app URL (the signed `url` with overrides applied).
    pub url: String,
}

/// `inspection` of an in-band sync answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InBandInspection {
    /// Whether a key verified the request.
    pub authentication_succeeded: bool,
    /// Functions registered, `-failure` companions included.
    pub function_count: usize,
    /// `dev` or `cloud`.
    pub mode: String,
    /// [`INTROSPECTION_SCHEMA_VERSION`].
    pub schema_version: String,
}

impl Default for InBandInspection {
    fn default() -> Self {
        InBandInspection {
            authentication_succeeded: false,
            function_count: 0,
            mode: String::new(),
            schema_version: INTROSPECTION_SCHEMA_VERSION.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capture(path: &str) -> Value {
        let file = format!(
            "{}/../inngest-e2e/tests/fixtures/captures/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn captured_register_body(path: &str) -> Value {
        let c = capture(path);
        let req = &c["request"];
        match req.get("json") {
            Some(j) if !j.is_null() => j.clone(),
            _ => serde_json::from_str(req["body"].as_str().unwrap()).unwrap(),
        }
    }

    #[test]
    fn captured_js_register_payloads_round_trip() {
        for path in [
            "classic/sdk-0001-POST-_fn_register.json",
            "signed/sdk-0001-POST-_fn_register.json",
            "checkpointing/sdk-0001-POST-_fn_register.json",
        ] {
            let body = captured_register_body(path);
            let req: RegisterRequest = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(req.app_name, "js-capture-app", "{path}");
            assert_eq!(req.functions.len(), 8, "{path}");
            assert_eq!(serde_json::to_value(&req).unwrap(), body, "{path}");
        }
    }

    #[test]
    fn direct_serialization_has_sorted_keys() {
        let mut f = FunctionConfig::new("a-f", "f", "http://h/api?fnId=a-f&stepId=step");
        f.triggers = vec![
            Trigger::event("a/b").with_expression("event.data.x > 1"),
            Trigger::cron("0 * * * *").with_jitter("30s"),
        ];
        f.concurrency = Some(Concurrency::List(vec![ConcurrencyLimit {
            key: Some("event.data.k".into()),
            limit: 2,
            scope: Some(ConcurrencyScope::Env),
        }]));
        f.rate_limit = Some(RateLimit::new(1, "1h"));
        f.throttle = Some(Throttle::new(1, "1m"));
        f.debounce = Some(Debounce::new("5s"));
        f.batch_events = Some(BatchEvents::new(10, "5s"));
        f.cancel = Some(vec![Cancel::new("c/d")]);
        f.priority = Some(Priority::run("1"));
        f.idempotency = Some("event.data.id".into());
        f.timeouts = Some(Timeouts {
            finish: Some("1h".into()),
            start: Some("1m".into()),
        });
        f.singleton = Some(Singleton::new(SingletonMode::Skip));
        f.retries = Some(3);
        if let Some(s) = f.step_mut() {
            s.retries = Some(StepRetries { attempts: Some(3) });
        }
        let mut req = RegisterRequest::new("a", "http://h/api", "rust:v0.1.0");
        req.app_version = Some("1".into());
        req.framework = Some("axum".into());
        req.capabilities = Some(Capabilities {
            in_band_sync: Some("v1".into()),
            trust_probe: Some("v1".into()),
            ..Capabilities::default()
        });
        req.functions.push(f);
        let direct = serde_json::to_string(&req).unwrap();
        let through_value = serde_json::to_value(&req).unwrap().to_string();
        assert_eq!(direct, through_value);
        let back: RegisterRequest = serde_json::from_str(&direct).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn reading_is_lenient_like_the_server() {
        let f: FunctionConfig = serde_json::from_value(json!({
            "id": "a-f", "name": null, "triggers": null, "unknown": {"x": 1},
            "concurrency": 5, "cancel": null,
            "steps": {"step": {"runtime": {"url": "http://h"}, "retries": {"attempts": 2}}}
        }))
        .unwrap();
        assert_eq!(f.name, "");
        assert!(f.triggers.is_empty());
        assert_eq!(
            f.concurrency.unwrap().limits(),
            vec![ConcurrencyLimit::new(5)]
        );
        let step = f.steps.get(STEP_KEY).unwrap();
        assert_eq!(step.runtime.url, "http://h");
        assert_eq!(step.retries.and_then(|r| r.attempts), Some(2));
        let one: Concurrency =
            serde_json::from_value(json!({"limit": 1, "key": "event.data.k"})).unwrap();
        assert!(matches!(one, Concurrency::One(_)));
        let app: RegisterRequest<Value> =
            serde_json::from_value(json!({"appName": null, "functions": [1, "x"], "sdk": null}))
                .unwrap();
        assert_eq!(app.app_name, "");
        assert_eq!(app.functions, vec![json!(1), json!("x")]);
    }

    #[test]
    fn introspection_bodies() {
        let mut body = Introspection {
            function_count: 1,
            mode: "dev".into(),
            ..Introspection::default()
        };
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 9);
        assert_eq!(v["authentication_succeeded"], Value::Null);
        body.authenticated = Some(AuthenticatedIntrospection::default());
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 21);
        assert_eq!(v["serve_path"], Value::Null);
        let back: Introspection = serde_json::from_value(v).unwrap();
        assert_eq!(back, body);
    }
}
