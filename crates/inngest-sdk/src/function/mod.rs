//! Functions: the builder, triggers, flow control, and the typed handler context.
//!
//! ```
//! use std::time::Duration;
//! use inngest_sdk::{Ctx, Function, Step, Trigger, Concurrency};
//!
//! #[derive(serde::Deserialize)]
//! struct Signup { user_id: String }
//!
//! let welcome = Function::new("send-welcome")
//!     .name("Send welcome email")
//!     .trigger(Trigger::event("app/user.created"))
//!     .retries(3)
//!     .concurrency(Concurrency::new(5).key("event.data.user_id"))
//!     .handler(|ctx: Ctx<Signup>, step: Step| async move {
//!         let user = ctx.event.data.user_id.clone();
//!         step.sleep("cool-down", Duration::from_secs(60)).await;
//!         let sent: bool = step.run("send", || async move { Ok(!user.is_empty()) }).await?;
//!         Ok(serde_json::json!({ "sent": sent }))
//!     });
//! assert_eq!(welcome.id(), "send-welcome");
//! ```

mod config;

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use config::{
    BatchEvents, Cancel, Concurrency, ConcurrencyScope, Debounce, RateLimit, Singleton,
    SingletonMode, Throttle, Timeouts, Trigger,
};
pub(crate) use config::{FunctionConfig, InvalidFunction};

use crate::error::{Error, ErrorObject};
use crate::event::{DecodeError, Event, EventSet};
use crate::middleware::{Extensions, Logger, Middleware, Stack};
use crate::step::Step;

/// What a handler receives besides the [`Step`] tools: the triggering event(s) and run facts.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ctx<T> {
    /// The triggering event (the first one of a batch).
    pub event: Event<T>,
    /// Every event of a batch (just `event` when not batched).
    pub events: Vec<Event<T>>,
    /// The run's id.
    pub run_id: String,
    /// 0-based attempt of the current step or call.
    pub attempt: u32,
    /// Attempts allowed in total (retries + 1).
    pub max_attempts: u32,
    /// The function's own id (without the app prefix).
    pub function_id: String,
    extensions: Arc<Extensions>,
    log: Logger,
}

impl<T> Ctx<T> {
    /// The value of type `T` a middleware attached to this run
    /// ([`Input::insert`](crate::middleware::Input::insert)); a missing one is a non-retriable
    /// error naming the type.
    ///
    /// ```
    /// # fn demo(ctx: inngest_sdk::Ctx<serde_json::Value>) -> Result<(), inngest_sdk::Error> {
    /// struct Db { url: String }
    /// let db: &Db = ctx.get::<Db>()?;
    /// # let _ = &db.url; Ok(()) }
    /// ```
    pub fn get<D: std::any::Any + Send + Sync>(&self) -> Result<&D, Error> {
        self.extensions.get::<D>()
    }

    /// The shared value of type `T` a middleware attached ([`Ctx::get`]), to keep beyond `ctx`.
    pub fn get_arc<D: std::any::Any + Send + Sync>(&self) -> Result<Arc<D>, Error> {
        self.extensions.get_arc::<D>()
    }

    /// The handler's logger: quiet while the call replays memoized steps, so each line is
    /// logged once per run ([`Logger`]).
    pub fn log(&self) -> &Logger {
        &self.log
    }

    /// Whether this is the last attempt: an error now will not be retried.
    pub fn is_final_attempt(&self) -> bool {
        self.attempt.saturating_add(1) >= self.max_attempts
    }
}

/// The `data` of the `inngest/function.failed` event an [`on_failure`](FunctionBuilder::on_failure)
/// handler receives: the failed run, its error, and its original triggering event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct FunctionFailed<T> {
    /// Composite id of the failed function.
    pub function_id: String,
    /// The failed run's id.
    pub run_id: String,
    /// The final error.
    pub error: ErrorObject,
    /// The event that triggered the failed run.
    pub event: Event<T>,
}

