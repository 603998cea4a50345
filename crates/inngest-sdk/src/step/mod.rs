//! Step tools: memoized, retried units of work inside a function.
//!
//! Every tool is a method on [`Step`] returning a future, memoized by the protocol's hashed step
//! id ([`hash_id`]). The id (with its `:N` repeat index) is taken when the method is *called*, in
//! code order like the JS SDK, not when the future is first polled: a step future that is created
//! and then dropped unpolled (the losing branch of a `select`) still counts, and gives its place
//! in the replay order up instead of holding later steps back.
//!
//! A tool whose result is already known resolves at once; otherwise it suspends the function (its
//! future simply never completes in this call) and the SDK reports the step to Inngest, which
//! calls the function again once the step has a result. User code needs none of the mechanics.
//!
//! Parallel steps are plain Rust: await several step futures together with `futures::join!`,
//! `join_all` or `try_join!` and every branch is discovered in the same call and reported as
//! planned steps; `futures::select!`-style races replay in their original completion order.

pub(crate) mod state;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytestring::ByteString;
use futures_util::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::value::RawValue;
use tracing::Instrument;

pub use ai::Ai;
pub use fetch::{FetchRequest, FetchResponse};
pub use inngest_protocol::step_id::hash_id;
pub use realtime::RealtimeSteps;
pub use signal::{Signal, WaitForSignal};

mod ai;
mod fetch;
mod realtime;
mod signal;

use crate::error::{Error, ErrorKind, ErrorObject, StepError};
use crate::event::Event;
use crate::middleware::{StepInfo, StepKind};
use inngest_protocol::step_id::StepId;
use inngest_protocol::wire::{OpCode, Timing};
use state::{step_op, CallState, Executed};

/// The step tools of one function call. Cheap to clone; clones share the call.
#[derive(Clone)]
pub struct Step {
    pub(crate) call: Arc<CallState>,
    pub(crate) env: Arc<StepEnv>,
}

/// What step tools need from the serving app.
pub(crate) struct StepEnv {
    pub app_id: String,
    pub client: Option<crate::Inngest>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step")
            .field("app_id", &self.env.app_id)
            .finish_non_exhaustive()
    }
}

impl Step {
    /// Runs `f` once, durably: its output is memoized under `id` and returned on every later call.
    ///
    /// The closure returns [`Result<T>`](crate::Result) (any error converts into [`Error`] with
    /// `?`, so a plain `Ok(value)` needs no annotation). An `Err` is retried by Inngest (with the
    /// function's retries) unless it is [`NonRetriable`](crate::NonRetriable);
    /// when the step fails for good, `run` returns the [`StepError`] to the function, which may
    /// handle it or let it escape with `?`. The output always round-trips through JSON.
    ///
    /// ```no_run
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::Error> {
    /// let total: u64 = step.run("sum", || async { Ok(40 + 2) }).await?;
    /// # Ok(()) }
    /// ```
    pub fn run<'s, 'i, T, F, Fut>(
        &'s self,
        id: &'i str,
        f: F,
    ) -> impl Future<Output = Result<T, StepError>> + use<'s, 'i, T, F, Fut>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        self.run_op(self.reserve(id), None, None, f)
    }

    /// Takes the next id for `id` now (code order) and, for a memoized step, its place in the
    /// replay order, which a future dropped before its turn gives up.
    fn reserve<'s, 'i>(&'s self, id: &'i str) -> Reserved<'s, 'i> {
        let sid = self.call.next_id(id);
        let memo = self.call.memo(&sid.hash);
        let turn = self.call.wait_turn(memo.and_then(|e| e.pos));
        Reserved { sid, memo, turn }
    }

