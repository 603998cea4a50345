//! Middleware: hooks around every call, step and event send.
//!
//! A [`Middleware`] is a value whose methods Inngest calls at fixed points of a call; every
//! method has a no-op default, so an implementation overrides only what it needs. Register it on
//! the client ([`InngestBuilder::middleware`](crate::client::InngestBuilder::middleware): every
//! function, and the client's own [`send`](crate::Inngest::send)) or on one function
//! ([`FunctionBuilder::middleware`](crate::FunctionBuilder::middleware)).
//!
//! # Order
//! Client middleware is outer, function middleware inner, each list in registration order. A
//! hook that brings data *toward* your code (`transform_input`, `transform_step_input`,
//! `before_execution`, `wrap_step`) runs outer first; a hook that takes data *away* from it
//! (`transform_step_output`, `transform_output`, `after_execution`, `before_send_events`,
//! `on_error`, `on_panic`) runs inner first. So an encryption middleware on the client decrypts
//! before and encrypts after every other one. `after_send_events` (the answer coming back) runs
//! outer first. The first `wrap_step` wraps all the others.
//!
//! # When each hook runs
//! | hook | discovery call | replay of memoized steps | targeted step call | failed attempt |
//! |---|---|---|---|---|
//! | [`transform_input`](Middleware::transform_input) | once, before the handler | once | once | once |
//! | [`transform_step_input`](Middleware::transform_step_input) | — | once per memoized step the code reaches | same | same |
//! | [`before_execution`](Middleware::before_execution) | once: when no memoized step is left, or at the first new step | once, when the replay ends (not at all if it never does) | once | once |
//! | [`wrap_step`](Middleware::wrap_step) | around a `step.run` / `step.send_event` run in the call | never (memoized steps are not run) | around the targeted step | around the failing step |
//! | [`transform_step_output`](Middleware::transform_step_output) | output of a step run in the call | never | output of the targeted step | never (no output) |
//! | [`after_execution`](Middleware::after_execution) | once at the end, if `before_execution` ran | same | same | same |
//! | [`transform_output`](Middleware::transform_output) | the function's return value | same | never (the call ends at the step) | never |
//! | [`on_error`](Middleware::on_error) | the function's error (`from_step` when it is a failed step's, escaping), or the failed step's | same | the failed step's | yes |
//! | [`on_panic`](Middleware::on_panic) | a panic in the handler or a step | same | same | yes |
//! | [`before_send_events`](Middleware::before_send_events), [`after_send_events`](Middleware::after_send_events) | each `client.send` and each `step.send_event` that runs | never for a memoized `send_event` | when the target is a `send_event` | yes |
//!
//! No hook runs twice for the same step in one call. A hook that returns an error fails the call
//! with a `MiddlewareError` naming the middleware and the hook: retried by Inngest unless the
//! hook's error was non-retriable ([`Error::non_retriable`]). An error of `wrap_step` or
//! `transform_step_output` is the step's error (retried like one).
//!
//! Values attached in `transform_input` ([`Input::insert`]) are read by the handler with
//! [`Ctx::get`](crate::Ctx::get); [`Ctx::log`](crate::Ctx::log) is a [`Logger`] quiet during
//! replays. With the feature `encryption`, [`encryption::Encryption`] encrypts step outputs,
//! function outputs and an event field, wire-compatible with `@inngest/middleware-encryption`.

#[cfg(feature = "encryption")]
pub mod encryption;
mod extensions;
mod info;
mod log;
mod payload;
mod stack;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::value::RawValue;

use crate::error::Error;
use crate::event::Event;

pub use extensions::Extensions;
pub use info::{Failure, Input, RunInfo, StepInfo, StepKind};
pub use log::Logger;
pub(crate) use log::ReplayFlag;
pub use payload::Payload;
pub(crate) use stack::{CallHooks, Stack};

/// The future an asynchronous hook returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// The future of a step's body inside [`Middleware::wrap_step`]: its output as JSON.
pub type StepFuture<'a> = HookFuture<'a, Box<RawValue>>;

/// The result of an event send, for [`Middleware::after_send_events`]: the ids, or the error.
pub type SendResult<'a> = Result<&'a [String], &'a (dyn std::error::Error + Send + Sync)>;