/// Raw inputs of one call, before the event is decoded into the handler's type.
pub(crate) struct CallInput {
    pub event: bytes::Bytes,
    pub events: Option<bytes::Bytes>,
    pub run_id: String,
    pub attempt: u32,
    pub max_attempts: u32,
    pub step: Step,
    pub extensions: Arc<Extensions>,
}

type HandlerFuture = BoxFuture<'static, Result<Box<RawValue>, Error>>;

/// A type-erased handler.
pub(crate) trait Handler: Send + Sync + 'static {
    fn call(&self, function_id: &str, input: CallInput) -> HandlerFuture;
}

/// How a handler's event type is read from the request.
trait Decode<T>: Send + Sync + 'static {
    /// One event.
    fn event(raw: &[u8]) -> Result<Event<T>, Error>;
    /// A batch (a JSON array of events).
    fn events(raw: &[u8]) -> Result<Vec<Event<T>>, Error>;
}

/// Plain serde: `Ctx<T>` of an untyped trigger.
struct Serde;

impl<T: DeserializeOwned> Decode<T> for Serde {
    fn event(raw: &[u8]) -> Result<Event<T>, Error> {
        let de = &mut serde_json::Deserializer::from_slice(raw);
        serde_path_to_error::deserialize(de).map_err(|e| event_type_error("event", &e))
    }

    fn events(raw: &[u8]) -> Result<Vec<Event<T>>, Error> {
        let de = &mut serde_json::Deserializer::from_slice(raw);
        serde_path_to_error::deserialize(de).map_err(|e| event_type_error("events", &e))
    }
}

/// By the event's name: `Ctx<S>` of typed triggers ([`EventSet`]).
struct BySet;

impl<S: EventSet> Decode<S> for BySet {
    fn event(raw: &[u8]) -> Result<Event<S>, Error> {
        S::decode_event(raw).map_err(|e| decode_error("event", &e))
    }

    fn events(raw: &[u8]) -> Result<Vec<Event<S>>, Error> {
        let raws: Vec<&RawValue> = serde_json::from_slice(raw).map_err(|e| {
            Error::msg(format!("the events are not a JSON array of events: {e}"))
                .with_name("EventDecodeError")
                .non_retriable()
        })?;
        raws.iter()
            .enumerate()
            .map(|(i, r)| {
                S::decode_event(r.get().as_bytes())
                    .map_err(|e| decode_error(&format!("events[{i}]"), &e))
            })
            .collect()
    }
}

/// `inngest/function.failed` of a typed function: the original event decoded by its name.
struct FailedBySet;

impl<S: EventSet> Decode<FunctionFailed<S>> for FailedBySet {
    fn event(raw: &[u8]) -> Result<Event<FunctionFailed<S>>, Error> {
        let failed: Event<FunctionFailed<serde_json::Value>> = Serde::event(raw)?;
        failed
            .try_map(|_, f| {
                let event = f.event.try_map(|name, data| {
                    S::from_parts(name, data).map_err(|e| e.under("data.event.data"))
                })?;
                Ok(FunctionFailed {
                    function_id: f.function_id,
                    run_id: f.run_id,
                    error: f.error,
                    event,
                })
            })
            .map_err(|e| decode_error("event", &e))
    }

    fn events(raw: &[u8]) -> Result<Vec<Event<FunctionFailed<S>>>, Error> {
        let raws: Vec<&RawValue> = serde_json::from_slice(raw).map_err(|e| {
            Error::msg(format!("the events are not a JSON array of events: {e}")).non_retriable()
        })?;
        raws.iter()
            .map(|r| Self::event(r.get().as_bytes()))
            .collect()
    }
}

struct TypedHandler<F, T, D> {
    f: F,
    _event: std::marker::PhantomData<fn() -> (T, D)>,
}