    /// A `step.run`-style step: the memoized output, or the body run once when granted.
    ///
    /// Not an `async fn`: its arguments are taken apart here, so the future holds each part once
    /// (it is moved into the function's own future at every step, replayed or not).
    fn run_op<'s, 'i, 'n, T, F, Fut>(
        &'s self,
        reserved: Reserved<'s, 'i>,
        name: Option<&'n str>,
        opts: Option<serde_json::Value>,
        f: F,
    ) -> impl Future<Output = Result<T, StepError>> + use<'s, 'i, 'n, T, F, Fut>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        let Reserved { sid, memo, turn } = reserved;
        let kind = if name == Some("sendEvent") {
            StepKind::SendEvent
        } else {
            StepKind::Run
        };
        async move {
            if let Some(entry) = memo {
                turn.await;
                return self.replayed(&sid, kind, &entry.value).await.decode();
            }
            drop(turn);
            // On the heap: a replayed step's future then stays small, and only the one
            // executed step pays for this.
            Box::pin(self.execute_op(sid, kind, name, opts, f)).await
        }
    }

    /// The part of [`Step::run_op`] for a step that is not memoized: report it, and run it when
    /// granted.
    async fn execute_op<T, F, Fut>(
        &self,
        sid: StepId<'_>,
        kind: StepKind,
        name: Option<&str>,
        opts: Option<serde_json::Value>,
        f: F,
    ) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send,
    {
        let mut op = step_op(&sid, OpCode::StepRun, None);
        if let Some(name) = name {
            op.name = Some(name.to_owned());
        }
        op.opts = opts;
        if self.call.new_step_reached() {
            self.start_execution().await;
        }
        if self.call.discover(op.clone(), true).await.is_err() {
            return Err(nested_error(&sid.user));
        }

        self.call.begin(&sid.hash);
        let started = SystemTime::now();
        let span = crate::telemetry::step_span(&sid.user, &sid.hash);
        let body = self.run_body(&sid.hash, span.in_scope(f));
        let result = match self.call.hooks() {
            None => body.instrument(span.clone()).await,
            Some(hooks) => {
                let info = self.step_info(&sid, kind);
                hooks
                    .run_step(&info, Box::pin(body))
                    .instrument(span.clone())
                    .await
            }
        };
        let timing = timing_since(started);
        op.timing = Some(timing);
        let retry_after = match result {
            Ok(data) => {
                op.data = Some(data);
                None
            }
            Err(err) => {
                let retry_after = match err.kind() {
                    ErrorKind::RetryAfter(at) => Some(*at),
                    _ => None,
                };
                let final_failure = !err.is_retriable() || self.call.is_final_attempt();
                op.op = if final_failure {
                    OpCode::StepFailed
                } else {
                    OpCode::StepError
                };
                op.error = Some(err.to_wire());
                retry_after.filter(|_| !final_failure)
            }
        };
        crate::telemetry::step_finished(span, &op);
        let executed_ok = op.op == OpCode::StepRun;
        self.call.finish(Executed { op, retry_after });
        if !executed_ok {
            // A failed attempt always ends the call with its StepError / StepFailed op.
            return std::future::pending().await;
        }
        // Classic mode: the call ends with the StepRun op and this future is dropped. With
        // checkpointing, the serve handler records the result with Inngest and resumes us with
        // the output, which round-trips through JSON like a memoized one.
        let data = self.call.wait_resumed(sid.hash.as_str()).await;
        let Some(hooks) = self.call.hooks() else {
            return decode_data(&data);
        };
        match hooks.step_input(&self.step_info(&sid, kind), data, false) {
            Ok(data) => decode_data(&data),
            Err(e) => self.hook_failed(e).await,
        }
    }

    /// Polls a step's body with the "inside a step" marker set, so a step tool called from the
    /// body (a nested step) is told apart from a parallel branch discovered meanwhile; its output
    /// as JSON, or its error (a panic becomes a retriable error).
    async fn run_body<T, Fut>(&self, hash: &str, body: Fut) -> Result<Box<RawValue>, Error>
    where
        T: Serialize,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut body = std::pin::pin!(std::panic::AssertUnwindSafe(body).catch_unwind());
        let outcome = std::future::poll_fn(|cx| {
            self.call.set_in_body(Some(hash));
            let polled = body.as_mut().poll(cx);
            self.call.set_in_body(None);
            polled
        })
        .await;
        let nested = self.call.take_nested();
        match outcome {
            _ if nested.is_some() => Err(Error::msg(nested.unwrap_or_default())
                .with_name("NestedStepError")
                .non_retriable()),
            Ok(Ok(value)) => serde_json::value::to_raw_value(&value).map_err(|e| {
                Error::msg(format!("step output could not be serialized: {e}")).non_retriable()
            }),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                let message = panic_message(&*panic);
                if let Some(hooks) = self.call.hooks() {
                    hooks.on_panic(&message);
                }
                Err(Error::msg(format!("step panicked: {message}")))
            }
        }
    }

    /// What hooks are told about a step.
    fn step_info(&self, sid: &StepId<'_>, kind: StepKind) -> StepInfo {
        StepInfo {
            id: sid.user.0.to_owned(),
            hash: sid.hash.as_str().to_owned(),
            kind,
            attempt: self.call.attempt,
        }
    }

    /// A memoized step's value as the code receives it (through `transform_step_input`); the
    /// last one ends the replay (and runs `before_execution`).
    async fn replayed(&self, sid: &StepId<'_>, kind: StepKind, value: &ByteString) -> Replayed {
        let Some(value) = self.step_input(sid, kind, value) else {
            return std::future::pending().await;
        };
        if self.call.memo_resolved() {
            self.start_execution().await;
        }
        value
    }

    /// The memoized value after `transform_step_input`; `None` when a hook failed (the call
    /// then ends with its error).
    ///
    /// Not `async`, and no hook error is held across an `await`: every step's future would
    /// carry room for one.
    fn step_input(&self, sid: &StepId<'_>, kind: StepKind, value: &ByteString) -> Option<Replayed> {
        let Some(hooks) = self.call.hooks() else {
            return Some(Replayed::Text(value.clone()));
        };
        match hooks.step_input(&self.step_info(sid, kind), value.as_bytes().clone(), true) {
            Ok(v) => Some(Replayed::Hooked(v)),
            Err(e) => {
                self.call.fail(e);
                None
            }
        }
    }

    /// `before_execution`, awaited inside a step future (the call decides nothing meanwhile).
    async fn start_execution(&self) {
        let Some(hooks) = self.call.hooks() else {
            return;
        };
        self.call.hook_running(true);
        // Boxed: the hook's future would otherwise live in every step's future.
        let result = Box::pin(hooks.before_execution()).await;
        self.call.hook_running(false);
        if self.failed(result) {
            std::future::pending::<()>().await;
        }
    }

    /// Records a hook's error (the call ends with it); `true` if there was one.
    fn failed(&self, result: Result<(), Error>) -> bool {
        match result {
            Ok(()) => false,
            Err(e) => {
                self.call.fail(e);
                true
            }
        }
    }

    /// A hook failed inside a step: the call ends with its error; this step never resolves.
    async fn hook_failed<T>(&self, err: Error) -> T {
        self.call.fail(err);
        std::future::pending().await
    }

    /// Pauses the run for `duration` (durably: the process may restart meanwhile).
    ///
    /// Durations have a one-second resolution; sub-second values round up.
    pub fn sleep<'s, 'i>(
        &'s self,
        id: &'i str,
        duration: Duration,
    ) -> impl Future<Output = ()> + use<'s, 'i> {
        let opts = serde_json::json!({ "duration": inngest_protocol::timestr::format(duration) });
        let op = self.async_op(self.reserve(id), OpCode::Sleep, opts);
        async move {
            op.await;
        }
    }

    /// Pauses the run until `until`. A time in the past resolves at once.
    pub fn sleep_until<'s, 'i, U: Into<SystemTime>>(
        &'s self,
        id: &'i str,
        until: U,
    ) -> impl Future<Output = ()> + use<'s, 'i, U> {
        let until: SystemTime = until.into();
        let reserved = self.reserve(id);
        // A past instant never needs the executor: resolve without an op (the id still counts,
        // so later repeats keep their indices).
        let past = until <= SystemTime::now();
        let dt: chrono::DateTime<chrono::Utc> = until.into();
        let opts = serde_json::json!({
            "duration": dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        async move {
            if past {
                if let Some(entry) = reserved.memo {
                    reserved.turn.await;
                    self.replayed(&reserved.sid, StepKind::Sleep, &entry.value)
                        .await;
                }
                return;
            }
            self.async_op(reserved, OpCode::Sleep, opts).await;
        }
    }

    /// Waits for an event matching `opts`; `None` when the timeout passes first.
    ///
    /// Typed: `wait_for_event::<OrderPaid>(id, WaitFor::new(timeout))` waits for the event
    /// type's name. Untyped: [`WaitForEvent`] names the event, `T` is any data type. A matched
    /// event whose data does not decode as `T` is a [`StepError`] naming the field; with `?` it
    /// fails the run without retries.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use inngest_sdk::{Event, WaitFor, WaitForEvent};
    /// # #[derive(serde::Serialize, serde::Deserialize, inngest_sdk::Event)]
    /// # #[event(name = "shop/order.paid")]
    /// # struct OrderPaid { order_id: String }
    /// # async fn demo(step: inngest_sdk::Step) -> Result<(), inngest_sdk::StepError> {
    /// let paid: Option<Event<OrderPaid>> = step
    ///     .wait_for_event::<OrderPaid>(
    ///         "wait-for-payment",
    ///         WaitFor::new(Duration::from_secs(3600)).matching("data.order_id"),
    ///     )
    ///     .await?;
    /// let refunded: Option<Event<serde_json::Value>> = step
    ///     .wait_for_event(
    ///         "wait-for-refund",
    ///         WaitForEvent::new("shop/order.refunded", Duration::from_secs(3600)),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for_event<'s, 'i, T: DeserializeOwned>(
        &'s self,
        id: &'i str,
        opts: impl WaitOptions<T>,
    ) -> impl Future<Output = Result<Option<Event<T>>, StepError>> + Captures<'s> + Captures<'i>
    {
        let reserved = self.reserve(id);
        let opts = opts.into_wait();
        let mut o = serde_json::Map::new();
        o.insert("event".into(), opts.event.into());
        if let Some(expr) = opts.if_expr {
            o.insert("if".into(), expr.into());
        }
        o.insert(
            "timeout".into(),
            inngest_protocol::timestr::format(opts.timeout).into(),
        );
        let op = self.async_op(reserved, OpCode::WaitForEvent, serde_json::Value::Object(o));
        async move { decode_resolved(&op.await, "the awaited event") }
    }

    /// Invokes the typed function `function` with `input` as its event data and waits for its
    /// output: both types come from the function, so a wrong input does not compile. An output
    /// that does not decode is a [`StepError`] naming the field.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize, inngest_sdk::Event)]
    /// # #[event(name = "shop/tax.requested")]
    /// # struct TaxInput { cents: u64 }
    /// # async fn demo(step: inngest_sdk::Step, compute_tax: inngest_sdk::TypedFunction<TaxInput, u64>) -> Result<(), inngest_sdk::StepError> {
    /// let tax: u64 = step.invoke("tax", &compute_tax, TaxInput { cents: 1200 }).await?;
    /// # Ok(()) }
    /// ```
    pub fn invoke<'s, 'i, I, O>(
        &'s self,
        id: &'i str,
        function: &crate::TypedFunction<I, O>,
        input: I,
    ) -> impl Future<Output = Result<O, StepError>> + use<'s, 'i, I, O>
    where
        I: crate::EventType,
        O: DeserializeOwned,
    {
        let data = match serde_json::to_value(input) {
            Ok(data) => data,
            Err(e) => {
                let err = StepError {
                    name: "SerializationError".to_owned(),
                    message: format!("the invoke input could not be serialized: {e}"),
                    stack: None,
                };
                // The id still counts, so later repeats keep their indices.
                drop(self.reserve(id));
                return futures_util::future::Either::Left(std::future::ready(Err(err)));
            }
        };
        let opts = Invoke::new(InvokeTarget::Local(function.id().to_owned()), data);
        futures_util::future::Either::Right(self.invoke_with(id, opts))
    }

    /// Invokes another function (untyped) and waits for its return value.
    ///
    /// Invoking a [`Function`](crate::Function) of the same app computes its composite id
    /// (`<app id>-<function id>`); use [`InvokeTarget::id`] for a function of another app.
    pub fn invoke_with<'s, 'i, R: DeserializeOwned>(
        &'s self,
        id: &'i str,
        opts: Invoke,
    ) -> impl Future<Output = Result<R, StepError>> + use<'s, 'i, R> {
        let reserved = self.reserve(id);
        let function_id = match opts.target {
            InvokeTarget::Local(fn_id) => format!("{}-{}", self.env.app_id, fn_id),
            InvokeTarget::Composite(id) => id,
        };
        let mut payload = serde_json::Map::new();
        payload.insert("data".into(), opts.data);
        if let Some(user) = opts.user {
            payload.insert("user".into(), user);
        }
        let mut o = serde_json::Map::new();
        o.insert("function_id".into(), function_id.into());
        o.insert("payload".into(), serde_json::Value::Object(payload));
        if let Some(t) = opts.timeout {
            o.insert(
                "timeout".into(),
                inngest_protocol::timestr::format(t).into(),
            );
        }
        let op = self.async_op(
            reserved,
            OpCode::InvokeFunction,
            serde_json::Value::Object(o),
        );
        async move { decode_result(&op.await) }
    }

    /// Sends events as a step: sent once, never again on replay. Returns the event ids.
    ///
    /// `events` is one event or a `Vec` or array of them: typed events (`OrderCreated { .. }`),
    /// or untyped [`Event`]s.
    pub fn send_event<'s, 'i, V: crate::IntoEvents>(
        &'s self,
        id: &'i str,
        events: V,
    ) -> impl Future<Output = Result<Vec<String>, StepError>> + use<'s, 'i, V> {
        let events = events.into_events();
        let client = self.env.client.clone();
        let stack = self
            .call
            .hooks()
            .map(|h| h.stack.clone())
            .unwrap_or_default();
        let opts = serde_json::json!({ "type": "step.sendEvent" });
        let op = self.run_op(
            self.reserve(id),
            Some("sendEvent"),
            Some(opts),
            || async move {
                let client = client.ok_or_else(|| {
                    Error::msg("send_event needs a client: serve the app with an Inngest client")
                        .non_retriable()
                })?;
                let events = events.map_err(|e| Error::from(e).non_retriable())?;
                let ids = client
                    .send_through(&stack, events)
                    .await
                    .map_err(Error::from)?;
                Ok(SentIds { ids })
            },
        );
        async move {
            let sent: SentIds = op.await?;
            Ok(sent.ids)
        }
    }

    /// Reports an async op (sleep, wait, invoke) and returns its memoized value once it has one.
    async fn async_op(
        &self,
        reserved: Reserved<'_, '_>,
        code: OpCode,
        opts: serde_json::Value,
    ) -> bytes::Bytes {
        self.async_op_named(reserved, code, None, opts).await
    }

    /// [`Step::async_op`] with the op's `name` set (default: the step id).
    async fn async_op_named(
        &self,
        reserved: Reserved<'_, '_>,
        code: OpCode,
        name: Option<String>,
        opts: serde_json::Value,
    ) -> bytes::Bytes {
        let Reserved { sid, memo, turn } = reserved;
        if let Some(entry) = memo {
            turn.await;
            return self
                .replayed(&sid, kind_of(code), &entry.value)
                .await
                .into_bytes();
        }
        let mut op = step_op(&sid, code, None);
        if name.is_some() {
            op.name = name;
        }
        op.opts = Some(opts);
        if self.call.new_step_reached() {
            self.start_execution().await;
        }
        if self.call.discover(op, false).await.is_err() {
            // Called inside another step: that step fails with a clear error (see `run_op`).
            return bytes::Bytes::from_static(b"null");
        }
        // An async op is never granted: the executor resolves it.
        std::future::pending().await
    }

    /// The current attempt (0-based) of this call.
    pub fn attempt(&self) -> u32 {
        self.call.attempt
    }
}