/// A ready `Ok(())` that is a zero-sized type, so boxing it allocates nothing.
struct Done;

impl Future for Done {
    type Output = Result<(), Error>;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(()))
    }
}

/// The no-op result of an asynchronous hook (allocation-free).
pub fn done<'a>() -> HookFuture<'a, ()> {
    Box::pin(Done)
}

/// The rest of the chain of [`Middleware::wrap_step`]: the inner middleware, then the step.
pub struct Next<'a> {
    chain: &'a [std::sync::Arc<dyn Middleware>],
    step: &'a StepInfo,
    body: StepFuture<'a>,
}

impl<'a> Next<'a> {
    /// Runs the rest of the chain and the step's body once: its output as JSON, or its error.
    pub fn run(self) -> StepFuture<'a> {
        match self.chain.split_first() {
            None => self.body,
            Some((first, rest)) => first.wrap_step(
                self.step,
                Next {
                    chain: rest,
                    step: self.step,
                    body: self.body,
                },
            ),
        }
    }
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("step", &self.step.id)
            .field("middleware_left", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Hooks around calls, steps and event sends. Every method has a no-op default; see the
/// [module docs](self) for when each runs and in which order.
///
/// Synchronous hooks transform values in place; asynchronous ones return a [`HookFuture`]
/// (`Box::pin(async move { … })`, or [`done()`] for nothing).
pub trait Middleware: Send + Sync + 'static {
    /// The name used in errors (default: the type's name).
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// The call's input before the handler sees it: its events ([`Input::events_mut`]) and the
    /// values to attach for the handler ([`Input::insert`]).
    fn transform_input(&self, input: &mut Input<'_>) -> Result<(), Error> {
        let _ = input;
        Ok(())
    }

    /// A memoized step's output (its `data`) before the code receives it.
    fn transform_step_input(&self, step: &StepInfo, data: &mut Payload) -> Result<(), Error> {
        let _ = (step, data);
        Ok(())
    }

    /// The replay is over: the code runs for the first time from here on in this call.
    fn before_execution<'a>(&'a self, run: &'a RunInfo) -> HookFuture<'a, ()> {
        let _ = run;
        done()
    }

    /// Around the body of a step that runs in this call: call [`Next::run`] once and return (or
    /// change) its result, e.g. to time it, add context, or turn an error into a
    /// [`RetryAfter`](crate::RetryAfter) or [`NonRetriable`](crate::NonRetriable) one.
    fn wrap_step<'a>(&'a self, step: &'a StepInfo, next: Next<'a>) -> StepFuture<'a> {
        let _ = step;
        next.run()
    }

    /// The output of a step that ran in this call, before it is memoized.
    fn transform_step_output(&self, step: &StepInfo, output: &mut Payload) -> Result<(), Error> {
        let _ = (step, output);
        Ok(())
    }

    /// The user code of this call ended (it returned, failed, or stopped at a step).
    fn after_execution<'a>(&'a self, run: &'a RunInfo) -> HookFuture<'a, ()> {
        let _ = run;
        done()
    }

    /// The function's return value, before it is sent to Inngest.
    fn transform_output(&self, run: &RunInfo, output: &mut Payload) -> Result<(), Error> {
        let _ = (run, output);
        Ok(())
    }

    /// Events about to be sent (by the client or `step.send_event`); may change them.
    fn before_send_events<'a>(&'a self, events: &'a mut Vec<Event>) -> HookFuture<'a, ()> {
        let _ = events;
        done()
    }

    /// The outcome of an event send.
    fn after_send_events<'a>(
        &'a self,
        events: &'a [Event],
        result: SendResult<'a>,
    ) -> HookFuture<'a, ()> {
        let _ = (events, result);
        done()
    }

    /// The function returned an error, or a step attempt failed. A step's final failure that
    /// the code lets escape (`?`) comes again, in the next call, as the function's error with
    /// [`Failure::from_step`] set.
    fn on_error(&self, run: &RunInfo, failure: &Failure<'_>) {
        let _ = (run, failure);
    }

    /// The handler or a step panicked (the call answers with an error).
    fn on_panic(&self, run: &RunInfo, message: &str) {
        let _ = (run, message);
    }
}