impl<F, T, D> TypedHandler<F, T, D> {
    fn new(f: F) -> Self {
        TypedHandler {
            f,
            _event: std::marker::PhantomData,
        }
    }
}

impl<F, Fut, T, R, D> Handler for TypedHandler<F, T, D>
where
    F: Fn(Ctx<T>, Step) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, Error>> + Send + 'static,
    T: Send + 'static,
    D: Decode<T>,
    R: Serialize,
{
    fn call(&self, function_id: &str, input: CallInput) -> HandlerFuture {
        let ctx = match decode_ctx::<T, D>(function_id, &input) {
            Ok(ctx) => ctx,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let fut = (self.f)(ctx, input.step);
        Box::pin(async move {
            let out = fut.await?;
            serde_json::value::to_raw_value(&out).map_err(|e| {
                Error::msg(format!("function output could not be serialized: {e}")).non_retriable()
            })
        })
    }
}

fn decode_ctx<T, D: Decode<T>>(function_id: &str, input: &CallInput) -> Result<Ctx<T>, Error> {
    let event: Event<T> = D::event(&input.event)?;
    let events = match &input.events {
        Some(raw) => D::events(raw)?,
        None => Vec::new(),
    };
    let events = if events.is_empty() {
        vec![D::event(&input.event)?]
    } else {
        events
    };
    Ok(Ctx {
        event,
        events,
        run_id: input.run_id.clone(),
        attempt: input.attempt,
        max_attempts: input.max_attempts,
        function_id: function_id.to_owned(),
        extensions: input.extensions.clone(),
        log: Logger::new(input.step.call.replay_flag().clone()),
    })
}

fn event_type_error(what: &str, e: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    Error::msg(format!(
        "the {what} does not match the function's event type at `{}`: {}",
        e.path(),
        e.inner()
    ))
    .with_name("EventDecodeError")
    .non_retriable()
}

fn decode_error(what: &str, e: &DecodeError) -> Error {
    let message = match e {
        DecodeError::Data { path, message } => {
            format!("the {what} does not match the function's event type at `{path}`: {message}")
        }
        other => format!("the {what} does not match the function's event types: {other}"),
    };
    Error::msg(message)
        .with_name("EventDecodeError")
        .non_retriable()
}

/// A servable function: configuration plus handler. Build one with [`Function::new`].
#[derive(Clone)]
pub struct Function {
    pub(crate) config: FunctionConfig,
    pub(crate) handler: Arc<dyn Handler>,
    pub(crate) on_failure: Option<Arc<dyn Handler>>,
    pub(crate) middleware: Stack,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Function")
            .field("id", &self.config.id)
            .field("has_on_failure", &self.on_failure.is_some())
            .field("middleware", &self.middleware)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// Starts a function with this id (unique within the app; the wire id is `<app id>-<id>`).
    // The builder is the result type on purpose: `Function::new(id)...handler(f)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(id: impl Into<String>) -> FunctionBuilder {
        FunctionBuilder {
            config: FunctionConfig::new(id.into()),
            on_failure: None,
            middleware: Vec::new(),
            _events: std::marker::PhantomData,
        }
    }

    /// The function's id (without the app prefix).
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The function's display name.
    pub fn name(&self) -> &str {
        self.config.name.as_deref().unwrap_or(&self.config.id)
    }
}

/// The event type of a [`FunctionBuilder`] whose triggers are untyped: added with
/// [`FunctionBuilder::trigger`], decoded into whatever `Ctx<T>` the handler takes.
#[derive(Debug, Clone, Copy)]
pub struct Untyped;

/// Builder of a [`Function`]: every trigger and flow-control option of the register payload.
/// Finish with [`FunctionBuilder::handler`]. Options are validated when the app is served.
///
/// `S` is the event type of typed triggers ([`FunctionBuilder::on`], [`FunctionBuilder::on_any`]):
/// the handler then takes exactly `Ctx<S>` and the builder makes a [`TypedFunction`].
#[must_use = "call .handler(...) to finish the function"]
pub struct FunctionBuilder<S = Untyped> {
    config: FunctionConfig,
    on_failure: Option<Arc<dyn Handler>>,
    middleware: Vec<Arc<dyn Middleware>>,
    _events: std::marker::PhantomData<fn() -> S>,
}