/// Names a lifetime that a returned future captures, where `use<..>` cannot be written (a
/// method with an argument-position `impl Trait`). Implemented for every type.
#[doc(hidden)]
pub trait Captures<'a> {}

impl<T: ?Sized> Captures<'_> for T {}

/// A step id taken in code order, with the memo (if any) and the step's turn in replay order.
struct Reserved<'s, 'i> {
    sid: inngest_protocol::step_id::StepId<'i>,
    memo: Option<&'s state::MemoEntry>,
    turn: state::WaitTurn<'s>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SentIds {
    ids: Vec<String>,
}

/// Untyped options of [`Step::wait_for_event`]: the event is named here.
#[derive(Debug, Clone)]
pub struct WaitForEvent {
    event: String,
    timeout: Duration,
    if_expr: Option<String>,
}

impl WaitForEvent {
    /// Wait for an event named `event`, at most `timeout`.
    pub fn new(event: impl Into<String>, timeout: Duration) -> Self {
        WaitForEvent {
            event: event.into(),
            timeout,
            if_expr: None,
        }
    }

    /// Only accept events for which this expression holds (`event` = the run's triggering event,
    /// `async` = the candidate). Prefer [`WaitForEvent::matching`] for the common case.
    pub fn if_expr(mut self, expr: impl Into<String>) -> Self {
        self.if_expr = Some(expr.into());
        self
    }

    /// Only accept events whose `field` equals the triggering event's same field, e.g.
    /// `matching("data.order_id")` → `event.data.order_id == async.data.order_id`.
    pub fn matching(self, field: &str) -> Self {
        let expr = inngest_protocol::quote::fields_equal(field, field);
        self.if_expr(expr)
    }
}

/// Typed options of [`Step::wait_for_event`]: the event type (the turbofish) names the event.
#[derive(Debug, Clone)]
pub struct WaitFor {
    timeout: Duration,
    if_expr: Option<String>,
}

impl WaitFor {
    /// Wait at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        WaitFor {
            timeout,
            if_expr: None,
        }
    }

    /// Only accept events for which this expression holds (`event` = the run's triggering event,
    /// `async` = the candidate).
    pub fn if_expr(mut self, expr: impl Into<String>) -> Self {
        self.if_expr = Some(expr.into());
        self
    }

    /// Only accept events whose `field` equals the triggering event's same field, e.g.
    /// `matching("data.order_id")` → `event.data.order_id == async.data.order_id`.
    pub fn matching(self, field: &str) -> Self {
        let expr = inngest_protocol::quote::fields_equal(field, field);
        self.if_expr(expr)
    }
}

/// The options of [`Step::wait_for_event`] for data type `T`: [`WaitFor`] when `T` is an
/// [`EventType`](crate::EventType), [`WaitForEvent`] (which names the event) for any `T`.
pub trait WaitOptions<T> {
    /// The event name, timeout and `if` expression.
    fn into_wait(self) -> WaitForEvent;
}