impl<S> FunctionBuilder<S> {
    /// Display name (defaults to the id).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.config.name = Some(name.into());
        self
    }

    /// Description (shown in tooling; not part of the register payload).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.config.description = Some(description.into());
        self
    }

    /// Retries after the first attempt (0–20; Inngest's default is 4).
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = Some(retries);
        self
    }

    /// Adds a concurrency limit (at most 2).
    pub fn concurrency(mut self, c: Concurrency) -> Self {
        self.config.concurrency.push(c);
        self
    }

    /// Hard rate limit: excess runs are skipped.
    pub fn rate_limit(mut self, r: RateLimit) -> Self {
        self.config.rate_limit = Some(r);
        self
    }

    /// Throttle: excess runs are queued.
    pub fn throttle(mut self, t: Throttle) -> Self {
        self.config.throttle = Some(t);
        self
    }

    /// Debounce: run once after events stop arriving for a period.
    pub fn debounce(mut self, d: Debounce) -> Self {
        self.config.debounce = Some(d);
        self
    }

    /// Batch events into one run.
    pub fn batch_events(mut self, b: BatchEvents) -> Self {
        self.config.batch_events = Some(b);
        self
    }

    /// Cancels running runs when a matching event arrives (at most 5 rules).
    pub fn cancel_on(mut self, c: Cancel) -> Self {
        self.config.cancel.push(c);
        self
    }

    /// Priority expression returning seconds to move the run ahead (−600…600).
    pub fn priority(mut self, run_expr: impl Into<String>) -> Self {
        self.config.priority = Some(run_expr.into());
        self
    }

    /// Idempotency key expression: one run per key per 24 h.
    pub fn idempotency(mut self, key_expr: impl Into<String>) -> Self {
        self.config.idempotency = Some(key_expr.into());
        self
    }

    /// Start/finish timeouts.
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.config.timeouts = Some(t);
        self
    }

    /// Singleton: one run at a time per key, skipping or cancelling others.
    pub fn singleton(mut self, s: Singleton) -> Self {
        self.config.singleton = Some(s);
        self
    }

    /// Adds a middleware to this function only (inside the client's: see
    /// [`middleware`](crate::middleware) for the order). Its hooks also run for the function's
    /// failure handler.
    pub fn middleware(mut self, m: impl Middleware) -> Self {
        self.middleware.push(Arc::new(m));
        self
    }

    fn retype<U>(self) -> FunctionBuilder<U> {
        FunctionBuilder {
            config: self.config,
            on_failure: self.on_failure,
            middleware: self.middleware,
            _events: std::marker::PhantomData,
        }
    }
}