impl<T: crate::EventType> WaitOptions<T> for WaitFor {
    fn into_wait(self) -> WaitForEvent {
        WaitForEvent {
            event: T::NAME.to_owned(),
            timeout: self.timeout,
            if_expr: self.if_expr,
        }
    }
}

impl<T> WaitOptions<T> for WaitForEvent {
    fn into_wait(self) -> WaitForEvent {
        self
    }
}

/// Which function [`Step::invoke_with`] calls.
#[derive(Debug, Clone)]
pub enum InvokeTarget {
    /// A function of the serving app, by its own id.
    Local(String),
    /// A composite id `<app id>-<function id>`, e.g. of another app.
    Composite(String),
}

impl InvokeTarget {
    /// A function by composite id (`<app id>-<function id>`).
    pub fn id(composite: impl Into<String>) -> Self {
        InvokeTarget::Composite(composite.into())
    }
}

impl From<&crate::Function> for InvokeTarget {
    fn from(f: &crate::Function) -> Self {
        InvokeTarget::Local(f.id().to_owned())
    }
}

impl<I, O> From<&crate::TypedFunction<I, O>> for InvokeTarget {
    fn from(f: &crate::TypedFunction<I, O>) -> Self {
        InvokeTarget::Local(f.id().to_owned())
    }
}