impl FunctionBuilder<Untyped> {
    /// Adds a trigger (event or cron); a function may have several (up to 10).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.config.triggers.push(trigger);
        self
    }

    /// Triggers on the event type `E` (its [`EventType::NAME`](crate::EventType::NAME)); the
    /// handler then takes `Ctx<E>`, checked at compile time.
    pub fn on<E: crate::EventType + Send + 'static>(self) -> FunctionBuilder<E> {
        self.on_any::<E>()
    }

    /// Triggers on every event of the set `S` (one trigger per name, e.g. a
    /// `#[derive(EventSet)]` enum); the handler takes `Ctx<S>`, decoded by the event's name.
    pub fn on_any<S: EventSet + Send + 'static>(mut self) -> FunctionBuilder<S> {
        for name in S::names() {
            self.config.triggers.push(Trigger::event(name));
        }
        self.retype()
    }

    /// A handler run when this function fails for good. It is registered as the companion
    /// function `<id>-failure`, triggered by `inngest/function.failed` for this function.
    pub fn on_failure<F, Fut, T, R>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<FunctionFailed<T>>, Step) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
        T: DeserializeOwned + Send + 'static,
        R: Serialize,
    {
        self.on_failure = Some(Arc::new(TypedHandler::<F, FunctionFailed<T>, Serde>::new(
            f,
        )));
        self
    }

    /// Finishes the function with its handler: an async closure taking the typed [`Ctx`] and the
    /// [`Step`] tools, returning [`Result<R>`](crate::Result) with a serializable `R`. Any error
    /// converts into [`Error`] with `?`, so a plain `Ok(value)` needs no annotation.
    pub fn handler<F, Fut, T, R>(self, f: F) -> Function
    where
        F: Fn(Ctx<T>, Step) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
        T: DeserializeOwned + Send + 'static,
        R: Serialize,
    {
        Function {
            config: self.config,
            handler: Arc::new(TypedHandler::<F, T, Serde>::new(f)),
            on_failure: self.on_failure,
            middleware: Stack::new(self.middleware),
        }
    }
}

impl<S: EventSet + Send + 'static> FunctionBuilder<S> {
    /// Adds a filter expression (an `if` over `event`) to the typed triggers, e.g.
    /// `event.data.total_cents > 0`.
    pub fn when(mut self, expr: impl Into<String>) -> Self {
        let expr = expr.into();
        self.config.triggers = std::mem::take(&mut self.config.triggers)
            .into_iter()
            .map(|t| t.when(expr.clone()))
            .collect();
        self
    }

    /// A handler run when this function fails for good, given the original event decoded as
    /// `S`, registered like the untyped one (the companion function `<id>-failure`).
    pub fn on_failure<F, Fut, R>(mut self, f: F) -> Self
    where
        F: Fn(Ctx<FunctionFailed<S>>, Step) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
        R: Serialize,
    {
        self.on_failure = Some(Arc::new(
            TypedHandler::<F, FunctionFailed<S>, FailedBySet>::new(f),
        ));
        self
    }

    /// Finishes the function with its handler, which takes exactly `Ctx<S>`. The result is a
    /// [`TypedFunction`] that also knows the output type `R`, for
    /// [`Step::invoke`](crate::Step::invoke).
    pub fn handler<F, Fut, R>(self, f: F) -> TypedFunction<S, R>
    where
        F: Fn(Ctx<S>, Step) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, Error>> + Send + 'static,
        R: Serialize,
    {
        TypedFunction {
            function: Function {
                config: self.config,
                handler: Arc::new(TypedHandler::<F, S, BySet>::new(f)),
                on_failure: self.on_failure,
                middleware: Stack::new(self.middleware),
            },
            _types: std::marker::PhantomData,
        }
    }
}

/// A function with typed triggers: its event type `In` and its output type `Out`. Serve it like
/// a [`Function`] (it converts with `.into()`), invoke it with [`Step::invoke`](crate::Step::invoke).
pub struct TypedFunction<In, Out> {
    function: Function,
    _types: std::marker::PhantomData<fn(In) -> Out>,
}

impl<In, Out> TypedFunction<In, Out> {
    /// The function's id (without the app prefix).
    pub fn id(&self) -> &str {
        self.function.id()
    }

    /// The untyped function, for serving next to others.
    pub fn function(&self) -> Function {
        self.function.clone()
    }
}

impl<In, Out> Clone for TypedFunction<In, Out> {
    fn clone(&self) -> Self {
        TypedFunction {
            function: self.function.clone(),
            _types: std::marker::PhantomData,
        }
    }
}

impl<In, Out> std::fmt::Debug for TypedFunction<In, Out> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("TypedFunction")
            .field(&self.function)
            .finish()
    }
}

impl<In, Out> From<TypedFunction<In, Out>> for Function {
    fn from(f: TypedFunction<In, Out>) -> Function {
        f.function
    }
}