/// Options of [`Step::invoke_with`].
#[derive(Debug, Clone)]
pub struct Invoke {
    target: InvokeTarget,
    data: serde_json::Value,
    user: Option<serde_json::Value>,
    timeout: Option<Duration>,
}

impl Invoke {
    /// Invoke `target` with `data` as the event data it receives.
    pub fn new(target: impl Into<InvokeTarget>, data: impl Serialize) -> Self {
        Invoke {
            target: target.into(),
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
            user: None,
            timeout: None,
        }
    }

    /// Give up (with an error) if the invoked function has not finished after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A memoized value as the step future gets it, after the middleware saw it.
enum Replayed {
    /// The request's own text: checked UTF-8 once, with the whole body.
    Text(ByteString),
    /// What a middleware's `step_input` made of it.
    Hooked(bytes::Bytes),
}

impl Replayed {
    /// Decodes a run-style memo into the step's output.
    fn decode<T: DeserializeOwned>(&self) -> Result<T, StepError> {
        match self {
            Replayed::Text(text) => decode_result_text(text),
            Replayed::Hooked(bytes) => decode_result(bytes),
        }
    }

    fn into_bytes(self) -> bytes::Bytes {
        match self {
            Replayed::Text(text) => text.into_bytes(),
            Replayed::Hooked(bytes) => bytes,
        }
    }
}

/// Decodes a run-style memo (`{"data": …}` or `{"error": …}`).
fn decode_result<T: DeserializeOwned>(memo: &[u8]) -> Result<T, StepError> {
    match std::str::from_utf8(memo) {
        Ok(text) => decode_result_text(text),
        // Not UTF-8: the general reading reports it.
        Err(_) => decode_envelope(memo),
    }
}

/// [`decode_result`] of a memo known to be UTF-8 (a slice of a request body that was checked
/// once as a whole), so no second check of its bytes.
fn decode_result_text<T: DeserializeOwned>(memo: &str) -> Result<T, StepError> {
    if memo == "null" {
        return serde_json::from_str("null").map_err(|e| decode_error("step output", &e));
    }
    // The common `{"data": …}` in one pass; anything else takes the general reading below.
    if let Some(value) = state::decode_data_only(memo) {
        return Ok(value);
    }
    decode_envelope(memo.as_bytes())
}

/// The general reading of a run-style memo: the envelope first, then its `data` as `T`.
fn decode_envelope<T: DeserializeOwned>(memo: &[u8]) -> Result<T, StepError> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow, default)]
        data: Option<&'a RawValue>,
        #[serde(default)]
        error: Option<ErrorObject>,
    }
    let env: Envelope<'_> =
        serde_json::from_slice(memo).map_err(|e| decode_error("memoized step", &e))?;
    match (env.data, env.error) {
        (_, Some(err)) => Err(StepError::from_wire(err)),
        (Some(raw), None) => {
            let de = &mut serde_json::Deserializer::from_str(raw.get());
            serde_path_to_error::deserialize(de).map_err(|e| path_error("step output", &e))
        }
        // `{"data": null}` deserializes `data` as absent.
        (None, None) => serde_json::from_str("null").map_err(|e| decode_error("step output", &e)),
    }
}

/// Decodes what a wait resolved to: `null` (it timed out) is `None`; anything else must match
/// `T`, or the error names `what` and the field.
fn decode_resolved<T: DeserializeOwned>(memo: &[u8], what: &str) -> Result<Option<T>, StepError> {
    if memo == b"null" {
        return Ok(None);
    }
    let de = &mut serde_json::Deserializer::from_slice(memo);
    serde_path_to_error::deserialize(de)
        .map(Some)
        .map_err(|e| path_error(what, &e))
}

/// Decodes a step output given as bare JSON (not wrapped in `{"data": …}`).
fn decode_data<T: DeserializeOwned>(data: &[u8]) -> Result<T, StepError> {
    serde_json::from_slice(data).map_err(|e| decode_error("step output", &e))
}

fn nested_error(id: &str) -> StepError {
    StepError {
        name: "NestedStepError".to_owned(),
        message: format!(
            "step `{id}` was called inside another step's body; steps cannot be nested"
        ),
        stack: None,
    }
}

fn path_error(what: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> StepError {
    StepError {
        name: "DeserializationError".to_owned(),
        message: format!(
            "{what} does not match the expected type at `{}`: {}",
            e.path(),
            e.inner()
        ),
        stack: None,
    }
}

fn decode_error(what: &str, e: &serde_json::Error) -> StepError {
    StepError {
        name: "DeserializationError".to_owned(),
        message: format!("{what} does not match the expected type: {e}"),
        stack: None,
    }
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_owned()
    }
}

/// The kind of an async op's step.
fn kind_of(code: OpCode) -> StepKind {
    match code {
        OpCode::WaitForEvent => StepKind::WaitForEvent,
        OpCode::InvokeFunction => StepKind::Invoke,
        OpCode::WaitForSignal => StepKind::WaitForSignal,
        OpCode::Gateway => StepKind::Fetch,
        OpCode::AiGateway => StepKind::AiInfer,
        _ => StepKind::Sleep,
    }
}

fn timing_since(started: SystemTime) -> Timing {
    let a = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let b = started.elapsed().map(|d| d.as_nanos() as u64).unwrap_or(0);
    Timing { a, b }
}
